/* iobound-compare: the same simulated I/O waits, run in each concurrency
 * style in turn, and a table of how long each style took. */
#include <inttypes.h>
#include <stdio.h>

#include "compare.h"

typedef struct result {
  iob_style style;
  iob_report report;
} result;

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static int run_style(const compare_opts *o, iob_style style, result *out) {
  iob_config config;
  iob_config_init(&config);
  config.style = style;
  config.count = o->count;
  config.duration_ms = o->duration_ms;

  iob_batch *batch;
  int err = iob_run(&batch, &config);
  if (err == 0)
    err = iob_batch_report(batch, &out->report);
  iob_batch_free(batch);
  out->style = style;
  return err;
}

/* The baseline every speed-up is measured against: sequential, if it ran. */
static const result *find_sequential(const result *r, int n) {
  for (int k = 0; k < n; k++)
    if (r[k].style == IOB_STYLE_SEQUENTIAL)
      return &r[k];
  return NULL;
}

static double speedup(const result *r, const result *base) {
  if (base == NULL)
    return r->report.speedup;
  return (double)base->report.elapsed_ns / (double)r->report.elapsed_ns;
}

static void print_table(const compare_opts *o, const result *r, int n) {
  const result *base = find_sequential(r, n);
  printf("%" PRIu32 " operations of %" PRIu64 " ms each\n\n", o->count,
         o->duration_ms);
  printf("%-12s %12s %10s %15s %8s\n", "style", "elapsed", "speed-up",
         "peak in flight", "threads");
  for (int k = 0; k < n; k++) {
    const iob_report *rep = &r[k].report;
    printf("%-12s %9.1f ms %9.1fx %15" PRIu32 " %8" PRIu32 "\n",
           iob_style_name(r[k].style), ms(rep->elapsed_ns),
           speedup(&r[k], base), rep->peak_in_flight, rep->threads);
  }
  printf("\nspeed-up: %s\n",
         base ? "sequential time / this style's time"
              : "sum of the operations' own times / this style's time");
}

/* One sentence that says what the table shows. */
static void print_verdict(const result *r, int n) {
  const result *base = find_sequential(r, n), *best = &r[0];
  for (int k = 1; k < n; k++)
    if (r[k].report.elapsed_ns < best->report.elapsed_ns)
      best = &r[k];
  if (base == NULL || best == base || n < 2)
    return;
  printf("\nThe %s style was fastest, %.1fx faster than one after another: "
         "these operations only wait, and waits that overlap cost the time "
         "of about %.1f of them.\n",
         iob_style_name(best->style), speedup(best, base),
         ms(best->report.elapsed_ns) /
             (ms(base->report.elapsed_ns) / base->report.count));
}

int main(int argc, char **argv) {
  compare_opts o;
  char error[256];
  if (compare_parse(argc, argv, &o, error, sizeof(error)) != 0) {
    fprintf(stderr, "iobound-compare: %s\nTry 'iobound-compare --help'.\n",
            error);
    return COMPARE_EX_USAGE;
  }
  if (o.action == COMPARE_HELP) {
    fputs(compare_usage, stdout);
    return 0;
  }
  if (o.action == COMPARE_VERSION) {
    printf("iobound-compare %s\n", iob_version());
    return 0;
  }

  result results[IOB_STYLE_COUNT_];
  for (int k = 0; k < o.nstyles; k++) {
    int err = run_style(&o, o.styles[k], &results[k]);
    if (err != 0) {
      fprintf(stderr, "iobound-compare: the %s style failed: %s\n",
              iob_style_name(o.styles[k]), iob_strerror(err));
      return 1;
    }
  }
  print_table(&o, results, o.nstyles);
  print_verdict(results, o.nstyles);
  return 0;
}
