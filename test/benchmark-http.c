/* Ten thousand HTTP requests at once, iobound against its peers.
 *
 *   benchmark-http [--count N] [--runs R] [--ms MS] [--only PEER,...]
 *
 * Every request is GET /wait/MS (100 ms) to the bundled slow service,
 * which runs in a process of its own, started afresh for each
 * measurement (a new port: the previous run's TIME_WAIT sockets stay out
 * of the way). The peers, each run R times (3) in turn, every run in a
 * fresh child process:
 *
 *   iobound-http  iobound's loop style, iob_kind_http (libcurl's multi
 *                 interface on the loop; connection reuse on)
 *   iobound-fresh the same with no_reuse: a connection per request, closed
 *                 after it (libcurl's connection cache stays empty)
 *   node-fetch    Node.js fetch() (undici), Promise.all   (when node is found)
 *   node-http     Node.js http.get, keepAlive agent, maxSockets Infinity
 *   go-http       Go net/http, MaxIdleConnsPerHost N       (when go is found)
 *   iobound-tcp   iob_kind_tcp on the loop: the line protocol "wait MS\n"
 *   plain-tcp     the same with plain libuv: uv_tcp_connect, write, read
 *
 * Wall time runs from the first request (iob_batch_create for iobound) to
 * the last answer; CPU time is the client process's, user + system, over
 * the same span (each peer measures its own). Every answer is checked: a
 * request that does not end in 200 and "done MS\n" is a failure, counted
 * and printed; a failed iobound request makes the benchmark fail. */
#define _DEFAULT_SOURCE /* wait4() */
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

#define MAX_RUNS 9
#define FD_SLACK 64 /* descriptors a process needs besides its sockets */

typedef struct bench_case {
  uint32_t count;
  uint32_t ms;
  unsigned port; /* the service of this measurement */
  char go_binary[512];
} bench_case;

/* What one run of one peer measured. */
typedef struct run_result {
  double wall_ms, cpu_ms, user_ms, sys_ms;
  uint32_t ok, failed;
  char error[160]; /* the first failure, in the peer's words */
  /* iobound's breakdown (iobound-http; op times for iobound-tcp too) */
  double start_ms;     /* iob_batch_create + iob_batch_start */
  double connect_p50, connect_p99, connect_max; /* iob_http_result */
  double over_p50, over_p99, over_max; /* total_ms (or op time) - ms */
  uint32_t reused;                     /* connect_ms == 0 */
  uint32_t within_150, within_1000;    /* answered within 150 ms, 1 s */
  double service_cpu_ms;               /* the slow service, this run */
} run_result;

