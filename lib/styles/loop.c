/* Event-loop style: every operation runs on the loop's own thread.
 *
 * A wait is a deadline in the batch's timer queue (core/deadlines.h): the
 * batch's one libuv timer serves all of it, and waits that end in the same loop
 * millisecond end in one timer callback. Deadlines are measured on the
 * records' own clock (ns since the batch started), not on the loop's
 * millisecond clock, so every record shows a wait at least as long as
 * asked for; the timer is a wake-up call, and when it fires early the
 * batch sleeps again for what remains.
 *
 * A kind with start() runs its own I/O and calls iob_op_done(); its
 * timeout is a deadline in the same queue. A kind with only run() blocks
 * the loop: its operations run one per timer callback, so the loop serves
 * its other handles between two of them.
 *
 * The sequential style is this one with never more than one in flight. */
#include "deadlines.h"
#include "internal.h"

typedef struct loop_state {
  uint64_t armed; /* deadline the timer is set for; UINT64_MAX if none */
  bool in_timer;  /* launches wait in [pending, pending_end) meanwhile */
  uint32_t pending, pending_end;
  iob__deadlines queue;
} loop_state;

static void on_timer(uv_timer_t *timer);
static bool queue_wait(iob_batch *b, loop_state *s, uint32_t i);

/* Sleep until the earliest deadline, unless already set to wake by then. */
static void arm(iob_batch *b, loop_state *s) {
  uint64_t first = iob__deadlines_first(&s->queue);
  if (first == UINT64_MAX)
    return;
  if (first >= s->armed && uv_is_active((uv_handle_t *)&b->timer))
    return;
  uint64_t now = iob__now(b);
  uint64_t sleep_ms = first > now ? (first - now + 999999) / 1000000 : 0;
  s->armed = first;
  uv_update_time(b->loop); /* the timer counts from the loop's clock */
  uv_timer_start(&b->timer, on_timer, sleep_ms, 0);
}

/* ---- running an operation ------------------------------------------------ */

static void start_async(iob_batch *b, loop_state *s, uint32_t i) {
  iob__slot *slot = iob__slot_take(b, i);
  slot->phase = IOB__STARTING;
  int err = iob__kind_status(slot->kind->start(&slot->op));
  if (slot->phase != IOB__STARTING)
    return; /* it settled inside start() */
  if (err != 0) {
    iob__rec(b, i)->finished_ns = iob__stamp(b);
    iob__slot_settle(b, slot, err);
    return;
  }
  slot->phase = IOB__STARTED;
  if (atomic_load(&slot->stop) != 0) { /* cancelled from inside start() */
    if (slot->kind->stop != NULL)
      slot->kind->stop(&slot->op);
    return;
  }
  if (b->config.timeout_ms != 0 &&
      iob__deadlines_add(&s->queue, i, iob__timeout_ns(b)) && !s->in_timer)
    arm(b, s);
}

/* run() on the loop thread, blocking it. */
static void run_here(iob_batch *b, uint32_t i) {
  iob__slot *slot = iob__slot_take(b, i);
  iob_record *r = iob__rec(b, i);
  slot->phase = IOB__RUNNING;
  if (!(slot->kind->flags & IOB_KIND_WAITS))
    r->started_ns = iob__now(b); /* a wait before it counts as its run */
  int status = iob__kind_status(slot->kind->run(&slot->op));
  r->finished_ns = iob__now(b);
  iob__slot_settle(b, slot, iob__late(b, i, status));
}

/* Operation i's time in the queue is over. Returns true if it ran on
 * the loop: one of those a callback. */
static bool due(iob_batch *b, uint32_t i) {
  if (iob__rec(b, i)->status != IOB__IN_FLIGHT)
    return false; /* cancelled alone while it waited */
  if (iob__is_async(b, i)) { /* its timeout, unless it settled already */
    iob__slot *slot = iob__slot_find(b, i);
    if (slot != NULL && slot->phase == IOB__STARTED)
      iob__slot_stop(b, slot, IOB_ETIMEDOUT);
    return false;
  }
  if (!iob__cut_short(b, i) && iob__kind_of(b, i)->run != NULL) {
    run_here(b, i);
    return true;
  }
  iob__rec(b, i)->finished_ns = iob__stamp(b);
  iob__settle(b, i, iob__cut_short(b, i) ? IOB_ETIMEDOUT : 0);
  return false;
}

/* How long one timer callback may go on with waits that come due while
 * it runs (a chain of short waits, each submitted by the one before):
 * the loop's other handles wait no longer than this for their turn. */
#define SLICE_NS 1000000

