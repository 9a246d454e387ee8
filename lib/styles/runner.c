/* The one loop engine (runner.h): a wait is a deadline in the runner's
 * timer queue (core/deadlines.h), which one libuv timer serves; waits
 * that end in the same loop millisecond end in one timer callback.
 * Deadlines are on the records' own clock (ns since the batch started),
 * not on the loop's millisecond clock, so that every record shows a wait
 * at least as long as asked for: the timer is a wake-up call, and when it
 * fires early the runner sleeps again for what remains.
 *
 * A kind with start() runs its own I/O and calls iob_op_done(); its
 * timeout is a deadline in the same queue. A kind with only run() blocks
 * the loop: its operations are due at once, and run back to back for at
 * most a slice, after which the style hears what was asked of it
 * (a cancel above all) or the loop gets its turn. */
#include <stdlib.h>

#include "runner.h"

#define NONE UINT32_MAX
/* How long one timer callback goes on with run()s, or with waits that
 * come due while it runs (a chain of short waits, each launched by the
 * one before), before others get a turn. */
#define SLICE_NS 1000000

/* Where a start() operation is (its job's phase). */
enum { JOB_NEW = 0, JOB_STARTING, JOB_STARTED, JOB_BACKOFF, JOB_SETTLED };

/* A start() operation waiting in the runner's heap: backing off until
 * its next attempt (tag 0); hedged, until a further attempt may start
 * beside the others (tag: 1 + its op.attempt, so that one left from an
 * earlier try of a retried operation is passed over); or until its
 * attempt's own timeout (ATTEMPT | op.attempt). */
#define ATTEMPT 0x80000000u
typedef struct iob__backoff {
  uint64_t due;
  uint32_t i;
  uint32_t tag;
} iob__backoff;

static void ring_init(iob__ring *r) { r->prev = r->next = r; }

static void ring_add(iob__ring *head, iob__ring *r) {
  r->prev = head->prev;
  r->next = head;
  head->prev->next = r;
  head->prev = r;
}

static void ring_remove(iob__ring *r) {
  r->prev->next = r->next;
  r->next->prev = r->prev;
  ring_init(r);
}

static uint64_t stamp(iob__runner *r) {
  return iob__clock_read(r->clock, r->b->t0);
}

static void stamp_fresh(iob__runner *r) { iob__clock_fresh(r->clock); }

static iob__job *job_of(const iob__runner *r, iob__slot *s) {
  return iob__slot_style(r->b, s);
}

/* Is operation i still this runner's: not over (cancelled alone, ended)? */
static bool holds(const iob__runner *r, uint32_t i) {
  int32_t status = r->hopping ? iob__hop_at(r->b, r->hops, i)->status
                              : iob__rec(r->b, i)->status;
  return status == IOB__IN_FLIGHT;
}

/* Operation i is over: its style takes it. False once the batch ended. */
static bool over(iob__runner *r, uint32_t i, int status) {
  if (r->hooks->over(r, i, status))
    r->ended = true;
  return !r->ended;
}

/* The earliest deadline or end of a backoff; UINT64_MAX: none. */
static uint64_t first_due(const iob__runner *r) {
  uint64_t first = iob__deadlines_first(&r->queue);
  if (r->nbackoffs > 0 && r->backoffs[0].due < first)
    first = r->backoffs[0].due;
  return first;
}

/* Sleep until the earliest deadline, unless set to wake by then. */
static void arm(iob__runner *r) {
  uint64_t first = first_due(r);
  if (first == UINT64_MAX)
    return;
  if (first >= r->armed && uv_is_active((uv_handle_t *)r->timer))
    return;
  uint64_t now = iob__now(r->b);
  uint64_t sleep_ms = first > now ? (first - now + 999999) / 1000000 : 0;
  r->armed = first;
  uv_update_time(r->loop); /* the timer counts from the loop's clock */
  uv_timer_start(r->timer, r->hooks->on_timer, sleep_ms, 0);
}

/* Operation i, waiting (or due to run), settles as cancelled now; its
 * deadline is skipped when it comes out of the queue. */
static bool cancel_waiting(iob__runner *r, uint32_t i) {
  iob_record *rec = iob__rec(r->b, i);
  uint64_t now = stamp(r);
  if (!(iob__kind_of(r->b, i)->flags & IOB_KIND_WAITS))
    rec->started_ns = now; /* due to run, it never ran */
  rec->finished_ns = now;
  return over(r, i, IOB_ECANCELED);
}

