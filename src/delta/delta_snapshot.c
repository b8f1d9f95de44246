/* Delta log replay: applies JSON commits 0..N in order to build the live file list,
 * the table metadata and the txn (exactly-once) versions. A gap in the commit
 * sequence or an unparseable action is reported as corruption naming the file. */
#include <errno.h>
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

void bf_delta_file_reset(bf_delta_file_t *file) {
  free(file->path);
  for (size_t i = 0; i < file->n_partition_values; i++) free(file->partition_values[i]);
  free(file->partition_values);
  free(file->stats_json);
  memset(file, 0, sizeof *file);
}

void bf_delta_snapshot_reset(bf_delta_snapshot_t *s) {
  free(s->protocol_json);
  free(s->metadata_json);
  free(s->schema_string);
  for (size_t i = 0; i < s->n_partition_columns; i++) free(s->partition_columns[i]);
  free(s->partition_columns);
  for (size_t i = 0; i < s->n_files; i++) bf_delta_file_reset(&s->files[i]);
  free(s->files);
  free(s->file_slots);
  for (size_t i = 0; i < s->n_txns; i++) free(s->txn_app_ids[i]);
  free(s->txn_app_ids);
  for (size_t i = 0; i < s->n_tombstones; i++) free(s->tombstones[i]);
  free(s->tombstones);
  free(s->tombstone_times_ms);
  free(s->txn_versions);
  free(s->txn_slots);
  memset(s, 0, sizeof *s);
  s->version = -1;
}

/* Slot of app_id in the txn index, or of the free slot ending its probe path. */
static size_t txn_slot_of(const bf_delta_snapshot_t *s, const char *app_id, int *found) {
  size_t mask = s->n_txn_slots - 1, i = (size_t)bf_hash_text(app_id) & mask;
  for (;;) {
    int64_t v = s->txn_slots[i];
    if (v < 0 || strcmp(s->txn_app_ids[v], app_id) == 0) {
      *found = v >= 0;
      return i;
    }
    i = (i + 1) & mask;
  }
}

static int txn_index_rebuild(bf_delta_snapshot_t *s, size_t cap) {
  int64_t *slots = malloc(cap * sizeof *slots);
  if (slots == NULL) return BF_ENOMEM;
  for (size_t i = 0; i < cap; i++) slots[i] = -1;
  free(s->txn_slots);
  s->txn_slots = slots;
  s->n_txn_slots = cap;
  for (size_t t = 0; t < s->n_txns; t++) {
    int found;
    slots[txn_slot_of(s, s->txn_app_ids[t], &found)] = (int64_t)t;
  }
  return BF_OK;
}

int64_t bf_delta_snapshot_txn_version(const bf_delta_snapshot_t *s, const char *app_id) {
  if (s->n_txn_slots == 0) return -1;
  int found;
  size_t slot = txn_slot_of(s, app_id, &found);
  return found ? s->txn_versions[s->txn_slots[slot]] : -1;
}

static int set_txn(bf_delta_snapshot_t *s, const char *app_id, int64_t version) {
  if ((s->n_txns + 1) * 2 > s->n_txn_slots)
    BF_RETURN_NOT_OK(txn_index_rebuild(s, s->n_txn_slots ? s->n_txn_slots * 2 : 16));
  int found;
  size_t slot = txn_slot_of(s, app_id, &found);
  if (found) {
    s->txn_versions[s->txn_slots[slot]] = version;
    return BF_OK;
  }
  if (s->n_txns == s->txns_cap) {
    size_t cap = s->txns_cap ? s->txns_cap * 2 : 8;
    char **ids = realloc(s->txn_app_ids, cap * sizeof *ids);
    if (ids == NULL) return BF_ENOMEM;
    s->txn_app_ids = ids;
    int64_t *versions = realloc(s->txn_versions, cap * sizeof *versions);
    if (versions == NULL) return BF_ENOMEM;
    s->txn_versions = versions;
    s->txns_cap = cap;
  }
  if ((s->txn_app_ids[s->n_txns] = strdup(app_id)) == NULL) return BF_ENOMEM;
  s->txn_versions[s->n_txns] = version;
  s->txn_slots[slot] = (int64_t)s->n_txns++;
  return BF_OK;
}

/* ---- path index: open addressing over s->files, so replaying N adds and removes
 * costs O(N), not O(N^2) ------------------------------------------------------------- */

