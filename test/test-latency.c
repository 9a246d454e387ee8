/* Percentiles of a batch's times (iob_batch_latency()): within 1% of the
 * exact ones a sort gives, for the time queued, running and in all; the
 * wait for a slot under a limit counts as queued; an empty, a running or
 * a missing batch gets a clear error. Every loop closes
 * (uv_loop_close() == 0). */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static int by_value(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* p (from a percentile's reading) is the time at rank ceil(q n) of the
 * sorted times, or at most 1/128 above it. */
static void within(const char *what, double q, uint64_t p,
                   const uint64_t *sorted, uint32_t n) {
  uint64_t rank = (uint64_t)(q * n);
  if ((double)rank < q * n)
    rank++;
  uint64_t exact = sorted[rank > 0 ? rank - 1 : 0];
  if (p < exact || p > exact + exact / 128)
    fail_msg("%s at %.3f: %llu ns, exact %llu ns", what, q,
             (unsigned long long)p, (unsigned long long)exact);
}

static void check(const char *what, const iob_percentiles *p, uint64_t *times,
                  uint32_t n) {
  qsort(times, n, sizeof(*times), by_value);
  within(what, 0.5, p->p50_ns, times, n);
  within(what, 0.9, p->p90_ns, times, n);
  within(what, 0.99, p->p99_ns, times, n);
  within(what, 0.999, p->p999_ns, times, n);
  assert_int_equal(p->max_ns, times[n - 1]);
}

/* 2,000 waits of 0 to 39 ms, 200 at a time, on the loop and on a loop
 * per core: every percentile of each of the three times is the exact one or
 * at most 0.8% above it, and the max is exact. */
static void percentiles_are_within_one_percent_of_a_sort(void **state) {
  enum { N = 2000 };
  const iob_style *styles[] = {&iob_style_loop, &iob_style_loops};
  uint32_t *durations = malloc(N * sizeof(*durations));
  uint64_t *times = malloc(N * sizeof(*times));
  for (uint32_t i = 0; i < N; i++)
    durations[i] = (i * 7) % 40;
  for (int k = 0; k < 2; k++) {
    iob_config c = config_of(styles[k], N, 0);
    c.durations_ms = durations;
    c.max_in_flight = 200;
    iob_batch *b = run_on_own_loop(&c, NULL);
    iob_latency l;
    assert_code(iob_batch_latency(b, &l), 0);
    assert_int_equal(l.count, N);
    const iob_record *r = iob_batch_records(b, NULL);
    for (uint32_t i = 0; i < N; i++) /* from the start: under a limit */
      times[i] = r[i].started_ns;
    check("queued", &l.queued, times, N);
    for (uint32_t i = 0; i < N; i++)
      times[i] = r[i].finished_ns - r[i].started_ns;
    check("running", &l.running, times, N);
    for (uint32_t i = 0; i < N; i++)
      times[i] = r[i].finished_ns;
    check("total", &l.total, times, N);
    assert_code(iob_batch_free(b), 0);
  }
  free(times);
  free(durations);
}

/* Ten waits of 100 ms, five at a time: half waited a round for a slot,
 * so the p90 of the time queued is a round, and of the total two. */
static void the_wait_for_a_slot_is_queued_time(void **state) {
  iob_config c = config_of(&iob_style_loop, 10, 100);
  c.max_in_flight = 5;
  iob_batch *b = run_on_own_loop(&c, NULL);
  iob_latency l;
  assert_code(iob_batch_latency(b, &l), 0);
  assert_ms_between(MS(l.queued.p50_ns), 0, 50);
  assert_ms_between(MS(l.queued.p90_ns), 99, 400);
  assert_ms_between(MS(l.running.p90_ns), 99, 400);
  assert_ms_between(MS(l.total.p90_ns), 198, 800);
  iob_latency again; /* kept: the same answer */
  assert_code(iob_batch_latency(b, &again), 0);
  assert_int_equal(again.count, l.count);
  const iob_percentiles *was[] = {&l.queued, &l.running, &l.total};
  const iob_percentiles *is[] = {&again.queued, &again.running, &again.total};
  for (int k = 0; k < 3; k++) /* (field by field: not the padding) */
    assert_memory_equal(is[k], was[k], sizeof(iob_percentiles));
  assert_code(iob_batch_free(b), 0);
}

/* No batch, nowhere to write, a batch still running, or one closed with
 * no operations: each a clear error. */
static void what_cannot_be_measured_is_refused(void **state) {
  iob_latency l;
  assert_code(iob_batch_latency(NULL, &l), IOB_EINVAL);

  iob_config c = config_of(&iob_style_loop, 0, 0);
  c.open = 1;
  test_loop t;
  test_loop_init(&t);
  iob_batch *b = test_loop_create(&t, &c, NULL);
  assert_code(iob_batch_latency(b, NULL), IOB_EINVAL);
  test_loop_start_created(&t, b);
  assert_code(iob_batch_latency(b, &l), IOB_EBUSY);
  assert_code(iob_batch_close(b), 0);
  test_loop_run(&t);
  test_loop_close(&t);
  assert_code(iob_batch_latency(b, &l), IOB_ENODATA);
  assert_string_equal(iob_err_name(IOB_ENODATA), "IOB_ENODATA");
  assert_string_equal(iob_strerror(IOB_ENODATA),
                      "nothing to measure: no operations");
  assert_code(iob_batch_free(b), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(percentiles_are_within_one_percent_of_a_sort),
      cmocka_unit_test(the_wait_for_a_slot_is_queued_time),
      cmocka_unit_test(what_cannot_be_measured_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
