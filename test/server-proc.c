/* A server program run as a child process for a test (server-proc.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "server-proc.h"

uv_loop_t the_loop;
static uv_timer_t tick;

static void on_tick(uv_timer_t *t) {}

void open_loop(void) {
  assert_code(uv_loop_init(&the_loop), 0);
  assert_code(uv_timer_init(&the_loop, &tick), 0);
  assert_code(uv_timer_start(&tick, on_tick, 5, 5), 0);
}

void close_loop(void) {
  uv_close((uv_handle_t *)&tick, NULL);
  assert_int_equal(uv_run(&the_loop, UV_RUN_DEFAULT), 0);
  assert_code(uv_loop_close(&the_loop), 0);
}

void pump_for(uint64_t ms) { WAIT_UNTIL(false, ms); }

/* ---- what the teardown undoes -------------------------------------------- */

#define CHILDREN_MAX 64

static int pids[CHILDREN_MAX];          /* started, not reaped */
static char *buffers[2 * CHILDREN_MAX]; /* made, not freed */

static void note(int *slots, size_t n, int old, int new) {
  for (size_t k = 0; k < n; k++)
    if (slots[k] == old) {
      slots[k] = new;
      return;
    }
}

static char *new_buffer(void) {
  for (size_t k = 0; k < 2 * CHILDREN_MAX; k++)
    if (buffers[k] == NULL) {
      /* Pages never written cost nothing: only what the child says. */
      buffers[k] = malloc(SERVER_OUTPUT_MAX);
      assert_non_null(buffers[k]);
      buffers[k][0] = '\0';
      return buffers[k];
    }
  fail_msg("more than %d servers in one test", CHILDREN_MAX);
  return NULL;
}

int server_proc_teardown(void **state) {
  for (size_t k = 0; k < CHILDREN_MAX; k++) {
    if (pids[k] != 0)
      kill(pids[k], SIGKILL);
    pids[k] = 0;
  }
  for (size_t k = 0; k < 2 * CHILDREN_MAX; k++) {
    free(buffers[k]);
    buffers[k] = NULL;
  }
  return 0;
}

/* ---- the child ------------------------------------------------------------ */

static void on_output_closed(uv_handle_t *h) {
  ((output *)h->data)->closed = true;
}

static void on_output_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  static char scratch[64 * 1024]; /* read here, kept as far as it fits */
  *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void on_output(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  output *o = s->data;
  if (nread < 0) {
    uv_close((uv_handle_t *)s, on_output_closed);
    return;
  }
  size_t room = SERVER_OUTPUT_MAX - 1 - o->len;
  size_t n = (size_t)nread < room ? (size_t)nread : room;
  memcpy(o->text + o->len, buf->base, n);
  o->len += n;
  o->text[o->len] = '\0';
}

static void on_proc_closed(uv_handle_t *h) {
  ((server_proc *)h->data)->closed = true;
}

static void on_exit_cb(uv_process_t *h, int64_t status, int term_signal) {
  server_proc *p = h->data;
  note(pids, CHILDREN_MAX, p->handle.pid, 0);
  p->exited = true;
  p->status = status;
  p->term_signal = term_signal;
  uv_close((uv_handle_t *)h, on_proc_closed);
}

bool server_proc_finished(const server_proc *p) {
  return p->closed && p->out.closed && p->err.closed;
}

extern char **environ;

