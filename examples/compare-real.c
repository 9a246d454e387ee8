/* iobound-compare on real I/O: requests over TCP to the slow service, or
 * to any service that speaks its protocol (--target); or queries that
 * sleep on PostgreSQL (--pg). */
#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>

#include "compare.h"
#include "slow-server.h"

static iob_tcp_target *tcp;
static iob_pg_target *pg;
static pid_t service; /* the slow service we started; 0: none */

int compare_real_start(const compare_opts *o) {
  if (o->io == COMPARE_SIMULATED)
    return 0;
  fd_limit_raise(); /* every connection is a descriptor */
  if (o->io == COMPARE_PG) {
    char query[64]; /* each operation's duration, slept by the server */
    snprintf(query, sizeof(query), "SELECT pg_sleep(%.3f)",
             (double)o->duration_ms / 1000.0);
    int err = iob_pg_target_create(&pg, o->pg, query);
    if (err == IOB_EINVAL)
      fprintf(stderr,
              "iobound-compare: --pg takes a libpq connection string, not "
              "'%s'\nTry 'iobound-compare --help'.\n",
              o->pg);
    else if (err != 0)
      fprintf(stderr, "iobound-compare: --pg: %s\n",
              err == IOB_ENOTSUP ? "built without libpq (PostgreSQL)"
                                 : iob_strerror(err));
    return err;
  }
  char address[64];
  const char *target = o->target;
  if (target == NULL) {
    unsigned port;
    int err = slow_server_fork("127.0.0.1", &port, &service);
    if (err != 0) {
      fprintf(stderr, "iobound-compare: cannot start the slow service: %s\n",
              uv_strerror(err));
      return err;
    }
    snprintf(address, sizeof(address), "127.0.0.1:%u", port);
    target = address;
    if (!o->quiet)
      printf("The slow service runs on %s for this comparison.\n", target);
  }
  int err = iob_tcp_target_create(&tcp, target);
  if (err != 0)
    fprintf(stderr, "iobound-compare: bad target %s\n", target);
  return err;
}

int compare_real_use(const compare_opts *o, iob_config *config) {
  if (o->io == COMPARE_PG)
    return iob_pg_use(config, pg);
  return o->io == COMPARE_TCP ? iob_tcp_use(config, tcp) : 0;
}

uint32_t compare_real_failures(const compare_opts *o, const iob_batch *batch,
                               const iob_report *r) {
  if (r->failed == 0)
    return 0;
  uint32_t n = 0, emfile = 0, first = UINT32_MAX;
  const iob_record *rec = iob_batch_records(batch, &n);
  for (uint32_t i = 0; i < n; i++) {
    if (rec[i].status != 0 && first == UINT32_MAX)
      first = i;
    emfile += rec[i].status == UV_EMFILE;
  }
  uint32_t failed = r->failed;
  fprintf(stderr, "iobound-compare: the %s style: %" PRIu32 " of %" PRIu32
          " operations failed; the first, #%" PRIu32 ": %s (%s)\n",
          iob_style_name(r->style), failed, n, first,
          iob_strerror(rec[first].status), iob_err_name(rec[first].status));
  if (o->io == COMPARE_PG && iob_pg_error(pg, first) != NULL)
    fprintf(stderr, "iobound-compare: PostgreSQL said: %s\n",
            iob_pg_error(pg, first));
  if (emfile != 0) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    fprintf(stderr,
            "iobound-compare: out of file descriptors: the limit is %llu "
            "(ulimit -n) and %" PRIu32 " operations found none; use --limit "
            "to run fewer at once\n",
            (unsigned long long)rl.rlim_cur, emfile);
  }
  return failed;
}

void compare_real_stop(void) {
  iob_tcp_target_destroy(tcp);
  iob_pg_target_destroy(pg);
  tcp = NULL;
  pg = NULL;
  if (service != 0)
    slow_server_kill(service);
  service = 0;
}
