/* A group of batches, told when the last of them has ended: a count of
 * the batches in it that have not, and the first failure's status. Its
 * batches may run on different loops, hence atomics. */
#include <stdlib.h>

#include "internal.h"

struct iob_group {
  atomic_uint running; /* batches added that have not ended */
  /* Batch ends being counted, the callback included: the group may not
   * be freed under them, though running is 0 already. */
  atomic_uint busy;
  atomic_int status; /* the first non-zero status of an ended batch */
  bool freed;        /* freed from its own callback: free it after */
  iob_group_cb cb;
  void *data;
};

/* The group whose callback this thread is in, if any. */
static _Thread_local iob_group *calling;

int iob_group_create(iob_group **group, iob_group_cb cb, void *data) {
  if (group == NULL)
    return IOB_EINVAL;
  *group = NULL;
  if (cb == NULL)
    return IOB_EINVAL;
  iob_group *g = calloc(1, sizeof(*g));
  if (g == NULL)
    return IOB_ENOMEM;
  atomic_init(&g->running, 0);
  atomic_init(&g->busy, 0);
  atomic_init(&g->status, 0);
  g->cb = cb;
  g->data = data;
  *group = g;
  return 0;
}

int iob_group_add(iob_group *group, iob_batch *batch) {
  if (group == NULL || batch == NULL)
    return IOB_EINVAL;
  iob__state state = atomic_load_explicit(&batch->state, memory_order_acquire);
  if (state == IOB__FINISHED)
    return IOB_EINVAL; /* it would never end in the group */
  uv_thread_t self = uv_thread_self();
  if (state == IOB__ACTIVE && !uv_thread_equal(&self, &batch->loop_thread))
    return IOB_EPERM;
  if (batch->group != NULL)
    return IOB_EBUSY;
  batch->group = group;
  atomic_fetch_add(&group->running, 1);
  return 0;
}

void *iob_group_data(const iob_group *group) {
  return group ? group->data : NULL;
}

int iob_group_free(iob_group *group) {
  if (group == NULL)
    return 0;
  if (atomic_load(&group->running) > 0)
    return IOB_EBUSY;
  if (group == calling) { /* its callback: freed once that returns */
    group->freed = true;
    return 0;
  }
  if (atomic_load(&group->busy) > 0)
    return IOB_EBUSY;
  free(group);
  return 0;
}

void iob__group_ended(iob_group *g, int status) {
  atomic_fetch_add(&g->busy, 1); /* before running can reach 0 */
  int none = 0;
  if (status != 0)
    atomic_compare_exchange_strong(&g->status, &none, status);
  if (atomic_fetch_sub(&g->running, 1) == 1) {
    /* The last: the group is empty again before its callback, which may
     * add batches or free it. */
    int first = atomic_exchange(&g->status, 0);
    iob_group *outer = calling;
    calling = g;
    g->cb(g, first);
    calling = outer;
    if (g->freed) {
      free(g);
      return;
    }
  }
  atomic_fetch_sub(&g->busy, 1);
}
