/* The example programs' shared command-line code (cli.h). */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"

int cli_fail(char *error, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error, size, fmt, ap);
  va_end(ap);
  return CLI_EX_USAGE;
}

/* ---- the command line --------------------------------------------------- */

/* Say what was wrong with `word`, the argument getopt_long() refused with
 * `c` (':' a value is missing, '?' anything else). */
static int refuse(const cli_options *o, int c, const char *word) {
  if (strncmp(word, "--", 2) != 0) /* a short option: getopt names it */
    return cli_fail(o->error, o->size,
                    c == ':' ? "option '-%c' needs a value"
                             : "unknown option '-%c'",
                    optopt);
  int len = (int)strcspn(word, "=");
  if (c == ':')
    return cli_fail(o->error, o->size, "option '%.*s' needs a value", len,
                    word);
  if (optopt != 0) /* a known option, given a value it does not take */
    return cli_fail(o->error, o->size, "option '%.*s' takes no value", len,
                    word);
  int matches = 0; /* options the word is the start of */
  for (const cli_option *t = o->table; t->name != NULL; t++)
    matches += strncmp(t->name, word + 2, (size_t)len - 2) == 0;
  return cli_fail(o->error, o->size,
                  matches > 1 ? "option '%.*s' is ambiguous"
                              : "unknown option '%.*s'",
                  len, word);
}

int cli_next_option(cli_options *o) {
  /* getopt_long's view of the table. '+': stop at the first word that is
   * not an option (no reordering); ':': tell a missing value from an
   * unknown option. */
  struct option longs[CLI_OPTIONS_MAX + 1] = {{0}};
  char shorts[2 * CLI_OPTIONS_MAX + 3] = "+:";
  size_t n = 0, len = 2;
  for (const cli_option *t = o->table; t->name != NULL && n < CLI_OPTIONS_MAX;
       t++, n++) {
    longs[n] = (struct option){
        t->name, t->arg ? required_argument : no_argument, NULL, t->val};
    if (t->val < 256) {
      shorts[len++] = (char)t->val;
      if (t->arg != NULL)
        shorts[len++] = ':';
    }
  }
  shorts[len] = '\0';
  if (!o->started) {
    o->started = true;
    optind = 0; /* glibc: start again, from argv[1] */
    opterr = 0; /* the caller prints the messages */
  }
  int before = optind > 0 ? optind : 1;
  int c = getopt_long(o->argc, o->argv, shorts, longs, NULL);
  o->value = optarg;
  if (c == ':' || c == '?')
    refuse(o, c, optind > before ? o->argv[optind - 1] : o->argv[before]);
  else if (c == -1 && optind < o->argc)
    cli_fail(o->error, o->size, "unknown option '%s'", o->argv[optind]);
  else
    return c == -1 ? CLI_END : c;
  o->started = false;
  return CLI_BAD;
}

/* Append to out[*len..size) as snprintf does, never past the end. */
CLI_PRINTF(4, 5)
static void append(char *out, size_t size, size_t *len, const char *fmt, ...) {
  if (*len >= size)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out + *len, size - *len, fmt, ap);
  va_end(ap);
  if (n > 0)
    *len = *len + (size_t)n < size ? *len + (size_t)n : size - 1;
}

const char *cli_fold(char *out, size_t size, const char *text, size_t width,
                     size_t indent) {
  size_t len = 0;
  out[0] = '\0';
  while (strlen(text) > width) {
    size_t cut = width;
    while (cut > 0 && text[cut] != ' ')
      cut--;
    if (cut == 0) /* one long word: the line holds it whole */
      cut = strcspn(text, " ");
    if (text[cut] == '\0')
      break;
    append(out, size, &len, "%.*s\n%*s", (int)cut, text, (int)indent, "");
    text += cut + 1;
  }
  append(out, size, &len, "%s", text);
  return out;
}

/* Where the help of every option starts, and where its lines end. */
#define HELP_COLUMN 21
#define HELP_WIDTH 78

