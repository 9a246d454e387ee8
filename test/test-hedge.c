/* Hedged requests (iob_hedge): an operation whose first attempt is slow
 * is overtaken by a second one started after the delay, on every loop
 * style, and the slow one is stopped; a fast one starts no hedge; the
 * attempts at once are bounded; a cancel or a timeout stops them all;
 * the delay may be a percentile of the batch's own times; every attempt
 * failing fails the operation (and a retry hedges it again); policies
 * that cannot be met are refused. Every loop closes
 * (uv_loop_close() == 0). */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define OPS_MAX 64
/* (Lower bounds allow 1 ms early for each timer on the way: libuv's count
 * the loop's whole milliseconds, the records' clock does not.) */

/* "tail": the first call of each operation at or past `slow_from` takes
 * slow_ms, every other call fast_ms; `fails`: every call fails (IOB_EIO,
 * saying so). stop() ends a call at once. Calls, stops and the
 * operations' values are counted. */
typedef struct tail {
  uint32_t slow_ms, fast_ms, slow_from;
  bool fails;
  atomic_uint calls[OPS_MAX];
  atomic_uint started, stopped;
} tail;

static int tail_fired(iob_op *op) {
  const tail *k = op->target;
  if (k->fails)
    iob_op_set_message(op, "the tail failed");
  else
    iob_op_set_value(op, 7);
  return k->fails ? IOB_EIO : 0;
}

static int tail_start(iob_op *op) {
  tail *k = (tail *)(uintptr_t)op->target;
  uint32_t n = atomic_fetch_add(&k->calls[op->index % OPS_MAX], 1);
  atomic_fetch_add(&k->started, 1);
  bool slow = n == 0 && op->index >= k->slow_from;
  return test_timer_start(op->state, op, slow ? k->slow_ms : k->fast_ms,
                          tail_fired);
}

static void tail_stop(iob_op *op) {
  tail *k = (tail *)(uintptr_t)op->target;
  atomic_fetch_add(&k->stopped, 1);
  test_timer_end(op->state, IOB_ECANCELED);
}

static const iob_kind tail_kind = {
    .name = "tail",
    .op_size = sizeof(test_timer),
    .start = tail_start,
    .stop = tail_stop,
};

static iob_hedge hedge_of(uint32_t delay_ms, uint32_t attempts) {
  iob_hedge h;
  iob_hedge_init(&h);
  h.delay_ms = delay_ms;
  h.attempts = attempts;
  return h;
}

static iob_config tail_config(const iob_style *style, uint32_t count, tail *k,
                              const iob_hedge *h) {
  iob_config c = config_of(style, count, 0);
  c.kind = &tail_kind;
  c.target = k;
  c.hedge = h;
  return c;
}

static const iob_style *const loop_styles[] = {
    &iob_style_loop, &iob_style_sequential, &iob_style_loops};

static double op_ms(const iob_batch *b, uint32_t i) {
  const iob_record *r = &iob_batch_records(b, NULL)[i];
  return MS(r->finished_ns - r->started_ns);
}

/* First attempts of 600 ms, a hedge after 40 ms that takes 10: each
 * operation ends near 50 ms with the hedge's outcome, and its slow
 * attempt is stopped. */
static void a_slow_attempt_is_overtaken_by_a_hedge(void **state) {
  for (size_t s = 0; s < 3; s++) {
    tail k = {.slow_ms = 600, .fast_ms = 10};
    iob_hedge h = hedge_of(40, 2);
    iob_config c = tail_config(loop_styles[s], 4, &k, &h);
    iob_batch *b = run_on_own_loop(&c, NULL);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    assert_int_equal(r.failed, 0);
    assert_int_equal(r.hedges, 4);
    assert_int_equal(r.hedges_won, 4);
    for (uint32_t i = 0; i < 4; i++) {
      test_assert_ms("a hedged operation", op_ms(b, i), 47, 400, __FILE__,
                     __LINE__);
      iob_outcome o;
      assert_code(iob_batch_outcome(b, i, &o), 0);
      assert_int_equal(o.value, 7);
      assert_int_equal(o.hedges, 1);
      assert_true(o.hedge_won);
    }
    assert_int_equal(atomic_load(&k.started), 8);
    assert_int_equal(atomic_load(&k.stopped), 4); /* the slow ones */
    assert_code(iob_batch_free(b), 0);
  }
}

/* Each operation's two attempts are listed in the order they began: the
 * slow first one, stopped when the hedge won, and the hedge, which began
 * near 40 ms and overlapped it. */
