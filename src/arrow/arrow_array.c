/* Owned ArrowArray nodes and an ArrowArrayStream over a list of batches. Buffers
 * attached with bf_arrow_array_set_buffer come from malloc and are freed by the
 * node's release callback together with its children and dictionary. */
#include <stdlib.h>
#include <string.h>

#include "bifrost/arrow.h"

typedef struct array_private {
  void **buffers; /* owned copies of the buffer pointers, freed on release */
  struct ArrowArray **child_ptrs;
  struct ArrowArray *child_structs;
} array_private_t;

static void release_array(struct ArrowArray *array) {
  if (array == NULL || array->release == NULL) return;
  array_private_t *priv = array->private_data;
  for (int64_t i = 0; i < array->n_children; i++) {
    struct ArrowArray *child = array->children[i];
    if (child && child->release) child->release(child);
  }
  if (array->dictionary) {
    if (array->dictionary->release) array->dictionary->release(array->dictionary);
    free(array->dictionary);
  }
  if (priv) {
    for (int64_t i = 0; i < array->n_buffers; i++) free(priv->buffers[i]);
    free(priv->buffers);
    free(priv->child_ptrs);
    free(priv->child_structs);
    free(priv);
  }
  array->release = NULL;
}

int bf_arrow_array_init(struct ArrowArray *out, int64_t n_buffers, int64_t n_children) {
  array_private_t *priv = calloc(1, sizeof *priv);
  if (priv == NULL) return BF_ENOMEM;
  priv->buffers = calloc((size_t)(n_buffers > 0 ? n_buffers : 1), sizeof(void *));
  if (priv->buffers == NULL) goto fail;
  if (n_children > 0) {
    priv->child_ptrs = calloc((size_t)n_children, sizeof *priv->child_ptrs);
    priv->child_structs = calloc((size_t)n_children, sizeof *priv->child_structs);
    if (priv->child_ptrs == NULL || priv->child_structs == NULL) goto fail;
    for (int64_t i = 0; i < n_children; i++) priv->child_ptrs[i] = &priv->child_structs[i];
  }
  memset(out, 0, sizeof *out);
  out->n_buffers = n_buffers;
  out->n_children = n_children;
  out->buffers = (const void **)priv->buffers;
  out->children = priv->child_ptrs;
  out->release = release_array;
  out->private_data = priv;
  return BF_OK;
fail:
  free(priv->buffers);
  free(priv->child_ptrs);
  free(priv->child_structs);
  free(priv);
  return BF_ENOMEM;
}

void bf_arrow_array_set_buffer(struct ArrowArray *array, int64_t i, void *malloced) {
  array_private_t *priv = array->private_data;
  free(priv->buffers[i]);
  priv->buffers[i] = malloced;
}

struct ArrowArray *bf_arrow_array_alloc_dictionary(struct ArrowArray *array) {
  if (array->dictionary == NULL) array->dictionary = calloc(1, sizeof *array->dictionary);
  return array->dictionary;
}

void bf_arrow_array_release(struct ArrowArray *array) {
  if (array && array->release) array->release(array);
}

void bf_arrow_array_move(struct ArrowArray *src, struct ArrowArray *dst) {
  *dst = *src;
  src->release = NULL;
}

/* ---- ArrowArrayStream over owned batches ---------------------------------- */

typedef struct batch_stream {
  struct ArrowSchema schema;
  struct ArrowArray *batches;
  size_t n_batches;
  size_t next;
} batch_stream_t;

static int stream_get_schema(struct ArrowArrayStream *stream, struct ArrowSchema *out) {
  batch_stream_t *s = stream->private_data;
  return bf_arrow_schema_deep_copy(&s->schema, out) == BF_OK ? 0 : 12 /* ENOMEM */;
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
