/* HTTP requests on libcurl, through a client (http-client.c): the
 * application's, named as the task's target or by an iob_http_target, or
 * one the batch makes for itself. Each operation's request is its
 * target's (the URL a template of its index and duration) with what its
 * task's input (an iob_http_request, copied at submit) replaces; its
 * answer comes back as its result: status, timings and, through a client
 * of the application's, the headers and the body. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/socket.h>
#include <time.h>

#include "http-client.h"

struct iob_http_target {
  iob__users users; /* first: see target.h */
  uint32_t tag;     /* IOB__HTTP_TARGET */
  char *method, *url, *body;
  struct curl_slist *headers;
  const char **lines; /* the same headers' text, up to NULL, for http1.c */
  int no_reuse;
  iob_http_client *client; /* held while the target lives, or NULL */
};

/* What an operation's target is: a client, or an iob_http_target. */
static bool is_client(const void *target) {
  return ((const iob_http_client *)target)->tag == IOB__HTTP_CLIENT;
}

/* ---- checking what comes in --------------------------------------------- */

static bool has_control_byte(const char *s) {
  for (; s != NULL && *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return true;
  return false;
}

static bool is_http_url(const char *url) {
  return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

/* A URL, method and headers as a request may have them: 0, IOB_EINVAL or
 * IOB_ERANGE. */
static int check_request(const char *url, const char *method,
                         const char *const *headers) {
  if (url != NULL && (!is_http_url(url) || has_control_byte(url)))
    return IOB_EINVAL;
  if (url != NULL && strlen(url) > IOB_HTTP_URL_MAX)
    return IOB_ERANGE;
  if (has_control_byte(method))
    return IOB_EINVAL;
  size_t k = 0;
  for (; headers != NULL && headers[k] != NULL; k++) {
    if (has_control_byte(headers[k]))
      return IOB_EINVAL;
    if (strlen(headers[k]) > IOB_HTTP_HEADER_MAX)
      return IOB_ERANGE;
  }
  return k > IOB_HTTP_HEADERS_MAX ? IOB_ERANGE : 0;
}

/* ---- the target ----------------------------------------------------------- */

static char *copy(const char *s, bool *failed) {
  if (s == NULL)
    return NULL;
  char *c = strdup(s);
  *failed |= c == NULL;
  return c;
}

static void target_free(void *p) {
  iob_http_target *t = p;
  if (t->client != NULL)
    iob__target_release(t->client);
  free(t->method);
  free(t->url);
  free(t->body);
  curl_slist_free_all(t->headers);
  free(t->lines);
  free(t);
}

int iob_http_target_destroy(iob_http_target *t) {
  return iob__target_destroy(t, target_free);
}

int iob_http_target_create(iob_http_target **target,
                           const iob_http_options *o) {
  if (target == NULL)
    return IOB_EINVAL;
  *target = NULL;
  if (o == NULL || o->url == NULL)
    return IOB_EINVAL;
  int err = check_request(o->url, o->method, o->headers);
  if (err != 0)
    return err;
  if ((err = iob__http_init()) != 0)
    return err;
  iob_http_target *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return IOB_ENOMEM;
  t->tag = IOB__HTTP_TARGET;
  bool failed = false;
  t->method = copy(o->method, &failed);
  t->url = copy(o->url, &failed);
  t->body = copy(o->body, &failed);
  t->no_reuse = o->no_reuse;
  for (size_t k = 0; !failed && o->headers && o->headers[k]; k++) {
    struct curl_slist *more = curl_slist_append(t->headers, o->headers[k]);
    failed = more == NULL;
    if (more != NULL)
      t->headers = more;
  }
  size_t n = 0;
  for (struct curl_slist *l = t->headers; l != NULL; l = l->next)
    n++;
  if (!failed && n > 0 && (t->lines = calloc(n + 1, sizeof(char *))) == NULL)
    failed = true;
  n = 0;
  for (struct curl_slist *l = t->headers; !failed && l != NULL; l = l->next)
    t->lines[n++] = l->data;
  if (failed) {
    target_free(t);
    return IOB_ENOMEM;
  }
  if ((t->client = o->client) != NULL)
    iob__target_hold(t->client);
  *target = t;
  return 0;
}

/* ---- the request, copied at submit ---------------------------------------- */

/* An iob_http_request and everything it points at, in one block. */
static int request_copy(const void *input, void **out) {
  const iob_http_request *r = input;
  int err = check_request(r->url, r->method, r->headers);
  size_t body_len = r->body == NULL ? 0
                    : r->body_len   ? r->body_len
                                    : strlen(r->body);
  if (err == 0 && body_len > IOB_HTTP_REQUEST_BODY_MAX)
    err = IOB_ERANGE;
  if (err != 0)
    return err;
  size_t nh = 0, text = 0;
  for (; r->headers != NULL && r->headers[nh] != NULL; nh++)
    text += strlen(r->headers[nh]) + 1;
  text += (r->url ? strlen(r->url) + 1 : 0) +
          (r->method ? strlen(r->method) + 1 : 0) + body_len + 1;
  size_t at = sizeof(*r) + (r->headers ? (nh + 1) * sizeof(char *) : 0);
  iob_http_request *c = malloc(at + text);
  if (c == NULL)
    return IOB_ENOMEM;
  *c = *r;
  char *w = (char *)c + at;
  if (r->headers != NULL) {
    const char **h = (const char **)(c + 1);
    for (size_t k = 0; k < nh; k++)
      h[k] = w, w = stpcpy(w, r->headers[k]) + 1;
    h[nh] = NULL;
    c->headers = h;
  }
  if (r->url != NULL)
    c->url = w, w = stpcpy(w, r->url) + 1;
  if (r->method != NULL)
    c->method = w, w = stpcpy(w, r->method) + 1;
  if (r->body != NULL) {
    memcpy(w, r->body, body_len);
    w[body_len] = '\0';
    c->body = w;
  }
  c->body_len = body_len;
  *out = c;
  return 0;
}

/* ---- one request ------------------------------------------------------------ */

/* Bytes that grow, NUL-terminated. */
typedef struct buf {
  char *data;
  size_t len, cap;
} buf;

static int buf_add(buf *b, const char *data, size_t len) {
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + len + 1)
      cap *= 2;
    char *more = realloc(b->data, cap);
    if (more == NULL)
      return IOB_ENOMEM;
    b->data = more;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

/* An operation's state. */
typedef struct http_op {
  iob__http_xfer x;           /* first: the easy handle and the op */
  iob_http_client *client;    /* the one it goes through */
  char *url;                  /* the target's, {i} and {ms} replaced */
  struct curl_slist *headers; /* its request's own */
  uint64_t bytes;
  bool keep; /* its body and headers go to its result */
  buf body, head;
  int failed;       /* why a callback of ours stopped libcurl; 0 if none did */
  int socket_errno; /* why socket() last failed for it; 0 if it did not */
  char error[CURL_ERROR_SIZE];
  /* Plain http:// on the loop, without libcurl (http1.c). */
  bool native;
  iob__h1_xfer h1;
  iob__h1_sink sink;
} http_op;

/* The kind's part of a batch: the client it made for itself, if it named
 * none. */
typedef struct shared {
  iob_http_client *own;
} shared;

/* The client operation op goes through. */
static iob_http_client *client_of(const iob_op *op) {
  if (is_client(op->target))
    return (iob_http_client *)(uintptr_t)op->target;
  const iob_http_target *t = op->target;
  return t->client != NULL ? t->client : ((shared *)op->shared)->own;
}

/* The URL with {i} and {ms} replaced; NULL when memory runs out. */
static char *url_of(const char *tmpl, uint32_t index, uint32_t ms) {
  char i_text[16], ms_text[16];
  snprintf(i_text, sizeof(i_text), "%u", index);
  snprintf(ms_text, sizeof(ms_text), "%u", ms);
  size_t len = 1;
  for (const char *p = tmpl; *p != '\0';) {
    if (strncmp(p, "{i}", 3) == 0)
      len += strlen(i_text), p += 3;
    else if (strncmp(p, "{ms}", 4) == 0)
      len += strlen(ms_text), p += 4;
    else
      len++, p++;
  }
  char *url = malloc(len), *w = url;
  if (url == NULL)
    return NULL;
  for (const char *p = tmpl; *p != '\0';) {
    if (strncmp(p, "{i}", 3) == 0)
      w = stpcpy(w, i_text), p += 3;
    else if (strncmp(p, "{ms}", 4) == 0)
      w = stpcpy(w, ms_text), p += 4;
    else
      *w++ = *p++;
  }
  *w = '\0';
  return url;
}

/* The body: to the request's on_body, kept up to the client's max_body,
 * or counted. Returning less than was given stops the transfer. */
static size_t on_body(char *data, size_t size, size_t n, void *arg) {
  http_op *h = arg;
  size_t len = size * n;
  h->bytes += len;
  const iob_http_request *r = h->x.op->input;
  if (r != NULL && r->on_body != NULL) {
    int err = r->on_body(h->x.op, data, len, r->arg);
    if (err >= 0 && !h->x.stopped) /* (it may have cancelled itself) */
      return len;
    h->failed = err < 0 ? err : IOB_ECANCELED;
    return 0;
  }
  if (!h->keep)
    return len;
  if (h->body.len + len > h->client->max_body)
    h->failed = UV_EMSGSIZE;
  else
    h->failed = buf_add(&h->body, data, len);
  return h->failed == 0 ? len : 0;
}

/* The header lines of the last answer (a redirect's or a 100 Continue's
 * are dropped when the next answer begins), without its status line. */
static size_t on_header(char *data, size_t size, size_t n, void *arg) {
  http_op *h = arg;
  size_t len = size * n;
  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    h->head.len = 0; /* a new answer */
    return len;
  }
  if (len <= 2) /* the empty line that ends them */
    return len;
  h->failed = buf_add(&h->head, data, len);
  return h->failed == 0 ? len : 0;
}

/* libcurl: a socket for a connection. As libcurl makes it, but when
 * socket() fails its errno is kept: libcurl says only "Couldn't connect"
 * (CURLE_COULDNT_CONNECT) and saves no errno for CURLINFO_OS_ERRNO, and
 * out of descriptors (EMFILE) is no refusal. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose,
                                 struct curl_sockaddr *a) {
  (void)purpose;
  curl_socket_t s = socket(a->family, a->socktype, a->protocol);
  /* The last attempt's: a later address that got a socket fails, if it
   * does, for its own reason. */
  ((http_op *)arg)->socket_errno = s == CURL_SOCKET_BAD ? errno : 0;
  return s;
}

