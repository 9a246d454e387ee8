/* libFuzzer harness of iobound-server's request parser (examples/
 * server-args.c). The input is one request line as the server hands it
 * over: the bytes before the first newline. With server_parse_request_n()
 * (issue 11: a NUL must not cut a request short) the parser gets them
 * all, NULs included; without it, server_parse_request() gets them as a
 * C string, which a NUL ends early.
 *
 * Beyond "no crash" it checks server.h's contract:
 * - the parser returns 0 or -1, and a refusal has a message, ended within
 *   the buffer, and the same message cut short in a buffer of 16 bytes;
 *   with server_parse_request_n(), a message never holds a control byte
 *   (what the client sent is quoted and escaped), and a line with a
 *   control byte other than a tab (and a final '\r') is refused;
 * - a line longer than SERVER_LINE_MAX (without a final '\r') is refused;
 * - "nothing to do" is a blank line; ping, stats and quit are the word
 *   alone;
 * - a run is within the server's bounds: a style of the library, count
 *   1..SERVER_COUNT_MAX, duration and timeout up to
 *   SERVER_DURATION_MAX_MS, limit up to SERVER_COUNT_MAX, work a kind of
 *   the library's (one that needs no target: the library accepts the
 *   batch, below) and work that blocks (cpu) only on threads or loops, at
 *   most SERVER_THREADS_MAX threads at once,
 *   stream only up to SERVER_STREAM_MAX operations, every other field of
 *   the config at iob_config_init()'s default;
 * - parsing again gives the same request, and so does the canonical line
 *   written back from it;
 * - rate up to SERVER_RATE_MAX, arrivals=poisson only with a rate, and
 *   arrivals that span at most SERVER_DURATION_MAX_MS;
 * - the library accepts the batch (iob_batch_create);
 * - the same bytes as an HTTP request's first line
 *   (server_parse_http()): a status among those server.h lists, 200 only
 *   for a GET, a refusal with a message, and a run that is within the
 *   same bounds and always streams. */
#include <inttypes.h>

#include "../../examples/server.h"
#include "fuzz.h"

#define ERROR_SIZE 256 /* as iobound-server's */
#define SHORT_SIZE 16

/* Found at link time, so that the harness builds with server-args.c
 * before and after it has the function; once every tree has it, call it
 * plainly. */
int server_parse_request_n(const char *line, size_t len, request *req,
                           char *error, size_t error_size)
    __attribute__((weak));

static bool whole_lines(void) { return server_parse_request_n != NULL; }

/* Parse with the message buffer exactly `size` bytes, filled so that a
 * message never written shows. */
static int parse(const char *line, size_t len, request *r, char *error,
                 size_t size) {
  memset(error, 0xaa, size);
  if (whole_lines())
    return server_parse_request_n(line, len, r, error, size);
  return server_parse_request(line, r, error, size);
}

static void check_same(const request *x, const request *y, const char *what) {
  const iob_config *a = &x->config, *b = &y->config;
  FUZZ_CHECK(x->kind == y->kind, "%s: kind %d, then %d", what, (int)x->kind,
             (int)y->kind);
  if (x->kind != REQUEST_RUN)
    return;
  FUZZ_CHECK(x->stream == y->stream && x->rate == y->rate &&
                 x->poisson == y->poisson && a->style == b->style &&
                 a->kind == b->kind && a->target == b->target &&
                 a->count == b->count && a->duration_ms == b->duration_ms &&
                 a->durations_ms == b->durations_ms &&
                 a->max_in_flight == b->max_in_flight && a->on_op == b->on_op &&
                 a->timeout_ms == b->timeout_ms &&
                 a->fail_fast == b->fail_fast &&
                 a->style_options == b->style_options && a->open == b->open &&
                 a->data == b->data,
             "%s: another run", what);
}

/* The words of `line` (spaces and tabs between them): how many, and
 * whether the first is `first`. */
static size_t words(const char *line, size_t len, const char *first,
                    bool *first_is) {
  char *copy = fuzz_strndup(line, len), *save = NULL;
  size_t n = 0;
  *first_is = false;
  for (char *w = strtok_r(copy, " \t", &save); w != NULL;
       w = strtok_r(NULL, " \t", &save), n++)
    if (n == 0)
      *first_is = strcmp(w, first) == 0;
  free(copy);
  return n;
}

