/* Queries on a real PostgreSQL server, started for the test by
 * pg-test.sh (IOB_PG_DIR holds its socket), through iobound-pg's kind:
 * every style, one target shared by batches at once, a wrong connection
 * string, a refused connection over TCP, a query error, a COPY, the
 * server gone mid-batch, timeouts and bad input. Each operation's status,
 * message and rows land in its outcome; nothing hangs, every loop closes.
 *
 * First, what needs no PostgreSQL: connect_timeout against servers of the
 * test's own on loopback, one that never answers and one that refuses
 * late. Those run whatever the machine has; without a server the rest
 * are skipped, and the program exits 77 (skipped) once the first pass,
 * or 1 if they fail. (Without libpq, test/meson.build skips it.) */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "iobound/pg.h"
#include <libpq-fe.h>

static char conninfo[512];
static const char *server_dir, *server_script;

/* ---- running a batch of queries ----------------------------------------- */

typedef struct outcome {
  iob_report report;
  int status[32];        /* each operation's status */
  char message[32][320]; /* and its message, "" if none */
  uint64_t rows[32];     /* and its value: the rows the query brought */
} outcome;

/* Called on the loop thread while the batch runs, e.g. to stop the server. */
typedef void (*meanwhile_fn)(uv_loop_t *loop);

static iob_config queries_to(const iob_pg_target *t, const iob_style *style,
                             uint32_t count) {
  iob_config c = config_of(style, count, 0);
  c.kind = &iob_kind_pg;
  c.target = t;
  return c;
}

/* Each operation's outcome: its record's status, its message, its rows. */
static void read_outcomes(const iob_batch *b, outcome *out) {
  assert_code(iob_batch_report(b, &out->report), 0);
  assert_ptr_equal(out->report.kind, &iob_kind_pg);
  uint32_t n;
  const iob_record *rec = iob_batch_records(b, &n);
  assert_cmp(n, <=, 32);
  for (uint32_t i = 0; i < n; i++) {
    iob_outcome o;
    assert_code(iob_batch_outcome(b, i, &o), 0);
    assert_int_equal(o.status, rec[i].status);
    out->status[i] = o.status;
    snprintf(out->message[i], sizeof(out->message[i]), "%s",
             o.message ? o.message : "");
    out->rows[i] = o.value;
  }
}

static void run_queries(const char *where, const char *query,
                        const iob_style *style, uint32_t count,
                        uint64_t timeout_ms, meanwhile_fn meanwhile,
                        outcome *out) {
  assert_cmp(count, <=, 32);
  iob_pg_target *t;
  assert_code(iob_pg_target_create(&t, where, query), 0);
  iob_config c = queries_to(t, style, count);
  c.timeout_ms = timeout_ms;
  test_loop loop;
  test_loop_init(&loop);
  iob_batch *b = test_loop_start(&loop, &c, NULL);
  if (meanwhile != NULL)
    meanwhile(&loop.loop);
  test_loop_run(&loop);
  test_loop_close(&loop);
  read_outcomes(b, out);
  assert_code(iob_batch_free(b), 0);
  iob_pg_target_destroy(t);
}

static void queries_overlap_on_the_loop_and_on_threads(void **state) {
  outcome o;
  const iob_style *overlapping[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    run_queries(conninfo, "SELECT pg_sleep(0.2)", overlapping[k], 10, 0, NULL,
                &o);
    assert_int_equal(o.report.failed, 0);
    for (int i = 0; i < 10; i++) {
      assert_string_equal(o.message[i], "");
      assert_int_equal(o.rows[i], 1);
    }
    printf("%s: 10 queries of 200 ms in %.1f ms\n",
           iob_style_name(overlapping[k]), MS(o.report.elapsed_ns));
    /* Not 10 x 200 ms. */
    assert_ms_between(MS(o.report.elapsed_ns), 199, 2000);
    assert_cmp(o.report.peak_in_flight, >=, 5);
  }
  /* One at a time: three queries take three times as long. */
  run_queries(conninfo, "SELECT pg_sleep(0.1)", &iob_style_sequential, 3, 0,
              NULL, &o);
  assert_int_equal(o.report.failed, 0);
  assert_int_equal(o.report.peak_in_flight, 1);
  assert_ms_at_least(MS(o.report.elapsed_ns), 3 * 99);
  /* The pool runs as many at once as it has threads. */
  uint32_t n = iob_pool_size() + 1;
  run_queries(conninfo, "SELECT pg_sleep(0.1)", &iob_style_pool, n, 0, NULL,
              &o);
  assert_int_equal(o.report.failed, 0);
  assert_cmp(o.report.peak_in_flight, <=, iob_pool_size());
  assert_ms_at_least(MS(o.report.elapsed_ns), 2 * 99);
}

/* A target is read only: a batch in every style uses one at once, on one
 * loop; each query brings its own rows. */
static void one_target_serves_several_batches_at_once(void **state) {
  iob_pg_target *t;
  assert_code(
      iob_pg_target_create(&t, conninfo, "SELECT generate_series(1, 3)"), 0);
  test_loop loop;
  test_loop_init(&loop);
  iob_batch *b[STYLES_MAX];
  size_t n = style_count();
  for (size_t k = 0; k < n; k++) {
    iob_config c = queries_to(t, iob_style_at(k), 4);
    b[k] = test_loop_start(&loop, &c, NULL);
  }
  test_loop_run(&loop);
  test_loop_close(&loop);
  for (size_t k = 0; k < n; k++) {
    outcome o;
    read_outcomes(b[k], &o);
    assert_int_equal(o.report.failed, 0);
    for (int i = 0; i < 4; i++)
      assert_int_equal(o.rows[i], 3);
    assert_code(iob_batch_free(b[k]), 0);
  }
  iob_pg_target_destroy(t);
}

/* Two batches on one loop share a target; cancelling one midway settles
 * its own queries only, and the other's all bring their rows. */
static void
cancelling_one_of_two_batches_on_a_target_spares_the_other(void **state) {
  iob_pg_target *t;
  assert_code(iob_pg_target_create(&t, conninfo, "SELECT 1 FROM pg_sleep(0.3)"),
              0);
  test_loop loop;
  test_loop_init(&loop);
  iob_config doomed = queries_to(t, &iob_style_loop, 4);
  iob_config kept = queries_to(t, &iob_style_loop, 4);
  iob_batch *a = test_loop_start(&loop, &doomed, NULL);
  iob_batch *b = test_loop_start(&loop, &kept, NULL);
  test_loop_cancel_after(&loop, a, 100);
  test_loop_run(&loop);
  test_loop_close(&loop);
  outcome oa, ob;
  read_outcomes(a, &oa);
  read_outcomes(b, &ob);
  assert_code(oa.report.status, IOB_ECANCELED);
  assert_int_equal(ob.report.status, 0);
  assert_int_equal(ob.report.failed, 0);
  for (int i = 0; i < 4; i++) {
    assert_code(oa.status[i], IOB_ECANCELED);
    assert_int_equal(ob.rows[i], 1);
  }
  assert_code(iob_batch_free(a), 0);
  assert_code(iob_batch_free(b), 0);
  iob_pg_target_destroy(t);
}

