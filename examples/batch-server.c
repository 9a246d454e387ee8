/* iobound-server: a small line-based TCP service on one libuv loop. Every
 * client's batches run on the server's own loop through iobound's embedded
 * API (iob_batch_create + iob_batch_start), beside the other clients'
 * batches and the server's sockets, and each report goes back as a line of
 * JSON from the batch's callback. This file is the batches and the server;
 * connection.c cuts a client's bytes into lines and writes the answers.
 * docs/embedding.md walks through it. */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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
  unsigned long id;
  iob_batch *batch;      /* the running batch, or NULL */
  request req;           /* what the running batch was asked for */
  bool closed;           /* the connection's closed callback ran */
  bool quit_after_batch; /* "quit" came while the batch ran */
} client;

struct server {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_signal_t sigint, sigterm;
  bool stopping;
  client *clients;
  unsigned long next_id;
  unsigned long connected;                /* clients in the list */
  unsigned long running, done, cancelled; /* batches */
};

/* The server's log, on stdout, a line at a time (tests read it). */
CLI_PRINTF(1, 2) static void log_line(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
}

/* ---- answers ------------------------------------------------------------ */

static void send_report(client *c, const iob_batch *batch) {
  iob_report r;
  int err = iob_batch_report(batch, &r);
  char line[1024];
  cli_json_batch json = {.config = &c->req.config,
                         .report = &r,
                         .speedup = r.speedup,
                         .max_rss_kib = cli_max_rss_kib()};
  if (err == 0 && cli_json_report(line, sizeof(line), &json) < 0)
    err = IOB_ENOMEM;
  if (err != 0)
    connection_send(&c->conn, "error no report: %s", iob_strerror(err));
  else
    connection_send(&c->conn, "%s", line);
}

static void send_stats(client *c) {
  const server *s = c->srv;
  connection_send(&c->conn,
                  "{\"clients\":%lu,\"batches_running\":%lu,\"batches_done\""
                  ":%lu,\"batches_cancelled\":%lu}",
                  s->connected, s->running, s->done, s->cancelled);
}

/* ---- batches ------------------------------------------------------------ */

/* The client is freed once its connection has closed and its batch has
 * called back, whichever comes last. */
static void free_if_done(client *c) {
  if (c->closed && c->batch == NULL)
    free(c);
}

/* stream=1: a line per operation as it settles. It also runs from inside
 * iob_batch_cancel(), for the operations the cancel settles; the client is
 * closing then, and connection_send() sends nothing. */
static void on_op_settled(iob_batch *batch, uint32_t index,
                          const iob_record *rec) {
  client *c = iob_batch_data(batch);
  connection_send(&c->conn,
                  "{\"op\":%" PRIu32 ",\"status\":\"%s\",\"started_ms\":%.3f"
                  ",\"finished_ms\":%.3f}",
                  index, iob_err_name(rec->status),
                  (double)rec->started_ns / 1e6,
                  (double)rec->finished_ns / 1e6);
}

/* Every operation has settled: answer, if the client is still there, free
 * the batch, and free the client if its connection has closed too. */
static void on_batch_done(iob_batch *batch, int status) {
  client *c = iob_batch_data(batch);
  c->srv->running--;
  if (connection_open(&c->conn)) {
    send_report(c, batch);
    c->srv->done++;
  }
  log_line("client %lu: batch over, %s", c->id, iob_err_name(status));
  c->batch = NULL;
  iob_batch_free(batch);
  if (c->quit_after_batch && connection_open(&c->conn))
    connection_end(&c->conn);
  free_if_done(c);
}

static void start_batch(client *c, const request *r) {
  if (c->batch != NULL) {
    connection_send(&c->conn,
                    "error a batch is already running on this connection");
    return;
  }
  c->req = *r;
  c->req.config.data = c;
  c->req.config.on_op = r->stream ? on_op_settled : NULL;
  iob_batch *b;
  int err = iob_batch_create(&b, &c->req.config);
  if (err == 0) {
    err = iob_batch_start(b, &c->srv->loop, on_batch_done);
    if (err != 0)
      iob_batch_free(b);
  }
  if (err != 0) {
    connection_send(&c->conn, "error %s", iob_strerror(err));
    return;
  }
  c->batch = b;
  c->srv->running++;
}

/* Cancel the client's batch: its callback still runs later, from the loop
 * (never from inside iob_batch_cancel), and frees it. */
