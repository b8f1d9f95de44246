/* Binary rows (rows.h): one tagged value per field, nested for lists and structs.
 * A row is checked as a whole first (tags against the schema, nulls, enum values,
 * lengths) and only then appended, so a bad row never leaves a half-appended
 * record behind. Values are copied bit for bit: floats keep NaN payloads, ±inf and
 * -0.0. */
#include <stdio.h>
#include <string.h>

#include "bifrost/rows.h"
#include "bifrost/util.h"
#include "rows/columns.h"
#include "rows/scalars.h"

/* Nesting deeper than this is refused (the schema cannot be deeper in practice). */
#define MAX_DEPTH 64

static uint32_t read_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A field's path for messages ("features.amount", "scores[]"), written out only when
 * a message needs it: checking a valid row formats nothing. */
typedef struct path {
  const struct path *parent; /* NULL: a top-level field, whose path is name */
  const char *suffix, *name;
} path_t;

#define PATH_MAX_TEXT 512

/* The text of path: the parent's text, suffix and name, cut to PATH_MAX_TEXT - 1
 * bytes at each level. out has PATH_MAX_TEXT bytes; the result may be p->name. */
static const char *path_text(const path_t *p, char *out) {
  if (p->parent == NULL) return p->name;
  char parent[PATH_MAX_TEXT];
  snprintf(out, PATH_MAX_TEXT, "%s%s%s", path_text(p->parent, parent), p->suffix, p->name);
  return out;
}

/* An integer enum's values are kept as decimal text. */
static bool int_enum_known(const bf_field_t *f, const uint8_t *p) {
  int64_t v;
  memcpy(&v, p, 8);
  char text[32];
  snprintf(text, sizeof text, "%lld", (long long)v);
  for (size_t e = 0; e < f->n_enum_values; e++)
    if (strcmp(f->enum_values[e], text) == 0) return true;
  return false;
}

static bool enum_known(const bf_field_t *f, const uint8_t *s, size_t n) {
  for (size_t e = 0; e < f->n_enum_values; e++)
    if (strlen(f->enum_values[e]) == n && memcmp(f->enum_values[e], s, n) == 0) return true;
  return false;
}

