/* iobound-fanout: a line service on libuv. Each "get ID" fans out to K HTTP
 * GETs and one PostgreSQL query, an open batch (a task group) with its own
 * deadline; all batches share one limit, one HTTP client and one pool. A
 * client that goes away cancels its requests; SIGINT leaves nothing on the
 * loop. Each request is answered by one JSON line: {"id":7,"ms":12.3,
 * "http":[{"status":200,"bytes":7}],"row":["7"],"error":null} */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanout.h"
#include "iobound/http.h"
#include "iobound/pg.h"

typedef struct service {
  uv_loop_t *loop;
  uv_tcp_t server;
  uv_signal_t sigint;
  iob_http_client *http;
  iob_pg_pool *db;
  iob_limit *limit;
  iob_config config; /* each request's batch: style, limit, deadline */
  const char *url, *sql;
  uint32_t fanout, requests; /* requests: in flight, of all clients */
  struct client *clients;    /* connected, not yet closed */
  bool stopping;
} service;

typedef struct client {
  uv_tcp_t tcp;
  service *s;
  char line[512];
  size_t len;
  struct request *requests; /* in flight; freed once none and closed */
  struct client *next;      /* in the service's list */
  bool closed;
} client;

/* One "get ID" in flight. */
typedef struct request {
  client *c;
  struct request *next; /* in its client's list */
  iob_batch *batch;
  char id[16];
  uint64_t t0;
} request;

static void written(uv_write_t *w, int status) { free(w), (void)status; }

/* Send a copy of text, a line; lost if the client is gone. */
static void send_line(client *c, const char *text, size_t len) {
  uv_write_t *w = c->closed ? NULL : malloc(sizeof(*w) + len);
  if (w == NULL)
    return;
  uv_buf_t buf = uv_buf_init(memcpy(w + 1, text, len), (unsigned)len);
  if (uv_write(w, (uv_stream_t *)&c->tcp, &buf, 1, written) != 0)
    free(w);
}

/* The JSON line of a finished request: every outcome, read now. */
static void answer(request *r, int status) {
  service *s = r->c->s;
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  if (out == NULL)
    return;
  fprintf(out, "{\"id\":%s,\"ms\":%.1f,\"http\":[", r->id,
          (double)(uv_hrtime() - r->t0) / 1e6);
  const char *why = NULL; /* the first failure's words */
  iob_outcome o;
  for (uint32_t i = 0; i <= s->fanout; i++) {
    iob_batch_outcome(r->batch, i, &o);
    if (o.status != 0 && why == NULL)
      why = o.message != NULL ? o.message : iob_strerror(o.status);
    const iob_http_result *h = i < s->fanout ? o.result : NULL;
    if (i < s->fanout)
      fprintf(out, "%s{\"status\":%ld,\"bytes\":%llu}", i ? "," : "",
              h ? h->code : 0L, h ? (unsigned long long)h->bytes : 0ULL);
  }
  if (why == NULL && status != 0) /* (cancelled before any began) */
    why = iob_strerror(status);
  const iob_pg_result *rows = o.result; /* the last operation's */
  bool row = rows != NULL && rows->rows > 0 && rows->columns > 0;
  fputs(row ? "],\"row\":[" : "],\"row\":null", out);
  for (uint32_t k = 0; row && k < rows->columns; k++) {
    fputs(k ? "," : "", out);
    cli_json_string(out, iob_pg_value(rows, 0, k));
  }
  fputs(row ? "],\"error\":" : ",\"error\":", out);
  cli_json_string(out, why);
  fputs("}\n", out);
  fclose(out);
  send_line(r->c, text, len);
  free(text);
}

/* ---- requests -------------------------------------------------------------- */

/* Stopping, once the last request called back: nothing stays on the loop. */
static void maybe_end(service *s) {
  if (!s->stopping || s->requests != 0)
    return;
  iob_http_client_destroy(s->http);
  iob_pg_pool_destroy(s->db);
  iob_limit_free(s->limit);
}

static void on_request_done(iob_batch *batch, int status) {
  request *r = iob_batch_data(batch);
  client *c = r->c;
  service *s = c->s;
  answer(r, status);
  request **at = &c->requests;
  while (*at != r)
    at = &(*at)->next;
  *at = r->next;
  iob_batch_unref(batch);
  free(r);
  s->requests--;
  if (c->closed && c->requests == NULL) /* gone, and this its last */
    free(c);
  maybe_end(s);
}

static int submit(iob_batch *b, const iob_kind *kind, const void *target,
                  const void *input) {
  iob_task t;
  iob_task_init(&t);
  t.kind = kind;
  t.target = target;
  t.input = input;
  int index = iob_batch_submit(b, &t);
  return index < 0 ? index : 0;
}

/* "get ID": K GETs and a query, in a batch of their own. */
static int begin(client *c, const char *id) {
  service *s = c->s;
  request *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return IOB_ENOMEM;
  *r = (request){.c = c, .t0 = uv_hrtime()};
  snprintf(r->id, sizeof(r->id), "%s", id);
  iob_config config = s->config;
  config.data = r;
  int err = iob_batch_create(&r->batch, &config);
  const char *at = strstr(s->url, "{id}"); /* (checked at start) */
  char url[1024];
  snprintf(url, sizeof(url), "%.*s%s%s", (int)(at - s->url), s->url, id,
           at + 4);
  for (uint32_t i = 0; i < s->fanout && err == 0; i++) /* (copied) */
    err = submit(r->batch, &iob_kind_http, s->http,
                 &(iob_http_request){.url = url});
  if (err == 0) /* the ID a parameter: never formatted into the SQL */
    err = submit(r->batch, &iob_kind_pg, s->db,
                 &(iob_pg_query){.sql = s->sql,
                                 .nparams = 1,
                                 .params = (const char *const[]){r->id}});
  if (err == 0 && (err = iob_batch_close(r->batch)) == 0)
    err = iob_batch_start(r->batch, s->loop, on_request_done);
  if (err != 0) {
    iob_batch_free(r->batch);
    free(r);
    return err;
  }
  r->next = c->requests;
  c->requests = r;
  s->requests++;
  return 0;
}

