/* Delta `add.stats` for freshly written files: numRecords from COPY's RETURN_STATS,
 * and minValues / maxValues / nullCount per top-level scalar column computed with
 * one GROUP BY over the ingested batch, one row per partition. Files are matched
 * to rows by their partition values. When a partition got several files, the
 * partition's min/max are still valid bounds for each file but null counts are not
 * exact, so nullCount is left out. Long strings (> 64 bytes) get no bounds rather
 * than truncated ones. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

#define MAX_STRING_STAT_BYTES 64

static bool has_stats(const bf_field_t *f) {
  switch (f->type) {
    case BF_TYPE_UTF8VIEW:
    case BF_TYPE_UTF8:
    case BF_TYPE_DICTIONARY:
    case BF_TYPE_INT64:
    case BF_TYPE_FLOAT64:
    case BF_TYPE_TIMESTAMP_US:
    case BF_TYPE_DATE32:
      return true;
    default:
      return false;
  }
}

static bool is_partition(const char *name, const char *const *cols, size_t n) {
  if (strcmp(name, BF_SYSCOL_PARTITION_DATE) == 0) return true;
  for (size_t i = 0; i < n; i++)
    if (strcmp(name, cols[i]) == 0) return true;
  return false;
}

/* Appends `expr` of a column: timestamps as epoch microseconds (formatted in C),
 * the rest as-is. */
static void column_expr(bf_buffer_t *sql, const char *fn, const bf_field_t *f) {
  bf__sql_append(sql, fn);
  bf__sql_append(sql, "(");
  if (f->type == BF_TYPE_TIMESTAMP_US) bf__sql_append(sql, "epoch_us(");
  bf__sql_ident(sql, f->name);
  if (f->type == BF_TYPE_TIMESTAMP_US) bf__sql_append(sql, ")");
  bf__sql_append(sql, "), ");
}

static json_t *stat_value(const bf_field_t *f, const char *text) {
  if (text == NULL) return NULL;
  switch (f->type) {
    case BF_TYPE_INT64:
      return json_integer(strtoll(text, NULL, 10));
    case BF_TYPE_FLOAT64: {
      char *end;
      double v = strtod(text, &end);
      if (*end != '\0' || v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308)
        return NULL; /* NaN / infinity: no JSON number */
      return json_real(v);
    }
    case BF_TYPE_TIMESTAMP_US: {
      long long us = strtoll(text, NULL, 10);
      long long secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
      long long micros = us - secs * 1000000;
      long long days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
      long long rem = secs - days * 86400;
      /* civil_from_days (H. Hinnant) */
      long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
      long long doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
      long long y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
      long long mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
      long long m = mp < 10 ? mp + 3 : mp - 9;
      if (m <= 2) y++;
      char out[160];
      snprintf(out, sizeof out, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%06lldZ", y, m, d,
               rem / 3600, rem % 3600 / 60, rem % 60, micros);
      return json_string(out);
    }
    default: /* strings, enums and dates (YYYY-MM-DD) */
      if (strlen(text) > MAX_STRING_STAT_BYTES) return NULL;
      return json_string(text);
  }
}

int bf__engine_file_stats(duckdb_connection conn, const char *view, const bf_schema_t *schema,
                          const char *const *partition_columns, size_t n_partition_columns,
                          bf_delta_file_t *files, size_t n_files, bf_error_t *err) {
  size_t n_parts = 1 + n_partition_columns;
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "SELECT ");
  for (size_t i = 0; i < n_parts; i++) {
    bf__sql_append(&sql, "CAST(");
    bf__sql_ident(&sql, i == 0 ? BF_SYSCOL_PARTITION_DATE : partition_columns[i - 1]);
    bf__sql_append(&sql, " AS VARCHAR), ");
  }
  for (size_t i = 0; i < schema->n_fields; i++) {
    const bf_field_t *f = &schema->fields[i];
    if (!has_stats(f) || is_partition(f->name, partition_columns, n_partition_columns)) continue;
    column_expr(&sql, "min", f);
    column_expr(&sql, "max", f);
    bf__sql_append(&sql, "count(*) - count(");
    bf__sql_ident(&sql, f->name);
    bf__sql_append(&sql, "), ");
  }
  bf__sql_append(&sql, "count(*) FROM ");
  bf__sql_ident(&sql, view);
  bf__sql_append(&sql, " GROUP BY ALL");
  duckdb_result result;
  const char *text = bf__sql_cstr(&sql);
  if (text == NULL || duckdb_query(conn, text, &result) != DuckDBSuccess) {
    int status = bf_error_set(err, BF_EIO, "computing file statistics failed: %s",
                              text ? duckdb_result_error(&result) : "out of memory");
    if (text) duckdb_destroy_result(&result);
    bf_buffer_reset(&sql);
    return status;
  }
  bf_buffer_reset(&sql);
  idx_t n_rows = duckdb_row_count(&result);
  int status = BF_OK;
  for (size_t fi = 0; fi < n_files && status == BF_OK; fi++) {
    bf_delta_file_t *file = &files[fi];
    size_t same_partition = 0;
    for (size_t fj = 0; fj < n_files; fj++) {
      int equal = 1;
      for (size_t k = 0; k < n_parts && equal; k++) {
        const char *a = file->partition_values[k], *b = files[fj].partition_values[k];
        equal = (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
      }
      same_partition += equal;
    }
    json_t *stats = json_pack("{s:I}", "numRecords", (json_int_t)file->num_records);
    for (idx_t r = 0; r < n_rows; r++) {
      int match = 1;
      for (size_t k = 0; k < n_parts && match; k++) {
        char *v = duckdb_value_varchar(&result, k, r);
        const char *want = file->partition_values[k];
        match = (v == NULL && want == NULL) || (v && want && strcmp(v, want) == 0);
        duckdb_free(v);
      }
      if (!match) continue;
      json_t *mins = json_object(), *maxs = json_object(), *nulls = json_object();
      idx_t col = n_parts;
      for (size_t i = 0; i < schema->n_fields; i++) {
        const bf_field_t *f = &schema->fields[i];
        if (!has_stats(f) || is_partition(f->name, partition_columns, n_partition_columns)) continue;
        char *lo = duckdb_value_varchar(&result, col, r);
        char *hi = duckdb_value_varchar(&result, col + 1, r);
        json_t *lo_v = stat_value(f, lo), *hi_v = stat_value(f, hi);
        if (lo_v && hi_v) {
          json_object_set_new(mins, f->name, lo_v);
          json_object_set_new(maxs, f->name, hi_v);
        } else {
          json_decref(lo_v);
          json_decref(hi_v);
        }
        duckdb_free(lo);
        duckdb_free(hi);
        if (same_partition == 1)
          json_object_set_new(nulls, f->name, json_integer(duckdb_value_int64(&result, col + 2, r)));
        col += 3;
      }
      json_object_set_new(stats, "minValues", mins);
      json_object_set_new(stats, "maxValues", maxs);
      if (same_partition == 1)
        json_object_set_new(stats, "nullCount", nulls);
      else
        json_decref(nulls);
      break;
    }
    char *stats_text = json_dumps(stats, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(stats);
    if (stats_text == NULL) {
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
    } else {
      free(file->stats_json);
      file->stats_json = stats_text;
    }
  }
  duckdb_destroy_result(&result);
  return status;
}
