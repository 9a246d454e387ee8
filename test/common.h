/* The helper library every test links (test/common.c, built once by
 * test/meson.build, as libxkbcommon builds its test/common.c):
 *
 * - cmocka's headers in the order it needs;
 * - a configuration or a report in one line;
 * - a batch run on a loop of the test's own (test_loop_*, run_on_own_loop)
 *   that counts what every callback saw and proves, at the end, that each
 *   batch called back once, each operation once, and that the loop closes
 *   (uv_loop_close() == 0);
 * - timing assertions that print what they measured and the bounds when
 *   they fail: "r.elapsed_ns: 512.3 ms, expected 480..700 ms". */
#ifndef IOB_TEST_COMMON_H
#define IOB_TEST_COMMON_H

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */
#include <math.h>
#include <stdbool.h>

#include <stdatomic.h>

#include "iobound.h"

/* Nanoseconds as milliseconds. */
#define MS(ns) ((double)(ns) / 1e6)

/* ---- configurations and reports ----------------------------------------- */

/* A default configuration with a style (NULL: the default), a count and a
 * duration. */
iob_config config_of(const iob_style *style, uint32_t count,
                     uint64_t duration_ms);

/* Run a batch to its end on a loop of its own (run_on_own_loop(): the
 * loop must close) and return its report; the test fails if the run
 * does. */
iob_report report_of(const iob_config *config);

/* report_of() for `count` waits of `duration_ms` in `style`. */
iob_report run_report(const iob_style *style, uint32_t count,
                      uint64_t duration_ms);

/* The most styles a test keeps an array for. */
#define STYLES_MAX 8

/* How many styles iob_style_at() lists (at most STYLES_MAX). */
size_t style_count(void);

/* ---- error codes -------------------------------------------------------- */

/* Fail unless `actual` is `expected`, both 0 or a negative code, saying
 * each by name, as libuv's ASSERT_EQ and iob_err_name() do:
 * "iob_batch_start(b, &loop, done): IOB_EBUSY (-16), expected OK (0)". */
