/* Plain http:// on the loop styles goes without libcurl (lib/ops/http1.c):
 * the request it sends is the one libcurl would send, answers framed every
 * way HTTP/1 frames them come back whole, a kept connection the server
 * closed is replaced without the request failing, max_host_connections
 * holds, an answer cut short fails in words that say where, and
 * IOB_HTTP_LIBCURL sends every request through libcurl again. Against a
 * peer of the test's own that answers as a script says. */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "iobound/http.h"

/* ---- a peer that follows a script ----------------------------------------- */

/* What a script's step may be besides an answer's bytes. */
#define CLOSE_ON_REQUEST "" /* close once the next request came, unanswered */
#define HANG_UP "\x01"      /* close now, before another request */
#define SILENCE "\x02"      /* answer nothing, until the client closes */

#define MAX_CONNS 8

/* A server on 127.0.0.1, on a thread of its own, that takes connections
 * one after another: on its c-th it answers the requests as conns[c]
 * says, one step a request, and after the last step waits for the client
 * to close. It keeps what the last request sent. */
typedef struct peer {
  uv_thread_t thread;
  int fd;
  const char *const *conns[MAX_CONNS];
  int nconns;
  atomic_int accepted, requests;
  atomic_bool stop;
  uv_mutex_t lock;
  char last[4096]; /* the last request's bytes, NUL-terminated */
  char url[64];    /* "http://127.0.0.1:PORT" */
} peer;

static peer the_peer;
static bool peer_running;

/* Wait for fd to be readable, a slice at a time, until told to stop. */
static bool peer_wait(peer *p, int fd) {
  while (!atomic_load(&p->stop)) {
    struct pollfd f = {.fd = fd, .events = POLLIN};
    int n = poll(&f, 1, 100);
    if (n > 0)
      return true;
    if (n < 0 && errno != EINTR)
      return false;
  }
  return false;
}

/* Read one request (its head, and a body of Content-Length bytes) into
 * p->last. false when the client closed first. */
static bool peer_read_request(peer *p, int fd) {
  char buf[sizeof(p->last)];
  size_t got = 0;
  char *end = NULL;
  size_t want = 0;
  while (end == NULL || got < want) {
    if (got == sizeof(buf) - 1 || !peer_wait(p, fd))
      return false;
    ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
    if (n <= 0)
      return false;
    got += (size_t)n;
    buf[got] = '\0';
    if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
      const char *cl = strstr(buf, "Content-Length: ");
      want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
    }
  }
  uv_mutex_lock(&p->lock);
  memcpy(p->last, buf, got + 1);
  uv_mutex_unlock(&p->lock);
  atomic_fetch_add(&p->requests, 1);
  return true;
}

static void peer_serve(peer *p, int fd, const char *const *steps) {
  for (size_t k = 0; steps[k] != NULL; k++) {
    if (strcmp(steps[k], HANG_UP) == 0)
      return;
    if (!peer_read_request(p, fd) || steps[k][0] == '\0')
      return;
    if (strcmp(steps[k], SILENCE) == 0)
      break;
    size_t len = strlen(steps[k]);
    if (send(fd, steps[k], len, MSG_NOSIGNAL) != (ssize_t)len)
      return;
  }
  char scratch[256]; /* until the client closes */
  while (peer_wait(p, fd) && recv(fd, scratch, sizeof(scratch), 0) > 0)
    ;
}

static void peer_main(void *arg) {
  peer *p = arg;
  for (int c = 0; c < p->nconns && peer_wait(p, p->fd); c++) {
    int fd = accept(p->fd, NULL, NULL);
    if (fd < 0)
      break;
    atomic_fetch_add(&p->accepted, 1);
    peer_serve(p, fd, p->conns[c]);
    close(fd);
  }
}

/* Start the peer with a script for each of its n connections (static
 * arrays, each up to NULL); returns its URL. */
