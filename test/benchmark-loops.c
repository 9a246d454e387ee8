/* An event loop per core against one loop, a thread each, Go and tokio.
 *
 *   benchmark-loops [--count N] [--tcp-count N[,N...]] [--runs R]
 *                   [--only CASE]
 *
 * Two cases, each peer run R times (3), in turn, every run in a fresh
 * child process:
 *
 *   mixed  N (1,000,000) operations at once, each waits 100 ms and then
 *          computes 20 us of its thread's CPU time (iob_kind_mixed; the
 *          peers spin on the same clock):
 *            iobound-loops    iob_style_loops, a loop per core
 *            iobound-loop     iob_style_loop, one loop
 *            iobound-threads  iob_style_threads, at most 10,000 at once
 *            go               goroutines, GOMAXPROCS the cores  (go found)
 *            tokio            the multi-thread runtime         (cargo found)
 *   tcp    N (10,000, then 19,000) requests at once to
 *          iobound-slow-service, a
 *          connection each, "wait 100\n" -> "done 100\n" (iob_kind_tcp):
 *            iobound-loops, iobound-loop, go, tokio
 *
 * Every TCP run has a network of its own: service and client run in a new
 * network namespace with its own loopback, so no run meets another's
 * TIME_WAIT sockets, and each starts from empty TCP tables. Where the
 * system refuses a namespace (not root, no user namespaces), each run
 * gets a new service on a new port instead, and the benchmark says so.
 *
 * Wall time runs from the first operation (iob_batch_create) to the last
 * one's end; CPU time is the client process's. Every operation's status
 * is checked: a failed iobound operation fails the benchmark. */
#define _GNU_SOURCE /* unshare() */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include "../examples/slow-server.h"
#include "benchmark.h"
#include "iobound.h"

#ifndef IOB_BENCH_SCRIPTS
#define IOB_BENCH_SCRIPTS "test"
#endif
#ifndef IOB_BENCH_BUILD
#define IOB_BENCH_BUILD "."
#endif

#define RUNS_MAX 9
#define WAIT_MS 100
#define CPU_US 20
#define THREADS_LIMIT 10000
#define FD_SLACK 64

typedef enum bench_kind { MIXED, TCP } bench_kind;

typedef struct peer {
  const char *name;
  const iob_style *style; /* iobound's; NULL for a program */
  const char *program;    /* "go" or "tokio" */
  bool enabled;
  int runs;
  bench_line results[RUNS_MAX];
} peer;

/* What one measurement runs. */
typedef struct job {
  bench_kind kind;
  uint32_t count;
  const peer *p;
} job;

static char go_binary[600], tokio_binary[700];
static bool netns = true; /* TCP runs in a namespace of their own */

/* ---- iobound, in the measuring child ------------------------------------ */

/* The first failure's words. */
static void first_failure(const iob_batch *b, bench_line *r) {
  uint32_t n;
  const iob_record *rec = iob_batch_records(b, &n);
  for (uint32_t i = 0; i < n; i++)
    if (rec[i].status != 0) {
      iob_outcome out = {0};
      iob_batch_outcome(b, i, &out);
      snprintf(r->error, sizeof(r->error), "#%u: %s", i,
               out.message ? out.message : iob_strerror(out.status));
      return;
    }
}

static int run_iobound(const job *j, const char *address, bench_line *r) {
  static const iob_mixed mixed = {.cpu_us = CPU_US};
  iob_tcp_target *tcp = NULL;
  iob_config c;
  iob_config_init(&c);
  c.style = j->p->style;
  c.count = j->count;
  c.duration_ms = WAIT_MS;
  if (j->p->style == &iob_style_threads)
    c.max_in_flight = THREADS_LIMIT;
  if (j->kind == MIXED) {
    c.kind = &iob_kind_mixed;
    c.target = &mixed;
  } else {
    if (iob_tcp_target_create(&tcp, address) != 0)
      return -1;
    c.kind = &iob_kind_tcp;
    c.target = tcp;
  }
  double u0 = bench_cpu_ms();
  uint64_t t0 = uv_hrtime();
  iob_batch *b;
  int err = iob_run(&b, &c);
  r->wall_ms = BENCH_MS(uv_hrtime() - t0);
  r->cpu_ms = bench_cpu_ms() - u0;
  if (err == 0) {
    iob_report rep;
    iob_batch_report(b, &rep);
    r->failed = rep.failed;
    r->ok = rep.count - rep.failed;
    first_failure(b, r);
    iob_batch_free(b);
  } else {
    snprintf(r->error, sizeof(r->error), "iob_run: %s", iob_strerror(err));
  }
  iob_tcp_target_destroy(tcp);
  return err == 0 ? 0 : -1;
}

static void prepare_program(void) { fd_limit_raise(); }

/* One measurement, in a fresh child: for TCP, a network and a service of
 * its own first. */
