/* iobound-compare's arguments: defaults, every flag, every bad value; and
 * what the example programs share (cli.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../examples/compare.h"
#include "helpers.h"

/* Built as iobound-compare is: with the kinds of iobound-pg and
 * iobound-http when it has them (examples/meson.build). */
#ifndef IOB_EXAMPLES_PG
#define IOB_EXAMPLES_PG 0
#endif
#ifndef IOB_EXAMPLES_HTTP
#define IOB_EXAMPLES_HTTP 0
#endif

#define PARSE(o, err, ...)                                                     \
  parse_args((char *[]){"iobound-compare", __VA_ARGS__, NULL}, o, err)

static int parse_args(char **argv, compare_opts *o, char *err) {
  int argc = 0;
  while (argv[argc] != NULL)
    argc++;
  return compare_parse(argc, argv, o, err, 256);
}

/* The library's styles by name, each followed by `sep`, in its order
 * (or in reverse), joined here rather than by cli.c. */
static char *every_style(char *out, size_t size, const char *sep,
                         bool reverse) {
  size_t n = style_count(), len = 0;
  out[0] = '\0';
  for (size_t k = 0; k < n; k++) {
    const iob_style *style = iob_style_at(reverse ? n - 1 - k : k);
    len += (size_t)snprintf(out + len, size - len, "%s%s", k ? sep : "",
                            iob_style_name(style));
    assert_cmp(len, <, size);
  }
  return out;
}

/* Whether `word` is in `text` between non-letters: "loop" is not in
 * "loops". */
static bool has_word(const char *text, const char *word) {
  size_t n = strlen(word);
  for (const char *at = text; (at = strstr(at, word)) != NULL; at++) {
    bool start = at == text || !(at[-1] >= 'a' && at[-1] <= 'z');
    bool end = !(at[n] >= 'a' && at[n] <= 'z');
    if (start && end)
      return true;
  }
  return false;
}

static void no_arguments_give_the_tutorials_case_in_every_style(void **s) {
  compare_opts o;
  char err[256] = "";
  char *argv[] = {"iobound-compare", NULL};
  assert_int_equal(compare_parse(1, argv, &o, err, sizeof(err)), 0);
  assert_int_equal(o.action, CLI_RUN);
  assert_int_equal(o.count, 10);
  assert_int_equal(o.duration_ms, 200);
  /* Every style of the library, in its order. */
  assert_int_equal(o.nstyles, style_count());
  for (int k = 0; k < o.nstyles; k++)
    assert_ptr_equal(o.styles[k], iob_style_at((size_t)k));
  assert_string_equal(o.work, "wait");
  assert_int_equal(o.limit, 0);
  assert_int_equal(o.pool_size, 0);
  assert_int_equal(o.format, COMPARE_TABLE);
  assert_int_equal(o.progress, COMPARE_PROGRESS_AUTO);
  assert_false(o.quiet);
}

static void every_flag_is_understood_in_both_spellings(void **state) {
  compare_opts o;
  char err[256];
  assert_int_equal(
      PARSE(&o, err, "--count", "25", "--duration=7", "--styles", "pool,loop"),
      0);
  assert_int_equal(o.count, 25);
  assert_int_equal(o.duration_ms, 7);
  assert_int_equal(o.nstyles, 2);
  assert_ptr_equal(o.styles[0], &iob_style_pool);
  assert_ptr_equal(o.styles[1], &iob_style_loop);
  assert_int_equal(PARSE(&o, err, "--count=3", "--styles=loop"), 0);
  assert_int_equal(o.count, 3);
  assert_int_equal(o.nstyles, 1);
  assert_int_equal(PARSE(&o, err, "--work", "cpu", "--limit=5", "--pool-size",
                         "8", "--format", "json", "--progress=never", "-q",
                         "--styles=threads"),
                   0);
  assert_string_equal(o.work, "cpu");
  assert_int_equal(o.limit, 5);
  assert_int_equal(o.pool_size, 8);
  assert_int_equal(o.format, COMPARE_JSON);
  assert_int_equal(o.progress, COMPARE_PROGRESS_NEVER);
  assert_true(o.quiet);
  assert_ptr_equal(o.styles[0], &iob_style_threads);
  assert_int_equal(PARSE(&o, err, "--format=csv", "--progress", "always",
                         "--quiet", "--work=wait"),
                   0);
  assert_int_equal(o.format, COMPARE_CSV);
  assert_int_equal(o.progress, COMPARE_PROGRESS_ALWAYS);
  assert_string_equal(o.work, "wait");
  assert_false(o.timeline);
  assert_null(o.svg_path);
  assert_int_equal(
      PARSE(&o, err, "--timeline", "--svg", "a.svg", "--trace=b.json"), 0);
  assert_true(o.timeline);
  assert_string_equal(o.svg_path, "a.svg");
  assert_string_equal(o.trace_path, "b.json");
  assert_int_equal(PARSE(&o, err, "--help"), 0);
  assert_int_equal(o.action, CLI_HELP);
  assert_int_equal(PARSE(&o, err, "-h"), 0);
  assert_int_equal(o.action, CLI_HELP);
  assert_int_equal(PARSE(&o, err, "--version"), 0);
  assert_int_equal(o.action, CLI_VERSION);
  assert_non_null(strstr(compare_usage(), "--styles"));
  /* The help lists the library's styles and kinds, read from its
   * tables. */
  char styles[256];
  assert_non_null(
      strstr(compare_usage(), every_style(styles, sizeof(styles), ",", false)));
  const iob_kind *kind;
  for (size_t k = 0; (kind = iob_kind_at(k)) != NULL; k++)
    if (!has_word(compare_usage(), kind->name))
      fail_msg("--help does not name the kind %s", kind->name);
  assert_non_null(strstr(compare_usage(), "--list-styles"));
  assert_non_null(strstr(compare_usage(), "--list-kinds"));
}

