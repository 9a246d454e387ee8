/* A group of batches, told when the last of them has ended: a count of
 * the batches in it that have not, and the first failure's status. Its
 * batches may run on different loops, hence atomics. */
#include <stdlib.h>

#include "internal.h"

struct iob_group {
  atomic_uint running; /* batches added that have not ended */
  /* Users of the group's memory: each batch end being counted (its
   * callback included) holds one, so the group outlives them though
   * running is 0 already; and FREED once it was freed from its own
   * callback. One word, so that letting go and learning whether to free
   * are one atomic step: a thread that let go never reads the group
   * again, since another may free it at once. */
  atomic_uint busy;
  atomic_int status; /* the first non-zero status of an ended batch */
  iob_group_cb cb;
  void *data;
};

#define FREED 0x80000000u

/* The group whose callback this thread is in, if any (the innermost one,
 * when a callback ends a batch of another group). */
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
  if (group == NULL || batch == NULL || (atomic_load(&group->busy) & FREED))
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

/* Let go of the group: the last user frees it if it was freed meanwhile. */
static void release(iob_group *g) {
  if (atomic_fetch_sub_explicit(&g->busy, 1, memory_order_acq_rel) ==
      (FREED | 1))
    free(g);
}

int iob_group_free(iob_group *group) {
  if (group == NULL)
    return 0;
  if (atomic_load(&group->running) > 0)
    return IOB_EBUSY;
  if (group == calling) {
    /* Its callback, perhaps nested in another call of it, holds the
     * group: the last of them to return frees it (release()). */
    atomic_fetch_or_explicit(&group->busy, FREED, memory_order_acq_rel);
    return 0;
  }
  if (atomic_load(&group->busy) > 0)
    return IOB_EBUSY; /* its callback runs on another thread */
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
  }
  release(g);
}
