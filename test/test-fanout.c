/* iobound-fanout (examples/fanout.c) against a throwaway nginx and
 * PostgreSQL (nginx-test.sh inside pg-test.sh): twenty clients sending 200
 * requests between them get every answer right, while nginx never holds
 * more connections than --limit and PostgreSQL never more backends than
 * --pool; a client that goes away cancels its requests; SIGINT ends the
 * service, exit 0. Bad command lines exit 64 with a hint. Skipped (77)
 * without the two servers.
 *   test-fanout PATH-TO-iobound-fanout */
#include <arpa/inet.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common.h"

static const char *fanout, *nginx, *pg_dir;
static char conninfo[512];
static int nginx_port;

enum { CLIENTS = 20, EACH = 10, LIMIT = 24, POOL = 3, FANOUT = 4 };

/* ---- the service, as a child ------------------------------------------------ */

typedef struct service {
  pid_t pid;
  int port;
} service;

static pid_t running; /* killed by the teardown if a test fails */

static int kill_running(void **state) {
  (void)state;
  if (running > 0) {
    kill(running, SIGKILL);
    waitpid(running, NULL, 0);
  }
  running = 0;
  return 0;
}

static service start(const char *url_path, const char *query) {
  char url[256], limit[16], pool[16], fan[16];
  snprintf(url, sizeof(url), "%s%s", nginx, url_path);
  snprintf(limit, sizeof(limit), "%d", LIMIT);
  snprintf(pool, sizeof(pool), "%d", POOL);
  snprintf(fan, sizeof(fan), "%d", FANOUT);
  int out[2];
  assert_int_equal(pipe(out), 0);
  service s = {.pid = fork()};
  assert_cmp(s.pid, >=, 0);
  if (s.pid == 0) {
    dup2(out[1], 1);
    execl(fanout, fanout, "--url", url, "--pg", conninfo, "--query", query,
          "--limit", limit, "--pool", pool, "--fanout", fan, (char *)NULL);
    _exit(127);
  }
  running = s.pid;
  close(out[1]);
  FILE *f = fdopen(out[0], "r");
  char line[128] = "";
  assert_non_null(fgets(line, sizeof(line), f));
  fclose(f);
  if (sscanf(line, "iobound-fanout: listening on port %d", &s.port) != 1)
    fail_msg("iobound-fanout said: %s", line);
  return s;
}

/* SIGINT: it must end, with 0, within 5 s. */
static void stop(service s) {
  kill(s.pid, SIGINT);
  int status = -1;
  for (int k = 0; k < 500 && waitpid(s.pid, &status, WNOHANG) == 0; k++)
    uv_sleep(10);
  if (status != -1)
    running = 0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fail_msg("iobound-fanout did not end with 0 after SIGINT (%d)", status);
  }
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

/* ---- what the servers hold ------------------------------------------------- */

static atomic_bool watching;
static atomic_int most_nginx, most_pg;

/* nginx's active connections, less the one asking. */
static int nginx_connections(void) {
  int fd = dial(nginx_port);
  const char ask[] = "GET /status HTTP/1.0\r\n\r\n";
  char answer[512] = "";
  size_t got = 0;
  ssize_t n;
  if (write(fd, ask, sizeof(ask) - 1) < 0)
    return -1;
  while ((n = read(fd, answer + got, sizeof(answer) - 1 - got)) > 0)
    got += (size_t)n;
  close(fd);
  const char *at = strstr(answer, "Active connections:");
  return at != NULL ? atoi(at + 19) - 1 : -1;
}

static void *watch(void *arg) {
  PGconn *db = PQconnectdb(conninfo);
  (void)arg;
  while (atomic_load(&watching)) {
    int n = nginx_connections();
    if (n > atomic_load(&most_nginx))
      atomic_store(&most_nginx, n);
    PGresult *r = PQexec(db, "SELECT count(*) - 1 FROM pg_stat_activity "
                             "WHERE backend_type = 'client backend'");
    int b =
        PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    if (b > atomic_load(&most_pg))
      atomic_store(&most_pg, b);
    uv_sleep(5);
  }
  PQfinish(db);
  return NULL;
}

/* ---- clients --------------------------------------------------------------- */

typedef struct client {
  pthread_t thread;
  int port, first; /* its IDs: first, first + 1... */
  int right;       /* answers as they should be */
  char wrong[256];
} client;

/* What answer to "get ID" must be. */
static bool right(const char *line, int id) {
  char want[256];
  int len = snprintf(want, sizeof(want), "{\"id\":%d,\"ms\":", id);
  if (strncmp(line, want, (size_t)len) != 0)
    return false;
  snprintf(want, sizeof(want), "\"http\":[%s],\"row\":[\"%d\"],\"error\":null}",
           "{\"status\":200,\"bytes\":8},{\"status\":200,\"bytes\":8},"
           "{\"status\":200,\"bytes\":8},{\"status\":200,\"bytes\":8}",
           id);
  return strstr(line, want) != NULL;
}

