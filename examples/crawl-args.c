/* iobound-crawl's command line: see crawl.h. */
#include <stdlib.h>
#include <string.h>

#include "crawl.h"

enum { START = 256, MAX, LIMIT, RATE, RETRIES, HEDGE };

static const cli_option options[] = {
    {START, "start", "URL", "the first page, http:// or https:// (needed)"},
    {MAX, "max", "N", "pages at most, 1 to 1000000 (100)"},
    {LIMIT, "limit", "N", "requests in flight at most, 1 to 10000 (8)"},
    {RATE, "rate", "R", "requests a second at most, from 0.001 (no rate)"},
    {RETRIES, "retries", "K",
     "retries of a page that failed and may pass, 0 to 99 (0)"},
    {HEDGE, "hedge", "MS",
     "a second request for a page not answered after MS ms (none)"},
    {'h', "help", NULL, "this help"},
    {0, NULL, NULL, NULL},
};

const char *crawl_help(char *out, size_t size) {
  return cli_help(out, size, options, NULL);
}

/* A number of option `name` in least..most. */
static int number(const char *name, const char *v, uint64_t least,
                  uint64_t most, uint32_t *n, char *error, size_t size) {
  uint64_t got;
  if (!cli_parse_uint(v, least, most, &got))
    return cli_fail(error, size, "--%s %s: not a number from %llu to %llu",
                    name, v, (unsigned long long)least,
                    (unsigned long long)most);
  *n = (uint32_t)got;
  return 0;
}

int crawl_parse(int argc, char **argv, crawl_args *a, char *error,
                size_t size) {
  *a = (crawl_args){.max = 100, .limit = 8};
  cli_options o = {.argc = argc,
                   .argv = argv,
                   .table = options,
                   .error = error,
                   .size = size};
  int opt, err = 0;
  char *end;
  while (err == 0 && (opt = cli_next_option(&o)) != CLI_END) {
    const char *v = o.value;
    switch (opt) {
    case START:
      a->start = v;
      break;
    case MAX:
      err = number("max", v, 1, 1000000, &a->max, error, size);
      break;
    case LIMIT:
      err = number("limit", v, 1, 10000, &a->limit, error, size);
      break;
    case RETRIES:
      err = number("retries", v, 0, 99, &a->retries, error, size);
      break;
    case HEDGE:
      err = number("hedge", v, 1, UINT32_MAX, &a->hedge_ms, error, size);
      break;
    case RATE:
      a->rate = strtod(v, &end);
      if (end == v || *end != '\0' ||
          !(a->rate >= IOB_RATE_MIN && a->rate <= IOB_RATE_MAX))
        err = cli_fail(error, size,
                       "--rate %s: not a rate from 0.001 to "
                       "1e9 a second",
                       v);
      break;
    case 'h':
      a->action = CLI_HELP;
      break;
    default:
      return CLI_EX_USAGE; /* CLI_BAD: the message is in error */
    }
  }
  if (err != 0 || a->action == CLI_HELP)
    return err;
  if (a->start == NULL || (strncmp(a->start, "http://", 7) != 0 &&
                           strncmp(a->start, "https://", 8) != 0))
    return cli_fail(error, size,
                    "--start URL is needed: an http:// or "
                    "https:// page");
  return 0;
}
