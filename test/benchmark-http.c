/* Ten thousand HTTP requests at once, iobound against its peers.
 *
 *   benchmark-http [--count N] [--runs R] [--ms MS] [--only PEER,...]
 *                  [--server service|nginx|both]
 *
 * Every request is GET /wait/MS (100 ms), to two servers in turn: the
 * bundled slow service (a process of its own) and nginx with the echo
 * module (test/nginx-server.sh, one worker), when nginx is installed. The
 * peers, each run R times (3) in turn, every run in a fresh child process
 * with a network of its own (a new network namespace: its own loopback,
 * empty TCP tables, no TIME_WAIT socket of an earlier run) and a server
 * started afresh in it:
 *
 *   iobound-loop  iob_kind_http on iob_style_loop (libcurl's multi
 *                 interface on one loop)
 *   iobound-loops the same on iob_style_loops, a loop (and a client) per
 *                 core
 *   node-fetch    Node.js fetch() (undici), Promise.all   (when node is found)
 *   node-http     Node.js http.get, keepAlive agent, maxSockets Infinity
 *   go-http       Go net/http, MaxIdleConnsPerHost N       (when go is found)
 *   tokio-hyper   hyper's Client on tokio's multi-thread runtime (cargo
 *                 and librust-hyper-dev found)
 *   iobound-tcp   iob_kind_tcp on the loop: the line protocol "wait MS\n"
 *   plain-tcp     the same with plain libuv: uv_tcp_connect, write, read
 *                 (these two against the slow service only)
 *
 * Wall time runs from the first request (iob_batch_create for iobound) to
 * the last answer; CPU time is the client process's, user + system, over
 * the same span (each peer measures its own), and the server's over the
 * run. Every answer is checked: a request that does not end in 200 and
 * "done MS\n" is a failure, counted and printed; a failed iobound request
 * makes the benchmark fail. */
#define _GNU_SOURCE /* wait4(), unshare() */
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "../examples/slow-server.h"
#include "benchmark.h"
#include "iobound.h"
#include "iobound/http.h"

#ifndef IOB_BENCH_SCRIPTS
#define IOB_BENCH_SCRIPTS "test"
#endif
#ifndef IOB_BENCH_BUILD
#define IOB_BENCH_BUILD "."
#endif

#define MAX_RUNS 9
#define FD_SLACK 64 /* descriptors a process needs besides its sockets */

typedef enum server_kind { SERVICE, NGINX } server_kind;

typedef struct bench_case {
  uint32_t count;
  uint32_t ms;
  server_kind server;
  unsigned port; /* the server of this measurement, set in its child */
  char url[128]; /* http://127.0.0.1:PORT/wait/MS */
} bench_case;

/* What one run of one peer measured. */
typedef struct run_result {
  double wall_ms, cpu_ms, user_ms, sys_ms;
  uint32_t ok, failed;
  char error[160]; /* the first failure, in the peer's words */
  /* iobound's breakdown (iobound-http; op times for iobound-tcp too) */
  double start_ms; /* iob_batch_create + iob_batch_start */
  double connect_p50, connect_p99, connect_max; /* iob_http_result */
  double over_p50, over_p99, over_max;          /* total_ms (or op time) - ms */
  uint32_t reused;                              /* connect_ms == 0 */
  uint32_t within_150, within_1000; /* answered within 150 ms, 1 s */
  double service_cpu_ms;            /* the slow service, this run */
} run_result;

typedef struct peer {
  const char *name;
  const iob_style *style; /* iobound's; its failures fail the benchmark */
  int (*run)(const struct peer *p, const bench_case *bc, run_result *r);
  const char *mode; /* node's: "fetch" or "http" */
  bool tcp;         /* the line protocol: the slow service only */
  bool curl;        /* iobound with IOB_HTTP_LIBCURL=1: as before 0.5 */
  bool enabled;
  const char *why_not; /* when not enabled */
  int runs;
  run_result results[MAX_RUNS];
} peer;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The p-th percentile (0..100) of n sorted values: nearest rank. */
static double pct(const double *v, uint32_t n, double p) {
  if (n == 0)
    return 0;
  uint32_t k = (uint32_t)(p / 100 * n + 0.999999);
  return v[k == 0 ? 0 : (k > n ? n - 1 : k - 1)];
}

/* Keep the first failure's words. */
__attribute__((format(printf, 2, 3))) static void
first_error(run_result *r, const char *fmt, ...) {
  if (r->error[0] != '\0')
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->error, sizeof(r->error), fmt, ap);
  va_end(ap);
}

