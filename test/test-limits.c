/* A system that refuses threads for real, not through a seam: a child
 * process held to a low RLIMIT_NPROC (as the user nobody, when the test
 * runs as root, whom the kernel does not hold to it). The pool style must
 * refuse its first batch instead of letting libuv abort the process; the
 * threads style must end with IOB_EAGAIN, or run on with what it got. */
#define _DEFAULT_SOURCE /* setgroups() */
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define NPROC 16

/* In the child: become a user the limit holds, then set it. 0 if done. */
static int hold_to_a_low_limit(void) {
  if (getuid() == 0) {
    struct passwd *nobody = getpwnam("nobody");
    if (nobody == NULL || setgroups(0, NULL) != 0 ||
        setgid(nobody->pw_gid) != 0 || setuid(nobody->pw_uid) != 0)
      return -1;
  }
  struct rlimit rl = {NPROC, NPROC};
  return setrlimit(RLIMIT_NPROC, &rl);
}

/* What the child checks; its exit status says which check failed. */
static int child(void) {
  if (hold_to_a_low_limit() != 0)
    return 77;
  if (iob_threads_available() > NPROC)
    return 2; /* the estimate must err low */
  /* The pool, first used here, would start 64 threads: refused. */
  if (iob_pool_request_size(64) != 0)
    return 3;
  iob_config c = config_of(&iob_style_pool, 4, 1);
  iob_batch *b;
  if (iob_run(&b, &c) != IOB_EAGAIN || b != NULL)
    return 4;
  /* A thread per operation: refused part way, the batch says so. Each
   * waits long enough for more than NPROC to be alive at once however slow
   * creating them is (5 ms a thread under ThreadSanitizer)... */
  c = config_of(&iob_style_threads, 64, 400);
  if (iob_run(&b, &c) != 0)
    return 5;
  iob_report r;
  iob_batch_report(b, &r);
  int refused = r.status == IOB_EAGAIN && r.failed > 0;
  iob_batch_free(b);
  if (!refused)
    return 6;
  /* ...or runs on with the threads it got. */
  iob_threads_options o;
  iob_threads_options_init(&o);
  o.adapt = 1;
  c.style_options = &o;
  if (iob_run(&b, &c) != 0)
    return 7;
  iob_batch_report(b, &r);
  int adapted = r.status == 0 && r.failed == 0 && r.threads < 64;
  iob_batch_free(b);
  return adapted ? 0 : 8;
}

static void a_low_thread_limit_is_refused_not_aborted(void **state) {
  fflush(NULL);
  pid_t pid = fork();
  assert_cmp(pid, >=, 0);
  if (pid == 0)
    _exit(child());
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status))
    fail_msg("the child died of signal %d (%s)", WTERMSIG(status),
             WTERMSIG(status) == SIGABRT ? "libuv aborted" : "?");
  if (WEXITSTATUS(status) == 77)
    skip();
  if (WEXITSTATUS(status) != 0)
    fail_msg("the child's check %d failed", WEXITSTATUS(status));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_low_thread_limit_is_refused_not_aborted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
