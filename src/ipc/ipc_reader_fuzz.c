/* libFuzzer target for the IPC stream reader: any input must decode or fail with a
 * status, never crash, leak or read out of bounds (run under ASan/UBSan). Decoded
 * batches are re-encoded with the writer, so the writer is exercised on whatever
 * the reader accepts. Built and run by scripts/fuzz_smoke.sh. */
#include <stddef.h>
#include <stdint.h>

#include "bifrost/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  bf_error_t err;
  bf_error_init(&err);
  bf_ipc_reader_t *reader;
  if (bf_ipc_reader_create(data, size, &reader, &err) != BF_OK) return 0;
  struct ArrowSchema schema;
  if (bf_ipc_reader_schema(reader, &schema, &err) == BF_OK) {
    bf_buffer_t out;
    bf_buffer_init(&out);
    bf_ipc_writer_t writer;
    int writing = bf_ipc_writer_init(&writer, &schema, &out, &err) == BF_OK;
    for (;;) {
      struct ArrowArray batch;
      int has = 0;
      if (bf_ipc_reader_next(reader, &batch, &has, &err) != BF_OK || !has) break;
      if (writing) bf_ipc_writer_write(&writer, &batch, &err);
      bf_arrow_array_release(&batch);
    }
    if (writing) bf_ipc_writer_reset(&writer);
    bf_buffer_reset(&out);
    bf_arrow_schema_release(&schema);
  }
  bf_ipc_reader_destroy(reader);
  return 0;
}
