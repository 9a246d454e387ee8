/* Your own kinds of operation: asynchronous ones on the loop (start()),
 * blocking ones on threads (run()), what each operation is given, and
 * their statuses in the report. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- an asynchronous kind: a libuv timer in each operation's state ------ */

/* What the test asks of its kind: the config's target, shared by all. */
typedef struct user_target {
  uint32_t fail_every;   /* settle every n-th with UV_ECONNRESET; 0: never */
  uint32_t refuse_every; /* start() refuses at once; 0: never */
  bool settle_twice;     /* try to settle again: refused */
} user_target;

/* What the kind counts, in the config's data. */
typedef struct user_ctx {
  int started;
  int cleanups;
} user_ctx;

/* Each operation's own state (op_size bytes, zeroed by the library). */
typedef struct user_op {
  uv_timer_t timer;
  iob_op *op;
  int status;
} user_op;

/* The timer's memory is the operation's: settle once libuv let it go. */
static void on_user_closed(uv_handle_t *handle) {
  user_op *u = handle->data;
  iob_op *op = u->op;
  const user_target *target = op->target;
  assert_code(iob_op_done(op, u->status), 0);
  /* A second settle of the same operation is refused (nothing has taken
   * its place: the batch has no limit). */
  if (target->settle_twice)
    assert_code(iob_op_done(op, 0), IOB_EINVAL);
}

static void on_user_timer(uv_timer_t *timer) {
  user_op *u = timer->data;
  const user_target *target = u->op->target;
  u->status = target->fail_every && u->op->index % target->fail_every == 0
                  ? UV_ECONNRESET
                  : 0;
  uv_close((uv_handle_t *)timer, on_user_closed);
}

static int user_start(iob_op *op) {
  const user_target *target = op->target;
  user_ctx *ctx = iob_batch_data(op->batch);
  user_op *u = op->state;
  assert_null(u->op); /* zeroed */
  if (target->refuse_every && op->index % target->refuse_every == 0)
    return UV_ENOTCONN;
  u->op = op;
  ctx->started++;
  uv_loop_t *loop = iob_batch_loop(op->batch);
  uv_update_time(loop); /* libuv timers count from the loop's clock */
  assert_code(uv_timer_init(loop, &u->timer), 0);
  u->timer.data = u;
  return uv_timer_start(&u->timer, on_user_timer, 50, 0);
}

static void user_cleanup(iob_op *op) {
  user_ctx *ctx = iob_batch_data(op->batch);
  ctx->cleanups++;
}

static const iob_kind user_kind = {
    .name = "user-timer",
    .op_size = sizeof(user_op),
    .start = user_start,
    .cleanup = user_cleanup,
};

/* Run a batch of the kind's operations on a loop of the test's own. */
static iob_report run_user(const iob_style *style, uint32_t count,
                           const user_target *target, user_ctx *ctx) {
  iob_config c = config_of(style, count, 0);
  c.kind = &user_kind;
  c.target = target;
  c.data = ctx;
  test_counts seen;
  iob_batch *b = run_on_own_loop(&c, &seen);
  assert_int_equal(seen.op_calls, count);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_ptr_equal(r.kind, &user_kind);
  assert_int_equal(r.failed, seen.failed);
  const iob_record *rec = iob_batch_records(b, NULL);
  for (uint32_t i = 0; i < count; i++) {
    assert_cmp(rec[i].queued_ns, <=, rec[i].started_ns);
    assert_cmp(rec[i].started_ns, <=, rec[i].finished_ns);
    assert_int_equal(rec[i].worker, 0);
  }
  assert_code(iob_batch_free(b), 0);
  /* Every operation that settled was cleaned up, refused ones too. */
  assert_int_equal(ctx->cleanups, count);
  return r;
}

