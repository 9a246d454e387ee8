/* Files in a directory another user can write to: an attacker (a second
 * user, "nobody") watches the directory and plants symbolic links and FIFOs
 * where the victim's next files will be, or swaps a read target's files
 * for them. The victim (this process) must never write through a link,
 * never read through one, and never block on a FIFO, whatever the kernel's
 * fs.protected_symlinks says: the directory is world-writable without the
 * sticky bit, where that protection does not apply anyway.
 *
 * Needs root, to be the attacker too (setgid/setuid in a forked child);
 * exits 77 (skipped) where it cannot switch users. */
#define _DEFAULT_SOURCE /* setgroups(), DT_REG, usleep() */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static char shared[64];  /* world-writable, not sticky: the attack ground */
static char private[64]; /* the victim's own, 0700 */
static char secret[128]; /* a 0600 file of the victim's in it */
static uid_t attacker_uid;
static gid_t attacker_gid;

static const char secret_text[] = "the victim's private words\n";

/* ---- the attacker: another user, in a child process --------------------- */

/* What it plants at a name it predicts. */
typedef enum plant { PLANT_LINK, PLANT_FIFO } plant;

/* Drop to the second user; die with the victim, whose end (a crash, a
 * timeout) must not leave the attacker running. The death signal is set
 * after the switch, which clears it. */
static void become_attacker(pid_t victim) {
  if (setgroups(0, NULL) != 0 || setgid(attacker_gid) != 0 ||
      setuid(attacker_uid) != 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
      getppid() != victim)
    _exit(2);
}

/* Plant at `path`: a link to the secret, or a FIFO no one writes. */
static void plant_at(const char *path, plant what) {
  if (what == PLANT_LINK)
    (void)symlink(secret, path);
  else
    (void)mkfifo(path, 0666);
}

/* Guess the names after "PREFIX-N": "PREFIX-(N+1)" and on, in decimal and
 * in hex, as a name made of a counter invites. */
static void predict_after(const char *name, plant what) {
  const char *dash = strrchr(name, '-');
  if (dash == NULL)
    return;
  unsigned long long n = strtoull(dash + 1, NULL, 10);
  unsigned long long h = strtoull(dash + 1, NULL, 16);
  int stem = (int)(dash - name);
  char path[512];
  for (unsigned long long k = 1; k <= 64; k++) {
    snprintf(path, sizeof(path), "%s/%.*s-%llu", shared, stem, name, n + k);
    plant_at(path, what);
    snprintf(path, sizeof(path), "%s/%.*s-%016llx", shared, stem, name, h + k);
    plant_at(path, what);
  }
}

/* Watch the directory until killed: every file the victim makes is a hint
 * at its next names. */
static void watch_and_plant(pid_t victim, plant what) {
  become_attacker(victim);
  char last[256] = "";
  for (;;) {
    DIR *d = opendir(shared);
    if (d == NULL)
      _exit(3);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
      if (strncmp(e->d_name, "iobound-", 8) == 0 && e->d_type == DT_REG &&
          strcmp(e->d_name, last) != 0) {
        predict_after(e->d_name, what);
        snprintf(last, sizeof(last), "%s", e->d_name);
      }
    closedir(d);
    usleep(200);
  }
}

static pid_t start_attacker(plant what) {
  pid_t victim = getpid();
  pid_t pid = fork();
  assert_cmp(pid, >=, 0);
  if (pid == 0)
    watch_and_plant(victim, what);
  return pid;
}

static void stop_attacker(pid_t pid) {
  int status;
  assert_int_equal(kill(pid, SIGKILL), 0);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status)); /* it ran until killed: it could plant */
}

/* Remove what the attacker left (as root, the victim may). */
static void sweep(void) {
  DIR *d = opendir(shared);
  assert_non_null(d);
  char path[512];
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (e->d_name[0] != '.') {
      snprintf(path, sizeof(path), "%s/%s", shared, e->d_name);
      if (unlink(path) != 0)
        assert_int_equal(rmdir(path), 0);
    }
  closedir(d);
}

/* The secret is as the victim wrote it. */
static void assert_secret_intact(void) {
  char got[256] = {0};
  FILE *f = fopen(secret, "r");
  assert_non_null(f);
  size_t n = fread(got, 1, sizeof(got) - 1, f);
  fclose(f);
  if (n != strlen(secret_text) || memcmp(got, secret_text, n) != 0)
    fail_msg("the secret was overwritten: %zu bytes, \"%.40s\"", n, got);
}

/* ---- the victim ------------------------------------------------------------ */

