/* Kinds of operation as descriptors: what a kind's functions are given
 * (the operation's context), what an operation hands back (status,
 * message, value, result), how it is told to stop, and which kinds each
 * style refuses. A user's kind here is written exactly as the built-in
 * ones are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- a user's kind: an asynchronous timer of its own -------------------- */

typedef struct target {
  int magic;
  int fail_index; /* this operation fails, with a message; -1: none */
  int never_ends; /* operations end only when told to stop */
} target;

typedef struct timer_state {
  uv_timer_t timer;
  iob_op *op;
  int status;
  int stopped; /* stop() was called */
} timer_state;

static int cleanups, results_freed, stops_seen_timed_out, stops_seen_cancel;

static void on_closed(uv_handle_t *handle) {
  timer_state *t = handle->data;
  assert_code(iob_op_done(t->op, t->status), 0);
}

static void end(timer_state *t, int status) {
  if (uv_is_closing((uv_handle_t *)&t->timer))
    return;
  t->status = status;
  uv_close((uv_handle_t *)&t->timer, on_closed);
}

static void on_timer(uv_timer_t *timer) {
  timer_state *t = timer->data;
  const target *tg = t->op->target;
  if ((int)t->op->index == tg->fail_index) {
    iob_op_set_message(t->op, "operation 3 was told to fail");
    end(t, UV_ECONNRESET);
    return;
  }
  iob_op_set_value(t->op, (uint64_t)t->op->index * 10);
  int *result = malloc(sizeof(*result));
  *result = (int)t->op->index;
  iob_op_set_result(t->op, result);
  end(t, 0);
}

static int timer_start(iob_op *op) {
  const target *tg = op->target;
  timer_state *t = op->state;
  assert_non_null(t);
  assert_int_equal(tg->magic, 42);
  /* The state comes zeroed, every time. */
  assert_null(t->op);
  assert_int_equal(t->stopped, 0);
  assert_int_equal(iob_op_stopping(op), 0);
  t->op = op;
  uv_loop_t *loop = iob_batch_loop(op->batch);
  uv_update_time(loop);
  uv_timer_init(loop, &t->timer);
  t->timer.data = t;
  if (tg->never_ends)
    return 0;
  return uv_timer_start(&t->timer, on_timer, op->duration_ms, 0);
}

static void timer_stop(iob_op *op) {
  timer_state *t = op->state;
  t->stopped = 1;
  int why = iob_op_stopping(op);
  stops_seen_timed_out += why == IOB_ETIMEDOUT;
  stops_seen_cancel += why == IOB_ECANCELED;
  end(t, 0); /* recorded with the reason it was told, not 0 */
}

static void timer_cleanup(iob_op *op) { cleanups++; }

static void free_result(void *result) {
  results_freed++;
  free(result);
}

static const iob_kind timer_kind = {
    .name = "timer",
    .op_size = sizeof(timer_state),
    .start = timer_start,
    .stop = timer_stop,
    .cleanup = timer_cleanup,
    .free_result = free_result,
};

/* Run config to its end on a loop of its own, which must close. */
static iob_batch *run(const iob_config *c) {
  test_counts counts;
  iob_batch *b = run_on_own_loop(c, &counts);
  assert_int_equal(counts.batch_calls, 1);
  return b;
}

static iob_config kind_config(const iob_style *style, const iob_kind *kind,
                              uint32_t count, const void *tg) {
  iob_config c = config_of(style, count, 5);
  c.kind = kind;
  c.target = tg;
  return c;
}

static int refuse_check(const iob_config *config) { return IOB_ERANGE; }
static int run_nothing(iob_op *op) { return 0; }
static int start_nothing(iob_op *op) { return 0; }
static void on_nothing(iob_batch *batch, int status) {}

/* ---- tests ---------------------------------------------------------------- */

static void an_operation_hands_back_its_message_value_and_result(void **s) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_sequential};
  for (int k = 0; k < 2; k++) {
    target tg = {.magic = 42, .fail_index = 3};
    cleanups = results_freed = 0;
    iob_config c = kind_config(styles[k], &timer_kind, 6, &tg);
    iob_batch *b = run(&c);
    for (uint32_t i = 0; i < 6; i++) {
      iob_outcome o;
      assert_code(iob_batch_outcome(b, i, &o), 0);
      if (i == 3) {
        assert_code(o.status, UV_ECONNRESET);
        assert_string_equal(o.message, "operation 3 was told to fail");
        assert_null(o.result);
      } else {
        assert_int_equal(o.status, 0);
        assert_null(o.message);
        assert_int_equal(o.value, i * 10);
        assert_int_equal(*(int *)o.result, (int)i);
      }
    }
    assert_int_equal(cleanups, 6); /* once for every operation */
    assert_code(iob_batch_free(b), 0);
    assert_int_equal(results_freed, 5); /* the kind's free_result */
  }
}