const char *cli_help(char *out, size_t size, const cli_option *table,
                     const char *names) {
  size_t len = 0;
  out[0] = '\0';
  for (const cli_option *t = table; t->name != NULL; t++) {
    char letter[8] = "", label[64], help[512], folded[1024];
    if (t->val < 256)
      snprintf(letter, sizeof(letter), "-%c, ", t->val);
    snprintf(label, sizeof(label), "%s--%s%s%s", letter, t->name,
             t->arg ? " " : "", t->arg ? t->arg : "");
    const char *at = strstr(t->help, "%s");
    if (at != NULL)
      snprintf(help, sizeof(help), "%.*s%s%s", (int)(at - t->help), t->help,
               names ? names : "", at + 2);
    else
      snprintf(help, sizeof(help), "%s", t->help);
    cli_fold(folded, sizeof(folded), help, HELP_WIDTH - HELP_COLUMN,
             HELP_COLUMN);
    if (strlen(label) + 3 > HELP_COLUMN) /* the help on a line of its own */
      append(out, size, &len, "  %s\n%*s%s\n", label, HELP_COLUMN, "", folded);
    else
      append(out, size, &len, "  %-*s%s\n", HELP_COLUMN - 2, label, folded);
  }
  return out;
}

/* One byte as text: itself, "\\" or "\xNN". @return its length. */
static size_t escape_byte(unsigned char ch, char out[5]) {
  if (ch == '\\')
    return (size_t)snprintf(out, 5, "\\\\");
  if (ch < 0x20 || ch > 0x7e)
    return (size_t)snprintf(out, 5, "\\x%02x", ch);
  out[0] = (char)ch;
  out[1] = '\0';
  return 1;
}

const char *cli_escape(const char *text, size_t len, char *out, size_t size) {
  char one[5];
  size_t full = 0, n = 0;
  if (size == 0)
    return out;
  for (size_t k = 0; k < len; k++)
    full += escape_byte((unsigned char)text[k], one);
  /* What fits whole, or what fits before "..." */
  size_t room = full < size ? full : size > 4 ? size - 4 : 0;
  for (size_t k = 0; k < len; k++) {
    size_t w = escape_byte((unsigned char)text[k], one);
    if (n + w > room)
      break;
    memcpy(out + n, one, w);
    n += w;
  }
  out[n] = '\0';
  if (full >= size)
    snprintf(out + n, size - n, "...");
  return out;
}

/* "PROGRAM: MESSAGE" on stderr. The message may quote an argument: no
 * byte of it reaches the terminal raw (an escape sequence would be
 * obeyed, not shown). */
static void print_escaped(const char *program, const char *message) {
  char shown[1024];
  cli_escape(message, strlen(message), shown, sizeof(shown));
  fprintf(stderr, "%s: %s\n", program, shown);
}

void cli_error(const char *program, const char *fmt, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof(message), fmt, ap);
  va_end(ap);
  print_escaped(program, message);
}

int cli_usage_error(const char *program, const char *fmt, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof(message), fmt, ap);
  va_end(ap);
  return cli_settle(program, CLI_EX_USAGE, CLI_RUN, message, NULL);
}

int cli_settle(const char *program, int status, cli_action action,
               const char *error, const char *usage) {
  if (status != 0) {
    print_escaped(program, error);
    fprintf(stderr, "Try '%s --help'.\n", program);
    return status;
  }
  if (action == CLI_HELP) {
    fputs(usage, stdout);
    return 0;
  }
  if (action == CLI_VERSION) {
    printf("%s %s\n", program, iob_version());
    return 0;
  }
  return -1;
}

bool cli_parse_uint(const char *text, uint64_t min, uint64_t max,
                    uint64_t *out) {
  uint64_t v = 0;
  if (text == NULL || *text == '\0')
    return false;
  for (const char *p = text; *p != '\0'; p++) {
    if (*p < '0' || *p > '9')
      return false;
    uint64_t digit = (uint64_t)(*p - '0');
    if (digit > max || v > (max - digit) / 10) /* past max: stop */
      return false;
    v = v * 10 + digit;
  }
  if (v < min)
    return false;
  *out = v;
  return true;
}

int cli_address(const char *host, unsigned port,
                struct sockaddr_storage *addr) {
  /* iob_tcp_address_parse() wants an IPv6 address in brackets. */
  bool bare_v6 = host != NULL && host[0] != '[' && strchr(host, ':') != NULL;
  char text[96];
  int n = snprintf(text, sizeof(text), "%s%s%s:%u", bare_v6 ? "[" : "",
                   host ? host : "", bare_v6 ? "]" : "", port);
  if (n < 0 || (size_t)n >= sizeof(text))
    return IOB_EINVAL;
  return iob_tcp_address_parse(text, addr);
}

