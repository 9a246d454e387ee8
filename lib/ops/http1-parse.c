/* The parser of HTTP/1 answers (RFC 9112) for http1.c: a status line,
 * header lines, and a body delimited by Content-Length, chunks, or the
 * connection's close; 1xx answers before the last are skipped. It takes
 * bytes as they come, in pieces of any size, and keeps only a line begun
 * in one piece and ended in a later one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iobound.h"
#include "http1.h"

enum {
  S_STATUS,     /* the status line */
  S_HEADER,     /* header lines, up to an empty one */
  S_BODY,       /* p->left bytes of body */
  S_TO_CLOSE,   /* body until the connection closes */
  S_CHUNK_SIZE, /* a chunk's size line */
  S_CHUNK_DATA, /* p->left bytes of a chunk */
  S_CHUNK_END,  /* the CR LF after a chunk */
  S_TRAILER,    /* trailer lines after the last chunk, up to an empty one */
  S_DONE,
  S_FAILED,
};

void iob__h1_parser_init(iob__h1_parser *p, const iob__h1_sink *sink,
                         bool head) {
  *p = (iob__h1_parser){.sink = sink, .head = head, .state = S_STATUS};
}

void iob__h1_parser_free(iob__h1_parser *p) {
  free(p->line);
  p->line = NULL;
  p->line_len = p->line_cap = 0;
}

static int fail(iob__h1_parser *p, const char *why) {
  p->why = why;
  p->state = S_FAILED;
  return UV_EIO;
}

/* Words for where a line too long was. */
static const char *too_long(const iob__h1_parser *p) {
  switch (p->state) {
  case S_STATUS:
    return "not an HTTP/1 answer: no status line in its first 100 KB";
  case S_CHUNK_SIZE:
  case S_CHUNK_END:
    return "bad chunked encoding: a line of its framing is over 100 KB";
  default:
    return "a header line of the answer is longer than 100 KB";
  }
}

/* The next line from data at *at: 1 with *line and *n (its CR LF taken
 * off) when it is whole, 0 when the data ran out first (what there was
 * is kept), UV_EIO past IOB__H1_LINE_MAX or short of memory to keep it. */
static int take_line(iob__h1_parser *p, const char *data, size_t len,
                     size_t *at, const char **line, size_t *n) {
  const char *start = data + *at;
  const char *lf = memchr(start, '\n', len - *at);
  size_t take = lf != NULL ? (size_t)(lf - start) + 1 : len - *at;
  if (p->line_len + take > IOB__H1_LINE_MAX + 2)
    return fail(p, too_long(p));
  *at += take;
  if (lf != NULL && p->line_len == 0) {
    *line = start;
    *n = take - 1;
  } else {
    if (p->line_len + take > p->line_cap) {
      size_t cap = p->line_cap ? p->line_cap : 256;
      while (cap < p->line_len + take)
        cap *= 2;
      char *more = realloc(p->line, cap);
      if (more == NULL) {
        p->state = S_FAILED;
        p->why = "no memory for a line of the answer";
        return IOB_ENOMEM;
      }
      p->line = more;
      p->line_cap = cap;
    }
    memcpy(p->line + p->line_len, start, take);
    p->line_len += take;
    if (lf == NULL)
      return 0;
    *line = p->line;
    *n = p->line_len - 1;
    p->line_len = 0; /* (its bytes stay until the next line is kept) */
  }
  if (*n > 0 && (*line)[*n - 1] == '\r')
    (*n)--;
  return 1;
}

/* "HTTP/1.x CODE[ reason]". */
static int status_line(iob__h1_parser *p, const char *s, size_t n) {
  if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' ||
      s[8] != ' ' || (n > 12 && s[12] != ' '))
    return fail(p, "not an HTTP/1 answer: its first line is no status line");
  long code = 0;
  for (int k = 9; k < 12; k++) {
    if (s[k] < '0' || s[k] > '9')
      return fail(p, "not an HTTP/1 answer: a status code that is not "
                     "three digits");
    code = code * 10 + (s[k] - '0');
  }
  if (code < 100)
    return fail(p, "not an HTTP/1 answer: a status code under 100");
  /* A new answer: what an interim one said is forgotten. */
  p->code = code;
  p->version = s[7] == '0' ? 10 : 11;
  p->chunked = p->coded = p->has_length = p->closes = p->keep_alive = false;
  p->header_bytes = 0;
  p->retry_after[0] = '\0';
  p->state = S_HEADER;
  return p->sink->line(p->sink->arg, s, n);
}

