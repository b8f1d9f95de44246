/* ArrowArrayStream over a schema and a list of owned struct batches: the hand-off
 * format for query results and decoded IPC streams (pyarrow and Polars import it
 * through the __arrow_c_stream__ capsule). The stream owns its schema and batches;
 * get_next moves each batch out once, then reports the end with a released array.
 * Callbacks return errno values as the C stream interface requires. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/arrow.h"

typedef struct batch_stream {
  struct ArrowSchema schema;
  struct ArrowArray *batches;
  size_t n_batches;
  size_t next;
} batch_stream_t;

static int stream_get_schema(struct ArrowArrayStream *stream, struct ArrowSchema *out) {
  batch_stream_t *s = stream->private_data;
  return bf_arrow_schema_deep_copy(&s->schema, out) == BF_OK ? 0 : ENOMEM;
}

static int stream_get_next(struct ArrowArrayStream *stream, struct ArrowArray *out) {
  batch_stream_t *s = stream->private_data;
  if (s->next >= s->n_batches) {
    memset(out, 0, sizeof *out); /* release == NULL marks the end */
    return 0;
  }
  bf_arrow_array_move(&s->batches[s->next++], out);
  return 0;
}

static const char *stream_get_last_error(struct ArrowArrayStream *stream) {
  (void)stream;
  return NULL;
}

static void stream_release(struct ArrowArrayStream *stream) {
  if (stream->release == NULL) return;
  batch_stream_t *s = stream->private_data;
  bf_arrow_schema_release(&s->schema);
  for (size_t i = 0; i < s->n_batches; i++) bf_arrow_array_release(&s->batches[i]);
  free(s->batches);
  free(s);
  stream->release = NULL;
}

int bf_arrow_stream_from_batches(struct ArrowSchema *schema, struct ArrowArray *batches,
                                 size_t n_batches, struct ArrowArrayStream *out) {
  batch_stream_t *s = calloc(1, sizeof *s);
  if (s == NULL) return BF_ENOMEM;
  s->batches = calloc(n_batches ? n_batches : 1, sizeof *s->batches);
  if (s->batches == NULL) {
    free(s);
    return BF_ENOMEM;
  }
  bf_arrow_schema_move(schema, &s->schema);
  for (size_t i = 0; i < n_batches; i++) bf_arrow_array_move(&batches[i], &s->batches[i]);
  s->n_batches = n_batches;
  out->get_schema = stream_get_schema;
  out->get_next = stream_get_next;
  out->get_last_error = stream_get_last_error;
  out->release = stream_release;
  out->private_data = s;
  return BF_OK;
}
