/* iobound-compare's command line, kept apart from main() so the tests can
 * call it, and the kinds of operation it runs (compare-work.c). */
#ifndef IOB_COMPARE_H
#define IOB_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "arrivals.h"
#include "cli.h"
#include "iobound.h"

/* The program's name, before each of its messages. */
#define COMPARE_NAME "iobound-compare"

/* The most styles one comparison runs. */
#define COMPARE_STYLES_MAX 16

/* What --work mixed computes after each wait, in µs, unless --cpu-us. */
#define COMPARE_CPU_US_DEFAULT 1000

/* The kind of operation of iobound-pg, a library of its own that the
 * parser does not need: --work takes its name beside the built-in ones. */
#define COMPARE_PG_KIND "pg"
/* Likewise iobound-http's. */
#define COMPARE_HTTP_KIND "http"

/* The most rates one --arrival-rate list sweeps. */
#define COMPARE_RATES_MAX 16
/* The most operations a second --arrival-rate takes: the clock spaces
 * arrivals by the nanosecond. */
#define COMPARE_ARRIVAL_RATE_MAX 1e9
/* How long operations arrive when neither --for nor --count is given. */
#define COMPARE_FOR_DEFAULT_S 2.0

/* The most kinds compare_kind_names() gives. */
#define COMPARE_KINDS_MAX 32

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

/* What --list-styles and --list-kinds ask for: names, one a line. */
typedef enum compare_list {
  COMPARE_LIST_NONE,
  COMPARE_LIST_STYLES,
  COMPARE_LIST_KINDS,
} compare_list;

typedef struct compare_opts {
  cli_action action;
  compare_list list; /* a list to print instead of a run (not over --help) */
  uint32_t count;
  uint64_t duration_ms;
  /* The kind of operation, by name: a built-in kind's (iob_kind_find)
   * or COMPARE_PG_KIND or COMPARE_HTTP_KIND. */
  const char *work;
  uint32_t limit;   /* 0: none */
  double rate;      /* operations a second; 0: none */
  uint32_t burst;   /* with rate; 0: 1 */
  uint32_t retries; /* most retries of an operation; 0: none */
  uint32_t backoff_min_ms, backoff_max_ms; /* before a retry */
  bool backoff_given;
  bool breaker;            /* a circuit breaker for each style's run */
  bool hedge;              /* hedged requests, on the loop styles */
  uint32_t hedge_ms;       /* their delay, or 0 for... */
  double hedge_percentile; /* ...this percentile of the run's times */
  uint64_t timeout_ms;     /* each operation's; 0: none */
  unsigned int pool_size;  /* 0: libuv's own choice */
  compare_format format;
  compare_progress progress;
  bool quiet;
  bool timeline;          /* a text chart under the table */
  const char *svg_path;   /* NULL: no SVG */
  const char *trace_path; /* NULL: no trace */
  const iob_style *styles[COMPARE_STYLES_MAX]; /* in the order asked for */
  int nstyles;
  const char *target;  /* --target HOST:PORT; NULL: start the slow service */
  const char *pg;      /* --pg CONNINFO */
  const char *url;     /* --url URL; NULL: the slow service's /wait/{ms} */
  const char *dir;     /* --dir DIR for --work file; NULL: a new one */
  bool duration_given; /* --duration was given */
  uint32_t cpu_us;     /* --cpu-us N for --work mixed */
  bool cpu_us_given;
  uint32_t loops;   /* --loops N for the loops style; 0: the cores */
  bool count_given; /* --count was given */
  /* --arrival-rate: operations arrive at each of these rates a second in
   * turn, instead of all at once; nrates 0: all at once. */
  double arrival_rates[COMPARE_RATES_MAX];
  int nrates;
  double for_s;        /* --for S: how long they arrive (0: not given) */
  bool poisson;        /* --arrivals poisson: at random, not evenly */
  bool arrivals_given; /* --arrivals was given */
  uint64_t seed;       /* --seed, for --arrivals poisson */
  bool seed_given;
} compare_opts;

