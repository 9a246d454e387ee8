/* Retries (iob_retry): an operation whose attempt fails runs again, in
 * every style, up to its attempts, after a backoff between its bounds or
 * the delay its classifier asks; a cancel, a timeout or the batch's
 * deadline ends a backoff; a budget bounds the retries to a share of the
 * operations; an operation's own policy replaces its batch's; policies
 * that cannot mean anything are refused. Every loop closes
 * (uv_loop_close() == 0). */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static iob_config flaky_config(const iob_style *style, uint32_t count,
                               test_flaky *f, const iob_retry *retry) {
  iob_config c = config_of(style, count, 2);
  c.kind = &test_kind_flaky;
  c.target = f;
  c.retry = retry;
  return c;
}

static iob_retry policy(uint32_t attempts, uint32_t min_ms, uint32_t max_ms) {
  iob_retry p;
  iob_retry_init(&p);
  p.attempts = attempts;
  p.backoff_min_ms = min_ms;
  p.backoff_max_ms = max_ms;
  return p;
}

/* Operation i of b ended with `status`: else say what it ended with. */
static void status_is(const iob_batch *b, uint32_t i, int status) {
  int got = iob_batch_records(b, NULL)[i].status;
  if (got != status)
    fail_msg("operation %u: %s, expected %s", i, iob_err_name(got),
             iob_err_name(status));
}

static iob_outcome outcome_of(const iob_batch *b, uint32_t i) {
  iob_outcome o;
  assert_code(iob_batch_outcome(b, i, &o), 0);
  return o;
}

/* Two failures, three attempts: every operation succeeds on its third,
 * in every style, and the report and outcomes count two retries each. */
static void
an_operation_that_fails_twice_succeeds_on_its_third_attempt(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    test_flaky f = {.fails = 2, .status = IOB_EIO};
    iob_retry p = policy(3, 5, 10);
    iob_config c = flaky_config(style, 4, &f, &p);
    test_counts counts;
    iob_batch *b = run_on_own_loop(&c, &counts);
    if (counts.failed != 0)
      fail_msg("%s: %u failed", iob_style_name(style), counts.failed);
    for (uint32_t i = 0; i < 4; i++) {
      iob_outcome o = outcome_of(b, i);
      assert_int_equal(o.retries, 2);
      assert_null(o.message); /* the last attempt's: it said nothing */
      assert_int_equal(o.value, 0);
    }
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    assert_int_equal(r.retries, 8);
    assert_int_equal(atomic_load(&f.attempts), 12);
    assert_code(iob_batch_free(b), 0);
  }
}

/* Two failures, three attempts, 20 ms apart: each operation lists its
 * three attempts in order, in every style, the failures first, each
 * backoff between them, the last one ending with the operation. An
 * operation that ran once lists none. */