/* What the client says for every request it sends. */
static void client_options(CURL *e, const iob_http_client *c) {
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS,
                   CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  if (c->max_redirects != 0) {
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)c->max_redirects);
  }
  if (c->insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (c->ca_file != NULL)
    curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
}

/* The request's method, body and headers, each its own or its target's. */
static int request_options(iob_op *op, http_op *h, const iob_http_target *t) {
  CURL *e = h->x.easy;
  const iob_http_request *r = op->input;
  const char *method = r && r->method ? r->method : t ? t->method : NULL;
  if (r != NULL && r->body != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
  } else if (t != NULL && t->body != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
  }
  if (method != NULL && strcmp(method, "HEAD") == 0)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L); /* or it waits for a body */
  else if (method != NULL)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  for (size_t k = 0; r && r->headers && r->headers[k]; k++) {
    struct curl_slist *more = curl_slist_append(h->headers, r->headers[k]);
    if (more == NULL)
      return IOB_ENOMEM;
    h->headers = more;
  }
  struct curl_slist *headers = r && r->headers ? h->headers
                               : t             ? t->headers
                                               : NULL;
  if (headers != NULL)
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  if (t != NULL && t->no_reuse) {
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  }
  return 0;
}

/* What every request begins with, whichever way it goes: the client it
 * goes through, whether its answer is kept, and its URL in *url (the
 * request's, or the target's with {i} and {ms} replaced). 0, IOB_EINVAL
 * (no URL) or IOB_ENOMEM. */
