/* iobound-server as its clients meet it: batches side by side with pings
 * fast, bad requests, quit, timeouts and CPU work, clients that vanish,
 * half-closes and control bytes, and its command line. The server runs
 * as a child process (port 0, the "listening on" line read from its
 * stdout); real TCP clients on this test's loop talk to it over loopback
 * (server-client.h). Clients that leave mid-batch are test-server-leave.c's,
 * the caps test-server-caps.c's. The server's path is the first
 * argument. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server-client.h"

/* ---- the tests --------------------------------------------------------- */

#define RUNNERS 3

static void check_loop_report(const char *line) {
  assert_true(json_has(line, "\"style\":\"loop\""));
  assert_int_equal(json_number(line, "count"), 1000);
  assert_int_equal(json_number(line, "failed"), 0);
  assert_true(json_has(line, "\"status\":\"OK\""));
  double elapsed = json_number(line, "elapsed_ms");
  assert_cmp(elapsed, >=, 299);
  assert_cmp(elapsed, <, 1000);
  /* A thousand waits of 300 ms overlapped: the loop ran them at once. */
  assert_int_equal(json_number(line, "peak_in_flight"), 1000);
  /* The keys iobound-compare writes too (cli_json_report). */
  assert_true(json_has(line, "\"work\":\"wait\""));
  assert_int_equal(json_number(line, "workers_used"), 0);
  assert_cmp(json_number(line, "cpu_ms"), >=, 0);
  assert_cmp(json_number(line, "overlap"), >, 100);
  assert_non_null(strstr(line, "\"vs_sequential\":null"));
}

static void batches_run_side_by_side_while_pings_stay_fast(void **state) {
  server_proc *p = *state;
  client *pinger = connect_client(p->port);
  assert_code(uv_timer_start(&pinger->pinger, send_ping, 0, 20), 0);
  client *runners[RUNNERS], *pool, *leaver;
  uint64_t t0 = uv_hrtime();
  for (int k = 0; k < RUNNERS; k++) {
    runners[k] = connect_client(p->port);
    send_text(runners[k], "run loop 1000 300\n");
  }
  pool = connect_client(p->port);
  send_text(pool, "run pool 8 100\n");
  leaver = connect_client(p->port);
  /* Lines are answered in order: the pong says its batch runs. */
  assert_string_equal(ask(leaver, "run loop 1000 300\nping"), "pong");
  pump_for(100);
  /* Gone mid-batch (a reset: the connection broke): the server must
   * cancel its batch. */
  leaver->reset = true;
  close_client(leaver);

  bool all = false;
  WAIT_UNTIL((all = runners[0]->nlines && runners[1]->nlines &&
                    runners[2]->nlines && pool->nlines),
             5000);
  assert_true(all);
  double wall_ms = MS(uv_hrtime() - t0);
  uv_timer_stop(&pinger->pinger);
  WAIT_UNTIL(pinger->pongs == pinger->pings, 1000);

  for (int k = 0; k < RUNNERS; k++)
    check_loop_report(runners[k]->lines[0]);
  /* Eight waits of 100 ms on libuv's four pool threads: two rounds. */
  assert_true(json_has(pool->lines[0], "\"style\":\"pool\""));
  assert_cmp(json_number(pool->lines[0], "elapsed_ms"), >=, 199);
  /* Side by side: one after another would take 3 x 300 + 200 ms. */
  assert_cmp(wall_ms, <, 900);

  /* The server answered every ping at once while the batches ran. */
  print_message("%d pings; worst pong %.1f ms; batches over in %.1f ms\n",
                pinger->pings, MS(pinger->worst_pong_ns), wall_ms);
  assert_int_equal(pinger->pongs, pinger->pings);
  assert_cmp(pinger->pings, >=, 10);
  assert_cmp(MS(pinger->worst_pong_ns), <, 100);

  const char *stats = stats_once_idle(pinger);
  assert_int_equal(json_number(stats, "batches_running"), 0);
  assert_int_equal(json_number(stats, "batches_done"), RUNNERS + 1);
  assert_int_equal(json_number(stats, "batches_cancelled"), 1);
  assert_int_equal(json_number(stats, "clients"), RUNNERS + 2);
  assert_int_equal(count_in(p->out.text, "cancelled batch for client"), 1);
  assert_int_equal(count_in(p->out.text, "batch over, IOB_ECANCELED"), 1);

  for (int k = 0; k < RUNNERS; k++)
    free_client(runners[k]);
  free_client(pool);
  free_client(leaver);
  free_client(pinger);
  server_down(p);
}

