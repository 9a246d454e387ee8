/* The loop style's timer queue on its own (lib/core/deadlines.c): items
 * come out earliest deadline first, never before their deadline, in the
 * order they went in for equal waits, whatever mix of waits. */
#include <stdlib.h>

#include "common.h"
#include "deadlines.h"

#define MSEC UINT64_C(1000000)

typedef struct fixture {
  iob_record records[4096];
  iob_batch batch; /* whose records they are */
  iob__deadlines queue;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  if (f == NULL)
    return -1;
  f->batch.records = f->records;
  f->batch.first = 4096;
  if (iob__deadlines_init(&f->queue, &f->batch) != 0)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  iob__deadlines_free(&f->queue);
  free(f);
  return 0;
}

/* Plan for n items of a wait, as the queue asks before anything is added;
 * then ready(). */
static void plan(fixture *f, uint64_t wait, uint32_t n) {
  assert_int_equal(iob__deadlines_make_list(&f->queue, wait, n), 0);
}

static void ready(fixture *f) {
  assert_int_equal(iob__deadlines_ready(&f->queue), 0);
}

/* Add item i, started at `start`, to end `wait` later. */
static bool add(fixture *f, uint32_t i, uint64_t start, uint64_t wait) {
  f->records[i].started_ns = start;
  return iob__deadlines_add(&f->queue, i, wait);
}

static void an_empty_queue_has_no_deadline_and_gives_nothing(void **state) {
  fixture *f = *state;
  ready(f);
  assert_cmp(iob__deadlines_first(&f->queue), ==, UINT64_MAX);
  assert_int_equal(iob__deadlines_pop(&f->queue, UINT64_MAX), IOB__NO_ITEM);
}

static void items_of_one_wait_come_out_in_the_order_they_went_in(void **s) {
  fixture *f = *s;
  plan(f, 50 * MSEC, 100);
  ready(f);
  for (uint32_t i = 0; i < 100; i++)
    add(f, i, i * MSEC, 50 * MSEC);
  assert_cmp(iob__deadlines_first(&f->queue), ==, 50 * MSEC);
  for (uint32_t i = 0; i < 100; i++)
    assert_int_equal(iob__deadlines_pop(&f->queue, UINT64_MAX), i);
  assert_int_equal(iob__deadlines_pop(&f->queue, UINT64_MAX), IOB__NO_ITEM);
}

static void nothing_comes_out_before_its_deadline(void **state) {
  fixture *f = *state;
  plan(f, 100 * MSEC, 1);
  ready(f);
  add(f, 0, 10 * MSEC, 100 * MSEC); /* due at 110 ms */
  assert_int_equal(iob__deadlines_pop(&f->queue, 110 * MSEC - 1), IOB__NO_ITEM);
  assert_int_equal(iob__deadlines_pop(&f->queue, 110 * MSEC), 0);
}

static void the_earliest_deadline_comes_first_across_waits(void **state) {
  fixture *f = *state;
  plan(f, 300 * MSEC, 2);
  plan(f, 100 * MSEC, 1);
  plan(f, 200 * MSEC, 1);
  ready(f);
  assert_true(add(f, 0, 0, 300 * MSEC)); /* due 300: the first, so earliest */
  assert_true(add(f, 1, 0, 100 * MSEC)); /* due 100: a new earliest */
  assert_false(add(f, 2, 1 * MSEC, 300 * MSEC)); /* behind item 0 */
  assert_false(add(f, 3, 0, 200 * MSEC));        /* 200 is not earlier */
  assert_cmp(iob__deadlines_first(&f->queue), ==, 100 * MSEC);
  uint32_t want[] = {1, 3, 0, 2};
  for (int k = 0; k < 4; k++)
    assert_int_equal(iob__deadlines_pop(&f->queue, UINT64_MAX), want[k]);
}

static void a_wait_of_zero_is_due_at_its_start(void **state) {
  fixture *f = *state;
  plan(f, 0, 1);
  ready(f);
  add(f, 7, 5 * MSEC, 0);
  assert_cmp(iob__deadlines_first(&f->queue), ==, 5 * MSEC);
  assert_int_equal(iob__deadlines_pop(&f->queue, 5 * MSEC), 7);
}

static void
planning_one_wait_twice_makes_one_list_with_room_for_both(void **state) {
  fixture *f = *state;
  plan(f, 42, 1);
  plan(f, 42, 2);
  assert_int_equal(f->queue.nlists, 1);
  assert_int_equal(f->queue.lists[0].room, 3);
}

/* Thousands of distinct waits, added in start order with each start later
 * than the one before, taken out as a timer would: at each moment, every
 * item due then and none that is not, each once. */
