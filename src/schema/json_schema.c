/* Pydantic v2 JSON Schema -> bf_schema_t. Walks "properties" (resolving "$ref" into
 * "$defs"), maps each field per the type table in README.md ("Field types") and
 * appends the three system columns. Every rejection names the field path, so users
 * see which part of their model to fix. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/schema.h"

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *copy = malloc(n);
  if (copy) memcpy(copy, s, n);
  return copy;
}

static void field_reset(bf_field_t *field) {
  free(field->name);
  for (size_t i = 0; i < field->n_children; i++) field_reset(&field->children[i]);
  free(field->children);
  for (size_t i = 0; i < field->n_enum_values; i++) free(field->enum_values[i]);
  free(field->enum_values);
  memset(field, 0, sizeof *field);
}

void bf_schema_reset(bf_schema_t *schema) {
  for (size_t i = 0; i < schema->n_fields; i++) field_reset(&schema->fields[i]);
  free(schema->fields);
  memset(schema, 0, sizeof *schema);
}

static int field_copy(const bf_field_t *src, bf_field_t *dst) {
  memset(dst, 0, sizeof *dst);
  dst->type = src->type;
  dst->nullable = src->nullable;
  dst->precision = src->precision;
  dst->scale = src->scale;
  if ((dst->name = xstrdup(src->name)) == NULL) goto fail;
  if (src->n_children) {
    dst->children = calloc(src->n_children, sizeof *dst->children);
    if (dst->children == NULL) goto fail;
    for (size_t i = 0; i < src->n_children; i++) {
      dst->n_children = i + 1;
      if (field_copy(&src->children[i], &dst->children[i]) != BF_OK) goto fail;
    }
  }
  if (src->n_enum_values) {
    dst->enum_values = calloc(src->n_enum_values, sizeof *dst->enum_values);
    if (dst->enum_values == NULL) goto fail;
    for (size_t i = 0; i < src->n_enum_values; i++) {
      dst->n_enum_values = i + 1;
      if ((dst->enum_values[i] = xstrdup(src->enum_values[i])) == NULL) goto fail;
    }
  }
  return BF_OK;
fail:
  field_reset(dst);
  return BF_ENOMEM;
}

int bf_schema_copy(const bf_schema_t *src, bf_schema_t *out, bf_error_t *err) {
  bf_schema_t copy = {0};
  copy.fields = calloc(src->n_fields ? src->n_fields : 1, sizeof *copy.fields);
  if (copy.fields == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  for (size_t i = 0; i < src->n_fields; i++) {
    copy.n_fields = i + 1;
    if (field_copy(&src->fields[i], &copy.fields[i]) != BF_OK) {
      bf_schema_reset(&copy);
      return bf_error_set(err, BF_ENOMEM, "out of memory");
    }
  }
  copy.n_user_fields = src->n_user_fields;
  *out = copy;
  return BF_OK;
}

int bf_schema_find(const bf_schema_t *schema, const char *name) {
  for (size_t i = 0; i < schema->n_fields; i++)
    if (strcmp(schema->fields[i].name, name) == 0) return (int)i;
  return -1;
}

bool bf_field_is_partitionable(const bf_field_t *field) {
  switch (field->type) {
    case BF_TYPE_UTF8VIEW:
    case BF_TYPE_UTF8:
    case BF_TYPE_INT64:
    case BF_TYPE_BOOL:
    case BF_TYPE_DATE32:
    case BF_TYPE_DICTIONARY:
      return true;
    default:
      return false;
  }
}

/* ---- conversion --------------------------------------------------------- */

typedef struct parse_ctx {
  json_t *defs; /* borrowed "$defs" object or NULL */
  bf_error_t *err;
} parse_ctx_t;

static int convert_type(parse_ctx_t *ctx, json_t *node, const char *path, int depth,
                        bf_field_t *out);

static bool is_null_variant(json_t *node) {
  json_t *type = json_object_get(node, "type");
  if (json_is_string(type) && strcmp(json_string_value(type), "null") == 0) return true;
  json_t *c = json_object_get(node, "const");
  if (c && json_is_null(c)) return true;
  json_t *e = json_object_get(node, "enum");
  if (json_is_array(e) && json_array_size(e) == 1 && json_is_null(json_array_get(e, 0)))
    return true;
  return false;
}

