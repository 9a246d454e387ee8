/* Files on disk (iob_kind_file), in a directory of the test's own under
 * /tmp. A target's: every style writes and reads its files and leaves
 * none behind, batches on one target never collide, cancel and timeouts,
 * a directory that went away, and bad input. Requests that name files:
 * writes, appends and reads in every style and on both engines (io_uring
 * and libuv's pool), atomic replacement, new names, links, FIFOs, caps,
 * a loop whose files do not wait behind its pool, and bad requests. */
#include <dirent.h>
#include <fcntl.h>
#include <time.h>
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
  assert_code(iob_file_target_create(&t, where, &o), 0);
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
    assert_code(iob_batch_outcome(b, i, &o), 0);
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
      assert_code(iob_batch_report(b, &rep), 0);
      assert_ptr_equal(rep.kind, &iob_kind_file);
      assert_int_equal(rep.failed, 0);
      assert_int_equal(check_values(b, KIB * 1024, 0), N);
      printf("%-10s %s %d files of %d KiB: %.1f ms, peak %u\n",
             iob_style_name(style), m ? "read " : "wrote", N, KIB,
             MS(rep.elapsed_ns), rep.peak_in_flight);
      assert_code(iob_batch_free(b), 0);
      assert_int_equal(entries_in(dir), N); /* nothing left, nothing lost */
    }
  }
  iob_file_target_destroy(r);
  assert_int_equal(entries_in(dir), 0);
  iob_file_target_destroy(w);
}

/* The loop style starts every operation at once, whichever way its calls
 * reach the disk. */
static void the_loop_style_starts_every_file_operation_at_once(void **state) {
  iob_file_target *w = target_of(dir, IOB_FILE_WRITE, 256, 1, 0);
  iob_config c = files_on(w, &iob_style_loop, 16);
  iob_batch *b = run_on_own_loop(&c, NULL);
  iob_report rep;
  assert_code(iob_batch_report(b, &rep), 0);
  assert_int_equal(rep.failed, 0);
  assert_int_equal(rep.peak_in_flight, 16);
  assert_code(iob_batch_free(b), 0);
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
      assert_code(iob_batch_free(b), 0);
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
    assert_code(iob_batch_free(b[k]), 0);
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
      assert_cmp(n->cancelled, >, 0);
    if (n->ok < 64)
      assert_code(n->batch_status, IOB_ECANCELED);
    assert_int_equal(n->ok + n->cancelled, 64);
    check_values(b, 1024 * 1024, IOB_ECANCELED);
    test_loop_close(&loop);
    assert_code(iob_batch_free(b), 0);
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
    assert_cmp(ok, <, 3);
    assert_code(iob_batch_free(b), 0);
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
      assert_code(iob_batch_outcome(b, i, &o), 0);
      assert_code(o.status, UV_ENOTDIR);
      assert_non_null(o.message);
      assert_cmp(strncmp(o.message, prefix, strlen(prefix)), ==, 0);
      assert_non_null(strstr(o.message, ": not a directory"));
      assert_int_equal(o.value, 0);
    }
    assert_code(iob_batch_free(b), 0);
  }
  assert_int_equal(unlink(sub), 0);
  iob_file_target_destroy(w);

  if (geteuid() != 0) { /* permissions hold: a directory we cannot write */
    assert_int_equal(mkdir(sub, 0500), 0);
    w = target_of(sub, IOB_FILE_WRITE, 4, 0, 0);
    iob_config c = files_on(w, &iob_style_loop, 2);
    iob_batch *b = run_on_own_loop(&c, NULL);
    iob_outcome o;
    assert_code(iob_batch_outcome(b, 0, &o), 0);
    assert_code(o.status, UV_EACCES);
    assert_non_null(strstr(o.message, ": permission denied"));
    assert_code(iob_batch_free(b), 0);
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
    assert_code(iob_batch_outcome(b, 1, &o), 0);
    assert_code(o.status, UV_ENOENT);
    assert_non_null(strstr(o.message, "cannot open "));
    assert_non_null(strstr(o.message, "no such file or directory"));
    assert_code(iob_batch_free(b), 0);
  }
  iob_file_target_destroy(r); /* its files are gone already: fine */
}

static int destroy_file_target(void *t) { return iob_file_target_destroy(t); }