/* ---- start() operations --------------------------------------------------- */

/* ---- backoffs -------------------------------------------------------------- */

static void backoff_swap(iob__backoff *h, uint32_t a, uint32_t b) {
  iob__backoff t = h[a];
  h[a] = h[b];
  h[b] = t;
}

/* Operation i waits until `due`: false without the memory. */
static bool backoff_push(iob__runner *r, uint32_t i, uint64_t due,
                         uint32_t tag) {
  if (r->nbackoffs == r->backoffs_cap) {
    uint32_t cap = r->backoffs_cap ? 2 * r->backoffs_cap : 16;
    iob__backoff *h = realloc(r->backoffs, cap * sizeof(*h));
    if (h == NULL)
      return false;
    r->backoffs = h;
    r->backoffs_cap = cap;
  }
  iob__backoff *h = r->backoffs;
  uint32_t k = r->nbackoffs++;
  h[k] = (iob__backoff){due, i, tag};
  for (; k > 0 && h[(k - 1) / 2].due > h[k].due; k = (k - 1) / 2)
    backoff_swap(h, k, (k - 1) / 2);
  return true;
}

/* The operation whose wait ended by `now`, out of the heap (*tag its
 * tag); NONE. */
static uint32_t backoff_pop(iob__runner *r, uint64_t now, uint32_t *tag) {
  iob__backoff *h = r->backoffs;
  if (r->nbackoffs == 0 || h[0].due > now)
    return NONE;
  uint32_t i = h[0].i, n = --r->nbackoffs, k = 0;
  *tag = h[0].tag;
  h[0] = h[n];
  for (;;) {
    uint32_t c = 2 * k + 1;
    if (c >= n)
      break;
    if (c + 1 < n && h[c + 1].due < h[c].due)
      c++;
    if (h[k].due <= h[c].due)
      break;
    backoff_swap(h, k, c);
    k = c;
  }
  return i;
}

/* The attempt of start() operation s ended with `status`: true if it
 * backs off to run again (iob_retry), staying in the ring, so that a
 * cancel finds it. */
static bool retry_later(iob__runner *r, iob__slot *s, int status) {
  iob_batch *b = r->b;
  if (iob__retry_of(b, s->op.index) == NULL)
    return false;
  uint64_t delay = iob__retry_after(b, s, status);
  if (delay == IOB__NO_RETRY ||
      !backoff_push(r, s->op.index, iob__now(b) + delay, 0))
    return false;
  if (!job_of(r, s)->hedged) /* (a hedged one's attempts note themselves) */
    iob__attempt_note(b, s, s->began_ns, iob__rec(b, s->op.index)->finished_ns,
                      status, false);
  job_of(r, s)->phase = JOB_BACKOFF;
  if (!r->in_timer)
    arm(r);
  return true;
}

static void start_job(iob__runner *r, uint32_t i);

/* Its backoff is over: operation i runs again, unless it has settled
 * (cancelled) meanwhile. */
static void retry_now(iob__runner *r, uint32_t i) {
  iob_batch *b = r->b;
  if (!holds(r, i))
    return;
  iob__slot *s = iob__slot_find(b, i);
  iob__job *job = job_of(r, s);
  if (job->phase != JOB_BACKOFF)
    return;
  iob__retry_reset(b, s, !job->hedged);
  ring_remove(&job->started);
  *job = (iob__job){.phase = JOB_NEW};
  ring_init(&job->started);
  start_job(r, i);
}

/* A start() operation is over: its kind's cleanup, its outcome kept, then
 * its style takes it. Told to stop, it is recorded with the reason. A
 * failed attempt may back off and run again instead. */
static void settle_job(iob__runner *r, iob__slot *s, int status, bool begun) {
  iob__job *job = job_of(r, s);
  if (job->attempt_stop) { /* its attempt's timeout, unless stopped since */
    job->attempt_stop = false;
    atomic_store(&s->stop, job->final_stop);
    if (job->final_stop == 0)
      status = IOB_ETIMEDOUT;
  }
  int stop = atomic_load_explicit(&s->stop, memory_order_relaxed);
  if (stop != 0 && begun)
    status = stop;
  if (job->tries != NULL) { /* its attempts ran in slots of their own */
    free(job->tries);
    job->tries = NULL;
    job->hedged = true;
  }
  if (stop == 0 && retry_later(r, s, status))
    return;
  /* Its last attempt (not one noted already, cancelled in its backoff). */
  if (s->op.attempt > 0 && !job->hedged && job->phase != JOB_BACKOFF)
    iob__attempt_note(r->b, s, s->began_ns,
                      iob__rec(r->b, s->op.index)->finished_ns, status, false);
  ring_remove(&job->started);
  job->phase = JOB_SETTLED;
  iob__slot_close(r->b, s, !job->hedged);
  over(r, s->op.index, status);
}

