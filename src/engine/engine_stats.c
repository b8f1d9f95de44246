/* Delta `add.stats` for freshly written files, per file and exact: numRecords,
 * and minValues / maxValues / nullCount for every leaf column (top-level scalars
 * and the fields of structs, nested like the schema; lists and partition columns
 * have none), taken from DuckDB's COPY ... RETURN_STATS. Values follow delta-rs:
 * dates YYYY-MM-DD, timestamps in UTC with millisecond precision (min floored, max
 * ceiled, so the bounds still hold), doubles without NaN/infinity (a file holding
 * NaN gets no bounds for that column). Strings longer than 64 bytes get no bounds
 * rather than truncated ones. DuckDB reports no bounds for booleans: those come
 * from one GROUP BY per partition over the written rows (a partition's bounds
 * hold for each of its files). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

#define MAX_STRING_STAT_BYTES 64

static bool is_partition(const char *name, const char *const *cols, size_t n) {
  if (strcmp(name, BF_SYSCOL_PARTITION_DATE) == 0) return true;
  for (size_t i = 0; i < n; i++)
    if (strcmp(name, cols[i]) == 0) return true;
  return false;
}

/* Appends "name" with DuckDB's quoting (quotes doubled) to a path key. */
static void quote_into(bf_buffer_t *buf, const char *name) {
  bf_buffer_append(buf, "\"", 1);
  for (const char *p = name; *p; p++) {
    if (*p == '"') bf_buffer_append(buf, "\"", 1);
    bf_buffer_append(buf, p, 1);
  }
  bf_buffer_append(buf, "\"", 1);
}

static long long days_from_civil(long long y, long long m, long long d) {
  y -= m <= 2;
  long long era = (y >= 0 ? y : y - 399) / 400;
  long long yoe = y - era * 400;
  long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DD HH:MM:SS[.ffffff](+|-)HH[:MM]" (DuckDB's TIMESTAMPTZ text) -> epoch
 * microseconds. 0 when it is anything else (e.g. BC dates, infinity). */
static int parse_timestamptz(const char *s, long long *out_us) {
  int y, mo, d, h, mi, sec, n = 0;
  if (sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
    return 0;
  const char *p = s + 19;
  long long micros = 0;
  if (*p == '.') {
    int digits = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, digits++)
      if (digits < 6) micros = micros * 10 + (*p - '0');
    if (digits == 0 || digits > 6) return 0;
    for (; digits < 6; digits++) micros *= 10;
  }
  int sign = 0, oh = 0, om = 0;
  if (*p == '+' || *p == '-') {
    sign = *p == '-' ? -1 : 1;
    if (sscanf(p + 1, "%2d%n", &oh, &n) != 1 || n != 2) return 0;
    p += 3;
    if (*p == ':') {
      if (sscanf(p + 1, "%2d%n", &om, &n) != 1 || n != 2) return 0;
      p += 3;
    }
  }
  if (*p != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31) return 0;
  long long secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
                   (long long)sign * (oh * 3600 + om * 60);
  *out_us = secs * 1000000 + micros;
  return 1;
}

/* Epoch milliseconds -> "YYYY-MM-DDTHH:MM:SS.mmmZ" (years 1..9999 only). */
static json_t *timestamp_ms_json(long long ms) {
  long long secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  long long millis = ms - secs * 1000;
  long long days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  long long rem = secs - days * 86400;
  long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097; /* civil_from_days */
  long long doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long long y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  long long mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
  long long m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) y++;
  if (y < 1 || y > 9999) return NULL;
  char out[96];
  snprintf(out, sizeof out, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", y, m, d,
           rem / 3600, rem % 3600 / 60, rem % 60, millis);
  return json_string(out);
}

