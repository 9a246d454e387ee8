/* What runs whose operations arrived at a rate (--arrival-rate) show:
 * the lesson, the table and the picture of p99 against rate. arrivals.c
 * submits the operations. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "compare.h"

/* ---- what the runs show ---------------------------------------------- */

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* How many operations the style holds in flight at once in this run, or
 * 0 for as many as arrive: one for sequential, the pool's threads, the
 * workers' threads; then --limit. */
static uint32_t slots_of(const compare_opts *o, const compare_result *r) {
  uint32_t n = 0;
  if (r->style == &iob_style_sequential)
    n = 1;
  else if (r->style == &iob_style_pool)
    n = iob_pool_size();
  else if (r->style == &iob_style_workers)
    n = r->report.threads;
  if (o->limit != 0 && (n == 0 || o->limit < n))
    n = o->limit;
  return n;
}

/* Did operations of d ms keep up: a p99 of at most d and a quarter, plus
 * 5 ms for a busy machine's scheduling? */
static bool kept_up(const compare_result *r, uint64_t d_ms) {
  return r->latency_known &&
         ms(r->latency.total.p99_ns) <= 1.25 * (double)d_ms + 5;
}

/* Why a style holding `slots` at once falls behind, in words: "its 4
 * threads finish at most 4 / 0.1 s = 40 operations a second". */
static void holders(const compare_opts *o, uint32_t slots, uint64_t d_ms,
                    char *out, size_t size) {
  char who[64];
  if (o->limit != 0 && slots == o->limit)
    snprintf(who, sizeof(who),
             "with at most %" PRIu32 " in flight (--limit), it", slots);
  else if (slots == 1)
    snprintf(who, sizeof(who), "one at a time, it");
  else
    snprintf(who, sizeof(who), "its %" PRIu32 " threads", slots);
  snprintf(out, size,
           "%s %s at most %" PRIu32 " / %g s = %g operations a "
           "second",
           who, slots == 1 || strchr(who, ',') ? "finishes" : "finish", slots,
           (double)d_ms / 1000, slots * 1000.0 / (double)d_ms);
}

void compare_arrive_lesson(const compare_opts *o, const compare_result *r,
                           int n, char *text, size_t size) {
  int nstyles = o->nstyles < n ? o->nstyles : n, len = 0, nrates = n / nstyles;
  uint64_t d = r[0].config.duration_ms; /* 0 for files */
  bool waits = !cli_kind_blocks(r[0].report.kind) && d > 0;
  bool behind = false;
  text[0] = '\0';
  if (d == 0) { /* nothing to keep up with: each takes what it takes */
    for (int s = 0; s < nstyles && len < (int)size; s++) {
      const compare_result *at = &r[(nrates - 1) * nstyles + s];
      len += snprintf(text + len, size - (size_t)len,
                      "%sThe %s style's p99 was %.0f ms at %g a second.",
                      len ? " " : "", iob_style_name(at->style),
                      at->latency_known ? ms(at->latency.total.p99_ns) : 0,
                      at->arrival_rate);
    }
    return;
  }
  for (int s = 0; s < nstyles && len < (int)size; s++) {
    int first_behind = -1;
    for (int q = 0; q < nrates && first_behind < 0; q++)
      if (!kept_up(&r[q * nstyles + s], d))
        first_behind = q;
    const compare_result *at =
        &r[(first_behind < 0 ? nrates - 1 : first_behind) * nstyles + s];
    const char *name = iob_style_name(at->style);
    double p99 = at->latency_known ? ms(at->latency.total.p99_ns) : 0;
    if (first_behind < 0) {
      len += snprintf(text + len, size - (size_t)len,
                      "%sThe %s style kept up%s (p99 %.0f ms at %g a "
                      "second).",
                      len ? " " : "", name, nrates > 1 ? " at every rate" : "",
                      p99, at->arrival_rate);
      continue;
    }
    behind = true;
    if (first_behind > 0)
      len += snprintf(text + len, size - (size_t)len,
                      "%sThe %s style kept up to %g a second and fell "
                      "behind at %g (p99 %.0f ms)",
                      len ? " " : "", name,
                      r[(first_behind - 1) * nstyles + s].arrival_rate,
                      at->arrival_rate, p99);
    else
      len += snprintf(text + len, size - (size_t)len,
                      "%sThe %s style fell behind at %g a second (p99 %.0f "
                      "ms)",
                      len ? " " : "", name, at->arrival_rate, p99);
    uint32_t slots = slots_of(o, at);
    char why[160];
    holders(o, slots, d, why, sizeof(why));
    if (len >= (int)size)
      break;
    if (waits && slots > 0)
      len += snprintf(text + len, size - (size_t)len, ": %s.", why);
    else
      len += snprintf(text + len, size - (size_t)len, ".");
  }
  if (behind && waits && len < (int)size)
    snprintf(text + len, size - (size_t)len,
             " Little's law says why: with R operations arriving a second, "
             "each taking W seconds, R x W are in flight on average, so a "
             "style that holds at most N at once keeps up only while R is "
             "below N / W. Past that the rest queue, and the queue, and with "
             "it each later operation's latency, grows for as long as they "
             "arrive faster. An event loop holds any number of waits with "
             "one thread.");
}

