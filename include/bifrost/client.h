/* Typed client for the bifrost.v1 service over a bf_rpc_channel_t: packs and
 * unpacks the protobuf messages so callers (the Python extension, C programs, the
 * producer) deal in plain C values. All functions are thread-safe for a shared
 * channel and return bf statuses mapped from gRPC codes (NOT_FOUND ->
 * BF_ENOTFOUND, FAILED_PRECONDITION -> BF_EMISMATCH, ...), message in err.
 * Reads (query, list, describe) and registration are resent once when the first
 * attempt died on the transport (a connection left over from a restarted server). */
#ifndef BIFROST_CLIENT_H
#define BIFROST_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/error.h"
#include "bifrost/query_param.h"
#include "bifrost/rpc.h"
#include "bifrost/util.h"

typedef struct bf_table_name {
  const char *catalog;
  const char *schema_name;
  const char *table;
} bf_table_name_t;

/* status_out receives "created" or "already_exists"; fingerprint_out the table's
 * fingerprint (33 bytes incl. NUL). */
int bf_client_register_table(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                             const char *json_schema, const char *const *partition_columns,
                             size_t n_partition_columns, const char *fingerprint,
                             double timeout_secs, char status_out[32], char fingerprint_out[33],
                             bf_error_t *err);

/* Sends one Arrow IPC stream. producer_id may be NULL (no dedup). */
/* The same with a schema mode: "" (strict) or "merge" (an additive change becomes
 * the table's new schema version; status_out "evolved"). */
int bf_client_register_table_mode(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                                  const char *json_schema, const char *const *partition_columns,
                                  size_t n_partition_columns, const char *fingerprint,
                                  const char *schema_mode, double timeout_secs,
                                  char status_out[32], char fingerprint_out[33], bf_error_t *err);

int bf_client_insert_batch(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                           const char *fingerprint, const uint8_t *ipc, size_t ipc_size,
                           const char *producer_id, uint64_t sequence, double timeout_secs,
                           uint64_t *rows_accepted, int *duplicate, bf_error_t *err);
/* The same with the IPC stream sent in place (not copied: see bf_shared_t),
 * stored by the server only after this producer's batch after_sequence (its
 * previous batch, still unacknowledged when this one is sent; 0 = none). */
int bf_client_insert_batch_after(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                                 const char *fingerprint, bf_shared_t *ipc,
                                 const char *producer_id, uint64_t sequence, uint64_t after_sequence,
                                 double timeout_secs, uint64_t *rows_accepted, int *duplicate,
                                 bf_error_t *err);

/* Runs a query with params bound server-side to its placeholders; the concatenated
 * IPC stream is appended to ipc_out. should_cancel (may be NULL) is polled while
 * waiting; non-zero cancels the call with BF_ECANCELLED. */
int bf_client_query(bf_rpc_channel_t *channel, const char *sql, const bf_query_param_t *params,
                    size_t n_params, double timeout_secs, bf_rpc_cancel_fn should_cancel,
                    void *cancel_ctx, bf_buffer_t *ipc_out, bf_error_t *err);

/* The same query as a pull stream (bounded memory): open sends the request; each
 * next() replaces chunk's content with the next piece of the result's Arrow IPC
 * stream (pieces concatenate to one IPC stream), or sets *done at the end (BF_OK) or returns the query's error. Close
 * with bf_rpc_stream_close (cancels an unfinished query); bf_rpc_stream_cancel
 * works from any thread. */
int bf_client_query_open(bf_rpc_channel_t *channel, const char *sql,
                         const bf_query_param_t *params, size_t n_params, double timeout_secs,
                         bf_rpc_stream_t **out, bf_error_t *err);
int bf_client_query_next(bf_rpc_stream_t *stream, bf_buffer_t *chunk, int *done,
                         bf_rpc_cancel_fn should_cancel, void *cancel_ctx, bf_error_t *err);
/* next() without a copy: *message (free with bf_rpc_message_free) is the response
 * as received; the IPC piece is its bytes [*ipc_offset, *ipc_offset + *ipc_size),
 * to be copied once, straight to where the caller keeps it. Our server sends each
 * record batch as one piece (a batch over 64 MiB as several). */
int bf_client_query_next_message(bf_rpc_stream_t *stream, bf_rpc_message_t **message,
                                 size_t *ipc_offset, size_t *ipc_size, int *done,
                                 bf_rpc_cancel_fn should_cancel, void *cancel_ctx, bf_error_t *err);

/* Table metadata as JSON text (malloc'd, caller frees): list -> JSON array of
 * objects, describe -> one object. Keys: catalog, schema_name, table, fingerprint,
 * partition_columns, json_schema (string), arrow_schema (object of parse_schema),
 * location, delta_version, num_files, num_rows (tail included), tail_rows,
 * size_bytes, created_at_ms. */
int bf_client_list_tables(bf_rpc_channel_t *channel, double timeout_secs, char **json_out,
                          bf_error_t *err);
int bf_client_describe_table(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                             double timeout_secs, char **json_out, bf_error_t *err);

/* ServerStats as a JSON object (malloc'd): version, duckdb_version, uptime_secs,
 * started_at_ms, tail_bytes, queries_running, rpcs_total, tables (array: catalog,
 * schema_name, table, num_rows, tail_rows, tail_bytes, num_files, size_bytes,
 * delta_version, rows_acknowledged, bytes_acknowledged, inserts_refused,
 * duplicates_skipped, flushes, last_flush_at_ms, compactions). */
int bf_client_server_stats(bf_rpc_channel_t *channel, double timeout_secs, char **json_out,
                           bf_error_t *err);

/* Runs maintenance operations on a table ("flush", "optimize", "checkpoint",
 * "vacuum", "cleanup_log"); retention_hours < 0 uses the server's setting. The
 * result is a JSON object (malloc'd): delta_version, rows_flushed, files_added,
 * files_removed, files_deleted, log_files_deleted, checkpoint_version. */
int bf_client_maintain_table(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                             const char *const *operations, size_t n_operations,
                             double retention_hours, double timeout_secs, char **json_out,
                             bf_error_t *err);

/* A table's life cycle. history: JSON array, oldest first, of {version,
 * timestamp_ms, operation, rows_added, rows_removed, files_added, files_removed,
 * schema_version, data_change}. truncate: {delta_version, files_removed,
 * rows_removed}. drop: {rows_discarded, files_deleted}. confirm must be the
 * table's full name "catalog.schema_name.table". */
int bf_client_table_history(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                            double timeout_secs, char **json_out, bf_error_t *err);
int bf_client_truncate_table(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                             const char *confirm, double timeout_secs, char **json_out,
                             bf_error_t *err);
int bf_client_drop_table(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                         const char *confirm, int discard_wal, double timeout_secs,
                         char **json_out, bf_error_t *err);

#endif /* BIFROST_CLIENT_H */
