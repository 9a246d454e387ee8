/* iobound-crawl's command line (crawl-args.c), apart from the crawler
 * so that the tests can build it too. */
#ifndef IOB_CRAWL_H
#define IOB_CRAWL_H

#include "cli.h"

typedef struct crawl_args {
  cli_action action;
  const char *start;   /* the first page's URL, http:// or https:// */
  uint32_t max, limit; /* pages at most; requests in flight at most */
  double rate;         /* requests a second at most; 0: no rate */
  uint32_t retries;    /* retries of a page at most */
  uint32_t hedge_ms;   /* a second attempt after this; 0: none */
} crawl_args;

/* Read the command line. @return 0, or CLI_EX_USAGE with error filled. */
int crawl_parse(int argc, char **argv, crawl_args *a, char *error, size_t size);

/* The options, as --help shows them. @return out. */
const char *crawl_help(char *out, size_t size);

#endif /* IOB_CRAWL_H */
