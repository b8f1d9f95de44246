/* The row builder: JSON records -> Arrow columns for a bf_schema_t. One column
 * builder per field (recursively for lists and structs; columns.h) accumulates a validity
 * bitmap and its value buffers. A record is first validated as a whole (types,
 * required fields, dates, enum values) and only then appended, so a bad record never
 * leaves a half-appended row behind. finish() adds the system columns and hands
 * the buffers to an owned ArrowArray. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/rows.h"
#include "bifrost/util.h"
#include "rows/columns.h"
#include "rows/scalars.h"
#include "rows/temporal.h"

/* ---- column lifecycle -------------------------------------------------------- */

static int column_init(column_t *col, const bf_field_t *field) {
  memset(col, 0, sizeof *col);
  col->field = field;
  if (field->n_children) {
    col->children = calloc(field->n_children, sizeof *col->children);
    if (col->children == NULL) return BF_ENOMEM;
    for (size_t i = 0; i < field->n_children; i++)
      BF_RETURN_NOT_OK(column_init(&col->children[i], &field->children[i]));
  }
  if (field->type == BF_TYPE_LIST || field->type == BF_TYPE_MAP) {
    int32_t zero = 0;
    BF_RETURN_NOT_OK(bf_buffer_append(&col->values, &zero, sizeof zero));
  }
  return BF_OK;
}

static void column_reset(column_t *col) {
  bf_buffer_reset(&col->validity);
  bf_buffer_reset(&col->values);
  bf_buffer_reset(&col->heap);
  if (col->children) {
    for (size_t i = 0; i < col->field->n_children; i++) column_reset(&col->children[i]);
    free(col->children);
  }
  col->children = NULL;
}

