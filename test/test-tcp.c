/* Requests over TCP to the slow service, started by the test on a free
 * loopback port: every style, thousands at once on one loop, one target
 * shared by batches at once, refused connections, running out of file
 * descriptors, cancel and bad input. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../examples/slow-server.h"
#include "common.h"

/* The services run in processes of their own, forked before any thread
 * exists: descriptors numbered alike in two threads of one process would
 * look like races to ThreadSanitizer (libuv closes them unseen). */
static pid_t service, service6;
static char address[64];  /* the service's "127.0.0.1:PORT" */
static char address6[64]; /* "[::1]:PORT"; empty without IPv6 */
static const char *self;  /* this program, to run the fd-limit child */

static void on_batch_done(iob_batch *batch, int status) {}

/* A configuration of requests to `t`. */
static iob_config requests_to(const iob_tcp_target *t, const iob_style *style,
                              uint32_t count, uint64_t ms) {
  iob_config c = config_of(style, count, ms);
  c.kind = &iob_kind_tcp;
  c.target = t;
  return c;
}

/* Each answered request hands back the duration the service answered;
 * each failed one says why, naming the address. */
static void check_outcomes(const iob_batch *b, const char *where) {
  uint32_t n;
  const iob_record *rec = iob_batch_records(b, &n);
  for (uint32_t i = 0; i < n; i++) {
    iob_outcome o;
    assert_code(iob_batch_outcome(b, i, &o), 0);
    assert_int_equal(o.status, rec[i].status);
    assert_null(o.result);
    if (o.status == 0) {
      assert_null(o.message);
    } else if (o.status != IOB_ECANCELED && o.status != IOB_ETIMEDOUT) {
      assert_non_null(o.message);
      if (strstr(o.message, where) == NULL)
        fail_msg("operation %u: \"%s\" does not name %s", i, o.message, where);
    }
  }
}

/* Requests to `where` in one style, on a loop of the test's own; returns
 * the report, and counts the operations whose status is `status` in
 * *matching. */
static iob_report run_requests(const char *where, const iob_style *style,
                               uint32_t count, uint64_t ms, int status,
                               uint32_t *matching) {
  iob_tcp_target *t;
  assert_code(iob_tcp_target_create(&t, where), 0);
  iob_config c = requests_to(t, style, count, ms);
  iob_batch *b = run_on_own_loop(&c, NULL);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_ptr_equal(r.kind, &iob_kind_tcp);
  const iob_record *rec = iob_batch_records(b, NULL);
  *matching = 0;
  for (uint32_t i = 0; i < count; i++) {
    *matching += rec[i].status == status;
    iob_outcome o;
    assert_code(iob_batch_outcome(b, i, &o), 0);
    if (o.status == 0) /* the MS of "done MS" */
      assert_int_equal(o.value, ms);
  }
  check_outcomes(b, where);
  assert_code(iob_batch_free(b), 0);
  iob_tcp_target_destroy(t);
  return r;
}

static void every_style_gets_its_answers_from_the_slow_service(void **s) {
  uint32_t ok;
  iob_report r = run_requests(address, &iob_style_loop, 20, 100, 0, &ok);
  assert_int_equal(ok, 20);
  assert_int_equal(r.threads, 0);
  assert_ms_between(MS(r.elapsed_ns), 99, 600);

  r = run_requests(address, &iob_style_sequential, 4, 100, 0, &ok);
  assert_int_equal(ok, 4);
  assert_int_equal(r.peak_in_flight, 1);
  assert_ms_at_least(MS(r.elapsed_ns), 4 * 99);

  r = run_requests(address, &iob_style_threads, 20, 100, 0, &ok);
  assert_int_equal(ok, 20);
  assert_ms_between(MS(r.elapsed_ns), 99, 1000);

  /* The pool has iob_pool_size() threads: rounds of that many requests. */
  uint32_t n = 2 * iob_pool_size();
  r = run_requests(address, &iob_style_pool, n, 100, 0, &ok);
  assert_int_equal(ok, n);
  assert_cmp(r.peak_in_flight, <=, iob_pool_size());
  assert_ms_at_least(MS(r.elapsed_ns), 2 * 99);
}

