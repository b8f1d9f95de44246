/* What engine_tail.c (a tail's lifetime) and engine_tail_append.c (what goes into
 * a tail) share: the tail's structure and the helpers both use. Nothing outside
 * these two files includes it; the rest of the engine sees a tail through
 * engine_internal.h (snapshots, pieces). */
#ifndef BF_ENGINE_TAIL_INTERNAL_H
#define BF_ENGINE_TAIL_INTERNAL_H

#include <stdatomic.h>

#include "engine/engine_internal.h"

typedef struct tail_columns {
  size_t n;
  char **names;
  duckdb_logical_type *types;
} tail_columns_t;

/* What a schema change replaced: freed with the tail. */
typedef struct tail_old {
  bf__tail_piece_t *chunks;
  size_t n_chunks;
  tail_columns_t columns;
} tail_old_t;

/* An Arrow schema as DuckDB reads it, shared by the batches that came with that
 * schema (a producer sends the same one with every batch): freed with the last. */
typedef struct converted_ref {
  duckdb_arrow_converted_schema schema;
  atomic_long refs;
} converted_ref_t;

/* A received batch shared by the tail and by the chunks made from its slices:
 * freed with the last. converted: its Arrow schema as DuckDB reads it (a share). */
struct bf__tail_batch {
  struct ArrowArray array;
  atomic_long refs;
  converted_ref_t *converted;
};
typedef bf__tail_batch_t batch_ref_t;

struct bf__tail {
  bf__tail_t *next;
  char *catalog;
  char *name;
  atomic_int refs; /* the engine's list (while not retired) + one per bound scan */
  int retired;
  double retired_at;
  pthread_mutex_t mu;     /* appends; the fields below (recursive: see append_converted) */
  duckdb_connection conn; /* conversions; used under mu (or by the one schema change) */
  pthread_mutex_t slice_mu;     /* slice_conn: a scan turning a piece into a chunk */
  duckdb_connection slice_conn; /* used by nothing else, so never inside one of its queries */
  tail_columns_t columns;
  bf__tail_piece_t *chunks; /* pieces */
  size_t n_chunks, cap_chunks;
  batch_ref_t **batches; /* each received batch the pieces point into, one reference each */
  size_t n_batches, cap_batches;
  int64_t rows;
  duckdb_result *results; /* materialized conversions the chunks point into */
  size_t n_results;
  tail_old_t *old;
  size_t n_old;
  /* The last batch schema whose slices read as exactly the tail's columns: its
   * signature (schema_signature) and DuckDB's reading of it (a share). A batch
   * with the same signature skips the conversion and the check. Cleared when the
   * columns change. */
  bf_buffer_t checked_signature;
  converted_ref_t *checked;
};

/* The tail, live or retired, with a reference taken; NULL if unknown. */
bf__tail_t *bf__tail_acquire(bf_engine_t *e, const char *catalog, const char *name);
void bf__tail_release(bf__tail_t *t);
/* Drops a share of a converted schema (NULL: nothing); the last frees it. */
void bf__converted_unref(converted_ref_t *c);
/* Forgets the tail's checked batch schema (its columns changed). Caller holds mu. */
void bf__tail_forget_checked(bf__tail_t *t);
/* Drops a share of a received batch; the last frees it. */
void bf__tail_batch_unref(batch_ref_t *b);
void bf__tail_columns_free(tail_columns_t *c);
void bf__tail_pieces_free(bf__tail_piece_t *pieces, size_t n);
/* Reads the column names and DuckDB types of a materialized result. */
int bf__tail_result_columns(duckdb_result *result, tail_columns_t *out, bf_error_t *err);

#endif
