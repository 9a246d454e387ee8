/* Fault injection (issue 11): every allocation iobound makes fails in
 * turn, and so does every thread the threads style creates, across every
 * style and kind. Each run must end with IOB_ENOMEM from the call whose
 * allocation failed, or run to its end with every operation settled once
 * and a status it may have; never crash, never hang (a watchdog ends a
 * run that does), leak nothing (ASan and valgrind check that: ./run
 * sanitize, ./run valgrind) and leave nothing on the loop
 * (uv_loop_close() == 0).
 *
 * How: test/meson.build links this test with --wrap=malloc, calloc,
 * realloc and strdup, so every allocation made by this program's own
 * objects, the static libiobound among them, goes through the __wrap_
 * functions below (strdup too: glibc's strdup calls malloc inside libc,
 * which --wrap cannot reach). libuv and libc are shared libraries: their
 * own allocations are not wrapped, and are not failed here (libuv
 * aborts on some of them anyway). An allocation counts only while the
 * test has armed the injector, around the iobound calls under test and
 * what they call back (the kinds here are the application's code), never
 * around the test's own bookkeeping. Armed with N, the injector fails the
 * Nth allocation from then on (and, in the second mode, every one after
 * it); each scenario runs with N = 1, 2, 3... until a run makes fewer
 * than N allocations. */
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../examples/slow-server.h"
#include "common.h"
#include "internal.h"
#ifdef IOB_TEST_HTTP
#include "iobound/http.h"
#endif
#ifdef IOB_TEST_PG
#include "iobound/pg.h"
#endif

/* ---- the injector -------------------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *block, size_t size);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *block, size_t size);
char *__wrap_strdup(const char *s);

static atomic_bool fi_armed;
static atomic_long fi_seen;      /* allocations since armed */
static atomic_long fi_target;    /* fail the fi_target-th of them... */
static atomic_bool fi_persist;   /* ...and, if set, every one after it */
static atomic_long fi_failed;    /* allocations failed since armed */
static atomic_uintptr_t fi_site; /* where the first of them was asked for */

/* Totals, printed at the end. */
static long total_runs, total_failures, total_refusals, total_refusal_runs;
#define SITES_MAX 256
static uintptr_t sites[SITES_MAX];
static int nsites;

static bool fi_fail(void *site) {
  if (!atomic_load(&fi_armed))
    return false;
  long n = atomic_fetch_add(&fi_seen, 1) + 1, target = atomic_load(&fi_target);
  if (n < target || (n > target && !atomic_load(&fi_persist)))
    return false;
  if (atomic_fetch_add(&fi_failed, 1) == 0)
    atomic_store(&fi_site, (uintptr_t)site);
  return true;
}

void *__wrap_malloc(size_t size) {
  return fi_fail(__builtin_return_address(0)) ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size) {
  return fi_fail(__builtin_return_address(0)) ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *block, size_t size) {
  return fi_fail(__builtin_return_address(0)) ? NULL
                                              : __real_realloc(block, size);
}

char *__wrap_strdup(const char *s) {
  return fi_fail(__builtin_return_address(0)) ? NULL : __real_strdup(s);
}

static void fi_arm(long target, bool persist) {
  atomic_store(&fi_seen, 0);
  atomic_store(&fi_failed, 0);
  atomic_store(&fi_site, 0);
  atomic_store(&fi_target, target);
  atomic_store(&fi_persist, persist);
  atomic_store(&fi_armed, true);
}

/* Stop counting; returns how many allocations were failed, and counts
 * them in the totals. */
static long fi_disarm(void) {
  atomic_store(&fi_armed, false);
  long failed = atomic_load(&fi_failed);
  total_runs++;
  total_failures += failed;
  uintptr_t site = atomic_load(&fi_site);
  if (failed > 0) {
    int k = 0;
    while (k < nsites && sites[k] != site)
      k++;
    if (k == nsites && nsites < SITES_MAX)
      sites[nsites++] = site;
  }
  return failed;
}

/* ---- the watchdog: a run that does not end is a failure ------------------ */

/* Seconds a run may take: it takes milliseconds, even in valgrind. */
#define WATCHDOG_S 60
static char watching[200]; /* what runs, for the watchdog's message */

static void on_watchdog(int sig) {
  (void)sig;
  static const char hang[] = "test-faults: hung: ";
  size_t len = 0;
  while (len < sizeof(watching) && watching[len] != '\0')
    len++;
  if (write(2, hang, sizeof(hang) - 1) < 0 || write(2, watching, len) < 0 ||
      write(2, "\n", 1) < 0)
    _exit(3);
  _exit(3);
}

static void watch(const char *what) {
  snprintf(watching, sizeof(watching), "%s", what);
  alarm(WATCHDOG_S);
}

static void watch_allocation(const char *what, long n, bool persist) {
  char text[sizeof(watching)];
  snprintf(text, sizeof(text), "%.150s, allocation %ld%s", what, n,
           persist ? " and all after it" : "");
  watch(text);
}

/* ---- kinds of the application's: one with every hook --------------------- */

#define COUNT_MAX 16
#define MAGIC 0x10b0u

typedef struct user_result {
  uint32_t magic, index;
} user_result;

/* Every result made, by operation, until freed: a result still here after
 * the batch and the application let go of theirs has leaked. */
static _Atomic(user_result *) made[COUNT_MAX];

typedef struct user_state { /* op->state */
  uv_timer_t timer;
  iob_op *op;
  int status;
  bool ending;
  unsigned char dirty; /* set once used: the next operation must not see it */
} user_state;

static bool zeroed(const iob_op *op) {
  const unsigned char *p = op->state;
  for (size_t k = 0; k < sizeof(user_state); k++)
    if (p[k] != 0)
      return false;
  return true;
}

#define ODD_TEXT "an odd operation"
#define NOMEM_TEXT "no memory for its result"

/* Hand back a result (allocated), a value and, for odd operations, a
 * message; IOB_ENOMEM if there is no memory for the result. */
static int hand_back(iob_op *op) {
  user_result *r = malloc(sizeof(*r));
  if (r == NULL) {
    iob_op_set_message(op, NOMEM_TEXT); /* may fail: then it is lost */
    return IOB_ENOMEM;
  }
  *r = (user_result){MAGIC, op->index};
  int err = iob_op_set_result(op, r);
  if (err != 0) { /* no room to keep it: the result is still ours */
    assert_code(err, IOB_ENOMEM);
    free(r);
    return IOB_ENOMEM;
  }
  atomic_store(&made[op->index], r);
  /* The room is made: a value needs nothing more. */
  assert_code(iob_op_set_value(op, op->index + 1), 0);
  if (op->index % 2 == 1) {
    err = iob_op_set_message(op, ODD_TEXT);
    assert_true(err == 0 || err == IOB_ENOMEM);
  }
  return 0;
}

static void user_closed(uv_handle_t *handle) {
  user_state *s = handle->data;
  iob_op_done(s->op, s->status);
}

