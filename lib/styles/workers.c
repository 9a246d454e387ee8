/* Workers style: each operation is a job on a pool of threads of
 * iobound's own (iob_workers), not on libuv's. libuv's pool also serves
 * the application's file system and DNS requests: a batch of long
 * blocking operations there makes a uv_fs_stat() wait behind them. Here
 * they wait behind nothing of the application's.
 *
 * A pool is N threads around one FIFO queue of jobs, under one lock. A
 * job is the style's part of an operation's slot; the queue is a doubly
 * linked list through the jobs, so that a cancelled job leaves it in
 * O(1). A thread takes the oldest job, runs it, puts it on its batch's
 * finished list and wakes the batch's loop (iob__wakeup()), where the
 * batch settles it. A pool may serve batches on several loops at once:
 * each job wakes its own batch's.
 *
 * A batch runs on the pool in its options (shared: it counts as a user,
 * so that the pool is not freed under it) or on one of its own, made
 * when it starts and joined when it ends. */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

#define STACK_DEFAULT (256 * 1024)

/* The queue's links: a ring through the pool's head. */
typedef struct queue_link {
  struct queue_link *prev, *next;
} queue_link;

/* The style's part of an operation's slot. */
typedef struct workers_job {
  queue_link link; /* in the pool's queue; under the pool's lock */
  bool queued;     /* in the queue; under the pool's lock */
  iob_batch *batch;
  iob__slot *slot;
  /* The batch's finished list, under the batch's lock; on the loop
   * thread, a list of jobs taken off the queue (cancel()). */
  struct workers_job *next_done;
} workers_job;

struct iob_workers {
  uv_mutex_t lock;
  uv_cond_t more;   /* a job was queued, or the pool stops */
  queue_link queue; /* jobs to run, oldest first */
  bool stopping;
  uint32_t users;    /* batches running on it; under the lock */
  uint32_t nthreads; /* set once made: read without the lock */
  size_t stack_size;
  uv_thread_t tids[];
};

/* A batch's view of the pool. */
typedef struct workers_state {
  iob_workers *pool;
  bool own;         /* a private pool: the batch joins and frees it */
  uint32_t threads; /* the pool's, kept for the report */
  uv_mutex_t lock;
  workers_job *done, *done_last; /* finished, to settle; under the lock */
} workers_state;

/* ---- the queue (under the pool's lock) ---------------------------------- */

static workers_job *job_of(queue_link *link) {
  return (workers_job *)((char *)link - offsetof(workers_job, link));
}

static bool queue_empty(const iob_workers *w) {
  return w->queue.next == &w->queue;
}

static void queue_push(iob_workers *w, workers_job *job) {
  queue_link *last = w->queue.prev;
  job->link = (queue_link){.prev = last, .next = &w->queue};
  last->next = &job->link;
  w->queue.prev = &job->link;
  job->queued = true;
}

static void queue_remove(workers_job *job) {
  job->link.prev->next = job->link.next;
  job->link.next->prev = job->link.prev;
  job->link = (queue_link){NULL, NULL};
  job->queued = false;
}

/* ---- the pool's threads ------------------------------------------------- */

/* Run a job, then hand it to its batch's loop. The wake-up is sent under
 * the batch's lock: once the loop has taken the job (under that lock),
 * this thread touches the batch no more, so the batch may end and close
 * its wake-up handle as soon as the job settles. */
static void run_job(workers_job *job) {
  iob_batch *b = job->batch;
  workers_state *s = b->style_state;
  job->slot->status = iob__slot_run(b, job->slot);

  uv_mutex_lock(&s->lock);
  job->next_done = NULL;
  if (s->done_last != NULL)
    s->done_last->next_done = job;
  else
    s->done = job;
  s->done_last = job;
  iob__wakeup(b);
  uv_mutex_unlock(&s->lock);
}

