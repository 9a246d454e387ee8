/* The SVG timeline: finished batches drawn one above the other on one time
 * axis in ms, so the styles can be compared at a glance.
 *
 * A small batch gets a row per operation: the time it waited in a queue
 * hatched grey, then its run as a bar coloured by the thread that ran it,
 * red when it failed. A large batch gets an area chart of the operations
 * in flight over time instead, computed in one pass over the records
 * into 400 slices, so the file stays small however many operations ran.
 *
 * Numbers are written with iob__format_decimal, never printf("%f"): the
 * application's locale must not turn 12.5 into "12,5" in the file. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

#define WIDTH 960.0
#define LEFT 96.0 /* the row labels live left of the plot */
#define RIGHT 28.0
#define PLOT_W (WIDTH - LEFT - RIGHT)
#define HEADER_H 66.0 /* title and subtitle */
#define LEGEND_LINE 20.0
#define CAPTION_H 26.0
#define NOTE_H 15.0 /* the line under a large batch's caption */
#define SECTION_GAP 16.0
#define ROW_H 18.0   /* a row of a small batch */
#define ROWS_H 400.0 /* rows shrink when a batch would need more */
#define ROW_H_MIN 3.0
#define LABEL_ROW_H 11.0 /* rows lower than this share their labels */
#define AREA_H 150.0
#define AXIS_H 50.0
#define CHAR_W 6.4 /* a character of 12 px sans-serif, about */
#define SLICES 400 /* about two pixels each */

static const char LOOP_FILL[] = "#4477aa";
static const char AREA_FILL[] = "#5b7896";
static const char FAILED_FILL[] = "#cc3311";
static const char QUEUED_FILL[] = "url(#iob-queued)";
static const char BACKOFF_STROKE[] = "#777777";
/* Dark enough for white text, and far from the loop's blue and the red
 * of failures. */
static const char *const thread_fills[] = {
    "#228833", "#aa3377", "#332288", "#009988", "#997700", "#7a4d1f", "#555555",
};
#define THREAD_FILLS (sizeof(thread_fills) / sizeof(thread_fills[0]))

typedef struct svg {
  FILE *out;
  const iob_batch *const *batches;
  const iob_report *reports;
  size_t n;
  uint64_t span; /* the shared time axis: 0..span ns */
  uint64_t step; /* between ticks, ns */
  double px_per_ns;
  /* Threads that ran bars, numbered 1.. in order, for their colours. */
  /* The threads that ran a bar, in order: a thread's colour is its place
   * here. As many as the bars at most, whatever thread numbers the process
   * has reached. */
  uint32_t *thread_ids;
  uint32_t threads;
  bool any_loop, any_area, any_failed, any_cancelled, any_backoff;
  double *slices; /* SLICES + 1 slices, for the large batches */
} svg;

/* ---- text and numbers -------------------------------------------------- */

typedef struct num {
  char s[32];
} num;

/* One decimal is a tenth of a pixel: enough, and keeps the file small.
 * The struct is returned by value so that several can be in one call. */
static num px(double v) {
  num n;
  iob__format_decimal(n.s, sizeof(n.s), v, 1);
  return n;
}

/* Length of the valid UTF-8 sequence at s that XML 1.0 allows, or 0. */
static size_t utf8_length(const unsigned char *s) {
  size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
  if (s[0] < 0xc2 || s[0] > 0xf4)
    return 0;
  for (size_t k = 1; k < len; k++)
    if ((s[k] & 0xc0) != 0x80)
      return 0;
  /* Overlong forms, UTF-16 surrogates, beyond U+10FFFF, U+FFFE/U+FFFF. */
  if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
      (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90) ||
      (s[0] == 0xef && s[1] == 0xbf && s[2] >= 0xbe))
    return 0;
  return len;
}

/* Text as XML character data: markup escaped, control characters and
 * broken UTF-8 replaced, so any title gives a well-formed file. */
