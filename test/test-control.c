/* A running batch controlled from outside its loop: cancelled from another
 * thread and from a signal handler, its counters read from another thread
 * while it runs, a reference held by a thread past the owner's free, and
 * the batch's own deadline, in every style. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* A batch on a loop of the test's own, run to its end; the caller reads
 * it, then end_run() proves everything and frees it. */
typedef struct run {
  test_loop t;
  iob_batch *batch;
  uint64_t t0;
  double ms; /* from the start to the end of uv_run() */
} run;

static void start_run(run *r, const iob_config *c) {
  test_loop_init(&r->t);
  r->t0 = uv_hrtime();
  r->batch = test_loop_start(&r->t, c, NULL);
}

static void finish_run(run *r) {
  test_loop_run(&r->t);
  r->ms = MS(uv_hrtime() - r->t0);
}

static const test_counts *counts_of(const run *r) {
  return test_loop_counts(&r->t, r->batch);
}

static const iob_record *records_of(const run *r) {
  const iob_record *rec = iob_batch_records(r->batch, NULL);
  assert_non_null(rec);
  return rec;
}

static void end_run(run *r) {
  test_loop_close(&r->t);
  assert_code(iob_batch_free(r->batch), 0);
}

/* What a cancelled run of `c` must show, whatever cancelled it: the
 * callback had IOB_ECANCELED; operations either ran to their end (a wait
 * already on a thread) with 0 or were cancelled; at least `cancelled_min`
 * were; those that never started have equal times. */
static void assert_cancelled(run *r, const iob_config *c,
                             uint32_t cancelled_min) {
  assert_int_equal(counts_of(r)->batch_calls, 1);
  assert_code(counts_of(r)->batch_status, IOB_ECANCELED);
  const iob_record *rec = records_of(r);
  uint32_t cancelled = 0;
  for (uint32_t i = 0; i < c->count; i++) {
    if (rec[i].status == 0) {
      assert_ms_at_least(MS(rec[i].finished_ns - rec[i].started_ns),
                         c->duration_ms - 1);
      continue;
    }
    assert_code(rec[i].status, IOB_ECANCELED);
    cancelled++;
  }
  if (cancelled < cancelled_min)
    fail_msg("%s: %u cancelled, expected at least %u", iob_style_name(c->style),
             cancelled, cancelled_min);
  assert_int_equal(counts_of(r)->cancelled, cancelled);
}

/* For each style, a batch that a cancel at about 100 ms cuts short: on the
 * loop every wait ends then; on the pool or threads, the waits already
 * running finish (300 ms) and the rest never start. */
static iob_config cut_short_config(const iob_style *style) {
  if (style == &iob_style_pool) {
    iob_config c = config_of(style, iob_pool_size() + 6, 300);
    return c;
  }
  if (iob_style_flags(style) & IOB_STYLE_ON_THREADS) { /* threads, workers */
    iob_config c = config_of(style, 12, 300);
    c.max_in_flight = 4;
    return c;
  }
  return config_of(style, 12, 5000);
}

static uint32_t cut_short_cancelled_min(const iob_config *c) {
  if (c->style == &iob_style_pool)
    return 6;
  if (iob_style_flags(c->style) & IOB_STYLE_ON_THREADS)
    return 8;
  return c->count;
}

static void assert_cut_short_in_time(const run *r, const iob_config *c) {
  if (iob_style_flags(c->style) & IOB_STYLE_ON_THREADS)
    assert_ms_between(r->ms, 99, 1500);
  else
    assert_ms_between(r->ms, 99, 1000); /* not 12 x 5 s */
}

/* ---- from another thread ------------------------------------------------ */

typedef struct canceller {
  iob_batch *batch; /* a reference of the canceller's own */
  unsigned delay_ms;
  int ret, ret_again;
} canceller;

static void cancel_later(void *arg) {
  canceller *k = arg;
  uv_sleep(k->delay_ms);
  k->ret = iob_batch_cancel(k->batch);
  k->ret_again = iob_batch_cancel(k->batch); /* harmless */
  iob_batch_unref(k->batch);
}

