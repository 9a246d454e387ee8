/* Operations that arrive at a rate, submitted to an open batch by a timer
 * of its loop (arrivals.c): iobound-compare's --arrival-rate and
 * iobound-server's rate=R. */
#ifndef IOB_ARRIVALS_H
#define IOB_ARRIVALS_H

#include <stdbool.h>
#include <stdint.h>

#include "iobound.h"

typedef struct arrivals {
  /* Set before arrivals_start(): */
  double rate;    /* operations a second */
  uint64_t count; /* how many arrive */
  bool poisson;   /* at random (exponential gaps), not evenly */
  uint64_t seed;
  /* Its own: */
  uv_timer_t timer;
  iob_batch *batch;
  iob_task task;
  uint64_t next;   /* the next to arrive */
  double due_ns;   /* when it is due, on uv_hrtime()'s clock */
  uint64_t random; /* the Poisson gaps' state */
  int err;         /* a submission refused, which cancelled the batch */
} arrivals;

/**
 * Submit @p a's operations of @p config's kind, target and duration to
 * open batch @p batch, started on @p loop, each when due, and close it
 * after the last. @return 0 or a libuv error (nothing started).
 */
int arrivals_start(arrivals *a, uv_loop_t *loop, iob_batch *batch,
                   const iob_config *config);

/** Close the timer (from the batch's callback), @p closed then called
 *  (it may be NULL); a no-op if never started or closing already.
 *  @return whether it closes now, and so whether @p closed will run. */
bool arrivals_stop(arrivals *a, uv_close_cb closed);

#endif