static void thousands_of_requests_overlap_on_one_loop(void **state) {
  uint32_t ok;
  iob_report r = run_requests(address, &iob_style_loop, 2000, 100, 0, &ok);
  assert_int_equal(ok, 2000);
  assert_int_equal(r.failed, 0);
  assert_cmp(r.peak_in_flight, >, 1000);
  printf("2000 requests of 100 ms on one loop: %.1f ms\n", MS(r.elapsed_ns));
  assert_ms_below(MS(r.elapsed_ns), 1000);
}

static void each_request_asks_for_its_own_duration(void **state) {
  uint32_t durations[4] = {10, 200, 50, 0};
  iob_tcp_target *t;
  assert_code(iob_tcp_target_create(&t, address), 0);
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    iob_config c = requests_to(t, styles[k], 4, 0); /* a target, reused */
    c.durations_ms = durations;
    iob_batch *b;
    assert_code(iob_run(&b, &c), 0);
    const iob_record *rec = iob_batch_records(b, NULL);
    for (int i = 0; i < 4; i++) {
      assert_int_equal(rec[i].status, 0);
      iob_outcome o;
      assert_code(iob_batch_outcome(b, (uint32_t)i, &o), 0);
      assert_int_equal(o.value, durations[i]);
      /* The service's timer counts whole ms: it may answer within 1 ms
       * early, by the test's clock. */
      assert_ms_between(MS(rec[i].finished_ns - rec[i].started_ns),
                        durations[i] - 1.5, durations[i] + 300);
    }
    assert_code(iob_batch_free(b), 0);
  }
  iob_tcp_target_destroy(t);
}

/* A target is read only: batches in every style use one at once, on one
 * loop, each operation asking for its own duration. */
static void one_target_serves_several_batches_at_once(void **state) {
  iob_tcp_target *t;
  assert_code(iob_tcp_target_create(&t, address), 0);
  test_loop loop;
  test_loop_init(&loop);
  iob_batch *b[2 * STYLES_MAX];
  size_t n = 2 * style_count();
  uint32_t durations[2 * STYLES_MAX][3];
  for (size_t k = 0; k < n; k++) {
    for (uint32_t i = 0; i < 3; i++)
      durations[k][i] = (uint32_t)(20 + 10 * k + i);
    iob_config c = requests_to(t, iob_style_at(k % style_count()), 3, 0);
    c.durations_ms = durations[k];
    b[k] = test_loop_start(&loop, &c, NULL);
  }
  test_loop_run(&loop);
  for (size_t k = 0; k < n; k++) {
    assert_int_equal(test_loop_counts(&loop, b[k])->ok, 3);
    for (uint32_t i = 0; i < 3; i++) {
      iob_outcome o;
      assert_code(iob_batch_outcome(b[k], i, &o), 0);
      assert_int_equal(o.value, durations[k][i]); /* its own answer */
    }
  }
  test_loop_close(&loop);
  for (size_t k = 0; k < n; k++)
    assert_code(iob_batch_free(b[k]), 0);
  iob_tcp_target_destroy(t);
}

static int destroy_tcp_target(void *t) { return iob_tcp_target_destroy(t); }

static void a_target_in_use_refuses_to_be_destroyed(void **state) {
  iob_tcp_target *t;
  assert_code(iob_tcp_target_create(&t, address), 0);
  iob_config c = requests_to(t, NULL, 3, 20);
  check_target_busy_while_running(&c, destroy_tcp_target);
  assert_code(iob_tcp_target_destroy(t), 0);
  assert_code(iob_tcp_target_destroy(NULL), 0);
}

/* Two batches on one loop share a target; cancelling one midway settles
 * its own requests only, and the other's all get their own answers. */
static void
cancelling_one_of_two_batches_on_a_target_spares_the_other(void **state) {
  iob_tcp_target *t;
  assert_code(iob_tcp_target_create(&t, address), 0);
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    test_loop loop;
    test_loop_init(&loop);
    iob_config doomed = requests_to(t, styles[k], 10, 300);
    iob_config kept = requests_to(t, styles[k], 10, 150);
    iob_batch *a = test_loop_start(&loop, &doomed, NULL);
    iob_batch *b = test_loop_start(&loop, &kept, NULL);
    test_loop_cancel_after(&loop, a, 50);
    test_loop_run(&loop);
    const test_counts *ca = test_loop_counts(&loop, a);
    const test_counts *cb = test_loop_counts(&loop, b);
    assert_code(ca->batch_status, IOB_ECANCELED);
    /* On the loop every request stops; a thread's runs to its end. */
    if (styles[k] == &iob_style_loop)
      assert_int_equal(ca->cancelled, 10);
    assert_int_equal(cb->batch_status, 0);
    assert_int_equal(cb->ok, 10);
    for (uint32_t i = 0; i < 10; i++) {
      iob_outcome o;
      assert_code(iob_batch_outcome(b, i, &o), 0);
      assert_int_equal(o.value, 150); /* its own duration, not the other's */
    }
    test_loop_close(&loop);
    assert_code(iob_batch_free(a), 0);
    assert_code(iob_batch_free(b), 0);
  }
  iob_tcp_target_destroy(t);
}

