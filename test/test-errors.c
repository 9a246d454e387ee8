/* Bad input: each gets its own clear error, and nothing is left behind. */
#include <stdio.h>
#include <string.h>

#include "common.h"

static void on_done(iob_batch *batch, int status) {
  int *calls = iob_batch_data(batch);
  (*calls)++;
  (void)status;
}

static void create_refuses_count_zero(void **state) {
  iob_config c = config_of(&iob_style_loop, 0, 10);
  iob_batch *b = (iob_batch *)&c; /* must be reset to NULL */
  assert_code(iob_batch_create(&b, &c), IOB_EINVAL);
  assert_null(b);
}

static void create_refuses_a_count_too_large_to_allocate(void **state) {
  iob_config c = config_of(&iob_style_loop, IOB_COUNT_MAX + 1, 10);
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), IOB_E2BIG);
  assert_null(b);
  c.count = UINT32_MAX;
  assert_code(iob_batch_create(&b, &c), IOB_E2BIG);
}

static void create_refuses_null_arguments(void **state) {
  iob_config c = config_of(&iob_style_loop, 1, 10);
  iob_batch *b;
  assert_code(iob_batch_create(NULL, &c), IOB_EINVAL);
  assert_code(iob_batch_create(&b, NULL), IOB_EINVAL);
  assert_null(b);
  assert_code(iob_run(NULL, &c), IOB_EINVAL);
  assert_code(iob_run(&b, NULL), IOB_EINVAL);
}

static void an_unknown_style_name_finds_no_style(void **state) {
  assert_null(iob_style_find("fibers"));
  assert_null(iob_style_find(""));
  assert_null(iob_style_find("Loop")); /* names are exact */
  assert_null(iob_style_find(NULL));
  assert_null(iob_style_name(NULL));
  assert_int_equal(iob_style_flags(NULL), 0);
  assert_null(iob_kind_find("nap"));
  assert_null(iob_kind_find(NULL));
}

static void no_style_or_kind_means_waits_on_the_loop(void **state) {
  iob_config c;
  iob_config_init(&c);
  assert_ptr_equal(c.style, &iob_style_loop);
  assert_ptr_equal(c.kind, &iob_kind_wait);
  assert_null(c.target);
  c.count = 2;
  c.duration_ms = 1;
  c.style = NULL;
  c.kind = NULL;
  iob_report r = report_of(&c);
  assert_ptr_equal(r.style, &iob_style_loop);
  assert_ptr_equal(r.kind, &iob_kind_wait);
  assert_int_equal(r.failed, 0);
}

static void create_refuses_durations_that_would_overflow(void **state) {
  iob_config c = config_of(&iob_style_loop, 1, IOB_DURATION_MAX_MS + 1);
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  c.duration_ms = UINT64_MAX;
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  c.duration_ms = IOB_DURATION_MAX_MS; /* the largest that is allowed */
  assert_code(iob_batch_create(&b, &c), 0);
  assert_code(iob_batch_free(b), 0);
}

/* A timeout counts in ns: 18446744073710 ms would wrap to half a ms. */
static void create_refuses_timeouts_that_would_overflow(void **state) {
  iob_config c = config_of(&iob_style_loop, 1, 1);
  iob_batch *b;
  c.timeout_ms = UINT64_MAX / 1000000 + 1;
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  assert_null(b);
  c.timeout_ms = IOB_DURATION_MAX_MS + 1;
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  c.timeout_ms = IOB_DURATION_MAX_MS;
  assert_code(iob_batch_create(&b, &c), 0);
  assert_code(iob_batch_free(b), 0);
}

static void a_label_is_copied_and_checked(void **state) {
  iob_config c = config_of(NULL, 1, 1);
  iob_batch *b;
  char long_label[IOB_LABEL_MAX + 2];
  memset(long_label, 'x', sizeof(long_label) - 1);
  long_label[sizeof(long_label) - 1] = '\0';
  c.label = long_label;
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  assert_null(b);
  long_label[IOB_LABEL_MAX] = '\0'; /* the longest that fits */
  assert_code(iob_batch_create(&b, &c), 0);
  iob_batch_free(b);
  /* It reaches terminals: no control character, escapes above all. */
  c.label = "red \033[31m";
  assert_code(iob_batch_create(&b, &c), IOB_EINVAL);
  c.label = "tab\there";
  assert_code(iob_batch_create(&b, &c), IOB_EINVAL);
  /* A copy: the caller's buffer may change or go. */
  char mine[] = "nightly import";
  c.label = mine;
  assert_code(iob_batch_create(&b, &c), 0);
  strcpy(mine, "overwritten");
  assert_string_equal(iob_batch_config(b)->label, "nightly import");
  assert_ptr_not_equal(iob_batch_config(b)->label, mine);
  iob_batch_free(b);
}

