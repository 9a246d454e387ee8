/* Private to the library: the batch's layout, what a style is, and the
 * operations' slots, which the core (batch.c, op.c) and the styles
 * (lib/styles/, one file each) share. */
#ifndef IOB_INTERNAL_H
#define IOB_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "iobound.h"

/* A concurrency style. The core owns everything common: the limit, the
 * counting, the slots, the end of the batch and its deferral; a style
 * supplies only how an operation runs. Optional members may be NULL.
 * Adding a style is one file with one of these, and a line in each of
 * registry.c (its name), lib/meson.build (its file), iobound.h (its
 * IOB_EXPORT) and lib/iobound.map (its symbol). */
struct iob__slot;

struct iob_style {
  const char *name;
  unsigned flags;    /* IOB_STYLE_* */
  uint32_t limit;    /* a limit of its own (sequential: 1); 0: none */
  size_t state_size; /* zeroed memory at b->style_state while it runs */
  size_t slot_size;  /* the style's part of each slot (iob__slot_style) */
  /* Its options (iob_config.style_options): their size, to copy them,
   * and its defaults; 0 and NULL for a style without. */
  size_t options_size;
  const void *defaults;
  /* Optional: check a config's options when the batch is created
   * (IOB_ERANGE for a number out of range...). */
  int (*check)(const iob_config *config);
  /* Optional: can it run operations of kind k, submitted to open batch
   * b? 0, or the code iob_batch_submit() returns. Any thread. */
  int (*check_kind)(const iob_batch *b, const iob_kind *k);
  /* Optional: set up. On error nothing may be left started. */
  int (*start)(iob_batch *b);
  /* Begin operation i. It must not settle before this returns, except
   * through the kind's own start(); settle it later with iob__settle()
   * or iob__slot_settle(), from the loop thread. */
  void (*launch)(iob_batch *b, uint32_t i);
  /* Optional: settle what can be settled now (IOB_ECANCELED); the core
   * then tells the operations in slots to stop. */
  void (*cancel)(iob_batch *b);
  /* Optional: operation i, in flight, is cancelled alone
   * (iob_batch_cancel_op()): settle it now if it can be (IOB_ECANCELED),
   * as cancel() does. `s` is its slot, NULL if it has none. The core then
   * tells the slot to stop if the operation is still in flight. */
  void (*cancel_op)(iob_batch *b, uint32_t i, struct iob__slot *s);
  /* Optional: iob__wakeup() was called from another thread. */
  void (*wakeup)(iob_batch *b);
  /* Optional: launched operation i has settled (its record is final),
   * after the application's on_op and before the core launches more: a
   * style that runs operations in waves, or keeps its own count, hears
   * it here. Loop thread. */
  void (*settled)(iob_batch *b, uint32_t i);
  /* Optional: release what start() made. Called once every operation
   * settled, or when the batch could not start after start() succeeded.
   * A style makes no libuv handle of its own: it uses the batch's timer
   * (b->timer) and wake-up (iob__wakeup()), which the core makes after
   * everything that can fail, so a failed start leaves nothing to close. */
  void (*finish)(iob_batch *b);
  /* Optional: the threads it could run operations on (0: the loop's). */
  uint32_t (*threads)(const iob_batch *b);
  /* Optional, for a style that runs start() kinds (a loop's runner,
   * lib/styles/runner.h): iob_op_done() of an operation of this batch,
   * from whatever thread the kind calls it. Without it, only an inner
   * operation's is taken. */
  int (*op_done)(iob_batch *b, struct iob__slot *s, int status);
  /* Optional, likewise: the calling thread's loop if it is one of the
   * batch's own, else NULL (iob_batch_loop() then gives the batch's). */
  uv_loop_t *(*loop_here)(const iob_batch *b);
};

/* Whether a slot is taken. (Where a start() operation is, from its
 * start() to iob_op_done(), is its runner's: runner.h.) */
typedef enum iob__phase {
  IOB__FREE = 0,
  IOB__RUNNING, /* in flight: handed to run() on a thread, or to a loop */
} iob__phase;

/* An operation in flight that needs more than its record: one from a
 * kind's start(), or on a thread. There are as many as may be in flight,
 * reused; each is followed by the style's part and the kind's state. */