/* A port nothing listens on: one the service had, now closed. */
static void closed_address(char *out, size_t size) {
  slow_server *gone;
  assert_int_equal(slow_server_open(&gone, "127.0.0.1", 0), 0);
  snprintf(out, size, "127.0.0.1:%u", slow_server_port(gone));
  slow_server_close(gone);
}

static void a_refused_connection_lands_in_each_operations_status(void **s) {
  char nowhere[64];
  closed_address(nowhere, sizeof(nowhere));
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    uint32_t refused;
    iob_report r =
        run_requests(nowhere, style, 6, 100, UV_ECONNREFUSED, &refused);
    assert_int_equal(refused, 6);
    assert_int_equal(r.failed, 6);
    assert_int_equal(r.status, 0); /* the batch itself ran to its end */
  }
}

/* ---- a peer that never answers ------------------------------------------- */

/* A socket that listens and never accepts: the kernel completes the
 * connections (into the backlog) and takes the requests, and nothing ever
 * answers. Returns its fd; its "127.0.0.1:PORT" in out. */
static int silent_peer(char *out, size_t size) {
  int port;
  int fd = test_loopback_socket(true, &port);
  snprintf(out, size, "127.0.0.1:%d", port);
  return fd;
}

/* Every style ends a request to a silent peer at its timeout: on the
 * loop the kind's stop(), on a thread the socket waits no longer. */
static void a_peer_that_never_answers_times_out_in_every_style(void **s) {
  char where[64];
  int fd = silent_peer(where, sizeof(where));
  iob_tcp_target *t;
  assert_code(iob_tcp_target_create(&t, where), 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = requests_to(t, style, 4, 100);
    c.timeout_ms = 150;
    c.max_in_flight = 4;
    iob_batch *b = run_on_own_loop(&c, NULL);
    const iob_record *rec = iob_batch_records(b, NULL);
    for (int i = 0; i < 4; i++) {
      assert_code(rec[i].status, IOB_ETIMEDOUT);
      assert_ms_between(MS(rec[i].finished_ns - rec[i].started_ns), 149, 900);
    }
    assert_code(iob_batch_free(b), 0);
  }
  iob_tcp_target_destroy(t);
  close(fd);
}

/* Without a timeout, a cancel ends them all the same, threads too. */
static void a_cancel_ends_requests_to_a_silent_peer_in_every_style(void **s) {
  char where[64];
  int fd = silent_peer(where, sizeof(where));
  iob_tcp_target *t;
  assert_code(iob_tcp_target_create(&t, where), 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = requests_to(t, style, 4, 100);
    test_loop loop;
    test_loop_init(&loop);
    iob_batch *b = test_loop_start(&loop, &c, NULL);
    test_loop_cancel_after(&loop, b, 100);
    test_loop_run(&loop);
    test_loop_close(&loop);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    assert_int_equal(r.failed, 4);
    assert_ms_below(MS(r.elapsed_ns), 1500); /* a slice past the cancel */
    assert_code(iob_batch_free(b), 0);
  }
  iob_tcp_target_destroy(t);
  close(fd);
}

/* ---- a service that answers wrongly, on the test's loop ----------------- */

typedef struct rude {
  uv_tcp_t listener;
  const char *answer; /* NULL: hang up without a word */
  uv_tcp_t client[8];
  int clients;
  char request[64];
} rude;

static void on_rude_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  rude *r = h->data;
  *buf = uv_buf_init(r->request, sizeof(r->request));
}

