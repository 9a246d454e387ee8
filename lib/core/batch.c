/* The batch: checks its configuration, holds the per-operation records,
 * launches operations up to the limit, and ends the run. How an operation
 * runs is its style's business (lib/styles/), what it does its kind's
 * (lib/ops/). */
#define _DEFAULT_SOURCE /* madvise()'s MADV_HUGEPAGE */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "peak.h"

void iob_config_init(iob_config *config) {
  if (config == NULL)
    return;
  memset(config, 0, sizeof(*config));
  config->style = &iob_style_loop;
  config->kind = &iob_kind_wait;
}

int iob__check_hedge(const iob_hedge *hedge, const iob_config *c,
                     const iob_kind *kind) {
  int err = iob_hedge_check(hedge);
  if (err != 0)
    return err;
  if (c->timeout_ms != 0 && hedge->delay_ms >= c->timeout_ms)
    return IOB_ERANGE; /* no further attempt could ever start */
  if (c->style->op_done == NULL || (kind != NULL && kind->start == NULL))
    return IOB_ENOTSUP;
  return 0;
}

static int check_config(const iob_config *c) {
  if (c->count == 0 && !c->open)
    return IOB_EINVAL;
  int err = iob__check_kind(c->kind, c->style);
  if (err != 0)
    return err;
  if (c->count > IOB_COUNT_MAX)
    return IOB_E2BIG;
  /* Per-operation durations are uint32_t, which uv_sleep() takes whole. */
  if (c->durations_ms == NULL && c->duration_ms > IOB_DURATION_MAX_MS)
    return IOB_ERANGE;
  if (c->timeout_ms > IOB_DURATION_MAX_MS || /* so that it counts in ns */
      c->deadline_ms > IOB_DURATION_MAX_MS)
    return IOB_ERANGE;
  if (c->retry != NULL && (err = iob_retry_check(c->retry)) != 0)
    return err;
  if (c->hedge != NULL &&
      (err = iob__check_hedge(c->hedge, c, c->open ? NULL : c->kind)) != 0)
    return err;
  if (c->style_options != NULL &&
      (c->style->options_size == 0 ||
       *(const iob_style *const *)c->style_options != c->style))
    return IOB_EINVAL; /* another style's options */
  err = c->style->check != NULL ? c->style->check(c) : 0;
  if (err != 0)
    return err;
  if (c->label != NULL) {
    size_t len = strnlen(c->label, IOB_LABEL_MAX + 1);
    if (len > IOB_LABEL_MAX)
      return IOB_ERANGE;
    for (size_t k = 0; k < len; k++) /* it is printed to terminals too */
      if ((unsigned char)c->label[k] < 0x20 || c->label[k] == 0x7f)
        return IOB_EINVAL;
  }
  return c->kind->check != NULL ? c->kind->check(c) : 0;
}

/* Touch the pages of `size` bytes at p; the time it took, in ns. */
static uint64_t touch(char *p, size_t size, size_t page) {
  uint64_t t0 = uv_hrtime();
  for (size_t at = 0; at < size; at += page)
    ((volatile char *)p)[at] = 0;
  return uv_hrtime() - t0;
}

#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_WORTH ((size_t)64 << 20) /* smaller: not worth measuring */

/* Touch every page of a fresh block so that the kernel backs it now. A
 * large calloc() gets pages on first use, one fault per page: for a
 * million records that is 15 ms or more, which iob_batch_start() would
 * pay on the loop's thread, blocking it and pushing back the deadlines of
 * the operations launched after each fault. Here, create() pays it.
 *
 * Huge pages (MADV_HUGEPAGE) make it one fault per 2 MB: 320 MB of
 * records took 360 ms instead of 870 on one machine, and longer than
 * without on another (compaction to find them). So this machine decides:
 * in a block of 64 MB or more, one huge page is touched advised huge and
 * the next 2 MB as given, and the rest is advised huge only if the first
 * took at most half the time. */
static void commit_pages(void *block, size_t size) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  char *p = block, *end = p + size;
#ifdef MADV_HUGEPAGE
  char *huge = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
  if (size >= HUGE_WORTH && huge + 2 * HUGE_PAGE <= end) {
    touch(p, (size_t)(huge - p), page);
    uint64_t advised = madvise(huge, HUGE_PAGE, MADV_HUGEPAGE) == 0
                           ? touch(huge, HUGE_PAGE, page)
                           : UINT64_MAX;
    uint64_t given = touch(huge + HUGE_PAGE, HUGE_PAGE, page);
    p = huge + 2 * HUGE_PAGE;
    size_t rest = (size_t)(end - p) & ~(HUGE_PAGE - 1);
    if (advised <= given / 2 && rest > 0)
      madvise(p, rest, MADV_HUGEPAGE);
  }
#endif
  touch(p, (size_t)(end - p), page);
}

static uint32_t least(uint32_t limit, uint32_t other) {
  return other != 0 && other < limit ? other : limit;
}

/* The config's style options, copied for the batch (the application's
 * may go once iob_batch_create() returns); 0 or IOB_ENOMEM. */
static int copy_options(iob_config *c) {
  if (c->style_options == NULL)
    return 0;
  void *own = malloc(c->style->options_size);
  if (own == NULL)
    return IOB_ENOMEM;
  memcpy(own, c->style_options, c->style->options_size);
  c->style_options = own;
  return 0;
}

/* An open batch: its first count operations are submitted as the
 * application would submit them, with the config's kind, target and
 * durations. The config keeps no durations: its operations have theirs. */
