/* Parsing iobound-server's arguments and its requests: every bad value is
 * refused with a message that names it, never with a crash. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "server.h"

const char server_usage[] =
    "Usage: iobound-server [OPTION]...\n"
    "Serve iobound batches over TCP, one request per line, on one event\n"
    "loop: several clients, several batches at once.\n"
    "\n"
    "  --host ADDRESS     IPv4 or IPv6 address to listen on (default\n"
    "                     127.0.0.1)\n"
    "  --port N           TCP port, 0..65535; 0 (the default) lets the\n"
    "                     system choose one\n"
    "  -h, --help         show this help and exit\n"
    "  --version          show the version and exit\n"
    "\n"
    "Once listening it prints 'listening on ADDRESS:PORT'. Requests:\n"
    "  run STYLE COUNT DURATION_MS [limit=N] [timeout=MS] [work=wait|cpu]\n"
    "      [stream=1]     run a batch; answers one line of JSON\n"
    "  ping               answers 'pong' at once, even while batches run\n"
    "  stats              answers the server's counters as JSON\n"
    "  quit               closes the connection (after a running batch's\n"
    "                     answer)\n"
    "A client that disconnects cancels its running batch. SIGINT or SIGTERM\n"
    "stops the server.\n"
    "\n"
    "Exit status: 0 once stopped by a signal, 1 if it cannot listen, 64 for\n"
    "bad arguments.\n";

/* A whole decimal number in min..max: digits only (no sign, no spaces, no
 * hex). Gives up as soon as it passes max, so it cannot overflow. */
static bool parse_uint(const char *text, uint64_t min, uint64_t max,
                       uint64_t *out) {
  uint64_t v = 0;
  if (*text == '\0')
    return false;
  for (const char *p = text; *p != '\0'; p++) {
    if (*p < '0' || *p > '9')
      return false;
    v = v * 10 + (uint64_t)(*p - '0');
    if (v > max)
      return false;
  }
  if (v < min)
    return false;
  *out = v;
  return true;
}

/* ---- the command line -------------------------------------------------- */

/* Fill opts->addr from host and port: an IPv4 address, else an IPv6 one. */
static bool resolve(server_opts *o) {
  struct sockaddr_in *v4 = (struct sockaddr_in *)&o->addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&o->addr;
  memset(&o->addr, 0, sizeof(o->addr));
  return uv_ip4_addr(o->host, (int)o->port, v4) == 0 ||
         uv_ip6_addr(o->host, (int)o->port, v6) == 0;
}

/* "--name value" or "--name=value": the value, or NULL if there is none.
 * Advances *i past a separate value. */
static const char *option_value(int argc, char **argv, int *i,
                                const char *name) {
  size_t len = strlen(name);
  const char *arg = argv[*i];
  if (strncmp(arg, name, len) != 0)
    return NULL;
  if (arg[len] == '=')
    return arg + len + 1;
  if (arg[len] == '\0' && *i + 1 < argc)
    return argv[++*i];
  return NULL;
}

static bool is_option(const char *arg, const char *name) {
  size_t len = strlen(name);
  return strncmp(arg, name, len) == 0 && (arg[len] == '\0' || arg[len] == '=');
}

int server_parse_args(int argc, char **argv, server_opts *o, char *error,
                      size_t error_size) {
  *o = (server_opts){.action = SERVER_SERVE, .host = "127.0.0.1"};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *value;
    uint64_t n;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      o->action = SERVER_HELP;
    } else if (strcmp(arg, "--version") == 0) {
      o->action = SERVER_VERSION;
    } else if (is_option(arg, "--host")) {
      if ((value = option_value(argc, argv, &i, "--host")) == NULL) {
        snprintf(error, error_size, "option '--host' needs a value");
        return SERVER_EX_USAGE;
      }
      o->host = value;
    } else if (is_option(arg, "--port")) {
      if ((value = option_value(argc, argv, &i, "--port")) == NULL) {
        snprintf(error, error_size, "option '--port' needs a value");
        return SERVER_EX_USAGE;
      }
      if (!parse_uint(value, 0, 65535, &n)) {
        snprintf(error, error_size,
                 "--port takes a number from 0 to 65535, not '%s'", value);
        return SERVER_EX_USAGE;
      }
      o->port = (unsigned int)n;
    } else {
      snprintf(error, error_size, "unknown option '%s'", arg);
      return SERVER_EX_USAGE;
    }
  }
  if (!resolve(o)) {
    snprintf(error, error_size,
             "--host takes an IPv4 or IPv6 address, not '%s'", o->host);
    return SERVER_EX_USAGE;
  }
  return 0;
}