static void both_attempts_of_a_hedged_operation_are_listed(void **state) {
  for (size_t s = 0; s < 3; s++) {
    tail k = {.slow_ms = 600, .fast_ms = 10};
    iob_hedge h = hedge_of(40, 2);
    iob_config c = tail_config(loop_styles[s], 3, &k, &h);
    iob_batch *b = run_on_own_loop(&c, NULL);
    const iob_record *rec = iob_batch_records(b, NULL);
    for (uint32_t i = 0; i < 3; i++) {
      const iob_attempt *a;
      uint32_t n;
      assert_code(iob_batch_attempts(b, i, &a, &n), 0);
      assert_int_equal(n, 2);
      assert_int_equal(a[0].hedge, 0);
      assert_code(a[0].status, IOB_ECANCELED);
      assert_int_not_equal(a[1].hedge, 0);
      assert_int_equal(a[1].status, 0);
      test_assert_ms("the hedge's start", MS(a[1].started_ns - a[0].started_ns),
                     39, 300, __FILE__, __LINE__);
      assert_cmp(a[0].started_ns, >=, rec[i].started_ns);
      assert_cmp(a[1].started_ns, <, a[0].finished_ns); /* at once */
      assert_cmp(a[0].finished_ns, <=, rec[i].finished_ns);
      assert_cmp(a[1].finished_ns, <=, rec[i].finished_ns);
    }
    /* Drawn: the hedge in a lane below its first attempt, and on a track
     * of its own in the trace. */
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    const iob_batch *one[] = {b};
    assert_code(iob_export_svg(out, one, 1, NULL), 0);
    assert_code(iob_export_trace(out, one, 1), 0);
    assert_int_equal(fclose(out), 0);
    assert_non_null(strstr(text, "op 2, attempt 2 of 2 (a hedge): ran from"));
    assert_non_null(strstr(text, "class=\"attempt cancelled\""));
    assert_non_null(strstr(text, "\"name\":\"op 2 hedges\""));
    free(text);
    assert_code(iob_batch_free(b), 0);
  }
}

/* Attempts faster than the delay start no hedge. */
static void a_fast_attempt_starts_no_hedge(void **state) {
  tail k = {.fast_ms = 5, .slow_from = OPS_MAX};
  iob_hedge h = hedge_of(100, 3);
  iob_config c = tail_config(&iob_style_loop, 10, &k, &h);
  iob_batch *b = run_on_own_loop(&c, NULL);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.hedges, 0);
  assert_int_equal(atomic_load(&k.started), 10);
  assert_code(iob_batch_free(b), 0);
}

/* Every attempt slow (300 ms), three at most, 50 ms apart: three run,
 * the first wins, the two hedges are stopped. */
static void attempts_at_once_are_bounded(void **state) {
  tail k = {.slow_ms = 300, .fast_ms = 300};
  iob_hedge h = hedge_of(50, 3);
  iob_config c = tail_config(&iob_style_loop, 2, &k, &h);
  iob_batch *b = run_on_own_loop(&c, NULL);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.hedges, 4);
  assert_int_equal(r.hedges_won, 0);
  assert_int_equal(atomic_load(&k.started), 6);
  assert_int_equal(atomic_load(&k.stopped), 4);
  /* (Its kind's timer counts from the loop's time, read when the loop's
   * turn began: after a slow turn (3 ms under AddressSanitizer) it ends
   * that much early by the record's clock.) */
  test_assert_ms("the first attempt's end", op_ms(b, 0), 290, 1000, __FILE__,
                 __LINE__);
  /* Three at once: in the trace, the two hedges on tracks of their own,
   * since a track's events must nest. */
  char *text = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&text, &size);
  const iob_batch *one[] = {b};
  assert_code(iob_export_trace(out, one, 1), 0);
  assert_int_equal(fclose(out), 0);
  assert_non_null(strstr(text, "\"name\":\"op 0 hedges\""));
  assert_non_null(strstr(text, "\"name\":\"op 0 hedges 2\""));
  free(text);
  assert_code(iob_batch_free(b), 0);
}

/* An open batch on each loop style, no hedges of its own: the task with
 * its own policy is hedged (and won), the one without runs its slow
 * attempt alone. */
