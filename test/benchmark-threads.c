/* A thread per operation: 10,000 waits of 1000 ms, each blocking a thread
 * of its own, against plain pthreads doing the same: 10,000 threads with
 * 64 KiB stacks, each sleeping 1 s, all joined.
 *
 *   benchmark-threads [COUNT]   (default 10000)
 *
 * iobound's side finds the thread-per-operation style by its short name,
 * "threads", with iob_style_find(); in a build without it, it says so and
 * measures only the baseline. */
#include <inttypes.h>
#include <pthread.h>

#include "benchmark.h"
#include "iobound.h"

#define STYLE_NAME "threads"
#define WAIT_MS 1000
#define STACK_SIZE (64 * 1024)

typedef struct threads_case {
  uint32_t count;
  const iob_style *style; /* iobound's side only */
} threads_case;

typedef struct threads_result {
  double start_ms; /* first thread asked for to the last one running */
  double done_ms;  /* first thread asked for to the last wait's end */
  double bytes_per_thread;
  double peak_mib;
  uint32_t peak_in_flight; /* iobound only */
} threads_result;

/* ---- iobound's thread-per-operation style ------------------------------- */

static int run_library(const void *in, void *out) {
  const threads_case *tc = in;
  threads_result *r = out;
  iob_config config;
  iob_config_init(&config);
  config.style = tc->style;
  config.count = tc->count;
  config.duration_ms = WAIT_MS;
  long rss0 = bench_peak_rss_kib();
  iob_batch *batch;
  iob_report report;
  int err = iob_run(&batch, &config);
  if (err == 0)
    err = iob_batch_report(batch, &report);
  const iob_record *rec = iob_batch_records(batch, NULL);
  for (uint32_t i = 0; err == 0 && i < tc->count; i++)
    if (BENCH_MS(rec[i].started_ns) > r->start_ms)
      r->start_ms = BENCH_MS(rec[i].started_ns);
  iob_batch_free(batch);
  if (err != 0 || report.failed != 0) {
    fprintf(stderr, "benchmark-threads: the batch failed: %s\n",
            iob_strerror(err != 0 ? err : report.status));
    return -1;
  }
  r->done_ms = BENCH_MS(report.elapsed_ns);
  r->bytes_per_thread = bench_bytes_per(rss0, bench_peak_rss_kib(), tc->count);
  r->peak_mib = (double)bench_peak_rss_kib() / 1024;
  r->peak_in_flight = report.peak_in_flight;
  return 0;
}

/* ---- the baseline: plain pthreads --------------------------------------- */

static void *sleeper(void *arg) {
  (void)arg;
  uv_sleep(WAIT_MS); /* what iobound's blocking work does */
  return NULL;
}

static int run_plain(const void *in, void *out) {
  const threads_case *tc = in;
  threads_result *r = out;
  pthread_t *threads = malloc((size_t)tc->count * sizeof(*threads));
  pthread_attr_t attr;
  if (threads == NULL || pthread_attr_init(&attr) != 0 ||
      pthread_attr_setstacksize(&attr, STACK_SIZE) != 0)
    return -1;
  long rss0 = bench_peak_rss_kib();
  uint64_t t0 = uv_hrtime();
  uint32_t made = 0;
  int err = 0;
  while (made < tc->count &&
         (err = pthread_create(&threads[made], &attr, sleeper, NULL)) == 0)
    made++;
  uint64_t t1 = uv_hrtime();
  for (uint32_t i = 0; i < made; i++)
    pthread_join(threads[i], NULL);
  uint64_t t2 = uv_hrtime();
  pthread_attr_destroy(&attr);
  free(threads);
  if (made < tc->count) {
    fprintf(stderr,
            "benchmark-threads: thread %" PRIu32 " of %" PRIu32
            " could not start: %s\n",
            made + 1, tc->count, uv_strerror(uv_translate_sys_error(err)));
    return -1;
  }
  r->start_ms = BENCH_MS(t1 - t0); /* the last pthread_create() returned */
  r->done_ms = BENCH_MS(t2 - t0);
  r->bytes_per_thread = bench_bytes_per(rss0, bench_peak_rss_kib(), tc->count);
  r->peak_mib = (double)bench_peak_rss_kib() / 1024;
  return 0;
}

/* ---- measuring and printing --------------------------------------------- */

static void print_side(const char *name, const threads_result *r) {
  printf("  %-22s %10.1f %10.1f %10.1f %14.0f %9.1f\n", name, r->start_ms,
         r->done_ms, r->done_ms - WAIT_MS, r->bytes_per_thread, r->peak_mib);
}

int main(int argc, char **argv) {
  threads_case tc = {.count = 10000};
  if (argc > 2 || (argc == 2 && (sscanf(argv[1], "%" SCNu32, &tc.count) != 1 ||
                                 tc.count == 0))) {
    fprintf(stderr, "usage: benchmark-threads [COUNT]\n");
    return 2;
  }
  printf("benchmark-threads: iobound %s, libuv %s\n", iob_version(),
         uv_version_string());
  printf("\n== %" PRIu32 " waits of %d ms, one thread each (%d KiB stacks "
         "for plain pthreads) ==\n",
         tc.count, WAIT_MS, STACK_SIZE / 1024);
  printf("  %-22s %10s %10s %10s %14s %9s\n", "", "start ms", "done ms",
         "over ms", "RSS B/thread", "peak MiB");

  threads_result plain, lib;
  if (bench_in_child(run_plain, &tc, &plain, sizeof(plain)) != 0) {
    fprintf(stderr, "benchmark-threads: the pthread baseline failed\n");
    return 1;
  }
  tc.style = iob_style_find(STYLE_NAME);
  bool have_style = tc.style != NULL;
  if (have_style && bench_in_child(run_library, &tc, &lib, sizeof(lib)) != 0) {
    fprintf(stderr, "benchmark-threads: the %s style failed\n", STYLE_NAME);
    return 1;
  }
  if (have_style)
    print_side("iobound " STYLE_NAME " style", &lib);
  print_side("plain pthreads", &plain);
  if (!have_style) {
    printf("  iobound: no \"" STYLE_NAME "\" style in this build yet: "
           "baseline only\n");
    printf("target not measured: within 1.1x of plain pthreads\n");
    return 0;
  }
  printf("  %-22s %10s %9.2fx %9.2fx %13.2fx\n", "ratio iobound/plain", "",
         lib.done_ms / plain.done_ms,
         (lib.done_ms - WAIT_MS) / (plain.done_ms - WAIT_MS),
         lib.bytes_per_thread / plain.bytes_per_thread);
  bench_target(lib.done_ms <= 1.1 * plain.done_ms,
               "within 1.1x of plain pthreads (%.2fx)",
               lib.done_ms / plain.done_ms);
  return 0;
}
