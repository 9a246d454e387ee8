/* Cancelling a batch, timeouts, fail-fast and per-operation callbacks, in
 * every style: the callback runs once, after everything settled, and
 * nothing leaks. Cancelling one operation: test-cancel-op.c. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* A batch on a loop of the test's own (which counts its callbacks and
 * proves it reported each operation once), cancelled from its operation
 * callback after `cancel_at` operations if that is not 0. */
typedef struct watch {
  test_loop t;
  iob_batch *batch;
  uint32_t cancel_at;
  uint32_t op_calls;
} watch;

static void on_op(iob_batch *batch, uint32_t index, const iob_record *rec) {
  watch *w = iob_batch_data(batch);
  w->op_calls++;
  assert_cmp(rec->started_ns, <=, rec->finished_ns);
  if (w->cancel_at != 0 && w->op_calls == w->cancel_at)
    assert_code(iob_batch_cancel(batch), 0);
}

/* Run `c` to its end, cancelling after `cancel_ms` if not 0; the caller
 * inspects the batch, then finish_watched() frees it and closes the
 * loop. */
static void start_watched(iob_config *c, watch *w, uint64_t cancel_ms) {
  test_loop_init(&w->t);
  c->data = w;
  c->on_op = on_op;
  w->batch = test_loop_start(&w->t, c, NULL);
  if (cancel_ms != 0)
    test_loop_cancel_after(&w->t, w->batch, cancel_ms);
  test_loop_run(&w->t);
  assert_int_equal(w->op_calls, c->count);
}

static const test_counts *counts_of(const watch *w) {
  return test_loop_counts(&w->t, w->batch);
}

static const iob_record *records_of(const watch *w) {
  return iob_batch_records(w->batch, NULL);
}

static iob_report finish_watched(watch *w) {
  iob_report r;
  assert_code(iob_batch_report(w->batch, &r), 0);
  assert_int_equal(r.status, counts_of(w)->batch_status);
  assert_int_equal(r.failed, counts_of(w)->failed);
  assert_code(iob_batch_cancel(w->batch), 0); /* finished: harmless */
  test_loop_close(&w->t);
  assert_code(iob_batch_free(w->batch), 0);
  return r;
}

static void cancel_mid_run_ends_waits_on_the_loop_at_once(void **state) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_sequential,
                               &iob_style_loops};
  for (int k = 0; k < 3; k++) {
    watch w = {0};
    iob_config c = config_of(styles[k], 12, 300);
    start_watched(&c, &w, 100);
    assert_code(counts_of(&w)->batch_status, IOB_ECANCELED);
    for (int i = 0; i < 12; i++)
      assert_code(records_of(&w)[i].status, IOB_ECANCELED);
    iob_report r = finish_watched(&w);
    /* At once: well before the 300 ms waits would end (valgrind took
     * 260 ms once on a loaded machine). */
    assert_ms_between(MS(r.elapsed_ns), 99, test_under_valgrind() ? 290 : 250);
    assert_int_equal(r.failed, 12);
  }
}

static void cancel_mid_run_takes_queued_jobs_off_the_pool(void **state) {
  unsigned int p = iob_pool_size();
  watch w = {0};
  iob_config c = config_of(&iob_style_pool, p + 6, 300);
  start_watched(&c, &w, 100);
  assert_code(counts_of(&w)->batch_status, IOB_ECANCELED);
  const iob_record *rec = records_of(&w);
  uint32_t ran = 0, cancelled = 0;
  for (uint32_t i = 0; i < p + 6; i++) {
    if (rec[i].status == 0) {
      ran++; /* a thread had it: it finished its 300 ms */
      assert_ms_at_least(MS(rec[i].finished_ns - rec[i].started_ns), 299);
    } else {
      assert_code(rec[i].status, IOB_ECANCELED);
      cancelled++;
    }
  }
  /* At most one job per pool thread ran (all of them, unless the pool
   * was slow to start, as under valgrind); the rest never did. */
  assert_cmp(ran, <=, p);
  assert_cmp(cancelled, >=, 6);
  assert_int_equal(ran + cancelled, p + 6);
  assert_int_equal(counts_of(&w)->cancelled, cancelled);
  finish_watched(&w);
}

