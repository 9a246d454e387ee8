/* Between batches: a limit several batches share (never exceeded, fair,
 * one loop's), and a group told once all its batches have ended. */
#include <stdatomic.h>
#include <stdlib.h>

#include "common.h"

/* ---- a shared limit ------------------------------------------------------ */

/* What the samplers saw of a limit: the most permits in use, and the
 * times the permits were exceeded or disagreed with the batches' own
 * counters. */
typedef struct sampler {
  iob_limit *limit;
  uint32_t permits;
  uint32_t peak;
  uint32_t samples;
  uint32_t over;      /* in use above the permits */
  uint32_t disagreed; /* in use not the batches' in flight, between calls */
  iob_batch *batches[TEST_LOOP_BATCHES];
  int nbatches;
  uv_check_t check;
} sampler;

static sampler *current; /* the kinds' and callbacks' way to it */

static void sample(sampler *s) {
  uint32_t used = iob_limit_in_use(s->limit);
  s->samples++;
  if (used > s->peak)
    s->peak = used;
  if (used > s->permits)
    s->over++;
}

/* Between two loop callbacks, every operation in flight holds a permit
 * and every permit is held by one. */
static void sample_quiet(uv_check_t *check) {
  sampler *s = check->data;
  sample(s);
  uint32_t flying = 0;
  for (int k = 0; k < s->nbatches; k++) {
    iob_progress p;
    assert_code(iob_batch_progress(s->batches[k], &p), 0);
    flying += p.in_flight;
  }
  if (flying != iob_limit_in_use(s->limit))
    s->disagreed++;
}

static void sample_on_op(iob_batch *batch, uint32_t index,
                         const iob_record *rec) {
  (void)batch;
  (void)index;
  (void)rec;
  sample(current);
}

/* A start() kind that samples the limit as it starts (it holds a permit
 * then) and ends after its duration on a timer of its own. */
typedef struct sampled_op {
  uv_timer_t timer;
  iob_op *op;
} sampled_op;

static void sampled_closed(uv_handle_t *h) {
  sampled_op *o = h->data;
  assert_code(iob_op_done(o->op, 0), 0);
}

static void sampled_over(uv_timer_t *t) {
  uv_close((uv_handle_t *)t, sampled_closed);
}

static int sampled_start(iob_op *op) {
  sampled_op *o = op->state;
  sample(current);
  assert_cmp(iob_limit_in_use(current->limit), >=, 1);
  o->op = op;
  assert_code(uv_timer_init(iob_batch_loop(op->batch), &o->timer), 0);
  o->timer.data = o;
  return uv_timer_start(&o->timer, sampled_over, op->duration_ms, 0);
}

static void sampled_stop(iob_op *op) {
  sampled_op *o = op->state;
  uv_timer_stop(&o->timer);
  uv_close((uv_handle_t *)&o->timer, sampled_closed);
}

static const iob_kind sampled_kind = {
    .name = "sampled",
    .op_size = sizeof(sampled_op),
    .start = sampled_start,
    .stop = sampled_stop,
};

static void sampler_open(sampler *s, test_loop *t, uint32_t permits) {
  *s = (sampler){.permits = permits};
  assert_code(iob_limit_create(&s->limit, permits), 0);
  current = s;
  assert_code(uv_check_init(&t->loop, &s->check), 0);
  s->check.data = s;
  assert_code(uv_check_start(&s->check, sample_quiet), 0);
  uv_unref((uv_handle_t *)&s->check); /* the batches hold the loop */
}

static iob_batch *sampler_start(sampler *s, test_loop *t, iob_config *c,
                                iob_batch_cb cb) {
  c->shared_limit = s->limit;
  if (c->on_op == NULL)
    c->on_op = sample_on_op;
  iob_batch *b = test_loop_start(t, c, cb);
  s->batches[s->nbatches++] = b;
  return b;
}

static void sampler_close(sampler *s, test_loop *t) {
  uv_close((uv_handle_t *)&s->check, NULL);
  test_loop_run(t);
  assert_int_equal(iob_limit_in_use(s->limit), 0);
  assert_code(iob_limit_free(s->limit), 0);
  for (int k = 0; k < s->nbatches; k++)
    assert_code(iob_batch_free(s->batches[k]), 0);
  current = NULL;
}

