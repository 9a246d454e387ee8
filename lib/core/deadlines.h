/* Deadlines for many operations at O(1) each: the loop style's timer
 * queue. Operations that wait equally long are kept in one list in the
 * order they were added, which is also the order of their deadlines, so
 * adding one is O(1); a min-heap orders the lists by their first deadline
 * (as Node.js does with its timer lists). An item is an operation's
 * number; its deadline is its record's started_ns plus its list's wait.
 *
 * A list's items are an array of its own, sized when the queue is made
 * for a batch of fixed count, grown as operations are submitted to an
 * open one (iob__deadlines_reserve()): taking them out reads memory in
 * order, and the only scattered read is the record, which the
 * operation's end needs anyway. While a list's items are consecutive
 * numbers (a batch launches in order, so a list of one wait stays so) not
 * even the array is written: a million waits cost their records only. */
#ifndef IOB_DEADLINES_H
#define IOB_DEADLINES_H

#include <stdbool.h>

#include "internal.h"

#define IOB__NO_ITEM UINT32_MAX

typedef struct iob__dlist {
  uint64_t wait_ns;
  uint32_t head;     /* the first item; IOB__NO_ITEM when empty */
  uint32_t tail;     /* the last item, while dense */
  uint32_t heap_pos; /* IOB__NO_ITEM when not in the heap */
  /* The items are head, head + 1 ... tail, none of them written down;
   * else they are items[read..write). */
  bool dense;
  uint32_t room; /* items planned for it */
  uint32_t read, write;
  uint32_t *items; /* cap of them */
  uint32_t cap;
} iob__dlist;

typedef struct iob__deadlines {
  const iob_batch *batch; /* the items' start times: their records */
  iob__dlist *lists;
  uint32_t nlists, cap;
  uint32_t *heap; /* list numbers, the earliest first deadline on top */
  uint32_t nheap;
  uint32_t *table; /* open addressing: wait -> list number + 1 */
  uint32_t table_mask;
} iob__deadlines;

/* For items whose start times are batch's records' started_ns. 0 or
 * IOB_ENOMEM (then free it). */
int iob__deadlines_init(iob__deadlines *d, const iob_batch *batch);
void iob__deadlines_free(iob__deadlines *d);

/* Plan for `items` more items of waits of wait_ns (making their list if
 * there is none), then call iob__deadlines_ready() once: so adding never
 * allocates or fails. 0 or IOB_ENOMEM. */
int iob__deadlines_make_list(iob__deadlines *d, uint64_t wait_ns,
                             uint32_t items);
int iob__deadlines_ready(iob__deadlines *d);

/* Make and plan a queue for every wait batch b's operations can have
 * on a loop (their waits, or their timeouts for a start() kind), before
 * anything starts, so that adding never allocates or fails. 0, or
 * IOB_ENOMEM (then free it). An open batch plans nothing: each of its
 * operations reserves its place. */
int iob__deadlines_plan(iob__deadlines *d, const iob_batch *b);

/* Make room for one more item of a wait of wait_ns, before adding it:
 * what an open batch does for each operation. 0 or IOB_ENOMEM. */
int iob__deadlines_reserve(iob__deadlines *d, uint64_t wait_ns);

/* The slow paths of the two below. */
bool iob__deadlines_add_slow(iob__deadlines *d, iob__dlist *l, uint32_t i);
void iob__deadlines_reorder(iob__deadlines *d, iob__dlist *l);

/* The list of waits of wait_ns (a hash table with open addressing), or
 * IOB__NO_ITEM. */
static inline uint32_t iob__deadlines_find(const iob__deadlines *d,
                                           uint64_t wait_ns) {
  uint32_t h = (uint32_t)((wait_ns * UINT64_C(0x9E3779B97F4A7C15)) >> 32);
  for (uint32_t k = h & d->table_mask;; k = (k + 1) & d->table_mask) {
    uint32_t v = d->table[k];
    if (v == 0 || d->lists[v - 1].wait_ns == wait_ns)
      return v == 0 ? IOB__NO_ITEM : v - 1;
  }
}

/* Add item i, to end wait_ns after records[i].started_ns. Its list must
 * have been planned for it, and items of one list must be added in order
 * of their start times. Returns true if that made a new earliest
 * deadline. Inline: a million launches call it. */
static inline bool iob__deadlines_add(iob__deadlines *d, uint32_t i,
                                      uint64_t wait_ns) {
  /* One wait for every item is the common case: no lookup. */
  iob__dlist *l =
      &d->lists[d->nlists == 1 ? 0 : iob__deadlines_find(d, wait_ns)];
  if (l->head != IOB__NO_ITEM) {
    /* Behind the list's head: its place in the heap holds. */
    if (l->dense && i == l->tail + 1) {
      l->tail = i;
      return false;
    }
    if (!l->dense) {
      l->items[l->write++] = i;
      return false;
    }
  }
  return iob__deadlines_add_slow(d, l, i);
}

/* The deadline of list l's first item. */
static inline uint64_t iob__deadlines_head(const iob__deadlines *d,
                                           const iob__dlist *l) {
  return iob__rec(d->batch, l->head)->started_ns + l->wait_ns;
}

/* The earliest deadline; UINT64_MAX when there is no item. */
static inline uint64_t iob__deadlines_first(const iob__deadlines *d) {
  return d->nheap > 0 ? iob__deadlines_head(d, &d->lists[d->heap[0]])
                      : UINT64_MAX;
}

/* Take out an item whose deadline is `now` or earlier; IOB__NO_ITEM when
 * there is none. The list with the earliest deadline gives every item it
 * has that is due before the heap is put in order again, as a timer
 * callback settles all that is due in one go: one reordering per list,
 * not per item. So items come out earliest list first, not strictly in
 * deadline order across lists. UINT64_MAX takes any. */
static inline uint32_t iob__deadlines_pop(iob__deadlines *d, uint64_t now) {
  if (d->nheap == 0 || iob__deadlines_first(d) > now)
    return IOB__NO_ITEM;
  iob__dlist *l = &d->lists[d->heap[0]];
  uint32_t i = l->head;
  if (l->dense)
    l->head = i == l->tail ? IOB__NO_ITEM : i + 1;
  else
    l->head = ++l->read < l->write ? l->items[l->read] : IOB__NO_ITEM;
  /* Only the top may be out of order meanwhile, and only while its head
   * is due: iob__deadlines_first() is right whenever nothing is. */
  if (l->head == IOB__NO_ITEM ||
      (d->nheap > 1 && iob__deadlines_head(d, l) > now))
    iob__deadlines_reorder(d, l);
  return i;
}

#endif
