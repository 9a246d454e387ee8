/* Every operation is reported once, with times that make sense. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h" /* a batch's records before it runs */

static void check_records(const iob_batch *b, uint32_t count) {
  uint32_t n;
  const iob_record *rec = iob_batch_records(b, &n);
  assert_non_null(rec);
  assert_int_equal(n, count);
  for (uint32_t i = 0; i < n; i++) {
    assert_cmp(rec[i].queued_ns, <=, rec[i].started_ns);
    assert_cmp(rec[i].started_ns, <=, rec[i].finished_ns);
    assert_int_equal(rec[i].status, 0);
  }
}

static void records_are_consistent_in_every_style(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, 20, 2);
    iob_batch *b;
    assert_code(iob_run(&b, &c), 0);
    check_records(b, 20);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    assert_int_equal(r.count, 20);
    assert_int_equal(r.failed, 0);
    assert_int_equal(r.status, 0);
    assert_ptr_equal(r.style, style);
    assert_ptr_equal(r.kind, &iob_kind_wait);
    /* No operation ends after the batch does. */
    const iob_record *rec = iob_batch_records(b, NULL);
    for (int i = 0; i < 20; i++)
      assert_cmp(rec[i].finished_ns, <=, r.elapsed_ns);
    assert_code(iob_batch_free(b), 0);
  }
}

static void sequential_operations_never_overlap(void **state) {
  iob_config c = config_of(&iob_style_sequential, 10, 3);
  iob_batch *b;
  assert_code(iob_run(&b, &c), 0);
  const iob_record *rec = iob_batch_records(b, NULL);
  for (int i = 1; i < 10; i++)
    assert_cmp(rec[i].started_ns, >=, rec[i - 1].finished_ns);
  assert_code(iob_batch_free(b), 0);
}

static void pool_operations_run_on_pool_threads_not_the_loop(void **state) {
  iob_config c = config_of(&iob_style_pool, 8, 5);
  iob_batch *b;
  assert_code(iob_run(&b, &c), 0);
  const iob_record *rec = iob_batch_records(b, NULL);
  for (int i = 0; i < 8; i++)
    assert_int_not_equal(rec[i].worker, 0);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_cmp(r.workers_used, >=, 1);
  assert_cmp(r.workers_used, <=, r.threads);
  assert_code(iob_batch_free(b), 0);
}

static void mixed_durations_end_in_deadline_order(void **state) {
  enum { N = 200 };
  uint32_t durations[N];
  for (int i = 0; i < N; i++)
    durations[i] = (uint32_t)((i * 37) % 50); /* 0..49 ms, shuffled */
  iob_config c = config_of(&iob_style_loop, N, 0);
  c.durations_ms = durations;
  iob_batch *b;
  assert_code(iob_run(&b, &c), 0);
  const iob_record *rec = iob_batch_records(b, NULL);
  for (int i = 0; i < N; i++) {
    /* Each waited at least its own duration (1 ms of loop-clock slack). */
    assert_ms_at_least(MS(rec[i].finished_ns - rec[i].started_ns),
                       durations[i] - 1.0);
    /* By deadline: when it was launched (launches go a slice of time
     * at a time: a slow machine, or valgrind, launches some a few ms
     * late) plus its duration; 1 ms apart at least, since the loop's
     * timers count whole ms. */
    uint64_t due_i = rec[i].started_ns + durations[i] * 1000000ull;
    for (int j = 0; j < N; j++) {
      uint64_t due_j = rec[j].started_ns + durations[j] * 1000000ull;
      if (due_i + 1000000 <= due_j && rec[i].finished_ns > rec[j].finished_ns)
        fail_msg("op %d (due at %.3f ms) ended at %.3f ms, after op %d (due "
                 "at %.3f ms, ended at %.3f ms)",
                 i, MS(due_i), MS(rec[i].finished_ns), j, MS(due_j),
                 MS(rec[j].finished_ns));
    }
  }
  assert_code(iob_batch_free(b), 0);
}

static void zero_length_waits_finish_at_once(void **state) {
  iob_report r = run_report(&iob_style_loop, 1000, 0);
  assert_ms_below(MS(r.elapsed_ns), 500);
  assert_int_equal(r.failed, 0);
}

