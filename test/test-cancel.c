/* Cancellation, timeouts, fail-fast and per-operation callbacks, in every
 * style: the callback runs once, after everything settled, and nothing
 * leaks. */
#include <stdlib.h>

#include "helpers.h"

typedef struct watch {
  int batch_calls;
  int batch_status;
  int op_calls;
  int cancel_at;   /* cancel from the op callback after this many; 0: no */
  uint32_t *seen;  /* how often each operation was reported */
  uv_timer_t timer; /* cancels mid-run */
  iob_batch *batch;
} watch;

static void on_batch(iob_batch *batch, int status) {
  watch *w = iob_batch_data(batch);
  w->batch_calls++;
  w->batch_status = status;
}

static void on_op(iob_batch *batch, uint32_t index, const iob_record *rec) {
  watch *w = iob_batch_data(batch);
  w->op_calls++;
  w->seen[index]++;
  assert_true(rec->started_ns <= rec->finished_ns);
  if (w->cancel_at != 0 && w->op_calls == w->cancel_at)
    assert_int_equal(iob_batch_cancel(batch), 0);
}

static void cancel_now(uv_timer_t *t) {
  watch *w = t->data;
  assert_int_equal(iob_batch_cancel(w->batch), 0);
  assert_int_equal(iob_batch_cancel(w->batch), 0); /* twice is harmless */
  uv_close((uv_handle_t *)t, NULL);
}

static const iob_record *records_of(const watch *w) {
  return iob_batch_records(w->batch, NULL);
}

/* Run `c` to its end on the_loop, cancelling after `cancel_ms` if not 0;
 * the caller inspects the batch, then finish_watched() frees it all. */
static uv_loop_t the_loop;

