/* Thread-per-operation style, the tutorial's own: every operation in
 * flight gets an OS thread of its own that blocks for the whole operation.
 * A finished thread queues its job and wakes the loop (iob__wakeup()); the
 * loop joins it and settles the operation, so every thread is joined.
 *
 * Small stacks (64 KiB by default) let ten thousand threads fit in memory.
 * When the system refuses a thread, the batch either ends with the error
 * or, if the config says so, lowers its limit to the threads it has. */
#include "internal.h"

#define STACK_DEFAULT (64 * 1024)

int (*iob__thread_create)(uv_thread_t *tid, const uv_thread_options_t *options,
                          uv_thread_cb entry, void *arg) = uv_thread_create_ex;

/* The style's part of an operation's slot. */
typedef struct thread_job {
  uv_thread_t tid;
  iob_batch *batch;
  iob__slot *slot;
  struct thread_job *next_done; /* the finished list's link, under lock */
} thread_job;

typedef struct threads_state {
  uv_mutex_t lock;
  thread_job *done; /* finished threads to join; under the lock */
  uint32_t running; /* threads created and not yet joined */
  uint32_t most;    /* the most threads running at once */
} threads_state;

static void thread_main(void *arg) {
  thread_job *job = arg;
  iob_batch *b = job->batch;
  threads_state *s = b->style_state;
  iob__block_signals();
  job->slot->status = iob__slot_run(b, job->slot);

  uv_mutex_lock(&s->lock);
  job->next_done = s->done;
  s->done = job;
  uv_mutex_unlock(&s->lock);
  iob__wakeup(b);
}

/* Join the threads that finished and settle their operations. */
static void threads_wakeup(iob_batch *b) {
  threads_state *s = b->style_state;
  /* One at a time off the batch's list, not a local one: a settle may
   * come back in here (a cancel from on_op that must wait for the
   * threads, iob_batch_cancel()'s rescue), and the call inside goes on
   * where this one was. The last settle ends the batch, which destroys
   * the lock: nothing is touched after it. */
  while (!b->ended) {
    uv_mutex_lock(&s->lock);
    thread_job *job = s->done;
    if (job != NULL)
      s->done = job->next_done;
    uv_mutex_unlock(&s->lock);
    if (job == NULL)
      return;
    uv_thread_join(&job->tid);
    s->running--;
    iob__slot_settle(b, job->slot, job->slot->status);
  }
}

static int threads_start(iob_batch *b) {
  threads_state *s = b->style_state;
  return uv_mutex_init(&s->lock);
}

/* The system said no to a thread for operation i. */
static void refused(iob_batch *b, iob__slot *slot, int err) {
  threads_state *s = b->style_state;
  uint32_t i = slot->op.index;
  const iob_threads_options *o = iob__style_options(b);
  if (o->adapt && s->running > 0) {
    iob__slot_release(b, slot);
    iob__op_unlaunch(b, i, s->running); /* run on with what we have */
    return;
  }
  iob_record *r = iob__rec(b, i);
  r->started_ns = r->finished_ns = iob__stamp(b);
  iob__batch_fail(b, IOB_EAGAIN);
  iob__slot_settle(b, slot, err);
}

static size_t stack_size(const iob_batch *b, const iob_kind *kind) {
  const iob_threads_options *o = iob__style_options(b);
  size_t size = o->stack_size ? o->stack_size : STACK_DEFAULT;
  return size > kind->stack_size ? size : kind->stack_size;
}

static void threads_launch(iob_batch *b, uint32_t i) {
  threads_state *s = b->style_state;
  iob__slot *slot = iob__slot_take(b, i);
  thread_job *job = iob__slot_style(b, slot);
  slot->phase = IOB__RUNNING;
  *job = (thread_job){.batch = b, .slot = slot};
  uv_thread_options_t options = {
      .flags = UV_THREAD_HAS_STACK_SIZE,
      .stack_size = stack_size(b, slot->kind),
  };
  int err = options.stack_size > IOB__STACK_MAX
                ? IOB_EAGAIN
                : iob__thread_create(&job->tid, &options, thread_main, job);
  if (err != 0) {
    refused(b, slot, err);
    return;
  }
  if (++s->running > s->most)
    s->most = s->running;
}

static void threads_finish(iob_batch *b) {
  threads_state *s = b->style_state;
  uv_mutex_destroy(&s->lock);
}

static uint32_t threads_threads(const iob_batch *b) {
  const threads_state *s = b->style_state;
  return s->most;
}

void iob_threads_options_init(iob_threads_options *options) {
  if (options != NULL)
    *options = (iob_threads_options){.style = &iob_style_threads};
}

static const iob_threads_options defaults = {.style = &iob_style_threads};

/* Threads cannot be interrupted: those running finish as usual, told to
 * stop by the core (iob_op_stopping()). */
const iob_style iob_style_threads = {
    .name = "threads",
    .options_size = sizeof(iob_threads_options),
    .defaults = &defaults,
    .flags = IOB_STYLE_ON_THREADS | IOB_STYLE_THREAD_EACH,
    .state_size = sizeof(threads_state),
    .slot_size = sizeof(thread_job),
    .start = threads_start,
    .launch = threads_launch,
    .wakeup = threads_wakeup,
    .finish = threads_finish,
    .threads = threads_threads,
};
