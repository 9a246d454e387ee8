/* HTTP/1.1 over libuv TCP for plain http:// on the loop styles: what
 * libcurl's multi interface did for them, at a third of its CPU a
 * request (docs/performance.md). A client keeps, per origin (host and
 * port), its addresses (a name resolved by getaddrinfo, for 60 s as
 * libcurl does), its connections (idle ones ready for the next request,
 * at most max_host in all) and the transfers waiting for a name or a
 * connection, in order. A connection is a uv_tcp_t of the client's, not
 * of the operation's: a transfer stopped in the middle closes it and is
 * over at once. Transfers that fail where nothing may call back (inside
 * iob__h1_start() or another transfer's stop) end on the loop's next
 * turn, through the client's idle handle. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/socket.h>

#include "iobound.h"
#include "http1.h"

/* A name's addresses are good this long (libcurl's DNS cache: 60 s). */
#define NAME_TTL_NS (UINT64_C(60) * 1000 * 1000 * 1000)
/* An idle connection is not used past this age (libcurl's MAXAGE_CONN,
 * 118 s: under the idle timeouts of most servers and proxies). */
#define IDLE_MAX_NS (UINT64_C(118) * 1000 * 1000 * 1000)

/* Transfers in order, each in at most one list. */
typedef struct h1_list {
  iob__h1_xfer *head, *tail;
} h1_list;

struct iob__h1_client {
  uv_loop_t *loop;
  uint32_t max_host;
  struct h1_origin *origins;
  uv_idle_t soon; /* ends the doomed transfers */
  h1_list doomed;
  /* Where every connection reads into: its bytes are parsed in the same
   * callback, before another connection reads. */
  char buf[64 * 1024];
};

typedef struct h1_origin {
  struct h1_origin *next;
  iob__h1_client *c; /* NULL once the client is freed */
  char *host;        /* as the URL has it, without brackets */
  unsigned port;
  bool numeric;
  struct sockaddr_storage addr; /* a numeric host's */
  struct addrinfo *ai;          /* a name's, from getaddrinfo */
  uint64_t resolved_ns;
  bool resolving;
  uv_getaddrinfo_t gai;
  h1_list waiting;                  /* for the name, or for a connection */
  struct h1_conn *idle, *idle_tail; /* the last kept first */
  struct h1_conn *conns;
  uint32_t open; /* connections not closing */
  uint32_t refs; /* connections not closed, a lookup under way, callers */
} h1_origin;

typedef struct h1_conn {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  h1_origin *o;
  iob__h1_xfer *x;             /* the transfer on it, NULL if idle or closing */
  struct h1_conn *prev, *next; /* the origin's */
  struct h1_conn *idle_prev, *idle_next; /* its idle ones' */
  uint64_t idle_ns;                      /* when it was last kept */
  bool idle, closing, writing, nodelay;
} h1_conn;

static uint64_t now(void) { return uv_hrtime(); }

/* ---- lists ------------------------------------------------------------------ */

static void list_add(h1_list *l, iob__h1_xfer *x) {
  x->in = l;
  x->next = NULL;
  x->prev = l->tail;
  if (l->tail != NULL)
    l->tail->next = x;
  else
    l->head = x;
  l->tail = x;
}

static void list_remove(iob__h1_xfer *x) {
  h1_list *l = x->in;
  if (l == NULL)
    return;
  if (x->prev != NULL)
    x->prev->next = x->next;
  else
    l->head = x->next;
  if (x->next != NULL)
    x->next->prev = x->prev;
  else
    l->tail = x->prev;
  x->in = NULL;
  x->prev = x->next = NULL;
}

/* ---- URLs -------------------------------------------------------------------- */

/* An http:// URL's parts: the host (brackets off), the port, the path
 * with its query (the fragment off). */
typedef struct url_parts {
  const char *host, *path;
  size_t host_len, path_len;
  unsigned port;
  bool v6, port_given;
} url_parts;

static bool host_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* A path byte libcurl sends as it is: printable ASCII but a space and a
 * backslash. */
