/* iobound-server: a small line-based TCP service on one libuv loop. Every
 * client's batches run on the server's own loop through iobound's embedded
 * API (iob_batch_create + iob_batch_start), beside the other clients'
 * batches and the server's sockets, and each report goes back as a line of
 * JSON from the batch's callback. This file is the batches and the server;
 * connection.c cuts a client's bytes into lines and writes the answers.
 * docs/embedding.md walks through it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arrivals.h"
#include "connection.h"
#include "server.h"

_Static_assert(CONNECTION_LINE_MAX == SERVER_LINE_MAX + 1,
               "a connection keeps a request line and its '\\r'");

typedef struct server server;

/* One client: its connection and its batch end separately, in either
 * order, each with a callback; the client is freed once both have run. */
typedef struct client {
  connection conn;
  server *srv;
  struct client *prev, *next; /* the server's clients not yet closing */
  /* The server's half-closed clients (EOF came, not yet closing), in the
   * order their EOF came: watched by on_watch(). */
  struct client *hc_prev, *hc_next;
  bool half_closed;        /* in that list */
  uint64_t eof_ms;         /* the loop's time of its EOF */
  uint64_t answers_due_ms; /* then: closed, its batch cancelled */
  unsigned long id;
  iob_batch *batch;     /* the running batch, or NULL */
  request req;          /* what the running batch was asked for */
  uint64_t active_ms;   /* the loop's time of its last request */
  bool closed;          /* the connection's closed callback ran */
  bool end_after_batch; /* "quit" or EOF came while the batch ran */
  bool cancelled;       /* its running batch is cancelled: once */
  /* rate=R: what submits the batch's operations. Its own memory, freed
   * once its timer has closed: a closing handle must not be reused by the
   * client's next run, which may start before libuv is done with it. */
  arrivals *arrive;
  /* A client of the page's port (--http) sends one HTTP request: its
   * first line, its header lines, an empty line. */
  bool http;
  bool http_answered;  /* its answer has begun: the rest is not read */
  bool http_events;    /* that answer is a stream of events */
  bool http_head_only; /* HEAD: the answer's head without its body */
  uint32_t http_lines; /* of its request so far */
  int http_status;     /* its verdict so far; 200: route, req */
  http_route route;
  char http_error[256]; /* why, when http_status is not 200 */
} client;

/* A port the server listens on: the line protocol's, or the page's. */
typedef struct port {
  uv_tcp_t tcp;
  server *srv;
  bool http;           /* the page's (--http) */
  bool open;           /* its handle was made */
  bool accept_waiting; /* a connection waits in it */
} port;

/* A connection refused (too many, or no memory for it): accepted into
 * one of a few handles of the server's own, told why and closed. While
 * all are busy the next connection waits in the listener's backlog. */
typedef struct refusal {
  uv_tcp_t tcp;
  uv_shutdown_t shutdown;
  server *srv;
  bool busy;
} refusal;

#define REFUSALS 16
/* Connections taken in one turn of the loop, at most: a burst of a
 * thousand is taken over several turns, with the clients' requests
 * answered between. */
#define ACCEPTS_PER_TURN 64
/* Idle clients closed in one check, at most; the rest a turn later. */
#define IDLE_CLOSES_PER_CHECK 64
/* Half-closed clients asked whether they are gone every WATCH_MS, at most
 * WATCHES_PER_TICK of them a tick, in turn: a poll() each. */
#define WATCH_MS 250
#define WATCHES_PER_TICK 512
/* A half-closed client whose last answer is on its way, or who has been
 * told of --half-close-timeout, gets this long to take it. */
#define HALF_CLOSE_GRACE_MS 1000

struct server {
  uv_loop_t loop;
  port ports[2]; /* the line protocol's; the page's, with --http */
  uv_signal_t sigint, sigterm;
  uv_timer_t idle;
  uv_timer_t watch;        /* checks the half-closed clients */
  uv_timer_t accept_later; /* takes a connection left waiting, next turn */
  bool stopping;
  uint64_t accept_turn;     /* the loop's turn of the last accept */
  unsigned accepts_in_turn; /* connections taken in it */
  server_options opt;
  client *clients;
  unsigned long next_id;
  unsigned long connected;                /* clients in the list */
  client *hc_head, *hc_tail, *watch_at;   /* half-closed; next watched */
  unsigned long half_closed;              /* clients in that list */
  unsigned long running, done, cancelled; /* batches */
  uint32_t loop_threads; /* the loops of running loops-style batches */
  uint64_t operations;   /* of the running batches */
  /* Limits shared by all clients' batches, so that they take turns:
   * libuv's pool, whose jobs start in the order queued, the threads of
   * the threads style (--max-threads), and the server's own pool for the
   * workers style (--workers), whose queue is first come, first served
   * too. */
  iob_limit *pool_turns, *thread_turns, *worker_turns;
  iob_workers *workers;
  unsigned long refused, refused_runs, idle_closed, half_close_timeouts;
  unsigned long refused_logged; /* refusals the log has told of */
  uint64_t refused_log_ms;      /* when it last did */
  refusal refusals[REFUSALS];
  connection_budget budget; /* answers waiting, turns of the loop */
};

/* ---- the log ------------------------------------------------------------ */

/* The server's log, on stdout, a line at a time (tests read it). The loop
 * must not wait for whoever reads it: on a pipe or a socket stdout is made
 * non-blocking, and a line that does not fit is dropped and counted; the
 * next line that fits says how many were. */
