/* Rate limits (iob_rate): a token bucket that spaces launches in every
 * style, lets a burst through at once, is shared in turn by batches on a
 * loop, is passed before a shared limit's permit (so an operation that
 * waits for a token holds none), lets a cancelled batch end at once, and
 * refuses what it cannot mean. Every loop closes (uv_loop_close() == 0). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

/* ms from the batch's start to operation i's start. */
static double started_ms(const iob_batch *b, uint32_t i) {
  uint32_t n;
  const iob_record *rec = iob_batch_records(b, &n);
  assert_cmp(i, <, n);
  return MS(rec[i].started_ns);
}

/* 100 a second, a burst of 1: 11 operations start 10 ms apart, whatever
 * the style. */
static void a_rate_spaces_the_launches_in_every_style(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_rate *rate;
    assert_code(iob_rate_create(&rate, 100, 1), 0);
    iob_config c = config_of(style, 11, 1);
    c.rate = rate;
    test_counts counts;
    iob_batch *b = run_on_own_loop(&c, &counts);
    assert_int_equal(counts.failed, 0);
    for (uint32_t i = 1; i < 11; i++) {
      double at = started_ms(b, i);
      if (at < 10.0 * i - 1.5)
        fail_msg("%s: operation %u started at %.1f ms, before %u ms",
                 iob_style_name(style), i, at, 10 * i);
    }
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    test_assert_ms("elapsed", MS(r.elapsed_ns), 99, 1500, __FILE__, __LINE__);
    assert_code(iob_batch_free(b), 0);
    assert_code(iob_rate_free(rate), 0);
  }
}

/* A burst of 5 at 20 a second: five start at once, the sixth 50 ms on,
 * the eighth 150 ms on. */
static void a_burst_starts_at_once_then_the_rate_spaces_the_rest(void **state) {
  iob_rate *rate;
  assert_code(iob_rate_create(&rate, 20, 5), 0);
  iob_config c = config_of(&iob_style_loop, 8, 1);
  c.rate = rate;
  iob_batch *b = run_on_own_loop(&c, NULL);
  for (uint32_t i = 0; i < 5; i++)
    test_assert_ms("a burst's start", started_ms(b, i), 0, 20, __FILE__,
                   __LINE__);
  test_assert_ms("the sixth's start", started_ms(b, 5), 49, 400, __FILE__,
                 __LINE__);
  test_assert_ms("the eighth's start", started_ms(b, 7), 149, 600, __FILE__,
                 __LINE__);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.rate_waits, 3); /* all but the burst */
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_rate_free(rate), 0);
}

/* Two batches on one loop, one rate of 100 a second: 20 launches take
 * about 190 ms between them, each batch's in turn, and the rate is busy
 * (not freed) while they run. */
static void batches_on_a_loop_share_one_rate_in_turn(void **state) {
  iob_rate *rate;
  assert_code(iob_rate_create(&rate, 100, 1), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config c = config_of(&iob_style_loop, 10, 1);
  c.rate = rate;
  iob_batch *a = test_loop_start(&t, &c, NULL);
  iob_batch *b = test_loop_start(&t, &c, NULL);
  assert_code(iob_rate_free(rate), IOB_EBUSY);
  test_loop_run(&t);
  test_loop_close(&t);
  /* In turn, each batch gets every other token: its tenth starts past
   * 170 ms, not at 90 ms as a batch that took them all would. */
  double x = started_ms(a, 9), y = started_ms(b, 9);
  test_assert_ms("batch a's tenth start", x, 170, 1500, __FILE__, __LINE__);
  test_assert_ms("batch b's tenth start", y, 170, 1500, __FILE__, __LINE__);
  double last = x > y ? x : y;
  test_assert_ms("the last start", last, 185, 1500, __FILE__, __LINE__);
  assert_code(iob_batch_free(a), 0);
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_rate_free(rate), 0);
}

/* One permit shared by a rate-limited batch (2 a second) and one
 * without: while the first one's second operation waits half a second
 * for its token, the other's three run, one after another, on the
 * permit the waiting operation does not hold. */
static void an_operation_waiting_for_a_token_holds_no_permit(void **state) {
  iob_rate *rate;
  iob_limit *one;
  assert_code(iob_rate_create(&rate, 2, 1), 0);
  assert_code(iob_limit_create(&one, 1), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config slow = config_of(&iob_style_loop, 2, 10);
  slow.rate = rate;
  slow.shared_limit = one;
  iob_config free_ = config_of(&iob_style_loop, 3, 10);
  free_.shared_limit = one;
  iob_batch *a = test_loop_start(&t, &slow, NULL);
  iob_batch *b = test_loop_start(&t, &free_, NULL);
  test_loop_run(&t);
  test_loop_close(&t);
  iob_report ra, rb;
  assert_code(iob_batch_report(a, &ra), 0);
  assert_code(iob_batch_report(b, &rb), 0);
  test_assert_ms("the free batch", MS(rb.elapsed_ns), 29, 300, __FILE__,
                 __LINE__);
  assert_int_equal(ra.rate_waits, 1);
  assert_int_equal(rb.rate_waits, 0);
  test_assert_ms("the second token", started_ms(a, 1), 490, 2000, __FILE__,
                 __LINE__);
  assert_code(iob_batch_free(a), 0);
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_limit_free(one), 0);
  assert_code(iob_rate_free(rate), 0);
}

