/* iobound-server: a small line-based TCP service on one libuv loop. Every
 * client's batches run on the server's own loop through iobound's embedded
 * API (iob_batch_create + iob_batch_start), beside the other clients'
 * batches and the server's sockets, and each report goes back as a line of
 * JSON from the batch's callback. docs/embedding.md walks through it. */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#if defined(__GNUC__)
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PRINTF_LIKE(fmt, args)
#endif

/* A client whose unwritten answers pile up past this is not reading them:
 * it is dropped rather than allowed to grow the server's memory. */
#define OUTBOX_MAX (1024 * 1024)

typedef struct server server;

/* Answers waiting to be written, one growing block of text. */
typedef struct outbox {
  char *text;
  size_t len, size;
} outbox;

/* One connection. Its handle and its batch end separately, in either
 * order, each with a callback: the client is freed once both have run. */
typedef struct client {
  uv_tcp_t tcp;
  uv_shutdown_t shutdown; /* "quit": flush the answers, then close */
  /* Answers go out in one uv_write at a time: what comes meanwhile waits
   * in `queued`, and goes out in one piece when `sending` is written. */
  uv_write_t write;
  outbox sending, queued;
  bool writing;
  server *srv;
  struct client *prev, *next; /* the server's clients not yet closing */
  unsigned long id;
  iob_batch *batch;      /* the running batch, or NULL */
  request req;           /* what the running batch was asked for */
  bool ending;           /* "quit": send no more, close once written */
  bool shut;             /* uv_shutdown() called */
  bool closing;          /* uv_close() called: the handle is going */
  bool closed;           /* the close callback ran */
  bool quit_after_batch; /* "quit" came while the batch ran */
  bool discarding;       /* inside a line that is too long: skip to '\n' */
  size_t len;
  char line[SERVER_LINE_MAX + 2]; /* a line, its '\r' if any, and a NUL */
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
  /* libuv hands the bytes of one read to on_read() before the next read,
   * so one buffer serves every client. */
  char readbuf[64 * 1024];
};

/* The server's log, on stdout, a line at a time (tests read it). */
PRINTF_LIKE(1, 2) static void log_line(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
}

/* ---- closing a client -------------------------------------------------- */

static void free_if_done(client *c) {
  if (!c->closed || c->batch != NULL)
    return;
  free(c->sending.text);
  free(c->queued.text);
  free(c);
}

static void on_client_closed(uv_handle_t *handle) {
  client *c = handle->data;
  c->closed = true;
  free_if_done(c);
}

