/* iobound-server under abuse (issue 11): the attacks that once hurt it,
 * kept in the suite, bounded in count and time, on loopback only. The
 * server runs as a child process (as in test-server.c); the clients run
 * on this test's loop, and a thread of its own pings the server on a
 * separate connection throughout, so that what it measures is the
 * server's answer, not this test's loop:
 *
 *   1. malformed lines: unknown words, bad numbers and options, blank;
 *   2. overlong lines: 1 KiB to 1 MiB without a newline;
 *   3. binary garbage and NUL bytes from 20 clients at once;
 *   4. 1,000 clients at once, each running a batch;
 *   5. clients leaving mid-batch, with a reset and with a FIN;
 *   6. readers that never read, asking for 11 MB of answers each;
 *   7. idle connections up to the cap, 100 more past it, then the idle
 *      timeout;
 *   8. half-closing clients, answered then closed;
 *   9. a log nobody reads: the server's stdout pipe full.
 *
 * Throughout, every ping must be answered within its bound (below); the
 * server's resident memory must stay bounded through 1 to 8; and at the
 * end SIGTERM stops it with its loop closed (exit 0). Allocation failures
 * while accepting, low limits on open files and the slow service
 * half-closed are test-server-limits.c's.
 *
 * test-server-abuse PATH-TO-iobound-server */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "server-crowd.h"

#define CROWD 1000   /* clients at once */
#define CAP 1100     /* the server's --max-connections */
#define PAST_CAP 100 /* idle connections beyond it */
#define IDLE_MS 1500 /* the server's --idle-timeout */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
/* Every ping answered within this. A thousand clients arriving at once
 * kept the pongs at 25 to 117 ms on this two-core machine (eight runs,
 * while the suite ran beside them), where 50 ms had been the bound: a
 * stall of a second is what this catches, not a scheduler's hiccup. A
 * server built with AddressSanitizer does its work two to three times
 * slower (31 to 106 ms when the others took 20 to 50), so it gets twice
 * the bound. */
#ifdef UNDER_ASAN
#define PING_BOUND_MS 400
#else
#define PING_BOUND_MS 200
#endif

/* The server's RSS once the attacks are over, less before, and its peak
 * meanwhile, less before (AddressSanitizer's allocator keeps more). */
#ifdef UNDER_ASAN
#define RSS_GROWTH_MAX_KIB (48 * 1024)
#define RSS_PEAK_MAX_KIB (128 * 1024)
#else
#define RSS_GROWTH_MAX_KIB (16 * 1024)
#define RSS_PEAK_MAX_KIB (64 * 1024)
#endif

static const char *server_path;

/* The server's resident memory, from /proc/PID/status ("VmRSS" or, for
 * its peak, "VmHWM"), in KiB. */
static long memory_kib(const server_proc *p, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", p->handle.pid);
  FILE *f = fopen(path, "r");
  long kib = -1;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':')
      kib = atol(line + strlen(key) + 1);
  fclose(f);
  return kib;
}

/* ---- the pinger: a thread of its own, blocking sockets ----------------- */

static const char *const phases[] = {
    "start",        "malformed",    "overlong",   "garbage",
    "crowd",        "leavers",      "deaf",       "idle",
    "past the cap", "idle timeout", "half-close", "end",
};
enum {
  P_START,
  P_MALFORMED,
  P_OVERLONG,
  P_GARBAGE,
  P_CROWD,
  P_LEAVERS,
  P_DEAF,
  P_IDLE,
  P_PAST_CAP,
  P_IDLE_TIMEOUT,
  P_HALF,
  P_END,
  NPHASES
};

typedef struct pinger {
  int port;
  uv_thread_t tid;
  atomic_bool stop;
  atomic_int phase;
  /* The thread's; read once it has been joined. */
  int pings, failures;
  double worst_ms[NPHASES];
  int pings_in[NPHASES];
  char failure[128];
} pinger;

