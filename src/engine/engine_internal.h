/* Engine internals shared by its files: the engine struct and SQL quoting helpers. */
#ifndef BIFROST_ENGINE_INTERNAL_H
#define BIFROST_ENGINE_INTERNAL_H

#include <duckdb.h>
#include <jansson.h>
#include <pthread.h>

#include "bifrost/util.h"
#include "engine/engine.h"

typedef struct bf__tail bf__tail_t; /* engine_tail.c */
typedef struct bf__view_count bf__view_count_t; /* engine_count.c */

typedef struct bf_unavailable_table {
  char *fqn;
  char *reason;
} bf_unavailable_table_t;

#define BF_MAX_PREPARING 64
#define BF_PARSE_CACHE_ENTRIES 64 /* query texts whose syntax tree is kept */
#define BF_IDLE_QUERY_CONNS 8     /* query connections kept open between queries */

/* A running query the watchdog interrupts at its deadline or when should_cancel
 * says its client went away (engine_watchdog.c). Lives on the query's stack. */
typedef struct bf__watch {
  struct bf__watch *next, *prev; /* guarded by the engine's watch_mu */
  duckdb_connection conn;
  double deadline;               /* bf_time_monotonic(); 0: none */
  bf_engine_cancel_fn should_cancel; /* may be NULL */
  void *cancel_ctx;
  int fired;                     /* 1: the deadline passed, 2: cancelled */
} bf__watch_t;

typedef struct bf__parse_entry {
  char *sql;  /* NULL: free slot */
  char *tree; /* json_serialize_sql's text */
  uint64_t hash;
  uint64_t used; /* parse_clock at the last use */
} bf__parse_entry_t;

struct bf_engine {
  char data_dir[4096];          /* absolute, no trailing slash */
  duckdb_database query_db;     /* sandboxed; views live here */
  duckdb_database ingest_db;    /* unsandboxed; only writes Parquet */
  duckdb_connection ddl_conn;   /* query_db connection for view DDL; guarded by ddl_mu */
  pthread_mutex_t ddl_mu;
  double query_timeout_secs;
  size_t chunk_bytes;
  int64_t max_result_rows;  /* 0 = unlimited */
  int64_t max_result_bytes; /* 0 = unlimited */
  int64_t max_sql_bytes;    /* 0 = unlimited */
  int64_t max_value_bytes;  /* constant counts of repeat/lpad/...; 0 = unlimited */
  int max_query_selects;
  int max_query_depth;
  pthread_mutex_t unavailable_mu;
  bf_unavailable_table_t *unavailable; /* guarded by unavailable_mu */
  size_t n_unavailable;
  pthread_mutex_t tails_mu;
  bf__tail_t *tails;         /* live tails; guarded by tails_mu */
  bf__tail_t *retired_tails; /* flushed or dropped, kept while a query may bind them */
  double preparing[BF_MAX_PREPARING]; /* start of each query being prepared (0: free
                                         slot); guarded by tails_mu */
  int preparing_overflow;             /* preparations without a slot; guarded by tails_mu */
  pthread_mutex_t counts_mu;
  bf__view_count_t *counts; /* each table view's file rows and tails; guarded by counts_mu */
  pthread_mutex_t parse_mu;
  bf__parse_entry_t parse_cache[BF_PARSE_CACHE_ENTRIES]; /* guarded by parse_mu */
  uint64_t parse_clock;                                  /* guarded by parse_mu */
  pthread_mutex_t watch_mu;
  pthread_cond_t watch_cv;
  bf__watch_t *watches; /* guarded by watch_mu */
  pthread_t watch_thread;
  int watch_started, watch_stop; /* guarded by watch_mu */
  pthread_mutex_t idle_mu;
  duckdb_connection idle_conns[BF_IDLE_QUERY_CONNS]; /* guarded by idle_mu */
  size_t n_idle_conns;
};

/* ---- query watchdog (engine_watchdog.c) ---- */
/* Watches w (conn, deadline, should_cancel, cancel_ctx set) until unwatch, which
 * returns w->fired; the thread starts with the first watch. BF_EINTERNAL: no
 * thread, the query runs unwatched. */
int bf__engine_watch(bf_engine_t *engine, bf__watch_t *w);
int bf__engine_unwatch(bf_engine_t *engine, bf__watch_t *w);
void bf__engine_watchdog_stop(bf_engine_t *engine);

/* ---- parse cache (engine_parse_cache.c) ---- */
/* A copy of the syntax tree kept for this exact text (free() it), or NULL. */
char *bf__engine_parse_cache_get(bf_engine_t *engine, const char *sql);
void bf__engine_parse_cache_put(bf_engine_t *engine, const char *sql, const char *tree);
void bf__engine_parse_cache_destroy(bf_engine_t *engine);

