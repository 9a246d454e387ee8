/* An operation that is a batch of its own: structured concurrency, as
 * Trio's nurseries and Java's StructuredTaskScope. The task's input is a
 * batch the application made and has not started; submitting takes a
 * reference to it, so the application may let go of its own at once
 * (iob_batch_unref()). The
 * operation starts the child on its own loop and settles when the child
 * calls back, with the child's status: after every one of the child's
 * operations. Cancelling the operation (its batch cancelled, its timeout,
 * the deadline) cancels the child. The child comes back as the result,
 * which the parent batch holds until it is freed. */
#include "internal.h"

static int nested_copy(const void *input, void **copy) {
  iob_batch *child = (iob_batch *)(uintptr_t)input;
  *copy = iob_batch_ref(child);
  return 0;
}

static void nested_free(void *copy) { iob_batch_unref(copy); }

static void child_done(iob_batch *child, int status) {
  iob_op *op = child->parent_op;
  child->parent_op = NULL;
  iob_op_done(op, status);
}

static int nested_start(iob_op *op) {
  iob_batch *child = (iob_batch *)(uintptr_t)op->input;
  if (child == NULL) {
    iob_op_set_message(op, "no batch to run: the task's input is NULL");
    return IOB_EINVAL;
  }
  if (atomic_load_explicit(&child->state, memory_order_acquire) != IOB__CREATED)
    return IOB_EBUSY; /* (perhaps its own parent: no cycle is made) */
  /* Handed back before it starts, so that a child that ends at once (a
   * cancel asked before) finds its result in place. */
  int err = iob_op_set_result(op, iob_batch_ref(child));
  if (err != 0) {
    iob_batch_unref(child);
    return err;
  }
  child->parent_op = op;
  err = iob_batch_start(child, iob_batch_loop(op->batch), child_done);
  if (err != 0) { /* never ran: not a result */
    child->parent_op = NULL;
    iob_op_set_result(op, NULL); /* the room is made: it cannot fail */
    iob_batch_unref(child);
  }
  return err;
}

static void nested_stop(iob_op *op) {
  iob_batch_cancel((iob_batch *)(uintptr_t)op->input);
}

const iob_kind iob_kind_batch = {
    .name = "batch",
    .start = nested_start,
    .stop = nested_stop,
    .free_result = nested_free,
    .input_copy = nested_copy,
    .input_free = nested_free,
};
