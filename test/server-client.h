/* The clients of iobound-server's tests (test-server*.c): real TCP
 * clients on the test's own loop (common.h's the_loop) that send lines,
 * read the answers line by line, ping the server on a timer and leave
 * with a FIN or a reset; and the server, a child process on port 0
 * (server-proc.h). */
#ifndef IOB_TEST_SERVER_CLIENT_H
#define IOB_TEST_SERVER_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "helpers.h"
#include "server-proc.h"

/* The server program under test: the tests' first argument. */
extern const char *server_path;

#define LINES_MAX 64
#define PINGS_MAX 1024

/* Room for any answer: a report with its percentiles is about 900 bytes. */
#define LINE_LEN 1536

typedef struct client {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_timer_t pinger;
  bool connected, eof, closed, reset;
  char partial[LINE_LEN]; /* the line being received */
  size_t len;
  char lines[LINES_MAX][LINE_LEN];  /* lines other than "pong", the last 64 */
  int nlines;                       /* of them, all: lines[nlines % 64] next */
  int all_lines;                    /* every line, kept or not */
  char last[LINE_LEN];              /* the last line */
  uint64_t ping_sent_ns[PINGS_MAX]; /* answers come in order */
  int pings, pongs;
  uint64_t worst_pong_ns;
} client;

/* What "stats" says of a server with one client and nothing else. */
#define STATS_ONE_IDLE_CLIENT                                                  \
  "{\"clients\":1,\"batches_running\":0,\"batches_done\":0,"                   \
  "\"batches_cancelled\":0,\"threads_running\":0,\"operations_running\":0,"    \
  "\"refused_connections\":0,\"refused_runs\":0,\"idle_closed\":0,"            \
  "\"half_close_timeouts\":0}"

/* Start a server with `args` (NULL-terminated, "--port 0" added) and read
 * the port it chose from its log; start_server() with none. */
void start_server_with(server_proc *p, const char *const *args);
void start_server(server_proc *p);

/* Start connecting to the server (reading starts once connected); rcvbuf,
 * when not 0, makes the socket's receive buffer that small. */
client *dial(int port, int rcvbuf);

/* Connect, waiting until connected; connect_client_ex() with a receive
 * buffer of rcvbuf bytes, so that the server's answers back up behind
 * it. */
client *connect_client_ex(int port, int rcvbuf);
client *connect_client(int port);

/* Stop reading, so that the server's answers back up; read again. */
void client_pause(client *c);
void client_resume(client *c);

/* Send text (strlen bytes), or `len` bytes, NUL and all. */
void send_text(client *c, const char *text);
void send_bytes(client *c, const char *bytes, size_t len);

/* Send no more (shutdown(SHUT_WR) once what is queued is written), but go
 * on reading. */
void half_close(client *c);

/* A text of `n` pings, to be freed. */
char *pings_text(int n);

/* Send one request line and wait for the next line of answer. */
const char *ask(client *c, const char *request);

/* Disconnect (with a FIN, or an RST if c->reset): for the server, the
 * client is gone. leave_client() starts it and returns; close_client()
 * waits until it is closed; free_client() closes it first if need be. */
void leave_client(client *c);
void close_client(client *c);
void free_client(client *c);

/* The pinger's timer callback (c->pinger): one "ping", its time kept. */
void send_ping(uv_timer_t *t);

/* Whether a JSON line holds the text key_value. */
bool json_has(const char *line, const char *key_value);

/* The server's counters, asked for on `c`, until none run (or 2 s). */
const char *stats_once_idle(client *c);

/* The fixture: this test's loop, and the_server started on port 0. */
extern server_proc the_server;
int server_up(void **state);

/* The end of a test that passed: the server must stop cleanly, and this
 * test's loop close with nothing left on it. */
void server_down(server_proc *p);

#endif
