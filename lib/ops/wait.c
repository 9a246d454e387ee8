/* The simulated I/O wait, the tutorial's time.sleep(): all of it is the
 * wait that IOB_KIND_WAITS gives every kind, so it has no function of its
 * own. On the loop a deadline in the batch's timer queue; on a thread a
 * sleep that blocks the thread, as a blocking call does. */
#include "iobound.h"

const iob_kind iob_kind_wait = {
    .name = "wait",
    .flags = IOB_KIND_WAITS,
};
