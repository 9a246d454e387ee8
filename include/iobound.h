/*
 * iobound: run many I/O-bound operations at once on libuv, in the
 * concurrency style you choose, and measure how each one ran.
 *
 * A batch runs `count` operations, numbered 0..count-1, in one style and
 * records for each operation when it was queued, started and finished.
 * Start a batch on your own uv_loop_t (iob_batch_start) or run it to the
 * end on a private loop (iob_run). The user guide is docs/guide.md.
 *
 * Errors are negative numbers. Where libuv has a code that fits, iobound
 * uses the same value, so an application can handle both the same way.
 *
 * Threads and lifetime, the rules in one place:
 * - A batch runs once, on the loop it was started on, and the thread that
 *   called iob_batch_start() is taken to be that loop's thread. While it
 *   runs, iob_batch_cancel(), iob_op_done() and iob_batch_progress() must
 *   be called from that thread; from another they return IOB_EPERM.
 * - Free a batch only when it is not running: before iob_batch_start(), or
 *   once its callback has run (inside the callback is fine). Otherwise
 *   iob_batch_free() returns IOB_EBUSY and frees nothing.
 * - The batch callback runs exactly once, from the loop, after every
 *   operation has settled; never from inside an iobound call.
 */
#ifndef IOBOUND_H
#define IOBOUND_H

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
#define IOB_VERSION_MINOR 1
#define IOB_VERSION_PATCH 0

/** @return the library's version as "MAJOR.MINOR.PATCH"; never NULL. */
IOB_EXPORT const char *iob_version(void);

/* ---- Errors ------------------------------------------------------------ */

#define IOB_EINVAL UV_EINVAL       /**< NULL or meaningless argument. */
#define IOB_ENOMEM UV_ENOMEM       /**< an allocation failed. */
#define IOB_E2BIG UV_E2BIG         /**< count above IOB_COUNT_MAX. */
#define IOB_ERANGE UV_ERANGE       /**< a duration or size out of range. */
#define IOB_ENOTSUP UV_ENOTSUP     /**< unknown style or kind of work. */
#define IOB_EBUSY UV_EBUSY         /**< the batch is started or running. */
#define IOB_EALREADY UV_EALREADY   /**< too late: the thread pool runs. */
#define IOB_EAGAIN UV_EAGAIN       /**< the system refused a thread. */
#define IOB_ECANCELED UV_ECANCELED /**< the operation was cancelled. */
#define IOB_ETIMEDOUT UV_ETIMEDOUT /**< the operation timed out. */
#define IOB_EPERM UV_EPERM         /**< called from the wrong thread. */
#define IOB_EIO UV_EIO             /**< writing an export failed. */

/**
 * Describe an error code in words, in iobound's terms.
 * @param[in] err a negative code from iobound, or any libuv error code.
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

/* ---- Styles ------------------------------------------------------------ */

/** How a batch runs its operations. */
typedef enum iob_style {
  /** One after another on the loop: never more than one in flight. */
  IOB_STYLE_SEQUENTIAL = 0,
  /** All on one event loop: a wait is a timer, no thread is used. */
  IOB_STYLE_LOOP,
  /** Each operation is a uv_queue_work job on libuv's thread pool. */
  IOB_STYLE_POOL,
  /** One OS thread of its own per operation in flight (the tutorial's). */
  IOB_STYLE_THREADS,
  IOB_STYLE_COUNT_ /**< number of styles; not a style. */
} iob_style;

/** @return the style's short name ("loop"), or NULL for an unknown style. */
IOB_EXPORT const char *iob_style_name(iob_style style);

/**
 * Parse a style's short name ("sequential", "loop", "pool", "threads").
 * @param[in] name the name; NULL gives IOB_EINVAL.
 * @param[out] style where to store the style; NULL gives IOB_EINVAL.
 * @return 0, or IOB_ENOTSUP for a name that is not a style.
 */
IOB_EXPORT int iob_style_parse(const char *name, iob_style *style);

