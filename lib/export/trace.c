/* The trace: finished batches in the Chrome Trace Event Format (JSON), for
 * ui.perfetto.dev and chrome://tracing.
 *
 * Each batch is a process; each operation a track (a "thread" to the
 * viewer) of that process, holding two complete ("X") events: its time
 * in a queue, when it had one, and its run. Operations that overlap on
 * one real thread, as on the event loop, must be on tracks of their own:
 * the format nests events of one track, it cannot overlap them. A
 * counter per batch shows the operations in flight. A batch of more than
 * IOB_TRACE_OPS_MAX operations has a track for one operation in every K
 * (0, K, 2K...), so that a million make a file a viewer opens, not 325
 * MB: its counter still counts them all, and the file says so.
 *
 * Times are microseconds since each batch's own start, written exactly
 * from the nanoseconds, not through printf("%f") and the locale. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

#define COUNTER_SLICES 500

static void put_us(FILE *out, uint64_t ns) {
  fprintf(out, "%" PRIu64 ".%03u", ns / 1000, (unsigned)(ns % 1000));
}

/* Text as the inside of a JSON string. */
static void put_json(FILE *out, const char *text) {
  for (const unsigned char *s = (const unsigned char *)text; *s != 0; s++) {
    if (*s == '"' || *s == '\\')
      fprintf(out, "\\%c", *s);
    else if (*s < 0x20)
      fprintf(out, "\\u%04x", *s);
    else
      fputc(*s, out);
  }
}

static void put_span(FILE *out, uint64_t from, uint64_t to) {
  fputs(",\"ts\":", out);
  put_us(out, from);
  fputs(",\"dur\":", out);
  put_us(out, to - from);
}

/* The run's name is what the viewer colours by: the thread for a run that
 * went well, the error for one that did not. */
static void run_name(char *buf, size_t size, const iob_record *r) {
  switch (iob__outcome_of(r->status)) {
  case IOB__OK:
    if (r->worker == 0)
      snprintf(buf, size, "run on the loop thread");
    else
      snprintf(buf, size, "run on thread %" PRIu32, r->worker);
    break;
  case IOB__FAILED:
    snprintf(buf, size, "failed: %s", iob_err_name(r->status));
    break;
  case IOB__CANCELLED:
    snprintf(buf, size, "cancelled");
    break;
  }
}

/* A track's name, "op 3" or "op 3 hedges", and its place. */
static void track_name(FILE *out, unsigned pid, uint32_t tid, uint32_t i,
                       const char *what, const char *kind) {
  fprintf(out,
          ",\n{\"ph\":\"M\",\"pid\":%u,\"tid\":%" PRIu32 ",\"name\":"
          "\"thread_name\",\"args\":{\"name\":\"op %" PRIu32 "%s",
          pid, tid, i, what);
  if (kind != NULL) {
    fputc(' ', out);
    put_json(out, kind);
  }
  fputs("\"}}", out);
  fprintf(out,
          ",\n{\"ph\":\"M\",\"pid\":%u,\"tid\":%" PRIu32 ",\"name\":"
          "\"thread_sort_index\",\"args\":{\"sort_index\":%" PRIu32 "}}",
          pid, tid, i);
}

/* Each attempt of operation i inside its run: on its track, or, for one
 * that began while another ran (a hedge), on a track of its lane
 * (iob__lane_of()), since a track's events must nest; each backoff (no
 * attempt running) on its track. */