typedef struct iob__slot {
  iob_op op;
  const iob_kind *kind; /* the operation's */
  atomic_int stop;      /* 0, IOB_ECANCELED or IOB_ETIMEDOUT */
  int status;           /* run()'s status, on a thread */
  /* Its place among the slots, set when they are made and never again
   * (any thread may read it); IOB__INNER_SLOT for an inner operation's. */
  uint32_t number;
  iob__phase phase;
  /* An inner operation's (iob_op_start_inner()): the operation it runs
   * in, and what to call when it settles. */
  struct iob__inner *inner;
  bool has_outcome; /* message, value or result set */
  char *message;
  uint64_t value;
  void *result;
  /* Hedged (iob_hedge): on an operation's own slot, the attempts started
   * beside a first one and whether one won; on an attempt's slot
   * (number IOB__TRY_SLOT), the operation's slot and its attempts. */
  uint32_t hedges;
  bool hedge_won;
  struct iob__slot *main;
  struct iob__tries *tries;
  bool timed;          /* its timeout is in its runner's queue */
  uint64_t attempt_ns; /* when its attempt began (a thread's retries) */
  /* Its attempts so far (lib/core/attempts.c), when it runs more than
   * once, or none; when the current one began. */
  uint64_t began_ns;
  struct iob__attempt_list *attempts;
  bool attempts_lost;
  bool starting;      /* an attempt, in its kind's start() */
  bool settled_early; /* ...which called iob_op_done() */
  int early_status;
} iob__slot;

/* An operation's attempts (iob_batch_attempts()), in one block. */
typedef struct iob__attempt_list {
  uint32_t n, cap;
  iob_attempt at[];
} iob__attempt_list;

/* What an operation kept for a list it had no memory for. */
extern iob__attempt_list iob__attempts_lost;

/* What an operation handed back, kept after it settles: 40 bytes, in
 * every task of an open batch. */
typedef struct iob__kept {
  char *message;
  uint64_t value;
  void *result;
  uint32_t retries;     /* attempts after the first (iob_retry) */
  uint32_t hedges : 31; /* attempts beside a first one (iob_hedge) */
  uint32_t hedge_won : 1;
  /* Its attempts, when it ran more than once (2 or more); NULL; or
   * &iob__attempts_lost. Freed with iob__attempts_free(). */
  iob__attempt_list *attempts;
} iob__kept;

/* An operation's links and status between the loops style's threads
 * (lib/styles/loops.c). */
typedef struct iob__hop {
  uint32_t next;      /* in the inbox or the outbox it is in */
  uint32_t stop_next; /* in its shard's stop requests */
  int32_t status;     /* IOB__IN_FLIGHT while a shard holds it, then its
                         status; the shard's */
} iob__hop;

/* An operation of an open batch (iob_config.open): what it was submitted
 * with, its record and what it hands back, in one place. Open batches
 * keep these in chunks that never move (see iob__chunk()), so a thread
 * may submit while the loop thread reads earlier ones. */
typedef struct iob__task {
  iob_record rec;
  const iob_kind *kind;
  const void *target;
  const void *input; /* the application's, or the kind's copy */
  void *data;
  void *state;  /* its op_size bytes, when a slot's room is too small */
  void *shared; /* its kind's state for (kind, target), once launched */
  iob__kept kept;
  /* Its own policies, or NULL: the batch's. */
  const iob_retry *retry;
  const iob_hedge *hedge;
  iob_breaker *breaker;
  uint32_t duration_ms;
  uint32_t slot; /* its slot while it has one; UINT32_MAX otherwise */
  iob__hop hop;  /* under iob_style_loops */
} iob__task;

/* A kind opened for a batch with one target: its batch_size state. */
typedef struct iob__opened {
  const iob_kind *kind;
  const void *target;
  void *shared;
} iob__opened;

/* The kinds opened on one loop for a batch (iob__kinds_open()). */
typedef struct iob__kinds {
  iob__opened *list;
  uint32_t n;
} iob__kinds;

/* Chunks: chunk k holds 1024 << k items, so 19 of them hold
 * IOB_COUNT_MAX, and growing never moves what is there. */
#define IOB__CHUNK_SHIFT 10
#define IOB__CHUNKS 20
/* Slots come 16 << k at a time: 25 chunks hold IOB_COUNT_MAX of them. */
#define IOB__SLOT_CHUNK_SHIFT 4
#define IOB__SLOT_CHUNKS 25

/* The chunk holding item j, and j's place in it (*at). */
static inline uint32_t iob__chunk(uint32_t j, unsigned shift, uint32_t *at) {
  uint32_t q = (j >> shift) + 1;
  uint32_t k = 31 - (uint32_t)__builtin_clz(q);
  *at = j - (((UINT32_C(1) << k) - 1) << shift);
  return k;
}

static inline size_t iob__chunk_size(uint32_t k, unsigned shift) {
  return (size_t)1 << (k + shift);
}

/* A clock reading kept for a burst of readings (iob__clock_read()). */
typedef struct iob__clock {
  uint64_t stamp;
  uint32_t left; /* readings left before the clock is read again */
} iob__clock;

