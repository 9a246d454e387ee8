/* Files on disk (iob_kind_file), in a directory of the test's own under
 * /tmp: every style writes and reads its files and leaves none behind,
 * batches on one target never collide, cancel and timeouts, a directory
 * that went away, and bad input. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static char dir[64]; /* made by main(), empty between tests */

/* The entries in `path` other than . and .. */
static int entries_in(const char *path) {
  DIR *d = opendir(path);
  assert_non_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

static iob_file_target *target_of(const char *where, iob_file_mode mode,
                                  uint32_t size_kib, int fsync,
                                  uint32_t files) {
  iob_file_options o;
  iob_file_options_init(&o);
  o.mode = mode;
  o.size_kib = size_kib;
  o.fsync = fsync;
  o.files = files;
  iob_file_target *t;
  assert_int_equal(iob_file_target_create(&t, where, &o), 0);
  return t;
}

static iob_config files_on(const iob_file_target *t, const iob_style *style,
                           uint32_t count) {
  iob_config c = config_of(style, count, 0);
  c.kind = &iob_kind_file;
  c.target = t;
  return c;
}

/* Each operation of a finished batch ended with 0 and handed back `bytes`,
 * or with one of the two statuses a stop gives (0 means none). */
static uint32_t check_values(const iob_batch *b, uint64_t bytes, int stop) {
  uint32_t n, ok = 0;
  const iob_record *rec = iob_batch_records(b, &n);
  for (uint32_t i = 0; i < n; i++) {
    iob_outcome o;
    assert_int_equal(iob_batch_outcome(b, i, &o), 0);
    assert_int_equal(o.status, rec[i].status);
    if (o.status == 0) {
      assert_int_equal(o.value, bytes);
      assert_null(o.message);
      ok++;
    } else if (o.status != stop) {
      fail_msg("operation %u: %s (%s)", i, iob_err_name(o.status),
               o.message ? o.message : "no message");
    }
  }
  return ok;
}

/* ---- every style --------------------------------------------------------- */

static void
every_style_writes_and_reads_its_files_and_leaves_none(void **state) {
  enum { N = 8, KIB = 64 };
  iob_file_target *w = target_of(dir, IOB_FILE_WRITE, KIB, 1, 0);
  iob_file_target *r = target_of(dir, IOB_FILE_READ, KIB, 1, N);
  assert_int_equal(entries_in(dir), N); /* the read target's files */
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    const iob_file_target *targets[2] = {w, r};
    for (int m = 0; m < 2; m++) {
      iob_config c = files_on(targets[m], style, N);
      iob_batch *b = run_on_own_loop(&c, NULL);
      iob_report rep;
      assert_int_equal(iob_batch_report(b, &rep), 0);
      assert_ptr_equal(rep.kind, &iob_kind_file);
      assert_int_equal(rep.failed, 0);
      assert_int_equal(check_values(b, KIB * 1024, 0), N);
      printf("%-10s %s %d files of %d KiB: %.1f ms, peak %u\n",
             iob_style_name(style), m ? "read " : "wrote", N, KIB,
             MS(rep.elapsed_ns), rep.peak_in_flight);
      assert_int_equal(iob_batch_free(b), 0);
      assert_int_equal(entries_in(dir), N); /* nothing left, nothing lost */
    }
  }
  iob_file_target_destroy(r);
  assert_int_equal(entries_in(dir), 0);
  iob_file_target_destroy(w);
}

/* The loop style's operations are libuv requests run on libuv's pool:
 * never more than its threads at once, however many are "in flight". */
static void the_loop_styles_files_run_on_libuvs_pool(void **state) {
  iob_file_target *w = target_of(dir, IOB_FILE_WRITE, 256, 1, 0);
  iob_config c = files_on(w, &iob_style_loop, 16);
  iob_batch *b = run_on_own_loop(&c, NULL);
  iob_report rep;
  assert_int_equal(iob_batch_report(b, &rep), 0);
  assert_int_equal(rep.failed, 0);
  assert_int_equal(rep.peak_in_flight, 16);
  assert_int_equal(iob_batch_free(b), 0);
  assert_int_equal(entries_in(dir), 0);
  iob_file_target_destroy(w);
}