static bool path_byte(char c) { return c > ' ' && c < 0x7f && c != '\\'; }

static bool parse_url(const char *url, url_parts *u) {
  if (strncmp(url, "http://", 7) != 0)
    return false;
  const char *s = url + 7, *e = s + strcspn(s, "/?#");
  *u = (url_parts){.port = 80};
  const char *h = s, *he;
  if (*s == '[') {
    h = s + 1;
    he = memchr(h, ']', (size_t)(e - h));
    if (he == NULL || he == h ||
        strspn(h, "0123456789abcdefABCDEF:.") != (size_t)(he - h))
      return false;
    u->v6 = true;
    s = he + 1;
  } else {
    for (he = h; he < e && host_byte(*he); he++)
      ;
    if (he == h)
      return false;
    s = he;
  }
  if (s < e && *s == ':') {
    unsigned port = 0;
    const char *p = s + 1;
    for (; p < e && *p >= '0' && *p <= '9' && p - s <= 5; p++)
      port = port * 10 + (unsigned)(*p - '0');
    if (p == s + 1 || p != e || port == 0 || port > 65535)
      return false;
    u->port = port;
    u->port_given = true;
    s = e;
  }
  if (s != e) /* a user name, or a byte no host has */
    return false;
  u->host = h;
  u->host_len = (size_t)(he - h);
  u->path = e;
  u->path_len = strcspn(e, "#");
  for (size_t k = 0; k < u->path_len; k++)
    if (!path_byte(e[k]))
      return false;
  /* libcurl takes out dot segments ("/a/../b" is "/b"): not here. */
  for (const char *d = e; (d = strstr(d, "/.")) != NULL && d < e + u->path_len;
       d++)
    if (d[2] == '/' || d[2] == '.' || d[2] == '?' || d[2] == '#' ||
        d + 2 == e + u->path_len)
      return false;
  return true;
}

/* Whether a host that is an address is written as the address is
 * written back (libcurl would rewrite "127.1", "0x7f.0.0.1", "0127.0.0.1"
 * or "[0:0::1]" before it connected or sent it as the Host). */
static bool canonical(const url_parts *u) {
  char host[64], back[64];
  unsigned char addr[16];
  if (u->host_len >= sizeof(host))
    return !u->v6 && !(u->host[0] >= '0' && u->host[0] <= '9');
  memcpy(host, u->host, u->host_len);
  host[u->host_len] = '\0';
  int family = u->v6 ? AF_INET6 : AF_INET;
  if (!u->v6 && !(host[0] >= '0' && host[0] <= '9'))
    return true; /* a name */
  return uv_inet_pton(family, host, addr) == 0 &&
         uv_inet_ntop(family, addr, back, sizeof(back)) == 0 &&
         strcmp(host, back) == 0;
}

/* ---- the request ---------------------------------------------------------- */

/* The name of header line h, and whether it only takes out a header of
 * libcurl's ("Name:") or is to be sent empty ("Name;"), as libcurl reads
 * CURLOPT_HTTPHEADER. */
static size_t header_name(const char *h, bool *drop, bool *empty) {
  size_t n = strcspn(h, ":;");
  const char *rest = h + n + (h[n] != '\0');
  bool blank = strspn(rest, " \t") == strlen(rest);
  *drop = h[n] == ':' && blank;
  *empty = h[n] == ';' && blank;
  return n;
}

/* The request's own header named `name`, or NULL. */
static const char *named(const char *const *headers, const char *name) {
  size_t len = strlen(name);
  for (size_t k = 0; headers != NULL && headers[k] != NULL; k++) {
    bool drop, empty;
    if (header_name(headers[k], &drop, &empty) == len &&
        strncasecmp(headers[k], name, len) == 0)
      return headers[k];
  }
  return NULL;
}

static bool names(const char *const *headers, const char *name) {
  return named(headers, name) != NULL;
}

/* Whether each header is a line libcurl sends as it is, takes out or
 * sends empty, and none is one whose meaning libcurl acts on itself. */