static void a_target_in_use_refuses_to_be_destroyed(void **state) {
  iob_file_target *w = target_of(dir, IOB_FILE_WRITE, 4, 0, 0);
  iob_config c = files_on(w, NULL, 4);
  check_target_busy_while_running(&c, destroy_file_target);
  assert_code(iob_file_target_destroy(w), 0);
  iob_file_target *r = target_of(dir, IOB_FILE_READ, 4, 0, 2);
  c = files_on(r, NULL, 4);
  check_target_busy_while_running(&c, destroy_file_target);
  assert_code(iob_file_target_destroy(r), 0);
  assert_code(iob_file_target_destroy(NULL), 0);
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

  assert_code(iob_file_target_create(NULL, dir, &o), IOB_EINVAL);
  assert_code(iob_file_target_create(&t, NULL, &o), IOB_EINVAL);
  assert_null(t);
  assert_code(iob_file_target_create(&t, "", &o), IOB_EINVAL);
  assert_code(iob_file_target_create(&t, "/nonexistent/iobound", &o),
              UV_ENOENT);
  assert_null(t);

  char file[128], under[160];
  snprintf(file, sizeof(file), "%s/plain", dir);
  snprintf(under, sizeof(under), "%s/plain/sub", dir);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  assert_code(iob_file_target_create(&t, file, &o), UV_ENOTDIR);
  assert_code(iob_file_target_create(&t, under, &o), UV_ENOTDIR);
  assert_null(t);
  assert_int_equal(unlink(file), 0);

  char *longname = malloc(IOB_FILE_DIR_MAX + 2);
  assert_non_null(longname);
  memset(longname, 'a', IOB_FILE_DIR_MAX + 1);
  longname[IOB_FILE_DIR_MAX + 1] = '\0';
  assert_code(iob_file_target_create(&t, longname, &o), UV_ENAMETOOLONG);
  free(longname);

  o.size_kib = 0;
  assert_code(iob_file_target_create(&t, dir, &o), IOB_ERANGE);
  o.size_kib = IOB_FILE_SIZE_MAX_KIB + 1;
  assert_code(iob_file_target_create(&t, dir, &o), IOB_ERANGE);
  o.size_kib = 1;
  o.mode = (iob_file_mode)7;
  assert_code(iob_file_target_create(&t, dir, &o), IOB_EINVAL);
  o.mode = IOB_FILE_READ;
  o.files = 0;
  assert_code(iob_file_target_create(&t, dir, &o), IOB_ERANGE);
  o.files = IOB_FILE_FILES_MAX + 1;
  assert_code(iob_file_target_create(&t, dir, &o), IOB_ERANGE);
  assert_null(t);
  assert_int_equal(entries_in(dir), 0); /* nothing prepared */
  o.mode = IOB_FILE_WRITE;              /* files is read mode's alone */
  assert_code(iob_file_target_create(&t, dir, &o), 0);
  iob_file_target_destroy(t);
  assert_code(iob_file_target_create(&t, dir, NULL), 0); /* defaults */

  /* A batch of files needs a target, in every style. */
  iob_config c = files_on(NULL, &iob_style_loop, 1);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_batch *b = (iob_batch *)&b;
    c.style = style;
    assert_code(iob_batch_create(&b, &c), IOB_EINVAL);
    assert_null(b);
  }
  /* The duration is not used, but still range-checked by the batch. */
  c = files_on(t, &iob_style_loop, 1);
  c.duration_ms = IOB_DURATION_MAX_MS + 1;
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), IOB_ERANGE);
  iob_file_target_destroy(t);
  iob_file_target_destroy(NULL);
  assert_ptr_equal(iob_kind_find("file"), &iob_kind_file);
}

/* ---- requests that name files -------------------------------------------- */

/* Whether the environment let the tests use io_uring (under valgrind it
 * does not: test/meson.build). */
static bool ring_allowed;

/* The engines the loop styles' files may take, in turn: io_uring (where
 * this machine has it and the environment allows it: else said, and
 * skipped) and libuv's pool. Returns false once there is none left, the
 * environment as it was; `k` counts from 0. */
static bool use_engine(int k) {
  if (k == 0) {
    unsetenv("IOBOUND_IO_URING");
    if (ring_allowed && strcmp(iob_file_engine(), "io_uring") == 0)
      return true;
    print_message("(no io_uring here: the pool only)\n");
    k = 1;
  }
  if (k == 1) {
    setenv("IOBOUND_IO_URING", "0", 1);
    assert_string_equal(iob_file_engine(), "pool");
    return true;
  }
  if (ring_allowed)
    unsetenv("IOBOUND_IO_URING");
  return false;
}