static void a_shared_limit_is_never_exceeded_across_batches(void **state) {
  test_loop t;
  test_loop_init(&t);
  sampler s;
  sampler_open(&s, &t, 5);
  uint32_t durations[300];
  for (int i = 0; i < 300; i++)
    durations[i] = (uint32_t)(i % 20);
  iob_config c = config_of(&iob_style_loop, 300, 0);
  c.durations_ms = durations;
  sampler_start(&s, &t, &c, NULL);
  c = config_of(&iob_style_sequential, 30, 2);
  sampler_start(&s, &t, &c, NULL);
  c = config_of(&iob_style_pool, 60, 3);
  sampler_start(&s, &t, &c, NULL);
  c = config_of(&iob_style_threads, 60, 3);
  c.max_in_flight = 3;
  sampler_start(&s, &t, &c, NULL);
  c = config_of(&iob_style_loop, 100, 4);
  c.kind = &sampled_kind;
  sampler_start(&s, &t, &c, NULL);
  test_loop_run(&t);
  for (int k = 0; k < s.nbatches; k++) {
    const test_counts *n = test_loop_counts(&t, s.batches[k]);
    assert_int_equal(n->batch_status, 0);
    assert_int_equal(n->failed, 0);
    iob_report r;
    assert_code(iob_batch_report(s.batches[k], &r), 0);
    assert_cmp(r.peak_in_flight, <=, 5);
  }
  print_message("      %u samples, peak %u of 5 permits\n", s.samples, s.peak);
  assert_int_equal(s.over, 0);
  assert_int_equal(s.disagreed, 0);
  assert_int_equal(s.peak, 5); /* it was used to the full */
  sampler_close(&s, &t);
  test_loop_close(&t);
}

/* Each batch's own max_in_flight still holds under a larger shared limit. */
static void max_in_flight_still_holds_under_a_shared_limit(void **state) {
  test_loop t;
  test_loop_init(&t);
  sampler s;
  sampler_open(&s, &t, 10);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, 12, 20);
    c.max_in_flight = 2;
    sampler_start(&s, &t, &c, NULL);
  }
  test_loop_run(&t);
  for (int k = 0; k < s.nbatches; k++) {
    iob_report r;
    assert_code(iob_batch_report(s.batches[k], &r), 0);
    assert_cmp(r.peak_in_flight, <=, 2);
    assert_int_equal(r.failed, 0);
  }
  assert_int_equal(s.over, 0);
  sampler_close(&s, &t);
  test_loop_close(&t);
}

/* The time each batch's callback ran, from the test's start. */
typedef struct ended_at {
  uint64_t t0;
  double ms[TEST_LOOP_BATCHES];
  iob_batch *batches[TEST_LOOP_BATCHES];
  int n;
} ended_at;

static ended_at *clock_of; /* the callbacks' way to it */

static void note_end(iob_batch *batch, int status) {
  (void)status;
  for (int k = 0; k < clock_of->n; k++)
    if (clock_of->batches[k] == batch)
      clock_of->ms[k] = MS(uv_hrtime() - clock_of->t0);
}

static void a_small_batch_gets_turns_beside_a_large_one(void **state) {
  test_loop t;
  test_loop_init(&t);
  sampler s;
  sampler_open(&s, &t, 4);
  ended_at e = {.t0 = uv_hrtime(), .n = 2};
  clock_of = &e;
  /* Alone, the large one takes 400 / 4 x 10 ms = 1 s. */
  iob_config c = config_of(&iob_style_loop, 400, 10);
  e.batches[0] = sampler_start(&s, &t, &c, note_end);
  c = config_of(&iob_style_loop, 10, 10);
  e.batches[1] = sampler_start(&s, &t, &c, note_end);
  test_loop_run(&t);
  print_message("      the batch of 10 ended at %.0f ms, of 400 at %.0f ms\n",
                e.ms[1], e.ms[0]);
  /* Every other permit is the small one's: about 5 turns of 10 ms. */
  assert_ms_between(e.ms[1], 19, 400);
  assert_ms_between(e.ms[0], 999, 3000);
  assert_cmp(e.ms[1] * 4, <, e.ms[0]);
  const iob_record *small = iob_batch_records(e.batches[1], NULL);
  for (int i = 0; i < 10; i++) /* none waited for the large one to end */
    assert_ms_below(MS(small[i].started_ns), 400);
  assert_int_equal(s.over, 0);
  sampler_close(&s, &t);
  test_loop_close(&t);
  clock_of = NULL;
}

static void cancel_it(test_loop *t, void *arg) {
  (void)t;
  assert_code(iob_batch_cancel(arg), 0);
}