static void a_wrong_connection_string_fails_each_operation_with_why(void **s) {
  char nodb[600], nosocket[600];
  snprintf(nodb, sizeof(nodb), "%s dbname=no_such_db", conninfo);
  snprintf(nosocket, sizeof(nosocket), "host=%s/nowhere user=postgres",
           server_dir);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    outcome o;
    run_queries(nodb, "SELECT 1", style, 3, 0, NULL, &o);
    assert_int_equal(o.report.failed, 3);
    for (int i = 0; i < 3; i++) {
      assert_code(o.status[i], UV_ECONNREFUSED);
      assert_non_null(strstr(o.message[i], "no_such_db"));
    }
    run_queries(nosocket, "SELECT 1", style, 2, 0, NULL, &o);
    for (int i = 0; i < 2; i++) {
      assert_code(o.status[i], UV_ECONNREFUSED);
      assert_non_null(strstr(o.message[i], "nowhere"));
    }
  }
}

/* A port of this machine's that nothing listens on. */
static int closed_port(void) {
  int port;
  close(test_loopback_socket(false, &port));
  return port;
}

/* Over TCP, a refused connection is refused in every style, with libpq's
 * words: on the loop, libuv sees only a failed socket (UV_EBADF), and
 * libpq is asked why. */
static void a_refused_tcp_connection_says_why_in_every_style(void **state) {
  char where[128];
  snprintf(where, sizeof(where),
           "host=127.0.0.1 port=%d user=postgres dbname=postgres "
           "connect_timeout=5",
           closed_port());
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    outcome o;
    run_queries(where, "SELECT 1", style, 3, 0, NULL, &o);
    for (int i = 0; i < 3; i++) {
      assert_code(o.status[i], UV_ECONNREFUSED);
      assert_non_null(strstr(o.message[i], "refused"));
    }
  }
}

/* ---- connect_timeout, against servers of the test's own ---------------- */

/* libpq enforces connect_timeout only in its blocking connect; the kind,
 * which connects with PQconnectPoll(), enforces it itself. A "silent"
 * server is a listening socket that never accepts: the kernel completes
 * the handshake, and then nothing answers, as from a server that hangs. */

/* How long operation i of b took, start to end. */
static double op_ms(const iob_batch *b, uint32_t i) {
  uint32_t n;
  const iob_record *rec = iob_batch_records(b, &n);
  assert_cmp(i, <, n);
  return MS(rec[i].finished_ns - rec[i].started_ns);
}

/* Each of the batch's `count` operations ended with `status` and a
 * message that has `says` in it (NULL: no message), after lo..hi ms. */
static void expect_each(const iob_batch *b, const iob_style *style,
                        uint32_t count, int status, const char *says, double lo,
                        double hi) {
  outcome o;
  read_outcomes(b, &o);
  for (uint32_t i = 0; i < count; i++) {
    print_message("%-10s #%u: %s after %.1f ms: \"%s\"\n",
                  iob_style_name(style), i, iob_strerror(o.status[i]),
                  op_ms(b, i), o.message[i]);
    assert_int_equal(o.status[i], status);
    assert_ms_between(op_ms(b, i), lo, hi);
    if (says == NULL)
      assert_string_equal(o.message[i], "");
    else if (strstr(o.message[i], says) == NULL)
      fail_msg("%s #%u: message \"%s\" does not say \"%s\"",
               iob_style_name(style), i, o.message[i], says);
  }
}

/* `count` queries to `where` in each of `styles`, a batch each, all at
 * once on one loop that must close; `timeout_ms` for each operation (0:
 * none). The batches, finished, go to b[] for the test to read and free. */
static void run_at_once(const char *where, const iob_style *const *styles,
                        size_t n, uint32_t count, uint64_t timeout_ms,
                        iob_batch **b) {
  iob_pg_target *t;
  assert_code(iob_pg_target_create(&t, where, "SELECT 1"), 0);
  test_loop loop;
  test_loop_init(&loop);
  for (size_t k = 0; k < n; k++) {
    iob_config c = queries_to(t, styles[k], count);
    c.timeout_ms = timeout_ms;
    b[k] = test_loop_start(&loop, &c, NULL);
  }
  test_loop_run(&loop);
  test_loop_close(&loop);
  iob_pg_target_destroy(t);
}

/* Every style, in styles[]; returns how many. */
static size_t every_style(const iob_style *styles[STYLES_MAX]) {
  size_t n = style_count();
  for (size_t k = 0; k < STYLES_MAX; k++)
    styles[k] = k < n ? iob_style_at(k) : NULL;
  return n;
}

/* Every style gives up on a server that never answers after
 * connect_timeout=2, as psql does, not at the operation's timeout (6 s
 * here, the safety net that ended them before), saying so. */
static void
a_silent_server_is_given_up_after_connect_timeout_in_every_style(void **state) {
  int port;
  int silent = test_loopback_socket(true, &port);
  char where[160];
  snprintf(where, sizeof(where),
           "host=127.0.0.1 port=%d user=postgres dbname=postgres "
           "connect_timeout=2",
           port);
  const iob_style *styles[STYLES_MAX];
  size_t n = every_style(styles);
  iob_batch *b[STYLES_MAX];
  run_at_once(where, styles, n, 2, 6000, b);
  char says[96];
  snprintf(says, sizeof(says),
           "port %d failed: connection attempt timed out after 2 s "
           "(connect_timeout)",
           port);
  for (size_t k = 0; k < n; k++) {
    expect_each(b[k], styles[k], 2, IOB_ETIMEDOUT, says, 1995, 3000);
    assert_code(iob_batch_free(b[k]), 0);
  }
  close(silent);
}

/* The loop style and the threads style: the kind's two ways to connect. */
static const iob_style *const both_ways[] = {&iob_style_loop,
                                             &iob_style_threads};

/* As libpq: connect_timeout=1 waits 2 s ("to prevent possibly waiting
 * hardly-at-all"), and PGCONNECT_TIMEOUT counts when the string has
 * none. (It is set before the batches start and unset once their loop
 * has closed: no thread reads the environment while it changes.) */
