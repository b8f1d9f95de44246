/* The table write path (see table_store.h): inserts with group commit, opening a
 * table. Generations (WAL segment + engine tail), producer sequence maps and the
 * view publish live in table_generations.c, under both this file and WAL replay
 * (table_replay.c), which opening a table calls; flushes and the background writer
 * in table_writer.c, maintenance in table_maintenance.c.
 *
 * Locking: t->mu guards the table's snapshot and generation list and is held only
 * for short bookkeeping; fsync, tail appends and Parquet writes run without it.
 * work_mu serializes flushes and maintenance of one table. A generation being
 * appended to has pending > 0 and is never flushed before it drops to 0. */
#include "server/table_store.h"

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
#include "server/table_replay.h"
#include "server/table_store_internal.h"
#include "server/write_lease.h"

void bf_store_options_default(bf_store_options_t *o) {
  o->flush_rows = 1000000;
  o->flush_bytes = 128LL << 20;
  o->flush_interval_secs = 60;
  o->checkpoint_interval = 10;
  o->compact_min_files = 8;
  o->compact_target_bytes = 128LL << 20;
  o->vacuum_retention_hours = 168;
  o->log_retention_hours = 720;
  o->maintenance_interval_secs = 60;
  o->commit_interval_secs = 0.05;
  o->shared_flush_interval_secs = 0.5;
  o->max_backlog_waiters = 4;
}

/* Highest sequence of the producer that is committed or acknowledged in a tail;
 * unlike applied_seq, a claim by an insert still waiting for its fsync does not
 * count. */
static int64_t acknowledged_seq(const bf_table_t *t, const char *id) {
  int64_t best = bf_delta_snapshot_txn_version(&t->snapshot, id);
  for (size_t i = 0; i < t->store->n_gens; i++) {
    int64_t seq = bf__seq_get(&t->store->gens[i]->seqs, id);
    if (seq > best) best = seq;
  }
  return best;
}

/* Frames the data record of an insert: head (type, id length, id, sequence) and
 * the IPC bytes as received, checksummed in place (no copy). head holds
 * RECORD_HEAD_MAX bytes. */
#define RECORD_HEAD_MAX (11 + BF_MAX_PRODUCER_ID)
static int frame_record(const bf_store_insert_t *in, uint8_t *head, bf_wal_frame_t *frame,
                        bf_error_t *err) {
  size_t id_len = in->producer_id ? strlen(in->producer_id) : 0;
  if (id_len > BF_MAX_PRODUCER_ID)
    return bf_error_set(err, BF_EINVAL, "producer id longer than %d bytes", BF_MAX_PRODUCER_ID);
  head[0] = RECORD_DATA;
  head[1] = (uint8_t)(id_len & 0xff);
  head[2] = (uint8_t)(id_len >> 8);
  if (id_len) memcpy(head + 3, in->producer_id, id_len);
  uint64_t seq = (uint64_t)in->sequence;
  for (int i = 0; i < 8; i++) head[3 + id_len + i] = (uint8_t)(seq >> (8 * i));
  const void *parts[2] = {head, in->ipc};
  size_t sizes[2] = {11 + id_len, in->ipc_len};
  return bf_wal_frame(frame, parts, sizes, 2, err);
}

/* ---- insert ----------------------------------------------------------------------------- */

/* How long a batch waits for the earlier batch of its producer it names
 * (after_sequence) to arrive before the producer is told to retry. */
#define ORDER_WAIT_SECS 1

/* Inserts into a table whose writer is behind (a flush running while the
 * generation taking inserts is already due for the next one) wait, at most this
 * long, for the flush to end; then they go on regardless (the memory bound still
 * holds), so a writer that cannot write (storage down) slows inserts but never
 * holds the workers long. */
#define BACKLOG_WAIT_MS 500

/* How far past a flush threshold the generation taking inserts may grow while
 * another one is being flushed. Waiting as soon as it reached 1x left a core
 * half idle: the flush (DuckDB's Parquet writer) keeps about 1.5 of the 2 cores
 * busy, and waiting inserts use none. With 3x, 10M rows through insert_arrow
 * reached Delta at 4.33M against 3.98M rows/s (medians of 7 alternating pairs)
 * for 585-650 MiB of peak memory against 450-515 (docs/architecture.md). */
#define BACKLOG_GENERATIONS 3