/* Once the request is in, answer (or not) and hang up. */
static void on_rude_read(uv_stream_t *c, ssize_t nread, const uv_buf_t *b) {
  rude *r = c->data;
  if (nread > 0 && r->answer != NULL) {
    uv_buf_t buf = uv_buf_init((char *)r->answer, (unsigned)strlen(r->answer));
    assert_int_equal(uv_try_write(c, &buf, 1), (int)buf.len);
  }
  if (nread != 0)
    uv_close((uv_handle_t *)c, NULL);
}

static void on_rude_connection(uv_stream_t *listener, int status) {
  rude *r = listener->data;
  assert_int_equal(status, 0);
  assert_cmp(r->clients, <, 8);
  uv_tcp_t *c = &r->client[r->clients++];
  uv_tcp_init(listener->loop, c);
  c->data = r;
  assert_code(uv_accept(listener, (uv_stream_t *)c), 0);
  assert_code(uv_read_start((uv_stream_t *)c, on_rude_alloc, on_rude_read), 0);
}

/* One request, in `style`, to a service that gives `answer`. */
static int status_of_answer(const iob_style *style, const char *answer) {
  test_loop t;
  test_loop_init(&t);
  uv_loop_t *loop = &t.loop;
  rude r = {.answer = answer};
  uv_tcp_init(loop, &r.listener);
  r.listener.data = &r;
  struct sockaddr_in any;
  uv_ip4_addr("127.0.0.1", 0, &any);
  assert_code(uv_tcp_bind(&r.listener, (struct sockaddr *)&any, 0), 0);
  assert_code(uv_listen((uv_stream_t *)&r.listener, 8, on_rude_connection), 0);
  struct sockaddr_storage addr;
  int len = sizeof(addr);
  uv_tcp_getsockname(&r.listener, (struct sockaddr *)&addr, &len);
  char where[64];
  snprintf(where, sizeof(where), "127.0.0.1:%u",
           ntohs(((struct sockaddr_in *)&addr)->sin_port));

  iob_tcp_target *target;
  assert_code(iob_tcp_target_create(&target, where), 0);
  iob_config c = requests_to(target, style, 1, 5);
  iob_batch *b = test_loop_start(&t, &c, NULL);
  /* Run until the batch is over, then close the listener too. */
  while (test_loop_counts(&t, b)->batch_calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&r.listener, NULL);
  test_loop_run(&t);
  test_loop_close(&t);
  int status = iob_batch_records(b, NULL)[0].status;
  check_outcomes(b, where);
  assert_code(iob_batch_free(b), 0);
  iob_tcp_target_destroy(target);
  return status;
}

static void a_wrong_answer_or_a_hang_up_is_an_operations_error(void **s) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    assert_code(status_of_answer(styles[k], "done 6\n"), UV_EPROTO);
    assert_code(status_of_answer(styles[k], "nope\n"), UV_EPROTO);
    /* The service could not serve it: worth a retry (iob_retry). */
    assert_code(status_of_answer(styles[k], "error unavailable\n"), UV_EIO);
    assert_code(
        status_of_answer(styles[k], "an answer far too long for any request\n"),
        UV_EPROTO);
    assert_int_equal(status_of_answer(styles[k], "done 5\n"), 0);
    assert_code(status_of_answer(styles[k], NULL), UV_EOF);
  }
}

/* ---- cancel and timeouts ------------------------------------------------ */

static void cancel_mid_batch_closes_every_connection_at_once(void **s) {
  iob_tcp_target *t;
  assert_code(iob_tcp_target_create(&t, address), 0);
  iob_config c = requests_to(t, &iob_style_loop, 50, 5000);
  test_loop loop;
  test_loop_init(&loop);
  iob_batch *b = test_loop_start(&loop, &c, NULL);
  test_loop_cancel_after(&loop, b, 100);
  test_loop_run(&loop);
  test_loop_close(&loop);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_code(r.status, IOB_ECANCELED);
  assert_int_equal(r.failed, 50);
  for (int i = 0; i < 50; i++)
    assert_code(iob_batch_records(b, NULL)[i].status, IOB_ECANCELED);
  assert_ms_between(MS(r.elapsed_ns), 99, 1000);
  assert_code(iob_batch_free(b), 0);
  iob_tcp_target_destroy(t);
}

