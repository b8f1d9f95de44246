/* Unit tests for the producer's record queue (queue.c): the MPSC FIFO alone and
 * under concurrent pushes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "producer/queue.h"

/* ---- queue --------------------------------------------------------------------- */

static bf__item_t *item_of(int i) {
  char text[16];
  int len = snprintf(text, sizeof text, "%d", i);
  bf__item_t *item = malloc(sizeof *item + (size_t)len + 1);
  item->kind = BF__ITEM_JSON;
  item->rows = 1;
  item->len = (size_t)len;
  item->arrow = NULL;
  memcpy(item->json, text, (size_t)len + 1);
  return item;
}

static bf__item_t *pop_wait(bf__queue_t *q) {
  for (;;) {
    bool busy;
    bf__item_t *item = bf__queue_pop(q, &busy);
    if (item || !busy) return item;
  }
}

static void test_queue_fifo(void **state) {
  (void)state;
  bf__queue_t q;
  bf__queue_init(&q);
  bool busy = true;
  assert_null(bf__queue_pop(&q, &busy));
  assert_false(busy);
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 600; i++) bf__queue_push(&q, item_of(next_in++));
    for (int i = 0; i < 350; i++) {
      bf__item_t *item = pop_wait(&q);
      assert_non_null(item);
      assert_int_equal(atoi(item->json), next_out++);
      bf__item_free(item);
    }
  }
  bf__item_t *item;
  while ((item = pop_wait(&q)) != NULL) {
    assert_int_equal(atoi(item->json), next_out++);
    bf__item_free(item);
  }
  assert_int_equal(next_out, next_in);
}

typedef struct pusher_arg {
  bf__queue_t *q;
  int id;
} pusher_arg_t;

static void *pusher(void *p) {
  pusher_arg_t *a = p;
  for (int i = 0; i < 20000; i++) bf__queue_push(a->q, item_of(a->id * 1000000 + i));
  return NULL;
}

/* Four threads push while one pops: nothing lost, each thread's order kept. */
static void test_queue_concurrent_producers(void **state) {
  (void)state;
  bf__queue_t q;
  bf__queue_init(&q);
  pthread_t threads[4];
  pusher_arg_t args[4];
  for (int i = 0; i < 4; i++) {
    args[i].q = &q;
    args[i].id = i;
    assert_int_equal(pthread_create(&threads[i], NULL, pusher, &args[i]), 0);
  }
  int next[4] = {0, 0, 0, 0};
  int total = 0;
  while (total < 80000) {
    bool busy;
    bf__item_t *item = bf__queue_pop(&q, &busy);
    if (item == NULL) continue;
    int v = atoi(item->json);
    assert_int_equal(v % 1000000, next[v / 1000000]++);
    bf__item_free(item);
    total++;
  }
  for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
  bool busy;
  assert_null(bf__queue_pop(&q, &busy));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_queue_fifo),
      cmocka_unit_test(test_queue_concurrent_producers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
