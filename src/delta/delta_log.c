/* Delta commits: version 0 (protocol + metaData) and blind appends of add actions
 * with an optional txn action. A commit is one JSON action per line, written with
 * bf_fs_write_new_file so it appears atomically and never overwrites a concurrent
 * writer's commit. Losing the race means reading the winner's commit and retrying
 * at the next version, unless the winner already recorded our txn (the batch was
 * applied) or changed the table's metadata (conflict). */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delta/delta_internal.h"

#define MAX_COMMIT_ATTEMPTS 100

static int append_line(bf_buffer_t *buf, json_t *action) {
  char *text = json_dumps(action, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(action);
  if (text == NULL) return BF_ENOMEM;
  int status = bf_buffer_append(buf, text, strlen(text));
  if (status == BF_OK) status = bf_buffer_append(buf, "\n", 1);
  free(text);
  return status;
}

int bf_delta_log_create(const char *table_dir, const bf_schema_t *schema,
                        const char *const *partition_columns, size_t n_partition_columns,
                        bf_error_t *err) {
  char log_dir[PATH_MAX];
  snprintf(log_dir, sizeof log_dir, "%s/_delta_log", table_dir);
  BF_RETURN_NOT_OK(bf_fs_mkdirs(log_dir, err));
  char *schema_string = NULL;
  BF_RETURN_NOT_OK(bf_delta_schema_string(schema, &schema_string, err));
  json_t *parts = json_array();
  json_array_append_new(parts, json_string(BF_SYSCOL_PARTITION_DATE));
  for (size_t i = 0; i < n_partition_columns; i++)
    json_array_append_new(parts, json_string(partition_columns[i]));
  char id[37];
  bf_uuid4_string(id);
  int64_t now = bf_time_now_ms();
  bf_buffer_t buf;
  bf_buffer_init(&buf);
  int status = append_line(
      &buf, json_pack("{s:{s:I, s:s, s:{s:s, s:o}, s:b}}", "commitInfo", "timestamp",
                      (json_int_t)now, "operation", "CREATE TABLE", "operationParameters", "mode",
                      "ErrorIfExists", "partitionBy", json_copy(parts), "isBlindAppend", 1));
  if (status == BF_OK)
    status = append_line(&buf, json_pack("{s:{s:i, s:i}}", "protocol", "minReaderVersion", 1,
                                         "minWriterVersion", 2));
  if (status == BF_OK)
    status = append_line(
        &buf, json_pack("{s:{s:s, s:{s:s, s:{}}, s:s, s:O, s:{}, s:I}}", "metaData", "id", id,
                        "format", "provider", "parquet", "options", "schemaString", schema_string,
                        "partitionColumns", parts, "configuration", "createdTime", (json_int_t)now));
  json_decref(parts);
  free(schema_string);
  if (status != BF_OK) {
    bf_buffer_reset(&buf);
    return bf_error_set(err, status, "out of memory building the first commit");
  }
  char path[PATH_MAX];
  bf__delta_commit_path(table_dir, 0, path, sizeof path);
  status = bf_fs_write_new_file(path, buf.data, buf.size, err);
  bf_buffer_reset(&buf);
  return status;
}

static int build_append(const bf_delta_snapshot_t *s, const bf_delta_file_t *files, size_t n_files,
                        const char *app_id, int64_t txn_version, bf_buffer_t *buf) {
  int64_t now = bf_time_now_ms();
  BF_RETURN_NOT_OK(append_line(
      buf, json_pack("{s:{s:I, s:s, s:{s:s}, s:b}}", "commitInfo", "timestamp", (json_int_t)now,
                     "operation", "WRITE", "operationParameters", "mode", "Append",
                     "isBlindAppend", 1)));
  if (app_id)
    BF_RETURN_NOT_OK(append_line(buf, json_pack("{s:{s:s, s:I, s:I}}", "txn", "appId", app_id,
                                                "version", (json_int_t)txn_version, "lastUpdated",
                                                (json_int_t)now)));
  for (size_t i = 0; i < n_files; i++) {
    const bf_delta_file_t *f = &files[i];
    json_t *values = json_object();
    for (size_t k = 0; k < s->n_partition_columns && k < f->n_partition_values; k++)
      json_object_set_new(values, s->partition_columns[k],
                          f->partition_values[k] ? json_string(f->partition_values[k]) : json_null());
    char *encoded = bf__delta_path_encode(f->path);
    if (encoded == NULL) {
      json_decref(values);
      return BF_ENOMEM;
    }
    json_t *add = json_pack("{s:s, s:o, s:I, s:I, s:b}", "path", encoded, "partitionValues", values,
                            "size", (json_int_t)f->size_bytes, "modificationTime",
                            (json_int_t)f->modification_time_ms, "dataChange", 1);
    free(encoded);
    if (add == NULL) return BF_ENOMEM;
    if (f->stats_json) json_object_set_new(add, "stats", json_string(f->stats_json));
    BF_RETURN_NOT_OK(append_line(buf, json_pack("{s:o}", "add", add)));
  }
  return BF_OK;
}

int bf_delta_log_append(const char *table_dir, bf_delta_snapshot_t *snapshot,
                        const bf_delta_file_t *files, size_t n_files, const char *app_id,
                        int64_t txn_version, int64_t *out_version, bf_error_t *err) {
  bf_buffer_t buf;
  bf_buffer_init(&buf);
  int status = build_append(snapshot, files, n_files, app_id, txn_version, &buf);
  if (status != BF_OK) {
    bf_buffer_reset(&buf);
    return bf_error_set(err, status, "out of memory building a commit");
  }
  for (int attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
    int64_t version = snapshot->version + 1;
    char path[PATH_MAX];
    bf__delta_commit_path(table_dir, version, path, sizeof path);
    status = bf_fs_write_new_file(path, buf.data, buf.size, err);
    if (status == BF_OK) {
      status = bf__delta_apply_commit(snapshot, (const char *)buf.data, buf.size, path, err);
      if (status == BF_OK) {
        snapshot->version = version;
        if (out_version) *out_version = version;
      }
      break;
    }
    if (status != BF_EEXIST) break;
    /* Another writer committed `version`: catch up with everything it wrote. */
    char *schema_before = snapshot->schema_string ? strdup(snapshot->schema_string) : NULL;
    int found = 1;
    while (status == BF_EEXIST || (status == BF_OK && found)) {
      status = bf__delta_load_version(snapshot, table_dir, snapshot->version + 1, &found, err);
    }
    int changed = schema_before && snapshot->schema_string &&
                  strcmp(schema_before, snapshot->schema_string) != 0;
    free(schema_before);
    if (status != BF_OK) break;
    if (changed) {
      status = bf_error_set(err, BF_ECONFLICT, "table metadata changed by a concurrent commit");
      break;
    }
    if (app_id && bf_delta_snapshot_txn_version(snapshot, app_id) >= txn_version) {
      status = bf_error_set(err, BF_EEXIST, "batch %lld of %s was already committed",
                            (long long)txn_version, app_id);
      break;
    }
    status = BF_EEXIST;
  }
  if (status == BF_EEXIST && !(app_id && bf_delta_snapshot_txn_version(snapshot, app_id) >= txn_version))
    status = bf_error_set(err, BF_ECONFLICT, "gave up committing after %d attempts",
                          MAX_COMMIT_ATTEMPTS);
  bf_buffer_reset(&buf);
  return status;
}