/* The path of file `name` in the test's directory. */
static const char *at(const char *name) {
  static char path[4][sizeof(dir) + 260];
  static int next;
  char *p = path[next++ % 4];
  snprintf(p, sizeof(path[0]), "%s/%.190s", dir, name);
  return p;
}

/* Run n requests in an open batch of `style` on a loop of its own, all at
 * once, the loop closed after; the batch, for the test to read and free. */
static iob_batch *run_requests(const iob_style *style,
                               const iob_file_request *r, uint32_t n) {
  test_loop t;
  test_loop_init(&t);
  iob_batch *b =
      test_loop_run_tasks(&t, style, 0, &iob_kind_file, NULL, r, sizeof(*r), n);
  test_loop_close(&t);
  return b;
}

/* One request, run alone; its outcome in *o (the batch is freed: only
 * the status, value and message stay true). */
static int run_one(const iob_style *style, const iob_file_request *r,
                   char *message, size_t size) {
  iob_batch *b = run_requests(style, r, 1);
  iob_outcome o;
  assert_code(iob_batch_outcome(b, 0, &o), 0);
  if (message != NULL)
    snprintf(message, size, "%s", o.message ? o.message : "");
  int status = o.status;
  assert_code(iob_batch_free(b), 0);
  return status;
}

/* What a file holds, in a static buffer, or "(none)". */
static const char *contents(const char *path) {
  static char text[4096];
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return "(none)";
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

static void put(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

/* Remove the test directory's entries (its own files only). */
static void empty_dir(void) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      const char *p = at(e->d_name);
      if (unlink(p) != 0)
        rmdir(p);
    }
  closedir(d);
}

static void
every_style_writes_appends_and_reads_the_files_requests_name(void **state) {
  enum { N = 6 };
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++)
    for (int e = 0; use_engine(e); e++) {
      iob_file_request w[N], a[N], r[N];
      char names[N][32], text[N][32];
      for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "%s-%d", iob_style_name(style), i);
        snprintf(text[i], sizeof(text[i]), "line %d\n", i);
        w[i] = (iob_file_request){.mode = IOB_FILE_WRITE,
                                  .path = at(names[i]),
                                  .data = text[i],
                                  .len = strlen(text[i]),
                                  .flags = i % 2 ? IOB_FILE_ATOMIC : 0};
        w[i].flags |= i % 3 == 0 ? IOB_FILE_FSYNC : 0;
        w[i].path = strdup(w[i].path);
        a[i] = w[i];
        a[i].mode = IOB_FILE_APPEND;
        a[i].flags = i % 3 == 0 ? IOB_FILE_FSYNC : 0;
        r[i] = (iob_file_request){.mode = IOB_FILE_READ, .path = w[i].path};
      }
      iob_batch *bw = run_requests(style, w, N);
      iob_batch *ba = run_requests(style, a, N);
      iob_batch *br = run_requests(style, r, N);
      for (uint32_t i = 0; i < N; i++) {
        iob_outcome o;
        assert_code(iob_batch_outcome(bw, i, &o), 0);
        assert_int_equal(o.status, 0);
        assert_int_equal(o.value, strlen(text[i]));
        const iob_file_result *got = test_result_of(br, i);
        char want[64];
        snprintf(want, sizeof(want), "%s%s", text[i], text[i]);
        assert_int_equal(got->len, strlen(want));
        assert_string_equal(got->data, want);
        assert_code(iob_batch_outcome(br, i, &o), 0);
        assert_int_equal(o.value, strlen(want));
        free((void *)w[i].path);
      }
      assert_code(iob_batch_free(bw), 0);
      assert_code(iob_batch_free(ba), 0);
      assert_code(iob_batch_free(br), 0);
      assert_int_equal(entries_in(dir), N); /* no temporary left */
      empty_dir();
      if (iob_style_flags(style) & IOB_STYLE_ON_THREADS)
        break; /* no engine of theirs */
    }
  use_engine(2);
}

