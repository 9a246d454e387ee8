/* A plain HTTP/1.1 client over a blocking socket (http-client.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"
#include "http-client.h"

void http_connect(http_conn *c, unsigned port) {
  c->len = 0;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_cmp(c->fd, >=, 0);
  struct timeval tv = {.tv_sec = 10};
  assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
                   0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
    fail_msg("connect to 127.0.0.1:%u: %s", port, strerror(errno));
}

void http_send_n(http_conn *c, const char *data, size_t n) {
  while (n > 0) {
    ssize_t k = send(c->fd, data, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      fail_msg("send: %s", strerror(errno));
    data += k;
    n -= (size_t)k;
  }
}

void http_send(http_conn *c, const char *text) {
  http_send_n(c, text, strlen(text));
}

/* Receive more into buf; false at EOF. */
static bool more(http_conn *c) {
  if (c->len == sizeof(c->buf))
    fail_msg("a response larger than %zu bytes", sizeof(c->buf));
  ssize_t k;
  do
    k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
  while (k < 0 && errno == EINTR);
  if (k < 0)
    fail_msg("recv: %s", strerror(errno));
  c->len += (size_t)k;
  return k > 0;
}

/* Drop the first n bytes of buf. */
static void drop(http_conn *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

/* A line ending in "\r\n" at the start of buf: its length without it. */
static size_t line(http_conn *c) {
  for (;;) {
    for (size_t i = 0; i + 1 < c->len; i++)
      if (c->buf[i] == '\r' && c->buf[i + 1] == '\n')
        return i;
    if (!more(c))
      fail_msg("the connection closed before the end of a line "
               "(%zu bytes: \"%.*s\")",
               c->len, (int)c->len, c->buf);
  }
}

static void take_body(http_conn *c, http_response *r, size_t n) {
  while (c->len < n)
    if (!more(c))
      fail_msg("the connection closed within a body");
  size_t room = sizeof(r->body) - 1 - r->body_len;
  size_t k = n < room ? n : room;
  memcpy(r->body + r->body_len, c->buf, k);
  r->body_len += k;
  r->body[r->body_len] = '\0';
  drop(c, n);
}

static void header_value(const char *v, size_t n, char *out, size_t size) {
  snprintf(out, size, "%.*s", (int)n, v);
}

void http_read(http_conn *c, http_response *r, bool head_only) {
  memset(r, 0, sizeof(*r));
  r->length = -1;
  size_t n = line(c);
  int minor;
  if (sscanf(c->buf, "HTTP/1.%d %d ", &minor, &r->status) != 2)
    fail_msg("not a status line: \"%.*s\"", (int)n, c->buf);
  drop(c, n + 2);
  bool chunked = false;
  while ((n = line(c)) > 0) {
    const char *colon = memchr(c->buf, ':', n);
    assert_non_null(colon);
    size_t name = (size_t)(colon - c->buf);
    const char *v = colon + 1;
    while (*v == ' ')
      v++;
    size_t vl = n - (size_t)(v - c->buf);
#define IS(h) (name == strlen(h) && strncasecmp(c->buf, h, name) == 0)
    if (IS("Connection")) {
      r->closes = vl == 5 && strncasecmp(v, "close", 5) == 0;
      r->keep_alive = vl == 10 && strncasecmp(v, "keep-alive", 10) == 0;
    } else if (IS("Content-Type")) {
      header_value(v, vl, r->type, sizeof(r->type));
    } else if (IS("Allow")) {
      header_value(v, vl, r->allow, sizeof(r->allow));
    } else if (IS("Retry-After")) {
      header_value(v, vl, r->retry_after, sizeof(r->retry_after));
    } else if (IS("Content-Length")) {
      r->length = strtol(v, NULL, 10);
    } else if (IS("Transfer-Encoding")) {
      chunked = vl == 7 && strncasecmp(v, "chunked", 7) == 0;
    }
#undef IS
    drop(c, n + 2);
  }
  drop(c, 2);
  if (head_only)
    return;
  if (!chunked) {
    assert_cmp(r->length, >=, 0);
    take_body(c, r, (size_t)r->length);
    return;
  }
  for (;;) { /* chunks: "HEX\r\n" DATA "\r\n", until "0\r\n\r\n" */
    n = line(c);
    size_t size = strtoul(c->buf, NULL, 16);
    drop(c, n + 2);
    if (size == 0)
      break;
    take_body(c, r, size + 2);
    r->body_len -= 2; /* the chunk's CRLF */
    r->body[r->body_len] = '\0';
  }
  assert_int_equal(line(c), 0); /* no trailers */
  drop(c, 2);
}

bool http_at_eof(http_conn *c) {
  if (c->len > 0)
    return false;
  return !more(c) && c->len == 0;
}

bool http_is_idle(http_conn *c) {
  if (c->len > 0)
    return false;
  char byte;
  ssize_t k = recv(c->fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK);
  return k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void http_close(http_conn *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
}

unsigned http_url_port(const char *url) {
  const char *prefix = "http://127.0.0.1:";
  if (url == NULL || strncmp(url, prefix, strlen(prefix)) != 0)
    return 0;
  char *end;
  unsigned long port = strtoul(url + strlen(prefix), &end, 10);
  return (*end == '\0' || *end == '/') && port > 0 && port < 65536
             ? (unsigned)port
             : 0;
}

double http_waits_at_once(unsigned port, int n, unsigned ms) {
  http_conn *c = calloc((size_t)n, sizeof(*c));
  assert_non_null(c);
  char request[96], body[32];
  snprintf(request, sizeof(request),
           "GET /wait/%u HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", ms);
  snprintf(body, sizeof(body), "done %u\n", ms);
  uint64_t t0 = uv_hrtime();
  for (int k = 0; k < n; k++) {
    http_connect(&c[k], port);
    http_send(&c[k], request);
  }
  for (int k = 0; k < n; k++) {
    http_response r;
    http_read(&c[k], &r, false);
    assert_string_equal(r.body, body);
    http_close(&c[k]);
  }
  free(c);
  return MS(uv_hrtime() - t0);
}
