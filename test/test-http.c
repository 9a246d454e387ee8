/* HTTP requests (iobound-http: plain http:// on libuv in the loop
 * styles, libcurl on threads), against real servers on loopback: the
 * bundled slow service, which answers GET /wait/MS after MS ms, started
 * here; nginx, when the harness (nginx-test.sh) started one and says
 * where in IOB_TEST_NGINX_URL; and a peer of the test's own that answers
 * badly (a body without end, answers that cannot be taken, a reset).
 * Every style. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "iobound/http.h"
#include "../examples/slow-server.h"

static char service[64]; /* "http://127.0.0.1:PORT" */
static pid_t service_pid;
/* Two more that misbehave, for the retries: one failing 30% of its
 * requests with a 503, one failing every request with Retry-After: 1. */
static char failing[64], refusing[64];
static pid_t failing_pid, refusing_pid;

/* A service forked with `faults`, its base URL in base. Forked before
 * any test makes a thread: a child forked from a process with threads
 * may hang under ThreadSanitizer. */
static int fork_service(const slow_faults *faults, char base[64], pid_t *pid) {
  unsigned port;
  if (slow_server_fork_with("127.0.0.1", faults, &port, pid) != 0)
    return -1;
  snprintf(base, 64, "http://127.0.0.1:%u", port);
  return 0;
}

static int start_service(void **state) {
  if (fork_service(&(slow_faults){0}, service, &service_pid) != 0 ||
      fork_service(&(slow_faults){.fail = 0.3, .seed = 7}, failing,
                   &failing_pid) != 0 ||
      fork_service(&(slow_faults){.fail = 1, .retry_after = 1}, refusing,
                   &refusing_pid) != 0)
    return -1;
  return 0;
}

static int stop_service(void **state) {
  slow_server_kill(service_pid);
  slow_server_kill(failing_pid);
  slow_server_kill(refusing_pid);
  return 0;
}

static iob_http_target *target_of(const char *base, const char *path,
                                  int no_reuse) {
  char url[256];
  snprintf(url, sizeof(url), "%s%s", base, path);
  iob_http_options o = {.url = url, .no_reuse = no_reuse};
  iob_http_target *t;
  assert_code(iob_http_target_create(&t, &o), 0);
  return t;
}

static iob_batch *run_http(const iob_http_target *t, const iob_style *style,
                           uint32_t count, uint64_t ms, test_counts *counts) {
  iob_config c = config_of(style, count, ms);
  c.kind = &iob_kind_http;
  c.target = t;
  return run_on_own_loop(&c, counts);
}

/* Every answered request: status 0, value 200, the body "done MS\n". */
static void check_answered(const iob_batch *b, uint64_t ms) {
  uint32_t n;
  const iob_record *rec = iob_batch_records(b, &n);
  char body[32];
  snprintf(body, sizeof(body), "done %llu\n", (unsigned long long)ms);
  for (uint32_t i = 0; i < n; i++) {
    iob_outcome o;
    assert_code(iob_batch_outcome(b, i, &o), 0);
    if (o.status != 0)
      fail_msg("request %u: %s (%s)", i, iob_err_name(o.status),
               o.message ? o.message : "no message");
    assert_int_equal(o.value, 200);
    const iob_http_result *r = o.result;
    assert_non_null(r);
    assert_int_equal(r->code, 200);
    assert_int_equal(r->bytes, strlen(body));
    /* The service's timer counts from its loop's clock, read a moment
     * before the request arrived: a millisecond's leeway. */
    double took = MS(rec[i].finished_ns - rec[i].started_ns);
    if (took < (double)ms - 1)
      fail_msg("request %u took %.3f ms, less than the %llu ms asked", i, took,
               (unsigned long long)ms);
  }
}

static void requests_are_answered_in_every_style(void **state) {
  iob_http_target *t = target_of(service, "/wait/{ms}", 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    bool one_at_a_time = style == &iob_style_sequential;
    uint32_t count = one_at_a_time ? 3 : 20;
    test_counts counts;
    iob_batch *b = run_http(t, style, count, 100, &counts);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    print_message("%-10s %u requests of 100 ms: %.1f ms\n",
                  iob_style_name(style), count, MS(r.elapsed_ns));
    assert_int_equal(r.failed, 0);
    check_answered(b, 100);
    if (style == &iob_style_loop || style == &iob_style_threads)
      assert_ms_between(MS(r.elapsed_ns), 99, 1000); /* all at once */
    iob_batch_free(b);
  }
  iob_http_target_destroy(t);
}

/* {i} and {ms} are the operation's own: durations differ per operation. */
static void the_url_names_each_operations_index_and_duration(void **state) {
  iob_http_target *t = target_of(service, "/wait/{ms}?op={i}", 0);
  uint32_t ms[4] = {10, 100, 1000 / 10, 5};
  iob_config c = config_of(&iob_style_loop, 4, 0);
  c.kind = &iob_kind_http;
  c.target = t;
  c.durations_ms = ms;
  iob_batch *b = run_on_own_loop(&c, NULL);
  for (uint32_t i = 0; i < 4; i++) {
    iob_outcome o;
    assert_code(iob_batch_outcome(b, i, &o), 0);
    assert_int_equal(o.status, 0);
    char body[32];
    snprintf(body, sizeof(body), "done %u\n", ms[i]);
    assert_int_equal(((const iob_http_result *)o.result)->bytes, strlen(body));
  }
  iob_batch_free(b);
  iob_http_target_destroy(t);
}