static void requests_past_the_timeout_are_cut_off(void **state) {
  uint32_t durations[6] = {20, 2000, 20, 2000, 20, 2000};
  iob_tcp_target *t;
  assert_code(iob_tcp_target_create(&t, address), 0);
  iob_config c = requests_to(t, &iob_style_loop, 6, 0);
  c.durations_ms = durations;
  c.timeout_ms = 100;
  iob_batch *b;
  assert_code(iob_run(&b, &c), 0);
  const iob_record *rec = iob_batch_records(b, NULL);
  for (int i = 0; i < 6; i++)
    assert_int_equal(rec[i].status, durations[i] > 100 ? IOB_ETIMEDOUT : 0);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_ms_between(MS(r.elapsed_ns), 99, 1000);
  assert_code(iob_batch_free(b), 0);
  iob_tcp_target_destroy(t);
}

static void the_first_refusal_stops_the_rest_when_failing_fast(void **s) {
  char nowhere[64];
  closed_address(nowhere, sizeof(nowhere));
  iob_tcp_target *t;
  assert_code(iob_tcp_target_create(&t, nowhere), 0);
  iob_config c = requests_to(t, &iob_style_loop, 100, 10);
  c.fail_fast = 1;
  c.max_in_flight = 10;
  iob_batch *b;
  assert_code(iob_run(&b, &c), 0);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_code(r.status, UV_ECONNREFUSED);
  assert_int_equal(r.failed, 100);
  assert_code(iob_batch_free(b), 0);
  iob_tcp_target_destroy(t);
}

/* ---- out of file descriptors, in a child process ------------------------ */

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL)
    return -1;
  int n = 0;
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n;
}

/* In the child: 200 requests of 300 ms with at most 64 descriptors, in the loop and
 * the threads styles. Every operation ends answered or with UV_EMFILE, the
 * batch completes and gives every descriptor back. Exits 0 if so. */
static int run_out_of_descriptors(const char *where) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = 64;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 2;
  /* libuv opens descriptors of its own, for good, with the first loop. */
  uv_loop_t first;
  if (uv_loop_init(&first) != 0 || uv_loop_close(&first) != 0)
    return 2;
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    int before = open_fds();
    iob_tcp_target *t;
    if (iob_tcp_target_create(&t, where) != 0)
      return 3;
    /* 1 s each: enough for all to overlap even when creating a thread
     * takes 5 ms (ThreadSanitizer), so that many meet the limit. */
    iob_config c = requests_to(t, styles[k], 200, 1000);
    uv_loop_t loop;
    iob_batch *b;
    if (uv_loop_init(&loop) != 0 || iob_batch_create(&b, &c) != 0 ||
        iob_batch_start(b, &loop, on_batch_done) != 0)
      return 4;
    uv_run(&loop, UV_RUN_DEFAULT);
    const iob_record *rec = iob_batch_records(b, NULL);
    int answered = 0, emfile = 0;
    for (int i = 0; i < 200; i++) {
      answered += rec[i].status == 0;
      emfile += rec[i].status == UV_EMFILE;
    }
    fprintf(stderr, "%s: %d answered, %d out of descriptors\n",
            iob_style_name(styles[k]), answered, emfile);
    /* All start at once on the loop; threads start one by one, slowly
     * under sanitizers, yet with 1 s each many overlap. */
    int least = styles[k] == &iob_style_loop ? 100 : 20;
    if (answered + emfile != 200 || emfile < least || answered < 10)
      return 5;
    iob_batch_free(b);
    iob_tcp_target_destroy(t);
    if (uv_loop_close(&loop) != 0)
      return 6;
    if (open_fds() != before) {
      fprintf(stderr, "%d descriptors open before, %d after\n", before,
              open_fds());
      return 7;
    }
  }
  return 0;
}

static void
running_out_of_descriptors_fails_operations_not_the_batch(void **state) {
  char *args[] = {(char *)self, "--out-of-descriptors", address, NULL};
  assert_int_equal(test_run_child(args), 0);
}

/* ---- bad input ---------------------------------------------------------- */