static void each_attempt_and_each_backoff_is_listed(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    test_flaky f = {.fails = 2, .status = IOB_EIO};
    iob_retry p = policy(3, 20, 20);
    iob_config c = flaky_config(style, 3, &f, &p);
    iob_batch *b = run_on_own_loop(&c, NULL);
    const iob_record *rec = iob_batch_records(b, NULL);
    for (uint32_t i = 0; i < 3; i++) {
      const iob_attempt *a;
      uint32_t n;
      assert_code(iob_batch_attempts(b, i, &a, &n), 0);
      if (n != 3)
        fail_msg("%s: operation %u lists %u attempts", iob_style_name(style), i,
                 n);
      assert_code(a[0].status, IOB_EIO);
      assert_code(a[1].status, IOB_EIO);
      assert_int_equal(a[2].status, 0);
      assert_cmp(a[0].started_ns, >=, rec[i].started_ns);
      for (uint32_t j = 0; j < 3; j++) {
        assert_int_equal(a[j].hedge, 0);
        assert_cmp(a[j].finished_ns, >=, a[j].started_ns);
      }
      for (uint32_t j = 1; j < 3; j++)
        test_assert_ms("a backoff", MS(a[j].started_ns - a[j - 1].finished_ns),
                       19, 400, __FILE__, __LINE__);
      assert_cmp(a[2].finished_ns, ==, rec[i].finished_ns);
    }
    assert_code(iob_batch_free(b), 0);

    test_flaky once = {.fails = 0};
    c = flaky_config(style, 2, &once, &p);
    b = run_on_own_loop(&c, NULL);
    const iob_attempt *a = (const iob_attempt *)&a;
    uint32_t n = 1;
    assert_code(iob_batch_attempts(b, 1, &a, &n), 0);
    assert_null(a);
    assert_int_equal(n, 0);
    assert_code(iob_batch_attempts(b, 2, &a, &n), IOB_EINVAL);
    assert_code(iob_batch_attempts(b, 0, NULL, &n), IOB_EINVAL);
    assert_code(iob_batch_attempts(b, 0, &a, NULL), IOB_EINVAL);
    assert_code(iob_batch_attempts(NULL, 0, &a, &n), IOB_EINVAL);
    assert_code(iob_batch_free(b), 0);
  }
}

/* Ten failures, three attempts: the operation fails with its last
 * attempt's status and words. */
static void
attempts_bound_the_retries_and_the_last_failure_stays(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    test_flaky f = {.fails = 10, .status = UV_ECONNREFUSED};
    iob_retry p = policy(3, 1, 2);
    iob_config c = flaky_config(style, 2, &f, &p);
    iob_batch *b = run_on_own_loop(&c, NULL);
    for (uint32_t i = 0; i < 2; i++) {
      iob_outcome o = outcome_of(b, i);
      status_is(b, i, UV_ECONNREFUSED);
      assert_int_equal(o.retries, 2);
      assert_string_equal(o.message, "attempt 2 failed");
      assert_int_equal(o.value, 102);
    }
    assert_int_equal(atomic_load(&f.attempts), 6);
    assert_code(iob_batch_free(b), 0);
  }
}

/* A failure the classifier does not retry (bad input) runs once; no
 * policy, once. */
static void a_failure_that_is_not_transient_runs_once(void **state) {
  test_flaky f = {.fails = 5, .status = IOB_EINVAL};
  iob_retry p = policy(5, 1, 1);
  iob_config c = flaky_config(&iob_style_loop, 3, &f, &p);
  iob_batch *b = run_on_own_loop(&c, NULL);
  assert_int_equal(atomic_load(&f.attempts), 3);
  assert_int_equal(outcome_of(b, 0).retries, 0);
  assert_code(iob_batch_free(b), 0);

  test_flaky g = {.fails = 5, .status = IOB_EIO};
  c = flaky_config(&iob_style_threads, 3, &g, NULL);
  b = run_on_own_loop(&c, NULL);
  assert_int_equal(atomic_load(&g.attempts), 3);
  assert_code(iob_batch_free(b), 0);
}

/* Backoffs of 20 ms, then 20..40, then 20..40 (doubled from the least,
 * capped by the most): four attempts take 60..100 ms of backoff. */
static void the_backoff_is_drawn_between_its_bounds(void **state) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (size_t k = 0; k < 2; k++) {
    test_flaky f = {.fails = 3, .status = IOB_EIO};
    iob_retry p = policy(4, 20, 40);
    iob_config c = flaky_config(styles[k], 1, &f, &p);
    c.duration_ms = 0;
    iob_batch *b = run_on_own_loop(&c, NULL);
    const iob_record *r = iob_batch_records(b, NULL);
    assert_int_equal(r[0].status, 0);
    test_assert_ms("three backoffs", MS(r[0].finished_ns - r[0].started_ns), 59,
                   400, __FILE__, __LINE__);
    assert_code(iob_batch_free(b), 0);
  }
}