static bool plain_headers(const char *const *headers) {
  for (size_t k = 0; headers != NULL && headers[k] != NULL; k++) {
    bool drop, empty;
    size_t n = header_name(headers[k], &drop, &empty);
    if (n == 0 || headers[k][n] == '\0' || (headers[k][n] == ';' && !empty))
      return false; /* lines libcurl leaves out */
  }
  return !names(headers, "Transfer-Encoding") && !names(headers, "Expect");
}

bool iob__h1_takes(const iob__h1_request *r) {
  url_parts u;
  bool head = r->method != NULL && strcmp(r->method, "HEAD") == 0;
  return r->url != NULL && parse_url(r->url, &u) && canonical(&u) &&
         plain_headers(r->headers) && !(head && r->body != NULL) &&
         (r->body == NULL || r->body_len <= IOB__H1_BODY_MAX);
}

/* Text that grows. */
typedef struct text {
  char *s;
  size_t len, cap;
  bool failed;
} text;

static void put(text *t, const char *s, size_t n) {
  if (t->failed)
    return;
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + n + 1)
      cap *= 2;
    char *more = realloc(t->s, cap);
    if (more == NULL) {
      t->failed = true;
      return;
    }
    t->s = more;
    t->cap = cap;
  }
  memcpy(t->s + t->len, s, n);
  t->len += n;
  t->s[t->len] = '\0';
}

static void puts_(text *t, const char *s) { put(t, s, strlen(s)); }

/* The request's head, as libcurl would send it: its Host (with the port
 * unless 80), Accept: * / *, the request's own headers, and for a body
 * its length and libcurl's Content-Type; each of libcurl's replaced by a
 * header of the request's own of that name. */
static int build_request(iob__h1_xfer *x, const iob__h1_request *r,
                         const url_parts *u) {
  const char *const *hs = r->headers;
  bool body = r->body != NULL;
  text t = {0};
  puts_(&t, r->method != NULL ? r->method : body ? "POST" : "GET");
  put(&t, " ", 1);
  if (u->path_len == 0 || u->path[0] != '/')
    put(&t, "/", 1);
  put(&t, u->path, u->path_len);
  puts_(&t, " HTTP/1.1\r\n");
  const char *host = named(hs, "Host");
  bool drop, empty;
  if (host != NULL) { /* first, where libcurl puts its own */
    size_t n = header_name(host, &drop, &empty);
    if (!drop) {
      put(&t, host, empty ? n : strlen(host));
      puts_(&t, empty ? ":\r\n" : "\r\n");
    }
  } else {
    puts_(&t, u->v6 ? "Host: [" : "Host: ");
    put(&t, u->host, u->host_len);
    char port[16];
    snprintf(port, sizeof(port), ":%u", u->port);
    puts_(&t, u->v6 ? "]" : "");
    if (u->port != 80)
      puts_(&t, port);
    puts_(&t, "\r\n");
  }
  if (!names(hs, "Accept"))
    puts_(&t, "Accept: */*\r\n");
  for (size_t k = 0; hs != NULL && hs[k] != NULL; k++) {
    size_t n = header_name(hs[k], &drop, &empty);
    if (drop || hs[k] == host)
      continue;
    put(&t, hs[k], empty ? n : strlen(hs[k]));
    puts_(&t, empty ? ":\r\n" : "\r\n");
  }
  if (body && !names(hs, "Content-Length")) {
    char length[48];
    snprintf(length, sizeof(length), "Content-Length: %zu\r\n", r->body_len);
    puts_(&t, length);
  }
  if (body && !names(hs, "Content-Type"))
    puts_(&t, "Content-Type: application/x-www-form-urlencoded\r\n");
  puts_(&t, "\r\n");
  if (t.failed) {
    free(t.s);
    return IOB_ENOMEM;
  }
  x->req = t.s;
  x->req_len = t.len;
  return 0;
}

/* ---- origins ------------------------------------------------------------------ */

static void origin_free(h1_origin *o) {
  if (o->ai != NULL)
    uv_freeaddrinfo(o->ai);
  free(o->host);
  free(o);
}

