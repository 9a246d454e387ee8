/* Parsing iobound-compare's arguments: every bad value is refused with a
 * message that names it. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compare.h"

enum {
  OPT_STYLES = 256,
  OPT_WORK,
  OPT_TARGET,
  OPT_PG,
  OPT_URL,
  OPT_DIR,
  OPT_CPU_US,
  OPT_LOOPS,
  OPT_COUNT,
  OPT_DURATION,
  OPT_LIMIT,
  OPT_RATE,
  OPT_BURST,
  OPT_ARRIVAL_RATE,
  OPT_FOR,
  OPT_ARRIVALS,
  OPT_SEED,
  OPT_RETRIES,
  OPT_BACKOFF,
  OPT_BREAKER,
  OPT_HEDGE,
  OPT_TIMEOUT,
  OPT_POOL_SIZE,
  OPT_FORMAT,
  OPT_PROGRESS,
  OPT_TIMELINE,
  OPT_SVG,
  OPT_TRACE,
  OPT_LIST_STYLES,
  OPT_LIST_KINDS,
  OPT_VERSION,
};

/* The options, as --help lists them; a "%s" is the names the option
 * takes, read from the library's tables (option_names()). */
static const cli_option options[] = {
    {OPT_STYLES, "styles", "LIST",
     "comma-separated, each once, from %s (default: all of them)"},
    {OPT_WORK, "work", "KIND",
     "what each operation does: %s (default: wait, simulated I/O); an "
     "option that goes with a kind says so below"},
    {OPT_TARGET, "target", "HOST:PORT",
     "with --work tcp, the service to ask (default: start "
     "iobound-slow-service on a free port for the run)"},
    {OPT_PG, "pg", "CONNINFO", "with --work pg, the database (a libpq string)"},
    {OPT_URL, "url", "URL",
     "with --work http, what each operation GETs, {i} and {ms} replaced by "
     "its index and duration (default: start iobound-slow-service and GET "
     "its /wait/{ms})"},
    {OPT_DIR, "dir", "DIR",
     "with --work file, the directory to write in (default: a new one "
     "under /tmp, removed at the end)"},
    {OPT_CPU_US, "cpu-us", "N",
     "with --work mixed, the microseconds of CPU each operation computes "
     "after its wait (default 1000)"},
    {OPT_LOOPS, "loops", "N",
     "the loops style's event loops, 1..256 (default: one per core)"},
    {OPT_COUNT, "count", "N", "operations per style (default 10)"},
    {OPT_DURATION, "duration", "MS",
     "each operation's length in ms (default 200; not with --work file, "
     "which takes as long as it takes)"},
    {OPT_LIMIT, "limit", "N",
     "at most N operations in flight (default: no limit)"},
    {OPT_RATE, "rate", "R",
     "start at most R operations a second (a token bucket; a decimal, "
     "0.001 and up; default: no rate)"},
    {OPT_BURST, "burst", "B",
     "with --rate, let B start at once before the rate applies (default 1)"},
    {OPT_ARRIVAL_RATE, "arrival-rate", "R[,R...]",
     "operations arrive R a second, while earlier ones run, instead of "
     "all at once; a list runs each rate in turn and tabulates the p99 "
     "(decimals in increasing order, more than 0, at most 1e9); latency "
     "counts from when each was due"},
    {OPT_FOR, "for", "S",
     "with --arrival-rate, for S seconds (a decimal; default 2), or give "
     "--count N"},
    {OPT_ARRIVALS, "arrivals", "HOW",
     "with --arrival-rate: even (default: evenly spaced) or poisson (at "
     "random, as independent clients arrive)"},
    {OPT_SEED, "seed", "N",
     "with --arrivals poisson, the random numbers' seed (default 1)"},
    {OPT_RETRIES, "retries", "N",
     "run a failed operation again up to N times, 0..99, if its failure "
     "may pass (a timeout, a lost connection, HTTP 429 or 5xx; default 0)"},
    {OPT_BACKOFF, "backoff", "MIN:MAX",
     "with --retries, wait MIN to MAX ms before a retry, at random, the "
     "top doubling each time from MIN (default 10:1000)"},
    {OPT_BREAKER, "breaker", NULL,
     "a circuit breaker for each style's run: once half of at least 20 "
     "operations in 10 s failed, the rest fail at once for 5 s, then one "
     "probe decides"},
    {OPT_HEDGE, "hedge", "MS|pN",
     "on the loop styles, start a second attempt of an operation not done "
     "after MS ms, or after the Nth percentile of the run's times so far "
     "(p95; 100 ms until 20 are known); the first to succeed wins"},
    {OPT_TIMEOUT, "timeout", "MS",
     "an operation not done MS after it started fails, timed out "
     "(default: no timeout)"},
    {OPT_POOL_SIZE, "pool-size", "N",
     "threads in libuv's pool, 1..1024 (default 4)"},
    {OPT_FORMAT, "format", "FORMAT", "table (default), csv or json, on stdout"},
    {OPT_PROGRESS, "progress", "WHEN",
     "auto (default: if stderr is a terminal), always, never: a progress "
     "line on stderr"},
    {OPT_TIMELINE, "timeline", NULL,
     "a text chart of every operation under the table"},
    {OPT_SVG, "svg", "FILE", "write the timeline as an SVG picture"},
    {OPT_TRACE, "trace", "FILE",
     "write a Chrome trace (open in ui.perfetto.dev); not --svg's file"},
    {'q', "quiet", NULL,
     "only the results: no explanation, and no progress unless "
     "--progress always"},
    {OPT_LIST_STYLES, "list-styles", NULL,
     "print the styles --styles takes, one a line, and exit"},
    {OPT_LIST_KINDS, "list-kinds", NULL,
     "print the kinds --work takes in this build, one a line, and exit"},
    {'h', "help", NULL, "show this help and exit"},
    {OPT_VERSION, "version", NULL, "show the version and exit"},
    {0, NULL, NULL, NULL},
};

