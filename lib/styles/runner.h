/* The one loop engine: how operations run on one libuv loop. The loop
 * style has one runner, on the batch's own loop; the loops style has one
 * on each loop of its own, each on a thread of the batch's. Both are the
 * same code: a runner keeps waits in a timer queue of its own that one
 * libuv timer serves, begins operations with their kind's start() on its
 * loop, runs run()s on its thread, ends waits and timeouts, and hears
 * cancels; its style says what happens to an operation once it is over
 * (settled in the batch at once, or handed back to the batch's thread).
 *
 * Everything here runs on the runner's thread, but for
 * iob__runner_claim() (the batch's loop thread) and iob__runner_interrupt()
 * (any). */
#ifndef IOB_RUNNER_H
#define IOB_RUNNER_H

#include "deadlines.h"
#include "internal.h"

typedef struct iob__runner iob__runner;

/* A ring of a runner's operations begun by start(). */
typedef struct iob__ring {
  struct iob__ring *prev, *next;
} iob__ring;

/* The runner's part of a start() operation's slot: a style that runs a
 * runner has this as its slot_size. The runner's from launch to settle. */
typedef struct iob__job {
  iob__ring started; /* in its runner's ring, from start() (and while it
                        backs off before a retry) */
  int phase;         /* see runner.c */
  bool stopped;      /* its kind's stop() was called */
  /* Hedged (iob_hedge): its attempts while they run; `hedged` once it
   * ran so (its own state was never started). */
  iob__tries *tries;
  bool hedged;
  /* Its attempt's own timeout stopped it (iob_retry.attempt_timeout_ms):
   * a failure to retry, unless it was told to stop for good meanwhile
   * (final_stop: why). */
  bool attempt_stop;
  int final_stop;
} iob__job;

/* What a runner's style does for it. */
typedef struct iob__runner_hooks {
  /* The style's timer callback: it finds its runner and calls
   * iob__runner_due() (a batch's timer carries a tag, not the runner). */
  void (*on_timer)(uv_timer_t *timer);
  /* Operation i is over on this runner with `status`, its record's times
   * set; a start() operation's slot is closed (cleanup() done, outcome
   * kept) but still taken. True if that ended the batch: the runner then
   * touches nothing more. */
  bool (*over)(iob__runner *r, uint32_t i, int status);
  /* Optional: between two slices of run()s on this thread, the style
   * hears what was asked of it meanwhile. Without it the timer callback
   * returns, and fires again at once. */
  void (*between)(iob__runner *r);
  /* Optional: a timer callback ends: what over() gathered goes back. */
  void (*flush)(iob__runner *r);
} iob__runner_hooks;

struct iob__runner {
  /* Set by the style before iob__runner_open(). */
  iob_batch *b;
  const iob__runner_hooks *hooks;
  uv_loop_t *loop;
  uv_timer_t *timer; /* initialised before the first launch */
  iob__clock *clock; /* the batch's (on its loop thread), or NULL: own */
  /* Where an operation's in-flight status is: its hop's (its style hands
   * it between threads), else its record's. */
  bool hopping;
  iob__hop *hops;    /* a batch of count's hops; an open batch's are its
                   * tasks' */
  iob__kinds *kinds; /* kinds opened on this loop; NULL: by the core */
  uv_mutex_t *lock;  /* guards `running` when others may read it */

  /* The runner's own. */
  iob__clock own_clock;
  iob__deadlines queue;
  uint64_t armed;  /* the deadline the timer is set for, or UINT64_MAX */
  bool in_timer;   /* waits launched meanwhile wait in the pending range */
  bool gathering;  /* over() may hold what settles until flush() */
  bool cancelling; /* the batch's cancel was heard here */
  bool ended;      /* the batch ended (over() said so) */
  uint32_t pending, pending_end;
  iob__ring started;
  /* start() operations backing off before a retry: a min-heap of when
   * each is due, grown as needed. An operation settled meanwhile
   * (cancelled) is passed over when it comes out. */
  struct iob__backoff *backoffs;
  uint32_t nbackoffs, backoffs_cap;
  iob__slot *run_slot; /* run()'s, one at a time */
  uint32_t running;    /* the operation in run() now, or UINT32_MAX */
  atomic_bool cancel;  /* the batch was cancelled: no more run() */
};

/* An operation's hop, through which the loops style hands it over. */
static inline iob__hop *iob__hop_at(const iob_batch *b, iob__hop *hops,
                                    uint32_t i) {
  return b->open ? &iob__task_at(b, i)->hop : &hops[i];
}

/* Plan the queue, make the slot for run(): 0, or an error with nothing
 * left. */
int iob__runner_open(iob__runner *r);
void iob__runner_free(iob__runner *r);

/* On the batch's loop thread, as operation i launches: a slot for it if
 * it begins with start(), handed to the runner (the core sees it taken). */
void iob__runner_claim(iob_batch *b, uint32_t i);

/* Begin operation i (claimed) on this runner. */
void iob__runner_launch(iob__runner *r, uint32_t i);

/* The timer fired: end the waits due, run the run()s due, stop the
 * operations whose timeout came. */
void iob__runner_due(iob__runner *r);

/* The batch was cancelled: what waits settles (IOB_ECANCELED), what was
 * started is told to stop, no run() begins any more. */
void iob__runner_cancel(iob__runner *r);

/* Operation i alone was cancelled: settled if it waits, told to stop if
 * it was started or runs. Nothing if it is over already. */
void iob__runner_cancel_op(iob__runner *r, uint32_t i);

/* From any thread: tell the run() running now to stop, if it is
 * operation i; UINT32_MAX: whichever runs, and no run() begins after it
 * (the batch's cancel, which the runner hears later). */
void iob__runner_interrupt(iob__runner *r, uint32_t i);

/* iob_op_done() of an operation of this runner, on its thread. */
int iob__runner_op_done(iob__runner *r, iob__slot *s, int status);

#endif /* IOB_RUNNER_H */
