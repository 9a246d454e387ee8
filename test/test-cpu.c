/* CPU-bound work: concurrency helps only as far as there are cores. */
#include "helpers.h"

static iob_report run_cpu(iob_style style, uint32_t count, uint64_t ms) {
  iob_config c = config_of(style, count, ms);
  c.work = IOB_WORK_CPU;
  return report_of(&c);
}

static void cpu_work_on_the_loop_runs_one_after_another(void **state) {
  iob_report r = run_cpu(IOB_STYLE_LOOP, 4, 100);
  /* Each operation computes for 100 ms of its own CPU time. */
  assert_true(MS(r.elapsed_ns) >= 4 * 100 * 0.95);
  assert_int_equal(r.peak_in_flight, 1);
  assert_true(MS(r.cpu_ns) >= 4 * 100 * 0.95);
}

/* The quickest of three runs: another busy process can take a core for a
 * while, and parallel computing needs the cores to be there. */
static iob_report best_of_three(iob_style style) {
  iob_report best = run_cpu(style, 4, 100);
  for (int k = 0; k < 2; k++) {
    iob_report r = run_cpu(style, 4, 100);
    if (r.elapsed_ns < best.elapsed_ns)
      best = r;
  }
  return best;
}

static void cpu_work_on_threads_runs_in_parallel_up_to_the_cores(void **s) {
  iob_report loop = run_cpu(IOB_STYLE_LOOP, 4, 100);
  iob_report threads = best_of_three(IOB_STYLE_THREADS);
  iob_report pool = best_of_three(IOB_STYLE_POOL);
  /* Two cores or more: clearly faster than on the loop, but never faster
   * than the total CPU time spread over every core. */
  assert_true(MS(threads.elapsed_ns) < 0.8 * MS(loop.elapsed_ns));
  assert_true(MS(pool.elapsed_ns) < 0.8 * MS(loop.elapsed_ns));
  assert_true(MS(threads.elapsed_ns) >= 400.0 / threads.cores * 0.95);
  assert_true(threads.cores >= 2);
}

static void waiting_on_the_loop_uses_almost_no_cpu(void **state) {
  iob_report r = run_report(IOB_STYLE_LOOP, 100, 100);
  assert_true(MS(r.cpu_ns) < 50);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cpu_work_on_the_loop_runs_one_after_another),
      cmocka_unit_test(cpu_work_on_threads_runs_in_parallel_up_to_the_cores),
      cmocka_unit_test(waiting_on_the_loop_uses_almost_no_cpu),
  };
  /* Parallel computing needs two cores: skipped (77) on one. */
  if (uv_available_parallelism() < 2)
    return 77;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
