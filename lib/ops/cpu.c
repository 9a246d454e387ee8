/* CPU-bound work: compute for the operation's duration, counted in the
 * calling thread's own CPU time, a fixed amount of work: threads that
 * share a core take longer in wall time, as real computations do. */
#include <time.h>

#include "internal.h"

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void iob__compute_ns(uint64_t ns) {
  uint64_t end = thread_cpu_ns() + ns;
  volatile uint32_t x = 1;
  while (thread_cpu_ns() < end)
    for (int k = 0; k < 1024; k++)
      x = x * 1664525u + 1013904223u;
}

static int cpu_run(iob_op *op) {
  iob__compute_ns((uint64_t)op->duration_ms * 1000000);
  return 0;
}

const iob_kind iob_kind_cpu = {
    .name = "cpu",
    .run = cpu_run,
};