static void on_timer(uv_timer_t *timer) {
  iob_batch *b = iob__batch_of(timer, timer);
  loop_state *s = b->style_state;

  iob__stamp_fresh(b);
  uint64_t now = iob__stamp(b), slice_end = now + SLICE_NS;
  s->armed = UINT64_MAX;
  bool ran = false;
  do {
    s->in_timer = true;
    for (;;) {
      uint32_t i = iob__deadlines_pop(&s->queue, now);
      if (i == IOB__NO_ITEM) {
        /* Settling takes time: deadlines may have come meanwhile. */
        iob__stamp_fresh(b);
        now = iob__stamp(b);
        if (iob__deadlines_first(&s->queue) > now)
          break;
        continue;
      }
      ran = due(b, i);
      if (b->ended)
        return; /* the batch has closed the timer */
      if (ran)
        break; /* one run() a callback: the loop serves the rest between */
    }
    s->in_timer = false;

    /* Operations launched by the ones that ended start their wait now. */
    iob__stamp_fresh(b);
    for (uint32_t i = s->pending; i < s->pending_end; i++) {
      if (iob__rec(b, i)->status != IOB__IN_FLIGHT || iob__is_async(b, i))
        continue; /* cancelled alone meanwhile, or started already */
      iob__rec(b, i)->started_ns = iob__stamp(b);
      queue_wait(b, s, i);
      if (b->ended)
        return;
    }
    s->pending = s->pending_end = 0;
    /* Those due already (waits of 0 ms) end in this callback too. */
    iob__stamp_fresh(b);
    now = iob__stamp(b);
  } while (!ran && now < slice_end && iob__deadlines_first(&s->queue) <= now);
  arm(b, s);
}

/* ---- the style ------------------------------------------------------------ */

static int loop_start(iob_batch *b) {
  loop_state *s = b->style_state;
  int err = iob__deadlines_plan(&s->queue, b);
  if (err != 0) {
    iob__deadlines_free(&s->queue);
    return err;
  }
  s->armed = UINT64_MAX;
  return 0;
}

/* Put waiting operation i in the queue, for its wait; true if that made
 * a new earliest deadline. An open batch's queue grows first (a batch of
 * fixed count planned it all); without the memory, the operation settles
 * with IOB_ENOMEM. */
static bool queue_wait(iob_batch *b, loop_state *s, uint32_t i) {
  uint64_t wait = iob__wait_ns(b, i);
  int err = b->open ? iob__deadlines_reserve(&s->queue, wait) : 0;
  if (err == 0)
    return iob__deadlines_add(&s->queue, i, wait);
  iob__rec(b, i)->finished_ns = iob__stamp(b);
  iob__settle(b, i, err);
  return false;
}

static void loop_launch(iob_batch *b, uint32_t i) {
  loop_state *s = b->style_state;
  iob_record *r = iob__rec(b, i);
  r->started_ns = r->queued_ns;
  if (iob__is_async(b, i)) {
    /* Its timeout's place, before start(): nothing else may then fail. */
    int err = b->open && b->config.timeout_ms != 0
                  ? iob__deadlines_reserve(&s->queue, iob__timeout_ns(b))
                  : 0;
    if (err != 0) {
      r->finished_ns = r->started_ns;
      iob__settle(b, i, err);
      return;
    }
    start_async(b, s, i);
  } else if (s->in_timer) {
    /* Launches come in the order of their numbers: a range. */
    if (s->pending == s->pending_end)
      s->pending = i;
    s->pending_end = i + 1;
  } else if (queue_wait(b, s, i)) {
    arm(b, s);
  }
}

/* Settle operation i, waiting, as cancelled; true if the batch ended. */
static bool cancel_one(iob_batch *b, uint32_t i, uint64_t now) {
  iob_record *r = iob__rec(b, i);
  if (r->status != IOB__IN_FLIGHT || iob__is_async(b, i))
    return false; /* cancelled alone before; or the core's to stop */
  if (!(iob__kind_of(b, i)->flags & IOB_KIND_WAITS))
    r->started_ns = now; /* due to run, it never ran */
  r->finished_ns = now;
  iob__settle(b, i, IOB_ECANCELED);
  return b->ended;
}

/* Settle, as cancelled, what waits: launched in a timer callback, or in
 * the queue. Operations from start() are the core's to stop; their
 * timeouts no longer matter. */
static void loop_cancel(iob_batch *b) {
  loop_state *s = b->style_state;
  uv_timer_stop(&b->timer);
  s->armed = UINT64_MAX;
  if (!b->open && iob__is_async(b, 0))
    return; /* timeouts only */
  uint64_t now = iob__stamp(b);
  uint32_t from = s->pending, to = s->pending_end, i;
  s->pending = s->pending_end = 0;
  for (i = from; i < to; i++)
    if (cancel_one(b, i, now))
      return;
  while ((i = iob__deadlines_pop(&s->queue, UINT64_MAX)) != IOB__NO_ITEM)
    if (cancel_one(b, i, now))
      return;
}

/* A wait, or a run() waiting its turn, settles now; what it left in the
 * queue is skipped when it comes out. An operation with a slot (begun by
 * start(), or running) is the core's to stop. */
static void loop_cancel_op(iob_batch *b, uint32_t i, iob__slot *slot) {
  if (slot == NULL)
    cancel_one(b, i, iob__stamp(b));
}

static void loop_finish(iob_batch *b) {
  loop_state *s = b->style_state;
  iob__deadlines_free(&s->queue);
}

const iob_style iob_style_loop = {
    .name = "loop",
    .state_size = sizeof(loop_state),
    .start = loop_start,
    .launch = loop_launch,
    .cancel = loop_cancel,
    .cancel_op = loop_cancel_op,
    .finish = loop_finish,
};

const iob_style iob_style_sequential = {
    .name = "sequential",
    .limit = 1,
    .state_size = sizeof(loop_state),
    .start = loop_start,
    .launch = loop_launch,
    .cancel = loop_cancel,
    .cancel_op = loop_cancel_op,
    .finish = loop_finish,
};
