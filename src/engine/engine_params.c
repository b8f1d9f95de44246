/* Query parameters DuckDB binds as values rather than with a typed bind call:
 * BLOBs (any bytes), DECIMALs from their text (width and scale from the digits
 * given, so `price = ?` compares exactly) and lists of scalars for `x IN ?` /
 * `x = ANY(?)` (one element type; NULL items allowed; decimals of one list share
 * the widest scale). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

typedef struct decimal_text {
  u128 magnitude;
  bool negative;
  int digits; /* significant digits before the point + scale */
  int scale;
} decimal_text_t;

/* "[-+]digits[.digits]": at most 38 digits in all. */
static bool parse_decimal(const char *s, size_t n, decimal_text_t *out) {
  size_t i = 0;
  memset(out, 0, sizeof *out);
  if (i < n && (s[i] == '-' || s[i] == '+')) out->negative = s[i++] == '-';
  int before = 0, after = 0;
  bool point = false, any = false;
  for (; i < n; i++) {
    char c = s[i];
    if (c == '.' && !point) {
      point = true;
      continue;
    }
    if (c < '0' || c > '9') return false;
    any = true;
    if (!point && out->magnitude == 0 && c == '0') continue; /* leading zeros */
    out->magnitude = out->magnitude * 10 + (u128)(c - '0');
    if (point) after++;
    else before++;
    if (before + after > 38) return false;
  }
  if (!any) return false;
  out->scale = after;
  out->digits = before + after;
  return true;
}

static duckdb_value decimal_value(const decimal_text_t *d, int width, int scale) {
  u128 m = d->magnitude;
  for (int k = d->scale; k < scale; k++) m *= 10;
  i128 v = d->negative ? -(i128)m : (i128)m;
  duckdb_decimal dec;
  dec.width = (uint8_t)width;
  dec.scale = (uint8_t)scale;
  dec.value.lower = (uint64_t)(u128)v;
  dec.value.upper = (int64_t)(v >> 64);
  return duckdb_create_decimal(dec);
}

static duckdb_value scalar_value(const bf_query_param_t *p, int width, int scale) {
  switch (p->type) {
    case BF_PARAM_NULL:
      return duckdb_create_null_value();
    case BF_PARAM_INT64:
      return duckdb_create_int64(p->value.i64);
    case BF_PARAM_DOUBLE:
      return duckdb_create_double(p->value.f64);
    case BF_PARAM_STRING:
      return duckdb_create_varchar_length(p->str ? p->str : "", p->str_len);
    case BF_PARAM_BOOL:
      return duckdb_create_bool(p->value.boolean);
    case BF_PARAM_DATE:
      return duckdb_create_date((duckdb_date){p->value.days});
    case BF_PARAM_TIMESTAMP:
      return duckdb_create_timestamp_tz((duckdb_timestamp){p->value.i64});
    case BF_PARAM_BLOB:
      return duckdb_create_blob((const uint8_t *)(p->str ? p->str : ""), p->str_len);
    case BF_PARAM_DECIMAL: {
      decimal_text_t d;
      if (!parse_decimal(p->str ? p->str : "", p->str_len, &d)) return NULL;
      return decimal_value(&d, width, scale);
    }
    case BF_PARAM_LIST:
      return NULL;
  }
  return NULL;
}

static duckdb_logical_type element_type(bf_param_type_t type, int width, int scale) {
  switch (type) {
    case BF_PARAM_INT64: return duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
    case BF_PARAM_DOUBLE: return duckdb_create_logical_type(DUCKDB_TYPE_DOUBLE);
    case BF_PARAM_STRING: return duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    case BF_PARAM_BOOL: return duckdb_create_logical_type(DUCKDB_TYPE_BOOLEAN);
    case BF_PARAM_DATE: return duckdb_create_logical_type(DUCKDB_TYPE_DATE);
    case BF_PARAM_TIMESTAMP: return duckdb_create_logical_type(DUCKDB_TYPE_TIMESTAMP_TZ);
    case BF_PARAM_BLOB: return duckdb_create_logical_type(DUCKDB_TYPE_BLOB);
    case BF_PARAM_DECIMAL: return duckdb_create_decimal_type((uint8_t)width, (uint8_t)scale);
    case BF_PARAM_NULL: /* a list of nothing but NULLs (or empty): compares as NULLs */
    case BF_PARAM_LIST: return duckdb_create_logical_type(DUCKDB_TYPE_SQLNULL);
  }
  return duckdb_create_logical_type(DUCKDB_TYPE_SQLNULL);
}

