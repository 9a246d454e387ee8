/* What a style is given by the core (lib/core/internal.h, struct
 * iob_style): a style made from another by changing one member runs as
 * the other does, and hears each operation settle (settled()) once, after
 * the application's on_op, before the core launches more. And the two
 * styles of loops run one engine (lib/styles/runner.c): the same
 * operations end the same way under both. */
#include "common.h"
#include "internal.h"

typedef struct heard {
  uint32_t on_op, settled;
  uint32_t order_broken; /* settled() before that operation's on_op */
  uint32_t last_on_op;
} heard;

static heard seen;

static void on_op(iob_batch *b, uint32_t index, const iob_record *r) {
  (void)b;
  (void)r;
  seen.on_op++;
  seen.last_on_op = index;
}

static void on_settled(iob_batch *b, uint32_t index) {
  (void)b;
  seen.settled++;
  if (seen.last_on_op != index)
    seen.order_broken++;
}

static void a_style_hears_each_operation_settle_after_on_op(void **state) {
  (void)state;
  const iob_style *bases[] = {&iob_style_loop, &iob_style_pool,
                              &iob_style_threads, &iob_style_workers};
  for (int k = 0; k < 4; k++) {
    iob_style waves = *bases[k]; /* the same style, that listens */
    waves.settled = on_settled;
    seen = (heard){0};
    iob_config c = config_of(&waves, 50, 5);
    c.max_in_flight = 7;
    c.on_op = on_op;
    test_counts n;
    iob_batch *b = run_on_own_loop(&c, &n);
    assert_int_equal(n.ok, 50);
    assert_int_equal(seen.on_op, 50);
    assert_int_equal(seen.settled, 50);
    assert_int_equal(seen.order_broken, 0);
    iob_batch_free(b);
  }
}

/* ---- one loop engine ------------------------------------------------------ */

static int eio_run(iob_op *op) {
  (void)op;
  return IOB_EIO;
}

static const iob_kind eio = {.name = "eio", .run = eio_run};

/* What each operation of the scenario below is, and how it must end. */
typedef struct step {
  const iob_kind *kind;
  uint32_t ms;
  bool cancel_alone; /* at 50 ms */
  int status;
} step;

static const step steps[] = {
    {&iob_kind_wait, 30, false, 0},
    {&iob_kind_wait, 1000, false, IOB_ETIMEDOUT}, /* cut short */
    {&test_kind_later, 20, false, 0},
    {&test_kind_later, 1000, false, IOB_ETIMEDOUT}, /* stopped */
    {&eio, 0, false, IOB_EIO},
    {&test_kind_patient, 5, false, 0}, /* (blocks its loop 5 ms) */
    {&iob_kind_wait, 1000, true, IOB_ECANCELED},
    {&test_kind_later, 1000, true, IOB_ECANCELED},
    {&iob_kind_wait, 0, false, 0},
};
#define NSTEPS (sizeof(steps) / sizeof(steps[0]))
#define TIMEOUT_MS 150

static void cancel_the_marked(test_loop *t, void *arg) {
  (void)t;
  for (uint32_t i = 0; i < NSTEPS; i++)
    if (steps[i].cancel_alone)
      assert_code(iob_batch_cancel_op(arg, i), 0);
}

/* One open batch of every kind of operation a loop runs (a wait, a wait
 * cut short, start() ending and stopped by its timeout, run() failing and
 * succeeding, waits and start() cancelled alone), on `style`. */
