/* libFuzzer harness of iobound-compare's argument parser, compare_parse()
 * (examples/compare-args.c). The input is a command line: its arguments
 * split at NUL or newline bytes (a separator at the very end adds no empty
 * argument), after "iobound-compare".
 *
 * Beyond "no crash" it checks compare.h's contract:
 * - the parser returns 0 or CLI_EX_USAGE, and a refusal has a message,
 *   ended within the buffer, and the same message cut short in a buffer
 *   of 16 bytes;
 * - what it accepts is within the documented ranges (count 1..
 *   IOB_COUNT_MAX, duration and timeout up to IOB_DURATION_MAX_MS, pool
 *   size 1..1024 or 0, 1..COMPARE_STYLES_MAX distinct styles of the library, a kind
 *   the library or iobound-pg has, --target an address the library
 *   reads, --target only with tcp and --pg only, and always, with pg),
 *   and every string it keeps points into argv;
 * - parsing again gives the same options, and so does the canonical
 *   command line written back from them;
 * - compare_check_outputs() refuses --svg and --trace of one path, with a
 *   message, and returns 0 or CLI_EX_USAGE for any two;
 * - compare_check_threads() refuses exactly the runs that need more new
 *   threads than available (one per operation in flight for a thread-each
 *   style, the pool's size for the pool), each refusal ends in a hint
 *   ("add --limit N", "add --pool-size N") within the option's range, and
 *   following the hints makes the run pass;
 * - the library accepts the batch of every style asked for (wait and cpu,
 *   up to 4096 operations). */
#include <inttypes.h>

#include "../../examples/compare.h"
#include "fuzz.h"

#define ARGS_MAX 64
#define ERROR_SIZE 256
#define SHORT_SIZE 16

typedef struct args {
  int argc;
  char *argv[ARGS_MAX + 2];
} args;

static void add(args *a, const char *bytes, size_t len) {
  a->argv[a->argc++] = fuzz_strndup(bytes, len);
  a->argv[a->argc] = NULL;
}

static void free_args(args *a) {
  for (int k = 0; k < a->argc; k++)
    free(a->argv[k]);
  a->argc = 0;
}

static void split(args *a, const uint8_t *data, size_t size) {
  a->argc = 0;
  add(a, "iobound-compare", strlen("iobound-compare"));
  size_t start = 0;
  for (size_t i = 0; i < size && a->argc <= ARGS_MAX; i++)
    if (data[i] == '\0' || data[i] == '\n') {
      add(a, (const char *)data + start, i - start);
      start = i + 1;
    }
  if (start < size && a->argc <= ARGS_MAX)
    add(a, (const char *)data + start, size - start);
}

/* Parse a copy of the argument vector (getopt may reorder one), with the
 * message buffer exactly `size` bytes, filled so that a message never
 * written shows. */
static int parse(const args *a, compare_opts *o, char *error, size_t size) {
  char *argv[ARGS_MAX + 2];
  memcpy(argv, a->argv, sizeof(argv));
  memset(error, 0xaa, size);
  return compare_parse(a->argc, argv, o, error, size);
}

static bool points_into(const args *a, const char *p) {
  for (int k = 1; k < a->argc; k++)
    if (p >= a->argv[k] && p <= a->argv[k] + strlen(a->argv[k]))
      return true;
  return false;
}