/* --arrival-rate and its companions: a list of rates, a count from
 * --for (2 s unless given) or --count, never both unless they agree. */
static void
arrivals_at_a_rate_are_parsed_and_contradictions_refused(void **state) {
  (void)state;
  compare_opts o;
  char err[256] = "";
  assert_int_equal(PARSE(&o, err, "--arrival-rate", "50"), 0);
  assert_int_equal(o.nrates, 1);
  assert_cmp(o.arrival_rates[0], ==, 50);
  assert_int_equal(compare_arrivals(&o, 0), 100); /* 2 s by default */
  assert_false(o.poisson);
  assert_int_equal(PARSE(&o, err, "--arrival-rate=10,20.5,40", "--for", "3",
                         "--arrivals", "poisson", "--seed", "7"),
                   0);
  assert_int_equal(o.nrates, 3);
  assert_cmp(o.arrival_rates[1], ==, 20.5);
  assert_int_equal(compare_arrivals(&o, 1), 62); /* 61.5, rounded */
  assert_int_equal(o.count, 120); /* the most, for the thread checks */
  assert_true(o.poisson);
  assert_int_equal(o.seed, 7);
  assert_int_equal(PARSE(&o, err, "--arrival-rate", "5", "--count", "12"), 0);
  assert_int_equal(compare_arrivals(&o, 0), 12);
  /* --count and --for may both be given only when they agree. */
  assert_int_equal(
      PARSE(&o, err, "--arrival-rate", "5", "--count", "10", "--for", "2"), 0);
  static const char *const bad[][7] = {
      {"--arrival-rate", "0", NULL},
      {"--arrival-rate", "-5", NULL},
      {"--arrival-rate", "2e9", NULL},
      {"--arrival-rate", "fast", NULL},
      {"--arrival-rate", "10,", NULL},
      {"--arrival-rate", ",10", NULL},
      {"--arrival-rate", "nan", NULL},
      {"--arrival-rate", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", NULL},
      {"--for", "2", NULL},
      {"--arrivals", "poisson", NULL},
      {"--arrivals", "even", NULL},
      {"--arrival-rate", "20,10", NULL},
      {"--arrival-rate", "10,10", NULL},
      {"--arrival-rate", "0.001", "--count", "100", NULL},
      {"--arrival-rate", "5", "--arrivals", "bursty", NULL},
      {"--arrival-rate", "5", "--seed", "3", NULL},
      {"--arrival-rate", "5", "--for", "0", NULL},
      {"--arrival-rate", "5", "--for", "-1", NULL},
      {"--arrival-rate", "5", "--count", "10", "--for", "3", NULL},
      {"--arrival-rate", "0.1", "--for", "1", NULL},
      {"--arrival-rate", "1e9", "--for", "86400", NULL},
      {"--arrival-rate", "5,10", "--timeline", NULL},
      {"--arrival-rate", "5,10", "--trace", "t.json", NULL},
  };
  static const char *const words[] = {
      "--arrival-rate",
      "--arrival-rate",
      "--arrival-rate",
      "--arrival-rate",
      "--arrival-rate",
      "--arrival-rate",
      "--arrival-rate",
      "at most 16",
      "--for goes with --arrival-rate",
      "--arrivals goes with",
      "--arrivals goes with",
      "increasing order",
      "increasing order",
      "more than a day",
      "even or poisson",
      "--seed goes with --arrivals poisson",
      "--for takes",
      "--for takes",
      "contradicts",
      "makes no operation",
      "more than the",
      "--timeline draws one run",
      "--trace draws one run",
  };
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    char *argv[9] = {"iobound-compare"};
    for (int a = 0; bad[k][a] != NULL; a++)
      argv[a + 1] = (char *)bad[k][a];
    err[0] = '\0';
    int rc = parse_args(argv, &o, err);
    if (rc != CLI_EX_USAGE || strstr(err, words[k]) == NULL)
      fail_msg("%s %s: rc %d, '%s' (wanted '%s')", bad[k][0], bad[k][1], rc,
               err, words[k]);
  }
}