static int create_open(iob_batch **batch, iob_config *c) {
  iob_batch *b = calloc(1, sizeof(*b));
  char *label = c->label != NULL ? strdup(c->label) : NULL;
  const void *theirs = c->style_options;
  if (b == NULL || (c->label != NULL && label == NULL) ||
      copy_options(c) != 0) {
    free(label);
    free(b);
    return IOB_ENOMEM;
  }
  if (uv_mutex_init(&b->submit_lock) != 0) {
    if (c->style_options != theirs)
      free((void *)c->style_options);
    free(label);
    free(b);
    return IOB_ENOMEM;
  }
  uint32_t count = c->count;
  const uint32_t *durations = c->durations_ms;
  c->label = label;
  c->durations_ms = NULL;
  c->count = 0;
  b->config = *c;
  b->open = true;
  b->state_room = c->kind->op_size;
  b->limit = least(least(UINT32_MAX, c->max_in_flight), c->style->limit);
  atomic_init(&b->refs, 1);
  atomic_init(&b->state, IOB__CREATED);
  iob__publish(b);
  iob_task t = {.kind = c->kind, .target = c->target};
  for (uint32_t i = 0; i < count; i++) {
    t.duration_ms = durations ? durations[i] : (uint32_t)c->duration_ms;
    int err = iob_batch_submit(b, &t);
    if (err < 0) {
      iob_batch_unref(b);
      return err;
    }
  }
  *batch = b;
  return 0;
}

int iob_batch_create(iob_batch **batch, const iob_config *config) {
  if (batch == NULL)
    return IOB_EINVAL;
  *batch = NULL;
  if (config == NULL)
    return IOB_EINVAL;
  iob_config c = *config;
  if (c.style == NULL)
    c.style = &iob_style_loop;
  if (c.kind == NULL)
    c.kind = &iob_kind_wait;
  int err = check_config(&c);
  if (err != 0)
    return err;
  if (c.open)
    return create_open(batch, &c);

  iob_batch *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return IOB_ENOMEM;
  b->records = calloc(c.count, sizeof(*b->records));
  /* A copy: the caller's array may change or go while the batch runs, and
   * the loop style has made a list for each duration it held. */
  uint32_t *durations = NULL;
  if (c.durations_ms != NULL &&
      (durations = malloc(c.count * sizeof(*durations))) != NULL)
    memcpy(durations, c.durations_ms, c.count * sizeof(*durations));
  char *label = c.label != NULL ? strdup(c.label) : NULL;
  const void *theirs = c.style_options;
  int copied = copy_options(&c);
  if (b->records == NULL || (c.durations_ms != NULL && durations == NULL) ||
      (c.label != NULL && label == NULL) || copied != 0) {
    if (c.style_options != theirs)
      free((void *)c.style_options);
    free(label);
    free(durations);
    free(b->records);
    free(b);
    return IOB_ENOMEM;
  }
  c.label = label;
  commit_pages(b->records, c.count * sizeof(*b->records));
  c.durations_ms = durations;
  b->config = c;
  b->first = c.count;
  b->state_room = c.kind->op_size;
  b->limit = least(least(c.count, c.max_in_flight), c.style->limit);
  atomic_init(&b->refs, 1);
  atomic_init(&b->state, IOB__CREATED);
  iob__publish(b);
  *batch = b;
  return 0;
}

static void free_kept(iob_batch *b) {
  iob__kept *kept = atomic_load(&b->kept);
  if (kept == NULL)
    return;
  void (*free_result)(void *) = b->config.kind->free_result;
  for (uint32_t i = 0; i < b->first; i++) {
    free(kept[i].message);
    iob__attempts_free(kept[i].attempts);
    if (free_result != NULL && kept[i].result != NULL)
      free_result(kept[i].result);
  }
  free(kept);
}

static void destroy(iob_batch *b) {
  if (b->open) {
    iob__tasks_free(b);
    uv_mutex_destroy(&b->submit_lock);
  }
  free_kept(b);
  free((void *)atomic_load(&b->latency));
  free(atomic_load(&b->percentiles));
  free((void *)b->config.durations_ms); /* the batch's own copies */
  free((void *)b->config.label);
  free((void *)b->config.style_options);
  free(b->records);
  free(b);
}

iob_batch *iob_batch_ref(iob_batch *batch) {
  if (batch != NULL)
    atomic_fetch_add_explicit(&batch->refs, 1, memory_order_relaxed);
  return batch;
}

void iob_batch_unref(iob_batch *batch) {
  /* Release, and acquire for the last: whatever a holder wrote happens
   * before the memory is freed. (acq_rel rather than a fence, which
   * ThreadSanitizer cannot follow.) */
  if (batch != NULL &&
      atomic_fetch_sub_explicit(&batch->refs, 1, memory_order_acq_rel) == 1)
    destroy(batch);
}

int iob_batch_free(iob_batch *batch) {
  if (batch == NULL)
    return 0;
  iob__state state = atomic_load_explicit(&batch->state, memory_order_acquire);
  if (state == IOB__ACTIVE)
    return IOB_EBUSY;
  struct iob_group *group = state == IOB__CREATED ? batch->group : NULL;
  iob_batch_unref(batch);
  if (group != NULL) /* it never ran: it leaves its group as cancelled */
    iob__group_ended(group, IOB_ECANCELED);
  return 0;
}

void *iob_batch_data(const iob_batch *batch) {
  return batch ? batch->config.data : NULL;
}

