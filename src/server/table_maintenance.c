/* Table upkeep (see table_store.h): checkpoints every N commits, compaction of
 * partitions with many small files (one OPTIMIZE commit per run: remove + add
 * with dataChange false), vacuum of data files no version references any more once they are
 * older than the retention period, and cleanup of log files that the newest
 * checkpoint replaces. All run under the table's work_mu, never under t->mu
 * except to copy the snapshot state they need and to commit. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bifrost/util.h"
#include "server/log.h"
#include "server/table_maintenance.h"
#include "storage/storage.h"
#include "server/table_store_internal.h"
#include "server/table_writer.h"
#include "server/write_lease.h"

/* ---- checkpoints ------------------------------------------------------------------ */

static int checkpoint(bf_store_t *s, bf_table_t *t, int64_t *out_version, bf_error_t *err) {
  bf_table_store_t *ts = t->store;
  char *actions = NULL;
  size_t len = 0, n_actions = 0;
  pthread_mutex_lock(&t->mu);
  int64_t version = t->snapshot.version;
  int64_t n_adds = (int64_t)t->snapshot.n_files;
  int status = version > ts->last_checkpoint_version
                   ? bf_delta_snapshot_actions(&t->snapshot, &actions, &len, &n_actions, err)
                   : BF_OK;
  pthread_mutex_unlock(&t->mu);
  if (status != BF_OK || actions == NULL) {
    *out_version = ts->last_checkpoint_version;
    return status;
  }
  char path[PATH_MAX];
  bf_delta_checkpoint_path(t->dir, version, path, sizeof path);
  int64_t size = -1;
  bf_error_t probe;
  bf_error_init(&probe);
  if (bf_storage_stat(path, &size, NULL, &probe) != BF_OK)
    status = bf_engine_checkpoint_write(s->engine, actions, len, path, err);
  free(actions);
  if (status == BF_OK && size < 0 && bf_storage_stat(path, &size, NULL, &probe) != BF_OK) size = -1;
  if (status == BF_OK && bf_delta_last_checkpoint_version(t->dir) < version)
    status = bf_delta_last_checkpoint_write(t->dir, version, (int64_t)n_actions, size, n_adds, err);
  if (status != BF_OK) return status;
  ts->last_checkpoint_version = version;
  bf_stats_add(&ts->counters.checkpoints, 1);
  *out_version = version;
  BF_LOG_INFO("table %s: checkpoint at version %lld (%zu actions)", t->fqn, (long long)version,
              n_actions);
  return BF_OK;
}

static int cleanup_log(bf_table_t *t, double retention_hours, int64_t *deleted, bf_error_t *err) {
  size_t n = 0;
  int status = bf_delta_log_cleanup(t->dir, (int64_t)(retention_hours * 3600e3), &n, err);
  *deleted += (int64_t)n;
  if (n) BF_LOG_INFO("table %s: removed %zu log files older than the newest checkpoint", t->fqn, n);
  return status;
}

void bf__store_maybe_checkpoint(bf_store_t *s, bf_table_t *t) {
  if (s->options.checkpoint_interval <= 0) return;
  pthread_mutex_lock(&t->mu);
  int due = t->snapshot.version - t->store->last_checkpoint_version >= s->options.checkpoint_interval;
  pthread_mutex_unlock(&t->mu);
  if (!due) return;
  bf_error_t err;
  bf_error_init(&err);
  int64_t version, deleted = 0;
  if (checkpoint(s, t, &version, &err) != BF_OK ||
      cleanup_log(t, s->options.log_retention_hours, &deleted, &err) != BF_OK)
    BF_LOG_WARN("table %s: checkpoint: %s", t->fqn, err.message);
}

/* ---- compaction ------------------------------------------------------------------------- */

static int file_copy(const bf_delta_file_t *src, bf_delta_file_t *dst) {
  memset(dst, 0, sizeof *dst);
  dst->path = strdup(src->path);
  dst->partition_values = calloc(src->n_partition_values + 1, sizeof *dst->partition_values);
  if (dst->path == NULL || dst->partition_values == NULL) return BF_ENOMEM;
  dst->n_partition_values = src->n_partition_values;
  for (size_t i = 0; i < src->n_partition_values; i++)
    if (src->partition_values[i] &&
        (dst->partition_values[i] = strdup(src->partition_values[i])) == NULL)
      return BF_ENOMEM;
  dst->size_bytes = src->size_bytes;
  dst->num_records = src->num_records;
  memcpy(dst->crc32c, src->crc32c, sizeof dst->crc32c);
  return BF_OK;
}

