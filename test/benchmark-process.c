/* A process at the floor (issue 25): from exec to exit, iobound-compare
 * running ten million waits of 1 s on the loop style, against the least
 * this machine needs to do as much: start a process, touch the records'
 * bytes (32 a wait) and wait 1 s; that least is this program run with
 * --floor, measured in the same run. The floor is measured twice: with
 * the bytes' pages as the kernel gives them, and advised huge
 * (MADV_HUGEPAGE), which iobound chooses by measuring too (batch.c).
 * Last, the start alone: iobound-compare --version against a program
 * that does nothing (this one with --nothing).
 *
 *   benchmark-process [--count N] [--runs R] PATH-TO-iobound-compare
 *
 * Every case runs R times (5), in turn with the others; medians are
 * printed, and the verdict: iobound-compare within 10% of the floor. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchmark.h"

#define RECORD_BYTES 32 /* sizeof(iob_record) */
#define RUNS_MAX 9

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The floor: the records' bytes, touched a page at a time (advised huge
 * if `huge`), then a wait of 1 s. */
static int floor_main(uint64_t count, bool huge) {
  size_t size = (size_t)count * RECORD_BYTES;
  char *block = malloc(size);
  if (block == NULL)
    return 1;
  if (huge) {
    uintptr_t from =
        ((uintptr_t)block + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
    uintptr_t to = ((uintptr_t)block + size) & ~(uintptr_t)((2u << 20) - 1);
    if (to > from)
      madvise((void *)from, to - from, MADV_HUGEPAGE);
  }
  long page = sysconf(_SC_PAGESIZE);
  for (size_t at = 0; at < size; at += (size_t)page)
    ((volatile char *)block)[at] = 0;
  struct timespec second = {1, 0};
  nanosleep(&second, NULL);
  free(block);
  return 0;
}

/* Run argv from fork to exit; its wall time in ms, or -1 if it failed. */
static double run_ms(char *const argv[]) {
  fflush(NULL);
  double t0 = now_ms();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    /* What it prints is not measured here: nowhere. */
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
      dup2(null, 1);
      dup2(null, 2);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  double took = now_ms() - t0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? took : -1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct bench_case {
  const char *name;
  char *argv[12];
  double ms[RUNS_MAX];
} bench_case;

int main(int argc, char **argv) {
  uint64_t count = 10000000;
  int runs = 5;
  if (argc == 4 && strcmp(argv[1], "--floor") == 0)
    return floor_main(strtoull(argv[2], NULL, 10),
                      strcmp(argv[3], "huge") == 0);
  if (argc == 2 && strcmp(argv[1], "--nothing") == 0)
    return 0;
  int a = 1;
  for (; a + 1 < argc; a += 2) {
    if (strcmp(argv[a], "--count") == 0)
      count = strtoull(argv[a + 1], NULL, 10);
    else if (strcmp(argv[a], "--runs") == 0)
      runs = atoi(argv[a + 1]);
    else
      break;
  }
  if (a != argc - 1 || count == 0 || count > UINT32_MAX || runs < 1 ||
      runs > RUNS_MAX) {
    fprintf(stderr,
            "usage: benchmark-process [--count N] [--runs R (1..%d)] "
            "PATH-TO-iobound-compare\n",
            RUNS_MAX);
    return 64;
  }
  char n[24], self[4096];
  snprintf(n, sizeof(n), "%" PRIu64, count);
  ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0)
    return 1;
  self[len] = '\0';
  char *compare = argv[argc - 1];
  bench_case cases[] = {
      {.name = "iobound-compare",
       .argv = {compare, "--styles", "loop", "--count", n, "--duration", "1000",
                "-q", NULL}},
      {.name = "floor", .argv = {self, "--floor", n, "small", NULL}},
      {.name = "floor, huge pages", .argv = {self, "--floor", n, "huge", NULL}},
      {.name = "compare --version", .argv = {compare, "--version", NULL}},
      {.name = "a program doing nothing", .argv = {self, "--nothing", NULL}},
  };
  enum { NCASES = sizeof(cases) / sizeof(cases[0]) };
  printf("benchmark-process: %s waits of 1 s, from exec to exit; %d runs of "
         "each, in turn\n",
         n, runs);
  for (int k = 0; k < runs; k++)
    for (int c = 0; c < NCASES; c++)
      if ((cases[c].ms[k] = run_ms(cases[c].argv)) < 0) {
        fprintf(stderr, "benchmark-process: %s failed\n", cases[c].name);
        return 1;
      }
  double med[NCASES];
  for (int c = 0; c < NCASES; c++) {
    qsort(cases[c].ms, (size_t)runs, sizeof(double), cmp_double);
    med[c] = cases[c].ms[runs / 2];
    printf("  %-24s median %8.1f ms (%.1f to %.1f)\n", cases[c].name, med[c],
           cases[c].ms[0], cases[c].ms[runs - 1]);
  }
  double floor_ms = med[1] < med[2] ? med[1] : med[2];
  printf("  touching the records' pages: %.0f ms as given, %.0f ms advised "
         "huge, beyond the wait\n",
         med[1] - 1000, med[2] - 1000);
  bench_target(med[0] <= 1.10 * floor_ms,
               "iobound-compare within 10%% of the floor: %.1f ms against "
               "%.1f ms, %.2fx",
               med[0], floor_ms, med[0] / floor_ms);
  printf("  the start alone: %.1f ms against %.1f ms for a program doing "
         "nothing\n",
         med[3], med[4]);
  return 0;
}
