/* iobound-server's options, its line protocol and its --help, kept apart
 * from the networking so the tests can call them. Its options are those
 * of every program that listens (cli_parse_listen) and its caps. */
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

/* The server's caps across all clients, and their defaults (flags). */
#define SERVER_CONNECTIONS_DEFAULT 1000   /* --max-connections */
#define SERVER_IDLE_DEFAULT_MS 60000      /* --idle-timeout; 0: none */
#define SERVER_HALF_CLOSE_DEFAULT_MS 60000 /* --half-close-timeout; 0: none */
#define SERVER_THREADS_DEFAULT 1000       /* --max-threads */
#define SERVER_OPERATIONS_DEFAULT 1000000 /* --max-operations */
#define SERVER_WORKERS_DEFAULT IOB_WORKERS_DEFAULT /* --workers */
/* Answers waiting for slow readers, all clients together: past it, the
 * client whose answer does not fit is dropped (each client's own bound
 * is CONNECTION_OUTBOX_MAX). */
#define SERVER_OUTBOX_TOTAL_MAX (64 * 1024 * 1024)

/** What iobound-server is asked for on its command line. */
typedef struct server_options {
  cli_listen listen;        /* --host, --port, --help, --version */
  uint32_t max_connections; /* clients at once; beyond: refused */
  uint64_t idle_timeout_ms; /* a client with no batch running; 0: none */
  uint64_t half_close_timeout_ms; /* its answers out after its EOF; 0: none */
  uint32_t max_threads;     /* threads-style threads, all batches */
  uint32_t max_operations;  /* operations in all running batches */
  uint32_t workers;         /* threads of the workers style's pool */
} server_options;

/**
 * Parse iobound-server's arguments: those of cli_parse_listen() and
 * --max-connections N, --idle-timeout MS, --half-close-timeout MS,
 * --max-threads N, --max-operations N, --workers N (defaults above).
 * @return 0, or CLI_EX_USAGE with @p error filled in.
 */
int server_parse_args(int argc, char **argv, server_options *o, char *error,
                      size_t size);

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
 * Parse one request line of @p len bytes (without its newline; a
 * trailing '\r' is allowed), e.g. "run loop 1000 200 limit=10 timeout=50
 * work=wait". Words are separated by spaces and tabs; any other control
 * byte (a NUL, an escape...) refuses the line. A word echoed in a
 * refusal is quoted, its bytes outside printable ASCII escaped (\xNN).
 * @param[out] error receives the reason, without the "error " prefix.
 * @return 0, or -1 with @p error filled in.
 */
int server_parse_request_n(const char *line, size_t len, request *req,
                           char *error, size_t error_size);

/** server_parse_request_n() of a C string (which holds no NUL). */
int server_parse_request(const char *line, request *req, char *error,
                         size_t error_size);



#endif
