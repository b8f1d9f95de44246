/* The producer's record queue: a bounded FIFO ring of owned JSON records. It is a
 * plain data structure with no locking of its own; the producer guards it with its
 * mutex (see producer.c for why a mutex + condvar ring is the first version and a
 * lock-free queue the later goal). The ring grows by doubling up to max_count so an
 * idle producer with a large bound does not pay for the bound up front. */
#ifndef BIFROST_PRODUCER_QUEUE_H
#define BIFROST_PRODUCER_QUEUE_H

#include <stddef.h>

#include "bifrost/error.h"

typedef struct bf__record {
  char *json; /* owned, NUL-terminated copy of the record */
  size_t len; /* bytes before the NUL */
} bf__record_t;

typedef struct bf__record_queue {
  bf__record_t *slots; /* owned ring storage, `capacity` entries */
  size_t capacity;     /* <= max_count */
  size_t head;         /* index of the oldest record, < capacity when capacity > 0 */
  size_t count;        /* records held, <= capacity */
  size_t max_count;    /* the bound, >= 1 */
} bf__record_queue_t;

/* Empty queue bounded at max_count (>= 1) records. Allocates lazily; cannot fail. */
void bf__record_queue_init(bf__record_queue_t *queue, size_t max_count);
/* Frees the ring and every record still held. */
void bf__record_queue_reset(bf__record_queue_t *queue);
/* Appends a record, taking ownership of json on success only. BF_EFULL when count
 * == max_count, BF_ENOMEM when the ring cannot grow. */
int bf__record_queue_push(bf__record_queue_t *queue, char *json, size_t len);
/* Moves up to max_out oldest records into out (ownership passes to the caller);
 * returns how many. Cannot fail. */
size_t bf__record_queue_pop(bf__record_queue_t *queue, bf__record_t *out, size_t max_out);

#endif /* BIFROST_PRODUCER_QUEUE_H */
