/*
 * iobound-pg: PostgreSQL queries as an iobound kind of operation, in a
 * library of its own (libiobound-pg, pkg-config iobound-pg) so that only
 * the programs that query PostgreSQL load libpq.
 */
#ifndef IOBOUND_PG_H
#define IOBOUND_PG_H

#include "../iobound.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A PostgreSQL database and the query each operation runs: a libpq
 * connection string and SQL, copied, and nothing else, so any number of
 * batches may use one target at once.
 */
typedef struct iob_pg_target iob_pg_target;

/**
 * The query of an iob_pg_target, on a connection of its own per
 * operation. On the loop styles libpq's asynchronous API, driven by a
 * uv_poll_t on the connection's socket (no thread); on the thread styles
 * the same calls, each wait a poll() that ends at the timeout or soon
 * after a cancel (run() needs a 256 KiB stack, which the kind asks for).
 *
 * The connection's connect_timeout (from the connection string, the
 * service file or PGCONNECT_TIMEOUT) holds in every style, as libpq's
 * blocking connect applies it, which its asynchronous API leaves to the
 * caller: each host and address libpq tries gets that many seconds (2
 * for 1; none for 0 or less), counted from when libpq moves to it. When
 * they run out the operation ends with IOB_ETIMEDOUT and libpq's words
 * for the attempt followed by "connection attempt timed out after N s
 * (connect_timeout)". Unlike PQconnectdb(), it does not go on to the next
 * host then (libpq's asynchronous API has no way to skip one); a host
 * that fails sooner still hands over to the next, on a clock of its own.
 * The operation's timeout and the batch's deadline apply as well,
 * whichever comes first.
 *
 * Statuses: 0; UV_ECONNREFUSED when the connection failed (for any
 * reason but connect_timeout; a connect_timeout that is not an integer
 * too, as in libpq), the server's SQLSTATE, if it answered, at the end of
 * the message ("FATAL:  too many connections for role "x" (SQLSTATE
 * 53300)"); UV_EIO when the server reported an error for the
 * query, or answered what the kind does not expect; IOB_ENOTSUP for a
 * query that begins a COPY (the kind sends and reads no COPY data);
 * UV_ECONNRESET when the connection was lost during the query;
 * IOB_ECANCELED; IOB_ETIMEDOUT, at the timeout (no message) or at
 * connect_timeout (a message); IOB_ENOMEM. libpq's message (without its
 * final newline) is the operation's message and the number of rows its
 * value (iob_batch_outcome()). A cancelled operation closes its
 * connection; the server notices when the query ends. One connection per
 * operation, or, with iob_pg_target_create_pooled(), reused within each
 * batch.
 *
 * Its target is an iob_pg_target, or an iob_pg_pool (connections that
 * outlive the batch). Its input, optional with a target, is an
 * iob_pg_query (SQL with parameters), copied at submit: IOB_EINVAL
 * without SQL, IOB_ERANGE past IOB_PG_PARAMS_MAX. Through a pool or with
 * a query, the rows come back as an iob_pg_result. A server's error says
 * its SQLSTATE: "ERROR: division by zero (SQLSTATE 22012)". A pool
 * serves the loop it was made on and the thread styles: under
 * iob_style_loops an operation naming one is refused at submit
 * (IOB_ENOTSUP), and on another loop it fails with IOB_ENOTSUP. Under a
 * retry policy (iob_retry) it retries what may pass next time, by its
 * SQLSTATE (40001 serialization failure, 40P01 deadlock, class 08
 * connection exceptions, 57P01-57P03 a server shutting down or starting,
 * 53300 too many connections) or a connection lost on the way (a libuv
 * code such as UV_ECONNRESET); not an error in the query.
 */
IOB_EXPORT extern const iob_kind iob_kind_pg;

/**
 * Create a target: @p conninfo is a libpq connection string
 * ("host=/run/postgresql dbname=app"), @p query any SQL (e.g.
 * "SELECT pg_sleep(0.2)"). Both are copied.
 * @return 0; IOB_EINVAL for NULL or a connection string libpq cannot
 *         parse; IOB_ENOMEM. On error *target is NULL.
 */
IOB_EXPORT int iob_pg_target_create(iob_pg_target **target,
                                    const char *conninfo, const char *query);

/**
 * Create a target as iob_pg_target_create() does, whose connections are
 * pooled: each batch keeps the connections its queries opened, once a
 * query ran its course outside a transaction, and gives them to its
 * later queries. So a batch of M queries with at most N in flight (its
 * max_in_flight, or a shared_limit of N) opens at most N connections, and
 * pays for connecting N times, not M. They are closed when the batch
 * ends; each batch has its own. A query that failed closes its
 * connection; a connection keeps its session's settings for the next
 * query, and one the server closed while idle fails the next query
 * (UV_ECONNRESET).
 * @return as iob_pg_target_create().
 */