static int begin(iob_op *op, iob_http_client *c, const char **url) {
  http_op *h = op->state;
  const iob_http_request *r = op->input;
  const iob_http_target *t = is_client(op->target) ? NULL : op->target;
  h->x.op = op;
  h->client = c;
  h->keep = c->max_body != 0 && (r == NULL || r->on_body == NULL);
  *url = r != NULL ? r->url : NULL;
  if (*url == NULL && t == NULL) {
    iob_op_set_message(op, "no URL: a client as the target needs an "
                           "iob_http_request with one as the input");
    return IOB_EINVAL;
  }
  if (*url == NULL)
    *url = h->url = url_of(t->url, op->index, op->duration_ms);
  /* An empty body kept is "", not NULL. */
  if (*url == NULL || (h->keep && buf_add(&h->body, "", 0)))
    return IOB_ENOMEM;
  return 0;
}

/* An easy handle for the operation's request to url, its options set:
 * `reuse` (reset) if given, else a new one. 0 or IOB_ENOMEM. */
static int make_easy(iob_op *op, const char *url, CURL *reuse) {
  http_op *h = op->state;
  iob_http_client *c = h->client;
  const iob_http_target *t = is_client(op->target) ? NULL : op->target;
  if (reuse != NULL)
    curl_easy_reset(reuse); /* keeps its connections */
  h->x.easy = reuse != NULL ? reuse : curl_easy_init();
  if (h->x.easy == NULL)
    return IOB_ENOMEM;
  CURL *e = h->x.easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, op);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->error);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
  if (h->keep) {
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
  }
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, h);
  client_options(e, c);
  /* HTTP/2 (https://, by ALPN): a request waits for a connection being
   * made, to share it, rather than making one more. Not for http://,
   * which cannot multiplex: there it would wait for the first answer. */
  if (!c->own && strncmp(url, "https://", 8) == 0)
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  return request_options(op, h, t);
}