size_t compare_kind_names(const char **names, size_t max) {
  size_t n = 0;
  for (const iob_kind *k; n < max && (k = iob_kind_at(n)) != NULL; n++)
    names[n] = k->name;
#if IOB_EXAMPLES_PG
  if (n < max)
    names[n++] = COMPARE_PG_KIND;
#endif
#if IOB_EXAMPLES_HTTP
  if (n < max)
    names[n++] = COMPARE_HTTP_KIND;
#endif
  return n;
}

/* The names an option's help lists in place of its "%s": the styles, or
 * the kinds; NULL for the other options. */
static const char *option_names(int opt, char *out, size_t size) {
  const char *kinds[COMPARE_KINDS_MAX];
  if (opt == OPT_STYLES)
    return cli_style_names(out, size, 0, ",", ",");
  if (opt == OPT_WORK)
    return cli_join(out, size, kinds,
                    compare_kind_names(kinds, COMPARE_KINDS_MAX), ", ", " or ");
  return NULL;
}

const char *compare_usage(void) {
  static char text[8192];
  char lines[7680];
  size_t len = 0;
  lines[0] = '\0';
  /* An option at a time, each with its own names. */
  for (const cli_option *opt = options; opt->name != NULL; opt++) {
    const cli_option one[] = {*opt, {0, NULL, NULL, NULL}};
    char names[256], help[1024];
    cli_help(help, sizeof(help), one,
             option_names(opt->val, names, sizeof(names)));
    int w = snprintf(lines + len, sizeof(lines) - len, "%s", help);
    if (w < 0 || (size_t)w >= sizeof(lines) - len)
      break;
    len += (size_t)w;
  }
  snprintf(
      text, sizeof(text),
      "Usage: iobound-compare [OPTION]...\n"
      "Run the same operations in several concurrency styles and compare how\n"
      "long each style takes.\n"
      "\n"
      "%s"
      "\n"
      "Exit status: 0 on success, 1 if a style failed to run, an operation\n"
      "failed or the results could not all be written (stdout, --svg,\n"
      "--trace), 64 for bad arguments, 73 if an output file cannot be\n"
      "created.\n",
      lines);
  return text;
}

/* Refuse the empty item of --styles that starts at `item` in `text`: a
 * comma at either end or two in a row is a slip, not a style. */
static int empty_style(const char *text, const char *item, char *error,
                       size_t size) {
  const char *what = text[0] == '\0'   ? "at least one style"
                     : item == text    ? "no leading comma"
                     : item[0] == '\0' ? "no trailing comma"
                                       : "no empty item between two commas";
  return cli_fail(error, size, "--styles takes %s, not '%s'", what, text);
}

/* Add the style named by the `len` bytes at `item` (an item of `text`) to
 * styles[0..*n), refusing a name that is no style, and one given twice:
 * it would run twice and show two rows of one name. */