/* --list-styles and --list-kinds ask for the names, not a run; what the
 * program prints is the library's tables (iob_style_at(), and
 * compare_kind_names()). */
static void the_lists_of_styles_and_kinds_are_asked_for_by_flags(void **s) {
  compare_opts o;
  char err[256] = "";
  assert_int_equal(PARSE(&o, err, "--count", "3"), 0);
  assert_int_equal(o.list, COMPARE_LIST_NONE);
  assert_int_equal(PARSE(&o, err, "--list-styles"), 0);
  assert_int_equal(o.list, COMPARE_LIST_STYLES);
  assert_int_equal(o.action, CLI_RUN);
  assert_int_equal(PARSE(&o, err, "--list-kinds"), 0);
  assert_int_equal(o.list, COMPARE_LIST_KINDS);
  assert_int_equal(PARSE(&o, err, "--list-styles", "--list-kinds"), 0);
  assert_int_equal(o.list, COMPARE_LIST_KINDS); /* the last one */
  assert_int_equal(PARSE(&o, err, "--list-kinds", "--help"), 0);
  assert_int_equal(o.action, CLI_HELP); /* which cli_settle() answers */
  assert_int_equal(PARSE(&o, err, "--list-styles=x"), CLI_EX_USAGE);

  /* Every kind of the library, in its order, then those of the libraries
   * this build has. */
  const char *names[COMPARE_KINDS_MAX];
  size_t n = compare_kind_names(names, COMPARE_KINDS_MAX), k = 0;
  for (const iob_kind *kind; (kind = iob_kind_at(k)) != NULL; k++) {
    assert_cmp(k, <, n);
    assert_string_equal(names[k], kind->name);
  }
#if IOB_EXAMPLES_PG
  assert_string_equal(names[k++], COMPARE_PG_KIND);
#endif
#if IOB_EXAMPLES_HTTP
  assert_string_equal(names[k++], COMPARE_HTTP_KIND);
#endif
  assert_int_equal(n, k);
  assert_int_equal(compare_kind_names(names, 2), 2);
}

static void bad_values_are_refused_with_a_message_naming_them(void **s) {
  static const char *const bad[][2] = {
      {"--count", "0"},
      {"--count", "-3"},
      {"--count", "12abc"},
      {"--count", "268435457"},
      {"--count", ""},
      {"--duration", "-1"},
      {"--duration", "4294967296"},
      {"--duration", "1.5"},
      {"--styles", "loop,fibers"},
      {"--styles", ","},
      {"--bogus", "1"},
      {"--work", "user"},
      {"--work", "sleep"},
      {"--limit", "-1"},
      {"--pool-size", "0"},
      {"--pool-size", "1025"},
      {"--format", "xml"},
      {"--progress", "sometimes"},
      {"--svg", ""},
      {"--target", "example.org:80"},
      {"--target", "127.0.0.1"},
      {"--target", "127.0.0.1:70000"},
      {"--target", "[::1:80"},
  };
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    compare_opts o;
    char err[256] = "";
    int rc = PARSE(&o, err, (char *)bad[k][0], (char *)bad[k][1]);
    assert_int_equal(rc, CLI_EX_USAGE);
    assert_cmp(strlen(err), >, 0);
    /* The message quotes what was wrong. */
    assert_non_null(strstr(err, bad[k][0][2] == 'b' ? "--bogus" : bad[k][1]));
  }
}

static void
a_list_of_styles_names_each_style_once_with_no_empty_item(void **state) {
  /* Each refused with what is wrong with it, and the list as given. */
  static const char *const bad[][2] = {
      {"", "--styles takes at least one style, not ''"},
      {",", "--styles takes no leading comma, not ','"},
      {",loop", "--styles takes no leading comma, not ',loop'"},
      {"loop,", "--styles takes no trailing comma, not 'loop,'"},
      {"loop,pool,", "--styles takes no trailing comma, not 'loop,pool,'"},
      {"loop,,pool",
       "--styles takes no empty item between two commas, not 'loop,,pool'"},
      {"loop,loop", "--styles takes each style once, not 'loop,loop' (loop "
                    "twice)"},
      {"pool,loop,threads,loop",
       "--styles takes each style once, not 'pool,loop,threads,loop' (loop "
       "twice)"},
  };
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    compare_opts o;
    char err[256] = "";
    assert_int_equal(PARSE(&o, err, "--styles", (char *)bad[k][0]),
                     CLI_EX_USAGE);
    assert_string_equal(err, bad[k][1]);
  }
  /* A name that is no style is refused with the library's styles. */
  compare_opts o;
  char err[256] = "", styles[256], want[320];
  snprintf(want, sizeof(want),
           "--styles takes a comma-separated list from %s, not "
           "'loop,fibers,pool' (no style 'fibers')",
           every_style(styles, sizeof(styles), ",", false));
  assert_int_equal(PARSE(&o, err, "--styles", "loop,fibers,pool"),
                   CLI_EX_USAGE);
  assert_string_equal(err, want);
  /* Every style once, in any order, is a list. */
  assert_int_equal(PARSE(&o, err, "--styles",
                         every_style(styles, sizeof(styles), ",", true)),
                   0);
  assert_int_equal(o.nstyles, style_count());
  for (int k = 0; k < o.nstyles; k++)
    assert_ptr_equal(o.styles[k], iob_style_at(style_count() - 1 - (size_t)k));
}