/* A file larger than one write (1 MiB) is written and read in pieces. */
static void a_file_larger_than_a_chunk_is_moved_whole(void **state) {
  enum { KIB = 2560 };
  iob_file_target *w = target_of(dir, IOB_FILE_WRITE, KIB, 0, 0);
  iob_file_target *r = target_of(dir, IOB_FILE_READ, KIB, 0, 1);
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    const iob_file_target *targets[2] = {w, r};
    for (int m = 0; m < 2; m++) {
      iob_config c = files_on(targets[m], styles[k], 3);
      iob_batch *b = run_on_own_loop(&c, NULL);
      assert_int_equal(check_values(b, KIB * 1024, 0), 3);
      assert_int_equal(iob_batch_free(b), 0);
    }
  }
  iob_file_target_destroy(r);
  iob_file_target_destroy(w);
  assert_int_equal(entries_in(dir), 0);
}

/* ---- batches at once ----------------------------------------------------- */

/* Each operation's file is named after its batch: batches in every style
 * on one target, at once, each write their own files. */
static void batches_at_once_on_one_target_never_collide(void **state) {
  iob_file_target *w = target_of(dir, IOB_FILE_WRITE, 128, 1, 0);
  test_loop loop;
  test_loop_init(&loop);
  iob_batch *b[2 * STYLES_MAX];
  size_t n = 2 * style_count();
  for (size_t k = 0; k < n; k++) {
    iob_config c = files_on(w, iob_style_at(k % style_count()), 6);
    b[k] = test_loop_start(&loop, &c, NULL);
  }
  test_loop_run(&loop);
  for (size_t k = 0; k < n; k++) {
    assert_int_equal(test_loop_counts(&loop, b[k])->ok, 6);
    assert_int_equal(check_values(b[k], 128 * 1024, 0), 6);
  }
  test_loop_close(&loop);
  for (size_t k = 0; k < n; k++)
    assert_int_equal(iob_batch_free(b[k]), 0);
  assert_int_equal(entries_in(dir), 0);
  iob_file_target_destroy(w);
}

/* ---- cancel and timeouts ------------------------------------------------- */

/* Cancelled 20 ms in: a request queued on the pool never runs, one that
 * runs finishes; every file is closed and removed, whatever the style. */
static void
a_cancel_stops_file_operations_and_removes_their_files(void **state) {
  iob_file_target *w = target_of(dir, IOB_FILE_WRITE, 1024, 1, 0);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    test_loop loop;
    test_loop_init(&loop);
    iob_config c = files_on(w, style, 64);
    iob_batch *b = test_loop_start(&loop, &c, NULL);
    test_loop_cancel_after(&loop, b, 20);
    test_loop_run(&loop);
    const test_counts *n = test_loop_counts(&loop, b);
    printf("%-10s cancelled after 20 ms: %u written, %u cancelled\n",
           iob_style_name(style), n->ok, n->cancelled);
    /* On threads a file of one write that has begun runs to its end: all
     * 64 may be done by then, and the batch over before the cancel. On
     * the loop, 64 at once share the pool's threads and are nowhere near
     * done. */
    if (!(iob_style_flags(style) & IOB_STYLE_ON_THREADS))
      assert_true(n->cancelled > 0);
    if (n->ok < 64)
      assert_int_equal(n->batch_status, IOB_ECANCELED);
    assert_int_equal(n->ok + n->cancelled, 64);
    check_values(b, 1024 * 1024, IOB_ECANCELED);
    test_loop_close(&loop);
    assert_int_equal(iob_batch_free(b), 0);
    assert_int_equal(entries_in(dir), 0);
  }
  iob_file_target_destroy(w);
}

/* Files of 32 MiB and a timeout of 1 ms: on the loop the next request
 * is not issued, on a thread the next write is not made; each operation
 * is recorded timed out, its file removed. */
static void operations_past_the_timeout_are_cut_off(void **state) {
  iob_file_target *w = target_of(dir, IOB_FILE_WRITE, 32 * 1024, 0, 0);
  const iob_style *styles[] = {&iob_style_loop, &iob_style_pool,
                               &iob_style_threads};
  for (int k = 0; k < 3; k++) {
    iob_config c = files_on(w, styles[k], 3);
    c.timeout_ms = 1;
    test_counts n;
    iob_batch *b = run_on_own_loop(&c, &n);
    uint32_t ok = check_values(b, 32 * 1024 * 1024, IOB_ETIMEDOUT);
    printf("%-10s 1 ms timeout: %u of 3 timed out\n", iob_style_name(styles[k]),
           3 - ok);
    assert_true(ok < 3);
    assert_int_equal(iob_batch_free(b), 0);
    assert_int_equal(entries_in(dir), 0);
  }
  iob_file_target_destroy(w);
}

/* ---- failures ------------------------------------------------------------ */

