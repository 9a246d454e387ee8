/* iobound-compare's command line, kept apart from main() so the tests can
 * call it. */
#ifndef IOB_COMPARE_H
#define IOB_COMPARE_H

#include <stdbool.h>
#include <stddef.h>

#include "iobound.h"

#define COMPARE_EX_USAGE 64     /* sysexits.h's EX_USAGE */
#define COMPARE_EX_CANTCREAT 73 /* sysexits.h's: cannot write an output */

typedef enum compare_action {
  COMPARE_RUN,
  COMPARE_HELP,
  COMPARE_VERSION,
} compare_action;

typedef enum compare_format {
  COMPARE_TABLE,
  COMPARE_CSV,
  COMPARE_JSON,
} compare_format;

typedef enum compare_progress {
  COMPARE_PROGRESS_AUTO, /* only when stderr is a terminal */
  COMPARE_PROGRESS_ALWAYS,
  COMPARE_PROGRESS_NEVER,
} compare_progress;

typedef struct compare_opts {
  compare_action action;
  uint32_t count;
  uint64_t duration_ms;
  iob_work work;
  uint32_t limit;          /* 0: none */
  unsigned int pool_size;  /* 0: libuv's own choice */
  compare_format format;
  compare_progress progress;
  bool quiet;
  bool timeline;          /* a text chart under the table */
  const char *svg_path;   /* NULL: no SVG */
  const char *trace_path; /* NULL: no trace */
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

/**
 * Refuse a run whose threads style would need more threads at once than
 * @p available (iob_threads_available()).
 * @return 0, or COMPARE_EX_USAGE with @p error saying the limit.
 */
int compare_check_threads(const compare_opts *opts, uint32_t available,
                          char *error, size_t error_size);

/** The --help text. */
extern const char compare_usage[];

#endif