static void
a_url_with_a_control_byte_is_refused_as_the_library_would(void **state) {
  compare_opts o;
  char err[256] = "";
  assert_int_equal(
      PARSE(&o, err, "--work", "http", "--url", "http://x/\x1b[2J"),
      CLI_EX_USAGE);
  assert_string_equal(
      err, "--url takes a URL without control bytes, not 'http://x/\x1b[2J'");
  assert_int_equal(PARSE(&o, err, "--work", "http", "--url", "http://x/a\tb"),
                   CLI_EX_USAGE);
  assert_int_equal(PARSE(&o, err, "--work", "http", "--url", "http://x/\x7f"),
                   CLI_EX_USAGE);
  /* Bytes past ASCII are the server's business (UTF-8 in a path). */
  assert_int_equal(
      PARSE(&o, err, "--work", "http", "--url", "http://x/\xc3\xa9"), 0);
}

/* A file of the given name under `dir`: "DIR/NAME". */
static const char *in_dir(char *out, size_t size, const char *dir,
                          const char *name) {
  snprintf(out, size, "%s/%s", dir, name);
  return out;
}

static void svg_and_trace_on_one_file_are_refused(void **state) {
  char dir[] = "/tmp/iobound-test-cli-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char a[128], b[128], c[128], err[256] = "";
  in_dir(a, sizeof(a), dir, "a");
  in_dir(b, sizeof(b), dir, "b");
  compare_opts o;
  /* Two files, or only one output: nothing to refuse. */
  assert_int_equal(PARSE(&o, err, "--svg", a, "--trace", b), 0);
  assert_int_equal(compare_check_outputs(&o, err, sizeof(err)), 0);
  assert_int_equal(PARSE(&o, err, "--svg", a), 0);
  assert_int_equal(compare_check_outputs(&o, err, sizeof(err)), 0);
  /* The same path, whether or not the file exists yet. */
  assert_int_equal(PARSE(&o, err, "--svg", a, "--trace", a), 0);
  assert_int_equal(compare_check_outputs(&o, err, sizeof(err)), CLI_EX_USAGE);
  assert_non_null(strstr(err, "--svg and --trace take a file each"));
  assert_non_null(strstr(err, a));
  /* Another name of a file yet to be made: the same name, same directory. */
  snprintf(c, sizeof(c), "%s/./a", dir);
  assert_int_equal(PARSE(&o, err, "--svg", a, "--trace", c), 0);
  assert_int_equal(compare_check_outputs(&o, err, sizeof(err)), CLI_EX_USAGE);
  assert_non_null(strstr(err, "are one file"));
  /* Another name of a file that exists: a hard link, a symbolic one. */
  FILE *f = fopen(a, "w");
  assert_non_null(f);
  fclose(f);
  assert_int_equal(link(a, b), 0);
  assert_int_equal(PARSE(&o, err, "--svg", a, "--trace", b), 0);
  assert_int_equal(compare_check_outputs(&o, err, sizeof(err)), CLI_EX_USAGE);
  assert_non_null(strstr(err, "are one file"));
  in_dir(c, sizeof(c), dir, "c");
  assert_int_equal(symlink(a, c), 0);
  assert_int_equal(PARSE(&o, err, "--svg", c, "--trace", a), 0);
  assert_int_equal(compare_check_outputs(&o, err, sizeof(err)), CLI_EX_USAGE);
  /* A file that exists and one that does not are two files. */
  assert_int_equal(unlink(b), 0);
  assert_int_equal(PARSE(&o, err, "--svg", a, "--trace", b), 0);
  assert_int_equal(compare_check_outputs(&o, err, sizeof(err)), 0);
  unlink(c);
  unlink(a);
  rmdir(dir);
}

