/* Percentiles of a finished batch's times (iob_batch_latency()): each
 * operation's time queued, running and in all, in one pass over the
 * records into a log-linear histogram, never a sort, once: the answer is
 * kept with the batch (120 bytes). Below 128 ns a
 * bucket is a nanosecond; above, each power of two is cut into 128
 * buckets, so a bucket's top is within 1/128 (0.8%) of anything in it.
 * 7,424 buckets of 4 bytes: 29 KB, for the call's length only. The
 * operations pay nothing while they run: their records hold it all. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SUB_BITS 7
#define SUB (1u << SUB_BITS) /* buckets per power of two */
#define BUCKETS ((64 - SUB_BITS + 1) * SUB)

static uint32_t bucket_of(uint64_t ns) {
  if (ns < SUB)
    return (uint32_t)ns;
  uint32_t e = 63 - (uint32_t)__builtin_clzll(ns); /* SUB_BITS and up */
  uint32_t sub = (uint32_t)(ns >> (e - SUB_BITS)) & (SUB - 1);
  return (e - SUB_BITS + 1) * SUB + sub;
}

/* The largest value bucket b holds. */
static uint64_t bucket_top(uint32_t b) {
  if (b < SUB)
    return b;
  uint32_t e = b / SUB + SUB_BITS - 1, sub = b % SUB;
  uint64_t width = UINT64_C(1) << (e - SUB_BITS);
  return ((uint64_t)(SUB + sub) << (e - SUB_BITS)) + (width - 1);
}

/* The time of the operation at rank ceil(q * n) (1..n). */
static uint64_t at_rank(const uint32_t *h, uint32_t n, double q, uint64_t max) {
  uint64_t want = (uint64_t)(q * n);
  if ((double)want < q * n)
    want++;
  if (want == 0)
    want = 1;
  uint64_t seen = 0;
  for (uint32_t b = 0; b < BUCKETS; b++) {
    seen += h[b];
    if (seen >= want) {
      uint64_t top = bucket_top(b);
      return top < max ? top : max; /* the max is exact */
    }
  }
  return max;
}

enum { QUEUED, RUNNING, TOTAL };

/* One of an operation's three times, in ns. */
static uint64_t time_of(const iob_record *r, int which, bool from_start) {
  uint64_t queued = from_start ? 0 : r->queued_ns;
  switch (which) {
  case QUEUED:
    return r->started_ns - queued;
  case RUNNING:
    return r->finished_ns - r->started_ns;
  default:
    return r->finished_ns - queued;
  }
}

static void measure(const iob_batch *b, uint32_t *h, int which, bool from_start,
                    iob_percentiles *p) {
  uint32_t n = b->config.count;
  uint64_t max = 0;
  memset(h, 0, BUCKETS * sizeof(*h));
  for (uint32_t i = 0; i < n; i++) {
    uint64_t t = time_of(iob__rec(b, i), which, from_start);
    h[bucket_of(t)]++;
    if (t > max)
      max = t;
  }
  *p = (iob_percentiles){.p50_ns = at_rank(h, n, 0.50, max),
                         .p90_ns = at_rank(h, n, 0.90, max),
                         .p99_ns = at_rank(h, n, 0.99, max),
                         .p999_ns = at_rank(h, n, 0.999, max),
                         .max_ns = max};
}

int iob__latency_of(const iob_batch *batch, const iob_latency **out) {
  iob_latency *known = atomic_load(&batch->percentiles);
  if (known != NULL) {
    *out = known;
    return 0;
  }
  if (batch->config.count == 0)
    return IOB_ENODATA;
  if (iob__gather(batch) != 0)
    return IOB_ENOMEM;
  uint32_t *h = malloc(BUCKETS * sizeof(*h));
  iob_latency *l = calloc(1, sizeof(*l));
  if (h == NULL || l == NULL) {
    free(h);
    free(l);
    return IOB_ENOMEM;
  }
  /* Under a limit, a batch of count asked for every operation at its
   * start: each waited for a slot from then, as the timelines draw it. */
  bool from_start = !batch->open && (batch->limit < batch->config.count ||
                                     batch->config.shared_limit != NULL);
  l->count = batch->config.count;
  measure(batch, h, QUEUED, from_start, &l->queued);
  measure(batch, h, RUNNING, from_start, &l->running);
  measure(batch, h, TOTAL, from_start, &l->total);
  free(h);
  /* (Readers of a finished batch may be on any threads: the first to
   * keep its answer wins, the others free theirs.) */
  iob_latency *none = NULL;
  if (!atomic_compare_exchange_strong(&((iob_batch *)batch)->percentiles, &none,
                                      l)) {
    free(l);
    l = none;
  }
  *out = l;
  return 0;
}

int iob_batch_latency(const iob_batch *batch, iob_latency *latency) {
  if (batch == NULL || latency == NULL)
    return IOB_EINVAL;
  if (batch->state != IOB__FINISHED)
    return IOB_EBUSY;
  const iob_latency *l;
  int err = iob__latency_of(batch, &l);
  if (err == 0)
    *latency = *l;
  return err;
}
