/* iobound-server's page over HTTP (--http PORT), as a browser or curl
 * meets it: the server runs as a child process, and each request is a
 * connection of this test's own loop that sends its bytes and reads the
 * answer to the end, since the server closes every HTTP connection once
 * it has answered. The server's path is the first argument. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "server-proc.h"

static const char *server_path;

/* ---- the server ---------------------------------------------------------- */

/* Start a server with --port 0 --http 0 and `args` (NULL-terminated), and
 * read both ports from its log: the page's into *http. */
static void start_server_with(server_proc *p, int *http,
                              const char *const *args) {
  const char *argv[16] = {"--port", "0", "--http", "0"};
  for (int k = 0; args[k] != NULL && k < 11; k++)
    argv[k + 4] = args[k];
  server_proc_spawn(p, server_path, argv, NULL);
  server_proc_listening(p);
  const char *at;
  WAIT_UNTIL((at = strstr(p->out.text, "page on http://127.0.0.1:")) &&
                 strchr(at, '\n'),
             5000);
  assert_non_null(at);
  *http = atoi(at + strlen("page on http://127.0.0.1:"));
  assert_cmp(*http, >, 0);
  assert_cmp(*http, <, 65536);
  assert_cmp(*http, !=, p->port);
}

static void start_server(server_proc *p, int *http) {
  start_server_with(p, http, (const char *const[]){NULL});
}

/* ---- a client that sends its bytes and reads to the end ------------------ */

#define ANSWER_MAX (256 * 1024)

