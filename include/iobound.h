/*
 * iobound: run many I/O-bound operations at once on libuv, in the
 * concurrency style you choose, and measure how each one ran.
 *
 * A batch runs `count` operations, numbered 0..count-1, of one kind (a
 * wait, CPU work, a TCP request, a file, your own...), or, open, any
 * operations of any kinds submitted while it runs (iob_batch_submit()),
 * in one style (an event loop, a thread pool, a thread each...) and
 * records for each operation when it was queued, started and finished,
 * its status, and what it handed back. Kinds and styles are descriptors: tables of functions with
 * a name. Start a batch on your own uv_loop_t (iob_batch_start) or run it
 * to the end on a private loop (iob_run). The guide is docs/guide.md.
 *
 * Errors are negative numbers. Where libuv has a code that fits, iobound
 * uses the same value, so an application can handle both the same way.
 *
 * Threads and lifetime, the rules in one place:
 * - A batch runs once, on the loop it was started on, and the thread that
 *   called iob_batch_start() is taken to be that loop's thread. Calls that
 *   change a running batch (iob_op_done(), iob_batch_cancel_op(),
 *   iob_group_add()) must come from that thread; from another they return
 *   IOB_EPERM. Under iob_style_loops, iob_op_done() comes from the
 *   operation's own loop's thread instead (where its kind runs).
 *   iob_batch_cancel(), iob_batch_cancel_async(), iob_batch_progress(),
 *   and for an open batch iob_batch_submit() and iob_batch_close(), work
 *   from any thread; iob_batch_cancel_async() and iob_batch_progress()
 *   from a signal handler too.
 * - A batch is reference-counted. iob_batch_create() gives you one
 *   reference, which iob_batch_free() drops; a thread that is to use the
 *   batch gets its own with iob_batch_ref() (taken while yours is held)
 *   and drops it with iob_batch_unref(). The memory goes with the last
 *   reference, so a thread holding one may cancel or read the batch
 *   whenever it likes, even after it finished.
 * - Free a batch only when it is not running: before iob_batch_start(), or
 *   once its callback has run (inside the callback is fine). Otherwise
 *   iob_batch_free() returns IOB_EBUSY and frees nothing.
 * - The batch callback runs exactly once, from the loop, after every
 *   operation has settled; never from inside an iobound call.
 * - What a batch keeps of its config: a copy of the config, of
 *   durations_ms and of style_options, made by iob_batch_create();
 *   pointers to the style and
 *   the kind (descriptors: keep them, and leave them unchanged, while the
 *   batch lives), to the target (read by the operations while the batch
 *   runs) and to data (yours, never read). Every number is range-checked
 *   there (count, durations, timeout, op_size), so none can overflow
 *   later.
 */
#ifndef IOBOUND_H
#define IOBOUND_H

/* uv.h, included below, uses POSIX types (pthread_rwlock_t...) that a C
 * library hides under strict ISO C (-std=c11, not gnu11) unless POSIX is
 * asked for. Say so here rather than fail deep inside uv.h. */
#if defined(__STRICT_ANSI__) && !defined(_GNU_SOURCE) &&                       \
    !defined(_DEFAULT_SOURCE) && !defined(_XOPEN_SOURCE) &&                    \
    (!defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200112L)
#error                                                                         \
    "iobound.h (through uv.h) needs POSIX under strict ISO C: compile with -D_POSIX_C_SOURCE=200809L, or with -std=gnu11"
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(IOB_BUILDING_LIBRARY)
#define IOB_EXPORT __attribute__((visibility("default")))
#else
#define IOB_EXPORT
#endif

#define IOB_VERSION_MAJOR 0
#define IOB_VERSION_MINOR 5
#define IOB_VERSION_PATCH 0

/** @return the library's version as "MAJOR.MINOR.PATCH"; never NULL. */
IOB_EXPORT const char *iob_version(void);

/* ---- Errors ------------------------------------------------------------ */

#define IOB_EINVAL UV_EINVAL       /**< NULL or meaningless argument. */
#define IOB_ENOMEM UV_ENOMEM       /**< an allocation failed. */
#define IOB_E2BIG UV_E2BIG         /**< count above IOB_COUNT_MAX. */
#define IOB_ERANGE UV_ERANGE       /**< a duration or size out of range. */
#define IOB_ENOTSUP UV_ENOTSUP     /**< a kind the style cannot run. */
#define IOB_EBUSY UV_EBUSY         /**< the batch is started or running. */
#define IOB_EALREADY UV_EALREADY   /**< too late: the thread pool runs. */
#define IOB_EAGAIN UV_EAGAIN       /**< the system refused a thread. */
#define IOB_ECANCELED UV_ECANCELED /**< the operation was cancelled. */
#define IOB_ETIMEDOUT UV_ETIMEDOUT /**< the operation timed out. */
#define IOB_EPERM UV_EPERM         /**< from the wrong thread or call. */
#define IOB_EIO UV_EIO             /**< input or output failed. */
#define IOB_ESHUTDOWN UV_ESHUTDOWN /**< closed: takes nothing more. */
/** A circuit breaker is open (iob_breaker): the operation was not run.
 *  iobound's own code, outside libuv's range: iob_strerror() and
 *  iob_err_name() know it, uv_strerror() does not. */
#define IOB_EBREAKER (-10001)
/** Nothing to measure: a batch without operations (iob_batch_latency()).
 *  iobound's own code, as IOB_EBREAKER. */
#define IOB_ENODATA (-10002)

/**
 * Describe an error code in words that are true for the code whatever
 * returned it: an iobound call, a libuv call, or an operation's status.
 * What a code means for one call is in that call's documentation here;
 * why one operation failed is its message (iob_batch_outcome()).
 * @param[in] err any negative libuv or iobound code, or 0.
 * @return a string that needs no freeing and stays valid until the calling
 *         thread's next call with an unknown code; never NULL (unknown
 *         codes get a generic text).
 */
IOB_EXPORT const char *iob_strerror(int err);

/**
 * Name an error code ("IOB_EINVAL"; libuv's name for codes iobound
 * does not define; "OK" for 0).
 * @return a string as for iob_strerror(); never NULL.
 */
IOB_EXPORT const char *iob_err_name(int err);

typedef struct iob_batch iob_batch;
typedef struct iob_config iob_config;
typedef struct iob_record iob_record;
typedef struct iob_limit iob_limit;
typedef struct iob_rate iob_rate;
typedef struct iob_retry iob_retry;
typedef struct iob_budget iob_budget;
typedef struct iob_breaker iob_breaker;
typedef struct iob_hedge iob_hedge;
typedef struct iob_outcome iob_outcome;
typedef struct iob_workers iob_workers;

/* ---- Styles: how a batch runs its operations --------------------------- */

/**
 * A concurrency style: a descriptor defined by the library. Use the
 * built-in ones below, by address, or find one by name.
 */
typedef struct iob_style iob_style;

/** One after another on the loop: never more than one in flight. */
IOB_EXPORT extern const iob_style iob_style_sequential;
/** All on one event loop: a wait is a deadline on the loop, no thread. */
IOB_EXPORT extern const iob_style iob_style_loop;
/** Each operation is a uv_queue_work() job on libuv's thread pool. */
IOB_EXPORT extern const iob_style iob_style_pool;
/** One OS thread of its own per operation in flight (the tutorial's). */
IOB_EXPORT extern const iob_style iob_style_threads;
/** On a pool of threads of iobound's own (iob_workers), not libuv's: a
 *  batch of long blocking operations leaves libuv's pool, and with it the
 *  application's file system and DNS requests, alone. */
IOB_EXPORT extern const iob_style iob_style_workers;

/**
 * An event loop per core: N loops on N threads of the batch's own
 * (iob_loops_options.loops; default the cores libuv reports), each
 * running its share of the operations as iob_style_loop runs all of them. Waits cost
 * no thread, and what operations compute runs on N cores. Each operation
 * goes to the loop with the fewest in flight (ties round robin), so equal
 * work spreads evenly. The batch's own loop, the caller's, hands
 * operations out and settles them: the limit, shared limits, on_op,
 * fail_fast, deadlines and the batch callback are as in every style, on
 * that loop's thread. A kind's start(), stop(), cleanup() and run() run on
 * the operation's loop, and its open() and close() once on each loop,
 * each with kind state of its own (IOB_STYLE_LOOPS says so).
 */
IOB_EXPORT extern const iob_style iob_style_loops;

/* ---- Options of one style ------------------------------------------------ */

/*
 * What only one style reads goes in a struct of that style's, given in
 * iob_config.style_options. Each begins with the style it is for, which
 * its _init() function sets; iob_batch_create() refuses options of
 * another style (IOB_EINVAL) and copies them.
 */

/** iob_style_threads' options. */
typedef struct iob_threads_options {
  const iob_style *style; /**< &iob_style_threads, from the _init(). */
  /** Each thread's stack in bytes (0: 64 KiB, so that ten thousand
   *  threads fit, or the kind's stack_size if larger; rounded up to the
   *  system's minimum). A stack the system cannot give makes each
   *  thread's creation fail, as a refused thread does. */
  size_t stack_size;
  /** When the system refuses a thread: 0 (default) ends the batch with
   *  IOB_EAGAIN; non-zero runs on with the threads it got, lowering the
   *  limit to the number of threads running then. */
  int adapt;
} iob_threads_options;

/** Set @p options to iob_style_threads' defaults; NULL is a no-op. */
IOB_EXPORT void iob_threads_options_init(iob_threads_options *options);

/** iob_style_workers' options. */
typedef struct iob_workers_options {
  const iob_style *style; /**< &iob_style_workers, from the _init(). */
  /** The pool of threads to run on, which other batches may share
   *  (iob_workers_create()); NULL: a pool of the batch's own, of
   *  max_in_flight threads (IOB_WORKERS_DEFAULT if 0; never more than a
   *  fixed count or IOB_WORKERS_MAX), made when it starts and joined when
   *  it ends. Keep a shared pool alive until the batch has called back,
   *  or was freed without starting. A shared pool takes jobs in the
   *  order they come: give its batches a shared_limit of its threads to
   *  make them take turns. */
  iob_workers *pool;
  /** The stacks of a pool of the batch's own, in bytes (0: 256 KiB, or
   *  the kind's stack_size if larger). */
  size_t stack_size;
} iob_workers_options;

/** Set @p options to iob_style_workers' defaults; NULL is a no-op. */
IOB_EXPORT void iob_workers_options_init(iob_workers_options *options);

/** iob_style_loops' options. */
typedef struct iob_loops_options {
  const iob_style *style; /**< &iob_style_loops, from the _init(). */
  /** How many event loops, each on a thread of its own with the system's
   *  default stack, 1..IOB_LOOPS_MAX (IOB_ERANGE above); 0 (the
   *  default): as many as the cores libuv reports
   *  (uv_available_parallelism()), at most IOB_LOOPS_MAX. Never more
   *  than the count or max_in_flight: a loop with nothing to run is not
   *  made. */
  uint32_t loops;
} iob_loops_options;

/** Set @p options to iob_style_loops' defaults; NULL is a no-op. */
IOB_EXPORT void iob_loops_options_init(iob_loops_options *options);

/** The style runs each operation's blocking `run` function on a thread
 *  (a kind needs one to run in it). */
#define IOB_STYLE_ON_THREADS 0x1u
/** The style creates a thread for each operation in flight, so the
 *  threads the system allows bound how many run at once. */
#define IOB_STYLE_THREAD_EACH 0x2u
/** The style runs operations on event loops of its own, one per thread,
 *  not on the batch's loop: a kind's functions run on the operation's
 *  loop, where iob_batch_loop() gives that loop, and its open() and
 *  close() run once per loop, with a batch_size state each (in an open
 *  batch, once per loop and target, on the first operation there). */
#define IOB_STYLE_LOOPS 0x4u

/** @return the style's short name ("loop"); NULL for NULL. */
IOB_EXPORT const char *iob_style_name(const iob_style *style);

