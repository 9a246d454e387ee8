/* What percentiles cost (issue 24): 9 times, a million waits of 0 to 99
 * ms on the loop style, then, in turn, the first iob_batch_latency() (one
 * pass into a histogram), the first iob_batch_report() (for scale) and a
 * sort of the running times (what iobound-compare did before, for one
 * percentile). Prints ns an operation, the fastest and the median of
 * each. The operations pay nothing while they run: their records are
 * what is read.
 *
 *   benchmark-latency [--count N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "iobound.h"

#define RUNS 9

enum { LATENCY, REPORT, SORT, CASES };
static const char *const names[CASES] = {"iob_batch_latency",
                                         "iob_batch_report", "qsort, one p99"};

static int by_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static int by_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One case once: its ns, or -1. */
static double run_case(int which, const iob_batch *b, uint32_t n,
                       uint64_t *scratch) {
  uint64_t t0 = uv_hrtime();
  int err = 0;
  if (which == LATENCY) {
    iob_latency l;
    err = iob_batch_latency(b, &l);
  } else if (which == REPORT) {
    iob_report r;
    err = iob_batch_report(b, &r);
  } else {
    const iob_record *r = iob_batch_records(b, NULL);
    for (uint32_t i = 0; i < n; i++)
      scratch[i] = r[i].finished_ns - r[i].started_ns;
    qsort(scratch, n, sizeof(*scratch), by_u64);
  }
  return err == 0 ? (double)(uv_hrtime() - t0) : -1;
}

int main(int argc, char **argv) {
  uint32_t n = 1000000;
  if (argc == 3 && strcmp(argv[1], "--count") == 0)
    n = (uint32_t)strtoul(argv[2], NULL, 10);
  if (n == 0) {
    fprintf(stderr, "usage: benchmark-latency [--count N] (N > 0)\n");
    return 64;
  }
  uint32_t *durations = malloc(n * sizeof(*durations));
  uint64_t *scratch = malloc(n * sizeof(*scratch));
  if (durations == NULL || scratch == NULL)
    return 1;
  for (uint32_t i = 0; i < n; i++)
    durations[i] = (uint32_t)((i * 37u) % 100);
  iob_config c;
  iob_config_init(&c);
  c.count = n;
  c.durations_ms = durations;
  /* A batch of its own for each run: a batch keeps its percentiles and
   * its peak once worked out, so only a first call costs anything. */
  double ns[CASES][RUNS];
  for (int k = 0; k < RUNS; k++) {
    iob_batch *b;
    if (iob_run(&b, &c) != 0) {
      fprintf(stderr, "benchmark-latency: the batch did not run\n");
      return 1;
    }
    for (int j = 0; j < CASES; j++) {
      int which = (j + k) % CASES; /* in turn, each first now and then */
      if ((ns[which][k] = run_case(which, b, n, scratch)) < 0) {
        fprintf(stderr, "benchmark-latency: %s failed\n", names[which]);
        return 1;
      }
    }
    iob_batch_free(b);
  }
  printf("benchmark-latency: iobound %s, %u waits of 0 to 99 ms on the loop, "
         "%d runs, each a batch of its own and the first call of each "
         "(in turn)\n\n",
         iob_version(), n, RUNS);
  printf("%-20s %14s %14s\n", "", "ns/op fastest", "ns/op median");
  double median[CASES];
  for (int which = 0; which < CASES; which++) {
    qsort(ns[which], RUNS, sizeof(double), by_double);
    median[which] = ns[which][RUNS / 2] / n;
    printf("%-20s %14.2f %14.2f\n", names[which], ns[which][0] / n,
           median[which]);
  }
  printf("\nall five percentiles of three times cost %.2fx a report, %.2fx "
         "a sort for one; recording while the operations run: 0 ns (the "
         "records hold it)\n",
         median[LATENCY] / median[REPORT], median[LATENCY] / median[SORT]);
  free(scratch);
  free(durations);
  return 0;
}