/* ---- iobound: a batch on a loop of the child's own ----------------------- */

typedef struct batch_end {
  uint64_t at_ns;
  double cpu_ms, user_ms, sys_ms;
  int status;
} batch_end;

static void cpu_split(double *user, double *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3;
  *sys = ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
}

static void on_batch_done(iob_batch *batch, int status) {
  batch_end *end = iob_batch_data(batch);
  end->at_ns = uv_hrtime();
  cpu_split(&end->user_ms, &end->sys_ms);
  end->cpu_ms = end->user_ms + end->sys_ms;
  end->status = status;
}

/* Run count operations of `kind` on `target` and check every outcome:
 * status 0 and, for HTTP, code 200 and the body's length. */
static int run_iobound(const bench_case *bc, const iob_style *style,
                       const iob_kind *kind, const void *target,
                       run_result *r) {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return -1;
  batch_end end = {0};
  iob_config config;
  iob_config_init(&config);
  config.style = style;
  config.kind = kind;
  config.target = target;
  config.count = bc->count;
  config.duration_ms = bc->ms;
  config.data = &end;

  double user0, sys0;
  cpu_split(&user0, &sys0);
  uint64_t t0 = uv_hrtime();
  iob_batch *batch;
  int err = iob_batch_create(&batch, &config);
  if (err == 0)
    err = iob_batch_start(batch, &loop, on_batch_done);
  uint64_t t1 = uv_hrtime();
  if (err == 0)
    uv_run(&loop, UV_RUN_DEFAULT);
  if (err != 0) {
    fprintf(stderr, "benchmark-http: the batch did not start: %s\n",
            iob_strerror(err));
    return -1;
  }
  r->wall_ms = BENCH_MS(end.at_ns - t0);
  r->start_ms = BENCH_MS(t1 - t0);
  r->user_ms = end.user_ms - user0;
  r->sys_ms = end.sys_ms - sys0;
  r->cpu_ms = r->user_ms + r->sys_ms;

  uint32_t n;
  const iob_record *rec = iob_batch_records(batch, &n);
  double *connect = malloc((size_t)n * sizeof(double));
  double *over = malloc((size_t)n * sizeof(double));
  if (rec == NULL || n == 0 || connect == NULL || over == NULL) {
    free(connect);
    free(over);
    iob_batch_free(batch);
    return -1;
  }
  bool http = kind == &iob_kind_http;
  size_t body = (size_t)snprintf(NULL, 0, "done %" PRIu32 "\n", bc->ms);
  for (uint32_t i = 0; i < n; i++) {
    iob_outcome o;
    iob_batch_outcome(batch, i, &o);
    const iob_http_result *h = http ? o.result : NULL;
    double op_ms = BENCH_MS(rec[i].finished_ns - rec[i].started_ns);
    connect[i] = h != NULL ? h->connect_ms : 0;
    over[i] = (h != NULL ? h->total_ms : op_ms) - bc->ms;
    r->reused += h != NULL && h->connect_ms == 0;
    uint64_t since = rec[i].finished_ns; /* from iob_batch_start */
    r->within_150 += since <= 150 * UINT64_C(1000000);
    r->within_1000 += since <= 1000 * UINT64_C(1000000);
    if (o.status != 0) {
      r->failed++;
      first_error(r, "%s (status %d)",
                  o.message ? o.message : iob_strerror(o.status), o.status);
    } else if (http && (h == NULL || h->code != 200 || h->bytes != body)) {
      r->failed++;
      first_error(r, "HTTP %ld, %" PRIu64 " bytes (expected 200, %zu)",
                  h ? h->code : 0L, h ? h->bytes : 0, body);
    } else if (!http && o.value != bc->ms) {
      r->failed++;
      first_error(r, "wrong answer: done %" PRIu64, o.value);
    } else {
      r->ok++;
    }
  }
  qsort(connect, n, sizeof(double), cmp_double);
  qsort(over, n, sizeof(double), cmp_double);
  r->connect_p50 = pct(connect, n, 50);
  r->connect_p99 = pct(connect, n, 99);
  r->connect_max = pct(connect, n, 100);
  r->over_p50 = pct(over, n, 50);
  r->over_p99 = pct(over, n, 99);
  r->over_max = pct(over, n, 100);
  free(connect);
  free(over);
  iob_batch_free(batch);
  uv_run(&loop, UV_RUN_DEFAULT); /* the kind's handles close */
  if (uv_loop_close(&loop) != 0)
    fprintf(stderr, "benchmark-http: a handle was left open\n");
  return 0;
}

