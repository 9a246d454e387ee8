/* The HTTP client: on the loop styles, libcurl's multi interface driven
 * by one loop, as curl's own docs/examples/multi-uv.c does: libcurl says
 * which sockets to watch (a uv_poll_t each) and when to call it back (one
 * uv_timer_t, and a uv_idle_t for "at once": see on_timeout()); the multi
 * handle, and with it the connection cache, is the client's. On the
 * thread styles, easy handles that finished a request, each with its
 * connections, handed to the next request on any thread. A batch that
 * names no client makes one of its own (the kind's open()). */
#include <stdlib.h>
#include <string.h>

#include "http-client.h"

/* ---- the loop styles: the multi interface on the client's loop ------------- */

/* The multi handle and what drives it: lives on past the client until
 * its handles have closed. */
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
  /* A batch's own client: connections that may wait in libcurl's cache
   * for a next request. A transfer that ended well leaves one; one that
   * starts while there are any may take one. While there are none, a
   * transfer connects afresh without searching the cache, which libcurl
   * 7.x walks whole for every transfer: with ten thousand at once, most
   * of the batch's time. (An application's client keeps its cache whole:
   * an HTTP/2 connection in use takes more requests.) */
  uint32_t idle;
  /* Transfers whose socket could not be watched (no memory): they end
   * on the loop's next turn (on_soon()). Not by failing the socket
   * callback: libcurl would then fail every transfer of the multi handle,
   * and 7.88 crashes running them again. */
  iob__http_xfer *doomed;
  bool own, all_at_once; /* the client's, copied: it may be gone */
  /* Inside curl_multi_socket_action(), whose callbacks (the body's) may
   * stop a transfer: it may not leave the multi handle then. */
  int busy;
} glue;

/* A socket libcurl asked to watch. */
typedef struct watch {
  uv_poll_t poll;
  curl_socket_t fd;
  int events; /* what libcurl waits for: CURL_CSELECT_IN and _OUT */
  glue *g;
  struct watch *prev, *next;
} watch;

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

/* Transfer x ends another way: off the doomed list, if it is there. */
static void undoom(glue *g, iob__http_xfer *x) {
  if (x->doomed == 0)
    return;
  iob__http_xfer **at = &g->doomed;
  while (*at != x)
    at = &(*at)->doomed_next;
  *at = x->doomed_next;
  x->doomed = 0;
  x->doomed_next = NULL;
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
    if (rc == CURLE_OK && g->own && !g->all_at_once)
      g->idle++;
    undoom(g, op->state);
    iob__http_done(op, rc, 0);
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
  g->busy++;
  curl_multi_socket_action(g->multi, w->fd, flags, &running);
  g->busy--;
  /* libuv stopped the poll with the error. Should libcurl go on waiting
   * for the same events, it says nothing more of the socket: watch it
   * again, or the transfer would stall until its timeout. */
  uv_handle_t *h = (uv_handle_t *)&w->poll;
  if (status < 0 && !uv_is_closing(h) && !uv_is_active(h))
    uv_poll_start(&w->poll, uv_events_of(w->events), on_poll);
  check_done(g);
}

/* End the transfers whose socket could not be watched. */
static void end_doomed(glue *g) {
  iob__http_xfer *x;
  while ((x = g->doomed) != NULL) {
    g->doomed = x->doomed_next;
    x->doomed_next = NULL;
    curl_multi_remove_handle(g->multi, x->easy);
    iob__http_done(x->op, CURLE_ABORTED_BY_CALLBACK, x->doomed);
  }
}

