/* A request over TCP to a slow service ("wait MS\n", answered "done
 * MS\n"), one connection each: the kind iob_kind_tcp.
 *
 * On the loop styles an operation is a uv_tcp_t in its state: connect,
 * write the request, read the answer, close. It settles once the handle
 * is closed, so libuv is done with the state before the slot is reused.
 * On the thread styles the same exchange with POSIX calls that wait with
 * poll(), a slice at a time, so that a timeout or a cancel ends it even
 * when the peer never answers. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iobound.h"
#include "target.h"

struct iob_tcp_target {
  iob__users users; /* first: see target.h */
  struct sockaddr_storage addr;
  char name[64]; /* as given, for messages */
};

typedef struct tcp_op {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  iob_op *op;
  int status;  /* what it ends with, once closed */
  bool ending; /* closing: what comes now changes nothing */
  size_t got;
  char request[24];
  char reply[32];
} tcp_op;

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
  return uv_ip4_addr(host, port, (struct sockaddr_in *)addr) == 0 ? 0
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
  snprintf(t->name, sizeof(t->name), "%s", address);
  *target = t;
  return 0;
}

int iob_tcp_target_destroy(iob_tcp_target *target) {
  return iob__target_destroy(target, free);
}

static int tcp_check(const iob_config *config) {
  return config->target != NULL ? 0 : IOB_EINVAL;
}

/* The request line for a wait of `ms`; returns its length. */
static size_t format_request(uint32_t ms, char *out, size_t size) {
  int n = snprintf(out, size, "wait %lu\n", (unsigned long)ms);
  return n > 0 ? (size_t)n : 0;
}

/* 0 if `reply` holds the line "done MS" for the delay asked for;
 * UV_EIO for the service's "error ..." (it could not serve the request:
 * worth another try), UV_EPROTO for anything else. */
static int check_reply(const char *reply, size_t len, uint32_t ms) {
  if (len >= 6 && memcmp(reply, "error ", 6) == 0)
    return UV_EIO;
  char want[24];
  int n = snprintf(want, sizeof(want), "done %lu\n", (unsigned long)ms);
  return n > 0 && len == (size_t)n && memcmp(reply, want, len) == 0 ? 0
                                                                    : UV_EPROTO;
}

/* Say what went wrong with the exchange, in the operation's message. */
static void explain(iob_op *op, int status, const char *step) {
  const iob_tcp_target *t = op->target;
  char text[160];
  if (status == UV_EPROTO)
    snprintf(text, sizeof(text), "%s %s: not the answer \"done %lu\"", step,
             t->name, (unsigned long)op->duration_ms);
  else if (status == UV_EIO)
    snprintf(text, sizeof(text), "%s %s: the service answered with an error",
             step, t->name);
  else if (status == UV_EOF)
    snprintf(text, sizeof(text), "%s %s: the service hung up", step, t->name);
  else
    snprintf(text, sizeof(text), "%s %s: %s", step, t->name,
             uv_strerror(status));
  iob_op_set_message(op, text);
}

static void finish(iob_op *op, int status, const char *step) {
  if (status == 0)
    iob_op_set_value(op, op->duration_ms);
  else if (status != IOB_ECANCELED)
    explain(op, status, step);
}

/* ---- on the loop: libuv TCP ---------------------------------------------- */

static void on_closed(uv_handle_t *handle) {
  tcp_op *t = handle->data;
  iob_op_done(t->op, t->status); /* may end the batch */
}

/* End the exchange (once): close the connection, then settle. Pending
 * requests end with UV_ECANCELED and find it ending. */
static void end(tcp_op *t, int status, const char *step) {
  if (t->ending)
    return;
  t->ending = true;
  t->status = status;
  finish(t->op, status, step);
  uv_close((uv_handle_t *)&t->tcp, on_closed);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  tcp_op *t = handle->data;
  *buf =
      uv_buf_init(t->reply + t->got, (unsigned int)(sizeof(t->reply) - t->got));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  tcp_op *t = stream->data;
  if (nread < 0) { /* UV_EOF: hung up without answering; UV_ENOBUFS: too long */
    end(t, nread == UV_ENOBUFS ? UV_EPROTO : (int)nread, "reading from");
    return;
  }
  char *nl = memchr(t->reply + t->got, '\n', (size_t)nread);
  t->got += (size_t)nread;
  if (nl != NULL)
    end(t,
        check_reply(t->reply, (size_t)(nl + 1 - t->reply), t->op->duration_ms),
        "reading from");
}

static void on_written(uv_write_t *req, int status) {
  tcp_op *t = req->data;
  if (status < 0)
    end(t, status, "sending to");
}

