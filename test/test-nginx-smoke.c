/* The nginx harness works (nginx-test.sh, nginx-server.sh): a real nginx
 * on loopback, found through IOB_TEST_NGINX_URL, answers GET /wait/MS with
 * "done MS\n" after MS ms (the echo module's echo_sleep), keeps
 * connections alive, serves requests at once, answers 404 elsewhere, and
 * stops when the test asks (IOB_TEST_NGINX_SERVER stop IOB_TEST_NGINX_DIR).
 * Run alone, without the harness's environment, it is skipped (77). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "common.h"
#include "http-client.h"

static unsigned port;

static void a_wait_is_answered_done_ms_after_ms_ms(void **state) {
  const unsigned waits[] = {100, 5, 1500};
  const char *paths[] = {GET("/wait/100"), GET("/wait/5"), GET("/wait/1500")};
  for (int k = 0; k < 3; k++) {
    http_conn c;
    http_connect(&c, port);
    uint64_t t0 = uv_hrtime();
    http_send(&c, paths[k]);
    http_response r;
    http_read(&c, &r, false);
    double ms = MS(uv_hrtime() - t0);
    printf("nginx: GET /wait/%u in %.1f ms\n", waits[k], ms);
    assert_int_equal(r.status, 200);
    char body[32];
    snprintf(body, sizeof(body), "done %u\n", waits[k]);
    assert_string_equal(r.body, body);
    assert_string_equal(r.type, "text/plain");
    assert_ms_between(ms, waits[k] - 1.5, waits[k] + 1000);
    http_close(&c);
  }
}

static void three_requests_share_one_kept_alive_connection(void **state) {
  http_conn c;
  http_connect(&c, port);
  for (int k = 0; k < 3; k++) {
    http_send(&c, GET("/wait/20"));
    http_response r;
    http_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "done 20\n");
    assert_false(r.closes);
  }
  assert_true(http_is_idle(&c));
  http_close(&c);
}

static void requests_on_50_connections_overlap(void **state) {
  double ms = http_waits_at_once(port, 50, 200);
  printf("nginx: 50 requests of 200 ms at once: %.1f ms\n", ms);
  assert_ms_between(ms, 198.5, 1500);
}

static void other_paths_are_a_404(void **state) {
  http_conn c;
  http_connect(&c, port);
  http_send(&c, GET("/nope") GET("/wait/abc"));
  for (int k = 0; k < 2; k++) {
    http_response r;
    http_read(&c, &r, false);
    assert_int_equal(r.status, 404);
  }
  http_close(&c);
}

/* How a test stops nginx midway: afterwards, connections are refused. */
static void the_test_can_stop_nginx(void **state) {
  const char *server = getenv("IOB_TEST_NGINX_SERVER");
  const char *dir = getenv("IOB_TEST_NGINX_DIR");
  assert_non_null(server);
  assert_non_null(dir);
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "'%s' stop '%s'", server, dir);
  assert_int_equal(system(cmd), 0);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_cmp(fd, >=, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_not_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  close(fd);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const char *url = getenv("IOB_TEST_NGINX_URL");
  if (url == NULL) {
    fprintf(stderr, "test-nginx-smoke: no IOB_TEST_NGINX_URL: run it "
                    "through test/nginx-test.sh\n");
    return 77;
  }
  port = http_url_port(url);
  if (port == 0) {
    fprintf(stderr,
            "test-nginx-smoke: IOB_TEST_NGINX_URL=%s is not "
            "http://127.0.0.1:PORT\n",
            url);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_wait_is_answered_done_ms_after_ms_ms),
      cmocka_unit_test(three_requests_share_one_kept_alive_connection),
      cmocka_unit_test(requests_on_50_connections_overlap),
      cmocka_unit_test(other_paths_are_a_404),
      cmocka_unit_test(the_test_can_stop_nginx), /* last */
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
