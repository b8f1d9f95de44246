/* Tails and compaction rewrites. A tail holds a table's acknowledged rows that are
 * not yet in Parquet: <catalog>.__bf_tail.<tail> in the query database, read by
 * the table's view. The writer copies it, as Arrow chunks, into a temporary table
 * of the ingest database (the query database is sandboxed: it cannot write files)
 * and writes Parquet from there. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

/* A fresh identifier for a temporary object. */
static void scan_name(char *out, size_t cap) {
  char uuid[37];
  bf_uuid4_string(uuid);
  snprintf(out, cap, "bf_tmp_%.8s%.4s%.4s", uuid, uuid + 9, uuid + 14);
}

static void query_name(bf_buffer_t *sql, const char *catalog, const char *tail) {
  bf__sql_ident(sql, catalog);
  bf__sql_append(sql, "." BF_TAIL_SCHEMA ".");
  bf__sql_ident(sql, tail);
}

static void column_list(bf_buffer_t *sql, const bf_schema_t *schema) {
  bf__sql_append(sql, " (");
  for (size_t i = 0; i < schema->n_fields; i++) {
    if (i) bf__sql_append(sql, ", ");
    bf__sql_ident(sql, schema->fields[i].name);
    bf__sql_append(sql, " ");
    bf__sql_type(sql, &schema->fields[i]);
  }
  bf__sql_append(sql, ")");
}

int bf_engine_tail_create(bf_engine_t *engine, const char *catalog, const char *schema_name,
                          const char *tail, const bf_schema_t *schema, bf_error_t *err) {
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "CREATE TABLE ");
  query_name(&sql, catalog, tail);
  column_list(&sql, schema);
  const char *text = bf__sql_cstr(&sql);
  pthread_mutex_lock(&engine->ddl_mu);
  int status = bf__engine_ensure_catalog(engine, catalog, schema_name, err);
  if (status == BF_OK)
    status = text ? bf__sql_exec(engine->ddl_conn, text, err) : bf_error_set(err, BF_ENOMEM, "out of memory");
  pthread_mutex_unlock(&engine->ddl_mu);
  bf_buffer_reset(&sql);
  if (status != BF_OK) bf_error_prefix(err, "creating tail %s", tail);
  return status;
}

/* INSERT INTO target SELECT * FROM <arrow scan of batch> on conn. */
static int insert_batch(duckdb_connection conn, const char *scan, bf_buffer_t *target,
                        const struct ArrowSchema *batch_schema, const struct ArrowArray *batch,
                        bf_error_t *err) {
  duckdb_arrow_stream stream = NULL;
  if (duckdb_arrow_array_scan(conn, scan, (duckdb_arrow_schema)batch_schema,
                              (duckdb_arrow_array)batch, &stream) != DuckDBSuccess)
    return bf_error_set(err, BF_EINVAL, "DuckDB cannot read the Arrow batch");
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "INSERT INTO ");
  bf_buffer_append(&sql, target->data, target->size);
  bf__sql_append(&sql, " SELECT * FROM ");
  bf__sql_ident(&sql, scan);
  const char *text = bf__sql_cstr(&sql);
  int status = text ? bf__sql_exec(conn, text, err) : bf_error_set(err, BF_ENOMEM, "out of memory");
  sql.size = 0;
  bf__sql_append(&sql, "DROP VIEW IF EXISTS ");
  bf__sql_ident(&sql, scan);
  if ((text = bf__sql_cstr(&sql))) bf__sql_exec(conn, text, NULL);
  bf_buffer_reset(&sql);
  duckdb_destroy_arrow_stream(&stream);
  return status;
}

int bf_engine_tail_append(bf_engine_t *engine, const char *catalog, const char *tail,
                          const struct ArrowSchema *batch_schema, const struct ArrowArray *batch,
                          bf_error_t *err) {
  duckdb_connection query;
  if (duckdb_connect(engine->query_db, &query) != DuckDBSuccess)
    return bf_error_set(err, BF_EINTERNAL, "cannot connect to the query database");
  char scan[64];
  scan_name(scan, sizeof scan);
  bf_buffer_t target;
  bf_buffer_init(&target);
  query_name(&target, catalog, tail);
  int status = insert_batch(query, scan, &target, batch_schema, batch, err);
  bf_buffer_reset(&target);
  duckdb_disconnect(&query);
  if (status != BF_OK) bf_error_prefix(err, "appending to tail %s", tail);
  return status;
}

/* Copies the query-side tail into the ingest connection's temporary table staged,
 * one Arrow chunk at a time. */