static void too_many_threads_are_refused_with_the_limit_and_a_hint(void **s) {
  compare_opts o;
  char err[256] = "";
  assert_int_equal(PARSE(&o, err, "--count", "50000"), 0);
  assert_int_equal(compare_check_threads(&o, 30000, err, sizeof(err)),
                   CLI_EX_USAGE);
  assert_non_null(strstr(err, "the threads style"));
  assert_non_null(strstr(err, "50000 threads"));
  assert_non_null(strstr(err, "about 30000"));
  assert_non_null(strstr(err, "--limit 30000"));
  /* A limit, or no threads style, makes it fine. */
  assert_int_equal(PARSE(&o, err, "--count", "50000", "--limit", "100"), 0);
  assert_int_equal(compare_check_threads(&o, 30000, err, sizeof(err)), 0);
  assert_int_equal(PARSE(&o, err, "--count", "50000", "--styles", "loop"), 0);
  assert_int_equal(compare_check_threads(&o, 30000, err, sizeof(err)), 0);
  /* The pool's threads are the pool's: no thread per operation. */
  assert_int_equal(PARSE(&o, err, "--count", "50000", "--styles", "pool"), 0);
  assert_int_equal(compare_check_threads(&o, 30000, err, sizeof(err)), 0);
  /* But the pool needs its own threads at its first use: libuv would
   * abort the process if the system refused one. */
  assert_int_equal(PARSE(&o, err, "--styles", "pool", "--pool-size", "300"), 0);
  assert_int_equal(compare_check_threads(&o, 100, err, sizeof(err)),
                   CLI_EX_USAGE);
  assert_non_null(strstr(err, "the pool style would start 300 threads"));
  assert_non_null(strstr(err, "about 100 more"));
  assert_non_null(strstr(err, "--pool-size 100"));
  /* The workers' pool and the loops start their threads too. */
  assert_int_equal(
      PARSE(&o, err, "--styles", "workers", "--limit", "64", "--count", "100"),
      0);
  assert_int_equal(compare_check_threads(&o, 16, err, sizeof(err)),
                   CLI_EX_USAGE);
  assert_non_null(strstr(err, "the workers style would start 64 threads"));
  assert_non_null(strstr(err, "--limit 16"));
  assert_int_equal(
      PARSE(&o, err, "--styles", "loops", "--loops", "200", "--count", "1000"),
      0);
  assert_int_equal(compare_check_threads(&o, 50, err, sizeof(err)),
                   CLI_EX_USAGE);
  assert_non_null(strstr(err, "the loops style would start 200 threads"));
  assert_non_null(strstr(err, "--loops 50"));
  /* No more loops than operations: 3 need 3 threads. */
  assert_int_equal(
      PARSE(&o, err, "--styles", "loops", "--loops", "200", "--count", "3"), 0);
  assert_int_equal(compare_check_threads(&o, 50, err, sizeof(err)), 0);
  /* With none to be had, there is no number to suggest. */
  assert_int_equal(PARSE(&o, err, "--styles", "loop,threads"), 0);
  assert_int_equal(compare_check_threads(&o, 0, err, sizeof(err)),
                   CLI_EX_USAGE);
  assert_non_null(strstr(err, "the threads style needs threads"));
  assert_null(strstr(err, "--limit 0"));
}

static void a_timeout_is_milliseconds_up_to_the_longest_duration(void **s) {
  compare_opts o;
  char err[256] = "";
  assert_int_equal(PARSE(&o, err, "--count", "1"), 0);
  assert_int_equal(o.timeout_ms, 0); /* none by default */
  assert_int_equal(PARSE(&o, err, "--timeout", "250"), 0);
  assert_int_equal(o.timeout_ms, 250);
  assert_int_equal(PARSE(&o, err, "--timeout", "4294967296"), CLI_EX_USAGE);
  assert_non_null(strstr(err, "--timeout takes milliseconds"));
  assert_int_equal(PARSE(&o, err, "--timeout", "-1"), CLI_EX_USAGE);
}

static void a_stray_word_is_refused(void **state) {
  compare_opts o;
  char err[256] = "";
  assert_int_equal(PARSE(&o, err, "loop"), CLI_EX_USAGE);
  assert_non_null(strstr(err, "'loop'"));
  /* Options come first: a word ends them, and is refused. */
  assert_int_equal(PARSE(&o, err, "--count", "3", "loop", "--quiet"),
                   CLI_EX_USAGE);
  assert_string_equal(err, "unknown option 'loop'");
}

static void an_unknown_or_misspelt_option_is_named(void **state) {
  compare_opts o;
  char err[256] = "";
  assert_int_equal(PARSE(&o, err, "--bogus=1"), CLI_EX_USAGE);
  assert_string_equal(err, "unknown option '--bogus'");
  assert_int_equal(PARSE(&o, err, "-x"), CLI_EX_USAGE);
  assert_string_equal(err, "unknown option '-x'");
  assert_int_equal(PARSE(&o, err, "--quiet=yes"), CLI_EX_USAGE);
  assert_string_equal(err, "option '--quiet' takes no value");
  /* A long option may be shortened while it names one option only. */
  assert_int_equal(PARSE(&o, err, "--dur", "5", "--timel"), 0);
  assert_int_equal(o.duration_ms, 5);
  assert_true(o.timeline);
  assert_int_equal(PARSE(&o, err, "--p", "5"), CLI_EX_USAGE);
  assert_string_equal(err, "option '--p' is ambiguous");
  /* A parse after a refusal starts again from the first argument. */
  assert_int_equal(PARSE(&o, err, "--count", "4"), 0);
  assert_int_equal(o.count, 4);
}

static void a_flag_without_its_value_is_refused(void **state) {
  compare_opts o;
  char err[256] = "";
  assert_int_equal(PARSE(&o, err, "--count"), CLI_EX_USAGE);
  assert_string_equal(err, "option '--count' needs a value");
}

