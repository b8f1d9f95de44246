/* Producer entry points for the Python extension only (not part of the public C
 * API): a non-blocking insert attempt so the extension can keep the GIL on the fast
 * path and release it only when the BLOCK policy would actually wait. */
#ifndef BIFROST_PRODUCER_INTERNAL_H
#define BIFROST_PRODUCER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "bifrost/producer.h"

/* Like bf_producer_insert_json, but when the queue is full under the BLOCK policy it
 * returns BF_EFULL with *would_block = true instead of waiting, and nothing is
 * counted; the caller then retries with bf_producer_insert_json. Other policies
 * behave exactly as bf_producer_insert_json (and set *would_block = false). */
int bf__producer_insert_json_nowait(bf_producer_t *producer, const char *json, size_t len,
                                    bool *would_block, bf_error_t *err);

/* The same for a binary row (bf_producer_insert_row). */
int bf__producer_insert_row_nowait(bf_producer_t *producer, const uint8_t *row, size_t len,
                                   bool *would_block, bf_error_t *err);

/* The policy given at create (constant for the producer's lifetime). */
bf_backpressure_t bf__producer_backpressure(const bf_producer_t *producer);

#endif /* BIFROST_PRODUCER_INTERNAL_H */
