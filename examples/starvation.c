/* iobound-starvation: why the workers style exists.
 *
 *   iobound-starvation [--help] [--version]
 *
 * Runs 8 blocking operations of 500 ms (iob_kind_wait: a sleep on a
 * thread) and, meanwhile, one uv_fs_stat() of the application's own: first
 * in the pool style, on libuv's pool, which the stat needs too; then in
 * the workers style, on threads of iobound's own. Prints how long the stat
 * took and how long the batch took, in each.
 *
 * Both styles get 4 threads (libuv's default pool, and the workers'
 * default), so the batch takes the same two rounds in each: the only
 * difference left is whose threads the operations block. */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"

#define OPERATIONS 8
#define DURATION_MS 500

/* One style's run: the batch, and the stat made right after it started. */
typedef struct run {
  uv_fs_t stat;
  uint64_t stat_sent, stat_ns;
  int stat_status;
  int batch_status;
} run;

static void on_stat(uv_fs_t *req) {
  run *r = req->data;
  r->stat_ns = uv_hrtime() - r->stat_sent;
  r->stat_status = (int)req->result;
  uv_fs_req_cleanup(req);
}

static void on_batch(iob_batch *batch, int status) {
  run *r = iob_batch_data(batch);
  r->batch_status = status;
}

/* Run the batch in `style` and stat `path` while it runs: the stat's
 * latency in r->stat_ns, the batch's report in *report. */
static int run_style(const iob_style *style, const char *path, run *r,
                     iob_report *report) {
  iob_config config;
  iob_config_init(&config);
  config.style = style;
  config.kind = &iob_kind_wait;
  config.count = OPERATIONS;
  config.duration_ms = DURATION_MS;
  config.data = r;
  *r = (run){.stat_status = 0};

  uv_loop_t loop;
  int err = uv_loop_init(&loop);
  if (err != 0)
    return err;
  iob_batch *batch;
  err = iob_batch_create(&batch, &config);
  if (err == 0 && (err = iob_batch_start(batch, &loop, on_batch)) != 0)
    iob_batch_free(batch);
  if (err == 0) {
    /* The application's own request, on libuv's pool, as its file system
     * and DNS requests all are. */
    r->stat.data = r;
    r->stat_sent = uv_hrtime();
    err = uv_fs_stat(&loop, &r->stat, path, on_stat);
    if (err != 0)
      iob_batch_cancel(batch);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (err == 0)
      err = r->stat_status != 0 ? r->stat_status : r->batch_status;
    if (err == 0)
      err = iob_batch_report(batch, report);
    iob_batch_free(batch);
  }
  int closed = uv_loop_close(&loop); /* the batch left nothing on it */
  return err != 0 ? err : closed;
}

/* ---- the command line: --help and --version, nothing else --------------- */

enum { OPT_VERSION = 256 };

static const cli_option options[] = {
    {'h', "help", NULL, "show this help and exit"},
    {OPT_VERSION, "version", NULL, "show the version and exit"},
    {0, NULL, NULL, NULL},
};

static const char *usage(void) {
  static char text[1024];
  char lines[256];
  snprintf(text, sizeof(text),
           "Usage: iobound-starvation\n"
           "Run %d blocking operations of %d ms in the pool style, then in "
           "the workers\nstyle, and time a uv_fs_stat() the program makes "
           "meanwhile: on libuv's pool\nit waits behind them, beside "
           "iobound's workers it does not.\n"
           "\n%s",
           OPERATIONS, DURATION_MS,
           cli_help(lines, sizeof(lines), options, NULL));
  return text;
}

static int parse(int argc, char **argv, cli_action *action, char *error,
                 size_t size) {
  cli_options args = {.argc = argc,
                      .argv = argv,
                      .table = options,
                      .error = error,
                      .size = size};
  *action = CLI_RUN;
  for (int opt; (opt = cli_next_option(&args)) != CLI_END;) {
    if (opt == CLI_BAD)
      return CLI_EX_USAGE;
    *action = opt == 'h' ? CLI_HELP : CLI_VERSION;
  }
  return 0;
}

/* ---- the comparison ------------------------------------------------------ */

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static void explain(double pool_ms, double workers_ms) {
  if (pool_ms >= DURATION_MS / 5)
    printf("In the pool style the stat queued behind the operations on "
           "libuv's %u threads\nfor %.0f ms; in the workers style they ran "
           "on threads of iobound's own, and\nthe stat took %.2f ms.\n",
           iob_pool_size(), pool_ms, workers_ms);
  else
    printf("libuv's pool has %u threads (UV_THREADPOOL_SIZE), room for "
           "the operations and\nthe stat: it waited in neither style.\n",
           iob_pool_size());
}

int main(int argc, char **argv) {
  cli_action action;
  char error[256];
  int rc = parse(argc, argv, &action, error, sizeof(error));
  rc = cli_settle("iobound-starvation", rc, action, error, usage());
  if (rc >= 0)
    return rc;

  /* A file that is surely there: this program. */
  char path[4096];
  size_t len = sizeof(path);
  if (uv_exepath(path, &len) != 0) {
    fprintf(stderr, "iobound-starvation: cannot find my own path\n");
    return CLI_EX_FAILED;
  }

  const iob_style *styles[] = {&iob_style_pool, &iob_style_workers};
  run runs[2];
  printf("%d blocking operations of %d ms, and a uv_fs_stat() meanwhile\n\n",
         OPERATIONS, DURATION_MS);
  printf("%-10s %8s %13s %15s\n", "style", "threads", "stat latency",
         "batch elapsed");
  for (int k = 0; k < 2; k++) {
    iob_report report;
    int err = run_style(styles[k], path, &runs[k], &report);
    if (err != 0) {
      fprintf(stderr, "iobound-starvation: the %s style failed: %s\n",
              iob_style_name(styles[k]), iob_strerror(err));
      return CLI_EX_FAILED;
    }
    printf("%-10s %8" PRIu32 " %10.2f ms %12.1f ms\n",
           iob_style_name(styles[k]), report.threads, ms(runs[k].stat_ns),
           ms(report.elapsed_ns));
  }
  puts("");
  explain(ms(runs[0].stat_ns), ms(runs[1].stat_ns));
  return 0;
}