static int same_partition(const bf_delta_file_t *a, const bf_delta_file_t *b) {
  if (a->n_partition_values != b->n_partition_values) return 0;
  for (size_t i = 0; i < a->n_partition_values; i++) {
    const char *x = a->partition_values[i], *y = b->partition_values[i];
    if ((x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0)) return 0;
  }
  return 1;
}

/* Inputs and outputs of one OPTIMIZE run: every group's rewrite is collected and
 * the whole run is one commit. */
typedef struct compaction {
  const char **removes;
  size_t n_removes;
  bf_delta_file_t *adds;
  size_t n_adds;
  int64_t rows_in, rows_out;
  int64_t bytes_in, bytes_out; /* for the log line */
  double started;
} compaction_t;

/* Rewrites one partition's small files into new files (not committed yet). */
static int compact_group(bf_store_t *s, bf_table_t *t, bf_delta_file_t *inputs, size_t n,
                         compaction_t *run, bf_error_t *err) {
  bf_delta_file_t *outputs = NULL;
  size_t n_out = 0;
  int status = bf_engine_rewrite_files(s->engine, t->dir, &t->schema,
                                       (const char *const *)t->partition_columns,
                                       t->n_partition_columns, inputs, n, &outputs, &n_out, err);
  if (status != BF_OK) return status;
  int64_t rows_in = 0, rows_out = 0;
  for (size_t i = 0; i < n; i++) rows_in += inputs[i].num_records;
  for (size_t i = 0; i < n_out; i++) rows_out += outputs[i].num_records;
  const char **removes = realloc(run->removes, (run->n_removes + n) * sizeof *removes);
  if (removes) run->removes = removes;
  bf_delta_file_t *adds = removes ? realloc(run->adds, (run->n_adds + n_out + 1) * sizeof *adds) : NULL;
  if (adds) run->adds = adds;
  if (adds == NULL) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  else if (rows_in != rows_out)
    status = bf_error_set(err, BF_EINTERNAL, "compaction read %lld rows but wrote %lld",
                          (long long)rows_in, (long long)rows_out);
  if (status == BF_OK) status = bf__store_seal_files(t, outputs, n_out, err);
  if (status != BF_OK) {
    bf__store_remove_files(t, outputs, n_out);
    for (size_t i = 0; i < n_out; i++) bf_delta_file_reset(&outputs[i]);
    free(outputs);
    return status;
  }
  for (size_t i = 0; i < n; i++) run->bytes_in += inputs[i].size_bytes;
  for (size_t i = 0; i < n_out; i++) run->bytes_out += outputs[i].size_bytes;
  for (size_t i = 0; i < n; i++) run->removes[run->n_removes++] = inputs[i].path;
  memcpy(run->adds + run->n_adds, outputs, n_out * sizeof *outputs);
  run->n_adds += n_out;
  run->rows_in += rows_in;
  run->rows_out += rows_out;
  free(outputs);
  return BF_OK;
}

/* Commits a whole run as one OPTIMIZE commit (remove + add, dataChange false). */
static int compact_commit(bf_store_t *s, bf_table_t *t, compaction_t *run, int64_t *added,
                          int64_t *removed, bf_error_t *err) {
  bf_delta_commit_t c = {.operation = "OPTIMIZE", .data_change = 0, .adds = run->adds,
                         .n_adds = run->n_adds, .removes = run->removes,
                         .n_removes = run->n_removes};
  pthread_mutex_lock(&t->mu);
  int64_t version;
  int status = bf_delta_log_commit(t->dir, &t->snapshot, &c, &version, err);
  if (status == BF_OK) {
    bf_error_t view_err;
    bf_error_init(&view_err);
    if (bf__store_publish(s, t, NULL, &view_err) != BF_OK)
      BF_LOG_ERROR("table %s: view after compaction: %s", t->fqn, view_err.message);
    *added += (int64_t)run->n_adds;
    *removed += (int64_t)run->n_removes;
    bf_stats_add(&t->store->counters.compactions, 1);
    bf_stats_add(&t->store->counters.commits, 1);
    BF_LOG_INFO("table %s: compacted files=%zu into files=%zu rows=%lld bytes=%lld (from %lld) "
                "version=%lld duration_ms=%.0f", t->fqn, run->n_removes, run->n_adds,
                (long long)run->rows_out, (long long)run->bytes_out, (long long)run->bytes_in,
                (long long)version, (bf_time_monotonic() - run->started) * 1000);
  }
  pthread_mutex_unlock(&t->mu);
  return status;
}

