/* Shared by the benchmark programs (test/benchmark-*.c): a fresh child
 * process per measurement, peak memory, medians and the verdict lines.
 *
 * Every measurement runs in a child of its own, so one run's memory and
 * libuv's process-wide thread pool never leak into the next: the child
 * fills a result struct and sends it back through a pipe. A comparison
 * runs both of its sides a few times, in turn, and keeps the medians. */
#ifndef IOB_BENCHMARK_H
#define IOB_BENCHMARK_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#define BENCH_MS(ns) ((double)(ns) / 1e6)

/* The most memory this process has had resident so far, in KiB. */
static inline long bench_peak_rss_kib(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

/* CPU time this process has used so far, user and system, in ms. */
static inline double bench_cpu_ms(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* Bytes per item of a growth in peak RSS (KiB) over `count` items. */
static inline double bench_bytes_per(long before_kib, long after_kib,
                                     uint64_t count) {
  return (double)(after_kib - before_kib) * 1024.0 / (double)count;
}

/* A measurement: reads `in`, fills `out`, returns 0 if it ran. */
typedef int (*bench_fn)(const void *in, void *out);

static inline int bench_pipe_io(int fd, void *buf, size_t size, bool rd) {
  char *p = buf;
  while (size > 0) {
    ssize_t n = rd ? read(fd, p, size) : write(fd, p, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    size -= (size_t)n;
  }
  return 0;
}

/* A child with a pipe to its parent: fds[1] is the child's end, fds[0]
 * the parent's. Returns fork()'s pid, or -1 with nothing left open. */
static inline pid_t bench_fork_piped(int fds[2]) {
  if (pipe(fds) != 0)
    return -1;
  fflush(NULL); /* or the child would print our buffered lines again */
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
  }
  return pid;
}

/* Run fn(in, out) in a child process and copy its `out` (size bytes)
 * back. Returns 0, or -1 if the child could not run or failed. */
static inline int bench_in_child(bench_fn fn, const void *in, void *out,
                                 size_t size) {
  int fds[2];
  pid_t pid = bench_fork_piped(fds);
  if (pid < 0)
    return -1;
  if (pid == 0) {
    close(fds[0]);
    int rc = fn(in, out);
    if (rc == 0)
      rc = bench_pipe_io(fds[1], out, size, false);
    fflush(NULL);
    _exit(rc == 0 ? 0 : 1);
  }
  close(fds[1]);
  int rc = bench_pipe_io(fds[0], out, size, true);
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    rc = -1;
  return rc;
}

#define BENCH_MAX_RUNS 5

/* A comparison: each of two sides `runs` times (1..BENCH_MAX_RUNS), in
 * turn, every run in a fresh child. Results are `size` bytes with a double
 * at offset `done_at` that ranks them; out[side] receives the side's run
 * with the median of those, and times[side] every run's, sorted. */
static inline int bench_compare(const void *in, const bench_fn fn[2],
                                void *const out[2], size_t size, size_t done_at,
                                int runs, double times[2][BENCH_MAX_RUNS]) {
  if (runs < 1 || runs > BENCH_MAX_RUNS)
    return -1;
  char *all = malloc(2 * (size_t)runs * size);
  if (all == NULL)
    return -1;
  int err = 0;
  for (int k = 0; k < runs && err == 0; k++)
    for (int side = 0; side < 2 && err == 0; side++)
      err = bench_in_child(fn[side], in, all + (2 * (size_t)k + side) * size,
                           size);
  for (int side = 0; side < 2 && err == 0; side++) {
    int order[BENCH_MAX_RUNS];
    for (int k = 0; k < runs; k++) { /* insertion sort: a handful */
      char *r = all + (2 * (size_t)k + side) * size;
      double t;
      memcpy(&t, r + done_at, sizeof(t));
      int j = k;
      for (; j > 0 && times[side][j - 1] > t; j--) {
        times[side][j] = times[side][j - 1];
        order[j] = order[j - 1];
      }
      times[side][j] = t;
      order[j] = k;
    }
    memcpy(out[side], all + (2 * (size_t)order[runs / 2] + side) * size, size);
  }
  free(all);
  return err;
}

/* Print "target met: ..." or "target MISSED: ..."; returns met. A missed
 * target is a finding, not a failure: benchmarks exit 0 all the same. */
__attribute__((format(printf, 2, 3))) static inline bool
bench_target(bool met, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("target %s: ", met ? "met" : "MISSED");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  return met;
}

/* ---- peers: programs of their own (Go, Node.js, tokio) ------------------- */

/* What a peer program prints, as one line:
 * "result WALL_MS CPU_MS USER_MS SYS_MS OK FAILED FIRST_ERROR|-". */
typedef struct bench_line {
  double wall_ms, cpu_ms, user_ms, sys_ms;
  uint32_t ok, failed;
  char error[160]; /* the first failure, in the peer's words; "" if none */
} bench_line;

/* Run argv (its child calls prepare(), if not NULL, before the exec) and
 * read its result line. 0, or -1 if it gave none or exited with an
 * error (the line, if any, is read all the same). */
static inline int bench_run_program(char *const argv[], void (*prepare)(void),
                                    bench_line *r) {
  int fds[2];
  pid_t pid = bench_fork_piped(fds);
  if (pid < 0)
    return -1;
  if (pid == 0) {
    close(fds[0]);
    if (prepare != NULL)
      prepare();
    dup2(fds[1], STDOUT_FILENO);
    close(fds[1]);
    execvp(argv[0], argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  char out[4096];
  size_t len = 0;
  ssize_t n;
  while ((n = read(fds[0], out + len, sizeof(out) - 1 - len)) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break;
    len += (size_t)n;
    if (len == sizeof(out) - 1)
      break;
  }
  out[len] = '\0';
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  const char *line = strstr(out, "result ");
  int used = 0;
  if (line == NULL ||
      sscanf(line, "result %lf %lf %lf %lf %" SCNu32 " %" SCNu32 " %n",
             &r->wall_ms, &r->cpu_ms, &r->user_ms, &r->sys_ms, &r->ok,
             &r->failed, &used) < 6) {
    fprintf(stderr, "%s gave no result (%s)\n", argv[0], out);
    return -1;
  }
  snprintf(r->error, sizeof(r->error), "%.*s", (int)strcspn(line + used, "\n"),
           line + used);
  if (strcmp(r->error, "-") == 0)
    r->error[0] = '\0';
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Is `program` an executable in a directory of PATH? */
static inline bool bench_on_path(const char *program) {
  const char *path = getenv("PATH");
  if (path == NULL)
    return false;
  char file[4096];
  for (const char *p = path; *p != '\0';) {
    size_t n = strcspn(p, ":");
    snprintf(file, sizeof(file), "%.*s/%s", (int)n, p, program);
    if (access(file, X_OK) == 0)
      return true;
    p += n + (p[n] == ':');
  }
  return false;
}

/* Build the Go program `source` into `binary` (a file in `dir`, which
 * exists), with a build cache in `dir` when there is no HOME to keep one.
 * false, said on stderr, when there is no go or the build fails. */
static inline bool bench_go_build(const char *source, const char *dir,
                                  const char *binary) {
  if (!bench_on_path("go") || access(source, R_OK) != 0)
    return false;
  char cmd[2048];
  const char *cache = getenv("GOCACHE") || getenv("HOME") ? "" : "GOCACHE=";
  snprintf(cmd, sizeof(cmd), "%s%s%s go build -o '%s' '%s'", cache,
           *cache ? dir : "", *cache ? "/cache" : "", binary, source);
  fflush(NULL);
  if (system(cmd) != 0) {
    fprintf(stderr, "go build %s failed: no Go row\n", source);
    return false;
  }
  return true;
}

/* Build the tokio program test/NAME (a Cargo.toml and src/main.rs) offline
 * from Debian's packaged crates, into build_dir/NAME (kept: later runs
 * reuse the build), its binary's path into `binary`. NULL, or why not. */
static inline const char *bench_tokio_build(const char *scripts,
                                            const char *build_dir,
                                            const char *name, char *binary,
                                            size_t size) {
  if (!bench_on_path("cargo"))
    return "cargo not found (apt-get install cargo librust-tokio-dev "
           "librust-hyper-dev)";
  if (access("/usr/share/cargo/registry", R_OK) != 0)
    return "no /usr/share/cargo/registry (apt-get install librust-tokio-dev "
           "librust-hyper-dev)";
  char dir[1024], cmd[8192];
  snprintf(dir, sizeof(dir), "%s/%s", build_dir, name);
  snprintf(cmd, sizeof(cmd),
           "mkdir -p '%s/src' '%s/.cargo' && "
           "cp '%s/%s/Cargo.toml' '%s/' && "
           "cp '%s/%s/src/main.rs' '%s/src/' && "
           "printf '[source.crates-io]\\nreplace-with = \"debian\"\\n"
           "[source.debian]\\ndirectory = \"/usr/share/cargo/registry\"\\n"
           "[net]\\noffline = true\\n' > '%s/.cargo/config.toml' && "
           "cd '%s' && cargo build --release --offline -q",
           dir, dir, scripts, name, dir, scripts, name, dir, dir, dir);
  fflush(NULL);
  if (system(cmd) != 0)
    return "cargo build failed, offline, in the build directory";
  int n = snprintf(binary, size, "%s/target/release/%s", dir, name);
  return n > 0 && (size_t)n < size ? NULL
                                   : "the build directory's path is too long";
}

#ifdef _GNU_SOURCE
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* Move this process into a new network namespace and bring its loopback
 * up: its TCP tables start empty, and no TIME_WAIT socket of an earlier
 * run is met. false if the system refused (not root, no user
 * namespaces). */
static inline bool bench_own_network(void) {
  if (unshare(CLONE_NEWNET) != 0)
    return false;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
  bool up = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags |= IFF_UP;
  up = up && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  if (fd >= 0)
    close(fd);
  return up;
}

/* May this process have networks of its own? Asked in a child. */
static inline bool bench_own_network_allowed(void) {
  pid_t pid = fork();
  if (pid == 0)
    _exit(bench_own_network() ? 0 : 1);
  int status = 1;
  if (pid < 0 || waitpid(pid, &status, 0) < 0)
    return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
#endif

#endif