/* Checks one encoded value against its field; *size receives its encoded size. */
static int check_value(const bf_field_t *f, const uint8_t *p, size_t left, const path_t *path,
                       int depth, size_t *size, bf_error_t *err) {
  char text[PATH_MAX_TEXT]; /* PATH_TEXT: the path written out, for a message */
#define PATH_TEXT path_text(path, text)
  if (depth > MAX_DEPTH)
    return bf_error_set(err, BF_EINVAL, "field '%s': nested too deeply", PATH_TEXT);
  if (left < 1) return bf_error_set(err, BF_EINVAL, "row ends before field '%s'", PATH_TEXT);
  uint8_t tag = p[0];
  size_t need = 1;
  switch (tag) {
    case BF_ROW_NULL:
      if (!f->nullable)
        return bf_error_set(err, BF_EINVAL, "field '%s': required value is missing or null",
                            PATH_TEXT);
      break;
    case BF_ROW_INT64:
      need += 8;
      if (f->type != BF_TYPE_INT64 && f->type != BF_TYPE_FLOAT64 && f->type != BF_TYPE_TIME_US &&
          f->type != BF_TYPE_DURATION_US)
        return bf__rows_type_error(PATH_TEXT, "an integer", err);
      if (f->type == BF_TYPE_INT64 && f->n_enum_values && left >= need && !int_enum_known(f, p + 1)) {
        int64_t v;
        memcpy(&v, p + 1, 8);
        return bf_error_set(err, BF_EINVAL, "field '%s': %lld is not one of the enum values",
                            PATH_TEXT, (long long)v);
      }
      if (f->type == BF_TYPE_TIME_US && left >= need) {
        int64_t us;
        memcpy(&us, p + 1, 8);
        if (us < 0 || us >= BF_TIME_US_PER_DAY)
          return bf_error_set(err, BF_EINVAL,
                              "field '%s': a time of day is 0 to 86399999999 microseconds, got %lld",
                              PATH_TEXT, (long long)us);
      }
      break;
    case BF_ROW_BINARY:
      need += 4;
      if (f->type != BF_TYPE_BINARY) return bf__rows_type_error(PATH_TEXT, "bytes", err);
      if (left >= need) need += read_u32(p + 1);
      break;
    case BF_ROW_DECIMAL128:
      need += 16;
      if (f->type != BF_TYPE_DECIMAL128) return bf__rows_type_error(PATH_TEXT, "a decimal", err);
      if (left >= need && !bf__decimal_fits(p + 1, f->precision))
        return bf_error_set(err, BF_EINVAL, "field '%s': the decimal has more than %d digits",
                            PATH_TEXT, f->precision);
      break;
    case BF_ROW_FLOAT64:
      need += 8;
      if (f->type != BF_TYPE_FLOAT64) return bf__rows_type_error(PATH_TEXT, "a number", err);
      break;
    case BF_ROW_BOOL:
      need += 1;
      if (f->type != BF_TYPE_BOOL) return bf__rows_type_error(PATH_TEXT, "a boolean", err);
      break;
    case BF_ROW_TIMESTAMP_US:
      need += 8;
      if (f->type != BF_TYPE_TIMESTAMP_US) return bf__rows_type_error(PATH_TEXT, "a datetime", err);
      break;
    case BF_ROW_DATE32:
      need += 4;
      if (f->type != BF_TYPE_DATE32) return bf__rows_type_error(PATH_TEXT, "a date", err);
      break;
    case BF_ROW_STRING:
      need += 4;
      if (f->type != BF_TYPE_UTF8VIEW && f->type != BF_TYPE_UTF8 && f->type != BF_TYPE_DICTIONARY)
        return bf__rows_type_error(PATH_TEXT, "a string", err);
      if (left >= need) need += read_u32(p + 1);
      if (left >= need && f->type == BF_TYPE_DICTIONARY && !enum_known(f, p + 5, need - 5))
        return bf_error_set(err, BF_EINVAL, "field '%s': '%.*s' is not one of the enum values",
                            PATH_TEXT, (int)(need - 5 > 200 ? 200 : need - 5), (const char *)p + 5);
      break;
    case BF_ROW_MAP:
    case BF_ROW_LIST: {
      need += 4;
      if (tag == BF_ROW_LIST && f->type != BF_TYPE_LIST)
        return bf__rows_type_error(PATH_TEXT, "a list", err);
      if (tag == BF_ROW_MAP && f->type != BF_TYPE_MAP)
        return bf__rows_type_error(PATH_TEXT, "a dict", err);
      if (left < need) break;
      uint32_t count = read_u32(p + 1);
      path_t item_path = {path, tag == BF_ROW_MAP ? "{}" : "[]", ""};
      for (uint32_t k = 0; k < count; k++) {
        size_t item = 0;
        BF_RETURN_NOT_OK(check_value(&f->children[0], p + need, left - need, &item_path, depth + 1,
                                     &item, err));
        need += item;
      }
      break;
    }
    case BF_ROW_STRUCT: {
      if (f->type != BF_TYPE_STRUCT) return bf__rows_type_error(PATH_TEXT, "an object", err);
      for (size_t i = 0; i < f->n_children; i++) {
        path_t sub = {path, ".", f->children[i].name};
        size_t item = 0;
        BF_RETURN_NOT_OK(
            check_value(&f->children[i], p + need, left - need, &sub, depth + 1, &item, err));
        need += item;
      }
      break;
    }
    default:
      return bf_error_set(err, BF_EINVAL, "field '%s': unknown row tag %u", PATH_TEXT, tag);
  }
  if (left < need) return bf_error_set(err, BF_EINVAL, "row ends inside field '%s'", PATH_TEXT);
  *size = need;
  return BF_OK;
#undef PATH_TEXT
}