/* Slot holding path, or of the first free slot on its probe path (*found = 0). */
static size_t slot_of(const bf_delta_snapshot_t *s, const char *path, int *found) {
  size_t mask = s->n_file_slots - 1, i = (size_t)bf_hash_text(path) & mask, free_slot = SIZE_MAX;
  for (;; i = (i + 1) & mask) {
    int64_t v = s->file_slots[i];
    if (v == -1) {
      *found = 0;
      return free_slot != SIZE_MAX ? free_slot : i;
    }
    if (v == -2) {
      if (free_slot == SIZE_MAX) free_slot = i;
    } else if (strcmp(s->files[v].path, path) == 0) {
      *found = 1;
      return i;
    }
  }
}

static int rebuild_index(bf_delta_snapshot_t *s, size_t cap) {
  int64_t *slots = malloc(cap * sizeof *slots);
  if (slots == NULL) return BF_ENOMEM;
  for (size_t i = 0; i < cap; i++) slots[i] = -1;
  free(s->file_slots);
  s->file_slots = slots;
  s->n_file_slots = cap;
  s->n_slots_used = 0;
  for (size_t f = 0; f < s->n_files; f++) {
    int found;
    slots[slot_of(s, s->files[f].path, &found)] = (int64_t)f;
    s->n_slots_used++;
  }
  return BF_OK;
}

/* Makes room for one more file in the index (rebuilding drops tombstones). */
static int reserve_index(bf_delta_snapshot_t *s) {
  if ((s->n_slots_used + 1) * 2 <= s->n_file_slots) return BF_OK;
  size_t cap = 64;
  while ((s->n_files + 1) * 4 > cap) cap *= 2;
  return rebuild_index(s, cap);
}

static void remove_file(bf_delta_snapshot_t *s, const char *path) {
  if (s->n_file_slots == 0) return;
  int found;
  size_t slot = slot_of(s, path, &found);
  if (!found) return;
  size_t i = (size_t)s->file_slots[slot];
  s->file_slots[slot] = -2;
  bf_delta_file_reset(&s->files[i]);
  size_t last = --s->n_files;
  if (i != last) {
    s->files[i] = s->files[last];
    size_t moved = slot_of(s, s->files[i].path, &found);
    s->file_slots[moved] = (int64_t)i;
  }
}

static int apply_metadata(bf_delta_snapshot_t *s, json_t *meta) {
  const char *schema_string = json_string_value(json_object_get(meta, "schemaString"));
  json_t *parts = json_object_get(meta, "partitionColumns");
  if (schema_string == NULL || !json_is_array(parts)) return BF_ECORRUPT;
  free(s->schema_string);
  for (size_t i = 0; i < s->n_partition_columns; i++) free(s->partition_columns[i]);
  free(s->partition_columns);
  s->n_partition_columns = 0;
  s->schema_string = strdup(schema_string);
  s->partition_columns = calloc(json_array_size(parts) + 1, sizeof *s->partition_columns);
  if (s->schema_string == NULL || s->partition_columns == NULL) return BF_ENOMEM;
  size_t i;
  json_t *col;
  json_array_foreach(parts, i, col) {
    if (!json_is_string(col)) return BF_ECORRUPT;
    if ((s->partition_columns[i] = strdup(json_string_value(col))) == NULL) return BF_ENOMEM;
    s->n_partition_columns = i + 1;
  }
  return BF_OK;
}

/* Takes ownership of path on success. */
static int add_tombstone(bf_delta_snapshot_t *s, char *path, int64_t when_ms) {
  char **paths = realloc(s->tombstones, (s->n_tombstones + 1) * sizeof *paths);
  if (paths == NULL) return BF_ENOMEM;
  s->tombstones = paths;
  int64_t *times = realloc(s->tombstone_times_ms, (s->n_tombstones + 1) * sizeof *times);
  if (times == NULL) return BF_ENOMEM;
  s->tombstone_times_ms = times;
  paths[s->n_tombstones] = path;
  times[s->n_tombstones++] = when_ms;
  return BF_OK;
}

static int keep_json(char **slot, json_t *value) {
  char *text = json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (text == NULL) return BF_ENOMEM;
  free(*slot);
  *slot = text;
  return BF_OK;
}