static double now_ms(void) { return (double)uv_hrtime() / 1e6; }

/* One ping: the milliseconds until "pong\n" came back, or -1. */
static double ping_once(pinger *pg, int fd) {
  char answer[16];
  size_t got = 0;
  double t0 = now_ms();
  if (write(fd, "ping\n", 5) != 5) {
    snprintf(pg->failure, sizeof(pg->failure), "write: %s", strerror(errno));
    return -1;
  }
  while (got < 5) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = poll(&pfd, 1, 2000);
    if (n <= 0) {
      snprintf(pg->failure, sizeof(pg->failure), "no pong within 2 s");
      return -1;
    }
    ssize_t r = read(fd, answer + got, sizeof(answer) - got);
    if (r <= 0) {
      snprintf(pg->failure, sizeof(pg->failure), "read: %s",
               r == 0 ? "EOF" : strerror(errno));
      return -1;
    }
    got += (size_t)r;
  }
  if (got != 5 || memcmp(answer, "pong\n", 5) != 0) {
    snprintf(pg->failure, sizeof(pg->failure), "answer '%.*s'", (int)got,
             answer);
    return -1;
  }
  return now_ms() - t0;
}

static void pinger_main(void *arg) {
  pinger *pg = arg;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", pg->port, &addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
    snprintf(pg->failure, sizeof(pg->failure), "connect: %s", strerror(errno));
    pg->failures++;
    close(fd);
    return;
  }
  while (!atomic_load(&pg->stop)) {
    int phase = atomic_load(&pg->phase);
    double ms = ping_once(pg, fd);
    if (ms < 0) {
      pg->failures++;
      break; /* the connection is no good any more */
    }
    pg->pings++;
    pg->pings_in[phase]++;
    if (ms > pg->worst_ms[phase])
      pg->worst_ms[phase] = ms;
    uv_sleep(10);
  }
  close(fd);
}

static void pinger_start(pinger *pg, int port) {
  memset(pg, 0, sizeof(*pg));
  pg->port = port;
  atomic_init(&pg->stop, false);
  atomic_init(&pg->phase, P_START);
  assert_code(uv_thread_create(&pg->tid, pinger_main, pg), 0);
}

static void pinger_phase(pinger *pg, int phase) {
  atomic_store(&pg->phase, phase);
}

static double pinger_stop(pinger *pg) {
  atomic_store(&pg->stop, true);
  assert_code(uv_thread_join(&pg->tid), 0);
  double worst = 0;
  print_message("pings: %d, failures: %d; worst pong per phase:", pg->pings,
                pg->failures);
  for (int k = 0; k < NPHASES; k++) {
    if (pg->pings_in[k] > 0)
      print_message(" %s %.1f ms (%d pings)", phases[k], pg->worst_ms[k],
                    pg->pings_in[k]);
    if (pg->worst_ms[k] > worst)
      worst = pg->worst_ms[k];
  }
  print_message("\n");
  if (pg->failures != 0)
    fail_msg("the pinger failed: %s", pg->failure);
  return worst;
}

/* ---- the attacks ------------------------------------------------------- */

static int cases_run; /* abuse cases run, for the summary */

/* 1. Malformed lines: each gets one line "error ...", and the connection
 * goes on. */