/* ---- hedged attempts (iob_hedge) ----------------------------------------- */

/* A hedged operation's attempts have all ended: it settles, with the
 * winner's status or the last failure's (or, stopped, the reason). Not
 * while stop_tries() walks them. */
static void tries_over(iob__runner *r, iob__slot *main, iob__tries *h) {
  if (h->running > 0 || h->busy > 0)
    return;
  iob__rec(r->b, main->op.index)->finished_ns = stamp(r);
  settle_job(r, main, h->status, true);
}

/* Tell every attempt still running to stop, each once. */
static void stop_tries(iob__runner *r, iob__slot *main, iob__tries *h,
                       int why) {
  h->busy++;
  for (uint32_t k = 0; k < h->started; k++) {
    iob__slot *t = h->at[k];
    int none = 0;
    if (t != NULL && atomic_compare_exchange_strong(&t->stop, &none, why) &&
        !t->starting && t->kind->stop != NULL)
      t->kind->stop(&t->op);
  }
  h->busy--;
  tries_over(r, main, h);
}

/* Attempt t has ended with `status`: the first success wins (its outcome
 * becomes the operation's, and the others are stopped); until one does,
 * the latest failure speaks for the operation. */
static void try_over(iob__runner *r, iob__slot *t, int status) {
  iob__tries *h = t->tries;
  iob__slot *main = t->main;
  uint32_t k = 0;
  while (h->at[k] != t)
    k++;
  int stop = atomic_load(&t->stop);
  bool stopped = stop != 0;
  bool counts = !h->decided && !stopped;
  /* (Read afresh: one that failed inside its start() ended now, not at
   * the burst's stamp.) */
  iob__attempt_note(r->b, main, h->started_at[k], iob__now(r->b),
                    stopped ? stop : status, k > 0);
  if (counts) {
    h->status = status;
    h->decided = status == 0;
  }
  if (counts && status == 0) {
    main->hedge_won = k > 0;
    iob__hedge_note(r->b, iob__hedge_of(r->b, main->op.index),
                    iob__now(r->b) - h->started_at[k]);
  }
  h->at[k] = NULL;
  h->running--;
  iob__try_free(t, counts);
  if (counts && status == 0)
    stop_tries(r, main, h, IOB_ECANCELED);
  else
    tries_over(r, main, h);
}

/* Start a further attempt of the hedged operation in slot main. It may
 * end, and the operation settle, before this returns. False if there
 * was no memory for it (the first: the operation fails). */
static bool try_start(iob__runner *r, iob__slot *main, iob__tries *h) {
  iob__slot *t = iob__try_make(main);
  if (t == NULL) {
    if (h->started == 0) {
      h->status = IOB_ENOMEM;
      tries_over(r, main, h);
    }
    return false;
  }
  t->tries = h;
  /* (The first attempt began when its record says.) */
  h->started_at[h->started] = h->started == 0 && main->op.attempt == 0
                                  ? iob__rec(r->b, main->op.index)->started_ns
                                  : iob__now(r->b);
  h->at[h->started++] = t;
  h->running++;
  if (h->started > 1)
    main->hedges++;
  t->starting = true;
  int err = iob__kind_status(t->kind->start(&t->op));
  t->starting = false;
  if (err != 0 || t->settled_early) {
    try_over(r, t, err != 0 ? err : t->early_status);
    return true;
  }
  if (atomic_load(&t->stop) != 0 && t->kind->stop != NULL)
    t->kind->stop(&t->op); /* told to stop inside its start(): now */
  return true;
}

/* Is operation i, in slot s, still the hedged one whose attempts are h? */
static bool still_tries(iob__runner *r, uint32_t i, iob__slot *s,
                        iob__tries *h) {
  return holds(r, i) && iob__slot_find(r->b, i) == s &&
         job_of(r, s)->tries == h;
}

