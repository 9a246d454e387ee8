/* A client's TCP connection to iobound-server, a line at a time: the
 * bytes it sends cut into lines, the lines sent back queued and written
 * one uv_write at a time, and its end (at once, or once every answer is
 * written). It knows nothing of batches: its owner is told of lines and
 * of the end through callbacks. */
#ifndef IOB_CONNECTION_H
#define IOB_CONNECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cli.h"

/* The longest line kept for the owner, in bytes: a request of 1024 and
 * its '\r'. A longer one is reported too long and skipped to its end. */
#define CONNECTION_LINE_MAX 1025
/* A client whose unwritten answers pile up past this is not read from
 * until they are written, down to half of it: a client that sends
 * requests and does not read the answers gets no more answers either. */
#define CONNECTION_PAUSE (64 * 1024)
/* Unwritten answers past this close the connection (UV_ENOBUFS): a
 * bound on what a connection may queue without reading anything. */
#define CONNECTION_OUTBOX_MAX (1024 * 1024)
/* Bytes read from one connection in one turn of the loop, at most: a
 * client that pipelines thousands of requests gets them answered a few
 * kilobytes a turn, and every other client gets its turn between. */
#define CONNECTION_TURN_BYTES 1024
/* TCP keepalive: a connection silent for CONNECTION_KEEPALIVE_IDLE_S is
 * probed every CONNECTION_KEEPALIVE_INTERVAL_S, and one whose peer has
 * sent nothing (no data, no acknowledgement of a probe) for
 * CONNECTION_PEER_TIMEOUT_S is broken by the kernel (ETIMEDOUT); so is
 * one whose answers have waited that long unacknowledged
 * (TCP_USER_TIMEOUT). A peer whose socket is gone answers a probe with a
 * reset. Either way the connection has an error, which a read or
 * connection_check() finds, though the client sends nothing and is
 * written nothing while its batch runs. */
#define CONNECTION_KEEPALIVE_IDLE_S 30
#define CONNECTION_KEEPALIVE_INTERVAL_S 10
#define CONNECTION_PEER_TIMEOUT_S 60

typedef struct connection connection;

/** What happens to a connection, for its owner. Each runs on the loop. */
typedef struct connection_events {
  /** A line arrived: @p len bytes, without its '\n' (with a '\r' if the
   *  client sent one), which may hold any byte, NUL included; NULL for a
   *  line longer than CONNECTION_LINE_MAX, skipped. */
  void (*line)(connection *conn, const char *line, size_t len);
  /**
   * The client sends no more (EOF: it shut its side down, or closed):
   * answer what it asked for, then connection_end(). A last line without
   * a '\n' came to line() first. NULL: connection_end() at once.
   */
  void (*end)(connection *conn);
  /**
   * The connection is closing, once, from connection_close() or on its
   * own: stop what works for it. @p reason: the read's or a write's error
   * (UV_ECONNRESET: the client is gone), UV_ENOBUFS (it did not read its
   * answers), or 0 (closed on purpose).
   */
  void (*closing)(connection *conn, int reason);
  /** The handle has closed and the connection's buffers are freed: its
   *  memory is the owner's again. */
  void (*closed)(connection *conn);
} connection_events;

/** What the connections of one owner share: the bytes of answers waiting,
 *  all together (one that would take them past max is closed with
 *  UV_ENOBUFS), and the turns of the loop that CONNECTION_TURN_BYTES
 *  counts by. */
typedef struct connection_budget {
  size_t used, max;
  uint64_t turn;
  uv_prepare_t turns; /* counts them, before each poll for I/O */
} connection_budget;

/** Start a budget of @p max bytes on @p loop. @return 0 or a libuv code. */
int connection_budget_init(connection_budget *budget, uv_loop_t *loop,
                           size_t max);

/** Close the budget's handle, to let its loop close. Its memory must last
 *  as long as the connections that point to it. */
void connection_budget_close(connection_budget *budget);

/* Answers waiting to be written, one growing block of text. */
typedef struct outbox {
  char *text;
  size_t len, size;
} outbox;

struct connection {
  uv_tcp_t tcp;
  uv_shutdown_t shutdown; /* connection_end(): flush, then close */
  /* Answers go out in one uv_write at a time: what comes meanwhile waits
   * in `queued`, and goes out in one piece when `sending` is written. */
  uv_write_t write;
  outbox sending, queued;
  bool writing;
  bool ending;     /* connection_end(): send and read no more */
  bool shut;       /* uv_shutdown() called */
  bool closing;    /* uv_close() called: the handle is going */
  bool discarding; /* inside a line that is too long: skip to '\n' */
  bool eof;        /* the client sends no more: watch with connection_check */
  bool paused;     /* not read from: CONNECTION_PAUSE answers wait */
  uint64_t turn;   /* the budget's turn when it was last read */
  size_t taken;    /* bytes read in that turn */
  const connection_events *events;
  void *data;                /* the owner's */
  connection_budget *budget; /* the owner's, or NULL: none */
  size_t len;
  char line[CONNECTION_LINE_MAX + 1]; /* a line so far, and a NUL */
};

/**
 * Accept a client of @p listener into @p conn (zeroed memory of the
 * owner's, with data and budget set) and start reading its lines.
 * @return 0; or an error, and then the handle closes (events->closed
 *         follows, events->closing does not).
 */
int connection_accept(connection *conn, uv_stream_t *listener,
                      const connection_events *events);

/** Whether lines may still be sent (not closing, not ending; after EOF
 *  they may). */
bool connection_open(const connection *conn);

/**
 * See whether the client is gone though the connection neither reads nor
 * writes (after EOF libuv reads no more, and a client waiting for a batch
 * is written nothing): a reset it sent, or a keepalive that failed. If it
 * is, close the connection as a failed read would (events->closing gets
 * the error). It asks the socket, without reading from it.
 * @return false if the connection closes (now or before), true if not.
 */
bool connection_check(connection *conn);

/**
 * Queue one line (a '\n' is added) and write it as soon as the writes
 * before it are done. Sends nothing once the connection closes or ends;
 * closes it (reason UV_ENOBUFS) if CONNECTION_OUTBOX_MAX or the budget
 * would be passed.
 */
CLI_PRINTF(2, 3)
void connection_send(connection *conn, const char *fmt, ...);

/** Read no more; close once every queued line has been written. */
void connection_end(connection *conn);

/** Close now: what is queued is dropped. Again is a no-op. */
void connection_close(connection *conn);

#endif
