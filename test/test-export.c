/* Timelines: the SVG picture, the trace and the terminal chart draw every
 * operation once, with its own times, in files that parse; bad input and
 * broken streams give clear errors. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#include "export.h"

#define OPS 5

/* One finished batch of OPS waits of 5 ms in every style (n of them, in
 * the order iob_style_at() lists them), shared by the tests that only
 * read them. */
typedef struct fixture {
  size_t n;
  size_t pool; /* the pool's batch */
  iob_batch *own[STYLES_MAX];
  const iob_batch *batches[STYLES_MAX];
} fixture;

static int run_every_style(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  if (f == NULL)
    return -1;
  const iob_style *style;
  for (size_t k = 0; k < STYLES_MAX && (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, OPS, 5);
    if (iob_run(&f->own[k], &c) != 0)
      return -1;
    f->batches[k] = f->own[k];
    if (style == &iob_style_pool)
      f->pool = k;
    f->n++;
  }
  *state = f;
  return 0;
}

static int free_every_style(void **state) {
  fixture *f = *state;
  for (size_t k = 0; k < f->n; k++)
    iob_batch_free(f->own[k]);
  free(f);
  return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static iob_batch *run_batch(const iob_style *style, uint32_t count,
                            uint64_t ms) {
  iob_config config = config_of(style, count, ms);
  iob_batch *b = NULL;
  assert_code(iob_run(&b, &config), 0);
  return b;
}

/* An exporter's output, in memory. */
typedef struct capture {
  FILE *stream;
  char *text;
  size_t size;
} capture;

static FILE *capture_start(capture *c) {
  *c = (capture){0};
  c->stream = open_memstream(&c->text, &c->size);
  assert_non_null(c->stream);
  return c->stream;
}

static char *capture_end(capture *c) {
  assert_int_equal(fclose(c->stream), 0);
  return c->text;
}

static size_t count_of(const char *text, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(text, needle); p != NULL;
       p = strstr(p + 1, needle))
    n++;
  return n;
}

static bool have_tool(const char *name) {
  char command[128];
  snprintf(command, sizeof(command), "command -v %s >/dev/null 2>&1", name);
  return system(command) == 0;
}

/* Run `tool` with a file holding text as its last argument: its exit
 * status, or -1 if the file could not be written. */
static int check_with(const char *tool, const char *text) {
  char path[] = "/tmp/iobound-export-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0)
    return -1;
  size_t len = strlen(text);
  bool written = write(fd, text, len) == (ssize_t)len;
  close(fd);
  char command[256];
  snprintf(command, sizeof(command), "%s %s >/dev/null 2>&1", tool, path);
  int status = written ? system(command) : -1;
  unlink(path);
  return status;
}

/* A name: what may follow '<' or '</', up to the first space, '/' or '>'. */
static size_t name_length(const char *s) { return strcspn(s, " \t\n/>=\"'"); }

/* "&amp;" and the other four, or a character reference. */
static bool entity_ok(const char *s) {
  static const char *const known[] = {"&amp;", "&lt;", "&gt;", "&quot;",
                                      "&apos;"};
  for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
    if (strncmp(s, known[k], strlen(known[k])) == 0)
      return true;
  return s[1] == '#' && strchr(s, ';') != NULL;
}

/* Attributes up to the end of a start tag: name="value" pairs with no '<'
 * and no bare '&' in the values. Returns the '>' or "/>", or NULL. */
static const char *skip_attributes(const char *p) {
  for (;;) {
    p += strspn(p, " \t\n");
    if (*p == '>' || (p[0] == '/' && p[1] == '>'))
      return p;
    size_t len = name_length(p);
    if (len == 0 || p[len] != '=' || (p[len + 1] != '"' && p[len + 1] != '\''))
      return NULL;
    char quote = p[len + 1];
    for (p += len + 2; *p != quote; p++)
      if (*p == 0 || *p == '<' || (*p == '&' && !entity_ok(p)))
        return NULL;
    p++;
  }
}

/* A small XML well-formedness check, so the test holds where xmllint is
 * not installed: one root, tags that nest and close, quoted attributes,
 * escaped text. Enough for what the exporter writes. */
static bool well_formed(const char *s) {
  const char *open[32];
  size_t depth = 0, roots = 0;
  if (strncmp(s, "<?xml ", 6) == 0)
    s = strstr(s, "?>") + 2;
  while (*s != 0) {
    if (*s == '&' && !entity_ok(s))
      return false;
    if (*s != '<') {
      if (depth == 0 && strchr(" \t\n", *s) == NULL)
        return false; /* text outside the root */
      s++;
      continue;
    }
    if (s[1] == '/') {
      size_t len = name_length(s + 2);
      if (depth == 0 || strncmp(open[depth - 1], s + 2, len) != 0 ||
          name_length(open[depth - 1]) != len || s[2 + len] != '>')
        return false;
      depth--;
      s += 3 + len;
      continue;
    }
    const char *end = skip_attributes(s + 1 + name_length(s + 1));
    if (name_length(s + 1) == 0 || end == NULL || depth == 32)
      return false;
    if (depth == 0 && roots++ > 0)
      return false;
    if (*end == '>')
      open[depth++] = s + 1;
    s = end + (*end == '>' ? 1 : 2);
  }
  return depth == 0 && roots == 1;
}