static void real_io_is_asked_for_with_work_and_target(void **state) {
  compare_opts o;
  char err[256] = "";
  assert_int_equal(PARSE(&o, err, "--work", "tcp"), 0);
  assert_string_equal(o.work, "tcp");
  assert_null(o.target); /* the slow service is started for the run */
  assert_int_equal(PARSE(&o, err, "--work=tcp", "--target", "[::1]:8080"), 0);
  assert_string_equal(o.target, "[::1]:8080");
  assert_int_equal(PARSE(&o, err, "--work", "wait"), 0);
  assert_string_equal(o.work, "wait");
  /* A target means nothing to simulated work. */
  assert_int_equal(PARSE(&o, err, "--target", "127.0.0.1:80"), CLI_EX_USAGE);
  assert_non_null(strstr(err, "--work tcp"));
  assert_non_null(strstr(compare_usage(), "--target HOST:PORT"));

  /* pg is iobound-pg's kind: the parser knows its name without it. */
  assert_int_equal(PARSE(&o, err, "--work", "pg", "--pg", "dbname=x"), 0);
  assert_string_equal(o.work, "pg");
  assert_string_equal(o.pg, "dbname=x");
  assert_int_equal(PARSE(&o, err, "--work", "pg"), CLI_EX_USAGE);
  assert_non_null(strstr(err, "--pg CONNINFO"));
  assert_int_equal(PARSE(&o, err, "--work", "pg", "--pg", ""), CLI_EX_USAGE);
  assert_int_equal(PARSE(&o, err, "--pg", "dbname=x"), CLI_EX_USAGE);
  assert_non_null(strstr(err, "--work pg"));
  /* The kinds it takes are named: the library's, then pg and http in a
   * build with them. */
  assert_int_equal(PARSE(&o, err, "--work", "dns"), CLI_EX_USAGE);
  assert_int_equal(strncmp(err, "--work takes wait, cpu, ", 24), 0);
  assert_non_null(strstr(err, " or "));
  assert_int_equal(strcmp(err + strlen(err) - 11, ", not 'dns'"), 0);
  const iob_kind *kind;
  for (size_t k = 0; (kind = iob_kind_at(k)) != NULL; k++)
    if (!has_word(err, kind->name))
      fail_msg("'%s' does not name the kind %s", err, kind->name);
  assert_cmp(has_word(err, COMPARE_PG_KIND), ==, IOB_EXAMPLES_PG);
  assert_cmp(has_word(err, COMPARE_HTTP_KIND), ==, IOB_EXAMPLES_HTTP);

  /* http is iobound-http's: --url is its, and only http:// or https://. */
  assert_int_equal(PARSE(&o, err, "--work", "http"), 0);
  assert_null(o.url); /* the slow service, started for the run */
  assert_int_equal(
      PARSE(&o, err, "--work", "http", "--url", "https://example.org/{i}"), 0);
  assert_string_equal(o.url, "https://example.org/{i}");
  assert_int_equal(PARSE(&o, err, "--work", "http", "--url", "ftp://x/"),
                   CLI_EX_USAGE);
  assert_string_equal(err, "--url takes an http:// or https:// URL, not "
                           "'ftp://x/'");
  assert_int_equal(PARSE(&o, err, "--url", "http://x/"), CLI_EX_USAGE);
  assert_string_equal(err, "--url goes with --work http");
  assert_non_null(strstr(compare_usage(), "--url URL"));

  /* file is the library's: --dir is its, else a directory of its own. */
  assert_int_equal(PARSE(&o, err, "--work", "file"), 0);
  assert_null(o.dir);
  assert_int_equal(PARSE(&o, err, "--work", "file", "--dir", "/tmp"), 0);
  assert_string_equal(o.dir, "/tmp");
  assert_int_equal(PARSE(&o, err, "--work", "file", "--dir", ""), CLI_EX_USAGE);
  assert_int_equal(PARSE(&o, err, "--dir", "/tmp"), CLI_EX_USAGE);
  assert_string_equal(err, "--dir goes with --work file");
  assert_non_null(strstr(compare_usage(), "--dir DIR"));
}

/* ---- what the example programs share (cli.c) ---------------------------- */

static void numbers_are_whole_decimals_within_their_bounds(void **state) {
  uint64_t n = 7;
  assert_true(cli_parse_uint("0", 0, 10, &n));
  assert_int_equal(n, 0);
  assert_true(cli_parse_uint("0010", 1, 10, &n));
  assert_int_equal(n, 10);
  assert_true(cli_parse_uint("18446744073709551615", 0, UINT64_MAX, &n));
  assert_cmp(n, ==, UINT64_MAX);
  static const char *const bad[] = {"",
                                    "11",
                                    "+1",
                                    "-1",
                                    " 1",
                                    "1 ",
                                    "0x1",
                                    "1e3",
                                    "18446744073709551616",
                                    "99999999999999999999999"};
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    n = 7;
    if (cli_parse_uint(bad[k], 0, strlen(bad[k]) > 3 ? UINT64_MAX : 10, &n))
      fail_msg("'%s' was taken", bad[k]);
    assert_int_equal(n, 7); /* untouched */
  }
  assert_false(cli_parse_uint("0", 1, 10, &n));
  assert_false(cli_parse_uint(NULL, 0, 10, &n));
}

