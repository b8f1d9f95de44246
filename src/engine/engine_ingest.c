/* Staged rows -> zstd Parquet files, one directory level per partition column
 * (scouter_partition_date first), partition columns kept out of the files. DuckDB's
 * COPY ... RETURN_STATS reports each written file; the partition values are read
 * back from the hive directory names, so the Delta `add` actions match the files
 * exactly. Uses the ingest database only, never the sandboxed query database. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes DuckDB's %XX escaping of a hive partition value. */
static char *hive_decode(const char *s, size_t n) {
  char *out = malloc(n + 1);
  if (out == NULL) return NULL;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      out[j++] = s[i];
    }
  }
  out[j] = '\0';
  return out;
}

/* Fills file->path (relative) and partition values from an absolute file name. */
static int describe_file(const char *table_dir, const char *filename, size_t n_partitions,
                         bf_delta_file_t *file, bf_error_t *err) {
  size_t dir_len = strlen(table_dir);
  if (strncmp(filename, table_dir, dir_len) != 0 || filename[dir_len] != '/')
    return bf_error_set(err, BF_EINTERNAL, "DuckDB wrote %s outside %s", filename, table_dir);
  const char *rel = filename + dir_len + 1;
  if ((file->path = strdup(rel)) == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  file->partition_values = calloc(n_partitions + 1, sizeof *file->partition_values);
  if (file->partition_values == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  file->n_partition_values = n_partitions;
  const char *p = rel;
  for (size_t i = 0; i < n_partitions; i++) {
    const char *slash = strchr(p, '/');
    const char *eq = memchr(p, '=', slash ? (size_t)(slash - p) : 0);
    if (slash == NULL || eq == NULL)
      return bf_error_set(err, BF_EINTERNAL, "unexpected partition path %s", rel);
    size_t n = (size_t)(slash - eq - 1);
    /* DuckDB writes NULL partition values as the literal NULL; Delta wants null. */
    if (!(n == 4 && memcmp(eq + 1, "NULL", 4) == 0)) {
      file->partition_values[i] = hive_decode(eq + 1, n);
      if (file->partition_values[i] == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
    }
    p = slash + 1;
  }
  return BF_OK;
}

int bf__engine_write_staged(duckdb_connection conn, const char *staged, const char *table_dir,
                            const bf_schema_t *schema, const char *const *partition_columns,
                            size_t n_partition_columns, bf_delta_file_t **out_files,
                            size_t *n_out_files, bf_error_t *err) {
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  duckdb_result result;
  int have_result = 0;
  bf_delta_file_t *files = NULL;
  size_t n_files = 0;
  int status = BF_OK;
  bf__sql_append(&sql, "COPY (SELECT * FROM ");
  bf__sql_ident(&sql, staged);
  bf__sql_append(&sql, ") TO ");
  bf__sql_string(&sql, table_dir);
  bf__sql_append(&sql,
                 " (FORMAT parquet, COMPRESSION zstd, FILENAME_PATTERN 'part-{uuid}', APPEND, "
                 "ROW_GROUP_SIZE 1000000, RETURN_STATS, PARTITION_BY (");
  bf__sql_ident(&sql, BF_SYSCOL_PARTITION_DATE);
  for (size_t i = 0; i < n_partition_columns; i++) {
    bf__sql_append(&sql, ", ");
    bf__sql_ident(&sql, partition_columns[i]);
  }
  bf__sql_append(&sql, "))");
  const char *copy_sql = bf__sql_cstr(&sql);
  if (copy_sql == NULL) {
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
    goto done;
  }
  if (duckdb_query(conn, copy_sql, &result) != DuckDBSuccess) {
    const char *msg = duckdb_result_error(&result);
    status = bf_error_set(err, msg && (strstr(msg, "No space left") || strstr(msg, "ENOSPC"))
                                   ? BF_EFULL : BF_EIO,
                          "writing Parquet failed: %s", msg);
    duckdb_destroy_result(&result);
    goto done;
  }
  have_result = 1;
  idx_t n_rows = duckdb_row_count(&result);
  files = calloc(n_rows ? n_rows : 1, sizeof *files);
  if (files == NULL) {
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
    goto done;
  }
  int64_t now_ms = bf_time_now_ms();
  for (idx_t r = 0; r < n_rows && status == BF_OK; r++) {
    char *filename = duckdb_value_varchar(&result, 0, r);
    bf_delta_file_t *f = &files[n_files++];
    status = describe_file(table_dir, filename ? filename : "", 1 + n_partition_columns, f, err);
    duckdb_free(filename);
    f->num_records = duckdb_value_int64(&result, 1, r);
    f->size_bytes = duckdb_value_int64(&result, 2, r);
    f->modification_time_ms = now_ms;
  }
  if (status == BF_OK)
    status = bf__engine_file_stats(conn, staged, schema, partition_columns, n_partition_columns, files,
                                   n_files, err);
done:
  if (have_result) duckdb_destroy_result(&result);
  bf_buffer_reset(&sql);
  if (status != BF_OK) {
    bf__engine_remove_files(table_dir, files, n_files);
    for (size_t i = 0; i < n_files; i++) bf_delta_file_reset(&files[i]);
    free(files);
    return status;
  }
  *out_files = files;
  *n_out_files = n_files;
  return BF_OK;
}

void bf__engine_remove_files(const char *table_dir, const bf_delta_file_t *files, size_t n_files) {
  for (size_t i = 0; i < n_files; i++) {
    if (files[i].path == NULL) continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", table_dir, files[i].path);
    remove(path);
  }
}