static const char *peer_start(const char *const *const *conns, int n) {
  assert_false(peer_running);
  assert_cmp(n, >, 0);
  assert_cmp(n, <=, MAX_CONNS);
  peer *p = &the_peer;
  *p = (peer){.nconns = n};
  for (int c = 0; c < n; c++)
    p->conns[c] = conns[c];
  int port;
  p->fd = test_loopback_socket(true, &port);
  snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", port);
  assert_code(uv_mutex_init(&p->lock), 0);
  assert_code(uv_thread_create(&p->thread, peer_main, p), 0);
  peer_running = true;
  return p->url;
}

/* Stop the peer if it runs: the teardown of every test. */
static int peer_stop(void **state) {
  (void)state;
  if (!peer_running)
    return 0;
  peer *p = &the_peer;
  peer_running = false;
  atomic_store(&p->stop, true);
  int err = uv_thread_join(&p->thread);
  close(p->fd);
  uv_mutex_destroy(&p->lock);
  return err;
}

/* What the peer's last request sent. */
static void last_request(char *out, size_t size) {
  uv_mutex_lock(&the_peer.lock);
  snprintf(out, size, "%s", the_peer.last);
  uv_mutex_unlock(&the_peer.lock);
}

/* ---- running requests ------------------------------------------------------- */

static iob_http_client *client_on(test_loop *t, uint32_t max_host) {
  iob_http_client_options o = {.max_host_connections = max_host};
  iob_http_client *c;
  assert_code(iob_http_client_create(&c, &t->loop, &o), 0);
  return c;
}

/* A client on t's loop, which sends every request through libcurl if
 * `libcurl` (IOB_HTTP_LIBCURL, read as a client is made). */
static iob_http_client *client_via(test_loop *t, bool libcurl) {
  if (libcurl)
    setenv("IOB_HTTP_LIBCURL", "1", 1);
  iob_http_client *c = client_on(t, 0);
  unsetenv("IOB_HTTP_LIBCURL");
  return c;
}

static void end_client(test_loop *t, iob_http_client *c) {
  assert_code(iob_http_client_destroy(c), 0);
  test_loop_run(t);
  test_loop_close(t);
}

/* n requests through c on the loop style, one after another. */
static iob_batch *one_by_one(test_loop *t, iob_http_client *c,
                             const iob_http_request *r, uint32_t n) {
  return test_loop_run_tasks(t, &iob_style_loop, 1, &iob_kind_http, c, r,
                             sizeof(*r), n);
}

/* n GETs of url through c on the loop style, at most `limit` at once
 * (0: all). */
static iob_batch *gets(test_loop *t, iob_http_client *c, const char *url,
                       uint32_t n, uint32_t limit) {
  iob_http_request r[8];
  assert_cmp(n, <=, 8);
  for (uint32_t i = 0; i < n; i++)
    r[i] = (iob_http_request){.url = url};
  return test_loop_run_tasks(t, &iob_style_loop, limit, &iob_kind_http, c, r,
                             sizeof(r[0]), n);
}

static char *url_to(const char *base, const char *path) {
  static char urls[8][128];
  static int next;
  char *u = urls[next++ % 8];
  snprintf(u, sizeof(urls[0]), "%s%s", base, path);
  return u;
}

static const iob_http_result *answer(const iob_batch *b, uint32_t i) {
  return test_result_of(b, i);
}

#define OK_KEEP "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

static void count_tcp(uv_handle_t *h, void *arg) {
  *(int *)arg += h->type == UV_TCP;
}

/* The TCP handles on the loop: the client's kept connections (libcurl's
 * sockets are polls). */
static int tcp_handles(test_loop *t) {
  int n = 0;
  uv_walk(&t->loop, count_tcp, &n);
  return n;
}

/* ---- the tests ----------------------------------------------------------- */

/* Chunks (with an extension and a trailer), a 100 Continue before the
 * answer, a 204, the answer to a HEAD that names a length, and an HTTP/1.0
 * body that runs to the close: all on one connection, kept between them. */
