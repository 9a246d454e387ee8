/* Thousands of batches one after another on one loop, in every style and
 * with kinds that hand things back: nothing may grow. Each batch starts
 * the next from its callback, as a long-lived application would. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* The resident set, in KiB, from /proc (0 where there is none). */
static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[128];
  long kib = 0;
  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return kib;
}

/* A kind that hands back a message and a result for every operation. */
static int talk(iob_op *op) {
  iob_op_set_message(op, "said something");
  iob_op_set_result(op, malloc(64));
  return op->index % 2 ? UV_ECONNRESET : 0;
}

static const iob_kind talking_kind = {
    .name = "talking", .op_size = 48, .run = talk, .free_result = free};

/* Sanitizers and valgrind hold freed memory back on purpose (quarantine,
 * to catch use after free): the RSS says nothing under them, and their
 * own leak checks stand in for it. */
static bool rss_means_something(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return false;
#else
  return !test_under_valgrind();
#endif
}

typedef struct soak {
  uv_loop_t *loop;
  iob_config config;
  int follow_ups; /* an open batch's, submitted so far */
  int left;       /* batches still to run */
  long rss_mid;   /* after the first half, once everything warmed up */
  int halfway;
} soak;

static void next_batch(soak *s);

static void on_done(iob_batch *batch, int status) {
  soak *s = iob_batch_data(batch);
  assert_code(iob_batch_free(batch), 0);
  if (--s->left == s->halfway)
    s->rss_mid = rss_kib();
  if (s->left > 0)
    next_batch(s);
}

/* An open batch's first four operations each submit one more, of the
 * batch's kind; the fourth submission closes it. */
static void follow_up(iob_batch *batch, uint32_t index, const iob_record *r) {
  (void)index;
  (void)r;
  soak *s = iob_batch_data(batch);
  if (s->follow_ups == 4)
    return;
  iob_task t;
  iob_task_init(&t);
  t.kind = s->config.kind;
  assert_cmp(iob_batch_submit(batch, &t), >=, 4);
  if (++s->follow_ups == 4)
    assert_code(iob_batch_close(batch), 0);
}

static void next_batch(soak *s) {
  s->follow_ups = 0;
  iob_batch *b;
  assert_code(iob_batch_create(&b, &s->config), 0);
  assert_code(iob_batch_start(b, s->loop, on_done), 0);
}

static void batch_after_batch_leaves_nothing_behind(void **state) {
  const iob_kind *kinds[] = {&iob_kind_wait, &talking_kind};
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    for (int j = 0; j < 4; j++) {
      bool open = j >= 2; /* then open batches, fed from on_op */
      uv_loop_t loop;
      assert_code(uv_loop_init(&loop), 0);
      /* Threads cost a thread per operation: fewer batches of them. */
      int batches = iob_style_flags(style) & IOB_STYLE_THREAD_EACH ? 400
                    : open                                         ? 1000
                                                                   : 2000;
      /* Where the RSS says nothing, what is left behind is the leak
       * checkers' to see: a quarter of the batches show it as well. */
      if (!rss_means_something())
        batches /= 4;
      soak s = {.loop = &loop, .left = batches, .halfway = batches / 2};
      s.config = config_of(style, open ? 4 : 8, 0);
      s.config.kind = kinds[j % 2];
      s.config.data = &s;
      s.config.open = open;
      s.config.on_op = open ? follow_up : NULL;
      next_batch(&s);
      assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
      assert_int_equal(s.left, 0);
      assert_code(uv_loop_close(&loop), 0);
      long growth = rss_kib() - s.rss_mid;
      if (growth > 1024 && rss_means_something())
        fail_msg("%s/%s%s: RSS grew %ld KiB over the second half of %d "
                 "batches (expected under 1024)",
                 iob_style_name(style), kinds[j % 2]->name,
                 open ? " (open)" : "", growth, batches);
    }
  }
}

/* One open batch that lives long: 200,000 operations, each submitted
 * from the on_op of the one before, eight at a time. Its records are
 * kept, by design; nothing else may grow with them (slots, timer lists,
 * kinds opened). */
typedef struct long_lived {
  uint32_t left;
} long_lived;

static void keep_going(iob_batch *batch, uint32_t index, const iob_record *r) {
  (void)index;
  assert_int_equal(r->status, 0);
  long_lived *l = iob_batch_data(batch);
  if (l->left == 0)
    return;
  iob_task t;
  iob_task_init(&t);
  t.duration_ms = l->left % 64 == 0; /* two timer lists, reused */
  assert_cmp(iob_batch_submit(batch, &t), >=, 0);
  if (--l->left == 0)
    assert_code(iob_batch_close(batch), 0);
}

static void a_long_lived_open_batch_grows_by_its_records_only(void **state) {
  (void)state;
  /* Where the RSS says nothing (sanitizers, valgrind), a tenth of it: their
   * own checks stand in for the bound. */
  const uint32_t total = rss_means_something() ? 200000 : 20000;
  long_lived l = {.left = total - 8};
  iob_config c = config_of(&iob_style_loop, 8, 0);
  c.open = 1;
  c.on_op = keep_going;
  c.data = &l;
  long before = rss_kib();
  test_counts n;
  iob_batch *b = run_on_own_loop(&c, &n);
  long growth = rss_kib() - before;
  assert_int_equal(n.ok, total);
  /* A task of 168 bytes and a gathered record of 32, and the allocator's
   * slack: under 256 bytes an operation. */
  if (rss_means_something() && growth * 1024.0 / total > 256)
    fail_msg("RSS grew %ld KiB for %u operations: %.0f bytes each "
             "(expected under 256)",
             growth, total, growth * 1024.0 / total);
  assert_code(iob_batch_free(b), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(batch_after_batch_leaves_nothing_behind),
      cmocka_unit_test(a_long_lived_open_batch_grows_by_its_records_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