static struct {
  bool nonblocking;
  int flags; /* stdout's, to put back */
  unsigned long dropped;
} the_log;

static void log_open(void) {
  struct stat st;
  setvbuf(stdout, NULL, _IOLBF, 0); /* a terminal or a file */
  if (fstat(STDOUT_FILENO, &st) != 0 ||
      !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
    return;
  int flags = fcntl(STDOUT_FILENO, F_GETFL);
  if (flags >= 0 && fcntl(STDOUT_FILENO, F_SETFL, flags | O_NONBLOCK) == 0) {
    the_log.nonblocking = true;
    the_log.flags = flags;
  }
}

static void log_close(void) {
  if (the_log.nonblocking)
    fcntl(STDOUT_FILENO, F_SETFL, the_log.flags);
  the_log.nonblocking = false;
}

CLI_PRINTF(1, 2) static void log_line(const char *fmt, ...) {
  char line[512];
  int n = 0;
  if (the_log.dropped > 0)
    n = snprintf(line, sizeof(line), "(%lu log lines dropped)\n",
                 the_log.dropped);
  va_list ap;
  va_start(ap, fmt); /* room is left for the '\n' */
  vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = strlen(line);
  line[len++] = '\n';
  if (!the_log.nonblocking) {
    fwrite(line, 1, len, stdout);
    return;
  }
  /* A pipe takes a write of up to PIPE_BUF bytes whole, or not at all. */
  ssize_t w;
  do
    w = write(STDOUT_FILENO, line, len);
  while (w < 0 && errno == EINTR);
  if (w < 0)
    the_log.dropped++;
  else
    the_log.dropped = 0;
}

/* ---- answers ------------------------------------------------------------ */

/* Tell the client of an error. On a line: "error TEXT". Over HTTP, an
 * answer of @p status that says the same and ends the connection; or, once
 * a stream of events has begun, an "error" event. */
CLI_PRINTF(3, 4)
static void send_error(client *c, int status, const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  if (!c->http)
    connection_send(&c->conn, "error %s", text);
  else if (c->http_events)
    http_send_event(&c->conn, "error", text);
  else
    http_send_error(&c->conn, status, text);
  c->http_answered = c->http;
}

/* One answer of a batch: a line; over HTTP, an event of that name. */
static void send_answer(client *c, const char *event, const char *json) {
  if (c->http)
    http_send_event(&c->conn, event, json);
  else
    connection_send(&c->conn, "%s", json);
}

static void send_report(client *c, const iob_batch *batch) {
  iob_report r;
  iob_latency l;
  int err = iob_batch_report(batch, &r);
  bool measured = err == 0 && iob_batch_latency(batch, &l) == 0;
  char line[1400];
  cli_json_batch json = {.config = &c->req.config,
                         .report = &r,
                         .vs_sequential = NAN,
                         .latency = measured ? &l : NULL,
                         .arrival_rate = c->req.rate};
  if (err == 0 && cli_json_report(line, sizeof(line), &json) < 0)
    err = IOB_ENOMEM;
  if (err != 0)
    send_error(c, 500, "no report: %s", iob_strerror(err));
  else
    send_answer(c, "report", line);
}

static void send_stats(client *c) {
  const server *s = c->srv;
  char json[512];
  snprintf(json, sizeof(json),
           "{\"clients\":%lu,\"batches_running\":%lu,\"batches_done\":%lu"
           ",\"batches_cancelled\":%lu,\"threads_running\":%" PRIu64
           ",\"operations_running\":%" PRIu64 ",\"refused_connections\":%lu"
           ",\"refused_runs\":%lu,\"idle_closed\":%lu"
           ",\"half_close_timeouts\":%lu}",
           s->connected, s->running, s->done, s->cancelled,
           (uint64_t)iob_limit_in_use(s->thread_turns) + s->loop_threads,
           s->operations, s->refused, s->refused_runs, s->idle_closed,
           s->half_close_timeouts);
  if (c->http)
    http_send_json(&c->conn, json, c->http_head_only);
  else
    connection_send(&c->conn, "%s", json);
}

/* ---- batches ------------------------------------------------------------ */

/* The client is freed once its connection has closed and its batch has
 * called back, whichever comes last. */
static void free_if_done(client *c) {
  if (c->closed && c->batch == NULL)
    free(c);
}

static void on_arrivals_closed(uv_handle_t *timer) { free(timer->data); }

/* The run's arrivals are over: close their timer, then free them. */
static void arrivals_free(client *c) {
  if (c->arrive != NULL && !arrivals_stop(c->arrive, on_arrivals_closed))
    free(c->arrive); /* never started */
  c->arrive = NULL;
}

/* stream=1: a line per operation as it settles (over HTTP, an "op"
 * event). It also runs from inside iob_batch_cancel(), for the operations
 * the cancel settles; the client is closing then, and nothing is sent. */
static void on_op_settled(iob_batch *batch, uint32_t index,
                          const iob_record *rec) {
  client *c = iob_batch_data(batch);
  char json[192];
  snprintf(json, sizeof(json),
           "{\"op\":%" PRIu32 ",\"status\":\"%s\",\"queued_ms\":%.3f"
           ",\"started_ms\":%.3f,\"finished_ms\":%.3f,\"worker\":%" PRIu32 "}",
           index, iob_err_name(rec->status), (double)rec->queued_ns / 1e6,
           (double)rec->started_ns / 1e6, (double)rec->finished_ns / 1e6,
           rec->worker);
  send_answer(c, "op", json);
}

/* The threads a loops-style run makes for its loops: one per core, no
 * more than it may have operations in flight (create_batch() tells the
 * batch so: an open batch does not know how many will arrive). */
static uint32_t loop_threads_of(const iob_config *config) {
  if (!(iob_style_flags(config->style) & IOB_STYLE_LOOPS))
    return 0;
  uint32_t n = (uint32_t)uv_available_parallelism();
  uint32_t at_once =
      config->max_in_flight != 0 && config->max_in_flight < config->count
          ? config->max_in_flight
          : config->count;
  return n < at_once ? n : at_once;
}

static uint64_t later_of(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* Every operation has settled: answer, if the client is still there, free
 * the batch, and free the client if its connection has closed too. */
static void on_batch_done(iob_batch *batch, int status) {
  client *c = iob_batch_data(batch);
  server *s = c->srv;
  s->running--;
  s->operations -= c->req.config.count;
  s->loop_threads -= loop_threads_of(&c->req.config);
  if (c->arrive != NULL && c->arrive->err != 0)
    send_error(c, 500, "an arrival was refused: %s",
               iob_strerror(c->arrive->err));
  if (connection_open(&c->conn)) {
    send_report(c, batch);
    s->done++;
  }
  log_line("client %lu: batch over, %s", c->id, iob_err_name(status));
  arrivals_free(c);
  c->batch = NULL;
  c->cancelled = false;
  c->active_ms = uv_now(&s->loop); /* idle from now */
  /* A half-closed client's report goes out: it gets time to take it. */
  if (c->half_closed)
    c->answers_due_ms =
        later_of(c->answers_due_ms, c->active_ms + HALF_CLOSE_GRACE_MS);
  iob_batch_free(batch);
  if (c->end_after_batch && connection_open(&c->conn))
    connection_end(&c->conn);
  free_if_done(c);
}

/* The limit the run shares with the other clients' runs of its style, if
 * any: a pool batch that queued all its operations at once would make
 * every other client's pool jobs wait behind them, and the threads style
 * makes a thread per operation in flight. */
static iob_limit *turns_of(const server *s, const iob_config *config) {
  unsigned flags = iob_style_flags(config->style);
  if (flags & IOB_STYLE_THREAD_EACH)
    return s->thread_turns;
  if (config->style == &iob_style_workers)
    return s->worker_turns;
  return config->style == &iob_style_pool ? s->pool_turns : NULL;
}

/* Whether the server-wide caps leave room for the run; if not, say which
 * cap it would pass. A threads-style run's threads are not a reason to
 * refuse: it waits for its turn on them. A loops-style run makes its
 * loops' threads when it starts, so they count against --max-threads
 * while it runs, and a run that would pass it is refused. */
static bool fits_caps(client *c, const iob_config *config) {
  const server *s = c->srv;
  uint32_t loops = loop_threads_of(config);
  if (loops != 0 && s->loop_threads + loops > s->opt.max_threads) {
    send_error(c, 503,
               "server busy: the loops style runs %" PRIu32
               " threads and %" PRIu32 " of --max-threads %" PRIu32
               " are in use by loops; try later, or another style",
               loops, s->loop_threads, s->opt.max_threads);
    return false;
  }
  if ((iob_style_flags(config->style) & IOB_STYLE_THREAD_EACH) &&
      s->thread_turns == NULL) {
    send_error(c, 503,
               "server busy: this server runs no threads "
               "(--max-threads 0); try another style");
    return false;
  }
  if (config->style == &iob_style_workers && s->workers == NULL) {
    send_error(c, 503,
               "server busy: this server has no workers "
               "(--workers 0); try another style");
    return false;
  }
  if (s->operations + config->count > s->opt.max_operations) {
    send_error(c, 503,
               "server busy: this run has %" PRIu32 " operations and %" PRIu64
               " of %" PRIu32 " are in use (--max-operations); try later, or a "
               "smaller COUNT",
               config->count, s->operations, s->opt.max_operations);
    return false;
  }
  return true;
}

static void cancel_batch(client *c);

/* Make the client's batch for request @p r and start it. With rate=R it
 * is an open batch that the client's arrivals fill, R a second. */
static int create_batch(client *c, const request *r, iob_batch **out) {
  server *s = c->srv;
  iob_config config = r->config;
  config.data = c;
  config.on_op = r->stream ? on_op_settled : NULL;
  config.shared_limit = turns_of(s, &r->config);
  iob_workers_options pool;
  iob_workers_options_init(&pool);
  pool.pool = s->workers; /* not a pool per request */
  iob_loops_options loops;
  iob_loops_options_init(&loops);
  loops.loops = loop_threads_of(&r->config); /* as counted */
  if (r->config.style == &iob_style_workers)
    config.style_options = &pool;
  else if (r->config.style == &iob_style_loops)
    config.style_options = &loops;
  if (r->rate != 0) {
    config.open = 1;
    config.count = 0; /* they arrive */
    if ((c->arrive = malloc(sizeof(*c->arrive))) == NULL)
      return IOB_ENOMEM;
    *c->arrive = (arrivals){.rate = r->rate,
                            .count = r->config.count,
                            .poisson = r->poisson,
                            .seed = c->id};
  }
  int err = iob_batch_create(out, &config);
  if (err == 0 && c->http) { /* before any operation's event */
    http_start_events(&c->conn);
    c->http_events = true;
  }
  if (err == 0 && (err = iob_batch_start(*out, &s->loop, on_batch_done)) != 0)
    iob_batch_free(*out);
  if (err != 0)
    arrivals_free(c);
  return err;
}

static void start_batch(client *c, const request *r) {
  server *s = c->srv;
  if (c->batch != NULL) {
    send_error(c, 400, "a batch is already running on this connection");
    return;
  }
  if (!fits_caps(c, &r->config)) {
    s->refused_runs++;
    return;
  }
  c->req = *r;
  iob_batch *b;
  int err = create_batch(c, r, &b);
  if (err != 0) {
    send_error(c, 500, "%s", iob_strerror(err));
    if (c->http)
      connection_end(&c->conn);
    return;
  }
  c->batch = b;
  s->operations += c->req.config.count;
  s->loop_threads += loop_threads_of(&c->req.config);
  s->running++;
  if (c->http)
    c->end_after_batch = true; /* one request a connection */
  if (r->rate != 0 &&
      (err = arrivals_start(c->arrive, &s->loop, b, &r->config)) != 0) {
    send_error(c, 500, "%s", iob_strerror(err));
    cancel_batch(c); /* it ends; its callback runs */
  }
}

/* Cancel the client's batch: its callback still runs later, from the loop
 * (never from inside iob_batch_cancel), and frees it. A batch cancelled
 * by --half-close-timeout may still run when its connection closes: it
 * is counted and logged once. */
static void cancel_batch(client *c) {
  if (c->cancelled)
    return;
  c->cancelled = true;
  iob_progress p;
  iob_batch_progress(c->batch, &p);
  log_line("cancelled batch for client %lu (%" PRIu32 " of %" PRIu32
           " operations done)",
           c->id, p.done, p.done + p.in_flight + p.waiting);
  c->srv->cancelled++;
  iob_batch_cancel(c->batch);
}

/* ---- clients that send no more ------------------------------------------ */

/* After EOF libuv reads no more, and a client whose batch runs is written
 * nothing until it ends: nothing would say that the client reset, or that
 * keepalive found it gone, and its batch would run on for nobody, holding
 * a connection and operations for as long as it asked (a flood of
 * "run sequential 1000 60000" and FIN held every connection for 16.7
 * hours). So the half-closed clients are watched: every WATCH_MS each is
 * asked whether it is gone (connection_check(): no read, no write), and
 * one whose answers are not out --half-close-timeout ms after its EOF is
 * closed, its batch cancelled. A client that sent FIN and closed its
 * socket cannot be told from one that still reads until something is
 * written to it; that timeout bounds what either can hold. */

static void on_watch(uv_timer_t *timer);

static void half_closed_add(client *c) {
  server *s = c->srv;
  if (c->half_closed) /* one EOF per connection; a second would relink */
    return;
  c->half_closed = true;
  c->eof_ms = uv_now(&s->loop);
  c->answers_due_ms = c->eof_ms + s->opt.half_close_timeout_ms;
  c->hc_prev = s->hc_tail;
  c->hc_next = NULL;
  if (s->hc_tail != NULL)
    s->hc_tail->hc_next = c;
  else
    s->hc_head = c;
  s->hc_tail = c;
  if (s->half_closed++ == 0)
    uv_timer_start(&s->watch, on_watch, WATCH_MS, WATCH_MS);
}

static void half_closed_remove(client *c) {
  server *s = c->srv;
  if (!c->half_closed)
    return;
  c->half_closed = false;
  if (s->watch_at == c)
    s->watch_at = c->hc_next;
  if (c->hc_prev != NULL)
    c->hc_prev->hc_next = c->hc_next;
  else
    s->hc_head = c->hc_next;
  if (c->hc_next != NULL)
    c->hc_next->hc_prev = c->hc_prev;
  else
    s->hc_tail = c->hc_prev;
  if (--s->half_closed == 0) /* nothing to watch: no wake-ups */
    uv_timer_stop(&s->watch);
}

/* --half-close-timeout has passed. A batch still runs: the client is told
 * why (if it still reads, it learns why no report comes), the batch is
 * cancelled, and the connection closes once the line is written, or a
 * grace later. Its answers are all queued but not taken (or it was told
 * and took nothing): closed now. */
static void half_close_expired(client *c, uint64_t now) {
  server *s = c->srv;
  if (!connection_open(&c->conn)) {
    log_line("client %lu does not take its last answers; closing", c->id);
    connection_close(&c->conn);
    return;
  }
  log_line("client %lu sent no more %" PRIu64 " ms ago and its batch still "
           "runs; closing (--half-close-timeout)",
           c->id, now - c->eof_ms);
  s->half_close_timeouts++;
  send_error(c, 503,
             "half-close timeout: the batch still ran %" PRIu64
             " ms after EOF (--half-close-timeout); cancelled",
             s->opt.half_close_timeout_ms);
  /* Ending first: what the cancel settles is not sent. */
  connection_end(&c->conn);
  c->answers_due_ms = now + HALF_CLOSE_GRACE_MS;
  if (c->batch != NULL)
    cancel_batch(c);
}

static void watch_one(client *c, uint64_t now) {
  if (!connection_check(&c->conn))
    return; /* gone: closing, its batch cancelled (on_closing) */
  /* A browser that leaves closes its socket: EOF, as a client that only
   * stopped sending. A comment line in its stream of events (which every
   * reader of events skips) tells them apart: the first write to a closed
   * socket is answered with a reset, and the next fails. */
  if (c->http_events && connection_open(&c->conn))
    connection_send(&c->conn, ":");
  if (c->srv->opt.half_close_timeout_ms != 0 && now >= c->answers_due_ms)
    half_close_expired(c, now);
}

/* Watch the next WATCHES_PER_TICK half-closed clients, each at most once:
 * a client watched is the only one it can take off the list. */
static void on_watch(uv_timer_t *timer) {
  server *s = timer->data;
  uint64_t now = uv_now(&s->loop);
  unsigned long n =
      s->half_closed < WATCHES_PER_TICK ? s->half_closed : WATCHES_PER_TICK;
  for (unsigned long k = 0; k < n && s->half_closed > 0; k++) {
    if (s->watch_at == NULL)
      s->watch_at = s->hc_head;
    client *c = s->watch_at;
    s->watch_at = c->hc_next;
    watch_one(c, now);
  }
}

/* ---- a client's connection ---------------------------------------------- */

/* The request is whole (its empty line came): answer it. Even a refusal
 * waits for it, so that every byte of the request has been read when the
 * connection closes: closing a socket with bytes unread sends a reset,
 * which may reach the client before it has read the answer. */
static void http_answer(client *c) {
  if (c->http_status != 200) {
    send_error(c, c->http_status, "%s", c->http_error);
    return;
  }
  c->http_answered = true;
  switch (c->route) {
  case HTTP_PAGE:
    http_send_page(&c->conn, c->http_head_only);
    break;
  case HTTP_STATS:
    send_stats(c);
    break;
  case HTTP_RUN:
    start_batch(c, &c->req);
    break;
  }
}

/* A line of an HTTP request: its first says what it asks for; then
 * header lines, of which Host and Sec-Fetch-Site are judged (a line too
 * long for them is skipped: a browser's cookies may be longer), and an
 * empty line, which answers. */
static void on_http_line(client *c, const char *line, size_t len) {
  if (c->http_answered)
    return;
  size_t error_size = sizeof(c->http_error);
  if (c->http_lines++ == 0) {
    c->http_status =
        line == NULL
            ? 414
            : server_parse_http(line, len, &c->route, &c->http_head_only,
                                &c->req, c->http_error, error_size);
    if (line == NULL)
      snprintf(c->http_error, error_size,
               "the first line is too long (at most %d bytes)",
               CONNECTION_LINE_MAX);
    return;
  }
  if (line != NULL && (len == 0 || (len == 1 && line[0] == '\r')))
    http_answer(c);
  else if (c->http_lines - 1 > SERVER_HTTP_HEADERS_MAX)
    send_error(c, 431, "more than %d header lines", SERVER_HTTP_HEADERS_MAX);
  else if (line != NULL && c->http_status == 200)
    c->http_status = server_check_http_header(line, len, c->route,
                                              c->http_error, error_size);
}

static void on_line(connection *conn, const char *line, size_t len) {
  client *c = conn->data;
  request r;
  char error[256];
  if (c->http) { /* its head is due within --idle-timeout of connecting */
    on_http_line(c, line, len);
    return;
  }
  c->active_ms = uv_now(&c->srv->loop);
  if (c->end_after_batch)
    return; /* after "quit", the rest is not read */
  if (line == NULL) {
    connection_send(conn, "error line too long (at most %d bytes)",
                    SERVER_LINE_MAX);
    return;
  }
  if (server_parse_request_n(line, len, &r, error, sizeof(error)) != 0) {
    connection_send(conn, "error %s", error);
    return;
  }
  switch (r.kind) {
  case REQUEST_NONE:
    break;
  case REQUEST_PING:
    connection_send(conn, "pong");
    break;
  case REQUEST_STATS:
    send_stats(c);
    break;
  case REQUEST_RUN:
    start_batch(c, &r);
    break;
  case REQUEST_QUIT:
    log_line("client %lu quit", c->id);
    if (c->batch != NULL)
      c->end_after_batch = true;
    else
      connection_end(conn);
    break;
  }
}

/* EOF: the client sends no more requests, but may wait for its answers
 * (shutdown(SHUT_WR) after a request): as "quit". */
static void on_end(connection *conn) {
  client *c = conn->data;
  log_line("client %lu sends no more%s", c->id,
           c->batch != NULL ? "; answering its batch, then closing" : "");
  half_closed_add(c); /* before connection_end(), which may close it */
  if (c->batch != NULL)
    c->end_after_batch = true;
  else
    connection_end(conn);
}

/* The connection closes: the client leaves the list, its batch is
 * cancelled. */
static void on_closing(connection *conn, int reason) {
  client *c = conn->data;
  server *s = c->srv;
  if (reason == UV_ENOBUFS)
    log_line("client %lu does not read its answers; closing", c->id);
  else if (reason != 0)
    log_line("client %lu disconnected (%s)", c->id, iob_err_name(reason));
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    s->clients = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  s->connected--;
  half_closed_remove(c);
  if (c->batch != NULL)
    cancel_batch(c);
}

static void on_closed(connection *conn) {
  client *c = conn->data;
  c->closed = true;
  free_if_done(c);
}

static const connection_events client_events = {on_line, on_end, on_closing,
                                                on_closed};

/* ---- idle clients ------------------------------------------------------ */

/* Every so often, close the clients that have asked nothing for
 * --idle-timeout ms while no batch of theirs ran: told why, then closed
 * once that is written. One that does not read its answers (its reading
 * is paused) is closed at once; one whose last answers cannot be written
 * is still there a timeout later, and closed then. */
static void on_idle_check(uv_timer_t *timer) {
  server *s = timer->data;
  uint64_t now = uv_now(&s->loop);
  unsigned closed = 0;
  for (client *c = s->clients, *next; c != NULL; c = next) {
    next = c->next; /* connection_close() takes c off the list */
    if (c->batch != NULL || now - c->active_ms < s->opt.idle_timeout_ms)
      continue;
    if (closed++ == IDLE_CLOSES_PER_CHECK) { /* the rest in a moment */
      uint64_t every = uv_timer_get_repeat(timer);
      uv_timer_start(timer, on_idle_check, 1, every);
      return;
    }
    if (!connection_open(&c->conn)) { /* ending, and stuck */
      connection_close(&c->conn);
      continue;
    }
    if (c->conn.paused) { /* no answer of ours could reach it */
      log_line("client %lu does not read its answers; closing (idle for "
               "%" PRIu64 " ms)",
               c->id, now - c->active_ms);
      s->idle_closed++;
      connection_close(&c->conn);
      continue;
    }
    log_line("client %lu idle for %" PRIu64 " ms; closing", c->id,
             now - c->active_ms);
    s->idle_closed++;
    send_error(c, 408,
               "idle timeout: no request for %" PRIu64 " ms (--idle-timeout)",
               s->opt.idle_timeout_ms);
    c->active_ms = now;
    connection_end(&c->conn);
  }
}

/* ---- taking connections -------------------------------------------------- */

/* The tests' seam: built with -DSERVER_FAULTS, the server fails its first
 * N client allocations, N from IOBOUND_SERVER_FAIL_ALLOCS. */
static client *client_new(void) {
#ifdef SERVER_FAULTS
  static long fail = -1;
  if (fail < 0) {
    const char *n = getenv("IOBOUND_SERVER_FAIL_ALLOCS");
    fail = n != NULL ? atol(n) : 0;
  }
  if (fail > 0) {
    fail--;
    return NULL;
  }
#endif
  return calloc(1, sizeof(client));
}

static void take_connection(port *p);
static void on_connection(uv_stream_t *listener, int status);

/* After a uv_accept() that failed, libuv watches the listener no more
 * (1.44: it restarts the watch only on success). Listening again, on a
 * socket that listens already, only starts the watch again. */
static void listen_again(port *p, int err) {
  log_line("cannot take a connection: %s", iob_strerror(err));
  if (!p->srv->stopping)
    uv_listen((uv_stream_t *)&p->tcp, 4096, on_connection);
}

/* A connection was left waiting in a listener (libuv watches it no more
 * until uv_accept()): take it now. */
static void on_accept_later(uv_timer_t *timer) {
  server *s = timer->data;
  s->accepts_in_turn = 0; /* a turn later (the timers come first) */
  for (int k = 0; k < 2; k++)
    if (s->ports[k].accept_waiting && !s->stopping) {
      s->ports[k].accept_waiting = false;
      take_connection(&s->ports[k]);
    }
}

static void accept_later(port *p) {
  p->accept_waiting = true;
  uv_timer_start(&p->srv->accept_later, on_accept_later, 0, 0);
}

static void on_refusal_closed(uv_handle_t *handle) {
  refusal *r = handle->data;
  server *s = r->srv;
  r->busy = false;
  if ((s->ports[0].accept_waiting || s->ports[1].accept_waiting) &&
      !s->stopping)
    on_accept_later(&s->accept_later);
}

static void on_refusal_shut(uv_shutdown_t *req, int status) {
  uv_close((uv_handle_t *)req->handle, on_refusal_closed);
}

/* Log a refusal, at most once a second under a flood. */
static void log_refusal(server *s, const char *why) {
  uint64_t now = uv_now(&s->loop);
  if (s->refused_logged != 0 && now - s->refused_log_ms < 1000)
    return;
  log_line("refused %lu connection%s (%s); %lu so far",
           s->refused - s->refused_logged,
           s->refused - s->refused_logged == 1 ? "" : "s", why, s->refused);
  s->refused_logged = s->refused;
  s->refused_log_ms = now;
}

/* Accept the waiting connection into refusal `r`, tell it `why` and
 * close it. No memory is taken: the line goes out with uv_try_write(),
 * which a new connection's empty send buffer takes whole. */
static void refuse(port *p, refusal *r, const char *why) {
  server *s = p->srv;
  r->busy = true;
  r->srv = s;
  r->tcp.data = r;
  uv_tcp_init(&s->loop, &r->tcp);
  s->refused++;
  log_refusal(s, why);
  int err = uv_accept((uv_stream_t *)&p->tcp, (uv_stream_t *)&r->tcp);
  if (err != 0)
    listen_again(p, err);
  else {
    char line[256];
    int n = p->http ? snprintf(line, sizeof(line),
                               "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: %zu\r\n"
                               "Connection: close\r\n\r\nerror %s\n",
                               strlen("error \n") + strlen(why), why)
                    : snprintf(line, sizeof(line), "error %s\n", why);
    uv_buf_t buf = uv_buf_init(line, (unsigned int)n);
    uv_try_write((uv_stream_t *)&r->tcp, &buf, 1);
    /* FIN after the line, then close. */
    if (uv_shutdown(&r->shutdown, (uv_stream_t *)&r->tcp, on_refusal_shut) == 0)
      return;
  }
  uv_close((uv_handle_t *)&r->tcp, on_refusal_closed);
}

/* Take the connection waiting in the listener: as a client, or refused.
 * A refusal must stay possible, so while all of them are busy the
 * connection is left in the listener (libuv stops watching it until
 * uv_accept()) and taken when one is free, a turn of the loop later; so
 * is one past ACCEPTS_PER_TURN. */
static void take_connection(port *p) {
  server *s = p->srv;
  if (s->accept_turn != s->budget.turn) {
    s->accept_turn = s->budget.turn;
    s->accepts_in_turn = 0;
  }
  if (s->accepts_in_turn == ACCEPTS_PER_TURN) {
    accept_later(p); /* the next turn */
    return;
  }
  refusal *r = NULL;
  for (int k = 0; k < REFUSALS && r == NULL; k++)
    if (!s->refusals[k].busy)
      r = &s->refusals[k];
  if (r == NULL) {
    p->accept_waiting = true; /* when a refusal has closed */
    return;
  }
  s->accepts_in_turn++;
  if (s->connected >= s->opt.max_connections) {
    char why[64];
    snprintf(why, sizeof(why), "too many connections (max %" PRIu32 ")",
             s->opt.max_connections);
    refuse(p, r, why);
    return;
  }
  client *c = client_new();
  if (c == NULL) {
    refuse(p, r, "out of memory");
    return;
  }
  c->srv = s;
  c->conn.data = c;
  c->conn.budget = &s->budget;
  c->http = p->http;
  int err = connection_accept(&c->conn, (uv_stream_t *)&p->tcp, &client_events);
  if (err != 0) { /* never listed; freed when its handle has closed */
    listen_again(p, err);
    return;
  }
  c->id = ++s->next_id;
  c->active_ms = uv_now(&s->loop);
  c->next = s->clients;
  if (s->clients != NULL)
    s->clients->prev = c;
  s->clients = c;
  s->connected++;
  log_line("client %lu connected%s", c->id, c->http ? " (HTTP)" : "");
}

/* A connection waits in the listener, or accepting one failed (status:
 * UV_EMFILE, after libuv closed it for us). Either way the listener goes
 * on: a connection libuv handed us is accepted, as a client or refused,
 * or libuv would stop watching the listener. */
static void on_connection(uv_stream_t *listener, int status) {
  port *p = listener->data;
  if (status != 0) {
    log_line("cannot take a connection: %s", iob_strerror(status));
    return;
  }
  take_connection(p);
}

/* Stop taking clients, close every client (cancelling its batch) and the
 * signal handles: the loop then ends when the last batch's callback has
 * run, since blocking work already running cannot be interrupted. */
static void server_stop(server *s) {
  if (s->stopping)
    return;
  s->stopping = true;
  for (int k = 0; k < 2; k++)
    if (s->ports[k].open)
      uv_close((uv_handle_t *)&s->ports[k].tcp, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  uv_close((uv_handle_t *)&s->idle, NULL);
  uv_close((uv_handle_t *)&s->watch, NULL);
  uv_close((uv_handle_t *)&s->accept_later, NULL);
  connection_budget_close(&s->budget);
  while (s->clients != NULL)
    connection_close(&s->clients->conn);
}

static void on_signal(uv_signal_t *sig, int signum) {
  log_line("stopping on %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
  server_stop(sig->data);
}

/* Print "listening on ADDRESS:PORT" with the port actually bound, or for
 * the page's port "page on http://ADDRESS:PORT/". */
static int print_address(port *p) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char ip[64];
  int err = uv_tcp_getsockname(&p->tcp, (struct sockaddr *)&ss, &len);
  if (err == 0)
    err = uv_ip_name((struct sockaddr *)&ss, ip, sizeof(ip));
  if (err != 0)
    return err;
  bool v6 = ss.ss_family == AF_INET6;
  unsigned int number = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                 : ((struct sockaddr_in *)&ss)->sin_port);
  log_line("%s%s%s%s:%u%s", p->http ? "page on http://" : "listening on ",
           v6 ? "[" : "", ip, v6 ? "]" : "", number, p->http ? "/" : "");
  return 0;
}

/* Listen on @p addr with port @p p, made on the server's loop. */
static int port_listen(server *s, port *p, bool http,
                       const struct sockaddr_storage *addr) {
  int err = uv_tcp_init(&s->loop, &p->tcp);
  if (err != 0)
    return err;
  p->open = true;
  p->srv = s;
  p->http = http;
  p->tcp.data = p;
  err = uv_tcp_bind(&p->tcp, (const struct sockaddr *)addr, 0);
  /* A burst of clients waits in the backlog rather than being turned
   * away by the kernel (it caps the backlog at net.core.somaxconn). */
  if (err == 0)
    err = uv_listen((uv_stream_t *)&p->tcp, 4096, on_connection);
  if (err == 0)
    err = print_address(p);
  return err;
}

/* The line protocol's port, and with --http the page's, on the same
 * host. @return 0, or the error, with the port it was for. */
static int server_listen(server *s, unsigned int *failed) {
  const server_options *o = &s->opt;
  *failed = o->listen.port;
  int err = port_listen(s, &s->ports[0], false, &o->listen.addr);
  if (err != 0 || !o->http)
    return err;
  struct sockaddr_storage addr = o->listen.addr;
  if (addr.ss_family == AF_INET6)
    ((struct sockaddr_in6 *)&addr)->sin6_port = htons((uint16_t)o->http_port);
  else
    ((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)o->http_port);
  *failed = o->http_port;
  return port_listen(s, &s->ports[1], true, &addr);
}

/* Raise the soft limit on open files to the hard one, as the slow service
 * does (fd_limit_raise() in slow-server.c): every client is a file
 * descriptor. Then keep --max-connections within it, with room for the
 * server's own descriptors, so that a client over the cap is refused
 * with a reason rather than left in the backlog. */
#define FD_RESERVE (REFUSALS + 48)

static void fit_fd_limit(server *s) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur == RLIM_INFINITY ||
      rl.rlim_cur >= (rlim_t)s->opt.max_connections + FD_RESERVE)
    return;
  uint32_t fit =
      rl.rlim_cur > FD_RESERVE ? (uint32_t)(rl.rlim_cur - FD_RESERVE) : 0;
  log_line("--max-connections lowered to %" PRIu32
           ": the open files limit is %llu",
           fit, (unsigned long long)rl.rlim_cur);
  s->opt.max_connections = fit;
}

