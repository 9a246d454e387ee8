/* The batch: checks its configuration, holds the per-operation records,
 * launches operations up to the limit, and ends the run. How an operation
 * runs is the style's business (style-*.c). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static const iob__style_ops *const styles[IOB_STYLE_COUNT_] = {
    [IOB_STYLE_SEQUENTIAL] = &iob__style_sequential,
    [IOB_STYLE_LOOP] = &iob__style_loop,
    [IOB_STYLE_POOL] = &iob__style_pool,
    [IOB_STYLE_THREADS] = &iob__style_threads,
};

void iob_config_init(iob_config *config) {
  if (config == NULL)
    return;
  memset(config, 0, sizeof(*config));
  config->style = IOB_STYLE_LOOP;
}

static bool on_threads(iob_style style) {
  return style == IOB_STYLE_POOL || style == IOB_STYLE_THREADS;
}

static int check_config(const iob_config *c) {
  if ((unsigned)c->style >= IOB_STYLE_COUNT_ ||
      (unsigned)c->work >= IOB_WORK_COUNT_)
    return IOB_ENOTSUP;
  if (c->count == 0)
    return IOB_EINVAL;
  if (c->work == IOB_WORK_USER) {
    if (c->start == NULL && c->blocking == NULL)
      return IOB_EINVAL;
    /* A start function needs the loop; threads can only block. */
    if (on_threads(c->style) && c->blocking == NULL)
      return IOB_ENOTSUP;
  }
  if (c->count > IOB_COUNT_MAX)
    return IOB_E2BIG;
  /* Per-operation durations are uint32_t, which uv_sleep() takes whole. */
  if (c->durations_ms == NULL && c->duration_ms > IOB_DURATION_MAX_MS)
    return IOB_ERANGE;
  return 0;
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

int iob_batch_create(iob_batch **batch, const iob_config *config) {
  if (batch == NULL)
    return IOB_EINVAL;
  *batch = NULL;
  if (config == NULL)
    return IOB_EINVAL;
  int err = check_config(config);
  if (err != 0)
    return err;

  iob_batch *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return IOB_ENOMEM;
  b->records = calloc(config->count, sizeof(*b->records));
  if (b->records == NULL) {
    free(b);
    return IOB_ENOMEM;
  }
  commit_pages(b->records, config->count * sizeof(*b->records));
  b->config = *config;
  b->ops = styles[config->style];
  b->limit = config->max_in_flight == 0 || config->max_in_flight > config->count
                 ? config->count
                 : config->max_in_flight;
  *batch = b;
  return 0;
}

int iob_batch_free(iob_batch *batch) {
  if (batch == NULL)
    return 0;
  if (batch->state == IOB__RUNNING)
    return IOB_EBUSY;
  free(batch->records);
  free(batch);
  return 0;
}

void *iob_batch_data(const iob_batch *batch) {
  return batch ? batch->config.data : NULL;
}

void *iob_batch_op_data(const iob_batch *batch) {
  return batch ? iob__op_data(batch) : NULL;
}

uv_loop_t *iob_batch_loop(const iob_batch *batch) {
  return batch ? batch->loop : NULL;
}

/* Calls that touch a running batch must come from its loop's thread. */
static bool wrong_thread(const iob_batch *b) {
  uv_thread_t self = uv_thread_self();
  return b->state == IOB__RUNNING && !uv_thread_equal(&self, &b->loop_thread);
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
    b->ops->launch(b, i);
  }
  b->launching = false;
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
  int err = batch->ops->start(batch);
  if (err != 0)
    return err;
  batch->state = IOB__RUNNING;
  if (batch->cancelled) {
    /* Cancelled before it started: nothing starts. */
    batch->cancelled = false;
    iob__batch_fail(batch, IOB_ECANCELED);
  } else {
    launch_more(batch);
  }
  return 0;
}

/* Every operation has settled: measure, and let the style clean up. Or,
 * while some have not, launch more. */
static void end_or_launch(iob_batch *b) {
  if (b->ended)
    return;
  if (b->settled < b->config.count) {
    launch_more(b);
    return;
  }
  b->ended = true;
  b->end_ns = uv_hrtime() - b->t0;
  b->cpu_ns = iob__cpu_ns() - b->cpu0_ns;
  b->ops->finish(b);
}

void iob__op_done(iob_batch *b, uint32_t i, int status) {
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
  b->ops->cancel(b);
  end_or_launch(b);
}