/* Whether header line s (n bytes) is `name`: its value, trimmed, in *v
 * and *vn. */
static bool is_header(const char *s, size_t n, const char *name, const char **v,
                      size_t *vn) {
  size_t len = strlen(name);
  if (n <= len || s[len] != ':' || strncasecmp(s, name, len) != 0)
    return false;
  const char *b = s + len + 1, *e = s + n;
  while (b < e && (*b == ' ' || *b == '\t'))
    b++;
  while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
    e--;
  *v = b;
  *vn = (size_t)(e - b);
  return true;
}

/* Whether the comma-separated list v holds `token` (any case). */
static bool has_token(const char *v, size_t n, const char *token) {
  size_t len = strlen(token);
  for (size_t k = 0; k + len <= n; k++)
    if (strncasecmp(v + k, token, len) == 0 &&
        (k == 0 || v[k - 1] == ',' || v[k - 1] == ' ') &&
        (k + len == n || v[k + len] == ',' || v[k + len] == ' '))
      return true;
  return false;
}

static int content_length(iob__h1_parser *p, const char *v, size_t n) {
  uint64_t length = 0;
  if (n == 0 || n > 18)
    return fail(p, "a Content-Length that is not a number");
  for (size_t k = 0; k < n; k++) {
    if (v[k] < '0' || v[k] > '9')
      return fail(p, "a Content-Length that is not a number");
    length = length * 10 + (uint64_t)(v[k] - '0');
  }
  if (p->has_length && length != p->length)
    return fail(p, "two Content-Length headers that differ");
  p->has_length = true;
  p->length = length;
  return 0;
}

/* One header line: what frames the body is noted, and it goes on. */
static int header_line(iob__h1_parser *p, const char *s, size_t n) {
  const char *v;
  size_t vn;
  int err = 0;
  if (is_header(s, n, "Content-Length", &v, &vn))
    err = content_length(p, v, vn);
  else if (is_header(s, n, "Transfer-Encoding", &v, &vn)) {
    /* Chunked only as the last coding; else the body runs to the close
     * (RFC 9112, 6.3). */
    p->coded = true;
    p->chunked = vn >= 7 && strncasecmp(v + vn - 7, "chunked", 7) == 0;
  } else if (is_header(s, n, "Connection", &v, &vn)) {
    p->closes |= has_token(v, vn, "close");
    p->keep_alive |= has_token(v, vn, "keep-alive");
  } else if (is_header(s, n, "Retry-After", &v, &vn)) {
    /* The last one, as libcurl reads it; too long to be one, none. */
    size_t k = vn < sizeof(p->retry_after) ? vn : 0;
    memcpy(p->retry_after, v, k);
    p->retry_after[k] = '\0';
  }
  return err != 0 ? err : p->sink->line(p->sink->arg, s, n);
}

/* The empty line after the headers: where the body begins, and how it
 * ends. */
static void headers_end(iob__h1_parser *p) {
  if (p->code < 200 && p->code != 101) {
    p->state = S_STATUS; /* an interim answer: the real one follows */
    return;
  }
  if (p->head || p->code == 204 || p->code == 304 || p->code == 101) {
    p->closes |= p->code == 101; /* (it speaks another protocol now) */
    p->state = S_DONE;
  } else if (p->chunked) {
    /* With a Content-Length too, the message is suspect: chunks frame
     * it, and the connection ends with it (RFC 9112, 6.3). */
    p->closes |= p->has_length;
    p->state = S_CHUNK_SIZE;
  } else if (p->has_length && !p->coded) {
    p->left = p->length;
    p->state = p->left > 0 ? S_BODY : S_DONE;
  } else {
    p->closes = true;
    p->state = S_TO_CLOSE;
  }
}

