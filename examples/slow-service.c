/* iobound-slow-service: the slow service on its own, to compare against
 * (iobound-compare --work tcp --target 127.0.0.1:PORT). It answers HTTP
 * on the same port: curl http://127.0.0.1:PORT/wait/100.
 *
 *   iobound-slow-service [--host ADDRESS] [--port N]
 *
 * Prints "listening on IP:PORT" once it listens (--port 0, the default,
 * takes any free port), then serves until SIGINT or SIGTERM. A client may
 * shut its sending side down after its request: it is answered. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "slow-server.h"

static const char *usage(void) {
  static char text[1024];
  char options[768];
  snprintf(text, sizeof(text),
           "Usage: iobound-slow-service [OPTION]...\n"
           "Answer each line \"wait MS\" with \"done MS\" after MS "
           "milliseconds,\nthen close; also after the client has shut its "
           "side down (EOF).\n"
           "Answer HTTP/1.1 \"GET /wait/MS\" with \"done MS\" after MS "
           "milliseconds,\nkeeping the connection alive.\n"
           "\n"
           "%s",
           cli_help(options, sizeof(options), cli_listen_options, NULL));
  return text;
}

int main(int argc, char **argv) {
  cli_listen o;
  char error[256];
  int rc = cli_parse_listen(argc, argv, &o, error, sizeof(error));
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
  bool bare_v6 = o.host[0] != '[' && strchr(o.host, ':') != NULL;
  printf("listening on %s%s%s:%u (up to %lu connections)\n", bare_v6 ? "[" : "",
         o.host, bare_v6 ? "]" : "", slow_server_port(server), fds);
  fflush(stdout);
  slow_server_run(server);
  slow_server_close(server);
  return 0;
}