void compare_arrive_table(const compare_opts *o, const compare_result *r,
                          int n) {
  int nstyles = o->nstyles < n ? o->nstyles : n;
  compare_out("%-10s", "rate/s");
  for (int s = 0; s < nstyles; s++)
    compare_out(" %10s", iob_style_name(r[s].style));
  compare_out("\n");
  for (int q = 0; q * nstyles < n; q++) {
    compare_out("%-10g", r[q * nstyles].arrival_rate);
    for (int s = 0; s < nstyles; s++) {
      const compare_result *c = &r[q * nstyles + s];
      if (c->latency_known)
        compare_out(" %7.0f ms", ms(c->latency.total.p99_ns));
      else
        compare_out(" %10s", "-");
    }
    compare_out("\n");
  }
}

/* ---- p99 against rate, as a picture ----------------------------------- */

/* Write `text` with <, > and & escaped. */
static void put_escaped(FILE *f, const char *text) {
  for (; *text != '\0'; text++)
    if (*text == '<')
      fputs("&lt;", f);
    else if (*text == '>')
      fputs("&gt;", f);
    else if (*text == '&')
      fputs("&amp;", f);
    else
      fputc(*text, f);
}

enum { W = 760, H = 460, LEFT = 90, RIGHT = 130, TOP = 64, BOTTOM = 60 };