static iob_file_target *write_target(void) {
  iob_file_options o;
  iob_file_options_init(&o);
  o.size_kib = 1;
  iob_file_target *t;
  assert_code(iob_file_target_create(&t, shared, &o), 0);
  return t;
}

/* A thousand files one after another give the watcher every chance to
 * get ahead of the victim; a counter in the names made it write the
 * secret within the first few dozen. */
static void writes_never_follow_links_another_user_planted(void **state) {
  iob_file_target *t = write_target();
  const iob_style *styles[] = {&iob_style_sequential, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    pid_t attacker = start_attacker(PLANT_LINK);
    iob_config c = config_of(styles[k], 1000, 0);
    c.kind = &iob_kind_file;
    c.target = t;
    c.max_in_flight = 1;
    iob_batch *b = run_on_own_loop(&c, NULL);
    stop_attacker(attacker);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    assert_int_equal(r.failed, 0); /* it could not guess a single name */
    assert_code(iob_batch_free(b), 0);
    assert_secret_intact();
    sweep();
  }
  iob_file_target_destroy(t);
}

/* The same with FIFOs: an open for writing would wait for a reader
 * forever, past any timeout. */
static void writes_never_block_on_fifos_another_user_planted(void **state) {
  iob_file_target *t = write_target();
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    pid_t attacker = start_attacker(PLANT_FIFO);
    iob_config c = config_of(styles[k], 500, 0);
    c.kind = &iob_kind_file;
    c.target = t;
    c.max_in_flight = 1;
    c.timeout_ms = 500;
    uint64_t t0 = uv_hrtime();
    alarm(60); /* a hang fails the test rather than the suite's clock */
    iob_batch *b = run_on_own_loop(&c, NULL);
    alarm(0);
    stop_attacker(attacker);
    iob_report r;
    assert_code(iob_batch_report(b, &r), 0);
    assert_int_equal(r.failed, 0);
    assert_ms_below(MS(uv_hrtime() - t0), 30000);
    assert_code(iob_batch_free(b), 0);
    sweep();
  }
  iob_file_target_destroy(t);
}

/* The name of a read target's prepared file `index`, found in the
 * directory (names end in "-INDEX"). */
static void prepared_name(int index, char *out, size_t size) {
  DIR *d = opendir(shared);
  assert_non_null(d);
  char suffix[16];
  snprintf(suffix, sizeof(suffix), "-%d", index);
  out[0] = '\0';
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    size_t n = strlen(e->d_name), m = strlen(suffix);
    if (strncmp(e->d_name, "iobound-read-", 13) == 0 && n > m &&
        strcmp(e->d_name + n - m, suffix) == 0)
      snprintf(out, size, "%s/%s", shared, e->d_name);
  }
  closedir(d);
  assert_cmp(out[0], !=, '\0');
}

/* In a directory without the sticky bit, anyone may remove the victim's
 * prepared files and put something else under their names: file 1 becomes
 * a link to the secret, file 2 a FIFO, file 3 a directory. Each read fails
 * at once with a code and words for what it found, in every style. */