static void malformed_lines(int port) {
  static const char *const lines[] = {
      "jump",
      "run",
      "run loop",
      "run loop 10",
      "run loop x 10",
      "run loop 10 x",
      "run loop 0 10",
      "run loop 100001 10",
      "run loop 10 60001",
      "run loop 18446744073709551616 1",
      "run nowhere 10 10",
      "run loop 10 10 limit=-1",
      "run loop 10 10 timeout=1e9",
      "run loop 10 10 work=tcp",
      "run loop 10 10 work=cpu",
      "run loop 10 10 stream=2",
      "run loop 10 10 =",
      "run loop 10 10 limit",
      "run threads 5000 1",
      "run loop 5000 1 stream=1",
      "ping ping",
      "stats now",
      "quit please",
      "RUN loop 1 1",
      "PING",
      "'; DROP TABLE batches; --",
      "%s%s%s%n%n",
      "run loop 1 1 \xff\xfe",
  };
  enum { N = sizeof(lines) / sizeof(lines[0]), ROUNDS = 10 };
  client c;
  dial_all(&c, 1, port, 0, true);
  for (int r = 0; r < ROUNDS; r++)
    for (int k = 0; k < N; k++) {
      send_text(&c, lines[k]);
      send_text(&c, "\n \t \r\n\n"); /* blank lines: no answer */
    }
  WAIT_UNTIL(c.lines == N * ROUNDS || c.eof, 5000);
  assert_int_equal(c.lines, N * ROUNDS);
  assert_int_equal(c.errors, N * ROUNDS);
  assert_false(c.unprintable);
  assert_string_equal(ask(&c, "ping"), "pong");
  close_all(&c, 1, false);
  cases_run += N + 1;
}

/* 2. Overlong lines: one error each, however long, and nothing kept. */
static void overlong_lines(int port) {
  static const size_t lengths[] = {1025, 1026, 2048, 100 * 1024, 1024 * 1024};
  enum { N = sizeof(lengths) / sizeof(lengths[0]) };
  client c;
  dial_all(&c, 1, port, 0, true);
  char *text = malloc(1024 * 1024 + 1);
  memset(text, 'r', 1024 * 1024);
  for (int k = 0; k < N; k++) {
    send_bytes(&c, text, lengths[k]);
    send_text(&c, "\n");
  }
  free(text);
  WAIT_UNTIL(c.lines == N || c.eof, 5000);
  assert_int_equal(c.lines, N);
  assert_string_equal(c.last, "error line too long (at most 1024 bytes)");
  assert_int_equal(c.errors, N);
  /* Exactly the bound is a line like any other. */
  char line[1024 + 2];
  memset(line, ' ', 1024);
  memcpy(line + 1020, "ping", 4);
  line[1024] = '\0';
  assert_string_equal(ask(&c, line), "pong");
  close_all(&c, 1, false);
  cases_run += N + 1;
}

/* 3. Binary garbage with NUL bytes, from 20 clients at once: every answer
 * is an error line of printable text, and each connection still works. */
static void binary_garbage(int port) {
  enum { N = 20, BYTES = 64 * 1024 };
  client cs[N];
  dial_all(cs, N, port, 0, true);
  char *junk = malloc(BYTES);
  uint32_t x = 2463534242u; /* xorshift32: the same garbage every run */
  for (int k = 0; k < N; k++) {
    for (int i = 0; i < BYTES; i++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      junk[i] = (char)(x & 0xff);
      if (i % 97 == 0)
        junk[i] = '\0';
    }
    send_bytes(&cs[k], junk, BYTES);
    send_text(&cs[k], "\nping\n");
  }
  free(junk);
  bool done = false;
  for (uint64_t t0 = uv_hrtime(); !done && uv_hrtime() - t0 < 10000000000u;) {
    done = true;
    for (int k = 0; k < N && done; k++)
      done = strcmp(cs[k].last, "pong") == 0 || cs[k].eof;
    if (!done)
      uv_run(&the_loop, UV_RUN_ONCE);
  }
  for (int k = 0; k < N; k++) {
    if (strcmp(cs[k].last, "pong") != 0)
      fail_msg("garbage client %d: last answer '%s'", k, cs[k].last);
    assert_false(cs[k].eof);
    assert_false(cs[k].unprintable);
    assert_int_equal(cs[k].errors + cs[k].pongs, cs[k].lines);
    assert_cmp(cs[k].errors, >, 100);
  }
  close_all(cs, N, false);
  cases_run += 2;
}