static void start_refuses_null_arguments_and_starts_nothing(void **state) {
  test_loop t;
  test_loop_init(&t);
  uv_loop_t *loop = &t.loop;
  int calls = 0;
  iob_config c = config_of(&iob_style_loop, 3, 1);
  c.data = &calls;
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  assert_code(iob_batch_start(NULL, loop, on_done), IOB_EINVAL);
  assert_code(iob_batch_start(b, NULL, on_done), IOB_EINVAL);
  assert_code(iob_batch_start(b, loop, NULL), IOB_EINVAL);
  /* Nothing started: the loop has nothing to run. */
  assert_int_equal(uv_run(loop, UV_RUN_NOWAIT), 0);
  assert_int_equal(calls, 0);
  assert_null(iob_batch_loop(b));
  /* And the batch can still start after the refusals. */
  assert_code(iob_batch_start(b, loop, on_done), 0);
  assert_ptr_equal(iob_batch_loop(b), loop);
  test_loop_run(&t);
  assert_int_equal(calls, 1);
  assert_code(iob_batch_free(b), 0);
  test_loop_close(&t);
}

static void starting_a_batch_twice_is_refused(void **state) {
  test_loop t;
  test_loop_init(&t);
  uv_loop_t *loop = &t.loop;
  int calls = 0;
  iob_config c = config_of(&iob_style_pool, 2, 1);
  c.data = &calls;
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  assert_code(iob_batch_start(b, loop, on_done), 0);
  assert_code(iob_batch_start(b, loop, on_done), IOB_EBUSY);
  test_loop_run(&t);
  assert_int_equal(calls, 1);
  /* A finished batch does not run again either. */
  assert_code(iob_batch_start(b, loop, on_done), IOB_EBUSY);
  test_loop_run(&t);
  assert_int_equal(calls, 1);
  assert_code(iob_batch_free(b), 0);
  test_loop_close(&t);
}

static void freeing_a_running_batch_is_refused_and_frees_nothing(void **s) {
  test_loop t;
  test_loop_init(&t);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, 3, 5);
    iob_batch *b = test_loop_start(&t, &c, NULL);
    assert_code(iob_batch_free(b), IOB_EBUSY);
    test_loop_run(&t);
    assert_int_equal(test_loop_counts(&t, b)->batch_calls, 1);
    assert_code(iob_batch_free(b), 0);
  }
  test_loop_close(&t);
}

static void results_of_an_unfinished_batch_are_refused(void **state) {
  iob_config c = config_of(&iob_style_loop, 2, 1);
  iob_batch *b;
  iob_report r;
  uint32_t n = 99;
  assert_code(iob_batch_create(&b, &c), 0);
  iob_outcome o;
  assert_code(iob_batch_report(b, &r), IOB_EBUSY);
  assert_null(iob_batch_records(b, &n));
  assert_int_equal(n, 0);
  assert_code(iob_batch_outcome(b, 0, &o), IOB_EBUSY);
  assert_code(iob_batch_outcome(b, 2, &o), IOB_EINVAL); /* of 2 */
  assert_code(iob_batch_outcome(b, 0, NULL), IOB_EINVAL);
  assert_code(iob_batch_outcome(NULL, 0, &o), IOB_EINVAL);
  assert_code(iob_batch_report(NULL, &r), IOB_EINVAL);
  assert_code(iob_batch_report(b, NULL), IOB_EINVAL);
  assert_null(iob_batch_records(NULL, NULL));
  assert_null(iob_batch_data(NULL));
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_batch_free(NULL), 0);
  iob_config_init(NULL); /* a no-op, not a crash */
}

static void pool_sizes_outside_one_to_1024_are_refused(void **state) {
  assert_code(iob_pool_request_size(0), IOB_ERANGE);
  assert_code(iob_pool_request_size(1025), IOB_ERANGE);
  assert_code(iob_pool_request_size(UINT32_MAX), IOB_ERANGE);
}

