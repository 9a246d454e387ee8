/* What the timeline exporters share: argument checks, the shared time
 * axis and its ticks, locale-proof numbers, a batch's caption, and the
 * slices a large batch is aggregated into. */
#include <inttypes.h>
#include <string.h>

#include "export.h"

iob__outcome iob__outcome_of(int32_t status) {
  if (status == 0)
    return IOB__OK;
  return status == IOB_ECANCELED ? IOB__CANCELLED : IOB__FAILED;
}

const iob_attempt *iob__attempts_of(const iob_batch *b, uint32_t i,
                                    uint32_t *n) {
  const iob_attempt *a = NULL;
  if (iob_batch_attempts(b, i, &a, n) != 0 || *n < 2) {
    *n = 0;
    return NULL; /* (a list lost to memory: drawn as one run) */
  }
  return a;
}

uint32_t iob__lane_of(const iob_attempt *a, uint64_t *ends, uint32_t *lanes) {
  uint32_t j = 0;
  while (j < *lanes && ends[j] > a->started_ns)
    j++;
  if (j == IOB__LANES_MAX)
    j = IOB__LANES_MAX - 1; /* more at once than lanes: they share one */
  if (j == *lanes)
    (*lanes)++;
  if (a->finished_ns > ends[j])
    ends[j] = a->finished_ns;
  return j;
}

bool iob__backed_off(const iob_attempt *a, uint32_t n) {
  uint64_t end = n > 0 ? a[0].finished_ns : 0;
  for (uint32_t k = 1; k < n; k++) {
    if (a[k].started_ns > end)
      return true;
    if (a[k].finished_ns > end)
      end = a[k].finished_ns;
  }
  return false;
}

bool iob__ended_apart(const iob_record *r, const iob_attempt *a, uint32_t n) {
  if (r->status == 0 || n == 0)
    return false;
  for (uint32_t k = 0; k < n; k++)
    if (a[k].status == r->status)
      return false;
  return true;
}

int iob__export_check(FILE *out, const iob_batch *const *batches, size_t n) {
  if (out == NULL || batches == NULL || n == 0)
    return IOB_EINVAL;
  for (size_t k = 0; k < n; k++)
    if (batches[k] == NULL)
      return IOB_EINVAL;
  for (size_t k = 0; k < n; k++)
    if (batches[k]->state != IOB__FINISHED)
      return IOB_EBUSY;
  for (size_t k = 0; k < n; k++) /* the records, in one block each */
    if (iob__gather(batches[k]) != 0)
      return IOB_ENOMEM;
  return 0;
}

int iob__export_reports(const iob_batch *const *batches, size_t n,
                        iob_report *reports) {
  for (size_t k = 0; k < n; k++) {
    int err = iob_batch_report(batches[k], &reports[k]);
    if (err != 0)
      return err;
    /* The captions' percentiles, worked out now, when running out of
     * memory can still be told. */
    const iob_latency *l;
    err = iob__latency_of(batches[k], &l);
    if (err != 0 && err != IOB_ENODATA)
      return err;
  }
  return 0;
}

int iob__export_flush(FILE *out) {
  /* fflush reports the buffered writes; ferror the ones that failed at
   * once (a read-only stream fails every write without buffering). */
  if (fflush(out) != 0 || ferror(out))
    return IOB_EIO;
  return 0;
}

uint64_t iob__export_span(const iob_batch *const *batches, size_t n) {
  uint64_t span = 1000;
  for (size_t k = 0; k < n; k++) {
    const iob_batch *b = batches[k];
    if (b->end_ns > span)
      span = b->end_ns;
    /* A record may end after end_ns was read: be sure every bar fits. */
    for (uint32_t i = 0; i < b->config.count; i++)
      if (b->records[i].finished_ns > span)
        span = b->records[i].finished_ns;
  }
  return span;
}