/* run() hands back a value, and fails every third operation with words;
 * on_op reads each outcome as its operation settles, in every style, and
 * cannot read one that has not. */
static int hand_back(iob_op *op) {
  if (op->index % 3 == 1) {
    iob_op_set_message(op, "every third fails");
    return UV_EIO;
  }
  iob_op_set_value(op, (uint64_t)op->index * 10);
  return 0;
}

static const iob_kind handing_kind = {.name = "handing", .run = hand_back};

typedef struct in_hand {
  uint32_t seen;
  uint32_t busy_before; /* outcomes of later operations refused */
} in_hand;

static void read_as_it_settles(iob_batch *b, uint32_t i, const iob_record *r) {
  in_hand *h = iob_batch_data(b);
  iob_outcome o;
  assert_code(iob_batch_outcome(b, i, &o), 0);
  assert_int_equal(o.status, r->status);
  if (i % 3 == 1) {
    assert_code(o.status, UV_EIO);
    assert_string_equal(o.message, "every third fails");
  } else {
    assert_int_equal(o.status, 0);
    assert_int_equal(o.value, i * 10);
  }
  uint32_t count = iob_batch_config(b)->count;
  if (i + 1 < count &&
      iob_batch_outcome(b, count - 1, &o) == IOB_EBUSY) /* not yet */
    h->busy_before++;
  h->seen++;
}

static void outcomes_are_in_hand_as_each_operation_settles(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    in_hand h = {0};
    iob_config c = kind_config(style, &handing_kind, 9, NULL);
    c.max_in_flight = 2; /* the last starts after the first settled */
    c.on_op = read_as_it_settles;
    c.data = &h;
    iob_batch *b = run(&c);
    assert_int_equal(h.seen, 9);
    assert_cmp(h.busy_before, >, 0);
    assert_code(iob_batch_free(b), 0);
  }
}

/* Operations that settle without running (one cancelled alone before
 * the batch started, the rest by a cancel of the batch from on_op) have
 * outcomes too: their status, nothing handed back. Every outcome read in
 * on_op matches its record, and the earlier ones stay readable. */
static void check_every_settled_outcome(iob_batch *b, uint32_t i,
                                        const iob_record *r) {
  iob_outcome o;
  assert_code(iob_batch_outcome(b, i, &o), 0);
  assert_int_equal(o.status, r->status);
  assert_null(iob_batch_records(b, NULL));   /* running: not all final */
  for (uint32_t j = 0; i <= 2 && j < i; j++) /* one at a time: in order */
    assert_code(iob_batch_outcome(b, j, &o), 0);
  if (i == 2)
    assert_code(iob_batch_cancel(b), 0);
  in_hand *h = iob_batch_data(b);
  h->seen++;
}

static void outcomes_of_cancelled_operations_are_in_hand_too(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    in_hand h = {0};
    iob_config c = kind_config(style, &handing_kind, 8, NULL);
    c.max_in_flight = 1;
    c.on_op = check_every_settled_outcome;
    c.data = &h;
    test_loop t;
    test_loop_init(&t);
    iob_batch *b = test_loop_create(&t, &c, NULL);
    assert_code(iob_batch_cancel_op(b, 6), 0); /* marked: never runs */
    test_loop_start_created(&t, b);
    test_loop_run(&t);
    test_loop_close(&t);
    assert_int_equal(h.seen, 8);
    const iob_record *rec = iob_batch_records(b, NULL);
    for (uint32_t i = 3; i < 8; i++) {
      iob_outcome o;
      assert_code(iob_batch_outcome(b, i, &o), 0);
      assert_int_equal(o.status, rec[i].status);
    }
    assert_code(rec[6].status, IOB_ECANCELED);
    assert_code(iob_batch_free(b), 0);
  }
}

