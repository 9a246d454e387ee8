/* Parsing iobound-server's arguments and its requests: every bad value is
 * refused with a message that names it, never with a crash, and what a
 * client sent is echoed quoted and escaped, never raw. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* Whether a client may ask for `kind`: a kind of the library's that needs
 * no target (its check(), if it has one, accepts none), for a client has
 * none to give. */
static bool takes_no_target(const iob_kind *kind) {
  iob_config config;
  iob_config_init(&config);
  config.kind = kind;
  config.count = 1;
  return kind->check == NULL || kind->check(&config) == 0;
}

/* Their names, read from the library's table (iob_kind_at()). */
static const char *kind_names(char *out, size_t size, const char *sep,
                              const char *last) {
  const char *names[32];
  size_t n = 0;
  const iob_kind *kind;
  for (size_t k = 0; (kind = iob_kind_at(k)) != NULL && n < 32; k++)
    if (takes_no_target(kind))
      names[n++] = kind->name;
  return cli_join(out, size, names, n, sep, last);
}

/* "usage: run STYLE COUNT DURATION_MS [limit=N] ...", for error lines. */
static const char *run_usage(void) {
  static char text[224];
  char names[64];
  snprintf(text, sizeof(text),
           "usage: run STYLE COUNT DURATION_MS [limit=N] [timeout=MS] "
           "[work=%s] [stream=1] [rate=R] [arrivals=even|poisson]",
           kind_names(names, sizeof(names), "|", "|"));
  return text;
}

/* ---- the command line -------------------------------------------------- */

enum {
  OPT_MAX_CONNECTIONS = 512,
  OPT_IDLE_TIMEOUT,
  OPT_HALF_CLOSE_TIMEOUT,
  OPT_MAX_THREADS,
  OPT_MAX_OPERATIONS,
  OPT_WORKERS,
  OPT_HTTP,
};

#define STR_(x) #x
#define STR(x) STR_(x)

/* The server's own options, with their ranges. */
static const struct {
  cli_option option;
  uint64_t max;
} caps[] = {
    {{OPT_MAX_CONNECTIONS, "max-connections", "N",
      "clients at once, 0..1000000 (default " STR(
          SERVER_CONNECTIONS_DEFAULT) "); one more is told 'error too many "
                                      "connections' and closed"},
     1000000},
    {{OPT_IDLE_TIMEOUT, "idle-timeout", "MS",
      "close a client that has sent no request for MS ms while no batch of "
      "its runs, 0..86400000 (default " STR(
          SERVER_IDLE_DEFAULT_MS) "; 0: never)"},
     86400000},
    {{OPT_HALF_CLOSE_TIMEOUT, "half-close-timeout", "MS",
      "a client that stopped sending (EOF) gets its answers within MS ms, "
      "or its batch is cancelled and it is closed, 0..86400000 (default " STR(
          SERVER_HALF_CLOSE_DEFAULT_MS) "; 0: never)"},
     86400000},
    {{OPT_MAX_THREADS, "max-threads", "N",
      "threads the threads style runs at once, all clients together (more "
      "wait their turn), and the most the loops style's batches may have "
      "for their loops (more are refused), 0..100000 (default " STR(
          SERVER_THREADS_DEFAULT) "; 0: neither style)"},
     100000},
    {{OPT_MAX_OPERATIONS, "max-operations", "N",
      "operations in all running batches together, 0..100000000 (default " STR(
          SERVER_OPERATIONS_DEFAULT) ")"},
     100000000},
    {{OPT_WORKERS, "workers", "N",
      "threads of the server's own pool, which every workers-style batch "
      "shares, taking turns, 0..1024 (default " STR(
          SERVER_WORKERS_DEFAULT) "; 0: no workers style)"},
     IOB_WORKERS_MAX},
    {{OPT_HTTP, "http", "PORT",
      "also serve the page, a live timeline of runs, over HTTP on PORT of "
      "the same --host, 0..65535 (0: the system picks one)"},
     65535},
};
#define NCAPS (sizeof(caps) / sizeof(caps[0]))

/* cli_listen_options with the caps before --help: the server's table. */
static const cli_option *options_table(void) {
  static cli_option table[CLI_OPTIONS_MAX + 1];
  if (table[0].name != NULL)
    return table;
  size_t n = 0;
  for (const cli_option *t = cli_listen_options; t->name != NULL; t++) {
    if (strcmp(t->name, "help") == 0)
      for (size_t k = 0; k < NCAPS; k++)
        table[n++] = caps[k].option;
    table[n++] = *t;
  }
  return table;
}

