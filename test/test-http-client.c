/* The HTTP client (iob_http_client): requests of their own, answers that
 * come back whole, connections that outlive batches, HTTP/2 on one
 * connection (TLS), TLS verified, redirects bounded, bodies capped or
 * streamed,
 * and bad input refused. Against a throwaway nginx (nginx-test.sh), whose
 * endpoints nginx-server.sh lists; skipped (77) without one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "iobound/http.h"

static const char *base, *tls, *ca; /* nginx's, from the harness */

static char *url_to(const char *at, const char *path) {
  static char urls[8][256];
  static int next;
  char *u = urls[next++ % 8];
  snprintf(u, sizeof(urls[0]), "%s%s", at, path);
  return u;
}

/* The styles a client serves: all but loops, whose loops are the batch's
 * own. */
static bool serves(const iob_style *style) {
  return !(iob_style_flags(style) & IOB_STYLE_LOOPS);
}

/* Run `n` requests through client c in an open batch of `style` on t,
 * at most `limit` at once (0: all), and return the finished batch. */
static iob_batch *run_requests(test_loop *t, const iob_style *style,
                               iob_http_client *c,
                               const iob_http_request *requests, uint32_t n,
                               uint32_t limit) {
  return test_loop_run_tasks(t, style, limit, &iob_kind_http, c, requests,
                             sizeof(*requests), n);
}

/* Operation i's answer, which must have succeeded. */
static const iob_http_result *answer(const iob_batch *b, uint32_t i) {
  return test_result_of(b, i);
}

static iob_http_client *client_on(test_loop *t,
                                  const iob_http_client_options *o) {
  iob_http_client *c;
  assert_code(iob_http_client_create(&c, &t->loop, o), 0);
  return c;
}

/* Destroy the client, let its handles close, prove the loop empty. */
static void end_client(test_loop *t, iob_http_client *c) {
  assert_code(iob_http_client_destroy(c), 0);
  test_loop_run(t);
  test_loop_close(t);
}

static iob_http_request get(const char *url) {
  return (iob_http_request){.url = url};
}

/* ---- requests and answers ------------------------------------------------ */

static void
each_request_is_its_own_and_its_answer_comes_back_whole(void **state) {
  (void)state;
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    if (!serves(style))
      continue;
    test_loop t;
    test_loop_init(&t);
    iob_http_client *c = client_on(&t, NULL);
    static const char *const headers[] = {"X-Test: seven", NULL};
    static const char bytes[] = {'a', '\0', 'b'}; /* any bytes */
    iob_http_request r[3] = {
        {.method = "POST",
         .url = url_to(base, "/echo"),
         .headers = headers,
         .body = bytes,
         .body_len = sizeof(bytes)},
        {.method = "PUT", .url = url_to(base, "/echo"), .body = "text"},
        get(url_to(base, "/answer")),
    };
    iob_batch *b = run_requests(&t, style, c, r, 3, 0);

    const iob_http_result *a = answer(b, 0);
    static const char expect[] = "method=POST x=seven\na\0b";
    assert_int_equal(a->code, 200);
    assert_int_equal(a->bytes, sizeof(expect) - 1);
    assert_memory_equal(a->body, expect, sizeof(expect) - 1);
    assert_int_equal(a->body[a->bytes], '\0');
    assert_int_equal(a->http_version, 11);
    assert_cmp(a->total_ms, >, 0);
    assert_cmp(a->first_byte_ms, <=, a->total_ms);
    assert_string_equal(answer(b, 1)->body, "method=PUT x=\ntext");

    a = answer(b, 2);
    size_t len;
    const char *v = iob_http_header(a, "x-answer", &len);
    assert_non_null(v);
    assert_int_equal(len, 2);
    assert_memory_equal(v, "42", 2);
    assert_null(iob_http_header(a, "X-Missing", &len));
    assert_int_equal(len, 0);
    assert_string_equal(a->body, "ok\n");
    iob_batch_free(b);
    end_client(&t, c);
  }
}

/* The connection's number nginx gave answer i. */
static long connection_of(const iob_batch *b, uint32_t i) {
  return strtol(answer(b, i)->body, NULL, 10);
}

