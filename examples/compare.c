/* iobound-compare: the same operations run in each concurrency style in
 * turn, then a table (or CSV, or JSON) of how each style did. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "compare.h"

typedef compare_result result;

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* ---- running one style, with a progress line on stderr ----------------- */

typedef struct run {
  iob_batch *batch;
  const iob_style *style;
  uv_timer_t ticker;
  arrivals arrive; /* with --arrival-rate */
  bool progress;
  int width; /* of the last progress line written */
} run;

/* Rewrite the progress line, padded with spaces over a longer one before
 * it (no terminal escapes: stderr may be a file). */
static void on_tick(uv_timer_t *t) {
  run *r = t->data;
  iob_progress p;
  iob_batch_progress(r->batch, &p);
  char line[128];
  int n =
      snprintf(line, sizeof(line),
               "%-10s %" PRIu32 " of %" PRIu32 " done, %" PRIu32 " in flight",
               iob_style_name(r->style), p.done,
               p.done + p.in_flight + p.waiting, p.in_flight);
  fprintf(stderr, "\r%s%*s", line, r->width > n ? r->width - n : 0, "");
  r->width = n;
}

static void on_done(iob_batch *batch, int status) {
  run *r = iob_batch_data(batch);
  uv_close((uv_handle_t *)&r->ticker, NULL);
  arrivals_stop(&r->arrive, NULL);
  if (r->progress && r->width > 0) /* wipe the progress line */
    fprintf(stderr, "\r%*s\r", r->width, "");
}

/* Run the operations in `style`: all at once, or arriving at rate
 * number `k` of --arrival-rate (k >= 0), submitted to an open batch. */
static int run_style(const compare_opts *o, const iob_style *style, int k,
                     bool progress, result *out) {
  run r = {.style = style, .progress = progress};
  iob_config *config = &out->config;
  iob_config_init(config);
  config->style = style;
  compare_work_use(config); /* its kind and target */
  config->count = o->count;
  out->arrival_rate = k >= 0 ? o->arrival_rates[k] : 0;
  if (k >= 0) {
    config->open = 1;
    config->count = 0;
    r.arrive = (arrivals){.rate = o->arrival_rates[k],
                          .count = compare_arrivals(o, k),
                          .poisson = o->poisson,
                          .seed = o->seed};
  }
  /* A file takes as long as it takes: it has no duration to show. */
  config->duration_ms = config->kind == &iob_kind_file ? 0 : o->duration_ms;
  config->max_in_flight = o->limit;
  config->timeout_ms = o->timeout_ms;
  iob_loops_options loops;
  iob_loops_options_init(&loops);
  loops.loops = o->loops;
  if (style == &iob_style_loops) /* the one style that reads it */
    config->style_options = &loops;
  config->data = &r;

  iob_rate *rate = NULL; /* a bucket of its own for each style's run */
  int err = o->rate > 0
                ? iob_rate_create(&rate, o->rate, o->burst ? o->burst : 1)
                : 0;
  if (err != 0)
    return err;
  config->rate = rate;
  iob_retry retry; /* read by the batch while it runs */
  iob_retry_init(&retry);
  retry.attempts = o->retries + 1;
  retry.backoff_min_ms = o->backoff_min_ms;
  retry.backoff_max_ms = o->backoff_max_ms;
  config->retry = o->retries > 0 ? &retry : NULL;
  iob_hedge hedge; /* where it applies: one attempt a thread elsewhere */
  iob_hedge_init(&hedge);
  if (o->hedge_ms != 0)
    hedge.delay_ms = o->hedge_ms;
  hedge.percentile = o->hedge_percentile;
  config->hedge =
      o->hedge && compare_hedges(style, config->kind) ? &hedge : NULL;
  iob_breaker *breaker = NULL; /* likewise, one for each run */
  if (o->breaker && (err = iob_breaker_create(&breaker, NULL)) != 0) {
    iob_rate_free(rate);
    return err;
  }
  config->breaker = breaker;
  uv_loop_t loop;
  if ((err = uv_loop_init(&loop)) != 0) {
    iob_rate_free(rate);
    iob_breaker_free(breaker);
    return err;
  }
  uv_timer_init(&loop, &r.ticker);
  r.ticker.data = &r;
  err = iob_batch_create(&r.batch, config);
  config->style_options = NULL; /* the batch has its copy; this one goes */
  if (err == 0)
    err = iob_batch_start(r.batch, &loop, on_done);
  if (err != 0) {
    uv_close((uv_handle_t *)&r.ticker, NULL);
  } else {
    if (k >= 0 &&
        (err = arrivals_start(&r.arrive, &loop, r.batch, config)) != 0)
      iob_batch_cancel(r.batch); /* it ends; its callback runs */
    if (progress)
      uv_timer_start(&r.ticker, on_tick, 200, 200);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (err == 0 && r.arrive.err != 0)
    err = r.arrive.err;
  if (err == 0)
    err = iob_batch_report(r.batch, &out->report);
  /* (Nothing to measure, or no memory: the table says "-", JSON null.) */
  out->latency_known =
      err == 0 && iob_batch_latency(r.batch, &out->latency) == 0;
  if (err == 0)
    err = out->report.status;
  if (err == 0)
    compare_work_failures(r.batch, &out->report);
  if (err == 0) {
    out->batch = r.batch;
  } else {
    iob_batch_free(r.batch);
    out->batch = NULL;
  }
  uv_loop_close(&loop);
  iob_rate_free(rate); /* the run is over */
  config->rate = NULL;
  config->retry = NULL;
  config->hedge = NULL;
  iob_breaker_free(breaker);
  config->breaker = NULL;

  out->style = style;
  return err;
}

bool compare_hedges(const iob_style *style, const iob_kind *kind) {
  return !(iob_style_flags(style) & IOB_STYLE_ON_THREADS) &&
         kind->start != NULL;
}

/* ---- printing ----------------------------------------------------------- */

/* The first error writing the results to stdout (an errno value), 0 while
 * there is none: a full disk or a closed descriptor must not pass for a
 * comparison whose results were written. */
static int stdout_errno;

static void stdout_failed(int err) {
  if (stdout_errno == 0)
    stdout_errno = err != 0 ? err : EIO;
}

/* printf() onto stdout, its failure kept. (A buffered write fails at the
 * flush rather than here: results_written() checks that.) */
static void vout(const char *fmt, va_list ap) {
  if (vprintf(fmt, ap) < 0)
    stdout_failed(errno);
}

CLI_PRINTF(1, 2)
static void out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vout(fmt, ap);
  va_end(ap);
}