static void user_end(user_state *s, int status) {
  if (s->ending)
    return;
  s->ending = true;
  s->status = status;
  uv_close((uv_handle_t *)&s->timer, user_closed);
}

static void user_fire(uv_timer_t *timer) { user_end(timer->data, 0); }

static int user_start(iob_op *op) {
  user_state *s = op->state;
  if (!zeroed(op))
    return IOB_EIO; /* a status no check allows */
  s->dirty = 1;
  int err = hand_back(op);
  if (err != 0)
    return err;
  s->op = op;
  s->timer.data = s;
  uv_timer_init(iob_batch_loop(op->batch), &s->timer);
  uv_timer_start(&s->timer, user_fire, op->duration_ms, 0);
  return 0;
}

static void user_stop(iob_op *op) { user_end(op->state, IOB_ECANCELED); }

static int user_run(iob_op *op) {
  user_state *s = op->state;
  if (!zeroed(op))
    return IOB_EIO;
  s->dirty = 1;
  int err = hand_back(op);
  if (err != 0)
    return err;
  uint64_t end = uv_hrtime() + (uint64_t)op->duration_ms * 1000000;
  while (uv_hrtime() < end) {
    int stop = iob_op_stopping(op);
    if (stop != 0)
      return stop;
    uv_sleep(1);
  }
  return 0;
}

static void user_free_result(void *result) {
  user_result *r = result;
  assert_int_equal(r->magic, MAGIC);
  atomic_store(&made[r->index], NULL);
  free(r);
}

/* Results owned by the batch. */
static const iob_kind kind_user = {
    .name = "user",
    .op_size = sizeof(user_state),
    .start = user_start,
    .run = user_run,
    .stop = user_stop,
    .free_result = user_free_result,
};

/* The same, its results the application's to free. */
static const iob_kind kind_user_owned = {
    .name = "user-owned",
    .op_size = sizeof(user_state),
    .start = user_start,
    .run = user_run,
    .stop = user_stop,
};

static bool is_user(const iob_kind *k) {
  return k == &kind_user || k == &kind_user_owned;
}

/* ---- scenarios ----------------------------------------------------------- */

static pid_t service;
static iob_tcp_target *tcp_target;   /* the slow service, forked in main() */
static iob_file_target *file_target; /* files of 4 KiB in file_dir */
static char file_dir[64];

/* Every built-in kind (iob_kind_at()), then the application's two. */
#define KINDS_MAX 16
static const iob_kind *kinds[KINDS_MAX];
static size_t nkinds;

static void list_kinds(void) {
  const iob_kind *k;
  for (size_t at = 0; (k = iob_kind_at(at)) != NULL; at++)
    if (nkinds < KINDS_MAX - 2)
      kinds[nkinds++] = k;
  kinds[nkinds++] = &kind_user;
  kinds[nkinds++] = &kind_user_owned;
}

#define TIMEOUT_MS 5
/* Ten lengths make the loop style's queue grow its tables for a wait;
 * other kinds make no list per length, and are spared the time. */
