/* iobound-server's arguments (those of every program that listens,
 * cli_parse_listen, and its caps) and request lines, parsed without a
 * network: defaults, every option, every bad value, every control byte. */
#include <string.h>

#include "../examples/server.h"
#include "helpers.h"

#define PARSE(o, err, ...)                                                     \
  parse_args((char *[]){"iobound-server", __VA_ARGS__, NULL}, o, err)

static int parse_args(char **argv, cli_listen *o, char *err) {
  int argc = 0;
  while (argv[argc] != NULL)
    argc++;
  return cli_parse_listen(argc, argv, o, err, 256);
}

static unsigned int port_of(const cli_listen *o) {
  const struct sockaddr_in *in = (const struct sockaddr_in *)&o->addr;
  const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&o->addr;
  return ntohs(o->addr.ss_family == AF_INET6 ? in6->sin6_port : in->sin_port);
}

/* The kinds a client may ask for, as the library says: those a batch
 * accepts without a target, for a client has none to give. */
static bool takes_no_target(const iob_kind *kind) {
  iob_config c = config_of(&iob_style_threads, 1, 0);
  c.kind = kind;
  iob_batch *b;
  int err = iob_batch_create(&b, &c);
  iob_batch_free(b);
  return err == 0;
}

/* Their names, from iob_kind_at(), joined as cli_join() does. */
static const char *client_kinds(char *out, size_t size, const char *sep,
                                const char *last) {
  const char *names[32];
  size_t n = 0;
  const iob_kind *kind;
  for (size_t k = 0; (kind = iob_kind_at(k)) != NULL && n < 32; k++)
    if (takes_no_target(kind))
      names[n++] = kind->name;
  return cli_join(out, size, names, n, sep, last);
}

static void
no_arguments_listen_on_loopback_on_a_port_of_the_systems(void **state) {
  cli_listen o;
  char err[256];
  char *argv[] = {"iobound-server", NULL};
  assert_int_equal(cli_parse_listen(1, argv, &o, err, sizeof(err)), 0);
  assert_int_equal(o.action, CLI_RUN);
  assert_string_equal(o.host, "127.0.0.1");
  assert_int_equal(o.port, 0);
  assert_int_equal(o.addr.ss_family, AF_INET);
}

static void host_and_port_are_understood_in_both_spellings(void **state) {
  cli_listen o;
  char err[256];
  assert_int_equal(PARSE(&o, err, "--host", "0.0.0.0", "--port", "7000"), 0);
  assert_string_equal(o.host, "0.0.0.0");
  assert_int_equal(port_of(&o), 7000);
  assert_int_equal(PARSE(&o, err, "--host=::1", "--port=65535"), 0);
  assert_int_equal(o.addr.ss_family, AF_INET6);
  assert_int_equal(port_of(&o), 65535);
  assert_int_equal(PARSE(&o, err, "--port", "8", "-h"), 0);
  assert_int_equal(o.action, CLI_HELP);
  assert_int_equal(PARSE(&o, err, "--version"), 0);
  assert_int_equal(o.action, CLI_VERSION);
  /* The library's address parser: localhost, and IPv6 in brackets too. */
  assert_int_equal(PARSE(&o, err, "--host", "localhost"), 0);
  assert_int_equal(o.addr.ss_family, AF_INET);
  assert_int_equal(PARSE(&o, err, "--host", "[::1]", "--port", "80"), 0);
  assert_int_equal(o.addr.ss_family, AF_INET6);
  assert_int_equal(port_of(&o), 80);
  /* The kinds a client may ask for, named from the library's table. */
  char kinds[128], work[160];
  snprintf(work, sizeof(work), "[work=%s]",
           client_kinds(kinds, sizeof(kinds), "|", "|"));
  assert_non_null(strstr(server_usage(), work));
  assert_non_null(strstr(server_usage(), "--host ADDRESS"));
}