static void bad_requests_get_error_lines(void **state) {
  static const struct {
    const char *request, *answer;
  } cases[] = {
      {"run x 10 10", "error unknown style 'x'"},
      {"run loop 0 10", "error count must be 1..100000, not '0'"},
      {"run loop 100001 10", "error count must be 1..100000"},
      {"run loop -1 10", "error count must be 1..100000, not '-1'"},
      {"run loop 10 60001", "error duration must be 0..60000 ms"},
      {"run loop 10", "error usage: run STYLE COUNT DURATION_MS"},
      {"run", "error usage: run STYLE COUNT DURATION_MS"},
      {"run loop 10 10 limit=x", "error limit must be 0..100000"},
      {"run loop 10 10 timeout=", "error timeout must be 0..60000 ms"},
      {"run loop 10 10 work=user", "error work must be wait or cpu"},
      {"run loop 10 10 colour=red", "error unknown option 'colour=red'"},
      {"run loop 10 10 work=cpu", "error work=cpu would block"},
      {"run threads 5000 10", "error the threads style runs at most 1000"},
      {"run loop 5000 1 stream=1", "error stream=1 takes at most 1000"},
      {"jump", "error unknown command 'jump'"},
      {"ping now", "error ping takes no arguments"},
  };
  server_proc *p = *state;
  client *c = connect_client(p->port);
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    const char *answer = ask(c, cases[k].request);
    if (strncmp(answer, cases[k].answer, strlen(cases[k].answer)) != 0)
      fail_msg("'%s' got '%s'", cases[k].request, answer);
  }
  /* A line past 1 KiB is refused once, skipped, and the next one works. */
  char long_line[3000];
  memset(long_line, 'x', sizeof(long_line) - 1);
  long_line[sizeof(long_line) - 1] = '\0';
  assert_string_equal(ask(c, long_line),
                      "error line too long (at most 1024 bytes)");
  assert_string_equal(ask(c, "stats\r"), /* as telnet sends it */
                      STATS_ONE_IDLE_CLIENT);
  /* One batch at a time per connection. */
  send_text(c, "run loop 3 100\n");
  assert_string_equal(ask(c, "run loop 3 100"),
                      "error a batch is already running on this connection");
  WAIT_UNTIL(c->nlines == (int)(sizeof(cases) / sizeof(cases[0])) + 4, 2000);
  assert_true(json_has(c->lines[c->nlines - 1], "\"count\":3"));

  free_client(c);
  server_down(p);
}

static void quit_answers_the_running_batch_then_closes(void **state) {
  server_proc *p = *state;
  client *c = connect_client(p->port);
  /* As `printf 'run ...\nquit\n' | nc` sends it: all at once. */
  send_text(c, "run loop 3 100 stream=1\nquit\nping\n");
  WAIT_UNTIL(c->eof, 2000);
  assert_true(c->eof);
  assert_int_equal(c->nlines, 4); /* three operations and the report */
  for (int k = 0; k < 3; k++) {
    assert_int_equal(json_number(c->lines[k], "op"), k);
    assert_cmp(json_number(c->lines[k], "finished_ms"), >=, 99);
  }
  assert_true(json_has(c->lines[3], "\"status\":\"OK\""));
  assert_int_equal(c->pongs, 0); /* nothing after quit is read */
  free_client(c);

  /* Answers that pile up behind a slow reader all go out before the
   * connection closes: 150000 pongs, three operations, the report. */
  c = connect_client_ex(p->port, 2048);
  client_pause(c);
  char *pings = pings_text(150000);
  send_text(c, pings);
  free(pings);
  send_text(c, "run loop 3 1 stream=1\nquit\n");
  WAIT_UNTIL(strstr(p->out.text, "client 2: batch over"), 5000);
  pump_for(50);
  client_resume(c);
  WAIT_UNTIL(c->eof, 5000);
  assert_int_equal(c->all_lines, 150000 + 4);
  assert_true(json_has(c->last, "\"status\":\"OK\""));
  free_client(c);

  c = connect_client(p->port);
  send_text(c, "quit\n");
  WAIT_UNTIL(c->eof, 2000);
  assert_true(c->eof);
  assert_int_equal(c->nlines, 0);
  free_client(c);
  server_down(p);
}

