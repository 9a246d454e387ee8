/* The helper library every test links: see common.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common.h"

/* ---- configurations and reports ----------------------------------------- */

iob_config config_of(const iob_style *style, uint32_t count,
                     uint64_t duration_ms) {
  iob_config c;
  iob_config_init(&c);
  if (style != NULL)
    c.style = style;
  c.count = count;
  c.duration_ms = duration_ms;
  return c;
}

iob_report report_of(const iob_config *config) {
  iob_batch *b = run_on_own_loop(config, NULL);
  iob_report r;
  assert_code(iob_batch_report(b, &r), 0);
  assert_code(iob_batch_free(b), 0);
  return r;
}

iob_report run_report(const iob_style *style, uint32_t count,
                      uint64_t duration_ms) {
  iob_config c = config_of(style, count, duration_ms);
  return report_of(&c);
}

size_t style_count(void) {
  size_t n = 0;
  while (iob_style_at(n) != NULL)
    n++;
  assert_cmp(n, <=, STYLES_MAX);
  return n;
}

/* ---- timing ------------------------------------------------------------- */

void test_assert_code(const char *what, int actual, int expected,
                      const char *file, int line) {
  if (actual == expected)
    return;
  char a[80], e[80]; /* iob_err_name() may reuse its buffer */
  /* A value above 0 is no code (iob_batch_submit()'s index): a number. */
  snprintf(a, sizeof(a), "%s",
           actual > 0 ? "not a code" : iob_err_name(actual));
  snprintf(e, sizeof(e), "%s",
           expected > 0 ? "not a code" : iob_err_name(expected));
  print_error("%s: %s (%d), expected %s (%d)\n", what, a, actual, e, expected);
  _fail(file, line);
}

void test_assert_cmp(const char *what, bool holds, long double a, long double b,
                     const char *file, int line) {
  if (holds)
    return;
  print_error("%s: %.17Lg and %.17Lg\n", what, a, b);
  _fail(file, line);
}

void test_assert_ms(const char *what, double ms, double lo, double hi,
                    const char *file, int line) {
  bool low = !isnan(lo) && !(ms >= lo);
  bool high = !isnan(hi) && !(ms < hi);
  if (!low && !high)
    return;
  /* "MS(r.elapsed_ns)" reads as "r.elapsed_ns". */
  int len = (int)strlen(what);
  if (len > 4 && strncmp(what, "MS(", 3) == 0 && what[len - 1] == ')') {
    int depth = 1, k = 3;
    for (; k < len && depth > 0; k++)
      depth += (what[k] == '(') - (what[k] == ')');
    if (k == len) { /* its parenthesis closes at the end */
      what += 3;
      len -= 4;
    }
  }
  if (isnan(hi))
    print_error("%.*s: %.1f ms, expected at least %.6g ms\n", len, what, ms,
                lo);
  else if (isnan(lo))
    print_error("%.*s: %.1f ms, expected less than %.6g ms\n", len, what, ms,
                hi);
  else
    print_error("%.*s: %.1f ms, expected %.6g..%.6g ms\n", len, what, ms, lo,
                hi);
  _fail(file, line);
}

/* ---- a batch on a loop of the test's own -------------------------------- */

/* The entry of batch b, newest first: a batch freed in its callback may
 * leave its address to a later one. */
static test_loop_batch *entry_of(const test_loop *t, const iob_batch *b) {
  for (int k = t->nbatches - 1; k >= 0; k--)
    if (t->batches[k].batch == b)
      return (test_loop_batch *)&t->batches[k];
  fail_msg("batch %p was not started on this test_loop", (const void *)b);
  return NULL;
}

static test_loop *test_loop_of(const iob_batch *b) {
  uv_loop_t *loop = iob_batch_loop(b);
  assert_non_null(loop);
  return loop->data;
}

static void count_op(iob_batch *batch, uint32_t index,
                     const iob_record *record) {
  test_loop_batch *e = entry_of(test_loop_of(batch), batch);
  if (e->open && index >= e->count) { /* submitted: make room */
    uint32_t n = index < 512 ? 1024 : 2 * index;
    e->op_seen = realloc(e->op_seen, n);
    assert_non_null(e->op_seen);
    memset(e->op_seen + e->count, 0, n - e->count);
    e->count = n;
  }
  if (index >= e->count)
    fail_msg("operation %u reported, of %u", index, e->count);
  test_counts *c = &e->counts;
  c->op_calls++;
  if (record->status == 0) {
    c->ok++;
  } else {
    c->failed++;
    c->cancelled += record->status == IOB_ECANCELED;
  }
  if (e->op_seen[index] < UINT8_MAX)
    e->op_seen[index]++;
  if (e->on_op != NULL)
    e->on_op(batch, index, record);
}