int iob_batch_cancel(iob_batch *batch) {
  if (batch == NULL)
    return IOB_EINVAL;
  if (wrong_thread(batch))
    return IOB_EPERM;
  if (batch->state == IOB__CREATED) {
    batch->cancelled = true; /* takes effect when it starts */
  } else if (batch->state == IOB__RUNNING && !batch->ended) {
    iob__stamp_fresh(batch);
    iob__batch_fail(batch, IOB_ECANCELED);
  }
  return 0;
}

int iob_op_done(iob_batch *batch, uint32_t index, int status) {
  if (batch == NULL || batch->state != IOB__RUNNING ||
      index >= batch->config.count ||
      !iob__user_in_flight(batch->records[index].worker))
    return IOB_EINVAL;
  if (wrong_thread(batch))
    return IOB_EPERM;
  iob_record *r = &batch->records[index];
  if (r->worker == IOB__USER_TIMED_OUT)
    status = IOB_ETIMEDOUT;
  iob__stamp_fresh(batch); /* called from the user's callbacks */
  r->finished_ns = iob__stamp(batch);
  r->worker = 0;
  iob__op_done(batch, index, status);
  return 0;
}

int iob__late(const iob_batch *b, uint32_t i, int status) {
  const iob_record *r = &b->records[i];
  uint64_t limit = b->config.timeout_ms * 1000000;
  if (status == 0 && limit != 0 && r->finished_ns - r->started_ns > limit)
    return IOB_ETIMEDOUT;
  return status;
}

void iob__op_unlaunch(iob_batch *b, uint32_t i) {
  b->next = i;
  b->in_flight--;
}

void iob__batch_closed(iob_batch *b) {
  b->state = IOB__FINISHED;
  /* The callback may free the batch: touch nothing after it. */
  b->cb(b, b->status);
}

/* Distinct thread numbers among the records; small numbers, so a bitmap. */
static uint32_t count_workers(const iob_batch *b) {
  uint32_t top = 0;
  for (uint32_t i = 0; i < b->config.count; i++)
    if (b->records[i].worker > top)
      top = b->records[i].worker;
  if (top == 0)
    return 0;
  unsigned char *seen = calloc((size_t)top + 1, 1);
  if (seen == NULL)
    return 0;
  uint32_t n = 0;
  for (uint32_t i = 0; i < b->config.count; i++) {
    uint32_t w = b->records[i].worker;
    if (w != 0 && !seen[w]) {
      seen[w] = 1;
      n++;
    }
  }
  free(seen);
  return n;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The most operations running at one moment, from the measured times
 * (not from what was handed to the style: a pool queues more than it
 * runs). An operation that ends when another starts does not overlap it.
 * Operations that took no time at all (failed at once) overlap nothing,
 * but still count as one running. */
static int measure_peak(const iob_batch *b, uint32_t *peak) {
  uint32_t known = atomic_load_explicit(&b->peak_known, memory_order_relaxed);
  if (known != 0) {
    *peak = known - 1;
    return 0;
  }
  uint32_t n = b->config.count, m = 0;
  uint64_t *starts = malloc(2 * (size_t)n * sizeof(*starts));
  if (starts == NULL)
    return IOB_ENOMEM;
  uint64_t *ends = starts + n;
  for (uint32_t i = 0; i < n; i++) {
    if (b->records[i].finished_ns > b->records[i].started_ns) {
      starts[m] = b->records[i].started_ns;
      ends[m++] = b->records[i].finished_ns;
    }
  }
  qsort(starts, m, sizeof(*starts), cmp_u64);
  qsort(ends, m, sizeof(*ends), cmp_u64);
  /* Every end popped here belongs to an operation that started earlier
   * (its start < its end <= this start), so `running` never wraps. */
  uint32_t running = 0, top = m < n ? 1 : 0, e = 0;
  for (uint32_t s = 0; s < m; s++) {
    while (e < m && ends[e] <= starts[s]) {
      e++;
      running--;
    }
    if (++running > top)
      top = running;
  }
  free(starts);
  *peak = top;
  /* The batch is const to its readers; the cache is not part of what
   * they read, and the block itself was never const. */
  atomic_store_explicit(&((iob_batch *)b)->peak_known, top + 1,
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
  report->work = batch->config.work;
  report->cores = uv_available_parallelism();
  report->cpu_ns = batch->cpu_ns;
  report->count = batch->config.count;
  report->failed = batch->failed;
  report->threads = batch->ops->threads(batch);
  report->workers_used = count_workers(batch);
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
