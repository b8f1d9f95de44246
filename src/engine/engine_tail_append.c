/* What goes into a tail (engine_tail.c keeps its lifetime). A received batch is
 * kept as it arrived, cut into pieces of at most 2,048 rows; a piece becomes a
 * DuckDB data chunk pointing into the batch's own buffers
 * (duckdb_data_chunk_from_arrow over a slice: nothing is copied, no SQL runs, no
 * table statistics are kept) only while a scan reads it
 * (bf__engine_tail_piece_chunk), so the tail holds the Arrow data and not also
 * DuckDB's 16-byte string descriptors per string value. A batch whose columns are
 * not the tail's (a producer of an older schema version) is converted by one SELECT
 * that casts it to the tail's columns, the missing ones null; those rows stay
 * materialized chunks. A schema change rebuilds the tail's chunks with the new
 * column. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_tail_internal.h"

#define CHUNK_ROWS 2048

/* Adds a materialized chunk; the caller reserved room (reserve_chunks). */
static void add_chunk(bf__tail_t *t, duckdb_data_chunk chunk) {
  int64_t len = (int64_t)duckdb_data_chunk_get_size(chunk);
  t->chunks[t->n_chunks++] = (bf__tail_piece_t){.chunk = chunk, .len = len};
  t->rows += len;
}

/* Makes room for n more chunks. */
static int reserve_chunks(bf__tail_t *t, size_t n) {
  size_t need = t->n_chunks + n;
  if (need <= t->cap_chunks) return BF_OK;
  size_t cap = 2 * t->cap_chunks > need ? 2 * t->cap_chunks : need;
  bf__tail_piece_t *grown = realloc(t->chunks, cap * sizeof *grown);
  if (grown == NULL) return BF_ENOMEM;
  t->chunks = grown;
  t->cap_chunks = cap;
  return BF_OK;
}

/* Keeps a materialized result whose chunks the tail holds. */
static int keep_result(bf__tail_t *t, duckdb_result *result) {
  duckdb_result *grown = realloc(t->results, (t->n_results + 1) * sizeof *grown);
  if (grown == NULL) return BF_ENOMEM;
  t->results = grown;
  t->results[t->n_results++] = *result;
  return BF_OK;
}

/* One slice handed to DuckDB: shallow copies of the batch's columns with their
 * offsets moved; releasing it releases its share of the batch. */
typedef struct slice {
  struct ArrowArray *columns;
  struct ArrowArray **pointers;
  batch_ref_t *batch;
} slice_t;

static void column_release(struct ArrowArray *array) { array->release = NULL; }

static void slice_release(struct ArrowArray *array) {
  slice_t *s = array->private_data;
  if (s) {
    bf__tail_batch_unref(s->batch);
    free(s->columns);
    free(s->pointers);
    free(s);
  }
  array->release = NULL;
}

/* Nulls among an array's rows [offset, offset + length) by its validity bitmap. */
static int64_t slice_nulls(const struct ArrowArray *a) {
  const uint8_t *bits = a->buffers && a->n_buffers > 0 ? a->buffers[0] : NULL;
  if (bits == NULL || a->null_count == 0) return 0;
  return bf_arrow_count_nulls(bits, a->offset, a->length);
}