static int run_iob_http(const peer *p, const bench_case *bc, run_result *r) {
  if (p->curl) /* (in a child of its own: for this run only) */
    setenv("IOB_HTTP_LIBCURL", "1", 1);
  char url[160];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/wait/{ms}", bc->port);
  iob_http_options o = {.url = url};
  iob_http_target *t;
  if (iob_http_target_create(&t, &o) != 0)
    return -1;
  int err = run_iobound(bc, p->style, &iob_kind_http, t, r);
  iob_http_target_destroy(t);
  return err;
}

static int run_iob_tcp(const peer *p, const bench_case *bc, run_result *r) {
  char where[64];
  snprintf(where, sizeof(where), "127.0.0.1:%u", bc->port);
  iob_tcp_target *t;
  if (iob_tcp_target_create(&t, where) != 0)
    return -1;
  int err = run_iobound(bc, p->style, &iob_kind_tcp, t, r);
  iob_tcp_target_destroy(t);
  return err;
}

/* ---- plain libuv: a uv_tcp_t per request, the line protocol -------------- */

typedef struct plain_run {
  const bench_case *bc;
  run_result *r;
  char expect[32];
  size_t expect_len;
  uint32_t settled;
  uint64_t last_ns;
} plain_run;

typedef struct plain_conn {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  plain_run *run;
  size_t len;
  bool answered;
  char buf[32];
} plain_conn;

static void plain_closed(uv_handle_t *h) {
  plain_conn *c = h->data;
  plain_run *run = c->run;
  if (c->answered)
    run->r->ok++;
  if (++run->settled == run->bc->count)
    run->last_ns = uv_hrtime();
}

/* Count the request failed, once, and close its connection. */
static void plain_fail(plain_conn *c, const char *step, int err) {
  if (uv_is_closing((uv_handle_t *)&c->tcp))
    return; /* a write cancelled by the close */
  c->run->r->failed++;
  first_error(c->run->r, "plain libuv, %s: %s", step,
              err ? uv_err_name(err) : "-");
  uv_close((uv_handle_t *)&c->tcp, plain_closed);
}

static void plain_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)size;
  plain_conn *c = h->data;
  *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void plain_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  plain_conn *c = s->data;
  if (n < 0) {
    plain_fail(c, n == UV_EOF ? "no answer" : "reading", (int)n);
    return;
  }
  c->len += (size_t)n;
  if (memchr(c->buf, '\n', c->len) == NULL) {
    if (c->len == sizeof(c->buf))
      plain_fail(c, "answer too long", 0);
    return;
  }
  if (c->len != c->run->expect_len ||
      memcmp(c->buf, c->run->expect, c->len) != 0) {
    plain_fail(c, "wrong answer", 0);
    return;
  }
  c->answered = true;
  uv_close((uv_handle_t *)&c->tcp, plain_closed);
}

static void plain_written(uv_write_t *w, int status) {
  if (status != 0)
    plain_fail(w->data, "writing", status);
}

static void plain_connected(uv_connect_t *req, int status) {
  plain_conn *c = req->data;
  if (status != 0) {
    plain_fail(c, "connecting", status);
    return;
  }
  static char line[32];
  uv_buf_t b = uv_buf_init(line, (unsigned)snprintf(line, sizeof(line),
                                                    "wait %" PRIu32 "\n",
                                                    c->run->bc->ms));
  c->write.data = c;
  int err = uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, plain_written);
  if (err == 0)
    err = uv_read_start((uv_stream_t *)&c->tcp, plain_alloc, plain_read);
  if (err != 0)
    plain_fail(c, "writing", err);
}

static int run_plain_tcp(const peer *p, const bench_case *bc, run_result *r) {
  (void)p;
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return -1;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", (int)bc->port, &addr);
  plain_run run = {.bc = bc, .r = r};
  run.expect_len = (size_t)snprintf(run.expect, sizeof(run.expect),
                                    "done %" PRIu32 "\n", bc->ms);
  double user0, sys0;
  cpu_split(&user0, &sys0);
  uint64_t t0 = uv_hrtime();
  plain_conn *conns = calloc(bc->count, sizeof(*conns));
  if (conns == NULL)
    return -1;
  for (uint32_t i = 0; i < bc->count; i++) {
    plain_conn *c = &conns[i];
    c->run = &run;
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c->connect.data = c;
    int err = uv_tcp_connect(&c->connect, &c->tcp,
                             (const struct sockaddr *)&addr, plain_connected);
    if (err != 0)
      plain_fail(c, "connecting", err);
  }
  r->start_ms = BENCH_MS(uv_hrtime() - t0);
  uv_run(&loop, UV_RUN_DEFAULT);
  double user1, sys1;
  cpu_split(&user1, &sys1);
  r->wall_ms = BENCH_MS(run.last_ns - t0);
  r->user_ms = user1 - user0;
  r->sys_ms = sys1 - sys0;
  r->cpu_ms = r->user_ms + r->sys_ms;
  free(conns);
  return uv_loop_close(&loop) == 0 ? 0 : -1;
}