static void outcomes_are_read_only_once_the_batch_is_over(void **state) {
  iob_config c = kind_config(&iob_style_loop, &iob_kind_wait, 2, NULL);
  iob_batch *b;
  iob_outcome o;
  assert_code(iob_batch_create(&b, &c), 0);
  assert_code(iob_batch_outcome(b, 0, &o), IOB_EBUSY);
  assert_code(iob_batch_outcome(b, 2, &o), IOB_EINVAL);
  assert_code(iob_batch_outcome(b, 0, NULL), IOB_EINVAL);
  assert_code(iob_batch_outcome(NULL, 0, &o), IOB_EINVAL);
  assert_code(iob_batch_free(b), 0);
  /* A plain wait hands nothing back: empty outcomes, no memory. */
  b = run(&c);
  assert_code(iob_batch_outcome(b, 1, &o), 0);
  assert_int_equal(o.status, 0);
  assert_null(o.message);
  assert_int_equal(o.value, 0);
  assert_null(o.result);
  assert_code(iob_batch_free(b), 0);
}

static void an_operation_past_its_timeout_is_told_why_it_stops(void **s) {
  target tg = {.magic = 42, .fail_index = -1, .never_ends = 1};
  stops_seen_timed_out = 0;
  iob_config c = kind_config(&iob_style_loop, &timer_kind, 4, &tg);
  c.timeout_ms = 20;
  iob_batch *b = run(&c);
  assert_int_equal(stops_seen_timed_out, 4);
  const iob_record *r = iob_batch_records(b, NULL);
  for (int i = 0; i < 4; i++) {
    assert_code(r[i].status, IOB_ETIMEDOUT);
    assert_cmp(r[i].finished_ns - r[i].started_ns, >=, 20 * 1000000);
  }
  assert_code(iob_batch_free(b), 0);
}

static void a_cancelled_operation_is_told_it_was_cancelled(void **state) {
  target tg = {.magic = 42, .fail_index = -1, .never_ends = 1};
  stops_seen_cancel = 0;
  iob_config c = kind_config(&iob_style_loop, &timer_kind, 5, &tg);
  c.max_in_flight = 2;
  iob_batch *b = run_cancelled_after(&c, 20);
  /* The two in flight are told why they stop; the three never started
   * settle at once. All five are cancelled. */
  assert_int_equal(stops_seen_cancel, 2);
  const iob_record *r = iob_batch_records(b, NULL);
  for (int i = 0; i < 5; i++)
    assert_code(r[i].status, IOB_ECANCELED);
  assert_code(iob_batch_free(b), 0);
}

/* A start() that cancels its own batch (as an application might, from
 * inside a callback) is told to stop once it returns, like the rest. */
static int start_and_cancel(iob_op *op) {
  int err = timer_start(op);
  if (op->index == 1)
    assert_code(iob_batch_cancel(op->batch), 0);
  return err;
}

static const iob_kind self_cancelling_kind = {
    .name = "self-cancelling",
    .op_size = sizeof(timer_state),
    .start = start_and_cancel,
    .stop = timer_stop,
};

static void a_cancel_from_inside_start_stops_that_operation_too(void **s) {
  target tg = {.magic = 42, .fail_index = -1, .never_ends = 1};
  for (uint64_t timeout = 0; timeout <= 5000; timeout += 5000) {
    stops_seen_cancel = 0;
    iob_config c = kind_config(&iob_style_loop, &self_cancelling_kind, 4, &tg);
    c.timeout_ms = timeout;
    iob_batch *b = run(&c);
    assert_int_equal(stops_seen_cancel, 2); /* 0, and 1 inside its start */
    const iob_record *r = iob_batch_records(b, NULL);
    for (int i = 0; i < 4; i++)
      assert_code(r[i].status, IOB_ECANCELED);
    iob_report rep;
    assert_code(iob_batch_report(b, &rep), 0);
    assert_ms_below(MS(rep.elapsed_ns), 1000); /* not the timeout's 5 s */
    assert_code(iob_batch_free(b), 0);
  }
}

static void cancel_after_the_last(iob_batch *batch, uint32_t index,
                                  const iob_record *record) {
  if (index == 2)
    assert_code(iob_batch_cancel(batch), 0);
}

