/* What iobound asks of the system: thread numbers, CPU time, and how
 * many more threads it may create. */
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"

uint32_t iob__thread_number(void) {
  static atomic_uint last;
  static _Thread_local uint32_t mine;
  /* After 2^32 threads the count wraps; 0 is the loop's, so skip it. */
  while (mine == 0)
    mine = atomic_fetch_add(&last, 1) + 1;
  return mine;
}

void iob__block_signals(void) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
}

uint64_t iob__cpu_ns(void) {
  uv_rusage_t ru;
  if (uv_getrusage(&ru) != 0)
    return 0;
  uint64_t us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  return us * 1000;
}

/* ---- how many threads the system allows -------------------------------- */

static uint64_t read_number(const char *path, int field) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return UINT64_MAX;
  unsigned long long v = UINT64_MAX;
  /* /proc/loadavg's fourth field is "running/total". */
  int ok = field == 0 ? fscanf(f, "%llu", &v)
                      : fscanf(f, "%*s %*s %*s %*u/%llu", &v);
  fclose(f);
  return ok == 1 ? v : UINT64_MAX;
}

/* An estimate that errs low: a count it allows should not then fail. */
uint32_t iob_threads_available(void) {
  uint64_t n = UINT64_MAX;
  uint64_t max = read_number("/proc/sys/kernel/threads-max", 0);
  uint64_t used = read_number("/proc/loadavg", 1); /* the whole system's */
  if (max != UINT64_MAX && used != UINT64_MAX)
    n = max > used ? max - used : 0;
  /* Each thread's stack is a mapping, and its guard page another. */
  uint64_t maps = read_number("/proc/sys/vm/max_map_count", 0);
  if (maps != UINT64_MAX && maps / 2 < n)
    n = maps / 2;
  /* RLIMIT_NPROC counts the user's threads, which are some of the
   * system's: less all of those, for want of the user's own count. The
   * kernel does not hold root to it. */
  struct rlimit rl;
  if (getuid() != 0 && getrlimit(RLIMIT_NPROC, &rl) == 0 &&
      rl.rlim_cur != RLIM_INFINITY) {
    uint64_t left = rl.rlim_cur;
    if (used != UINT64_MAX)
      left = left > used ? left - used : 0;
    if (left < n)
      n = left;
  }
  return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}
