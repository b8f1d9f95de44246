/* The background writer and flushes (see table_store.h): every 200 ms (or when an
 * insert crosses a threshold) each open table is checked; a due generation is
 * written to Parquet under a write lease, checked, committed with the producers'
 * txn versions, swapped into the view, and only then its WAL segment deleted.
 * Each second the writer also reads other servers' commits, republishes a lagging
 * view, adopts orphaned WAL segments and notices a table whose directory was
 * removed; every 2 s it rescans the registry. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bifrost/ipc.h"
#include "bifrost/wal.h"
#include "server/log.h"
#include "server/table_store_internal.h"
#include "server/write_lease.h"

/* ---- flush ---------------------------------------------------------------------------------- */

static int flush_due(const bf_store_t *s, const bf_table_t *t, int64_t now_us) {
  const bf_table_store_t *ts = t->store;
  /* Half the memory bound in use: flush everything, before inserts are refused. */
  int memory_due = s->options.max_tail_bytes > 0 &&
                   bf_store_tail_bytes(s) * 2 >= s->options.max_tail_bytes;
  for (size_t i = 0; i < ts->n_gens; i++) {
    const bf_gen_t *g = ts->gens[i];
    if (g->sealed) return 1;
    if (g->rows > 0 && (memory_due || g->rows >= s->options.flush_rows ||
                        g->bytes >= s->options.flush_bytes ||
                        now_us - g->created_us >= (int64_t)(s->options.flush_interval_secs * 1e6)))
      return 1;
  }
  return 0;
}

/* Writes one sealed generation to Parquet and commits it. Caller holds work_mu.
 * The files are written under a write lease (vacuum leaves them alone) and
 * checked to exist with their size (their CRC-32C recorded) before the commit
 * names them; the WAL segment goes only after that commit. */
static int flush_gen(bf_store_t *s, bf_table_t *t, bf_gen_t *g, int64_t *rows, bf_error_t *err) {
  bf_delta_file_t *files = NULL;
  size_t n_files = 0;
  double started = bf_time_monotonic();
  /* Another writer may have given the table features our files would violate
   * (the view catches up with what the refresh read within a second). */
  pthread_mutex_lock(&t->mu);
  int status = bf_delta_snapshot_refresh(t->dir, &t->snapshot, NULL, err);
  if (status == BF_OK) status = bf_delta_snapshot_check_append(&t->snapshot, err);
  pthread_mutex_unlock(&t->mu);
  if (status != BF_OK) return status;
  bf_write_lease_t *lease = NULL;
  double written = started;
  if (g->rows > 0) status = bf_write_lease_take(t->dir, &lease, err);
  if (g->rows > 0 && status == BF_OK)
    status = bf_engine_tail_write_parquet(s->engine, t->catalog, g->tail, t->dir, &t->schema,
                                          (const char *const *)t->partition_columns,
                                          t->n_partition_columns, &files, &n_files, err);
  if (status == BF_OK) status = bf__store_seal_files(t, files, n_files, err);
  if (status != BF_OK) goto done;
  pthread_mutex_lock(&t->mu);
  int64_t version = t->snapshot.version;
  written = bf_time_monotonic();
  if (n_files > 0 || g->seqs.n > 0) {
    bf_delta_commit_t c = {.operation = "WRITE", .data_change = 1, .adds = files,
                           .n_adds = n_files, .txn_app_ids = (const char *const *)g->seqs.ids,
                           .txn_versions = g->seqs.seqs, .n_txns = g->seqs.n};
    status = bf_delta_log_commit(t->dir, &t->snapshot, &c, &version, err);
  }
  if (status == BF_OK) {
    bf__gen_remove(t, g);
    bf_error_t view_err;
    bf_error_init(&view_err);
    /* The commit is durable; a failed view swap must not lose the generation's
     * rows from queries for long: the next publish retries it. */
    if (bf__store_publish(s, t, g->tail, &view_err) != BF_OK)
      BF_LOG_ERROR("table %s: swapping the view after commit %lld failed: %s", t->fqn,
                   (long long)version, view_err.message);
  }
  pthread_mutex_unlock(&t->mu);
done:
  if (status != BF_OK) bf__store_remove_files(t, files, n_files); /* never committed */
  int64_t file_bytes = 0;
  for (size_t i = 0; i < n_files; i++) {
    file_bytes += files[i].size_bytes;
    bf_delta_file_reset(&files[i]);
  }
  free(files);
  bf_write_lease_release(lease);
  if (status != BF_OK) return status;
  bf_wal_segment_close(g->seg, 1);
  *rows += g->rows;
  bf_table_counters_t *counters = &t->store->counters;
  if (n_files > 0 || g->seqs.n > 0) bf_stats_add(&counters->commits, 1);
  if (g->rows > 0) {
    bf_stats_add(&counters->flushes, 1);
    bf_histogram_observe(&counters->flush_seconds, bf_time_monotonic() - started);
    bf_stats_set(&counters->last_flush_ms, bf_time_now_us() / 1000);
  }
  if (g->rows > 0)
    BF_LOG_INFO("table %s: flushed rows=%lld files=%zu bytes=%lld version=%lld duration_ms=%.0f "
                "(Parquet %.0f ms)", t->fqn, (long long)g->rows, n_files, (long long)file_bytes,
                (long long)version, (bf_time_monotonic() - started) * 1000,
                (written - started) * 1000);
  bf__gen_free(s, g);
  return BF_OK;
}