static const uint32_t spread[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint32_t short_ones[10] = {1, 0, 1, 0, 1, 0, 1, 0, 1, 0};
/* One runs far past the timeout: a loop descheduled for a while may
 * handle an answer that came meanwhile before its expired timer (libuv
 * polls before it runs timers again), so the margin must outlast a busy
 * machine's pauses, not only the timer's millisecond. */
static const uint32_t one_late[6] = {1, 1, 10 * TIMEOUT_MS, 1, 1, 1};
/* The same for kinds whose operations only wait (on a timer, on the slow
 * service), where a longer one costs nothing once its timeout cuts it:
 * with the tests run two per core, 50 ms was once not margin enough. */
static const uint32_t one_later[6] = {1, 1, 60 * TIMEOUT_MS, 1, 1, 1};

typedef struct variant {
  const char *name;
  uint32_t count;
  const uint32_t *durations_ms; /* NULL: duration_ms */
  uint64_t duration_ms;
  uint32_t max_in_flight;
  uint64_t timeout_ms;
  int fail_fast, on_op;
  int open;  /* an open batch: its operations submitted, then closed */
  int rate;  /* through `rate_limit`: its timer is allocated at start */
  int retry; /* under `retry_all` (not the kind whose results are ours) */
  int hedge; /* under `hedge_now`, where it applies (likewise) */
} variant;

static iob_rate *rate_limit; /* 2,000 a second, a burst of 2 */

static const variant variants[] = {
    {"plain", 4, NULL, 2, 0, 0, 0, 0, 0, 0, 0, 0},
    /* Ten waits of ten lengths: the loop style's queue grows its tables. */
    {"10 lengths, limit 3, on_op", 10, spread, 0, 3, 0, 0, 1, 0, 0, 0, 0},
    {"timeout, on_op", 6, one_late, 0, 0, TIMEOUT_MS, 0, 1, 0, 0, 0, 0},
    {"fail_fast, timeout, limit 2, on_op", 6, one_late, 0, 2, TIMEOUT_MS, 1, 1,
     0, 0, 0, 0},
    /* Open batches: submitting, the kinds opened per target, slots and
     * timer lists grown as operations launch (their records, gathered
     * when first read, fail with the readers below). */
    {"open, 10 lengths, limit 3, on_op", 10, spread, 0, 3, 0, 0, 1, 1, 0, 0, 0},
    {"open, fail_fast, timeout, limit 2, on_op", 6, one_late, 0, 2, TIMEOUT_MS,
     1, 1, 1, 0, 0, 0},
    {"rate, limit 2, on_op", 5, NULL, 1, 2, 0, 0, 1, 0, 1, 0, 0},
    /* Failures (no memory for a result) run again: a backoff's place,
     * the room to count retries, a result freed between attempts. */
    {"retry, limit 2, on_op", 5, NULL, 1, 2, 0, 0, 1, 0, 0, 1, 0},
    {"open, retry, on_op", 5, NULL, 1, 0, 0, 0, 1, 1, 0, 1, 0},
    /* Hedged at once: every operation runs two attempts, each a slot of
     * its own, the loser's outcome dropped. */
    {"hedge, limit 2, on_op", 5, NULL, 2, 2, 0, 0, 1, 0, 0, 0, 1},
    {"open, hedge, retry", 4, NULL, 2, 0, 0, 0, 0, 1, 0, 1, 1},
};

static const iob_hedge hedge_now = {.delay_ms = 0, .attempts = 2};

/* Every failure but a stop is worth two more attempts, at once. */
static int64_t retry_everything(const iob_outcome *o, void *arg) {
  (void)arg;
  return o->status == IOB_ECANCELED || o->status == IOB_ETIMEDOUT ? IOB_RETRY_NO
                                                                  : 0;
}

static const iob_retry retry_all = {.attempts = 3,
                                    .backoff_min_ms = 0,
                                    .backoff_max_ms = 1,
                                    .classify = retry_everything};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

typedef struct scenario {
  char name[120];
  iob_config config; /* data and on_op set per run */
  bool on_op;
} scenario;

static scenario scenario_of(const iob_style *style, const iob_kind *kind,
                            const variant *v) {
  scenario sc = {.on_op = v->on_op};
  snprintf(sc.name, sizeof(sc.name), "%s/%s/%s", iob_style_name(style),
           kind->name, v->name);
  iob_config_init(&sc.config);
  sc.config.style = style;
  sc.config.kind = kind;
  /* A built-in kind added later that needs a target of its own fails
   * iob_batch_create() with IOB_EINVAL here: give it one. */
  static const iob_mixed mixed = {.cpu_us = 200};
  sc.config.target = kind == &iob_kind_tcp     ? (const void *)tcp_target
                     : kind == &iob_kind_file  ? (const void *)file_target
                     : kind == &iob_kind_mixed ? (const void *)&mixed
                                               : NULL;
  sc.config.count = v->count;
  sc.config.durations_ms = v->durations_ms == spread && kind != &iob_kind_wait
                               ? short_ones
                               : v->durations_ms;
  if (v->durations_ms == one_late &&
      (kind == &iob_kind_wait || kind == &iob_kind_tcp))
    sc.config.durations_ms = one_later;
  sc.config.duration_ms = v->duration_ms;
  sc.config.max_in_flight = v->max_in_flight;
  sc.config.timeout_ms = v->timeout_ms;
  sc.config.fail_fast = v->fail_fast;
  sc.config.open = v->open;
  sc.config.rate = v->rate ? rate_limit : NULL;
  /* (A result of ours, replaced by a retry's, would be lost: the kind
   * that leaves results to us is not retried.) */
  sc.config.retry = v->retry && kind != &kind_user_owned ? &retry_all : NULL;
  sc.config.hedge = v->hedge && kind != &kind_user_owned &&
                            kind->start != NULL && style->op_done != NULL
                        ? &hedge_now
                        : NULL;
  return sc;
}

static uint32_t duration_of(const iob_config *c, uint32_t i) {
  return c->durations_ms ? c->durations_ms[i] : (uint32_t)c->duration_ms;
}

/* ---- what the callbacks saw ---------------------------------------------- */

typedef struct seen {
  int batch_calls, batch_status;
  uint32_t op_calls;
  int first_failure; /* the first status on_op saw other than 0, ECANCELED */
  uint8_t per_op[COUNT_MAX];
} seen;

static void count_op(iob_batch *batch, uint32_t index,
                     const iob_record *record) {
  seen *s = iob_batch_data(batch);
  s->op_calls++;
  if (index < COUNT_MAX && s->per_op[index] < UINT8_MAX)
    s->per_op[index]++;
  if (s->first_failure == 0 && record->status != 0 &&
      record->status != IOB_ECANCELED)
    s->first_failure = record->status;
}

static void count_batch(iob_batch *batch, int status) {
  seen *s = iob_batch_data(batch);
  s->batch_calls++;
  s->batch_status = status;
}

/* ---- checks of a finished batch ------------------------------------------ */

/* Operation i's status is one it may have: 0; IOB_ETIMEDOUT under a
 * timeout; IOB_ECANCELED when failing fast; IOB_ENOMEM from a kind of
 * the application's that could not allocate. An operation longer than
 * the timeout does not end with 0. */
static void check_status(const scenario *sc, uint32_t i, int st, bool hit) {
  const iob_config *c = &sc->config;
  /* An open batch's operation that found no memory to launch settles
   * with IOB_ENOMEM, whatever its kind; so does a hedged one without
   * memory for its first attempt's slot. */
  bool nomem = hit && (is_user(c->kind) || c->open || c->hedge != NULL) &&
               st == IOB_ENOMEM;
  bool ok = st == 0 || (c->timeout_ms != 0 && st == IOB_ETIMEDOUT) ||
            (c->fail_fast && st == IOB_ECANCELED) || nomem;
  /* (A file's operations take no duration: they may beat the timeout.) */
  if (ok && c->timeout_ms != 0 && duration_of(c, i) > c->timeout_ms &&
      c->kind != &iob_kind_file)
    ok = st != 0;
  if (!ok)
    fail_msg("%s: operation %u ended with %s", sc->name, i, iob_err_name(st));
}

/* What operation i handed back: right, or lost to a failed allocation. */
static void check_outcome(const scenario *sc, const iob_batch *b, uint32_t i,
                          bool hit) {
  const iob_config *c = &sc->config;
  iob_outcome o;
  assert_code(iob_batch_outcome(b, i, &o), 0);
  /* Its attempts: listed, or lost to a failed allocation. */
  const iob_attempt *a;
  uint32_t na;
  int err = iob_batch_attempts(b, i, &a, &na);
  if (err != 0 && !(hit && err == IOB_ENOMEM))
    fail_msg("%s: operation %u's attempts: %s", sc->name, i, iob_err_name(err));
  if (err == 0 && na != 0 && na < 2)
    fail_msg("%s: operation %u lists %u attempt", sc->name, i, na);
  if (c->kind == &iob_kind_tcp) {
    if (o.status == 0 && o.message != NULL)
      fail_msg("%s: operation %u (%s): \"%s\"", sc->name, i,
               iob_err_name(o.status), o.message);
    if (o.status == 0 && !(hit && o.value == 0))
      assert_int_equal(o.value, duration_of(c, i));
    return;
  }
  if (c->kind == &iob_kind_file) { /* the bytes written */
    if (o.status == 0 && o.message != NULL)
      fail_msg("%s: operation %u: \"%s\"", sc->name, i, o.message);
    if (o.status == 0 && !(hit && o.value == 0))
      assert_int_equal(o.value, 4096);
    return;
  }
  if (!is_user(c->kind)) {
    assert_null(o.message);
    assert_null(o.result);
    return;
  }
  user_result *r = o.result;
  if (r != NULL) {
    assert_int_equal(r->magic, MAGIC);
    assert_int_equal(r->index, i);
    assert_int_equal(o.value, i + 1);
  }
  if (o.message != NULL && strcmp(o.message, NOMEM_TEXT) != 0) {
    assert_string_equal(o.message, ODD_TEXT);
    assert_int_equal(i % 2, 1);
  }
  if (o.status == IOB_ENOMEM) {
    assert_null(r);
  } else if (o.status == 0 && !hit) { /* nothing lost */
    assert_non_null(r);
    if (i % 2 == 1)
      assert_non_null(o.message);
    else
      assert_null(o.message);
  }
}

/* Everything about a batch that ran to its end: called back once, each
 * operation once, statuses it may have, the report agrees. */
static void check_finished(const scenario *sc, const iob_batch *b,
                           const seen *s, bool hit) {
  const iob_config *c = &sc->config;
  if (s->batch_calls != 1)
    fail_msg("%s: batch called back %d times", sc->name, s->batch_calls);
  if (sc->on_op) {
    assert_int_equal(s->op_calls, c->count);
    for (uint32_t i = 0; i < c->count; i++)
      if (s->per_op[i] != 1)
        fail_msg("%s: operation %u reported %u times", sc->name, i,
                 s->per_op[i]);
  }
  uint32_t n, failed = 0;
  const iob_record *rec = iob_batch_records(b, &n);
  assert_non_null(rec);
  assert_int_equal(n, c->count);
  for (uint32_t i = 0; i < n; i++) {
    check_status(sc, i, rec[i].status, hit);
    check_outcome(sc, b, i, hit);
    failed += rec[i].status != 0;
  }
  /* The batch's status: 0, or failing fast, the first failure's. */
  if (!c->fail_fast)
    assert_int_equal(s->batch_status, 0);
  else if (failed == 0)
    assert_int_equal(s->batch_status, 0);
  else if (sc->on_op)
    assert_int_equal(s->batch_status, s->first_failure);
  else
    assert_int_not_equal(s->batch_status, 0);
  iob_report r;
  int err = iob_batch_report(b, &r);
  assert_int_equal(err, 0);
  assert_int_equal(r.count, c->count);
  assert_int_equal(r.failed, failed);
  assert_int_equal(r.status, s->batch_status);
}

/* Let go of a finished batch (NULL: none) as the application does,
 * results first when they are its own; then every result made must have
 * been freed. */
static void release(const scenario *sc, iob_batch *b, bool hit) {
  if (b != NULL && sc->config.kind == &kind_user_owned) {
    for (uint32_t i = 0; i < sc->config.count; i++) {
      iob_outcome o;
      assert_code(iob_batch_outcome(b, i, &o), 0);
      user_result *r = o.result;
      if (r != NULL) {
        atomic_store(&made[r->index], NULL);
        free(r);
      }
    }
  }
  assert_code(iob_batch_free(b), 0);
  for (uint32_t i = 0; i < COUNT_MAX; i++) {
    user_result *r = atomic_exchange(&made[i], NULL);
    if (r == NULL)
      continue;
    fail_msg("%s: the result of operation %u leaked", sc->name, i);
  }
}

static void close_loop(const scenario *sc, uv_loop_t *loop) {
  int err = uv_loop_close(loop);
  if (err != 0)
    fail_msg("%s: uv_loop_close: %s", sc->name, uv_err_name(err));
}

/* ---- one run ------------------------------------------------------------- */

/* Run the scenario with allocation n failing (and all after it, if
 * persist). Returns whether an allocation failed; if none did, the
 * finished batch is left in *clean for the caller to read and release. */
static bool run_once(const scenario *sc, long n, bool persist,
                     iob_batch **clean) {
  *clean = NULL;
  uv_loop_t loop;
  assert_code(uv_loop_init(&loop), 0);
  seen s = {0};
  iob_config c = sc->config;
  c.data = &s;
  c.on_op = sc->on_op ? count_op : NULL;
  iob_batch *b = (iob_batch *)&b;

  watch_allocation(sc->name, n, persist);
  fi_arm(n, persist);
  int err = iob_batch_create(&b, &c);
  if (err != 0) {
    bool hit = fi_disarm() > 0;
    alarm(0);
    if (err != IOB_ENOMEM || !hit)
      fail_msg("%s: iob_batch_create: %s", sc->name, iob_err_name(err));
    assert_null(b);
    close_loop(sc, &loop);
    return true;
  }
  if (c.open) /* it allocates nothing */
    assert_code(iob_batch_close(b), 0);
  err = iob_batch_start(b, &loop, count_batch);
  if (err != 0) {
    bool hit = fi_disarm() > 0;
    if (err != IOB_ENOMEM || !hit)
      fail_msg("%s: iob_batch_start: %s", sc->name, iob_err_name(err));
    /* Nothing was started, nothing is left on the loop: the batch can
     * still start, and runs as if nothing had happened. */
    assert_int_equal(uv_loop_alive(&loop), 0);
    assert_int_equal(s.batch_calls, 0);
    assert_int_equal(s.op_calls, 0);
    assert_null(iob_batch_loop(b));
    assert_code(iob_batch_start(b, &loop, count_batch), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    alarm(0);
    check_finished(sc, b, &s, false);
    release(sc, b, false);
    close_loop(sc, &loop);
    return true;
  }
  int left = uv_run(&loop, UV_RUN_DEFAULT);
  bool hit = fi_disarm() > 0;
  alarm(0);
  assert_int_equal(left, 0);
  check_finished(sc, b, &s, hit);
  close_loop(sc, &loop);
  if (hit)
    release(sc, b, true);
  else
    *clean = b;
  return hit;
}

/* ---- the readers of a finished batch ------------------------------------- */

/* Distinct threads among the records, as the report counts them. */
static uint32_t workers_of(const iob_batch *b) {
  uint32_t n = 0, count;
  const iob_record *rec = iob_batch_records(b, &count);
  for (uint32_t i = 0; i < count; i++) {
    bool seen_before = false;
    for (uint32_t j = 0; j < i && !seen_before; j++)
      seen_before = rec[j].worker == rec[i].worker;
    n += rec[i].worker != 0 && !seen_before;
  }
  return n;
}

typedef enum reader { REPORT, LATENCY, SVG, TRACE, CHART, NREADERS } reader;
static const char *const reader_names[] = {
    "iob_batch_report", "iob_batch_latency", "iob_export_svg",
    "iob_export_trace", "iob_export_chart"};

static int read_batch(reader which, const iob_batch *b, FILE *out,
                      iob_report *r) {
  const iob_batch *const list[] = {b};
  iob_latency l;
  switch (which) {
  case REPORT:
    return iob_batch_report(b, r);
  case LATENCY:
    return iob_batch_latency(b, &l);
  case SVG:
    return iob_export_svg(out, list, 1, NULL);
  case TRACE:
    return iob_export_trace(out, list, 1);
  default:
    return iob_export_chart(out, list, 1, 0);
  }
}

/* Each reader of a finished batch, with each of its allocations failing
 * in turn: IOB_ENOMEM, or 0 and the whole output. */
static void inject_into_readers(const scenario *sc, iob_batch *b,
                                bool persist) {
  uint32_t workers = workers_of(b);
  for (reader which = REPORT; which < NREADERS; which++) {
    char what[200];
    snprintf(what, sizeof(what), "%s: %s", sc->name, reader_names[which]);
    for (long n = 1;; n++) {
      /* The peak is worked out once, then kept: forget it, so that its
       * allocations are made (and failed) again. */
      atomic_store(&b->peak_known, 0);
      FILE *out = tmpfile();
      assert_non_null(out);
      iob_report r;
      watch_allocation(what, n, persist);
      fi_arm(n, persist);
      int err = read_batch(which, b, out, &r);
      bool hit = fi_disarm() > 0;
      alarm(0);
      fclose(out);
      if (!hit) {
        if (err != 0)
          fail_msg("%s: %s", what, iob_err_name(err));
        if (which == REPORT)
          assert_int_equal(r.workers_used, workers);
        break;
      }
      if (err != IOB_ENOMEM)
        fail_msg("%s, allocation %ld failed: %s, expected IOB_ENOMEM", what, n,
                 iob_err_name(err));
    }
  }
}

/* ---- the tests ----------------------------------------------------------- */

/* Fail each allocation of a scenario in turn (and every one after it, if
 * persist), until a run makes fewer; then do the same to the readers of
 * the batch that ran clean. */
static void inject(const scenario *sc, bool persist) {
  for (long n = 1;; n++) {
    iob_batch *clean;
    if (run_once(sc, n, persist, &clean))
      continue;
    inject_into_readers(sc, clean, persist);
    release(sc, clean, false);
    break;
  }
}

/* `test-faults K/M` runs part K of M: the styles whose index is K - 1
 * modulo M, and, in part 1, what does not go style by style. The parts
 * mostly wait on timers and threads, so run side by side they end the
 * suite sooner than one test alone. */
static unsigned part = 1, parts = 1;

static bool in_part(size_t style_index) {
  return style_index % parts == part - 1;
}

static void every_style_and_kind(bool persist) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    if (!in_part(k))
      continue;
    for (size_t j = 0; j < nkinds; j++)
      for (size_t v = 0; v < NVARIANTS; v++) {
        /* An open batch's allocations are the core's (its tasks, kinds,
         * slots and records, whatever the style) and each loop engine's:
         * the loop's timer queue, the loops' shards. */
        if (variants[v].open && style != &iob_style_loop &&
            style != &iob_style_loops)
          continue;
        scenario sc = scenario_of(style, kinds[j], &variants[v]);
        /* A policy's variants where it does nothing would run "plain"
         * again: retries where only the application's kind fails (no
         * memory for its result), hedges where they apply. */
        if ((variants[v].retry && !variants[v].hedge &&
             kinds[j] != &kind_user) ||
            (variants[v].hedge && sc.config.hedge == NULL))
          continue;
        inject(&sc, persist);
      }
  }
}

