/* Built-in operations that do real I/O: a request to a slow service over
 * TCP ("wait MS\n", answered "done MS\n"), one connection each.
 *
 * On the loop styles an operation is a uv_tcp_t of its own: connect, write
 * the request, read the answer, close. Its state is allocated when it
 * starts and freed by the close callback, once libuv is done with it.
 * On the thread styles it is the same exchange with blocking POSIX calls. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iobound.h"

typedef struct tcp_op tcp_op;

struct iob_tcp_target {
  struct sockaddr_storage addr;
  uint32_t duration_ms;
  const uint32_t *durations_ms;
  uint32_t count;
  tcp_op **ops; /* operations in flight on the loop, by index */
};

struct tcp_op {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  iob_batch *batch;
  iob_tcp_target *target;
  uint32_t index;
  uint32_t ms;
  bool settled;
  size_t got;
  char request[24];
  char reply[32];
};

/* ---- the target ---------------------------------------------------------- */

int iob_tcp_address_parse(const char *text, struct sockaddr_storage *addr) {
  if (text == NULL || addr == NULL)
    return IOB_EINVAL;
  const char *colon = strrchr(text, ':');
  if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) > 5)
    return IOB_EINVAL;
  int port = 0;
  for (const char *p = colon + 1; *p != '\0'; p++) {
    if (*p < '0' || *p > '9')
      return IOB_EINVAL;
    port = port * 10 + (*p - '0');
  }
  if (port > 65535)
    return IOB_EINVAL;

  char host[64];
  size_t len = (size_t)(colon - text);
  bool bracketed = len >= 2 && text[0] == '[' && text[len - 1] == ']';
  if (bracketed) {
    text++;
    len -= 2;
  }
  if (len == 0 || len >= sizeof(host))
    return IOB_EINVAL;
  memcpy(host, text, len);
  host[len] = '\0';
  memset(addr, 0, sizeof(*addr));
  if (bracketed)
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr) == 0
               ? 0
               : IOB_EINVAL;
  if (strcmp(host, "localhost") == 0)
    strcpy(host, "127.0.0.1");
  /* uv_ip4_addr accepts a prefix ("1.2.3.4x"); insist on the whole. */
  if (strspn(host, "0123456789.") != strlen(host))
    return IOB_EINVAL;
  return uv_ip4_addr(host, port, (struct sockaddr_in *)addr) == 0
             ? 0
             : IOB_EINVAL;
}

int iob_tcp_target_create(iob_tcp_target **target, const char *address) {
  if (target == NULL)
    return IOB_EINVAL;
  *target = NULL;
  struct sockaddr_storage addr;
  int err = iob_tcp_address_parse(address, &addr);
  if (err != 0)
    return err;
  iob_tcp_target *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return IOB_ENOMEM;
  t->addr = addr;
  *target = t;
  return 0;
}

void iob_tcp_target_destroy(iob_tcp_target *target) {
  if (target == NULL)
    return;
  free(target->ops);
  free(target);
}

static uint32_t delay_of(const iob_tcp_target *t, uint32_t index) {
  return t->durations_ms ? t->durations_ms[index] : t->duration_ms;
}

/* The request line for operation `index`; returns its length. */
static size_t format_request(const iob_tcp_target *t, uint32_t index,
                             char *out, size_t size) {
  int n = snprintf(out, size, "wait %lu\n", (unsigned long)delay_of(t, index));
  return n > 0 ? (size_t)n : 0;
}

/* 0 if `reply` holds the line "done MS" for the delay asked for. */
static int check_reply(const char *reply, size_t len, uint32_t ms) {
  char want[24];
  int n = snprintf(want, sizeof(want), "done %lu\n", (unsigned long)ms);
  return n > 0 && len == (size_t)n && memcmp(reply, want, len) == 0
             ? 0
             : UV_EPROTO;
}

/* ---- on the loop: libuv TCP ---------------------------------------------- */

static void op_closed(uv_handle_t *handle) { free(handle->data); }

/* Settle the operation (once) and close its connection (once). Pending
 * requests then end with UV_ECANCELED and find the operation settled. */
static void op_end(tcp_op *op, int status) {
  if (!uv_is_closing((uv_handle_t *)&op->tcp))
    uv_close((uv_handle_t *)&op->tcp, op_closed);
  if (op->settled)
    return;
  op->settled = true;
  op->target->ops[op->index] = NULL;
  iob_op_done(op->batch, op->index, status); /* may end the batch */
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  tcp_op *op = handle->data;
  *buf = uv_buf_init(op->reply + op->got,
                     (unsigned int)(sizeof(op->reply) - op->got));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  tcp_op *op = stream->data;
  if (op->settled)
    return;
  if (nread < 0) { /* UV_EOF: hung up without answering; UV_ENOBUFS: too long */
    op_end(op, nread == UV_ENOBUFS ? UV_EPROTO : (int)nread);
    return;
  }
  char *nl = memchr(op->reply + op->got, '\n', (size_t)nread);
  op->got += (size_t)nread;
  if (nl != NULL)
    op_end(op, check_reply(op->reply, (size_t)(nl + 1 - op->reply), op->ms));
}

