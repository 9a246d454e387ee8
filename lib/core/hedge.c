/* Hedged requests (iob_hedge): the policy's checks, the delay before a
 * further attempt (fixed, or a percentile of the batch's successful
 * attempts, kept in a log-linear histogram: 8 buckets for each power of
 * two of microseconds, so a percentile is within 13%), and the slots of
 * the attempts, which a loop's runner starts, stops and settles
 * (lib/styles/runner.c). */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void iob_hedge_init(iob_hedge *hedge) {
  if (hedge != NULL)
    *hedge = (iob_hedge){.delay_ms = 100, .attempts = 2};
}

int iob_hedge_check(const iob_hedge *hedge) {
  if (hedge == NULL)
    return IOB_EINVAL;
  if (hedge->attempts < 2 || hedge->attempts > IOB_HEDGE_MAX ||
      !(hedge->percentile == 0 ||
        (hedge->percentile > 0 && hedge->percentile < 100)))
    return IOB_ERANGE;
  return 0;
}

/* ---- the batch's times ---------------------------------------------------- */

#define POWERS 42 /* of two, of microseconds: past any duration */
#define BUCKETS (POWERS * 8)
#define SAMPLES_FIRST 20 /* before a percentile means something */

static uint32_t bucket_of(uint64_t us) {
  if (us < 8)
    return (uint32_t)us;
  uint32_t e = 63 - (uint32_t)__builtin_clzll(us); /* 3 and up */
  uint32_t b = e * 8 + (uint32_t)((us >> (e - 3)) & 7);
  return b < BUCKETS ? b : BUCKETS - 1;
}

/* The largest time in bucket b, in us. */
static uint64_t bucket_top(uint32_t b) {
  if (b < 8)
    return b;
  uint32_t e = b / 8, sub = b % 8;
  return ((uint64_t)(8 + sub + 1) << (e - 3)) - 1;
}

void iob__hedge_note(iob_batch *b, const iob_hedge *p, uint64_t ns) {
  if (p == NULL || p->percentile == 0)
    return;
  _Atomic uint32_t *h = atomic_load(&b->latency);
  if (h == NULL) {
    _Atomic uint32_t *made = calloc(BUCKETS, sizeof(*made));
    if (made == NULL)
      return; /* one time the fewer */
    _Atomic uint32_t *none = NULL;
    if (atomic_compare_exchange_strong(&b->latency, &none, made))
      h = made;
    else {
      free(made);
      h = none;
    }
  }
  atomic_fetch_add_explicit(&h[bucket_of(ns / 1000)], 1, memory_order_relaxed);
}

uint64_t iob__hedge_delay_ns(const iob_batch *b, const iob_hedge *p) {
  uint64_t fixed = (uint64_t)p->delay_ms * 1000000;
  _Atomic uint32_t *h = atomic_load(&b->latency);
  if (p->percentile == 0 || h == NULL)
    return fixed;
  uint64_t n = 0, seen = 0;
  for (uint32_t k = 0; k < BUCKETS; k++)
    n += atomic_load_explicit(&h[k], memory_order_relaxed);
  if (n < SAMPLES_FIRST)
    return fixed;
  uint64_t want = (uint64_t)(p->percentile / 100 * (double)n + 0.999999);
  for (uint32_t k = 0; k < BUCKETS; k++) {
    seen += atomic_load_explicit(&h[k], memory_order_relaxed);
    if (seen >= want)
      return bucket_top(k) * 1000;
  }
  return fixed;
}

/* ---- the attempts' slots --------------------------------------------------- */

static size_t aligned(size_t n) {
  size_t a = alignof(max_align_t);
  return (n + a - 1) / a * a;
}

iob__slot *iob__try_make(iob__slot *main) {
  const iob_kind *k = main->kind;
  size_t at = aligned(sizeof(iob__slot));
  iob__slot *t = calloc(1, at + k->op_size);
  if (t == NULL)
    return NULL;
  t->op = main->op;
  t->op.state = k->op_size ? (char *)t + at : NULL;
  t->kind = k;
  atomic_init(&t->stop, 0);
  t->number = IOB__TRY_SLOT;
  t->phase = IOB__RUNNING;
  t->main = main;
  return t;
}

/* Drop what an attempt handed back (its result, if its kind frees
 * results; else the result was the kind's to give only on success). */
static void drop(iob__slot *t) {
  free(t->message);
  if (t->result != NULL && t->kind->free_result != NULL)
    t->kind->free_result(t->result);
}

void iob__try_free(iob__slot *t, bool take) {
  iob__slot *main = t->main;
  if (t->kind->cleanup != NULL)
    t->kind->cleanup(&t->op);
  if (take && t->has_outcome) {
    free(main->message);
    if (main->result != NULL && main->kind->free_result != NULL)
      main->kind->free_result(main->result);
    main->message = t->message;
    main->value = t->value;
    main->result = t->result;
    main->has_outcome = true;
  } else if (take) { /* it said nothing: neither does the operation */
    free(main->message);
    main->message = NULL;
    main->value = 0;
  } else {
    drop(t);
  }
  free(t);
}