/* Bytes of several chunks (1 MiB each) are written and read whole. */
static void a_request_larger_than_a_chunk_is_written_and_read_whole(void **s) {
  size_t len = (5u << 20) / 2 + 7;
  char *data = malloc(len);
  assert_non_null(data);
  for (size_t k = 0; k < len; k++)
    data[k] = (char)(k * 7 + k / 4096);
  for (int e = 0; use_engine(e); e++) {
    iob_file_request w = {.mode = IOB_FILE_WRITE,
                          .path = at("big"),
                          .data = data,
                          .len = len,
                          .flags = IOB_FILE_BORROW | IOB_FILE_ATOMIC};
    assert_int_equal(run_one(&iob_style_loop, &w, NULL, 0), 0);
    iob_file_request r = {
        .mode = IOB_FILE_READ, .path = at("big"), .max_read = len};
    iob_batch *b = run_requests(&iob_style_loop, &r, 1);
    const iob_file_result *got = test_result_of(b, 0);
    assert_int_equal(got->len, len);
    assert_memory_equal(got->data, data, len);
    assert_code(iob_batch_free(b), 0);
    r.max_read = len - 1; /* one byte short: too large */
    char why[256];
    assert_code(run_one(&iob_style_loop, &r, why, sizeof(why)), UV_EFBIG);
    assert_non_null(strstr(why, "cannot read"));
    assert_non_null(strstr(why, "over max_read"));
    empty_dir();
  }
  free(data);
}

/* A file whose size says 0 (as /proc's) is read to its end all the same. */
static void a_file_that_says_it_is_empty_is_read_to_its_end(void **state) {
  for (int e = 0; use_engine(e); e++) {
    iob_file_request r = {.mode = IOB_FILE_READ, .path = "/proc/self/status"};
    iob_batch *b = run_requests(&iob_style_loop, &r, 1);
    const iob_file_result *got = test_result_of(b, 0);
    assert_cmp(got->len, >, 100);
    assert_non_null(strstr(got->data, "Name:"));
    assert_int_equal(strlen(got->data), got->len);
    assert_code(iob_batch_free(b), 0);
    /* /sys says 4096 bytes, whatever it holds: no EFBIG for the guess. */
    r.path = "/sys/kernel/mm/transparent_hugepage/enabled";
    r.max_read = 200;
    if (access(r.path, R_OK) != 0)
      continue;
    b = run_requests(&iob_style_loop, &r, 1);
    got = test_result_of(b, 0);
    assert_cmp(got->len, >, 0);
    assert_cmp(got->len, <, 200);
    assert_code(iob_batch_free(b), 0);
  }
}

/* An atomic write replaces the file whole; one that fails (the name is a
 * directory) leaves what was there and no temporary. */
static void an_atomic_write_replaces_whole_or_leaves_the_old_file(void **s) {
  for (int e = 0; use_engine(e); e++)
    for (int threads = 0; threads < 2; threads++) {
      const iob_style *style = threads ? &iob_style_threads : &iob_style_loop;
      put(at("config"), "old\n");
      iob_file_request w = {.mode = IOB_FILE_WRITE,
                            .path = at("config"),
                            .data = "new\n",
                            .len = 4,
                            .flags = IOB_FILE_ATOMIC | IOB_FILE_FSYNC,
                            .permissions = 0640};
      assert_int_equal(run_one(style, &w, NULL, 0), 0);
      assert_string_equal(contents(at("config")), "new\n");
      struct stat st;
      assert_int_equal(stat(at("config"), &st), 0);
      assert_int_equal(st.st_mode & 0777, 0640); /* umask 022: main() */
      assert_int_equal(entries_in(dir), 1);

      assert_int_equal(mkdir(at("taken"), 0700), 0);
      put(at("taken/inside"), "kept\n");
      w.path = at("taken");
      char why[256];
      int st2 = run_one(style, &w, why, sizeof(why));
      if (st2 != UV_EISDIR && st2 != UV_ENOTEMPTY)
        fail_msg("an atomic write over a directory: %s (%s)", iob_err_name(st2),
                 why);
      assert_non_null(strstr(why, "cannot rename"));
      assert_non_null(strstr(why, at("taken")));
      assert_string_equal(contents(at("taken/inside")), "kept\n");
      assert_int_equal(entries_in(dir), 2); /* config and taken: no temporary */
      unlink(at("taken/inside"));
      rmdir(at("taken"));
      empty_dir();
    }
}

