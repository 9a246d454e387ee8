/* libuv sizes its pool once: a request counts only before the first use.
 * The tests run in order, in a process of their own. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static void no_work(uv_work_t *req) { (void)req; }

/* In a child process, forked before anything here used the pool: the
 * application starts libuv's pool itself (4 threads), then asks iobound
 * for 8, too late for libuv. The report must not claim 8. Plain checks
 * and an exit status: cmocka's asserts belong to the parent. */
static int pool_started_by_the_application(void) {
  unsetenv("UV_THREADPOOL_SIZE");
  uv_loop_t loop;
  uv_work_t req;
  if (uv_loop_init(&loop) != 0 ||
      uv_queue_work(&loop, &req, no_work, NULL) != 0 ||
      uv_run(&loop, UV_RUN_DEFAULT) != 0 || uv_loop_close(&loop) != 0)
    return 10;
  if (iob_pool_request_size(8) != 0) /* iobound had not used it */
    return 11;
  iob_config c;
  iob_config_init(&c);
  c.style = &iob_style_pool;
  c.count = 8;
  c.duration_ms = 100;
  iob_batch *b;
  iob_report r;
  if (iob_run(&b, &c) != 0 || iob_batch_report(b, &r) != 0)
    return 12;
  iob_batch_free(b);
  if (r.threads != 0) {
    fprintf(stderr, "the report claims %u threads\n", r.threads);
    return 13;
  }
  if (r.peak_in_flight != 4) {
    fprintf(stderr, "%u ran at once, not libuv's 4\n", r.peak_in_flight);
    return 14;
  }
  return 0;
}

static void
a_size_asked_after_the_application_used_the_pool_is_not_claimed(void **state) {
  fflush(NULL);
  pid_t pid = fork();
  assert_cmp(pid, >=, 0);
  if (pid == 0)
    _exit(pool_started_by_the_application());
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void pool_size_follows_libuvs_reading_of_the_environment(void **s) {
  unsetenv("UV_THREADPOOL_SIZE");
  assert_int_equal(iob_pool_size(), 4);
  setenv("UV_THREADPOOL_SIZE", "0", 1);
  assert_int_equal(iob_pool_size(), 1);
  setenv("UV_THREADPOOL_SIZE", "5000", 1);
  assert_int_equal(iob_pool_size(), 1024);
}

static void a_request_before_first_use_sets_the_size(void **state) {
  assert_code(iob_pool_request_size(0), IOB_ERANGE);
  assert_code(iob_pool_request_size(1025), IOB_ERANGE);
  assert_code(iob_pool_request_size(6), 0);
  assert_string_equal(getenv("UV_THREADPOOL_SIZE"), "6");
  assert_int_equal(iob_pool_size(), 6);
}

static void the_pool_runs_with_the_requested_size(void **state) {
  iob_report r = run_report(&iob_style_pool, 12, 100);
  assert_int_equal(r.threads, 6);
  assert_int_equal(r.peak_in_flight, 6);
  /* 12 waits on 6 threads: two rounds (valgrind starts threads slowly). */
  assert_ms_between(MS(r.elapsed_ns), 200, test_under_valgrind() ? 3000 : 900);
}

static void a_request_after_first_use_is_too_late(void **state) {
  assert_code(iob_pool_request_size(8), IOB_EALREADY);
  assert_string_equal(getenv("UV_THREADPOOL_SIZE"), "6");
  /* The size is what libuv read, whatever the environment says now. */
  setenv("UV_THREADPOOL_SIZE", "2", 1);
  assert_int_equal(iob_pool_size(), 6);
  assert_code(iob_pool_request_size(2000), IOB_ERANGE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      /* First: it forks before this process uses the pool. */
      cmocka_unit_test(
          a_size_asked_after_the_application_used_the_pool_is_not_claimed),
      cmocka_unit_test(pool_size_follows_libuvs_reading_of_the_environment),
      cmocka_unit_test(a_request_before_first_use_sets_the_size),
      cmocka_unit_test(the_pool_runs_with_the_requested_size),
      cmocka_unit_test(a_request_after_first_use_is_too_late),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
