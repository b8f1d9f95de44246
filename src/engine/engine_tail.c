/* Tails: a table's acknowledged rows that are not yet in Parquet, one tail per
 * generation, held in memory as the Arrow batches received (what goes into a tail,
 * and how a batch becomes pieces and chunks: engine_tail_append.c). This file keeps
 * their lifetime: creation, retirement, the snapshots scans take
 * (engine_tail_scan.c reads them through the table function bf_tail_scan).
 *
 * Lifetime: a tail lives in the engine's list until it is retired (flushed or
 * dropped); a query whose preparation began before the view swap may still bind
 * it, so a retired tail is kept until every such preparation has ended, and until
 * the last scan that bound it ends (reference count). It used to be kept for a
 * fixed 2 s, which held every flushed batch that long (measured: +175 MB peak RSS
 * at 3M rows ingested in 2 s). Chunks replaced by a schema change stay until the tail
 * is freed, for the scans that still hold them. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_tail_internal.h"

static double now_secs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bf__tail_columns_free(tail_columns_t *c) {
  for (size_t i = 0; i < c->n; i++) {
    if (c->names) free(c->names[i]);
    if (c->types && c->types[i]) duckdb_destroy_logical_type(&c->types[i]);
  }
  free(c->names);
  free(c->types);
  memset(c, 0, sizeof *c);
}

void bf__tail_pieces_free(bf__tail_piece_t *pieces, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (pieces[i].chunk) duckdb_destroy_data_chunk(&pieces[i].chunk);
  free(pieces);
}

static void tail_free(bf__tail_t *t) {
  bf__tail_pieces_free(t->chunks, t->n_chunks);
  for (size_t i = 0; i < t->n_old; i++) {
    bf__tail_pieces_free(t->old[i].chunks, t->old[i].n_chunks);
    bf__tail_columns_free(&t->old[i].columns);
  }
  free(t->old);
  for (size_t i = 0; i < t->n_batches; i++) bf__tail_batch_unref(t->batches[i]);
  free(t->batches);
  if (t->slice_conn) duckdb_disconnect(&t->slice_conn);
  pthread_mutex_destroy(&t->slice_mu);
  for (size_t i = 0; i < t->n_results; i++) duckdb_destroy_result(&t->results[i]);
  free(t->results);
  bf__tail_columns_free(&t->columns);
  bf__tail_forget_checked(t);
  if (t->conn) duckdb_disconnect(&t->conn);
  pthread_mutex_destroy(&t->mu);
  free(t->catalog);
  free(t->name);
  free(t);
}

/* Frees the retired tails that no scan holds and no running preparation can still
 * bind. Caller holds tails_mu. all: every retired tail no scan holds (teardown). */
static void sweep_locked(bf_engine_t *e, int all) {
  double oldest = e->preparing_overflow ? 0 : 1e300; /* start of the oldest preparation */
  for (int i = 0; i < BF_MAX_PREPARING; i++)
    if (e->preparing[i] > 0 && e->preparing[i] < oldest) oldest = e->preparing[i];
  bf__tail_t **link = &e->retired_tails;
  while (*link) {
    bf__tail_t *t = *link;
    if (atomic_load(&t->refs) == 0 && (all || oldest > t->retired_at)) {
      *link = t->next;
      tail_free(t);
    } else {
      link = &t->next;
    }
  }
}

static bf__tail_t *find_locked(bf__tail_t *list, const char *catalog, const char *name) {
  for (bf__tail_t *t = list; t; t = t->next)
    if (strcmp(t->name, name) == 0 && strcmp(t->catalog, catalog) == 0) return t;
  return NULL;
}

/* The tail, live or retired, with a reference taken; NULL if unknown. */
bf__tail_t *bf__tail_acquire(bf_engine_t *e, const char *catalog, const char *name) {
  pthread_mutex_lock(&e->tails_mu);
  bf__tail_t *t = find_locked(e->tails, catalog, name);
  if (t == NULL) t = find_locked(e->retired_tails, catalog, name);
  if (t) atomic_fetch_add(&t->refs, 1);
  pthread_mutex_unlock(&e->tails_mu);
  return t;
}

void bf__tail_release(bf__tail_t *t) { atomic_fetch_sub(&t->refs, 1); }

