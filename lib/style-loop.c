/* Event-loop style: every wait is a deadline on the loop; no thread runs.
 *
 * One libuv timer serves the whole batch. Operations of one duration are
 * kept in a list in launch order, which is also deadline order, so adding
 * one is O(1); a min-heap orders the lists by their first deadline (as
 * Node.js does with its timer lists). Waits that end in the same loop
 * millisecond end in one timer callback.
 *
 * Deadlines are measured on the records' own clock (ns since the batch
 * started), not on the loop's millisecond clock, so every record shows a
 * wait at least as long as asked for. The timer is a wake-up call: when
 * it fires early, the batch sleeps again for what remains.
 *
 * No per-operation memory beyond its record: while an operation waits,
 * its record's finished_ns holds its deadline and its worker field the
 * next operation of its list. */
#include <stdlib.h>

#include "internal.h"

#define NONE UINT32_MAX

typedef struct dlist {
  uint64_t duration;
  uint32_t head, tail; /* NONE when empty */
  uint32_t heap_pos;   /* NONE when not in the heap */
} dlist;

typedef struct loop_state {
  uv_timer_t timer;
  uint64_t armed;  /* deadline the timer is set for; UINT64_MAX if none */
  bool in_timer;   /* launches wait in `pending` while the timer runs */
  uint32_t pending_head, pending_tail;
  dlist *lists;
  uint32_t nlists;
  uint32_t *heap; /* list indices, earliest first deadline on top */
  uint32_t nheap;
  uint32_t *table; /* open addressing: duration -> list index + 1 */
  uint32_t table_mask;
  /* Start-function operations start in index order, all with the same
   * timeout, so their deadlines come in index order: the next to check. */
  uint32_t timeout_next;
} loop_state;

static inline uint32_t *next_of(iob_batch *b, uint32_t i) {
  return &b->records[i].worker;
}

static inline uint64_t deadline_of(iob_batch *b, uint32_t i) {
  return b->records[i].finished_ns;
}

/* How long operation i waits on the timer before it ends (a wait, cut
 * short by the timeout) or runs on the loop thread (work that blocks it:
 * due at once). */
static inline uint64_t wait_ms(const iob_batch *b, uint32_t i) {
  if (iob__work_inline(b))
    return 0;
  uint64_t d = iob__duration_ms(b, i), t = b->config.timeout_ms;
  return t != 0 && t < d ? t : d;
}

static inline bool user_async(const iob_batch *b) {
  return b->config.work == IOB_WORK_USER && b->config.start != NULL;
}

/* ---- duration -> list -------------------------------------------------- */

static uint32_t slot_of(const loop_state *s, uint64_t duration) {
  uint32_t h = (uint32_t)((duration * UINT64_C(0x9E3779B97F4A7C15)) >> 32);
  return h & s->table_mask;
}

static uint32_t find_list(const loop_state *s, uint64_t duration) {
  for (uint32_t k = slot_of(s, duration);; k = (k + 1) & s->table_mask) {
    uint32_t v = s->table[k];
    if (v == 0 || s->lists[v - 1].duration == duration)
      return v == 0 ? NONE : v - 1;
  }
}

static void put_list(loop_state *s, uint32_t index) {
  uint32_t k = slot_of(s, s->lists[index].duration);
  while (s->table[k] != 0)
    k = (k + 1) & s->table_mask;
  s->table[k] = index + 1;
}

/* Keep the table at most half full. */
static int grow_table(loop_state *s) {
  uint32_t size = (s->table_mask + 1) * 2;
  uint32_t *t = calloc(size, sizeof(*t));
  if (t == NULL)
    return IOB_ENOMEM;
  free(s->table);
  s->table = t;
  s->table_mask = size - 1;
  for (uint32_t i = 0; i < s->nlists; i++)
    put_list(s, i);
  return 0;
}

static int add_list(loop_state *s, uint64_t duration, uint32_t *cap) {
  if (s->nlists == *cap) {
    uint32_t n = *cap * 2;
    dlist *l = realloc(s->lists, n * sizeof(*l));
    if (l == NULL)
      return IOB_ENOMEM;
    s->lists = l;
    *cap = n;
  }
  if (2 * (s->nlists + 1) > s->table_mask + 1) {
    int err = grow_table(s);
    if (err != 0)
      return err;
  }
  s->lists[s->nlists] = (dlist){duration, NONE, NONE, NONE};
  put_list(s, s->nlists++);
  return 0;
}

