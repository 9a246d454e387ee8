/* A server program run as a child process for a test (iobound-server,
 * or a shell that execs it), and the loop of the test's own on which its
 * clients talk to it: what test-server.c and test-server-abuse.c share.
 *
 * The child's stdout and stderr are read whole into buffers that never
 * move (up to SERVER_OUTPUT_MAX, after which they keep the start), so a
 * test may hold on to p->out.text. server_proc_teardown(), the cmocka
 * teardown of every test that starts one, frees every buffer made and
 * kills any child not reaped, so that a failed assertion, which jumps
 * out of the test, leaks nothing and leaves nothing running. */
#ifndef IOB_TEST_SERVER_PROC_H
#define IOB_TEST_SERVER_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- the test's loop: a timer wakes it every 5 ms, so that waits can
 * check the clock ---------------------------------------------------------- */

extern uv_loop_t the_loop;

void open_loop(void);
/* Close the timer, run the loop to the end: uv_loop_close() must be 0. */
void close_loop(void);

/* Run the loop until `cond` holds or `ms` have passed. */
#define WAIT_UNTIL(cond, ms)                                                   \
  for (uint64_t t0_ = uv_hrtime();                                             \
       !(cond) && uv_hrtime() - t0_ < (uint64_t)(ms)*1000000;)                 \
  uv_run(&the_loop, UV_RUN_ONCE)

void pump_for(uint64_t ms);

/* ---- the child ------------------------------------------------------------ */

#define SERVER_OUTPUT_MAX (4 * 1024 * 1024)

typedef struct output {
  uv_pipe_t pipe;
  char *text; /* NUL-terminated; never moves */
  size_t len;
  bool closed;
} output;

typedef struct server_proc {
  uv_process_t handle;
  output out, err;
  bool exited, closed;
  int64_t status;
  int term_signal;
  int port; /* from its "listening on 127.0.0.1:PORT" line */
} server_proc;

/* Start `path` with `args` (NULL-terminated, after the program) and this
 * process's environment, plus `env_extra` (NULL or one "NAME=VALUE").
 * Under AddressSanitizer the child's quarantine of freed memory, which
 * its RSS would show, is made small. */
void server_proc_spawn(server_proc *p, const char *path,
                       const char *const *args, const char *env_extra);

/* Wait for the "listening on" line and read the port from it. */
void server_proc_listening(server_proc *p);

/* Stop reading the child's stdout (so that its pipe fills up), or read
 * it again. */
void server_proc_read_log(server_proc *p, bool reading);

/* The child has exited, and its handle and pipes are closed. */
bool server_proc_finished(const server_proc *p);

void server_proc_wait_exit(server_proc *p, uint64_t ms);

/* SIGTERM: the server must stop with its loop closed, and exit 0. */
void server_proc_stop(server_proc *p);

/* The teardown: kill what was not reaped, free every output buffer. */
int server_proc_teardown(void **state);

/* ---- its answers ---------------------------------------------------------- */

/* The number after the first "KEY": in `text` (a line of JSON); fails the
 * test if there is none. */
double json_number(const char *text, const char *key);

/* Cut `n` bytes that arrived into lines, kept in partial[0..*len) (size
 * bytes) between calls: each '\n' ends one, given to take() without it;
 * a line longer than fits is cut short. */
void split_lines(char *partial, size_t size, size_t *len, const char *data,
                 size_t n, void (*take)(void *arg, const char *line),
                 void *arg);

/* How often `what` occurs in `text`. */
int count_in(const char *text, const char *what);

#endif