/* Connections kept alive are reused: one after another on the loop, only
 * the first request connects; with no_reuse each one does. */
static void connections_are_reused_unless_told_not_to(void **state) {
  for (int no_reuse = 0; no_reuse < 2; no_reuse++) {
    iob_http_target *t = target_of(service, "/wait/{ms}", no_reuse);
    const iob_style *styles[] = {&iob_style_sequential, &iob_style_workers};
    for (size_t k = 0; k < 2; k++) {
      iob_config c = config_of(styles[k], 10, 1);
      c.kind = &iob_kind_http;
      c.target = t;
      c.max_in_flight = 1;
      iob_batch *b = run_on_own_loop(&c, NULL);
      uint32_t connected = 0;
      for (uint32_t i = 0; i < 10; i++) {
        iob_outcome o;
        assert_code(iob_batch_outcome(b, i, &o), 0);
        assert_int_equal(o.status, 0);
        connected += ((const iob_http_result *)o.result)->connect_ms > 0;
      }
      print_message("%s, %s: %u of 10 requests connected\n",
                    iob_style_name(styles[k]), no_reuse ? "no reuse" : "reuse",
                    connected);
      if (no_reuse)
        assert_int_equal(connected, 10);
      else
        assert_int_equal(connected, 1);
      iob_batch_free(b);
    }
    iob_http_target_destroy(t);
  }
}

/* A 404 fails the operation, saying so; its value is the code. */
static void an_answer_that_is_not_2xx_fails_with_its_code(void **state) {
  iob_http_target *t = target_of(service, "/nowhere/{i}", 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_batch *b = run_http(t, style, 2, 0, NULL);
    iob_outcome o;
    assert_code(iob_batch_outcome(b, 1, &o), 0);
    assert_code(o.status, UV_EIO);
    assert_int_equal(o.value, 404);
    assert_non_null(o.message);
    assert_non_null(strstr(o.message, "HTTP 404"));
    iob_batch_free(b);
  }
  iob_http_target_destroy(t);
}

/* ---- retries (iob_retry) ------------------------------------------------- */

/* A service that fails 30% of its requests with a 503: retries with a
 * budget of 60% more load (and a floor for the first) make all 40
 * succeed in every style, at about 17 retries (0.3 + 0.09 + 0.027...
 * of 40), within the budget. */
static void
retries_turn_a_service_failing_30_percent_into_all_successes(void **state) {
  iob_http_target *t = target_of(failing, "/wait/{ms}", 0);
  iob_budget *budget;
  assert_code(iob_budget_create(&budget, 0.6, 2, 0), 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_retry p;
    iob_retry_init(&p);
    p.attempts = 12; /* six in a row fail once in 1,400: too often */
    p.backoff_min_ms = 2;
    p.backoff_max_ms = 20;
    p.budget = budget;
    iob_config c = config_of(style, 40, 5);
    c.kind = &iob_kind_http;
    c.target = t;
    c.retry = &p;
    c.max_in_flight = 20;
    test_counts counts;
    iob_batch *b = run_on_own_loop(&c, &counts);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    for (uint32_t i = 0; i < 40 && r.failed != 0; i++) {
      iob_outcome o;
      assert_code(iob_batch_outcome(b, i, &o), 0);
      if (o.status != 0)
        print_message("%s #%u: %s after %u retries: %s\n",
                      iob_style_name(style), i, iob_err_name(o.status),
                      o.retries, o.message ? o.message : "");
    }
    if (r.failed != 0 || r.retries < 4 || r.retries > 30)
      fail_msg("%s: %u failed after %u retries", iob_style_name(style),
               r.failed, r.retries);
    iob_batch_free(b);
  }
  iob_budget_free(budget);
  iob_http_target_destroy(t);
}

/* A 503 with Retry-After: 1 is retried a second later, not at the
 * backoff's millisecond; a 404 is never retried. */
static void a_retry_waits_for_retry_after_and_a_404_is_final(void **state) {
  iob_http_target *t = target_of(refusing, "/wait/1", 0);
  iob_retry p;
  iob_retry_init(&p);
  p.attempts = 2;
  p.backoff_min_ms = p.backoff_max_ms = 1;
  iob_config c = config_of(&iob_style_loop, 1, 0);
  c.kind = &iob_kind_http;
  c.target = t;
  c.retry = &p;
  iob_batch *b = run_on_own_loop(&c, NULL);
  iob_outcome o;
  assert_code(iob_batch_outcome(b, 0, &o), 0);
  assert_code(o.status, UV_EIO);
  assert_int_equal(o.value, 503);
  assert_int_equal(o.retries, 1);
  const iob_record *rec = iob_batch_records(b, NULL);
  assert_ms_at_least(MS(rec[0].finished_ns - rec[0].started_ns), 1000);
  iob_batch_free(b);
  iob_http_target_destroy(t);

  t = target_of(service, "/nowhere", 0);
  c.target = t;
  p.attempts = 5;
  b = run_on_own_loop(&c, NULL);
  assert_code(iob_batch_outcome(b, 0, &o), 0);
  assert_int_equal(o.value, 404);
  assert_int_equal(o.retries, 0);
  iob_batch_free(b);
  iob_http_target_destroy(t);
}

