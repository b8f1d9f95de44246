/* Tails and compaction rewrites. A tail holds a table's acknowledged rows that are
 * not yet in Parquet: <catalog>.__bf_tail.<tail> in the query database, read by
 * the table's view (appends: engine_tail_append.c). The writer streams it as Arrow into a temporary table of the
 * ingest database (the query database is sandboxed: it cannot write files) and
 * writes Parquet from there. */
#include <errno.h>
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

/* An ArrowArrayStream over a streaming query result: each get_next converts the
 * result's next DuckDB chunk to Arrow. DuckDB's arrow scan calls get_next from one
 * thread at a time, and borrows the schema (its release only forgets it). */
typedef struct result_stream {
  duckdb_result *result;
  duckdb_arrow_options options;
  struct ArrowSchema *schema; /* owned by the caller of copy_tail */
  char error[256];
} result_stream_t;

static void borrowed_schema_release(struct ArrowSchema *schema) { schema->release = NULL; }

static int result_stream_schema(struct ArrowArrayStream *stream, struct ArrowSchema *out) {
  result_stream_t *rs = stream->private_data;
  *out = *rs->schema;
  out->release = borrowed_schema_release;
  return 0;
}

static int result_stream_next(struct ArrowArrayStream *stream, struct ArrowArray *out) {
  result_stream_t *rs = stream->private_data;
  memset(out, 0, sizeof *out);
  duckdb_data_chunk chunk = duckdb_fetch_chunk(*rs->result);
  if (chunk == NULL) { /* end of stream: released array */
    const char *failure = duckdb_result_error(rs->result);
    if (failure && failure[0]) {
      snprintf(rs->error, sizeof rs->error, "%s", failure);
      return EIO;
    }
    return 0;
  }
  duckdb_error_data error = duckdb_data_chunk_to_arrow(rs->options, chunk, out);
  duckdb_destroy_data_chunk(&chunk);
  int rc = 0;
  if (error && duckdb_error_data_has_error(error)) {
    snprintf(rs->error, sizeof rs->error, "%s", duckdb_error_data_message(error));
    if (out->release) out->release(out);
    rc = EIO;
  }
  if (error) duckdb_destroy_error_data(&error);
  return rc;
}

static const char *result_stream_error(struct ArrowArrayStream *stream) {
  result_stream_t *rs = stream->private_data;
  return rs->error[0] ? rs->error : NULL;
}

static void result_stream_release(struct ArrowArrayStream *stream) { stream->release = NULL; }

/* Copies the query-side tail into the ingest connection's temporary table staged
 * with one INSERT that scans the tail's streaming result as Arrow (no materialized
 * copy of the result, no statement per chunk). */
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
  if (status == BF_OK && text == NULL) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  duckdb_connection query = NULL;
  if (status == BF_OK && duckdb_connect(engine->query_db, &query) != DuckDBSuccess)
    status = bf_error_set(err, BF_EINTERNAL, "cannot connect to the query database");
  duckdb_prepared_statement prepared = NULL;
  duckdb_result result;
  int have_result = 0;
  if (status == BF_OK && duckdb_prepare(query, text, &prepared) != DuckDBSuccess)
    status = bf_error_set(err, BF_EQUERY, "reading tail %s: %s", tail, duckdb_prepare_error(prepared));
  if (status == BF_OK) {
    have_result = 1;
    if (duckdb_execute_prepared_streaming(prepared, &result) != DuckDBSuccess)
      status = bf_error_set(err, BF_EQUERY, "reading tail %s: %s", tail, duckdb_result_error(&result));
  }
  duckdb_arrow_options options = have_result ? duckdb_result_get_arrow_options(&result) : NULL;
  struct ArrowSchema arrow_schema = {0};
  if (status == BF_OK) status = bf__engine_result_arrow_schema(&result, options, &arrow_schema, err);
  if (status == BF_OK) {
    result_stream_t rs = {.result = &result, .options = options, .schema = &arrow_schema};
    struct ArrowArrayStream stream = {.get_schema = result_stream_schema,
                                      .get_next = result_stream_next,
                                      .get_last_error = result_stream_error,
                                      .release = result_stream_release,
                                      .private_data = &rs};
    char scan[64];
    scan_name(scan, sizeof scan);
    if (duckdb_arrow_scan(ingest, scan, (duckdb_arrow_stream)&stream) != DuckDBSuccess) {
      status = bf_error_set(err, BF_EINTERNAL, "DuckDB cannot scan tail %s", tail);
    } else {
      sql.size = 0;
      bf__sql_append(&sql, "INSERT INTO ");
      bf__sql_ident(&sql, staged);
      /* By name: a tail that gained columns (schema evolution) has them last. */
      bf__sql_append(&sql, " BY NAME SELECT * FROM ");
      bf__sql_ident(&sql, scan);
      text = bf__sql_cstr(&sql);
      status = text ? bf__sql_exec(ingest, text, err) : bf_error_set(err, BF_ENOMEM, "out of memory");
      if (status != BF_OK && rs.error[0]) bf_error_prefix(err, "%s", rs.error);
      sql.size = 0;
      bf__sql_append(&sql, "DROP VIEW IF EXISTS ");
      bf__sql_ident(&sql, scan);
      if ((text = bf__sql_cstr(&sql))) bf__sql_exec(ingest, text, NULL);
    }
  }
  if (arrow_schema.release) arrow_schema.release(&arrow_schema);
  if (options) duckdb_destroy_arrow_options(&options);
  if (have_result) duckdb_destroy_result(&result);
  if (prepared) duckdb_destroy_prepare(&prepared);
  if (query) duckdb_disconnect(&query);
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
  bf__engine_tail_appender_release(engine, catalog, tail);
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
  /* Every column of the inputs is kept, also those another writer added that our
   * schema does not know (union_by_name), so compaction never drops data. */
  bf__sql_append(&sql, " AS ");
  int status = bf__engine_files_relation(&sql, table_dir, schema, partition_columns,
                                         n_partition_columns, inputs, n_inputs, 1);
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
