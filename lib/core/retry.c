/* Retries (iob_retry): whether an attempt that ended runs again, and
 * after how long; and the budgets that bound them across batches. The
 * styles ask iob__retry_after() where an attempt ends (op.c on a thread,
 * the runner on a loop) and begin the next with iob__retry_reset(); the
 * rest is here. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void iob_retry_init(iob_retry *retry) {
  if (retry != NULL)
    *retry = (iob_retry){
        .attempts = 3, .backoff_min_ms = 10, .backoff_max_ms = 1000};
}

int iob_retry_check(const iob_retry *retry) {
  if (retry == NULL)
    return IOB_EINVAL;
  if (retry->attempts < 1 || retry->attempts > IOB_RETRY_ATTEMPTS_MAX ||
      retry->backoff_max_ms < retry->backoff_min_ms)
    return IOB_ERANGE;
  return 0;
}

int64_t iob_retry_transient(const iob_outcome *outcome) {
  if (outcome == NULL)
    return IOB_RETRY_NO;
  switch (outcome->status) {
  case IOB_ETIMEDOUT:
  case IOB_EIO:
  case UV_ECONNREFUSED:
  case UV_ECONNRESET:
  case UV_ECONNABORTED:
  case UV_EPIPE:
  case UV_ENETUNREACH:
  case UV_ENETDOWN:
  case UV_EHOSTUNREACH:
  case UV_EHOSTDOWN:
  case UV_EAI_AGAIN:
    return 0;
  default:
    return IOB_RETRY_NO;
  }
}

/* ---- budgets ------------------------------------------------------------- */

/* The window is kept in slices: what is older than the window goes
 * whole slices at a time, so the counts are those of the last window,
 * give or take a slice. */
#define SLICES 10

struct iob_budget {
  uv_mutex_t lock;
  double ratio;
  double floor; /* retries the window allows whatever the ratio */
  uint64_t slice_ns;
  uint64_t slice_at; /* the newest slice's number (time / slice_ns) */
  uint32_t requests[SLICES], retries[SLICES];
  _Atomic uint64_t refused;
};

int iob_budget_create(iob_budget **budget, double ratio, uint32_t floor_per_s,
                      uint32_t window_ms) {
  if (budget == NULL)
    return IOB_EINVAL;
  *budget = NULL;
  if (window_ms == 0)
    window_ms = 10000;
  if (!(ratio >= 0 && ratio <= 100) || window_ms < 1000 ||
      window_ms > IOB_BUDGET_WINDOW_MAX_MS || (ratio == 0 && floor_per_s == 0))
    return IOB_ERANGE;
  iob_budget *g = calloc(1, sizeof(*g));
  if (g == NULL)
    return IOB_ENOMEM;
  if (uv_mutex_init(&g->lock) != 0) {
    free(g);
    return IOB_ENOMEM;
  }
  g->ratio = ratio;
  g->floor = (double)floor_per_s * window_ms / 1000.0;
  g->slice_ns = (uint64_t)window_ms * 1000000 / SLICES;
  atomic_init(&g->refused, 0);
  *budget = g;
  return 0;
}

void iob_budget_free(iob_budget *budget) {
  if (budget == NULL)
    return;
  uv_mutex_destroy(&budget->lock);
  free(budget);
}

uint64_t iob_budget_refused(const iob_budget *budget) {
  return budget != NULL ? atomic_load(&budget->refused) : 0;
}

/* Bring the slices up to now: those that fell out of the window empty. */
static void advance(iob_budget *g) {
  uint64_t at = uv_hrtime() / g->slice_ns;
  uint64_t gone = at - g->slice_at;
  for (uint64_t k = 1; k <= gone && k <= SLICES; k++) {
    uint32_t s = (uint32_t)((g->slice_at + k) % SLICES);
    g->requests[s] = g->retries[s] = 0;
  }
  g->slice_at = at;
}

/* An operation ended its first attempt (`first`), and may want a retry
 * (`wants`): count the one, and grant the other if the window allows. */
bool iob__budget_pass(iob_budget *g, bool first, bool wants) {
  uv_mutex_lock(&g->lock);
  advance(g);
  uint32_t now = (uint32_t)(g->slice_at % SLICES);
  if (first)
    g->requests[now]++;
  bool granted = false;
  if (wants) {
    double requests = 0, retries = 0;
    for (int k = 0; k < SLICES; k++) {
      requests += g->requests[k];
      retries += g->retries[k];
    }
    granted = retries + 1 <= g->floor + g->ratio * requests;
    if (granted)
      g->retries[now]++;
  }
  uv_mutex_unlock(&g->lock);
  if (wants && !granted)
    atomic_fetch_add(&g->refused, 1);
  return granted;
}