static void answers_framed_every_way_come_back_whole(void **state) {
  (void)state;
  static const char *const steps[] = {
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n",
      "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nhello",
      "HTTP/1.1 204 No Content\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
      "HTTP/1.0 200 OK\r\n\r\nto the close",
      HANG_UP,
      NULL};
  static const char *const *conns[] = {steps};
  const char *base = peer_start(conns, 1);
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_on(&t, 0);
  iob_http_request r[5] = {{.url = url_to(base, "/chunks")},
                           {.url = url_to(base, "/continue")},
                           {.url = url_to(base, "/none")},
                           {.url = url_to(base, "/head"), .method = "HEAD"},
                           {.url = url_to(base, "/old")}};
  iob_batch *b = one_by_one(&t, c, r, 5);
  static const char *const bodies[] = {"Wikipedia", "hello", "", "",
                                       "to the close"};
  static const long codes[] = {200, 200, 204, 200, 200};
  for (uint32_t i = 0; i < 5; i++) {
    const iob_http_result *a = answer(b, i);
    assert_int_equal(a->code, codes[i]);
    assert_string_equal(a->body, bodies[i]);
    assert_int_equal(a->bytes, strlen(bodies[i]));
    assert_int_equal(a->http_version, i == 4 ? 10 : 11);
    /* one connection for them all: only the first made it */
    if ((i == 0) != (a->connect_ms > 0))
      fail_msg("request %u: connect_ms %.3f", i, a->connect_ms);
    assert_cmp(a->first_byte_ms, <=, a->total_ms);
  }
  /* The interim answer's headers are not the answer's. */
  assert_non_null(iob_http_header(answer(b, 1), "X-Final", NULL));
  assert_null(iob_http_header(answer(b, 1), "X-Interim", NULL));
  assert_int_equal(atomic_load(&the_peer.accepted), 1);
  iob_batch_free(b);
  end_client(&t, c);
}

/* What request r sent, through a client made with IOB_HTTP_LIBCURL set
 * if `libcurl`; the connections it kept in *kept. */
static void request_bytes(const iob_http_request *r, bool libcurl, char *out,
                          size_t size, int *kept) {
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_via(&t, libcurl);
  iob_batch *b = one_by_one(&t, c, r, 1);
  answer(b, 0);
  last_request(out, size);
  *kept = tcp_handles(&t);
  iob_batch_free(b);
  end_client(&t, c);
}

/* libcurl's Host and Accept, the request's headers (one taking Accept
 * out, one sent empty, a Host of its own), and for a body libcurl's
 * Content-Length and Content-Type: byte for byte what libcurl sends. */
static void the_request_is_the_one_libcurl_sends(void **state) {
  (void)state;
  static const char *const steps[] = {OK_KEEP, NULL};
  static const char *const *conns[] = {steps, steps, steps, steps,
                                       steps, steps, steps, steps};
  const char *base = peer_start(conns, 8);
  static const char *const headers[] = {"X-One: 1", "Accept:", "X-Empty;",
                                        NULL};
  static const char *const typed[] = {"Content-Type: text/plain", NULL};
  static const char *const host[] = {"X-Before: 1", "Host: api.example", NULL};
  iob_http_request r[4] = {
      {.url = url_to(base, "/a/b?c=d#frag"), .headers = headers},
      {.url = url_to(base, "/put"),
       .method = "PUT",
       .headers = typed,
       .body = "a=1&b=2"},
      {.url = url_to(base, "?q"), .body = "x=1"},
      {.url = url_to(base, "/"), .headers = host}};
  for (int k = 0; k < 4; k++) {
    char native[4096], curl[4096];
    int native_kept, curl_kept;
    request_bytes(&r[k], false, native, sizeof(native), &native_kept);
    request_bytes(&r[k], true, curl, sizeof(curl), &curl_kept);
    assert_int_equal(native_kept, 1); /* (the way each went) */
    assert_int_equal(curl_kept, 0);
    if (strcmp(native, curl) != 0)
      fail_msg("request %d:\n-- without libcurl --\n%s-- libcurl --\n%s", k,
               native, curl);
  }
}

/* The server closes a kept connection: while it is idle (the client sees
 * it go), or as the next request comes (the client learns it only then,
 * and sends it again on a new one, as libcurl does). No request fails. */