typedef struct peer {
  const char *name;
  bool is_iobound; /* its failures fail the benchmark */
  int (*run)(const bench_case *bc, run_result *r); /* in a fresh child */
  const char *mode; /* node's: "fetch" or "http"; go: "go" */
  bool enabled;
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
static int run_iobound(const bench_case *bc, const iob_kind *kind,
                       const void *target, run_result *r) {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return -1;
  batch_end end = {0};
  iob_config config;
  iob_config_init(&config);
  config.style = &iob_style_loop;
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

static int iob_http(const bench_case *bc, run_result *r, int no_reuse) {
  char url[128];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/wait/{ms}", bc->port);
  iob_http_options o = {.url = url, .no_reuse = no_reuse};
  iob_http_target *t;
  if (iob_http_target_create(&t, &o) != 0)
    return -1;
  int err = run_iobound(bc, &iob_kind_http, t, r);
  iob_http_target_destroy(t);
  return err;
}

static int run_iob_http(const bench_case *bc, run_result *r) {
  return iob_http(bc, r, 0);
}

/* no_reuse: a connection of its own for each request, closed after it. */
static int run_iob_http_fresh(const bench_case *bc, run_result *r) {
  return iob_http(bc, r, 1);
}

static int run_iob_tcp(const bench_case *bc, run_result *r) {
  char where[64];
  snprintf(where, sizeof(where), "127.0.0.1:%u", bc->port);
  iob_tcp_target *t;
  if (iob_tcp_target_create(&t, where) != 0)
    return -1;
  int err = run_iobound(bc, &iob_kind_tcp, t, r);
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

static int run_plain_tcp(const bench_case *bc, run_result *r) {
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

/* ---- Node.js and Go: a program of their own, one line of results --------- */

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

static char node_script[512], go_script[512];

static int run_node(const bench_case *bc, run_result *r, const char *mode) {
  char url[128], count[16];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/wait/%" PRIu32, bc->port,
           bc->ms);
  snprintf(count, sizeof(count), "%" PRIu32, bc->count);
  char *argv[] = {"node", node_script, (char *)mode, url, count, NULL};
  return run_program(argv, r);
}

static int run_node_fetch(const bench_case *bc, run_result *r) {
  return run_node(bc, r, "fetch");
}

static int run_node_http(const bench_case *bc, run_result *r) {
  return run_node(bc, r, "http");
}

static int run_go(const bench_case *bc, run_result *r) {
  char url[128], count[16];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/wait/%" PRIu32, bc->port,
           bc->ms);
  snprintf(count, sizeof(count), "%" PRIu32, bc->count);
  char *argv[] = {(char *)bc->go_binary, url, count, NULL};
  return run_program(argv, r);
}

/* ---- measuring ------------------------------------------------------------ */

static peer peers[] = {
    {.name = "iobound-http", .is_iobound = true, .run = run_iob_http,
     .enabled = true},
    {.name = "iobound-fresh", .is_iobound = true, .run = run_iob_http_fresh,
     .enabled = true},
    {.name = "node-fetch", .run = run_node_fetch, .mode = "fetch"},
    {.name = "node-http", .run = run_node_http, .mode = "http"},
    {.name = "go-http", .run = run_go, .mode = "go"},
    {.name = "iobound-tcp", .is_iobound = true, .run = run_iob_tcp,
     .enabled = true},
    {.name = "plain-tcp", .run = run_plain_tcp, .enabled = true},
};
#define NPEERS (sizeof(peers) / sizeof(peers[0]))

typedef struct child_arg {
  const peer *p;
  const bench_case *bc;
} child_arg;

static int in_child(const void *in, void *out) {
  const child_arg *a = in;
  signal(SIGPIPE, SIG_IGN);
  fd_limit_raise();
  memset(out, 0, sizeof(run_result));
  return a->p->run(a->bc, out);
}

/* One run of one peer against a service of its own. */
static int measure(peer *p, bench_case *bc) {
  pid_t service;
  if (slow_server_fork("127.0.0.1", &bc->port, &service) != 0) {
    fprintf(stderr, "benchmark-http: the slow service did not start\n");
    return -1;
  }
  run_result *r = &p->results[p->runs];
  child_arg a = {p, bc};
  int err = bench_in_child(in_child, &a, r, sizeof(*r));
  /* Stop the service and read the CPU time it used. */
  kill(service, SIGTERM);
  struct rusage ru;
  int status;
  while (wait4(service, &status, 0, &ru) < 0 && errno == EINTR)
    ;
  if (err != 0) {
    fprintf(stderr, "benchmark-http: %s failed to run\n", p->name);
    return -1;
  }
  r->service_cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  p->runs++;
  return 0;
}

/* Build the Go client once, into a directory of its own. */
static bool build_go(bench_case *bc, char *tmpdir) {
  if (!bench_on_path("go") || mkdtemp(tmpdir) == NULL)
    return false;
  snprintf(bc->go_binary, sizeof(bc->go_binary), "%s/bench-go-http", tmpdir);
  return bench_go_build(go_script, tmpdir, bc->go_binary);
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
  fprintf(stderr, "usage: benchmark-http [--count N] [--runs R (1..%d)] "
                  "[--ms MS] [--only PEER,...]\n",
          MAX_RUNS);
}

int main(int argc, char **argv) {
  bench_case bc = {.count = 10000, .ms = 100};
  int runs = 3;
  const char *only = NULL;
  for (int a = 1; a < argc; a++) {
    if (a + 1 < argc && strcmp(argv[a], "--count") == 0)
      bc.count = (uint32_t)strtoul(argv[++a], NULL, 10);
    else if (a + 1 < argc && strcmp(argv[a], "--runs") == 0)
      runs = atoi(argv[++a]);
    else if (a + 1 < argc && strcmp(argv[a], "--ms") == 0)
      bc.ms = (uint32_t)strtoul(argv[++a], NULL, 10);
    else if (a + 1 < argc && strcmp(argv[a], "--only") == 0)
      only = argv[++a];
    else {
      usage();
      return 2;
    }
  }
  if (bc.count == 0 || runs < 1 || runs > MAX_RUNS) {
    usage();
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  snprintf(node_script, sizeof(node_script), "%s/bench-node-http.js",
           IOB_BENCH_SCRIPTS);
  snprintf(go_script, sizeof(go_script), "%s/bench-go-http.go",
           IOB_BENCH_SCRIPTS);

  printf("benchmark-http: iobound %s, libuv %s, %s\n", iob_version(),
         uv_version_string(), curl_version());

  /* Descriptors: one a request in the client, one in the service (2 a
   * request on this machine), each process under its own limit. */
  unsigned long limit = fd_limit_raise();
  uint32_t wanted = bc.count;
  if (limit < (unsigned long)bc.count + FD_SLACK) {
    bc.count = limit > FD_SLACK ? (uint32_t)(limit - FD_SLACK) : 1;
    printf("NOTE: the open-file limit (ulimit -n) is %lu even after raising "
           "it to the hard limit: %" PRIu32 " requests at once need %" PRIu32
           " descriptors in the client and as many in the service (2 a "
           "request on this machine), plus %d; running %" PRIu32
           " requests instead. Raise the hard limit (ulimit -Hn, or "
           "LimitNOFILE=) to run them all.\n",
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

  char tmpdir[] = "/tmp/iob-bench-http-XXXXXX";
  for (size_t k = 0; k < NPEERS; k++) {
    peer *p = &peers[k];
    if (only != NULL) {
      size_t n = strlen(p->name);
      const char *at = strstr(only, p->name);
      if (at == NULL || (at[n] != '\0' && at[n] != ',')) {
        p->enabled = false;
        continue;
      }
    }
    if (p->mode != NULL && strcmp(p->mode, "go") == 0)
      p->enabled = build_go(&bc, tmpdir);
    else if (p->mode != NULL)
      p->enabled = bench_on_path("node") && access(node_script, R_OK) == 0;
  }
  printf("%" PRIu32 " concurrent GET /wait/%" PRIu32 " (and, for the TCP "
         "rows, \"wait %" PRIu32 "\\n\") to the slow service, a process of its "
         "own\non 127.0.0.1, started afresh for each run; %d runs of each "
         "peer, in turn, each in a fresh child process;\nfd limit %lu; "
         "wall: first request to last answer; CPU: the client's user + "
         "system over that span\n",
         bc.count, bc.ms, bc.ms, runs, limit);
  for (size_t k = 0; k < NPEERS; k++)
    if (!peers[k].enabled && (only == NULL || strstr(only, peers[k].name)))
      printf("  %s: not run (%s not found)\n", peers[k].name,
             peers[k].mode && strcmp(peers[k].mode, "go") == 0 ? "go"
                                                                : "node");

  int err = 0;
  for (int k = 0; k < runs && err == 0; k++)
    for (size_t i = 0; i < NPEERS && err == 0; i++)
      if (peers[i].enabled)
        err = measure(&peers[i], &bc);
  if (bc.go_binary[0] != '\0') {
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
      fprintf(stderr, "benchmark-http: could not remove %s\n", tmpdir);
  }
  if (err != 0)
    return 1;

  /* The table. */
  summary base = summarise(&peers[0]);
  printf("\n  runs, wall ms (in run order):\n");
  for (size_t i = 0; i < NPEERS; i++) {
    if (!peers[i].enabled)
      continue;
    printf("  %-13s", peers[i].name);
    for (int k = 0; k < peers[i].runs; k++)
      printf(" %8.1f", peers[i].results[k].wall_ms);
    printf("\n");
  }
  printf("\n  %-13s %9s %9s %9s %9s %8s %8s %9s %7s\n", "peer", "wall ms",
         "min ms", "CPU ms", "CPU us/req", "wall x", "CPU x", "svc CPU",
         "failed");
  bool iobound_failed = false;
  for (size_t i = 0; i < NPEERS; i++) {
    if (!peers[i].enabled)
      continue;
    summary s = summarise(&peers[i]);
    printf("  %-13s %9.1f %9.1f %9.1f %9.1f %7.2fx %7.2fx %9.1f %7" PRIu32
           "%s\n",
           peers[i].name, s.wall_med, s.wall_min, s.cpu_med,
           s.cpu_med * 1e3 / bc.count, s.wall_med / base.wall_med,
           s.cpu_med / base.cpu_med, s.service_med, s.failed,
           s.failed ? "  INVALID" : "");
    iobound_failed |= peers[i].is_iobound && s.failed != 0;
  }
  printf("  (medians of %d runs; x: peer / iobound-http; svc CPU: the slow "
         "service's CPU ms in that run)\n",
         runs);
  for (size_t i = 0; i < NPEERS; i++)
    for (int k = 0; k < peers[i].runs; k++)
      if (peers[i].results[k].failed != 0)
        printf("  FAILED: %s run %d: %" PRIu32 " of %" PRIu32
               " requests failed; the first: %s\n",
               peers[i].name, k + 1, peers[i].results[k].failed, bc.count,
               peers[i].results[k].error);

  /* Where iobound's time goes. */
  for (size_t i = 0; i < NPEERS; i++) {
    const peer *p = &peers[i];
    if (!p->enabled || !p->is_iobound)
      continue;
    summary s = summarise(p);
    const run_result *r = &p->results[s.median_run];
    bool http = p->run == run_iob_http || p->run == run_iob_http_fresh;
    printf("\n  %s, its median run: where the time goes\n", p->name);
    printf("    create + start of the batch   %8.1f ms\n", r->start_ms);
    if (http)
      printf("    connect (libcurl, from the transfer's start): median "
             "%.1f ms, p99 %.1f ms, max %.1f ms; %" PRIu32
             " of %" PRIu32 " on a reused connection\n",
             r->connect_p50, r->connect_p99, r->connect_max, r->reused,
             bc.count);
    printf("    beyond the %" PRIu32 " ms wait (%s): median %.1f ms, p99 "
           "%.1f ms, max %.1f ms\n",
           bc.ms, http ? "libcurl's total_ms" : "the op's own time",
           r->over_p50, r->over_p99, r->over_max);
    printf("    answered within 150 ms of iob_batch_start: %" PRIu32 " (%.1f%%), "
           "within 1 s: %" PRIu32 " (%.1f%%)\n",
           r->within_150, 100.0 * r->within_150 / bc.count, r->within_1000,
           100.0 * r->within_1000 / bc.count);
    printf("    client CPU %.1f ms (user %.1f, system %.1f); the service "
           "%.1f ms\n",
           r->cpu_ms, r->user_ms, r->sys_ms, r->service_cpu_ms);
    double bound = bc.ms + (r->cpu_ms + r->service_cpu_ms) / 2;
    printf("    bound on 2 cores shared with the service: %" PRIu32
           " ms + (client CPU + service CPU) / 2 = %.1f ms; measured %.1f "
           "ms\n",
           bc.ms, bound, r->wall_ms);
  }
  printf("\n");
  bench_target(!iobound_failed, "every iobound request answered 200 / "
                                "\"done %" PRIu32 "\"",
               bc.ms);
  for (size_t i = 1; i < NPEERS; i++) {
    if (!peers[i].enabled || peers[i].is_iobound)
      continue;
    summary s = summarise(&peers[i]);
    const summary *ref = &base;
    summary tcp;
    if (peers[i].run == run_plain_tcp) {
      tcp = summarise(&peers[i - 1]);
      ref = &tcp;
    }
    if (ref == &tcp) {
      /* Plain libuv is the floor a library on it can reach, not a peer
       * to beat: within 10% of it, in time and in CPU. */
      bench_target(ref->wall_med <= 1.10 * s.wall_med &&
                       ref->cpu_med <= 1.10 * s.cpu_med,
                   "iobound-tcp within 10%% of %s: wall %.2fx, CPU %.2fx",
                   peers[i].name, s.wall_med / ref->wall_med,
                   s.cpu_med / ref->cpu_med);
      continue;
    }
    bench_target(s.wall_med >= ref->wall_med && s.cpu_med >= ref->cpu_med,
                 "iobound-http ahead of %s: wall %.2fx, CPU %.2fx",
                 peers[i].name, s.wall_med / ref->wall_med,
                 s.cpu_med / ref->cpu_med);
  }
  return iobound_failed ? 1 : 0;
}