/* 4. A thousand clients at once, each with a batch: loops, pool batches
 * (taking turns on the pool) and thread batches (within --max-threads). */
static void a_crowd(int port, client *cs) {
  uint64_t t0 = uv_hrtime();
  dial_all(cs, CROWD, port, 0, true);
  double connect_ms = MS(uv_hrtime() - t0);
  for (int k = 0; k < CROWD; k++)
    send_text(&cs[k], k % 20 == 1   ? "run pool 4 20\n"
                      : k % 20 == 2 ? "run threads 4 50\n"
                                    : "run loop 50 300\n");
  int answered = 0;
  for (uint64_t t1 = uv_hrtime();
       answered < CROWD && uv_hrtime() - t1 < 15000000000u;) {
    uv_run(&the_loop, UV_RUN_ONCE);
    answered = 0;
    for (int k = 0; k < CROWD; k++)
      answered += cs[k].lines > 0;
  }
  double all_ms = MS(uv_hrtime() - t0);
  for (int k = 0; k < CROWD; k++) {
    if (cs[k].reports != 1 || strstr(cs[k].first, "\"status\":\"OK\"") == NULL)
      fail_msg("crowd client %d: '%s'", k, cs[k].first);
  }
  print_message("%d clients: connected in %.1f ms, all answered in %.1f ms\n",
                CROWD, connect_ms, all_ms);
  close_all(cs, CROWD, false);
  cases_run += 3;
}

/* 5. Clients leaving mid-batch: with a reset (the batch is cancelled) and
 * with a FIN (all a client that stops sending says: the batch runs on,
 * its answer goes into the void, the connection closes). */
static void leavers(int port, client *control) {
  enum { N = 100 };
  static client cs[N];
  const char *before = ask(control, "stats");
  double cancelled0 = json_number(before, "batches_cancelled");
  dial_all(cs, N, port, 0, true);
  for (int k = 0; k < N; k++)
    send_text(&cs[k], k % 4 == 0   ? "run loop 1000 30000\nping\n"
                      : k % 4 == 1 ? "run threads 2 300\nping\n"
                      : k % 4 == 2 ? "run pool 8 100 stream=1\nping\n"
                                   : "run sequential 1000 100\nping\n");
  bool started = false;
  for (uint64_t t0 = uv_hrtime(); !started && uv_hrtime() - t0 < 5000000000u;) {
    started = true;
    for (int k = 0; k < N && started; k++)
      started = cs[k].pongs == 1;
    if (!started)
      uv_run(&the_loop, UV_RUN_ONCE);
  }
  assert_true(started);
  /* The short thread batches leave with a FIN (it lets the batch run to
   * its end), the others with a reset. */
  int nreset = 0;
  for (int k = 0; k < N; k++) {
    leave(&cs[k], k % 4 != 1);
    nreset += k % 4 != 1;
  }
  close_all(cs, N, false); /* waits for the closes above */
  const char *after = stats_once_idle(control);
  assert_int_equal(json_number(after, "batches_running"), 0);
  assert_int_equal(json_number(after, "batches_cancelled") - cancelled0,
                   nreset);
  assert_int_equal(json_number(after, "threads_running"), 0);
  assert_int_equal(json_number(after, "operations_running"), 0);
  cases_run += 2;
}

/* 6. Readers that never read: each asks for some 11 MB of answers
 * ("stats", 50,000 times), more than the kernel's buffers hold. The
 * server stops reading from each once 64 KiB of answers wait, and the
 * idle timeout closes them. */