/** @return the style's IOB_STYLE_* flags; 0 for NULL. */
IOB_EXPORT unsigned iob_style_flags(const iob_style *style);

/**
 * Find a style by its short name ("sequential", "loop", "pool",
 * "threads", "workers", "loops").
 * @return the style, or NULL for NULL or a name that is not a style.
 */
IOB_EXPORT const iob_style *iob_style_find(const char *name);

/**
 * List the styles: iob_style_at(0), iob_style_at(1)... in the order the
 * tutorial shows them, until NULL.
 * @return the style at @p position, or NULL past the last one.
 */
IOB_EXPORT const iob_style *iob_style_at(size_t position);

/* ---- Operations and their kinds ---------------------------------------- */

/**
 * One operation while it runs: what every function of its kind is given.
 * The fields are read-only. The object is the library's, valid from the
 * call of start() or run() until the operation settles (start) or run()
 * returns; a kind keeps what it needs across callbacks in `state`.
 */
typedef struct iob_op {
  iob_batch *batch;     /**< the batch it belongs to. */
  const void *target;   /**< the config's target, shared by all. */
  void *state;          /**< kind->op_size bytes of its own, zeroed
                             before start() or run(); NULL if 0. */
  uint32_t index;       /**< its number in the batch, 0..count-1. */
  uint32_t duration_ms; /**< its duration: durations_ms[index], or
                             duration_ms. */
  /** The kind's state for the whole batch (iob_kind.batch_size bytes,
   *  made by its open()), shared by every operation of the batch with
   *  the same target; NULL if batch_size is 0. */
  void *shared;
  /** The operation's input (iob_task.input): borrowed from the
   *  application, or the kind's copy (iob_kind.input_copy); NULL for the
   *  operations a batch is created with. */
  const void *input;
  /** The application's pointer for this operation (iob_task.data). */
  void *data;
  /** Which attempt this is: 0 for the first, 1 for the first retry
   *  (iob_retry), and so on. */
  uint32_t attempt;
} iob_op;

/** The most state a kind may ask for each operation (iob_kind.op_size). */
#define IOB_OP_SIZE_MAX ((size_t)1 << 30)

/** The kind's operations first wait their duration; then start() or
 *  run(), if the kind has one, does the rest. On the loop styles the
 *  batch's own timer does the waiting, at no cost per operation; on a
 *  thread the thread sleeps. A kind with this flag has no start(). */
#define IOB_KIND_WAITS 0x1u
/** The kind reads each operation's input (op->input, from
 *  iob_task.input), borrowed: the application keeps it alive and
 *  unchanged until the operation settles. A kind with input_copy takes
 *  input too, copied. A kind with neither refuses an input that is not
 *  NULL (IOB_EINVAL). */
#define IOB_KIND_INPUT 0x2u

/**
 * A kind of operation: a descriptor. The built-in kinds are defined
 * exactly so, and so is yours: a static const iob_kind with a name and the
 * functions the styles you use need. Members later versions add go at the
 * end, so a designated initialiser keeps compiling and means the same.
 *
 * Every function runs on the batch's loop thread, except run(), which a
 * thread style calls on one of its threads (and, between the attempts of
 * a retried operation there, cleanup(), free_result() and retry(), on
 * that thread too). Under iob_style_loops every
 * function runs on the thread of the operation's own loop (open() and
 * close() once on each loop), and iob_batch_loop() gives that loop.
 */
typedef struct iob_kind {
  /** Short name, shown in reports and exports ("tcp"). */
  const char *name;
  /** IOB_KIND_* flags. */
  unsigned flags;
  /** Bytes of op->state each operation in flight gets (0: none, NULL),
   *  up to IOB_OP_SIZE_MAX. */
  size_t op_size;
  /** The least stack run() needs on a thread of the threads or workers
   *  style; 0: the style's default (64 KiB, 256 KiB). A shared workers
   *  pool with smaller stacks refuses the batch (IOB_ENOTSUP). */
  size_t stack_size;
  /**
   * Optional: check a configuration (its target, its durations) when the
   * batch is created. @return 0, or a negative code of its choosing for
   * iob_batch_create() to return (the built-in kinds: IOB_EINVAL for a
   * NULL target).
   */
  int (*check)(const iob_config *config);
  /**
   * Loop styles: begin the operation without blocking and return 0, then
   * call iob_op_done() once, later, from the loop thread; or return a
   * negative code at once (that is then its status; do not call
   * iob_op_done()). Statuses are 0 or negative here and everywhere: a
   * positive one is recorded as IOB_EINVAL.
   */
  int (*start)(iob_op *op);
  /**
   * Thread styles, and the loop styles when there is no start(): run the
   * operation to its end, blocking the calling thread, and return 0 or a
   * negative code, its status. On the loop styles it blocks the loop, so
   * such operations run one after another. It may poll
   * iob_op_stopping() to give up early.
   */
  int (*run)(iob_op *op);
  /**
   * Optional, loop styles: the operation started by start() must stop
   * soon (iob_op_stopping() says why): stop its I/O and call
   * iob_op_done() as usual. It stays in flight until it does, and is
   * recorded with the reason, whatever status it gives. Without stop(),
   * the operation runs to its end and is then recorded with the reason.
   */
  void (*stop)(iob_op *op);
  /**
   * Optional: the operation has settled; release what start() or run()
   * kept in op->state (the state's memory itself is the library's). Also
   * between the attempts of a retried operation (iob_retry), on the
   * thread that ran them, and at the end of each attempt of a hedged one
   * (iob_hedge).
   */
  void (*cleanup)(iob_op *op);
  /** Optional: frees a result set by iob_op_set_result() when the batch
   *  is freed. Without it, results are the application's to free. */
  void (*free_result)(void *result);
  /** Bytes of state the kind keeps for a whole batch while it runs (a
   *  connection cache, an HTTP client's event loop glue), zeroed, given
   *  to open(), close() and every operation as op->shared; 0: none. */
  size_t batch_size;
  /**
   * Optional: before the first operation of this kind with @p target
   * runs in @p batch, on its loop thread: set up what those operations
   * share in @p shared. For the config's kind and target, when the batch
   * starts: a negative code is then what iob_batch_start() returns
   * (nothing is started). For a kind or target first submitted later
   * (iob_batch_submit()), when its first operation launches: a negative
   * code is then that operation's status, and the next one tries again.
   */
  int (*open)(iob_batch *batch, const void *target, void *shared);
  /**
   * Optional: every operation of the batch has settled (or the batch
   * could not start after open() succeeded): release what open() made,
   * once for each open() that succeeded. Runs on the loop thread; handles
   * it closes may finish closing after the batch's callback, while the
   * loop runs on.
   */
  void (*close)(iob_batch *batch, const void *target, void *shared);
  /**
   * Optional: copy an operation's input when it is submitted
   * (iob_batch_submit(), on the submitting thread), so that the
   * application's may go at once. @return 0 with *copy set (NULL is a
   * valid copy), or a negative code that iob_batch_submit() returns
   * (IOB_EINVAL for an input the kind refuses); nothing is kept then.
   */
  int (*input_copy)(const void *input, void **copy);
  /** Optional, with input_copy: free a copy once its operation settled,
   *  or with a batch that never ran it. */
  void (*input_free)(void *copy);
  /**
   * Optional: is an attempt that ended with @p outcome (its status,
   * message, value and result) worth another, under a retry policy
   * (iob_retry) that has no classifier of its own? Return IOB_RETRY_NO,
   * 0 (yes, after the policy's backoff) or a delay in ms the server asked
   * for (HTTP Retry-After). Any thread the attempt ended on. NULL:
   * iob_retry_transient().
   */
  int64_t (*retry)(const iob_outcome *outcome);
} iob_kind;

/** Wait the operation's duration: a timer on the loop, a sleep on a
 *  thread. The default kind. */
IOB_EXPORT extern const iob_kind iob_kind_wait;
/** CPU-bound work: compute for the duration, counted in the thread's
 *  own CPU time, without sleeping. On the loop it blocks the loop. */
IOB_EXPORT extern const iob_kind iob_kind_cpu;

/**
 * Wait, then compute: each operation waits its duration (as
 * iob_kind_wait), then computes for the target's cpu_us microseconds of
 * its thread's own CPU time (as iob_kind_cpu), as a request that waits
 * for a database and then turns the rows into JSON. The config's target
 * is an iob_mixed (NULL gives IOB_EINVAL). On the loop style the waits
 * overlap and the computing is serial, one core; on threads the
 * computing spreads over the cores, at a thread per wait; on
 * iob_style_loops, both.
 */
IOB_EXPORT extern const iob_kind iob_kind_mixed;

/**
 * A batch of its own (structured concurrency): the task's input
 * (iob_task.input) is a batch you created and have not started, of any
 * style and kind, open or not. Submitting takes a reference to it, so you
 * may let go of yours at once, with iob_batch_unref() (iob_batch_free()
 * refuses a child that has started meanwhile: a submission from the loop
 * thread may launch at once). When the operation launches, it starts the
 * child on its batch's loop; it settles when the child calls back, after
 * every operation of the child, with the child's status. Cancelling the
 * operation (its batch cancelled, its timeout, the deadline,
 * fail_fast) cancels the child, which settles everything it has first.
 * The outcome's result is the child (read its records and outcomes
 * there); the parent batch holds it until it is freed. An open child
 * must still be closed (or cancelled) to end. Loop styles only (no
 * run()); a NULL input fails the operation with IOB_EINVAL, and a child
 * started already with IOB_EBUSY. Not listed by iob_kind_at(): it needs
 * an input, which iobound-compare cannot give.
 */
IOB_EXPORT extern const iob_kind iob_kind_batch;

/** What iob_kind_mixed's operations compute after their wait. */
typedef struct iob_mixed {
  /** Microseconds of CPU time each operation computes after its wait,
   *  0..IOB_MIXED_CPU_US_MAX (0: a plain wait). */
  uint32_t cpu_us;
} iob_mixed;

/** The most CPU time one mixed operation computes: 60 s. */
#define IOB_MIXED_CPU_US_MAX (UINT32_C(60000000))

/**
 * Find a kind built into this library by name ("wait", "cpu", "mixed",
 * "tcp", "file").
 * Kinds of other libraries (iob_kind_pg, in iobound-pg) are not listed.
 * @return the kind, or NULL for NULL or an unknown name.
 */
IOB_EXPORT const iob_kind *iob_kind_find(const char *name);

/** @return the built-in kind at @p position (0, 1...), or NULL past the
 *  last one. */
IOB_EXPORT const iob_kind *iob_kind_at(size_t position);

/**
 * Settle operation @p op, begun by its kind's start(), with @p status (0
 * or a negative code; a positive one is recorded as IOB_EINVAL). Call it
 * once, from the loop thread: @p op and its state are not valid after it
 * (the library reuses them for another operation, so a second call is a
 * bug it cannot always tell). An
 * operation told to stop is recorded with the reason (IOB_ECANCELED or
 * IOB_ETIMEDOUT) whatever @p status.
 * @return 0; IOB_EINVAL for NULL or an operation given to run(), not
 *         begun by start(); IOB_EPERM from a thread other than the loop's
 *         (a run() on a thread of the style's included; under
 *         iob_style_loops, any thread but the operation's own loop's).
 */
IOB_EXPORT int iob_op_done(iob_op *op, int status);

/* ---- Kinds that wrap kinds ---------------------------------------------- */

typedef struct iob_task iob_task;

/**
 * An inner operation (iob_op_start_inner()) has settled with @p status:
 * called once, on the loop thread, with the operation it ran in. The
 * inner operation and its state are gone by then.
 */
typedef void (*iob_inner_cb)(iob_op *outer, int status, void *arg);

