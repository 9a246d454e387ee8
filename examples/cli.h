/* What the example programs share: their command lines (getopt_long, with
 * messages the caller prints instead of getopt's own), numbers and
 * addresses checked against their range, the names of the library's
 * styles, sysexits-style exit codes, and the JSON line that reports a
 * batch (iobound-compare and iobound-server write the same keys). */
#ifndef IOB_CLI_H
#define IOB_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "iobound.h"

#if defined(__GNUC__)
#define CLI_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CLI_PRINTF(fmt, args)
#endif

/* ---- exit statuses, as sysexits.h names them ---------------------------- */

#define CLI_EX_FAILED 1     /* it ran, and something failed */
#define CLI_EX_USAGE 64     /* EX_USAGE: bad arguments */
#define CLI_EX_CANTCREAT 73 /* EX_CANTCREAT: an output cannot be written */

/* ---- the command line --------------------------------------------------- */

/** What the arguments ask a program to do. */
typedef enum cli_action {
  CLI_RUN,
  CLI_HELP,
  CLI_VERSION,
} cli_action;

/** Format a message into @p error. @return CLI_EX_USAGE. */
CLI_PRINTF(3, 4)
int cli_fail(char *error, size_t size, const char *fmt, ...);

/**
 * One option of a program, for getopt_long() and for its --help. A table
 * of them ends with an entry whose name is NULL.
 */
typedef struct cli_option {
  /** What cli_next_option() returns for it: a letter, which is then its
   *  short option too ("-q"), or a number from 256 up. */
  int val;
  const char *name; /**< the long option, without "--" */
  const char *arg;  /**< its value's name in the help ("N"); NULL: none */
  /** What it does, for --help, folded to fit; a "%s" in it stands for
   *  the names given to cli_help(). */
  const char *help;
} cli_option;

/** The most options in one table. */
#define CLI_OPTIONS_MAX 48

/** cli_next_option(): every argument has been read. */
#define CLI_END (-1)
/** cli_next_option(): an argument was refused; the message is in error. */
#define CLI_BAD (-2)

/** A command line being read: set the first five fields, and only them. */
typedef struct cli_options {
  int argc;
  char **argv;             /* argv[0] is the program */
  const cli_option *table; /* the options it takes */
  char *error;             /* receives the reason for a refusal */
  size_t size;             /* of error */
  const char *value;       /* the last option's value, or NULL */
  bool started;
} cli_options;

/**
 * The next option, read with getopt_long(). Options come first: the first
 * word that is not one is refused, as are unknown options, missing values
 * and values given to options that take none. Long options may be
 * shortened while they stay unambiguous ("--dur" for "--duration").
 * @return the option's val (its value in o->value); CLI_END after the
 *         last; CLI_BAD with o->error filled in ("unknown option '--x'",
 *         "option '--count' needs a value").
 */
int cli_next_option(cli_options *o);

/**
 * Write the options of @p table as --help shows them, a line or more
 * each: "  -q, --quiet        only the results: no progress...".
 * @param names what a "%s" in a help text stands for; may be NULL.
 * @return out.
 */
const char *cli_help(char *out, size_t size, const cli_option *table,
                     const char *names);

/**
 * Fold @p text at spaces into lines of at most @p width columns, the
 * lines after the first indented by @p indent spaces; a word longer than
 * a line stays whole. Truncated to fit @p size.
 * @return out.
 */
const char *cli_fold(char *out, size_t size, const char *text, size_t width,
                     size_t indent);

/**
 * Copy @p len bytes of @p text into @p out, printable ASCII as it is,
 * backslashes doubled and every other byte as \xNN, so that what a user
 * or a client sent can be shown in a log or an error without reaching a
 * terminal raw. Cut short (with "...") to fit @p size.
 * @return out.
 */
const char *cli_escape(const char *text, size_t len, char *out, size_t size);

/**
 * What main() does once it has parsed its arguments: print a usage error
 * with a hint on stderr ("PROGRAM: ERROR\nTry 'PROGRAM --help'."), the
 * help or the version on stdout.
 * @param status what the parser returned: 0, or an exit status.
 * @return the exit status to end with, or -1 to go on and run.
 */
int cli_settle(const char *program, int status, cli_action action,
               const char *error, const char *usage);

/**
 * Print "PROGRAM: MESSAGE" on stderr, the message escaped as cli_escape()
 * does: a message that quotes an argument, a path or what a service
 * answered must not reach the terminal raw, as cli_settle()'s do not.
 */
CLI_PRINTF(2, 3)
void cli_error(const char *program, const char *fmt, ...);

/**
 * A usage error found after parsing (a connection string the library
 * refuses, say), printed as cli_settle() prints those of the parser:
 * escaped, then "Try 'PROGRAM --help'.".
 * @return CLI_EX_USAGE.
 */
CLI_PRINTF(2, 3)
int cli_usage_error(const char *program, const char *fmt, ...);

/**
 * A whole decimal number in min..max: digits only (no sign, no spaces, no
 * "0x"), of any length: it cannot overflow.
 * @return true with *out set; false, *out untouched.
 */