static int measure_child(const void *in, void *out) {
  const job *j = in;
  bench_line *r = out;
  memset(r, 0, sizeof(*r));
  signal(SIGPIPE, SIG_IGN);
  fd_limit_raise();
  char address[64] = "", count[16], ms[16], cpu[16];
  pid_t service = 0;
  if (j->kind == TCP) {
    if (netns && !bench_own_network())
      return -1;
    unsigned port;
    if (slow_server_fork("127.0.0.1", &port, &service) != 0)
      return -1;
    snprintf(address, sizeof(address), "127.0.0.1:%u", port);
  }
  snprintf(count, sizeof(count), "%" PRIu32, j->count);
  snprintf(ms, sizeof(ms), "%d", WAIT_MS);
  snprintf(cpu, sizeof(cpu), "%d", CPU_US);
  int err;
  if (j->p->style != NULL) {
    err = run_iobound(j, address, r);
  } else {
    const char *binary =
        strcmp(j->p->program, "go") == 0 ? go_binary : tokio_binary;
    char *mixed_argv[] = {(char *)binary, "mixed", count, ms, cpu, NULL};
    char *tcp_argv[] = {(char *)binary, "tcp", address, count, ms, NULL};
    err = bench_run_program(j->kind == MIXED ? mixed_argv : tcp_argv,
                            prepare_program, r);
  }
  if (service != 0)
    slow_server_kill(service);
  return err;
}

/* ---- the peers' programs ------------------------------------------------- */

static bool build_go(void) {
  static char dir[] = "/tmp/iob-bench-loops-XXXXXX";
  if (!bench_on_path("go") || mkdtemp(dir) == NULL)
    return false;
  char source[512];
  snprintf(source, sizeof(source), "%s/bench-go-loops.go", IOB_BENCH_SCRIPTS);
  snprintf(go_binary, sizeof(go_binary), "%s/bench-go-loops", dir);
  return bench_go_build(source, dir, go_binary);
}

/* tokio's program, built offline (kept in the build directory). */
static bool build_tokio(void) {
  const char *why =
      bench_tokio_build(IOB_BENCH_SCRIPTS, IOB_BENCH_BUILD, "bench-tokio-loops",
                        tokio_binary, sizeof(tokio_binary));
  if (why != NULL)
    printf("  tokio: not run (%s)\n", why);
  return why == NULL;
}

/* ---- the table ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct summary {
  double wall, wall_min, cpu;
  uint32_t failed;
} summary;

static summary summarise(const peer *p) {
  double walls[RUNS_MAX], cpus[RUNS_MAX];
  summary s = {0};
  for (int k = 0; k < p->runs; k++) {
    walls[k] = p->results[k].wall_ms;
    cpus[k] = p->results[k].cpu_ms;
    s.failed += p->results[k].failed;
  }
  qsort(walls, (size_t)p->runs, sizeof(double), cmp_double);
  qsort(cpus, (size_t)p->runs, sizeof(double), cmp_double);
  s.wall = walls[p->runs / 2];
  s.wall_min = walls[0];
  s.cpu = cpus[p->runs / 2];
  return s;
}

/* Run every enabled peer `runs` times in turn; print the table and the
 * targets. Returns false if an iobound operation failed or a run could
 * not be made. */
static bool run_case(bench_kind kind, uint32_t count, peer *peers, size_t n,
                     int runs) {
  for (int k = 0; k < runs; k++)
    for (size_t i = 0; i < n; i++) {
      peer *p = &peers[i];
      if (!p->enabled)
        continue;
      job j = {kind, count, p};
      if (bench_in_child(measure_child, &j, &p->results[p->runs],
                         sizeof(bench_line)) != 0) {
        fprintf(stderr, "benchmark-loops: %s failed to run\n", p->name);
        return false;
      }
      p->runs++;
    }
  summary loops = summarise(&peers[0]);
  printf("\n%-16s runs, wall ms (in run order)\n", "peer");
  for (size_t i = 0; i < n; i++) {
    if (!peers[i].enabled)
      continue;
    printf("%-16s", peers[i].name);
    for (int k = 0; k < peers[i].runs; k++)
      printf(" %8.0f", peers[i].results[k].wall_ms);
    printf("\n");
  }
  printf("\n%-16s %11s %11s %11s %10s %9s  %s\n", "peer", "wall (med)",
         "wall (min)", "CPU (med)", "CPU us/op", "failed", "loops ahead by");
  bool ok = true;
  for (size_t i = 0; i < n; i++) {
    if (!peers[i].enabled)
      continue;
    summary s = summarise(&peers[i]);
    printf("%-16s %8.0f ms %8.0f ms %8.0f ms %10.1f %9" PRIu32, peers[i].name,
           s.wall, s.wall_min, s.cpu, s.cpu * 1e3 / count, s.failed);
    if (i > 0)
      printf("  %.2fx", s.wall / loops.wall);
    printf("\n");
    if (s.failed != 0 && peers[i].results[0].error[0] != '\0')
      printf("    first failure: %s\n", peers[i].results[0].error);
    if (peers[i].style != NULL && s.failed != 0)
      ok = false;
  }
  for (size_t i = 1; i < n; i++) {
    if (!peers[i].enabled)
      continue;
    double ratio = summarise(&peers[i]).wall / loops.wall;
    if (peers[i].style == &iob_style_loop && kind == MIXED)
      bench_target(ratio >= 1.8, "loops %.2fx faster than loop (at least 1.8x)",
                   ratio);
    else if (peers[i].style == NULL)
      bench_target(ratio > 1.0, "loops ahead of %s (%.2fx)", peers[i].name,
                   ratio);
  }
  return ok;
}