static void a_cancel_once_every_operation_settled_changes_nothing(void **s) {
  iob_config c = config_of(&iob_style_sequential, 3, 1);
  c.on_op = cancel_after_the_last;
  test_counts counts;
  iob_batch *b = run_on_own_loop(&c, &counts);
  assert_int_equal(counts.batch_status, 0);
  assert_int_equal(counts.ok, 3);
  assert_code(iob_batch_free(b), 0);
}

/* The most state a kind may ask for, for as many operations in flight as
 * memory cannot hold: iob_batch_start() fails, and leaves nothing on the
 * loop, which closes at once, without running. */
static const iob_kind greedy_kind = {
    .name = "greedy", .op_size = IOB_OP_SIZE_MAX, .start = start_nothing};

static void a_start_out_of_memory_leaves_nothing_on_the_loop(void **state) {
  iob_config c = kind_config(&iob_style_loop, &greedy_kind, 4096, NULL);
  uv_loop_t loop;
  assert_code(uv_loop_init(&loop), 0);
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  assert_code(iob_batch_start(b, &loop, NULL), IOB_EINVAL);
  assert_code(iob_batch_start(b, &loop, on_nothing), IOB_ENOMEM);
  assert_code(uv_loop_close(&loop), 0);
  assert_code(iob_batch_free(b), 0);
  /* The same through iob_run(), whose private loop must not leak. */
  assert_code(iob_run(&b, &c), IOB_ENOMEM);
  assert_null(b);
}

/* ---- settling what may not be settled ----------------------------------- */

static int done_inside_run;

static int run_and_try_to_settle(iob_op *op) {
  done_inside_run = iob_op_done(op, 0);
  return 0;
}

static const iob_kind blocking_kind = {.name = "blocking",
                                       .run = run_and_try_to_settle};

static void settling_an_operation_not_begun_by_start_is_refused(void **s) {
  assert_code(iob_op_done(NULL, 0), IOB_EINVAL);
  const iob_style *styles[] = {&iob_style_loop, &iob_style_pool,
                               &iob_style_threads};
  /* On the loop's thread it is not an operation from start(); on another
   * thread, the wrong thread to call from at all. */
  const int refusal[] = {IOB_EINVAL, IOB_EPERM, IOB_EPERM};
  for (int k = 0; k < 3; k++) {
    iob_config c = kind_config(styles[k], &blocking_kind, 1, NULL);
    done_inside_run = 1;
    iob_batch *b = run(&c);
    assert_int_equal(done_inside_run, refusal[k]); /* run() returns 0 */
    assert_int_equal(iob_batch_records(b, NULL)[0].status, 0);
    assert_code(iob_batch_free(b), 0);
  }
}

static int run_until_stopped(iob_op *op) {
  while (iob_op_stopping(op) == 0)
    uv_sleep(1);
  return iob_op_stopping(op);
}

static const iob_kind patient_kind = {.name = "patient",
                                      .run = run_until_stopped};

static void a_run_on_a_thread_sees_the_cancel_and_may_give_up(void **s) {
  const iob_style *styles[] = {&iob_style_pool, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    iob_config c = kind_config(styles[k], &patient_kind, 3, NULL);
    iob_batch *b = run_cancelled_after(&c, 30);
    const iob_record *r = iob_batch_records(b, NULL);
    for (int i = 0; i < 3; i++)
      assert_code(r[i].status, IOB_ECANCELED);
    assert_code(iob_batch_free(b), 0);
  }
}

/* ---- what each style accepts ---------------------------------------------- */

static void a_kind_a_style_cannot_run_is_refused_at_create(void **state) {
  const iob_kind nothing = {.name = "nothing"};
  const iob_kind unnamed = {.run = run_nothing};
  const iob_kind async_only = {.name = "async", .start = start_nothing};
  const iob_kind wait_then_start = {
      .name = "w", .flags = IOB_KIND_WAITS, .start = start_nothing};
  const iob_kind checked = {
      .name = "checked", .run = run_nothing, .check = refuse_check};
  const iob_kind too_big = {
      .name = "too big", .run = run_nothing, .op_size = IOB_OP_SIZE_MAX + 1};
  struct {
    const iob_style *style;
    const iob_kind *kind;
    int err;
  } cases[] = {
      {&iob_style_loop, &nothing, IOB_EINVAL},
      {&iob_style_loop, &unnamed, IOB_EINVAL},
      {&iob_style_loop, &wait_then_start, IOB_EINVAL},
      {&iob_style_pool, &async_only, IOB_ENOTSUP},
      {&iob_style_threads, &async_only, IOB_ENOTSUP},
      {&iob_style_loop, &checked, IOB_ERANGE},
      {&iob_style_loop, &iob_kind_tcp, IOB_EINVAL}, /* no target */
      {&iob_style_loop, &too_big, IOB_ERANGE},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    iob_config c = kind_config(cases[k].style, cases[k].kind, 1, NULL);
    iob_batch *b = (iob_batch *)&c;
    assert_int_equal(iob_batch_create(&b, &c), cases[k].err);
    assert_null(b);
  }
}