static int add_style(const char *text, const char *item, size_t len,
                     const iob_style **styles, int *n, char *error,
                     size_t size) {
  char name[32], list[128];
  const iob_style *s = NULL;
  if (len == 0)
    return empty_style(text, item, error, size);
  if (len < sizeof(name)) { /* longer than every style's name */
    memcpy(name, item, len);
    name[len] = '\0';
    s = iob_style_find(name);
  }
  if (s == NULL)
    return cli_fail(error, size,
                    "--styles takes a comma-separated list from %s, not '%s' "
                    "(no style '%.*s')",
                    cli_style_names(list, sizeof(list), 0, ",", ","), text,
                    (int)len, item);
  for (int k = 0; k < *n; k++)
    if (styles[k] == s)
      return cli_fail(error, size,
                      "--styles takes each style once, not '%s' (%s twice)",
                      text, name);
  if (*n == COMPARE_STYLES_MAX)
    return cli_fail(error, size, "--styles takes at most %d styles, not '%s'",
                    COMPARE_STYLES_MAX, text);
  styles[(*n)++] = s;
  return 0;
}

/* "--styles loop,pool": the styles in the order given. opts is changed
 * only when the whole list is good. */
static int parse_styles(const char *text, compare_opts *o, char *error,
                        size_t size) {
  const iob_style *styles[COMPARE_STYLES_MAX];
  int n = 0;
  for (const char *item = text;; item++) {
    size_t len = strcspn(item, ",");
    int err = add_style(text, item, len, styles, &n, error, size);
    if (err != 0)
      return err;
    item += len;
    if (*item == '\0')
      break;
  }
  memcpy(o->styles, styles, (size_t)n * sizeof(styles[0]));
  o->nstyles = n;
  return 0;
}

/* "--work cpu": a kind built into the library, or iobound-pg's or
 * iobound-http's (taken even in a build without them, which says so when
 * it runs). */
static int parse_work(const char *text, compare_opts *o, char *error,
                      size_t size) {
  if (iob_kind_find(text) != NULL || strcmp(text, COMPARE_PG_KIND) == 0 ||
      strcmp(text, COMPARE_HTTP_KIND) == 0) {
    o->work = text;
    return 0;
  }
  const char *names[COMPARE_KINDS_MAX];
  char list[256];
  return cli_fail(error, size, "--work takes %s, not '%s'",
                  cli_join(list, sizeof(list), names,
                           compare_kind_names(names, COMPARE_KINDS_MAX), ", ",
                           " or "),
                  text);
}

/* Index of `text` in a NULL-terminated list of words, or -1. */
static int parse_word(const char *text, const char *const *words) {
  for (int k = 0; words[k] != NULL; k++)
    if (strcmp(text, words[k]) == 0)
      return k;
  return -1;
}

static const char *const formats[] = {"table", "csv", "json", NULL};
static const char *const arrival_kinds[] = {"even", "poisson", NULL};

/* "--arrival-rate 10,20.5": operations a second, each more than 0 and at
 * most COMPARE_ARRIVAL_RATE_MAX. opts is changed only when all are good. */
static int parse_rates(const char *text, compare_opts *o, char *error,
                       size_t size) {
  double rates[COMPARE_RATES_MAX];
  int n = 0;
  for (const char *item = text;; item++) {
    char *end;
    double r = strtod(item, &end);
    if (end == item || (*end != ',' && *end != '\0') || !(r > 0) ||
        r > COMPARE_ARRIVAL_RATE_MAX)
      return cli_fail(error, size,
                      "--arrival-rate takes operations a second, each more "
                      "than 0 and at most 1e9 (the clock spaces arrivals by "
                      "the nanosecond), comma-separated, not '%s'",
                      text);
    if (n == COMPARE_RATES_MAX)
      return cli_fail(error, size,
                      "--arrival-rate takes at most %d rates, not '%s'",
                      COMPARE_RATES_MAX, text);
    if (n > 0 && r <= rates[n - 1])
      return cli_fail(error, size,
                      "--arrival-rate takes rates in increasing order, each "
                      "once, not '%s'",
                      text);
    rates[n++] = r;
    item = end;
    if (*item == '\0')
      break;
  }
  memcpy(o->arrival_rates, rates, (size_t)n * sizeof(rates[0]));
  o->nrates = n;
  return 0;
}

