/* Owned ArrowArray nodes: the builders (row batches), the IPC reader and the query
 * engine allocate arrays here and hand them on as C Data Interface structs. Buffers
 * attached with bf_arrow_array_set_buffer come from malloc and are freed by the
 * node's release callback together with its children and dictionary; buffers set
 * with bf_arrow_array_set_borrowed point into a shared backing (e.g. a received
 * request decoded in place) that the node keeps alive by reference count. */
#include <stdlib.h>
#include <string.h>

#include "bifrost/arrow.h"

typedef struct array_private {
  void **buffers; /* the buffer pointers handed out (n_buffers), then the owned ones:
                     owned[i] is buffers[i] when set from malloc, NULL when borrowed */
  struct ArrowArray **child_ptrs;
  struct ArrowArray *child_structs;
  bf_shared_t *backing; /* what borrowed buffers point into, or NULL */
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
    for (int64_t i = 0; i < array->n_buffers; i++) free(priv->buffers[array->n_buffers + i]);
    free(priv->buffers);
    bf_shared_unref(priv->backing);
    free(priv->child_ptrs);
    free(priv->child_structs);
    free(priv);
  }
  array->release = NULL;
}

int bf_arrow_array_init(struct ArrowArray *out, int64_t n_buffers, int64_t n_children) {
  array_private_t *priv = calloc(1, sizeof *priv);
  if (priv == NULL) return BF_ENOMEM;
  priv->buffers = calloc((size_t)(n_buffers > 0 ? 2 * n_buffers : 1), sizeof(void *));
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
  free(priv->buffers[array->n_buffers + i]);
  priv->buffers[i] = priv->buffers[array->n_buffers + i] = malloced;
}

void bf_arrow_array_set_borrowed(struct ArrowArray *array, int64_t i, const void *ptr,
                                 bf_shared_t *backing) {
  array_private_t *priv = array->private_data;
  free(priv->buffers[array->n_buffers + i]);
  priv->buffers[array->n_buffers + i] = NULL;
  priv->buffers[i] = (void *)(uintptr_t)ptr;
  if (priv->backing != backing) {
    bf_shared_unref(priv->backing);
    bf_shared_ref(backing);
    priv->backing = backing;
  }
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

int64_t bf_arrow_count_nulls(const uint8_t *bits, int64_t offset, int64_t length) {
  int64_t valid = 0;
  for (int64_t i = offset, end = offset + length; i < end;) {
    if ((i & 7) == 0 && end - i >= 64) { /* a whole aligned word at a time */
      uint64_t word;
      memcpy(&word, bits + (i >> 3), 8);
      valid += __builtin_popcountll(word);
      i += 64;
    } else {
      valid += bf_arrow_bit_get(bits, i);
      i++;
    }
  }
  return length - valid;
}