typedef struct exchange {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  uv_buf_t request;
  bool connected, ended, closed;
  int error; /* the read's, other than EOF */
  char answer[ANSWER_MAX];
  size_t len;
  uint64_t first_byte_ns, started_ns;
} exchange;

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  exchange *x = h->data;
  *buf =
      uv_buf_init(x->answer + x->len, (unsigned int)(ANSWER_MAX - 1 - x->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  exchange *x = s->data;
  if (nread > 0 && x->len == 0)
    x->first_byte_ns = uv_hrtime();
  if (nread > 0)
    x->len += (size_t)nread;
  x->answer[x->len] = '\0';
  if (nread < 0) {
    x->ended = true;
    x->error = nread == UV_EOF ? 0 : (int)nread;
    uv_read_stop(s);
  } else if (x->len == ANSWER_MAX - 1) {
    fail_msg("an answer of more than %d bytes", ANSWER_MAX);
  }
}

static void on_written(uv_write_t *req, int status) {}

static void on_connected(uv_connect_t *req, int status) {
  exchange *x = req->data;
  assert_int_equal(status, 0);
  x->connected = true;
  uv_read_start((uv_stream_t *)&x->tcp, on_alloc, on_read);
  if (x->request.len > 0)
    assert_code(
        uv_write(&x->write, (uv_stream_t *)&x->tcp, &x->request, 1, on_written),
        0);
}

/* Connect to `port`, send `request` (kept by the caller), and start
 * reading; the answer grows in x->answer until x->ended. */
static exchange *dial(int port, const char *request) {
  exchange *x = calloc(1, sizeof(*x));
  assert_non_null(x);
  struct sockaddr_in addr;
  assert_code(uv_ip4_addr("127.0.0.1", port, &addr), 0);
  assert_code(uv_tcp_init(&the_loop, &x->tcp), 0);
  x->tcp.data = x->connect.data = x;
  x->request = uv_buf_init((char *)request, (unsigned int)strlen(request));
  x->started_ns = uv_hrtime();
  assert_code(uv_tcp_connect(&x->connect, &x->tcp,
                             (const struct sockaddr *)&addr, on_connected),
              0);
  return x;
}

static void on_closed(uv_handle_t *h) {
  exchange *x = h->data;
  free(x);
}

static void hang_up(exchange *x) {
  uv_close((uv_handle_t *)&x->tcp, on_closed);
}

/* Send `request` and read the answer to the end (within `ms`) into
 * `out`. @return the answer's status. */
static int ask(int port, const char *request, char *out, size_t size,
               uint64_t ms) {
  exchange *x = dial(port, request);
  WAIT_UNTIL(x->ended, ms);
  if (!x->ended)
    fail_msg("no whole answer within %llu ms to %s; so far: %s",
             (unsigned long long)ms, request, x->answer);
  assert_int_equal(x->error, 0);
  snprintf(out, size, "%s", x->answer);
  hang_up(x);
  int status = 0;
  if (sscanf(out, "HTTP/1.1 %d ", &status) != 1)
    fail_msg("not an HTTP answer: %s", out);
  return status;
}

/* GET /stats into `out`: it must be answered, 200. */
static void stats_of(int http, char *out, size_t size) {
  assert_int_equal(ask(http, "GET /stats HTTP/1.1\r\n\r\n", out, size, 5000),
                   200);
}

static const char *body_of(const char *answer) {
  const char *at = strstr(answer, "\r\n\r\n");
  assert_non_null(at);
  return at + 4;
}

/* A header's value, up to its "\r\n", into a static buffer; NULL if the
 * head has no such header. */
static const char *header(const char *answer, const char *name) {
  static char value[512];
  char key[64];
  snprintf(key, sizeof(key), "\r\n%s: ", name);
  const char *at = strstr(answer, key);
  if (at == NULL || at > body_of(answer))
    return NULL;
  at += strlen(key);
  snprintf(value, sizeof(value), "%.*s", (int)strcspn(at, "\r"), at);
  return value;
}

static int count_of(const char *text, const char *needle) {
  int n = 0;
  for (const char *at = text; (at = strstr(at, needle)) != NULL; at++)
    n++;
  return n;
}

static int setup(void **state) {
  open_loop();
  return 0;
}

/* A test that fails leaves its loop as it was: the teardown only kills
 * the server and frees its output. */
static int teardown(void **state) { return server_proc_teardown(state); }

/* The end of a test that passed: the server stops cleanly, and the
 * test's loop closes with nothing left on it. */
static void server_down(server_proc *p) {
  server_proc_stop(p);
  close_loop();
}

/* ---- the page --------------------------------------------------------------- */

static void the_page_is_served_whole_and_may_fetch_nothing_elsewhere(void **s) {
  server_proc p;
  int http;
  start_server(&p, &http);
  static char answer[ANSWER_MAX];
  assert_int_equal(ask(http,
                       "GET / HTTP/1.1\r\nHost: localhost\r\n"
                       "User-Agent: test\r\nAccept: */*\r\n\r\n",
                       answer, sizeof(answer), 5000),
                   200);
  assert_string_equal(header(answer, "Content-Type"),
                      "text/html; charset=utf-8");
  assert_string_equal(header(answer, "Connection"), "close");
  const char *body = body_of(answer);
  assert_int_equal(atol(header(answer, "Content-Length")), strlen(body));
  assert_cmp(strncmp(body, "<!doctype html>", 15), ==, 0);
  assert_non_null(strstr(body, "</html>\n"));
  /* Its own script and style, and connections back here: nothing else. */
  assert_non_null(
      strstr(header(answer, "Content-Security-Policy"), "default-src 'none'"));
  assert_non_null(
      strstr(header(answer, "Content-Security-Policy"), "connect-src 'self'"));
  assert_null(strstr(body, "src="));
  assert_int_equal(count_of(body, "href="), count_of(body, "href=\"data:"));
  /* An HTTP/1.0 client is answered too, and the stats are JSON. */
  assert_int_equal(
      ask(http, "GET / HTTP/1.0\r\n\r\n", answer, sizeof(answer), 5000), 200);
  stats_of(http, answer, sizeof(answer));
  assert_string_equal(header(answer, "Content-Type"), "application/json");
  assert_non_null(strstr(body_of(answer), "\"batches_running\":0,"));
  assert_non_null(header(answer, "Date"));
  /* HEAD: the head alone, with the length of what GET would send. */
  assert_int_equal(
      ask(http, "HEAD / HTTP/1.1\r\n\r\n", answer, sizeof(answer), 5000), 200);
  assert_string_equal(body_of(answer), "");
  assert_cmp(atol(header(answer, "Content-Length")), >, 1000);
  server_down(&p);
}

/* ---- runs ------------------------------------------------------------------- */

static void a_run_streams_an_event_per_operation_then_the_report(void **s) {
  server_proc p;
  int http;
  start_server(&p, &http);
  static char answer[ANSWER_MAX];
  assert_int_equal(ask(http, "GET /run?loop+5+100+limit%3D2 HTTP/1.1\r\n\r\n",
                       answer, sizeof(answer), 10000),
                   200);
  assert_string_equal(header(answer, "Content-Type"),
                      "text/event-stream; charset=utf-8");
  assert_null(header(answer, "Content-Length"));
  const char *body = body_of(answer);
  assert_int_equal(count_of(body, "event: op\ndata: {\"op\":"), 5);
  for (int k = 0; k < 5; k++) {
    char op[32];
    snprintf(op, sizeof(op), "data: {\"op\":%d,\"status\":\"OK\"", k);
    assert_int_equal(count_of(body, op), 1);
  }
  /* The report comes last, once, as the line protocol's JSON. */
  const char *report = strstr(body, "event: report\ndata: {\"style\":\"loop\"");
  assert_non_null(report);
  assert_null(strstr(report, "event: op"));
  assert_int_equal(count_of(body, "event: "), 6);
  assert_non_null(
      strstr(report, "\"count\":5,\"duration_ms\":100,\"limit\":2"));
  assert_non_null(strstr(report, "\"status\":\"OK\"}\n\n"));
  assert_int_equal(body[strlen(body) - 1], '\n');
  /* Under limit=2, 5 waits of 100 ms take 3 rounds. */
  double elapsed = json_number(strstr(report, "\"elapsed_ms\""), "elapsed_ms");
  test_assert_ms("5 waits of 100 ms, 2 at a time", elapsed, 299, 2000, __FILE__,
                 __LINE__);
  server_down(&p);
}

/* Sequential, 20 a second, 100 ms each: every arrival waits for the one
 * before, and its time queued counts from when it was due. */
static void
arrivals_at_a_rate_count_their_wait_from_when_each_was_due(void **s) {
  server_proc p;
  int http;
  start_server(&p, &http);
  static char answer[ANSWER_MAX];
  assert_int_equal(ask(http,
                       "GET /run?sequential+5+100+rate=20 HTTP/1.1\r\n\r\n",
                       answer, sizeof(answer), 10000),
                   200);
  const char *body = body_of(answer);
  assert_int_equal(count_of(body, "event: op\n"), 5);
  for (int k = 1; k < 5; k++) {
    char op[32];
    snprintf(op, sizeof(op), "{\"op\":%d,", k);
    const char *at = strstr(body, op);
    assert_non_null(at);
    /* Due every 50 ms from the first; it started once the one before
     * was over, 100 ms apart. */
    double queued = json_number(at, "queued_ms"),
           started = json_number(at, "started_ms");
    test_assert_ms("an arrival's due time", queued, 50.0 * k - 1,
                   50.0 * k + 1000, __FILE__, __LINE__);
    test_assert_ms("its start", started, 100.0 * k - 1, 100.0 * k + 1000,
                   __FILE__, __LINE__);
  }
  const char *report = strstr(body, "event: report\n");
  assert_non_null(report);
  assert_non_null(strstr(report, "\"arrival_rate\":20,"));
  /* The fifth was due at 200 ms and started at 400: 200 ms queued. */
  test_assert_ms("the longest wait", json_number(report, "queued_max_ms"), 195,
                 2000, __FILE__, __LINE__);
  server_down(&p);
}

/* The line protocol takes rate= as the page does. */
static void a_line_client_may_ask_for_arrivals_at_a_rate(void **s) {
  server_proc p;
  int http;
  start_server(&p, &http);
  exchange *x = dial(p.port, "run loop 3 50 rate=20 arrivals=poisson\nquit\n");
  WAIT_UNTIL(x->ended, 10000);
  assert_true(x->ended);
  assert_int_equal(count_of(x->answer, "\n"), 1);
  assert_non_null(
      strstr(x->answer, "{\"style\":\"loop\",\"arrival_rate\":20,"));
  assert_non_null(strstr(x->answer, "\"count\":3,"));
  assert_non_null(strstr(x->answer, "\"status\":\"OK\"}\n"));
  hang_up(x);
  server_down(&p);
}

/* Runs at a rate one after another on one connection: each run's
 * arrivals close their timer after its batch, while the next run may
 * already start (a client's lines are read a kilobyte a turn). */
static void rate_runs_back_to_back_are_each_answered(void **s) {
  server_proc p;
  int http;
  start_server(&p, &http);
  enum { RUNS = 300 };
  static char lines[RUNS * 32 + 8];
  size_t n = 0;
  for (int k = 0; k < RUNS; k++)
    n += (size_t)sprintf(lines + n, "run loop 1 0 rate=1000\n");
  strcpy(lines + n, "quit\n");
  exchange *x = dial(p.port, lines);
  WAIT_UNTIL(x->ended, 30000);
  assert_true(x->ended);
  /* One batch at a time on a connection: a run that comes while one runs
   * is refused; one that comes as one ends starts at once. */
  int reports = count_of(x->answer, "\"arrival_rate\":1000,");
  int busy = count_of(x->answer, "error a batch is already running");
  assert_int_equal(reports + busy, RUNS);
  assert_int_equal(count_of(x->answer, "\n"), RUNS);
  assert_cmp(reports, >=, 2);
  hang_up(x);
  server_down(&p);
}

/* ---- refusals --------------------------------------------------------------- */

static void refusals_get_a_status_and_the_line_protocols_words(void **s) {
  server_proc p;
  int http;
  start_server_with(&p, &http,
                    (const char *const[]){"--max-operations", "100", NULL});
  static char many[8192], long_header[2200], long_line[1200];
  char *at = many + sprintf(many, "GET / HTTP/1.1\r\n");
  for (int k = 0; k < 101; k++)
    at += sprintf(at, "X-%d: y\r\n", k);
  strcpy(at, "\r\n");
  memset(long_header, 'a', sizeof(long_header));
  memcpy(long_header, "GET / HTTP/1.1\r\nX: ", 19);
  strcpy(long_header + sizeof(long_header) - 5, "\r\n\r\n");
  memset(long_line, '+', sizeof(long_line));
  memcpy(long_line, "GET /run?", 9);
  strcpy(long_line + sizeof(long_line) - 15, " HTTP/1.1\r\n\r\n");
  static const struct {
    const char *request;
    int status;
    const char *body;
  } cases[] = {
      {"GET /run?loop+0+5 HTTP/1.1\r\n\r\n", 400,
       "error count must be 1..100000, not '0'\n"},
      {"GET /run?loop+1001+5 HTTP/1.1\r\n\r\n", 400,
       "error stream=1 takes at most 1000 operations\n"},
      {"GET /run?loop+700+5+rate=10 HTTP/1.1\r\n\r\n", 400,
       "error rate=10 spreads 700 operations over 70.0 s, more than 60 s; "
       "raise the rate or lower COUNT\n"},
      {"GET /run?loop+101+5 HTTP/1.1\r\n\r\n", 503,
       "error server busy: this run has 101 operations and 0 of 100 are in "
       "use (--max-operations); try later, or a smaller COUNT\n"},
      {"GET /nothing HTTP/1.1\r\nCookie: a=b\r\n\r\n", 404,
       "error no such page: GET / for the page\n"},
      {"DELETE / HTTP/1.1\r\n\r\n", 405,
       "error only GET and HEAD are answered\n"},
      {"GET / HTTP/1.1\r\nHost: evil.example:8080\r\n\r\n", 403,
       "error Host 'evil.example:8080' is not an address of this server's "
       "nor localhost: a name could lead another site's page here\n"},
      {"GET /run?loop+1+1 HTTP/1.1\r\nSec-Fetch-Site: cross-site\r\n\r\n", 403,
       "error a run starts from this server's page, not from another "
       "site's\n"},
      {"GET / HTTP/3\r\n\r\n", 505,
       "error only HTTP/1.0 and HTTP/1.1 are spoken\n"},
      {"\x16\x03\x01\x02\x05\x01\r\n\r\n", 400,
       "error the first line is not 'METHOD TARGET HTTP/1.1'\n"},
      {many, 431, "error more than 100 header lines\n"},
      {long_line, 414,
       "error the first line is too long (at most 1025 bytes)\n"},
  };
  static char answer[ANSWER_MAX];
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    int status = ask(http, cases[k].request, answer, sizeof(answer), 5000);
    if (status != cases[k].status)
      fail_msg("case %zu: %d, not %d: %s", k, status, cases[k].status, answer);
    assert_string_equal(body_of(answer), cases[k].body);
    assert_string_equal(header(answer, "Connection"), "close");
    if (status == 405)
      assert_string_equal(header(answer, "Allow"), "GET, HEAD");
  }
  /* A header line too long to judge (a browser's cookies) is skipped. */
  assert_int_equal(ask(http, long_header, answer, sizeof(answer), 5000), 200);
  /* Nothing was left running, and the busy refusal was counted. */
  stats_of(http, answer, sizeof(answer));
  assert_non_null(strstr(answer, "\"batches_running\":0,"));
  assert_non_null(strstr(answer, "\"refused_runs\":1,"));
  server_down(&p);
}

