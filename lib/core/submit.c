/* Open batches: operations submitted one at a time, from any thread,
 * before and while the batch runs, until it is closed.
 *
 * A submitter writes the operation into the next place of the batch's
 * tasks under the submitters' lock, then publishes the new count
 * (release); the loop thread takes in what was published
 * (iob__take_submitted(), acquire) and never touches a place past it, so
 * the two never share a task, and the chunks never move. Submitters wait
 * only for each other, for as long as a copy takes; never for the loop. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void iob_task_init(iob_task *task) {
  if (task != NULL)
    *task = (iob_task){.kind = &iob_kind_wait};
}

/* Can the batch's style run operations of kind k? The checks
 * iob_batch_create() makes of a config's kind. */
int iob__check_kind(const iob_kind *k, const iob_style *style) {
  bool waits = k->flags & IOB_KIND_WAITS;
  if (k->name == NULL || (!waits && k->start == NULL && k->run == NULL))
    return IOB_EINVAL; /* nothing to run */
  if (k->op_size > IOB_OP_SIZE_MAX || k->batch_size > IOB_OP_SIZE_MAX)
    return IOB_ERANGE;
  if (waits && k->start != NULL)
    return IOB_EINVAL; /* the wait is iobound's: the rest runs in run() */
  if ((style->flags & IOB_STYLE_ON_THREADS) && !waits && k->run == NULL)
    return IOB_ENOTSUP; /* a thread can only block */
  return 0;
}

/* The place of operation i, making its chunk if it is the first there.
 * Under the submitters' lock. */
static iob__task *place(iob_batch *b, uint32_t i) {
  uint32_t at, k = iob__chunk(i, IOB__CHUNK_SHIFT, &at);
  if (b->tasks[k] == NULL &&
      (b->tasks[k] = calloc(iob__chunk_size(k, IOB__CHUNK_SHIFT),
                            sizeof(iob__task))) == NULL)
    return NULL;
  return &b->tasks[k][at];
}

/* How many submitters' locks the calling thread holds (any batch's: one
 * thread holds one at a time, but for a kind's input_copy() that reads
 * another batch). A signal handler reads it: hence volatile sig_atomic_t
 * (C11 7.14.1.1). */
static _Thread_local volatile sig_atomic_t locks_held;

void iob__submit_lock(iob_batch *b) {
  uv_mutex_lock(&b->submit_lock);
  locks_held++;
}

void iob__submit_unlock(iob_batch *b) {
  locks_held--;
  uv_mutex_unlock(&b->submit_lock);
}

bool iob__submit_locked(void) { return locks_held != 0; }

/* Is the calling thread the running batch's loop thread? */
static bool on_loop(const iob_batch *b) {
  uv_thread_t self = uv_thread_self();
  return atomic_load_explicit(&b->state, memory_order_acquire) == IOB__ACTIVE &&
         uv_thread_equal(&self, &b->loop_thread);
}

/* Check a task as iob_batch_create() checks a config: the style can run
 * its kind, and the kind's check() takes its target and duration. */
static int check_task(const iob_batch *b, const iob_task *t) {
  if (t->kind == NULL || (t->arrival_ns != 0 && t->arrival_ns > uv_hrtime()))
    return IOB_EINVAL;
  int err = iob__check_kind(t->kind, b->config.style);
  if (err != 0)
    return err;
  if (t->input != NULL && !(t->kind->flags & IOB_KIND_INPUT) &&
      t->kind->input_copy == NULL)
    return IOB_EINVAL; /* it would never be read */
  if (t->retry != NULL && (err = iob_retry_check(t->retry)) != 0)
    return err;
  if (t->hedge != NULL &&
      (err = iob__check_hedge(t->hedge, &b->config, t->kind)) != 0)
    return err;
  if (b->config.style->check_kind != NULL &&
      (err = b->config.style->check_kind(b, t->kind)) != 0)
    return err;
  if (t->kind->check == NULL)
    return 0;
  /* The config as the kind would see it for this one operation. Field by
   * field: the count is the loop thread's to change, the rest fixed. */
  iob_config c;
  iob_config_init(&c);
  const iob_config *own = &b->config;
  c.style = own->style;
  c.kind = t->kind;
  c.target = t->target;
  c.count = 1;
  c.duration_ms = t->duration_ms;
  c.max_in_flight = own->max_in_flight;
  c.on_op = own->on_op;
  c.timeout_ms = own->timeout_ms;
  c.fail_fast = own->fail_fast;
  c.data = own->data;
  c.deadline_ms = own->deadline_ms;
  c.shared_limit = own->shared_limit;
  c.rate = own->rate;
  c.retry = t->retry != NULL ? t->retry : own->retry;
  c.breaker = t->breaker != NULL ? t->breaker : own->breaker;
  c.hedge = t->hedge != NULL ? t->hedge : own->hedge;
  c.style_options = own->style_options;
  c.open = own->open;
  c.label = own->label;
  return t->kind->check(&c);
}