static void worker_main(void *arg) {
  iob_workers *w = arg;
  iob__block_signals();
  uv_mutex_lock(&w->lock);
  for (;;) {
    while (queue_empty(w) && !w->stopping)
      uv_cond_wait(&w->more, &w->lock);
    /* A pool stops only when no batch uses it: its queue is empty. */
    if (w->stopping)
      break;
    workers_job *job = job_of(w->queue.next);
    queue_remove(job);
    uv_mutex_unlock(&w->lock);
    run_job(job);
    uv_mutex_lock(&w->lock);
  }
  uv_mutex_unlock(&w->lock);
}

/* Stop the first `n` threads of the pool, join them and free it. */
static void pool_destroy(iob_workers *w, uint32_t n) {
  uv_mutex_lock(&w->lock);
  w->stopping = true;
  uv_cond_broadcast(&w->more);
  uv_mutex_unlock(&w->lock);
  for (uint32_t k = 0; k < n; k++)
    uv_thread_join(&w->tids[k]);
  uv_cond_destroy(&w->more);
  uv_mutex_destroy(&w->lock);
  free(w);
}

/* Make a pool of `threads` threads with stacks of `stack_size` bytes.
 * 0, IOB_ENOMEM, or IOB_EAGAIN when a thread is refused: the threads
 * already made are then joined, and nothing is left. */
static int pool_make(iob_workers **out, uint32_t threads, size_t stack_size) {
  if (stack_size > IOB__STACK_MAX)
    return IOB_EAGAIN;
  iob_workers *w = calloc(1, sizeof(*w) + threads * sizeof(w->tids[0]));
  if (w == NULL)
    return IOB_ENOMEM;
  int err = uv_mutex_init(&w->lock);
  if (err != 0) {
    free(w);
    return err;
  }
  err = uv_cond_init(&w->more);
  if (err != 0) {
    uv_mutex_destroy(&w->lock);
    free(w);
    return err;
  }
  w->queue.prev = w->queue.next = &w->queue;
  w->nthreads = threads;
  w->stack_size = stack_size;
  uv_thread_options_t options = {
      .flags = UV_THREAD_HAS_STACK_SIZE,
      .stack_size = stack_size,
  };
  for (uint32_t k = 0; k < threads; k++) {
    if (iob__thread_create(&w->tids[k], &options, worker_main, w) != 0) {
      pool_destroy(w, k);
      return IOB_EAGAIN;
    }
  }
  *out = w;
  return 0;
}

/* ---- the pool, for the application -------------------------------------- */

int iob_workers_create(iob_workers **workers, uint32_t threads,
                       size_t stack_size) {
  if (workers == NULL)
    return IOB_EINVAL;
  *workers = NULL;
  if (threads < 1 || threads > IOB_WORKERS_MAX)
    return IOB_ERANGE;
  return pool_make(workers, threads, stack_size ? stack_size : STACK_DEFAULT);
}

int iob_workers_free(iob_workers *workers) {
  if (workers == NULL)
    return 0;
  uv_mutex_lock(&workers->lock);
  bool busy = workers->users > 0;
  uv_mutex_unlock(&workers->lock);
  if (busy)
    return IOB_EBUSY;
  pool_destroy(workers, workers->nthreads);
  return 0;
}

uint32_t iob_workers_threads(const iob_workers *workers) {
  return workers ? workers->nthreads : 0;
}

/* ---- the style ---------------------------------------------------------- */

/* A private pool: a thread for each operation that may be in flight
 * (max_in_flight, or IOB_WORKERS_DEFAULT: the 4 threads libuv's pool has
 * unless UV_THREADPOOL_SIZE says otherwise), no more than there are
 * operations, nor than a pool may have (the rest wait in its queue). */
static uint32_t private_threads(const iob_batch *b) {
  uint32_t n =
      b->config.max_in_flight ? b->config.max_in_flight : IOB_WORKERS_DEFAULT;
  if (n > b->config.count && !b->open) /* an open batch's may grow */
    n = b->config.count;
  return n < IOB_WORKERS_MAX ? n : IOB_WORKERS_MAX;
}

