/* Loops style: an event loop per core. N threads of the batch's own each
 * run a libuv loop (a "shard"), and each shard runs its share of the
 * operations with a runner of its own (runner.h), the engine the loop
 * style runs on the batch's loop: waits in a timer queue of its own, a
 * kind's start() and its I/O on its loop, run() on its thread. Waits cost
 * no thread, and the computing runs on N cores.
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

#include "runner.h"

#define NONE UINT32_MAX

typedef iob__hop hop;

static inline hop *H(const iob_batch *b, hop *hops, uint32_t i) {
  return iob__hop_at(b, hops, i);
}

/* A list of operations linked through their hops. */
typedef struct op_list {
  uint32_t head, tail;
} op_list;

#define EMPTY ((op_list){NONE, NONE})

typedef struct shard {
  iob__runner run; /* first: a runner is its shard */
  iob_batch *b;
  hop *hops;
  uv_thread_t tid;
  bool made; /* its thread was created, and must be joined */
  uv_loop_t loop;
  uv_async_t wake; /* from the batch's loop thread */
  uv_timer_t timer;
  int open_err;    /* what its start-up ended with */
  bool listening;  /* its wake-up exists: it hears quit (set before post) */
  uint32_t number; /* its thread's number: its operations' worker */

  uv_mutex_t lock; /* the lists, quit, closed and the runner's running */
  op_list inbox, stops, outbox;
  bool quit;
  bool closed; /* its handles are closing: nothing may be sent to it */

  uint32_t in_flight; /* handed to it, not yet settled: the batch's */
  op_list taken;      /* taken from the outbox, to settle: the batch's */

  op_list done;     /* the shard's: settled, not yet in the outbox */
  op_list later;    /* the shard's: taken, to begin on the next turn */
  iob__kinds kinds; /* the kinds' states on this loop, with targets */
} shard;

typedef struct loops_state {
  uint32_t n;
  shard *shards;
  hop *hops;
  uint32_t next_pick; /* where the search for the least busy begins */
  uv_sem_t ready;     /* each shard's start-up, done */
} loops_state;

/* The shard whose thread this is, or NULL. */
static _Thread_local shard *here;

static shard *shard_of_runner(iob__runner *r) { return (shard *)r; }

/* ---- lists through the hops ------------------------------------------------ */

/* Append i; true if the list was empty. */
static bool list_push(const iob_batch *b, hop *hops, op_list *l, uint32_t i) {
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

/* ---- a shard's side of its runner ------------------------------------------- */

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

static void on_flush(iob__runner *r) { flush(shard_of_runner(r)); }

/* Operation i is over on this shard (its times are set): it goes back,
 * at the end of the callback, or now outside one (a kind's own). */
static bool on_over(iob__runner *r, uint32_t i, int status) {
  shard *sh = shard_of_runner(r);
  H(sh->b, sh->hops, i)->status = status;
  list_push(sh->b, sh->hops, &sh->done, i);
  if (!r->gathering)
    flush(sh);
  return false; /* the batch's loop thread ends it */
}

static void on_timer(uv_timer_t *timer) {
  shard *sh = timer->data;
  iob__runner_due(&sh->run);
}

static void serve(shard *sh);

/* Between two slices of run()s: hand back what settled, and hear what was
 * asked meanwhile, a cancel of one of those still due above all. */
static void between(iob__runner *r) {
  shard *sh = shard_of_runner(r);
  flush(sh);
  serve(sh);
}

static const iob__runner_hooks hooks = {.on_timer = on_timer,
                                        .over = on_over,
                                        .between = between,
                                        .flush = on_flush};

/* Take what the inbox held: each operation begins, for a slice of time
 * at most unless `all` (see iob__launch_slice_over()); the rest waits in
 * sh->later for the loop's next turn. */
static void take(shard *sh, op_list in, bool all) {
  uint32_t i = in.head, launched = 0;
  uint64_t until = 0;
  while (i != NONE) {
    uint32_t next = H(sh->b, sh->hops, i)->next;
    H(sh->b, sh->hops, i)->status = IOB__IN_FLIGHT;
    iob__runner_launch(&sh->run, i);
    i = next;
    if (!all && i != NONE && iob__launch_slice_over(++launched, &until))
      break;
  }
  sh->later = i == NONE ? EMPTY : (op_list){i, in.tail};
  if (i != NONE)
    uv_async_send(&sh->wake); /* on_wake() serves the rest */
}

/* Operations the batch's loop asked to stop, alone. */
static void stop_asked(shard *sh, uint32_t i) {
  while (i != NONE) {
    uint32_t next = H(sh->b, sh->hops, i)->stop_next;
    iob__runner_cancel_op(&sh->run, i);
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
    return;                             /* told twice */
  iob__kinds_close(sh->b, &sh->kinds);  /* what opened on this loop */
  uv_walk(&sh->loop, close_walk, NULL); /* the wake-up and timer too */
}

/* What the batch's loop asked for: the batch's cancel, operations to
 * begin, operations to stop. From on_wake(), and from the runner between
 * two slices of run()s. */
static void serve(shard *sh) {
  uv_mutex_lock(&sh->lock);
  op_list in = sh->inbox, stops = sh->stops;
  sh->inbox = sh->stops = EMPTY;
  uv_mutex_unlock(&sh->lock);

  iob__clock_fresh(sh->run.clock);
  bool was_gathering = sh->run.gathering;
  sh->run.gathering = true;
  if (atomic_load(&sh->run.cancel) && !sh->run.cancelling)
    iob__runner_cancel(&sh->run);
  op_list all = sh->later; /* first: they came first */
  list_join(sh->b, sh->hops, &all, in);
  /* Before the stops, all of them: a stop may be for one of these. */
  take(sh, all, stops.head != NONE || sh->run.cancelling);
  stop_asked(sh, stops.head);
  sh->run.gathering = was_gathering;
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

/* What a shard needs besides its loop: its runner, and the kind's state
 * on this loop with its open(). */
static int shard_open(shard *sh) {
  iob_batch *b = sh->b;
  sh->run = (iob__runner){.b = b,
                          .hooks = &hooks,
                          .loop = &sh->loop,
                          .timer = &sh->timer,
                          .hopping = true,
                          .hops = sh->hops,
                          .kinds = &sh->kinds,
                          .lock = &sh->lock};
  int err = iob__runner_open(&sh->run);
  void *shared;
  if (err == 0)
    err = iob__kinds_open(b, &sh->kinds, b->config.kind, b->config.target,
                          &shared);
  return err;
}

static void shard_free(shard *sh) {
  iob__runner_free(&sh->run);
  iob__kinds_free(&sh->kinds);
}

static void shard_main(void *arg) {
  shard *sh = arg;
  loops_state *st = sh->b->style_state;
  iob__block_signals();
  here = sh;
  sh->number = iob__thread_number();
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
  *sh = (shard){.b = b,
                .hops = st->hops,
                .inbox = EMPTY,
                .stops = EMPTY,
                .outbox = EMPTY,
                .done = EMPTY,
                .taken = EMPTY,
                .later = EMPTY};
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
  iob__runner_claim(b, i);
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
 * running now is told at once. */
static void loops_cancel(iob_batch *b) {
  loops_state *st = b->style_state;
  for (uint32_t k = 0; k < st->n; k++) {
    shard *sh = &st->shards[k];
    iob__runner_interrupt(&sh->run, NONE);
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
  uv_mutex_unlock(&sh->lock);
  iob__runner_interrupt(&sh->run, i); /* in its run(): told now */
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
  return iob__runner_op_done(&sh->run, s, status);
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
    .slot_size = sizeof(iob__job),
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