/* ---- numRecords of an add's stats without parsing the whole object: replaying
 * thousands of adds spent a third of its time building and freeing the trees of
 * minValues / maxValues / nullCount. A scan of the top-level members, skipping
 * nested values. 0 when absent, not an integer, or the text is not an object. */

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

/* p at an opening quote: the character after the closing one, or NULL. */
static const char *skip_string(const char *p) {
  for (p++; *p; p++) {
    if (*p == '\\') {
      if (*++p == '\0') return NULL;
    } else if (*p == '"') {
      return p + 1;
    }
  }
  return NULL;
}

/* p at a value: the character after it, or NULL when malformed. */
static const char *skip_value(const char *p) {
  if (*p == '"') return skip_string(p);
  if (*p != '{' && *p != '[') {
    while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\t' &&
           *p != '\r')
      p++;
    return *p ? p : NULL;
  }
  int depth = 0;
  for (; *p; p++) {
    if (*p == '"') {
      if ((p = skip_string(p)) == NULL) return NULL;
      p--;
    } else if (*p == '{' || *p == '[') {
      depth++;
    } else if ((*p == '}' || *p == ']') && --depth == 0) {
      return p + 1;
    }
  }
  return NULL;
}

static int64_t stats_num_records(const char *stats) {
  static const char key[] = "\"numRecords\"";
  const char *p = skip_ws(stats);
  if (*p++ != '{') return 0;
  for (;;) {
    p = skip_ws(p);
    if (*p != '"') return 0;
    int match = strncmp(p, key, sizeof key - 1) == 0;
    if ((p = skip_string(p)) == NULL) return 0;
    p = skip_ws(p);
    if (*p++ != ':') return 0;
    p = skip_ws(p);
    if (match) {
      char *end;
      errno = 0;
      long long v = strtoll(p, &end, 10);
      if (end == p || errno != 0 || *end == '.' || *end == 'e' || *end == 'E') return 0;
      end = (char *)skip_ws(end);
      return *end == ',' || *end == '}' ? (int64_t)v : 0;
    }
    if ((p = skip_value(p)) == NULL) return 0;
    p = skip_ws(p);
    if (*p++ != ',') return 0;
  }
}

/* The live file an add action names (replacing one at the same path). */
static int put_file(bf_delta_snapshot_t *s, const bf_delta_add_action_t *a) {
  if (a->path == NULL) return BF_ECORRUPT;
  bf_delta_file_t f = {0};
  f.path = bf__delta_path_decode(a->path);
  if (f.path == NULL) return BF_ECORRUPT;
  remove_file(s, f.path); /* re-adding a path replaces it */
  f.n_partition_values = s->n_partition_columns;
  f.partition_values = calloc(s->n_partition_columns + 1, sizeof *f.partition_values);
  int status = f.partition_values ? BF_OK : BF_ENOMEM;
  for (size_t i = 0; i < s->n_partition_columns && status == BF_OK; i++) {
    const char *v = NULL;
    for (size_t k = 0; k < a->n_partition_entries && v == NULL; k++)
      if (a->partition_keys[k] && strcmp(a->partition_keys[k], s->partition_columns[i]) == 0)
        v = a->partition_values[k];
    if (v && v[0] && (f.partition_values[i] = strdup(v)) == NULL) status = BF_ENOMEM;
  }
  f.size_bytes = a->size_bytes;
  f.modification_time_ms = a->modification_time_ms;
  if (a->crc32c && strlen(a->crc32c) == 8) memcpy(f.crc32c, a->crc32c, 9);
  if (status == BF_OK && a->stats_json) {
    if ((f.stats_json = strdup(a->stats_json)) == NULL) status = BF_ENOMEM;
    f.num_records = stats_num_records(a->stats_json);
  }
  if (status == BF_OK) status = reserve_index(s);
  if (status == BF_OK && s->n_files == s->files_cap) {
    size_t cap = s->files_cap ? s->files_cap * 2 : 16;
    bf_delta_file_t *grown = realloc(s->files, cap * sizeof *grown);
    if (grown == NULL) {
      status = BF_ENOMEM;
    } else {
      s->files = grown;
      s->files_cap = cap;
    }
  }
  if (status == BF_OK) {
    int found;
    s->file_slots[slot_of(s, f.path, &found)] = (int64_t)s->n_files;
    s->n_slots_used++;
    s->files[s->n_files++] = f;
    return BF_OK;
  }
  bf_delta_file_reset(&f);
  return status;
}

