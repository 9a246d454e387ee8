/* The workers style: a pool of iobound's own, private to a batch or shared
 * by batches on one loop or on several; its threads reused, its queue
 * emptied by a cancel, refused threads and bad input handled cleanly. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "internal.h"

static iob_config workers_config(iob_workers *pool, uint32_t count,
                                 uint64_t duration_ms) {
  /* The options live on while the test keeps the config (until fifteen
   * more are made). */
  static iob_workers_options options[16];
  static atomic_uint next; /* tests on two threads make configs */
  iob_workers_options *o = &options[atomic_fetch_add(&next, 1) % 16];
  iob_workers_options_init(o);
  o->pool = pool;
  iob_config c = config_of(&iob_style_workers, count, duration_ms);
  c.style_options = o;
  return c;
}

/* The distinct threads that ran operations of the batches (0, no thread:
 * a job taken off the queue, not counted). */
static uint32_t threads_that_ran(iob_batch *const *batches, int n) {
  uint32_t seen[64], nseen = 0;
  for (int k = 0; k < n; k++) {
    uint32_t count;
    const iob_record *rec = iob_batch_records(batches[k], &count);
    for (uint32_t i = 0; i < count; i++) {
      uint32_t w = rec[i].worker, j = 0;
      while (j < nseen && seen[j] != w)
        j++;
      if (w != 0 && j == nseen && nseen < 64)
        seen[nseen++] = w;
    }
  }
  return nseen;
}

/* ---- a private pool ------------------------------------------------------ */

static void a_private_pool_runs_as_many_at_once_as_max_in_flight(void **s) {
  iob_config c = workers_config(NULL, 6, 100);
  c.max_in_flight = 3;
  iob_report r = report_of(&c);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.failed, 0);
  assert_int_equal(r.threads, 3);
  assert_int_equal(r.peak_in_flight, 3);
  assert_int_equal(r.workers_used, 3);
  /* Two rounds of three. */
  assert_ms_between(MS(r.elapsed_ns), 200, 1000);
}

static void a_private_pool_has_four_threads_unless_told(void **state) {
  /* Eight operations queued at once, on four threads: two rounds. */
  iob_report r = report_of(&(iob_config){
      .style = &iob_style_workers, .count = 8, .duration_ms = 100});
  assert_int_equal(r.threads, IOB_WORKERS_DEFAULT);
  assert_int_equal(r.peak_in_flight, IOB_WORKERS_DEFAULT);
  assert_int_equal(r.workers_used, IOB_WORKERS_DEFAULT);
  assert_ms_between(MS(r.elapsed_ns), 200, 1000);
  /* Never more threads than operations. */
  r = report_of(&(iob_config){
      .style = &iob_style_workers, .count = 2, .duration_ms = 10});
  assert_int_equal(r.threads, 2);
  assert_int_equal(r.workers_used, 2);
}

static void a_private_pools_threads_are_reused(void **state) {
  iob_config c = workers_config(NULL, 12, 100);
  c.max_in_flight = 4;
  iob_report r = report_of(&c);
  assert_int_equal(r.failed, 0);
  assert_int_equal(r.threads, 4);
  assert_int_equal(r.workers_used, 4); /* three operations each */
  assert_int_equal(r.peak_in_flight, 4);
  assert_ms_between(MS(r.elapsed_ns), 300, 1500);
}

/* A kind of the application's: run() on a worker, with what it hands
 * back. */
static int run_and_count(iob_op *op) {
  iob_op_set_value(op, op->index * 10u);
  return op->index == 2 ? IOB_EIO : 0;
}

static const iob_kind counting_kind = {
    .name = "counting",
    .run = run_and_count,
    .stack_size = 128 * 1024,
};

static void a_kinds_run_hands_back_its_status_and_value(void **state) {
  iob_config c = workers_config(NULL, 5, 0);
  c.kind = &counting_kind;
  test_counts seen;
  iob_batch *b = run_on_own_loop(&c, &seen);
  assert_int_equal(seen.ok, 4);
  assert_int_equal(seen.failed, 1);
  for (uint32_t i = 0; i < 5; i++) {
    iob_outcome o;
    assert_code(iob_batch_outcome(b, i, &o), 0);
    assert_int_equal(o.status, i == 2 ? IOB_EIO : 0);
    assert_int_equal(o.value, i * 10u);
  }
  assert_code(iob_batch_free(b), 0);
}