void compare_out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vout(fmt, ap);
  va_end(ap);
}

/* Flush the results, then, unless @p keep_open, close stdout: exit()
 * would flush and close it unchecked. Say on stderr, once, if any write
 * failed. @return whether every write succeeded. */
static bool results_written(bool keep_open) {
  static bool said;
  if (fflush(stdout) != 0)
    stdout_failed(errno);
  if (ferror(stdout))
    stdout_failed(EIO);
  if (!keep_open && fclose(stdout) != 0)
    stdout_failed(errno);
  if (stdout_errno != 0 && !said) {
    cli_error(COMPARE_NAME, "cannot write to stdout: %s",
              strerror(stdout_errno));
    said = true;
  }
  return stdout_errno == 0;
}

/* The width for the text chart: the terminal's when stdout is one (else
 * COLUMNS, else 80), within what iob_export_chart() draws, 40..1000. */
static unsigned terminal_width(void) {
  unsigned width = 80;
  struct winsize ws;
  const char *columns = getenv("COLUMNS");
  if (isatty(1) && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    width = ws.ws_col;
  else if (columns != NULL && atoi(columns) > 0)
    width = (unsigned)atoi(columns);
  return width < 40 ? 40 : width > 1000 ? 1000 : width;
}

/* The baseline every speed-up is measured against: sequential, if it
 * ran (at the arrival rate of `like`, if given). */
static const result *find_sequential(const result *r, int n,
                                     const result *like) {
  for (int k = 0; k < n; k++)
    if (r[k].style == &iob_style_sequential &&
        (like == NULL || r[k].arrival_rate == like->arrival_rate))
      return &r[k];
  return NULL;
}

/* Sequential's time / this style's: NAN when sequential did not run. */
static double vs_sequential(const result *r, const result *base) {
  if (base == NULL || r->report.elapsed_ns == 0)
    return NAN;
  return (double)base->report.elapsed_ns / (double)r->report.elapsed_ns;
}

/* What the operations do, in words for titles: "N operations of D ms of
 * waiting". A kind without words of its own is named. */
static const char *work_words(const compare_opts *o) {
  static const struct {
    const char *kind, *words;
  } words[] = {
      {"wait", "waiting"},
      {"cpu", "computing"},
      {"tcp", "requests over TCP"},
      {COMPARE_PG_KIND, "PostgreSQL queries"},
      {COMPARE_HTTP_KIND, "HTTP requests"},
      {"file", "writing 256 KiB files (the duration is not used)"},
  };
  static char mixed[64];
  if (strcmp(o->work, "mixed") == 0) {
    snprintf(mixed, sizeof(mixed), "waiting, then %" PRIu32 " us of computing",
             o->cpu_us);
    return mixed;
  }
  for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
    if (strcmp(o->work, words[k].kind) == 0)
      return words[k].words;
  return o->work;
}

/* "10 operations of 200 ms of waiting, 2 CPU cores", or with
 * --arrival-rate "... arriving 50 a second (evenly) for 2 s, ...". */
static const char *run_title(const compare_opts *o, char *title, size_t size) {
  unsigned cores = uv_available_parallelism();
  if (o->nrates == 0) {
    snprintf(title, size,
             "%" PRIu32 " operations of %" PRIu64 " ms of %s, %u CPU cores",
             o->count, o->duration_ms, work_words(o), cores);
    return title;
  }
  char rates[160] = "";
  size_t len = 0;
  for (int k = 0; k < o->nrates && len < sizeof(rates); k++)
    len += (size_t)snprintf(rates + len, sizeof(rates) - len, "%s%g",
                            k == 0               ? ""
                            : k == o->nrates - 1 ? " or "
                                                 : ", ",
                            o->arrival_rates[k]);
  if (o->count_given && o->for_s == 0)
    snprintf(title, size,
             "%" PRIu32 " operations of %" PRIu64 " ms of %s arriving %s a "
             "second (%s), %u CPU cores",
             o->count, o->duration_ms, work_words(o), rates,
             o->poisson ? "Poisson" : "evenly", cores);
  else
    snprintf(title, size,
             "Operations of %" PRIu64 " ms of %s arriving %s a second (%s) "
             "for %g s, %u CPU cores",
             o->duration_ms, work_words(o), rates,
             o->poisson ? "Poisson" : "evenly",
             o->for_s > 0 ? o->for_s : COMPARE_FOR_DEFAULT_S, cores);
  return title;
}

static void print_table(const compare_opts *o, const result *r, int n) {
  const result *base = find_sequential(r, n, NULL);
  if (!o->quiet) {
    char title[256];
    out("%s\n\n", run_title(o, title, sizeof(title)));
  }
  bool arriving = o->nrates > 0;
  bool retries = o->retries > 0;
  out("%-11s %12s %8s %9s %8s %8s %10s %8s %8s%s%s%s\n", "style", "elapsed",
      "vs seq", "overlap", "peak", "threads", "cpu time", "p50", "p99",
      retries ? "  retries" : "", o->breaker ? "  refused" : "",
      o->hedge ? "   hedges      won" : "");
  for (int k = 0; k < n; k++) {
    const iob_report *rep = &r[k].report;
    double vs = vs_sequential(&r[k], find_sequential(r, n, &r[k]));
    char vs_text[16] = "-";
    if (isfinite(vs))
      snprintf(vs_text, sizeof(vs_text), "%.1fx", vs);
    out("%-11s %9.1f ms %8s %9.1f %8" PRIu32 " %8" PRIu32 " %7.1f ms",
        iob_style_name(r[k].style), ms(rep->elapsed_ns), vs_text, rep->speedup,
        rep->peak_in_flight, rep->threads, ms(rep->cpu_ns));
    /* Arriving at a rate, latency is from arrival: the queue counts. */
    const iob_percentiles *p =
        arriving ? &r[k].latency.total : &r[k].latency.running;
    if (r[k].latency_known)
      out(" %5.0f ms %5.0f ms", ms(p->p50_ns), ms(p->p99_ns));
    else
      out(" %8s %8s", "-", "-");
    if (retries)
      out(" %8" PRIu32, rep->retries);
    if (o->breaker)
      out(" %8" PRIu32, rep->breaker_refused);
    if (o->hedge && compare_hedges(r[k].style, r[k].config.kind))
      out(" %8" PRIu32 " %8" PRIu32, rep->hedges, rep->hedges_won);
    else if (o->hedge)
      out(" %8s %8s", "-", "-");
    out("\n");
  }
  if (!o->quiet) {
    char legend[800], folded[960];
    snprintf(legend, sizeof(legend),
             "vs seq: the sequential style's time / this style's%s; "
             "overlap: the operations' own times added up / this style's "
             "time (how many ran at once, on average); peak: the most at "
             "once; p50, p99: half, and 99%%, of the operations %s this "
             "long or less%s%s%s",
             base ? "" : " (sequential did not run)",
             arriving ? "took from when they were due to arrive to their end "
                        "(waiting in a queue included)"
                      : "ran",
             retries ? "; retries: attempts after the first, in all" : "",
             o->breaker ? "; refused: failed at once by the open breaker" : "",
             o->hedge ? "; hedges: second attempts, won: those first to "
                        "succeed (the loop styles only)"
                      : "");
    out("\n%s\n", cli_fold(folded, sizeof(folded), legend, 76, 0));
  }
}

static void print_csv(const compare_opts *o, const result *r, int n) {
  bool arriving = o->nrates > 0;
  out("%sstyle,elapsed_ms,", arriving ? "arrival_rate," : "");
  out("vs_sequential,overlap,peak_in_flight,threads,"
      "workers_used,cpu_ms,failed,attempts,retries,breaker_refused,hedges,"
      "hedges_won");
  static const char *const times[] = {"", "queued_", "total_"};
  for (int t = 0; t < 3; t++)
    out(",%sp50_ms,%sp90_ms,%sp99_ms,%sp999_ms,%smax_ms", times[t], times[t],
        times[t], times[t], times[t]);
  out("\n");
  for (int k = 0; k < n; k++) {
    const iob_report *rep = &r[k].report;
    double vs = vs_sequential(&r[k], find_sequential(r, n, &r[k]));
    char vs_text[32] = ""; /* empty: sequential did not run */
    if (isfinite(vs))
      snprintf(vs_text, sizeof(vs_text), "%.3f", vs);
    if (arriving)
      out("%g,", r[k].arrival_rate);
    out("%s,%.3f,%s,%.3f,%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%.3f,%" PRIu32
        ",%" PRIu64 ",%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%" PRIu32,
        iob_style_name(r[k].style), ms(rep->elapsed_ns), vs_text, rep->speedup,
        rep->peak_in_flight, rep->threads, rep->workers_used, ms(rep->cpu_ns),
        rep->failed, (uint64_t)rep->count + rep->retries, rep->retries,
        rep->breaker_refused, rep->hedges, rep->hedges_won);
    const iob_latency *l = &r[k].latency;
    const iob_percentiles *ps[] = {&l->running, &l->queued, &l->total};
    for (int t = 0; t < 3; t++) {
      const iob_percentiles *p = ps[t];
      if (r[k].latency_known) /* else empty fields: unknown */
        out(",%.3f,%.3f,%.3f,%.3f,%.3f", ms(p->p50_ns), ms(p->p90_ns),
            ms(p->p99_ns), ms(p->p999_ns), ms(p->max_ns));
      else
        out(",,,,,");
    }
    out("\n");
  }
}

/* The inputs, then a line per style as iobound-server reports a batch. */
static void print_json(const compare_opts *o, const result *r, int n) {
  out("{\"count\":%" PRIu32 ",\"duration_ms\":%" PRIu64
      ",\"work\":\"%s\",\"limit\":%" PRIu32 ",\"rate\":%g"
      ",\"burst\":%" PRIu32 ",\"retries_max\":%" PRIu32
      ",\"pool_size\":%u,\"cores\":%u,",
      o->count, o->duration_ms, o->work, o->limit, o->rate,
      o->rate > 0 ? (o->burst ? o->burst : 1) : 0, o->retries, iob_pool_size(),
      uv_available_parallelism());
  if (o->nrates > 0) { /* "arrivals":{"rates":[10,20],"law":"even",...} */
    out("\"arrivals\":{\"rates\":[");
    for (int k = 0; k < o->nrates; k++)
      out("%s%g", k ? "," : "", o->arrival_rates[k]);
    out("],\"law\":\"%s\",\"seed\":%" PRIu64 ",\"for_s\":%g},",
        o->poisson ? "poisson" : "even", o->seed,
        o->count_given && o->for_s == 0 ? 0
        : o->for_s > 0                  ? o->for_s
                                        : COMPARE_FOR_DEFAULT_S);
  }
  out("\"styles\":[");
  for (int k = 0; k < n; k++) {
    char line[1400];
    cli_json_batch b = {.config = &r[k].config,
                        .report = &r[k].report,
                        .vs_sequential =
                            vs_sequential(&r[k], find_sequential(r, n, &r[k])),
                        .latency = r[k].latency_known ? &r[k].latency : NULL,
                        .arrival_rate = r[k].arrival_rate};
    if (cli_json_report(line, sizeof(line), &b) < 0)
      snprintf(line, sizeof(line), "{}");
    out("%s\n%s", k ? "," : "", line);
  }
  out("\n]}\n");
}

/* The quickest style whose operations all succeeded, or NULL: a time
 * with failures in it is not the time of the work. */
static const result *fastest(const result *r, int n) {
  const result *best = NULL;
  for (int k = 0; k < n; k++)
    if (r[k].report.failed == 0 &&
        (best == NULL || r[k].report.elapsed_ns < best->report.elapsed_ns))
      best = &r[k];
  return best;
}

/* A plain sentence that says what the table shows, and why. */
static void print_verdict(const compare_opts *o, const result *r, int n) {
  if (o->nrates > 0) { /* what the latency says, not the time */
    char text[2048], folded[2400];
    compare_arrive_lesson(o, r, n, text, sizeof(text));
    out("\n%s\n", cli_fold(folded, sizeof(folded), text, 76, 0));
    return;
  }
  const result *base = find_sequential(r, n, NULL), *best = fastest(r, n);
  if (best == NULL) {
    out("\nNo style ran every operation without a failure, so none is "
        "called fastest: the failures are on stderr.\n");
    return;
  }
  if (n < 2)
    return;
  char text[512];
  int len = snprintf(text, sizeof(text), "The %s style was fastest",
                     iob_style_name(best->style));
  if (base != NULL && best != base)
    len += snprintf(text + len, sizeof(text) - (size_t)len,
                    ", %.1fx faster than one after another",
                    vs_sequential(best, base));
  if (cli_kind_blocks(best->report.kind))
    snprintf(text + len, sizeof(text) - (size_t)len,
             ". This work computes: however many operations overlap, only "
             "as many as the machine has cores (%u) make progress at once, so "
             "no style runs it much more than %ux faster than one after "
             "another; on the event loop it runs one operation after "
             "another, because computing blocks the loop.",
             best->report.cores, best->report.cores);
  else if (best->report.kind == &iob_kind_mixed)
    snprintf(text + len, sizeof(text) - (size_t)len,
             ". This work waits, then computes. One event loop overlaps the "
             "waits but computes on one core; threads compute on every core "
             "but hold a thread through every wait; an event loop per core "
             "(loops) overlaps the waits and computes on all %u cores.",
             best->report.cores);
  else if (best->report.kind == &iob_kind_file &&
           strcmp(iob_file_engine(), "pool") == 0)
    snprintf(text + len, sizeof(text) - (size_t)len,
             ". These are files on disk, and this process has no io_uring: "
             "each file operation of the event loop is a job on libuv's "
             "thread pool (%u threads), so the loop's files overlap no more "
             "than the pool's, and wait behind the pool's other work.",
             iob_pool_size());
  else if (best->report.kind == &iob_kind_file)
    snprintf(text + len, sizeof(text) - (size_t)len,
             ". These are files on disk: the event loop hands its file calls "
             "to the kernel's io_uring, without a thread, so they overlap as "
             "the threads' do and never wait for libuv's pool; the disk, not "
             "the number of threads, bounds them.");
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
  char folded[600];
  out("\n%s\n", cli_fold(folded, sizeof(folded), text, 76, 0));
}

/* Open every output file before anything runs: a typo in a path should
 * not cost a long comparison. */
static FILE *open_output(const char *path) {
  if (path == NULL)
    return NULL;
  FILE *f = fopen(path, "w");
  if (f == NULL)
    cli_error(COMPARE_NAME, "cannot write '%s': %s", path, strerror(errno));
  return f;
}

/* Write one timeline and close its file; false (and a message) on error:
 * a file cut short by a full disk is no timeline. */
static bool write_output(FILE *f, const char *path,
                         int (*export_fn)(FILE *, const iob_batch *const *,
                                          size_t),
                         const iob_batch *const *batches, size_t n) {
  if (f == NULL)
    return true;
  errno = 0; /* no stale reason from an earlier call */
  int err = export_fn(f, batches, n);
  int sys = errno; /* why the export's flush failed, if it did */
  if (fclose(f) != 0 && err == 0) {
    err = IOB_EIO;
    sys = errno;
  }
  if (err != 0)
    cli_error(COMPARE_NAME, "cannot write '%s': %s", path,
              err == IOB_EIO && sys != 0 ? strerror(sys) : iob_strerror(err));
  return err == 0;
}

static char svg_title[128];

static int svg_titled(FILE *f, const iob_batch *const *b, size_t n) {
  return iob_export_svg(f, b, n, svg_title);
}

/* The results on stdout, in the format asked for. */
static void print_results(const compare_opts *o, const result *r,
                          const iob_batch *const *batches, int n) {
  if (o->format == COMPARE_JSON) {
    print_json(o, r, n);
    return;
  }
  if (o->format == COMPARE_CSV) {
    print_csv(o, r, n);
    return;
  }
  if (o->nrates > 1) { /* a sweep: p99 against rate */
    char title[256];
    if (!o->quiet) {
      run_title(o, title, sizeof(title));
      title[0] = (char)tolower((unsigned char)title[0]);
      out("p99 latency, from arrival to end, of %s\n\n", title);
    }
    compare_arrive_table(o, r, n);
  } else {
    print_table(o, r, n);
  }
  if (o->timeline) {
    out("\n");
    if (iob_export_chart(stdout, batches, (size_t)n, terminal_width()) != 0)
      stdout_failed(errno); /* the chart's flush failed */
  }
  if (!o->quiet)
    print_verdict(o, r, n);
}

/* Write the timelines asked for, closing their files (each then NULL).
 * @return whether every one was written whole. */
static bool write_timelines(const compare_opts *o, FILE **svg, FILE **trace,
                            const iob_batch *const *batches, size_t n) {
  run_title(o, svg_title, sizeof(svg_title));
  /* Both are written even when the first fails: each says why. */
  bool svg_ok = write_output(*svg, o->svg_path, svg_titled, batches, n);
  bool trace_ok =
      write_output(*trace, o->trace_path, iob_export_trace, batches, n);
  *svg = *trace = NULL;
  return svg_ok && trace_ok;
}

/* Write a sweep's picture, p99 against rate, if asked for, and close
 * its file. @return whether it was written whole. */
static bool write_sweep(const compare_opts *o, FILE **svg, const result *r,
                        int n) {
  if (*svg == NULL)
    return true;
  char title[256], sub[300];
  run_title(o, title, sizeof(title));
  title[0] = (char)tolower((unsigned char)title[0]);
  snprintf(sub, sizeof(sub), "p99 latency of %s", title);
  errno = 0; /* no stale reason */
  int err = compare_arrive_svg(*svg, o, r, n, sub);
  if (fclose(*svg) != 0 && err == 0)
    err = IOB_EIO;
  *svg = NULL;
  if (err != 0)
    cli_error(COMPARE_NAME, "cannot write '%s': %s", o->svg_path,
              errno != 0 ? strerror(errno) : iob_strerror(err));
  return err == 0;
}

/* Say why each style that could not run could not. */
static void report_broken(const iob_style *const *broken, const int *err,
                          int n) {
  for (int k = 0; k < n; k++) {
    cli_error(COMPARE_NAME, "the %s style could not run: %s",
              iob_style_name(broken[k]), iob_strerror(err[k]));
    if (err[k] == IOB_EAGAIN && broken[k] == &iob_style_pool)
      cli_error(COMPARE_NAME,
                "the system refused the pool's %u threads: it allows about "
                "%" PRIu32 " more (ulimit -u, threads-max); use --pool-size "
                "with fewer",
                iob_pool_size(), iob_threads_available());
    else if (err[k] == IOB_EAGAIN)
      cli_error(COMPARE_NAME,
                "the system refused the %s style a thread: it allows about "
                "%" PRIu32 " more (ulimit -u, threads-max), or has too "
                "little memory left for their stacks (ulimit -v)",
                iob_style_name(broken[k]), iob_threads_available());
  }
}

/* --list-styles, --list-kinds: the names the program takes, one a line,
 * read from the library's tables, for scripts and the tests of the
 * manual page and the completion. */
static void print_list(compare_list list) {
  if (list == COMPARE_LIST_STYLES) {
    const iob_style *s;
    for (size_t k = 0; (s = iob_style_at(k)) != NULL; k++)
      out("%s\n", iob_style_name(s));
    return;
  }
  const char *kinds[COMPARE_KINDS_MAX];
  size_t n = compare_kind_names(kinds, COMPARE_KINDS_MAX);
  for (size_t k = 0; k < n; k++)
    out("%s\n", kinds[k]);
}

int main(int argc, char **argv) {
  compare_opts o;
  char error[256];
  int rc = compare_parse(argc, argv, &o, error, sizeof(error));
  bool to_run = o.action == CLI_RUN && o.list == COMPARE_LIST_NONE;
  if (rc == 0 && to_run)
    rc = compare_check_threads(&o, iob_threads_available(), error,
                               sizeof(error));
  if (rc == 0 && to_run)
    rc = compare_check_outputs(&o, error, sizeof(error));
  rc = cli_settle(COMPARE_NAME, rc, o.action, error, compare_usage());
  if (rc < 0 && o.list != COMPARE_LIST_NONE) {
    print_list(o.list);
    rc = 0;
  }
  if (rc == 0) /* the help, the version or a list: stdout must take it */
    return results_written(false) ? 0 : CLI_EX_FAILED;
  if (rc > 0)
    return rc;
  rc = 0;
  if (o.pool_size != 0 && iob_pool_request_size(o.pool_size) != 0) {
    cli_error(COMPARE_NAME, "cannot size the pool");
    return CLI_EX_FAILED;
  }
  FILE *svg = open_output(o.svg_path);
  FILE *trace = open_output(o.trace_path);
  if ((o.svg_path && svg == NULL) || (o.trace_path && trace == NULL))
    rc = CLI_EX_CANTCREAT;
  /* -q means no progress unless asked for by name. */
  bool progress =
      o.progress == COMPARE_PROGRESS_ALWAYS ||
      (o.progress == COMPARE_PROGRESS_AUTO && !o.quiet && isatty(2));
  if (rc == 0)
    rc = compare_work_start(&o);
  /* Every style runs (at each rate in turn); those that could not are
   * told of after the results of those that could. */
  enum { RUNS = COMPARE_STYLES_MAX * COMPARE_RATES_MAX };
  static result results[RUNS];
  static const iob_batch *batches[RUNS];
  static const iob_style *broken[RUNS];
  static int broken_err[RUNS];
  int nran = 0, nbroken = 0, failed = 0;
  bool started = rc == 0, written = true;
  /* A sweep stops at the first style that cannot run: its table and
   * picture need every style at every rate. */
  for (int q = 0; q < (o.nrates > 0 ? o.nrates : 1) && started &&
                  !(o.nrates > 1 && nbroken > 0);
       q++)
    for (int k = 0; k < o.nstyles; k++) {
      int err = run_style(&o, o.styles[k], o.nrates > 0 ? q : -1, progress,
                          &results[nran]);
      if (err != 0) {
        broken[nbroken] = o.styles[k];
        broken_err[nbroken++] = err;
        continue;
      }
      if (o.nrates > 1) { /* a sweep keeps its numbers, not its records */
        iob_batch_free(results[nran].batch);
        results[nran].batch = NULL;
      }
      batches[nran] = results[nran].batch;
      failed += results[nran++].report.failed != 0;
    }
  compare_work_stop();
  /* A sweep's table and picture need every style at every rate. */
  if (o.nrates > 1 && nbroken > 0)
    nran = 0;
  if (started && nran > 0) {
    print_results(&o, results, batches, nran);
    written = o.nrates > 1
                  ? write_sweep(&o, &svg, results, nran)
                  : write_timelines(&o, &svg, &trace, batches, (size_t)nran);
  }
  /* The results, then what kept a style from running. */
  written = results_written(true) && written;
  report_broken(broken, broken_err, nbroken);
  written = results_written(false) && written; /* closing can fail too */
  if (rc == 0 && (failed || nbroken || !written))
    rc = CLI_EX_FAILED;
  if (svg != NULL)
    fclose(svg);
  if (trace != NULL)
    fclose(trace);
  for (int k = 0; k < nran; k++)
    iob_batch_free(results[k].batch);
  return rc;
}