static void
connect_timeout_1_from_the_environment_waits_2_s_as_in_libpq(void **state) {
  int port;
  int silent = test_loopback_socket(true, &port);
  char where[128];
  snprintf(where, sizeof(where),
           "host=127.0.0.1 port=%d user=postgres dbname=postgres", port);
  assert_int_equal(setenv("PGCONNECT_TIMEOUT", "1", 1), 0);
  iob_batch *b[2];
  run_at_once(where, both_ways, 2, 1, 6000, b);
  assert_int_equal(unsetenv("PGCONNECT_TIMEOUT"), 0);
  for (size_t k = 0; k < 2; k++) {
    expect_each(b[k], both_ways[k], 1, IOB_ETIMEDOUT, "timed out after 2 s",
                1995, 3000);
    assert_code(iob_batch_free(b[k]), 0);
  }
  close(silent);
}

/* A server that refuses late, as one starting up: `delay_ms` after it
 * accepts a connection it answers with an ErrorResponse of SQLSTATE 57P03
 * ("cannot connect now"), on which libpq tries the next host. It reads
 * and drops what comes until the client hangs up, and closes once the
 * test's batches have all ended. */
typedef struct late_server {
  uv_tcp_t tcp;
  int port;
  uint64_t delay_ms;
  int batches; /* still running */
} late_server;

/* An ErrorResponse's fields (severity, code, message), each ended by a
 * 0, and the 0 that ends them all: the literal's own. */
static const char late_refusal[] = "SFATAL\0VFATAL\0C57P03\0"
                                   "Mthe database system is starting up\0";

typedef struct late_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t write;
  char refusal[1 + 4 + sizeof(late_refusal)]; /* 'E', length, fields */
  int open;                                   /* handles not yet closed */
} late_conn;

static void late_free(uv_handle_t *handle) {
  late_conn *c = handle->data;
  if (--c->open == 0)
    free(c);
}

static void late_hang_up(late_conn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
    uv_close((uv_handle_t *)&c->tcp, late_free);
    uv_close((uv_handle_t *)&c->timer, late_free);
  }
}

static void late_alloc(uv_handle_t *handle, size_t size, uv_buf_t *buf) {
  static char sink[4096]; /* what comes is dropped */
  *buf = uv_buf_init(sink, sizeof(sink));
}

static void late_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
  if (n < 0) /* the client hung up */
    late_hang_up(stream->data);
}

static void late_written(uv_write_t *req, int status) {}

static void late_refuse(uv_timer_t *timer) {
  late_conn *c = timer->data;
  uint32_t length = htonl(4 + sizeof(late_refusal)); /* itself included */
  c->refusal[0] = 'E';
  memcpy(c->refusal + 1, &length, 4);
  memcpy(c->refusal + 5, late_refusal, sizeof(late_refusal));
  uv_buf_t buf = uv_buf_init(c->refusal, sizeof(c->refusal));
  uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, late_written);
}

static void late_accept(uv_stream_t *server, int status) {
  assert_int_equal(status, 0);
  late_server *s = server->data;
  late_conn *c = calloc(1, sizeof(*c));
  assert_non_null(c);
  uv_tcp_init(server->loop, &c->tcp);
  uv_timer_init(server->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open = 2;
  assert_code(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
  uv_read_start((uv_stream_t *)&c->tcp, late_alloc, late_read);
  uv_timer_start(&c->timer, late_refuse, s->delay_ms, 0);
}

static void late_server_start(late_server *s, uv_loop_t *loop) {
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(loop, &s->tcp);
  s->tcp.data = s;
  assert_code(uv_tcp_bind(&s->tcp, (struct sockaddr *)&a, 0), 0);
  assert_code(uv_listen((uv_stream_t *)&s->tcp, 16, late_accept), 0);
  int len = sizeof(a);
  assert_code(uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&a, &len), 0);
  s->port = ntohs(a.sin_port);
}

static void late_server_batch_ended(iob_batch *b, int status) {
  late_server *s = iob_batch_data(b);
  if (--s->batches == 0)
    uv_close((uv_handle_t *)&s->tcp, NULL);
}

/* libpq gives each host its own connect_timeout, counted from when it
 * moves there: the first host refuses after 1 s, the second never
 * answers, and the operation ends 1 + 2 s after it began, not 2 s (one
 * clock for the whole connection), with both hosts' words. */
static void each_host_gets_its_own_connect_timeout_as_in_libpq(void **state) {
  int port;
  int silent = test_loopback_socket(true, &port);
  test_loop loop;
  test_loop_init(&loop);
  late_server late = {.delay_ms = 1000, .batches = 2};
  late_server_start(&late, &loop.loop);
  char where[192];
  snprintf(where, sizeof(where),
           "host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres "
           "dbname=postgres sslmode=disable gssencmode=disable "
           "connect_timeout=2",
           late.port, port);
  iob_pg_target *t;
  assert_code(iob_pg_target_create(&t, where, "SELECT 1"), 0);
  iob_batch *b[2];
  for (size_t k = 0; k < 2; k++) {
    iob_config c = queries_to(t, both_ways[k], 2);
    c.timeout_ms = 8000;
    c.data = &late;
    b[k] = test_loop_start(&loop, &c, late_server_batch_ended);
  }
  test_loop_run(&loop);
  test_loop_close(&loop);
  char says[96];
  snprintf(says, sizeof(says),
           "port %d failed: connection attempt timed out after 2 s", port);
  for (size_t k = 0; k < 2; k++) {
    expect_each(b[k], both_ways[k], 2, IOB_ETIMEDOUT, says, 2995, 4000);
    outcome o;
    read_outcomes(b[k], &o);
    for (int i = 0; i < 2; i++)
      assert_non_null(strstr(o.message[i], "starting up"));
    assert_code(iob_batch_free(b[k]), 0);
  }
  iob_pg_target_destroy(t);
  close(silent);
}

/* A connect_timeout that is not an integer fails the connection at once,
 * with libpq's words, as libpq's blocking connect does. */
static void
a_connect_timeout_that_is_no_integer_fails_with_libpqs_words(void **state) {
  int port;
  int silent = test_loopback_socket(true, &port);
  char where[160];
  snprintf(where, sizeof(where),
           "host=127.0.0.1 port=%d user=postgres dbname=postgres "
           "connect_timeout=2s",
           port);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_batch *b;
    run_at_once(where, &style, 1, 2, 6000, &b);
    expect_each(b, style, 2, UV_ECONNREFUSED,
                "invalid integer value \"2s\" for connection option "
                "\"connect_timeout\"",
                0, 1000);
    assert_code(iob_batch_free(b), 0);
  }
  close(silent);
}