static void on_line(client *c, char *line) {
  uint64_t id;
  bool ok = strncmp(line, "get ", 4) == 0 &&
            cli_parse_uint(line + 4, 0, INT32_MAX, &id);
  int err = ok ? begin(c, line + 4) : 0;
  char text[128];
  int len = snprintf(text, sizeof(text), "{\"error\":\"%s\"}\n",
                     ok ? iob_strerror(err) : "expected: get ID, 0 to 2^31-1");
  if (!ok || err != 0)
    send_line(c, text, (size_t)len);
}

/* ---- clients --------------------------------------------------------------- */

static void on_client_closed(uv_handle_t *h) {
  client *c = h->data, **at = &c->s->clients;
  while (*at != c)
    at = &(*at)->next;
  *at = c->next;
  c->closed = true;
  if (c->requests == NULL)
    free(c);
}

/* A client goes: its requests are cancelled (each still calls back). */
static void client_close(client *c) {
  if (uv_is_closing((uv_handle_t *)&c->tcp))
    return;
  uv_close((uv_handle_t *)&c->tcp, on_client_closed);
  for (request *r = c->requests; r != NULL; r = r->next)
    iob_batch_cancel(r->batch);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  client *c = h->data;
  (void)size;
  *buf = uv_buf_init(c->line + c->len, (unsigned)(sizeof(c->line) - c->len));
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
  client *c = stream->data;
  (void)buf;
  c->len += n > 0 ? (size_t)n : 0;
  char *nl;
  while (n >= 0 && (nl = memchr(c->line, '\n', c->len)) != NULL) {
    *nl = '\0';
    on_line(c, c->line);
    c->len -= (size_t)(nl + 1 - c->line);
    memmove(c->line, nl + 1, c->len);
  }
  if (n < 0 || c->len == sizeof(c->line)) /* gone, or a line too long */
    client_close(c);
}

static void on_connection(uv_stream_t *server, int status) {
  service *s = server->data;
  client *c = status == 0 ? calloc(1, sizeof(*c)) : NULL;
  if (c == NULL)
    return;
  c->s = s;
  c->next = s->clients;
  s->clients = c;
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    client_close(c);
}

static void on_sigint(uv_signal_t *sig, int signum) {
  service *s = sig->data;
  (void)signum;
  s->stopping = true;
  uv_close((uv_handle_t *)&s->server, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  /* (Not uv_walk(): the HTTP client's connections are TCP handles too.) */
  for (client *c = s->clients; c != NULL; c = c->next)
    client_close(c);
  maybe_end(s);
}

int main(int argc, char **argv) {
  fanout_args a;
  char error[256], help[4096];
  int status = fanout_parse(argc, argv, &a, error, sizeof(error));
  status = cli_settle("iobound-fanout", status, a.action, error,
                      fanout_help(help, sizeof(help)));
  if (status >= 0)
    return status;

  service s = {.loop = uv_default_loop(),
               .url = a.url,
               .sql = a.sql,
               .fanout = a.fanout};
  iob_pg_pool_options po = {.max_connections = a.pool};
  iob_http_client_options ho = {.max_host_connections = a.limit};
  if (iob_pg_pool_create(&s.db, s.loop, a.pg, &po) != 0)
    return cli_usage_error("iobound-fanout", "--pg %s: not a connection string",
                           a.pg);
  if (iob_limit_create(&s.limit, a.limit) != 0 ||
      iob_http_client_create(&s.http, s.loop, &ho) != 0)
    return CLI_EX_FAILED;
  iob_config_init(&s.config);
  s.config.style = a.style;
  s.config.open = 1;
  s.config.shared_limit = s.limit;
  s.config.deadline_ms = a.deadline_ms;

  uv_tcp_init(s.loop, &s.server);
  s.server.data = s.sigint.data = &s;
  int len = sizeof(a.addr), err;
  if ((err = uv_tcp_bind(&s.server, (struct sockaddr *)&a.addr, 0)) != 0 ||
      (err = uv_listen((uv_stream_t *)&s.server, 128, on_connection)) != 0 ||
      (err = uv_tcp_getsockname(&s.server, (struct sockaddr *)&a.addr, &len)) !=
          0) {
    cli_error("iobound-fanout", "cannot listen on %s: %s", a.listen,
              uv_strerror(err));
    return CLI_EX_FAILED;
  }
  printf("iobound-fanout: listening on port %u\n",
         (unsigned)ntohs(((struct sockaddr_in *)&a.addr)->sin_port));
  fflush(stdout);
  uv_signal_init(s.loop, &s.sigint);
  uv_signal_start(&s.sigint, on_sigint, SIGINT);
  uv_run(s.loop, UV_RUN_DEFAULT);
  return uv_loop_close(s.loop) == 0 ? 0 : CLI_EX_FAILED;
}
