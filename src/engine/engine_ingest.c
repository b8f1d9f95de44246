/* Arrow batch -> zstd Parquet files, one directory level per partition column
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

int bf_engine_write_parquet(bf_engine_t *engine, const char *table_dir, const bf_schema_t *schema,
                            const char *const *partition_columns, size_t n_partition_columns,
                            const struct ArrowSchema *batch_schema, const struct ArrowArray *batch,
                            bf_delta_file_t **out_files, size_t *n_out_files, bf_error_t *err) {
  duckdb_connection conn;
  if (duckdb_connect(engine->ingest_db, &conn) != DuckDBSuccess)
    return bf_error_set(err, BF_EINTERNAL, "cannot connect to the ingest database");
  char uuid[37], view[64], staged[80];
  bf_uuid4_string(uuid);
  snprintf(view, sizeof view, "bf_ingest_%.8s%.4s%.4s", uuid, uuid + 9, uuid + 14);
  duckdb_arrow_stream stream = NULL;
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  duckdb_result result;
  int have_result = 0, have_view = 0;
  bf_delta_file_t *files = NULL;
  size_t n_files = 0;
  int status = BF_OK;
  if (duckdb_arrow_array_scan(conn, view, (duckdb_arrow_schema)batch_schema,
                              (duckdb_arrow_array)batch, &stream) != DuckDBSuccess) {
    status = bf_error_set(err, BF_EINVAL, "DuckDB cannot read the Arrow batch");
    goto done;
  }
  have_view = 1;
  /* The Arrow scan can be read once; a temp table (private to this connection) lets
   * both the COPY and the statistics query read the batch. */
  snprintf(staged, sizeof staged, "%s_staged", view);
  bf__sql_append(&sql, "CREATE TEMP TABLE ");
  bf__sql_ident(&sql, staged);
  bf__sql_append(&sql, " AS SELECT * FROM ");
  bf__sql_ident(&sql, view);
  if (bf__sql_cstr(&sql) == NULL ||
      (status = bf__sql_exec(conn, bf__sql_cstr(&sql), err)) != BF_OK) {
    if (status == BF_OK) status = bf_error_set(err, BF_ENOMEM, "out of memory");
    else bf_error_prefix(err, "staging the batch");
    goto done;
  }
  sql.size = 0;
  bf__sql_append(&sql, "COPY (SELECT * FROM ");
  bf__sql_ident(&sql, staged);
  bf__sql_append(&sql, ") TO ");
  bf__sql_string(&sql, table_dir);
  bf__sql_append(&sql,
                 " (FORMAT parquet, COMPRESSION zstd, FILENAME_PATTERN 'part-{uuid}', APPEND, "
                 "RETURN_STATS, PARTITION_BY (");
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
    status = bf_error_set(err, BF_EIO, "writing Parquet failed: %s", duckdb_result_error(&result));
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
  if (have_view) {
    /* The scan's view is visible database-wide; drop it right away. */
    bf_buffer_t drop;
    bf_buffer_init(&drop);
    bf__sql_append(&drop, "DROP VIEW IF EXISTS ");
    bf__sql_ident(&drop, view);
    bf__sql_exec(conn, bf__sql_cstr(&drop), NULL);
    bf_buffer_reset(&drop);
  }
  if (stream) duckdb_destroy_arrow_stream(&stream);
  duckdb_disconnect(&conn);
  bf_buffer_reset(&sql);
  if (status != BF_OK) {
    for (size_t i = 0; i < n_files; i++) {
      if (files[i].path) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", table_dir, files[i].path);
        remove(path);
      }
      bf_delta_file_reset(&files[i]);
    }
    free(files);
    return status;
  }
  *out_files = files;
  *n_out_files = n_files;
  return BF_OK;
}