typedef enum iob__state {
  IOB__CREATED = 0,
  IOB__ACTIVE,
  IOB__FINISHED,
} iob__state;

/* A record's status while its operation is in flight: no real status is
 * positive. Records are public only once final. */
#define IOB__IN_FLIGHT 1
/* A record's status while its operation, cancelled alone before the batch
 * started, waits to settle when it starts. */
#define IOB__MARKED 2
/* A record's status while its operation, in flight on another thread's
 * loop (the loops style), has been asked to stop: asked once. */
#define IOB__STOPPING 3

/* The counters iob_batch_progress() reads from any thread, as the loop
 * thread publishes them. Done and in flight share one word, so a reader
 * gets the two from one moment, and waiting is the rest of the count. */
typedef struct iob__published {
  _Atomic uint64_t done_in_flight; /* done | in_flight << 32 */
  _Atomic uint32_t failed;
} iob__published;

/* A batch's place in a line of batches that wait for their turn (a
 * shared limit's permits, a rate's tokens): first come, first served. */
typedef struct iob__place {
  iob_batch *next, *prev;
  bool waiting;
} iob__place;

typedef struct iob__line {
  iob_batch *head, *tail;
} iob__line;

/* Into line l at its tail (its place: offsetof(iob_batch, ...)), unless
 * it waits there already; out of it, if it waits there. */
void iob__line_join(iob__line *l, iob_batch *b, size_t place);
void iob__line_leave(iob__line *l, iob_batch *b, size_t place);

struct iob_batch {
  /* Style and kind never NULL. For an open batch, count is how many the
   * loop thread has taken in (iob__take_submitted()). */
  iob_config config;
  /* Written by the loop thread (release), read by any (acquire), which
   * then may read loop_thread. */
  _Atomic iob__state state;
  atomic_uint refs;
  uv_loop_t *loop;
  iob_batch_cb cb;
  int status;
  /* Every handle of the batch has its data set to the same tag, so that
   * iob_handle_batch() knows iobound's own; the batch is found from the
   * handle's address. */
  uv_timer_t timer;    /* the styles' to use; the loop style's queue */
  uv_async_t async;    /* wakes the loop from threads (iob__wakeup()) */
  uv_timer_t deadline; /* the config's deadline_ms for the whole batch */
  uv_timer_t token;    /* first in config.rate's line: when a token is due */
  /* Closed last when a handle of the batch's was closed by someone else:
   * twice, so that its second close callback comes after libuv has
   * finished with the other one (see end_with_fence()). */
  uv_idle_t fence;
  uint32_t closing; /* handles closed at the end, not yet called back */
  /* Other threads' way in: the async handle may be sent to while bit 0
   * (open) is set; each sender adds 2 while it sends, and the loop thread
   * waits for them to leave before it closes the handle. */
  atomic_uint gate;
  atomic_bool cancel_asked; /* by another thread, or before start */
  iob__published published;
  struct iob_group *group; /* the group it is in, or NULL */
  /* Its shared limit's queue of batches waiting for a permit. */
  iob__place limit_place; /* waiting for a permit of config.shared_limit */
  iob__place rate_place;  /* waiting for a token of config.rate */

  uint64_t t0;      /* uv_hrtime() at start: records count from here */
  uint64_t end_ns;  /* when the last operation settled */
  uint64_t cpu0_ns; /* the process's CPU time at start */
  uint64_t cpu_ns;  /* CPU time used while it ran */
  iob__clock clock; /* the loop thread's cached reading (iob__stamp) */

  uint32_t limit;     /* most operations in flight; count if unlimited */
  uint32_t next;      /* next operation to launch */
  uint32_t in_flight; /* launched and not yet settled */
  uint32_t settled;
  uint32_t failed;
  uint32_t rate_waits;      /* operations launched on a token they waited for */
  uint32_t breaker_refused; /* settled by a breaker, never launched */
  uint32_t ahead; /* settled before their launch (iob_batch_cancel_op) */
  uint32_t cancel_at_start; /* marked by iob_batch_cancel_op() before it */
  uint32_t threads;         /* the style's threads, asked once it ended */
  /* The measured peak, worked out of the records once (the exporters and
   * the application may each ask for a report): 0 until known, else peak
   * + 1. Atomic because a finished batch may be read from any thread. */
  _Atomic uint32_t peak_known;
  /* iob_batch_latency()'s answer once worked out (the records of a
   * finished batch never change), for the exporters' captions. */
  _Atomic(iob_latency *) percentiles;
  bool launching;    /* guards iob__launch_more() against re-entry */
  bool launch_later; /* a launch gave the loop its turn: on_async() goes on */
  bool cancelled;
  bool ended;              /* every operation settled; finish() called */
  uv_thread_t loop_thread; /* the thread that started the batch */

