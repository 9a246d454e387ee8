/* Peak in flight: the most intervals [started_ns, finished_ns) that hold
 * one instant. The peak is reached at some start, so a sweep over the
 * intervals in start order finds it, given the ends of those still open.
 *
 * Sorting copies of every start and end, as this used to, costs time and
 * memory for all of them. But the records come in index order, which is
 * start order, or close to it, in every style: the loop styles start
 * operations in index order, and a pool's threads take them from a queue
 * in that order too, only stamping their start times a little out of
 * turn. So the sweep reads them in index order, through a small window
 * that puts them back in start order, and keeps only the ends of the
 * intervals open: memory bounded by the peak, not by the record count.
 *
 * Records in no particular order still need the sort. No method can
 * avoid memory in proportion to n there, short of many passes: deciding
 * whether n unit-length intervals peak at 1 or 2 is deciding whether n
 * numbers are distinct, which needs time times memory of about n^2 when
 * the input is only read (Borodin et al., 1987). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "peak.h"

#define LOCAL 256   /* open ends kept on the stack before any malloc() */
#define WINDOW 1024 /* how far out of turn a start may be: a full pool */
#define DISORDER 1  /* a start was further out of turn than that */

void *(*iob__peak_realloc)(void *block, size_t size) = realloc;

typedef struct span {
  uint64_t start, end;
} span;

typedef struct sweep {
  uint64_t *ends;     /* min-heap: open intervals that end by max_start */
  size_t len, cap;    /* cap keeps a spare slot past the heap, for down() */
  uint64_t max_start; /* the last start of all */
  uint64_t last;      /* the latest start swept */
  uint32_t lasting;   /* open intervals that end after max_start */
  uint32_t top;       /* the most open at a start so far */
  uint64_t local[LOCAL];
} sweep;

/* Put v in the hole at the root of the heap h[0..len). Choosing the
 * child without a branch matters: that branch is a coin toss. */
static void down(uint64_t *h, size_t len, uint64_t v) {
  size_t i = 0, c;
  h[len] = UINT64_MAX; /* a right child that never wins */
  while ((c = 2 * i + 1) < len) {
    c += h[c + 1] < h[c];
    if (v <= h[c])
      break;
    h[i] = h[c];
    i = c;
  }
  h[i] = v;
}

static bool push(sweep *s, uint64_t v) {
  if (s->len + 1 == s->cap) {
    bool moving = s->ends == s->local;
    uint64_t *at = s->cap > SIZE_MAX / 2 / sizeof(*at)
                       ? NULL
                       : iob__peak_realloc(moving ? NULL : s->ends,
                                           2 * s->cap * sizeof(*at));
    if (at == NULL)
      return false;
    if (moving)
      memcpy(at, s->local, s->len * sizeof(*at));
    s->ends = at;
    s->cap *= 2;
  }
  size_t i = s->len++;
  for (; i > 0 && s->ends[(i - 1) / 2] > v; i = (i - 1) / 2)
    s->ends[i] = s->ends[(i - 1) / 2];
  s->ends[i] = v;
  return true;
}

/* The next interval in start order: close what ended by its start, then
 * open it. One that outlasts every start never closes, so it is only
 * counted: when most overlap, the heap stays small. */
static bool visit(sweep *s, span x) {
  bool placed = x.end > s->max_start;
  s->lasting += placed;
  s->last = x.start;
  while (s->len > 0 && s->ends[0] <= x.start) {
    if (!placed) { /* its end takes the closed one's place */
      down(s->ends, s->len, x.end);
      placed = true;
    } else {
      s->len--;
      down(s->ends, s->len, s->ends[s->len]);
    }
  }
  if (!placed && !push(s, x.end))
    return false;
  if (s->len + s->lasting > s->top)
    s->top = (uint32_t)s->len + s->lasting;
  return true;
}

/* Sweep through a window kept in start order by insertion, which costs
 * how far out of turn each start is: next to nothing for a pool. */
