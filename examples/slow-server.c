/* The slow service: one libuv loop, a timer per waiting request. It
 * speaks two protocols on one port, told apart by a connection's first
 * byte: an uppercase letter starts an HTTP/1.x request line ("GET ..."),
 * anything else is the line protocol ("wait MS\n"). */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cli.h"
#include "slow-server.h"

struct slow_server {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_signal_t sigint, sigterm;
  bool stopped; /* every handle is closed or closing */
  unsigned port;
  slow_faults faults;
  uint64_t draws; /* xorshift64 state, from faults.seed */
};

/* What a request gets: its answer on time, a failure at once, or its
 * answer `slow_factor` times late. */
typedef enum fate { ON_TIME, FAIL, LATE } fate;

/* A number in [0, 1) from the server's draws (xorshift64). */
static double draw(slow_server *s) {
  uint64_t x = s->draws;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  s->draws = x;
  return (double)(x >> 11) / 9007199254740992.0; /* 2^53 */
}

static fate fate_of(slow_server *s) {
  if (s->faults.fail > 0 && draw(s) < s->faults.fail)
    return FAIL;
  if (s->faults.slow > 0 && s->faults.slow_factor > 1 &&
      draw(s) < s->faults.slow)
    return LATE;
  return ON_TIME;
}

/* MS ms, or the late answer's, which saturates at 32 bits. */
static uint64_t wait_of(const slow_server *s, fate f, uint64_t ms) {
  uint64_t w = f == LATE ? ms * s->faults.slow_factor : ms;
  return w > UINT32_MAX ? UINT32_MAX : w;
}

void slow_server_set_faults(slow_server *s, const slow_faults *faults) {
  s->faults = faults != NULL ? *faults : (slow_faults){0};
  if (s->faults.fail_status != 500)
    s->faults.fail_status = 503;
  uint64_t seed =
      s->faults.seed != 0 ? s->faults.seed : uv_hrtime() ^ (uint64_t)getpid();
  s->draws = seed != 0 ? seed : 1; /* xorshift never leaves 0 */
}

typedef enum proto { PROTO_UNKNOWN, PROTO_LINE, PROTO_HTTP } proto;

/* An HTTP request, parsed: what to answer, and whether to go on. */
typedef struct http_request {
  int status; /* 200, or the error to answer */
  uint32_t ms;
  bool keep_alive;
  bool head_only; /* HEAD: the headers without the body */
  bool http10;    /* an HTTP/1.0 client, kept alive only if it asked */
} http_request;

/* One client's connection: its socket and the timer of its wait. */
typedef struct conn {
  slow_server *server;
  uv_tcp_t tcp;
  uv_timer_t timer; /* the wait; then, closing HTTP, the linger */
  uv_write_t write;
  uv_shutdown_t shutdown;
  int handles; /* open handles: freed when none is left */
  proto proto;
  bool asked; /* line protocol: the request line has arrived */
  /* HTTP: one request answered at a time, in the order they came. */
  bool busy;      /* a request is being answered */
  bool eof;       /* the client sends no more */
  bool reading;   /* off while `head` is full */
  bool closing;   /* close once the answer is written */
  bool lingering; /* shut down: reading what is left, until EOF */
  char *head;     /* SLOW_HTTP_HEAD_MAX bytes: requests not yet answered */
  http_request req;
  size_t len; /* bytes in `line`, or in `head` once HTTP */
  char line[64];
  char reply[256];
} conn;

static void conn_closed(uv_handle_t *handle) {
  conn *c = handle->data;
  if (--c->handles == 0) {
    free(c->head);
    free(c);
  }
}

static void conn_close(conn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
  if (!uv_is_closing((uv_handle_t *)&c->timer))
    uv_close((uv_handle_t *)&c->timer, conn_closed);
}

/* ---- the line protocol: "wait MS\n", "done MS\n", close ----------------- */

static void on_written(uv_write_t *req, int status) {
  conn_close(req->data); /* one request per connection */
}

static void reply(conn *c, const char *text) {
  size_t n = strlen(text);
  memcpy(c->reply, text, n);
  uv_buf_t buf = uv_buf_init(c->reply, (unsigned int)n);
  c->write.data = c;
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
    conn_close(c);
}

static void on_waited(uv_timer_t *timer) {
  conn *c = timer->data;
  char text[32];
  snprintf(text, sizeof(text), "done %.*s\n", (int)(c->len - 5), c->line + 5);
  reply(c, text);
}

