/* iobound-server at its caps: connections past --max-connections refused
 * with a reason, idle clients told why and closed, runs sharing the
 * threads cap and refused past the operations cap, the workers pool
 * shared, a server without threads, the loops style's threads counted,
 * pool clients taking turns. As test-server.c: the server a child
 * process, the clients on this test's loop (server-client.h); its path is
 * the first argument. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server-client.h"

static bool all_eof(client *const *clients, int n) {
  for (int k = 0; k < n; k++)
    if (!clients[k]->eof)
      return false;
  return true;
}

/* --max-connections: one more client is accepted, told why and closed,
 * without memory of its own; the server takes clients again once one
 * leaves. A burst past the server's 16 refusal handles waits in the
 * backlog and is refused in turn. */
static void connections_past_the_cap_are_refused_with_a_reason(void **s) {
  enum { BURST = 40 };
  server_proc p;
  open_loop();
  start_server_with(&p, (const char *const[]){"--max-connections", "2", NULL});
  client *a = connect_client(p.port), *b = connect_client(p.port);
  assert_string_equal(ask(a, "ping"), "pong");
  assert_string_equal(ask(b, "ping"), "pong");
  client *more[BURST];
  for (int k = 0; k < BURST; k++)
    more[k] = dial(p.port, 0);
  WAIT_UNTIL(all_eof(more, BURST), 5000);
  assert_true(all_eof(more, BURST));
  for (int k = 0; k < BURST; k++) {
    assert_int_equal(more[k]->nlines, 1);
    assert_string_equal(more[k]->lines[0],
                        "error too many connections (max 2)");
    free_client(more[k]);
  }
  const char *stats = ask(a, "stats");
  assert_int_equal(json_number(stats, "clients"), 2);
  assert_int_equal(json_number(stats, "refused_connections"), BURST);
  assert_non_null(strstr(p.out.text, "refused 1 connection (too many "
                                     "connections (max 2)); 1 so far"));
  free_client(b);
  client *c = NULL;
  for (int k = 0; k < 50; k++) { /* b's leaving is seen on the loop */
    c = connect_client(p.port);
    send_text(c, "ping\n");
    WAIT_UNTIL(c->nlines > 0 || c->eof, 2000);
    if (c->nlines > 0 && strcmp(c->lines[0], "pong") == 0)
      break;
    free_client(c);
    c = NULL;
    pump_for(20);
  }
  assert_non_null(c);
  free_client(a);
  free_client(c);
  server_down(&p);

  /* --max-connections 0: every client refused, and the server goes on. */
  open_loop();
  start_server_with(&p, (const char *const[]){"--max-connections", "0", NULL});
  for (int k = 0; k < 20; k++) {
    c = connect_client(p.port);
    WAIT_UNTIL(c->eof, 2000);
    assert_true(c->eof);
    assert_string_equal(c->lines[0], "error too many connections (max 0)");
    free_client(c);
  }
  server_down(&p);
}

/* --idle-timeout: a client that asks nothing is told why and closed; one
 * whose batch runs is not, until the timeout has passed after it. */
static void idle_clients_are_told_why_and_closed(void **s) {
  server_proc p;
  open_loop();
  start_server_with(&p, (const char *const[]){"--idle-timeout", "300", NULL});
  uint64_t t0 = uv_hrtime();
  client *idle = connect_client(p.port), *busy = connect_client(p.port),
         *chatty = connect_client(p.port);
  send_text(busy, "run loop 1 600\n");
  assert_code(uv_timer_start(&chatty->pinger, send_ping, 0, 100), 0);
  WAIT_UNTIL(idle->eof, 3000);
  double idle_ms = MS(uv_hrtime() - t0);
  assert_ms_between(idle_ms, 299, 2000);
  assert_int_equal(idle->nlines, 1);
  assert_string_equal(idle->lines[0],
                      "error idle timeout: no request for 300 ms "
                      "(--idle-timeout)");
  WAIT_UNTIL(busy->nlines > 0, 3000);
  double report_ms = MS(uv_hrtime() - t0);
  assert_false(busy->eof); /* not while its batch ran */
  assert_true(json_has(busy->lines[0], "\"status\":\"OK\""));
  WAIT_UNTIL(busy->eof, 3000);
  double busy_ms = MS(uv_hrtime() - t0);
  assert_ms_between(busy_ms - report_ms, 250, 2000);
  assert_string_equal(busy->lines[1],
                      "error idle timeout: no request for 300 ms "
                      "(--idle-timeout)");
  assert_false(chatty->eof); /* a ping every 100 ms keeps it */
  uv_timer_stop(&chatty->pinger);
  WAIT_UNTIL(chatty->pongs == chatty->pings, 1000);
  const char *stats = ask(chatty, "stats");
  assert_int_equal(json_number(stats, "idle_closed"), 2);
  assert_int_equal(json_number(stats, "clients"), 1);
  print_message("idle client closed after %.1f ms, busy one %.1f ms after "
                "its report\n",
                idle_ms, busy_ms - report_ms);
  free_client(idle);
  free_client(busy);
  free_client(chatty);
  server_down(&p);
}