/* ---- what went wrong ----------------------------------------------------- */

/* Words for a stop our own body callback asked for (h->failed), or
 * NULL. */
static const char *failed_words(const http_op *h) {
  if (h->failed == UV_EMSGSIZE)
    return "the answer's body is longer than the client's max_body";
  return h->failed != 0 && h->failed != IOB_ENOMEM ? "on_body stopped it"
                                                   : NULL;
}

/* The errno libcurl saved for the transfer's last failed system call, or
 * 0. It outlives the transfer (curl_easy_reset() keeps it). */
static long saved_errno(CURL *e) {
  long os = 0;
  curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os);
  return os;
}

/* Whether errno `os` says a connection broke under the transfer (the
 * peer reset or aborted it), rather than that libcurl refused what came
 * over it: then libcurl saved no errno, or that of a failed attempt to
 * connect to another of the host's addresses (refused, unreachable,
 * timed out), which no established connection gives. */
static bool broke(long os) {
  return os == ECONNRESET || os == EPIPE || os == ECONNABORTED ||
         os == ENETRESET;
}

/* CURLE_COULDNT_CONNECT: refused, unless socket() failed for want of a
 * descriptor, which the TCP kind reports as UV_EMFILE too. */
static int connect_status(const http_op *h, const char **why) {
  long os = h->socket_errno != 0 ? h->socket_errno : saved_errno(h->x.easy);
  if (os == EMFILE) {
    *why = "no socket: the process has all the file descriptors it may "
           "(RLIMIT_NOFILE) open";
    return UV_EMFILE;
  }
  if (os == ENFILE) {
    *why = "no socket: the system has all the files it may open";
    return UV_ENFILE;
  }
  return UV_ECONNREFUSED;
}

/* Whether CURLE_OUT_OF_MEMORY means a header line of the answer was too
 * long: libcurl 7.x holds a header line in a buffer of at most
 * CURL_MAX_HTTP_HEADER (100 KB) and says out of memory, with no words,
 * when a line outgrows it (8.6 says CURLE_TOO_LARGE). So it is when the
 * answer had begun to come (a first byte's time) and no body yet: the
 * headers were coming. A real shortage there is as rare as it is short
 * of memory everywhere else. */
static bool header_too_long(const http_op *h) {
  curl_off_t first_byte = 0;
  curl_easy_getinfo(h->x.easy, CURLINFO_STARTTRANSFER_TIME_T, &first_byte);
  return first_byte > 0 && h->bytes == 0;
}