static json_t *resolve_ref(parse_ctx_t *ctx, json_t *node, const char *path, const char **ref_name) {
  json_t *ref = json_object_get(node, "$ref");
  if (!json_is_string(ref)) return node;
  const char *target = json_string_value(ref);
  const char *prefix = "#/$defs/";
  if (strncmp(target, prefix, strlen(prefix)) != 0 || ctx->defs == NULL) {
    bf_error_set(ctx->err, BF_EINVAL, "field '%s': unsupported $ref '%s'", path, target);
    return NULL;
  }
  json_t *resolved = json_object_get(ctx->defs, target + strlen(prefix));
  if (resolved == NULL) {
    bf_error_set(ctx->err, BF_EINVAL, "field '%s': $ref '%s' not found in $defs", path, target);
    return NULL;
  }
  if (ref_name) *ref_name = target + strlen(prefix);
  return resolved;
}

static int convert_enum(parse_ctx_t *ctx, json_t *values, const char *path, bf_field_t *out) {
  size_t n = json_array_size(values);
  if (n == 0)
    return bf_error_set(ctx->err, BF_EINVAL, "field '%s': enum without values", path);
  out->enum_values = calloc(n, sizeof *out->enum_values);
  if (out->enum_values == NULL) return bf_error_set(ctx->err, BF_ENOMEM, "out of memory");
  /* IntEnum / Literal[1, 2]: an integer column whose values are checked on insert
   * (kept as decimal text; not part of the fingerprint, like a str enum's). */
  size_t n_int = 0;
  for (size_t i = 0; i < n; i++) n_int += json_is_integer(json_array_get(values, i)) ? 1 : 0;
  if (n_int == n) {
    for (size_t i = 0; i < n; i++) {
      char text[32];
      snprintf(text, sizeof text, "%lld", (long long)json_integer_value(json_array_get(values, i)));
      if ((out->enum_values[i] = xstrdup(text)) == NULL)
        return bf_error_set(ctx->err, BF_ENOMEM, "out of memory");
      out->n_enum_values = i + 1;
    }
    out->type = BF_TYPE_INT64;
    return BF_OK;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_array_get(values, i);
    if (!json_is_string(v))
      return bf_error_set(ctx->err, BF_EINVAL,
                          "field '%s': only enums and literals whose values are all str or all int "
                          "are supported",
                          path);
    if (strlen(json_string_value(v)) != json_string_length(v))
      return bf_error_set(ctx->err, BF_EINVAL, "field '%s': an enum value contains a NUL character",
                          path);
    if ((out->enum_values[i] = xstrdup(json_string_value(v))) == NULL)
      return bf_error_set(ctx->err, BF_ENOMEM, "out of memory");
    out->n_enum_values = i + 1;
  }
  out->type = BF_TYPE_DICTIONARY;
  return BF_OK;
}

static bool has_type(json_t *node, const char *type) {
  json_t *t = json_object_get(node, "type");
  return json_is_string(t) && strcmp(json_string_value(t), type) == 0;
}

/* True for the anyOf of one number and one string schema: how pydantic describes a
 * decimal.Decimal (it accepts both spellings). */
static bool is_decimal_union(json_t *any_of) {
  json_t *number = NULL, *string = NULL;
  size_t i;
  json_t *variant;
  json_array_foreach(any_of, i, variant) {
    if (is_null_variant(variant)) continue;
    if (has_type(variant, "number") && number == NULL)
      number = variant;
    else if (has_type(variant, "string") && string == NULL && !json_object_get(variant, "format"))
      string = variant;
    else
      return false;
  }
  return number != NULL && string != NULL;
}

/* A Decimal whose JSON schema carries "max_digits" and "decimal_places" (bifrost's
 * schema generator adds them; pydantic's own leaves them out) -> Decimal128(p, s). */
static int convert_decimal(parse_ctx_t *ctx, json_t *node, const char *path, bf_field_t *out) {
  json_t *digits = json_object_get(node, "max_digits");
  json_t *places = json_object_get(node, "decimal_places");
  if (digits == NULL || places == NULL)
    return bf_error_set(
        ctx->err, BF_EINVAL,
        "field '%s': a number-or-string union is how pydantic describes decimal.Decimal; an "
        "unconstrained Decimal has no fixed precision, so give it both max_digits and "
        "decimal_places (Field(max_digits=18, decimal_places=6) or condecimal(max_digits=18, "
        "decimal_places=6); at most %d digits) to store it as decimal(p, s) (and register the "
        "model through TableConfig, whose schema carries them); other unions of several non-null "
        "types are not supported",
        path, BF_DECIMAL_MAX_PRECISION);
  if (!json_is_integer(digits) || !json_is_integer(places))
    return bf_error_set(ctx->err, BF_EINVAL,
                        "field '%s': max_digits and decimal_places must be integers", path);
  json_int_t p = json_integer_value(digits), s = json_integer_value(places);
  if (p < 1 || p > BF_DECIMAL_MAX_PRECISION)
    return bf_error_set(ctx->err, BF_EINVAL,
                        "field '%s': max_digits=%lld is outside 1..%d (Decimal128, Delta and DuckDB "
                        "hold at most %d digits)",
                        path, (long long)p, BF_DECIMAL_MAX_PRECISION, BF_DECIMAL_MAX_PRECISION);
  if (s < 0 || s > p)
    return bf_error_set(ctx->err, BF_EINVAL,
                        "field '%s': decimal_places=%lld must be between 0 and max_digits=%lld", path,
                        (long long)s, (long long)p);
  out->type = BF_TYPE_DECIMAL128;
  out->precision = (int)p;
  out->scale = (int)s;
  return BF_OK;
}