/* ---- Node.js, Go and tokio: a program of their own, one line of results -- */

/* Run argv with the raised descriptor limit (inherited already; the
 * program cannot raise it) and read its result line. */
static void prepare_program(void) { fd_limit_raise(); }

static int run_program(char *const argv[], run_result *r) {
  bench_line line = {0};
  int err = bench_run_program(argv, prepare_program, &line);
  r->wall_ms = line.wall_ms;
  r->cpu_ms = line.cpu_ms;
  r->user_ms = line.user_ms;
  r->sys_ms = line.sys_ms;
  r->ok = line.ok;
  r->failed = line.failed;
  snprintf(r->error, sizeof(r->error), "%s", line.error);
  return err;
}

static char node_script[512], go_script[512], go_binary[600], tokio_binary[700];

static int run_node(const peer *p, const bench_case *bc, run_result *r) {
  char count[16];
  snprintf(count, sizeof(count), "%" PRIu32, bc->count);
  char *argv[] = {"node",          node_script, (char *)p->mode,
                  (char *)bc->url, count,       NULL};
  return run_program(argv, r);
}

static int run_go(const peer *p, const bench_case *bc, run_result *r) {
  (void)p;
  char count[16];
  snprintf(count, sizeof(count), "%" PRIu32, bc->count);
  char *argv[] = {go_binary, (char *)bc->url, count, NULL};
  return run_program(argv, r);
}

static int run_tokio(const peer *p, const bench_case *bc, run_result *r) {
  (void)p;
  char count[16], ms[16];
  snprintf(count, sizeof(count), "%" PRIu32, bc->count);
  snprintf(ms, sizeof(ms), "%" PRIu32, bc->ms);
  char *argv[] = {tokio_binary, "http", (char *)bc->url, count, ms, NULL};
  return run_program(argv, r);
}

/* ---- the servers ---------------------------------------------------------- */

static char nginx_script[512];

/* Start nginx in a new directory of its own (its path into dir); 0, 77
 * if nginx cannot run here, or -1. */
static int nginx_start(char dir[64], unsigned *port) {
  snprintf(dir, 64, "/tmp/iob-bench-nginx-XXXXXX");
  if (mkdtemp(dir) == NULL)
    return -1;
  char cmd[800];
  snprintf(cmd, sizeof(cmd), "sh '%s' start '%s' 2>&1", nginx_script, dir);
  FILE *f = popen(cmd, "r");
  if (f == NULL)
    return -1;
  char out[512] = "";
  size_t n = fread(out, 1, sizeof(out) - 1, f);
  out[n] = '\0';
  int status = pclose(f);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
      sscanf(out, "%u", port) == 1)
    return 0;
  fprintf(stderr, "benchmark-http: nginx did not start: %s", out);
  return WIFEXITED(status) && WEXITSTATUS(status) == 77 ? 77 : -1;
}

/* The CPU time (ms) of process pid and its children, from /proc. */
static double tree_cpu_ms(pid_t pid) {
  char path[96];
  snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
  FILE *f = fopen(path, "r");
  int pids[64], n = 0;
  pids[n++] = (int)pid;
  while (f != NULL && n < 64 && fscanf(f, "%d", &pids[n]) == 1)
    n++;
  if (f != NULL)
    fclose(f);
  double ms = 0;
  for (int k = 0; k < n; k++) {
    snprintf(path, sizeof(path), "/proc/%d/stat", pids[k]);
    FILE *st = fopen(path, "r");
    char line[1024];
    if (st == NULL)
      continue;
    const char *after =
        fgets(line, sizeof(line), st) ? strrchr(line, ')') : NULL;
    unsigned long utime, stime;
    /* after the name: state ppid pgrp session tty tpgid flags minflt
     * cminflt majflt cmajflt utime stime */
    if (after != NULL &&
        sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &utime, &stime) == 2)
      ms += (double)(utime + stime) * 1e3 / (double)sysconf(_SC_CLK_TCK);
    fclose(st);
  }
  return ms;
}