/* What libcurl's result means as a status, and in *why words of ours when
 * libcurl has none or would mislead (else NULL). libcurl says
 * CURLE_RECV_ERROR both for a connection that broke and for an answer it
 * refused (bad chunked encoding, over 300 KB of headers), and
 * CURLE_COULDNT_CONNECT both for a refusal and for a socket() that
 * failed: the errno tells them apart. */
static int status_of(const http_op *h, CURLcode rc, const char **why) {
  *why = NULL;
  switch (rc) {
  case CURLE_OK:
    return 0;
  case CURLE_COULDNT_CONNECT:
    return connect_status(h, why);
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return UV_EAI_NONAME;
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
    return broke(saved_errno(h->x.easy)) ? UV_ECONNRESET : UV_EIO;
  case CURLE_GOT_NOTHING:
    return UV_EOF;
  case CURLE_OPERATION_TIMEDOUT:
    return IOB_ETIMEDOUT;
  case CURLE_ABORTED_BY_CALLBACK:
    return IOB_ECANCELED;
  case CURLE_WRITE_ERROR: /* a callback of ours said stop */
    *why = failed_words(h);
    return h->failed != 0 ? h->failed : UV_EIO;
  case CURLE_TOO_MANY_REDIRECTS:
    *why = "more redirects than the client's max_redirects";
    return UV_EIO;
  case CURLE_OUT_OF_MEMORY:
    if (!header_too_long(h))
      return IOB_ENOMEM;
    *why = "a header line of the answer is longer than libcurl takes "
           "(CURL_MAX_HTTP_HEADER, 100 KB)";
    return UV_EIO;
  default:
    return UV_EIO;
  }
}

static long version_of(long curl_version) {
  switch (curl_version) {
  case CURL_HTTP_VERSION_1_0:
    return 10;
  case CURL_HTTP_VERSION_1_1:
    return 11;
  case CURL_HTTP_VERSION_2_0:
    return 20;
  case CURL_HTTP_VERSION_3:
    return 30;
  default:
    return 0;
  }
}

static void result_free(void *p) {
  iob_http_result *r = p;
  if (r != NULL) {
    free(r->body);
    free(r->headers);
  }
  free(r);
}

/* What came back, as the operation's result (`got`, with the body and
 * headers kept): its body and headers go with it. Short of memory, the
 * operation has none. */
static void hand_back(iob_op *op, const iob_http_result *got) {
  http_op *h = op->state;
  iob_http_result *r = malloc(sizeof(*r));
  if (r == NULL)
    return;
  *r = *got;
  r->bytes = h->bytes;
  r->body = r->headers = NULL;
  if (h->keep) {
    r->body = h->body.data;
    r->headers = h->head.data != NULL ? h->head.data : strdup("");
    h->body = h->head = (buf){0};
  }
  if ((h->keep && r->headers == NULL) || iob_op_set_result(op, r) != 0)
    result_free(r);
}

/* What libcurl measured of the transfer and got back. */
static void curl_result(CURL *e, iob_http_result *r) {
  curl_off_t t[5] = {0};
  long version = 0;
  *r = (iob_http_result){0};
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->code);
  curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &t[0]);
  curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &t[1]);
  curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &t[2]);
  curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &t[3]);
  curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &t[4]);
  curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &r->redirects);
  curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
  curl_off_t after = 0;
  if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &after) == CURLE_OK &&
      after > 0)
    r->retry_after_s = (int64_t)after;
  r->name_lookup_ms = (double)t[0] / 1e3;
  r->connect_ms = (double)t[1] / 1e3;
  r->tls_ms = (double)t[2] / 1e3;
  r->first_byte_ms = (double)t[3] / 1e3;
  r->total_ms = (double)t[4] / 1e3;
  r->http_version = version_of(version);
}

/* The status of a request that got `code` (0: none) and ended with
 * status, in words why; its value is the code. An answer that is not 2xx
 * fails with UV_EIO. */
