/* Kinds that wrap kinds: an operation that runs operations of another
 * kind inside it (iob_op_start_inner(), iob_op_run_inner()), as a retry
 * or a rate limit will. The inner kind sees an iob_op as in a batch; what
 * it hands back is the outer operation's; a stop reaches it. */
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- an inner kind: a timer that fails while its target says so ------------ */

typedef struct flaky_target {
  int fails_left; /* attempts that fail with IOB_EIO first */
  int starts;
} flaky_target;

typedef struct flaky_op {
  uv_timer_t timer;
  iob_op *op;
  int status;
} flaky_op;

static void flaky_closed(uv_handle_t *h) {
  flaky_op *f = h->data;
  iob_op_done(f->op, f->status);
}

static void flaky_end(flaky_op *f, int status) {
  if (uv_is_closing((uv_handle_t *)&f->timer))
    return;
  f->status = status;
  uv_close((uv_handle_t *)&f->timer, flaky_closed);
}

static void flaky_fired(uv_timer_t *t) {
  flaky_op *f = t->data;
  flaky_target *target = (flaky_target *)(uintptr_t)f->op->target;
  bool fail = target->fails_left > 0;
  target->fails_left -= fail;
  iob_op_set_message(f->op, fail ? "failed this time" : "answered");
  flaky_end(f, fail ? IOB_EIO : 0);
}

static int flaky_start(iob_op *op) {
  flaky_op *f = op->state;
  flaky_target *target = (flaky_target *)(uintptr_t)op->target;
  target->starts++;
  f->op = op;
  uv_timer_init(iob_batch_loop(op->batch), &f->timer);
  f->timer.data = f;
  return uv_timer_start(&f->timer, flaky_fired, op->duration_ms, 0);
}

static void flaky_stop(iob_op *op) { flaky_end(op->state, 0); }

static const iob_kind flaky = {
    .name = "flaky",
    .op_size = sizeof(flaky_op),
    .start = flaky_start,
    .stop = flaky_stop,
};

/* Settles inside its start(). */
static int instant_start(iob_op *op) {
  iob_op_set_value(op, 7);
  iob_op_done(op, 0);
  return 0;
}

static const iob_kind instant = {.name = "instant", .start = instant_start};

/* ---- the wrapper: up to three attempts -------------------------------------- */

typedef struct retry_op {
  iob_op *inner;
  uint64_t attempts;
} retry_op;

static int attempt(iob_op *op);

static void attempted(iob_op *op, int status, void *arg) {
  (void)arg;
  retry_op *r = op->state;
  r->inner = NULL;
  if (status != 0 && r->attempts < 3 && iob_op_stopping(op) == 0) {
    int err = attempt(op);
    if (err == 0)
      return;
    status = err;
  }
  iob_op_set_value(op, r->attempts);
  iob_op_done(op, status);
}

static int attempt(iob_op *op) {
  retry_op *r = op->state;
  r->attempts++;
  return iob_op_start_inner(op, op->input, attempted, NULL, &r->inner);
}

static void retry_stop(iob_op *op) {
  retry_op *r = op->state;
  if (r->inner != NULL)
    assert_code(iob_op_stop_inner(r->inner), 0);
}

/* Its input is the task to retry (borrowed). */
static const iob_kind retry = {
    .name = "retry",
    .flags = IOB_KIND_INPUT,
    .op_size = sizeof(retry_op),
    .start = attempt,
    .stop = retry_stop,
};

/* The blocking form: run() runs the inner task, once. */
static int once_run(iob_op *op) { return iob_op_run_inner(op, op->input); }

static const iob_kind once = {
    .name = "once", .flags = IOB_KIND_INPUT, .run = once_run};

/* ---- helpers ------------------------------------------------------------- */

static iob_task task_of(const iob_kind *kind, const void *target, uint32_t ms,
                        const void *input) {
  iob_task t;
  iob_task_init(&t);
  t.kind = kind;
  t.target = target;
  t.duration_ms = ms;
  t.input = input;
  return t;
}

/* Run the tasks in an open batch of `style` (timeout_ms, if not 0) on a
 * loop of the test's own; returns the finished batch. */
static iob_batch *run_tasks(const iob_style *style, uint64_t timeout_ms,
                            const iob_task *tasks, int n,
                            uint64_t cancel_after_ms) {
  test_loop t;
  test_loop_init(&t);
  iob_config c;
  iob_config_init(&c);
  c.style = style;
  c.open = 1;
  c.timeout_ms = timeout_ms;
  iob_batch *b = test_loop_create(&t, &c, NULL);
  for (int k = 0; k < n; k++)
    assert_int_equal(iob_batch_submit(b, &tasks[k]), k);
  if (cancel_after_ms == 0)
    iob_batch_close(b);
  test_loop_start_created(&t, b);
  if (cancel_after_ms != 0)
    test_loop_cancel_after(&t, b, cancel_after_ms);
  test_loop_run(&t);
  test_loop_close(&t);
  return b;
}

static iob_outcome outcome(const iob_batch *b, uint32_t i) {
  iob_outcome o;
  assert_code(iob_batch_outcome(b, i, &o), 0);
  return o;
}

/* ---- the tests ------------------------------------------------------------ */

