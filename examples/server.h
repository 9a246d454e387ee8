/* iobound-server's command line and its line protocol, kept apart from the
 * networking so the tests can call them. */
#ifndef IOB_SERVER_H
#define IOB_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "iobound.h"

#define SERVER_EX_USAGE 64 /* sysexits.h's EX_USAGE */

/* Bounds on what one request may ask for: a server shares its loop, its
 * memory and libuv's pool between clients, so no client gets it all. */
#define SERVER_LINE_MAX 1024         /* bytes in a request, without '\n' */
#define SERVER_COUNT_MAX 100000      /* operations in one batch */
#define SERVER_DURATION_MAX_MS 60000 /* one operation's wait or timeout */
#define SERVER_THREADS_MAX 1000      /* threads style: threads at once */
#define SERVER_STREAM_MAX 1000       /* operations when streaming each */

typedef enum server_action {
  SERVER_SERVE,
  SERVER_HELP,
  SERVER_VERSION,
} server_action;

typedef struct server_opts {
  server_action action;
  const char *host;             /* as given: "127.0.0.1" by default */
  struct sockaddr_storage addr; /* host and port, ready for uv_tcp_bind */
  unsigned int port;            /* 0: the system picks one */
} server_opts;

/**
 * Parse the arguments into @p opts.
 * @param[out] error receives a one-line message when parsing fails.
 * @return 0, or SERVER_EX_USAGE with @p error filled in.
 */
int server_parse_args(int argc, char **argv, server_opts *opts, char *error,
                      size_t error_size);

/** The --help text. */
extern const char server_usage[];

typedef enum request_kind {
  REQUEST_NONE, /* an empty line: nothing to do, nothing to answer */
  REQUEST_RUN,
  REQUEST_PING,
  REQUEST_STATS,
  REQUEST_QUIT,
} request_kind;

typedef struct request {
  request_kind kind;
  iob_config config; /* REQUEST_RUN: what to run (data, on_op unset) */
  bool stream;       /* REQUEST_RUN: a line per operation as it settles */
} request;

/**
 * Parse one request line (without its newline; a trailing '\r' is
 * allowed), e.g. "run loop 1000 200 limit=10 timeout=50 work=wait".
 * @param[out] error receives the reason, without the "error " prefix.
 * @return 0, or -1 with @p error filled in.
 */
int server_parse_request(const char *line, request *req, char *error,
                         size_t error_size);

#endif