  void *style_state;
  void *kind_shared; /* the kind's batch_size bytes, while it runs */

  /* Slots, when the kind has start() or the style runs on threads. */
  char *slots;
  size_t slot_stride, slot_style_at, slot_state_at;
  uint32_t nslots;
  uint32_t *free_slots; /* stack of unused slot numbers */
  uint32_t nfree;
  uint32_t *slot_of; /* operation -> slot, or UINT32_MAX */

  /* The records of the operations the batch was created with, in one
   * block; an open batch's are in its tasks, until it ends and they are
   * copied into one block here (iob_batch_records()). */
  iob_record *records;
  uint32_t first; /* records in that block */

  /* An open batch (config.open) takes operations until it is closed. */
  bool open;
  bool closed_seen; /* the loop thread saw it closed: it may end */
  uint32_t arrived; /* operations taken in on the batch's clock (arrive()) */
  bool in_on_op;    /* launches wait until on_op returns */
  uv_mutex_t submit_lock; /* submitters take turns; never the loop's */
  atomic_uint submitted;  /* operations submitted, published (release) */
  atomic_bool closed;     /* no more are taken */
  size_t state_room;      /* op state a slot holds */
  iob__task *tasks[IOB__CHUNKS];
  iob__slot *slot_chunks[IOB__SLOT_CHUNKS]; /* an open batch's slots */
  uint32_t free_cap;                        /* room in free_slots */
  iob__kinds kinds; /* an open batch's kinds opened, with their targets */
  /* The operation of another batch this one is (iob_kind_batch), while
   * it runs; NULL otherwise. */
  iob_op *parent_op;

  /* NULL until an operation hands something back; made then, from any
   * thread (a run() on a thread), hence atomic. */
  _Atomic(iob__kept *) kept;
  /* The times the batch's successful hedged attempts took (hedge.c),
   * made by the first, from any loop's thread. */
  _Atomic(_Atomic uint32_t *) latency;
};

/* Publish the counters for iob_batch_progress(): the loop thread, after
 * changing them. Two plain stores on common machines. Failed goes last:
 * a reader that reads it first (acquire) then sees at least as many done,
 * so it never reads more failed than done. */
static inline void iob__publish(iob_batch *b) {
  iob__published *p = &b->published;
  atomic_store_explicit(&p->done_in_flight,
                        b->settled | (uint64_t)b->in_flight << 32,
                        memory_order_release);
  atomic_store_explicit(&p->failed, b->failed, memory_order_release);
}

/* ---- the clock ----------------------------------------------------------- */

/* Nanoseconds since the batch started (t0), read at most once per 1024
 * calls: operations handled in one burst share a reading, which keeps a
 * million timestamps cheap. Every entry from a libuv callback calls
 * iob__clock_fresh() first, so a burst never spans two callbacks. */
static inline uint64_t iob__clock_read(iob__clock *c, uint64_t t0) {
  if (c->left == 0) {
    c->stamp = uv_hrtime() - t0;
    c->left = 1024;
  }
  c->left--;
  return c->stamp;
}

static inline void iob__clock_fresh(iob__clock *c) { c->left = 0; }

/* A burst of launches holds its loop: past a slice of time (read every
 * IOB__LAUNCH_CHECK launches, so that cheap ones, waits, read no clock),
 * the rest launch on the loop's next turn, once the I/O that came
 * meanwhile had its callbacks (iob__launch_more(), and each loop of
 * iob_style_loops). What operations that start I/O need: 19,000 TCP
 * connects in one burst hold 19,000 ephemeral ports at once, more than
 * half the kernel's range, where each connect() scans the range for a
 * free one (4 s of system time instead of 1.3 s); launched a slice at a
 * time, the first ones are over and give their ports back as the last
 * ones ask. */
#define IOB__LAUNCH_SLICE_NS 1000000
#define IOB__LAUNCH_CHECK 32

/* After the `launched`-th launch of a burst: whether its slice is over
 * (*until: 0 until the first reading of the clock). */
static inline bool iob__launch_slice_over(uint32_t launched, uint64_t *until) {
  if (launched % IOB__LAUNCH_CHECK != 0)
    return false;
  uint64_t now = uv_hrtime();
  if (*until == 0)
    *until = now + IOB__LAUNCH_SLICE_NS;
  return now >= *until;
}

/* The batch's loop thread's clock. */
static inline uint64_t iob__stamp(iob_batch *b) {
  return iob__clock_read(&b->clock, b->t0);
}