/* When the next attempt of operation i may start beside the others. */
static void hedge_later(iob__runner *r, iob__slot *s) {
  uint64_t due = iob__now(r->b) +
                 iob__hedge_delay_ns(r->b, iob__hedge_of(r->b, s->op.index));
  if (backoff_push(r, s->op.index, due, 1 + s->op.attempt) && !r->in_timer)
    arm(r);
}

/* Begin hedged operation s with its first attempt. 0, or IOB_ENOMEM. */
static int hedge_begin(iob__runner *r, iob__slot *s) {
  iob_batch *b = r->b;
  iob__job *job = job_of(r, s);
  job->hedged = true; /* its own state never runs */
  iob__tries *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return IOB_ENOMEM;
  job->tries = h;
  const iob_hedge *p = iob__hedge_of(b, s->op.index);
  if (p->budget != NULL)
    iob__budget_pass(p->budget, true, false);
  uint32_t i = s->op.index;
  try_start(r, s, h);
  if (still_tries(r, i, s, h))
    hedge_later(r, s);
  return 0;
}

/* A further attempt of operation i may start (`tag`: its try's, 1 +
 * op.attempt), unless it is over, one won, it has its most, it is told
 * to stop, or the budget says no. */
static void hedge_due(iob__runner *r, uint32_t i, uint32_t tag) {
  iob_batch *b = r->b;
  if (!holds(r, i))
    return;
  iob__slot *s = iob__slot_find(b, i);
  iob__job *job = job_of(r, s);
  iob__tries *h = job->tries;
  const iob_hedge *p = iob__hedge_of(b, i);
  if (h == NULL || job->phase != JOB_STARTED || s->op.attempt + 1 != tag ||
      h->decided || h->started >= p->attempts || atomic_load(&s->stop) != 0)
    return;
  if ((p->budget != NULL && !iob__budget_pass(p->budget, false, true)) ||
      iob__make_room_to_keep(b) != 0)
    return;
  s->has_outcome = true; /* its count of hedges, at least */
  /* (Without memory for it, no more: asking again at once would spin.) */
  if (try_start(r, s, h) && still_tries(r, i, s, h) && h->started < p->attempts)
    hedge_later(r, s);
}

/* Operation i's attempt `a` has run past its own timeout: stopped as
 * timed out, and then retried if it may be (settle_job()). */
static void attempt_due(iob__runner *r, uint32_t i, uint32_t a) {
  if (!holds(r, i))
    return;
  iob__slot *s = iob__slot_find(r->b, i);
  iob__job *job = job_of(r, s);
  int none = 0;
  if (job->phase != JOB_STARTED || s->op.attempt != a || job->tries != NULL ||
      !atomic_compare_exchange_strong(&s->stop, &none, IOB_ETIMEDOUT))
    return; /* over, another attempt, hedged, or stopping already */
  job->attempt_stop = true; /* first: its stop() may settle it at once */
  job->final_stop = 0;
  if (!job->stopped) {
    job->stopped = true;
    if (s->kind->stop != NULL)
      s->kind->stop(&s->op);
  }
}

/* iob_op_done() of an attempt. */
static int try_done(iob__runner *r, iob__slot *t, int status) {
  if (t->starting) { /* try_start() goes on once its start() returns */
    t->settled_early = true;
    t->early_status = status;
    return 0;
  }
  stamp_fresh(r); /* called from the kind's own callbacks */
  try_over(r, t, status);
  return 0;
}

/* Tell a started operation to stop, once, with `why` unless it was told
 * another reason first. Inside its start(), it is told once that
 * returns. */
static void stop_job(iob__runner *r, iob__slot *s, int why) {
  iob__job *job = job_of(r, s);
  if (job->attempt_stop && job->final_stop == 0)
    job->final_stop = why; /* stopped for good, not only this attempt */
  int none = 0;
  atomic_compare_exchange_strong(&s->stop, &none, why);
  if (job->phase == JOB_BACKOFF) { /* between attempts: over now */
    iob__rec(r->b, s->op.index)->finished_ns = stamp(r);
    settle_job(r, s, atomic_load(&s->stop), true);
    return;
  }
  if (job->phase != JOB_STARTED || job->stopped)
    return;
  job->stopped = true;
  if (job->tries != NULL)
    stop_tries(r, s, job->tries, atomic_load(&s->stop));
  else if (s->kind->stop != NULL)
    s->kind->stop(&s->op);
}

