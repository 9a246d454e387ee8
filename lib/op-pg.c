/* Built-in operations that query PostgreSQL through libpq, one connection
 * per operation.
 *
 * On the loop styles, libpq's asynchronous API: PQconnectStart() and
 * PQconnectPoll() to connect, then PQsendQuery(), PQconsumeInput(),
 * PQisBusy() and PQgetResult(), each step run when a uv_poll_t says the
 * socket is ready. While connecting, libpq may close its socket and open
 * another (trying the next address), even under the same number: after
 * every PQconnectPoll() the poll is stopped, which forgets the old socket,
 * and started again on PQsocket(), on a new handle if the number changed.
 *
 * On the thread styles, the blocking PQconnectdb() and PQexec(). */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "iobound.h"

typedef struct pg_op pg_op;

struct iob_pg_target {
  char *conninfo;
  char *query;
  uint32_t count;
  pg_op **ops;   /* operations in flight on the loop, by index */
  char **errors; /* each operation's message, or NULL */
};

struct pg_op {
  iob_batch *batch;
  iob_pg_target *target;
  uint32_t index;
  PGconn *conn;
  uv_poll_t *poll; /* on `fd`; allocated: it outlives the op to close */
  int fd;
  bool connecting;
  int status; /* the first failure among the query's results */
};

int iob_pg_available(void) { return 1; }

/* ---- the target ---------------------------------------------------------- */

int iob_pg_target_create(iob_pg_target **target, const char *conninfo,
                         const char *query) {
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
  if (t->conninfo == NULL || t->query == NULL) {
    iob_pg_target_destroy(t);
    return IOB_ENOMEM;
  }
  *target = t;
  return 0;
}

static void free_errors(iob_pg_target *t) {
  for (uint32_t i = 0; t->errors != NULL && i < t->count; i++)
    free(t->errors[i]);
  free(t->errors);
  t->errors = NULL;
}

void iob_pg_target_destroy(iob_pg_target *target) {
  if (target == NULL)
    return;
  free_errors(target);
  free(target->ops);
  free(target->conninfo);
  free(target->query);
  free(target);
}

const char *iob_pg_error(const iob_pg_target *target, uint32_t index) {
  if (target == NULL || target->errors == NULL || index >= target->count)
    return NULL;
  return target->errors[index];
}

/* Keep operation `index`'s message (the first one), without the newline
 * libpq ends it with. Each operation writes only its own slot. */
static void set_error(iob_pg_target *t, uint32_t index, const char *message) {
  if (message == NULL || t->errors[index] != NULL)
    return;
  size_t len = strlen(message);
  while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == ' '))
    len--;
  char *copy = malloc(len + 1);
  if (copy == NULL)
    return;
  memcpy(copy, message, len);
  copy[len] = '\0';
  t->errors[index] = copy;
}

/* libpq prints the server's notices on stderr by default; a library
 * stays quiet. (A lost connection's reason comes as an error anyway.) */
static void ignore_notice(void *arg, const char *message) {}

static bool result_ok(const PGresult *res) {
  ExecStatusType s = PQresultStatus(res);
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ||
         s == PGRES_EMPTY_QUERY;
}

/* ---- on the loop: libpq's asynchronous API ------------------------------- */

static void free_handle(uv_handle_t *handle) { free(handle); }

/* Settle the operation: stop polling before libpq closes the socket. */
static void op_end(pg_op *op, int status, const char *message) {
  iob_pg_target *t = op->target;
  set_error(t, op->index, message);
  t->ops[op->index] = NULL;
  if (op->poll != NULL)
    uv_close((uv_handle_t *)op->poll, free_handle);
  PQfinish(op->conn);
  iob_batch *batch = op->batch;
  uint32_t index = op->index;
  free(op);
  iob_op_done(batch, index, status); /* may end the batch */
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
    int err = uv_poll_init(iob_batch_loop(op->batch), op->poll, fd);
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
      PQsendQuery(op->conn, op->target->query) == 0) {
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
    op_end(op, err, NULL);
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
    if (!result_ok(res) && op->status == 0) {
      op->status = UV_EIO;
      set_error(op->target, op->index, PQresultErrorMessage(res));
    }
    PQclear(res);
  }
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  pg_op *op = handle->data;
  if (status < 0)
    op_end(op, status, NULL);
  else if (op->connecting)
    connect_step(op);
  else
    query_step(op, events);
}

static int pg_start(iob_batch *batch, uint32_t index) {
  iob_pg_target *t = iob_batch_op_data(batch);
  if (index >= t->count)
    return IOB_EINVAL;
  pg_op *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return IOB_ENOMEM;
  op->conn = PQconnectStart(t->conninfo);
  if (op->conn == NULL) {
    free(op);
    return IOB_ENOMEM;
  }
  if (PQstatus(op->conn) == CONNECTION_BAD) {
    set_error(t, index, PQerrorMessage(op->conn));
    PQfinish(op->conn);
    free(op);
    return UV_ECONNREFUSED;
  }
  PQsetNoticeProcessor(op->conn, ignore_notice, NULL);
  op->batch = batch;
  op->target = t;
  op->index = index;
  op->connecting = true;
  /* Before the first PQconnectPoll(), act as if it asked to write. */
  int err = watch(op, UV_WRITABLE);
  if (err != 0) {
    if (op->poll != NULL)
      uv_close((uv_handle_t *)op->poll, free_handle);
    PQfinish(op->conn);
    free(op);
    return err;
  }
  t->ops[index] = op;
  return 0;
}

static void pg_cancel(iob_batch *batch, uint32_t index) {
  iob_pg_target *t = iob_batch_op_data(batch);
  if (index < t->count && t->ops[index] != NULL)
    op_end(t->ops[index], IOB_ECANCELED, NULL);
}

/* ---- on a thread: libpq's blocking API ------------------------------------ */

static int pg_blocking(void *data, uint32_t index) {
  iob_pg_target *t = data;
  if (index >= t->count)
    return IOB_EINVAL;
  PGconn *conn = PQconnectdb(t->conninfo);
  if (conn == NULL)
    return IOB_ENOMEM;
  int status = 0;
  if (PQstatus(conn) != CONNECTION_OK) {
    set_error(t, index, PQerrorMessage(conn));
    status = UV_ECONNREFUSED;
  } else {
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    PGresult *res = PQexec(conn, t->query);
    if (res == NULL || !result_ok(res)) {
      status = PQstatus(conn) == CONNECTION_BAD ? UV_ECONNRESET : UV_EIO;
      set_error(t, index,
                res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    }
    PQclear(res);
  }
  PQfinish(conn);
  return status;
}

/* ---- the configuration --------------------------------------------------- */

int iob_pg_use(iob_config *config, iob_pg_target *target) {
  if (config == NULL || target == NULL || config->count == 0)
    return IOB_EINVAL;
  if (config->count > IOB_COUNT_MAX)
    return IOB_E2BIG;
  pg_op **ops = calloc(config->count, sizeof(*ops));
  char **errors = calloc(config->count, sizeof(*errors));
  if (ops == NULL || errors == NULL) {
    free(ops);
    free(errors);
    return IOB_ENOMEM;
  }
  free_errors(target);
  free(target->ops);
  target->ops = ops;
  target->errors = errors;
  target->count = config->count;
  config->work = IOB_WORK_USER;
  config->start = pg_start;
  config->blocking = pg_blocking;
  config->cancel = pg_cancel;
  config->op_data = target;
  if (config->thread_stack_size < 256 * 1024)
    config->thread_stack_size = 256 * 1024;
  return 0;
}