/* Dict[K, T]: an object schema without properties whose additionalProperties is
 * the value schema -> Map(Utf8View, T). */
static int convert_map(parse_ctx_t *ctx, json_t *node, const char *path, int depth, bf_field_t *out) {
  json_t *value = json_object_get(node, "additionalProperties");
  /* Keys are stored as text whatever "propertyNames" says (int, enum and UUID keys
   * are written as JSON writes them; the model validates them back on read). */
  if (!json_is_object(value) || json_object_size(value) == 0)
    return bf_error_set(ctx->err, BF_EINVAL,
                        "field '%s': free-form dicts are not supported; give the values a type "
                        "(Dict[str, T])",
                        path);
  out->type = BF_TYPE_MAP;
  out->children = calloc(1, sizeof *out->children);
  if (out->children == NULL) return bf_error_set(ctx->err, BF_ENOMEM, "out of memory");
  out->n_children = 1;
  bf_field_t *entries = &out->children[0];
  if ((entries->name = xstrdup("entries")) == NULL)
    return bf_error_set(ctx->err, BF_ENOMEM, "out of memory");
  entries->type = BF_TYPE_STRUCT;
  entries->children = calloc(2, sizeof *entries->children);
  if (entries->children == NULL) return bf_error_set(ctx->err, BF_ENOMEM, "out of memory");
  entries->n_children = 2;
  if ((entries->children[0].name = xstrdup("key")) == NULL ||
      (entries->children[1].name = xstrdup("value")) == NULL)
    return bf_error_set(ctx->err, BF_ENOMEM, "out of memory");
  entries->children[0].type = BF_TYPE_UTF8VIEW;
  char value_path[1024];
  snprintf(value_path, sizeof value_path, "%s{}", path);
  return convert_type(ctx, value, value_path, depth + 1, &entries->children[1]);
}

static int convert_object(parse_ctx_t *ctx, json_t *node, const char *path, int depth,
                          bf_field_t *out);