/* Reads the column names and DuckDB types of a materialized result. */
int bf__tail_result_columns(duckdb_result *result, tail_columns_t *out, bf_error_t *err) {
  size_t n = (size_t)duckdb_column_count(result);
  out->n = n;
  out->names = calloc(n ? n : 1, sizeof *out->names);
  out->types = calloc(n ? n : 1, sizeof *out->types);
  if (out->names == NULL || out->types == NULL) {
    bf__tail_columns_free(out);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    const char *name = duckdb_column_name(result, i);
    out->names[i] = strdup(name ? name : "");
    out->types[i] = duckdb_column_logical_type(result, i);
    if (out->names[i] == NULL || out->types[i] == NULL) {
      bf__tail_columns_free(out);
      return bf_error_set(err, BF_ENOMEM, "out of memory");
    }
  }
  return BF_OK;
}

void bf__converted_unref(converted_ref_t *c) {
  if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
    duckdb_destroy_arrow_converted_schema(&c->schema);
    free(c);
  }
}

void bf__tail_forget_checked(bf__tail_t *t) {
  bf__converted_unref(t->checked);
  t->checked = NULL;
  bf_buffer_reset(&t->checked_signature);
}

void bf__tail_batch_unref(batch_ref_t *b) {
  if (atomic_fetch_sub(&b->refs, 1) == 1) {
    if (b->array.release) b->array.release(&b->array);
    bf__converted_unref(b->converted);
    free(b);
  }
}

/* ---- create, retire ---------------------------------------------------------------------- */

int bf_engine_tail_create(bf_engine_t *engine, const char *catalog, const char *schema_name,
                          const char *tail, const bf_schema_t *schema, bf_error_t *err) {
  pthread_mutex_lock(&engine->ddl_mu);
  int status = bf__engine_ensure_catalog(engine, catalog, schema_name, err);
  pthread_mutex_unlock(&engine->ddl_mu);
  if (status != BF_OK) return status;
  bf__tail_t *t = calloc(1, sizeof *t);
  if (t == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&t->mu, &attr);
  pthread_mutexattr_destroy(&attr);
  pthread_mutex_init(&t->slice_mu, NULL);
  t->catalog = strdup(catalog);
  t->name = strdup(tail);
  if (t->catalog == NULL || t->name == NULL) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  if (status == BF_OK && duckdb_connect(engine->query_db, &t->conn) != DuckDBSuccess) {
    t->conn = NULL;
    status = bf_error_set(err, BF_EINTERNAL, "cannot connect to the query database");
  }
  if (status == BF_OK && duckdb_connect(engine->query_db, &t->slice_conn) != DuckDBSuccess) {
    t->slice_conn = NULL;
    status = bf_error_set(err, BF_EINTERNAL, "cannot connect to the query database");
  }
  /* The column types, as DuckDB names them, from an empty typed SELECT. */
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "SELECT ");
  for (size_t i = 0; i < schema->n_fields; i++) {
    if (i) bf__sql_append(&sql, ", ");
    bf__sql_append(&sql, "CAST(NULL AS ");
    bf__sql_type(&sql, &schema->fields[i]);
    bf__sql_append(&sql, ") AS ");
    bf__sql_ident(&sql, schema->fields[i].name);
  }
  bf__sql_append(&sql, " LIMIT 0");
  const char *text = bf__sql_cstr(&sql);
  if (status == BF_OK && text == NULL) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  if (status == BF_OK) {
    duckdb_result result;
    if (duckdb_query(t->conn, text, &result) != DuckDBSuccess)
      status = bf_error_set(err, BF_EQUERY, "%s", duckdb_result_error(&result));
    else
      status = bf__tail_result_columns(&result, &t->columns, err);
    duckdb_destroy_result(&result);
  }
  bf_buffer_reset(&sql);
  if (status != BF_OK) {
    tail_free(t);
    bf_error_prefix(err, "creating tail %s", tail);
    return status;
  }
  atomic_store(&t->refs, 1);
  pthread_mutex_lock(&engine->tails_mu);
  sweep_locked(engine, 0);
  if (find_locked(engine->tails, catalog, tail)) {
    status = bf_error_set(err, BF_EEXIST, "tail %s exists", tail);
  } else {
    t->next = engine->tails;
    engine->tails = t;
  }
  pthread_mutex_unlock(&engine->tails_mu);
  if (status != BF_OK) tail_free(t);
  return status;
}