static void assert_valid_svg(const char *svg) {
  assert_true(well_formed(svg));
  if (have_tool("xmllint"))
    assert_int_equal(check_with("xmllint --noout", svg), 0);
}

static void assert_valid_json(const char *json) {
  if (have_tool("python3"))
    assert_int_equal(check_with("python3 -m json.tool", json), 0);
  else if (have_tool("jq"))
    assert_int_equal(check_with("jq -e .", json), 0);
  else
    print_message("neither python3 nor jq: JSON not parsed\n");
}

static bool lines_fit(const char *text, size_t width) {
  for (const char *line = text; *line != 0;) {
    size_t len = strcspn(line, "\n");
    if (len > width)
      return false;
    line += len + (line[len] == '\n');
  }
  return true;
}

static void assert_all_refused(int err, const iob_batch *const *batches,
                               size_t n) {
  capture c;
  FILE *out = capture_start(&c);
  assert_int_equal(iob_export_svg(out, batches, n, NULL), err);
  assert_int_equal(iob_export_trace(out, batches, n), err);
  assert_int_equal(iob_export_chart(out, batches, n, 0), err);
  assert_int_equal(strlen(capture_end(&c)), 0); /* nothing written */
  free(c.text);
}

/* ---- the SVG picture ---------------------------------------------------- */

static void svg_draws_one_bar_and_one_label_per_operation(void **state) {
  fixture *f = *state;
  capture c;
  assert_code(iob_export_svg(capture_start(&c), f->batches, f->n, "Five waits"),
              0);
  char *svg = capture_end(&c);
  assert_valid_svg(svg);
  assert_int_equal(count_of(svg, "class=\"op "), OPS * f->n);
  assert_int_equal(count_of(svg, "class=\"op ok\""), OPS * f->n);
  assert_int_equal(count_of(svg, "class=\"op-label\""), OPS * f->n);
  assert_int_equal(count_of(svg, "<title>op "), OPS * f->n);
  assert_int_equal(count_of(svg, "class=\"caption\""), f->n);
  assert_int_equal(count_of(svg, ">time (ms)</text>"), 1);
  assert_non_null(strstr(svg, ">Five waits</text>"));
  for (size_t k = 0; k < f->n; k++) {
    char caption[64];
    snprintf(caption, sizeof(caption), ">%s: 5 operations of 5 ms, ",
             iob_style_name(iob_style_at(k)));
    assert_int_equal(count_of(svg, caption), 1);
  }
  /* No aggregate for batches this small. */
  assert_null(strstr(svg, "in-flight"));
  free(svg);
}

static void
svg_hatches_queued_time_only_where_an_operation_waited(void **state) {
  const iob_record waited = {0, 1000000, 3000000, 0, 1};
  const iob_record at_once = {1000000, 1000000, 3000000, 0, 0};
  iob__svg_row row = {100, 1e-4, 10, 18, "#123456", NULL, NULL, 0};
  capture c;
  FILE *out = capture_start(&c);
  iob__svg_op(out, &row, 0, &waited);
  iob__svg_op(out, &row, 1, &at_once);
  char *svg = capture_end(&c);
  /* 1 ms queued is 100 px, from x = 100 to the run's start. */
  assert_int_equal(count_of(svg, "<rect class=\"queued\""), 1);
  assert_non_null(strstr(svg, "<rect class=\"queued\" x=\"100.0\" y=\"12.5\" "
                              "width=\"100.0\" height=\"13.0\""));
  free(svg);

  /* In a real run, only operations that waited can have one. */
  fixture *f = *state;
  size_t waiting = 0;
  for (size_t k = 0; k < f->n; k++)
    for (uint32_t i = 0; i < OPS; i++) {
      iob_record r = iob__drawn(&iob_batch_records(f->batches[k], NULL)[i],
                                iob__waits_for_slot(f->batches[k]));
      waiting += r.started_ns > r.queued_ns;
    }
  assert_code(iob_export_svg(capture_start(&c), f->batches, f->n, NULL), 0);
  svg = capture_end(&c);
  assert_cmp(count_of(svg, "<rect class=\"queued\""), <=, waiting);
  free(svg);
}

/* Thread numbers only grow in a process: after millions of threads a
 * picture still costs what its own bars do, and the report too. */
static void thread_numbers_near_the_top_cost_what_the_batch_does(void **s) {
  fixture *f = *s;
  iob_batch *b = f->own[f->pool];
  uint32_t saved[OPS];
  for (uint32_t i = 0; i < OPS; i++) {
    saved[i] = b->records[i].worker;
    b->records[i].worker = UINT32_MAX - i % 3; /* three threads, very late */
  }
  const iob_batch *one[] = {b};
  capture c;
  assert_code(iob_export_svg(capture_start(&c), one, 1, NULL), 0);
  char *svg = capture_end(&c);
  assert_valid_svg(svg);
  assert_non_null(strstr(svg, "ran on thread 4294967295"));
  free(svg);
  iob_report r;
  atomic_store(&b->peak_known, 0);
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.workers_used, 3);
  for (uint32_t i = 0; i < OPS; i++)
    b->records[i].worker = saved[i];
}