static void timeouts_and_cpu_work_are_reported(void **state) {
  server_proc *p = *state;
  client *c = connect_client(p->port);
  const char *r = ask(c, "run loop 10 2000 timeout=50");
  assert_int_equal(json_number(r, "failed"), 10);
  assert_int_equal(json_number(r, "timeout_ms"), 50);
  assert_cmp(json_number(r, "elapsed_ms"), <, 1000);
  assert_true(json_has(r, "\"status\":\"OK\"")); /* timeouts alone */
  r = ask(c, "run threads 4 20 work=cpu limit=2");
  assert_true(json_has(r, "\"work\":\"cpu\""));
  assert_int_equal(json_number(r, "limit"), 2);
  assert_cmp(json_number(r, "peak_in_flight"), <=, 2);
  assert_int_equal(json_number(r, "failed"), 0);
  free_client(c);
  server_down(p);
}

/* Clients that vanish, mid-batch or mid-answer, cost the server nothing:
 * no crash on writing to them (SIGPIPE), no batch left running. */
static void vanished_clients_cost_the_server_nothing(void **state) {
  server_proc *p = *state;
  /* Gone before the server reads its pings: the server answers a closed
   * socket, and its second answer would raise SIGPIPE. The server is
   * stopped meanwhile so that the pings and the FIN both wait for it. */
  client *rude = connect_client(p->port);
  assert_string_equal(ask(rude, "ping"), "pong"); /* accepted and read */
  assert_code(uv_process_kill(&p->handle, SIGSTOP), 0);
  for (int k = 0; k < 200; k++)
    send_text(rude, "ping\n");
  close_client(rude);
  assert_code(uv_process_kill(&p->handle, SIGCONT), 0);
  /* Gone mid-batch, with a FIN and with an RST. Lines are answered in
   * order, so the pong says the batch runs. A FIN is all a client that
   * only stops sending sends too: its batch runs on and is answered (into
   * the void), then the connection closes. An RST cancels at once. */
  client *gone = connect_client(p->port), *reset = connect_client(p->port);
  assert_string_equal(ask(gone, "run threads 8 200 limit=4\nping"), "pong");
  assert_string_equal(ask(reset, "run pool 8 300\nping"), "pong");
  close_client(gone);
  reset->reset = true;
  close_client(reset);

  client *c = connect_client(p->port);
  const char *stats = stats_once_idle(c);
  assert_int_equal(json_number(stats, "batches_running"), 0);
  assert_int_equal(json_number(stats, "batches_cancelled"), 1);
  assert_int_equal(json_number(stats, "batches_done"), 1);
  assert_int_equal(json_number(stats, "threads_running"), 0);
  assert_int_equal(json_number(stats, "operations_running"), 0);
  for (int k = 0; k < 50 && json_number(stats, "clients") != 1; k++) {
    pump_for(20); /* the connection closes once the answer is written */
    stats = ask(c, "stats");
  }
  assert_int_equal(json_number(stats, "clients"), 1);
  assert_int_equal(count_in(p->out.text, "cancelled batch for client"), 1);
  assert_int_equal(count_in(p->out.text, "disconnected (ECONNRESET)"), 1);
  free_client(rude);
  free_client(gone);
  free_client(reset);
  free_client(c);
  server_down(p);
}

/* ---- half-closes and control bytes ------------------------------------ */

/* A client that shuts its sending side down after its requests (as
 * `printf 'run ...' | nc -N` does) gets every answer, the running
 * batch's report last, and then the server closes. */