/* --max-operations counts every client's running batches: a run that
 * would pass it is refused, naming it. --max-threads is shared: a run
 * that finds the threads taken waits its turn on them. */
static void
runs_share_the_threads_cap_and_past_the_operations_cap_are_refused(void **s) {
  server_proc p;
  open_loop();
  start_server_with(&p,
                    (const char *const[]){"--max-threads", "10",
                                          "--max-operations", "1000", NULL});
  client *a = connect_client(p.port), *b = connect_client(p.port);
  send_text(a, "run threads 8 300\n");
  assert_string_equal(ask(a, "ping"), "pong"); /* a's batch runs */
  const char *stats = ask(b, "stats");
  assert_int_equal(json_number(stats, "threads_running"), 8);
  /* The 2 threads left take b's 5 operations in turns, while a runs. */
  const char *r = ask(b, "run threads 5 10");
  assert_true(json_has(r, "\"status\":\"OK\""));
  assert_cmp(json_number(r, "peak_in_flight"), <=, 2);
  assert_int_equal(a->nlines, 1); /* a has not answered yet */
  assert_string_equal(ask(b, "run loop 993 10"),
                      "error server busy: this run has 993 operations and 8 "
                      "of 1000 are in use (--max-operations); try later, or "
                      "a smaller COUNT");
  r = ask(b, "run loop 992 10");
  assert_true(json_has(r, "\"status\":\"OK\""));
  WAIT_UNTIL(a->nlines > 1, 3000);
  assert_true(json_has(a->lines[1], "\"status\":\"OK\""));
  stats = ask(b, "stats");
  assert_int_equal(json_number(stats, "refused_runs"), 1);
  assert_int_equal(json_number(stats, "threads_running"), 0);
  assert_int_equal(json_number(stats, "operations_running"), 0);
  r = ask(b, "run loop 1000 1"); /* the whole cap, once it is free */
  assert_true(json_has(r, "\"status\":\"OK\""));
  free_client(a);
  free_client(b);
  server_down(&p);
}

/* Workers batches run on the server's one pool of --workers threads,
 * not a pool each, and take turns on it; with --workers 0 the style is
 * refused, saying why. */
static void workers_batches_share_the_servers_pool(void **s) {
  server_proc p;
  open_loop();
  start_server_with(&p, (const char *const[]){"--workers", "2", NULL});
  client *a = connect_client(p.port), *b = connect_client(p.port);
  send_text(a, "run workers 4 100\n");
  send_text(b, "run workers 4 100\n");
  WAIT_UNTIL(a->nlines > 0 && b->nlines > 0, 3000);
  assert_cmp(a->nlines, >, 0);
  assert_cmp(b->nlines, >, 0);
  /* 8 waits of 100 ms on 2 threads: 400 ms for the last; each batch's
   * operations ran on those 2 threads, 2 at once at most. */
  double ea = json_number(a->lines[0], "elapsed_ms"),
         eb = json_number(b->lines[0], "elapsed_ms");
  double last = ea > eb ? ea : eb;
  print_message("two workers batches over in %.1f and %.1f ms\n", ea, eb);
  assert_ms_at_least(last, 390);
  assert_int_equal(json_number(a->lines[0], "threads"), 2);
  assert_cmp(json_number(a->lines[0], "peak_in_flight"), <=, 2);
  assert_cmp(json_number(b->lines[0], "peak_in_flight"), <=, 2);
  free_client(a);
  free_client(b);
  server_down(&p);

  open_loop();
  start_server_with(&p, (const char *const[]){"--workers", "0", NULL});
  a = connect_client(p.port);
  assert_string_equal(ask(a, "run workers 1 1"),
                      "error server busy: this server has no workers "
                      "(--workers 0); try another style");
  free_client(a);
  server_down(&p);
}

