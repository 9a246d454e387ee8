/* Parsing iobound-compare's arguments: every bad value is refused with a
 * message that names it. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"

const char compare_usage[] =
    "Usage: iobound-compare [OPTION]...\n"
    "Run the same simulated I/O waits in several concurrency styles and\n"
    "compare how long each style takes.\n"
    "\n"
    "  --count N        operations per style (default 10)\n"
    "  --duration MS    each operation's wait in ms (default 200)\n"
    "  --styles LIST    comma-separated, from sequential,loop,pool\n"
    "                   (default: all, in that order)\n"
    "  --help           show this help and exit\n"
    "  --version        show the version and exit\n";

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(char *error, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error, size, fmt, ap);
  va_end(ap);
  return COMPARE_EX_USAGE;
}

/* A whole decimal number in [min, max]; no sign, no trailing junk. */
static int parse_number(const char *text, uint64_t min, uint64_t max,
                        uint64_t *out) {
  if (text[0] < '0' || text[0] > '9')
    return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

static int parse_styles(const char *text, compare_opts *o) {
  char buf[128];
  if (strlen(text) >= sizeof(buf))
    return -1;
  strcpy(buf, text);
  o->nstyles = 0;
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
       tok = strtok_r(NULL, ",", &save)) {
    iob_style s;
    if (iob_style_parse(tok, &s) != 0)
      return -1;
    bool seen = false;
    for (int k = 0; k < o->nstyles; k++)
      seen = seen || o->styles[k] == s;
    if (!seen)
      o->styles[o->nstyles++] = s;
  }
  return o->nstyles > 0 ? 0 : -1;
}

int compare_parse(int argc, char **argv, compare_opts *o, char *error,
                  size_t error_size) {
  *o = (compare_opts){.action = COMPARE_RUN, .count = 10, .duration_ms = 200};
  for (int s = 0; s < IOB_STYLE_COUNT_; s++)
    o->styles[o->nstyles++] = (iob_style)s;

  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      o->action = COMPARE_HELP;
      continue;
    }
    if (strcmp(arg, "--version") == 0) {
      o->action = COMPARE_VERSION;
      continue;
    }
    /* The rest take a value: "--name value" or "--name=value". */
    char name[32];
    const char *value = NULL;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (len >= sizeof(name))
      return fail(error, error_size, "unknown option '%s'", arg);
    memcpy(name, arg, len);
    name[len] = '\0';
    bool known = strcmp(name, "--count") == 0 ||
                 strcmp(name, "--duration") == 0 ||
                 strcmp(name, "--styles") == 0;
    if (!known)
      return fail(error, error_size, "unknown option '%s'", arg);
    if (eq != NULL)
      value = eq + 1;
    else if (i + 1 < argc)
      value = argv[++i];
    else
      return fail(error, error_size, "option '%s' needs a value", name);

    uint64_t n;
    if (strcmp(name, "--count") == 0) {
      if (parse_number(value, 1, IOB_COUNT_MAX, &n) != 0)
        return fail(error, error_size,
                    "--count takes a whole number from 1 to %" PRIu32
                    ", not '%s'",
                    IOB_COUNT_MAX, value);
      o->count = (uint32_t)n;
    } else if (strcmp(name, "--duration") == 0) {
      if (parse_number(value, 0, IOB_DURATION_MAX_MS, &n) != 0)
        return fail(error, error_size,
                    "--duration takes milliseconds from 0 to %" PRIu64
                    ", not '%s'",
                    IOB_DURATION_MAX_MS, value);
      o->duration_ms = n;
    } else if (parse_styles(value, o) != 0) {
      return fail(error, error_size,
                  "--styles takes a comma-separated list from "
                  "sequential,loop,pool, not '%s'",
                  value);
    }
  }
  return 0;
}
