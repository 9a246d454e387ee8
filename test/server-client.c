/* The clients of iobound-server's tests, and its process: see
 * server-client.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server-client.h"

const char *server_path;
/* ---- the server process ------------------------------------------------ */

/* Start a server with `args` (NULL-terminated, "--port 0" added) and read
 * the port it chose from its log. */
void start_server_with(server_proc *p, const char *const *args) {
  const char *argv[14] = {"--port", "0"};
  for (int k = 0; args[k] != NULL && k < 11; k++)
    argv[k + 2] = args[k];
  server_proc_spawn(p, server_path, argv, NULL);
  server_proc_listening(p);
}

void start_server(server_proc *p) {
  start_server_with(p, (const char *const[]){NULL});
}

/* ---- clients ----------------------------------------------------------- */

static void on_client_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf);
static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_connected(uv_connect_t *req, int status) {
  client *c = req->data;
  assert_int_equal(status, 0);
  c->connected = true;
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_client_alloc, on_client_read);
}

static void take_line(client *c, const char *line) {
  c->all_lines++;
  snprintf(c->last, sizeof(c->last), "%s", line);
  if (strcmp(line, "pong") == 0 && c->pongs < c->pings) {
    uint64_t took = uv_hrtime() - c->ping_sent_ns[c->pongs++ % PINGS_MAX];
    if (took > c->worst_pong_ns)
      c->worst_pong_ns = took;
  } else {
    snprintf(c->lines[c->nlines++ % LINES_MAX], sizeof(c->lines[0]), "%s",
             line);
  }
}

static void on_client_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  static char scratch[64 * 1024];
  *buf = uv_buf_init(scratch, sizeof(scratch));
}

/* take_line() for split_lines(). */
static void take(void *c, const char *line) { take_line(c, line); }

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  client *c = s->data;
  if (nread < 0) {
    c->eof = true;
    uv_read_stop(s);
    return;
  }
  split_lines(c->partial, sizeof(c->partial), &c->len, buf->base, (size_t)nread,
              take, c);
}

void client_pause(client *c) { uv_read_stop((uv_stream_t *)&c->tcp); }

void client_resume(client *c) {
  assert_code(
      uv_read_start((uv_stream_t *)&c->tcp, on_client_alloc, on_client_read),
      0);
}

/* Start connecting to the server (reading starts once connected). */
client *dial(int port, int rcvbuf) {
  client *c = calloc(1, sizeof(*c));
  struct sockaddr_in addr;
  assert_code(uv_ip4_addr("127.0.0.1", port, &addr), 0);
  assert_code(uv_tcp_init_ex(&the_loop, &c->tcp, AF_INET), 0);
  if (rcvbuf != 0)
    assert_code(uv_recv_buffer_size((uv_handle_t *)&c->tcp, &rcvbuf), 0);
  assert_code(uv_timer_init(&the_loop, &c->pinger), 0);
  c->tcp.data = c->connect.data = c->pinger.data = c;
  assert_code(uv_tcp_connect(&c->connect, &c->tcp,
                             (const struct sockaddr *)&addr, on_connected),
              0);
  return c;
}

/* Connect to the server; rcvbuf, when not 0, makes the socket's receive
 * buffer that small, so that the server's answers back up behind it. */
client *connect_client_ex(int port, int rcvbuf) {
  client *c = dial(port, rcvbuf);
  WAIT_UNTIL(c->connected, 5000);
  assert_true(c->connected);
  return c;
}

client *connect_client(int port) { return connect_client_ex(port, 0); }

static void on_sent(uv_write_t *req, int status) { free(req); }

void send_text(client *c, const char *text) {
  size_t len = strlen(text);
  uv_write_t *req = malloc(sizeof(*req) + len);
  char *copy = (char *)(req + 1);
  memcpy(copy, text, len);
  uv_buf_t buf = uv_buf_init(copy, (unsigned int)len);
  assert_code(uv_write(req, (uv_stream_t *)&c->tcp, &buf, 1, on_sent), 0);
}

/* Send `len` bytes, NUL and all. */
void send_bytes(client *c, const char *bytes, size_t len) {
  uv_write_t *req = malloc(sizeof(*req) + len);
  memcpy(req + 1, bytes, len);
  uv_buf_t buf = uv_buf_init((char *)(req + 1), (unsigned int)len);
  assert_code(uv_write(req, (uv_stream_t *)&c->tcp, &buf, 1, on_sent), 0);
}

static void on_shut(uv_shutdown_t *req, int status) {
  assert_int_equal(status, 0);
  free(req);
}

/* Send no more (shutdown(SHUT_WR) once what is queued is written), but
 * go on reading. */
void half_close(client *c) {
  uv_shutdown_t *req = malloc(sizeof(*req));
  assert_code(uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shut), 0);
}

/* A text of `n` pings, to be freed. */
char *pings_text(int n) {
  char *text = malloc((size_t)n * 5 + 1);
  for (int k = 0; k < n; k++)
    memcpy(text + 5 * k, "ping\n", 6);
  return text;
}

/* Send one request line and wait for the next line of answer. */
const char *ask(client *c, const char *request) {
  int before = c->nlines;
  send_text(c, request);
  send_text(c, "\n");
  WAIT_UNTIL(c->nlines > before || c->eof, 5000);
  assert_cmp(c->nlines, >, before);
  return c->lines[before % LINES_MAX];
}

static void on_client_closed(uv_handle_t *h) {
  client *c = h->data;
  c->closed = true;
}

static void on_pinger_closed(uv_handle_t *h) {
  client *c = h->data;
  if (c->reset)
    assert_code(uv_tcp_close_reset(&c->tcp, on_client_closed), 0);
  else
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

/* Disconnect (with a FIN, or an RST if c->reset): for the server, the
 * client is gone. */
void leave_client(client *c) {
  uv_close((uv_handle_t *)&c->pinger, on_pinger_closed);
}

void close_client(client *c) {
  leave_client(c);
  WAIT_UNTIL(c->closed, 1000);
  assert_true(c->closed);
}

void free_client(client *c) {
  if (!c->closed)
    close_client(c);
  free(c);
}

void send_ping(uv_timer_t *t) {
  client *c = t->data;
  assert_cmp(c->pings - c->pongs, <, PINGS_MAX);
  c->ping_sent_ns[c->pings++ % PINGS_MAX] = uv_hrtime();
  send_text(c, "ping\n");
}

/* ---- reading the answers ----------------------------------------------- */

bool json_has(const char *line, const char *key_value) {
  return strstr(line, key_value) != NULL;
}

/* The server's counters, asked for on `c`, until none run (or 2 s). */
const char *stats_once_idle(client *c) {
  const char *stats = ask(c, "stats");
  uint64_t t0 = uv_hrtime();
  while (json_number(stats, "batches_running") != 0 &&
         uv_hrtime() - t0 < 2000000000u) {
    pump_for(20);
    stats = ask(c, "stats");
  }
  return stats;
}

/* ---- the fixture: a loop and a server on port 0 ------------------------ */

server_proc the_server;

int server_up(void **state) {
  open_loop();
  start_server(&the_server);
  *state = &the_server;
  return 0;
}

/* The end of a test that passed: the server must stop cleanly, and this
 * test's loop close with nothing left on it. */
void server_down(server_proc *p) {
  server_proc_stop(p);
  close_loop();
}