static void run_scenario(const iob_style *style, const void *options) {
  test_loop t;
  test_loop_init(&t);
  iob_config c;
  iob_config_init(&c);
  c.style = style;
  c.style_options = options;
  c.open = 1;
  c.timeout_ms = TIMEOUT_MS;
  iob_batch *b = test_loop_create(&t, &c, NULL);
  for (uint32_t i = 0; i < NSTEPS; i++) {
    iob_task task;
    iob_task_init(&task);
    task.kind = steps[i].kind;
    task.duration_ms = steps[i].ms;
    assert_int_equal(iob_batch_submit(b, &task), (int)i);
  }
  assert_code(iob_batch_close(b), 0);
  test_loop_start_created(&t, b);
  test_loop_at(&t, 50, cancel_the_marked, b);
  test_loop_run(&t);
  const iob_record *r = iob_batch_records(b, NULL);
  assert_non_null(r);
  for (uint32_t i = 0; i < NSTEPS; i++) {
    if (r[i].status != steps[i].status)
      fail_msg("%s: operation %u (%s, %u ms) ended %s, expected %s",
               iob_style_name(style), i, steps[i].kind->name, steps[i].ms,
               iob_err_name(r[i].status), iob_err_name(steps[i].status));
    if (steps[i].status == IOB_ETIMEDOUT)
      assert_ms_at_least(MS(r[i].finished_ns - r[i].started_ns), TIMEOUT_MS);
  }
  iob_outcome o;
  assert_code(iob_batch_outcome(b, 2, &o), 0);
  assert_int_equal(o.value, 2); /* kept from start() through its end */
  assert_int_equal(test_loop_counts(&t, b)->batch_status, 0);
  test_loop_close(&t);
  iob_batch_free(b);
}

static void the_loop_styles_end_the_same_operations_the_same_way(void **state) {
  (void)state;
  run_scenario(&iob_style_loop, NULL);
  iob_loops_options one, two;
  iob_loops_options_init(&one);
  iob_loops_options_init(&two);
  one.loops = 1;
  two.loops = 2;
  run_scenario(&iob_style_loops, &one);
  run_scenario(&iob_style_loops, &two);
}

/* ---- what an application sees ---------------------------------------------- */

static uint32_t not_public; /* records seen with a status of the core's */

static void check_public(iob_batch *b, uint32_t index, const iob_record *r) {
  iob_outcome o;
  if (r->status > 0 || iob_batch_outcome(b, index, &o) != 0 ||
      o.status != r->status || r->started_ns > r->finished_ns)
    not_public++;
}

static void cancel_fifth(test_loop *t, void *arg) {
  (void)t;
  assert_code(iob_batch_cancel_op(arg, 5), 0);
}

/* Operations cancelled before the start, cancelled while in flight (on
 * another thread's loop, under loops), timed out and ended: in every
 * style, on_op and the finished batch show only 0 or an error code,
 * never one of the core's markers for an operation in flight. */
static void
every_record_an_application_sees_holds_a_public_status(void **state) {
  (void)state;
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    not_public = 0;
    test_loop t;
    test_loop_init(&t);
    iob_config c = config_of(style, 12, 40);
    c.timeout_ms = 30; /* half time out... */
    uint32_t ms[12] = {10, 10, 10, 10, 10, 80, 80, 80, 80, 80, 80, 80};
    c.durations_ms = ms; /* ...half end */
    c.on_op = check_public;
    iob_batch *b = test_loop_create(&t, &c, NULL);
    assert_code(iob_batch_cancel_op(b, 3), 0); /* before the start */
    test_loop_start_created(&t, b);
    test_loop_at(&t, 5, cancel_fifth, b);
    test_loop_run(&t);
    test_loop_close(&t);
    uint32_t n = 0;
    const iob_record *r = iob_batch_records(b, &n);
    assert_int_equal(n, 12);
    for (uint32_t i = 0; i < n; i++)
      if (r[i].status > 0)
        not_public++;
    if (not_public != 0)
      fail_msg("%s: %u records showed a status of the core's",
               iob_style_name(style), not_public);
    /* (A wait asleep on a thread is told, and recorded as it ends: cut
     * short by the timeout.) */
    if (r[3].status != IOB_ECANCELED || r[5].status == 0)
      fail_msg("%s: cancelled alone, 3 ended %s and 5 %s",
               iob_style_name(style), iob_err_name(r[3].status),
               iob_err_name(r[5].status));
    iob_batch_free(b);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_style_hears_each_operation_settle_after_on_op),
      cmocka_unit_test(the_loop_styles_end_the_same_operations_the_same_way),
      cmocka_unit_test(every_record_an_application_sees_holds_a_public_status),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
