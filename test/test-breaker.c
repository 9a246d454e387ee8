/* Circuit breakers (iob_breaker): in front of a dead backend one opens
 * once failures reach their share of a window, and the operations after
 * fail at once with IOB_EBREAKER without a call, in every style; after
 * its open time a probe goes through, and its outcome closes the breaker
 * or opens it again; batches share one; options that cannot mean
 * anything are refused. Every loop closes (uv_loop_close() == 0). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

static iob_config flaky_config(const iob_style *style, uint32_t count,
                               test_flaky *f, iob_breaker *k) {
  iob_config c = config_of(style, count, 1);
  c.kind = &test_kind_flaky;
  c.target = f;
  c.breaker = k;
  return c;
}

static iob_breaker *breaker_of(uint32_t min_outcomes, uint32_t open_ms) {
  iob_breaker_options o;
  iob_breaker_options_init(&o);
  o.min_outcomes = min_outcomes;
  o.open_ms = open_ms;
  iob_breaker *k;
  assert_code(iob_breaker_create(&k, &o), 0);
  return k;
}

/* A dead backend, 40 operations one at a time, a breaker that opens at
 * half of at least 10 outcomes: it is called 10 times, and the other 30
 * fail at once, in every style. */
static void a_breaker_stops_calling_a_dead_backend(void **state) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_breaker *breaker = breaker_of(10, 60000);
    test_flaky f = {.status = UV_ECONNREFUSED};
    atomic_store(&f.down, true);
    iob_config c = flaky_config(style, 40, &f, breaker);
    c.max_in_flight = 1;
    iob_batch *b = run_on_own_loop(&c, NULL);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    if (atomic_load(&f.attempts) != 10 || r.breaker_refused != 30)
      fail_msg("%s: %u calls, %u refused", iob_style_name(style),
               atomic_load(&f.attempts), r.breaker_refused);
    const iob_record *rec = iob_batch_records(b, NULL);
    assert_code(rec[9].status, UV_ECONNREFUSED);
    for (uint32_t i = 10; i < 40; i++) {
      assert_code(rec[i].status, IOB_EBREAKER);
      assert_cmp(rec[i].finished_ns, ==, rec[i].started_ns);
    }
    assert_int_equal(r.failed, 40);
    assert_int_equal(iob_breaker_state_of(breaker), IOB_BREAKER_OPEN);
    assert_int_equal(iob_breaker_trips(breaker), 1);
    assert_code(iob_batch_free(b), 0);
    iob_breaker_free(breaker);
  }
}

/* Open for 100 ms: a batch after that sends one probe; the backend back
 * up, the probe closes the breaker and the rest run. Down again, the
 * probe opens it again. */
static void a_probe_closes_the_breaker_or_opens_it_again(void **state) {
  iob_breaker *breaker = breaker_of(4, 100);
  test_flaky f = {.status = IOB_EIO};
  atomic_store(&f.down, true);
  iob_config c = flaky_config(&iob_style_loop, 8, &f, breaker);
  c.max_in_flight = 1;
  iob_batch *b = run_on_own_loop(&c, NULL);
  assert_int_equal(iob_breaker_state_of(breaker), IOB_BREAKER_OPEN);
  assert_int_equal(atomic_load(&f.attempts), 4);
  assert_code(iob_batch_free(b), 0);

  uv_sleep(120); /* its open time is over */
  atomic_store(&f.down, false);
  b = run_on_own_loop(&c, NULL);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.failed, 0);
  assert_int_equal(r.breaker_refused, 0);
  assert_int_equal(iob_breaker_state_of(breaker), IOB_BREAKER_CLOSED);
  assert_code(iob_batch_free(b), 0);

  /* Down again: four failures open it; after its time, the probe fails
   * and opens it again, and the batch's others are refused. */
  atomic_store(&f.down, true);
  b = run_on_own_loop(&c, NULL);
  assert_int_equal(iob_breaker_trips(breaker), 2);
  assert_code(iob_batch_free(b), 0);
  uv_sleep(120);
  unsigned before = atomic_load(&f.attempts);
  b = run_on_own_loop(&c, NULL);
  assert_int_equal(atomic_load(&f.attempts), before + 1); /* the probe */
  assert_int_equal(iob_breaker_trips(breaker), 3);
  assert_int_equal(iob_breaker_state_of(breaker), IOB_BREAKER_OPEN);
  assert_code(iob_batch_free(b), 0);
  iob_breaker_free(breaker);
}

/* Failures below the share leave it closed: 30 successes, then 10
 * failures (a quarter of 40). */
static void failures_below_the_share_leave_it_closed(void **state) {
  iob_breaker *breaker = breaker_of(10, 60000);
  test_flaky ok = {.status = IOB_EIO}, dead = {.status = IOB_EIO};
  atomic_store(&dead.down, true);
  iob_config c = flaky_config(&iob_style_threads, 30, &ok, breaker);
  iob_batch *good = run_on_own_loop(&c, NULL);
  c = flaky_config(&iob_style_threads, 10, &dead, breaker);
  iob_batch *bad = run_on_own_loop(&c, NULL);
  assert_int_equal(iob_breaker_state_of(breaker), IOB_BREAKER_CLOSED);
  assert_int_equal(iob_breaker_trips(breaker), 0);
  iob_report r;
  assert_code(iob_batch_report(bad, &r), 0);
  assert_int_equal(r.failed, 10);
  assert_int_equal(r.breaker_refused, 0);
  assert_code(iob_batch_free(good), 0);
  assert_code(iob_batch_free(bad), 0);
  iob_breaker_free(breaker);
}

