/* Operations that arrive at a rate: a timer of the run's loop submits
 * each to an open batch when it is due, saying when that was
 * (iob_task.arrival_ns), so an arrival the loop was too busy to make on
 * time still counts its latency from when it was due. iobound-compare
 * (--arrival-rate) and iobound-server (rate=R) share it. */
#include <math.h>

#include "arrivals.h"

/* splitmix64: a well-mixed 64-bit number from a counter, for Poisson
 * gaps reproducible from --seed. */
static uint64_t next_random(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* The gap before the next arrival, in ns: 1/rate, or for Poisson
 * arrivals an exponential gap of that mean (-ln U / rate, U in (0, 1]). */
static double gap_ns(arrivals *a) {
  if (!a->poisson)
    return 1e9 / a->rate;
  double u = (double)((next_random(&a->random) >> 11) + 1) * 0x1p-53;
  return -log(u) * 1e9 / a->rate;
}

static void on_due(uv_timer_t *timer) {
  arrivals *a = timer->data;
  uint64_t now = uv_hrtime();
  for (; a->next < a->count && (uint64_t)a->due_ns <= now; a->next++) {
    a->task.arrival_ns = (uint64_t)a->due_ns;
    int index = iob_batch_submit(a->batch, &a->task);
    if (index == IOB_ESHUTDOWN)
      return; /* the batch ended (a thread refused): its status says why */
    if (index < 0) { /* no memory: the run stops */
      a->err = index;
      iob_batch_cancel(a->batch);
      return;
    }
    a->due_ns += gap_ns(a);
  }
  if (a->next == a->count) {
    iob_batch_close(a->batch);
    return;
  }
  /* libuv's timers count whole ms: wake at the next one's ms, or after
   * (check_arrivals() keeps every arrival within a day) */
  double wait = ceil(((double)a->due_ns - (double)now) / 1e6);
  uv_timer_start(timer, on_due, wait > 0 ? (uint64_t)wait : 0, 0);
}

int arrivals_start(arrivals *a, uv_loop_t *loop, iob_batch *batch,
                   const iob_config *config) {
  int err = uv_timer_init(loop, &a->timer);
  if (err != 0)
    return err;
  a->timer.data = a;
  a->batch = batch;
  a->random = a->seed;
  iob_task_init(&a->task);
  a->task.kind = config->kind;
  a->task.target = config->target;
  a->task.duration_ms = config->duration_ms;
  a->due_ns = (double)uv_hrtime();
  if (a->poisson)
    a->due_ns += gap_ns(a);
  return uv_timer_start(&a->timer, on_due, 0, 0);
}

bool arrivals_stop(arrivals *a, uv_close_cb closed) {
  if (a->batch == NULL || uv_is_closing((uv_handle_t *)&a->timer))
    return false;
  uv_close((uv_handle_t *)&a->timer, closed);
  return true;
}