/* ---- programs that listen ---------------------------------------------- */

enum { LISTEN_HOST = 256, LISTEN_PORT, LISTEN_VERSION };

const cli_option cli_listen_options[] = {
    {LISTEN_HOST, "host", "ADDRESS",
     "the IPv4 or IPv6 address to listen on, or localhost (default "
     "127.0.0.1)"},
    {LISTEN_PORT, "port", "N",
     "the TCP port, 0..65535; 0 (the default) lets the system choose one"},
    {'h', "help", NULL, "show this help and exit"},
    {LISTEN_VERSION, "version", NULL, "show the version and exit"},
    {0, NULL, NULL, NULL},
};

const cli_option *cli_listen_table(const cli_option *extra,
                                   cli_option table[CLI_OPTIONS_MAX + 1]) {
  size_t n = 0;
  for (const cli_option *t = cli_listen_options; t->name != NULL; t++) {
    if (t->val == 'h')
      for (const cli_option *e = extra; e && e->name && n < CLI_OPTIONS_MAX;
           e++)
        table[n++] = *e;
    if (n < CLI_OPTIONS_MAX)
      table[n++] = *t;
  }
  table[n] = (cli_option){0, NULL, NULL, NULL};
  return table;
}

int cli_parse_listen_with(int argc, char **argv, cli_listen *l,
                          const cli_option *extra, cli_extra_fn fn, void *arg,
                          char *error, size_t size) {
  *l = (cli_listen){.action = CLI_RUN, .host = "127.0.0.1"};
  cli_option table[CLI_OPTIONS_MAX + 1];
  cli_options args = {.argc = argc,
                      .argv = argv,
                      .table = cli_listen_table(extra, table),
                      .error = error,
                      .size = size};
  for (int opt; (opt = cli_next_option(&args)) != CLI_END;) {
    uint64_t port;
    int rc = 0;
    if (opt == CLI_BAD)
      return CLI_EX_USAGE;
    if (opt == 'h')
      l->action = CLI_HELP;
    else if (opt == LISTEN_VERSION)
      l->action = CLI_VERSION;
    else if (opt == LISTEN_HOST)
      l->host = args.value;
    else if (opt != LISTEN_PORT)
      rc = fn(opt, args.value, arg, error, size);
    else if (cli_parse_uint(args.value, 0, 65535, &port))
      l->port = (unsigned int)port;
    else
      rc = cli_fail(error, size,
                    "--port takes a number from 0 to 65535, not '%s'",
                    args.value);
    if (rc != 0)
      return rc;
  }
  if (cli_address(l->host, l->port, &l->addr) != 0)
    return cli_fail(
        error, size,
        "--host takes an IPv4 or IPv6 address or localhost, not '%s'", l->host);
  return 0;
}

int cli_parse_listen(int argc, char **argv, cli_listen *l, char *error,
                     size_t size) {
  return cli_parse_listen_with(argc, argv, l, NULL, NULL, NULL, error, size);
}

/* ---- names -------------------------------------------------------------- */

const char *cli_join(char *out, size_t size, const char *const *names, size_t n,
                     const char *sep, const char *last) {
  size_t len = 0;
  out[0] = '\0';
  for (size_t k = 0; k < n && len < size; k++) {
    const char *before = k == 0 ? "" : k + 1 == n ? last : sep;
    int w = snprintf(out + len, size - len, "%s%s", before, names[k]);
    if (w < 0)
      break;
    len += (size_t)w;
  }
  return out;
}

const char *cli_style_names(char *out, size_t size, unsigned flags,
                            const char *sep, const char *last) {
  const char *names[32];
  size_t n = 0;
  const iob_style *s;
  for (size_t k = 0; (s = iob_style_at(k)) != NULL && n < 32; k++)
    if (flags == 0 || (iob_style_flags(s) & flags) != 0)
      names[n++] = iob_style_name(s);
  return cli_join(out, size, names, n, sep, last);
}

bool cli_kind_blocks(const iob_kind *kind) {
  return kind != NULL && !(kind->flags & IOB_KIND_WAITS) && kind->start == NULL;
}

/* ---- the JSON report of a batch ----------------------------------------- */

/* `name` as the inside of a JSON string: quotes, backslashes and control
 * characters escaped (a kind of the application's may be named anyhow). */
