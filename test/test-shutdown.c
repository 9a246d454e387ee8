/* An application shutting down a loop that batches run on: the pattern of
 * docs/embedding.md (walk the loop; cancel the batch of each handle of
 * iobound's, close the rest), iob_handle_batch() itself, and a walker
 * that closes iobound's handles too, which the pool style survives. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

/* The application: its own handles beside the batches. */
typedef struct app {
  test_loop t;
  uv_timer_t ticker;
  uv_idle_t idle;
  uv_tcp_t listener;
  uv_timer_t shutdown; /* runs the walk; closed by it like the others */
  int ticks, closed;
  uint64_t t0; /* when it opened, before any batch started */
  /* What the walk saw. */
  int ours, foreign, cancels_failed;
  iob_batch *batches[STYLES_MAX + 1];
  int nbatches;
  int unknown_batch;    /* iob_handle_batch() named a batch not started here */
  bool hostile;         /* close iobound's handles too */
  bool hostile_cancels; /* ...and cancel their batches first */
} app;

static void on_tick(uv_timer_t *timer) {
  app *a = timer->data;
  a->ticks++;
}

static void on_idle(uv_idle_t *idle) {
  (void)idle;
  uv_sleep(1); /* not a busy loop */
}

static void on_connection(uv_stream_t *server, int status) {
  (void)server;
  (void)status;
  fail_msg("nobody connects in this test");
}

static void app_closed(uv_handle_t *handle) {
  app *a = handle->data;
  a->closed++;
}

/* The documented walk: a handle of iobound's names its batch, which is
 * cancelled (and closes its handles itself); the rest are closed. */
static void walk_one(uv_handle_t *h, void *arg) {
  app *a = arg;
  iob_batch *b = iob_handle_batch(h);
  if (b != NULL) {
    a->ours++;
    bool known = false;
    for (int k = 0; k < a->nbatches; k++)
      known |= a->batches[k] == b;
    a->unknown_batch += !known;
    if (!a->hostile || a->hostile_cancels)
      a->cancels_failed += iob_batch_cancel(b) != 0;
    if (!a->hostile)
      return;
  } else {
    a->foreign++;
  }
  if (!uv_is_closing(h)) {
    if (b == NULL)
      h->data = a; /* every handle of the app's counts its close */
    uv_close(h, b == NULL ? app_closed : NULL);
  }
}

/* The documented walk's first pass: every batch is cancelled before
 * anything is closed, so that a kind closes the handles of its own (the
 * TCP kind's sockets) before the second pass could. */
static void cancel_batches(uv_handle_t *h, void *arg) {
  (void)arg;
  iob_batch *b = iob_handle_batch(h);
  if (b != NULL)
    iob_batch_cancel(b);
}

static void shut_down(uv_timer_t *timer) {
  app *a = timer->data;
  if (!a->hostile)
    uv_walk(timer->loop, cancel_batches, a);
  uv_walk(timer->loop, walk_one, a);
}