static void
a_cancel_from_another_thread_ends_the_batch_in_every_style(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = cut_short_config(style);
    run r;
    start_run(&r, &c);
    canceller can = {.batch = iob_batch_ref(r.batch),
                     .delay_ms = 100,
                     .ret = 1,
                     .ret_again = 1};
    uv_thread_t tid;
    assert_code(uv_thread_create(&tid, cancel_later, &can), 0);
    finish_run(&r);
    assert_code(uv_thread_join(&tid), 0);
    assert_int_equal(can.ret, 0);
    assert_int_equal(can.ret_again, 0);
    assert_cancelled(&r, &c, cut_short_cancelled_min(&c));
    assert_cut_short_in_time(&r, &c);
    end_run(&r);
  }
}

static void ask_to_cancel(void *arg) {
  canceller *k = arg;
  k->ret = iob_batch_cancel(k->batch);
  k->ret_again = iob_batch_cancel_async(k->batch);
}

static void
a_cancel_asked_from_another_thread_before_start_starts_nothing(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, 6, 1000);
    run r;
    test_loop_init(&r.t);
    r.batch = test_loop_create(&r.t, &c, NULL);
    canceller can = {.batch = r.batch, .ret = 1, .ret_again = 1};
    uv_thread_t tid;
    assert_code(uv_thread_create(&tid, ask_to_cancel, &can), 0);
    assert_code(uv_thread_join(&tid), 0);
    assert_int_equal(can.ret, 0);
    assert_int_equal(can.ret_again, 0);
    r.t0 = uv_hrtime();
    test_loop_start_created(&r.t, r.batch);
    assert_int_equal(counts_of(&r)->batch_calls, 0); /* never from inside */
    finish_run(&r);
    assert_cancelled(&r, &c, 6);
    const iob_record *rec = records_of(&r);
    for (int i = 0; i < 6; i++) { /* none started */
      assert_cmp(rec[i].queued_ns, ==, rec[i].started_ns);
      assert_cmp(rec[i].started_ns, ==, rec[i].finished_ns);
      assert_int_equal(rec[i].worker, 0);
    }
    iob_report rep;
    assert_code(iob_batch_report(r.batch, &rep), 0);
    assert_int_equal(rep.workers_used, 0);
    assert_ms_below(r.ms, 500);
    end_run(&r);
  }
}

/* ---- from a signal handler ---------------------------------------------- */

/* The batch the handler cancels; only the handler's thread changes it
 * when signals go to one thread, so a plain atomic pointer will do. */
static _Atomic(iob_batch *) signal_batch;
static volatile sig_atomic_t signals_seen;
static volatile sig_atomic_t signal_ret;

static void on_signal(int sig) {
  (void)sig;
  int saved = errno;
  iob_batch *b = atomic_load(&signal_batch);
  if (b != NULL) {
    int ret = iob_batch_cancel_async(b);
    if (ret != 0)
      signal_ret = ret;
  }
  signals_seen++;
  errno = saved;
}

static struct sigaction old_action;

static int catch_sigusr1(void **state) {
  (void)state;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  signals_seen = 0;
  signal_ret = 0;
  atomic_store(&signal_batch, NULL);
  return sigaction(SIGUSR1, &sa, &old_action);
}

static int release_sigusr1(void **state) {
  (void)state;
  atomic_store(&signal_batch, NULL);
  return sigaction(SIGUSR1, &old_action, NULL);
}

static void raise_now(test_loop *t, void *arg) {
  (void)t;
  (void)arg;
  assert_int_equal(raise(SIGUSR1), 0);
}

typedef struct signaller {
  pthread_t target; /* the loop's thread; or, if to_process, none */
  bool to_process;
  unsigned delay_ms;
  int ret;
} signaller;

static void signal_later(void *arg) {
  signaller *s = arg;
  uv_sleep(s->delay_ms);
  s->ret = s->to_process ? kill(getpid(), SIGUSR1)
                         : pthread_kill(s->target, SIGUSR1);
}

/* The three ways a signal comes: raised on the loop thread itself (the
 * handler interrupts a timer callback), sent to the loop thread blocked
 * in its poll by another thread, and sent to the process, which the
 * kernel gives to any thread. */
