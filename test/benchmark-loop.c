/* The event-loop style against one plain uv_timer_t per wait.
 *
 *   benchmark-loop [million] [mixed] [limit] [scaling]   (default: all)
 *
 * million  1,000,000 waits of 1000 ms started at once, then 10,000,000
 * mixed    1,000,000 waits of 1..1000 ms (uniform, fixed seed)
 * limit    1,000,000 waits of 10 ms, at most 10,000 in flight
 * scaling  1,000 to 10,000,000 waits of 100 ms: the cost per operation
 *
 * The baseline is written the way libuv's own benchmark-million-timers is:
 * init every timer, start it, run the loop, close them all. With a limit,
 * each timer starts the next wait from its callback. Each measurement runs
 * in a fresh child process (benchmark.h), so peak RSS is its own. */
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "benchmark.h"
#include "iobound.h"

typedef struct loop_case {
  uint32_t count;
  uint32_t duration_ms; /* every wait, or the longest when mixed */
  bool mixed;           /* waits of 1..duration_ms, uniform */
  uint32_t limit;       /* most waits in flight; 0 is no limit */
} loop_case;

/* One side's figures from one run. */
typedef struct side_result {
  double setup_ms;       /* iobound: create + start; plain: init + start all */
  double done_ms;        /* first setup step to the last wait's end */
  double elapsed_ms;     /* iobound: the report's, from iob_batch_start */
  double cleanup_ms;     /* iobound: report + free; plain: close every timer */
  double cpu_ms;         /* CPU time, first setup step to the last wait's end */
  double bytes_per_wait; /* growth of peak RSS at the end, per wait */
  double peak_mib;       /* peak RSS of the whole child */
  uint32_t peak_in_flight;
} side_result;

/* The ideal: every wait overlaps every other it may overlap. */
static double ideal_ms(const loop_case *lc) {
  if (lc->limit == 0 || lc->limit >= lc->count)
    return lc->duration_ms;
  uint32_t rounds = (lc->count + lc->limit - 1) / lc->limit;
  return (double)rounds * lc->duration_ms;
}

/* The case's own waits, if mixed: 1..duration_ms, the same every run
 * (splitmix64, fixed seed); else NULL. Returns 0, or -1 without memory. */
static int make_durations(const loop_case *lc, uint32_t **out) {
  *out = NULL;
  if (!lc->mixed)
    return 0;
  uint32_t *d = malloc((size_t)lc->count * sizeof(*d));
  if (d == NULL)
    return -1;
  uint64_t x = 0x1b873593;
  for (uint32_t i = 0; i < lc->count; i++) {
    uint64_t z = (x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    d[i] = 1 + (uint32_t)((z ^ (z >> 31)) % lc->duration_ms);
  }
  *out = d;
  return 0;
}

/* ---- iobound's event-loop style ----------------------------------------- */

typedef struct lib_end {
  uint64_t at_ns; /* when the batch's callback ran */
  long peak_kib;
  double cpu_ms;
  int status;
} lib_end;

static void on_batch_done(iob_batch *batch, int status) {
  lib_end *end = iob_batch_data(batch);
  end->at_ns = uv_hrtime();
  end->peak_kib = bench_peak_rss_kib(); /* before the report allocates */
  end->cpu_ms = bench_cpu_ms();
  end->status = status;
}

/* Every wait settled, succeeded and lasted its duration. */
static int check_records(const iob_batch *b, const loop_case *lc,
                         const uint32_t *durations) {
  uint32_t n;
  const iob_record *rec = iob_batch_records(b, &n);
  if (rec == NULL || n != lc->count)
    return -1;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t d = durations ? durations[i] : lc->duration_ms;
    if (rec[i].status != 0 ||
        rec[i].finished_ns - rec[i].started_ns < d * 1000000) {
      fprintf(stderr, "benchmark-loop: wait %" PRIu32 " is wrong\n", i);
      return -1;
    }
  }
  return 0;
}