static bool is_listen_option(int val) {
  for (const cli_option *t = cli_listen_options; t->name != NULL; t++)
    if (t->val == val)
      return true;
  return false;
}

static const cli_option *listen_option(int val) {
  for (const cli_option *t = cli_listen_options; t->name != NULL; t++)
    if (t->val == val)
      return t;
  return NULL;
}

#define ARGS_MAX 64

int server_parse_args(int argc, char **argv, server_options *o, char *error,
                      size_t size) {
  *o = (server_options){.max_connections = SERVER_CONNECTIONS_DEFAULT,
                        .idle_timeout_ms = SERVER_IDLE_DEFAULT_MS,
                        .half_close_timeout_ms = SERVER_HALF_CLOSE_DEFAULT_MS,
                        .max_threads = SERVER_THREADS_DEFAULT,
                        .max_operations = SERVER_OPERATIONS_DEFAULT,
                        .workers = SERVER_WORKERS_DEFAULT};
  /* The listening options are gathered, as "--name value", and read by
   * cli_parse_listen() itself: its defaults and messages are the same. */
  char *listen_argv[2 * ARGS_MAX + 1] = {argv[0]};
  int listen_argc = 1;
  if (argc > ARGS_MAX)
    return cli_fail(error, size, "too many arguments (at most %d)",
                    ARGS_MAX - 1);
  cli_options args = {.argc = argc,
                      .argv = argv,
                      .table = options_table(),
                      .error = error,
                      .size = size};
  static char names[CLI_OPTIONS_MAX][32];
  for (int opt; (opt = cli_next_option(&args)) != CLI_END;) {
    if (opt == CLI_BAD)
      return CLI_EX_USAGE;
    if (is_listen_option(opt)) {
      const cli_option *t = listen_option(opt);
      size_t k = (size_t)(t - cli_listen_options);
      snprintf(names[k], sizeof(names[k]), "--%s", t->name);
      listen_argv[listen_argc++] = names[k];
      if (t->arg != NULL)
        listen_argv[listen_argc++] = (char *)args.value;
      continue;
    }
    for (size_t k = 0; k < NCAPS; k++) {
      uint64_t n;
      if (caps[k].option.val != opt)
        continue;
      if (!cli_parse_uint(args.value, 0, caps[k].max, &n))
        return cli_fail(error, size,
                        "--%s takes a number from 0 to %" PRIu64 ", not '%s'",
                        caps[k].option.name, caps[k].max, args.value);
      if (opt == OPT_MAX_CONNECTIONS)
        o->max_connections = (uint32_t)n;
      else if (opt == OPT_IDLE_TIMEOUT)
        o->idle_timeout_ms = n;
      else if (opt == OPT_HALF_CLOSE_TIMEOUT)
        o->half_close_timeout_ms = n;
      else if (opt == OPT_MAX_THREADS)
        o->max_threads = (uint32_t)n;
      else if (opt == OPT_WORKERS)
        o->workers = (uint32_t)n;
      else if (opt == OPT_HTTP) {
        o->http = true;
        o->http_port = (unsigned int)n;
      } else
        o->max_operations = (uint32_t)n;
    }
  }
  listen_argv[listen_argc] = NULL;
  return cli_parse_listen(listen_argc, listen_argv, &o->listen, error, size);
}