/* Without connect_timeout, or with one longer than the operation's
 * timeout, the timeout ends a silent server's connection, as before:
 * IOB_ETIMEDOUT, no message. */
static void the_operations_timeout_still_ends_a_silent_connection(void **s) {
  int port;
  int silent = test_loopback_socket(true, &port);
  for (int with = 0; with < 2; with++) {
    char where[160];
    snprintf(where, sizeof(where),
             "host=127.0.0.1 port=%d user=postgres dbname=postgres%s", port,
             with ? " connect_timeout=2" : "");
    const iob_style *styles[STYLES_MAX];
    size_t n = every_style(styles);
    iob_batch *b[STYLES_MAX];
    run_at_once(where, styles, n, 2, 300, b);
    for (size_t k = 0; k < n; k++) {
      expect_each(b[k], styles[k], 2, IOB_ETIMEDOUT, NULL, 295, 1500);
      assert_code(iob_batch_free(b[k]), 0);
    }
  }
  close(silent);
}

static int destroy_pg_target(void *t) { return iob_pg_target_destroy(t); }

/* Against a server that never answers, operations stay in flight until
 * their timeout: long enough to try destroying the target under them. */
static void a_target_in_use_refuses_to_be_destroyed(void **state) {
  int port;
  int silent = test_loopback_socket(true, &port);
  char where[160];
  snprintf(where, sizeof(where),
           "host=127.0.0.1 port=%d user=postgres dbname=postgres", port);
  for (int pooled = 0; pooled < 2; pooled++) {
    iob_pg_target *t;
    assert_int_equal(pooled ? iob_pg_target_create_pooled(&t, where, "SELECT 1")
                            : iob_pg_target_create(&t, where, "SELECT 1"),
                     0);
    iob_config c = config_of(NULL, 2, 0);
    c.kind = &iob_kind_pg;
    c.target = t;
    c.timeout_ms = 100;
    check_target_busy_while_running(&c, destroy_pg_target);
    assert_code(iob_pg_target_destroy(t), 0);
  }
  assert_code(iob_pg_target_destroy(NULL), 0);
  close(silent);
}

/* A COPY would wait for data no one sends, or send rows no one reads:
 * every style ends it at once, saying so. */
static void a_copy_ends_the_operation_with_why_in_every_style(void **state) {
  const char *copies[] = {"COPY (SELECT 1) TO STDOUT",
                          "CREATE TEMP TABLE t (x int); COPY t FROM STDIN"};
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    for (int q = 0; q < 2; q++) {
      outcome o;
      run_queries(conninfo, copies[q], style, 2, 0, NULL, &o);
      for (int i = 0; i < 2; i++) {
        assert_code(o.status[i], IOB_ENOTSUP);
        assert_non_null(strstr(o.message[i], "COPY"));
      }
    }
  }
}

static void a_query_error_lands_with_the_servers_message(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    outcome o;
    run_queries(conninfo, "SELECT 1/0", style, 2, 0, NULL, &o);
    for (int i = 0; i < 2; i++) {
      assert_code(o.status[i], UV_EIO);
      assert_non_null(strstr(o.message[i], "division by zero"));
    }
    run_queries(conninfo, "SELEKT", style, 1, 0, NULL, &o);
    assert_code(o.status[0], UV_EIO);
    assert_non_null(strstr(o.message[0], "syntax error"));
  }
}

/* ---- the server goes away ----------------------------------------------- */

static uv_timer_t stop_timer;
static uv_process_t stopper;
static int64_t stopper_status = -1;

static void on_stopped(uv_process_t *p, int64_t status, int signal) {
  stopper_status = status;
  uv_close((uv_handle_t *)p, NULL);
}

/* pg_ctl stop -m immediate: the server kills its backends at once. */
static void stop_server(uv_timer_t *timer) {
  char *args[] = {(char *)server_script, "stop", (char *)server_dir,
                  "immediate", NULL};
  uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                   {.flags = UV_IGNORE},
                                   {.flags = UV_INHERIT_FD, .data.fd = 2}};
  uv_process_options_t options = {.file = server_script,
                                  .args = args,
                                  .exit_cb = on_stopped,
                                  .stdio = stdio,
                                  .stdio_count = 3};
  assert_code(uv_spawn(timer->loop, &stopper, &options), 0);
  uv_close((uv_handle_t *)timer, NULL);
}

static void stop_server_soon(uv_loop_t *loop) {
  stopper_status = -1;
  uv_timer_init(loop, &stop_timer);
  uv_timer_start(&stop_timer, stop_server, 500, 0);
}

static void restart_server(void) {
  char command[1024];
  snprintf(command, sizeof(command), "'%s' start '%s'", server_script,
           server_dir);
  assert_int_equal(system(command), 0);
}

static void the_server_gone_mid_batch_fails_each_query_with_why(void **s) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    outcome o;
    run_queries(conninfo, "SELECT pg_sleep(10)", style, 8, 0, stop_server_soon,
                &o);
    assert_int_equal(stopper_status, 0);
    assert_int_equal(o.report.failed, 8);
    int reset = 0;
    for (int i = 0; i < 8; i++) {
      /* Lost mid-query; or, if it had not connected yet, refused. */
      assert_true(o.status[i] == UV_ECONNRESET ||
                  o.status[i] == UV_ECONNREFUSED);
      assert_cmp(strlen(o.message[i]), >, 0);
      reset += o.status[i] == UV_ECONNRESET;
    }
    assert_cmp(reset, >, 0);
    assert_ms_below(MS(o.report.elapsed_ns), 5000); /* not the 10 s asked */
    restart_server();
  }
}

/* ---- timeouts and cancel ------------------------------------------------ */

/* Every style cuts a query off at its timeout: on the loop the kind's
 * stop(), on a thread a wait that ends then. (The pool runs 4 at once:
 * two rounds.) */
static void queries_past_the_timeout_are_cut_off_in_every_style(void **s) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    outcome o;
    uint32_t n = style == &iob_style_sequential ? 2 : 5;
    run_queries(conninfo, "SELECT pg_sleep(10)", style, n, 300, NULL, &o);
    for (uint32_t i = 0; i < n; i++) {
      assert_code(o.status[i], IOB_ETIMEDOUT);
      assert_ms_below(MS(o.report.elapsed_ns), 4000);
    }
  }
}

/* ---- bad input ---------------------------------------------------------- */

