/* WAL replay (see table_store.h): at table open and every second after, the WAL
 * segments no live process holds are adopted (oldest first) and their records
 * replayed into sealed generations, which the writer flushes at once. Records
 * already committed are skipped by their txn versions; records marked aborted
 * are skipped; a record that can never be applied (does not decode, decodes
 * beyond --max-batch-bytes) is skipped with an ERROR and the segment kept as
 * *.wal.corrupt; a replay that fails otherwise is undone and retried. */
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
  if (status == BF_OK && id[0] && bf__applied_seq(t, id) >= seq) {
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
  bf__tail_bytes_add(c->store, decoded);
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
    bf__gen_remove(t, g);
    bf_error_t view_err;
    bf_error_init(&view_err);
    if (bf__store_publish(s, t, g->tail, &view_err) != BF_OK)
      bf_engine_tail_drop(s->engine, t->catalog, g->tail);
    bf__gen_free(s, g);
    break;
  }
  bf_wal_segment_close(seg, 0);
}

/* Adopts every WAL segment of the table that no live process holds (oldest
 * first) as a sealed generation. Caller holds t->mu. */
int bf__store_adopt_orphans(bf_store_t *s, bf_table_t *t, bf_error_t *err) {
  char dir[PATH_MAX + 64];
  if (bf__wal_dir(s, t, dir, sizeof dir) != BF_OK) return BF_OK;
  DIR *d = opendir(dir);
  if (d == NULL) return BF_OK;
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  int64_t now_s = bf_time_now_ms() / 1000;
  while ((e = readdir(d)) != NULL) {
    if (bf_fs_name_has_suffix(e->d_name, ".wal.tmp")) {
      /* A segment whose creation never finished holds no acknowledged record. */
      char tmp[PATH_MAX + 400];
      struct stat st;
      snprintf(tmp, sizeof tmp, "%s/%s", dir, e->d_name);
      if (stat(tmp, &st) == 0 && now_s - (int64_t)st.st_mtime > 60) unlink(tmp);
      continue;
    }
    if (!bf_fs_name_has_suffix(e->d_name, ".wal")) continue;
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
    if (bf__seq_copy(&claims_before, &t->store->seqs) != BF_OK) {
      bf__seq_reset(&claims_before);
      bf_wal_segment_close(seg, 0);
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
      break;
    }
    bf_gen_t *g = NULL;
    status = bf__gen_add(s, t, seg, 1, &g, err);
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

