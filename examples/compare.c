/* iobound-compare: the same operations run in each concurrency style in
 * turn, then a table (or CSV, or JSON) of how each style did. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "compare.h"

typedef struct result {
  iob_style style;
  iob_batch *batch; /* finished, kept for the timelines */
  iob_report report;
  long max_rss_kib; /* the process's peak resident memory so far */
} result;

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* ---- running one style, with a progress line on stderr ----------------- */

typedef struct run {
  iob_batch *batch;
  iob_style style;
  uv_timer_t ticker;
  bool progress;
} run;

static void on_tick(uv_timer_t *t) {
  run *r = t->data;
  iob_progress p;
  iob_batch_progress(r->batch, &p);
  fprintf(stderr,
          "\r%-10s %" PRIu32 " of %" PRIu32 " done, %" PRIu32 " in flight",
          iob_style_name(r->style), p.done, p.done + p.in_flight + p.waiting,
          p.in_flight);
}

static void on_done(iob_batch *batch, int status) {
  run *r = iob_batch_data(batch);
  uv_close((uv_handle_t *)&r->ticker, NULL);
  if (r->progress)
    fputs("\r\033[K", stderr); /* wipe the progress line */
}

static int run_style(const compare_opts *o, iob_style style, bool progress,
                     result *out) {
  run r = {.style = style, .progress = progress};
  iob_config config;
  iob_config_init(&config);
  config.style = style;
  config.work = o->work;
  config.count = o->count;
  config.duration_ms = o->duration_ms;
  config.max_in_flight = o->limit;
  config.data = &r;
  int err = compare_real_use(o, &config);
  if (err != 0)
    return err;

  uv_loop_t loop;
  err = uv_loop_init(&loop);
  if (err != 0)
    return err;
  uv_timer_init(&loop, &r.ticker);
  r.ticker.data = &r;
  err = iob_batch_create(&r.batch, &config);
  if (err == 0)
    err = iob_batch_start(r.batch, &loop, on_done);
  if (err != 0) {
    uv_close((uv_handle_t *)&r.ticker, NULL);
  } else if (progress) {
    uv_timer_start(&r.ticker, on_tick, 200, 200);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (err == 0)
    err = iob_batch_report(r.batch, &out->report);
  if (err == 0)
    err = out->report.status;
  if (err == 0)
    compare_real_failures(o, r.batch, &out->report);
  if (err == 0) {
    out->batch = r.batch;
  } else {
    iob_batch_free(r.batch);
    out->batch = NULL;
  }
  uv_loop_close(&loop);

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  out->style = style;
  out->max_rss_kib = ru.ru_maxrss;
  return err;
}

/* ---- printing ----------------------------------------------------------- */

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

/* What the operations do, in words for titles. */
static const char *work_words(const compare_opts *o) {
  return o->io == COMPARE_TCP       ? "requests over TCP"
         : o->io == COMPARE_PG      ? "PostgreSQL queries"
         : o->work == IOB_WORK_CPU ? "computing"
                                   : "waiting";
}

static void print_table(const compare_opts *o, const result *r, int n) {
  const result *base = find_sequential(r, n);
  if (!o->quiet)
    printf("%" PRIu32 " operations of %" PRIu64 " ms of %s, %u CPU cores\n\n",
           o->count, o->duration_ms, work_words(o),
           n > 0 ? r[0].report.cores : 0);
  printf("%-11s %12s %9s %8s %8s %10s\n", "style", "elapsed", "speed-up",
         "peak", "threads", "cpu time");
  for (int k = 0; k < n; k++) {
    const iob_report *rep = &r[k].report;
    printf("%-11s %9.1f ms %8.1fx %8" PRIu32 " %8" PRIu32 " %7.1f ms\n",
           iob_style_name(r[k].style), ms(rep->elapsed_ns),
           speedup(&r[k], base), rep->peak_in_flight, rep->threads,
           ms(rep->cpu_ns));
  }
  if (!o->quiet)
    printf("\nspeed-up: %s; peak: most operations running at once\n",
           base ? "sequential time / this style's time"
                : "sum of the operations' own times / this style's time");
}

static void print_csv(const result *r, int n) {
  puts("style,elapsed_ms,speedup,peak_in_flight,threads,workers_used,cpu_ms,"
       "failed");
  const result *base = find_sequential(r, n);
  for (int k = 0; k < n; k++) {
    const iob_report *rep = &r[k].report;
    printf("%s,%.3f,%.3f,%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%.3f,%" PRIu32
           "\n",
           iob_style_name(r[k].style), ms(rep->elapsed_ns),
           speedup(&r[k], base), rep->peak_in_flight, rep->threads,
           rep->workers_used, ms(rep->cpu_ns), rep->failed);
  }
}

static void print_json(const compare_opts *o, const result *r, int n) {
  const result *base = find_sequential(r, n);
  printf("{\"count\": %" PRIu32 ", \"duration_ms\": %" PRIu64
         ", \"work\": \"%s\", \"limit\": %" PRIu32 ", \"pool_size\": %u"
         ", \"cores\": %u, \"styles\": [",
         o->count, o->duration_ms, iob_work_name(o->work), o->limit,
         iob_pool_size(), uv_available_parallelism());
  for (int k = 0; k < n; k++) {
    const iob_report *rep = &r[k].report;
    printf("%s\n  {\"style\": \"%s\", \"elapsed_ms\": %.3f, \"speedup\": %.3f"
           ", \"peak_in_flight\": %" PRIu32 ", \"threads\": %" PRIu32
           ", \"workers_used\": %" PRIu32 ", \"cpu_ms\": %.3f"
           ", \"failed\": %" PRIu32 ", \"max_rss_kib\": %ld}",
           k ? "," : "", iob_style_name(r[k].style), ms(rep->elapsed_ns),
           speedup(&r[k], base), rep->peak_in_flight, rep->threads,
           rep->workers_used, ms(rep->cpu_ns), rep->failed, r[k].max_rss_kib);
  }
  puts("\n]}");
}

static const result *fastest(const result *r, int n) {
  const result *best = &r[0];
  for (int k = 1; k < n; k++)
    if (r[k].report.elapsed_ns < best->report.elapsed_ns)
      best = &r[k];
  return best;
}

/* Print `text` folded at spaces into lines of at most `width` columns. */
static void print_folded(const char *text, size_t width) {
  while (strlen(text) > width) {
    size_t cut = width;
    while (cut > 0 && text[cut] != ' ')
      cut--;
    if (cut == 0)
      break;
    printf("%.*s\n", (int)cut, text);
    text += cut + 1;
  }
  puts(text);
}

/* A plain sentence that says what the table shows, and why. */
static void print_verdict(const compare_opts *o, const result *r, int n) {
  const result *base = find_sequential(r, n), *best = fastest(r, n);
  if (n < 2)
    return;
  char text[512];
  int len = snprintf(text, sizeof(text), "The %s style was fastest",
                     iob_style_name(best->style));
  if (base != NULL && best != base)
    len += snprintf(text + len, sizeof(text) - (size_t)len,
                    ", %.1fx faster than one after another",
                    speedup(best, base));
  if (o->work == IOB_WORK_CPU)
    snprintf(text + len, sizeof(text) - (size_t)len,
             ". This work computes: it only overlaps on the %u cores the "
             "machine has, so no style gets much past %ux, and on the event "
             "loop it runs one operation after another, because computing "
             "blocks the loop.",
             best->report.cores, best->report.cores);
  else
    snprintf(text + len, sizeof(text) - (size_t)len,
             ". These operations only wait, and waits overlap: the time of "
             "%" PRIu32 " of them is about the time of %.0f. Threads help "
             "only as far as there are threads to wait on; the event loop "
             "waits on all of them with one.",
             o->count,
             o->duration_ms
                 ? ms(best->report.elapsed_ns) / (double)o->duration_ms
                 : 1.0);
  putchar('\n');
  print_folded(text, 76);
}

/* Open every output file before anything runs: a typo in a path should
 * not cost a long comparison. */
static FILE *open_output(const char *path) {
  if (path == NULL)
    return NULL;
  FILE *f = fopen(path, "w");
  if (f == NULL)
    fprintf(stderr, "iobound-compare: cannot write '%s': %s\n", path,
            strerror(errno));
  return f;
}

/* Write one timeline and close its file; false (and a message) on error. */
static bool write_output(FILE *f, const char *path, int (*export_fn)(FILE *,
                         const iob_batch *const *, size_t),
                         const iob_batch *const *batches, size_t n) {
  if (f == NULL)
    return true;
  int err = export_fn(f, batches, n);
  if (fclose(f) != 0 && err == 0)
    err = IOB_EIO;
  if (err != 0)
    fprintf(stderr, "iobound-compare: cannot write '%s': %s\n", path,
            iob_strerror(err));
  return err == 0;
}

static char svg_title[128];

static int svg_titled(FILE *f, const iob_batch *const *b, size_t n) {
  return iob_export_svg(f, b, n, svg_title);
}

int main(int argc, char **argv) {
  compare_opts o;
  char error[256];
  int rc = compare_parse(argc, argv, &o, error, sizeof(error));
  if (rc == 0 && o.action == COMPARE_RUN)
    rc = compare_check_threads(&o, iob_threads_available(), error,
                               sizeof(error));
  if (rc != 0) {
    fprintf(stderr, "iobound-compare: %s\nTry 'iobound-compare --help'.\n",
            error);
    return rc;
  }
  if (o.action == COMPARE_HELP) {
    fputs(compare_usage, stdout);
    return 0;
  }
  if (o.action == COMPARE_VERSION) {
    printf("iobound-compare %s\n", iob_version());
    return 0;
  }
  if (o.pool_size != 0 && iob_pool_request_size(o.pool_size) != 0) {
    fprintf(stderr, "iobound-compare: cannot size the pool\n");
    return 1;
  }
  FILE *svg = open_output(o.svg_path);
  FILE *trace = open_output(o.trace_path);
  if ((o.svg_path && svg == NULL) || (o.trace_path && trace == NULL)) {
    if (svg != NULL)
      fclose(svg);
    if (trace != NULL)
      fclose(trace);
    return COMPARE_EX_CANTCREAT;
  }

  bool progress = !o.quiet && o.progress != COMPARE_PROGRESS_NEVER &&
                  (o.progress == COMPARE_PROGRESS_ALWAYS || isatty(2));
  int real = compare_real_start(&o);
  if (real != 0) {
    if (svg != NULL)
      fclose(svg);
    if (trace != NULL)
      fclose(trace);
    return real == IOB_EINVAL ? COMPARE_EX_USAGE : 1;
  }
  result results[IOB_STYLE_COUNT_] = {0};
  const iob_batch *batches[IOB_STYLE_COUNT_];
  int failed = 0;
  for (int k = 0; k < o.nstyles && rc == 0; k++) {
    int err = run_style(&o, o.styles[k], progress, &results[k]);
    batches[k] = results[k].batch;
    if (err != 0) {
      fprintf(stderr, "iobound-compare: the %s style failed: %s\n",
              iob_style_name(o.styles[k]), iob_strerror(err));
      rc = 1;
    }
    failed += results[k].report.failed != 0;
  }
  compare_real_stop();
  if (rc == 0) {
    size_t n = (size_t)o.nstyles;
    if (o.format == COMPARE_JSON) {
      print_json(&o, results, o.nstyles);
    } else if (o.format == COMPARE_CSV) {
      print_csv(results, o.nstyles);
    } else {
      print_table(&o, results, o.nstyles);
      if (o.timeline) {
        putchar('\n');
        iob_export_chart(stdout, batches, n, 80);
      }
      if (!o.quiet)
        print_verdict(&o, results, o.nstyles);
    }
    snprintf(svg_title, sizeof(svg_title),
             "%" PRIu32 " operations of %" PRIu64 " ms of %s, %u CPU cores",
             o.count, o.duration_ms, work_words(&o),
             uv_available_parallelism());
    if (!write_output(svg, o.svg_path, svg_titled, batches, n) ||
        !write_output(trace, o.trace_path, iob_export_trace, batches, n))
      rc = COMPARE_EX_CANTCREAT;
    svg = trace = NULL;
    if (rc == 0 && failed)
      rc = 1;
  }
  if (svg != NULL)
    fclose(svg);
  if (trace != NULL)
    fclose(trace);
  for (int k = 0; k < o.nstyles; k++)
    iob_batch_free(results[k].batch);
  return rc;
}
