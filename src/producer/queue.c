/* Vyukov's intrusive MPSC queue for the producer (see queue.h). */
#include "producer/queue.h"

#include <stdlib.h>

void bf__queue_init(bf__queue_t *q) {
  atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
  atomic_store_explicit(&q->head, &q->stub, memory_order_relaxed);
  q->tail = &q->stub;
}

static void push_node(bf__queue_t *q, bf__node_t *n) {
  atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
  bf__node_t *prev = atomic_exchange_explicit(&q->head, n, memory_order_acq_rel);
  atomic_store_explicit(&prev->next, n, memory_order_release);
}

void bf__queue_push(bf__queue_t *q, bf__item_t *item) { push_node(q, &item->node); }

bf__item_t *bf__queue_pop(bf__queue_t *q, bool *busy) {
  *busy = false;
  bf__node_t *tail = q->tail;
  bf__node_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (tail == &q->stub) {
    if (next == NULL) {
      *busy = atomic_load_explicit(&q->head, memory_order_acquire) != tail;
      return NULL;
    }
    q->tail = next;
    tail = next;
    next = atomic_load_explicit(&next->next, memory_order_acquire);
  }
  if (next != NULL) {
    q->tail = next;
    return (bf__item_t *)tail;
  }
  if (atomic_load_explicit(&q->head, memory_order_acquire) != tail) {
    *busy = true; /* a producer exchanged head but has not linked tail->next yet */
    return NULL;
  }
  push_node(q, &q->stub);
  next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (next != NULL) {
    q->tail = next;
    return (bf__item_t *)tail;
  }
  *busy = true;
  return NULL;
}

void bf__item_free(bf__item_t *item) {
  if (item == NULL) return;
  if (item->arrow != NULL) {
    bf_arrow_array_release(&item->arrow->array);
    free(item->arrow->string_formats);
    free(item->arrow);
  }
  free(item);
}