/* One list per distinct duration, all made before anything starts, so a
 * launch never allocates and never fails. */
static int make_lists(iob_batch *b, loop_state *s) {
  uint32_t cap = 8;
  s->lists = malloc(cap * sizeof(*s->lists));
  s->table = calloc(16, sizeof(*s->table));
  s->table_mask = 15;
  if (s->lists == NULL || s->table == NULL)
    return IOB_ENOMEM;
  uint32_t n = b->config.durations_ms ? b->config.count : 1;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t d = wait_ms(b, i);
    if (find_list(s, d) == NONE) {
      int err = add_list(s, d, &cap);
      if (err != 0)
        return err;
    }
  }
  s->heap = malloc(s->nlists * sizeof(*s->heap));
  return s->heap == NULL ? IOB_ENOMEM : 0;
}

/* ---- the heap of lists ------------------------------------------------- */

static uint64_t key(iob_batch *b, const loop_state *s, uint32_t h) {
  return deadline_of(b, s->lists[s->heap[h]].head);
}

static void heap_set(loop_state *s, uint32_t h, uint32_t list) {
  s->heap[h] = list;
  s->lists[list].heap_pos = h;
}

static void sift_up(iob_batch *b, loop_state *s, uint32_t h) {
  uint32_t list = s->heap[h];
  uint64_t k = deadline_of(b, s->lists[list].head);
  while (h > 0 && key(b, s, (h - 1) / 2) > k) {
    heap_set(s, h, s->heap[(h - 1) / 2]);
    h = (h - 1) / 2;
  }
  heap_set(s, h, list);
}

static void sift_down(iob_batch *b, loop_state *s, uint32_t h) {
  uint32_t list = s->heap[h];
  uint64_t k = deadline_of(b, s->lists[list].head);
  for (;;) {
    uint32_t c = 2 * h + 1;
    if (c >= s->nheap)
      break;
    if (c + 1 < s->nheap && key(b, s, c + 1) < key(b, s, c))
      c++;
    if (key(b, s, c) >= k)
      break;
    heap_set(s, h, s->heap[c]);
    h = c;
  }
  heap_set(s, h, list);
}

static void heap_pop(iob_batch *b, loop_state *s) {
  s->lists[s->heap[0]].heap_pos = NONE;
  if (--s->nheap > 0) {
    heap_set(s, 0, s->heap[s->nheap]);
    sift_down(b, s, 0);
  }
}

/* ---- waiting ----------------------------------------------------------- */

static void on_timer(uv_timer_t *timer);

/* The next start-function operation still in flight whose timeout is
 * yet to be checked; NONE if there is none. */
static uint32_t next_timeout(iob_batch *b, loop_state *s) {
  if (!user_async(b) || b->config.timeout_ms == 0)
    return NONE;
  while (s->timeout_next < b->next &&
         b->records[s->timeout_next].worker != IOB__USER_IN_FLIGHT)
    s->timeout_next++;
  return s->timeout_next < b->next ? s->timeout_next : NONE;
}

static uint64_t timeout_of(const iob_batch *b, uint32_t i) {
  return b->records[i].started_ns + b->config.timeout_ms * 1000000;
}

/* The earliest deadline of all; UINT64_MAX if nothing waits. */
static uint64_t earliest(iob_batch *b, loop_state *s) {
  uint64_t first = s->nheap > 0 ? key(b, s, 0) : UINT64_MAX;
  uint32_t t = next_timeout(b, s);
  if (t != NONE && timeout_of(b, t) < first)
    first = timeout_of(b, t);
  return first;
}

/* Sleep until the earliest deadline, unless already set to wake by then. */
static void arm(iob_batch *b, loop_state *s) {
  uint64_t first = earliest(b, s);
  if (first == UINT64_MAX)
    return;
  if (first >= s->armed && uv_is_active((uv_handle_t *)&s->timer))
    return;
  uint64_t now = uv_hrtime() - b->t0;
  uint64_t sleep_ms = first > now ? (first - now + 999999) / 1000000 : 0;
  s->armed = first;
  uv_update_time(b->loop); /* the timer counts from the loop's clock */
  uv_timer_start(&s->timer, on_timer, sleep_ms, 0);
}