static void a_batch_cancelled_while_queued_leaves_and_the_rest_go_on(void **s) {
  test_loop t;
  test_loop_init(&t);
  sampler smp;
  sampler_open(&smp, &t, 2);
  uint64_t t0 = uv_hrtime();
  iob_config c = config_of(&iob_style_loop, 10, 100);
  iob_batch *a = sampler_start(&smp, &t, &c, NULL);
  /* B waits in the queue: A took both permits. */
  iob_batch *b = sampler_start(&smp, &t, &c, NULL);
  c = config_of(&iob_style_pool, 4, 100);
  iob_batch *cb = sampler_start(&smp, &t, &c, NULL);
  test_loop_at(&t, 50, cancel_it, b);
  test_loop_run(&t);
  double ms = MS(uv_hrtime() - t0);
  assert_code(test_loop_counts(&t, b)->batch_status, IOB_ECANCELED);
  assert_int_equal(test_loop_counts(&t, b)->cancelled, 10);
  const iob_record *rec = iob_batch_records(b, NULL);
  for (int i = 0; i < 10; i++) /* B never had a permit */
    assert_cmp(rec[i].started_ns, ==, rec[i].finished_ns);
  assert_int_equal(test_loop_counts(&t, a)->batch_status, 0);
  assert_int_equal(test_loop_counts(&t, a)->failed, 0);
  assert_int_equal(test_loop_counts(&t, cb)->batch_status, 0);
  assert_int_equal(test_loop_counts(&t, cb)->failed, 0);
  assert_int_equal(smp.over, 0);
  assert_int_equal(smp.disagreed, 0);
  /* 14 operations of 100 ms, two at a time: 700 ms. */
  assert_ms_between(ms, 699, 2000);
  sampler_close(&smp, &t);
  test_loop_close(&t);
}

/* A kind whose start() settles at once, in the two ways it can (returning
 * an error, calling iob_op_done() inside start()), or a ms later. */
static int quick_start(iob_op *op) {
  sample(current);
  switch (op->index % 3) {
  case 0:
    return UV_ECONNREFUSED;
  case 1:
    assert_code(iob_op_done(op, 0), 0);
    return 0;
  default:
    return sampled_start(op);
  }
}

static const iob_kind quick_kind = {
    .name = "quick",
    .op_size = sizeof(sampled_op),
    .start = quick_start,
    .stop = sampled_stop,
};

static void
operations_that_settle_inside_their_start_give_permits_back(void **state) {
  test_loop t;
  test_loop_init(&t);
  sampler s;
  sampler_open(&s, &t, 2);
  for (int k = 0; k < 3; k++) {
    iob_config c = config_of(&iob_style_loop, 300, 1);
    c.kind = &quick_kind;
    sampler_start(&s, &t, &c, NULL);
  }
  iob_config c = config_of(&iob_style_loop, 30, 2);
  sampler_start(&s, &t, &c, NULL);
  test_loop_run(&t);
  for (int k = 0; k < 3; k++) {
    const test_counts *n = test_loop_counts(&t, s.batches[k]);
    assert_int_equal(n->failed, 100); /* index % 3 == 0 */
    assert_int_equal(n->ok, 200);
  }
  assert_int_equal(test_loop_counts(&t, s.batches[3])->failed, 0);
  assert_int_equal(s.over, 0);
  assert_int_equal(s.disagreed, 0);
  sampler_close(&s, &t);
  test_loop_close(&t);
}

static int ended_status = 1;

static void log_end(iob_batch *batch, int status) {
  (void)batch;
  ended_status = status;
}

static void must_not_run(iob_batch *batch, int status) {
  (void)batch;
  fail_msg("a batch refused at its start called back (%s)",
           iob_err_name(status));
}

/* What the records claim, on one clock: each operation was in flight from
 * its queued time to its end. An operation launched in another batch's
 * turn (a permit that batch gave back) must not be recorded as launched
 * earlier than it was, nor have its wait cut short: then, by its
 * records, more operations than permits would overlap. */
typedef struct claims {
  uint64_t t0;
  double from[64], to[64]; /* on the test's clock */
  uint32_t duration_ms;
  int n;
  int short_waits;
} claims;

static claims *the_claims;

static void note_claim(iob_batch *batch, uint32_t index,
                       const iob_record *rec) {
  (void)batch;
  (void)index;
  claims *c = the_claims;
  assert_int_equal(rec->status, 0);
  assert_cmp(c->n, <, 64);
  double end = MS(uv_hrtime() - c->t0);
  c->to[c->n] = end;
  c->from[c->n] = end - MS(rec->finished_ns - rec->queued_ns);
  c->n++;
  sample(current);
}

/* The most claims that overlap, each shrunk by 2 ms at both ends (clock
 * readings shared by a burst may differ that much). */
static int most_overlapping(const claims *c) {
  int most = 0;
  for (int i = 0; i < c->n; i++) {
    double at = c->from[i] + 2; /* the most overlap begins at a start */
    int n = 0;
    for (int j = 0; j < c->n; j++)
      n += c->from[j] + 2 <= at && at < c->to[j] - 2;
    if (n > most)
      most = n;
  }
  return most;
}