#define assert_code(actual, expected)                                          \
  test_assert_code(#actual, (int)(actual), (int)(expected), __FILE__, __LINE__)

/* What assert_code() calls. */
void test_assert_code(const char *what, int actual, int expected,
                      const char *file, int line);

/* Fail unless `a op b` (op one of == != < <= > >=), saying both sides and
 * their values: "r.failed == 0: 3 and 0". Each side is evaluated once.
 * Numbers of any type, compared as long double: exact for 64-bit
 * integers on x86-64, and signed with unsigned as numbers, not as C's
 * conversions would. */
#define assert_cmp(a, op, b)                                                   \
  do {                                                                         \
    long double a_ = (long double)(a), b_ = (long double)(b);                  \
    test_assert_cmp(#a " " #op " " #b, a_ op b_, a_, b_, __FILE__, __LINE__);  \
  } while (0)

/* What assert_cmp() calls. */
void test_assert_cmp(const char *what, bool holds, long double a, long double b,
                     const char *file, int line);

/* ---- timing ------------------------------------------------------------- */

/* Fail, saying what was measured and what was expected, unless
 * lo <= ms < hi. The bounds must hold on a busy two-core machine. */
#define assert_ms_between(ms, lo, hi)                                          \
  test_assert_ms(#ms, (double)(ms), (double)(lo), (double)(hi), __FILE__,      \
                 __LINE__)
/* Unless lo <= ms. */
#define assert_ms_at_least(ms, lo)                                             \
  test_assert_ms(#ms, (double)(ms), (double)(lo), NAN, __FILE__, __LINE__)
/* Unless ms < hi. */
#define assert_ms_below(ms, hi)                                                \
  test_assert_ms(#ms, (double)(ms), NAN, (double)(hi), __FILE__, __LINE__)

/* What the macros call: a bound that is NAN is no bound. */
void test_assert_ms(const char *what, double ms, double lo, double hi,
                    const char *file, int line);

/* ---- a batch on a loop of the test's own -------------------------------- */

/* What the callbacks of one batch saw. */
typedef struct test_counts {
  int batch_calls;    /* runs of the batch callback: 1 once it ended */
  int batch_status;   /* the status the batch callback was given */
  uint32_t op_calls;  /* runs of the per-operation callback */
  uint32_t ok;        /* of those, with status 0 */
  uint32_t failed;    /* with any other status (as report.failed) */
  uint32_t cancelled; /* of the failed, with IOB_ECANCELED */
} test_counts;

/* The most batches one test_loop runs. */
#define TEST_LOOP_BATCHES 16

/* One batch started on a test_loop: its callbacks, and what they saw. */
typedef struct test_loop_batch {
  iob_batch *batch;
  iob_batch_cb cb;  /* the test's own, called after counting; or NULL */
  iob_op_cb on_op;  /* the config's own, likewise */
  uint32_t count;   /* an open batch's: room in op_seen, then its count */
  bool open;        /* submitted to (iob_config.open) */
  uint8_t *op_seen; /* per operation: callbacks (saturates at 255) */
  test_counts counts;
} test_loop_batch;

struct test_loop;

/* What test_loop_at() calls, on the loop thread. */
typedef void (*test_loop_fn)(struct test_loop *t, void *arg);

/* The most calls test_loop_at() may have planned on one test_loop. */
#define TEST_LOOP_TIMERS 8

typedef struct test_loop_timer {
  uv_timer_t timer;
  struct test_loop *t;
  test_loop_fn fn;
  void *arg;
} test_loop_timer;

/* A loop of the test's own and the batches started on it. The loop's data
 * pointer is the test_loop; batches keep their config's data. */
typedef struct test_loop {
  uv_loop_t loop;
  int nbatches;
  test_loop_batch batches[TEST_LOOP_BATCHES];
  uv_timer_t cancel_timer; /* test_loop_cancel_after() */
  iob_batch *cancel_batch;
  int ntimers;
  test_loop_timer timers[TEST_LOOP_TIMERS]; /* test_loop_at() */
} test_loop;

/* uv_loop_init() on t->loop, which must succeed. */
void test_loop_init(test_loop *t);

/* Create a batch from `config` and start it on t (both must succeed). Its
 * callbacks are counted, then passed on to `cb` (may be NULL) and to
 * config->on_op. Returns the batch, which the test frees. */
iob_batch *test_loop_start(test_loop *t, const iob_config *config,
                           iob_batch_cb cb);

/* The two halves of test_loop_start(), for a test that does something in
 * between (cancels the batch before it starts, tries bad arguments...). */
iob_batch *test_loop_create(test_loop *t, const iob_config *config,
                            iob_batch_cb cb);
void test_loop_start_created(test_loop *t, iob_batch *b);

/* uv_run(UV_RUN_DEFAULT) until nothing is left, which must return 0. */
void test_loop_run(test_loop *t);

/* Cancel batch b `ms` after now, from a timer of t's that then closes;
 * twice, for the second call must be harmless too (both return 0). */
void test_loop_cancel_after(test_loop *t, iob_batch *b, uint64_t ms);

/* Call fn(t, arg) on t's loop thread `ms` after now, from a timer of t's
 * that then closes (so the loop still ends when the batches do). */
void test_loop_at(test_loop *t, uint64_t ms, test_loop_fn fn, void *arg);

/* What batch b's callbacks have seen so far (b started on t). */
const test_counts *test_loop_counts(const test_loop *t, const iob_batch *b);

/* The end of every test that uses a loop: each batch started on t called
 * back exactly once and reported each operation exactly once, and
 * uv_loop_close() returns 0: nothing was left on the loop. The test's own
 * handles must be closed (and called back) first. Batches are not freed:
 * a finished batch holds nothing of the loop's. */
void test_loop_close(test_loop *t);

/* All of the above in one: a batch from `config`, started on a loop of its
 * own and run to its end; the loop closed (proved). Copies what the
 * callbacks saw to *counts unless NULL. Returns the finished batch, for
 * the test to read and free. */
iob_batch *run_on_own_loop(const iob_config *config, test_counts *counts);

/* run_on_own_loop(), cancelled (iob_batch_cancel()) `ms` after it
 * starts. */
iob_batch *run_cancelled_after(const iob_config *config, uint64_t ms);

/* A task for an open batch: iob_task_init()'s defaults, with this kind,
 * target and duration. */
iob_task test_task(const iob_kind *kind, const void *target,
                   uint32_t duration_ms);

/* An open batch of `style` on t, at most `limit` at once (0: all), of n
 * operations of `kind` on `target`, operation i's input at
 * inputs + i * stride: submitted (each must be taken, in order), closed,
 * started and run to its end. Returns the batch, for the test to read and
 * free. */
iob_batch *test_loop_run_tasks(test_loop *t, const iob_style *style,
                               uint32_t limit, const iob_kind *kind,
                               const void *target, const void *inputs,
                               size_t stride, uint32_t n);

/* The result of operation i of batch b, which must have succeeded and
 * have one; else the test fails, saying how it ended. */
const void *test_result_of(const iob_batch *b, uint32_t i);

/* Operation i of finished (or on_op's) batch b failed with `status`, and
 * its message holds `words`; else the test fails, saying what it got. */
void test_failed_with(const iob_batch *b, uint32_t i, int status,
                      const char *words);

/* Run args[0] with args (NULL-terminated) as a child process on a loop of
 * its own, its stdout and stderr the test's, and wait for it: its exit
 * status, or minus the signal that ended it. */
int64_t test_run_child(char *const args[]);

/* Whether this program runs under valgrind (its preload is mapped), which
 * runs it many times slower: a timing bound may allow for it. */
bool test_under_valgrind(void);

/* ---- kinds --------------------------------------------------------------- */

/* The timer most test kinds' start() arms: after `ms` on the operation's
 * loop, fired(op) gives the status it ends with (and may hand things
 * back); test_timer_end() ends it sooner, with `status` (from a kind's
 * stop()). Either way the timer closes, then iob_op_done() is called;
 * ending it twice is harmless. Keep it in op->state. */
typedef struct test_timer {
  uv_timer_t timer;
  iob_op *op;
  int (*fired)(iob_op *op);
  int status;
} test_timer;
int test_timer_start(test_timer *t, iob_op *op, uint64_t ms,
                     int (*fired)(iob_op *op));
void test_timer_end(test_timer *t, int status);

/* "patient": run() waits its duration a millisecond at a time, asking
 * iob_op_stopping() before each, and gives up with its answer: on a
 * thread, it ends within a few ms of a cancel. */
extern const iob_kind test_kind_patient;
/* "later": start() arms a timer for the duration on the operation's loop;
 * its value is its index and its message its input (copied; longer than
 * 100 bytes: IOB_ERANGE). stop() ends it at once, with status 0 (the
 * record keeps why it was told to stop). Its state is over 4 KiB. */
extern const iob_kind test_kind_later;

/* "flaky": its target is a test_flaky. An attempt (op->attempt) below
 * `fails`, or any while `down` is set, fails with `status` after its
 * duration, saying "attempt N failed" and with the value 100 + N; the
 * others succeed, saying nothing. start() on a loop (a timer; stop()
 * ends it at once, cancelled), run() on a thread (polling
 * iob_op_stopping()). Every attempt is counted in `attempts`. */
typedef struct test_flaky {
  uint32_t fails;
  int status;
  atomic_bool down;
  atomic_uint attempts;
} test_flaky;
extern const iob_kind test_kind_flaky;

/* The rule every built-in target follows: in every style, while a batch
 * of `kind` runs on `target` (config from the caller: kind, target,
 * count, duration set), destroy(target) refuses with IOB_EBUSY and frees
 * nothing; once the batch has called back, the caller destroys it (0). */
void check_target_busy_while_running(const iob_config *config,
                                     int (*destroy)(void *target));

/* ---- peers on loopback ---------------------------------------------------- */

/* A TCP socket on 127.0.0.1, on a port the system chose (*port), that
 * listens (and, never accepting, answers nothing) when `listens`; closed
 * at once, it names a port nothing listens on. Returns its descriptor. */
int test_loopback_socket(bool listens, int *port);

#endif
