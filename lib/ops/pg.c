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
#include <libpq-events.h>
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

/* What a target is: the second member of both, after the count of users,
 * so that the kind tells a pool given as its target from an
 * iob_pg_target. */
#define PG_TARGET 0x70677467u /* "pgtg" */
#define PG_POOL 0x7067706cu   /* "pgpl" */

struct iob_pg_target {
  iob__users users; /* first: see target.h */
  uint32_t tag;     /* PG_TARGET */
  char *conninfo;
  char *query;
  bool pooled; /* each batch keeps its connections for its next queries */
};

typedef struct pg_op pg_op;

/* An idle connection, and since when (uv_hrtime()). */
typedef struct idle_conn {
  PGconn *conn;
  uint64_t since;
} idle_conn;

/* Connections to one database, handed out and taken back from any thread
 * under the lock: the application's (iob_pg_pool_create()), or a batch's
 * own when its target is pooled (for that batch only, with no most). */
struct iob_pg_pool {
  iob__users users; /* first: see target.h */
  uint32_t tag;     /* PG_POOL */
  char *conninfo;
  uv_loop_t *loop;  /* the loop styles': where its loop queries wait */
  uv_async_t *wake; /* on that loop: a thread gave one back */
  uv_mutex_t lock;
  uv_cond_t freed; /* a connection came back, or closed: threads wait */
  idle_conn *idle; /* oldest first */
  uint32_t nidle, room;
  uint32_t open; /* made (or being made) and not closed */
  uint32_t min, max;
  /* What the server allowed: it refused one more (SQLSTATE 53300) when
   * `ceiling` were open, at `ceiling_ns`. For CEILING_NS after that the
   * pool makes no more, and queries wait for those it has. */
  uint32_t ceiling;
  uint64_t ceiling_ns;
  uint64_t idle_ns; /* UINT64_MAX: never closes one for idling */
  bool check;
  bool resuming;       /* resume_waiters() runs */
  pg_op *first, *last; /* loop queries waiting for a connection */
};

/* The kind's part of a batch: a pool of its own, if its target is
 * pooled. */
typedef struct pg_shared {
  iob_pg_pool *own;
} pg_shared;

/* connect_timeout, as libpq's blocking connect applies it: each address
 * of each host it tries gets `seconds`, counted from when it moved there. */
typedef struct pg_clock {
  int seconds;    /* 0: no connect_timeout, wait as long as the op may */
  bool placed;    /* `where` names an attempt */
  uint64_t where; /* the host, port and address of the attempt timed */
} pg_clock;

/* An operation's state on the loop. */
struct pg_op {
  iob_op *op;
  iob_pg_pool *pool; /* where its connection comes from, or NULL */
  pg_op *next;       /* while it waits in its pool for a connection */
  bool waiting;
  iob_pg_result *rows; /* the last rows its query returned */
  PGconn *conn;
  uv_poll_t *poll;   /* on `fd`; allocated: it outlives the op to close */
  uv_timer_t *timer; /* connect_timeout while connecting; allocated too */
  pg_clock clock;
  int fd; /* the poll's: a duplicate of libpq's socket, ours to close */
  bool connecting;
  int status;     /* the first failure among the query's results */
  bool said;      /* it has its message */
  bool preparing; /* its statement is being prepared, to run next */
};

/* ---- the target ---------------------------------------------------------- */

static void target_free(void *p) {
  iob_pg_target *target = p;
  free(target->conninfo);
  free(target->query);
  free(target);
}

/* Whether libpq can parse a connection string. */
static bool conninfo_ok(const char *conninfo) {
  char *why = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
  PQfreemem(why);
  PQconninfoFree(opts);
  return opts != NULL;
}

