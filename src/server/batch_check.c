/* InsertBatch checks (see batch_check.h). */
#include "server/batch_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tz_is_utc(const char *tz) {
  return strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0 || strcmp(tz, "+00:00") == 0 ||
         strcmp(tz, "Z") == 0;
}

static int is_string_format(const char *f) {
  return strcmp(f, "vu") == 0 || strcmp(f, "u") == 0 || strcmp(f, "U") == 0;
}

static int formats_compatible(const char *want, const char *got) {
  if (strcmp(want, got) == 0) return 1;
  if (is_string_format(want) && is_string_format(got)) return 1;
  if (strncmp(want, "tsu:", 4) == 0 && strncmp(got, "tsu:", 4) == 0)
    return tz_is_utc(want + 4) && tz_is_utc(got + 4);
  return 0;
}

static int check_schema(const struct ArrowSchema *want, const struct ArrowSchema *got,
                        const char *path, bf_error_t *err) {
  const char *where = path[0] ? path : "the batch";
  int64_t n = want->n_children > got->n_children ? want->n_children : got->n_children;
  for (int64_t i = 0; i < n; i++) {
    const struct ArrowSchema *w = i < want->n_children ? want->children[i] : NULL;
    const struct ArrowSchema *g = i < got->n_children ? got->children[i] : NULL;
    char child[512];
    snprintf(child, sizeof child, "%s%s%s", path, path[0] ? "." : "", w ? w->name : g->name);
    if (g == NULL)
      return bf_error_set(err, BF_EINVAL, "column '%s' is missing from %s", child, where);
    if (w == NULL)
      return bf_error_set(err, BF_EINVAL, "%s has column '%s' that the table does not have",
                          where, child);
    if (strcmp(w->name, g->name) != 0)
      return bf_error_set(err, BF_EINVAL,
                          "column %lld of %s is '%s', the table expects '%s' there (same columns, "
                          "same order)",
                          (long long)i + 1, where, g->name, child);
    const char *wf = w->dictionary ? w->dictionary->format : w->format;
    const char *gf = g->dictionary ? g->dictionary->format : g->format;
    if (!formats_compatible(wf, gf))
      return bf_error_set(err, BF_EINVAL, "column '%s' has Arrow type '%s', the table expects '%s'",
                          child, gf, wf);
    BF_RETURN_NOT_OK(check_schema(w, g, child, err));
  }
  return BF_OK;
}

int bf_batch_check_schema(const struct ArrowSchema *want, const struct ArrowSchema *got,
                          bf_error_t *err) {
  return check_schema(want, got, "", err);
}

int bf_batch_check_nulls(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                         bf_error_t *err) {
  for (int64_t i = 0; i < schema->n_children; i++) {
    if (!(schema->children[i]->flags & ARROW_FLAG_NULLABLE) && batch->children[i]->null_count > 0)
      return bf_error_set(err, BF_EINVAL, "column '%s' is required but has %lld nulls",
                          schema->children[i]->name, (long long)batch->children[i]->null_count);
  }
  return BF_OK;
}

static void format_bytes(int64_t bytes, char *out, size_t cap) {
  if (bytes >= (1LL << 30))
    snprintf(out, cap, "%.1f GiB", (double)bytes / (double)(1LL << 30));
  else if (bytes >= (1LL << 20))
    snprintf(out, cap, "%.1f MiB", (double)bytes / (double)(1LL << 20));
  else
    snprintf(out, cap, "%lld bytes", (long long)bytes);
}