uint64_t compare_arrivals(const compare_opts *o, int k) {
  if (o->count_given && o->for_s == 0)
    return o->count;
  double s = o->for_s > 0 ? o->for_s : COMPARE_FOR_DEFAULT_S;
  return (uint64_t)llround(o->arrival_rates[k] * s);
}

/* --arrival-rate's companions, and the count each rate makes: 1 to
 * IOB_COUNT_MAX, and --count and --for agreeing when both are given. */
static int check_arrivals(compare_opts *o, char *error, size_t size) {
  if (o->nrates == 0) {
    if (o->for_s > 0)
      return cli_fail(error, size, "--for goes with --arrival-rate");
    if (o->arrivals_given)
      return cli_fail(error, size, "--arrivals goes with --arrival-rate");
  }
  if (o->seed_given && !o->poisson)
    return cli_fail(error, size, "--seed goes with --arrivals poisson");
  if (o->nrates == 0)
    return 0;
  if (o->nrates > 1 && (o->timeline || o->trace_path != NULL))
    return cli_fail(error, size,
                    "%s draws one run: give --arrival-rate one rate (a list "
                    "is drawn by --svg as p99 against rate)",
                    o->timeline ? "--timeline" : "--trace");
  uint64_t most = 0;
  double s = o->for_s > 0 ? o->for_s : COMPARE_FOR_DEFAULT_S;
  for (int k = 0; k < o->nrates; k++) {
    uint64_t n = compare_arrivals(o, k);
    uint64_t made = (uint64_t)llround(o->arrival_rates[k] * s);
    if (o->count_given && o->for_s > 0 && made != o->count)
      return cli_fail(error, size,
                      "--count %" PRIu32 " contradicts --arrival-rate %g for "
                      "%g s, which makes %" PRIu64 " operations: give --count "
                      "or --for, not both",
                      o->count, o->arrival_rates[k], s, made);
    if (n == 0)
      return cli_fail(error, size,
                      "--arrival-rate %g for %g s makes no operation: give a "
                      "higher rate or a longer --for",
                      o->arrival_rates[k], s);
    if ((double)n / o->arrival_rates[k] > 86400)
      return cli_fail(error, size,
                      "--arrival-rate %g makes %" PRIu64 " operations arrive "
                      "over more than a day: give a higher rate or fewer",
                      o->arrival_rates[k], n);
    if (n > IOB_COUNT_MAX)
      return cli_fail(error, size,
                      "--arrival-rate %g for %g s makes %" PRIu64
                      " operations, more than the %" PRIu32
                      " a batch holds: give a lower rate or a shorter --for",
                      o->arrival_rates[k], s, n, IOB_COUNT_MAX);
    most = n > most ? n : most;
  }
  /* For the thread checks: all of them, the most that can be in flight
   * at once (a style that keeps up holds far fewer). */
  o->count = (uint32_t)most;
  return 0;
}
static const char *const progresses[] = {"auto", "always", "never", NULL};

/* A value that is an option of ours, given where a name was due. */
static bool looks_like_option(const char *value) {
  if (strcmp(value, "-q") == 0 || strcmp(value, "-h") == 0)
    return true;
  if (strncmp(value, "--", 2) != 0)
    return false;
  size_t n = strcspn(value + 2, "=");
  for (const cli_option *opt = options; opt->name != NULL; opt++)
    if (strlen(opt->name) == n && strncmp(opt->name, value + 2, n) == 0)
      return true;
  return false;
}

/* Whether `text` holds a byte below 0x20 or 0x7f, which no URL may. */
static bool has_control_byte(const char *text) {
  for (; *text != '\0'; text++)
    if ((unsigned char)*text < 0x20 || *text == 0x7f)
      return true;
  return false;
}

/* Apply one option and its value. */

/* "MS", 1 and up, or "pN", a percentile 1 <= N < 100 (*ms then 0). */
static bool parse_hedge(const char *value, uint32_t *ms, double *percentile) {
  uint64_t n;
  *ms = 0;
  *percentile = 0;
  if (value[0] != 'p') {
    if (!cli_parse_uint(value, 1, UINT32_MAX, &n))
      return false;
    *ms = (uint32_t)n;
    return true;
  }
  char *end;
  double p = strtod(value + 1, &end);
  if (end == value + 1 || *end != '\0' || !(p >= 1 && p < 100))
    return false;
  *percentile = p;
  return true;
}

