/* The thread-pool style: N blocking waits on P pool threads take
 * ceil(N / P) rounds of one wait each. For P = 1 to 128, 10 * P waits of
 * 100 ms, ideally 1000 ms; the baseline is plain uv_queue_work() jobs that
 * uv_sleep() the same time.
 *
 *   benchmark-pool [MAX_THREADS]   (default 128; P runs 1, 2, 4... up to it)
 *
 * libuv sizes its pool once per process, at first use: every measurement
 * runs in a fresh child process (benchmark.h) that asks for its own size
 * before anything touches the pool. */
#include <inttypes.h>
#include <stddef.h>

#include "benchmark.h"
#include "iobound.h"

#define ROUNDS 10
#define WAIT_MS 100

typedef struct pool_case {
  unsigned int threads;
  uint32_t count;
} pool_case;

typedef struct pool_result {
  double done_ms; /* first job handed to the pool to the last one's end */
  double peak_mib;
  uint32_t threads;      /* what the pool had */
  uint32_t workers_used; /* iobound only */
  uint32_t peak_in_flight;
} pool_result;

static int run_library(const void *in, void *out) {
  const pool_case *pc = in;
  pool_result *r = out;
  int err = iob_pool_request_size(pc->threads);
  if (err != 0) {
    fprintf(stderr, "benchmark-pool: %s\n", iob_strerror(err));
    return -1;
  }
  iob_config config;
  iob_config_init(&config);
  config.style = &iob_style_pool;
  config.count = pc->count;
  config.duration_ms = WAIT_MS;
  iob_batch *batch;
  iob_report report;
  err = iob_run(&batch, &config);
  if (err == 0)
    err = iob_batch_report(batch, &report);
  iob_batch_free(batch);
  if (err != 0 || report.failed != 0 || report.threads != pc->threads) {
    fprintf(stderr, "benchmark-pool: the batch failed: %s\n",
            iob_strerror(err));
    return -1;
  }
  r->done_ms = BENCH_MS(report.elapsed_ns);
  r->peak_mib = (double)bench_peak_rss_kib() / 1024;
  r->threads = report.threads;
  r->workers_used = report.workers_used;
  r->peak_in_flight = report.peak_in_flight;
  return 0;
}

/* ---- the baseline: plain uv_queue_work() jobs --------------------------- */

typedef struct plain_run {
  uint32_t count, done;
  uint64_t last_ns;
} plain_run;

static void plain_work(uv_work_t *req) {
  (void)req;
  uv_sleep(WAIT_MS);
}

static void plain_after_work(uv_work_t *req, int status) {
  plain_run *run = req->loop->data;
  if (status == 0 && ++run->done == run->count)
    run->last_ns = uv_hrtime();
}

static int run_plain(const void *in, void *out) {
  const pool_case *pc = in;
  pool_result *r = out;
  char size[16];
  snprintf(size, sizeof(size), "%u", pc->threads);
  if (setenv("UV_THREADPOOL_SIZE", size, 1) != 0)
    return -1;
  uv_work_t *reqs = calloc(pc->count, sizeof(*reqs));
  uv_loop_t loop;
  if (reqs == NULL || uv_loop_init(&loop) != 0)
    return -1;
  plain_run run = {.count = pc->count};
  loop.data = &run;
  uint64_t t0 = uv_hrtime();
  for (uint32_t i = 0; i < pc->count; i++)
    uv_queue_work(&loop, &reqs[i], plain_work, plain_after_work);
  uv_run(&loop, UV_RUN_DEFAULT);
  free(reqs);
  if (uv_loop_close(&loop) != 0 || run.done != pc->count)
    return -1;
  r->done_ms = BENCH_MS(run.last_ns - t0);
  r->peak_mib = (double)bench_peak_rss_kib() / 1024;
  r->threads = pc->threads;
  return 0;
}

/* ---- measuring and printing --------------------------------------------- */

#define RUNS 3

/* Both sides RUNS times, in turn; each side's median run by end time. */
static int measure(const pool_case *pc, pool_result *lib, pool_result *plain) {
  const bench_fn fn[2] = {run_library, run_plain};
  void *const out[2] = {lib, plain};
  double done[2][BENCH_MAX_RUNS];
  return bench_compare(pc, fn, out, sizeof(pool_result),
                       offsetof(pool_result, done_ms), RUNS, done);
}

int main(int argc, char **argv) {
  unsigned int max = 128;
  if (argc > 2 || (argc == 2 && (sscanf(argv[1], "%u", &max) != 1 || max < 1 ||
                                 max > 1024))) {
    fprintf(stderr, "usage: benchmark-pool [MAX_THREADS (1..1024)]\n");
    return 2;
  }
  printf("benchmark-pool: iobound %s, libuv %s\n", iob_version(),
         uv_version_string());
  printf("\n== %d x P waits of %d ms on P pool threads: ideal ceil(N/P) x "
         "%d ms = %d ms ==\n",
         ROUNDS, WAIT_MS, WAIT_MS, ROUNDS * WAIT_MS);
  printf("  medians of %d runs; over = done / ideal - 1\n", RUNS);
  printf("  %7s %7s | %10s %8s %8s %9s | %10s %8s | %8s\n", "threads", "waits",
         "iobound ms", "over", "workers", "peak MiB", "plain ms", "over",
         "iob/plain");
  bool all_met = true;
  double worst = 0;
  unsigned int largest = 1;
  for (unsigned int p = 1; p <= max; p *= 2) {
    pool_case pc = {.threads = p, .count = ROUNDS * p};
    pool_result lib, plain;
    if (measure(&pc, &lib, &plain) != 0) {
      fprintf(stderr, "benchmark-pool: %u threads failed to run\n", p);
      return 1;
    }
    double ideal = ROUNDS * WAIT_MS;
    double over = lib.done_ms / ideal - 1;
    if (over > worst)
      worst = over;
    all_met = all_met && over <= 0.02;
    printf("  %7u %7" PRIu32 " | %10.1f %+7.2f%% %8" PRIu32 " %9.1f | %10.1f "
           "%+7.2f%% | %8.3fx\n",
           p, pc.count, lib.done_ms, 100 * over, lib.workers_used, lib.peak_mib,
           plain.done_ms, 100 * (plain.done_ms / ideal - 1),
           lib.done_ms / plain.done_ms);
    fflush(stdout);
    largest = p;
  }
  bench_target(all_met,
               "within 2%% of ceil(N/P) x %d ms for P up to %u (worst %+.2f%%)",
               WAIT_MS, largest, 100 * worst);
  return 0;
}