/* ---- Kinds of work ----------------------------------------------------- */

/** What each operation does. */
typedef enum iob_work {
  /** A simulated I/O wait: a timer on the loop, a sleep on a thread. */
  IOB_WORK_WAIT = 0,
  /** CPU-bound work: compute for the duration, counted in the thread's
   *  own CPU time, without sleeping. On the loop this blocks the loop, so
   *  operations run one after another. */
  IOB_WORK_CPU,
  /** Your own operation: iob_config's start and/or blocking functions. */
  IOB_WORK_USER,
  IOB_WORK_COUNT_ /**< number of kinds; not a kind. */
} iob_work;

/** @return the kind's short name ("wait", "cpu", "user"), or NULL. */
IOB_EXPORT const char *iob_work_name(iob_work work);

/**
 * Parse a kind of work's short name.
 * @return 0; IOB_EINVAL for a NULL argument; IOB_ENOTSUP for other names.
 */
IOB_EXPORT int iob_work_parse(const char *name, iob_work *work);

typedef struct iob_batch iob_batch;

/**
 * Start operation @p index of @p batch without blocking, on the batch's
 * loop (iob_batch_loop()), for the loop and sequential styles. Return 0 and
 * call iob_op_done() later, once; or return a negative code and do not
 * call it: that code becomes the operation's status.
 */
typedef int (*iob_start_fn)(iob_batch *batch, uint32_t index);

/**
 * Run operation @p index to its end, blocking the calling thread, for the
 * thread styles (and, on the loop styles when no start function is given,
 * on the loop thread, blocking it). Runs on any thread: touch no batch.
 * @param data the config's op_data, or its data if op_data is NULL.
 * @return 0 or a negative code, kept as the operation's status.
 */
typedef int (*iob_blocking_fn)(void *data, uint32_t index);

/**
 * Ask operation @p index, started by your iob_start_fn, to stop soon: the
 * batch was cancelled or the operation timed out. Stop the I/O and call
 * iob_op_done() as usual (the operation is in flight until you do).
 */
typedef void (*iob_cancel_fn)(iob_batch *batch, uint32_t index);

typedef struct iob_record iob_record;

/**
 * Operation @p index has settled; @p record holds its final timing and
 * status. Runs on the loop thread; may call iob_batch_cancel().
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
typedef struct iob_config {
  iob_style style;      /**< default IOB_STYLE_LOOP. */
  uint32_t count;       /**< number of operations, 1..IOB_COUNT_MAX. */
  uint64_t duration_ms; /**< each operation's simulated wait, in ms. */
  /**
   * Optional per-operation waits: count entries, read while the batch runs
   * (the caller keeps the array alive). When set, duration_ms is ignored.
   */
  const uint32_t *durations_ms;
  /**
   * The most operations in flight at once, like a semaphore; 0 (the
   * default) is no limit. The next operation starts when one ends, at O(1)
   * cost. The sequential style is the limit 1.
   */
  uint32_t max_in_flight;
  iob_work work;            /**< default IOB_WORK_WAIT. */
  iob_start_fn start;       /**< IOB_WORK_USER on the loop styles. */
  iob_blocking_fn blocking; /**< IOB_WORK_USER on the thread styles. */
  iob_cancel_fn cancel;     /**< optional: stops a started operation. */
  iob_op_cb on_op;          /**< optional: called as each op settles. */
  /**
   * 0: none. An operation not finished this many ms after it started is
   * reported IOB_ETIMEDOUT: a wait on the loop ends then; a start
   * function's operation is asked to stop (cancel); blocking work cannot
   * be interrupted, so its result is discarded when it arrives.
   */
  uint64_t timeout_ms;
  /** Non-zero: the first operation that fails cancels the rest, and its
   *  status becomes the batch's. */
  int fail_fast;
  /**
   * IOB_STYLE_THREADS: each thread's stack in bytes (0: 64 KiB, so that
   * ten thousand threads fit; rounded up to the system's minimum).
   */
  size_t thread_stack_size;
  /**
   * IOB_STYLE_THREADS, when the system refuses a thread: false (default)
   * ends the batch with IOB_EAGAIN; true runs on with the threads it got,
   * lowering the limit to the number of threads running then.
   */
  int threads_adapt;
  void *data; /**< yours; read it back with iob_batch_data(). */
  /**
   * The operations' own data: given to `blocking`, and read by `start` and
   * `cancel` with iob_batch_op_data(). NULL (the default): `data`. Built-in
   * operations (iob_tcp_use(), iob_pg_use()) set it and leave `data` yours.
   */
  void *op_data;
} iob_config;