/* Asks for 80 ms (a server's Retry-After), or for no retry. */
static int64_t push_back(const iob_outcome *o, void *arg) {
  (void)arg;
  return o->status == IOB_EIO ? 80 : IOB_RETRY_NO;
}

/* The classifier's delay replaces the backoff; its "no" is final. */
static void a_classifier_says_what_is_retried_and_when(void **state) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_pool};
  for (size_t k = 0; k < 2; k++) {
    test_flaky f = {.fails = 1, .status = IOB_EIO};
    iob_retry p = policy(2, 1, 1);
    p.classify = push_back;
    iob_config c = flaky_config(styles[k], 1, &f, &p);
    iob_batch *b = run_on_own_loop(&c, NULL);
    const iob_record *r = iob_batch_records(b, NULL);
    assert_int_equal(r[0].status, 0);
    test_assert_ms("the pushback", MS(r[0].finished_ns - r[0].started_ns), 80,
                   600, __FILE__, __LINE__);
    assert_code(iob_batch_free(b), 0);

    test_flaky g = {.fails = 1, .status = UV_ECONNRESET};
    c = flaky_config(styles[k], 1, &g, &p);
    b = run_on_own_loop(&c, NULL);
    status_is(b, 0, UV_ECONNRESET);
    assert_int_equal(atomic_load(&g.attempts), 1);
    assert_code(iob_batch_free(b), 0);
  }
}

/* A second's backoff, cancelled 50 ms in: every operation settles then,
 * cancelled, in every style. */
static void a_cancel_ends_a_backoff_at_once(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    test_flaky f = {.fails = 5, .status = IOB_EIO};
    iob_retry p = policy(5, 1000, 1000);
    iob_config c = flaky_config(style, 3, &f, &p);
    iob_batch *b = run_cancelled_after(&c, 50);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    if (MS(r.elapsed_ns) > 600)
      fail_msg("%s: ended %.1f ms in", iob_style_name(style), MS(r.elapsed_ns));
    for (uint32_t i = 0; i < 3; i++)
      status_is(b, i, IOB_ECANCELED);
    assert_code(iob_batch_free(b), 0);
  }
}

/* Cancelled in its second backoff (or so: the machine may be slow), an
 * operation lists the attempts it made, each once, none overlapping. */
static void a_cancel_in_a_backoff_lists_each_attempt_once(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    test_flaky f = {.fails = 5, .status = IOB_EIO};
    iob_retry p = policy(5, 30, 30);
    iob_config c = flaky_config(style, 2, &f, &p);
    iob_batch *b = run_cancelled_after(&c, 50);
    for (uint32_t i = 0; i < 2; i++) {
      const iob_attempt *a;
      uint32_t n;
      assert_code(iob_batch_attempts(b, i, &a, &n), 0);
      for (uint32_t j = 0; j < n; j++) {
        if (j + 1 < n && a[j].status != IOB_EIO)
          fail_msg("%s: attempt %u of %u: %s", iob_style_name(style), j, n,
                   iob_err_name(a[j].status));
        if (j > 0 && a[j].started_ns < a[j - 1].finished_ns)
          fail_msg("%s: attempts %u and %u overlap", iob_style_name(style),
                   j - 1, j);
      }
    }
    assert_code(iob_batch_free(b), 0);
  }
}

static void cancel_the_first(test_loop *t, void *arg) {
  (void)t;
  assert_code(iob_batch_cancel_op(arg, 0), 0);
}

/* One operation cancelled alone while it backs off settles then; the
 * other retries on. */