int compare_arrive_svg(FILE *f, const compare_opts *o, const compare_result *r,
                       int n, const char *title) {
  static const char *const colors[] = {"#1b6ac9", "#d1495b", "#2e933c",
                                       "#edae49", "#7b4b94", "#00798c"};
  int nstyles = o->nstyles < n ? o->nstyles : n;
  double top_rate = 0, lo = 1e300, hi = 0;
  for (int k = 0; k < n; k++) {
    top_rate = r[k].arrival_rate > top_rate ? r[k].arrival_rate : top_rate;
    if (!r[k].latency_known)
      continue;
    double p = ms(r[k].latency.total.p99_ns);
    p = p < 0.01 ? 0.01 : p;
    lo = p < lo ? p : lo;
    hi = p > hi ? p : hi;
  }
  if (hi == 0) /* nothing measured: an empty frame */
    lo = 1, hi = 10;
  /* A log scale, a little wider than what was measured: the loop's
   * 100 ms and a queue's seconds both show. */
  double y0 = log10(lo) - 0.1, y1 = log10(hi) + 0.1;
  if (y1 - y0 < 1)
    y1 = y0 + 1;
  double pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
#define X(rate) (LEFT + (rate) / top_rate * pw)
#define Y(v) (TOP + ph - (log10(v) - y0) / (y1 - y0) * ph)
  fprintf(f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
          "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
          "font-size=\"12\">\n<title>",
          W, H, W, H);
  put_escaped(f, title);
  fprintf(f, "</title>\n<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W,
          H);
  /* The title on two lines, broken at the last space that fits. */
  size_t len = strlen(title), cut = len;
  if (len > 95)
    for (cut = 95; cut > 0 && title[cut] != ' '; cut--)
      ;
  char first[128];
  snprintf(first, sizeof(first), "%.*s", (int)(cut ? cut : len), title);
  fputs("<text x=\"20\" y=\"24\" font-size=\"14\">", f);
  put_escaped(f, first);
  fputs("</text>\n<text x=\"20\" y=\"42\" font-size=\"14\">", f);
  put_escaped(f, cut && cut < len ? title + cut + 1 : "");
  fputs("</text>\n", f);
  /* Grid lines at 1, 2 and 5 times each power of ten in range. */
  for (double e = floor(y0); e <= y1; e++)
    for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
      double v = (double)m * pow(10, e);
      if (log10(v) < y0 || log10(v) > y1)
        continue;
      fprintf(f,
              "<line class=\"grid\" x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" "
              "y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" "
              "text-anchor=\"end\">%g ms</text>\n",
              LEFT, LEFT + pw, Y(v), Y(v), LEFT - 6, Y(v) + 4, v);
    }
  for (int q = 0; q * nstyles < n; q++)
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
            X(r[q * nstyles].arrival_rate), TOP + ph + 18,
            r[q * nstyles].arrival_rate);
  fprintf(f,
          "<line x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
          "stroke=\"black\"/>\n<text x=\"%.1f\" y=\"%d\" "
          "text-anchor=\"middle\">operations arriving a second</text>\n"
          "<text transform=\"translate(22 %.1f) rotate(-90)\" "
          "text-anchor=\"middle\">p99 latency, from arrival to end "
          "(log scale)</text>\n",
          LEFT, LEFT + pw, TOP + ph, TOP + ph, LEFT + pw / 2, H - 16,
          TOP + ph / 2);
  for (int s = 0; s < nstyles; s++) {
    const char *color = colors[s % 6];
    /* Two styles of one capacity (the pool and the workers) draw one
     * line, and both must show: each line is thinner than the one under
     * it, and every other one dashed. */
    const char *dash = s % 2 ? " stroke-dasharray=\"6 4\"" : "";
    fprintf(f,
            "<g class=\"style\" data-style=\"%s\">\n<polyline fill=\"none\" "
            "stroke=\"%s\" stroke-width=\"%.1f\"%s points=\"",
            iob_style_name(r[s].style), color, 1.5 + 1.5 * (nstyles - 1 - s),
            dash);
    for (int k = s; k < n; k += nstyles)
      if (r[k].latency_known)
        fprintf(f, "%.1f,%.1f ", X(r[k].arrival_rate),
                Y(fmax(ms(r[k].latency.total.p99_ns), 0.01)));
    fputs("\"/>\n", f);
    for (int k = s; k < n; k += nstyles)
      if (r[k].latency_known)
        fprintf(f,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\">"
                "<title>%s at %g a second: p99 %.1f ms</title></circle>\n",
                X(r[k].arrival_rate),
                Y(fmax(ms(r[k].latency.total.p99_ns), 0.01)), color,
                iob_style_name(r[k].style), r[k].arrival_rate,
                ms(r[k].latency.total.p99_ns));
    fprintf(f,
            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" "
            "stroke-width=\"2\"%s/><text x=\"%.1f\" y=\"%d\">%s</text>\n</g>\n",
            LEFT + pw + 16, LEFT + pw + 40, TOP + 10 + 20 * s,
            TOP + 10 + 20 * s, color, dash, LEFT + pw + 46, TOP + 14 + 20 * s,
            iob_style_name(r[s].style));
  }
#undef X
#undef Y
  fputs("</svg>\n", f);
  return fflush(f) != 0 || ferror(f) ? IOB_EIO : 0;
}
