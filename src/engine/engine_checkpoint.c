/* Delta checkpoints in Parquet, through the ingest database: NDJSON actions are
 * read with explicit column types (the checkpoint schema of PROTOCOL.md: protocol,
 * metaData, txn, add, remove as structs, partitionValues as maps) and copied to
 * Parquet; reading turns each non-null action column back into one JSON line. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "storage/storage.h"

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
  /* On S3 a PUT appears whole or not at all: the Parquet goes straight to its name,
   * and the JSON DuckDB reads it from stays on the local disk. */
  int remote = bf_storage_is_s3(dest_path);
  const char *tmpdir = getenv("TMPDIR");
  if (remote)
    snprintf(json_tmp, sizeof json_tmp, "%s/bifrost-checkpoint-%s.ndjson",
             tmpdir && tmpdir[0] ? tmpdir : "/tmp", uuid);
  else
    snprintf(json_tmp, sizeof json_tmp, "%s.%s.ndjson.tmp", dest_path, uuid);
  snprintf(parquet_tmp, sizeof parquet_tmp, remote ? "%s" : "%s.%s.tmp", dest_path, uuid);
  BF_RETURN_NOT_OK(bf_fs_write_new_file(json_tmp, ndjson, len, err)); /* always local */
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
  if (status == BF_OK && !remote && rename(parquet_tmp, dest_path) != 0)
    status = bf_error_set(err, BF_EIO, "cannot rename checkpoint to %s", dest_path);
  if (status != BF_OK) {
    bf_error_t ignored;
    bf_error_init(&ignored);
    bf_storage_delete(parquet_tmp, &ignored);
    bf_error_prefix(err, "writing checkpoint %s", dest_path);
  }
  return status;
}

/* A VARCHAR cell as a NUL-terminated string in buf (NULL when null). BF_EINVAL for
 * a NUL byte inside: no Delta path, stats or tag holds one. */
static int cell_string(duckdb_vector v, idx_t row, bf_buffer_t *buf, size_t *at, int *is_null) {
  duckdb_string_t *data = (duckdb_string_t *)duckdb_vector_get_data(v);
  uint64_t *valid = duckdb_vector_get_validity(v);
  *is_null = valid && !duckdb_validity_row_is_valid(valid, row);
  *at = buf->size;
  if (*is_null) return BF_OK;
  uint32_t n = duckdb_string_t_length(data[row]);
  const char *bytes = duckdb_string_t_data(&data[row]);
  if (memchr(bytes, '\0', n)) return BF_EINVAL;
  BF_RETURN_NOT_OK(bf_buffer_append(buf, bytes, n));
  return bf_buffer_append(buf, "", 1);
}

static int64_t cell_int64(duckdb_vector v, idx_t row) {
  uint64_t *valid = duckdb_vector_get_validity(v);
  if (valid && !duckdb_validity_row_is_valid(valid, row)) return 0;
  return ((int64_t *)duckdb_vector_get_data(v))[row];
}

/* Columns of the typed read: k (0 protocol, 1 metaData, 2 txn, 3 add, 4 remove),
 * the action as JSON for all but adds, then the add's fields. */
enum { C_KIND, C_LINE, C_PATH, C_SIZE, C_MTIME, C_STATS, C_CRC, C_KEYS, C_VALUES, C_N };

/* Applies one result chunk of the typed read to s. An add before the metaData
 * action (whose partition columns it needs) stops it with *out_of_order set. */
