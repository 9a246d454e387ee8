/* What the resilience policies cost an operation that does not need them
 * (issue 23): a retry policy nothing fails under, a closed breaker, a
 * hedge whose delay never comes, a rate far above the pace, a retry
 * budget, each against no policy at all, on N (1,000,000) operations of
 * a kind whose start() settles at once on the loop style, so that the
 * policy's own cost is most of what is measured. And N waits of 0 ms
 * with and without a retry policy (waits are not retried: the policy
 * must cost nothing there).
 *
 *   benchmark-policies [--count N] [--runs R]
 *
 * Every case runs R times (9) in fresh child processes, in turn with the
 * others; each prints ns an operation, the fastest run's (the one least
 * disturbed: this machine's runs spread by 10% and more) and the median,
 * and the fastest's difference from none. Every operation's status is
 * checked. */
#include <string.h>

#include "benchmark.h"
#include "iobound.h"

#define RUNS_MAX 9

/* "instant": start() settles the operation at once. */
static int instant_start(iob_op *op) { return iob_op_done(op, 0); }

static const iob_kind instant = {.name = "instant", .start = instant_start};

typedef enum policy {
  NONE,
  RETRY,
  BREAKER,
  HEDGE,
  RATE,
  BUDGET,
  WAITS,
  WAITS_RETRY,
  CASES
} policy;

static const char *const names[CASES] = {"none",
                                         "retry (no failure)",
                                         "breaker (closed)",
                                         "hedge (never due)",
                                         "rate (1e9/s)",
                                         "retry + budget",
                                         "waits, none",
                                         "waits, retry"};

typedef struct input {
  uint32_t count;
  policy p;
} input;

typedef struct output {
  double ns_per_op;
} output;

static void done(iob_batch *b, int status) { (void)b, (void)status; }

static int measure(const void *in_, void *out_) {
  const input *in = in_;
  output *out = out_;
  iob_config c;
  iob_config_init(&c);
  c.count = in->count;
  c.kind = in->p >= WAITS ? &iob_kind_wait : &instant;
  iob_retry retry;
  iob_retry_init(&retry);
  iob_hedge hedge;
  iob_hedge_init(&hedge);
  hedge.delay_ms = 3600000;
  iob_breaker *breaker = NULL;
  iob_rate *rate = NULL;
  iob_budget *budget = NULL;
  if (in->p == RETRY || in->p == WAITS_RETRY)
    c.retry = &retry;
  if (in->p == BUDGET && iob_budget_create(&budget, 0.2, 10, 0) == 0) {
    retry.budget = budget;
    c.retry = &retry;
  }
  if (in->p == HEDGE)
    c.hedge = &hedge;
  if (in->p == BREAKER && iob_breaker_create(&breaker, NULL) == 0)
    c.breaker = breaker;
  if (in->p == RATE && iob_rate_create(&rate, 1e9, in->count) == 0)
    c.rate = rate;
  uv_loop_t loop;
  iob_batch *b;
  if (uv_loop_init(&loop) != 0 || iob_batch_create(&b, &c) != 0)
    return -1;
  uint64_t t0 = uv_hrtime();
  if (iob_batch_start(b, &loop, done) != 0)
    return -1;
  uv_run(&loop, UV_RUN_DEFAULT);
  out->ns_per_op = (double)(uv_hrtime() - t0) / in->count;
  iob_report r;
  int err = iob_batch_report(b, &r) != 0 || r.failed != 0 ? -1 : 0;
  iob_batch_free(b);
  iob_breaker_free(breaker);
  iob_rate_free(rate);
  iob_budget_free(budget);
  return uv_loop_close(&loop) == 0 ? err : -1;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  uint32_t count = 1000000;
  int runs = 9;
  for (int k = 1; k + 1 < argc; k += 2) {
    if (strcmp(argv[k], "--count") == 0)
      count = (uint32_t)strtoul(argv[k + 1], NULL, 10);
    else if (strcmp(argv[k], "--runs") == 0)
      runs = atoi(argv[k + 1]);
  }
  if (count == 0 || runs < 1 || runs > RUNS_MAX) {
    fprintf(stderr, "benchmark-policies [--count N] [--runs 1..9]\n");
    return 64;
  }
  printf("%u operations a run, the loop style, %d runs (cases in turn)\n\n",
         count, runs);
  double ns[CASES][RUNS_MAX];
  for (int k = 0; k < runs; k++)
    for (int p = 0; p < CASES; p++) {
      input in = {count, (policy)p};
      output out;
      if (bench_in_child(measure, &in, &out, sizeof(out)) != 0) {
        fprintf(stderr, "benchmark-policies: %s failed\n", names[p]);
        return 1;
      }
      ns[p][k] = out.ns_per_op;
    }
  double best[CASES], median[CASES];
  for (int p = 0; p < CASES; p++) {
    qsort(ns[p], (size_t)runs, sizeof(double), by_value);
    best[p] = ns[p][0];
    median[p] = ns[p][runs / 2];
  }
  printf("%-20s %12s %12s %12s\n", "policy", "ns/op best", "median", "vs none");
  for (int p = 0; p < CASES; p++) {
    double base = best[p >= WAITS ? WAITS : NONE];
    printf("%-20s %12.1f %12.1f %+9.1f ns%s\n", names[p], best[p], median[p],
           best[p] - base, p == NONE || p == WAITS ? " (the base)" : "");
  }
  printf("\n");
  /* Not measurable: within 1%, or within the spread of the runs
   * without it, if that is wider (at 20 ns an operation, 1% is 0.2 ns). */
  double waits = (best[WAITS_RETRY] - best[WAITS]) / best[WAITS];
  double spread = (ns[WAITS][runs / 2] - ns[WAITS][0]) / best[WAITS];
  bench_target(waits < (spread > 0.01 ? spread : 0.01),
               "a retry policy costs waits nothing measurable: %+.1f%% "
               "(within 1%%, or the runs' own spread to the median, %.1f%%)",
               100 * waits, 100 * spread);
  double unused = (best[RETRY] - best[NONE]) / best[NONE];
  bench_target(unused < 0.05,
               "a retry policy nothing fails under costs an operation "
               "%+.1f%% (within 5%%)",
               100 * unused);
  return 0;
}
