/* libFuzzer harness of the HTTP/1 answer parser (lib/ops/http1-parse.c),
 * which reads what any server on the network sends. The first byte of
 * the input says whether the answer is to a HEAD and in what pieces the
 * rest comes; the rest is the answer, parsed twice: whole, and in those
 * pieces. Beyond "no crash" it checks the parser's contract (http1.h):
 * - each call asks for more having taken every byte, or ends, having
 *   taken no more than it was given;
 * - a line handed on holds no line feed and is at most IOB__H1_LINE_MAX
 *   long; the body handed on is never longer than the answer;
 * - after the close, the answer is whole, nothing came (UV_EOF), or the
 *   parser failed with words saying why;
 * - a whole answer with a Content-Length, no Transfer-Encoding, not to a
 *   HEAD and not a 1xx, 204 or 304, has a body of that length;
 * - the pieces change nothing: the same end, lines and body, and for a
 *   whole answer the same bytes taken (a failure may come after more
 *   pieces were taken than the whole's line that failed). */
#include "../../lib/ops/http1.h"
#include "fuzz.h"
#include "iobound.h"

typedef struct outcome {
  int end;
  size_t taken, lines, line_bytes;
  char *body;
  size_t body_len, size;
} outcome;

static int on_line(void *arg, const char *line, size_t len) {
  outcome *o = arg;
  FUZZ_CHECK(memchr(line, '\n', len) == NULL, "a line with a line feed");
  FUZZ_CHECK(len <= IOB__H1_LINE_MAX, "a line of %zu bytes", len);
  o->lines++;
  o->line_bytes += len;
  return 0;
}

static int on_body(void *arg, const char *data, size_t len) {
  outcome *o = arg;
  FUZZ_CHECK(o->body_len + len <= o->size, "more body than answer");
  memcpy(o->body + o->body_len, data, len);
  o->body_len += len;
  return 0;
}

/* Parse answer (size bytes) in pieces of `step`. */
static void parse(const uint8_t *answer, size_t size, bool head, size_t step,
                  outcome *o) {
  *o = (outcome){.body = malloc(size + 1), .size = size};
  FUZZ_CHECK(o->body != NULL, "out of memory");
  iob__h1_sink sink = {on_line, on_body, o};
  iob__h1_parser p;
  iob__h1_parser_init(&p, &sink, head);
  int end = 0;
  while (o->taken < size && end == 0) {
    size_t n = size - o->taken < step ? size - o->taken : step;
    char *piece = fuzz_strndup(answer + o->taken, n);
    size_t used = 0;
    end = iob__h1_parse(&p, piece, n, &used);
    free(piece);
    FUZZ_CHECK(used <= n && (end != 0 || used == n),
               "took %zu of %zu bytes, returning %d", used, n, end);
    o->taken += used;
  }
  if (end == 0)
    end = iob__h1_closed(&p);
  FUZZ_CHECK(end == IOB__H1_DONE || end == UV_EOF ||
                 (end == UV_EIO && p.why != NULL),
             "ended with %d (%s)", end, p.why ? p.why : "no words");
  if (end == IOB__H1_DONE && p.has_length && !p.coded && !head &&
      p.code >= 200 && p.code != 204 && p.code != 304)
    FUZZ_CHECK(o->body_len == p.length, "a body of %zu bytes, not %llu",
               o->body_len, (unsigned long long)p.length);
  o->end = end;
  iob__h1_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  bool head = data[0] & 1;
  size_t step = 1 + (data[0] >> 1) % 13;
  outcome whole, pieces;
  parse(data + 1, size - 1, head, size, &whole);
  parse(data + 1, size - 1, head, step, &pieces);
  FUZZ_CHECK(whole.end == pieces.end &&
                 (whole.end != IOB__H1_DONE || whole.taken == pieces.taken) &&
                 whole.lines == pieces.lines &&
                 whole.line_bytes == pieces.line_bytes &&
                 whole.body_len == pieces.body_len &&
                 memcmp(whole.body, pieces.body, whole.body_len) == 0,
             "in pieces of %zu: end %d/%d, taken %zu/%zu, lines %zu/%zu, "
             "body %zu/%zu",
             step, whole.end, pieces.end, whole.taken, pieces.taken,
             whole.lines, pieces.lines, whole.body_len, pieces.body_len);
  free(whole.body);
  free(pieces.body);
  return 0;
}