static void check_run(const request *r) {
  const iob_config *c = &r->config;
  iob_config defaults;
  iob_config_init(&defaults);
  FUZZ_CHECK(c->style != NULL &&
                 iob_style_find(iob_style_name(c->style)) == c->style,
             "a style not the library's");
  FUZZ_CHECK(c->kind != NULL && iob_kind_find(c->kind->name) == c->kind,
             "work %s, not a kind of the library's",
             c->kind ? c->kind->name : "(none)");
  FUZZ_CHECK(c->count >= 1 && c->count <= SERVER_COUNT_MAX, "count %" PRIu32,
             c->count);
  FUZZ_CHECK(c->duration_ms <= SERVER_DURATION_MAX_MS, "duration %" PRIu64,
             c->duration_ms);
  FUZZ_CHECK(c->timeout_ms <= SERVER_DURATION_MAX_MS, "timeout %" PRIu64,
             c->timeout_ms);
  FUZZ_CHECK(c->max_in_flight <= SERVER_COUNT_MAX, "limit %" PRIu32,
             c->max_in_flight);
  unsigned flags = iob_style_flags(c->style);
  if (cli_kind_blocks(c->kind))
    FUZZ_CHECK(flags & (IOB_STYLE_ON_THREADS | IOB_STYLE_LOOPS),
               "work=%s on the loop (%s)", c->kind->name,
               iob_style_name(c->style));
  uint32_t at_once = c->max_in_flight != 0 && c->max_in_flight < c->count
                         ? c->max_in_flight
                         : c->count;
  if (flags & IOB_STYLE_THREAD_EACH)
    FUZZ_CHECK(at_once <= SERVER_THREADS_MAX,
               "%" PRIu32 " threads at once in the %s style", at_once,
               iob_style_name(c->style));
  if (r->stream)
    FUZZ_CHECK(c->count <= SERVER_STREAM_MAX, "streaming %" PRIu32 " ops",
               c->count);
  FUZZ_CHECK(r->rate <= SERVER_RATE_MAX, "rate %" PRIu32, r->rate);
  FUZZ_CHECK(!r->poisson || r->rate != 0, "poisson arrivals without a rate");
  FUZZ_CHECK(r->rate == 0 || (uint64_t)c->count * 1000 <=
                                 (uint64_t)r->rate * SERVER_DURATION_MAX_MS,
             "%" PRIu32 " arrivals at %" PRIu32 " a second", c->count, r->rate);
  FUZZ_CHECK(c->target == defaults.target &&
                 c->durations_ms == defaults.durations_ms &&
                 c->on_op == defaults.on_op &&
                 c->fail_fast == defaults.fail_fast &&
                 c->style_options == defaults.style_options &&
                 c->open == defaults.open && c->data == defaults.data,
             "a field no request sets is not at its default");
}

/* Write the run back as the canonical line, and parse it. */
static void check_round_trip(const request *r) {
  const iob_config *c = &r->config;
  char line[SERVER_LINE_MAX + 1];
  int n = snprintf(line, sizeof(line),
                   "run %s %" PRIu32 " %" PRIu64 " limit=%" PRIu32
                   " timeout=%" PRIu64 " work=%s stream=%d rate=%" PRIu32 "%s",
                   iob_style_name(c->style), c->count, c->duration_ms,
                   c->max_in_flight, c->timeout_ms, c->kind->name,
                   r->stream ? 1 : 0, r->rate,
                   r->poisson ? " arrivals=poisson" : "");
  FUZZ_CHECK(n > 0 && (size_t)n < sizeof(line), "the line written back");
  request again;
  char error[ERROR_SIZE];
  int rc = parse(line, (size_t)n, &again, error, sizeof(error));
  FUZZ_CHECK(rc == 0, "'%s' is refused: %s", line, error);
  check_same(r, &again, line);
}

static void check_library_accepts(const request *r) {
  iob_batch *batch = NULL;
  int err = iob_batch_create(&batch, &r->config);
  FUZZ_CHECK(err == 0, "the library refuses the batch: %s", iob_strerror(err));
  iob_batch_free(batch);
}