uv_loop_t *iob_batch_loop(const iob_batch *batch) {
  if (batch == NULL)
    return NULL;
  uv_loop_t *(*here)(const iob_batch *) = batch->config.style->loop_here;
  uv_loop_t *loop = here != NULL ? here(batch) : NULL;
  return loop != NULL ? loop : batch->loop;
}

const iob_style *iob_batch_style(const iob_batch *batch) {
  return batch ? batch->config.style : NULL;
}

const iob_config *iob_batch_config(const iob_batch *batch) {
  return batch ? &batch->config : NULL;
}

/* The running batch's own thread: the state first (acquire), which
 * makes loop_thread, written before it, safe to read. */
static bool on_loop_thread(const iob_batch *b) {
  uv_thread_t self = uv_thread_self();
  return atomic_load_explicit(&b->state, memory_order_acquire) == IOB__ACTIVE &&
         uv_thread_equal(&self, &b->loop_thread);
}

int iob_batch_progress(const iob_batch *batch, iob_progress *progress) {
  if (batch == NULL || progress == NULL)
    return IOB_EINVAL;
  const iob__published *p = &batch->published;
  uint32_t failed = atomic_load_explicit(&p->failed, memory_order_acquire);
  uint64_t both =
      atomic_load_explicit(&p->done_in_flight, memory_order_acquire);
  progress->done = (uint32_t)both;
  progress->in_flight = (uint32_t)(both >> 32);
  uint32_t count = batch->open ? atomic_load_explicit(&batch->submitted,
                                                      memory_order_acquire)
                               : batch->config.count;
  progress->waiting = count - progress->done - progress->in_flight;
  progress->failed = failed;
  return 0;
}

static bool kind_per_loop(const iob_batch *b);

/* What operation i of an open batch needs before its style launches it:
 * its kind opened with its target, and a slot if it takes one. */
static int ready_to_launch(iob_batch *b, uint32_t i) {
  /* (A style of loops of its own opens kinds on each of them.) */
  int err = kind_per_loop(b) ? 0 : iob__kind_ready(b, i);
  if (err == 0 && iob__needs_slot(b, i))
    err = iob__slots_reserve(b, i);
  if (err == 0 && b->cancelled)
    err = IOB_ECANCELED; /* by the kind's open(), just now */
  return err;
}

/* Launch operations until the limits, the end, or the slice's end.
 * Iterative, and guarded, so an operation settled during a launch never
 * recurses into here. */
void iob__launch_more(iob_batch *b) {
  /* Not while a slice's continuation is pending either: each settle
   * would launch a slice of its own, and the first callbacks that settle
   * anything would launch the whole rest in one turn. on_async() goes on. */
  if (b->launching || b->launch_later)
    return;
  b->launching = true;
  uint32_t launched = 0;
  uint64_t until = 0;
  while (!b->ended && b->next < b->config.count && b->in_flight < b->limit) {
    uint32_t i = b->next;
    if (iob__rec(b, i)->status != 0) { /* cancelled alone, settled already */
      b->next++;
      b->ahead--;
      continue;
    }
    /* A token first, then a permit: waiting for a token holds none. */
    if (b->config.rate != NULL && !iob__rate_take(b))
      break; /* called again when a token is due, in its turn */
    if (b->config.shared_limit != NULL && !iob__limit_take(b)) {
      if (b->config.rate != NULL)
        iob__rate_untake(b);
      break; /* called again in its turn */
    }
    b->next++;
    if (!b->open) /* an open batch's operations arrived when taken in */
      iob__rec(b, i)->queued_ns = iob__stamp(b);
    iob__rec(b, i)->status = IOB__IN_FLIGHT;
    b->in_flight++;
    /* An open breaker, last, once the operation may otherwise launch (a
     * half-open one counts its probes as they pass): it settles at once,
     * its token unused, its permit given back as it settles. */
    iob_breaker *breaker = iob__breaker_of(b, i);
    if (breaker != NULL && !iob__breaker_pass(breaker)) {
      if (b->config.rate != NULL)
        iob__rate_untake(b);
      b->breaker_refused++;
      iob_record *r = iob__rec(b, i);
      r->started_ns = r->finished_ns = iob__stamp(b);
      iob__settle(b, i, IOB_EBREAKER);
      continue;
    }
    int err = b->open ? ready_to_launch(b, i) : 0;
    if (err != 0) {
      iob_record *r = iob__rec(b, i);
      r->started_ns = r->finished_ns = iob__stamp(b);
      iob__settle(b, i, err);
      continue;
    }
    b->config.style->launch(b, i);
    if (iob__launch_slice_over(++launched, &until)) {
      b->launch_later = true; /* on_async() goes on */
      uv_async_send(&b->async);
      break;
    }
  }
  b->launching = false;
  iob__publish(b);
}

static void shut_gate(iob_batch *b);

/* The batch's wake-up was closed by someone else (a uv_walk() closing
 * every handle): its threads can no longer tell the loop they finished,
 * and must not try once the loop may be gone. Shut the gate, and wait on
 * this thread for the operations on threads, told to stop already, to
 * finish, settling them as they do. */
static void rescue(iob_batch *b) {
  shut_gate(b);
  while (!b->ended && b->in_flight > 0) {
    b->config.style->wakeup(b);
    if (!b->ended && b->in_flight > 0)
      uv_sleep(1);
  }
}

static bool unfinished(iob_batch *b);
static void tell(iob_batch *b, uint32_t i);