/* "MIN:MAX", two whole numbers of ms, MIN at most MAX. */
static bool parse_backoff(const char *value, uint32_t *min, uint32_t *max) {
  const char *colon = strchr(value, ':');
  char first[24];
  size_t len = colon != NULL ? (size_t)(colon - value) : sizeof(first);
  uint64_t lo, hi;
  if (len >= sizeof(first))
    return false;
  memcpy(first, value, len);
  first[len] = '\0';
  if (!cli_parse_uint(first, 0, UINT32_MAX, &lo) ||
      !cli_parse_uint(colon + 1, 0, UINT32_MAX, &hi) || hi < lo)
    return false;
  *min = (uint32_t)lo;
  *max = (uint32_t)hi;
  return true;
}

static int apply(compare_opts *o, int opt, const char *value, char *error,
                 size_t size) {
  uint64_t n;
  int k;
  switch (opt) {
  case OPT_COUNT:
    if (!cli_parse_uint(value, 1, IOB_COUNT_MAX, &n))
      return cli_fail(error, size,
                      "--count takes a whole number from 1 to %" PRIu32
                      ", not '%s'",
                      IOB_COUNT_MAX, value);
    o->count = (uint32_t)n;
    o->count_given = true;
    break;
  case OPT_DURATION:
    if (!cli_parse_uint(value, 0, IOB_DURATION_MAX_MS, &o->duration_ms))
      return cli_fail(error, size,
                      "--duration takes milliseconds from 0 to %" PRIu64
                      ", not '%s'",
                      IOB_DURATION_MAX_MS, value);
    o->duration_given = true;
    break;
  case OPT_LIMIT:
    if (!cli_parse_uint(value, 0, UINT32_MAX, &n))
      return cli_fail(error, size,
                      "--limit takes a whole number (0 for no limit), not '%s'",
                      value);
    o->limit = (uint32_t)n;
    break;
  case OPT_RATE: {
    char *end;
    o->rate = strtod(value, &end);
    if (end == value || *end != '\0' ||
        !(o->rate >= IOB_RATE_MIN && o->rate <= IOB_RATE_MAX))
      return cli_fail(error, size,
                      "--rate takes operations a second, from 0.001 to 1e9, "
                      "not '%s'",
                      value);
    break;
  }
  case OPT_ARRIVAL_RATE:
    return parse_rates(value, o, error, size);
  case OPT_FOR: {
    char *end;
    double v = strtod(value, &end);
    if (end == value || *end != '\0' || !(v > 0 && v <= 86400))
      return cli_fail(error, size,
                      "--for takes seconds, more than 0 and at most 86400, "
                      "not '%s'",
                      value);
    o->for_s = v;
    break;
  }
  case OPT_ARRIVALS:
    if ((k = parse_word(value, arrival_kinds)) < 0)
      return cli_fail(error, size, "--arrivals takes even or poisson, not '%s'",
                      value);
    o->poisson = k == 1;
    o->arrivals_given = true;
    break;
  case OPT_SEED:
    if (!cli_parse_uint(value, 0, UINT64_MAX, &o->seed))
      return cli_fail(error, size, "--seed takes a whole number, not '%s'",
                      value);
    o->seed_given = true;
    break;
  case OPT_BURST:
    if (!cli_parse_uint(value, 1, IOB_COUNT_MAX, &n))
      return cli_fail(error, size,
                      "--burst takes a whole number from 1 to %u, not '%s'",
                      (unsigned)IOB_COUNT_MAX, value);
    o->burst = (uint32_t)n;
    break;
  case OPT_RETRIES:
    if (!cli_parse_uint(value, 0, IOB_RETRY_ATTEMPTS_MAX - 1, &n))
      return cli_fail(error, size,
                      "--retries takes a whole number from 0 to %u, not '%s'",
                      (unsigned)IOB_RETRY_ATTEMPTS_MAX - 1, value);
    o->retries = (uint32_t)n;
    break;
  case OPT_BACKOFF:
    if (!parse_backoff(value, &o->backoff_min_ms, &o->backoff_max_ms))
      return cli_fail(error, size,
                      "--backoff takes MIN:MAX, two whole numbers of ms with "
                      "MIN at most MAX (as 10:1000), not '%s'",
                      value);
    o->backoff_given = true;
    break;
  case OPT_TIMEOUT:
    if (!cli_parse_uint(value, 0, IOB_DURATION_MAX_MS, &o->timeout_ms))
      return cli_fail(error, size,
                      "--timeout takes milliseconds from 0 (none) to %" PRIu64
                      ", not '%s'",
                      IOB_DURATION_MAX_MS, value);
    break;
  case OPT_POOL_SIZE:
    if (!cli_parse_uint(value, 1, 1024, &n))
      return cli_fail(error, size,
                      "--pool-size takes a number of threads from 1 to "
                      "1024, not '%s'",
                      value);
    o->pool_size = (unsigned int)n;
    break;
  case OPT_STYLES:
    return parse_styles(value, o, error, size);
  case OPT_WORK:
    return parse_work(value, o, error, size);
  case OPT_TARGET: {
    struct sockaddr_storage addr;
    if (iob_tcp_address_parse(value, &addr) != 0)
      return cli_fail(error, size,
                      "--target takes HOST:PORT, HOST an IPv4 address, "
                      "[IPv6] or localhost, not '%s'",
                      value);
    o->target = value;
    break;
  }
  case OPT_PG:
    o->pg = value;
    break;
  case OPT_URL:
    if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
      return cli_fail(error, size,
                      "--url takes an http:// or https:// URL, not '%s'",
                      value);
    /* iobound-http refuses such a URL too (IOB_EINVAL); said here, it is
     * said before a service is started, and by a build without it. */
    if (has_control_byte(value))
      return cli_fail(error, size,
                      "--url takes a URL without control bytes, not '%s'",
                      value);
    o->url = value;
    break;
  case OPT_CPU_US:
    if (!cli_parse_uint(value, 0, IOB_MIXED_CPU_US_MAX, &n))
      return cli_fail(error, size,
                      "--cpu-us takes microseconds from 0 to %" PRIu32
                      ", not '%s'",
                      IOB_MIXED_CPU_US_MAX, value);
    o->cpu_us = (uint32_t)n;
    o->cpu_us_given = true;
    break;
  case OPT_LOOPS:
    if (!cli_parse_uint(value, 1, IOB_LOOPS_MAX, &n))
      return cli_fail(error, size,
                      "--loops takes a number of loops from 1 to %d, not "
                      "'%s'",
                      IOB_LOOPS_MAX, value);
    o->loops = (uint32_t)n;
    break;
  case OPT_DIR:
    if (value[0] == '\0')
      return cli_fail(error, size, "--dir takes a directory, not ''");
    if (looks_like_option(value))
      return cli_fail(error, size,
                      "--dir takes a directory, not the option '%s' (for a "
                      "directory of that name, write ./%s)",
                      value, value);
    o->dir = value;
    break;
  case OPT_FORMAT:
    if ((k = parse_word(value, formats)) < 0)
      return cli_fail(error, size,
                      "--format takes table, csv or json, not '%s'", value);
    o->format = (compare_format)k;
    break;
  case OPT_PROGRESS:
    if ((k = parse_word(value, progresses)) < 0)
      return cli_fail(error, size,
                      "--progress takes auto, always or never, not '%s'",
                      value);
    o->progress = (compare_progress)k;
    break;
  case OPT_SVG:
  case OPT_TRACE:
    if (value[0] == '\0')
      return cli_fail(error, size, "%s takes a file name",
                      opt == OPT_SVG ? "--svg" : "--trace");
    /* "--svg --count 3" forgot the file: not a file named "--count". */
    if (looks_like_option(value))
      return cli_fail(error, size,
                      "%s takes a file name, not the option '%s' (for a file "
                      "of that name, write ./%s)",
                      opt == OPT_SVG ? "--svg" : "--trace", value, value);
    *(opt == OPT_SVG ? &o->svg_path : &o->trace_path) = value;
    break;
  case OPT_TIMELINE:
    o->timeline = true;
    break;
  case OPT_BREAKER:
    o->breaker = true;
    break;
  case OPT_HEDGE:
    if (!parse_hedge(value, &o->hedge_ms, &o->hedge_percentile))
      return cli_fail(error, size,
                      "--hedge takes a delay in ms from 1 to %" PRIu32
                      " (as 50) or a percentile from p1 to p99.9 (as p95), "
                      "not '%s'",
                      UINT32_MAX, value);
    o->hedge = true;
    break;
  case OPT_LIST_STYLES:
    o->list = COMPARE_LIST_STYLES;
    break;
  case OPT_LIST_KINDS:
    o->list = COMPARE_LIST_KINDS;
    break;
  case 'q':
    o->quiet = true;
    break;
  case 'h':
    o->action = CLI_HELP;
    break;
  case OPT_VERSION:
    o->action = CLI_VERSION;
    break;
  }
  return 0;
}

