/* libFuzzer target for the IPC stream reader: any input must decode or fail with a
 * status, never crash, leak or read out of bounds (run under ASan/UBSan). Whatever
 * the reader accepts is re-encoded with the writer, and that stream must decode
 * again with the same number of batches: a reader that hands out arrays the
 * writer cannot faithfully encode aborts. Built by the clang-only ipc_reader_fuzz
 * CMake target (and by scripts/fuzz_smoke.sh). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bifrost/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes every batch of a stream (borrowing its buffers when borrow is set);
 * returns the status and counts the batches. */
static int decode_stream(const uint8_t *data, size_t size, int borrow, int64_t *n_batches) {
  bf_error_t err;
  bf_error_init(&err);
  bf_ipc_reader_t *reader;
  *n_batches = 0;
  bf_shared_t *backing = borrow ? bf_shared_new((void *)(uintptr_t)data, size, NULL) : NULL;
  int status = borrow ? bf_ipc_reader_create_borrowed(data, size, backing, &reader, &err)
                      : bf_ipc_reader_create(data, size, &reader, &err);
  bf_shared_unref(backing);
  if (status != BF_OK) return status;
  for (;;) {
    struct ArrowArray batch;
    int has = 0;
    status = bf_ipc_reader_next(reader, &batch, &has, &err);
    if (status != BF_OK || !has) break;
    (*n_batches)++;
    bf_arrow_array_release(&batch);
  }
  bf_ipc_reader_destroy(reader);
  return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  bf_error_t err;
  bf_error_init(&err);
  bf_ipc_reader_t *reader;
  if (bf_ipc_reader_create(data, size, &reader, &err) != BF_OK) return 0;
  struct ArrowSchema schema;
  if (bf_ipc_reader_schema(reader, &schema, &err) != BF_OK) goto done;
  bf_buffer_t out;
  bf_buffer_init(&out);
  bf_ipc_writer_t writer;
  if (bf_ipc_writer_init(&writer, &schema, &out, &err) != BF_OK) {
    fprintf(stderr, "writer refused a schema the reader accepted: %s\n", err.message);
    abort();
  }
  int status;
  for (;;) {
    struct ArrowArray batch;
    int has = 0;
    status = bf_ipc_reader_next(reader, &batch, &has, &err);
    if (status != BF_OK || !has) break;
    if (bf_ipc_writer_write(&writer, &batch, &err) != BF_OK) {
      fprintf(stderr, "writer refused a batch the reader accepted: %s\n", err.message);
      abort();
    }
    bf_arrow_array_release(&batch);
  }
  if (status == BF_OK) {
    int64_t n_batches;
    bf_ipc_writer_finish(&writer, &err);
    if (decode_stream(out.data, out.size, 0, &n_batches) != BF_OK || n_batches != writer.n_batches) {
      fprintf(stderr, "re-encoded stream does not decode\n");
      abort();
    }
  }
  {
    /* borrowing the input's buffers in place accepts and refuses exactly the same */
    int64_t copied_batches, borrowed_batches;
    int copied = decode_stream(data, size, 0, &copied_batches);
    int borrowed = decode_stream(data, size, 1, &borrowed_batches);
    if (copied != borrowed || copied_batches != borrowed_batches) {
      fprintf(stderr, "borrowing reader disagrees with the copying one\n");
      abort();
    }
  }
  bf_ipc_writer_reset(&writer);
  bf_buffer_reset(&out);
  bf_arrow_schema_release(&schema);
done:
  bf_ipc_reader_destroy(reader);
  return 0;
}