/**
 * Run an operation of another kind inside operation @p outer, from the
 * outer kind's start() or a callback of its: how a kind wraps kinds (a
 * retry, a rate limit, a hedge). @p task names the inner kind (which
 * needs start()), its target, input (borrowed until the inner operation
 * settles: a kind with input_copy cannot run so), duration and data. The
 * inner kind sees an iob_op as in a batch (the outer's batch and index,
 * state of its own), opened with its target as a batch opens a kind.
 * What it hands back (iob_op_set_*()) is the outer operation's, and it
 * must stop when the outer one must (iob_op_stopping()). When it settles,
 * @p done runs with @p arg; the outer kind then settles (iob_op_done()),
 * or starts another. An outer kind that is told to stop passes it on
 * with iob_op_stop_inner().
 * @param[out] inner the inner operation, for iob_op_stop_inner(), or
 *             NULL once it has settled; may be NULL.
 * @return 0, and @p done runs later (or, if the inner kind settled inside
 *         its start(), before this returns); or a negative code at once,
 *         and @p done never runs: IOB_EINVAL for NULL @p outer, @p task,
 *         kind or @p done, or an input its kind copies; IOB_ENOTSUP for a
 *         kind without start(), or one with open() under iob_style_loops
 *         or off the batch's loop thread; what the kind's start() or
 *         open() returned; IOB_ENOMEM.
 */
IOB_EXPORT int iob_op_start_inner(iob_op *outer, const iob_task *task,
                                  iob_inner_cb done, void *arg, iob_op **inner);

/**
 * Tell an inner operation to stop (its kind's stop(), once; its
 * iob_op_stopping() says IOB_ECANCELED). It settles as it does, through
 * the iob_inner_cb.
 * @return 0; IOB_EINVAL for NULL or an operation that is not inner.
 */
IOB_EXPORT int iob_op_stop_inner(iob_op *inner);

/**
 * Run an operation of another kind inside @p outer, blocking, from the
 * outer kind's run() (on a thread, or on the loop): its wait if the kind
 * waits (cut short by the outer's timeout or deadline), then its run().
 * As iob_op_start_inner() for the rest.
 * @return the inner operation's status; IOB_EINVAL, IOB_ENOTSUP (a kind
 *         with neither run() nor IOB_KIND_WAITS) or IOB_ENOMEM as for
 *         iob_op_start_inner().
 */
IOB_EXPORT int iob_op_run_inner(iob_op *outer, const iob_task *task);

/**
 * Say why operation @p op failed, in words for a person ("connection
 * refused by 127.0.0.1:5432"); the text is copied, and replaces an
 * earlier one. Read it with iob_batch_outcome(). Call it before the
 * operation settles: from start(), stop(), or a callback of its own I/O
 * on the loop thread (a libuv callback), or from run() on its own
 * thread.
 * @return 0; IOB_EINVAL for NULL; IOB_ENOMEM (the message is then lost).
 */
IOB_EXPORT int iob_op_set_message(iob_op *op, const char *message);

/**
 * Hand back a number (a count of rows, bytes received...), read with
 * iob_batch_outcome(); as for iob_op_set_message().
 * @return 0; IOB_EINVAL for NULL; IOB_ENOMEM (the first call of a batch
 *         makes room for every operation's outcome: nothing was kept).
 */
IOB_EXPORT int iob_op_set_value(iob_op *op, uint64_t value);

/**
 * Hand back a pointer to a result, read with iob_batch_outcome(). If the
 * kind has free_result, the batch owns the result and frees it with the
 * batch; otherwise the application does. A later call replaces it (the
 * earlier result is then the caller's).
 * @return 0; IOB_EINVAL for a NULL @p op; IOB_ENOMEM, and the result is
 *         still the caller's (nothing was kept).
 */
IOB_EXPORT int iob_op_set_result(iob_op *op, void *result);

/**
 * Whether the operation has been told to stop, from any thread: a run()
 * on a thread may poll it between steps.
 * @return 0 while it may run on; IOB_ECANCELED once the batch or the
 *         operation was cancelled; IOB_ETIMEDOUT once it ran past the
 *         timeout; IOB_EINVAL for NULL.
 */
IOB_EXPORT int iob_op_stopping(const iob_op *op);

/**
 * How long operation @p op has left before its timeout or its batch's
 * deadline, whichever comes first, from any thread: a run() on a thread
 * that waits for I/O waits no longer than this.
 * @return the milliseconds left (0 once past either); -1 when the batch
 *         has neither a timeout nor a deadline, or for NULL.
 */
IOB_EXPORT int64_t iob_op_remaining_ms(const iob_op *op);

/**
 * Operation @p index has settled; @p record holds its final timing and
 * status. Runs on the loop thread, from a libuv callback or from inside
 * iob_batch_cancel() (for what a cancel settles), and from inside
 * iob_batch_start() for a batch cancelled before it started or a start()
 * that settled at once; may call iob_batch_cancel().
 */
typedef void (*iob_op_cb)(iob_batch *batch, uint32_t index,
                          const iob_record *record);

/* ---- Configuration ----------------------------------------------------- */

/** The largest number of operations in one batch. */
#define IOB_COUNT_MAX (UINT32_C(1) << 28)
/** The longest duration of one operation: what uv_sleep() accepts. */
#define IOB_DURATION_MAX_MS ((uint64_t)UINT32_MAX)

/**
 * What a batch runs. Fill it with iob_config_init() first, then set the
 * fields you need: fields added by later versions get safe defaults.
 */
struct iob_config {
  const iob_style *style; /**< how; NULL: iob_style_loop. */
  const iob_kind *kind;   /**< what; NULL: iob_kind_wait. */
  /** What the kind's operations act on, shared by all of them and read
   *  only (an address, a database and a query...). Many batches may use
   *  one target at once. Keep it alive while the batch runs. */
  const void *target;
  /** Number of operations, 1..IOB_COUNT_MAX (an open batch: 0 too, and
   *  what it is submitted counts towards IOB_COUNT_MAX). */
  uint32_t count;
  uint64_t duration_ms; /**< each operation's duration, in ms. */
  /**
   * Optional per-operation durations: count entries, copied by
   * iob_batch_create() (4 bytes an operation), so the array is the
   * caller's again once it returns. When set, duration_ms is ignored.
   */
  const uint32_t *durations_ms;
  /**
   * The most operations in flight at once, like a semaphore; 0 (the
   * default) is no limit. The next operation starts when one ends, at O(1)
   * cost. The sequential style is the limit 1.
   */
  uint32_t max_in_flight;
  iob_op_cb on_op; /**< optional: called as each operation settles. */
  /**
   * 0: none. An operation not finished this many ms after it started is
   * reported IOB_ETIMEDOUT: a wait ends then; an operation begun by
   * start() is told to stop (the kind's stop()); run() cannot be
   * interrupted (it may poll iob_op_stopping()), so when it returns a
   * successful status is replaced (its message, value and result are
   * kept). At most IOB_DURATION_MAX_MS.
   */
  uint64_t timeout_ms;
  /** Non-zero: the first operation that fails cancels the rest, and its
   *  status becomes the batch's. */
  int fail_fast;
  void *data; /**< yours; read it back with iob_batch_data(). */
  /**
   * 0: none. The whole batch's time, in ms from iob_batch_start(): when
   * it passes, the batch is cancelled as by iob_batch_cancel() (what has
   * not settled gets IOB_ECANCELED) and ends with IOB_ETIMEDOUT. At most
   * IOB_DURATION_MAX_MS.
   */
  uint64_t deadline_ms;
  /**
   * Optional: a limit this batch shares with other batches on its loop
   * (iob_limit_create()): each operation holds one of its permits while
   * in flight, besides max_in_flight. Keep it alive until the batch has
   * called back, or was freed without starting.
   */
  iob_limit *shared_limit;
  /**
   * Optional: what only the config's style reads, in a struct of that
   * style's (iob_threads_options, iob_workers_options,
   * iob_loops_options), made with its _init() function, whose first
   * member names the style: options of another style are refused
   * (IOB_EINVAL). Copied by iob_batch_create(). NULL: the style's
   * defaults.
   */
  const void *style_options;
  /**
   * Non-zero: an open batch. It takes operations (iob_batch_submit())
   * before and while it runs, from any thread, until iob_batch_close(),
   * and ends once it is closed and every operation has settled. Its
   * count (0 allowed) is the operations made at once, of the config's
   * kind, target and durations; then each submitted one names its own.
   */
  int open;
  /**
   * Optional: the application's name for the batch ("nightly import"),
   * shown in the timelines' captions beside the style. Copied by
   * iob_batch_create(): at most IOB_LABEL_MAX bytes, UTF-8, no control
   * characters. NULL: none.
   */
  const char *label;
  /**
   * Optional: a rate limit this batch shares with other batches on its
   * loop (iob_rate_create()): each operation takes one of its tokens as
   * it launches, before it takes a permit of max_in_flight or of
   * shared_limit, so an operation waiting for a token holds no permit.
   * Keep it alive until the batch has called back, or was freed without
   * starting.
   */
  iob_rate *rate;
  /**
   * Optional: retry the operations that fail (iob_retry), each with the
   * policy as it stands when it ends an attempt; an operation submitted
   * with a policy of its own (iob_task.retry) follows that one instead.
   * Checked by iob_batch_create() (iob_retry_check()); keep it alive and
   * unchanged until the batch has called back, or was freed without
   * starting. NULL: an operation runs once.
   */
  const iob_retry *retry;
  /**
   * Optional: a circuit breaker (iob_breaker_create()) in front of the
   * batch's operations, which any batches may share: while it is open an
   * operation settles at once with IOB_EBREAKER instead of launching.
   * Keep it alive until the batch has called back, or was freed without
   * starting.
   */
  iob_breaker *breaker;
  /**
   * Optional: hedged requests (iob_hedge) for the batch's operations, on
   * the loop styles, for kinds with start(). Checked by
   * iob_batch_create() (iob_hedge_check(), and IOB_ENOTSUP for a thread
   * style or a config kind without start()); keep it alive and unchanged
   * until the batch has called back. NULL: one attempt at a time.
   */
  const iob_hedge *hedge;
};

/** The most loops iob_style_loops runs one batch on. */
#define IOB_LOOPS_MAX 256
/** The longest iob_config.label, in bytes. */
#define IOB_LABEL_MAX 80

/** Set every field of @p config to its default; NULL is a no-op. */
IOB_EXPORT void iob_config_init(iob_config *config);

/* ---- Batches ----------------------------------------------------------- */

/** Called once when every operation of @p batch has settled. */
typedef void (*iob_batch_cb)(iob_batch *batch, int status);

/**
 * Create a batch from a configuration (copied, durations_ms too; the
 * target is not). The records of every operation are allocated here, in one
 * block; the state of the operations in flight (the kind's op_size for
 * each, up to the limit) when it starts.
 * @param[out] batch receives the new batch; NULL gives IOB_EINVAL.
 * @param[in] config what to run; NULL gives IOB_EINVAL.
 * @return 0; IOB_EINVAL for count 0 (unless open) or a kind with
 *         nothing to run; IOB_E2BIG for a count above IOB_COUNT_MAX;
 *         IOB_ERANGE for a duration or timeout above IOB_DURATION_MAX_MS,
 *         an op_size or batch_size above IOB_OP_SIZE_MAX, loops (in
 *         iob_loops_options) above IOB_LOOPS_MAX, or a label longer than
 *         IOB_LABEL_MAX; IOB_EINVAL for a label with a control character
 *         or style_options of another style (or of a style without);
 *         IOB_ENOTSUP for a kind the style cannot run (no run() on a
 *         thread style); what the kind's check() returns; IOB_ENOMEM
 *         when memory runs out.
 *         On error *batch is NULL.
 */
IOB_EXPORT int iob_batch_create(iob_batch **batch, const iob_config *config);