int compare_parse(int argc, char **argv, compare_opts *o, char *error,
                  size_t error_size) {
  *o = (compare_opts){.action = CLI_RUN,
                      .count = 10,
                      .duration_ms = 200,
                      .work = "wait",
                      .backoff_min_ms = 10,
                      .backoff_max_ms = 1000,
                      .cpu_us = COMPARE_CPU_US_DEFAULT,
                      .seed = 1};
  for (const iob_style *s; o->nstyles < COMPARE_STYLES_MAX &&
                           (s = iob_style_at((size_t)o->nstyles));)
    o->styles[o->nstyles++] = s;

  cli_options args = {.argc = argc,
                      .argv = argv,
                      .table = options,
                      .error = error,
                      .size = error_size};
  for (int opt; (opt = cli_next_option(&args)) != CLI_END;) {
    if (opt == CLI_BAD)
      return CLI_EX_USAGE;
    int err = apply(o, opt, args.value, error, error_size);
    if (err != 0)
      return err;
  }
  bool tcp = iob_kind_find(o->work) == &iob_kind_tcp;
  bool pg = strcmp(o->work, COMPARE_PG_KIND) == 0;
  if (o->target != NULL && !tcp)
    return cli_fail(error, error_size, "--target goes with --work tcp");
  if (o->pg != NULL && !pg)
    return cli_fail(error, error_size, "--pg goes with --work pg");
  if (o->url != NULL && strcmp(o->work, COMPARE_HTTP_KIND) != 0)
    return cli_fail(error, error_size, "--url goes with --work http");
  if (o->dir != NULL && iob_kind_find(o->work) != &iob_kind_file)
    return cli_fail(error, error_size, "--dir goes with --work file");
  if (o->timeline && o->format != COMPARE_TABLE)
    return cli_fail(error, error_size,
                    "--timeline draws under the table: it goes with "
                    "--format table (for csv or json, write the timeline "
                    "with --svg FILE or --trace FILE)");
  if (o->duration_given && iob_kind_find(o->work) == &iob_kind_file)
    return cli_fail(error, error_size,
                    "--work file takes no --duration: each operation writes "
                    "its file, however long that takes");
  if (o->burst != 0 && o->rate == 0)
    return cli_fail(error, error_size, "--burst goes with --rate");
  if (o->hedge && o->hedge_ms != 0 && o->timeout_ms != 0 &&
      o->hedge_ms >= o->timeout_ms)
    return cli_fail(error, error_size,
                    "--hedge %" PRIu32 " is not before --timeout %" PRIu64
                    ": no second attempt could start",
                    o->hedge_ms, o->timeout_ms);
  if (o->backoff_given && o->retries == 0)
    return cli_fail(error, error_size,
                    "--backoff goes with --retries N (N of 1 or more)");
  if (o->cpu_us_given && iob_kind_find(o->work) != &iob_kind_mixed)
    return cli_fail(error, error_size, "--cpu-us goes with --work mixed");
  int err = check_arrivals(o, error, error_size);
  if (err != 0)
    return err;
  bool loops = false;
  for (int k = 0; k < o->nstyles; k++)
    loops = loops || o->styles[k] == &iob_style_loops;
  if (o->loops != 0 && !loops)
    return cli_fail(error, error_size,
                    "--loops goes with the loops style (--styles ...,loops)");
  if (pg && (o->pg == NULL || o->pg[0] == '\0'))
    return cli_fail(error, error_size,
                    "--work pg needs --pg CONNINFO, e.g. --pg 'host=/run/"
                    "postgresql dbname=postgres'");
  return 0;
}