static void
a_cancel_from_a_signal_handler_ends_the_batch_in_every_style(void **state) {
  const iob_style *style;
  for (int how = 0; how < 3; how++) {
    for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
      iob_config c = cut_short_config(style);
      run r;
      start_run(&r, &c);
      atomic_store(&signal_batch, r.batch);
      int before = signals_seen;
      signaller s = {.target = pthread_self(),
                     .to_process = how == 2,
                     .delay_ms = 100,
                     .ret = -1};
      uv_thread_t tid;
      if (how == 0)
        test_loop_at(&r.t, 100, raise_now, NULL);
      else
        assert_code(uv_thread_create(&tid, signal_later, &s), 0);
      finish_run(&r);
      if (how != 0) {
        assert_code(uv_thread_join(&tid), 0);
        assert_int_equal(s.ret, 0);
      }
      atomic_store(&signal_batch, NULL);
      assert_int_equal(signals_seen, before + 1);
      assert_int_equal(signal_ret, 0);
      assert_cancelled(&r, &c, cut_short_cancelled_min(&c));
      assert_cut_short_in_time(&r, &c);
      end_run(&r);
    }
  }
}

typedef struct storm {
  pthread_t target;
  atomic_bool stop;
  unsigned sent;
} storm;

static void send_storm(void *arg) {
  storm *s = arg;
  while (!atomic_load(&s->stop)) {
    if (pthread_kill(s->target, SIGUSR1) == 0)
      s->sent++;
    uv_sleep(0);
  }
}

static void count_ended(iob_batch *batch, int status) {
  int *ended = iob_batch_data(batch);
  (*ended)++;
  assert_true(status == 0 || status == IOB_ECANCELED);
}

/* Signals rain on the loop thread while batches start, run and end one
 * after another: whenever the handler interrupts the library (starting,
 * settling, shutting the batch's wake-up, freeing), a cancel is either
 * done or harmless. */
static void
signals_that_cancel_while_batches_start_and_end_are_harmless(void **state) {
  storm s = {.target = pthread_self()};
  atomic_init(&s.stop, false);
  uv_thread_t tid;
  assert_code(uv_thread_create(&tid, send_storm, &s), 0);
  int ended = 0, cancelled = 0, batches = 0;
  for (int round = 0; round < 10; round++) {
    const iob_style *style;
    for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
      test_loop t;
      test_loop_init(&t);
      iob_config c = config_of(style, 8, round % 3);
      c.max_in_flight = 4;
      c.data = &ended;
      iob_batch *b = test_loop_create(&t, &c, count_ended);
      atomic_store(&signal_batch, b);
      test_loop_start_created(&t, b);
      test_loop_run(&t);
      cancelled += test_loop_counts(&t, b)->batch_status == IOB_ECANCELED;
      /* The handler runs on this thread only: once this store is done,
       * it cannot be holding the pointer. */
      atomic_store(&signal_batch, NULL);
      test_loop_close(&t);
      assert_code(iob_batch_free(b), 0);
      batches++;
    }
  }
  atomic_store(&s.stop, true);
  assert_code(uv_thread_join(&tid), 0);
  assert_int_equal(ended, batches);
  assert_int_equal(signal_ret, 0);
  assert_cmp(signals_seen, >, 0);
  print_message("      %d batches, %u signals sent, %d seen, %d cancelled\n",
                batches, s.sent, (int)signals_seen, cancelled);
}

/* ---- progress from another thread --------------------------------------- */

typedef struct reader {
  iob_batch *batch; /* a reference of the reader's own */
  uint32_t count;
  uint32_t max_in_flight; /* 0: not checked */
  atomic_bool stop;
  unsigned long reads;
  bool broken; /* a reading that broke a rule; the first is kept */
  iob_progress bad, last;
  char why[64];
} reader;

static void read_progress(void *arg) {
  reader *rd = arg;
  iob_progress last = {.waiting = rd->count};
  /* Once more after the stop is seen: the batch had ended by then, so
   * the last reading is of the end, however late this thread ran. */
  for (bool stopping = false; !stopping;) {
    stopping = atomic_load(&rd->stop);
    iob_progress p;
    const char *why = NULL;
    if (iob_batch_progress(rd->batch, &p) != 0)
      why = "the call failed";
    else if (p.waiting + p.in_flight + p.done != rd->count)
      why = "waiting + in_flight + done is not the count";
    else if (p.done < last.done)
      why = "done went down";
    else if (p.failed < last.failed)
      why = "failed went down";
    else if (p.waiting > last.waiting)
      why = "waiting went up";
    else if (p.failed > p.done)
      why = "more failed than done";
    else if (rd->max_in_flight != 0 && p.in_flight > rd->max_in_flight)
      why = "more in flight than the limit";
    if (why != NULL && !rd->broken) {
      rd->broken = true;
      rd->bad = p;
      snprintf(rd->why, sizeof(rd->why), "%s", why);
    }
    last = p;
    /* A yield now and then: under valgrind, which runs one thread at a
     * time, a reader that never blocks would starve the loop thread. */
    if (++rd->reads % 256 == 0)
      sched_yield();
  }
  rd->last = last;
  iob_batch_unref(rd->batch);
}

