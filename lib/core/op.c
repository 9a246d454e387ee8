/* Operations in flight: their slots, what a kind calls on its operation
 * (iob_op_*), and running one to its end on a thread. A plain wait on the
 * loop needs none of this: its record is all it has. */
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NONE UINT32_MAX

static size_t aligned(size_t n) {
  size_t a = alignof(max_align_t);
  return (n + a - 1) / a * a;
}

static iob__slot *slot_of_op(const iob_op *op) {
  return iob__slot_outermost(iob__slot_of_op(op));
}

/* A start() kind, or a thread style: a slot each in flight. (A loop's
 * runner has its own for run(), which runs one at a time; a plain wait
 * on a loop needs none.) */
bool iob__needs_slot(const iob_batch *b, uint32_t i) {
  return iob__kind_of(b, i)->start != NULL ||
         (b->config.style->flags & IOB_STYLE_ON_THREADS);
}

/* How many slots a batch of count needs: one per operation in flight,
 * if they need one. An open batch makes them as its operations need them
 * (iob__slots_reserve()). */
static uint32_t slots_needed(const iob_batch *b) {
  if (b->open || !iob__needs_slot(b, 0))
    return 0;
  return b->limit;
}

static void set_stride(iob_batch *b) {
  b->slot_style_at = aligned(sizeof(iob__slot));
  b->slot_state_at = b->slot_style_at + aligned(b->config.style->slot_size);
  b->slot_stride = b->slot_state_at + aligned(b->state_room);
}

int iob__slots_make(iob_batch *b) {
  set_stride(b);
  uint32_t n = slots_needed(b);
  if (n == 0)
    return 0;
  b->slots = calloc(n, b->slot_stride);
  b->free_slots = malloc(n * sizeof(*b->free_slots));
  /* Operation -> slot, for iob_op_done()'s kinds and to cancel one
   * operation in O(1). */
  b->slot_of = malloc(b->config.count * sizeof(*b->slot_of));
  if (b->slot_of != NULL)
    memset(b->slot_of, 0xff, b->config.count * sizeof(*b->slot_of));
  if (b->slots == NULL || b->free_slots == NULL || b->slot_of == NULL) {
    iob__slots_free(b);
    return IOB_ENOMEM;
  }
  b->nslots = b->nfree = b->free_cap = n;
  for (uint32_t k = 0; k < n; k++) {
    b->free_slots[k] = n - 1 - k; /* slot 0 on top */
    iob__slot_at(b, k)->number = k;
    atomic_init(&iob__slot_at(b, k)->stop, 0);
  }
  return 0;
}

/* An open batch's slots come in chunks, 16 << k each, made as the
 * operations in flight need them and kept until the batch ends. */
static int slots_grow(iob_batch *b) {
  uint32_t at, k = iob__chunk(b->nslots, IOB__SLOT_CHUNK_SHIFT, &at);
  uint32_t n = (uint32_t)iob__chunk_size(k, IOB__SLOT_CHUNK_SHIFT);
  if (b->free_cap < b->nslots + n) {
    uint32_t *stack = realloc(b->free_slots, (b->nslots + n) * sizeof(*stack));
    if (stack == NULL)
      return IOB_ENOMEM;
    b->free_slots = stack;
    b->free_cap = b->nslots + n;
  }
  if ((b->slot_chunks[k] = calloc(n, b->slot_stride)) == NULL)
    return IOB_ENOMEM;
  for (uint32_t j = n; j-- > 0;) {
    uint32_t number = b->nslots + j;
    iob__slot *s = iob__slot_at(b, number);
    s->number = number;
    atomic_init(&s->stop, 0);
    b->free_slots[b->nfree++] = number; /* the lowest on top */
  }
  b->nslots += n;
  return 0;
}

int iob__slots_reserve(iob_batch *b, uint32_t i) {
  int err = b->nfree == 0 ? slots_grow(b) : 0;
  if (err == 0)
    iob__task_at(b, i)->slot = b->free_slots[--b->nfree];
  return err;
}