void iob__runner_claim(iob_batch *b, uint32_t i) {
  if (!iob__is_async(b, i))
    return;
  iob__slot *s = iob__slot_take(b, i);
  s->phase = IOB__RUNNING;
  *(iob__job *)iob__slot_style(b, s) = (iob__job){.phase = JOB_NEW};
}

/* Begin operation i with its kind's start(), on this loop. */
static void start_job(iob__runner *r, uint32_t i) {
  iob_batch *b = r->b;
  iob__slot *s = iob__slot_find(b, i);
  iob__job *job = job_of(r, s);
  job->phase = JOB_STARTING;
  ring_add(&r->started, &job->started);
  if (iob__retry_of(b, i) != NULL)
    iob__attempt_began(b, s);
  /* Its kind's state on this loop, opened for it if it is the first; and
   * its timeout, once (a retry's is its first attempt's): its place in
   * the queue of an open batch first, so that nothing can fail after;
   * queued before start(), so that it holds for the retries of an
   * attempt that fails inside start(). */
  int err = r->kinds != NULL ? iob__kinds_open(b, r->kinds, s->kind,
                                               s->op.target, &s->op.shared)
                             : 0;
  bool timed = b->config.timeout_ms != 0 && !s->timed;
  if (err == 0 && timed && b->open)
    err = iob__deadlines_reserve(&r->queue, iob__timeout_ns(b));
  if (err == 0 && timed) {
    s->timed = true;
    if (iob__deadlines_add(&r->queue, i, iob__timeout_ns(b)) && !r->in_timer)
      arm(r);
  }
  if (err == 0)
    err = iob__hedge_of(b, i) != NULL
              ? hedge_begin(r, s)
              : iob__kind_status(s->kind->start(&s->op));
  if (job->phase != JOB_STARTING)
    return; /* it settled inside start() */
  if (err != 0) {
    iob__rec(b, i)->finished_ns = stamp(r);
    settle_job(r, s, err, false);
    return;
  }
  job->phase = JOB_STARTED;
  int stop = atomic_load(&s->stop);
  if (stop != 0) { /* cancelled from inside start() */
    stop_job(r, s, stop);
    return;
  }
  const iob_retry *p = iob__retry_of(b, i);
  if (p != NULL && p->attempt_timeout_ms != 0 && job->tries == NULL &&
      backoff_push(r, i,
                   iob__now(b) + (uint64_t)p->attempt_timeout_ms * 1000000,
                   ATTEMPT | s->op.attempt) &&
      !r->in_timer)
    arm(r);
}

int iob__runner_op_done(iob__runner *r, iob__slot *s, int status) {
  if (s->number == IOB__INNER_SLOT) /* (the number, which never changes) */
    return iob__inner_done(s, status);
  if (s->number == IOB__TRY_SLOT)
    return try_done(r, s, status);
  iob__job *job = job_of(r, s);
  if (job->phase != JOB_STARTING && job->phase != JOB_STARTED)
    return IOB_EINVAL;
  stamp_fresh(r); /* called from the kind's own callbacks */
  iob__rec(r->b, s->op.index)->finished_ns = stamp(r);
  settle_job(r, s, status, true);
  return 0;
}

/* ---- run() operations ----------------------------------------------------- */

/* Name operation i as the one in run(), unless the batch was cancelled:
 * under the lock, so that iob__runner_interrupt() either sees it or has
 * set `cancel` before. False: it must not run. */
static bool enter_run(iob__runner *r, uint32_t i) {
  if (r->lock != NULL)
    uv_mutex_lock(r->lock);
  bool go = !atomic_load(&r->cancel);
  if (go)
    r->running = i;
  if (r->lock != NULL)
    uv_mutex_unlock(r->lock);
  return go;
}

static void leave_run(iob__runner *r) {
  if (r->lock != NULL)
    uv_mutex_lock(r->lock);
  r->running = NONE;
  if (r->lock != NULL)
    uv_mutex_unlock(r->lock);
}

void iob__runner_interrupt(iob__runner *r, uint32_t i) {
  if (i == NONE)
    atomic_store(&r->cancel, true);
  if (r->lock != NULL)
    uv_mutex_lock(r->lock);
  if (r->running != NONE && (i == NONE || r->running == i)) {
    int none = 0;
    atomic_compare_exchange_strong(&r->run_slot->stop, &none, IOB_ECANCELED);
  }
  if (r->lock != NULL)
    uv_mutex_unlock(r->lock);
}