static int conclude(iob_op *op, long code, int status, const char *why) {
  http_op *h = op->state;
  iob_op_set_value(op, (uint64_t)code);
  if (status != 0) {
    iob_op_set_message(op, why);
    return status;
  }
  if (code < 200 || code > 299) {
    char text[64];
    snprintf(text, sizeof(text), "HTTP %ld from %s", code,
             h->url != NULL && strlen(h->url) < 40 ? h->url : "the server");
    iob_op_set_message(op, text);
    return UV_EIO;
  }
  return 0;
}

/* libcurl's transfer is over with rc: hand back what it got, and the
 * status. */
static int finish(iob_op *op, CURLcode rc) {
  http_op *h = op->state;
  iob_http_result got;
  curl_result(h->x.easy, &got);
  hand_back(op, &got);
  const char *why;
  int status = status_of(h, rc, &why);
  if (status != 0 && why == NULL)
    why = h->error[0] ? h->error : curl_easy_strerror(rc);
  return conclude(op, got.code, status, why);
}

static void cleanup(iob_op *op) {
  http_op *h = op->state;
  if (h->native)
    iob__h1_xfer_free(&h->h1);
  if (h->x.easy != NULL)
    curl_easy_cleanup(h->x.easy);
  free(h->url);
  curl_slist_free_all(h->headers);
  free(h->body.data);
  free(h->head.data);
  *h = (http_op){0};
}

const char *iob_http_header(const iob_http_result *r, const char *name,
                            size_t *len) {
  if (len != NULL)
    *len = 0;
  if (r == NULL || name == NULL || r->headers == NULL)
    return NULL;
  size_t n = strlen(name);
  for (const char *line = r->headers; *line != '\0';) {
    const char *end = strstr(line, "\r\n");
    if (end == NULL)
      end = line + strlen(line);
    if ((size_t)(end - line) > n && line[n] == ':' &&
        strncasecmp(line, name, n) == 0) {
      const char *v = line + n + 1;
      while (v < end && (*v == ' ' || *v == '\t'))
        v++;
      const char *e = end;
      while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
      if (len != NULL)
        *len = (size_t)(e - v);
      return v;
    }
    line = *end != '\0' ? end + 2 : end;
  }
  return NULL;
}

/* ---- the loop styles: libcurl's transfers end --------------------------- */

void iob__http_done(iob_op *op, CURLcode rc, int failed) {
  http_op *h = op->state;
  if (h->x.stopped) { /* as any stop ends */
    iob_op_done(op, iob_op_stopping(op));
    return;
  }
  int status = finish(op, rc);
  if (failed != 0) { /* the client's own failure */
    iob_op_set_message(op, "no memory to watch its socket");
    status = failed;
  }
  iob_op_done(op, status);
}

/* ---- the loop styles: plain http:// without libcurl (http1.c) ---------- */

/* The answer's status and header lines, kept as libcurl's header
 * callback keeps them (on_header()). */
static int native_line(void *arg, const char *line, size_t len) {
  http_op *h = arg;
  if (!h->keep)
    return 0;
  if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
    h->head.len = 0; /* a new answer */
    if (h->head.data != NULL)
      h->head.data[0] = '\0';
    return 0;
  }
  h->failed = buf_add(&h->head, line, len);
  if (h->failed == 0)
    h->failed = buf_add(&h->head, "\r\n", 2);
  return h->failed;
}

static int native_body(void *arg, const char *data, size_t len) {
  http_op *h = arg;
  if (on_body((char *)data, 1, len, h) != len)
    return h->failed != 0 ? h->failed : UV_EIO;
  /* on_body may have cancelled it: then no more of the answer. */
  return h->h1.stopped ? IOB_ECANCELED : 0;
}

/* Retry-After, in seconds from now: a number, or a date. */
static int64_t retry_after_of(const char *v) {
  if (*v == '\0')
    return 0;
  if (strspn(v, "0123456789") == strlen(v))
    return strlen(v) > 12 ? INT64_MAX / 1000 : strtoll(v, NULL, 10);
  time_t at = curl_getdate(v, NULL), t = time(NULL);
  return at > t ? (int64_t)(at - t) : 0;
}

static double ms_between(uint64_t from_ns, uint64_t to_ns) {
  return to_ns > from_ns ? (double)(to_ns - from_ns) / 1e6 : 0;
}