static void async_user_operations_overlap_on_the_loop(void **state) {
  user_ctx ctx = {0};
  user_target target = {.settle_twice = true};
  iob_report r = run_user(&iob_style_loop, 20, &target, &ctx);
  assert_int_equal(ctx.started, 20);
  assert_int_equal(r.failed, 0);
  assert_int_equal(r.peak_in_flight, 20);
  assert_ms_between(MS(r.elapsed_ns), 49, 500);
}

static void async_user_operations_run_one_at_a_time_sequentially(void **s) {
  user_ctx ctx = {0};
  user_target target = {0};
  iob_report r = run_user(&iob_style_sequential, 5, &target, &ctx);
  assert_int_equal(r.peak_in_flight, 1);
  assert_ms_at_least(MS(r.elapsed_ns), 5 * 49);
}

static void a_failing_operations_status_lands_in_the_report(void **state) {
  user_ctx ctx = {0};
  user_target target = {.fail_every = 3};
  iob_report r = run_user(&iob_style_loop, 9, &target, &ctx);
  assert_int_equal(r.failed, 3); /* 0, 3 and 6 */
  assert_int_equal(r.status, 0); /* the batch itself ran to its end */
}

static void a_start_function_may_refuse_at_once(void **state) {
  user_ctx ctx = {0};
  user_target target = {.refuse_every = 2};
  iob_report r = run_user(&iob_style_loop, 10, &target, &ctx);
  assert_int_equal(ctx.started, 5);
  assert_int_equal(r.failed, 5);
}

static void operations_that_fail_at_once_count_as_one_running(void **s) {
  user_ctx ctx = {0};
  user_target target = {.refuse_every = 1};
  iob_report r = run_user(&iob_style_loop, 5, &target, &ctx);
  assert_int_equal(r.failed, 5);
  assert_int_equal(r.peak_in_flight, 1);
}

/* A run() on the loop that tries to settle itself: it was not begun by
 * start(), so iob_op_done() refuses it. */
static int settled_from_run;

static int settle_from_run(iob_op *op) {
  settled_from_run = iob_op_done(op, 0);
  return 0;
}

static const iob_kind settling_run_kind = {
    .name = "settles-in-run",
    .run = settle_from_run,
};

static void settling_what_is_not_in_flight_is_refused(void **state) {
  assert_code(iob_op_done(NULL, 0), IOB_EINVAL);
  settled_from_run = 1;
  iob_config c = config_of(&iob_style_loop, 1, 0);
  c.kind = &settling_run_kind;
  iob_report r = report_of(&c);
  assert_code(settled_from_run, IOB_EINVAL);
  assert_int_equal(r.failed, 0); /* and it ended as run() said */
  /* A second settle from start() is refused: see on_user_closed(). */
}

/* ---- settling from another thread --------------------------------------- */

typedef struct foreign {
  iob_op *op;
  int done, stopping;
} foreign;

static void settle_from_another_thread(void *arg) {
  foreign *f = arg;
  f->done = iob_op_done(f->op, 0);
  f->stopping = iob_op_stopping(f->op);
}

static void on_foreign_timer(uv_timer_t *timer) {
  user_op *u = timer->data;
  foreign f = {.op = u->op, .done = 1, .stopping = 1};
  uv_thread_t tid;
  assert_code(uv_thread_create(&tid, settle_from_another_thread, &f), 0);
  assert_code(uv_thread_join(&tid), 0);
  assert_code(f.done, IOB_EPERM);
  assert_int_equal(f.stopping, 0); /* readable from any thread */
  u->status = 0;
  uv_close((uv_handle_t *)timer, on_user_closed);
}

static int foreign_start(iob_op *op) {
  user_op *u = op->state;
  u->op = op;
  uv_loop_t *loop = iob_batch_loop(op->batch);
  assert_code(uv_timer_init(loop, &u->timer), 0);
  u->timer.data = u;
  return uv_timer_start(&u->timer, on_foreign_timer, 1, 0);
}

static const iob_kind foreign_kind = {
    .name = "settled-elsewhere",
    .op_size = sizeof(user_op),
    .start = foreign_start,
};

