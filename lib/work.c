/* The work an operation does when it runs on a thread (a blocking wait,
 * CPU-bound spinning, or the user's blocking function), and what the
 * thread styles share. */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

uint32_t iob__thread_number(void) {
  static atomic_uint last;
  static _Thread_local uint32_t mine;
  if (mine == 0)
    mine = atomic_fetch_add(&last, 1) + 1;
  return mine;
}

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Compute for `ms` of this thread's own CPU time, a fixed amount of work:
 * threads that share a core take longer in wall time, as real
 * computations do. */
static void spin(uint64_t ms) {
  uint64_t end = thread_cpu_ns() + ms * 1000000;
  volatile uint32_t x = 1;
  while (thread_cpu_ns() < end)
    for (int k = 0; k < 4096; k++)
      x = x * 1664525u + 1013904223u;
}

int iob__work_blocking(const iob_batch *b, uint32_t i) {
  switch (b->config.work) {
  case IOB_WORK_CPU:
    spin(iob__duration_ms(b, i));
    return 0;
  case IOB_WORK_USER:
    return b->config.blocking(iob__op_data(b), i);
  default:
    /* A simulated blocking I/O call: the thread can do nothing else. */
    uv_sleep((unsigned int)iob__duration_ms(b, i));
    return 0;
  }
}

uint32_t *iob__slot_stack(uint32_t n) {
  uint32_t *stack = malloc((n ? n : 1) * sizeof(*stack));
  for (uint32_t k = 0; stack != NULL && k < n; k++)
    stack[k] = n - 1 - k;
  return stack;
}

uint64_t iob__cpu_ns(void) {
  uv_rusage_t ru;
  if (uv_getrusage(&ru) != 0)
    return 0;
  uint64_t us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  return us * 1000;
}
