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

/* Real I/O instead of a simulated wait (issue 7). */
typedef enum compare_io {
  COMPARE_SIMULATED,
  COMPARE_TCP, /* requests to the slow service */
  COMPARE_PG,  /* SELECT pg_sleep() on PostgreSQL */
} compare_io;

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
  compare_io io;
  const char *target; /* --target HOST:PORT; NULL: start the slow service */
  const char *pg;     /* --pg CONNINFO */
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

/* ---- real I/O (compare-real.c) ---- */

/** Start the slow service if needed and make the target; before threads.
 *  @return 0, or an error (IOB_EINVAL: a bad argument), said on stderr. */
int compare_real_start(const compare_opts *opts);

/** Make @p config's operations the real ones. @return 0 or an error. */
int compare_real_use(const compare_opts *opts, iob_config *config);

/** Say on stderr why operations of a finished batch failed, given its
 *  report. @return the number that failed. */
uint32_t compare_real_failures(const compare_opts *opts,
                               const iob_batch *batch, const iob_report *r);

/** Free the target and stop the service, if started. */
void compare_real_stop(void);

/** The --help text. */
extern const char compare_usage[];

#endif
