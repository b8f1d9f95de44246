/* Arrow IPC streaming format, encoded and decoded by hand (FlatBuffers messages for
 * Schema, RecordBatch and DictionaryBatch; encapsulated messages with the
 * 0xFFFFFFFF continuation marker; 8-byte aligned bodies; end-of-stream marker).
 * Byte-compatible with pyarrow in both directions. Supported layouts: all fixed-width
 * primitives (bool, int8..64, uint8..64, float16/32/64, decimal128/256, date,
 * time, timestamp, duration), utf8/binary (+ large), utf8/binary views, list,
 * large list, fixed-size list, struct and dictionary-encoded columns. */
#ifndef BIFROST_IPC_H
#define BIFROST_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/arrow.h"
#include "bifrost/error.h"
#include "bifrost/util.h"

/* Writer: appends encapsulated messages to a caller-owned buffer. The caller may
 * drain the buffer (read data[0..size), then set size = 0) between calls to stream
 * chunks. Not thread-safe. */
typedef struct bf_ipc_writer {
  bf_buffer_t *out;              /* not owned */
  struct ArrowSchema schema;     /* owned deep copy of the stream schema */
  int64_t n_batches;
  int finished;
} bf_ipc_writer_t;

/* Writes the Schema message. schema must be a struct ("+s") schema. */
int bf_ipc_writer_init(bf_ipc_writer_t *writer, const struct ArrowSchema *schema,
                       bf_buffer_t *out, bf_error_t *err);
/* Writes one RecordBatch (and dictionary batches first, if any column is
 * dictionary-encoded). batch is a struct array matching the schema; offsets and
 * sliced children are honoured. Does not take ownership. */
int bf_ipc_writer_write(bf_ipc_writer_t *writer, const struct ArrowArray *batch, bf_error_t *err);
/* Writes the concatenation of n_batches batches (in order) as one RecordBatch:
 * bitmaps re-packed and offsets re-based across batches, other buffers copied
 * once into the message. Several batches need bf_ipc_writer_can_concat (no
 * dictionary-encoded or view column anywhere in the schema); a concatenated
 * utf8/binary/list column must fit 32-bit offsets. */
int bf_ipc_writer_write_many(bf_ipc_writer_t *writer, const struct ArrowArray *batches,
                             size_t n_batches, bf_error_t *err);
int bf_ipc_writer_can_concat(const bf_ipc_writer_t *writer);
/* Writes the end-of-stream marker. */
int bf_ipc_writer_finish(bf_ipc_writer_t *writer, bf_error_t *err);
void bf_ipc_writer_reset(bf_ipc_writer_t *writer); /* frees the schema copy */

/* Reader over one complete in-memory IPC stream. Decoded arrays own copies of
 * their buffers, so the input may be freed afterwards. Every length and offset in
 * the input is bounds-checked: malformed input is BF_ECORRUPT with a message, never
 * a crash or an out-of-bounds read. Not thread-safe. */
typedef struct bf_ipc_reader bf_ipc_reader_t;

int bf_ipc_reader_create(const uint8_t *data, size_t size, bf_ipc_reader_t **out, bf_error_t *err);
/* The same over input owned by `backing`: the batches' 8-byte-aligned buffers point
 * into `data` instead of being copied (each array node holds a reference to the
 * backing; others are copied), so the input lives as long as the last of them. The
 * input must not change while the reader or any batch is alive. */
int bf_ipc_reader_create_borrowed(const uint8_t *data, size_t size, bf_shared_t *backing,
                                  bf_ipc_reader_t **out, bf_error_t *err);
/* Deep copy of the stream schema. */
int bf_ipc_reader_schema(bf_ipc_reader_t *reader, struct ArrowSchema *out, bf_error_t *err);
/* Next record batch as a struct array. Returns BF_OK and sets *has_batch = 0 at
 * end of stream. */
int bf_ipc_reader_next(bf_ipc_reader_t *reader, struct ArrowArray *out, int *has_batch,
                       bf_error_t *err);
void bf_ipc_reader_destroy(bf_ipc_reader_t *reader);

#endif /* BIFROST_IPC_H */