static void
each_failed_allocation_is_survived_in_every_style_and_kind(void **state) {
  every_style_and_kind(false);
}

static void
allocations_failing_from_each_one_on_are_survived_too(void **state) {
  every_style_and_kind(true);
}

static void iob_run_fails_cleanly_at_each_allocation(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    for (size_t j = 0; j < nkinds && in_part(k); j++) {
      scenario sc = scenario_of(style, kinds[j], &variants[0]);
      strncat(sc.name, " (iob_run)", sizeof(sc.name) - strlen(sc.name) - 1);
      for (long n = 1;; n++) {
        iob_batch *b = (iob_batch *)&b;
        watch_allocation(sc.name, n, false);
        fi_arm(n, false);
        int err = iob_run(&b, &sc.config);
        bool hit = fi_disarm() > 0;
        alarm(0);
        if (err != 0) {
          if (err != IOB_ENOMEM || !hit)
            fail_msg("%s: %s", sc.name, iob_err_name(err));
          assert_null(b);
          release(&sc, NULL, true); /* nothing may be left of it */
          continue;
        }
        seen s = {.batch_calls = 1};
        check_finished(&sc, b, &s, hit);
        release(&sc, b, hit);
        if (!hit)
          break;
      }
    }
  }
}

/* 600 waits, 300 at a time: the peak's sweep keeps more ends than fit on
 * its stack, and the exporters draw the batch as a count over time. */