/* "wait MS": MS is a whole number of milliseconds that fits 32 bits. */
static bool parse_request(conn *c, uint64_t *ms) {
  if (c->len > 0 && c->line[c->len - 1] == '\r')
    c->len--;
  if (c->len < 5 || c->len > 15 || memcmp(c->line, "wait ", 5) != 0)
    return false;
  c->line[c->len] = '\0';
  return cli_parse_uint(c->line + 5, 0, UINT32_MAX, ms);
}

/* The request line is in (c->len bytes): answer it, or start its wait. */
static void take_request(conn *c) {
  c->asked = true;
  uint64_t ms;
  if (!parse_request(c, &ms)) {
    reply(c, "error expected: wait MS\n");
    return;
  }
  fate f = fate_of(c->server);
  if (f == FAIL) {
    reply(c, "error unavailable\n");
    return;
  }
  uv_update_time(c->timer.loop); /* the timer counts from the loop's clock */
  uv_timer_start(&c->timer, on_waited, wait_of(c->server, f, ms), 0);
}

static void line_read(conn *c, ssize_t nread) {
  if (nread == UV_EOF) {
    /* The client sends no more: it shut its side down after its request
     * (and waits for the answer), or it closed. Answer all the same,
     * then close (on_written); a client that is gone makes the write
     * fail, which closes too. A last line without '\n' is the request. */
    if (!c->asked && c->len > 0)
      take_request(c);
    else if (!c->asked)
      conn_close(c); /* asked nothing */
    return;
  }
  if (nread < 0) { /* a reset or an error: nobody to answer */
    conn_close(c);
    return;
  }
  if (c->asked || nread == 0)
    return;
  char *nl = memchr(c->line + c->len, '\n', (size_t)nread);
  c->len += (size_t)nread;
  if (nl == NULL) {
    if (c->len == sizeof(c->line)) {
      c->asked = true;
      reply(c, "error request too long\n");
    }
    return;
  }
  c->len = (size_t)(nl - c->line);
  take_request(c);
}

/* ---- HTTP/1.x: GET /wait/MS, keep-alive and pipelining ------------------- */

/* The length of the request head at `p` (request line, headers, blank
 * line; lines end in "\r\n" or "\n"), or 0 if it is not all there. */
static size_t http_head_end(const char *p, size_t n) {
  size_t start = 0;
  for (const char *nl; (nl = memchr(p + start, '\n', n - start)) != NULL;) {
    size_t end = (size_t)(nl - p);
    size_t line = end - start;
    if (line > 0 && p[end - 1] == '\r')
      line--;
    if (line == 0 && start > 0)
      return end + 1;
    start = end + 1;
  }
  return 0;
}

/* Does the comma-separated list `v` (`n` bytes) hold `token`? */
static bool has_token(const char *v, size_t n, const char *token) {
  size_t t = strlen(token);
  for (size_t i = 0; i < n;) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    size_t j = i;
    while (j < n && v[j] != ',')
      j++;
    size_t k = j; /* trim the end */
    while (k > i && (v[k - 1] == ' ' || v[k - 1] == '\t'))
      k--;
    if (k - i == t && strncasecmp(v + i, token, t) == 0)
      return true;
    i = j;
  }
  return false;
}