/* Stop nginx (its CPU time into *cpu_ms first) and remove its directory. */
static void nginx_stop(const char *dir, double *cpu_ms) {
  char path[128];
  snprintf(path, sizeof(path), "%s/nginx.pid", dir);
  FILE *f = fopen(path, "r");
  int pid = 0;
  if (f != NULL && fscanf(f, "%d", &pid) == 1 && cpu_ms != NULL)
    *cpu_ms = tree_cpu_ms(pid);
  if (f != NULL)
    fclose(f);
  char cmd[800];
  snprintf(cmd, sizeof(cmd), "sh '%s' stop '%s' && rm -rf '%s'", nginx_script,
           dir, dir);
  if (system(cmd) != 0)
    fprintf(stderr, "benchmark-http: could not stop nginx in %s\n", dir);
}

/* ---- measuring ------------------------------------------------------------ */

static peer peers[] = {
    {.name = "iobound-loop", .style = &iob_style_loop, .run = run_iob_http},
    {.name = "iobound-loops", .style = &iob_style_loops, .run = run_iob_http},
    {.name = "iobound-curl",
     .style = &iob_style_loops,
     .run = run_iob_http,
     .curl = true},
    {.name = "node-fetch", .run = run_node, .mode = "fetch"},
    {.name = "node-http", .run = run_node, .mode = "http"},
    {.name = "go-http", .run = run_go},
    {.name = "tokio-hyper", .run = run_tokio},
    {.name = "iobound-tcp",
     .style = &iob_style_loop,
     .run = run_iob_tcp,
     .tcp = true},
    {.name = "plain-tcp", .run = run_plain_tcp, .tcp = true},
};
#define NPEERS (sizeof(peers) / sizeof(peers[0]))
#define BEST_HTTP 2 /* the first two: iobound's HTTP peers */

static bool netns; /* every run in a network namespace of its own */

typedef struct child_arg {
  const peer *p;
  bench_case *bc;
} child_arg;

/* In a fresh child: a network and a server of its own, then the peer. */
static int in_child(const void *in, void *out) {
  const child_arg *a = in;
  run_result *r = out;
  bench_case *bc = a->bc;
  signal(SIGPIPE, SIG_IGN);
  fd_limit_raise();
  memset(r, 0, sizeof(*r));
  if (netns && !bench_own_network())
    return -1;
  pid_t service = 0;
  char dir[64];
  int err = bc->server == SERVICE
                ? slow_server_fork("127.0.0.1", &bc->port, &service)
                : nginx_start(dir, &bc->port);
  if (err != 0) {
    fprintf(stderr, "benchmark-http: the server did not start\n");
    return -1;
  }
  snprintf(bc->url, sizeof(bc->url), "http://127.0.0.1:%u/wait/%" PRIu32,
           bc->port, bc->ms);
  err = a->p->run(a->p, bc, r);
  if (bc->server == NGINX) {
    nginx_stop(dir, &r->service_cpu_ms);
    return err;
  }
  /* Stop the service and read the CPU time it used. */
  kill(service, SIGTERM);
  struct rusage ru;
  int status;
  while (wait4(service, &status, 0, &ru) < 0 && errno == EINTR)
    ;
  r->service_cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  return err;
}

static bool is_iobound(const peer *p) { return p->style != NULL; }

/* One run of one peer. */
static int measure(peer *p, bench_case *bc) {
  child_arg a = {p, bc};
  run_result *r = &p->results[p->runs++];
  if (bench_in_child(in_child, &a, r, sizeof(*r)) == 0)
    return 0;
  fprintf(stderr, "benchmark-http: %s failed to run\n", p->name);
  if (is_iobound(p))
    return -1;
  /* A peer's failure is its row's, not the benchmark's. */
  *r = (run_result){.failed = bc->count};
  snprintf(r->error, sizeof(r->error), "the program failed (see above)");
  return 0;
}

/* Build the Go client once, into a directory of its own. */
static const char *build_go(char *tmpdir) {
  if (!bench_on_path("go"))
    return "go not found (apt-get install golang-go)";
  if (mkdtemp(tmpdir) == NULL)
    return "no temporary directory";
  snprintf(go_binary, sizeof(go_binary), "%s/bench-go-http", tmpdir);
  return bench_go_build(go_script, tmpdir, go_binary) ? NULL
                                                      : "go build failed";
}

/* Medians and minimum of a peer's runs. */
typedef struct summary {
  double wall_med, wall_min, cpu_med, user_med, sys_med, service_med;
  uint32_t failed; /* over all runs */
  int median_run;  /* the run with the median wall time */
} summary;

