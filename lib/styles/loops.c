/* Loops style: an event loop per core. N threads of the batch's own each
 * run a libuv loop (a "shard"), and each shard runs its share of the
 * operations as the loop style runs all of them: waits in a timer queue
 * of its own, a kind's start() and its I/O on its loop, run() on its
 * thread. Waits cost no thread, and the computing runs on N cores.
 *
 * The batch's own loop, the caller's, only hands operations out and
 * settles them: the limit, shared limits, on_op, fail_fast, the deadline
 * and the callback stay the core's, as in every style. Each launch goes
 * to the shard with the fewest operations in flight, ties broken round
 * robin, so equal work spreads evenly and a shard slowed by longer
 * operations is given fewer.
 *
 * Between the threads, each shard has an inbox (operations handed to it),
 * a list of stop requests (iob_batch_cancel_op()) and an outbox
 * (operations it settled), lists linked through one array of `hop`s, a
 * few bytes an operation, so that handing over never allocates. One lock
 * per shard guards its lists; the other side is woken only when a list
 * goes from empty to not, and a shard gathers what settles during one of
 * its callbacks before it hands it back, so a million operations cost a
 * few thousand wake-ups.
 *
 * Who owns what: the batch's loop thread owns the records' queued time,
 * status and worker (the shard's thread number, set at launch), the
 * slots' phase and the counters; a shard owns the started and finished
 * times, and the hop's status, of the operations it holds, from taking
 * them out of its inbox until it puts them in its outbox. */
#include <stdlib.h>

#include "deadlines.h"
#include "internal.h"

#define NONE UINT32_MAX
/* How long a shard runs run()s back to back before it lets its loop see
 * a cancel or more operations. */
#define SLICE_NS 1000000

/* An operation's links and status between the threads (internal.h):
 * in an array of the style's, or an open batch's tasks. */
typedef iob__hop hop;

static inline hop *H(const iob_batch *b, hop *hops, uint32_t i) {
  return b->open ? &iob__task_at(b, i)->hop : &hops[i];
}

/* A list of operations linked through their hops. */
typedef struct op_list {
  uint32_t head, tail;
} op_list;

#define EMPTY ((op_list){NONE, NONE})

/* A ring of a shard's operations begun by start(). */
typedef struct ring {
  struct ring *prev, *next;
} ring;

/* Where a start() operation is on its shard (the shard's). */
typedef enum job_phase {
  JOB_NEW = 0,
  JOB_STARTING, /* in its kind's start() */
  JOB_STARTED,  /* awaits iob_op_done() */
  JOB_SETTLED,
} job_phase;

/* The style's part of a start() operation's slot: the shard's while it
 * holds the operation (the launch zeroes it before handing it over). */
typedef struct loops_job {
  ring started; /* in its shard's ring of started operations */
  job_phase phase;
  bool stopped; /* its kind's stop() was called */
} loops_job;

typedef struct shard {
  iob_batch *b;
  hop *hops;
  uv_thread_t tid;
  bool made; /* its thread was created, and must be joined */
  uv_loop_t loop;
  uv_async_t wake; /* from the batch's loop thread */
  uv_timer_t timer;
  int open_err;   /* what its start-up ended with */
  bool listening; /* its wake-up exists: it hears quit (set before post) */
  uint32_t number; /* its thread's number: its operations' worker */

  uv_mutex_t lock; /* the lists, quit, closed and running */
  op_list inbox, stops, outbox;
  uint32_t running; /* the operation in run() now, or NONE */
  bool quit;
  bool closed; /* its handles are closing: nothing may be sent to it */

  uint32_t in_flight; /* handed to it, not yet settled: the batch's */
  op_list taken;      /* taken from the outbox, to settle: the batch's */

  /* The rest is the shard's own. */
  iob__deadlines queue;
  uint64_t armed; /* the deadline the timer is set for, or UINT64_MAX */
  uint64_t stamp;
  uint32_t stamp_left;
  bool gathering;  /* in a callback: settled operations wait in done */
  bool cancelling; /* the batch's cancel has been seen */
  op_list done;    /* settled, not yet in the outbox */
  ring started;
  iob__slot *run_slot; /* run()'s, one at a time (run() kinds) */
  iob__kinds kinds;    /* the kinds' states on this loop, with targets */
} shard;

