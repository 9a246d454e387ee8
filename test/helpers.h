/* Shared by the test files: cmocka's headers in the order it needs, and
 * the little helpers every area uses. */
#ifndef IOB_TEST_HELPERS_H
#define IOB_TEST_HELPERS_H

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "iobound.h"

#define MS(ns) ((double)(ns) / 1e6)

static inline iob_config config_of(iob_style style, uint32_t count,
                                   uint64_t duration_ms) {
  iob_config c;
  iob_config_init(&c);
  c.style = style;
  c.count = count;
  c.duration_ms = duration_ms;
  return c;
}

/* Run a batch with iob_run() and return its report; the test fails if
 * the run does. */
static inline iob_report report_of(const iob_config *c) {
  iob_batch *b = NULL;
  iob_report r;
  assert_int_equal(iob_run(&b, c), 0);
  assert_int_equal(iob_batch_report(b, &r), 0);
  assert_int_equal(iob_batch_free(b), 0);
  return r;
}

static inline iob_report run_report(iob_style style, uint32_t count,
                                    uint64_t duration_ms) {
  iob_config c = config_of(style, count, duration_ms);
  return report_of(&c);
}

#endif