/* The line as an HTTP request's first line. */
static void check_http(const char *line, size_t len) {
  http_route route;
  request r;
  bool head_only;
  char error[ERROR_SIZE];
  memset(error, 0xaa, sizeof(error));
  int status = server_parse_http(line, len, &route, &head_only, &r, error,
                                 sizeof(error));
  FUZZ_CHECK(status == 200 || status == 400 || status == 404 || status == 405 ||
                 status == 414 || status == 505,
             "HTTP status %d", status);
  if (status != 200) {
    fuzz_check_message(error, sizeof(error), true);
    return;
  }
  FUZZ_CHECK(len >= 4 && (memcmp(line, head_only ? "HEAD" : "GET ", 4) == 0),
             "'%s' answered though not a GET or a HEAD", line);
  FUZZ_CHECK(route == HTTP_PAGE || route == HTTP_RUN || route == HTTP_STATS,
             "route %d", (int)route);
  if (route == HTTP_RUN) {
    FUZZ_CHECK(r.kind == REQUEST_RUN && r.stream, "a page's run that does "
                                                  "not stream");
    FUZZ_CHECK(!head_only, "a run asked for with HEAD");
    check_run(&r);
    check_library_accepts(&r);
  }
  /* As a header line: 200 or 403, and a refusal says why. */
  memset(error, 0xaa, sizeof(error));
  status = server_check_http_header(line, len, HTTP_RUN, error, sizeof(error));
  FUZZ_CHECK(status == 200 || status == 403, "header status %d", status);
  if (status == 403)
    fuzz_check_message(error, sizeof(error), true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *newline = memchr(data, '\n', size);
  size_t len = newline ? (size_t)(newline - data) : size;
  char *line = fuzz_strndup(data, len);
  char *error = malloc(ERROR_SIZE), *cut = malloc(SHORT_SIZE);
  FUZZ_CHECK(error != NULL && cut != NULL, "out of memory");
  if (!whole_lines())
    len = strlen(line); /* all that server_parse_request() sees */
  check_http(line, len);
  request r, again;

  int rc = parse(line, len, &r, error, ERROR_SIZE);
  FUZZ_CHECK(rc == 0 || rc == -1, "returned %d", rc);
  int rc2 = parse(line, len, &again, cut, SHORT_SIZE);
  FUZZ_CHECK(rc2 == rc, "returned %d, then %d for the same line", rc, rc2);

  if (len > 0 && line[len - 1] == '\r')
    len--;
  if (len > SERVER_LINE_MAX)
    FUZZ_CHECK(rc == -1, "a line of %zu bytes is taken", len);
  if (whole_lines())
    for (size_t k = 0; k < len; k++) {
      unsigned char ch = (unsigned char)line[k];
      FUZZ_CHECK(rc == -1 || !((ch < 0x20 && ch != '\t') || ch == 0x7f),
                 "a line with the control byte \\x%02x at %zu is taken", ch, k);
    }
  if (rc != 0) {
    fuzz_check_message(error, ERROR_SIZE, whole_lines() || fuzz_strict());
    fuzz_check_truncated(error, cut, SHORT_SIZE);
  } else {
    bool first_is;
    check_same(&r, &again, "parsed again");
    switch (r.kind) {
    case REQUEST_NONE:
      FUZZ_CHECK(words(line, len, "", &first_is) == 0,
                 "nothing to do for a line with words");
      break;
    case REQUEST_PING:
    case REQUEST_STATS:
    case REQUEST_QUIT: {
      const char *name = r.kind == REQUEST_PING    ? "ping"
                         : r.kind == REQUEST_STATS ? "stats"
                                                   : "quit";
      FUZZ_CHECK(words(line, len, name, &first_is) == 1 && first_is,
                 "'%s' taken for %s", line, name);
      break;
    }
    case REQUEST_RUN:
      FUZZ_CHECK(words(line, len, "run", &first_is) >= 4 && first_is,
                 "'%s' taken for a run", line);
      check_run(&r);
      check_round_trip(&r);
      check_library_accepts(&r);
      break;
    default:
      FUZZ_CHECK(false, "request kind %d", (int)r.kind);
    }
  }
  free(line);
  free(error);
  free(cut);
  return 0;
}