static void bad_addresses_and_arguments_are_refused(void **state) {
  const char *bad[] = {"",
                       "127.0.0.1",
                       "127.0.0.1:",
                       ":80",
                       "example.org:80",
                       "127.0.0.1:65536",
                       "1.2.3.4x:80",
                       "[::1:80",
                       "::1:80x",
                       "[]:80",
                       "1.2.3.4:-1",
                       "1.2.3.4:123456"};
  iob_tcp_target *t = (iob_tcp_target *)&t;
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    assert_code(iob_tcp_target_create(&t, bad[k]), IOB_EINVAL);
    assert_null(t);
  }
  struct sockaddr_storage addr;
  assert_code(iob_tcp_address_parse(NULL, &addr), IOB_EINVAL);
  assert_code(iob_tcp_address_parse("127.0.0.1:1", NULL), IOB_EINVAL);
  assert_code(iob_tcp_address_parse("[::1]:8080", &addr), 0);
  assert_int_equal(addr.ss_family, AF_INET6);
  assert_code(iob_tcp_address_parse("localhost:8080", &addr), 0);
  assert_int_equal(addr.ss_family, AF_INET);
  assert_int_equal(ntohs(((struct sockaddr_in *)&addr)->sin_port), 8080);
  assert_code(iob_tcp_target_create(NULL, "127.0.0.1:1"), IOB_EINVAL);
  assert_code(iob_tcp_target_create(&t, NULL), IOB_EINVAL);

  assert_code(iob_tcp_target_create(&t, "127.0.0.1:1"), 0);
  iob_config c = requests_to(t, &iob_style_loop, 0, 100);
  iob_batch *b = (iob_batch *)&b;
  assert_code(iob_batch_create(&b, &c), IOB_EINVAL); /* count 0 */
  assert_null(b);
  c.count = 1;
  c.target = NULL; /* requests to nowhere, in every style */
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    c.style = style;
    assert_code(iob_batch_create(&b, &c), IOB_EINVAL);
    assert_null(b);
  }
  c.target = t;
  c.duration_ms = IOB_DURATION_MAX_MS + 1;
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  assert_null(b);
  iob_tcp_target_destroy(t);
  iob_tcp_target_destroy(NULL);
}

static void an_ipv6_service_answers_too(void **state) {
  if (address6[0] == '\0') {
    print_message("no IPv6 loopback here: nothing to check\n");
    return;
  }
  uint32_t ok;
  run_requests(address6, &iob_style_loop, 5, 20, 0, &ok);
  assert_int_equal(ok, 5);
  run_requests(address6, &iob_style_threads, 5, 20, 0, &ok);
  assert_int_equal(ok, 5);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  self = argv[0];
  if (argc == 3 && strcmp(argv[1], "--out-of-descriptors") == 0)
    return run_out_of_descriptors(argv[2]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_style_gets_its_answers_from_the_slow_service),
      cmocka_unit_test(thousands_of_requests_overlap_on_one_loop),
      cmocka_unit_test(a_target_in_use_refuses_to_be_destroyed),
      cmocka_unit_test(each_request_asks_for_its_own_duration),
      cmocka_unit_test(one_target_serves_several_batches_at_once),
      cmocka_unit_test(
          cancelling_one_of_two_batches_on_a_target_spares_the_other),
      cmocka_unit_test(a_refused_connection_lands_in_each_operations_status),
      cmocka_unit_test(a_peer_that_never_answers_times_out_in_every_style),
      cmocka_unit_test(a_cancel_ends_requests_to_a_silent_peer_in_every_style),
      cmocka_unit_test(a_wrong_answer_or_a_hang_up_is_an_operations_error),
      cmocka_unit_test(cancel_mid_batch_closes_every_connection_at_once),
      cmocka_unit_test(requests_past_the_timeout_are_cut_off),
      cmocka_unit_test(the_first_refusal_stops_the_rest_when_failing_fast),
      cmocka_unit_test(
          running_out_of_descriptors_fails_operations_not_the_batch),
      cmocka_unit_test(bad_addresses_and_arguments_are_refused),
      cmocka_unit_test(an_ipv6_service_answers_too),
  };
  fd_limit_raise();
  unsigned port;
  if (slow_server_fork("127.0.0.1", &port, &service) != 0) {
    fprintf(stderr, "test-tcp: cannot start the slow service\n");
    return 1;
  }
  snprintf(address, sizeof(address), "127.0.0.1:%u", port);
  if (slow_server_fork("::1", &port, &service6) == 0)
    snprintf(address6, sizeof(address6), "[::1]:%u", port);
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (slow_server_kill(service) != 0 ||
      (address6[0] != '\0' && slow_server_kill(service6) != 0)) {
    fprintf(stderr, "test-tcp: the slow service did not end cleanly\n");
    failed++;
  }
  return failed;
}