static void on_connect(uv_connect_t *req, int status) {
  tcp_op *t = req->data;
  if (t->ending)
    return; /* stopped: the close ended the connect */
  if (status < 0) {
    end(t, status, "connecting to");
    return;
  }
  size_t len =
      format_request(t->op->duration_ms, t->request, sizeof(t->request));
  uv_buf_t buf = uv_buf_init(t->request, (unsigned int)len);
  int err = uv_write(&t->write, (uv_stream_t *)&t->tcp, &buf, 1, on_written);
  if (err != 0)
    end(t, err, "sending to");
}

static int tcp_start(iob_op *op) {
  const iob_tcp_target *target = op->target;
  tcp_op *t = op->state;
  int err = uv_tcp_init(iob_batch_loop(op->batch), &t->tcp);
  if (err != 0)
    return err;
  t->op = op;
  t->tcp.data = t->connect.data = t->write.data = t;
  /* The socket is made here: out of descriptors, this fails at once. */
  err = uv_tcp_connect(&t->connect, &t->tcp,
                       (const struct sockaddr *)&target->addr, on_connect);
  /* Reading from now on: the socket is registered with epoll once, for
   * the connect and the answer, and the write in on_connect() goes out at
   * once. Asked after the connect, libuv would register it twice (3
   * epoll_ctl calls a request instead of 2, and a third to remove it). */
  if (err == 0)
    err = uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read);
  if (err != 0)
    end(t, err, "connecting to");
  return 0;
}

static void tcp_stop(iob_op *op) { end(op->state, IOB_ECANCELED, NULL); }

/* ---- on a thread: a socket that waits with poll() ------------------------ */

static int sys_error(void) { return uv_translate_sys_error(errno); }

/* A cancel is noticed within this many ms; a timeout, on time. */
#define SLICE_MS 250

/* Wait until fd is ready for `events`: until the timeout at the latest,
 * and a slice at a time, so that a cancel is noticed too, however silent
 * the peer. A blocking call would wait for ever. 0, or why it stops. */
static int wait_for(int fd, short events, iob_op *op) {
  for (;;) {
    int stop = iob_op_stopping(op);
    if (stop != 0)
      return stop;
    int64_t left = iob_op_remaining_ms(op);
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, left >= 0 && left < SLICE_MS ? (int)left : SLICE_MS);
    if (n > 0)
      return 0; /* ready, or in error: the next call says which */
    if (n < 0 && errno != EINTR)
      return sys_error();
  }
}

static int connect_to(int fd, const struct sockaddr_storage *addr, iob_op *op) {
  socklen_t len = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
  if (connect(fd, (const struct sockaddr *)addr, len) == 0)
    return 0;
  if (errno != EINPROGRESS)
    return sys_error();
  int err = wait_for(fd, POLLOUT, op);
  if (err != 0)
    return err;
  int so_error = 0;
  socklen_t so_len = sizeof(so_error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len) != 0)
    return sys_error();
  return so_error != 0 ? uv_translate_sys_error(so_error) : 0;
}

static int send_all(int fd, const char *data, size_t len, iob_op *op) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      int err = wait_for(fd, POLLOUT, op);
      if (err != 0)
        return err;
      continue;
    }
    if (n < 0)
      return sys_error();
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Read until a newline; its length, or a negative code. */
static int read_line(int fd, char *buf, size_t size, size_t *len, iob_op *op) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = recv(fd, buf + got, size - got, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      int err = wait_for(fd, POLLIN, op);
      if (err != 0)
        return err;
      continue;
    }
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

static int tcp_run(iob_op *op) {
  const iob_tcp_target *t = op->target;
  int fd =
      socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    int err = sys_error();
    finish(op, err, "connecting to");
    return err;
  }
  char request[24], reply[32];
  size_t len = format_request(op->duration_ms, request, sizeof(request));
  const char *step = "connecting to";
  int err = connect_to(fd, &t->addr, op);
  if (err == 0 && (step = "sending to"))
    err = send_all(fd, request, len, op);
  if (err == 0 && (step = "reading from"))
    err = read_line(fd, reply, sizeof(reply), &len, op);
  if (err == 0)
    err = check_reply(reply, len, op->duration_ms);
  close(fd);
  finish(op, err, step);
  return err;
}

const iob_kind iob_kind_tcp = {
    .name = "tcp",
    .op_size = sizeof(tcp_op),
    .check = tcp_check,
    .start = tcp_start,
    .run = tcp_run,
    .stop = tcp_stop,
    .open = iob__target_open,
    .close = iob__target_close,
};
