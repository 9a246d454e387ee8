/* The reason for the workers style, measured: 8 blocking operations of
 * 500 ms hold libuv's pool (4 threads) for about 1 s in the pool style, and
 * the application's own uv_fs_stat(), which needs that pool too, waits
 * behind them; in the workers style they run on threads of iobound's own
 * and the stat answers at once. examples/starvation.c shows the same.
 *
 * The pool's size is the process's, fixed at its first use: this test
 * asks for none (no iob_pool_request_size()), and drops
 * UV_THREADPOOL_SIZE before anything uses the pool, so it has libuv's 4. */
#include <stdlib.h>

#include "common.h"

#define OPERATIONS 8
#define DURATION_MS 500

typedef struct stat_timing {
  uv_fs_t req;
  uint64_t sent, latency_ns;
  int calls, status;
} stat_timing;

static void on_stat(uv_fs_t *req) {
  stat_timing *st = req->data;
  st->latency_ns = uv_hrtime() - st->sent;
  st->calls++;
  st->status = (int)req->result;
  uv_fs_req_cleanup(req);
}

/* Start the batch in `style`, then stat a file at once on the same loop;
 * returns the stat's latency, and the batch's report in *r. */
static double stat_latency_beside(const iob_style *style, iob_report *r) {
  char path[4096]; /* a file that is surely there: this test */
  size_t len = sizeof(path);
  assert_code(uv_exepath(path, &len), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config c = config_of(style, OPERATIONS, DURATION_MS);
  iob_batch *b = test_loop_start(&t, &c, NULL);
  stat_timing st = {.calls = 0};
  st.req.data = &st;
  st.sent = uv_hrtime();
  assert_code(uv_fs_stat(&t.loop, &st.req, path, on_stat), 0);
  test_loop_run(&t);
  assert_int_equal(st.calls, 1);
  assert_int_equal(st.status, 0);
  assert_int_equal(test_loop_counts(&t, b)->ok, OPERATIONS);
  assert_code(iob_batch_report(b, r), 0);
  test_loop_close(&t);
  assert_code(iob_batch_free(b), 0);
  print_message("%-8s stat latency %7.2f ms, batch %7.1f ms\n",
                iob_style_name(style), MS(st.latency_ns), MS(r->elapsed_ns));
  return MS(st.latency_ns);
}

static void the_pool_style_makes_a_file_stat_wait_behind_its_waits(void **s) {
  iob_report r;
  double latency = stat_latency_beside(&iob_style_pool, &r);
  /* Queued behind the second round: about 1000 ms. */
  assert_ms_at_least(latency, 400);
  assert_int_equal(r.threads, 4);
  assert_ms_at_least(MS(r.elapsed_ns), 2 * DURATION_MS);
}

static void the_workers_style_leaves_libuvs_pool_to_the_stat(void **state) {
  iob_report r;
  double latency = stat_latency_beside(&iob_style_workers, &r);
  /* Only the pool's own start-up, if the stat is its first use. */
  assert_ms_below(latency, 150);
  /* The same 4 threads, the same two rounds. */
  assert_int_equal(r.threads, 4);
  assert_ms_at_least(MS(r.elapsed_ns), 2 * DURATION_MS);
}

int main(void) {
  /* Before anything can start libuv's pool. */
  unsetenv("UV_THREADPOOL_SIZE");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_pool_style_makes_a_file_stat_wait_behind_its_waits),
      cmocka_unit_test(the_workers_style_leaves_libuvs_pool_to_the_stat),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
