/* InsertBatchRequest unpacked without copying its Arrow IPC bytes (see
 * insert_request.h).
 *
 * protobuf-c's unpack copies every bytes field, and the IPC reader used to copy
 * every buffer again: two copies of each batch, each into fresh memory to fault in
 * (measured in docs/architecture.md). Here the request's top-level fields are
 * walked in protobuf wire format to find arrow_ipc (field 3; a request that gives
 * it twice, or is malformed, is left whole to protobuf-c, which judges it as
 * before), the other fields are unpacked by protobuf-c from a copy
 * that leaves it out (a few hundred bytes), and the request buffer itself becomes
 * the backing the decoded batches borrow from. The IPC bytes are moved down to an
 * 8-byte boundary inside that buffer when they do not start on one, so the
 * batches' buffers are aligned. */
#include "server/insert_request.h"

#include <stdlib.h>
#include <string.h>

#define FIELD_ARROW_IPC 3u

/* Reads a varint at *p (< end); 0 when malformed or cut. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *out = v;
      return 1;
    }
  }
  return 0;
}

/* Where the arrow_ipc field's bytes lie; the other fields' bytes are copied
 * into rest when it is not NULL, and counted in *rest_len. 0 when the wire format is
 * malformed, uses groups or repeats arrow_ipc:
 * the caller then lets protobuf-c judge the whole message. */
static int split(const uint8_t *data, size_t size, size_t *ipc_off, size_t *ipc_len, uint8_t *rest,
                 size_t *rest_len) {
  const uint8_t *p = data, *end = data + size;
  *rest_len = 0;
  *ipc_off = *ipc_len = 0;
  while (p < end) {
    const uint8_t *field = p;
    uint64_t key, len = 0;
    if (!read_varint(&p, end, &key)) return 0;
    switch (key & 7) {
      case 0:
        if (!read_varint(&p, end, &len)) return 0;
        break;
      case 1:
        if (end - p < 8) return 0;
        p += 8;
        break;
      case 5:
        if (end - p < 4) return 0;
        p += 4;
        break;
      case 2:
        if (!read_varint(&p, end, &len) || len > (uint64_t)(end - p)) return 0;
        if ((key >> 3) == FIELD_ARROW_IPC) {
          if (*ipc_len || *ipc_off) return 0; /* twice: not canonical, judged the plain way */
          *ipc_off = (size_t)(p - data);
          *ipc_len = (size_t)len;
          p += len;
          continue; /* left out of rest */
        }
        p += len;
        break;
      default:
        return 0;
    }
    if (rest) memcpy(rest + *rest_len, field, (size_t)(p - field));
    *rest_len += (size_t)(p - field);
  }
  return 1;
}

Bifrost__V1__InsertBatchRequest *bf_insert_request_unpack(bf_rpc_call_t *call, const uint8_t *data,
                                                         size_t size, bf_insert_request_t *out) {
  memset(out, 0, sizeof *out);
  size_t ipc_off, ipc_len, rest_len;
  uint8_t *rest = NULL;
  if (split(data, size, &ipc_off, &ipc_len, NULL, &rest_len)) rest = malloc(rest_len + 1);
  if (rest == NULL || !split(data, size, &ipc_off, &ipc_len, rest, &rest_len)) {
    free(rest); /* malformed, or no memory for the copy: the plain way */
    Bifrost__V1__InsertBatchRequest *req = bifrost__v1__insert_batch_request__unpack(NULL, size, data);
    if (req) {
      out->ipc = req->arrow_ipc.data;
      out->ipc_len = req->arrow_ipc.len;
    }
    out->unpacked_size = size;
    return req;
  }
  Bifrost__V1__InsertBatchRequest *req = bifrost__v1__insert_batch_request__unpack(NULL, rest_len, rest);
  free(rest);
  if (req == NULL) return NULL;
  out->unpacked_size = rest_len;
  out->ipc = data + ipc_off;
  out->ipc_len = ipc_len;
  if (ipc_len == 0) return req;
  uint8_t *owned = bf_rpc_call_take_request(call);
  if (owned != data) { /* not the handler's own request (cannot happen): decode by copying */
    bf_rpc_request_release(owned);
    return req;
  }
  uint8_t *ipc = owned + ipc_off;
  /* malloc aligns owned to 16, so the shift (< 8) is at most ipc_off: the bytes moved
   * over belong to fields already unpacked from their copy */
  size_t misaligned = (uintptr_t)ipc & 7;
  if (misaligned) {
    memmove(ipc - misaligned, ipc, ipc_len);
    ipc -= misaligned;
  }
  out->backing = bf_shared_new(owned, 0, bf_rpc_request_release);
  if (out->backing == NULL) out->owned = owned; /* no memory: decoded by copying, freed at the end */
  out->ipc = ipc;
  return req;
}

void bf_insert_request_free(Bifrost__V1__InsertBatchRequest *req, bf_insert_request_t *in) {
  bifrost__v1__insert_batch_request__free_unpacked(req, NULL);
  bf_rpc_request_release(in->owned);
  in->owned = NULL;
  bf_shared_unref(in->backing);
  in->backing = NULL;
}