static void cancel_now(iob_batch *b) {
  /* (From the last operation's on_op, every one has settled: too late to
   * cancel anything, so the batch's status stays; an open batch still
   * closes.) */
  if (unfinished(b)) {
    iob__stamp_fresh(b);
    iob__batch_fail(b, IOB_ECANCELED);
  }
  if (!b->ended && b->config.style->wakeup != NULL &&
      uv_is_closing((uv_handle_t *)&b->async))
    rescue(b);
}

static void on_async(uv_async_t *async) {
  iob_batch *b = iob__batch_of(async, async);
  iob__stamp_fresh(b);
  if (atomic_load(&b->cancel_asked) && !b->cancelled)
    cancel_now(b);
  bool later = b->launch_later;
  b->launch_later = false; /* before wakeup(), which may launch */
  if (!b->ended && b->config.style->wakeup != NULL)
    b->config.style->wakeup(b);
  if (b->open || later) /* submitted or closed from another thread */
    iob__end_or_launch(b);
}

static void on_deadline(uv_timer_t *timer) {
  iob_batch *b = iob__batch_of(timer, deadline);
  iob__stamp_fresh(b);
  if (unfinished(b))
    iob__batch_fail(b, IOB_ETIMEDOUT);
}

/* ---- handles ----------------------------------------------------------- */

/* What the data of iobound's handles points at: one tag each, so that a
 * handle names the member of the batch it is. */
static const char tags[5];
#define TAG_TIMER (&tags[0])
#define TAG_ASYNC (&tags[1])
#define TAG_DEADLINE (&tags[2])
#define TAG_FENCE (&tags[3])
#define TAG_TOKEN (&tags[4])

iob_batch *iob_handle_batch(const uv_handle_t *h) {
  if (h == NULL)
    return NULL;
  if (h->data == TAG_TIMER)
    return iob__batch_of(h, timer);
  if (h->data == TAG_ASYNC)
    return iob__batch_of(h, async);
  if (h->data == TAG_DEADLINE)
    return iob__batch_of(h, deadline);
  if (h->data == TAG_FENCE)
    return iob__batch_of(h, fence);
  if (h->data == TAG_TOKEN)
    return iob__batch_of(h, token);
  return NULL;
}

/* Another thread's way to the loop thread: the async handle, while the
 * gate is open (see struct iob_batch). */
void iob__wakeup(iob_batch *b) {
  unsigned gate = atomic_fetch_add(&b->gate, 2);
  if (gate & 1)
    uv_async_send(&b->async);
  atomic_fetch_sub(&b->gate, 2);
}

/* Shut the gate, and wait for senders inside it: a send is a few atomic
 * operations and a write(), so the wait is short. */
static void shut_gate(iob_batch *b) {
  atomic_fetch_and(&b->gate, ~1u);
  while (atomic_load(&b->gate) != 0)
    sched_yield();
}

static void free_run_state(iob_batch *b) {
  iob__slots_free(b);
  free(b->style_state);
  if (b->open) /* its kinds' states, once their handles were called back */
    iob__kinds_free(&b->kinds);
  else
    free(b->kind_shared);
  b->style_state = b->kind_shared = NULL;
}

/* A style with loops of its own opens the kind on each of them. */
static bool kind_per_loop(const iob_batch *b) {
  return b->config.style->flags & IOB_STYLE_LOOPS;
}

/* The kind's state for the batch, and its open(); 0 or an error, with
 * nothing left. */
static int open_kind(iob_batch *b) {
  const iob_kind *k = b->config.kind;
  if (kind_per_loop(b))
    return 0;
  if (b->open)
    return iob__kinds_open(b, &b->kinds, k, b->config.target, &b->kind_shared);
  if (k->batch_size != 0 && (b->kind_shared = calloc(1, k->batch_size)) == NULL)
    return IOB_ENOMEM;
  return k->open != NULL ? k->open(b, b->config.target, b->kind_shared) : 0;
}

static void close_kind(iob_batch *b) {
  if (b->open)
    iob__kinds_close(b, &b->kinds);
  else if (!kind_per_loop(b) && b->config.kind->close != NULL)
    b->config.kind->close(b, b->config.target, b->kind_shared);
}

/* What a run needs besides the records: the style's state, the slots,
 * then the handles, made last: uv_async_init() is the only step after
 * which there would be something to close, and nothing after it can fail.
 * On error none of it is left. */
static int make_run_state(iob_batch *b) {
  const iob_style *style = b->config.style;
  b->style_state = style->state_size ? calloc(1, style->state_size) : NULL;
  int err = style->state_size && b->style_state == NULL ? IOB_ENOMEM
                                                        : iob__slots_make(b);
  if (err == 0 && style->start != NULL)
    err = style->start(b);
  bool started = err == 0;
  if (err == 0)
    err = open_kind(b);
  bool opened = err == 0;
  if (err == 0)
    err = uv_async_init(b->loop, &b->async, on_async);
  if (err != 0) {
    if (opened)
      close_kind(b);
    if (started && style->finish != NULL)
      style->finish(b);
    free_run_state(b);
    return err;
  }
  uv_timer_init(b->loop, &b->timer); /* cannot fail */
  uv_timer_init(b->loop, &b->deadline);
  uv_timer_init(b->loop, &b->token);
  b->timer.data = (void *)TAG_TIMER;
  b->async.data = (void *)TAG_ASYNC;
  b->deadline.data = (void *)TAG_DEADLINE;
  b->token.data = (void *)TAG_TOKEN;
  return 0;
}

/* Operation i, not launched, settles as cancelled: never started. */
static void settle_unlaunched(iob_batch *b, uint32_t i, uint64_t now) {
  *iob__rec(b, i) = (iob_record){now, now, now, IOB_ECANCELED, 0};
  b->failed++;
  b->settled++;
  tell(b, i);
}