static void bad_arguments_are_refused_with_a_message_naming_them(void **state) {
  static const struct {
    const char *args[3];
    const char *message;
  } cases[] = {
      {{"--port", "65536"},
       "--port takes a number from 0 to 65535, not '65536'"},
      {{"--port", "+80"}, "--port takes a number from 0 to 65535, not '+80'"},
      {{"--port", "0x50"}, "--port takes a number from 0 to 65535, not '0x50'"},
      {{"--port="}, "--port takes a number from 0 to 65535, not ''"},
      {{"--port"}, "option '--port' needs a value"},
      {{"--host"}, "option '--host' needs a value"},
      {{"--host", "example.org"},
       "--host takes an IPv4 or IPv6 address or localhost, not "
       "'example.org'"},
      {{"--host="},
       "--host takes an IPv4 or IPv6 address or localhost, not "
       "''"},
      {{"--help=yes"}, "option '--help' takes no value"},
      {{"--host", "1.2.3.4.5"},
       "--host takes an IPv4 or IPv6 address or localhost, not '1.2.3.4.5'"},
      {{"--hostname", "x"}, "unknown option '--hostname'"},
      {{"-p", "1"}, "unknown option '-p'"},
      {{"7000"}, "unknown option '7000'"},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    cli_listen o;
    char err[256] = "";
    char *argv[4] = {"iobound-server", (char *)cases[k].args[0],
                     (char *)cases[k].args[1], NULL};
    int argc = argv[2] != NULL ? 3 : 2;
    assert_int_equal(cli_parse_listen(argc, argv, &o, err, sizeof(err)),
                     CLI_EX_USAGE);
    assert_string_equal(err, cases[k].message);
  }
}

/* ---- the server's caps ------------------------------------------------- */

#define SERVER_PARSE(o, err, ...)                                              \
  server_parse((char *[]){"iobound-server", __VA_ARGS__, NULL}, o, err)

static int server_parse(char **argv, server_options *o, char *err) {
  int argc = 0;
  while (argv[argc] != NULL)
    argc++;
  return server_parse_args(argc, argv, o, err, 256);
}

static void the_caps_have_defaults_and_flags(void **state) {
  server_options o;
  char err[256];
  char *argv[] = {"iobound-server", NULL};
  assert_int_equal(server_parse_args(1, argv, &o, err, sizeof(err)), 0);
  assert_int_equal(o.listen.action, CLI_RUN);
  assert_string_equal(o.listen.host, "127.0.0.1");
  assert_int_equal(o.listen.port, 0);
  assert_int_equal(o.max_connections, 1000);
  assert_int_equal(o.idle_timeout_ms, 60000);
  assert_int_equal(o.half_close_timeout_ms, 60000);
  assert_int_equal(o.max_threads, 1000);
  assert_int_equal(o.max_operations, 1000000);
  assert_int_equal(o.workers, IOB_WORKERS_DEFAULT);
  assert_false(o.http);

  assert_int_equal(SERVER_PARSE(&o, err, "--max-connections", "5",
                                "--idle-timeout=0", "--max-threads", "0",
                                "--max-operations", "100000000", "--port", "80",
                                "--host", "::1", "--workers", "1024",
                                "--half-close-timeout", "86400000"),
                   0);
  assert_int_equal(o.half_close_timeout_ms, 86400000);
  assert_int_equal(o.workers, 1024);
  assert_int_equal(o.max_connections, 5);
  assert_int_equal(o.idle_timeout_ms, 0);
  assert_int_equal(o.max_threads, 0);
  assert_int_equal(o.max_operations, 100000000);
  assert_int_equal(port_of(&o.listen), 80);
  assert_int_equal(o.listen.addr.ss_family, AF_INET6);
  /* Shortened while unambiguous, as every option. */
  assert_int_equal(SERVER_PARSE(&o, err, "--idle", "10", "--max-c=7"), 0);
  assert_int_equal(o.idle_timeout_ms, 10);
  assert_int_equal(o.max_connections, 7);
  assert_int_equal(SERVER_PARSE(&o, err, "--half=0"), 0);
  assert_int_equal(o.half_close_timeout_ms, 0);
  assert_int_equal(SERVER_PARSE(&o, err, "--http", "8080"), 0);
  assert_true(o.http);
  assert_int_equal(o.http_port, 8080);
  assert_int_equal(SERVER_PARSE(&o, err, "--http=0"), 0);
  assert_true(o.http);
  assert_int_equal(o.http_port, 0);
  assert_int_equal(SERVER_PARSE(&o, err, "--max-threads", "3", "-h"), 0);
  assert_int_equal(o.listen.action, CLI_HELP);
  assert_int_equal(SERVER_PARSE(&o, err, "--version"), 0);
  assert_int_equal(o.listen.action, CLI_VERSION);
  /* --help lists them with their defaults. */
  assert_non_null(strstr(server_usage(), "--max-connections N"));
  assert_non_null(strstr(server_usage(), "--idle-timeout MS"));
  assert_non_null(strstr(server_usage(), "--half-close-timeout MS"));
  assert_non_null(strstr(server_usage(), "(default 60000; 0:"));
  assert_non_null(strstr(server_usage(), "--max-threads N"));
  assert_non_null(strstr(server_usage(), "--max-operations N"));
  assert_non_null(strstr(server_usage(), "--workers N"));
  assert_non_null(strstr(server_usage(), "--http PORT"));
  assert_non_null(strstr(server_usage(), "[rate=R] [arrivals=even|poisson]"));
}