int bf_batch_builder_create(const bf_schema_t *schema, bf_batch_builder_t **out, bf_error_t *err) {
  bf_batch_builder_t *b = calloc(1, sizeof *b);
  if (b == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  b->schema = schema;
  b->columns = calloc(schema->n_user_fields ? schema->n_user_fields : 1, sizeof *b->columns);
  if (b->columns == NULL) goto fail;
  for (size_t i = 0; i < schema->n_user_fields; i++)
    if (column_init(&b->columns[i], &schema->fields[i]) != BF_OK) goto fail;
  *out = b;
  return BF_OK;
fail:
  bf_batch_builder_destroy(b);
  return bf_error_set(err, BF_ENOMEM, "out of memory");
}

void bf_batch_builder_destroy(bf_batch_builder_t *builder) {
  if (builder == NULL) return;
  if (builder->columns)
    for (size_t i = 0; i < builder->schema->n_user_fields; i++) column_reset(&builder->columns[i]);
  free(builder->columns);
  free(builder);
}

int64_t bf_batch_builder_n_rows(const bf_batch_builder_t *builder) { return builder->n_rows; }

/* ---- validation (phase 1) ------------------------------------------------------ */

/* The JSON spellings of the floats JSON cannot write (pydantic's inf_nan "strings"). */
static bool special_float(const char *s, double *out) {
  if (strcmp(s, "NaN") == 0) *out = NAN;
  else if (strcmp(s, "Infinity") == 0) *out = INFINITY;
  else if (strcmp(s, "-Infinity") == 0) *out = -INFINITY;
  else return false;
  return true;
}

static int validate_value(const bf_field_t *field, json_t *value, const char *path, bf_error_t *err);

/* A decimal as a JSON string or integer (a JSON float would already be rounded). */
static bool json_decimal(const bf_field_t *field, json_t *value, uint8_t out[16]) {
  char text[32];
  const char *s;
  size_t n;
  if (json_is_string(value)) {
    s = json_string_value(value);
    n = json_string_length(value);
  } else if (json_is_integer(value)) {
    n = (size_t)snprintf(text, sizeof text, "%lld", (long long)json_integer_value(value));
    s = text;
  } else {
    return false;
  }
  return bf__parse_decimal(s, n, field->precision, field->scale, out);
}

/* A duration as an ISO 8601 string or a number of seconds (pydantic's two JSON forms). */
static bool json_duration(json_t *value, int64_t *us) {
  if (json_is_string(value))
    return bf__parse_duration(json_string_value(value), json_string_length(value), us);
  if (json_is_integer(value)) {
    json_int_t secs = json_integer_value(value);
    if (secs > INT64_MAX / 1000000 || secs < INT64_MIN / 1000000) return false;
    *us = (int64_t)secs * 1000000;
    return true;
  }
  if (json_is_real(value)) {
    double d = json_real_value(value) * 1e6;
    if (!(d > -9.2e18 && d < 9.2e18)) return false;
    *us = (int64_t)llround(d);
    return true;
  }
  return false;
}

int bf__rows_type_error(const char *path, const char *expected, bf_error_t *err) {
  return bf_error_set(err, BF_EINVAL, "field '%s': expected %s", path, expected);
}

static int validate_value(const bf_field_t *field, json_t *value, const char *path, bf_error_t *err) {
  if (value == NULL || json_is_null(value)) {
    if (field->nullable) return BF_OK;
    return bf_error_set(err, BF_EINVAL, "field '%s': required value is missing or null", path);
  }
  char child_path[512];
  switch (field->type) {
    case BF_TYPE_UTF8VIEW:
    case BF_TYPE_UTF8:
      return json_is_string(value) ? BF_OK : bf__rows_type_error(path, "a string", err);
    case BF_TYPE_INT64: {
      if (!json_is_integer(value)) return bf__rows_type_error(path, "an integer", err);
      if (field->n_enum_values == 0) return BF_OK;
      char text[32];
      snprintf(text, sizeof text, "%lld", (long long)json_integer_value(value));
      for (size_t i = 0; i < field->n_enum_values; i++)
        if (strcmp(field->enum_values[i], text) == 0) return BF_OK;
      return bf_error_set(err, BF_EINVAL, "field '%s': %s is not one of the enum values", path, text);
    }
    case BF_TYPE_FLOAT64:
      /* JSON has no NaN/inf: they travel as the strings "NaN", "Infinity", "-Infinity". */
      if (json_is_string(value)) {
        double ignored;
        return special_float(json_string_value(value), &ignored)
                   ? BF_OK
                   : bf__rows_type_error(path, "a number (or \"NaN\", \"Infinity\", \"-Infinity\")", err);
      }
      return json_is_number(value) ? BF_OK : bf__rows_type_error(path, "a number", err);
    case BF_TYPE_BOOL:
      return json_is_boolean(value) ? BF_OK : bf__rows_type_error(path, "a boolean", err);
    case BF_TYPE_TIMESTAMP_US: {
      int64_t us;
      if (!json_is_string(value) ||
          !bf__parse_datetime(json_string_value(value), json_string_length(value), &us))
        return bf__rows_type_error(path, "an ISO 8601 datetime", err);
      return BF_OK;
    }
    case BF_TYPE_DATE32: {
      int32_t days;
      if (!json_is_string(value) ||
          !bf__parse_date(json_string_value(value), json_string_length(value), &days))
        return bf__rows_type_error(path, "an ISO 8601 date (YYYY-MM-DD)", err);
      return BF_OK;
    }
    case BF_TYPE_DICTIONARY: {
      if (!json_is_string(value)) return bf__rows_type_error(path, "a string enum value", err);
      for (size_t i = 0; i < field->n_enum_values; i++)
        if (strcmp(field->enum_values[i], json_string_value(value)) == 0) return BF_OK;
      return bf_error_set(err, BF_EINVAL, "field '%s': '%s' is not one of the enum values", path,
                          json_string_value(value));
    }
    case BF_TYPE_BINARY: /* a JSON string's UTF-8 bytes (pydantic's default bytes JSON) */
      return json_is_string(value) ? BF_OK : bf__rows_type_error(path, "a string (bytes)", err);
    case BF_TYPE_DECIMAL128: {
      uint8_t unscaled[16];
      if (!json_decimal(field, value, unscaled))
        return bf_error_set(err, BF_EINVAL,
                            "field '%s': expected a decimal string or integer with at most %d digits, "
                            "%d of them after the point",
                            path, field->precision, field->scale);
      return BF_OK;
    }
    case BF_TYPE_TIME_US: {
      int64_t us;
      if (!json_is_string(value) ||
          !bf__parse_time(json_string_value(value), json_string_length(value), &us))
        return bf__rows_type_error(path, "an ISO 8601 time (HH:MM:SS[.ffffff])", err);
      return BF_OK;
    }
    case BF_TYPE_DURATION_US: {
      int64_t us;
      if (!json_duration(value, &us))
        return bf__rows_type_error(path, "an ISO 8601 duration (P1DT2H3M4.5S) or seconds", err);
      return BF_OK;
    }
    case BF_TYPE_MAP: {
      if (!json_is_object(value)) return bf__rows_type_error(path, "an object (dict)", err);
      snprintf(child_path, sizeof child_path, "%s{}", path);
      const char *key;
      json_t *item;
      json_object_foreach(value, key, item) {
        BF_RETURN_NOT_OK(validate_value(&field->children[0].children[1], item, child_path, err));
      }
      return BF_OK;
    }
    case BF_TYPE_LIST: {
      if (!json_is_array(value)) return bf__rows_type_error(path, "a list", err);
      snprintf(child_path, sizeof child_path, "%s[]", path);
      size_t i;
      json_t *item;
      json_array_foreach(value, i, item) {
        BF_RETURN_NOT_OK(validate_value(&field->children[0], item, child_path, err));
      }
      return BF_OK;
    }
    case BF_TYPE_STRUCT: {
      if (!json_is_object(value)) return bf__rows_type_error(path, "an object", err);
      for (size_t i = 0; i < field->n_children; i++) {
        snprintf(child_path, sizeof child_path, "%s.%s", path, field->children[i].name);
        BF_RETURN_NOT_OK(validate_value(&field->children[i],
                                        json_object_get(value, field->children[i].name),
                                        child_path, err));
      }
      return BF_OK;
    }
  }
  return bf_error_set(err, BF_EINTERNAL, "field '%s': unknown type", path);
}

/* ---- append (phase 2, cannot fail except for out-of-memory) ------------------------ */

int bf__column_push_validity(column_t *col, bool valid) {
  if ((col->length & 7) == 0) BF_RETURN_NOT_OK(bf_buffer_append_zeros(&col->validity, 1));
  if (valid)
    bf_arrow_bit_set(col->validity.data, col->length, true);
  else
    col->null_count++;
  return BF_OK;
}

int bf__column_push_view(column_t *col, const char *s, size_t n) {
  uint8_t view[16] = {0};
  int32_t len = (int32_t)n;
  memcpy(view, &len, 4);
  if (n <= 12) {
    memcpy(view + 4, s, n);
  } else {
    int32_t buffer_index = 0, offset = (int32_t)col->heap.size;
    memcpy(view + 4, s, 4);
    memcpy(view + 8, &buffer_index, 4);
    memcpy(view + 12, &offset, 4);
    BF_RETURN_NOT_OK(bf_buffer_append(&col->heap, s, n));
  }
  return bf_buffer_append(&col->values, view, sizeof view);
}

static int append_value(column_t *col, json_t *value);

int bf__column_append_null(column_t *col) {
  BF_RETURN_NOT_OK(bf__column_push_validity(col, false));
  const bf_field_t *f = col->field;
  int status = BF_OK;
  switch (f->type) {
    case BF_TYPE_UTF8VIEW:
    case BF_TYPE_UTF8:
      status = bf_buffer_append_zeros(&col->values, 16);
      break;
    case BF_TYPE_INT64:
    case BF_TYPE_FLOAT64:
    case BF_TYPE_TIMESTAMP_US:
    case BF_TYPE_TIME_US:
    case BF_TYPE_DURATION_US:
      status = bf_buffer_append_zeros(&col->values, 8);
      break;
    case BF_TYPE_BINARY:
    case BF_TYPE_DECIMAL128:
      status = bf_buffer_append_zeros(&col->values, 16);
      break;
    case BF_TYPE_DATE32:
      status = bf_buffer_append_zeros(&col->values, 4);
      break;
    case BF_TYPE_DICTIONARY:
      status = bf_buffer_append_zeros(&col->values, 2);
      break;
    case BF_TYPE_BOOL:
      if ((col->length & 7) == 0) status = bf_buffer_append_zeros(&col->values, 1);
      break;
    case BF_TYPE_MAP:
    case BF_TYPE_LIST: {
      int32_t last;
      memcpy(&last, col->values.data + col->values.size - 4, 4);
      status = bf_buffer_append(&col->values, &last, 4);
      break;
    }
    case BF_TYPE_STRUCT:
      for (size_t i = 0; i < f->n_children && status == BF_OK; i++)
        status = append_value(&col->children[i], NULL);
      break;
  }
  col->length++;
  return status;
}

static int append_value(column_t *col, json_t *value) {
  if (value == NULL || json_is_null(value)) return bf__column_append_null(col);
  BF_RETURN_NOT_OK(bf__column_push_validity(col, true));
  const bf_field_t *f = col->field;
  int status = BF_OK;
  switch (f->type) {
    case BF_TYPE_UTF8VIEW:
    case BF_TYPE_UTF8:
      status = bf__column_push_view(col, json_string_value(value), json_string_length(value));
      break;
    case BF_TYPE_INT64: {
      int64_t v = (int64_t)json_integer_value(value);
      status = bf_buffer_append(&col->values, &v, 8);
      break;
    }
    case BF_TYPE_FLOAT64: {
      double v = json_number_value(value);
      if (json_is_string(value)) special_float(json_string_value(value), &v);
      status = bf_buffer_append(&col->values, &v, 8);
      break;
    }
    case BF_TYPE_BOOL:
      if ((col->length & 7) == 0) status = bf_buffer_append_zeros(&col->values, 1);
      if (status == BF_OK && json_is_true(value)) bf_arrow_bit_set(col->values.data, col->length, true);
      break;
    case BF_TYPE_TIMESTAMP_US: {
      int64_t us = 0;
      bf__parse_datetime(json_string_value(value), json_string_length(value), &us);
      status = bf_buffer_append(&col->values, &us, 8);
      break;
    }
    case BF_TYPE_DATE32: {
      int32_t days = 0;
      bf__parse_date(json_string_value(value), json_string_length(value), &days);
      status = bf_buffer_append(&col->values, &days, 4);
      break;
    }
    case BF_TYPE_DICTIONARY: {
      int16_t index = 0;
      for (size_t i = 0; i < f->n_enum_values; i++)
        if (strcmp(f->enum_values[i], json_string_value(value)) == 0) index = (int16_t)i;
      status = bf_buffer_append(&col->values, &index, 2);
      break;
    }
    case BF_TYPE_BINARY:
      status = bf__column_push_view(col, json_string_value(value), json_string_length(value));
      break;
    case BF_TYPE_DECIMAL128: {
      uint8_t unscaled[16] = {0};
      json_decimal(f, value, unscaled);
      status = bf_buffer_append(&col->values, unscaled, 16);
      break;
    }
    case BF_TYPE_TIME_US: {
      int64_t us = 0;
      bf__parse_time(json_string_value(value), json_string_length(value), &us);
      status = bf_buffer_append(&col->values, &us, 8);
      break;
    }
    case BF_TYPE_DURATION_US: {
      int64_t us = 0;
      json_duration(value, &us);
      status = bf_buffer_append(&col->values, &us, 8);
      break;
    }
    case BF_TYPE_MAP: {
      /* one entries struct per key: key + value */
      column_t *entries = &col->children[0];
      const char *key;
      json_t *item;
      json_object_foreach(value, key, item) {
        if (status == BF_OK) status = bf__column_push_validity(entries, true);
        if (status == BF_OK) status = bf__column_push_validity(&entries->children[0], true);
        if (status == BF_OK) status = bf__column_push_view(&entries->children[0], key, strlen(key));
        if (status == BF_OK) entries->children[0].length++;
        if (status == BF_OK) status = append_value(&entries->children[1], item);
        if (status == BF_OK) entries->length++;
      }
      int32_t end = (int32_t)entries->length;
      if (status == BF_OK) status = bf_buffer_append(&col->values, &end, 4);
      break;
    }
    case BF_TYPE_LIST: {
      size_t i;
      json_t *item;
      json_array_foreach(value, i, item) {
        if (status == BF_OK) status = append_value(&col->children[0], item);
      }
      int32_t end = (int32_t)col->children[0].length;
      if (status == BF_OK) status = bf_buffer_append(&col->values, &end, 4);
      break;
    }
    case BF_TYPE_STRUCT:
      for (size_t i = 0; i < f->n_children && status == BF_OK; i++)
        status = append_value(&col->children[i], json_object_get(value, f->children[i].name));
      break;
  }
  col->length++;
  return status;
}

int bf_batch_builder_append_json(bf_batch_builder_t *builder, const char *json, size_t len,
                                 bf_error_t *err) {
  json_error_t jerr;
  json_t *record = json_loadb(json, len, JSON_ALLOW_NUL, &jerr);
  if (record == NULL) return bf_error_set(err, BF_EINVAL, "record is not valid JSON: %s", jerr.text);
  int status = BF_OK;
  if (!json_is_object(record)) {
    status = bf_error_set(err, BF_EINVAL, "record must be a JSON object");
    goto done;
  }
  const bf_schema_t *schema = builder->schema;
  for (size_t i = 0; i < schema->n_user_fields && status == BF_OK; i++) {
    const bf_field_t *f = &schema->fields[i];
    status = validate_value(f, json_object_get(record, f->name), f->name, err);
  }
  for (size_t i = 0; i < schema->n_user_fields && status == BF_OK; i++) {
    status = append_value(&builder->columns[i], json_object_get(record, schema->fields[i].name));
    if (status != BF_OK) status = bf_error_set(err, status, "out of memory appending a record");
  }
  if (status == BF_OK) builder->n_rows++;
done:
  json_decref(record);
  return status;
}

/* ---- finish ------------------------------------------------------------------------- */

static void *take(bf_buffer_t *buf) {
  uint8_t *data;
  size_t size;
  bf_buffer_take(buf, &data, &size);
  return data;
}

static int column_finish(column_t *col, struct ArrowArray *out) {
  const bf_field_t *f = col->field;
  int64_t n_buffers =
      f->type == BF_TYPE_UTF8VIEW || f->type == BF_TYPE_UTF8 || f->type == BF_TYPE_BINARY ? 4
      : f->type == BF_TYPE_STRUCT                                                      ? 1
                                                                                       : 2;
  BF_RETURN_NOT_OK(bf_arrow_array_init(out, n_buffers, (int64_t)f->n_children));
  out->length = col->length;
  out->null_count = col->null_count;
  if (col->null_count > 0)
    bf_arrow_array_set_buffer(out, 0, take(&col->validity));
  else
    bf_buffer_reset(&col->validity);
  if (f->type != BF_TYPE_STRUCT) {
    /* Arrow requires a non-NULL values buffer even when empty. */
    if (col->values.data == NULL) BF_RETURN_NOT_OK(bf_buffer_reserve(&col->values, 16));
    bf_arrow_array_set_buffer(out, 1, take(&col->values));
  }
  if (n_buffers == 4) {
    int64_t *sizes = malloc(sizeof *sizes);
    if (sizes == NULL) return BF_ENOMEM;
    sizes[0] = (int64_t)col->heap.size;
    if (col->heap.data == NULL) BF_RETURN_NOT_OK(bf_buffer_reserve(&col->heap, 8));
    bf_arrow_array_set_buffer(out, 2, take(&col->heap));
    bf_arrow_array_set_buffer(out, 3, sizes);
  }
  for (size_t i = 0; i < f->n_children; i++)
    BF_RETURN_NOT_OK(column_finish(&col->children[i], out->children[i]));
  if (f->type == BF_TYPE_DICTIONARY) {
    struct ArrowArray *dict = bf_arrow_array_alloc_dictionary(out);
    if (dict == NULL) return BF_ENOMEM;
    BF_RETURN_NOT_OK(bf_arrow_array_init(dict, 3, 0));
    size_t total = 0;
    for (size_t i = 0; i < f->n_enum_values; i++) total += strlen(f->enum_values[i]);
    int32_t *offsets = malloc((f->n_enum_values + 1) * sizeof *offsets);
    char *data = malloc(total ? total : 1);
    if (offsets == NULL || data == NULL) {
      free(offsets);
      free(data);
      return BF_ENOMEM;
    }
    offsets[0] = 0;
    for (size_t i = 0; i < f->n_enum_values; i++) {
      size_t n = strlen(f->enum_values[i]);
      memcpy(data + offsets[i], f->enum_values[i], n);
      offsets[i + 1] = offsets[i] + (int32_t)n;
    }
    dict->length = (int64_t)f->n_enum_values;
    bf_arrow_array_set_buffer(dict, 1, offsets);
    bf_arrow_array_set_buffer(dict, 2, data);
  }
  /* Leave the column empty and ready for the next batch. */
  col->length = 0;
  col->null_count = 0;
  if (f->type == BF_TYPE_LIST || f->type == BF_TYPE_MAP) {
    int32_t zero = 0;
    BF_RETURN_NOT_OK(bf_buffer_append(&col->values, &zero, 4));
  }
  return BF_OK;
}

static int fill_fixed(struct ArrowArray *out, int64_t n_rows, const void *value, size_t width) {
  BF_RETURN_NOT_OK(bf_arrow_array_init(out, 2, 0));
  uint8_t *data = malloc(n_rows > 0 ? (size_t)n_rows * width : width);
  if (data == NULL) return BF_ENOMEM;
  for (int64_t i = 0; i < n_rows; i++) memcpy(data + (size_t)i * width, value, width);
  out->length = n_rows;
  bf_arrow_array_set_buffer(out, 1, data);
  return BF_OK;
}

static int fill_utf8(struct ArrowArray *out, int64_t n_rows, const char *value) {
  BF_RETURN_NOT_OK(bf_arrow_array_init(out, 3, 0));
  size_t n = strlen(value);
  int32_t *offsets = malloc((size_t)(n_rows + 1) * sizeof *offsets);
  char *data = malloc(n_rows > 0 ? (size_t)n_rows * n : 1);
  if (offsets == NULL || data == NULL) {
    free(offsets);
    free(data);
    return BF_ENOMEM;
  }
  offsets[0] = 0;
  for (int64_t i = 0; i < n_rows; i++) {
    memcpy(data + (size_t)i * n, value, n);
    offsets[i + 1] = (int32_t)((size_t)(i + 1) * n);
  }
  out->length = n_rows;
  bf_arrow_array_set_buffer(out, 1, offsets);
  bf_arrow_array_set_buffer(out, 2, data);
  return BF_OK;
}

/* The batch id is the same on every row of a batch: it goes out dictionary-encoded
 * (one value, int8 indices all 0), a byte a row instead of its 36 characters and
 * an offset: the wire, the WAL and the server's tail carry a third less for a
 * typical flat model. The server reads any string column dictionary-encoded. */
static int fill_batch_id(struct ArrowSchema *schema, struct ArrowArray *out, int64_t n_rows,
                         const char *batch_id) {
  struct ArrowSchema encoded;
  if (bf_arrow_schema_init(&encoded, "c", schema->name, schema->flags, 0) != BF_OK) return BF_ENOMEM;
  if (bf_arrow_schema_set_dictionary(&encoded, "u") != BF_OK) {
    bf_arrow_schema_release(&encoded);
    return BF_ENOMEM;
  }
  bf_arrow_schema_release(schema);
  bf_arrow_schema_move(&encoded, schema);
  BF_RETURN_NOT_OK(bf_arrow_array_init(out, 2, 0));
  uint8_t *indices = calloc(n_rows > 0 ? (size_t)n_rows : 1, 1);
  if (indices == NULL) return BF_ENOMEM;
  out->length = n_rows;
  bf_arrow_array_set_buffer(out, 1, indices);
  struct ArrowArray *dict = bf_arrow_array_alloc_dictionary(out);
  if (dict == NULL) return BF_ENOMEM;
  return fill_utf8(dict, 1, batch_id);
}

int bf_batch_builder_finish(bf_batch_builder_t *builder, int64_t created_at_us,
                            const char *batch_id, struct ArrowSchema *out_schema,
                            struct ArrowArray *out_array, bf_error_t *err) {
  const bf_schema_t *schema = builder->schema;
  struct ArrowSchema arrow_schema;
  BF_RETURN_NOT_OK(bf_schema_to_arrow(schema, &arrow_schema, err));
  struct ArrowArray root;
  if (bf_arrow_array_init(&root, 1, (int64_t)schema->n_fields) != BF_OK) {
    bf_arrow_schema_release(&arrow_schema);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  int64_t n_rows = builder->n_rows;
  root.length = n_rows;
  int status = BF_OK;
  for (size_t i = 0; i < schema->n_user_fields && status == BF_OK; i++)
    status = column_finish(&builder->columns[i], root.children[i]);
  int64_t day_us = 86400LL * 1000000LL;
  int32_t partition_day = (int32_t)(created_at_us >= 0 ? created_at_us / day_us
                                                       : -((-created_at_us + day_us - 1) / day_us));
  for (size_t i = schema->n_user_fields; i < schema->n_fields && status == BF_OK; i++) {
    const char *name = schema->fields[i].name;
    struct ArrowArray *child = root.children[i];
    if (strcmp(name, BF_SYSCOL_CREATED_AT) == 0)
      status = fill_fixed(child, n_rows, &created_at_us, 8);
    else if (strcmp(name, BF_SYSCOL_PARTITION_DATE) == 0)
      status = fill_fixed(child, n_rows, &partition_day, 4);
    else
      status = fill_batch_id(arrow_schema.children[i], child, n_rows, batch_id);
  }
  builder->n_rows = 0;
  if (status != BF_OK) {
    bf_arrow_array_release(&root);
    bf_arrow_schema_release(&arrow_schema);
    return bf_error_set(err, status, "out of memory building a batch");
  }
  bf_arrow_schema_move(&arrow_schema, out_schema);
  bf_arrow_array_move(&root, out_array);
  return BF_OK;
}

int bf_rows_attach_system_columns(const bf_schema_t *schema, struct ArrowArray *user,
                                  int64_t created_at_us, const char *batch_id,
                                  struct ArrowSchema *out_schema, struct ArrowArray *out_array,
                                  bf_error_t *err) {
  if (user->n_children != (int64_t)schema->n_user_fields)
    return bf_error_set(err, BF_EINVAL, "batch has %lld columns, the table has %zu",
                        (long long)user->n_children, schema->n_user_fields);
  if (user->offset != 0)
    return bf_error_set(err, BF_EINVAL, "batch with a non-zero offset (slice it into a copy)");
  struct ArrowSchema arrow_schema;
  BF_RETURN_NOT_OK(bf_schema_to_arrow(schema, &arrow_schema, err));
  struct ArrowArray root;
  if (bf_arrow_array_init(&root, 1, (int64_t)schema->n_fields) != BF_OK) {
    bf_arrow_schema_release(&arrow_schema);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  int64_t n_rows = user->length;
  root.length = n_rows;
  if (user->null_count != 0 && user->buffers[0] != NULL) {
    bf_arrow_array_release(&root);
    bf_arrow_schema_release(&arrow_schema);
    return bf_error_set(err, BF_EINVAL, "batch has null rows (a null struct row)");
  }
  /* Move the user columns (the Arrow C data interface allows moving children out
   * of a parent, whose release then skips them). */
  for (size_t i = 0; i < schema->n_user_fields; i++) {
    *root.children[i] = *user->children[i];
    user->children[i]->release = NULL;
  }
  bf_arrow_array_release(user);
  int64_t day_us = 86400LL * 1000000LL;
  int32_t partition_day = (int32_t)(created_at_us >= 0 ? created_at_us / day_us
                                                       : -((-created_at_us + day_us - 1) / day_us));
  int status = BF_OK;
  for (size_t i = schema->n_user_fields; i < schema->n_fields && status == BF_OK; i++) {
    const char *name = schema->fields[i].name;
    struct ArrowArray *child = root.children[i];
    if (strcmp(name, BF_SYSCOL_CREATED_AT) == 0)
      status = fill_fixed(child, n_rows, &created_at_us, 8);
    else if (strcmp(name, BF_SYSCOL_PARTITION_DATE) == 0)
      status = fill_fixed(child, n_rows, &partition_day, 4);
    else
      status = fill_batch_id(arrow_schema.children[i], child, n_rows, batch_id);
  }
  if (status != BF_OK) {
    bf_arrow_array_release(&root);
    bf_arrow_schema_release(&arrow_schema);
    return bf_error_set(err, status, "out of memory building a batch");
  }
  bf_arrow_schema_move(&arrow_schema, out_schema);
  bf_arrow_array_move(&root, out_array);
  return BF_OK;
}