/* The writer is behind on t: a generation is sealed (its flush is running or
 * waiting) and the one taking inserts has reached BACKLOG_GENERATIONS times a
 * flush threshold. Caller holds t->mu. */
static int writer_behind(const bf_store_t *s, const bf_table_store_t *ts) {
  int sealed = 0, due = 0;
  for (size_t i = 0; i < ts->n_gens; i++) {
    const bf_gen_t *g = ts->gens[i];
    if (g->sealed)
      sealed = 1;
    else
      due |= (s->options.flush_rows > 0 && g->rows / BACKLOG_GENERATIONS >= s->options.flush_rows) ||
             (s->options.flush_bytes > 0 &&
              g->bytes / BACKLOG_GENERATIONS >= s->options.flush_bytes);
  }
  return sealed && due;
}

/* Takes one of the store's max_backlog_waiters places; 0 when all are taken (the
 * insert goes on without waiting: other calls keep RPC workers to run on). */
static int claim_backlog_wait(bf_store_t *s) {
  int n = __atomic_add_fetch(&s->backlog_waiters, 1, __ATOMIC_RELAXED);
  if (n <= s->options.max_backlog_waiters) return 1;
  __atomic_sub_fetch(&s->backlog_waiters, 1, __ATOMIC_RELAXED);
  return 0;
}

/* --ack-mode commit: marks generation g as waited for (the writer commits it
 * once its first waiter is --commit-interval old), wakes the writer and waits
 * until g is committed (it leaves the list only after its commit). Past
 * COMMIT_WAIT_SECS the insert is answered UNAVAILABLE: its rows stay in the WAL
 * and are committed later, and the producer's retry of the same sequence is then
 * recognised by its txn version. Caller holds t->mu (released while waking). */
#define COMMIT_WAIT_SECS 30
static int wait_for_commit(bf_store_t *s, bf_table_t *t, bf_gen_t *g, bf_error_t *err) {
  bf_table_store_t *ts = t->store;
  if (g->commit_wait_us == 0) g->commit_wait_us = bf_time_now_us();
  uint64_t gen_id = g->id; /* g may be freed once the mutex is released */
  pthread_mutex_unlock(&t->mu);
  bf__store_wake(s);
  pthread_mutex_lock(&t->mu);
  struct timespec deadline = bf_time_after(CLOCK_REALTIME, COMMIT_WAIT_SECS);
  for (;;) {
    if (t->dropped) return bf_error_set(err, BF_ENOTFOUND, "table %s was dropped", t->fqn);
    int listed = 0;
    for (size_t i = 0; i < ts->n_gens && !listed; i++) listed = ts->gens[i]->id == gen_id;
    if (!listed) return BF_OK;
    if (pthread_cond_timedwait(&ts->pending_cv, &t->mu, &deadline) == ETIMEDOUT)
      return bf_error_set(err, BF_EUNAVAILABLE,
                          "table %s: the rows are in the WAL but no commit took them within %d s "
                          "(--ack-mode commit); retry",
                          t->fqn, COMMIT_WAIT_SECS);
  }
}