static int run_library(const void *in, void *out) {
  const loop_case *lc = in;
  side_result *r = out;
  uint32_t *durations;
  if (make_durations(lc, &durations) != 0)
    return -1;
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return -1;

  lib_end end = {0};
  iob_config config;
  iob_config_init(&config);
  config.style = &iob_style_loop;
  config.count = lc->count;
  config.duration_ms = lc->duration_ms;
  config.durations_ms = durations;
  config.max_in_flight = lc->limit;
  config.data = &end;

  long rss0 = bench_peak_rss_kib();
  double cpu0 = bench_cpu_ms();
  uint64_t t0 = uv_hrtime();
  iob_batch *batch;
  int err = iob_batch_create(&batch, &config);
  uint64_t t1 = uv_hrtime();
  if (err == 0)
    err = iob_batch_start(batch, &loop, on_batch_done);
  uint64_t t2 = uv_hrtime();
  if (err == 0) {
    uv_run(&loop, UV_RUN_DEFAULT);
    err = end.status;
  }
  iob_report report;
  if (err == 0)
    err = iob_batch_report(batch, &report);
  if (err == 0)
    err = check_records(batch, lc, durations);
  if (err == 0 && report.failed != 0)
    err = -1;
  iob_batch_free(batch);
  uint64_t t3 = uv_hrtime();
  free(durations);
  if (uv_loop_close(&loop) != 0 || err != 0) {
    fprintf(stderr, "benchmark-loop: the batch failed: %s\n",
            iob_strerror(err));
    return -1;
  }

  r->setup_ms = BENCH_MS(t2 - t0);
  r->elapsed_ms = BENCH_MS(report.elapsed_ns);
  r->done_ms = BENCH_MS(t1 - t0) + r->elapsed_ms;
  r->cleanup_ms = BENCH_MS(t3 - end.at_ns);
  r->cpu_ms = end.cpu_ms - cpu0;
  r->bytes_per_wait = bench_bytes_per(rss0, end.peak_kib, lc->count);
  r->peak_mib = (double)bench_peak_rss_kib() / 1024;
  r->peak_in_flight = report.peak_in_flight;
  return 0;
}

/* ---- the baseline: one plain uv_timer_t per wait ------------------------ */

typedef struct plain_run {
  const loop_case *lc;
  const uint32_t *durations;
  uint32_t next;  /* next wait to start */
  uint32_t fired; /* waits over */
  uint64_t last_ns;
  long peak_kib;
  double cpu_ms;
} plain_run;

static uint64_t plain_wait_ms(const plain_run *run, uint32_t i) {
  return run->durations ? run->durations[i] : run->lc->duration_ms;
}

static void on_plain_timer(uv_timer_t *timer) {
  plain_run *run = timer->loop->data;
  if (++run->fired == run->lc->count) {
    run->last_ns = uv_hrtime();
    run->peak_kib = bench_peak_rss_kib();
    run->cpu_ms = bench_cpu_ms();
  }
  if (run->next < run->lc->count) {
    uint64_t wait = plain_wait_ms(run, run->next++);
    uv_timer_start(timer, on_plain_timer, wait, 0);
  }
}