/* How many operations arrive at rate number k of --arrival-rate: --count,
 * or the rate times --for (or COMPARE_FOR_DEFAULT_S), rounded. */
uint64_t compare_arrivals(const compare_opts *opts, int k);

/**
 * Parse the arguments into @p opts.
 * @param[out] error receives a one-line message when parsing fails.
 * @return 0, or CLI_EX_USAGE with @p error filled in.
 */
int compare_parse(int argc, char **argv, compare_opts *opts, char *error,
                  size_t error_size);

/**
 * The kinds --work can run in this program: the library's (iob_kind_at()),
 * then iobound-pg's and iobound-http's if it was built with them
 * (IOB_EXAMPLES_PG, IOB_EXAMPLES_HTTP).
 * @param[out] names receives at most @p max names.
 * @return how many.
 */
size_t compare_kind_names(const char **names, size_t max);

/* Does --hedge apply to `style` running `kind`? (The loop styles, kinds
 * with start().) */
bool compare_hedges(const iob_style *style, const iob_kind *kind);

/**
 * Refuse a run whose styles would need more new threads than
 * @p available (iob_threads_available()): one per operation in flight for
 * a style that makes a thread each (IOB_STYLE_THREAD_EACH), the pool's
 * size for the pool style (libuv would abort the process otherwise), the
 * workers style's pool and the loops style's loops.
 * @return 0, or CLI_EX_USAGE with @p error saying the limit.
 */
int compare_check_threads(const compare_opts *opts, uint32_t available,
                          char *error, size_t error_size);

/**
 * Refuse --svg and --trace naming one file (the same path, or the same
 * file by another name: a link, "./x" for "x"): two writers on one file
 * would leave neither output whole.
 * @return 0, or CLI_EX_USAGE with @p error saying which.
 */
int compare_check_outputs(const compare_opts *opts, char *error,
                          size_t error_size);

/** @return the --help text; the lists of names in it come from the
 *  library. */
const char *compare_usage(void);

/* ---- the operations (compare-work.c) ---- */

/**
 * Find the kind, make its target (starting the slow service for tcp
 * without --target); before any thread is made.
 * @return 0; CLI_EX_USAGE or CLI_EX_FAILED, said on stderr.
 */
int compare_work_start(const compare_opts *opts);

/** Make @p config's operations of the kind asked for, on its target. */
void compare_work_use(iob_config *config);

/** Say on stderr why operations of a finished batch failed, given its
 *  report. @return the number that failed. */
uint32_t compare_work_failures(const iob_batch *batch, const iob_report *r);

/** Free the target and stop the service, if started. */
void compare_work_stop(void);

/* How one style did in one run. */
typedef struct compare_result {
  const iob_style *style;
  double arrival_rate; /* operations a second; 0: all at once */
  iob_config config;
  iob_batch *batch; /* finished, kept for the timelines; NULL in a sweep */
  iob_report report;
  iob_latency latency; /* its percentiles, when latency_known */
  bool latency_known;
} compare_result;

/* printf() onto stdout, its failure kept for the exit status. */
CLI_PRINTF(1, 2) void compare_out(const char *fmt, ...);

/* ---- what operations arriving at a rate show (compare-arrive.c) ---- */

/**
 * The lesson of runs with operations arriving at a rate: for each style,
 * the highest rate it kept up with and where it fell behind, and why
 * (how many it can hold at once, Little's law), into @p text.
 * @param r the runs, rate by rate, the styles of one rate together.
 */
void compare_arrive_lesson(const compare_opts *o, const compare_result *r,
                           int n, char *text, size_t size);

/** The table of p99 latency against arrival rate, a row a rate, a column
 *  a style, on stdout. */
void compare_arrive_table(const compare_opts *o, const compare_result *r,
                          int n);

/** The same as an SVG picture: p99 against rate, a line a style.
 *  @return 0 or IOB_EIO (the stream's error). */
int compare_arrive_svg(FILE *f, const compare_opts *o, const compare_result *r,
                       int n, const char *title);

#endif