uint64_t iob__nice_step(uint64_t span, unsigned max_steps) {
  static const uint64_t mantissas[] = {1, 2, 5};
  if (max_steps == 0)
    max_steps = 1;
  for (uint64_t power = 1;; power *= 10) {
    for (size_t m = 0; m < sizeof(mantissas) / sizeof(mantissas[0]); m++) {
      uint64_t step = mantissas[m] * power;
      if (span / step + (span % step != 0) <= max_steps)
        return step;
    }
    if (power > UINT64_MAX / 100)
      return 5 * power; /* as coarse as a uint64_t allows */
  }
}

unsigned iob__ms_decimals(uint64_t step_ns) {
  unsigned decimals = 0;
  for (uint64_t unit = 1000000; step_ns < unit && decimals < 6; unit /= 10)
    decimals++;
  return decimals;
}

void iob__format_decimal(char *buf, size_t size, double value,
                         unsigned decimals) {
  static const uint64_t scale[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
  if (decimals > 6)
    decimals = 6;
  double magnitude = value < 0 ? -value : value;
  /* Our numbers (pixels, microseconds) stay far below 2^64 / 10^6. */
  uint64_t units = (uint64_t)(magnitude * (double)scale[decimals] + 0.5);
  const char *sign = value < 0 && units > 0 ? "-" : "";
  uint64_t whole = units / scale[decimals];
  if (decimals == 0)
    snprintf(buf, size, "%s%" PRIu64, sign, whole);
  else
    snprintf(buf, size, "%s%" PRIu64 ".%0*" PRIu64, sign, whole, (int)decimals,
             units % scale[decimals]);
}

void iob__format_ms(char *buf, size_t size, uint64_t ns) {
  unsigned decimals = ns >= 10000000 ? 1 : ns >= 1000000 ? 2 : 3;
  char number[24]; /* callers' 32 always have room for it and " ms" */
  iob__format_decimal(number, sizeof(number), (double)ns / 1e6, decimals);
  snprintf(buf, size, "%s ms", number);
}

/* With per-operation durations there is no one duration to name. */
void iob__describe_inputs(char *buf, size_t size, const iob_batch *b) {
  const iob_config *c = &b->config;
  /* Waits are what a duration means; any other kind is named, and its
   * duration shown only when it has one. An open batch's operations
   * have durations of their own, and may be of several kinds. */
  const iob_kind *kind = iob__batch_kind(b);
  bool wait = kind == &iob_kind_wait, named = kind != NULL && !wait;
  int len =
      snprintf(buf, size, "%" PRIu32 "%s%s operation%s%s", c->count,
               named ? " " : "", named ? kind->name : "",
               c->count == 1 ? "" : "s", kind == NULL ? " of mixed kinds" : "");
  if (len < 0 || (size_t)len >= size)
    return;
  if (c->durations_ms == NULL && !b->open && (wait || c->duration_ms != 0))
    len += snprintf(buf + len, size - (size_t)len, " of %" PRIu64 " ms",
                    c->duration_ms);
  if ((size_t)len < size && c->max_in_flight != 0 &&
      c->max_in_flight < c->count)
    snprintf(buf + len, size - (size_t)len, " (at most %" PRIu32 " in flight)",
             c->max_in_flight);
}

/* "up to 4 at once on 4 threads": what the measurements show. */
static void describe_run(char *buf, size_t size, const iob_report *r) {
  char how[48], where[64];
  if (r->peak_in_flight <= 1)
    snprintf(how, sizeof(how), "one at a time");
  else
    snprintf(how, sizeof(how), "up to %" PRIu32 " at once", r->peak_in_flight);
  if (r->workers_used == 0)
    snprintf(where, sizeof(where), "on the loop thread");
  else if (r->threads > r->workers_used)
    snprintf(where, sizeof(where), "on %" PRIu32 " of %" PRIu32 " threads",
             r->workers_used, r->threads);
  else
    snprintf(where, sizeof(where), "on %" PRIu32 " thread%s", r->workers_used,
             r->workers_used == 1 ? "" : "s");
  snprintf(buf, size, "%s %s", how, where);
}

void iob__caption(char *buf, size_t size, const iob_batch *b,
                  const iob_report *r, const char *dash) {
  char inputs[96], run[112], failed[32] = "", elapsed[32];
  iob__describe_inputs(inputs, sizeof(inputs), b);
  describe_run(run, sizeof(run), r);
  if (r->failed > 0)
    snprintf(failed, sizeof(failed), ", %" PRIu32 " failed", r->failed);
  iob__format_ms(elapsed, sizeof(elapsed), r->elapsed_ns);
  /* How long each waited and ran, what an application's user feels. */
  char took[96] = "", p50[32], p99[32];
  const iob_latency *l = atomic_load(&b->percentiles); /* (reports made it) */
  if (l != NULL) {
    iob__format_ms(p50, sizeof(p50), l->total.p50_ns);
    iob__format_ms(p99, sizeof(p99), l->total.p99_ns);
    snprintf(took, sizeof(took), "; half took %s or less, 99%% %s", p50, p99);
  }
  const char *label = b->config.label;
  snprintf(buf, size, "%s%s%s%s: %s, %s%s %s %s%s", iob_style_name(r->style),
           label ? " (" : "", label ? label : "", label ? ")" : "", inputs, run,
           failed, dash, elapsed, took);
}

/* Add one interval, [from, to) in ns, to a layer of the slices, each
 * slice getting the share of its width the interval covers. All goes
 * into a difference array: a partial slice k at either end as +v at k
 * and -v at k + 1, the whole slices between as one +1 ... -1 pair. */
static void add_interval(double *values, int layer, size_t n, double slice_ns,
                         uint64_t from, uint64_t to) {
  double x = (double)from / slice_ns, y = (double)to / slice_ns;
  if (y > (double)n)
    y = (double)n;
  if (x >= y)
    return; /* an instant adds nothing to a mean */
  size_t first = (size_t)x, last = (size_t)y;
  double *v = values + layer;
  if (first == last || y == (double)(first + 1)) {
    v[first * IOB__LAYERS] += y - x;
    v[(first + 1) * IOB__LAYERS] -= y - x;
    return;
  }
  v[first * IOB__LAYERS] += (double)(first + 1) - x;
  v[(first + 1) * IOB__LAYERS] -= (double)(first + 1) - x;
  v[(first + 1) * IOB__LAYERS] += 1;
  v[last * IOB__LAYERS] -= 1;
  if (last < n) {
    v[last * IOB__LAYERS] += y - (double)last;
    v[(last + 1) * IOB__LAYERS] -= y - (double)last;
  }
}

bool iob__waits_for_slot(const iob_batch *b) {
  /* (An open batch's operations arrive over time: not from its start.) */
  return !b->open &&
         (b->limit < b->config.count || b->config.shared_limit != NULL);
}

void iob__slices(const iob_record *records, uint32_t count, uint64_t span,
                 double *values, size_t n, bool from_start) {
  size_t size = (n + 1) * IOB__LAYERS;
  memset(values, 0, size * sizeof(*values));
  double slice_ns = (double)span / (double)n;
  for (uint32_t i = 0; i < count; i++) {
    const iob_record *r = &records[i];
    add_interval(values, (int)iob__outcome_of(r->status), n, slice_ns,
                 r->started_ns, r->finished_ns);
    add_interval(values, IOB__QUEUED, n, slice_ns,
                 from_start ? 0 : r->queued_ns, r->started_ns);
  }
  for (size_t k = IOB__LAYERS; k < size; k++)
    values[k] += values[k - IOB__LAYERS];
  for (size_t k = 0; k < size; k++)
    if (values[k] < 1e-9)
      values[k] = 0; /* what rounding leaves of an empty slice */
}