static void an_operation_cancelled_alone_in_its_backoff_settles(void **state) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads,
                               &iob_style_loops};
  for (size_t k = 0; k < 3; k++) {
    test_flaky f = {.fails = 1, .status = IOB_EIO};
    iob_retry p = policy(2, 300, 300);
    iob_config c = flaky_config(styles[k], 2, &f, &p);
    test_loop t;
    test_loop_init(&t);
    iob_batch *b = test_loop_start(&t, &c, NULL);
    test_loop_at(&t, 60, cancel_the_first, b);
    test_loop_run(&t);
    test_loop_close(&t);
    const iob_record *r = iob_batch_records(b, NULL);
    status_is(b, 0, IOB_ECANCELED);
    test_assert_ms("the cancelled one", MS(r[0].finished_ns), 55, 250, __FILE__,
                   __LINE__);
    assert_int_equal(r[1].status, 0);
    assert_int_equal(outcome_of(b, 1).retries, 1);
    assert_code(iob_batch_free(b), 0);
  }
}

/* No retry begins whose backoff would end past the batch's deadline or
 * the operation's timeout: the failure stands, at once. */
static void no_retry_begins_past_the_deadline_or_the_timeout(void **state) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_workers};
  for (size_t k = 0; k < 2; k++) {
    test_flaky f = {.fails = 3, .status = IOB_EIO};
    iob_retry p = policy(4, 200, 200);
    iob_config c = flaky_config(styles[k], 2, &f, &p);
    c.deadline_ms = 150;
    iob_batch *b = run_on_own_loop(&c, NULL);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    assert_int_equal(r.status, 0); /* ended before its deadline */
    assert_int_equal(r.retries, 0);
    status_is(b, 0, IOB_EIO);
    test_assert_ms("the batch", MS(r.elapsed_ns), 0, 120, __FILE__, __LINE__);
    assert_code(iob_batch_free(b), 0);

    test_flaky g = {.fails = 3, .status = IOB_EIO};
    p = policy(4, 30, 30);
    c = flaky_config(styles[k], 1, &g, &p);
    c.timeout_ms = 50; /* room for one retry, not two */
    b = run_on_own_loop(&c, NULL);
    assert_int_equal(outcome_of(b, 0).retries, 1);
    status_is(b, 0, IOB_EIO);
    assert_code(iob_batch_free(b), 0);
  }
}

/* "refusing": its first attempt fails inside start(); the later ones
 * take 3 s (stop() ends them at once, cancelled). */
static int succeeds(iob_op *op) {
  (void)op;
  return 0;
}

static int refusing_start(iob_op *op) {
  if (op->attempt == 0)
    return IOB_EIO;
  return test_timer_start(op->state, op, 3000, succeeds);
}

static void refusing_stop(iob_op *op) {
  test_timer_end(op->state, IOB_ECANCELED);
}

static const iob_kind refusing_kind = {.name = "refusing",
                                       .op_size = sizeof(test_timer),
                                       .start = refusing_start,
                                       .stop = refusing_stop};

/* An attempt that fails inside start() keeps the operation's timeout:
 * its retry, which would take 3 s, is stopped at 200 ms, in every loop
 * style. */
static void the_timeout_holds_after_a_failure_inside_start(void **state) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_sequential,
                               &iob_style_loops};
  for (size_t k = 0; k < 3; k++) {
    iob_retry p = policy(3, 1, 1);
    iob_config c = config_of(styles[k], 1, 0);
    c.kind = &refusing_kind;
    c.retry = &p;
    c.timeout_ms = 200;
    iob_batch *b = run_on_own_loop(&c, NULL);
    status_is(b, 0, IOB_ETIMEDOUT);
    const iob_record *r = iob_batch_records(b, NULL);
    test_assert_ms("the timed-out retry",
                   MS(r[0].finished_ns - r[0].started_ns), 199, 1000, __FILE__,
                   __LINE__);
    assert_code(iob_batch_free(b), 0);
  }
}

/* Asks for more than any timer takes (a server's Retry-After of
 * centuries): that is no retry, not a delay that wraps round to none. */
static int64_t centuries(const iob_outcome *o, void *arg) {
  (void)o;
  (void)arg;
  return INT64_C(18446744073710);
}