static void svg_escapes_any_title(void **state) {
  fixture *f = *state;
  capture c;
  const char *title = "<b>\"R&D\"</b> caf\xc3\xa9\x01 \xff\xc3";
  assert_code(iob_export_svg(capture_start(&c), f->batches, 1, title), 0);
  char *svg = capture_end(&c);
  assert_valid_svg(svg);
  assert_non_null(strstr(svg,
                         "&lt;b&gt;&quot;R&amp;D&quot;&lt;/b&gt; caf\xc3\xa9  "
                         "\xef\xbf\xbd\xef\xbf\xbd</text>"));
  free(svg);
}

static void svg_without_a_title_names_what_ran(void **state) {
  fixture *f = *state;
  capture c;
  assert_code(iob_export_svg(capture_start(&c), f->batches, f->n, NULL), 0);
  char *svg = capture_end(&c);
  assert_non_null(strstr(svg, ">Timeline of 5 operations of 5 ms</text>"));
  free(svg);
}

static void svg_of_a_large_batch_is_aggregated_and_stays_small(void **s) {
  iob_batch *large = run_batch(&iob_style_loop, 5000, 0);
  fixture *f = *s;
  const iob_batch *batches[] = {large, f->batches[f->pool]};
  capture c;
  assert_code(iob_export_svg(capture_start(&c), batches, 2, NULL), 0);
  char *svg = capture_end(&c);
  assert_valid_svg(svg);
  assert_cmp(c.size, <, 200 * 1024);
  /* The small batch keeps its bars; the large one is an area. */
  assert_int_equal(count_of(svg, "class=\"op "), OPS);
  assert_int_equal(count_of(svg, "class=\"in-flight running\""), 1);
  assert_non_null(strstr(svg, "Too many operations to draw one by one"));
  assert_non_null(strstr(svg, ">Timeline of 2 batches</text>"));
  free(svg);
  assert_code(iob_batch_free(large), 0);
}

/* ---- the trace ---------------------------------------------------------- */

typedef struct trace_event {
  unsigned pid, tid;
  uint64_t ts_ns, dur_ns;
  char name[64];
} trace_event;

/* A complete event of category `cat` on one line of the trace, or false. */
static bool parse_complete(const char *line, const char *cat, trace_event *e) {
  uint64_t ts_us, dur_us;
  unsigned ts_frac, dur_frac;
  int used = 0;
  if (sscanf(line,
             "{\"ph\":\"X\",\"pid\":%u,\"tid\":%u,\"ts\":%" SCNu64
             ".%3u,\"dur\":%" SCNu64 ".%3u,\"name\":\"%63[^\"]\",%n",
             &e->pid, &e->tid, &ts_us, &ts_frac, &dur_us, &dur_frac, e->name,
             &used) != 7 ||
      used == 0)
    return false;
  char want[32];
  snprintf(want, sizeof(want), "\"cat\":\"%s\"", cat);
  if (strncmp(line + used, want, strlen(want)) != 0)
    return false;
  e->ts_ns = ts_us * 1000 + ts_frac;
  e->dur_ns = dur_us * 1000 + dur_frac;
  return true;
}

static void trace_has_one_run_per_operation_with_its_own_times(void **s) {
  fixture *f = *s;
  capture c;
  assert_code(iob_export_trace(capture_start(&c), f->batches, f->n), 0);
  char *json = capture_end(&c);
  assert_valid_json(json);
  size_t runs = 0, queued = 0, waited = 0;
  for (char *line = strtok(json, "\n"); line != NULL;
       line = strtok(NULL, "\n")) {
    trace_event e;
    if (parse_complete(line, "queued", &e)) {
      queued++;
      continue;
    }
    if (!parse_complete(line, "run", &e))
      continue;
    runs++;
    /* Process = batch, track = operation + 1, times exact to the ns. */
    assert_in_range(e.pid, 1, f->n);
    assert_in_range(e.tid, 1, OPS);
    const iob_record *r =
        &iob_batch_records(f->batches[e.pid - 1], NULL)[e.tid - 1];
    assert_int_equal(e.ts_ns, r->started_ns);
    assert_int_equal(e.dur_ns, r->finished_ns - r->started_ns);
    assert_cmp(strncmp(e.name, "run on ", 7), ==, 0);
  }
  for (size_t k = 0; k < f->n; k++)
    for (uint32_t i = 0; i < OPS; i++) {
      iob_record r = iob__drawn(&iob_batch_records(f->batches[k], NULL)[i],
                                iob__waits_for_slot(f->batches[k]));
      waited += r.started_ns > r.queued_ns;
    }
  assert_int_equal(runs, OPS * f->n);
  assert_int_equal(queued, waited);
  free(json);
}

/* Under max_in_flight an operation waits for a slot from the batch's
 * start, when every operation was asked for, until one frees: that wait
 * is drawn as queued time in all three pictures, though the record's
 * queued_ns is when the operation was handed to its style. */