void iob__slot_unreserve(iob_batch *b, uint32_t i) {
  iob__task *t = iob__task_at(b, i);
  if (t->slot != NONE) /* set aside, never taken */
    b->free_slots[b->nfree++] = t->slot;
  t->slot = NONE;
}

void iob__slots_free(iob_batch *b) {
  free(b->slots);
  free(b->free_slots);
  free(b->slot_of);
  for (uint32_t k = 0; k < IOB__SLOT_CHUNKS; k++) {
    free(b->slot_chunks[k]);
    b->slot_chunks[k] = NULL;
  }
  b->slots = NULL;
  b->free_slots = b->slot_of = NULL;
  b->nslots = b->nfree = b->free_cap = 0;
}

void iob__slot_prepare(iob_batch *b, iob__slot *s, uint32_t i) {
  const iob_kind *kind = iob__kind_of(b, i);
  size_t op_size = kind->op_size;
  void *state = op_size ? (char *)s + b->slot_state_at : NULL;
  const void *target = b->config.target, *input = NULL;
  void *data = NULL, *shared = b->kind_shared;
  if (b->open) {
    iob__task *t = iob__task_at(b, i);
    if (t->state != NULL) /* larger than a slot holds: its own */
      state = t->state;
    target = t->target;
    input = t->input;
    data = t->data;
    shared = t->shared;
  }
  if (state != NULL)
    memset(state, 0, op_size);
  s->op = (iob_op){b,      target, state, i, iob__duration_ms(b, i),
                   shared, input,  data,  0};
  s->kind = kind;
  atomic_store_explicit(&s->stop, 0, memory_order_relaxed);
  s->status = 0;
  s->has_outcome = false;
  s->message = NULL;
  s->value = 0;
  s->result = NULL;
  s->inner = NULL;
  s->hedges = 0;
  s->hedge_won = false;
  s->main = NULL;
  s->tries = NULL;
  s->timed = false;
  s->attempt_ns = 0;
  s->began_ns = 0;
  iob__attempts_drop(s);
}

iob__slot *iob__slot_take(iob_batch *b, uint32_t i) {
  /* An open batch's operation has its slot set aside at launch. */
  uint32_t k = b->open ? iob__task_at(b, i)->slot : b->free_slots[--b->nfree];
  iob__slot *s = iob__slot_at(b, k);
  iob__slot_prepare(b, s, i);
  if (!b->open)
    b->slot_of[i] = k;
  return s;
}

iob__slot *iob__slot_find(const iob_batch *b, uint32_t i) {
  uint32_t k = b->open              ? iob__task_at(b, i)->slot
               : b->slot_of != NULL ? b->slot_of[i]
                                    : NONE;
  return k == NONE ? NULL : iob__slot_at(b, k);
}

/* Make room to keep what operations hand back, once: the first
 * iob_op_set_*() call makes it, from whatever thread it runs on, so that
 * running out of memory shows there, while the kind still holds what it
 * handed (and keep() below cannot fail). */
int iob__make_room_to_keep(iob_batch *b) {
  if (b->open || atomic_load_explicit(&b->kept, memory_order_acquire) != NULL)
    return 0; /* an open batch keeps them in its tasks */
  iob__kept *kept = calloc(b->config.count, sizeof(*kept));
  if (kept == NULL)
    return IOB_ENOMEM;
  iob__kept *none = NULL;
  if (!atomic_compare_exchange_strong(&b->kept, &none, kept))
    free(kept); /* another thread made it first */
  return 0;
}

/* Keep what operation i handed back, in the room made for it. */
static void keep(iob_batch *b, iob__slot *s) {
  iob__kept k = {.message = s->message,
                 .value = s->value,
                 .result = s->result,
                 .retries = s->op.attempt,
                 .hedges = s->hedges,
                 .hedge_won = s->hedge_won};
  iob__attempts_keep(s, &k);
  if (b->open) {
    iob__task_at(b, s->op.index)->kept = k;
    return;
  }
  iob__kept *kept = atomic_load_explicit(&b->kept, memory_order_acquire);
  kept[s->op.index] = k;
}