static void bad_caps_are_refused_with_a_message_naming_them(void **state) {
  static const struct {
    const char *args[3];
    const char *message;
  } cases[] = {
      {{"--max-connections", "1000001"},
       "--max-connections takes a number from 0 to 1000000, not '1000001'"},
      {{"--idle-timeout", "1s"},
       "--idle-timeout takes a number from 0 to 86400000, not '1s'"},
      {{"--idle-timeout", "86400001"},
       "--idle-timeout takes a number from 0 to 86400000, not '86400001'"},
      {{"--half-close-timeout", "-5"},
       "--half-close-timeout takes a number from 0 to 86400000, not '-5'"},
      {{"--half-close-timeout", "86400001"},
       "--half-close-timeout takes a number from 0 to 86400000, not "
       "'86400001'"},
      {{"--half-close-timeout"}, "option '--half-close-timeout' needs a value"},
      {{"--max-threads="},
       "--max-threads takes a number from 0 to 100000, not ''"},
      {{"--max-operations", "-1"},
       "--max-operations takes a number from 0 to 100000000, not '-1'"},
      {{"--max-operations"}, "option '--max-operations' needs a value"},
      {{"--workers", "1025"},
       "--workers takes a number from 0 to 1024, not '1025'"},
      {{"--http", "65536"},
       "--http takes a number from 0 to 65535, not '65536'"},
      {{"--http"}, "option '--http' needs a value"},
      {{"--max", "1"}, "option '--max' is ambiguous"},
      {{"--idle-timeout=5", "extra"}, "unknown option 'extra'"},
      /* The listening options, read by cli_parse_listen() itself. */
      {{"--port", "x"}, "--port takes a number from 0 to 65535, not 'x'"},
      {{"--port="}, "--port takes a number from 0 to 65535, not ''"},
      {{"--host", "example.org"},
       "--host takes an IPv4 or IPv6 address or localhost, not "
       "'example.org'"},
      {{"--help=yes"}, "option '--help' takes no value"},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    server_options o;
    char err[256] = "";
    char *argv[4] = {"iobound-server", (char *)cases[k].args[0],
                     (char *)cases[k].args[1], NULL};
    int argc = argv[2] != NULL ? 3 : 2;
    assert_int_equal(server_parse_args(argc, argv, &o, err, sizeof(err)),
                     CLI_EX_USAGE);
    assert_string_equal(err, cases[k].message);
  }
}

/* ---- requests ---------------------------------------------------------- */

static request parsed(const char *line) {
  request r;
  char err[256] = "";
  if (server_parse_request(line, &r, err, sizeof(err)) != 0)
    fail_msg("'%s' refused: %s", line, err);
  return r;
}

static void a_run_request_fills_the_config(void **state) {
  request r = parsed("run loop 1000 200");
  assert_int_equal(r.kind, REQUEST_RUN);
  assert_ptr_equal(r.config.style, &iob_style_loop);
  assert_int_equal(r.config.count, 1000);
  assert_int_equal(r.config.duration_ms, 200);
  assert_ptr_equal(r.config.kind, &iob_kind_wait);
  assert_int_equal(r.config.max_in_flight, 0);
  assert_int_equal(r.config.timeout_ms, 0);
  assert_false(r.stream);

  r = parsed("  run\tpool 8 100 limit=3 timeout=50 work=cpu stream=1\r");
  assert_ptr_equal(r.config.style, &iob_style_pool);
  assert_int_equal(r.config.count, 8);
  assert_int_equal(r.config.max_in_flight, 3);
  assert_int_equal(r.config.timeout_ms, 50);
  assert_ptr_equal(r.config.kind, &iob_kind_cpu);
  assert_true(r.stream);

  /* The bounds themselves are allowed. */
  r = parsed("run threads 100000 60000 limit=1000 timeout=60000");
  assert_int_equal(r.config.count, SERVER_COUNT_MAX);
  r = parsed("run sequential 1000 0 stream=1 stream=0");
  assert_false(r.stream);
  assert_int_equal(r.rate, 0);
  assert_false(r.poisson);

  /* Arrivals at a rate: the run may span as long as one operation may. */
  r = parsed("run pool 600 100 rate=10 arrivals=poisson");
  assert_int_equal(r.rate, 10);
  assert_true(r.poisson);
  assert_int_equal(r.config.count, 600);
  r = parsed("run loop 100000 1 rate=1000000 arrivals=even");
  assert_int_equal(r.rate, SERVER_RATE_MAX);
  assert_false(r.poisson);
  assert_int_equal(parsed("run loop 5 5 rate=0").rate, 0);
}

