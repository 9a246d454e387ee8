/* The work an operation does when it runs on a thread of its own. */
#include <stdatomic.h>

#include "internal.h"

uint32_t iob__thread_number(void) {
  static atomic_uint last;
  static _Thread_local uint32_t mine;
  if (mine == 0)
    mine = atomic_fetch_add(&last, 1) + 1;
  return mine;
}

int iob__work_blocking(iob_batch *b, uint32_t i) {
  /* A simulated blocking I/O call: the thread can do nothing else. */
  uv_sleep((unsigned int)iob__duration_ms(b, i));
  return 0;
}