static void assert_read_well(const reader *rd) {
  if (rd->broken)
    fail_msg("after %lu readings: %s (%u waiting, %u in flight, %u done, "
             "%u failed)",
             rd->reads, rd->why, rd->bad.waiting, rd->bad.in_flight,
             rd->bad.done, rd->bad.failed);
  if (rd->reads < 100)
    fail_msg("only %lu readings", rd->reads);
  assert_int_equal(rd->last.done, rd->count);
}

/* Cancels every 97th operation's successor alone, from the loop thread,
 * so that some settle before they launch. */
static void cancel_some(iob_batch *batch, uint32_t index,
                        const iob_record *rec) {
  (void)rec;
  uint32_t *count = iob_batch_data(batch);
  if (index % 97 == 0 && index + 500 < *count)
    assert_code(iob_batch_cancel_op(batch, index + 500), 0);
}

static void cancel_now(test_loop *t, void *arg) {
  (void)t;
  assert_code(iob_batch_cancel(arg), 0);
}

typedef struct progress_case {
  const iob_style *style;
  uint32_t count, max_in_flight, longest_ms;
  bool meddle; /* cancel some alone, and the whole batch midway */
} progress_case;

static void progress_case_run(const progress_case *pc) {
  uint32_t *durations = malloc(pc->count * sizeof(*durations));
  assert_non_null(durations);
  for (uint32_t i = 0; i < pc->count; i++)
    durations[i] = (i * 7919u) % (pc->longest_ms + 1);
  iob_config c = config_of(pc->style, pc->count, 0);
  c.durations_ms = durations;
  c.max_in_flight = pc->max_in_flight;
  uint32_t count = pc->count;
  if (pc->meddle) {
    c.on_op = cancel_some;
    c.data = &count;
  }
  run r;
  test_loop_init(&r.t);
  r.batch = test_loop_create(&r.t, &c, NULL);
  free(durations); /* the batch has its copy */
  reader rd = {.batch = iob_batch_ref(r.batch),
               .count = pc->count,
               .max_in_flight = pc->max_in_flight};
  atomic_init(&rd.stop, false);
  uv_thread_t tid;
  assert_code(uv_thread_create(&tid, read_progress, &rd), 0);
  uv_sleep(5); /* it reads the batch before it starts too */
  test_loop_start_created(&r.t, r.batch);
  if (pc->meddle)
    test_loop_at(&r.t, 150, cancel_now, r.batch);
  r.t0 = uv_hrtime();
  finish_run(&r);
  uv_sleep(5); /* and after it ended */
  atomic_store(&rd.stop, true);
  assert_code(uv_thread_join(&tid), 0);
  print_message("      %s: %u operations, %lu readings in %.0f ms\n",
                iob_style_name(pc->style), pc->count, rd.reads, r.ms);
  assert_read_well(&rd);
  iob_progress p;
  assert_code(iob_batch_progress(r.batch, &p), 0);
  assert_int_equal(p.done, pc->count);
  assert_int_equal(p.failed, counts_of(&r)->failed);
  end_run(&r);
}

