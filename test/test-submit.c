/* Open batches: operations submitted one at a time, before and while the
 * batch runs, from the loop thread and from others, of mixed kinds, each
 * with its own target, input, duration and pointer; their outcomes read
 * as they settle; and everything a batch has (limits, cancels, fail fast,
 * deadlines, reports) applied to them. */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* A kind that fails at once with IOB_EIO. */
static int fail_run(iob_op *op) {
  (void)op;
  return IOB_EIO;
}

static const iob_kind failing = {.name = "failing", .run = fail_run};

/* ---- helpers ------------------------------------------------------------- */

static iob_config open_config(const iob_style *style) {
  iob_config c;
  iob_config_init(&c);
  c.style = style;
  c.open = 1;
  return c;
}

static iob_task task_of(const iob_kind *kind, uint32_t ms, void *data) {
  iob_task t = test_task(kind, NULL, ms);
  t.data = data;
  return t;
}

static void submit_ok(iob_batch *b, const iob_task *t, int expected_index) {
  int index = iob_batch_submit(b, t);
  if (index != expected_index)
    fail_msg("iob_batch_submit gave %d (%s), expected index %d", index,
             index < 0 ? iob_err_name(index) : "an index", expected_index);
}

/* An open batch of `style` on t, at most `limit` in flight, of n waits of
 * `ms` submitted before it starts, closed, and run to its end. */
static iob_batch *run_waits(test_loop *t, const iob_style *style,
                            uint32_t limit, int n, uint32_t ms) {
  iob_config c = open_config(style);
  c.max_in_flight = limit;
  iob_batch *b = test_loop_create(t, &c, NULL);
  iob_task w = task_of(&iob_kind_wait, ms, NULL);
  for (int i = 0; i < n; i++)
    submit_ok(b, &w, i);
  iob_batch_close(b);
  test_loop_start_created(t, b);
  test_loop_run(t);
  return b;
}

/* ---- submitting and closing ---------------------------------------------- */

static void
what_is_submitted_before_the_start_runs_and_the_batch_ends_once_closed(
    void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  iob_batch *b = test_loop_create(&t, &c, NULL);
  iob_task w = task_of(&iob_kind_wait, 20, NULL);
  for (int i = 0; i < 3; i++)
    submit_ok(b, &w, i);
  assert_code(iob_batch_close(b), 0);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  const test_counts *n = test_loop_counts(&t, b);
  assert_int_equal(n->ok, 3);
  assert_int_equal(n->batch_status, 0);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.count, 3);
  assert_ptr_equal(r.kind, &iob_kind_wait);
  assert_ms_below(MS(r.elapsed_ns), 500); /* the three overlap */
  test_loop_close(&t);
  iob_batch_free(b);
}

static void close_it(test_loop *t, void *arg) {
  (void)t;
  assert_code(iob_batch_close(arg), 0);
  assert_code(iob_batch_close(arg), 0); /* twice is harmless */
}

static void an_open_batch_does_not_end_until_it_is_closed(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  c.count = 2; /* two waits made at once, of the config's kind */
  c.duration_ms = 10;
  iob_batch *b = test_loop_start(&t, &c, NULL);
  uint64_t t0 = uv_hrtime();
  test_loop_at(&t, 150, close_it, b);
  test_loop_run(&t);
  assert_ms_at_least(MS(uv_hrtime() - t0), 140);
  const test_counts *n = test_loop_counts(&t, b);
  assert_int_equal(n->ok, 2);
  assert_int_equal(n->batch_calls, 1);
  test_loop_close(&t);
  iob_batch_free(b);
}

/* ---- outcomes in hand, follow-ups ----------------------------------------- */

typedef struct chain {
  uint32_t length, seen;
  uint64_t values;
  int last_index;
} chain;

/* Each operation's on_op reads its outcome and submits the next; the
 * last closes the batch. */
static void next_link(iob_batch *b, uint32_t index, const iob_record *r) {
  chain *ch = iob_batch_data(b);
  assert_int_equal(r->status, 0);
  iob_outcome o;
  assert_code(iob_batch_outcome(b, index, &o), 0);
  assert_ptr_equal(o.kind, &test_kind_later);
  assert_ptr_equal(o.data, ch);
  assert_int_equal(o.value, index);
  assert_string_equal(o.message, "link");
  ch->values += o.value;
  if (++ch->seen == ch->length) {
    assert_code(iob_batch_close(b), 0);
    return;
  }
  iob_task t = task_of(&test_kind_later, 0, ch);
  t.input = "link";
  ch->last_index = iob_batch_submit(b, &t);
  assert_int_equal(ch->last_index, (int)index + 1);
}

static void follow_ups_submitted_from_on_op_run_as_a_chain(void **state) {
  (void)state;
  chain ch = {.length = 500};
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  c.on_op = next_link;
  c.data = &ch;
  iob_batch *b = test_loop_start(&t, &c, NULL);
  iob_task first = task_of(&test_kind_later, 0, &ch);
  first.input = "link";
  submit_ok(b, &first, 0);
  test_loop_run(&t);
  assert_int_equal(ch.seen, 500);
  assert_cmp(ch.values, ==, 499u * 500u / 2);
  uint32_t n;
  const iob_record *rec = iob_batch_records(b, &n);
  assert_non_null(rec);
  assert_int_equal(n, 500);
  for (uint32_t i = 1; i < n; i++) /* one after another */
    assert_cmp(rec[i].started_ns, >=, rec[i - 1].finished_ns);
  test_loop_close(&t);
  iob_batch_free(b);
}

