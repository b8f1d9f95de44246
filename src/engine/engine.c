/* Engine lifecycle: opens the ingest and query databases and locks the query
 * database down (allowed_directories = data dir, no external access, no extension
 * installs or autoloading, configuration locked), in the order DuckDB requires. Also
 * holds the small SQL-building helpers the other engine files share. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_compat.h"
#include "engine/engine_internal.h"
#include "storage/storage.h"

int bf__sql_append(bf_buffer_t *buf, const char *s) { return bf_buffer_append(buf, s, strlen(s)); }

static int quoted(bf_buffer_t *buf, const char *s, char q) {
  BF_RETURN_NOT_OK(bf_buffer_append(buf, &q, 1));
  for (const char *p = s; *p; p++) {
    if (*p == q) BF_RETURN_NOT_OK(bf_buffer_append(buf, &q, 1));
    BF_RETURN_NOT_OK(bf_buffer_append(buf, p, 1));
  }
  return bf_buffer_append(buf, &q, 1);
}

int bf__sql_ident(bf_buffer_t *buf, const char *s) { return quoted(buf, s, '"'); }
int bf__sql_string(bf_buffer_t *buf, const char *s) { return quoted(buf, s, '\''); }

int bf__sql_tail_scan(bf_buffer_t *buf, const char *catalog, const char *tail) {
  bf__sql_append(buf, BF_TAIL_SCAN_FUNCTION "(");
  bf__sql_string(buf, catalog);
  bf__sql_append(buf, ", ");
  bf__sql_string(buf, tail);
  return bf__sql_append(buf, ")");
}

const char *bf__sql_cstr(bf_buffer_t *buf) {
  if (bf_buffer_append(buf, "", 1) != BF_OK) return NULL;
  buf->size--; /* keep the NUL outside the logical size */
  return (const char *)buf->data;
}

int bf__sql_exec(duckdb_connection conn, const char *sql, bf_error_t *err) {
  duckdb_result result;
  if (duckdb_query(conn, sql, &result) != DuckDBSuccess) {
    int status = bf_error_set(err, BF_EQUERY, "%s", duckdb_result_error(&result));
    duckdb_destroy_result(&result);
    return status;
  }
  duckdb_destroy_result(&result);
  return BF_OK;
}

int bf__engine_result_arrow_schema(duckdb_result *result, duckdb_arrow_options options,
                                   struct ArrowSchema *schema, bf_error_t *err) {
  idx_t n_cols = duckdb_column_count(result);
  duckdb_logical_type *types = calloc(n_cols ? n_cols : 1, sizeof *types);
  const char **names = calloc(n_cols ? n_cols : 1, sizeof *names);
  int status = types && names ? BF_OK : bf_error_set(err, BF_ENOMEM, "out of memory");
  for (idx_t i = 0; status == BF_OK && i < n_cols; i++) {
    types[i] = duckdb_column_logical_type(result, i);
    names[i] = duckdb_column_name(result, i);
  }
  if (status == BF_OK) {
    duckdb_error_data error = duckdb_to_arrow_schema(options, types, names, n_cols, schema);
    if (error && duckdb_error_data_has_error(error))
      status = bf_error_set(err, BF_EQUERY, "%s", duckdb_error_data_message(error));
    if (error) duckdb_destroy_error_data(&error);
  }
  for (idx_t i = 0; types && i < n_cols; i++) duckdb_destroy_logical_type(&types[i]);
  free(types);
  free(names);
  return status;
}