/* The options' stack size, or the default, or the kind's need if that
 * is more. */
static size_t private_stack(const iob_batch *b) {
  const iob_workers_options *o = iob__style_options(b);
  size_t size = o->stack_size ? o->stack_size : STACK_DEFAULT;
  size_t need = b->config.kind->stack_size;
  return need > size ? need : size;
}

/* Start using the pool of the options, or make one. */
static int use_pool(iob_batch *b, workers_state *s) {
  const iob_workers_options *o = iob__style_options(b);
  iob_workers *shared = o->pool;
  if (shared == NULL) {
    s->own = true;
    return pool_make(&s->pool, private_threads(b), private_stack(b));
  }
  /* A thread's stack cannot grow: a kind that needs more cannot run. */
  if (shared->stack_size < b->config.kind->stack_size)
    return IOB_ENOTSUP;
  uv_mutex_lock(&shared->lock);
  shared->users++;
  uv_mutex_unlock(&shared->lock);
  s->pool = shared;
  return 0;
}

static int workers_start(iob_batch *b) {
  workers_state *s = b->style_state;
  int err = uv_mutex_init(&s->lock);
  if (err != 0)
    return err;
  err = use_pool(b, s);
  if (err != 0) {
    uv_mutex_destroy(&s->lock);
    return err;
  }
  s->threads = s->pool->nthreads;
  return 0;
}

static void workers_launch(iob_batch *b, uint32_t i) {
  workers_state *s = b->style_state;
  if (iob__kind_of(b, i)->stack_size > s->pool->stack_size) {
    /* Submitted to an open batch: a kind whose stack its pool lacks. */
    iob_record *r = iob__rec(b, i);
    r->started_ns = r->finished_ns = iob__stamp(b);
    iob__settle(b, i, IOB_ENOTSUP);
    return;
  }
  iob__slot *slot = iob__slot_take(b, i);
  workers_job *job = iob__slot_style(b, slot);
  slot->phase = IOB__RUNNING;
  *job = (workers_job){.batch = b, .slot = slot};
  iob_workers *w = s->pool;
  uv_mutex_lock(&w->lock);
  queue_push(w, job);
  uv_cond_signal(&w->more);
  uv_mutex_unlock(&w->lock);
}

/* Settle the jobs the threads finished, one at a time off the batch's
 * list, not a local one: a settle may come back in here (a cancel from
 * on_op that must wait for the threads, iob_batch_cancel()'s rescue), and
 * the call inside goes on where this one was. The last settle ends the
 * batch, which destroys the lock: nothing is touched after it. */
static void workers_wakeup(iob_batch *b) {
  workers_state *s = b->style_state;
  while (!b->ended) {
    uv_mutex_lock(&s->lock);
    workers_job *job = s->done;
    if (job != NULL && (s->done = job->next_done) == NULL)
      s->done_last = NULL;
    uv_mutex_unlock(&s->lock);
    if (job == NULL)
      return;
    iob__slot_settle(b, job->slot, job->slot->status);
  }
}

/* A job taken off the queue never ran: it starts and ends now, on no
 * thread, as pool.c records a job libuv's pool gave back. */
static void settle_unrun(iob_batch *b, workers_job *job) {
  iob_record *r = iob__rec(b, job->slot->op.index);
  r->started_ns = r->finished_ns = iob__stamp(b);
  r->worker = 0;
  iob__slot_settle(b, job->slot, IOB_ECANCELED);
}

/* Take this batch's jobs still queued off the queue, and settle them.
 * Those a thread runs cannot be interrupted: they finish as usual, told
 * to stop by the core (iob_op_stopping()). They settle once the pool's
 * lock is let go: settling calls the application (on_op), and the last
 * one may end the batch, which joins a private pool's threads. They go
 * on the finished list and settle as the threads' jobs do: an on_op that
 * cancels may wait there for every operation (iob_batch_cancel()'s
 * rescue), and must find them, not a list of this call's own. */