/**
 * Start every operation of @p batch on @p loop and return at once; @p cb
 * runs from @p loop when the batch is done. A batch runs only once.
 * Once @p cb has run, the batch holds no libuv handle or request: free
 * it and your loop closes cleanly.
 * @return 0; IOB_EINVAL if an argument is NULL; IOB_EBUSY if the batch
 *         was started before; IOB_ENOMEM; IOB_EAGAIN for a first batch
 *         of iob_style_pool when iob_threads_available() is below
 *         iob_pool_size() (libuv would abort the process when the system
 *         refused one of the pool's threads), and for iob_style_workers
 *         without a shared pool when the system refuses one of its
 *         threads; IOB_EINVAL for a shared_limit in use on another loop;
 *         IOB_ENOTSUP for a shared workers pool whose stacks are smaller
 *         than the kind's stack_size; for iob_style_loops, IOB_EAGAIN
 *         when the system refuses a loop's thread, and whatever the
 *         kind's open() returns on a loop. On error nothing was started and
 *         nothing is left on @p loop.
 */
IOB_EXPORT int iob_batch_start(iob_batch *batch, uv_loop_t *loop,
                               iob_batch_cb cb);

/**
 * One operation to submit to an open batch (iob_batch_submit()). Fill it
 * with iob_task_init() first: fields added later get safe defaults.
 */
struct iob_task {
  /** Its kind; iob_task_init() sets iob_kind_wait. NULL is refused
   *  (IOB_EINVAL). Kinds mix freely in one batch. */
  const iob_kind *kind;
  /** What it acts on, as iob_config.target is for the config's kind
   *  (checked by the kind's check(), and kept alive by the application
   *  until the operation settles). */
  const void *target;
  /** Its own input, which its kind documents (IOB_KIND_INPUT,
   *  input_copy): borrowed, unless the kind copies it. NULL: none. */
  const void *input;
  /** Its duration in ms, for kinds that use one (0..UINT32_MAX). */
  uint32_t duration_ms;
  /** Yours: the operation's op->data, and its outcome's data. */
  void *data;
  /** Optional: its own retry policy, which replaces the batch's
   *  (iob_config.retry) whole for this operation; checked by
   *  iob_batch_submit() (iob_retry_check()) and borrowed until the
   *  operation settles. NULL: the batch's. */
  const iob_retry *retry;
  /** Optional: its own hedge policy, which replaces the batch's
   *  (iob_config.hedge) for this operation; checked by iob_batch_submit()
   *  as iob_batch_create() checks the batch's (IOB_ENOTSUP for a thread
   *  style or a kind without start()) and borrowed until the operation
   *  settles. NULL: the batch's. A percentile delay is of the times of
   *  the batch's operations hedged under any percentile policy, one
   *  histogram a batch: give operations of different services batches
   *  of their own, or fixed delays. */
  const iob_hedge *hedge;
  /** Optional: its own circuit breaker, which replaces the batch's
   *  (iob_config.breaker) for this operation: asked before it launches,
   *  told how it ended. Borrowed until the operation settles. NULL: the
   *  batch's. */
  iob_breaker *breaker;
  /** Optional: when the operation arrived, on uv_hrtime()'s clock, if
   *  that was before it was submitted: its record's queued_ns, and so
   *  its time queued and in all (iob_batch_latency()), count from there.
   *  A load generator that fell behind its schedule (a busy loop, a
   *  descheduled thread) gives each operation the time it was due, so
   *  the lateness is counted rather than hidden (no "coordinated
   *  omission"). 0: when the batch's loop took it in. A time after the
   *  submission is refused (IOB_EINVAL); one before the batch started
   *  counts as its start. */
  uint64_t arrival_ns;
};

/** Set @p task to the defaults: a wait of 0 ms, no target, input or
 *  data. NULL is a no-op. */
IOB_EXPORT void iob_task_init(iob_task *task);

/**
 * Add an operation to an open batch (iob_config.open), before it starts
 * or while it runs, from any thread: the task is copied (its input is
 * borrowed or copied, as its kind says), nothing waits for the loop, and
 * the operation launches on the batch's loop as its limits allow, after
 * every operation submitted before it. Operations submitted from one
 * thread run in the order submitted. From the batch's loop thread (an
 * on_op, a kind's callback, a timer of yours) it may launch, and even
 * settle, before this returns (outside on_op, which launches once it has
 * returned). From another thread, hold a reference
 * (iob_batch_ref()): the batch may end as soon as it is closed. Not from
 * a signal handler (it takes a lock and allocates: hand the work to the
 * loop with a uv_signal_t or uv_async_t): one that interrupted a
 * submission or close on its own thread is refused (IOB_EPERM), which
 * is all that can be told; anywhere else the result is undefined.
 * @return the operation's index (0 or more; its record, on_op and
 *         iob_batch_outcome() use it); IOB_EINVAL for a NULL argument,
 *         a batch that is not open, a NULL kind, an input its kind
 *         does not take, or an arrival_ns later than now;
 *         IOB_ESHUTDOWN once the batch is closed
 *         (iob_batch_close()), finished, cancelled or asked to be
 *         (iob_batch_cancel_async(), or iob_batch_cancel() before it
 *         started); IOB_E2BIG past IOB_COUNT_MAX operations;
 *         IOB_ENOTSUP for a kind the batch's style cannot run (under
 *         iob_style_workers, a kind whose stack_size its shared pool's
 *         threads lack; with a pool of the batch's own, made for the
 *         config's kind, such an operation fails with IOB_ENOTSUP when it
 *         launches); what the kind's check() or input_copy() returns;
 *         IOB_EPERM from inside a submission or close of the calling
 *         thread's (a kind's input_copy(), a signal handler); IOB_ENOMEM.
 *         On error nothing was added and the input is still the
 *         caller's.
 */
IOB_EXPORT int iob_batch_submit(iob_batch *batch, const iob_task *task);

/**
 * Say that no more operations will come to open batch @p batch, from any
 * thread (holding a reference): once every operation has settled, it
 * ends, and its callback runs. A cancel closes a batch too (a TaskGroup:
 * an open batch cannot end before).
 * @return 0, also for a batch closed, cancelled or finished already;
 *         IOB_EINVAL for NULL or a batch that is not open; IOB_EPERM
 *         from inside a submission or close of the calling thread's, as
 *         iob_batch_submit().
 */
IOB_EXPORT int iob_batch_close(iob_batch *batch);

/**
 * Free a batch that is not running (never started, or whose callback
 * has run; freeing from inside that callback is allowed), with its
 * operations' messages, and their results if the kind frees them.
 * @param[in] batch the batch; NULL is a no-op.
 * @return 0, or IOB_EBUSY if the batch is running (nothing is freed).
 */
IOB_EXPORT int iob_batch_free(iob_batch *batch);

/**
 * Cancel a running batch: operations not started never start, waits on
 * the loop end now, jobs still queued on the pool are cancelled
 * (uv_cancel), operations begun by start() are told to stop (the kind's
 * stop()), and a wait or run() already running on a thread finishes and
 * is recorded as it ends (iob_op_stopping() tells run() to hurry).
 * Cancelled operations get IOB_ECANCELED. The batch callback then runs
 * once, with IOB_ECANCELED (or the first failure's status, for fail_fast).
 * From the loop's thread the cancel happens before this returns; from
 * any other thread (holding a reference) it is asked for, as by
 * iob_batch_cancel_async(). Under iob_style_loops what runs on its loops
 * is told before this returns, and settles once its loop has handed it
 * back, on the batch's loop, an iteration or so later (a loop busy with a
 * run() hears it when that run() returns). A batch cancelled before it started starts
 * nothing: its operations settle as cancelled when it starts.
 * @return 0, also for a batch already cancelled, finished or never
 *         started, and from the on_op of its last operation (nothing is
 *         left to cancel: the batch's status stays); IOB_EINVAL for NULL.
 *         Never from a signal handler: use iob_batch_cancel_async().
 */
IOB_EXPORT int iob_batch_cancel(iob_batch *batch);

/**
 * Ask for @p batch to be cancelled, and return at once: the cancel
 * happens on the batch's loop thread, in its next iteration, exactly as
 * iob_batch_cancel() does there. Safe from any thread and from a signal
 * handler (it does atomic operations and uv_async_send(), nothing else),
 * as long as the batch's memory lives: the caller holds a reference
 * (iob_batch_ref()), or knows the batch is not freed meanwhile.
 * @return 0, also for a batch finished or not yet started (it is then
 *         cancelled when it starts); IOB_EINVAL for NULL.
 */
IOB_EXPORT int iob_batch_cancel_async(iob_batch *batch);

/**
 * Cancel operation @p index alone, with what iob_batch_cancel() does to
 * each operation: not yet started, it never starts and settles now; a
 * wait on the loop ends now; a job still queued on a pool is taken off
 * it; one begun by start() is told to stop; a wait or run() already
 * running on a thread is told (iob_op_stopping()) and recorded as it
 * ends, with the status it ends with. The others get IOB_ECANCELED; the
 * rest of the batch runs on, and fail_fast does not count it as a
 * failure. Under iob_style_loops the operation settles once its loop has
 * handed it back, not before this returns; a run() running on a loop is
 * told (iob_op_stopping()) and recorded as it ends, as on the loop
 * style. Before the batch
 * starts (from the thread that starts it), it marks the operation, which
 * then never starts.
 * @return 0, also for an operation that has settled or a batch that has
 *         finished (nothing to cancel); IOB_EINVAL for NULL or an index
 *         out of range; IOB_EPERM from a thread other than the running
 *         batch's loop thread.
 */
IOB_EXPORT int iob_batch_cancel_op(iob_batch *batch, uint32_t index);

/**
 * Take a reference to @p batch, for another thread or a later time: the
 * batch's memory lives until every reference is dropped. Take it while
 * you hold one (the creator's, or another); any thread.
 * @return @p batch (NULL for NULL).
 */
IOB_EXPORT iob_batch *iob_batch_ref(iob_batch *batch);

/**
 * Drop a reference taken with iob_batch_ref(); any thread. The last one
 * frees the batch as iob_batch_free() does, on the calling thread (the
 * kind's free_result runs there). A running batch holds a
 * reference of its own from iob_batch_start() until its callback has
 * returned, so this never frees one that runs. NULL is a no-op.
 */
IOB_EXPORT void iob_batch_unref(iob_batch *batch);

/**
 * The batch that owns a libuv handle, for applications that walk their
 * loop (uv_walk()) to close every handle at shutdown: a batch's own
 * handle must not be closed by anyone else. Cancel its batch instead
 * (iob_batch_cancel()), let the loop run until the batch's callback has
 * run, and the batch closes its handles itself. The handles that its
 * operations open (iob_kind_tcp's sockets, a kind's of yours) are their
 * kind's, not the batch's: this gives NULL for them, and closing one
 * under a running operation breaks it, so cancel the batches first (a
 * kind's stop() closes them). docs/embedding.md shows the pattern.
 * @return the running batch @p handle belongs to; NULL for NULL or a
 *         handle that is not a batch's own.
 */
IOB_EXPORT iob_batch *iob_handle_batch(const uv_handle_t *handle);

/** @return the config's data pointer, or NULL for a NULL batch. */
IOB_EXPORT void *iob_batch_data(const iob_batch *batch);

/**
 * The loop to use for the batch's I/O. Called by a kind's function on one
 * of iob_style_loops' loops (start(), open()...), the loop of the calling
 * thread, where the operation runs; anywhere else, the loop the batch was
 * started on.
 * @return that loop; NULL for NULL or a batch not started.
 */
IOB_EXPORT uv_loop_t *iob_batch_loop(const iob_batch *batch);

/** @return the style the batch runs in (the config's, or the default);
 *  NULL for NULL. A kind's open() reads it to know where it runs. */
IOB_EXPORT const iob_style *iob_batch_style(const iob_batch *batch);

/** @return the batch's own copy of its configuration (style and kind
 *  never NULL, durations_ms its own copy), valid as long as the batch;
 *  NULL for NULL. A kind's open() may read how the batch will run. */
IOB_EXPORT const iob_config *iob_batch_config(const iob_batch *batch);

/** Counters of a batch, readable at any time. */
typedef struct iob_progress {
  uint32_t waiting;   /**< not yet handed to the style. */
  uint32_t in_flight; /**< handed to the style, not yet settled. */
  uint32_t done;      /**< settled, with any status. */
  uint32_t failed;    /**< settled with a status other than 0. */
} iob_progress;

