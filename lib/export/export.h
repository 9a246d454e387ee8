/* Private to the library: what the three timeline exporters share
 * (export-svg.c, export-trace.c, export-chart.c), and the functions that
 * draw one operation, which the tests call with records of their own to
 * see how a failed or cancelled operation looks. */
#ifndef IOB_EXPORT_H
#define IOB_EXPORT_H

#include <stdio.h>

#include "internal.h"

/* A batch of more operations than this is drawn in the SVG as operations
 * in flight over time, not as one bar per operation. */
#define IOB__SVG_BARS_MAX 200
/* A batch of more operations than this gets one chart row per group. */
#define IOB__CHART_ROWS_MAX 40

/* Room for any caption, title or tooltip the exporters write. */
#define IOB__TEXT_MAX 400

/* How an operation ended, as the pictures tell it apart. */
typedef enum iob__outcome {
  IOB__OK = 0,
  IOB__FAILED,    /* any other negative status, timeouts included */
  IOB__CANCELLED, /* IOB_ECANCELED: it was stopped, it did not fail */
} iob__outcome;

iob__outcome iob__outcome_of(int32_t status);

/* Did the operations of a batch of count wait for a slot under a limit
 * (its max_in_flight, its style's, a shared limit)? Then each was waiting from
 * the batch's start, when all of them were asked for, until it was handed
 * to its style (queued_ns): the pictures draw that wait as queued time,
 * with the wait for a thread after it. Else queued time starts at
 * queued_ns. */
bool iob__waits_for_slot(const iob_batch *b);

/* Operation r as drawn: its queued time from the batch's start when it
 * waited for a slot. */
static inline iob_record iob__drawn(const iob_record *r, bool from_start) {
  iob_record d = *r;
  if (from_start)
    d.queued_ns = 0;
  return d;
}

/* IOB_EINVAL for a NULL stream, list or entry or no batch; IOB_EBUSY for
 * a batch that has not finished. Called before anything is written. */
int iob__export_check(FILE *out, const iob_batch *const *batches, size_t n);

/* Fill reports[0..n) for checked batches; IOB_ENOMEM if one fails. */
int iob__export_reports(const iob_batch *const *batches, size_t n,
                        iob_report *reports);

/* Flush the stream: IOB_EIO if this or any earlier write failed. */
int iob__export_flush(FILE *out);

/* The shared time axis: the latest moment any batch records, >= 1 us so
 * a batch of instant operations still has an axis to draw on. */
uint64_t iob__export_span(const iob_batch *const *batches, size_t n);

/* A round step (1, 2 or 5 times a power of ten) that cuts 0..span into
 * at most max_steps steps; at least 1. For time in ns and for counts. */
uint64_t iob__nice_step(uint64_t span, unsigned max_steps);

/* Decimals a tick label in ms needs for ticks step_ns apart. */
unsigned iob__ms_decimals(uint64_t step_ns);

/* Write value with a fixed number of decimals (at most 6) into buf. Not
 * printf("%f"), whose decimal point follows the locale: SVG and JSON
 * need a '.' whatever the application's locale is. */
void iob__format_decimal(char *buf, size_t size, double value,
                         unsigned decimals);

/* A duration in ms, "2002.6 ms", with more decimals for short ones. */
void iob__format_ms(char *buf, size_t size, uint64_t ns);

/* What a batch was asked to do: "10 operations of 200 ms (at most 4 in
 * flight)". */
void iob__describe_inputs(char *buf, size_t size, const iob_batch *b);

/* One line that says what a batch did, for someone who has never heard
 * of libuv: "pool: 10 operations of 200 ms, up to 4 at once on 4 threads
 * <dash> 600.7 ms; each took 400.5 ms or less, 99% 600.7 ms" (the p50
 * and p99 of their times in all, iob_batch_latency(), which
 * iob__export_reports() worked out). Made from the measurements, never
 * from the style's name. */
void iob__caption(char *buf, size_t size, const iob_batch *b,
                  const iob_report *r, const char *dash);

/* The mean number of operations in flight in each of n equal slices of
 * 0..span, in layers: running, by how the run ended (layer = its
 * iob__outcome), and queued, waiting to start (from the batch's start
 * when from_start, as iob__drawn()). The layers add up to all
 * in flight. Slice k's layer is values[k * IOB__LAYERS + layer]; values
 * must have room for n + 1 slices. O(count + n), whatever the durations. */