/* A reference let go. An origin goes with its last once its client is
 * freed, or while the client lives once nothing is left of it (no
 * connection, no transfer waiting, no lookup): a client that talked to
 * many hosts keeps only those it still has connections to. */
static void origin_unref(h1_origin *o) {
  if (--o->refs > 0)
    return;
  iob__h1_client *c = o->c;
  if (c != NULL && (o->conns != NULL || o->waiting.head != NULL))
    return;
  if (c != NULL) {
    h1_origin **at = &c->origins;
    while (*at != o)
      at = &(*at)->next;
    *at = o->next;
  }
  origin_free(o);
}

/* c's origin for u, made if it has none. NULL when memory runs out. */
static h1_origin *origin_of(iob__h1_client *c, const url_parts *u) {
  for (h1_origin *o = c->origins; o != NULL; o = o->next)
    if (o->port == u->port && strlen(o->host) == u->host_len &&
        strncasecmp(o->host, u->host, u->host_len) == 0)
      return o;
  h1_origin *o = calloc(1, sizeof(*o));
  if (o == NULL || (o->host = strndup(u->host, u->host_len)) == NULL) {
    free(o);
    return NULL;
  }
  o->c = c;
  o->port = u->port;
  if (u->v6)
    o->numeric = uv_ip6_addr(o->host, (int)o->port,
                             (struct sockaddr_in6 *)&o->addr) == 0;
  else
    o->numeric =
        uv_ip4_addr(o->host, (int)o->port, (struct sockaddr_in *)&o->addr) == 0;
  o->next = c->origins;
  c->origins = o;
  return o;
}

/* Its address number i, or NULL past the last. */
static const struct sockaddr *address(const h1_origin *o, uint32_t i) {
  if (o->numeric)
    return i == 0 ? (const struct sockaddr *)&o->addr : NULL;
  const struct addrinfo *a = o->ai;
  while (a != NULL && i-- > 0)
    a = a->ai_next;
  return a != NULL ? a->ai_addr : NULL;
}

static bool addresses_known(const h1_origin *o) {
  return o->numeric || (o->ai != NULL && now() - o->resolved_ns < NAME_TTL_NS);
}

/* ---- ending transfers ----------------------------------------------------------- */

/* The code a failure in `step` is, as libcurl's path reports it: any
 * failure to connect is a refusal (the words say which), a broken
 * connection a reset, another failure to read or send UV_EIO. */
static int code_of(int status, const char *step) {
  switch (status) {
  case UV_EMFILE:
  case UV_ENFILE:
  case IOB_ENOMEM:
  case UV_EOF:
  case UV_ECONNRESET:
  case UV_EAI_NONAME:
    return status;
  case UV_EPIPE:
  case UV_ECONNABORTED:
    return UV_ECONNRESET;
  default:
    if (strcmp(step, "connecting to") == 0)
      return UV_ECONNREFUSED;
    return status == UV_EIO || status >= 0 ? UV_EIO : status;
  }
}

/* Words for status, as the step it failed in met it. */
static void explain(iob__h1_xfer *x, int status, const char *step) {
  const h1_origin *o = x->o;
  if (x->p.why != NULL && x->p.state != 0) { /* the parser's */
    snprintf(x->why, sizeof(x->why), "%s", x->p.why);
    return;
  }
  switch (status) {
  case UV_EMFILE:
    snprintf(x->why, sizeof(x->why),
             "no socket: the process has all the file descriptors it may "
             "(RLIMIT_NOFILE) open");
    break;
  case UV_ENFILE:
    snprintf(x->why, sizeof(x->why),
             "no socket: the system has all the files it may open");
    break;
  case UV_ECONNRESET:
  case UV_EPIPE:
  case UV_ECONNABORTED:
    snprintf(x->why, sizeof(x->why),
             "%s %.100s port %u: the server reset "
             "the connection",
             step, o->host, o->port);
    break;
  case UV_EOF:
    snprintf(x->why, sizeof(x->why),
             "the server closed the connection without an answer");
    break;
  case UV_EAI_NONAME:
    snprintf(x->why, sizeof(x->why), "could not resolve host: %.100s", o->host);
    break;
  default:
    snprintf(x->why, sizeof(x->why), "%s %.100s port %u: %s", step, o->host,
             o->port, uv_strerror(status));
  }
}