static void any_mix_of_waits_comes_out_when_due(void **state) {
  fixture *f = *state;
  enum { N = 4096 };
  srand(12345);
  uint64_t deadline[N], wait[N], last = 0;
  for (uint32_t i = 0; i < N; i++) {
    wait[i] = (uint64_t)(rand() % 1500) * (MSEC / 4);
    plan(f, wait[i], 1);
  }
  ready(f);
  for (uint32_t i = 0; i < N; i++) {
    add(f, i, i * 1000, wait[i]);
    deadline[i] = i * 1000 + wait[i];
    if (deadline[i] > last)
      last = deadline[i];
  }
  assert_cmp(f->queue.nlists, >, 1000);
  uint32_t out = 0;
  for (uint64_t now = 0; now <= last + MSEC; now += 7 * MSEC) {
    uint32_t i;
    while ((i = iob__deadlines_pop(&f->queue, now)) != IOB__NO_ITEM) {
      assert_cmp(i, <, N);
      assert_cmp(deadline[i], <=, now);
      deadline[i] = UINT64_MAX; /* each comes out once */
      out++;
    }
    /* Nothing due is left behind. */
    assert_cmp(iob__deadlines_first(&f->queue), >, now);
    for (uint32_t k = 0; k < N; k++)
      assert_true(deadline[k] == UINT64_MAX || deadline[k] > now);
  }
  assert_int_equal(out, N);
  assert_int_equal(iob__deadlines_pop(&f->queue, UINT64_MAX), IOB__NO_ITEM);
}

/* Taking items out while others go in, as a running loop does. */
static void items_added_between_pops_keep_their_order(void **state) {
  fixture *f = *state;
  plan(f, 10 * MSEC, 2);
  plan(f, 30 * MSEC, 1);
  ready(f);
  add(f, 0, 0, 10 * MSEC);
  add(f, 1, 0, 30 * MSEC);
  assert_int_equal(iob__deadlines_pop(&f->queue, 10 * MSEC), 0);
  add(f, 2, 10 * MSEC, 10 * MSEC); /* due 20: before item 1 */
  assert_cmp(iob__deadlines_first(&f->queue), ==, 20 * MSEC);
  assert_int_equal(iob__deadlines_pop(&f->queue, 25 * MSEC), 2);
  assert_int_equal(iob__deadlines_pop(&f->queue, 25 * MSEC), IOB__NO_ITEM);
  assert_int_equal(iob__deadlines_pop(&f->queue, 30 * MSEC), 1);
}

/* A list of consecutive items needs no links until one breaks the run;
 * then its items keep their order. */
static void a_gap_in_a_run_of_items_keeps_their_order(void **state) {
  fixture *f = *state;
  plan(f, 5 * MSEC, 14);
  ready(f);
  for (uint32_t i = 10; i < 20; i++)
    add(f, i, i, 5 * MSEC);
  add(f, 25, 25, 5 * MSEC); /* a gap: 20..24 were never added */
  add(f, 26, 26, 5 * MSEC);
  for (uint32_t i = 10; i < 20; i++)
    assert_int_equal(iob__deadlines_pop(&f->queue, UINT64_MAX), i);
  assert_int_equal(iob__deadlines_pop(&f->queue, UINT64_MAX), 25);
  assert_int_equal(iob__deadlines_pop(&f->queue, UINT64_MAX), 26);
  assert_int_equal(iob__deadlines_pop(&f->queue, UINT64_MAX), IOB__NO_ITEM);
  /* Emptied, a list starts a new run anywhere. */
  add(f, 3, 30, 5 * MSEC);
  add(f, 4, 31, 5 * MSEC);
  assert_int_equal(iob__deadlines_pop(&f->queue, UINT64_MAX), 3);
  assert_int_equal(iob__deadlines_pop(&f->queue, UINT64_MAX), 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          an_empty_queue_has_no_deadline_and_gives_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(
          items_of_one_wait_come_out_in_the_order_they_went_in, setup,
          teardown),
      cmocka_unit_test_setup_teardown(nothing_comes_out_before_its_deadline,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          the_earliest_deadline_comes_first_across_waits, setup, teardown),
      cmocka_unit_test_setup_teardown(a_wait_of_zero_is_due_at_its_start, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          planning_one_wait_twice_makes_one_list_with_room_for_both, setup,
          teardown),
      cmocka_unit_test_setup_teardown(any_mix_of_waits_comes_out_when_due,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(items_added_between_pops_keep_their_order,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(a_gap_in_a_run_of_items_keeps_their_order,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
