/* What connecting costs a query, and what the number of connections does
 * to 1,000 short queries: one connection per query against a pooled
 * target (iob_pg_target_create_pooled) with N connections, N the batch's
 * max_in_flight, on the throwaway server pg-test.sh starts (IOB_PG_DIR).
 *
 *   pg-test.sh benchmark-pg        (meson test --benchmark pg)
 *
 * Each configuration runs three times, in turn with the others; the
 * medians are printed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "benchmark.h"
#include "iobound.h"
#include "iobound/pg.h"

#define QUERIES 1000
#define ROUNDS 3

typedef struct setup {
  const iob_style *style;
  uint32_t connections; /* in flight at once */
  int pooled;
} setup;

static double run_once(const char *conninfo, const setup *s, uint32_t *failed) {
  iob_pg_target *t;
  int err = (s->pooled ? iob_pg_target_create_pooled
                       : iob_pg_target_create)(&t, conninfo, "SELECT 1");
  if (err != 0) {
    fprintf(stderr, "benchmark-pg: %s\n", iob_strerror(err));
    exit(1);
  }
  iob_config c;
  iob_config_init(&c);
  c.style = s->style;
  c.kind = &iob_kind_pg;
  c.target = t;
  c.count = QUERIES;
  c.max_in_flight = s->connections;
  iob_batch *b;
  iob_report r;
  if (iob_run(&b, &c) != 0 || iob_batch_report(b, &r) != 0) {
    fprintf(stderr, "benchmark-pg: the batch did not run\n");
    exit(1);
  }
  *failed = r.failed;
  iob_batch_free(b);
  iob_pg_target_destroy(t);
  return BENCH_MS(r.elapsed_ns);
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(void) {
  const char *dir = getenv("IOB_PG_DIR");
  if (dir == NULL) {
    fputs("benchmark-pg: no server (run it through pg-test.sh)\n", stderr);
    return 77;
  }
  char conninfo[512];
  snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres dbname=postgres",
           dir);
  enum { N = 12 };
  setup setups[N];
  size_t n = 0;
  const uint32_t widths[] = {1, 4, 16, 64};
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (size_t k = 0; k < 2; k++)
    for (size_t w = 0; w < 4; w++) {
      setups[n++] = (setup){styles[k], widths[w], 1};
      if (w == 1 || w == 3)
        setups[n++] = (setup){styles[k], widths[w], 0};
    }
  double ms[N][ROUNDS];
  for (int round = 0; round < ROUNDS; round++)
    for (size_t k = 0; k < n; k++) {
      uint32_t failed;
      ms[k][round] = run_once(conninfo, &setups[k], &failed);
      if (failed != 0) {
        fprintf(stderr, "benchmark-pg: %" PRIu32 " queries failed\n", failed);
        return 1;
      }
    }
  printf("%d queries of SELECT 1 on a local server (Unix socket), median of "
         "%d\n\n",
         QUERIES, ROUNDS);
  printf("%-8s %11s %-16s %10s %14s\n", "style", "connections", "connecting",
         "elapsed", "per query");
  for (size_t k = 0; k < n; k++) {
    qsort(ms[k], ROUNDS, sizeof(double), by_value);
    double med = ms[k][ROUNDS / 2];
    printf("%-8s %11" PRIu32 " %-16s %7.1f ms %11.1f us\n",
           iob_style_name(setups[k].style), setups[k].connections,
           setups[k].pooled ? "once each, kept" : "once per query", med,
           med * 1e3 / QUERIES);
  }
  return 0;
}