static void
progress_read_in_a_tight_loop_from_another_thread_adds_up(void **state) {
  const progress_case cases[] = {
      {&iob_style_loop, 20000, 500, 30, false},
      {&iob_style_sequential, 20000, 0, 0, false},
      {&iob_style_pool, 5000, 0, 1, false},
      {&iob_style_threads, 2000, 16, 2, false},
      {&iob_style_workers, 5000, 8, 1, false},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
    progress_case_run(&cases[k]);
}

static void progress_adds_up_through_cancels_of_one_and_of_all(void **st) {
  const progress_case cases[] = {
      {&iob_style_loop, 20000, 300, 40, true},
      {&iob_style_pool, 20000, 64, 2, true},
      {&iob_style_threads, 20000, 16, 2, true},
      {&iob_style_workers, 20000, 16, 2, true},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
    progress_case_run(&cases[k]);
}

/* ---- references --------------------------------------------------------- */

typedef struct holder {
  iob_batch *batch; /* the holder's own reference */
  uv_sem_t owner_freed;
  unsigned cancel_after_ms; /* 0: no cancel while it runs */
  int ret_running;
  int ret_cancel, ret_async, ret_progress, ret_report, ret_outcome;
  iob_progress progress;
  iob_report report;
  const iob_record *records;
  uint32_t nrecords;
} holder;

static void hold(void *arg) {
  holder *h = arg;
  if (h->cancel_after_ms != 0) {
    uv_sleep(h->cancel_after_ms);
    h->ret_running = iob_batch_cancel(h->batch);
  }
  uv_sem_wait(&h->owner_freed);
  /* The owner's reference is gone; this one keeps the memory. */
  h->ret_cancel = iob_batch_cancel(h->batch);
  h->ret_async = iob_batch_cancel_async(h->batch);
  h->ret_progress = iob_batch_progress(h->batch, &h->progress);
  h->ret_report = iob_batch_report(h->batch, &h->report);
  iob_outcome o;
  h->ret_outcome = iob_batch_outcome(h->batch, 0, &o);
  h->records = iob_batch_records(h->batch, &h->nrecords);
  h->nrecords = h->records != NULL ? h->nrecords : 0;
  iob_batch_unref(h->batch); /* the last: frees it */
}

static void free_in_the_callback(iob_batch *batch, int status) {
  (void)status;
  assert_code(iob_batch_free(batch), 0);
}

static void a_thread_holding_a_reference_outlives_the_owners_free(void **s) {
  const iob_style *style;
  for (int cancel = 0; cancel < 2; cancel++) {
    for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
      test_loop t;
      test_loop_init(&t);
      iob_config c = config_of(style, 6, 200);
      c.max_in_flight = 3;
      /* The owner frees the batch in its callback. */
      iob_batch *b = test_loop_start(&t, &c, free_in_the_callback);
      holder h = {.batch = iob_batch_ref(b),
                  .cancel_after_ms = cancel ? 50 : 0,
                  .ret_running = 1};
      assert_code(uv_sem_init(&h.owner_freed, 0), 0);
      uv_thread_t tid;
      assert_code(uv_thread_create(&tid, hold, &h), 0);
      test_loop_run(&t);
      int status = t.batches[0].counts.batch_status;
      uv_sem_post(&h.owner_freed);
      assert_code(uv_thread_join(&tid), 0);
      uv_sem_destroy(&h.owner_freed);
      test_loop_close(&t);
      if (cancel) {
        assert_int_equal(h.ret_running, 0);
        assert_code(status, IOB_ECANCELED);
      } else {
        assert_int_equal(status, 0);
      }
      assert_int_equal(h.ret_cancel, 0);
      assert_int_equal(h.ret_async, 0);
      assert_int_equal(h.ret_progress, 0);
      assert_int_equal(h.progress.done, 6);
      assert_int_equal(h.progress.waiting + h.progress.in_flight, 0);
      assert_int_equal(h.ret_report, 0);
      assert_int_equal(h.report.status, status); /* the cancel came late */
      assert_int_equal(h.ret_outcome, 0);
      assert_int_equal(h.nrecords, 6);
    }
  }
}

static void drop(void *arg) { iob_batch_unref(arg); }

static void references_dropped_in_any_order_free_the_batch_once(void **s) {
  assert_null(iob_batch_ref(NULL));
  iob_batch_unref(NULL); /* a no-op */

  /* Never started: the holder drops its reference first, then the
   * owner's free frees it (ASan and valgrind see a leak otherwise). */
  iob_config c = config_of(&iob_style_loop, 3, 10);
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  assert_ptr_equal(iob_batch_ref(b), b);
  uv_thread_t tid;
  assert_code(uv_thread_create(&tid, drop, b), 0);
  assert_code(uv_thread_join(&tid), 0);
  assert_code(iob_batch_free(b), 0);

  /* Never started: the owner frees first, the holder's unref frees it. */
  assert_code(iob_batch_create(&b, &c), 0);
  iob_batch_ref(b);
  assert_code(iob_batch_free(b), 0);
  assert_code(uv_thread_create(&tid, drop, b), 0);
  assert_code(uv_thread_join(&tid), 0);

  /* Running, with references besides the owner's: still not freeable. */
  test_loop t;
  test_loop_init(&t);
  b = test_loop_start(&t, &c, NULL);
  iob_batch_ref(b);
  iob_batch_ref(b);
  assert_code(iob_batch_free(b), IOB_EBUSY);
  iob_batch_unref(b);
  assert_code(iob_batch_free(b), IOB_EBUSY);
  test_loop_run(&t);
  test_loop_close(&t);
  assert_code(iob_batch_free(b), 0);
  iob_batch_unref(b); /* the last */
}

/* Threads that each hold a reference cancel and read the batch in a tight
 * loop while it runs and ends, then drop their references; the owner
 * frees it in its callback. Whoever drops last frees it. */
typedef struct crowd_member {
  iob_batch *batch;
  uint32_t count;
  atomic_bool *go;
  int cancels;
  bool bad;
} crowd_member;

static void mill_about(void *arg) {
  crowd_member *m = arg;
  while (!atomic_load(m->go))
    uv_sleep(0);
  for (;;) {
    iob_progress p;
    if (iob_batch_progress(m->batch, &p) != 0 ||
        p.waiting + p.in_flight + p.done != m->count)
      m->bad = true;
    if (p.done == m->count)
      break;
    if (p.done > m->count / 2 && m->cancels++ == 0 &&
        iob_batch_cancel(m->batch) != 0)
      m->bad = true;
    uv_sleep(0);
  }
  iob_batch_unref(m->batch);
}

static void threads_with_references_cancel_and_read_until_it_ends(void **s) {
  const iob_style *style;
  for (int round = 0; round < 5; round++) {
    for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
      test_loop t;
      test_loop_init(&t);
      iob_config c = config_of(style, 40, 1);
      c.max_in_flight = 8;
      iob_batch *b = test_loop_start(&t, &c, free_in_the_callback);
      atomic_bool go;
      atomic_init(&go, false);
      crowd_member m[4];
      uv_thread_t tid[4];
      for (int j = 0; j < 4; j++) {
        m[j] =
            (crowd_member){.batch = iob_batch_ref(b), .count = 40, .go = &go};
        assert_code(uv_thread_create(&tid[j], mill_about, &m[j]), 0);
      }
      atomic_store(&go, true);
      test_loop_run(&t);
      for (int j = 0; j < 4; j++) {
        assert_code(uv_thread_join(&tid[j]), 0);
        assert_false(m[j].bad);
      }
      test_loop_close(&t);
    }
  }
}