static int copy_tail(bf_engine_t *engine, duckdb_connection ingest, const char *catalog,
                     const char *tail, const bf_schema_t *schema, const char *staged,
                     bf_error_t *err) {
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "CREATE TEMP TABLE ");
  bf__sql_ident(&sql, staged);
  column_list(&sql, schema);
  const char *text = bf__sql_cstr(&sql);
  int status = text ? bf__sql_exec(ingest, text, err) : bf_error_set(err, BF_ENOMEM, "out of memory");
  sql.size = 0;
  bf__sql_append(&sql, "SELECT * FROM ");
  query_name(&sql, catalog, tail);
  text = bf__sql_cstr(&sql);
  duckdb_connection query;
  if (status == BF_OK && duckdb_connect(engine->query_db, &query) != DuckDBSuccess)
    status = bf_error_set(err, BF_EINTERNAL, "cannot connect to the query database");
  if (status != BF_OK) {
    bf_buffer_reset(&sql);
    return status;
  }
  duckdb_result result;
  if (duckdb_query(query, text, &result) != DuckDBSuccess) {
    status = bf_error_set(err, BF_EQUERY, "reading tail %s: %s", tail, duckdb_result_error(&result));
    duckdb_destroy_result(&result);
    duckdb_disconnect(&query);
    bf_buffer_reset(&sql);
    return status;
  }
  idx_t n_cols = duckdb_column_count(&result);
  duckdb_logical_type *types = calloc(n_cols ? n_cols : 1, sizeof *types);
  const char **names = calloc(n_cols ? n_cols : 1, sizeof *names);
  duckdb_arrow_options options = duckdb_result_get_arrow_options(&result);
  struct ArrowSchema arrow_schema = {0};
  if (types == NULL || names == NULL) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  for (idx_t i = 0; status == BF_OK && i < n_cols; i++) {
    types[i] = duckdb_column_logical_type(&result, i);
    names[i] = duckdb_column_name(&result, i);
  }
  if (status == BF_OK) {
    duckdb_error_data error = duckdb_to_arrow_schema(options, types, names, n_cols, &arrow_schema);
    if (error && duckdb_error_data_has_error(error))
      status = bf_error_set(err, BF_EQUERY, "%s", duckdb_error_data_message(error));
    if (error) duckdb_destroy_error_data(&error);
  }
  bf_buffer_t target;
  bf_buffer_init(&target);
  bf__sql_ident(&target, staged);
  while (status == BF_OK) {
    duckdb_data_chunk chunk = duckdb_fetch_chunk(result);
    if (chunk == NULL) break;
    struct ArrowArray array = {0};
    duckdb_error_data error = duckdb_data_chunk_to_arrow(options, chunk, &array);
    duckdb_destroy_data_chunk(&chunk);
    if (error && duckdb_error_data_has_error(error))
      status = bf_error_set(err, BF_EQUERY, "%s", duckdb_error_data_message(error));
    if (error) duckdb_destroy_error_data(&error);
    if (status == BF_OK) {
      char scan[64];
      scan_name(scan, sizeof scan);
      status = insert_batch(ingest, scan, &target, &arrow_schema, &array, err);
    }
    if (array.release) array.release(&array);
  }
  bf_buffer_reset(&target);
  if (arrow_schema.release) arrow_schema.release(&arrow_schema);
  for (idx_t i = 0; types && i < n_cols; i++) duckdb_destroy_logical_type(&types[i]);
  free(types);
  free(names);
  duckdb_destroy_arrow_options(&options);
  duckdb_destroy_result(&result);
  duckdb_disconnect(&query);
  bf_buffer_reset(&sql);
  return status;
}

int bf_engine_tail_write_parquet(bf_engine_t *engine, const char *catalog, const char *tail,
                                 const char *table_dir, const bf_schema_t *schema,
                                 const char *const *partition_columns, size_t n_partition_columns,
                                 bf_delta_file_t **out_files, size_t *n_out_files, bf_error_t *err) {
  duckdb_connection conn;
  if (duckdb_connect(engine->ingest_db, &conn) != DuckDBSuccess)
    return bf_error_set(err, BF_EINTERNAL, "cannot connect to the ingest database");
  char staged[64];
  scan_name(staged, sizeof staged);
  int status = copy_tail(engine, conn, catalog, tail, schema, staged, err);
  if (status == BF_OK)
    status = bf__engine_write_staged(conn, staged, table_dir, schema, partition_columns,
                                     n_partition_columns, out_files, n_out_files, err);
  duckdb_disconnect(&conn); /* drops the temporary table */
  return status;
}

void bf_engine_tail_drop(bf_engine_t *engine, const char *catalog, const char *tail) {
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "DROP TABLE IF EXISTS ");
  query_name(&sql, catalog, tail);
  const char *text = bf__sql_cstr(&sql);
  pthread_mutex_lock(&engine->ddl_mu);
  if (text) bf__sql_exec(engine->ddl_conn, text, NULL);
  pthread_mutex_unlock(&engine->ddl_mu);
  bf_buffer_reset(&sql);
}

int bf_engine_rewrite_files(bf_engine_t *engine, const char *table_dir, const bf_schema_t *schema,
                            const char *const *partition_columns, size_t n_partition_columns,
                            const bf_delta_file_t *inputs, size_t n_inputs,
                            bf_delta_file_t **out_files, size_t *n_out_files, bf_error_t *err) {
  duckdb_connection conn;
  if (duckdb_connect(engine->ingest_db, &conn) != DuckDBSuccess)
    return bf_error_set(err, BF_EINTERNAL, "cannot connect to the ingest database");
  char uuid[37], staged[64];
  bf_uuid4_string(uuid);
  snprintf(staged, sizeof staged, "bf_rewrite_%.8s%.4s%.4s", uuid, uuid + 9, uuid + 14);
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "CREATE TEMP TABLE ");
  bf__sql_ident(&sql, staged);
  bf__sql_append(&sql, " AS ");
  int status = bf__engine_table_select(&sql, table_dir, schema, partition_columns,
                                       n_partition_columns, inputs, n_inputs, NULL, NULL, 0);
  const char *text = status == BF_OK ? bf__sql_cstr(&sql) : NULL;
  if (text == NULL)
    status = bf_error_set(err, status == BF_OK ? BF_ENOMEM : status, "cannot build the rewrite");
  else if ((status = bf__sql_exec(conn, text, err)) != BF_OK)
    bf_error_prefix(err, "reading the files to compact");
  if (status == BF_OK) {
    status = bf__engine_write_staged(conn, staged, table_dir, schema, partition_columns,
                                     n_partition_columns, out_files, n_out_files, err);
  }
  bf_buffer_reset(&sql);
  duckdb_disconnect(&conn); /* drops the temp table */
  return status;
}