static void deaf_readers(int port, server_proc *p, client *control) {
  enum { N = 20, ASKS = 50000 };
  static client cs[N];
  static uv_write_t writes[N];
  static char asks[6 * ASKS];
  for (int k = 0; k < ASKS; k++)
    memcpy(asks + 6 * k, "stats\n", 6);
  int dropped0 = count_in(log_of(p), "does not read its answers");
  uint64_t t0 = uv_hrtime();
  dial_all(cs, N, port, 4096, false);
  for (int k = 0; k < N; k++) {
    uv_buf_t buf = uv_buf_init(asks, sizeof(asks));
    assert_code(uv_write(&writes[k], (uv_stream_t *)&cs[k].tcp, &buf, 1, NULL),
                0);
  }
  pump_for(500);
  long rss = memory_kib(p, "VmRSS");
  WAIT_UNTIL(count_in(log_of(p), "does not read its answers") - dropped0 == N,
             IDLE_MS + 5000);
  int dropped = count_in(log_of(p), "does not read its answers") - dropped0;
  print_message("%d readers that never read: server RSS %ld KiB while they "
                "waited; dropped after %.1f ms\n",
                N, rss, MS(uv_hrtime() - t0));
  if (dropped != N)
    fail_msg("%d of %d readers that never read dropped", dropped, N);
  assert_cmp(json_number(ask(control, "stats"), "idle_closed"), >=, N);
  close_all(cs, N, false);
  cases_run += 1;
}

/* 7. Idle connections: up to the cap, then PAST_CAP more, each refused
 * at once with the reason; then the idle timeout closes the idle ones,
 * each told why, and new clients are taken again. */
static void idle_past_the_cap(int port, client *cs, client *control,
                              pinger *pg) {
  const char *stats = ask(control, "stats");
  int in_use = (int)json_number(stats, "clients");
  int fill = CAP - in_use, n = fill + PAST_CAP;
  assert_cmp(n, <=, CAP + PAST_CAP);
  double refused0 = json_number(stats, "refused_connections");
  uint64_t t0 = uv_hrtime();
  /* In two steps, so that the first `fill` are the ones let in. */
  dial_all(cs, fill, port, 0, true);
  WAIT_UNTIL(json_number(ask(control, "stats"), "clients") == CAP, 5000);
  pinger_phase(pg, P_PAST_CAP);
  dial_all(cs + fill, PAST_CAP, port, 0, true);
  WAIT_UNTIL(count_eof(cs + fill, PAST_CAP) == PAST_CAP, 5000);
  pinger_phase(pg, P_IDLE_TIMEOUT);
  for (int k = fill; k < n; k++) {
    char want[64];
    snprintf(want, sizeof(want), "error too many connections (max %d)", CAP);
    assert_int_equal(cs[k].lines, 1);
    assert_string_equal(cs[k].first, want);
    assert_true(cs[k].eof);
  }
  stats = ask(control, "stats");
  assert_int_equal(json_number(stats, "clients"), CAP);
  assert_int_equal(json_number(stats, "refused_connections") - refused0,
                   PAST_CAP);
  /* The control client keeps itself alive; the idle ones go. */
  for (uint64_t t1 = uv_hrtime();
       count_eof(cs, fill) < fill && uv_hrtime() - t1 < 8000000000u;) {
    pump_for(200);
    ask(control, "ping");
  }
  double idle_ms = MS(uv_hrtime() - t0);
  assert_int_equal(count_eof(cs, fill), fill);
  for (int k = 0; k < fill; k++)
    assert_string_equal(cs[k].first, "error idle timeout: no request for "
                                     "1500 ms (--idle-timeout)");
  print_message("%d idle clients closed after %.1f ms; %d past the cap "
                "refused\n",
                fill, idle_ms, PAST_CAP);
  assert_ms_between(idle_ms, IDLE_MS - 1, IDLE_MS + 6000);
  close_all(cs, n, false);
  client again;
  dial_all(&again, 1, port, 0, true);
  assert_string_equal(ask(&again, "ping"), "pong");
  close_all(&again, 1, false);
  cases_run += 2;
}

/* 8. Half-closing clients: they send their requests and shut their side
 * down; each gets every answer, the batch's last, then the server
 * closes. */