static void
a_large_batchs_readers_fail_cleanly_at_each_allocation(void **state) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_pool};
  for (int k = 0; k < 2; k++) {
    variant large = {
        "600 waits, limit 300", 600, NULL, 2, 300, 0, 0, 0, 0, 0, 0, 0};
    scenario sc = scenario_of(styles[k], &iob_kind_wait, &large);
    iob_batch *b;
    assert_code(iob_run(&b, &sc.config), 0);
    inject_into_readers(&sc, b, false);
    inject_into_readers(&sc, b, true);
    assert_code(iob_batch_free(b), 0);
  }
}

/* A parent open batch of two operations that are batches of their own
 * (iob_kind_batch), each of three waits, fails cleanly at each
 * allocation, with each failing from then on too: IOB_ENOMEM from the
 * call that failed, or the parent's end with each child's operation
 * ended 0 (its child run whole) or IOB_ENOMEM (its child could not start
 * or run), and nothing left, on the loop or in memory. */
static void nested_once(const iob_style *style, long n, bool persist,
                        bool *hit) {
  char name[80];
  snprintf(name, sizeof(name), "%s/batch (nested)%s", iob_style_name(style),
           persist ? ", persisting" : "");
  uv_loop_t loop;
  assert_code(uv_loop_init(&loop), 0);
  seen s = {0};
  iob_config pc, cc = config_of(&iob_style_loop, 3, 1);
  iob_config_init(&pc);
  pc.style = style;
  pc.open = 1;
  pc.data = &s;
  iob_batch *parent = NULL, *child[2] = {NULL, NULL};
  watch_allocation(name, n, persist);
  fi_arm(n, persist);
  int err = iob_batch_create(&parent, &pc);
  for (int c = 0; c < 2 && err == 0; c++)
    err = iob_batch_create(&child[c], &cc);
  for (int c = 0; c < 2 && err == 0; c++) {
    iob_task t;
    iob_task_init(&t);
    t.kind = &iob_kind_batch;
    t.input = child[c];
    int index = iob_batch_submit(parent, &t);
    err = index < 0 ? index : 0;
  }
  if (err == 0)
    err = iob_batch_close(parent);
  if (err == 0 && (err = iob_batch_start(parent, &loop, count_batch)) == 0)
    uv_run(&loop, UV_RUN_DEFAULT);
  *hit = fi_disarm() > 0;
  alarm(0);
  if (err != 0 && (err != IOB_ENOMEM || !*hit))
    fail_msg("%s: allocation %ld: %s", name, n, iob_err_name(err));
  if (err == 0) {
    assert_int_equal(s.batch_calls, 1);
    uint32_t count = 0;
    const iob_record *r = iob_batch_records(parent, &count);
    /* (Reading them allocates: a failure there is a reader's, below.) */
    for (uint32_t i = 0; r != NULL && i < count; i++) {
      iob_outcome o;
      assert_code(iob_batch_outcome(parent, i, &o), 0);
      if (r[i].status == 0) {
        iob_report rep;
        assert_code(iob_batch_report(o.result, &rep), 0);
        assert_int_equal(rep.count - rep.failed, 3);
      } else if (r[i].status != IOB_ENOMEM || !*hit) {
        fail_msg("%s: allocation %ld: child %u ended %s", name, n, i,
                 iob_err_name(r[i].status));
      }
    }
  }
  for (int c = 0; c < 2; c++)
    iob_batch_unref(child[c]); /* the parent holds its own */
  assert_code(iob_batch_free(parent), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  err = uv_loop_close(&loop);
  if (err != 0)
    fail_msg("%s: uv_loop_close: %s", name, uv_err_name(err));
}

static void a_nested_batch_fails_cleanly_at_each_allocation(void **state) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_loops};
  for (int k = 0; k < 2; k++)
    for (int persist = 0; persist < 2; persist++) {
      bool hit = true;
      for (long n = 1; hit; n++)
        nested_once(styles[k], n, persist, &hit);
    }
}

