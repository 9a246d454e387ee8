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
    "Run the same operations in several concurrency styles and compare how\n"
    "long each style takes.\n"
    "\n"
    "  --styles LIST      comma-separated, from sequential,loop,pool,threads\n"
    "                     (default: all four)\n"
    "  --work KIND        wait (simulated I/O, the default), cpu (spinning),\n"
    "                     tcp (requests to a slow service: --target) or pg\n"
    "                     (SELECT pg_sleep(duration) on PostgreSQL: --pg)\n"
    "  --target HOST:PORT with --work tcp, the service to ask (default: start\n"
    "                     iobound-slow-service on a free port for the run)\n"
    "  --pg CONNINFO      with --work pg, the database (a libpq string)\n"
    "  --count N          operations per style (default 10)\n"
    "  --duration MS      each operation's length in ms (default 200)\n"
    "  --limit N          at most N operations in flight (default: no limit)\n"
    "  --pool-size N      threads in libuv's pool, 1..1024 (default 4)\n"
    "  --format FORMAT    table (default), csv or json, on stdout\n"
    "  --progress WHEN    auto (default: if stderr is a terminal), always,\n"
    "                     never: a progress line on stderr\n"
    "  --timeline         a text chart of every operation under the table\n"
    "  --svg FILE         write the timeline as an SVG picture\n"
    "  --trace FILE       write a Chrome trace (open in ui.perfetto.dev)\n"
    "  -q, --quiet        only the results: no progress, no explanation\n"
    "  -h, --help         show this help and exit\n"
    "  --version          show the version and exit\n"
    "\n"
    "Exit status: 0 on success, 1 if a style failed to run or an operation\n"
    "failed, 64 for bad arguments, 73 if an output file cannot be written.\n";

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

/* Index of `text` in a NULL-terminated list of words, or -1. */
static int parse_word(const char *text, const char *const *words) {
  for (int k = 0; words[k] != NULL; k++)
    if (strcmp(text, words[k]) == 0)
      return k;
  return -1;
}

static const char *const formats[] = {"table", "csv", "json", NULL};
static const char *const progresses[] = {"auto", "always", "never", NULL};

/* Apply one "--name value" option. */
static int apply(compare_opts *o, const char *name, const char *value,
                 char *error, size_t size) {
  uint64_t n;
  int k;
  if (strcmp(name, "--count") == 0) {
    if (parse_number(value, 1, IOB_COUNT_MAX, &n) != 0)
      return fail(error, size,
                  "--count takes a whole number from 1 to %" PRIu32
                  ", not '%s'",
                  IOB_COUNT_MAX, value);
    o->count = (uint32_t)n;
  } else if (strcmp(name, "--duration") == 0) {
    if (parse_number(value, 0, IOB_DURATION_MAX_MS, &n) != 0)
      return fail(error, size,
                  "--duration takes milliseconds from 0 to %" PRIu64
                  ", not '%s'",
                  IOB_DURATION_MAX_MS, value);
    o->duration_ms = n;
  } else if (strcmp(name, "--limit") == 0) {
    if (parse_number(value, 0, UINT32_MAX, &n) != 0)
      return fail(error, size,
                  "--limit takes a whole number (0 for no limit), not '%s'",
                  value);
    o->limit = (uint32_t)n;
  } else if (strcmp(name, "--pool-size") == 0) {
    if (parse_number(value, 1, 1024, &n) != 0)
      return fail(error, size,
                  "--pool-size takes a number of threads from 1 to 1024, "
                  "not '%s'",
                  value);
    o->pool_size = (unsigned int)n;
  } else if (strcmp(name, "--styles") == 0) {
    if (parse_styles(value, o) != 0)
      return fail(error, size,
                  "--styles takes a comma-separated list from "
                  "sequential,loop,pool,threads, not '%s'",
                  value);
  } else if (strcmp(name, "--work") == 0) {
    iob_work w;
    o->io = strcmp(value, "tcp") == 0  ? COMPARE_TCP
            : strcmp(value, "pg") == 0 ? COMPARE_PG
                                       : COMPARE_SIMULATED;
    if (o->io != COMPARE_SIMULATED)
      w = IOB_WORK_USER;
    else if (iob_work_parse(value, &w) != 0 || w == IOB_WORK_USER)
      return fail(error, size, "--work takes wait, cpu, tcp or pg, not '%s'",
                  value);
    o->work = w;
  } else if (strcmp(name, "--target") == 0) {
    struct sockaddr_storage addr;
    if (iob_tcp_address_parse(value, &addr) != 0)
      return fail(error, size,
                  "--target takes HOST:PORT, HOST an IPv4 address, [IPv6] "
                  "or localhost, not '%s'",
                  value);
    o->target = value;
  } else if (strcmp(name, "--pg") == 0) {
    o->pg = value;
  } else if (strcmp(name, "--format") == 0) {
    if ((k = parse_word(value, formats)) < 0)
      return fail(error, size, "--format takes table, csv or json, not '%s'",
                  value);
    o->format = (compare_format)k;
  } else if (strcmp(name, "--svg") == 0 || strcmp(name, "--trace") == 0) {
    if (value[0] == '\0')
      return fail(error, size, "%s takes a file name", name);
    if (name[2] == 's')
      o->svg_path = value;
    else
      o->trace_path = value;
  } else if (strcmp(name, "--progress") == 0) {
    if ((k = parse_word(value, progresses)) < 0)
      return fail(error, size,
                  "--progress takes auto, always or never, not '%s'", value);
    o->progress = (compare_progress)k;
  } else {
    return fail(error, size, "unknown option '%s'", name);
  }
  return 0;
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
    } else if (strcmp(arg, "--version") == 0) {
      o->action = COMPARE_VERSION;
    } else if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0) {
      o->quiet = true;
    } else if (strcmp(arg, "--timeline") == 0) {
      o->timeline = true;
    } else if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
      return fail(error, error_size, "unknown option '%s'", arg);
    } else {
      /* The rest take a value: "--name value" or "--name=value". */
      char name[32];
      const char *eq = strchr(arg, '=');
      size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
      if (len >= sizeof(name))
        return fail(error, error_size, "unknown option '%s'", arg);
      memcpy(name, arg, len);
      name[len] = '\0';
      const char *value = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
      if (value == NULL)
        return fail(error, error_size, "option '%s' needs a value", name);
      int err = apply(o, name, value, error, error_size);
      if (err != 0)
        return err;
    }
  }
  if (o->target != NULL && o->io != COMPARE_TCP)
    return fail(error, error_size, "--target goes with --work tcp");
  if (o->pg != NULL && o->io != COMPARE_PG)
    return fail(error, error_size, "--pg goes with --work pg");
  if (o->io == COMPARE_PG && (o->pg == NULL || o->pg[0] == '\0'))
    return fail(error, error_size,
                "--work pg needs --pg CONNINFO, e.g. --pg 'host=/run/"
                "postgresql dbname=postgres'");
  return 0;
}

int compare_check_threads(const compare_opts *o, uint32_t available,
                          char *error, size_t error_size) {
  bool threads = false;
  for (int k = 0; k < o->nstyles; k++)
    threads = threads || o->styles[k] == IOB_STYLE_THREADS;
  uint32_t needed =
      o->limit != 0 && o->limit < o->count ? o->limit : o->count;
  if (!threads || needed <= available)
    return 0;
  return fail(error, error_size,
              "the threads style would need %" PRIu32
              " threads at once, but this system allows about %" PRIu32
              " more; add --limit %" PRIu32 " (or less)",
              needed, available, available);
}