static void start_watched(iob_config *c, watch *w, uint64_t cancel_ms) {
  assert_int_equal(uv_loop_init(&the_loop), 0);
  w->seen = calloc(c->count, sizeof(*w->seen));
  c->data = w;
  c->on_op = on_op;
  assert_int_equal(iob_batch_create(&w->batch, c), 0);
  assert_int_equal(iob_batch_start(w->batch, &the_loop, on_batch), 0);
  if (cancel_ms != 0) {
    uv_timer_init(&the_loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, cancel_now, cancel_ms, 0);
  }
  assert_int_equal(uv_run(&the_loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(w->batch_calls, 1);
  for (uint32_t i = 0; i < c->count; i++)
    assert_int_equal(w->seen[i], 1);
}

static iob_report finish_watched(watch *w) {
  iob_report r;
  assert_int_equal(iob_batch_report(w->batch, &r), 0);
  assert_int_equal(iob_batch_cancel(w->batch), 0);
  assert_int_equal(iob_batch_free(w->batch), 0);
  free(w->seen);
  assert_int_equal(uv_loop_close(&the_loop), 0);
  return r;
}

static void cancel_mid_run_ends_waits_on_the_loop_at_once(void **state) {
  const iob_style styles[] = {IOB_STYLE_LOOP, IOB_STYLE_SEQUENTIAL};
  for (int k = 0; k < 2; k++) {
    watch w = {0};
    iob_config c = config_of(styles[k], 12, 300);
    start_watched(&c, &w, 100);
    assert_int_equal(w.batch_status, IOB_ECANCELED);
    for (int i = 0; i < 12; i++)
      assert_int_equal(records_of(&w)[i].status, IOB_ECANCELED);
    iob_report r = finish_watched(&w);
    assert_true(MS(r.elapsed_ns) >= 99 && MS(r.elapsed_ns) < 250);
    assert_int_equal(r.failed, 12);
  }
}

static void cancel_mid_run_takes_queued_jobs_off_the_pool(void **state) {
  unsigned int p = iob_pool_size();
  watch w = {0};
  iob_config c = config_of(IOB_STYLE_POOL, p + 6, 300);
  start_watched(&c, &w, 100);
  assert_int_equal(w.batch_status, IOB_ECANCELED);
  const iob_record *rec = records_of(&w);
  uint32_t ran = 0, cancelled = 0;
  for (uint32_t i = 0; i < p + 6; i++) {
    if (rec[i].status == 0) {
      ran++; /* a thread had it: it finished its 300 ms */
      assert_true(MS(rec[i].finished_ns - rec[i].started_ns) >= 299);
    } else {
      assert_int_equal(rec[i].status, IOB_ECANCELED);
      cancelled++;
    }
  }
  /* At most one job per pool thread ran (all of them, unless the pool
   * was slow to start, as under valgrind); the rest never did. */
  assert_true(ran <= p);
  assert_true(cancelled >= 6);
  assert_int_equal(ran + cancelled, p + 6);
  finish_watched(&w);
}

static void cancel_mid_run_lets_running_threads_finish(void **state) {
  watch w = {0};
  iob_config c = config_of(IOB_STYLE_THREADS, 12, 300);
  c.max_in_flight = 4;
  start_watched(&c, &w, 100);
  assert_int_equal(w.batch_status, IOB_ECANCELED);
  const iob_record *rec = records_of(&w);
  for (int i = 0; i < 4; i++) /* running: recorded as finished */
    assert_int_equal(rec[i].status, 0);
  for (int i = 4; i < 12; i++) /* never started */
    assert_int_equal(rec[i].status, IOB_ECANCELED);
  iob_report r = finish_watched(&w);
  assert_true(MS(r.elapsed_ns) >= 299);
}

static void cancel_before_start_settles_everything_when_started(void **s) {
  for (int style = 0; style < IOB_STYLE_COUNT_; style++) {
    watch w = {0};
    iob_config c = config_of((iob_style)style, 5, 1000);
    c.data = &w;
    c.on_op = on_op;
    w.seen = calloc(5, sizeof(*w.seen));
    assert_int_equal(uv_loop_init(&the_loop), 0);
    assert_int_equal(iob_batch_create(&w.batch, &c), 0);
    assert_int_equal(iob_batch_cancel(w.batch), 0);
    assert_int_equal(iob_batch_start(w.batch, &the_loop, on_batch), 0);
    assert_int_equal(w.batch_calls, 0); /* never from inside a call */
    assert_int_equal(uv_run(&the_loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(w.batch_calls, 1);
    assert_int_equal(w.batch_status, IOB_ECANCELED);
    iob_report r = finish_watched(&w);
    assert_int_equal(r.failed, 5);
    assert_true(MS(r.elapsed_ns) < 500);
  }
}

static void cancel_after_finish_changes_nothing(void **state) {
  for (int style = 0; style < IOB_STYLE_COUNT_; style++) {
    watch w = {0};
    iob_config c = config_of((iob_style)style, 3, 10);
    start_watched(&c, &w, 0);
    assert_int_equal(iob_batch_cancel(w.batch), 0);
    assert_int_equal(w.batch_calls, 1);
    assert_int_equal(w.batch_status, 0);
    iob_report r = finish_watched(&w);
    assert_int_equal(r.failed, 0);
  }
  assert_int_equal(iob_batch_cancel(NULL), IOB_EINVAL);
}

static void an_operation_callback_can_cancel_the_rest(void **state) {
  watch w = {.cancel_at = 15};
  iob_config c = config_of(IOB_STYLE_LOOP, 100, 10);
  c.max_in_flight = 10;
  start_watched(&c, &w, 0);
  iob_report r = finish_watched(&w);
  assert_int_equal(r.status, IOB_ECANCELED);
  assert_int_equal(r.failed, 85);
}

/* ---- fail fast ------------------------------------------------------------ */

static int fail_third(void *data, uint32_t index) {
  uv_sleep(index == 2 ? 20 : 200);
  return index == 2 ? UV_ECONNREFUSED : 0;
}

static void the_first_failure_cancels_the_rest_when_failing_fast(void **s) {
  const iob_style styles[] = {IOB_STYLE_POOL, IOB_STYLE_THREADS};
  for (int k = 0; k < 2; k++) {
    watch w = {0};
    iob_config c = config_of(styles[k], 20, 0);
    c.work = IOB_WORK_USER;
    c.blocking = fail_third;
    c.fail_fast = 1;
    c.max_in_flight = 3;
    start_watched(&c, &w, 0);
    assert_int_equal(w.batch_status, UV_ECONNREFUSED);
    const iob_record *rec = records_of(&w);
    assert_int_equal(rec[2].status, UV_ECONNREFUSED);
    assert_int_equal(rec[0].status, 0); /* was running: finished */
    for (int i = 3; i < 20; i++)
      assert_int_equal(rec[i].status, IOB_ECANCELED);
    iob_report r = finish_watched(&w);
    assert_true(MS(r.elapsed_ns) < 1000); /* not 20 x 200 / 3 */
  }
}

/* ---- timeouts ------------------------------------------------------------- */

static void waits_past_the_timeout_end_at_the_timeout(void **state) {
  uint32_t durations[6] = {20, 300, 20, 300, 20, 300};
  watch w = {0};
  iob_config c = config_of(IOB_STYLE_LOOP, 6, 0);
  c.durations_ms = durations;
  c.timeout_ms = 100;
  start_watched(&c, &w, 0);
  const iob_record *rec = records_of(&w);
  for (int i = 0; i < 6; i++) {
    assert_int_equal(rec[i].status, durations[i] > 100 ? IOB_ETIMEDOUT : 0);
    double took = MS(rec[i].finished_ns - rec[i].started_ns);
    assert_true(took >= (durations[i] > 100 ? 100 : 20) - 1);
    assert_true(took < 250);
  }
  iob_report r = finish_watched(&w);
  assert_int_equal(w.batch_status, 0); /* timeouts alone do not stop it */
  assert_int_equal(r.failed, 3);
}

static void blocking_work_past_the_timeout_is_discarded_when_it_ends(void **s) {
  const iob_style styles[] = {IOB_STYLE_POOL, IOB_STYLE_THREADS};
  for (int k = 0; k < 2; k++) {
    watch w = {0};
    iob_config c = config_of(styles[k], 2, 200);
    c.timeout_ms = 50;
    start_watched(&c, &w, 0);
    for (int i = 0; i < 2; i++)
      assert_int_equal(records_of(&w)[i].status, IOB_ETIMEDOUT);
    iob_report r = finish_watched(&w);
    assert_true(MS(r.elapsed_ns) >= 199); /* a thread cannot be stopped */
  }
}

/* An asynchronous operation that would take 10 s unless told to stop. */
typedef struct slow_op {
  uv_timer_t timer;
  iob_batch *batch;
  uint32_t index;
} slow_op;

static slow_op slow_ops[8];
static int cancels;

static void slow_done(uv_timer_t *t) {
  slow_op *op = t->data;
  uv_close((uv_handle_t *)t, NULL);
  assert_int_equal(iob_op_done(op->batch, op->index, 0), 0);
}

static int slow_start(iob_batch *batch, uint32_t index) {
  slow_op *op = &slow_ops[index];
  op->batch = batch;
  op->index = index;
  uv_timer_init(iob_batch_loop(batch), &op->timer);
  op->timer.data = op;
  return uv_timer_start(&op->timer, slow_done, index == 0 ? 10 : 10000, 0);
}

static void slow_cancel(iob_batch *batch, uint32_t index) {
  slow_op *op = &slow_ops[index];
  cancels++;
  uv_close((uv_handle_t *)&op->timer, NULL);
  assert_int_equal(iob_op_done(batch, index, UV_ECANCELED), 0);
}

static void async_operations_past_the_timeout_are_told_to_stop(void **s) {
  watch w = {0};
  cancels = 0;
  iob_config c = config_of(IOB_STYLE_LOOP, 8, 0);
  c.work = IOB_WORK_USER;
  c.start = slow_start;
  c.cancel = slow_cancel;
  c.timeout_ms = 100;
  start_watched(&c, &w, 0);
  const iob_record *rec = records_of(&w);
  assert_int_equal(rec[0].status, 0); /* done in 10 ms */
  for (int i = 1; i < 8; i++)
    assert_int_equal(rec[i].status, IOB_ETIMEDOUT);
  assert_int_equal(cancels, 7);
  iob_report r = finish_watched(&w);
  assert_true(MS(r.elapsed_ns) >= 99 && MS(r.elapsed_ns) < 1000);
}

static void cancel_tells_async_operations_to_stop(void **state) {
  watch w = {0};
  cancels = 0;
  iob_config c = config_of(IOB_STYLE_LOOP, 8, 0);
  c.work = IOB_WORK_USER;
  c.start = slow_start;
  c.cancel = slow_cancel;
  start_watched(&c, &w, 100);
  assert_int_equal(cancels, 7);
  assert_int_equal(w.batch_status, IOB_ECANCELED);
  iob_report r = finish_watched(&w);
  assert_int_equal(r.failed, 7);
  assert_true(MS(r.elapsed_ns) < 1000);
}

/* ---- threads and counters ------------------------------------------------ */

typedef struct probe {
  iob_batch *batch;
  int cancel, done, progress;
} probe;

static void probe_from_another_thread(void *arg) {
  probe *p = arg;
  iob_progress pr;
  p->cancel = iob_batch_cancel(p->batch);
  p->done = iob_op_done(p->batch, 0, 0);
  p->progress = iob_batch_progress(p->batch, &pr);
}

static void check_counters(uv_timer_t *t) {
  watch *w = t->data;
  iob_progress p;
  assert_int_equal(iob_batch_progress(w->batch, &p), 0);
  assert_int_equal(p.waiting + p.in_flight + p.done, 30);
  assert_int_equal(p.in_flight, 10);
  assert_true(p.done >= 10 && p.done < 30);
  probe pr = {.batch = w->batch};
  uv_thread_t tid;
  assert_int_equal(uv_thread_create(&tid, probe_from_another_thread, &pr), 0);
  assert_int_equal(uv_thread_join(&tid), 0);
  assert_int_equal(pr.cancel, IOB_EPERM);
  assert_int_equal(pr.progress, IOB_EPERM);
  assert_true(pr.done == IOB_EPERM || pr.done == IOB_EINVAL);
  uv_close((uv_handle_t *)t, NULL);
}

static void counters_are_readable_while_it_runs_and_only_on_its_thread(
    void **state) {
  watch w = {0};
  iob_config c = config_of(IOB_STYLE_LOOP, 30, 100);
  c.max_in_flight = 10;
  assert_int_equal(uv_loop_init(&the_loop), 0);
  w.seen = calloc(30, sizeof(*w.seen));
  c.data = &w;
  c.on_op = on_op;
  assert_int_equal(iob_batch_create(&w.batch, &c), 0);
  assert_int_equal(iob_batch_start(w.batch, &the_loop, on_batch), 0);
  uv_timer_init(&the_loop, &w.timer);
  w.timer.data = &w;
  uv_timer_start(&w.timer, check_counters, 150, 0);
  assert_int_equal(uv_run(&the_loop, UV_RUN_DEFAULT), 0);
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
      cmocka_unit_test(
          blocking_work_past_the_timeout_is_discarded_when_it_ends),
      cmocka_unit_test(async_operations_past_the_timeout_are_told_to_stop),
      cmocka_unit_test(cancel_tells_async_operations_to_stop),
      cmocka_unit_test(
          counters_are_readable_while_it_runs_and_only_on_its_thread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
