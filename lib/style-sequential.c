/* Sequential style: the baseline. The event-loop style's machinery with
 * never more than one operation in flight, so one starts only when the
 * one before it has ended, and the loop stays free for everything else. */
#include "internal.h"

static int sequential_start(iob_batch *b) {
  b->limit = 1;
  return iob__style_loop.start(b);
}

static void sequential_launch(iob_batch *b, uint32_t i) {
  iob__style_loop.launch(b, i);
}

static void sequential_cancel(iob_batch *b) { iob__style_loop.cancel(b); }

static void sequential_finish(iob_batch *b) { iob__style_loop.finish(b); }

static uint32_t sequential_threads(const iob_batch *b) {
  return iob__style_loop.threads(b);
}

const iob__style_ops iob__style_sequential = {
    .start = sequential_start,
    .launch = sequential_launch,
    .cancel = sequential_cancel,
    .finish = sequential_finish,
    .threads = sequential_threads,
};