static summary summarise(const peer *p) {
  summary s = {0};
  double wall[MAX_RUNS], cpu[MAX_RUNS], user[MAX_RUNS], sys[MAX_RUNS],
      svc[MAX_RUNS];
  for (int k = 0; k < p->runs; k++) {
    wall[k] = p->results[k].wall_ms;
    cpu[k] = p->results[k].cpu_ms;
    user[k] = p->results[k].user_ms;
    sys[k] = p->results[k].sys_ms;
    svc[k] = p->results[k].service_cpu_ms;
    s.failed += p->results[k].failed;
  }
  double sorted[MAX_RUNS];
  memcpy(sorted, wall, sizeof(double) * (size_t)p->runs);
  qsort(sorted, (size_t)p->runs, sizeof(double), cmp_double);
  s.wall_med = sorted[p->runs / 2];
  s.wall_min = sorted[0];
  for (int k = 0; k < p->runs; k++)
    if (wall[k] == s.wall_med)
      s.median_run = k;
  qsort(cpu, (size_t)p->runs, sizeof(double), cmp_double);
  qsort(user, (size_t)p->runs, sizeof(double), cmp_double);
  qsort(sys, (size_t)p->runs, sizeof(double), cmp_double);
  qsort(svc, (size_t)p->runs, sizeof(double), cmp_double);
  s.cpu_med = cpu[p->runs / 2];
  s.user_med = user[p->runs / 2];
  s.sys_med = sys[p->runs / 2];
  s.service_med = svc[p->runs / 2];
  return s;
}

static void usage(void) {
  fprintf(stderr,
          "usage: benchmark-http [--count N] [--runs R (1..%d)] "
          "[--ms MS] [--only PEER,...] [--server service|nginx|both]\n",
          MAX_RUNS);
}