/* Converts rows [start, start + len) of the batch into a data chunk. */
static int slice_chunk(duckdb_connection conn, batch_ref_t *b, duckdb_arrow_converted_schema converted,
                       int64_t start, int64_t len, duckdb_data_chunk *out, bf_error_t *err) {
  const struct ArrowArray *batch = &b->array;
  size_t n = (size_t)batch->n_children;
  slice_t *s = calloc(1, sizeof *s);
  if (s) {
    s->columns = calloc(n ? n : 1, sizeof *s->columns);
    s->pointers = calloc(n ? n : 1, sizeof *s->pointers);
  }
  if (s == NULL || s->columns == NULL || s->pointers == NULL) {
    if (s) free(s->columns), free(s->pointers);
    free(s);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    s->columns[i] = *batch->children[i];
    s->columns[i].offset += batch->offset + start;
    s->columns[i].length = len;
    /* The slice's own count, never "unknown" (-1): DuckDB reads a dictionary
     * column's validity only when its null_count is positive, and took a null enum
     * for the index stored under it (the first value, or past the end of an empty
     * dictionary: a crash). */
    s->columns[i].null_count = slice_nulls(&s->columns[i]);
    s->columns[i].release = column_release;
    s->pointers[i] = &s->columns[i];
  }
  s->batch = b;
  atomic_fetch_add(&b->refs, 1);
  struct ArrowArray top = *batch;
  top.offset = 0;
  top.length = len;
  top.null_count = 0;
  top.children = s->pointers;
  top.release = slice_release;
  top.private_data = s;
  *out = NULL;
  duckdb_error_data error = duckdb_data_chunk_from_arrow(conn, &top, converted, out);
  int status = BF_OK;
  if (error && duckdb_error_data_has_error(error))
    status = bf_error_set(err, BF_EINVAL, "DuckDB cannot read the Arrow batch: %s", duckdb_error_data_message(error));
  else if (*out == NULL)
    status = bf_error_set(err, BF_EINTERNAL, "DuckDB cannot read the Arrow batch");
  if (error) duckdb_destroy_error_data(&error);
  if (top.release) top.release(&top); /* not taken over */
  if (status != BF_OK && *out) duckdb_destroy_data_chunk(out);
  return status;
}

/* Whether a converted chunk's columns are exactly the tail's (names checked by the caller). */
static int chunk_matches(const tail_columns_t *columns, duckdb_data_chunk chunk) {
  if ((size_t)duckdb_data_chunk_get_column_count(chunk) != columns->n) return 0;
  int same = 1;
  for (size_t i = 0; same && i < columns->n; i++) {
    duckdb_logical_type have = duckdb_vector_get_column_type(duckdb_data_chunk_get_vector(chunk, i));
    same = bf__duckdb_same_type(have, columns->types[i]);
    duckdb_destroy_logical_type(&have);
  }
  return same;
}

static int same_names(const tail_columns_t *columns, const struct ArrowSchema *schema) {
  if ((size_t)schema->n_children != columns->n) return 0;
  for (size_t i = 0; i < columns->n; i++) {
    const char *name = schema->children[i]->name;
    if (name == NULL || strcmp(name, columns->names[i]) != 0) return 0;
  }
  return 1;
}

/* Appends a text that identifies an Arrow schema for DuckDB's reading of it:
 * format, name, flags and children of every field, each string with its length.
 * BF_EINVAL for a schema with metadata (an extension type can change the
 * reading; our IPC reader attaches none, so it is never cached). */
static int schema_signature(const struct ArrowSchema *s, bf_buffer_t *out) {
  if (s->metadata) return BF_EINVAL;
  const char *format = s->format ? s->format : "", *name = s->name ? s->name : "";
  char head[96];
  int n = snprintf(head, sizeof head, "(%zu:%zu:%lld:%lld:%c", strlen(format), strlen(name),
                   (long long)s->flags, (long long)s->n_children, s->dictionary ? 'd' : '-');
  int status = bf_buffer_append(out, head, (size_t)n);
  if (status == BF_OK) status = bf_buffer_append(out, format, strlen(format));
  if (status == BF_OK) status = bf_buffer_append(out, name, strlen(name));
  if (status == BF_OK && s->dictionary) status = schema_signature(s->dictionary, out);
  for (int64_t i = 0; status == BF_OK && i < s->n_children; i++) status = schema_signature(s->children[i], out);
  if (status == BF_OK) status = bf_buffer_append(out, ")", 1);
  return status;
}

/* DuckDB's reading of the batch's schema (a share, in *out) when its slices read as
 * exactly the tail's columns, else *out = NULL. One row is enough: a chunk's types
 * come from the schema, not the data. */