/* IOB_FILE_NEW refuses a name that is taken, and writes nothing to it. */
static void a_new_file_refuses_a_name_that_is_taken(void **state) {
  for (int e = 0; use_engine(e); e++)
    for (unsigned atomic = 0; atomic <= IOB_FILE_ATOMIC; atomic++) {
      put(at("mine"), "mine\n");
      iob_file_request w = {.mode = IOB_FILE_WRITE,
                            .path = at("mine"),
                            .data = "theirs\n",
                            .len = 7,
                            .flags = IOB_FILE_NEW | atomic};
      char why[256];
      assert_code(run_one(&iob_style_loop, &w, why, sizeof(why)), UV_EEXIST);
      assert_non_null(strstr(why, atomic ? "cannot rename" : "cannot open"));
      assert_string_equal(contents(at("mine")), "mine\n");
      assert_int_equal(entries_in(dir), 1);
      w.path = at("fresh");
      assert_int_equal(run_one(&iob_style_loop, &w, NULL, 0), 0);
      assert_string_equal(contents(at("fresh")), "theirs\n");
      w.mode = IOB_FILE_APPEND;
      w.flags = IOB_FILE_NEW;
      assert_code(run_one(&iob_style_loop, &w, NULL, 0), UV_EEXIST);
      empty_dir();
    }
}

/* A new file (IOB_FILE_NEW) is iobound's until it is whole: a write
 * cancelled halfway removes it, so that a retry does not find the name
 * taken by a part. */
static void a_new_file_cancelled_halfway_is_removed(void **state) {
  size_t len = (size_t)64 << 20;
  char *data = malloc(len);
  assert_non_null(data);
  memset(data, 'n', len);
  for (int e = 0; use_engine(e); e++) {
    int cancelled = 0;
    for (int attempt = 0; attempt < 10 && cancelled == 0; attempt++) {
      iob_file_request w = {.mode = IOB_FILE_WRITE,
                            .path = at("part"),
                            .data = data,
                            .len = len,
                            .flags = IOB_FILE_NEW | IOB_FILE_BORROW};
      test_loop t;
      test_loop_init(&t);
      iob_config c;
      iob_config_init(&c);
      c.open = 1;
      iob_batch *b = test_loop_create(&t, &c, NULL);
      iob_task task;
      iob_task_init(&task);
      task.kind = &iob_kind_file;
      task.input = &w;
      assert_int_equal(iob_batch_submit(b, &task), 0);
      test_loop_start_created(&t, b);
      test_loop_cancel_after(&t, b, 2);
      test_loop_run(&t);
      test_loop_close(&t);
      struct stat st;
      int status = iob_batch_records(b, NULL)[0].status;
      if (status == 0) {
        assert_int_equal(stat(at("part"), &st), 0);
        assert_int_equal(st.st_size, (off_t)len);
      } else {
        assert_code(status, IOB_ECANCELED);
        assert_int_not_equal(stat(at("part"), &st), 0);
        cancelled++;
      }
      assert_code(iob_batch_free(b), 0);
      empty_dir();
    }
    if (cancelled == 0)
      print_message("%s: every write ended before its cancel\n",
                    iob_file_engine());
  }
  free(data);
}

/* A symbolic link at the path is refused, with a word on how to follow
 * it, unless the request says IOB_FILE_FOLLOW. */
static void a_symbolic_link_is_refused_unless_followed(void **state) {
  for (int e = 0; use_engine(e); e++) {
    put(at("real"), "real\n");
    assert_int_equal(symlink(at("real"), at("link")), 0);
    for (int mode = 0; mode < 3; mode++) {
      iob_file_request r = {.mode = (iob_file_mode)mode,
                            .path = at("link"),
                            .data = "x",
                            .len = 1};
      char why[256];
      assert_code(run_one(&iob_style_threads, &r, why, sizeof(why)), UV_ELOOP);
      assert_code(run_one(&iob_style_loop, &r, why, sizeof(why)), UV_ELOOP);
      assert_non_null(strstr(why, "IOB_FILE_FOLLOW"));
    }
    assert_string_equal(contents(at("real")), "real\n");
    iob_file_request r = {.mode = IOB_FILE_APPEND,
                          .path = at("link"),
                          .data = "more\n",
                          .len = 5,
                          .flags = IOB_FILE_FOLLOW};
    assert_int_equal(run_one(&iob_style_loop, &r, NULL, 0), 0);
    assert_string_equal(contents(at("real")), "real\nmore\n");
    empty_dir();
  }
}

/* A FIFO or a directory at the path fails at once, written or read,
 * never waiting for a reader or a writer. */
