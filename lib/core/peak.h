/* The most operations running at one moment, from their records. */
#ifndef IOB_PEAK_H
#define IOB_PEAK_H

#include "iobound.h"

/*
 * The most operations running at one moment, measured from the records'
 * times. Only records with finished_ns > started_ns ran: each is the
 * interval [started_ns, finished_ns), so one that ends when another
 * starts does not overlap it. If some record took no time at all, the
 * result is at least 1; with n == 0 it is 0.
 *
 * Exact in every case. One pass when the intervals all overlap. Else a
 * sweep in index order, which every style keeps close to start order:
 * O(n log peak) time, memory for the ends of the intervals open (none on
 * the heap for peaks up to 256) and, unless the starts are in order, a
 * 16 KiB window. Starts more than a window out of turn (1024 places) fall
 * back on sorting copies of all: 16 bytes per operation, O(n log n).
 *
 * @return 0, or IOB_ENOMEM (== UV_ENOMEM) if memory ran out; then *peak
 *         holds a lower bound, never 0 if some operation ran.
 */
int iob__peak_in_flight(const iob_record *records, uint32_t n, uint32_t *peak);

/* What it allocates with: realloc(), or a test's stand-in that fails. */
extern void *(*iob__peak_realloc)(void *block, size_t size);

#endif