/* Nothing listens: refused, in libcurl's words. */
static void a_closed_port_is_refused_in_every_style(void **state) {
  int port;
  close(test_loopback_socket(false, &port));
  char base[64];
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
  iob_http_target *t = target_of(base, "/", 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_batch *b = run_http(t, style, 3, 0, NULL);
    iob_outcome o;
    assert_code(iob_batch_outcome(b, 0, &o), 0);
    assert_code(o.status, UV_ECONNREFUSED);
    assert_non_null(o.message);
    iob_batch_free(b);
  }
  iob_http_target_destroy(t);
}

/* A timeout ends a request the service takes long over, in every style;
 * a cancel likewise (on a thread within about a second). */
static void timeouts_and_cancels_end_slow_requests(void **state) {
  iob_http_target *t = target_of(service, "/wait/{ms}", 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, 3, 5000);
    c.kind = &iob_kind_http;
    c.target = t;
    c.timeout_ms = 100;
    test_counts counts;
    iob_batch *b = run_on_own_loop(&c, &counts);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    assert_int_equal(r.failed, 3);
    const iob_record *rec = iob_batch_records(b, NULL);
    assert_code(rec[0].status, IOB_ETIMEDOUT);
    assert_ms_below(MS(r.elapsed_ns), 3000);
    iob_batch_free(b);

    c.timeout_ms = 0;
    test_loop tl;
    test_loop_init(&tl);
    iob_batch *cb = test_loop_start(&tl, &c, NULL);
    test_loop_cancel_after(&tl, cb, 100);
    test_loop_run(&tl);
    assert_code(tl.batches[0].counts.batch_status, IOB_ECANCELED);
    assert_int_equal(tl.batches[0].counts.cancelled, 3);
    assert_code(iob_batch_report(cb, &r), 0);
    print_message("%-10s cancelled after %.1f ms\n", iob_style_name(style),
                  MS(r.elapsed_ns));
    assert_ms_below(MS(r.elapsed_ns), 3000);
    test_loop_close(&tl);
    iob_batch_free(cb);
  }
  iob_http_target_destroy(t);
}

/* nginx, a server of someone else's, when the harness started one: its
 * echo module's echo_sleep delays each answer. */
static void nginx_answers_every_style(void **state) {
  const char *nginx = getenv("IOB_TEST_NGINX_URL");
  assert_non_null(nginx); /* main() skips the test without it */
  iob_http_target *t = target_of(nginx, "/wait/{ms}", 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    uint32_t count = style == &iob_style_sequential ? 3 : 20;
    iob_batch *b = run_http(t, style, count, 100, NULL);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    print_message("nginx, %-10s %u requests of 100 ms: %.1f ms\n",
                  iob_style_name(style), count, MS(r.elapsed_ns));
    assert_int_equal(r.failed, 0);
    check_answered(b, 100);
    iob_batch_free(b);
  }
  iob_http_target_destroy(t);
}

/* HEAD gets the headers, no body, and does not wait for one. */
static void a_head_request_ends_without_a_body(void **state) {
  char url[128];
  snprintf(url, sizeof(url), "%s/wait/{ms}", service);
  iob_http_options o = {.method = "HEAD", .url = url};
  iob_http_target *t;
  assert_code(iob_http_target_create(&t, &o), 0);
  const iob_style *styles[] = {&iob_style_loop, &iob_style_pool};
  for (size_t k = 0; k < 2; k++) {
    iob_config c = config_of(styles[k], 4, 10);
    c.kind = &iob_kind_http;
    c.target = t;
    c.timeout_ms = 2000; /* a HEAD that waited for a body would hit it */
    iob_batch *b = run_on_own_loop(&c, NULL);
    iob_outcome out;
    assert_code(iob_batch_outcome(b, 0, &out), 0);
    assert_int_equal(out.status, 0);
    assert_int_equal(out.value, 200);
    assert_int_equal(((const iob_http_result *)out.result)->bytes, 0);
    iob_batch_free(b);
  }
  iob_http_target_destroy(t);
}

/* ---- peers that answer badly, on a thread of the test's own -------------- */

/* What a peer does on a connection once some of a request has come. */
typedef enum peer_mode {
  PEER_ANSWER,  /* send the answer, then read until the client closes */
  PEER_ENDLESS, /* send the answer, then chunks of a body, forever */
  PEER_RESET,   /* close at once with SO_LINGER 0: the client sees a reset */
} peer_mode;

typedef struct peer_answer {
  peer_mode mode;
  const char *bytes; /* NULL for PEER_RESET */
  size_t len;
} peer_answer;

#define PEER_CONNS 32

typedef struct peer_conn {
  int fd;
  const peer_answer *answer;
  bool asked;  /* some of the request came: time to answer */
  bool chunks; /* the answer is sent: PEER_ENDLESS sends chunks now */
  size_t sent; /* of the answer, then of the chunk */
} peer_conn;

#define PEER_ANSWERS 4

