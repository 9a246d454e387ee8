/* A client's connection, a line at a time (connection.h). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "connection.h"

/* Buffers of answers larger than this are freed once written: a burst
 * of answers does not keep its memory for the connection's life. */
#define OUTBOX_KEEP (64 * 1024)

/* ---- closing ------------------------------------------------------------ */

static void outbox_free(connection *conn, outbox *o) {
  if (conn->budget != NULL)
    conn->budget->used -= o->size;
  free(o->text);
  *o = (outbox){0};
}

static void on_closed(uv_handle_t *handle) {
  connection *conn = handle->data;
  /* Writes still queued were called back (UV_ECANCELED) before this. */
  outbox_free(conn, &conn->sending);
  outbox_free(conn, &conn->queued);
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

/* ---- the peer ----------------------------------------------------------- */

/* The error that says the client is gone, or 0, asked of the socket
 * without reading from it (after EOF a read only says EOF again). poll()
 * asked for no event reports only an error (POLLERR: a reset, a keepalive
 * that failed) or a hang-up (POLLHUP: both directions shut, which before
 * our own shutdown means the connection was torn down). */
static int peer_error(const connection *conn) {
  uv_os_fd_t fd;
  if (uv_fileno((const uv_handle_t *)&conn->tcp, &fd) != 0)
    return 0;
  struct pollfd pfd = {.fd = fd, .events = 0};
  int n;
  do
    n = poll(&pfd, 1, 0);
  while (n < 0 && errno == EINTR);
  if (n <= 0 || !(pfd.revents & (POLLERR | POLLHUP)))
    return 0;
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0)
    return UV_ECONNRESET; /* torn down, its error already taken */
  return uv_translate_sys_error(err);
}

bool connection_check(connection *conn) {
  if (conn->closing)
    return false;
  /* Once we have shut our side down, both sides are: a hang-up then says
   * nothing of the client, and the connection closes on its own. */
  if (conn->shut)
    return true;
  int err = peer_error(conn);
  if (err == 0)
    return true;
  close_for(conn, err);
  return false;
}

/* ---- writing ------------------------------------------------------------ */

/* Make room for `more` bytes (and a NUL) in `o`, up to the bounds: the
 * connection's own and its share of the budget. */
static bool outbox_reserve(connection *conn, outbox *o, size_t more) {
  size_t need = o->len + more + 1;
  if (need <= o->size)
    return true;
  if (need > CONNECTION_OUTBOX_MAX)
    return false;
  size_t size = o->size ? o->size : 256;
  while (size < need)
    size *= 2;
  connection_budget *b = conn->budget;
  if (b != NULL && b->used - o->size + size > b->max)
    return false;
  char *text = realloc(o->text, size);
  if (text == NULL)
    return false;
  if (b != NULL)
    b->used = b->used - o->size + size;
  o->text = text;
  o->size = size;
  return true;
}

static void flush(connection *conn);
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static size_t unwritten(const connection *conn) {
  return conn->sending.len + conn->queued.len;
}

/* Read again once the answers that stopped the reading are half gone. */
static void resume(connection *conn) {
  if (!conn->paused || conn->closing || conn->eof ||
      unwritten(conn) > CONNECTION_PAUSE / 2)
    return;
  conn->paused = false;
  if (uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) != 0)
    connection_close(conn);
}

static void on_written(uv_write_t *req, int status) {
  connection *conn = req->data;
  conn->writing = false;
  conn->sending.len = 0;
  if (conn->sending.size > OUTBOX_KEEP)
    outbox_free(conn, &conn->sending);
  /* A write that fails (EPIPE, ECONNRESET) says the client is gone, also
   * once it stopped sending and nothing reads its socket any more. */
  if (status != 0) {
    close_for(conn, status);
    return;
  }
  flush(conn);
  resume(conn);
  shutdown_when_written(conn);
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
  if (n < 0 || !outbox_reserve(conn, q, (size_t)n + 1)) {
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
      conn->events->line(conn, conn->line, conn->len);
    }
    conn->discarding = false;
    conn->len = 0;
  } else if (conn->discarding) {
    return;
  } else if (conn->len == CONNECTION_LINE_MAX) {
    conn->events->line(conn, NULL, 0);
    conn->discarding = true;
  } else {
    conn->line[conn->len++] = ch;
  }
}

