/* Timelines: the SVG picture, the trace and the terminal chart draw every
 * operation once, with its own times, in files that parse; bad input and
 * broken streams give clear errors. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#include "export.h"

#define OPS 5

/* One finished batch of OPS waits of 5 ms in every style, shared by the
 * tests that only read them. */
typedef struct fixture {
  iob_batch *own[IOB_STYLE_COUNT_];
  const iob_batch *batches[IOB_STYLE_COUNT_];
} fixture;

static int run_every_style(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  if (f == NULL)
    return -1;
  for (int style = 0; style < IOB_STYLE_COUNT_; style++) {
    iob_config c = config_of((iob_style)style, OPS, 5);
    if (iob_run(&f->own[style], &c) != 0)
      return -1;
    f->batches[style] = f->own[style];
  }
  *state = f;
  return 0;
}

static int free_every_style(void **state) {
  fixture *f = *state;
  for (int style = 0; style < IOB_STYLE_COUNT_; style++)
    iob_batch_free(f->own[style]);
  free(f);
  return 0;
}

/* ---- the arithmetic under the pictures ---------------------------------- */

static void slices_hold_the_mean_number_in_flight(void **state) {
  /* Over 0..20 ns in two slices of 10: one op queued 0..5 and running
   * 5..15; one instant op at 12, which adds nothing to a mean. */
  const iob_record records[] = {{0, 5, 15, 0, 0}, {12, 12, 12, 0, 0}};
  double v[3 * IOB__LAYERS];
  iob__slices(records, 2, 20, v, 2);
  assert_true(v[IOB__QUEUED] == 0.5 && v[IOB__OK] == 0.5);
  assert_true(v[IOB__LAYERS + IOB__QUEUED] == 0);
  assert_true(v[IOB__LAYERS + IOB__OK] == 0.5);
  /* Many whole slices at once, and a failed run in its own layer. */
  const iob_record failed = {0, 0, 1000, IOB_ETIMEDOUT, 0};
  double many[11 * IOB__LAYERS];
  iob__slices(&failed, 1, 1000, many, 10);
  for (size_t k = 0; k < 10; k++) {
    assert_true(many[k * IOB__LAYERS + IOB__FAILED] == 1);
    assert_true(many[k * IOB__LAYERS + IOB__OK] == 0);
  }
}

static void numbers_are_written_with_a_point_and_round_ticks(void **state) {
  char buf[32];
  iob__format_decimal(buf, sizeof(buf), 12.25, 1);
  assert_string_equal(buf, "12.3");
  iob__format_decimal(buf, sizeof(buf), -0.04, 1);
  assert_string_equal(buf, "0.0");
  iob__format_decimal(buf, sizeof(buf), -2.5, 2);
  assert_string_equal(buf, "-2.50");
  iob__format_decimal(buf, sizeof(buf), 1.9999, 0);
  assert_string_equal(buf, "2");
  iob__format_ms(buf, sizeof(buf), 2002600000);
  assert_string_equal(buf, "2002.6 ms");
  iob__format_ms(buf, sizeof(buf), 350000);
  assert_string_equal(buf, "0.350 ms");
  assert_int_equal(iob__nice_step(2002600000, 12), 200000000);
  assert_int_equal(iob__nice_step(100000, 4), 50000);
  assert_int_equal(iob__nice_step(0, 4), 1);
  assert_int_equal(iob__nice_step(UINT64_MAX, 1), 5000000000000000000u);
  assert_int_equal(iob__ms_decimals(200000000), 0);
  assert_int_equal(iob__ms_decimals(50000), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(slices_hold_the_mean_number_in_flight),
      cmocka_unit_test(numbers_are_written_with_a_point_and_round_ticks),
  };
  return cmocka_run_group_tests(tests, run_every_style, free_every_style);
}