static int run_plain(const void *in, void *out) {
  const loop_case *lc = in;
  side_result *r = out;
  plain_run run = {.lc = lc};
  uint32_t *durations;
  if (make_durations(lc, &durations) != 0)
    return -1;
  run.durations = durations;
  uint32_t n = lc->limit != 0 && lc->limit < lc->count ? lc->limit : lc->count;
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return -1;
  loop.data = &run;

  long rss0 = bench_peak_rss_kib();
  double cpu0 = bench_cpu_ms();
  uv_timer_t *timers = malloc((size_t)n * sizeof(*timers));
  if (timers == NULL)
    return -1;
  uint64_t t0 = uv_hrtime();
  for (uint32_t i = 0; i < n; i++) {
    uv_timer_init(&loop, &timers[i]);
    uv_timer_start(&timers[i], on_plain_timer, plain_wait_ms(&run, run.next++),
                   0);
  }
  uint64_t t1 = uv_hrtime();
  uv_run(&loop, UV_RUN_DEFAULT);
  uint64_t t2 = uv_hrtime();
  for (uint32_t i = 0; i < n; i++)
    uv_close((uv_handle_t *)&timers[i], NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uint64_t t3 = uv_hrtime();
  free(timers);
  free(durations);
  if (uv_loop_close(&loop) != 0 || run.fired != lc->count) {
    fprintf(stderr, "benchmark-loop: the plain timers did not all fire\n");
    return -1;
  }

  r->setup_ms = BENCH_MS(t1 - t0);
  r->done_ms = r->elapsed_ms = BENCH_MS(run.last_ns - t0);
  r->cleanup_ms = BENCH_MS(t3 - t2);
  r->cpu_ms = run.cpu_ms - cpu0;
  r->bytes_per_wait = bench_bytes_per(rss0, run.peak_kib, lc->count);
  r->peak_mib = (double)bench_peak_rss_kib() / 1024;
  r->peak_in_flight = n;
  return 0;
}

/* ---- measuring and printing --------------------------------------------- */

/* Both sides `runs` times, in turn; each side's median run by end time.
 * `quiet` leaves out the list of runs. */
static int measure(const loop_case *lc, int runs, bool quiet, side_result *lib,
                   side_result *plain) {
  const bench_fn fn[2] = {run_library, run_plain};
  void *const out[2] = {lib, plain};
  double done[2][BENCH_MAX_RUNS];
  if (bench_compare(lc, fn, out, sizeof(side_result),
                    offsetof(side_result, done_ms), runs, done) != 0)
    return -1;
  if (quiet)
    return 0;
  printf("  runs (done ms):");
  for (int k = 0; k < runs; k++)
    printf(" %.1f/%.1f", done[0][k], done[1][k]);
  printf("  (iobound/plain, sorted; the medians follow)\n");
  return 0;
}

static void print_row(const char *name, const side_result *r, double ideal) {
  printf("  %-20s %10.1f %10.1f %10.1f %10.1f %10.1f %9.1f\n", name,
         r->setup_ms, r->done_ms, r->done_ms - ideal, r->cleanup_ms, r->cpu_ms,
         r->bytes_per_wait);
}

static void print_sides(const loop_case *lc, const side_result *lib,
                        const side_result *plain) {
  double ideal = ideal_ms(lc);
  printf("  %-20s %10s %10s %10s %10s %10s %9s\n", "", "setup ms", "done ms",
         "over ms", "cleanup ms", "CPU ms", "B/wait");
  print_row("iobound loop style", lib, ideal);
  print_row("plain uv_timer_t", plain, ideal);
  printf("  %-20s %10s %9.2fx %9.2fx %10s %9.2fx %8.2fx\n",
         "ratio plain/iobound", "", plain->done_ms / lib->done_ms,
         (plain->done_ms - ideal) / (lib->done_ms - ideal), "",
         plain->cpu_ms / lib->cpu_ms,
         plain->bytes_per_wait / lib->bytes_per_wait);
  printf("  iobound: from iob_batch_start to the last wait's end %.1f ms "
         "(plain/iobound %.2fx), ideal %.0f ms\n",
         lib->elapsed_ms, plain->done_ms / lib->elapsed_ms, ideal);
  printf("  iobound: peak in flight %" PRIu32 ", peak RSS %.1f MiB "
         "(plain %.1f MiB)\n",
         lib->peak_in_flight, lib->peak_mib, plain->peak_mib);
}

static void print_case(const loop_case *lc, const char *what) {
  printf("\n== %" PRIu32 " waits of %s%" PRIu32 " ms%s", lc->count,
         lc->mixed ? "1.." : "", lc->duration_ms, what);
  if (lc->limit != 0)
    printf(", at most %" PRIu32 " in flight", lc->limit);
  printf(" ==\n");
}

static int section_million(void) {
  loop_case lc = {.count = 1000000, .duration_ms = 1000};
  side_result lib, plain;
  print_case(&lc, ", all started at once");
  if (measure(&lc, 3, false, &lib, &plain) != 0)
    return -1;
  print_sides(&lc, &lib, &plain);
  bench_target(lib.elapsed_ms <= 1050,
               "the batch is done within 1.05 s of its start (%.1f ms)",
               lib.elapsed_ms);
  bench_target(plain.done_ms / lib.done_ms >= 1.5,
               "at least 1.5x faster than plain timers, counting "
               "iob_batch_create (%.2fx)",
               plain.done_ms / lib.done_ms);
  bench_target(lib.bytes_per_wait <= 64,
               "at most 64 bytes per wait, record included (%.1f B)",
               lib.bytes_per_wait);

  lc.count = 10000000;
  print_case(&lc, ", all started at once (one run)");
  if (measure(&lc, 1, false, &lib, &plain) != 0)
    return -1;
  print_sides(&lc, &lib, &plain);
  return 0;
}

/* Within 10% of the ideal time. */
static int section_near_ideal(const loop_case *lc, const char *what) {
  side_result lib, plain;
  print_case(lc, what);
  if (measure(lc, 3, false, &lib, &plain) != 0)
    return -1;
  print_sides(lc, &lib, &plain);
  bench_target(lib.elapsed_ms <= 1.1 * ideal_ms(lc),
               "within 10%% of the ideal %.0f ms (%.1f ms, %+.1f%%)",
               ideal_ms(lc), lib.elapsed_ms,
               100 * (lib.elapsed_ms / ideal_ms(lc) - 1));
  return 0;
}

static int section_mixed(void) {
  loop_case lc = {.count = 1000000, .duration_ms = 1000, .mixed = true};
  return section_near_ideal(&lc, ", uniform");
}

static int section_limit(void) {
  loop_case lc = {.count = 1000000, .duration_ms = 10, .limit = 10000};
  return section_near_ideal(&lc, "");
}

/* The cost of starting and finishing a wait, from 1,000 to 10,000,000. */
static int section_scaling(void) {
  enum { SIZES = 5 };
  static const uint32_t counts[SIZES] = {1000, 10000, 100000, 1000000,
                                         10000000};
  double per_op[SIZES];
  printf("\n== scaling: N waits of 100 ms, all started at once ==\n");
  printf("  over = done - 100 ms; medians of 3 runs (1 for 10,000,000)\n");
  printf("  %10s | %12s %12s %8s | %12s %12s %8s | %7s\n", "waits",
         "over ns/op", "CPU ns/op", "B/op", "plain over", "plain CPU", "B/op",
         "CPU x");
  for (int k = 0; k < SIZES; k++) {
    loop_case lc = {.count = counts[k], .duration_ms = 100};
    side_result lib, plain;
    if (measure(&lc, counts[k] >= 10000000 ? 1 : 3, true, &lib, &plain) != 0)
      return -1;
    double n = counts[k];
    per_op[k] = lib.cpu_ms * 1e6 / n;
    printf("  %10" PRIu32 " | %12.1f %12.1f %8.1f | %12.1f %12.1f %8.1f | "
           "%6.2fx\n",
           counts[k], (lib.done_ms - 100) * 1e6 / n, per_op[k],
           lib.bytes_per_wait, (plain.done_ms - 100) * 1e6 / n,
           plain.cpu_ms * 1e6 / n, plain.bytes_per_wait,
           plain.cpu_ms / lib.cpu_ms);
  }
  double growth = per_op[SIZES - 1] / per_op[2];
  bench_target(growth < 2,
               "O(1): CPU per wait grows %.2fx from 100,000 to 10,000,000 "
               "waits (under 2x)",
               growth);
  return 0;
}

typedef struct section {
  const char *name;
  int (*run)(void);
} section;

static const section sections[] = {
    {"million", section_million},
    {"mixed", section_mixed},
    {"limit", section_limit},
    {"scaling", section_scaling},
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

int main(int argc, char **argv) {
  bool chosen[NSECTIONS] = {false};
  for (int a = 1; a < argc; a++) {
    size_t k = 0;
    while (k < NSECTIONS && strcmp(argv[a], sections[k].name) != 0)
      k++;
    if (k == NSECTIONS) {
      fprintf(stderr,
              "usage: benchmark-loop [million] [mixed] [limit] [scaling]\n");
      return 2;
    }
    chosen[k] = true;
  }
  printf("benchmark-loop: iobound %s, libuv %s\n", iob_version(),
         uv_version_string());
  printf("setup: iob_batch_create + iob_batch_start, or init + start of "
         "every timer\ndone: from the first setup step to the last wait's "
         "end; over: done - ideal\nCPU: user + system, setup to the end; "
         "B/wait: growth of peak RSS per wait\n");
  for (size_t k = 0; k < NSECTIONS; k++) {
    if ((argc == 1 || chosen[k]) && sections[k].run() != 0) {
      fprintf(stderr, "benchmark-loop: %s failed to run\n", sections[k].name);
      return 1;
    }
  }
  return 0;
}
