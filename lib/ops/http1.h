/* HTTP/1.1 on libuv, without libcurl: the loop styles' path for plain
 * http:// URLs (http1.c), and the parser of its answers (http1-parse.c),
 * which knows nothing of sockets, so that a fuzzer drives it alone.
 * libcurl stays for the rest (https://, HTTP/2, redirects, proxies, the
 * thread styles); a request goes this way only when libcurl would send
 * the same bytes and read the answer the same way (iob__h1_takes()). */
#ifndef IOB_OPS_HTTP1_H
#define IOB_OPS_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* ---- the parser ------------------------------------------------------------ */

/* libcurl's limits, so that an answer fails the same way on both paths:
 * a header line of at most 100 KB (CURL_MAX_HTTP_HEADER), 300 KB of
 * headers in all. */
#define IOB__H1_LINE_MAX (100 * 1024)
#define IOB__H1_HEADERS_MAX (300 * 1024)

/* What the parser hands on as an answer comes: each returns 0, or a
 * negative code that ends the parse with it. */
typedef struct iob__h1_sink {
  /* A status line ("HTTP/1.1 200 OK": a new answer begins, as after a
   * 100 Continue) or a header line ("Name: value"), without CR LF. */
  int (*line)(void *arg, const char *line, size_t len);
  /* Bytes of the body, its chunks' framing taken off. */
  int (*body)(void *arg, const char *data, size_t len);
  void *arg;
} iob__h1_sink;

/* iob__h1_parse()'s "the answer is whole". */
#define IOB__H1_DONE 1

typedef struct iob__h1_parser {
  const iob__h1_sink *sink;
  int state;
  bool head;           /* the answer to a HEAD: no body, whatever it says */
  bool chunked;        /* Transfer-Encoding: chunked, the last coding */
  bool coded;          /* a Transfer-Encoding, chunked or not */
  bool has_length;     /* Content-Length */
  bool closes;         /* Connection: close, or a body up to the close */
  bool keep_alive;     /* Connection: keep-alive (for an HTTP/1.0 answer) */
  int version;         /* 10 or 11 */
  long code;           /* the status code of the answer, 0 before it */
  uint64_t length;     /* Content-Length */
  uint64_t left;       /* of the body, or of the chunk */
  uint64_t received;   /* bytes given to iob__h1_parse() */
  size_t header_bytes; /* of this answer's headers */
  char *line;          /* a line begun in one read, ended in a later one */
  size_t line_len, line_cap;
  char retry_after[64]; /* the value of the last Retry-After, or "" */
  const char *why;      /* words for the code the parser failed with */
  char text[96];        /* room for words with a number in them */
} iob__h1_parser;

/* Ready for an answer (to a HEAD if `head`), its parts going to sink. */
void iob__h1_parser_init(iob__h1_parser *p, const iob__h1_sink *sink,
                         bool head);

/* Free what the parser holds; it may be initialised again. */
void iob__h1_parser_free(iob__h1_parser *p);

/* Parse `len` more bytes of the answer: 0 to ask for more; IOB__H1_DONE
 * when the answer is whole, *used bytes of `data` being its (the rest
 * came after it); or a negative code (UV_EIO for an answer that is not
 * HTTP/1, the sink's code), p->why saying why when the parser failed. */
int iob__h1_parse(iob__h1_parser *p, const char *data, size_t len,
                  size_t *used);

/* The connection closed: IOB__H1_DONE when that ends the answer (a body
 * that runs to the close); UV_EOF when nothing came; UV_EIO when the
 * answer was cut short (p->why says where). */
int iob__h1_closed(iob__h1_parser *p);

/* Whether the connection may carry a next request after this answer,
 * which must be whole. */
bool iob__h1_keeps(const iob__h1_parser *p);

/* ---- the connections -------------------------------------------------------- */

/* An iob_http_client's HTTP/1.1 connections, by origin, on its loop. */
typedef struct iob__h1_client iob__h1_client;

/* A client on `loop`, at most `max_host` connections to one origin (0:
 * no limit). 0 or IOB_ENOMEM. */
int iob__h1_client_make(iob__h1_client **c, uv_loop_t *loop, uint32_t max_host);

/* Close its connections; the last of its handles frees it. No transfer
 * may be under way. */
void iob__h1_client_free(iob__h1_client *c);

/* One request. */
typedef struct iob__h1_request {
  const char *url;
  const char *method;         /* NULL: GET, or POST with a body */
  const char *const *headers; /* "Name: value", up to NULL; or NULL */
  const char *body;           /* NULL: none */
  size_t body_len;
  bool fresh; /* on a connection of its own, closed after the answer */
} iob__h1_request;

/* The longest body that goes this way: libcurl sends a longer one after
 * an "Expect: 100-continue". */
#define IOB__H1_BODY_MAX (1024 * 1024)

/* Whether r goes this way, to be sent as libcurl would send it: an
 * http:// URL with a name or an address written as it is written back, a
 * port, no user name, and a path libcurl sends as it is (no dot
 * segments, no byte it would encode); headers each "Name: value",
 * "Name:" or "Name;", none of them Transfer-Encoding or Expect; a body of
 * at most IOB__H1_BODY_MAX, and none to a HEAD. */
bool iob__h1_takes(const iob__h1_request *r);

typedef struct iob__h1_xfer iob__h1_xfer;

/* The transfer ended: status 0 with the whole answer parsed, or why not
 * (x->why in words). Called on the loop, never from iob__h1_start() or
 * iob__h1_stop(). */
typedef void (*iob__h1_done_cb)(iob__h1_xfer *x, int status);

/* One request and its answer: the caller's memory, from
 * iob__h1_start() until its done callback, or iob__h1_stop(). */
struct iob__h1_xfer {
  iob__h1_parser p; /* what came back: p.code, p.version... */
  iob__h1_done_cb done;
  void *arg;
  struct h1_origin *o;
  struct h1_conn *conn;      /* the connection it is on, or NULL */
  struct h1_list *in;        /* the list it waits in, or NULL */
  iob__h1_xfer *prev, *next; /* in that list */
  int status;                /* why it is doomed */
  char *req;                 /* the request's head */
  size_t req_len;
  const char *body;
  size_t body_len;
  uint32_t addr; /* which of the origin's addresses it tries */
  bool fresh, reused, retried;
  bool busy;    /* its answer is being parsed: its sink is running */
  bool stopped; /* by iob__h1_stop() while busy */
  /* uv_hrtime() when it began, its host's name was known, its
   * connection was made (0: it reused one), its answer's first byte
   * came, and it ended. */
  uint64_t start_ns, name_ns, connect_ns, first_ns, end_ns;
  char why[160];
};

/* Begin request r, one iob__h1_takes() took, on c with x, whose p.sink,
 * done and arg the caller set; r's strings are read now, its body until
 * the transfer ends. 0, or IOB_ENOMEM with nothing begun. */
int iob__h1_start(iob__h1_client *c, iob__h1_xfer *x, const iob__h1_request *r);

/* End a transfer begun and not done: its connection closes. true: it is
 * over, and its done callback is not called; false: it was stopped from
 * its own sink, and its done callback comes with IOB_ECANCELED once the
 * sink has returned. */
bool iob__h1_stop(iob__h1_xfer *x);

/* Free what x holds (its request, its parser's line); it is ended. */
void iob__h1_xfer_free(iob__h1_xfer *x);

#endif /* IOB_OPS_HTTP1_H */
