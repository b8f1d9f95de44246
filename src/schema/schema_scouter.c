/* The scouter-ml 0.25.0 schema fingerprint (rule in schema_scouter.h), computed
 * from the Pydantic JSON Schema text with jansson and OpenSSL. */
#include "schema/schema_scouter.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/schema.h"
#include "bifrost/util.h"

#define SCOUTER_MAX_DEPTH 32

typedef struct walk {
  json_t *defs; /* "$defs" object or NULL */
  bf_error_t *err;
} walk_t;

typedef struct entries {
  char **items;
  size_t n, cap;
} entries_t;

static void entries_free(entries_t *e) {
  for (size_t i = 0; i < e->n; i++) free(e->items[i]);
  free(e->items);
  e->items = NULL;
  e->n = e->cap = 0;
}

static int entries_push(entries_t *e, char *s) {
  if (s == NULL) return BF_ENOMEM;
  if (e->n == e->cap) {
    size_t cap = e->cap ? 2 * e->cap : 8;
    char **grown = realloc(e->items, cap * sizeof *grown);
    if (grown == NULL) {
      free(s);
      return BF_ENOMEM;
    }
    e->items = grown;
    e->cap = cap;
  }
  e->items[e->n++] = s;
  return BF_OK;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts the entries bytewise and joins them with sep into a malloc'd string. */
static char *entries_join(entries_t *e, const char *sep) {
  qsort(e->items, e->n, sizeof *e->items, cmp_str);
  size_t total = 1;
  for (size_t i = 0; i < e->n; i++) total += strlen(e->items[i]) + strlen(sep);
  char *out = malloc(total);
  if (out == NULL) return NULL;
  char *p = out;
  for (size_t i = 0; i < e->n; i++) {
    if (i) {
      memcpy(p, sep, strlen(sep));
      p += strlen(sep);
    }
    size_t n = strlen(e->items[i]);
    memcpy(p, e->items[i], n);
    p += n;
  }
  *p = '\0';
  return out;
}

static char *format_entry(const char *name, const char *type, int nullable) {
  size_t n = strlen(name) + strlen(type) + 8;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s:%s:%s", name, type, nullable ? "true" : "false");
  return s;
}

static int resolve(walk_t *w, const char *name, json_t *prop, int nullable, int depth, char **type,
                   int *out_nullable);

/* Struct(<sorted entries of properties>) */
static int resolve_struct(walk_t *w, const char *name, json_t *props, json_t *required, int depth,
                          char **type) {
  entries_t e = {0};
  const char *key;
  json_t *sub;
  int status = BF_OK;
  json_object_foreach(props, key, sub) {
    int field_nullable = 1;
    size_t i;
    json_t *r;
    json_array_foreach(required, i, r) {
      if (json_is_string(r) && strcmp(json_string_value(r), key) == 0) field_nullable = 0;
    }
    char *sub_type = NULL;
    int sub_nullable = 0;
    status = resolve(w, key, sub, field_nullable, depth + 1, &sub_type, &sub_nullable);
    if (status != BF_OK) break;
    status = entries_push(&e, format_entry(key, sub_type, sub_nullable));
    free(sub_type);
    if (status != BF_OK) {
      bf_error_set(w->err, status, "out of memory");
      break;
    }
  }
  if (status == BF_OK) {
    char *joined = entries_join(&e, ",");
    size_t n = joined ? strlen(joined) + 9 : 0;
    *type = joined ? malloc(n) : NULL;
    if (*type) snprintf(*type, n, "Struct(%s)", joined);
    free(joined);
    if (*type == NULL) status = bf_error_set(w->err, BF_ENOMEM, "out of memory");
  }
  (void)name;
  entries_free(&e);
  return status;
}

static int is_null_variant(json_t *v) {
  json_t *t = json_object_get(v, "type");
  if (json_is_string(t) && strcmp(json_string_value(t), "null") == 0) return 1;
  json_t *c = json_object_get(v, "const");
  if (c != NULL && json_is_null(c)) return 1;
  json_t *en = json_object_get(v, "enum");
  return json_is_array(en) && json_array_size(en) == 1 && json_is_null(json_array_get(en, 0));
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static int set_type(walk_t *w, char **type, const char *text) {
  *type = dup_str(text);
  return *type ? BF_OK : bf_error_set(w->err, BF_ENOMEM, "out of memory");
}

static int resolve(walk_t *w, const char *name, json_t *prop, int nullable, int depth, char **type,
                   int *out_nullable) {
  if (depth >= SCOUTER_MAX_DEPTH)
    return bf_error_set(w->err, BF_EINVAL, "field '%s': nesting exceeds the maximum depth of %d",
                        name, SCOUTER_MAX_DEPTH);
  if (!json_is_object(prop))
    return bf_error_set(w->err, BF_EINVAL, "field '%s': property must be a JSON object", name);
  *out_nullable = nullable;
  json_t *ref = json_object_get(prop, "$ref");
  if (json_is_string(ref)) {
    const char *r = json_string_value(ref);
    const char *prefix = "#/$defs/";
    if (strncmp(r, prefix, strlen(prefix)) != 0)
      return bf_error_set(w->err, BF_EINVAL, "field '%s': unrecognised $ref '%s'", name, r);
    json_t *def = w->defs ? json_object_get(w->defs, r + strlen(prefix)) : NULL;
    if (!json_is_object(def))
      return bf_error_set(w->err, BF_EINVAL, "field '%s': $defs entry '%s' not found", name,
                          r + strlen(prefix));
    if (depth + 1 >= SCOUTER_MAX_DEPTH)
      return bf_error_set(w->err, BF_EINVAL, "field '%s': nesting exceeds the maximum depth of %d",
                          name, SCOUTER_MAX_DEPTH);
    json_t *props = json_object_get(def, "properties");
    if (json_is_object(props))
      return resolve_struct(w, name, props, json_object_get(def, "required"), depth + 1, type);
    return resolve(w, name, def, nullable, depth + 2, type, out_nullable);
  }
  json_t *any_of = json_object_get(prop, "anyOf");
  if (json_is_array(any_of)) {
    json_t *only = NULL;
    size_t n_non_null = 0, i;
    json_t *v;
    json_array_foreach(any_of, i, v) {
      if (!is_null_variant(v)) {
        only = v;
        n_non_null++;
      }
    }
    if (n_non_null != 1)
      return bf_error_set(w->err, BF_EINVAL,
                          "field '%s': anyOf with several non-null variants is not supported",
                          name);
    int ignored;
    BF_RETURN_NOT_OK(resolve(w, name, only, 1, depth + 1, type, &ignored));
    *out_nullable = 1;
    return BF_OK;
  }
  if (json_object_get(prop, "enum") != NULL) return set_type(w, type, "Dictionary(Int16, Utf8)");
  json_t *t = json_object_get(prop, "type");
  if (!json_is_string(t))
    return bf_error_set(w->err, BF_EINVAL, "field '%s': no 'type' in the property", name);
  const char *ts = json_string_value(t);
  if (strcmp(ts, "integer") == 0) return set_type(w, type, "Int64");
  if (strcmp(ts, "number") == 0) return set_type(w, type, "Float64");
  if (strcmp(ts, "boolean") == 0) return set_type(w, type, "Boolean");
  if (strcmp(ts, "string") == 0) {
    json_t *f = json_object_get(prop, "format");
    const char *fs = json_is_string(f) ? json_string_value(f) : "";
    if (strcmp(fs, "date-time") == 0) return set_type(w, type, "Timestamp(\xc2\xb5s, \"UTC\")");
    if (strcmp(fs, "date") == 0) return set_type(w, type, "Date32");
    return set_type(w, type, "Utf8View");
  }
  if (strcmp(ts, "array") == 0) {
    json_t *items = json_object_get(prop, "items");
    if (items == NULL)
      return bf_error_set(w->err, BF_EINVAL, "field '%s': array without 'items'", name);
    char *item = NULL;
    int item_nullable = 1;
    BF_RETURN_NOT_OK(resolve(w, name, items, 1, depth + 1, &item, &item_nullable));
    char *entry = format_entry("item", item, item_nullable);
    free(item);
    size_t n = entry ? strlen(entry) + 7 : 0;
    *type = entry ? malloc(n) : NULL;
    if (*type) snprintf(*type, n, "List(%s)", entry);
    free(entry);
    return *type ? BF_OK : bf_error_set(w->err, BF_ENOMEM, "out of memory");
  }
  if (strcmp(ts, "object") == 0) {
    json_t *props = json_object_get(prop, "properties");
    if (!json_is_object(props))
      return bf_error_set(w->err, BF_EINVAL,
                          "field '%s': a free-form dict (object without 'properties') is not "
                          "supported",
                          name);
    return resolve_struct(w, name, props, json_object_get(prop, "required"), depth, type);
  }
  if (strcmp(ts, "null") == 0) {
    *out_nullable = 1;
    return set_type(w, type, "Null");
  }
  return bf_error_set(w->err, BF_EINVAL, "field '%s': unsupported type '%s'", name, ts);
}

int bf_schema_scouter_canonical(const char *json, size_t len, char **out, bf_error_t *err) {
  json_error_t jerr;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL)
    return bf_error_set(err, BF_EINVAL, "json_schema is not valid JSON: %s (line %d)", jerr.text,
                        jerr.line);
  int status = BF_OK;
  entries_t e = {0};
  walk_t w = {.defs = json_object_get(root, "$defs"), .err = err};
  json_t *props = json_object_get(root, "properties");
  json_t *required = json_object_get(root, "required");
  if (!json_is_object(root) || !json_is_object(props)) {
    status = bf_error_set(err, BF_EINVAL, "json_schema must be an object with 'properties'");
  } else {
    const char *key;
    json_t *sub;
    json_object_foreach(props, key, sub) {
      if (strcmp(key, BF_SYSCOL_CREATED_AT) == 0 || strcmp(key, BF_SYSCOL_PARTITION_DATE) == 0 ||
          strcmp(key, BF_SYSCOL_BATCH_ID) == 0) {
        status = bf_error_set(err, BF_EINVAL, "field '%s' is a reserved system column name", key);
        break;
      }
      int nullable = 1;
      size_t i;
      json_t *r;
      json_array_foreach(required, i, r) {
        if (json_is_string(r) && strcmp(json_string_value(r), key) == 0) nullable = 0;
      }
      char *type = NULL;
      int out_nullable = nullable;
      status = resolve(&w, key, sub, nullable, 0, &type, &out_nullable);
      if (status != BF_OK) break;
      status = entries_push(&e, format_entry(key, type, out_nullable));
      free(type);
      if (status != BF_OK) {
        bf_error_set(err, status, "out of memory");
        break;
      }
    }
  }
  if (status == BF_OK) {
    static const char *const system_entries[] = {
        BF_SYSCOL_CREATED_AT ":Timestamp(\xc2\xb5s, \"UTC\"):false",
        BF_SYSCOL_PARTITION_DATE ":Date32:false", BF_SYSCOL_BATCH_ID ":Utf8:false"};
    for (size_t i = 0; i < 3 && status == BF_OK; i++)
      status = entries_push(&e, dup_str(system_entries[i]));
    if (status == BF_OK) {
      *out = entries_join(&e, "|");
      if (*out == NULL) status = BF_ENOMEM;
    }
    if (status != BF_OK) bf_error_set(err, status, "out of memory");
  }
  entries_free(&e);
  json_decref(root);
  return status;
}

int bf_schema_scouter_fingerprint(const char *json, size_t len, char out[33], bf_error_t *err) {
  char *text = NULL;
  BF_RETURN_NOT_OK(bf_schema_scouter_canonical(json, len, &text, err));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  int ok = EVP_Digest(text, strlen(text), digest, &digest_len, EVP_sha256(), NULL) == 1;
  free(text);
  if (!ok) return bf_error_set(err, BF_EINTERNAL, "SHA-256 failed");
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 15];
  }
  out[32] = '\0';
  return BF_OK;
}