static void unlink_client(client *c) {
  server *s = c->srv;
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    s->clients = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  s->connected--;
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

/* Close now: pending answers are dropped, a running batch is cancelled. */
static void client_close(client *c) {
  if (c->closing)
    return;
  c->closing = true;
  unlink_client(c);
  if (c->batch != NULL)
    cancel_batch(c);
  uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  client_close(req->data);
}

/* After "quit", once the last answer is written, shut the connection down
 * (uv_shutdown() waits only for writes already handed to libuv, not for
 * answers still queued behind them), and close it when that is done. */
static void shutdown_when_written(client *c) {
  if (!c->ending || c->writing || c->closing || c->shut)
    return;
  c->shut = true;
  c->shutdown.data = c;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
    client_close(c);
}

static void client_end(client *c) {
  c->ending = true;
  shutdown_when_written(c);
}

/* ---- answering --------------------------------------------------------- */

/* Make room for `more` bytes (and a NUL) in `o`, up to OUTBOX_MAX. */
static bool outbox_reserve(outbox *o, size_t more) {
  size_t need = o->len + more + 1;
  if (need <= o->size)
    return true;
  if (need > OUTBOX_MAX)
    return false;
  size_t size = o->size ? o->size : 256;
  while (size < need)
    size *= 2;
  char *text = realloc(o->text, size);
  if (text == NULL)
    return false;
  o->text = text;
  o->size = size;
  return true;
}

static void flush(client *c);

static void on_written(uv_write_t *req, int status) {
  client *c = req->data;
  c->writing = false;
  c->sending.len = 0;
  /* On an error the client is gone or going: its read or close ends it. */
  if (status == 0) {
    flush(c);
    shutdown_when_written(c);
  }
}

/* Write what is queued, unless a write is already on its way. */
static void flush(client *c) {
  if (c->writing || c->closing || c->queued.len == 0)
    return;
  outbox swap = c->sending;
  c->sending = c->queued;
  c->queued = swap;
  uv_buf_t buf = uv_buf_init(c->sending.text, (unsigned int)c->sending.len);
  c->write.data = c;
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
    client_close(c);
  else
    c->writing = true;
}

/* Send one line, formatted. A client going away gets nothing. */
PRINTF_LIKE(2, 3) static void send_line(client *c, const char *fmt, ...) {
  if (c->closing || c->ending)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !outbox_reserve(&c->queued, (size_t)n + 1)) {
    log_line("client %lu does not read its answers; closing", c->id);
    client_close(c);
    return;
  }
  va_start(ap, fmt);
  vsnprintf(c->queued.text + c->queued.len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  c->queued.len += (size_t)n;
  c->queued.text[c->queued.len++] = '\n';
  flush(c);
}

/* iob_err_name(0) is libuv's uv_err_name(0): a string allocated on every
 * call and never freed (see docs/embedding.md), so name success here. */
static const char *status_name(int status) {
  return status == 0 ? "OK" : iob_err_name(status);
}

static void send_report(client *c, const iob_batch *batch) {
  iob_report r;
  int err = iob_batch_report(batch, &r);
  if (err != 0) {
    send_line(c, "error no report: %s", iob_strerror(err));
    return;
  }
  const iob_config *q = &c->req.config;
  send_line(
      c,
      "{\"style\":\"%s\",\"work\":\"%s\",\"count\":%" PRIu32
      ",\"duration_ms\":%" PRIu64 ",\"limit\":%" PRIu32
      ",\"timeout_ms\":%" PRIu64 ",\"elapsed_ms\":%.3f"
      ",\"speedup\":%.2f,\"peak_in_flight\":%" PRIu32 ",\"threads\":%" PRIu32
      ",\"failed\":%" PRIu32 ",\"status\":\"%s\"}",
      iob_style_name(r.style), iob_work_name(r.work), r.count, q->duration_ms,
      q->max_in_flight, q->timeout_ms, (double)r.elapsed_ns / 1e6, r.speedup,
      r.peak_in_flight, r.threads, r.failed, status_name(r.status));
}

static void send_stats(client *c) {
  const server *s = c->srv;
  send_line(c,
            "{\"clients\":%lu,\"batches_running\":%lu,\"batches_done\":%lu"
            ",\"batches_cancelled\":%lu}",
            s->connected, s->running, s->done, s->cancelled);
}

/* ---- batches ----------------------------------------------------------- */

/* stream=1: a line per operation as it settles. It also runs from inside
 * iob_batch_cancel(), for the operations the cancel settles; the client is
 * closing then, and send_line() sends nothing. */
static void on_op_settled(iob_batch *batch, uint32_t index,
                          const iob_record *rec) {
  send_line(iob_batch_data(batch),
            "{\"op\":%" PRIu32 ",\"status\":\"%s\",\"started_ms\":%.3f"
            ",\"finished_ms\":%.3f}",
            index, status_name(rec->status), (double)rec->started_ns / 1e6,
            (double)rec->finished_ns / 1e6);
}

/* Every operation has settled: answer, if the client is still there, free
 * the batch, and free the client if its handle has closed too. */
static void on_batch_done(iob_batch *batch, int status) {
  client *c = iob_batch_data(batch);
  c->srv->running--;
  if (!c->closing) {
    send_report(c, batch);
    c->srv->done++;
  }
  log_line("client %lu: batch over, %s", c->id, status_name(status));
  c->batch = NULL;
  iob_batch_free(batch);
  if (c->quit_after_batch && !c->closing)
    client_end(c);
  free_if_done(c);
}

static void start_batch(client *c, const request *r) {
  if (c->batch != NULL) {
    send_line(c, "error a batch is already running on this connection");
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
    send_line(c, "error %s", iob_strerror(err));
    return;
  }
  c->batch = b;
  c->srv->running++;
}

/* ---- reading requests -------------------------------------------------- */

static void handle_line(client *c, const char *line) {
  request r;
  char error[256];
  if (c->quit_after_batch || c->ending)
    return; /* after "quit", the rest is not read */
  if (server_parse_request(line, &r, error, sizeof(error)) != 0) {
    send_line(c, "error %s", error);
    return;
  }
  switch (r.kind) {
  case REQUEST_NONE:
    break;
  case REQUEST_PING:
    send_line(c, "pong");
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
      client_end(c);
    break;
  }
}

/* Gather lines a byte at a time: requests are short, and a line too long
 * is answered once and skipped to its end without being stored. The
 * parser judges the length; this only bounds what is kept. */
static void take_byte(client *c, char ch) {
  if (ch == '\n') {
    if (!c->discarding) {
      c->line[c->len] = '\0';
      handle_line(c, c->line);
    }
    c->discarding = false;
    c->len = 0;
  } else if (c->discarding) {
    return;
  } else if (c->len == sizeof(c->line) - 1) {
    send_line(c, "error line too long (at most %d bytes)", SERVER_LINE_MAX);
    c->discarding = true;
  } else {
    c->line[c->len++] = ch;
  }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  client *c = handle->data;
  *buf = uv_buf_init(c->srv->readbuf, sizeof(c->srv->readbuf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  client *c = stream->data;
  if (nread < 0) {
    /* EOF or an error: the client is gone, and its batch with it. */
    log_line("client %lu disconnected (%s)", c->id, uv_err_name((int)nread));
    client_close(c);
    return;
  }
  for (ssize_t i = 0; i < nread && !c->closing; i++)
    take_byte(c, buf->base[i]);
}

/* ---- the server -------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status) {
  server *s = listener->data;
  client *c = status == 0 ? calloc(1, sizeof(*c)) : NULL;
  if (c == NULL) {
    log_line("cannot take a connection: %s",
             uv_strerror(status ? status : UV_ENOMEM));
    return;
  }
  c->srv = s;
  c->tcp.data = c;
  uv_tcp_init(&s->loop, &c->tcp);
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
    c->closing = true; /* never listed, never read */
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
    return;
  }
  c->id = ++s->next_id;
  c->next = s->clients;
  if (s->clients != NULL)
    s->clients->prev = c;
  s->clients = c;
  s->connected++;
  /* Answers are small lines that must go out at once: no Nagle delay. */
  uv_tcp_nodelay(&c->tcp, 1);
  log_line("client %lu connected", c->id);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
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
    client_close(s->clients);
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

static int server_listen(server *s, const server_opts *o) {
  int err = uv_tcp_bind(&s->listener, (const struct sockaddr *)&o->addr, 0);
  if (err == 0)
    err = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
  if (err == 0)
    err = print_address(s);
  return err;
}

/* Run the server until a signal stops it. @return the exit status. */
static int serve(server *s, const server_opts *o) {
  int err = uv_loop_init(&s->loop);
  if (err != 0) {
    fprintf(stderr, "iobound-server: %s\n", uv_strerror(err));
    return 1;
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
            o->host, o->port, uv_strerror(err));
    server_stop(s);
  }
  uv_run(&s->loop, UV_RUN_DEFAULT);
  int closed = uv_loop_close(&s->loop);
  if (closed != 0) {
    fprintf(stderr, "iobound-server: the loop did not close: %s\n",
            uv_strerror(closed));
    return 1;
  }
  if (err != 0)
    return 1;
  log_line("stopped");
  return 0;
}

int main(int argc, char **argv) {
  server_opts o;
  char error[256];
  int rc = server_parse_args(argc, argv, &o, error, sizeof(error));
  if (rc != 0) {
    fprintf(stderr, "iobound-server: %s\nTry 'iobound-server --help'.\n",
            error);
    return rc;
  }
  if (o.action == SERVER_HELP) {
    fputs(server_usage, stdout);
    return 0;
  }
  if (o.action == SERVER_VERSION) {
    printf("iobound-server %s\n", iob_version());
    return 0;
  }
  /* A client that vanishes while we write to it must cost an EPIPE, not
   * the whole server. */
  signal(SIGPIPE, SIG_IGN);
  /* Whoever reads the log through a pipe sees each line as it happens. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  server *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    fprintf(stderr, "iobound-server: out of memory\n");
    return 1;
  }
  rc = serve(s, &o);
  free(s);
  return rc;
}