static void a_client_keeps_its_connections_across_batches(void **state) {
  (void)state;
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads,
                               &iob_style_pool};
  for (int k = 0; k < 3; k++) {
    test_loop t;
    test_loop_init(&t);
    iob_http_client *c = client_on(&t, NULL);
    iob_http_request r[4];
    for (int i = 0; i < 4; i++)
      r[i] = get(url_to(base, "/conn"));
    long first = 0;
    for (int round = 0; round < 3; round++) { /* three batches */
      iob_batch *b = run_requests(&t, styles[k], c, r, 4, 1);
      for (uint32_t i = 0; i < 4; i++) {
        long conn = connection_of(b, i);
        if (first == 0)
          first = conn;
        if (conn != first)
          fail_msg("%s: batch %d, request %u came on connection %ld, not "
                   "%ld: not kept",
                   iob_style_name(styles[k]), round, i, conn, first);
      }
      iob_batch_free(b);
    }
    end_client(&t, c);
  }
}

/* Over TLS, where the server offers h2 (ALPN): twenty requests at once to
 * one origin on one connection. */
static void requests_to_one_origin_share_one_http2_connection(void **state) {
  (void)state;
  if (tls == NULL)
    skip(); /* no openssl to make the server a certificate */
  test_loop t;
  test_loop_init(&t);
  iob_http_client_options o = {.ca_file = ca};
  iob_http_client *c = client_on(&t, &o);
  enum { N = 20 };
  iob_http_request r[N];
  for (int i = 0; i < N; i++)
    r[i] = get(url_to(tls, "/conn"));
  iob_batch *b = run_requests(&t, &iob_style_loop, c, r, N, 0); /* at once */
  long conn = connection_of(b, 0);
  for (uint32_t i = 0; i < N; i++) {
    assert_int_equal(answer(b, i)->http_version, 20);
    if (connection_of(b, i) != conn)
      fail_msg("request %u came on connection %ld, not %ld", i,
               connection_of(b, i), conn);
  }
  iob_batch_free(b);
  end_client(&t, c);
}

/* Over http:// a request cannot share a connection (HTTP/1.1): four at
 * once to a new origin each get one at once, and end together, not one
 * after another waiting for the first's answer (as CURLOPT_PIPEWAIT
 * made them: libcurl learns that an http:// connection cannot multiplex
 * only from its first answer). */
static void requests_over_http_1_go_side_by_side(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_on(&t, NULL);
  iob_http_request r[4];
  for (int i = 0; i < 4; i++)
    r[i] = get(url_to(base, "/wait/1000"));
  uint64_t t0 = uv_hrtime();
  iob_batch *b = run_requests(&t, &iob_style_loop, c, r, 4, 0);
  /* (Waiting for the first answer, the others would take 2 s.) */
  assert_ms_below(MS(uv_hrtime() - t0), 1800);
  for (uint32_t i = 0; i < 4; i++)
    assert_int_equal(answer(b, i)->code, 200);
  iob_batch_free(b);
  end_client(&t, c);
}

/* ---- TLS, redirects, bodies ------------------------------------------------- */

static void tls_is_verified_unless_told_otherwise(void **state) {
  (void)state;
  if (tls == NULL)
    skip(); /* no openssl to make the server a certificate */
  iob_http_client_options trusting = {.ca_file = ca}, blind = {.insecure = 1};
  const iob_http_client_options *options[] = {NULL, &trusting, &blind};
  for (int k = 0; k < 3; k++) {
    test_loop t;
    test_loop_init(&t);
    iob_http_client *c = client_on(&t, options[k]);
    iob_http_request r = get(url_to(tls, "/answer"));
    iob_batch *b = run_requests(&t, &iob_style_loop, c, &r, 1, 0);
    if (k == 0) { /* a certificate no CA of the system's signed */
      test_failed_with(b, 0, UV_EIO, "certificate");
    } else {
      assert_string_equal(answer(b, 0)->body, "ok\n");
      assert_int_equal(answer(b, 0)->http_version, 20); /* by ALPN */
      assert_cmp(answer(b, 0)->tls_ms, >, 0);
    }
    iob_batch_free(b);
    end_client(&t, c);
  }
}

static void
redirects_are_answers_unless_followed_and_then_bounded(void **state) {
  (void)state;
  iob_http_client_options follow = {.max_redirects = 3};
  const iob_http_client_options *options[] = {NULL, &follow};
  for (int k = 0; k < 2; k++) {
    test_loop t;
    test_loop_init(&t);
    iob_http_client *c = client_on(&t, options[k]);
    iob_http_request r[2] = {get(url_to(base, "/redirect")),
                             get(url_to(base, "/redirect-loop"))};
    iob_batch *b = run_requests(&t, &iob_style_loop, c, r, 2, 0);
    iob_outcome o;
    assert_code(iob_batch_outcome(b, 0, &o), 0);
    const iob_http_result *a = o.result;
    if (k == 0) { /* the 302 is the answer, whole */
      test_failed_with(b, 0, UV_EIO, "HTTP 302");
      assert_int_equal(a->code, 302);
      assert_non_null(iob_http_header(a, "Location", NULL));
      test_failed_with(b, 1, UV_EIO, "HTTP 302");
    } else {
      assert_int_equal(o.status, 0);
      assert_int_equal(a->redirects, 1);
      assert_string_equal(a->body, "done 0\n");
      test_failed_with(b, 1, UV_EIO, "max_redirects");
    }
    iob_batch_free(b);
    end_client(&t, c);
  }
}