static void cancel_batch(client *c) {
  iob_progress p;
  iob_batch_progress(c->batch, &p);
  log_line("cancelled batch for client %lu (%" PRIu32 " of %" PRIu32
           " operations done)",
           c->id, p.done, p.done + p.in_flight + p.waiting);
  c->srv->cancelled++;
  iob_batch_cancel(c->batch);
}

/* ---- a client's connection ---------------------------------------------- */

static void on_line(connection *conn, const char *line) {
  client *c = conn->data;
  request r;
  char error[256];
  if (line == NULL) {
    connection_send(conn, "error line too long (at most %d bytes)",
                    SERVER_LINE_MAX);
    return;
  }
  if (c->quit_after_batch)
    return; /* after "quit", the rest is not read */
  if (server_parse_request(line, &r, error, sizeof(error)) != 0) {
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
      c->quit_after_batch = true;
    else
      connection_end(conn);
    break;
  }
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
  if (c->batch != NULL)
    cancel_batch(c);
}

static void on_closed(connection *conn) {
  client *c = conn->data;
  c->closed = true;
  free_if_done(c);
}

static const connection_events client_events = {on_line, on_closing, on_closed};

/* ---- the server --------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status) {
  server *s = listener->data;
  client *c = status == 0 ? calloc(1, sizeof(*c)) : NULL;
  if (c == NULL) {
    log_line("cannot take a connection: %s",
             iob_strerror(status ? status : UV_ENOMEM));
    return;
  }
  c->srv = s;
  c->conn.data = c;
  if (connection_accept(&c->conn, listener, &client_events) != 0)
    return; /* never listed; freed when its handle has closed */
  c->id = ++s->next_id;
  c->next = s->clients;
  if (s->clients != NULL)
    s->clients->prev = c;
  s->clients = c;
  s->connected++;
  log_line("client %lu connected", c->id);
}

/* Stop taking clients, close every client (cancelling its batch) and the
 * signal handles: the loop then ends when the last batch's callback has
 * run, since blocking work already running cannot be interrupted. */
static void server_stop(server *s) {
  if (s->stopping)
    return;
  s->stopping = true;
  uv_close((uv_handle_t *)&s->listener, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  while (s->clients != NULL)
    connection_close(&s->clients->conn);
}

static void on_signal(uv_signal_t *sig, int signum) {
  log_line("stopping on %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
  server_stop(sig->data);
}

/* Print "listening on ADDRESS:PORT" with the port actually bound. */
static int print_address(server *s) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char ip[64];
  int err = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
  if (err == 0)
    err = uv_ip_name((struct sockaddr *)&ss, ip, sizeof(ip));
  if (err != 0)
    return err;
  if (ss.ss_family == AF_INET6)
    log_line("listening on [%s]:%u", ip,
             ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
  else
    log_line("listening on %s:%u", ip,
             ntohs(((struct sockaddr_in *)&ss)->sin_port));
  return 0;
}

static int server_listen(server *s, const cli_listen *o) {
  int err = uv_tcp_bind(&s->listener, (const struct sockaddr *)&o->addr, 0);
  if (err == 0)
    err = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
  if (err == 0)
    err = print_address(s);
  return err;
}

/* Run the server until a signal stops it. @return the exit status. */
static int serve(server *s, const cli_listen *o) {
  int err = uv_loop_init(&s->loop);
  if (err != 0) {
    fprintf(stderr, "iobound-server: %s\n", iob_strerror(err));
    return CLI_EX_FAILED;
  }
  uv_tcp_init(&s->loop, &s->listener);
  uv_signal_init(&s->loop, &s->sigint);
  uv_signal_init(&s->loop, &s->sigterm);
  s->listener.data = s->sigint.data = s->sigterm.data = s;
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  err = server_listen(s, o);
  if (err != 0) {
    fprintf(stderr, "iobound-server: cannot listen on %s port %u: %s\n",
            o->host, o->port, iob_strerror(err));
    server_stop(s);
  }
  uv_run(&s->loop, UV_RUN_DEFAULT);
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
  cli_listen o;
  char error[256];
  int rc = cli_parse_listen(argc, argv, &o, error, sizeof(error));
  rc = cli_settle("iobound-server", rc, o.action, error, server_usage());
  if (rc >= 0)
    return rc;
  /* A client that vanishes while we write to it must cost an EPIPE, not
   * the whole server. */
  signal(SIGPIPE, SIG_IGN);
  /* Whoever reads the log through a pipe sees each line as it happens. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  server *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    fprintf(stderr, "iobound-server: out of memory\n");
    return CLI_EX_FAILED;
  }
  rc = serve(s, &o);
  free(s);
  return rc;
}