/* Add operation i to the end of its list. Returns true if that made a new
 * earliest deadline: only then may the timer need to be set again. */
static bool enqueue(iob_batch *b, loop_state *s, uint32_t i) {
  uint64_t wait = wait_ms(b, i);
  /* One duration for the whole batch is the common case: no lookup. */
  dlist *l = &s->lists[s->nlists == 1 ? 0 : find_list(s, wait)];
  iob_record *r = &b->records[i];
  r->finished_ns = r->started_ns + wait * 1000000;
  *next_of(b, i) = NONE;
  if (l->head != NONE) {
    *next_of(b, l->tail) = i;
    l->tail = i;
    return false; /* behind the list's head: its place in the heap holds */
  }
  l->head = l->tail = i;
  heap_set(s, s->nheap, (uint32_t)(l - s->lists));
  sift_up(b, s, s->nheap++);
  return l->heap_pos == 0;
}

/* Put list `list` back in its place in the heap after its head left
 * (unless a cancel emptied everything meanwhile). */
static void reorder(iob_batch *b, loop_state *s, uint32_t list) {
  if (s->lists[list].heap_pos == NONE)
    return;
  if (s->lists[list].head == NONE)
    heap_pop(b, s);
  else
    sift_down(b, s, s->lists[list].heap_pos);
}

/* Settle every operation of list `list` whose deadline has come. */
static void expire_list(iob_batch *b, loop_state *s, uint32_t list,
                        uint64_t now) {
  dlist *l = &s->lists[list];
  uint64_t timeout = b->config.timeout_ms;
  while (l->head != NONE && deadline_of(b, l->head) <= now) {
    uint32_t i = l->head;
    l->head = *next_of(b, i);
    b->records[i].finished_ns = iob__stamp(b);
    b->records[i].worker = 0;
    bool late = timeout != 0 && iob__duration_ms(b, i) > timeout;
    iob__op_done(b, i, late ? IOB_ETIMEDOUT : 0);
  }
  reorder(b, s, list);
}

/* Run the first due operation whose work blocks the loop. One a callback,
 * so the loop serves its other handles between two of them. */
static void run_inline(iob_batch *b, loop_state *s) {
  uint32_t list = s->heap[0];
  uint32_t i = s->lists[list].head;
  s->lists[list].head = *next_of(b, i);
  reorder(b, s, list);
  iob_record *r = &b->records[i];
  r->started_ns = uv_hrtime() - b->t0;
  r->worker = 0;
  int status = iob__work_blocking(b, i);
  r->finished_ns = uv_hrtime() - b->t0;
  iob__op_done(b, i, iob__late(b, i, status));
}

/* Start-function operations past their timeout are told to stop; they
 * stay in flight until they call iob_op_done(). */
static void expire_timeouts(iob_batch *b, loop_state *s, uint64_t now) {
  uint32_t i;
  while ((i = next_timeout(b, s)) != NONE && timeout_of(b, i) <= now) {
    b->records[i].worker = IOB__USER_TIMED_OUT;
    s->timeout_next++;
    if (b->config.cancel != NULL)
      b->config.cancel(b, i);
  }
}

static void on_timer(uv_timer_t *timer) {
  iob_batch *b = timer->data;
  loop_state *s = b->style;

  iob__stamp_fresh(b);
  uint64_t now = iob__stamp(b);
  s->in_timer = true;
  s->armed = UINT64_MAX;
  expire_timeouts(b, s, now);
  if (iob__work_inline(b) && s->nheap > 0 && key(b, s, 0) <= now)
    run_inline(b, s);
  while (!iob__work_inline(b) && s->nheap > 0) {
    if (key(b, s, 0) > now) {
      /* Settling takes time: deadlines may have come meanwhile. */
      iob__stamp_fresh(b);
      now = iob__stamp(b);
      if (key(b, s, 0) > now)
        break;
    }
    expire_list(b, s, s->heap[0], now);
  }
  s->in_timer = false;
  if (b->ended)
    return; /* finish() has closed the timer */

  /* Operations launched by the ones that ended start their wait now. */
  iob__stamp_fresh(b);
  for (uint32_t i = s->pending_head; i != NONE;) {
    uint32_t next = *next_of(b, i);
    b->records[i].started_ns = iob__stamp(b);
    enqueue(b, s, i);
    i = next;
  }
  s->pending_head = s->pending_tail = NONE;
  arm(b, s);
}