static void open_app(app *a, uint64_t shutdown_ms) {
  *a = (app){.t0 = uv_hrtime()};
  test_loop_init(&a->t);
  uv_loop_t *loop = &a->t.loop;
  assert_code(uv_timer_init(loop, &a->ticker), 0);
  assert_code(uv_idle_init(loop, &a->idle), 0);
  assert_code(uv_tcp_init(loop, &a->listener), 0);
  assert_code(uv_timer_init(loop, &a->shutdown), 0);
  a->ticker.data = a->idle.data = a->listener.data = a->shutdown.data = a;
  assert_code(uv_timer_start(&a->ticker, on_tick, 10, 10), 0);
  assert_code(uv_idle_start(&a->idle, on_idle), 0);
  struct sockaddr_in addr;
  assert_code(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
  assert_code(uv_tcp_bind(&a->listener, (const struct sockaddr *)&addr, 0), 0);
  assert_code(uv_listen((uv_stream_t *)&a->listener, 16, on_connection), 0);
  assert_code(uv_timer_start(&a->shutdown, shut_down, shutdown_ms, 0), 0);
}

static iob_batch *app_start(app *a, const iob_config *c, iob_batch_cb cb) {
  iob_batch *b = test_loop_start(&a->t, c, cb);
  a->batches[a->nbatches++] = b;
  return b;
}

/* Run to the end: the loop must stop by itself. The ms since it opened. */
static double run_app(app *a) {
  test_loop_run(&a->t);
  return MS(uv_hrtime() - a->t0);
}

static void close_app(app *a, bool free_batches) {
  test_loop_close(&a->t);
  for (int k = 0; free_batches && k < a->nbatches; k++)
    assert_code(iob_batch_free(a->batches[k]), 0);
}

/* For each style, a batch that runs well past the shutdown: on the loop,
 * waits of 10 s; on threads, waits of 300 ms that a cancel cannot cut
 * short, and ten rounds of them: a loop thread starved for a while (TSan
 * on a busy machine) still finds some queued to cancel. */
static iob_config long_config(const iob_style *style) {
  if (style == &iob_style_pool)
    return config_of(style, iob_pool_size() * 10, 300);
  iob_config c = config_of(style, 8, 10000);
  if (iob_style_flags(style) & IOB_STYLE_ON_THREADS) { /* threads, workers */
    c.count = 30;
    c.duration_ms = 300;
    c.max_in_flight = 3;
  }
  return c;
}

static void
the_shutdown_walk_cancels_every_batch_and_the_loop_closes(void **state) {
  app a;
  open_app(&a, 100);
  size_t n = style_count();
  iob_rate *rate; /* half the batches share a rate, waiting for tokens */
  assert_code(iob_rate_create(&rate, 20, 2), 0);
  for (size_t k = 0; k < n; k++) {
    iob_config c = long_config(iob_style_at(k));
    if (k % 2 == 1)
      c.deadline_ms = 60000; /* its deadline's timer is one more handle */
    else
      c.rate = rate;
    app_start(&a, &c, NULL);
  }
  double ms = run_app(&a);
  /* Each batch has four handles of its own: its timer, its wake-up, its
   * deadline's timer and its token timer (a rate's); the app has four. */
  assert_int_equal(a.ours, 4 * (int)n);
  assert_code(iob_rate_free(rate), 0);
  assert_int_equal(a.foreign, 4);
  assert_int_equal(a.closed, 4);
  assert_int_equal(a.unknown_batch, 0);
  assert_int_equal(a.cancels_failed, 0);
  for (int k = 0; k < a.nbatches; k++) {
    const test_counts *c = test_loop_counts(&a.t, a.batches[k]);
    assert_int_equal(c->batch_calls, 1);
    assert_code(c->batch_status, IOB_ECANCELED);
    if (c->cancelled < 1)
      fail_msg("%s: the batch ended cancelled, none of its operations was "
               "(%.1f ms after the start)",
               iob_style_name(iob_batch_config(a.batches[k])->style), ms);
  }
  assert_cmp(a.ticks, >=, 1); /* the app's handles ran beside the batches */
  /* The waits on threads finish (300 ms); nothing waits 10 s. */
  assert_ms_between(ms, 99, 2000);
  close_app(&a, true);
}

/* The batches free themselves in their callbacks, as an application
 * that forgets them at shutdown would. */
static void free_in_cb(iob_batch *batch, int status) {
  (void)status;
  assert_code(iob_batch_free(batch), 0);
}

static void
the_shutdown_walk_works_with_batches_that_free_themselves(void **state) {
  app a;
  open_app(&a, 50);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = long_config(style);
    app_start(&a, &c, free_in_cb);
  }
  run_app(&a);
  assert_int_equal(a.cancels_failed, 0);
  for (int k = 0; k < a.nbatches; k++)
    assert_code(a.t.batches[k].counts.batch_status, IOB_ECANCELED);
  close_app(&a, false);
}

