/* A table's history and its state at an older version: the list of commits still
 * in _delta_log (what each did, from commitInfo and its add / remove actions), and
 * a snapshot replayed up to a given version (from the newest checkpoint at or
 * before it when one exists, else from the JSON commits starting at 0). */
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/util.h"
#include "storage/storage.h"
#include "delta/delta_path.h"
#include "delta/delta_snapshot.h"

/* Versions of the JSON commits (suffix ".json") or classic checkpoints (suffix
 * ".checkpoint.parquet") in _delta_log, sorted ascending. malloc'd. */
static int list_versions(const char *table_dir, const char *suffix, int64_t **out, size_t *n,
                         bf_error_t *err) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/_delta_log", table_dir);
  *out = NULL;
  *n = 0;
  bf_storage_list_t list;
  BF_RETURN_NOT_OK(bf_storage_list(dir, NULL, &list, err));
  if (list.len == 0) {
    bf_storage_list_free(&list);
    return bf_error_set(err, BF_ENOTFOUND, "%s has no Delta log", table_dir);
  }
  size_t cap = 0, suffix_len = strlen(suffix);
  int status = BF_OK;
  for (size_t i = 0; i < list.len && status == BF_OK; i++) {
    const char *name = list.items[i].name;
    size_t len = strlen(name);
    if (len != 20 + suffix_len || strcmp(name + 20, suffix) != 0) continue;
    char *end;
    long long v = strtoll(name, &end, 10);
    if (end != name + 20 || v < 0) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      int64_t *grown = realloc(*out, cap * sizeof *grown);
      if (grown == NULL) {
        status = bf_error_set(err, BF_ENOMEM, "out of memory");
        break;
      }
      *out = grown;
    }
    (*out)[(*n)++] = v;
  }
  bf_storage_list_free(&list);
  if (status != BF_OK) {
    free(*out);
    *out = NULL;
    *n = 0;
    return status;
  }
  for (size_t i = 1; i < *n; i++) /* insertion sort: logs are listed nearly in order */
    for (size_t j = i; j > 0 && (*out)[j - 1] > (*out)[j]; j--) {
      int64_t tmp = (*out)[j];
      (*out)[j] = (*out)[j - 1];
      (*out)[j - 1] = tmp;
    }
  return BF_OK;
}

static int64_t metric(json_t *metrics, const char *key) {
  json_t *v = json_object_get(metrics, key);
  if (json_is_integer(v)) return json_integer_value(v);
  if (json_is_string(v)) return strtoll(json_string_value(v), NULL, 10);
  return 0;
}

static int64_t stats_records(json_t *add) {
  const char *stats = json_string_value(json_object_get(add, "stats"));
  if (stats == NULL) return 0;
  json_t *parsed = json_loads(stats, 0, NULL);
  int64_t n = json_integer_value(json_object_get(parsed, "numRecords"));
  json_decref(parsed);
  return n;
}

/* Fills one entry from a commit file's text. Lines that are not JSON objects make
 * the log corrupt (as replay would say). */
static int describe_commit(const char *text, size_t len, const char *file_name,
                           bf_delta_version_info_t *v, int *has_metadata, bf_error_t *err) {
  size_t start = 0;
  int line_no = 0;
  int64_t deleted_rows = -1;
  while (start < len) {
    size_t end = start;
    while (end < len && text[end] != '\n') end++;
    line_no++;
    if (end > start) {
      json_t *action = json_loadb(text + start, end - start, JSON_ALLOW_NUL, NULL);
      if (!json_is_object(action)) {
        json_decref(action);
        return bf_error_set(err, BF_ECORRUPT, "%s line %d is not a JSON action", file_name, line_no);
      }
      json_t *a;
      if ((a = json_object_get(action, "commitInfo"))) {
        v->timestamp_ms = json_integer_value(json_object_get(a, "timestamp"));
        const char *op = json_string_value(json_object_get(a, "operation"));
        snprintf(v->operation, sizeof v->operation, "%s", op ? op : "");
        json_t *metrics = json_object_get(a, "operationMetrics");
        if (json_object_get(metrics, "numDeletedRows"))
          deleted_rows = metric(metrics, "numDeletedRows");
      } else if ((a = json_object_get(action, "add"))) {
        v->files_added++;
        json_t *dc = json_object_get(a, "dataChange");
        if (dc == NULL || json_is_true(dc)) {
          v->data_change = 1;
          v->rows_added += stats_records(a);
        }
      } else if ((a = json_object_get(action, "remove"))) {
        v->files_removed++;
        json_t *dc = json_object_get(a, "dataChange");
        if (dc == NULL || json_is_true(dc)) v->data_change = 1;
      } else if (json_object_get(action, "metaData")) {
        *has_metadata = 1;
      }
      json_decref(action);
    }
    start = end + 1;
  }
  if (deleted_rows >= 0) v->rows_removed = deleted_rows;
  return BF_OK;
}