/* Armed with allocation n: an open batch of `style` on `loop` (its data
 * `s`), n tasks of `kind` on `target`, task i's input at
 * inputs + i * stride, submitted, closed, started and run to its end.
 * 0, or the code of the call that failed (nothing started then). */
static int run_open_batch(iob_batch **b, uv_loop_t *loop,
                          const iob_style *style, seen *s, const iob_kind *kind,
                          const void *target, const void *inputs, size_t stride,
                          uint32_t n) {
  iob_config c;
  iob_config_init(&c);
  c.style = style;
  c.open = 1;
  c.data = s;
  int err = iob_batch_create(b, &c);
  for (uint32_t i = 0; i < n && err == 0; i++) {
    iob_task t;
    iob_task_init(&t);
    t.kind = kind;
    t.target = target;
    t.input = (const char *)inputs + i * stride;
    int index = iob_batch_submit(*b, &t);
    err = index < 0 ? index : 0;
  }
  if (err == 0)
    err = iob_batch_close(*b);
  if (err == 0 && (err = iob_batch_start(*b, loop, count_batch)) == 0)
    uv_run(loop, UV_RUN_DEFAULT);
  return err;
}

#ifdef IOB_TEST_HTTP
/* An application's HTTP client (iobound-http, linked in when libcurl is
 * here: its allocations are wrapped too, libcurl's are not), made, used
 * by an open batch of three requests to the slow service, and destroyed,
 * fails cleanly at each allocation: IOB_ENOMEM from the call that failed,
 * or each request ended 0 (its answer whole, unless the result itself
 * found no memory) or IOB_ENOMEM; nothing left on the loop. */
static char http_url[96]; /* the slow service's GET /wait/1 */

static void http_once(const iob_style *style, long n, bool persist, bool *hit) {
  char name[80];
  snprintf(name, sizeof(name), "%s/http client%s", iob_style_name(style),
           persist ? ", persisting" : "");
  uv_loop_t loop;
  assert_code(uv_loop_init(&loop), 0);
  seen s = {0};
  iob_http_client *client = NULL;
  iob_batch *b = NULL;
  iob_http_request r = {.url = http_url};
  watch_allocation(name, n, persist);
  fi_arm(n, persist);
  int err = iob_http_client_create(&client, &loop, NULL);
  if (err == 0)
    err =
        run_open_batch(&b, &loop, style, &s, &iob_kind_http, client, &r, 0, 3);
  *hit = fi_disarm() > 0;
  alarm(0);
  if (err != 0 && (err != IOB_ENOMEM || !*hit))
    fail_msg("%s: allocation %ld: %s", name, n, iob_err_name(err));
  for (uint32_t i = 0; err == 0 && i < 3; i++) {
    iob_outcome o;
    assert_code(iob_batch_outcome(b, i, &o), 0);
    const iob_http_result *a = o.result;
    if (o.status == 0 && a != NULL)
      assert_string_equal(a->body, "done 1\n");
    else if (o.status != 0 && (o.status != IOB_ENOMEM || !*hit))
      fail_msg("%s: allocation %ld: request %u ended %s (%s)", name, n, i,
               iob_err_name(o.status), o.message ? o.message : "");
    else if (o.status == 0 && !*hit)
      fail_msg("%s: request %u has no answer", name, i);
  }
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_http_client_destroy(client), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  err = uv_loop_close(&loop);
  if (err != 0)
    fail_msg("%s: uv_loop_close: %s", name, uv_err_name(err));
}

static void an_http_client_fails_cleanly_at_each_allocation(void **state) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++)
    for (int persist = 0; persist < 2; persist++) {
      bool hit = true;
      for (long n = 1; hit; n++)
        http_once(styles[k], n, persist, &hit);
    }
}
#endif

#ifdef IOB_TEST_PG
/* An application's PostgreSQL pool (iobound-pg, linked in when libpq is
 * here; libpq's own allocations are not wrapped) on a throwaway server
 * (pg-test.sh: `test-faults pg`), made, used by an open batch of three
 * queries with a parameter, one of them prepared, on a pool of two (so
 * one waits for a connection), and destroyed, fails cleanly at each
 * allocation: IOB_ENOMEM from the call that failed, or each query ended
 * 0 with its row (unless the rows found no memory) or IOB_ENOMEM; the
 * pool's counts add up; nothing left on the loop. */
static char pg_conninfo[600];

static void pg_once(const iob_style *style, long n, bool persist, bool *hit) {
  char name[80];
  snprintf(name, sizeof(name), "%s/pg pool%s", iob_style_name(style),
           persist ? ", persisting" : "");
  uv_loop_t loop;
  assert_code(uv_loop_init(&loop), 0);
  seen s = {0};
  iob_pg_pool *pool = NULL;
  iob_batch *b = NULL;
  static const char *const params[] = {"41"};
  iob_pg_query q[3];
  for (int i = 0; i < 3; i++)
    q[i] = (iob_pg_query){.sql = "SELECT $1::int + 1",
                          .params = params,
                          .nparams = 1,
                          .prepare = i == 1};
  iob_pg_pool_options two = {.max_connections = 2};
  watch_allocation(name, n, persist);
  fi_arm(n, persist);
  int err = iob_pg_pool_create(&pool, &loop, pg_conninfo, &two);
  if (err == 0)
    err = run_open_batch(&b, &loop, style, &s, &iob_kind_pg, pool, q,
                         sizeof(q[0]), 3);
  *hit = fi_disarm() > 0;
  alarm(0);
  if (err != 0 && (err != IOB_ENOMEM || !*hit))
    fail_msg("%s: allocation %ld: %s", name, n, iob_err_name(err));
  for (uint32_t i = 0; err == 0 && i < 3; i++) {
    iob_outcome o;
    assert_code(iob_batch_outcome(b, i, &o), 0);
    const iob_pg_result *r = o.result;
    if (o.status == 0 && r != NULL)
      assert_string_equal(iob_pg_value(r, 0, 0), "42");
    else if (o.status != 0 && (o.status != IOB_ENOMEM || !*hit))
      fail_msg("%s: allocation %ld: query %u ended %s (%s)", name, n, i,
               iob_err_name(o.status), o.message ? o.message : "");
    else if (o.status == 0 && !*hit)
      fail_msg("%s: query %u has no rows", name, i);
  }
  assert_code(iob_batch_free(b), 0);
  uint32_t open = 0, idle = 0;
  if (pool != NULL) {
    assert_code(iob_pg_pool_counts(pool, &open, &idle), 0);
    if (open > 2 || idle > open)
      fail_msg("%s: allocation %ld: %u open, %u idle, in a pool of 2", name, n,
               open, idle);
  }
  assert_code(iob_pg_pool_destroy(pool), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  err = uv_loop_close(&loop);
  if (err != 0)
    fail_msg("%s: uv_loop_close: %s", name, uv_err_name(err));
}

static void a_pg_pool_fails_cleanly_at_each_allocation(void **state) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++)
    for (int persist = 0; persist < 2; persist++) {
      bool hit = true;
      for (long n = 1; hit; n++)
        pg_once(styles[k], n, persist, &hit);
    }
}
#endif