static void a_delay_past_any_timer_is_no_retry(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    test_flaky f = {.fails = 1, .status = IOB_EIO};
    iob_retry p = policy(2, 1, 1);
    p.classify = centuries;
    iob_config c = flaky_config(style, 1, &f, &p);
    iob_batch *b = run_on_own_loop(&c, NULL);
    status_is(b, 0, IOB_EIO);
    assert_int_equal(atomic_load(&f.attempts), 1);
    assert_code(iob_batch_free(b), 0);
  }
}

/* "hanging": its attempts below `hang` wait 10 s, unless stopped (start:
 * its stop(); run: polling iob_op_stopping()); the later ones 5 ms. */
typedef struct hanging {
  uint32_t hang;
} hanging;

static int hanging_start(iob_op *op) {
  const hanging *h = op->target;
  return test_timer_start(op->state, op, op->attempt < h->hang ? 10000 : 5,
                          succeeds);
}

static void hanging_stop(iob_op *op) {
  test_timer_end(op->state, iob_op_stopping(op));
}

static int hanging_run(iob_op *op) {
  const hanging *h = op->target;
  for (uint32_t ms = 0; ms < (op->attempt < h->hang ? 10000u : 5u); ms++) {
    int stop = iob_op_stopping(op);
    if (stop != 0)
      return stop;
    uv_sleep(1);
  }
  return 0;
}

static const iob_kind hanging_kind = {.name = "hanging",
                                      .op_size = sizeof(test_timer),
                                      .start = hanging_start,
                                      .run = hanging_run,
                                      .stop = hanging_stop};

/* Attempts that hang, cut at 100 ms each: the third passes, about 200 ms
 * in, in every style; with the operation's timeout at 250 ms, it ends
 * then, timed out for good. */
static void an_attempts_own_timeout_retries_a_hung_attempt(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    hanging h = {.hang = 2};
    iob_retry p = policy(3, 1, 1);
    p.attempt_timeout_ms = 100;
    iob_config c = config_of(style, 2, 0);
    c.kind = &hanging_kind;
    c.target = &h;
    c.retry = &p;
    iob_batch *b = run_on_own_loop(&c, NULL);
    const iob_record *r = iob_batch_records(b, NULL);
    status_is(b, 0, 0);
    assert_int_equal(outcome_of(b, 0).retries, 2);
    test_assert_ms(iob_style_name(style),
                   MS(r[0].finished_ns - r[0].started_ns), 200, 2000, __FILE__,
                   __LINE__);
    assert_code(iob_batch_free(b), 0);

    hanging forever = {.hang = 100};
    p = policy(10, 1, 1);
    p.attempt_timeout_ms = 100;
    c.target = &forever;
    c.timeout_ms = 250;
    b = run_on_own_loop(&c, NULL);
    r = iob_batch_records(b, NULL);
    status_is(b, 1, IOB_ETIMEDOUT);
    assert_int_equal(outcome_of(b, 1).retries, 2);
    test_assert_ms(iob_style_name(style),
                   MS(r[1].finished_ns - r[1].started_ns), 249, 2000, __FILE__,
                   __LINE__);
    assert_code(iob_batch_free(b), 0);
  }
}

/* An attempt stopped by its own timeout, then a cancel in the backoff
 * after it: the operation settles then, cancelled, not retried. */
static void a_cancel_after_an_attempts_timeout_ends_its_backoff(void **state) {
  hanging h = {.hang = 100};
  iob_retry p = policy(10, 200, 200);
  p.attempt_timeout_ms = 50;
  iob_config c = config_of(&iob_style_loop, 1, 0);
  c.kind = &hanging_kind;
  c.target = &h;
  c.retry = &p;
  iob_batch *b = run_cancelled_after(&c, 120); /* in the first backoff */
  status_is(b, 0, IOB_ECANCELED);
  const iob_record *r = iob_batch_records(b, NULL);
  test_assert_ms("the cancelled operation", MS(r[0].finished_ns), 119, 600,
                 __FILE__, __LINE__);
  assert_code(iob_batch_free(b), 0);
}