static void cancel_mid_run_lets_running_threads_finish(void **state) {
  watch w = {0};
  iob_config c = config_of(&iob_style_threads, 12, 300);
  c.max_in_flight = 4;
  start_watched(&c, &w, 100);
  assert_code(counts_of(&w)->batch_status, IOB_ECANCELED);
  const iob_record *rec = records_of(&w);
  for (int i = 0; i < 4; i++) /* running: recorded as finished */
    assert_int_equal(rec[i].status, 0);
  for (int i = 4; i < 12; i++) /* never started */
    assert_code(rec[i].status, IOB_ECANCELED);
  iob_report r = finish_watched(&w);
  assert_ms_at_least(MS(r.elapsed_ns), 299);
}

static void cancel_before_start_settles_everything_when_started(void **s) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    watch w = {0};
    iob_config c = config_of(style, 5, 1000);
    c.data = &w;
    c.on_op = on_op;
    test_loop_init(&w.t);
    w.batch = test_loop_create(&w.t, &c, NULL);
    assert_code(iob_batch_cancel(w.batch), 0);
    test_loop_start_created(&w.t, w.batch);
    /* Never from inside a call. */
    assert_int_equal(counts_of(&w)->batch_calls, 0);
    test_loop_run(&w.t);
    assert_int_equal(counts_of(&w)->batch_calls, 1);
    assert_code(counts_of(&w)->batch_status, IOB_ECANCELED);
    assert_int_equal(counts_of(&w)->cancelled, 5);
    iob_report r = finish_watched(&w);
    assert_int_equal(r.failed, 5);
    assert_ms_below(MS(r.elapsed_ns), 500);
  }
}

static void cancel_after_finish_changes_nothing(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    watch w = {0};
    iob_config c = config_of(style, 3, 10);
    start_watched(&c, &w, 0);
    assert_code(iob_batch_cancel(w.batch), 0);
    assert_int_equal(counts_of(&w)->batch_calls, 1);
    assert_int_equal(counts_of(&w)->batch_status, 0);
    iob_report r = finish_watched(&w);
    assert_int_equal(r.failed, 0);
  }
  assert_code(iob_batch_cancel(NULL), IOB_EINVAL);
}

static void an_operation_callback_can_cancel_the_rest(void **state) {
  watch w = {.cancel_at = 15};
  iob_config c = config_of(&iob_style_loop, 100, 10);
  c.max_in_flight = 10;
  start_watched(&c, &w, 0);
  iob_report r = finish_watched(&w);
  assert_code(r.status, IOB_ECANCELED);
  assert_int_equal(r.failed, 85);
}

/* ---- fail fast ---------------------------------------------------------- */

static int fail_third(iob_op *op) {
  uv_sleep(op->index == 2 ? 20 : 200);
  return op->index == 2 ? UV_ECONNREFUSED : 0;
}

static const iob_kind fail_third_kind = {
    .name = "fail-third",
    .run = fail_third,
};

static void the_first_failure_cancels_the_rest_when_failing_fast(void **s) {
  const iob_style *styles[] = {&iob_style_pool, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    watch w = {0};
    iob_config c = config_of(styles[k], 20, 0);
    c.kind = &fail_third_kind;
    c.fail_fast = 1;
    c.max_in_flight = 3;
    start_watched(&c, &w, 0);
    assert_code(counts_of(&w)->batch_status, UV_ECONNREFUSED);
    const iob_record *rec = records_of(&w);
    assert_code(rec[2].status, UV_ECONNREFUSED);
    assert_int_equal(rec[0].status, 0); /* was running: finished */
    for (int i = 3; i < 20; i++)
      assert_code(rec[i].status, IOB_ECANCELED);
    iob_report r = finish_watched(&w);
    assert_ms_below(MS(r.elapsed_ns), 1000); /* not 20 x 200 / 3 */
  }
}

/* ---- timeouts ----------------------------------------------------------- */

/* On the loop the wait is a deadline that the timeout moves closer; on a
 * thread the thread sleeps only until the timeout. */
static void waits_past_the_timeout_end_at_the_timeout(void **state) {
  uint32_t durations[6] = {20, 300, 20, 300, 20, 300};
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    watch w = {0};
    iob_config c = config_of(style, 6, 0);
    c.durations_ms = durations;
    c.timeout_ms = 100;
    start_watched(&c, &w, 0);
    const iob_record *rec = records_of(&w);
    for (int i = 0; i < 6; i++) {
      assert_int_equal(rec[i].status, durations[i] > 100 ? IOB_ETIMEDOUT : 0);
      double took = MS(rec[i].finished_ns - rec[i].started_ns);
      assert_ms_between(took, (durations[i] > 100 ? 100 : 20) - 1, 250);
    }
    /* Timeouts alone do not stop it. */
    assert_int_equal(counts_of(&w)->batch_status, 0);
    iob_report r = finish_watched(&w);
    assert_int_equal(r.failed, 3);
  }
}

