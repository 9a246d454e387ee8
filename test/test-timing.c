/* The tutorial's test, once per style: ten waits of 200 ms. The bounds are
 * wide on purpose: they must hold on a busy two-core machine and under
 * sanitizers, and still tell the styles apart. */
#include "common.h"

#define COUNT 10
#define WAIT_MS 200
#define SEQUENTIAL_MS (COUNT * WAIT_MS)

static void event_loop_runs_ten_waits_in_about_one_wait_time(void **state) {
  iob_report r = run_report(&iob_style_loop, COUNT, WAIT_MS);
  assert_ms_between(MS(r.elapsed_ns), WAIT_MS, SEQUENTIAL_MS / 2);
  assert_int_equal(r.peak_in_flight, COUNT);
  assert_int_equal(r.threads, 0);
  assert_int_equal(r.workers_used, 0);
  assert_cmp(r.speedup, >, 5.0);
}

static void
thread_pool_runs_ten_waits_in_ceil_ten_over_pool_size_rounds(void **state) {
  unsigned int p = iob_pool_size(); /* 4 unless UV_THREADPOOL_SIZE says */
  unsigned int rounds = (COUNT + p - 1) / p;
  iob_report r = run_report(&iob_style_pool, COUNT, WAIT_MS);
  /* With 4 threads: 4 waits, 4 more, then the last 2: 3 rounds. */
  assert_ms_between(MS(r.elapsed_ns), rounds * WAIT_MS,
                    rounds * WAIT_MS + SEQUENTIAL_MS / 4);
  assert_int_equal(r.threads, p);
  assert_int_equal(r.peak_in_flight, p < COUNT ? p : COUNT);
  assert_cmp(r.workers_used, <=, p);
}

static void sequential_takes_at_least_the_sum_of_the_waits(void **state) {
  iob_report r = run_report(&iob_style_sequential, COUNT, WAIT_MS);
  assert_ms_between(MS(r.elapsed_ns), SEQUENTIAL_MS, 2 * SEQUENTIAL_MS);
  assert_int_equal(r.peak_in_flight, 1);
  assert_cmp(r.speedup, >, 0.9);
  assert_cmp(r.speedup, <=, 1.0);
}

static void every_wait_lasts_at_least_its_duration(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, 5, 50);
    iob_batch *b;
    assert_code(iob_run(&b, &c), 0);
    const iob_record *rec = iob_batch_records(b, NULL);
    for (int i = 0; i < 5; i++)
      assert_ms_at_least(MS(rec[i].finished_ns - rec[i].started_ns), 49.0);
    assert_code(iob_batch_free(b), 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(event_loop_runs_ten_waits_in_about_one_wait_time),
      cmocka_unit_test(
          thread_pool_runs_ten_waits_in_ceil_ten_over_pool_size_rounds),
      cmocka_unit_test(sequential_takes_at_least_the_sum_of_the_waits),
      cmocka_unit_test(every_wait_lasts_at_least_its_duration),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
