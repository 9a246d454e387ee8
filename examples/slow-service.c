/* iobound-slow-service: the slow service on its own, to compare against
 * (iobound-compare --work tcp --target 127.0.0.1:PORT). It answers HTTP
 * on the same port: curl http://127.0.0.1:PORT/wait/100.
 *
 *   iobound-slow-service [--host ADDRESS] [--port N] [--fail SHARE]
 *       [--fail-status 503|500] [--retry-after S] [--slow SHARE:FACTOR]
 *       [--seed N]
 *
 * Prints "listening on IP:PORT" once it listens (--port 0, the default,
 * takes any free port), then serves until SIGINT or SIGTERM. A client may
 * shut its sending side down after its request: it is answered. The
 * fault options make it a service to fail against: --fail 0.3 fails 30%
 * of the requests at once, --slow 0.02:10 answers 2% ten times late. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "slow-server.h"

enum { OPT_FAIL = 300, OPT_FAIL_STATUS, OPT_RETRY_AFTER, OPT_SLOW, OPT_SEED };

static const cli_option fault_options[] = {
    {OPT_FAIL, "fail", "SHARE",
     "fail this share of the requests at once, 0..1 or a percentage "
     "(0.3, 30%): HTTP 503, the line protocol \"error unavailable\""},
    {OPT_FAIL_STATUS, "fail-status", "CODE",
     "the HTTP status of a failure: 503 (the default) or 500"},
    {OPT_RETRY_AFTER, "retry-after", "S",
     "a failed HTTP answer says Retry-After: S (seconds, 1..86400)"},
    {OPT_SLOW, "slow", "SHARE:FACTOR",
     "answer this share of the other requests FACTOR (2..1000) times late: "
     "0.02:10 makes a heavy tail"},
    {OPT_SEED, "seed", "N",
     "the seed of the draws (1..2^64-1): the same seed fails and delays the "
     "same requests, in order of arrival; by default one from the clock"},
    {0, NULL, NULL, NULL},
};

/* A share: "0.3" or "30%", 0..1 once read. */
static bool parse_share(const char *text, double *share) {
  char *end;
  double v = strtod(text, &end);
  if (end == text || !isfinite(v))
    return false;
  if (*end == '%') {
    v /= 100;
    end++;
  }
  *share = v;
  return *end == '\0' && v >= 0 && v <= 1;
}

static int fault_option(int opt, const char *value, void *arg, char *error,
                        size_t size) {
  slow_faults *f = arg;
  uint64_t n;
  switch (opt) {
  case OPT_FAIL:
    if (parse_share(value, &f->fail))
      return 0;
    return cli_fail(error, size,
                    "--fail takes a share from 0 to 1 (0.3) or a percentage "
                    "(30%%), not '%s'",
                    value);
  case OPT_FAIL_STATUS:
    if (cli_parse_uint(value, 500, 503, &n) && (n == 500 || n == 503)) {
      f->fail_status = (int)n;
      return 0;
    }
    return cli_fail(error, size, "--fail-status takes 503 or 500, not '%s'",
                    value);
  case OPT_RETRY_AFTER:
    if (cli_parse_uint(value, 1, 86400, &n)) {
      f->retry_after = (uint32_t)n;
      return 0;
    }
    return cli_fail(error, size,
                    "--retry-after takes seconds from 1 to 86400, not '%s'",
                    value);
  case OPT_SLOW: {
    const char *colon = strchr(value, ':');
    char share[64];
    if (colon != NULL && (size_t)(colon - value) < sizeof(share)) {
      snprintf(share, sizeof(share), "%.*s", (int)(colon - value), value);
      if (parse_share(share, &f->slow) &&
          cli_parse_uint(colon + 1, 2, 1000, &n)) {
        f->slow_factor = (uint32_t)n;
        return 0;
      }
    }
    return cli_fail(error, size,
                    "--slow takes SHARE:FACTOR, a share from 0 to 1 and a "
                    "factor from 2 to 1000 (0.02:10), not '%s'",
                    value);
  }
  default:
    if (cli_parse_uint(value, 1, UINT64_MAX, &n)) {
      f->seed = n;
      return 0;
    }
    return cli_fail(error, size,
                    "--seed takes a number from 1 to 2^64-1, not '%s'", value);
  }
}

static const char *usage(void) {
  static char text[4096];
  char options[3072];
  cli_option table[CLI_OPTIONS_MAX + 1];
  snprintf(text, sizeof(text),
           "Usage: iobound-slow-service [OPTION]...\n"
           "Answer each line \"wait MS\" with \"done MS\" after MS "
           "milliseconds,\nthen close; also after the client has shut its "
           "side down (EOF).\n"
           "Answer HTTP/1.1 \"GET /wait/MS\" with \"done MS\" after MS "
           "milliseconds,\nkeeping the connection alive.\n"
           "With the fault options it fails or delays a share of the "
           "requests,\nas remote services do.\n"
           "\n"
           "%s",
           cli_help(options, sizeof(options),
                    cli_listen_table(fault_options, table), NULL));
  return text;
}

int main(int argc, char **argv) {
  cli_listen o;
  slow_faults faults = {0};
  char error[256];
  int rc = cli_parse_listen_with(argc, argv, &o, fault_options, fault_option,
                                 &faults, error, sizeof(error));
  rc = cli_settle("iobound-slow-service", rc, o.action, error, usage());
  if (rc >= 0)
    return rc;

  unsigned long fds = fd_limit_raise();
  slow_server *server;
  int err = slow_server_open(&server, o.host, o.port);
  if (err != 0) {
    fprintf(stderr, "iobound-slow-service: cannot listen on %s port %u: %s\n",
            o.host, o.port, iob_strerror(err));
    return CLI_EX_FAILED;
  }
  slow_server_set_faults(server, &faults);
  bool bare_v6 = o.host[0] != '[' && strchr(o.host, ':') != NULL;
  printf("listening on %s%s%s:%u (up to %lu connections)\n", bare_v6 ? "[" : "",
         o.host, bare_v6 ? "]" : "", slow_server_port(server), fds);
  fflush(stdout);
  slow_server_run(server);
  slow_server_close(server);
  return 0;
}