bool cli_parse_uint(const char *text, uint64_t min, uint64_t max,
                    uint64_t *out);

/**
 * An address to listen on: @p host (IPv4, IPv6 with or without brackets,
 * or localhost) and @p port, read by iob_tcp_address_parse().
 * @return 0, or IOB_EINVAL for anything else (host names, a port above
 *         65535).
 */
int cli_address(const char *host, unsigned port, struct sockaddr_storage *addr);

/* ---- programs that listen: iobound-server, iobound-slow-service --------- */

/** What a program that listens is asked for. */
typedef struct cli_listen {
  cli_action action;
  const char *host;             /* as given: "127.0.0.1" by default */
  unsigned int port;            /* 0 (the default): the system picks one */
  struct sockaddr_storage addr; /* host and port, ready for uv_tcp_bind */
} cli_listen;

/** Their options: --host ADDRESS, --port N, -h/--help, --version. */
extern const cli_option cli_listen_options[];

/**
 * Parse the options of a program that listens (cli_listen_options).
 * @return 0, or CLI_EX_USAGE with @p error filled in.
 */
int cli_parse_listen(int argc, char **argv, cli_listen *listen, char *error,
                     size_t size);

/** An option of a listening program's own: 0, or CLI_EX_USAGE with
 *  @p error filled in. */
typedef int (*cli_extra_fn)(int opt, const char *value, void *arg, char *error,
                            size_t size);

/**
 * The listening options with @p extra (may be NULL) before --help, into
 * @p table: a listening program's own table, for cli_help().
 * @return table.
 */
const cli_option *cli_listen_table(const cli_option *extra,
                                   cli_option table[CLI_OPTIONS_MAX + 1]);

/**
 * Parse as cli_parse_listen() does, and the options of @p extra too, each
 * handed to @p fn with its value and @p arg.
 * @return 0, or CLI_EX_USAGE with @p error filled in.
 */
int cli_parse_listen_with(int argc, char **argv, cli_listen *listen,
                          const cli_option *extra, cli_extra_fn fn, void *arg,
                          char *error, size_t size);

/** The reason phrase of an HTTP status the programs answer with
 *  ("Not Found" for 404), or "Error" for another. */
const char *cli_http_reason(int status);

/* ---- names -------------------------------------------------------------- */

/**
 * Join @p n names into @p out: "a, b or c" with @p sep ", " and @p last
 * " or "; "a,b,c" with "," and ",". Truncated to fit.
 * @return out.
 */
const char *cli_join(char *out, size_t size, const char *const *names, size_t n,
                     const char *sep, const char *last);

/**
 * The names of the library's styles (iob_style_at()) that have any flag
 * in @p flags (0: all of them), joined as by cli_join().
 * @return out.
 */
const char *cli_style_names(char *out, size_t size, unsigned flags,
                            const char *sep, const char *last);

/**
 * Whether operations of @p kind keep the thread they run on busy: they
 * neither wait on the loop (IOB_KIND_WAITS) nor start without blocking
 * (start()), so on a loop style each blocks the loop until it ends.
 */
bool cli_kind_blocks(const iob_kind *kind);

/* ---- JSON ------------------------------------------------------------------ */

/** Write @p text to @p out as a JSON string, quotes, backslashes and
 *  control bytes escaped; NULL as null. */
void cli_json_string(FILE *out, const char *text);

/* ---- the JSON report of a batch ----------------------------------------- */

/** What a batch's line of JSON says. */
typedef struct cli_json_batch {
  const iob_config *config; /* what it was asked to run */
  const iob_report *report; /* how it went */
  /* The sequential style's elapsed time / this batch's, when a sequential
   * batch of the same operations ran; NAN when none did. */
  double vs_sequential;
  /* Its percentiles (iob_batch_latency()); NULL: unknown (nulls). */
  const iob_latency *latency;
  /* Operations a second, when they arrived at a rate; 0: all at once. */
  double arrival_rate;
} cli_json_batch;

/**
 * Write one batch's report as one line of JSON, without a newline:
 * "style", "arrival_rate" (only when they arrived at a rate), "work" (its
 * kind), "count", "duration_ms", "limit",
 * "timeout_ms", "elapsed_ms", "overlap" (the operations' own times added
 * up / elapsed: how many ran at once, on average), "vs_sequential" (null
 * when no sequential batch ran), "peak_in_flight", "threads",
 * "workers_used", "cpu_ms", "failed", "rate_waits", "attempts",
 * "retries", "breaker_refused", "hedges", "hedges_won", the percentiles
 * of the operations' times running "p50_ms", "p90_ms", "p99_ms",
 * "p999_ms", "max_ms", of their times queued "queued_p50_ms" ...
 * "queued_max_ms", and in all "total_p50_ms" ... "total_max_ms" (null
 * when unknown), and "status". Milliseconds and the ratios have three
 * decimals.
 * @return its length, or -1 if it does not fit in @p size bytes.
 */
int cli_json_report(char *out, size_t size, const cli_json_batch *batch);

#endif