/* Every style and every kind the registry lists (lib/core/registry.c) is
 * found by its name, once, and the lists end with NULL: a new one needs
 * its line there and nothing here. */
static void styles_and_kinds_are_found_by_name_and_listed(void **state) {
  const iob_style *style;
  size_t n = 0;
  for (; (style = iob_style_at(n)) != NULL; n++) {
    const char *name = iob_style_name(style);
    assert_non_null(name);
    assert_cmp(name[0], !=, '\0');
    assert_ptr_equal(iob_style_find(name), style); /* no other has it */
  }
  assert_cmp(n, >=, 1);
  assert_int_equal(n, style_count());
  assert_null(iob_style_at(n));
  assert_null(iob_style_at(SIZE_MAX));
  /* The tutorial's order starts with its baseline; and what some styles
   * do with threads. */
  assert_ptr_equal(iob_style_at(0), &iob_style_sequential);
  assert_ptr_equal(iob_style_find("loop"), &iob_style_loop);
  assert_null(iob_style_find("fibers"));
  assert_null(iob_style_find(NULL));
  assert_null(iob_style_name(NULL));
  assert_int_equal(iob_style_flags(NULL), 0);
  assert_int_equal(iob_style_flags(&iob_style_loop), 0);
  assert_int_equal(iob_style_flags(&iob_style_sequential), 0);
  assert_int_equal(iob_style_flags(&iob_style_pool), IOB_STYLE_ON_THREADS);
  assert_int_equal(iob_style_flags(&iob_style_threads),
                   IOB_STYLE_ON_THREADS | IOB_STYLE_THREAD_EACH);
  assert_int_equal(iob_style_flags(&iob_style_loops), IOB_STYLE_LOOPS);

  const iob_kind *kind;
  for (n = 0; (kind = iob_kind_at(n)) != NULL; n++) {
    assert_non_null(kind->name);
    assert_cmp(kind->name[0], !=, '\0');
    assert_ptr_equal(iob_kind_find(kind->name), kind);
    /* Something to run: a wait, start() or run(). */
    assert_true((kind->flags & IOB_KIND_WAITS) || kind->start != NULL ||
                kind->run != NULL);
  }
  assert_cmp(n, >=, 1);
  assert_null(iob_kind_at(n));
  assert_null(iob_kind_at(SIZE_MAX));
  assert_ptr_equal(iob_kind_at(0), &iob_kind_wait); /* the default */
  assert_ptr_equal(iob_kind_find("tcp"), &iob_kind_tcp);
  /* The kinds of other libraries are not listed here. */
  assert_null(iob_kind_find("pg"));
  assert_null(iob_kind_find("http"));
  assert_null(iob_kind_find("user"));
  assert_null(iob_kind_find(""));
  assert_null(iob_kind_find(NULL));
}

static void the_defaults_are_a_wait_on_the_loop(void **state) {
  iob_config c;
  iob_config_init(&c);
  assert_ptr_equal(c.style, &iob_style_loop);
  assert_ptr_equal(c.kind, &iob_kind_wait);
  c.style = NULL; /* NULL means the default too */
  c.kind = NULL;
  c.count = 2;
  iob_batch *b = run(&c);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_ptr_equal(r.style, &iob_style_loop);
  assert_ptr_equal(r.kind, &iob_kind_wait);
  assert_code(iob_batch_free(b), 0);
}

static int64_t remaining_seen;

static int note_remaining(iob_op *op) {
  remaining_seen = iob_op_remaining_ms(op);
  return 0;
}

static const iob_kind remaining_kind = {.name = "remaining",
                                        .run = note_remaining};