typedef struct loops_state {
  uint32_t n;
  shard *shards;
  hop *hops;
  uint32_t next_pick; /* where the search for the least busy begins */
  uv_sem_t ready;     /* each shard's start-up, done */
  atomic_bool cancel; /* the batch was cancelled: no more run() */
} loops_state;

/* The shard whose thread this is, or NULL. */
static _Thread_local shard *here;

/* ---- lists through the hops ------------------------------------------------ */

/* Append i; true if the list was empty. */
static bool list_push(const iob_batch *b, hop *hops, op_list *l,
                      uint32_t i) {
  H(b, hops, i)->next = NONE;
  bool was_empty = l->head == NONE;
  if (was_empty)
    l->head = i;
  else
    H(b, hops, l->tail)->next = i;
  l->tail = i;
  return was_empty;
}

/* Append list `from` to `to`; true if `to` was empty. */
static bool list_join(const iob_batch *b, hop *hops, op_list *to,
                      op_list from) {
  bool was_empty = to->head == NONE;
  if (from.head == NONE)
    return false;
  if (was_empty)
    to->head = from.head;
  else
    H(b, hops, to->tail)->next = from.head;
  to->tail = from.tail;
  return was_empty;
}

static void ring_init(ring *r) { r->prev = r->next = r; }

static void ring_add(ring *head, ring *r) {
  r->prev = head->prev;
  r->next = head;
  head->prev->next = r;
  head->prev = r;
}

static void ring_remove(ring *r) {
  r->prev->next = r->next;
  r->next->prev = r->prev;
  ring_init(r);
}

/* ---- a shard's clock ------------------------------------------------------- */

/* As iob__stamp(), on the shard's own cache. */
static uint64_t stamp(shard *sh) {
  if (sh->stamp_left == 0) {
    sh->stamp = iob__now(sh->b);
    sh->stamp_left = 1024;
  }
  sh->stamp_left--;
  return sh->stamp;
}

static void stamp_fresh(shard *sh) { sh->stamp_left = 0; }

/* ---- settling, on a shard -------------------------------------------------- */

/* Hand what settled back to the batch's loop, and wake it if its view of
 * the outbox was empty. */
static void flush(shard *sh) {
  if (sh->done.head == NONE)
    return;
  uv_mutex_lock(&sh->lock);
  bool wake = list_join(sh->b, sh->hops, &sh->outbox, sh->done);
  uv_mutex_unlock(&sh->lock);
  sh->done = EMPTY;
  if (wake)
    iob__wakeup(sh->b);
}

/* Operation i is over on this shard (its times are set): it goes back,
 * at the end of the callback, or now outside one (a kind's own). */
static void give_back(shard *sh, uint32_t i, int status) {
  H(sh->b, sh->hops, i)->status = status;
  list_push(sh->b, sh->hops, &sh->done, i);
  if (!sh->gathering)
    flush(sh);
}

/* A start() operation is over: its kind's cleanup, its outcome kept,
 * then back. Told to stop, it is recorded with the reason. */
static void settle_job(shard *sh, iob__slot *s, int status, bool begun) {
  iob_batch *b = sh->b;
  loops_job *job = iob__slot_style(b, s);
  int stop = atomic_load_explicit(&s->stop, memory_order_relaxed);
  if (stop != 0 && begun)
    status = stop;
  ring_remove(&job->started);
  job->phase = JOB_SETTLED;
  iob__slot_close(b, s);
  give_back(sh, s->op.index, status);
}

/* Tell a started operation to stop, once, with `why` unless it was told
 * another reason first. */
static void stop_job(shard *sh, iob__slot *s, int why) {
  loops_job *job = iob__slot_style(sh->b, s);
  int none = 0;
  atomic_compare_exchange_strong(&s->stop, &none, why);
  if (job->phase != JOB_STARTED || job->stopped)
    return;
  job->stopped = true;
  if (s->kind->stop != NULL)
    s->kind->stop(&s->op);
}