static void half_closers(int port) {
  enum { N = 200 };
  static client cs[N];
  dial_all(cs, N, port, 0, true);
  for (int k = 0; k < N; k++) {
    send_text(&cs[k], k % 2 ? "ping\nrun loop 10 100\nstats"
                            : "run threads 1 50\nping");
    half_close(&cs[k]);
  }
  WAIT_UNTIL(count_eof(cs, N) == N, 5000);
  for (int k = 0; k < N; k++) {
    if (!cs[k].eof || cs[k].reports != 1 + (k % 2) || cs[k].pongs != 1 ||
        cs[k].last[0] != '{' || strstr(cs[k].last, "\"status\":\"OK\"") == 0)
      fail_msg("half-closing client %d: %d lines, last '%s'", k, cs[k].lines,
               cs[k].last);
  }
  close_all(cs, N, false);
  cases_run += 1;
}

/* ---- the tests --------------------------------------------------------- */

static void send_blank(uv_timer_t *timer) { send_text(timer->data, "\n"); }

static void raise_fd_limit(int need) {
  struct rlimit rl;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need)
    skip(); /* cmocka reports it; main() turns it into exit 77 */
}

static bool skipped;

static void the_server_stands_every_attack(void **state) {
  /* Our ends of the connections; the server needs CAP and some. */
  raise_fd_limit(CAP + PAST_CAP + 200);
  skipped = false;
  static client crowd[CAP + PAST_CAP];
  static server_proc p; /* static: the teardown may read it */
  open_loop();
  start_server(&p, server_path,
               (const char *const[]){"--max-connections", "1100",
                                     "--idle-timeout", "1500", "--max-threads",
                                     "200", "--max-operations", "200000", NULL},
               NULL);
  pinger pg;
  pinger_start(&pg, p.port);
  client control;
  dial_all(&control, 1, p.port, 0, true);
  /* A blank line now and then is a request with no answer: it keeps the
   * control client from the idle timeout. */
  uv_timer_t keepalive;
  assert_code(uv_timer_init(&the_loop, &keepalive), 0);
  keepalive.data = &control;
  assert_code(uv_timer_start(&keepalive, send_blank, 300, 300), 0);
  /* The server as it stands once its first batches ran. */
  assert_cmp(ask(&control, "run loop 100 1")[0], ==, '{');
  assert_cmp(ask(&control, "run pool 4 1")[0], ==, '{');
  assert_cmp(ask(&control, "run threads 4 1")[0], ==, '{');
  long rss_before = memory_kib(&p, "VmRSS");
  uint64_t t0 = uv_hrtime();

  pinger_phase(&pg, P_MALFORMED);
  malformed_lines(p.port);
  pinger_phase(&pg, P_OVERLONG);
  overlong_lines(p.port);
  pinger_phase(&pg, P_GARBAGE);
  binary_garbage(p.port);
  pinger_phase(&pg, P_CROWD);
  a_crowd(p.port, crowd);
  pinger_phase(&pg, P_LEAVERS);
  leavers(p.port, &control);
  pinger_phase(&pg, P_DEAF);
  deaf_readers(p.port, &p, &control);
  pinger_phase(&pg, P_IDLE);
  idle_past_the_cap(p.port, crowd, &control, &pg);
  pinger_phase(&pg, P_HALF);
  half_closers(p.port);
  pinger_phase(&pg, P_END);

  const char *stats = stats_once_idle(&control);
  WAIT_UNTIL(json_number(stats = ask(&control, "stats"), "clients") == 2,
             3000); /* the control client and the pinger */
  assert_int_equal(json_number(stats, "clients"), 2);
  assert_int_equal(json_number(stats, "batches_running"), 0);
  assert_int_equal(json_number(stats, "threads_running"), 0);
  assert_int_equal(json_number(stats, "operations_running"), 0);
  long rss_after = memory_kib(&p, "VmRSS"), peak = memory_kib(&p, "VmHWM");
  double worst = pinger_stop(&pg);
  print_message("attacks over in %.1f s; server RSS %ld KiB before, %ld KiB "
                "after (peak %ld KiB)\n",
                MS(uv_hrtime() - t0) / 1000, rss_before, rss_after, peak);
  assert_cmp(rss_before, >, 0);
  assert_cmp(rss_after, >, 0);
  if (peak - rss_before > RSS_PEAK_MAX_KIB)
    fail_msg("server peak RSS %ld KiB above its start, expected less than "
             "%d KiB",
             peak - rss_before, RSS_PEAK_MAX_KIB);
  if (rss_after - rss_before > RSS_GROWTH_MAX_KIB)
    fail_msg("server RSS grew by %ld KiB, expected less than %d KiB",
             rss_after - rss_before, RSS_GROWTH_MAX_KIB);
  assert_ms_below(worst, PING_BOUND_MS);

  uv_close((uv_handle_t *)&keepalive, NULL);
  close_all(&control, 1, false);
  server_proc_stop(&p);
  close_loop();
}