/* With --max-threads 0 the threads style is refused, saying why. */
static void a_server_without_threads_refuses_the_threads_style(void **s) {
  server_proc p;
  open_loop();
  start_server_with(&p, (const char *const[]){"--max-threads", "0", NULL});
  client *a = connect_client(p.port);
  assert_string_equal(ask(a, "run threads 1 1"),
                      "error server busy: this server runs no threads "
                      "(--max-threads 0); try another style");
  assert_true(json_has(ask(a, "run pool 1 1"), "\"status\":\"OK\""));
  free_client(a);
  server_down(&p);
}

/* A loops batch makes a thread per loop when it starts: those count
 * against --max-threads while it runs, and a run that would pass it is
 * refused until they are free again. CPU work is fine there: it runs on
 * the batch's loops, not the server's. */
static void loops_batches_threads_count_against_max_threads(void **s) {
  server_proc p;
  open_loop();
  start_server_with(&p, (const char *const[]){"--max-threads", "1", NULL});
  client *a = connect_client(p.port), *b = connect_client(p.port);
  send_text(a, "run loops 4 300 limit=1\n"); /* one loop: limit 1 */
  WAIT_UNTIL(json_has(ask(b, "stats"), "\"batches_running\":1"), 5000);
  assert_true(
      json_has(b->lines[(b->nlines - 1) % LINES_MAX], "\"threads_running\":1"));
  assert_string_equal(ask(b, "run loops 1 1"),
                      "error server busy: the loops style runs 1 threads "
                      "and 1 of --max-threads 1 are in use by loops; try "
                      "later, or another style");
  assert_true(json_has(ask(b, "run loop 1 1"), "\"status\":\"OK\""));
  WAIT_UNTIL(a->nlines > 0, 5000);
  assert_true(json_has(a->lines[0], "\"status\":\"OK\""));
  assert_true(
      json_has(ask(b, "run loops 2 10 work=cpu limit=1"), "\"status\":\"OK\""));
  free_client(a);
  free_client(b);
  server_down(&p);
}

/* libuv's pool is shared and first come, first served: the server's pool
 * batches share a limit of the pool's size, so two clients' batches take
 * turns instead of one waiting for the other's whole batch. */
static void pool_clients_take_turns(void **state) {
  server_proc *p = *state;
  client *a = connect_client(p->port), *b = connect_client(p->port);
  send_text(a, "run pool 8 100\n");
  send_text(b, "run pool 8 100\n");
  WAIT_UNTIL(a->nlines > 0 && b->nlines > 0, 3000);
  assert_cmp(a->nlines, >, 0);
  assert_cmp(b->nlines, >, 0);
  unsigned pool = iob_pool_size();
  assert_cmp(json_number(a->lines[0], "peak_in_flight"), <=, pool);
  assert_cmp(json_number(b->lines[0], "peak_in_flight"), <=, pool);
  /* Turns: a 0-100, b 100-200, a 200-300, b 300-400 ms. One after the
   * other, a would be over in 200 ms. */
  double ea = json_number(a->lines[0], "elapsed_ms"),
         eb = json_number(b->lines[0], "elapsed_ms");
  double first = ea < eb ? ea : eb;
  print_message("the first pool batch over in %.1f ms\n", first);
  if (pool == 4)
    assert_ms_at_least(first, 280);
  free_client(a);
  free_client(b);
  server_down(p);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test-server-caps PATH-TO-iobound-server\n");
    return 1;
  }
  server_path = argv[1];
  /* A server that died would make our writes raise SIGPIPE: fail instead. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(
          connections_past_the_cap_are_refused_with_a_reason,
          server_proc_teardown),
      cmocka_unit_test_teardown(idle_clients_are_told_why_and_closed,
                                server_proc_teardown),
      cmocka_unit_test_teardown(
          runs_share_the_threads_cap_and_past_the_operations_cap_are_refused,
          server_proc_teardown),
      cmocka_unit_test_teardown(
          a_server_without_threads_refuses_the_threads_style,
          server_proc_teardown),
      cmocka_unit_test_teardown(loops_batches_threads_count_against_max_threads,
                                server_proc_teardown),
      cmocka_unit_test_teardown(workers_batches_share_the_servers_pool,
                                server_proc_teardown),
      cmocka_unit_test_setup_teardown(pool_clients_take_turns, server_up,
                                      server_proc_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
