/* The peak in flight, measured from records: exact in every order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */
#include <stdlib.h>

#include "peak.h"

/* The implementation it replaces, kept as the reference: sort copies of
 * every start and end, then merge. */
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static uint32_t reference_peak(const iob_record *r, uint32_t n) {
  uint32_t m = 0;
  uint64_t *starts = malloc(2 * (size_t)n * sizeof(*starts) + 1);
  assert_non_null(starts);
  uint64_t *ends = starts + n;
  for (uint32_t i = 0; i < n; i++) {
    if (r[i].finished_ns > r[i].started_ns) {
      starts[m] = r[i].started_ns;
      ends[m++] = r[i].finished_ns;
    }
  }
  qsort(starts, m, sizeof(*starts), cmp_u64);
  qsort(ends, m, sizeof(*ends), cmp_u64);
  uint32_t running = 0, top = m < n ? 1 : 0, e = 0;
  for (uint32_t s = 0; s < m; s++) {
    while (e < m && ends[e] <= starts[s]) {
      e++;
      running--;
    }
    if (++running > top)
      top = running;
  }
  free(starts);
  return top;
}

static uint32_t peak_of(const iob_record *r, uint32_t n) {
  uint32_t peak = UINT32_MAX;
  assert_int_equal(iob__peak_in_flight(r, n, &peak), 0);
  return peak;
}