static int optimize_files(bf_store_t *s, bf_table_t *t, const bf_write_lease_t *lease,
                          int min_files, int64_t *added, int64_t *removed, bf_error_t *err) {
  int64_t small = s->options.compact_target_bytes / 2;
  pthread_mutex_lock(&t->mu);
  /* Other writers' latest commits decide what may be rewritten (their protocol,
   * their files). */
  int advanced = 0;
  if (bf_delta_snapshot_refresh(t->dir, &t->snapshot, &advanced, err) != BF_OK ||
      (advanced && bf__store_publish(s, t, NULL, err) != BF_OK) ||
      bf_delta_snapshot_check_rewrite(&t->snapshot, err) != BF_OK) {
    bf_error_prefix(err, "table %s", t->fqn);
    pthread_mutex_unlock(&t->mu);
    return err->status;
  }
  size_t n = 0;
  bf_delta_file_t *files = calloc(t->snapshot.n_files + 1, sizeof *files);
  int status = files ? BF_OK : BF_ENOMEM;
  /* A file whose row count the log does not give (another writer wrote no stats)
   * is left alone: every rewrite is checked to keep the row count. */
  for (size_t i = 0; i < t->snapshot.n_files && status == BF_OK; i++)
    if (t->snapshot.files[i].size_bytes < small && t->snapshot.files[i].num_records > 0)
      status = file_copy(&t->snapshot.files[i], &files[n++]);
  pthread_mutex_unlock(&t->mu);
  if (status != BF_OK) {
    for (size_t i = 0; i < n; i++) bf_delta_file_reset(&files[i]);
    free(files);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  /* Never copy a damaged file into a fresh one: each input is checked first. */
  size_t intact = 0;
  for (size_t i = 0; i < n; i++) {
    char why[256];
    if (bf__store_file_intact(t, &files[i], why, sizeof why)) {
      files[intact++] = files[i];
      continue;
    }
    BF_LOG_ERROR("table %s: compaction leaves data file %s alone: %s (see the verify operation)",
                 t->fqn, files[i].path, why);
    bf_delta_file_reset(&files[i]);
  }
  n = intact;
  /* Group by partition: pick the first unhandled file, gather its partition. */
  char *done = calloc(n + 1, 1);
  bf_delta_file_t *group = calloc(n + 1, sizeof *group);
  compaction_t run = {0};
  run.started = bf_time_monotonic();
  if (done == NULL || group == NULL) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  for (size_t i = 0; i < n && status == BF_OK; i++) {
    if (done[i]) continue;
    size_t k = 0;
    int64_t bytes = 0;
    for (size_t j = i; j < n; j++) {
      if (done[j] || !same_partition(&files[i], &files[j])) continue;
      if (k > 0 && bytes + files[j].size_bytes > 2 * s->options.compact_target_bytes) continue;
      done[j] = 1;
      bytes += files[j].size_bytes;
      group[k++] = files[j];
    }
    if (k >= (size_t)min_files && k >= 2) status = compact_group(s, t, group, k, &run, err);
  }
  if (status == BF_OK && run.n_removes > 0 && bf_write_lease_check(lease, err) != BF_OK) {
    status = err->status; /* a run that outlived its lease: never committed */
    bf__store_remove_files(t, run.adds, run.n_adds);
  } else if (status == BF_OK && run.n_removes > 0) {
    status = compact_commit(s, t, &run, added, removed, err);
    if (status == BF_ECONFLICT) { /* another writer compacted first: fine */
      BF_LOG_INFO("table %s: compaction skipped: %s", t->fqn, err->message);
      bf__store_remove_files(t, run.adds, run.n_adds);
      status = BF_OK;
    } else if (status != BF_OK && !bf_delta_commit_outcome_unknown(status)) {
      bf__store_remove_files(t, run.adds, run.n_adds);
    } /* unknown outcome: the commit may name them; vacuum takes them if it does not */
  } else if (status != BF_OK) {
    bf__store_remove_files(t, run.adds, run.n_adds);
  }
  for (size_t i = 0; i < run.n_adds; i++) bf_delta_file_reset(&run.adds[i]);
  free(run.adds);
  free(run.removes);
  for (size_t i = 0; i < n; i++) bf_delta_file_reset(&files[i]);
  free(files);
  free(done);
  free(group);
  return status;
}

/* Compaction writes its files under a write lease, so no vacuum deletes them
 * before the OPTIMIZE commit names them. */
static int optimize(bf_store_t *s, bf_table_t *t, int min_files, int64_t *added, int64_t *removed,
                    bf_error_t *err) {
  bf_write_lease_t *lease = NULL;
  BF_RETURN_NOT_OK(bf_write_lease_take(t->dir, &lease, err));
  int status = optimize_files(s, t, lease, min_files, added, removed, err);
  bf_write_lease_release(lease);
  return status;
}

/* ---- vacuum ------------------------------------------------------------------------------- */

typedef struct vacuum_state {
  bf_table_t *t;
  char **live;        /* sorted */
  size_t n_live;
  char **tomb;        /* sorted with their times */
  int64_t *tomb_ms;
  size_t n_tomb;
  int64_t cutoff_ms;
  int64_t leased_after_ms; /* files modified after this may still be committed */
  int64_t deleted;
} vacuum_state_t;

static int compare_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int64_t tombstone_time(const vacuum_state_t *v, const char *rel) {
  int64_t when = -1;
  for (size_t i = 0; i < v->n_tomb; i++)
    if (strcmp(v->tomb[i], rel) == 0 && v->tomb_ms[i] > when) when = v->tomb_ms[i];
  return when;
}

static void vacuum_dir(vacuum_state_t *v, const char *rel_dir, int depth) {
  char dir[PATH_MAX * 3];
  snprintf(dir, sizeof dir, "%s%s%s", v->t->dir, rel_dir[0] ? "/" : "", rel_dir);
  bf_storage_list_t list;
  bf_error_t err;
  bf_error_init(&err);
  if (bf_storage_list(dir, NULL, &list, &err) != BF_OK) {
    BF_LOG_WARN("table %s: vacuum cannot list %s: %s", v->t->fqn, dir, err.message);
    return;
  }
  for (size_t i = 0; i < list.len; i++) {
    const bf_storage_entry_t *e = &list.items[i];
    if (e->name[0] == '.' || (depth == 0 && e->name[0] == '_')) continue;
    char rel[PATH_MAX + 256], path[PATH_MAX * 3];
    snprintf(rel, sizeof rel, "%s%s%s", rel_dir, rel_dir[0] ? "/" : "", e->name);
    snprintf(path, sizeof path, "%s/%s", v->t->dir, rel);
    if (e->is_dir) {
      if (depth < 32) vacuum_dir(v, rel, depth + 1);
      continue;
    }
    if (!bf_fs_name_has_suffix(e->name, ".parquet")) continue;
    const char *key = rel;
    if (bsearch(&key, v->live, v->n_live, sizeof *v->live, compare_str)) continue;
    int64_t removed_ms = tombstone_time(v, rel);
    /* A listing in whole seconds: the latest instant that second allows. */
    int64_t mtime_ms = e->mtime_ms ? e->mtime_ms : e->mtime_s * 1000 + 999;
    if (removed_ms > v->cutoff_ms || mtime_ms >= v->cutoff_ms) continue;
    if (mtime_ms >= v->leased_after_ms) continue; /* a live writer may commit it */
    bf_error_init(&err);
    if (bf_storage_delete(path, &err) == BF_OK) v->deleted++;
  }
  bf_storage_list_free(&list);
}

static int vacuum(bf_store_t *s, bf_table_t *t, double retention_hours, int64_t *deleted,
                  bf_error_t *err) {
  vacuum_state_t v = {.t = t};
  v.cutoff_ms = bf_time_now_ms() - (int64_t)(retention_hours * 3600e3);
  /* Leases first, then the log: a writer that released its lease before this
   * point has committed before the log is read. 2 s of slack for clocks of other
   * servers sharing the directory. */
  int64_t oldest_lease_ms = bf_write_lease_oldest_ms(t->dir);
  v.leased_after_ms = oldest_lease_ms == INT64_MAX || oldest_lease_ms == INT64_MIN
                          ? oldest_lease_ms : oldest_lease_ms - 2000;
  pthread_mutex_lock(&t->mu);
  /* Another server sharing the directory may have committed since the last
   * refresh: its new files must count as live. */
  int advanced = 0;
  int status = bf_delta_snapshot_refresh(t->dir, &t->snapshot, &advanced, err);
  if (status == BF_OK && advanced) status = bf__store_publish(s, t, NULL, err);
  if (status != BF_OK) {
    pthread_mutex_unlock(&t->mu);
    bf_error_prefix(err, "vacuum of %s: reading the log", t->fqn);
    return status;
  }
  v.live = calloc(t->snapshot.n_files + 1, sizeof *v.live);
  v.tomb = calloc(t->snapshot.n_tombstones + 1, sizeof *v.tomb);
  v.tomb_ms = calloc(t->snapshot.n_tombstones + 1, sizeof *v.tomb_ms);
  if (v.live == NULL || v.tomb == NULL || v.tomb_ms == NULL) status = BF_ENOMEM;
  for (size_t i = 0; i < t->snapshot.n_files && status == BF_OK; i++)
    if ((v.live[v.n_live++] = strdup(t->snapshot.files[i].path)) == NULL) status = BF_ENOMEM;
  for (size_t i = 0; i < t->snapshot.n_tombstones && status == BF_OK; i++) {
    v.tomb_ms[v.n_tomb] = t->snapshot.tombstone_times_ms[i];
    if ((v.tomb[v.n_tomb++] = strdup(t->snapshot.tombstones[i])) == NULL) status = BF_ENOMEM;
  }
  pthread_mutex_unlock(&t->mu);
  if (status == BF_OK) {
    qsort(v.live, v.n_live, sizeof *v.live, compare_str);
    vacuum_dir(&v, "", 0);
    *deleted += v.deleted;
    if (t->store) bf_stats_add(&t->store->counters.vacuumed_files, v.deleted);
    if (v.deleted)
      BF_LOG_INFO("table %s: vacuum deleted %lld unreferenced files", t->fqn, (long long)v.deleted);
  }
  for (size_t i = 0; i < v.n_live; i++) free(v.live[i]);
  for (size_t i = 0; i < v.n_tomb; i++) free(v.tomb[i]);
  free(v.live);
  free(v.tomb);
  free(v.tomb_ms);
  return status == BF_OK ? BF_OK : bf_error_set(err, status, "out of memory");
}

/* ---- verify ------------------------------------------------------------------------------------ */

/* Checks every live file (existence, size, recorded CRC-32C); the damaged ones are
 * listed in out->bad_files as "path: reason" and logged at ERROR. */
static int verify(bf_table_t *t, bf_store_result_t *out, bf_error_t *err) {
  pthread_mutex_lock(&t->mu);
  size_t n = t->snapshot.n_files;
  bf_delta_file_t *files = calloc(n + 1, sizeof *files);
  int status = files ? BF_OK : BF_ENOMEM;
  for (size_t i = 0; i < n && status == BF_OK; i++)
    status = file_copy(&t->snapshot.files[i], &files[i]);
  pthread_mutex_unlock(&t->mu);
  for (size_t i = 0; i < n && status == BF_OK; i++) {
    char why[256];
    out->files_verified++;
    if (bf__store_file_intact(t, &files[i], why, sizeof why)) continue;
    BF_LOG_ERROR("table %s: verify: data file %s is damaged: %s", t->fqn, files[i].path, why);
    char **grown = realloc(out->bad_files, (out->n_bad_files + 1) * sizeof *grown);
    char *line = malloc(strlen(files[i].path) + strlen(why) + 3);
    if (grown == NULL || line == NULL) {
      if (grown) out->bad_files = grown;
      free(line);
      status = BF_ENOMEM;
      break;
    }
    sprintf(line, "%s: %s", files[i].path, why);
    out->bad_files = grown;
    out->bad_files[out->n_bad_files++] = line;
  }
  for (size_t i = 0; i < n && files; i++) bf_delta_file_reset(&files[i]);
  free(files);
  if (status == BF_OK && out->n_bad_files == 0)
    BF_LOG_INFO("table %s: verify: %lld data files intact", t->fqn, (long long)out->files_verified);
  return status == BF_OK ? BF_OK : bf_error_set(err, status, "out of memory");
}

void bf_store_result_reset(bf_store_result_t *r) {
  for (size_t i = 0; i < r->n_bad_files; i++) free(r->bad_files[i]);
  free(r->bad_files);
  r->bad_files = NULL;
  r->n_bad_files = 0;
}

/* ---- entry points ---------------------------------------------------------------------------- */

void bf__store_auto_maintenance(bf_store_t *s, bf_table_t *t) {
  bf_error_t err;
  bf_error_init(&err);
  int64_t added = 0, removed = 0, deleted = 0;
  if (s->options.compact_min_files > 0 &&
      optimize(s, t, s->options.compact_min_files, &added, &removed, &err) != BF_OK)
    BF_LOG_WARN("table %s: compaction: %s", t->fqn, err.message);
  bf__store_maybe_checkpoint(s, t);
  int64_t now = bf_time_now_us();
  if (s->options.vacuum_retention_hours >= 0 && now - t->store->last_vacuum_us >= 3600LL * 1000000) {
    t->store->last_vacuum_us = now;
    if (vacuum(s, t, s->options.vacuum_retention_hours, &deleted, &err) != BF_OK)
      BF_LOG_WARN("table %s: vacuum: %s", t->fqn, err.message);
  }
}

int bf_store_maintain(bf_store_t *s, bf_table_t *t, unsigned ops, double retention_hours,
                      bf_store_result_t *out, bf_error_t *err) {
  memset(out, 0, sizeof *out);
  if ((ops & BF_MAINT_VACUUM) && retention_hours >= 0 &&
      retention_hours < BF_MIN_SAFE_RETENTION_HOURS && !s->options.unsafe_short_retention)
    return bf_error_set(err, BF_EPERM,
                        "a vacuum retention of %g hours is below the safe floor of %g hour: queries "
                        "and other servers may still read the files it would delete; the server "
                        "must be started with --unsafe-short-retention to allow it",
                        retention_hours, BF_MIN_SAFE_RETENTION_HOURS);
  pthread_mutex_lock(&t->mu);
  int status = bf_store_open_table(s, t, err);
  pthread_mutex_unlock(&t->mu);
  if (status != BF_OK) return status;
  bf_table_store_t *ts = t->store;
  pthread_mutex_lock(&ts->work_mu);
  if (ops & BF_MAINT_FLUSH) status = bf__store_flush(s, t, &out->rows_flushed, err);
  if (status == BF_OK && (ops & BF_MAINT_OPTIMIZE)) {
    status = optimize(s, t, 2, &out->files_added, &out->files_removed, err);
    if (status == BF_OK && !(ops & BF_MAINT_CHECKPOINT)) bf__store_maybe_checkpoint(s, t);
  }
  int64_t ckpt = ts->last_checkpoint_version;
  if (status == BF_OK && (ops & BF_MAINT_CHECKPOINT)) status = checkpoint(s, t, &ckpt, err);
  if (status == BF_OK && (ops & BF_MAINT_VERIFY)) status = verify(t, out, err);
  if (status == BF_OK && (ops & BF_MAINT_VACUUM))
    status = vacuum(s, t, retention_hours >= 0 ? retention_hours : s->options.vacuum_retention_hours,
                    &out->files_deleted, err);
  if (status == BF_OK && (ops & BF_MAINT_CLEANUP_LOG))
    status = cleanup_log(t, retention_hours >= 0 ? retention_hours : s->options.log_retention_hours,
                         &out->log_files_deleted, err);
  pthread_mutex_unlock(&ts->work_mu);
  pthread_mutex_lock(&t->mu);
  out->version = t->snapshot.version;
  pthread_mutex_unlock(&t->mu);
  out->checkpoint_version = ckpt > ts->last_checkpoint_version ? ckpt : ts->last_checkpoint_version;
  if (status != BF_OK) {
    bf_error_prefix(err, "maintaining %s", t->fqn);
    BF_LOG_WARN("%s", err->message); /* the operator sees it too, not only the caller */
  }
  return status;
}