static void native_done(iob__h1_xfer *x, int status) {
  iob_op *op = x->arg;
  http_op *h = op->state;
  if (x->stopped) { /* from inside on_body: as any stop ends */
    iob_op_done(op, iob_op_stopping(op));
    return;
  }
  iob_http_result got = {
      .code = x->p.code,
      .http_version = x->p.code != 0 ? x->p.version : 0,
      .retry_after_s = retry_after_of(x->p.retry_after),
      .name_lookup_ms = ms_between(x->start_ns, x->name_ns),
      .connect_ms = x->connect_ns ? ms_between(x->start_ns, x->connect_ns) : 0,
      .first_byte_ms = ms_between(x->start_ns, x->first_ns),
      .total_ms = ms_between(x->start_ns, x->end_ns),
  };
  hand_back(op, &got);
  const char *why = status != 0 && status == h->failed ? failed_words(h) : NULL;
  iob_op_done(op, conclude(op, got.code, status, why ? why : x->why));
}

/* The operation's request to url, as http1.c takes requests. */
static iob__h1_request native_request(const iob_op *op, const char *url) {
  const iob_http_request *r = op->input;
  const iob_http_target *t = is_client(op->target) ? NULL : op->target;
  iob__h1_request q = {.url = url, .fresh = t != NULL && t->no_reuse};
  q.method = r && r->method ? r->method : t ? t->method : NULL;
  q.headers = r && r->headers ? r->headers : t ? t->lines : NULL;
  if (r != NULL && r->body != NULL) {
    q.body = r->body;
    q.body_len = r->body_len;
  } else if (t != NULL && t->body != NULL) {
    q.body = t->body;
    q.body_len = strlen(t->body);
  }
  return q;
}

/* Begin request q on the client's connections. */
static int native_start(iob_op *op, const iob__h1_request *q) {
  http_op *h = op->state;
  h->native = true;
  h->sink = (iob__h1_sink){native_line, native_body, h};
  h->h1.p.sink = &h->sink;
  h->h1.done = native_done;
  h->h1.arg = op;
  return iob__h1_start(h->client->h1, &h->h1, q);
}

/* ---- the loop styles: libcurl's multi handle ---------------------------- */

static int http_start(iob_op *op) {
  http_op *h = op->state;
  iob_http_client *c = client_of(op);
  if (c->loop == NULL || c->loop != iob_batch_loop(op->batch)) {
    iob_op_set_message(op, "the HTTP client serves another loop (or only "
                           "the thread styles): make one on this batch's");
    return IOB_ENOTSUP;
  }
  const char *url;
  int err = begin(op, c, &url);
  iob__h1_request q = native_request(op, url);
  if (err == 0 && c->h1 != NULL && iob__h1_takes(&q))
    return native_start(op, &q);
  if (err == 0)
    err = make_easy(op, url, NULL);
  return err != 0 ? err : iob__http_add(c, h->x.easy);
}

/* Told to stop: the transfer ends (libcurl's leaves the multi handle, its
 * connection closed, or kept if it may be reused) and settles now. */
static void http_stop(iob_op *op) {
  http_op *h = op->state;
  if (h->native && !iob__h1_stop(&h->h1))
    return; /* stopped by its own on_body: it ends once that returns */
  if (!h->native && iob__http_stop_later(h->client, &h->x))
    return; /* likewise, in libcurl's callback: on the next turn */
  if (!h->native)
    iob__http_remove(h->client, &h->x);
  iob_op_done(op, iob_op_stopping(op));
}

/* ---- the thread styles ------------------------------------------------------ */

/* libcurl calls this now and then, at least once a second: a cancelled
 * or timed-out operation stops its transfer. */
static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c,
                       curl_off_t d) {
  (void)a, (void)b, (void)c, (void)d;
  return iob_op_stopping(arg) != 0;
}