static void a_body_past_the_cap_fails_and_one_within_comes_whole(void **state) {
  (void)state;
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    if (!serves(style))
      continue;
    test_loop t;
    test_loop_init(&t);
    iob_http_client_options small = {.max_body = 19999};
    iob_http_client *tight = client_on(&t, &small),
                    *roomy = client_on(&t, NULL);
    iob_http_request r = get(url_to(base, "/big")); /* 20,000 bytes */
    iob_batch *b = run_requests(&t, style, tight, &r, 1, 0);
    test_failed_with(b, 0, UV_EMSGSIZE, "max_body");
    iob_batch_free(b);
    b = run_requests(&t, style, roomy, &r, 1, 0);
    assert_int_equal(answer(b, 0)->bytes, 20000);
    assert_int_equal(strlen(answer(b, 0)->body), 20000);
    iob_batch_free(b);
    assert_code(iob_http_client_destroy(tight), 0);
    end_client(&t, roomy);
  }
}

typedef struct streamed {
  uint64_t bytes;
  int calls, stop_after; /* 0: never */
} streamed;

static int take_body(iob_op *op, const char *data, size_t len, void *arg) {
  (void)op;
  (void)data;
  streamed *s = arg;
  s->bytes += len;
  return ++s->calls == s->stop_after ? IOB_ECANCELED : 0;
}

static void a_body_streams_to_on_body_which_may_stop_it(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_http_client_options small = {.max_body = 10}; /* (not kept: no cap) */
  iob_http_client *c = client_on(&t, &small);
  streamed whole = {0}, stopped = {.stop_after = 1};
  iob_http_request r[2] = {
      {.url = url_to(base, "/big"), .on_body = take_body, .arg = &whole},
      {.url = url_to(base, "/big"), .on_body = take_body, .arg = &stopped},
  };
  iob_batch *b = run_requests(&t, &iob_style_loop, c, r, 2, 0);
  assert_int_equal(whole.bytes, 20000);
  assert_int_equal(answer(b, 0)->bytes, 20000);
  assert_null(answer(b, 0)->body);
  test_failed_with(b, 1, IOB_ECANCELED, "on_body");
  assert_int_equal(stopped.calls, 1);
  iob_batch_free(b);
  end_client(&t, c);
}

/* ---- what is refused -------------------------------------------------------- */

static int submit_one(iob_batch *b, const void *target,
                      const iob_http_request *r) {
  iob_task task;
  iob_task_init(&task);
  task.kind = &iob_kind_http;
  task.target = target;
  task.input = r;
  return iob_batch_submit(b, &task);
}

