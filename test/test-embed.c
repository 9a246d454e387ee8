/* A batch on the caller's own loop, among the caller's own handles. */
#include <inttypes.h>

#include "common.h"

typedef struct app {
  test_loop t;
  uv_idle_t idle;
  uv_timer_t ticker;
  int idle_runs;
  int ticks;
  int done_calls;
  int done_status;
  iob_batch *done_batch;
  uint64_t ticks_at_done;
} app;

static void on_idle(uv_idle_t *idle) {
  app *a = idle->data;
  a->idle_runs++;
}

static void on_tick(uv_timer_t *t) {
  app *a = t->data;
  a->ticks++;
}

static void on_done(iob_batch *batch, int status) {
  app *a = iob_batch_data(batch);
  a->done_calls++;
  a->done_status = status;
  a->done_batch = batch;
  a->ticks_at_done = (uint64_t)a->ticks;
  /* The application's own handles are its to stop. */
  uv_idle_stop(&a->idle);
  uv_timer_stop(&a->ticker);
}

static void close_app(app *a) {
  uv_close((uv_handle_t *)&a->idle, NULL);
  uv_close((uv_handle_t *)&a->ticker, NULL);
  test_loop_run(&a->t);
  test_loop_close(&a->t);
}

static void open_app(app *a) {
  *a = (app){0};
  test_loop_init(&a->t);
  assert_code(uv_idle_init(&a->t.loop, &a->idle), 0);
  assert_code(uv_timer_init(&a->t.loop, &a->ticker), 0);
  a->idle.data = a->ticker.data = a;
  assert_code(uv_idle_start(&a->idle, on_idle), 0);
  assert_code(uv_timer_start(&a->ticker, on_tick, 10, 10), 0);
}

static void
batch_finishes_beside_the_callers_handles_in_every_style(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    app a;
    open_app(&a);
    iob_config c = config_of(style, 4, 100);
    c.data = &a;
    iob_batch *b = test_loop_start(&a.t, &c, on_done);
    test_loop_run(&a.t);

    assert_int_equal(a.done_calls, 1);
    assert_int_equal(a.done_status, 0);
    assert_ptr_equal(a.done_batch, b);
    /* The caller's handles kept working while the batch ran. */
    assert_cmp(a.idle_runs, >, 0);
    /* A tick every 10 ms for about 100 ms; a loaded machine under TSan
     * (CI, 2026-12-07) gave fewer than 3: at least one is the point. */
    if (a.ticks_at_done < 1)
      fail_msg("%s: the caller's 10 ms timer ticked %" PRIu64
               " times while the batch ran",
               iob_style_name(style), a.ticks_at_done);
    assert_code(iob_batch_free(b), 0);
    close_app(&a);
  }
}

static void free_from_the_callback(iob_batch *batch, int status) {
  int *calls = iob_batch_data(batch);
  (*calls)++;
  assert_code(iob_batch_free(batch), 0);
}

static void batch_can_be_freed_inside_its_callback(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    test_loop t;
    test_loop_init(&t);
    int calls = 0;
    iob_config c = config_of(style, 3, 1);
    c.data = &calls;
    test_loop_start(&t, &c, free_from_the_callback);
    test_loop_run(&t);
    assert_int_equal(calls, 1);
    test_loop_close(&t);
  }
}

static void count_done(iob_batch *batch, int status) {
  int *calls = iob_batch_data(batch);
  (*calls)++;
}

static void several_batches_share_one_loop(void **state) {
  test_loop t;
  test_loop_init(&t);
  int calls = 0;
  size_t n = 2 * style_count();
  iob_batch *b[2 * STYLES_MAX];
  for (size_t k = 0; k < n; k++) {
    iob_config c = config_of(iob_style_at(k % style_count()), 5, 20);
    c.data = &calls;
    b[k] = test_loop_start(&t, &c, count_done);
  }
  uint64_t t0 = uv_hrtime();
  test_loop_run(&t);
  assert_int_equal(calls, n);
  /* They ran side by side: the slowest alone, sequential, is 100 ms. */
  assert_ms_below(MS(uv_hrtime() - t0), 1000);
  for (size_t k = 0; k < n; k++)
    assert_code(iob_batch_free(b[k]), 0);
  test_loop_close(&t);
}

static void blocking_run_returns_a_finished_batch(void **state) {
  iob_config c = config_of(&iob_style_loop, 10, 20);
  int mine;
  c.data = &mine;
  iob_batch *b;
  assert_code(iob_run(&b, &c), 0);
  assert_ptr_equal(iob_batch_data(b), &mine);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.count, 10);
  assert_ms_at_least(MS(r.elapsed_ns), 20);
  assert_code(iob_batch_free(b), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          batch_finishes_beside_the_callers_handles_in_every_style),
      cmocka_unit_test(batch_can_be_freed_inside_its_callback),
      cmocka_unit_test(several_batches_share_one_loop),
      cmocka_unit_test(blocking_run_returns_a_finished_batch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
