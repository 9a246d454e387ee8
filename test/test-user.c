/* Your own operations: asynchronous ones on the loop, blocking ones on
 * threads, and their statuses in the report. */
#include <stdlib.h>

#include "helpers.h"

/* ---- an asynchronous operation: a libuv timer of the user's own ---------- */

typedef struct user_op {
  uv_timer_t timer;
  iob_batch *batch;
  uint32_t index;
} user_op;

typedef struct user_ctx {
  user_op *ops;
  int started;
  int fail_every; /* settle every n-th with UV_ECONNRESET; 0: never */
  int refuse_every; /* start functions that refuse at once */
} user_ctx;

static void on_user_timer(uv_timer_t *t) {
  user_op *op = t->data;
  user_ctx *ctx = iob_batch_data(op->batch);
  int status = ctx->fail_every && op->index % (uint32_t)ctx->fail_every == 0
                   ? UV_ECONNRESET
                   : 0;
  uv_close((uv_handle_t *)t, NULL);
  assert_int_equal(iob_op_done(op->batch, op->index, status), 0);
  /* A second settle of the same operation is refused. */
  assert_int_equal(iob_op_done(op->batch, op->index, 0), IOB_EINVAL);
}

static int start_user_op(iob_batch *batch, uint32_t index) {
  user_ctx *ctx = iob_batch_data(batch);
  if (ctx->refuse_every && index % (uint32_t)ctx->refuse_every == 0)
    return UV_ENOTCONN;
  user_op *op = &ctx->ops[index];
  op->batch = batch;
  op->index = index;
  ctx->started++;
  uv_loop_t *loop = iob_batch_loop(batch);
  uv_update_time(loop); /* libuv timers count from the loop's clock */
  uv_timer_init(loop, &op->timer);
  op->timer.data = op;
  return uv_timer_start(&op->timer, on_user_timer, 50, 0);
}

static void on_batch_done(iob_batch *batch, int status) {
  (void)batch;
  (void)status;
}