/* Operations cancelled alone before the batch started settle first,
 * before anything launches: an on_op that cancels another operation
 * would launch, and the launch would pass over marks not yet settled. An
 * on_op may cancel the batch meanwhile: the marks it passed over (they
 * are not 0) settle here still, but no longer count as ahead of b->next,
 * which the cancel moved to the end. */
static void settle_marked(iob_batch *b) {
  if (b->cancel_at_start == 0)
    return;
  uint64_t now = iob__stamp(b);
  b->launching = true;
  for (uint32_t i = 0; i < b->config.count; i++)
    if (iob__rec(b, i)->status == IOB__MARKED) {
      if (i >= b->next)
        b->ahead++;
      iob__rec(b, i)->status = 0;
      settle_unlaunched(b, i, now);
    }
  b->launching = false;
}

int iob_batch_start(iob_batch *batch, uv_loop_t *loop, iob_batch_cb cb) {
  if (batch == NULL || loop == NULL || cb == NULL)
    return IOB_EINVAL;
  if (atomic_load(&batch->state) != IOB__CREATED)
    return IOB_EBUSY;

  batch->loop = loop;
  batch->cb = cb;
  batch->loop_thread = uv_thread_self();
  batch->t0 = uv_hrtime();
  batch->cpu0_ns = iob__cpu_ns();
  iob__stamp_fresh(batch);
  int err = batch->config.shared_limit ? iob__limit_attach(batch) : 0;
  if (err == 0 && batch->config.rate != NULL &&
      (err = iob__rate_attach(batch)) != 0 && batch->config.shared_limit)
    iob__limit_detach(batch);
  if (err == 0 && (err = make_run_state(batch)) != 0) {
    if (batch->config.shared_limit)
      iob__limit_detach(batch);
    if (batch->config.rate)
      iob__rate_detach(batch);
  }
  if (err != 0) {
    batch->loop = NULL;
    return err;
  }
  if (batch->config.deadline_ms != 0) {
    uv_update_time(loop); /* the timer counts from the loop's clock */
    uv_timer_start(&batch->deadline, on_deadline, batch->config.deadline_ms, 0);
  }
  /* The run holds a reference of its own until its callback has
   * returned: whoever drops theirs meanwhile frees nothing that runs. */
  iob_batch_ref(batch);
  /* Open the gate before reading cancel_asked: a thread that asks after
   * this read finds the gate open and wakes the loop. */
  atomic_fetch_or(&batch->gate, 1u);
  atomic_store_explicit(&batch->state, IOB__ACTIVE, memory_order_release);
  if (batch->open)
    iob__take_submitted(batch);
  settle_marked(batch);
  if (atomic_load(&batch->cancel_asked))
    iob__batch_fail(batch, IOB_ECANCELED); /* nothing starts */
  else
    iob__end_or_launch(batch);
  return 0;
}

/* Every handle closed at the end has been called back: the batch is
 * over. */
static void over(iob_batch *b) {
  free_run_state(b);
  iob__publish(b);
  struct iob_group *group = b->group;
  int status = b->status;
  /* Once finished, the batch may be freed, by its callback or by another
   * thread that saw it finish: the run's own reference, taken at start,
   * keeps it until the callback has returned. */
  atomic_store_explicit(&b->state, IOB__FINISHED, memory_order_release);
  b->cb(b, status);
  iob_batch_unref(b);
  if (group != NULL)
    iob__group_ended(group, status);
}

static void on_closed(uv_handle_t *handle) {
  iob_batch *b = iob_handle_batch(handle);
  if (--b->closing == 0)
    over(b);
}

/* The fence's first close came in the same pass of libuv's closing
 * handles as, perhaps, a handle of ours closed by someone else, which
 * libuv may touch after this callback: close the fence once more, to be
 * called back in the next pass, when libuv is done with that one. */
static void on_fence_closed(uv_handle_t *handle) {
  iob_batch *b = iob_handle_batch(handle);
  uv_idle_init(b->loop, &b->fence);
  b->fence.data = (void *)TAG_FENCE;
  uv_close((uv_handle_t *)&b->fence, on_closed);
}

/* Close a handle of the batch's, unless someone else has (uv_walk() at a
 * shutdown): then it must not be closed again, and its memory, which is
 * the batch's, must outlive libuv's use of it. */
static bool close_own(iob_batch *b, uv_handle_t *h) {
  if (uv_is_closing(h))
    return false;
  b->closing++;
  uv_close(h, on_closed);
  return true;
}

/* An open batch's records, from its tasks into one block, as
 * iob_batch_records() gives them and the readers read them: made the
 * first time a reader asks, on its thread, not by the loop thread when
 * the batch ends (a million records take a hundred ms to copy, which an
 * application that reads its outcomes in on_op never needs). Under the
 * submitters' lock, which every reader takes, so that readers on several
 * threads make one block and see it whole. 0, or IOB_ENOMEM. */
int iob__gather(const iob_batch *batch) {
  if (!batch->open)
    return 0;
  iob_batch *b = (iob_batch *)(uintptr_t)batch; /* the block is the cache */
  iob__submit_lock(b);
  uint32_t n = b->config.count;
  if (b->records == NULL &&
      (b->records = malloc((n ? n : 1) * sizeof(*b->records))) != NULL) {
    for (uint32_t i = 0; i < n; i++) /* (b->first stays 0: iob__rec()
                                      * reads the tasks, without the lock) */
      b->records[i] = iob__task_at(b, i)->rec;
  }
  int err = b->records != NULL ? 0 : IOB_ENOMEM;
  iob__submit_unlock(b);
  return err;
}