/* Every kind of the library's is taken or refused by one rule: a client
 * may ask for any that needs no target. tcp needs a service to ask, which
 * a client cannot give; wait and cpu need nothing. */
static void a_client_may_ask_for_every_kind_that_needs_no_target(void **s) {
  const iob_kind *kind;
  for (size_t k = 0; (kind = iob_kind_at(k)) != NULL; k++) {
    char line[96], err[256] = "";
    request r;
    snprintf(line, sizeof(line), "run threads 1 1 work=%s", kind->name);
    int rc = server_parse_request(line, &r, err, sizeof(err));
    if (takes_no_target(kind)) {
      if (rc != 0)
        fail_msg("'%s' refused: %s", line, err);
      assert_ptr_equal(r.config.kind, kind);
    } else if (rc != -1 || strncmp(err, "work must be ", 13) != 0) {
      fail_msg("'%s' not refused for its work: %s", line, err);
    }
  }
  assert_true(takes_no_target(&iob_kind_wait));
  assert_true(takes_no_target(&iob_kind_cpu));
  assert_false(takes_no_target(&iob_kind_tcp));
}

/* A refusal that lists what a request may name lists what the library's
 * tables hold: "%s" in each message below is that list. */
static void refusals_list_the_styles_and_kinds_of_the_library(void **s) {
  char kinds_bar[128], kinds_or[128], styles[128], threaded[128];
  char usage[256];
  client_kinds(kinds_bar, sizeof(kinds_bar), "|", "|");
  client_kinds(kinds_or, sizeof(kinds_or), ", ", " or ");
  cli_style_names(styles, sizeof(styles), 0, ", ", " or ");
  cli_style_names(threaded, sizeof(threaded),
                  IOB_STYLE_ON_THREADS | IOB_STYLE_LOOPS, ", ", " or ");
  snprintf(usage, sizeof(usage),
           "usage: run STYLE COUNT DURATION_MS [limit=N] [timeout=MS] "
           "[work=%s] [stream=1] [rate=R] [arrivals=even|poisson]",
           kinds_bar);
  const struct {
    const char *line, *error, *list;
  } cases[] = {
      {"run", "%s", usage},
      {"run loop 5", "%s", usage},
      {"run fast 5 5", "unknown style 'fast' (%s)", styles},
      {"run loop 5 5 work=user", "work must be %s, not 'user'", kinds_or},
      {"run loop 5 5 work=", "work must be %s, not ''", kinds_or},
      {"run loop 5 5 work=tcp", "work must be %s, not 'tcp'", kinds_or},
      {"run loop 5 5 limits=3", "unknown option 'limits=3' (%s)", usage},
      {"run sequential 5 5 work=cpu",
       "work=cpu would block the server's loop in the sequential style; "
       "use %s",
       threaded},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    request r;
    char err[256] = "", want[320];
    const char *at = strstr(cases[k].error, "%s");
    snprintf(want, sizeof(want), "%.*s%s%s", (int)(at - cases[k].error),
             cases[k].error, cases[k].list, at + 2);
    if (server_parse_request(cases[k].line, &r, err, sizeof(err)) != -1)
      fail_msg("'%s' was accepted", cases[k].line);
    assert_string_equal(err, want);
  }
}

static void the_other_commands_take_no_arguments(void **state) {
  assert_int_equal(parsed("ping").kind, REQUEST_PING);
  assert_int_equal(parsed("stats\r").kind, REQUEST_STATS);
  assert_int_equal(parsed(" quit ").kind, REQUEST_QUIT);
  assert_int_equal(parsed("").kind, REQUEST_NONE);
  assert_int_equal(parsed(" \t\r").kind, REQUEST_NONE);
}

