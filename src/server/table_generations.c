/* A table's generations and what they carry, below the insert path
 * (table_store.c) and WAL replay (table_replay.c), which both build on them:
 * producer sequence maps (the exactly-once high-water marks), generations (a WAL
 * segment + an engine tail each), the bytes held by tails, and the view publish
 * that shows a table's files plus its tails to queries. Locking as in
 * table_store.c: callers hold t->mu where a comment says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/log.h"
#include "server/table_store_internal.h"

/* ---- producer sequence maps ---------------------------------------------------- */

int64_t bf__seq_get(const bf_seq_map_t *m, const char *id) {
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->ids[i], id) == 0) return m->seqs[i];
  return -1;
}

int bf__seq_put(bf_seq_map_t *m, const char *id, int64_t seq) {
  for (size_t i = 0; i < m->n; i++) {
    if (strcmp(m->ids[i], id) == 0) {
      if (seq > m->seqs[i]) m->seqs[i] = seq;
      return BF_OK;
    }
  }
  char **ids = realloc(m->ids, (m->n + 1) * sizeof *ids);
  if (ids == NULL) return BF_ENOMEM;
  m->ids = ids;
  int64_t *seqs = realloc(m->seqs, (m->n + 1) * sizeof *seqs);
  if (seqs == NULL) return BF_ENOMEM;
  m->seqs = seqs;
  if ((ids[m->n] = strdup(id)) == NULL) return BF_ENOMEM;
  seqs[m->n++] = seq;
  return BF_OK;
}

void bf__seq_set_exact(bf_seq_map_t *m, const char *id, int64_t seq) {
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->ids[i], id) == 0) m->seqs[i] = seq;
}

int bf__seq_copy(bf_seq_map_t *dst, const bf_seq_map_t *src) {
  memset(dst, 0, sizeof *dst);
  for (size_t i = 0; i < src->n; i++)
    if (bf__seq_put(dst, src->ids[i], src->seqs[i]) != BF_OK) return BF_ENOMEM;
  return BF_OK;
}

void bf__seq_reset(bf_seq_map_t *m) {
  for (size_t i = 0; i < m->n; i++) free(m->ids[i]);
  free(m->ids);
  free(m->seqs);
  memset(m, 0, sizeof *m);
}

/* Highest sequence of the producer applied anywhere: committed or in the tail. */
int64_t bf__applied_seq(const bf_table_t *t, const char *id) {
  int64_t committed = bf_delta_snapshot_txn_version(&t->snapshot, id);
  int64_t tail = bf__seq_get(&t->store->seqs, id);
  return committed > tail ? committed : tail;
}

int bf__any_pending(const bf_table_store_t *ts) {
  for (size_t i = 0; i < ts->n_gens; i++)
    if (ts->gens[i]->pending > 0) return 1;
  return 0;
}

/* ---- generations -------------------------------------------------------------------- */

int64_t bf_store_tail_bytes(const bf_store_t *s) {
  return __atomic_load_n(&s->tail_bytes, __ATOMIC_RELAXED);
}

void bf__tail_bytes_add(bf_store_t *s, int64_t bytes) {
  __atomic_add_fetch(&s->tail_bytes, bytes, __ATOMIC_RELAXED);
}

void bf__gen_free(bf_store_t *s, bf_gen_t *g) {
  if (g == NULL) return;
  if (g->decoded_bytes) bf__tail_bytes_add(s, -g->decoded_bytes);
  bf__seq_reset(&g->seqs);
  free(g);
}

/* Publishes the view: live files + the tails of all generations except skip_tail,
 * which is dropped in the same transaction. Caller holds t->mu. */