/* ---- kinds mixed ------------------------------------------------------------ */

typedef int (*exporter)(FILE *, const iob_batch *const *, size_t, const char *);

static int export_trace(FILE *out, const iob_batch *const *b, size_t n,
                        const char *title) {
  (void)title;
  return iob_export_trace(out, b, n);
}

static int export_chart(FILE *out, const iob_batch *const *b, size_t n,
                        const char *title) {
  (void)title;
  return iob_export_chart(out, b, n, 0);
}

/* What an exporter wrote for one batch, as a string to free. */
static char *export_text(exporter fn, const iob_batch *const *list) {
  FILE *out = tmpfile();
  assert_non_null(out);
  assert_int_equal(fn(out, list, 1, NULL), 0);
  long size = ftell(out);
  assert_cmp(size, >, 0);
  char *text = calloc(1, (size_t)size + 1);
  assert_non_null(text);
  rewind(out);
  assert_int_equal(fread(text, 1, (size_t)size, out), (size_t)size);
  fclose(out);
  return text;
}

static void kinds_mix_in_one_batch_and_the_report_says_so(void **state) {
  (void)state;
  int marks[3];
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  iob_batch *b = test_loop_create(&t, &c, NULL);
  iob_task w = task_of(&iob_kind_wait, 30, &marks[0]);
  iob_task l = task_of(&test_kind_later, 30, &marks[1]);
  iob_task f = task_of(&failing, 0, &marks[2]);
  char input[32] = "copied";
  l.input = input;
  submit_ok(b, &w, 0);
  submit_ok(b, &l, 1);
  memset(input, 0, sizeof(input)); /* the kind copied it */
  submit_ok(b, &f, 2);
  iob_batch_close(b);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_null(r.kind); /* mixed */
  assert_int_equal(r.count, 3);
  assert_int_equal(r.failed, 1);
  const iob_kind *kinds[] = {&iob_kind_wait, &test_kind_later, &failing};
  int statuses[] = {0, 0, IOB_EIO};
  for (uint32_t i = 0; i < 3; i++) {
    iob_outcome o;
    assert_code(iob_batch_outcome(b, i, &o), 0);
    assert_ptr_equal(o.kind, kinds[i]);
    assert_ptr_equal(o.data, &marks[i]);
    assert_int_equal(o.status, statuses[i]);
  }
  iob_outcome o;
  iob_batch_outcome(b, 1, &o);
  assert_string_equal(o.message, "copied");
  /* The exporters draw a batch of mixed kinds: its caption says so, and
   * each row names its kind. */
  const iob_batch *list[] = {b};
  char *text = export_text(iob_export_svg, list);
  assert_non_null(strstr(text, "3 operations of mixed kinds"));
  assert_non_null(strstr(text, "op 2 (failing): "));
  free(text);
  text = export_text(export_trace, list);
  assert_non_null(strstr(text, "\"op 1 later\""));
  free(text);
  text = export_text(export_chart, list);
  assert_non_null(strstr(text, "mixed kinds"));
  free(text);
  test_loop_close(&t);
  iob_batch_free(b);
}

/* ---- from another thread ----------------------------------------------------- */

#define FROM_THREAD 2000

typedef struct feeder {
  iob_batch *batch;
  int indices[FROM_THREAD];
  uint32_t data[FROM_THREAD];
} feeder;

static void feed(void *arg) {
  feeder *f = arg;
  for (uint32_t i = 0; i < FROM_THREAD; i++) {
    f->data[i] = i;
    /* (Short: the sequential style runs them one after another.) */
    iob_task t = task_of(&iob_kind_wait, i % 2, &f->data[i]);
    f->indices[i] = iob_batch_submit(f->batch, &t);
  }
  iob_batch_close(f->batch);
  iob_batch_unref(f->batch);
}

static void data_matches_index(iob_batch *b, uint32_t index,
                               const iob_record *r) {
  assert_int_equal(r->status, 0);
  iob_outcome o;
  assert_code(iob_batch_outcome(b, index, &o), 0);
  assert_non_null(o.data);
  assert_int_equal(*(uint32_t *)o.data, index);
}

static void another_thread_submits_in_order_and_closes(const iob_style *s) {
  static feeder f;
  memset(&f, 0, sizeof(f));
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(s);
  c.on_op = data_matches_index;
  c.max_in_flight = 64;
  f.batch = test_loop_start(&t, &c, NULL);
  iob_batch_ref(f.batch);
  uv_thread_t tid;
  assert_code(uv_thread_create(&tid, feed, &f), 0);
  test_loop_run(&t);
  assert_code(uv_thread_join(&tid), 0);
  for (int i = 0; i < FROM_THREAD; i++)
    assert_int_equal(f.indices[i], i);
  const test_counts *n = test_loop_counts(&t, f.batch);
  assert_int_equal(n->ok, FROM_THREAD);
  iob_progress p;
  assert_code(iob_batch_progress(f.batch, &p), 0);
  assert_int_equal(p.done, FROM_THREAD);
  assert_int_equal(p.waiting, 0);
  test_loop_close(&t);
  iob_batch_free(f.batch);
}

static void another_thread_submits_in_order_and_the_batch_waits_for_its_close(
    void **state) {
  (void)state;
  for (size_t k = 0; iob_style_at(k) != NULL; k++)
    another_thread_submits_in_order_and_closes(iob_style_at(k));
}