/* A server on 127.0.0.1 that gives its k-th connection answers[k % n]
 * and answers nothing else: poll() on plain sockets, on its own thread,
 * so that it answers whatever the loop under test does. */
typedef struct peer {
  uv_thread_t thread;
  int listen_fd, wake[2];            /* a byte on wake: stop */
  peer_answer answers[PEER_ANSWERS]; /* copied: the test's may be gone */
  size_t nanswers, accepted;
  peer_conn conns[PEER_CONNS];
  int nconns;
  char url[64]; /* "http://127.0.0.1:PORT/" */
} peer;

/* The body the endless peer sends, again and again: 256 KiB of chunks of
 * 8 bytes ("8\r\nxxxxxxxx\r\n"). libcurl calls back for each chunk, so
 * it reads slower than the peer writes and always finds more than it reads
 * in one go (100 reads of 16 KiB), when it asks to be called back at once.
 * (Chunks of 256 KiB it read about as fast as they came, and caught up now
 * and then.) */
#define CHUNK "8\r\nxxxxxxxx\r\n"
static char chunk[(256 * 1024 / (sizeof(CHUNK) - 1)) * (sizeof(CHUNK) - 1)];

static void chunk_init(void) {
  for (size_t k = 0; k < sizeof(chunk); k += sizeof(CHUNK) - 1)
    memcpy(chunk + k, CHUNK, sizeof(CHUNK) - 1);
}

static const char endless_head[] =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

static void peer_drop(peer *p, int k) {
  close(p->conns[k].fd);
  p->conns[k] = p->conns[--p->nconns];
}

/* A reset rather than a FIN: the kernel sends RST when a socket that
 * lingers for 0 s closes. */