static void a_client_that_stops_sending_gets_its_answers(void **state) {
  server_proc *p = *state;
  client *c = connect_client(p->port);
  /* The last line has no '\n': the end of the stream ends it. */
  send_text(c, "run loop 3 100\nping\nstats\nping");
  half_close(c);
  WAIT_UNTIL(c->eof, 2000);
  assert_true(c->eof);
  assert_int_equal(c->nlines, 4);
  assert_string_equal(c->lines[0], "pong");
  assert_int_equal(json_number(c->lines[1], "batches_running"), 1);
  assert_string_equal(c->lines[2], "pong");
  assert_true(json_has(c->lines[3], "\"status\":\"OK\""));
  assert_int_equal(json_number(c->lines[3], "count"), 3);
  assert_non_null(strstr(p->out.text, "client 1 sends no more; answering "
                                      "its batch, then closing"));
  free_client(c);

  /* No request at all: closed at once, nothing said. */
  c = connect_client(p->port);
  half_close(c);
  WAIT_UNTIL(c->eof, 2000);
  assert_true(c->eof);
  assert_int_equal(c->nlines, 0);
  free_client(c);

  c = connect_client(p->port);
  const char *stats = stats_once_idle(c);
  assert_int_equal(json_number(stats, "batches_done"), 1);
  assert_int_equal(json_number(stats, "batches_cancelled"), 0);
  free_client(c);
  server_down(p);
}

static bool printable(const char *line) {
  for (const unsigned char *b = (const unsigned char *)line; *b != '\0'; b++)
    if (*b < 0x20 || *b > 0x7e)
      return false;
  return true;
}

/* A NUL would cut a request short unseen ("run loop 1 1\0 limit=5" ran
 * without its limit), an escape sequence reach whoever reads the answer:
 * control bytes are refused, and what is echoed is escaped. */
#define BYTES(literal) literal, sizeof(literal) - 1

static void control_bytes_are_refused_and_echoes_escaped(void **state) {
  static const struct {
    const char *bytes;
    size_t len;
    const char *answer;
  } cases[] = {
      {BYTES("run loop 1 1\0 limit=5\n"),
       "error control byte \\x00 at byte 13: a request is text, spaces and "
       "tabs"},
      {BYTES("\x1b[2J\x1b[31mping\n"),
       "error control byte \\x1b at byte 1: a request is text, spaces and "
       "tabs"},
      {BYTES("pi\rng\n"),
       "error control byte \\x0d at byte 3: a request is text"},
      {BYTES("ping\x7f\n"), "error control byte \\x7f at byte 5"},
      {BYTES("run \xc3\xa9t\xc3\xa9 1 1\n"),
       "error unknown style '\\xc3\\xa9t\\xc3\\xa9' (sequential, loop"},
      {BYTES("run loop 1 1 work=\x9b"
             "31m\n"),
       "error work must be wait or cpu, not '\\x9b31m'"},
      {BYTES("jump\\x1b\n"), "error unknown command 'jump\\\\x1b'"},
      {BYTES("ping\t\r\n"), "pong"}, /* a tab separates; a final \r is CRLF */
  };
  server_proc *p = *state;
  client *c = connect_client(p->port);
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    int before = c->nlines;
    send_bytes(c, cases[k].bytes, cases[k].len);
    WAIT_UNTIL(c->nlines > before, 2000);
    assert_cmp(c->nlines, ==, before + 1);
    const char *answer = c->lines[before % LINES_MAX];
    if (strncmp(answer, cases[k].answer, strlen(cases[k].answer)) != 0)
      fail_msg("case %zu got '%s'", k, answer);
    assert_true(printable(answer));
  }
  assert_string_equal(ask(c, "stats"), STATS_ONE_IDLE_CLIENT);
  assert_null(strchr(p->out.text, '\x1b'));
  free_client(c);
  server_down(p);
}

/* ---- the command line -------------------------------------------------- */

static void run_to_exit(server_proc *p, const char *const *args) {
  server_proc_spawn(p, server_path, args, NULL);
  server_proc_wait_exit(p, 5000);
}