int bf_delta_snapshot_apply_add(bf_delta_snapshot_t *s, const bf_delta_add_action_t *add,
                                bf_error_t *err) {
  int status = put_file(s, add);
  if (status == BF_ECORRUPT)
    return bf_error_set(err, status, "add action with a missing or malformed path");
  if (status != BF_OK) return bf_error_set(err, status, "out of memory");
  return BF_OK;
}

static int apply_add(bf_delta_snapshot_t *s, json_t *add) {
  json_t *values = json_object_get(add, "partitionValues");
  size_t n = json_is_object(values) ? json_object_size(values) : 0;
  const char **keys = calloc(n + 1, sizeof *keys), **vals = calloc(n + 1, sizeof *vals);
  int status = keys && vals ? BF_OK : BF_ENOMEM;
  if (status == BF_OK && n) {
    size_t i = 0;
    const char *key;
    json_t *value;
    json_object_foreach(values, key, value) {
      if (i == n) break;
      keys[i] = key;
      vals[i++] = json_string_value(value);
    }
    n = i;
  }
  bf_delta_add_action_t a = {
      .path = json_string_value(json_object_get(add, "path")),
      .partition_keys = keys,
      .partition_values = vals,
      .n_partition_entries = n,
      .size_bytes = json_integer_value(json_object_get(add, "size")),
      .modification_time_ms = json_integer_value(json_object_get(add, "modificationTime")),
      .stats_json = json_string_value(json_object_get(add, "stats")),
      .crc32c = json_string_value(json_object_get(json_object_get(add, "tags"), BF_DELTA_TAG_CRC32C)),
  };
  if (status == BF_OK) status = put_file(s, &a);
  free(keys);
  free(vals);
  return status;
}

int bf__delta_apply_commit(bf_delta_snapshot_t *s, const char *text, size_t len,
                           const char *file_name, bf_error_t *err) {
  size_t start = 0;
  int line_no = 0;
  while (start < len) {
    size_t end = start;
    while (end < len && text[end] != '\n') end++;
    line_no++;
    if (end > start) {
      json_error_t jerr;
      json_t *action = json_loadb(text + start, end - start, JSON_ALLOW_NUL, &jerr);
      if (!json_is_object(action)) {
        json_decref(action);
        return bf_error_set(err, BF_ECORRUPT, "%s line %d is not a JSON action", file_name, line_no);
      }
      int status = BF_OK;
      json_t *v;
      if ((v = json_object_get(action, "metaData"))) {
        status = apply_metadata(s, v);
        if (status == BF_OK) status = keep_json(&s->metadata_json, v);
      } else if ((v = json_object_get(action, "protocol"))) {
        status = keep_json(&s->protocol_json, v);
      } else if ((v = json_object_get(action, "add"))) {
        status = apply_add(s, v);
      } else if ((v = json_object_get(action, "remove"))) {
        const char *encoded = json_string_value(json_object_get(v, "path"));
        char *path = encoded ? bf__delta_path_decode(encoded) : NULL;
        if (path == NULL) {
          status = BF_ECORRUPT;
        } else {
          remove_file(s, path);
          status = add_tombstone(s, path, json_integer_value(json_object_get(v, "deletionTimestamp")));
        }
        if (status != BF_OK) free(path);
      } else if ((v = json_object_get(action, "txn"))) {
        const char *app_id = json_string_value(json_object_get(v, "appId"));
        json_t *version = json_object_get(v, "version");
        if (app_id == NULL || !json_is_integer(version)) status = BF_ECORRUPT;
        else status = set_txn(s, app_id, json_integer_value(version));
      }
      json_decref(action);
      if (status == BF_ECORRUPT)
        return bf_error_set(err, status, "%s line %d: malformed action", file_name, line_no);
      if (status != BF_OK) return bf_error_set(err, status, "out of memory replaying %s", file_name);
    }
    start = end + 1;
  }
  return BF_OK;
}

int bf_delta_snapshot_apply_json(bf_delta_snapshot_t *s, const char *text, size_t len,
                                 const char *source, bf_error_t *err) {
  return bf__delta_apply_commit(s, text, len, source, err);
}

/* Highest commit version present in _delta_log after version `after` (-1: all),
 * or -1 when there is none: one listing that starts after that commit's name. */