/* Requests over TCP to a peer that never answers, in every style. On the
 * loop styles the operations' sockets are handles too, which
 * iob_handle_batch() does not claim (they are the kind's): the first pass
 * cancels the batches, which makes the kind close its sockets, and the
 * second finds them closing. On a thread a socket notices a cancel
 * within 250 ms. */
static void the_shutdown_walk_cancels_requests_over_tcp_in_flight(void **s) {
  int port;
  int fd = test_loopback_socket(true, &port); /* listens, never answers */
  char address[32];
  snprintf(address, sizeof(address), "127.0.0.1:%d", port);
  iob_tcp_target *target;
  assert_code(iob_tcp_target_create(&target, address), 0);
  app a;
  open_app(&a, 100);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, 3, 1000);
    c.kind = &iob_kind_tcp;
    c.target = target;
    app_start(&a, &c, NULL);
  }
  double ms = run_app(&a);
  assert_int_equal(a.closed, 4); /* the app's own; no socket among them */
  assert_int_equal(a.cancels_failed, 0);
  for (int k = 0; k < a.nbatches; k++) {
    const test_counts *c = test_loop_counts(&a.t, a.batches[k]);
    assert_code(c->batch_status, IOB_ECANCELED);
    assert_int_equal(c->cancelled, 3);
  }
  assert_ms_between(ms, 99, 2000);
  close_app(&a, true);
  iob_tcp_target_destroy(target);
  close(fd);
}

/* ---- iob_handle_batch() -------------------------------------------------- */

typedef struct census {
  iob_batch *batch;
  int ours, theirs;
  uv_handle_type types[4];
} census;

static void count_handle(uv_handle_t *h, void *arg) {
  census *c = arg;
  iob_batch *b = iob_handle_batch(h);
  if (b == NULL) {
    c->theirs++;
    return;
  }
  assert_ptr_equal(b, c->batch);
  if (c->ours < 4)
    c->types[c->ours] = uv_handle_get_type(h);
  c->ours++;
}

static void iob_handle_batch_names_only_iobounds_handles(void **state) {
  assert_null(iob_handle_batch(NULL));
  test_loop t;
  test_loop_init(&t);
  iob_config c = config_of(&iob_style_loop, 3, 20);
  c.deadline_ms = 1000;
  iob_batch *b = test_loop_start(&t, &c, NULL);

  /* Foreign handles, whatever their data points to: nothing, an int,
   * the batch itself, and the batch's own memory. */
  int mine = 0;
  uv_timer_t foreign[4];
  void *data[4] = {NULL, &mine, b, (char *)b + 1};
  for (int k = 0; k < 4; k++) {
    assert_code(uv_timer_init(&t.loop, &foreign[k]), 0);
    foreign[k].data = data[k];
    assert_null(iob_handle_batch((uv_handle_t *)&foreign[k]));
  }
  census n = {.batch = b};
  uv_walk(&t.loop, count_handle, &n);
  assert_int_equal(n.ours, 4);
  assert_int_equal(n.theirs, 4);
  int timers = 0, asyncs = 0;
  for (int k = 0; k < 4; k++) {
    timers += n.types[k] == UV_TIMER;
    asyncs += n.types[k] == UV_ASYNC;
  }
  assert_int_equal(timers, 3);
  assert_int_equal(asyncs, 1);
  for (int k = 0; k < 4; k++)
    uv_close((uv_handle_t *)&foreign[k], NULL);
  test_loop_run(&t);
  /* Once it has ended, nothing of it is left to find. */
  n = (census){.batch = b};
  uv_walk(&t.loop, count_handle, &n);
  assert_int_equal(n.ours + n.theirs, 0);
  test_loop_close(&t);
  assert_code(iob_batch_free(b), 0);
}