/* What the clients' batches share: turns on libuv's pool (as many as it
 * has threads: each client's next job waits for a thread, not behind
 * every job of the others), on --max-threads threads, and on the
 * server's own pool of --workers threads. */
static int make_shared(server *s) {
  int err = iob_limit_create(&s->pool_turns, iob_pool_size());
  if (err == 0 && s->opt.max_threads > 0)
    err = iob_limit_create(&s->thread_turns, s->opt.max_threads);
  if (err == 0 && s->opt.workers > 0)
    err = iob_workers_create(&s->workers, s->opt.workers, 0);
  if (err == 0 && s->opt.workers > 0)
    err = iob_limit_create(&s->worker_turns, s->opt.workers);
  return err;
}

static void free_shared(server *s) {
  iob_limit_free(s->pool_turns);
  iob_limit_free(s->thread_turns);
  iob_limit_free(s->worker_turns);
  iob_workers_free(s->workers);
}

/* Run the server until a signal stops it. @return the exit status. */
static int serve(server *s) {
  const cli_listen *o = &s->opt.listen;
  int err = uv_loop_init(&s->loop);
  if (err != 0) {
    fprintf(stderr, "iobound-server: %s\n", iob_strerror(err));
    return CLI_EX_FAILED;
  }
  fit_fd_limit(s);
  err = make_shared(s);
  if (err != 0) {
    fprintf(stderr, "iobound-server: %s\n", iob_strerror(err));
    free_shared(s);
    uv_loop_close(&s->loop);
    return CLI_EX_FAILED;
  }
  connection_budget_init(&s->budget, &s->loop, SERVER_OUTBOX_TOTAL_MAX);
  uv_signal_init(&s->loop, &s->sigint);
  uv_signal_init(&s->loop, &s->sigterm);
  uv_timer_init(&s->loop, &s->idle);
  uv_timer_init(&s->loop, &s->watch);
  uv_timer_init(&s->loop, &s->accept_later);
  s->sigint.data = s->sigterm.data = s->idle.data = s;
  s->watch.data = s->accept_later.data = s;
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uint64_t every = s->opt.idle_timeout_ms / 8;
  every = every < 10 ? 10 : every > 1000 ? 1000 : every;
  if (s->opt.idle_timeout_ms != 0)
    uv_timer_start(&s->idle, on_idle_check, every, every);
  unsigned int port_failed;
  err = server_listen(s, &port_failed);
  if (err == 0)
    log_line("caps: %" PRIu32 " connections, idle timeout %" PRIu64
             " ms, half-close timeout %" PRIu64 " ms, %" PRIu32
             " threads, %" PRIu32 " operations, %" PRIu32 " workers",
             s->opt.max_connections, s->opt.idle_timeout_ms,
             s->opt.half_close_timeout_ms, s->opt.max_threads,
             s->opt.max_operations, s->opt.workers);
  if (err != 0) {
    fprintf(stderr, "iobound-server: cannot listen on %s port %u: %s\n",
            o->host, port_failed, iob_strerror(err));
    server_stop(s);
  }
  uv_run(&s->loop, UV_RUN_DEFAULT);
  free_shared(s); /* every batch has called back: nothing uses them */
  int closed = uv_loop_close(&s->loop);
  if (closed != 0) {
    fprintf(stderr, "iobound-server: the loop did not close: %s\n",
            iob_strerror(closed));
    return CLI_EX_FAILED;
  }
  if (err != 0)
    return CLI_EX_FAILED;
  log_line("stopped");
  return 0;
}

int main(int argc, char **argv) {
  server_options o;
  char error[256];
  int rc = server_parse_args(argc, argv, &o, error, sizeof(error));
  rc = cli_settle("iobound-server", rc, o.listen.action, error, server_usage());
  if (rc >= 0)
    return rc;
  /* A client that vanishes while we write to it must cost an EPIPE, not
   * the whole server. */
  signal(SIGPIPE, SIG_IGN);
  server *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    fprintf(stderr, "iobound-server: out of memory\n");
    return CLI_EX_FAILED;
  }
  s->opt = o;
  log_open();
  rc = serve(s);
  log_close();
  free(s);
  return rc;
}