/* ---- the style --------------------------------------------------------- */

static void free_state(loop_state *s) {
  free(s->lists);
  free(s->heap);
  free(s->table);
  free(s);
}

static int loop_start(iob_batch *b) {
  loop_state *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return IOB_ENOMEM;
  int err = make_lists(b, s);
  if (err == 0)
    err = uv_timer_init(b->loop, &s->timer);
  if (err != 0) {
    free_state(s);
    return err;
  }
  s->timer.data = b;
  s->armed = UINT64_MAX;
  s->pending_head = s->pending_tail = NONE;
  b->style = s;
  return 0;
}

/* The user's own asynchronous operation: it calls iob_op_done() itself. */
static void launch_user(iob_batch *b, uint32_t i) {
  iob_record *r = &b->records[i];
  r->worker = IOB__USER_IN_FLIGHT;
  int status = b->config.start(b, i);
  if (status != 0 && r->worker == IOB__USER_IN_FLIGHT) {
    r->finished_ns = iob__stamp(b);
    r->worker = 0;
    iob__op_done(b, i, status);
  }
}

static void loop_launch(iob_batch *b, uint32_t i) {
  loop_state *s = b->style;
  b->records[i].started_ns = b->records[i].queued_ns;
  if (user_async(b)) {
    launch_user(b, i);
    if (b->config.timeout_ms != 0 && !s->in_timer && !b->ended)
      arm(b, s);
    return;
  }
  if (s->in_timer) {
    *next_of(b, i) = NONE;
    if (s->pending_head == NONE)
      s->pending_head = i;
    else
      *next_of(b, s->pending_tail) = i;
    s->pending_tail = i;
    return;
  }
  if (enqueue(b, s, i))
    arm(b, s);
}

/* Settle, as cancelled, the chain of waiting operations from `i`. */
static void cancel_chain(iob_batch *b, uint32_t i, uint64_t now) {
  while (i != NONE) {
    uint32_t next = *next_of(b, i);
    iob_record *r = &b->records[i];
    if (iob__work_inline(b))
      r->started_ns = now; /* it never ran */
    r->finished_ns = now;
    r->worker = 0;
    iob__op_done(b, i, IOB_ECANCELED);
    i = next;
  }
}

static void loop_cancel(iob_batch *b) {
  loop_state *s = b->style;
  uint64_t now = iob__stamp(b);
  uv_timer_stop(&s->timer);
  s->armed = UINT64_MAX;
  /* Detach everything first: settling runs callbacks that may look. */
  uint32_t pending = s->pending_head;
  s->pending_head = s->pending_tail = NONE;
  s->nheap = 0;
  for (uint32_t k = 0; k < s->nlists; k++) {
    uint32_t head = s->lists[k].head;
    s->lists[k].head = s->lists[k].tail = NONE;
    s->lists[k].heap_pos = NONE;
    cancel_chain(b, head, now);
  }
  cancel_chain(b, pending, now);

  if (!user_async(b))
    return;
  for (uint32_t i = 0; i < b->next; i++) {
    if (b->records[i].worker != IOB__USER_IN_FLIGHT)
      continue;
    b->records[i].worker = IOB__USER_CANCELLED;
    if (b->config.cancel != NULL)
      b->config.cancel(b, i);
  }
}

static void on_close(uv_handle_t *handle) {
  iob_batch *b = handle->data;
  free_state(b->style);
  b->style = NULL;
  iob__batch_closed(b);
}

static void loop_finish(iob_batch *b) {
  loop_state *s = b->style;
  uv_close((uv_handle_t *)&s->timer, on_close);
}

static uint32_t loop_threads(const iob_batch *b) {
  (void)b;
  return 0;
}

const iob__style_ops iob__style_loop = {
    .start = loop_start,
    .launch = loop_launch,
    .cancel = loop_cancel,
    .finish = loop_finish,
    .threads = loop_threads,
};
