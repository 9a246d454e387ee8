/* Private to the library: the batch's layout and the interface between the
 * batch (batch.c) and the concurrency styles (one style-*.c file each). */
#ifndef IOB_INTERNAL_H
#define IOB_INTERNAL_H

#include <stdatomic.h>
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
  /* Settle what can be settled now among the operations in flight
   * (iob__op_done with IOB_ECANCELED); the rest settle as they end. */
  void (*cancel)(iob_batch *b);
  /* Every operation settled: release what start() made, then call
   * iob__batch_closed() from a close callback, never synchronously. */
  void (*finish)(iob_batch *b);
  /* Threads the style can run operations on (0: only the loop's). */
  uint32_t (*threads)(const iob_batch *b);
} iob__style_ops;

extern const iob__style_ops iob__style_sequential;
extern const iob__style_ops iob__style_loop;
extern const iob__style_ops iob__style_pool;
extern const iob__style_ops iob__style_threads;

/* How the threads style creates a thread: uv_thread_create_ex, or a test's
 * stand-in that refuses, to exercise refusals without exhausting the
 * machine. */
extern int (*iob__thread_create)(uv_thread_t *tid,
                                 const uv_thread_options_t *options,
                                 uv_thread_cb entry, void *arg);

/* A record's worker while a user's start function has it in flight: as
 * started, told to stop after its timeout, or told to stop by a cancel. */
#define IOB__USER_IN_FLIGHT UINT32_MAX
#define IOB__USER_TIMED_OUT (UINT32_MAX - 1)
#define IOB__USER_CANCELLED (UINT32_MAX - 2)

static inline bool iob__user_in_flight(uint32_t worker) {
  return worker >= IOB__USER_CANCELLED;
}

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
  uint64_t cpu0_ns;    /* the process's CPU time at start */
  uint64_t cpu_ns;     /* CPU time used while it ran */
  uint64_t stamp;      /* a recent clock reading, shared by a burst */
  uint32_t stamp_left; /* readings left before the clock is read again */

  uint32_t limit;     /* most operations in flight; count if unlimited */
  uint32_t next;      /* next operation to launch */
  uint32_t in_flight; /* launched and not yet settled */
  uint32_t settled;
  uint32_t failed;
  uint32_t threads_used; /* threads style: most threads it had at once */
  /* The measured peak, sorted out of the records once (the exporters and
   * the application may each ask for a report): 0 until known, else peak
   * + 1. Atomic because a finished batch may be read from any thread. */
  _Atomic uint32_t peak_known;
  bool launching; /* guards launch_more() against re-entry */
  bool cancelled;
  bool ended;            /* every operation settled; finish() called */
  uv_thread_t loop_thread; /* the thread that started the batch */

  void *style; /* the style's own state */
  iob_record *records;
};

/* The operation's own simulated duration, in ms. */
static inline uint64_t iob__duration_ms(const iob_batch *b, uint32_t i) {
  return b->config.durations_ms ? b->config.durations_ms[i]
                                : b->config.duration_ms;
}

/* What the operation functions get: op_data, or data if there is none. */
static inline void *iob__op_data(const iob_batch *b) {
  return b->config.op_data ? b->config.op_data : b->config.data;
}

/* True when the operation's work runs on the loop thread itself: CPU work,
 * or a user's blocking function with no start function. */
static inline bool iob__work_inline(const iob_batch *b) {
  return b->config.work == IOB_WORK_CPU ||
         (b->config.work == IOB_WORK_USER && b->config.start == NULL);
}

/* Nanoseconds since the batch started, read at most once per 1024 calls:
 * operations handled in one burst share a reading, which keeps a million
 * timestamps cheap. Every entry into the batch from a libuv callback calls
 * iob__stamp_fresh() first, so a burst never spans two callbacks. */
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

/* Stop the batch with a status, as iob_batch_cancel() does. */
void iob__batch_fail(iob_batch *b, int status);

/* IOB_ETIMEDOUT for a successful operation that ran past the timeout
 * (blocking work, which nothing can interrupt); else `status`. */
int iob__late(const iob_batch *b, uint32_t i, int status);

/* Give back operation i, just launched, to launch it again later. */
void iob__op_unlaunch(iob_batch *b, uint32_t i);

/* A small number for the calling thread, the same for its whole life:
 * 1, 2, 3... in the order threads first ask. */
uint32_t iob__thread_number(void);

/* For styles that keep a slot per operation in flight: a new stack of the
 * free slot numbers, 0 on top, or NULL when memory runs out. */
uint32_t *iob__slot_stack(uint32_t n);

/* Run operation i's work, blocking the calling thread. */
int iob__work_blocking(const iob_batch *b, uint32_t i);

/* The process's CPU time, user and system, in ns. */
uint64_t iob__cpu_ns(void);

/* Mark libuv's pool as used by iobound: its size is now fixed. */
void iob__pool_mark_used(void);

#endif /* IOB_INTERNAL_H */