/* The threads a style of a fixed number starts for the run: the workers
 * style's private pool (the limit, or 4; never more than the operations
 * or IOB_WORKERS_MAX), the loops style's loops (--loops, or the cores;
 * never more than can run). 0 for the other styles. */
static uint32_t fixed_threads(const compare_opts *o, const iob_style *s,
                              uint32_t at_once) {
  uint32_t n;
  if (s == &iob_style_workers)
    n = o->limit != 0 ? o->limit : IOB_WORKERS_DEFAULT;
  else if (s == &iob_style_loops)
    n = o->loops != 0 ? o->loops : (uint32_t)uv_available_parallelism();
  else
    return 0;
  uint32_t most = s == &iob_style_workers ? IOB_WORKERS_MAX : IOB_LOOPS_MAX;
  n = n < most ? n : most;
  return n < at_once ? n : at_once;
}

int compare_check_threads(const compare_opts *o, uint32_t available,
                          char *error, size_t error_size) {
  uint32_t needed = o->limit != 0 && o->limit < o->count ? o->limit : o->count;
  unsigned pool = o->pool_size != 0 ? o->pool_size : iob_pool_size();
  for (int k = 0; k < o->nstyles; k++) {
    const iob_style *s = o->styles[k];
    uint32_t fixed = fixed_threads(o, s, needed);
    if (fixed > available && available > 0)
      return cli_fail(error, error_size,
                      "the %s style would start %" PRIu32
                      " threads, but this system allows about %" PRIu32
                      " more (ulimit -u, threads-max); add %s %" PRIu32
                      " (or less)",
                      iob_style_name(s), fixed, available,
                      s == &iob_style_loops ? "--loops" : "--limit", available);
    bool threads = (iob_style_flags(s) & IOB_STYLE_THREAD_EACH) ||
                   s == &iob_style_pool || fixed > 0;
    if (threads && available == 0) /* no number to suggest */
      return cli_fail(error, error_size,
                      "the %s style needs threads, but this system allows "
                      "no more (ulimit -u, threads-max); leave it out of "
                      "--styles",
                      iob_style_name(s));
    if ((iob_style_flags(s) & IOB_STYLE_THREAD_EACH) && needed > available)
      return cli_fail(error, error_size,
                      "the %s style would need %" PRIu32
                      " threads at once, but this system allows about "
                      "%" PRIu32 " more (ulimit -u, threads-max); add "
                      "--limit %" PRIu32 " (or less)",
                      iob_style_name(s), needed, available, available);
    if (s == &iob_style_pool && pool > available)
      return cli_fail(error, error_size,
                      "the pool style would start %u threads, but this "
                      "system allows about %" PRIu32 " more (ulimit -u, "
                      "threads-max); add --pool-size %" PRIu32 " (or less)",
                      pool, available, available > 0 ? available : 1);
  }
  return 0;
}