static void a_fifo_or_directory_fails_at_once_without_waiting(void **state) {
  for (int e = 0; use_engine(e); e++) {
    assert_int_equal(mkfifo(at("fifo"), 0600), 0);
    assert_int_equal(mkdir(at("dir"), 0700), 0);
    /* A reader on the FIFO, so that an open for writing would succeed. */
    int reader = open(at("fifo"), O_RDONLY | O_NONBLOCK);
    assert_cmp(reader, >=, 0);
    const iob_style *styles[] = {&iob_style_loop, &iob_style_pool};
    for (int k = 0; k < 2; k++)
      for (int mode = 0; mode < 3; mode++) {
        iob_file_request r = {.mode = (iob_file_mode)mode,
                              .path = at("fifo"),
                              .data = "x",
                              .len = 1};
        char why[256];
        assert_code(run_one(styles[k], &r, why, sizeof(why)), UV_EFTYPE);
        r.path = at("dir");
        assert_code(run_one(styles[k], &r, why, sizeof(why)), UV_EISDIR);
        assert_non_null(strstr(why, "cannot open"));
      }
    close(reader);
    for (int mode = 0; mode < 3;
         mode += 2) { /* no reader: no one to wait for */
      iob_file_request r = {.mode = (iob_file_mode)mode,
                            .path = at("fifo"),
                            .data = "x",
                            .len = 1};
      char why[256];
      assert_code(run_one(&iob_style_loop, &r, why, sizeof(why)), UV_ENXIO);
      assert_non_null(strstr(why, "a FIFO no one reads"));
    }
    unlink(at("fifo"));
    rmdir(at("dir"));
  }
}

/* Blocking libuv's pool for 400 ms with uv_queue_work() jobs (one per
 * thread it has) on the loop of the test. */
typedef struct blocker {
  uv_work_t work;
  uint64_t until_ms;
} blocker;

static void block_work(uv_work_t *w) {
  blocker *b = w->data;
  while (uv_hrtime() / 1000000 < b->until_ms)
    uv_sleep(1);
}
static void block_done(uv_work_t *w, int status) { (void)w, (void)status; }

/* How long the loop style takes for 16 writes of 64 KiB beside a pool
 * kept busy for 400 ms, in ms. */
static double writes_beside_a_busy_pool(void) {
  enum { N = 16, BLOCKERS = 64 };
  const char *size = getenv("UV_THREADPOOL_SIZE");
  int threads = size != NULL ? atoi(size) : 4;
  assert_cmp(threads, >, 0);
  assert_cmp(threads, <=, BLOCKERS);
  static char data[64 << 10];
  iob_file_request w[N];
  char names[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof(names[i]), "w%d", i);
    w[i] = (iob_file_request){.mode = IOB_FILE_WRITE,
                              .data = data,
                              .len = sizeof(data),
                              .flags = IOB_FILE_BORROW,
                              .path = strdup(at(names[i]))};
  }
  test_loop t;
  test_loop_init(&t);
  blocker blockers[BLOCKERS];
  for (int k = 0; k < threads; k++) {
    blockers[k].work.data = &blockers[k];
    blockers[k].until_ms = uv_hrtime() / 1000000 + 400;
    assert_code(
        uv_queue_work(&t.loop, &blockers[k].work, block_work, block_done), 0);
  }
  uv_sleep(50); /* the pool's threads have taken them */
  iob_batch *b = test_loop_run_tasks(&t, &iob_style_loop, 0, &iob_kind_file,
                                     NULL, w, sizeof(w[0]), N);
  const iob_record *rec = iob_batch_records(b, NULL);
  uint64_t last = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(rec[i].status, 0);
    last = rec[i].finished_ns > last ? rec[i].finished_ns : last;
    free((void *)w[i].path);
  }
  double ms = (double)(last - rec[0].queued_ns) / 1e6;
  assert_code(iob_batch_free(b), 0);
  test_loop_close(&t);
  empty_dir();
  return ms;
}

/* On io_uring, the loop style's files do not wait for libuv's pool: 16
 * writes finish while every pool thread is busy for 400 ms. On the pool,
 * they wait for it (the lesson docs/real-io.md tells). */
static void
the_loop_styles_files_do_not_wait_behind_the_pool_on_io_uring(void **state) {
  for (int e = 0; use_engine(e); e++) {
    double ms = writes_beside_a_busy_pool();
    bool ring = strcmp(iob_file_engine(), "io_uring") == 0;
    print_message("%s: 16 writes beside a busy pool took %.1f ms\n",
                  iob_file_engine(), ms);
    if (ring && ms > 250)
      fail_msg("on io_uring, writes waited for the pool: %.1f ms, expected "
               "under 250 ms",
               ms);
    if (!ring && ms < 300)
      fail_msg("on the pool, writes did not wait for it: %.1f ms, expected "
               "300 ms or more",
               ms);
  }
}

