/* Each attempt of an operation that ran more than once (iob_retry,
 * iob_hedge), for iob_batch_attempts() and the timelines. The styles
 * note an attempt as it ends, on the thread that runs the operation;
 * the list moves to what the operation keeps when it settles. An
 * operation that ran once keeps no list: its record says it all. */
#include <stdlib.h>

#include "internal.h"

iob__attempt_list iob__attempts_lost;

void iob__attempt_began(iob_batch *b, iob__slot *s) {
  /* The first began when its record says (a burst's shared stamp). */
  s->began_ns =
      s->op.attempt == 0 ? iob__rec(b, s->op.index)->started_ns : iob__now(b);
}

/* Drop the list: what it said is lost (iob_batch_attempts() says so). */
static void lose(iob__slot *s) {
  free(s->attempts);
  s->attempts = NULL;
  s->attempts_lost = true;
}

void iob__attempt_note(iob_batch *b, iob__slot *s, uint64_t from, uint64_t to,
                       int status, bool hedge) {
  if (s->attempts_lost)
    return;
  /* Where the operation keeps its outcome holds the list once it
   * settles: without room there, the list is lost. */
  if (iob__make_room_to_keep(b) != 0) {
    lose(s);
    return;
  }
  iob__attempt_list *list = s->attempts;
  if (list == NULL || list->n == list->cap) {
    uint32_t cap = list != NULL ? 2 * list->cap : 4;
    list = realloc(list, sizeof(*list) + cap * sizeof(list->at[0]));
    if (list == NULL) {
      lose(s);
      return;
    }
    if (s->attempts == NULL)
      list->n = 0;
    list->cap = cap;
    s->attempts = list;
  }
  list->at[list->n++] =
      (iob_attempt){from, to > from ? to : from, status, hedge};
  s->has_outcome = true;
}

/* In the order they began (hedges are noted as they end). */
static void sort(iob_attempt *a, uint32_t n) {
  for (uint32_t i = 1; i < n; i++) {
    iob_attempt x = a[i];
    uint32_t j = i;
    for (; j > 0 && a[j - 1].started_ns > x.started_ns; j--)
      a[j] = a[j - 1];
    a[j] = x;
  }
}

void iob__attempts_keep(iob__slot *s, iob__kept *k) {
  iob__attempt_list *list = s->attempts;
  if (s->attempts_lost) {
    k->attempts = &iob__attempts_lost;
  } else if (list != NULL && list->n > 1) {
    sort(list->at, list->n);
    k->attempts = list;
    list = NULL;
  }
  free(list); /* one attempt: its record says it all */
  s->attempts = NULL;
  s->attempts_lost = false;
}

void iob__attempts_drop(iob__slot *s) {
  free(s->attempts);
  s->attempts = NULL;
  s->attempts_lost = false;
}

void iob__attempts_free(iob__attempt_list *list) {
  if (list != &iob__attempts_lost)
    free(list);
}
