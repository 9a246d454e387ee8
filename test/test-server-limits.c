/* iobound-server's limits and the slow service's half-close, as the abuse
 * tests found them (issue 11): started with a low soft limit on open
 * files, the server raises it, and with a low hard limit it lowers
 * --max-connections to fit and says so; a client whose allocation fails
 * (the faults build, a seam) is told and closed while the listener takes
 * the next; the slow service answers a request whose client half-closed.
 *
 * test-server-limits PATH-TO-iobound-server PATH-TO-iobound-server-faults */
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../examples/slow-server.h"
#include "server-crowd.h"

static const char *server_path, *faults_path;

static double now_ms(void) { return (double)uv_hrtime() / 1e6; }

/* The slow service, half-closed: a client that shuts its sending
 * side down after "wait MS" gets "done MS" after MS ms all the same, then
 * the end; so does a last line without '\n'. Blocking sockets. */
static void the_slow_service_answers_a_half_closed_request(void **state) {
  static const struct {
    const char *request, *answer;
    double at_least_ms;
  } cases[] = {
      {"wait 50\n", "done 50\n", 50},
      {"wait 20", "done 20\n", 20},     /* no '\n': EOF ends the line */
      {"wait 30\r\n", "done 30\n", 30}, /* CRLF */
      {"jump\n", "error expected: wait MS\n", 0},
      {"", "", 0}, /* nothing asked: closed, nothing said */
  };
  unsigned port;
  pid_t pid;
  assert_int_equal(slow_server_fork("127.0.0.1", &port, &pid), 0);
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", (int)port, &addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_cmp(fd, >=, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    double t0 = now_ms();
    size_t len = strlen(cases[k].request);
    assert_int_equal(write(fd, cases[k].request, len), (ssize_t)len);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    char answer[64];
    size_t got = 0;
    for (;;) { /* until the service closes: EOF */
      struct pollfd pfd = {.fd = fd, .events = POLLIN};
      assert_int_equal(poll(&pfd, 1, 2000), 1);
      ssize_t r = read(fd, answer + got, sizeof(answer) - 1 - got);
      assert_cmp(r, >=, 0);
      if (r == 0)
        break;
      got += (size_t)r;
    }
    double took = now_ms() - t0;
    answer[got] = '\0';
    close(fd);
    if (strcmp(answer, cases[k].answer) != 0)
      fail_msg("'%s' got '%s'", cases[k].request, answer);
    /* libuv's loop clock counts whole milliseconds, so a 20 ms timer
     * armed late in one millisecond fires up to 1 ms early in real time. */
    double floor_ms = cases[k].at_least_ms > 1 ? cases[k].at_least_ms - 1 : 0;
    assert_ms_between(took, floor_ms, 2000);
  }
  assert_int_equal(slow_server_kill(pid), 0);
}

/* The soft and hard limits on open files of process `pid`. */
static void fd_limits_of(int pid, long *soft, long *hard) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/limits", pid);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  *soft = *hard = -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "Max open files", 14) == 0)
      sscanf(line + 14, "%ld %ld", soft, hard);
  fclose(f);
}

/* Started with a low soft limit on open files, the server raises it
 * to the hard limit; with a low hard limit, it lowers --max-connections
 * to fit, and says so. (A shell sets the limits, then execs it.) */
static void the_server_fits_its_open_files_limit(void **state) {
  static server_proc p; /* static: the teardown may read it */
  open_loop();
  start_server(&p, "/bin/sh",
               (const char *const[]){"-c",
                                     "ulimit -S -n 200 && exec \"$0\" \"$@\"",
                                     server_path, NULL},
               NULL);
  long soft, hard;
  fd_limits_of(p.handle.pid, &soft, &hard);
  print_message("open files: soft %ld, hard %ld\n", soft, hard);
  assert_cmp(soft, ==, hard);
  server_proc_stop(&p);

  start_server(&p, "/bin/sh",
               (const char *const[]){"-c",
                                     "ulimit -n 600 && exec \"$0\" \"$@\"",
                                     server_path, NULL},
               NULL);
  assert_non_null(strstr(log_of(&p), "--max-connections lowered to 536: the "
                                     "open files limit is 600\n"));
  WAIT_UNTIL(strstr(log_of(&p), "caps: "), 2000);
  assert_non_null(strstr(log_of(&p), "caps: 536 connections,"));
  server_proc_stop(&p);
  close_loop();
}

/* A client the server has no memory for is accepted, told so and
 * closed, and the server takes the next clients: libuv watches a
 * listener no more once a connection it handed over is left waiting. The
 * faults build fails its first N client allocations (a seam). */
static void a_failed_allocation_costs_one_client_not_the_listener(void **s) {
  enum { FAIL = 40 };
  static client cs[FAIL];
  static server_proc p; /* static: the teardown may read it */
  open_loop();
  start_server(&p, faults_path, (const char *const[]){NULL},
               "IOBOUND_SERVER_FAIL_ALLOCS=40");
  /* One at a time, then the rest at once: past the server's 16 refusal
   * handles, they wait in the backlog for one. */
  dial_all(cs, 1, p.port, 0, true);
  WAIT_UNTIL(cs[0].eof, 2000);
  dial_all(cs + 1, FAIL - 1, p.port, 0, true);
  WAIT_UNTIL(count_eof(cs, FAIL) == FAIL, 5000);
  for (int k = 0; k < FAIL; k++) {
    if (!cs[k].eof)
      fail_msg("client %d: %d lines ('%s'), connected %d\n%s", k, cs[k].lines,
               cs[k].first, cs[k].connected, log_of(&p));
    assert_int_equal(cs[k].lines, 1);
    assert_string_equal(cs[k].first, "error out of memory");
  }
  client c;
  dial_all(&c, 1, p.port, 0, true);
  assert_string_equal(ask(&c, "ping"), "pong");
  const char *stats = ask(&c, "stats");
  assert_int_equal(json_number(stats, "refused_connections"), FAIL);
  assert_int_equal(json_number(stats, "clients"), 1);
  assert_non_null(strstr(log_of(&p), "refused 1 connection (out of memory)"));
  close_all(cs, FAIL, false);
  close_all(&c, 1, false);
  server_proc_stop(&p);
  close_loop();
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test-server-limits PATH-TO-iobound-server "
                    "PATH-TO-iobound-server-faults\n");
    return 1;
  }
  server_path = argv[1];
  faults_path = argv[2];
  /* A server that died would make our writes raise SIGPIPE: fail instead. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_slow_service_answers_a_half_closed_request),
      cmocka_unit_test_teardown(the_server_fits_its_open_files_limit,
                                server_proc_teardown),
      cmocka_unit_test_teardown(
          a_failed_allocation_costs_one_client_not_the_listener,
          server_proc_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
