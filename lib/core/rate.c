/* A rate limit shared by batches on one loop: a token bucket, `burst`
 * tokens at most, refilled at `per_ns`. An operation takes a token as it
 * launches, before its batch takes a permit of a shared limit, so an
 * operation that waits for a token holds none. A batch that finds none
 * joins the line's tail once; the batch first in line sleeps on a timer
 * of its own (its `token` handle, closed with its other handles) until
 * the next token is due, then tokens go to the waiting batches in turn,
 * one operation each, as lib/core/limit.c gives permits. The rate owns
 * no handle: nothing of it is left on the loop once its batches end. */
#include <stddef.h>
#include <stdlib.h>

#include "internal.h"

#define PLACE offsetof(iob_batch, rate_place)

struct iob_rate {
  double per_ns; /* tokens a nanosecond */
  /* At `at` (uv_hrtime()). At most `burst` while nobody waits; more
   * while batches wait, for what came due while the first one slept
   * past its token (a loop's timer wakes a millisecond or so late): the
   * rate holds on average, not only when woken on time. */
  double tokens;
  uint64_t at;
  uint32_t burst;
  /* Running batches that use it, and their loop while there are any:
   * atomic, so that a batch started on another loop's thread, which is
   * refused, reads them safely. The rest is the loop thread's alone. */
  atomic_uint users;
  _Atomic(uv_loop_t *) loop;
  iob__line line;     /* batches waiting for a token */
  iob_batch *sleeper; /* whose token timer is armed */
  iob_batch *granted; /* being given a token by drain() */
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

/* Tokens earned since `at`: up to the burst when nobody waits. */
static void refill(iob_rate *r) {
  uint64_t now = uv_hrtime();
  if (r->at != 0)
    r->tokens += (double)(now - r->at) * r->per_ns;
  if (r->tokens > r->burst && r->line.head == NULL)
    r->tokens = r->burst;
  r->at = now;
}

int iob__rate_attach(iob_batch *b) {
  iob_rate *r = b->config.rate;
  uv_loop_t *none = NULL;
  if (!atomic_compare_exchange_strong(&r->loop, &none, b->loop) &&
      none != b->loop)
    return IOB_EINVAL; /* another loop's */
  atomic_fetch_add(&r->users, 1);
  return 0;
}

/* The first batch in line sleeps until the next token is due; no other
 * does. */
static void arm(iob_rate *r) {
  iob_batch *first = r->line.head;
  if (r->sleeper != NULL && r->sleeper != first)
    uv_timer_stop(&r->sleeper->token);
  r->sleeper = first;
  if (first == NULL)
    return;
  double ns = (1 - r->tokens) / r->per_ns;
  uint64_t ms = ns <= 0 ? 0 : (uint64_t)(ns / 1e6) + 1; /* never early */
  uv_timer_start(&first->token, iob__rate_due, ms, 0);
}

void iob__rate_unqueue(iob_batch *b) {
  iob_rate *r = b->config.rate;
  if (r->granted == b)
    r->granted = NULL;
  iob__line_leave(&r->line, b, PLACE);
  if (r->sleeper == b && !r->draining)
    arm(r); /* the next in line sleeps instead, or nobody */
}

void iob__rate_detach(iob_batch *b) {
  iob__rate_unqueue(b);
  iob_rate *r = b->config.rate;
  if (r->sleeper == b) { /* (while draining) */
    uv_timer_stop(&b->token);
    r->sleeper = NULL;
  }
  if (atomic_fetch_sub(&r->users, 1) == 1)
    atomic_store(&r->loop, NULL); /* free for another loop */
}

bool iob__rate_take(iob_batch *b) {
  iob_rate *r = b->config.rate;
  if (r->granted == b) { /* its turn: the token drain() set aside */
    r->granted = NULL;
    b->rate_waits++;
    return true;
  }
  refill(r);
  if (r->tokens >= 1 && r->line.head == NULL) {
    r->tokens -= 1;
    return true;
  }
  if (!b->rate_place.waiting) {
    iob__line_join(&r->line, b, PLACE);
    if (!r->draining && r->sleeper == NULL)
      arm(r);
  }
  return false;
}

void iob__rate_untake(iob_batch *b) {
  iob_rate *r = b->config.rate;
  r->tokens += 1;
  if (r->tokens > r->burst && r->line.head == NULL)
    r->tokens = r->burst;
}

/* Hand the tokens due to waiting batches, one operation each in turn,
 * then let the first still waiting sleep until the next is due. Guarded,
 * as limit.c's drain(). */
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
    iob__launch_more(b);   /* may end the batch (never free it: its
                          * callback comes from its handles' close) */
    if (r->granted == b) { /* it launched nothing: the token is back */
      r->granted = NULL;
      r->tokens += 1;
    }
  }
  if (r->line.head == NULL && r->tokens > r->burst)
    r->tokens = r->burst;
  r->draining = false;
  arm(r);
}

void iob__rate_due(uv_timer_t *token) {
  iob_batch *b = iob_handle_batch((uv_handle_t *)token);
  iob_rate *r = b->config.rate;
  if (r->sleeper == b)
    r->sleeper = NULL; /* it woke */
  drain(r);
}