static void peer_reset(peer *p, int k) {
  struct linger l = {.l_onoff = 1, .l_linger = 0};
  setsockopt(p->conns[k].fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  peer_drop(p, k);
}

/* Whether connection c has bytes to send now. */
static bool peer_sends(const peer_conn *c) {
  return c->asked && c->answer->mode != PEER_RESET &&
         (c->chunks || c->sent < c->answer->len);
}

/* Read what came (the request, discarded). false: the connection ended. */
static bool peer_read(peer_conn *c) {
  char scratch[4096];
  ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);
  if (n > 0)
    c->asked = true;
  return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/* Send as much as the socket takes, until it would block. false: the
 * connection ended. */
static bool peer_write(peer_conn *c) {
  while (peer_sends(c)) {
    const char *from = c->chunks ? chunk : c->answer->bytes;
    size_t len = c->chunks ? sizeof(chunk) : c->answer->len;
    ssize_t n = send(c->fd, from + c->sent, len - c->sent, MSG_NOSIGNAL);
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK;
    c->sent += (size_t)n;
    if (c->sent == len && (c->chunks || c->answer->mode == PEER_ENDLESS)) {
      c->chunks = true; /* after the answer, and after each chunk */
      c->sent = 0;
    }
  }
  return true;
}

static void peer_serve(peer *p, int k, short revents) {
  peer_conn *c = &p->conns[k];
  bool alive = true;
  if (revents & (POLLIN | POLLHUP | POLLERR))
    alive = peer_read(c);
  if (alive && c->asked && c->answer->mode == PEER_RESET) {
    peer_reset(p, k);
    return;
  }
  if (alive && (revents & POLLOUT) && peer_sends(c))
    alive = peer_write(c);
  if (!alive)
    peer_drop(p, k);
}

static void peer_accept(peer *p) {
  int fd = accept(p->listen_fd, NULL, NULL);
  if (fd < 0)
    return;
  if (p->nconns == PEER_CONNS) {
    close(fd);
    return;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  p->conns[p->nconns++] =
      (peer_conn){.fd = fd, .answer = &p->answers[p->accepted++ % p->nanswers]};
}

static void peer_main(void *arg) {
  peer *p = arg;
  for (;;) {
    struct pollfd fds[2 + PEER_CONNS];
    fds[0] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
    fds[1] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
    int n = p->nconns;
    for (int k = 0; k < n; k++)
      fds[2 + k] = (struct pollfd){
          .fd = p->conns[k].fd,
          .events = POLLIN | (peer_sends(&p->conns[k]) ? POLLOUT : 0)};
    if (poll(fds, (nfds_t)(2 + n), -1) < 0 && errno != EINTR)
      break;
    if (fds[0].revents != 0)
      break;
    /* Backwards: dropping connection k moves the last one into its place. */
    for (int k = n - 1; k >= 0; k--)
      if (fds[2 + k].revents != 0)
        peer_serve(p, k, fds[2 + k].revents);
    if (fds[1].revents != 0)
      peer_accept(p);
  }
  while (p->nconns > 0)
    peer_drop(p, 0);
}

/* The one peer a test may start: not on the test's stack, which the next
 * test's frames would take over while the thread still runs. The test
 * stops it before it frees what the answers point to; when the test
 * fails, its teardown does (and the answers leak, rather than be read
 * after they are freed). */
static peer the_peer;
static bool peer_running;

/* Start the peer; returns its URL. */
static const char *peer_start(const peer_answer *answers, size_t n) {
  assert_false(peer_running);
  assert_cmp(n, >, 0);
  assert_cmp(n, <=, PEER_ANSWERS);
  peer *p = &the_peer;
  *p = (peer){.nanswers = n};
  memcpy(p->answers, answers, n * sizeof(*answers));
  int port;
  p->listen_fd = test_loopback_socket(true, &port);
  assert_int_equal(pipe(p->wake), 0);
  snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d/", port);
  assert_code(uv_thread_create(&p->thread, peer_main, p), 0);
  peer_running = true;
  return p->url;
}

/* Stop the peer if it runs; also the teardown of every test that starts
 * it. */
static int peer_stop(void **state) {
  (void)state;
  if (!peer_running)
    return 0;
  peer *p = &the_peer;
  peer_running = false;
  int err = write(p->wake[1], "x", 1) == 1 ? 0 : -1;
  err |= uv_thread_join(&p->thread);
  close(p->wake[0]);
  close(p->wake[1]);
  close(p->listen_fd);
  return err;
}

/* ---- an endless body: the loop must go on -------------------------------- */

/* The application's own timer, on the batch's loop: it ticks every 50 ms,
 * and the largest gap between its ticks (or from the last one to the
 * batch's end) says how long the loop was kept from it. */
typedef struct ticker {
  uv_timer_t timer;
  uint64_t last_ns, largest_gap_ns;
} ticker;

static void ticker_note(ticker *k) {
  uint64_t now = uv_hrtime();
  if (now - k->last_ns > k->largest_gap_ns)
    k->largest_gap_ns = now - k->last_ns;
  k->last_ns = now;
}

static void on_tick(uv_timer_t *timer) { ticker_note(timer->data); }

/* The batch ended: the ticker's last gap counts, and it closes, so that
 * the loop ends. */
static void stop_ticker(iob_batch *b, int status) {
  (void)status;
  ticker *k = iob_batch_data(b);
  ticker_note(k);
  uv_close((uv_handle_t *)&k->timer, NULL);
}

/* Run the batch of `config` on a loop of its own beside a ticker; the loop
 * must close. Returns the batch; its callback's status in *status. */
static iob_batch *run_beside_ticker(const iob_config *config, ticker *k,
                                    int *status) {
  test_loop t;
  test_loop_init(&t);
  assert_code(uv_timer_init(&t.loop, &k->timer), 0);
  k->timer.data = k;
  iob_config c = *config;
  c.data = k;
  iob_batch *b = test_loop_start(&t, &c, stop_ticker);
  k->last_ns = uv_hrtime();
  assert_code(uv_timer_start(&k->timer, on_tick, 50, 50), 0);
  test_loop_run(&t);
  *status = test_loop_counts(&t, b)->batch_status;
  test_loop_close(&t);
  return b;
}

/* Requests at once to the endless peer: each costs the loop up to 100
 * reads of 16 KiB a turn, so with more the loop turns slower, and with
 * two the old code already kept the loop from its timers for seconds. */
#define ENDLESS_REQUESTS 2

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

/* How many times slower than itself this program runs: 15 under valgrind,
 * whose memcheck runs libcurl's reading of the endless body 10 times
 * slower, and more beside another test (a gap of 2851 ms between the
 * loop's ticks in CI, 2026-12-07), 3 under AddressSanitizer or
 * ThreadSanitizer, whose threads reading the body compete for two cores
 * with the loop's; 1 otherwise. */
static double slowdown(void) {
  bool valgrind = test_under_valgrind();
#ifdef SANITIZED
  return valgrind ? 15 : 3;
#else
  return valgrind ? 15 : 1;
#endif
}

/* ENDLESS_REQUESTS requests, as `c` says (its style, a timeout or a
 * deadline), to a peer whose body never ends: every operation must end
 * with `status`, the batch by `ends_ms` + 300 ms (a turn of the loop, in
 * which libcurl reads up to 1.6 MB a transfer, takes tens of ms on a busy
 * two-core machine), and the loop's own timer of 50 ms must never wait
 * 250 ms (both ten times that under valgrind). */
static void endless_body_in(iob_config c, int status, uint64_t ends_ms) {
  ticker k = {.largest_gap_ns = 0};
  int batch_status;
  iob_batch *b = run_beside_ticker(&c, &k, &batch_status);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  print_message(
      "%-10s endless body, %s %llu ms: ended after %.1f ms, "
      "largest gap between the loop's ticks %.1f ms\n",
      iob_style_name(c.style), c.timeout_ms ? "timeout" : "deadline",
      (unsigned long long)(c.timeout_ms ? c.timeout_ms : c.deadline_ms),
      MS(r.elapsed_ns), MS(k.largest_gap_ns));
  const iob_record *rec = iob_batch_records(b, NULL);
  for (uint32_t i = 0; i < c.count; i++)
    if (rec[i].status != status)
      fail_msg("request %u: %s, expected %s", i, iob_err_name(rec[i].status),
               iob_err_name(status));
  assert_int_equal(batch_status, c.deadline_ms ? IOB_ETIMEDOUT : 0);
  double slow = slowdown();
  assert_ms_below(MS(r.elapsed_ns), (double)ends_ms + 300 * slow);
  assert_ms_below(MS(k.largest_gap_ns), 250 * slow);
  iob_batch_free(b);
}

static const peer_answer endless = {PEER_ENDLESS, endless_head,
                                    sizeof(endless_head) - 1};

static iob_config endless_config(const iob_style *style,
                                 const iob_http_target *t) {
  iob_config c = config_of(style, ENDLESS_REQUESTS, 0);
  c.kind = &iob_kind_http;
  c.target = t;
  return c;
}

/* While a body keeps coming, libcurl keeps asking to be called back at
 * once (0 ms): that must keep neither the loop from its other timers nor
 * the batch from its timeout. In every style. */
static void an_endless_body_ends_at_the_timeout_and_the_loop_keeps_its_timers(
    void **state) {
  iob_http_target *t = target_of(peer_start(&endless, 1), "", 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = endless_config(style, t);
    c.timeout_ms = 500;
    /* One after another, each times out 500 ms after the one before. */
    uint64_t ends = 500 * (style == &iob_style_sequential ? c.count : 1);
    endless_body_in(c, IOB_ETIMEDOUT, ends);
  }
  iob_http_target_destroy(t);
  assert_int_equal(peer_stop(NULL), 0);
}

/* Likewise the batch's deadline, in the styles that run libcurl on a loop:
 * the loops style's loops hear its cancel from the caller's loop, which
 * they cannot while a timer of 0 ms keeps them from polling. (On a thread
 * libcurl's own timeout, set to the time left, and the deadline race:
 * either may end the request, IOB_ETIMEDOUT or IOB_ECANCELED.) */
static void an_endless_body_ends_at_the_deadline_and_the_loop_keeps_its_timers(
    void **state) {
  iob_http_target *t = target_of(peer_start(&endless, 1), "", 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    if (iob_style_flags(style) & IOB_STYLE_ON_THREADS)
      continue;
    iob_config c = endless_config(style, t);
    c.deadline_ms = 700;
    endless_body_in(c, IOB_ECANCELED, 700);
  }
  iob_http_target_destroy(t);
  assert_int_equal(peer_stop(NULL), 0);
}

/* ---- answers that are not HTTP ------------------------------------------- */

static void check_failed(const iob_batch *b, uint32_t i, int status,
                         const char *words) {
  iob_outcome o;
  assert_code(iob_batch_outcome(b, i, &o), 0);
  if (o.status != status || o.message == NULL ||
      strstr(o.message, words) == NULL)
    fail_msg("request %u: %s (%s), expected %s saying \"%s\"", i,
             iob_err_name(o.status), o.message ? o.message : "no message",
             iob_err_name(status), words);
}

/* Two requests in every style to a peer that gives `answer` to each: each
 * fails with `status` and a message that holds `words`. */
static void every_style_fails_with(const peer_answer *answer, int status,
                                   const char *words) {
  iob_http_target *t = target_of(peer_start(answer, 1), "", 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_batch *b = run_http(t, style, 2, 0, NULL);
    for (uint32_t i = 0; i < 2; i++)
      check_failed(b, i, status, words);
    iob_batch_free(b);
  }
  iob_http_target_destroy(t);
  assert_int_equal(peer_stop(NULL), 0);
}

/* "HTTP/1.1 200 OK", `n` headers of `size` bytes each, and an empty body. */
static char *answer_with_headers(size_t n, size_t size) {
  static const char first[] = "HTTP/1.1 200 OK\r\n";
  static const char last[] = "Content-Length: 0\r\n\r\n";
  char *a = malloc(sizeof(first) + n * (size + 2) + sizeof(last));
  assert_non_null(a);
  char *w = stpcpy(a, first);
  for (size_t k = 0; k < n; k++) {
    int name = snprintf(w, size, "X-%zu: ", k);
    memset(w + name, 'a', size - (size_t)name);
    w = stpcpy(w + size, "\r\n");
  }
  strcpy(w, last);
  return a;
}

/* libcurl takes header lines of up to 100 KB (CURL_MAX_HTTP_HEADER). */
static void
a_200_kb_header_line_is_a_bad_answer_not_out_of_memory(void **state) {
  char *bytes = answer_with_headers(1, 200 * 1024);
  peer_answer a = {PEER_ANSWER, bytes, strlen(bytes)};
  every_style_fails_with(&a, UV_EIO, "header line");
  free(bytes);
}

/* libcurl takes 300 KB of headers in all. */
static void headers_over_300_kb_are_a_bad_answer_not_a_reset(void **state) {
  char *bytes = answer_with_headers(320, 1000);
  peer_answer a = {PEER_ANSWER, bytes, strlen(bytes)};
  every_style_fails_with(&a, UV_EIO, "header");
  free(bytes);
}

static const char bad_chunks[] = "HTTP/1.1 200 OK\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n"
                                 "zz\r\nhello\r\n0\r\n\r\n";

static void bad_chunked_encoding_is_a_bad_answer_not_a_reset(void **state) {
  peer_answer a = {PEER_ANSWER, bad_chunks, sizeof(bad_chunks) - 1};
  every_style_fails_with(&a, UV_EIO, "chunked");
}

static void a_connection_the_server_resets_is_still_a_reset(void **state) {
  peer_answer a = {PEER_RESET, NULL, 0};
  every_style_fails_with(&a, UV_ECONNRESET, "reset");
}

/* One request at a time, a reset then bad chunks, twice: on the thread
 * styles each request takes the handle the one before left, and libcurl
 * keeps a handle's last errno through curl_easy_reset(), so the reset's
 * must not make the bad chunks a reset too. */
static void
after_a_reset_the_next_bad_answer_is_not_taken_for_one(void **state) {
  peer_answer answers[2] = {{PEER_RESET, NULL, 0},
                            {PEER_ANSWER, bad_chunks, sizeof(bad_chunks) - 1}};
  iob_http_target *t = target_of(peer_start(answers, 2), "", 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, 4, 0);
    c.kind = &iob_kind_http;
    c.target = t;
    /* One at a time, each on a connection of its own (a failed one is
     * not kept): request i gets the peer's i-th connection of the batch,
     * four a batch keeping the turns in step. */
    c.max_in_flight = 1;
    iob_batch *b = run_on_own_loop(&c, NULL);
    for (uint32_t i = 0; i < 4; i++)
      check_failed(b, i, i % 2 ? UV_EIO : UV_ECONNRESET,
                   i % 2 ? "chunked" : "reset");
    iob_batch_free(b);
  }
  iob_http_target_destroy(t);
  assert_int_equal(peer_stop(NULL), 0);
}

/* ---- out of file descriptors, in a child process ------------------------- */

static const char *self; /* this program, to run the child */

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

static void on_child_batch_done(iob_batch *b, int status) {
  (void)b;
  (void)status;
}

/* One batch of 200 requests of 1 s to target t in `style`, in the child:
 * each is answered or fails with UV_EMFILE, at least `least` of them so,
 * and every descriptor comes back. 0 if so. */
static int out_of_descriptors_in(const iob_style *style,
                                 const iob_http_target *t, int least) {
  int before = open_fds();
  iob_config c = config_of(style, 200, 1000);
  c.kind = &iob_kind_http;
  c.target = t;
  uv_loop_t loop;
  iob_batch *b;
  if (uv_loop_init(&loop) != 0 || iob_batch_create(&b, &c) != 0 ||
      iob_batch_start(b, &loop, on_child_batch_done) != 0)
    return 4;
  uv_run(&loop, UV_RUN_DEFAULT);
  int answered = 0, emfile = 0, other = 0;
  for (uint32_t i = 0; i < 200; i++) {
    iob_outcome o;
    iob_batch_outcome(b, i, &o);
    answered += o.status == 0;
    /* in words that say so, not libcurl's "Couldn't connect" */
    emfile += o.status == UV_EMFILE && o.message != NULL &&
              strstr(o.message, "file descriptors") != NULL;
    if (o.status != 0 && o.status != UV_EMFILE && other++ == 0)
      fprintf(stderr, "%s: request %u: %s (%s)\n", iob_style_name(style), i,
              iob_err_name(o.status), o.message ? o.message : "no message");
  }
  fprintf(stderr, "%s: %d answered, %d out of descriptors\n",
          iob_style_name(style), answered, emfile);
  iob_batch_free(b);
  if (uv_loop_close(&loop) != 0)
    return 6;
  if (answered + emfile != 200 || emfile < least || answered < 10)
    return 5;
  if (open_fds() != before) {
    fprintf(stderr, "%d descriptors open before, %d after\n", before,
            open_fds());
    return 7;
  }
  return 0;
}

/* The child: at most 64 descriptors, so that socket() fails for most of
 * 200 requests at once, in the loop and the threads styles. */
static int run_out_of_descriptors(const char *base) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = 64;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 2;
  /* libuv opens descriptors of its own, for good, with the first loop. */
  uv_loop_t first;
  if (uv_loop_init(&first) != 0 || uv_loop_close(&first) != 0)
    return 2;
  char url[256];
  snprintf(url, sizeof(url), "%s/wait/{ms}", base);
  iob_http_options o = {.url = url};
  iob_http_target *t;
  if (iob_http_target_create(&t, &o) != 0)
    return 3;
  /* All start at once on the loop; threads one by one, slowly under
   * sanitizers, yet with 1 s each many overlap. */
  int err = out_of_descriptors_in(&iob_style_loop, t, 100);
  if (err == 0)
    err = out_of_descriptors_in(&iob_style_threads, t, 20);
  iob_http_target_destroy(t);
  return err;
}