static inline void iob__stamp_fresh(iob_batch *b) {
  iob__clock_fresh(&b->clock);
}

/* Nanoseconds since the batch started, read now, from any thread. */
static inline uint64_t iob__now(const iob_batch *b) {
  return uv_hrtime() - b->t0;
}

/* ---- operations ----------------------------------------------------------- */

/* Operation i of an open batch. */
static inline iob__task *iob__task_at(const iob_batch *b, uint32_t i) {
  uint32_t at, k = iob__chunk(i, IOB__CHUNK_SHIFT, &at);
  return &b->tasks[k][at];
}

/* Operation i's record. */
static inline iob_record *iob__rec(const iob_batch *b, uint32_t i) {
  return i < b->first ? &b->records[i] : &iob__task_at(b, i)->rec;
}

/* Operation i's kind. */
static inline const iob_kind *iob__kind_of(const iob_batch *b, uint32_t i) {
  return b->open ? iob__task_at(b, i)->kind : b->config.kind;
}

/* The operation's own duration, in ms. */
static inline uint32_t iob__duration_ms(const iob_batch *b, uint32_t i) {
  if (b->open)
    return iob__task_at(b, i)->duration_ms;
  return b->config.durations_ms ? b->config.durations_ms[i]
                                : (uint32_t)b->config.duration_ms;
}

/* The timeout in ns; 0 for none. */
static inline uint64_t iob__timeout_ns(const iob_batch *b) {
  return b->config.timeout_ms * 1000000;
}

/* The batch's options for its style: its own copy, or the style's
 * defaults (a struct of the style's, or NULL for a style without). */
static inline const void *iob__style_options(const iob_batch *b) {
  return b->config.style_options ? b->config.style_options
                                 : b->config.style->defaults;
}

/* Does operation i begin with its kind's start()? */
static inline bool iob__is_async(const iob_batch *b, uint32_t i) {
  return iob__kind_of(b, i)->start != NULL;
}

/* How long operation i stays in a loop's timer queue before it ends (a
 * wait, cut short by the timeout) or runs (run() on a loop: due at
 * once). */
static inline uint64_t iob__wait_ns(const iob_batch *b, uint32_t i) {
  if (!(iob__kind_of(b, i)->flags & IOB_KIND_WAITS))
    return 0;
  uint64_t d = iob__duration_ms(b, i), t = b->config.timeout_ms;
  return (t != 0 && t < d ? t : d) * 1000000;
}

/* Does the timeout end operation i's wait before its duration? */
static inline bool iob__cut_short(const iob_batch *b, uint32_t i) {
  uint64_t t = b->config.timeout_ms;
  return (iob__kind_of(b, i)->flags & IOB_KIND_WAITS) && t != 0 &&
         iob__duration_ms(b, i) > t;
}

/* A status from a kind: 0 or negative. A positive one is a mistake of the
 * kind's, and would pass for one of the core's markers (IOB__IN_FLIGHT):
 * it is recorded as IOB_EINVAL. */
static inline int iob__kind_status(int status) {
  return status > 0 ? IOB_EINVAL : status;
}

/* Settle operation i with a status, on the loop thread (its record's
 * times are set already). */
void iob__settle(iob_batch *b, uint32_t i, int status);

/* IOB_ETIMEDOUT for a successful operation that ran past the timeout
 * (run() on a thread, which nothing can interrupt); else `status`. */
int iob__late(const iob_batch *b, uint32_t i, int status);

/* Give back operation i, just launched, to launch it again later, and
 * run on with at most `limit` in flight (threads refused). */
void iob__op_unlaunch(iob_batch *b, uint32_t i, uint32_t limit);

/* Stop the batch with a status, as iob_batch_cancel() does. */
void iob__batch_fail(iob_batch *b, int status);

/* Wake the loop thread: the style's wakeup() runs there. Any thread. */
void iob__wakeup(iob_batch *b);

/* Launch operations until the limits or the end (loop thread). */
void iob__launch_more(iob_batch *b);

/* The batch a handle embedded in it belongs to. */
#define iob__batch_of(handle, member)                                          \
  ((iob_batch *)((char *)(handle)-offsetof(iob_batch, member)))

/* ---- open batches (submit.c) -------------------------------------------- */

/* Can `style` run operations of kind k? 0 or the code iob_batch_create()
 * and iob_batch_submit() return. */
int iob__check_kind(const iob_kind *k, const iob_style *style);

/* A finished batch's percentiles (iob_batch_latency()), worked out once
 * and kept: 0 and *out; IOB_ENODATA, IOB_ENOMEM. */
int iob__latency_of(const iob_batch *b, const iob_latency **out);