int bf__sql_type(bf_buffer_t *buf, const bf_field_t *field) {
  switch (field->type) {
    case BF_TYPE_UTF8VIEW:
    case BF_TYPE_UTF8:
    case BF_TYPE_DICTIONARY:
      return bf__sql_append(buf, "VARCHAR");
    case BF_TYPE_INT64:
    case BF_TYPE_TIME_US:
    case BF_TYPE_DURATION_US:
      return bf__sql_append(buf, "BIGINT");
    case BF_TYPE_BINARY:
      return bf__sql_append(buf, "BLOB");
    case BF_TYPE_DECIMAL128: {
      char text[32];
      snprintf(text, sizeof text, "DECIMAL(%d, %d)", field->precision, field->scale);
      return bf__sql_append(buf, text);
    }
    case BF_TYPE_MAP:
      BF_RETURN_NOT_OK(bf__sql_append(buf, "MAP("));
      BF_RETURN_NOT_OK(bf__sql_type(buf, &field->children[0].children[0]));
      BF_RETURN_NOT_OK(bf__sql_append(buf, ", "));
      BF_RETURN_NOT_OK(bf__sql_type(buf, &field->children[0].children[1]));
      return bf__sql_append(buf, ")");
    case BF_TYPE_FLOAT64:
      return bf__sql_append(buf, "DOUBLE");
    case BF_TYPE_BOOL:
      return bf__sql_append(buf, "BOOLEAN");
    case BF_TYPE_TIMESTAMP_US:
      return bf__sql_append(buf, "TIMESTAMPTZ");
    case BF_TYPE_DATE32:
      return bf__sql_append(buf, "DATE");
    case BF_TYPE_LIST:
      BF_RETURN_NOT_OK(bf__sql_type(buf, &field->children[0]));
      return bf__sql_append(buf, "[]");
    case BF_TYPE_STRUCT:
      BF_RETURN_NOT_OK(bf__sql_append(buf, "STRUCT("));
      for (size_t i = 0; i < field->n_children; i++) {
        if (i) BF_RETURN_NOT_OK(bf__sql_append(buf, ", "));
        BF_RETURN_NOT_OK(bf__sql_ident(buf, field->children[i].name));
        BF_RETURN_NOT_OK(bf__sql_append(buf, " "));
        BF_RETURN_NOT_OK(bf__sql_type(buf, &field->children[i]));
      }
      return bf__sql_append(buf, ")");
  }
  return BF_EINTERNAL;
}

/* threads: DuckDB worker threads (0: DuckDB's default, one per core). keep_order:
 * results in insertion order where no ORDER BY says otherwise (DuckDB's default). */
static int open_db(duckdb_database *db, const bf_engine_options_t *options, int threads,
                   int keep_order, bf_error_t *err) {
  duckdb_config config;
  if (duckdb_create_config(&config) != DuckDBSuccess)
    return bf_error_set(err, BF_EINTERNAL, "cannot create DuckDB config");
  if (options && options->memory_limit && options->memory_limit[0])
    duckdb_set_config(config, "memory_limit", options->memory_limit);
  if (threads > 0) {
    char text[16];
    snprintf(text, sizeof text, "%d", threads);
    duckdb_set_config(config, "threads", text);
  }
  if (!keep_order) duckdb_set_config(config, "preserve_insertion_order", "false");
  duckdb_set_config(config, "autoinstall_known_extensions", "false");
  duckdb_set_config(config, "autoload_known_extensions", "false");
  /* Memory DuckDB freed (a flush's buffers, a query's) goes back to the system
   * within moments instead of staying cached in its allocator: measured after a
   * 3M-row ingest, the idle server fell back to 66-69 MiB instead of 228-249 MiB;
   * ingest CPU and peak RSS unchanged within noise (docs/architecture.md). */
  duckdb_set_config(config, "allocator_flush_threshold", "16MB");
  duckdb_set_config(config, "allocator_background_threads", "true");
  char *open_error = NULL;
  if (duckdb_open_ext(NULL, db, config, &open_error) != DuckDBSuccess) {
    int status = bf_error_set(err, BF_EINTERNAL, "cannot open DuckDB: %s",
                              open_error ? open_error : "unknown error");
    duckdb_free(open_error);
    duckdb_destroy_config(&config);
    return status;
  }
  duckdb_destroy_config(&config);
  return BF_OK;
}