static void one_hundred_thousand_waits_all_complete_exactly_once(void **s) {
  enum { N = 100000 };
  iob_config c = config_of(&iob_style_loop, N, 20);
  iob_batch *b;
  assert_code(iob_run(&b, &c), 0);
  const iob_record *rec = iob_batch_records(b, NULL);
  uint64_t first_end = UINT64_MAX;
  for (int i = 0; i < N; i++) {
    assert_ms_at_least(MS(rec[i].finished_ns - rec[i].started_ns), 19);
    assert_int_equal(rec[i].worker, 0);
    first_end = rec[i].finished_ns < first_end ? rec[i].finished_ns : first_end;
  }
  /* All at once, unless launching them took longer than a wait (under
   * TSan or valgrind): the loop then ran due ones between two slices of
   * launches, and the peak is at least what started before the first
   * end. */
  uint32_t before_first_end = 0;
  for (int i = 0; i < N; i++)
    before_first_end += rec[i].started_ns <= first_end;
  iob_report r, again;
  assert_code(iob_batch_report(b, &r), 0);
  if (before_first_end == N)
    assert_int_equal(r.peak_in_flight, N);
  else if (r.peak_in_flight < before_first_end || r.peak_in_flight > N)
    fail_msg("peak %u, with %u started before the first end", r.peak_in_flight,
             before_first_end);
  /* Asked again (as every exporter does), the report is the same. */
  assert_code(iob_batch_report(b, &again), 0);
  assert_int_equal(again.peak_in_flight, r.peak_in_flight);
  assert_int_equal(again.elapsed_ns, r.elapsed_ns);
  assert_code(iob_batch_free(b), 0);
}

/* Three million operations: 96 MB of records, past the size from which
 * the batch measures whether huge pages back them faster (batch.c). Each
 * record starts as nothing happened, whatever pages back it, and the
 * last byte is there. */
static void records_of_millions_start_zeroed_whatever_backs_them(void **s) {
  enum { N = 3000000 };
  iob_config c = config_of(&iob_style_loop, N, 0);
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  const iob_record *rec = b->records;
  static const iob_record zero;
  for (uint32_t i = 0; i < N; i += 4093) /* a prime stride: every page */
    if (memcmp(&rec[i], &zero, sizeof(zero)) != 0)
      fail_msg("record %u is not zeroed", i);
  assert_memory_equal(&rec[N - 1], &zero, sizeof(zero));
  assert_code(iob_batch_free(b), 0);
}

/* The durations are the batch's own once it is created: the caller may
 * change or free its array, even to values no list was made for. */
static void durations_are_copied_when_the_batch_is_made(void **state) {
  enum { N = 50 };
  uint32_t *durations = malloc(N * sizeof(*durations));
  for (int i = 0; i < N; i++)
    durations[i] = (uint32_t)(i % 5) * 4; /* 0..16 ms */
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, N, 0);
    c.durations_ms = durations;
    c.max_in_flight = 10;
    test_loop t;
    test_loop_init(&t);
    iob_batch *b = test_loop_create(&t, &c, NULL);
    for (int i = 0; i < N; i++)
      durations[i] = 3600 * 1000; /* an hour, had it been read */
    test_loop_start_created(&t, b);
    test_loop_run(&t);
    test_loop_close(&t);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    assert_int_equal(r.failed, 0);
    assert_ms_below(MS(r.elapsed_ns), 3000);
    assert_code(iob_batch_free(b), 0);
    for (int i = 0; i < N; i++)
      durations[i] = (uint32_t)(i % 5) * 4;
  }
  free(durations);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(records_are_consistent_in_every_style),
      cmocka_unit_test(sequential_operations_never_overlap),
      cmocka_unit_test(pool_operations_run_on_pool_threads_not_the_loop),
      cmocka_unit_test(mixed_durations_end_in_deadline_order),
      cmocka_unit_test(zero_length_waits_finish_at_once),
      cmocka_unit_test(durations_are_copied_when_the_batch_is_made),
      cmocka_unit_test(one_hundred_thousand_waits_all_complete_exactly_once),
      cmocka_unit_test(records_of_millions_start_zeroed_whatever_backs_them),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
