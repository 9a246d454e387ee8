/* The slow service: one libuv loop, a timer per waiting request. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
};

/* One client's connection: its socket and the timer of its wait. */
typedef struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t write;
  int handles; /* open handles: freed when none is left */
  bool asked;  /* the request line has arrived */
  size_t len;
  char line[64];
  char reply[32];
} conn;

static void conn_closed(uv_handle_t *handle) {
  conn *c = handle->data;
  if (--c->handles == 0)
    free(c);
}

static void conn_close(conn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
  if (!uv_is_closing((uv_handle_t *)&c->timer))
    uv_close((uv_handle_t *)&c->timer, conn_closed);
}

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

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  conn *c = handle->data;
  /* Once asked, further bytes only tell us whether the client hung up. */
  static char sink[64];
  if (c->asked)
    *buf = uv_buf_init(sink, sizeof(sink));
  else
    *buf =
        uv_buf_init(c->line + c->len, (unsigned int)(sizeof(c->line) - c->len));
}

/* The request line is in (c->len bytes): answer it, or start its wait. */
static void take_request(conn *c) {
  c->asked = true;
  uint64_t ms;
  if (!parse_request(c, &ms)) {
    reply(c, "error expected: wait MS\n");
    return;
  }
  uv_update_time(c->timer.loop); /* the timer counts from the loop's clock */
  uv_timer_start(&c->timer, on_waited, ms, 0);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn *c = stream->data;
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

static void on_connection(uv_stream_t *listener, int status) {
  if (status != 0)
    return; /* e.g. UV_EMFILE: libuv has already refused the client */
  conn *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return;
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
    if (getppid() == parent && slow_server_open(&s, ip, 0) == 0)
      got = slow_server_port(s);
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