/* Requests that name files (an atomic write with fsync, an append, a
 * read), in an open batch on the loop (io_uring, where there is one, and
 * libuv's pool) and on threads, fail cleanly at each allocation: the
 * submit that failed says IOB_ENOMEM, an operation ends 0 or IOB_ENOMEM,
 * and what is left in the directory is the files the requests name,
 * never a temporary. */
static void file_requests_once(const iob_style *style, long n, bool persist,
                               bool *hit) {
  char name[80], paths[3][96];
  snprintf(name, sizeof(name), "%s/file requests (%s)%s", iob_style_name(style),
           iob_file_engine(), persist ? ", persisting" : "");
  for (int i = 0; i < 3; i++)
    snprintf(paths[i], sizeof(paths[i]), "%s/named-%d", file_dir, i);
  FILE *f = fopen(paths[2], "w"); /* what the read reads */
  assert_non_null(f);
  fputs("read me\n", f);
  assert_int_equal(fclose(f), 0);
  const iob_file_request r[3] = {
      {.mode = IOB_FILE_WRITE,
       .path = paths[0],
       .data = "new\n",
       .len = 4,
       .flags = IOB_FILE_ATOMIC | IOB_FILE_FSYNC},
      {.mode = IOB_FILE_APPEND, .path = paths[1], .data = "more\n", .len = 5},
      {.mode = IOB_FILE_READ, .path = paths[2]},
  };
  uv_loop_t loop;
  assert_code(uv_loop_init(&loop), 0);
  seen s = {0};
  iob_batch *b = NULL;
  watch_allocation(name, n, persist);
  fi_arm(n, persist);
  int err = run_open_batch(&b, &loop, style, &s, &iob_kind_file, NULL, r,
                           sizeof(r[0]), 3);
  *hit = fi_disarm() > 0;
  alarm(0);
  if (err != 0 && (err != IOB_ENOMEM || !*hit))
    fail_msg("%s: allocation %ld: %s", name, n, iob_err_name(err));
  for (uint32_t i = 0; err == 0 && i < 3; i++) {
    iob_outcome o;
    assert_code(iob_batch_outcome(b, i, &o), 0);
    const iob_file_result *got = o.result;
    if (o.status != 0 && (o.status != IOB_ENOMEM || !*hit))
      fail_msg("%s: allocation %ld: request %u ended %s (%s)", name, n, i,
               iob_err_name(o.status), o.message ? o.message : "");
    if (o.status == 0 && i == 2)
      assert_string_equal(got->data, "read me\n");
  }
  assert_code(iob_batch_free(b), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  err = uv_loop_close(&loop);
  if (err != 0)
    fail_msg("%s: uv_loop_close: %s", name, uv_err_name(err));
  for (int i = 0; i < 3; i++)
    unlink(paths[i]); /* rmdir() in main() finds any temporary */
}

static void file_requests_fail_cleanly_at_each_allocation(void **state) {
  const char *was = getenv("IOBOUND_IO_URING");
  const iob_style *styles[] = {&iob_style_loop, &iob_style_loop,
                               &iob_style_threads};
  for (int k = 0; k < 3; k++) {
    if (k == 1) /* the loop again, on libuv's pool */
      setenv("IOBOUND_IO_URING", "0", 1);
    for (int persist = 0; persist < 2; persist++) {
      bool hit = true;
      for (long n = 1; hit; n++)
        file_requests_once(styles[k], n, persist, &hit);
    }
    if (k == 1 && was == NULL)
      unsetenv("IOBOUND_IO_URING");
  }
}

static void a_tcp_target_fails_cleanly_at_each_allocation(void **state) {
  for (long n = 1;; n++) {
    iob_tcp_target *t = (iob_tcp_target *)&t;
    fi_arm(n, false);
    int err = iob_tcp_target_create(&t, "127.0.0.1:9");
    bool hit = fi_disarm() > 0;
    if (!hit) {
      assert_int_equal(err, 0);
      assert_non_null(t);
      iob_tcp_target_destroy(t);
      break;
    }
    assert_code(err, IOB_ENOMEM);
    assert_null(t);
  }
}

/* ---- threads the system refuses ------------------------------------------ */

/* Refuse thread number refuse_at, and every one after it unless once. */
static atomic_int attempts, refused;
static int refuse_at;
static bool refuse_once;

static int refusing_create(uv_thread_t *tid, const uv_thread_options_t *options,
                           uv_thread_cb entry, void *arg) {
  int k = atomic_fetch_add(&attempts, 1) + 1;
  if (k == refuse_at || (!refuse_once && k > refuse_at)) {
    atomic_fetch_add(&refused, 1);
    return UV_EAGAIN;
  }
  return uv_thread_create_ex(tid, options, entry, arg);
}

/* Does the threads style run on with the threads it got? */
static bool adapting(const iob_config *c) {
  const iob_threads_options *o = c->style_options;
  return o != NULL && o->adapt;
}

/* Returns whether a thread was refused. */
static bool refuse_thread(const scenario *sc, int k, bool once) {
  refuse_at = k;
  refuse_once = once;
  atomic_store(&attempts, 0);
  atomic_store(&refused, 0);
  uv_loop_t loop;
  assert_code(uv_loop_init(&loop), 0);
  seen s = {0};
  iob_config c = sc->config;
  c.data = &s;
  c.on_op = count_op;
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  char what[200];
  snprintf(what, sizeof(what), "%s, thread %d refused%s", sc->name, k,
           once ? "" : " and all after it");
  watch(what);
  iob__thread_create = refusing_create;
  assert_code(iob_batch_start(b, &loop, count_batch), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  iob__thread_create = uv_thread_create_ex;
  alarm(0);
  close_loop(sc, &loop);
  int no = atomic_load(&refused);
  total_refusals += no;
  total_refusal_runs += no > 0;

  assert_int_equal(s.batch_calls, 1);
  assert_int_equal(s.op_calls, c.count);
  for (uint32_t i = 0; i < c.count; i++)
    assert_int_equal(s.per_op[i], 1);
  const iob_record *rec = iob_batch_records(b, NULL);
  uint32_t again = 0, failed = 0;
  for (uint32_t i = 0; i < c.count; i++) {
    int st = rec[i].status;
    if (st != 0 && st != UV_EAGAIN && st != IOB_ECANCELED)
      fail_msg("%s: operation %u ended with %s", what, i, iob_err_name(st));
    again += st == UV_EAGAIN;
    failed += st != 0;
    check_outcome(sc, b, i, false);
  }
  if (no == 0) { /* every thread came */
    assert_int_equal(s.batch_status, 0);
    assert_int_equal(failed, 0);
  } else if (s.batch_status == 0) {
    /* Adapting, it ran on with the threads it had: all got one. */
    if (!adapting(&c))
      fail_msg("%s: the batch ignored a refused thread", what);
    assert_int_equal(failed, 0);
  } else {
    /* The batch ends, the operation refused with the refusal, those not
     * started cancelled. */
    assert_code(s.batch_status, IOB_EAGAIN);
    assert_int_equal(again, 1);
    /* Adapting, a refusal with threads running only lowers the limit:
     * all at once, the first thread's refusal alone ends the batch. */
    if (adapting(&c) && once && c.max_in_flight == 0 && k > 1)
      fail_msg("%s: adapting, the batch still failed", what);
    if (!adapting(&c)) /* operations refused in the order they came */
      assert_code(rec[k - 1].status, UV_EAGAIN);
  }
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.failed, failed);
  release(sc, b, false);
  return no > 0;
}

static void
each_refused_thread_is_survived_with_and_without_adapting(void **state) {
  iob_threads_options adapt_options;
  iob_threads_options_init(&adapt_options);
  adapt_options.adapt = 1;
  static const variant shapes[] = {
      {"all at once", 5, NULL, 5, 0, 0, 0, 1, 0, 0, 0, 0},
      {"limit 2", 6, NULL, 5, 2, 0, 0, 1, 0, 0, 0, 0},
  };
  for (size_t j = 0; j < nkinds; j++)
    for (size_t v = 0; v < 2; v++)
      for (int adapt = 0; adapt < 2; adapt++)
        for (int once = 0; once < 2; once++) {
          scenario sc = scenario_of(&iob_style_threads, kinds[j], &shapes[v]);
          sc.config.style_options = adapt ? &adapt_options : NULL;
          if (adapt)
            strncat(sc.name, ", threads_adapt",
                    sizeof(sc.name) - strlen(sc.name) - 1);
          for (int k = 1; refuse_thread(&sc, k, once); k++)
            assert_cmp(k, <=, 2 * COUNT_MAX);
        }
}

static int disarm_all(void **state) {
  atomic_store(&fi_armed, false);
  iob__thread_create = uv_thread_create_ex;
  alarm(0);
  return 0;
}

/* `test-faults pg`, under pg-test.sh: the PostgreSQL pool alone; 77
 * (skipped) without a server or without iobound-pg. */
static int pg_main(void) {
#ifdef IOB_TEST_PG
  const char *dir = getenv("IOB_PG_DIR");
  if (dir == NULL) {
    fputs("test-faults: no PostgreSQL server: skipped\n", stderr);
    return 77;
  }
  snprintf(pg_conninfo, sizeof(pg_conninfo),
           "host=%s user=postgres dbname=postgres", dir);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(a_pg_pool_fails_cleanly_at_each_allocation,
                                disarm_all),
  };
  int failed = cmocka_run_group_tests_name("pg", tests, NULL, NULL);
  printf("fault injection: %ld allocations failed in %ld runs "
         "(%d distinct call sites)\n",
         total_failures, total_runs, nsites);
  return failed != 0;
#else
  fputs("test-faults: built without iobound-pg: skipped\n", stderr);
  return 77;
#endif
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_watchdog);
  if (argc > 1 && strcmp(argv[1], "pg") == 0)
    return pg_main();
  if (argc > 1 && (sscanf(argv[1], "%u/%u", &part, &parts) != 2 || parts == 0 ||
                   part == 0 || part > parts)) {
    fprintf(stderr, "usage: test-faults [K/M | pg]\n"
                    "  K/M: part K of M (the styles K, K + M, ...)\n");
    return 64;
  }
  /* The service in a process of its own, forked before any thread. */
  fd_limit_raise();
  unsigned port;
  if (slow_server_fork("127.0.0.1", &port, &service) != 0) {
    fprintf(stderr, "test-faults: cannot start the slow service\n");
    return 1;
  }
  char address[64];
  snprintf(address, sizeof(address), "127.0.0.1:%u", port);