static void put_text(FILE *out, const char *text) {
  for (const unsigned char *s = (const unsigned char *)text; *s != 0;) {
    size_t len;
    switch (*s) {
    case '&':
      fputs("&amp;", out);
      s++;
      continue;
    case '<':
      fputs("&lt;", out);
      s++;
      continue;
    case '>':
      fputs("&gt;", out);
      s++;
      continue;
    case '"':
      fputs("&quot;", out);
      s++;
      continue;
    default:
      break;
    }
    if (*s < 0x80) {
      fputc(*s < 0x20 && *s != '\t' && *s != '\n' ? ' ' : *s, out);
      s++;
    } else if ((len = utf8_length(s)) > 0) {
      fwrite(s, 1, len, out);
      s += len;
    } else {
      fputs("\xef\xbf\xbd", out); /* U+FFFD, the replacement character */
      s++;
    }
  }
}

static double text_width(const char *text, double font_px) {
  return (double)strlen(text) * CHAR_W * font_px / 12.0;
}

/* ---- one operation ----------------------------------------------------- */

static void describe_op(char *buf, size_t size, uint32_t i, const char *kind,
                        const iob_record *r) {
  char queued[32], start[32], end[32], ran[32], on[32], status[96] = "";
  iob__format_ms(queued, sizeof(queued), r->started_ns - r->queued_ns);
  iob__format_ms(start, sizeof(start), r->started_ns);
  iob__format_ms(end, sizeof(end), r->finished_ns);
  iob__format_ms(ran, sizeof(ran), r->finished_ns - r->started_ns);
  if (r->worker == 0)
    snprintf(on, sizeof(on), "the loop thread");
  else
    snprintf(on, sizeof(on), "thread %" PRIu32, r->worker);
  iob__outcome outcome = iob__outcome_of(r->status);
  if (outcome != IOB__OK)
    snprintf(status, sizeof(status), "; %s: %s (%s)",
             outcome == IOB__CANCELLED ? "cancelled" : "failed",
             iob_err_name(r->status), iob_strerror(r->status));
  snprintf(buf, size,
           "op %" PRIu32 "%s%s%s: queued for %s, ran from %s to %s (%s) "
           "on %s%s",
           i, kind ? " (" : "", kind ? kind : "", kind ? ")" : "", queued,
           start, end, ran, on, status);
}

static void svg_rect(FILE *out, const char *cls, double x, double y, double w,
                     double h, const char *fill) {
  fprintf(out,
          "<rect class=\"%s\" x=\"%s\" y=\"%s\" width=\"%s\" "
          "height=\"%s\" fill=\"%s\"",
          cls, px(x).s, px(y).s, px(w).s, px(h).s, fill);
}

/* "thread 3" inside its bar, when the bar has room for it. */
static void thread_label(FILE *out, double x, double y, double w, double h,
                         uint32_t worker) {
  char text[32];
  snprintf(text, sizeof(text), "thread %" PRIu32, worker);
  double font = h < 14 ? h - 2 : 11;
  if (font < 8 || text_width(text, font) + 6 > w)
    return;
  fprintf(out,
          "<text class=\"thread\" x=\"%s\" y=\"%s\" font-size=\"%s\" "
          "fill=\"#ffffff\">%s</text>\n",
          px(x + 4).s, px(y + h / 2 + font * 0.35).s, px(font).s, text);
}

/* A run's bar from ns `from` to `to`, coloured by how it ended, with a
 * tooltip; `what` is "op" or "attempt". */
static void run_bar(FILE *out, const iob__svg_row *row, const char *what,
                    uint64_t from, uint64_t to, double y, double h,
                    int32_t status, const char *tip) {
  double x = row->left + (double)from * row->px_per_ns;
  double w = (double)(to - from) * row->px_per_ns;
  if (w < 1.5)
    w = 1.5; /* an instant operation is still seen */
  char cls[32];
  switch (iob__outcome_of(status)) {
  case IOB__OK:
    snprintf(cls, sizeof(cls), "%s ok", what);
    svg_rect(out, cls, x, y, w, h, row->fill);
    break;
  case IOB__FAILED:
    snprintf(cls, sizeof(cls), "%s failed", what);
    svg_rect(out, cls, x, y, w, h, FAILED_FILL);
    break;
  case IOB__CANCELLED: /* hollow: it was stopped, it did not do wrong */
    snprintf(cls, sizeof(cls), "%s cancelled", what);
    svg_rect(out, cls, x, y, w, h, "#ffffff");
    fprintf(out, " stroke=\"%s\" stroke-dasharray=\"3 2\"", FAILED_FILL);
    break;
  }
  fputs("><title>", out);
  put_text(out, tip);
  fputs("</title></rect>\n", out);
}