static void trace_attempts(FILE *out, unsigned pid, uint32_t i,
                           const iob_attempt *a, uint32_t n) {
  uint32_t lanes = 0, named = 1;
  uint64_t ends[IOB__LANES_MAX] = {0}, last_end = a[0].started_ns;
  for (uint32_t k = 0; k < n; k++) {
    uint32_t lane = iob__lane_of(&a[k], ends, &lanes);
    uint32_t tid = lane == 0 ? i + 1 : IOB__HEDGE_TRACK(i, lane);
    for (; named < lanes; named++) {
      char what[32];
      snprintf(what, sizeof(what), named == 1 ? " hedges" : " hedges %u",
               named);
      track_name(out, pid, IOB__HEDGE_TRACK(i, named), i, what, NULL);
    }
    if (a[k].started_ns > last_end) {
      fprintf(out, ",\n{\"ph\":\"X\",\"pid\":%u,\"tid\":%" PRIu32, pid, i + 1);
      put_span(out, last_end, a[k].started_ns);
      fprintf(out,
              ",\"name\":\"backoff\",\"cat\":\"backoff\",\"args\":{\"op\":"
              "%" PRIu32 "}}",
              i);
    }
    fprintf(out, ",\n{\"ph\":\"X\",\"pid\":%u,\"tid\":%" PRIu32, pid, tid);
    put_span(out, a[k].started_ns, a[k].finished_ns);
    fprintf(out, ",\"name\":\"attempt %" PRIu32 "%s%s", k + 1,
            a[k].status == 0 ? "" : ": ",
            a[k].status == 0 ? "" : iob_err_name(a[k].status));
    fprintf(out,
            "\",\"cat\":\"attempt\",\"args\":{\"op\":%" PRIu32
            ",\"attempt\":%" PRIu32 ",\"hedge\":%s,\"status\":\"",
            i, k + 1, a[k].hedge ? "true" : "false");
    put_json(out, a[k].status == 0 ? "ok" : iob_err_name(a[k].status));
    fputs("\"}}", out);
    if (a[k].finished_ns > last_end)
      last_end = a[k].finished_ns;
  }
}

void iob__trace_op(FILE *out, unsigned pid, uint32_t i, const iob_record *r,
                   const char *kind, const iob_attempt *attempts, uint32_t n) {
  uint32_t tid = i + 1; /* 0 is no thread to some viewers */
  track_name(out, pid, tid, i, "", kind);
  if (r->started_ns > r->queued_ns) {
    fprintf(out, ",\n{\"ph\":\"X\",\"pid\":%u,\"tid\":%" PRIu32, pid, tid);
    put_span(out, r->queued_ns, r->started_ns);
    fprintf(out,
            ",\"name\":\"queued\",\"cat\":\"queued\",\"args\":{\"op\":%" PRIu32
            "}}",
            i);
  }
  char name[64];
  run_name(name, sizeof(name), r);
  fprintf(out, ",\n{\"ph\":\"X\",\"pid\":%u,\"tid\":%" PRIu32, pid, tid);
  put_span(out, r->started_ns, r->finished_ns);
  fputs(",\"name\":\"", out);
  put_json(out, name);
  fprintf(out,
          "\",\"cat\":\"run\",\"args\":{\"op\":%" PRIu32 ",\"worker\":%" PRIu32
          ",\"status\":\"",
          i, r->worker);
  put_json(out, r->status == 0 ? "ok" : iob_err_name(r->status));
  fputs("\"}}", out);
  if (n > 1)
    trace_attempts(out, pid, i, attempts, n);
}

/* The batch's process: its name says what it did, its sort index keeps
 * the batches in the order given. The very first event has no comma. */
static void write_process(FILE *out, unsigned pid, const iob_batch *b,
                          const iob_report *r) {
  char caption[IOB__TEXT_MAX];
  iob__caption(caption, sizeof(caption), b, r, "\xe2\x80\x94");
  fprintf(out,
          "%s{\"ph\":\"M\",\"pid\":%u,\"name\":\"process_name\","
          "\"args\":{\"name\":\"",
          pid == 1 ? "" : ",\n", pid);
  put_json(out, caption);
  fprintf(out,
          "\"}},\n{\"ph\":\"M\",\"pid\":%u,\"name\":"
          "\"process_sort_index\",\"args\":{\"sort_index\":%u}}",
          pid, pid);
}

/* The counter's values in one slice, as the event's args. */
static void counter_args(char *buf, size_t size, const double *v) {
  static const char *const layers[IOB__LAYERS] = {[IOB__OK] = "running",
                                                  [IOB__FAILED] = "failed",
                                                  [IOB__CANCELLED] =
                                                      "cancelled",
                                                  [IOB__QUEUED] = "queued"};
  size_t len = 0;
  for (int layer = 0; layer < IOB__LAYERS && len < size; layer++) {
    char value[32];
    iob__format_decimal(value, sizeof(value), v[layer], 2);
    int n = snprintf(buf + len, size - len, "%s\"%s\":%s",
                     layer == 0 ? "{" : ",", layers[layer], value);
    len += n > 0 ? (size_t)n : 0;
  }
  if (len < size)
    snprintf(buf + len, size - len, "}");
}

