/* One DuckDB view per table under catalog.schema_name.table in the query database,
 * reading the table's live Parquet files with partition columns taken from the hive
 * directories (typed with hive_types). The view is replaced inside a transaction so
 * readers see either the old or the new file list, never a mix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

static int build_view_sql(bf_buffer_t *sql, const char *catalog, const char *schema_name,
                          const char *table, const char *table_dir, const bf_schema_t *schema,
                          const char *const *partition_columns, size_t n_partition_columns,
                          const bf_delta_file_t *files, size_t n_files) {
  bf__sql_append(sql, "CREATE OR REPLACE VIEW ");
  bf__sql_ident(sql, catalog);
  bf__sql_append(sql, ".");
  bf__sql_ident(sql, schema_name);
  bf__sql_append(sql, ".");
  bf__sql_ident(sql, table);
  bf__sql_append(sql, " AS SELECT ");
  for (size_t i = 0; i < schema->n_fields; i++) {
    if (i) bf__sql_append(sql, ", ");
    bf__sql_append(sql, "CAST(");
    if (n_files)
      bf__sql_ident(sql, schema->fields[i].name);
    else
      bf__sql_append(sql, "NULL");
    bf__sql_append(sql, " AS ");
    bf__sql_type(sql, &schema->fields[i]);
    bf__sql_append(sql, ") AS ");
    bf__sql_ident(sql, schema->fields[i].name);
  }
  if (n_files == 0) return bf__sql_append(sql, " WHERE false");
  bf__sql_append(sql, " FROM read_parquet([");
  for (size_t i = 0; i < n_files; i++) {
    if (i) bf__sql_append(sql, ", ");
    char *path = malloc(strlen(table_dir) + strlen(files[i].path) + 2);
    if (path == NULL) return BF_ENOMEM;
    sprintf(path, "%s/%s", table_dir, files[i].path);
    bf__sql_string(sql, path);
    free(path);
  }
  bf__sql_append(sql, "], hive_partitioning = true, hive_types_autocast = false, hive_types = {");
  for (size_t i = 0; i <= n_partition_columns; i++) {
    const char *col = i == 0 ? BF_SYSCOL_PARTITION_DATE : partition_columns[i - 1];
    int idx = bf_schema_find(schema, col);
    if (idx < 0) return BF_EINVAL;
    if (i) bf__sql_append(sql, ", ");
    bf__sql_string(sql, col);
    bf__sql_append(sql, ": ");
    bf__sql_type(sql, &schema->fields[idx]);
  }
  return bf__sql_append(sql, "})");
}

int bf_engine_set_table_view(bf_engine_t *engine, const char *catalog, const char *schema_name,
                             const char *table, const char *table_dir, const bf_schema_t *schema,
                             const char *const *partition_columns, size_t n_partition_columns,
                             const bf_delta_file_t *files, size_t n_files, bf_error_t *err) {
  bf_buffer_t setup, view;
  bf_buffer_init(&setup);
  bf_buffer_init(&view);
  bf__sql_append(&setup, "ATTACH IF NOT EXISTS ':memory:' AS ");
  bf__sql_ident(&setup, catalog);
  bf__sql_append(&setup, "; CREATE SCHEMA IF NOT EXISTS ");
  bf__sql_ident(&setup, catalog);
  bf__sql_append(&setup, ".");
  bf__sql_ident(&setup, schema_name);
  int status = build_view_sql(&view, catalog, schema_name, table, table_dir, schema,
                              partition_columns, n_partition_columns, files, n_files);
  const char *setup_sql = bf__sql_cstr(&setup), *view_sql = bf__sql_cstr(&view);
  if (status != BF_OK || setup_sql == NULL || view_sql == NULL) {
    bf_buffer_reset(&setup);
    bf_buffer_reset(&view);
    return bf_error_set(err, status == BF_EINVAL ? BF_EINVAL : BF_ENOMEM,
                        "cannot build the view of %s.%s.%s", catalog, schema_name, table);
  }
  pthread_mutex_lock(&engine->ddl_mu);
  status = bf__sql_exec(engine->ddl_conn, setup_sql, err);
  if (status == BF_OK) status = bf__sql_exec(engine->ddl_conn, "BEGIN TRANSACTION", err);
  if (status == BF_OK) {
    status = bf__sql_exec(engine->ddl_conn, view_sql, err);
    bf__sql_exec(engine->ddl_conn, status == BF_OK ? "COMMIT" : "ROLLBACK", NULL);
  }
  pthread_mutex_unlock(&engine->ddl_mu);
  bf_buffer_reset(&setup);
  bf_buffer_reset(&view);
  if (status != BF_OK) bf_error_prefix(err, "updating the view of %s.%s.%s", catalog, schema_name, table);
  return status;
}
