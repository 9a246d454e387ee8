/* Wait, then compute: a request that waits for a database, then spends a
 * little CPU turning the rows into JSON. The wait is IOB_KIND_WAITS's (a
 * deadline on a loop, a sleep on a thread); run() computes the target's
 * cpu_us of the thread's own CPU time, as iob_kind_cpu does. */
#include "internal.h"

static int mixed_check(const iob_config *config) {
  const iob_mixed *m = config->target;
  if (m == NULL)
    return IOB_EINVAL;
  return m->cpu_us > IOB_MIXED_CPU_US_MAX ? IOB_ERANGE : 0;
}

static int mixed_run(iob_op *op) {
  const iob_mixed *m = op->target;
  iob__compute_ns((uint64_t)m->cpu_us * 1000);
  return 0;
}

const iob_kind iob_kind_mixed = {
    .name = "mixed",
    .flags = IOB_KIND_WAITS,
    .check = mixed_check,
    .run = mixed_run,
};
