/* PostgreSQL queries through libpq, one connection per operation: the
 * kind iob_kind_pg, in a library of its own (libiobound-pg) so that only
 * the programs that use it load libpq.
 *
 * On the loop styles, libpq's asynchronous API: PQconnectStart() and
 * PQconnectPoll() to connect, then PQsendQuery(), PQconsumeInput(),
 * PQisBusy() and PQgetResult(), each step run when a uv_poll_t says the
 * socket is ready. While connecting, libpq may close its socket and open
 * another (trying the next address), even under the same number: after
 * every PQconnectPoll() the poll is stopped, which forgets the old socket,
 * and started again on PQsocket(), on a new handle if the number changed.
 *
 * On the thread styles, the same non-blocking calls, each wait a poll()
 * bounded by the timeout, so that a timeout or a cancel ends a query that
 * would otherwise block its thread. */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iobound/pg.h"

struct iob_pg_target {
  char *conninfo;
  char *query;
  bool pooled; /* each batch keeps its connections for its next queries */
};

/* A batch's idle connections, when its target is pooled: any thread of
 * the batch's may take one or give one back. */
typedef struct pg_pool {
  bool made;
  uv_mutex_t lock;
  PGconn **idle;
  uint32_t nidle, room;
} pg_pool;

/* An operation's state on the loop. */
typedef struct pg_op {
  iob_op *op;
  PGconn *conn;
  uv_poll_t *poll; /* on `fd`; allocated: it outlives the op to close */
  int fd;
  bool connecting;
  int status; /* the first failure among the query's results */
  bool said;  /* it has its message */
} pg_op;

/* ---- the target ---------------------------------------------------------- */

static int create(iob_pg_target **target, const char *conninfo,
                  const char *query, bool pooled) {
  if (target == NULL)
    return IOB_EINVAL;
  *target = NULL;
  if (conninfo == NULL || query == NULL)
    return IOB_EINVAL;
  char *why = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
  PQfreemem(why);
  if (opts == NULL)
    return IOB_EINVAL;
  PQconninfoFree(opts);
  iob_pg_target *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return IOB_ENOMEM;
  t->conninfo = strdup(conninfo);
  t->query = strdup(query);
  t->pooled = pooled;
  if (t->conninfo == NULL || t->query == NULL) {
    iob_pg_target_destroy(t);
    return IOB_ENOMEM;
  }
  *target = t;
  return 0;
}

int iob_pg_target_create(iob_pg_target **target, const char *conninfo,
                         const char *query) {
  return create(target, conninfo, query, false);
}

int iob_pg_target_create_pooled(iob_pg_target **target, const char *conninfo,
                                const char *query) {
  return create(target, conninfo, query, true);
}

void iob_pg_target_destroy(iob_pg_target *target) {
  if (target == NULL)
    return;
  free(target->conninfo);
  free(target->query);
  free(target);
}

static int pg_check(const iob_config *config) {
  return config->target != NULL ? 0 : IOB_EINVAL;
}

/* ---- a batch's pool of connections ----------------------------------------- */

static int pool_open(iob_batch *batch, void *shared) {
  (void)batch;
  pg_pool *p = shared;
  if (uv_mutex_init(&p->lock) != 0)
    return IOB_ENOMEM;
  p->made = true;
  return 0;
}

static void pool_close(iob_batch *batch, void *shared) {
  (void)batch;
  pg_pool *p = shared;
  if (!p->made)
    return;
  for (uint32_t k = 0; k < p->nidle; k++)
    PQfinish(p->idle[k]);
  free(p->idle);
  uv_mutex_destroy(&p->lock);
  *p = (pg_pool){0};
}

/* An idle connection of the batch's, or NULL: connect anew. */
static PGconn *pool_take(const iob_op *op) {
  const iob_pg_target *t = op->target;
  pg_pool *p = op->shared;
  if (!t->pooled)
    return NULL;
  uv_mutex_lock(&p->lock);
  PGconn *conn = p->nidle > 0 ? p->idle[--p->nidle] : NULL;
  uv_mutex_unlock(&p->lock);
  return conn;
}

/* The query is over: keep the connection for the batch's next query if
 * it is pooled and fit for one (connected, outside a transaction), else
 * close it. */
