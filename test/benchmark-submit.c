/* Open batches (iob_config.open) against a batch of count, and against the
 * task groups of Node.js, asyncio, Go and tokio.
 *
 *   benchmark-submit [--count N] [--chain N] [--runs R] [--only CASE]
 *
 * Two cases, each peer run R times (3), in turn, every run in a fresh
 * child process (benchmark.h); the run with the median end time is shown:
 *
 *   fixed-vs-open  N (1,000,000) waits of 1000 ms, iob_kind_wait on
 *                  iob_style_loop:
 *     (a) fixed    a batch of count N: iob_batch_create + iob_batch_start
 *     (b) open     an open batch: N iob_batch_submit() one by one from the
 *                  loop thread, half before iob_batch_start and half
 *                  after, then iob_batch_close()
 *     (c) thread   an open batch, started, fed while it runs by another
 *                  thread that submits N and closes it
 *     node         N setTimeout promises made one by one into a group
 *     python       N asyncio.sleep tasks created in an asyncio.TaskGroup
 *     go           N goroutines that sleep, WaitGroup + first error
 *     tokio        N tokio::time::sleep tasks, JoinSet::spawn
 *   chain          M (100,000) waits of 0 ms, each submitted from the on_op
 *                  of the one before, which reads its outcome first; the
 *                  peers: a chain of M tasks, each yields once (a turn of
 *                  the loop) and then spawns the next in the same group
 *
 * The peers are programs beside this file (bench-*-submit.*), run as child
 * processes when their toolchains are found (node, python3, go, cargo with
 * Debian's crates); each prints "result WALL_MS CPU_MS ..." (benchmark.h's
 * bench_line) and, on the descriptor IOB_BENCH_SETUP_FD names, "setup MS":
 * how long its loop that spawns took. Their peak RSS is the child's
 * (RUSAGE_CHILDREN), less that of the same program with nothing to run.
 * A peer whose R runs of a case would take more than 60 s (told by a run
 * of a hundredth, then a tenth, of the count) runs fewer operations, and
 * says so: its per-operation figures compare, its elapsed time does not.
 *
 * setup: iob_batch_create to the last iob_batch_submit/start/close; done:
 * from iob_batch_create (a peer: its first spawn) to the batch's end
 * (iob_report.elapsed_ns after the start); over: done less the wait; end:
 * from the last operation's end (its record) to the batch's; B/op run:
 * growth of peak RSS per operation once all are submitted; B/op end: at
 * the batch's callback (a peer: its peak over its empty run). Every
 * operation's status is checked: a failed iobound operation fails the
 * benchmark. */
#include <inttypes.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "benchmark.h"
#include "iobound.h"

#ifndef IOB_BENCH_SCRIPTS
#define IOB_BENCH_SCRIPTS "test"
#endif
#ifndef IOB_BENCH_BUILD
#define IOB_BENCH_BUILD "."
#endif

#define RUNS_MAX 9
#define WAIT_MS 1000
#define SETUP_FD 3 /* where a peer writes "setup MS" */
#define SETUP_FD_TEXT "3"
#define PEER_CASE_MAX_MS 60000 /* a peer's R runs of a case, at most */
#define PEER_CASE_AIM_MS 30000 /* what a scaled peer's R runs aim at */

typedef enum shape { SPAWN, CHAIN } shape;
/* Who runs: one of iobound's ways, or a peer program. */
typedef enum runner {
  FIXED,
  OPEN_LOOP,
  OPEN_THREAD,
  OPEN_CHAIN,
  PROGRAM
} runner;

/* One run's figures. */
typedef struct result {
  double setup_ms;  /* create to the last submit/start/close; peer: spawns */
  double before_ms; /* (b): create + the submissions before the start */
  double after_ms;  /* (b): the start's return to the close's */
  double feed_ms;   /* (c): the feeding thread's submissions + close */
  double done_ms;   /* create (first spawn) to the batch's end */
  double end_ms;    /* iobound: the last operation's end to the batch's */
  double cpu_ms;    /* the process's CPU time over done */
  double peak_mib;  /* the process's peak RSS */
  long peak_kib;    /* the same, for a peer's bytes per operation */
  double bytes_run; /* iobound: peak RSS growth per op, all submitted */
  double bytes_end; /* at the end; peers: filled in by the parent */
  uint32_t ok, failed;
  char error[160];
} result;