static void
reads_refuse_links_fifos_and_directories_put_in_their_place(void **state) {
  iob_file_options o;
  iob_file_options_init(&o);
  o.mode = IOB_FILE_READ;
  o.size_kib = 1;
  o.files = 4;
  iob_file_target *t;
  assert_code(iob_file_target_create(&t, shared, &o), 0);
  char names[4][512];
  for (int k = 0; k < 4; k++)
    prepared_name(k, names[k], sizeof(names[k]));

  pid_t victim = getpid();
  pid_t pid = fork();
  assert_cmp(pid, >=, 0);
  if (pid == 0) { /* the attacker swaps files 1..3 */
    become_attacker(victim);
    for (int k = 1; k < 4; k++)
      if (unlink(names[k]) != 0)
        _exit(4);
    if (symlink(secret, names[1]) != 0 || mkfifo(names[2], 0666) != 0 ||
        mkdir(names[3], 0777) != 0)
      _exit(5);
    _exit(0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);

  static const int expected[4] = {0, UV_ELOOP, UV_EFTYPE, UV_EISDIR};
  const iob_style *style;
  for (size_t s = 0; (style = iob_style_at(s)) != NULL; s++) {
    iob_config c = config_of(style, 4, 0);
    c.kind = &iob_kind_file;
    c.target = t;
    c.timeout_ms = 2000;
    alarm(60);
    iob_batch *b = run_on_own_loop(&c, NULL);
    alarm(0);
    for (uint32_t i = 0; i < 4; i++) {
      iob_outcome out;
      assert_code(iob_batch_outcome(b, i, &out), 0);
      if (out.status != expected[i])
        fail_msg("%s: file %u: %s, expected %s (%s)", iob_style_name(style), i,
                 iob_err_name(out.status), iob_err_name(expected[i]),
                 out.message ? out.message : "no message");
      if (i == 0) {
        assert_int_equal(out.value, 1024);
      } else {
        assert_non_null(out.message);
        assert_non_null(strstr(out.message, "cannot open "));
        assert_non_null(strstr(out.message, uv_strerror(expected[i])));
      }
    }
    assert_code(iob_batch_free(b), 0);
  }
  iob_file_target_destroy(t);
  sweep();
  assert_secret_intact();
}

/* Requests that name a file in the shared directory, where another user
 * put a link to the secret first: a plain write or append refuses the
 * link (UV_ELOOP), a new file refuses the taken name (UV_EEXIST), an
 * atomic write replaces the link itself; none writes the secret. */
static void
named_writes_never_go_through_a_link_another_user_planted(void **state) {
  char name[96];
  snprintf(name, sizeof(name), "%s/report.txt", shared);
  const struct {
    iob_file_mode mode;
    unsigned flags;
    int want;
  } cases[] = {
      {IOB_FILE_WRITE, 0, UV_ELOOP},
      {IOB_FILE_APPEND, 0, UV_ELOOP},
      {IOB_FILE_WRITE, IOB_FILE_NEW, UV_EEXIST},
      {IOB_FILE_APPEND, IOB_FILE_NEW, UV_EEXIST},
      {IOB_FILE_WRITE, IOB_FILE_ATOMIC, 0},
  };
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++)
    for (size_t j = 0; j < sizeof(cases) / sizeof(cases[0]); j++) {
      assert_int_equal(symlink(secret, name), 0);
      assert_int_equal(lchown(name, attacker_uid, attacker_gid), 0);
      iob_file_request r = {.mode = cases[j].mode,
                            .flags = cases[j].flags,
                            .path = name,
                            .data = "overwritten\n",
                            .len = 12};
      test_loop t;
      test_loop_init(&t);
      iob_batch *b = test_loop_run_tasks(&t, styles[k], 0, &iob_kind_file, NULL,
                                         &r, sizeof(r), 1);
      test_loop_close(&t);
      iob_outcome o;
      assert_code(iob_batch_outcome(b, 0, &o), 0);
      if (o.status != cases[j].want)
        fail_msg("%s, case %zu: %s (%s), expected %s",
                 iob_style_name(styles[k]), j, iob_err_name(o.status),
                 o.message ? o.message : "", iob_err_name(cases[j].want));
      assert_code(iob_batch_free(b), 0);
      assert_secret_intact();
      struct stat st;
      assert_int_equal(lstat(name, &st), 0);
      assert_true(cases[j].want == 0 ? S_ISREG(st.st_mode)
                                     : S_ISLNK(st.st_mode));
      sweep();
    }
}

static void cleanup(void) {
  unlink(secret);
  rmdir(private);
  if (shared[0] != '\0') {
    sweep();
    rmdir(shared);
  }
}

int main(void) {
  struct passwd *nobody = getpwnam("nobody");
  if (geteuid() != 0 || nobody == NULL || nobody->pw_uid == 0) {
    fprintf(stderr, "skipped: needs root and a user 'nobody' to attack "
                    "as a second user\n");
    return 77;
  }
  attacker_uid = nobody->pw_uid;
  attacker_gid = nobody->pw_gid;
  snprintf(shared, sizeof(shared), "/tmp/iobound-shared-XXXXXX");
  snprintf(private, sizeof(private), "/tmp/iobound-private-XXXXXX");
  if (mkdtemp(shared) == NULL || mkdtemp(private) == NULL ||
      chmod(shared, 0777) != 0) {
    perror("mkdtemp");
    return 77;
  }
  snprintf(secret, sizeof(secret), "%s/secret", private);
  FILE *f = fopen(secret, "w");
  if (f == NULL || fputs(secret_text, f) < 0 || fclose(f) != 0 ||
      chmod(secret, 0600) != 0) {
    perror(secret);
    cleanup();
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(writes_never_follow_links_another_user_planted),
      cmocka_unit_test(writes_never_block_on_fifos_another_user_planted),
      cmocka_unit_test(
          reads_refuse_links_fifos_and_directories_put_in_their_place),
      cmocka_unit_test(
          named_writes_never_go_through_a_link_another_user_planted),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  cleanup();
  return failed;
}