/* A hedge policy for operations of `kind` (NULL: kinds not known yet) in
 * a batch of config c: it runs on a loop's runner, for kinds with
 * start(), and a further attempt must be able to start before the
 * timeout. 0, or the error iob_batch_create() or iob_batch_submit()
 * returns. */
int iob__check_hedge(const iob_hedge *hedge, const iob_config *c,
                     const iob_kind *kind);

/* The submitters' lock of batch b, and letting it go. While the calling
 * thread holds one, iob__submit_locked() says so: a submission that
 * comes in on the same thread then (from a signal handler that
 * interrupted it, or a kind's input_copy()) would wait for ever. */
void iob__submit_lock(iob_batch *b);
void iob__submit_unlock(iob_batch *b);
bool iob__submit_locked(void);

/* Take in what was submitted and whether the batch is closed (loop
 * thread; an open batch). */
void iob__take_submitted(iob_batch *b);

/* Operation i of an open batch settled, or never will run: let go of its
 * input copy and its own state. */
void iob__task_release(iob_batch *b, uint32_t i);

/* Free an open batch's tasks, with what they kept. */
void iob__tasks_free(iob_batch *b);

/* Kind k's state with `target` among the kinds t opened for batch b
 * (*shared), opened on its first use. 0 or an error. The thread of the
 * loop t belongs to. */
int iob__kinds_open(iob_batch *b, iob__kinds *t, const iob_kind *k,
                    const void *target, void **shared);
/* Operation i's kind state, into its task, among the batch's own. */
int iob__kind_ready(iob_batch *b, uint32_t i);

/* close() every kind t opened, last first; then, once the handles they
 * closed are called back (the loop ran on), free their states. */
void iob__kinds_close(iob_batch *b, iob__kinds *t);
void iob__kinds_free(iob__kinds *t);

/* A finished batch's records in one block (b->records), made from an
 * open batch's tasks the first time a reader asks: 0 or IOB_ENOMEM. */
int iob__gather(const iob_batch *b);

/* The kind of every operation of a finished batch; NULL if they mix. */
const iob_kind *iob__batch_kind(const iob_batch *b);

/* Launch what may launch, or end the batch if everything settled. */
void iob__end_or_launch(iob_batch *b);

/* ---- sharing (limit.c, rate.c, group.c) ------------------------------------ */

/* The batch starts using its shared limit: 0, or IOB_EINVAL when the
 * limit serves batches of another loop. */
int iob__limit_attach(iob_batch *b);
/* The batch has ended: out of the limit's queue, and off the limit. */
void iob__limit_detach(iob_batch *b);
/* The batch wants no more permits (cancelled): out of the queue. */
void iob__limit_unqueue(iob_batch *b);
/* Take a permit to launch one operation; false: the batch now waits in
 * the limit's queue, and is called back (iob__launch_more()) in its turn. */
bool iob__limit_take(iob_batch *b);
/* An operation that held a permit settled, or was given back. */
void iob__limit_give(iob_batch *b);

/* The same for a rate limit (rate.c): attach (0, or IOB_EINVAL for a rate
 * of another loop), detach, unqueue; take a token to launch one operation
 * (false: the batch waits in the rate's line, called back in its turn
 * once a token is due); untake: the token goes back unused. The batch
 * first in the line wakes the line with its `token` timer:
 * iob__rate_due() is that timer's callback. */
int iob__rate_attach(iob_batch *b);
void iob__rate_detach(iob_batch *b);
void iob__rate_unqueue(iob_batch *b);
bool iob__rate_take(iob_batch *b);
void iob__rate_untake(iob_batch *b);
void iob__rate_due(uv_timer_t *token);

/* A circuit breaker (breaker.c): may an operation launch now (a probe,
 * while half-open)? And an operation that launched settled with
 * `status`. Any thread. */
bool iob__breaker_pass(iob_breaker *k);
void iob__breaker_note(iob_breaker *k, int status);

/* A batch of the group ended with `status` (after its own callback). */
void iob__group_ended(struct iob_group *g, int status);

/* ---- slots (op.c) ---------------------------------------------------------- */

/* The number of an inner operation's slot (iob_op_start_inner()). */
#define IOB__INNER_SLOT UINT32_MAX

/* The slot an iob_op lives in: every operation a kind is given does. */
static inline iob__slot *iob__slot_of_op(const iob_op *op) {
  return (iob__slot *)((char *)(uintptr_t)op - offsetof(iob__slot, op));
}

/* The operation whose outcome and stop an operation shares: itself, or
 * for an inner one, the one it runs in. */
iob__slot *iob__slot_outermost(iob__slot *s);