/* splitmix64: the same cases on every run and machine. */
static uint64_t seed = 42;
static uint64_t next_random(void) {
  uint64_t z = (seed += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

static uint64_t below(uint64_t bound) { return next_random() % bound; }

static void set(iob_record *r, uint64_t start, uint64_t end) {
  r->started_ns = start;
  r->finished_ns = end;
}

/* Swap each record with one at most `reach` places later (all of them:
 * a full shuffle), as a pool's threads stamp their starts out of turn. */
static void disorder(iob_record *r, uint32_t n, uint32_t reach) {
  for (uint32_t i = 0; i + 1 < n; i++) {
    uint32_t left = n - 1 - i, d = left < reach ? left : reach;
    uint32_t j = i + (uint32_t)below((uint64_t)d + 1);
    iob_record t = r[i];
    r[i] = r[j];
    r[j] = t;
  }
}

static void no_records_have_no_peak(void **state) {
  (void)state;
  iob_record r[1] = {0};
  assert_int_equal(peak_of(r, 0), 0);
  assert_int_equal(peak_of(NULL, 0), 0);
}

static void operations_that_took_no_time_count_as_one(void **state) {
  (void)state;
  iob_record r[3] = {0};
  set(&r[0], 5, 5);
  set(&r[1], 5, 5);
  set(&r[2], 9, 3); /* an end before its start took no time either */
  assert_int_equal(peak_of(r, 3), 1);
  set(&r[2], 1, 2); /* one that ran: still 1 */
  assert_int_equal(peak_of(r, 3), 1);
}

static void touching_intervals_do_not_overlap(void **state) {
  (void)state;
  iob_record r[4] = {0};
  set(&r[0], 0, 10);
  set(&r[1], 10, 20);
  set(&r[2], 20, 30);
  set(&r[3], 30, 31);
  assert_int_equal(peak_of(r, 4), 1);
  set(&r[3], 29, 31); /* now one instant, 29, holds two */
  assert_int_equal(peak_of(r, 4), 2);
}

static void intervals_that_all_overlap_count_every_one(void **state) {
  (void)state;
  iob_record r[100] = {0};
  for (uint32_t i = 0; i < 100; i++)
    set(&r[i], i, 1000 - i);
  assert_int_equal(peak_of(r, 100), 100);
  set(&r[50], 60, 60); /* one that took no time does not count */
  assert_int_equal(peak_of(r, 100), 99);
}

static void sorted_starts_with_varied_lengths_are_exact(void **state) {
  (void)state;
  /* 0:[0,100) 1:[10,20) 2:[15,40) 3:[20,30) 4:[25,26) 5:[40,41):
   * at 25, intervals 0, 2, 3 and 4 run. */
  static const uint64_t t[][2] = {{0, 100}, {10, 20}, {15, 40},
                                  {20, 30}, {25, 26}, {40, 41}};
  iob_record r[6] = {0};
  for (int i = 0; i < 6; i++)
    set(&r[i], t[i][0], t[i][1]);
  assert_int_equal(peak_of(r, 6), 4);
}

static void a_start_one_nanosecond_out_of_turn_still_counts(void **state) {
  (void)state;
  /* At 2, the first two and the last run; at 3 only the last two. */
  iob_record r[4] = {0};
  set(&r[0], 0, 3);
  set(&r[1], 1, 3);
  set(&r[2], 3, 9);
  set(&r[3], 2, 9);
  assert_int_equal(peak_of(r, 4), 3);
}

static void shuffled_pool_like_order_gives_the_same_peak(void **state) {
  (void)state;
  enum { N = 5000 };
  iob_record *r = calloc(N, sizeof(*r));
  assert_non_null(r);
  /* Four threads, each running its operations back to back. */
  for (uint32_t i = 0; i < N; i++)
    set(&r[i], (i / 4) * 100 + i % 4, (i / 4 + 1) * 100 + i % 4);
  assert_int_equal(peak_of(r, N), 4);
  disorder(r, N, 8);
  assert_int_equal(peak_of(r, N), 4);
  disorder(r, N, 3000); /* further than a pool would */
  assert_int_equal(peak_of(r, N), 4);
  disorder(r, N, N);
  assert_int_equal(peak_of(r, N), 4);
  free(r);
}

static void random_cases_agree_with_the_sorting_reference(void **state) {
  (void)state;
  enum { N = 2000 };
  iob_record *r = calloc(N, sizeof(*r));
  assert_non_null(r);
  static const uint32_t reaches[] = {0, 1, 4, 100, 200, 1000, N};
  for (int round = 0; round < 3000; round++) {
    uint32_t n = 1 + (uint32_t)below(round % 3 == 0 ? 20 : N);
    /* Small time spans make many starts and ends fall together. */
    uint64_t span = (uint64_t)1 << below(40), longest = 1 + below(span + 1);
    uint64_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
      at += below(span / n + 2); /* in start order... */
      uint64_t len = below(5) == 0 ? 0 : 1 + below(longest);
      set(&r[i], at, at + len);
      if (below(50) == 0)
        set(&r[i], at, at - below(at + 1)); /* took no time */
    }
    disorder(r, n, reaches[below(sizeof(reaches) / sizeof(*reaches))]);
    if (below(10) == 0) /* ...or reversed */
      for (uint32_t i = 0; i < n / 2; i++) {
        iob_record t = r[i];
        r[i] = r[n - 1 - i];
        r[n - 1 - i] = t;
      }
    assert_int_equal(peak_of(r, n), reference_peak(r, n));
  }
  free(r);
}

static void a_million_records_are_measured_exactly(void **state) {
  (void)state;
  enum { N = 1000000 };
  iob_record *r = calloc(N, sizeof(*r));
  assert_non_null(r);
  for (uint32_t i = 0; i < N; i++) /* launched at once */
    set(&r[i], i, 2 * (uint64_t)N + below(1000));
  assert_int_equal(peak_of(r, N), N);
  for (uint32_t i = 0; i < N; i++) /* launched 1 us apart, 1..1000 ms */
    set(&r[i], i * (uint64_t)1000,
        i * (uint64_t)1000 + (1 + below(1000)) * 1000000);
  assert_int_equal(peak_of(r, N), reference_peak(r, N));
  disorder(r, N, 16);
  assert_int_equal(peak_of(r, N), reference_peak(r, N));
  free(r);
}

static void *refuse(void *block, size_t size) {
  (void)block;
  (void)size;
  return NULL;
}

static void *refuse_big(void *block, size_t size) {
  return size > 40000 ? NULL : realloc(block, size);
}

static void out_of_memory_is_reported_with_a_lower_bound(void **state) {
  (void)state;
  enum { N = 3000 };
  iob_record *r = calloc(N, sizeof(*r));
  assert_non_null(r);
  for (uint32_t i = 0; i < N; i++) /* 300 in flight from 2700 on */
    set(&r[i], i, i < 2700 ? i + 1 : N + i);
  uint32_t peak = 0, truth = reference_peak(r, N);
  assert_int_equal(truth, 300);
  iob__peak_realloc = refuse;
  /* In start order, small peaks need only the stack... */
  assert_int_equal(iob__peak_in_flight(r, 2700, &peak), 0);
  assert_int_equal(peak, 1);
  /* ...and so do intervals that outlast every start. */
  assert_int_equal(iob__peak_in_flight(r, N, &peak), 0);
  assert_int_equal(peak, truth);
  set(&r[N - 1], 10 * N, 10 * N + 1); /* now their ends must be kept */
  truth = reference_peak(r, N);
  assert_int_equal(iob__peak_in_flight(r, N, &peak), IOB_ENOMEM);
  assert_true(peak >= 1 && peak <= truth);
  disorder(r, N, N); /* no window for the sweep... */
  assert_int_equal(iob__peak_in_flight(r, N, &peak), IOB_ENOMEM);
  assert_true(peak >= 1 && peak <= truth);
  iob__peak_realloc = refuse_big; /* ...or no room for the sort */
  assert_int_equal(iob__peak_in_flight(r, N, &peak), IOB_ENOMEM);
  assert_true(peak >= 1 && peak <= truth);
  iob__peak_realloc = realloc;
  assert_int_equal(iob__peak_in_flight(r, N, &peak), 0);
  assert_int_equal(peak, truth);
  free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(no_records_have_no_peak),
      cmocka_unit_test(operations_that_took_no_time_count_as_one),
      cmocka_unit_test(touching_intervals_do_not_overlap),
      cmocka_unit_test(intervals_that_all_overlap_count_every_one),
      cmocka_unit_test(sorted_starts_with_varied_lengths_are_exact),
      cmocka_unit_test(a_start_one_nanosecond_out_of_turn_still_counts),
      cmocka_unit_test(shuffled_pool_like_order_gives_the_same_peak),
      cmocka_unit_test(random_cases_agree_with_the_sorting_reference),
      cmocka_unit_test(a_million_records_are_measured_exactly),
      cmocka_unit_test(out_of_memory_is_reported_with_a_lower_bound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