static void count_batch(iob_batch *batch, int status) {
  test_loop_batch *e = entry_of(test_loop_of(batch), batch);
  if (e->open) /* every operation it was given */
    iob_batch_records(batch, &e->count);
  e->counts.batch_calls++;
  e->counts.batch_status = status;
  if (e->cb != NULL)
    e->cb(batch, status); /* may free the batch */
}

void test_loop_init(test_loop *t) {
  *t = (test_loop){0};
  assert_code(uv_loop_init(&t->loop), 0);
  t->loop.data = t;
}

iob_batch *test_loop_create(test_loop *t, const iob_config *config,
                            iob_batch_cb cb) {
  assert_cmp(t->nbatches, <, TEST_LOOP_BATCHES);
  test_loop_batch *e = &t->batches[t->nbatches];
  *e = (test_loop_batch){.cb = cb,
                         .on_op = config->on_op,
                         .count = config->count,
                         .open = config->open};
  iob_config c = *config;
  c.on_op = count_op;
  assert_code(iob_batch_create(&e->batch, &c), 0);
  e->op_seen = calloc(c.count ? c.count : 1, 1);
  assert_non_null(e->op_seen);
  t->nbatches++;
  return e->batch;
}

void test_loop_start_created(test_loop *t, iob_batch *b) {
  entry_of(t, b); /* created by test_loop_create() */
  assert_code(iob_batch_start(b, &t->loop, count_batch), 0);
}

iob_batch *test_loop_start(test_loop *t, const iob_config *config,
                           iob_batch_cb cb) {
  iob_batch *b = test_loop_create(t, config, cb);
  test_loop_start_created(t, b);
  return b;
}

void test_loop_run(test_loop *t) {
  assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
}

static void cancel_now(uv_timer_t *timer) {
  test_loop *t = timer->data;
  assert_code(iob_batch_cancel(t->cancel_batch), 0);
  assert_code(iob_batch_cancel(t->cancel_batch), 0);
  uv_close((uv_handle_t *)timer, NULL);
}

void test_loop_cancel_after(test_loop *t, iob_batch *b, uint64_t ms) {
  t->cancel_batch = b;
  assert_code(uv_timer_init(&t->loop, &t->cancel_timer), 0);
  t->cancel_timer.data = t;
  /* From now, not from the loop's last reading of its clock: a batch
   * started since counts its times from then. */
  uv_update_time(&t->loop);
  assert_code(uv_timer_start(&t->cancel_timer, cancel_now, ms, 0), 0);
}

static void call_at(uv_timer_t *timer) {
  test_loop_timer *at = timer->data;
  at->fn(at->t, at->arg);
  uv_close((uv_handle_t *)timer, NULL);
}

void test_loop_at(test_loop *t, uint64_t ms, test_loop_fn fn, void *arg) {
  assert_cmp(t->ntimers, <, TEST_LOOP_TIMERS);
  test_loop_timer *at = &t->timers[t->ntimers++];
  *at = (test_loop_timer){.t = t, .fn = fn, .arg = arg};
  assert_code(uv_timer_init(&t->loop, &at->timer), 0);
  at->timer.data = at;
  uv_update_time(&t->loop); /* from now, as above */
  assert_code(uv_timer_start(&at->timer, call_at, ms, 0), 0);
}

const test_counts *test_loop_counts(const test_loop *t, const iob_batch *b) {
  return &entry_of(t, b)->counts;
}

static void name_handle(uv_handle_t *handle, void *arg) {
  (void)arg;
  print_error("  left on the loop: a %s handle%s\n",
              uv_handle_type_name(uv_handle_get_type(handle)),
              uv_is_closing(handle) ? ", closing" : "");
}

void test_loop_close(test_loop *t) {
  for (int k = 0; k < t->nbatches; k++) {
    test_loop_batch *e = &t->batches[k];
    if (e->counts.batch_calls != 1)
      fail_msg("batch %d called back %d times, not once", k,
               e->counts.batch_calls);
    for (uint32_t i = 0; i < e->count; i++)
      if (e->op_seen[i] != 1)
        fail_msg("batch %d: operation %u reported %u times, not once", k, i,
                 e->op_seen[i]);
    free(e->op_seen);
    e->op_seen = NULL;
  }
  t->nbatches = 0;
  t->ntimers = 0;
  int err = uv_loop_close(&t->loop);
  if (err != 0) {
    uv_walk(&t->loop, name_handle, NULL);
    fail_msg("uv_loop_close: %s", uv_err_name(err));
  }
}

