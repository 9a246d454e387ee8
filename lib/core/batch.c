/* The batch: checks its configuration, holds the per-operation records,
 * launches operations up to the limit, and ends the run. How an operation
 * runs is its style's business (lib/styles/), what it does its kind's
 * (lib/ops/). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "peak.h"

void iob_config_init(iob_config *config) {
  if (config == NULL)
    return;
  memset(config, 0, sizeof(*config));
  config->style = &iob_style_loop;
  config->kind = &iob_kind_wait;
}

static int check_kind(const iob_kind *k, const iob_style *style) {
  bool waits = k->flags & IOB_KIND_WAITS;
  if (k->name == NULL || (!waits && k->start == NULL && k->run == NULL))
    return IOB_EINVAL; /* nothing to run */
  if (k->op_size > IOB_OP_SIZE_MAX)
    return IOB_ERANGE;
  if (waits && k->start != NULL)
    return IOB_EINVAL; /* the wait is iobound's: the rest runs in run() */
  if ((style->flags & IOB_STYLE_ON_THREADS) && !waits && k->run == NULL)
    return IOB_ENOTSUP; /* a thread can only block */
  return 0;
}

static int check_config(const iob_config *c) {
  if (c->count == 0)
    return IOB_EINVAL;
  int err = check_kind(c->kind, c->style);
  if (err != 0)
    return err;
  if (c->count > IOB_COUNT_MAX)
    return IOB_E2BIG;
  /* Per-operation durations are uint32_t, which uv_sleep() takes whole. */
  if (c->durations_ms == NULL && c->duration_ms > IOB_DURATION_MAX_MS)
    return IOB_ERANGE;
  if (c->timeout_ms > IOB_DURATION_MAX_MS) /* so that it counts in ns */
    return IOB_ERANGE;
  return c->kind->check != NULL ? c->kind->check(c) : 0;
}

/* Touch every page of a fresh block so that the kernel backs it now. A
 * large calloc() gets pages on first use, one fault per page: for a
 * million records that is 15 ms or more, which iob_batch_start() would
 * pay on the loop's thread, blocking it and pushing back the deadlines of
 * the operations launched after each fault. Here, create() pays it. */
static void commit_pages(void *block, size_t size) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  for (size_t at = 0; at < size; at += page)
    ((volatile char *)block)[at] = 0;
}

static uint32_t least(uint32_t limit, uint32_t other) {
  return other != 0 && other < limit ? other : limit;
}

int iob_batch_create(iob_batch **batch, const iob_config *config) {
  if (batch == NULL)
    return IOB_EINVAL;
  *batch = NULL;
  if (config == NULL)
    return IOB_EINVAL;
  iob_config c = *config;
  if (c.style == NULL)
    c.style = &iob_style_loop;
  if (c.kind == NULL)
    c.kind = &iob_kind_wait;
  int err = check_config(&c);
  if (err != 0)
    return err;

  iob_batch *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return IOB_ENOMEM;
  b->records = calloc(c.count, sizeof(*b->records));
  /* A copy: the caller's array may change or go while the batch runs, and
   * the loop style has made a list for each duration it held. */
  uint32_t *durations = NULL;
  if (c.durations_ms != NULL &&
      (durations = malloc(c.count * sizeof(*durations))) != NULL)
    memcpy(durations, c.durations_ms, c.count * sizeof(*durations));
  if (b->records == NULL || (c.durations_ms != NULL && durations == NULL)) {
    free(durations);
    free(b->records);
    free(b);
    return IOB_ENOMEM;
  }
  commit_pages(b->records, c.count * sizeof(*b->records));
  c.durations_ms = durations;
  b->config = c;
  b->limit = least(least(c.count, c.max_in_flight), c.style->limit);
  *batch = b;
  return 0;
}

static void free_kept(iob_batch *b) {
  iob__kept *kept = atomic_load(&b->kept);
  if (kept == NULL)
    return;
  void (*free_result)(void *) = b->config.kind->free_result;
  for (uint32_t i = 0; i < b->config.count; i++) {
    free(kept[i].message);
    if (free_result != NULL && kept[i].result != NULL)
      free_result(kept[i].result);
  }
  free(kept);
}