/* Not every operation has settled, or more may come. */
static bool unfinished(iob_batch *b) {
  if (b->open)
    iob__take_submitted(b);
  return b->settled < b->config.count || (b->open && !b->closed_seen);
}

/* Every operation has settled: measure, let the style clean up, and end
 * from a close callback, never from inside an iobound call. Or, while
 * some have not settled, launch more. */
void iob__end_or_launch(iob_batch *b) {
  if (b->ended)
    return;
  if (unfinished(b)) {
    if (!b->in_on_op)
      iob__launch_more(b);
    return;
  }
  b->ended = true;
  b->end_ns = iob__now(b);
  b->cpu_ns = iob__cpu_ns() - b->cpu0_ns;
  const iob_style *style = b->config.style;
  b->threads = style->threads != NULL ? style->threads(b) : 0;
  if (style->finish != NULL)
    style->finish(b);
  close_kind(b);
  if (b->config.shared_limit != NULL)
    iob__limit_detach(b);
  if (b->config.rate != NULL)
    iob__rate_detach(b);
  shut_gate(b);
  b->closing = 0;
  bool own = close_own(b, (uv_handle_t *)&b->timer);
  own &= close_own(b, (uv_handle_t *)&b->async);
  own &= close_own(b, (uv_handle_t *)&b->deadline);
  own &= close_own(b, (uv_handle_t *)&b->token);
  if (!own) {
    uv_idle_init(b->loop, &b->fence);
    b->fence.data = (void *)TAG_FENCE;
    uv_close((uv_handle_t *)&b->fence, on_fence_closed);
    b->closing++;
  }
}

/* Operation i settled: the application hears of it. Launches wait until
 * on_op returns (one it submits launches then, after the permit of the
 * operation that settled has been given back). */
static void tell(iob_batch *b, uint32_t i) {
  if (b->open) {
    iob__slot_unreserve(b, i);
    iob__task_release(b, i);
  }
  if (b->config.on_op == NULL)
    return;
  bool was = b->in_on_op;
  b->in_on_op = true;
  b->config.on_op(b, i, iob__rec(b, i));
  b->in_on_op = was;
}

void iob__settle(iob_batch *b, uint32_t i, int status) {
  iob__rec(b, i)->status = status;
  iob_breaker *breaker = iob__breaker_of(b, i);
  if (breaker != NULL)
    iob__breaker_note(breaker, status);
  if (status != 0)
    b->failed++;
  b->in_flight--;
  b->settled++;
  iob__publish(b);
  tell(b, i);
  if (b->config.style->settled != NULL)
    b->config.style->settled(b, i);
  /* A cancel is the application's choice, not a failure. */
  if (status != 0 && status != IOB_ECANCELED && b->config.fail_fast)
    iob__batch_fail(b, status);
  /* Its permit goes to the batch whose turn it is, after its own on_op:
   * that batch's operations then launch, and may settle, after it. */
  if (b->config.shared_limit != NULL)
    iob__limit_give(b);
  iob__end_or_launch(b);
}

/* Tell every operation in a slot to stop: a run() reads it (its style's
 * cancel() has told those from start() already, with their kind's
 * stop()). */
static void stop_slots(iob_batch *b) {
  for (uint32_t k = 0; k < b->nslots && !b->ended; k++) {
    iob__slot *s = iob__slot_at(b, k);
    if (s->phase != IOB__FREE)
      iob__slot_stop(s, IOB_ECANCELED);
  }
}

/* A cancelled open batch takes nothing more; what was submitted until
 * now is counted, to settle as never started. */
static void close_for_cancel(iob_batch *b) {
  iob__submit_lock(b);
  atomic_store(&b->closed, true);
  iob__submit_unlock(b);
  iob__take_submitted(b);
}

void iob__batch_fail(iob_batch *b, int status) {
  if (b->cancelled)
    return;
  b->cancelled = true;
  if (b->open)
    close_for_cancel(b);
  if (b->status == 0)
    b->status = status;
  if (b->config.shared_limit != NULL)
    iob__limit_unqueue(b);
  if (b->config.rate != NULL)
    iob__rate_unqueue(b);
  /* Operations never launched settle at once, as never started. */
  uint64_t now = iob__stamp(b);
  uint32_t from = b->next;
  b->next = b->config.count;
  b->ahead = 0;
  for (uint32_t i = from; i < b->config.count; i++)
    if (iob__rec(b, i)->status == 0) /* else settled alone already */
      settle_unlaunched(b, i, now);
  iob__publish(b);
  if (!b->ended && b->config.style->cancel != NULL)
    b->config.style->cancel(b);
  stop_slots(b);
  iob__end_or_launch(b);
}

int iob_batch_cancel(iob_batch *batch) {
  if (batch == NULL)
    return IOB_EINVAL;
  if (!on_loop_thread(batch))
    return iob_batch_cancel_async(batch);
  cancel_now(batch);
  return 0;
}

int iob_batch_cancel_async(iob_batch *batch) {
  if (batch == NULL)
    return IOB_EINVAL;
  atomic_store(&batch->cancel_asked, true);
  iob__wakeup(batch);
  return 0;
}

/* The slot of operation i in flight, if it has one (a slot set aside
 * for it and not yet taken is none). */
