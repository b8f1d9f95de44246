/* The server's DuckDB engine: one sandboxed query database where every table is a
 * view under its three-part name catalog.schema_name.table, and a separate
 * unsandboxed ingest database used only to write Parquet files (zstd) from Arrow
 * batches. Thread-safety: all functions may be called from several threads;
 * view DDL is serialized internally, queries run on per-call connections. */
#ifndef BIFROST_ENGINE_H
#define BIFROST_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/arrow.h"
#include "bifrost/delta.h"
#include "bifrost/error.h"
#include "bifrost/query_param.h"
#include "bifrost/schema.h"
#include "bifrost/util.h"

typedef struct bf_engine bf_engine_t;

typedef struct bf_engine_options {
  const char *memory_limit;     /* e.g. "4GB"; NULL = DuckDB default */
  int threads;                  /* 0 = DuckDB default */
  double query_timeout_secs;    /* 0 = none; enforced with duckdb_interrupt */
  size_t chunk_bytes;           /* target IPC chunk size for results; 0 = 4 MiB */
  int64_t max_result_rows;      /* 0 = unlimited; larger results fail with BF_EFULL */
  int64_t max_result_bytes;     /* 0 = unlimited; IPC bytes, larger results fail with BF_EFULL */
  int64_t max_sql_bytes;        /* longest SQL text; 0 = unlimited */
  int64_t max_value_bytes;      /* largest constant count of repeat/lpad/rpad/range; 0 = unlimited */
  int max_query_selects;        /* SELECT blocks per query; 0 = 256 */
  int max_query_depth;          /* syntax tree nesting; 0 = 500 */
  /* Tables on S3 (data_dir "s3://bucket/prefix"): DuckDB's httpfs extension file and
   * the credentials, loaded into both databases before the query one is locked. */
  const char *httpfs_extension;
  const char *s3_key_id, *s3_secret, *s3_session_token, *s3_region;
  const char *s3_endpoint;      /* "host:port" of an S3-compatible store; NULL = AWS */
  int s3_use_ssl;               /* with s3_endpoint: https (else plain http) */
} bf_engine_options_t;

/* Opens both databases and locks down the query database: allowed_directories =
 * data_dir, enable_external_access = false, autoinstall/autoload off,
 * lock_configuration = true. A local data_dir must exist (its absolute path is
 * resolved); an s3:// one needs the httpfs and S3 options. */
int bf_engine_create(const char *data_dir, const bf_engine_options_t *options,
                     bf_engine_t **out, bf_error_t *err);
void bf_engine_destroy(bf_engine_t *engine);

/* ---- the tail: acknowledged rows not yet in Parquet ------------------------------
 * A tail is one generation of a table's acknowledged rows, named by the caller
 * (an identifier, unique per server), held in memory as the batches received
 * and read by the table's view through bf_tail_scan(catalog, tail). */

/* Creates an empty tail with the table's columns. */
int bf_engine_tail_create(bf_engine_t *engine, const char *catalog, const char *schema_name,
                          const char *tail, const bf_schema_t *schema, bf_error_t *err);
/* Appends one batch (struct array + schema as produced by bf_ipc_reader); all or
 * nothing. Takes ownership of the batch's buffers (batch->release is cleared)
 * unless the tail does not exist. */
int bf_engine_tail_append(bf_engine_t *engine, const char *catalog, const char *tail,
                          const struct ArrowSchema *batch_schema, struct ArrowArray *batch,
                          bf_error_t *err);
/* Writes the tail's rows as zstd Parquet files under table_dir, split by partition
 * (scouter_partition_date, then partition_columns; the partition columns left out
 * of the files; unique names), through the ingest database. Returns the files
 * (paths relative to table_dir, partition values, size, num_records, Delta stats
 * JSON) in *out_files (malloc'd array; caller resets each and frees). */
int bf_engine_tail_write_parquet(bf_engine_t *engine, const char *catalog, const char *tail,
                                 const char *table_dir, const bf_schema_t *schema,
                                 const char *const *partition_columns, size_t n_partition_columns,
                                 bf_delta_file_t **out_files, size_t *n_out_files, bf_error_t *err);
/* Drops a tail (bf_engine_set_table_view's drop_tail retires it right after the
 * view swap; this is for tails that never made it into a view). */
void bf_engine_tail_drop(bf_engine_t *engine, const char *catalog, const char *tail);
/* Frees retired tails past their grace period (2 s) that no query holds. */
void bf_engine_tails_sweep(bf_engine_t *engine);

/* Compaction: rewrites the given live files of a table (all in one partition or
 * not) into new files as large as possible, same rows; returns them like
 * bf_engine_tail_write_parquet. The inputs are left in place. */
int bf_engine_rewrite_files(bf_engine_t *engine, const char *table_dir, const bf_schema_t *schema,
                            const char *const *partition_columns, size_t n_partition_columns,
                            const bf_delta_file_t *inputs, size_t n_inputs,
                            bf_delta_file_t **out_files, size_t *n_out_files, bf_error_t *err);

/* Checkpoints: Delta actions as NDJSON <-> a classic checkpoint Parquet file.
 * write: creates dest_path atomically (temporary file in the same directory, then
 * rename). read: applies the file's actions to an empty snapshot, protocol and
 * metaData first (adds from typed columns; a checkpoint whose columns differ from
 * the ones we write is read as JSON lines). */