/* As the TCP kind says: UV_EMFILE, not "Couldn't connect" (refused). */
static void out_of_descriptors_is_emfile_not_a_refusal(void **state) {
  char *args[] = {(char *)self, "--out-of-descriptors", service, NULL};
  assert_int_equal(test_run_child(args), 0);
}

static int destroy_http_target(void *t) { return iob_http_target_destroy(t); }

static void a_target_in_use_refuses_to_be_destroyed(void **state) {
  iob_http_target *t = target_of(service, "/wait/{ms}", 0);
  iob_config c = config_of(NULL, 2, 50);
  c.kind = &iob_kind_http;
  c.target = t;
  check_target_busy_while_running(&c, destroy_http_target);
  assert_code(iob_http_target_destroy(t), 0);
  assert_code(iob_http_target_destroy(NULL), 0);
}

static void bad_targets_are_refused(void **state) {
  iob_http_target *t = (iob_http_target *)&t;
  iob_http_options o = {.url = "ftp://127.0.0.1/"};
  assert_code(iob_http_target_create(NULL, &o), IOB_EINVAL);
  assert_code(iob_http_target_create(&t, NULL), IOB_EINVAL);
  assert_null(t);
  assert_code(iob_http_target_create(&t, &o), IOB_EINVAL);
  o.url = NULL;
  assert_code(iob_http_target_create(&t, &o), IOB_EINVAL);
  o.url = "http://127.0.0.1/\r\nX: y";
  assert_code(iob_http_target_create(&t, &o), IOB_EINVAL);
  const char *headers[] = {"A: b\nC: d", NULL};
  o = (iob_http_options){.url = "http://127.0.0.1/", .headers = headers};
  assert_code(iob_http_target_create(&t, &o), IOB_EINVAL);
  iob_http_target_destroy(NULL);
  /* A batch without a target. */
  iob_config c = config_of(&iob_style_loop, 1, 1);
  c.kind = &iob_kind_http;
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), IOB_EINVAL);
}

