/* Tails and compaction rewrites. A tail holds a table's acknowledged rows that are
 * not yet in Parquet, twice: <catalog>.__bf_tail.<tail> in the query database (read
 * by the table's view) and bf_stage_<tail> in the ingest database (turned into
 * Parquet by the writer). Appends go to both inside an ingest transaction that is
 * rolled back when the query side fails, so the two never disagree. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

static void stage_name(bf_buffer_t *sql, const char *tail) {
  char name[300];
  snprintf(name, sizeof name, "bf_stage_%s", tail);
  bf__sql_ident(sql, name);
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

static int exec_on(duckdb_database db, bf_buffer_t *sql, bf_error_t *err) {
  const char *text = bf__sql_cstr(sql);
  if (text == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  duckdb_connection conn;
  if (duckdb_connect(db, &conn) != DuckDBSuccess)
    return bf_error_set(err, BF_EINTERNAL, "cannot connect to DuckDB");
  int status = bf__sql_exec(conn, text, err);
  duckdb_disconnect(&conn);
  return status;
}

int bf_engine_tail_create(bf_engine_t *engine, const char *catalog, const char *schema_name,
                          const char *tail, const bf_schema_t *schema,
                          bf_error_t *err) {
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "CREATE TABLE ");
  stage_name(&sql, tail);
  column_list(&sql, schema);
  int status = exec_on(engine->ingest_db, &sql, err);
  if (status == BF_OK) {
    sql.size = 0;
    bf__sql_append(&sql, "CREATE TABLE ");
    query_name(&sql, catalog, tail);
    column_list(&sql, schema);
    pthread_mutex_lock(&engine->ddl_mu);
    const char *text = bf__sql_cstr(&sql);
    status = bf__engine_ensure_catalog(engine, catalog, schema_name, err);
    if (status == BF_OK)
      status = text ? bf__sql_exec(engine->ddl_conn, text, err) : bf_error_set(err, BF_ENOMEM, "out of memory");
    pthread_mutex_unlock(&engine->ddl_mu);
    if (status != BF_OK) bf_engine_tail_drop(engine, catalog, tail, 0);
  }
  bf_buffer_reset(&sql);
  if (status != BF_OK) bf_error_prefix(err, "creating tail %s", tail);
  return status;
}

/* INSERT INTO target SELECT * FROM <arrow scan of batch> on conn. */
static int insert_batch(duckdb_connection conn, const char *scan_name, bf_buffer_t *target,
                        const struct ArrowSchema *batch_schema, const struct ArrowArray *batch,
                        bf_error_t *err) {
  duckdb_arrow_stream stream = NULL;
  if (duckdb_arrow_array_scan(conn, scan_name, (duckdb_arrow_schema)batch_schema,
                              (duckdb_arrow_array)batch, &stream) != DuckDBSuccess)
    return bf_error_set(err, BF_EINVAL, "DuckDB cannot read the Arrow batch");
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "INSERT INTO ");
  bf_buffer_append(&sql, target->data, target->size);
  bf__sql_append(&sql, " SELECT * FROM ");
  bf__sql_ident(&sql, scan_name);
  const char *text = bf__sql_cstr(&sql);
  int status = text ? bf__sql_exec(conn, text, err) : bf_error_set(err, BF_ENOMEM, "out of memory");
  sql.size = 0;
  bf__sql_append(&sql, "DROP VIEW IF EXISTS ");
  bf__sql_ident(&sql, scan_name);
  if ((text = bf__sql_cstr(&sql))) bf__sql_exec(conn, text, NULL);
  bf_buffer_reset(&sql);
  duckdb_destroy_arrow_stream(&stream);
  return status;
}

int bf_engine_tail_append(bf_engine_t *engine, const char *catalog, const char *tail,
                          const struct ArrowSchema *batch_schema, const struct ArrowArray *batch,
                          bf_error_t *err) {
  duckdb_connection ingest, query;
  if (duckdb_connect(engine->ingest_db, &ingest) != DuckDBSuccess)
    return bf_error_set(err, BF_EINTERNAL, "cannot connect to the ingest database");
  if (duckdb_connect(engine->query_db, &query) != DuckDBSuccess) {
    duckdb_disconnect(&ingest);
    return bf_error_set(err, BF_EINTERNAL, "cannot connect to the query database");
  }
  char uuid[37], scan[64];
  bf_uuid4_string(uuid);
  snprintf(scan, sizeof scan, "bf_scan_%.8s%.4s%.4s", uuid, uuid + 9, uuid + 14);
  bf_buffer_t target;
  bf_buffer_init(&target);
  stage_name(&target, tail);
  int status = bf__sql_exec(ingest, "BEGIN TRANSACTION", err);
  if (status == BF_OK) status = insert_batch(ingest, scan, &target, batch_schema, batch, err);
  if (status == BF_OK) {
    target.size = 0;
    query_name(&target, catalog, tail);
    status = insert_batch(query, scan, &target, batch_schema, batch, err);
  }
  if (status == BF_OK) {
    status = bf__sql_exec(ingest, "COMMIT", err);
    /* Practically unreachable for an in-memory table; the query side already has
     * the rows, so say so loudly rather than pretend. */
    if (status != BF_OK) bf_error_prefix(err, "tail %s is inconsistent", tail);
  } else {
    bf__sql_exec(ingest, "ROLLBACK", NULL);
  }
  bf_buffer_reset(&target);
  duckdb_disconnect(&query);
  duckdb_disconnect(&ingest);
  if (status != BF_OK) bf_error_prefix(err, "appending to tail %s", tail);
  return status;
}

int bf_engine_tail_write_parquet(bf_engine_t *engine, const char *tail, const char *table_dir,
                                 const bf_schema_t *schema, const char *const *partition_columns,
                                 size_t n_partition_columns, bf_delta_file_t **out_files,
                                 size_t *n_out_files, bf_error_t *err) {
  duckdb_connection conn;
  if (duckdb_connect(engine->ingest_db, &conn) != DuckDBSuccess)
    return bf_error_set(err, BF_EINTERNAL, "cannot connect to the ingest database");
  char staged[300];
  snprintf(staged, sizeof staged, "bf_stage_%s", tail);
  int status = bf__engine_write_staged(conn, staged, table_dir, schema, partition_columns,
                                       n_partition_columns, out_files, n_out_files, err);
  duckdb_disconnect(&conn);
  return status;
}

void bf_engine_tail_drop(bf_engine_t *engine, const char *catalog, const char *tail,
                         int drop_query_side) {
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "DROP TABLE IF EXISTS ");
  stage_name(&sql, tail);
  exec_on(engine->ingest_db, &sql, NULL);
  if (drop_query_side) {
    sql.size = 0;
    bf__sql_append(&sql, "DROP TABLE IF EXISTS ");
    query_name(&sql, catalog, tail);
    const char *text = bf__sql_cstr(&sql);
    pthread_mutex_lock(&engine->ddl_mu);
    if (text) bf__sql_exec(engine->ddl_conn, text, NULL);
    pthread_mutex_unlock(&engine->ddl_mu);
  }
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
