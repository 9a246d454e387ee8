/* A rate limit shared by batches on one loop: a token bucket, `burst`
 * tokens at most, refilled at `per_ns`. An operation takes a token as it
 * launches, before its batch takes a permit of a shared limit, so an
 * operation that waits for a token holds none. A batch that finds none
 * joins the queue's tail once; a timer on the loop wakes when the next
 * token is due and gives tokens to the waiting batches in turn, one
 * operation each, as lib/core/limit.c gives permits. */
#include <stddef.h>
#include <stdlib.h>

#include "internal.h"

#define PLACE offsetof(iob_batch, rate_place)

struct iob_rate {
  double per_ns; /* tokens a nanosecond */
  double tokens; /* at `at` */
  uint64_t at;   /* uv_hrtime() */
  uint32_t burst;
  /* Running batches that use it, and their loop while there are any:
   * atomic, so that a batch started on another loop's thread, which is
   * refused, reads them safely. The rest is the loop thread's alone. */
  atomic_uint users;
  _Atomic(uv_loop_t *) loop;
  /* On that loop, allocated when the first batch attaches (it outlives
   * the rate to close), put on the loop only when first armed: a batch
   * that fails to start leaves nothing on the loop. */
  uv_timer_t *timer;
  bool timer_on_loop;
  iob__line line;         /* batches waiting for a token */
  iob_batch *granted;     /* being given a token by drain() */
  bool draining;
};

int iob_rate_create(iob_rate **rate, double per_second, uint32_t burst) {
  if (rate == NULL)
    return IOB_EINVAL;
  *rate = NULL;
  if (!(per_second >= IOB_RATE_MIN && per_second <= IOB_RATE_MAX) ||
      burst == 0 || burst > IOB_COUNT_MAX)
    return IOB_ERANGE; /* NaN too */
  iob_rate *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return IOB_ENOMEM;
  r->per_ns = per_second / 1e9;
  r->burst = burst;
  r->tokens = burst;
  atomic_init(&r->users, 0);
  atomic_init(&r->loop, NULL);
  *rate = r;
  return 0;
}

int iob_rate_free(iob_rate *rate) {
  if (rate == NULL)
    return 0;
  if (atomic_load(&rate->users) > 0)
    return IOB_EBUSY;
  free(rate);
  return 0;
}

/* Tokens earned since `at`, up to the burst. */
static void refill(iob_rate *r) {
  uint64_t now = uv_hrtime();
  if (r->at != 0)
    r->tokens += (double)(now - r->at) * r->per_ns;
  if (r->tokens > r->burst)
    r->tokens = r->burst;
  r->at = now;
}

static void on_due(uv_timer_t *timer);

int iob__rate_attach(iob_batch *b) {
  iob_rate *r = b->config.rate;
  uv_loop_t *none = NULL;
  if (!atomic_compare_exchange_strong(&r->loop, &none, b->loop) &&
      none != b->loop)
    return IOB_EINVAL; /* another loop's */
  if (atomic_load(&r->users) == 0) { /* the first user: a timer here */
    r->timer = malloc(sizeof(*r->timer));
    if (r->timer == NULL) {
      atomic_store(&r->loop, NULL);
      return IOB_ENOMEM;
    }
    r->timer_on_loop = false;
  }
  atomic_fetch_add(&r->users, 1);
  return 0;
}

static void free_timer(uv_handle_t *h) { free(h); }

/* The next token is due: wake then, if a batch waits. */
static void arm(iob_rate *r) {
  if (r->line.head == NULL) {
    if (r->timer_on_loop)
      uv_timer_stop(r->timer);
    return;
  }
  if (!r->timer_on_loop) {
    uv_timer_init(atomic_load(&r->loop), r->timer);
    r->timer->data = r;
    r->timer_on_loop = true;
  }
  double ns = (1 - r->tokens) / r->per_ns;
  uint64_t ms = ns <= 0 ? 0 : (uint64_t)(ns / 1e6) + 1; /* never early */
  uv_timer_start(r->timer, on_due, ms, 0);
}

void iob__rate_unqueue(iob_batch *b) {
  iob_rate *r = b->config.rate;
  if (r->granted == b)
    r->granted = NULL;
  iob__line_leave(&r->line, b, PLACE);
  if (r->line.head == NULL && !r->draining && r->timer_on_loop)
    uv_timer_stop(r->timer); /* nobody waits: let the loop end */
}

void iob__rate_detach(iob_batch *b) {
  iob__rate_unqueue(b);
  iob_rate *r = b->config.rate;
  if (atomic_fetch_sub(&r->users, 1) == 1) {
    if (r->timer_on_loop)
      uv_close((uv_handle_t *)r->timer, free_timer);
    else
      free(r->timer);
    r->timer = NULL;
    atomic_store(&r->loop, NULL); /* free for another loop */
  }
}

bool iob__rate_take(iob_batch *b) {
  iob_rate *r = b->config.rate;
  if (r->granted == b) { /* its turn: the token drain() set aside */
    r->granted = NULL;
    return true;
  }
  refill(r);
  if (r->tokens >= 1 && r->line.head == NULL) {
    r->tokens -= 1;
    return true;
  }
  if (!b->rate_place.waiting) {
    iob__line_join(&r->line, b, PLACE);
    if (!r->draining)
      arm(r);
  }
  return false;
}

void iob__rate_untake(iob_batch *b) {
  iob_rate *r = b->config.rate;
  if (++r->tokens > r->burst)
    r->tokens = r->burst;
}

/* Hand the tokens due to waiting batches, one operation each in turn,
 * then sleep until the next one is due. Guarded, as limit.c's drain(). */
static void drain(iob_rate *r) {
  if (r->draining)
    return;
  r->draining = true;
  refill(r);
  while (r->tokens >= 1 && r->line.head != NULL) {
    iob_batch *b = r->line.head;
    iob__rate_unqueue(b);
    r->tokens -= 1;
    r->granted = b;
    iob__stamp_fresh(b);
    iob__launch_more(b); /* may end the batch, and free it */
    if (r->granted == b) { /* it launched nothing: the token is back */
      r->granted = NULL;
      r->tokens += 1;
    }
  }
  r->draining = false;
  if (r->timer != NULL)
    arm(r);
}

static void on_due(uv_timer_t *timer) { drain(timer->data); }