static void every_error_has_a_name_and_words_of_its_own(void **state) {
  const int codes[] = {IOB_EINVAL,    IOB_ENOMEM,    IOB_E2BIG,    IOB_ERANGE,
                       IOB_ENOTSUP,   IOB_EBUSY,     IOB_EALREADY, IOB_EAGAIN,
                       IOB_ECANCELED, IOB_ETIMEDOUT, IOB_EPERM,    IOB_EIO};
  size_t n = sizeof(codes) / sizeof(codes[0]);
  for (size_t i = 0; i < n; i++) {
    assert_cmp(codes[i], <, 0);
    assert_non_null(iob_strerror(codes[i]));
    assert_cmp(strncmp(iob_err_name(codes[i]), "IOB_E", 5), ==, 0);
    for (size_t j = 0; j < i; j++) {
      assert_int_not_equal(codes[i], codes[j]);
      assert_string_not_equal(iob_strerror(codes[i]), iob_strerror(codes[j]));
    }
  }
  /* Words true for the code whatever returned it. */
  assert_string_equal(iob_strerror(IOB_E2BIG), "too many or too large");
  assert_string_equal(iob_strerror(IOB_ETIMEDOUT), "timed out");
  assert_string_equal(iob_strerror(IOB_EIO), "input/output error");
  /* Codes iobound does not define still read as libuv's. */
  assert_string_equal(iob_strerror(UV_ECONNREFUSED),
                      uv_strerror(UV_ECONNREFUSED));
  assert_string_equal(iob_err_name(UV_ECONNREFUSED), "ECONNREFUSED");
  assert_string_equal(iob_strerror(0), "success");
  assert_string_equal(iob_err_name(0), "OK");
  /* Unknown codes get words too, with nothing to free (valgrind and ASan
   * would see a leak here otherwise). */
  for (int k = 0; k < 3; k++) {
    assert_non_null(strstr(iob_err_name(-123456), "123456"));
    assert_non_null(strstr(iob_strerror(-123456), "123456"));
  }
}

static void the_version_is_the_headers(void **state) {
  char version[32];
  snprintf(version, sizeof(version), "%d.%d.%d", IOB_VERSION_MAJOR,
           IOB_VERSION_MINOR, IOB_VERSION_PATCH);
  assert_string_equal(iob_version(), version);
  assert_string_equal(iob_version(), "0.5.0");
}

static void the_system_allows_some_threads_and_says_how_many(void **s) {
  uint32_t n = iob_threads_available();
  assert_cmp(n, >, 100); /* any machine that runs these tests */
}

static void progress_needs_a_batch_and_somewhere_to_put_it(void **state) {
  iob_progress p;
  assert_code(iob_batch_progress(NULL, &p), IOB_EINVAL);
  iob_config c = config_of(&iob_style_loop, 7, 1);
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  assert_code(iob_batch_progress(b, NULL), IOB_EINVAL);
  assert_code(iob_batch_progress(b, &p), 0);
  assert_int_equal(p.waiting, 7);
  assert_int_equal(p.in_flight + p.done + p.failed, 0);
  assert_null(iob_batch_loop(b));
  assert_null(iob_batch_loop(NULL));
  assert_code(iob_batch_free(b), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(create_refuses_count_zero),
      cmocka_unit_test(create_refuses_a_count_too_large_to_allocate),
      cmocka_unit_test(create_refuses_null_arguments),
      cmocka_unit_test(an_unknown_style_name_finds_no_style),
      cmocka_unit_test(no_style_or_kind_means_waits_on_the_loop),
      cmocka_unit_test(create_refuses_durations_that_would_overflow),
      cmocka_unit_test(create_refuses_timeouts_that_would_overflow),
      cmocka_unit_test(a_label_is_copied_and_checked),
      cmocka_unit_test(start_refuses_null_arguments_and_starts_nothing),
      cmocka_unit_test(starting_a_batch_twice_is_refused),
      cmocka_unit_test(freeing_a_running_batch_is_refused_and_frees_nothing),
      cmocka_unit_test(results_of_an_unfinished_batch_are_refused),
      cmocka_unit_test(pool_sizes_outside_one_to_1024_are_refused),
      cmocka_unit_test(every_error_has_a_name_and_words_of_its_own),
      cmocka_unit_test(the_version_is_the_headers),
      cmocka_unit_test(the_system_allows_some_threads_and_says_how_many),
      cmocka_unit_test(progress_needs_a_batch_and_somewhere_to_put_it),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