static void bad_arguments_are_refused(void **state) {
  iob_pg_target *t = (iob_pg_target *)&t;
  assert_code(iob_pg_target_create(&t, NULL, "SELECT 1"), IOB_EINVAL);
  assert_null(t);
  assert_code(iob_pg_target_create(&t, conninfo, NULL), IOB_EINVAL);
  assert_code(iob_pg_target_create(NULL, conninfo, "SELECT 1"), IOB_EINVAL);
  /* libpq cannot parse it: refused before anything connects. */
  assert_code(iob_pg_target_create(&t, "host", "SELECT 1"), IOB_EINVAL);
  assert_code(iob_pg_target_create(&t, "nosuchkey=1", "SELECT 1"), IOB_EINVAL);
  assert_null(t);

  assert_code(iob_pg_target_create(&t, conninfo, "SELECT 1"), 0);
  iob_config c = queries_to(t, &iob_style_loop, 0);
  iob_batch *b = (iob_batch *)&b;
  assert_code(iob_batch_create(&b, &c), IOB_EINVAL); /* count 0 */
  assert_null(b);
  c.count = 2;
  c.target = NULL; /* queries to no database, in every style */
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    c.style = style;
    assert_code(iob_batch_create(&b, &c), IOB_EINVAL);
    assert_null(b);
  }
  /* libpq needs a larger stack than a thread's default: the kind asks. */
  assert_int_equal(iob_kind_pg.stack_size, 256 * 1024);
  assert_string_equal(iob_kind_pg.name, "pg");
  c.target = t;
  c.style = &iob_style_threads;
  assert_code(iob_batch_create(&b, &c), 0);
  iob_outcome o;
  assert_code(iob_batch_outcome(b, 0, &o), IOB_EBUSY); /* not run */
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_run(&b, &c), 0);
  assert_code(iob_batch_outcome(b, 2, &o), IOB_EINVAL); /* of 2 */
  assert_code(iob_batch_outcome(b, 1, &o), 0);
  assert_int_equal(o.status, 0);
  assert_null(o.message);
  assert_int_equal(o.value, 1); /* one row */
  assert_code(iob_batch_free(b), 0);
  iob_pg_target_destroy(t);
  iob_pg_target_destroy(NULL);
}

/* Sessions the server has seen since it started (PostgreSQL 14 and
 * later count them in pg_stat_database), asked on a connection of the
 * test's own, which counts too. */
static long sessions(void) {
  PGconn *c = PQconnectdb(conninfo);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  /* The statistics collector is told at the end of a transaction, a
   * moment later: ask for a fresh snapshot. */
  PGresult *r = PQexec(c, "SELECT pg_stat_clear_snapshot(), sum(sessions) "
                          "FROM pg_stat_database");
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  long n = atol(PQgetvalue(r, 0, 1));
  PQclear(r);
  PQfinish(c);
  return n;
}

/* A pooled target: 40 queries with 4 in flight connect 4 times, in every
 * style; a plain one connects for each query. */
static void pooled_connections_are_reused_within_a_batch(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    for (int pooled = 0; pooled < 2; pooled++) {
      iob_pg_target *t;
      assert_int_equal((pooled
                            ? iob_pg_target_create_pooled
                            : iob_pg_target_create)(&t, conninfo, "SELECT 1"),
                       0);
      iob_config c = queries_to(t, style, 40);
      c.max_in_flight = 4;
      long before = sessions();
      test_counts counts;
      iob_batch *b = run_on_own_loop(&c, &counts);
      assert_int_equal(counts.failed, 0);
      iob_report r;
      assert_code(iob_batch_report(b, &r), 0);
      /* Sessions are counted when they end: wait for the server. */
      long made = 0;
      for (int tries = 0; tries < 100; tries++) {
        made = sessions() - before - 1; /* less the first count's own */
        if (made >= (pooled ? (long)r.peak_in_flight : 40))
          break;
        uv_sleep(20);
      }
      print_message("%-10s %s: %ld connections for 40 queries in %.1f ms\n",
                    iob_style_name(style), pooled ? "pooled" : "one each", made,
                    MS(r.elapsed_ns));
      if (pooled) {
        assert_cmp(made, >=, 1);
        assert_cmp(made, <=, 4);
      } else {
        assert_int_equal(made, 40);
      }
      assert_code(iob_batch_free(b), 0);
      iob_pg_target_destroy(t);
    }
  }
}

/* ---- a pool that outlives batches ---------------------------------------- */

/* Run `n` queries (each q[i]) through pool p in an open batch of `style`
 * on t, at most `limit` at once (0: all), and return the batch. */
static iob_batch *through_pool(test_loop *t, const iob_style *style,
                               iob_pg_pool *p, const iob_pg_query *q,
                               uint32_t n, uint32_t limit) {
  return test_loop_run_tasks(t, style, limit, &iob_kind_pg, p, q, sizeof(*q),
                             n);
}

/* Operation i's rows, which it must have had. */
static const iob_pg_result *rows_of_op(const iob_batch *b, uint32_t i) {
  return test_result_of(b, i);
}

static void end_pool(test_loop *t, iob_pg_pool *p) {
  assert_code(iob_pg_pool_destroy(p), 0);
  test_loop_run(t);
  test_loop_close(t);
}

static iob_pg_pool *pool_on(test_loop *t, uint32_t min, uint32_t max,
                            uint32_t idle_ms) {
  iob_pg_pool_options o = {
      .min_connections = min, .max_connections = max, .idle_ms = idle_ms};
  iob_pg_pool *p;
  assert_code(iob_pg_pool_create(&p, &t->loop, conninfo, &o), 0);
  return p;
}

static void queries_take_parameters_and_return_rows_with_nulls(void **s) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    if (iob_style_flags(style) & IOB_STYLE_LOOPS)
      continue; /* a pool serves one loop */
    test_loop t;
    test_loop_init(&t);
    iob_pg_pool *p = pool_on(&t, 0, 2, 0);
    static const char *const params[] = {"41", NULL, "1'); DROP TABLE x; --"};
    iob_pg_query q[2] = {
        {.sql = "SELECT $1::int + 1 AS n, $2::text AS nothing, $3::text AS t",
         .params = params,
         .nparams = 3},
        {.sql = "SELECT g FROM generate_series(1, 3) AS g"},
    };
    iob_batch *b = through_pool(&t, style, p, q, 2, 0);
    const iob_pg_result *r = rows_of_op(b, 0);
    assert_int_equal(r->rows, 1);
    assert_int_equal(r->columns, 3);
    assert_string_equal(r->names[0], "n");
    assert_string_equal(r->names[2], "t");
    assert_string_equal(iob_pg_value(r, 0, 0), "42");
    assert_null(iob_pg_value(r, 0, 1));                    /* SQL NULL */
    assert_string_equal(iob_pg_value(r, 0, 2), params[2]); /* only text */
    assert_null(iob_pg_value(r, 1, 0)); /* past the last row */
    r = rows_of_op(b, 1);
    assert_int_equal(r->rows, 3);
    assert_string_equal(iob_pg_value(r, 2, 0), "3");
    iob_batch_free(b);
    end_pool(&t, p);
  }
}