static int sweep_window(sweep *s, const iob_record *r, uint32_t n) {
  span *w = iob__peak_realloc(NULL, 2 * WINDOW * sizeof(*w));
  if (w == NULL)
    return IOB_ENOMEM;
  size_t head = 0, tail = 0; /* w[head..tail), at most WINDOW of them */
  int err = 0;
  for (uint32_t i = 0; i < n && err == 0; i++) {
    span x = {r[i].started_ns, r[i].finished_ns};
    if (x.end <= x.start)
      continue;
    if (x.start < s->last) {
      err = DISORDER; /* what came before it is swept already */
      break;
    }
    if (tail == 2 * WINDOW) {
      memmove(w, w + head, (tail - head) * sizeof(*w));
      tail -= head;
      head = 0;
    }
    size_t j = tail++;
    for (; j > head && w[j - 1].start > x.start; j--)
      w[j] = w[j - 1];
    w[j] = x;
    if (tail - head > WINDOW && !visit(s, w[head++]))
      err = IOB_ENOMEM;
  }
  while (err == 0 && head < tail)
    if (!visit(s, w[head++]))
      err = IOB_ENOMEM;
  free(w);
  return err;
}

static int sweep_all(const iob_record *r, uint32_t n, uint64_t max_start,
                     bool sorted, uint32_t *peak) {
  sweep s = {.cap = LOCAL, .max_start = max_start};
  s.ends = s.local;
  int err = 0;
  if (sorted) {
    for (uint32_t i = 0; i < n && err == 0; i++)
      if (r[i].finished_ns > r[i].started_ns &&
          !visit(&s, (span){r[i].started_ns, r[i].finished_ns}))
        err = IOB_ENOMEM;
  } else {
    err = sweep_window(&s, r, n);
  }
  if (s.ends != s.local)
    free(s.ends);
  *peak = s.top; /* if err, what was swept is still a lower bound */
  return err;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* Records far out of start order: sort copies of the m starts and ends,
 * then merge them. Every end passed belongs to an interval that started
 * earlier (its start < its end <= this start): `running` never wraps. */
static int sort_all(const iob_record *r, uint32_t n, uint32_t m,
                    uint32_t *peak) {
  uint64_t *starts = iob__peak_realloc(NULL, 2 * (size_t)m * sizeof(*starts));
  if (starts == NULL)
    return IOB_ENOMEM;
  uint64_t *ends = starts + m;
  for (uint32_t i = 0, k = 0; i < n; i++) {
    if (r[i].finished_ns > r[i].started_ns) {
      starts[k] = r[i].started_ns;
      ends[k++] = r[i].finished_ns;
    }
  }
  qsort(starts, m, sizeof(*starts), cmp_u64);
  qsort(ends, m, sizeof(*ends), cmp_u64);
  uint32_t running = 0, top = 0, e = 0;
  for (uint32_t s = 0; s < m; s++) {
    while (e < m && ends[e] <= starts[s]) {
      e++;
      running--;
    }
    if (++running > top)
      top = running;
  }
  free(starts);
  *peak = top;
  return 0;
}

int iob__peak_in_flight(const iob_record *records, uint32_t n, uint32_t *peak) {
  uint32_t m = 0; /* operations that took time */
  bool instant = false, sorted = true;
  uint64_t max_start = 0, min_end = UINT64_MAX;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t start = records[i].started_ns, end = records[i].finished_ns;
    if (end <= start) {
      instant = true;
      continue;
    }
    sorted = sorted && start >= max_start;
    m++;
    if (start > max_start)
      max_start = start;
    if (end < min_end)
      min_end = end;
  }
  /* All hold the instant before the first end: the common case of a
   * batch launched at once, decided without a sweep. */
  if (m == 0 || max_start < min_end) {
    *peak = m > 0 ? m : instant;
    return 0;
  }
  int err = sweep_all(records, n, max_start, sorted, peak);
  if (err == DISORDER)
    err = sort_all(records, n, m, peak);
  if (err != 0) {
    /* A lower bound: all that started before the first end hold it. */
    uint32_t before = 0;
    for (uint32_t i = 0; i < n; i++)
      before += records[i].finished_ns > records[i].started_ns &&
                records[i].started_ns < min_end;
    if (before > *peak)
      *peak = before;
  }
  return err;
}