/* Run a batch of user operations on a loop of the test's own. */
static iob_report run_user(iob_style style, uint32_t count, user_ctx *ctx) {
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  ctx->ops = calloc(count, sizeof(*ctx->ops));
  iob_config c = config_of(style, count, 0);
  c.work = IOB_WORK_USER;
  c.start = start_user_op;
  c.data = ctx;
  iob_batch *b;
  assert_int_equal(iob_batch_create(&b, &c), 0);
  assert_int_equal(iob_batch_start(b, &loop, on_batch_done), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  iob_report r;
  assert_int_equal(iob_batch_report(b, &r), 0);
  const iob_record *rec = iob_batch_records(b, NULL);
  for (uint32_t i = 0; i < count; i++) {
    assert_true(rec[i].queued_ns <= rec[i].started_ns);
    assert_true(rec[i].started_ns <= rec[i].finished_ns);
    assert_int_equal(rec[i].worker, 0);
  }
  assert_int_equal(iob_batch_free(b), 0);
  free(ctx->ops);
  assert_int_equal(uv_loop_close(&loop), 0);
  return r;
}

static void async_user_operations_overlap_on_the_loop(void **state) {
  user_ctx ctx = {0};
  iob_report r = run_user(IOB_STYLE_LOOP, 20, &ctx);
  assert_int_equal(ctx.started, 20);
  assert_int_equal(r.failed, 0);
  assert_int_equal(r.peak_in_flight, 20);
  assert_true(MS(r.elapsed_ns) >= 49 && MS(r.elapsed_ns) < 500);
}

static void async_user_operations_run_one_at_a_time_sequentially(void **s) {
  user_ctx ctx = {0};
  iob_report r = run_user(IOB_STYLE_SEQUENTIAL, 5, &ctx);
  assert_int_equal(r.peak_in_flight, 1);
  assert_true(MS(r.elapsed_ns) >= 5 * 49);
}

static void a_failing_operations_status_lands_in_the_report(void **state) {
  user_ctx ctx = {.fail_every = 3};
  iob_report r = run_user(IOB_STYLE_LOOP, 9, &ctx);
  assert_int_equal(r.failed, 3); /* 0, 3 and 6 */
  assert_int_equal(r.status, 0); /* the batch itself ran to its end */
}

static void a_start_function_may_refuse_at_once(void **state) {
  user_ctx ctx = {.refuse_every = 2};
  iob_report r = run_user(IOB_STYLE_LOOP, 10, &ctx);
  assert_int_equal(ctx.started, 5);
  assert_int_equal(r.failed, 5);
}

static void operations_that_fail_at_once_count_as_one_running(void **s) {
  user_ctx ctx = {.refuse_every = 1};
  iob_report r = run_user(IOB_STYLE_LOOP, 5, &ctx);
  assert_int_equal(r.failed, 5);
  assert_int_equal(r.peak_in_flight, 1);
}

static void settling_what_is_not_in_flight_is_refused(void **state) {
  assert_int_equal(iob_op_done(NULL, 0, 0), IOB_EINVAL);
  iob_config c = config_of(IOB_STYLE_LOOP, 2, 0);
  c.work = IOB_WORK_USER;
  c.start = start_user_op;
  iob_batch *b;
  assert_int_equal(iob_batch_create(&b, &c), 0);
  assert_int_equal(iob_op_done(b, 0, 0), IOB_EINVAL); /* not started */
  assert_int_equal(iob_op_done(b, 7, 0), IOB_EINVAL); /* out of range */
  assert_int_equal(iob_batch_free(b), 0);
}

/* ---- blocking operations ------------------------------------------------- */

static int blocking_op(void *data, uint32_t index) {
  int *delay = data;
  uv_sleep((unsigned int)*delay);
  return index == 2 ? UV_EPIPE : 0;
}

static void blocking_user_operations_run_on_threads(void **state) {
  const iob_style styles[] = {IOB_STYLE_POOL, IOB_STYLE_THREADS};
  for (size_t k = 0; k < 2; k++) {
    int delay = 100;
    iob_config c = config_of(styles[k], 4, 0);
    c.work = IOB_WORK_USER;
    c.blocking = blocking_op;
    c.data = &delay;
    iob_batch *b;
    assert_int_equal(iob_run(&b, &c), 0);
    const iob_record *rec = iob_batch_records(b, NULL);
    for (int i = 0; i < 4; i++) {
      assert_int_not_equal(rec[i].worker, 0);
      assert_int_equal(rec[i].status, i == 2 ? UV_EPIPE : 0);
      assert_true(MS(rec[i].finished_ns - rec[i].started_ns) >= 99);
    }
    iob_report r;
    assert_int_equal(iob_batch_report(b, &r), 0);
    assert_int_equal(r.failed, 1);
    /* They overlapped (measured from their records). */
    assert_true(r.peak_in_flight >= 2);
    assert_int_equal(iob_batch_free(b), 0);
  }
}

static void operations_get_op_data_and_the_batch_keeps_data(void **state) {
  int delay = 1, mine = 0;
  iob_config c = config_of(IOB_STYLE_THREADS, 2, 0);
  c.work = IOB_WORK_USER;
  c.blocking = blocking_op; /* reads its delay from op_data */
  c.op_data = &delay;
  c.data = &mine;
  iob_batch *b;
  assert_int_equal(iob_run(&b, &c), 0);
  assert_ptr_equal(iob_batch_data(b), &mine);
  assert_ptr_equal(iob_batch_op_data(b), &delay);
  assert_int_equal(iob_batch_free(b), 0);
  c.op_data = NULL; /* falls back to data */
  assert_int_equal(iob_batch_create(&b, &c), 0);
  assert_ptr_equal(iob_batch_op_data(b), &mine);
  assert_int_equal(iob_batch_free(b), 0);
  assert_null(iob_batch_op_data(NULL));
}

static void a_blocking_operation_on_the_loop_blocks_it(void **state) {
  int delay = 30;
  iob_config c = config_of(IOB_STYLE_LOOP, 4, 0);
  c.work = IOB_WORK_USER;
  c.blocking = blocking_op;
  c.data = &delay;
  iob_batch *b;
  assert_int_equal(iob_run(&b, &c), 0);
  const iob_record *rec = iob_batch_records(b, NULL);
  for (int i = 0; i < 4; i++)
    assert_int_equal(rec[i].worker, 0); /* the loop's own thread */
  iob_report r;
  assert_int_equal(iob_batch_report(b, &r), 0);
  assert_int_equal(r.peak_in_flight, 1); /* one after another */
  assert_true(MS(r.elapsed_ns) >= 4 * 30);
  assert_int_equal(iob_batch_free(b), 0);
}

static void user_work_needs_the_right_function_for_its_style(void **s) {
  iob_batch *b;
  iob_config c = config_of(IOB_STYLE_LOOP, 1, 0);
  c.work = IOB_WORK_USER;
  assert_int_equal(iob_batch_create(&b, &c), IOB_EINVAL); /* neither */
  c.start = start_user_op;
  c.style = IOB_STYLE_POOL;
  assert_int_equal(iob_batch_create(&b, &c), IOB_ENOTSUP);
  c.style = IOB_STYLE_THREADS;
  assert_int_equal(iob_batch_create(&b, &c), IOB_ENOTSUP);
  c.work = (iob_work)IOB_WORK_COUNT_;
  assert_int_equal(iob_batch_create(&b, &c), IOB_ENOTSUP);
  assert_null(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(async_user_operations_overlap_on_the_loop),
      cmocka_unit_test(async_user_operations_run_one_at_a_time_sequentially),
      cmocka_unit_test(a_failing_operations_status_lands_in_the_report),
      cmocka_unit_test(a_start_function_may_refuse_at_once),
      cmocka_unit_test(settling_what_is_not_in_flight_is_refused),
      cmocka_unit_test(operations_that_fail_at_once_count_as_one_running),
      cmocka_unit_test(blocking_user_operations_run_on_threads),
      cmocka_unit_test(a_blocking_operation_on_the_loop_blocks_it),
      cmocka_unit_test(operations_get_op_data_and_the_batch_keeps_data),
      cmocka_unit_test(user_work_needs_the_right_function_for_its_style),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