const char *server_usage(void) {
  static char text[4096];
  char options[2048], run[256];
  snprintf(
      text, sizeof(text),
      "Usage: iobound-server [OPTION]...\n"
      "Serve iobound batches over TCP, one request per line, on one event\n"
      "loop: several clients, several batches at once.\n"
      "\n"
      "%s"
      "\n"
      "Once listening it prints 'listening on ADDRESS:PORT'. Requests:\n"
      "  %s\n"
      "                     run a batch; answers one line of JSON (with\n"
      "                     stream=1, a line per operation first); with\n"
      "                     rate=R its COUNT operations arrive R a second,\n"
      "                     within 60 s, evenly or at random (poisson)\n"
      "  ping               answers 'pong' at once, even while batches run\n"
      "  stats              answers the server's counters as JSON\n"
      "  quit               closes the connection (after a running batch's\n"
      "                     answer)\n"
      "A line may hold text, spaces and tabs, and end in '\\r'; other control\n"
      "bytes are refused. A client that stops sending (EOF) still gets its\n"
      "answers, then the server closes, unless they take longer than\n"
      "--half-close-timeout; a client whose connection breaks (a reset, or\n"
      "TCP keepalive finding it gone, also after its EOF) cancels its running\n"
      "batch at once. A run that would pass --max-operations is\n"
      "refused ('error server busy: ...'). Pool batches share libuv's pool,\n"
      "threads batches share --max-threads threads, and workers batches\n"
      "the --workers pool, taking turns an operation at a time; loops\n"
      "batches run while their loops' threads fit in --max-threads. SIGINT\n"
      "or SIGTERM stops the server.\n"
      "\n"
      "With --http PORT it also prints 'page on http://ADDRESS:PORT/': open\n"
      "it in a browser to pick a run, press Run and watch each operation\n"
      "drawn as it settles. GET /run?WORDS runs the words of a run request\n"
      "(+ between them) and streams its lines as Server-Sent Events;\n"
      "GET /stats answers stats.\n"
      "\n"
      "Exit status: 0 once stopped by a signal, 1 if it cannot listen, 64 for\n"
      "bad arguments.\n",
      cli_help(options, sizeof(options), options_table(), NULL),
      cli_fold(run, sizeof(run), run_usage() + strlen("usage: "), 76, 6));
  return text;
}

/* ---- requests ---------------------------------------------------------- */

/* A word of the client's, for an error line: quoted, escaped, and cut
 * short ("...") past 45 bytes. */
typedef struct quoted {
  char text[48];
} quoted;

static quoted quote(const char *word) {
  quoted q;
  char inner[sizeof(q.text) - 2];
  cli_escape(word, strlen(word), inner, sizeof(inner));
  snprintf(q.text, sizeof(q.text), "'%s'", inner);
  return q;
}

static int apply_work(request *r, const char *value, char *error, size_t size) {
  const iob_kind *kind = iob_kind_find(value);
  if (kind != NULL && takes_no_target(kind)) {
    r->config.kind = kind;
    return 0;
  }
  char names[128];
  snprintf(error, size, "work must be %s, not %s",
           kind_names(names, sizeof(names), ", ", " or "), quote(value).text);
  return -1;
}

/* One "name=value" option of a run request. */
static int apply_option(request *r, const char *word, char *error,
                        size_t size) {
  static const struct {
    const char *name;
    uint64_t max;
    const char *range;
  } numbers[] = {
      {"limit", SERVER_COUNT_MAX, "0.." STR(SERVER_COUNT_MAX) " (0: none)"},
      {"timeout", SERVER_DURATION_MAX_MS,
       "0.." STR(SERVER_DURATION_MAX_MS) " ms (0: none)"},
      {"stream", 1, "0 or 1"},
      {"rate", SERVER_RATE_MAX,
       "1.." STR(SERVER_RATE_MAX) " a second (0: all at once)"},
  };
  const char *eq = strchr(word, '=');
  const char *value = eq ? eq + 1 : "";
  size_t len = eq ? (size_t)(eq - word) : strlen(word);
  if (len == 4 && strncmp(word, "work", len) == 0)
    return apply_work(r, value, error, size);
  if (len == 8 && strncmp(word, "arrivals", len) == 0) {
    if (strcmp(value, "even") != 0 && strcmp(value, "poisson") != 0) {
      snprintf(error, size, "arrivals must be even or poisson, not %s",
               quote(value).text);
      return -1;
    }
    r->poisson = value[0] == 'p';
    return 0;
  }
  for (size_t k = 0; k < sizeof(numbers) / sizeof(numbers[0]); k++) {
    uint64_t n;
    if (strlen(numbers[k].name) != len ||
        strncmp(word, numbers[k].name, len) != 0)
      continue;
    if (!cli_parse_uint(value, 0, numbers[k].max, &n)) {
      snprintf(error, size, "%s must be %s, not %s", numbers[k].name,
               numbers[k].range, quote(value).text);
      return -1;
    }
    if (k == 0)
      r->config.max_in_flight = (uint32_t)n;
    else if (k == 1)
      r->config.timeout_ms = n;
    else if (k == 2)
      r->stream = n == 1;
    else
      r->rate = (uint32_t)n;
    return 0;
  }
  snprintf(error, size, "unknown option %s (%s)", quote(word).text,
           run_usage());
  return -1;
}