static void
a_kept_connection_the_server_closed_is_replaced_unseen(void **state) {
  (void)state;
  static const char *const idle_close[] = {OK_KEEP, HANG_UP, NULL};
  static const char *const request_close[] = {OK_KEEP, CLOSE_ON_REQUEST, NULL};
  static const char *const keep[] = {OK_KEEP, OK_KEEP, NULL};
  static const char *const *conns[] = {idle_close, request_close, keep};
  const char *base = peer_start(conns, 3);
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_on(&t, 0);
  for (int k = 0; k < 4; k++) { /* a batch each: the connection is kept */
    iob_batch *b = gets(&t, c, url_to(base, "/"), 1, 1);
    assert_string_equal(answer(b, 0)->body, "ok");
    iob_batch_free(b);
  }
  assert_int_equal(atomic_load(&the_peer.accepted), 3);
  assert_int_equal(atomic_load(&the_peer.requests), 5); /* one sent twice */
  end_client(&t, c);
}

/* Sent again on a new connection that the server closes too: then it
 * fails, once (UV_EOF), not again and again. */
static void a_request_goes_again_only_once(void **state) {
  (void)state;
  static const char *const request_close[] = {OK_KEEP, CLOSE_ON_REQUEST, NULL};
  static const char *const nothing[] = {CLOSE_ON_REQUEST, NULL};
  static const char *const *conns[] = {request_close, nothing};
  const char *base = peer_start(conns, 2);
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_on(&t, 0);
  iob_batch *b = gets(&t, c, url_to(base, "/"), 2, 1);
  assert_string_equal(answer(b, 0)->body, "ok");
  test_failed_with(b, 1, UV_EOF, "without an answer");
  assert_int_equal(atomic_load(&the_peer.requests), 3);
  iob_batch_free(b);
  end_client(&t, c);
}

/* Bytes after a whole answer, which no request asked for: its connection
 * is not kept. */
static void bytes_after_an_answer_end_its_connection(void **state) {
  (void)state;
  static const char *const extra[] = {OK_KEEP "HTTP/1.1 200 OK\r\n", NULL};
  static const char *const keep[] = {OK_KEEP, NULL};
  static const char *const *conns[] = {extra, keep};
  const char *base = peer_start(conns, 2);
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_on(&t, 0);
  iob_batch *b = gets(&t, c, url_to(base, "/"), 2, 1);
  assert_string_equal(answer(b, 0)->body, "ok");
  assert_string_equal(answer(b, 1)->body, "ok");
  assert_cmp(answer(b, 1)->connect_ms, >, 0);
  assert_int_equal(atomic_load(&the_peer.accepted), 2);
  iob_batch_free(b);
  end_client(&t, c);
}

/* Three kept connections the server closed while the loop did not run
 * (nothing read their end): the next request still gets its answer, on a
 * new connection. (Each is found gone before a request is sent on it; a
 * request sent on one would go again on a new connection, not on
 * another as old.) */
static void
kept_connections_gone_while_the_loop_slept_are_not_used(void **state) {
  (void)state;
  static const char *const closes[] = {OK_KEEP, HANG_UP, NULL};
  static const char *const keep[] = {OK_KEEP, NULL};
  static const char *const *conns[] = {closes, closes, closes, keep};
  const char *base = peer_start(conns, 4);
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_on(&t, 0);
  iob_batch *b = gets(&t, c, url_to(base, "/"), 3, 0);
  iob_batch_free(b);
  /* The peer closes all three; the loop does not run to see it. */
  for (int wait = 0; wait < 200 && atomic_load(&the_peer.accepted) < 3; wait++)
    uv_sleep(10);
  uv_sleep(100);
  b = gets(&t, c, url_to(base, "/"), 1, 1);
  const iob_http_result *a = answer(b, 0);
  assert_string_equal(a->body, "ok");
  assert_cmp(a->connect_ms, >, 0);                      /* a new connection */
  assert_int_equal(atomic_load(&the_peer.requests), 4); /* each sent once */
  iob_batch_free(b);
  end_client(&t, c);
}

/* max_host_connections 1: four requests at once take turns on one
 * connection (the peer serves one connection at a time: were there more,
 * the requests on the others would wait until their timeout). */