/**
 * Read a batch's counters; cheap, for progress displays, from any thread
 * (holding a reference, iob_batch_ref()) and from a signal handler (two
 * atomic loads). They agree: waiting + in_flight + done is always the
 * count, and failed is never more than done.
 * @return 0; IOB_EINVAL if an argument is NULL.
 */
IOB_EXPORT int iob_batch_progress(const iob_batch *batch,
                                  iob_progress *progress);

/**
 * Run a batch to the end on a private loop, blocking the calling thread:
 * the C form of the tutorial's run_with_multiple_threads(). The loop is
 * closed before it returns, so a kind must close every handle it opened
 * before its operations settle (as the built-in kinds do).
 * @param[out] batch receives the finished batch, to read and then free
 *             with iob_batch_free(); NULL gives IOB_EINVAL.
 * @param[in] config what to run, as for iob_batch_create(); not open
 *            (nothing else could submit to it or close it).
 * @return 0 or an error as for iob_batch_create() or iob_batch_start();
 *         IOB_EINVAL for an open config; on error *batch is NULL.
 */
IOB_EXPORT int iob_run(iob_batch **batch, const iob_config *config);

/* ---- Between batches: a shared limit, a group, a pool ------------------ */

/**
 * A limit several batches share, like a semaphore or a database's
 * max_connections: each operation in flight holds one of its permits.
 * Set it as iob_config.shared_limit. Permits go to waiting batches in
 * turn (first come, first served, one operation a turn), so a batch of a
 * million operations cannot starve a batch of ten; taking and giving back
 * a permit costs O(1). It serves batches on one loop, and is used only
 * from that loop's thread.
 * @param[out] limit receives the limit; NULL gives IOB_EINVAL.
 * @param[in] permits how many operations may be in flight at once across
 *            its batches: 1..IOB_COUNT_MAX.
 * @return 0; IOB_EINVAL; IOB_ERANGE for 0 or more than IOB_COUNT_MAX
 *         permits; IOB_ENOMEM. On error *limit is NULL. A batch started
 *         with a limit that batches on another loop are using gets
 *         IOB_EINVAL from iob_batch_start().
 */
IOB_EXPORT int iob_limit_create(iob_limit **limit, uint32_t permits);

/**
 * Free a limit no running batch uses; NULL is a no-op.
 * @return 0; IOB_EBUSY while a running batch uses it (nothing is freed).
 */
IOB_EXPORT int iob_limit_free(iob_limit *limit);

/** @return the permits held now by operations in flight; 0 for NULL. */
IOB_EXPORT uint32_t iob_limit_in_use(const iob_limit *limit);

/** The least and the most rate iob_rate_create() takes, a second. */
#define IOB_RATE_MIN 0.001
#define IOB_RATE_MAX 1e9

/**
 * A rate limit several batches share, as a token bucket (Go's
 * rate.NewLimiter(r, b)): at most @p burst operations launch at once, and
 * from then on @p per_second a second on average, across its batches.
 * Set it as iob_config.rate. An operation takes a token as it launches,
 * before a permit of max_in_flight or of a shared limit, so one that
 * waits for a token holds none; batches that wait get tokens in turn,
 * one operation each, so that the rate holds on average even where the
 * loop's timers wake a millisecond late. It serves batches on one loop,
 * and is used only from that loop's thread (iob_rate_free() too); it
 * owns no handle (the batch first in line waits on a timer of its own).
 * @param[out] rate receives the rate; NULL gives IOB_EINVAL.
 * @param per_second IOB_RATE_MIN..IOB_RATE_MAX operations a second.
 * @param burst 1..IOB_COUNT_MAX: the tokens it holds at most, and at
 *        first.
 * @return 0; IOB_EINVAL; IOB_ERANGE for a rate outside
 *         IOB_RATE_MIN..IOB_RATE_MAX (0, NaN) or a burst of 0 or more
 *         than IOB_COUNT_MAX; IOB_ENOMEM. On error *rate is NULL. A batch
 *         started with a rate that batches on another loop are using
 *         gets IOB_EINVAL from iob_batch_start().
 */
IOB_EXPORT int iob_rate_create(iob_rate **rate, double per_second,
                               uint32_t burst);

/**
 * Free a rate no running batch uses; NULL is a no-op.
 * @return 0; IOB_EBUSY while a running batch uses it (nothing is freed).
 */
IOB_EXPORT int iob_rate_free(iob_rate *rate);

/* ---- Retries ------------------------------------------------------------ */

/** What a classifier returns for an attempt not worth another. */
#define IOB_RETRY_NO INT64_C(-1)
/** The most attempts a policy allows (iob_retry.attempts). */
#define IOB_RETRY_ATTEMPTS_MAX 100

/**
 * Whether an attempt that ended with @p outcome is worth another, in
 * iobound's default judgement: yes (0) for a status that says the other
 * side may answer next time (IOB_ETIMEDOUT, IOB_EIO, a refused, reset or
 * aborted connection, a broken pipe, an unreachable network or host, a
 * name lookup to try again), else IOB_RETRY_NO (success, a cancel, bad
 * input, no memory). The classifier of a kind without one of its own;
 * NULL gives IOB_RETRY_NO.
 */
IOB_EXPORT int64_t iob_retry_transient(const iob_outcome *outcome);

/**
 * A retry policy (gRPC's retry design, A6; Go's and tower's retries): an
 * operation whose attempt fails runs again, up to @p attempts in all,
 * after a backoff with full jitter: a delay drawn evenly between
 * backoff_min_ms and the lesser of backoff_max_ms and backoff_min_ms
 * doubled for each retry before. Set it as iob_config.retry (every
 * operation of a batch) or iob_task.retry (one operation; it replaces
 * the batch's). Fill it with iob_retry_init() first.
 *
 * A retry begins the kind's start() or run() again, with its state
 * zeroed (its cleanup() ran) and op->attempt one higher; the wait of a
 * kind with IOB_KIND_WAITS is not repeated. The operation holds its
 * place in flight (its permit of max_in_flight or a shared limit) while
 * it backs off. Its record's started_ns stays the first attempt's, so
 * iob_config.timeout_ms bounds all its attempts and backoffs together,
 * as iob_config.deadline_ms bounds the batch's: no retry begins whose
 * backoff would end past either, and one that is cancelled or timed out
 * while backing off settles at once with that reason. A stopped attempt
 * (cancelled, timed out) is never retried. What it hands back
 * (iob_op_set_*()) is the last attempt's: a retry clears the message and
 * value, and frees the result with the kind's free_result; a kind without
 * one must hand back a result only from an attempt that succeeds, since a
 * result a retry replaces is lost to the application. On the thread
 * styles a retry runs on the thread of the attempt before, and so do its
 * kind's cleanup() and free_result() between attempts. A retry takes no
 * token of iob_config.rate: the rate spaces first attempts.
 */
struct iob_retry {
  /** The most attempts, the first included: 1..IOB_RETRY_ATTEMPTS_MAX
   *  (1: never retried); iob_retry_init() sets 3. */
  uint32_t attempts;
  /** The least backoff before a retry, in ms; iob_retry_init(): 10. */
  uint32_t backoff_min_ms;
  /** The most, at least backoff_min_ms; iob_retry_init(): 1000. A
   *  server's pushback (the classifier's delay) may be longer. */
  uint32_t backoff_max_ms;
  /**
   * Optional: is an attempt that ended with @p outcome worth another?
   * IOB_RETRY_NO, 0 (after the backoff), or a delay in ms (the server's
   * pushback, used instead of the backoff). Any thread the attempt ended
   * on. NULL: the kind's classifier (iob_kind.retry), or
   * iob_retry_transient() for a kind without one.
   */
  int64_t (*classify)(const iob_outcome *outcome, void *arg);
  void *arg; /**< given to classify. */
  /** Optional: a retry budget (iob_budget_create()), which may be
   *  shared by any batches and policies; NULL: retries are bounded by
   *  attempts alone. */
  iob_budget *budget;
  /** Each attempt's own timeout, in ms; 0: none (the operation's, from
   *  iob_config.timeout_ms, bounds them all together). An attempt past it
   *  is stopped (start(): its kind's stop(), iob_op_stopping() saying
   *  IOB_ETIMEDOUT; run(): iob_op_stopping() says so, and a success that
   *  comes too late is IOB_ETIMEDOUT) and counts as a failure that may be
   *  retried. Not for the attempts of a hedged operation. */
  uint32_t attempt_timeout_ms;
};

/** Set @p retry to the defaults: 3 attempts, a backoff of 10 ms to 1 s,
 *  the kind's classifier, no budget. NULL is a no-op. */
IOB_EXPORT void iob_retry_init(iob_retry *retry);

/**
 * Check a policy as iob_batch_create() and iob_batch_submit() do.
 * @return 0; IOB_EINVAL for NULL; IOB_ERANGE for attempts outside
 *         1..IOB_RETRY_ATTEMPTS_MAX or backoff_max_ms below
 *         backoff_min_ms.
 */
IOB_EXPORT int iob_retry_check(const iob_retry *retry);

/** The longest window a budget counts over, in ms. */
#define IOB_BUDGET_WINDOW_MAX_MS 3600000u

/**
 * A retry budget (Finagle's RetryBudget, gRPC's retry throttling): over
 * the last @p window_ms, retries may be at most @p ratio of the
 * operations that ended a first attempt there, plus @p floor_per_s a
 * second of the window, so that a failing backend sees its load grow by
 * that share, not by the policy's attempts. A retry the budget refuses
 * does not happen: the operation settles with its attempt's status. Any
 * number of policies and batches, on any threads, may share one.
 * @param[out] budget receives it; NULL gives IOB_EINVAL.
 * @param ratio 0..100 (0.2: a fifth more load at most).
 * @param floor_per_s retries a second allowed whatever the ratio.
 * @param window_ms 1000..IOB_BUDGET_WINDOW_MAX_MS; 0 for 10,000.
 * @return 0; IOB_EINVAL; IOB_ERANGE for a ratio or window out of range
 *         (NaN), or a ratio and floor both 0 (no retry could ever
 *         happen); IOB_ENOMEM. On error *budget is NULL.
 */
IOB_EXPORT int iob_budget_create(iob_budget **budget, double ratio,
                                 uint32_t floor_per_s, uint32_t window_ms);

/** Free a budget; NULL is a no-op. No batch that may still retry with it
 *  may be running. */
IOB_EXPORT void iob_budget_free(iob_budget *budget);

/** Retries a budget refused since it was made; 0 for NULL. */
IOB_EXPORT uint64_t iob_budget_refused(const iob_budget *budget);

/* ---- Hedged requests ------------------------------------------------------ */

/** The most attempts of one operation a hedge policy runs at once. */
#define IOB_HEDGE_MAX 8

/**
 * Hedged requests ("The Tail at Scale"): when an operation has not
 * finished after a delay, a second attempt of it starts beside the
 * first (then a third after as long again, up to `attempts`); the first
 * to succeed wins, the others are stopped (their kind's stop()), and the
 * operation settles once they have all ended, with the winner's outcome
 * (or, if every attempt failed, the last failure's). A tail of slow
 * answers then costs the delay plus a fast answer, for a few more
 * requests. Set it as iob_config.hedge; fill it with iob_hedge_init().
 *
 * It applies on the loop styles (loop, sequential, loops) to kinds with
 * start() (an open batch's operations of other kinds run unhedged): each
 * attempt has a state of its own and runs on the operation's loop. With a
 * retry policy too, a failed hedged operation is retried whole (hedged
 * again). A cancel, the timeout or the deadline stops every attempt. The
 * losers' results are freed with the kind's free_result, or lost (as for
 * retries). Further attempts take no token of iob_config.rate, nor a
 * permit: an operation holds one however many attempts it runs.
 */