/* Loads httpfs and creates the S3 secret (temporary: in memory only) in db. */
static int attach_s3(duckdb_database db, const bf_engine_options_t *o, bf_error_t *err) {
  if (o == NULL || o->httpfs_extension == NULL || o->s3_key_id == NULL || o->s3_secret == NULL)
    return bf_error_set(err, BF_EINVAL, "an s3:// data directory needs DuckDB's httpfs extension "
                                        "and S3 credentials");
  duckdb_connection conn;
  if (duckdb_connect(db, &conn) != DuckDBSuccess)
    return bf_error_set(err, BF_EINTERNAL, "cannot connect to DuckDB");
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "LOAD ");
  bf__sql_string(&sql, o->httpfs_extension);
  int status = bf__sql_exec(conn, bf__sql_cstr(&sql), err);
  if (status != BF_OK) bf_error_prefix(err, "loading DuckDB's httpfs extension %s", o->httpfs_extension);
  bf_buffer_reset(&sql);
  bf__sql_append(&sql, "CREATE OR REPLACE TEMPORARY SECRET bifrost_s3 (TYPE s3, KEY_ID ");
  bf__sql_string(&sql, o->s3_key_id);
  bf__sql_append(&sql, ", SECRET ");
  bf__sql_string(&sql, o->s3_secret);
  bf__sql_append(&sql, ", REGION ");
  bf__sql_string(&sql, o->s3_region && o->s3_region[0] ? o->s3_region : "us-east-1");
  if (o->s3_session_token && o->s3_session_token[0]) {
    bf__sql_append(&sql, ", SESSION_TOKEN ");
    bf__sql_string(&sql, o->s3_session_token);
  }
  if (o->s3_endpoint && o->s3_endpoint[0]) {
    bf__sql_append(&sql, ", ENDPOINT ");
    bf__sql_string(&sql, o->s3_endpoint);
    bf__sql_append(&sql, ", URL_STYLE 'path', USE_SSL ");
    bf__sql_append(&sql, o->s3_use_ssl ? "true" : "false");
  }
  bf__sql_append(&sql, ")");
  if (status == BF_OK) {
    const char *text = bf__sql_cstr(&sql);
    bf_error_t secret_err; /* its message may quote the statement: never pass it on */
    bf_error_init(&secret_err);
    if (text == NULL || bf__sql_exec(conn, text, &secret_err) != BF_OK)
      status = bf_error_set(err, BF_EINVAL, "DuckDB refused the S3 credentials (check "
                                            "AWS_REGION and AWS_ENDPOINT_URL)");
  }
  memset(sql.data, 0, sql.size); /* the secret */
  bf_buffer_reset(&sql);
  /* Data files are never rewritten in place (every file has a new name): their
   * HTTP metadata and Parquet footers can be cached, which saves a HEAD and a
   * footer GET per file per query. */
  if (status == BF_OK) status = bf__sql_exec(conn, "SET enable_http_metadata_cache = true", err);
  if (status == BF_OK) status = bf__sql_exec(conn, "SET parquet_metadata_cache = true", err);
  duckdb_disconnect(&conn);
  return status;
}