IOB_EXPORT int iob_pg_target_create_pooled(iob_pg_target **target,
                                           const char *conninfo,
                                           const char *query);

/**
 * A pool of connections to one database that outlives batches, as a
 * node-postgres Pool or Go's sql.DB: every batch given it (as its
 * operations' target) takes a connection for each query and gives it
 * back, connected, for the next, in this batch or another. It opens no
 * more than its most, and a query that finds every connection in use
 * waits for one (its timeout and cancels still apply). On the loop
 * styles it serves the loop it was made on; on the thread styles, any
 * thread.
 */
typedef struct iob_pg_pool iob_pg_pool;

/** How a pool behaves; zero is the default for every member. */
typedef struct iob_pg_pool_options {
  /** Connections kept open once made, however long idle; 0. */
  uint32_t min_connections;
  /** The most open at once; 0: 10. At least min_connections. Above what
   *  the server allows: a connection it refuses for too many (SQLSTATE
   *  53300) while the pool has others costs no query, which waits for one
   *  of those, and for a second the pool makes no more than it has. */
  uint32_t max_connections;
  /** An idle connection past min_connections closes after this many ms
   *  (when the pool is next used); 0: 60,000. */
  uint32_t idle_ms;
  /** Non-zero: hand out idle connections unchecked. By default each is
   *  checked first (still connected, outside a transaction, nothing
   *  waiting on its socket but what libpq can read), so that a server
   *  that restarted costs a new connection, not a failed query. */
  int no_check;
} iob_pg_pool_options;

/**
 * Make a pool of connections for @p conninfo (a libpq connection
 * string, copied); none is opened until a query needs it.
 * @param loop the loop whose batches' queries wait in it on the loop
 *        styles; NULL for the thread styles only.
 * @return 0; IOB_EINVAL for NULL @p pool or @p conninfo, or a connection
 *         string libpq cannot parse; IOB_ERANGE for a max_connections
 *         below min_connections; IOB_ENOMEM. On error *pool is NULL.
 */
IOB_EXPORT int iob_pg_pool_create(iob_pg_pool **pool, uv_loop_t *loop,
                                  const char *conninfo,
                                  const iob_pg_pool_options *options);

/**
 * Close a pool's connections and free it; NULL is a no-op. Its handle on
 * the loop closes too: run the loop once more before closing it.
 * @return 0; IOB_EBUSY while a running batch uses it (nothing is done).
 */
IOB_EXPORT int iob_pg_pool_destroy(iob_pg_pool *pool);

/** How many connections a pool has open (idle or in use) and idle now;
 *  either may be NULL. Any thread. @return 0; IOB_EINVAL for NULL. */
IOB_EXPORT int iob_pg_pool_counts(iob_pg_pool *pool, uint32_t *open,
                                  uint32_t *idle);

/**
 * One operation's query: the input of an iob_kind_pg task, copied when
 * submitted. Parameters are sent apart from the SQL ($1, $2...), as text,
 * never formatted into it: a NULL one is SQL NULL. Its sql replaces an
 * iob_pg_target's query; with a pool as the target it is required.
 */
typedef struct iob_pg_query {
  const char *sql;           /**< one statement when it has params. */
  const char *const *params; /**< nparams of them, each text or NULL. */
  uint32_t nparams;          /**< at most IOB_PG_PARAMS_MAX. */
  /** Non-zero: a prepared statement, kept by each connection. The first
   *  time the SQL runs on a connection it is prepared there (named after
   *  the SQL), and from then executed prepared: the server parses and
   *  plans it once per connection. One statement, as with params. */
  int prepare;
} iob_pg_query;

/** The most parameters a query may have (PostgreSQL's own limit). */
#define IOB_PG_PARAMS_MAX 65535

/**
 * The rows a query returned (its last statement's), as text: the
 * operation's result when it ran through a pool or with an iob_pg_query.
 */
typedef struct iob_pg_result {
  uint32_t rows, columns;
  const char *const *names; /**< the columns' names. */
  /** rows * columns values, row by row; NULL for SQL NULL. */
  const char *const *values;
} iob_pg_result;

/** The value at @p row, @p column of @p result: NULL for SQL NULL, a
 *  NULL result, or a place past the last row or column. */
IOB_EXPORT const char *iob_pg_value(const iob_pg_result *result, uint32_t row,
                                    uint32_t column);

/**
 * Free a target; NULL is a no-op.
 * @return 0; IOB_EBUSY while a running batch uses it (nothing is freed):
 *         a batch uses its target from iob_batch_start() until its
 *         callback runs.
 */
IOB_EXPORT int iob_pg_target_destroy(iob_pg_target *target);

#ifdef __cplusplus
}
#endif

#endif /* IOBOUND_PG_H */