#define IOB__QUEUED 3
#define IOB__LAYERS 4

void iob__slices(const iob_record *records, uint32_t count, uint64_t span,
                 double *values, size_t n, bool from_start);

/* ---- one operation, in each format --------------------------------------
 * These take a record, not a batch, so a test can show them any status. */

/* Where an SVG row goes: x of time 0, pixels per ns, the row's box, and
 * the colour of a successful run. */
typedef struct iob__svg_row {
  double left;
  double px_per_ns;
  double y;
  double height;
  const char *fill;
  const char *kind; /* the operation's kind, in a batch of mixed kinds */
  /* Its attempts (iob_batch_attempts()), when it ran more than once. */
  const iob_attempt *attempts;
  uint32_t nattempts;
} iob__svg_row;

/* Operation i's queued bar (hatched), its run bar (class "op ok", "op
 * failed" or "op cancelled") with a tooltip, and its thread if it fits.
 * One that ran more than once gets a bar per attempt instead (class
 * "attempt ok", ...), hedges in lanes of their own below the first, and
 * a dashed line (class "backoff") across each backoff. */
void iob__svg_op(FILE *out, const iob__svg_row *row, uint32_t i,
                 const iob_record *r);
/* (An operation that ended after its last attempt, stopped in a backoff,
 * gets its own mark at its end: class "op cancelled" or "op failed".) */

/* Operation i's Trace Event Format events on track i + 1 of process pid:
 * the track's name, its queued time and its run, each line starting with
 * the ",\n" that separates it from the event before. Its attempts, if
 * it ran more than once (n > 1), inside its run: each retry and backoff
 * on its track, each hedge on a track of its own (iob__hedge_track()). */
void iob__trace_op(FILE *out, unsigned pid, uint32_t i, const iob_record *r,
                   const char *kind, const iob_attempt *attempts, uint32_t n);

/* The trace track of lane `lane` (1..IOB__LANES_MAX - 1) of operation
 * i's hedges: past any operation's. */
#define IOB__HEDGE_TRACK(i, lane)                                              \
  ((UINT32_C(1) << 31) + (uint32_t)(i)*IOB__LANES_MAX + (uint32_t)(lane))

/* Operation i's attempts in a finished batch, when it ran more than once;
 * else NULL and *n = 0. */
const iob_attempt *iob__attempts_of(const iob_batch *b, uint32_t i,
                                    uint32_t *n);

/* Lanes for an operation's attempts, taken in the order they began: one
 * that begins while others run (a hedge) takes the first lane free then
 * (the last, when all IOB__LANES_MAX are busy). `ends` (IOB__LANES_MAX
 * zeros at first) and *lanes (0 at first) carry what is taken from one
 * call to the next; returns the attempt's lane. */
#define IOB__LANES_MAX 4
uint32_t iob__lane_of(const iob_attempt *a, uint64_t *ends, uint32_t *lanes);

/* Did the operation back off: was there a time between its first
 * attempt's start and its last one's end when none ran? */
bool iob__backed_off(const iob_attempt *a, uint32_t n);

/* Did the operation of record r end apart from its attempts a[0..n):
 * stopped between two (a cancel, a timeout in a backoff), with a status
 * none of them ended with? */
bool iob__ended_apart(const iob_record *r, const iob_attempt *a, uint32_t n);

/* Operation i's kind's name when batch b mixes kinds (its caption cannot
 * name one), else NULL. `mixed` is iob__batch_kind(b) == NULL. */
static inline const char *iob__kind_name_if(const iob_batch *b, bool mixed,
                                            uint32_t i) {
  return mixed ? iob__kind_of(b, i)->name : NULL;
}

/* One chart row for records[0..n): ncols cells over 0..span, each the
 * strongest thing any of the operations did in it: 'x' failed, 'c'
 * cancelled, '#' running, '.' queued, '-' backing off between attempts,
 * ' ' nothing; queued from the batch's start when from_start
 * (iob__waits_for_slot()). The records are operations first.. of batch
 * b, whose attempts are drawn one by one; b may be NULL (none). */
void iob__chart_cells(char *cells, unsigned ncols, uint64_t span,
                      const iob_record *records, uint32_t n, bool from_start,
                      const iob_batch *b, uint32_t first);

#endif /* IOB_EXPORT_H */