/* iob_op_done() of an inner operation (inner.c). */
int iob__inner_done(iob__slot *s, int status);

/* Make the slots this style and kind need; 0 or IOB_ENOMEM. */
int iob__slots_make(iob_batch *b);
void iob__slots_free(iob_batch *b);

/* A free slot for operation i, its op filled in and its state zeroed.
 * There is always one: the core launches no more than there are. */
iob__slot *iob__slot_take(iob_batch *b, uint32_t i);

static inline iob__slot *iob__slot_at(const iob_batch *b, uint32_t k) {
  if (!b->open)
    return (iob__slot *)(b->slots + (size_t)k * b->slot_stride);
  uint32_t at, c = iob__chunk(k, IOB__SLOT_CHUNK_SHIFT, &at);
  return (iob__slot *)((char *)b->slot_chunks[c] + (size_t)at * b->slot_stride);
}

/* Does operation i need a slot to run? */
bool iob__needs_slot(const iob_batch *b, uint32_t i);

/* An open batch's operation i, about to launch: set a slot aside for it
 * (made if none is free), which iob__slot_take() then gives it whenever
 * its style asks (a run() on the loop, when it comes due), so that the
 * operations launched after it cannot take them all. 0 or IOB_ENOMEM. */
int iob__slots_reserve(iob_batch *b, uint32_t i);

/* An open batch's operation i settled: the slot set aside for it and
 * never taken (cancelled while it waited) goes back. */
void iob__slot_unreserve(iob_batch *b, uint32_t i);

static inline void *iob__slot_style(const iob_batch *b, iob__slot *s) {
  return (char *)s + b->slot_style_at;
}

/* Fill slot s for operation i: its op (shared: the batch's kind state),
 * its state zeroed, no stop, no outcome. */
void iob__slot_prepare(iob_batch *b, iob__slot *s, uint32_t i);

/* The kind's side of settling, on the thread the operation ran on: its
 * cleanup() (unless its state never ran: a hedged operation's attempts
 * have their own), and keep what it handed back. The slot stays taken. */
void iob__slot_close(iob_batch *b, iob__slot *s, bool cleanup);

/* The slot of operation i of a start() kind, or NULL if it has none. */
iob__slot *iob__slot_find(const iob_batch *b, uint32_t i);

/* Run the operation in slot s, launched in phase IOB__RUNNING, to its end
 * on a thread of the style's: its wait, if the kind waits, then run().
 * Sets the record's worker and times; returns the status. Touches nothing
 * of the batch but the slot's op and its record. */
int iob__slot_run(iob_batch *b, iob__slot *s);

/* On the loop thread: keep what the operation handed back, give the slot
 * back, and settle the operation with `status`. */
void iob__slot_settle(iob_batch *b, iob__slot *s, int status);

/* Give the slot back without settling (the operation is launched again
 * later). */
void iob__slot_release(iob_batch *b, iob__slot *s);

/* Tell an operation in flight to stop, through its slot, unless it was
 * told already: `why` is IOB_ECANCELED or IOB_ETIMEDOUT. (Its kind's
 * stop() is its style's to call: see runner.c.) */
void iob__slot_stop(iob__slot *s, int why);

/* Make room to keep what operations hand back (iob_op_set_*(), their
 * count of retries), once: 0 or IOB_ENOMEM. Any thread. */
int iob__make_room_to_keep(iob_batch *b);

/* ---- retries (retry.c) ------------------------------------------------------ */

/* The retry policy operation i follows, or NULL. */
static inline const iob_retry *iob__retry_of(const iob_batch *b, uint32_t i) {
  const iob_retry *own = b->open ? iob__task_at(b, i)->retry : NULL;
  return own != NULL ? own : b->config.retry;
}

#define IOB__NO_RETRY UINT64_MAX

/* An attempt of the operation in slot s ended with `status` (s holds
 * what it handed back), on the thread it ran on: IOB__NO_RETRY, and it
 * settles; or the backoff in ns before it runs again. Counts the attempt
 * in its policy's budget. */
uint64_t iob__retry_after(iob_batch *b, iob__slot *s, int status);

/* A retry budget's word: an operation ended its first attempt (`first`:
 * counted), and wants another (`wants`): granted? Any thread. */
bool iob__budget_pass(iob_budget *g, bool first, bool wants);

/* Its backoff is over: ready slot s for its next attempt (its kind's
 * cleanup() if `cleanup`, its state zeroed, its outcome cleared,
 * op.attempt + 1). */
void iob__retry_reset(iob_batch *b, iob__slot *s, bool cleanup);

/* ---- each attempt (attempts.c) ------------------------------------------- */

