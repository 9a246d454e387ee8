/* libuv sizes its pool once: a request counts only before the first use.
 * The tests run in order, in a process of their own. */
#include <stdlib.h>

#include "common.h"

static void pool_size_follows_libuvs_reading_of_the_environment(void **s) {
  unsetenv("UV_THREADPOOL_SIZE");
  assert_int_equal(iob_pool_size(), 4);
  setenv("UV_THREADPOOL_SIZE", "0", 1);
  assert_int_equal(iob_pool_size(), 1);
  setenv("UV_THREADPOOL_SIZE", "5000", 1);
  assert_int_equal(iob_pool_size(), 1024);
}

static void a_request_before_first_use_sets_the_size(void **state) {
  assert_int_equal(iob_pool_request_size(0), IOB_ERANGE);
  assert_int_equal(iob_pool_request_size(1025), IOB_ERANGE);
  assert_int_equal(iob_pool_request_size(6), 0);
  assert_string_equal(getenv("UV_THREADPOOL_SIZE"), "6");
  assert_int_equal(iob_pool_size(), 6);
}

static void the_pool_runs_with_the_requested_size(void **state) {
  iob_report r = run_report(&iob_style_pool, 12, 100);
  assert_int_equal(r.threads, 6);
  assert_int_equal(r.peak_in_flight, 6);
  /* 12 waits on 6 threads: two rounds. */
  assert_ms_between(MS(r.elapsed_ns), 200, 900);
}

static void a_request_after_first_use_is_too_late(void **state) {
  assert_int_equal(iob_pool_request_size(8), IOB_EALREADY);
  assert_string_equal(getenv("UV_THREADPOOL_SIZE"), "6");
  /* The size is what libuv read, whatever the environment says now. */
  setenv("UV_THREADPOOL_SIZE", "2", 1);
  assert_int_equal(iob_pool_size(), 6);
  assert_int_equal(iob_pool_request_size(2000), IOB_ERANGE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pool_size_follows_libuvs_reading_of_the_environment),
      cmocka_unit_test(a_request_before_first_use_sets_the_size),
      cmocka_unit_test(the_pool_runs_with_the_requested_size),
      cmocka_unit_test(a_request_after_first_use_is_too_late),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
