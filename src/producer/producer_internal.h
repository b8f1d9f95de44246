/* Producer entry points for the Python extension only (not part of the public C
 * API): a non-blocking insert attempt so the extension can keep the GIL on the fast
 * path and release it only when the BLOCK policy would actually wait. */
#ifndef BIFROST_PRODUCER_INTERNAL_H
#define BIFROST_PRODUCER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "bifrost/producer.h"
#include "bifrost/schema.h"

/* Like bf_producer_insert_json, but when the queue is full under the BLOCK policy it
 * returns BF_EFULL with *would_block = true instead of waiting, and nothing is
 * counted; the caller then retries with bf_producer_insert_json. Other policies
 * behave exactly as bf_producer_insert_json (and set *would_block = false). */
int bf__producer_insert_json_nowait(bf_producer_t *producer, const char *json, size_t len,
                                    bool *would_block, bf_error_t *err);

/* The same for a binary row (bf_producer_insert_row). */
int bf__producer_insert_row_nowait(bf_producer_t *producer, const uint8_t *row, size_t len,
                                   bool *would_block, bf_error_t *err);

/* Blocking calls made for an interpreter: cancel(ctx) is called (without any
 * producer lock) at least every BF__CANCEL_POLL_SECS while the call waits; when it
 * returns nonzero the call gives up with BF_ECANCELLED. A cancelled shutdown
 * leaves the producer closing (inserts refused, the thread still delivering); a
 * later shutdown call waits again. */
typedef int (*bf__cancel_fn)(void *ctx);
#define BF__CANCEL_POLL_SECS 0.05

/* Outcome flags of the internal insert calls. */
typedef struct bf__insert_result {
  bool would_block; /* BLOCK policy, queue full, may_block false: nothing counted */
  bool too_large;   /* refused: larger than max_batch_bytes (counted) */
} bf__insert_result_t;

/* One insert of a JSON record (binary false) or binary row (binary true). With
 * may_block false it behaves like the _nowait calls above; with may_block true it
 * waits like bf_producer_insert_json, polling cancel. */
int bf__producer_insert(bf_producer_t *producer, bool binary, const char *data, size_t len,
                        bool may_block, bf__cancel_fn cancel, void *ctx,
                        bf__insert_result_t *result, bf_error_t *err);
/* bf_producer_insert_arrow with a cancellable wait; *too_large as above. */
int bf__producer_insert_arrow(bf_producer_t *producer, const struct ArrowSchema *schema,
                              struct ArrowArray *array, size_t approx_bytes, bf__cancel_fn cancel,
                              void *ctx, bool *too_large, bf_error_t *err);
int bf__producer_flush(bf_producer_t *producer, double timeout_secs, uint64_t *n_flushed,
                       bf__cancel_fn cancel, void *ctx, bf_error_t *err);
int bf__producer_shutdown(bf_producer_t *producer, double timeout_secs, bf__cancel_fn cancel,
                          void *ctx, bf_error_t *err);

/* The table's parsed schema (valid for the producer's lifetime). */
const bf_schema_t *bf__producer_schema(const bf_producer_t *producer);
/* The byte bound of one batch and the size estimate insert gives a record of len bytes. */
size_t bf__producer_max_batch_bytes(const bf_producer_t *producer);
size_t bf__producer_record_estimate(const bf_producer_t *producer, size_t len);

/* The policy given at create (constant for the producer's lifetime). */
bf_backpressure_t bf__producer_backpressure(const bf_producer_t *producer);

#endif /* BIFROST_PRODUCER_INTERNAL_H */
