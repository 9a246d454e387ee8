/* iobound-fanout's command line (fanout-args.c), apart from the service
 * so that the tests can build it too. */
#ifndef IOB_FANOUT_H
#define IOB_FANOUT_H

#include <sys/socket.h>

#include "cli.h"

typedef struct fanout_args {
  cli_action action;
  const char *listen;           /* as given: "127.0.0.1:0" by default */
  struct sockaddr_storage addr; /* where to listen */
  const char *url;              /* each GET's URL, "{id}" in it */
  const char *pg, *sql;         /* the database, the query ($1: the ID) */
  const iob_style *style;       /* a style of one loop */
  uint32_t fanout, limit, pool;
  uint64_t deadline_ms;
} fanout_args;

/* Read the command line. @return 0, or CLI_EX_USAGE with error filled. */
int fanout_parse(int argc, char **argv, fanout_args *a, char *error,
                 size_t size);

/* The options, as --help shows them. @return out. */
const char *fanout_help(char *out, size_t size);

#endif /* IOB_FANOUT_H */
