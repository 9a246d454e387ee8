/* The loop style's timer queue: lists of equal waits, ordered by a heap
 * (deadlines.h says why). */
#include <stdlib.h>
#include <string.h>

#include "deadlines.h"
#include "internal.h"

#define NONE IOB__NO_ITEM

int iob__deadlines_init(iob__deadlines *d, const iob_batch *batch) {
  *d = (iob__deadlines){.batch = batch, .table_mask = 15};
  d->table = calloc(d->table_mask + 1, sizeof(*d->table));
  return d->table != NULL ? 0 : IOB_ENOMEM;
}

void iob__deadlines_free(iob__deadlines *d) {
  for (uint32_t k = 0; k < d->nlists; k++)
    free(d->lists[k].items);
  free(d->lists);
  free(d->heap);
  free(d->table);
  *d = (iob__deadlines){0};
}

/* ---- wait -> list ------------------------------------------------------ */

static void put_list(iob__deadlines *d, uint32_t list) {
  uint64_t wait = d->lists[list].wait_ns;
  uint32_t k =
      (uint32_t)((wait * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & d->table_mask;
  while (d->table[k] != 0)
    k = (k + 1) & d->table_mask;
  d->table[k] = list + 1;
}

/* Keep the table at most half full. */
static int grow_table(iob__deadlines *d) {
  uint32_t size = (d->table_mask + 1) * 2;
  uint32_t *t = calloc(size, sizeof(*t));
  if (t == NULL)
    return IOB_ENOMEM;
  free(d->table);
  d->table = t;
  d->table_mask = size - 1;
  for (uint32_t k = 0; k < d->nlists; k++)
    put_list(d, k);
  return 0;
}

static int grow_lists(iob__deadlines *d) {
  uint32_t n = d->cap ? d->cap * 2 : 8;
  iob__dlist *lists = realloc(d->lists, n * sizeof(*lists));
  if (lists == NULL)
    return IOB_ENOMEM;
  d->lists = lists;
  uint32_t *heap = realloc(d->heap, n * sizeof(*heap));
  if (heap == NULL)
    return IOB_ENOMEM;
  d->heap = heap;
  d->cap = n;
  return 0;
}

int iob__deadlines_make_list(iob__deadlines *d, uint64_t wait_ns,
                             uint32_t items) {
  uint32_t list = iob__deadlines_find(d, wait_ns);
  if (list == NONE) {
    int err = d->nlists == d->cap ? grow_lists(d) : 0;
    if (err == 0 && 2 * (d->nlists + 1) > d->table_mask + 1)
      err = grow_table(d);
    if (err != 0)
      return err;
    list = d->nlists++;
    d->lists[list] = (iob__dlist){
        .wait_ns = wait_ns, .head = NONE, .tail = NONE, .heap_pos = NONE};
    put_list(d, list);
  }
  d->lists[list].room += items;
  return 0;
}

/* Give list l room for `cap` items, keeping those it holds. */
static int grow_items(iob__dlist *l, uint32_t cap) {
  uint32_t *items = realloc(l->items, (cap ? cap : 1) * sizeof(*items));
  if (items == NULL)
    return IOB_ENOMEM;
  l->items = items;
  l->cap = cap;
  return 0;
}

/* Give each list its array. Pages that a dense list never writes are
 * never touched, so they cost no memory. */
int iob__deadlines_ready(iob__deadlines *d) {
  for (uint32_t k = 0; k < d->nlists; k++) {
    iob__dlist *l = &d->lists[k];
    int err = l->room > l->cap ? grow_items(l, l->room) : 0;
    if (err != 0)
      return err;
  }
  return 0;
}

int iob__deadlines_reserve(iob__deadlines *d, uint64_t wait_ns) {
  uint32_t list = iob__deadlines_find(d, wait_ns);
  if (list == NONE) {
    int err = iob__deadlines_make_list(d, wait_ns, 0);
    if (err != 0)
      return err;
    list = iob__deadlines_find(d, wait_ns);
  }
  iob__dlist *l = &d->lists[list];
  /* A dense list writes all its items down the moment one comes out of
   * order: room for them, and the new one. */
  uint32_t dense = l->head != NONE && l->dense ? l->tail - l->head + 1 : 0;
  if (l->write + dense + 1 <= l->cap)
    return 0;
  if (!l->dense && l->read > 0) { /* what came out makes room */
    memmove(l->items, l->items + l->read,
            (l->write - l->read) * sizeof(*l->items));
    l->write -= l->read;
    l->read = 0;
  }
  uint32_t need = l->write + dense + 1;
  return need <= l->cap ? 0 : grow_items(l, need < 8 ? 16 : 2 * need);
}

/* ---- the heap of lists ------------------------------------------------- */

static uint64_t key(const iob__deadlines *d, uint32_t h) {
  return iob__deadlines_head(d, &d->lists[d->heap[h]]);
}

static void heap_set(iob__deadlines *d, uint32_t h, uint32_t list) {
  d->heap[h] = list;
  d->lists[list].heap_pos = h;
}

static void sift_up(iob__deadlines *d, uint32_t h) {
  uint32_t list = d->heap[h];
  uint64_t k = iob__deadlines_head(d, &d->lists[list]);
  while (h > 0 && key(d, (h - 1) / 2) > k) {
    heap_set(d, h, d->heap[(h - 1) / 2]);
    h = (h - 1) / 2;
  }
  heap_set(d, h, list);
}

static void sift_down(iob__deadlines *d, uint32_t h) {
  uint32_t list = d->heap[h];
  uint64_t k = iob__deadlines_head(d, &d->lists[list]);
  for (;;) {
    uint32_t c = 2 * h + 1;
    if (c >= d->nheap)
      break;
    if (c + 1 < d->nheap && key(d, c + 1) < key(d, c))
      c++;
    if (key(d, c) >= k)
      break;
    heap_set(d, h, d->heap[c]);
    h = c;
  }
  heap_set(d, h, list);
}

/* ---- items ------------------------------------------------------------- */

bool iob__deadlines_add_slow(iob__deadlines *d, iob__dlist *l, uint32_t i) {
  if (l->head != NONE) { /* no longer consecutive: write down its items */
    for (uint32_t k = l->head; k != l->tail + 1; k++)
      l->items[l->write++] = k;
    l->dense = false;
    l->items[l->write++] = i;
    return false;
  }
  l->head = l->tail = i;
  l->read = l->write = 0; /* empty: start its array again */
  l->dense = true;
  heap_set(d, d->nheap, (uint32_t)(l - d->lists));
  sift_up(d, d->nheap++);
  return l->heap_pos == 0;
}

/* List l's head went: put it back in its place, or out if it is empty. */
void iob__deadlines_reorder(iob__deadlines *d, iob__dlist *l) {
  if (l->head != NONE) {
    sift_down(d, l->heap_pos);
    return;
  }
  l->heap_pos = NONE;
  if (--d->nheap > 0) {
    heap_set(d, 0, d->heap[d->nheap]);
    sift_down(d, 0);
  }
}

/* ---- a batch's plan --------------------------------------------------- */

int iob__deadlines_plan(iob__deadlines *d, const iob_batch *b) {
  uint64_t timeout = iob__timeout_ns(b);
  uint32_t count = b->config.count;
  bool async = b->config.kind->start != NULL;
  *d = (iob__deadlines){0};
  if (b->open)
    return iob__deadlines_init(d, b);
  if (async && timeout == 0)
    return 0; /* nothing to time */
  int err = iob__deadlines_init(d, b);
  if (err == 0 && (async || b->config.durations_ms == NULL))
    err = iob__deadlines_make_list(d, async ? timeout : iob__wait_ns(b, 0),
                                   count);
  else
    for (uint32_t i = 0; i < count && err == 0; i++)
      err = iob__deadlines_make_list(d, iob__wait_ns(b, i), 1);
  return err == 0 ? iob__deadlines_ready(d) : err;
}
