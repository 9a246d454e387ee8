/* Deadlines for many operations at O(1) each: the loop style's timer
 * queue. Operations that wait equally long are kept in one list in the
 * order they were added, which is also the order of their deadlines, so
 * adding one is O(1); a min-heap orders the lists by their first deadline
 * (as Node.js does with its timer lists). An item is an operation's
 * number; its deadline is its record's started_ns plus its list's wait,
 * so nothing per item is stored but a link, and not even that while a
 * list's items are consecutive numbers. */
#ifndef IOB_DEADLINES_H
#define IOB_DEADLINES_H

#include <stdbool.h>

#include "iobound.h"

#define IOB__NO_ITEM UINT32_MAX

typedef struct iob__dlist {
  uint64_t wait_ns;
  uint32_t head, tail; /* IOB__NO_ITEM when empty */
  uint32_t heap_pos;   /* IOB__NO_ITEM when not in the heap */
  /* The items are head, head + 1 ... tail, so they need no links: a batch
   * launches in order, so a list of one wait stays so, and the link array
   * is never touched (no memory, no page faults while launching). */
  bool dense;
} iob__dlist;

typedef struct iob__deadlines {
  const iob_record *records; /* the items' start times */
  uint32_t *next;            /* each item's successor in its list */
  iob__dlist *lists;
  uint32_t nlists, cap;
  uint32_t *heap; /* list numbers, the earliest first deadline on top */
  uint32_t nheap;
  uint32_t *table; /* open addressing: wait -> list number + 1 */
  uint32_t table_mask;
} iob__deadlines;

/* For items 0..count-1 whose start times are records[i].started_ns.
 * 0 or IOB_ENOMEM (then free it). */
int iob__deadlines_init(iob__deadlines *d, const iob_record *records,
                        uint32_t count);
void iob__deadlines_free(iob__deadlines *d);

/* Make the list for waits of wait_ns, if there is none yet: every list
 * is made before items are added, so adding never allocates or fails.
 * 0 or IOB_ENOMEM. */
int iob__deadlines_make_list(iob__deadlines *d, uint64_t wait_ns);

/* The slow paths of the two below. */
bool iob__deadlines_add_slow(iob__deadlines *d, iob__dlist *l, uint32_t i);
void iob__deadlines_reorder(iob__deadlines *d, iob__dlist *l);
uint32_t iob__deadlines_find(const iob__deadlines *d, uint64_t wait_ns);

/* Add item i, to end wait_ns after records[i].started_ns. Its list must
 * exist, and items of one list must be added in order of their start
 * times. Returns true if that made a new earliest deadline. Inline: a
 * million launches call it. */
static inline bool iob__deadlines_add(iob__deadlines *d, uint32_t i,
                                      uint64_t wait_ns) {
  /* One wait for every item is the common case: no lookup. */
  iob__dlist *l =
      &d->lists[d->nlists == 1 ? 0 : iob__deadlines_find(d, wait_ns)];
  if (l->dense && l->head != IOB__NO_ITEM && i == l->tail + 1) {
    l->tail = i;
    return false; /* behind the list's head: its place in the heap holds */
  }
  return iob__deadlines_add_slow(d, l, i);
}

/* The deadline of list l's first item. */
static inline uint64_t iob__deadlines_head(const iob__deadlines *d,
                                           const iob__dlist *l) {
  return d->records[l->head].started_ns + l->wait_ns;
}

/* The earliest deadline; UINT64_MAX when there is no item. */
static inline uint64_t iob__deadlines_first(const iob__deadlines *d) {
  return d->nheap > 0 ? iob__deadlines_head(d, &d->lists[d->heap[0]])
                      : UINT64_MAX;
}

/* Take out an item whose deadline is `now` or earlier, the earliest
 * first; IOB__NO_ITEM when there is none. UINT64_MAX takes any. */
static inline uint32_t iob__deadlines_pop(iob__deadlines *d, uint64_t now) {
  if (d->nheap == 0 || iob__deadlines_first(d) > now)
    return IOB__NO_ITEM;
  iob__dlist *l = &d->lists[d->heap[0]];
  uint32_t i = l->head;
  /* The tail's link is never written: a list ends at its tail. */
  l->head = i == l->tail ? IOB__NO_ITEM : l->dense ? i + 1 : d->next[i];
  if (l->head == IOB__NO_ITEM || d->nheap > 1)
    iob__deadlines_reorder(d, l);
  return i;
}

#endif