static void settling_from_another_thread_is_refused(void **state) {
  user_target target = {0};
  iob_config c = config_of(&iob_style_loop, 3, 0);
  c.kind = &foreign_kind;
  c.target = &target;
  test_counts seen;
  iob_batch *b = run_on_own_loop(&c, &seen);
  assert_int_equal(seen.ok, 3); /* settled from the loop thread after all */
  assert_code(iob_batch_free(b), 0);
}

/* ---- blocking operations ------------------------------------------------ */

/* Sleeps the target's number of ms; operation 2 fails. */
static int sleepy_run(iob_op *op) {
  const unsigned int *delay = op->target;
  uv_sleep(*delay);
  return op->index == 2 ? UV_EPIPE : 0;
}

static const iob_kind sleepy_kind = {
    .name = "sleepy",
    .run = sleepy_run,
};

static void blocking_user_operations_run_on_threads(void **state) {
  const iob_style *styles[] = {&iob_style_pool, &iob_style_threads};
  for (size_t k = 0; k < 2; k++) {
    unsigned int delay = 100;
    iob_config c = config_of(styles[k], 4, 0);
    c.kind = &sleepy_kind;
    c.target = &delay;
    iob_batch *b;
    assert_code(iob_run(&b, &c), 0);
    const iob_record *rec = iob_batch_records(b, NULL);
    for (int i = 0; i < 4; i++) {
      assert_int_not_equal(rec[i].worker, 0);
      assert_int_equal(rec[i].status, i == 2 ? UV_EPIPE : 0);
      assert_ms_at_least(MS(rec[i].finished_ns - rec[i].started_ns), 99);
    }
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    assert_int_equal(r.failed, 1);
    /* They overlapped (measured from their records). */
    assert_cmp(r.peak_in_flight, >=, 2);
    assert_code(iob_batch_free(b), 0);
  }
}

static void a_blocking_operation_on_the_loop_blocks_it(void **state) {
  unsigned int delay = 30;
  iob_config c = config_of(&iob_style_loop, 4, 0);
  c.kind = &sleepy_kind;
  c.target = &delay;
  iob_batch *b;
  assert_code(iob_run(&b, &c), 0);
  const iob_record *rec = iob_batch_records(b, NULL);
  for (int i = 0; i < 4; i++)
    assert_int_equal(rec[i].worker, 0); /* the loop's own thread */
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.peak_in_flight, 1); /* one after another */
  assert_ms_at_least(MS(r.elapsed_ns), 4 * 30);
  assert_code(iob_batch_free(b), 0);
}

/* ---- what each operation is given --------------------------------------- */

#define PROBES 6

/* What each operation found, written by run() on whichever thread, one
 * entry per operation, read once the batch is over. */
typedef struct probe_seen {
  const void *target;
  const iob_batch *batch;
  uint32_t index, duration_ms;
  bool state_zeroed; /* op_size bytes, all zero */
  bool state_null;
} probe_seen;

static probe_seen probes[PROBES];

typedef struct probe_state {
  uint64_t marks[8];
} probe_state;

static void note(iob_op *op, bool has_state) {
  probe_seen *p = &probes[op->index % PROBES];
  p->target = op->target;
  p->batch = op->batch;
  p->index = op->index;
  p->duration_ms = op->duration_ms;
  p->state_null = op->state == NULL;
  if (has_state && op->state != NULL) {
    probe_state *st = op->state;
    static const probe_state zero = {{0}};
    p->state_zeroed = memcmp(st, &zero, sizeof(zero)) == 0;
    memset(st, 0xab, sizeof(*st)); /* whoever has the slot next sees 0 */
  }
}

static int probe_run(iob_op *op) {
  note(op, true);
  return 0;
}

static int probe_run_stateless(iob_op *op) {
  note(op, false);
  return 0;
}

static const iob_kind probe_kind = {
    .name = "probe",
    .op_size = sizeof(probe_state),
    .run = probe_run,
};

static const iob_kind stateless_kind = {
    .name = "probe-stateless",
    .run = probe_run_stateless,
};