/* 9. A log nobody reads: the server's stdout is a pipe that fills up.
 * The server must not wait for it: lines that do not fit are dropped,
 * and the next that fits says how many. */
static void a_log_nobody_reads_does_not_stop_the_server(void **state) {
  enum { N = 1000 };
  static client cs[N];
  raise_fd_limit(300);
  static server_proc p; /* static: the teardown may read it */
  open_loop();
  start_server(&p, server_path, (const char *const[]){NULL}, NULL);
  pinger pg;
  pinger_start(&pg, p.port);
  server_proc_read_log(&p, false);
  /* Three lines of log each, some 100 bytes: more than a pipe holds, in
   * waves of a hundred clients. */
  for (int wave = 0; wave < N; wave += 100) {
    client *w = cs + wave;
    dial_all(w, 100, p.port, 0, true);
    for (int k = 0; k < 100; k++) {
      send_text(&w[k], "run loop 1 0");
      half_close(&w[k]);
    }
    WAIT_UNTIL(count_eof(w, 100) == 100, 10000);
    for (int k = 0; k < 100; k++)
      if (w[k].reports != 1)
        fail_msg("client %d: '%s'", wave + k, w[k].first);
    close_all(w, 100, false);
  }
  double worst = pinger_stop(&pg);
  assert_ms_below(worst, PING_BOUND_MS);
  server_proc_read_log(&p, true);
  client c;
  dial_all(&c, 1, p.port, 0, true);
  assert_string_equal(ask(&c, "ping"), "pong");
  close_all(&c, 1, false);
  WAIT_UNTIL(strstr(log_of(&p), " log lines dropped)\n"), 2000);
  assert_non_null(strstr(log_of(&p), " log lines dropped)\n"));
  server_proc_stop(&p);
  close_loop();
  cases_run += 1;
}

int main(int argc, char **argv) {
#if defined(__SANITIZE_THREAD__)
  /* Its bounds are on time and memory, which ThreadSanitizer multiplies
   * (a ping of 98 ms, 100 MiB of shadow memory), and the server has one
   * thread of its own: test-server covers it under ThreadSanitizer. */
  puts("skipped under ThreadSanitizer: its bounds are on time and memory");
  return 77;
#endif
  if (argc < 2) {
    fprintf(stderr, "usage: test-server-abuse PATH-TO-iobound-server\n");
    return 1;
  }
  server_path = argv[1];
  /* A server that died would make our writes raise SIGPIPE: fail instead. */
  signal(SIGPIPE, SIG_IGN);
  skipped = true;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(the_server_stands_every_attack,
                                server_proc_teardown),
      cmocka_unit_test_teardown(a_log_nobody_reads_does_not_stop_the_server,
                                server_proc_teardown),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  printf("%d abuse cases run\n", cases_run);
  if (failed == 0 && skipped) {
    printf("not enough file descriptors for %d clients: skipped\n", CAP);
    return 77;
  }
  return failed;
}
