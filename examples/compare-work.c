/* What iobound-compare's operations do: a kind built into the library
 * (wait, cpu, tcp, file) or iobound-pg's or iobound-http's, and what they
 * act on: requests over TCP to the slow service, or to any service that
 * speaks its protocol (--target); queries that sleep on PostgreSQL
 * (--pg); HTTP GETs of the slow service or of any URL (--url); files in
 * a directory (--dir). */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "compare.h"
#include "slow-server.h"
#if IOB_EXAMPLES_PG
#include "iobound/pg.h"
#endif
#if IOB_EXAMPLES_HTTP
#include "iobound/http.h"
#endif

/* iobound-pg and iobound-http are loaded only for --work pg and http:
 * with them come libpq and libcurl and the thirty libraries they bring,
 * which took about 10 ms to load and map at every start (a program doing
 * nothing starts in 1). They stay loaded until the program exits:
 * libcurl's TLS library leaves exit handlers behind. */
#if IOB_EXAMPLES_PG || IOB_EXAMPLES_HTTP
typedef struct lazy_lib {
  const char *soname;
  void *handle;
} lazy_lib;

/* Symbol `name` of library l, loaded now if need be, into *to (a
 * function pointer's or an object pointer's room); false, the reason
 * said, if either is missing. */
static bool load(lazy_lib *l, const char *name, void *to, size_t size) {
  if (l->handle == NULL &&
      (l->handle = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL)) == NULL) {
    cli_error(COMPARE_NAME, "cannot load %s: %s", l->soname, dlerror());
    return false;
  }
  void *p = dlsym(l->handle, name);
  if (p == NULL) {
    cli_error(COMPARE_NAME, "%s has no %s: %s", l->soname, name, dlerror());
    return false;
  }
  memcpy(to, &p, size); /* (ISO C converts no object pointer to a function's) */
  return true;
}
#endif

static const iob_kind *kind;
static const void *target; /* tcp or pg below, or NULL */
static iob_mixed mixed;
static iob_tcp_target *tcp;
#if IOB_EXAMPLES_PG
static iob_pg_target *pg;
static lazy_lib pg_lib = {IOB_EXAMPLES_PG_SONAME, NULL};
static int (*pg_create)(iob_pg_target **, const char *, const char *);
static int (*pg_destroy)(iob_pg_target *);
#endif
#if IOB_EXAMPLES_HTTP
static iob_http_target *http;
static lazy_lib http_lib = {IOB_EXAMPLES_HTTP_SONAME, NULL};
static int (*http_create)(iob_http_target **, const iob_http_options *);
static int (*http_destroy)(iob_http_target *);
#endif
static pid_t service; /* the slow service we started; 0: none */
static iob_file_target *files;
static char own_dir[64]; /* made for --work file without --dir; "": none */

/* --work pg: a query that sleeps each operation's duration on the server. */
static int start_pg(const compare_opts *o) {
#if IOB_EXAMPLES_PG
  char query[64];
  snprintf(query, sizeof(query), "SELECT pg_sleep(%.3f)",
           (double)o->duration_ms / 1000.0);
  const iob_kind *pg_kind;
  if (!load(&pg_lib, "iob_pg_target_create", &pg_create, sizeof(pg_create)) ||
      !load(&pg_lib, "iob_pg_target_destroy", &pg_destroy,
            sizeof(pg_destroy)) ||
      !load(&pg_lib, "iob_kind_pg", &pg_kind, sizeof(pg_kind)))
    return CLI_EX_FAILED;
  int err = pg_create(&pg, o->pg, query);
  if (err == IOB_EINVAL)
    return cli_usage_error(
        COMPARE_NAME, "--pg takes a libpq connection string, not '%s'", o->pg);
  if (err != 0) {
    cli_error(COMPARE_NAME, "--pg: %s", iob_strerror(err));
    return CLI_EX_FAILED;
  }
  kind = pg_kind;
  target = pg;
  return 0;
#else
  cli_error(COMPARE_NAME,
            "--work %s: iobound was built without PostgreSQL support", o->work);
  return CLI_EX_FAILED;
#endif
}

/* Start the slow service for this run: its address in `address`. */
static int start_service(const compare_opts *o, char *address, size_t size) {
  unsigned port;
  int err = slow_server_fork("127.0.0.1", &port, &service);
  if (err != 0) {
    cli_error(COMPARE_NAME, "cannot start the slow service: %s",
              iob_strerror(err));
    return CLI_EX_FAILED;
  }
  snprintf(address, size, "127.0.0.1:%u", port);
  if (!o->quiet) /* not a result: stdout is for results only */
    fprintf(stderr, "The slow service runs on %s for this comparison.\n",
            address);
  return 0;
}

/* --work http: GET --url, or the slow service's /wait/{ms}. */
static int start_http(const compare_opts *o) {
#if IOB_EXAMPLES_HTTP
  char address[64], url[96];
  const char *where = o->url;
  if (where == NULL) {
    int err = start_service(o, address, sizeof(address));
    if (err != 0)
      return err;
    snprintf(url, sizeof(url), "http://%s/wait/{ms}", address);
    where = url;
  }
  const iob_kind *http_kind;
  if (!load(&http_lib, "iob_http_target_create", &http_create,
            sizeof(http_create)) ||
      !load(&http_lib, "iob_http_target_destroy", &http_destroy,
            sizeof(http_destroy)) ||
      !load(&http_lib, "iob_kind_http", &http_kind, sizeof(http_kind)))
    return CLI_EX_FAILED;
  iob_http_options options = {.url = where};
  int err = http_create(&http, &options);
  /* The parser refused what the library refuses of a URL; this is in
   * case the two ever part. */
  if (err == IOB_EINVAL)
    return cli_usage_error(COMPARE_NAME, "--url %s: %s", where,
                           iob_strerror(err));
  if (err != 0) {
    cli_error(COMPARE_NAME, "--url %s: %s", where, iob_strerror(err));
    return CLI_EX_FAILED;
  }
  kind = http_kind;
  target = http;
  return 0;
#else
  cli_error(COMPARE_NAME, "--work %s: iobound was built without libcurl",
            o->work);
  return CLI_EX_FAILED;
#endif
}