/** Set every field of @p config to its default; NULL is a no-op. */
IOB_EXPORT void iob_config_init(iob_config *config);

/* ---- Batches ----------------------------------------------------------- */

/** Called once when every operation of @p batch has settled. */
typedef void (*iob_batch_cb)(iob_batch *batch, int status);

/**
 * Create a batch from a configuration (copied; durations_ms is not).
 * All of the per-operation state is allocated here, in one block.
 * @param[out] batch receives the new batch; NULL gives IOB_EINVAL.
 * @param[in] config what to run; NULL gives IOB_EINVAL.
 * @return 0; IOB_EINVAL for count 0 or IOB_WORK_USER without a
 *         function, IOB_E2BIG for a count above IOB_COUNT_MAX, IOB_ERANGE
 *         for a duration above IOB_DURATION_MAX_MS, IOB_ENOTSUP for an
 *         unknown style or kind of work, or IOB_WORK_USER on a thread style
 *         without a blocking function; IOB_ENOMEM when memory runs out.
 *         On error *batch is NULL.
 */
IOB_EXPORT int iob_batch_create(iob_batch **batch, const iob_config *config);

/**
 * Start every operation of @p batch on @p loop and return at once; @p cb
 * runs from @p loop when the batch is done. A batch runs only once.
 * Once @p cb has run, the batch holds no libuv handle or request: free
 * it and your loop closes cleanly.
 * @return 0; IOB_EINVAL if an argument is NULL; IOB_EBUSY if the batch
 *         was started before. On error nothing was started.
 */
IOB_EXPORT int iob_batch_start(iob_batch *batch, uv_loop_t *loop,
                               iob_batch_cb cb);

/**
 * Free a batch that is not running (never started, or whose callback
 * has run; freeing from inside that callback is allowed).
 * @param[in] batch the batch; NULL is a no-op.
 * @return 0, or IOB_EBUSY if the batch is running (nothing is freed).
 */
IOB_EXPORT int iob_batch_free(iob_batch *batch);

/**
 * Cancel a running batch: operations not started never start, waits on
 * the loop end now, jobs still queued on the pool are cancelled
 * (uv_cancel), start-function operations are asked to stop (cancel), and
 * blocking work already running finishes and is recorded as it ends.
 * Cancelled operations get IOB_ECANCELED. The batch callback then runs
 * once, with IOB_ECANCELED (or the first failure's status, for fail_fast).
 * @return 0, also for a batch already cancelled, finished or never
 *         started; IOB_EINVAL for NULL; IOB_EPERM from another thread.
 */
IOB_EXPORT int iob_batch_cancel(iob_batch *batch);

/** @return the config's data pointer, or NULL for a NULL batch. */
IOB_EXPORT void *iob_batch_data(const iob_batch *batch);

/** @return the config's op_data, or its data if op_data is NULL; NULL for
 *  a NULL batch. */
IOB_EXPORT void *iob_batch_op_data(const iob_batch *batch);

/** @return the loop the batch runs on, or NULL if not started or NULL. */
IOB_EXPORT uv_loop_t *iob_batch_loop(const iob_batch *batch);

/**
 * Settle operation @p index, started by your iob_start_fn, with @p status
 * (0 or a negative code). Call it once, from the loop's thread. An
 * operation that timed out is recorded IOB_ETIMEDOUT whatever @p status.
 * @return 0; IOB_EINVAL for a NULL batch, an index out of range or an
 *         operation that is not in flight (never started, or settled);
 *         IOB_EPERM from another thread.
 */