typedef struct peer {
  const char *name;
  runner side;
  const char *program; /* PROGRAM: "node", "python", "go" or "tokio" */
  bool enabled;
  uint32_t count; /* what it runs: the case's count, or fewer */
  long empty_kib; /* PROGRAM: peak RSS of a run with nothing to do */
  int runs;
  result results[RUNS_MAX];
} peer;

/* What one measurement runs. */
typedef struct job {
  shape shape;
  uint32_t count;
  const peer *p;
} job;

static char go_binary[600], tokio_binary[700], python[600];
static bool python_taskgroup = true;

/* ---- iobound, in the measuring child ------------------------------------- */

/* The batch's end, seen from its callback, and the chain's state. */
typedef struct run_state {
  uint64_t end_ns;
  long peak_kib;
  double cpu_ms;
  int status;
  uint32_t links; /* CHAIN: how many */
  int chain_err;  /* CHAIN: the first thing that went wrong */
} run_state;

static void on_batch_done(iob_batch *batch, int status) {
  run_state *s = iob_batch_data(batch);
  s->end_ns = uv_hrtime();
  s->peak_kib = bench_peak_rss_kib(); /* before the report allocates */
  s->cpu_ms = bench_cpu_ms();
  s->status = status;
}

/* Every operation settled with 0, a wait lasting at least its duration;
 * *last_ns receives the last one's end. */
static int check_records(const iob_batch *b, uint32_t count, uint32_t wait_ms,
                         uint64_t *last_ns) {
  uint32_t n;
  const iob_record *rec = iob_batch_records(b, &n);
  if (rec == NULL || n != count) {
    fprintf(stderr, "benchmark-submit: %" PRIu32 " records, not %" PRIu32 "\n",
            rec ? n : 0, count);
    return -1;
  }
  *last_ns = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (rec[i].status != 0 ||
        rec[i].finished_ns - rec[i].started_ns < (uint64_t)wait_ms * 1000000) {
      fprintf(stderr, "benchmark-submit: operation %" PRIu32 " is wrong: %s\n",
              i, iob_strerror(rec[i].status));
      return -1;
    }
    if (rec[i].finished_ns > *last_ns)
      *last_ns = rec[i].finished_ns;
  }
  return 0;
}

/* Submit `count` waits of `ms`, checking that they get the numbers from
 * `first` on. 0, or the error. */
static int submit_waits(iob_batch *b, uint32_t first, uint32_t count,
                        uint32_t ms) {
  iob_task task;
  iob_task_init(&task);
  task.duration_ms = ms;
  for (uint32_t i = first; i < first + count; i++) {
    int index = iob_batch_submit(b, &task);
    if (index != (int)i)
      return index < 0 ? index : IOB_EINVAL;
  }
  return 0;
}

/* (c)'s feeding thread: it submits everything, closes the batch (also
 * when a submission failed, or the batch would never end) and drops the
 * reference it was given. */
typedef struct feeder {
  iob_batch *batch;
  uint32_t count;
  uint64_t begin_ns, end_ns;
  long peak_kib;
  int err;
} feeder;

static void feed(void *arg) {
  feeder *f = arg;
  f->begin_ns = uv_hrtime();
  f->err = submit_waits(f->batch, 0, f->count, WAIT_MS);
  int err = iob_batch_close(f->batch);
  f->end_ns = uv_hrtime();
  f->peak_kib = bench_peak_rss_kib();
  if (f->err == 0)
    f->err = err;
  iob_batch_unref(f->batch);
}

/* CHAIN: link i settled; read its outcome, then submit the next (or
 * close the batch after the last one). */
