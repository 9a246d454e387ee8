/* Thread-per-operation style, the tutorial's own: every operation in
 * flight gets an OS thread of its own that blocks for the whole operation.
 * A finished thread queues its slot and wakes the loop (uv_async_t); the
 * loop joins it and settles the operation, so every thread is joined.
 *
 * Small stacks (64 KiB by default) let ten thousand threads fit in memory.
 * When the system refuses a thread, the batch either ends with the error
 * or, if the config says so, lowers its limit to the threads it has. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "internal.h"

#define NONE UINT32_MAX
#define STACK_DEFAULT (64 * 1024)

int (*iob__thread_create)(uv_thread_t *tid, const uv_thread_options_t *options,
                          uv_thread_cb entry, void *arg) = uv_thread_create_ex;

typedef struct thread_slot {
  uv_thread_t tid;
  iob_batch *batch;
  uint32_t index;
  int status;         /* what the work returned */
  uint32_t next_done; /* the finished list's link, under the lock */
} thread_slot;

typedef struct threads_state {
  uv_async_t wakeup;
  uv_mutex_t lock;
  uint32_t done_head; /* finished threads to join; under the lock */
  thread_slot *slots; /* one per operation that may be in flight */
  uint32_t *free;     /* stack of unused slots */
  uint32_t nfree;
  uint32_t running; /* threads created and not yet joined */
  uint32_t most;    /* the most threads running at once */
} threads_state;

static void thread_main(void *arg) {
  thread_slot *slot = arg;
  iob_batch *b = slot->batch;
  threads_state *s = b->style;
  iob_record *r = &b->records[slot->index];
  r->worker = iob__thread_number();
  r->started_ns = uv_hrtime() - b->t0;
  int status = iob__work_blocking(b, slot->index);
  r->finished_ns = uv_hrtime() - b->t0;
  slot->status = iob__late(b, slot->index, status);

  uv_mutex_lock(&s->lock);
  slot->next_done = s->done_head;
  s->done_head = (uint32_t)(slot - s->slots);
  uv_mutex_unlock(&s->lock);
  uv_async_send(&s->wakeup);
}

static void on_wakeup(uv_async_t *wakeup) {
  iob_batch *b = wakeup->data;
  threads_state *s = b->style;
  uv_mutex_lock(&s->lock);
  uint32_t k = s->done_head;
  s->done_head = NONE;
  uv_mutex_unlock(&s->lock);
  iob__stamp_fresh(b);

  while (k != NONE) {
    thread_slot *slot = &s->slots[k];
    uint32_t next = slot->next_done;
    uv_thread_join(&slot->tid);
    s->running--;
    s->free[s->nfree++] = k;
    /* May end the batch; the state lives until the close callback. */
    iob__op_done(b, slot->index, slot->status);
    k = next;
  }
}

static void free_state(threads_state *s) {
  free(s->slots);
  free(s->free);
  free(s);
}

static int threads_start(iob_batch *b) {
  threads_state *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return IOB_ENOMEM;
  s->slots = calloc(b->limit, sizeof(*s->slots));
  s->free = iob__slot_stack(b->limit);
  int err = (s->slots == NULL || s->free == NULL) ? IOB_ENOMEM : 0;
  if (err == 0)
    err = uv_mutex_init(&s->lock);
  if (err == 0) {
    err = uv_async_init(b->loop, &s->wakeup, on_wakeup);
    if (err != 0)
      uv_mutex_destroy(&s->lock);
  }
  if (err != 0) {
    free_state(s);
    return err;
  }
  s->wakeup.data = b;
  s->done_head = NONE;
  for (uint32_t k = 0; k < b->limit; k++)
    s->slots[k].batch = b;
  s->nfree = b->limit;
  b->style = s;
  return 0;
}

/* The system said no to a thread for operation i. */
static void refused(iob_batch *b, threads_state *s, uint32_t i, int err) {
  if (b->config.threads_adapt && s->running > 0) {
    b->limit = s->running; /* run on with what we have */
    iob__op_unlaunch(b, i);
    return;
  }
  iob_record *r = &b->records[i];
  r->started_ns = r->finished_ns = iob__stamp(b);
  iob__batch_fail(b, IOB_EAGAIN);
  iob__op_done(b, i, err);
}

static void threads_launch(iob_batch *b, uint32_t i) {
  threads_state *s = b->style;
  uint32_t k = s->free[--s->nfree];
  thread_slot *slot = &s->slots[k];
  slot->index = i;
  slot->status = 0;
  uv_thread_options_t options = {
      .flags = UV_THREAD_HAS_STACK_SIZE,
      .stack_size = b->config.thread_stack_size ? b->config.thread_stack_size
                                                : STACK_DEFAULT,
  };
  int err = iob__thread_create(&slot->tid, &options, thread_main, slot);
  if (err != 0) {
    s->nfree++;
    refused(b, s, i, err);
    return;
  }
  if (++s->running > s->most)
    s->most = s->running;
}

/* Threads cannot be interrupted: those running finish as usual. */
static void threads_cancel(iob_batch *b) { (void)b; }

static void on_close(uv_handle_t *handle) {
  iob_batch *b = handle->data;
  threads_state *s = b->style;
  uv_mutex_destroy(&s->lock);
  free_state(s);
  b->style = NULL;
  iob__batch_closed(b);
}

static void threads_finish(iob_batch *b) {
  threads_state *s = b->style;
  b->threads_used = s->most;
  uv_close((uv_handle_t *)&s->wakeup, on_close);
}

static uint32_t threads_threads(const iob_batch *b) { return b->threads_used; }

const iob__style_ops iob__style_threads = {
    .start = threads_start,
    .launch = threads_launch,
    .cancel = threads_cancel,
    .finish = threads_finish,
    .threads = threads_threads,
};

/* ---- how many threads the system allows -------------------------------- */

static uint64_t read_number(const char *path, int field) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return UINT64_MAX;
  unsigned long long v = UINT64_MAX;
  /* /proc/loadavg's fourth field is "running/total". */
  int ok = field == 0 ? fscanf(f, "%llu", &v)
                      : fscanf(f, "%*s %*s %*s %*u/%llu", &v);
  fclose(f);
  return ok == 1 ? v : UINT64_MAX;
}

uint32_t iob_threads_available(void) {
  uint64_t n = UINT64_MAX;
  uint64_t max = read_number("/proc/sys/kernel/threads-max", 0);
  uint64_t used = read_number("/proc/loadavg", 1);
  if (max != UINT64_MAX && used != UINT64_MAX)
    n = max > used ? max - used : 0;
  /* Each thread's stack is a mapping, and its guard page another. */
  uint64_t maps = read_number("/proc/sys/vm/max_map_count", 0);
  if (maps != UINT64_MAX && maps / 2 < n)
    n = maps / 2;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < n)
    n = rl.rlim_cur;
  return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}