iob_batch *test_loop_run_tasks(test_loop *t, const iob_style *style,
                               uint32_t limit, const iob_kind *kind,
                               const void *target, const void *inputs,
                               size_t stride, uint32_t n) {
  iob_config c;
  iob_config_init(&c);
  c.style = style;
  c.open = 1;
  c.max_in_flight = limit;
  iob_batch *b = test_loop_create(t, &c, NULL);
  for (uint32_t i = 0; i < n; i++) {
    iob_task task;
    iob_task_init(&task);
    task.kind = kind;
    task.target = target;
    task.input = (const char *)inputs + i * stride;
    int index = iob_batch_submit(b, &task);
    if (index != (int)i)
      fail_msg("%s: submitting %u gave %s", iob_style_name(style), i,
               index < 0 ? iob_err_name(index) : "another index");
  }
  assert_code(iob_batch_close(b), 0);
  test_loop_start_created(t, b);
  test_loop_run(t);
  return b;
}

const void *test_result_of(const iob_batch *b, uint32_t i) {
  iob_outcome o;
  assert_code(iob_batch_outcome(b, i, &o), 0);
  if (o.status != 0)
    fail_msg("operation %u: %s (%s)", i, iob_err_name(o.status),
             o.message ? o.message : "no message");
  assert_non_null(o.result);
  return o.result;
}

void test_failed_with(const iob_batch *b, uint32_t i, int status,
                      const char *words) {
  iob_outcome o;
  assert_code(iob_batch_outcome(b, i, &o), 0);
  if (o.status != status || o.message == NULL ||
      strstr(o.message, words) == NULL)
    fail_msg("operation %u: %s (%s), expected %s with \"%s\"", i,
             iob_err_name(o.status), o.message ? o.message : "no message",
             iob_err_name(status), words);
}

iob_batch *run_on_own_loop(const iob_config *config, test_counts *counts) {
  test_loop t;
  test_loop_init(&t);
  iob_batch *b = test_loop_start(&t, config, NULL);
  test_loop_run(&t);
  if (counts != NULL)
    *counts = t.batches[0].counts;
  test_loop_close(&t);
  return b;
}

iob_batch *run_cancelled_after(const iob_config *config, uint64_t ms) {
  test_loop t;
  test_loop_init(&t);
  iob_batch *b = test_loop_start(&t, config, NULL);
  test_loop_cancel_after(&t, b, ms);
  test_loop_run(&t);
  test_loop_close(&t);
  return b;
}

iob_task test_task(const iob_kind *kind, const void *target,
                   uint32_t duration_ms) {
  iob_task task;
  iob_task_init(&task);
  task.kind = kind;
  task.target = target;
  task.duration_ms = duration_ms;
  return task;
}

static void on_child_exit(uv_process_t *child, int64_t status, int signal) {
  *(int64_t *)child->data = signal ? -signal : status;
  uv_close((uv_handle_t *)child, NULL);
}

int64_t test_run_child(char *const args[]) {
  test_loop loop;
  test_loop_init(&loop);
  uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                   {.flags = UV_INHERIT_FD, .data.fd = 1},
                                   {.flags = UV_INHERIT_FD, .data.fd = 2}};
  uv_process_options_t options = {.file = args[0],
                                  .args = (char **)args,
                                  .exit_cb = on_child_exit,
                                  .stdio = stdio,
                                  .stdio_count = 3};
  uv_process_t child;
  int64_t status = -1000;
  child.data = &status;
  assert_code(uv_spawn(&loop.loop, &child, &options), 0);
  test_loop_run(&loop);
  test_loop_close(&loop);
  return status;
}

bool test_under_valgrind(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  bool valgrind = false;
  while (f != NULL && !valgrind && fgets(line, sizeof(line), f) != NULL)
    valgrind = strstr(line, "vgpreload") != NULL;
  if (f != NULL)
    fclose(f);
  return valgrind;
}

/* ---- kinds --------------------------------------------------------------- */

static int patient_run(iob_op *op) {
  for (uint32_t ms = 0; ms < op->duration_ms; ms++) {
    int why = iob_op_stopping(op);
    if (why != 0)
      return why;
    uv_sleep(1);
  }
  return 0;
}