/* Past --max-connections, a connection to the page's port is told so in
 * HTTP; and one that asks nothing is told of the idle timeout in HTTP. */
static void the_caps_are_told_in_http_on_the_pages_port(void **s) {
  server_proc p;
  int http;
  start_server_with(&p, &http,
                    (const char *const[]){"--max-connections", "1",
                                          "--idle-timeout", "2000", NULL});
  exchange *idle = dial(http, "");
  WAIT_UNTIL(idle->connected, 5000);
  pump_for(50);
  static char answer[ANSWER_MAX];
  assert_int_equal(
      ask(http, "GET / HTTP/1.1\r\n\r\n", answer, sizeof(answer), 5000), 503);
  assert_string_equal(body_of(answer), "error too many connections (max 1)\n");
  WAIT_UNTIL(idle->ended, 10000);
  assert_true(idle->ended);
  assert_int_equal(
      strncmp(idle->answer, "HTTP/1.1 408 Request Timeout\r\n", 30), 0);
  assert_string_equal(body_of(idle->answer),
                      "error idle timeout: no request for 2000 ms "
                      "(--idle-timeout)\n");
  hang_up(idle);
  server_down(&p);
}

/* A header line every 300 ms, for ever (slowloris). */
typedef struct trickle {
  uv_timer_t timer;
  exchange *x;
  uv_write_t write;
  int sent;
} trickle;

