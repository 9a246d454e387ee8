/* A circuit breaker (iob_breaker): closed, it counts outcomes over a
 * window kept in slices (as a retry budget does); when failures reach
 * their share it opens, and the core settles operations at launch with
 * IOB_EBREAKER; after open_ms it lets probes through, and the first
 * outcome back closes or reopens it. A lock, since batches on any loops
 * may share it; it is taken once at launch and once at settle, only by
 * batches that name a breaker. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SLICES 10

struct iob_breaker {
  uv_mutex_t lock;
  iob_breaker_options o;
  iob_breaker_state state;
  uint64_t opened_at;  /* uv_hrtime() when it last opened */
  uint32_t probes_out; /* let through while half-open */
  uint64_t slice_ns, slice_at;
  uint32_t outcomes[SLICES], failures[SLICES];
  _Atomic uint64_t trips;
  _Atomic int shown; /* the state, for iob_breaker_state_of() */
};

void iob_breaker_options_init(iob_breaker_options *o) {
  if (o != NULL)
    *o = (iob_breaker_options){.failure_ratio = 0.5,
                               .min_outcomes = 20,
                               .window_ms = 10000,
                               .open_ms = 5000,
                               .probes = 1};
}

int iob_breaker_create(iob_breaker **breaker,
                       const iob_breaker_options *options) {
  if (breaker == NULL)
    return IOB_EINVAL;
  *breaker = NULL;
  iob_breaker_options o;
  iob_breaker_options_init(&o);
  if (options != NULL)
    o = *options;
  if (!(o.failure_ratio > 0 && o.failure_ratio <= 1) || o.min_outcomes == 0 ||
      o.window_ms < 1000 || o.window_ms > IOB_BUDGET_WINDOW_MAX_MS ||
      o.open_ms == 0 || o.probes == 0)
    return IOB_ERANGE;
  iob_breaker *k = calloc(1, sizeof(*k));
  if (k == NULL)
    return IOB_ENOMEM;
  if (uv_mutex_init(&k->lock) != 0) {
    free(k);
    return IOB_ENOMEM;
  }
  k->o = o;
  k->slice_ns = (uint64_t)o.window_ms * 1000000 / SLICES;
  atomic_init(&k->trips, 0);
  atomic_init(&k->shown, IOB_BREAKER_CLOSED);
  *breaker = k;
  return 0;
}

void iob_breaker_free(iob_breaker *breaker) {
  if (breaker == NULL)
    return;
  uv_mutex_destroy(&breaker->lock);
  free(breaker);
}

iob_breaker_state iob_breaker_state_of(const iob_breaker *breaker) {
  return breaker != NULL ? (iob_breaker_state)atomic_load(&breaker->shown)
                         : IOB_BREAKER_CLOSED;
}

uint64_t iob_breaker_trips(const iob_breaker *breaker) {
  return breaker != NULL ? atomic_load(&breaker->trips) : 0;
}

/* Under the lock. */
static void set_state(iob_breaker *k, iob_breaker_state s) {
  k->state = s;
  atomic_store(&k->shown, (int)s);
}

static void open_now(iob_breaker *k, uint64_t now) {
  set_state(k, IOB_BREAKER_OPEN);
  k->opened_at = now;
  k->probes_out = 0;
  atomic_fetch_add(&k->trips, 1);
}

/* The window's slices brought up to now: those that fell out, empty. */
static void advance(iob_breaker *k, uint64_t now) {
  uint64_t at = now / k->slice_ns;
  for (uint64_t j = 1; j <= at - k->slice_at && j <= SLICES; j++) {
    uint32_t s = (uint32_t)((k->slice_at + j) % SLICES);
    k->outcomes[s] = k->failures[s] = 0;
  }
  k->slice_at = at;
}

bool iob__breaker_pass(iob_breaker *k) {
  uv_mutex_lock(&k->lock);
  uint64_t now = uv_hrtime();
  if (k->state == IOB_BREAKER_OPEN &&
      now - k->opened_at >= (uint64_t)k->o.open_ms * 1000000)
    set_state(k, IOB_BREAKER_HALF_OPEN);
  bool pass = k->state == IOB_BREAKER_CLOSED;
  if (k->state == IOB_BREAKER_HALF_OPEN && k->probes_out < k->o.probes) {
    k->probes_out++;
    pass = true;
  }
  uv_mutex_unlock(&k->lock);
  return pass;
}

void iob__breaker_note(iob_breaker *k, int status) {
  if (status == IOB_ECANCELED || status == IOB_EBREAKER)
    return; /* the application's choice, or no call at all */
  bool failed = status != 0;
  uv_mutex_lock(&k->lock);
  uint64_t now = uv_hrtime();
  if (k->state == IOB_BREAKER_HALF_OPEN) { /* the first back decides */
    if (failed) {
      open_now(k, now);
    } else {
      set_state(k, IOB_BREAKER_CLOSED);
      memset(k->outcomes, 0, sizeof(k->outcomes));
      memset(k->failures, 0, sizeof(k->failures));
    }
  } else if (k->state == IOB_BREAKER_CLOSED) {
    advance(k, now);
    uint32_t s = (uint32_t)(k->slice_at % SLICES);
    k->outcomes[s]++;
    k->failures[s] += failed;
    uint64_t outcomes = 0, failures = 0;
    for (int j = 0; j < SLICES; j++) {
      outcomes += k->outcomes[j];
      failures += k->failures[j];
    }
    if (failed && outcomes >= k->o.min_outcomes &&
        (double)failures >= k->o.failure_ratio * (double)outcomes)
      open_now(k, now);
  }
  uv_mutex_unlock(&k->lock);
}