/* A cancel in the middle of atomic writes leaves every file whole, old
 * or new, and no temporary. */
static void
a_cancel_leaves_each_atomic_file_old_or_new_and_no_temporary(void **state) {
  enum { N = 64 };
  size_t len = 1 << 20;
  char *data = malloc(len);
  assert_non_null(data);
  memset(data, 'n', len);
  for (int e = 0; use_engine(e); e++) {
    iob_file_request w[N];
    char names[N][16];
    for (int i = 0; i < N; i++) {
      snprintf(names[i], sizeof(names[i]), "a%d", i);
      put(at(names[i]), "old");
      w[i] = (iob_file_request){.mode = IOB_FILE_WRITE,
                                .data = data,
                                .len = len,
                                .flags = IOB_FILE_ATOMIC | IOB_FILE_BORROW |
                                         IOB_FILE_FSYNC,
                                .path = strdup(at(names[i]))};
    }
    test_loop t;
    test_loop_init(&t);
    iob_config c;
    iob_config_init(&c);
    c.open = 1;
    c.max_in_flight = 8;
    iob_batch *b = test_loop_create(&t, &c, NULL);
    for (int i = 0; i < N; i++) {
      iob_task task;
      iob_task_init(&task);
      task.kind = &iob_kind_file;
      task.input = &w[i];
      assert_int_equal(iob_batch_submit(b, &task), i);
    }
    test_loop_start_created(&t, b);
    test_loop_cancel_after(&t, b, 5);
    test_loop_run(&t);
    test_loop_close(&t);
    const iob_record *rec = iob_batch_records(b, NULL);
    int cancelled = 0;
    for (int i = 0; i < N; i++) {
      struct stat st;
      assert_int_equal(stat(w[i].path, &st), 0);
      iob_outcome o;
      assert_code(iob_batch_outcome(b, i, &o), 0);
      if (rec[i].status == 0)
        assert_int_equal(st.st_size, len);
      else if (st.st_size == (off_t)len) { /* stopped after the rename */
        assert_int_equal(o.value, len);
        assert_non_null(o.message);
        assert_non_null(strstr(o.message, "before the stop"));
      } else if (st.st_size != 3)
        fail_msg("%s: %lld bytes, neither old nor new", names[i],
                 (long long)st.st_size);
      cancelled += rec[i].status == IOB_ECANCELED;
      free((void *)w[i].path);
    }
    assert_cmp(cancelled, >, 0);
    assert_int_equal(entries_in(dir), N); /* no temporary */
    assert_code(iob_batch_free(b), 0);
    empty_dir();
  }
  free(data);
}

/* A task with neither a request nor a target fails alone, with a
 * message; a batch of count operations without a target is refused. */
static void an_operation_needs_a_request_or_a_target(void **state) {
  test_loop t;
  test_loop_init(&t);
  iob_config c;
  iob_config_init(&c);
  c.open = 1;
  c.kind = &iob_kind_file; /* a batch that takes requests needs no target */
  iob_batch *b = test_loop_create(&t, &c, NULL);
  iob_task task;
  iob_task_init(&task);
  task.kind = &iob_kind_file;
  assert_int_equal(iob_batch_submit(b, &task), 0);
  assert_code(iob_batch_close(b), 0);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  test_loop_close(&t);
  test_failed_with(b, 0, IOB_EINVAL, "needs an iob_file_request or a target");
  assert_code(iob_batch_free(b), 0);
  c.open = 0;
  c.count = 1;
  assert_code(iob_batch_create(&b, &c), IOB_EINVAL);
}

/* Each bad request is refused at submit with its code, and nothing is
 * added to the batch. */
