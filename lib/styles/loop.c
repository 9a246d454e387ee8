/* Event-loop style: every operation runs on the batch's loop, its own
 * thread, by one runner (runner.h): waits in a timer queue that the
 * batch's one timer serves, a kind's start() and its I/O on the loop, and
 * run() blocking it. What is over settles in the batch at once.
 *
 * The sequential style is this one with never more than one in flight. */
#include "runner.h"

static iob__runner *runner_of(const iob_batch *b) { return b->style_state; }

static void on_timer(uv_timer_t *timer) {
  iob__runner_due(runner_of(iob__batch_of(timer, timer)));
}

static bool over(iob__runner *r, uint32_t i, int status) {
  iob_batch *b = r->b;
  if (iob__is_async(b, i))
    iob__slot_release(b, iob__slot_find(b, i));
  iob__settle(b, i, status);
  return b->ended;
}

static const iob__runner_hooks hooks = {.on_timer = on_timer, .over = over};

static int loop_start(iob_batch *b) {
  iob__runner *r = runner_of(b);
  /* (The timer is made once this returns, before any launch.) */
  *r = (iob__runner){.b = b,
                     .hooks = &hooks,
                     .loop = b->loop,
                     .timer = &b->timer,
                     .clock = &b->clock};
  return iob__runner_open(r);
}

static void loop_launch(iob_batch *b, uint32_t i) {
  iob__runner_claim(b, i);
  iob__runner_launch(runner_of(b), i);
}

static void loop_cancel(iob_batch *b) { iob__runner_cancel(runner_of(b)); }

static void loop_cancel_op(iob_batch *b, uint32_t i, iob__slot *s) {
  (void)s;
  iob__runner_cancel_op(runner_of(b), i);
}

static void loop_finish(iob_batch *b) { iob__runner_free(runner_of(b)); }

static int loop_op_done(iob_batch *b, iob__slot *s, int status) {
  /* The thread first: the operation's phase is the loop thread's. */
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &b->loop_thread))
    return IOB_EPERM;
  return iob__runner_op_done(runner_of(b), s, status);
}

/* The two styles differ only by their name and the sequential limit. */
#define LOOP_STYLE                                                             \
  .state_size = sizeof(iob__runner), .slot_size = sizeof(iob__job),            \
  .start = loop_start, .launch = loop_launch, .cancel = loop_cancel,           \
  .cancel_op = loop_cancel_op, .finish = loop_finish, .op_done = loop_op_done

const iob_style iob_style_loop = {.name = "loop", LOOP_STYLE};

const iob_style iob_style_sequential = {
    .name = "sequential", .limit = 1, LOOP_STYLE};