static const char *json_text(const char *name, char *out, size_t size) {
  size_t len = 0;
  for (const char *p = name ? name : ""; *p != '\0' && len + 7 < size; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch == '"' || ch == '\\')
      len += (size_t)snprintf(out + len, size - len, "\\%c", ch);
    else if (ch < 0x20)
      len += (size_t)snprintf(out + len, size - len, "\\u%04x", ch);
    else
      out[len++] = (char)ch;
  }
  out[len] = '\0';
  return out;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* ",\"<prefix>p50_ms\":..." up to max_ms, for one time's percentiles
 * (NULL: nulls), at buf; its length, or -1 if it does not fit. */
static int json_percentiles(char *buf, size_t size, const char *prefix,
                            const iob_percentiles *p) {
  static const char *const names[] = {"p50", "p90", "p99", "p999", "max"};
  uint64_t v[5] = {0};
  if (p != NULL) {
    v[0] = p->p50_ns, v[1] = p->p90_ns, v[2] = p->p99_ns;
    v[3] = p->p999_ns, v[4] = p->max_ns;
  }
  size_t len = 0;
  for (int k = 0; k < 5; k++) {
    int n = p != NULL ? snprintf(buf + len, size - len, ",\"%s%s_ms\":%.3f",
                                 prefix, names[k], (double)v[k] / 1e6)
                      : snprintf(buf + len, size - len, ",\"%s%s_ms\":null",
                                 prefix, names[k]);
    if (n < 0 || (size_t)n >= size - len)
      return -1;
    len += (size_t)n;
  }
  return (int)len;
}

int cli_json_report(char *out, size_t size, const cli_json_batch *b) {
  const iob_report *r = b->report;
  const iob_latency *l = b->latency;
  char style[64], work[64], vs[32] = "null", arrival[48] = "";
  if (b->arrival_rate > 0)
    snprintf(arrival, sizeof(arrival), ",\"arrival_rate\":%g", b->arrival_rate);
  char running[160], queued[200], total[200];
  if (isfinite(b->vs_sequential))
    snprintf(vs, sizeof(vs), "%.3f", b->vs_sequential);
  if (json_percentiles(running, sizeof(running), "", l ? &l->running : NULL) <
          0 ||
      json_percentiles(queued, sizeof(queued), "queued_",
                       l ? &l->queued : NULL) < 0 ||
      json_percentiles(total, sizeof(total), "total_", l ? &l->total : NULL) <
          0)
    return -1;
  int n = snprintf(
      out, size,
      "{\"style\":\"%s\"%s,\"work\":\"%s\",\"count\":%" PRIu32
      ",\"duration_ms\":%" PRIu64 ",\"limit\":%" PRIu32
      ",\"timeout_ms\":%" PRIu64 ",\"elapsed_ms\":%.3f,\"overlap\":%.3f"
      ",\"vs_sequential\":%s"
      ",\"peak_in_flight\":%" PRIu32 ",\"threads\":%" PRIu32
      ",\"workers_used\":%" PRIu32 ",\"cpu_ms\":%.3f,\"failed\":%" PRIu32
      ",\"rate_waits\":%" PRIu32 ",\"attempts\":%" PRIu64
      ",\"retries\":%" PRIu32 ",\"breaker_refused\":%" PRIu32
      ",\"hedges\":%" PRIu32 ",\"hedges_won\":%" PRIu32
      "%s%s%s,\"status\":\"%s\"}",
      json_text(iob_style_name(r->style), style, sizeof(style)), arrival,
      json_text(r->kind ? r->kind->name : NULL, work, sizeof(work)), r->count,
      b->config->duration_ms, b->config->max_in_flight, b->config->timeout_ms,
      ms(r->elapsed_ns), isfinite(r->speedup) ? r->speedup : 0.0, vs,
      r->peak_in_flight, r->threads, r->workers_used, ms(r->cpu_ns), r->failed,
      r->rate_waits, (uint64_t)r->count + r->retries, r->retries,
      r->breaker_refused, r->hedges, r->hedges_won, running, queued, total,
      iob_err_name(r->status));
  return n >= 0 && (size_t)n < size ? n : -1;
}

void cli_json_string(FILE *out, const char *text) {
  if (text == NULL) {
    fputs("null", out);
    return;
  }
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(out, "\\u%04x", *p);
    else
      fputc(*p, out);
  fputc('"', out);
}

const char *cli_http_reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 414:
    return "URI Too Long";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 503:
    return "Service Unavailable";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Error";
  }
}