static void describe_attempt(char *buf, size_t size, uint32_t i, uint32_t k,
                             uint32_t n, const iob_attempt *a) {
  char start[32], end[32], ran[32], status[96] = "";
  iob__format_ms(start, sizeof(start), a->started_ns);
  iob__format_ms(end, sizeof(end), a->finished_ns);
  iob__format_ms(ran, sizeof(ran), a->finished_ns - a->started_ns);
  if (a->status != 0)
    snprintf(status, sizeof(status), "; %s: %s (%s)",
             iob__outcome_of(a->status) == IOB__CANCELLED ? "stopped"
                                                          : "failed",
             iob_err_name(a->status), iob_strerror(a->status));
  snprintf(buf, size,
           "op %" PRIu32 ", attempt %" PRIu32 " of %" PRIu32
           "%s: ran from %s to %s (%s)%s",
           i, k + 1, n, a->hedge ? " (a hedge)" : "", start, end, ran, status);
}

/* A dashed line across a time no attempt of operation i ran. */
static void backoff_line(FILE *out, const iob__svg_row *row, uint32_t i,
                         uint64_t from, uint64_t to, double mid) {
  char tip[64], ms[32];
  iob__format_ms(ms, sizeof(ms), to - from);
  snprintf(tip, sizeof(tip), "op %" PRIu32 ": backed off for %s", i, ms);
  fprintf(out,
          "<line class=\"backoff\" x1=\"%s\" y1=\"%s\" x2=\"%s\" "
          "y2=\"%s\" stroke=\"%s\" stroke-dasharray=\"3 2\"><title>",
          px(row->left + (double)from * row->px_per_ns).s, px(mid).s,
          px(row->left + (double)to * row->px_per_ns).s, px(mid).s,
          BACKOFF_STROKE);
  put_text(out, tip);
  fputs("</title></line>\n", out);
}

/* An operation that ran more than once: a bar per attempt, each in its
 * lane (iob__lane_of(): hedges below the first, the row's height split
 * between them), and a dashed line across each time no attempt ran (a
 * backoff). Stopped after its last attempt (cancelled in a backoff), it
 * gets a mark of its own where it ended. */
static void attempt_bars(FILE *out, const iob__svg_row *row, uint32_t i,
                         const iob_record *r, double y, double h) {
  const iob_attempt *a = row->attempts;
  uint32_t n = row->nattempts, lanes = 0;
  uint64_t ends[IOB__LANES_MAX] = {0};
  for (uint32_t k = 0; k < n; k++)
    iob__lane_of(&a[k], ends, &lanes);
  double lane_h = h / lanes, mid = y + h / 2;
  uint32_t used = 0;
  uint64_t last_end = a[0].started_ns, taken[IOB__LANES_MAX] = {0};
  for (uint32_t k = 0; k < n; k++) {
    if (a[k].started_ns > last_end) /* backed off since */
      backoff_line(out, row, i, last_end, a[k].started_ns, mid);
    uint32_t lane = iob__lane_of(&a[k], taken, &used);
    char tip[IOB__TEXT_MAX];
    describe_attempt(tip, sizeof(tip), i, k, n, &a[k]);
    run_bar(out, row, "attempt", a[k].started_ns, a[k].finished_ns,
            y + lane * lane_h, lane_h, a[k].status, tip);
    if (a[k].finished_ns > last_end)
      last_end = a[k].finished_ns;
  }
  if (!iob__ended_apart(r, a, n))
    return;
  if (r->finished_ns > last_end)
    backoff_line(out, row, i, last_end, r->finished_ns, mid);
  char tip[IOB__TEXT_MAX];
  describe_op(tip, sizeof(tip), i, row->kind, r);
  run_bar(out, row, "op", r->finished_ns, r->finished_ns, y, h, r->status, tip);
}