static int convert_and_check(bf__tail_t *t, const struct ArrowSchema *schema, batch_ref_t *b,
                             converted_ref_t **out, bf_error_t *err) {
  *out = NULL;
  converted_ref_t *c = calloc(1, sizeof *c);
  if (c == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  atomic_store(&c->refs, 1);
  duckdb_error_data error = duckdb_schema_from_arrow(t->conn, (struct ArrowSchema *)schema, &c->schema);
  int failed = error && duckdb_error_data_has_error(error);
  if (error) duckdb_destroy_error_data(&error);
  if (failed || c->schema == NULL) {
    if (c->schema) duckdb_destroy_arrow_converted_schema(&c->schema);
    free(c);
    return BF_OK;
  }
  duckdb_data_chunk first = NULL;
  int status = slice_chunk(t->conn, b, c->schema, 0, 1, &first, err);
  int matches = status == BF_OK && chunk_matches(&t->columns, first);
  if (first) duckdb_destroy_data_chunk(&first);
  if (matches)
    *out = c;
  else
    bf__converted_unref(c);
  return status;
}

/* As convert_and_check, through the tail's memory of the last schema that matched,
 * so a producer's batches after its first skip the conversion and the check (they
 * were 7-8 % of the server's CPU for 1,000-row batches). */
static int matching_schema(bf__tail_t *t, const struct ArrowSchema *schema, batch_ref_t *b,
                           converted_ref_t **out, bf_error_t *err) {
  bf_buffer_t signature;
  bf_buffer_init(&signature);
  int cacheable = schema_signature(schema, &signature) == BF_OK, status = BF_OK;
  if (cacheable && t->checked && signature.size == t->checked_signature.size &&
      memcmp(signature.data, t->checked_signature.data, signature.size) == 0) {
    atomic_fetch_add(&t->checked->refs, 1);
    *out = t->checked;
  } else {
    status = convert_and_check(t, schema, b, out, err);
    if (*out && cacheable) {
      bf__tail_forget_checked(t);
      t->checked_signature = signature;
      bf_buffer_init(&signature);
      atomic_fetch_add(&(*out)->refs, 1);
      t->checked = *out;
    }
  }
  bf_buffer_reset(&signature);
  return status;
}

/* The zero-copy path: the batch's slices become the tail's pieces, turned into
 * chunks when scanned. *fallback is set, with nothing added, when its columns are
 * not exactly the tail's. */
static int append_slices(bf__tail_t *t, const struct ArrowSchema *schema, batch_ref_t *b, int *fallback,
                         bf_error_t *err) {
  *fallback = 0;
  converted_ref_t *converted = NULL;
  int status = matching_schema(t, schema, b, &converted, err);
  if (status != BF_OK || converted == NULL) {
    *fallback = status == BF_OK;
    return status;
  }
  int64_t length = b->array.length;
  size_t n_pieces = (size_t)((length + CHUNK_ROWS - 1) / CHUNK_ROWS);
  if (t->n_batches == t->cap_batches) {
    size_t cap = t->cap_batches ? 2 * t->cap_batches : 16;
    batch_ref_t **grown = realloc(t->batches, cap * sizeof *grown);
    if (grown) t->batches = grown, t->cap_batches = cap;
  }
  if (t->n_batches == t->cap_batches || reserve_chunks(t, n_pieces) != BF_OK) {
    bf__converted_unref(converted);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  b->converted = converted;
  atomic_fetch_add(&b->refs, 1); /* the tail's */
  t->batches[t->n_batches++] = b;
  for (size_t k = 0; k < n_pieces; k++) {
    int64_t start = (int64_t)k * CHUNK_ROWS;
    int64_t len = length - start < CHUNK_ROWS ? length - start : CHUNK_ROWS;
    t->chunks[t->n_chunks++] = (bf__tail_piece_t){.batch = b, .start = start, .len = len};
  }
  t->rows += length;
  return BF_OK;
}

int bf__engine_tail_piece_chunk(const bf__tail_snapshot_t *snapshot, const bf__tail_piece_t *piece,
                                duckdb_data_chunk *out, int *owned, bf_error_t *err) {
  *owned = 0;
  if (piece->chunk) {
    *out = piece->chunk;
    return BF_OK;
  }
  bf__tail_t *t = snapshot->tail;
  pthread_mutex_lock(&t->slice_mu);
  int status = slice_chunk(t->slice_conn, piece->batch, piece->batch->converted->schema, piece->start, piece->len,
                           out, err);
  pthread_mutex_unlock(&t->slice_mu);
  *owned = status == BF_OK;
  return status;
}

/* Runs a SELECT on the tail's connection and adds every chunk of its
 * materialized result to the tail, all or none (the result is kept: the chunks
 * point into it). columns_out (may be NULL) gets the result's columns. */
static int add_query_chunks(bf__tail_t *t, const char *sql, tail_columns_t *columns_out,
                            bf_error_t *err) {
  duckdb_result result;
  if (duckdb_query(t->conn, sql, &result) != DuckDBSuccess) {
    int status = bf_error_set(err, BF_EQUERY, "%s", duckdb_result_error(&result));
    duckdb_destroy_result(&result);
    return status;
  }
  int status = columns_out ? bf__tail_result_columns(&result, columns_out, err) : BF_OK;
  duckdb_data_chunk *got = NULL;
  size_t n_got = 0;
  for (duckdb_data_chunk chunk; status == BF_OK && (chunk = duckdb_fetch_chunk(result)) != NULL;) {
    duckdb_data_chunk *grown = realloc(got, (n_got + 1) * sizeof *grown);
    if (grown == NULL) {
      duckdb_destroy_data_chunk(&chunk);
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
      break;
    }
    got = grown;
    got[n_got++] = chunk;
  }
  if (status == BF_OK && reserve_chunks(t, n_got) != BF_OK) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  if (status == BF_OK && keep_result(t, &result) != BF_OK) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  for (size_t k = 0; k < n_got; k++) {
    if (status == BF_OK)
      add_chunk(t, got[k]); /* room reserved */
    else
      duckdb_destroy_data_chunk(&got[k]);
  }
  free(got);
  if (status != BF_OK) {
    duckdb_destroy_result(&result);
    if (columns_out) bf__tail_columns_free(columns_out);
  }
  return status;
}

/* The general path: the batch goes through a temporary table typed like the tail
 * (INSERT ... BY NAME casts each column by name, the missing ones null) and
 * comes back as chunks. The scan that types the table re-enters the tail's
 * (recursive) lock on this thread. */
static int append_converted(bf__tail_t *t, const struct ArrowSchema *schema, const struct ArrowArray *batch,
                            bf_error_t *err) {
  char uuid[37], scan[64], staged[64];
  bf_uuid4_string(uuid);
  snprintf(scan, sizeof scan, "bf_tmp_%.8s%.4s%.4s", uuid, uuid + 9, uuid + 14);
  snprintf(staged, sizeof staged, "bf_conv_%.8s%.4s%.4s", uuid, uuid + 9, uuid + 14);
  duckdb_arrow_stream stream = NULL;
  if (duckdb_arrow_array_scan(t->conn, scan, (duckdb_arrow_schema)schema, (duckdb_arrow_array)batch, &stream) !=
      DuckDBSuccess)
    return bf_error_set(err, BF_EINVAL, "DuckDB cannot read the Arrow batch");
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "CREATE TEMP TABLE ");
  bf__sql_ident(&sql, staged);
  bf__sql_append(&sql, " AS SELECT * FROM ");
  bf__sql_tail_scan(&sql, t->catalog, t->name);
  bf__sql_append(&sql, " LIMIT 0; INSERT INTO ");
  bf__sql_ident(&sql, staged);
  bf__sql_append(&sql, " BY NAME SELECT * FROM ");
  bf__sql_ident(&sql, scan);
  const char *text = bf__sql_cstr(&sql);
  int status = text ? bf__sql_exec(t->conn, text, err) : bf_error_set(err, BF_ENOMEM, "out of memory");
  if (status == BF_OK) {
    sql.size = 0;
    bf__sql_append(&sql, "SELECT * FROM ");
    bf__sql_ident(&sql, staged);
    text = bf__sql_cstr(&sql);
    status = text ? add_query_chunks(t, text, NULL, err) : bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  sql.size = 0;
  bf__sql_append(&sql, "DROP VIEW IF EXISTS ");
  bf__sql_ident(&sql, scan);
  bf__sql_append(&sql, "; DROP TABLE IF EXISTS ");
  bf__sql_ident(&sql, staged);
  if ((text = bf__sql_cstr(&sql))) bf__sql_exec(t->conn, text, NULL);
  bf_buffer_reset(&sql);
  duckdb_destroy_arrow_stream(&stream);
  return status;
}

/* DuckDB 1.4 crashes sorting a dictionary-encoded string column whose dictionary
 * is empty (every row null: what pyarrow makes of an all-null column cast to a
 * dictionary, and what any client may send): such a dictionary gets one null
 * value for the null rows to point at. Nested columns are looked into too. */
static int fill_empty_dictionaries(const struct ArrowSchema *schema, struct ArrowArray *a) {
  for (int64_t i = 0; i < schema->n_children && i < a->n_children; i++)
    BF_RETURN_NOT_OK(fill_empty_dictionaries(schema->children[i], a->children[i]));
  if (!schema->dictionary || !a->dictionary || a->dictionary->length > 0 || a->length == 0) return BF_OK;
  const char *f = schema->dictionary->format;
  int wide = strcmp(f, "U") == 0 || strcmp(f, "Z") == 0;
  if (!wide && strcmp(f, "u") != 0 && strcmp(f, "z") != 0) return BF_OK; /* refused by the checks */
  struct ArrowArray one;
  BF_RETURN_NOT_OK(bf_arrow_array_init(&one, 3, 0));
  uint8_t *validity = calloc(1, 1), *data = malloc(1);
  void *offsets = calloc(2, wide ? 8 : 4);
  if (validity == NULL || data == NULL || offsets == NULL) {
    free(validity), free(data), free(offsets);
    bf_arrow_array_release(&one);
    return BF_ENOMEM;
  }
  bf_arrow_array_set_buffer(&one, 0, validity);
  bf_arrow_array_set_buffer(&one, 1, offsets);
  bf_arrow_array_set_buffer(&one, 2, data);
  one.length = one.null_count = 1;
  bf_arrow_array_release(a->dictionary);
  bf_arrow_array_move(&one, a->dictionary);
  return BF_OK;
}

int bf_engine_tail_append(bf_engine_t *engine, const char *catalog, const char *tail,
                          const struct ArrowSchema *batch_schema, struct ArrowArray *batch,
                          bf_error_t *err) {
  if (batch->length <= 0) return BF_OK;
  if (fill_empty_dictionaries(batch_schema, batch) != BF_OK) return bf_error_set(err, BF_ENOMEM, "out of memory");
  bf__tail_t *t = bf__tail_acquire(engine, catalog, tail);
  if (t == NULL) return bf_error_set(err, BF_ENOTFOUND, "appending to tail %s: it does not exist", tail);
  batch_ref_t *b = calloc(1, sizeof *b);
  if (b == NULL) {
    bf__tail_release(t);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  pthread_mutex_lock(&t->mu);
  int status = BF_OK, fallback = 1, moved = 0;
  if (t->retired) {
    status = bf_error_set(err, BF_EINTERNAL, "tail %s was already flushed", tail);
  } else {
    /* The batch's buffers now belong to the tail's chunks (each holds a share). */
    b->array = *batch;
    batch->release = NULL;
    atomic_store(&b->refs, 1);
    moved = 1;
    if (same_names(&t->columns, batch_schema)) status = append_slices(t, batch_schema, b, &fallback, err);
    if (status == BF_OK && fallback) status = append_converted(t, batch_schema, &b->array, err);
  }
  pthread_mutex_unlock(&t->mu);
  if (moved)
    bf__tail_batch_unref(b); /* our own share */
  else
    free(b);
  bf__tail_release(t);
  if (status != BF_OK) bf_error_prefix(err, "appending to tail %s", tail);
  return status;
}

/* ---- schema change ------------------------------------------------------------------------ */

int bf_engine_tail_add_column(bf_engine_t *engine, const char *catalog, const char *tail,
                              const char *const *path, size_t depth, const bf_field_t *field,
                              bf_error_t *err) {
  bf__tail_t *t = bf__tail_acquire(engine, catalog, tail);
  if (t == NULL) return bf_error_set(err, BF_ENOTFOUND, "tail %s does not exist", tail);
  /* The rows go through a temporary table that takes the new column the way a
   * table does (nested struct fields included), and come back as the tail's chunks. */
  char uuid[37], staged[64];
  bf_uuid4_string(uuid);
  snprintf(staged, sizeof staged, "bf_evolve_%.8s%.4s%.4s", uuid, uuid + 9, uuid + 14);
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "CREATE TEMP TABLE ");
  bf__sql_ident(&sql, staged);
  bf__sql_append(&sql, " AS SELECT * FROM ");
  bf__sql_tail_scan(&sql, catalog, tail);
  bf__sql_append(&sql, "; ALTER TABLE ");
  bf__sql_ident(&sql, staged);
  bf__sql_append(&sql, " ADD COLUMN ");
  for (size_t i = 0; i < depth; i++) {
    if (i) bf__sql_append(&sql, ".");
    bf__sql_ident(&sql, path[i]);
  }
  bf__sql_append(&sql, " ");
  bf__sql_type(&sql, field);
  const char *text = bf__sql_cstr(&sql);
  /* The caller keeps appends away: the scan inside takes the tail's lock. */
  int status = text ? bf__sql_exec(t->conn, text, err) : bf_error_set(err, BF_ENOMEM, "out of memory");
  if (status == BF_OK) {
    pthread_mutex_lock(&t->mu);
    tail_old_t *grown = realloc(t->old, (t->n_old + 1) * sizeof *grown);
    if (grown == NULL) {
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
    } else {
      t->old = grown;
      tail_old_t *old = &t->old[t->n_old++];
      old->chunks = t->chunks;
      old->n_chunks = t->n_chunks;
      old->columns = t->columns;
      t->chunks = NULL;
      t->n_chunks = t->cap_chunks = 0;
      t->rows = 0;
      memset(&t->columns, 0, sizeof t->columns);
      bf__tail_forget_checked(t);
      sql.size = 0;
      bf__sql_append(&sql, "SELECT * FROM ");
      bf__sql_ident(&sql, staged);
      text = bf__sql_cstr(&sql);
      status = text ? add_query_chunks(t, text, &t->columns, err) : bf_error_set(err, BF_ENOMEM, "out of memory");
      if (status != BF_OK) { /* back to the rows as they were */
        bf__tail_pieces_free(t->chunks, t->n_chunks);
        bf__tail_columns_free(&t->columns);
        t->n_old--;
        t->chunks = old->chunks;
        t->n_chunks = t->cap_chunks = old->n_chunks;
        t->columns = old->columns;
        t->rows = 0;
        for (size_t k = 0; k < t->n_chunks; k++) t->rows += t->chunks[k].len;
      }
    }
    pthread_mutex_unlock(&t->mu);
  }
  sql.size = 0;
  bf__sql_append(&sql, "DROP TABLE IF EXISTS ");
  bf__sql_ident(&sql, staged);
  if ((text = bf__sql_cstr(&sql))) bf__sql_exec(t->conn, text, NULL);
  bf_buffer_reset(&sql);
  bf__tail_release(t);
  if (status != BF_OK) bf_error_prefix(err, "adding column %s to tail %s", field->name, tail);
  return status;
}