/* Operation i, waiting in the queue, settles as cancelled now; when its
 * deadline comes out of the queue, it is skipped. */
static void cancel_waiting(shard *sh, uint32_t i) {
  iob_record *r = iob__rec(sh->b, i);
  uint64_t now = stamp(sh);
  if (!(iob__kind_of(sh->b, i)->flags & IOB_KIND_WAITS))
    r->started_ns = now; /* due to run, it never ran */
  r->finished_ns = now;
  give_back(sh, i, IOB_ECANCELED);
}

/* ---- running, on a shard --------------------------------------------------- */

static void on_timer(uv_timer_t *timer);

/* Sleep until the earliest deadline, unless set to wake by then. */
static void arm(shard *sh) {
  uint64_t first = iob__deadlines_first(&sh->queue);
  if (first == UINT64_MAX)
    return;
  if (first >= sh->armed && uv_is_active((uv_handle_t *)&sh->timer))
    return;
  uint64_t now = iob__now(sh->b);
  uint64_t sleep_ms = first > now ? (first - now + 999999) / 1000000 : 0;
  sh->armed = first;
  uv_update_time(&sh->loop);
  uv_timer_start(&sh->timer, on_timer, sleep_ms, 0);
}

/* Begin operation i with its kind's start(), on this loop. */
static void start_job(shard *sh, uint32_t i) {
  iob_batch *b = sh->b;
  iob__slot *s = iob__slot_find(b, i);
  loops_job *job = iob__slot_style(b, s);
  job->phase = JOB_STARTING;
  ring_add(&sh->started, &job->started);
  /* Its kind's state on this loop, opened for it if it is the first; and
   * its timeout's place in the queue of an open batch: failures are its
   * status, before it starts. */
  int err = iob__kinds_open(b, &sh->kinds, s->kind, s->op.target,
                            &s->op.shared);
  if (err == 0 && b->open && b->config.timeout_ms != 0)
    err = iob__deadlines_reserve(&sh->queue, iob__timeout_ns(b));
  if (err == 0)
    err = iob__kind_status(s->kind->start(&s->op));
  if (job->phase == JOB_SETTLED)
    return; /* inside start(); it waits in `done` until this returns */
  if (err != 0) {
    iob__rec(b, i)->finished_ns = stamp(sh);
    settle_job(sh, s, err, false);
    return;
  }
  job->phase = JOB_STARTED;
  int stop = atomic_load(&s->stop);
  if (stop != 0) { /* the batch was cancelled meanwhile */
    stop_job(sh, s, stop);
    return;
  }
  if (b->config.timeout_ms != 0 &&
      iob__deadlines_add(&sh->queue, i, iob__timeout_ns(b)))
    arm(sh);
}

/* run() on this loop's thread, blocking it. */
static void run_job(shard *sh, uint32_t i) {
  iob_batch *b = sh->b;
  loops_state *st = b->style_state;
  iob__slot *s = sh->run_slot;
  iob_record *r = iob__rec(b, i);
  iob__slot_prepare(b, s, i);
  s->phase = IOB__RUNNING;
  /* After the prepare, which clears the stop: a cancel that comes later
   * tells this run() through it (loops_cancel()). */
  if (atomic_load(&st->cancel)) {
    s->phase = IOB__FREE;
    cancel_waiting(sh, i);
    return;
  }
  int err = iob__kinds_open(b, &sh->kinds, s->kind, s->op.target,
                            &s->op.shared);
  if (err != 0) { /* its kind could not open on this loop */
    s->phase = IOB__FREE;
    r->finished_ns = iob__now(b);
    give_back(sh, i, err);
    return;
  }
  if (!(s->kind->flags & IOB_KIND_WAITS))
    r->started_ns = iob__now(b); /* a wait before it counts as its run */
  /* Named while it runs, so that a cancel of it alone can tell it (its
   * slot's stop), as on the loop style, though this loop is busy. */
  uv_mutex_lock(&sh->lock);
  sh->running = i;
  uv_mutex_unlock(&sh->lock);
  int status = iob__kind_status(s->kind->run(&s->op));
  uv_mutex_lock(&sh->lock);
  sh->running = NONE;
  uv_mutex_unlock(&sh->lock);
  r->finished_ns = iob__now(b);
  status = iob__late(b, i, status);
  iob__slot_close(b, s);
  s->phase = IOB__FREE;
  give_back(sh, i, status);
}