/* The transfer is over: tell its caller, last (the batch may end). */
static void finish(iob__h1_xfer *x, int status) {
  x->end_ns = now();
  x->o = NULL;
  x->conn = NULL;
  x->done(x, status);
}

/* It failed in `step` with status: words and code, and it ends. */
static void fail_now(iob__h1_xfer *x, int status, const char *step) {
  explain(x, status, step);
  finish(x, code_of(status, step));
}

static void on_soon(uv_idle_t *idle) {
  iob__h1_client *c = idle->data;
  uv_idle_stop(idle);
  iob__h1_xfer *x;
  while ((x = c->doomed.head) != NULL) {
    list_remove(x);
    finish(x, x->status);
  }
}

/* It failed where nothing may call back: it ends on the next turn. */
static void doom(iob__h1_xfer *x, int status, const char *step) {
  iob__h1_client *c = x->o->c;
  explain(x, status, step);
  x->status = code_of(status, step);
  list_remove(x);
  list_add(&c->doomed, x);
  uv_idle_start(&c->soon, on_soon);
}

/* ---- connections ------------------------------------------------------------ */

static void on_conn_closed(uv_handle_t *h) {
  h1_conn *k = h->data;
  h1_origin *o = k->o;
  free(k);
  origin_unref(o);
}

/* Idle connections: a list, the last kept first, each taken out in
 * constant time (ten thousand close together at the client's end). */
static void idle_add(h1_conn *k) {
  h1_origin *o = k->o;
  k->idle = true;
  k->idle_ns = now();
  k->idle_prev = NULL;
  k->idle_next = o->idle;
  if (o->idle != NULL)
    o->idle->idle_prev = k;
  else
    o->idle_tail = k;
  o->idle = k;
}

static void idle_remove(h1_conn *k) {
  h1_origin *o = k->o;
  if (k->idle_prev != NULL)
    k->idle_prev->idle_next = k->idle_next;
  else
    o->idle = k->idle_next;
  if (k->idle_next != NULL)
    k->idle_next->idle_prev = k->idle_prev;
  else
    o->idle_tail = k->idle_prev;
  k->idle_prev = k->idle_next = NULL;
  k->idle = false;
}

/* Close k (once); its transfer, if any, must have let it go. */
static void close_conn(h1_conn *k) {
  if (k->closing)
    return;
  h1_origin *o = k->o;
  if (k->idle)
    idle_remove(k);
  k->closing = true;
  o->open--;
  if (k->prev != NULL)
    k->prev->next = k->next;
  else
    o->conns = k->next;
  if (k->next != NULL)
    k->next->prev = k->prev;
  uv_close((uv_handle_t *)&k->tcp, on_conn_closed);
}

/* Whether idle connection k may take a request: not past its age, and
 * the server has neither closed it nor sent on it since its last answer.
 * The loop may not have run since (an idle one keeps no loop alive), so
 * what came is read here, without taking it. */
