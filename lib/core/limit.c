/* A limit shared by batches on one loop: a counting semaphore whose
 * waiters are batches, served in turn. A batch that wants to launch an
 * operation takes a permit; when there is none, it joins the queue's
 * tail once, however many operations it has waiting. A permit given back
 * goes to the batch at the head, which launches one operation and, if it
 * wants more, joins the tail again: one operation a turn, so no batch
 * starves another, at O(1) for each take and give. */
#include <stddef.h>
#include <stdlib.h>

#include "internal.h"

struct iob_limit {
  uint32_t permits;
  uint32_t available;
  /* Running batches that use it, and their loop while there are any:
   * atomic, so that a batch started on another loop's thread, which is
   * refused, reads them safely. The rest is the loop thread's alone. */
  atomic_uint users;
  _Atomic(uv_loop_t *) loop;
  iob__line line;     /* batches waiting for a permit */
  iob_batch *granted; /* being given a permit by drain() */
  bool draining;
};

int iob_limit_create(iob_limit **limit, uint32_t permits) {
  if (limit == NULL)
    return IOB_EINVAL;
  *limit = NULL;
  if (permits == 0 || permits > IOB_COUNT_MAX)
    return IOB_ERANGE;
  iob_limit *l = calloc(1, sizeof(*l));
  if (l == NULL)
    return IOB_ENOMEM;
  l->permits = l->available = permits;
  atomic_init(&l->users, 0);
  atomic_init(&l->loop, NULL);
  *limit = l;
  return 0;
}

int iob_limit_free(iob_limit *limit) {
  if (limit == NULL)
    return 0;
  if (atomic_load(&limit->users) > 0)
    return IOB_EBUSY;
  free(limit);
  return 0;
}

uint32_t iob_limit_in_use(const iob_limit *limit) {
  return limit ? limit->permits - limit->available : 0;
}

int iob__limit_attach(iob_batch *b) {
  iob_limit *l = b->config.shared_limit;
  /* The first user claims the limit for its loop; its queue is one
   * loop's. */
  uv_loop_t *none = NULL;
  if (!atomic_compare_exchange_strong(&l->loop, &none, b->loop) &&
      none != b->loop)
    return IOB_EINVAL;
  atomic_fetch_add(&l->users, 1);
  return 0;
}

#define PLACE offsetof(iob_batch, limit_place)

/* The lines of waiting batches (internal.h), this limit's and a rate's:
 * a batch's place in each is at offset `place` of the batch. */
static iob__place *place_of(iob_batch *b, size_t place) {
  return (iob__place *)((char *)b + place);
}

void iob__line_join(iob__line *l, iob_batch *b, size_t place) {
  iob__place *p = place_of(b, place);
  if (p->waiting)
    return;
  p->waiting = true;
  p->next = NULL;
  p->prev = l->tail;
  if (l->tail != NULL)
    place_of(l->tail, place)->next = b;
  else
    l->head = b;
  l->tail = b;
}

void iob__line_leave(iob__line *l, iob_batch *b, size_t place) {
  iob__place *p = place_of(b, place);
  if (!p->waiting)
    return;
  p->waiting = false;
  if (p->prev != NULL)
    place_of(p->prev, place)->next = p->next;
  else
    l->head = p->next;
  if (p->next != NULL)
    place_of(p->next, place)->prev = p->prev;
  else
    l->tail = p->prev;
  p->next = p->prev = NULL;
}

void iob__limit_unqueue(iob_batch *b) {
  iob_limit *l = b->config.shared_limit;
  if (l->granted == b)
    l->granted = NULL;
  iob__line_leave(&l->line, b, PLACE);
}

void iob__limit_detach(iob_batch *b) {
  iob__limit_unqueue(b);
  iob_limit *l = b->config.shared_limit;
  if (atomic_fetch_sub(&l->users, 1) == 1)
    atomic_store(&l->loop, NULL); /* free for another loop */
}

bool iob__limit_take(iob_batch *b) {
  iob_limit *l = b->config.shared_limit;
  if (l->granted == b) { /* its turn: the permit drain() set aside */
    l->granted = NULL;
    return true;
  }
  if (l->available > 0 && l->line.head == NULL) {
    l->available--;
    return true;
  }
  iob__line_join(&l->line, b, PLACE);
  return false;
}

/* Hand free permits to waiting batches, one operation each in turn.
 * Guarded: a batch launching in its turn may settle an operation at once
 * and give a permit back, which this loop then hands on. The permit
 * usually comes from another batch's libuv callback: the batch served
 * reads the clock afresh, or it would stamp its launch with its own last
 * burst's reading, perhaps long past (and a wait on the loop, measured
 * from it, would end at once). */
static void drain(iob_limit *l) {
  if (l->draining)
    return;
  l->draining = true;
  while (l->available > 0 && l->line.head != NULL) {
    iob_batch *b = l->line.head;
    iob__limit_unqueue(b);
    l->available--;
    l->granted = b;
    iob__stamp_fresh(b);
    iob__launch_more(b);
    if (l->granted == b) { /* it launched nothing: the permit is back */
      l->granted = NULL;
      l->available++;
    }
  }
  l->draining = false;
}

void iob__limit_give(iob_batch *b) {
  iob_limit *l = b->config.shared_limit;
  l->available++;
  drain(l);
}
