/* HTTP requests on libcurl. On the loop styles, libcurl's multi interface
 * driven by the batch's loop, as curl's own docs/examples/multi-uv.c
 * does: libcurl says which sockets to watch (a uv_poll_t each) and when
 * to call it back (one uv_timer_t, and a uv_idle_t for "at once": see
 * on_timeout()); the multi handle, and with it the
 * connection cache, is the batch's (the kind's open()). On the thread
 * styles, curl_easy_perform() on each thread, the connections shared
 * between them through a curl share handle. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include <curl/curl.h>

#include "iobound/http.h"
#include "target.h"

struct iob_http_target {
  iob__users users; /* first: see target.h */
  char *method, *url, *body;
  struct curl_slist *headers;
  int no_reuse;
};

/* ---- the target ----------------------------------------------------------- */

static uv_once_t global_once = UV_ONCE_INIT;
static CURLcode global_status;

static void global_init(void) {
  global_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool has_control_byte(const char *s) {
  for (; s != NULL && *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return true;
  return false;
}

static char *copy(const char *s, bool *failed) {
  if (s == NULL)
    return NULL;
  char *c = strdup(s);
  *failed |= c == NULL;
  return c;
}

static void target_free(void *p) {
  iob_http_target *t = p;
  free(t->method);
  free(t->url);
  free(t->body);
  curl_slist_free_all(t->headers);
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
  if (o == NULL || o->url == NULL ||
      (strncmp(o->url, "http://", 7) != 0 &&
       strncmp(o->url, "https://", 8) != 0) ||
      has_control_byte(o->url) || has_control_byte(o->method))
    return IOB_EINVAL;
  for (size_t k = 0; o->headers != NULL && o->headers[k] != NULL; k++)
    if (has_control_byte(o->headers[k]))
      return IOB_EINVAL;
  uv_once(&global_once, global_init);
  if (global_status != CURLE_OK)
    return IOB_EIO;
  iob_http_target *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return IOB_ENOMEM;
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
  if (failed) {
    target_free(t);
    return IOB_ENOMEM;
  }
  *target = t;
  return 0;
}

/* ---- one request ------------------------------------------------------------ */

/* An operation's state. */
typedef struct http_op {
  CURL *easy;
  char *url;
  uint64_t bytes;
  int socket_errno; /* why socket() last failed for it; 0 if it did not */
  char error[CURL_ERROR_SIZE];
} http_op;

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

/* The body goes nowhere: it is counted. */
static size_t on_body(char *data, size_t size, size_t n, void *arg) {
  (void)data;
  ((http_op *)arg)->bytes += size * n;
  return size * n;
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

/* An easy handle for the operation, its options set: `reuse` (reset) if
 * given, else a new one. 0 or IOB_ENOMEM. */
static int make_easy(iob_op *op, CURL *reuse) {
  const iob_http_target *t = op->target;
  http_op *h = op->state;
  h->url = url_of(t->url, op->index, op->duration_ms);
  if (reuse != NULL)
    curl_easy_reset(reuse); /* keeps its connections */
  h->easy = reuse != NULL ? reuse : curl_easy_init();
  if (h->url == NULL || h->easy == NULL)
    return IOB_ENOMEM;
  CURL *e = h->easy;
  curl_easy_setopt(e, CURLOPT_URL, h->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, op);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->error);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, h);
  if (t->body != NULL)
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
  if (t->method != NULL && strcmp(t->method, "HEAD") == 0)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L); /* or it waits for a body */
  else if (t->method != NULL)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method);
  if (t->headers != NULL)
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  if (t->no_reuse) {
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  }
  return 0;
}

/* ---- what went wrong ----------------------------------------------------- */

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
  long os = h->socket_errno != 0 ? h->socket_errno : saved_errno(h->easy);
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
  curl_easy_getinfo(h->easy, CURLINFO_STARTTRANSFER_TIME_T, &first_byte);
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
    return broke(saved_errno(h->easy)) ? UV_ECONNRESET : UV_EIO;
  case CURLE_GOT_NOTHING:
    return UV_EOF;
  case CURLE_OPERATION_TIMEDOUT:
    return IOB_ETIMEDOUT;
  case CURLE_ABORTED_BY_CALLBACK:
    return IOB_ECANCELED;
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

