/* The crowd of lean clients of the abuse tests: see server-crowd.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server-crowd.h"

/* Start `path` with `args` (NULL-terminated), `env_extra` (NULL or one
 * "NAME=VALUE") added to the environment, and read its port. */
void start_server(server_proc *p, const char *path, const char *const *args,
                  const char *env_extra) {
  server_proc_spawn(p, path, args, env_extra);
  server_proc_listening(p);
}

const char *log_of(const server_proc *p) { return p->out.text; }

/* ---- clients, lean: a thousand of them at once ------------------------- */

static void on_client_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  static char scratch[64 * 1024];
  *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void take_line(client *c, const char *line) {
  if (c->lines++ == 0)
    snprintf(c->first, sizeof(c->first), "%s", line);
  snprintf(c->last, sizeof(c->last), "%s", line);
  c->errors += strncmp(line, "error ", 6) == 0;
  c->pongs += strcmp(line, "pong") == 0;
  c->reports += line[0] == '{';
  for (const unsigned char *b = (const unsigned char *)line; *b; b++)
    c->unprintable |= *b < 0x20 || *b > 0x7e;
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

static void on_connected(uv_connect_t *req, int status) {
  client *c = req->data;
  c->connect_status = status;
  c->connected = status == 0;
  if (status != 0) {
    c->eof = true;
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (c->read)
    uv_read_start((uv_stream_t *)&c->tcp, on_client_alloc, on_client_read);
}

/* Start connecting. rcvbuf, when not 0, makes the socket's receive buffer
 * that small; a client that does not read never starts reading. */
void dial(client *c, int port, int rcvbuf, bool read) {
  struct sockaddr_in addr;
  memset(c, 0, sizeof(*c));
  c->read = read;
  assert_code(uv_ip4_addr("127.0.0.1", port, &addr), 0);
  assert_code(uv_tcp_init_ex(&the_loop, &c->tcp, AF_INET), 0);
  if (rcvbuf != 0)
    assert_code(uv_recv_buffer_size((uv_handle_t *)&c->tcp, &rcvbuf), 0);
  c->tcp.data = c->connect.data = c;
  assert_code(uv_tcp_connect(&c->connect, &c->tcp,
                             (const struct sockaddr *)&addr, on_connected),
              0);
}

bool all_connected(const client *cs, int n) {
  for (int k = 0; k < n; k++)
    if (!cs[k].connected && cs[k].connect_status == 0)
      return false;
  return true;
}

void dial_all(client *cs, int n, int port, int rcvbuf, bool read) {
  for (int k = 0; k < n; k++)
    dial(&cs[k], port, rcvbuf, read);
  WAIT_UNTIL(all_connected(cs, n), 10000);
  for (int k = 0; k < n; k++)
    if (!cs[k].connected)
      fail_msg("client %d of %d: connect: %s", k, n,
               uv_err_name(cs[k].connect_status));
}

static void on_sent(uv_write_t *req, int status) { free(req); }

void send_bytes(client *c, const char *bytes, size_t len) {
  uv_write_t *req = malloc(sizeof(*req) + len);
  assert_non_null(req);
  memcpy(req + 1, bytes, len);
  uv_buf_t buf = uv_buf_init((char *)(req + 1), (unsigned int)len);
  assert_code(uv_write(req, (uv_stream_t *)&c->tcp, &buf, 1, on_sent), 0);
}

void send_text(client *c, const char *text) {
  send_bytes(c, text, strlen(text));
}

static void on_shut(uv_shutdown_t *req, int status) { free(req); }

void half_close(client *c) {
  uv_shutdown_t *req = malloc(sizeof(*req));
  assert_code(uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shut), 0);
}

/* Send a request and wait for its one line of answer. */
const char *ask(client *c, const char *request) {
  int before = c->lines;
  send_text(c, request);
  send_text(c, "\n");
  WAIT_UNTIL(c->lines > before || c->eof, 5000);
  if (c->lines <= before)
    fail_msg("no answer to '%s'", request);
  return c->last;
}

static void on_client_closed(uv_handle_t *h) {
  ((client *)h->data)->closed = true;
}

void leave(client *c, bool reset) {
  if (uv_is_closing((uv_handle_t *)&c->tcp))
    return;
  if (reset && c->connected)
    assert_code(uv_tcp_close_reset(&c->tcp, on_client_closed), 0);
  else
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

/* Close every client (with an RST if reset), and wait for it. */
void close_all(client *cs, int n, bool reset) {
  for (int k = 0; k < n; k++)
    leave(&cs[k], reset);
  bool all = false;
  for (uint64_t t0 = uv_hrtime(); !all && uv_hrtime() - t0 < 5000000000u;) {
    all = true;
    for (int k = 0; k < n && all; k++)
      all = cs[k].closed;
    if (!all)
      uv_run(&the_loop, UV_RUN_ONCE);
  }
  assert_true(all);
}

int count_eof(const client *cs, int n) {
  int eof = 0;
  for (int k = 0; k < n; k++)
    eof += cs[k].eof;
  return eof;
}

/* The server's counters, asked for on `c`, once no batch runs (or 5 s). */
const char *stats_once_idle(client *c) {
  const char *stats = ask(c, "stats");
  for (uint64_t t0 = uv_hrtime(); json_number(stats, "batches_running") != 0 &&
                                  uv_hrtime() - t0 < 5000000000u;) {
    pump_for(50);
    stats = ask(c, "stats");
  }
  return stats;
}