int bf_delta_history(const char *table_dir, bf_delta_version_info_t **out, size_t *n_out,
                     bf_error_t *err) {
  *out = NULL;
  *n_out = 0;
  int64_t *versions = NULL;
  size_t n = 0;
  BF_RETURN_NOT_OK(list_versions(table_dir, ".json", &versions, &n, err));
  bf_delta_version_info_t *infos = calloc(n ? n : 1, sizeof *infos);
  if (infos == NULL) {
    free(versions);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  /* Schema versions count metaData actions from version 0; when the log's start
   * was cleaned up they are unknown (-1). */
  int64_t schema_version = n && versions[0] == 0 ? -1 : -2;
  int status = BF_OK;
  size_t kept = 0;
  for (size_t i = 0; i < n && status == BF_OK; i++) {
    char path[PATH_MAX];
    bf__delta_commit_path(table_dir, versions[i], path, sizeof path);
    char *text = NULL;
    size_t size = 0;
    status = bf_storage_read(path, &text, &size, err);
    if (status == BF_ENOTFOUND) { /* removed by log cleanup since the listing */
      status = BF_OK;
      continue;
    }
    if (status != BF_OK) break;
    bf_delta_version_info_t *v = &infos[kept];
    v->version = versions[i];
    int has_metadata = 0;
    status = describe_commit(text, size, path, v, &has_metadata, err);
    free(text);
    if (status != BF_OK) break;
    if (has_metadata && schema_version >= -1) schema_version++;
    v->schema_version = schema_version >= 0 ? schema_version : -1;
    kept++;
  }
  free(versions);
  if (status != BF_OK) {
    free(infos);
    return status;
  }
  *out = infos;
  *n_out = kept;
  return BF_OK;
}

int bf_delta_snapshot_load_at(const char *table_dir, int64_t version,
                              bf_delta_checkpoint_reader_fn read_checkpoint, void *ctx,
                              bf_delta_snapshot_t *out, bf_error_t *err) {
  if (version < 0)
    return bf_error_set(err, BF_EINVAL, "version %lld is negative (versions start at 0)",
                        (long long)version);
  int64_t *commits = NULL, *checkpoints = NULL;
  size_t n_commits = 0, n_checkpoints = 0;
  BF_RETURN_NOT_OK(list_versions(table_dir, ".json", &commits, &n_commits, err));
  int status = list_versions(table_dir, ".checkpoint.parquet", &checkpoints, &n_checkpoints, err);
  if (status != BF_OK) {
    free(commits);
    return status;
  }
  int64_t latest = n_commits ? commits[n_commits - 1] : -1;
  if (n_checkpoints && checkpoints[n_checkpoints - 1] > latest)
    latest = checkpoints[n_checkpoints - 1];
  int has_zero = n_commits && commits[0] == 0;
  int64_t oldest = has_zero ? 0 : n_checkpoints ? checkpoints[0] : (n_commits ? commits[0] : -1);
  int64_t base = -1; /* newest checkpoint <= version */
  for (size_t i = 0; i < n_checkpoints; i++)
    if (checkpoints[i] <= version) base = checkpoints[i];
  free(commits);
  free(checkpoints);
  if (version > latest)
    return bf_error_set(err, BF_ENOTFOUND, "version %lld does not exist (the latest is %lld)",
                        (long long)version, (long long)latest);
  bf_delta_snapshot_t s = {0};
  s.version = -1;
  if (base >= 0 && read_checkpoint != NULL) {
    char path[PATH_MAX];
    bf_delta_checkpoint_path(table_dir, base, path, sizeof path);
    bf_error_t ignored;
    bf_error_init(&ignored);
    if (read_checkpoint(ctx, path, &s, &ignored) == BF_OK && s.schema_string)
      s.version = base;
    else {
      bf_delta_snapshot_reset(&s);
      s.version = -1;
    }
  }
  if (s.version < 0 && !has_zero)
    return bf_error_set(err, BF_ENOTFOUND,
                        "version %lld is no longer readable: the log before it was cleaned up "
                        "(the oldest readable version is %lld)",
                        (long long)version, (long long)oldest);
  while (s.version < version) {
    int found = 0;
    status = bf__delta_load_version(&s, table_dir, s.version + 1, &found, err);
    if (status == BF_OK && !found)
      status = bf_error_set(err, BF_ECORRUPT, "%s/_delta_log: commit %lld is missing", table_dir,
                            (long long)(s.version + 1));
    if (status != BF_OK) {
      bf_delta_snapshot_reset(&s);
      return status;
    }
  }
  if (s.schema_string == NULL) {
    bf_delta_snapshot_reset(&s);
    return bf_error_set(err, BF_ECORRUPT, "%s/_delta_log has no metaData action", table_dir);
  }
  *out = s;
  return BF_OK;
}
