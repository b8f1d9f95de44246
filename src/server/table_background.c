/* The background writer (see table_store.h): every 200 ms (or when an insert
 * crosses a threshold) each open table is checked and a due generation flushed
 * (table_writer.c); each second the writer also reads other servers' commits,
 * republishes a lagging view, adopts orphaned WAL segments (table_replay.c) and
 * notices a table whose directory was removed; every 2 s it rescans the registry;
 * automatic maintenance and checkpoints after flushes run from here
 * (table_maintenance.c). The top of the store's files: nothing below calls it. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bifrost/wal.h"
#include "server/log.h"
#include "server/table_maintenance.h"
#include "server/table_replay.h"
#include "server/table_store_internal.h"
#include "server/table_writer.h"
#include "storage/storage.h"

/* A generation is sealed, or has reached a threshold (rows, bytes, age, or half
 * the memory bound in use). Caller holds t->mu. */
static int flush_due(const bf_store_t *s, const bf_table_t *t, int64_t now_us) {
  const bf_table_store_t *ts = t->store;
  /* Half the memory bound in use: flush everything, before inserts are refused. */
  int memory_due = s->options.max_tail_bytes > 0 &&
                   bf_store_tail_bytes(s) * 2 >= s->options.max_tail_bytes;
  double interval = s->options.flush_interval_secs;
  if (__atomic_load_n(&s->presence.peers, __ATOMIC_RELAXED) > 0 &&
      s->options.shared_flush_interval_secs < interval)
    interval = s->options.shared_flush_interval_secs; /* others read our commits only */
  for (size_t i = 0; i < ts->n_gens; i++) {
    const bf_gen_t *g = ts->gens[i];
    if (g->sealed) return 1;
    if (g->commit_wait_us &&
        now_us - g->commit_wait_us >= (int64_t)(s->options.commit_interval_secs * 1e6))
      return 1;
    if (g->rows > 0 && (memory_due || g->rows >= s->options.flush_rows ||
                        g->bytes >= s->options.flush_bytes ||
                        now_us - g->created_us >= (int64_t)(interval * 1e6)))
      return 1;
  }
  return 0;
}

/* The table's directory (or both its log and registry entry) is gone: an
 * operator removed the table. */
static int table_vanished(const bf_table_t *t) {
  char path[PATH_MAX + 64];
  bf_error_t err;
  bf_error_init(&err);
  snprintf(path, sizeof path, "%s/_bifrost/table.json", t->dir);
  if (bf_storage_stat(path, NULL, NULL, &err) != BF_ENOTFOUND) return 0; /* there, or unknown */
  if (!bf_storage_is_s3(t->dir)) { /* a directory with a log but no entry is still a table */
    snprintf(path, sizeof path, "%s/_delta_log", t->dir);
    bf_error_init(&err);
    return bf_storage_stat(path, NULL, NULL, &err) == BF_ENOTFOUND;
  }
  return 1;
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

/* How often a table's log is re-read for other writers' commits: every 0.5 s
 * while other servers share the data directory (their rows become visible here
 * within --shared-flush-interval + 0.5 s), else every second on a local disk and
 * every 5 s on S3, where each re-read is a request. */
static int64_t refresh_period_us(const bf_store_t *s, const bf_table_t *t) {
  if (__atomic_load_n(&s->presence.peers, __ATOMIC_RELAXED) > 0) return 500000;
  return bf_storage_is_s3(t->dir) ? 5000000 : 1000000;
}

/* How often the registry is scanned for tables other servers registered: every
 * 2 s, or every 30 s on S3 while no other server is seen (a scan is a listing per
 * catalog and schema; a new server is seen within 5 s). */
static int64_t rescan_period_us(const bf_store_t *s) {
  if (__atomic_load_n(&s->presence.peers, __ATOMIC_RELAXED) > 0) return 2000000;
  return bf_storage_is_s3(s->registry->data_dir) ? 30000000 : 2000000;
}

static void tend_table(bf_store_t *s, bf_table_t *t, int64_t now_us) {
  bf_error_t err;
  bf_error_init(&err);
  pthread_mutex_lock(&t->mu);
  int open = t->store && t->store->opened && !t->dropped;
  int64_t refresh_us = refresh_period_us(s, t);
  if (open && now_us - t->store->last_refresh_us >= refresh_us && table_vanished(t)) {
    pthread_mutex_unlock(&t->mu);
    forget_vanished(s, t);
    return;
  }
  int due = 0;
  if (open) {
    bf_table_store_t *ts = t->store;
    due = flush_due(s, t, now_us);
    if (now_us - ts->last_refresh_us >= refresh_us) { /* other servers' commits */
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
  /* With --ack-mode commit the tick is the group commit period (inserts also wake
   * the writer when they start to wait). */
  long tick_ns = 200 * 1000 * 1000;
  if (s->options.ack_on_commit && s->options.commit_interval_secs * 1e9 < tick_ns)
    tick_ns = (long)(s->options.commit_interval_secs * 1e9) + 1;
  if (tick_ns < 1000000) tick_ns = 1000000; /* a tiny --commit-interval must not spin */
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    if (!s->wake) {
      struct timespec until = bf_time_after(CLOCK_REALTIME, (double)tick_ns / 1e9);
      pthread_cond_timedwait(&s->cv, &s->mu, &until);
    }
    s->wake = 0;
    if (s->stop) break;
    pthread_mutex_unlock(&s->mu);
    int64_t now = bf_time_now_us();
    bf_engine_tails_sweep(s->engine); /* memory of flushed tails no query holds */
    bf_presence_tick(&s->presence, now);
    if (now - last_rescan_us >= rescan_period_us(s)) { /* tables another server registered */
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
  char id_file[sizeof s->options.wal_dir + 16] = "";
  if (s->options.wal_dir[0]) snprintf(id_file, sizeof id_file, "%s/server.id", s->options.wal_dir);
  bf_presence_init(&s->presence, registry->data_dir, id_file);
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
  bf_presence_leave(&s->presence);
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