void iob__slot_release(iob_batch *b, iob__slot *s) {
  s->phase = IOB__FREE;
  if (b->open)
    iob__task_at(b, s->op.index)->slot = NONE;
  else if (b->slot_of != NULL)
    b->slot_of[s->op.index] = NONE;
  b->free_slots[b->nfree++] = s->number;
}

void iob__slot_close(iob_batch *b, iob__slot *s, bool cleanup) {
  (void)b;
  if (cleanup && s->kind->cleanup != NULL)
    s->kind->cleanup(&s->op);
  if (s->has_outcome)
    keep(b, s);
  else
    iob__attempts_drop(s);
}

void iob__slot_settle(iob_batch *b, iob__slot *s, int status) {
  uint32_t i = s->op.index;
  iob__slot_close(b, s, true);
  iob__slot_release(b, s);
  iob__settle(b, i, status);
}

void iob__slot_stop(iob__slot *s, int why) {
  int none = 0; /* told already: the first reason stays */
  atomic_compare_exchange_strong(&s->stop, &none, why);
}

/* Back off for `ns` on this thread, in short sleeps that look for a
 * stop between them. 0, or the reason it must stop. */
static int back_off(iob_batch *b, iob__slot *s, uint64_t ns) {
  uint64_t until = iob__now(b) + ns, now;
  int stop;
  while ((stop = atomic_load(&s->stop)) == 0 && (now = iob__now(b)) < until) {
    uint64_t left_ms = (until - now + 999999) / 1000000;
    uv_sleep((unsigned int)(left_ms < 5 ? left_ms : 5));
  }
  return stop;
}

/* An attempt's own timeout, in ns (iob_retry.attempt_timeout_ms); 0. */
static uint64_t attempt_timeout_ns(const iob_batch *b, uint32_t i) {
  const iob_retry *p = iob__retry_of(b, i);
  return p != NULL ? (uint64_t)p->attempt_timeout_ms * 1000000 : 0;
}

/* One attempt of run() (timed out, if it ran past the timeout or its
 * own). */
static int run_once(iob_batch *b, iob__slot *s) {
  s->attempt_ns = iob__now(b);
  int status = iob__kind_status(s->kind->run(&s->op));
  uint64_t end = iob__rec(b, s->op.index)->finished_ns = iob__now(b);
  uint64_t own = attempt_timeout_ns(b, s->op.index);
  if (status == 0 && own != 0 && end - s->attempt_ns > own)
    return IOB_ETIMEDOUT;
  return iob__late(b, s->op.index, status);
}

int iob__slot_run(iob_batch *b, iob__slot *s) {
  iob_record *r = iob__rec(b, s->op.index);
  const iob_kind *k = s->kind;
  r->worker = iob__thread_number();
  r->started_ns = iob__now(b);
  int status = 0;
  if (k->flags & IOB_KIND_WAITS) {
    /* A simulated blocking call: the thread can do nothing else. A wait
     * the timeout cuts short ends then, timed out. */
    uint64_t ms = s->op.duration_ms, t = b->config.timeout_ms;
    bool cut = t != 0 && t < ms;
    uv_sleep((unsigned int)(cut ? t : ms));
    if (cut)
      status = IOB_ETIMEDOUT;
  }
  /* A wait that was not cut short ended on time, however long the thread
   * overslept: as on the loop. */
  r->finished_ns = iob__now(b);
  if (status != 0 || k->run == NULL)
    return status;
  status = run_once(b, s);
  /* Its retries, here on its thread, which backs off meanwhile. (Its
   * first attempt began with its record: a wait before its run() too.) */
  uint64_t delay;
  while ((delay = iob__retry_after(b, s, status)) != IOB__NO_RETRY) {
    iob__attempt_note(b, s, s->op.attempt == 0 ? r->started_ns : s->attempt_ns,
                      r->finished_ns, status, false);
    int stop = back_off(b, s, delay);
    if (stop != 0) {
      r->finished_ns = iob__now(b);
      return stop;
    }
    iob__retry_reset(b, s, true);
    status = run_once(b, s);
  }
  if (s->op.attempt > 0)
    iob__attempt_note(b, s, s->attempt_ns, r->finished_ns, status, false);
  return status;
}

