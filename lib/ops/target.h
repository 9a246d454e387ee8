/* What every built-in target (iob_tcp_target, iob_file_target,
 * iob_http_target, iob_pg_target) begins with: the count of its users,
 * the batches running with it (an open batch counts once for each target
 * its operations name). Destroying a target in use is refused
 * with IOB_EBUSY, the rule limits, groups and worker pools follow, where
 * it was a use after free. A kind counts a batch in its open() and lets
 * it go in its close(): under iob_style_loops, once per loop, balanced
 * all the same. Header only: the kinds in libraries of their own
 * (iobound-http, iobound-pg) use it too. */
#ifndef IOB_OPS_TARGET_H
#define IOB_OPS_TARGET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "iobound.h"

typedef struct iob__users {
  atomic_uint n;
} iob__users;

/* The count at the start of a target (const to the batches that use
 * it; the count is the one part that changes). */
static inline iob__users *iob__users_of(const void *target) {
  return (iob__users *)(uintptr_t)target;
}

static inline void iob__target_hold(const void *target) {
  atomic_fetch_add_explicit(&iob__users_of(target)->n, 1, memory_order_relaxed);
}

static inline void iob__target_release(const void *target) {
  atomic_fetch_sub_explicit(&iob__users_of(target)->n, 1, memory_order_release);
}

static inline bool iob__target_in_use(iob__users *u) {
  return atomic_load_explicit(&u->n, memory_order_acquire) > 0;
}

/* What every iob_*_target_destroy() does: 0 for NULL; IOB_EBUSY, freeing
 * nothing, while a batch uses the target; else free it with free_fn. */
static inline int iob__target_destroy(void *target,
                                      void (*free_fn)(void *target)) {
  if (target == NULL)
    return 0;
  if (iob__target_in_use((iob__users *)target))
    return IOB_EBUSY;
  free_fn(target);
  return 0;
}

/* open() and close() for a kind that shares nothing else per batch. */
static inline int iob__target_open(iob_batch *b, const void *target,
                                   void *shared) {
  (void)b;
  (void)shared;
  iob__target_hold(target);
  return 0;
}

static inline void iob__target_close(iob_batch *b, const void *target,
                                     void *shared) {
  (void)b;
  (void)shared;
  iob__target_release(target);
}

#endif /* IOB_OPS_TARGET_H */