/* The directory `path` names its file in ("." or "/" for a path with no
 * directory or only the root), newly allocated; NULL when out of memory. */
static char *directory_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    return strdup(".");
  return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* Whether two paths to files that do not exist yet would create one file:
 * the same last name in the same directory ("x", "./x", "/dir/x"). */
static bool same_new_file(const char *a, const char *b) {
  const char *name_a = strrchr(a, '/'), *name_b = strrchr(b, '/');
  if (strcmp(name_a ? name_a + 1 : a, name_b ? name_b + 1 : b) != 0)
    return false;
  char *dir_a = directory_of(a), *dir_b = directory_of(b);
  struct stat sa, sb;
  bool same = dir_a != NULL && dir_b != NULL && stat(dir_a, &sa) == 0 &&
              stat(dir_b, &sb) == 0 && sa.st_dev == sb.st_dev &&
              sa.st_ino == sb.st_ino;
  free(dir_a);
  free(dir_b);
  return same;
}

/* Whether two paths name one file: by device and inode when both exist
 * (hard and symbolic links, /dev/stdout), by name otherwise. */
static bool same_file(const char *a, const char *b) {
  struct stat sa, sb;
  if (strcmp(a, b) == 0)
    return true;
  bool has_a = stat(a, &sa) == 0, has_b = stat(b, &sb) == 0;
  if (has_a && has_b)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  return !has_a && !has_b && same_new_file(a, b);
}

int compare_check_outputs(const compare_opts *o, char *error,
                          size_t error_size) {
  if (o->svg_path == NULL || o->trace_path == NULL ||
      !same_file(o->svg_path, o->trace_path))
    return 0;
  if (strcmp(o->svg_path, o->trace_path) == 0)
    return cli_fail(error, error_size,
                    "--svg and --trace take a file each, not both '%s': "
                    "each would overwrite the other",
                    o->svg_path);
  return cli_fail(error, error_size,
                  "--svg '%s' and --trace '%s' are one file: each takes a "
                  "file of its own, or would overwrite the other",
                  o->svg_path, o->trace_path);
}
