/* Thread-pool style: each operation is a uv_queue_work() job on libuv's
 * process-wide pool, blocking one pool thread for its whole duration.
 * Also the pool's size: libuv fixes it once, at the pool's first use. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define POOL_DEFAULT 4 /* libuv's default */
#define POOL_MAX 1024  /* libuv's MAX_THREADPOOL_SIZE */

/* The style's part of an operation's slot. */
typedef struct pool_job {
  uv_work_t req;
  iob_batch *batch;
  iob__slot *slot;
  bool queued; /* handed to the pool, its after-work callback not run */
} pool_job;

/* ---- the pool's size ---------------------------------------------------- */

static atomic_bool pool_used;
static unsigned int pool_frozen;
static uv_once_t pool_once = UV_ONCE_INIT;
/* Whether libuv's pool has, or will have, the size iob_pool_size() says.
 * It reads UV_THREADPOOL_SIZE once, when anything first uses it; while
 * iobound has not changed the variable, whenever that was, it read what
 * the variable says. A change is sure to count only if libuv's pool had
 * not started, and it had not if the process had no thread but the
 * caller's: the pool's threads never end. */
static atomic_bool pool_size_known = true;

/* The threads of this process, from /proc; 0 if unknown. */
static unsigned long process_threads(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL)
    return 0;
  char line[128];
  unsigned long n = 0;
  while (fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "Threads: %lu", &n) == 1)
      break;
  fclose(f);
  return n;
}

/* Read UV_THREADPOOL_SIZE the way libuv does (threadpool.c, init_threads). */
static unsigned int size_from_env(void) {
  const char *val = getenv("UV_THREADPOOL_SIZE");
  unsigned int n = POOL_DEFAULT;
  if (val != NULL)
    n = (unsigned int)atoi(val);
  if (n == 0)
    n = 1;
  if (n > POOL_MAX)
    n = POOL_MAX;
  return n;
}

static void freeze_size(void) {
  pool_frozen = size_from_env();
  atomic_store(&pool_used, true);
}

void iob__pool_mark_used(void) { uv_once(&pool_once, freeze_size); }

unsigned int iob_pool_size(void) {
  return atomic_load(&pool_used) ? pool_frozen : size_from_env();
}

int iob_pool_request_size(unsigned int threads) {
  if (threads < 1 || threads > POOL_MAX)
    return IOB_ERANGE;
  if (atomic_load(&pool_used))
    return IOB_EALREADY;
  char text[16];
  snprintf(text, sizeof(text), "%u", threads);
  if (threads == size_from_env())
    return 0; /* no change: what was known stays known */
  if (setenv("UV_THREADPOOL_SIZE", text, 1) != 0)
    return IOB_ENOMEM;
  atomic_store(&pool_size_known, process_threads() == 1);
  return 0;
}

/* ---- the style ---------------------------------------------------------- */

static void on_work(uv_work_t *req) {
  pool_job *job = req->data;
  job->slot->status = iob__slot_run(job->batch, job->slot);
}

static void on_after_work(uv_work_t *req, int status) {
  pool_job *job = req->data;
  iob_batch *b = job->batch;
  iob__stamp_fresh(b);
  job->queued = false;
  if (status == UV_ECANCELED) {
    /* Taken off the queue before a thread picked it up. */
    iob_record *r = iob__rec(b, job->slot->op.index);
    r->started_ns = r->finished_ns = iob__stamp(b);
    r->worker = 0;
  }
  iob__slot_settle(b, job->slot, status != 0 ? status : job->slot->status);
}

/* libuv creates the pool's threads on its first use, and abort()s the
 * process if the system refuses one: refuse the batch first instead. Once
 * the pool runs (iobound's use; an application's own is beyond knowing),
 * its threads exist and cost nothing more. */
static int pool_start(iob_batch *b) {
  if (!atomic_load(&pool_used) && iob_threads_available() < iob_pool_size())
    return IOB_EAGAIN;
  iob__pool_mark_used();
  return 0;
}

static void pool_launch(iob_batch *b, uint32_t i) {
  iob__slot *slot = iob__slot_take(b, i);
  pool_job *job = iob__slot_style(b, slot);
  slot->phase = IOB__RUNNING;
  *job = (pool_job){.batch = b, .slot = slot, .queued = true};
  job->req.data = job;
  /* Fails only for a NULL work callback, which this never passes. */
  uv_queue_work(b->loop, &job->req, on_work, on_after_work);
}

/* Jobs still queued come back through on_after_work with UV_ECANCELED;
 * uv_cancel() refuses those a thread is running, which finish as usual. */
static void pool_cancel(iob_batch *b) {
  for (uint32_t k = 0; k < b->nslots; k++) {
    iob__slot *slot = iob__slot_at(b, k);
    pool_job *job = iob__slot_style(b, slot);
    if (slot->phase == IOB__RUNNING && job->queued)
      uv_cancel((uv_req_t *)&job->req);
  }
}

/* One job still queued comes back through on_after_work as cancelled. */
static void pool_cancel_op(iob_batch *b, uint32_t i, iob__slot *slot) {
  (void)i;
  pool_job *job = slot != NULL ? iob__slot_style(b, slot) : NULL;
  if (job != NULL && job->queued)
    uv_cancel((uv_req_t *)&job->req);
}

static uint32_t pool_threads(const iob_batch *b) {
  (void)b;
  return pool_size_known ? iob_pool_size() : 0;
}

const iob_style iob_style_pool = {
    .name = "pool",
    .flags = IOB_STYLE_ON_THREADS,
    .slot_size = sizeof(pool_job),
    .start = pool_start,
    .launch = pool_launch,
    .cancel = pool_cancel,
    .cancel_op = pool_cancel_op,
    .threads = pool_threads,
};