/* ---- a walker that closes iobound's handles too -------------------------- */

/* The pool style needs none of its handles to run its jobs: the batch
 * ends when they do, and its callback runs. */
static void
a_walker_that_closes_iobounds_handles_leaves_a_pool_batch_whole(void **state) {
  for (int cancels = 0; cancels < 2; cancels++) {
    for (int freed = 0; freed < 2; freed++) {
      app a;
      open_app(&a, 50);
      a.hostile = true;
      a.hostile_cancels = cancels;
      iob_config c = long_config(&iob_style_pool);
      app_start(&a, &c, freed ? free_in_cb : NULL);
      double ms = run_app(&a);
      assert_int_equal(a.ours, 4);
      assert_int_equal(a.closed, 4);
      const test_counts *n = &a.t.batches[0].counts;
      assert_int_equal(n->batch_calls, 1);
      if (cancels) {
        assert_code(n->batch_status, IOB_ECANCELED);
        assert_cmp(n->cancelled, >=, 4);
      } else {
        /* Nothing stopped it: every job ran its 300 ms. */
        assert_int_equal(n->batch_status, 0);
        assert_int_equal(n->failed, 0);
        assert_ms_at_least(ms, 599);
      }
      close_app(&a, !freed);
    }
  }
}

/* The hardest moment: the walker closes the handles from the last
 * operation's callback, so that its closes and the batch's end fall in
 * one pass of libuv's closing handles; the batch frees itself in its
 * callback, so libuv must be done with every handle by then (ASan and
 * valgrind watch). */
typedef struct last_moment {
  uint32_t settled, count;
  int walked;
} last_moment;