/* libuv hands the bytes of one read to on_read() before the next read,
 * so one buffer serves every connection of the loop's thread. A
 * connection that has had its CONNECTION_TURN_BYTES this turn gets an
 * empty buffer: libuv then calls on_read() with UV_ENOBUFS, reads no
 * more now, and tries again the next turn. */
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  static char bytes[CONNECTION_TURN_BYTES];
  connection *conn = handle->data;
  connection_budget *b = conn->budget;
  size_t room = sizeof(bytes);
  if (b != NULL) {
    if (conn->turn != b->turn) {
      conn->turn = b->turn;
      conn->taken = 0;
    }
    room -= conn->taken;
  }
  *buf = uv_buf_init(bytes, (unsigned int)room);
}

/* EOF: the client sends no more, but may still read (it called
 * shutdown(SHUT_WR)), or may have closed: nothing tells the two apart
 * until a write fails. So its answers still go out, then it is closed.
 * libuv has stopped reading: the owner watches the connection with
 * connection_check() from now on.
 *
 * libuv also reports EOF for a reset that came with the last bytes: it
 * takes a hang-up after a short read for the end of the stream, and never
 * reads the error. So the socket is asked first: a client that reset
 * sends no more, reads no more, and its batch is cancelled at once. */
static void take_eof(connection *conn) {
  conn->eof = true;
  if (!connection_check(conn))
    return;
  if (!connection_open(conn))
    return; /* ending already: closes once written */
  if (conn->len > 0 && !conn->discarding) /* a last line with no '\n' */
    take_byte(conn, '\n');
  if (!connection_open(conn))
    return;
  if (conn->events->end != NULL)
    conn->events->end(conn);
  else
    connection_end(conn);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  connection *conn = stream->data;
  if (nread == UV_EOF) {
    take_eof(conn);
    return;
  }
  if (nread == UV_ENOBUFS) /* its turn is over: the next one */
    return;
  if (nread < 0) { /* an error: the client is gone */
    close_for(conn, (int)nread);
    return;
  }
  conn->taken += (size_t)nread;
  /* After connection_end() the rest is read, to see the client leave,
   * but not taken. */
  for (ssize_t i = 0; i < nread && connection_open(conn); i++)
    take_byte(conn, buf->base[i]);
  if (!conn->closing && unwritten(conn) > CONNECTION_PAUSE) {
    uv_read_stop(stream); /* until its answers are written: resume() */
    conn->paused = true;
  }
}

static void on_turn(uv_prepare_t *turns) {
  connection_budget *b = turns->data;
  b->turn++;
}

int connection_budget_init(connection_budget *b, uv_loop_t *loop, size_t max) {
  *b = (connection_budget){.max = max};
  b->turns.data = b;
  int err = uv_prepare_init(loop, &b->turns);
  if (err == 0)
    err = uv_prepare_start(&b->turns, on_turn);
  if (err == 0) /* counting turns is no reason to keep the loop running */
    uv_unref((uv_handle_t *)&b->turns);
  return err;
}

void connection_budget_close(connection_budget *b) {
  if (!uv_is_closing((uv_handle_t *)&b->turns))
    uv_close((uv_handle_t *)&b->turns, NULL);
}

/* TCP keepalive, and a bound on answers left unacknowledged, so that a
 * peer that vanished, or whose socket is gone, breaks the connection
 * (connection.h). Best effort: where an option is missing, the system's
 * default stays. */
static void keep_alive(connection *conn) {
  uv_tcp_keepalive(&conn->tcp, 1, CONNECTION_KEEPALIVE_IDLE_S);
  uv_os_fd_t fd;
  if (uv_fileno((const uv_handle_t *)&conn->tcp, &fd) != 0)
    return;
#if defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
  int interval = CONNECTION_KEEPALIVE_INTERVAL_S;
  int probes = (CONNECTION_PEER_TIMEOUT_S - CONNECTION_KEEPALIVE_IDLE_S) /
               CONNECTION_KEEPALIVE_INTERVAL_S;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
#endif
#ifdef TCP_USER_TIMEOUT
  unsigned int ms = CONNECTION_PEER_TIMEOUT_S * 1000u;
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
#endif
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
  keep_alive(conn);
  return 0;
}
