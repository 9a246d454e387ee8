/* iobound-crawl: fetch a site's pages from one, following its links.
 * The crawl is one open batch (a task group): the first page is
 * submitted, and as each page settles its links on the same host and
 * port are submitted in turn, each URL once, until --max pages. One HTTP
 * client keeps the connections, the batch's limit bounds the requests
 * in flight, and a rate, retries and hedges wrap every request. It
 * prints "STATUS BYTES ATTEMPTS URL" for each page as it comes, then
 * "pages N, failed N, retries N, ms N"; exit status 0 if every page was
 * fetched in the end, 1 if one was not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crawl.h"
#include "iobound/http.h"

typedef struct crawler {
  crawl_args a;
  iob_http_client *http;
  char origin[256]; /* "scheme://host:port" of the first page */
  size_t origin_len;
  char **seen; /* every URL submitted: a set, open addressing */
  size_t seen_cap, seen_n;
  uint32_t submitted, settled, failed, retries;
  double ms;
} crawler;

/* ---- the URLs seen ------------------------------------------------------- */

static size_t hash(const char *s) {
  size_t h = 5381;
  while (*s)
    h = h * 33 + (unsigned char)*s++;
  return h;
}

/* Where s goes in a table of cap (a power of two): its place, or the
 * place of the same string already there. */
static size_t place(char **table, size_t cap, const char *s) {
  size_t j = hash(s) & (cap - 1);
  while (table[j] != NULL && strcmp(table[j], s) != 0)
    j = (j + 1) & (cap - 1);
  return j;
}

/* Put url in the set, made bigger when half full: its copy, or NULL if it
 * was there already (or there was no memory for it). */
static char *see(crawler *c, const char *url) {
  if (2 * (c->seen_n + 1) > c->seen_cap) {
    size_t cap = c->seen_cap ? 2 * c->seen_cap : 64;
    char **grown = calloc(cap, sizeof(*grown));
    if (grown == NULL)
      return NULL;
    for (size_t k = 0; k < c->seen_cap; k++)
      if (c->seen[k] != NULL)
        grown[place(grown, cap, c->seen[k])] = c->seen[k];
    free(c->seen);
    c->seen = grown;
    c->seen_cap = cap;
  }
  size_t j = place(c->seen, c->seen_cap, url);
  if (c->seen[j] != NULL || (c->seen[j] = strdup(url)) == NULL)
    return NULL;
  c->seen_n++;
  return c->seen[j];
}

/* ---- links --------------------------------------------------------------- */

/* Remove "." and ".." segments from a URL's path, in place (RFC 3986,
 * 5.2.4): "/a/./b/../c" becomes "/a/c", and "/a/.." becomes "/". */
static void remove_dots(char *path) {
  char *out = path;
  const char *in = path;
  while (*in != '\0') {                    /* at a '/' */
    size_t len = 1 + strcspn(in + 1, "/"); /* "/segment" */
    bool last = in[len] == '\0',
         dots = len == 3 && in[1] == '.' && in[2] == '.';
    if (dots) /* the segment before it goes */
      while (out > path && *--out != '/')
        ;
    if (dots || (len == 2 && in[1] == '.')) {
      if (last)
        *out++ = '/'; /* it ended in a directory */
    } else {
      memmove(out, in, len);
      out += len;
    }
    in += len;
  }
  *out = '\0';
}

/* The absolute URL of `link` (len bytes) found on page `base`, in out: its
 * fragment gone, its path's dots resolved. False for a link to another
 * scheme (mailto:), to the page itself (#top), or too long. */
static bool resolve(const char *base, const char *link, size_t len, char *out,
                    size_t size) {
  size_t keep = strcspn(link, "#");
  len = keep < len ? keep : len;
  const char *colon = memchr(link, ':', len);
  size_t slash = strcspn(base + strcspn(base, ":") + 3, "/") +
                 strcspn(base, ":") + 3; /* where base's path begins */
  int n;
  if (len == 0)
    return false;
  if (colon != NULL && memchr(link, '/', (size_t)(colon - link)) == NULL)
    n = strncmp(link, "http:", 5) == 0 || strncmp(link, "https:", 6) == 0
            ? snprintf(out, size, "%.*s", (int)len, link)
            : -1;                                       /* another scheme */
  else if (len > 1 && link[0] == '/' && link[1] == '/') /* "//host/path" */
    n = snprintf(out, size, "%.*s%.*s", (int)(strcspn(base, ":") + 1), base,
                 (int)len, link);
  else if (link[0] == '/') /* the same host */
    n = snprintf(out, size, "%.*s%.*s", (int)slash, base, (int)len, link);
  else if (link[0] == '?') /* the same path */
    n = snprintf(out, size, "%.*s%.*s", (int)strcspn(base, "?"), base, (int)len,
                 link);
  else { /* beside the page: after its path's last '/' */
    size_t dir = strcspn(base, "?");
    while (dir > slash && base[dir - 1] != '/')
      dir--;
    n = snprintf(out, size, "%.*s%s%.*s", (int)dir, base,
                 dir == slash ? "/" : "", (int)len, link);
  }
  if (n < 0 || (size_t)n >= size)
    return false;
  char *path = out + strcspn(out, ":") + 3;
  path += strcspn(path, "/");
  char query[IOB_HTTP_URL_MAX + 1] = "";
  char *q = strchr(path, '?');
  if (q != NULL) { /* the dots are the path's, not the query's */
    snprintf(query, sizeof(query), "%s", q);
    *q = '\0';
  }
  remove_dots(path);
  strcat(path, query);
  return true;
}

static void submit(crawler *c, iob_batch *b, const char *url);