static void pool_give(const iob_op *op, PGconn *conn) {
  const iob_pg_target *t = op->target;
  pg_pool *p = op->shared;
  bool keep = t->pooled && PQstatus(conn) == CONNECTION_OK &&
              PQtransactionStatus(conn) == PQTRANS_IDLE;
  if (keep) {
    uv_mutex_lock(&p->lock);
    if (p->nidle == p->room) {
      uint32_t room = p->room ? 2 * p->room : 8;
      PGconn **more = realloc(p->idle, room * sizeof(*more));
      if (more != NULL) {
        p->idle = more;
        p->room = room;
      }
    }
    keep = p->nidle < p->room; /* no memory: close it instead */
    if (keep)
      p->idle[p->nidle++] = conn;
    uv_mutex_unlock(&p->lock);
  }
  if (!keep)
    PQfinish(conn);
}

static const char *query_of(const iob_op *op) {
  const iob_pg_target *t = op->target;
  return t->query;
}

/* Keep libpq's message (the first one) as the operation's, without the
 * newline libpq ends it with. */
static void explain(iob_op *op, bool *said, const char *message) {
  if (message == NULL || *said)
    return;
  size_t len = strlen(message);
  while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == ' '))
    len--;
  char text[512];
  snprintf(text, sizeof(text), "%.*s", (int)len, message);
  *said = iob_op_set_message(op, text) == 0;
}

/* The rows a result brought, as the operation's value. */
static void count_rows(iob_op *op, const PGresult *res) {
  if (PQresultStatus(res) == PGRES_TUPLES_OK)
    iob_op_set_value(op, (uint64_t)PQntuples(res));
}

/* libpq prints the server's notices on stderr by default; a library
 * stays quiet. (A lost connection's reason comes as an error anyway.) */
static void ignore_notice(void *arg, const char *message) {}

/* What one result of the query means for the operation: 0 (its rows are
 * the operation's value), IOB_ENOTSUP for a COPY, or UV_EIO for an error
 * or anything else unexpected; every failure gets words. A COPY is
 * refused rather than waited on: the server would wait for data iobound
 * never sends, or send rows it never reads, and libpq would hand back the
 * same COPY result for ever. */
static int judge(iob_op *op, bool *said, const PGresult *res) {
  ExecStatusType s = PQresultStatus(res);
  switch (s) {
  case PGRES_COMMAND_OK:
  case PGRES_TUPLES_OK:
  case PGRES_EMPTY_QUERY:
    count_rows(op, res);
    return 0;
  case PGRES_COPY_OUT:
  case PGRES_COPY_IN:
  case PGRES_COPY_BOTH:
    explain(op, said, "the query began a COPY, which iob_kind_pg does not "
                      "run: it sends no COPY data and reads none");
    return IOB_ENOTSUP;
  default: {
    const char *message = PQresultErrorMessage(res);
    char text[128];
    if (message == NULL || message[0] == '\0') {
      snprintf(text, sizeof(text), "unexpected result from the server: %s",
               PQresStatus(s));
      message = text;
    }
    explain(op, said, message);
    return UV_EIO;
  }
  }
}

/* ---- on the loop: libpq's asynchronous API ------------------------------- */

static void free_handle(uv_handle_t *handle) { free(handle); }

/* Settle the operation: stop polling before libpq closes the socket. */
static void op_end(pg_op *p, int status, const char *message) {
  iob_op *op = p->op;
  explain(op, &p->said, message);
  if (p->poll != NULL)
    uv_close((uv_handle_t *)p->poll, free_handle);
  p->poll = NULL;
  /* Kept only after a query that ran its course, all results read. */
  if (status == 0 && !p->connecting)
    pool_give(op, p->conn);
  else
    PQfinish(p->conn);
  p->conn = NULL;
  iob_op_done(op, status); /* may end the batch */
}

static void on_poll(uv_poll_t *handle, int status, int events);

/* Wait for `events` on the connection's socket, as it is now. */
static int watch(pg_op *op, int events) {
  int fd = PQsocket(op->conn);
  if (fd < 0)
    return UV_EBADF;
  if (op->poll != NULL && op->connecting) {
    uv_poll_stop(op->poll); /* the socket may be new, whatever its number */
    if (fd != op->fd) {
      uv_close((uv_handle_t *)op->poll, free_handle);
      op->poll = NULL;
    }
  }
  if (op->poll == NULL) {
    op->poll = malloc(sizeof(*op->poll));
    if (op->poll == NULL)
      return IOB_ENOMEM;
    int err = uv_poll_init(iob_batch_loop(op->op->batch), op->poll, fd);
    if (err != 0) {
      free(op->poll);
      op->poll = NULL;
      return err;
    }
    op->poll->data = op;
    op->fd = fd;
  }
  return uv_poll_start(op->poll, events, on_poll);
}