/* Two batches on one loop share a breaker: the failures of one open it
 * for the other. */
static void batches_share_a_breaker(void **state) {
  iob_breaker *breaker = breaker_of(5, 60000);
  test_flaky dead = {.status = IOB_EIO};
  atomic_store(&dead.down, true);
  test_flaky alive = {.status = IOB_EIO};
  test_loop t;
  test_loop_init(&t);
  iob_config a = flaky_config(&iob_style_loop, 5, &dead, breaker);
  iob_batch *first = test_loop_start(&t, &a, NULL);
  test_loop_run(&t);
  iob_config b = flaky_config(&iob_style_loop, 5, &alive, breaker);
  iob_batch *second = test_loop_start(&t, &b, NULL);
  test_loop_run(&t);
  test_loop_close(&t);
  iob_report r;
  assert_code(iob_batch_report(second, &r), 0);
  assert_int_equal(r.breaker_refused, 5);
  assert_int_equal(atomic_load(&alive.attempts), 0);
  assert_code(iob_batch_free(first), 0);
  assert_code(iob_batch_free(second), 0);
  iob_breaker_free(breaker);
}

/* One open batch calls two backends, each behind a breaker of its own
 * (its tasks'): the dead one's opens and refuses its operations, the
 * live one's stays closed and its operations all run; the batch has no
 * breaker. */
static void each_operation_may_have_a_breaker_of_its_own(void **state) {
  iob_breaker *dead_breaker = breaker_of(5, 60000);
  iob_breaker *live_breaker = breaker_of(5, 60000);
  test_flaky dead = {.status = UV_ECONNREFUSED}, live = {.fails = 0};
  atomic_store(&dead.down, true);
  iob_config c = flaky_config(&iob_style_loop, 0, &live, NULL);
  c.open = 1;
  c.max_in_flight = 1;
  test_loop t;
  test_loop_init(&t);
  iob_batch *b = test_loop_create(&t, &c, NULL);
  iob_task task = test_task(&test_kind_flaky, NULL, 1);
  for (uint32_t i = 0; i < 40; i++) {
    task.target = i % 2 ? (const void *)&live : (const void *)&dead;
    task.breaker = i % 2 ? live_breaker : dead_breaker;
    assert_int_equal(iob_batch_submit(b, &task), (int)i);
  }
  assert_code(iob_batch_close(b), 0);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  test_loop_close(&t);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(atomic_load(&dead.attempts), 5);
  assert_int_equal(atomic_load(&live.attempts), 20);
  assert_int_equal(r.breaker_refused, 15);
  const iob_record *rec = iob_batch_records(b, NULL);
  for (uint32_t i = 1; i < 40; i += 2)
    assert_int_equal(rec[i].status, 0);
  assert_code(rec[38].status, IOB_EBREAKER);
  assert_int_equal(iob_breaker_state_of(dead_breaker), IOB_BREAKER_OPEN);
  assert_int_equal(iob_breaker_state_of(live_breaker), IOB_BREAKER_CLOSED);
  assert_code(iob_batch_free(b), 0);
  iob_breaker_free(dead_breaker);
  iob_breaker_free(live_breaker);
}

static void options_out_of_range_are_refused(void **state) {
  iob_breaker *k = (iob_breaker *)&k;
  assert_code(iob_breaker_create(NULL, NULL), IOB_EINVAL);
  iob_breaker_options o;
  double ratios[] = {0, -0.5, 1.5, NAN};
  for (size_t j = 0; j < sizeof(ratios) / sizeof(*ratios); j++) {
    iob_breaker_options_init(&o);
    o.failure_ratio = ratios[j];
    assert_code(iob_breaker_create(&k, &o), IOB_ERANGE);
    assert_null(k);
  }
  iob_breaker_options_init(&o);
  o.min_outcomes = 0;
  assert_code(iob_breaker_create(&k, &o), IOB_ERANGE);
  iob_breaker_options_init(&o);
  o.window_ms = 999;
  assert_code(iob_breaker_create(&k, &o), IOB_ERANGE);
  iob_breaker_options_init(&o);
  o.open_ms = 0;
  assert_code(iob_breaker_create(&k, &o), IOB_ERANGE);
  iob_breaker_options_init(&o);
  o.probes = 0;
  assert_code(iob_breaker_create(&k, &o), IOB_ERANGE);
  assert_code(iob_breaker_create(&k, NULL), 0); /* the defaults */
  assert_int_equal(iob_breaker_state_of(k), IOB_BREAKER_CLOSED);
  iob_breaker_free(k);
  iob_breaker_free(NULL);
  iob_breaker_options_init(NULL);
  assert_int_equal(iob_breaker_state_of(NULL), IOB_BREAKER_CLOSED);
  assert_int_equal(iob_breaker_trips(NULL), 0);
  assert_string_equal(iob_err_name(IOB_EBREAKER), "IOB_EBREAKER");
  assert_non_null(strstr(iob_strerror(IOB_EBREAKER), "circuit breaker"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_breaker_stops_calling_a_dead_backend),
      cmocka_unit_test(a_probe_closes_the_breaker_or_opens_it_again),
      cmocka_unit_test(failures_below_the_share_leave_it_closed),
      cmocka_unit_test(batches_share_a_breaker),
      cmocka_unit_test(each_operation_may_have_a_breaker_of_its_own),
      cmocka_unit_test(options_out_of_range_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