void iob__svg_op(FILE *out, const iob__svg_row *row, uint32_t i,
                 const iob_record *r) {
  double h = row->height * 0.72, y = row->y + (row->height - h) / 2;
  double x_queued = row->left + (double)r->queued_ns * row->px_per_ns;
  double x_start = row->left + (double)r->started_ns * row->px_per_ns;
  double w = (double)(r->finished_ns - r->started_ns) * row->px_per_ns;
  if (x_start - x_queued >= 0.2) {
    svg_rect(out, "queued", x_queued, y, x_start - x_queued, h, QUEUED_FILL);
    fputs("/>\n", out);
  }
  if (row->nattempts > 1) {
    attempt_bars(out, row, i, r, y, h);
    return;
  }
  char tip[IOB__TEXT_MAX];
  describe_op(tip, sizeof(tip), i, row->kind, r);
  run_bar(out, row, "op", r->started_ns, r->finished_ns, y, h, r->status, tip);
  if (r->worker != 0 && r->status == 0)
    thread_label(out, x_start, y, w < 1.5 ? 1.5 : w, h, r->worker);
}

/* ---- what the picture needs to know first ------------------------------ */

static bool drawn_as_bars(const iob_batch *b) {
  return b->config.count <= IOB__SVG_BARS_MAX;
}

static double row_height(uint32_t count) {
  double h = ROWS_H / (double)count;
  return h > ROW_H ? ROW_H : h < ROW_H_MIN ? ROW_H_MIN : h;
}

static double caption_height(const iob_batch *b) {
  return drawn_as_bars(b) ? CAPTION_H : CAPTION_H + NOTE_H;
}

static double section_height(const iob_batch *b) {
  double body = drawn_as_bars(b)
                    ? row_height(b->config.count) * (double)b->config.count
                    : AREA_H;
  return caption_height(b) + body + SECTION_GAP;
}

/* Which kinds of mark the picture holds, for the legend, and a colour
 * number for each thread that ran a bar, in the order of the threads. */
static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static int survey(svg *s) {
  size_t bars = 0;
  for (size_t k = 0; k < s->n; k++) {
    const iob_batch *b = s->batches[k];
    for (uint32_t i = 0; i < b->config.count; i++) {
      const iob_record *r = &b->records[i];
      iob__outcome outcome = iob__outcome_of(r->status);
      s->any_failed |= outcome == IOB__FAILED;
      s->any_cancelled |= outcome == IOB__CANCELLED;
      if (drawn_as_bars(b)) {
        uint32_t na;
        s->any_loop |= r->worker == 0;
        const iob_attempt *a = iob__attempts_of(b, i, &na);
        s->any_backoff |= iob__backed_off(a, na) || iob__ended_apart(r, a, na);
      }
    }
    s->any_area |= !drawn_as_bars(b);
    if (drawn_as_bars(b))
      bars += b->config.count;
  }
  s->thread_ids = malloc((bars ? bars : 1) * sizeof(*s->thread_ids));
  if (s->thread_ids == NULL)
    return IOB_ENOMEM;
  size_t n = 0;
  for (size_t k = 0; k < s->n; k++) {
    const iob_batch *b = s->batches[k];
    for (uint32_t i = 0; i < b->config.count && drawn_as_bars(b); i++)
      if (b->records[i].worker != 0)
        s->thread_ids[n++] = b->records[i].worker;
  }
  qsort(s->thread_ids, n, sizeof(*s->thread_ids), cmp_u32);
  for (size_t k = 0; k < n; k++) /* keep each once */
    if (s->threads == 0 || s->thread_ids[s->threads - 1] != s->thread_ids[k])
      s->thread_ids[s->threads++] = s->thread_ids[k];
  return 0;
}

static const char *thread_fill(const svg *s, uint32_t worker) {
  if (worker == 0)
    return LOOP_FILL;
  const uint32_t *at =
      bsearch(&worker, s->thread_ids, s->threads, sizeof(worker), cmp_u32);
  size_t rank = at != NULL ? (size_t)(at - s->thread_ids) : 0;
  return thread_fills[rank % THREAD_FILLS];
}