static bool alive(const h1_conn *k) {
  if (now() - k->idle_ns > IDLE_MAX_NS)
    return false;
  uv_os_fd_t fd;
  char byte;
  if (uv_fileno((const uv_handle_t *)&k->tcp, &fd) != 0)
    return false;
  ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void attach(h1_conn *k, iob__h1_xfer *x) {
  k->x = x;
  x->conn = k;
}

static void detach(h1_conn *k) {
  if (k->x != NULL)
    k->x->conn = NULL;
  k->x = NULL;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  h1_conn *k = h->data;
  *buf = uv_buf_init(k->o->c->buf, sizeof(k->o->c->buf));
}

static void pump(h1_origin *o);
static void acquire(iob__h1_xfer *x);
static void on_connect(uv_connect_t *req, int status);

/* What failing with status on a reused connection means: that it had
 * been closed, or was closing, before the request. Again on a new one,
 * once, as libcurl does. */
static bool again(const iob__h1_xfer *x, int status) {
  return x->reused && !x->retried && x->p.received == 0 &&
         (status == UV_EOF || status == UV_ECONNRESET || status == UV_EPIPE ||
          status == UV_ECONNABORTED);
}

/* The transfer on k failed with status in `step`: k closes, and it ends
 * (or begins again), and those waiting for a connection may go on. */
static void conn_failed(h1_conn *k, int status, const char *step) {
  iob__h1_xfer *x = k->x;
  h1_origin *o = k->o;
  o->refs++;
  detach(k);
  close_conn(k);
  if (again(x, status)) {
    x->retried = true; /* on a new connection: others may be as old */
    x->reused = false;
    x->addr = 0;
    acquire(x);
  } else {
    fail_now(x, status, step);
    pump(o);
  }
  origin_unref(o);
}

/* The answer on k is whole: k is kept for the next request or closed,
 * the transfer ends, and those waiting for a connection may go on. */
static void answer_done(h1_conn *k, bool keeps) {
  iob__h1_xfer *x = k->x;
  h1_origin *o = k->o;
  o->refs++;
  detach(k);
  if (keeps && !x->fresh && !k->writing) {
    idle_add(k);
    uv_unref((uv_handle_t *)&k->tcp); /* an idle one keeps no loop alive */
  } else {
    close_conn(k);
  }
  finish(x, 0);
  pump(o);
  origin_unref(o);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  h1_conn *k = s->data;
  iob__h1_xfer *x = k->x;
  if (nread == 0)
    return;        /* nothing to read after all (EAGAIN) */
  if (x == NULL) { /* idle: the server closed it, or said what none asked */
    close_conn(k);
    return;
  }
  if (nread < 0) {
    int r = nread == UV_EOF ? iob__h1_closed(&x->p) : (int)nread;
    if (r == IOB__H1_DONE)
      answer_done(k, false);
    else
      conn_failed(k, r, "reading from");
    return;
  }
  if (x->first_ns == 0)
    x->first_ns = now();
  size_t used;
  x->busy = true; /* its sink may stop it (iob__h1_stop()) */
  int r = iob__h1_parse(&x->p, buf->base, (size_t)nread, &used);
  x->busy = false;
  if (x->stopped) /* and it let k go */
    finish(x, IOB_ECANCELED);
  else if (r < 0)
    conn_failed(k, r, "reading from");
  else if (r == IOB__H1_DONE) /* more after it: none asked for it */
    answer_done(k, used == (size_t)nread && iob__h1_keeps(&x->p));
}

static void on_written(uv_write_t *w, int status) {
  h1_conn *k = w->data;
  k->writing = false;
  if (status < 0 && k->x != NULL)
    conn_failed(k, status, "sending to");
}

/* Send x's request on k, x's connection now. */
static int send_request(h1_conn *k) {
  iob__h1_xfer *x = k->x;
  uv_buf_t b[2] = {uv_buf_init(x->req, (unsigned)x->req_len),
                   uv_buf_init((char *)x->body, (unsigned)x->body_len)};
  /* A body may take more than a segment: its last must not wait for the
   * first's acknowledgement (Nagle's algorithm), as libcurl sees to. */
  if (x->body_len > 0 && !k->nodelay)
    k->nodelay = uv_tcp_nodelay(&k->tcp, 1) == 0;
  int err = uv_write(&k->write, (uv_stream_t *)&k->tcp, b,
                     x->body_len > 0 ? 2 : 1, on_written);
  k->writing = err == 0;
  return err;
}

/* A connection for x to its origin's address x->addr, or the next that
 * can be tried at once. 0, or why not with nothing left open. */
static int connect_to(iob__h1_xfer *x) {
  h1_origin *o = x->o;
  h1_conn *k = calloc(1, sizeof(*k));
  if (k == NULL)
    return IOB_ENOMEM;
  int err = uv_tcp_init(o->c->loop, &k->tcp);
  if (err != 0) {
    free(k);
    return err;
  }
  k->o = o;
  k->tcp.data = k->connect.data = k->write.data = k;
  k->next = o->conns;
  if (o->conns != NULL)
    o->conns->prev = k;
  o->conns = k;
  o->open++;
  o->refs++;
  attach(k, x);
  x->reused = false;
  /* The socket is made here: out of descriptors, this fails at once.
   * Reading from now on: the socket joins epoll once, for the connect
   * and the answer (as iob_kind_tcp). */
  err = uv_tcp_connect(&k->connect, &k->tcp, address(o, x->addr), on_connect);
  if (err == 0)
    err = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
  if (err != 0) {
    detach(k);
    close_conn(k);
  }
  return err;
}

/* Whether a failure to connect may be another address's success. */
static bool try_next(const iob__h1_xfer *x, int err) {
  return err != UV_EMFILE && err != UV_ENFILE && err != IOB_ENOMEM &&
         address(x->o, x->addr + 1) != NULL;
}

/* A new connection for x: its addresses in turn, from x->addr, while
 * they fail at once. */
static int open_conn(iob__h1_xfer *x) {
  int err;
  while ((err = connect_to(x)) != 0 && try_next(x, err))
    x->addr++;
  return err;
}

static void on_connect(uv_connect_t *req, int status) {
  h1_conn *k = req->data;
  iob__h1_xfer *x = k->x;
  if (x == NULL || k->closing)
    return; /* stopped: the close ended the connect */
  if (status < 0 && try_next(x, status)) {
    h1_origin *o = k->o; /* the next of the name's addresses, in its room */
    o->refs++;
    detach(k);
    close_conn(k);
    x->addr++;
    if ((status = open_conn(x)) != 0) {
      fail_now(x, status, "connecting to");
      pump(o);
    }
    origin_unref(o);
    return;
  }
  if (status < 0) {
    conn_failed(k, status, "connecting to");
    return;
  }
  x->connect_ns = now();
  if ((status = send_request(k)) != 0)
    conn_failed(k, status, "sending to");
}

/* x takes idle connection k. */
static int reuse(h1_conn *k, iob__h1_xfer *x) {
  idle_remove(k);
  uv_ref((uv_handle_t *)&k->tcp);
  attach(k, x);
  x->reused = true;
  x->connect_ns = 0;
  return send_request(k);
}

/* ---- names ------------------------------------------------------------------ */

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *ai) {
  h1_origin *o = req->data;
  o->resolving = false;
  if (o->c == NULL || status == UV_EAI_CANCELED) {
    uv_freeaddrinfo(ai);
    origin_unref(o);
    return;
  }
  if (status == 0) {
    if (o->ai != NULL)
      uv_freeaddrinfo(o->ai);
    o->ai = ai;
    o->resolved_ns = now();
    pump(o);
  } else { /* those waiting for it fail; those that begin now, not */
    h1_list failed = o->waiting;
    for (iob__h1_xfer *x = failed.head; x != NULL; x = x->next)
      x->in = &failed;
    o->waiting = (h1_list){0};
    iob__h1_xfer *x;
    while ((x = failed.head) != NULL) {
      list_remove(x);
      fail_now(x, UV_EAI_NONAME, "resolving");
    }
  }
  origin_unref(o);
}