static iob__slot *slot_of(const iob_batch *b, uint32_t i) {
  iob__slot *s = iob__slot_find(b, i);
  return s != NULL && s->phase != IOB__FREE ? s : NULL;
}

/* Operation i was launched and has not settled: the style settles it if
 * it can, else its slot is told to stop. */
static void cancel_in_flight(iob_batch *b, uint32_t i) {
  iob__slot *s = slot_of(b, i);
  if (b->config.style->cancel_op != NULL)
    b->config.style->cancel_op(b, i, s);
  if (s != NULL && !b->ended && iob__rec(b, i)->status == IOB__IN_FLIGHT &&
      s->phase != IOB__FREE && s->op.index == i)
    iob__slot_stop(s, IOB_ECANCELED);
}

int iob_batch_cancel_op(iob_batch *batch, uint32_t index) {
  if (batch == NULL)
    return IOB_EINVAL;
  iob__state state = atomic_load_explicit(&batch->state, memory_order_acquire);
  /* The thread first: an open batch's count is its loop thread's. */
  if (state == IOB__ACTIVE && !on_loop_thread(batch))
    return IOB_EPERM;
  if (batch->open && state != IOB__FINISHED)
    iob__take_submitted(batch);
  if (index >= batch->config.count)
    return IOB_EINVAL;
  if (state == IOB__FINISHED)
    return 0;
  iob_record *r = iob__rec(batch, index);
  if (state == IOB__CREATED) {
    /* Marked: it settles, never started, when the batch starts. */
    if (r->status == 0) {
      r->status = IOB__MARKED;
      batch->cancel_at_start++;
    }
    return 0;
  }
  if (!on_loop_thread(batch))
    return IOB_EPERM;
  if (batch->ended)
    return 0;
  iob__stamp_fresh(batch);
  if (r->status == IOB__IN_FLIGHT) {
    cancel_in_flight(batch, index);
    return 0;
  }
  /* Not launched yet only at or past b->next, with nothing settled: one
   * before it settled, perhaps with 0, or was settled by a cancel of the
   * batch (which moves b->next to the end); one past it with a status
   * was cancelled alone already, or is marked and settles in a moment. */
  if (index < batch->next || r->status != 0)
    return 0; /* settled */
  batch->ahead++;
  settle_unlaunched(batch, index, iob__stamp(batch));
  iob__publish(batch);
  iob__end_or_launch(batch);
  return 0;
}

int iob__late(const iob_batch *b, uint32_t i, int status) {
  const iob_record *r = iob__rec(b, i);
  uint64_t limit = iob__timeout_ns(b);
  if (status == 0 && limit != 0 && r->finished_ns - r->started_ns > limit)
    return IOB_ETIMEDOUT;
  return status;
}

void iob__op_unlaunch(iob_batch *b, uint32_t i, uint32_t limit) {
  b->next = i;
  b->in_flight--;
  b->limit = limit;
  iob__rec(b, i)->status = 0;
  if (b->config.rate != NULL)
    iob__rate_untake(b);
  if (b->config.shared_limit != NULL)
    iob__limit_give(b);
  iob__publish(b);
}

/* ---- the report ----------------------------------------------------------- */

/* The hedges every operation started, and those that won. */
static void count_hedges(const iob_batch *b, uint32_t *hedges, uint32_t *won) {
  const iob__kept *kept = atomic_load(&b->kept);
  *hedges = *won = 0;
  if (!b->open && kept == NULL)
    return;
  for (uint32_t i = 0; i < b->config.count; i++) {
    const iob__kept *k = b->open ? &iob__task_at(b, i)->kept : &kept[i];
    *hedges += k->hedges;
    *won += k->hedge_won;
  }
}

/* The retries every operation made, from what they kept. */
static uint32_t count_retries(const iob_batch *b) {
  const iob__kept *kept = atomic_load(&b->kept);
  if (!b->open && kept == NULL)
    return 0;
  uint32_t n = 0;
  for (uint32_t i = 0; i < b->config.count; i++)
    n += b->open ? iob__task_at(b, i)->kept.retries : kept[i].retries;
  return n;
}

/* Distinct threads among the records, in *n. Thread numbers are small
 * and dense, so a bitmap over the batch's own range of them: its size
 * follows the batch's threads, not how many the process made before.
 * 0 or IOB_ENOMEM. */
static int count_workers(const iob_batch *b, uint32_t *n) {
  uint32_t lo = UINT32_MAX, hi = 0;
  for (uint32_t i = 0; i < b->config.count; i++) {
    uint32_t w = iob__rec(b, i)->worker;
    if (w != 0 && w < lo)
      lo = w;
    if (w > hi)
      hi = w;
  }
  *n = 0;
  if (hi == 0)
    return 0;
  size_t span = (size_t)(hi - lo) + 1;
  unsigned char *seen = calloc((span + 7) / 8, 1);
  if (seen == NULL)
    return IOB_ENOMEM;
  for (uint32_t i = 0; i < b->config.count; i++) {
    uint32_t w = iob__rec(b, i)->worker;
    if (w == 0)
      continue;
    size_t bit = w - lo;
    if (!(seen[bit / 8] & (1u << (bit % 8)))) {
      seen[bit / 8] |= (unsigned char)(1u << (bit % 8));
      (*n)++;
    }
  }
  free(seen);
  return 0;
}

