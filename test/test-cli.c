/* iobound-compare's arguments: defaults, every flag, every bad value. */
#include <string.h>

#include "../examples/compare.h"
#include "helpers.h"

#define PARSE(o, err, ...)                                                   \
  parse_args((char *[]){"iobound-compare", __VA_ARGS__, NULL}, o, err)

static int parse_args(char **argv, compare_opts *o, char *err) {
  int argc = 0;
  while (argv[argc] != NULL)
    argc++;
  return compare_parse(argc, argv, o, err, 256);
}

static void no_arguments_give_the_tutorials_case_in_every_style(void **s) {
  compare_opts o;
  char err[256] = "";
  char *argv[] = {"iobound-compare", NULL};
  assert_int_equal(compare_parse(1, argv, &o, err, sizeof(err)), 0);
  assert_int_equal(o.action, COMPARE_RUN);
  assert_int_equal(o.count, 10);
  assert_int_equal(o.duration_ms, 200);
  assert_int_equal(o.nstyles, IOB_STYLE_COUNT_);
  assert_int_equal(o.work, IOB_WORK_WAIT);
  assert_int_equal(o.limit, 0);
  assert_int_equal(o.pool_size, 0);
  assert_int_equal(o.format, COMPARE_TABLE);
  assert_int_equal(o.progress, COMPARE_PROGRESS_AUTO);
  assert_false(o.quiet);
}

static void every_flag_is_understood_in_both_spellings(void **state) {
  compare_opts o;
  char err[256];
  assert_int_equal(PARSE(&o, err, "--count", "25", "--duration=7",
                         "--styles", "pool,loop"),
                   0);
  assert_int_equal(o.count, 25);
  assert_int_equal(o.duration_ms, 7);
  assert_int_equal(o.nstyles, 2);
  assert_int_equal(o.styles[0], IOB_STYLE_POOL);
  assert_int_equal(o.styles[1], IOB_STYLE_LOOP);
  assert_int_equal(PARSE(&o, err, "--count=3", "--styles=loop,loop"), 0);
  assert_int_equal(o.count, 3);
  assert_int_equal(o.nstyles, 1);
  assert_int_equal(PARSE(&o, err, "--work", "cpu", "--limit=5",
                         "--pool-size", "8", "--format", "json",
                         "--progress=never", "-q", "--styles=threads"),
                   0);
  assert_int_equal(o.work, IOB_WORK_CPU);
  assert_int_equal(o.limit, 5);
  assert_int_equal(o.pool_size, 8);
  assert_int_equal(o.format, COMPARE_JSON);
  assert_int_equal(o.progress, COMPARE_PROGRESS_NEVER);
  assert_true(o.quiet);
  assert_int_equal(o.styles[0], IOB_STYLE_THREADS);
  assert_int_equal(PARSE(&o, err, "--format=csv", "--progress", "always",
                         "--quiet", "--work=wait"),
                   0);
  assert_int_equal(o.format, COMPARE_CSV);
  assert_int_equal(o.progress, COMPARE_PROGRESS_ALWAYS);
  assert_int_equal(o.work, IOB_WORK_WAIT);
  assert_false(o.timeline);
  assert_null(o.svg_path);
  assert_int_equal(PARSE(&o, err, "--timeline", "--svg", "a.svg",
                         "--trace=b.json"),
                   0);
  assert_true(o.timeline);
  assert_string_equal(o.svg_path, "a.svg");
  assert_string_equal(o.trace_path, "b.json");
  assert_int_equal(PARSE(&o, err, "--help"), 0);
  assert_int_equal(o.action, COMPARE_HELP);
  assert_int_equal(PARSE(&o, err, "--version"), 0);
  assert_int_equal(o.action, COMPARE_VERSION);
  assert_non_null(strstr(compare_usage, "--styles"));
}