int bf_store_insert(bf_store_t *s, bf_table_t *t, const bf_store_insert_t *in, int *duplicate,
                    int64_t *version, bf_error_t *err) {
  *duplicate = 0;
  /* Checksummed before any lock: only the WAL write is serialized. */
  uint8_t head[RECORD_HEAD_MAX];
  bf_wal_frame_t frame;
  if (in->rows > 0) BF_RETURN_NOT_OK(frame_record(in, head, &frame, err));
  pthread_mutex_lock(&t->mu);
  int status = bf_store_open_table(s, t, err);
  if (status != BF_OK) {
    pthread_mutex_unlock(&t->mu);
    return status;
  }
  bf_table_store_t *ts = t->store;
  *version = t->snapshot.version;
  /* A retry of a batch whose first attempt is still between WAL append and
   * acknowledgement waits for that attempt: it is a duplicate only once the first
   * attempt succeeded (if it fails, its claim is withdrawn and the retry stores it). */
  struct timespec order_deadline = {0, 0};
  while (in->producer_id) {
    if (t->dropped) { /* dropped while this insert waited */
      pthread_mutex_unlock(&t->mu);
      return bf_error_set(err, BF_ENOTFOUND, "table %s was dropped", t->fqn);
    }
    int64_t acked = acknowledged_seq(t, in->producer_id);
    if (acked >= in->sequence) {
      *duplicate = 1;
      int waited = BF_OK;
      if (s->options.ack_on_commit) { /* acknowledged only once committed, retries too */
        bf_gen_t *holder = NULL;
        for (size_t i = 0; i < ts->n_gens && !holder; i++)
          if (bf__seq_get(&ts->gens[i]->seqs, in->producer_id) >= in->sequence) holder = ts->gens[i];
        if (holder) waited = wait_for_commit(s, t, holder, err);
      }
      *version = t->snapshot.version;
      pthread_mutex_unlock(&t->mu);
      return waited;
    }
    int64_t claimed = bf__seq_get(&ts->seqs, in->producer_id);
    if (in->after_sequence > 0 && acked < in->after_sequence && claimed < in->sequence) {
      /* Several batches of one producer in flight: this one is stored only after
       * the one it names, so that the sequence high-water mark (the dedup rule)
       * never passes a batch that is not stored. Wait (bounded) for that one to
       * arrive and be stored; otherwise the producer retries. Every wait here is
       * timed: a claim whose rows were discarded (a table dropped under its
       * producer) must not hold a worker. */
      struct timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      if (order_deadline.tv_sec == 0) {
        order_deadline = now;
        order_deadline.tv_sec += ORDER_WAIT_SECS;
      } else if (now.tv_sec > order_deadline.tv_sec ||
                 (now.tv_sec == order_deadline.tv_sec && now.tv_nsec >= order_deadline.tv_nsec)) {
        int on_its_way = claimed >= in->after_sequence && bf__any_pending(ts);
        pthread_mutex_unlock(&t->mu);
        return bf_error_set(err, BF_EUNAVAILABLE,
                            "table %s: batch %lld of producer %s comes after its batch %lld, which "
                            "this server has not stored%s; retry",
                            t->fqn, (long long)in->sequence, in->producer_id, (long long)in->after_sequence,
                            on_its_way ? " yet" : "");
      }
      pthread_cond_timedwait(&ts->pending_cv, &t->mu, &order_deadline);
      continue;
    }
    if (claimed < in->sequence || !bf__any_pending(ts)) break;
    pthread_cond_wait(&ts->pending_cv, &t->mu);
  }
  int64_t previous = in->producer_id ? bf__seq_get(&ts->seqs, in->producer_id) : -1;
  if (in->rows == 0) { /* nothing to store */
    pthread_mutex_unlock(&t->mu);
    return BF_OK;
  }
  /* Memory for acknowledged rows is bounded: beyond it the producer waits for a
   * flush (RESOURCE_EXHAUSTED is retried) instead of the process growing until
   * the OOM killer ends it. An empty tail always admits one batch. */
  int64_t held = bf_store_tail_bytes(s);
  if (s->options.max_tail_bytes > 0 && held > 0 &&
      held + in->decoded_bytes > s->options.max_tail_bytes) {
    pthread_mutex_unlock(&t->mu);
    bf__store_wake(s);
    return bf_error_set(err, BF_EFULL,
                        "table %s: the server holds %lld bytes of acknowledged rows not yet "
                        "flushed, its limit (half of --memory-limit) is %lld; retry after the "
                        "flush",
                        t->fqn, (long long)held, (long long)s->options.max_tail_bytes);
  }
  /* The writer is behind (ingest outruns Parquet): wait for it instead of holding
   * ever more unflushed rows. A flush retiring a generation wakes us. */
  int behind = writer_behind(s, ts), waits = behind && claim_backlog_wait(s);
  if (behind) bf_stats_add(waits ? &ts->counters.writer_waits : &ts->counters.writer_waits_skipped, 1);
  if (waits) {
    struct timespec until = bf_time_after(CLOCK_REALTIME, BACKLOG_WAIT_MS / 1000.0);
    int timed_out = 0;
    while (!t->dropped && writer_behind(s, ts) && !timed_out)
      timed_out = pthread_cond_timedwait(&ts->pending_cv, &t->mu, &until) == ETIMEDOUT;
    if (timed_out)
      BF_LOG_DEBUG("table %s: an insert waited %d ms for the writer, which is behind; going on",
                   t->fqn, BACKLOG_WAIT_MS);
    __atomic_sub_fetch(&s->backlog_waiters, 1, __ATOMIC_RELAXED);
    if (t->dropped) {
      pthread_mutex_unlock(&t->mu);
      return bf_error_set(err, BF_ENOTFOUND, "table %s was dropped", t->fqn);
    }
  }
  bf_gen_t *g = ts->n_gens ? ts->gens[ts->n_gens - 1] : NULL;
  if (g == NULL || g->sealed) status = bf__gen_add(s, t, NULL, 0, &g, err);
  uint64_t lsn = 0;
  if (status == BF_OK) status = bf_wal_append_frame(g->seg, &frame, &lsn, err);
  if (status == BF_OK && in->producer_id) {
    /* Claim the sequence now, so a concurrent retry of this batch is a duplicate
     * (and the producer's next batch, if it times out waiting for this one, says it
     * is on its way). Nobody waits for a claim: waiters need this insert's end. */
    if (bf__seq_put(&ts->seqs, in->producer_id, in->sequence) != BF_OK)
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  if (status != BF_OK) {
    pthread_mutex_unlock(&t->mu);
    bf_error_prefix(err, "table %s", t->fqn);
    return status;
  }
  g->pending++;
  pthread_mutex_unlock(&t->mu);

  status = bf_wal_sync(g->seg, lsn, err);
  int durable = status == BF_OK;
  for (size_t i = 0; i < in->n_batches && status == BF_OK; i++)
    if (in->batches[i].length > 0)
      status = bf_engine_tail_append(s->engine, t->catalog, g->tail, in->schema, &in->batches[i], err);
  if (status != BF_OK && durable) {
    /* On disk but not acknowledged: an abort record keeps replay from bringing it back. */
    uint8_t abort_record[9] = {RECORD_ABORT};
    for (int i = 0; i < 8; i++) abort_record[1 + i] = (uint8_t)(lsn >> (8 * i));
    uint64_t abort_lsn;
    bf_error_t abort_err;
    bf_error_init(&abort_err);
    if (bf_wal_append(g->seg, abort_record, sizeof abort_record, &abort_lsn, &abort_err) != BF_OK ||
        bf_wal_sync(g->seg, abort_lsn, &abort_err) != BF_OK)
      BF_LOG_ERROR("table %s: a failed insert could not be marked in the WAL (%s); it may reappear "
                   "after a crash",
                   t->fqn, abort_err.message);
  }

  pthread_mutex_lock(&t->mu);
  if (status == BF_OK) {
    g->rows += (int64_t)in->rows;
    g->bytes += (int64_t)in->ipc_len;
    g->decoded_bytes += in->decoded_bytes;
    bf__tail_bytes_add(s, in->decoded_bytes);
    if (in->producer_id && bf__seq_put(&g->seqs, in->producer_id, in->sequence) != BF_OK)
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  if (status != BF_OK) {
    /* Not acknowledged: a retry must be accepted again, and this segment may hold
     * a partial record, so no more appends go to it. */
    g->sealed = 1;
    if (in->producer_id && bf__seq_get(&ts->seqs, in->producer_id) == in->sequence)
      bf__seq_set_exact(&ts->seqs, in->producer_id, previous);
    bf_error_prefix(err, "table %s", t->fqn);
  }
  /* g may be flushed and freed as soon as pending drops and the mutex is released. */
  int full = status == BF_OK && (g->rows >= s->options.flush_rows || g->bytes >= s->options.flush_bytes);
  g->pending--;
  pthread_cond_broadcast(&ts->pending_cv);
  if (status == BF_OK && s->options.ack_on_commit) status = wait_for_commit(s, t, g, err);
  *version = t->snapshot.version;
  pthread_mutex_unlock(&t->mu);
  if (full) bf__store_wake(s);
  return status;
}

int bf_store_open_table(bf_store_t *s, bf_table_t *t, bf_error_t *err) {
  if (t->dropped)
    return bf_error_set(err, BF_ENOTFOUND, "table %s was dropped (or its directory removed)", t->fqn);
  if (t->store && t->store->opened) return BF_OK;
  if (t->store == NULL) {
    bf_table_store_t *ts = calloc(1, sizeof *ts);
    if (ts == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
    pthread_cond_init(&ts->pending_cv, NULL);
    pthread_mutex_init(&ts->work_mu, NULL);
    ts->index = __atomic_add_fetch(&s->next_table_index, 1, __ATOMIC_RELAXED);
    ts->last_checkpoint_version = -1;
    ts->published_version = -2;
    ts->last_maintenance_us = bf_time_now_us(); /* first run one interval after opening */
    t->store = ts;
  }
  /* Stage timings (debug log): where a slow open spends its time. */
  int64_t t0 = bf_time_now_us();
  int status = bf_table_ensure_snapshot(t, err);
  int64_t t1 = bf_time_now_us(), t2 = t1;
  if (status == BF_OK) {
    t->store->last_checkpoint_version = bf_delta_last_checkpoint_version(t->dir);
    status = bf__store_publish(s, t, NULL, err);
    t2 = bf_time_now_us();
  }
  if (status == BF_OK) status = bf__store_adopt_orphans(s, t, err);
  BF_LOG_DEBUG("table %s open: snapshot %.1f ms, view %.1f ms, wal %.1f ms", t->fqn,
               (double)(t1 - t0) / 1e3, (double)(t2 - t1) / 1e3,
               (double)(bf_time_now_us() - t2) / 1e3);
  if (status != BF_OK) {
    /* Never answer from a partial view (files without the WAL's acknowledged
     * rows): queries naming the table fail with the reason until it opens. */
    bf_engine_set_table_unavailable(s->engine, t->fqn, err ? err->message : "it could not be loaded");
    return status;
  }
  bf_engine_set_table_unavailable(s->engine, t->fqn, NULL);
  t->store->opened = 1;
  return BF_OK;
}

void bf_store_prepare_inserts(bf_store_t *s, bf_table_t *t) {
  bf_table_store_t *ts = t->store;
  if (ts == NULL || !ts->opened || t->dropped) return;
  if (ts->n_gens && !ts->gens[ts->n_gens - 1]->sealed) return;
  bf_gen_t *g = NULL;
  bf_error_t err;
  bf_error_init(&err);
  if (bf__gen_add(s, t, NULL, 0, &g, &err) != BF_OK)
    BF_LOG_DEBUG("table %s: no generation made ahead of inserts: %s", t->fqn, err.message);
}

bf_table_t **bf__snapshot_tables(bf_registry_t *r, size_t *n) {
  pthread_mutex_lock(&r->mu);
  *n = r->n_tables;
  bf_table_t **tables = malloc((*n ? *n : 1) * sizeof *tables);
  if (tables && *n) memcpy(tables, r->tables, *n * sizeof *tables);
  pthread_mutex_unlock(&r->mu);
  if (tables == NULL) *n = 0;
  return tables;
}

void bf_store_open_tables(bf_store_t *s) {
  size_t n = 0;
  bf_table_t **tables = bf__snapshot_tables(s->registry, &n);
  for (size_t i = 0; i < n; i++) {
    bf_table_t *t = tables[i];
    bf_error_t err;
    bf_error_init(&err);
    pthread_mutex_lock(&t->mu);
    int opened = t->store && t->store->opened;
    int64_t started_us = bf_time_now_us();
    int status = opened ? BF_OK : bf_store_open_table(s, t, &err);
    double took_ms = (double)(bf_time_now_us() - started_us) / 1e3;
    pthread_mutex_unlock(&t->mu);
    if (opened) continue;
    if (status != BF_OK) {
      pthread_mutex_lock(&t->mu);
      int repeated = t->store && strcmp(t->store->open_error, err.message) == 0;
      if (t->store) snprintf(t->store->open_error, sizeof t->store->open_error, "%s", err.message);
      pthread_mutex_unlock(&t->mu);
      if (!repeated)
        BF_LOG_ERROR("table %s is not queryable (retried every 2 s): %s", t->fqn, err.message);
    } else
      BF_LOG_INFO("table %s loaded at version %lld (%zu files, %lld rows replayed from the WAL) "
                  "in %.1f ms", t->fqn, (long long)t->snapshot.version, t->snapshot.n_files,
                  (long long)bf_store_tail_rows(t), took_ms);
  }
  free(tables);
}

void bf__table_store_free(bf_store_t *s, bf_table_t *t) {
  bf_table_store_t *ts = t->store;
  if (ts == NULL) return;
  for (size_t i = 0; i < ts->n_gens; i++) {
    bf_wal_segment_close(ts->gens[i]->seg, 0); /* kept for replay at the next start */
    bf__gen_free(s, ts->gens[i]);
  }
  free(ts->gens);
  bf__seq_reset(&ts->seqs);
  pthread_cond_destroy(&ts->pending_cv);
  pthread_mutex_destroy(&ts->work_mu);
  free(ts);
  t->store = NULL;
}