static int create(iob_pg_target **target, const char *conninfo,
                  const char *query, bool pooled) {
  if (target == NULL)
    return IOB_EINVAL;
  *target = NULL;
  if (conninfo == NULL || query == NULL)
    return IOB_EINVAL;
  if (!conninfo_ok(conninfo))
    return IOB_EINVAL;
  iob_pg_target *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return IOB_ENOMEM;
  t->tag = PG_TARGET;
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

static bool is_pool(const void *target) {
  return ((const iob_pg_pool *)target)->tag == PG_POOL;
}

/* A pool serves one loop: not the loops style's, which are the batch's
 * own. */
static int pg_check(const iob_config *config) {
  if (config->target == NULL)
    return IOB_EINVAL;
  return is_pool(config->target) &&
                 (iob_style_flags(config->style) & IOB_STYLE_LOOPS)
             ? IOB_ENOTSUP
             : 0;
}

/* ---- pools of connections ----------------------------------------------------- */

/* Whether an idle connection is fit for a query: connected, outside a
 * transaction, and its socket not closed by the server meanwhile (a
 * restart, an idle timeout of the server's), which libpq learns only by
 * reading. */
static bool fit(PGconn *conn) {
  if (PQstatus(conn) != CONNECTION_OK ||
      PQtransactionStatus(conn) != PQTRANS_IDLE)
    return false;
  /* A server that went away may have said why first (a FATAL message),
   * which libpq reads as it would a notice: read on until the socket is
   * quiet, or closed. */
  struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
  for (int reads = 0; reads < 8 && poll(&p, 1, 0) > 0; reads++)
    if (!PQconsumeInput(conn))
      return false;
  return PQstatus(conn) == CONNECTION_OK;
}

/* Under the lock: close idle connections past the least that have idled
 * too long (the oldest are first). */
static void sweep(iob_pg_pool *p, uint64_t now) {
  uint32_t n = 0;
  while (n + p->min < p->nidle && now - p->idle[n].since > p->idle_ns)
    PQfinish(p->idle[n++].conn);
  if (n == 0)
    return;
  memmove(p->idle, p->idle + n, (p->nidle - n) * sizeof(*p->idle));
  p->nidle -= n;
  p->open -= n;
}

/* What pool_take() found. */
enum { TOOK, CONNECT, WAIT };

/* How long a server's "too many connections" holds the pool below its
 * most: then it may open more again, up to its most. */
#define CEILING_NS (UINT64_C(1000) * 1000000)

/* Under the lock: the most connections the pool may have open now. */
static uint32_t most_now(const iob_pg_pool *p, uint64_t now) {
  return p->ceiling != 0 && now - p->ceiling_ns < CEILING_NS ? p->ceiling
                                                             : p->max;
}

/* An idle connection (TOOK, *conn), or leave to connect a new one
 * (CONNECT: it counts as open already), or none (WAIT: at the most),
 * after waiting up to `wait_ns` for one to come back (a thread's
 * query). */
static int pool_take(iob_pg_pool *p, PGconn **conn, uint64_t wait_ns) {
  *conn = NULL;
  uv_mutex_lock(&p->lock);
  int got = WAIT;
  for (int tries = 0; tries < 2 && got == WAIT; tries++) {
    if (tries == 1 &&
        (wait_ns == 0 || uv_cond_timedwait(&p->freed, &p->lock, wait_ns) != 0))
      break;
    uint64_t now = uv_hrtime();
    sweep(p, now);
    while (p->nidle > 0 && got == WAIT) { /* the freshest first */
      PGconn *c = p->idle[--p->nidle].conn;
      if (!p->check || fit(c)) {
        *conn = c;
        got = TOOK;
      } else {
        PQfinish(c);
        p->open--;
      }
    }
    if (got == WAIT && p->open < most_now(p, now)) {
      p->open++;
      got = CONNECT;
    }
  }
  uv_mutex_unlock(&p->lock);
  return got;
}

static void resume_waiters(iob_pg_pool *p);

/* A query is over with conn (NULL: its connection never came to be):
 * keep it for the next if `keep` and it is fit (connected, outside a
 * transaction), else close it. Then whoever waits may go on: a thread,
 * or a loop query, at once if `on_loop` (this is its loop's thread),
 * else when the loop wakes. */
static void pool_give(iob_pg_pool *p, PGconn *conn, bool keep, bool on_loop) {
  keep = keep && conn != NULL && PQstatus(conn) == CONNECTION_OK &&
         PQtransactionStatus(conn) == PQTRANS_IDLE;
  uv_mutex_lock(&p->lock);
  if (keep && p->nidle == p->room) {
    uint32_t room = p->room ? 2 * p->room : 8;
    idle_conn *more = realloc(p->idle, room * sizeof(*more));
    if (more != NULL) {
      p->idle = more;
      p->room = room;
    }
  }
  keep = keep && p->nidle < p->room; /* no memory: close it instead */
  if (keep) {
    p->idle[p->nidle++] = (idle_conn){conn, uv_hrtime()};
  } else {
    if (conn != NULL)
      PQfinish(conn);
    p->open--;
  }
  bool loop_waits = p->first != NULL;
  uv_cond_broadcast(&p->freed);
  uv_mutex_unlock(&p->lock);
  if (loop_waits && on_loop)
    resume_waiters(p);
  else if (loop_waits && p->wake != NULL)
    uv_async_send(p->wake);
}

/* The server refused a connection the pool was making for too many
 * (SQLSTATE 53300). true if the pool has others, which the query may
 * wait for: the refused one is no longer counted, and the pool makes no
 * more than those for a while; false if it has none (the query fails,
 * and gives its place back as any failed one does). */
static bool pool_refused(iob_pg_pool *p) {
  uv_mutex_lock(&p->lock);
  bool others = p->open > 1;
  if (others) {
    p->ceiling = --p->open;
    p->ceiling_ns = uv_hrtime();
  }
  uv_mutex_unlock(&p->lock);
  return others;
}

static void free_handle(uv_handle_t *handle) { free(handle); }

static void on_wake(uv_async_t *wake) { resume_waiters(wake->data); }

static void pool_free(void *arg) {
  iob_pg_pool *p = arg;
  for (uint32_t k = 0; k < p->nidle; k++)
    PQfinish(p->idle[k].conn);
  free(p->idle);
  if (p->wake != NULL)
    uv_close((uv_handle_t *)p->wake, free_handle);
  uv_cond_destroy(&p->freed);
  uv_mutex_destroy(&p->lock);
  free(p->conninfo);
  free(p);
}

/* A pool for conninfo (checked), serving `loop` (NULL: threads only),
 * which wakes its loop's waiting queries from other threads if `wake`. */
static int pool_make(iob_pg_pool **pool, uv_loop_t *loop, const char *conninfo,
                     uint32_t min, uint32_t max, uint64_t idle_ns, bool check,
                     bool wake) {
  *pool = NULL;
  iob_pg_pool *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return IOB_ENOMEM;
  *p = (iob_pg_pool){.tag = PG_POOL,
                     .loop = loop,
                     .min = min,
                     .max = max,
                     .idle_ns = idle_ns,
                     .check = check};
  if (uv_mutex_init(&p->lock) != 0) {
    free(p);
    return IOB_ENOMEM;
  }
  if (uv_cond_init(&p->freed) != 0) {
    uv_mutex_destroy(&p->lock);
    free(p);
    return IOB_ENOMEM;
  }
  int err = (p->conninfo = strdup(conninfo)) == NULL ? IOB_ENOMEM : 0;
  if (err == 0 && wake && loop != NULL) {
    p->wake = malloc(sizeof(*p->wake));
    err = p->wake == NULL ? IOB_ENOMEM : uv_async_init(loop, p->wake, on_wake);
    if (err != 0) {
      free(p->wake);
      p->wake = NULL;
    } else {
      p->wake->data = p;
      uv_unref((uv_handle_t *)p->wake); /* it keeps no loop running */
    }
  }
  if (err != 0) {
    pool_free(p);
    return err;
  }
  *pool = p;
  return 0;
}

int iob_pg_pool_create(iob_pg_pool **pool, uv_loop_t *loop,
                       const char *conninfo, const iob_pg_pool_options *o) {
  static const iob_pg_pool_options defaults = {0};
  if (pool == NULL)
    return IOB_EINVAL;
  *pool = NULL;
  if (o == NULL)
    o = &defaults;
  if (conninfo == NULL)
    return IOB_EINVAL;
  if (!conninfo_ok(conninfo))
    return IOB_EINVAL;
  uint32_t max = o->max_connections ? o->max_connections : 10;
  if (max < o->min_connections)
    return IOB_ERANGE;
  uint64_t idle_ms = o->idle_ms ? o->idle_ms : 60000;
  return pool_make(pool, loop, conninfo, o->min_connections, max,
                   idle_ms * 1000000, !o->no_check, true);
}

int iob_pg_pool_destroy(iob_pg_pool *pool) {
  return iob__target_destroy(pool, pool_free);
}

int iob_pg_pool_counts(iob_pg_pool *pool, uint32_t *open, uint32_t *idle) {
  if (pool == NULL)
    return IOB_EINVAL;
  uv_mutex_lock(&pool->lock);
  if (open != NULL)
    *open = pool->open;
  if (idle != NULL)
    *idle = pool->nidle;
  uv_mutex_unlock(&pool->lock);
  return 0;
}

/* The kind's open(): a pooled target's batch has a pool of its own. */
static int pg_open(iob_batch *batch, const void *target, void *shared) {
  pg_shared *s = shared;
  const iob_pg_target *t = target;
  int err = 0;
  if (!is_pool(target) && t->pooled) {
    bool threads =
        iob_style_flags(iob_batch_style(batch)) & IOB_STYLE_ON_THREADS;
    err = pool_make(&s->own, threads ? NULL : iob_batch_loop(batch),
                    t->conninfo, 0, UINT32_MAX, UINT64_MAX, false, false);
  }
  if (err == 0)
    iob__target_hold(target);
  return err;
}

static void pg_close(iob_batch *batch, const void *target, void *shared) {
  (void)batch;
  pg_shared *s = shared;
  if (s->own != NULL)
    pool_free(s->own);
  s->own = NULL;
  iob__target_release(target); /* last: nothing reads the target after */
}

/* Where operation op's connection comes from: a pool, or NULL (one of
 * its own). */
static iob_pg_pool *pool_of(const iob_op *op) {
  if (is_pool(op->target))
    return (iob_pg_pool *)(uintptr_t)op->target;
  return ((pg_shared *)op->shared)->own;
}

static const char *conninfo_of(const iob_op *op) {
  if (is_pool(op->target))
    return ((const iob_pg_pool *)op->target)->conninfo;
  return ((const iob_pg_target *)op->target)->conninfo;
}

/* ---- the query, copied at submit ------------------------------------------ */

static int query_copy(const void *input, void **out) {
  const iob_pg_query *q = input;
  if (q->sql == NULL || (q->nparams > 0 && q->params == NULL))
    return IOB_EINVAL;
  if (q->nparams > IOB_PG_PARAMS_MAX)
    return IOB_ERANGE;
  size_t text = strlen(q->sql) + 1;
  for (uint32_t k = 0; k < q->nparams; k++)
    text += q->params[k] != NULL ? strlen(q->params[k]) + 1 : 0;
  size_t at = sizeof(*q) + q->nparams * sizeof(char *);
  iob_pg_query *c = malloc(at + text);
  if (c == NULL)
    return IOB_ENOMEM;
  char *w = (char *)c + at;
  const char **params = (const char **)(c + 1);
  for (uint32_t k = 0; k < q->nparams; k++)
    if ((params[k] = q->params[k]) != NULL)
      params[k] = w, w = stpcpy(w, q->params[k]) + 1;
  *c = (iob_pg_query){
      .sql = w, .params = params, .nparams = q->nparams, .prepare = q->prepare};
  strcpy(w, q->sql);
  *out = c;
  return 0;
}

/* Whether the operation's rows come back as its result. */
static bool wants_rows(const iob_op *op) {
  return op->input != NULL || is_pool(op->target);
}

/* ---- prepared statements, kept by each connection --------------------- */

/* What a connection has prepared: its statements' names, as numbers, in
 * the connection's libpq instance data, freed with it. */
typedef struct prepared {
  uint32_t n, room;
  uint64_t names[];
} prepared;

static int on_conn_event(PGEventId id, void *info, void *arg) {
  (void)arg;
  if (id == PGEVT_CONNDESTROY)
    free(PQinstanceData(((PGEventConnDestroy *)info)->conn, on_conn_event));
  return 1;
}

/* The name of a statement, from its SQL (FNV-1a: two statements would
 * need the same 64-bit hash to meet). */
static uint64_t name_of(const char *sql, char text[24]) {
  uint64_t h = 14695981039346656037u;
  for (const char *c = sql; *c != '\0'; c++)
    h = (h ^ (unsigned char)*c) * 1099511628211u;
  snprintf(text, 24, "iob_%016llx", (unsigned long long)h);
  return h;
}

static bool is_prepared(PGconn *conn, uint64_t name) {
  const prepared *p = PQinstanceData(conn, on_conn_event);
  for (uint32_t k = 0; p != NULL && k < p->n; k++)
    if (p->names[k] == name)
      return true;
  return false;
}

/* The connection has prepared `name`: kept with it. false short of
 * memory (the connection must then go: it would prepare it again). */
static bool remember(PGconn *conn, uint64_t name) {
  prepared *p = PQinstanceData(conn, on_conn_event);
  if (p == NULL && !PQregisterEventProc(conn, on_conn_event, "iobound", NULL))
    return false;
  if (p == NULL || p->n == p->room) {
    uint32_t room = p != NULL ? 2 * p->room : 4;
    prepared *more = realloc(p, sizeof(*p) + room * sizeof(p->names[0]));
    if (more == NULL)
      return false;
    if (p == NULL)
      more->n = 0;
    more->room = room;
    p = more;
    PQsetInstanceData(conn, on_conn_event, p);
  }
  p->names[p->n++] = name;
  return true;
}

/* Send the operation's query: its own, with parameters apart, or its
 * target's. A query to prepare that this connection has not prepared is
 * prepared first (*preparing); send_prepared() then runs it. 1 on
 * success, 0 on failure (libpq's). */
static int send_it(PGconn *conn, const iob_op *op, bool *preparing) {
  const iob_pg_query *q = op->input;
  *preparing = false;
  if (q == NULL)
    return PQsendQuery(conn, ((const iob_pg_target *)op->target)->query);
  char name[24];
  if (q->prepare && !is_prepared(conn, name_of(q->sql, name))) {
    *preparing = true;
    return PQsendPrepare(conn, name, q->sql, (int)q->nparams, NULL);
  }
  if (q->prepare)
    return PQsendQueryPrepared(conn, name, (int)q->nparams, q->params, NULL,
                               NULL, 0);
  if (q->nparams == 0) /* (several statements may go in one) */
    return PQsendQuery(conn, q->sql);
  return PQsendQueryParams(conn, q->sql, (int)q->nparams, NULL, q->params, NULL,
                           NULL, 0);
}

/* Its statement is prepared: keep that, and run it. 0, IOB_ENOMEM, or
 * UV_ECONNRESET when libpq could not send. */
static int send_prepared(PGconn *conn, const iob_op *op) {
  const iob_pg_query *q = op->input;
  char name[24];
  if (!remember(conn, name_of(q->sql, name)))
    return IOB_ENOMEM;
  return PQsendQueryPrepared(conn, name, (int)q->nparams, q->params, NULL, NULL,
                             0)
             ? 0
             : UV_ECONNRESET;
}

/* A pool as the target needs a query as the input. */
static int needs_sql(iob_op *op) {
  if (op->input != NULL || !is_pool(op->target))
    return 0;
  iob_op_set_message(op, "no SQL: a pool as the target needs an "
                         "iob_pg_query as the input");
  return IOB_EINVAL;
}

/* ---- rows ------------------------------------------------------------------ */

/* A result's rows and columns as text, in one block. NULL short of
 * memory. */
static iob_pg_result *rows_of(const PGresult *res) {
  uint32_t rows = (uint32_t)PQntuples(res), cols = (uint32_t)PQnfields(res);
  size_t cells = (size_t)rows * cols, text = 0;
  for (uint32_t c = 0; c < cols; c++)
    text += strlen(PQfname(res, (int)c)) + 1;
  for (uint32_t r = 0; r < rows; r++)
    for (uint32_t c = 0; c < cols; c++)
      if (!PQgetisnull(res, (int)r, (int)c))
        text += (size_t)PQgetlength(res, (int)r, (int)c) + 1;
  size_t at = sizeof(iob_pg_result) + (cols + cells) * sizeof(char *);
  iob_pg_result *out = malloc(at + text);
  if (out == NULL)
    return NULL;
  const char **names = (const char **)(out + 1), **values = names + cols;
  char *w = (char *)out + at;
  for (uint32_t c = 0; c < cols; c++)
    names[c] = w, w = stpcpy(w, PQfname(res, (int)c)) + 1;
  for (uint32_t r = 0; r < rows; r++)
    for (uint32_t c = 0; c < cols; c++) {
      const char **v = &values[(size_t)r * cols + c];
      if (PQgetisnull(res, (int)r, (int)c)) {
        *v = NULL;
        continue;
      }
      size_t len = (size_t)PQgetlength(res, (int)r, (int)c);
      memcpy(w, PQgetvalue(res, (int)r, (int)c), len);
      w[len] = '\0';
      *v = w;
      w += len + 1;
    }
  *out = (iob_pg_result){rows, cols, names, values};
  return out;
}

const char *iob_pg_value(const iob_pg_result *r, uint32_t row,
                         uint32_t column) {
  if (r == NULL || row >= r->rows || column >= r->columns)
    return NULL;
  return r->values[(size_t)row * r->columns + column];
}

/* Hand back the rows kept (the last statement's), once the query is
 * over, whatever its status. */
static void hand_back_rows(iob_op *op, iob_pg_result **rows) {
  if (*rows != NULL && iob_op_set_result(op, *rows) != 0)
    free(*rows);
  *rows = NULL;
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

/* Is the line at m (len bytes) a VERBOSE message's location, in any
 * language: "LABEL:  function, file.c:LINE"? */
static bool is_location(const char *m, size_t len) {
  const char *sep = memchr(m, ':', len);
  if (sep == NULL || (size_t)(sep - m) + 3 > len || sep[1] != ' ' ||
      sep[2] != ' ')
    return false;
  size_t end = len;
  while (end > 0 && m[end - 1] >= '0' && m[end - 1] <= '9')
    end--;
  return end < len && end > 2 && m[end - 1] == ':' && m[end - 2] == 'c' &&
         m[end - 3] == '.' && memchr(sep, ',', (size_t)(m + end - sep)) != NULL;
}

/* The SQLSTATE at m[k] of "SEVERITY:  CODE: ": its 5 characters, or 0. */
static bool state_at(const char *m, size_t k, size_t line) {
  return k >= 3 && line - k > 7 && m[k - 1] == ' ' && m[k - 2] == ' ' &&
         m[k - 3] == ':' &&
         strspn(m + k, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") >= 5 &&
         m[k + 5] == ':' && m[k + 6] == ' ';
}

/* Why a connection failed, in libpq's words, the server's SQLSTATE (asked
 * for with PQERRORS_VERBOSE while connecting) moved to the end as in a
 * query's error, its location lines left out: "connection to server ...
 * failed: FATAL:  too many connections for role "x" (SQLSTATE 53300)".
 * *too_many if that SQLSTATE is 53300, however long the message. */
static void connect_error(PGconn *conn, char text[512], bool *too_many) {
  const char *m = PQerrorMessage(conn);
  char state[6] = "";
  size_t n = 0;
  while (*m != '\0') {
    size_t line = strcspn(m, "\n");
    if (!is_location(m, line)) {
      for (size_t k = 0; k < line; k++) {
        if (state[0] == '\0' && state_at(m, k, line)) { /* "53300: " */
          memcpy(state, m + k, 5);
          k += 6;
          continue;
        }
        if (n < 511)
          text[n++] = m[k];
      }
      if (m[line] == '\n' && n < 511)
        text[n++] = '\n';
    }
    m += line + (m[line] == '\n');
  }
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
    n--;
  if (state[0] != '\0' && n > 511 - 18)
    n = 511 - 18; /* room for the state, which matters most */
  text[n] = '\0';
  if (state[0] != '\0')
    snprintf(text + n, 512 - n, " (SQLSTATE %s)", state);
  *too_many = strcmp(state, "53300") == 0;
}

/* The rows a result brought, as the operation's value. */
static void count_rows(iob_op *op, const PGresult *res) {
  if (PQresultStatus(res) == PGRES_TUPLES_OK)
    iob_op_set_value(op, (uint64_t)PQntuples(res));
}

/* libpq prints the server's notices on stderr by default; a library
 * stays quiet. (A lost connection's reason comes as an error anyway.) */
static void ignore_notice(void *arg, const char *message) {}

/* The server's message with its SQLSTATE: "ERROR:  division by zero
 * (SQLSTATE 22012)". */
static void explain_error(iob_op *op, bool *said, const PGresult *res,
                          const char *message) {
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  size_t len = strlen(message);
  while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == ' '))
    len--;
  char text[512];
  if (state != NULL)
    snprintf(text, sizeof(text), "%.*s (SQLSTATE %s)", (int)len, message,
             state);
  else
    snprintf(text, sizeof(text), "%.*s", (int)len, message);
  explain(op, said, text);
}

/* What one result of the query means for the operation: 0 (its rows are
 * the operation's value, and kept in *rows if rows is not NULL: the last
 * statement's replace an earlier one's), IOB_ENOTSUP for a COPY, or
 * UV_EIO for an error or anything else unexpected; every failure gets
 * words. A COPY is refused rather than waited on: the server would wait
 * for data iobound never sends, or send rows it never reads, and libpq
 * would hand back the same COPY result for ever. */
static int judge(iob_op *op, bool *said, const PGresult *res,
                 iob_pg_result **rows) {
  ExecStatusType s = PQresultStatus(res);
  switch (s) {
  case PGRES_COMMAND_OK:
  case PGRES_TUPLES_OK:
  case PGRES_EMPTY_QUERY:
    count_rows(op, res);
    if (rows != NULL && s == PGRES_TUPLES_OK) {
      iob_pg_result *got = rows_of(res);
      if (got == NULL)
        return IOB_ENOMEM;
      free(*rows);
      *rows = got;
    }
    return 0;
  case PGRES_COPY_OUT:
  case PGRES_COPY_IN:
  case PGRES_COPY_BOTH:
    explain(op, said,
            "the query began a COPY, which iob_kind_pg does not "
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
    explain_error(op, said, res, message);
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
  if (p->pool != NULL)
    pool_give(p->pool, p->conn, status == 0 && !p->connecting, true);
  else
    PQfinish(p->conn);
  p->conn = NULL;
  hand_back_rows(op, &p->rows);
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

/* What was sent goes out, and its results are waited for. */
static void flush_and_wait(pg_op *op) {
  int more = PQflush(op->conn); /* 1: the query is not all sent yet */
  int err = more < 0 ? UV_ECONNRESET
                     : watch(op, UV_READABLE | (more ? UV_WRITABLE : 0));
  if (err != 0)
    op_end(op, err, PQerrorMessage(op->conn));
}

static void send_query(pg_op *op) {
  op->connecting = false;
  clock_stop(op);
  if (PQsetnonblocking(op->conn, 1) != 0 ||
      send_it(op->conn, op->op, &op->preparing) == 0) {
    op_end(op, UV_ECONNRESET, PQerrorMessage(op->conn));
    return;
  }
  flush_and_wait(op);
}

static void wait_in_pool(pg_op *p);

/* The server would not have the connection: the operation fails with
 * why, or, refused for too many while its pool has other connections,
 * waits for one of those. */
static void connect_failed(pg_op *p) {
  char text[512];
  bool too_many;
  connect_error(p->conn, text, &too_many);
  if (!too_many || p->pool == NULL || !pool_refused(p->pool)) {
    op_end(p, UV_ECONNREFUSED, text);
    return;
  }
  release_handles(p);
  PQfinish(p->conn);
  p->conn = NULL;
  p->connecting = false;
  wait_in_pool(p);
  resume_waiters(p->pool); /* one may be idle already */
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
    PQsetErrorVerbosity(op->conn, PQERRORS_DEFAULT);
    send_query(op);
    return;
  default:
    connect_failed(op);
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
    if (res == NULL && op->preparing && op->status == 0) { /* prepared */
      op->preparing = false;
      int err = send_prepared(op->conn, op->op);
      if (err != 0)
        op_end(op, err, err == UV_ECONNRESET ? PQerrorMessage(op->conn) : NULL);
      else
        flush_and_wait(op);
      return;
    }
    if (res == NULL) { /* the query is over */
      int status = op->status;
      if (status != 0 && PQstatus(op->conn) == CONNECTION_BAD)
        status = UV_ECONNRESET;
      op_end(op, status, NULL);
      return;
    }
    int status =
        judge(op->op, &op->said, res, wants_rows(op->op) ? &op->rows : NULL);
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

/* Begin a new connection for the operation. 0, or an error with
 * nothing left (the operation then settles with it). */
static int connect_begin(pg_op *p) {
  iob_op *op = p->op;
  p->conn = PQconnectStart(conninfo_of(op));
  if (p->conn == NULL)
    return IOB_ENOMEM;
  if (PQstatus(p->conn) == CONNECTION_BAD) {
    explain(op, &p->said, PQerrorMessage(p->conn));
    PQfinish(p->conn);
    p->conn = NULL;
    return UV_ECONNREFUSED;
  }
  PQsetNoticeProcessor(p->conn, ignore_notice, NULL);
  PQsetErrorVerbosity(p->conn, PQERRORS_VERBOSE); /* its SQLSTATE */
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
    p->conn = NULL;
  }
  return err;
}

/* The operation goes on with a connection of its pool's (TOOK: conn),
 * or a new one it may make (CONNECT). 0, or why it failed to begin. */
static int go_on(pg_op *p, int got, PGconn *conn) {
  if (got == TOOK) {
    p->conn = conn;
    send_query(p); /* connected already; it may settle here */
    return 0;
  }
  int err = connect_begin(p);
  if (err != 0)
    pool_give(p->pool, NULL, false, true); /* its place, unused */
  return err;
}

/* Loop queries that waited for a connection go on, in their order, as
 * long as there are connections to give; not from inside itself (a query
 * that goes on may end at once, and give its connection back). */
static void resume_waiters(iob_pg_pool *pool) {
  if (pool->resuming)
    return;
  pool->resuming = true;
  for (;;) {
    uv_mutex_lock(&pool->lock);
    pg_op *p = pool->first;
    uv_mutex_unlock(&pool->lock);
    PGconn *conn;
    int got = p != NULL ? pool_take(pool, &conn, 0) : WAIT;
    if (got == WAIT)
      break;
    uv_mutex_lock(&pool->lock);
    pool->first = p->next;
    if (pool->first == NULL)
      pool->last = NULL;
    uv_mutex_unlock(&pool->lock);
    p->waiting = false;
    p->next = NULL;
    int err = go_on(p, got, conn);
    if (err != 0)
      iob_op_done(p->op, err);
  }
  pool->resuming = false;
}

/* Wait in the pool for a connection. */
static void wait_in_pool(pg_op *p) {
  iob_pg_pool *pool = p->pool;
  p->waiting = true;
  p->next = NULL;
  uv_mutex_lock(&pool->lock);
  if (pool->last != NULL)
    pool->last->next = p;
  else
    pool->first = p;
  pool->last = p;
  uv_mutex_unlock(&pool->lock);
}

/* Out of the pool's waiting line (stopped while it waited). */
static void leave_pool(pg_op *p) {
  iob_pg_pool *pool = p->pool;
  uv_mutex_lock(&pool->lock);
  pg_op **at = &pool->first, *prev = NULL;
  while (*at != p)
    prev = *at, at = &(*at)->next;
  *at = p->next;
  if (pool->last == p)
    pool->last = prev;
  uv_mutex_unlock(&pool->lock);
  p->waiting = false;
}

static int pg_start(iob_op *op) {
  pg_op *p = op->state;
  p->op = op;
  p->pool = pool_of(op);
  int err = needs_sql(op);
  if (err != 0)
    return err;
  if (p->pool != NULL && p->pool->loop != iob_batch_loop(op->batch)) {
    iob_op_set_message(op, "the pool serves another loop (or only the "
                           "thread styles): make one on this batch's");
    return IOB_ENOTSUP;
  }
  if (p->pool == NULL)
    return connect_begin(p);
  PGconn *conn;
  int got = pool_take(p->pool, &conn, 0);
  if (got == WAIT) {
    wait_in_pool(p);
    return 0;
  }
  return go_on(p, got, conn);
}

static void pg_stop(iob_op *op) {
  pg_op *p = op->state;
  if (!p->waiting) {
    op_end(p, IOB_ECANCELED, NULL);
    return;
  }
  leave_pool(p);
  iob_op_done(op, IOB_ECANCELED);
}

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

/* Send the query and read every result: the worst one is the status;
 * the rows kept in *rows (if not NULL). */
static int query_here(PGconn *conn, iob_op *op, bool *said,
                      iob_pg_result **rows) {
  bool preparing;
  if (PQsetnonblocking(conn, 1) != 0 || !send_it(conn, op, &preparing))
    return UV_ECONNRESET;
  int more, status = 0;
again:
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
    if (res == NULL && preparing && status == 0) { /* prepared: run it */
      preparing = false;
      if ((status = send_prepared(conn, op)) != 0)
        return status;
      goto again;
    }
    if (res == NULL)
      return status;
    int got = judge(op, said, res, rows);
    PQclear(res);
    if (got == IOB_ENOTSUP)
      return got; /* a COPY never ends by itself */
    if (status == 0)
      status = got;
  }
}

/* A connection of the pool's for a query on a thread: an idle one
 * (*fresh false), or leave to make one (*fresh true); waiting, a slice at
 * a time, while the pool is at its most. 0, or why the operation stops. */
static int take_here(iob_pg_pool *pool, iob_op *op, PGconn **conn,
                     bool *fresh) {
  for (;;) {
    int stop = iob_op_stopping(op);
    if (stop != 0)
      return stop;
    if (iob_op_remaining_ms(op) == 0)
      return IOB_ETIMEDOUT;
    int got = pool_take(pool, conn, slice_ms(op, 0, 0) * UINT64_C(1000000));
    if (got != WAIT) {
      *fresh = got == CONNECT;
      return 0;
    }
  }
}

/* Make a new connection for a query on a thread (*conn, NULL if none
 * could be made). 0; EAGAIN (positive: not a status) if the server
 * refused it for too many and the pool has others to wait for; or why it
 * failed, said. */
static int connect_fresh(iob_op *op, iob_pg_pool *pool, PGconn **conn,
                         bool *said) {
  if ((*conn = PQconnectStart(conninfo_of(op))) == NULL) {
    if (pool != NULL)
      pool_give(pool, NULL, false, false);
    return IOB_ENOMEM;
  }
  PQsetErrorVerbosity(*conn, PQERRORS_VERBOSE); /* its SQLSTATE */
  int status = PQstatus(*conn) == CONNECTION_BAD
                   ? UV_ECONNREFUSED
                   : connect_here(*conn, op, said);
  if (status == UV_ECONNREFUSED) {
    char text[512];
    bool too_many;
    connect_error(*conn, text, &too_many);
    if (too_many && pool != NULL && pool_refused(pool)) {
      PQfinish(*conn);
      *conn = NULL;
      return EAGAIN;
    }
    explain(op, said, text);
  }
  PQsetErrorVerbosity(*conn, PQERRORS_DEFAULT);
  return status;
}

/* On a thread: libpq's non-blocking calls, each wait a poll() that ends
 * at the timeout or soon after a cancel, as blocking PQexec() would not. */
static int pg_run(iob_op *op) {
  bool said = false, fresh = true;
  iob_pg_result *rows = NULL;
  iob_pg_pool *pool = pool_of(op);
  PGconn *conn = NULL;
  int status = needs_sql(op);
  if (status != 0)
    return status;
  do {
    if (pool != NULL && (status = take_here(pool, op, &conn, &fresh)) != 0)
      return status;
    if (fresh)
      status = connect_fresh(op, pool, &conn, &said);
  } while (status == EAGAIN); /* refused for too many: wait for another */
  if (conn == NULL)
    return status; /* none was made: its place is back already */
  if (status == 0) {
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    status = query_here(conn, op, &said, wants_rows(op) ? &rows : NULL);
    if (status == UV_EIO && PQstatus(conn) == CONNECTION_BAD)
      status = UV_ECONNRESET;
  }
  if (status != 0 && status != IOB_ECANCELED && status != IOB_ETIMEDOUT)
    explain(op, &said, PQerrorMessage(conn));
  hand_back_rows(op, &rows);
  if (pool != NULL)
    pool_give(pool, conn, status == 0, false);
  else
    PQfinish(conn);
  return status;
}

static void rows_free(void *rows) { free(rows); }

/* Worth another attempt (iob_retry): what the server says may pass next
 * time, by its SQLSTATE (a serialization failure, a deadlock, a
 * connection exception, a server shutting down or starting, too many
 * connections), or a connection lost on the way; not a query it refused. */
static int64_t pg_retry(const iob_outcome *o) {
  const char *m = o->message != NULL ? strstr(o->message, "(SQLSTATE ") : NULL;
  if (m == NULL)
    return o->status == IOB_EIO ? IOB_RETRY_NO : iob_retry_transient(o);
  static const char *const again[] = {"40001", "40P01", "08",   "57P01",
                                      "57P02", "57P03", "53300"};
  m += strlen("(SQLSTATE ");
  for (size_t k = 0; k < sizeof(again) / sizeof(*again); k++)
    if (strncmp(m, again[k], strlen(again[k])) == 0)
      return 0;
  return IOB_RETRY_NO;
}

const iob_kind iob_kind_pg = {
    .name = "pg",
    .op_size = sizeof(pg_op),
    .stack_size = 256 * 1024, /* libpq needs more than the default */
    .check = pg_check,
    .start = pg_start,
    .run = pg_run,
    .stop = pg_stop,
    .free_result = rows_free,
    .batch_size = sizeof(pg_shared),
    .open = pg_open,
    .close = pg_close,
    .input_copy = query_copy,
    .input_free = free,
    .retry = pg_retry,
};