/* A batch cancelled while it waits a second for each token ends at once:
 * what had not launched is cancelled, and nothing of the rate's keeps the
 * loop running (test_loop_close() proves it). The rate serves a batch on
 * another loop after. */
static void
a_cancel_while_waiting_for_tokens_ends_the_batch_at_once(void **state) {
  iob_rate *rate;
  assert_code(iob_rate_create(&rate, 1, 1), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config c = config_of(&iob_style_loop, 5, 1);
  c.rate = rate;
  iob_batch *b = test_loop_start(&t, &c, NULL);
  test_loop_cancel_after(&t, b, 50);
  uint64_t t0 = uv_hrtime();
  test_loop_run(&t);
  test_loop_close(&t);
  test_assert_ms("the cancelled batch's end", MS(uv_hrtime() - t0), 45, 500,
                 __FILE__, __LINE__);
  uint32_t n;
  const iob_record *rec = iob_batch_records(b, &n);
  for (uint32_t i = 1; i < n; i++)
    assert_code(rec[i].status, IOB_ECANCELED);
  assert_code(iob_batch_free(b), 0);
  c.count = 1; /* the same rate, another loop, now that none uses it */
  iob_batch *again = run_on_own_loop(&c, NULL);
  assert_code(iob_batch_free(again), 0);
  assert_code(iob_rate_free(rate), 0);
}

static void never_called(iob_batch *b, int status) {
  (void)b, (void)status;
  fail_msg("a batch that did not start called back");
}

/* At 2,000 a second, a burst of 1, a thousand operations take about half
 * a second, though the loop's timer cannot wake every half millisecond:
 * the tokens that came due while it slept are handed out when it wakes.
 * (Capped at the burst, they were lost: 1.1 s.) */
static void a_fast_rate_holds_on_average(void **state) {
  iob_rate *rate;
  assert_code(iob_rate_create(&rate, 2000, 1), 0);
  iob_config c = config_of(&iob_style_loop, 1000, 0);
  c.rate = rate;
  iob_batch *b = run_on_own_loop(&c, NULL);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  test_assert_ms("1,000 at 2,000 a second", MS(r.elapsed_ns), 490, 800,
                 __FILE__, __LINE__);
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_rate_free(rate), 0);
}

/* What a rate cannot mean is refused, and so is a batch started with a
 * rate that another loop's batch uses; that batch loses nothing and
 * starts later. */
static void bad_rates_are_refused_and_lose_nothing(void **state) {
  iob_rate *rate = (iob_rate *)&rate;
  const double bad[] = {0, -1, 0.0009, 1.1e9, NAN, INFINITY};
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    if (iob_rate_create(&rate, bad[k], 1) != IOB_ERANGE)
      fail_msg("a rate of %g is not IOB_ERANGE", bad[k]);
    assert_null(rate);
  }
  assert_code(iob_rate_create(&rate, 10, 0), IOB_ERANGE);
  assert_code(iob_rate_create(&rate, 10, IOB_COUNT_MAX + 1), IOB_ERANGE);
  assert_code(iob_rate_create(NULL, 10, 1), IOB_EINVAL);
  assert_code(iob_rate_free(NULL), 0);

  assert_code(iob_rate_create(&rate, 50, 1), 0);
  test_loop one, two;
  test_loop_init(&one);
  test_loop_init(&two);
  iob_config c = config_of(&iob_style_loop, 3, 1);
  c.rate = rate;
  iob_batch *a = test_loop_start(&one, &c, NULL);
  iob_batch *b = test_loop_create(&two, &c, NULL);
  assert_code(iob_batch_start(b, &two.loop, never_called), IOB_EINVAL);
  assert_null(iob_batch_loop(b)); /* nothing started */
  test_loop_run(&one);
  test_loop_close(&one);
  test_loop_start_created(&two, b); /* the rate is free again */
  test_loop_run(&two);
  test_loop_close(&two);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.failed, 0);
  assert_code(iob_batch_free(a), 0);
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_rate_free(rate), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_rate_spaces_the_launches_in_every_style),
      cmocka_unit_test(a_burst_starts_at_once_then_the_rate_spaces_the_rest),
      cmocka_unit_test(batches_on_a_loop_share_one_rate_in_turn),
      cmocka_unit_test(an_operation_waiting_for_a_token_holds_no_permit),
      cmocka_unit_test(
          a_cancel_while_waiting_for_tokens_ends_the_batch_at_once),
      cmocka_unit_test(a_fast_rate_holds_on_average),
      cmocka_unit_test(bad_rates_are_refused_and_lose_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