/* Fill place t with task `in`: its input copied if the kind copies, its
 * state made if a slot cannot hold it. 0, or an error with nothing
 * kept. */
static int fill(const iob_batch *b, iob__task *t, const iob_task *in) {
  const iob_kind *k = in->kind;
  void *input = (void *)(uintptr_t)in->input, *state = NULL;
  if (k->input_copy != NULL && in->input != NULL) {
    int err = k->input_copy(in->input, &input);
    if (err != 0)
      return iob__kind_status(err) != 0 ? iob__kind_status(err) : IOB_EINVAL;
  }
  if (k->op_size > b->state_room && (state = malloc(k->op_size)) == NULL) {
    if (k->input_copy != NULL && in->input != NULL && k->input_free != NULL)
      k->input_free(input);
    return IOB_ENOMEM;
  }
  /* Field by field: the place is fresh from calloc(), its record and
   * outcome zero already, and writing all 168 bytes again costs a third
   * of a submission. */
  t->kind = k;
  t->target = in->target;
  t->input = input;
  t->data = in->data;
  t->state = state;
  t->retry = in->retry;
  t->hedge = in->hedge;
  t->breaker = in->breaker;
  t->duration_ms = in->duration_ms;
  t->slot = UINT32_MAX;
  /* Held here, on uv_hrtime()'s clock, until the loop takes it in
   * (arrive()): the batch may not have a clock of its own yet. */
  t->rec.queued_ns = in->arrival_ns;
  return 0;
}

/* Add a task under the lock: its index, or an error. */
static int add(iob_batch *b, const iob_task *task) {
  if (atomic_load_explicit(&b->closed, memory_order_relaxed) ||
      atomic_load(&b->cancel_asked)) /* cancelled, or about to be */
    return IOB_ESHUTDOWN;
  uint32_t i = atomic_load_explicit(&b->submitted, memory_order_relaxed);
  if (i >= IOB_COUNT_MAX)
    return IOB_E2BIG;
  iob__task *t = place(b, i);
  if (t == NULL)
    return IOB_ENOMEM;
  int err = fill(b, t, task);
  if (err != 0)
    return err;
  atomic_store_explicit(&b->submitted, i + 1, memory_order_release);
  return (int)i;
}

int iob_batch_submit(iob_batch *batch, const iob_task *task) {
  if (batch == NULL || task == NULL || !batch->open)
    return IOB_EINVAL;
  if (iob__submit_locked())
    return IOB_EPERM; /* inside a submission of this thread's */
  int err = check_task(batch, task);
  if (err != 0)
    return err;
  iob__submit_lock(batch);
  int index = add(batch, task);
  iob__submit_unlock(batch);
  if (index < 0)
    return index;
  if (on_loop(batch)) {
    iob__stamp_fresh(batch); /* perhaps from a callback of the caller's */
    iob__end_or_launch(batch);
  } else {
    iob__wakeup(batch); /* a no-op until it starts */
  }
  return index;
}

int iob_batch_close(iob_batch *batch) {
  if (batch == NULL || !batch->open)
    return IOB_EINVAL;
  if (iob__submit_locked())
    return IOB_EPERM; /* inside a submission of this thread's */
  iob__submit_lock(batch);
  bool was = atomic_exchange(&batch->closed, true);
  iob__submit_unlock(batch);
  if (was)
    return 0;
  if (on_loop(batch)) {
    iob__stamp_fresh(batch);
    iob__end_or_launch(batch);
  } else {
    iob__wakeup(batch);
  }
  return 0;
}