static void max_host_connections_makes_requests_take_turns(void **state) {
  (void)state;
  static const char *const steps[] = {OK_KEEP, OK_KEEP, OK_KEEP, OK_KEEP, NULL};
  static const char *const *conns[] = {steps};
  const char *base = peer_start(conns, 1);
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_on(&t, 1);
  iob_batch *b = gets(&t, c, url_to(base, "/turn"), 4, 0);
  for (uint32_t i = 0; i < 4; i++)
    assert_string_equal(answer(b, i)->body, "ok");
  assert_int_equal(atomic_load(&the_peer.accepted), 1);
  iob_batch_free(b);
  end_client(&t, c);
}

/* max_host_connections 1 and a server that does not answer: the request
 * on the connection and the one waiting for it both end at their
 * timeout, and nothing is left on the loop. */
static void
a_request_waiting_for_a_connection_ends_at_its_timeout(void **state) {
  (void)state;
  static const char *const silent[] = {SILENCE, NULL};
  static const char *const *conns[] = {silent};
  const char *base = peer_start(conns, 1);
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_on(&t, 1);
  iob_config cfg = config_of(&iob_style_loop, 0, 0);
  cfg.open = 1;
  cfg.timeout_ms = 200;
  iob_batch *b = test_loop_create(&t, &cfg, NULL);
  iob_http_request r = {.url = url_to(base, "/silent")};
  for (int i = 0; i < 2; i++) {
    iob_task task = test_task(&iob_kind_http, c, 0);
    task.input = &r;
    assert_int_equal(iob_batch_submit(b, &task), i);
  }
  assert_code(iob_batch_close(b), 0);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  for (uint32_t i = 0; i < 2; i++) {
    iob_outcome o;
    assert_code(iob_batch_outcome(b, i, &o), 0);
    assert_code(o.status, IOB_ETIMEDOUT);
  }
  iob_batch_free(b);
  end_client(&t, c);
}

static int cancel_from_body(iob_op *op, const char *data, size_t len,
                            void *arg) {
  (void)data, (void)len, (void)arg;
  return iob_batch_cancel(op->batch) == 0 ? 0 : IOB_EIO;
}

/* on_body cancels its own batch, in the middle of the answer being read:
 * the request ends cancelled, once, and its connection closes; without
 * libcurl and through it (IOB_HTTP_LIBCURL), where no transfer may leave
 * the multi handle inside its callback. */
static void on_body_may_cancel_its_own_request(void **state) {
  (void)state;
  static const char *const steps[] = {
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
      NULL};
  static const char *const *conns[] = {steps, steps};
  const char *base = peer_start(conns, 2);
  for (int libcurl = 0; libcurl < 2; libcurl++) {
    test_loop t;
    test_loop_init(&t);
    iob_http_client *c = client_via(&t, libcurl);
    iob_http_request r = {.url = url_to(base, "/"),
                          .on_body = cancel_from_body};
    iob_batch *b = one_by_one(&t, c, &r, 1);
    iob_outcome o;
    assert_code(iob_batch_outcome(b, 0, &o), 0);
    assert_code(o.status, IOB_ECANCELED);
    assert_int_equal(tcp_handles(&t), 0); /* its connection closed */
    iob_batch_free(b);
    end_client(&t, c);
  }
}