/* --work tcp: the service at --target, or the slow service, started now. */
static int start_tcp(const compare_opts *o) {
  char address[64];
  const char *where = o->target;
  if (where == NULL) {
    int err = start_service(o, address, sizeof(address));
    if (err != 0)
      return err;
    where = address;
  }
  int err = iob_tcp_target_create(&tcp, where);
  if (err == IOB_EINVAL)
    return cli_usage_error(COMPARE_NAME, "bad target %s: %s", where,
                           iob_strerror(err));
  if (err != 0) {
    cli_error(COMPARE_NAME, "bad target %s: %s", where, iob_strerror(err));
    return CLI_EX_FAILED;
  }
  target = tcp;
  return 0;
}

/* --work file: 256 KiB written with fsync, per operation, in --dir or in
 * a directory of our own under /tmp (removed by compare_work_stop()). */
static int start_file(const compare_opts *o) {
  const char *where = o->dir;
  if (where == NULL) {
    snprintf(own_dir, sizeof(own_dir), "/tmp/iobound-compare-XXXXXX");
    if (mkdtemp(own_dir) == NULL) {
      cli_error(COMPARE_NAME, "cannot make a directory under /tmp: %s",
                strerror(errno));
      own_dir[0] = '\0';
      return CLI_EX_FAILED;
    }
    where = own_dir;
  }
  iob_file_options options;
  iob_file_options_init(&options);
  options.size_kib = 256;
  options.fsync = 1;
  int err = iob_file_target_create(&files, where, &options);
  if (err != 0) { /* the directory is the user's: its name is escaped */
    cli_error(COMPARE_NAME, "--dir %s: %s", where, iob_strerror(err));
    return CLI_EX_FAILED;
  }
  target = files;
  return 0;
}

int compare_work_start(const compare_opts *o) {
  kind = iob_kind_find(o->work); /* NULL: iobound-pg's, not built in */
  target = NULL;
  if (kind == &iob_kind_file)
    return start_file(o);
  if (kind == &iob_kind_mixed) {
    mixed.cpu_us = o->cpu_us;
    target = &mixed;
    return 0;
  }
  if (kind != NULL && kind != &iob_kind_tcp)
    return 0;
  fd_limit_raise(); /* every connection is a descriptor */
  if (kind == &iob_kind_tcp)
    return start_tcp(o);
  return strcmp(o->work, COMPARE_HTTP_KIND) == 0 ? start_http(o) : start_pg(o);
}

void compare_work_use(iob_config *config) {
  config->kind = kind;
  config->target = target;
}

uint32_t compare_work_failures(const iob_batch *batch, const iob_report *r) {
  if (r->failed == 0)
    return 0;
  uint32_t n = 0, emfile = 0, first = UINT32_MAX;
  const iob_record *rec = iob_batch_records(batch, &n);
  for (uint32_t i = 0; i < n; i++) {
    if (rec[i].status != 0 && first == UINT32_MAX)
      first = i;
    emfile += rec[i].status == UV_EMFILE;
  }
  /* Its message says why in the kind's own words ("connect to
   * 127.0.0.1:1: connection refused", what PostgreSQL said...), which
   * may quote --dir, --url or what a server answered: escaped. */
  iob_outcome out = {.status = rec[first].status};
  iob_batch_outcome(batch, first, &out);
  cli_error(COMPARE_NAME,
            "the %s style: %" PRIu32 " of %" PRIu32
            " operations failed; the first, #%" PRIu32 ": %s (%s)",
            iob_style_name(r->style), r->failed, n, first,
            out.message ? out.message : iob_strerror(out.status),
            iob_err_name(out.status));
  if (r->status == IOB_EAGAIN) /* a thread refused: the batch stopped */
    cli_error(COMPARE_NAME,
              "the system refused a thread with %" PRIu32
              " running: it allows about %" PRIu32
              " more now (ulimit -u, threads-max); add --limit %" PRIu32
              " (or less)",
              r->threads, iob_threads_available(),
              r->threads > 1 ? r->threads / 2 : 1);
  if (emfile != 0) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    cli_error(COMPARE_NAME,
              "out of file descriptors: the limit is %llu (ulimit -n) and "
              "%" PRIu32 " operations found none; use --limit to run fewer "
              "at once",
              (unsigned long long)rl.rlim_cur, emfile);
  }
  return r->failed;
}

void compare_work_stop(void) {
  iob_tcp_target_destroy(tcp);
  tcp = NULL;
  iob_file_target_destroy(files);
  files = NULL;
  if (own_dir[0] != '\0')
    rmdir(own_dir); /* empty: each operation removed its file */
  own_dir[0] = '\0';
#if IOB_EXAMPLES_PG
  if (pg != NULL)
    pg_destroy(pg);
  pg = NULL;
#endif
#if IOB_EXAMPLES_HTTP
  if (http != NULL)
    http_destroy(http);
  http = NULL;
#endif
  target = NULL;
  if (service != 0)
    slow_server_kill(service);
  service = 0;
}