/* ---- a shared pool ------------------------------------------------------- */

static void a_shared_pool_serves_two_batches_at_once_on_one_loop(void **s) {
  iob_workers *pool;
  assert_code(iob_workers_create(&pool, 2, 0), 0);
  assert_int_equal(iob_workers_threads(pool), 2);
  test_loop t;
  test_loop_init(&t);
  iob_config c = workers_config(pool, 4, 50);
  iob_batch *b[2] = {test_loop_start(&t, &c, NULL),
                     test_loop_start(&t, &c, NULL)};
  test_loop_run(&t);
  uint64_t last_end = 0;
  for (int k = 0; k < 2; k++) {
    assert_int_equal(test_loop_counts(&t, b[k])->ok, 4);
    iob_report r;
    assert_code(iob_batch_report(b[k], &r), 0);
    assert_int_equal(r.threads, 2);
    assert_cmp(r.peak_in_flight, <=, 2);
    if (r.elapsed_ns > last_end)
      last_end = r.elapsed_ns;
  }
  /* Eight waits on two threads: four rounds, whoever ran them (alone,
   * a batch would take two). */
  assert_ms_between(MS(last_end), 190, 1500);
  assert_int_equal(threads_that_ran(b, 2), 2);
  test_loop_close(&t);
  for (int k = 0; k < 2; k++)
    assert_code(iob_batch_free(b[k]), 0);
  assert_code(iob_workers_free(pool), 0);
}

/* A loop on a thread of its own, running one batch on the shared pool.
 * cmocka's assertions belong to the test's thread: this one only keeps
 * what happened, for the test to check. */
typedef struct loop_thread {
  iob_workers *pool;
  iob_batch *batch;
  int create, start, run, close, status;
  uint32_t ok;
} loop_thread;

static void count_ok(iob_batch *batch, uint32_t index, const iob_record *r) {
  (void)index;
  loop_thread *lt = iob_batch_data(batch);
  lt->ok += r->status == 0;
}

static void note_status(iob_batch *batch, int status) {
  loop_thread *lt = iob_batch_data(batch);
  lt->status = status;
}

static void loop_thread_main(void *arg) {
  loop_thread *lt = arg;
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) {
    lt->run = -1;
    return;
  }
  iob_config c = workers_config(lt->pool, 4, 50);
  c.data = lt;
  c.on_op = count_ok;
  lt->status = 1; /* not called back */
  lt->create = iob_batch_create(&lt->batch, &c);
  if (lt->create == 0)
    lt->start = iob_batch_start(lt->batch, &loop, note_status);
  lt->run = uv_run(&loop, UV_RUN_DEFAULT);
  lt->close = uv_loop_close(&loop);
}

static void a_shared_pool_serves_batches_on_two_loops_at_once(void **state) {
  iob_workers *pool;
  assert_code(iob_workers_create(&pool, 2, 0), 0);
  loop_thread lt[2] = {{.pool = pool}, {.pool = pool}};
  uv_thread_t tid[2];
  for (int k = 0; k < 2; k++)
    assert_code(uv_thread_create(&tid[k], loop_thread_main, &lt[k]), 0);
  for (int k = 0; k < 2; k++)
    assert_code(uv_thread_join(&tid[k]), 0);
  uint64_t last_end = 0;
  for (int k = 0; k < 2; k++) {
    assert_int_equal(lt[k].create, 0);
    assert_int_equal(lt[k].start, 0);
    assert_int_equal(lt[k].run, 0);
    assert_int_equal(lt[k].close, 0); /* nothing left on either loop */
    assert_int_equal(lt[k].status, 0);
    assert_int_equal(lt[k].ok, 4);
    iob_report r;
    assert_code(iob_batch_report(lt[k].batch, &r), 0);
    assert_int_equal(r.threads, 2);
    if (r.elapsed_ns > last_end)
      last_end = r.elapsed_ns;
  }
  /* Eight waits on two threads, as on one loop; each batch counts from
   * its own start, the later one's while the other's waits ran: more
   * than the two rounds it would take alone. */
  assert_ms_between(MS(last_end), 150, 1500);
  iob_batch *b[2] = {lt[0].batch, lt[1].batch};
  assert_int_equal(threads_that_ran(b, 2), 2);
  for (int k = 0; k < 2; k++)
    assert_code(iob_batch_free(lt[k].batch), 0);
  assert_code(iob_workers_free(pool), 0);
}

