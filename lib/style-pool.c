/* Thread-pool style: each operation is a uv_queue_work() job on libuv's
 * process-wide pool, blocking one pool thread for its whole duration.
 * Also the pool's size: libuv fixes it once, at the pool's first use. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define POOL_DEFAULT 4  /* libuv's default */
#define POOL_MAX 1024   /* libuv's MAX_THREADPOOL_SIZE */

typedef struct pool_slot {
  uv_work_t req;
  iob_batch *batch;
  uint32_t index;
  int status;  /* what the work returned, set on the pool thread */
  bool queued; /* handed to the pool, its after-work callback not run */
} pool_slot;

typedef struct pool_state {
  uv_timer_t closer; /* never started: closing it defers the batch's end */
  pool_slot *slots;  /* one per operation that may be in flight */
  uint32_t *free;   /* stack of unused slots */
  uint32_t nfree;
} pool_state;

/* ---- the pool's size ---------------------------------------------------- */

static atomic_bool pool_used;
static unsigned int pool_frozen;
static uv_once_t pool_once = UV_ONCE_INIT;

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
  return setenv("UV_THREADPOOL_SIZE", text, 1) == 0 ? 0 : IOB_ENOMEM;
}

/* ---- the style ---------------------------------------------------------- */

static void on_work(uv_work_t *req) {
  pool_slot *slot = req->data;
  iob_batch *b = slot->batch;
  iob_record *r = &b->records[slot->index];
  r->worker = iob__thread_number();
  r->started_ns = uv_hrtime() - b->t0;
  int status = iob__work_blocking(b, slot->index);
  r->finished_ns = uv_hrtime() - b->t0;
  slot->status = iob__late(b, slot->index, status);
}

static void on_after_work(uv_work_t *req, int status) {
  pool_slot *slot = req->data;
  iob_batch *b = slot->batch;
  pool_state *s = b->style;
  iob__stamp_fresh(b);
  slot->queued = false;
  s->free[s->nfree++] = (uint32_t)(slot - s->slots);
  if (status == UV_ECANCELED) {
    /* Taken off the queue before a thread picked it up. */
    iob_record *r = &b->records[slot->index];
    r->started_ns = r->finished_ns = iob__stamp(b);
    r->worker = 0;
  }
  iob__op_done(b, slot->index, status != 0 ? status : slot->status);
}

static void free_state(pool_state *s) {
  if (s == NULL)
    return;
  free(s->slots);
  free(s->free);
  free(s);
}

static int pool_start(iob_batch *b) {
  pool_state *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return IOB_ENOMEM;
  s->slots = calloc(b->limit, sizeof(*s->slots));
  s->free = iob__slot_stack(b->limit);
  if (s->slots == NULL || s->free == NULL) {
    free_state(s);
    return IOB_ENOMEM;
  }
  for (uint32_t k = 0; k < b->limit; k++) {
    s->slots[k].req.data = &s->slots[k];
    s->slots[k].batch = b;
  }
  s->nfree = b->limit;
  uv_timer_init(b->loop, &s->closer);
  s->closer.data = b;
  b->style = s;
  iob__pool_mark_used();
  return 0;
}

static void pool_launch(iob_batch *b, uint32_t i) {
  pool_state *s = b->style;
  pool_slot *slot = &s->slots[s->free[--s->nfree]];
  slot->index = i;
  slot->status = 0;
  slot->queued = true;
  /* Fails only for a NULL work callback, which this never passes. */
  uv_queue_work(b->loop, &slot->req, on_work, on_after_work);
}

/* Jobs still queued come back through on_after_work with UV_ECANCELED;
 * uv_cancel() refuses those a thread is running, which finish as usual. */
static void pool_cancel(iob_batch *b) {
  pool_state *s = b->style;
  for (uint32_t k = 0; k < b->limit; k++)
    if (s->slots[k].queued)
      uv_cancel((uv_req_t *)&s->slots[k].req);
}

static void on_close(uv_handle_t *handle) {
  iob_batch *b = handle->data;
  free_state(b->style);
  b->style = NULL;
  iob__batch_closed(b);
}

static void pool_finish(iob_batch *b) {
  pool_state *s = b->style;
  uv_close((uv_handle_t *)&s->closer, on_close);
}

static uint32_t pool_threads(const iob_batch *b) {
  (void)b;
  return iob_pool_size();
}

const iob__style_ops iob__style_pool = {
    .start = pool_start,
    .launch = pool_launch,
    .cancel = pool_cancel,
    .finish = pool_finish,
    .threads = pool_threads,
};