/* The transfer is over with rc: hand back what it got, and the status. */
static int finish(iob_op *op, CURLcode rc) {
  http_op *h = op->state;
  long code = 0;
  double connect = 0, total = 0;
  curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_getinfo(h->easy, CURLINFO_CONNECT_TIME, &connect);
  curl_easy_getinfo(h->easy, CURLINFO_TOTAL_TIME, &total);
  iob_http_result *r = malloc(sizeof(*r));
  if (r != NULL) {
    *r = (iob_http_result){code, h->bytes, connect * 1e3, total * 1e3};
    if (iob_op_set_result(op, r) != 0)
      free(r);
  }
  iob_op_set_value(op, (uint64_t)code);
  const char *why;
  int status = status_of(h, rc, &why);
  if (status != 0) {
    if (why == NULL)
      why = h->error[0] ? h->error : curl_easy_strerror(rc);
    iob_op_set_message(op, why);
    return status;
  }
  if (code < 200 || code > 299) {
    char text[64];
    snprintf(text, sizeof(text), "HTTP %ld from %s", code,
             strlen(h->url) < 40 ? h->url : "the server");
    iob_op_set_message(op, text);
    return UV_EIO;
  }
  return 0;
}

static void cleanup(iob_op *op) {
  http_op *h = op->state;
  if (h->easy != NULL)
    curl_easy_cleanup(h->easy);
  free(h->url);
  h->easy = NULL;
  h->url = NULL;
}

/* ---- the loop styles: the multi interface on the batch's loop -------------- */

/* The batch's part, made by open(): a pointer to the glue, which lives on
 * past the batch until its handles have closed. */
typedef struct glue {
  CURLM *multi;
  uv_loop_t *loop;
  /* When libcurl asks to be called back: in so many ms, the timer; at
   * once (0 ms), the idle handle, on the loop's next turn (on_timeout()
   * says why). */
  uv_timer_t timer;
  uv_idle_t soon;
  uint32_t handles; /* the timer, the idle and the sockets' polls not yet
                       closed */
  struct watch *watches;
  /* Connections that may wait in libcurl's cache for a next request: a
   * transfer that ended well leaves one; one that starts while there are
   * any may take one. While there are none, a transfer connects afresh
   * without searching the cache, which libcurl 7.x walks whole for every
   * transfer: with ten thousand at once, most of the batch's time. */
  uint32_t idle;
  /* Why the socket callback failed (libcurl then aborts every transfer of
   * the multi handle with CURLE_ABORTED_BY_CALLBACK); 0 if it did not. */
  int error;
  /* Every operation starts at once (no limit): none can reuse another's
   * connection, so none is kept; libcurl then has no cache to walk. */
  bool all_at_once;
} glue;

/* A socket libcurl asked to watch. */
typedef struct watch {
  uv_poll_t poll;
  curl_socket_t fd;
  int events; /* what libcurl waits for: CURL_CSELECT_IN and _OUT */
  glue *g;
  struct watch *prev, *next;
} watch;

typedef struct shared {
  glue *g;
  /* The thread styles: a DNS cache shared by the threads, and easy
   * handles that finished their transfer, each with the connections it
   * keeps. libcurl cannot share connections between threads transferring
   * at once, so each easy handle, and its connections, is one thread's at
   * a time, handed to the next operation under the lock. */
  CURLSH *share;
  uv_mutex_t locks[CURL_LOCK_DATA_LAST];
  bool locks_made;
  uv_mutex_t spare_lock;
  CURL **spare;
  uint32_t nspare, room;
} shared;

static void glue_release(glue *g) {
  if (--g->handles == 0)
    free(g);
}

static void on_glue_handle_closed(uv_handle_t *h) { glue_release(h->data); }

static void on_watch_closed(uv_handle_t *h) {
  watch *w = h->data;
  glue *g = w->g;
  free(w);
  glue_release(g);
}