static void bad_requests_get_clear_codes_and_add_nothing(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_on(&t, NULL);
  iob_config config;
  iob_config_init(&config);
  config.open = 1;
  iob_batch *b = test_loop_create(&t, &config, NULL);

  iob_http_request r = get("ftp://127.0.0.1/");
  assert_code(submit_one(b, c, &r), IOB_EINVAL);
  r = get("http://127.0.0.1/\r\nX-Smuggled: 1");
  assert_code(submit_one(b, c, &r), IOB_EINVAL);
  static const char *const split[] = {"X-A: 1\r\nX-B: 2", NULL};
  r = get(url_to(base, "/echo"));
  r.headers = split;
  assert_code(submit_one(b, c, &r), IOB_EINVAL);
  r.headers = NULL;
  r.method = "GET\n";
  assert_code(submit_one(b, c, &r), IOB_EINVAL);
  char *long_url = malloc(IOB_HTTP_URL_MAX + 32);
  strcpy(long_url, "http://127.0.0.1/");
  memset(long_url + 17, 'a', IOB_HTTP_URL_MAX);
  long_url[IOB_HTTP_URL_MAX + 17] = '\0';
  r = get(long_url);
  assert_code(submit_one(b, c, &r), IOB_ERANGE);
  free(long_url);
  r = get(url_to(base, "/echo"));
  r.body = "x";
  r.body_len = IOB_HTTP_REQUEST_BODY_MAX + 1; /* refused before it is read */
  assert_code(submit_one(b, c, &r), IOB_ERANGE);
  iob_progress p;
  assert_code(iob_batch_progress(b, &p), 0);
  assert_int_equal(p.waiting, 0); /* nothing was added */

  /* A client as the target needs a request with a URL. */
  assert_int_equal(submit_one(b, c, NULL), 0);
  assert_code(iob_batch_close(b), 0);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  test_failed_with(b, 0, IOB_EINVAL, "no URL");
  iob_batch_free(b);

  /* The loops style runs on loops of its own: no client serves them. */
  iob_config loops = config;
  loops.style = &iob_style_loops;
  assert_code(iob_batch_create(&b, &loops), 0);
  r = get(url_to(base, "/answer"));
  assert_code(submit_one(b, c, &r), IOB_ENOTSUP);
  iob_batch_free(b);

  iob_http_client *none = (iob_http_client *)&none;
  assert_code(iob_http_client_create(NULL, &t.loop, NULL), IOB_EINVAL);
  iob_http_client_options huge = {.max_body = IOB_HTTP_BODY_MAX + 1};
  assert_code(iob_http_client_create(&none, &t.loop, &huge), IOB_ERANGE);
  assert_null(none);
  assert_code(iob_http_client_destroy(NULL), 0);
  end_client(&t, c);
}

static void a_client_on_another_loop_is_refused_per_request(void **state) {
  (void)state;
  test_loop other, t;
  test_loop_init(&other);
  test_loop_init(&t);
  iob_http_client *c = client_on(&other, NULL);
  iob_http_request r = get(url_to(base, "/answer"));
  iob_batch *b = run_requests(&t, &iob_style_loop, c, &r, 1, 0);
  test_failed_with(b, 0, IOB_ENOTSUP, "another loop");
  iob_batch_free(b);
  test_loop_close(&t);
  end_client(&other, c);
}

static int destroy_while_running;

static void try_destroy(iob_batch *b, uint32_t i, const iob_record *r) {
  (void)i;
  (void)r;
  destroy_while_running = iob_http_client_destroy(iob_batch_data(b));
}

static void a_client_in_use_refuses_to_be_destroyed(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_http_client *c = client_on(&t, NULL);
  /* Named by a target: in use until the target goes. */
  iob_http_options o = {.url = url_to(base, "/wait/{ms}"), .client = c};
  iob_http_target *target;
  assert_code(iob_http_target_create(&target, &o), 0);
  assert_code(iob_http_client_destroy(c), IOB_EBUSY);
  /* Used by a running batch, through the target: its requests go
   * through the client, and keep their bodies. */
  iob_config config = config_of(&iob_style_loop, 2, 5);
  config.kind = &iob_kind_http;
  config.target = target;
  config.on_op = try_destroy;
  config.data = c;
  iob_batch *b = test_loop_start(&t, &config, NULL);
  test_loop_run(&t);
  assert_code(destroy_while_running, IOB_EBUSY);
  assert_string_equal(answer(b, 1)->body, "done 5\n");
  iob_batch_free(b);
  assert_code(iob_http_target_destroy(target), 0);
  end_client(&t, c);
}

int main(void) {
  base = getenv("IOB_TEST_NGINX_URL");
  tls = getenv("IOB_TEST_NGINX_TLS_URL");
  ca = getenv("IOB_TEST_NGINX_CA");
  if (base == NULL) {
    fprintf(stderr, "test-http-client: no nginx (run it through "
                    "nginx-test.sh)\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(each_request_is_its_own_and_its_answer_comes_back_whole),
      cmocka_unit_test(a_client_keeps_its_connections_across_batches),
      cmocka_unit_test(requests_to_one_origin_share_one_http2_connection),
      cmocka_unit_test(requests_over_http_1_go_side_by_side),
      cmocka_unit_test(tls_is_verified_unless_told_otherwise),
      cmocka_unit_test(redirects_are_answers_unless_followed_and_then_bounded),
      cmocka_unit_test(a_body_past_the_cap_fails_and_one_within_comes_whole),
      cmocka_unit_test(a_body_streams_to_on_body_which_may_stop_it),
      cmocka_unit_test(bad_requests_get_clear_codes_and_add_nothing),
      cmocka_unit_test(a_client_on_another_loop_is_refused_per_request),
      cmocka_unit_test(a_client_in_use_refuses_to_be_destroyed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