void server_proc_spawn(server_proc *p, const char *path,
                       const char *const *args, const char *env_extra) {
  char *argv[16] = {(char *)path};
  for (int k = 0; args[k] != NULL && k < 14; k++)
    argv[k + 1] = (char *)args[k];
  size_t nenv = 0;
  while (environ[nenv] != NULL)
    nenv++;
  char **env = calloc(nenv + 3, sizeof(*env));
  assert_non_null(env);
  char asan[512] = "";
  size_t n = 0;
  for (size_t k = 0; k < nenv; k++)
    if (strncmp(environ[k], "ASAN_OPTIONS=", 13) == 0)
      snprintf(asan, sizeof(asan), "%s:", environ[k]);
    else
      env[n++] = environ[k];
#if defined(__SANITIZE_ADDRESS__)
  size_t len = strlen(asan);
  snprintf(asan + len, sizeof(asan) - len, "%squarantine_size_mb=4",
           len == 0 ? "ASAN_OPTIONS=" : "");
#endif
  if (asan[0] != '\0')
    env[n++] = asan;
  env[n] = (char *)env_extra;
  memset(p, 0, sizeof(*p));
  p->out.text = new_buffer();
  p->err.text = new_buffer();
  p->handle.data = p;
  p->out.pipe.data = &p->out;
  p->err.pipe.data = &p->err;
  assert_code(uv_pipe_init(&the_loop, &p->out.pipe, 0), 0);
  assert_code(uv_pipe_init(&the_loop, &p->err.pipe, 0), 0);
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
       .data.stream = (uv_stream_t *)&p->out.pipe},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
       .data.stream = (uv_stream_t *)&p->err.pipe},
  };
  uv_process_options_t options = {.file = path,
                                  .args = argv,
                                  .env = env,
                                  .exit_cb = on_exit_cb,
                                  .stdio = stdio,
                                  .stdio_count = 3};
  assert_code(uv_spawn(&the_loop, &p->handle, &options), 0);
  free(env);
  note(pids, CHILDREN_MAX, 0, p->handle.pid);
  uv_read_start((uv_stream_t *)&p->out.pipe, on_output_alloc, on_output);
  uv_read_start((uv_stream_t *)&p->err.pipe, on_output_alloc, on_output);
}

void server_proc_read_log(server_proc *p, bool reading) {
  uv_stream_t *s = (uv_stream_t *)&p->out.pipe;
  if (reading)
    assert_code(uv_read_start(s, on_output_alloc, on_output), 0);
  else
    assert_code(uv_read_stop(s), 0);
}

void server_proc_listening(server_proc *p) {
  const char *at;
  WAIT_UNTIL((at = strstr(p->out.text, "listening on 127.0.0.1:")) &&
                 strchr(at, '\n'),
             5000);
  assert_non_null(at);
  p->port = atoi(at + strlen("listening on 127.0.0.1:"));
  assert_cmp(p->port, >, 0);
  assert_cmp(p->port, <, 65536);
}

void server_proc_wait_exit(server_proc *p, uint64_t ms) {
  WAIT_UNTIL(server_proc_finished(p), ms);
  assert_true(server_proc_finished(p));
}

void server_proc_stop(server_proc *p) {
  assert_code(uv_process_kill(&p->handle, SIGTERM), 0);
  server_proc_wait_exit(p, 10000);
  if (p->status != 0 || p->term_signal != 0)
    print_message("server stderr:\n%s\n", p->err.text);
  assert_int_equal(p->term_signal, 0);
  assert_int_equal(p->status, 0);
  assert_non_null(strstr(p->out.text, "stopping on SIGTERM\n"));
  assert_non_null(strstr(p->out.text, "\nstopped\n"));
  assert_null(strstr(p->out.text, "did not close"));
}

int count_in(const char *text, const char *what) {
  int n = 0;
  for (const char *at = text; (at = strstr(at, what)) != NULL; at++)
    n++;
  return n;
}

void split_lines(char *partial, size_t size, size_t *len, const char *data,
                 size_t n, void (*take)(void *arg, const char *line),
                 void *arg) {
  for (size_t i = 0; i < n; i++) {
    if (data[i] == '\n') {
      partial[*len] = '\0';
      take(arg, partial);
      *len = 0;
    } else if (*len < size - 1) {
      partial[(*len)++] = data[i];
    }
  }
}

double json_number(const char *text, const char *key) {
  char pattern[64];
  snprintf(pattern, sizeof(pattern), "\"%s\":", key);
  const char *at = strstr(text, pattern);
  if (at == NULL)
    fail_msg("no \"%s\" in %s", key, text);
  return strtod(at + strlen(pattern), NULL);
}
