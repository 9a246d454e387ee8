/* A limit on operations in flight, like a semaphore, in every style. */
#include "common.h"

static iob_report run_limited(const iob_style *style, uint32_t count,
                              uint64_t ms, uint32_t limit) {
  iob_config c = config_of(style, count, ms);
  c.max_in_flight = limit;
  iob_report r = report_of(&c);
  assert_cmp(r.peak_in_flight, <=, limit);
  return r;
}

static void loop_runs_one_hundred_waits_ten_at_a_time_in_one_second(void **s) {
  iob_report r = run_limited(&iob_style_loop, 100, 100, 10);
  assert_ms_between(MS(r.elapsed_ns), 1000, 2000);
  assert_int_equal(r.peak_in_flight, 10);
}

static void threads_run_one_hundred_waits_ten_at_a_time(void **state) {
  iob_report r = run_limited(&iob_style_threads, 100, 100, 10);
  assert_ms_between(MS(r.elapsed_ns), 1000, 2000);
  assert_int_equal(r.threads, 10);
}

static void pool_obeys_the_smaller_of_limit_and_pool_size(void **state) {
  unsigned int p = iob_pool_size();
  uint32_t width = p < 10 ? p : 10;
  uint32_t rounds = (100 + width - 1) / width;
  iob_report r = run_limited(&iob_style_pool, 100, 100, 10);
  assert_ms_between(MS(r.elapsed_ns), rounds * 100, rounds * 100 + 1000);
  assert_int_equal(r.peak_in_flight, width);
}

static void sequential_is_the_limit_one_whatever_the_limit(void **state) {
  iob_report r = run_limited(&iob_style_sequential, 10, 50, 10);
  assert_ms_at_least(MS(r.elapsed_ns), 500);
  assert_int_equal(r.peak_in_flight, 1);
}

static void a_limit_above_the_count_changes_nothing(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    if (style == &iob_style_sequential)
      continue; /* the limit 1 whatever the limit */
    iob_report r = run_limited(style, 4, 100, 1000);
    assert_ms_between(MS(r.elapsed_ns), 100, 600);
    assert_int_equal(r.peak_in_flight, 4);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(loop_runs_one_hundred_waits_ten_at_a_time_in_one_second),
      cmocka_unit_test(threads_run_one_hundred_waits_ten_at_a_time),
      cmocka_unit_test(pool_obeys_the_smaller_of_limit_and_pool_size),
      cmocka_unit_test(sequential_is_the_limit_one_whatever_the_limit),
      cmocka_unit_test(a_limit_above_the_count_changes_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