static void
an_operation_launched_in_another_batchs_turn_waits_in_full(void **state) {
  for (uint32_t permits = 1; permits <= 2; permits++) {
    test_loop t;
    test_loop_init(&t);
    sampler s;
    sampler_open(&s, &t, permits);
    claims cl = {.t0 = uv_hrtime()};
    the_claims = &cl;
    /* Two permits: a batch of 6 on the loop takes both; a pool batch of
     * 2 queues behind it. The loop batch's two end in one timer callback,
     * which launches its third; a permit of the pool batch's later
     * launches its fourth, from the pool batch's callback. One permit:
     * every style, two each, in turns. */
    int ops = 0;
    if (permits == 2) {
      iob_config c = config_of(&iob_style_loop, 6, 100);
      c.on_op = note_claim;
      sampler_start(&s, &t, &c, NULL);
      c = config_of(&iob_style_pool, 2, 100);
      c.on_op = note_claim;
      sampler_start(&s, &t, &c, NULL);
      ops = 8;
    } else {
      const iob_style *style;
      for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
        iob_config c = config_of(style, 2, 50);
        c.on_op = note_claim;
        sampler_start(&s, &t, &c, NULL);
        ops += 2;
      }
    }
    test_loop_run(&t);
    double ms = MS(uv_hrtime() - cl.t0);
    assert_int_equal(cl.n, ops);
    int most = most_overlapping(&cl);
    if (most > (int)permits)
      fail_msg("by their records, %d operations were in flight at once "
               "with %u permits",
               most, permits);
    assert_int_equal(s.over, 0);
    /* Every wait in full, `permits` at a time. */
    assert_ms_at_least(ms, permits == 2 ? 399 : ops * 50 - 1);
    sampler_close(&s, &t);
    test_loop_close(&t);
    the_claims = NULL;
  }
}

static void a_limit_used_on_one_loop_refuses_a_batch_on_another(void **s) {
  iob_limit *limit;
  assert_code(iob_limit_create(&limit, 3), 0);
  test_loop a;
  test_loop_init(&a);
  uv_loop_t b;
  assert_code(uv_loop_init(&b), 0);
  iob_config c = config_of(&iob_style_loop, 6, 50);
  c.shared_limit = limit;
  iob_batch *on_a = test_loop_start(&a, &c, NULL);
  const iob_style *style;
  iob_batch *later = NULL;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    c.style = style;
    iob_batch *on_b;
    assert_code(iob_batch_create(&on_b, &c), 0);
    assert_code(iob_batch_start(on_b, &b, must_not_run), IOB_EINVAL);
    assert_null(iob_batch_loop(on_b));
    iob_progress p;
    assert_code(iob_batch_progress(on_b, &p), 0);
    assert_int_equal(p.waiting, 6);
    if (later == NULL)
      later = on_b; /* kept, to start once loop A is done with it */
    else
      assert_code(iob_batch_free(on_b), 0);
  }
  /* Nothing was left on loop B, and loop A's batch was not disturbed. */
  assert_int_equal(uv_run(&b, UV_RUN_NOWAIT), 0);
  assert_code(uv_loop_close(&b), 0);
  assert_int_equal(iob_limit_in_use(limit), 3);
  test_loop_run(&a);
  assert_int_equal(test_loop_counts(&a, on_a)->failed, 0);
  assert_code(iob_batch_free(on_a), 0);
  /* A's batch ended: the limit may serve another loop now, and the
   * refused batch may still start. */
  test_loop t;
  test_loop_init(&t);
  assert_code(iob_batch_start(later, &t.loop, log_end), 0);
  test_loop_run(&t);
  assert_int_equal(ended_status, 0);
  assert_code(uv_loop_close(&t.loop), 0);
  assert_code(iob_batch_free(later), 0);
  test_loop_close(&a);
  assert_code(iob_limit_free(limit), 0);
}

static void free_the_limit(iob_batch *batch, int status) {
  (void)status;
  iob_limit **limit = iob_batch_data(batch);
  assert_code(iob_limit_free(*limit), 0);
  *limit = NULL;
}

static void a_limit_in_use_cannot_be_freed(void **state) {
  iob_limit *limit;
  assert_code(iob_limit_create(&limit, 2), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config c = config_of(&iob_style_loop, 4, 20);
  c.shared_limit = limit;
  iob_batch *created;
  assert_code(iob_batch_create(&created, &c), 0);
  /* A batch not started does not hold it. */
  /* The first takes both permits and ends at 20 ms; the second has them
   * then, and ends last, at 60 ms. */
  c.count = 2;
  iob_batch *b = test_loop_start(&t, &c, NULL);
  c.count = 4;
  c.data = &limit;
  iob_batch *last = test_loop_start(&t, &c, free_the_limit);
  assert_code(iob_limit_free(limit), IOB_EBUSY);
  assert_int_equal(iob_limit_in_use(limit), 2);
  test_loop_run(&t);
  /* The later one ended last, and freed it in its callback. */
  assert_null(limit);
  test_loop_close(&t);
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_batch_free(last), 0);
  assert_code(iob_batch_free(created), 0);
}