static void on_link(iob_batch *b, uint32_t i, const iob_record *record) {
  run_state *s = iob_batch_data(b);
  iob_outcome out;
  int err = iob_batch_outcome(b, i, &out);
  if (err == 0 && (record->status != 0 || out.status != 0 ||
                   out.data != (void *)(uintptr_t)i))
    err = record->status != 0 ? record->status : IOB_EINVAL;
  if (err == 0 && i + 1 < s->links) {
    iob_task next;
    iob_task_init(&next);
    next.duration_ms = 0;
    next.data = (void *)(uintptr_t)(i + 1);
    int index = iob_batch_submit(b, &next);
    if (index != (int)(i + 1))
      err = index < 0 ? index : IOB_EINVAL;
    else
      return;
  }
  if (err != 0 && s->chain_err == 0)
    s->chain_err = err;
  iob_batch_close(b);
}

static int run_iobound(const job *j, result *r) {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return -1;
  const runner side = j->p->side;
  uint32_t n = j->count, wait_ms = side == OPEN_CHAIN ? 0 : WAIT_MS;
  run_state state = {.links = n};
  feeder f = {.count = n};
  iob_config c;
  iob_config_init(&c);
  c.style = &iob_style_loop;
  c.kind = &iob_kind_wait;
  c.data = &state;
  if (side == FIXED) {
    c.count = n;
    c.duration_ms = WAIT_MS;
  } else {
    c.open = 1;
  }
  if (side == OPEN_CHAIN)
    c.on_op = on_link;

  long rss0 = bench_peak_rss_kib();
  double cpu0 = bench_cpu_ms();
  uint64_t t0 = uv_hrtime(), t_start = 0, t_started = 0, t_setup = 0;
  iob_batch *b;
  int err = iob_batch_create(&b, &c);
  if (err == 0 && side == OPEN_LOOP)
    err = submit_waits(b, 0, n / 2, WAIT_MS);
  if (err == 0 && side == OPEN_CHAIN) {
    iob_task first;
    iob_task_init(&first); /* a wait of 0 ms; data 0, its number */
    int index = iob_batch_submit(b, &first);
    err = index < 0 ? index : 0;
  }
  bool running = false;
  if (err == 0) {
    t_start = uv_hrtime();
    if (side == OPEN_THREAD)
      f.batch = iob_batch_ref(b);
    err = iob_batch_start(b, &loop, on_batch_done);
    t_started = uv_hrtime();
    running = err == 0;
    if (!running && side == OPEN_THREAD)
      iob_batch_unref(b);
  }
  if (running && side == OPEN_LOOP) {
    err = submit_waits(b, n / 2, n - n / 2, WAIT_MS);
    int closed = iob_batch_close(b);
    err = err != 0 ? err : closed;
  }
  uv_thread_t thread;
  bool feeding = false;
  if (running && side == OPEN_THREAD) {
    feeding = uv_thread_create(&thread, feed, &f) == 0;
    if (!feeding) {
      iob_batch_unref(b);
      err = IOB_EAGAIN;
    }
  }
  t_setup = uv_hrtime();
  long rss_run = bench_peak_rss_kib();
  if (running) {
    if (err != 0) /* it must end all the same: it is open */
      iob_batch_cancel(b);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  if (feeding) {
    uv_thread_join(&thread);
    t_setup = f.end_ns;
    rss_run = f.peak_kib;
    err = err != 0 ? err : f.err;
  }
  err = err != 0 ? err : state.status;
  err = err != 0 ? err : state.chain_err;
  iob_report report = {0};
  uint64_t last_ns = 0;
  if (err == 0)
    err = iob_batch_report(b, &report);
  if (err == 0)
    err = check_records(b, n, wait_ms, &last_ns);
  if (err == 0 && report.failed != 0)
    err = IOB_EIO;
  if (err != 0)
    snprintf(r->error, sizeof(r->error), "%s", iob_strerror(err));
  iob_batch_free(b);
  if (uv_loop_close(&loop) != 0 || err != 0) {
    fprintf(stderr, "benchmark-submit: %s failed: %s\n", j->p->name,
            iob_strerror(err));
    return -1;
  }

  r->setup_ms = BENCH_MS(t_setup - t0);
  r->before_ms = BENCH_MS(t_start - t0);
  r->after_ms = BENCH_MS(t_setup - t_started);
  r->feed_ms = BENCH_MS(f.end_ns - f.begin_ns);
  r->done_ms = BENCH_MS(t_start - t0 + report.elapsed_ns);
  r->end_ms = BENCH_MS(report.elapsed_ns - last_ns);
  r->cpu_ms = state.cpu_ms - cpu0;
  r->peak_mib = (double)bench_peak_rss_kib() / 1024;
  r->bytes_run = bench_bytes_per(rss0, rss_run, n);
  r->bytes_end = bench_bytes_per(rss0, state.peak_kib, n);
  r->ok = report.count - report.failed;
  return 0;
}

/* ---- the peers, in the measuring child ----------------------------------- */

static int setup_pipe[2] = {-1, -1};

/* In the peer's process, before the exec: the setup pipe's writing end
 * becomes SETUP_FD. */
static void prepare_program(void) {
  int rd = setup_pipe[0], wr = setup_pipe[1];
  if (rd != SETUP_FD)
    close(rd);
  if (wr != SETUP_FD) {
    dup2(wr, SETUP_FD);
    close(wr);
  }
  setenv("IOB_BENCH_SETUP_FD", SETUP_FD_TEXT, 1);
}

static int run_program(const job *j, result *r) {
  char script[600], count[16], ms[16];
  snprintf(count, sizeof(count), "%" PRIu32, j->count);
  snprintf(ms, sizeof(ms), "%d", WAIT_MS);
  char *argv[6] = {NULL};
  int a = 0;
  if (strcmp(j->p->program, "node") == 0) {
    snprintf(script, sizeof(script), "%s/bench-node-submit.js",
             IOB_BENCH_SCRIPTS);
    argv[a++] = "node";
    argv[a++] = script;
  } else if (strcmp(j->p->program, "python") == 0) {
    snprintf(script, sizeof(script), "%s/bench-python-submit.py",
             IOB_BENCH_SCRIPTS);
    argv[a++] = python;
    argv[a++] = script;
  } else {
    argv[a++] = strcmp(j->p->program, "go") == 0 ? go_binary : tokio_binary;
  }
  argv[a++] = j->shape == SPAWN ? "spawn" : "chain";
  argv[a++] = count;
  if (j->shape == SPAWN)
    argv[a++] = ms;

  if (pipe(setup_pipe) != 0)
    return -1;
  bench_line line = {0};
  int err = bench_run_program(argv, prepare_program, &line);
  close(setup_pipe[1]);
  char text[128] = "";
  ssize_t got = read(setup_pipe[0], text, sizeof(text) - 1);
  close(setup_pipe[0]);
  text[got > 0 ? got : 0] = '\0';
  if (sscanf(text, "setup %lf", &r->setup_ms) != 1)
    r->setup_ms = 0;
  struct rusage ru;
  r->peak_kib = getrusage(RUSAGE_CHILDREN, &ru) == 0 ? ru.ru_maxrss : 0;
  r->peak_mib = (double)r->peak_kib / 1024;
  r->done_ms = line.wall_ms;
  r->cpu_ms = line.cpu_ms;
  r->ok = line.ok;
  r->failed = line.failed;
  snprintf(r->error, sizeof(r->error), "%s", line.error);
  if (err == 0 && (line.ok != j->count || line.failed != 0))
    err = -1;
  return err;
}

static int measure_child(const void *in, void *out) {
  const job *j = in;
  result *r = out;
  memset(r, 0, sizeof(*r));
  return j->p->side == PROGRAM ? run_program(j, r) : run_iobound(j, r);
}

/* ---- the peers' programs ------------------------------------------------- */

static bool find_python(void) {
  if (!bench_on_path("python3"))
    return false;
  /* The interpreter itself, not a shim that starts it (pyenv's). */
  FILE *p = popen("python3 -c 'import asyncio, sys; print(sys.executable, "
                  "int(hasattr(asyncio, \"TaskGroup\")))'",
                  "r");
  if (p == NULL)
    return false;
  int taskgroup = 0;
  bool found = fscanf(p, "%599s %d", python, &taskgroup) == 2;
  if (pclose(p) != 0)
    found = false;
  python_taskgroup = taskgroup != 0;
  return found;
}

static bool build_go(void) {
  static char dir[] = "/tmp/iob-bench-submit-XXXXXX";
  if (!bench_on_path("go") || mkdtemp(dir) == NULL)
    return false;
  char source[512];
  snprintf(source, sizeof(source), "%s/bench-go-submit.go", IOB_BENCH_SCRIPTS);
  snprintf(go_binary, sizeof(go_binary), "%s/bench-go-submit", dir);
  return bench_go_build(source, dir, go_binary);
}

/* tokio's program, built offline (kept in the build directory). NULL, or
 * why not. */
static const char *build_tokio(void) {
  return bench_tokio_build(IOB_BENCH_SCRIPTS, IOB_BENCH_BUILD,
                           "bench-tokio-submit", tokio_binary,
                           sizeof(tokio_binary));
}

/* ---- running a case ------------------------------------------------------ */

static const char *shape_name(shape s) {
  return s == SPAWN ? "spawn" : "chain";
}

/* A peer program's peak RSS with nothing to run; once. */
static int empty_run(peer *p) {
  if (p->empty_kib != 0)
    return 0;
  job j = {SPAWN, 0, p};
  result r;
  if (bench_in_child(measure_child, &j, &r, sizeof(r)) != 0)
    return -1;
  p->empty_kib = r.peak_kib;
  return 0;
}

/* How long would `runs` runs of `count` take, told by a run of `pilot`?
 * *per_op receives the cost of one operation. -1 if it failed. */
static double predict(const peer *p, shape s, uint32_t count, uint32_t pilot,
                      int runs, double *per_op) {
  job j = {s, pilot > 0 ? pilot : 1, p};
  result r;
  if (bench_in_child(measure_child, &j, &r, sizeof(r)) != 0)
    return -1;
  double fixed = s == SPAWN ? WAIT_MS : 0;
  *per_op = (r.done_ms - fixed > 0 ? r.done_ms - fixed : 0) / j.count;
  return runs * (fixed + *per_op * count);
}

/* Would the peer's `runs` runs of the case take too long? A run of a
 * hundredth tells, and if it is not clear, one of a tenth (a cost per
 * operation may grow with the count: asyncio's does); if so, fewer
 * operations, said so. */
static int fit_peer(peer *p, shape s, uint32_t count, int runs) {
  p->count = count;
  double per_op, predicted = predict(p, s, count, count / 100, runs, &per_op);
  if (predicted > PEER_CASE_MAX_MS / 3 && count / 10 > count / 100)
    predicted = predict(p, s, count, count / 10, runs, &per_op);
  if (predicted < 0)
    return -1;
  double fixed = s == SPAWN ? WAIT_MS : 0;
  if (predicted <= PEER_CASE_MAX_MS || per_op <= 0)
    return 0;
  double fit = (PEER_CASE_AIM_MS / runs - fixed) / per_op;
  uint32_t step = count >= 100000 ? 10000 : 100;
  uint32_t scaled = fit > step ? (uint32_t)(fit / step) * step : step;
  if (scaled < count) {
    p->count = scaled;
    printf("  %s: scaled: runs %" PRIu32 ", not %" PRIu32 " (%d runs at the "
           "full count: about %.0f s); its per-op figures compare, its "
           "done time does not\n",
           p->name, scaled, count, runs, predicted / 1000);
  }
  return 0;
}

/* The run with the median end time. */
static const result *median(const peer *p) {
  int order[RUNS_MAX];
  for (int k = 0; k < p->runs; k++) { /* insertion sort: a handful */
    int at = k;
    for (; at > 0 && p->results[order[at - 1]].done_ms > p->results[k].done_ms;
         at--)
      order[at] = order[at - 1];
    order[at] = k;
  }
  return &p->results[order[p->runs / 2]];
}

/* Every enabled peer, `runs` times, in turn. false if an iobound run
 * failed; a peer that fails is left out, said so. */
static bool run_all(shape s, uint32_t count, peer *peers, size_t n, int runs) {
  for (size_t i = 0; i < n; i++) {
    peer *p = &peers[i];
    p->count = count;
    if (p->enabled && p->side == PROGRAM &&
        (empty_run(p) != 0 || fit_peer(p, s, count, runs) != 0)) {
      printf("  %s: left out: it failed to run\n", p->name);
      p->enabled = false;
    }
  }
  for (int k = 0; k < runs; k++)
    for (size_t i = 0; i < n; i++) {
      peer *p = &peers[i];
      if (!p->enabled)
        continue;
      job j = {s, p->count, p};
      result *r = &p->results[p->runs];
      if (bench_in_child(measure_child, &j, r, sizeof(*r)) != 0) {
        if (p->side != PROGRAM) {
          fprintf(stderr, "benchmark-submit: %s failed to run\n", p->name);
          return false;
        }
        printf("  %s: left out: its %s run failed (%s)\n", p->name,
               shape_name(s), r->error[0] ? r->error : "no result");
        p->enabled = false;
        continue;
      }
      if (p->side == PROGRAM)
        r->bytes_end = bench_bytes_per(p->empty_kib, r->peak_kib, p->count);
      p->runs++;
    }
  printf("  runs (done ms, sorted; the median's figures follow):\n");
  for (size_t i = 0; i < n; i++) {
    if (!peers[i].enabled)
      continue;
    printf("    %-16s", peers[i].name);
    double t[RUNS_MAX];
    for (int k = 0; k < peers[i].runs; k++) {
      int at = k;
      for (; at > 0 && t[at - 1] > peers[i].results[k].done_ms; at--)
        t[at] = t[at - 1];
      t[at] = peers[i].results[k].done_ms;
    }
    for (int k = 0; k < peers[i].runs; k++)
      printf(" %9.1f", t[k]);
    printf("\n");
  }
  return true;
}

static void print_skips(const peer *peers, size_t n, const char *const why[]) {
  for (size_t i = 0; i < n; i++)
    if (peers[i].side == PROGRAM && !peers[i].enabled && why[i] != NULL)
      printf("  %s: skipped: %s\n", peers[i].name, why[i]);
}

/* ---- the cases ----------------------------------------------------------- */

enum { NODE, PYTHON, GO, TOKIO, NPROGRAMS };
static const char *skip[NPROGRAMS];

static void fill_peers(peer *peers) {
  static const char *const names[NPROGRAMS] = {"node", "python", "go", "tokio"};
  for (int k = 0; k < NPROGRAMS; k++)
    peers[k] = (peer){.name = names[k],
                      .side = PROGRAM,
                      .program = names[k],
                      .enabled = skip[k] == NULL};
  if (!python_taskgroup)
    peers[PYTHON].name = "python-gather";
}

static void row_fixed(const peer *p, const peer *fixed) {
  const result *r = median(p), *a = median(fixed);
  double over = r->done_ms - WAIT_MS;
  double a_over = a->done_ms - WAIT_MS;
  printf("  %-14s %8" PRIu32 " %9.1f %9.1f %9.1f %8.1f %9.1f", p->name,
         p->count, r->setup_ms, r->setup_ms * 1e6 / p->count, r->done_ms, over,
         over * 1e6 / p->count);
  if (p->side == PROGRAM)
    printf(" %7s", "-");
  else
    printf(" %7.1f", r->end_ms);
  printf(" %9.1f %8.1f", r->cpu_ms, r->peak_mib);
  if (p->side == PROGRAM)
    printf(" %8s", "-");
  else
    printf(" %8.1f", r->bytes_run);
  printf(" %8.1f", r->bytes_end);
  if (r != a)
    printf(" %7.2fx", (over / p->count) / (a_over / fixed->count));
  printf("\n");
}

static void ratio_line(const char *what, const result *x, const result *a) {
  printf("  %s/(a): setup %.2fx, done %.3fx, over %.2fx, CPU %.2fx, "
         "B/op run %.2fx, B/op end %.2fx\n",
         what, x->setup_ms / a->setup_ms, x->done_ms / a->done_ms,
         (x->done_ms - WAIT_MS) / (a->done_ms - WAIT_MS), x->cpu_ms / a->cpu_ms,
         x->bytes_run / a->bytes_run, x->bytes_end / a->bytes_end);
}

static bool case_fixed_vs_open(uint32_t count, int runs) {
  peer peers[3 + NPROGRAMS] = {
      {.name = "(a) fixed", .side = FIXED, .enabled = true},
      {.name = "(b) open", .side = OPEN_LOOP, .enabled = true},
      {.name = "(c) thread", .side = OPEN_THREAD, .enabled = true},
  };
  fill_peers(&peers[3]);
  size_t n = sizeof(peers) / sizeof(peers[0]);
  const char *why[3 + NPROGRAMS] = {NULL};
  memcpy(&why[3], skip, sizeof(skip));
  printf("\n== fixed-vs-open: %" PRIu32 " waits of %d ms (iob_kind_wait, "
         "iob_style_loop) ==\n"
         "  (a) fixed   a batch of count %" PRIu32 ": iob_batch_create + "
         "iob_batch_start\n"
         "  (b) open    an open batch: iob_batch_submit x %" PRIu32
         " from the loop thread, %" PRIu32 " before iob_batch_start and "
         "%" PRIu32 " after, then iob_batch_close\n"
         "  (c) thread  an open batch, started; another thread submits %" PRIu32
         " while it runs, then closes it\n"
         "  peers: %" PRIu32 " sleeps of 1 s spawned one by one into a group: "
         "node (setTimeout promises), python (asyncio.%s), go (goroutines, "
         "WaitGroup + first error), tokio (JoinSet::spawn, multi-thread "
         "runtime)\n",
         count, WAIT_MS, count, count, count / 2, count - count / 2, count,
         count, python_taskgroup ? "TaskGroup" : "gather: no TaskGroup here");
  print_skips(peers, n, why);
  if (!run_all(SPAWN, count, peers, n, runs))
    return false;
  const result *a = median(&peers[0]), *b = median(&peers[1]),
               *c = median(&peers[2]);
  printf("\n  %-14s %8s %9s %9s %9s %8s %9s %7s %9s %8s %8s %8s %8s\n", "",
         "count", "setup ms", "ns/submit", "done ms", "over ms", "over ns/op",
         "end ms", "CPU ms", "peak MiB", "B/op run", "B/op end", "over/op");
  for (size_t i = 0; i < n; i++)
    if (peers[i].enabled)
      row_fixed(&peers[i], &peers[0]);
  printf(
      "  (ns/submit: setup / count; over: done - %d ms; end: from the last "
      "operation's end (its record) to the batch's end (the report); over/op: "
      "over ns/op against (a)'s)\n",
      WAIT_MS);
  printf(
      "  (b) iob_batch_create + %" PRIu32 " submissions before the start: "
      "%.1f ms, %.1f ns each; %" PRIu32 " after it + close: %.1f ms, %.1f ns "
      "each\n",
      count / 2, b->before_ms, b->before_ms * 1e6 / (count / 2 ? count / 2 : 1),
      count - count / 2, b->after_ms, b->after_ms * 1e6 / (count - count / 2));
  printf("  (c) the feeding thread: %" PRIu32
         " submissions + close in %.1f ms, "
         "%.1f ns each, while the loop took them in\n",
         count, c->feed_ms, c->feed_ms * 1e6 / count);
  ratio_line("(b)", b, a);
  ratio_line("(c)", c, a);
  if (count >= 100000) /* below, the pages the process has already count */
    bench_target(b->bytes_run <= 168 * 1.1,
                 "an open batch keeps about 168 B an operation while it runs, "
                 "as docs/guide.md says ((b): %.1f B)",
                 b->bytes_run);
  return true;
}

static bool case_chain(uint32_t count, int runs) {
  peer peers[1 + NPROGRAMS] = {
      {.name = "iobound", .side = OPEN_CHAIN, .enabled = true},
  };
  fill_peers(&peers[1]);
  size_t n = sizeof(peers) / sizeof(peers[0]);
  const char *why[1 + NPROGRAMS] = {NULL};
  memcpy(&why[1], skip, sizeof(skip));
  printf("\n== chain: %" PRIu32 " operations, each submitted when the one "
         "before settled ==\n"
         "  iobound: an open batch, waits of 0 ms (iob_style_loop); on_op "
         "reads the outcome (iob_batch_outcome) and submits the next\n"
         "  peers: each task yields once, then spawns the next in its group: "
         "node (await setImmediate), python (await asyncio.sleep(0), "
         "tg.create_task), go (runtime.Gosched, group.Go), tokio "
         "(yield_now; join_next reads it and spawns the next)\n",
         count);
  print_skips(peers, n, why);
  if (!run_all(CHAIN, count, peers, n, runs))
    return false;
  const result *lib = median(&peers[0]);
  printf("\n  %-14s %8s %9s %9s %9s %11s %9s %9s %9s\n", "", "links", "done ms",
         "ns/link", "CPU ms", "CPU ns/link", "peak MiB", "B/link", "x iobound");
  for (size_t i = 0; i < n; i++) {
    if (!peers[i].enabled)
      continue;
    const result *r = median(&peers[i]);
    uint32_t links = peers[i].count;
    printf("  %-14s %8" PRIu32 " %9.1f %9.1f %9.1f %11.1f %9.1f %9.1f",
           peers[i].name, links, r->done_ms, r->done_ms * 1e6 / links,
           r->cpu_ms, r->cpu_ms * 1e6 / links, r->peak_mib, r->bytes_end);
    if (i > 0)
      printf(" %8.2fx", (r->done_ms / links) / (lib->done_ms / count));
    printf("\n");
  }
  printf("  (x iobound: ns/link against iobound's)\n");
  return true;
}

static void usage(void) {
  fprintf(stderr, "usage: benchmark-submit [--count N] [--chain N] [--runs R] "
                  "[--only fixed-vs-open|chain]\n");
}

int main(int argc, char **argv) {
  uint32_t count = 1000000, chain = 100000;
  int runs = 3;
  const char *only = NULL;
  for (int a = 1; a < argc; a++) {
    if (a + 1 < argc && strcmp(argv[a], "--count") == 0)
      count = (uint32_t)strtoul(argv[++a], NULL, 10);
    else if (a + 1 < argc && strcmp(argv[a], "--chain") == 0)
      chain = (uint32_t)strtoul(argv[++a], NULL, 10);
    else if (a + 1 < argc && strcmp(argv[a], "--runs") == 0)
      runs = atoi(argv[++a]);
    else if (a + 1 < argc && strcmp(argv[a], "--only") == 0)
      only = argv[++a];
    else {
      usage();
      return 2;
    }
  }
  if (count < 2 || chain == 0 || runs < 1 || runs > RUNS_MAX ||
      (only != NULL && strcmp(only, "fixed-vs-open") != 0 &&
       strcmp(only, "chain") != 0)) {
    usage();
    return 2;
  }
  printf("benchmark-submit: iobound %s, libuv %s, %u cores; %d runs of each "
         "peer, in turn, each in a fresh child process\n",
         iob_version(), uv_version_string(), uv_available_parallelism(), runs);
  if (!bench_on_path("node"))
    skip[NODE] = "node not found";
  if (!find_python())
    skip[PYTHON] = "python3 not found";
  if (!bench_on_path("go"))
    skip[GO] = "go not found (apt-get install golang-go)";
  else if (!build_go())
    skip[GO] = "go build failed";
  skip[TOKIO] = build_tokio();
  if (skip[PYTHON] == NULL && !python_taskgroup)
    printf("  python3 has no asyncio.TaskGroup (before 3.11): its peer uses "
           "asyncio.gather\n");

  bool ok = true;
  if (only == NULL || strcmp(only, "fixed-vs-open") == 0)
    ok = case_fixed_vs_open(count, runs);
  if (ok && (only == NULL || strcmp(only, "chain") == 0))
    ok = case_chain(chain, runs);
  if (go_binary[0] != '\0') {
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf \"$(dirname '%s')\"", go_binary);
    if (system(cmd) != 0)
      fprintf(stderr, "benchmark-submit: could not remove %s\n", go_binary);
  }
  return ok ? 0 : 1;
}