/* Operation i's time in the queue is over. True if it ran a run(). */
static bool due(shard *sh, uint32_t i) {
  iob_batch *b = sh->b;
  if (H(sh->b, sh->hops, i)->status != IOB__IN_FLIGHT)
    return false; /* settled already: cancelled alone, or done */
  if (iob__is_async(b, i)) { /* its timeout */
    iob__slot *s = iob__slot_find(b, i);
    stop_job(sh, s, IOB_ETIMEDOUT);
    return false;
  }
  if (!iob__cut_short(b, i) && iob__kind_of(b, i)->run != NULL) {
    run_job(sh, i);
    return true;
  }
  iob__rec(b, i)->finished_ns = stamp(sh);
  give_back(sh, i, iob__cut_short(b, i) ? IOB_ETIMEDOUT : 0);
  return false;
}

static void serve(shard *sh);

static void on_timer(uv_timer_t *timer) {
  shard *sh = timer->data;
  stamp_fresh(sh);
  uint64_t now = stamp(sh), slice_end = now + SLICE_NS;
  sh->armed = UINT64_MAX;
  sh->gathering = true;
  for (;;) {
    uint32_t i = iob__deadlines_pop(&sh->queue, now);
    if (i == IOB__NO_ITEM) {
      /* Settling takes time: deadlines may have come meanwhile. */
      stamp_fresh(sh);
      now = stamp(sh);
      if (iob__deadlines_first(&sh->queue) > now)
        break;
      continue;
    }
    if (due(sh, i) && iob__now(sh->b) >= slice_end) {
      /* A queue of run()s keeps this callback busy (a timer due again
       * runs in the same pass of the loop, before the loop polls): hand
       * back what settled and hear what was asked meanwhile, a cancel of
       * one of those still due above all, every slice. */
      flush(sh);
      serve(sh);
      sh->gathering = true;
      slice_end = iob__now(sh->b) + SLICE_NS;
    }
  }
  sh->gathering = false;
  flush(sh);
  arm(sh);
}

/* Put waiting operation i in the queue, for its wait (or, a run(), its
 * turn). An open batch's queue grows first; without the memory, the
 * operation is over with IOB_ENOMEM. */
static void queue_wait(shard *sh, uint32_t i) {
  iob_batch *b = sh->b;
  uint64_t wait = iob__wait_ns(b, i);
  int err = b->open ? iob__deadlines_reserve(&sh->queue, wait) : 0;
  if (err != 0) {
    iob__rec(b, i)->finished_ns = stamp(sh);
    give_back(sh, i, err);
  } else if (iob__deadlines_add(&sh->queue, i, wait)) {
    arm(sh);
  }
}

/* Take what the inbox held: each operation begins. */
static void take(shard *sh, uint32_t i) {
  iob_batch *b = sh->b;
  while (i != NONE) {
    uint32_t next = H(sh->b, sh->hops, i)->next;
    H(sh->b, sh->hops, i)->status = IOB__IN_FLIGHT;
    iob__rec(b, i)->started_ns = stamp(sh);
    if (sh->cancelling)
      cancel_waiting(sh, i);
    else if (iob__is_async(b, i))
      start_job(sh, i);
    else
      queue_wait(sh, i);
    i = next;
  }
}

/* The batch was cancelled: what waits settles now, what was started is
 * told to stop (its kind's stop()). A stop() may settle other operations
 * than its own: each is put back in the ring before its stop(). */