/* ---- the batch's deadline ----------------------------------------------- */

/* `deadline_ms` cuts the batch short: waits that end before it end with 0,
 * what has not settled then gets IOB_ECANCELED, unless it is a wait
 * already running on a thread, which finishes (with 0); the batch ends
 * with IOB_ETIMEDOUT. */
static double assert_timed_out(run *r, uint32_t count) {
  assert_code(counts_of(r)->batch_status, IOB_ETIMEDOUT);
  iob_report rep;
  assert_code(iob_batch_report(r->batch, &rep), 0);
  assert_code(rep.status, IOB_ETIMEDOUT);
  assert_int_equal(rep.count, count);
  return MS(rep.elapsed_ns); /* on the batch's clock, from its start */
}

static void a_batch_past_its_deadline_ends_timed_out_on_the_loop(void **s) {
  /* Half end at 50 ms, half would take 5 s. */
  uint32_t durations[10] = {50, 5000, 50, 5000, 50, 5000, 50, 5000, 50, 5000};
  iob_config c = config_of(&iob_style_loop, 10, 0);
  c.durations_ms = durations;
  c.deadline_ms = 300;
  run r;
  start_run(&r, &c);
  finish_run(&r);
  double elapsed = assert_timed_out(&r, 10);
  const iob_record *rec = records_of(&r);
  for (int i = 0; i < 10; i++) {
    if (durations[i] == 50) {
      assert_int_equal(rec[i].status, 0);
    } else {
      assert_code(rec[i].status, IOB_ECANCELED);
      assert_ms_between(MS(rec[i].finished_ns), 299, 800);
    }
  }
  assert_ms_between(elapsed, 299, 800);
  assert_ms_below(r.ms, 800);
  end_run(&r);

  /* Sequential: three end in turn, the fourth is cut short, and the
   * rest never start. */
  uint32_t seq[6] = {50, 50, 50, 5000, 50, 50};
  c = config_of(&iob_style_sequential, 6, 0);
  c.durations_ms = seq;
  c.deadline_ms = 300;
  start_run(&r, &c);
  finish_run(&r);
  elapsed = assert_timed_out(&r, 6);
  rec = records_of(&r);
  for (int i = 0; i < 3; i++)
    assert_int_equal(rec[i].status, 0);
  assert_code(rec[3].status, IOB_ECANCELED);
  assert_cmp(rec[3].finished_ns, >, rec[3].started_ns); /* it had started */
  for (int i = 4; i < 6; i++) {
    assert_code(rec[i].status, IOB_ECANCELED);
    assert_cmp(rec[i].started_ns, ==, rec[i].finished_ns);
  }
  assert_ms_between(elapsed, 299, 800);
  assert_ms_below(r.ms, 800);
  end_run(&r);
}