/* ---- title, legend, grid, axis ----------------------------------------- */

static void default_title(char *buf, size_t size, const svg *s) {
  char first[96], other[96];
  iob__describe_inputs(first, sizeof(first), s->batches[0]);
  for (size_t k = 1; k < s->n; k++) {
    iob__describe_inputs(other, sizeof(other), s->batches[k]);
    if (strcmp(first, other) != 0) {
      snprintf(buf, size, "Timeline of %zu batches", s->n);
      return;
    }
  }
  snprintf(buf, size, "Timeline of %s", first);
}

static void write_header(const svg *s, const char *title) {
  char own[IOB__TEXT_MAX];
  if (title == NULL) {
    default_title(own, sizeof(own), s);
    title = own;
  }
  fprintf(s->out, "<text x=\"16\" y=\"30\" font-size=\"19\" "
                  "font-weight=\"bold\">");
  put_text(s->out, title);
  fputs("</text>\n<text x=\"16\" y=\"52\" font-size=\"13\" fill=\"#444444\">"
        "elapsed:",
        s->out);
  for (size_t k = 0; k < s->n; k++) {
    char ms[32];
    iob__format_ms(ms, sizeof(ms), s->reports[k].elapsed_ns);
    fputs(k == 0 ? " " : " \xc2\xb7 ", s->out); /* a middle dot */
    put_text(s->out, iob_style_name(s->reports[k].style));
    fprintf(s->out, " %s", ms);
  }
  fputs(" (each batch's time counts from its own start)</text>\n", s->out);
}

typedef struct legend_item {
  const char *fill;
  const char *stroke;
  char label[48];
} legend_item;

static size_t legend_items(const svg *s, legend_item *items) {
  size_t n = 0;
  items[n++] = (legend_item){QUEUED_FILL, "#999999",
                             "queued: waiting for a thread or a limit"};
  if (s->any_loop)
    items[n++] = (legend_item){LOOP_FILL, NULL, "ran on the loop thread"};
  if (s->threads > THREAD_FILLS) {
    items[n++] = (legend_item){thread_fills[0], NULL,
                               "ran on a thread (colours repeat)"};
  } else {
    for (uint32_t k = 0; k < s->threads; k++) {
      uint32_t w = s->thread_ids[k];
      items[n] = (legend_item){thread_fill(s, w), NULL, ""};
      snprintf(items[n++].label, sizeof(items[0].label),
               "ran on thread %" PRIu32, w);
    }
  }
  if (s->any_area)
    items[n++] = (legend_item){AREA_FILL, NULL, "operations running"};
  if (s->any_failed)
    items[n++] = (legend_item){FAILED_FILL, NULL, "failed"};
  if (s->any_cancelled)
    items[n++] = (legend_item){"#ffffff", FAILED_FILL, "cancelled"};
  if (s->any_backoff)
    items[n++] = (legend_item){"#ffffff", BACKOFF_STROKE,
                               "backing off between attempts (dashed)"};
  return n;
}

/* Lay the legend out in lines from y; write it unless out is NULL.
 * Returns the height it takes. */
static double legend(FILE *out, const legend_item *items, size_t n, double y) {
  double x = 16, line = 0;
  for (size_t k = 0; k < n; k++) {
    double w = 14 + 6 + text_width(items[k].label, 12) + 18;
    if (x + w > WIDTH - RIGHT && x > 16) {
      x = 16;
      line++;
    }
    double top = y + line * LEGEND_LINE;
    if (out != NULL) {
      svg_rect(out, "key", x, top, 14, 12, items[k].fill);
      fprintf(out,
              " stroke=\"%s\"/>\n<text x=\"%s\" y=\"%s\" "
              "font-size=\"12\">%s</text>\n",
              items[k].stroke ? items[k].stroke : "none", px(x + 20).s,
              px(top + 10.5).s, items[k].label);
    }
    x += w;
  }
  return (line + 1) * LEGEND_LINE;
}

static double x_of(const svg *s, uint64_t ns) {
  return LEFT + (double)ns * s->px_per_ns;
}