/* The peak, worked out once and then cached in the batch. */
static int measure_peak(const iob_batch *b, uint32_t *peak) {
  uint32_t known = atomic_load_explicit(&b->peak_known, memory_order_relaxed);
  if (known != 0) {
    *peak = known - 1;
    return 0;
  }
  int err = iob__peak_in_flight(b->records, b->config.count, peak);
  if (err != 0)
    return err;
  /* The batch is const to its readers; the cache is not part of what
   * they read, and the block itself was never const. */
  atomic_store_explicit(&((iob_batch *)b)->peak_known, *peak + 1,
                        memory_order_relaxed);
  return 0;
}

int iob_batch_report(const iob_batch *batch, iob_report *report) {
  if (batch == NULL || report == NULL)
    return IOB_EINVAL;
  if (batch->state != IOB__FINISHED)
    return IOB_EBUSY;

  memset(report, 0, sizeof(*report));
  if (iob__gather(batch) != 0)
    return IOB_ENOMEM;
  int err = measure_peak(batch, &report->peak_in_flight);
  if (err != 0)
    return err;
  report->style = batch->config.style;
  report->kind = iob__batch_kind(batch);
  report->cores = uv_available_parallelism();
  report->cpu_ns = batch->cpu_ns;
  report->count = batch->config.count;
  report->failed = batch->failed;
  report->rate_waits = batch->rate_waits;
  report->retries = count_retries(batch);
  report->breaker_refused = batch->breaker_refused;
  count_hedges(batch, &report->hedges, &report->hedges_won);
  report->threads = batch->threads;
  err = count_workers(batch, &report->workers_used);
  if (err != 0)
    return err;
  report->status = batch->status;
  report->elapsed_ns = batch->end_ns;
  for (uint32_t i = 0; i < batch->config.count; i++) {
    const iob_record *r = iob__rec(batch, i);
    report->work_ns += (double)(r->finished_ns - r->started_ns);
  }
  if (report->elapsed_ns > 0)
    report->speedup = report->work_ns / (double)report->elapsed_ns;
  return 0;
}

const iob_record *iob_batch_records(const iob_batch *batch, uint32_t *count) {
  if (batch == NULL || batch->state != IOB__FINISHED ||
      iob__gather(batch) != 0) {
    if (count != NULL)
      *count = 0;
    return NULL;
  }
  if (count != NULL)
    *count = batch->config.count;
  return batch->records;
}

/* Has operation i settled, in a batch that runs? Its record is final: a
 * status below 0, or 0 once launched (in flight it is IOB__IN_FLIGHT or
 * IOB__STOPPING). Only the loop thread may read a running batch's
 * records. */
static bool settled_already(const iob_batch *b, uint32_t i) {
  int status = iob__rec(b, i)->status;
  return status < 0 || (status == 0 && i < b->next);
}

/* Where operation `index` keeps what it handed back (NULL: nothing yet),
 * and its task in an open batch, if it may be read here and now: 0, or
 * iob_batch_outcome()'s error. */
static int kept_of(const iob_batch *batch, uint32_t index,
                   const iob__kept **kept, const iob__task **task) {
  /* The count, first: only a finished batch's may be read from any
   * thread (an open batch's grows on its loop thread meanwhile). */
  bool finished = atomic_load_explicit(&batch->state, memory_order_acquire) ==
                  IOB__FINISHED;
  if (!finished && !on_loop_thread(batch))
    return batch->open || index < batch->config.count ? IOB_EBUSY : IOB_EINVAL;
  if (index >= batch->config.count)
    return IOB_EINVAL;
  if (!finished && !settled_already(batch, index))
    return IOB_EBUSY;
  const iob__task *t = batch->open ? iob__task_at(batch, index) : NULL;
  const iob__kept *all = atomic_load(&batch->kept);
  *task = t;
  *kept = t != NULL ? &t->kept : all != NULL ? &all[index] : NULL;
  return 0;
}

int iob_batch_outcome(const iob_batch *batch, uint32_t index,
                      iob_outcome *outcome) {
  if (batch == NULL || outcome == NULL)
    return IOB_EINVAL;
  const iob__kept *k;
  const iob__task *t;
  int err = kept_of(batch, index, &k, &t);
  if (err != 0)
    return err;
  *outcome = (iob_outcome){
      .status = iob__rec(batch, index)->status,
      .message = k ? k->message : NULL,
      .value = k ? k->value : 0,
      .result = k ? k->result : NULL,
      .kind = t ? t->kind : batch->config.kind,
      .data = t ? t->data : NULL,
      .retries = k ? k->retries : 0,
      .hedges = k ? k->hedges : 0,
      .hedge_won = k ? k->hedge_won : 0,
  };
  return 0;
}

int iob_batch_attempts(const iob_batch *batch, uint32_t index,
                       const iob_attempt **attempts, uint32_t *count) {
  if (batch == NULL || attempts == NULL || count == NULL)
    return IOB_EINVAL;
  const iob__kept *k;
  const iob__task *t;
  int err = kept_of(batch, index, &k, &t);
  if (err != 0)
    return err;
  const iob__attempt_list *list = k != NULL ? k->attempts : NULL;
  bool listed = list != NULL && list != &iob__attempts_lost;
  *attempts = listed ? list->at : NULL;
  *count = listed ? list->n : 0;
  return list == &iob__attempts_lost ? IOB_ENOMEM : 0;
}

const iob_kind *iob__batch_kind(const iob_batch *b) {
  if (!b->open)
    return b->config.kind;
  const iob_kind *kind =
      b->config.count ? iob__task_at(b, 0)->kind : b->config.kind;
  for (uint32_t i = 1; i < b->config.count; i++)
    if (iob__task_at(b, i)->kind != kind)
      return NULL;
  return kind;
}
