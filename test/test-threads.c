/* Thread per operation: every thread joined, refusals handled cleanly. */
#include <stdbool.h>

#include "common.h"
#include "internal.h"

/* Waits of a second: ten threads are made long before the first one's
 * ends, even under ThreadSanitizer with other tests on both cores (waits
 * of 200 ms once saw the first end before the tenth began: a peak of 9). */
static void threads_style_runs_ten_waits_in_about_one_wait_time(void **s) {
  iob_report r = run_report(&iob_style_threads, 10, 1000);
  assert_ms_between(MS(r.elapsed_ns), 1000, 2500);
  assert_int_equal(r.threads, 10);
  assert_int_equal(r.workers_used, 10);
  assert_int_equal(r.peak_in_flight, 10);
}

static void a_thousand_threads_each_wait_once(void **state) {
  iob_config c = config_of(&iob_style_threads, 1000, 100);
  iob_batch *b;
  assert_code(iob_run(&b, &c), 0);
  uint32_t n;
  const iob_record *rec = iob_batch_records(b, &n);
  assert_int_equal(n, 1000);
  for (uint32_t i = 0; i < n; i++) {
    assert_int_equal(rec[i].status, 0);
    assert_int_not_equal(rec[i].worker, 0);
    assert_ms_at_least(MS(rec[i].finished_ns - rec[i].started_ns), 100);
  }
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.workers_used, 1000);
  /* Creating a thousand threads takes a while (5 to 7 s under
   * ThreadSanitizer on a loaded two-core machine), but far less than the
   * sequential 100 s. */
  assert_ms_below(MS(r.elapsed_ns), 20000);
  assert_code(iob_batch_free(b), 0);
}

/* ---- refusals, through the seam that creates threads -------------------- */

/* The system refuses thread number `allow + 1`, and every one after it
 * too unless `once`: a limit reached, or a passing shortage. */
static int allow;
static bool once;
static int attempts;
static int created;

static int refusing_create(uv_thread_t *tid, const uv_thread_options_t *options,
                           uv_thread_cb entry, void *arg) {
  attempts++;
  if (attempts == allow + 1 || (!once && attempts > allow))
    return UV_EAGAIN;
  created++;
  return uv_thread_create_ex(tid, options, entry, arg);
}

static int use_refusing_threads(void **state) {
  attempts = created = 0;
  once = false;
  iob__thread_create = refusing_create;
  return 0;
}

static int use_real_threads(void **state) {
  iob__thread_create = uv_thread_create_ex;
  return 0;
}

static void a_refused_thread_fails_the_batch_cleanly(void **state) {
  allow = 3;
  test_loop t;
  test_loop_init(&t);
  iob_config c = config_of(&iob_style_threads, 10, 50);
  iob_batch *b = test_loop_start(&t, &c, NULL);
  test_loop_run(&t);
  const test_counts *seen = test_loop_counts(&t, b);
  assert_int_equal(seen->batch_calls, 1);
  assert_code(seen->batch_status, IOB_EAGAIN);
  assert_int_equal(seen->ok, 3);
  assert_int_equal(seen->cancelled, 6);

  const iob_record *rec = iob_batch_records(b, NULL);
  for (int i = 0; i < 3; i++) /* the threads it got ran to the end */
    assert_int_equal(rec[i].status, 0);
  assert_code(rec[3].status, IOB_EAGAIN); /* the one refused */
  for (int i = 4; i < 10; i++)            /* the rest never started */
    assert_code(rec[i].status, IOB_ECANCELED);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_code(r.status, IOB_EAGAIN);
  assert_int_equal(r.failed, 7);
  assert_int_equal(r.threads, 3);
  assert_code(iob_batch_free(b), 0);
  test_loop_close(&t);
}

static void refusing_the_very_first_thread_settles_everything(void **s) {
  allow = 0;
  iob_config c = config_of(&iob_style_threads, 5, 50);
  iob_batch *b;
  assert_code(iob_run(&b, &c), 0);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_code(r.status, IOB_EAGAIN);
  assert_int_equal(r.failed, 5);
  assert_code(iob_batch_free(b), 0);
}

/* A stack near SIZE_MAX, asked for by the config or declared by the kind,
 * is refused as a thread the system refuses: libuv would round it up past
 * SIZE_MAX to its smallest stack, below what the kind declared. */
static void a_stack_no_system_gives_is_a_refused_thread(void **s) {
  static const iob_kind greedy = {
      .name = "greedy", .flags = IOB_KIND_WAITS, .stack_size = SIZE_MAX - 7};
  for (int k = 0; k < 2; k++) {
    iob_config c = config_of(&iob_style_threads, 3, 1);
    iob_threads_options o;
    iob_threads_options_init(&o);
    o.stack_size = SIZE_MAX - 4095;
    if (k == 0)
      c.style_options = &o;
    else
      c.kind = &greedy;
    iob_batch *b;
    assert_code(iob_run(&b, &c), 0);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    assert_code(r.status, IOB_EAGAIN);
    assert_int_equal(r.failed, 3);
    assert_int_equal(r.threads, 0);
    assert_code(iob_batch_records(b, NULL)[0].status, IOB_EAGAIN);
    assert_code(iob_batch_free(b), 0);
  }
}

static void an_adapting_batch_runs_on_with_the_threads_it_got(void **s) {
  allow = 4;
  once = true;
  iob_config c = config_of(&iob_style_threads, 12, 50);
  iob_threads_options o;
  iob_threads_options_init(&o);
  o.adapt = 1;
  c.style_options = &o;
  iob_batch *b;
  assert_code(iob_run(&b, &c), 0);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.failed, 0);
  assert_int_equal(r.threads, 4);
  assert_cmp(r.peak_in_flight, <=, 4);
  /* Every operation got its thread, and each thread was joined. */
  assert_int_equal(created, 12);
  assert_int_equal(r.workers_used, 12);
  /* 12 waits, 4 at a time: 3 rounds. */
  assert_ms_at_least(MS(r.elapsed_ns), 150);
  assert_code(iob_batch_free(b), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(threads_style_runs_ten_waits_in_about_one_wait_time),
      cmocka_unit_test(a_thousand_threads_each_wait_once),
      cmocka_unit_test(a_stack_no_system_gives_is_a_refused_thread),
      cmocka_unit_test_setup_teardown(a_refused_thread_fails_the_batch_cleanly,
                                      use_refusing_threads, use_real_threads),
      cmocka_unit_test_setup_teardown(
          refusing_the_very_first_thread_settles_everything,
          use_refusing_threads, use_real_threads),
      cmocka_unit_test_setup_teardown(
          an_adapting_batch_runs_on_with_the_threads_it_got,
          use_refusing_threads, use_real_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
