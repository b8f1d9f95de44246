/* Growable byte buffer used by the IPC writer, the RPC layer and file I/O. */
#include <stdlib.h>
#include <string.h>

#include "bifrost/util.h"

void bf_buffer_init(bf_buffer_t *buf) {
  buf->data = NULL;
  buf->size = 0;
  buf->capacity = 0;
}

void bf_buffer_reset(bf_buffer_t *buf) {
  free(buf->data);
  bf_buffer_init(buf);
}

int bf_buffer_reserve(bf_buffer_t *buf, size_t additional) {
  if (additional > SIZE_MAX - buf->size) return BF_ENOMEM;
  size_t needed = buf->size + additional;
  if (needed <= buf->capacity) return BF_OK;
  size_t new_capacity = buf->capacity ? buf->capacity : 64;
  while (new_capacity < needed) {
    if (new_capacity > SIZE_MAX / 2) {
      new_capacity = needed;
      break;
    }
    new_capacity *= 2;
  }
  uint8_t *grown = realloc(buf->data, new_capacity);
  if (grown == NULL) return BF_ENOMEM;
  buf->data = grown;
  buf->capacity = new_capacity;
  return BF_OK;
}

int bf_buffer_append(bf_buffer_t *buf, const void *bytes, size_t n) {
  if (n == 0) return BF_OK;
  BF_RETURN_NOT_OK(bf_buffer_reserve(buf, n));
  memcpy(buf->data + buf->size, bytes, n);
  buf->size += n;
  return BF_OK;
}

int bf_buffer_append_zeros(bf_buffer_t *buf, size_t n) {
  if (n == 0) return BF_OK;
  BF_RETURN_NOT_OK(bf_buffer_reserve(buf, n));
  memset(buf->data + buf->size, 0, n);
  buf->size += n;
  return BF_OK;
}

int bf_buffer_pad(bf_buffer_t *buf, size_t alignment) {
  size_t rem = buf->size & (alignment - 1);
  return rem ? bf_buffer_append_zeros(buf, alignment - rem) : BF_OK;
}

void bf_buffer_take(bf_buffer_t *buf, uint8_t **out, size_t *out_size) {
  *out = buf->data;
  *out_size = buf->size;
  bf_buffer_init(buf);
}