static void write_grid(const svg *s, double top, double bottom) {
  for (uint64_t t = s->step; t <= s->span; t += s->step)
    fprintf(s->out,
            "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" "
            "stroke=\"#e2e2e2\"/>\n",
            px(x_of(s, t)).s, px(top).s, px(x_of(s, t)).s, px(bottom).s);
}

static void write_axis(const svg *s, double y) {
  FILE *out = s->out;
  unsigned decimals = iob__ms_decimals(s->step);
  fprintf(out,
          "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" "
          "stroke=\"#333333\"/>\n",
          px(LEFT).s, px(y).s, px(LEFT + PLOT_W).s, px(y).s);
  for (uint64_t t = 0; t <= s->span; t += s->step) {
    char label[32];
    iob__format_decimal(label, sizeof(label), (double)t / 1e6, decimals);
    double x = x_of(s, t);
    fprintf(out,
            "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" "
            "stroke=\"#333333\"/>\n<text class=\"tick\" x=\"%s\" y=\"%s\" "
            "font-size=\"12\" text-anchor=\"middle\">%s</text>\n",
            px(x).s, px(y).s, px(x).s, px(y + 5).s, px(x).s, px(y + 19).s,
            label);
  }
  fprintf(out,
          "<text x=\"%s\" y=\"%s\" font-size=\"13\" "
          "text-anchor=\"middle\">time (ms)</text>\n",
          px(LEFT + PLOT_W / 2).s, px(y + 38).s);
}

/* ---- a section --------------------------------------------------------- */

/* A dashed line where the batch ended, and its time beside it. */
static void end_marker(const svg *s, const iob_report *r, double top,
                       double bottom) {
  char text[48], ms[32];
  iob__format_ms(ms, sizeof(ms), r->elapsed_ns);
  snprintf(text, sizeof(text), "done: %s", ms);
  double x = x_of(s, r->elapsed_ns);
  bool right = x + 4 + text_width(text, 11) <= WIDTH - 2;
  fprintf(s->out,
          "<line class=\"end\" x1=\"%s\" y1=\"%s\" x2=\"%s\" "
          "y2=\"%s\" stroke=\"#222222\" stroke-dasharray=\"4 3\"/>\n"
          "<text x=\"%s\" y=\"%s\" font-size=\"11\" text-anchor=\"%s\" "
          "stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\">"
          "%s</text>\n",
          px(x).s, px(top - 4).s, px(x).s, px(bottom + 2).s,
          px(right ? x + 4 : x - 4).s, px(top + 8).s, right ? "start" : "end",
          text);
}

static void row_label(FILE *out, double y, double h, uint32_t i) {
  double font = h < LABEL_ROW_H ? LABEL_ROW_H - 1 : h < 14 ? h - 1 : 12;
  fprintf(out,
          "<text class=\"op-label\" x=\"%s\" y=\"%s\" font-size=\"%s\" "
          "text-anchor=\"end\">op %" PRIu32 "</text>\n",
          px(LEFT - 8).s, px(y + h / 2 + font * 0.35).s, px(font).s, i);
}

static void write_bars(const svg *s, const iob_batch *b, double top) {
  uint32_t count = b->config.count;
  double h = row_height(count);
  /* Low rows share labels: one every `every` rows keeps them apart. */
  uint32_t every = h >= LABEL_ROW_H ? 1 : (uint32_t)(LABEL_ROW_H / h) + 1;
  bool from_start = iob__waits_for_slot(b);
  bool mixed = iob__batch_kind(b) == NULL;
  for (uint32_t i = 0; i < count; i++) {
    iob_record r = iob__drawn(&b->records[i], from_start);
    iob__svg_row row = {.left = LEFT,
                        .px_per_ns = s->px_per_ns,
                        .y = top + (double)i * h,
                        .height = h,
                        .fill = thread_fill(s, r.worker),
                        .kind = iob__kind_name_if(b, mixed, i)};
    row.attempts = iob__attempts_of(b, i, &row.nattempts);
    if (i % every == 0)
      row_label(s->out, row.y, every == 1 ? h : LABEL_ROW_H, i);
    iob__svg_op(s->out, &row, i, &r);
  }
}

