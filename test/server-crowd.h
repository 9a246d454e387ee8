/* A crowd of lean clients for iobound-server's abuse tests
 * (test-server-abuse.c, test-server-limits.c): a thousand at once on the
 * test's own loop (common.h's the_loop), each counting its answers (all,
 * errors, pongs, reports) and keeping its first and last; and the server
 * (or any program) started as a child process (server-proc.h). The
 * other server tests' clients, which keep every line and ping, are
 * server-client.h's. */
#ifndef IOB_TEST_SERVER_CROWD_H
#define IOB_TEST_SERVER_CROWD_H

#include <stdbool.h>

#include "common.h"
#include "server-proc.h"

typedef struct client {
  uv_tcp_t tcp;
  uv_connect_t connect;
  bool read; /* reads what the server says (a deaf one does not) */
  bool connected, eof, closed;
  int connect_status;
  int lines, errors, pongs, reports; /* answers: all, "error ...", ... */
  bool unprintable; /* an answer held a byte outside printable ASCII */
  char first[1536], last[1536]; /* a report's JSON line is 900 bytes */
  char partial[1536];
  size_t len;
} client;

/* Start connecting. rcvbuf, when not 0, makes the socket's receive buffer
 * that small; a client that does not read never starts reading. */
void dial(client *c, int port, int rcvbuf, bool read);

/* Whether the n clients at cs have connected. */
bool all_connected(const client *cs, int n);

/* dial() n clients at once and wait until all have connected. */
void dial_all(client *cs, int n, int port, int rcvbuf, bool read);

/* Send `len` bytes, NUL and all; or text, strlen bytes. */
void send_bytes(client *c, const char *bytes, size_t len);
void send_text(client *c, const char *text);

/* Send no more (shutdown(SHUT_WR)), but go on reading. */
void half_close(client *c);

/* Send a request and wait for its one line of answer. */
const char *ask(client *c, const char *request);

/* Start closing c, with an RST if `reset` (and it connected), else a
 * FIN; its `closed` says when it is. */
void leave(client *c, bool reset);

/* Close every client (with an RST if reset), and wait for it. */
void close_all(client *cs, int n, bool reset);

/* How many of the n clients at cs the server has closed. */
int count_eof(const client *cs, int n);

/* The server's counters, asked for on `c`, once no batch runs (or 5 s). */
const char *stats_once_idle(client *c);

/* Start `path` with `args` (NULL-terminated), `env_extra` (NULL or one
 * "NAME=VALUE") added to the environment, and read its port. */
void start_server(server_proc *p, const char *path, const char *const *args,
                  const char *env_extra);

/* What the server has printed so far. */
const char *log_of(const server_proc *p);

#endif