/* What the server refuses though iobound would run it. */
static int check_run(const request *r, char *error, size_t size) {
  const iob_config *c = &r->config;
  unsigned flags = iob_style_flags(c->style);
  uint32_t at_once = c->max_in_flight != 0 && c->max_in_flight < c->count
                         ? c->max_in_flight
                         : c->count;
  if (cli_kind_blocks(c->kind) &&
      !(flags & (IOB_STYLE_ON_THREADS | IOB_STYLE_LOOPS))) {
    /* Computing on the loop stops it: every other client would wait. */
    char styles[128];
    snprintf(error, size,
             "work=%s would block the server's loop in the %s style; "
             "use %s",
             c->kind->name, iob_style_name(c->style),
             cli_style_names(styles, sizeof(styles),
                             IOB_STYLE_ON_THREADS | IOB_STYLE_LOOPS, ", ",
                             " or "));
    return -1;
  }
  if ((flags & IOB_STYLE_THREAD_EACH) && at_once > SERVER_THREADS_MAX) {
    snprintf(error, size,
             "the %s style runs at most %d operations at once here; "
             "add limit=%d (or less)",
             iob_style_name(c->style), SERVER_THREADS_MAX, SERVER_THREADS_MAX);
    return -1;
  }
  if (r->stream && c->count > SERVER_STREAM_MAX) {
    snprintf(error, size, "stream=1 takes at most %d operations",
             SERVER_STREAM_MAX);
    return -1;
  }
  if (r->poisson && r->rate == 0) {
    snprintf(error, size, "arrivals=poisson goes with rate=R");
    return -1;
  }
  /* The arrivals hold the connection as long as one operation may. */
  if (r->rate != 0 &&
      (uint64_t)c->count * 1000 > (uint64_t)r->rate * SERVER_DURATION_MAX_MS) {
    snprintf(error, size,
             "rate=%" PRIu32 " spreads %" PRIu32 " operations over %.1f s, "
             "more than %d s; raise the rate or lower COUNT",
             r->rate, c->count, (double)c->count / r->rate,
             SERVER_DURATION_MAX_MS / 1000);
    return -1;
  }
  return 0;
}

/* "run STYLE COUNT DURATION_MS [name=value]...", the words after "run". */
static int parse_run(request *r, char **save, char *error, size_t size) {
  const char *style = strtok_r(NULL, " \t", save);
  const char *count = strtok_r(NULL, " \t", save);
  const char *duration = strtok_r(NULL, " \t", save);
  uint64_t n;
  iob_config_init(&r->config);
  r->config.kind = &iob_kind_wait;
  if (duration == NULL) {
    snprintf(error, size, "%s", run_usage());
    return -1;
  }
  if ((r->config.style = iob_style_find(style)) == NULL) {
    char styles[128];
    snprintf(error, size, "unknown style %s (%s)", quote(style).text,
             cli_style_names(styles, sizeof(styles), 0, ", ", " or "));
    return -1;
  }
  if (!cli_parse_uint(count, 1, SERVER_COUNT_MAX, &n)) {
    snprintf(error, size, "count must be 1..%d, not %s", SERVER_COUNT_MAX,
             quote(count).text);
    return -1;
  }
  r->config.count = (uint32_t)n;
  if (!cli_parse_uint(duration, 0, SERVER_DURATION_MAX_MS, &n)) {
    snprintf(error, size, "duration must be 0..%d ms, not %s",
             SERVER_DURATION_MAX_MS, quote(duration).text);
    return -1;
  }
  r->config.duration_ms = n;
  for (const char *w; (w = strtok_r(NULL, " \t", save)) != NULL;)
    if (apply_option(r, w, error, size) != 0)
      return -1;
  return check_run(r, error, size);
}