static void workers_cancel(iob_batch *b) {
  workers_state *s = b->style_state;
  workers_job *taken = NULL;
  uv_mutex_lock(&s->pool->lock);
  for (uint32_t k = b->nslots; k-- > 0;) {
    iob__slot *slot = iob__slot_at(b, k);
    workers_job *job = iob__slot_style(b, slot);
    if (slot->phase == IOB__RUNNING && job->queued) {
      queue_remove(job);
      job->next_done = taken;
      taken = job;
    }
  }
  uv_mutex_unlock(&s->pool->lock);
  if (taken == NULL)
    return;

  uint64_t now = iob__stamp(b);
  workers_job *last = taken;
  for (workers_job *job = taken; job != NULL; job = job->next_done) {
    iob_record *r = iob__rec(b, job->slot->op.index);
    r->started_ns = r->finished_ns = now; /* it never ran, on no thread */
    r->worker = 0;
    job->slot->status = IOB_ECANCELED;
    last = job;
  }
  uv_mutex_lock(&s->lock);
  last->next_done = s->done;
  if (s->done == NULL)
    s->done_last = last;
  s->done = taken;
  uv_mutex_unlock(&s->lock);
  workers_wakeup(b);
}

/* Operation i alone: off the queue if it is still there; if a thread
 * runs it, the core tells it to stop. */
static void workers_cancel_op(iob_batch *b, uint32_t i, iob__slot *slot) {
  if (slot == NULL || slot->phase != IOB__RUNNING || slot->op.index != i)
    return;
  workers_state *s = b->style_state;
  workers_job *job = iob__slot_style(b, slot);
  uv_mutex_lock(&s->pool->lock);
  bool taken = job->queued;
  if (taken)
    queue_remove(job);
  uv_mutex_unlock(&s->pool->lock);
  if (taken)
    settle_unrun(b, job);
}

/* Every operation has settled: no job of the batch is queued or runs,
 * and each thread let go of the batch's lock before the loop could take
 * the job it finished (run_job()), so the lock may go. */
static void workers_finish(iob_batch *b) {
  workers_state *s = b->style_state;
  if (s->own) {
    pool_destroy(s->pool, s->pool->nthreads);
  } else {
    uv_mutex_lock(&s->pool->lock);
    s->pool->users--;
    uv_mutex_unlock(&s->pool->lock);
  }
  s->pool = NULL;
  uv_mutex_destroy(&s->lock);
}

static uint32_t workers_threads(const iob_batch *b) {
  const workers_state *s = b->style_state;
  return s->threads;
}

void iob_workers_options_init(iob_workers_options *options) {
  if (options != NULL)
    *options = (iob_workers_options){.style = &iob_style_workers};
}

static const iob_workers_options defaults = {.style = &iob_style_workers};

/* A submitted kind whose stack a shared pool lacks is refused at once; a
 * pool of the batch's own is made for the config's kind, and such an
 * operation fails when it launches (workers_launch()). */
static int workers_check_kind(const iob_batch *b, const iob_kind *k) {
  const iob_workers_options *o = iob__style_options(b);
  return o->pool != NULL && o->pool->stack_size < k->stack_size ? IOB_ENOTSUP
                                                                : 0;
}

const iob_style iob_style_workers = {
    .name = "workers",
    .check_kind = workers_check_kind,
    .options_size = sizeof(iob_workers_options),
    .defaults = &defaults,
    .flags = IOB_STYLE_ON_THREADS,
    .state_size = sizeof(workers_state),
    .slot_size = sizeof(workers_job),
    .start = workers_start,
    .launch = workers_launch,
    .cancel = workers_cancel,
    .cancel_op = workers_cancel_op,
    .wakeup = workers_wakeup,
    .finish = workers_finish,
    .threads = workers_threads,
};