struct iob_hedge {
  /** The delay before each further attempt, in ms; iob_hedge_init():
   *  100. With `percentile`, used until the batch has 20 successes. */
  uint32_t delay_ms;
  /** 0: the fixed delay. Else the delay is this percentile (0 < p < 100,
   *  as 95) of the times the batch's successful attempts took so far,
   *  within 13%. */
  double percentile;
  /** The most attempts at once, the first included: 2..IOB_HEDGE_MAX;
   *  init: 2. */
  uint32_t attempts;
  /** Optional: a budget (iob_budget_create()) that each further attempt
   *  must pass, as a retry does; NULL: none. */
  iob_budget *budget;
};

/** Set @p hedge to the defaults: 100 ms, fixed, 2 attempts, no budget.
 *  NULL is a no-op. */
IOB_EXPORT void iob_hedge_init(iob_hedge *hedge);

/**
 * Check a policy as iob_batch_create() does (which also refuses a delay
 * at or past the config's timeout_ms with IOB_ERANGE).
 * @return 0; IOB_EINVAL for NULL; IOB_ERANGE for attempts outside
 *         2..IOB_HEDGE_MAX or a percentile outside 0 and (0, 100) (NaN).
 */
IOB_EXPORT int iob_hedge_check(const iob_hedge *hedge);

/* ---- A circuit breaker ------------------------------------------------- */

/** How a circuit breaker judges and waits (iob_breaker_create()). */
typedef struct iob_breaker_options {
  /** It opens when this share of the outcomes in the window, 0 < r <= 1,
   *  are failures; iob_breaker_options_init(): 0.5. */
  double failure_ratio;
  /** ...and the window holds at least this many outcomes (1 and up);
   *  init: 20. */
  uint32_t min_outcomes;
  /** The window, in ms, 1000..IOB_BUDGET_WINDOW_MAX_MS; init: 10,000. */
  uint32_t window_ms;
  /** How long it stays open before it lets probes through (half-open),
   *  in ms, 1..IOB_DURATION_MAX_MS; init: 5,000. */
  uint32_t open_ms;
  /** Operations let through at once while half-open, 1 and up; init 1. */
  uint32_t probes;
} iob_breaker_options;

/** Set @p options to the defaults above; NULL is a no-op. */
IOB_EXPORT void iob_breaker_options_init(iob_breaker_options *options);

/** Where a breaker is. */
typedef enum iob_breaker_state {
  IOB_BREAKER_CLOSED = 0, /**< operations run; outcomes are counted. */
  IOB_BREAKER_OPEN,       /**< operations fail at once (IOB_EBREAKER). */
  IOB_BREAKER_HALF_OPEN,  /**< a few run, as probes: their outcome
                               closes it, or opens it again. */
} iob_breaker_state;

/**
 * A circuit breaker (Hystrix, Polly, resilience4j): it counts the
 * outcomes of the operations of the batches that name it
 * (iob_config.breaker) over a window, and when failures reach a share of
 * them it opens: the operations of those batches then settle at once with
 * IOB_EBREAKER, never calling the backend, for open_ms. Then it lets
 * `probes` operations through (half-open): the first outcome to come
 * back closes it (a success, and the window starts afresh) or opens it
 * again (a failure). A failure is any status but 0, IOB_ECANCELED and
 * IOB_EBREAKER; an operation it refused is no outcome. Any batches, on
 * any threads and loops, may share one.
 * @param[out] breaker receives it; NULL gives IOB_EINVAL.
 * @param[in] options NULL: the defaults.
 * @return 0; IOB_EINVAL; IOB_ERANGE for an option out of its range (a
 *         ratio of 0 or NaN, a window below a second, 0 probes...);
 *         IOB_ENOMEM. On error *breaker is NULL.
 */
IOB_EXPORT int iob_breaker_create(iob_breaker **breaker,
                                  const iob_breaker_options *options);

/** Free a breaker; NULL is a no-op. No batch that uses it may be
 *  running. */
IOB_EXPORT void iob_breaker_free(iob_breaker *breaker);

/** Where @p breaker is now; IOB_BREAKER_CLOSED for NULL. */
IOB_EXPORT iob_breaker_state iob_breaker_state_of(const iob_breaker *breaker);

/** Times @p breaker has opened since it was made; 0 for NULL. */
IOB_EXPORT uint64_t iob_breaker_trips(const iob_breaker *breaker);

/** A group of batches: its callback runs once every batch in it ended. */
typedef struct iob_group iob_group;

/**
 * Called when the last batch of @p group has ended, after that batch's
 * own callback, on its loop thread. @p status is 0 if every batch ended
 * with 0, else the status of the first batch that did not. The group is
 * then empty, and may take new batches or be freed (from here too; not
 * from a batch's own callback, which comes before the group knows).
 */
typedef void (*iob_group_cb)(iob_group *group, int status);

/**
 * Make a group, to be told when a set of batches has ended (as
 * Promise.all, a dispatch_group or a WaitGroup), without counting.
 * @param[out] group receives the group; NULL gives IOB_EINVAL.
 * @param[in] cb called when the group's batches have ended; NULL gives
 *            IOB_EINVAL.
 * @param[in] data yours; read it back with iob_group_data().
 * @return 0; IOB_EINVAL; IOB_ENOMEM. On error *group is NULL.
 */
IOB_EXPORT int iob_group_create(iob_group **group, iob_group_cb cb, void *data);

/**
 * Add a batch to @p group: one not started yet (from the thread that
 * owns it), or one running (from its loop thread). Add every batch
 * before any of them can end, as by adding them all before starting
 * them, or the group calls back early (each time no batch in it is left
 * running). Batches of one group may run on different loops; the
 * callback then runs on the thread of whichever ends last. A batch that
 * is freed without having started leaves the group as if it had ended
 * with IOB_ECANCELED, and if it was the last, the callback runs from
 * inside that iob_batch_free(). A batch is in one group at most.
 * @return 0; IOB_EINVAL for NULL, a batch that has finished, or a
 *         group freed in its callback; IOB_EBUSY for a batch already in
 *         a group; IOB_EPERM for a
 *         running batch, from a thread other than its loop thread.
 */
IOB_EXPORT int iob_group_add(iob_group *group, iob_batch *batch);

/** @return the group's data pointer; NULL for NULL. */
IOB_EXPORT void *iob_group_data(const iob_group *group);

/**
 * Free a group with no batch left in it; NULL is a no-op. From its own
 * callback (a call nested in another call of it included) the memory
 * goes once the last of those calls has returned and every other loop's
 * thread has finished counting its batch's end; until then
 * iob_group_add() refuses the group (IOB_EINVAL).
 * @return 0; IOB_EBUSY while a batch in it has not ended, or another
 *         thread still counts a batch's end (for a moment after that
 *         batch's callback) or runs the group's callback (nothing is
 *         freed).
 */
IOB_EXPORT int iob_group_free(iob_group *group);

/** The threads of a pool of the workers style when the config does not
 *  say: as many as libuv's pool has by default (its UV_THREADPOOL_SIZE
 *  does not change this). */
#define IOB_WORKERS_DEFAULT 4
/** The most threads one pool of workers may have. */
#define IOB_WORKERS_MAX 1024

/**
 * Make a pool of @p threads threads of iobound's own, for batches of
 * iob_style_workers (iob_workers_options.pool): started now, reused by
 * every operation of every batch that uses it, in the order they were queued,
 * and joined by iob_workers_free(). Any number of batches, on any loops,
 * may share it.
 * @param[out] workers receives the pool; NULL gives IOB_EINVAL.
 * @param[in] threads 1..IOB_WORKERS_MAX.
 * @param[in] stack_size each thread's stack in bytes; 0 for 256 KiB. A
 *            kind whose stack_size is larger cannot run on it.
 * @return 0; IOB_EINVAL; IOB_ERANGE for a thread count out of range;
 *         IOB_ENOMEM; IOB_EAGAIN if the system refused a thread (none is
 *         left running). On error *workers is NULL.
 */
IOB_EXPORT int iob_workers_create(iob_workers **workers, uint32_t threads,
                                  size_t stack_size);

/**
 * Stop and join the pool's threads, and free it; NULL is a no-op. Not
 * from one of its own threads.
 * @return 0; IOB_EBUSY while a batch uses it (nothing is freed).
 */
IOB_EXPORT int iob_workers_free(iob_workers *workers);

/** @return the pool's number of threads; 0 for NULL. */
IOB_EXPORT uint32_t iob_workers_threads(const iob_workers *workers);

/* ---- Measurements ------------------------------------------------------ */

/**
 * One operation's timing. Times are nanoseconds since the batch started
 * (uv_hrtime(), monotonic); queued <= started <= finished once finished.
 * An operation that never started has all three equal to when it was
 * settled, and the status IOB_ECANCELED.
 */
struct iob_record {
  /** When it was handed to its style. Every operation of a batch that
   *  is not open is asked for when the batch starts: under a limit, one
   *  waited for a free slot from 0 to queued_ns (the timelines draw that
   *  wait). In an open batch, when it arrived: taken in by the batch's
   *  loop (at its start, for those submitted before), or its
   *  iob_task.arrival_ns if set, so its time queued includes its wait
   *  for a slot. */
  uint64_t queued_ns;
  uint64_t started_ns;  /**< when it began to run (a thread picked it up). */
  uint64_t finished_ns; /**< when it was over. */
  int32_t status;       /**< 0, or a negative error code. */
  /** 0: the batch's loop thread; else the number of the thread that ran
   *  it (iob_style_loops: the thread of the loop it was handed to, also
   *  when it was cancelled before it ran). */
  uint32_t worker;
};

/** What one operation handed back, beside its record. */
struct iob_outcome {
  int status;          /**< as in its record. */
  const char *message; /**< why it failed, or NULL; owned by the batch. */
  uint64_t value;      /**< iob_op_set_value()'s number, or 0. */
  /** iob_op_set_result()'s pointer, or NULL: owned by the batch when the
   *  kind has free_result, else by the application. */
  void *result;
  /** The operation's kind. */
  const iob_kind *kind;
  /** The application's pointer: iob_task.data, or NULL for the
   *  operations a batch is created with. */
  void *data;
  /** Times it ran again after a failed attempt (iob_retry); 0 if it ran
   *  once or never. (To a classifier: the retries before this attempt.) */
  uint32_t retries;
  /** Attempts started beside a first one (iob_hedge), over all its
   *  tries; hedge_won: non-zero if one of them won. */
  uint32_t hedges;
  int hedge_won;
};

/**
 * Read operation @p index's outcome: once the batch has finished, from
 * any thread; while it runs, from its loop thread once that operation
 * has settled (in on_op, to act on each result as it comes). The message
 * and a result the batch owns (its kind has free_result) stay valid until
 * the batch is freed; a result the batch does not own is the
 * application's from the moment the operation settles.
 * @return 0; IOB_EINVAL for NULL or an index out of range; IOB_EBUSY for
 *         an operation not settled yet, or a running batch read from
 *         another thread than its loop's.
 */
IOB_EXPORT int iob_batch_outcome(const iob_batch *batch, uint32_t index,
                                 iob_outcome *outcome);

/** One attempt of an operation that ran more than once (iob_retry,
 *  iob_hedge). Times are as in its record: ns since the batch started. */
typedef struct iob_attempt {
  uint64_t started_ns;  /**< when it began. */
  uint64_t finished_ns; /**< when it ended. */
  /** How it ended: 0, its failure, or why it was stopped (IOB_ECANCELED
   *  for a hedge stopped because another attempt won). */
  int32_t status;
  /** Non-zero for an attempt that began beside another (a hedge). */
  uint32_t hedge;
} iob_attempt;

/**
 * Operation @p index's attempts, in the order they began, when it ran
 * more than once: the first, each retry after its backoff (the time
 * between one attempt's end and the next one's start), and each hedge.
 * An operation that ran once or never has none: its record says it all.
 * Read as iob_batch_outcome() is read; the list is the batch's, valid
 * until it is freed.
 * @param[out] attempts receives the list, or NULL when there is none.
 * @param[out] count receives its length (0, or 2 and more).
 * @return 0; IOB_EINVAL for a NULL argument or an index out of range;
 *         IOB_EBUSY as for iob_batch_outcome(); IOB_ENOMEM when there was
 *         no memory to keep this operation's list as it ran (its outcome
 *         and record are whole all the same).
 */