static void addresses_are_read_by_the_librarys_parser(void **state) {
  struct sockaddr_storage a;
  assert_int_equal(cli_address("127.0.0.1", 80, &a), 0);
  assert_int_equal(a.ss_family, AF_INET);
  assert_int_equal(ntohs(((struct sockaddr_in *)&a)->sin_port), 80);
  assert_int_equal(cli_address("::1", 65535, &a), 0);
  assert_int_equal(a.ss_family, AF_INET6);
  assert_int_equal(cli_address("[::1]", 0, &a), 0);
  assert_int_equal(a.ss_family, AF_INET6);
  assert_int_equal(cli_address("localhost", 7, &a), 0);
  assert_int_equal(a.ss_family, AF_INET);
  assert_code(cli_address("nowhere", 80, &a), IOB_EINVAL);
  assert_code(cli_address("", 80, &a), IOB_EINVAL);
  assert_code(cli_address("1.2.3.4.5", 80, &a), IOB_EINVAL);
  assert_code(cli_address("127.0.0.1", 65536, &a), IOB_EINVAL);
  assert_code(cli_address("127.0.0.1:80", 0, &a), IOB_EINVAL);
}

static void names_are_joined_from_the_librarys_tables(void **state) {
  char out[256];
  const char *names[] = {"a", "b", "c"};
  assert_string_equal(cli_join(out, sizeof(out), names, 3, ", ", " or "),
                      "a, b or c");
  assert_string_equal(cli_join(out, sizeof(out), names, 1, ", ", " or "), "a");
  assert_string_equal(cli_join(out, sizeof(out), names, 0, ", ", " or "), "");
  assert_string_equal(cli_join(out, 4, names, 3, ",", ","), "a,b");
  char styles[256];
  assert_string_equal(cli_style_names(out, sizeof(out), 0, ",", ","),
                      every_style(styles, sizeof(styles), ",", false));
  /* A flag picks the styles that have it, and only them. */
  static const unsigned flags[] = {IOB_STYLE_ON_THREADS, IOB_STYLE_THREAD_EACH,
                                   IOB_STYLE_LOOPS};
  for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
    cli_style_names(out, sizeof(out), flags[f], ", ", " or ");
    const iob_style *style;
    for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++)
      if (has_word(out, iob_style_name(style)) !=
          ((iob_style_flags(style) & flags[f]) != 0))
        fail_msg("flag %#x: '%s' and the %s style", flags[f], out,
                 iob_style_name(style));
  }
  assert_true(has_word(
      cli_style_names(out, sizeof(out), IOB_STYLE_ON_THREADS, ", ", " or "),
      "pool"));
  assert_true(has_word(
      cli_style_names(out, sizeof(out), IOB_STYLE_THREAD_EACH, ", ", " or "),
      "threads"));
  /* Work that keeps its thread busy blocks a loop; waits do not. */
  assert_true(cli_kind_blocks(&iob_kind_cpu));
  assert_false(cli_kind_blocks(&iob_kind_wait));
  assert_false(cli_kind_blocks(&iob_kind_tcp));
  assert_false(cli_kind_blocks(NULL));
}

/* What cli_error() and cli_usage_error() print, each called the one way
 * these tests need. */
static void say_dir_error(void) {
  cli_error("prog", "--dir %s: %s", "a\x1b[2J\\b\xc3\xa9", "gone");
}
static void say_url_error(void) {
  assert_int_equal(cli_usage_error("prog", "--url %s", "x\a"), CLI_EX_USAGE);
}

/* What `print` writes on stderr, read back from a temporary file. */
static void stderr_of(void (*print)(void), char *out, size_t size) {
  FILE *tmp = tmpfile();
  assert_non_null(tmp);
  int saved = dup(2);
  assert_cmp(saved, >=, 0);
  fflush(stderr);
  assert_cmp(dup2(fileno(tmp), 2), >=, 0);
  print();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(tmp);
  size_t n = fread(out, 1, size - 1, tmp);
  out[n] = '\0';
  fclose(tmp);
}

static void messages_show_every_byte_of_an_argument_as_text(void **state) {
  char text[256];
  stderr_of(say_dir_error, text, sizeof(text));
  assert_string_equal(text, "prog: --dir a\\x1b[2J\\\\b\\xc3\\xa9: gone\n");
  stderr_of(say_url_error, text, sizeof(text));
  assert_string_equal(text, "prog: --url x\\x07\nTry 'prog --help'.\n");
}

