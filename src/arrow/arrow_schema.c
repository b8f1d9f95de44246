/* Owned ArrowSchema nodes: allocation, dictionary attachment, deep copy, release.
 * Every node made here keeps its strings (format, name, metadata) and children in
 * one private block freed by the release callback, so any schema we hand out
 * follows the C Data Interface ownership rules. Format-string layout facts live in
 * arrow_format.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/arrow.h"

typedef struct schema_private {
  char *format;
  char *name;
  char *metadata;
  struct ArrowSchema **child_ptrs;
  struct ArrowSchema *child_structs;
} schema_private_t;

static void release_schema(struct ArrowSchema *schema) {
  if (schema == NULL || schema->release == NULL) return;
  schema_private_t *priv = schema->private_data;
  for (int64_t i = 0; i < schema->n_children; i++) {
    struct ArrowSchema *child = schema->children[i];
    if (child && child->release) child->release(child);
  }
  if (schema->dictionary) {
    if (schema->dictionary->release) schema->dictionary->release(schema->dictionary);
    free(schema->dictionary);
  }
  if (priv) {
    free(priv->format);
    free(priv->name);
    free(priv->metadata);
    free(priv->child_ptrs);
    free(priv->child_structs);
    free(priv);
  }
  schema->release = NULL;
}

static char *dup_or_null(const char *s) {
  if (s == NULL) return NULL;
  size_t n = strlen(s) + 1;
  char *copy = malloc(n);
  if (copy) memcpy(copy, s, n);
  return copy;
}

int bf_arrow_schema_init(struct ArrowSchema *out, const char *format, const char *name,
                         int64_t flags, int64_t n_children) {
  schema_private_t *priv = calloc(1, sizeof *priv);
  if (priv == NULL) return BF_ENOMEM;
  priv->format = dup_or_null(format ? format : "");
  priv->name = dup_or_null(name ? name : "");
  if (priv->format == NULL || priv->name == NULL) goto fail;
  if (n_children > 0) {
    priv->child_ptrs = calloc((size_t)n_children, sizeof *priv->child_ptrs);
    priv->child_structs = calloc((size_t)n_children, sizeof *priv->child_structs);
    if (priv->child_ptrs == NULL || priv->child_structs == NULL) goto fail;
    for (int64_t i = 0; i < n_children; i++) priv->child_ptrs[i] = &priv->child_structs[i];
  }
  memset(out, 0, sizeof *out);
  out->format = priv->format;
  out->name = priv->name;
  out->metadata = NULL;
  out->flags = flags;
  out->n_children = n_children;
  out->children = priv->child_ptrs;
  out->dictionary = NULL;
  out->release = release_schema;
  out->private_data = priv;
  return BF_OK;
fail:
  free(priv->format);
  free(priv->name);
  free(priv->child_ptrs);
  free(priv->child_structs);
  free(priv);
  return BF_ENOMEM;
}

int bf_arrow_schema_set_dictionary(struct ArrowSchema *schema, const char *value_format) {
  struct ArrowSchema *dict = calloc(1, sizeof *dict);
  if (dict == NULL) return BF_ENOMEM;
  int status = bf_arrow_schema_init(dict, value_format, "", ARROW_FLAG_NULLABLE, 0);
  if (status != BF_OK) {
    free(dict);
    return status;
  }
  if (schema->dictionary) {
    bf_arrow_schema_release(schema->dictionary);
    free(schema->dictionary);
  }
  schema->dictionary = dict;
  return BF_OK;
}

/* Byte size of C Data Interface metadata: int32 n_pairs, then per pair int32
 * key_len, key bytes, int32 value_len, value bytes (native endian). */
static size_t metadata_size(const char *metadata) {
  int32_t n_pairs, len;
  size_t pos = 4;
  memcpy(&n_pairs, metadata, 4);
  for (int32_t i = 0; i < 2 * n_pairs; i++) {
    memcpy(&len, metadata + pos, 4);
    pos += 4 + (size_t)len;
  }
  return pos;
}

int bf_arrow_schema_deep_copy(const struct ArrowSchema *src, struct ArrowSchema *out) {
  struct ArrowSchema copy;
  int status = bf_arrow_schema_init(&copy, src->format, src->name, src->flags, src->n_children);
  if (status != BF_OK) return status;
  if (src->metadata) {
    schema_private_t *priv = copy.private_data;
    size_t n = metadata_size(src->metadata);
    priv->metadata = malloc(n);
    if (priv->metadata == NULL) {
      status = BF_ENOMEM;
      goto fail;
    }
    memcpy(priv->metadata, src->metadata, n);
    copy.metadata = priv->metadata;
  }
  for (int64_t i = 0; i < src->n_children; i++) {
    status = bf_arrow_schema_deep_copy(src->children[i], copy.children[i]);
    if (status != BF_OK) goto fail;
  }
  if (src->dictionary) {
    struct ArrowSchema *dict = calloc(1, sizeof *dict);
    if (dict == NULL) {
      status = BF_ENOMEM;
      goto fail;
    }
    status = bf_arrow_schema_deep_copy(src->dictionary, dict);
    if (status != BF_OK) {
      free(dict);
      goto fail;
    }
    copy.dictionary = dict;
  }
  *out = copy;
  return BF_OK;
fail:
  copy.release(&copy);
  return status;
}

void bf_arrow_schema_release(struct ArrowSchema *schema) {
  if (schema && schema->release) schema->release(schema);
}

void bf_arrow_schema_move(struct ArrowSchema *src, struct ArrowSchema *dst) {
  *dst = *src;
  src->release = NULL;
}