IOB_EXPORT int iob_batch_attempts(const iob_batch *batch, uint32_t index,
                                  const iob_attempt **attempts,
                                  uint32_t *count);

/** A summary of a finished batch. */
typedef struct iob_report {
  const iob_style *style;
  /** The kind of every operation; NULL for a batch of mixed kinds. */
  const iob_kind *kind;
  uint32_t count;          /**< operations in the batch. */
  uint32_t failed;         /**< operations whose status is not 0. */
  uint32_t peak_in_flight; /**< most operations running at one moment. */
  /** Threads the run could use: 0 for the loop styles; the number of
   *  loops for iob_style_loops; libuv's pool's
   *  size when iobound can know it (see iob_pool_request_size()), else 0;
   *  the workers' pool's size; or the most threads of its own the threads
   *  style had at once. */
  uint32_t threads;
  uint32_t workers_used; /**< distinct threads that ran an operation. */
  uint32_t cores;        /**< CPU cores the machine offered. */
  int status;            /**< the batch's status, as given to the cb. */
  uint64_t elapsed_ns;   /**< start to the last operation's end. */
  /** CPU time the whole process used while the batch ran (user + sys). */
  uint64_t cpu_ns;
  /** Sum of the operations' own run times (finished - started). */
  double work_ns;
  /** work_ns / elapsed_ns: 1 for sequential, about count when all overlap. */
  double speedup;
  /** Operations that waited for a token of the config's rate limit
   *  before they launched; 0 without one. */
  uint32_t rate_waits;
  /** Retries the operations made (iob_retry): attempts made in all are
   *  count + retries for a batch whose operations all started. */
  uint32_t retries;
  /** Operations an open circuit breaker (config.breaker, or their own
   *  iob_task.breaker) settled with IOB_EBREAKER without running them. */
  uint32_t breaker_refused;
  /** Attempts started beside a first one (config.hedge), and of those,
   *  how many won (finished first with success). */
  uint32_t hedges;
  uint32_t hedges_won;
} iob_report;

/**
 * Summarise a finished batch, in time proportional to its count and
 * memory proportional to its threads and its peak in flight, not its
 * count.
 * @param[in] batch the batch; NULL gives IOB_EINVAL.
 * @param[out] report filled in; NULL gives IOB_EINVAL.
 * @return 0; IOB_EBUSY if the batch has not finished; IOB_ENOMEM.
 */
IOB_EXPORT int iob_batch_report(const iob_batch *batch, iob_report *report);

/** Percentiles of one of an operation's times over a batch, in ns: each
 *  the time of the operation at rank ceil(q x count), written as the top
 *  of its histogram bucket, at most 0.8% above it; the max is exact. */
typedef struct iob_percentiles {
  uint64_t p50_ns;
  uint64_t p90_ns;
  uint64_t p99_ns;
  uint64_t p999_ns;
  uint64_t max_ns;
} iob_percentiles;

/** How long a batch's operations took (iob_batch_latency()). */
typedef struct iob_latency {
  uint32_t count; /**< operations measured: all of the batch's. */
  /** Waiting to start: from when it was asked for (the batch's start,
   *  for a batch of count under a limit, as the timelines draw it; in an
   *  open batch, when it arrived: iob_record.queued_ns; else when it was
   *  handed to its style) to started_ns. */
  iob_percentiles queued;
  /** Running: started_ns to finished_ns, its retries and backoffs
   *  included. */
  iob_percentiles running;
  /** Queued and running. */
  iob_percentiles total;
} iob_latency;

/**
 * Percentiles (p50, p90, p99, p99.9, max) of a finished batch's times
 * queued, running and in all, every operation counted whatever its
 * status, up to the end its record says (a timed-out wait or start()
 * operation at its timeout; a run() on a thread when it returned). The
 * first call makes one pass over the records into a histogram of 29 KB,
 * freed before it returns (no sort), and keeps the answer with the batch
 * (120 bytes) for the next calls and the timelines' captions; nothing is
 * paid while the operations run. Any thread, once the batch finished.
 * @param[in] batch the batch; NULL gives IOB_EINVAL.
 * @param[out] latency filled in; NULL gives IOB_EINVAL.
 * @return 0; IOB_EBUSY if the batch has not finished; IOB_ENODATA for a
 *         batch without operations (an open batch closed empty);
 *         IOB_ENOMEM.
 */
IOB_EXPORT int iob_batch_latency(const iob_batch *batch, iob_latency *latency);

/**
 * The per-operation records of a finished batch, indexed by operation.
 * @param[in] batch the batch.
 * @param[out] count receives the number of records; may be NULL.
 * @return the records (owned by the batch), or NULL if @p batch is NULL
 *         or has not finished.
 */
IOB_EXPORT const iob_record *iob_batch_records(const iob_batch *batch,
                                               uint32_t *count);

/* ---- Threads ----------------------------------------------------------- */

/**
 * Estimate how many more threads this process may create, erring low:
 * the least of the kernel's threads-max and RLIMIT_NPROC (not for root,
 * whom the kernel does not hold to it), each less every thread the system
 * runs already, and half of vm.max_map_count. A count above it may well
 * fail; one below it should not, unless other processes race for the
 * same threads.
 * @return the estimate; UINT32_MAX if no limit could be read.
 */
IOB_EXPORT uint32_t iob_threads_available(void);

/* ---- libuv's thread pool ----------------------------------------------- */

/**
 * Ask for @p threads threads in libuv's thread pool. The pool is shared
 * by the whole process and libuv sizes it once, from UV_THREADPOOL_SIZE,
 * the first time anything queues work on it; this sets that variable.
 * iobound knows only of its own use: if your program used the pool first
 * (uv_queue_work, uv_fs_* with a callback, uv_getaddrinfo), the request
 * comes too late and has no effect. So a request made while the process
 * had other threads than the caller's leaves the pool's size unknown to
 * iobound, and reports give 0 threads for the pool style rather than a
 * size that may be false. Not thread-safe (it calls setenv).
 * @param[in] threads 1..1024.
 * @return 0; IOB_ERANGE outside 1..1024; IOB_EALREADY once an iobound
 *         batch has used the pool.
 */
IOB_EXPORT int iob_pool_request_size(unsigned int threads);

/**
 * @return the number of threads libuv's pool has (or will have, if it has
 *         not started yet), read from UV_THREADPOOL_SIZE as libuv reads it:
 *         4 by default, 1..1024.
 */
IOB_EXPORT unsigned int iob_pool_size(void);

/* ---- Timelines --------------------------------------------------------- */

/*
 * Draw finished batches for people: a picture, a trace for a trace viewer,
 * or a chart for the terminal. Each takes a list of batches, shown on one
 * time axis, each batch's time counted from its own start. They write and
 * flush @p out but never close it. Before anything is written they return
 * IOB_EINVAL for a NULL @p out, a NULL @p batches or entry, or
 * @p nbatches 0, and IOB_EBUSY if a batch has not finished. IOB_ENOMEM if
 * memory runs out, IOB_EIO if a write to @p out failed (a full disk, a
 * read-only stream, a stream already in error): the output is then
 * incomplete. The reference, with pictures, is docs/timelines.md.
 */

/**
 * Write an SVG picture of finished batches: a section per batch, one row
 * per operation with its queued time hatched and its run coloured by the
 * thread that ran it, failed (red) and cancelled (red outline) operations
 * apart, a legend, an axis in ms, and a caption per batch. A batch of more
 * than 200 operations is drawn as the number of operations in flight over
 * time instead, so the file stays small.
 * @param[in] out where to write, e.g. a file opened with fopen(name, "w").
 * @param[in] batches @p nbatches finished batches, drawn top to bottom.
 * @param[in] nbatches how many; 1 or more.
 * @param[in] title the picture's title (UTF-8); NULL for one made from the
 *            batches' configurations.
 * @return 0, or an error as above.
 */
IOB_EXPORT int iob_export_svg(FILE *out, const iob_batch *const *batches,
                              size_t nbatches, const char *title);

/** The most operations of one batch that get a track of their own in a
 *  trace (iob_export_trace()). */
#define IOB_TRACE_OPS_MAX 10000

/**
 * Write finished batches as a Chrome Trace Event Format JSON file, for
 * ui.perfetto.dev or chrome://tracing: a process per batch, a track per
 * operation holding its queued time and its run (complete "X" events, in
 * microseconds), and a counter of the operations in flight. A batch of
 * more than IOB_TRACE_OPS_MAX operations gets a track for one operation
 * in every ceil(count / IOB_TRACE_OPS_MAX) only, so that the file stays
 * small enough for a viewer (a million operations would take 325 MB): its
 * process is labelled "sampled: ...", the file's otherData says
 * "sampled": true, and the counter counts every operation.
 * @param[in] out where to write.
 * @param[in] batches @p nbatches finished batches, one process each.
 * @param[in] nbatches how many; 1 or more.
 * @return 0, or an error as above.
 */
IOB_EXPORT int iob_export_trace(FILE *out, const iob_batch *const *batches,
                                size_t nbatches);

/**
 * Write finished batches as a plain ASCII chart for a terminal: per batch
 * a caption, then a row per operation ('.' queued, '#' running, 'x'
 * failed, 'c' cancelled) and a time scale; a batch of more than 40
 * operations gets a row per group of operations.
 * @param[in] out where to write, e.g. stdout.
 * @param[in] batches @p nbatches finished batches.
 * @param[in] nbatches how many; 1 or more.
 * @param[in] width the width of a line in characters: 40..1000, or 0 for
 *            80; other widths give IOB_ERANGE.
 * @return 0, or an error as above.
 */
IOB_EXPORT int iob_export_chart(FILE *out, const iob_batch *const *batches,
                                size_t nbatches, unsigned width);

/* ---- Real I/O: a request over TCP -------------------------------------- */

/**
 * A service to send requests to over TCP: its address, parsed once (no
 * name lookup while a batch runs), and nothing else, so any number of
 * batches may use one target at once. Run with iob_kind_tcp.
 */
typedef struct iob_tcp_target iob_tcp_target;

/**
 * Requests over TCP, one connection each: connect, send "wait MS\n",
 * expect "done MS\n" back, where MS is the operation's duration
 * (iobound-slow-service answers so after MS ms). The config's target is
 * an iob_tcp_target. On the loop styles libuv TCP (no thread); on the
 * thread styles blocking sockets. Statuses: 0; a libuv code such as
 * UV_ECONNREFUSED, UV_ECONNRESET or UV_EMFILE (out of file descriptors);
 * UV_EOF if the service hung up without answering; UV_EIO for an
 * answer "error ..." (the service could not serve it: a retry may pass);
 * UV_EPROTO for another answer than "done MS"; IOB_ETIMEDOUT and IOB_ECANCELED in every
 * style (on a thread the socket's waits end at the timeout, and within a
 * quarter of a second of a cancel, even when the service never answers).
 * Its value (iob_batch_outcome()) is the MS the service answered.
 * Programs that use it should ignore SIGPIPE, as libuv programs do.
 */
IOB_EXPORT extern const iob_kind iob_kind_tcp;

/**
 * Parse "IPV4:PORT", "[IPV6]:PORT" or "localhost:PORT" (127.0.0.1).
 * @param[out] addr receives the address.
 * @return 0; IOB_EINVAL for NULL or anything else (host names included).
 */
IOB_EXPORT int iob_tcp_address_parse(const char *text,
                                     struct sockaddr_storage *addr);

/**
 * Create a target for the service at @p address (as iob_tcp_address_parse).
 * @return 0; IOB_EINVAL for NULL or a bad address; IOB_ENOMEM.
 *         On error *target is NULL.
 */
IOB_EXPORT int iob_tcp_target_create(iob_tcp_target **target,
                                     const char *address);

/**
 * Free a target; NULL is a no-op.
 * @return 0; IOB_EBUSY while a running batch uses it (nothing is freed):
 *         a batch uses its target from iob_batch_start() until its
 *         callback runs.
 */