static void cancel_all(shard *sh) {
  sh->cancelling = true;
  uv_timer_stop(&sh->timer);
  sh->armed = UINT64_MAX;
  iob_batch *b = sh->b;
  /* What waits (a start() operation's timeout is no wait: it is the
   * ring's below). */
  uint32_t i;
  while ((i = iob__deadlines_pop(&sh->queue, UINT64_MAX)) != IOB__NO_ITEM)
    if (H(sh->b, sh->hops, i)->status == IOB__IN_FLIGHT &&
        !iob__is_async(b, i))
      cancel_waiting(sh, i);
  ring pending;
  ring_init(&pending);
  if (sh->started.next != &sh->started) { /* move the ring to `pending` */
    pending.next = sh->started.next;
    pending.prev = sh->started.prev;
    pending.next->prev = pending.prev->next = &pending;
    ring_init(&sh->started);
  }
  while (pending.next != &pending) {
    ring *r = pending.next;
    ring_remove(r);
    ring_add(&sh->started, r);
    loops_job *job = (loops_job *)((char *)r - offsetof(loops_job, started));
    iob__slot *s = (iob__slot *)((char *)job - b->slot_style_at);
    stop_job(sh, s, IOB_ECANCELED);
  }
}

/* Operations the batch's loop asked to stop, alone. */
static void stop_asked(shard *sh, uint32_t i) {
  iob_batch *b = sh->b;
  while (i != NONE) {
    uint32_t next = H(sh->b, sh->hops, i)->stop_next;
    if (H(sh->b, sh->hops, i)->status != IOB__IN_FLIGHT) {
      /* settled already */
    } else if (iob__is_async(b, i)) {
      stop_job(sh, iob__slot_find(b, i), IOB_ECANCELED);
    } else {
      cancel_waiting(sh, i);
    }
    i = next;
  }
}

static void on_closed(uv_handle_t *h) { (void)h; }

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, on_closed);
}

/* Every operation has settled and the batch ends: the kind closes on this
 * loop, then the shard's own handles. A handle the kind left open (a
 * mistake of its close()) is closed too: else this loop would run for
 * ever, and the batch's loop thread wait for it. The kind's state is
 * freed only once the loop has ended. */
static void shard_close(shard *sh) {
  uv_mutex_lock(&sh->lock);
  bool closed = sh->closed;
  sh->closed = true;
  uv_mutex_unlock(&sh->lock);
  if (closed)
    return; /* told twice */
  iob__kinds_close(sh->b, &sh->kinds); /* what opened on this loop */
  uv_walk(&sh->loop, close_walk, NULL); /* the wake-up and timer too */
}

/* What the batch's loop asked for: the batch's cancel, operations to
 * begin, operations to stop. From on_wake(), and from on_timer() between
 * two slices of run()s. */
static void serve(shard *sh) {
  uv_mutex_lock(&sh->lock);
  op_list in = sh->inbox, stops = sh->stops;
  sh->inbox = sh->stops = EMPTY;
  uv_mutex_unlock(&sh->lock);

  loops_state *st = sh->b->style_state;
  stamp_fresh(sh);
  bool was_gathering = sh->gathering;
  sh->gathering = true;
  if (atomic_load(&st->cancel) && !sh->cancelling)
    cancel_all(sh);
  take(sh, in.head); /* before the stops: one may be for one of these */
  stop_asked(sh, stops.head);
  sh->gathering = was_gathering;
  if (!was_gathering)
    flush(sh);
}

static void on_wake(uv_async_t *async) {
  shard *sh = async->data;
  serve(sh);
  uv_mutex_lock(&sh->lock);
  bool quit = sh->quit;
  uv_mutex_unlock(&sh->lock);
  if (quit)
    shard_close(sh);
}

/* ---- a shard's thread ---------------------------------------------------- */

/* Run the loop until nothing is left on it, and close it. */
static void loop_end(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  if (uv_loop_close(loop) != 0) {
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
  }
}

/* What a shard needs besides its loop: its timer queue, its slot for
 * run(), the kind's state on this loop and its open(). */