/* A chunk's size line: hex digits, then perhaps extensions. */
static int chunk_size(iob__h1_parser *p, const char *s, size_t n) {
  uint64_t size = 0;
  size_t k = 0;
  for (; k < n && k < 17; k++) {
    char c = s[k];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0)
      break;
    size = size * 16 + (uint64_t)d;
  }
  if (k == 0 || k == 17 ||
      (k < n && s[k] != ';' && s[k] != ' ' && s[k] != '\t'))
    return fail(p, "bad chunked encoding: a chunk's size is no hex number");
  p->left = size;
  p->state = size > 0 ? S_CHUNK_DATA : S_TRAILER;
  return 0;
}

/* A whole line, in the state that wanted it. */
static int on_line(iob__h1_parser *p, const char *s, size_t n) {
  if (p->state == S_HEADER || p->state == S_TRAILER) {
    p->header_bytes += n + 2;
    if (p->header_bytes > IOB__H1_HEADERS_MAX)
      return fail(p, "the answer's headers are longer than 300 KB in all");
  }
  switch (p->state) {
  case S_STATUS:
    return status_line(p, s, n);
  case S_HEADER:
    if (n == 0) {
      headers_end(p);
      return 0;
    }
    return header_line(p, s, n);
  case S_CHUNK_SIZE:
    return chunk_size(p, s, n);
  case S_CHUNK_END:
    if (n != 0)
      return fail(p, "bad chunked encoding: a chunk runs past its size");
    p->state = S_CHUNK_SIZE;
    return 0;
  default: /* S_TRAILER: header lines too, as libcurl hands them on */
    if (n == 0) {
      p->state = S_DONE;
      return 0;
    }
    return p->sink->line(p->sink->arg, s, n);
  }
}

/* Up to p->left bytes of body at data + *at. */
static int body_bytes(iob__h1_parser *p, const char *data, size_t len,
                      size_t *at) {
  size_t n = len - *at;
  if (p->state != S_TO_CLOSE && n > p->left)
    n = (size_t)p->left;
  int err = n > 0 ? p->sink->body(p->sink->arg, data + *at, n) : 0;
  if (err != 0) {
    p->state = S_FAILED;
    p->why = NULL; /* the sink's code, in its own words */
    return err;
  }
  *at += n;
  if (p->state == S_TO_CLOSE)
    return 0;
  p->left -= n;
  if (p->left == 0)
    p->state = p->state == S_BODY ? S_DONE : S_CHUNK_END;
  return 0;
}

int iob__h1_parse(iob__h1_parser *p, const char *data, size_t len,
                  size_t *used) {
  size_t at = 0;
  int err = 0;
  p->received += len;
  while (err == 0 && p->state != S_DONE && at < len) {
    if (p->state == S_FAILED)
      return UV_EIO;
    if (p->state == S_BODY || p->state == S_TO_CLOSE ||
        p->state == S_CHUNK_DATA) {
      err = body_bytes(p, data, len, &at);
      continue;
    }
    const char *line;
    size_t n;
    err = take_line(p, data, len, &at, &line, &n);
    if (err == 1)
      err = on_line(p, line, n);
  }
  *used = at;
  if (err < 0)
    return err;
  return p->state == S_DONE ? IOB__H1_DONE : 0;
}

int iob__h1_closed(iob__h1_parser *p) {
  switch (p->state) {
  case S_TO_CLOSE:
  case S_DONE:
    p->state = S_DONE;
    return IOB__H1_DONE;
  case S_STATUS:
    if (p->received == 0) {
      p->why = "the server closed the connection without an answer";
      return UV_EOF;
    }
    /* fall through */
  case S_HEADER:
    return fail(p, "the connection closed in the middle of the answer's "
                   "headers");
  case S_BODY:
    snprintf(p->text, sizeof(p->text),
             "the connection closed with %llu bytes of the body to come",
             (unsigned long long)p->left);
    return fail(p, p->text);
  case S_FAILED:
    return UV_EIO;
  case S_TRAILER:
    return fail(p, "the connection closed in the middle of the body's "
                   "trailers");
  default:
    return fail(p, "the connection closed before the last chunk of the body");
  }
}

bool iob__h1_keeps(const iob__h1_parser *p) {
  return p->state == S_DONE && !p->closes &&
         (p->version >= 11 || p->keep_alive);
}