static int resolve(h1_origin *o) {
  if (o->resolving)
    return 0;
  static const struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                        .ai_socktype = SOCK_STREAM};
  char port[8];
  snprintf(port, sizeof(port), "%u", o->port);
  o->gai.data = o;
  int err =
      uv_getaddrinfo(o->c->loop, &o->gai, on_resolved, o->host, port, &hints);
  if (err == 0) {
    o->resolving = true;
    o->refs++;
  }
  return err;
}

/* ---- waiting transfers -------------------------------------------------------- */

/* Start the transfers waiting in o while they may: each takes an idle
 * connection that is alive (a retried one, a new one) or, within
 * max_host, a new one, once the name is known. One that cannot begin is
 * doomed (this may run inside a start or a stop). */
static void pump(h1_origin *o) {
  iob__h1_xfer *x;
  while (o->c != NULL && (x = o->waiting.head) != NULL) {
    uint32_t max = o->c->max_host;
    if (o->idle_tail != NULL && !alive(o->idle_tail)) {
      close_conn(o->idle_tail); /* the oldest first: gone, or past its age */
      continue;
    }
    if (!x->fresh && !x->retried && o->idle != NULL) {
      h1_conn *k = o->idle;
      if (!alive(k)) {
        close_conn(k);
        continue;
      }
      list_remove(x);
      if (x->name_ns == 0)
        x->name_ns = now();
      int err = reuse(k, x);
      if (err != 0) {
        detach(k);
        close_conn(k);
        doom(x, err, "sending to");
      }
      continue;
    }
    if (max != 0 && o->open >= max) {
      if (o->idle == NULL)
        return;            /* until a connection is free */
      close_conn(o->idle); /* one that must have a new one waits for room */
      continue;
    }
    if (!addresses_known(o)) {
      int err = resolve(o);
      if (err == 0)
        return; /* until the name is known */
      list_remove(x);
      doom(x, UV_EAI_NONAME, "resolving");
      continue;
    }
    list_remove(x);
    if (x->name_ns == 0)
      x->name_ns = now();
    int err = open_conn(x);
    if (err != 0)
      doom(x, err, "connecting to");
  }
}

