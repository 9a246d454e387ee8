/* Files on disk (iob_kind_file): what users do not expect of the loop.
 *
 * libuv has no asynchronous file I/O here: every uv_fs_*() request with a
 * callback is a job on its thread pool (4 threads by default). So the
 * loop style's files, all "in flight" at once, are written 4 requests at
 * a time, and they queue behind whatever else the pool runs.
 *
 *   benchmark-file [DIR]   (default: a new directory under /tmp, removed)
 *
 * 1. 64 writes of 256 KiB with fsync in each style.
 * 2. 16 such writes started beside a pool batch of 4 waits of 200 ms on
 *    the same loop (the pool style's 4 jobs take the pool's 4 threads),
 *    for the file batch in the loop, workers and threads styles.
 *
 * Every measurement runs in a fresh child process (benchmark.h), so that
 * each one meets libuv's pool new; a case runs RUNS times, in turn with
 * the others, and the run with the median elapsed time is shown. */
#include <inttypes.h>
#include <stddef.h>

#include "benchmark.h"
#include "iobound.h"

#define RUNS 5
#define COUNT 64
#define KIB 256
#define BESIDE_COUNT 16
#define WAITS 4
#define WAIT_MS 200

static char dir[256];

typedef struct file_case {
  const iob_style *style;
  bool beside; /* started after a pool batch of WAITS waits */
  uint32_t count;
} file_case;

typedef struct file_result {
  double elapsed_ms;   /* the file batch's */
  double first_ms;     /* its first operation's end, from its start */
  double median_op_ms; /* median of finished - started */
  double mean_wait_ms; /* mean of started - queued */
  uint32_t peak, threads, failed;
} file_result;

typedef struct pair {
  iob_batch *file, *waits;
  int ended;
} pair;