const iob_kind test_kind_patient = {.name = "patient", .run = patient_run};

/* ---- a timer for a kind's start() ------------------------------------------ */

static void timer_closed(uv_handle_t *h) {
  test_timer *t = h->data;
  iob_op_done(t->op, t->status);
}

void test_timer_end(test_timer *t, int status) {
  if (uv_is_closing((uv_handle_t *)&t->timer))
    return;
  t->status = status;
  uv_close((uv_handle_t *)&t->timer, timer_closed);
}

static void timer_fired(uv_timer_t *timer) {
  test_timer *t = timer->data;
  test_timer_end(t, t->fired(t->op));
}

int test_timer_start(test_timer *t, iob_op *op, uint64_t ms,
                     int (*fired)(iob_op *op)) {
  t->op = op;
  t->fired = fired;
  uv_timer_init(iob_batch_loop(op->batch), &t->timer);
  t->timer.data = t;
  return uv_timer_start(&t->timer, timer_fired, ms, 0);
}

/* "later": start() arms a timer for the duration; its value is its index
 * and its message the input, if any. stop() ends it at once. The state
 * is large on purpose (more than a wait's slot holds), and written whole,
 * so that a slot too small shows under ASan. */
typedef struct later_op {
  test_timer timer;
  char room[4096];
} later_op;

static int later_fired(iob_op *op) {
  iob_op_set_value(op, op->index);
  if (op->input != NULL)
    iob_op_set_message(op, op->input);
  return 0;
}

static int later_start(iob_op *op) {
  later_op *l = op->state;
  memset(l->room, 0x5a, sizeof(l->room));
  return test_timer_start(&l->timer, op, op->duration_ms, later_fired);
}

static void later_stop(iob_op *op) {
  later_op *l = op->state;
  test_timer_end(&l->timer, 0);
}

static int copy_text(const void *input, void **copy) {
  if (strlen(input) > 100)
    return IOB_ERANGE; /* an input the kind refuses */
  *copy = strdup(input);
  return *copy != NULL ? 0 : IOB_ENOMEM;
}

const iob_kind test_kind_later = {
    .name = "later",
    .op_size = sizeof(later_op),
    .start = later_start,
    .stop = later_stop,
    .input_copy = copy_text,
    .input_free = free,
};

/* "flaky": see common.h. */
static int flaky_outcome(iob_op *op) {
  test_flaky *f = (test_flaky *)(uintptr_t)op->target;
  atomic_fetch_add(&f->attempts, 1);
  if (op->attempt >= f->fails && !atomic_load(&f->down))
    return 0;
  char text[64];
  snprintf(text, sizeof(text), "attempt %u failed", op->attempt);
  iob_op_set_message(op, text);
  iob_op_set_value(op, 100 + op->attempt);
  return f->status;
}

static int flaky_start(iob_op *op) {
  return test_timer_start(op->state, op, op->duration_ms, flaky_outcome);
}

static void flaky_stop(iob_op *op) { test_timer_end(op->state, IOB_ECANCELED); }

static int flaky_run(iob_op *op) {
  for (uint32_t ms = 0; ms < op->duration_ms; ms++) {
    int stop = iob_op_stopping(op);
    if (stop != 0)
      return stop;
    uv_sleep(1);
  }
  return flaky_outcome(op);
}

static int flaky_check(const iob_config *c) {
  return c->target != NULL ? 0 : IOB_EINVAL;
}

const iob_kind test_kind_flaky = {
    .name = "flaky",
    .op_size = sizeof(test_timer),
    .check = flaky_check,
    .start = flaky_start,
    .run = flaky_run,
    .stop = flaky_stop,
};

void check_target_busy_while_running(const iob_config *config,
                                     int (*destroy)(void *target)) {
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = *config;
    c.style = style;
    test_loop t;
    test_loop_init(&t);
    iob_batch *b = test_loop_start(&t, &c, NULL);
    if (destroy((void *)(uintptr_t)c.target) != IOB_EBUSY)
      fail_msg("%s: a target in use was not refused", iob_style_name(style));
    test_loop_run(&t);
    test_loop_close(&t);
    assert_code(iob_batch_free(b), 0);
  }
}

/* ---- peers on loopback ---------------------------------------------------- */

int test_loopback_socket(bool listens, int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_cmp(fd, >=, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  if (listens)
    assert_int_equal(listen(fd, 64), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}