/* ---- what a batch has, applied to submitted work ------------------------- */

static void max_in_flight_holds_for_submitted_work(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_batch *b = run_waits(&t, NULL, 5, 20, 40);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_int_equal(r.peak_in_flight, 5);
  assert_ms_between(MS(r.elapsed_ns), 155, 2000); /* four rounds of 40 */
  test_loop_close(&t);
  iob_batch_free(b);
}

static void cancel_it(test_loop *t, void *arg) {
  (void)t;
  assert_code(iob_batch_cancel(arg), 0);
  iob_task w = task_of(&iob_kind_wait, 1, NULL);
  assert_code(iob_batch_submit(arg, &w), IOB_ESHUTDOWN);
}

static void a_cancel_closes_an_open_batch_and_settles_what_waits(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  c.max_in_flight = 2;
  iob_batch *b = test_loop_start(&t, &c, NULL);
  iob_task w = task_of(&iob_kind_wait, 10000, NULL);
  iob_task l = task_of(&test_kind_later, 10000, NULL);
  for (int i = 0; i < 6; i++)
    submit_ok(b, i % 2 ? &l : &w, i);
  test_loop_at(&t, 50, cancel_it, b); /* never closed: the cancel ends it */
  uint64_t t0 = uv_hrtime();
  test_loop_run(&t);
  assert_ms_below(MS(uv_hrtime() - t0), 2000);
  const test_counts *n = test_loop_counts(&t, b);
  assert_int_equal(n->cancelled, 6);
  assert_code(n->batch_status, IOB_ECANCELED);
  test_loop_close(&t);
  iob_batch_free(b);
}

static void the_first_failure_cancels_the_rest_with_fail_fast(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  c.fail_fast = 1;
  iob_batch *b = test_loop_create(&t, &c, NULL);
  iob_task w = task_of(&iob_kind_wait, 5000, NULL);
  iob_task f = task_of(&failing, 0, NULL);
  submit_ok(b, &w, 0);
  submit_ok(b, &w, 1);
  submit_ok(b, &f, 2);
  test_loop_start_created(&t, b); /* not closed: the failure closes it */
  test_loop_run(&t);
  const test_counts *n = test_loop_counts(&t, b);
  assert_code(n->batch_status, IOB_EIO);
  assert_int_equal(n->cancelled, 2);
  test_loop_close(&t);
  iob_batch_free(b);
}

static void a_deadline_ends_an_open_batch_never_closed(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  c.deadline_ms = 100;
  iob_batch *b = test_loop_start(&t, &c, NULL);
  iob_task w = task_of(&iob_kind_wait, 10, NULL);
  submit_ok(b, &w, 0);
  uint64_t t0 = uv_hrtime();
  test_loop_run(&t);
  assert_ms_between(MS(uv_hrtime() - t0), 90, 1500);
  const test_counts *n = test_loop_counts(&t, b);
  assert_int_equal(n->ok, 1);
  assert_code(n->batch_status, IOB_ETIMEDOUT);
  test_loop_close(&t);
  iob_batch_free(b);
}

static void a_timeout_stops_a_submitted_operation(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  c.timeout_ms = 50;
  iob_batch *b = test_loop_create(&t, &c, NULL);
  iob_task l = task_of(&test_kind_later, 5000, NULL);
  iob_task w = task_of(&iob_kind_wait, 5000, NULL);
  iob_task quick = task_of(&test_kind_later, 1, NULL);
  submit_ok(b, &l, 0);
  submit_ok(b, &w, 1);
  submit_ok(b, &quick, 2);
  iob_batch_close(b);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  uint32_t n;
  const iob_record *r = iob_batch_records(b, &n);
  assert_int_equal(n, 3);
  assert_code(r[0].status, IOB_ETIMEDOUT);
  assert_code(r[1].status, IOB_ETIMEDOUT);
  assert_int_equal(r[2].status, 0);
  test_loop_close(&t);
  iob_batch_free(b);
}

/* ---- bad input --------------------------------------------------------------- */

static void bad_submissions_get_clear_codes_and_add_nothing(void **state) {
  (void)state;
  iob_task w = task_of(&iob_kind_wait, 1, NULL);
  assert_code(iob_batch_submit(NULL, &w), IOB_EINVAL);
  assert_code(iob_batch_close(NULL), IOB_EINVAL);

  iob_config c;
  iob_config_init(&c);
  c.count = 1;
  iob_batch *fixed;
  assert_code(iob_batch_create(&fixed, &c), 0);
  assert_code(iob_batch_submit(fixed, &w), IOB_EINVAL); /* not open */
  assert_code(iob_batch_close(fixed), IOB_EINVAL);
  iob_batch_free(fixed);

  c = open_config(&iob_style_threads);
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  assert_code(iob_batch_submit(b, NULL), IOB_EINVAL);
  iob_task t = w;
  t.kind = NULL;
  assert_code(iob_batch_submit(b, &t), IOB_EINVAL);
  t = w;
  t.input = "for a kind that takes none";
  assert_code(iob_batch_submit(b, &t), IOB_EINVAL);
  t = task_of(&test_kind_later, 1,
              NULL); /* start() only: a thread cannot run it */
  assert_code(iob_batch_submit(b, &t), IOB_ENOTSUP);
  t = task_of(&iob_kind_tcp, 1, NULL); /* its check() wants a target */
  assert_code(iob_batch_submit(b, &t), IOB_EINVAL);
  iob_progress p;
  assert_code(iob_batch_progress(b, &p), 0);
  assert_int_equal(p.waiting, 0); /* nothing was added */
  submit_ok(b, &w, 0);
  assert_code(iob_batch_close(b), 0);
  assert_code(iob_batch_submit(b, &w), IOB_ESHUTDOWN);
  iob_batch_free(b);

  c = open_config(NULL);
  assert_code(iob_batch_create(&b, &c), 0);
  t = task_of(&test_kind_later, 1, NULL);
  char longer[200];
  memset(longer, 'x', sizeof(longer) - 1);
  longer[sizeof(longer) - 1] = '\0';
  t.input = longer; /* refused by the kind's input_copy */
  assert_code(iob_batch_submit(b, &t), IOB_ERANGE);
  assert_code(iob_batch_progress(b, &p), 0);
  assert_int_equal(p.waiting, 0);
  assert_string_equal(iob_err_name(IOB_ESHUTDOWN), "IOB_ESHUTDOWN");
  iob_batch_free(b); /* never started: frees nothing twice */
}