static void a_limit_refuses_bad_arguments(void **state) {
  iob_limit *limit = (iob_limit *)&limit; /* must become NULL */
  assert_code(iob_limit_create(NULL, 1), IOB_EINVAL);
  assert_code(iob_limit_create(&limit, 0), IOB_ERANGE);
  assert_null(limit);
  limit = (iob_limit *)&limit;
  assert_code(iob_limit_create(&limit, IOB_COUNT_MAX + 1), IOB_ERANGE);
  assert_null(limit);
  assert_code(iob_limit_create(&limit, UINT32_MAX), IOB_ERANGE);
  assert_code(iob_limit_create(&limit, IOB_COUNT_MAX), 0);
  assert_int_equal(iob_limit_in_use(limit), 0);
  assert_code(iob_limit_free(limit), 0);
  assert_code(iob_limit_create(&limit, 1), 0);
  assert_code(iob_limit_free(limit), 0);
  assert_code(iob_limit_free(NULL), 0);
  assert_int_equal(iob_limit_in_use(NULL), 0);
}

/* ---- a group ------------------------------------------------------------- */

/* A log of callbacks, in the order they ran: 'b' for a batch, 'G' for
 * the group; and what the group was told. */
typedef struct story {
  char log[64];
  int n;
  int group_calls;
  int group_status;
  iob_group *group;
  bool free_in_cb;
} story;

static void log_batch(iob_batch *batch, int status) {
  (void)status;
  story *s = iob_batch_data(batch);
  s->log[s->n++] = 'b';
}

static void log_group(iob_group *group, int status) {
  story *s = iob_group_data(group);
  assert_ptr_equal(group, s->group);
  s->log[s->n++] = 'G';
  s->group_calls++;
  s->group_status = status;
  if (s->free_in_cb) {
    assert_code(iob_group_free(group), 0);
    s->group = NULL;
  }
}

static void a_group_calls_back_once_after_every_batch(void **state) {
  story s = {0};
  assert_code(iob_group_create(&s.group, log_group, &s), 0);
  assert_ptr_equal(iob_group_data(s.group), &s);
  test_loop t;
  test_loop_init(&t);
  iob_batch *b[STYLES_MAX];
  size_t n = style_count();
  for (size_t k = 0; k < n; k++) {
    iob_config c = config_of(iob_style_at(k), 3, 20 + 10 * (uint32_t)k);
    c.data = &s;
    b[k] = test_loop_start(&t, &c, log_batch);
    assert_code(iob_group_add(s.group, b[k]), 0);
  }
  assert_code(iob_group_free(s.group), IOB_EBUSY);
  test_loop_run(&t);
  /* Every batch's callback, then the group's. */
  assert_int_equal(s.n, (int)n + 1);
  for (size_t k = 0; k < n; k++)
    assert_int_equal(s.log[k], 'b');
  assert_int_equal(s.log[n], 'G');
  assert_int_equal(s.group_calls, 1);
  assert_int_equal(s.group_status, 0);
  test_loop_close(&t);
  for (size_t k = 0; k < n; k++)
    assert_code(iob_batch_free(b[k]), 0);
  assert_code(iob_group_free(s.group), 0);
  assert_code(iob_group_free(NULL), 0);
  assert_null(iob_group_data(NULL));
}