IOB_EXPORT int iob_op_done(iob_batch *batch, uint32_t index, int status);

/** Counters of a batch, readable at any time. */
typedef struct iob_progress {
  uint32_t waiting;   /**< not yet handed to the style. */
  uint32_t in_flight; /**< handed to the style, not yet settled. */
  uint32_t done;      /**< settled, with any status. */
  uint32_t failed;    /**< settled with a status other than 0. */
} iob_progress;

/**
 * Read a batch's counters; cheap, for progress displays.
 * @return 0; IOB_EINVAL if an argument is NULL; IOB_EPERM from a thread
 *         other than the running batch's loop thread.
 */
IOB_EXPORT int iob_batch_progress(const iob_batch *batch,
                                  iob_progress *progress);

/**
 * Run a batch to the end on a private loop, blocking the calling thread:
 * the C form of the tutorial's run_with_multiple_threads().
 * @param[out] batch receives the finished batch, to read and then free
 *             with iob_batch_free(); NULL gives IOB_EINVAL.
 * @param[in] config what to run, as for iob_batch_create().
 * @return 0 or an error as for iob_batch_create(); on error *batch is NULL.
 */
IOB_EXPORT int iob_run(iob_batch **batch, const iob_config *config);

/* ---- Measurements ------------------------------------------------------ */

/**
 * One operation's timing. Times are nanoseconds since the batch started
 * (uv_hrtime(), monotonic); queued <= started <= finished once finished.
 * An operation that never started has all three equal to when it was
 * settled, and the status IOB_ECANCELED.
 */
struct iob_record {
  uint64_t queued_ns;   /**< when it was handed to its style. */
  uint64_t started_ns;  /**< when it began to run (a thread picked it up). */
  uint64_t finished_ns; /**< when it was over. */
  int32_t status;       /**< 0, or a negative error code. */
  uint32_t worker;      /**< 0: the loop thread; else a thread's number. */
};

/** A summary of a finished batch. */
typedef struct iob_report {
  iob_style style;
  uint32_t count;          /**< operations in the batch. */
  uint32_t failed;         /**< operations whose status is not 0. */
  uint32_t peak_in_flight; /**< most operations running at one moment. */
  /** Threads the run could use: 0 for the loop styles, the pool's size,
   *  or the most threads of its own the threads style had at once. */
  uint32_t threads;
  uint32_t workers_used;   /**< distinct threads that ran an operation. */
  uint32_t cores;          /**< CPU cores the machine offered. */
  int status;              /**< the batch's status, as given to the cb. */
  iob_work work;
  uint64_t elapsed_ns;     /**< start to the last operation's end. */
  /** CPU time the whole process used while the batch ran (user + sys). */
  uint64_t cpu_ns;
  /** Sum of the operations' own run times (finished - started). */
  double work_ns;
  /** work_ns / elapsed_ns: 1 for sequential, about count when all overlap. */
  double speedup;
} iob_report;

/**
 * Summarise a finished batch.
 * @param[in] batch the batch; NULL gives IOB_EINVAL.
 * @param[out] report filled in; NULL gives IOB_EINVAL.
 * @return 0, or IOB_EBUSY if the batch has not finished.
 */
IOB_EXPORT int iob_batch_report(const iob_batch *batch, iob_report *report);

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
 * Estimate how many more threads this process may create: the least of
 * RLIMIT_NPROC, the kernel's threads-max and half of vm.max_map_count,
 * less the threads the system runs already. A guide for limits, not a
 * promise.
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
 * comes too late and has no effect. Not thread-safe (it calls setenv).
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

/**
 * Write finished batches as a Chrome Trace Event Format JSON file, for
 * ui.perfetto.dev or chrome://tracing: a process per batch, a track per
 * operation holding its queued time and its run (complete "X" events, in
 * microseconds), and a counter of the operations in flight.
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
 * name lookup while a batch runs). Each operation connects, sends the line
 * "wait MS\n" and expects "done MS\n" back, where MS is the operation's
 * duration; iobound-slow-service answers so after MS ms. One connection
 * per operation. A target serves one batch at a time.
 */