static bool is_name(const char *p, const char *name, size_t n) {
  return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* The request target: "/wait/MS" (a query is ignored) or 404; MS past
 * 32 bits is a 400. */
static int http_target(const char *p, size_t n, uint32_t *ms) {
  const char *q = memchr(p, '?', n);
  if (q != NULL)
    n = (size_t)(q - p);
  if (n <= 6 || memcmp(p, "/wait/", 6) != 0)
    return 404;
  uint64_t v = 0;
  for (size_t i = 6; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return 404;
    v = v * 10 + (uint64_t)(p[i] - '0');
    if (v > UINT32_MAX)
      return 400;
  }
  *ms = (uint32_t)v;
  return 200;
}

/* Parse the head of `n` bytes at `p` (http_head_end()). A request the
 * service cannot frame (bad syntax, a body, a method other than GET or
 * HEAD, a version other than 1.0 or 1.1) is answered, and the
 * connection closed. */
static void http_parse(const char *p, size_t n, http_request *r) {
  *r = (http_request){.status = 400};
  for (size_t i = 0; i < n; i++) { /* no control characters but HT, CRLF */
    unsigned char ch = (unsigned char)p[i];
    if ((ch < 0x20 && ch != '\t' && ch != '\r' && ch != '\n') || ch == 0x7f)
      return;
    if (ch == '\r' && (i + 1 == n || p[i + 1] != '\n'))
      return;
  }
  /* METHOD SP TARGET SP HTTP/1.d */
  const char *end = memchr(p, '\n', n);
  size_t len = (size_t)(end - p);
  if (len > 0 && p[len - 1] == '\r')
    len--;
  const char *sp1 = memchr(p, ' ', len);
  if (sp1 == NULL || sp1 == p)
    return;
  for (const char *m = p; m < sp1; m++)
    if (*m < 'A' || *m > 'Z')
      return;
  const char *target = sp1 + 1;
  const char *sp2 = memchr(target, ' ', len - (size_t)(target - p));
  if (sp2 == NULL || sp2 == target || target[0] != '/')
    return;
  const char *version = sp2 + 1;
  size_t vlen = len - (size_t)(version - p);
  if (vlen != 8 || memcmp(version, "HTTP/", 5) != 0 || version[5] < '0' ||
      version[5] > '9' || version[6] != '.' || version[7] < '0' ||
      version[7] > '9')
    return;
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    r->status = 505;
    return;
  }
  r->http10 = version[7] == '0';
  bool keep = !r->http10, close = false, body = false;

  /* Headers: "Name: value", until the blank line. */
  for (const char *line = end + 1;;) {
    const char *nl = memchr(line, '\n', n - (size_t)(line - p));
    size_t l = (size_t)(nl - line);
    if (l > 0 && line[l - 1] == '\r')
      l--;
    if (l == 0)
      break;
    const char *colon = memchr(line, ':', l);
    if (colon == NULL || colon == line)
      return;
    for (const char *c = line; c < colon; c++)
      if (*c == ' ' || *c == '\t') /* also a folded line (obs-fold) */
        return;
    size_t name = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vl = l - name - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t'))
      v++, vl--;
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
      vl--;
    if (is_name(line, "Connection", name)) {
      close = close || has_token(v, vl, "close");
      keep = keep || has_token(v, vl, "keep-alive");
    } else if (is_name(line, "Transfer-Encoding", name) ||
               (is_name(line, "Content-Length", name) &&
                !(vl == 1 && v[0] == '0'))) {
      body = true; /* this service reads none */
    }
    line = nl + 1;
  }
  if (sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0)
    r->head_only = true;
  else if (sp1 - p != 3 || memcmp(p, "GET", 3) != 0) {
    r->status = 405;
    return;
  }
  if (body)
    return;
  r->keep_alive = keep && !close;
  r->status = http_target(target, (size_t)(sp2 - target), &r->ms);
}

static void http_next(conn *c);
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void reading_on(conn *c) {
  if (!c->reading && !c->eof &&
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = true;
}

static void on_lingered(uv_timer_t *timer) { conn_close(timer->data); }

static void on_shutdown(uv_shutdown_t *req, int status) {
  if (status != 0)
    conn_close(req->data);
}

/* Close after the last answer: send FIN, then read (and drop) what the
 * client still sends until its EOF, for at most a second. Closing with
 * unread bytes would send a reset, which can destroy the answer before
 * the client reads it (the "lingering close" of HTTP servers). */
static void linger_close(conn *c) {
  if (c->eof) {
    conn_close(c);
    return;
  }
  c->lingering = true;
  c->shutdown.data = c;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    conn_close(c);
    return;
  }
  reading_on(c);
  uv_timer_start(&c->timer, on_lingered, 1000, 0);
}

static void on_http_written(uv_write_t *req, int status) {
  conn *c = req->data;
  if (status != 0) {
    conn_close(c);
    return;
  }
  c->busy = false;
  if (c->closing)
    linger_close(c);
  else
    http_next(c);
}

