/* InsertBatchRequest unpacked without copying its Arrow IPC bytes: the decoded
 * batches borrow them from the received request (insert_request.c). */
#ifndef BIFROST_SERVER_INSERT_REQUEST_H
#define BIFROST_SERVER_INSERT_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/arrow.h"
#include "bifrost/rpc.h"
#include "bifrost/v1/bifrost.pb-c.h"

typedef struct bf_insert_request {
  const uint8_t *ipc; /* the Arrow IPC stream (8-byte aligned when backing is set) */
  size_t ipc_len;
  bf_shared_t *backing; /* owns the request's bytes; NULL: decode by copying */
  uint8_t *owned;       /* the request's bytes when no backing could be made */
  size_t unpacked_size; /* bytes protobuf-c unpacked (the request without arrow_ipc) */
} bf_insert_request_t;

/* Unpacks the handler's request (data, size: what the rpc layer gave the handler).
 * The fields other than arrow_ipc come back in the protobuf-c message (its
 * arrow_ipc is empty: use out->ipc); NULL when the message is malformed. When it
 * can, it takes the request's buffer from the call (bf_rpc_call_take_request) and
 * sets out->backing for bf_ipc_reader_create_borrowed. */
Bifrost__V1__InsertBatchRequest *bf_insert_request_unpack(bf_rpc_call_t *call, const uint8_t *data,
                                                         size_t size, bf_insert_request_t *out);
/* Frees the message and drops this side's reference to the backing (batches that
 * borrowed from it keep it alive). */
void bf_insert_request_free(Bifrost__V1__InsertBatchRequest *req, bf_insert_request_t *in);

#endif
