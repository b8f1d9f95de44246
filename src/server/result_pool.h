/* Buffers of query results, recycled between batches: gRPC hands each back once it
 * has written it, and the next batch is written into it (no fresh pages to fault
 * in per batch, whatever malloc's mmap threshold). */
#ifndef BIFROST_SERVER_RESULT_POOL_H
#define BIFROST_SERVER_RESULT_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/util.h"

/* A returned buffer: its storage and capacity (gRPC's release callback frees it
 * or keeps it for the next batch). */
typedef struct bf_result_buffer bf_result_buffer_t;

/* Takes buf's storage for gRPC (buf is left empty, or holding a recycled buffer of
 * the pool to write the next batch into). NULL when out of memory (the storage is
 * then freed). */
bf_result_buffer_t *bf_result_pool_take(bf_buffer_t *buf, uint8_t **data, size_t *size);
/* gRPC's release callback: keeps the buffer for a later batch, or frees it. */
void bf_result_pool_release(void *buffer);

#endif /* BIFROST_SERVER_RESULT_POOL_H */
