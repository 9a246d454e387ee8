/* iobound-compare's command line, kept apart from main() so the tests can
 * call it. */
#ifndef IOB_COMPARE_H
#define IOB_COMPARE_H

#include <stdbool.h>
#include <stddef.h>

#include "iobound.h"

#define COMPARE_EX_USAGE 64 /* sysexits.h's EX_USAGE */

typedef enum compare_action {
  COMPARE_RUN,
  COMPARE_HELP,
  COMPARE_VERSION,
} compare_action;

typedef struct compare_opts {
  compare_action action;
  uint32_t count;
  uint64_t duration_ms;
  iob_style styles[IOB_STYLE_COUNT_]; /* in the order asked for */
  int nstyles;
} compare_opts;

/**
 * Parse the arguments into @p opts.
 * @param[out] error receives a one-line message when parsing fails.
 * @return 0, or COMPARE_EX_USAGE with @p error filled in.
 */
int compare_parse(int argc, char **argv, compare_opts *opts, char *error,
                  size_t error_size);

/** The --help text. */
extern const char compare_usage[];

#endif