static void bad_values_are_refused_with_a_message_naming_them(void **s) {
  static const char *const bad[][2] = {
      {"--count", "0"},          {"--count", "-3"},
      {"--count", "12abc"},      {"--count", "268435457"},
      {"--count", ""},           {"--duration", "-1"},
      {"--duration", "4294967296"}, {"--duration", "1.5"},
      {"--styles", "loop,fibers"}, {"--styles", ","},
      {"--bogus", "1"},          {"--work", "user"},
      {"--work", "sleep"},       {"--limit", "-1"},
      {"--pool-size", "0"},      {"--pool-size", "1025"},
      {"--format", "xml"},       {"--progress", "sometimes"},
      {"--svg", ""},
      {"--target", "example.org:80"}, {"--target", "127.0.0.1"},
      {"--target", "127.0.0.1:70000"}, {"--target", "[::1:80"},
  };
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    compare_opts o;
    char err[256] = "";
    int rc = PARSE(&o, err, (char *)bad[k][0], (char *)bad[k][1]);
    assert_int_equal(rc, COMPARE_EX_USAGE);
    assert_true(strlen(err) > 0);
    /* The message quotes what was wrong. */
    assert_non_null(strstr(err, bad[k][0][2] == 'b' ? "--bogus" : bad[k][1]));
  }
}

static void too_many_threads_are_refused_with_the_limit_and_a_hint(void **s) {
  compare_opts o;
  char err[256] = "";
  assert_int_equal(PARSE(&o, err, "--count", "50000"), 0);
  assert_int_equal(compare_check_threads(&o, 30000, err, sizeof(err)),
                   COMPARE_EX_USAGE);
  assert_non_null(strstr(err, "50000 threads"));
  assert_non_null(strstr(err, "about 30000"));
  assert_non_null(strstr(err, "--limit 30000"));
  /* A limit, or no threads style, makes it fine. */
  assert_int_equal(PARSE(&o, err, "--count", "50000", "--limit", "100"), 0);
  assert_int_equal(compare_check_threads(&o, 30000, err, sizeof(err)), 0);
  assert_int_equal(PARSE(&o, err, "--count", "50000", "--styles", "loop"), 0);
  assert_int_equal(compare_check_threads(&o, 30000, err, sizeof(err)), 0);
}

static void a_stray_word_is_refused(void **state) {
  compare_opts o;
  char err[256] = "";
  assert_int_equal(PARSE(&o, err, "loop"), COMPARE_EX_USAGE);
  assert_non_null(strstr(err, "'loop'"));
}

static void a_flag_without_its_value_is_refused(void **state) {
  compare_opts o;
  char err[256] = "";
  assert_int_equal(PARSE(&o, err, "--count"), COMPARE_EX_USAGE);
  assert_non_null(strstr(err, "needs a value"));
}

static void real_io_is_asked_for_with_work_and_target(void **state) {
  compare_opts o;
  char err[256] = "";
  assert_int_equal(PARSE(&o, err, "--work", "tcp"), 0);
  assert_int_equal(o.io, COMPARE_TCP);
  assert_int_equal(o.work, IOB_WORK_USER);
  assert_null(o.target); /* the slow service is started for the run */
  assert_int_equal(PARSE(&o, err, "--work=tcp", "--target", "[::1]:8080"), 0);
  assert_string_equal(o.target, "[::1]:8080");
  assert_int_equal(PARSE(&o, err, "--work", "wait"), 0);
  assert_int_equal(o.io, COMPARE_SIMULATED);
  /* A target means nothing to simulated work. */
  assert_int_equal(PARSE(&o, err, "--target", "127.0.0.1:80"),
                   COMPARE_EX_USAGE);
  assert_non_null(strstr(err, "--work tcp"));
  assert_non_null(strstr(compare_usage, "--target HOST:PORT"));

  assert_int_equal(PARSE(&o, err, "--work", "pg", "--pg", "dbname=x"), 0);
  assert_int_equal(o.io, COMPARE_PG);
  assert_string_equal(o.pg, "dbname=x");
  assert_int_equal(PARSE(&o, err, "--work", "pg"), COMPARE_EX_USAGE);
  assert_non_null(strstr(err, "--pg CONNINFO"));
  assert_int_equal(PARSE(&o, err, "--work", "pg", "--pg", ""),
                   COMPARE_EX_USAGE);
  assert_int_equal(PARSE(&o, err, "--pg", "dbname=x"), COMPARE_EX_USAGE);
  assert_non_null(strstr(err, "--work pg"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(no_arguments_give_the_tutorials_case_in_every_style),
      cmocka_unit_test(every_flag_is_understood_in_both_spellings),
      cmocka_unit_test(bad_values_are_refused_with_a_message_naming_them),
      cmocka_unit_test(a_flag_without_its_value_is_refused),
      cmocka_unit_test(too_many_threads_are_refused_with_the_limit_and_a_hint),
      cmocka_unit_test(a_stray_word_is_refused),
      cmocka_unit_test(real_io_is_asked_for_with_work_and_target),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