/* run() on this loop's thread, blocking it. */
static void run_job(iob__runner *r, uint32_t i) {
  iob_batch *b = r->b;
  iob__slot *s = r->run_slot;
  iob_record *rec = iob__rec(b, i);
  iob__slot_prepare(b, s, i); /* (which clears its stop: first) */
  s->phase = IOB__RUNNING;
  if (!enter_run(r, i)) {
    s->phase = IOB__FREE;
    cancel_waiting(r, i);
    return;
  }
  int err = r->kinds != NULL ? iob__kinds_open(b, r->kinds, s->kind,
                                               s->op.target, &s->op.shared)
                             : 0;
  if (err != 0) { /* its kind could not open on this loop */
    s->phase = IOB__FREE;
    leave_run(r);
    rec->finished_ns = iob__now(b);
    over(r, i, err);
    return;
  }
  if (!(s->kind->flags & IOB_KIND_WAITS))
    rec->started_ns = iob__now(b); /* a wait before it counts as its run */
  int status = iob__kind_status(s->kind->run(&s->op));
  rec->finished_ns = iob__now(b);
  status = iob__late(b, i, status);
  iob__slot_close(b, s, true);
  s->phase = IOB__FREE;
  leave_run(r);
  over(r, i, status);
}

/* ---- waits ------------------------------------------------------------------ */

/* Put waiting operation i in the queue, for its wait (or, a run(), its
 * turn); true if that made a new earliest deadline. An open batch's
 * queue grows first (a batch of count planned it all); without the
 * memory, the operation is over with IOB_ENOMEM. */
static bool queue_wait(iob__runner *r, uint32_t i) {
  iob_batch *b = r->b;
  uint64_t wait = iob__wait_ns(b, i);
  int err = b->open ? iob__deadlines_reserve(&r->queue, wait) : 0;
  if (err == 0)
    return iob__deadlines_add(&r->queue, i, wait);
  iob__rec(b, i)->finished_ns = stamp(r);
  over(r, i, err);
  return false;
}

/* Waits launched while the due ones settled begin now, in the order of
 * their launch (the core's, of their numbers: a range, in which start()
 * operations begun at once are passed over). False if the batch ended. */
static bool begin_pending(iob__runner *r) {
  while (r->pending != r->pending_end) {
    uint32_t from = r->pending, to = r->pending_end;
    r->pending = r->pending_end = 0;
    stamp_fresh(r);
    for (uint32_t i = from; i < to; i++) {
      if (iob__is_async(r->b, i) || !holds(r, i))
        continue; /* begun at once, or cancelled alone meanwhile */
      iob__rec(r->b, i)->started_ns = stamp(r);
      queue_wait(r, i);
      if (r->ended)
        return false;
    }
  }
  return true;
}

void iob__runner_launch(iob__runner *r, uint32_t i) {
  iob__rec(r->b, i)->started_ns = stamp(r);
  if (r->cancelling) {
    cancel_waiting(r, i);
  } else if (iob__is_async(r->b, i)) {
    start_job(r, i);
  } else if (r->in_timer) {
    if (r->pending == r->pending_end)
      r->pending = i;
    r->pending_end = i + 1;
  } else if (queue_wait(r, i)) {
    arm(r);
  }
}

/* Operation i's time in the queue is over. True if it ran a run(). */
static bool due(iob__runner *r, uint32_t i) {
  iob_batch *b = r->b;
  if (!holds(r, i))
    return false;            /* over already: cancelled alone, or settled */
  if (iob__is_async(b, i)) { /* its timeout */
    stop_job(r, iob__slot_find(b, i), IOB_ETIMEDOUT);
    return false;
  }
  if (!iob__cut_short(b, i) && iob__kind_of(b, i)->run != NULL) {
    run_job(r, i);
    return true;
  }
  iob__rec(b, i)->finished_ns = stamp(r);
  over(r, i, iob__cut_short(b, i) ? IOB_ETIMEDOUT : 0);
  return false;
}