int bf_engine_checkpoint_write(bf_engine_t *engine, const char *ndjson, size_t len,
                               const char *dest_path, bf_error_t *err);
int bf_engine_checkpoint_read(bf_engine_t *engine, const char *path, bf_delta_snapshot_t *into,
                              bf_error_t *err);

/* Creates or atomically replaces the view catalog.schema_name.table over the given
 * live files (absolute dir table_dir + relative paths) and tails, with partition
 * column values taken from the file list and columns in schema order and types.
 * With neither the view is an empty typed relation. drop_tail (may be NULL) is
 * retired once the new view is committed: a query planned before the swap
 * still reads it, one planned after reads the files.
 * mixed_columns: the files may not all have the same columns (another writer
 * changed the table's schema), so they are matched by name (slower to bind). */
int bf_engine_set_table_view(bf_engine_t *engine, const char *catalog, const char *schema_name,
                             const char *table, const char *table_dir, const bf_schema_t *schema,
                             const char *const *partition_columns, size_t n_partition_columns,
                             const bf_delta_file_t *files, size_t n_files,
                             const char *const *tails, size_t n_tails, const char *drop_tail,
                             int mixed_columns, bf_error_t *err);

/* Schema evolution: adds a (nullable) column, or a field inside a struct column
 * (path: column, struct field or "element" of a list, ..., the new field's name;
 * depth parts), to a tail table; rows already in it read as null there. The caller
 * keeps appends to the tail away meanwhile. */
int bf_engine_tail_add_column(bf_engine_t *engine, const char *catalog, const char *tail,
                              const char *const *path, size_t depth, const bf_field_t *field,
                              bf_error_t *err);

/* Time travel: creates or replaces the view catalog.schema_name.view over the
 * files of an older table version (no tails), with the columns of `schema` (the
 * current one); those missing from `present` (the version's schema) read as null. */
int bf_engine_set_version_view(bf_engine_t *engine, const char *catalog, const char *schema_name,
                               const char *view, const char *table_dir, const bf_schema_t *schema,
                               const bf_schema_t *present, const char *const *partition_columns,
                               size_t n_partition_columns, const bf_delta_file_t *files,
                               size_t n_files, bf_error_t *err);

/* Drops the view catalog.schema_name.table (no-op if absent). */
void bf_engine_drop_table_view(bf_engine_t *engine, const char *catalog, const char *schema_name,
                               const char *table);

/* Marks a table ("catalog.schema.table") as not queryable here, with the reason
 * queries naming it get (BF_EUNAVAILABLE), or clears the mark (reason NULL):
 * a table whose WAL could not be replayed must not answer from a partial view. */
int bf_engine_set_table_unavailable(bf_engine_t *engine, const char *fqn, const char *reason);

/* Receives one Arrow IPC chunk of a result stream (chunk->data[0..size)); return
 * non-zero to cancel. The callee may take the chunk's storage (bf_buffer_take);
 * otherwise the engine reuses it. */
typedef int (*bf_engine_chunk_fn)(void *ctx, bf_buffer_t *chunk);

/* Runs exactly one SELECT-type statement (SELECT, WITH, VALUES, FROM-first,
 * DESCRIBE, SUMMARIZE, SHOW); anything else, or several statements, is BF_EINVAL
 * (INVALID_ARGUMENT) with a clear message; a file access the sandbox refuses is
 * BF_EPERM (PERMISSION_DENIED).
 * DuckDB errors are BF_EQUERY with DuckDB's message; a timeout is BF_ETIMEOUT.
 * The result is encoded as one Arrow IPC stream and handed to on_chunk in pieces
 * as it is produced: a record batch of about options.chunk_bytes per piece (the
 * first piece starts with the schema message; a batch over 64 MiB is cut into
 * several pieces; the concatenation of all pieces is one valid stream, also for
 * zero rows).
 * params are bound to the statement's placeholders (their count must match).
 * client_time_left (seconds; <= 0 or INFINITY for none) is the caller's deadline:
 * the query is interrupted at the earlier of it and the server's timeout, so an
 * abandoned query stops using the server; should_cancel(ctx) (may be NULL) lets the
 * caller stop it earlier (BF_ECANCELLED), e.g. when the client went away.
 * *out_rows receives the row count. */
/* Polled about every 100 ms while a query runs; non-zero interrupts it. */
typedef int (*bf_engine_cancel_fn)(void *ctx);

/* Asked for every table a query names (catalog.schema_name.table as written);
 * non-OK refuses the query with err (e.g. BF_EPERM: the caller may not read it). */
typedef int (*bf_engine_table_check_fn)(void *ctx, const char *catalog, const char *schema_name,
                                        const char *table, bf_error_t *err);

int bf_engine_query(bf_engine_t *engine, const char *sql, const bf_query_param_t *params,
                    size_t n_params, double client_time_left, bf_engine_cancel_fn should_cancel,
                    bf_engine_chunk_fn on_chunk, void *ctx, bf_engine_table_check_fn check_table,
                    void *check_ctx, int64_t *out_rows, bf_error_t *err);

#endif /* BIFROST_ENGINE_H */