int server_parse_request_n(const char *line, size_t len, request *r,
                           char *error, size_t error_size) {
  char buf[SERVER_LINE_MAX + 1];
  *r = (request){.kind = REQUEST_NONE};
  if (len > 0 && line[len - 1] == '\r') /* telnet and nc -C send CRLF */
    len--;
  if (len > SERVER_LINE_MAX) {
    snprintf(error, error_size, "line too long (at most %d bytes)",
             SERVER_LINE_MAX);
    return -1;
  }
  /* A NUL would cut the line short unseen, an escape reach a terminal
   * through the error that echoes it: text, spaces and tabs only. */
  for (size_t k = 0; k < len; k++) {
    unsigned char ch = (unsigned char)line[k];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
      snprintf(error, error_size,
               "control byte \\x%02x at byte %zu: a request is text, "
               "spaces and tabs",
               ch, k + 1);
      return -1;
    }
  }
  memcpy(buf, line, len);
  buf[len] = '\0';

  char *save = NULL;
  const char *cmd = strtok_r(buf, " \t", &save);
  if (cmd == NULL)
    return 0;
  static const char *const names[] = {"run", "ping", "stats", "quit"};
  for (int k = 0; k < 4; k++)
    if (strcmp(cmd, names[k]) == 0)
      r->kind = (request_kind)(REQUEST_RUN + k);
  if (r->kind == REQUEST_NONE) {
    snprintf(error, error_size, "unknown command %s (run, ping, stats or quit)",
             quote(cmd).text);
    return -1;
  }
  if (r->kind == REQUEST_RUN)
    return parse_run(r, &save, error, error_size);
  if (strtok_r(NULL, " \t", &save) != NULL) {
    snprintf(error, error_size, "%s takes no arguments", cmd);
    return -1;
  }
  return 0;
}

int server_parse_request(const char *line, request *r, char *error,
                         size_t error_size) {
  return server_parse_request_n(line, strlen(line), r, error, error_size);
}

/* ---- the page's HTTP ----------------------------------------------------- */