/* The directory was there when the target was made; now a regular file
 * stands in its place. Each operation fails with UV_ENOTDIR and says so;
 * the batch runs on. (Root ignores permissions, so an unwritable
 * directory is tried only as another user.) */
static void a_directory_gone_fails_each_operation_with_a_message(void **s) {
  char sub[128], prefix[160];
  snprintf(sub, sizeof(sub), "%s/sub", dir);
  snprintf(prefix, sizeof(prefix), "cannot open %s/iobound-", sub);
  assert_int_equal(mkdir(sub, 0700), 0);
  iob_file_target *w = target_of(sub, IOB_FILE_WRITE, 4, 0, 0);
  assert_int_equal(rmdir(sub), 0);
  FILE *f = fopen(sub, "w");
  assert_non_null(f);
  fclose(f);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = files_on(w, style, 3);
    iob_batch *b = run_on_own_loop(&c, NULL);
    for (uint32_t i = 0; i < 3; i++) {
      iob_outcome o;
      assert_int_equal(iob_batch_outcome(b, i, &o), 0);
      assert_int_equal(o.status, UV_ENOTDIR);
      assert_non_null(o.message);
      assert_true(strncmp(o.message, prefix, strlen(prefix)) == 0);
      assert_non_null(strstr(o.message, ": not a directory"));
      assert_int_equal(o.value, 0);
    }
    assert_int_equal(iob_batch_free(b), 0);
  }
  assert_int_equal(unlink(sub), 0);
  iob_file_target_destroy(w);

  if (geteuid() != 0) { /* permissions hold: a directory we cannot write */
    assert_int_equal(mkdir(sub, 0500), 0);
    w = target_of(sub, IOB_FILE_WRITE, 4, 0, 0);
    iob_config c = files_on(w, &iob_style_loop, 2);
    iob_batch *b = run_on_own_loop(&c, NULL);
    iob_outcome o;
    assert_int_equal(iob_batch_outcome(b, 0, &o), 0);
    assert_int_equal(o.status, UV_EACCES);
    assert_non_null(strstr(o.message, ": permission denied"));
    assert_int_equal(iob_batch_free(b), 0);
    iob_file_target_destroy(w);
    assert_int_equal(rmdir(sub), 0);
  } else {
    print_message("as root: no permission to deny, UV_EACCES not tried\n");
  }
  assert_int_equal(entries_in(dir), 0);
}

/* A read target's files were removed under it: each operation fails
 * with UV_ENOENT, naming the file. */
static void a_read_target_whose_files_went_away_fails_each_read(void **s) {
  iob_file_target *r = target_of(dir, IOB_FILE_READ, 4, 0, 2);
  DIR *d = opendir(dir);
  assert_non_null(d);
  char path[512];
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (e->d_name[0] != '.') {
      snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
      assert_int_equal(unlink(path), 0);
    }
  closedir(d);
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    iob_config c = files_on(r, styles[k], 2);
    iob_batch *b = run_on_own_loop(&c, NULL);
    iob_outcome o;
    assert_int_equal(iob_batch_outcome(b, 1, &o), 0);
    assert_int_equal(o.status, UV_ENOENT);
    assert_non_null(strstr(o.message, "cannot open "));
    assert_non_null(strstr(o.message, "no such file or directory"));
    assert_int_equal(iob_batch_free(b), 0);
  }
  iob_file_target_destroy(r); /* its files are gone already: fine */
}

static int destroy_file_target(void *t) {
  return iob_file_target_destroy(t);
}

static void a_target_in_use_refuses_to_be_destroyed(void **state) {
  iob_file_target *w = target_of(dir, IOB_FILE_WRITE, 4, 0, 0);
  iob_config c = files_on(w, NULL, 4);
  check_target_busy_while_running(&c, destroy_file_target);
  assert_int_equal(iob_file_target_destroy(w), 0);
  iob_file_target *r = target_of(dir, IOB_FILE_READ, 4, 0, 2);
  c = files_on(r, NULL, 4);
  check_target_busy_while_running(&c, destroy_file_target);
  assert_int_equal(iob_file_target_destroy(r), 0);
  assert_int_equal(iob_file_target_destroy(NULL), 0);
  assert_int_equal(entries_in(dir), 0);
}