static void bad_requests_are_refused_with_a_reason(void **state) {
  static const struct {
    const char *line, *error;
  } cases[] = {
      {"run loop 0 5", "count must be 1..100000, not '0'"},
      {"run loop 100001 5", "count must be 1..100000, not '100001'"},
      {"run loop 99999999999999999999 5",
       "count must be 1..100000, not '99999999999999999999'"},
      {"run loop 5x 5", "count must be 1..100000, not '5x'"},
      {"run loop 5 60001", "duration must be 0..60000 ms, not '60001'"},
      {"run loop 5 -1", "duration must be 0..60000 ms, not '-1'"},
      {"run loop 5 5 limit=100001",
       "limit must be 0..100000 (0: none), not '100001'"},
      {"run loop 5 5 limit", "limit must be 0..100000 (0: none), not ''"},
      {"run loop 5 5 timeout=1s",
       "timeout must be 0..60000 ms (0: none), not '1s'"},
      {"run loop 5 5 stream=2", "stream must be 0 or 1, not '2'"},
      {"run threads 1001 5",
       "the threads style runs at most 1000 operations at once here; add "
       "limit=1000 (or less)"},
      {"run threads 1001 5 limit=1001",
       "the threads style runs at most 1000 operations at once here; add "
       "limit=1000 (or less)"},
      {"run loop 1001 5 stream=1", "stream=1 takes at most 1000 operations"},
      {"run loop 5 5 rate=1000001",
       "rate must be 1..1000000 a second (0: all at once), not '1000001'"},
      {"run loop 5 5 rate=2.5",
       "rate must be 1..1000000 a second (0: all at once), not '2.5'"},
      {"run loop 601 5 rate=10",
       "rate=10 spreads 601 operations over 60.1 s, more than 60 s; raise "
       "the rate or lower COUNT"},
      {"run loop 5 5 arrivals=poisson", "arrivals=poisson goes with rate=R"},
      {"run loop 5 5 rate=5 arrivals=bursty",
       "arrivals must be even or poisson, not 'bursty'"},
      {"RUN loop 5 5", "unknown command 'RUN' (run, ping, stats or quit)"},
      {"pong", "unknown command 'pong' (run, ping, stats or quit)"},
      {"quit now", "quit takes no arguments"},
      {"stats all", "stats takes no arguments"},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    request r;
    char err[256] = "";
    if (server_parse_request(cases[k].line, &r, err, sizeof(err)) != -1)
      fail_msg("'%s' was accepted", cases[k].line);
    assert_string_equal(err, cases[k].error);
  }
  /* The threads limit counts what runs at once, not the whole batch. */
  assert_int_equal(parsed("run threads 5000 5 limit=1000").config.count, 5000);
}

static void a_line_longer_than_the_bound_is_refused(void **state) {
  char line[SERVER_LINE_MAX + 2];
  memset(line, ' ', sizeof(line) - 1);
  line[sizeof(line) - 1] = '\0';
  memcpy(line, "ping", 4);
  request r;
  char err[256];
  assert_int_equal(server_parse_request(line, &r, err, sizeof(err)), -1);
  assert_string_equal(err, "line too long (at most 1024 bytes)");
  line[SERVER_LINE_MAX] = '\0'; /* exactly the bound: fine */
  assert_int_equal(server_parse_request(line, &r, err, sizeof(err)), 0);
  assert_int_equal(r.kind, REQUEST_PING);
}

/* A NUL or any control byte but a tab (between words) or a final '\r'
 * refuses the line: it would cut it short unseen, or reach a terminal. */
