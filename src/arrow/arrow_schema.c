/* Owned ArrowSchema nodes: allocation, dictionary attachment, deep copy, release.
 * Every node made here keeps its strings and children in one private block freed by
 * the release callback, so any schema we hand out follows the C Data Interface
 * ownership rules. */
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

int bf_arrow_schema_deep_copy(const struct ArrowSchema *src, struct ArrowSchema *out) {
  struct ArrowSchema copy;
  int status = bf_arrow_schema_init(&copy, src->format, src->name, src->flags, src->n_children);
  if (status != BF_OK) return status;
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

int bf_arrow_format_n_buffers(const char *format) {
  if (format == NULL || format[0] == '\0') return -1;
  switch (format[0]) {
    case 'n':
      return 0;
    case 'u':
    case 'z':
    case 'U':
    case 'Z':
      return 3;
    case 'v':
      return 2;
    case '+':
      if (format[1] == 's' || format[1] == 'w') return 1;
      if (format[1] == 'l' || format[1] == 'L' || format[1] == 'm') return 2;
      return -1;
    default:
      return bf_arrow_format_byte_width(format) >= 0 ? 2 : -1;
  }
}

int bf_arrow_format_byte_width(const char *format) {
  if (format == NULL) return -1;
  switch (format[0]) {
    case 'b':
      return format[1] == '\0' ? 0 : -1;
    case 'c':
    case 'C':
      return 1;
    case 's':
    case 'S':
    case 'e':
      return 2;
    case 'i':
    case 'I':
    case 'f':
      return 4;
    case 'l':
    case 'L':
    case 'g':
      return 8;
    case 'd': {
      /* d:P,S or d:P,S,bits */
      const char *comma = strchr(format, ',');
      if (comma == NULL) return -1;
      const char *second = strchr(comma + 1, ',');
      if (second == NULL) return 16;
      int bits = atoi(second + 1);
      return bits == 32 || bits == 64 || bits == 128 || bits == 256 ? bits / 8 : -1;
    }
    case 'w':
      return format[1] == ':' ? atoi(format + 2) : -1;
    case 't':
      switch (format[1]) {
        case 'd':
          return format[2] == 'D' ? 4 : format[2] == 'm' ? 8 : -1;
        case 't':
          return (format[2] == 's' || format[2] == 'm') ? 4 : 8;
        case 's':
        case 'D':
          return 8;
        case 'i':
          return format[2] == 'M' ? 4 : format[2] == 'D' ? 8 : format[2] == 'n' ? 16 : -1;
        default:
          return -1;
      }
    default:
      return -1;
  }
}