/* A kind whose input_copy() raises a signal, whose handler submits to
 * the batch being submitted to and closes it, as a program that submits
 * from a signal handler would: on the same thread, inside the submission,
 * which holds the lock the handler's would wait for. */
static iob_batch *handler_batch;
static volatile sig_atomic_t handler_submit, handler_close;

static void submitting_handler(int sig) {
  (void)sig;
  iob_task w;
  iob_task_init(&w);
  w.kind = &iob_kind_wait;
  handler_submit = iob_batch_submit(handler_batch, &w);
  handler_close = iob_batch_close(handler_batch);
}

static int copy_and_raise(const void *input, void **copy) {
  raise(SIGUSR1);
  *copy = strdup(input);
  return *copy != NULL ? 0 : IOB_ENOMEM;
}

static const iob_kind raising = {.name = "raising",
                                 .flags = IOB_KIND_WAITS,
                                 .input_copy = copy_and_raise,
                                 .input_free = free};

static void
a_submission_from_a_handler_inside_one_is_refused_not_hung(void **state) {
  (void)state;
  struct sigaction sa = {.sa_handler = submitting_handler}, old;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  iob_batch *b = test_loop_create(&t, &c, NULL);
  handler_batch = b;
  handler_submit = handler_close = 1;
  iob_task r = task_of(&raising, 5, NULL);
  r.input = "copied";
  submit_ok(b, &r, 0); /* the outer one is whole */
  assert_code(handler_submit, IOB_EPERM);
  assert_code(handler_close, IOB_EPERM);
  iob_progress p;
  assert_code(iob_batch_progress(b, &p), 0);
  assert_int_equal(p.waiting, 1);     /* the handler's added nothing */
  assert_code(iob_batch_close(b), 0); /* and did not close it */
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  assert_int_equal(test_loop_counts(&t, b)->ok, 1);
  test_loop_close(&t);
  iob_batch_free(b);
  assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

/* Unsubmitted input copies and large states go with a batch never run. */
static void
a_batch_freed_before_it_starts_frees_what_was_submitted(void **state) {
  (void)state;
  iob_config c = open_config(NULL);
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  iob_task t = task_of(&test_kind_later, 1, NULL);
  t.input = "freed with the batch";
  for (int i = 0; i < 3000; i++) /* past the first chunk */
    submit_ok(b, &t, i);
  assert_code(iob_batch_free(b), 0);
}

static void close_on_last(iob_batch *b, uint32_t index, const iob_record *r) {
  (void)r;
  if (index == 2)
    iob_batch_close(b);
}

static void a_finished_open_batch_takes_nothing_and_runs_once(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  c.count = 3;
  c.duration_ms = 5;
  c.on_op = close_on_last;
  iob_batch *b = test_loop_start(&t, &c, NULL);
  test_loop_run(&t);
  iob_task w = task_of(&iob_kind_wait, 1, NULL);
  assert_code(iob_batch_submit(b, &w), IOB_ESHUTDOWN);
  assert_code(iob_batch_close(b), 0);
  assert_int_equal(test_loop_counts(&t, b)->ok, 3);
  test_loop_close(&t);
  iob_batch_free(b);
}

/* ---- targets of submitted operations --------------------------------------- */

static int destroy_file_target(void *target) {
  return iob_file_target_destroy(target);
}

static void close_and_check(test_loop *t, void *arg) {
  (void)t;
  iob_file_target *target = ((void **)arg)[1];
  assert_code(iob_file_target_destroy(target), IOB_EBUSY);
  iob_batch_close(((void **)arg)[0]);
}

static void
a_submitted_operations_target_is_in_use_while_the_batch_runs(void **state) {
  (void)state;
  char dir[] = "/tmp/iobound-submit-XXXXXX";
  assert_non_null(mkdtemp(dir));
  iob_file_target *target;
  assert_code(iob_file_target_create(&target, dir, NULL), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  iob_batch *b = test_loop_start(&t, &c, NULL);
  iob_task f = task_of(&iob_kind_file, 0, NULL);
  f.target = target;
  submit_ok(b, &f, 0);
  void *both[] = {b, target};
  test_loop_at(&t, 20, close_and_check, both);
  test_loop_run(&t);
  assert_int_equal(test_loop_counts(&t, b)->ok, 1);
  assert_int_equal(destroy_file_target(target), 0);
  test_loop_close(&t);
  iob_batch_free(b);
  rmdir(dir);
}

/* ---- nested batches ------------------------------------------------------- */

static iob_batch *child_of(uint32_t count, uint64_t ms, int open) {
  iob_config c;
  iob_config_init(&c);
  c.count = count;
  c.duration_ms = ms;
  c.open = open;
  iob_batch *child;
  assert_code(iob_batch_create(&child, &c), 0);
  return child;
}

static void
a_child_batch_is_one_operation_that_settles_after_all_of_its_own(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  iob_batch *b = test_loop_start(&t, &c, NULL);
  iob_batch *child = child_of(3, 40, 0);
  iob_task task = task_of(&iob_kind_batch, 0, NULL);
  task.input = child;
  submit_ok(b, &task, 0);
  iob_batch_unref(child); /* the parent holds it (running already) */
  iob_batch_close(b);
  test_loop_run(&t);
  iob_outcome o;
  assert_code(iob_batch_outcome(b, 0, &o), 0);
  assert_int_equal(o.status, 0);
  assert_ptr_equal(o.result, child);
  uint32_t n;
  const iob_record *kids = iob_batch_records(child, &n);
  assert_int_equal(n, 3);
  const iob_record *parent = iob_batch_records(b, NULL);
  for (uint32_t i = 0; i < n; i++) { /* the parent ran around them */
    assert_int_equal(kids[i].status, 0);
    assert_cmp(parent[0].finished_ns - parent[0].started_ns, >=,
               kids[i].finished_ns);
  }
  test_loop_close(&t);
  iob_batch_free(b); /* and with it, the child */
}

static void cancelling_the_parent_cancels_its_children_first(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  iob_batch *b = test_loop_start(&t, &c, NULL);
  iob_batch *kids[2];
  for (int k = 0; k < 2; k++) {
    kids[k] = child_of(2, 10000, 1); /* open, never closed */
    iob_task task = task_of(&iob_kind_batch, 0, NULL);
    task.input = kids[k];
    submit_ok(b, &task, k);
    iob_batch_unref(kids[k]);
  }
  test_loop_cancel_after(&t, b, 50);
  uint64_t t0 = uv_hrtime();
  test_loop_run(&t);
  assert_ms_below(MS(uv_hrtime() - t0), 2000);
  assert_int_equal(test_loop_counts(&t, b)->cancelled, 2);
  for (int k = 0; k < 2; k++) {
    uint32_t n;
    const iob_record *r = iob_batch_records(kids[k], &n);
    assert_int_equal(n, 2);
    assert_code(r[0].status, IOB_ECANCELED);
    assert_code(r[1].status, IOB_ECANCELED);
  }
  test_loop_close(&t);
  iob_batch_free(b);
}

static void a_parents_timeout_ends_its_child(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  c.timeout_ms = 60;
  iob_batch *b = test_loop_start(&t, &c, NULL);
  iob_batch *child = child_of(4, 10000, 0);
  iob_task task = task_of(&iob_kind_batch, 0, NULL);
  task.input = child;
  submit_ok(b, &task, 0);
  iob_batch_unref(child);
  iob_batch_close(b);
  test_loop_run(&t);
  iob_outcome o;
  assert_code(iob_batch_outcome(b, 0, &o), 0);
  assert_code(o.status, IOB_ETIMEDOUT);
  uint32_t n;
  const iob_record *r = iob_batch_records(o.result, &n);
  assert_int_equal(n, 4);
  assert_code(r[3].status, IOB_ECANCELED);
  test_loop_close(&t);
  iob_batch_free(b);
}

static void a_missing_or_running_child_fails_its_operation(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  iob_batch *b = test_loop_create(&t, &c, NULL);
  iob_task none = task_of(&iob_kind_batch, 0, NULL);
  submit_ok(b, &none, 0);
  iob_task self = none;
  self.input = b; /* runs already when it launches */
  submit_ok(b, &self, 1);
  iob_batch_close(b);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  iob_outcome o;
  assert_code(iob_batch_outcome(b, 0, &o), 0);
  assert_code(o.status, IOB_EINVAL);
  assert_non_null(o.message);
  assert_code(iob_batch_outcome(b, 1, &o), 0);
  assert_code(o.status, IOB_EBUSY);
  test_loop_close(&t);
  iob_batch_free(b);
  /* (Its reference to itself went with the operation's input, when the
   * operation settled.) */
}

/* ---- what an attack found ----------------------------------------------------- */

static int quick_run(iob_op *op) {
  (void)op;
  return 0;
}

static const iob_kind quick = {.name = "quick", .run = quick_run};

/* A run() on the loop takes its slot only when it comes due: operations
 * launched after it must not have taken them all by then. */
static void a_run_on_the_loop_keeps_its_slot_among_started_ones(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  iob_batch *b = test_loop_create(&t, &c, NULL);
  iob_task l = task_of(&test_kind_later, 30, NULL),
           q = task_of(&quick, 0, NULL);
  for (int i = 0; i < 15; i++)
    submit_ok(b, &l, i);
  submit_ok(b, &q, 15);
  for (int i = 16; i < 40; i++)
    submit_ok(b, i % 3 ? &l : &q, i);
  iob_batch_close(b);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  assert_int_equal(test_loop_counts(&t, b)->ok, 40);
  test_loop_close(&t);
  iob_batch_free(b);
}

static void cancel_the_started_one(test_loop *t, void *arg) {
  (void)t;
  assert_code(iob_batch_cancel_op(arg, 0), 0);
  assert_code(iob_batch_cancel_op(arg, 1), 0);
}

/* Cancelling one operation in flight reaches it in an open batch too, in
 * every style: a start() on the loop, a job or thread polling its stop. */
static void cancelling_one_submitted_operation_reaches_it(void **state) {
  (void)state;
  for (size_t k = 0; iob_style_at(k) != NULL; k++) {
    const iob_style *style = iob_style_at(k);
    bool threads = iob_style_flags(style) & IOB_STYLE_ON_THREADS;
    test_loop t;
    test_loop_init(&t);
    iob_config c = open_config(style);
    iob_batch *b = test_loop_start(&t, &c, NULL);
    iob_task slow =
        task_of(threads ? &test_kind_patient : &test_kind_later, 5000, NULL);
    /* A wait a thread sleeps cannot end early: short there. */
    iob_task w = task_of(&iob_kind_wait, threads ? 300 : 5000, NULL);
    submit_ok(b, &slow, 0);
    submit_ok(b, &w, 1);
    iob_batch_close(b);
    test_loop_at(&t, 50, cancel_the_started_one, b);
    uint64_t t0 = uv_hrtime();
    test_loop_run(&t);
    const iob_record *r = iob_batch_records(b, NULL);
    if (r[0].status != IOB_ECANCELED)
      fail_msg("%s: operation 0 ended with %s", iob_style_name(style),
               iob_err_name(r[0].status));
    /* (A wait on a thread ends when it ends: only the loop's stops.) */
    if (!threads)
      assert_code(r[1].status, IOB_ECANCELED);
    if (!threads)
      assert_ms_below(MS(uv_hrtime() - t0), 2000);
    test_loop_close(&t);
    iob_batch_free(b);
  }
}

/* A kind whose open() cancels the batch: the operation whose launch
 * opened it does not run on. */
static int cancelling_open(iob_batch *b, const void *target, void *shared) {
  (void)target;
  (void)shared;
  iob_batch_cancel(b);
  return 0;
}

static const iob_kind opens_and_cancels = {.name = "opens-and-cancels",
                                           .flags = IOB_KIND_WAITS,
                                           .open = cancelling_open};

static void
an_operation_whose_kind_opening_cancels_the_batch_never_runs(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  iob_batch *b = test_loop_create(&t, &c, NULL);
  iob_task w = task_of(&opens_and_cancels, 5000, NULL);
  submit_ok(b, &w, 0);
  submit_ok(b, &w, 1);
  test_loop_start_created(&t, b);
  uint64_t t0 = uv_hrtime();
  test_loop_run(&t);
  assert_ms_below(MS(uv_hrtime() - t0), 2000);
  assert_int_equal(test_loop_counts(&t, b)->cancelled, 2);
  test_loop_close(&t);
  iob_batch_free(b);
}

/* Submitted from a timer of the application's, not from a callback of
 * the batch's: its wait counts from then, not from an old reading. */
static void submit_late(test_loop *t, void *arg) {
  (void)t;
  iob_task w = task_of(&iob_kind_wait, 300, NULL);
  submit_ok(arg, &w, 1);
  iob_batch_close(arg);
}

static void a_submission_from_a_timer_of_yours_waits_from_then(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  iob_batch *b = test_loop_start(&t, &c, NULL);
  iob_task w = task_of(&iob_kind_wait, 10, NULL);
  submit_ok(b, &w, 0);
  test_loop_at(&t, 200, submit_late, b);
  test_loop_run(&t);
  const iob_record *r = iob_batch_records(b, NULL);
  assert_ms_at_least(MS(r[1].queued_ns), 190);
  assert_ms_at_least(MS(r[1].finished_ns - r[1].started_ns), 299);
  test_loop_close(&t);
  iob_batch_free(b);
}

/* Under a limit, an open batch's operation queues from when it was
 * taken in, not from when a slot freed: its time queued is its wait. */
static void queued_time_counts_the_wait_for_a_slot(const iob_style *s) {
  test_loop t;
  test_loop_init(&t);
  iob_batch *b = run_waits(&t, s, 1, 3, 50);
  const iob_record *r = iob_batch_records(b, NULL);
  print_message("%s: the third queued at %.1f ms, started at %.1f\n",
                iob_style_name(s), MS(r[2].queued_ns), MS(r[2].started_ns));
  assert_ms_between(MS(r[2].queued_ns), 0, 20);
  assert_ms_at_least(MS(r[2].started_ns - r[2].queued_ns), 95);
  iob_latency l;
  assert_code(iob_batch_latency(b, &l), 0);
  assert_ms_at_least(MS(l.queued.max_ns), 95);
  test_loop_close(&t);
  iob_batch_free(b);
}

static void
an_open_batchs_queued_time_counts_the_wait_for_a_slot_in_every_style(
    void **state) {
  (void)state;
  for (size_t k = 0; iob_style_at(k) != NULL; k++)
    queued_time_counts_the_wait_for_a_slot(iob_style_at(k));
}

/* A submitter 150 ms behind its schedule says when the operation was
 * due: its record counts from then. */
static void submit_due_earlier(test_loop *t, void *arg) {
  (void)t;
  iob_task w = task_of(&iob_kind_wait, 20, NULL);
  w.arrival_ns = uv_hrtime() - 150 * 1000000ull;
  submit_ok(arg, &w, 0);
  iob_task early = task_of(&iob_kind_wait, 20, NULL);
  early.arrival_ns = 1; /* long before the batch started */
  submit_ok(arg, &early, 1);
  iob_batch_close(arg);
}

static void an_arrival_the_submitter_gives_counts_from_then(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  iob_batch *b = test_loop_start(&t, &c, NULL);
  test_loop_at(&t, 200, submit_due_earlier, b);
  test_loop_run(&t);
  const iob_record *r = iob_batch_records(b, NULL);
  print_message("due at %.1f ms, started at %.1f\n", MS(r[0].queued_ns),
                MS(r[0].started_ns));
  assert_ms_between(MS(r[0].queued_ns), 30, 75); /* 200 - 150, roughly */
  assert_ms_at_least(MS(r[0].started_ns - r[0].queued_ns), 140);
  assert_int_equal(r[1].queued_ns, 0); /* before the start: at the start */
  iob_latency l;
  assert_code(iob_batch_latency(b, &l), 0);
  assert_ms_at_least(MS(l.total.max_ns), 169);
  test_loop_close(&t);
  iob_batch_free(b);
}

static void an_arrival_in_the_future_is_refused_and_adds_nothing(void **state) {
  (void)state;
  iob_config c = open_config(NULL);
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  iob_task w = task_of(&iob_kind_wait, 1, NULL);
  w.arrival_ns = uv_hrtime() + 10 * 1000000000ull;
  assert_code(iob_batch_submit(b, &w), IOB_EINVAL);
  w.arrival_ns = uv_hrtime();
  submit_ok(b, &w, 0); /* the first index: nothing was added before */
  iob_batch_free(b);
}

static void
a_batch_cancelled_before_it_starts_takes_nothing_more(void **state) {
  (void)state;
  iob_config c = open_config(NULL);
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  iob_task w = task_of(&iob_kind_wait, 1, NULL);
  submit_ok(b, &w, 0);
  assert_code(iob_batch_cancel(b), 0);
  assert_code(iob_batch_submit(b, &w), IOB_ESHUTDOWN);
  iob_batch_free(b);
}

static void
a_shared_workers_pool_refuses_a_kind_it_has_no_stack_for(void **state) {
  (void)state;
  static const iob_kind deep = {
      .name = "deep", .flags = IOB_KIND_WAITS, .stack_size = 8 << 20};
  iob_workers *pool;
  assert_code(iob_workers_create(&pool, 1, 0), 0);
  iob_workers_options o;
  iob_workers_options_init(&o);
  o.pool = pool;
  iob_config c = open_config(&iob_style_workers);
  c.style_options = &o;
  iob_batch *b;
  assert_code(iob_batch_create(&b, &c), 0);
  iob_task t = task_of(&deep, 1, NULL);
  assert_code(iob_batch_submit(b, &t), IOB_ENOTSUP);
  iob_batch_free(b);
  assert_code(iob_workers_free(pool), 0);
}

/* A kind with check() submitted from another thread while the loop takes
 * in what was submitted: ThreadSanitizer watches (the check once read the
 * count the loop thread writes). */
static void feed_mixed(void *arg) {
  iob_batch *b = arg;
  static const iob_mixed work = {.cpu_us = 1};
  for (int i = 0; i < 500; i++) {
    iob_task t = task_of(&iob_kind_mixed, 0, NULL);
    t.target = &work;
    assert_cmp(iob_batch_submit(b, &t), >=, 0);
    assert_code(iob_batch_cancel_op(b, 0), IOB_EPERM);
  }
  iob_batch_close(b);
  iob_batch_unref(b);
}

static void
a_checked_kind_is_submitted_from_another_thread_safely(void **state) {
  (void)state;
  test_loop t;
  test_loop_init(&t);
  iob_config c = open_config(NULL);
  iob_batch *b = test_loop_start(&t, &c, NULL);
  uv_thread_t tid;
  assert_code(uv_thread_create(&tid, feed_mixed, iob_batch_ref(b)), 0);
  test_loop_run(&t);
  assert_code(uv_thread_join(&tid), 0);
  assert_int_equal(test_loop_counts(&t, b)->ok, 500);
  test_loop_close(&t);
  iob_batch_free(b);
}

/* ---- every loop style -------------------------------------------------------- */

/* A kind that counts its opens and closes, per target, and checks that
 * each operation gets the state opened for its own target. */
typedef struct counted_target {
  atomic_int opens, closes, wrong;
} counted_target;

static int counted_open(iob_batch *b, const void *target, void *shared) {
  (void)b;
  counted_target *t = (counted_target *)(uintptr_t)target;
  atomic_fetch_add(&t->opens, 1);
  *(const void **)shared = target;
  return 0;
}

static void counted_close(iob_batch *b, const void *target, void *shared) {
  (void)b;
  (void)shared;
  counted_target *t = (counted_target *)(uintptr_t)target;
  atomic_fetch_add(&t->closes, 1);
}

static int counted_run(iob_op *op) {
  counted_target *t = (counted_target *)(uintptr_t)op->target;
  if (*(const void *const *)op->shared != op->target)
    atomic_fetch_add(&t->wrong, 1);
  return 0;
}

static const iob_kind counted = {.name = "counted",
                                 .flags = IOB_KIND_WAITS,
                                 .batch_size = sizeof(void *),
                                 .run = counted_run,
                                 .open = counted_open,
                                 .close = counted_close};

static void mixed_kinds_and_targets_run_in_every_loop_style(void **state) {
  (void)state;
  const iob_style *styles[] = {&iob_style_loop, &iob_style_sequential,
                               &iob_style_loops};
  for (int k = 0; k < 3; k++) {
    counted_target targets[2] = {0};
    test_loop t;
    test_loop_init(&t);
    iob_config c = open_config(styles[k]);
    c.timeout_ms = 100;
    iob_loops_options two;
    iob_loops_options_init(&two);
    two.loops = 2;
    if (styles[k] == &iob_style_loops)
      c.style_options = &two;
    iob_batch *b = test_loop_start(&t, &c, NULL);
    for (int i = 0; i < 40; i++) {
      iob_task task;
      switch (i % 5) {
      case 0:
        task = task_of(&iob_kind_wait, 5, NULL);
        break;
      case 1:
        task = task_of(&test_kind_later, 5, NULL);
        task.input = "mixed";
        break;
      case 2:
        task = task_of(&quick, 0, NULL);
        break;
      case 3:
        task = task_of(&counted, 2, NULL);
        task.target = &targets[i / 5 % 2];
        break;
      default:
        task = task_of(&test_kind_later, 5000, NULL); /* its timeout ends it */
      }
      submit_ok(b, &task, i);
    }
    iob_batch_close(b);
    test_loop_run(&t);
    const iob_record *r = iob_batch_records(b, NULL);
    for (int i = 0; i < 40; i++) {
      int want = i % 5 == 4 ? IOB_ETIMEDOUT : 0;
      if (r[i].status != want)
        fail_msg("%s: operation %d (%d) ended with %s",
                 iob_style_name(styles[k]), i, i % 5,
                 iob_err_name(r[i].status));
    }
    for (int j = 0; j < 2; j++) {
      int opens = atomic_load(&targets[j].opens);
      assert_cmp(opens, >=, 1);
      /* Once in the batch; under loops, once on each loop that ran one. */
      assert_cmp(opens, <=, (styles[k] == &iob_style_loops ? 2 : 1));
      assert_int_equal(atomic_load(&targets[j].closes), opens);
      assert_int_equal(atomic_load(&targets[j].wrong), 0);
    }
    iob_outcome o;
    assert_code(iob_batch_outcome(b, 1, &o), 0);
    assert_string_equal(o.message, "mixed");
    test_loop_close(&t);
    iob_batch_free(b);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          what_is_submitted_before_the_start_runs_and_the_batch_ends_once_closed),
      cmocka_unit_test(an_open_batch_does_not_end_until_it_is_closed),
      cmocka_unit_test(follow_ups_submitted_from_on_op_run_as_a_chain),
      cmocka_unit_test(kinds_mix_in_one_batch_and_the_report_says_so),
      cmocka_unit_test(
          another_thread_submits_in_order_and_the_batch_waits_for_its_close),
      cmocka_unit_test(max_in_flight_holds_for_submitted_work),
      cmocka_unit_test(a_cancel_closes_an_open_batch_and_settles_what_waits),
      cmocka_unit_test(the_first_failure_cancels_the_rest_with_fail_fast),
      cmocka_unit_test(a_deadline_ends_an_open_batch_never_closed),
      cmocka_unit_test(a_timeout_stops_a_submitted_operation),
      cmocka_unit_test(bad_submissions_get_clear_codes_and_add_nothing),
      cmocka_unit_test(
          a_submission_from_a_handler_inside_one_is_refused_not_hung),
      cmocka_unit_test(a_batch_freed_before_it_starts_frees_what_was_submitted),
      cmocka_unit_test(a_finished_open_batch_takes_nothing_and_runs_once),
      cmocka_unit_test(
          a_submitted_operations_target_is_in_use_while_the_batch_runs),
      cmocka_unit_test(
          a_child_batch_is_one_operation_that_settles_after_all_of_its_own),
      cmocka_unit_test(cancelling_the_parent_cancels_its_children_first),
      cmocka_unit_test(a_parents_timeout_ends_its_child),
      cmocka_unit_test(a_missing_or_running_child_fails_its_operation),
      cmocka_unit_test(a_run_on_the_loop_keeps_its_slot_among_started_ones),
      cmocka_unit_test(cancelling_one_submitted_operation_reaches_it),
      cmocka_unit_test(
          an_operation_whose_kind_opening_cancels_the_batch_never_runs),
      cmocka_unit_test(a_submission_from_a_timer_of_yours_waits_from_then),
      cmocka_unit_test(a_batch_cancelled_before_it_starts_takes_nothing_more),
      cmocka_unit_test(
          an_open_batchs_queued_time_counts_the_wait_for_a_slot_in_every_style),
      cmocka_unit_test(an_arrival_the_submitter_gives_counts_from_then),
      cmocka_unit_test(an_arrival_in_the_future_is_refused_and_adds_nothing),
      cmocka_unit_test(
          a_shared_workers_pool_refuses_a_kind_it_has_no_stack_for),
      cmocka_unit_test(a_checked_kind_is_submitted_from_another_thread_safely),
      cmocka_unit_test(mixed_kinds_and_targets_run_in_every_loop_style),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