int bf_engine_create(const char *data_dir, const bf_engine_options_t *options, bf_engine_t **out,
                     bf_error_t *err) {
  bf_engine_t *e = calloc(1, sizeof *e);
  if (e == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  int remote = bf_storage_is_s3(data_dir);
  int rooted = bf_storage_root(data_dir, e->data_dir, err);
  if (rooted != BF_OK) {
    free(e);
    return rooted;
  }
  pthread_mutex_init(&e->ddl_mu, NULL);
  e->query_timeout_secs = options ? options->query_timeout_secs : 0;
  e->chunk_bytes = options && options->chunk_bytes ? options->chunk_bytes : 4u << 20;
  e->max_result_rows = options ? options->max_result_rows : 0;
  e->max_result_bytes = options ? options->max_result_bytes : 0;
  e->max_sql_bytes = options ? options->max_sql_bytes : 0;
  e->max_value_bytes = options ? options->max_value_bytes : 0;
  e->max_query_selects = options && options->max_query_selects > 0 ? options->max_query_selects : 256;
  e->max_query_depth = options && options->max_query_depth > 0 ? options->max_query_depth : 500;
  pthread_mutex_init(&e->unavailable_mu, NULL);
  pthread_mutex_init(&e->tails_mu, NULL);
  pthread_mutex_init(&e->counts_mu, NULL);
  pthread_mutex_init(&e->parse_mu, NULL);
  pthread_mutex_init(&e->idle_mu, NULL);
  pthread_mutex_init(&e->watch_mu, NULL);
  pthread_cond_init(&e->watch_cv, NULL);
  /* The ingest database writes Parquet with as many threads as the query database
   * (one per core by default): since tails are scanned in parallel, a 10M-row
   * ingest reached Delta at 2.47-2.63M rows/s against 1.91-2.12M with one thread,
   * CPU per row unchanged (docs/architecture.md; one thread was better while a tail
   * was a DuckDB table scanned by one thread). Row order inside the files it writes
   * is not kept: an ordered COPY into one file writes from one thread (a 3M-row
   * flush took 1.3-1.5 s instead of 0.9-1.0 s), and a Delta table has no row order. */
  int status = open_db(&e->ingest_db, options, options ? options->threads : 0, 0, err);
  if (status != BF_OK) goto fail;
  status = open_db(&e->query_db, options, options ? options->threads : 0, 1, err);
  if (status != BF_OK) goto fail;
  if (remote && ((status = attach_s3(e->ingest_db, options, err)) != BF_OK ||
                 (status = attach_s3(e->query_db, options, err)) != BF_OK))
    goto fail;
  if (duckdb_connect(e->query_db, &e->ddl_conn) != DuckDBSuccess) {
    status = bf_error_set(err, BF_EINTERNAL, "cannot connect to DuckDB");
    goto fail;
  }
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  /* On S3 the prefix with its slash, so s3://bucket/prefix-other stays out. */
  char allowed[sizeof e->data_dir + 1];
  snprintf(allowed, sizeof allowed, "%s%s", e->data_dir, remote ? "/" : "");
  bf__sql_append(&sql, "SET allowed_directories = [");
  bf__sql_string(&sql, allowed);
  bf__sql_append(&sql, "]");
  bf__sql_exec(e->ddl_conn, "SET TimeZone = 'UTC'", NULL); /* ICU may be absent: best effort */
  status = bf__sql_exec(e->ddl_conn, bf__sql_cstr(&sql), err);
  bf_buffer_reset(&sql);
  /* The DataFusion compatibility macros (engine_compat.c) and the tail scan are
   * created before the lock; the scan in the ingest database too (flushes). */
  if (status == BF_OK) status = bf__engine_compat_install(e->ddl_conn, err);
  if (status == BF_OK) status = bf__engine_register_tail_scan(e, e->ddl_conn, err);
  if (status == BF_OK) {
    duckdb_connection ingest;
    if (duckdb_connect(e->ingest_db, &ingest) != DuckDBSuccess) {
      status = bf_error_set(err, BF_EINTERNAL, "cannot connect to DuckDB");
    } else {
      status = bf__engine_register_tail_scan(e, ingest, err);
      duckdb_disconnect(&ingest);
    }
  }
  if (status == BF_OK) status = bf__sql_exec(e->ddl_conn, "SET enable_external_access = false", err);
  if (status == BF_OK) status = bf__sql_exec(e->ddl_conn, "SET lock_configuration = true", err);
  if (status != BF_OK) {
    bf_error_prefix(err, "sandboxing the query engine");
    goto fail;
  }
  *out = e;
  return BF_OK;
fail:
  bf_engine_destroy(e);
  return status;
}

/* Query connections are kept between queries: a new one and its first statement
 * cost 0.2-0.4 ms per query (measured, docs/architecture.md). A query changes no
 * connection state (the guard admits SELECT-type statements only, settings are
 * locked), and a connection whose query failed or was interrupted is closed. */
int bf__engine_query_conn(bf_engine_t *engine, duckdb_connection *out) {
  pthread_mutex_lock(&engine->idle_mu);
  int reused = engine->n_idle_conns > 0;
  if (reused) *out = engine->idle_conns[--engine->n_idle_conns];
  pthread_mutex_unlock(&engine->idle_mu);
  return reused || duckdb_connect(engine->query_db, out) == DuckDBSuccess ? BF_OK : BF_EINTERNAL;
}

void bf__engine_query_conn_release(bf_engine_t *engine, duckdb_connection *conn, int reusable) {
  if (*conn == NULL) return;
  if (reusable) {
    pthread_mutex_lock(&engine->idle_mu);
    if (engine->n_idle_conns < BF_IDLE_QUERY_CONNS) {
      engine->idle_conns[engine->n_idle_conns++] = *conn;
      *conn = NULL;
    }
    pthread_mutex_unlock(&engine->idle_mu);
  }
  if (*conn) duckdb_disconnect(conn);
}

void bf_engine_destroy(bf_engine_t *e) {
  if (e == NULL) return;
  bf__engine_watchdog_stop(e);
  pthread_mutex_destroy(&e->watch_mu);
  pthread_cond_destroy(&e->watch_cv);
  if (e->ddl_conn) duckdb_disconnect(&e->ddl_conn);
  for (size_t i = 0; i < e->n_idle_conns; i++) duckdb_disconnect(&e->idle_conns[i]);
  e->n_idle_conns = 0;
  pthread_mutex_destroy(&e->idle_mu);
  bf__engine_parse_cache_destroy(e);
  pthread_mutex_destroy(&e->parse_mu);
  bf__engine_tails_destroy(e);
  pthread_mutex_destroy(&e->tails_mu);
  bf__engine_counts_destroy(e);
  pthread_mutex_destroy(&e->counts_mu);
  if (e->query_db) duckdb_close(&e->query_db);
  if (e->ingest_db) duckdb_close(&e->ingest_db);
  pthread_mutex_destroy(&e->ddl_mu);
  for (size_t i = 0; i < e->n_unavailable; i++) {
    free(e->unavailable[i].fqn);
    free(e->unavailable[i].reason);
  }
  free(e->unavailable);
  pthread_mutex_destroy(&e->unavailable_mu);
  free(e);
}
