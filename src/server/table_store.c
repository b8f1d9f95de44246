/* The table write path (see table_store.h): generations of WAL segment + engine
 * tail, inserts with group commit, WAL replay, flushes and the background
 * writer. Maintenance operations live in table_maintenance.c.
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
}

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

static void seq_set_exact(bf_seq_map_t *m, const char *id, int64_t seq) {
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->ids[i], id) == 0) m->seqs[i] = seq;
}

static int seq_copy(bf_seq_map_t *dst, const bf_seq_map_t *src) {
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
static int64_t applied_seq(const bf_table_t *t, const char *id) {
  int64_t committed = bf_delta_snapshot_txn_version(&t->snapshot, id);
  int64_t tail = bf__seq_get(&t->store->seqs, id);
  return committed > tail ? committed : tail;
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

static int any_pending(const bf_table_store_t *ts) {
  for (size_t i = 0; i < ts->n_gens; i++)
    if (ts->gens[i]->pending > 0) return 1;
  return 0;
}

/* ---- generations -------------------------------------------------------------------- */

int64_t bf_store_tail_bytes(const bf_store_t *s) {
  return __atomic_load_n(&s->tail_bytes, __ATOMIC_RELAXED);
}

static void tail_bytes_add(bf_store_t *s, int64_t bytes) {
  __atomic_add_fetch(&s->tail_bytes, bytes, __ATOMIC_RELAXED);
}