static void the_wait_for_a_slot_under_a_limit_is_drawn(void **state) {
  iob_config c = config_of(&iob_style_loop, 4, 50);
  c.max_in_flight = 1;
  iob_batch *b = run_on_own_loop(&c, NULL);
  const iob_record *r = iob_batch_records(b, NULL);
  assert_cmp(r[3].queued_ns, >=, 150 * 1000000); /* handed over late */
  const iob_batch *one[] = {b};
  capture cap;
  assert_code(iob_export_svg(capture_start(&cap), one, 1, NULL), 0);
  char *svg = capture_end(&cap);
  /* Operations 1 to 3 waited 50, 100 and 150 ms, from x = the axis;
   * operation 0 waited only for its launch, which a slow build (a
   * sanitizer's) may draw as a sliver. */
  assert_in_range(count_of(svg, "<rect class=\"queued\""), 3, 4);
  /* About 150 ms: three waits of 50, each of whose timers counts whole
   * loop milliseconds and may end one early by the records' clock. */
  const char *said = strstr(svg, "op 3: queued for ");
  assert_non_null(said);
  double ms = strtod(said + strlen("op 3: queued for "), NULL);
  if (ms < 146 || ms > 1000)
    fail_msg("op 3 drawn as queued for %.1f ms, not about 150", ms);
  free(svg);
  assert_code(iob_export_chart(capture_start(&cap), one, 1, 60), 0);
  char *chart = capture_end(&cap);
  /* Operation 3's row: waiting ('.') from the first column. */
  const char *row = strstr(chart, "op 3");
  assert_non_null(row);
  assert_non_null(strstr(row, "|..."));
  free(chart);
  assert_code(iob_export_trace(capture_start(&cap), one, 1), 0);
  char *json = capture_end(&cap);
  size_t queued = 0;
  bool op3 = false;
  for (char *line = strtok(json, "\n"); line != NULL;
       line = strtok(NULL, "\n")) {
    trace_event e;
    if (!parse_complete(line, "queued", &e))
      continue;
    queued++; /* operation 0 too, if its launch took a nanosecond */
    assert_int_equal(e.ts_ns, 0); /* from the batch's start */
    if (e.tid == 4) {             /* operation 3 */
      op3 = true;
      assert_cmp(e.dur_ns, >=, 150 * 1000000);
    }
  }
  assert_true(op3 && queued >= 3);
  free(json);
  iob_batch_free(b);
}

static int no_wait_run(iob_op *op) { return op->index == 2 ? UV_EPIPE : 0; }

static const iob_kind query_kind = {.name = "query", .run = no_wait_run};

/* A caption says what ran: a kind other than waits by its name, with no
 * "of 0 ms" when it has no duration; the application's label beside the
 * style; and a chart row names no thread 0 for an operation that never
 * had a thread (cancelled while queued on the pool). */
static void captions_name_the_kind_and_the_label(void **state) {
  iob_config c = config_of(&iob_style_loop, 5, 0);
  c.kind = &query_kind;
  c.label = "nightly import";
  iob_batch *b = run_on_own_loop(&c, NULL);
  const iob_batch *one[] = {b};
  capture cap;
  assert_code(iob_export_chart(capture_start(&cap), one, 1, 100), 0);
  char *chart = capture_end(&cap);
  assert_non_null(strstr(chart, "loop (nightly import): 5 query operations,"));
  assert_null(strstr(chart, "0 ms,"));
  free(chart);
  assert_code(iob_export_svg(capture_start(&cap), one, 1, NULL), 0);
  char *svg = capture_end(&cap);
  assert_non_null(strstr(svg, ">loop (nightly import): 5 query operations"));
  free(svg);
  iob_batch_free(b);

  /* What the one who asked for each waited: 8 waits of 100 ms, 4 at a
   * time, half in a second round (the p99 of their times in all). */
  c = config_of(&iob_style_loop, 8, 100);
  c.max_in_flight = 4;
  b = run_on_own_loop(&c, NULL);
  one[0] = b;
  assert_code(iob_export_chart(capture_start(&cap), one, 1, 200), 0);
  chart = capture_end(&cap);
  char *took = strstr(chart, "; half took ");
  assert_non_null(took);
  double p50, p99;
  assert_int_equal(
      sscanf(took, "; half took %lf ms or less, 99%% %lf ms", &p50, &p99), 2);
  test_assert_ms("the p50 in the caption", p50, 99, 400, __FILE__, __LINE__);
  test_assert_ms("the p99 in the caption", p99, 198, 800, __FILE__, __LINE__);
  free(chart);
  iob_batch_free(b);

  c = config_of(&iob_style_pool, 8, 200);
  c.max_in_flight = 8;
  /* libuv's pool runs 4: four wait on its queue, and are taken off it. */
  b = run_cancelled_after(&c, 50);
  one[0] = b;
  assert_code(iob_export_chart(capture_start(&cap), one, 1, 100), 0);
  chart = capture_end(&cap);
  assert_null(strstr(chart, " t0 "));
  free(chart);
  iob_batch_free(b);
}

