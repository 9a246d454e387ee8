/* iobound-server's options, its line protocol and its --help, kept apart
 * from the networking so the tests can call them. Its options are those
 * of every program that listens (cli_parse_listen) and its caps. */
#ifndef IOB_SERVER_H
#define IOB_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "connection.h"
#include "iobound.h"

/* Bounds on what one request may ask for: a server shares its loop, its
 * memory and libuv's pool between clients, so no client gets it all. */
#define SERVER_LINE_MAX 1024         /* bytes in a request, without '\n' */
#define SERVER_COUNT_MAX 100000      /* operations in one batch */
#define SERVER_DURATION_MAX_MS 60000 /* one operation's wait or timeout */
#define SERVER_THREADS_MAX 1000      /* thread-each styles: threads at once */
#define SERVER_STREAM_MAX 1000       /* operations when streaming each */
#define SERVER_RATE_MAX 1000000      /* rate=R: arrivals a second */

/* The server's caps across all clients, and their defaults (flags). */
#define SERVER_CONNECTIONS_DEFAULT 1000    /* --max-connections */
#define SERVER_IDLE_DEFAULT_MS 60000       /* --idle-timeout; 0: none */
#define SERVER_HALF_CLOSE_DEFAULT_MS 60000 /* --half-close-timeout; 0: none */
#define SERVER_THREADS_DEFAULT 1000        /* --max-threads */
#define SERVER_OPERATIONS_DEFAULT 1000000  /* --max-operations */
#define SERVER_WORKERS_DEFAULT IOB_WORKERS_DEFAULT /* --workers */
/* Answers waiting for slow readers, all clients together: past it, the
 * client whose answer does not fit is dropped (each client's own bound
 * is CONNECTION_OUTBOX_MAX). */
#define SERVER_OUTBOX_TOTAL_MAX (64 * 1024 * 1024)

/** What iobound-server is asked for on its command line. */
typedef struct server_options {
  cli_listen listen;              /* --host, --port, --help, --version */
  uint32_t max_connections;       /* clients at once; beyond: refused */
  uint64_t idle_timeout_ms;       /* a client with no batch running; 0: none */
  uint64_t half_close_timeout_ms; /* its answers out after its EOF; 0: none */
  uint32_t max_threads;           /* threads-style threads, all batches */
  uint32_t max_operations;        /* operations in all running batches */
  uint32_t workers;               /* threads of the workers style's pool */
  bool http;                      /* --http PORT: the page, on that port too */
  unsigned int http_port;         /* 0: the system picks one */
} server_options;

/**
 * Parse iobound-server's arguments: those of cli_parse_listen() and
 * --max-connections N, --idle-timeout MS, --half-close-timeout MS,
 * --max-threads N, --max-operations N, --workers N (defaults above) and
 * --http PORT.
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
  /* REQUEST_RUN with rate=R: its COUNT operations arrive R a second, at
   * random with arrivals=poisson, into an open batch; 0: all at once. */
  uint32_t rate;
  bool poisson;
} request;

/**
 * Parse one request line of @p len bytes (without its newline; a
 * trailing '\r' is allowed), e.g. "run loop 1000 200 limit=10 timeout=50
 * work=wait rate=100 arrivals=poisson". Words are separated by spaces and tabs; any other control
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

/* ---- the page's HTTP (--http PORT) ---- */

/* Header lines an HTTP request may have, at most, after its first. */
#define SERVER_HTTP_HEADERS_MAX 100

typedef enum http_route {
  HTTP_PAGE,  /* GET /: the page */
  HTTP_RUN,   /* GET /run?WORDS: a run request's words, its answer streamed
               * as Server-Sent Events */
  HTTP_STATS, /* GET /stats: the stats request's answer */
} http_route;

/**
 * Parse the first line of an HTTP request, of @p len bytes (without its
 * newline; a trailing '\r' is allowed): "GET /run?loop+10+200+limit=2
 * HTTP/1.1" is the run request "run loop 10 200 limit=2 stream=1", its
 * words percent-encoded, '+' for a space, and refused as the line
 * protocol refuses it, within the same caps (a run on the page always
 * streams, so it takes at most SERVER_STREAM_MAX operations). HEAD asks
 * for the head of the page's or the stats' answer.
 * @param[out] head_only whether it is HEAD.
 * @param[out] req for HTTP_RUN, the request.
 * @param[out] error the reason, for a refusal.
 * @return 200, with @p route set; or the status to answer: 400 (a bad
 *         line or request), 404 (no such page), 405 (not GET or HEAD, or
 *         a run with HEAD), 414 (a query too long) or 505 (not HTTP/1.x),
 *         with @p error filled.
 */
int server_parse_http(const char *line, size_t len, http_route *route,
                      bool *head_only, request *req, char *error,
                      size_t error_size);

/**
 * Judge one header line of @p len bytes of a request for @p route. A
 * Host that is neither an address nor localhost is refused (a name of
 * another site's could point here: DNS rebinding), and so is a run that a
 * browser says comes from another site (Sec-Fetch-Site other than
 * same-origin or none). Other headers are not read.
 * @return 200, or 403 with @p error filled.
 */
int server_check_http_header(const char *line, size_t len, http_route route,
                             char *error, size_t error_size);

/** The page: one HTML file with its script and style (live.html). */
extern const char server_page[];

/* Answers over HTTP (server-http.c), each on a connection of its own:
 * every one but the stream of events ends the connection. */

/** @p status with "error TEXT" as its body, as a line would say it. */
void http_send_error(connection *conn, int status, const char *text);
/** The page; its head alone if @p head_only (HEAD). */
void http_send_page(connection *conn, bool head_only);
/** One line of JSON; its head alone if @p head_only. */
void http_send_json(connection *conn, const char *json, bool head_only);
/** The head of a stream of Server-Sent Events. */
void http_start_events(connection *conn);
/** One event of the stream: its name and its one line of data. */
void http_send_event(connection *conn, const char *event, const char *data);

#endif