static int http_run(iob_op *op) {
  http_op *h = op->state;
  iob_http_client *c = client_of(op);
  const char *url;
  int err = begin(op, c, &url);
  if (err == 0)
    err = make_easy(op, url, iob__http_spare_take(c));
  if (err != 0)
    return err;
  curl_easy_setopt(h->x.easy, CURLOPT_SHARE, c->share);
  curl_easy_setopt(h->x.easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h->x.easy, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h->x.easy, CURLOPT_XFERINFODATA, op);
  int64_t left = iob_op_remaining_ms(op);
  if (left >= 0)
    curl_easy_setopt(h->x.easy, CURLOPT_TIMEOUT_MS,
                     (long)(left > 0 ? left : 1));
  CURLcode rc = curl_easy_perform(h->x.easy);
  int status = finish(op, rc);
  if (rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_OPERATION_TIMEDOUT) {
    int why = iob_op_stopping(op);
    if (why != 0)
      status = why; /* the reason, not libcurl's words for it */
  }
  /* For the next operation, on any thread; but not the handle of a
   * transfer that failed, or that succeeded after a failed call (a reused
   * connection found reset, then a new one): the errno libcurl saved
   * outlives the transfer, curl_easy_reset() or not, to be read with the
   * next transfer's failure. */
  if (rc == CURLE_OK && saved_errno(h->x.easy) == 0)
    iob__http_spare_give(c, h->x.easy);
  else
    curl_easy_cleanup(h->x.easy);
  h->x.easy = NULL;
  return status;
}

/* ---- the kind -------------------------------------------------------------- */

/* A client named (as the target, or by it) serves one loop: not the
 * loops style's, which are the batch's own. */
static int http_check(const iob_config *c) {
  if (c->target == NULL)
    return IOB_EINVAL;
  const iob_http_target *t = c->target;
  bool named = is_client(c->target) || t->client != NULL;
  return named && (iob_style_flags(c->style) & IOB_STYLE_LOOPS) ? IOB_ENOTSUP
                                                                : 0;
}

/* A batch that names no client makes its own, on its loop (the loop
 * styles) or for its threads. */
static int http_open(iob_batch *batch, const void *target, void *arg) {
  shared *s = arg;
  const iob_http_target *t = target;
  int err = 0;
  if (!is_client(target) && t->client == NULL) {
    const iob_config *c = iob_batch_config(batch);
    bool threads = iob_style_flags(c->style) & IOB_STYLE_ON_THREADS;
    bool all = !threads && !c->open && c->max_in_flight == 0 &&
               c->shared_limit == NULL && c->style != &iob_style_sequential;
    err = iob__http_client_make(&s->own, threads ? NULL : iob_batch_loop(batch),
                                NULL, true, all);
  }
  if (err == 0)
    iob__target_hold(target); /* (a target holds its client) */
  return err;
}

static void http_close(iob_batch *batch, const void *target, void *arg) {
  (void)batch;
  shared *s = arg;
  if (s->own != NULL)
    iob__http_client_free(s->own);
  s->own = NULL;
  iob__target_release(target); /* last: nothing reads the target after */
}

/* Worth another attempt (iob_retry): an answer that says so (429, any
 * 5xx), after the server's Retry-After if it gave one; a transfer that
 * failed on the way as iob_retry_transient() judges; not another
 * answer. */
static int64_t http_retry(const iob_outcome *o) {
  const iob_http_result *r = o->result;
  long code = r != NULL ? r->code : (long)o->value;
  if (o->status == 0 || o->status == IOB_ECANCELED)
    return IOB_RETRY_NO;
  if (code == 429 || (code >= 500 && code <= 599))
    return r == NULL || r->retry_after_s <= 0 ? 0
           : r->retry_after_s > INT64_MAX / 1000
               ? INT64_MAX /* past any timer: no retry */
               : r->retry_after_s * 1000;
  return code != 0 ? IOB_RETRY_NO : iob_retry_transient(o);
}

const iob_kind iob_kind_http = {
    .name = "http",
    .op_size = sizeof(http_op),
    .stack_size = 256 * 1024, /* libcurl and OpenSSL on a thread */
    .check = http_check,
    .start = http_start,
    .run = http_run,
    .stop = http_stop,
    .cleanup = cleanup,
    .free_result = result_free,
    .batch_size = sizeof(shared),
    .open = http_open,
    .close = http_close,
    .input_copy = request_copy,
    .input_free = free,
    .retry = http_retry,
};