static void gen_free(bf_store_t *s, bf_gen_t *g) {
  if (g == NULL) return;
  if (g->decoded_bytes) tail_bytes_add(s, -g->decoded_bytes);
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
  int mixed = bf_delta_schema_string(&t->schema, &own, &ignored) != BF_OK ||
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

static int wal_dir(const bf_table_t *t, char *out, size_t cap) {
  int n = snprintf(out, cap, "%s/_bifrost/wal", t->dir);
  return n < 0 || (size_t)n >= cap ? BF_EINVAL : BF_OK;
}

/* Adds a generation (tail tables created, view published). seg may be NULL: a new
 * segment is created. A segment passed in stays the caller's if this fails before
 * listing the generation. Caller holds t->mu. */
static int gen_add(bf_store_t *s, bf_table_t *t, bf_wal_segment_t *seg, int sealed, bf_gen_t **out,
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
  snprintf(g->tail, sizeof g->tail, "t%llu_g%llu", (unsigned long long)ts->index,
           (unsigned long long)g->id);
  int status = BF_OK;
  int created = seg == NULL;
  if (seg == NULL) {
    char dir[PATH_MAX + 64], path[PATH_MAX + 160], uuid[37];
    status = wal_dir(t, dir, sizeof dir) == BF_OK ? bf_fs_mkdirs(dir, err)
                                                  : bf_error_set(err, BF_EINVAL, "path too long");
    bf_uuid4_string(uuid);
    snprintf(path, sizeof path, "%s/%020lld-%06llu-%.8s.wal", dir, (long long)g->created_us,
             (unsigned long long)(g->id % 1000000), uuid);
    if (status == BF_OK) status = bf_wal_segment_create(path, &seg, err);
  }
  if (status == BF_OK) status = bf_engine_tail_create(s->engine, t->catalog, t->schema_name, g->tail, &t->schema, err);
  if (status != BF_OK) {
    if (created && seg) bf_wal_segment_close(seg, 0); /* an adopted one is the caller's */
    gen_free(s, g);
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

static void gen_remove(bf_table_t *t, bf_gen_t *g) {
  bf_table_store_t *ts = t->store;
  for (size_t i = 0; i < ts->n_gens; i++) {
    if (ts->gens[i] == g) {
      memmove(ts->gens + i, ts->gens + i + 1, (ts->n_gens - i - 1) * sizeof *ts->gens);
      ts->n_gens--;
      return;
    }
  }
}

int64_t bf_store_tail_rows(const bf_table_t *t) {
  int64_t rows = 0;
  if (t->store)
    for (size_t i = 0; i < t->store->n_gens; i++) rows += t->store->gens[i]->rows;
  return rows;
}

/* ---- WAL records ----------------------------------------------------------------------
 * data:  u8 RECORD_DATA | u16 producer id length | producer id | i64 sequence | IPC stream
 * abort: u8 RECORD_ABORT | u64 lsn of a data record in the same segment that was not
 *        acknowledged (its tail append failed after the fsync); replay skips it.
 * A record's lsn is its 1-based position in its segment. */

enum { RECORD_DATA = 1, RECORD_ABORT = 2 };
#define BF_MAX_PRODUCER_ID 1000 /* replay reads ids into a 1 KiB buffer */

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

static int decode_record(const uint8_t *p, size_t n, char *id, size_t id_cap, int64_t *seq,
                         const uint8_t **ipc, size_t *ipc_len) {
  if (n < 11 || p[0] != RECORD_DATA) return BF_ECORRUPT;
  size_t id_len = (size_t)p[1] | (size_t)p[2] << 8;
  if (n < 11 + id_len || id_len >= id_cap) return BF_ECORRUPT;
  memcpy(id, p + 3, id_len);
  id[id_len] = '\0';
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[3 + id_len + i] << (8 * i);
  *seq = (int64_t)v;
  *ipc = p + 11 + id_len;
  *ipc_len = n - 11 - id_len;
  return BF_OK;
}

/* ---- insert ----------------------------------------------------------------------------- */

int bf_store_insert(bf_store_t *s, bf_table_t *t, const bf_store_insert_t *in, int *duplicate,
                    int64_t *version, bf_error_t *err) {
  *duplicate = 0;
  /* Checksummed before any lock: only the copy into the page cache is serialized. */
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
  while (in->producer_id) {
    if (acknowledged_seq(t, in->producer_id) >= in->sequence) {
      *duplicate = 1;
      *version = t->snapshot.version;
      pthread_mutex_unlock(&t->mu);
      return BF_OK;
    }
    if (bf__seq_get(&ts->seqs, in->producer_id) < in->sequence || !any_pending(ts)) break;
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
  bf_gen_t *g = ts->n_gens ? ts->gens[ts->n_gens - 1] : NULL;
  if (g == NULL || g->sealed) status = gen_add(s, t, NULL, 0, &g, err);
  uint64_t lsn = 0;
  if (status == BF_OK) status = bf_wal_append_frame(g->seg, &frame, &lsn, err);
  if (status == BF_OK && in->producer_id) {
    /* Claim the sequence now, so a concurrent retry of this batch is a duplicate. */
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
    tail_bytes_add(s, in->decoded_bytes);
    if (in->producer_id && bf__seq_put(&g->seqs, in->producer_id, in->sequence) != BF_OK)
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  if (status != BF_OK) {
    /* Not acknowledged: a retry must be accepted again, and this segment may hold
     * a partial record, so no more appends go to it. */
    g->sealed = 1;
    if (in->producer_id && bf__seq_get(&ts->seqs, in->producer_id) == in->sequence)
      seq_set_exact(&ts->seqs, in->producer_id, previous);
    bf_error_prefix(err, "table %s", t->fqn);
  }
  /* g may be flushed and freed as soon as pending drops and the mutex is released. */
  int full = status == BF_OK && (g->rows >= s->options.flush_rows || g->bytes >= s->options.flush_bytes);
  g->pending--;
  pthread_cond_broadcast(&ts->pending_cv);
  *version = t->snapshot.version;
  pthread_mutex_unlock(&t->mu);
  if (full) bf__store_wake(s);
  return status;
}

/* ---- replay ------------------------------------------------------------------------------ */

typedef struct replay_ctx {
  bf_store_t *store;
  bf_table_t *table;
  bf_gen_t *gen;
  int64_t skipped;
  int64_t corrupt;      /* records whose checksum matched but that do not decode */
  uint64_t lsn;         /* position of the current record */
  uint64_t *aborted;    /* lsns named by abort records (first pass) */
  size_t n_aborted;
  bf_error_t *err;
} replay_ctx_t;

static int collect_aborts(void *p, const uint8_t *payload, size_t n) {
  replay_ctx_t *c = p;
  c->lsn++;
  if (n != 9 || payload[0] != RECORD_ABORT) return BF_OK;
  uint64_t lsn = 0;
  for (int i = 0; i < 8; i++) lsn |= (uint64_t)payload[1 + i] << (8 * i);
  uint64_t *grown = realloc(c->aborted, (c->n_aborted + 1) * sizeof *grown);
  if (grown == NULL) return bf_error_set(c->err, BF_ENOMEM, "out of memory");
  c->aborted = grown;
  c->aborted[c->n_aborted++] = lsn;
  return BF_OK;
}

/* Decodes every batch of an IPC stream (all or nothing). */
static int decode_batches(const uint8_t *ipc, size_t ipc_len, struct ArrowSchema *schema,
                          struct ArrowArray **out, size_t *n_out, int64_t *rows, bf_error_t *err) {
  bf_ipc_reader_t *reader = NULL;
  struct ArrowArray *batches = NULL;
  size_t n = 0;
  *rows = 0;
  int status = bf_ipc_reader_create(ipc, ipc_len, &reader, err);
  if (status == BF_OK) status = bf_ipc_reader_schema(reader, schema, err);
  while (status == BF_OK) {
    struct ArrowArray batch;
    int has = 0;
    status = bf_ipc_reader_next(reader, &batch, &has, err);
    if (status != BF_OK || !has) break;
    struct ArrowArray *grown = realloc(batches, (n + 1) * sizeof *grown);
    if (grown == NULL) {
      bf_arrow_array_release(&batch);
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
      break;
    }
    batches = grown;
    bf_arrow_array_move(&batch, &batches[n++]);
    *rows += batches[n - 1].length;
  }
  bf_ipc_reader_destroy(reader);
  if (status != BF_OK) {
    for (size_t i = 0; i < n; i++) bf_arrow_array_release(&batches[i]);
    free(batches);
    bf_arrow_schema_release(schema);
    return status;
  }
  *out = batches;
  *n_out = n;
  return BF_OK;
}

static int replay_record(void *p, const uint8_t *payload, size_t n) {
  replay_ctx_t *c = p;
  bf_table_t *t = c->table;
  c->lsn++;
  if (n >= 1 && payload[0] == RECORD_ABORT) return BF_OK;
  for (size_t i = 0; i < c->n_aborted; i++)
    if (c->aborted[i] == c->lsn) return BF_OK; /* never acknowledged */
  char id[1024] = "";
  int64_t seq = -1;
  const uint8_t *ipc;
  size_t ipc_len;
  struct ArrowSchema schema = {0};
  struct ArrowArray *batches = NULL;
  size_t n_batches = 0;
  int64_t rows = 0;
  bf_error_t decode_err;
  bf_error_init(&decode_err);
  int status = decode_record(payload, n, id, sizeof id, &seq, &ipc, &ipc_len);
  if (status != BF_OK) bf_error_set(&decode_err, status, "malformed WAL record");
  if (status == BF_OK && id[0] && applied_seq(t, id) >= seq) {
    c->skipped++;
    return BF_OK;
  }
  if (status == BF_OK)
    status = decode_batches(ipc, ipc_len, &schema, &batches, &n_batches, &rows, &decode_err);
  int64_t decoded = 0;
  for (size_t i = 0; i < n_batches && status == BF_OK; i++)
    decoded += bf_arrow_decoded_size(&schema, &batches[i]);
  int64_t max_bytes = c->store->options.max_batch_bytes;
  if (status == BF_OK && max_bytes > 0 && decoded > max_bytes)
    status = bf_error_set(&decode_err, BF_EINVAL,
                          "it decodes to %lld bytes, over the limit of %lld (--max-batch-bytes)",
                          (long long)decoded, (long long)max_bytes);
  if (status == BF_ECORRUPT || status == BF_EINVAL) {
    /* The checksum matched, so this is what was written; it cannot be applied, and
     * would fail the same way at every start. Skip it (the segment is kept aside
     * for inspection) rather than let it hold the records after it hostage. */
    BF_LOG_ERROR("table %s: WAL record %llu (producer '%s', sequence %lld) cannot be applied: %s; "
                 "skipped, the segment is kept as .corrupt",
                 t->fqn, (unsigned long long)c->lsn, id, (long long)seq, decode_err.message);
    for (size_t i = 0; i < n_batches; i++) bf_arrow_array_release(&batches[i]);
    free(batches);
    bf_arrow_schema_release(&schema);
    c->corrupt++;
    return BF_OK;
  }
  if (status != BF_OK) return bf_error_set(c->err, status, "%s", decode_err.message);
  for (size_t i = 0; i < n_batches && status == BF_OK; i++)
    if (batches[i].length > 0)
      status = bf_engine_tail_append(c->store->engine, t->catalog, c->gen->tail, &schema,
                                     &batches[i], c->err);
  for (size_t i = 0; i < n_batches; i++) bf_arrow_array_release(&batches[i]);
  free(batches);
  bf_arrow_schema_release(&schema);
  if (status != BF_OK) return status;
  c->gen->rows += rows;
  c->gen->bytes += (int64_t)ipc_len;
  c->gen->decoded_bytes += decoded;
  tail_bytes_add(c->store, decoded);
  if (id[0] && (bf__seq_put(&c->gen->seqs, id, seq) != BF_OK ||
                bf__seq_put(&t->store->seqs, id, seq) != BF_OK))
    return bf_error_set(c->err, BF_ENOMEM, "out of memory");
  return BF_OK;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Undoes the adoption of seg: its generation (if gen_add got as far as listing it)
 * leaves the list and the view, its tail is dropped, and the segment is closed
 * without removing it, which releases its lock. Caller holds t->mu. */
static void gen_forget_adopted(bf_store_t *s, bf_table_t *t, bf_wal_segment_t *seg) {
  bf_table_store_t *ts = t->store;
  for (size_t i = 0; i < ts->n_gens; i++) {
    bf_gen_t *g = ts->gens[i];
    if (g->seg != seg) continue;
    gen_remove(t, g);
    bf_error_t view_err;
    bf_error_init(&view_err);
    if (bf__store_publish(s, t, g->tail, &view_err) != BF_OK)
      bf_engine_tail_drop(s->engine, t->catalog, g->tail);
    gen_free(s, g);
    break;
  }
  bf_wal_segment_close(seg, 0);
}

/* Adopts every WAL segment of the table that no live process holds (oldest
 * first) as a sealed generation. Caller holds t->mu. */
int bf__store_adopt_orphans(bf_store_t *s, bf_table_t *t, bf_error_t *err) {
  char dir[PATH_MAX + 64];
  if (wal_dir(t, dir, sizeof dir) != BF_OK) return BF_OK;
  DIR *d = opendir(dir);
  if (d == NULL) return BF_OK;
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  int64_t now_s = bf_time_now_ms() / 1000;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len > 8 && strcmp(e->d_name + len - 8, ".wal.tmp") == 0) {
      /* A segment whose creation never finished holds no acknowledged record. */
      char tmp[PATH_MAX + 400];
      struct stat st;
      snprintf(tmp, sizeof tmp, "%s/%s", dir, e->d_name);
      if (stat(tmp, &st) == 0 && now_s - (int64_t)st.st_mtime > 60) unlink(tmp);
      continue;
    }
    if (len < 5 || strcmp(e->d_name + len - 4, ".wal") != 0) continue;
    int ours = 0;
    for (size_t i = 0; i < t->store->n_gens && !ours; i++)
      ours = t->store->gens[i]->seg &&
             strcmp(strrchr(bf_wal_segment_path(t->store->gens[i]->seg), '/') + 1, e->d_name) == 0;
    if (ours) continue;
    char **grown = realloc(names, (n + 1) * sizeof *names);
    if (grown == NULL) break;
    names = grown;
    if ((names[n] = strdup(e->d_name)) != NULL) n++;
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, compare_names);
  int status = BF_OK;
  for (size_t i = 0; i < n && status == BF_OK; i++) {
    char path[PATH_MAX + 400];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    bf_wal_segment_t *seg = NULL;
    int adopted = 0;
    status = bf_wal_segment_adopt(path, &seg, &adopted, err);
    if (status != BF_OK || !adopted) continue;
    /* Claims are restored if the replay fails, so the next attempt replays all. */
    bf_seq_map_t claims_before;
    if (seq_copy(&claims_before, &t->store->seqs) != BF_OK) {
      bf__seq_reset(&claims_before);
      bf_wal_segment_close(seg, 0);
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
      break;
    }
    bf_gen_t *g = NULL;
    status = gen_add(s, t, seg, 1, &g, err);
    replay_ctx_t c = {.store = s, .table = t, .gen = g, .err = err};
    uint64_t torn = 0;
    if (status == BF_OK) status = bf_wal_segment_read(seg, collect_aborts, &c, NULL, err);
    c.lsn = 0;
    if (status == BF_OK) status = bf_wal_segment_read(seg, replay_record, &c, &torn, err);
    free(c.aborted);
    if (status != BF_OK) {
      /* Never flush a partly replayed segment (its flush would delete the records
       * not yet read): forget the generation and release the segment, which is
       * adopted again on the next attempt. */
      gen_forget_adopted(s, t, seg);
      bf__seq_reset(&t->store->seqs);
      t->store->seqs = claims_before;
      bf_error_prefix(err, "replaying %s (kept for a later attempt)", path);
      break;
    }
    bf__seq_reset(&claims_before);
    uint64_t damaged_bytes = 0, damaged_regions = 0;
    bf_wal_segment_damage(seg, &damaged_bytes, &damaged_regions);
    if (damaged_regions)
      BF_LOG_ERROR("table %s: WAL segment %s is damaged: %llu bytes in %llu place(s) could not be "
                   "read (at least %llu acknowledged batch(es) lost); the %lld rows of every "
                   "other record were recovered; the segment is kept as .corrupt",
                   t->fqn, names[i], (unsigned long long)damaged_bytes,
                   (unsigned long long)damaged_regions, (unsigned long long)damaged_regions,
                   (long long)g->rows);
    if (c.corrupt || damaged_regions) { /* keep the evidence: the flush deletes the segment */
      char kept[PATH_MAX + 420];
      snprintf(kept, sizeof kept, "%s.corrupt", path);
      if (link(path, kept) != 0 && errno != EEXIST)
        BF_LOG_ERROR("table %s: cannot keep %s: %s", t->fqn, kept, strerror(errno));
    }
    status = bf__store_publish(s, t, NULL, err);
    BF_LOG_INFO("table %s: replayed WAL segment %s: %lld rows, %lld batches already committed%s%s",
                t->fqn, names[i], (long long)g->rows, (long long)c.skipped,
                torn ? " (torn tail discarded)" : "", c.corrupt ? " (undecodable records skipped)" : "");
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return status;
}

int bf_store_open_table(bf_store_t *s, bf_table_t *t, bf_error_t *err) {
  if (t->dropped)
    return bf_error_set(err, BF_ENOTFOUND, "table %s was removed (its directory is gone)", t->fqn);
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
  int status = bf_table_ensure_snapshot(t, err);
  if (status == BF_OK) {
    t->store->last_checkpoint_version = bf_delta_last_checkpoint_version(t->dir);
    status = bf__store_publish(s, t, NULL, err);
  }
  if (status == BF_OK) status = bf__store_adopt_orphans(s, t, err);
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

static bf_table_t **snapshot_tables(bf_registry_t *r, size_t *n) {
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
  bf_table_t **tables = snapshot_tables(s->registry, &n);
  for (size_t i = 0; i < n; i++) {
    bf_table_t *t = tables[i];
    bf_error_t err;
    bf_error_init(&err);
    pthread_mutex_lock(&t->mu);
    int opened = t->store && t->store->opened;
    int status = opened ? BF_OK : bf_store_open_table(s, t, &err);
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
      BF_LOG_INFO("table %s loaded at version %lld (%zu files, %lld rows replayed from the WAL)",
                  t->fqn, (long long)t->snapshot.version, t->snapshot.n_files,
                  (long long)bf_store_tail_rows(t));
  }
  free(tables);
}

void bf__table_store_free(bf_store_t *s, bf_table_t *t) {
  bf_table_store_t *ts = t->store;
  if (ts == NULL) return;
  for (size_t i = 0; i < ts->n_gens; i++) {
    bf_wal_segment_close(ts->gens[i]->seg, 0); /* kept for replay at the next start */
    gen_free(s, ts->gens[i]);
  }
  free(ts->gens);
  bf__seq_reset(&ts->seqs);
  pthread_cond_destroy(&ts->pending_cv);
  pthread_mutex_destroy(&ts->work_mu);
  free(ts);
  t->store = NULL;
}

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
  if (g->rows > 0) status = bf_write_lease_take(t->dir, &lease, err);
  if (g->rows > 0 && status == BF_OK)
    status = bf_engine_tail_write_parquet(s->engine, t->catalog, g->tail, t->dir, &t->schema,
                                          (const char *const *)t->partition_columns,
                                          t->n_partition_columns, &files, &n_files, err);
  if (status == BF_OK) status = bf__store_seal_files(t, files, n_files, err);
  if (status != BF_OK) {
    bf__store_remove_files(t, files, n_files);
    for (size_t i = 0; i < n_files; i++) bf_delta_file_reset(&files[i]);
    free(files);
    bf_write_lease_release(lease);
    return status;
  }
  pthread_mutex_lock(&t->mu);
  int64_t version = t->snapshot.version;
  double written = bf_time_monotonic();
  if (n_files > 0 || g->seqs.n > 0) {
    bf_delta_commit_t c = {.operation = "WRITE", .data_change = 1, .adds = files,
                           .n_adds = n_files, .txn_app_ids = (const char *const *)g->seqs.ids,
                           .txn_versions = g->seqs.seqs, .n_txns = g->seqs.n};
    status = bf_delta_log_commit(t->dir, &t->snapshot, &c, &version, err);
  }
  if (status == BF_OK) {
    gen_remove(t, g);
    bf_error_t view_err;
    bf_error_init(&view_err);
    /* The commit is durable; a failed view swap must not lose the generation's
     * rows from queries for long: the next publish retries it. */
    if (bf__store_publish(s, t, g->tail, &view_err) != BF_OK)
      BF_LOG_ERROR("table %s: swapping the view after commit %lld failed: %s", t->fqn,
                   (long long)version, view_err.message);
  }
  pthread_mutex_unlock(&t->mu);
  if (status != BF_OK) {
    bf__store_remove_files(t, files, n_files);
    for (size_t i = 0; i < n_files; i++) bf_delta_file_reset(&files[i]);
    free(files);
    bf_write_lease_release(lease);
    return status;
  }
  bf_write_lease_release(lease);
  for (size_t i = 0; i < n_files; i++) bf_delta_file_reset(&files[i]);
  free(files);
  bf_wal_segment_close(g->seg, 1);
  *rows += g->rows;
  if (g->rows > 0)
    BF_LOG_INFO("table %s: flushed %lld rows into %zu files at version %lld in %.0f ms "
                "(Parquet %.0f ms)", t->fqn, (long long)g->rows, n_files, (long long)version,
                (bf_time_monotonic() - started) * 1000, (written - started) * 1000);
  gen_free(s, g);
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
  while (any_pending(ts)) pthread_cond_wait(&ts->pending_cv, &t->mu);
  t->dropped = 1;
  int64_t rows = bf_store_tail_rows(t);
  for (size_t i = 0; i < ts->n_gens; i++) {
    bf_engine_tail_drop(s->engine, t->catalog, ts->gens[i]->tail);
    bf_wal_segment_close(ts->gens[i]->seg, 0);
    gen_free(s, ts->gens[i]);
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
    bf_table_t **tables = snapshot_tables(s->registry, &n);
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
  bf_table_t **tables = snapshot_tables(s->registry, &n);
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
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}