static double y_of_count(double top, double height, double max, double v) {
  return top + height - height * v / max;
}

/* One layer of the stacked area: from the layers below (base) up to
 * base + this layer, as a step outline, left to right on top and back
 * along the base. Steps of equal height are merged. */
static void area_layer(const svg *s, const char *cls, const char *fill,
                       const double *base, const double *add, double top,
                       double height, double max) {
  double slice_w = PLOT_W / SLICES;
  fprintf(s->out,
          "<path class=\"in-flight %s\" fill=\"%s\" stroke=\"none\" "
          "d=\"M%s %s",
          cls, fill, px(LEFT).s, px(y_of_count(top, height, max, base[0])).s);
  num last = {""};
  for (size_t k = 0; k < SLICES; k++) {
    num y = px(y_of_count(top, height, max, base[k] + add[k]));
    if (strcmp(y.s, last.s) != 0)
      fprintf(s->out, "H%sV%s", px(LEFT + (double)k * slice_w).s, y.s);
    last = y;
  }
  fprintf(s->out, "H%s", px(LEFT + PLOT_W).s);
  last.s[0] = 0;
  for (size_t k = SLICES; k-- > 0;) {
    num y = px(y_of_count(top, height, max, base[k]));
    if (strcmp(y.s, last.s) != 0)
      fprintf(s->out, "H%sV%s", px(LEFT + (double)(k + 1) * slice_w).s, y.s);
    last = y;
  }
  fprintf(s->out, "H%sZ\"/>\n", px(LEFT).s);
}

static void count_ticks(FILE *out, double top, double height, uint64_t max,
                        uint64_t step) {
  for (uint64_t v = 0; v <= max; v += step)
    fprintf(out,
            "<text class=\"count\" x=\"%s\" y=\"%s\" font-size=\"11\" "
            "text-anchor=\"end\">%" PRIu64 "</text>\n",
            px(LEFT - 6).s,
            px(y_of_count(top, height, (double)max, (double)v) + 4).s, v);
  fprintf(out,
          "<text x=\"%s\" y=\"%s\" font-size=\"11\" "
          "text-anchor=\"middle\" transform=\"rotate(-90 %s %s)\">"
          "in flight</text>\n",
          px(LEFT - 62).s, px(top + height / 2).s, px(LEFT - 62).s,
          px(top + height / 2).s);
}

/* Stacked: running, then failed or cancelled, then waiting in a queue:
 * the mean number of operations in flight in each slice of time. */
static void write_area(const svg *s, const iob_batch *b, double top) {
  double height = AREA_H - 4;
  double running[SLICES], failed[SLICES], queued[SLICES], below[SLICES];
  double peak = 0;
  iob__slices(b->records, b->config.count, s->span, s->slices, SLICES,
              iob__waits_for_slot(b));
  for (size_t k = 0; k < SLICES; k++) {
    const double *v = &s->slices[k * IOB__LAYERS];
    running[k] = v[IOB__OK];
    failed[k] = v[IOB__FAILED] + v[IOB__CANCELLED];
    queued[k] = v[IOB__QUEUED];
    if (running[k] + failed[k] + queued[k] > peak)
      peak = running[k] + failed[k] + queued[k];
  }
  /* Rounded up, but a mean of 100000.0000001 is 100000. */
  double tolerant = peak * (1 - 1e-9);
  uint64_t top_count =
      (uint64_t)tolerant + ((double)(uint64_t)tolerant < tolerant);
  if (top_count == 0)
    top_count = 1;
  uint64_t step = iob__nice_step(top_count, 4);
  uint64_t max = (top_count + step - 1) / step * step;
  count_ticks(s->out, top, height, max, step);
  memset(below, 0, sizeof(below));
  area_layer(s, "running", AREA_FILL, below, running, top, height, (double)max);
  for (size_t k = 0; k < SLICES; k++)
    below[k] = running[k];
  area_layer(s, "failed", FAILED_FILL, below, failed, top, height, (double)max);
  for (size_t k = 0; k < SLICES; k++)
    below[k] += failed[k];
  area_layer(s, "queued", QUEUED_FILL, below, queued, top, height, (double)max);
}

