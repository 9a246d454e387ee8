/* The HTTP client (http-client.c) as the kind (http.c) sees it. */
#ifndef IOB_OPS_HTTP_CLIENT_H
#define IOB_OPS_HTTP_CLIENT_H

#include <stdbool.h>

#include <curl/curl.h>

#include "http1.h"
#include "iobound/http.h"
#include "target.h"

/* What an HTTP target is: the second member of both, after the count of
 * users, so that the kind tells a client given as its target from an
 * iob_http_target. */
#define IOB__HTTP_TARGET 0x68747470u /* "http" */
#define IOB__HTTP_CLIENT 0x636c6e74u /* "clnt" */

struct glue;

/* The first member of an operation's state: its transfer, as the client
 * sees it. */
typedef struct iob__http_xfer {
  CURL *easy;
  iob_op *op;
  /* Why it must end, in the doomed list of its client's (http-client.c),
   * or 0. */
  int doomed;
  struct iob__http_xfer *doomed_next;
  bool stopped; /* told to stop inside libcurl's callback: ends doomed */
} iob__http_xfer;

struct iob_http_client {
  iob__users users; /* first: see target.h */
  uint32_t tag;     /* IOB__HTTP_CLIENT */
  uv_loop_t *loop;  /* the loop styles': NULL for threads only */
  struct glue *g;   /* libcurl's multi handle on that loop, or NULL */
  /* Plain http:// on that loop, without libcurl (http1.c); NULL for the
   * thread styles only, or when IOB_HTTP_LIBCURL or a proxy in the
   * environment sends every request through libcurl. */
  iob__h1_client *h1;
  /* The thread styles: a DNS cache shared by the threads, and easy
   * handles that finished their transfer, each with the connections it
   * keeps. libcurl cannot share connections between threads transferring
   * at once, so each easy handle, and its connections, is one thread's at
   * a time, handed to the next request under the lock. */
  CURLSH *share;
  uv_mutex_t locks[CURL_LOCK_DATA_LAST];
  uv_mutex_t spare_lock;
  bool locks_made;
  CURL **spare;
  uint32_t nspare, room;
  /* Made by a batch for itself (no client named): it keeps no body, and
   * no connection when every request starts at once. */
  bool own;
  bool all_at_once;
  uint64_t max_body; /* 0: none kept (a batch's own) */
  uint32_t max_redirects;
  int insecure;
  char *ca_file;
};

/* libcurl's global initialisation, once: 0 or IOB_EIO. */
int iob__http_init(void);

/* Make a client for `loop` (NULL: the thread styles only); `own` for a
 * batch's (iob_http_client_create() makes the application's), which
 * keeps no connection if `all_at_once`. 0, or an error with nothing
 * made. */
int iob__http_client_make(iob_http_client **client, uv_loop_t *loop,
                          const iob_http_client_options *options, bool own,
                          bool all_at_once);

/* Free a client: its connections close, its handles with them. */
void iob__http_client_free(iob_http_client *c);

/* The loop styles: begin a transfer on the client's multi handle, whose
 * end comes to iob__http_done(); end one early. */
int iob__http_add(iob_http_client *c, CURL *easy);
void iob__http_remove(iob_http_client *c, iob__http_xfer *x);

/* x is told to stop: if that is from inside libcurl's callbacks (its
 * body's on_body cancelling it), where no transfer may leave the multi
 * handle, it ends on the loop's next turn (doomed) and this returns true;
 * else false, and the caller removes it now. */
bool iob__http_stop_later(iob_http_client *c, iob__http_xfer *x);

/* The kind's (http.c): the transfer of `op` ended with rc on the loop;
 * `failed` is the client's own failure (no memory to watch a socket), or
 * 0. */
void iob__http_done(iob_op *op, CURLcode rc, int failed);

/* The thread styles: an easy handle a finished request left, or NULL;
 * keep one for a later request (or let it go, short of memory). */
CURL *iob__http_spare_take(iob_http_client *c);
void iob__http_spare_give(iob_http_client *c, CURL *easy);

#endif /* IOB_OPS_HTTP_CLIENT_H */
