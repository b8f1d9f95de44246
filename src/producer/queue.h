/* The producer's queue: an intrusive multi-producer single-consumer FIFO (Vyukov's
 * MPSC list). push is one atomic exchange plus one store, wait-free, so inserting
 * threads never take a lock; pop belongs to the producer's background thread.
 * Items are JSON or binary records (one row) or Arrow record batches (many rows); the
 * bound on queued rows is kept by the producer with an atomic counter, not here.
 * A push that has exchanged the head but not yet linked its predecessor makes pop
 * return NULL for a moment (bf__queue_pop says so through *busy). */
#ifndef BIFROST_PRODUCER_QUEUE_H
#define BIFROST_PRODUCER_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "bifrost/arrow.h"

typedef struct bf__node {
  _Atomic(struct bf__node *) next;
} bf__node_t;

typedef enum { BF__ITEM_JSON = 0, BF__ITEM_ROW = 1, BF__ITEM_ARROW = 2 } bf__item_kind_t;

typedef struct bf__arrow_batch {
  struct ArrowArray array; /* owned struct array of the table's user columns */
  char *string_formats;    /* NULL, or per user column: 0 = the table's type, else the
                              format ("u" / "U") of plain strings sent for a Utf8View
                              column as they came (the server takes all three) */
} bf__arrow_batch_t;

typedef struct bf__item {
  bf__node_t node;          /* first member: a node pointer is an item pointer */
  bf__item_kind_t kind;
  size_t rows;              /* 1 for JSON */
  size_t len;               /* JSON: bytes before the NUL; ROW: bytes of the binary row */
  size_t bytes;             /* counted against max_queue_bytes */
  size_t batch_bytes;       /* estimated size in a batch, checked against max_batch_bytes */
  bf__arrow_batch_t *arrow; /* ARROW only; owned */
  char json[];              /* JSON: NUL-terminated record; ROW: the binary row */
} bf__item_t;

typedef struct bf__queue {
  _Atomic(bf__node_t *) head; /* newest; producers exchange it */
  bf__node_t *tail;           /* oldest; consumer only */
  bf__node_t stub;
} bf__queue_t;

void bf__queue_init(bf__queue_t *q);
/* Any thread. Takes ownership of item. */
void bf__queue_push(bf__queue_t *q, bf__item_t *item);
/* Consumer thread only. The oldest item (ownership passes to the caller), or NULL:
 * empty (*busy = false) or a push is half done (*busy = true; try again). */
bf__item_t *bf__queue_pop(bf__queue_t *q, bool *busy);
/* Releases an item and what it owns. */
void bf__item_free(bf__item_t *item);

#endif /* BIFROST_PRODUCER_QUEUE_H */
