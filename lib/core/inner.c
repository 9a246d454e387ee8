/* Operations run inside another (iob_op_start_inner(), iob_op_run_inner()):
 * how a kind wraps other kinds, as a retry or a rate limit does. An inner
 * operation lives in a slot of its own, made for it and freed once it
 * settled, so that the kind it runs finds an iob_op exactly as it would
 * in a batch; what it hands back and whether it must stop are the outer
 * operation's. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct iob__inner {
  iob__slot *outer;
  iob_inner_cb done;
  void *arg;
  bool starting;      /* in the kind's start() */
  bool settled_early; /* iob_op_done() came inside it */
  int early_status;
} iob__inner;

iob__slot *iob__slot_outermost(iob__slot *s) {
  while (s->number == IOB__INNER_SLOT)
    s = s->inner->outer;
  return s;
}

static size_t aligned(size_t n) {
  size_t a = alignof(max_align_t);
  return (n + a - 1) / a * a;
}

/* A slot for an inner operation of `task` in outer's batch, its op
 * filled in; NULL without memory. */
static iob__slot *make(iob_op *outer, const iob_task *task, void *shared) {
  const iob_kind *k = task->kind;
  size_t at = aligned(sizeof(iob__slot)), link = aligned(sizeof(iob__inner));
  iob__slot *s = calloc(1, at + link + k->op_size);
  if (s == NULL)
    return NULL;
  s->inner = (iob__inner *)((char *)s + at);
  void *state = k->op_size ? (char *)s + at + link : NULL;
  s->op = (iob_op){outer->batch, task->target,      state,
                   outer->index, task->duration_ms, shared,
                   task->input,  task->data,        0};
  s->kind = k;
  s->inner->outer = iob__slot_of_op(outer);
  atomic_init(&s->stop, 0);
  s->number = IOB__INNER_SLOT;
  return s;
}

static void release(iob__slot *s) {
  if (s->kind->cleanup != NULL)
    s->kind->cleanup(&s->op);
  free(s);
}

/* Can outer's batch run `task` inside outer, on this thread? */
static int check(const iob_op *outer, const iob_task *task, bool blocking) {
  if (outer == NULL || task == NULL || task->kind == NULL)
    return IOB_EINVAL;
  const iob_kind *k = task->kind;
  if (blocking ? k->run == NULL && !(k->flags & IOB_KIND_WAITS)
               : k->start == NULL)
    return IOB_ENOTSUP;
  if (task->input != NULL && k->input_copy != NULL)
    return IOB_EINVAL; /* borrowed here: a kind that copies cannot run so */
  return 0;
}

/* The inner kind's state for its target, opened in the batch if it is
 * the first of its kind there; only on the batch's own loop thread. */
static int shared_of(iob_op *outer, const iob_task *task, void **shared) {
  const iob_kind *k = task->kind;
  *shared = NULL;
  if (k->open == NULL && k->batch_size == 0)
    return 0;
  iob_batch *b = outer->batch;
  uv_thread_t self = uv_thread_self();
  if ((b->config.style->flags & IOB_STYLE_LOOPS) ||
      !uv_thread_equal(&self, &b->loop_thread))
    return IOB_ENOTSUP; /* its kinds' states are per loop, or locked */
  return iob__kinds_open(b, &b->kinds, k, task->target, shared);
}

/* What both ways in share: the checks, the kind's state, the slot (*s).
 * 0, or an error with nothing made. */
static int begin(iob_op *outer, const iob_task *task, bool blocking,
                 iob__slot **s) {
  int err = check(outer, task, blocking);
  void *shared = NULL;
  if (err == 0)
    err = shared_of(outer, task, &shared);
  if (err == 0 && (*s = make(outer, task, shared)) == NULL)
    err = IOB_ENOMEM;
  return err;
}

/* The inner operation in slot s has settled with `status`: it goes, then
 * the outer kind hears of it (which may start another in its place). */
static void call_back(iob__slot *s, int status) {
  iob_inner_cb cb = s->inner->done;
  void *arg = s->inner->arg;
  iob_op *outer = &s->inner->outer->op;
  release(s);
  cb(outer, status, arg);
}

int iob_op_start_inner(iob_op *outer, const iob_task *task, iob_inner_cb done,
                       void *arg, iob_op **inner) {
  if (inner != NULL)
    *inner = NULL;
  iob__slot *s = NULL;
  int err = done == NULL ? IOB_EINVAL : begin(outer, task, false, &s);
  if (err != 0)
    return err;
  s->inner->done = done;
  s->inner->arg = arg;
  if (inner != NULL)
    *inner = &s->op;
  s->inner->starting = true;
  err = iob__kind_status(task->kind->start(&s->op));
  s->inner->starting = false;
  if (err != 0 || s->inner->settled_early) {
    if (inner != NULL)
      *inner = NULL;
    if (err != 0) {
      release(s);
      return err;
    }
    /* It settled inside its start(): the outer kind hears of it now,
     * after this call's work, as its own start() would. */
    call_back(s, s->inner->early_status);
  }
  return 0;
}

/* The inner kind called iob_op_done(). */
int iob__inner_done(iob__slot *s, int status) {
  iob__inner *in = s->inner;
  if (in->done == NULL)
    return IOB_EINVAL; /* run by iob_op_run_inner(): it returns instead */
  if (in->starting) {  /* iob_op_start_inner() calls back once it returns */
    in->settled_early = true;
    in->early_status = status;
    return 0;
  }
  call_back(s, status);
  return 0;
}

int iob_op_stop_inner(iob_op *inner) {
  if (inner == NULL)
    return IOB_EINVAL;
  iob__slot *s = iob__slot_of_op(inner);
  if (s->number != IOB__INNER_SLOT || s->inner->done == NULL)
    return IOB_EINVAL;
  int none = 0;
  if (atomic_compare_exchange_strong(&s->stop, &none, IOB_ECANCELED) &&
      !s->inner->starting && s->kind->stop != NULL)
    s->kind->stop(inner);
  return 0;
}

int iob_op_run_inner(iob_op *outer, const iob_task *task) {
  iob__slot *s = NULL;
  int err = begin(outer, task, true, &s);
  if (err != 0)
    return err;
  int status = 0;
  const iob_kind *k = task->kind;
  if (k->flags & IOB_KIND_WAITS) { /* its wait: this thread sleeps */
    uint64_t left = (uint64_t)iob_op_remaining_ms(outer);
    bool cut = left < task->duration_ms; /* (-1: no limit, the largest) */
    uv_sleep((unsigned int)(cut ? left : task->duration_ms));
    if (cut)
      status = IOB_ETIMEDOUT;
  }
  if (status == 0 && k->run != NULL)
    status = iob__kind_status(k->run(&s->op));
  release(s);
  return status;
}