int iob_batch_free(iob_batch *batch) {
  if (batch == NULL)
    return 0;
  if (batch->state == IOB__ACTIVE)
    return IOB_EBUSY;
  free_kept(batch);
  free((void *)batch->config.durations_ms); /* the batch's own copy */
  free(batch->records);
  free(batch);
  return 0;
}

void *iob_batch_data(const iob_batch *batch) {
  return batch ? batch->config.data : NULL;
}

uv_loop_t *iob_batch_loop(const iob_batch *batch) {
  return batch ? batch->loop : NULL;
}

/* Calls that touch a running batch must come from its loop's thread. */
static bool wrong_thread(const iob_batch *b) {
  uv_thread_t self = uv_thread_self();
  return b->state == IOB__ACTIVE && !uv_thread_equal(&self, &b->loop_thread);
}

int iob_batch_progress(const iob_batch *batch, iob_progress *progress) {
  if (batch == NULL || progress == NULL)
    return IOB_EINVAL;
  if (wrong_thread(batch))
    return IOB_EPERM;
  progress->waiting = batch->config.count - batch->next;
  progress->in_flight = batch->in_flight;
  progress->done = batch->settled;
  progress->failed = batch->failed;
  return 0;
}

/* Launch operations until the limit or the end. Iterative, and guarded,
 * so an operation settled during a launch never recurses into here. */
static void launch_more(iob_batch *b) {
  if (b->launching)
    return;
  b->launching = true;
  while (b->next < b->config.count && b->in_flight < b->limit) {
    uint32_t i = b->next++;
    b->records[i].queued_ns = iob__stamp(b);
    b->in_flight++;
    b->config.style->launch(b, i);
  }
  b->launching = false;
}

static void on_async(uv_async_t *async) {
  iob_batch *b = async->data;
  iob__stamp_fresh(b);
  if (b->config.style->wakeup != NULL)
    b->config.style->wakeup(b);
}

static void free_run_state(iob_batch *b) {
  iob__slots_free(b);
  free(b->style_state);
  b->style_state = NULL;
}

/* What a run needs besides the records: the style's state, the slots,
 * then the two handles, made last: uv_async_init() is the only step after
 * which there would be something to close, and nothing after it can fail.
 * On error none of it is left. */
static int make_run_state(iob_batch *b) {
  const iob_style *style = b->config.style;
  b->style_state = style->state_size ? calloc(1, style->state_size) : NULL;
  int err = style->state_size && b->style_state == NULL ? IOB_ENOMEM
                                                        : iob__slots_make(b);
  if (err == 0 && style->start != NULL)
    err = style->start(b);
  bool started = err == 0;
  if (err == 0)
    err = uv_async_init(b->loop, &b->async, on_async);
  if (err != 0) {
    if (started && style->finish != NULL)
      style->finish(b);
    free_run_state(b);
    return err;
  }
  uv_timer_init(b->loop, &b->timer); /* cannot fail */
  b->async.data = b->timer.data = b;
  return 0;
}

int iob_batch_start(iob_batch *batch, uv_loop_t *loop, iob_batch_cb cb) {
  if (batch == NULL || loop == NULL || cb == NULL)
    return IOB_EINVAL;
  if (batch->state != IOB__CREATED)
    return IOB_EBUSY;

  batch->loop = loop;
  batch->cb = cb;
  batch->loop_thread = uv_thread_self();
  batch->t0 = uv_hrtime();
  batch->cpu0_ns = iob__cpu_ns();
  iob__stamp_fresh(batch);
  int err = make_run_state(batch);
  if (err != 0) {
    batch->loop = NULL;
    return err;
  }
  batch->state = IOB__ACTIVE;
  if (batch->cancelled) {
    /* Cancelled before it started: nothing starts. */
    batch->cancelled = false;
    iob__batch_fail(batch, IOB_ECANCELED);
  } else {
    launch_more(batch);
  }
  return 0;
}

