/* iobound-server's line protocol and its --help, kept apart from the
 * networking so the tests can call them. Its options are those of every
 * program that listens (cli_parse_listen). */
#ifndef IOB_SERVER_H
#define IOB_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "iobound.h"

/* Bounds on what one request may ask for: a server shares its loop, its
 * memory and libuv's pool between clients, so no client gets it all. */
#define SERVER_LINE_MAX 1024         /* bytes in a request, without '\n' */
#define SERVER_COUNT_MAX 100000      /* operations in one batch */
#define SERVER_DURATION_MAX_MS 60000 /* one operation's wait or timeout */
#define SERVER_THREADS_MAX 1000      /* thread-each styles: threads at once */
#define SERVER_STREAM_MAX 1000       /* operations when streaming each */

/** @return the --help text. */
const char *server_usage(void);

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