static void an_operation_knows_how_long_it_has_left(void **state) {
  iob_config c = kind_config(&iob_style_threads, &remaining_kind, 1, NULL);
  iob_batch *b = run(&c);
  assert_int_equal(remaining_seen, -1); /* no timeout */
  assert_code(iob_batch_free(b), 0);
  c.timeout_ms = 5000;
  b = run(&c);
  assert_cmp(remaining_seen, >, 4000);
  assert_cmp(remaining_seen, <=, 5000);
  assert_code(iob_batch_free(b), 0);
  /* The batch's deadline, when it comes first, and alone. */
  c.deadline_ms = 3000;
  b = run(&c);
  assert_cmp(remaining_seen, >, 2000);
  assert_cmp(remaining_seen, <=, 3000);
  assert_code(iob_batch_free(b), 0);
  c.timeout_ms = 0;
  b = run(&c);
  assert_cmp(remaining_seen, >, 2000);
  assert_cmp(remaining_seen, <=, 3000);
  assert_code(iob_batch_free(b), 0);
  assert_int_equal(iob_op_remaining_ms(NULL), -1);
}

static void op_functions_refuse_null(void **state) {
  assert_code(iob_op_set_message(NULL, "x"), IOB_EINVAL);
  assert_code(iob_op_set_value(NULL, 1), IOB_EINVAL);
  assert_code(iob_op_set_result(NULL, NULL), IOB_EINVAL);
  assert_code(iob_op_stopping(NULL), IOB_EINVAL);
}

/* A kind that gives a positive status, which no status is. */
static int positive_run(iob_op *op) { return 1 + (int)(op->index % 3); }

static int positive_start(iob_op *op) {
  if (op->index % 2) /* settled inside start() */
    return iob_op_done(op, 1) == 0 ? 0 : IOB_EIO;
  return 2; /* refused at once, with a status no status is */
}

static const iob_kind positive_runs = {.name = "positive", .run = positive_run};
static const iob_kind positive_starts = {.name = "positive-start",
                                         .start = positive_start};

/* The core marks operations in flight with positive numbers; a kind's
 * positive status must not pass for one: it is recorded as IOB_EINVAL,
 * in every style, and the batch ends as usual. */
static void a_positive_status_is_recorded_as_einval(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    for (int starts = 0; starts < 2; starts++) {
      if (starts && (iob_style_flags(style) & IOB_STYLE_ON_THREADS))
        continue; /* start() is for the loop styles */
      iob_config c = config_of(style, 6, 1);
      c.kind = starts ? &positive_starts : &positive_runs;
      c.timeout_ms = 1000; /* a timeout's queue meets the statuses too */
      test_counts n;
      iob_batch *b = run_on_own_loop(&c, &n);
      const iob_record *r = iob_batch_records(b, NULL);
      for (uint32_t i = 0; i < 6; i++)
        if (r[i].status != IOB_EINVAL)
          fail_msg("%s/%s: operation %u ended %d, not IOB_EINVAL",
                   iob_style_name(style), c.kind->name, i, r[i].status);
      assert_int_equal(n.failed, 6);
      iob_batch_free(b);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_positive_status_is_recorded_as_einval),
      cmocka_unit_test(an_operation_hands_back_its_message_value_and_result),
      cmocka_unit_test(outcomes_are_read_only_once_the_batch_is_over),
      cmocka_unit_test(outcomes_are_in_hand_as_each_operation_settles),
      cmocka_unit_test(outcomes_of_cancelled_operations_are_in_hand_too),
      cmocka_unit_test(an_operation_past_its_timeout_is_told_why_it_stops),
      cmocka_unit_test(a_cancelled_operation_is_told_it_was_cancelled),
      cmocka_unit_test(a_cancel_from_inside_start_stops_that_operation_too),
      cmocka_unit_test(a_cancel_once_every_operation_settled_changes_nothing),
      cmocka_unit_test(a_start_out_of_memory_leaves_nothing_on_the_loop),
      cmocka_unit_test(settling_an_operation_not_begun_by_start_is_refused),
      cmocka_unit_test(a_run_on_a_thread_sees_the_cancel_and_may_give_up),
      cmocka_unit_test(a_kind_a_style_cannot_run_is_refused_at_create),
      cmocka_unit_test(styles_and_kinds_are_found_by_name_and_listed),
      cmocka_unit_test(the_defaults_are_a_wait_on_the_loop),
      cmocka_unit_test(an_operation_knows_how_long_it_has_left),
      cmocka_unit_test(op_functions_refuse_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