/* A wait exactly as long as the timeout ends on time in every style,
 * however long a thread oversleeps. */
static void a_wait_as_long_as_the_timeout_ends_on_time_everywhere(void **s) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, 3, 20);
    c.timeout_ms = 20;
    iob_report r = report_of(&c);
    assert_int_equal(r.failed, 0);
  }
}

/* run() on a thread that takes 200 ms and looks at nothing. */
static int nap(iob_op *op) {
  uv_sleep(200);
  return 0;
}

static const iob_kind nap_kind = {.name = "nap", .run = nap};

static void blocking_work_past_the_timeout_is_discarded_when_it_ends(void **s) {
  const iob_style *styles[] = {&iob_style_pool, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    watch w = {0};
    iob_config c = config_of(styles[k], 2, 0);
    c.kind = &nap_kind;
    c.timeout_ms = 50;
    start_watched(&c, &w, 0);
    for (int i = 0; i < 2; i++)
      assert_code(records_of(&w)[i].status, IOB_ETIMEDOUT);
    iob_report r = finish_watched(&w);
    assert_ms_at_least(MS(r.elapsed_ns), 199); /* a thread cannot be stopped */
  }
}

/* run() on a thread that would take 2 s, but asks every ms whether it
 * should stop, and gives up with the reason. */
static int patient(iob_op *op) {
  for (int ms = 0; ms < 2000; ms++) {
    int why = iob_op_stopping(op);
    if (why != 0)
      return why;
    uv_sleep(1);
  }
  return 0;
}

static const iob_kind patient_kind = {.name = "patient", .run = patient};

static void a_run_that_asks_gives_up_when_cancelled(void **state) {
  const iob_style *styles[] = {&iob_style_pool, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    watch w = {0};
    iob_config c = config_of(styles[k], 2, 0);
    c.kind = &patient_kind;
    start_watched(&c, &w, 100);
    for (int i = 0; i < 2; i++)
      assert_code(records_of(&w)[i].status, IOB_ECANCELED);
    iob_report r = finish_watched(&w);
    assert_ms_between(MS(r.elapsed_ns), 99, 1000);
  }
}

static void a_run_that_asks_gives_up_at_the_timeout(void **state) {
  const iob_style *styles[] = {&iob_style_pool, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    watch w = {0};
    iob_config c = config_of(styles[k], 2, 0);
    c.kind = &patient_kind;
    c.timeout_ms = 100;
    start_watched(&c, &w, 0);
    for (int i = 0; i < 2; i++)
      assert_code(records_of(&w)[i].status, IOB_ETIMEDOUT);
    iob_report r = finish_watched(&w);
    /* iob_op_stopping() said IOB_ETIMEDOUT once it ran past 100 ms. */
    assert_ms_between(MS(r.elapsed_ns), 99, 1000);
  }
}

/* An asynchronous operation that would take 10 s unless told to stop
 * (operation 0 takes 10 ms). */
typedef struct slow_op {
  uv_timer_t timer;
  iob_op *op;
  int status;
  bool closing;
} slow_op;

static int stops;

/* The timer is the operation's memory: settle once libuv let it go. */
static void slow_closed(uv_handle_t *handle) {
  slow_op *s = handle->data;
  assert_code(iob_op_done(s->op, s->status), 0);
}

static void slow_end(slow_op *s, int status) {
  if (s->closing)
    return;
  s->closing = true;
  s->status = status;
  uv_close((uv_handle_t *)&s->timer, slow_closed);
}

static void slow_done(uv_timer_t *timer) { slow_end(timer->data, 0); }

static int slow_start(iob_op *op) {
  slow_op *s = op->state;
  s->op = op;
  assert_code(uv_timer_init(iob_batch_loop(op->batch), &s->timer), 0);
  s->timer.data = s;
  return uv_timer_start(&s->timer, slow_done, op->index == 0 ? 10 : 10000, 0);
}

static void slow_stop(iob_op *op) {
  stops++;
  assert_true(iob_op_stopping(op) == IOB_ECANCELED ||
              iob_op_stopping(op) == IOB_ETIMEDOUT);
  /* Whatever it says, the record keeps why it was told to stop. */
  slow_end(op->state, UV_ECONNRESET);
}

static const iob_kind slow_kind = {
    .name = "slow",
    .op_size = sizeof(slow_op),
    .start = slow_start,
    .stop = slow_stop,
};

