/* HTTP requests on libcurl (iobound-http), against real servers on
 * loopback: the bundled slow service, which answers GET /wait/MS after MS
 * ms, started here; and nginx, when the harness (nginx-test.sh) started
 * one and says where in IOB_TEST_NGINX_URL. Every style. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "common.h"
#include "iobound/http.h"
#include "../examples/slow-server.h"

static char service[64]; /* "http://127.0.0.1:PORT" */
static pid_t service_pid;

static int start_service(void **state) {
  unsigned port;
  if (slow_server_fork("127.0.0.1", &port, &service_pid) != 0)
    return -1;
  snprintf(service, sizeof(service), "http://127.0.0.1:%u", port);
  return 0;
}

static int stop_service(void **state) {
  slow_server_kill(service_pid);
  return 0;
}

static iob_http_target *target_of(const char *base, const char *path,
                                  int no_reuse) {
  char url[256];
  snprintf(url, sizeof(url), "%s%s", base, path);
  iob_http_options o = {.url = url, .no_reuse = no_reuse};
  iob_http_target *t;
  assert_int_equal(iob_http_target_create(&t, &o), 0);
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
    assert_int_equal(iob_batch_outcome(b, i, &o), 0);
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
    assert_int_equal(iob_batch_report(b, &r), 0);
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
    assert_int_equal(iob_batch_outcome(b, i, &o), 0);
    assert_int_equal(o.status, 0);
    char body[32];
    snprintf(body, sizeof(body), "done %u\n", ms[i]);
    assert_int_equal(((const iob_http_result *)o.result)->bytes,
                     strlen(body));
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
        assert_int_equal(iob_batch_outcome(b, i, &o), 0);
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
    assert_int_equal(iob_batch_outcome(b, 1, &o), 0);
    assert_int_equal(o.status, UV_EIO);
    assert_int_equal(o.value, 404);
    assert_non_null(o.message);
    assert_non_null(strstr(o.message, "HTTP 404"));
    iob_batch_free(b);
  }
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
    assert_int_equal(iob_batch_outcome(b, 0, &o), 0);
    assert_int_equal(o.status, UV_ECONNREFUSED);
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
    assert_int_equal(iob_batch_report(b, &r), 0);
    assert_int_equal(r.failed, 3);
    const iob_record *rec = iob_batch_records(b, NULL);
    assert_int_equal(rec[0].status, IOB_ETIMEDOUT);
    assert_ms_below(MS(r.elapsed_ns), 3000);
    iob_batch_free(b);

    c.timeout_ms = 0;
    test_loop tl;
    test_loop_init(&tl);
    iob_batch *cb = test_loop_start(&tl, &c, NULL);
    test_loop_cancel_after(&tl, cb, 100);
    test_loop_run(&tl);
    assert_int_equal(tl.batches[0].counts.batch_status, IOB_ECANCELED);
    assert_int_equal(tl.batches[0].counts.cancelled, 3);
    assert_int_equal(iob_batch_report(cb, &r), 0);
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
    assert_int_equal(iob_batch_report(b, &r), 0);
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
  assert_int_equal(iob_http_target_create(&t, &o), 0);
  const iob_style *styles[] = {&iob_style_loop, &iob_style_pool};
  for (size_t k = 0; k < 2; k++) {
    iob_config c = config_of(styles[k], 4, 10);
    c.kind = &iob_kind_http;
    c.target = t;
    c.timeout_ms = 2000; /* a HEAD that waited for a body would hit it */
    iob_batch *b = run_on_own_loop(&c, NULL);
    iob_outcome out;
    assert_int_equal(iob_batch_outcome(b, 0, &out), 0);
    assert_int_equal(out.status, 0);
    assert_int_equal(out.value, 200);
    assert_int_equal(((const iob_http_result *)out.result)->bytes, 0);
    iob_batch_free(b);
  }
  iob_http_target_destroy(t);
}

static void bad_targets_are_refused(void **state) {
  iob_http_target *t = (iob_http_target *)&t;
  iob_http_options o = {.url = "ftp://127.0.0.1/"};
  assert_int_equal(iob_http_target_create(NULL, &o), IOB_EINVAL);
  assert_int_equal(iob_http_target_create(&t, NULL), IOB_EINVAL);
  assert_null(t);
  assert_int_equal(iob_http_target_create(&t, &o), IOB_EINVAL);
  o.url = NULL;
  assert_int_equal(iob_http_target_create(&t, &o), IOB_EINVAL);
  o.url = "http://127.0.0.1/\r\nX: y";
  assert_int_equal(iob_http_target_create(&t, &o), IOB_EINVAL);
  const char *headers[] = {"A: b\nC: d", NULL};
  o = (iob_http_options){.url = "http://127.0.0.1/", .headers = headers};
  assert_int_equal(iob_http_target_create(&t, &o), IOB_EINVAL);
  iob_http_target_destroy(NULL);
  /* A batch without a target. */
  iob_config c = config_of(&iob_style_loop, 1, 1);
  c.kind = &iob_kind_http;
  iob_batch *b;
  assert_int_equal(iob_batch_create(&b, &c), IOB_EINVAL);
}

/* `test-http`: against the slow service; `test-http nginx`: against the
 * nginx the harness started, or skipped (77) when there is none. */
int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
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
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(requests_are_answered_in_every_style),
      cmocka_unit_test(the_url_names_each_operations_index_and_duration),
      cmocka_unit_test(connections_are_reused_unless_told_not_to),
      cmocka_unit_test(an_answer_that_is_not_2xx_fails_with_its_code),
      cmocka_unit_test(a_closed_port_is_refused_in_every_style),
      cmocka_unit_test(timeouts_and_cancels_end_slow_requests),
      cmocka_unit_test(a_head_request_ends_without_a_body),
      cmocka_unit_test(bad_targets_are_refused),
  };
  return cmocka_run_group_tests(tests, start_service, stop_service);
}