static void send_query(pg_op *op) {
  op->connecting = false;
  if (PQsetnonblocking(op->conn, 1) != 0 ||
      PQsendQuery(op->conn, query_of(op->op)) == 0) {
    op_end(op, UV_ECONNRESET, PQerrorMessage(op->conn));
    return;
  }
  int more = PQflush(op->conn); /* 1: the query is not all sent yet */
  int err = more < 0 ? UV_ECONNRESET
                     : watch(op, UV_READABLE | (more ? UV_WRITABLE : 0));
  if (err != 0)
    op_end(op, err, PQerrorMessage(op->conn));
}

static void connect_step(pg_op *op) {
  int err;
  switch (PQconnectPoll(op->conn)) {
  case PGRES_POLLING_READING:
    err = watch(op, UV_READABLE);
    break;
  case PGRES_POLLING_WRITING:
    err = watch(op, UV_WRITABLE);
    break;
  case PGRES_POLLING_OK:
    send_query(op);
    return;
  default:
    op_end(op, UV_ECONNREFUSED, PQerrorMessage(op->conn));
    return;
  }
  if (err != 0)
    op_end(op, err, PQerrorMessage(op->conn));
}

/* Read what arrived; once every result is in, settle. */
static void query_step(pg_op *op, int events) {
  if (events & UV_WRITABLE) {
    int more = PQflush(op->conn);
    if (more < 0 || (more == 0 && watch(op, UV_READABLE) != 0)) {
      op_end(op, UV_ECONNRESET, PQerrorMessage(op->conn));
      return;
    }
  }
  if (!(events & UV_READABLE))
    return;
  if (PQconsumeInput(op->conn) == 0) {
    op_end(op, UV_ECONNRESET, PQerrorMessage(op->conn));
    return;
  }
  while (!PQisBusy(op->conn)) {
    PGresult *res = PQgetResult(op->conn);
    if (res == NULL) { /* the query is over */
      int status = op->status;
      if (status != 0 && PQstatus(op->conn) == CONNECTION_BAD)
        status = UV_ECONNRESET;
      op_end(op, status, NULL);
      return;
    }
    int status = judge(op->op, &op->said, res);
    PQclear(res);
    if (status == IOB_ENOTSUP) { /* a COPY never ends by itself */
      op_end(op, status, NULL);
      return;
    }
    if (op->status == 0)
      op->status = status;
  }
}

/* The socket failed (libuv says UV_EBADF for any error on it, and stops
 * polling): libpq reads the real reason, a refused connection or a reset
 * one, with its words, as it does on the thread styles. */
static void socket_failed(pg_op *op, int status) {
  if (op->connecting) {
    connect_step(op);
    return;
  }
  PQconsumeInput(op->conn);
  const char *message = PQerrorMessage(op->conn);
  char text[64];
  if (message == NULL || message[0] == '\0') {
    snprintf(text, sizeof(text), "the connection failed: %s",
             uv_strerror(status));
    message = text;
  }
  op_end(op, UV_ECONNRESET, message);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  pg_op *op = handle->data;
  if (status < 0)
    socket_failed(op, status);
  else if (op->connecting)
    connect_step(op);
  else
    query_step(op, events);
}

static int pg_start(iob_op *op) {
  const iob_pg_target *t = op->target;
  pg_op *p = op->state;
  p->op = op;
  if ((p->conn = pool_take(op)) != NULL) {
    send_query(p); /* connected already; it may settle here */
    return 0;
  }
  p->conn = PQconnectStart(t->conninfo);
  if (p->conn == NULL)
    return IOB_ENOMEM;
  if (PQstatus(p->conn) == CONNECTION_BAD) {
    explain(op, &p->said, PQerrorMessage(p->conn));
    PQfinish(p->conn);
    return UV_ECONNREFUSED;
  }
  PQsetNoticeProcessor(p->conn, ignore_notice, NULL);
  p->connecting = true;
  /* Before the first PQconnectPoll(), act as if it asked to write. */
  int err = watch(p, UV_WRITABLE);
  if (err != 0) {
    if (p->poll != NULL)
      uv_close((uv_handle_t *)p->poll, free_handle);
    PQfinish(p->conn);
    return err;
  }
  return 0;
}