static void a_batch_is_one_line_of_json_with_every_key(void **state) {
  iob_config config;
  iob_config_init(&config);
  config.count = 3;
  config.duration_ms = 20;
  config.max_in_flight = 2;
  config.timeout_ms = 500;
  iob_report report = {.style = &iob_style_pool,
                       .kind = &iob_kind_cpu,
                       .count = 3,
                       .failed = 1,
                       .peak_in_flight = 2,
                       .threads = 4,
                       .workers_used = 2,
                       .status = IOB_ECANCELED,
                       .elapsed_ns = 40123456,
                       .cpu_ns = 60000000,
                       .speedup = 1.25,
                       .rate_waits = 7,
                       .retries = 5,
                       .breaker_refused = 2,
                       .hedges = 3,
                       .hedges_won = 1};
  iob_percentiles ms = {1000000, 2000000, 12345600, 20000000, 30000000};
  iob_latency latency = {.count = 3, .running = ms, .queued = ms, .total = ms};
  latency.queued.p50_ns = 0;
  cli_json_batch b = {.config = &config,
                      .report = &report,
                      .vs_sequential = 1.5,
                      .latency = &latency};
  char line[1400];
  int n = cli_json_report(line, sizeof(line), &b);
  assert_string_equal(
      line, "{\"style\":\"pool\",\"work\":\"cpu\",\"count\":3,"
            "\"duration_ms\":20,\"limit\":2,\"timeout_ms\":500,"
            "\"elapsed_ms\":40.123,\"overlap\":1.250,\"vs_sequential\":1.500,"
            "\"peak_in_flight\":2,\"threads\":4,\"workers_used\":2,"
            "\"cpu_ms\":60.000,\"failed\":1,\"rate_waits\":7,"
            "\"attempts\":8,\"retries\":5,\"breaker_refused\":2,"
            "\"hedges\":3,\"hedges_won\":1,\"p50_ms\":1.000,\"p90_ms\":2.000,"
            "\"p99_ms\":12.346,\"p999_ms\":20.000,\"max_ms\":30.000,"
            "\"queued_p50_ms\":0.000,\"queued_p90_ms\":2.000,"
            "\"queued_p99_ms\":12.346,\"queued_p999_ms\":20.000,"
            "\"queued_max_ms\":30.000,\"total_p50_ms\":1.000,"
            "\"total_p90_ms\":2.000,\"total_p99_ms\":12.346,"
            "\"total_p999_ms\":20.000,\"total_max_ms\":30.000,"
            "\"status\":\"IOB_ECANCELED\"}");
  assert_int_equal(n, (int)strlen(line));
  /* Without a sequential batch to compare with, the ratio is null: the
   * overlap is not passed off as a speed-up. */
  b.vs_sequential = NAN;
  b.latency = NULL; /* unknown: nulls too */
  assert_cmp(cli_json_report(line, sizeof(line), &b), >, 0);
  assert_non_null(strstr(line, "\"overlap\":1.250,\"vs_sequential\":null,"));
  assert_non_null(strstr(line, "\"p99_ms\":null,"));
  assert_non_null(strstr(line, "\"queued_max_ms\":null,"));
  assert_non_null(strstr(line, "\"total_max_ms\":null,"));
  /* A name that needs escaping is escaped; a line that does not fit is
   * refused, not cut. */
  iob_kind odd = {.name = "a\"b\\c\n"};
  report.kind = &odd;
  assert_cmp(cli_json_report(line, sizeof(line), &b), >, 0);
  assert_non_null(strstr(line, "\"work\":\"a\\\"b\\\\c\\u000a\""));
  assert_int_equal(cli_json_report(line, 40, &b), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_timeout_is_milliseconds_up_to_the_longest_duration),
      cmocka_unit_test(no_arguments_give_the_tutorials_case_in_every_style),
      cmocka_unit_test(every_flag_is_understood_in_both_spellings),
      cmocka_unit_test(the_lists_of_styles_and_kinds_are_asked_for_by_flags),
      cmocka_unit_test(bad_values_are_refused_with_a_message_naming_them),
      cmocka_unit_test(
          arrivals_at_a_rate_are_parsed_and_contradictions_refused),
      cmocka_unit_test(
          a_list_of_styles_names_each_style_once_with_no_empty_item),
      cmocka_unit_test(
          a_url_with_a_control_byte_is_refused_as_the_library_would),
      cmocka_unit_test(svg_and_trace_on_one_file_are_refused),
      cmocka_unit_test(a_flag_without_its_value_is_refused),
      cmocka_unit_test(too_many_threads_are_refused_with_the_limit_and_a_hint),
      cmocka_unit_test(a_stray_word_is_refused),
      cmocka_unit_test(an_unknown_or_misspelt_option_is_named),
      cmocka_unit_test(real_io_is_asked_for_with_work_and_target),
      cmocka_unit_test(numbers_are_whole_decimals_within_their_bounds),
      cmocka_unit_test(addresses_are_read_by_the_librarys_parser),
      cmocka_unit_test(names_are_joined_from_the_librarys_tables),
      cmocka_unit_test(a_batch_is_one_line_of_json_with_every_key),
      cmocka_unit_test(messages_show_every_byte_of_an_argument_as_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