/* Both handles have been called back: the batch is over. */
static void on_closed(uv_handle_t *handle) {
  iob_batch *b = handle->data;
  if (--b->closing > 0)
    return;
  free_run_state(b);
  b->state = IOB__FINISHED;
  /* The callback may free the batch: touch nothing after it. */
  b->cb(b, b->status);
}

void iob__wakeup(iob_batch *b) { uv_async_send(&b->async); }

/* Every operation has settled: measure, let the style clean up, and end
 * from a close callback, never from inside an iobound call. Or, while
 * some have not settled, launch more. */
static void end_or_launch(iob_batch *b) {
  if (b->ended)
    return;
  if (b->settled < b->config.count) {
    launch_more(b);
    return;
  }
  b->ended = true;
  b->end_ns = iob__now(b);
  b->cpu_ns = iob__cpu_ns() - b->cpu0_ns;
  const iob_style *style = b->config.style;
  b->threads = style->threads != NULL ? style->threads(b) : 0;
  if (style->finish != NULL)
    style->finish(b);
  b->closing = 2;
  uv_close((uv_handle_t *)&b->timer, on_closed);
  uv_close((uv_handle_t *)&b->async, on_closed);
}

void iob__settle(iob_batch *b, uint32_t i, int status) {
  b->records[i].status = status;
  if (status != 0)
    b->failed++;
  b->in_flight--;
  b->settled++;
  if (b->config.on_op != NULL)
    b->config.on_op(b, i, &b->records[i]);
  if (status != 0 && b->config.fail_fast)
    iob__batch_fail(b, status);
  end_or_launch(b);
}

/* Tell every operation in a slot to stop; those from start() get their
 * kind's stop(), which may settle them at once. */
static void stop_slots(iob_batch *b) {
  for (uint32_t k = 0; k < b->nslots && !b->ended; k++) {
    iob__slot *s = iob__slot_at(b, k);
    if (s->phase != IOB__FREE)
      iob__slot_stop(b, s, IOB_ECANCELED);
  }
}

void iob__batch_fail(iob_batch *b, int status) {
  if (b->cancelled)
    return;
  b->cancelled = true;
  if (b->status == 0)
    b->status = status;
  /* Operations never launched settle at once, as never started. */
  uint64_t now = iob__stamp(b);
  uint32_t from = b->next;
  b->next = b->config.count;
  for (uint32_t i = from; i < b->config.count; i++) {
    b->records[i] = (iob_record){now, now, now, IOB_ECANCELED, 0};
    b->failed++;
    b->settled++;
    if (b->config.on_op != NULL)
      b->config.on_op(b, i, &b->records[i]);
  }
  if (!b->ended && b->config.style->cancel != NULL)
    b->config.style->cancel(b);
  stop_slots(b);
  end_or_launch(b);
}

int iob_batch_cancel(iob_batch *batch) {
  if (batch == NULL)
    return IOB_EINVAL;
  if (wrong_thread(batch))
    return IOB_EPERM;
  if (batch->state == IOB__CREATED) {
    batch->cancelled = true; /* takes effect when it starts */
  } else if (batch->state == IOB__ACTIVE &&
             batch->settled < batch->config.count) {
    /* (From the last operation's on_op, every one has settled: too late
     * to cancel anything, so the batch's status stays.) */
    iob__stamp_fresh(batch);
    iob__batch_fail(batch, IOB_ECANCELED);
  }
  return 0;
}

int iob__late(const iob_batch *b, uint32_t i, int status) {
  const iob_record *r = &b->records[i];
  uint64_t limit = iob__timeout_ns(b);
  if (status == 0 && limit != 0 && r->finished_ns - r->started_ns > limit)
    return IOB_ETIMEDOUT;
  return status;
}

void iob__op_unlaunch(iob_batch *b, uint32_t i, uint32_t limit) {
  b->next = i;
  b->in_flight--;
  b->limit = limit;
}

