/* Private to the library: the batch's layout and the interface between the
 * batch (batch.c) and the concurrency styles (one style-*.c file each). */
#ifndef IOB_INTERNAL_H
#define IOB_INTERNAL_H

#include <stdbool.h>

#include "iobound.h"

/* What a style does; the batch does the rest (limits, counting, the end).
 * Adding a style means one file with one of these and one table entry. */
typedef struct iob__style_ops {
  /* Set up the style's state. On error nothing may be left started. */
  int (*start)(iob_batch *b);
  /* Begin operation i. Must not settle it before returning: settle it
   * later, from the loop thread, with iob__op_done(). */
  void (*launch)(iob_batch *b, uint32_t i);
  /* Every operation settled: release what start() made, then call
   * iob__batch_closed() (possibly from a close callback). */
  void (*finish)(iob_batch *b);
  /* Threads the style can run operations on (0: only the loop's). */
  uint32_t (*threads)(const iob_batch *b);
} iob__style_ops;

extern const iob__style_ops iob__style_sequential;
extern const iob__style_ops iob__style_loop;
extern const iob__style_ops iob__style_pool;

typedef enum iob__state {
  IOB__CREATED = 0,
  IOB__RUNNING,
  IOB__FINISHED,
} iob__state;

struct iob_batch {
  iob_config config;
  const iob__style_ops *ops;
  iob__state state;
  uv_loop_t *loop;
  iob_batch_cb cb;
  int status;

  uint64_t t0;         /* uv_hrtime() at start: records count from here */
  uint64_t end_ns;     /* when the last operation settled */
  uint64_t stamp;      /* a recent clock reading, shared by a burst */
  uint32_t stamp_left; /* readings left before the clock is read again */

  uint32_t limit;     /* most operations in flight; count if unlimited */
  uint32_t next;      /* next operation to launch */
  uint32_t in_flight; /* launched and not yet settled */
  uint32_t settled;
  uint32_t failed;
  bool launching; /* guards launch_more() against re-entry */

  void *style; /* the style's own state */
  iob_record *records;
};

/* The operation's own simulated duration, in ms. */
static inline uint64_t iob__duration_ms(const iob_batch *b, uint32_t i) {
  return b->config.durations_ms ? b->config.durations_ms[i]
                                : b->config.duration_ms;
}

/* Nanoseconds since the batch started, read at most once per 1024 calls:
 * operations handled in one burst share a reading, which keeps a million
 * timestamps cheap. iob__stamp_fresh() forces a new reading. */
static inline uint64_t iob__stamp(iob_batch *b) {
  if (b->stamp_left == 0) {
    b->stamp = uv_hrtime() - b->t0;
    b->stamp_left = 1024;
  }
  b->stamp_left--;
  return b->stamp;
}

static inline void iob__stamp_fresh(iob_batch *b) { b->stamp_left = 0; }

/* Settle operation i with a status, on the loop thread. */
void iob__op_done(iob_batch *b, uint32_t i, int status);

/* The style released everything: the batch is over. */
void iob__batch_closed(iob_batch *b);

/* A small number for the calling thread, the same for its whole life:
 * 1, 2, 3... in the order threads first ask. */
uint32_t iob__thread_number(void);

/* Run operation i's work, blocking the calling thread. */
int iob__work_blocking(iob_batch *b, uint32_t i);

/* Mark libuv's pool as used by iobound: its size is now fixed. */
void iob__pool_mark_used(void);

#endif /* IOB_INTERNAL_H */