static void control_bytes_refuse_the_request(void **state) {
  static const struct {
    const char *line;
    size_t len;
    const char *error; /* NULL: taken */
  } cases[] = {
      {"run loop 1 1\0 limit=5", 21,
       "control byte \\x00 at byte 13: a request is text, spaces and tabs"},
      {"\0", 1,
       "control byte \\x00 at byte 1: a request is text, spaces and tabs"},
      {"ping\x1b[2J", 8,
       "control byte \\x1b at byte 5: a request is text, spaces and tabs"},
      {"ping\r\r", 6,
       "control byte \\x0d at byte 5: a request is text, spaces and tabs"},
      {"ping\n", 5,
       "control byte \\x0a at byte 5: a request is text, spaces and tabs"},
      {"\x7fping", 5,
       "control byte \\x7f at byte 1: a request is text, spaces and tabs"},
      {"ping\r", 5, NULL},
      {"\tping\t", 6, NULL},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    request r;
    char err[256] = "";
    int rc = server_parse_request_n(cases[k].line, cases[k].len, &r, err,
                                    sizeof(err));
    if (cases[k].error == NULL) {
      if (rc != 0)
        fail_msg("case %zu refused: %s", k, err);
      assert_int_equal(r.kind, REQUEST_PING);
    } else {
      assert_int_equal(rc, -1);
      assert_string_equal(err, cases[k].error);
    }
  }
  /* The C string version is the same parser. */
  request r;
  char err[256];
  assert_int_equal(server_parse_request("stats\x1b", &r, err, sizeof(err)), -1);
  assert_string_equal(
      err, "control byte \\x1b at byte 6: a request is text, spaces and tabs");
}

static void words_echoed_in_errors_are_quoted_and_escaped(void **state) {
  static const struct {
    const char *line, *error;
  } cases[] = {
      {"run \xff\xfe 1 1",
       "unknown style '\\xff\\xfe' (sequential, loop, pool, threads, "
       "workers or loops)"},
      {"run loop 1 1 work=a\\x1b", "work must be wait or cpu, not 'a\\\\x1b'"},
      {"run loop \xc3\xa9 1", "count must be 1..100000, not '\\xc3\\xa9'"},
      {"\xe2\x80\xae", "unknown command '\\xe2\\x80\\xae' (run, ping, stats "
                       "or quit)"},
      {"run loop 1 1 limit=\x9b", "limit must be 0..100000 (0: none), not "
                                  "'\\x9b'"},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    request r;
    char err[256] = "";
    assert_int_equal(server_parse_request(cases[k].line, &r, err, sizeof(err)),
                     -1);
    assert_string_equal(err, cases[k].error);
  }
  /* A long word is cut short. */
  char line[200] = "run ";
  memset(line + 4, 'x', 100);
  strcpy(line + 104, " 1 1");
  request r;
  char err[256];
  assert_int_equal(server_parse_request(line, &r, err, sizeof(err)), -1);
  assert_string_equal(err, "unknown style 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                           "xxxxxxxx...' (sequential, loop, pool, threads, "
                           "workers or loops)");
}

static void cli_escape_shows_every_byte_as_text(void **state) {
  char out[64];
  assert_string_equal(cli_escape("a\x1b\n\\b\0c", 7, out, sizeof(out)),
                      "a\\x1b\\x0a\\\\b\\x00c");
  assert_string_equal(cli_escape("", 0, out, sizeof(out)), "");
  assert_string_equal(cli_escape("abcdef", 6, out, 6), "ab...");
  assert_string_equal(cli_escape("abcde", 5, out, 6), "abcde");
  assert_string_equal(cli_escape("\x01\x02\x03", 3, out, 9), "\\x01...");
}

static void a_small_error_buffer_gets_a_truncated_message(void **state) {
  request r;
  char err[12];
  assert_int_equal(server_parse_request("nope", &r, err, sizeof(err)), -1);
  assert_string_equal(err, "unknown com");
}

/* ---- the page's HTTP -------------------------------------------------- */

static bool head_only;

static int http(const char *line, http_route *route, request *r, char *err) {
  return server_parse_http(line, strlen(line), route, &head_only, r, err, 256);
}

static void http_targets_name_the_page_a_run_or_the_stats(void **state) {
  http_route route;
  request r;
  char err[256] = "";
  assert_int_equal(http("GET / HTTP/1.1\r", &route, &r, err), 200);
  assert_int_equal(route, HTTP_PAGE);
  assert_false(head_only);
  assert_int_equal(http("GET /stats HTTP/1.0", &route, &r, err), 200);
  assert_int_equal(route, HTTP_STATS);
  /* HEAD: the same answer's head. */
  assert_int_equal(http("HEAD / HTTP/1.1", &route, &r, err), 200);
  assert_int_equal(route, HTTP_PAGE);
  assert_true(head_only);
  /* The words of a run, '+' or %20 between them, %3D for '=': always
   * streamed, whatever the client asked. */
  assert_int_equal(
      http("GET /run?pool+8%20100+limit%3D2+stream=0+rate=4 HTTP/1.1", &route,
           &r, err),
      200);
  assert_int_equal(route, HTTP_RUN);
  assert_int_equal(r.kind, REQUEST_RUN);
  assert_ptr_equal(r.config.style, &iob_style_pool);
  assert_int_equal(r.config.count, 8);
  assert_int_equal(r.config.duration_ms, 100);
  assert_int_equal(r.config.max_in_flight, 2);
  assert_int_equal(r.rate, 4);
  assert_true(r.stream);
}

