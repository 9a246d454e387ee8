/* Files on disk (iob_kind_file): iobound against its peers, and what the
 * loop's files meet.
 *
 *   benchmark-file [DIR]   (default: a new directory under /tmp, removed)
 *
 * 1. Writes that name their files (iob_file_request), each a new file of
 *    its own from one shared buffer, all asked for at once: 10,000 of
 *    4 KiB, and 64 of 256 KiB with fsync. iobound's loop style on
 *    io_uring and on libuv's pool (IOBOUND_IO_URING=0), its pool and
 *    workers styles, Node.js fs.promises and Go (a goroutine each), in
 *    one run, in turn, RUNS times each: medians of wall and CPU time, and
 *    each peer's time against iobound's loop on io_uring.
 * 2. 16 writes of 256 KiB with fsync (a target's) started beside a pool
 *    batch of 4 waits of 200 ms on the same loop (the pool style's 4
 *    jobs take the pool's 4 threads), for the file batch in the loop
 *    style on io_uring and on the pool, and in the workers and threads
 *    styles.
 *
 * Every measurement runs in a fresh child process (benchmark.h), so that
 * each one meets libuv's pool new; a case runs RUNS times, in turn with
 * the others, and the run with the median elapsed time is shown. */
#define _DEFAULT_SOURCE /* setenv() */
#include <inttypes.h>
#include <stddef.h>
#include <sys/stat.h>

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
  bool beside;  /* started after a pool batch of WAITS waits */
  bool no_ring; /* IOBOUND_IO_URING=0: the loop's files on libuv's pool */
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
  if (fc->no_ring)
    setenv("IOBOUND_IO_URING", "0", 1);
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

/* ---- 1. writes that name their files, against the peers ------------------ */

typedef struct workload {
  uint32_t count, kib;
  bool fsync;
} workload;

/* What one run of one peer measured. */
typedef struct write_result {
  double wall_ms, cpu_ms;
  uint32_t failed;
  char error[160];
} write_result;

typedef struct writer {
  const char *name;
  const iob_style *style; /* iobound's; NULL for a program of its own */
  bool no_ring;
  char *const *argv_head; /* a program's: its first words */
  bool enabled;
  write_result runs[RUNS];
} writer;

typedef struct write_run {
  const writer *w;
  const workload *load;
  const char *dir;
} write_run;

static void end_batch(iob_batch *b, int status) { (void)b, (void)status; }

/* iobound: an open batch of the workload's requests, all submitted, then
 * closed and run; timed from the first submit to the batch's end. */
static int iobound_writes(const void *in, void *out) {
  const write_run *a = in;
  write_result *r = out;
  const workload *load = a->load;
  if (a->w->no_ring)
    setenv("IOBOUND_IO_URING", "0", 1);
  size_t len = (size_t)load->kib * 1024;
  char *data = malloc(len);
  iob_file_request *req = calloc(load->count, sizeof(*req));
  char *paths = malloc((size_t)load->count * 320);
  if (data == NULL || req == NULL || paths == NULL)
    return -1;
  for (size_t k = 0; k < len; k++)
    data[k] = (char)('a' + k % 26);
  for (uint32_t i = 0; i < load->count; i++) {
    char *p = paths + (size_t)i * 320;
    snprintf(p, 320, "%s/f%" PRIu32, a->dir, i);
    req[i] = (iob_file_request){.mode = IOB_FILE_WRITE,
                                .path = p,
                                .data = data,
                                .len = len,
                                .flags = IOB_FILE_BORROW |
                                         (load->fsync ? IOB_FILE_FSYNC : 0)};
  }
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return -1;
  iob_config c;
  iob_config_init(&c);
  c.style = a->w->style;
  c.open = 1;
  iob_batch *b;
  if (iob_batch_create(&b, &c) != 0)
    return -1;
  double cpu0 = bench_cpu_ms();
  uint64_t t0 = uv_hrtime();
  for (uint32_t i = 0; i < load->count; i++) {
    iob_task t;
    iob_task_init(&t);
    t.kind = &iob_kind_file;
    t.input = &req[i];
    if (iob_batch_submit(b, &t) < 0)
      return -1;
  }
  if (iob_batch_close(b) != 0 || iob_batch_start(b, &loop, end_batch) != 0)
    return -1;
  uv_run(&loop, UV_RUN_DEFAULT);
  r->wall_ms = BENCH_MS(uv_hrtime() - t0);
  r->cpu_ms = bench_cpu_ms() - cpu0;
  iob_report rep;
  iob_batch_report(b, &rep);
  r->failed = rep.failed;
  for (uint32_t i = 0; i < load->count && r->error[0] == '\0'; i++) {
    iob_outcome o;
    if (iob_batch_outcome(b, i, &o) == 0 && o.status != 0)
      snprintf(r->error, sizeof(r->error), "%s",
               o.message ? o.message : iob_err_name(o.status));
  }
  iob_batch_free(b);
  free(paths);
  free(req);
  free(data);
  return uv_loop_close(&loop) == 0 ? 0 : -1;
}

