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

#include "bifrost/util.h"
#include "storage/storage.h"
#include "delta/delta_actions.h"
#include "delta/delta_path.h"
#include "delta/delta_snapshot.h"

#define MAX_COMMIT_ATTEMPTS 100
#define BF_DELTA_ENGINE_INFO "bifrost-server/0.1.0"

int bf_delta_log_create(const char *table_dir, const bf_schema_t *schema,
                        const char *const *partition_columns, size_t n_partition_columns,
                        bf_error_t *err) {
  char log_dir[PATH_MAX];
  snprintf(log_dir, sizeof log_dir, "%s/_delta_log", table_dir);
  BF_RETURN_NOT_OK(bf_storage_mkdirs(log_dir, err));
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
  /* operationParameters is a string map for Spark: partitionBy is JSON text. */
  char *partition_by = json_dumps(parts, JSON_COMPACT);
  int status = partition_by ? BF_OK : BF_ENOMEM;
  if (status == BF_OK)
    status = bf__delta_append_line(
        &buf, json_pack("{s:{s:I, s:s, s:{s:s, s:s}, s:s, s:b, s:s}}", "commitInfo", "timestamp",
                        (json_int_t)now, "operation", "CREATE TABLE", "operationParameters", "mode",
                        "ErrorIfExists", "partitionBy", partition_by, "isolationLevel",
                        "Serializable", "isBlindAppend", 1, "engineInfo", BF_DELTA_ENGINE_INFO));
  free(partition_by);
  if (status == BF_OK)
    status = bf__delta_append_line(&buf, json_pack("{s:{s:i, s:i}}", "protocol", "minReaderVersion", 1,
                                         "minWriterVersion", 2));
  if (status == BF_OK)
    status = bf__delta_append_line(
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
  status = bf_storage_write_new(path, buf.data, buf.size, err);
  bf_buffer_reset(&buf);
  return status;
}

static const bf_delta_file_t *live_file(const bf_delta_snapshot_t *s, const char *path) {
  for (size_t i = 0; i < s->n_files; i++)
    if (strcmp(s->files[i].path, path) == 0) return &s->files[i];
  return NULL;
}

/* String-valued map entry (Spark reads operationMetrics as Map[String, String]). */
static void set_count(json_t *map, const char *key, int64_t value) {
  char text[32];
  snprintf(text, sizeof text, "%lld", (long long)value);
  json_object_set_new(map, key, json_string(text));
}

/* commitInfo as Spark's CommitInfo and delta-rs deserialise it: operationParameters
 * and operationMetrics are string maps; readVersion is the version this commit was
 * built on. */
static json_t *commit_info(const bf_delta_snapshot_t *s, const bf_delta_commit_t *c, int64_t now) {
  int64_t rows = 0, bytes_added = 0, bytes_removed = 0;
  for (size_t i = 0; i < c->n_adds; i++) {
    rows += c->adds[i].num_records;
    bytes_added += c->adds[i].size_bytes;
  }
  for (size_t i = 0; i < c->n_removes; i++) {
    const bf_delta_file_t *f = live_file(s, c->removes[i]);
    if (f) bytes_removed += f->size_bytes;
  }
  json_t *params = json_object(), *metrics = json_object();
  if (c->schema_string) { /* schema evolution: a metaData action, no files */
    json_object_set_new(params, "columns", json_string("[]"));
  } else if (strcmp(c->operation, "DELETE") == 0) { /* truncate: every live file removed */
    int64_t deleted = 0;
    for (size_t i = 0; i < c->n_removes; i++) {
      const bf_delta_file_t *f = live_file(s, c->removes[i]);
      if (f) deleted += f->num_records;
    }
    json_object_set_new(params, "predicate", json_string("[]"));
    set_count(metrics, "numRemovedFiles", (int64_t)c->n_removes);
    set_count(metrics, "numAddedFiles", (int64_t)c->n_adds);
    set_count(metrics, "numDeletedRows", deleted);
    set_count(metrics, "numRemovedBytes", bytes_removed);
  } else if (c->data_change) {
    json_object_set_new(params, "mode", json_string("Append"));
    json_t *parts = json_array();
    for (size_t k = 0; k < s->n_partition_columns; k++)
      json_array_append_new(parts, json_string(s->partition_columns[k]));
    char *text = json_dumps(parts, JSON_COMPACT);
    json_decref(parts);
    json_object_set_new(params, "partitionBy", json_string(text ? text : "[]"));
    free(text);
    set_count(metrics, "numFiles", (int64_t)c->n_adds);
    set_count(metrics, "numOutputRows", rows);
    set_count(metrics, "numOutputBytes", bytes_added);
  } else {
    json_object_set_new(params, "predicate", json_string("[]"));
    json_object_set_new(params, "zOrderBy", json_string("[]"));
    json_object_set_new(params, "auto", json_string("false"));
    set_count(metrics, "numAddedFiles", (int64_t)c->n_adds);
    set_count(metrics, "numRemovedFiles", (int64_t)c->n_removes);
    set_count(metrics, "numAddedBytes", bytes_added);
    set_count(metrics, "numRemovedBytes", bytes_removed);
    set_count(metrics, "numOutputRows", rows);
  }
  json_t *info = json_pack("{s:I, s:s, s:o, s:s, s:b, s:o, s:s}", "timestamp", (json_int_t)now,
                           "operation", c->operation, "operationParameters", params,
                           "isolationLevel", c->data_change ? "Serializable" : "SnapshotIsolation",
                           "isBlindAppend", c->n_removes == 0, "operationMetrics", metrics,
                           "engineInfo", BF_DELTA_ENGINE_INFO);
  if (info && s->version >= 0) json_object_set_new(info, "readVersion", json_integer(s->version));
  if (info && c->txn_id) json_object_set_new(info, "txnId", json_string(c->txn_id));
  return info;
}

static int build_commit(const bf_delta_snapshot_t *s, const bf_delta_commit_t *c, bf_buffer_t *buf) {
  int64_t now = bf_time_now_ms();
  json_t *info = commit_info(s, c, now);
  if (info == NULL) return BF_ENOMEM;
  BF_RETURN_NOT_OK(bf__delta_append_line(buf, json_pack("{s:o}", "commitInfo", info)));
  if (c->schema_string) { /* the current metaData with the new schema (same id) */
    json_t *meta = s->metadata_json ? json_loads(s->metadata_json, 0, NULL) : NULL;
    if (!json_is_object(meta)) {
      json_decref(meta);
      return BF_ENOMEM;
    }
    json_object_set_new(meta, "schemaString", json_string(c->schema_string));
    BF_RETURN_NOT_OK(bf__delta_append_line(buf, json_pack("{s:o}", "metaData", meta)));
  }
  for (size_t i = 0; i < c->n_txns; i++) {
    int64_t version = c->txn_versions[i];
    int64_t recorded = bf_delta_snapshot_txn_version(s, c->txn_app_ids[i]);
    BF_RETURN_NOT_OK(bf__delta_txn_line(c->txn_app_ids[i], version > recorded ? version : recorded,
                                        now, buf));
  }
  for (size_t i = 0; i < c->n_removes; i++) {
    const bf_delta_file_t *f = live_file(s, c->removes[i]);
    if (f == NULL) return BF_ECONFLICT;
    char *encoded = bf__delta_path_encode(f->path);
    if (encoded == NULL) return BF_ENOMEM;
    json_t *rm = json_pack("{s:s, s:I, s:b, s:b, s:o, s:I}", "path", encoded, "deletionTimestamp",
                           (json_int_t)now, "dataChange", c->data_change, "extendedFileMetadata", 1,
                           "partitionValues", bf__delta_partition_values_json(s, f), "size",
                           (json_int_t)f->size_bytes);
    free(encoded);
    if (rm == NULL) return BF_ENOMEM;
    BF_RETURN_NOT_OK(bf__delta_append_line(buf, json_pack("{s:o}", "remove", rm)));
  }
  for (size_t i = 0; i < c->n_adds; i++)
    BF_RETURN_NOT_OK(bf__delta_add_line(s, &c->adds[i], c->data_change, buf));
  return BF_OK;
}

int bf_delta_snapshot_refresh(const char *table_dir, bf_delta_snapshot_t *snapshot, int *advanced,
                              bf_error_t *err) {
  int64_t before = snapshot->version;
  int found = 1, status = BF_OK;
  while (status == BF_OK && found)
    status = bf__delta_load_version(snapshot, table_dir, snapshot->version + 1, &found, err);
  if (advanced) *advanced = snapshot->version > before;
  return status;
}

int bf_delta_log_commit(const char *table_dir, bf_delta_snapshot_t *snapshot,
                        const bf_delta_commit_t *commit, int64_t *out_version, bf_error_t *err) {
  bf_buffer_t buf;
  bf_buffer_init(&buf);
  int status = BF_EEXIST;
  for (int attempt = 0; attempt < MAX_COMMIT_ATTEMPTS && status == BF_EEXIST; attempt++) {
    buf.size = 0;
    status = build_commit(snapshot, commit, &buf);
    if (status == BF_ECONFLICT) {
      status = bf_error_set(err, BF_ECONFLICT,
                            "a file this %s commit removes was removed by a concurrent commit",
                            commit->operation);
      break;
    }
    if (status != BF_OK) {
      status = bf_error_set(err, status, "out of memory building a commit");
      break;
    }
    int64_t version = snapshot->version + 1;
    char path[PATH_MAX];
    bf__delta_commit_path(table_dir, version, path, sizeof path);
    status = bf_storage_write_new(path, buf.data, buf.size, err);
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
    char *metadata_before = snapshot->metadata_json ? strdup(snapshot->metadata_json) : NULL;
    char *protocol_before = snapshot->protocol_json ? strdup(snapshot->protocol_json) : NULL;
    int advanced = 0;
    status = bf_delta_snapshot_refresh(table_dir, snapshot, &advanced, err);
    int changed = metadata_before && snapshot->metadata_json &&
                  strcmp(metadata_before, snapshot->metadata_json) != 0;
    changed = changed || (protocol_before && snapshot->protocol_json &&
                          strcmp(protocol_before, snapshot->protocol_json) != 0);
    free(metadata_before);
    free(protocol_before);
    if (status != BF_OK) break;
    if (changed) {
      /* The caller decides again whether it may write this table (its features). */
      status = bf_error_set(err, BF_ECONFLICT,
                            "table metadata or protocol changed by a concurrent commit");
      break;
    }
    status = BF_EEXIST;
  }
  if (status == BF_EEXIST)
    status = bf_error_set(err, BF_ECONFLICT, "gave up committing after %d attempts",
                          MAX_COMMIT_ATTEMPTS);
  bf_buffer_reset(&buf);
  return status;
}

int bf_delta_log_append(const char *table_dir, bf_delta_snapshot_t *snapshot,
                        const bf_delta_file_t *files, size_t n_files, const char *app_id,
                        int64_t txn_version, int64_t *out_version, bf_error_t *err) {
  /* Catch up first: a concurrent writer may have recorded this batch already. */
  BF_RETURN_NOT_OK(bf_delta_snapshot_refresh(table_dir, snapshot, NULL, err));
  if (app_id && bf_delta_snapshot_txn_version(snapshot, app_id) >= txn_version)
    return bf_error_set(err, BF_EEXIST, "batch %lld of %s was already committed",
                        (long long)txn_version, app_id);
  bf_delta_commit_t c = {.operation = "WRITE", .data_change = 1, .adds = files, .n_adds = n_files};
  const char *ids[1] = {app_id};
  int64_t versions[1] = {txn_version};
  if (app_id) {
    c.txn_app_ids = ids;
    c.txn_versions = versions;
    c.n_txns = 1;
  }
  return bf_delta_log_commit(table_dir, snapshot, &c, out_version, err);
}

int bf_delta_commit_outcome_unknown(int status) {
  return status != BF_OK && status != BF_EEXIST && status != BF_ECONFLICT &&
         status != BF_ENOMEM && status != BF_EINVAL;
}

int bf_delta_log_find_commit(const char *table_dir, int64_t after_version, int64_t through_version,
                             const char *txn_id, int64_t *found_version, bf_error_t *err) {
  *found_version = -1;
  for (int64_t v = after_version + 1; v <= through_version; v++) {
    char path[PATH_MAX];
    bf__delta_commit_path(table_dir, v, path, sizeof path);
    char *text = NULL;
    size_t size = 0;
    int status = bf_storage_read(path, &text, &size, err);
    if (status == BF_ENOTFOUND) continue; /* cleaned up: not one we are looking for */
    if (status != BF_OK) return status;
    const char *end = memchr(text, '\n', size); /* commitInfo is the first line */
    json_t *line = json_loadb(text, end ? (size_t)(end - text) : size, 0, NULL);
    const char *id = json_string_value(json_object_get(json_object_get(line, "commitInfo"), "txnId"));
    int match = id && strcmp(id, txn_id) == 0;
    json_decref(line);
    free(text);
    if (match) {
      *found_version = v;
      return BF_OK;
    }
  }
  return BF_OK;
}