static void on_written(uv_write_t *req, int status) {
  tcp_op *op = req->data;
  if (status < 0 && !op->settled)
    op_end(op, status);
}

static void on_connect(uv_connect_t *req, int status) {
  tcp_op *op = req->data;
  if (op->settled)
    return; /* cancelled: the close ended the connect */
  if (status < 0) {
    op_end(op, status);
    return;
  }
  size_t len = format_request(op->target, op->index, op->request,
                              sizeof(op->request));
  uv_buf_t buf = uv_buf_init(op->request, (unsigned int)len);
  int err = uv_write(&op->write, (uv_stream_t *)&op->tcp, &buf, 1, on_written);
  if (err == 0)
    err = uv_read_start((uv_stream_t *)&op->tcp, on_alloc, on_read);
  if (err != 0)
    op_end(op, err);
}

static int tcp_start(iob_batch *batch, uint32_t index) {
  iob_tcp_target *t = iob_batch_op_data(batch);
  if (index >= t->count)
    return IOB_EINVAL;
  tcp_op *op = calloc(1, sizeof(*op));
  if (op == NULL)
    return IOB_ENOMEM;
  int err = uv_tcp_init(iob_batch_loop(batch), &op->tcp);
  if (err != 0) {
    free(op);
    return err;
  }
  op->batch = batch;
  op->target = t;
  op->index = index;
  op->ms = delay_of(t, index);
  op->tcp.data = op->connect.data = op->write.data = op;
  /* The socket is made here: out of descriptors, this fails at once. */
  err = uv_tcp_connect(&op->connect, &op->tcp,
                       (const struct sockaddr *)&t->addr, on_connect);
  if (err != 0) {
    op->settled = true; /* the batch settles it with our return value */
    uv_close((uv_handle_t *)&op->tcp, op_closed);
    return err;
  }
  t->ops[index] = op;
  return 0;
}

static void tcp_cancel(iob_batch *batch, uint32_t index) {
  iob_tcp_target *t = iob_batch_op_data(batch);
  if (index < t->count && t->ops[index] != NULL)
    op_end(t->ops[index], IOB_ECANCELED);
}

/* ---- on a thread: blocking sockets --------------------------------------- */

static int sys_error(void) { return uv_translate_sys_error(errno); }

static int send_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sys_error();
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Read until a newline; its length, or a negative code. */
static int read_line(int fd, char *buf, size_t size, size_t *len) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = recv(fd, buf + got, size - got, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sys_error();
    if (n == 0)
      return UV_EOF;
    char *nl = memchr(buf + got, '\n', (size_t)n);
    got += (size_t)n;
    if (nl != NULL) {
      *len = (size_t)(nl + 1 - buf);
      return 0;
    }
  }
  return UV_EPROTO;
}

static int tcp_blocking(void *data, uint32_t index) {
  const iob_tcp_target *t = data;
  if (index >= t->count)
    return IOB_EINVAL;
  int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return sys_error();
  socklen_t alen = t->addr.ss_family == AF_INET6
                       ? sizeof(struct sockaddr_in6)
                       : sizeof(struct sockaddr_in);
  char request[24], reply[32];
  size_t len = format_request(t, index, request, sizeof(request));
  int err = 0;
  if (connect(fd, (const struct sockaddr *)&t->addr, alen) != 0)
    err = sys_error();
  if (err == 0)
    err = send_all(fd, request, len);
  if (err == 0)
    err = read_line(fd, reply, sizeof(reply), &len);
  if (err == 0)
    err = check_reply(reply, len, delay_of(t, index));
  close(fd);
  return err;
}

/* ---- the configuration --------------------------------------------------- */

int iob_tcp_use(iob_config *config, iob_tcp_target *target) {
  if (config == NULL || target == NULL || config->count == 0)
    return IOB_EINVAL;
  if (config->durations_ms == NULL &&
      config->duration_ms > IOB_DURATION_MAX_MS)
    return IOB_ERANGE;
  if (config->count > IOB_COUNT_MAX)
    return IOB_E2BIG;
  tcp_op **ops = calloc(config->count, sizeof(*ops));
  if (ops == NULL)
    return IOB_ENOMEM;
  free(target->ops);
  target->ops = ops;
  target->count = config->count;
  target->duration_ms = (uint32_t)config->duration_ms;
  target->durations_ms = config->durations_ms;
  config->work = IOB_WORK_USER;
  config->start = tcp_start;
  config->blocking = tcp_blocking;
  config->cancel = tcp_cancel;
  config->op_data = target;
  return 0;
}