static void async_operations_past_the_timeout_are_told_to_stop(void **s) {
  watch w = {0};
  stops = 0;
  iob_config c = config_of(&iob_style_loop, 8, 0);
  c.kind = &slow_kind;
  c.timeout_ms = 100;
  start_watched(&c, &w, 0);
  const iob_record *rec = records_of(&w);
  assert_int_equal(rec[0].status, 0); /* done in 10 ms */
  for (int i = 1; i < 8; i++)
    assert_code(rec[i].status, IOB_ETIMEDOUT);
  assert_int_equal(stops, 7);
  iob_report r = finish_watched(&w);
  assert_ms_between(MS(r.elapsed_ns), 99, 1000);
}

static void cancel_tells_async_operations_to_stop(void **state) {
  watch w = {0};
  stops = 0;
  iob_config c = config_of(&iob_style_loop, 8, 0);
  c.kind = &slow_kind;
  start_watched(&c, &w, 100);
  assert_int_equal(stops, 7);
  assert_code(counts_of(&w)->batch_status, IOB_ECANCELED);
  const iob_record *rec = records_of(&w);
  for (int i = 1; i < 8; i++)
    assert_code(rec[i].status, IOB_ECANCELED);
  iob_report r = finish_watched(&w);
  assert_int_equal(r.failed, 7);
  assert_ms_below(MS(r.elapsed_ns), 1000);
}

/* ---- threads and counters ----------------------------------------------- */

typedef struct probe {
  iob_batch *batch;
  int progress;
  iob_progress seen;
} probe;

static void probe_from_another_thread(void *arg) {
  probe *p = arg;
  p->progress = iob_batch_progress(p->batch, &p->seen);
}

static uv_timer_t check_timer;
static int checks;

static void check_counters(uv_timer_t *timer) {
  watch *w = timer->data;
  iob_progress p;
  assert_code(iob_batch_progress(w->batch, &p), 0);
  assert_int_equal(p.waiting + p.in_flight + p.done, 30);
  assert_int_equal(p.in_flight, 10);
  assert_cmp(p.done, >=, 10);
  assert_cmp(p.done, <, 30);
  assert_int_equal(p.failed, 0);
  probe pr = {.batch = w->batch};
  uv_thread_t tid;
  assert_code(uv_thread_create(&tid, probe_from_another_thread, &pr), 0);
  assert_code(uv_thread_join(&tid), 0);
  /* The loop thread is here, so nothing changed meanwhile. */
  assert_int_equal(pr.progress, 0);
  assert_memory_equal(&pr.seen, &p, sizeof(p));
  checks++;
  uv_close((uv_handle_t *)timer, NULL);
}

static void counters_are_readable_while_it_runs_from_any_thread(void **state) {
  watch w = {0};
  iob_config c = config_of(&iob_style_loop, 30, 100);
  c.max_in_flight = 10;
  c.data = &w;
  c.on_op = on_op;
  checks = 0;
  test_loop_init(&w.t);
  w.batch = test_loop_start(&w.t, &c, NULL);
  assert_code(uv_timer_init(&w.t.loop, &check_timer), 0);
  check_timer.data = &w;
  assert_code(uv_timer_start(&check_timer, check_counters, 150, 0), 0);
  test_loop_run(&w.t);
  assert_int_equal(checks, 1);
  iob_report r = finish_watched(&w);
  assert_int_equal(r.failed, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cancel_mid_run_ends_waits_on_the_loop_at_once),
      cmocka_unit_test(cancel_mid_run_takes_queued_jobs_off_the_pool),
      cmocka_unit_test(cancel_mid_run_lets_running_threads_finish),
      cmocka_unit_test(cancel_before_start_settles_everything_when_started),
      cmocka_unit_test(cancel_after_finish_changes_nothing),
      cmocka_unit_test(an_operation_callback_can_cancel_the_rest),
      cmocka_unit_test(the_first_failure_cancels_the_rest_when_failing_fast),
      cmocka_unit_test(waits_past_the_timeout_end_at_the_timeout),
      cmocka_unit_test(a_wait_as_long_as_the_timeout_ends_on_time_everywhere),
      cmocka_unit_test(
          blocking_work_past_the_timeout_is_discarded_when_it_ends),
      cmocka_unit_test(a_run_that_asks_gives_up_when_cancelled),
      cmocka_unit_test(a_run_that_asks_gives_up_at_the_timeout),
      cmocka_unit_test(async_operations_past_the_timeout_are_told_to_stop),
      cmocka_unit_test(cancel_tells_async_operations_to_stop),
      cmocka_unit_test(counters_are_readable_while_it_runs_from_any_thread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