static void a_wrapper_retries_its_inner_kind_until_it_answers(void **state) {
  (void)state;
  flaky_target twice = {.fails_left = 2}, always = {.fails_left = 100};
  iob_task inner_ok = task_of(&flaky, &twice, 5, NULL);
  iob_task inner_bad = task_of(&flaky, &always, 5, NULL);
  iob_task tasks[] = {task_of(&retry, NULL, 0, &inner_ok),
                      task_of(&retry, NULL, 0, &inner_bad)};
  iob_batch *b = run_tasks(NULL, 0, tasks, 2, 0);
  iob_outcome ok = outcome(b, 0), bad = outcome(b, 1);
  assert_int_equal(ok.status, 0);
  assert_int_equal(ok.value, 3); /* two failures, then the answer */
  assert_string_equal(ok.message, "answered"); /* the inner's, kept */
  assert_int_equal(twice.starts, 3);
  assert_code(bad.status, IOB_EIO);
  assert_int_equal(bad.value, 3);
  assert_string_equal(bad.message, "failed this time");
  assert_int_equal(always.starts, 3);
  assert_ptr_equal(ok.kind, &retry);
  iob_batch_free(b);
}

static void a_cancel_reaches_the_inner_operation(void **state) {
  (void)state;
  flaky_target slow = {0};
  iob_task inner = task_of(&flaky, &slow, 10000, NULL);
  iob_task tasks[] = {task_of(&retry, NULL, 0, &inner)};
  uint64_t t0 = uv_hrtime();
  iob_batch *b = run_tasks(NULL, 0, tasks, 1, 50);
  assert_ms_below(MS(uv_hrtime() - t0), 2000);
  iob_outcome o = outcome(b, 0);
  assert_code(o.status, IOB_ECANCELED);
  assert_int_equal(o.value, 1); /* stopped: not tried again */
  assert_int_equal(slow.starts, 1);
  iob_batch_free(b);
}

static void a_timeout_reaches_the_inner_operation_too(void **state) {
  (void)state;
  flaky_target slow = {0};
  iob_task inner = task_of(&flaky, &slow, 10000, NULL);
  iob_task tasks[] = {task_of(&retry, NULL, 0, &inner)};
  iob_batch *b = run_tasks(NULL, 50, tasks, 1, 0);
  assert_code(outcome(b, 0).status, IOB_ETIMEDOUT);
  iob_batch_free(b);
}

static void
an_inner_kind_that_settles_inside_start_is_heard_after_it(void **state) {
  (void)state;
  iob_task inner = task_of(&instant, NULL, 0, NULL);
  iob_task tasks[] = {task_of(&retry, NULL, 0, &inner)};
  iob_batch *b = run_tasks(NULL, 0, tasks, 1, 0);
  iob_outcome o = outcome(b, 0);
  assert_int_equal(o.status, 0);
  assert_int_equal(o.value, 1); /* the wrapper's count replaced the 7 */
  iob_batch_free(b);
}

static void a_blocking_wrapper_runs_its_inner_kind_on_threads(void **state) {
  (void)state;
  static const iob_mixed mixed = {.cpu_us = 1000};
  iob_task wait = task_of(&iob_kind_wait, NULL, 20, NULL);
  iob_task cpu = task_of(&iob_kind_mixed, &mixed, 5, NULL);
  iob_task slow = task_of(&iob_kind_wait, NULL, 5000, NULL);
  const iob_style *styles[] = {&iob_style_threads, &iob_style_pool,
                               &iob_style_loop};
  for (int k = 0; k < 3; k++) {
    iob_task tasks[] = {task_of(&once, NULL, 0, &wait),
                        task_of(&once, NULL, 0, &cpu),
                        task_of(&once, NULL, 0, &slow)};
    iob_batch *b = run_tasks(styles[k], 300, tasks, 3, 0);
    const iob_record *r = iob_batch_records(b, NULL);
    assert_int_equal(r[0].status, 0);
    assert_ms_at_least(MS(r[0].finished_ns - r[0].started_ns), 19);
    assert_int_equal(r[1].status, 0);
    assert_code(r[2].status, IOB_ETIMEDOUT); /* cut at the timeout */
    assert_ms_below(MS(r[2].finished_ns - r[2].started_ns), 2000);
    iob_batch_free(b);
  }
}

static void never_called(iob_op *outer, int status, void *arg) {
  (void)outer;
  (void)status;
  (void)arg;
  fail_msg("an inner operation refused at once was called back");
}

static void bad_inner_operations_are_refused_at_once(void **state) {
  (void)state;
  iob_op op = {0};
  iob_task t = task_of(&flaky, NULL, 1, NULL);
  assert_code(iob_op_start_inner(NULL, &t, NULL, NULL, NULL), IOB_EINVAL);
  assert_code(iob_op_start_inner(&op, NULL, NULL, NULL, NULL), IOB_EINVAL);
  assert_code(iob_op_start_inner(&op, &t, NULL, NULL, NULL),
              IOB_EINVAL); /* no callback */
  iob_task blocking = task_of(&iob_kind_cpu, NULL, 1, NULL);
  iob_op *inner = (iob_op *)&op;
  assert_code(iob_op_start_inner(&op, &blocking, never_called, NULL, &inner),
              IOB_ENOTSUP); /* no start() */
  assert_null(inner);
  iob_task none = task_of(NULL, NULL, 1, NULL);
  assert_code(iob_op_run_inner(&op, &none), IOB_EINVAL);
  assert_code(iob_op_run_inner(&op, &t), IOB_ENOTSUP); /* no run() */
  assert_code(iob_op_stop_inner(NULL), IOB_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_wrapper_retries_its_inner_kind_until_it_answers),
      cmocka_unit_test(a_cancel_reaches_the_inner_operation),
      cmocka_unit_test(a_timeout_reaches_the_inner_operation_too),
      cmocka_unit_test(
          an_inner_kind_that_settles_inside_start_is_heard_after_it),
      cmocka_unit_test(a_blocking_wrapper_runs_its_inner_kind_on_threads),
      cmocka_unit_test(bad_inner_operations_are_refused_at_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
