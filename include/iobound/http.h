/*
 * iobound-http: HTTP(S) requests as an iobound kind of operation, plain
 * http:// on libuv and the rest on libcurl, in a library of its own
 * (libiobound-http, pkg-config iobound-http) so that only the programs
 * that call HTTP APIs load libcurl.
 */
#ifndef IOBOUND_HTTP_H
#define IOBOUND_HTTP_H

#include "../iobound.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * An HTTP client that outlives batches, as one aiohttp ClientSession or Go
 * http.Client: every batch and operation given it (as its task's target,
 * or through an iob_http_target's options) shares its connections, kept
 * alive between requests and batches, and on the loop styles its HTTP/2
 * connections, on which requests to one origin multiplex. On the loop
 * styles it runs on the loop it was made on, no thread: plain http://
 * over libuv TCP handles of its own (HTTP/1.1; an idle one is unref'd,
 * and keeps no loop alive), the rest through libcurl's multi interface.
 * On the thread styles each request takes a connection cache a finished
 * request left, from any thread.
 */
typedef struct iob_http_client iob_http_client;

/** The most a client keeps of one answer's body: 1 GiB. */
#define IOB_HTTP_BODY_MAX (UINT64_C(1) << 30)
/** The longest URL, header line and request body a request may have. */
#define IOB_HTTP_URL_MAX 8192
#define IOB_HTTP_HEADER_MAX 8192
#define IOB_HTTP_HEADERS_MAX 100
#define IOB_HTTP_REQUEST_BODY_MAX (UINT64_C(64) << 20)

/** How a client behaves; zero is the default for every member. */
typedef struct iob_http_client_options {
  /** The most of an answer's body kept in memory (its result's body),
   *  in bytes, up to IOB_HTTP_BODY_MAX; 0: 8 MiB. A longer body ends
   *  the request with UV_EMSGSIZE, the message saying so. */
  uint64_t max_body;
  /** Redirects followed (http and https only): 0, the default, none (a
   *  3xx answer is the answer); more than this many fail with UV_EIO. */
  uint32_t max_redirects;
  /** Non-zero: do not verify the server's TLS certificate and name (for
   *  a test server). Verified by default, against the system's CAs or
   *  ca_file. */
  int insecure;
  /** Optional: a file of CA certificates (PEM) to verify against. */
  const char *ca_file;
  /** The most connections to one host, 0: no limit. Requests past it
   *  wait for one (or, HTTP/2, share one). */
  uint32_t max_host_connections;
} iob_http_client_options;

/**
 * Make a client. On the loop styles it serves the batches that run on
 * @p loop (it puts two idle handles and a timer there, a TCP handle per
 * plain http:// connection and a poll per libcurl socket); @p loop may be
 * NULL for a client of the thread styles only. Plain http:// goes through
 * libcurl too when, as the client is made, the environment sets
 * IOB_HTTP_LIBCURL (to anything but "0") or names a proxy libcurl would
 * use (http_proxy, all_proxy, ALL_PROXY), or @p options ask for
 * redirects.
 * @param[out] client the client; NULL on error.
 * @param options copied; NULL for the defaults.
 * @return 0; IOB_EINVAL for a NULL @p client; IOB_ERANGE for a max_body
 *         over IOB_HTTP_BODY_MAX; IOB_ENOMEM; IOB_EIO if libcurl cannot
 *         initialise.
 */
IOB_EXPORT int iob_http_client_create(iob_http_client **client, uv_loop_t *loop,
                                      const iob_http_client_options *options);

/**
 * Destroy a client no batch or target uses: its connections close, and
 * its handles on the loop with them (run the loop once more before
 * closing it). NULL is a no-op.
 * @return 0; IOB_EBUSY while an iob_http_target names it or a running
 *         batch uses it (nothing is done).
 */
IOB_EXPORT int iob_http_client_destroy(iob_http_client *client);

/**
 * One operation's request: the input of an iob_kind_http task, copied
 * when submitted (iob_batch_submit() returns IOB_EINVAL for a URL that is
 * not http:// or https:// or a control byte in a URL, method or header,
 * IOB_ERANGE past IOB_HTTP_URL_MAX, IOB_HTTP_HEADER_MAX,
 * IOB_HTTP_HEADERS_MAX or IOB_HTTP_REQUEST_BODY_MAX). Its members replace
 * the target's (an iob_http_target's); with a client as the target, url
 * is required.
 */
typedef struct iob_http_request {
  const char *method;         /**< NULL: GET, or POST with a body. */
  const char *url;            /**< "{i}" and "{ms}" are not replaced here. */
  const char *const *headers; /**< "Name: value", up to NULL. */
  const void *body;           /**< sent as it is; may hold any bytes. */
  size_t body_len;            /**< its length; 0 with a body: strlen. */
  /**
   * Optional: the answer's body as it comes, instead of kept in memory,
   * on the thread the operation runs on. Return 0 to go on, or a
   * negative code to end the request with it. On the loop it may cancel
   * its batch (iob_batch_cancel()): the request then ends as cancelled
   * once on_body has returned.
   */
  int (*on_body)(iob_op *op, const char *data, size_t len, void *arg);
  void *arg; /**< on_body's. */
} iob_http_request;

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
   * max_in_flight or a shared limit, keeps none of libcurl's: no later
   * request could use one, and libcurl's cache would only cost time.
   * Plain http:// connections, not libcurl's, are kept: one that answered
   * takes a request launched after it.)
   */
  int no_reuse;
  /** Optional: the client the requests go through, whose connections
   *  outlive the batch; NULL: each batch makes its own, which keeps no
   *  body (the result counts its bytes). */
  iob_http_client *client;
} iob_http_options;