static int convert_type(parse_ctx_t *ctx, json_t *node, const char *path, int depth,
                        bf_field_t *out) {
  if (depth > BF_SCHEMA_MAX_DEPTH)
    return bf_error_set(ctx->err, BF_EINVAL, "field '%s': nesting deeper than %d levels", path,
                        BF_SCHEMA_MAX_DEPTH);
  if (!json_is_object(node))
    return bf_error_set(ctx->err, BF_EINVAL, "field '%s': schema is not an object", path);
  node = resolve_ref(ctx, node, path, NULL);
  if (node == NULL) return ctx->err ? ctx->err->status : BF_EINVAL;

  json_t *any_of = json_object_get(node, "anyOf");
  if (any_of == NULL) any_of = json_object_get(node, "oneOf");
  if (json_is_array(any_of)) {
    json_t *non_null = NULL;
    size_t n_non_null = 0, n_null = 0;
    size_t i;
    json_t *variant;
    json_array_foreach(any_of, i, variant) {
      if (is_null_variant(variant)) {
        n_null++;
      } else {
        non_null = variant;
        n_non_null++;
      }
    }
    if (n_non_null == 2 && is_decimal_union(any_of)) {
      BF_RETURN_NOT_OK(convert_decimal(ctx, node, path, out));
      if (n_null) out->nullable = true;
      return BF_OK;
    }
    if (n_non_null != 1)
      return bf_error_set(ctx->err, BF_EINVAL,
                          "field '%s': unions of several non-null types are not supported", path);
    BF_RETURN_NOT_OK(convert_type(ctx, non_null, path, depth, out));
    if (n_null) out->nullable = true;
    return BF_OK;
  }
  if (json_object_get(node, "allOf")) {
    json_t *all_of = json_object_get(node, "allOf");
    if (json_is_array(all_of) && json_array_size(all_of) == 1)
      return convert_type(ctx, json_array_get(all_of, 0), path, depth, out);
    return bf_error_set(ctx->err, BF_EINVAL, "field '%s': allOf is not supported", path);
  }

  json_t *enum_values = json_object_get(node, "enum");
  if (json_is_array(enum_values)) return convert_enum(ctx, enum_values, path, out);
  json_t *const_value = json_object_get(node, "const");
  if (const_value && (json_is_string(const_value) || json_is_integer(const_value))) {
    json_t *one = json_array();
    json_array_append(one, const_value);
    int status = convert_enum(ctx, one, path, out);
    json_decref(one);
    return status;
  }

  json_t *type = json_object_get(node, "type");
  if (json_is_array(type))
    return bf_error_set(ctx->err, BF_EINVAL,
                        "field '%s': unions of several types are not supported", path);
  if (!json_is_string(type))
    return bf_error_set(ctx->err, BF_EINVAL, "field '%s': schema without a type (Any is not supported)",
                        path);
  const char *t = json_string_value(type);
  json_t *format = json_object_get(node, "format");
  if (format != NULL && !json_is_string(format))
    return bf_error_set(ctx->err, BF_EINVAL, "field '%s': \"format\" is not a string", path);
  if (strcmp(t, "string") == 0) {
    if (format == NULL) {
      out->type = BF_TYPE_UTF8VIEW;
    } else if (strcmp(json_string_value(format), "date-time") == 0) {
      out->type = BF_TYPE_TIMESTAMP_US;
    } else if (strcmp(json_string_value(format), "date") == 0) {
      out->type = BF_TYPE_DATE32;
    } else if (strcmp(json_string_value(format), "uuid") == 0) {
      out->type = BF_TYPE_UTF8VIEW; /* canonical text: every Delta reader understands it */
    } else if (strcmp(json_string_value(format), "binary") == 0) {
      out->type = BF_TYPE_BINARY;
    } else if (strcmp(json_string_value(format), "time") == 0) {
      out->type = BF_TYPE_TIME_US;
    } else if (strcmp(json_string_value(format), "duration") == 0) {
      out->type = BF_TYPE_DURATION_US;
    } else {
      return bf_error_set(ctx->err, BF_EINVAL, "field '%s': unsupported string format '%s'", path,
                          json_string_value(format));
    }
    return BF_OK;
  }
  if (strcmp(t, "integer") == 0) {
    out->type = BF_TYPE_INT64;
    return BF_OK;
  }
  if (strcmp(t, "number") == 0) {
    if (json_object_get(node, "max_digits") || json_object_get(node, "decimal_places"))
      return convert_decimal(ctx, node, path, out);
    out->type = BF_TYPE_FLOAT64;
    return BF_OK;
  }
  if (strcmp(t, "boolean") == 0) {
    out->type = BF_TYPE_BOOL;
    return BF_OK;
  }
  if (strcmp(t, "array") == 0) {
    if (json_object_get(node, "prefixItems"))
      return bf_error_set(ctx->err, BF_EINVAL, "field '%s': tuples are not supported", path);
    json_t *items = json_object_get(node, "items");
    if (!json_is_object(items))
      return bf_error_set(ctx->err, BF_EINVAL, "field '%s': list without an item type", path);
    out->type = BF_TYPE_LIST;
    out->children = calloc(1, sizeof *out->children);
    if (out->children == NULL) return bf_error_set(ctx->err, BF_ENOMEM, "out of memory");
    out->n_children = 1;
    if ((out->children[0].name = xstrdup("item")) == NULL)
      return bf_error_set(ctx->err, BF_ENOMEM, "out of memory");
    char item_path[1024];
    snprintf(item_path, sizeof item_path, "%s[]", path);
    return convert_type(ctx, items, item_path, depth + 1, &out->children[0]);
  }
  if (strcmp(t, "object") == 0) return convert_object(ctx, node, path, depth, out);
  if (strcmp(t, "null") == 0)
    return bf_error_set(ctx->err, BF_EINVAL, "field '%s': a field that is always null is not supported",
                        path);
  return bf_error_set(ctx->err, BF_EINVAL, "field '%s': unsupported type '%s'", path, t);
}

static bool is_system_column(const char *name) {
  return strcmp(name, BF_SYSCOL_CREATED_AT) == 0 || strcmp(name, BF_SYSCOL_PARTITION_DATE) == 0 ||
         strcmp(name, BF_SYSCOL_BATCH_ID) == 0;
}