static void bad_arguments_exit_64_with_a_message_and_a_hint(void **state) {
  static const char *const bad[][3] = {
      {"--port", "65536", NULL},
      {"--port", "-1", NULL},
      {"--port", NULL, NULL},
      {"--port=x", NULL, NULL},
      {"--host", "nowhere", NULL},
      {"--frobnicate", NULL, NULL},
      {"extra", NULL, NULL},
      {"--host=", NULL, NULL},
      {"--max-connections", "x", NULL},
      {"--idle-timeout", "-1", NULL},
      {"--max-threads", "100001", NULL},
      {"--max-operations", NULL, NULL},
      {"--half-close-timeout", "-1", NULL},
      {"--half-close-timeout", "86400001", NULL},
      {"--frob\x1b[2J", NULL, NULL},
  };
  open_loop();
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    server_proc p;
    run_to_exit(&p, bad[k]);
    if (p.status != 64)
      fail_msg("'%s' exited %d", bad[k][0], (int)p.status);
    assert_int_equal(p.out.len, 0);
    assert_non_null(strstr(p.err.text, "iobound-server: "));
    assert_non_null(strstr(p.err.text, "Try 'iobound-server --help'."));
    assert_null(strchr(p.err.text, '\x1b')); /* escaped: "\x1b" */
  }
  server_proc h;
  run_to_exit(&h, (const char *const[]){"--half-close-timeout", "1s", NULL});
  assert_int_equal(h.status, 64);
  assert_non_null(strstr(h.err.text, "iobound-server: --half-close-timeout "
                                     "takes a number from 0 to 86400000, "
                                     "not '1s'\nTry 'iobound-server "
                                     "--help'."));
  server_proc q;
  run_to_exit(&q, (const char *const[]){"--max-threads", "\x1b[2J", NULL});
  assert_non_null(strstr(q.err.text, "iobound-server: --max-threads takes a "
                                     "number from 0 to 100000, not "
                                     "'\\x1b[2J'"));
  server_proc p;
  run_to_exit(&p, (const char *const[]){"--help", NULL});
  assert_int_equal(p.status, 0);
  assert_non_null(strstr(p.out.text, "Usage: iobound-server"));
  run_to_exit(&p, (const char *const[]){"--version", NULL});
  assert_int_equal(p.status, 0);
  assert_non_null(strstr(p.out.text, "iobound-server 0."));
  close_loop();
}

static void a_port_in_use_exits_1_and_says_why(void **state) {
  open_loop();
  server_proc first, second;
  start_server(&first);
  char port[16];
  snprintf(port, sizeof(port), "%d", first.port);
  run_to_exit(&second, (const char *const[]){"--port", port, NULL});
  assert_int_equal(second.status, 1);
  assert_non_null(strstr(second.err.text, "cannot listen on 127.0.0.1"));
  assert_non_null(strstr(second.err.text, "address already in use"));
  server_proc_stop(&first);
  close_loop();
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test-server PATH-TO-iobound-server\n");
    return 1;
  }
  server_path = argv[1];
  /* A server that died would make our writes raise SIGPIPE: fail instead. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          batches_run_side_by_side_while_pings_stay_fast, server_up,
          server_proc_teardown),
      cmocka_unit_test_setup_teardown(bad_requests_get_error_lines, server_up,
                                      server_proc_teardown),
      cmocka_unit_test_setup_teardown(
          quit_answers_the_running_batch_then_closes, server_up,
          server_proc_teardown),
      cmocka_unit_test_setup_teardown(timeouts_and_cpu_work_are_reported,
                                      server_up, server_proc_teardown),
      cmocka_unit_test_setup_teardown(vanished_clients_cost_the_server_nothing,
                                      server_up, server_proc_teardown),
      cmocka_unit_test_setup_teardown(
          a_client_that_stops_sending_gets_its_answers, server_up,
          server_proc_teardown),
      cmocka_unit_test_setup_teardown(
          control_bytes_are_refused_and_echoes_escaped, server_up,
          server_proc_teardown),
      cmocka_unit_test_teardown(bad_arguments_exit_64_with_a_message_and_a_hint,
                                server_proc_teardown),
      cmocka_unit_test_teardown(a_port_in_use_exits_1_and_says_why,
                                server_proc_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