static void *ask(void *arg) {
  client *c = arg;
  int fd = dial(c->port);
  char lines[EACH * 16], buf[EACH * 256];
  size_t len = 0, got = 0;
  for (int k = 0; k < EACH; k++) /* all at once: they run side by side */
    len += (size_t)sprintf(lines + len, "get %d\n", c->first + k);
  assert_int_equal(write(fd, lines, len), (ssize_t)len);
  int answers = 0;
  ssize_t n;
  while (answers < EACH && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
    for (buf[got += (size_t)n] = '\0', answers = 0, n = 0; buf[n]; n++)
      answers += buf[n] == '\n';
  close(fd);
  /* Answers come as requests end, in any order: each ID once, right. */
  for (char *line = strtok(buf, "\n"); line != NULL;
       line = strtok(NULL, "\n")) {
    int id = -1;
    sscanf(line, "{\"id\":%d", &id);
    if (id >= c->first && id < c->first + EACH && right(line, id))
      c->right++;
    else
      snprintf(c->wrong, sizeof(c->wrong), "%.255s", line);
  }
  return NULL;
}

static void twenty_clients_get_every_answer_within_the_limits(void **state) {
  (void)state;
  service s = start("/wait/20?id={id}", "SELECT $1::int FROM pg_sleep(0.01)");
  atomic_store(&watching, true);
  pthread_t watcher;
  pthread_create(&watcher, NULL, watch, NULL);
  client c[CLIENTS];
  for (int k = 0; k < CLIENTS; k++) {
    c[k] = (client){.port = s.port, .first = k * EACH};
    pthread_create(&c[k].thread, NULL, ask, &c[k]);
  }
  for (int k = 0; k < CLIENTS; k++) {
    pthread_join(c[k].thread, NULL);
    if (c[k].right != EACH)
      fail_msg("client %d: %d right answers of %d; one was: %s", k, c[k].right,
               EACH, c[k].wrong);
  }
  atomic_store(&watching, false);
  pthread_join(watcher, NULL);
  print_message("most at once: %d nginx connections (limit %d), %d "
                "PostgreSQL backends (pool %d)\n",
                atomic_load(&most_nginx), LIMIT, atomic_load(&most_pg), POOL);
  assert_cmp(atomic_load(&most_nginx), >, 0);
  assert_cmp(atomic_load(&most_pg), >, 0);
  assert_cmp(atomic_load(&most_nginx), <=, LIMIT);
  assert_cmp(atomic_load(&most_pg), <=, POOL);
  stop(s);
}

/* The descriptors process pid has open. */
static int descriptors(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  int n = 0;
  while (d != NULL && readdir(d) != NULL)
    n++;
  if (d != NULL)
    closedir(d);
  return n;
}

/* Its GETs take 3 s; the client goes after 300 ms: the service drops
 * their connections at once. (nginx itself notices only when its 3 s
 * are up: echo_sleep does not watch the client.) */
static void a_client_that_goes_cancels_its_requests(void **state) {
  (void)state;
  service s = start("/wait/3000?id={id}", "SELECT $1::int");
  int before = descriptors(s.pid), fd = dial(s.port);
  assert_int_equal(write(fd, "get 1\n", 6), 6);
  int held = 0;
  for (int k = 0; k < 100 && held < FANOUT; k++, uv_sleep(10))
    held = descriptors(s.pid) - before - 1; /* (less the client's) */
  assert_cmp(held, >=, FANOUT); /* its GETs' connections, and perhaps PG's */
  close(fd);
  uint64_t t0 = uv_hrtime();
  while (descriptors(s.pid) > before + 1 && uv_hrtime() - t0 < 3000000000u)
    uv_sleep(10); /* (+1: the pool keeps its connection) */
  assert_ms_below(MS(uv_hrtime() - t0), 1000); /* not the 3 s asked */
  stop(s);
}

static void bad_command_lines_exit_64(void **state) {
  (void)state;
  /* Each wrong in one way only: the rest is right. */
  char *const lines[][8] = {
      {"--fanout", "0"},
      {"--fanout", "65"},
      {"--limit", "x"},
      {"--style", "loops"}, /* a client and a pool serve one loop */
      {"--style", "none"},
      {"--listen", "nowhere"},
      {"--listen", "127.0.0.1:70000"},
      {"--url", "http://127.0.0.1/"}, /* no {id} */
      {"--bogus"},
  };
  for (size_t k = 0; k < sizeof(lines) / sizeof(lines[0]); k++) {
    char *args[12] = {(char *)fanout, "--url", "http://127.0.0.1/{id}", "--pg",
                      conninfo};
    for (int j = 0; j < 2 && lines[k][j] != NULL; j++)
      args[5 + j] = lines[k][j];
    if (test_run_child(args) != 64)
      fail_msg("%s %s: not 64", lines[k][0], lines[k][1] ? lines[k][1] : "");
  }
  char *no_pg[] = {(char *)fanout, "--url", "http://127.0.0.1/{id}", NULL};
  assert_int_equal(test_run_child(no_pg), 64);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  fanout = argc > 1 ? argv[1] : NULL;
  nginx = getenv("IOB_TEST_NGINX_URL");
  pg_dir = getenv("IOB_PG_DIR");
  if (fanout == NULL || nginx == NULL || pg_dir == NULL) {
    fprintf(stderr, "test-fanout: needs nginx and PostgreSQL (run it "
                    "through pg-test.sh nginx-test.sh)\n");
    return 77;
  }
  nginx_port = atoi(strrchr(nginx, ':') + 1);
  snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres dbname=postgres",
           pg_dir);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(
          twenty_clients_get_every_answer_within_the_limits, kill_running),
      cmocka_unit_test_teardown(a_client_that_goes_cancels_its_requests,
                                kill_running),
      cmocka_unit_test(bad_command_lines_exit_64),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
