/* The terminal chart: finished batches as plain ASCII, a character per
 * slice of time, for a look at a run without leaving the terminal:
 *
 *   pool: 10 operations of 200 ms, up to 4 at once on 4 threads - 600.7 ms
 *     op 0 t1   |#############                                      |
 *     op 4 t1   |.............#############                         |
 *     time (ms) +------------+------------+------------+------------+
 *               0            200          400          600
 *
 * A large batch gets a row per group of operations, each character the
 * strongest thing one of them did then. Every line fits the width. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

#define WIDTH_DEFAULT 80
#define WIDTH_MIN 40
#define WIDTH_MAX 1000
#define INDENT 2
#define SCALE_LABEL "time (ms)"

typedef struct chart {
  FILE *out;
  unsigned width;
  unsigned label_w; /* the row labels' column */
  unsigned ncols;   /* characters of time in a row */
  uint64_t span;
} chart;

/* The column time t falls in; the last column [.., t) reaches into. */
static unsigned column_at(uint64_t t, uint64_t span, unsigned ncols) {
  unsigned c = (unsigned)((double)t / (double)span * ncols);
  return c < ncols ? c : ncols - 1;
}

static unsigned column_before(uint64_t t, uint64_t span, unsigned ncols) {
  double x = (double)t / (double)span * ncols;
  unsigned c = (unsigned)x;
  if ((double)c == x && c > 0)
    c--; /* ends on a column's edge: that column is not reached */
  return c < ncols ? c : ncols - 1;
}

/* Mark columns first..last with symbol, unless a stronger one is there. */
static void mark(char *cells, unsigned first, unsigned last, char symbol) {
  static const char strength[] = " -.#cx";
  for (unsigned c = first; c <= last; c++)
    if (strchr(strength, symbol) > strchr(strength, cells[c]))
      cells[c] = symbol;
}

static const char run_marks[] = {
    [IOB__OK] = '#', [IOB__FAILED] = 'x', [IOB__CANCELLED] = 'c'};

/* Mark the columns from..to reaches, with symbol. */
static void mark_span(char *cells, unsigned ncols, uint64_t span, uint64_t from,
                      uint64_t to, char symbol) {
  unsigned first = column_at(from, span, ncols);
  unsigned last = to > from ? column_before(to, span, ncols)
                            : first; /* an instant still shows */
  mark(cells, first, last < first ? first : last, symbol);
}

void iob__chart_cells(char *cells, unsigned ncols, uint64_t span,
                      const iob_record *records, uint32_t n, bool from_start,
                      const iob_batch *b, uint32_t first) {
  memset(cells, ' ', ncols);
  for (uint32_t i = 0; i < n; i++) {
    const iob_record *r = &records[i];
    uint64_t queued = from_start ? 0 : r->queued_ns;
    if (r->started_ns > queued)
      mark(cells, column_at(queued, span, ncols),
           column_at(r->started_ns, span, ncols), '.');
    uint32_t na = 0;
    const iob_attempt *a =
        b != NULL ? iob__attempts_of(b, first + i, &na) : NULL;
    if (na == 0) {
      mark_span(cells, ncols, span, r->started_ns, r->finished_ns,
                run_marks[iob__outcome_of(r->status)]);
      continue;
    }
    /* Backing off over the whole run, and each attempt over that; and
     * where it ended, if it was stopped between two. */
    mark_span(cells, ncols, span, r->started_ns, r->finished_ns, '-');
    for (uint32_t k = 0; k < na; k++)
      mark_span(cells, ncols, span, a[k].started_ns, a[k].finished_ns,
                run_marks[iob__outcome_of(a[k].status)]);
    if (iob__ended_apart(r, a, na))
      mark_span(cells, ncols, span, r->finished_ns, r->finished_ns,
                run_marks[iob__outcome_of(r->status)]);
  }
}

/* Write pieces of text separated by sep, starting a new line (indented)
 * before a piece that would pass the width. */
