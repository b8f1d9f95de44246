/* Checkpoint content and log cleanup (_last_checkpoint lives in delta_path.c). The Parquet encoding of a
 * checkpoint is done by the caller (the server's DuckDB engine); this file only
 * says what goes in it: protocol, metaData, the txn of every producer and an add
 * per live file, as newline-delimited JSON actions. Log cleanup removes commits
 * and checkpoints that the newest checkpoint makes unnecessary, once they are
 * older than the retention period. */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delta/delta_actions.h"
#include "delta/delta_path.h"
#include "storage/storage.h"

/* Tombstones kept in checkpoints: 30 days, past any sensible vacuum retention. */
#define TOMBSTONE_KEEP_MS (30LL * 24 * 3600 * 1000)

int bf_delta_snapshot_actions(const bf_delta_snapshot_t *s, char **out, size_t *out_len,
                              size_t *n_actions, bf_error_t *err) {
  if (s->protocol_json == NULL || s->metadata_json == NULL)
    return bf_error_set(err, BF_EINVAL, "snapshot has no protocol or metaData");
  bf_buffer_t buf;
  bf_buffer_init(&buf);
  int status = BF_OK;
  const char *parts[] = {"{\"protocol\":", s->protocol_json, "}\n{\"metaData\":", s->metadata_json,
                         "}\n"};
  for (size_t i = 0; i < 5 && status == BF_OK; i++)
    status = bf_buffer_append(&buf, parts[i], strlen(parts[i]));
  int64_t now = bf_time_now_ms();
  for (size_t i = 0; i < s->n_txns && status == BF_OK; i++)
    status = bf__delta_txn_line(s->txn_app_ids[i], s->txn_versions[i], now, &buf);
  for (size_t i = 0; i < s->n_files && status == BF_OK; i++)
    status = bf__delta_add_line(s, &s->files[i], 0, &buf);
  /* Tombstones younger than TOMBSTONE_KEEP_MS, so vacuum (ours or another engine's)
   * still knows when a file was removed after the older commits are cleaned up. */
  size_t n_removes = 0;
  for (size_t i = 0; i < s->n_tombstones && status == BF_OK; i++) {
    if (s->tombstone_times_ms[i] < now - TOMBSTONE_KEEP_MS) continue;
    char *encoded = bf__delta_path_encode(s->tombstones[i]);
    json_t *rm = encoded ? json_pack("{s:{s:s, s:I, s:b}}", "remove", "path", encoded,
                                     "deletionTimestamp", (json_int_t)s->tombstone_times_ms[i],
                                     "dataChange", 0)
                         : NULL;
    free(encoded);
    char *text = rm ? json_dumps(rm, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(rm);
    if (text == NULL) {
      status = BF_ENOMEM;
      break;
    }
    status = bf_buffer_append(&buf, text, strlen(text));
    if (status == BF_OK) status = bf_buffer_append(&buf, "\n", 1);
    free(text);
    n_removes++;
  }
  if (status == BF_OK) status = bf_buffer_append(&buf, "", 1); /* NUL for text users */
  if (status != BF_OK) {
    bf_buffer_reset(&buf);
    return bf_error_set(err, status, "out of memory building checkpoint actions");
  }
  *out_len = buf.size - 1;
  *n_actions = 2 + s->n_txns + s->n_files + n_removes;
  uint8_t *data;
  size_t size;
  bf_buffer_take(&buf, &data, &size);
  *out = (char *)data;
  return BF_OK;
}

/* Parses "<20 digits>.json" or "<20 digits>.checkpoint.parquet"; -1 otherwise. */
static int64_t log_file_version(const char *name) {
  if (strlen(name) < 25) return -1;
  for (int i = 0; i < 20; i++)
    if (name[i] < '0' || name[i] > '9') return -1;
  if (strcmp(name + 20, ".json") != 0 && strcmp(name + 20, ".checkpoint.parquet") != 0) return -1;
  return strtoll(name, NULL, 10);
}

int bf_delta_log_cleanup(const char *table_dir, int64_t retention_ms, size_t *n_deleted,
                         bf_error_t *err) {
  *n_deleted = 0;
  int64_t newest = bf_delta_last_checkpoint_version(table_dir);
  if (newest < 0) return BF_OK;
  char checkpoint[PATH_MAX];
  bf_delta_checkpoint_path(table_dir, newest, checkpoint, sizeof checkpoint);
  int present = bf_storage_stat(checkpoint, NULL, NULL, err);
  if (present == BF_ENOTFOUND) return BF_OK; /* never delete what nothing replaces */
  if (present != BF_OK) return present;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/_delta_log", table_dir);
  bf_storage_list_t list;
  BF_RETURN_NOT_OK(bf_storage_list(dir, NULL, &list, err));
  int64_t cutoff_s = (bf_time_now_ms() - retention_ms) / 1000;
  for (size_t i = 0; i < list.len; i++) {
    int64_t v = log_file_version(list.items[i].name);
    if (v < 0 || v >= newest || list.items[i].mtime_s > cutoff_s) continue;
    char path[PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s", dir, list.items[i].name);
    bf_error_t ignored;
    bf_error_init(&ignored);
    if (bf_storage_delete(path, &ignored) == BF_OK) (*n_deleted)++;
  }
  bf_storage_list_free(&list);
  return BF_OK;
}