static void on_trickle(uv_timer_t *t) {
  trickle *k = t->data;
  static uv_buf_t line = {.base = "X-Slow: y\r\n", .len = 11};
  if (!k->x->ended && uv_is_writable((uv_stream_t *)&k->x->tcp) &&
      uv_write(&k->write, (uv_stream_t *)&k->x->tcp, &line, 1, on_written) == 0)
    k->sent++;
}

/* The head of an HTTP request is due within --idle-timeout of the
 * connection: header lines that keep coming do not hold it open. */
static void a_head_that_never_ends_is_cut_at_the_idle_timeout(void **s) {
  server_proc p;
  int http;
  start_server_with(&p, &http,
                    (const char *const[]){"--idle-timeout", "1000", NULL});
  trickle k = {.x = dial(http, "GET / HTTP/1.1\r\n")};
  assert_code(uv_timer_init(&the_loop, &k.timer), 0);
  k.timer.data = &k;
  assert_code(uv_timer_start(&k.timer, on_trickle, 300, 300), 0);
  WAIT_UNTIL(k.x->ended, 10000);
  uv_close((uv_handle_t *)&k.timer, NULL);
  assert_true(k.x->ended);
  assert_int_equal(strncmp(k.x->answer, "HTTP/1.1 408 Request Timeout\r\n", 30),
                   0);
  assert_cmp(k.sent, >=, 2);
  assert_ms_below((k.x->first_byte_ns - k.x->started_ns) / 1e6, 5000);
  hang_up(k.x);
  server_down(&p);
}