static void
operations_get_the_target_their_state_and_their_duration(void **state) {
  static const uint32_t durations[PROBES] = {1, 2, 3, 4, 5, 6};
  static const char target[] = "the target";
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    for (int stateless = 0; stateless < 2; stateless++) {
      int mine = 0;
      memset(probes, 0, sizeof(probes));
      iob_config c = config_of(style, PROBES, 0);
      c.kind = stateless ? &stateless_kind : &probe_kind;
      c.target = target;
      c.durations_ms = durations;
      c.max_in_flight = 2; /* slots are reused */
      c.data = &mine;
      iob_batch *b = run_on_own_loop(&c, NULL);
      assert_ptr_equal(iob_batch_data(b), &mine); /* data stays yours */
      for (uint32_t i = 0; i < PROBES; i++) {
        assert_ptr_equal(probes[i].target, target);
        assert_ptr_equal(probes[i].batch, b);
        assert_int_equal(probes[i].index, i);
        assert_int_equal(probes[i].duration_ms, durations[i]);
        if (stateless)
          assert_true(probes[i].state_null);
        else
          assert_true(probes[i].state_zeroed);
      }
      assert_code(iob_batch_free(b), 0);
    }
  }
}

/* ---- what a kind must have ---------------------------------------------- */

static int refuse_range(const iob_config *config) {
  /* Given the whole configuration, target included. */
  return config->target == NULL ? IOB_EINVAL : IOB_ERANGE;
}

static void a_kind_needs_a_function_its_style_can_call(void **state) {
  iob_batch *b = (iob_batch *)&b;
  iob_config c = config_of(&iob_style_loop, 1, 0);
  const iob_kind nothing = {.name = "nothing"};
  c.kind = &nothing; /* neither start() nor run() */
  assert_code(iob_batch_create(&b, &c), IOB_EINVAL);
  assert_null(b);
  const iob_kind nameless = {.run = sleepy_run};
  c.kind = &nameless;
  assert_code(iob_batch_create(&b, &c), IOB_EINVAL);
  const iob_kind waits_and_starts = {
      .name = "both", .flags = IOB_KIND_WAITS, .start = user_start};
  c.kind = &waits_and_starts; /* the wait is iobound's: run() after it */
  assert_code(iob_batch_create(&b, &c), IOB_EINVAL);

  /* start() alone: the loop styles only; a thread can only block. */
  c.kind = &user_kind;
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    c.style = style;
    bool threads = iob_style_flags(style) & IOB_STYLE_ON_THREADS;
    assert_int_equal(iob_batch_create(&b, &c), threads ? IOB_ENOTSUP : 0);
    assert_code(iob_batch_free(b), 0);
  }

  /* A kind's own check() speaks for it, with the configuration. */
  const iob_kind checked = {
      .name = "checked", .run = sleepy_run, .check = refuse_range};
  c.kind = &checked;
  c.target = NULL;
  assert_code(iob_batch_create(&b, &c), IOB_EINVAL);
  c.target = &c;
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  assert_null(b);
  assert_code(iob_run(&b, &c), IOB_ERANGE);
  assert_null(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(async_user_operations_overlap_on_the_loop),
      cmocka_unit_test(async_user_operations_run_one_at_a_time_sequentially),
      cmocka_unit_test(a_failing_operations_status_lands_in_the_report),
      cmocka_unit_test(a_start_function_may_refuse_at_once),
      cmocka_unit_test(settling_what_is_not_in_flight_is_refused),
      cmocka_unit_test(settling_from_another_thread_is_refused),
      cmocka_unit_test(operations_that_fail_at_once_count_as_one_running),
      cmocka_unit_test(blocking_user_operations_run_on_threads),
      cmocka_unit_test(a_blocking_operation_on_the_loop_blocks_it),
      cmocka_unit_test(
          operations_get_the_target_their_state_and_their_duration),
      cmocka_unit_test(a_kind_needs_a_function_its_style_can_call),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