static void bad_requests_are_refused_at_submit_and_add_nothing(void **s) {
  static char long_path[IOB_FILE_PATH_MAX + 1];
  memset(long_path, 'x', IOB_FILE_PATH_MAX);
  const char *p = "/tmp/x";
  const struct {
    iob_file_request r;
    int want;
  } bad[] = {
      {{.mode = IOB_FILE_WRITE, .path = NULL}, IOB_EINVAL},
      {{.mode = IOB_FILE_WRITE, .path = ""}, IOB_EINVAL},
      {{.mode = (iob_file_mode)3, .path = p}, IOB_EINVAL},
      {{.mode = IOB_FILE_WRITE, .path = p, .flags = 1u << 9}, IOB_EINVAL},
      {{.mode = IOB_FILE_WRITE, .path = p, .permissions = 010000}, IOB_EINVAL},
      {{.mode = IOB_FILE_WRITE, .path = p, .len = 3}, IOB_EINVAL},
      {{.mode = IOB_FILE_APPEND, .path = p, .flags = IOB_FILE_ATOMIC},
       IOB_EINVAL},
      {{.mode = IOB_FILE_WRITE,
        .path = p,
        .flags = IOB_FILE_ATOMIC | IOB_FILE_FOLLOW},
       IOB_EINVAL},
      {{.mode = IOB_FILE_READ, .path = p, .flags = IOB_FILE_FSYNC}, IOB_EINVAL},
      {{.mode = IOB_FILE_WRITE, .path = long_path}, UV_ENAMETOOLONG},
      {{.mode = IOB_FILE_WRITE,
        .path = p,
        .data = p,
        .len = ((size_t)1 << 30) + 1,
        .flags = IOB_FILE_BORROW},
       IOB_ERANGE},
      {{.mode = IOB_FILE_READ, .path = p, .max_read = ((size_t)1 << 30) + 1},
       IOB_ERANGE},
  };
  iob_config c;
  iob_config_init(&c);
  c.open = 1;
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    iob_task task;
    iob_task_init(&task);
    task.kind = &iob_kind_file;
    task.input = &bad[k].r;
    int got = iob_batch_submit(b, &task);
    if (got != bad[k].want)
      fail_msg("bad request %zu: %s, expected %s", k, iob_err_name(got),
               iob_err_name(bad[k].want));
  }
  uint32_t n = 1;
  iob_batch_records(b, &n);
  assert_int_equal(n, 0);
  assert_code(iob_batch_free(b), 0);
}

int main(void) {
  umask(022);
  const char *engine = getenv("IOBOUND_IO_URING");
  ring_allowed = engine == NULL || strcmp(engine, "0") != 0;
  snprintf(dir, sizeof(dir), "/tmp/iobound-test-file-XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("test-file: mkdtemp");
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_style_writes_and_reads_its_files_and_leaves_none),
      cmocka_unit_test(the_loop_style_starts_every_file_operation_at_once),
      cmocka_unit_test(a_file_larger_than_a_chunk_is_moved_whole),
      cmocka_unit_test(batches_at_once_on_one_target_never_collide),
      cmocka_unit_test(a_cancel_stops_file_operations_and_removes_their_files),
      cmocka_unit_test(operations_past_the_timeout_are_cut_off),
      cmocka_unit_test(a_directory_gone_fails_each_operation_with_a_message),
      cmocka_unit_test(a_read_target_whose_files_went_away_fails_each_read),
      cmocka_unit_test(a_target_in_use_refuses_to_be_destroyed),
      cmocka_unit_test(bad_targets_and_arguments_are_refused),
      cmocka_unit_test(
          every_style_writes_appends_and_reads_the_files_requests_name),
      cmocka_unit_test(a_request_larger_than_a_chunk_is_written_and_read_whole),
      cmocka_unit_test(a_file_that_says_it_is_empty_is_read_to_its_end),
      cmocka_unit_test(an_atomic_write_replaces_whole_or_leaves_the_old_file),
      cmocka_unit_test(a_new_file_refuses_a_name_that_is_taken),
      cmocka_unit_test(a_new_file_cancelled_halfway_is_removed),
      cmocka_unit_test(a_symbolic_link_is_refused_unless_followed),
      cmocka_unit_test(a_fifo_or_directory_fails_at_once_without_waiting),
      cmocka_unit_test(
          the_loop_styles_files_do_not_wait_behind_the_pool_on_io_uring),
      cmocka_unit_test(
          a_cancel_leaves_each_atomic_file_old_or_new_and_no_temporary),
      cmocka_unit_test(an_operation_needs_a_request_or_a_target),
      cmocka_unit_test(bad_requests_are_refused_at_submit_and_add_nothing),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (rmdir(dir) != 0) {
    fprintf(stderr, "test-file: %s was not left empty\n", dir);
    failed++;
  }
  return failed;
}