/* Why a large batch has no bars, and how to read what it has. */
static void area_note(const svg *s, double y) {
  char ms[32];
  iob__format_ms(ms, sizeof(ms), s->span / SLICES);
  fprintf(s->out,
          "<text x=\"16\" y=\"%s\" font-size=\"12\" "
          "fill=\"#555555\">Too many operations to draw one by one: the "
          "height is the mean number in flight in each %s.</text>\n",
          px(y).s, ms);
}

static double write_section(const svg *s, size_t k, double y) {
  const iob_batch *b = s->batches[k];
  char caption[IOB__TEXT_MAX];
  iob__caption(caption, sizeof(caption), b, &s->reports[k], "\xe2\x80\x94");
  fprintf(s->out,
          "<text class=\"caption\" x=\"16\" y=\"%s\" font-size=\"13\" "
          "font-weight=\"bold\">",
          px(y + 17).s);
  put_text(s->out, caption);
  fputs("</text>\n", s->out);
  if (!drawn_as_bars(b))
    area_note(s, y + 17 + NOTE_H);

  double top = y + caption_height(b);
  double bottom = y + section_height(b) - SECTION_GAP;
  fprintf(s->out,
          "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" "
          "fill=\"#f5f6f8\"/>\n",
          px(LEFT).s, px(top).s, px(PLOT_W).s, px(bottom - top).s);
  write_grid(s, top, bottom);
  if (drawn_as_bars(b))
    write_bars(s, b, top);
  else
    write_area(s, b, top);
  end_marker(s, &s->reports[k], top, bottom);
  return bottom + SECTION_GAP;
}

/* ---- the picture ------------------------------------------------------- */

static void write_svg(const svg *s, const char *title) {
  /* queued, loop, threads, area, failed, cancelled */
  legend_item items[6 + THREAD_FILLS];
  size_t nitems = legend_items(s, items);
  double legend_h = legend(NULL, items, nitems, 0);
  double sections = 0;
  for (size_t k = 0; k < s->n; k++)
    sections += section_height(s->batches[k]);
  double height = HEADER_H + legend_h + 8 + sections + AXIS_H;

  fprintf(s->out,
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%s\" "
          "height=\"%s\" viewBox=\"0 0 %s %s\" font-family=\"sans-serif\">\n"
          "<defs><pattern id=\"iob-queued\" width=\"6\" height=\"6\" "
          "patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">"
          "<rect width=\"6\" height=\"6\" fill=\"#e4e4e4\"/>"
          "<rect width=\"2\" height=\"6\" fill=\"#a8a8a8\"/></pattern></defs>\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
          px(WIDTH).s, px(height).s, px(WIDTH).s, px(height).s);
  write_header(s, title);
  legend(s->out, items, nitems, HEADER_H);
  double y = HEADER_H + legend_h + 8;
  for (size_t k = 0; k < s->n; k++)
    y = write_section(s, k, y);
  write_axis(s, y - SECTION_GAP + 4);
  fputs("</svg>\n", s->out);
}

int iob_export_svg(FILE *out, const iob_batch *const *batches, size_t nbatches,
                   const char *title) {
  int err = iob__export_check(out, batches, nbatches);
  if (err != 0)
    return err;
  svg s = {.out = out, .batches = batches, .n = nbatches};
  iob_report *reports = calloc(nbatches, sizeof(*reports));
  s.slices = malloc((SLICES + 1) * IOB__LAYERS * sizeof(*s.slices));
  err = reports && s.slices ? 0 : IOB_ENOMEM;
  if (err == 0)
    err = iob__export_reports(batches, nbatches, reports);
  if (err == 0)
    err = survey(&s);
  if (err == 0) {
    s.reports = reports;
    s.span = iob__export_span(batches, nbatches);
    s.step = iob__nice_step(s.span, 12);
    s.px_per_ns = PLOT_W / (double)s.span;
    write_svg(&s, title);
    err = iob__export_flush(out);
  }
  free(s.thread_ids);
  free(s.slices);
  free(reports);
  return err;
}