/* Batch after batch on one loop, each freed in its callback, of jobs that
 * end at once: a thread's wake-up for a batch's last job races the
 * batch's end, and ASan and TSan watch the batch's memory. */
typedef struct churn {
  iob_workers *pool;
  uv_loop_t loop;
  int batches, clean, close;
} churn;

static void free_if_clean(iob_batch *batch, int status) {
  churn *ch = iob_batch_data(batch);
  iob_report r;
  if (status == 0 && iob_batch_report(batch, &r) == 0 && r.failed == 0)
    ch->clean++;
  iob_batch_free(batch);
}

static void churn_main(void *arg) {
  churn *ch = arg;
  if (uv_loop_init(&ch->loop) != 0)
    return;
  iob_config c = workers_config(ch->pool, 16, 0);
  c.data = ch;
  for (int n = 0; n < 200; n++) {
    iob_batch *b;
    if (iob_batch_create(&b, &c) != 0)
      continue;
    ch->batches++;
    if (iob_batch_start(b, &ch->loop, free_if_clean) != 0)
      iob_batch_free(b);
    uv_run(&ch->loop, UV_RUN_DEFAULT);
  }
  ch->close = uv_loop_close(&ch->loop);
}

static void batches_on_two_loops_come_and_go_on_one_pool(void **state) {
  iob_workers *pool;
  assert_code(iob_workers_create(&pool, 3, 0), 0);
  churn ch[2] = {{.pool = pool, .close = 1}, {.pool = pool, .close = 1}};
  uv_thread_t tid[2];
  for (int k = 0; k < 2; k++)
    assert_code(uv_thread_create(&tid[k], churn_main, &ch[k]), 0);
  for (int k = 0; k < 2; k++) {
    assert_code(uv_thread_join(&tid[k]), 0);
    assert_int_equal(ch[k].batches, 200);
    assert_int_equal(ch[k].clean, 200);
    assert_int_equal(ch[k].close, 0);
  }
  assert_code(iob_workers_free(pool), 0);
}

static void a_kind_that_fits_the_pools_stack_runs_on_it(void **state) {
  iob_workers *pool;
  assert_code(iob_workers_create(&pool, 1, 128 * 1024), 0);
  iob_config c = workers_config(pool, 3, 0);
  c.kind = &counting_kind; /* 128 KiB */
  test_counts seen;
  iob_batch *b = run_on_own_loop(&c, &seen);
  assert_int_equal(seen.op_calls, 3);
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_workers_free(pool), 0);
}

/* ---- freeing a pool ------------------------------------------------------ */

static int freed_in_callback = 1;

static void free_the_pool(iob_batch *batch, int status) {
  freed_in_callback = iob_workers_free(iob_batch_data(batch));
}