static void put_wrapped(const chart *ch, const char *const *pieces, size_t n,
                        const char *sep, unsigned indent) {
  size_t column = 0;
  for (size_t k = 0; k < n; k++) {
    size_t len = strlen(pieces[k]);
    if (k > 0 && column + strlen(sep) + len > ch->width) {
      fprintf(ch->out, "\n%*s", (int)indent, "");
      column = indent;
    } else if (k > 0) {
      fputs(sep, ch->out);
      column += strlen(sep);
    }
    fputs(pieces[k], ch->out);
    column += len;
  }
  fputc('\n', ch->out);
}

/* A line may break at a space, but not inside "- 150.5 ms". */
static bool breakable(const char *word, const char *space) {
  bool after_dash = space - word == 1 && word[0] == '-';
  bool before_ms =
      strncmp(space + 1, "ms", 2) == 0 && (space[3] == ' ' || space[3] == 0);
  return !after_dash && !before_ms;
}

/* Split text in place into the words a line may break between. */
static size_t split_words(char *text, const char **words, size_t max) {
  size_t n = 0;
  char *word = text;
  for (char *p = text; *p != 0 && n + 1 < max; p++) {
    if (*p == ' ' && breakable(word, p)) {
      *p = 0;
      words[n++] = word;
      word = p + 1;
    }
  }
  words[n++] = word;
  return n;
}

/* How many operations share a row: 1 for a small batch. */
static uint32_t group_size(const iob_batch *b) {
  uint32_t count = b->config.count;
  if (count <= IOB__CHART_ROWS_MAX)
    return 1;
  return (count + IOB__CHART_ROWS_MAX - 1) / IOB__CHART_ROWS_MAX;
}

static bool ran_on_threads(const iob_batch *b) {
  for (uint32_t i = 0; i < b->config.count; i++)
    if (b->records[i].worker != 0)
      return true;
  return false;
}

/* "op 4 t2" (operation 4 ran on thread 2), "op 5" (it never ran on one:
 * cancelled before a thread took it), or "ops 0-99". */
static int row_label(char *buf, size_t size, const iob_batch *b, uint32_t first,
                     uint32_t group, bool threads) {
  uint32_t last =
      group > b->config.count - first ? b->config.count - 1 : first + group - 1;
  if (last > first)
    return snprintf(buf, size, "ops %" PRIu32 "-%" PRIu32, first, last);
  if (threads && b->records[first].worker != 0)
    return snprintf(buf, size, "op %" PRIu32 " t%" PRIu32, first,
                    b->records[first].worker);
  return snprintf(buf, size, "op %" PRIu32, first);
}

static unsigned widest_label(const iob_batch *const *batches, size_t n) {
  unsigned widest = sizeof(SCALE_LABEL) - 1;
  char label[64];
  for (size_t k = 0; k < n; k++) {
    const iob_batch *b = batches[k];
    uint32_t group = group_size(b);
    bool threads = ran_on_threads(b);
    for (uint32_t first = 0; first < b->config.count; first += group) {
      int len = row_label(label, sizeof(label), b, first, group, threads);
      if (len > 0 && (unsigned)len > widest)
        widest = (unsigned)len;
    }
  }
  return widest;
}

/* Did an operation of b back off between attempts? */
static bool backed_off(const iob_batch *b) {
  uint32_t n;
  for (uint32_t i = 0; i < b->config.count; i++) {
    const iob_attempt *a = iob__attempts_of(b, i, &n);
    if (iob__backed_off(a, n) || iob__ended_apart(&b->records[i], a, n))
      return true;
  }
  return false;
}

static void write_legend(const chart *ch, const iob_batch *const *batches,
                         size_t n) {
  char column[32], scale[64];
  iob__format_ms(column, sizeof(column), ch->span / ch->ncols);
  snprintf(scale, sizeof(scale), "(one column: %s)", column);
  const char *items[7] = {"# running", ". queued (waiting to start)",
                          "x failed", "c cancelled"};
  size_t nitems = 4;
  bool threads = false, again = false;
  for (size_t k = 0; k < n; k++) {
    threads |= group_size(batches[k]) == 1 && ran_on_threads(batches[k]);
    again |= backed_off(batches[k]);
  }
  if (again)
    items[nitems++] = "- backing off between attempts";
  if (threads) /* only rows of one operation name their thread */
    items[nitems++] = "tN: ran on thread N";
  items[nitems++] = scale;
  put_wrapped(ch, items, nitems, "   ", 0);
}