static void on_time(glue *g) {
  int running;
  end_doomed(g);
  g->busy++;
  curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  g->busy--;
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
    int err =
        w == NULL ? IOB_ENOMEM : uv_poll_init_socket(g->loop, &w->poll, s);
    if (err != 0) { /* this transfer ends on the loop's next turn */
      free(w);
      iob_op *op = NULL;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&op);
      iob__http_xfer *x = op->state;
      if (x->doomed == 0) {
        x->doomed = err;
        x->doomed_next = g->doomed;
        g->doomed = x;
      }
      uv_idle_start(&g->soon, on_soon);
      return 0;
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
  if (ms != 0 && g->doomed == NULL) /* (doomed ones end at once) */
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

static int glue_open(iob_http_client *c, uint32_t max_host) {
  glue *g = calloc(1, sizeof(*g));
  if (g == NULL || (g->multi = curl_multi_init()) == NULL) {
    free(g);
    return IOB_ENOMEM;
  }
  g->loop = c->loop;
  g->own = c->own;
  g->all_at_once = c->all_at_once;
  uv_timer_init(c->loop, &g->timer);
  uv_idle_init(c->loop, &g->soon);
  g->timer.data = g->soon.data = g;
  g->handles = 2;
  curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g);
  curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
  curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g);
  /* Keep every connection made (libcurl would keep only four per
   * transfer still in it, closing the oldest idle one each time). */
  curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, 1L << 20);
  curl_multi_setopt(g->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  if (max_host != 0)
    curl_multi_setopt(g->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max_host);
  c->g = g;
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

int iob__http_add(iob_http_client *c, CURL *easy) {
  glue *g = c->g;
  if (g->own && g->all_at_once) /* no later request could take it */
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
  if (g->own && g->idle == 0)
    curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
  CURLMcode mc = curl_multi_add_handle(g->multi, easy);
  if (mc != CURLM_OK)
    return mc == CURLM_OUT_OF_MEMORY ? IOB_ENOMEM : UV_EIO;
  if (g->own && g->idle > 0)
    g->idle--; /* it may take one */
  return 0;
}

bool iob__http_stop_later(iob_http_client *c, iob__http_xfer *x) {
  glue *g = c->g;
  if (g->busy == 0)
    return false;
  x->stopped = true;
  if (x->doomed == 0) {
    x->doomed = IOB_ECANCELED; /* (any code: stopped says why) */
    x->doomed_next = g->doomed;
    g->doomed = x;
  }
  uv_idle_start(&g->soon, on_soon);
  return true;
}

void iob__http_remove(iob_http_client *c, iob__http_xfer *x) {
  undoom(c->g, x);
  curl_multi_remove_handle(c->g->multi, x->easy);
}

/* ---- the thread styles: easy handles handed on --------------------------- */

static void share_lock(CURL *e, curl_lock_data data, curl_lock_access a,
                       void *arg) {
  (void)e;
  (void)a;
  uv_mutex_lock(&((iob_http_client *)arg)->locks[data]);
}

static void share_unlock(CURL *e, curl_lock_data data, void *arg) {
  (void)e;
  uv_mutex_unlock(&((iob_http_client *)arg)->locks[data]);
}

static int share_open(iob_http_client *c) {
  if (uv_mutex_init(&c->spare_lock) != 0)
    return IOB_ENOMEM;
  for (int k = 0; k < CURL_LOCK_DATA_LAST; k++)
    if (uv_mutex_init(&c->locks[k]) != 0) {
      while (k-- > 0)
        uv_mutex_destroy(&c->locks[k]);
      uv_mutex_destroy(&c->spare_lock);
      return IOB_ENOMEM;
    }
  c->locks_made = true;
  c->share = curl_share_init();
  if (c->share == NULL)
    return IOB_ENOMEM;
  curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
  curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  return 0;
}

static void share_close(iob_http_client *c) {
  for (uint32_t k = 0; k < c->nspare; k++)
    curl_easy_cleanup(c->spare[k]);
  free(c->spare);
  c->spare = NULL;
  c->nspare = c->room = 0;
  if (c->share != NULL)
    curl_share_cleanup(c->share);
  c->share = NULL;
  if (c->locks_made) {
    for (int k = 0; k < CURL_LOCK_DATA_LAST; k++)
      uv_mutex_destroy(&c->locks[k]);
    uv_mutex_destroy(&c->spare_lock);
  }
  c->locks_made = false;
}

CURL *iob__http_spare_take(iob_http_client *c) {
  uv_mutex_lock(&c->spare_lock);
  CURL *e = c->nspare > 0 ? c->spare[--c->nspare] : NULL;
  uv_mutex_unlock(&c->spare_lock);
  return e;
}

void iob__http_spare_give(iob_http_client *c, CURL *e) {
  uv_mutex_lock(&c->spare_lock);
  if (c->nspare == c->room) {
    uint32_t room = c->room ? 2 * c->room : 8;
    CURL **more = realloc(c->spare, room * sizeof(*more));
    if (more != NULL) {
      c->spare = more;
      c->room = room;
    }
  }
  bool kept = c->nspare < c->room;
  if (kept)
    c->spare[c->nspare++] = e;
  uv_mutex_unlock(&c->spare_lock);
  if (!kept)
    curl_easy_cleanup(e);
}

/* ---- the client ------------------------------------------------------------- */

static uv_once_t global_once = UV_ONCE_INIT;
static CURLcode global_status;

static void global_init(void) {
  global_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int iob__http_init(void) {
  uv_once(&global_once, global_init);
  return global_status == CURLE_OK ? 0 : IOB_EIO;
}

/* Whether plain http:// may go without libcurl: not when the
 * environment asks for libcurl (IOB_HTTP_LIBCURL, set and not "0"), nor
 * when it names a proxy libcurl would go through (http_proxy, all_proxy,
 * ALL_PROXY; libcurl ignores HTTP_PROXY). */
static bool native_allowed(void) {
  static const char *const names[] = {"http_proxy", "all_proxy", "ALL_PROXY"};
  const char *v = getenv("IOB_HTTP_LIBCURL");
  if (v != NULL && *v != '\0' && strcmp(v, "0") != 0)
    return false;
  for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
    if ((v = getenv(names[k])) != NULL && *v != '\0')
      return false;
  return true;
}

void iob__http_client_free(iob_http_client *c) {
  if (c->g != NULL)
    glue_close(c->g);
  iob__h1_client_free(c->h1);
  share_close(c);
  free(c->ca_file);
  free(c);
}

int iob__http_client_make(iob_http_client **client, uv_loop_t *loop,
                          const iob_http_client_options *options, bool own,
                          bool all_at_once) {
  static const iob_http_client_options defaults = {0};
  const iob_http_client_options *o = options ? options : &defaults;
  *client = NULL;
  if (o->max_body > IOB_HTTP_BODY_MAX)
    return IOB_ERANGE;
  if (iob__http_init() != 0)
    return IOB_EIO;
  iob_http_client *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return IOB_ENOMEM;
  c->tag = IOB__HTTP_CLIENT;
  c->loop = loop;
  c->own = own;
  c->all_at_once = all_at_once;
  c->max_body = own ? 0 : o->max_body ? o->max_body : UINT64_C(8) << 20;
  c->max_redirects = o->max_redirects;
  c->insecure = o->insecure;
  int err = 0;
  if (o->ca_file != NULL && (c->ca_file = strdup(o->ca_file)) == NULL)
    err = IOB_ENOMEM;
  if (err == 0)
    err = share_open(c);
  if (err == 0 && loop != NULL)
    err = glue_open(c, o->max_host_connections);
  /* Redirects are libcurl's to follow. */
  if (err == 0 && loop != NULL && o->max_redirects == 0 && native_allowed())
    err = iob__h1_client_make(&c->h1, loop, o->max_host_connections);
  if (err != 0) {
    iob__http_client_free(c);
    return err;
  }
  *client = c;
  return 0;
}

int iob_http_client_create(iob_http_client **client, uv_loop_t *loop,
                           const iob_http_client_options *options) {
  if (client == NULL)
    return IOB_EINVAL;
  return iob__http_client_make(client, loop, options, false, false);
}

int iob_http_client_destroy(iob_http_client *client) {
  return iob__target_destroy(client, (void (*)(void *))iob__http_client_free);
}