/* Answer c->req: "done MS\n" once waited, or the error. */
static void http_answer(conn *c) {
  const http_request *r = &c->req;
  char body[64];
  switch (r->status) {
  case 200:
    snprintf(body, sizeof(body), "done %u\n", (unsigned)r->ms);
    break;
  case 400:
    snprintf(body, sizeof(body), "bad request: expected GET /wait/MS\n");
    break;
  case 404:
    snprintf(body, sizeof(body), "not found: try GET /wait/MS\n");
    break;
  default:
    snprintf(body, sizeof(body), "%s\n", cli_http_reason(r->status));
    break;
  }
  c->closing = !r->keep_alive;
  /* A failure the service was told to make: Retry-After, if asked. */
  char extra[48] = "";
  const slow_faults *faults = &c->server->faults;
  if (r->status == 405)
    snprintf(extra, sizeof(extra), "Allow: GET, HEAD\r\n");
  else if (r->status == faults->fail_status && faults->retry_after != 0)
    snprintf(extra, sizeof(extra), "Retry-After: %u\r\n",
             (unsigned)faults->retry_after);
  int n = snprintf(c->reply, sizeof(c->reply),
                   "HTTP/1.1 %d %s\r\n"
                   "Content-Type: text/plain\r\n"
                   "Content-Length: %zu\r\n"
                   "%s%s\r\n%s",
                   r->status, cli_http_reason(r->status), strlen(body), extra,
                   c->closing  ? "Connection: close\r\n"
                   : r->http10 ? "Connection: keep-alive\r\n"
                               : "",
                   r->head_only ? "" : body);
  uv_buf_t buf = uv_buf_init(c->reply, (unsigned int)n);
  c->write.data = c;
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, on_http_written) !=
      0)
    conn_close(c);
}

static void on_http_waited(uv_timer_t *timer) { http_answer(timer->data); }

static void consume(conn *c, size_t n) {
  memmove(c->head, c->head + n, c->len - n);
  c->len -= n;
}

/* Take the next request in `head`, if it is all there and none is being
 * answered. */
static void http_next(conn *c) {
  if (c->busy || c->closing || uv_is_closing((uv_handle_t *)&c->tcp))
    return;
  size_t skip = 0; /* empty lines before a request line (RFC 9112 2.2) */
  while (skip < c->len && (c->head[skip] == '\r' || c->head[skip] == '\n'))
    skip++;
  consume(c, skip);
  size_t n = http_head_end(c->head, c->len);
  if (n == 0) {
    if (c->len == SLOW_HTTP_HEAD_MAX) { /* no end in sight */
      c->busy = true;
      c->req = (http_request){
          .status = memchr(c->head, '\n', c->len) != NULL ? 431 : 414};
      http_answer(c);
    } else if (c->eof) {
      conn_close(c); /* a partial request, or none, and no more to come */
    } else {
      reading_on(c);
    }
    return;
  }
  http_parse(c->head, n, &c->req);
  consume(c, n);
  reading_on(c);
  c->busy = true;
  fate f = c->req.status == 200 ? fate_of(c->server) : ON_TIME;
  if (f == FAIL)
    c->req.status = c->server->faults.fail_status;
  if (c->req.status != 200) {
    http_answer(c);
    return;
  }
  uv_update_time(c->timer.loop);
  uv_timer_start(&c->timer, on_http_waited, wait_of(c->server, f, c->req.ms),
                 0);
}