static void unwatch(watch *w) {
  glue *g = w->g;
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    g->watches = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
  uv_close((uv_handle_t *)&w->poll, on_watch_closed);
}

/* Settle the transfers libcurl has finished. */
static void check_done(glue *g) {
  CURLMsg *m;
  int left;
  while (g->multi != NULL &&
         (m = curl_multi_info_read(g->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    iob_op *op = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&op);
    CURLcode rc = m->data.result;
    curl_multi_remove_handle(g->multi, m->easy_handle);
    if (rc == CURLE_OK && !g->all_at_once)
      g->idle++;
    int status = finish(op, rc);
    if (rc == CURLE_ABORTED_BY_CALLBACK) /* ours failed: not a cancel */
      status = g->error != 0 ? g->error : UV_EIO;
    iob_op_done(op, status);
  }
}

/* libuv's events for libcurl's CURL_CSELECT_IN and _OUT. */
static int uv_events_of(int cselect) {
  return (cselect & CURL_CSELECT_IN ? UV_READABLE : 0) |
         (cselect & CURL_CSELECT_OUT ? UV_WRITABLE : 0);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  watch *w = p->data;
  glue *g = w->g;
  int flags = 0;
  /* An error on the socket (a reset: EPOLLERR) comes from libuv as
   * UV_EBADF, without events, and stops the poll. Told only
   * CURL_CSELECT_ERR, libcurl gives up with "select/poll returned error"
   * and no errno; told the socket is ready for what it waits for, it
   * reads or writes and learns the error itself (ECONNRESET). */
  if (status < 0)
    flags = CURL_CSELECT_ERR | w->events;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  int running;
  curl_multi_socket_action(g->multi, w->fd, flags, &running);
  /* libuv stopped the poll with the error. Should libcurl go on waiting
   * for the same events, it says nothing more of the socket: watch it
   * again, or the transfer would stall until its timeout. */
  uv_handle_t *h = (uv_handle_t *)&w->poll;
  if (status < 0 && !uv_is_closing(h) && !uv_is_active(h))
    uv_poll_start(&w->poll, uv_events_of(w->events), on_poll);
  check_done(g);
}

static void on_time(glue *g) {
  int running;
  curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(g);
}

static void on_timer(uv_timer_t *t) { on_time(t->data); }

static void on_soon(uv_idle_t *idle) {
  uv_idle_stop(idle); /* once; libcurl asks again if it must */
  on_time(idle->data);
}

/* libcurl: watch socket s for `what`, or no more. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *arg,
                     void *socketp) {
  (void)easy;
  glue *g = arg;
  watch *w = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (w != NULL) {
      curl_multi_assign(g->multi, s, NULL);
      unwatch(w);
    }
    return 0;
  }
  if (w == NULL) {
    w = calloc(1, sizeof(*w));
    int err = w == NULL ? IOB_ENOMEM : uv_poll_init_socket(g->loop, &w->poll, s);
    if (err != 0) {
      free(w);
      g->error = err;
      return -1; /* libcurl aborts every transfer of the batch */
    }
    w->fd = s;
    w->g = g;
    w->poll.data = w;
    w->next = g->watches;
    if (g->watches != NULL)
      g->watches->prev = w;
    g->watches = w;
    g->handles++;
    curl_multi_assign(g->multi, s, w);
  }
  w->events = (what & CURL_POLL_IN ? CURL_CSELECT_IN : 0) |
              (what & CURL_POLL_OUT ? CURL_CSELECT_OUT : 0);
  uv_poll_start(&w->poll, uv_events_of(w->events), on_poll);
  return 0;
}

/* libcurl: call me back in ms (-1: never), instead of when it said
 * before. 0 means as soon as the loop can, not before anything else: while
 * a body keeps coming libcurl reads a while, then asks for 0 ms to read
 * on, again and again. A uv_timer_t of 0 ms started from its own callback
 * runs again in the same pass over the timers (libuv before 1.48,
 * libuv#4245), so the loop would neither poll nor run another timer,
 * not even a timeout's, for as long as the body came. curl's
 * docs/examples/multi-uv.c makes it 1 ms, which delays every transfer's
 * start (libcurl asks for 0 ms as each is added) by a millisecond or
 * two. An idle handle runs it on the loop's next turn, after the due
 * timers and a poll that does not block, and delays nothing. */