/* The mean number of operations in flight over the batch's own time, a
 * value a slice, written only where what is written changes. */
static void write_counter(FILE *out, unsigned pid, const iob_batch *b,
                          double *slices) {
  const iob_batch *one[] = {b};
  uint64_t span = iob__export_span(one, 1);
  iob__slices(b->records, b->config.count, span, slices, COUNTER_SLICES,
              iob__waits_for_slot(b));
  /* The end: nothing is in flight any more. */
  memset(&slices[COUNTER_SLICES * IOB__LAYERS], 0,
         IOB__LAYERS * sizeof(*slices));
  char args[160], last[160] = "";
  for (size_t k = 0; k <= COUNTER_SLICES; k++) {
    counter_args(args, sizeof(args), &slices[k * IOB__LAYERS]);
    if (strcmp(args, last) == 0)
      continue;
    memcpy(last, args, sizeof(last));
    fprintf(out,
            ",\n{\"ph\":\"C\",\"pid\":%u,\"name\":\"in flight\",\"ts\":", pid);
    /* span * k / COUNTER_SLICES, without overflowing on long batches */
    put_us(out, span / COUNTER_SLICES * k +
                    span % COUNTER_SLICES * k / COUNTER_SLICES);
    fprintf(out, ",\"args\":%s}", args);
  }
}

/* One operation in every `step` has a track: 1 up to IOB_TRACE_OPS_MAX. */
static uint32_t sample_step(const iob_batch *b) {
  uint32_t count = b->config.count;
  return count <= IOB_TRACE_OPS_MAX
             ? 1
             : (count + IOB_TRACE_OPS_MAX - 1) / IOB_TRACE_OPS_MAX;
}

static void write_batch(FILE *out, unsigned pid, const iob_batch *b,
                        const iob_report *r, double *slices) {
  write_process(out, pid, b, r);
  uint32_t step = sample_step(b);
  if (step > 1)
    fprintf(out,
            ",\n{\"ph\":\"M\",\"pid\":%u,\"name\":\"process_labels\","
            "\"args\":{\"labels\":\"sampled: a track for 1 operation in "
            "%" PRIu32 " (operations 0, %" PRIu32 ", %" PRIu32
            "...); the in-flight counter counts all %" PRIu32 "\"}}",
            pid, step, step, 2 * step, b->config.count);
  write_counter(out, pid, b, slices);
  bool from_start = iob__waits_for_slot(b);
  bool mixed = iob__batch_kind(b) == NULL;
  for (uint32_t i = 0; i < b->config.count; i += step) {
    /* A full disk fails every write from here on: stop early. */
    if (i / step % 4096 == 0 && ferror(out))
      return;
    iob_record drawn = iob__drawn(&b->records[i], from_start);
    uint32_t n;
    const iob_attempt *a = iob__attempts_of(b, i, &n);
    iob__trace_op(out, pid, i, &drawn, iob__kind_name_if(b, mixed, i), a, n);
  }
}

int iob_export_trace(FILE *out, const iob_batch *const *batches,
                     size_t nbatches) {
  int err = iob__export_check(out, batches, nbatches);
  if (err != 0)
    return err;
  iob_report *reports = calloc(nbatches, sizeof(*reports));
  double *slices = malloc((COUNTER_SLICES + 1) * IOB__LAYERS * sizeof(*slices));
  err = reports && slices ? 0 : IOB_ENOMEM;
  if (err == 0)
    err = iob__export_reports(batches, nbatches, reports);
  if (err == 0) {
    bool sampled = false;
    for (size_t k = 0; k < nbatches; k++)
      sampled = sampled || sample_step(batches[k]) > 1;
    fprintf(out,
            "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"generator\":"
            "\"iobound %s\",\"tracks_per_batch_max\":%u,\"sampled\":%s},"
            "\n\"traceEvents\":[\n",
            iob_version(), (unsigned)IOB_TRACE_OPS_MAX,
            sampled ? "true" : "false");
    for (size_t k = 0; k < nbatches; k++)
      write_batch(out, (unsigned)k + 1, batches[k], &reports[k], slices);
    fputs("\n]}\n", out);
    err = iob__export_flush(out);
  }
  free(slices);
  free(reports);
  return err;
}