/* A program of its own: ARGV_HEAD... DIR COUNT KIB FSYNC. */
static int program_writes(const write_run *a, write_result *r) {
  char count[16], kib[16];
  snprintf(count, sizeof(count), "%" PRIu32, a->load->count);
  snprintf(kib, sizeof(kib), "%" PRIu32, a->load->kib);
  char *argv[8];
  int n = 0;
  for (char *const *h = a->w->argv_head; *h != NULL; h++)
    argv[n++] = *h;
  argv[n++] = (char *)a->dir;
  argv[n++] = count;
  argv[n++] = kib;
  argv[n++] = a->load->fsync ? "1" : "0";
  argv[n] = NULL;
  bench_line line;
  int err = bench_run_program(argv, NULL, &line);
  r->wall_ms = line.wall_ms;
  r->cpu_ms = line.cpu_ms;
  r->failed = line.failed;
  snprintf(r->error, sizeof(r->error), "%s", line.error);
  return err;
}

/* Empty and remove a run's directory of `count` files. */
static void remove_run_dir(const char *run_dir, uint32_t count) {
  char path[320];
  for (uint32_t i = 0; i < count; i++) {
    snprintf(path, sizeof(path), "%s/f%" PRIu32, run_dir, i);
    unlink(path);
  }
  rmdir(run_dir);
}

static int write_once(writer *w, const workload *load, int run) {
  char run_dir[300];
  snprintf(run_dir, sizeof(run_dir), "%s/run-%s-%d", dir, w->name, run);
  for (char *c = run_dir + strlen(dir); *c; c++)
    if (*c == ' ' || *c == '(' || *c == ')')
      *c = '-';
  if (mkdir(run_dir, 0700) != 0) {
    perror(run_dir);
    return -1;
  }
  write_run a = {w, load, run_dir};
  write_result *r = &w->runs[run];
  memset(r, 0, sizeof(*r));
  int err = w->style != NULL ? bench_in_child(iobound_writes, &a, r, sizeof(*r))
                             : program_writes(&a, r);
  remove_run_dir(run_dir, load->count);
  if (err != 0 || r->failed != 0) {
    fprintf(stderr, "benchmark-file: %s failed: %" PRIu32 " failed (%s)\n",
            w->name, r->failed, r->error[0] ? r->error : "no word why");
    return -1;
  }
  return 0;
}

static int cmp_result(const void *a, const void *b) {
  double x = ((const write_result *)a)->wall_ms,
         y = ((const write_result *)b)->wall_ms;
  return (x > y) - (x < y);
}

static int compare_writes(writer *ws, int n, const workload *load) {
  for (int run = 0; run < RUNS; run++)
    for (int k = 0; k < n; k++)
      if (ws[k].enabled && write_once(&ws[k], load, run) != 0)
        return -1;
  printf("\n== %" PRIu32 " writes of %" PRIu32 " KiB%s, each a new file, all "
         "at once: medians of %d runs ==\n",
         load->count, load->kib, load->fsync ? " with fsync" : "", RUNS);
  printf("%-22s %10s %10s %12s %14s\n", "writer", "wall", "CPU", "CPU/write",
         "vs io_uring");
  double base = 0;
  for (int k = 0; k < n; k++) {
    if (!ws[k].enabled) {
      printf("%-22s (not installed: no row)\n", ws[k].name);
      continue;
    }
    qsort(ws[k].runs, RUNS, sizeof(ws[k].runs[0]), cmp_result);
    const write_result *m = &ws[k].runs[RUNS / 2];
    if (k == 0)
      base = m->wall_ms;
    printf("%-22s %7.1f ms %7.1f ms %9.1f us %13.2fx\n", ws[k].name, m->wall_ms,
           m->cpu_ms, m->cpu_ms * 1e3 / load->count, m->wall_ms / base);
  }
  printf("(vs io_uring: the writer's wall time over iobound's loop on "
         "io_uring; above 1, iobound is ahead)\n");
  return 0;
}

static char go_binary[512];
static char go_dir[300];

