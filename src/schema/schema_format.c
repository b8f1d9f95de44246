/* Renderings of a bf_schema_t: the parse_schema type strings, the parse_schema JSON
 * document, the documented fingerprint (SHA-256 over sorted `name:TYPE:nullable`
 * entries) and the Arrow C Data Interface schema. */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/schema.h"
#include "bifrost/util.h"

static int append_str(bf_buffer_t *buf, const char *s) { return bf_buffer_append(buf, s, strlen(s)); }

static int type_string(const bf_field_t *field, bf_buffer_t *buf) {
  switch (field->type) {
    case BF_TYPE_UTF8VIEW:
      return append_str(buf, "Utf8View");
    case BF_TYPE_UTF8:
      return append_str(buf, "Utf8");
    case BF_TYPE_INT64:
      return append_str(buf, "Int64");
    case BF_TYPE_FLOAT64:
      return append_str(buf, "Float64");
    case BF_TYPE_BOOL:
      return append_str(buf, "Boolean");
    case BF_TYPE_TIMESTAMP_US:
      return append_str(buf, "Timestamp(Microsecond, Some(\"UTC\"))");
    case BF_TYPE_DATE32:
      return append_str(buf, "Date32");
    case BF_TYPE_DICTIONARY:
      return append_str(buf, "Dictionary(Int16, Utf8)");
    case BF_TYPE_BINARY:
      return append_str(buf, "BinaryView");
    case BF_TYPE_DECIMAL128: {
      char text[48];
      snprintf(text, sizeof text, "Decimal128(%d, %d)", field->precision, field->scale);
      return append_str(buf, text);
    }
    /* Logical types; the column itself is Int64 microseconds (arrow_format). */
    case BF_TYPE_TIME_US:
      return append_str(buf, "Time64(Microsecond)");
    case BF_TYPE_DURATION_US:
      return append_str(buf, "Duration(Microsecond)");
    case BF_TYPE_MAP: {
      const bf_field_t *entries = &field->children[0];
      BF_RETURN_NOT_OK(append_str(buf, "Map("));
      BF_RETURN_NOT_OK(type_string(&entries->children[0], buf));
      BF_RETURN_NOT_OK(append_str(buf, ", "));
      BF_RETURN_NOT_OK(type_string(&entries->children[1], buf));
      return append_str(buf, ")");
    }
    case BF_TYPE_LIST:
      BF_RETURN_NOT_OK(append_str(buf, "List("));
      BF_RETURN_NOT_OK(type_string(&field->children[0], buf));
      return append_str(buf, ")");
    case BF_TYPE_STRUCT:
      BF_RETURN_NOT_OK(append_str(buf, "Struct("));
      for (size_t i = 0; i < field->n_children; i++) {
        if (i) BF_RETURN_NOT_OK(append_str(buf, ", "));
        BF_RETURN_NOT_OK(append_str(buf, field->children[i].name));
        BF_RETURN_NOT_OK(append_str(buf, ": "));
        BF_RETURN_NOT_OK(type_string(&field->children[i], buf));
      }
      return append_str(buf, ")");
  }
  return BF_EINTERNAL;
}

static int finish_string(bf_buffer_t *buf, int status, char **out, bf_error_t *err) {
  if (status == BF_OK) status = bf_buffer_append(buf, "", 1);
  if (status != BF_OK) {
    bf_buffer_reset(buf);
    return bf_error_set(err, status, "out of memory");
  }
  size_t size;
  bf_buffer_take(buf, (uint8_t **)out, &size);
  return BF_OK;
}

int bf_field_type_string(const bf_field_t *field, char **out, bf_error_t *err) {
  bf_buffer_t buf;
  bf_buffer_init(&buf);
  return finish_string(&buf, type_string(field, &buf), out, err);
}

int bf_schema_parse_json(const bf_schema_t *schema, char **out, bf_error_t *err) {
  json_t *root = json_object();
  int status = BF_OK;
  for (size_t i = 0; i < schema->n_fields && status == BF_OK; i++) {
    char *type = NULL;
    status = bf_field_type_string(&schema->fields[i], &type, err);
    if (status != BF_OK) break;
    json_t *entry = json_pack("{s:s, s:b}", "arrow_type", type, "nullable",
                              schema->fields[i].nullable);
    free(type);
    if (entry == NULL || json_object_set_new(root, schema->fields[i].name, entry) != 0)
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  if (status == BF_OK) {
    char *text = json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT);
    if (text == NULL) {
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
    } else {
      *out = text; /* jansson allocates with malloc by default */
    }
  }
  json_decref(root);
  return status;
}