static long long floor_div(long long a, long long b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* A bound as Delta JSON; upper selects rounding for timestamps. NULL: no bound. */
static json_t *stat_value(const bf_field_t *f, const char *text, int upper) {
  if (text == NULL) return NULL;
  char *end;
  switch (f->type) {
    case BF_TYPE_INT64:
    case BF_TYPE_TIME_US:     /* stored as long microseconds, so bounded like one */
    case BF_TYPE_DURATION_US: {
      long long v = strtoll(text, &end, 10);
      return *end == '\0' && end != text ? json_integer(v) : NULL;
    }
    case BF_TYPE_FLOAT64: {
      double v = strtod(text, &end);
      if (*end != '\0' || end == text || v != v || v > 1.7976931348623157e308 ||
          v < -1.7976931348623157e308)
        return NULL; /* NaN / infinity: no JSON number */
      return json_real(v);
    }
    case BF_TYPE_TIMESTAMP_US: {
      long long us;
      if (!parse_timestamptz(text, &us)) return NULL;
      long long ms = floor_div(us, 1000);
      if (upper && ms * 1000 != us) ms++;
      return timestamp_ms_json(ms);
    }
    case BF_TYPE_DATE32: {
      int y, m, d, n = 0;
      if (sscanf(text, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 || text[10] != '\0')
        return NULL;
      return json_string(text);
    }
    case BF_TYPE_UTF8VIEW:
    case BF_TYPE_UTF8:
    case BF_TYPE_DICTIONARY:
      if (strlen(text) > MAX_STRING_STAT_BYTES) return NULL;
      return json_string(text); /* NULL for invalid UTF-8 */
    default:
      return NULL;
  }
}

static const char *stat_text(json_t *entry, const char *key) {
  return json_string_value(json_object_get(entry, key));
}

/* Sets obj[name] = value, creating obj when needed. */
static void put(json_t **obj, const char *name, json_t *value) {
  if (value == NULL) return;
  if (*obj == NULL) *obj = json_object();
  json_object_set_new(*obj, name, value);
}

/* Walks the fields of one struct level, filling the three objects. */
static void walk(const bf_field_t *fields, size_t n, bf_buffer_t *key, json_t *col_stats,
                 json_t *bools, const char *const *partition_columns, size_t n_partition_columns,
                 int top, json_t **mins, json_t **maxs, json_t **nulls) {
  for (size_t i = 0; i < n; i++) {
    const bf_field_t *f = &fields[i];
    if (top && is_partition(f->name, partition_columns, n_partition_columns)) continue;
    if (f->type == BF_TYPE_LIST) continue;
    size_t mark = key->size;
    if (mark) bf_buffer_append(key, ".", 1);
    quote_into(key, f->name);
    bf_buffer_append(key, "", 1);
    const char *path = (const char *)key->data;
    if (f->type == BF_TYPE_STRUCT) {
      json_t *cmin = NULL, *cmax = NULL, *cnull = NULL;
      key->size--; /* drop the terminator before descending */
      walk(f->children, f->n_children, key, col_stats, bools, partition_columns,
           n_partition_columns, 0, &cmin, &cmax, &cnull);
      put(mins, f->name, cmin);
      put(maxs, f->name, cmax);
      put(nulls, f->name, cnull);
      key->size = mark;
      continue;
    }
    json_t *entry = json_object_get(col_stats, path);
    const char *count = stat_text(entry, "null_count");
    if (count) {
      char *end;
      long long v = strtoll(count, &end, 10);
      if (*end == '\0' && end != count) put(nulls, f->name, json_integer(v));
    }
    json_t *lo = NULL, *hi = NULL;
    if (f->type == BF_TYPE_BOOL) {
      json_t *pair = json_object_get(bools, path);
      if (json_is_boolean(json_array_get(pair, 0)) && json_is_boolean(json_array_get(pair, 1))) {
        lo = json_incref(json_array_get(pair, 0));
        hi = json_incref(json_array_get(pair, 1));
      }
    } else {
      const char *nan = stat_text(entry, "has_nan");
      if (!(nan && strcmp(nan, "true") == 0)) {
        lo = stat_value(f, stat_text(entry, "min"), 0);
        hi = stat_value(f, stat_text(entry, "max"), 1);
      }
    }
    if (lo && hi) {
      put(mins, f->name, lo);
      put(maxs, f->name, hi);
    } else {
      json_decref(lo);
      json_decref(hi);
    }
    key->size = mark;
  }
}

/* Collects the boolean leaves (path key + SQL expression), partition columns and
 * lists excluded. */
static void bool_leaves(const bf_field_t *fields, size_t n, bf_buffer_t *key, bf_buffer_t *sql,
                        json_t *keys, const char *const *partition_columns,
                        size_t n_partition_columns, int top) {
  for (size_t i = 0; i < n; i++) {
    const bf_field_t *f = &fields[i];
    if (top && is_partition(f->name, partition_columns, n_partition_columns)) continue;
    if (f->type != BF_TYPE_BOOL && f->type != BF_TYPE_STRUCT) continue;
    size_t mark = key->size;
    if (mark) bf_buffer_append(key, ".", 1);
    quote_into(key, f->name);
    if (f->type == BF_TYPE_STRUCT) {
      bool_leaves(f->children, f->n_children, key, sql, keys, partition_columns,
                  n_partition_columns, 0);
    } else {
      bf_buffer_append(key, "", 1);
      json_array_append_new(keys, json_string((const char *)key->data));
      key->size--;
      bf__sql_append(sql, "bool_and(");
      bf_buffer_append(sql, key->data, key->size);
      bf__sql_append(sql, "), bool_or(");
      bf_buffer_append(sql, key->data, key->size);
      bf__sql_append(sql, "), ");
    }
    key->size = mark;
  }
}

/* For each file, {path key: [min, max]} of its boolean leaves (from its partition). */
static int boolean_bounds(duckdb_connection conn, const char *view, const bf_schema_t *schema,
                          const char *const *partition_columns, size_t n_partition_columns,
                          const bf_delta_file_t *files, size_t n_files, json_t **out,
                          bf_error_t *err) {
  size_t n_parts = 1 + n_partition_columns;
  bf_buffer_t sql, key;
  bf_buffer_init(&sql);
  bf_buffer_init(&key);
  json_t *keys = json_array();
  bf__sql_append(&sql, "SELECT ");
  for (size_t i = 0; i < n_parts; i++) {
    bf__sql_append(&sql, "CAST(");
    bf__sql_ident(&sql, i == 0 ? BF_SYSCOL_PARTITION_DATE : partition_columns[i - 1]);
    bf__sql_append(&sql, " AS VARCHAR), ");
  }
  bool_leaves(schema->fields, schema->n_fields, &key, &sql, keys, partition_columns,
              n_partition_columns, 1);
  bf_buffer_reset(&key);
  size_t n_bools = json_array_size(keys);
  if (n_bools == 0) {
    json_decref(keys);
    bf_buffer_reset(&sql);
    return BF_OK;
  }
  bf__sql_append(&sql, "count(*) FROM ");
  bf__sql_ident(&sql, view);
  bf__sql_append(&sql, " GROUP BY ALL");
  duckdb_result result;
  const char *text = bf__sql_cstr(&sql);
  if (text == NULL || duckdb_query(conn, text, &result) != DuckDBSuccess) {
    int status = bf_error_set(err, BF_EIO, "computing boolean statistics failed: %s",
                              text ? duckdb_result_error(&result) : "out of memory");
    if (text) duckdb_destroy_result(&result);
    bf_buffer_reset(&sql);
    json_decref(keys);
    return status;
  }
  bf_buffer_reset(&sql);
  idx_t n_rows = duckdb_row_count(&result);
  for (size_t fi = 0; fi < n_files; fi++) {
    for (idx_t r = 0; r < n_rows; r++) {
      int match = 1;
      for (size_t k = 0; k < n_parts && match; k++) {
        char *v = duckdb_value_varchar(&result, k, r);
        const char *want = files[fi].partition_values[k];
        match = (v == NULL && want == NULL) || (v && want && strcmp(v, want) == 0);
        duckdb_free(v);
      }
      if (!match) continue;
      json_t *bounds = json_object();
      for (size_t b = 0; b < n_bools; b++) {
        idx_t col = n_parts + 2 * b;
        if (duckdb_value_is_null(&result, col, r)) continue;
        json_object_set_new(bounds, json_string_value(json_array_get(keys, b)),
                            json_pack("[b, b]", duckdb_value_boolean(&result, col, r),
                                      duckdb_value_boolean(&result, col + 1, r)));
      }
      out[fi] = bounds;
      break;
    }
  }
  duckdb_destroy_result(&result);
  json_decref(keys);
  return BF_OK;
}

int bf__engine_file_stats(duckdb_connection conn, const char *view, const bf_schema_t *schema,
                          const char *const *partition_columns, size_t n_partition_columns,
                          bf_delta_file_t *files, json_t *const *column_stats, size_t n_files,
                          bf_error_t *err) {
  json_t **bools = calloc(n_files + 1, sizeof *bools);
  if (bools == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  int status = boolean_bounds(conn, view, schema, partition_columns, n_partition_columns, files,
                              n_files, bools, err);
  bf_buffer_t key;
  bf_buffer_init(&key);
  for (size_t fi = 0; fi < n_files && status == BF_OK; fi++) {
    bf_delta_file_t *file = &files[fi];
    json_t *mins = NULL, *maxs = NULL, *nulls = NULL;
    key.size = 0;
    walk(schema->fields, schema->n_fields, &key, column_stats[fi], bools[fi], partition_columns,
         n_partition_columns, 1, &mins, &maxs, &nulls);
    json_t *stats = json_pack("{s:I, s:o, s:o, s:o}", "numRecords", (json_int_t)file->num_records,
                              "minValues", mins ? mins : json_object(), "maxValues",
                              maxs ? maxs : json_object(), "nullCount",
                              nulls ? nulls : json_object());
    char *stats_text = stats ? json_dumps(stats, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(stats);
    if (stats_text == NULL) {
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
    } else {
      free(file->stats_json);
      file->stats_json = stats_text;
    }
  }
  bf_buffer_reset(&key);
  for (size_t i = 0; i < n_files; i++) json_decref(bools[i]);
  free(bools);
  return status;
}