static void http_read(conn *c, ssize_t nread) {
  if (nread == UV_EOF) { /* libuv stops reading by itself */
    c->eof = true;
    c->reading = false;
    if (c->lingering)
      conn_close(c);
    else
      http_next(c); /* answer what is all there, then close */
    return;
  }
  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (c->lingering || nread == 0)
    return;
  c->len += (size_t)nread;
  if (c->len == SLOW_HTTP_HEAD_MAX) { /* full: read again once there is room */
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
  http_next(c);
}

/* ---- both ---------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  conn *c = handle->data;
  /* Once asked (or closing), further bytes only tell us whether the
   * client hung up. */
  static char sink[4096];
  if (c->proto == PROTO_HTTP && !c->lingering)
    *buf = uv_buf_init(c->head + c->len,
                       (unsigned int)(SLOW_HTTP_HEAD_MAX - c->len));
  else if (c->asked || c->lingering)
    *buf = uv_buf_init(sink, sizeof(sink));
  else
    *buf =
        uv_buf_init(c->line + c->len, (unsigned int)(sizeof(c->line) - c->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn *c = stream->data;
  if (c->proto == PROTO_UNKNOWN && nread > 0) {
    /* The first byte tells: "GET ..." is HTTP, "wait ..." is not. */
    c->proto = PROTO_LINE;
    if (c->line[0] >= 'A' && c->line[0] <= 'Z') {
      c->head = malloc(SLOW_HTTP_HEAD_MAX);
      if (c->head == NULL) {
        conn_close(c);
        return;
      }
      memcpy(c->head, c->line, (size_t)nread);
      c->proto = PROTO_HTTP;
      c->reading = true;
    }
  }
  if (c->proto == PROTO_HTTP)
    http_read(c, nread);
  else
    line_read(c, nread);
}

static void on_connection(uv_stream_t *listener, int status) {
  if (status != 0)
    return; /* e.g. UV_EMFILE: libuv has already refused the client */
  conn *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return;
  c->server = listener->data;
  uv_tcp_init(listener->loop, &c->tcp);
  uv_timer_init(listener->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles = 2;
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    conn_close(c);
}

/* Close the listener, the stop signals and every connection. */
static void close_one(uv_handle_t *handle, void *arg) {
  if (uv_is_closing(handle))
    return;
  uv_close(handle, handle->data == arg ? NULL : conn_closed);
}

static void close_all(slow_server *s) {
  s->stopped = true;
  uv_walk(&s->loop, close_one, s);
}

static void on_signal(uv_signal_t *signal, int signum) {
  close_all(signal->data);
}

int slow_server_open(slow_server **server, const char *ip, unsigned port) {
  *server = NULL;
  struct sockaddr_storage addr;
  if (cli_address(ip, port, &addr) != 0)
    return UV_EINVAL;
  signal(SIGPIPE, SIG_IGN);

  slow_server *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return UV_ENOMEM;
  int err = uv_loop_init(&s->loop);
  if (err != 0) {
    free(s);
    return err;
  }
  slow_server_set_faults(s, NULL);
  uv_tcp_init(&s->loop, &s->listener);
  s->listener.data = s;
  err = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
  if (err == 0) /* the kernel caps the backlog at net.core.somaxconn */
    err = uv_listen((uv_stream_t *)&s->listener, 65535, on_connection);
  int len = sizeof(addr);
  if (err == 0)
    err = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&addr, &len);
  if (err != 0) {
    slow_server_close(s);
    return err;
  }
  s->port = ntohs(addr.ss_family == AF_INET
                      ? ((struct sockaddr_in *)&addr)->sin_port
                      : ((struct sockaddr_in6 *)&addr)->sin6_port);
  *server = s;
  return 0;
}

unsigned slow_server_port(const slow_server *server) { return server->port; }

int slow_server_run(slow_server *s) {
  uv_signal_init(&s->loop, &s->sigint);
  uv_signal_init(&s->loop, &s->sigterm);
  s->sigint.data = s->sigterm.data = s;
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  return uv_run(&s->loop, UV_RUN_DEFAULT);
}

void slow_server_close(slow_server *s) {
  if (s == NULL)
    return;
  if (!s->stopped)
    close_all(s);
  uv_run(&s->loop, UV_RUN_DEFAULT); /* the close callbacks */
  uv_loop_close(&s->loop);
  free(s);
}

int slow_server_fork(const char *ip, unsigned *port, pid_t *pid) {
  return slow_server_fork_with(ip, NULL, port, pid);
}

int slow_server_fork_with(const char *ip, const slow_faults *faults,
                          unsigned *port, pid_t *pid) {
  int fds[2];
  if (pipe(fds) != 0)
    return uv_translate_sys_error(errno);
  pid_t parent = getpid();
  *pid = fork();
  if (*pid < 0) {
    int err = uv_translate_sys_error(errno);
    close(fds[0]);
    close(fds[1]);
    return err;
  }
  if (*pid == 0) { /* the service */
    close(fds[0]);
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    fd_limit_raise();
    slow_server *s;
    unsigned got = 0;
    if (getppid() == parent && slow_server_open(&s, ip, 0) == 0) {
      slow_server_set_faults(s, faults);
      got = slow_server_port(s);
    }
    ssize_t n = write(fds[1], &got, sizeof(got));
    close(fds[1]);
    if (got != 0 && n == (ssize_t)sizeof(got))
      slow_server_run(s);
    if (got != 0)
      slow_server_close(s);
    _exit(got != 0 ? 0
                   : 1); /* not exit(): the stdio buffers are the parent's */
  }
  close(fds[1]);
  ssize_t n;
  do
    n = read(fds[0], port, sizeof(*port));
  while (n < 0 && errno == EINTR);
  close(fds[0]);
  if (n != (ssize_t)sizeof(*port) || *port == 0) {
    slow_server_kill(*pid);
    return UV_EADDRNOTAVAIL;
  }
  return 0;
}

int slow_server_kill(pid_t pid) {
  kill(pid, SIGTERM);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

unsigned long fd_limit_raise(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return (unsigned long)rl.rlim_cur;
}