/* Each on a connection of its own, which the peer then closes. */
static void an_answer_cut_short_fails_in_words_that_say_where(void **state) {
  (void)state;
  static const char *const body[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", HANG_UP, NULL};
  static const char *const head[] = {"HTTP/1.1 200 OK\r\nContent-", HANG_UP,
                                     NULL};
  static const char *const other[] = {"SSH-2.0-OpenSSH_9.2\r\n", HANG_UP, NULL};
  static const char *const nothing[] = {CLOSE_ON_REQUEST, NULL};
  static const char *const lengths[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      HANG_UP, NULL};
  static const char *const chunks[] = {
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", HANG_UP,
      NULL};
  static const char *const *conns[] = {body,    head,    other,
                                       nothing, lengths, chunks};
  static const struct {
    int status;
    const char *words;
  } expect[] = {
      {UV_EIO, "7 bytes of the body to come"},
      {UV_EIO, "in the middle of the answer's headers"},
      {UV_EIO, "not an HTTP/1 answer"},
      {UV_EOF, "closed the connection without an answer"},
      {UV_EIO, "two Content-Length headers"},
      {UV_EIO, "before the last chunk"},
  };
  const char *base = peer_start(conns, 6);
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_on(&t, 0);
  iob_batch *b = gets(&t, c, url_to(base, "/cut"), 6, 1);
  for (uint32_t i = 0; i < 6; i++)
    test_failed_with(b, i, expect[i].status, expect[i].words);
  assert_int_equal(atomic_load(&the_peer.accepted), 6);
  iob_batch_free(b);
  end_client(&t, c);
}

/* "localhost" goes through getaddrinfo; where it names ::1 first, which
 * the peer (127.0.0.1) refuses, the next address is tried. */
static void a_host_name_is_resolved_and_its_addresses_tried(void **state) {
  (void)state;
  static const char *const steps[] = {OK_KEEP, NULL};
  static const char *const *conns[] = {steps};
  const char *base = peer_start(conns, 1);
  char url[96];
  snprintf(url, sizeof(url), "http://localhost:%s/", strrchr(base, ':') + 1);
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_on(&t, 0);
  iob_http_request r = {.url = url};
  iob_batch *b = one_by_one(&t, c, &r, 1);
  const iob_http_result *a = answer(b, 0);
  assert_string_equal(a->body, "ok");
  assert_cmp(a->name_lookup_ms, >, 0);
  assert_cmp(a->name_lookup_ms, <=, a->connect_ms);
  iob_batch_free(b);
  end_client(&t, c);
}

/* A kept connection is a libuv TCP handle of the client's on the loop;
 * through libcurl (IOB_HTTP_LIBCURL=1) there is none, only polls. */
static void iob_http_libcurl_sends_plain_http_through_libcurl(void **state) {
  (void)state;
  static const char *const steps[] = {OK_KEEP, NULL};
  static const char *const *conns[] = {steps, steps};
  const char *base = peer_start(conns, 2);
  for (int libcurl = 0; libcurl < 2; libcurl++) {
    test_loop t;
    test_loop_init(&t);
    iob_http_client *c = client_via(&t, libcurl);
    iob_http_request r = {.url = url_to(base, "/")};
    iob_batch *b = one_by_one(&t, c, &r, 1);
    assert_string_equal(answer(b, 0)->body, "ok");
    int tcp = 0;
    uv_walk(&t.loop, count_tcp, &tcp);
    assert_int_equal(tcp, libcurl ? 0 : 1);
    iob_batch_free(b);
    end_client(&t, c);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(answers_framed_every_way_come_back_whole,
                                peer_stop),
      cmocka_unit_test_teardown(the_request_is_the_one_libcurl_sends,
                                peer_stop),
      cmocka_unit_test_teardown(
          a_kept_connection_the_server_closed_is_replaced_unseen, peer_stop),
      cmocka_unit_test_teardown(
          kept_connections_gone_while_the_loop_slept_are_not_used, peer_stop),
      cmocka_unit_test_teardown(a_request_goes_again_only_once, peer_stop),
      cmocka_unit_test_teardown(bytes_after_an_answer_end_its_connection,
                                peer_stop),
      cmocka_unit_test_teardown(max_host_connections_makes_requests_take_turns,
                                peer_stop),
      cmocka_unit_test_teardown(
          a_request_waiting_for_a_connection_ends_at_its_timeout, peer_stop),
      cmocka_unit_test_teardown(on_body_may_cancel_its_own_request, peer_stop),
      cmocka_unit_test_teardown(
          an_answer_cut_short_fails_in_words_that_say_where, peer_stop),
      cmocka_unit_test_teardown(a_host_name_is_resolved_and_its_addresses_tried,
                                peer_stop),
      cmocka_unit_test_teardown(
          iob_http_libcurl_sends_plain_http_through_libcurl, peer_stop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
