/* What a style is given by the core (lib/core/internal.h, struct
 * iob_style): a style made from another by changing one member runs as
 * the other does, and hears each operation settle (settled()) once, after
 * the application's on_op, before the core launches more. */
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_style_hears_each_operation_settle_after_on_op),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