void bf__engine_tail_retire(bf_engine_t *engine, const char *catalog, const char *tail) {
  pthread_mutex_lock(&engine->tails_mu);
  bf__tail_t **link = &engine->tails;
  while (*link && !(strcmp((*link)->name, tail) == 0 && strcmp((*link)->catalog, catalog) == 0))
    link = &(*link)->next;
  bf__tail_t *t = *link;
  if (t) {
    *link = t->next;
    t->retired = 1;
    t->retired_at = now_secs();
    t->next = engine->retired_tails;
    engine->retired_tails = t;
    atomic_fetch_sub(&t->refs, 1); /* the list's reference */
  }
  sweep_locked(engine, 0);
  pthread_mutex_unlock(&engine->tails_mu);
}

void bf_engine_tail_drop(bf_engine_t *engine, const char *catalog, const char *tail) {
  bf__engine_tail_retire(engine, catalog, tail);
}

int bf__engine_prepare_begin(bf_engine_t *engine) {
  pthread_mutex_lock(&engine->tails_mu);
  int token = -1;
  for (int i = 0; i < BF_MAX_PREPARING && token < 0; i++)
    if (engine->preparing[i] == 0) token = i;
  if (token >= 0) engine->preparing[token] = now_secs();
  else engine->preparing_overflow++;
  pthread_mutex_unlock(&engine->tails_mu);
  return token;
}

void bf__engine_prepare_end(bf_engine_t *engine, int token) {
  pthread_mutex_lock(&engine->tails_mu);
  if (token >= 0) engine->preparing[token] = 0;
  else engine->preparing_overflow--;
  sweep_locked(engine, 0);
  pthread_mutex_unlock(&engine->tails_mu);
}

void bf_engine_tails_sweep(bf_engine_t *engine) {
  pthread_mutex_lock(&engine->tails_mu);
  sweep_locked(engine, 0);
  pthread_mutex_unlock(&engine->tails_mu);
}

void bf__engine_tails_destroy(bf_engine_t *engine) {
  pthread_mutex_lock(&engine->tails_mu);
  while (engine->tails) {
    bf__tail_t *t = engine->tails;
    engine->tails = t->next;
    tail_free(t);
  }
  sweep_locked(engine, 1);
  pthread_mutex_unlock(&engine->tails_mu);
}

int64_t bf__engine_tail_rows(bf_engine_t *engine, const char *catalog, const char *tail) {
  bf__tail_t *t = bf__tail_acquire(engine, catalog, tail);
  if (t == NULL) return -1;
  pthread_mutex_lock(&t->mu);
  int64_t rows = t->rows;
  pthread_mutex_unlock(&t->mu);
  bf__tail_release(t);
  return rows;
}

/* ---- snapshots for scans ------------------------------------------------------------------ */

int bf__engine_tail_snapshot(bf_engine_t *engine, const char *catalog, const char *tail,
                             bf__tail_snapshot_t *out, bf_error_t *err) {
  memset(out, 0, sizeof *out);
  bf__tail_t *t = bf__tail_acquire(engine, catalog, tail);
  if (t == NULL) return bf_error_set(err, BF_ENOTFOUND, "tail %s.%s does not exist", catalog, tail);
  pthread_mutex_lock(&t->mu);
  out->tail = t;
  out->n_columns = t->columns.n;
  out->names = (const char *const *)t->columns.names;
  out->types = t->columns.types;
  out->rows = t->rows;
  out->n_pieces = t->n_chunks;
  out->pieces = malloc((t->n_chunks ? t->n_chunks : 1) * sizeof *out->pieces);
  if (out->pieces && t->n_chunks) memcpy(out->pieces, t->chunks, t->n_chunks * sizeof *out->pieces);
  pthread_mutex_unlock(&t->mu);
  if (out->pieces == NULL) {
    bf__tail_release(t);
    memset(out, 0, sizeof *out);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  return BF_OK;
}

void bf__engine_tail_snapshot_release(bf__tail_snapshot_t *snapshot) {
  if (snapshot->tail) bf__tail_release(snapshot->tail);
  free(snapshot->pieces);
  memset(snapshot, 0, sizeof *snapshot);
}