static void
trace_names_a_process_per_batch_and_a_track_per_operation(void **state) {
  fixture *f = *state;
  capture c;
  assert_code(iob_export_trace(capture_start(&c), f->batches, f->n), 0);
  char *json = capture_end(&c);
  assert_int_equal(count_of(json, "\"name\":\"process_name\""), f->n);
  assert_int_equal(count_of(json, "\"name\":\"thread_name\""), OPS * f->n);
  assert_non_null(strstr(json, "\"args\":{\"name\":\"pool: 5 operations"));
  assert_cmp(count_of(json, "\"ph\":\"C\""), >=, f->n);
  free(json);
}

/* Above IOB_TRACE_OPS_MAX operations, one in every K has a track, the
 * counter still counts all, and the file says it was sampled; below, every
 * operation has one and the file says it was not. */
static void a_large_batch_is_sampled_in_the_trace_and_says_so(void **state) {
  iob_config c = config_of(&iob_style_loop, 25000, 1);
  iob_batch *b = run_on_own_loop(&c, NULL);
  const iob_batch *one[] = {b};
  capture cap;
  assert_code(iob_export_trace(capture_start(&cap), one, 1), 0);
  char *json = capture_end(&cap);
  assert_non_null(strstr(json, "\"sampled\":true"));
  assert_non_null(strstr(json, "\"labels\":\"sampled: a track for 1 "
                               "operation in 3 (operations 0, 3, 6...)"));
  assert_non_null(strstr(json, "counts all 25000"));
  assert_int_equal(count_of(json, "\"name\":\"run on "), (25000 + 2) / 3);
  assert_cmp(strlen(json), <, 8 * 1024 * 1024);
  free(json);
  iob_batch_free(b);

  c = config_of(&iob_style_loop, 10, 1);
  b = run_on_own_loop(&c, NULL);
  one[0] = b;
  assert_code(iob_export_trace(capture_start(&cap), one, 1), 0);
  json = capture_end(&cap);
  assert_non_null(strstr(json, "\"sampled\":false"));
  assert_null(strstr(json, "process_labels"));
  assert_int_equal(count_of(json, "\"name\":\"run on "), 10);
  free(json);
  iob_batch_free(b);
}

static void trace_of_a_single_operation_is_complete(void **state) {
  iob_batch *one = run_batch(&iob_style_pool, 1, 1);
  const iob_batch *batches[] = {one};
  capture c;
  assert_code(iob_export_trace(capture_start(&c), batches, 1), 0);
  char *json = capture_end(&c);
  assert_valid_json(json);
  assert_int_equal(count_of(json, "\"cat\":\"run\""), 1);
  assert_non_null(strstr(json, "\"name\":\"op 0\""));
  free(json);
  assert_code(iob_batch_free(one), 0);
}

/* ---- the terminal chart ------------------------------------------------- */

static void chart_has_a_row_per_operation_within_the_width(void **state) {
  fixture *f = *state;
  capture c;
  assert_code(iob_export_chart(capture_start(&c), f->batches, f->n, 60), 0);
  char *text = capture_end(&c);
  assert_true(lines_fit(text, 60));
  assert_int_equal(count_of(text, "\n  op "), OPS * f->n);
  assert_int_equal(count_of(text, "\n  time (ms) +"), f->n);
  for (const char *p = text; *p != 0; p++)
    assert_true(*p == '\n' || (*p >= ' ' && *p < 0x7f)); /* plain ASCII */
  /* Every row shows its run. */
  for (const char *row = strstr(text, "\n  op "); row != NULL;
       row = strstr(row + 1, "\n  op ")) {
    const char *bar = strchr(row, '|');
    assert_cmp(bar[strcspn(bar, "#\n")], ==, '#');
  }
  free(text);
}

static void chart_width_zero_is_eighty_and_others_are_checked(void **state) {
  fixture *f = *state;
  capture c;
  assert_code(iob_export_chart(capture_start(&c), f->batches, 1, 0), 0);
  char *text = capture_end(&c);
  assert_true(lines_fit(text, 80));
  assert_non_null(strstr(text, "|\n"));
  /* The rows take all 80 columns. */
  const char *row = strstr(text, "\n  op 0");
  assert_int_equal(strcspn(row + 1, "\n"), 80);
  free(text);
  FILE *out = capture_start(&c);
  assert_code(iob_export_chart(out, f->batches, 1, 39), IOB_ERANGE);
  assert_code(iob_export_chart(out, f->batches, 1, 1001), IOB_ERANGE);
  assert_code(iob_export_chart(out, f->batches, 1, 40), 0);
  text = capture_end(&c);
  assert_true(lines_fit(text, 40));
  free(text);
}

static void chart_of_a_large_batch_has_a_row_per_group(void **state) {
  iob_batch *large = run_batch(&iob_style_loop, 5000, 0);
  const iob_batch *batches[] = {large};
  capture c;
  assert_code(iob_export_chart(capture_start(&c), batches, 1, 72), 0);
  char *text = capture_end(&c);
  assert_true(lines_fit(text, 72));
  assert_int_equal(count_of(text, "\n  op "), 0);
  size_t rows = count_of(text, "\n  ops ");
  assert_in_range(rows, 2, IOB__CHART_ROWS_MAX);
  assert_non_null(strstr(text, "\n  ops 0-"));
  assert_non_null(strstr(text, "-4999 "));
  free(text);
  assert_code(iob_batch_free(large), 0);
}