static void a_group_reports_the_first_failure(void **state) {
  story s = {0};
  assert_code(iob_group_create(&s.group, log_group, &s), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config c = config_of(&iob_style_loop, 3, 300);
  c.data = &s;
  iob_batch *ok = test_loop_start(&t, &c, log_batch);
  iob_batch *cancelled = test_loop_start(&t, &c, log_batch);
  c.deadline_ms = 150;
  iob_batch *late = test_loop_start(&t, &c, log_batch);
  assert_code(iob_group_add(s.group, ok), 0);
  assert_code(iob_group_add(s.group, cancelled), 0);
  assert_code(iob_group_add(s.group, late), 0);
  test_loop_at(&t, 50, cancel_it, cancelled);
  test_loop_run(&t);
  assert_int_equal(s.group_calls, 1);
  /* Cancelled at 50 ms, before the other timed out at 150. */
  assert_code(s.group_status, IOB_ECANCELED);
  assert_code(test_loop_counts(&t, late)->batch_status, IOB_ETIMEDOUT);
  test_loop_close(&t);
  assert_code(iob_batch_free(ok), 0);
  assert_code(iob_batch_free(cancelled), 0);
  assert_code(iob_batch_free(late), 0);
  assert_code(iob_group_free(s.group), 0);
}

/* A group reused: its callback starts a batch and adds it, and is called
 * again when that one ends; the second time it frees the group. */
typedef struct again {
  story s;
  test_loop *t;
  iob_batch *second;
} again;

static void start_again(iob_group *group, int status) {
  again *a = iob_group_data(group);
  a->s.group_calls++;
  a->s.log[a->s.n++] = 'G';
  a->s.group_status = status;
  if (a->s.group_calls == 1) {
    iob_config c = config_of(&iob_style_pool, 2, 10);
    c.data = &a->s;
    a->second = test_loop_start(a->t, &c, log_batch);
    assert_code(iob_group_add(group, a->second), 0);
    assert_code(iob_group_free(group), IOB_EBUSY);
  } else {
    assert_code(iob_group_free(group), 0);
  }
}

static void a_group_is_reusable_after_it_called_back(void **state) {
  again a = {0};
  test_loop t;
  test_loop_init(&t);
  a.t = &t;
  iob_group *g;
  assert_code(iob_group_create(&g, start_again, &a), 0);
  iob_config c = config_of(&iob_style_threads, 2, 10);
  c.data = &a.s;
  iob_batch *first = test_loop_start(&t, &c, log_batch);
  assert_code(iob_group_add(g, first), 0);
  test_loop_run(&t);
  a.s.log[a.s.n] = '\0';
  assert_string_equal(a.s.log, "bGbG");
  assert_int_equal(a.s.group_calls, 2);
  assert_int_equal(a.s.group_status, 0);
  test_loop_close(&t);
  assert_code(iob_batch_free(first), 0);
  assert_code(iob_batch_free(a.second), 0);
}

static void free_batch_in_cb(iob_batch *batch, int status) {
  log_batch(batch, status);
  assert_code(iob_batch_free(batch), 0);
}

static void a_group_may_be_freed_in_its_callback(void **state) {
  story s = {.free_in_cb = true};
  assert_code(iob_group_create(&s.group, log_group, &s), 0);
  test_loop t;
  test_loop_init(&t);
  const iob_style *style;
  for (size_t k = 0; (style = iob_style_at(k)) != NULL; k++) {
    iob_config c = config_of(style, 2, 10);
    c.data = &s;
    /* The batches free themselves too: the group needs nothing of them. */
    iob_batch *b = test_loop_start(&t, &c, free_batch_in_cb);
    assert_code(iob_group_add(s.group, b), 0);
  }
  test_loop_run(&t);
  assert_int_equal(s.group_calls, 1);
  assert_null(s.group);
  test_loop_close(&t);
}

static void a_batch_cancelled_before_start_can_join_a_group(void **state) {
  story s = {0};
  assert_code(iob_group_create(&s.group, log_group, &s), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config c = config_of(&iob_style_loop, 3, 1000);
  c.data = &s;
  iob_batch *b = test_loop_create(&t, &c, log_batch);
  assert_code(iob_batch_cancel(b), 0);
  test_loop_start_created(&t, b);
  /* It has settled everything, but its callback is still to come. */
  assert_code(iob_group_add(s.group, b), 0);
  test_loop_run(&t);
  s.log[s.n] = '\0';
  assert_string_equal(s.log, "bG");
  assert_code(s.group_status, IOB_ECANCELED);
  test_loop_close(&t);
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_group_free(s.group), 0);
}

typedef struct add_elsewhere {
  iob_group *group;
  iob_batch *batch;
  int ret;
} add_elsewhere;

static void add_from_another_thread(void *arg) {
  add_elsewhere *e = arg;
  e->ret = iob_group_add(e->group, e->batch);
}

/* A batch joins before it starts, so that no batch can end the group
 * before the others have joined; one that never starts leaves it as
 * cancelled when it is freed. */
static void batches_join_a_group_before_they_start(void **state) {
  story s = {0};
  assert_code(iob_group_create(&s.group, log_group, &s), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config c = config_of(&iob_style_loop, 2, 20);
  c.data = &s;
  iob_batch *runs = test_loop_create(&t, &c, log_batch);
  iob_batch *never;
  assert_code(iob_batch_create(&never, &c), 0);
  assert_code(iob_group_add(s.group, runs), 0);
  assert_code(iob_group_add(s.group, never), 0);
  assert_code(iob_group_add(s.group, never), IOB_EBUSY);
  test_loop_start_created(&t, runs);
  test_loop_run(&t);
  assert_int_equal(s.group_calls, 0); /* "never" is still in it */
  assert_code(iob_batch_free(never), 0);
  assert_int_equal(s.group_calls, 1);
  assert_code(s.group_status, IOB_ECANCELED);
  test_loop_close(&t);
  assert_code(iob_batch_free(runs), 0);
  assert_code(iob_group_free(s.group), 0);
}

static void a_group_refuses_what_it_cannot_take(void **state) {
  story s = {0}, s2 = {0};
  iob_group *g = (iob_group *)&g; /* must become NULL */
  assert_code(iob_group_create(NULL, log_group, &s), IOB_EINVAL);
  assert_code(iob_group_create(&g, NULL, &s), IOB_EINVAL);
  assert_null(g);
  assert_code(iob_group_create(&s.group, log_group, &s), 0);
  assert_code(iob_group_create(&s2.group, log_group, &s2), 0);

  test_loop t;
  test_loop_init(&t);
  iob_config c = config_of(&iob_style_loop, 2, 50);
  c.data = &s;
  iob_batch *b = test_loop_create(&t, &c, log_batch);
  assert_code(iob_group_add(NULL, b), IOB_EINVAL);
  assert_code(iob_group_add(s.group, NULL), IOB_EINVAL);
  test_loop_start_created(&t, b);
  add_elsewhere e = {.group = s.group, .batch = b, .ret = 1};
  uv_thread_t tid;
  assert_code(uv_thread_create(&tid, add_from_another_thread, &e), 0);
  assert_code(uv_thread_join(&tid), 0);
  assert_code(e.ret, IOB_EPERM);
  assert_code(iob_group_add(s.group, b), 0);
  assert_code(iob_group_add(s.group, b), IOB_EBUSY);
  assert_code(iob_group_add(s2.group, b), IOB_EBUSY);
  assert_code(iob_group_free(s.group), IOB_EBUSY);
  assert_code(iob_group_free(s2.group), 0); /* nothing in it */
  test_loop_run(&t);
  assert_int_equal(s.group_calls, 1);
  assert_code(iob_group_add(s.group, b), IOB_EINVAL); /* finished */
  test_loop_close(&t);
  assert_code(iob_batch_free(b), 0);
  assert_code(iob_group_free(s.group), 0);
}

/* Batches of one group on two loops, each run by a thread of its own: the
 * group calls back once, on the thread of the batch that ends last, after
 * both batches' callbacks. */
typedef struct lane {
  iob_group *group;
  uv_barrier_t *added;
  uint32_t duration_ms;
  bool cancel;
  int add_ret, status;
  unsigned ended_seq; /* when its callback ran, in the shared order */
} lane;

typedef struct two_loops {
  atomic_uint seq;
  atomic_int group_calls;
  int group_status;
  unsigned group_seq;
  uv_thread_t group_thread;
} two_loops;

static two_loops shared;

static void lane_ended(iob_batch *batch, int status) {
  lane *l = iob_batch_data(batch);
  l->status = status;
  l->ended_seq = atomic_fetch_add(&shared.seq, 1);
}

static void lanes_ended(iob_group *group, int status) {
  (void)group;
  shared.group_seq = atomic_fetch_add(&shared.seq, 1);
  shared.group_status = status;
  shared.group_thread = uv_thread_self();
  atomic_fetch_add(&shared.group_calls, 1);
}

static void run_lane(void *arg) {
  lane *l = arg;
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    abort();
  iob_config c = config_of(&iob_style_loop, 4, l->duration_ms);
  if (l->cancel) {
    c.duration_ms = 5000;
    c.deadline_ms = 1; /* ends it early, with IOB_ETIMEDOUT */
  }
  c.data = l;
  iob_batch *b;
  if (iob_batch_create(&b, &c) != 0 || iob_batch_start(b, &loop, lane_ended))
    abort();
  l->add_ret = iob_group_add(l->group, b);
  uv_barrier_wait(l->added); /* neither can end before both are in */
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0 || iob_batch_free(b) != 0)
    abort();
}

static void a_group_spans_batches_on_two_loops_in_two_threads(void **state) {
  for (int round = 0; round < 20; round++) {
    shared = (two_loops){0};
    iob_group *g;
    assert_code(iob_group_create(&g, lanes_ended, NULL), 0);
    uv_barrier_t added;
    assert_code(uv_barrier_init(&added, 2), 0);
    lane l[2] = {
        {.group = g,
         .added = &added,
         .duration_ms = (uint32_t)round % 3,
         .cancel = round % 4 == 3},
        {.group = g, .added = &added, .duration_ms = (uint32_t)round % 2},
    };
    uv_thread_t tid[2];
    for (int k = 0; k < 2; k++)
      assert_code(uv_thread_create(&tid[k], run_lane, &l[k]), 0);
    for (int k = 0; k < 2; k++)
      assert_code(uv_thread_join(&tid[k]), 0);
    uv_barrier_destroy(&added);
    assert_int_equal(l[0].add_ret, 0);
    assert_int_equal(l[1].add_ret, 0);
    assert_int_equal(atomic_load(&shared.group_calls), 1);
    assert_cmp(shared.group_seq, >, l[0].ended_seq);
    assert_cmp(shared.group_seq, >, l[1].ended_seq);
    int expected = l[0].status != 0 ? l[0].status : l[1].status;
    assert_int_equal(shared.group_status, expected);
    if (round % 4 == 3)
      assert_code(shared.group_status, IOB_ETIMEDOUT);
    assert_code(iob_group_free(g), 0);
  }
}

/* The group's callback adds a batch and frees it unstarted (as after a
 * start that failed): the batch leaves the group as cancelled, which
 * calls the callback again from inside iob_batch_free(), and that inner
 * call frees the group. The outer call returns to a group freed once,
 * not twice (ASan saw a double free). */
typedef struct nested {
  int calls;
  int inner_free;
} nested;

static void add_and_drop(iob_group *group, int status) {
  nested *n = iob_group_data(group);
  n->calls++;
  if (n->calls == 1) {
    assert_int_equal(status, 0);
    iob_config c = config_of(&iob_style_loop, 1, 1);
    iob_batch *next;
    assert_code(iob_batch_create(&next, &c), 0);
    assert_code(iob_group_add(group, next), 0);
    assert_code(iob_batch_free(next), 0); /* calls back, nested */
    assert_int_equal(n->calls, 2);
  } else {
    assert_code(status, IOB_ECANCELED);
    n->inner_free = iob_group_free(group);
  }
}

static void
a_group_freed_in_a_nested_call_of_its_callback_is_freed_once(void **state) {
  nested n = {0};
  iob_group *g;
  assert_code(iob_group_create(&g, add_and_drop, &n), 0);
  test_loop t;
  test_loop_init(&t);
  iob_config c = config_of(&iob_style_loop, 2, 1);
  iob_batch *b = test_loop_create(&t, &c, NULL);
  assert_code(iob_group_add(g, b), 0);
  test_loop_start_created(&t, b);
  test_loop_run(&t);
  assert_int_equal(n.calls, 2);
  assert_int_equal(n.inner_free, 0);
  test_loop_close(&t);
  assert_code(iob_batch_free(b), 0);
}

/* Four loops on four threads end their batches of one group at once; the
 * thread that runs the group's callback frees the group there, while the
 * others may still be counting their batch's end. None of them may touch
 * the group after it is gone (TSan and ASan saw it within seconds). */
#define LOOPS 4
typedef struct racer {
  iob_group *group;
  uv_barrier_t *added;
} racer;

static atomic_int freed_calls;

static void free_when_all_ended(iob_group *group, int status) {
  assert_int_equal(status, 0);
  assert_code(iob_group_free(group), 0);
  atomic_fetch_add(&freed_calls, 1);
}

static void ended_quietly(iob_batch *batch, int status) {
  (void)batch;
  (void)status;
}

static void race_one_batch(void *arg) {
  racer *r = arg;
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    abort();
  iob_config c = config_of(&iob_style_loop, 1, 0);
  iob_batch *b;
  if (iob_batch_create(&b, &c) != 0 || iob_group_add(r->group, b) != 0)
    abort();
  uv_barrier_wait(r->added); /* every batch is in before any can end */
  if (iob_batch_start(b, &loop, ended_quietly) != 0)
    abort();
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0 || iob_batch_free(b) != 0)
    abort();
}