/* ---- the report ----------------------------------------------------------- */

/* Distinct threads among the records, in *n. Thread numbers are small
 * and dense, so a bitmap over the batch's own range of them: its size
 * follows the batch's threads, not how many the process made before.
 * 0 or IOB_ENOMEM. */
static int count_workers(const iob_batch *b, uint32_t *n) {
  uint32_t lo = UINT32_MAX, hi = 0;
  for (uint32_t i = 0; i < b->config.count; i++) {
    uint32_t w = b->records[i].worker;
    if (w != 0 && w < lo)
      lo = w;
    if (w > hi)
      hi = w;
  }
  *n = 0;
  if (hi == 0)
    return 0;
  size_t span = (size_t)(hi - lo) + 1;
  unsigned char *seen = calloc((span + 7) / 8, 1);
  if (seen == NULL)
    return IOB_ENOMEM;
  for (uint32_t i = 0; i < b->config.count; i++) {
    uint32_t w = b->records[i].worker;
    if (w == 0)
      continue;
    size_t bit = w - lo;
    if (!(seen[bit / 8] & (1u << (bit % 8)))) {
      seen[bit / 8] |= (unsigned char)(1u << (bit % 8));
      (*n)++;
    }
  }
  free(seen);
  return 0;
}

/* The peak, worked out once and then cached in the batch. */
static int measure_peak(const iob_batch *b, uint32_t *peak) {
  uint32_t known = atomic_load_explicit(&b->peak_known, memory_order_relaxed);
  if (known != 0) {
    *peak = known - 1;
    return 0;
  }
  int err = iob__peak_in_flight(b->records, b->config.count, peak);
  if (err != 0)
    return err;
  /* The batch is const to its readers; the cache is not part of what
   * they read, and the block itself was never const. */
  atomic_store_explicit(&((iob_batch *)b)->peak_known, *peak + 1,
                        memory_order_relaxed);
  return 0;
}

int iob_batch_report(const iob_batch *batch, iob_report *report) {
  if (batch == NULL || report == NULL)
    return IOB_EINVAL;
  if (batch->state != IOB__FINISHED)
    return IOB_EBUSY;

  memset(report, 0, sizeof(*report));
  int err = measure_peak(batch, &report->peak_in_flight);
  if (err != 0)
    return err;
  report->style = batch->config.style;
  report->kind = batch->config.kind;
  report->cores = uv_available_parallelism();
  report->cpu_ns = batch->cpu_ns;
  report->count = batch->config.count;
  report->failed = batch->failed;
  report->threads = batch->threads;
  err = count_workers(batch, &report->workers_used);
  if (err != 0)
    return err;
  report->status = batch->status;
  report->elapsed_ns = batch->end_ns;
  for (uint32_t i = 0; i < batch->config.count; i++) {
    const iob_record *r = &batch->records[i];
    report->work_ns += (double)(r->finished_ns - r->started_ns);
  }
  if (report->elapsed_ns > 0)
    report->speedup = report->work_ns / (double)report->elapsed_ns;
  return 0;
}

const iob_record *iob_batch_records(const iob_batch *batch, uint32_t *count) {
  if (batch == NULL || batch->state != IOB__FINISHED) {
    if (count != NULL)
      *count = 0;
    return NULL;
  }
  if (count != NULL)
    *count = batch->config.count;
  return batch->records;
}

int iob_batch_outcome(const iob_batch *batch, uint32_t index,
                      iob_outcome *outcome) {
  if (batch == NULL || outcome == NULL || index >= batch->config.count)
    return IOB_EINVAL;
  if (batch->state != IOB__FINISHED)
    return IOB_EBUSY;
  const iob__kept *kept = atomic_load(&batch->kept);
  const iob__kept *k = kept ? &kept[index] : NULL;
  *outcome = (iob_outcome){
      .status = batch->records[index].status,
      .message = k ? k->message : NULL,
      .value = k ? k->value : 0,
      .result = k ? k->result : NULL,
  };
  return 0;
}