/* `test-http`: against the slow service; `test-http libcurl`: the same,
 * plain http:// through libcurl on the loop styles too (a part of the
 * tests: what libcurl's path does on a loop); `test-http nginx`: against
 * the nginx the harness started, or skipped (77) when there is none. */
int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  self = argv[0];
  if (argc == 3 && strcmp(argv[1], "--out-of-descriptors") == 0)
    return run_out_of_descriptors(argv[2]);
  chunk_init();
  if (argc > 1 && strcmp(argv[1], "nginx") == 0) {
    if (getenv("IOB_TEST_NGINX_URL") == NULL) {
      fprintf(stderr, "no nginx to test against (IOB_TEST_NGINX_URL unset)\n");
      return 77;
    }
    const struct CMUnitTest nginx[] = {
        cmocka_unit_test(nginx_answers_every_style),
    };
    return cmocka_run_group_tests(nginx, NULL, NULL);
  }
  if (argc > 1 && strcmp(argv[1], "libcurl") == 0) {
    /* The loop styles through libcurl, as https:// goes there (and plain
     * http:// went before 0.5): its sockets and timers on the loop. */
    setenv("IOB_HTTP_LIBCURL", "1", 1);
    const struct CMUnitTest libcurl[] = {
        cmocka_unit_test(requests_are_answered_in_every_style),
        cmocka_unit_test(connections_are_reused_unless_told_not_to),
        cmocka_unit_test(a_closed_port_is_refused_in_every_style),
        cmocka_unit_test(timeouts_and_cancels_end_slow_requests),
        cmocka_unit_test_teardown(
            an_endless_body_ends_at_the_timeout_and_the_loop_keeps_its_timers,
            peer_stop),
        cmocka_unit_test_teardown(
            an_endless_body_ends_at_the_deadline_and_the_loop_keeps_its_timers,
            peer_stop),
        cmocka_unit_test_teardown(
            a_200_kb_header_line_is_a_bad_answer_not_out_of_memory, peer_stop),
        cmocka_unit_test_teardown(
            bad_chunked_encoding_is_a_bad_answer_not_a_reset, peer_stop),
        cmocka_unit_test_teardown(
            a_connection_the_server_resets_is_still_a_reset, peer_stop),
        cmocka_unit_test(out_of_descriptors_is_emfile_not_a_refusal),
    };
    return cmocka_run_group_tests(libcurl, start_service, stop_service);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(requests_are_answered_in_every_style),
      cmocka_unit_test(the_url_names_each_operations_index_and_duration),
      cmocka_unit_test(connections_are_reused_unless_told_not_to),
      cmocka_unit_test(an_answer_that_is_not_2xx_fails_with_its_code),
      cmocka_unit_test(a_closed_port_is_refused_in_every_style),
      cmocka_unit_test(
          retries_turn_a_service_failing_30_percent_into_all_successes),
      cmocka_unit_test(a_retry_waits_for_retry_after_and_a_404_is_final),
      cmocka_unit_test(timeouts_and_cancels_end_slow_requests),
      cmocka_unit_test(a_head_request_ends_without_a_body),
      cmocka_unit_test_teardown(
          an_endless_body_ends_at_the_timeout_and_the_loop_keeps_its_timers,
          peer_stop),
      cmocka_unit_test_teardown(
          an_endless_body_ends_at_the_deadline_and_the_loop_keeps_its_timers,
          peer_stop),
      cmocka_unit_test_teardown(
          a_200_kb_header_line_is_a_bad_answer_not_out_of_memory, peer_stop),
      cmocka_unit_test_teardown(
          headers_over_300_kb_are_a_bad_answer_not_a_reset, peer_stop),
      cmocka_unit_test_teardown(
          bad_chunked_encoding_is_a_bad_answer_not_a_reset, peer_stop),
      cmocka_unit_test_teardown(a_connection_the_server_resets_is_still_a_reset,
                                peer_stop),
      cmocka_unit_test_teardown(
          after_a_reset_the_next_bad_answer_is_not_taken_for_one, peer_stop),
      cmocka_unit_test(out_of_descriptors_is_emfile_not_a_refusal),
      cmocka_unit_test(a_target_in_use_refuses_to_be_destroyed),
      cmocka_unit_test(bad_targets_are_refused),
  };
  return cmocka_run_group_tests(tests, start_service, stop_service);
}
