/* A plain HTTP/1.1 client over a blocking socket, for the tests of the
 * slow service (test-slow-http.c) and of the nginx harness
 * (test-nginx-smoke.c): it sends bytes exactly as given, so a test can
 * write malformed, pipelined or oversized requests, and reads responses
 * one at a time (Content-Length or chunked bodies). Every call asserts
 * (cmocka) that the socket works; reads give up after 10 s. */
#ifndef IOB_TEST_HTTP_CLIENT_H
#define IOB_TEST_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct http_conn {
  int fd;
  size_t len; /* bytes received, not yet read as a response */
  char buf[32 * 1024];
} http_conn;

typedef struct http_response {
  int status;
  bool closes;          /* "Connection: close" */
  bool keep_alive;      /* "Connection: keep-alive" */
  char type[64];        /* Content-Type */
  char allow[64];       /* Allow */
  char retry_after[16]; /* Retry-After, "" if none */
  long length;          /* Content-Length, or -1 */
  char body[512];       /* NUL-terminated (cut short past 511 bytes) */
  size_t body_len;
} http_response;

/* Connect to 127.0.0.1:port. */
void http_connect(http_conn *c, unsigned port);

/* Send `text` (strlen bytes), or `n` bytes. */
void http_send(http_conn *c, const char *text);
void http_send_n(http_conn *c, const char *data, size_t n);

/* Read one response; without its body if `head_only` (an answer to
 * HEAD). */
void http_read(http_conn *c, http_response *r, bool head_only);

/* The peer has closed: nothing more than EOF (within 10 s). */
bool http_at_eof(http_conn *c);

/* The connection is open and nothing waits to be read. */
bool http_is_idle(http_conn *c);

void http_close(http_conn *c);

/* The PORT of "http://127.0.0.1:PORT"; 0 if it is not that. */
unsigned http_url_port(const char *url);

/* A GET of `path` as a client sends it, HTTP/1.1 to 127.0.0.1. */
#define GET(path) "GET " path " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

/* GET /wait/MS on `n` connections to `port` at once; every answer must be
 * "done MS\n". Returns the ms from the first connect to the last answer. */
double http_waits_at_once(unsigned port, int n, unsigned ms);

#endif