/* ---- what a kind calls ------------------------------------------------------ */

int iob_op_done(iob_op *op, int status) {
  if (op == NULL)
    return IOB_EINVAL;
  iob__slot *s = iob__slot_of_op(op);
  iob_batch *b = op->batch;
  status = iob__kind_status(status);
  if (b->config.style->op_done != NULL) /* a style that runs start() */
    return b->config.style->op_done(b, s, status);
  /* Nothing of a thread style's began with start(), but an inner
   * operation may have, inside a run(). */
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &b->loop_thread))
    return IOB_EPERM;
  return s->number == IOB__INNER_SLOT ? iob__inner_done(s, status) : IOB_EINVAL;
}

int iob_op_set_message(iob_op *op, const char *message) {
  if (op == NULL || message == NULL)
    return IOB_EINVAL;
  iob__slot *s = slot_of_op(op);
  char *copy = iob__make_room_to_keep(op->batch) == 0 ? strdup(message) : NULL;
  if (copy == NULL)
    return IOB_ENOMEM;
  free(s->message);
  s->message = copy;
  s->has_outcome = true;
  return 0;
}

int iob_op_set_value(iob_op *op, uint64_t value) {
  if (op == NULL)
    return IOB_EINVAL;
  if (iob__make_room_to_keep(op->batch) != 0)
    return IOB_ENOMEM;
  iob__slot *s = slot_of_op(op);
  s->value = value;
  s->has_outcome = true;
  return 0;
}

int iob_op_set_result(iob_op *op, void *result) {
  if (op == NULL)
    return IOB_EINVAL;
  if (iob__make_room_to_keep(op->batch) != 0)
    return IOB_ENOMEM;
  iob__slot *s = slot_of_op(op);
  s->result = result;
  s->has_outcome = true;
  return 0;
}

/* Nanoseconds left of `limit` after `used`, in whole ms rounded up. */
static int64_t ms_left(uint64_t used, uint64_t limit) {
  return used >= limit ? 0 : (int64_t)((limit - used + 999999) / 1000000);
}

int64_t iob_op_remaining_ms(const iob_op *op) {
  if (op == NULL)
    return -1;
  const iob_batch *b = op->batch;
  uint64_t now = iob__now(b);
  int64_t left = -1;
  if (b->config.timeout_ms != 0)
    left =
        ms_left(now - iob__rec(b, op->index)->started_ns, iob__timeout_ns(b));
  if (b->config.deadline_ms != 0) { /* the batch's, counted from its start */
    int64_t batch_left = ms_left(now, b->config.deadline_ms * 1000000);
    if (left < 0 || batch_left < left)
      left = batch_left;
  }
  return left;
}

int iob_op_stopping(const iob_op *op) {
  if (op == NULL)
    return IOB_EINVAL;
  const iob__slot *own = iob__slot_of_op(op);
  int asked = atomic_load_explicit(&own->stop, memory_order_relaxed);
  if (own->number == IOB__INNER_SLOT && asked != 0) /* iob_op_stop_inner() */
    return asked;
  const iob__slot *s = slot_of_op(op);
  int stop = atomic_load_explicit(&s->stop, memory_order_relaxed);
  /* Nothing watches the clock for a run() (it may be on a thread): it
   * learns of its timeout here, from its own start time. */
  uint64_t timeout = iob__timeout_ns(op->batch);
  if (stop == 0 && s->phase == IOB__RUNNING && timeout != 0 &&
      iob__now(op->batch) - iob__rec(op->batch, op->index)->started_ns >
          timeout)
    return IOB_ETIMEDOUT;
  /* (A thread's attempt learns of its own timeout likewise.) */
  uint64_t limit = s->number != IOB__TRY_SLOT && s->attempt_ns != 0
                       ? attempt_timeout_ns(op->batch, op->index)
                       : 0;
  if (stop == 0 && limit != 0 && iob__now(op->batch) - s->attempt_ns > limit)
    return IOB_ETIMEDOUT;
  return stop;
}