static void a_batch_past_its_deadline_ends_timed_out_on_threads(void **s) {
  const iob_style *styles[] = {&iob_style_pool, &iob_style_threads,
                               &iob_style_workers};
  for (int k = 0; k < 3; k++) {
    /* Waits of 400 ms, on every thread the style has and more; the
     * deadline comes at 150 ms, while the first ones run. */
    iob_config c = config_of(styles[k], 10, 400);
    if (styles[k] == &iob_style_pool)
      c.count = iob_pool_size() + 4;
    else
      c.max_in_flight = 3;
    c.deadline_ms = 150;
    run r;
    start_run(&r, &c);
    finish_run(&r);
    double elapsed = assert_timed_out(&r, c.count);
    const iob_record *rec = records_of(&r);
    uint32_t finished = 0, cancelled = 0;
    for (uint32_t i = 0; i < c.count; i++) {
      if (rec[i].status == 0) { /* running at the deadline: finished */
        finished++;
        assert_ms_at_least(MS(rec[i].finished_ns - rec[i].started_ns), 399);
      } else {
        assert_code(rec[i].status, IOB_ECANCELED);
        cancelled++;
      }
    }
    assert_cmp(finished, >=, 1);
    assert_cmp(cancelled, >=, 4);
    if (styles[k] != &iob_style_pool) /* three at a time, all began */
      assert_int_equal(finished, 3);
    assert_int_equal(finished + cancelled, c.count);
    assert_ms_between(elapsed, 399, 1500);
    assert_ms_below(r.ms, 1500);
    end_run(&r);

    /* A run() that asks iob_op_stopping() gives up at the deadline. */
    c = config_of(styles[k], 4, 5000);
    c.kind = &test_kind_patient;
    c.deadline_ms = 150;
    start_run(&r, &c);
    finish_run(&r);
    elapsed = assert_timed_out(&r, 4);
    rec = records_of(&r);
    for (int i = 0; i < 4; i++)
      assert_code(rec[i].status, IOB_ECANCELED);
    assert_ms_between(elapsed, 149, 1000);
    assert_ms_below(r.ms, 1000);
    end_run(&r);
  }
}

static void a_batch_that_ends_before_its_deadline_is_not_timed_out(void **s) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, 4, 20);
    c.deadline_ms = 2000;
    run r;
    start_run(&r, &c);
    finish_run(&r); /* the deadline's timer does not hold the loop */
    assert_int_equal(counts_of(&r)->batch_status, 0);
    assert_int_equal(counts_of(&r)->failed, 0);
    assert_ms_below(r.ms, 1000);
    end_run(&r);
  }
}

static void a_cancel_before_the_deadline_keeps_its_own_status(void **s) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = cut_short_config(style);
    c.deadline_ms = 200;
    run r;
    start_run(&r, &c);
    test_loop_at(&r.t, 50, cancel_now, r.batch);
    finish_run(&r);
    assert_cancelled(&r, &c, cut_short_cancelled_min(&c));
    end_run(&r);
  }
}

/* On the loop styles run() blocks the loop, so the deadline's timer fires
 * between two of them: the one running finishes, the rest never start. */
static void a_deadline_falls_between_blocking_runs_on_the_loop(void **s) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_sequential};
  for (int k = 0; k < 2; k++) {
    iob_config c = config_of(styles[k], 4, 200);
    c.kind = &test_kind_patient;
    c.deadline_ms = 100;
    run r;
    start_run(&r, &c);
    finish_run(&r);
    double elapsed = assert_timed_out(&r, 4);
    const iob_record *rec = records_of(&r);
    assert_int_equal(rec[0].status, 0);
    for (int i = 1; i < 4; i++)
      assert_code(rec[i].status, IOB_ECANCELED);
    assert_ms_between(elapsed, 199, 1000);
    assert_ms_below(r.ms, 1000);
    end_run(&r);
  }
}

