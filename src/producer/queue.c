/* Bounded FIFO ring of JSON records for the producer (see queue.h). */
#include "producer/queue.h"

#include <stdlib.h>

#define INITIAL_CAPACITY 1024

void bf__record_queue_init(bf__record_queue_t *queue, size_t max_count) {
  queue->slots = NULL;
  queue->capacity = 0;
  queue->head = 0;
  queue->count = 0;
  queue->max_count = max_count > 0 ? max_count : 1;
}

void bf__record_queue_reset(bf__record_queue_t *queue) {
  for (size_t i = 0; i < queue->count; i++) {
    free(queue->slots[(queue->head + i) % queue->capacity].json);
  }
  free(queue->slots);
  bf__record_queue_init(queue, queue->max_count);
}

/* Reallocates into a fresh ring with the records unwrapped to start at index 0. */
static int grow(bf__record_queue_t *queue) {
  size_t new_capacity = queue->capacity == 0 ? INITIAL_CAPACITY : queue->capacity * 2;
  if (new_capacity > queue->max_count || new_capacity < queue->capacity) {
    new_capacity = queue->max_count;
  }
  bf__record_t *slots = malloc(new_capacity * sizeof(*slots));
  if (slots == NULL) return BF_ENOMEM;
  for (size_t i = 0; i < queue->count; i++) {
    slots[i] = queue->slots[(queue->head + i) % queue->capacity];
  }
  free(queue->slots);
  queue->slots = slots;
  queue->capacity = new_capacity;
  queue->head = 0;
  return BF_OK;
}

int bf__record_queue_push(bf__record_queue_t *queue, char *json, size_t len) {
  if (queue->count >= queue->max_count) return BF_EFULL;
  if (queue->count == queue->capacity) BF_RETURN_NOT_OK(grow(queue));
  size_t tail = (queue->head + queue->count) % queue->capacity;
  queue->slots[tail].json = json;
  queue->slots[tail].len = len;
  queue->count++;
  return BF_OK;
}

size_t bf__record_queue_pop(bf__record_queue_t *queue, bf__record_t *out, size_t max_out) {
  size_t n = queue->count < max_out ? queue->count : max_out;
  for (size_t i = 0; i < n; i++) {
    out[i] = queue->slots[queue->head];
    queue->head = (queue->head + 1) % queue->capacity;
  }
  queue->count -= n;
  if (queue->count == 0) queue->head = 0;
  return n;
}