#ifdef IOB_TEST_HTTP
  snprintf(http_url, sizeof(http_url), "http://%s/wait/1", address);
#endif
  if (iob_tcp_target_create(&tcp_target, address) != 0)
    return 1;
  iob_file_options fo;
  iob_file_options_init(&fo);
  fo.size_kib = 4;
  snprintf(file_dir, sizeof(file_dir), "/tmp/iobound-test-faults-XXXXXX");
  if (mkdtemp(file_dir) == NULL ||
      iob_file_target_create(&file_target, file_dir, &fo) != 0)
    return 1;
  list_kinds();
  if (iob_rate_create(&rate_limit, 2000, 2) != 0)
    return 1;

  const struct CMUnitTest by_style[] = {
      cmocka_unit_test_teardown(
          each_failed_allocation_is_survived_in_every_style_and_kind,
          disarm_all),
      cmocka_unit_test_teardown(
          allocations_failing_from_each_one_on_are_survived_too, disarm_all),
      cmocka_unit_test_teardown(iob_run_fails_cleanly_at_each_allocation,
                                disarm_all),
  };
  const struct CMUnitTest once[] = {
#ifdef IOB_TEST_HTTP
      cmocka_unit_test_teardown(an_http_client_fails_cleanly_at_each_allocation,
                                disarm_all),
#endif
      cmocka_unit_test_teardown(a_nested_batch_fails_cleanly_at_each_allocation,
                                disarm_all),
      cmocka_unit_test_teardown(a_tcp_target_fails_cleanly_at_each_allocation,
                                disarm_all),
      cmocka_unit_test_teardown(file_requests_fail_cleanly_at_each_allocation,
                                disarm_all),
      cmocka_unit_test_teardown(
          a_large_batchs_readers_fail_cleanly_at_each_allocation, disarm_all),
      cmocka_unit_test_teardown(
          each_refused_thread_is_survived_with_and_without_adapting,
          disarm_all),
  };
  int failed = cmocka_run_group_tests_name("by style", by_style, NULL, NULL);
  if (part == 1)
    failed += cmocka_run_group_tests_name("once", once, NULL, NULL);

  printf("fault injection: %ld allocations failed in %ld runs "
         "(%d distinct call sites); %ld threads refused in %ld runs\n",
         total_failures, total_runs, nsites, total_refusals,
         total_refusal_runs);

  iob_tcp_target_destroy(tcp_target);
  iob_file_target_destroy(file_target);
  if (iob_rate_free(rate_limit) != 0) {
    fprintf(stderr, "test-faults: a batch still uses the rate limit\n");
    failed++;
  }
  if (rmdir(file_dir) != 0) { /* every operation removed its file */
    fprintf(stderr, "test-faults: %s was not left empty\n", file_dir);
    failed++;
  }
  if (slow_server_kill(service) != 0) {
    fprintf(stderr, "test-faults: the slow service did not end cleanly\n");
    failed++;
  }
  return failed;
}