/* Each refusal has its status, and a run's the line protocol's words. */
static void bad_http_requests_get_a_status_and_a_reason(void **state) {
  static const struct {
    const char *line;
    int status;
    const char *error;
  } cases[] = {
      {"GET /", 400, "the first line is not 'METHOD TARGET HTTP/1.1'"},
      {"GET  HTTP/1.1", 400, "the first line is not 'METHOD TARGET HTTP/1.1'"},
      {"", 400, "the first line is not 'METHOD TARGET HTTP/1.1'"},
      {"GET / HTTP/2.0", 505, "only HTTP/1.0 and HTTP/1.1 are spoken"},
      {"GET / HTTP/1.1 extra", 400,
       "the first line is not 'METHOD TARGET HTTP/1.1'"},
      {"GET / HTTP/1.1 ", 400,
       "the first line is not 'METHOD TARGET HTTP/1.1'"},
      {"GET /a b HTTP/1.1", 400,
       "the first line is not 'METHOD TARGET HTTP/1.1'"},
      {"POST / HTTP/1.1", 405, "only GET and HEAD are answered"},
      {"get / HTTP/1.1", 405, "only GET and HEAD are answered"},
      {"HEAD /run?loop+1+1 HTTP/1.1", 405, "a run is asked for with GET"},
      {"GET /index.html HTTP/1.1", 404, "no such page: GET / for the page"},
      {"GET /?x HTTP/1.1", 404, "no such page: GET / for the page"},
      {"GET /runs?loop+1+1 HTTP/1.1", 404, "no such page: GET / for the page"},
      {"GET /run HTTP/1.1", 400,
       "usage: run STYLE COUNT DURATION_MS [limit=N] [timeout=MS] "
       "[work=wait|cpu] [stream=1] [rate=R] [arrivals=even|poisson]"},
      {"GET /run?loop+0+5 HTTP/1.1", 400, "count must be 1..100000, not '0'"},
      {"GET /run?loop+1001+5 HTTP/1.1", 400,
       "stream=1 takes at most 1000 operations"},
      {"GET /run?loop+5+5+work=cpu HTTP/1.1", 400,
       "work=cpu would block the server's loop in the loop style; use pool, "
       "threads, workers or loops"},
      {"GET /run?loop+5+5%zz HTTP/1.1", 400, "a bad %-escape in the query"},
      {"GET /run?loop+5+5%4 HTTP/1.1", 400, "a bad %-escape in the query"},
      {"GET /run?loop+5+5%00 HTTP/1.1", 400,
       "control byte \\x00 at byte 13: a request is text, spaces and tabs"},
      {"GET /run?loop%0A5+5 HTTP/1.1", 400,
       "control byte \\x0a at byte 9: a request is text, spaces and tabs"},
      {"GET /run?nap+5+5 HTTP/1.1", 400,
       "unknown style 'nap' (sequential, loop, pool, threads, workers or "
       "loops)"},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    http_route route;
    request r;
    char err[256] = "";
    int status = http(cases[k].line, &route, &r, err);
    if (status != cases[k].status)
      fail_msg("'%s': %d, not %d (%s)", cases[k].line, status, cases[k].status,
               err);
    assert_string_equal(err, cases[k].error);
  }
}

/* Decoded, a run's words must fit a request line with "run " and the
 * words the page adds. */
static void a_query_too_long_once_decoded_is_refused(void **state) {
  char line[1100];
  http_route route;
  request r;
  char err[256];
  size_t fit = SERVER_LINE_MAX - strlen("run ") - strlen(" stream=1");
  int n = snprintf(line, sizeof(line), "GET /run?loop+5+5");
  memset(line + n, '+', fit - strlen("loop 5 5"));
  strcpy(line + n + fit - strlen("loop 5 5"), " HTTP/1.1");
  assert_int_equal(http(line, &route, &r, err), 200);
  n = snprintf(line, sizeof(line), "GET /run?loop+5+5");
  memset(line + n, '+', fit - strlen("loop 5 5") + 1);
  strcpy(line + n + fit - strlen("loop 5 5") + 1, " HTTP/1.1");
  assert_int_equal(http(line, &route, &r, err), 414);
  assert_string_equal(err, "the query is too long (at most 1011 bytes once "
                           "decoded)");
}