int bf__store_publish(bf_store_t *s, bf_table_t *t, const char *drop_tail, bf_error_t *err) {
  bf_table_store_t *ts = t->store;
  const char **tails = malloc((ts->n_gens ? ts->n_gens : 1) * sizeof *tails);
  if (tails == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  size_t n = 0;
  for (size_t i = 0; i < ts->n_gens; i++)
    if (!drop_tail || strcmp(ts->gens[i]->tail, drop_tail) != 0) tails[n++] = ts->gens[i]->tail;
  /* Another writer changed the table's schema (e.g. a merge that added columns):
   * its files and ours have different columns. */
  char *own = NULL;
  bf_error_t ignored;
  bf_error_init(&ignored);
  int mixed = t->n_versions > 1 || /* older files lack the columns added since */
              bf_delta_schema_string(&t->schema, &own, &ignored) != BF_OK ||
              (t->snapshot.schema_string && strcmp(t->snapshot.schema_string, own) != 0);
  free(own);
  int status = bf_engine_set_table_view(s->engine, t->catalog, t->schema_name, t->table, t->dir,
                                        &t->schema, (const char *const *)t->partition_columns,
                                        t->n_partition_columns, t->snapshot.files,
                                        t->snapshot.n_files, tails, n, drop_tail, mixed, err);
  free(tails);
  /* A view that cannot be built (a data file missing or unreadable) must not
   * leave queries on the last view, which lacks the newest rows: the table
   * refuses queries, naming the reason, until a publish succeeds again (retried
   * every second by the writer). Inserts go on: their rows are in the WAL. */
  if (status == BF_OK) ts->published_version = t->snapshot.version;
  if (status != BF_OK) {
    char reason[BF_ERROR_MESSAGE_MAX + 64];
    snprintf(reason, sizeof reason, "its view cannot be built: %s", err ? err->message : "?");
    bf_engine_set_table_unavailable(s->engine, t->fqn, reason);
    ts->view_stale = 1;
    if (err && strcmp(ts->view_error, err->message) != 0) { /* said once per reason */
      snprintf(ts->view_error, sizeof ts->view_error, "%s", err->message);
      BF_LOG_ERROR("table %s: %s (queries refused until it is fixed)", t->fqn, reason);
    }
  } else if (ts->view_stale) {
    ts->view_stale = 0;
    ts->view_error[0] = '\0';
    bf_engine_set_table_unavailable(s->engine, t->fqn, NULL);
    BF_LOG_INFO("table %s: its view is built again; queries are answered", t->fqn);
  }
  return status;
}

int bf__wal_dir(const bf_store_t *s, const bf_table_t *t, char *out, size_t cap) {
  /* With a WAL dir of its own, a table's directory there carries its creation time,
   * so a table dropped and registered again never adopts the old one's segments. */
  int n = s->options.wal_dir[0]
              ? snprintf(out, cap, "%s/%s/%s/%s.%lld", s->options.wal_dir, t->catalog,
                         t->schema_name, t->table, (long long)t->created_at_ms)
              : snprintf(out, cap, "%s/_bifrost/wal", t->dir);
  return n < 0 || (size_t)n >= cap ? BF_EINVAL : BF_OK;
}

/* Adds a generation (tail tables created, view published). seg may be NULL: a new
 * segment is created. A segment passed in stays the caller's if this fails before
 * listing the generation. Caller holds t->mu. */
int bf__gen_add(bf_store_t *s, bf_table_t *t, bf_wal_segment_t *seg, int sealed, bf_gen_t **out,
                   bf_error_t *err) {
  bf_table_store_t *ts = t->store;
  bf_gen_t *g = calloc(1, sizeof *g);
  bf_gen_t **grown = g ? realloc(ts->gens, (ts->n_gens + 1) * sizeof *grown) : NULL;
  if (grown == NULL) {
    free(g);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  ts->gens = grown;
  g->id = ++ts->next_gen;
  g->sealed = sealed;
  g->created_us = bf_time_now_us();
  bf_uuid4_string(g->txn_id);
  snprintf(g->tail, sizeof g->tail, "t%llu_g%llu", (unsigned long long)ts->index,
           (unsigned long long)g->id);
  int status = BF_OK;
  int created = seg == NULL;
  if (seg == NULL) {
    char dir[PATH_MAX + 64], path[PATH_MAX + 160], uuid[37];
    status = bf__wal_dir(s, t, dir, sizeof dir) == BF_OK ? bf_fs_mkdirs(dir, err)
                                                  : bf_error_set(err, BF_EINVAL, "path too long");
    bf_uuid4_string(uuid);
    snprintf(path, sizeof path, "%s/%020lld-%06llu-%.8s.wal", dir, (long long)g->created_us,
             (unsigned long long)(g->id % 1000000), uuid);
    if (status == BF_OK) status = bf_wal_segment_create(path, &seg, err);
  }
  if (status == BF_OK) status = bf_engine_tail_create(s->engine, t->catalog, t->schema_name, g->tail, &t->schema, err);
  if (status != BF_OK) {
    if (created && seg) bf_wal_segment_close(seg, 0); /* an adopted one is the caller's */
    bf__gen_free(s, g);
    return status;
  }
  g->seg = seg;
  ts->gens[ts->n_gens++] = g;
  bf_error_t view_err;
  bf_error_init(&view_err);
  /* A failed publish marks the table unavailable for queries (see
   * bf__store_publish); the generation still takes and keeps rows. */
  bf__store_publish(s, t, NULL, &view_err);
  *out = g;
  return BF_OK;
}

void bf__gen_remove(bf_table_t *t, bf_gen_t *g) {
  bf_table_store_t *ts = t->store;
  for (size_t i = 0; i < ts->n_gens; i++) {
    if (ts->gens[i] == g) {
      memmove(ts->gens + i, ts->gens + i + 1, (ts->n_gens - i - 1) * sizeof *ts->gens);
      ts->n_gens--;
      pthread_cond_broadcast(&ts->pending_cv); /* inserts waiting for its commit */
      return;
    }
  }
}

void bf__store_wake(bf_store_t *s) {
  pthread_mutex_lock(&s->mu);
  s->wake = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

int64_t bf_store_tail_rows(const bf_table_t *t) {
  int64_t rows = 0;
  if (t->store)
    for (size_t i = 0; i < t->store->n_gens; i++) rows += t->store->gens[i]->rows;
  return rows;
}
