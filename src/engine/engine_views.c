/* One DuckDB view per table under catalog.schema_name.table in the query database:
 * the table's live Parquet files (partition columns taken from the hive
 * directories, typed with hive_types) united with its tail tables (acknowledged
 * rows not yet in Parquet). The view is replaced, and a flushed tail dropped, in
 * one transaction, so readers see each row exactly once, never a mix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

static int append_tail_ref(bf_buffer_t *sql, const char *catalog, const char *tail) {
  bf__sql_ident(sql, catalog);
  bf__sql_append(sql, "." BF_TAIL_SCHEMA ".");
  return bf__sql_ident(sql, tail);
}

int bf__engine_ensure_catalog(bf_engine_t *engine, const char *catalog, const char *schema_name,
                              bf_error_t *err) {
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "ATTACH IF NOT EXISTS ':memory:' AS ");
  bf__sql_ident(&sql, catalog);
  bf__sql_append(&sql, "; CREATE SCHEMA IF NOT EXISTS ");
  bf__sql_ident(&sql, catalog);
  bf__sql_append(&sql, ".");
  bf__sql_ident(&sql, schema_name);
  bf__sql_append(&sql, "; CREATE SCHEMA IF NOT EXISTS ");
  bf__sql_ident(&sql, catalog);
  bf__sql_append(&sql, "." BF_TAIL_SCHEMA);
  const char *text = bf__sql_cstr(&sql);
  int status = text ? bf__sql_exec(engine->ddl_conn, text, err)
                    : bf_error_set(err, BF_ENOMEM, "out of memory");
  bf_buffer_reset(&sql);
  return status;
}

int bf__engine_table_select(bf_buffer_t *sql, const char *table_dir, const bf_schema_t *schema,
                            const char *const *partition_columns, size_t n_partition_columns,
                            const bf_delta_file_t *files, size_t n_files,
                            const char *catalog, const char *const *tails, size_t n_tails) {
  int empty = n_files == 0 && n_tails == 0;
  bf__sql_append(sql, "SELECT ");
  for (size_t i = 0; i < schema->n_fields; i++) {
    if (i) bf__sql_append(sql, ", ");
    bf__sql_append(sql, "CAST(");
    if (!empty)
      bf__sql_ident(sql, schema->fields[i].name);
    else
      bf__sql_append(sql, "NULL");
    bf__sql_append(sql, " AS ");
    bf__sql_type(sql, &schema->fields[i]);
    bf__sql_append(sql, ") AS ");
    bf__sql_ident(sql, schema->fields[i].name);
  }
  if (empty) return bf__sql_append(sql, " WHERE false");
  bf__sql_append(sql, " FROM (");
  if (n_files) {
    bf__sql_append(sql, "SELECT * FROM read_parquet([");
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
    bf__sql_append(sql, "})");
  }
  for (size_t i = 0; i < n_tails; i++) {
    if (n_files || i) bf__sql_append(sql, " UNION ALL BY NAME ");
    bf__sql_append(sql, "SELECT * FROM ");
    append_tail_ref(sql, catalog, tails[i]);
  }
  return bf__sql_append(sql, ")");
}

static int build_view_sql(bf_buffer_t *sql, const char *catalog, const char *schema_name,
                          const char *table, const char *table_dir, const bf_schema_t *schema,
                          const char *const *partition_columns, size_t n_partition_columns,
                          const bf_delta_file_t *files, size_t n_files, const char *const *tails,
                          size_t n_tails) {
  bf__sql_append(sql, "CREATE OR REPLACE VIEW ");
  bf__sql_ident(sql, catalog);
  bf__sql_append(sql, ".");
  bf__sql_ident(sql, schema_name);
  bf__sql_append(sql, ".");
  bf__sql_ident(sql, table);
  bf__sql_append(sql, " AS ");
  return bf__engine_table_select(sql, table_dir, schema, partition_columns, n_partition_columns,
                                 files, n_files, catalog, tails, n_tails);
}

void bf_engine_drop_table_view(bf_engine_t *engine, const char *catalog, const char *schema_name,
                               const char *table) {
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "DROP VIEW IF EXISTS ");
  bf__sql_ident(&sql, catalog);
  bf__sql_append(&sql, ".");
  bf__sql_ident(&sql, schema_name);
  bf__sql_append(&sql, ".");
  bf__sql_ident(&sql, table);
  const char *text = bf__sql_cstr(&sql);
  pthread_mutex_lock(&engine->ddl_mu);
  if (text) bf__sql_exec(engine->ddl_conn, text, NULL);
  pthread_mutex_unlock(&engine->ddl_mu);
  bf_buffer_reset(&sql);
}

int bf_engine_set_table_view(bf_engine_t *engine, const char *catalog, const char *schema_name,
                             const char *table, const char *table_dir, const bf_schema_t *schema,
                             const char *const *partition_columns, size_t n_partition_columns,
                             const bf_delta_file_t *files, size_t n_files,
                             const char *const *tails, size_t n_tails, const char *drop_tail,
                             bf_error_t *err) {
  bf_buffer_t view;
  bf_buffer_init(&view);
  int status = build_view_sql(&view, catalog, schema_name, table, table_dir, schema,
                              partition_columns, n_partition_columns, files, n_files, tails,
                              n_tails);
  if (status == BF_OK && drop_tail) {
    bf__sql_append(&view, "; DROP TABLE IF EXISTS ");
    status = append_tail_ref(&view, catalog, drop_tail);
  }
  const char *view_sql = bf__sql_cstr(&view);
  if (status != BF_OK || view_sql == NULL) {
    bf_buffer_reset(&view);
    return bf_error_set(err, status == BF_EINVAL ? BF_EINVAL : BF_ENOMEM,
                        "cannot build the view of %s.%s.%s", catalog, schema_name, table);
  }
  pthread_mutex_lock(&engine->ddl_mu);
  status = bf__engine_ensure_catalog(engine, catalog, schema_name, err);
  if (status == BF_OK) status = bf__sql_exec(engine->ddl_conn, "BEGIN TRANSACTION", err);
  if (status == BF_OK) {
    status = bf__sql_exec(engine->ddl_conn, view_sql, err);
    bf__sql_exec(engine->ddl_conn, status == BF_OK ? "COMMIT" : "ROLLBACK", NULL);
  }
  pthread_mutex_unlock(&engine->ddl_mu);
  bf_buffer_reset(&view);
  if (status != BF_OK) bf_error_prefix(err, "updating the view of %s.%s.%s", catalog, schema_name, table);
  return status;
}