/* A Host that is a name of some other site's, or a run a browser says
 * comes from another site, is refused; every other header is not read. */
static void only_this_servers_own_page_may_start_runs(void **state) {
  static const struct {
    const char *line;
    http_route route;
    int status;
  } cases[] = {
      {"Host: 127.0.0.1:8080", HTTP_RUN, 200},
      {"host:localhost", HTTP_RUN, 200},
      {"HOST: LocalHost:80 ", HTTP_RUN, 200},
      {"Host: [::1]:8080", HTTP_RUN, 200},
      {"Host: [::1]", HTTP_RUN, 200},
      {"Host: 10.1.2.3", HTTP_PAGE, 200},
      {"Host: evil.example:8080", HTTP_PAGE, 403},
      {"Host: localhost.evil.example", HTTP_RUN, 403},
      {"Host: 127.0.0.1.nip.io", HTTP_RUN, 403},
      {"Host: [::1", HTTP_RUN, 403},
      {"Host: [evil]:80", HTTP_RUN, 403},
      {"Host: ", HTTP_RUN, 403},
      {"Sec-Fetch-Site: same-origin", HTTP_RUN, 200},
      {"Sec-Fetch-Site: none", HTTP_RUN, 200},
      {"Sec-Fetch-Site: cross-site", HTTP_RUN, 403},
      {"sec-fetch-site: same-site", HTTP_RUN, 403},
      {"Sec-Fetch-Site: cross-site", HTTP_PAGE, 200},
      {"Cookie: a=b", HTTP_RUN, 200},
      {"X-Host: evil.example", HTTP_RUN, 200},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    char err[256] = "";
    int status = server_check_http_header(cases[k].line, strlen(cases[k].line),
                                          cases[k].route, err, sizeof(err));
    if (status != cases[k].status)
      fail_msg("'%s': %d, not %d (%s)", cases[k].line, status, cases[k].status,
               err);
  }
  char err[256];
  assert_int_equal(server_check_http_header("Host: evil.example", 18, HTTP_RUN,
                                            err, sizeof(err)),
                   403);
  assert_string_equal(err, "Host 'evil.example' is not an address of this "
                           "server's nor localhost: a name could lead "
                           "another site's page here");
  assert_int_equal(server_check_http_header("Sec-Fetch-Site: cross-site", 26,
                                            HTTP_RUN, err, sizeof(err)),
                   403);
  assert_string_equal(err, "a run starts from this server's page, not from "
                           "another site's");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          no_arguments_listen_on_loopback_on_a_port_of_the_systems),
      cmocka_unit_test(host_and_port_are_understood_in_both_spellings),
      cmocka_unit_test(bad_arguments_are_refused_with_a_message_naming_them),
      cmocka_unit_test(the_caps_have_defaults_and_flags),
      cmocka_unit_test(bad_caps_are_refused_with_a_message_naming_them),
      cmocka_unit_test(a_run_request_fills_the_config),
      cmocka_unit_test(the_other_commands_take_no_arguments),
      cmocka_unit_test(bad_requests_are_refused_with_a_reason),
      cmocka_unit_test(refusals_list_the_styles_and_kinds_of_the_library),
      cmocka_unit_test(a_client_may_ask_for_every_kind_that_needs_no_target),
      cmocka_unit_test(a_line_longer_than_the_bound_is_refused),
      cmocka_unit_test(control_bytes_refuse_the_request),
      cmocka_unit_test(words_echoed_in_errors_are_quoted_and_escaped),
      cmocka_unit_test(cli_escape_shows_every_byte_as_text),
      cmocka_unit_test(a_small_error_buffer_gets_a_truncated_message),
      cmocka_unit_test(http_targets_name_the_page_a_run_or_the_stats),
      cmocka_unit_test(bad_http_requests_get_a_status_and_a_reason),
      cmocka_unit_test(a_query_too_long_once_decoded_is_refused),
      cmocka_unit_test(only_this_servers_own_page_may_start_runs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