/* The next "href=" in s, in any case; NULL. */
static const char *find_href(const char *s) {
  for (; *s != '\0'; s++)
    if (strncasecmp(s, "href=", 5) == 0)
      return s;
  return NULL;
}

/* Every href="..." (or '...') of a page's body, on the same origin. */
static void follow_links(crawler *c, iob_batch *b, const char *page,
                         const char *body) {
  char url[IOB_HTTP_URL_MAX + 1];
  for (const char *at = body; (at = find_href(at)) != NULL;) {
    at += 5;
    char quote = *at;
    if (quote != '"' && quote != '\'')
      continue;
    const char *end = strchr(++at, quote);
    if (end == NULL)
      break;
    if (resolve(page, at, (size_t)(end - at), url, sizeof(url)) &&
        strncmp(url, c->origin, c->origin_len) == 0 &&
        strchr("/?", url[c->origin_len]) != NULL)
      submit(c, b, url);
    at = end + 1;
  }
}

/* ---- pages --------------------------------------------------------------- */

/* Submit a page, unless seen already or past --max. */
static void submit(crawler *c, iob_batch *b, const char *url) {
  if (c->submitted >= c->a.max)
    return;
  char *own = see(c, url);
  if (own == NULL)
    return;
  iob_http_request req = {.url = own}; /* copied when submitted */
  iob_task task;
  iob_task_init(&task);
  task.kind = &iob_kind_http;
  task.target = c->http;
  task.input = &req;
  task.data = own;
  int err = iob_batch_submit(b, &task);
  if (err < 0) { /* a URL the client refuses: a page not fetched */
    printf("0 0 0 %s (%s)\n", own, iob_strerror(err));
    c->failed++;
    return;
  }
  c->submitted++;
}

/* A page settled: its line, then its links. The crawl is over once every
 * page submitted has settled and none submitted another. */
static void on_page(iob_batch *b, uint32_t i, const iob_record *rec) {
  (void)rec;
  crawler *c = iob_batch_data(b);
  iob_outcome o;
  iob_batch_outcome(b, i, &o);
  const iob_http_result *r = o.result;
  c->settled++;
  c->failed += o.status != 0;
  c->retries += o.retries;
  printf("%ld %llu %u %s\n", r ? r->code : 0L,
         r ? (unsigned long long)r->bytes : 0ULL, 1 + o.retries + o.hedges,
         (const char *)o.data);
  if (o.status == 0 && r != NULL && r->body != NULL)
    follow_links(c, b, o.data, r->body);
  if (c->settled == c->submitted)
    iob_batch_close(b);
}

static void on_done(iob_batch *b, int status) {
  crawler *c = iob_batch_data(b);
  iob_report report;
  if (iob_batch_report(b, &report) == 0)
    c->ms = (double)report.elapsed_ns / 1e6;
  if (status != 0)
    cli_error("iobound-crawl", "the crawl stopped: %s", iob_strerror(status));
}

/* "scheme://host:port", as the first page names them. */
static void find_origin(crawler *c) {
  const char *host = strstr(c->a.start, "://") + 3;
  c->origin_len = (size_t)(host - c->a.start) + strcspn(host, "/?#");
  snprintf(c->origin, sizeof(c->origin), "%.*s", (int)c->origin_len,
           c->a.start);
}

int main(int argc, char **argv) {
  crawler c = {0};
  char error[256], help[2048];
  int status = crawl_parse(argc, argv, &c.a, error, sizeof(error));
  status = cli_settle("iobound-crawl", status, c.a.action, error,
                      crawl_help(help, sizeof(help)));
  if (status >= 0)
    return status;
  find_origin(&c);

  /* One client, one rate, one policy each for retries and hedges. */
  uv_loop_t *loop = uv_default_loop();
  iob_http_client_options ho = {.max_host_connections = c.a.limit};
  iob_rate *rate = NULL;
  iob_retry retry;
  iob_retry_init(&retry);
  retry.attempts = c.a.retries + 1;
  iob_hedge hedge;
  iob_hedge_init(&hedge);
  hedge.delay_ms = c.a.hedge_ms;
  if (iob_http_client_create(&c.http, loop, &ho) != 0 ||
      (c.a.rate > 0 && iob_rate_create(&rate, c.a.rate, 1) != 0))
    return CLI_EX_FAILED;
  iob_config config;
  iob_config_init(&config);
  config.open = 1; /* pages are submitted as links are found */
  config.max_in_flight = c.a.limit;
  config.rate = rate;
  config.retry = c.a.retries > 0 ? &retry : NULL;
  config.hedge = c.a.hedge_ms > 0 ? &hedge : NULL;
  config.on_op = on_page;
  config.data = &c;

  iob_batch *b;
  if (iob_batch_create(&b, &config) != 0 || iob_batch_start(b, loop, on_done))
    return CLI_EX_FAILED;
  submit(&c, b, c.a.start);
  if (c.submitted == 0) { /* the first page refused: nothing to crawl */
    iob_batch_close(b);
    uv_run(loop, UV_RUN_DEFAULT);
    return cli_usage_error("iobound-crawl",
                           "--start %s: not a URL the "
                           "client takes",
                           c.a.start);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  printf("pages %u, failed %u, retries %u, ms %.0f\n", c.settled, c.failed,
         c.retries, c.ms);

  iob_batch_free(b);
  iob_rate_free(rate);
  iob_http_client_destroy(c.http);
  uv_run(loop, UV_RUN_DEFAULT); /* the client's handles close */
  for (size_t k = 0; k < c.seen_cap; k++)
    free(c.seen[k]);
  free(c.seen);
  if (uv_loop_close(loop) != 0 || fflush(stdout) != 0)
    return CLI_EX_FAILED;
  return c.failed == 0 ? 0 : 1;
}