/* The width and scale that hold every decimal of items: the widest scale and the
 * most digits before the point. */
static int decimal_shape(const bf_query_param_t *items, size_t n, size_t index, int *width,
                         int *scale, bf_error_t *err) {
  int before = 1, after = 0;
  for (size_t k = 0; k < n; k++) {
    if (items[k].type != BF_PARAM_DECIMAL) continue;
    decimal_text_t d;
    if (!parse_decimal(items[k].str ? items[k].str : "", items[k].str_len, &d))
      return bf_error_set(err, BF_EINVAL,
                          "query parameter %zu: '%.60s' is not a decimal of at most 38 digits",
                          index, items[k].str ? items[k].str : "");
    if (d.digits - d.scale > before) before = d.digits - d.scale;
    if (d.scale > after) after = d.scale;
  }
  if (before + after > 38)
    return bf_error_set(err, BF_EINVAL,
                        "query parameter %zu: its decimals need %d digits at a common scale, "
                        "over 38",
                        index, before + after);
  *width = before + after;
  *scale = after;
  return BF_OK;
}

int bf__engine_param_bind(duckdb_prepared_statement prepared, idx_t at, const bf_query_param_t *p,
                          size_t index, bf_error_t *err) {
  const bf_query_param_t *items = p->type == BF_PARAM_LIST ? p->items : p;
  size_t n = p->type == BF_PARAM_LIST ? p->n_items : 1;
  bf_param_type_t type = BF_PARAM_NULL;
  for (size_t k = 0; k < n; k++) {
    if (items[k].type == BF_PARAM_LIST)
      return bf_error_set(err, BF_EINVAL,
                          "query parameter %zu: a list inside a list is not supported", index);
    if (items[k].type == BF_PARAM_NULL) continue;
    if (type != BF_PARAM_NULL && items[k].type != type)
      return bf_error_set(err, BF_EINVAL,
                          "query parameter %zu: the values of a list must all have one type (and "
                          "None)", index);
    type = items[k].type;
  }
  int width = 18, scale = 0;
  if (type == BF_PARAM_DECIMAL)
    BF_RETURN_NOT_OK(decimal_shape(items, n, index, &width, &scale, err));
  duckdb_value value = NULL;
  if (p->type != BF_PARAM_LIST) {
    value = scalar_value(p, width, scale);
  } else {
    duckdb_value *values = calloc(n ? n : 1, sizeof *values);
    if (values == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
    bool ok = true;
    for (size_t k = 0; k < n && ok; k++)
      ok = (values[k] = scalar_value(&items[k], width, scale)) != NULL;
    duckdb_logical_type child = element_type(type, width, scale);
    if (ok) value = duckdb_create_list_value(child, values, n);
    duckdb_destroy_logical_type(&child);
    for (size_t k = 0; k < n; k++)
      if (values[k]) duckdb_destroy_value(&values[k]);
    free(values);
  }
  if (value == NULL)
    return bf_error_set(err, BF_EINVAL, "query parameter %zu: cannot make a value of it", index);
  duckdb_state rc = duckdb_bind_value(prepared, at, value);
  duckdb_destroy_value(&value);
  if (rc != DuckDBSuccess)
    return bf_error_set(err, BF_EINVAL, "cannot bind parameter %zu: %s", index,
                        duckdb_prepare_error(prepared) ? duckdb_prepare_error(prepared)
                                                       : "type not accepted");
  return BF_OK;
}