int bf__store_flush(bf_store_t *s, bf_table_t *t, int64_t *rows, bf_error_t *err) {
  bf_table_store_t *ts = t->store;
  pthread_mutex_lock(&t->mu);
  if (ts->n_gens) ts->gens[ts->n_gens - 1]->sealed = 1;
  size_t n = ts->n_gens;
  bf_gen_t **todo = malloc((n ? n : 1) * sizeof *todo);
  if (todo == NULL) {
    pthread_mutex_unlock(&t->mu);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  memcpy(todo, ts->gens, n * sizeof *todo);
  for (size_t i = 0; i < n; i++)
    while (todo[i]->pending > 0) pthread_cond_wait(&ts->pending_cv, &t->mu);
  pthread_mutex_unlock(&t->mu);
  int status = BF_OK;
  for (size_t i = 0; i < n && status == BF_OK; i++) status = flush_gen(s, t, todo[i], rows, err);
  free(todo);
  if (status != BF_OK) bf_error_prefix(err, "flushing %s", t->fqn);
  return status;
}

void bf__store_remove_files(const bf_table_t *t, const bf_delta_file_t *files, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", t->dir, files[i].path);
    remove(path);
  }
}

/* ---- background writer ------------------------------------------------------------------------ */

void bf__store_wake(bf_store_t *s) {
  pthread_mutex_lock(&s->mu);
  s->wake = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* The table's directory (or both its log and registry entry) is gone: an
 * operator removed the table. */
static int table_vanished(const bf_table_t *t) {
  char path[PATH_MAX + 64];
  struct stat st;
  if (stat(t->dir, &st) != 0) return errno == ENOENT || errno == ENOTDIR;
  snprintf(path, sizeof path, "%s/_delta_log", t->dir);
  if (stat(path, &st) == 0) return 0;
  snprintf(path, sizeof path, "%s/_bifrost/table.json", t->dir);
  return stat(path, &st) != 0 && errno == ENOENT;
}

/* Drops a vanished table from this server: its tails, its view and its registry
 * listing (so it can be registered again). Its WAL went with the directory, so
 * its unflushed rows are gone: said once, at ERROR. */
static void forget_vanished(bf_store_t *s, bf_table_t *t) {
  bf_table_store_t *ts = t->store;
  pthread_mutex_lock(&ts->work_mu);
  pthread_mutex_lock(&t->mu);
  while (bf__any_pending(ts)) pthread_cond_wait(&ts->pending_cv, &t->mu);
  t->dropped = 1;
  int64_t rows = bf_store_tail_rows(t);
  for (size_t i = 0; i < ts->n_gens; i++) {
    bf_engine_tail_drop(s->engine, t->catalog, ts->gens[i]->tail);
    bf_wal_segment_close(ts->gens[i]->seg, 0);
    bf__gen_free(s, ts->gens[i]);
  }
  ts->n_gens = 0;
  ts->opened = 0;
  pthread_cond_broadcast(&ts->pending_cv);
  pthread_mutex_unlock(&t->mu);
  pthread_mutex_unlock(&ts->work_mu);
  bf_engine_drop_table_view(s->engine, t->catalog, t->schema_name, t->table);
  bf_engine_set_table_unavailable(s->engine, t->fqn, NULL);
  bf_registry_forget(s->registry, t);
  BF_LOG_ERROR("table %s: its directory %s was removed while the server ran; the table is dropped "
               "from this server and can be registered again (%lld acknowledged rows not yet "
               "flushed went with its WAL)",
               t->fqn, t->dir, (long long)rows);
}

static void tend_table(bf_store_t *s, bf_table_t *t, int64_t now_us) {
  bf_error_t err;
  bf_error_init(&err);
  pthread_mutex_lock(&t->mu);
  int open = t->store && t->store->opened && !t->dropped;
  if (open && now_us - t->store->last_refresh_us >= 1000000 && table_vanished(t)) {
    pthread_mutex_unlock(&t->mu);
    forget_vanished(s, t);
    return;
  }
  int due = 0;
  if (open) {
    bf_table_store_t *ts = t->store;
    due = flush_due(s, t, now_us);
    if (now_us - ts->last_refresh_us >= 1000000) { /* other servers' commits */
      ts->last_refresh_us = now_us;
      /* Republish whenever the view lags the snapshot, however the snapshot got
       * ahead (another server's commits, or a commit that lost a race and read
       * the winner's commits before failing), and retry a view that failed. */
      if (bf_delta_snapshot_refresh(t->dir, &t->snapshot, NULL, &err) == BF_OK &&
          (ts->published_version != t->snapshot.version || ts->view_stale))
        bf__store_publish(s, t, NULL, &err); /* a failure marks the table unavailable */
      if (bf__store_adopt_orphans(s, t, &err) != BF_OK)
        BF_LOG_WARN("table %s: adopting WAL segments: %s", t->fqn, err.message);
      for (size_t i = 0; i < ts->n_gens && !due; i++) due = ts->gens[i]->sealed;
    }
  }
  pthread_mutex_unlock(&t->mu);
  if (!open) return;
  bf_table_store_t *ts = t->store;
  pthread_mutex_lock(&ts->work_mu);
  if (t->dropped) { /* dropped since the check above (set with work_mu held) */
    pthread_mutex_unlock(&ts->work_mu);
    return;
  }
  if (due && now_us >= ts->retry_flush_at_us) {
    int64_t rows = 0;
    if (bf__store_flush(s, t, &rows, &err) != BF_OK) {
      /* e.g. a full disk: the rows are safe in the WAL; try again in a while */
      ts->retry_flush_at_us = now_us + 5 * 1000000LL;
      BF_LOG_ERROR("%s (the rows stay in the WAL; retrying in 5 s)", err.message);
    }
  }
  if (s->options.maintenance_interval_secs > 0 &&
      now_us - ts->last_maintenance_us >= (int64_t)(s->options.maintenance_interval_secs * 1e6)) {
    ts->last_maintenance_us = now_us;
    bf__store_auto_maintenance(s, t);
  } else if (due) {
    bf__store_maybe_checkpoint(s, t);
  }
  pthread_mutex_unlock(&ts->work_mu);
}

static void *writer_main(void *arg) {
  bf_store_t *s = arg;
  int64_t last_rescan_us = bf_time_now_us();
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    if (!s->wake) {
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_nsec += 200 * 1000 * 1000;
      if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait(&s->cv, &s->mu, &until);
    }
    s->wake = 0;
    if (s->stop) break;
    pthread_mutex_unlock(&s->mu);
    int64_t now = bf_time_now_us();
    if (now - last_rescan_us >= 2000000) { /* tables another server registered */
      last_rescan_us = now;
      bf_registry_rescan(s->registry);
      bf_store_open_tables(s); /* new tables, and tables that failed to open before */
    }
    size_t n = 0;
    bf_table_t **tables = bf__snapshot_tables(s->registry, &n);
    for (size_t i = 0; i < n; i++) tend_table(s, tables[i], now);
    free(tables);
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int bf_store_create(bf_registry_t *registry, bf_engine_t *engine, const bf_store_options_t *options,
                    bf_store_t **out, bf_error_t *err) {
  bf_store_t *s = calloc(1, sizeof *s);
  if (s == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  s->registry = registry;
  s->engine = engine;
  if (options) s->options = *options;
  else bf_store_options_default(&s->options);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return bf_error_set(err, BF_EINTERNAL, "cannot start the background writer");
  }
  *out = s;
  return BF_OK;
}

void bf_store_destroy(bf_store_t *s) {
  if (s == NULL) return;
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  size_t n = 0;
  bf_table_t **tables = bf__snapshot_tables(s->registry, &n);
  for (size_t i = 0; i < n; i++) {
    bf_table_t *t = tables[i];
    if (t->store == NULL) continue;
    if (t->store->opened && t->store->n_gens) {
      bf_error_t err;
      bf_error_init(&err);
      int64_t rows = 0;
      pthread_mutex_lock(&t->store->work_mu);
      if (bf__store_flush(s, t, &rows, &err) != BF_OK)
        BF_LOG_ERROR("%s (kept in the WAL for the next start)", err.message);
      pthread_mutex_unlock(&t->store->work_mu);
    }
    pthread_mutex_lock(&t->mu);
    bf__table_store_free(s, t);
    pthread_mutex_unlock(&t->mu);
  }
  free(tables);
  /* Dropped tables (no longer listed) still own their write-path state. */
  pthread_mutex_lock(&s->registry->mu);
  for (size_t i = 0; i < s->registry->n_retired; i++) {
    bf_table_t *t = s->registry->retired[i];
    pthread_mutex_lock(&t->mu);
    if (t->store) bf__table_store_free(s, t);
    pthread_mutex_unlock(&t->mu);
  }
  pthread_mutex_unlock(&s->registry->mu);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