static int apply_chunk(duckdb_data_chunk chunk, bf_delta_snapshot_t *s, const char *path,
                       bf_buffer_t *buf, int *out_of_order, bf_error_t *err) {
  duckdb_vector col[C_N];
  for (idx_t c = 0; c < C_N; c++) col[c] = duckdb_data_chunk_get_vector(chunk, c);
  int32_t *kind = (int32_t *)duckdb_vector_get_data(col[C_KIND]);
  duckdb_vector key_child = duckdb_list_vector_get_child(col[C_KEYS]);
  duckdb_vector value_child = duckdb_list_vector_get_child(col[C_VALUES]);
  duckdb_list_entry *keys = (duckdb_list_entry *)duckdb_vector_get_data(col[C_KEYS]);
  duckdb_list_entry *values = (duckdb_list_entry *)duckdb_vector_get_data(col[C_VALUES]);
  uint64_t *keys_valid = duckdb_vector_get_validity(col[C_KEYS]);
  idx_t n = duckdb_data_chunk_get_size(chunk);
  int status = BF_OK;
  for (idx_t r = 0; r < n && status == BF_OK; r++) {
    buf->size = 0;
    size_t at[C_N] = {0};
    int null[C_N] = {0};
    if (kind[r] != 3) {
      status = cell_string(col[C_LINE], r, buf, &at[C_LINE], &null[C_LINE]);
      if (status == BF_OK && !null[C_LINE])
        status = bf_delta_snapshot_apply_json(s, (const char *)buf->data + at[C_LINE],
                                              buf->size - at[C_LINE] - 1, path, err);
      else if (status != BF_OK)
        status = bf_error_set(err, BF_ECORRUPT, "%s: an action holds a NUL byte", path);
      continue;
    }
    if (s->schema_string == NULL) {
      *out_of_order = 1;
      return BF_OK;
    }
    for (int c = C_PATH; c <= C_CRC && status == BF_OK; c++)
      if (c != C_SIZE && c != C_MTIME) status = cell_string(col[c], r, buf, &at[c], &null[c]);
    size_t n_entries = 0;
    if (status == BF_OK && !(keys_valid && !duckdb_validity_row_is_valid(keys_valid, r)))
      n_entries = (size_t)keys[r].length;
    size_t *key_at = calloc(n_entries + 1, sizeof *key_at), *value_at = calloc(n_entries + 1, sizeof *value_at);
    int *value_null = calloc(n_entries + 1, sizeof *value_null);
    if (key_at == NULL || value_at == NULL || value_null == NULL) status = BF_ENOMEM;
    for (size_t e = 0; e < n_entries && status == BF_OK; e++) {
      int key_null;
      status = cell_string(key_child, keys[r].offset + e, buf, &key_at[e], &key_null);
      if (status == BF_OK && values[r].length == keys[r].length)
        status = cell_string(value_child, values[r].offset + e, buf, &value_at[e], &value_null[e]);
      else if (status == BF_OK)
        value_null[e] = 1;
      if (key_null) key_at[e] = SIZE_MAX;
    }
    const char **key_ptr = calloc(n_entries + 1, sizeof *key_ptr);
    const char **value_ptr = calloc(n_entries + 1, sizeof *value_ptr);
    if (status == BF_OK && (key_ptr == NULL || value_ptr == NULL)) status = BF_ENOMEM;
    if (status == BF_OK) { /* buf no longer grows: pointers into it stay valid */
      const char *base = (const char *)buf->data;
      for (size_t e = 0; e < n_entries; e++) {
        key_ptr[e] = key_at[e] == SIZE_MAX ? NULL : base + key_at[e];
        value_ptr[e] = value_null[e] ? NULL : base + value_at[e];
      }
      bf_delta_add_action_t add = {
          .path = null[C_PATH] ? NULL : base + at[C_PATH],
          .partition_keys = key_ptr,
          .partition_values = value_ptr,
          .n_partition_entries = n_entries,
          .size_bytes = cell_int64(col[C_SIZE], r),
          .modification_time_ms = cell_int64(col[C_MTIME], r),
          .stats_json = null[C_STATS] ? NULL : base + at[C_STATS],
          .crc32c = null[C_CRC] ? NULL : base + at[C_CRC],
      };
      status = bf_delta_snapshot_apply_add(s, &add, err);
      if (status != BF_OK) bf_error_prefix(err, "%s", path);
    } else if (status == BF_EINVAL) {
      status = bf_error_set(err, BF_ECORRUPT, "%s: an add action holds a NUL byte", path);
    } else if (status == BF_ENOMEM) {
      status = bf_error_set(err, BF_ENOMEM, "out of memory reading %s", path);
    }
    free(key_at);
    free(value_at);
    free(value_null);
    free(key_ptr);
    free(value_ptr);
  }
  return status;
}

#define ACTION_KIND                                                                             \
  "CASE WHEN \"add\" IS NOT NULL THEN 3 WHEN txn IS NOT NULL THEN 2 WHEN \"remove\" IS NOT NULL " \
  "THEN 4 WHEN metaData IS NOT NULL THEN 1 WHEN protocol IS NOT NULL THEN 0 END"
#define ACTION_JSON                                                                             \
  "CASE WHEN txn IS NOT NULL THEN json_object('txn', txn) "                                    \
  "WHEN \"remove\" IS NOT NULL THEN json_object('remove', \"remove\") "                        \
  "WHEN metaData IS NOT NULL THEN json_object('metaData', metaData) "                          \
  "WHEN protocol IS NOT NULL THEN json_object('protocol', protocol) END::VARCHAR"

/* Runs the read; *bind_failed when the statement did not prepare (the file's
 * columns are not the ones this query names). */
static int run_read(duckdb_connection conn, const char *sql, duckdb_result *result,
                    int *bind_failed, const char *path, bf_error_t *err) {
  duckdb_prepared_statement stmt;
  *bind_failed = 0;
  if (duckdb_prepare(conn, sql, &stmt) != DuckDBSuccess) {
    *bind_failed = 1;
    int status = bf_error_set(err, BF_ECORRUPT, "cannot read checkpoint %s: %s", path,
                              duckdb_prepare_error(stmt));
    duckdb_destroy_prepare(&stmt);
    return status;
  }
  int status = BF_OK;
  if (duckdb_execute_prepared(stmt, result) != DuckDBSuccess)
    status = bf_error_set(err, BF_ECORRUPT, "cannot read checkpoint %s: %s", path,
                          duckdb_result_error(result));
  duckdb_destroy_prepare(&stmt);
  return status;
}