int bf_batch_check_size(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                        int64_t max_bytes, int64_t received_bytes, int64_t *total,
                        bf_error_t *err) {
  int64_t batch_bytes = bf_arrow_decoded_size(schema, batch);
  *total = *total > INT64_MAX - batch_bytes ? INT64_MAX : *total + batch_bytes;
  if (max_bytes <= 0 || *total <= max_bytes) return BF_OK;
  int64_t largest = -1;
  const char *largest_name = "?";
  for (int64_t i = 0; i < schema->n_children && i < batch->n_children; i++) {
    int64_t column = bf_arrow_decoded_size(schema->children[i], batch->children[i]);
    if (column > largest) {
      largest = column;
      largest_name = schema->children[i]->name;
    }
  }
  char total_text[32], limit_text[32], column_text[32], received_text[32];
  format_bytes(*total, total_text, sizeof total_text);
  format_bytes(max_bytes, limit_text, sizeof limit_text);
  format_bytes(largest, column_text, sizeof column_text);
  format_bytes(received_bytes, received_text, sizeof received_text);
  return bf_error_set(err, BF_EINVAL,
                      "the batch decodes to at least %s (from %s received), over the server's "
                      "limit of %s per batch (--max-batch-bytes); column '%s' alone decodes to %s; "
                      "send smaller batches",
                      total_text, received_text, limit_text, largest_name, column_text);
}

/* Bytes a value takes in a directory name, counting worst-case escaping. */
static size_t escaped_length(const uint8_t *p, size_t n) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    len += plain ? 1 : 3;
  }
  return len;
}

static int check_value(const char *column, const uint8_t *p, size_t n, bf_error_t *err) {
  if (n == 0)
    return bf_error_set(err, BF_EINVAL,
                        "partition column '%s' has an empty string; Delta Lake reads an empty "
                        "partition value as null, so use a non-empty value (or None on an "
                        "optional field)",
                        column);
  if (memchr(p, '\0', n))
    return bf_error_set(err, BF_EINVAL,
                        "partition column '%s' has a value with a NUL byte, which cannot be part "
                        "of a directory name",
                        column);
  size_t dir_len = strlen(column) + 1 + escaped_length(p, n);
  if (dir_len > BF_PARTITION_DIR_MAX)
    return bf_error_set(err, BF_EINVAL,
                        "partition column '%s' has a value of %zu bytes ('%.20s...') that would "
                        "need a %zu-byte directory name; at most %d bytes fit (letters and digits "
                        "count 1, other bytes up to 3); partition by a shorter value",
                        column, n, (const char *)p, dir_len, BF_PARTITION_DIR_MAX);
  return BF_OK;
}

static int check_string_column(const char *column, const struct ArrowSchema *s,
                               const struct ArrowArray *a, bf_error_t *err) {
  const uint8_t *validity = a->null_count != 0 ? a->buffers[0] : NULL;
  const char *f = s->format;
  for (int64_t row = 0; row < a->length; row++) {
    int64_t i = a->offset + row;
    if (validity && !bf_arrow_bit_get(validity, i)) continue;
    const uint8_t *p = NULL;
    size_t n = 0;
    if (strcmp(f, "u") == 0) {
      const int32_t *off = a->buffers[1];
      p = (const uint8_t *)a->buffers[2] + off[i];
      n = (size_t)(off[i + 1] - off[i]);
    } else if (strcmp(f, "U") == 0) {
      const int64_t *off = a->buffers[1];
      p = (const uint8_t *)a->buffers[2] + off[i];
      n = (size_t)(off[i + 1] - off[i]);
    } else if (strcmp(f, "vu") == 0) {
      const uint8_t *view = (const uint8_t *)a->buffers[1] + 16 * i;
      int32_t len, buffer_index, offset;
      memcpy(&len, view, 4);
      n = (size_t)len;
      if (len <= 12) {
        p = view + 4;
      } else {
        memcpy(&buffer_index, view + 8, 4);
        memcpy(&offset, view + 12, 4);
        p = (const uint8_t *)a->buffers[2 + buffer_index] + offset;
      }
    } else {
      return BF_OK; /* dates, integers, booleans: always short and plain */
    }
    BF_RETURN_NOT_OK(check_value(column, p, n, err));
  }
  return BF_OK;
}

int bf_batch_check_partition_values(const struct ArrowSchema *schema,
                                    const struct ArrowArray *batch,
                                    const char *const *partition_columns,
                                    size_t n_partition_columns, bf_error_t *err) {
  for (size_t k = 0; k < n_partition_columns; k++) {
    for (int64_t i = 0; i < schema->n_children && i < batch->n_children; i++) {
      const struct ArrowSchema *s = schema->children[i];
      if (strcmp(s->name, partition_columns[k]) != 0) continue;
      const struct ArrowArray *a = batch->children[i];
      if (s->dictionary && a->dictionary) /* enum values: check the dictionary itself */
        BF_RETURN_NOT_OK(check_string_column(s->name, s->dictionary, a->dictionary, err));
      else
        BF_RETURN_NOT_OK(check_string_column(s->name, s, a, err));
    }
  }
  return BF_OK;
}