static void usage(void) {
  fprintf(stderr, "usage: benchmark-loops [--count N] [--tcp-count N[,N...]] "
                  "[--runs R] [--only mixed|tcp]\n");
}

int main(int argc, char **argv) {
  uint32_t count = 1000000;
  const char *tcp_counts = "10000,19000";
  int runs = 3;
  const char *only = NULL;
  for (int a = 1; a < argc; a++) {
    if (a + 1 < argc && strcmp(argv[a], "--count") == 0)
      count = (uint32_t)strtoul(argv[++a], NULL, 10);
    else if (a + 1 < argc && strcmp(argv[a], "--tcp-count") == 0)
      tcp_counts = argv[++a];
    else if (a + 1 < argc && strcmp(argv[a], "--runs") == 0)
      runs = atoi(argv[++a]);
    else if (a + 1 < argc && strcmp(argv[a], "--only") == 0)
      only = argv[++a];
    else {
      usage();
      return 2;
    }
  }
  bool counts_ok = tcp_counts[0] != '\0';
  for (const char *c = tcp_counts; *c != '\0'; c++)
    counts_ok &=
        (*c >= '0' && *c <= '9') || (*c == ',' && c[1] >= '1' && c[1] <= '9');
  if (count == 0 || !counts_ok || tcp_counts[0] == '0' || runs < 1 ||
      runs > RUNS_MAX) {
    usage();
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  unsigned cores = uv_available_parallelism();
  printf("benchmark-loops: iobound %s, libuv %s, %u cores; %d runs of each "
         "peer, in turn, each in a fresh child process\n",
         iob_version(), uv_version_string(), cores, runs);
  bool go = build_go(), tokio = build_tokio();
  if (!go)
    printf("  go: not run (no go: apt-get install golang-go)\n");

  bool ok = true;
  if (only == NULL || strcmp(only, "mixed") == 0) {
    peer peers[] = {
        {.name = "iobound-loops", .style = &iob_style_loops, .enabled = true},
        {.name = "iobound-loop", .style = &iob_style_loop, .enabled = true},
        {.name = "iobound-threads",
         .style = &iob_style_threads,
         .enabled = true},
        {.name = "go", .program = "go", .enabled = go},
        {.name = "tokio", .program = "tokio", .enabled = tokio},
    };
    printf("\nmixed: %" PRIu32 " operations at once, each waits %d ms, then "
           "computes %d us of its thread's CPU time; the threads style at "
           "most %d at once.\nbound: %d ms + %" PRIu32 " x %d us / %u cores "
           "= %.0f ms\n",
           count, WAIT_MS, CPU_US, THREADS_LIMIT, WAIT_MS, count, CPU_US, cores,
           WAIT_MS + (double)count * CPU_US / 1000.0 / cores);
    ok = run_case(MIXED, count, peers, sizeof(peers) / sizeof(peers[0]), runs);
  }
  for (const char *c = tcp_counts;
       ok && *c != '\0' && (only == NULL || strcmp(only, "tcp") == 0);
       c += strcspn(c, ","), c += *c == ',') {
    uint32_t tcp_count = (uint32_t)strtoul(c, NULL, 10);
    unsigned long limit = fd_limit_raise();
    if (limit < (unsigned long)tcp_count + FD_SLACK) {
      printf("NOTE: the open-file limit is %lu: running %lu requests, not "
             "%" PRIu32 " (raise ulimit -Hn to run them all)\n",
             limit, limit - FD_SLACK, tcp_count);
      tcp_count = (uint32_t)(limit - FD_SLACK);
    }
    netns = bench_own_network_allowed();
    peer peers[] = {
        {.name = "iobound-loops", .style = &iob_style_loops, .enabled = true},
        {.name = "iobound-loop", .style = &iob_style_loop, .enabled = true},
        {.name = "go", .program = "go", .enabled = go},
        {.name = "tokio", .program = "tokio", .enabled = tokio},
    };
    printf("\ntcp: %" PRIu32 " requests at once to iobound-slow-service, "
           "\"wait %d\" each on a connection of its own; %s\n",
           tcp_count, WAIT_MS,
           netns ? "each run in a network namespace of its own (no TIME_WAIT "
                   "socket of another run)"
                 : "NOTE: no network namespace allowed here: each run has a "
                   "new service on a new port instead");
    ok =
        run_case(TCP, tcp_count, peers, sizeof(peers) / sizeof(peers[0]), runs);
  }
  if (go_binary[0] != '\0') {
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf \"$(dirname '%s')\"", go_binary);
    if (system(cmd) != 0)
      fprintf(stderr, "benchmark-loops: could not remove %s\n", go_binary);
  }
  return ok ? 0 : 1;
}