static void on_end(iob_batch *batch, int status) {
  pair *p = iob_batch_data(batch);
  p->ended++;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int run_case(const void *in, void *out) {
  const file_case *fc = in;
  file_result *r = out;
  iob_file_options o;
  iob_file_options_init(&o);
  o.size_kib = KIB;
  o.fsync = 1;
  iob_file_target *target;
  int err = iob_file_target_create(&target, dir, &o);
  if (err != 0) {
    fprintf(stderr, "benchmark-file: %s: %s\n", dir, iob_strerror(err));
    return -1;
  }
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return -1;
  pair p = {0};
  iob_config c;
  if (fc->beside) {
    iob_config_init(&c);
    c.style = &iob_style_pool;
    c.count = WAITS;
    c.duration_ms = WAIT_MS;
    c.data = &p;
    if (iob_batch_create(&p.waits, &c) != 0 ||
        iob_batch_start(p.waits, &loop, on_end) != 0)
      return -1;
  }
  iob_config_init(&c);
  c.style = fc->style;
  c.kind = &iob_kind_file;
  c.target = target;
  c.count = fc->count;
  c.data = &p;
  if (iob_batch_create(&p.file, &c) != 0 ||
      iob_batch_start(p.file, &loop, on_end) != 0)
    return -1;
  uv_run(&loop, UV_RUN_DEFAULT);
  iob_report rep;
  if (iob_batch_report(p.file, &rep) != 0)
    return -1;
  uint32_t n;
  const iob_record *rec = iob_batch_records(p.file, &n);
  double *ops = malloc(n * sizeof(*ops));
  if (ops == NULL)
    return -1;
  double first = 1e300, wait = 0;
  for (uint32_t i = 0; i < n; i++) {
    ops[i] = BENCH_MS(rec[i].finished_ns - rec[i].started_ns);
    wait += BENCH_MS(rec[i].started_ns - rec[i].queued_ns);
    if (BENCH_MS(rec[i].finished_ns) < first)
      first = BENCH_MS(rec[i].finished_ns);
  }
  qsort(ops, n, sizeof(*ops), cmp_double);
  r->elapsed_ms = BENCH_MS(rep.elapsed_ns);
  r->first_ms = first;
  r->median_op_ms = ops[n / 2];
  r->mean_wait_ms = wait / n;
  r->peak = rep.peak_in_flight;
  r->threads = rep.threads;
  r->failed = rep.failed;
  free(ops);
  iob_batch_free(p.file);
  iob_batch_free(p.waits);
  iob_file_target_destroy(target);
  return uv_loop_close(&loop) == 0 && p.ended == (fc->beside ? 2 : 1) &&
                 r->failed == 0
             ? 0
             : -1;
}

/* Each case RUNS times, the cases in turn; out[k] gets case k's run of
 * median elapsed time. */
static int measure(const file_case *cases, int ncases, file_result *out) {
  file_result *all = calloc((size_t)ncases * RUNS, sizeof(*all));
  if (all == NULL)
    return -1;
  for (int run = 0; run < RUNS; run++)
    for (int k = 0; k < ncases; k++)
      if (bench_in_child(run_case, &cases[k], &all[k * RUNS + run],
                         sizeof(*all)) != 0) {
        fprintf(stderr, "benchmark-file: the %s style failed\n",
                iob_style_name(cases[k].style));
        free(all);
        return -1;
      }
  for (int k = 0; k < ncases; k++) {
    file_result *r = &all[k * RUNS];
    for (int i = 1; i < RUNS; i++) /* insertion sort by elapsed */
      for (int j = i; j > 0 && r[j - 1].elapsed_ms > r[j].elapsed_ms; j--) {
        file_result t = r[j];
        r[j] = r[j - 1];
        r[j - 1] = t;
      }
    out[k] = r[RUNS / 2];
  }
  free(all);
  return 0;
}

int main(int argc, char **argv) {
  bool own = argc < 2;
  if (argc > 2) {
    fprintf(stderr, "usage: benchmark-file [DIR]\n");
    return 2;
  }
  if (own) {
    snprintf(dir, sizeof(dir), "/tmp/iobound-benchmark-file-XXXXXX");
    if (mkdtemp(dir) == NULL) {
      perror("benchmark-file: mkdtemp");
      return 1;
    }
  } else {
    snprintf(dir, sizeof(dir), "%s", argv[1]);
  }
  printf("benchmark-file: iobound %s, libuv %s, libuv's pool: %u threads, "
         "files in %s\n",
         iob_version(), uv_version_string(), iob_pool_size(), dir);

  const iob_style *styles[] = {&iob_style_sequential, &iob_style_loop,
                               &iob_style_pool, &iob_style_threads,
                               &iob_style_workers};
  enum { NSTYLES = sizeof(styles) / sizeof(styles[0]) };
  file_case alone[NSTYLES];
  file_result ra[NSTYLES];
  for (int k = 0; k < NSTYLES; k++)
    alone[k] = (file_case){.style = styles[k], .count = COUNT};
  int rc = 1;
  if (measure(alone, NSTYLES, ra) != 0)
    goto out;
  printf("\n== %d writes of %d KiB with fsync: medians of %d runs ==\n", COUNT,
         KIB, RUNS);
  printf("%-11s %10s %6s %8s %13s %13s\n", "style", "elapsed", "peak",
         "threads", "op (median)", "queued (mean)");
  for (int k = 0; k < NSTYLES; k++)
    printf("%-11s %7.1f ms %6" PRIu32 " %8" PRIu32 " %10.1f ms %10.1f ms\n",
           iob_style_name(styles[k]), ra[k].elapsed_ms, ra[k].peak,
           ra[k].threads, ra[k].median_op_ms, ra[k].mean_wait_ms);

  const iob_style *beside_styles[] = {&iob_style_loop, &iob_style_workers,
                                      &iob_style_threads};
  enum { NB = sizeof(beside_styles) / sizeof(beside_styles[0]) };
  file_case beside[2 * NB];
  file_result rb[2 * NB];
  for (int k = 0; k < NB; k++) {
    beside[2 * k] =
        (file_case){.style = beside_styles[k], .count = BESIDE_COUNT};
    beside[2 * k + 1] = beside[2 * k];
    beside[2 * k + 1].beside = true;
  }
  if (measure(beside, 2 * NB, rb) != 0)
    goto out;
  printf("\n== %d writes of %d KiB with fsync, alone and beside a pool batch "
         "of %d waits of %d ms on the same loop ==\n",
         BESIDE_COUNT, KIB, WAITS, WAIT_MS);
  printf("%-11s %10s %12s %12s %14s\n", "file style", "alone", "beside",
         "first done", "op (median)");
  for (int k = 0; k < NB; k++)
    printf("%-11s %7.1f ms %9.1f ms %9.1f ms %11.1f ms\n",
           iob_style_name(beside_styles[k]), rb[2 * k].elapsed_ms,
           rb[2 * k + 1].elapsed_ms, rb[2 * k + 1].first_ms,
           rb[2 * k + 1].median_op_ms);
  printf("(first done and op: beside the waits)\n");
  bench_target(rb[1].first_ms >= WAIT_MS * 0.9,
               "the loop style's first file waits for the pool: done after "
               "%.1f ms, behind waits of %d ms",
               rb[1].first_ms, WAIT_MS);
  bench_target(rb[3].elapsed_ms < rb[2].elapsed_ms * 1.5 + 20,
               "the workers style's files do not wait for libuv's pool: "
               "%.1f ms beside its waits, %.1f ms alone",
               rb[3].elapsed_ms, rb[2].elapsed_ms);
  rc = 0;
out:
  if (own && rmdir(dir) != 0) {
    fprintf(stderr, "benchmark-file: %s was not left empty\n", dir);
    rc = 1;
  }
  return rc;
}
