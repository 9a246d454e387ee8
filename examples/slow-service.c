/* iobound-slow-service: the slow service on its own, to compare against
 * (iobound-compare --work tcp --target 127.0.0.1:PORT).
 *
 *   iobound-slow-service [--host IP] [--port N]
 *
 * Prints "listening on IP:PORT" once it listens (--port 0, the default,
 * takes any free port), then serves until SIGINT or SIGTERM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slow-server.h"

static const char usage[] =
    "Usage: iobound-slow-service [--host IP] [--port N]\n"
    "Answer each line \"wait MS\" with \"done MS\" after MS milliseconds.\n"
    "  --host IP   the address to listen on (default 127.0.0.1)\n"
    "  --port N    the port, 0..65535 (default 0: any free one)\n";

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  unsigned long port = 0;
  for (int i = 1; i < argc; i++) {
    char *end = NULL;
    if (strcmp(argv[i], "--help") == 0) {
      fputs(usage, stdout);
      return 0;
    } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
      host = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc &&
               (port = strtoul(argv[++i], &end, 10), *end == '\0') &&
               port <= 65535 && argv[i][0] >= '0' && argv[i][0] <= '9') {
      continue;
    } else {
      fprintf(stderr, "iobound-slow-service: bad argument '%s'\n%s", argv[i],
              usage);
      return 64;
    }
  }
  unsigned long fds = fd_limit_raise();
  slow_server *server;
  int err = slow_server_open(&server, host, (unsigned)port);
  if (err != 0) {
    fprintf(stderr, "iobound-slow-service: cannot listen on %s:%lu: %s\n",
            host, port, uv_strerror(err));
    return 1;
  }
  printf("listening on %s%s%s:%u (up to %lu connections)\n",
         strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
         slow_server_port(server), fds);
  fflush(stdout);
  slow_server_run(server);
  slow_server_close(server);
  return 0;
}