static void pg_stop(iob_op *op) { op_end(op->state, IOB_ECANCELED, NULL); }

/* ---- on a thread: libpq's blocking API ------------------------------------ */

/* A cancel is noticed within this many ms; a timeout, on time. */
#define SLICE_MS 250

/* Wait until the connection's socket is ready for `events`: until the
 * timeout at the latest, and a slice at a time, so that a cancel is
 * noticed too. 0, or why the operation stops. */
static int wait_for(PGconn *conn, short events, iob_op *op) {
  for (;;) {
    int stop = iob_op_stopping(op);
    if (stop != 0)
      return stop;
    int64_t left = iob_op_remaining_ms(op);
    struct pollfd p = {.fd = PQsocket(conn), .events = events};
    int n = poll(&p, 1, left >= 0 && left < SLICE_MS ? (int)left : SLICE_MS);
    if (n > 0 || (n < 0 && errno != EINTR))
      return 0; /* ready, or in error: libpq says which */
  }
}

static int connect_here(PGconn *conn, iob_op *op) {
  for (;;) {
    switch (PQconnectPoll(conn)) {
    case PGRES_POLLING_OK:
      return 0;
    case PGRES_POLLING_READING: {
      int stop = wait_for(conn, POLLIN, op);
      if (stop != 0)
        return stop;
      break;
    }
    case PGRES_POLLING_WRITING: {
      int stop = wait_for(conn, POLLOUT, op);
      if (stop != 0)
        return stop;
      break;
    }
    default:
      return UV_ECONNREFUSED;
    }
  }
}

/* Send the query and read every result: the worst one is the status. */
static int query_here(PGconn *conn, iob_op *op, bool *said) {
  if (PQsetnonblocking(conn, 1) != 0 || !PQsendQuery(conn, query_of(op)))
    return UV_ECONNRESET;
  int more, status = 0;
  while ((more = PQflush(conn)) == 1) {
    int stop = wait_for(conn, POLLIN | POLLOUT, op);
    if (stop != 0)
      return stop;
  }
  if (more < 0)
    return UV_ECONNRESET;
  for (;;) {
    while (PQisBusy(conn)) {
      int stop = wait_for(conn, POLLIN, op);
      if (stop != 0)
        return stop;
      if (!PQconsumeInput(conn))
        return UV_ECONNRESET;
    }
    PGresult *res = PQgetResult(conn);
    if (res == NULL)
      return status;
    int got = judge(op, said, res);
    PQclear(res);
    if (got == IOB_ENOTSUP)
      return got; /* a COPY never ends by itself */
    if (status == 0)
      status = got;
  }
}

/* On a thread: libpq's non-blocking calls, each wait a poll() that ends
 * at the timeout or soon after a cancel, as blocking PQexec() would not. */
static int pg_run(iob_op *op) {
  const iob_pg_target *t = op->target;
  bool said = false;
  PGconn *conn = pool_take(op);
  bool fresh = conn == NULL;
  if (fresh && (conn = PQconnectStart(t->conninfo)) == NULL)
    return IOB_ENOMEM;
  int status = !fresh ? 0
               : PQstatus(conn) == CONNECTION_BAD ? UV_ECONNREFUSED
                                                  : connect_here(conn, op);
  if (status == 0) {
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    status = query_here(conn, op, &said);
    if (status == UV_EIO && PQstatus(conn) == CONNECTION_BAD)
      status = UV_ECONNRESET;
  }
  if (status != 0 && status != IOB_ECANCELED && status != IOB_ETIMEDOUT)
    explain(op, &said, PQerrorMessage(conn));
  if (status == 0)
    pool_give(op, conn);
  else
    PQfinish(conn);
  return status;
}

const iob_kind iob_kind_pg = {
    .name = "pg",
    .op_size = sizeof(pg_op),
    .stack_size = 256 * 1024, /* libpq needs more than the default */
    .check = pg_check,
    .start = pg_start,
    .run = pg_run,
    .stop = pg_stop,
    .batch_size = sizeof(pg_pool),
    .open = pool_open,
    .close = pool_close,
};
