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
 * too, as in libpq); UV_EIO when the server reported an error for the
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