static void close_everything(uv_handle_t *h, void *arg) {
  last_moment *m = arg;
  m->walked++;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static void walk_at_the_last(iob_batch *batch, uint32_t index,
                             const iob_record *rec) {
  (void)index;
  (void)rec;
  last_moment *m = iob_batch_data(batch);
  if (++m->settled == m->count)
    uv_walk(iob_batch_loop(batch), close_everything, m);
}

static void
a_walker_closing_handles_as_a_pool_batch_ends_is_harmless(void **state) {
  for (int deadline = 0; deadline < 2; deadline++) {
    for (uint32_t count = 1; count <= 6; count += 5) {
      last_moment m = {.count = count};
      test_loop t;
      test_loop_init(&t);
      iob_config c = config_of(&iob_style_pool, count, 5);
      c.deadline_ms = deadline ? 60000 : 0;
      c.data = &m;
      c.on_op = walk_at_the_last;
      test_loop_start(&t, &c, free_in_cb);
      test_loop_run(&t);
      assert_int_equal(m.walked, 4);
      assert_int_equal(t.batches[0].counts.batch_calls, 1);
      assert_int_equal(t.batches[0].counts.batch_status, 0);
      test_loop_close(&t);
    }
  }
}

/* The walker closes the handles in the same loop iteration as, but
 * before, the batch's end: a check handle walks once every job is done
 * on its thread, before libuv has called the jobs back. */
typedef struct prompt {
  iob_batch *batch;
  uv_check_t check;
  atomic_uint done;
  uint32_t count;
  int walked;
} prompt;

static prompt *the_prompt;

static int count_done_run(iob_op *op) {
  (void)op;
  atomic_fetch_add(&the_prompt->done, 1);
  return 0;
}

static const iob_kind counted_kind = {.name = "counted", .run = count_done_run};

static void walk_when_all_ran(uv_check_t *check) {
  prompt *p = check->data;
  if (atomic_load(&p->done) < p->count)
    return;
  uv_walk(check->loop, close_everything, &(last_moment){0});
  p->walked++;
}

static void
a_walker_closing_handles_before_the_jobs_call_back_is_harmless(void **state) {
  for (int round = 0; round < 20; round++) {
    prompt p = {.count = 3};
    atomic_init(&p.done, 0);
    the_prompt = &p;
    test_loop t;
    test_loop_init(&t);
    iob_config c = config_of(&iob_style_pool, 3, (uint64_t)round % 3);
    c.kind = &counted_kind;
    c.deadline_ms = 60000;
    assert_code(uv_check_init(&t.loop, &p.check), 0);
    p.check.data = &p;
    assert_code(uv_check_start(&p.check, walk_when_all_ran), 0);
    test_loop_start(&t, &c, free_in_cb);
    test_loop_run(&t);
    assert_int_equal(p.walked, 1);
    assert_int_equal(t.batches[0].counts.batch_status, 0);
    test_loop_close(&t);
  }
  the_prompt = NULL;
}

/* A walker that closes every handle, iobound's too, while batches wait
 * on the loop and on threads: uv_run() returns without their callbacks,
 * since nothing is left to wake the loop. A cancel then ends each: on
 * the loop at once, on threads once the threads, told to stop, finish,
 * the loop thread waiting for them as nothing can wake it now. Nothing
 * crashes, no thread is left behind, and the loop closes. */
static void close_all_now(uv_timer_t *timer) {
  uv_walk(timer->loop, close_everything, &(last_moment){0});
}

/* An application may cancel from on_op too (the docs allow it): then the
 * rescue that waits for the operations runs inside the settling of
 * another, and must go on settling the ones handed back with it. */
static void cancel_from_on_op(iob_batch *b, uint32_t i, const iob_record *r) {
  assert_code(iob_batch_cancel(b), 0);
}

static void a_cancel_ends_batches_whose_handles_someone_closed(void **state) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads,
                               &iob_style_workers, &iob_style_loops};
  for (size_t k = 0; k < 2 * sizeof(styles) / sizeof(styles[0]); k++) {
    bool on_op = k % 2;
    test_loop t;
    test_loop_init(&t);
    uv_timer_t walk;
    assert_code(uv_timer_init(&t.loop, &walk), 0);
    assert_code(uv_timer_start(&walk, close_all_now, 50, 0), 0);
    /* Six: the workers' private pool has four threads, so two wait on
     * its queue, and the cancel takes them off it. */
    iob_config c = config_of(styles[k / 2], 6, 300);
    if (on_op)
      c.on_op = cancel_from_on_op;
    iob_batch *b = test_loop_start(&t, &c, NULL);
    test_loop_run(&t); /* returns at the walk */
    assert_int_equal(t.batches[0].counts.batch_calls, 0);
    uint64_t t0 = uv_hrtime();
    assert_code(iob_batch_cancel(b), 0);
    test_loop_run(&t);
    print_message("%s%s: ended %.1f ms after the cancel\n",
                  iob_style_name(styles[k / 2]), on_op ? ", on_op too" : "",
                  MS(uv_hrtime() - t0));
    assert_int_equal(t.batches[0].counts.batch_calls, 1);
    assert_code(t.batches[0].counts.batch_status, IOB_ECANCELED);
    test_loop_close(&t);
    assert_code(iob_batch_free(b), 0);
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* as iob_kind_tcp asks */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          the_shutdown_walk_cancels_every_batch_and_the_loop_closes),
      cmocka_unit_test(
          the_shutdown_walk_works_with_batches_that_free_themselves),
      cmocka_unit_test(the_shutdown_walk_cancels_requests_over_tcp_in_flight),
      cmocka_unit_test(iob_handle_batch_names_only_iobounds_handles),
      cmocka_unit_test(
          a_walker_that_closes_iobounds_handles_leaves_a_pool_batch_whole),
      cmocka_unit_test(
          a_walker_closing_handles_as_a_pool_batch_ends_is_harmless),
      cmocka_unit_test(
          a_walker_closing_handles_before_the_jobs_call_back_is_harmless),
      cmocka_unit_test(a_cancel_ends_batches_whose_handles_someone_closed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