/* Slot s's operation begins an attempt (its first included): now. */
void iob__attempt_began(iob_batch *b, iob__slot *s);

/* An attempt of slot s's operation ran from..to and ended with `status`
 * (`hedge`: it began beside another). On the thread that runs the
 * operation. Without memory, the operation's list is lost, not the
 * operation. */
void iob__attempt_note(iob_batch *b, iob__slot *s, uint64_t from, uint64_t to,
                       int status, bool hedge);

/* The slot's list of attempts moves to what its operation keeps (a list
 * of one is dropped: the record says as much). */
void iob__attempts_keep(iob__slot *s, iob__kept *k);

/* Free the slot's list, kept nowhere. */
void iob__attempts_drop(iob__slot *s);

/* Free a kept list (NULL and iob__attempts_lost are no-ops). */
void iob__attempts_free(iob__attempt_list *list);

/* ---- hedged requests (hedge.c) --------------------------------------------- */

/* The slot number of an attempt beside an operation's own (iob_hedge). */
#define IOB__TRY_SLOT (UINT32_MAX - 1)

/* An operation's attempts at once: its slot's `tries` while it runs
 * hedged. The attempts have slots of their own (tries[k]), made for
 * them and freed once they end. */
typedef struct iob__tries {
  iob__slot *at[IOB_HEDGE_MAX];
  uint64_t started_at[IOB_HEDGE_MAX]; /* ns since the batch started */
  uint32_t started, running;
  uint32_t busy;   /* stop_tries() walks them: the operation waits */
  bool decided;    /* one succeeded: the rest are being stopped */
  int status;      /* the winner's (0), else the last failure's */
  uint64_t due_ns; /* when the next attempt may start */
} iob__tries;

/* The policy operation i of b is hedged by, or NULL. */
static inline const iob_hedge *iob__hedge_of(const iob_batch *b, uint32_t i) {
  const iob_hedge *own = b->open ? iob__task_at(b, i)->hedge : NULL;
  const iob_hedge *p = own != NULL ? own : b->config.hedge;
  return iob__kind_of(b, i)->start != NULL ? p : NULL;
}

/* Operation i's circuit breaker: its own, else its batch's, or NULL. */
static inline iob_breaker *iob__breaker_of(const iob_batch *b, uint32_t i) {
  iob_breaker *own = b->open ? iob__task_at(b, i)->breaker : NULL;
  return own != NULL ? own : b->config.breaker;
}

/* The delay before the next attempt, in ns: the policy's, or its
 * percentile of the batch's successful attempts. */
uint64_t iob__hedge_delay_ns(const iob_batch *b, const iob_hedge *p);

/* A successful attempt took `ns`: into the batch's times. Any thread. */
void iob__hedge_note(iob_batch *b, const iob_hedge *p, uint64_t ns);

/* A slot for a new attempt of the operation in slot `main`, its op a copy
 * of main's with a zeroed state of its own; NULL without memory. */
iob__slot *iob__try_make(iob__slot *main);

/* The attempt in slot t is over: main takes its outcome if `take`, else
 * it is dropped; then its kind's cleanup(), and the slot goes. */
void iob__try_free(iob__slot *t, bool take);

/* ---- the system (system.c) ------------------------------------------------- */

/* A small number for the calling thread, the same for its whole life:
 * 1, 2, 3... in the order threads first ask. */
uint32_t iob__thread_number(void);

/* Block every signal on the calling thread, one of iobound's own: a
 * signal for the process then goes to a thread of the application's,
 * whose handler may expect to be the only code of its own running. */
void iob__block_signals(void);

/* The process's CPU time, user and system, in ns. */
uint64_t iob__cpu_ns(void);

/* The largest thread stack the thread styles ask for: no system gives a
 * larger one, and libuv would round a size near SIZE_MAX up past it to
 * nothing, making a thread with its smallest stack that a kind declaring
 * more would overflow (and musl refuses sizes above SIZE_MAX / 4, which
 * libuv answers with abort()). Above it, a thread is refused
 * (IOB_EAGAIN). */
#define IOB__STACK_MAX (SIZE_MAX / 4)

/* How the threads and workers styles create a thread: uv_thread_create_ex,
 * or a test's stand-in that refuses, to exercise refusals without
 * exhausting the machine. */
extern int (*iob__thread_create)(uv_thread_t *tid,
                                 const uv_thread_options_t *options,
                                 uv_thread_cb entry, void *arg);

/* Compute for `ns` nanoseconds of the calling thread's own CPU time. */
void iob__compute_ns(uint64_t ns);

/* Mark libuv's pool as used by iobound: its size is now fixed. */
void iob__pool_mark_used(void);

#endif /* IOB_INTERNAL_H */
