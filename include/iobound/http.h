/*
 * iobound-http: HTTP(S) requests as an iobound kind of operation, on
 * libcurl, in a library of its own (libiobound-http, pkg-config
 * iobound-http) so that only the programs that call HTTP APIs load
 * libcurl.
 */
#ifndef IOBOUND_HTTP_H
#define IOBOUND_HTTP_H

#include "../iobound.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What each request of an iob_http_target is. */
typedef struct iob_http_options {
  /** "GET", "POST", "PUT", "DELETE", "HEAD"...; NULL: GET, or POST with
   *  a body. */
  const char *method;
  /**
   * The URL, http:// or https://; "{i}" in it is replaced by the
   * operation's index and "{ms}" by its duration_ms, as often as they
   * occur ("http://127.0.0.1:8000/wait/{ms}").
   */
  const char *url;
  /** Optional: the request's body, sent as it is. */
  const char *body;
  /** Optional: request headers ("Accept: application/json"), up to NULL. */
  const char *const *headers;
  /**
   * Non-zero: every request opens a connection of its own and closes it
   * (to compare what connecting costs); 0 (the default): connections are
   * kept alive and reused by the batch's later requests. (On the loop
   * styles a batch whose operations all start at once, without
   * max_in_flight or a shared limit, keeps none: no later request could
   * use one, and libcurl's cache would only cost time.)
   */
  int no_reuse;
} iob_http_options;

/**
 * An HTTP endpoint and the request each operation sends to it: the
 * options, copied, and nothing else, so any number of batches may use
 * one target at once.
 */
typedef struct iob_http_target iob_http_target;

/** What one request got back: its iob_batch_outcome() result. */
typedef struct iob_http_result {
  long code;          /**< the HTTP status code; 0 if none came back. */
  uint64_t bytes;     /**< the response body's size. */
  double connect_ms;  /**< time to connect (0 on a reused connection). */
  double total_ms;    /**< the whole request, as libcurl measured it. */
} iob_http_result;

/**
 * HTTP requests on libcurl, one transfer per operation. On the loop styles
 * libcurl's multi interface driven by the batch's loop (a uv_poll_t per
 * socket, one timer and one idle handle: no thread, and the connections are
 * shared by the batch's requests; a body that keeps coming leaves the loop
 * its other timers); on the thread styles curl_easy_perform(), each finished
 * request's handle, with its connections, handed to the next request on any
 * thread unless its transfer failed (libcurl does not let threads share
 * connections while they transfer; they share the DNS cache). Statuses: 0
 * for a 2xx answer; UV_EIO for any other answer (the message says "HTTP 404
 * from" and the URL); UV_EIO for an answer libcurl cannot take, the message
 * saying what was wrong (bad chunked encoding, a header line over 100 KB,
 * over 300 KB of headers...); UV_ECONNREFUSED when no connection could be
 * made; UV_EMFILE (UV_ENFILE) when no socket could be opened for want of
 * file descriptors; UV_EAI_NONAME when the host name does not resolve;
 * UV_ECONNRESET when the connection broke (the server reset it); UV_EOF when
 * the server closed it without an answer; IOB_ETIMEDOUT, IOB_ECANCELED (on a
 * thread within a second of a cancel); IOB_ENOMEM; UV_EIO for other
 * failures, with libcurl's words as the message. Its value is the status
 * code and its result an iob_http_result the batch owns. duration_ms means
 * what the URL makes of it ({ms}): the kind waits for nothing itself.
 */
IOB_EXPORT extern const iob_kind iob_kind_http;

/**
 * Create a target from @p options, which are copied.
 * @return 0; IOB_EINVAL for NULL, a URL that is not http:// or https://,
 *         or a URL, method or header with a control byte (a body may
 *         hold any bytes but NUL); IOB_ENOMEM; the
 *         libcurl library's initialisation failing gives IOB_EIO. On
 *         error *target is NULL.
 */
IOB_EXPORT int iob_http_target_create(iob_http_target **target,
                                      const iob_http_options *options);

/**
 * Free a target; NULL is a no-op.
 * @return 0; IOB_EBUSY while a running batch uses it (nothing is freed):
 *         a batch uses its target from iob_batch_start() until its
 *         callback runs.
 */
IOB_EXPORT int iob_http_target_destroy(iob_http_target *target);

#ifdef __cplusplus
}
#endif

#endif /* IOBOUND_HTTP_H */