/* Runs one read (typed or generic) and applies its rows to into. */
static int read_into(duckdb_connection conn, const char *sql, int is_typed, const char *path,
                     bf_delta_snapshot_t *into, int *bind_failed, int *out_of_order,
                     bf_error_t *err) {
  duckdb_result result;
  int status = run_read(conn, sql, &result, bind_failed, path, err);
  if (status != BF_OK && *bind_failed) return status;
  bf_buffer_t buf;
  bf_buffer_init(&buf);
  duckdb_data_chunk chunk;
  while (status == BF_OK && !*out_of_order && (chunk = duckdb_fetch_chunk(result)) != NULL) {
    if (is_typed) {
      status = apply_chunk(chunk, into, path, &buf, out_of_order, err);
    } else {
      duckdb_vector v = duckdb_data_chunk_get_vector(chunk, 0);
      idx_t n = duckdb_data_chunk_get_size(chunk);
      for (idx_t r = 0; r < n && status == BF_OK; r++) {
        size_t at;
        int null;
        buf.size = 0;
        status = cell_string(v, r, &buf, &at, &null);
        if (status == BF_OK && !null)
          status = bf_delta_snapshot_apply_json(into, (const char *)buf.data, buf.size - 1, path, err);
        else if (status != BF_OK)
          status = bf_error_set(err, BF_ECORRUPT, "%s: an action holds a NUL byte", path);
      }
    }
    duckdb_destroy_data_chunk(&chunk);
  }
  duckdb_destroy_result(&result);
  bf_buffer_reset(&buf);
  return status;
}

int bf_engine_checkpoint_read(bf_engine_t *engine, const char *path, bf_delta_snapshot_t *into,
                              bf_error_t *err) {
  /* One scan; each row holds one action. Adds (nearly all rows) come as typed
   * columns: turning them into JSON text and parsing it back cost most of a
   * 5,000-file table's open. Protocol and metaData (partition columns, needed by
   * the adds) must come first: in file order they do in our checkpoints (no sort,
   * about a third of the query's time); when an add comes before them the file is
   * read again sorted: protocol, metaData, txn, add, then the tombstones. */
  bf_buffer_t typed, generic;
  bf_buffer_init(&typed);
  bf_buffer_init(&generic);
  bf__sql_append(&typed, "SELECT " ACTION_KIND "::INTEGER AS k, CASE WHEN \"add\" IS NULL THEN "
                         ACTION_JSON " END, \"add\".path, \"add\".size, \"add\".modificationTime, "
                         "\"add\".stats, map_extract_value(\"add\".tags, '" BF_DELTA_TAG_CRC32C
                         "'), map_keys(\"add\".partitionValues), "
                         "map_values(\"add\".partitionValues) FROM ");
  bf__sql_string(&typed, path);
  bf__sql_append(&typed, " WHERE k IS NOT NULL");
  size_t unordered_len = typed.size;
  bf__sql_append(&typed, " ORDER BY k");
  /* Other writers' checkpoints may lack a column named above (tags, stats):
   * every action as JSON, whatever its fields. */
  bf__sql_append(&generic, "SELECT CASE WHEN \"add\" IS NOT NULL THEN json_object('add', \"add\") "
                           "ELSE " ACTION_JSON " END AS line, " ACTION_KIND " AS k FROM ");
  bf__sql_string(&generic, path);
  bf__sql_append(&generic, " WHERE k IS NOT NULL ORDER BY k");
  const char *ordered_sql = bf__sql_cstr(&typed), *generic_sql = bf__sql_cstr(&generic);
  char *unordered_sql = ordered_sql ? strndup(ordered_sql, unordered_len) : NULL;
  duckdb_connection conn;
  if (unordered_sql == NULL || generic_sql == NULL ||
      duckdb_connect(engine->ingest_db, &conn) != DuckDBSuccess) {
    free(unordered_sql);
    bf_buffer_reset(&typed);
    bf_buffer_reset(&generic);
    return bf_error_set(err, BF_EINTERNAL, "cannot read checkpoint %s", path);
  }
  int bind_failed = 0, out_of_order = 0;
  int status = read_into(conn, unordered_sql, 1, path, into, &bind_failed, &out_of_order, err);
  if (status == BF_OK && out_of_order) {
    bf_delta_snapshot_reset(into);
    out_of_order = 0;
    status = read_into(conn, ordered_sql, 1, path, into, &bind_failed, &out_of_order, err);
    if (status == BF_OK && out_of_order) /* sorted, an add still before metaData: none */
      status = bf_error_set(err, BF_ECORRUPT, "checkpoint %s has adds but no metaData", path);
  }
  if (status != BF_OK && bind_failed) {
    bf_delta_snapshot_reset(into);
    status = read_into(conn, generic_sql, 0, path, into, &bind_failed, &out_of_order, err);
  }
  duckdb_disconnect(&conn);
  free(unordered_sql);
  bf_buffer_reset(&typed);
  bf_buffer_reset(&generic);
  return status;
}