void iob__runner_due(iob__runner *r) {
  stamp_fresh(r);
  uint64_t now = stamp(r), slice_end = now + SLICE_NS;
  r->armed = UINT64_MAX;
  r->gathering = r->in_timer = true;
  for (;;) {
    uint32_t i = iob__deadlines_pop(&r->queue, now);
    if (i == IOB__NO_ITEM) {
      uint32_t tag;
      while ((i = backoff_pop(r, now, &tag)) != NONE) {
        if (tag == 0)
          retry_now(r, i);
        else if (tag & ATTEMPT)
          attempt_due(r, i, tag & ~ATTEMPT);
        else
          hedge_due(r, i, tag);
        if (r->ended)
          return;
      }
      if (!begin_pending(r))
        return;
      /* Settling takes time: deadlines may have come meanwhile. */
      stamp_fresh(r);
      now = stamp(r);
      if (first_due(r) > now || now >= slice_end)
        break;
      continue;
    }
    bool ran = due(r, i);
    if (r->ended)
      return; /* the batch has closed the timer */
    if (ran && iob__now(r->b) >= slice_end) {
      /* A timer due again runs in the same pass of the loop, before the
       * loop polls: a queue of run()s would keep it busy. */
      if (r->hooks->between == NULL)
        break;
      r->in_timer = false;
      r->hooks->between(r);
      r->in_timer = true;
      slice_end = iob__now(r->b) + SLICE_NS;
    }
  }
  r->in_timer = false;
  if (!begin_pending(r))
    return;
  r->gathering = false;
  if (r->hooks->flush != NULL)
    r->hooks->flush(r);
  arm(r);
}

/* ---- cancels --------------------------------------------------------------- */

void iob__runner_cancel(iob__runner *r) {
  iob_batch *b = r->b;
  atomic_store(&r->cancel, true);
  r->cancelling = true;
  uv_timer_stop(r->timer);
  r->armed = UINT64_MAX;
  /* What waits: launched while due ones settled, or in the queue (a
   * start() operation's timeout is no wait: the ring's below). */
  uint32_t from = r->pending, to = r->pending_end, i;
  r->pending = r->pending_end = 0;
  for (i = from; i < to; i++)
    if (!iob__is_async(b, i) && holds(r, i) && !cancel_waiting(r, i))
      return;
  while ((i = iob__deadlines_pop(&r->queue, UINT64_MAX)) != IOB__NO_ITEM)
    if (!iob__is_async(b, i) && holds(r, i) && !cancel_waiting(r, i))
      return;
  /* What was started is told to stop. A stop() may settle other
   * operations than its own: each goes back in the ring before its
   * stop(), and the walk takes the first of what is left each time. */
  iob__ring left;
  ring_init(&left);
  if (r->started.next != &r->started) {
    left.next = r->started.next;
    left.prev = r->started.prev;
    left.next->prev = left.prev->next = &left;
    ring_init(&r->started);
  }
  while (left.next != &left && !r->ended) {
    iob__ring *at = left.next;
    ring_remove(at);
    ring_add(&r->started, at);
    iob__job *job = (iob__job *)((char *)at - offsetof(iob__job, started));
    stop_job(r, (iob__slot *)((char *)job - b->slot_style_at), IOB_ECANCELED);
  }
}

void iob__runner_cancel_op(iob__runner *r, uint32_t i) {
  if (!holds(r, i))
    return; /* over already */
  if (iob__is_async(r->b, i))
    stop_job(r, iob__slot_find(r->b, i), IOB_ECANCELED);
  else if (r->running == i) /* cancelled from inside its own run() */
    iob__runner_interrupt(r, i);
  else
    cancel_waiting(r, i);
}

/* ---- making and freeing --------------------------------------------------- */

int iob__runner_open(iob__runner *r) {
  iob_batch *b = r->b;
  const iob_kind *k = b->config.kind;
  if (r->clock == NULL)
    r->clock = &r->own_clock;
  r->armed = UINT64_MAX;
  r->running = NONE;
  ring_init(&r->started);
  atomic_init(&r->cancel, false);
  int err = iob__deadlines_plan(&r->queue, b);
  /* (An open batch's operations may be of any kind: run() ones too.) */
  if (err == 0 && (b->open || (k->start == NULL && k->run != NULL)) &&
      (r->run_slot = calloc(1, b->slot_stride)) == NULL)
    err = IOB_ENOMEM;
  if (err != 0)
    iob__runner_free(r);
  return err;
}

void iob__runner_free(iob__runner *r) {
  iob__deadlines_free(&r->queue);
  free(r->backoffs);
  r->backoffs = NULL;
  r->nbackoffs = r->backoffs_cap = 0;
  free(r->run_slot);
  r->run_slot = NULL;
}