/* ---- bad input, broken streams ------------------------------------------ */

static void exporters_refuse_null_arguments_and_no_batches(void **state) {
  fixture *f = *state;
  const iob_batch *with_null[] = {f->batches[0], NULL};
  assert_all_refused(IOB_EINVAL, NULL, 1);
  assert_all_refused(IOB_EINVAL, f->batches, 0);
  assert_all_refused(IOB_EINVAL, with_null, 2);
  assert_code(iob_export_svg(NULL, f->batches, 1, NULL), IOB_EINVAL);
  assert_code(iob_export_trace(NULL, f->batches, 1), IOB_EINVAL);
  assert_code(iob_export_chart(NULL, f->batches, 1, 0), IOB_EINVAL);
}

static void exporters_refuse_an_unfinished_batch(void **state) {
  fixture *f = *state;
  iob_config config = config_of(&iob_style_pool, 3, 5);
  test_loop t;
  test_loop_init(&t);
  iob_batch *b = test_loop_create(&t, &config, NULL);
  const iob_batch *batches[] = {f->batches[0], b};
  assert_all_refused(IOB_EBUSY, batches, 2); /* not started */

  test_loop_start_created(&t, b);
  assert_all_refused(IOB_EBUSY, batches, 2); /* running */
  test_loop_run(&t);
  capture c;
  assert_code(iob_export_chart(capture_start(&c), batches, 2, 0), 0);
  free(capture_end(&c));
  test_loop_close(&t);
  assert_code(iob_batch_free(b), 0);
}

static void exporters_report_a_full_disk(void **state) {
  fixture *f = *state;
  FILE *full = fopen("/dev/full", "w");
  if (full == NULL)
    skip();
  assert_code(iob_export_svg(full, f->batches, f->n, NULL), IOB_EIO);
  clearerr(full);
  assert_code(iob_export_trace(full, f->batches, f->n), IOB_EIO);
  clearerr(full);
  assert_code(iob_export_chart(full, f->batches, f->n, 0), IOB_EIO);
  fclose(full); /* fails too: the stream had nothing it could write */
}

static void exporters_report_a_read_only_stream(void **state) {
  fixture *f = *state;
  char path[] = "/tmp/iobound-export-XXXXXX";
  int fd = mkstemp(path);
  assert_cmp(fd, >=, 0);
  close(fd);
  FILE *read_only = fopen(path, "r");
  assert_non_null(read_only);
  assert_code(iob_export_svg(read_only, f->batches, 1, NULL), IOB_EIO);
  assert_code(iob_export_trace(read_only, f->batches, 1), IOB_EIO);
  assert_code(iob_export_chart(read_only, f->batches, 1, 0), IOB_EIO);
  assert_int_equal(fclose(read_only), 0);
  assert_int_equal(unlink(path), 0);
}

/* ---- failed and cancelled operations ------------------------------------
 * Records made here, so that each outcome is drawn from known times,
 * through the functions that draw one operation. */

static void failed_and_cancelled_operations_look_different(void **state) {
  const iob_record ok = {0, 1000000, 3000000, 0, 2};
  const iob_record failed = {0, 1000000, 3000000, IOB_ETIMEDOUT, 2};
  const iob_record cancelled = {0, 1000000, 3000000, IOB_ECANCELED, 0};
  assert_int_equal(iob__outcome_of(0), IOB__OK);
  assert_int_equal(iob__outcome_of(IOB_ETIMEDOUT), IOB__FAILED);
  assert_int_equal(iob__outcome_of(UV_ECONNREFUSED), IOB__FAILED);
  assert_int_equal(iob__outcome_of(IOB_ECANCELED), IOB__CANCELLED);

  iob__svg_row row = {100, 1e-4, 10, 18, "#123456", NULL, NULL, 0};
  capture c;
  FILE *out = capture_start(&c);
  iob__svg_op(out, &row, 7, &ok);
  iob__svg_op(out, &row, 8, &failed);
  iob__svg_op(out, &row, 9, &cancelled);
  char *svg = capture_end(&c);
  assert_int_equal(count_of(svg, "class=\"op ok\" x=\"200.0\""), 1);
  assert_int_equal(count_of(svg, "class=\"op failed\""), 1);
  assert_int_equal(count_of(svg, "class=\"op cancelled\""), 1);
  assert_int_equal(count_of(svg, "fill=\"#123456\""), 1); /* only ok's */
  assert_non_null(strstr(svg, "op 8: queued for 1.00 ms, ran from 1.00 ms to "
                              "3.00 ms (2.00 ms) on thread 2; failed: "
                              "IOB_ETIMEDOUT (timed out)"));
  assert_non_null(strstr(svg, "; cancelled: IOB_ECANCELED"));
  free(svg);

  out = capture_start(&c);
  iob__trace_op(out, 1, 8, &failed, NULL, NULL, 0);
  iob__trace_op(out, 1, 9, &cancelled, NULL, NULL, 0);
  char *json = capture_end(&c);
  assert_non_null(strstr(json, "\"name\":\"failed: IOB_ETIMEDOUT\""));
  assert_non_null(strstr(json, "\"status\":\"IOB_ETIMEDOUT\""));
  assert_non_null(strstr(json, "\"name\":\"cancelled\""));
  free(json);

  /* Ten columns of 0.5 ms: queued in 0..1 ms, run in 1..3 ms. */
  const iob_record records[] = {ok, failed, cancelled};
  char cells[10];
  const char *want[] = {"..####    ", "..xxxx    ", "..cccc    "};
  for (int k = 0; k < 3; k++) {
    iob__chart_cells(cells, 10, 5000000, &records[k], 1, false, NULL, 0);
    assert_memory_equal(cells, want[k], 10);
  }
  iob__chart_cells(cells, 10, 5000000, records, 3, false, NULL,
                   0); /* the worst */
  assert_memory_equal(cells, "..xxxx    ", 10);
}