IOB_EXPORT int iob_tcp_target_destroy(iob_tcp_target *target);

/* ---- Real I/O: files on disk ------------------------------------------- */

/**
 * Files in a directory, and what to do with them: write a file of its own
 * per operation, or read one prepared beforehand, to measure a disk.
 * Immutable once made, so any number of batches may use one target at
 * once. Run with iob_kind_file. (For files your application names, give
 * each operation an iob_file_request instead.)
 */
typedef struct iob_file_target iob_file_target;

/** What a file operation does: an iob_file_target's (WRITE or READ), or
 *  an iob_file_request's. */
typedef enum iob_file_mode {
  /** A target: create a file of its own, write size_kib KiB, fsync if
   *  asked, close and remove it. A request: write the bytes to the path,
   *  creating the file or replacing what it held. */
  IOB_FILE_WRITE = 0,
  /** A target: open a file it prepared, read it all, close it. A request:
   *  read the file at the path into memory. */
  IOB_FILE_READ = 1,
  /** A request: write the bytes at the end of the file, creating it if
   *  need be. (Not for targets.) */
  IOB_FILE_APPEND = 2,
} iob_file_mode;

/** The longest directory name a target takes, in bytes. */
#define IOB_FILE_DIR_MAX 1024
/** The largest file, in KiB: 1 GiB. */
#define IOB_FILE_SIZE_MAX_KIB (UINT32_C(1) << 20)
/** The most files a read target prepares. */
#define IOB_FILE_FILES_MAX (UINT32_C(1) << 16)

/** How an iob_file_target's operations work. Fill it with
 *  iob_file_options_init() first: fields added later get defaults. */
typedef struct iob_file_options {
  /** Each file's size in KiB, 1..IOB_FILE_SIZE_MAX_KIB (default 64). */
  uint32_t size_kib;
  /** Non-zero: fsync each file before closing it, so a write waits for
   *  the disk, not only for the page cache (default 0). In read mode it
   *  applies to the files the target prepares. */
  int fsync;
  iob_file_mode mode; /**< IOB_FILE_WRITE (default) or IOB_FILE_READ. */
  /** IOB_FILE_READ: the files the target prepares, 1..IOB_FILE_FILES_MAX
   *  (default 1); operation i reads file i % files. Ignored in write
   *  mode. */
  uint32_t files;
} iob_file_options;

/** Set @p options to the defaults; NULL is a no-op. */
IOB_EXPORT void iob_file_options_init(iob_file_options *options);

/** The longest path a request takes, in bytes (with its NUL: PATH_MAX). */
#define IOB_FILE_PATH_MAX 4096
/** What a read request keeps at most when its max_read is 0: 8 MiB. */
#define IOB_FILE_READ_DEFAULT ((size_t)8 << 20)

/** Write to a temporary file beside the path (".iobound-" and 64 random
 *  bits, created with O_EXCL | O_NOFOLLOW), then rename it to the path:
 *  a reader sees the old file or the new one whole, never a part, and a
 *  failure, or a stop before the rename, leaves the old one as it was
 *  (the temporary is removed). A failure's message names the path, and
 *  the temporary where it failed on it. The
 *  new file has the request's permissions, not the old file's.
 *  IOB_FILE_WRITE only. */
#define IOB_FILE_ATOMIC (1u << 0)
/** fsync the file before closing it, so that the operation ends once the
 *  bytes are on the disk, not only in the page cache; with
 *  IOB_FILE_ATOMIC, the directory too after the rename, so that the new
 *  name is on the disk as well. Writes and appends. */
#define IOB_FILE_FSYNC (1u << 1)
/** The path must not exist: the file is created with O_EXCL (with
 *  IOB_FILE_ATOMIC, renamed with RENAME_NOREPLACE), and a name that is
 *  taken fails with UV_EEXIST. A write that fails or is stopped removes
 *  the file it created, so that a retry finds the name free. Writes and
 *  appends. What a directory
 *  other users write to (/tmp) needs: a name taken first by someone
 *  else is never written through. */
#define IOB_FILE_NEW (1u << 2)
/** Follow a symbolic link at the path's last component. Without it an
 *  operation refuses one with UV_ELOOP, so that a link planted in a
 *  shared directory is never written or read through. Not with
 *  IOB_FILE_ATOMIC (a rename replaces a link, never follows it). */
#define IOB_FILE_FOLLOW (1u << 3)
/** Writes and appends: the bytes are borrowed, not copied at submit;
 *  they must stay as they are until the operation settles. For large
 *  writes, where a copy would cost. */
#define IOB_FILE_BORROW (1u << 4)

/**
 * A file operation your application names: the input (iob_task.input) of
 * an iob_kind_file task, in an open batch. The path and bytes are copied
 * when it is submitted (the bytes not with IOB_FILE_BORROW), so the
 * request may go at once. Zero it, then fill in what you need.
 */
typedef struct iob_file_request {
  /** IOB_FILE_WRITE (0), IOB_FILE_APPEND or IOB_FILE_READ. */
  iob_file_mode mode;
  /** IOB_FILE_* flags; a read takes IOB_FILE_FOLLOW only. */
  unsigned flags;
  /** The file, absolute or relative to the working directory; shorter
   *  than IOB_FILE_PATH_MAX. */
  const char *path;
  /** Writes and appends: the bytes (NULL only with len 0), and how many,
   *  at most IOB_FILE_SIZE_MAX_KIB KiB (1 GiB). */
  const void *data;
  size_t len; /**< see data. */
  /** Reads: the most bytes to read into memory, at most 1 GiB; 0 for
   *  IOB_FILE_READ_DEFAULT. A larger file fails with UV_EFBIG once more
   *  than that was read (a size from statx is only a guess: /proc says 0,
   *  /sys 4096). */
  size_t max_read;
  /** A new file's permission bits, less the umask (0: 0666). An existing
   *  file keeps its own, except under IOB_FILE_ATOMIC. */
  unsigned permissions;
} iob_file_request;

/** What a read request hands back (iob_outcome.result): the file's bytes
 *  and a NUL after them, so that a text file is a C string. The batch
 *  frees it; take data for yourself by setting it to NULL. */
typedef struct iob_file_result {
  char *data;
  size_t len; /**< bytes read, without the NUL. */
} iob_file_result;

/**
 * How the loop styles' file operations reach the disk in this process
 * now: "io_uring" (the kernel's asynchronous I/O, no thread: iobound built
 * with liburing, a kernel that has io_uring and lets the process use it,
 * and IOBOUND_IO_URING not "0" in the environment), or "pool" (each
 * operation one job on libuv's thread pool). A batch that cannot make its
 * ring when it needs one (out of file descriptors or locked memory) uses
 * the pool, whatever this says. The thread styles make blocking calls on
 * their own threads either way.
 * @return a static string; never NULL.
 */
IOB_EXPORT const char *iob_file_engine(void);

/**
 * Make a target for files in @p directory, which must exist. In read mode
 * it writes its files there now (files x size_kib KiB, blocking the
 * caller), named after the process, 64 random bits and the file's
 * number, created as iob_kind_file creates files, and
 * iob_file_target_destroy() removes them.
 * @param[out] target receives the target; NULL gives IOB_EINVAL.
 * @param[in] directory where the files go; NULL or "" gives IOB_EINVAL.
 * @param[in] options NULL for the defaults.
 * @return 0; IOB_EINVAL as above or for an unknown mode; IOB_ERANGE for
 *         size_kib 0 or above IOB_FILE_SIZE_MAX_KIB, or (read mode) files
 *         0 or above IOB_FILE_FILES_MAX; UV_ENAMETOOLONG for a directory
 *         name longer than IOB_FILE_DIR_MAX; the libuv code of stat()
 *         for a directory that cannot be found (UV_ENOENT, UV_EACCES...);
 *         UV_ENOTDIR for one that is not a directory; in read mode, the
 *         code of the write that failed (UV_ENOSPC, UV_EACCES...,
 *         UV_EEXIST if a name was taken, having removed what it wrote);
 *         IOB_ENOMEM. On error *target is NULL.
 */
IOB_EXPORT int iob_file_target_create(iob_file_target **target,
                                      const char *directory,
                                      const iob_file_options *options);

/**
 * Free a target, removing a read target's files; NULL is a no-op.
 * @return 0; IOB_EBUSY while a running batch uses it (nothing is freed):
 *         a batch uses its target from iob_batch_start() until its
 *         callback runs.
 */
IOB_EXPORT int iob_file_target_destroy(iob_file_target *target);

/**
 * Files on disk. With an iob_file_request as its input, an operation does
 * what the request says: write, append or read the file it names (its
 * value the bytes moved; a read's result an iob_file_result); the target
 * is not used and may be NULL. Without one, what its iob_file_target
 * says (the config's target: a batch that is not open needs one):
 * write mode, each operation creates a file of its own in the directory,
 * named after the process and 64 random bits ("iobound-PID-RANDOM",
 * which no one can predict), writes it, fsyncs it if asked, closes and
 * removes it, so a batch leaves nothing behind, even cancelled; read
 * mode, operation i reads the target's file i % files to its end.
 *
 * Safe in a directory other users write to (/tmp): every file created
 * under a name of iobound's (a target's, an atomic write's temporary) is
 * created with O_EXCL | O_NOFOLLOW, so it is never a file, link or FIFO
 * that was there; every open refuses a symbolic link at the last
 * component (UV_ELOOP) unless IOB_FILE_FOLLOW says otherwise; a name
 * that may exist is opened with O_NONBLOCK and used only if it is a
 * regular file, so an operation never waits on a FIFO someone put there
 * (UV_EFTYPE; a write to one no one reads, UV_ENXIO; UV_EISDIR for a
 * directory), nor for the break of a lease another process holds on the
 * file (UV_EAGAIN: try again). Writes and reads move at most 1 MiB at a
 * time.
 *
 * On the loop styles the calls go to the kernel's io_uring, a ring per
 * batch and loop, without a thread; or, where iob_file_engine() says
 * "pool", each operation is one job on libuv's thread pool, whose 4
 * threads it shares with the pool style, uv_queue_work() and every
 * uv_fs_*() call of the process (docs/real-io.md). On the thread styles
 * the same calls, blocking. The operation's duration is not used.
 * Statuses: 0; the libuv code of the call that failed (UV_EACCES,
 * UV_ENOENT, UV_ENOTDIR, UV_ENOSPC, UV_EDQUOT, UV_EIO, UV_EEXIST,
 * UV_ELOOP, UV_EISDIR, UV_EFTYPE, UV_EFBIG for a file over max_read...),
 * with a message "cannot STEP PATH: REASON" (STEP: open, write, read,
 * fsync, close, rename, remove, "fsync the directory of");
 * IOB_EINVAL for a task with neither input nor target; IOB_ECANCELED and
 * IOB_ETIMEDOUT: a job still queued on the pool is taken off it; a call
 * in flight cannot be interrupted, so it finishes, and the operation
 * then closes what it opened and removes what it created (an atomic
 * write's temporary, an IOB_FILE_NEW file; never a file it did not
 * create) before it settles. An atomic write whose rename was done when
 * the stop came cannot be undone: it is recorded with the stop's reason
 * all the same, but its value is the bytes written and its message
 * "replaced PATH before the stop".
 * A target's read of a file shorter than size_kib reads short. Bad
 * requests are refused by iob_batch_submit(), nothing kept: IOB_EINVAL
 * for a NULL or empty path, an unknown mode or flag, permissions above
 * 07777, NULL data with a length, IOB_FILE_ATOMIC with an append or
 * IOB_FILE_FOLLOW, a read with a flag other than IOB_FILE_FOLLOW;
 * UV_ENAMETOOLONG for a path of IOB_FILE_PATH_MAX bytes or more;
 * IOB_ERANGE for len or max_read above 1 GiB.
 */
IOB_EXPORT extern const iob_kind iob_kind_file;

#ifdef __cplusplus
}
#endif

#endif /* IOBOUND_H */