static void bad_targets_and_arguments_are_refused(void **state) {
  iob_file_target *t = (iob_file_target *)&t;
  iob_file_options o;
  iob_file_options_init(&o);
  assert_int_equal(o.size_kib, 64);
  assert_int_equal(o.mode, IOB_FILE_WRITE);
  assert_int_equal(o.fsync, 0);
  assert_int_equal(o.files, 1);
  iob_file_options_init(NULL);

  assert_int_equal(iob_file_target_create(NULL, dir, &o), IOB_EINVAL);
  assert_int_equal(iob_file_target_create(&t, NULL, &o), IOB_EINVAL);
  assert_null(t);
  assert_int_equal(iob_file_target_create(&t, "", &o), IOB_EINVAL);
  assert_int_equal(iob_file_target_create(&t, "/nonexistent/iobound", &o),
                   UV_ENOENT);
  assert_null(t);

  char file[128], under[160];
  snprintf(file, sizeof(file), "%s/plain", dir);
  snprintf(under, sizeof(under), "%s/plain/sub", dir);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  assert_int_equal(iob_file_target_create(&t, file, &o), UV_ENOTDIR);
  assert_int_equal(iob_file_target_create(&t, under, &o), UV_ENOTDIR);
  assert_null(t);
  assert_int_equal(unlink(file), 0);

  char *longname = malloc(IOB_FILE_DIR_MAX + 2);
  assert_non_null(longname);
  memset(longname, 'a', IOB_FILE_DIR_MAX + 1);
  longname[IOB_FILE_DIR_MAX + 1] = '\0';
  assert_int_equal(iob_file_target_create(&t, longname, &o), UV_ENAMETOOLONG);
  free(longname);

  o.size_kib = 0;
  assert_int_equal(iob_file_target_create(&t, dir, &o), IOB_ERANGE);
  o.size_kib = IOB_FILE_SIZE_MAX_KIB + 1;
  assert_int_equal(iob_file_target_create(&t, dir, &o), IOB_ERANGE);
  o.size_kib = 1;
  o.mode = (iob_file_mode)7;
  assert_int_equal(iob_file_target_create(&t, dir, &o), IOB_EINVAL);
  o.mode = IOB_FILE_READ;
  o.files = 0;
  assert_int_equal(iob_file_target_create(&t, dir, &o), IOB_ERANGE);
  o.files = IOB_FILE_FILES_MAX + 1;
  assert_int_equal(iob_file_target_create(&t, dir, &o), IOB_ERANGE);
  assert_null(t);
  assert_int_equal(entries_in(dir), 0); /* nothing prepared */
  o.mode = IOB_FILE_WRITE;              /* files is read mode's alone */
  assert_int_equal(iob_file_target_create(&t, dir, &o), 0);
  iob_file_target_destroy(t);
  assert_int_equal(iob_file_target_create(&t, dir, NULL), 0); /* defaults */

  /* A batch of files needs a target, in every style. */
  iob_config c = files_on(NULL, &iob_style_loop, 1);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_batch *b = (iob_batch *)&b;
    c.style = style;
    assert_int_equal(iob_batch_create(&b, &c), IOB_EINVAL);
    assert_null(b);
  }
  /* The duration is not used, but still range-checked by the batch. */
  c = files_on(t, &iob_style_loop, 1);
  c.duration_ms = IOB_DURATION_MAX_MS + 1;
  iob_batch *b;
  assert_int_equal(iob_batch_create(&b, &c), IOB_ERANGE);
  iob_file_target_destroy(t);
  iob_file_target_destroy(NULL);
  assert_ptr_equal(iob_kind_find("file"), &iob_kind_file);
}

int main(void) {
  snprintf(dir, sizeof(dir), "/tmp/iobound-test-file-XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("test-file: mkdtemp");
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_style_writes_and_reads_its_files_and_leaves_none),
      cmocka_unit_test(the_loop_styles_files_run_on_libuvs_pool),
      cmocka_unit_test(a_file_larger_than_a_chunk_is_moved_whole),
      cmocka_unit_test(batches_at_once_on_one_target_never_collide),
      cmocka_unit_test(a_cancel_stops_file_operations_and_removes_their_files),
      cmocka_unit_test(operations_past_the_timeout_are_cut_off),
      cmocka_unit_test(a_directory_gone_fails_each_operation_with_a_message),
      cmocka_unit_test(a_read_target_whose_files_went_away_fails_each_read),
      cmocka_unit_test(a_target_in_use_refuses_to_be_destroyed),
      cmocka_unit_test(bad_targets_and_arguments_are_refused),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (rmdir(dir) != 0) {
    fprintf(stderr, "test-file: %s was not left empty\n", dir);
    failed++;
  }
  return failed;
}