static int max_commit_version(const char *table_dir, int64_t after, int64_t *out, bf_error_t *err) {
  char dir[PATH_MAX], start[32];
  snprintf(dir, sizeof dir, "%s/_delta_log", table_dir);
  snprintf(start, sizeof start, "%020lld.json", (long long)after);
  bf_storage_list_t list;
  BF_RETURN_NOT_OK(bf_storage_list(dir, after >= 0 ? start : NULL, &list, err));
  int64_t max = -1;
  for (size_t i = 0; i < list.len; i++) {
    const char *name = list.items[i].name;
    if (strlen(name) != 25 || strcmp(name + 20, ".json") != 0) continue;
    char *end;
    long long v = strtoll(name, &end, 10);
    if (end == name + 20 && v > max) max = v;
  }
  bf_storage_list_free(&list);
  *out = max;
  return BF_OK;
}

int bf__delta_load_version(bf_delta_snapshot_t *s, const char *table_dir, int64_t version,
                           int *found, bf_error_t *err) {
  char path[PATH_MAX];
  bf__delta_commit_path(table_dir, version, path, sizeof path);
  char *text;
  size_t size;
  int status = bf_storage_read(path, &text, &size, err);
  if (status == BF_ENOTFOUND) {
    *found = 0;
    return BF_OK;
  }
  if (status != BF_OK) return status;
  *found = 1;
  status = bf__delta_apply_commit(s, text, size, path, err);
  free(text);
  if (status == BF_OK) s->version = version;
  return status;
}

/* Starts s from the checkpoint named by _last_checkpoint. *loaded = 0 when there
 * is none or it cannot be read (the caller then replays the JSON commits). */
static int load_checkpoint(bf_delta_snapshot_t *s, const char *table_dir,
                           bf_delta_checkpoint_reader_fn read_checkpoint, void *ctx, int *loaded) {
  *loaded = 0;
  int64_t version = bf_delta_last_checkpoint_version(table_dir);
  if (version < 0 || read_checkpoint == NULL) return BF_OK;
  char path[PATH_MAX];
  bf_delta_checkpoint_path(table_dir, version, path, sizeof path);
  bf_error_t ignored;
  bf_error_init(&ignored);
  int status = read_checkpoint(ctx, path, s, &ignored);
  if (status != BF_OK || s->schema_string == NULL) {
    bf_delta_snapshot_reset(s);
    return BF_OK;
  }
  s->version = version;
  *loaded = 1;
  return BF_OK;
}

int bf_delta_snapshot_load_with(const char *table_dir, bf_delta_checkpoint_reader_fn read_checkpoint,
                                void *ctx, bf_delta_snapshot_t *out, bf_error_t *err) {
  bf_delta_snapshot_t s = {0};
  s.version = -1;
  int from_checkpoint = 0;
  load_checkpoint(&s, table_dir, read_checkpoint, ctx, &from_checkpoint);
  int64_t max = -1;
  int listed = max_commit_version(table_dir, s.version, &max, err);
  if (listed != BF_OK) {
    bf_delta_snapshot_reset(&s);
    return listed;
  }
  if (max < 0 && !from_checkpoint)
    return bf_error_set(err, BF_ENOTFOUND, "%s has no Delta log", table_dir);
  for (int64_t v = s.version + 1;; v++) {
    int found = 0;
    int status = bf__delta_load_version(&s, table_dir, v, &found, err);
    if (status != BF_OK) {
      bf_delta_snapshot_reset(&s);
      return status;
    }
    if (!found) break;
  }
  if (s.version < max) {
    int64_t missing = s.version + 1;
    bf_delta_snapshot_reset(&s);
    return bf_error_set(err, BF_ECORRUPT, "%s/_delta_log: commit %lld missing before %lld",
                        table_dir, (long long)missing, (long long)max);
  }
  if (s.schema_string == NULL) {
    bf_delta_snapshot_reset(&s);
    return bf_error_set(err, BF_ECORRUPT, "%s/_delta_log has no metaData action", table_dir);
  }
  *out = s;
  return BF_OK;
}

int bf_delta_snapshot_load(const char *table_dir, bf_delta_snapshot_t *out, bf_error_t *err) {
  return bf_delta_snapshot_load_with(table_dir, NULL, NULL, out, err);
}