/* A budget of a tenth, no floor: 100 operations that always fail make
 * at most about ten retries between them, and the budget says how many
 * it refused. Two batches share it. */
static void a_budget_bounds_the_retries_to_its_share(void **state) {
  iob_budget *budget;
  assert_code(iob_budget_create(&budget, 0.1, 0, 0), 0);
  test_flaky f = {.fails = 1000, .status = IOB_EIO};
  iob_retry p = policy(5, 1, 1);
  p.budget = budget;
  iob_config c = flaky_config(&iob_style_loop, 100, &f, &p);
  c.duration_ms = 1;
  iob_config d = flaky_config(&iob_style_threads, 100, &f, &p);
  d.duration_ms = 1;
  d.max_in_flight = 20;
  test_loop t;
  test_loop_init(&t);
  iob_batch *a = test_loop_start(&t, &c, NULL);
  iob_batch *b = test_loop_start(&t, &d, NULL);
  test_loop_run(&t);
  test_loop_close(&t);
  iob_report ra, rb;
  assert_code(iob_batch_report(a, &ra), 0);
  assert_code(iob_batch_report(b, &rb), 0);
  uint32_t retries = ra.retries + rb.retries;
  if (retries > 20 || retries < 1)
    fail_msg("%u retries for 200 operations under a tenth", retries);
  assert_cmp(iob_budget_refused(budget), >=, 200 - retries);
  assert_int_equal(atomic_load(&f.attempts), 200 + retries);
  assert_code(iob_batch_free(a), 0);
  assert_code(iob_batch_free(b), 0);
  iob_budget_free(budget);
}

/* An open batch: a task's own policy replaces the batch's whole. */
static void an_operations_own_policy_replaces_the_batchs(void **state) {
  test_flaky f = {.fails = 2, .status = IOB_EIO};
  iob_retry once = policy(1, 1, 1), thrice = policy(3, 1, 2);
  iob_config c = flaky_config(&iob_style_loop, 0, &f, &once);
  c.open = 1;
  test_loop t;
  test_loop_init(&t);
  iob_batch *b = test_loop_create(&t, &c, NULL);
  iob_task task = test_task(&test_kind_flaky, &f, 1);
  assert_int_equal(iob_batch_submit(b, &task), 0); /* the batch's: once */
  task.retry = &thrice;
  assert_int_equal(iob_batch_submit(b, &task), 1);
  assert_code(iob_batch_close(b), 0);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  test_loop_close(&t);
  status_is(b, 0, IOB_EIO);
  assert_int_equal(outcome_of(b, 0).retries, 0);
  assert_int_equal(iob_batch_records(b, NULL)[1].status, 0);
  assert_int_equal(outcome_of(b, 1).retries, 2);
  assert_code(iob_batch_free(b), 0);
}