/* A browser that leaves mid-run (a tab closed, a page reloaded) stops
 * its run: the server notices when it next writes to it. */
static void a_client_that_leaves_mid_run_cancels_it(void **s) {
  server_proc p;
  int http;
  start_server(&p, &http);
  exchange *x = dial(http, "GET /run?loop+3+10000+rate=20 HTTP/1.1\r\n\r\n");
  WAIT_UNTIL(strstr(x->answer, "\r\n\r\n") != NULL, 5000);
  assert_non_null(strstr(x->answer, "HTTP/1.1 200 OK\r\n"));
  pump_for(200); /* all three have arrived */
  hang_up(x);
  uint64_t left = uv_hrtime();
  WAIT_UNTIL(strstr(p.out.text, "cancelled batch") != NULL, 5000);
  if (strstr(p.out.text, "cancelled batch for client 1 (0 of 3") == NULL)
    fail_msg("the run was not cancelled before any of its 10 s waits "
             "ended: %s",
             p.out.text);
  /* The server looks every 250 ms, and two writes tell. */
  assert_ms_below((uv_hrtime() - left) / 1e6, 2000);
  static char answer[ANSWER_MAX];
  stats_of(http, answer, sizeof(answer));
  assert_non_null(strstr(answer, "\"batches_running\":0,"));
  assert_non_null(strstr(answer, "\"operations_running\":0,"));
  server_down(&p);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s SERVER\n", argv[0]);
    return 1;
  }
  server_path = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          the_page_is_served_whole_and_may_fetch_nothing_elsewhere, setup,
          teardown),
      cmocka_unit_test_setup_teardown(
          a_run_streams_an_event_per_operation_then_the_report, setup,
          teardown),
      cmocka_unit_test_setup_teardown(
          arrivals_at_a_rate_count_their_wait_from_when_each_was_due, setup,
          teardown),
      cmocka_unit_test_setup_teardown(
          a_line_client_may_ask_for_arrivals_at_a_rate, setup, teardown),
      cmocka_unit_test_setup_teardown(rate_runs_back_to_back_are_each_answered,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          refusals_get_a_status_and_the_line_protocols_words, setup, teardown),
      cmocka_unit_test_setup_teardown(
          the_caps_are_told_in_http_on_the_pages_port, setup, teardown),
      cmocka_unit_test_setup_teardown(a_client_that_leaves_mid_run_cancels_it,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          a_head_that_never_ends_is_cut_at_the_idle_timeout, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