static void an_error_says_its_sqlstate(void **s) {
  test_loop t;
  test_loop_init(&t);
  iob_pg_pool *p = pool_on(&t, 0, 1, 0);
  iob_pg_query q = {.sql = "SELECT 1/0"};
  iob_batch *b = through_pool(&t, &iob_style_loop, p, &q, 1, 0);
  test_failed_with(b, 0, UV_EIO, "division by zero");
  test_failed_with(b, 0, UV_EIO, "(SQLSTATE 22012)");
  iob_batch_free(b);
  end_pool(&t, p);
}

/* The backend process ids of a batch's queries (SELECT pg_backend_pid()),
 * added to `pids` (n of them) if new; returns how many were new. */
static int note_pids(const iob_batch *b, uint32_t count, long *pids, int *n) {
  int fresh = 0;
  for (uint32_t i = 0; i < count; i++) {
    long pid = strtol(iob_pg_value(rows_of_op(b, i), 0, 0), NULL, 10);
    int k = 0;
    while (k < *n && pids[k] != pid)
      k++;
    if (k == *n) {
      pids[(*n)++] = pid;
      fresh++;
    }
  }
  return fresh;
}

static void
a_pool_keeps_its_connections_across_batches_within_its_most(void **s) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads,
                               &iob_style_pool};
  for (int k = 0; k < 3; k++) {
    test_loop t;
    test_loop_init(&t);
    iob_pg_pool *p = pool_on(&t, 0, 3, 0);
    enum { N = 12 };
    iob_pg_query q[N];
    for (int i = 0; i < N; i++) /* each holds its connection a while */
      q[i] = (iob_pg_query){.sql = "SELECT pg_backend_pid() FROM "
                                   "pg_sleep(0.02)"};
    long pids[64];
    int n = 0;
    for (int round = 0; round < 3; round++) {
      iob_batch *b = through_pool(&t, styles[k], p, q, N, 0); /* at once */
      int fresh = note_pids(b, N, pids, &n);
      if (round > 0 && fresh != 0)
        fail_msg("%s: batch %d opened %d connections: not kept",
                 iob_style_name(styles[k]), round, fresh);
      iob_batch_free(b);
    }
    if (n > 3)
      fail_msg("%s: %d connections for a pool of at most 3",
               iob_style_name(styles[k]), n);
    uint32_t open, idle;
    assert_code(iob_pg_pool_counts(p, &open, &idle), 0);
    assert_int_equal(open, (uint32_t)n);
    assert_int_equal(idle, (uint32_t)n);
    end_pool(&t, p);
  }
}

static void idle_connections_past_the_least_close_after_their_time(void **s) {
  test_loop t;
  test_loop_init(&t);
  iob_pg_pool *p = pool_on(&t, 1, 3, 100);
  iob_pg_query q[3];
  for (int i = 0; i < 3; i++)
    q[i] = (iob_pg_query){.sql = "SELECT pg_backend_pid() FROM "
                                 "pg_sleep(0.02)"};
  iob_batch *b = through_pool(&t, &iob_style_loop, p, q, 3, 0);
  iob_batch_free(b);
  uint32_t open;
  assert_code(iob_pg_pool_counts(p, &open, NULL), 0);
  assert_int_equal(open, 3);
  uv_sleep(300);
  q[0].sql = "SELECT 1";
  b = through_pool(&t, &iob_style_loop, p, q, 1, 0); /* the pool is used */
  iob_batch_free(b);
  assert_code(iob_pg_pool_counts(p, &open, NULL), 0);
  assert_int_equal(open, 1); /* the least stays */
  end_pool(&t, p);
}

static void a_restarted_server_costs_new_connections_not_failures(void **s) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    test_loop t;
    test_loop_init(&t);
    iob_pg_pool *p = pool_on(&t, 0, 2, 0);
    iob_pg_query q[4];
    for (int i = 0; i < 4; i++)
      q[i] = (iob_pg_query){.sql = "SELECT pg_backend_pid()"};
    long pids[16];
    int n = 0;
    iob_batch *b = through_pool(&t, styles[k], p, q, 4, 2);
    note_pids(b, 4, pids, &n);
    iob_batch_free(b);
    /* pg_ctl stop -m immediate, then start: every idle connection of the
     * pool's is dead. */
    char command[1024];
    snprintf(command, sizeof(command), "'%s' stop '%s' immediate >/dev/null",
             server_script, server_dir);
    assert_int_equal(system(command), 0);
    restart_server();
    b = through_pool(&t, styles[k], p, q, 4, 2);
    assert_int_equal(note_pids(b, 4, pids, &n) > 0, 1); /* all succeeded */
    iob_batch_free(b);
    end_pool(&t, p);
  }
}

/* On a pool of one connection, statements prepared once and kept: each
 * query sees how many its connection has prepared. Preparing one again
 * would fail (42P05, already exists). */
static void prepared_statements_are_kept_by_each_connection(void **s) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    test_loop t;
    test_loop_init(&t);
    iob_pg_pool *p = pool_on(&t, 0, 1, 0);
    static const char *const one[] = {"1"};
    iob_pg_query q[3] = {
        {.sql = "SELECT count(*) + $1::int FROM pg_prepared_statements",
         .params = one,
         .nparams = 1,
         .prepare = 1},
        {.sql = "SELECT count(*) FROM pg_prepared_statements", .prepare = 1},
        {.sql = "SELECT count(*) + $1::int FROM pg_prepared_statements",
         .params = one,
         .nparams = 1,
         .prepare = 1},
    };
    const char *expect[] = {"2", "2", "3"};   /* 1 + 1, 2, 2 + 1 */
    for (int round = 0; round < 3; round++) { /* three batches, one after
                                               * another */
      iob_batch *b = through_pool(&t, styles[k], p, &q[round], 1, 0);
      const char *got = iob_pg_value(rows_of_op(b, 0), 0, 0);
      if (got == NULL || strcmp(got, expect[round]) != 0)
        fail_msg("%s: query %d saw %s prepared statements, not %s",
                 iob_style_name(styles[k]), round, got ? got : "NULL",
                 expect[round]);
      iob_batch_free(b);
    }
    /* A statement that cannot be prepared fails with the server's words. */
    iob_pg_query bad = {.sql = "SELEC 1", .prepare = 1};
    iob_batch *b = through_pool(&t, styles[k], p, &bad, 1, 0);
    test_failed_with(b, 0, UV_EIO, "(SQLSTATE 42601)");
    iob_batch_free(b);
    end_pool(&t, p);
  }
}