static int shard_open(shard *sh) {
  iob_batch *b = sh->b;
  const iob_kind *k = b->config.kind;
  int err = iob__deadlines_plan(&sh->queue, b);
  /* (An open batch's operations may be of any kind: run() ones too.) */
  if (err == 0 && (b->open || (k->start == NULL && k->run != NULL)) &&
      (sh->run_slot = calloc(1, b->slot_stride)) == NULL)
    err = IOB_ENOMEM;
  void *shared;
  if (err == 0)
    err = iob__kinds_open(b, &sh->kinds, k, b->config.target, &shared);
  return err;
}

static void shard_free(shard *sh) {
  iob__deadlines_free(&sh->queue);
  free(sh->run_slot);
  sh->run_slot = NULL;
  iob__kinds_free(&sh->kinds);
}

static void shard_main(void *arg) {
  shard *sh = arg;
  loops_state *st = sh->b->style_state;
  iob__block_signals();
  here = sh;
  sh->number = iob__thread_number();
  ring_init(&sh->started);
  sh->armed = UINT64_MAX;
  int err = uv_loop_init(&sh->loop);
  if (err != 0) {
    sh->open_err = err;
    uv_sem_post(&st->ready);
    return;
  }
  err = uv_async_init(&sh->loop, &sh->wake, on_wake);
  if (err == 0) {
    uv_timer_init(&sh->loop, &sh->timer);
    sh->wake.data = sh->timer.data = sh;
    sh->listening = true;
    err = shard_open(sh); /* what it opened is closed at the end */
  }
  sh->open_err = err;
  uv_sem_post(&st->ready);
  /* Until the batch's loop says quit (shard_close()), even when the
   * start-up failed: a loop that ended now would free its descriptors
   * while its siblings start, and a sibling could take the same numbers
   * with nothing to order the two (ThreadSanitizer, which cannot see
   * libuv close them, calls that a race). Without a wake-up it cannot
   * hear quit: it ends now. */
  if (!sh->listening)
    uv_loop_close(&sh->loop);
  else
    loop_end(&sh->loop);
  shard_free(sh);
}

/* ---- the style, on the batch's loop thread -------------------------------- */

/* How many loops: the options', or the cores; no more than can have
 * anything to run. */
static uint32_t loops_wanted(const iob_batch *b) {
  const iob_loops_options *o = iob__style_options(b);
  uint32_t n = o->loops ? o->loops : (uint32_t)uv_available_parallelism();
  if (n > IOB_LOOPS_MAX)
    n = IOB_LOOPS_MAX;
  if (n > b->limit)
    n = b->limit;
  return n > 0 ? n : 1;
}

/* Tell every shard that was made to end, then join them, so that their
 * kinds close at once, not one after another; free it all. */
static void shards_end(loops_state *st) {
  for (uint32_t k = 0; k < st->n; k++) {
    shard *sh = &st->shards[k];
    if (!sh->made || !sh->listening)
      continue; /* (one with no wake-up ended by itself) */
    /* Under the lock, and only to a loop not closing: its wake-up may
     * not exist a moment later (uv_async_send() would abort). */
    uv_mutex_lock(&sh->lock);
    sh->quit = true;
    if (!sh->closed)
      uv_async_send(&sh->wake);
    uv_mutex_unlock(&sh->lock);
  }
  for (uint32_t k = 0; k < st->n; k++) {
    shard *sh = &st->shards[k];
    if (!sh->made)
      continue;
    uv_thread_join(&sh->tid);
    uv_mutex_destroy(&sh->lock);
  }
  uv_sem_destroy(&st->ready);
  free(st->shards);
  free(st->hops);
  st->shards = NULL;
  st->hops = NULL;
}

/* Start one shard's thread; its start-up is waited for later. */
static int shard_start(loops_state *st, shard *sh, iob_batch *b) {
  *sh = (shard){.b = b, .hops = st->hops, .inbox = EMPTY, .stops = EMPTY,
                .outbox = EMPTY, .done = EMPTY, .taken = EMPTY,
                .running = NONE};
  int err = uv_mutex_init(&sh->lock);
  if (err != 0)
    return err;
  uv_thread_options_t options = {.flags = UV_THREAD_NO_FLAGS};
  if (iob__thread_create(&sh->tid, &options, shard_main, sh) != 0) {
    uv_mutex_destroy(&sh->lock);
    return IOB_EAGAIN;
  }
  sh->made = true;
  return 0;
}