static int on_timeout(CURLM *multi, long ms, void *arg) {
  (void)multi;
  glue *g = arg;
  if (ms != 0)
    uv_idle_stop(&g->soon);
  if (ms < 0)
    uv_timer_stop(&g->timer);
  else if (ms == 0) {
    uv_timer_stop(&g->timer);
    uv_idle_start(&g->soon, on_soon);
  } else
    uv_timer_start(&g->timer, on_timer, (uint64_t)ms, 0);
  return 0;
}

static int glue_open(shared *s, iob_batch *batch) {
  uv_loop_t *loop = iob_batch_loop(batch);
  const iob_config *c = iob_batch_config(batch);
  glue *g = calloc(1, sizeof(*g));
  if (g == NULL || (g->multi = curl_multi_init()) == NULL) {
    free(g);
    return IOB_ENOMEM;
  }
  g->loop = loop;
  g->all_at_once = c->max_in_flight == 0 && c->shared_limit == NULL &&
                   c->style != &iob_style_sequential;
  uv_timer_init(loop, &g->timer);
  uv_idle_init(loop, &g->soon);
  g->timer.data = g->soon.data = g;
  g->handles = 2;
  curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g);
  curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
  curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g);
  /* Keep every connection the batch made (libcurl would keep only four
   * per transfer still in it, closing the oldest idle one each time). */
  curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, 1L << 20);
  s->g = g;
  return 0;
}

/* Close the connections libcurl keeps, then every handle; the glue goes
 * with the last. */
static void glue_close(glue *g) {
  curl_multi_cleanup(g->multi);
  g->multi = NULL;
  while (g->watches != NULL)
    unwatch(g->watches);
  uv_close((uv_handle_t *)&g->timer, on_glue_handle_closed);
  uv_close((uv_handle_t *)&g->soon, on_glue_handle_closed);
}

static int http_start(iob_op *op) {
  shared *s = op->shared;
  http_op *h = op->state;
  int err = make_easy(op, NULL);
  if (err != 0)
    return err;
  glue *g = s->g;
  if (g->all_at_once)
    curl_easy_setopt(h->easy, CURLOPT_FORBID_REUSE, 1L);
  if (g->idle == 0)
    curl_easy_setopt(h->easy, CURLOPT_FRESH_CONNECT, 1L);
  CURLMcode mc = curl_multi_add_handle(g->multi, h->easy);
  if (mc != CURLM_OK)
    return mc == CURLM_OUT_OF_MEMORY ? IOB_ENOMEM : UV_EIO;
  if (g->idle > 0)
    g->idle--; /* it may take one */
  return 0;
}

/* Told to stop: the transfer leaves the multi handle (its connection is
 * closed, or kept if it may be reused) and settles now. */
static void http_stop(iob_op *op) {
  shared *s = op->shared;
  http_op *h = op->state;
  curl_multi_remove_handle(s->g->multi, h->easy);
  iob_op_done(op, iob_op_stopping(op));
}

/* ---- the thread styles ------------------------------------------------------ */

static void share_lock(CURL *e, curl_lock_data data, curl_lock_access a,
                       void *arg) {
  (void)e;
  (void)a;
  uv_mutex_lock(&((shared *)arg)->locks[data]);
}

static void share_unlock(CURL *e, curl_lock_data data, void *arg) {
  (void)e;
  uv_mutex_unlock(&((shared *)arg)->locks[data]);
}

static int share_open(shared *s) {
  if (uv_mutex_init(&s->spare_lock) != 0)
    return IOB_ENOMEM;
  for (int k = 0; k < CURL_LOCK_DATA_LAST; k++)
    if (uv_mutex_init(&s->locks[k]) != 0) {
      while (k-- > 0)
        uv_mutex_destroy(&s->locks[k]);
      uv_mutex_destroy(&s->spare_lock);
      return IOB_ENOMEM;
    }
  s->locks_made = true;
  s->share = curl_share_init();
  if (s->share == NULL)
    return IOB_ENOMEM;
  curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
  curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  return 0;
}

