/* Parsing iobound-server's arguments and its requests: every bad value is
 * refused with a message that names it, never with a crash. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "server.h"

/* The kinds a client may ask for: those that need no target. */
static const iob_kind *const kinds[] = {&iob_kind_wait, &iob_kind_cpu};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *kind_names(char *out, size_t size, const char *sep,
                              const char *last) {
  const char *names[NKINDS];
  for (size_t k = 0; k < NKINDS; k++)
    names[k] = kinds[k]->name;
  return cli_join(out, size, names, NKINDS, sep, last);
}

/* "usage: run STYLE COUNT DURATION_MS [limit=N] ...", for error lines. */
static const char *run_usage(void) {
  static char text[160];
  char names[64];
  snprintf(text, sizeof(text),
           "usage: run STYLE COUNT DURATION_MS [limit=N] [timeout=MS] "
           "[work=%s] [stream=1]",
           kind_names(names, sizeof(names), "|", "|"));
  return text;
}

const char *server_usage(void) {
  static char text[2048];
  char options[1024], run[256];
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
      "                     run a batch; answers one line of JSON\n"
      "  ping               answers 'pong' at once, even while batches run\n"
      "  stats              answers the server's counters as JSON\n"
      "  quit               closes the connection (after a running batch's\n"
      "                     answer)\n"
      "A client that disconnects cancels its running batch. SIGINT or SIGTERM\n"
      "stops the server.\n"
      "\n"
      "Exit status: 0 once stopped by a signal, 1 if it cannot listen, 64 for\n"
      "bad arguments.\n",
      cli_help(options, sizeof(options), cli_listen_options, NULL),
      cli_fold(run, sizeof(run), run_usage() + strlen("usage: "), 76, 6));
  return text;
}

/* ---- requests ---------------------------------------------------------- */

#define STR_(x) #x
#define STR(x) STR_(x)

static int apply_work(request *r, const char *value, char *error, size_t size) {
  const iob_kind *kind = iob_kind_find(value);
  for (size_t k = 0; k < NKINDS; k++)
    if (kind == kinds[k]) {
      r->config.kind = kind;
      return 0;
    }
  char names[64];
  snprintf(error, size, "work must be %s, not '%s'",
           kind_names(names, sizeof(names), ", ", " or "), value);
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
    if (!cli_parse_uint(value, 0, numbers[k].max, &n)) {
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
  snprintf(error, size, "unknown option '%s' (%s)", word, run_usage());
  return -1;
}

/* What the server refuses though iobound would run it. */
static int check_run(const request *r, char *error, size_t size) {
  const iob_config *c = &r->config;
  unsigned flags = iob_style_flags(c->style);
  uint32_t at_once = c->max_in_flight != 0 && c->max_in_flight < c->count
                         ? c->max_in_flight
                         : c->count;
  if (cli_kind_blocks(c->kind) && !(flags & IOB_STYLE_ON_THREADS)) {
    /* Computing on the loop stops it: every other client would wait. */
    char styles[64];
    snprintf(error, size,
             "work=%s would block the server's loop in the %s style; "
             "use %s",
             c->kind->name, iob_style_name(c->style),
             cli_style_names(styles, sizeof(styles), IOB_STYLE_ON_THREADS, ", ",
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
    char styles[64];
    snprintf(error, size, "unknown style '%s' (%s)", style,
             cli_style_names(styles, sizeof(styles), 0, ", ", " or "));
    return -1;
  }
  if (!cli_parse_uint(count, 1, SERVER_COUNT_MAX, &n)) {
    snprintf(error, size, "count must be 1..%d, not '%s'", SERVER_COUNT_MAX,
             count);
    return -1;
  }
  r->config.count = (uint32_t)n;
  if (!cli_parse_uint(duration, 0, SERVER_DURATION_MAX_MS, &n)) {
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