static int hex_digit(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* A query's words, percent-decoded and '+' made a space, into @p out of
 * @p size bytes (with its NUL). @return its length, -1 for a bad escape,
 * -2 if it does not fit. A decoded byte is not judged here: the request's
 * parser refuses control bytes as it does on a line. */
static long decode_query(const char *in, size_t len, char *out, size_t size) {
  size_t n = 0;
  for (size_t k = 0; k < len; k++) {
    char ch = in[k];
    if (ch == '%') {
      int hi = k + 2 < len ? hex_digit(in[k + 1]) : -1;
      int lo = hi >= 0 ? hex_digit(in[k + 2]) : -1;
      if (lo < 0)
        return -1;
      ch = (char)(hi * 16 + lo);
      k += 2;
    } else if (ch == '+') {
      ch = ' ';
    }
    if (n + 1 >= size)
      return -2;
    out[n++] = ch;
  }
  out[n] = '\0';
  return (long)n;
}

/* The words a run on the page adds after the client's: it always streams
 * (a later word wins, so the client's stream=0 cannot stop it). */
#define HTTP_RUN_TAIL " stream=1"

static bool is_method(const char *line, size_t len, const char *name) {
  return len == strlen(name) && memcmp(line, name, len) == 0;
}

int server_parse_http(const char *line, size_t len, http_route *route,
                      bool *head_only, request *req, char *error,
                      size_t error_size) {
  char words[SERVER_LINE_MAX + 1];
  if (len > 0 && line[len - 1] == '\r')
    len--;
  /* METHOD SP TARGET SP VERSION: a target holds no space. */
  const char *sp = memchr(line, ' ', len);
  const char *sp2 =
      sp != NULL ? memchr(sp + 1, ' ', len - (size_t)(sp + 1 - line)) : NULL;
  if (sp == NULL || sp2 == NULL || sp == line || sp2 == sp + 1 ||
      memchr(sp2 + 1, ' ', len - (size_t)(sp2 + 1 - line)) != NULL) {
    snprintf(error, error_size,
             "the first line is not 'METHOD TARGET HTTP/1.1'");
    return 400;
  }
  size_t version_len = len - (size_t)(sp2 + 1 - line);
  if (version_len != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
      (sp2[8] != '0' && sp2[8] != '1')) {
    snprintf(error, error_size, "only HTTP/1.0 and HTTP/1.1 are spoken");
    return 505;
  }
  size_t method_len = (size_t)(sp - line);
  *head_only = is_method(line, method_len, "HEAD");
  if (!*head_only && !is_method(line, method_len, "GET")) {
    snprintf(error, error_size, "only GET and HEAD are answered");
    return 405;
  }
  const char *target = sp + 1;
  size_t target_len = (size_t)(sp2 - target);
  const char *query = memchr(target, '?', target_len);
  size_t path_len = query != NULL ? (size_t)(query - target) : target_len;
  if (path_len == 1 && target[0] == '/' && query == NULL) {
    *route = HTTP_PAGE;
    return 200;
  }
  if (path_len == 6 && memcmp(target, "/stats", 6) == 0 && query == NULL) {
    *route = HTTP_STATS;
    return 200;
  }
  if (path_len != 4 || memcmp(target, "/run", 4) != 0) {
    snprintf(error, error_size, "no such page: GET / for the page");
    return 404;
  }
  if (*head_only) { /* it would run: its answer is the run */
    snprintf(error, error_size, "a run is asked for with GET");
    return 405;
  }
  /* "run " + the words + the tail must fit a request line. */
  size_t room = sizeof(words) - strlen("run ") - strlen(HTTP_RUN_TAIL);
  long n = query == NULL ? 0
                         : decode_query(query + 1, target_len - path_len - 1,
                                        words + 4, room);
  if (n == -1) {
    snprintf(error, error_size, "a bad %%-escape in the query");
    return 400;
  }
  if (n == -2) {
    snprintf(error, error_size,
             "the query is too long (at most %zu bytes "
             "once decoded)",
             room - 1);
    return 414;
  }
  memcpy(words, "run ", 4);
  memcpy(words + 4 + n, HTTP_RUN_TAIL, sizeof(HTTP_RUN_TAIL));
  /* A NUL among the words would end them unseen: the parser is given the
   * length, and refuses it as a control byte. */
  if (server_parse_request_n(words, (size_t)(4 + n) + strlen(HTTP_RUN_TAIL),
                             req, error, error_size) != 0)
    return 400;
  *route = HTTP_RUN;
  return 200;
}

/* Whether the header line is `name`: its value, trimmed, or NULL. */
static const char *header_value(const char *line, size_t len, const char *name,
                                size_t *value_len) {
  size_t n = strlen(name);
  if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
    return NULL;
  const char *v = line + n + 1, *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
    end--;
  *value_len = (size_t)(end - v);
  return v;
}

/* A Host that names this machine by address, or localhost: a name of
 * some other site's could point here (DNS rebinding) and let its page
 * start runs and read their answers. */
static bool host_is_local(const char *v, size_t len) {
  char host[64];
  const char *end = v + len;
  if (len > 0 && v[0] == '[') { /* [IPv6]:port */
    const char *close = memchr(v, ']', len);
    if (close == NULL || (size_t)(close - v - 1) >= sizeof(host))
      return false;
    snprintf(host, sizeof(host), "%.*s", (int)(close - v - 1), v + 1);
    struct in6_addr a6;
    return (close + 1 == end || close[1] == ':') &&
           uv_inet_pton(AF_INET6, host, &a6) == 0;
  }
  const char *colon = memchr(v, ':', len);
  size_t n = colon != NULL ? (size_t)(colon - v) : len;
  if (n == 0 || n >= sizeof(host))
    return false;
  snprintf(host, sizeof(host), "%.*s", (int)n, v);
  struct in_addr a4;
  return strcasecmp(host, "localhost") == 0 ||
         uv_inet_pton(AF_INET, host, &a4) == 0;
}

int server_check_http_header(const char *line, size_t len, http_route route,
                             char *error, size_t error_size) {
  size_t n;
  const char *v = header_value(line, len, "Host", &n);
  if (v != NULL && !host_is_local(v, n)) {
    char inner[48];
    cli_escape(v, n < 40 ? n : 40, inner, sizeof(inner));
    snprintf(error, error_size,
             "Host '%s' is not an address of this server's nor localhost: a "
             "name could lead another site's page here",
             inner);
    return 403;
  }
  /* A browser says where a request comes from: a run starts from the
   * page itself (or from a typed address), not from another site's. */
  v = header_value(line, len, "Sec-Fetch-Site", &n);
  if (v != NULL && route == HTTP_RUN &&
      !(n == 11 && strncasecmp(v, "same-origin", n) == 0) &&
      !(n == 4 && strncasecmp(v, "none", n) == 0)) {
    snprintf(error, error_size,
             "a run starts from this server's page, not from another site's");
    return 403;
  }
  return 200;
}