static void
a_group_freed_in_its_callback_outlives_batches_on_other_loops(void **state) {
  atomic_store(&freed_calls, 0);
  int rounds = 200;
  for (int round = 0; round < rounds; round++) {
    iob_group *g;
    assert_code(iob_group_create(&g, free_when_all_ended, NULL), 0);
    uv_barrier_t added;
    assert_code(uv_barrier_init(&added, LOOPS), 0);
    racer r = {.group = g, .added = &added};
    uv_thread_t tid[LOOPS];
    for (int k = 0; k < LOOPS; k++)
      assert_code(uv_thread_create(&tid[k], race_one_batch, &r), 0);
    for (int k = 0; k < LOOPS; k++)
      assert_code(uv_thread_join(&tid[k]), 0);
    uv_barrier_destroy(&added);
  }
  assert_int_equal(atomic_load(&freed_calls), rounds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_shared_limit_is_never_exceeded_across_batches),
      cmocka_unit_test(max_in_flight_still_holds_under_a_shared_limit),
      cmocka_unit_test(a_small_batch_gets_turns_beside_a_large_one),
      cmocka_unit_test(
          a_batch_cancelled_while_queued_leaves_and_the_rest_go_on),
      cmocka_unit_test(
          operations_that_settle_inside_their_start_give_permits_back),
      cmocka_unit_test(
          an_operation_launched_in_another_batchs_turn_waits_in_full),
      cmocka_unit_test(a_limit_used_on_one_loop_refuses_a_batch_on_another),
      cmocka_unit_test(a_limit_in_use_cannot_be_freed),
      cmocka_unit_test(a_limit_refuses_bad_arguments),
      cmocka_unit_test(a_group_calls_back_once_after_every_batch),
      cmocka_unit_test(a_group_reports_the_first_failure),
      cmocka_unit_test(a_group_is_reusable_after_it_called_back),
      cmocka_unit_test(a_group_may_be_freed_in_its_callback),
      cmocka_unit_test(a_batch_cancelled_before_start_can_join_a_group),
      cmocka_unit_test(batches_join_a_group_before_they_start),
      cmocka_unit_test(a_group_refuses_what_it_cannot_take),
      cmocka_unit_test(a_group_spans_batches_on_two_loops_in_two_threads),
      cmocka_unit_test(
          a_group_freed_in_a_nested_call_of_its_callback_is_freed_once),
      cmocka_unit_test(
          a_group_freed_in_its_callback_outlives_batches_on_other_loops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