/* ---- fingerprint ---------------------------------------------------------- */

static int fingerprint_entry(const bf_field_t *field, bf_buffer_t *buf);

static int cmp_field_ptr(const void *a, const void *b) {
  const bf_field_t *fa = *(const bf_field_t *const *)a;
  const bf_field_t *fb = *(const bf_field_t *const *)b;
  return strcmp(fa->name, fb->name);
}

/* Entries of fields sorted by name, joined by sep. */
static int fingerprint_entries(const bf_field_t *fields, size_t n, const char *sep, bf_buffer_t *buf) {
  const bf_field_t **sorted = malloc((n ? n : 1) * sizeof *sorted);
  if (sorted == NULL) return BF_ENOMEM;
  for (size_t i = 0; i < n; i++) sorted[i] = &fields[i];
  qsort(sorted, n, sizeof *sorted, cmp_field_ptr);
  int status = BF_OK;
  for (size_t i = 0; i < n && status == BF_OK; i++) {
    if (i) status = append_str(buf, sep);
    if (status == BF_OK) status = fingerprint_entry(sorted[i], buf);
  }
  free(sorted);
  return status;
}

static int fingerprint_type(const bf_field_t *field, bf_buffer_t *buf) {
  if (field->type == BF_TYPE_MAP) { /* Map(entries:Struct(key:...,value:...):false) */
    BF_RETURN_NOT_OK(append_str(buf, "Map("));
    BF_RETURN_NOT_OK(fingerprint_entry(&field->children[0], buf));
    return append_str(buf, ")");
  }
  if (field->type == BF_TYPE_LIST) {
    BF_RETURN_NOT_OK(append_str(buf, "List("));
    BF_RETURN_NOT_OK(fingerprint_entry(&field->children[0], buf));
    return append_str(buf, ")");
  }
  if (field->type == BF_TYPE_STRUCT) {
    BF_RETURN_NOT_OK(append_str(buf, "Struct("));
    BF_RETURN_NOT_OK(fingerprint_entries(field->children, field->n_children, ",", buf));
    return append_str(buf, ")");
  }
  return type_string(field, buf);
}

static int fingerprint_entry(const bf_field_t *field, bf_buffer_t *buf) {
  BF_RETURN_NOT_OK(append_str(buf, field->name));
  BF_RETURN_NOT_OK(append_str(buf, ":"));
  BF_RETURN_NOT_OK(fingerprint_type(field, buf));
  return append_str(buf, field->nullable ? ":true" : ":false");
}

int bf_schema_fingerprint(const bf_schema_t *schema, char out[33], bf_error_t *err) {
  bf_buffer_t buf;
  bf_buffer_init(&buf);
  int status = fingerprint_entries(schema->fields, schema->n_fields, "|", &buf);
  if (status != BF_OK) {
    bf_buffer_reset(&buf);
    return bf_error_set(err, status, "out of memory");
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(buf.data ? buf.data : (const uint8_t *)"", buf.size, digest, &digest_len,
                 EVP_sha256(), NULL) != 1) {
    bf_buffer_reset(&buf);
    return bf_error_set(err, BF_EINTERNAL, "SHA-256 failed");
  }
  bf_buffer_reset(&buf);
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 15];
  }
  out[32] = '\0';
  return BF_OK;
}

/* ---- Arrow schema ------------------------------------------------------------ */

static const char *arrow_format(const bf_field_t *field, bool logical, char *decimal, size_t cap) {
  switch (field->type) {
    case BF_TYPE_UTF8VIEW:
      return "vu";
    case BF_TYPE_UTF8:
      return "u";
    case BF_TYPE_INT64:
      return "l";
    case BF_TYPE_FLOAT64:
      return "g";
    case BF_TYPE_BOOL:
      return "b";
    case BF_TYPE_TIMESTAMP_US:
      return "tsu:UTC";
    case BF_TYPE_DATE32:
      return "tdD";
    case BF_TYPE_LIST:
      return "+l";
    case BF_TYPE_STRUCT:
      return "+s";
    case BF_TYPE_DICTIONARY:
      return "s";
    case BF_TYPE_BINARY:
      return "vz";
    case BF_TYPE_DECIMAL128:
      snprintf(decimal, cap, "d:%d,%d", field->precision, field->scale);
      return decimal;
    case BF_TYPE_TIME_US:
      return logical ? "ttu" : "l";
    case BF_TYPE_DURATION_US:
      return logical ? "tDu" : "l";
    case BF_TYPE_MAP:
      return "+m";
  }
  return "n";
}