/* ---- the arithmetic under the pictures ---------------------------------- */

/* Operations that failed twice and succeeded on their third attempt,
 * 20 ms of backoff between: each picture draws every attempt and each
 * backoff, on the loop and on threads. */
static void retried_attempts_and_their_backoffs_are_drawn(void **state) {
  const iob_style *styles[] = {&iob_style_loop, &iob_style_threads};
  for (int k = 0; k < 2; k++) {
    test_flaky f = {.fails = 2, .status = IOB_EIO};
    iob_retry p;
    iob_retry_init(&p);
    p.backoff_min_ms = p.backoff_max_ms = 20;
    iob_config c = config_of(styles[k], 3, 10);
    c.kind = &test_kind_flaky;
    c.target = &f;
    c.retry = &p;
    iob_batch *b = run_on_own_loop(&c, NULL);
    const iob_batch *one[] = {b};

    capture cap;
    assert_code(iob_export_svg(capture_start(&cap), one, 1, NULL), 0);
    char *svg = capture_end(&cap);
    assert_valid_svg(svg);
    assert_int_equal(count_of(svg, "class=\"attempt failed\""), 6);
    assert_int_equal(count_of(svg, "class=\"attempt ok\""), 3);
    assert_int_equal(count_of(svg, "<line class=\"backoff\""), 6);
    assert_int_equal(count_of(svg, "class=\"op "), 0);
    assert_non_null(strstr(svg, "op 0, attempt 1 of 3: ran from"));
    assert_non_null(strstr(svg, "backing off between attempts"));
    free(svg);

    assert_code(iob_export_chart(capture_start(&cap), one, 1, 100), 0);
    char *chart = capture_end(&cap);
    assert_non_null(strstr(chart, "- backing off between attempts"));
    /* Each row: a failure, a backoff, a failure, a backoff, the run. */
    char *row = strstr(chart, "op 1");
    assert_non_null(row);
    char *x = strchr(row, 'x'), *dash = x ? strchr(x, '-') : NULL;
    assert_non_null(dash);
    assert_true(dash < strchr(row, '\n'));
    assert_non_null(strchr(dash, '#'));
    free(chart);

    assert_code(iob_export_trace(capture_start(&cap), one, 1), 0);
    char *json = capture_end(&cap);
    assert_valid_json(json);
    size_t attempts = 0, backoffs = 0;
    for (char *line = strtok(json, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
      trace_event e;
      if (parse_complete(line, "backoff", &e)) {
        backoffs++;
        test_assert_ms("a backoff", MS(e.dur_ns), 19, 400, __FILE__, __LINE__);
      } else if (parse_complete(line, "attempt", &e)) {
        attempts++;
        assert_in_range(e.tid, 1, 3); /* on the operation's track */
      }
    }
    assert_int_equal(attempts, 9);
    assert_int_equal(backoffs, 6);
    free(json);
    assert_code(iob_batch_free(b), 0);
  }
}

/* Cancelled in its second backoff, an operation is drawn as it went: two
 * failed attempts, the backoffs, and a mark where it was cancelled (the
 * chart's 'c'). */
static void an_operation_cancelled_in_a_backoff_shows_where(void **state) {
  test_flaky f = {.fails = 9, .status = IOB_EIO};
  iob_retry p;
  iob_retry_init(&p);
  p.attempts = 9;
  p.backoff_min_ms = p.backoff_max_ms = 40;
  iob_config c = config_of(&iob_style_loop, 1, 5);
  c.kind = &test_kind_flaky;
  c.target = &f;
  c.retry = &p;
  iob_batch *b = run_cancelled_after(&c, 70); /* in the 2nd backoff, about */
  const iob_batch *one[] = {b};
  const iob_attempt *a;
  uint32_t n;
  assert_code(iob_batch_attempts(b, 0, &a, &n), 0);
  assert_cmp(n, >=, 2);
  assert_code(iob_batch_records(b, NULL)[0].status, IOB_ECANCELED);
  bool in_backoff = a[n - 1].status == IOB_EIO;

  capture cap;
  assert_code(iob_export_svg(capture_start(&cap), one, 1, NULL), 0);
  char *svg = capture_end(&cap);
  assert_valid_svg(svg);
  if (in_backoff) { /* (else a slow machine cancelled an attempt itself) */
    assert_int_equal(count_of(svg, "class=\"op cancelled\""), 1);
    assert_int_equal(count_of(svg, "<line class=\"backoff\""), n);
  }
  free(svg);
  assert_code(iob_export_chart(capture_start(&cap), one, 1, 80), 0);
  char *chart = capture_end(&cap);
  char *row = strstr(chart, "op 0");
  assert_non_null(row);
  *strchr(row, '\n') = '\0';
  assert_non_null(strchr(row, 'x'));
  assert_non_null(strchr(row, 'c'));
  free(chart);
  assert_code(iob_batch_free(b), 0);
}

static void slices_hold_the_mean_number_in_flight(void **state) {
  /* Over 0..20 ns in two slices of 10: one op queued 0..5 and running
   * 5..15; one instant op at 12, which adds nothing to a mean. */
  const iob_record records[] = {{0, 5, 15, 0, 0}, {12, 12, 12, 0, 0}};
  double v[3 * IOB__LAYERS];
  iob__slices(records, 2, 20, v, 2, false);
  assert_cmp(v[IOB__QUEUED], ==, 0.5);
  assert_cmp(v[IOB__OK], ==, 0.5);
  assert_cmp(v[IOB__LAYERS + IOB__QUEUED], ==, 0);
  assert_cmp(v[IOB__LAYERS + IOB__OK], ==, 0.5);
  /* Many whole slices at once, and a failed run in its own layer. */
  const iob_record failed = {0, 0, 1000, IOB_ETIMEDOUT, 0};
  double many[11 * IOB__LAYERS];
  iob__slices(&failed, 1, 1000, many, 10, false);
  for (size_t k = 0; k < 10; k++) {
    assert_cmp(many[k * IOB__LAYERS + IOB__FAILED], ==, 1);
    assert_cmp(many[k * IOB__LAYERS + IOB__OK], ==, 0);
  }
}

static void numbers_are_written_with_a_point_and_round_ticks(void **state) {
  char buf[32];
  iob__format_decimal(buf, sizeof(buf), 12.25, 1);
  assert_string_equal(buf, "12.3");
  iob__format_decimal(buf, sizeof(buf), -0.04, 1);
  assert_string_equal(buf, "0.0");
  iob__format_decimal(buf, sizeof(buf), -2.5, 2);
  assert_string_equal(buf, "-2.50");
  iob__format_decimal(buf, sizeof(buf), 1.9999, 0);
  assert_string_equal(buf, "2");
  iob__format_ms(buf, sizeof(buf), 2002600000);
  assert_string_equal(buf, "2002.6 ms");
  iob__format_ms(buf, sizeof(buf), 350000);
  assert_string_equal(buf, "0.350 ms");
  assert_int_equal(iob__nice_step(2002600000, 12), 200000000);
  assert_int_equal(iob__nice_step(100000, 4), 50000);
  assert_int_equal(iob__nice_step(0, 4), 1);
  assert_int_equal(iob__nice_step(UINT64_MAX, 1), 5000000000000000000u);
  assert_int_equal(iob__ms_decimals(200000000), 0);
  assert_int_equal(iob__ms_decimals(50000), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(svg_draws_one_bar_and_one_label_per_operation),
      cmocka_unit_test(svg_hatches_queued_time_only_where_an_operation_waited),
      cmocka_unit_test(svg_escapes_any_title),
      cmocka_unit_test(thread_numbers_near_the_top_cost_what_the_batch_does),
      cmocka_unit_test(the_wait_for_a_slot_under_a_limit_is_drawn),
      cmocka_unit_test(svg_without_a_title_names_what_ran),
      cmocka_unit_test(svg_of_a_large_batch_is_aggregated_and_stays_small),
      cmocka_unit_test(trace_has_one_run_per_operation_with_its_own_times),
      cmocka_unit_test(
          trace_names_a_process_per_batch_and_a_track_per_operation),
      cmocka_unit_test(trace_of_a_single_operation_is_complete),
      cmocka_unit_test(chart_has_a_row_per_operation_within_the_width),
      cmocka_unit_test(captions_name_the_kind_and_the_label),
      cmocka_unit_test(a_large_batch_is_sampled_in_the_trace_and_says_so),
      cmocka_unit_test(chart_width_zero_is_eighty_and_others_are_checked),
      cmocka_unit_test(chart_of_a_large_batch_has_a_row_per_group),
      cmocka_unit_test(exporters_refuse_null_arguments_and_no_batches),
      cmocka_unit_test(exporters_refuse_an_unfinished_batch),
      cmocka_unit_test(exporters_report_a_full_disk),
      cmocka_unit_test(exporters_report_a_read_only_stream),
      cmocka_unit_test(failed_and_cancelled_operations_look_different),
      cmocka_unit_test(retried_attempts_and_their_backoffs_are_drawn),
      cmocka_unit_test(an_operation_cancelled_in_a_backoff_shows_where),
      cmocka_unit_test(slices_hold_the_mean_number_in_flight),
      cmocka_unit_test(numbers_are_written_with_a_point_and_round_ticks),
  };
  return cmocka_run_group_tests(tests, run_every_style, free_every_style);
}