static void an_operations_own_hedge_replaces_the_batchs(void **state) {
  for (size_t s = 0; s < 3; s++) {
    tail k = {.slow_ms = 300, .fast_ms = 10};
    iob_hedge h = hedge_of(30, 2);
    iob_config c = tail_config(loop_styles[s], 0, &k, NULL);
    c.open = 1;
    test_loop t;
    test_loop_init(&t);
    iob_batch *b = test_loop_create(&t, &c, NULL);
    iob_task task = test_task(&tail_kind, &k, 0);
    task.hedge = &h;
    assert_int_equal(iob_batch_submit(b, &task), 0);
    task.hedge = NULL;
    assert_int_equal(iob_batch_submit(b, &task), 1);
    assert_code(iob_batch_close(b), 0);
    test_loop_start_created(&t, b);
    test_loop_run(&t);
    test_loop_close(&t);
    iob_outcome o;
    assert_code(iob_batch_outcome(b, 0, &o), 0);
    assert_int_equal(o.hedges, 1);
    assert_true(o.hedge_won);
    test_assert_ms("the hedged one", op_ms(b, 0), 37, 250, __FILE__, __LINE__);
    assert_code(iob_batch_outcome(b, 1, &o), 0);
    assert_int_equal(o.hedges, 0);
    test_assert_ms("the other", op_ms(b, 1), 290, 1000, __FILE__, __LINE__);
    assert_int_equal(atomic_load(&k.started), 3);
    assert_code(iob_batch_free(b), 0);
  }
}

/* A task's own hedge that cannot run is refused, and nothing is taken:
 * on a thread style, for a kind without start(), past the timeout, or a
 * policy out of range. */
static void an_operations_own_hedge_is_checked(void **state) {
  tail k = {.fast_ms = 1};
  iob_hedge h = hedge_of(30, 2), bad = hedge_of(30, 1);
  const struct {
    const iob_style *style;
    const iob_kind *kind;
    const iob_hedge *hedge;
    uint64_t timeout_ms;
    int err;
  } cases[] = {
      {&iob_style_threads, &test_kind_flaky, &h, 0, IOB_ENOTSUP},
      {&iob_style_loop, &iob_kind_cpu, &h, 0, IOB_ENOTSUP},
      {&iob_style_loop, &tail_kind, &h, 30, IOB_ERANGE},
      {&iob_style_loop, &tail_kind, &bad, 0, IOB_ERANGE},
  };
  for (size_t n = 0; n < sizeof(cases) / sizeof(cases[0]); n++) {
    iob_config c = tail_config(cases[n].style, 0, &k, NULL);
    c.kind = cases[n].kind; /* (which the style can run) */
    c.open = 1;
    c.timeout_ms = cases[n].timeout_ms;
    iob_batch *b;
    assert_code(iob_batch_create(&b, &c), 0);
    iob_task task;
    iob_task_init(&task);
    task.kind = cases[n].kind;
    task.target = &k;
    task.hedge = cases[n].hedge;
    int err = iob_batch_submit(b, &task);
    if (err != cases[n].err)
      fail_msg("case %zu: %s, expected %s", n, iob_err_name(err),
               iob_err_name(cases[n].err));
    iob_progress pr;
    assert_code(iob_batch_progress(b, &pr), 0);
    assert_int_equal(pr.waiting + pr.in_flight + pr.done, 0);
    assert_code(iob_batch_free(b), 0);
  }
}

/* A cancel 100 ms in, or a timeout of 150 ms, stops every attempt of
 * every operation, in every loop style. */
static void a_cancel_or_a_timeout_stops_every_attempt(void **state) {
  for (size_t s = 0; s < 3; s++) {
    tail k = {.slow_ms = 2000, .fast_ms = 2000};
    iob_hedge h = hedge_of(20, 3);
    iob_config c = tail_config(loop_styles[s], 3, &k, &h);
    c.max_in_flight = 3; /* the sequential style runs one */
    iob_batch *b = run_cancelled_after(&c, 100);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    test_assert_ms("a cancelled batch", MS(r.elapsed_ns), 97, 800, __FILE__,
                   __LINE__);
    assert_int_equal(atomic_load(&k.stopped), atomic_load(&k.started));
    assert_code(iob_batch_records(b, NULL)[0].status, IOB_ECANCELED);
    assert_code(iob_batch_free(b), 0);

    tail m = {.slow_ms = 2000, .fast_ms = 2000};
    c = tail_config(loop_styles[s], 2, &m, &h);
    c.timeout_ms = 150;
    b = run_on_own_loop(&c, NULL);
    assert_code(iob_batch_records(b, NULL)[1].status, IOB_ETIMEDOUT);
    test_assert_ms("a timed-out operation", op_ms(b, 1), 147, 800, __FILE__,
                   __LINE__);
    assert_int_equal(atomic_load(&m.stopped), atomic_load(&m.started));
    assert_code(iob_batch_free(b), 0);
  }
}