static void write_caption(const chart *ch, const iob_batch *b,
                          const iob_report *r) {
  char caption[IOB__TEXT_MAX];
  const char *words[IOB__TEXT_MAX / 2];
  iob__caption(caption, sizeof(caption), b, r, "-");
  size_t n = split_words(caption, words, sizeof(words) / sizeof(words[0]));
  fputc('\n', ch->out);
  put_wrapped(ch, words, n, " ", INDENT);
}

static void write_rows(const chart *ch, const iob_batch *b, char *cells) {
  uint32_t group = group_size(b);
  bool threads = ran_on_threads(b);
  char label[64];
  for (uint32_t first = 0; first < b->config.count; first += group) {
    uint32_t n =
        b->config.count - first < group ? b->config.count - first : group;
    row_label(label, sizeof(label), b, first, group, threads);
    iob__chart_cells(cells, ch->ncols, ch->span, &b->records[first], n,
                     iob__waits_for_slot(b), b, first);
    fprintf(ch->out, "%*s%-*s |%.*s|\n", INDENT, "", (int)ch->label_w, label,
            (int)ch->ncols, cells);
  }
}

/* A ruler with a '+' at each tick, and the ticks' times under it. */
static void write_scale(const chart *ch, char *line) {
  unsigned start = INDENT + ch->label_w + 1; /* the ruler's first '+' */
  uint64_t step = iob__nice_step(ch->span, ch->ncols / 8 + 1);
  unsigned decimals = iob__ms_decimals(step);
  memset(line, '-', ch->ncols);
  for (uint64_t t = step; t <= ch->span; t += step) {
    unsigned c = (unsigned)((double)t / (double)ch->span * ch->ncols);
    if (c < ch->ncols)
      line[c] = '+';
  }
  fprintf(ch->out, "%*s%-*s +%.*s+\n", INDENT, "", (int)ch->label_w,
          SCALE_LABEL, (int)ch->ncols, line);

  /* Labels start under their '+', one space apart at least. */
  memset(line, ' ', ch->width);
  unsigned free_from = start;
  for (uint64_t t = 0; t <= ch->span; t += step) {
    char text[32];
    iob__format_decimal(text, sizeof(text), (double)t / 1e6, decimals);
    unsigned at =
        t == 0
            ? start
            : start + 1 + (unsigned)((double)t / (double)ch->span * ch->ncols);
    size_t len = strlen(text);
    if (at < free_from || at + len > ch->width)
      continue;
    memcpy(line + at, text, len);
    free_from = at + (unsigned)len + 1;
  }
  fprintf(ch->out, "%.*s\n", (int)(free_from > start ? free_from - 1 : start),
          line);
}

static void write_chart(chart *ch, const iob_batch *const *batches, size_t n,
                        const iob_report *reports, char *line) {
  write_legend(ch, batches, n);
  for (size_t k = 0; k < n; k++) {
    write_caption(ch, batches[k], &reports[k]);
    write_rows(ch, batches[k], line);
    write_scale(ch, line);
  }
}

int iob_export_chart(FILE *out, const iob_batch *const *batches,
                     size_t nbatches, unsigned width) {
  int err = iob__export_check(out, batches, nbatches);
  if (err != 0)
    return err;
  if (width == 0)
    width = WIDTH_DEFAULT;
  if (width < WIDTH_MIN || width > WIDTH_MAX)
    return IOB_ERANGE;
  chart ch = {.out = out, .width = width};
  ch.label_w = widest_label(batches, nbatches);
  /* Indent, label, " |", the cells, "|". A label is at most 23
   * characters ("ops 268435440-268435455"): 40 leaves 12 columns. */
  ch.ncols = width - INDENT - ch.label_w - 3;
  ch.span = iob__export_span(batches, nbatches);
  iob_report *reports = calloc(nbatches, sizeof(*reports));
  char *line = malloc(width + 1);
  err = reports && line ? 0 : IOB_ENOMEM;
  if (err == 0)
    err = iob__export_reports(batches, nbatches, reports);
  if (err == 0) {
    write_chart(&ch, batches, nbatches, reports, line);
    err = iob__export_flush(out);
  }
  free(line);
  free(reports);
  return err;
}