/* An easy handle a finished operation left, or NULL. */
static CURL *spare_take(shared *s) {
  uv_mutex_lock(&s->spare_lock);
  CURL *e = s->nspare > 0 ? s->spare[--s->nspare] : NULL;
  uv_mutex_unlock(&s->spare_lock);
  return e;
}

/* Keep an easy handle, and its connections, for a later operation; with
 * no room for it, let it go. */
static void spare_give(shared *s, CURL *e) {
  uv_mutex_lock(&s->spare_lock);
  if (s->nspare == s->room) {
    uint32_t room = s->room ? 2 * s->room : 8;
    CURL **more = realloc(s->spare, room * sizeof(*more));
    if (more != NULL) {
      s->spare = more;
      s->room = room;
    }
  }
  bool kept = s->nspare < s->room;
  if (kept)
    s->spare[s->nspare++] = e;
  uv_mutex_unlock(&s->spare_lock);
  if (!kept)
    curl_easy_cleanup(e);
}

static void share_close(shared *s) {
  for (uint32_t k = 0; k < s->nspare; k++)
    curl_easy_cleanup(s->spare[k]);
  free(s->spare);
  s->spare = NULL;
  s->nspare = s->room = 0;
  if (s->share != NULL)
    curl_share_cleanup(s->share);
  s->share = NULL;
  if (s->locks_made) {
    for (int k = 0; k < CURL_LOCK_DATA_LAST; k++)
      uv_mutex_destroy(&s->locks[k]);
    uv_mutex_destroy(&s->spare_lock);
  }
  s->locks_made = false;
}

/* libcurl calls this now and then, at least once a second: a cancelled
 * or timed-out operation stops its transfer. */
static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c,
                       curl_off_t d) {
  (void)a, (void)b, (void)c, (void)d;
  return iob_op_stopping(arg) != 0;
}

static int http_run(iob_op *op) {
  shared *s = op->shared;
  http_op *h = op->state;
  int err = make_easy(op, spare_take(s));
  if (err != 0)
    return err;
  curl_easy_setopt(h->easy, CURLOPT_SHARE, s->share);
  curl_easy_setopt(h->easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h->easy, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h->easy, CURLOPT_XFERINFODATA, op);
  int64_t left = iob_op_remaining_ms(op);
  if (left >= 0)
    curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, (long)(left > 0 ? left : 1));
  CURLcode rc = curl_easy_perform(h->easy);
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
  if (rc == CURLE_OK && saved_errno(h->easy) == 0)
    spare_give(s, h->easy);
  else
    curl_easy_cleanup(h->easy);
  h->easy = NULL;
  return status;
}

/* ---- the kind -------------------------------------------------------------- */

static int http_check(const iob_config *c) {
  return c->target != NULL ? 0 : IOB_EINVAL;
}

static int http_open(iob_batch *batch, const void *target, void *arg) {
  shared *s = arg;
  bool threads = iob_style_flags(iob_batch_style(batch)) & IOB_STYLE_ON_THREADS;
  int err = threads ? share_open(s) : glue_open(s, batch);
  if (err != 0)
    share_close(s);
  else
    iob__target_hold(target);
  return err;
}

static void http_close(iob_batch *batch, const void *target, void *arg) {
  (void)batch;
  shared *s = arg;
  if (s->g != NULL)
    glue_close(s->g);
  s->g = NULL;
  share_close(s);
  iob__target_release(target); /* last: nothing reads the target after */
}

static void free_result(void *r) { free(r); }

const iob_kind iob_kind_http = {
    .name = "http",
    .op_size = sizeof(http_op),
    .stack_size = 256 * 1024, /* libcurl and OpenSSL on a thread */
    .check = http_check,
    .start = http_start,
    .run = http_run,
    .stop = http_stop,
    .cleanup = cleanup,
    .free_result = free_result,
    .batch_size = sizeof(shared),
    .open = http_open,
    .close = http_close,
};
