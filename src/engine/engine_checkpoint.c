/* Delta checkpoints in Parquet, through the ingest database: NDJSON actions are
 * read with explicit column types (the checkpoint schema of PROTOCOL.md: protocol,
 * metaData, txn, add, remove as structs, partitionValues as maps) and copied to
 * Parquet; reading turns each non-null action column back into one JSON line. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

#define CHECKPOINT_COLUMNS                                                                      \
  "{'protocol': 'STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER)', "                 \
  "'metaData': 'STRUCT(id VARCHAR, name VARCHAR, description VARCHAR, format STRUCT(provider "  \
  "VARCHAR, options MAP(VARCHAR, VARCHAR)), schemaString VARCHAR, partitionColumns VARCHAR[], " \
  "configuration MAP(VARCHAR, VARCHAR), createdTime BIGINT)', "                                 \
  "'txn': 'STRUCT(appId VARCHAR, version BIGINT, lastUpdated BIGINT)', "                        \
  "'add': 'STRUCT(path VARCHAR, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, "           \
  "modificationTime BIGINT, dataChange BOOLEAN, stats VARCHAR, tags MAP(VARCHAR, VARCHAR))', "  \
  "'remove': 'STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN, "              \
  "extendedFileMetadata BOOLEAN, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT)'}"

int bf_engine_checkpoint_write(bf_engine_t *engine, const char *ndjson, size_t len,
                               const char *dest_path, bf_error_t *err) {
  char uuid[37], json_tmp[PATH_MAX], parquet_tmp[PATH_MAX];
  bf_uuid4_string(uuid);
  snprintf(json_tmp, sizeof json_tmp, "%s.%s.ndjson.tmp", dest_path, uuid);
  snprintf(parquet_tmp, sizeof parquet_tmp, "%s.%s.tmp", dest_path, uuid);
  BF_RETURN_NOT_OK(bf_fs_write_new_file(json_tmp, ndjson, len, err));
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "COPY (SELECT protocol, metaData, txn, \"add\", \"remove\" FROM read_json(");
  bf__sql_string(&sql, json_tmp);
  bf__sql_append(&sql, ", format = 'newline_delimited', columns = " CHECKPOINT_COLUMNS
                       ")) TO ");
  bf__sql_string(&sql, parquet_tmp);
  bf__sql_append(&sql, " (FORMAT parquet)");
  duckdb_connection conn;
  int status = BF_OK;
  const char *text = bf__sql_cstr(&sql);
  if (text == NULL) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  else if (duckdb_connect(engine->ingest_db, &conn) != DuckDBSuccess)
    status = bf_error_set(err, BF_EINTERNAL, "cannot connect to the ingest database");
  else {
    status = bf__sql_exec(conn, text, err);
    duckdb_disconnect(&conn);
  }
  remove(json_tmp);
  bf_buffer_reset(&sql);
  if (status == BF_OK && rename(parquet_tmp, dest_path) != 0)
    status = bf_error_set(err, BF_EIO, "cannot rename checkpoint to %s", dest_path);
  if (status != BF_OK) {
    remove(parquet_tmp);
    bf_error_prefix(err, "writing checkpoint %s", dest_path);
  }
  return status;
}

/* Appends the VARCHAR column of a result chunk, one line per non-null row. */
static int append_lines(duckdb_data_chunk chunk, bf_buffer_t *lines) {
  duckdb_vector v = duckdb_data_chunk_get_vector(chunk, 0);
  duckdb_string_t *data = (duckdb_string_t *)duckdb_vector_get_data(v);
  uint64_t *valid = duckdb_vector_get_validity(v);
  idx_t n = duckdb_data_chunk_get_size(chunk);
  for (idx_t r = 0; r < n; r++) {
    if (valid && !duckdb_validity_row_is_valid(valid, r)) continue;
    BF_RETURN_NOT_OK(bf_buffer_append(lines, duckdb_string_t_data(&data[r]),
                                      duckdb_string_t_length(data[r])));
    BF_RETURN_NOT_OK(bf_buffer_append(lines, "\n", 1));
  }
  return BF_OK;
}

int bf_engine_checkpoint_read(bf_engine_t *engine, const char *path, char **out, size_t *out_len,
                              bf_error_t *err) {
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  /* One scan of the file; each row holds one action. Order: protocol, metaData
   * (partition columns are needed by the adds), txn, add, then the tombstones
   * (removes of files no longer live). */
  bf__sql_append(&sql, "SELECT line FROM (SELECT CASE "
                       "WHEN \"add\" IS NOT NULL THEN json_object('add', \"add\") "
                       "WHEN txn IS NOT NULL THEN json_object('txn', txn) "
                       "WHEN \"remove\" IS NOT NULL THEN json_object('remove', \"remove\") "
                       "WHEN metaData IS NOT NULL THEN json_object('metaData', metaData) "
                       "WHEN protocol IS NOT NULL THEN json_object('protocol', protocol) "
                       "END::VARCHAR AS line, CASE "
                       "WHEN \"add\" IS NOT NULL THEN 3 WHEN txn IS NOT NULL THEN 2 "
                       "WHEN \"remove\" IS NOT NULL THEN 4 WHEN metaData IS NOT NULL THEN 1 "
                       "ELSE 0 END AS k FROM ");
  bf__sql_string(&sql, path);
  bf__sql_append(&sql, ") WHERE line IS NOT NULL ORDER BY k");
  const char *text = bf__sql_cstr(&sql);
  duckdb_connection conn;
  if (text == NULL || duckdb_connect(engine->ingest_db, &conn) != DuckDBSuccess) {
    bf_buffer_reset(&sql);
    return bf_error_set(err, BF_EINTERNAL, "cannot read checkpoint %s", path);
  }
  duckdb_result result;
  int status = BF_OK;
  bf_buffer_t lines;
  bf_buffer_init(&lines);
  if (duckdb_query(conn, text, &result) != DuckDBSuccess) {
    status = bf_error_set(err, BF_ECORRUPT, "cannot read checkpoint %s: %s", path,
                          duckdb_result_error(&result));
  } else {
    duckdb_data_chunk chunk;
    while (status == BF_OK && (chunk = duckdb_fetch_chunk(result)) != NULL) {
      status = append_lines(chunk, &lines);
      duckdb_destroy_data_chunk(&chunk);
    }
    if (status == BF_OK) status = bf_buffer_append(&lines, "", 1);
    if (status != BF_OK) status = bf_error_set(err, BF_ENOMEM, "out of memory reading %s", path);
  }
  duckdb_destroy_result(&result);
  duckdb_disconnect(&conn);
  bf_buffer_reset(&sql);
  if (status != BF_OK) {
    bf_buffer_reset(&lines);
    return status;
  }
  *out_len = lines.size - 1;
  uint8_t *data;
  size_t size;
  bf_buffer_take(&lines, &data, &size);
  *out = (char *)data;
  return BF_OK;
}