typedef struct iob_tcp_target iob_tcp_target;

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

/** Free a target no batch is running with; NULL is a no-op. */
IOB_EXPORT void iob_tcp_target_destroy(iob_tcp_target *target);

/**
 * Make @p config's operations requests to @p target: sets work
 * (IOB_WORK_USER), start (libuv TCP on the loop, no thread), blocking
 * (plain sockets, for the thread styles), cancel (closes the connection)
 * and op_data (the target; config->data stays yours). Call it after
 * setting count and duration_ms (or durations_ms): each operation asks
 * for its duration.
 * Statuses: 0; a libuv code such as UV_ECONNREFUSED, UV_ECONNRESET or
 * UV_EMFILE (out of file descriptors); UV_EOF if the service hung up
 * without answering; UV_EPROTO for an answer that is not "done MS".
 * Programs that use it should ignore SIGPIPE, as libuv programs do.
 * @return 0; IOB_EINVAL for NULL or count 0; IOB_ERANGE for a duration
 *         above IOB_DURATION_MAX_MS; IOB_ENOMEM.
 */
IOB_EXPORT int iob_tcp_use(iob_config *config, iob_tcp_target *target);

/* ---- Real I/O: a query on PostgreSQL ----------------------------------- */

/**
 * A PostgreSQL database and the query each operation runs on a connection
 * of its own. On the loop styles: libpq's asynchronous API, driven by a
 * uv_poll_t on the connection's socket (no thread). On the thread styles:
 * PQconnectdb() and PQexec(), blocking. A target serves one batch at a
 * time, and keeps each operation's error message until its next batch.
 */
typedef struct iob_pg_target iob_pg_target;

/** @return 1 if iobound was built with libpq, else 0 (and the iob_pg_
 *  functions return IOB_ENOTSUP). */
IOB_EXPORT int iob_pg_available(void);

/**
 * Create a target: @p conninfo is a libpq connection string
 * ("host=/run/postgresql dbname=app"), @p query any SQL (e.g.
 * "SELECT pg_sleep(0.2)"). Both are copied.
 * @return 0; IOB_EINVAL for NULL or a connection string libpq cannot
 *         parse; IOB_ENOMEM; IOB_ENOTSUP without libpq. On error *target
 *         is NULL.
 */
IOB_EXPORT int iob_pg_target_create(iob_pg_target **target,
                                    const char *conninfo, const char *query);

/** Free a target no batch is running with; NULL is a no-op. */
IOB_EXPORT void iob_pg_target_destroy(iob_pg_target *target);

/**
 * Make @p config's operations run the target's query: sets work, start,
 * blocking, cancel and op_data (the target; config->data stays yours), and
 * raises thread_stack_size to 256 KiB, which libpq needs. Call it after
 * setting count. Statuses: 0; UV_ECONNREFUSED when the connection failed
 * (whatever the reason: see the message); UV_EIO when the server reported
 * an error for the query; UV_ECONNRESET when the connection was lost
 * during the query; IOB_ENOMEM. A cancelled operation closes its
 * connection; the server notices when the query ends.
 * @return 0; IOB_EINVAL for NULL or count 0; IOB_ENOMEM; IOB_ENOTSUP
 *         without libpq.
 */
IOB_EXPORT int iob_pg_use(iob_config *config, iob_pg_target *target);

/**
 * The error message of operation @p index of the target's last batch
 * (libpq's, without its final newline), read once the batch is over.
 * @return the message, owned by the target; NULL if the operation had
 *         none, or for NULL or an index out of range.
 */
IOB_EXPORT const char *iob_pg_error(const iob_pg_target *target,
                                    uint32_t index);

#ifdef __cplusplus
}
#endif

#endif /* IOBOUND_H */