/* The run times, the table of medians, and targets for one server. */
static bool report(const bench_case *bc) {
  const char *server = bc->server == SERVICE ? "the slow service" : "nginx";
  printf("\n  against %s: runs, wall ms (in run order):\n", server);
  for (size_t i = 0; i < NPEERS; i++) {
    if (peers[i].runs == 0)
      continue;
    printf("  %-13s", peers[i].name);
    for (int k = 0; k < peers[i].runs; k++)
      printf(" %8.1f", peers[i].results[k].wall_ms);
    printf("\n");
  }
  /* The reference: iobound's better HTTP peer, by median. */
  const peer *best = NULL;
  for (size_t i = 0; i < BEST_HTTP; i++)
    if (peers[i].runs > 0 && (best == NULL || summarise(&peers[i]).wall_med <
                                                  summarise(best).wall_med))
      best = &peers[i];
  summary base =
      best != NULL ? summarise(best) : (summary){.wall_med = 1, .cpu_med = 1};
  printf("\n  %-13s %9s %9s %9s %10s %8s %8s %9s %7s\n", "peer", "wall ms",
         "min ms", "CPU ms", "CPU us/req", "wall x", "CPU x", "svc CPU",
         "failed");
  bool iobound_failed = false;
  for (size_t i = 0; i < NPEERS; i++) {
    if (peers[i].runs == 0)
      continue;
    summary s = summarise(&peers[i]);
    printf("  %-13s %9.1f %9.1f %9.1f %10.1f %7.2fx %7.2fx %9.1f %7" PRIu32
           "%s\n",
           peers[i].name, s.wall_med, s.wall_min, s.cpu_med,
           s.cpu_med * 1e3 / bc->count, s.wall_med / base.wall_med,
           s.cpu_med / base.cpu_med, s.service_med, s.failed,
           s.failed ? "  INVALID" : "");
    iobound_failed |= is_iobound(&peers[i]) && s.failed != 0;
  }
  printf("  (medians of the runs; x: peer / %s; svc CPU: the server's CPU ms "
         "in that run)\n",
         best != NULL ? best->name : "-");
  for (size_t i = 0; i < NPEERS; i++)
    for (int k = 0; k < peers[i].runs; k++)
      if (peers[i].results[k].failed != 0)
        printf("  FAILED: %s run %d: %" PRIu32 " of %" PRIu32
               " requests failed; the first: %s\n",
               peers[i].name, k + 1, peers[i].results[k].failed, bc->count,
               peers[i].results[k].error);

  /* Where iobound's time goes. */
  for (size_t i = 0; i < NPEERS; i++) {
    const peer *p = &peers[i];
    if (p->runs == 0 || !is_iobound(p))
      continue;
    summary s = summarise(p);
    const run_result *r = &p->results[s.median_run];
    printf("\n  %s, its median run: where the time goes\n", p->name);
    printf("    create + start of the batch   %8.1f ms\n", r->start_ms);
    if (!p->tcp)
      printf("    connect (from the transfer's start): median "
             "%.1f ms, p99 %.1f ms, max %.1f ms\n",
             r->connect_p50, r->connect_p99, r->connect_max);
    printf("    beyond the %" PRIu32 " ms wait (%s): median %.1f ms, p99 "
           "%.1f ms, max %.1f ms\n",
           bc->ms, p->tcp ? "the op's own time" : "the result's total_ms",
           r->over_p50, r->over_p99, r->over_max);
    printf("    answered within 150 ms of iob_batch_start: %" PRIu32
           " (%.1f%%), within 1 s: %" PRIu32 " (%.1f%%)\n",
           r->within_150, 100.0 * r->within_150 / bc->count, r->within_1000,
           100.0 * r->within_1000 / bc->count);
    printf("    client CPU %.1f ms (user %.1f, system %.1f); the server "
           "%.1f ms\n",
           r->cpu_ms, r->user_ms, r->sys_ms, r->service_cpu_ms);
  }
  printf("\n");
  bench_target(!iobound_failed,
               "every iobound request against %s answered 200 / \"done "
               "%" PRIu32 "\"",
               server, bc->ms);
  for (size_t i = BEST_HTTP; i < NPEERS && best != NULL; i++) {
    const peer *p = &peers[i];
    if (p->runs > 0 && p->curl) { /* the old path, in the same run */
      summary s = summarise(p);
      bench_target(s.wall_med >= base.wall_med,
                   "%s ahead of iobound through libcurl (as before 0.5) "
                   "against %s: wall %.2fx (CPU %.2fx)",
                   best->name, server, s.wall_med / base.wall_med,
                   s.cpu_med / base.cpu_med);
    }
    if (p->runs == 0 || is_iobound(p))
      continue;
    summary s = summarise(p);
    if (s.failed != 0) {
      printf("target not judged: %s against %s (%s failed)\n", best->name,
             p->name, p->name);
      continue;
    }
    if (p->tcp) {
      /* Plain libuv is the floor a library on it can reach, not a peer
       * to beat: within 10% of it, in time and in CPU. */
      summary tcp = summarise(&peers[i - 1]);
      bench_target(tcp.wall_med <= 1.10 * s.wall_med &&
                       tcp.cpu_med <= 1.10 * s.cpu_med,
                   "iobound-tcp within 10%% of %s: wall %.2fx, CPU %.2fx",
                   p->name, s.wall_med / tcp.wall_med, s.cpu_med / tcp.cpu_med);
      continue;
    }
    bench_target(s.wall_med >= base.wall_med,
                 "%s ahead of %s against %s: wall %.2fx (CPU %.2fx)",
                 best->name, p->name, server, s.wall_med / base.wall_med,
                 s.cpu_med / base.cpu_med);
  }
  return !iobound_failed;
}

/* Every enabled peer, `runs` times in turn, against one server. */
static bool run_case(bench_case *bc, int runs) {
  for (size_t i = 0; i < NPEERS; i++)
    peers[i].runs = 0;
  for (int k = 0; k < runs; k++)
    for (size_t i = 0; i < NPEERS; i++)
      if (peers[i].enabled && !(peers[i].tcp && bc->server == NGINX) &&
          measure(&peers[i], bc) != 0)
        return false;
  return report(bc);
}

/* Is nginx here, with its echo module? Started and stopped once. */
static bool nginx_here(void) {
  char dir[64];
  unsigned port;
  int err = nginx_start(dir, &port);
  if (err == 0)
    nginx_stop(dir, NULL);
  else
    rmdir(dir);
  return err == 0;
}