/* Fills out->children from an object schema's properties. */
static int convert_properties(parse_ctx_t *ctx, json_t *node, const char *path, int depth,
                              bf_field_t **out_fields, size_t *out_n, size_t extra) {
  json_t *props = json_object_get(node, "properties");
  if (!json_is_object(props) || json_object_size(props) == 0)
    return bf_error_set(ctx->err, BF_EINVAL,
                        "field '%s': free-form dicts / objects without fields are not supported",
                        path[0] ? path : "<model>");
  json_t *required = json_object_get(node, "required");
  size_t n = json_object_size(props);
  bf_field_t *fields = calloc(n + extra, sizeof *fields);
  if (fields == NULL) return bf_error_set(ctx->err, BF_ENOMEM, "out of memory");
  *out_fields = fields;
  *out_n = 0;
  const char *key;
  json_t *value;
  json_object_foreach(props, key, value) {
    if (key[0] == '\0')
      return bf_error_set(ctx->err, BF_EINVAL,
                          "%s%s has a field with an empty name; every field needs a name",
                          path[0] ? "field " : "the model", path);
    if (strlen(key) > 255)
      return bf_error_set(ctx->err, BF_EINVAL, "field '%.40s...' has a name longer than 255 bytes",
                          key);
    bf_field_t *f = &fields[(*out_n)++];
    if ((f->name = xstrdup(key)) == NULL) return bf_error_set(ctx->err, BF_ENOMEM, "out of memory");
    char child_path[1024];
    if (path[0])
      snprintf(child_path, sizeof child_path, "%s.%s", path, key);
    else
      snprintf(child_path, sizeof child_path, "%s", key);
    BF_RETURN_NOT_OK(convert_type(ctx, value, child_path, depth + 1, f));
    bool is_required = false;
    size_t i;
    json_t *r;
    json_array_foreach(required, i, r) {
      if (json_is_string(r) && strcmp(json_string_value(r), key) == 0) is_required = true;
    }
    if (!is_required) f->nullable = true;
  }
  return BF_OK;
}

static int convert_object(parse_ctx_t *ctx, json_t *node, const char *path, int depth,
                          bf_field_t *out) {
  if (json_object_get(node, "additionalProperties") && !json_object_get(node, "properties"))
    return convert_map(ctx, node, path, depth, out);
  out->type = BF_TYPE_STRUCT;
  return convert_properties(ctx, node, path, depth, &out->children, &out->n_children, 0);
}

static int append_system(bf_field_t *f, const char *name, bf_type_id_t type) {
  if ((f->name = xstrdup(name)) == NULL) return BF_ENOMEM;
  f->type = type;
  f->nullable = false;
  return BF_OK;
}

int bf_schema_from_json_schema(const char *json, size_t len, bf_schema_t *out, bf_error_t *err) {
  json_error_t jerr;
  /* NUL escapes may appear in defaults and examples (a bytes default b"\x00"). */
  json_t *root = json_loadb(json, len, JSON_ALLOW_NUL, &jerr);
  if (root == NULL)
    return bf_error_set(err, BF_EINVAL, "JSON schema is not valid JSON: %s (line %d)", jerr.text,
                        jerr.line);
  bf_schema_t schema = {0};
  parse_ctx_t ctx = {json_object_get(root, "$defs"), err};
  int status;
  if (!json_is_object(root)) {
    status = bf_error_set(err, BF_EINVAL, "JSON schema must be an object");
    goto fail;
  }
  status = convert_properties(&ctx, root, "", 0, &schema.fields, &schema.n_fields, 3);
  if (status != BF_OK) goto fail;
  for (size_t i = 0; i < schema.n_fields; i++) {
    if (is_system_column(schema.fields[i].name)) {
      status = bf_error_set(err, BF_EINVAL,
                            "field '%s': the name is reserved for a system column; rename the field",
                            schema.fields[i].name);
      goto fail;
    }
  }
  schema.n_user_fields = schema.n_fields;
  if (append_system(&schema.fields[schema.n_fields++], BF_SYSCOL_CREATED_AT, BF_TYPE_TIMESTAMP_US) ||
      append_system(&schema.fields[schema.n_fields++], BF_SYSCOL_PARTITION_DATE, BF_TYPE_DATE32) ||
      append_system(&schema.fields[schema.n_fields++], BF_SYSCOL_BATCH_ID, BF_TYPE_UTF8)) {
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
    goto fail;
  }
  json_decref(root);
  *out = schema;
  return BF_OK;
fail:
  /* fields allocated with room for the system columns; reset frees what was set */
  if (schema.fields) {
    size_t n = schema.n_fields;
    for (size_t i = 0; i < n; i++) field_reset(&schema.fields[i]);
    free(schema.fields);
  }
  json_decref(root);
  return status;
}