static void a_pool_cannot_be_freed_while_a_batch_uses_it(void **state) {
  iob_workers *pool;
  assert_code(iob_workers_create(&pool, 2, 0), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config c = workers_config(pool, 4, 20);
  c.data = pool;
  iob_batch *b = test_loop_start(&t, &c, free_the_pool);
  assert_code(iob_workers_free(pool), IOB_EBUSY);
  freed_in_callback = 1;
  test_loop_run(&t);
  /* From the callback of the batch that used it last, it can go. */
  assert_int_equal(freed_in_callback, 0);
  assert_int_equal(test_loop_counts(&t, b)->ok, 4);
  test_loop_close(&t);
  assert_code(iob_batch_free(b), 0);
}

static void a_pool_serves_batch_after_batch_until_freed(void **state) {
  iob_workers *pool;
  assert_code(iob_workers_create(&pool, 3, 0), 0);
  iob_batch *b[3];
  for (int k = 0; k < 3; k++) {
    iob_config c = workers_config(pool, 6, 10);
    b[k] = run_on_own_loop(&c, NULL);
  }
  /* The same three threads ran every batch. */
  assert_cmp(threads_that_ran(b, 3), <=, 3);
  for (int k = 0; k < 3; k++)
    assert_code(iob_batch_free(b[k]), 0);
  assert_code(iob_workers_free(pool), 0);
}

/* ---- cancelling ---------------------------------------------------------- */

static void cancel_takes_queued_jobs_off_while_running_ones_finish(void **s) {
  /* Four threads, eight jobs: 0..3 run, 4..7 wait in the queue. */
  test_loop t;
  test_loop_init(&t);
  iob_config c = workers_config(NULL, 8, 400);
  iob_batch *b = test_loop_start(&t, &c, NULL);
  test_loop_cancel_after(&t, b, 150);
  test_loop_run(&t);
  const test_counts *seen = test_loop_counts(&t, b);
  assert_code(seen->batch_status, IOB_ECANCELED);
  assert_int_equal(seen->ok, 4);
  assert_int_equal(seen->cancelled, 4);
  const iob_record *rec = iob_batch_records(b, NULL);
  for (int i = 0; i < 4; i++) { /* ran to their end */
    assert_int_equal(rec[i].status, 0);
    assert_int_not_equal(rec[i].worker, 0);
    assert_ms_at_least(MS(rec[i].finished_ns - rec[i].started_ns), 400);
  }
  for (int i = 4; i < 8; i++) { /* never ran: settled at the cancel */
    assert_code(rec[i].status, IOB_ECANCELED);
    assert_int_equal(rec[i].worker, 0);
    assert_cmp(rec[i].started_ns, ==, rec[i].finished_ns);
    /* (The loop's clock, which times the cancel, may run a little
     * behind the batch's.) */
    assert_ms_between(MS(rec[i].finished_ns), 140, 400);
  }
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_ms_between(MS(r.elapsed_ns), 400, 1500);
  assert_int_equal(r.workers_used, 4);
  test_loop_close(&t);
  assert_code(iob_batch_free(b), 0);
}

static void cancel_leaves_the_jobs_of_other_batches_queued(void **state) {
  /* One thread: A0 runs, A1 A2 B0 B1 wait. Cancelling A takes A1 and A2
   * off; B's run after A0 as if A had never queued more. */
  iob_workers *pool;
  assert_code(iob_workers_create(&pool, 1, 0), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config ca = workers_config(pool, 3, 200);
  iob_config cb = workers_config(pool, 2, 100);
  iob_batch *a = test_loop_start(&t, &ca, NULL);
  iob_batch *b = test_loop_start(&t, &cb, NULL);
  test_loop_cancel_after(&t, a, 100);
  test_loop_run(&t);
  assert_int_equal(test_loop_counts(&t, a)->ok, 1);
  assert_int_equal(test_loop_counts(&t, a)->cancelled, 2);
  assert_int_equal(test_loop_counts(&t, b)->ok, 2);
  assert_int_equal(test_loop_counts(&t, b)->batch_status, 0);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  /* A0, then B0 and B1: 400 ms from A's start, not the 800 of all five.
   * B's own elapsed time counts from its start, a moment after A's (398.4
   * ms under ThreadSanitizer in CI, 2026-12-08). */
  assert_ms_between(MS(r.elapsed_ns), 380, 750);
  test_loop_close(&t);
  assert_code(iob_batch_free(a), 0);
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_workers_free(pool), 0);
}

/* The style's hook for iob_batch_cancel_op(), called as the core calls
 * it: operation 3, queued behind 0..2 on a pool of one thread, is taken
 * off and settled now; operation 0, running, is left to finish. */
typedef struct one_off {
  uv_timer_t timer;
  iob_batch *batch;
} one_off;

static iob__slot *slot_of(iob_batch *b, uint32_t i) {
  for (uint32_t k = 0; k < b->nslots; k++) {
    iob__slot *s = iob__slot_at(b, k);
    if (s->phase != IOB__FREE && s->op.index == i)
      return s;
  }
  return NULL;
}

static void cancel_ops_now(uv_timer_t *timer) {
  one_off *o = timer->data;
  iob_batch *b = o->batch;
  iob__stamp_fresh(b);
  iob__slot *s = slot_of(b, 3);
  assert_non_null(s);
  iob_style_workers.cancel_op(b, 3, s);
  assert_null(slot_of(b, 3)); /* settled, its slot given back */
  s = slot_of(b, 0);
  assert_non_null(s);
  iob_style_workers.cancel_op(b, 0, s); /* running: nothing to do */
  assert_ptr_equal(slot_of(b, 0), s);
  uv_close((uv_handle_t *)timer, NULL);
}

static void cancel_op_takes_one_queued_job_off(void **state) {
  iob_workers *pool;
  assert_code(iob_workers_create(&pool, 1, 0), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config c = workers_config(pool, 5, 100);
  one_off o = {.batch = test_loop_start(&t, &c, NULL)};
  assert_code(uv_timer_init(&t.loop, &o.timer), 0);
  o.timer.data = &o;
  assert_code(uv_timer_start(&o.timer, cancel_ops_now, 50, 0), 0);
  test_loop_run(&t);
  const iob_record *rec = iob_batch_records(o.batch, NULL);
  for (uint32_t i = 0; i < 5; i++)
    assert_int_equal(rec[i].status, i == 3 ? IOB_ECANCELED : 0);
  assert_cmp(rec[3].started_ns, ==, rec[3].finished_ns);
  assert_int_equal(rec[3].worker, 0);
  assert_ms_between(MS(rec[3].finished_ns), 40, 100);
  /* The thread went from operation 2 straight to 4. */
  assert_ms_below(MS(rec[4].started_ns - rec[2].finished_ns), 50);
  assert_int_equal(test_loop_counts(&t, o.batch)->batch_status, 0);
  test_loop_close(&t);
  assert_code(iob_batch_free(o.batch), 0);
  assert_code(iob_workers_free(pool), 0);
}

/* ---- bad input ----------------------------------------------------------- */

static void a_pool_is_refused_bad_arguments(void **state) {
  iob_workers *pool = (iob_workers *)&pool;
  assert_code(iob_workers_create(NULL, 1, 0), IOB_EINVAL);
  assert_code(iob_workers_create(&pool, 0, 0), IOB_ERANGE);
  assert_null(pool);
  pool = (iob_workers *)&pool;
  assert_code(iob_workers_create(&pool, IOB_WORKERS_MAX + 1, 0), IOB_ERANGE);
  assert_null(pool);
  assert_code(iob_workers_free(NULL), 0);
  assert_int_equal(iob_workers_threads(NULL), 0);
  /* A stack no system gives: its thread is refused. */
  pool = (iob_workers *)&pool;
  assert_code(iob_workers_create(&pool, 1, SIZE_MAX), IOB_EAGAIN);
  assert_null(pool);
}

static int start_nothing(iob_op *op) { return 0; }

static void a_kind_that_cannot_block_is_refused_at_create(void **state) {
  const iob_kind async_only = {.name = "async", .start = start_nothing};
  iob_config c = workers_config(NULL, 1, 0);
  c.kind = &async_only;
  iob_batch *b = (iob_batch *)&b;
  assert_code(iob_batch_create(&b, &c), IOB_ENOTSUP);
  assert_null(b);
}

static void a_kind_needing_more_stack_than_the_pool_is_refused(void **s) {
  iob_workers *pool;
  assert_code(iob_workers_create(&pool, 1, 64 * 1024), 0);
  iob_config c = workers_config(pool, 2, 0);
  c.kind = &counting_kind; /* 128 KiB */
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  uv_loop_t loop;
  assert_code(uv_loop_init(&loop), 0);
  assert_code(iob_batch_start(b, &loop, free_the_pool), IOB_ENOTSUP);
  /* Nothing started: nothing on the loop, and the pool is not in use. */
  assert_code(uv_loop_close(&loop), 0);
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_workers_free(pool), 0);
}

/* ---- refused threads, through the seam that creates them ----------------- */

/* The system gives `allow` threads, then refuses. Each thread given is
 * counted when it ends, so that a test sees every one joined. */
static int allow;
static atomic_int created, ended;

typedef struct counted {
  uv_thread_cb entry;
  void *arg;
} counted;

static void counted_main(void *arg) {
  counted c = *(counted *)arg;
  free(arg);
  c.entry(c.arg);
  atomic_fetch_add(&ended, 1);
}

static int refusing_create(uv_thread_t *tid, const uv_thread_options_t *options,
                           uv_thread_cb entry, void *arg) {
  if (atomic_load(&created) >= allow)
    return UV_EAGAIN;
  counted *c = malloc(sizeof(*c));
  if (c == NULL)
    return UV_ENOMEM;
  *c = (counted){entry, arg};
  int err = uv_thread_create_ex(tid, options, counted_main, c);
  if (err != 0) {
    free(c);
    return err;
  }
  atomic_fetch_add(&created, 1);
  return 0;
}

static int use_refusing_threads(void **state) {
  atomic_store(&created, 0);
  atomic_store(&ended, 0);
  iob__thread_create = refusing_create;
  return 0;
}

static int use_real_threads(void **state) {
  iob__thread_create = uv_thread_create_ex;
  return 0;
}

static void a_refused_thread_fails_create_and_leaves_no_thread(void **s) {
  allow = 2;
  iob_workers *pool = (iob_workers *)&pool;
  assert_code(iob_workers_create(&pool, 4, 0), IOB_EAGAIN);
  assert_null(pool);
  assert_int_equal(atomic_load(&created), 2);
  assert_int_equal(atomic_load(&ended), 2); /* both joined */
}

static void a_refused_thread_fails_a_private_pools_start(void **state) {
  allow = 3;
  iob_config c = workers_config(NULL, 8, 10);
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  uv_loop_t loop;
  assert_code(uv_loop_init(&loop), 0);
  assert_code(iob_batch_start(b, &loop, free_the_pool), IOB_EAGAIN);
  assert_code(uv_loop_close(&loop), 0);
  assert_code(iob_batch_free(b), 0);
  assert_int_equal(atomic_load(&created), 3);
  assert_int_equal(atomic_load(&ended), 3);

  /* With threads to spare, the same batch config runs. */
  allow = 100;
  iob_report r = report_of(&c);
  assert_int_equal(r.failed, 0);
  assert_int_equal(r.threads, 4);
  assert_int_equal(atomic_load(&ended), atomic_load(&created));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_private_pool_runs_as_many_at_once_as_max_in_flight),
      cmocka_unit_test(a_private_pool_has_four_threads_unless_told),
      cmocka_unit_test(a_private_pools_threads_are_reused),
      cmocka_unit_test(a_kinds_run_hands_back_its_status_and_value),
      cmocka_unit_test(a_shared_pool_serves_two_batches_at_once_on_one_loop),
      cmocka_unit_test(a_shared_pool_serves_batches_on_two_loops_at_once),
      cmocka_unit_test(batches_on_two_loops_come_and_go_on_one_pool),
      cmocka_unit_test(a_kind_that_fits_the_pools_stack_runs_on_it),
      cmocka_unit_test(a_pool_cannot_be_freed_while_a_batch_uses_it),
      cmocka_unit_test(a_pool_serves_batch_after_batch_until_freed),
      cmocka_unit_test(cancel_takes_queued_jobs_off_while_running_ones_finish),
      cmocka_unit_test(cancel_leaves_the_jobs_of_other_batches_queued),
      cmocka_unit_test(cancel_op_takes_one_queued_job_off),
      cmocka_unit_test(a_pool_is_refused_bad_arguments),
      cmocka_unit_test(a_kind_that_cannot_block_is_refused_at_create),
      cmocka_unit_test(a_kind_needing_more_stack_than_the_pool_is_refused),
      cmocka_unit_test_setup_teardown(
          a_refused_thread_fails_create_and_leaves_no_thread,
          use_refusing_threads, use_real_threads),
      cmocka_unit_test_setup_teardown(
          a_refused_thread_fails_a_private_pools_start, use_refusing_threads,
          use_real_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