static int field_to_arrow(const bf_field_t *field, bool logical, struct ArrowSchema *out) {
  char decimal[32];
  BF_RETURN_NOT_OK(bf_arrow_schema_init(out, arrow_format(field, logical, decimal, sizeof decimal),
                                        field->name,
                                        field->nullable ? ARROW_FLAG_NULLABLE : 0,
                                        (int64_t)field->n_children));
  int status = BF_OK;
  for (size_t i = 0; i < field->n_children && status == BF_OK; i++)
    status = field_to_arrow(&field->children[i], logical, out->children[i]);
  if (status == BF_OK && field->type == BF_TYPE_DICTIONARY)
    status = bf_arrow_schema_set_dictionary(out, "u");
  if (status != BF_OK) bf_arrow_schema_release(out);
  return status;
}

static int schema_to_arrow(const bf_schema_t *schema, bool logical, struct ArrowSchema *out,
                           bf_error_t *err) {
  struct ArrowSchema root;
  if (bf_arrow_schema_init(&root, "+s", "", 0, (int64_t)schema->n_fields) != BF_OK)
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  for (size_t i = 0; i < schema->n_fields; i++) {
    if (field_to_arrow(&schema->fields[i], logical, root.children[i]) != BF_OK) {
      bf_arrow_schema_release(&root);
      return bf_error_set(err, BF_ENOMEM, "out of memory");
    }
  }
  bf_arrow_schema_move(&root, out);
  return BF_OK;
}

int bf_schema_to_arrow(const bf_schema_t *schema, struct ArrowSchema *out, bf_error_t *err) {
  return schema_to_arrow(schema, false, out, err);
}

int bf_schema_to_arrow_logical(const bf_schema_t *schema, struct ArrowSchema *out, bf_error_t *err) {
  return schema_to_arrow(schema, true, out, err);
}

/* ---- validation ----------------------------------------------------------------- */

int bf_namespace_validate(const char *part, const char *what, bf_error_t *err) {
  size_t n = part ? strlen(part) : 0;
  const char *rule = "must match [A-Za-z_][A-Za-z0-9_-]* and be at most 128 bytes";
  if (n == 0) return bf_error_set(err, BF_EINVAL, "%s must not be empty", what);
  if (n > BF_NAMESPACE_MAX_BYTES)
    return bf_error_set(err, BF_EINVAL, "%s '%.40s...' is invalid: %s", what, part, rule);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)part[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
              (i > 0 && ((c >= '0' && c <= '9') || c == '-'));
    if (!ok) return bf_error_set(err, BF_EINVAL, "%s '%s' is invalid: %s", what, part, rule);
  }
  return BF_OK;
}

int bf_schema_validate_partitions(const bf_schema_t *schema, const char *const *columns,
                                  size_t n_columns, bf_error_t *err) {
  for (size_t i = 0; i < n_columns; i++) {
    int idx = bf_schema_find(schema, columns[i]);
    if (idx < 0 || (size_t)idx >= schema->n_user_fields)
      return bf_error_set(err, BF_EINVAL, "partition column '%s' is not a field of the model",
                          columns[i]);
    const bf_field_t *f = &schema->fields[idx];
    if (!bf_field_is_partitionable(f)) {
      char *type = NULL;
      bf_field_type_string(f, &type, NULL);
      bf_error_set(err, BF_EINVAL,
                   "partition column '%s' has type %s; partition columns must be str, int, bool, "
                   "date or enum",
                   columns[i], type ? type : "?");
      free(type);
      return BF_EINVAL;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(columns[i], columns[j]) == 0)
        return bf_error_set(err, BF_EINVAL, "partition column '%s' is listed twice", columns[i]);
  }
  return BF_OK;
}