/* x waits its turn, behind those already waiting. */
static void acquire(iob__h1_xfer *x) {
  list_add(&x->o->waiting, x);
  pump(x->o);
}

/* ---- the client -------------------------------------------------------------- */

int iob__h1_start(iob__h1_client *c, iob__h1_xfer *x,
                  const iob__h1_request *r) {
  url_parts u;
  if (!parse_url(r->url, &u))
    return IOB_EINVAL;
  x->start_ns = now();
  x->fresh = r->fresh;
  x->body = r->body;
  x->body_len = r->body != NULL ? r->body_len : 0;
  iob__h1_parser_init(&x->p, x->p.sink,
                      r->method != NULL && strcmp(r->method, "HEAD") == 0);
  int err = build_request(x, r, &u);
  if (err != 0)
    return err;
  if ((x->o = origin_of(c, &u)) == NULL)
    return IOB_ENOMEM;
  acquire(x);
  return 0;
}

bool iob__h1_stop(iob__h1_xfer *x) {
  if (x->in != NULL) { /* waiting, or doomed */
    list_remove(x);
    return true;
  }
  h1_conn *k = x->conn;
  if (k == NULL)
    return true;
  h1_origin *o = k->o;
  o->refs++;
  detach(k);
  close_conn(k); /* in the middle of an answer: not for another */
  pump(o);       /* its room to the next */
  origin_unref(o);
  x->stopped = x->busy;
  return !x->busy;
}

void iob__h1_xfer_free(iob__h1_xfer *x) {
  free(x->req);
  x->req = NULL;
  iob__h1_parser_free(&x->p);
}

int iob__h1_client_make(iob__h1_client **out, uv_loop_t *loop,
                        uint32_t max_host) {
  iob__h1_client *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return IOB_ENOMEM;
  c->loop = loop;
  c->max_host = max_host;
  uv_idle_init(loop, &c->soon);
  c->soon.data = c;
  *out = c;
  return 0;
}

static void on_client_closed(uv_handle_t *h) { free(h->data); }

void iob__h1_client_free(iob__h1_client *c) {
  if (c == NULL)
    return;
  h1_origin *o;
  while ((o = c->origins) != NULL) {
    c->origins = o->next;
    o->c = NULL; /* (each close below lets go of it) */
    o->refs++;
    while (o->conns != NULL)
      close_conn(o->conns);
    if (o->resolving)
      uv_cancel((uv_req_t *)&o->gai);
    origin_unref(o);
  }
  uv_close((uv_handle_t *)&c->soon, on_client_closed);
}
