/* A client's connection, a line at a time (connection.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "connection.h"

/* ---- closing ------------------------------------------------------------ */

static void on_closed(uv_handle_t *handle) {
  connection *conn = handle->data;
  /* Writes still queued were called back (UV_ECANCELED) before this. */
  free(conn->sending.text);
  free(conn->queued.text);
  conn->sending = conn->queued = (outbox){0};
  conn->events->closed(conn);
}

static void close_for(connection *conn, int reason) {
  if (conn->closing)
    return;
  /* First: the owner's callbacks that send now send nothing. */
  conn->closing = true;
  conn->events->closing(conn, reason);
  uv_close((uv_handle_t *)&conn->tcp, on_closed);
}

void connection_close(connection *conn) { close_for(conn, 0); }

static void on_shutdown(uv_shutdown_t *req, int status) {
  connection_close(req->data);
}

/* After connection_end(), once the last line is written, shut the
 * connection down (uv_shutdown() waits only for writes already handed to
 * libuv, not for lines still queued behind them), and close it when that
 * is done. */
static void shutdown_when_written(connection *conn) {
  if (!conn->ending || conn->writing || conn->closing || conn->shut)
    return;
  conn->shut = true;
  conn->shutdown.data = conn;
  if (uv_shutdown(&conn->shutdown, (uv_stream_t *)&conn->tcp, on_shutdown) != 0)
    connection_close(conn);
}

void connection_end(connection *conn) {
  conn->ending = true;
  shutdown_when_written(conn);
}

bool connection_open(const connection *conn) {
  return !conn->closing && !conn->ending;
}

/* ---- writing ------------------------------------------------------------ */

/* Make room for `more` bytes (and a NUL) in `o`, up to the bound. */
static bool outbox_reserve(outbox *o, size_t more) {
  size_t need = o->len + more + 1;
  if (need <= o->size)
    return true;
  if (need > CONNECTION_OUTBOX_MAX)
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

static void flush(connection *conn);

static void on_written(uv_write_t *req, int status) {
  connection *conn = req->data;
  conn->writing = false;
  conn->sending.len = 0;
  /* On an error the client is gone or going: its read or close ends it. */
  if (status == 0) {
    flush(conn);
    shutdown_when_written(conn);
  }
}

/* Write what is queued, unless a write is already on its way. */
static void flush(connection *conn) {
  if (conn->writing || conn->closing || conn->queued.len == 0)
    return;
  outbox swap = conn->sending;
  conn->sending = conn->queued;
  conn->queued = swap;
  uv_buf_t buf =
      uv_buf_init(conn->sending.text, (unsigned int)conn->sending.len);
  conn->write.data = conn;
  if (uv_write(&conn->write, (uv_stream_t *)&conn->tcp, &buf, 1, on_written) !=
      0)
    connection_close(conn);
  else
    conn->writing = true;
}

void connection_send(connection *conn, const char *fmt, ...) {
  if (!connection_open(conn))
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  outbox *q = &conn->queued;
  if (n < 0 || !outbox_reserve(q, (size_t)n + 1)) {
    close_for(conn, UV_ENOBUFS);
    return;
  }
  va_start(ap, fmt);
  vsnprintf(q->text + q->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  q->len += (size_t)n;
  q->text[q->len++] = '\n';
  flush(conn);
}

/* ---- reading ------------------------------------------------------------ */

/* Gather lines a byte at a time: requests are short, and a line too long
 * is reported once and skipped to its end without being stored. */
static void take_byte(connection *conn, char ch) {
  if (ch == '\n') {
    if (!conn->discarding) {
      conn->line[conn->len] = '\0';
      conn->events->line(conn, conn->line);
    }
    conn->discarding = false;
    conn->len = 0;
  } else if (conn->discarding) {
    return;
  } else if (conn->len == CONNECTION_LINE_MAX) {
    conn->events->line(conn, NULL);
    conn->discarding = true;
  } else {
    conn->line[conn->len++] = ch;
  }
}

/* libuv hands the bytes of one read to on_read() before the next read,
 * so one buffer serves every connection of the loop's thread. */
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  static char bytes[64 * 1024];
  *buf = uv_buf_init(bytes, sizeof(bytes));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  connection *conn = stream->data;
  if (nread < 0) { /* EOF or an error: the client is gone */
    close_for(conn, (int)nread);
    return;
  }
  /* After connection_end() the rest is read, to see the client leave,
   * but not taken. */
  for (ssize_t i = 0; i < nread && connection_open(conn); i++)
    take_byte(conn, buf->base[i]);
}

int connection_accept(connection *conn, uv_stream_t *listener,
                      const connection_events *events) {
  conn->events = events;
  conn->tcp.data = conn;
  uv_tcp_init(listener->loop, &conn->tcp);
  int err = uv_accept(listener, (uv_stream_t *)&conn->tcp);
  if (err == 0)
    err = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
  if (err != 0) {
    conn->closing = true; /* never read: no closing event */
    uv_close((uv_handle_t *)&conn->tcp, on_closed);
    return err;
  }
  /* Answers are small lines that must go out at once: no Nagle delay. */
  uv_tcp_nodelay(&conn->tcp, 1);
  return 0;
}