int main(int argc, char **argv) {
  bench_case bc = {.count = 10000, .ms = 100};
  int runs = 3;
  const char *only = NULL, *server = "both";
  for (int a = 1; a < argc; a++) {
    if (a + 1 < argc && strcmp(argv[a], "--count") == 0)
      bc.count = (uint32_t)strtoul(argv[++a], NULL, 10);
    else if (a + 1 < argc && strcmp(argv[a], "--runs") == 0)
      runs = atoi(argv[++a]);
    else if (a + 1 < argc && strcmp(argv[a], "--ms") == 0)
      bc.ms = (uint32_t)strtoul(argv[++a], NULL, 10);
    else if (a + 1 < argc && strcmp(argv[a], "--only") == 0)
      only = argv[++a];
    else if (a + 1 < argc && strcmp(argv[a], "--server") == 0)
      server = argv[++a];
    else {
      usage();
      return 2;
    }
  }
  bool service = strcmp(server, "service") == 0 || strcmp(server, "both") == 0;
  bool nginx = strcmp(server, "nginx") == 0 || strcmp(server, "both") == 0;
  if (bc.count == 0 || runs < 1 || runs > MAX_RUNS || !(service || nginx)) {
    usage();
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  snprintf(node_script, sizeof(node_script), "%s/bench-node-http.js",
           IOB_BENCH_SCRIPTS);
  snprintf(go_script, sizeof(go_script), "%s/bench-go-http.go",
           IOB_BENCH_SCRIPTS);
  snprintf(nginx_script, sizeof(nginx_script), "%s/nginx-server.sh",
           IOB_BENCH_SCRIPTS);

  printf("benchmark-http: iobound %s, libuv %s, %s, %u cores\n", iob_version(),
         uv_version_string(), curl_version(), uv_available_parallelism());

  /* Descriptors: one a request in the client, one in the server, each
   * process under its own limit. */
  unsigned long limit = fd_limit_raise();
  uint32_t wanted = bc.count;
  if (limit < (unsigned long)bc.count + FD_SLACK) {
    bc.count = limit > FD_SLACK ? (uint32_t)(limit - FD_SLACK) : 1;
    printf("NOTE: the open-file limit (ulimit -n) is %lu even after raising "
           "it to the hard limit: %" PRIu32 " requests at once need %" PRIu32
           " descriptors in the client and as many in the server, plus %d; "
           "running %" PRIu32 " requests instead. Raise the hard limit "
           "(ulimit -Hn, or LimitNOFILE=) to run them all.\n",
           limit, wanted, wanted, FD_SLACK, bc.count);
  }
  FILE *range = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  unsigned lo, hi;
  if (range != NULL && fscanf(range, "%u %u", &lo, &hi) == 2 &&
      hi - lo + 1 < bc.count) {
    printf("NOTE: only %u ephemeral ports (net.ipv4.ip_local_port_range): "
           "running %u requests instead of %" PRIu32 "\n",
           hi - lo + 1, hi - lo + 1, bc.count);
    bc.count = hi - lo + 1;
  }
  if (range != NULL)
    fclose(range);
  netns = bench_own_network_allowed();

  char tmpdir[] = "/tmp/iob-bench-http-XXXXXX";
  for (size_t k = 0; k < NPEERS; k++) {
    peer *p = &peers[k];
    if (only != NULL) {
      size_t n = strlen(p->name);
      const char *at = strstr(only, p->name);
      if (at == NULL || (at[n] != '\0' && at[n] != ','))
        continue; /* not asked for: not said */
    }
    if (p->run == run_node)
      p->why_not = !bench_on_path("node")           ? "node not found"
                   : access(node_script, R_OK) != 0 ? "no bench-node-http.js"
                                                    : NULL;
    else if (p->run == run_go)
      p->why_not = build_go(tmpdir);
    else if (p->run == run_tokio)
      p->why_not = bench_tokio_build(IOB_BENCH_SCRIPTS, IOB_BENCH_BUILD,
                                     "bench-tokio-loops", tokio_binary,
                                     sizeof(tokio_binary));
    p->enabled = p->why_not == NULL;
    if (!p->enabled)
      printf("  %s: not run (%s)\n", p->name, p->why_not);
  }
  if (nginx && !nginx_here()) {
    printf("  nginx: not run (apt-get install nginx-light "
           "libnginx-mod-http-echo)\n");
    nginx = false;
  }
  printf("%" PRIu32 " concurrent GET /wait/%" PRIu32 " (and, for the TCP "
         "rows, \"wait %" PRIu32 "\\n\" to the slow service) on 127.0.0.1; "
         "%d runs of each peer, in turn, each in a fresh child process with "
         "%s and a server started afresh;\nfd limit %lu; wall: first request "
         "to last answer; CPU: the client's user + system over that span\n",
         bc.count, bc.ms, bc.ms, runs,
         netns ? "a network namespace of its own"
               : "(NOTE: no network namespace allowed here) a new port",
         limit);

  bool ok = true;
  if (service) {
    bc.server = SERVICE;
    ok = run_case(&bc, runs);
  }
  if (nginx) {
    bc.server = NGINX;
    ok = run_case(&bc, runs) && ok;
  }
  if (go_binary[0] != '\0') {
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
      fprintf(stderr, "benchmark-http: could not remove %s\n", tmpdir);
  }
  return ok ? 0 : 1;
}