/* ---- query connections (engine.c) ---- */
/* A connection to the query database: an idle one, or a new one. */
int bf__engine_query_conn(bf_engine_t *engine, duckdb_connection *out);
/* Gives a connection back after a query. reusable = 0 (the query was interrupted
 * or failed) closes it, so no state of a broken query reaches the next one. */
void bf__engine_query_conn_release(bf_engine_t *engine, duckdb_connection *conn, int reusable);

/* ---- tails (engine_tail.c, engine_tail_scan.c) ---- */
#define BF_TAIL_SCAN_FUNCTION "bf_tail_scan"

/* A query is being prepared (parsed, bound, planned; a plan may be bound again when
 * its execution starts) from begin to end: a tail retired after it began may still
 * be bound by it, so retired tails are freed only once every preparation that began
 * before their retirement has ended. begin returns the token end takes. */
int bf__engine_prepare_begin(bf_engine_t *engine);
void bf__engine_prepare_end(bf_engine_t *engine, int token);

typedef struct bf__tail_batch bf__tail_batch_t;

/* One piece of a tail: a materialized chunk (rows that had to be converted by SQL),
 * or rows [start, start + len) of a received batch, which become a DuckDB chunk only
 * while a scan reads them (so the tail holds the received Arrow data and nothing
 * else). */
typedef struct bf__tail_piece {
  duckdb_data_chunk chunk; /* NULL for rows of a batch */
  bf__tail_batch_t *batch;
  int64_t start, len;
} bf__tail_piece_t;

/* What one scan of a tail sees: its columns and pieces at bind time. The tail
 * (and so every piece here) stays alive until the snapshot is released. */
typedef struct bf__tail_snapshot {
  bf__tail_t *tail;
  size_t n_columns;
  const char *const *names;
  duckdb_logical_type *types;
  bf__tail_piece_t *pieces; /* the array is the snapshot's own */
  size_t n_pieces;
  int64_t rows;
} bf__tail_snapshot_t;

/* The chunk of a piece: a materialized one as it is (*owned = 0), rows of a batch
 * converted now (*owned = 1: the caller destroys it once its vectors are referenced). */
int bf__engine_tail_piece_chunk(const bf__tail_snapshot_t *snapshot, const bf__tail_piece_t *piece,
                                duckdb_data_chunk *out, int *owned, bf_error_t *err);

int bf__engine_tail_snapshot(bf_engine_t *engine, const char *catalog, const char *tail,
                             bf__tail_snapshot_t *out, bf_error_t *err);
void bf__engine_tail_snapshot_release(bf__tail_snapshot_t *snapshot);
/* Takes a flushed or dropped tail out of use (queries that already bound it
 * keep reading it). */
void bf__engine_tail_retire(bf_engine_t *engine, const char *catalog, const char *tail);
/* Frees every tail (engine teardown). */
void bf__engine_tails_destroy(bf_engine_t *engine);
/* Registers bf_tail_scan(catalog, tail) on conn's database. */
int bf__engine_register_tail_scan(bf_engine_t *engine, duckdb_connection conn, bf_error_t *err);
/* Whether two DuckDB types are the same, nested types included. */
int bf__duckdb_same_type(duckdb_logical_type a, duckdb_logical_type b);

/* Appends s as a double-quoted SQL identifier. */
int bf__sql_ident(bf_buffer_t *buf, const char *s);
/* Appends s as a single-quoted SQL string literal. */
int bf__sql_string(bf_buffer_t *buf, const char *s);
int bf__sql_append(bf_buffer_t *buf, const char *s);
/* Appends the relation of a tail's rows: bf_tail_scan('<catalog>', '<tail>'). */
int bf__sql_tail_scan(bf_buffer_t *buf, const char *catalog, const char *tail);
/* NUL-terminates buf and returns its data as a C string. */
const char *bf__sql_cstr(bf_buffer_t *buf);
/* Runs a statement on conn; BF_EQUERY with DuckDB's message on failure. */
int bf__sql_exec(duckdb_connection conn, const char *sql, bf_error_t *err);
/* Fills *schema with the Arrow schema of result's columns (release it). */
int bf__engine_result_arrow_schema(duckdb_result *result, duckdb_arrow_options options,
                                   struct ArrowSchema *schema, bf_error_t *err);
/* DuckDB SQL type of a field ("VARCHAR", "STRUCT(...)", ...) appended to buf. */
int bf__sql_type(bf_buffer_t *buf, const bf_field_t *field);

/* ---- counts from the log (engine_count.c) ---- */
/* A query that is exactly SELECT count(*) FROM catalog.schema.table. */
typedef struct bf__count_target {
  int found;
  char catalog[256], schema_name[256], table[256];
} bf__count_target_t;
/* Whether the serialized tree (json_serialize_sql) is such a query: fills out. */
int bf__engine_count_shape(json_t *tree, bf__count_target_t *out);
/* Records a table view's files and tails (with the view's publish). */
void bf__engine_count_record(bf_engine_t *engine, const char *catalog, const char *schema_name,
                             const char *table, const bf_delta_file_t *files, size_t n_files,
                             const char *const *tails, size_t n_tails);