/* A delay at the 90th percentile of the batch's times: 40 operations of
 * 20 ms teach it, then the first attempts of the last 20 take 600 ms and
 * are overtaken about 20 ms in, not at the fixed 400 ms. */
static void the_delay_may_be_a_percentile_of_the_batchs_times(void **state) {
  tail k = {.slow_ms = 600, .fast_ms = 20, .slow_from = 40};
  iob_hedge h = hedge_of(400, 2);
  h.percentile = 90;
  iob_config c = tail_config(&iob_style_loop, 60, &k, &h);
  c.max_in_flight = 5;
  iob_batch *b = run_on_own_loop(&c, NULL);
  for (uint32_t i = 40; i < 60; i++)
    test_assert_ms("an operation hedged at the p90", op_ms(b, i), 37, 300,
                   __FILE__, __LINE__);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.hedges_won, 20);
  assert_code(iob_batch_free(b), 0);
}

/* Every attempt failing fails the operation with the last one's words;
 * with a retry policy, it is hedged again on its retry. */
static void
failed_attempts_fail_the_operation_or_its_retry_hedges_again(void **state) {
  tail k = {.slow_ms = 100, .fast_ms = 10, .fails = true};
  iob_hedge h = hedge_of(30, 2);
  iob_config c = tail_config(&iob_style_loop, 1, &k, &h);
  iob_batch *b = run_on_own_loop(&c, NULL);
  iob_outcome o;
  assert_code(iob_batch_outcome(b, 0, &o), 0);
  assert_code(o.status, IOB_EIO);
  assert_string_equal(o.message, "the tail failed");
  assert_int_equal(o.hedges, 1);
  assert_code(iob_batch_free(b), 0);

  tail m = {.slow_ms = 100, .fast_ms = 10, .fails = true};
  iob_retry p;
  iob_retry_init(&p);
  p.attempts = 2;
  p.backoff_min_ms = p.backoff_max_ms = 1;
  c = tail_config(&iob_style_loop, 1, &m, &h);
  c.retry = &p;
  b = run_on_own_loop(&c, NULL);
  assert_code(iob_batch_outcome(b, 0, &o), 0);
  assert_code(o.status, IOB_EIO);
  assert_int_equal(o.retries, 1);
  /* Its first try's slow attempt and hedge, then its retry's (both
   * fast: the second call and on), which ends before its delay. */
  assert_int_equal(atomic_load(&m.started), 3);
  assert_code(iob_batch_free(b), 0);
}

static void policies_that_cannot_be_met_are_refused(void **state) {
  tail k = {.fast_ms = 1};
  iob_batch *b = (iob_batch *)&k;
  iob_hedge h = hedge_of(10, 1);
  iob_config c = tail_config(&iob_style_loop, 1, &k, &h);
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  assert_null(b);
  h = hedge_of(10, IOB_HEDGE_MAX + 1);
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  double percentiles[] = {100, -1, NAN};
  for (size_t j = 0; j < 3; j++) {
    h = hedge_of(10, 2);
    h.percentile = percentiles[j];
    assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  }
  h = hedge_of(50, 2);
  c.timeout_ms = 50; /* a hedge could never start */
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  c.timeout_ms = 0;
  c.style = &iob_style_threads; /* one attempt a thread: none beside */
  assert_code(iob_batch_create(&b, &c), IOB_ENOTSUP);
  c.style = &iob_style_loop;
  c.kind = &iob_kind_cpu; /* no start(): runs on the loop, blocking */
  assert_code(iob_batch_create(&b, &c), IOB_ENOTSUP);
  assert_code(iob_hedge_check(NULL), IOB_EINVAL);
  iob_hedge_init(NULL);
  iob_hedge ok;
  iob_hedge_init(&ok);
  assert_code(iob_hedge_check(&ok), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_slow_attempt_is_overtaken_by_a_hedge),
      cmocka_unit_test(both_attempts_of_a_hedged_operation_are_listed),
      cmocka_unit_test(a_fast_attempt_starts_no_hedge),
      cmocka_unit_test(attempts_at_once_are_bounded),
      cmocka_unit_test(an_operations_own_hedge_replaces_the_batchs),
      cmocka_unit_test(an_operations_own_hedge_is_checked),
      cmocka_unit_test(a_cancel_or_a_timeout_stops_every_attempt),
      cmocka_unit_test(the_delay_may_be_a_percentile_of_the_batchs_times),
      cmocka_unit_test(
          failed_attempts_fail_the_operation_or_its_retry_hedges_again),
      cmocka_unit_test(policies_that_cannot_be_met_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
