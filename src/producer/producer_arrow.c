/* Arrow batches into the producer (include/bifrost/producer.h): the batch's
 * columns are checked against the table (names, formats, nullability, enum values)
 * and its size against max_batch_bytes, then the batch is moved into one queue item
 * that the thread sends as one InsertBatch with the system columns attached. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/producer.h"
#include "producer/producer_internal.h"
#include "producer/producer_state.h"

static int formats_equal(const struct ArrowSchema *want, const struct ArrowSchema *got,
                         const char *path, bf_error_t *err) {
  const char *wf = want->dictionary ? want->dictionary->format : want->format;
  const char *gf = got->dictionary ? got->dictionary->format : got->format;
  if ((want->dictionary == NULL) != (got->dictionary == NULL) || strcmp(want->format, got->format) != 0 ||
      strcmp(wf, gf) != 0)
    return bf_error_set(err, BF_EINVAL, "column '%s' has Arrow type '%s', the table expects '%s'",
                        path, got->format, want->format);
  if (want->n_children != got->n_children)
    return bf_error_set(err, BF_EINVAL, "column '%s' has %lld children, the table expects %lld",
                        path, (long long)got->n_children, (long long)want->n_children);
  for (int64_t i = 0; i < want->n_children; i++) {
    char child[512];
    snprintf(child, sizeof child, "%s.%s", path, want->children[i]->name);
    BF_RETURN_NOT_OK(formats_equal(want->children[i], got->children[i], child, err));
  }
  return BF_OK;
}

/* Every value in a dictionary column's dictionary must be one of the enum's. */
static int check_enum_values(const bf_field_t *field, const struct ArrowArray *column,
                             bf_error_t *err) {
  const struct ArrowArray *dict = column->dictionary;
  if (dict == NULL || dict->n_buffers < 3) return BF_OK;
  const int32_t *offsets = (const int32_t *)dict->buffers[1];
  const char *data = (const char *)dict->buffers[2];
  const uint8_t *valid = (const uint8_t *)dict->buffers[0];
  for (int64_t k = 0; offsets && k < dict->length; k++) {
    int64_t j = k + dict->offset;
    if (valid && !(valid[j >> 3] & (1u << (j & 7)))) continue;
    size_t n = (size_t)(offsets[j + 1] - offsets[j]);
    const char *v = data ? data + offsets[j] : "";
    bool known = false;
    for (size_t e = 0; e < field->n_enum_values && !known; e++)
      known = strlen(field->enum_values[e]) == n && memcmp(field->enum_values[e], v, n) == 0;
    if (!known)
      return bf_error_set(err, BF_EINVAL, "insert_arrow: column '%s' has '%.*s', not one of its enum values",
                          field->name, (int)(n > 200 ? 200 : n), v);
  }
  return BF_OK;
}

int bf_producer_user_arrow_schema(const bf_producer_t *producer, struct ArrowSchema *out,
                                  bf_error_t *err) {
  BF_RETURN_NOT_OK(bf_schema_to_arrow(&producer->schema, out, err));
  for (int64_t i = (int64_t)producer->schema.n_user_fields; i < out->n_children; i++)
    bf_arrow_schema_release(out->children[i]);
  out->n_children = (int64_t)producer->schema.n_user_fields;
  return BF_OK;
}

int bf_producer_insert_arrow(bf_producer_t *producer, const struct ArrowSchema *schema,
                             struct ArrowArray *array, size_t approx_bytes, bf_error_t *err) {
  return bf__producer_insert_arrow(producer, schema, array, approx_bytes, NULL, NULL, NULL, err);
}

int bf__producer_insert_arrow(bf_producer_t *producer, const struct ArrowSchema *schema,
                              struct ArrowArray *array, size_t approx_bytes, bf__cancel_fn cancel,
                              void *ctx, bool *too_large_out, bf_error_t *err) {
  if (too_large_out != NULL) *too_large_out = false;
  if (bf__producer_forked(producer)) return bf__producer_forked_error(err);
  size_t estimate = approx_bytes + BF__PRODUCER_ROW_OVERHEAD * (size_t)(array->length > 0 ? array->length : 0);
  if (estimate > producer->max_batch_bytes) {
    if (too_large_out != NULL) *too_large_out = true;
    char what[64];
    snprintf(what, sizeof what, "an Arrow batch of %lld row(s)", (long long)array->length);
    return bf__producer_too_large(producer, (size_t)(array->length > 0 ? array->length : 0), estimate, what, err);
  }
  struct ArrowSchema table;
  BF_RETURN_NOT_OK(bf_schema_to_arrow(&producer->schema, &table, err));
  int status = BF_OK;
  char *string_formats = NULL;
  size_t n_user = producer->schema.n_user_fields;
  if (strcmp(schema->format, "+s") != 0 || schema->n_children != (int64_t)n_user ||
      array->n_children != (int64_t)n_user) {
    status = bf_error_set(err, BF_EINVAL,
                          "insert_arrow: expected a struct of the table's %zu columns, got '%s' "
                          "with %lld children",
                          n_user, schema->format, (long long)schema->n_children);
  }
  for (size_t i = 0; i < n_user && status == BF_OK; i++) {
    const struct ArrowSchema *w = table.children[i], *g = schema->children[i];
    if (strcmp(w->name, g->name) != 0) {
      status = bf_error_set(err, BF_EINVAL,
                            "insert_arrow: column %zu is '%s', the table expects '%s' there",
                            i + 1, g->name, w->name);
      break;
    }
    if (strcmp(w->format, "vu") == 0 && (strcmp(g->format, "u") == 0 || strcmp(g->format, "U") == 0)) {
      /* Plain strings for a Utf8View column travel as they are: no conversion. */
      if (string_formats == NULL && (string_formats = calloc(n_user, 1)) == NULL)
        status = bf_error_set(err, BF_ENOMEM, "insert_arrow: out of memory");
      else
        string_formats[i] = g->format[0];
    } else {
      status = formats_equal(w, g, w->name, err);
    }
    if (status == BF_OK && !(w->flags & ARROW_FLAG_NULLABLE) && array->children[i]->null_count != 0)
      status = bf_error_set(err, BF_EINVAL, "insert_arrow: column '%s' is required but has nulls",
                            w->name);
    if (status == BF_OK && producer->schema.fields[i].type == BF_TYPE_DICTIONARY)
      status = check_enum_values(&producer->schema.fields[i], array->children[i], err);
  }
  bf_arrow_schema_release(&table);
  if (status != BF_OK || array->length == 0) { /* nothing to send: the array is released */
    free(string_formats);
    if (status == BF_OK) bf_arrow_array_release(array);
    return status;
  }
  bf__item_t *item = malloc(sizeof *item);
  bf__arrow_batch_t *batch = malloc(sizeof *batch);
  if (item == NULL || batch == NULL) {
    free(item);
    free(batch);
    free(string_formats);
    return bf_error_set(err, BF_ENOMEM, "insert_arrow: out of memory");
  }
  batch->string_formats = string_formats;
  item->kind = BF__ITEM_ARROW;
  item->rows = (size_t)array->length;
  item->len = 0;
  item->bytes = approx_bytes;
  item->batch_bytes = estimate;
  item->arrow = batch;
  bf_arrow_array_move(array, &batch->array);
  return bf__producer_enqueue(producer, item, true, cancel, ctx, NULL, err);
}