/* ---- requests ---------------------------------------------------------- */

#define RUN_USAGE                                                              \
  "usage: run STYLE COUNT DURATION_MS [limit=N] [timeout=MS] "                 \
  "[work=wait|cpu] [stream=1]"

#define STR_(x) #x
#define STR(x) STR_(x)

static int apply_work(request *r, const char *value, char *error, size_t size) {
  iob_work w;
  /* "user" needs functions of ours: not something a client can send. */
  if (iob_work_parse(value, &w) != 0 || w == IOB_WORK_USER) {
    snprintf(error, size, "work must be wait or cpu, not '%s'", value);
    return -1;
  }
  r->config.work = w;
  return 0;
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
  };
  const char *eq = strchr(word, '=');
  const char *value = eq ? eq + 1 : "";
  size_t len = eq ? (size_t)(eq - word) : strlen(word);
  if (len == 4 && strncmp(word, "work", len) == 0)
    return apply_work(r, value, error, size);
  for (size_t k = 0; k < sizeof(numbers) / sizeof(numbers[0]); k++) {
    uint64_t n;
    if (strlen(numbers[k].name) != len ||
        strncmp(word, numbers[k].name, len) != 0)
      continue;
    if (!parse_uint(value, 0, numbers[k].max, &n)) {
      snprintf(error, size, "%s must be %s, not '%s'", numbers[k].name,
               numbers[k].range, value);
      return -1;
    }
    if (k == 0)
      r->config.max_in_flight = (uint32_t)n;
    else if (k == 1)
      r->config.timeout_ms = n;
    else
      r->stream = n == 1;
    return 0;
  }
  snprintf(error, size, "unknown option '%s' (%s)", word, RUN_USAGE);
  return -1;
}

/* What the server refuses though iobound would run it. */
static int check_run(const request *r, char *error, size_t size) {
  const iob_config *c = &r->config;
  bool on_loop = c->style == IOB_STYLE_LOOP || c->style == IOB_STYLE_SEQUENTIAL;
  uint32_t at_once = c->max_in_flight != 0 && c->max_in_flight < c->count
                         ? c->max_in_flight
                         : c->count;
  if (c->work == IOB_WORK_CPU && on_loop) {
    /* Computing on the loop stops it: every other client would wait. */
    snprintf(error, size,
             "work=cpu would block the server's loop in the %s style; "
             "use pool or threads",
             iob_style_name(c->style));
    return -1;
  }
  if (c->style == IOB_STYLE_THREADS && at_once > SERVER_THREADS_MAX) {
    snprintf(error, size,
             "the threads style runs at most %d operations at once here; "
             "add limit=%d (or less)",
             SERVER_THREADS_MAX, SERVER_THREADS_MAX);
    return -1;
  }
  if (r->stream && c->count > SERVER_STREAM_MAX) {
    snprintf(error, size, "stream=1 takes at most %d operations",
             SERVER_STREAM_MAX);
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
  if (duration == NULL) {
    snprintf(error, size, RUN_USAGE);
    return -1;
  }
  if (iob_style_parse(style, &r->config.style) != 0) {
    snprintf(error, size,
             "unknown style '%s' (sequential, loop, pool or "
             "threads)",
             style);
    return -1;
  }
  if (!parse_uint(count, 1, SERVER_COUNT_MAX, &n)) {
    snprintf(error, size, "count must be 1..%d, not '%s'", SERVER_COUNT_MAX,
             count);
    return -1;
  }
  r->config.count = (uint32_t)n;
  if (!parse_uint(duration, 0, SERVER_DURATION_MAX_MS, &n)) {
    snprintf(error, size, "duration must be 0..%d ms, not '%s'",
             SERVER_DURATION_MAX_MS, duration);
    return -1;
  }
  r->config.duration_ms = n;
  for (const char *w; (w = strtok_r(NULL, " \t", save)) != NULL;)
    if (apply_option(r, w, error, size) != 0)
      return -1;
  return check_run(r, error, size);
}

int server_parse_request(const char *line, request *r, char *error,
                         size_t error_size) {
  char buf[SERVER_LINE_MAX + 1];
  size_t len = strlen(line);
  *r = (request){.kind = REQUEST_NONE};
  if (len > 0 && line[len - 1] == '\r') /* telnet and nc -C send CRLF */
    len--;
  if (len > SERVER_LINE_MAX) {
    snprintf(error, error_size, "line too long (at most %d bytes)",
             SERVER_LINE_MAX);
    return -1;
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
    snprintf(error, error_size,
             "unknown command '%s' (run, ping, stats or quit)", cmd);
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