static int loops_start(iob_batch *b) {
  loops_state *st = b->style_state;
  uint32_t n = loops_wanted(b);
  int err = uv_sem_init(&st->ready, 0);
  if (err != 0)
    return err;
  st->shards = calloc(n, sizeof(*st->shards));
  /* An open batch's hops are in its tasks. */
  st->hops = b->open ? NULL : malloc(b->config.count * sizeof(*st->hops));
  if (st->shards == NULL || (!b->open && st->hops == NULL)) {
    st->n = 0;
    shards_end(st);
    return IOB_ENOMEM;
  }
  atomic_init(&st->cancel, false);
  /* Every thread first, then their start-ups, which run side by side
   * (a kind's open() may take a while: an HTTP client's, a pool's). */
  for (st->n = 0; st->n < n && err == 0; st->n++)
    err = shard_start(st, &st->shards[st->n], b);
  if (err != 0)
    st->n--; /* the one that failed was not made */
  for (uint32_t k = 0; k < st->n; k++)
    uv_sem_wait(&st->ready);
  /* Every shard wrote its open_err before its post. */
  for (uint32_t k = 0; k < st->n && err == 0; k++)
    err = st->shards[k].open_err;
  if (err != 0)
    shards_end(st);
  return err;
}

/* The shard with the fewest operations in flight, from where the last
 * search ended, so that ties go round robin. */
static shard *pick(loops_state *st) {
  uint32_t best = st->next_pick, k = best;
  for (uint32_t left = st->n - 1; left > 0; left--) {
    if (++k == st->n)
      k = 0;
    if (st->shards[k].in_flight < st->shards[best].in_flight)
      best = k;
  }
  st->next_pick = best + 1 == st->n ? 0 : best + 1;
  return &st->shards[best];
}

static void loops_launch(iob_batch *b, uint32_t i) {
  loops_state *st = b->style_state;
  shard *sh = pick(st);
  sh->in_flight++;
  iob__rec(b, i)->worker = sh->number;
  if (iob__is_async(b, i)) {
    iob__slot *s = iob__slot_take(b, i);
    s->phase = IOB__RUNNING; /* to the core: on another thread */
    *(loops_job *)iob__slot_style(b, s) = (loops_job){.phase = JOB_NEW};
  }
  uv_mutex_lock(&sh->lock);
  bool wake = list_push(b, st->hops, &sh->inbox, i);
  uv_mutex_unlock(&sh->lock);
  if (wake)
    uv_async_send(&sh->wake);
}

/* Settle what the shards handed back, one at a time from a list of the
 * shard's, not a local one: a settle may come back in here (a cancel from
 * on_op that must wait for the operations, iob_batch_cancel()'s rescue),
 * and the call inside goes on where this one was. The last settle ends
 * the batch, and frees the shards: nothing is read after it. */
static void loops_wakeup(iob_batch *b) {
  loops_state *st = b->style_state;
  for (uint32_t k = 0; k < st->n && !b->ended; k++) {
    shard *sh = &st->shards[k];
    uv_mutex_lock(&sh->lock);
    list_join(b, st->hops, &sh->taken, sh->outbox);
    sh->outbox = EMPTY;
    uv_mutex_unlock(&sh->lock);
    while (!b->ended && sh->taken.head != NONE) {
      uint32_t i = sh->taken.head;
      sh->taken.head = H(b, st->hops, i)->next;
      if (sh->taken.head == NONE)
        sh->taken.tail = NONE;
      sh->in_flight--;
      if (iob__is_async(b, i))
        iob__slot_release(b, iob__slot_find(b, i));
      iob__settle(b, i, H(b, st->hops, i)->status);
    }
  }
}

/* Every shard settles what waits and stops what was started; a run()
 * running now is told through its slot. */