static void bad_queries_and_pools_get_clear_codes(void **s) {
  test_loop t;
  test_loop_init(&t);
  iob_pg_pool *p = pool_on(&t, 0, 1, 0);
  iob_config c;
  iob_config_init(&c);
  c.open = 1;
  iob_batch *b = test_loop_create(&t, &c, NULL);
  iob_task task;
  iob_task_init(&task);
  task.kind = &iob_kind_pg;
  task.target = p;
  iob_pg_query q = {.sql = NULL};
  task.input = &q;
  assert_code(iob_batch_submit(b, &task), IOB_EINVAL); /* no SQL */
  q = (iob_pg_query){.sql = "SELECT $1", .nparams = 1};
  assert_code(iob_batch_submit(b, &task), IOB_EINVAL); /* no params */
  q.nparams = IOB_PG_PARAMS_MAX + 1;
  q.params = (const char *const[]){"1"};
  assert_code(iob_batch_submit(b, &task), IOB_ERANGE);
  task.input = NULL; /* a pool needs a query */
  assert_int_equal(iob_batch_submit(b, &task), 0);
  assert_code(iob_batch_close(b), 0);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  test_failed_with(b, 0, IOB_EINVAL, "no SQL");
  iob_batch_free(b);

  iob_config loops = c;
  loops.style = &iob_style_loops; /* its loops are its own */
  assert_code(iob_batch_create(&b, &loops), 0);
  q = (iob_pg_query){.sql = "SELECT 1"};
  task.input = &q;
  assert_code(iob_batch_submit(b, &task), IOB_ENOTSUP);
  iob_batch_free(b);

  iob_pg_pool *none = (iob_pg_pool *)&none;
  iob_pg_pool_options wrong = {.min_connections = 3, .max_connections = 2};
  assert_code(iob_pg_pool_create(NULL, &t.loop, conninfo, NULL), IOB_EINVAL);
  assert_code(iob_pg_pool_create(&none, &t.loop, NULL, NULL), IOB_EINVAL);
  assert_null(none);
  assert_code(iob_pg_pool_create(&none, &t.loop, "host='", NULL), IOB_EINVAL);
  assert_code(iob_pg_pool_create(&none, &t.loop, conninfo, &wrong), IOB_ERANGE);
  assert_code(iob_pg_pool_counts(NULL, NULL, NULL), IOB_EINVAL);
  assert_code(iob_pg_pool_destroy(NULL), 0);
  end_pool(&t, p);
}

static int destroy_answer;

static void destroy_now(iob_batch *b, uint32_t i, const iob_record *r) {
  (void)i;
  (void)r;
  destroy_answer = iob_pg_pool_destroy(iob_batch_data(b));
}

/* Run SQL on the server as the superuser the tests connect as. */
static void exec_sql(const char *sql) {
  PGconn *c = PQconnectdb(conninfo);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

/* A pool asked for more connections than the server allows (a role with
 * CONNECTION LIMIT 2; the pool's most is 6): a connection the server
 * refuses for too many (SQLSTATE 53300) costs no query, which waits for
 * the pool's other connections instead, and the pool holds no more than
 * the server allowed. With no other connection to wait for, the query
 * fails, saying why. */
static void
a_pool_above_what_the_server_allows_waits_for_what_it_has(void **s) {
  exec_sql("DROP ROLE IF EXISTS iob_two");
  exec_sql("DROP ROLE IF EXISTS iob_none");
  exec_sql("CREATE ROLE iob_two LOGIN CONNECTION LIMIT 2");
  exec_sql("CREATE ROLE iob_none LOGIN CONNECTION LIMIT 0");
  char two[600], none[600];
  snprintf(two, sizeof(two), "host=%s user=iob_two dbname=postgres",
           server_dir);
  snprintf(none, sizeof(none), "host=%s user=iob_none dbname=postgres",
           server_dir);
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads,
                               &iob_style_pool};
  for (int k = 0; k < 3; k++) {
    test_loop t;
    test_loop_init(&t);
    iob_pg_pool_options o = {.max_connections = 6};
    iob_pg_pool *p;
    assert_code(iob_pg_pool_create(&p, &t.loop, two, &o), 0);
    enum { N = 12 };
    iob_pg_query q[N];
    for (int i = 0; i < N; i++)
      q[i] = (iob_pg_query){.sql = "SELECT pg_backend_pid() FROM "
                                   "pg_sleep(0.05)"};
    iob_batch *b = through_pool(&t, styles[k], p, q, N, 0); /* at once */
    for (uint32_t i = 0; i < N; i++) {
      iob_outcome out;
      assert_code(iob_batch_outcome(b, i, &out), 0);
      if (out.status != 0)
        fail_msg("%s: query %u failed: %s (%s)", iob_style_name(styles[k]), i,
                 iob_err_name(out.status), out.message ? out.message : "");
    }
    long pids[N];
    int n = 0;
    note_pids(b, N, pids, &n);
    if (n > 2)
      fail_msg("%s: %d connections where the server allows 2",
               iob_style_name(styles[k]), n);
    uint32_t open;
    assert_code(iob_pg_pool_counts(p, &open, NULL), 0);
    assert_cmp(open, >=, 1);
    assert_cmp(open, <=, 2);
    iob_batch_free(b);
    end_pool(&t, p);

    test_loop_init(&t);
    o.max_connections = 3;
    assert_code(iob_pg_pool_create(&p, &t.loop, none, &o), 0);
    b = through_pool(&t, styles[k], p, q, 1, 0);
    test_failed_with(b, 0, UV_ECONNREFUSED, "(SQLSTATE 53300)");
    test_failed_with(b, 0, UV_ECONNREFUSED, "too many connections");
    iob_outcome out;
    assert_code(iob_batch_outcome(b, 0, &out), 0);
    if (strstr(out.message, ".c:") != NULL) /* the server's source line */
      fail_msg("a location in the message: %s", out.message);
    iob_batch_free(b);
    assert_code(iob_pg_pool_counts(p, &open, NULL), 0);
    assert_int_equal(open, 0);
    end_pool(&t, p);
  }
  exec_sql("DROP ROLE iob_two");
  exec_sql("DROP ROLE iob_none");
}