/* ---- matching columns by name ------------------------------------------------- */

/* Permutes got's children (and the same children of every array) into want's
 * order, then recurses into structs and list items. */
static int reorder_node(const struct ArrowSchema *want, struct ArrowSchema *got,
                        struct ArrowArray **arrays, size_t n_arrays, const char *path,
                        bf_error_t *err) {
  const char *where = path[0] ? path : "the batch";
  int is_struct = strcmp(want->format, "+s") == 0 && strcmp(got->format, "+s") == 0;
  int is_list = (want->format[0] == '+' && (want->format[1] == 'l' || want->format[1] == 'L')) &&
                want->n_children == 1 && got->n_children == 1;
  if (!is_struct && !is_list) return BF_OK;
  int64_t n = got->n_children;
  for (size_t a = 0; a < n_arrays; a++)
    if (arrays[a]->n_children != n)
      return bf_error_set(err, BF_EINVAL, "%s: array has %lld children, its schema %lld", where,
                          (long long)arrays[a]->n_children, (long long)n);
  if (is_struct) {
    /* every column of the batch must be one the table has, named once */
    for (int64_t g = 0; g < n; g++) {
      int64_t found = -1;
      for (int64_t w = 0; w < want->n_children && found < 0; w++)
        if (strcmp(want->children[w]->name, got->children[g]->name) == 0) found = w;
      if (found < 0)
        return bf_error_set(err, BF_EINVAL, "%s has column '%s%s%s' that the table does not have",
                            where, path, path[0] ? "." : "", got->children[g]->name);
      for (int64_t h = 0; h < g; h++)
        if (strcmp(got->children[h]->name, got->children[g]->name) == 0)
          return bf_error_set(err, BF_EINVAL, "%s has column '%s%s%s' twice", where, path,
                              path[0] ? "." : "", got->children[g]->name);
    }
    for (int64_t w = 0; w < want->n_children; w++) {
      int64_t found = -1;
      for (int64_t g = w; g < n && found < 0; g++)
        if (strcmp(want->children[w]->name, got->children[g]->name) == 0) found = g;
      if (found < 0)
        return bf_error_set(err, BF_EINVAL, "column '%s%s%s' is missing from %s", path,
                            path[0] ? "." : "", want->children[w]->name, where);
      if (found != w) { /* swap into place: children before w are already placed */
        struct ArrowSchema *s = got->children[w];
        got->children[w] = got->children[found];
        got->children[found] = s;
        for (size_t a = 0; a < n_arrays; a++) {
          struct ArrowArray *c = arrays[a]->children[w];
          arrays[a]->children[w] = arrays[a]->children[found];
          arrays[a]->children[found] = c;
        }
      }
    }
  }
  int64_t n_common = want->n_children < n ? want->n_children : n;
  struct ArrowArray **children = malloc((n_arrays ? n_arrays : 1) * sizeof *children);
  if (children == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  int status = BF_OK;
  for (int64_t i = 0; i < n_common && status == BF_OK; i++) {
    char child[512];
    snprintf(child, sizeof child, "%s%s%s", path, path[0] ? "." : "", want->children[i]->name);
    for (size_t a = 0; a < n_arrays; a++) children[a] = arrays[a]->children[i];
    status = reorder_node(want->children[i], got->children[i], children, n_arrays, child, err);
  }
  free(children);
  return status;
}

int bf_batch_reorder_by_name(const struct ArrowSchema *want, struct ArrowSchema *got,
                             struct ArrowArray *batches, size_t n_batches, bf_error_t *err) {
  struct ArrowArray **arrays = malloc((n_batches ? n_batches : 1) * sizeof *arrays);
  if (arrays == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  for (size_t i = 0; i < n_batches; i++) arrays[i] = &batches[i];
  int status = reorder_node(want, got, arrays, n_batches, "", err);
  free(arrays);
  return status;
}