/* Operation i arrives on the running batch's clock: its queued_ns, which
 * held its iob_task.arrival_ns, becomes that time since the start (no
 * later than now), or now when it had none. */
static void arrive(iob_batch *b, uint32_t i) {
  iob_record *r = iob__rec(b, i);
  uint64_t now = iob__stamp(b), at = r->queued_ns;
  if (at == 0)
    r->queued_ns = now;
  else
    r->queued_ns = at <= b->t0 ? 0 : at - b->t0 < now ? at - b->t0 : now;
}

/* Closed first (acquire): every submission before the close is then
 * published, and counted. Once the batch runs, what came is stamped. */
void iob__take_submitted(iob_batch *b) {
  bool closed = atomic_load_explicit(&b->closed, memory_order_acquire);
  b->config.count = atomic_load_explicit(&b->submitted, memory_order_acquire);
  b->closed_seen = closed;
  if (atomic_load_explicit(&b->state, memory_order_relaxed) != IOB__ACTIVE)
    return; /* no clock yet: iob_batch_start() takes them in */
  if (b->arrived < b->config.count)
    iob__stamp_fresh(b); /* a burst's reading may be a slice old */
  for (; b->arrived < b->config.count; b->arrived++)
    arrive(b, b->arrived);
}

void iob__task_release(iob_batch *b, uint32_t i) {
  iob__task *t = iob__task_at(b, i);
  if (t->kind->input_copy != NULL && t->input != NULL &&
      t->kind->input_free != NULL)
    t->kind->input_free((void *)(uintptr_t)t->input);
  t->input = NULL;
  free(t->state);
  t->state = NULL;
}

void iob__tasks_free(iob_batch *b) {
  uint32_t n = atomic_load(&b->submitted);
  for (uint32_t i = 0; i < n; i++) {
    iob__task *t = iob__task_at(b, i);
    iob__task_release(b, i);
    free(t->kept.message);
    iob__attempts_free(t->kept.attempts);
    if (t->kept.result != NULL && t->kind->free_result != NULL)
      t->kind->free_result(t->kept.result);
  }
  for (uint32_t k = 0; k < IOB__CHUNKS; k++)
    free(b->tasks[k]);
}

/* ---- kinds opened with their targets -------------------------------------- */

int iob__kinds_open(iob_batch *b, iob__kinds *t, const iob_kind *k,
                    const void *target, void **shared) {
  *shared = NULL;
  if (k->open == NULL && k->batch_size == 0)
    return 0;
  for (uint32_t n = t->n; n-- > 0;) /* few: kinds and targets */
    if (t->list[n].kind == k && t->list[n].target == target) {
      *shared = t->list[n].shared;
      return 0;
    }
  iob__opened *list = realloc(t->list, (t->n + 1) * sizeof(*list));
  if (list == NULL)
    return IOB_ENOMEM;
  t->list = list;
  void *state = k->batch_size ? calloc(1, k->batch_size) : NULL;
  if (k->batch_size != 0 && state == NULL)
    return IOB_ENOMEM;
  int err = k->open != NULL ? k->open(b, target, state) : 0;
  if (err != 0) {
    free(state);
    return iob__kind_status(err) != 0 ? iob__kind_status(err) : IOB_EINVAL;
  }
  list[t->n++] = (iob__opened){k, target, state};
  *shared = state;
  return 0;
}

int iob__kind_ready(iob_batch *b, uint32_t i) {
  iob__task *t = iob__task_at(b, i);
  return iob__kinds_open(b, &b->kinds, t->kind, t->target, &t->shared);
}

void iob__kinds_close(iob_batch *b, iob__kinds *t) {
  for (uint32_t n = t->n; n-- > 0;) {
    iob__opened *o = &t->list[n];
    if (o->kind->close != NULL)
      o->kind->close(b, o->target, o->shared);
  }
}

void iob__kinds_free(iob__kinds *t) {
  for (uint32_t n = 0; n < t->n; n++)
    free(t->list[n].shared);
  free(t->list);
  *t = (iob__kinds){0};
}