/* Under a retry policy, a serialization failure (SQLSTATE 40001) runs
 * again: a function that fails every other call, called one query at a
 * time, fails each query's first attempt and passes its second, on the
 * loop and on threads; an error in the query (22012) is final. */
static void
a_serialization_failure_is_retried_and_a_query_error_is_not(void **s) {
  exec_sql("CREATE SEQUENCE IF NOT EXISTS iob_flaky_seq");
  exec_sql("CREATE OR REPLACE FUNCTION iob_flaky() RETURNS int AS $$ BEGIN "
           "IF nextval('iob_flaky_seq') % 2 = 1 THEN RAISE EXCEPTION "
           "'try again' USING ERRCODE = '40001'; END IF; RETURN 1; END $$ "
           "LANGUAGE plpgsql");
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  iob_retry p;
  iob_retry_init(&p);
  p.backoff_min_ms = p.backoff_max_ms = 1;
  for (size_t k = 0; k < 2; k++) {
    iob_pg_target *t;
    assert_code(iob_pg_target_create(&t, conninfo, "SELECT iob_flaky()"), 0);
    iob_config c = queries_to(t, styles[k], 6);
    c.retry = &p;
    c.max_in_flight = 1; /* so that the calls alternate */
    iob_batch *b = run_on_own_loop(&c, NULL);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    if (r.failed != 0 || r.retries != 6)
      fail_msg("%s: %u failed, %u retries", iob_style_name(styles[k]), r.failed,
               r.retries);
    assert_code(iob_batch_free(b), 0);
    iob_pg_target_destroy(t);

    assert_code(iob_pg_target_create(&t, conninfo, "SELECT 1/0"), 0);
    c = queries_to(t, styles[k], 2);
    c.retry = &p;
    b = run_on_own_loop(&c, NULL);
    iob_outcome o;
    assert_code(iob_batch_outcome(b, 0, &o), 0);
    assert_int_equal(o.retries, 0);
    assert_non_null(strstr(o.message, "22012"));
    assert_code(iob_batch_free(b), 0);
    iob_pg_target_destroy(t);
  }
  exec_sql("DROP FUNCTION iob_flaky()");
  exec_sql("DROP SEQUENCE iob_flaky_seq");
}

static void a_pool_in_use_refuses_to_be_destroyed(void **s) {
  test_loop t;
  test_loop_init(&t);
  iob_pg_pool *p = pool_on(&t, 0, 1, 0);
  iob_config c;
  iob_config_init(&c);
  c.open = 1;
  c.on_op = destroy_now;
  c.data = p;
  iob_batch *b = test_loop_create(&t, &c, NULL);
  iob_task task;
  iob_task_init(&task);
  task.kind = &iob_kind_pg;
  task.target = p;
  iob_pg_query q = {.sql = "SELECT 1"};
  task.input = &q;
  assert_int_equal(iob_batch_submit(b, &task), 0);
  assert_code(iob_batch_close(b), 0);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  assert_code(destroy_answer, IOB_EBUSY);
  iob_batch_free(b);
  end_pool(&t, p);
}

/* `test-pg without-server` and `test-pg on-server` run one group each
 * (side by side under meson test); no argument, both. */
int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : "";
  if (*only != '\0' && strcmp(only, "without-server") != 0 &&
      strcmp(only, "on-server") != 0) {
    fprintf(stderr, "usage: test-pg [without-server | on-server]\n");
    return 64;
  }
  const struct CMUnitTest serverless[] = {
      cmocka_unit_test(
          a_silent_server_is_given_up_after_connect_timeout_in_every_style),
      cmocka_unit_test(
          connect_timeout_1_from_the_environment_waits_2_s_as_in_libpq),
      cmocka_unit_test(each_host_gets_its_own_connect_timeout_as_in_libpq),
      cmocka_unit_test(
          a_connect_timeout_that_is_no_integer_fails_with_libpqs_words),
      cmocka_unit_test(the_operations_timeout_still_ends_a_silent_connection),
      cmocka_unit_test(a_target_in_use_refuses_to_be_destroyed),
  };
  int failed = 0;
  if (strcmp(only, "on-server") != 0)
    failed =
        cmocka_run_group_tests_name("without a server", serverless, NULL, NULL);
  if (strcmp(only, "without-server") == 0)
    return failed != 0;
  server_dir = getenv("IOB_PG_DIR");
  server_script = getenv("IOB_PG_SERVER");
  if (server_dir == NULL || server_script == NULL) {
    fputs("test-pg: no PostgreSQL server (pg-test.sh starts one where it "
          "can): the tests that need one are skipped\n",
          stderr);
    return failed != 0 ? 1 : 77;
  }
  snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres dbname=postgres",
           server_dir);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(queries_overlap_on_the_loop_and_on_threads),
      cmocka_unit_test(one_target_serves_several_batches_at_once),
      cmocka_unit_test(
          cancelling_one_of_two_batches_on_a_target_spares_the_other),
      cmocka_unit_test(a_wrong_connection_string_fails_each_operation_with_why),
      cmocka_unit_test(a_query_error_lands_with_the_servers_message),
      cmocka_unit_test(a_refused_tcp_connection_says_why_in_every_style),
      cmocka_unit_test(a_copy_ends_the_operation_with_why_in_every_style),
      cmocka_unit_test(the_server_gone_mid_batch_fails_each_query_with_why),
      cmocka_unit_test(queries_past_the_timeout_are_cut_off_in_every_style),
      cmocka_unit_test(bad_arguments_are_refused),
      cmocka_unit_test(pooled_connections_are_reused_within_a_batch),
      cmocka_unit_test(queries_take_parameters_and_return_rows_with_nulls),
      cmocka_unit_test(an_error_says_its_sqlstate),
      cmocka_unit_test(
          a_pool_keeps_its_connections_across_batches_within_its_most),
      cmocka_unit_test(idle_connections_past_the_least_close_after_their_time),
      cmocka_unit_test(a_restarted_server_costs_new_connections_not_failures),
      cmocka_unit_test(prepared_statements_are_kept_by_each_connection),
      cmocka_unit_test(bad_queries_and_pools_get_clear_codes),
      cmocka_unit_test(a_pool_in_use_refuses_to_be_destroyed),
      cmocka_unit_test(
          a_serialization_failure_is_retried_and_a_query_error_is_not),
      cmocka_unit_test(
          a_pool_above_what_the_server_allows_waits_for_what_it_has),
  };
  failed += cmocka_run_group_tests_name("on a server", tests, NULL, NULL);
  return failed != 0;
}