/* Appends one checked value; *size receives its encoded size. Fails only for memory. */
static int append_value(column_t *col, const uint8_t *p, size_t *size) {
  uint8_t tag = p[0];
  if (tag == BF_ROW_NULL) {
    *size = 1;
    return bf__column_append_null(col);
  }
  BF_RETURN_NOT_OK(bf__column_push_validity(col, true));
  const bf_field_t *f = col->field;
  int status = BF_OK;
  size_t used = 1;
  switch (tag) {
    case BF_ROW_STRING: {
      size_t n = read_u32(p + 1);
      used += 4 + n;
      if (f->type == BF_TYPE_DICTIONARY) {
        int16_t index = 0;
        for (size_t e = 0; e < f->n_enum_values; e++)
          if (strlen(f->enum_values[e]) == n && memcmp(f->enum_values[e], p + 5, n) == 0)
            index = (int16_t)e;
        status = bf_buffer_append(&col->values, &index, 2);
      } else {
        status = bf__column_push_view(col, (const char *)p + 5, n);
      }
      break;
    }
    case BF_ROW_BINARY: {
      size_t n = read_u32(p + 1);
      used += 4 + n;
      status = bf__column_push_view(col, (const char *)p + 5, n);
      break;
    }
    case BF_ROW_DECIMAL128:
      used += 16;
      status = bf_buffer_append(&col->values, p + 1, 16);
      break;
    case BF_ROW_INT64:
      used += 8;
      if (f->type == BF_TYPE_FLOAT64) {
        int64_t v;
        memcpy(&v, p + 1, 8);
        double d = (double)v;
        status = bf_buffer_append(&col->values, &d, 8);
      } else {
        status = bf_buffer_append(&col->values, p + 1, 8);
      }
      break;
    case BF_ROW_FLOAT64:
    case BF_ROW_TIMESTAMP_US:
      used += 8;
      status = bf_buffer_append(&col->values, p + 1, 8);
      break;
    case BF_ROW_DATE32:
      used += 4;
      status = bf_buffer_append(&col->values, p + 1, 4);
      break;
    case BF_ROW_BOOL:
      used += 1;
      if ((col->length & 7) == 0) status = bf_buffer_append_zeros(&col->values, 1);
      if (status == BF_OK && p[1]) bf_arrow_bit_set(col->values.data, col->length, true);
      break;
    case BF_ROW_MAP:
    case BF_ROW_LIST: {
      uint32_t count = read_u32(p + 1);
      used += 4;
      for (uint32_t k = 0; k < count && status == BF_OK; k++) {
        size_t item = 0;
        status = append_value(&col->children[0], p + used, &item);
        used += item;
      }
      int32_t end = (int32_t)col->children[0].length;
      if (status == BF_OK) status = bf_buffer_append(&col->values, &end, 4);
      break;
    }
    case BF_ROW_STRUCT:
      for (size_t i = 0; i < f->n_children && status == BF_OK; i++) {
        size_t item = 0;
        status = append_value(&col->children[i], p + used, &item);
        used += item;
      }
      break;
  }
  col->length++;
  *size = used;
  return status;
}

int bf_batch_builder_append_row(bf_batch_builder_t *builder, const uint8_t *row, size_t len,
                                bf_error_t *err) {
  const bf_schema_t *schema = builder->schema;
  size_t off = 0;
  for (size_t i = 0; i < schema->n_user_fields; i++) {
    size_t size = 0;
    path_t path = {NULL, "", schema->fields[i].name};
    BF_RETURN_NOT_OK(check_value(&schema->fields[i], row + off, len - off, &path, 0, &size, err));
    off += size;
  }
  if (off != len) return bf_error_set(err, BF_EINVAL, "row has %zu bytes after the last field", len - off);
  off = 0;
  int status = BF_OK;
  for (size_t i = 0; i < schema->n_user_fields && status == BF_OK; i++) {
    size_t size = 0;
    status = append_value(&builder->columns[i], row + off, &size);
    off += size;
  }
  if (status != BF_OK) return bf_error_set(err, status, "out of memory appending a record");
  builder->n_rows++;
  return BF_OK;
}