/* The rows of the table's view from its record, -1 when not known that way. */
int64_t bf__engine_count_rows(bf_engine_t *engine, const char *catalog, const char *schema_name,
                              const char *table);
void bf__engine_counts_destroy(bf_engine_t *engine);
/* Rows in a tail (live or retired), -1 if there is no such tail (engine_tail.c). */
int64_t bf__engine_tail_rows(bf_engine_t *engine, const char *catalog, const char *tail);

/* Checks a query's syntax tree before it is planned (see engine_guard.c): files
 * only through the views, no system catalogs or settings (BF_EPERM), structural
 * bounds (BF_EINVAL), no table this server could not load (BF_EUNAVAILABLE).
 * *not_a_select is set when the statement is not a plain SELECT tree. */
int bf__engine_guard_query(bf_engine_t *engine, duckdb_connection conn, const char *sql,
                           bf_engine_table_check_fn check_table, void *check_ctx,
                           int *not_a_select, bf__count_target_t *count, bf_error_t *err);
/* The same bound on SELECT blocks, counted on the text before DuckDB parses it
 * (its parser is superlinear in the number of CTEs). BF_EINVAL. */
int bf__engine_guard_text(bf_engine_t *engine, const char *sql, bf_error_t *err);

/* Fills stats_json of files written from view: numRecords plus minValues /
 * maxValues / nullCount per leaf column (nested struct fields included) from each
 * file's COPY ... RETURN_STATS column_statistics (a JSON object: quoted column path
 * -> {min, max, null_count, has_nan}); boolean bounds, which DuckDB does not report,
 * from one GROUP BY over view matched by partition values. */
struct json_t;
int bf__engine_file_stats(duckdb_connection conn, const char *view, const bf_schema_t *schema,
                          const char *const *partition_columns, size_t n_partition_columns,
                          bf_delta_file_t *files, struct json_t *const *column_stats,
                          size_t n_files, bf_error_t *err);

/* Writes the rows of table `staged` (a plain name, quoted here) as zstd
 * Parquet files partitioned like the table under table_dir, with Delta stats.
 * On failure the files written so far are removed. */
typedef enum bf__parquet_purpose {
  BF__PARQUET_FLUSH,   /* fresh rows: cheaper dictionary analysis (compaction redoes it) */
  BF__PARQUET_COMPACT, /* compaction's rewrite: DuckDB's default dictionaries */
} bf__parquet_purpose_t;
int bf__engine_write_staged(duckdb_connection conn, const char *staged, const char *table_dir,
                            const bf_schema_t *schema, const char *const *partition_columns,
                            size_t n_partition_columns, bf__parquet_purpose_t purpose,
                            bf_delta_file_t **out_files, size_t *n_out_files, bf_error_t *err);
void bf__engine_remove_files(const char *table_dir, const bf_delta_file_t *files, size_t n_files);

/* The live files as one relation (SELECT ... UNION ALL BY NAME ...) with the
 * partition columns as the Delta log records them; union_by_name reads files with
 * differing columns together (compaction keeps every column of its inputs). */
int bf__engine_files_relation(bf_buffer_t *sql, const char *table_dir, const bf_schema_t *schema,
                              const char *const *partition_columns, size_t n_partition_columns,
                              const bf_delta_file_t *files, size_t n_files, int union_by_name);

/* "SELECT CAST(col AS type) AS col, ... FROM (<files> UNION ALL BY NAME <tails>)"
 * in schema order; with neither files nor tails an empty typed relation. */
int bf__engine_table_select(bf_buffer_t *sql, const char *table_dir, const bf_schema_t *schema,
                            const char *const *partition_columns, size_t n_partition_columns,
                            const bf_delta_file_t *files, size_t n_files,
                            const char *catalog, const char *const *tails, size_t n_tails,
                            int mixed_columns);

/* Schema, inside each table's catalog, holding its tail tables (a DuckDB
 * transaction may write to one attached database only, and the view swap drops
 * a tail in the same transaction). */
#define BF_TAIL_SCHEMA "__bf_tail"

/* ATTACH the catalog (in-memory) and create schema_name and the tail schema in
 * it if needed. Caller holds ddl_mu. */
int bf__engine_ensure_catalog(bf_engine_t *engine, const char *catalog, const char *schema_name,
                              bf_error_t *err);

/* Binds a BLOB, DECIMAL or LIST parameter (engine_params.c); index is 1-based for
 * messages. */
int bf__engine_param_bind(duckdb_prepared_statement prepared, idx_t at, const bf_query_param_t *p,
                          size_t index, bf_error_t *err);

#endif