/**
 * An HTTP endpoint and the request each operation sends to it: the
 * options, copied, and nothing else, so any number of batches may use
 * one target at once.
 */
typedef struct iob_http_target iob_http_target;

/** What one request got back: its iob_batch_outcome() result, also when
 *  it failed (an answer that is not 2xx comes whole). */
typedef struct iob_http_result {
  long code;         /**< the HTTP status code; 0 if none came back. */
  uint64_t bytes;    /**< the response body's size. */
  double connect_ms; /**< time to connect (0 on a reused connection). */
  double total_ms;   /**< the whole request, from its start. */
  /** Through a client: the answer's body (NUL after it, not counted),
   *  else NULL (no client, or on_body took it). */
  char *body;
  /** Through a client: the last answer's header lines, each "Name:
   *  value" and CRLF, NUL-terminated, else NULL (see
   *  iob_http_header()). */
  char *headers;
  double name_lookup_ms; /**< from the start until the name resolved. */
  double tls_ms;         /**< until TLS was set up (0 for http://). */
  double first_byte_ms;  /**< until the answer's first byte. */
  long redirects;        /**< redirects followed. */
  long http_version;     /**< 10, 11, 20 or 30: HTTP/1.0 ... HTTP/3. */
  /** The answer's Retry-After, in seconds from when it came (a date is
   *  turned into seconds); 0 if it had none. */
  int64_t retry_after_s;
} iob_http_result;

/**
 * The value of the answer's header @p name (any case) in @p result, its
 * spaces trimmed, and its length in *len: the first such header, or NULL.
 * @param len may be NULL.
 */
IOB_EXPORT const char *iob_http_header(const iob_http_result *result,
                                       const char *name, size_t *len);

/**
 * HTTP requests, one per operation. On the loop styles, plain http:// over
 * libuv TCP handles of the client's, which keeps its connections by origin
 * (HTTP/1.1, requests sent as libcurl sends them, answers read as it reads
 * them; a request that met a kept connection the server had closed goes again
 * on a new one, once), and the rest through libcurl's multi interface driven
 * by the batch's loop (a uv_poll_t per socket, one timer and one idle handle);
 * no thread either way, the connections shared by the batch's requests, and a
 * body that keeps coming leaves the loop its other timers. On the thread
 * styles curl_easy_perform(), each finished request's handle, with its
 * connections, handed to the next request on any thread unless its transfer
 * failed (libcurl does not let threads share connections while they transfer;
 * they share the DNS cache). Statuses: 0 for a 2xx answer; UV_EIO for any
 * other answer (the message says "HTTP 404 from" and, for a target's URL of
 * under 40 bytes, the URL, else "the server"); UV_EIO for an answer that
 * cannot be taken, the message saying what was wrong (bad chunked encoding, a
 * header line over 100 KB, over 300 KB of headers, a body cut short...);
 * UV_ECONNREFUSED when no connection could be made; UV_EMFILE (UV_ENFILE) when
 * no socket could be opened for want of file descriptors; UV_EAI_NONAME when
 * the host name does not resolve; UV_ECONNRESET when the connection broke (the
 * server reset it); UV_EOF when the server closed it without an answer;
 * IOB_ETIMEDOUT, IOB_ECANCELED (on a thread within a second of a cancel);
 * IOB_ENOMEM; UV_EIO for other failures, with words that say what failed
 * (libcurl's, through it). Its value is the status code and its result an
 * iob_http_result the batch owns. duration_ms means what the URL makes of it
 * ({ms}): the kind waits for nothing itself.
 *
 * Its target is an iob_http_target (one request for every operation, the
 * URL a template), or an iob_http_client (each operation's request its
 * own). Its input, optional with a target, is an iob_http_request, copied
 * at submit, whose members replace the target's. Through a client the
 * answer's headers and body are kept (up to max_body: past it,
 * UV_EMSGSIZE) or streamed to on_body (its negative code ends the
 * request); past max_redirects, UV_EIO. A batch that names no client makes
 * its own for the batch, which keeps no body. A client serves the loop it
 * was made on and the thread styles: under iob_style_loops an operation
 * naming one is refused at submit (IOB_ENOTSUP), and on another loop it
 * fails with IOB_ENOTSUP.
 *
 * Under a retry policy (iob_retry) it retries a 429 or any 5xx answer,
 * after the answer's Retry-After when there is one (retry_after_s), and a
 * transfer that failed on the way as iob_retry_transient() judges; no
 * other answer. It retries any method: a classifier of the policy's
 * (iob_retry.classify) can refuse those that must not run twice.
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
