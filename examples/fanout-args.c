/* iobound-fanout's command line: see fanout.h. */
#include <stdio.h>
#include <string.h>

#include "fanout.h"

enum { LISTEN = 256, URL, FANOUT, PG, QUERY, LIMIT, DEADLINE, STYLE, POOL };

static const cli_option options[] = {
    {LISTEN, "listen", "HOST:PORT",
     "where to listen (127.0.0.1:0: a free port, printed)"},
    {URL, "url", "TEMPLATE", "each GET's URL, {id} the request's ID (needed)"},
    {FANOUT, "fanout", "K", "GETs per request, 1 to 64 (4)"},
    {PG, "pg", "CONNINFO", "the database, a libpq connection string (needed)"},
    {QUERY, "query", "SQL", "the query, $1 the ID (SELECT $1::int)"},
    {LIMIT, "limit", "N", "operations at once, of all clients (16)"},
    {DEADLINE, "deadline", "MS", "each request's deadline (5000)"},
    {STYLE, "style", "NAME", "how operations run: %s (loop)"},
    {POOL, "pool", "N", "PostgreSQL connections at most (4)"},
    {'h', "help", NULL, "this help"},
    {0, NULL, NULL, NULL},
};

const char *fanout_help(char *out, size_t size) {
  char names[256];
  cli_style_names(names, sizeof(names), 0, ", ", " or ");
  return cli_help(out, size, options, names);
}

/* A number of option `name` in 1..most. */
static int number(const char *name, const char *v, uint64_t most, uint64_t *n,
                  char *error, size_t size) {
  if (cli_parse_uint(v, 1, most, n))
    return 0;
  return cli_fail(error, size, "--%s %s: not a number from 1 to %llu", name, v,
                  (unsigned long long)most);
}

/* --listen HOST:PORT, the host an address (IPv6 in brackets). */
static int listen_at(fanout_args *a, char *error, size_t size) {
  const char *colon = strrchr(a->listen, ':');
  char host[64];
  uint64_t port;
  snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - a->listen) : 0,
           a->listen);
  if (colon == NULL || !cli_parse_uint(colon + 1, 0, 65535, &port) ||
      cli_address(host, (unsigned)port, &a->addr) != 0)
    return cli_fail(error, size, "--listen %s: not HOST:PORT", a->listen);
  return 0;
}

int fanout_parse(int argc, char **argv, fanout_args *a, char *error,
                 size_t size) {
  *a = (fanout_args){.listen = "127.0.0.1:0",
                     .sql = "SELECT $1::int",
                     .style = &iob_style_loop};
  uint64_t fanout = 4, limit = 16, deadline = 5000, pool = 4;
  cli_options o = {.argc = argc,
                   .argv = argv,
                   .table = options,
                   .error = error,
                   .size = size};
  int opt, err = 0;
  while (err == 0 && (opt = cli_next_option(&o)) != CLI_END) {
    const char *v = o.value;
    switch (opt) {
    case LISTEN:
      a->listen = v;
      break;
    case URL:
      a->url = v;
      break;
    case PG:
      a->pg = v;
      break;
    case QUERY:
      a->sql = v;
      break;
    case FANOUT:
      err = number("fanout", v, 64, &fanout, error, size);
      break;
    case LIMIT:
      err = number("limit", v, 100000, &limit, error, size);
      break;
    case DEADLINE:
      err = number("deadline", v, 3600000, &deadline, error, size);
      break;
    case POOL:
      err = number("pool", v, 1000, &pool, error, size);
      break;
    case STYLE:
      a->style = iob_style_find(v);
      if (a->style == NULL || (iob_style_flags(a->style) & IOB_STYLE_LOOPS))
        err = cli_fail(error, size,
                       "--style %s: not a style of one loop "
                       "(a client and a pool serve one)",
                       v);
      break;
    case 'h':
      a->action = CLI_HELP;
      break;
    default:
      return CLI_EX_USAGE; /* CLI_BAD: the message is in error */
    }
  }
  if (err != 0 || a->action == CLI_HELP)
    return err;
  if (a->url == NULL || strstr(a->url, "{id}") == NULL || a->pg == NULL)
    return cli_fail(error, size,
                    "--url TEMPLATE (with {id}) and --pg "
                    "CONNINFO are needed");
  a->fanout = (uint32_t)fanout;
  a->limit = (uint32_t)limit;
  a->pool = (uint32_t)pool;
  a->deadline_ms = deadline;
  return listen_at(a, error, size);
}
