/* Engine internals shared by its files: the engine struct and SQL quoting helpers. */
#ifndef BIFROST_ENGINE_INTERNAL_H
#define BIFROST_ENGINE_INTERNAL_H

#include <duckdb.h>
#include <pthread.h>

#include "bifrost/util.h"
#include "engine/engine.h"

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
};

/* Appends s as a double-quoted SQL identifier. */
int bf__sql_ident(bf_buffer_t *buf, const char *s);
/* Appends s as a single-quoted SQL string literal. */
int bf__sql_string(bf_buffer_t *buf, const char *s);
int bf__sql_append(bf_buffer_t *buf, const char *s);
/* NUL-terminates buf and returns its data as a C string. */
const char *bf__sql_cstr(bf_buffer_t *buf);
/* Runs a statement on conn; BF_EQUERY with DuckDB's message on failure. */
int bf__sql_exec(duckdb_connection conn, const char *sql, bf_error_t *err);
/* DuckDB SQL type of a field ("VARCHAR", "STRUCT(...)", ...) appended to buf. */
int bf__sql_type(bf_buffer_t *buf, const bf_field_t *field);

/* Refuses queries that read files other than through the tables' views (table
 * functions outside an allowlist, file paths as table names). BF_EPERM. */
int bf__engine_guard_query(duckdb_connection conn, const char *sql, bf_error_t *err);

/* Fills stats_json of files written from view: numRecords plus per-column
 * minValues / maxValues / nullCount matched by partition values. */
int bf__engine_file_stats(duckdb_connection conn, const char *view, const bf_schema_t *schema,
                          const char *const *partition_columns, size_t n_partition_columns,
                          bf_delta_file_t *files, size_t n_files, bf_error_t *err);

#endif