static void a_deadline_out_of_range_is_refused(void **state) {
  iob_config c = config_of(&iob_style_loop, 2, 10);
  iob_batch *b = (iob_batch *)&c; /* must become NULL */
  c.deadline_ms = IOB_DURATION_MAX_MS + 1;
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  assert_null(b);
  c.deadline_ms = UINT64_MAX;
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  /* The longest is fine, and does not hold the loop once cancelled. */
  c.deadline_ms = IOB_DURATION_MAX_MS;
  c.duration_ms = 5000;
  run r;
  start_run(&r, &c);
  test_loop_at(&r.t, 20, cancel_now, r.batch);
  finish_run(&r);
  assert_code(counts_of(&r)->batch_status, IOB_ECANCELED);
  assert_ms_below(r.ms, 1000);
  end_run(&r);
}

/* Every reference of the application's may go while the batch runs (the
 * creator's before it started, another thread's in the middle): the run
 * keeps its own until its callback has returned, and that frees it
 * (ASan and valgrind watch for the use after free and the leak). */
static int orphan_calls, orphan_status;

static void orphan_done(iob_batch *batch, int status) {
  (void)batch;
  orphan_calls++;
  orphan_status = status;
}

static void drop_last_reference(uv_timer_t *timer) {
  iob_batch_unref(timer->data);
  uv_close((uv_handle_t *)timer, NULL);
}

static void
a_batch_whose_references_all_go_while_it_runs_ends_whole(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    orphan_calls = 0;
    uv_loop_t loop;
    assert_code(uv_loop_init(&loop), 0);
    iob_config c = config_of(style, 3, 50);
    iob_batch *b;
    assert_code(iob_batch_create(&b, &c), 0);
    assert_ptr_equal(iob_batch_ref(b), b);
    assert_code(iob_batch_free(b), 0); /* the creator's, unstarted */
    assert_code(iob_batch_start(b, &loop, orphan_done), 0);
    uv_timer_t timer;
    assert_code(uv_timer_init(&loop, &timer), 0);
    timer.data = b;
    assert_code(uv_timer_start(&timer, drop_last_reference, 20, 0), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(orphan_calls, 1);
    assert_int_equal(orphan_status, 0);
    assert_code(uv_loop_close(&loop), 0);
  }
  assert_code(iob_batch_cancel_async(NULL), IOB_EINVAL);
  assert_null(iob_batch_ref(NULL));
  iob_batch_unref(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          a_batch_whose_references_all_go_while_it_runs_ends_whole),
      cmocka_unit_test(
          a_cancel_from_another_thread_ends_the_batch_in_every_style),
      cmocka_unit_test(
          a_cancel_asked_from_another_thread_before_start_starts_nothing),
      cmocka_unit_test_setup_teardown(
          a_cancel_from_a_signal_handler_ends_the_batch_in_every_style,
          catch_sigusr1, release_sigusr1),
      cmocka_unit_test_setup_teardown(
          signals_that_cancel_while_batches_start_and_end_are_harmless,
          catch_sigusr1, release_sigusr1),
      cmocka_unit_test(
          progress_read_in_a_tight_loop_from_another_thread_adds_up),
      cmocka_unit_test(progress_adds_up_through_cancels_of_one_and_of_all),
      cmocka_unit_test(a_thread_holding_a_reference_outlives_the_owners_free),
      cmocka_unit_test(references_dropped_in_any_order_free_the_batch_once),
      cmocka_unit_test(threads_with_references_cancel_and_read_until_it_ends),
      cmocka_unit_test(a_batch_past_its_deadline_ends_timed_out_on_the_loop),
      cmocka_unit_test(a_batch_past_its_deadline_ends_timed_out_on_threads),
      cmocka_unit_test(a_batch_that_ends_before_its_deadline_is_not_timed_out),
      cmocka_unit_test(a_cancel_before_the_deadline_keeps_its_own_status),
      cmocka_unit_test(a_deadline_falls_between_blocking_runs_on_the_loop),
      cmocka_unit_test(a_deadline_out_of_range_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
