/* bf_schema_t -> Delta schemaString (the JSON struct type of PROTOCOL.md). Enums are
 * stored as strings; Utf8View and Utf8 are both `string`. A field below a nullable
 * struct or list is declared nullable: when the parent is null the Parquet file holds
 * nulls for its children too, and readers (delta-rs) refuse nulls in a field the
 * schema calls non-nullable. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "bifrost/delta.h"

static json_t *delta_type(const bf_field_t *field, bool under_nullable);

static json_t *delta_field(const bf_field_t *field, bool under_nullable) {
  bool nullable = field->nullable || under_nullable;
  json_t *type = delta_type(field, nullable);
  if (type == NULL) return NULL;
  return json_pack("{s:s, s:o, s:b, s:{}}", "name", field->name, "type", type, "nullable", nullable,
                   "metadata");
}

static json_t *delta_struct(const bf_field_t *fields, size_t n, bool under_nullable) {
  json_t *list = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *f = delta_field(&fields[i], under_nullable);
    if (f == NULL) {
      json_decref(list);
      return NULL;
    }
    json_array_append_new(list, f);
  }
  return json_pack("{s:s, s:o}", "type", "struct", "fields", list);
}

static json_t *delta_type(const bf_field_t *field, bool under_nullable) {
  switch (field->type) {
    case BF_TYPE_UTF8VIEW:
    case BF_TYPE_UTF8:
    case BF_TYPE_DICTIONARY:
      return json_string("string");
    case BF_TYPE_INT64:
    case BF_TYPE_TIME_US:     /* Delta has no time type: microseconds since midnight */
    case BF_TYPE_DURATION_US: /* nor a duration type: microseconds */
      return json_string("long");
    case BF_TYPE_BINARY:
      return json_string("binary");
    case BF_TYPE_DECIMAL128: {
      char text[32];
      snprintf(text, sizeof text, "decimal(%d,%d)", field->precision, field->scale);
      return json_string(text);
    }
    case BF_TYPE_MAP: {
      const bf_field_t *value = &field->children[0].children[1];
      bool contains_null = value->nullable || under_nullable;
      json_t *value_type = delta_type(value, contains_null);
      if (value_type == NULL) return NULL;
      return json_pack("{s:s, s:s, s:o, s:b}", "type", "map", "keyType", "string", "valueType",
                       value_type, "valueContainsNull", contains_null);
    }
    case BF_TYPE_FLOAT64:
      return json_string("double");
    case BF_TYPE_BOOL:
      return json_string("boolean");
    case BF_TYPE_TIMESTAMP_US:
      return json_string("timestamp");
    case BF_TYPE_DATE32:
      return json_string("date");
    case BF_TYPE_LIST: {
      bool contains_null = field->children[0].nullable || under_nullable;
      json_t *element = delta_type(&field->children[0], contains_null);
      if (element == NULL) return NULL;
      return json_pack("{s:s, s:o, s:b}", "type", "array", "elementType", element, "containsNull",
                       contains_null);
    }
    case BF_TYPE_STRUCT:
      return delta_struct(field->children, field->n_children, under_nullable);
  }
  return NULL;
}

int bf_delta_schema_string(const bf_schema_t *schema, char **out, bf_error_t *err) {
  json_t *root = delta_struct(schema->fields, schema->n_fields, false);
  if (root == NULL) return bf_error_set(err, BF_ENOMEM, "cannot build the Delta schema");
  *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(root);
  return *out ? BF_OK : bf_error_set(err, BF_ENOMEM, "out of memory");
}