static void loops_cancel(iob_batch *b) {
  loops_state *st = b->style_state;
  atomic_store(&st->cancel, true);
  for (uint32_t k = 0; k < st->n; k++) {
    shard *sh = &st->shards[k];
    if (sh->run_slot != NULL) {
      int none = 0;
      atomic_compare_exchange_strong(&sh->run_slot->stop, &none,
                                     IOB_ECANCELED);
    }
    uv_async_send(&sh->wake);
  }
}

static shard *shard_of(loops_state *st, uint32_t worker) {
  for (uint32_t k = 0; k < st->n; k++)
    if (st->shards[k].number == worker)
      return &st->shards[k];
  return NULL;
}

/* Operation i alone: its shard settles it if it waits, or stops it. */
static void loops_cancel_op(iob_batch *b, uint32_t i, iob__slot *s) {
  (void)s;
  loops_state *st = b->style_state;
  shard *sh = shard_of(st, iob__rec(b, i)->worker);
  iob__rec(b, i)->status = IOB__STOPPING; /* asked once */
  uv_mutex_lock(&sh->lock);
  H(b, st->hops, i)->stop_next = NONE;
  bool wake = sh->stops.head == NONE;
  if (wake)
    sh->stops.head = i;
  else
    H(b, st->hops, sh->stops.tail)->stop_next = i;
  sh->stops.tail = i;
  if (sh->running == i) { /* in its run(): told now, through its slot */
    int none = 0;
    atomic_compare_exchange_strong(&sh->run_slot->stop, &none, IOB_ECANCELED);
  }
  uv_mutex_unlock(&sh->lock);
  if (wake)
    uv_async_send(&sh->wake);
}

static void loops_finish(iob_batch *b) { shards_end(b->style_state); }

static uint32_t loops_threads(const iob_batch *b) {
  const loops_state *st = b->style_state;
  return st->n;
}

/* iob_op_done() for a start() operation, on its shard's thread. */
static int loops_op_done(iob_batch *b, iob__slot *s, int status) {
  shard *sh = here;
  /* Its own loop's thread only: the batch's loop thread wrote worker
   * before handing the operation over, and changes it no more. */
  if (sh == NULL || sh->b != b)
    return IOB_EPERM;
  if (s->number == IOB__INNER_SLOT) /* an inner operation, on this loop */
    return iob__inner_done(s, status);
  if (iob__rec(b, s->op.index)->worker != sh->number)
    return IOB_EPERM;
  loops_job *job = iob__slot_style(b, s);
  if (job->phase != JOB_STARTING && job->phase != JOB_STARTED)
    return IOB_EINVAL;
  stamp_fresh(sh); /* called from the kind's own callbacks */
  iob__rec(b, s->op.index)->finished_ns = stamp(sh);
  settle_job(sh, s, status, true);
  return 0;
}

static uv_loop_t *loops_loop_here(const iob_batch *b) {
  return here != NULL && here->b == b ? &here->loop : NULL;
}

void iob_loops_options_init(iob_loops_options *options) {
  if (options != NULL)
    *options = (iob_loops_options){.style = &iob_style_loops};
}

static const iob_loops_options defaults = {.style = &iob_style_loops};

static int loops_check(const iob_config *c) {
  const iob_loops_options *o = c->style_options;
  return o != NULL && o->loops > IOB_LOOPS_MAX ? IOB_ERANGE : 0;
}

const iob_style iob_style_loops = {
    .name = "loops",
    .options_size = sizeof(iob_loops_options),
    .defaults = &defaults,
    .check = loops_check,
    .flags = IOB_STYLE_LOOPS,
    .state_size = sizeof(loops_state),
    .slot_size = sizeof(loops_job),
    .start = loops_start,
    .launch = loops_launch,
    .cancel = loops_cancel,
    .cancel_op = loops_cancel_op,
    .wakeup = loops_wakeup,
    .finish = loops_finish,
    .threads = loops_threads,
    .op_done = loops_op_done,
    .loop_here = loops_loop_here,
};