static bool same_text(const char *x, const char *y) {
  return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

static void check_same(const compare_opts *x, const compare_opts *y,
                       const char *what) {
  FUZZ_CHECK(x->action == y->action && x->list == y->list &&
                 x->count == y->count && x->duration_ms == y->duration_ms &&
                 x->limit == y->limit && x->timeout_ms == y->timeout_ms &&
                 x->pool_size == y->pool_size && x->format == y->format &&
                 x->progress == y->progress && x->quiet == y->quiet &&
                 x->timeline == y->timeline && x->nstyles == y->nstyles &&
                 x->duration_given == y->duration_given &&
                 x->cpu_us == y->cpu_us && x->cpu_us_given == y->cpu_us_given &&
                 x->loops == y->loops && x->nrates == y->nrates &&
                 x->for_s == y->for_s && x->poisson == y->poisson &&
                 x->seed == y->seed,
             "%s: other numbers or flags", what);
  for (int k = 0; k < x->nrates; k++)
    FUZZ_CHECK(x->arrival_rates[k] == y->arrival_rates[k] &&
                   compare_arrivals(x, k) == compare_arrivals(y, k),
               "%s: arrival rate %d differs", what, k);
  for (int k = 0; k < x->nstyles; k++)
    FUZZ_CHECK(x->styles[k] == y->styles[k], "%s: style %d differs", what, k);
  FUZZ_CHECK(same_text(x->work, y->work) && same_text(x->target, y->target) &&
                 same_text(x->pg, y->pg) && same_text(x->url, y->url) &&
                 same_text(x->dir, y->dir) &&
                 same_text(x->svg_path, y->svg_path) &&
                 same_text(x->trace_path, y->trace_path),
             "%s: other names", what);
}

static void check_ranges(const args *a, const compare_opts *o) {
  FUZZ_CHECK(o->action == CLI_RUN || o->action == CLI_HELP ||
                 o->action == CLI_VERSION,
             "action %d", (int)o->action);
  FUZZ_CHECK(o->list == COMPARE_LIST_NONE || o->list == COMPARE_LIST_STYLES ||
                 o->list == COMPARE_LIST_KINDS,
             "list %d", (int)o->list);
  FUZZ_CHECK(o->count >= 1 && o->count <= IOB_COUNT_MAX, "count %" PRIu32,
             o->count);
  FUZZ_CHECK(o->duration_ms <= IOB_DURATION_MAX_MS, "duration %" PRIu64,
             o->duration_ms);
  FUZZ_CHECK(o->timeout_ms <= IOB_DURATION_MAX_MS, "timeout %" PRIu64,
             o->timeout_ms);
  FUZZ_CHECK(o->pool_size <= 1024, "pool size %u", o->pool_size);
  FUZZ_CHECK(o->nrates >= 0 && o->nrates <= COMPARE_RATES_MAX, "%d rates",
             o->nrates);
  for (int k = 0; k < o->nrates; k++) {
    FUZZ_CHECK(o->arrival_rates[k] > 0 &&
                   o->arrival_rates[k] <= COMPARE_ARRIVAL_RATE_MAX,
               "arrival rate %g", o->arrival_rates[k]);
    uint64_t n = compare_arrivals(o, k);
    FUZZ_CHECK(n >= 1 && n <= o->count && o->count <= IOB_COUNT_MAX,
               "%" PRIu64 " arrivals at %g, count %" PRIu32, n,
               o->arrival_rates[k], o->count);
  }
  FUZZ_CHECK(o->nrates > 0 || (o->for_s == 0 && !o->poisson),
             "--for or --arrivals without --arrival-rate");
  FUZZ_CHECK(!o->seed_given || o->poisson, "--seed without poisson");
  FUZZ_CHECK(o->format == COMPARE_TABLE || o->format == COMPARE_CSV ||
                 o->format == COMPARE_JSON,
             "format %d", (int)o->format);
  FUZZ_CHECK(o->progress == COMPARE_PROGRESS_AUTO ||
                 o->progress == COMPARE_PROGRESS_ALWAYS ||
                 o->progress == COMPARE_PROGRESS_NEVER,
             "progress %d", (int)o->progress);
  FUZZ_CHECK(o->nstyles >= 1 && o->nstyles <= COMPARE_STYLES_MAX, "%d styles",
             o->nstyles);
  for (int k = 0; k < o->nstyles; k++) {
    FUZZ_CHECK(o->styles[k] != NULL &&
                   iob_style_find(iob_style_name(o->styles[k])) == o->styles[k],
               "style %d is not the library's", k);
    for (int j = 0; j < k; j++)
      FUZZ_CHECK(o->styles[j] != o->styles[k], "style %s twice",
                 iob_style_name(o->styles[k]));
  }

  FUZZ_CHECK(o->work != NULL, "no kind");
  FUZZ_CHECK(points_into(a, o->work) || strcmp(o->work, "wait") == 0,
             "the kind '%s' is neither an argument nor the default", o->work);
  bool pg = strcmp(o->work, COMPARE_PG_KIND) == 0;
  bool http = strcmp(o->work, COMPARE_HTTP_KIND) == 0;
  bool tcp = iob_kind_find(o->work) == &iob_kind_tcp;
  bool file = iob_kind_find(o->work) == &iob_kind_file;
  FUZZ_CHECK(iob_kind_find(o->work) != NULL || pg || http, "unknown kind '%s'",
             o->work);
  if (o->url != NULL) {
    FUZZ_CHECK(http, "--url with --work %s", o->work);
    FUZZ_CHECK(points_into(a, o->url), "the URL is not an argument");
    FUZZ_CHECK(strncmp(o->url, "http://", 7) == 0 ||
                   strncmp(o->url, "https://", 8) == 0,
               "the URL '%s' is not http:// or https://", o->url);
  }
  FUZZ_CHECK(!o->timeline || o->format == COMPARE_TABLE,
             "--timeline with a format that draws no chart");
  FUZZ_CHECK(!(o->duration_given && file), "--duration with --work file");
  FUZZ_CHECK(!o->cpu_us_given || iob_kind_find(o->work) == &iob_kind_mixed,
             "--cpu-us with --work %s", o->work);
  FUZZ_CHECK(o->cpu_us <= IOB_MIXED_CPU_US_MAX, "--cpu-us %" PRIu32, o->cpu_us);
  FUZZ_CHECK(o->loops <= IOB_LOOPS_MAX, "--loops %" PRIu32, o->loops);
  if (o->loops != 0) {
    bool loops = false;
    for (int k = 0; k < o->nstyles; k++)
      loops = loops || o->styles[k] == &iob_style_loops;
    FUZZ_CHECK(loops, "--loops without the loops style");
  }
  if (o->dir != NULL) {
    FUZZ_CHECK(file, "--dir with --work %s", o->work);
    FUZZ_CHECK(points_into(a, o->dir), "the directory is not an argument");
  }
  if (o->target != NULL) {
    struct sockaddr_storage addr;
    FUZZ_CHECK(tcp, "--target with --work %s", o->work);
    FUZZ_CHECK(points_into(a, o->target), "the target is not an argument");
    FUZZ_CHECK(iob_tcp_address_parse(o->target, &addr) == 0,
               "the library refuses the target '%s'", o->target);
  }
  if (o->pg != NULL) {
    FUZZ_CHECK(pg, "--pg with --work %s", o->work);
    FUZZ_CHECK(points_into(a, o->pg), "the conninfo is not an argument");
  }
  if (pg)
    FUZZ_CHECK(o->pg != NULL && o->pg[0] != '\0', "--work pg without --pg");
  const char *paths[] = {o->svg_path, o->trace_path};
  for (int k = 0; k < 2; k++)
    if (paths[k] != NULL)
      FUZZ_CHECK(paths[k][0] != '\0' && points_into(a, paths[k]),
                 "an empty or foreign file name");
}

/* Write the options back as the canonical command line, and parse it. */
static void check_round_trip(const compare_opts *o) {
  static const char *const formats[] = {"table", "csv", "json"};
  static const char *const progresses[] = {"auto", "always", "never"};
  char count[16], duration[24], limit[16], timeout[24], pool[16];
  char cpu_us[16], loops[16];
  snprintf(cpu_us, sizeof(cpu_us), "%" PRIu32, o->cpu_us);
  snprintf(loops, sizeof(loops), "%" PRIu32, o->loops);
  char styles[160] = "";
  snprintf(count, sizeof(count), "%" PRIu32, o->count);
  snprintf(duration, sizeof(duration), "%" PRIu64, o->duration_ms);
  snprintf(limit, sizeof(limit), "%" PRIu32, o->limit);
  snprintf(timeout, sizeof(timeout), "%" PRIu64, o->timeout_ms);
  snprintf(pool, sizeof(pool), "%u", o->pool_size);
  for (int k = 0; k < o->nstyles; k++) {
    size_t len = strlen(styles);
    snprintf(styles + len, sizeof(styles) - len, "%s%s", k ? "," : "",
             iob_style_name(o->styles[k]));
  }
  const char *words[64];
  int n = 0;
  if (o->nrates == 0 || o->count_given) { /* else made by the rates */
    words[n++] = "--count";
    words[n++] = count;
  }
  char rates[COMPARE_RATES_MAX * 26] = "", for_s[32], seed[24];
  for (int k = 0; k < o->nrates; k++) {
    size_t len = strlen(rates);
    snprintf(rates + len, sizeof(rates) - len, "%s%.17g", k ? "," : "",
             o->arrival_rates[k]);
  }
  if (o->nrates > 0) {
    words[n++] = "--arrival-rate";
    words[n++] = rates;
  }
  if (o->for_s > 0) {
    snprintf(for_s, sizeof(for_s), "%.17g", o->for_s);
    words[n++] = "--for";
    words[n++] = for_s;
  }
  if (o->poisson) {
    words[n++] = "--arrivals";
    words[n++] = "poisson";
  }
  if (o->seed_given) {
    snprintf(seed, sizeof(seed), "%" PRIu64, o->seed);
    words[n++] = "--seed";
    words[n++] = seed;
  }
  if (o->duration_given) {
    words[n++] = "--duration";
    words[n++] = duration;
  }
  if (o->cpu_us_given) {
    words[n++] = "--cpu-us";
    words[n++] = cpu_us;
  }
  if (o->loops != 0) {
    words[n++] = "--loops";
    words[n++] = loops;
  }
  words[n++] = "--limit";
  words[n++] = limit;
  words[n++] = "--timeout";
  words[n++] = timeout;
  words[n++] = "--format";
  words[n++] = formats[o->format];
  words[n++] = "--progress";
  words[n++] = progresses[o->progress];
  words[n++] = "--styles";
  words[n++] = styles;
  words[n++] = "--work";
  words[n++] = o->work;
  if (o->pool_size != 0) {
    words[n++] = "--pool-size";
    words[n++] = pool;
  }
  const char *const named[][2] = {
      {"--target", o->target}, {"--pg", o->pg},
      {"--url", o->url},       {"--dir", o->dir},
      {"--svg", o->svg_path},  {"--trace", o->trace_path}};
  for (int k = 0; k < 6; k++)
    if (named[k][1] != NULL) {
      words[n++] = named[k][0];
      words[n++] = named[k][1];
    }
  if (o->timeline)
    words[n++] = "--timeline";
  if (o->quiet)
    words[n++] = "--quiet";
  if (o->list != COMPARE_LIST_NONE)
    words[n++] =
        o->list == COMPARE_LIST_STYLES ? "--list-styles" : "--list-kinds";
  if (o->action != CLI_RUN)
    words[n++] = o->action == CLI_HELP ? "--help" : "--version";

  args b = {0};
  add(&b, "iobound-compare", strlen("iobound-compare"));
  for (int k = 0; k < n; k++)
    add(&b, words[k], strlen(words[k]));
  compare_opts again;
  char *error = malloc(ERROR_SIZE);
  int rc = parse(&b, &again, error, ERROR_SIZE);
  FUZZ_CHECK(rc == 0, "the options written back are refused: %s", error);
  check_same(o, &again, "the options written back");
  free(error);
  free_args(&b);
}

/* Apply the hint that ends a refusal, "add --limit N" or "add
 * --pool-size N", to `o`, checking N is a value the option takes. */
static void apply_hint(const char *error, compare_opts *o) {
  const char *at = strstr(error, "add --");
  unsigned long n;
  FUZZ_CHECK(at != NULL, "a refusal without a hint: %s", error);
  if (sscanf(at, "add --limit %lu", &n) == 1) {
    /* --limit 0 would be no limit at all */
    FUZZ_CHECK(n >= 1 && n <= UINT32_MAX, "the hint --limit %lu", n);
    o->limit = (uint32_t)n;
  } else if (sscanf(at, "add --pool-size %lu", &n) == 1) {
    FUZZ_CHECK(n >= 1 && n <= 1024, "the hint --pool-size %lu", n);
    o->pool_size = (unsigned)n;
  } else if (sscanf(at, "add --loops %lu", &n) == 1) {
    FUZZ_CHECK(n >= 1 && n <= IOB_LOOPS_MAX, "the hint --loops %lu", n);
    o->loops = (uint32_t)n;
  } else {
    FUZZ_CHECK(false, "a hint naming no option: %s", error);
  }
}

static uint32_t least(uint32_t a, uint32_t b) { return a < b ? a : b; }

static void check_threads(const compare_opts *o) {
  bool each = false, pool = false, workers = false, loops = false;
  for (int k = 0; k < o->nstyles; k++) {
    each = each || (iob_style_flags(o->styles[k]) & IOB_STYLE_THREAD_EACH);
    pool = pool || o->styles[k] == &iob_style_pool;
    workers = workers || o->styles[k] == &iob_style_workers;
    loops = loops || o->styles[k] == &iob_style_loops;
  }
  uint32_t needed = o->limit != 0 && o->limit < o->count ? o->limit : o->count;
  /* The threads of the workers' private pool and of the loops, made when
   * their batch starts, written here from their documentation. */
  uint32_t workers_threads =
      least(least(o->limit ? o->limit : IOB_WORKERS_DEFAULT, IOB_WORKERS_MAX),
            needed);
  uint32_t loops_threads =
      least(least(o->loops ? o->loops : (uint32_t)uv_available_parallelism(),
                  IOB_LOOPS_MAX),
            needed);
  unsigned pool_threads = o->pool_size != 0 ? o->pool_size : iob_pool_size();
  /* 0 is left out: no hint can make room where there is none. */
  const uint32_t availables[] = {1,
                                 100,
                                 needed > 1 ? needed - 1 : 1,
                                 needed,
                                 pool_threads > 1 ? pool_threads - 1 : 1,
                                 UINT32_MAX};
  for (size_t k = 0; k < sizeof(availables) / sizeof(availables[0]); k++) {
    uint32_t available = availables[k];
    char error[ERROR_SIZE];
    memset(error, 0xaa, sizeof(error));
    int rc = compare_check_threads(o, available, error, sizeof(error));
    bool refuse = (each && needed > available) ||
                  (pool && pool_threads > available) ||
                  (workers && workers_threads > available) ||
                  (loops && loops_threads > available);
    FUZZ_CHECK(rc == (refuse ? CLI_EX_USAGE : 0),
               "%" PRIu32 " threads at once, a pool of %u, %" PRIu32
               " available: returned %d",
               needed, pool_threads, available, rc);
    if (!refuse)
      continue;
    fuzz_check_message(error, sizeof(error), fuzz_strict());
    /* Following the hints, one refusal at a time, the run passes. */
    compare_opts hinted = *o;
    for (int step = 0; rc != 0; step++) {
      /* --limit (threads, workers), --pool-size, --loops */
      FUZZ_CHECK(step < 3, "refused after following three hints: %s", error);
      apply_hint(error, &hinted);
      memset(error, 0xaa, sizeof(error));
      rc = compare_check_threads(&hinted, available, error, sizeof(error));
      FUZZ_CHECK(rc == 0 || rc == CLI_EX_USAGE, "returned %d", rc);
    }
  }
}

/* --svg and --trace of one path are one file; of two, the file system
 * decides (links), but the answer is a yes or a no. */
static void check_outputs(const compare_opts *o) {
  char error[ERROR_SIZE];
  memset(error, 0xaa, sizeof(error));
  int rc = compare_check_outputs(o, error, sizeof(error));
  FUZZ_CHECK(rc == 0 || rc == CLI_EX_USAGE, "returned %d", rc);
  bool both = o->svg_path != NULL && o->trace_path != NULL;
  if (both && strcmp(o->svg_path, o->trace_path) == 0)
    FUZZ_CHECK(rc == CLI_EX_USAGE, "--svg and --trace both '%s' taken",
               o->svg_path);
  FUZZ_CHECK(both || rc == 0, "one output refused: %s", error);
  if (rc != 0)
    fuzz_check_message(error, sizeof(error), false);
}

static void check_library_accepts(const compare_opts *o) {
  const iob_kind *kind = iob_kind_find(o->work);
  if (o->action != CLI_RUN || o->count > 4096 ||
      (kind != &iob_kind_wait && kind != &iob_kind_cpu))
    return;
  for (int k = 0; k < o->nstyles; k++) {
    iob_config config;
    iob_config_init(&config);
    config.style = o->styles[k];
    config.kind = kind;
    config.count = o->count;
    config.duration_ms = o->duration_ms;
    config.max_in_flight = o->limit;
    config.timeout_ms = o->timeout_ms;
    iob_batch *batch = NULL;
    int err = iob_batch_create(&batch, &config);
    FUZZ_CHECK(err == 0, "the library refuses the %s batch: %s",
               iob_style_name(o->styles[k]), iob_strerror(err));
    iob_batch_free(batch);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  args a;
  split(&a, data, size);
  compare_opts o, again;
  char *error = malloc(ERROR_SIZE), *cut = malloc(SHORT_SIZE);
  FUZZ_CHECK(error != NULL && cut != NULL, "out of memory");

  int rc = parse(&a, &o, error, ERROR_SIZE);
  FUZZ_CHECK(rc == 0 || rc == CLI_EX_USAGE, "returned %d", rc);
  int rc2 = parse(&a, &again, cut, SHORT_SIZE);
  FUZZ_CHECK(rc2 == rc, "returned %d, then %d for the same arguments", rc, rc2);
  if (rc != 0) {
    fuzz_check_message(error, ERROR_SIZE, fuzz_strict());
    fuzz_check_truncated(error, cut, SHORT_SIZE);
  } else {
    check_same(&o, &again, "parsed again");
    check_ranges(&a, &o);
    check_round_trip(&o);
    check_threads(&o);
    check_outputs(&o);
    check_library_accepts(&o);
  }
  free(error);
  free(cut);
  free_args(&a);
  return 0;
}