/* ---- deciding ------------------------------------------------------------ */

/* A draw in [0, 1), from a generator of the calling thread's own
 * (xorshift64*), seeded from the clock and the thread the first time. */
static double draw(void) {
  static _Thread_local uint64_t x;
  if (x == 0)
    x = (uv_hrtime() ^ ((uint64_t)iob__thread_number() << 40)) | 1;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  return (double)((x * UINT64_C(2685821657736338717)) >> 11) * 0x1p-53;
}

/* The backoff before retry number n (1, 2...), in ns: full jitter
 * between the least delay and the least doubled n - 1 times, at most
 * the most. */
static uint64_t backoff_ns(const iob_retry *p, uint32_t n) {
  double lo = p->backoff_min_ms;
  double hi = lo * (double)(UINT64_C(1) << (n < 40 ? n - 1 : 39));
  if (hi > p->backoff_max_ms)
    hi = p->backoff_max_ms;
  if (hi < lo)
    hi = lo;
  return (uint64_t)((lo + (hi - lo) * draw()) * 1e6);
}

/* The attempt of slot s as its classifier sees it. */
static iob_outcome outcome_of(const iob__slot *s, int status) {
  return (iob_outcome){.status = status,
                       .message = s->message,
                       .value = s->value,
                       .result = s->result,
                       .kind = s->kind,
                       .data = s->op.data,
                       .retries = s->op.attempt};
}

/* The classifier's word: IOB_RETRY_NO, or the delay asked for in ms. */
static int64_t classify(const iob_retry *p, const iob__slot *s, int status) {
  iob_outcome o = outcome_of(s, status);
  if (p->classify != NULL)
    return p->classify(&o, p->arg);
  if (s->kind->retry != NULL)
    return s->kind->retry(&o);
  return iob_retry_transient(&o);
}

/* Would a retry at `due` (ns since the batch started) begin past the
 * operation's timeout or the batch's deadline? */
static bool too_late(const iob_batch *b, uint32_t i, uint64_t due) {
  uint64_t timeout = iob__timeout_ns(b);
  if (timeout != 0 && due >= iob__rec(b, i)->started_ns + timeout)
    return true;
  return b->config.deadline_ms != 0 && due >= b->config.deadline_ms * 1000000;
}

uint64_t iob__retry_after(iob_batch *b, iob__slot *s, int status) {
  const iob_retry *p = iob__retry_of(b, s->op.index);
  if (p == NULL || s->number == IOB__INNER_SLOT)
    return IOB__NO_RETRY;
  bool first = s->op.attempt == 0;
  bool wants = status != 0 && status != IOB_ECANCELED &&
               atomic_load_explicit(&s->stop, memory_order_relaxed) == 0 &&
               s->op.attempt + 1 < p->attempts;
  int64_t asked = wants ? classify(p, s, status) : IOB_RETRY_NO;
  /* (A delay past what a timer takes is no retry: nor overflows below.) */
  wants = asked >= 0 && asked <= (int64_t)IOB_DURATION_MAX_MS;
  uint64_t delay = 0;
  if (wants) {
    delay = asked > 0 ? (uint64_t)asked * 1000000
                      : backoff_ns(p, s->op.attempt + 1);
    wants = !too_late(b, s->op.index, iob__now(b) + delay);
  }
  if (p->budget != NULL && (first || wants))
    wants = iob__budget_pass(p->budget, first, wants);
  /* Room to keep its count of retries, once, where the kind keeps its
   * outcome: without it, no retry. */
  if (wants && iob__make_room_to_keep(b) != 0)
    wants = false;
  return wants ? delay : IOB__NO_RETRY;
}

void iob__retry_reset(iob_batch *b, iob__slot *s, bool cleanup) {
  (void)b;
  const iob_kind *k = s->kind;
  if (cleanup && k->cleanup != NULL)
    k->cleanup(&s->op);
  if (k->op_size != 0)
    memset(s->op.state, 0, k->op_size);
  free(s->message);
  s->message = NULL;
  s->value = 0;
  if (s->result != NULL && k->free_result != NULL) {
    k->free_result(s->result);
    s->result = NULL;
  }
  s->op.attempt++;
  s->has_outcome = true; /* its count of retries, at least */
}