static int writes_against_peers(void) {
  char node_script[512], go_source[512];
  snprintf(node_script, sizeof(node_script), "%s/bench-node-files.js",
           IOB_BENCH_SCRIPTS);
  snprintf(go_source, sizeof(go_source), "%s/bench-go-files.go",
           IOB_BENCH_SCRIPTS);
  snprintf(go_dir, sizeof(go_dir), "%s/go", dir);
  snprintf(go_binary, sizeof(go_binary), "%s/bench-go-files", go_dir);
  bool go_dir_made = bench_on_path("go") && mkdir(go_dir, 0700) == 0;
  bool go = go_dir_made && bench_go_build(go_source, go_dir, go_binary);
  static char *node_head[] = {"node", NULL, NULL};
  static char *go_head[] = {go_binary, NULL};
  node_head[1] = node_script;
  bool ring = strcmp(iob_file_engine(), "io_uring") == 0;
  writer ws[] = {
      {.name = "iobound loop io_uring",
       .style = &iob_style_loop,
       .enabled = ring},
      {.name = "iobound loop pool",
       .style = &iob_style_loop,
       .no_ring = true,
       .enabled = true},
      {.name = "iobound pool", .style = &iob_style_pool, .enabled = true},
      {.name = "iobound workers", .style = &iob_style_workers, .enabled = true},
      {.name = "node fs.promises",
       .argv_head = node_head,
       .enabled = bench_on_path("node")},
      {.name = "go goroutines", .argv_head = go_head, .enabled = go},
  };
  enum { N = sizeof(ws) / sizeof(ws[0]) };
  if (!ring)
    printf("no io_uring here (%s): the loop's files take libuv's pool\n",
           getenv("IOBOUND_IO_URING") ? "IOBOUND_IO_URING=0" : "the kernel");
  const workload loads[] = {{10000, 4, false}, {64, 256, true}};
  int rc = 0;
  for (size_t k = 0; rc == 0 && k < 2; k++) {
    for (int j = 0; j < N; j++)
      memset(ws[j].runs, 0, sizeof(ws[j].runs));
    rc = compare_writes(ws, N, &loads[k]);
    if (rc == 0 && ring && ws[4].enabled)
      bench_target(ws[4].runs[RUNS / 2].wall_ms >= ws[0].runs[RUNS / 2].wall_ms,
                   "iobound's loop on io_uring ahead of Node fs.promises: "
                   "%.1f ms against %.1f ms",
                   ws[0].runs[RUNS / 2].wall_ms, ws[4].runs[RUNS / 2].wall_ms);
    if (rc == 0 && ring && ws[5].enabled)
      bench_target(ws[5].runs[RUNS / 2].wall_ms >= ws[0].runs[RUNS / 2].wall_ms,
                   "iobound's loop on io_uring ahead of Go: %.1f ms against "
                   "%.1f ms",
                   ws[0].runs[RUNS / 2].wall_ms, ws[5].runs[RUNS / 2].wall_ms);
  }
  if (go_dir_made) {
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", go_dir);
    if (system(cmd) != 0)
      rc = -1;
  }
  return rc;
}

/* ---- 2. the loop's files beside a busy pool ------------------------------- */

int main(int argc, char **argv) {
  bool own = argc < 2;
  if (argc > 2) {
    fprintf(stderr, "usage: benchmark-file [DIR]\n");
    return 64;
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
         "the loop's files: %s, files in %s\n",
         iob_version(), uv_version_string(), iob_pool_size(), iob_file_engine(),
         dir);
  int rc = 1;
  if (writes_against_peers() != 0)
    goto out;

  /* Beside a busy pool: the loop on each engine, and threads of iobound's. */
  const struct {
    const iob_style *style;
    bool no_ring;
    const char *name;
  } styles[] = {
      {&iob_style_loop, false, "loop io_uring"},
      {&iob_style_loop, true, "loop pool"},
      {&iob_style_workers, false, "workers"},
      {&iob_style_threads, false, "threads"},
  };
  enum { NB = sizeof(styles) / sizeof(styles[0]) };
  bool ring = strcmp(iob_file_engine(), "io_uring") == 0;
  file_case beside[2 * NB];
  file_result rb[2 * NB];
  for (int k = 0; k < NB; k++) {
    beside[2 * k] = (file_case){.style = styles[k].style,
                                .no_ring = styles[k].no_ring || !ring,
                                .count = BESIDE_COUNT};
    beside[2 * k + 1] = beside[2 * k];
    beside[2 * k + 1].beside = true;
  }
  if (measure(beside, 2 * NB, rb) != 0)
    goto out;
  printf("\n== %d writes of %d KiB with fsync, alone and beside a pool batch "
         "of %d waits of %d ms on the same loop ==\n",
         BESIDE_COUNT, KIB, WAITS, WAIT_MS);
  printf("%-14s %10s %12s %12s %14s\n", "file style", "alone", "beside",
         "first done", "op (median)");
  for (int k = 0; k < NB; k++)
    printf("%-14s %7.1f ms %9.1f ms %9.1f ms %11.1f ms\n", styles[k].name,
           rb[2 * k].elapsed_ms, rb[2 * k + 1].elapsed_ms,
           rb[2 * k + 1].first_ms, rb[2 * k + 1].median_op_ms);
  printf("(first done and op: beside the waits)\n");
  if (ring)
    bench_target(rb[1].elapsed_ms < WAIT_MS / 2.0,
                 "the loop style's files on io_uring do not wait for the "
                 "pool: %.1f ms beside waits of %d ms",
                 rb[1].elapsed_ms, WAIT_MS);
  bench_target(rb[3].first_ms >= WAIT_MS * 0.9,
               "the loop style's files on the pool wait for it: the first "
               "done after %.1f ms, behind waits of %d ms",
               rb[3].first_ms, WAIT_MS);
  bench_target(rb[5].elapsed_ms < rb[4].elapsed_ms * 1.5 + 20,
               "the workers style's files do not wait for libuv's pool: "
               "%.1f ms beside its waits, %.1f ms alone",
               rb[5].elapsed_ms, rb[4].elapsed_ms);
  rc = 0;
out:
  if (own && rmdir(dir) != 0) {
    fprintf(stderr, "benchmark-file: %s was not left empty\n", dir);
    rc = 1;
  }
  return rc;
}