/* Policies that cannot mean anything are refused, and nothing is made. */
static void policies_that_cannot_be_met_are_refused(void **state) {
  test_flaky f = {.fails = 0};
  iob_retry p = policy(0, 1, 1);
  iob_config c = flaky_config(&iob_style_loop, 1, &f, &p);
  iob_batch *b = (iob_batch *)&f;
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  assert_null(b);
  p = policy(IOB_RETRY_ATTEMPTS_MAX + 1, 1, 1);
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  p = policy(2, 50, 10); /* the most below the least */
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  assert_code(iob_retry_check(NULL), IOB_EINVAL);
  iob_retry_init(NULL);
  iob_retry ok;
  iob_retry_init(&ok);
  assert_code(iob_retry_check(&ok), 0);
  assert_int_equal(ok.attempts, 3);

  /* An open batch refuses a task's bad policy, and takes nothing. */
  c.retry = NULL;
  c.open = 1;
  c.count = 0;
  assert_code(iob_batch_create(&b, &c), 0);
  iob_task task;
  iob_task_init(&task);
  task.kind = &test_kind_flaky;
  task.target = &f;
  p = policy(0, 1, 1);
  task.retry = &p;
  assert_code(iob_batch_submit(b, &task), IOB_ERANGE);
  iob_progress pr;
  assert_code(iob_batch_progress(b, &pr), 0);
  assert_int_equal(pr.waiting + pr.in_flight + pr.done, 0);
  assert_code(iob_batch_free(b), 0);

  iob_budget *g = (iob_budget *)&f;
  assert_code(iob_budget_create(NULL, 0.2, 1, 0), IOB_EINVAL);
  assert_code(iob_budget_create(&g, NAN, 1, 0), IOB_ERANGE);
  assert_null(g);
  assert_code(iob_budget_create(&g, -1, 1, 0), IOB_ERANGE);
  assert_code(iob_budget_create(&g, 0, 0, 0), IOB_ERANGE);
  assert_code(iob_budget_create(&g, 0.2, 1, 999), IOB_ERANGE);
  assert_code(iob_budget_create(&g, 0.2, 1, IOB_BUDGET_WINDOW_MAX_MS + 1),
              IOB_ERANGE);
  iob_budget_free(NULL);
  assert_int_equal(iob_budget_refused(NULL), 0);
}

/* The default judgement: what the other side may answer next time. */
static void transient_failures_are_told_from_final_ones(void **state) {
  int yes[] = {IOB_ETIMEDOUT, IOB_EIO,  UV_ECONNREFUSED,
               UV_ECONNRESET, UV_EPIPE, UV_EAI_AGAIN};
  int no[] = {0, IOB_ECANCELED, IOB_EINVAL, IOB_ENOMEM, IOB_ENOTSUP};
  for (size_t k = 0; k < sizeof(yes) / sizeof(*yes); k++) {
    iob_outcome o = {.status = yes[k]};
    assert_int_equal(iob_retry_transient(&o), 0);
  }
  for (size_t k = 0; k < sizeof(no) / sizeof(*no); k++) {
    iob_outcome o = {.status = no[k]};
    assert_int_equal(iob_retry_transient(&o), IOB_RETRY_NO);
  }
  assert_int_equal(iob_retry_transient(NULL), IOB_RETRY_NO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          an_operation_that_fails_twice_succeeds_on_its_third_attempt),
      cmocka_unit_test(attempts_bound_the_retries_and_the_last_failure_stays),
      cmocka_unit_test(each_attempt_and_each_backoff_is_listed),
      cmocka_unit_test(a_failure_that_is_not_transient_runs_once),
      cmocka_unit_test(the_backoff_is_drawn_between_its_bounds),
      cmocka_unit_test(a_classifier_says_what_is_retried_and_when),
      cmocka_unit_test(a_cancel_ends_a_backoff_at_once),
      cmocka_unit_test(a_cancel_in_a_backoff_lists_each_attempt_once),
      cmocka_unit_test(an_operation_cancelled_alone_in_its_backoff_settles),
      cmocka_unit_test(no_retry_begins_past_the_deadline_or_the_timeout),
      cmocka_unit_test(the_timeout_holds_after_a_failure_inside_start),
      cmocka_unit_test(a_delay_past_any_timer_is_no_retry),
      cmocka_unit_test(an_attempts_own_timeout_retries_a_hung_attempt),
      cmocka_unit_test(a_cancel_after_an_attempts_timeout_ends_its_backoff),
      cmocka_unit_test(a_budget_bounds_the_retries_to_its_share),
      cmocka_unit_test(an_operations_own_policy_replaces_the_batchs),
      cmocka_unit_test(policies_that_cannot_be_met_are_refused),
      cmocka_unit_test(transient_failures_are_told_from_final_ones),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
