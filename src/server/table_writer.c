/* Flushes (see table_store.h): a due generation is written to Parquet under a
 * write lease, checked, committed with the producers' txn versions, swapped into
 * the view, and only then its WAL segment deleted. The thread that decides when
 * is in table_background.c. */
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
#include "server/table_writer.h"
#include "server/write_lease.h"

/* ---- flush ---------------------------------------------------------------------------------- */

/* Writes one sealed generation to Parquet and commits it. Caller holds work_mu.
 * The files are written under a write lease (vacuum leaves them alone) and
 * checked to exist with their size (their CRC-32C recorded) before the commit
 * names them; the WAL segment goes only after that commit. */
/* The generation's rows are in commit `version`: it leaves the list and the view
 * swaps its tail for the files. The commit is durable; a failed view swap must not
 * hide the rows from queries for long: the next publish retries it. Caller holds
 * t->mu. */
static void gen_committed(bf_store_t *s, bf_table_t *t, bf_gen_t *g, int64_t version) {
  bf__gen_remove(t, g);
  bf_error_t view_err;
  bf_error_init(&view_err);
  if (bf__store_publish(s, t, g->tail, &view_err) != BF_OK)
    BF_LOG_ERROR("table %s: swapping the view after commit %lld failed: %s", t->fqn,
                 (long long)version, view_err.message);
}

static int flush_gen(bf_store_t *s, bf_table_t *t, bf_gen_t *g, int64_t *rows, bf_error_t *err) {
  bf_delta_file_t *files = NULL;
  size_t n_files = 0, n_keep = 0;
  double started = bf_time_monotonic();
  /* Another writer may have given the table features our files would violate
   * (the view catches up with what the refresh read within a second). */
  pthread_mutex_lock(&t->mu);
  int status = bf_delta_snapshot_refresh(t->dir, &t->snapshot, NULL, err);
  if (status == BF_OK) status = bf_delta_snapshot_check_append(&t->snapshot, err);
  int64_t landed = -1;
  if (status == BF_OK && g->commit_unknown) /* did the last attempt's commit land after all? */
    status = bf_delta_log_find_commit(t->dir, g->commit_base, t->snapshot.version, g->txn_id,
                                      &landed, err);
  if (status == BF_OK && g->commit_unknown) {
    g->commit_unknown = 0;
    if (landed >= 0) { /* it did: the generation is in the table, never write it again */
      gen_committed(s, t, g, landed);
      BF_LOG_WARN("table %s: the commit whose answer was lost landed as version %lld", t->fqn,
                  (long long)landed);
    }
  }
  pthread_mutex_unlock(&t->mu);
  if (status != BF_OK) return status;
  if (landed >= 0) {
    bf_wal_segment_close(g->seg, 1);
    *rows += g->rows;
    bf__gen_free(s, g);
    return BF_OK;
  }
  bf_write_lease_t *lease = NULL;
  double written = started;
  if (g->rows > 0) status = bf_write_lease_take(t->dir, &lease, err);
  if (g->rows > 0 && status == BF_OK)
    status = bf_engine_tail_write_parquet(s->engine, t->catalog, g->tail, t->dir, &t->schema,
                                          (const char *const *)t->partition_columns,
                                          t->n_partition_columns, &files, &n_files, err);
  if (status == BF_OK) status = bf__store_seal_files(t, files, n_files, err);
  if (status == BF_OK) status = bf_write_lease_check(lease, err);
  if (status != BF_OK) goto done;
  pthread_mutex_lock(&t->mu);
  int64_t version = t->snapshot.version;
  written = bf_time_monotonic();
  if (n_files > 0 || g->seqs.n > 0) {
    bf_delta_commit_t c = {.operation = "WRITE", .data_change = 1, .adds = files,
                           .n_adds = n_files, .txn_app_ids = (const char *const *)g->seqs.ids,
                           .txn_versions = g->seqs.seqs, .n_txns = g->seqs.n, .txn_id = g->txn_id};
    int64_t base = t->snapshot.version;
    status = bf_delta_log_commit(t->dir, &t->snapshot, &c, &version, err);
    if (bf_delta_commit_outcome_unknown(status)) {
      /* e.g. the store stopped answering during the commit PUT: it may have landed.
       * Its files stay (vacuum takes them if it did not) and the next attempt
       * looks for this commit's txnId before writing anything. */
      g->commit_unknown = 1;
      g->commit_base = base;
      n_keep = n_files;
    }
  }
  if (status == BF_OK) gen_committed(s, t, g, version);
  pthread_mutex_unlock(&t->mu);
done:
  if (status != BF_OK && n_keep == 0) bf__store_remove_files(t, files, n_files); /* never committed */
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
  bf_gen_t *newest = ts->n_gens ? ts->gens[ts->n_gens - 1] : NULL;
  /* A table flushed for its size is busy: its next generation is made here, in the
   * flush's thread, instead of on the ack path of the first insert after the seal
   * (a WAL segment, a tail and a view publish). An idle table gets none. */
  int busy = newest && !newest->sealed &&
             (newest->rows >= s->options.flush_rows || newest->bytes >= s->options.flush_bytes);
  if (newest) newest->sealed = 1;
  size_t n = ts->n_gens;
  bf_gen_t **todo = malloc((n ? n : 1) * sizeof *todo);
  if (todo == NULL) {
    pthread_mutex_unlock(&t->mu);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  if (n) memcpy(todo, ts->gens, n * sizeof *todo);
  bf_gen_t *next = NULL;
  bf_error_t next_err;
  bf_error_init(&next_err);
  if (busy && bf__gen_add(s, t, NULL, 0, &next, &next_err) != BF_OK) /* the next insert tries again */
    BF_LOG_DEBUG("table %s: next generation not made ahead: %s", t->fqn, next_err.message);
  for (size_t i = 0; i < n; i++)
    while (todo[i]->pending > 0) pthread_cond_wait(&ts->pending_cv, &t->mu);
  pthread_mutex_unlock(&t->mu);
  int status = BF_OK;
  for (size_t i = 0; i < n && status == BF_OK; i++) status = flush_gen(s, t, todo[i], rows, err);
  free(todo);
  if (status != BF_OK) bf_error_prefix(err, "flushing %s", t->fqn);
  return status;
}

