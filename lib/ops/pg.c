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
 * would otherwise block its thread.
 *
 * libpq enforces the connection's connect_timeout only in its blocking
 * connect (PQconnectdb()); with PQconnectStart() and PQconnectPoll() the
 * caller must. Both styles do, by libpq's rules: a uv_timer_t on the loop,
 * a bound on each poll() on a thread. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iobound/pg.h"
#include "target.h"

struct iob_pg_target {
  iob__users users; /* first: see target.h */
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

/* connect_timeout, as libpq's blocking connect applies it: each address
 * of each host it tries gets `seconds`, counted from when it moved there. */
typedef struct pg_clock {
  int seconds;    /* 0: no connect_timeout, wait as long as the op may */
  bool placed;    /* `where` names an attempt */
  uint64_t where; /* the host, port and address of the attempt timed */
} pg_clock;

/* An operation's state on the loop. */
typedef struct pg_op {
  iob_op *op;
  PGconn *conn;
  uv_poll_t *poll;   /* on `fd`; allocated: it outlives the op to close */
  uv_timer_t *timer; /* connect_timeout while connecting; allocated too */
  pg_clock clock;
  int fd; /* the poll's: a duplicate of libpq's socket, ours to close */
  bool connecting;
  int status; /* the first failure among the query's results */
  bool said;  /* it has its message */
} pg_op;

/* ---- the target ---------------------------------------------------------- */

static void target_free(void *p) {
  iob_pg_target *target = p;
  free(target->conninfo);
  free(target->query);
  free(target);
}

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
    target_free(t);
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

int iob_pg_target_destroy(iob_pg_target *target) {
  return iob__target_destroy(target, target_free);
}

static int pg_check(const iob_config *config) {
  return config->target != NULL ? 0 : IOB_EINVAL;
}

/* ---- a batch's pool of connections ----------------------------------------- */

static int pool_open(iob_batch *batch, const void *target, void *shared) {
  (void)batch;
  pg_pool *p = shared;
  if (uv_mutex_init(&p->lock) != 0)
    return IOB_ENOMEM;
  p->made = true;
  iob__target_hold(target);
  return 0;
}

static void pool_close(iob_batch *batch, const void *target, void *shared) {
  (void)batch;
  pg_pool *p = shared;
  if (!p->made)
    return;
  for (uint32_t k = 0; k < p->nidle; k++)
    PQfinish(p->idle[k]);
  free(p->idle);
  uv_mutex_destroy(&p->lock);
  *p = (pg_pool){0};
  iob__target_release(target); /* last: nothing reads the target after */
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

/* ---- connect_timeout, which libpq leaves to PQconnectPoll()'s caller ----- */

/* An integer option as libpq reads one (pqParseIntParam()): decimal,
 * blanks around it allowed, nothing else. */
static bool parse_int(const char *text, int *value) {
  char *end;
  errno = 0;
  long n = strtol(text, &end, 10);
  if (end == text || errno != 0 || n < INT_MIN || n > INT_MAX)
    return false;
  while (isspace((unsigned char)*end))
    end++;
  *value = (int)n;
  return *end == '\0';
}

/* Say `what` went wrong with the connection attempt after what libpq has
 * said of it: "connection to server at ..., port ... failed: " for this
 * attempt, after any earlier host's failure, as libpq's own words would
 * be. When that is long, only its last line is kept: it names the server
 * the attempt was on. */
static void say_after_libpq(iob_op *op, bool *said, PGconn *conn,
                            const char *what) {
  const char *before = PQerrorMessage(conn);
  if (strlen(before) > 400) {
    const char *line = strrchr(before, '\n');
    before = line != NULL ? line + 1 : "";
  }
  char text[512];
  snprintf(text, sizeof(text), "%.400s%.100s", before, what);
  explain(op, said, text);
}

/* The attempt ran out of time, where libpq's blocking connect would say
 * "timeout expired". */
static void say_timed_out(iob_op *op, bool *said, PGconn *conn, int seconds) {
  char what[80];
  snprintf(what, sizeof(what),
           "connection attempt timed out after %d s (connect_timeout)",
           seconds);
  say_after_libpq(op, said, conn, what);
}

/* The connection's connect_timeout, from its options as libpq resolved
 * them (the string, the service file, PGCONNECT_TIMEOUT). As libpq's
 * blocking connect: 0 or less, or none, means no limit, and 1 means 2
 * ("to prevent possibly waiting hardly-at-all"); a value that is not an
 * integer fails the connection, with libpq's words. */
static int clock_init(pg_clock *clock, PGconn *conn, iob_op *op, bool *said) {
  *clock = (pg_clock){0};
  PQconninfoOption *opts = PQconninfo(conn);
  if (opts == NULL)
    return IOB_ENOMEM;
  int err = 0;
  for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
    if (strcmp(o->keyword, "connect_timeout") != 0 || o->val == NULL)
      continue;
    int seconds;
    if (!parse_int(o->val, &seconds)) {
      char what[120];
      snprintf(what, sizeof(what),
               "invalid integer value \"%.40s\" for connection option "
               "\"connect_timeout\"",
               o->val);
      say_after_libpq(op, said, conn, what);
      err = UV_ECONNREFUSED;
    } else if (seconds > 0) {
      clock->seconds = seconds < 2 ? 2 : seconds;
    }
    break;
  }
  PQconninfoFree(opts);
  return err;
}

/* FNV-1a over a string and its terminator, so "ab","c" and "a","bc"
 * differ. */
static uint64_t hash_in(uint64_t h, const char *text) {
  const char *c = text != NULL ? text : "";
  do {
    h = (h ^ (unsigned char)*c) * 1099511628211u;
  } while (*c++ != '\0');
  return h;
}

/* Whether libpq has moved to another host or address since the clock was
 * last placed (or it never was); if so, place it there. libpq restarts
 * its clock on the same events (connectDBComplete(): whichhost or
 * whichaddr changed), not when it reconnects to the same address (to
 * retry without SSL, say). Seen from outside, an attempt is its host,
 * port and address (PQhostaddr()); two entries of the host list that
 * read alike look like one. */
static bool clock_moved(pg_clock *clock, const PGconn *conn) {
  uint64_t h = 14695981039346656037u;
  h = hash_in(h, PQhost(conn));
  h = hash_in(h, PQport(conn));
  h = hash_in(h, PQhostaddr(conn));
  bool moved = !clock->placed || h != clock->where;
  clock->placed = true;
  clock->where = h;
  return moved;
}

/* ---- on the loop: libpq's asynchronous API ------------------------------- */

static void free_handle(uv_handle_t *handle) { free(handle); }

/* Connected, or over: connect_timeout no longer applies. */
static void clock_stop(pg_op *p) {
  if (p->timer != NULL)
    uv_close((uv_handle_t *)p->timer, free_handle);
  p->timer = NULL;
}

/* Stop polling, and close the duplicate the poll was on. */
static void unwatch(pg_op *p) {
  if (p->poll == NULL)
    return;
  uv_close((uv_handle_t *)p->poll, free_handle); /* stops it, at once */
  close(p->fd);
  p->poll = NULL;
  p->fd = -1;
}

/* Let go of the loop's handles, before libpq closes the socket. */
static void release_handles(pg_op *p) {
  unwatch(p);
  clock_stop(p);
}

/* Settle the operation. */
static void op_end(pg_op *p, int status, const char *message) {
  iob_op *op = p->op;
  explain(op, &p->said, message);
  release_handles(p);
  /* Kept only after a query that ran its course, all results read. */
  if (status == 0 && !p->connecting)
    pool_give(op, p->conn);
  else
    PQfinish(p->conn);
  p->conn = NULL;
  iob_op_done(op, status); /* may end the batch */
}

static void on_poll(uv_poll_t *handle, int status, int events);

/* Whether descriptors a and b are one socket. */
static bool same_socket(int a, int b) {
  struct stat sa, sb;
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

/* Wait for `events` on the connection's socket, as it is now.
 *
 * While it connects, libpq may close its socket and open another (the
 * next host or address) inside PQconnectPoll(), and another thread may
 * get the old number for a socket of its own at once. A poll on libpq's
 * number would then stop, or watch, that thread's socket. So the poll
 * is on a duplicate of ours, which keeps the old socket until we let it
 * go, and a new socket is told by its identity, not its number. */
static int watch(pg_op *op, int events) {
  int fd = PQsocket(op->conn);
  if (fd < 0)
    return UV_EBADF;
  if (op->poll != NULL && op->connecting && !same_socket(op->fd, fd))
    unwatch(op);
  if (op->poll == NULL) {
    int mine = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (mine < 0)
      return uv_translate_sys_error(errno);
    op->poll = malloc(sizeof(*op->poll));
    int err = op->poll == NULL
                  ? IOB_ENOMEM
                  : uv_poll_init(iob_batch_loop(op->op->batch), op->poll, mine);
    if (err != 0) {
      free(op->poll);
      op->poll = NULL;
      close(mine);
      return err;
    }
    op->poll->data = op;
    op->fd = mine;
  }
  return uv_poll_start(op->poll, events, on_poll);
}

static void on_connect_timeout(uv_timer_t *timer) {
  pg_op *p = timer->data;
  say_timed_out(p->op, &p->said, p->conn, p->clock.seconds);
  op_end(p, IOB_ETIMEDOUT, NULL);
}

/* Give the attempt libpq is on its connect_timeout, from now, if it is a
 * new one (another host or address); an attempt that goes on keeps the
 * time it had. */
static int clock_arm(pg_op *p) {
  if (p->clock.seconds == 0 || !clock_moved(&p->clock, p->conn))
    return 0;
  uv_loop_t *loop = iob_batch_loop(p->op->batch);
  if (p->timer == NULL) {
    p->timer = malloc(sizeof(*p->timer));
    if (p->timer == NULL)
      return IOB_ENOMEM;
    uv_timer_init(loop, p->timer); /* cannot fail */
    p->timer->data = p;
  }
  uv_update_time(loop); /* the timer counts from the loop's clock */
  return uv_timer_start(p->timer, on_connect_timeout,
                        (uint64_t)p->clock.seconds * 1000, 0);
}

static void send_query(pg_op *op) {
  op->connecting = false;
  clock_stop(op);
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
  if (err == 0)
    err = clock_arm(op);
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
  int err = clock_init(&p->clock, p->conn, op, &p->said);
  /* Before the first PQconnectPoll(), act as if it asked to write. */
  if (err == 0)
    err = watch(p, UV_WRITABLE);
  if (err == 0)
    err = clock_arm(p);
  if (err != 0) {
    release_handles(p);
    PQfinish(p->conn);
    return err;
  }
  return 0;
}

static void pg_stop(iob_op *op) { op_end(op->state, IOB_ECANCELED, NULL); }

/* ---- on a thread: the same calls, each wait a poll() --------------------- */

/* A cancel is noticed within this many ms; a timeout, on time. */
#define SLICE_MS 250

/* What wait_for() returns when the attempt's connect_timeout ran out: not
 * a status, for the caller to say so first. */
#define CLOCK_RAN_OUT 1

/* How long one poll() may sleep, in ms: a slice, and no longer than the
 * operation has left nor than until `until_ns` (0: none), rounded up so
 * that it does not wake just before. */
static int slice_ms(const iob_op *op, uint64_t until_ns, uint64_t now_ns) {
  int64_t ms = SLICE_MS;
  int64_t left = iob_op_remaining_ms(op);
  if (left >= 0 && left < ms)
    ms = left;
  if (until_ns != 0) {
    int64_t clock_ms = (int64_t)((until_ns - now_ns + 999999) / 1000000);
    if (clock_ms < ms)
      ms = clock_ms;
  }
  return (int)ms;
}

/* Wait until the connection's socket is ready for `events`: until the
 * timeout at the latest, and until `until_ns` (uv_hrtime(); 0: none),
 * a slice at a time, so that a cancel is noticed too. 0, CLOCK_RAN_OUT,
 * or why the operation stops. */
static int wait_for(PGconn *conn, short events, iob_op *op, uint64_t until_ns) {
  for (;;) {
    int stop = iob_op_stopping(op);
    if (stop != 0)
      return stop;
    uint64_t now = uv_hrtime();
    if (until_ns != 0 && now >= until_ns)
      return CLOCK_RAN_OUT;
    struct pollfd p = {.fd = PQsocket(conn), .events = events};
    int n = poll(&p, 1, slice_ms(op, until_ns, now));
    if (n > 0 || (n < 0 && errno != EINTR))
      return 0; /* ready, or in error: libpq says which */
  }
}

/* Connect as libpq's blocking connect does (connectDBComplete()): wait
 * for what PQconnectPoll() asks, writing first, each new host or address
 * with connect_timeout from then. */
static int connect_here(PGconn *conn, iob_op *op, bool *said) {
  pg_clock clock;
  int err = clock_init(&clock, conn, op, said);
  if (err != 0)
    return err;
  uint64_t until = 0;
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  for (;;) {
    if (state == PGRES_POLLING_OK)
      return 0;
    if (state != PGRES_POLLING_READING && state != PGRES_POLLING_WRITING)
      return UV_ECONNREFUSED;
    if (clock.seconds != 0 && clock_moved(&clock, conn))
      until = uv_hrtime() + (uint64_t)clock.seconds * 1000000000u;
    short events = state == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    int stop = wait_for(conn, events, op, until);
    if (stop == CLOCK_RAN_OUT) {
      say_timed_out(op, said, conn, clock.seconds);
      return IOB_ETIMEDOUT;
    }
    if (stop != 0)
      return stop;
    state = PQconnectPoll(conn);
  }
}

/* Send the query and read every result: the worst one is the status. */
static int query_here(PGconn *conn, iob_op *op, bool *said) {
  if (PQsetnonblocking(conn, 1) != 0 || !PQsendQuery(conn, query_of(op)))
    return UV_ECONNRESET;
  int more, status = 0;
  while ((more = PQflush(conn)) == 1) {
    int stop = wait_for(conn, POLLIN | POLLOUT, op, 0);
    if (stop != 0)
      return stop;
  }
  if (more < 0)
    return UV_ECONNRESET;
  for (;;) {
    while (PQisBusy(conn)) {
      int stop = wait_for(conn, POLLIN, op, 0);
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
  int status = 0;
  if (fresh)
    status = PQstatus(conn) == CONNECTION_BAD ? UV_ECONNREFUSED
                                              : connect_here(conn, op, &said);
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
