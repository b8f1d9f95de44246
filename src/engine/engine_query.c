/* Sandboxed query execution: exactly one statement, of SELECT type (SELECT, WITH,
 * VALUES, FROM-first, DESCRIBE, SUMMARIZE, SHOW), on a connection to the query
 * database kept between queries; the engine's watchdog (engine_watchdog.c)
 * interrupts it at the timeout or when the client goes away. The result streams: it
 * leaves as one Arrow IPC stream (our writer) of large record batches, each
 * gathered from DuckDB's chunks and sent while DuckDB produces the next. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bifrost/ipc.h"
#include "engine/engine_compat.h"
#include "engine/engine_fetch.h"
#include "engine/engine_internal.h"

static const char *statement_type_name(duckdb_statement_type type) {
  switch (type) {
    case DUCKDB_STATEMENT_TYPE_INSERT:
      return "INSERT";
    case DUCKDB_STATEMENT_TYPE_UPDATE:
      return "UPDATE";
    case DUCKDB_STATEMENT_TYPE_DELETE:
      return "DELETE";
    case DUCKDB_STATEMENT_TYPE_CREATE:
      return "CREATE";
    case DUCKDB_STATEMENT_TYPE_DROP:
      return "DROP";
    case DUCKDB_STATEMENT_TYPE_COPY:
      return "COPY";
    case DUCKDB_STATEMENT_TYPE_EXPLAIN:
      return "EXPLAIN";
    case DUCKDB_STATEMENT_TYPE_PRAGMA:
      return "PRAGMA";
    case DUCKDB_STATEMENT_TYPE_SET:
      return "SET";
    case DUCKDB_STATEMENT_TYPE_ATTACH:
      return "ATTACH";
    case DUCKDB_STATEMENT_TYPE_DETACH:
      return "DETACH";
    case DUCKDB_STATEMENT_TYPE_LOAD:
      return "LOAD/INSTALL";
    case DUCKDB_STATEMENT_TYPE_EXPORT:
      return "EXPORT";
    case DUCKDB_STATEMENT_TYPE_CALL:
      return "CALL";
    default:
      return "non-SELECT";
  }
}

/* The statement's first keyword when it names a statement that writes or changes
 * the database (INSERT, CREATE, ...), else NULL. Used when DuckDB cannot prepare a
 * statement (e.g. INSERT into a view fails with a catalog error), so a write is
 * still reported as refused rather than as a catalog problem. */
static const char *write_keyword(const char *sql) {
  static const char *const words[] = {"INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER",
                                      "COPY", "ATTACH", "DETACH", "TRUNCATE", "MERGE", "INSTALL",
                                      "LOAD", "EXPORT", "IMPORT", "VACUUM", "CHECKPOINT", "SET",
                                      "RESET", "PRAGMA", "CALL", "USE", "UPSERT", "REPLACE"};
  const char *p = sql;
  for (;;) { /* skip blanks and comments */
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '(') p++;
    if (p[0] == '-' && p[1] == '-') {
      while (*p && *p != '\n') p++;
    } else if (p[0] == '/' && p[1] == '*') {
      const char *end = strstr(p + 2, "*/");
      if (end == NULL) return NULL;
      p = end + 2;
    } else {
      break;
    }
  }
  size_t n = 0;
  while ((p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z')) n++;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strlen(words[i]) == n && strncasecmp(p, words[i], n) == 0) return words[i];
  return NULL;
}

/* DuckDB names the UTC zone "Etc/UTC"; tables say "UTC". Rewrites timestamp formats
 * of a schema we own (formats are private copies, and "UTC" is shorter, so the edit
 * happens in place). */
static void normalize_utc(struct ArrowSchema *schema) {
  char *format = (char *)schema->format;
  if (format[0] == 't' && format[1] == 's' && format[2] && format[3] == ':' &&
      strcmp(format + 4, "Etc/UTC") == 0)
    strcpy(format + 4, "UTC");
  for (int64_t i = 0; i < schema->n_children; i++) normalize_utc(schema->children[i]);
  if (schema->dictionary) normalize_utc(schema->dictionary);
}

/* DuckDB hands results over in chunks of 2,048 rows; they are gathered into one
 * IPC RecordBatch of about chunk_bytes (at most BATCH_MAX_ROWS rows), each sent as
 * one message as soon as it is complete, or when a chunk arrives BATCH_MAX_WAIT_SECS
 * or more after the batch's first rows (a slow query still streams). One message never exceeds
 * PIECE_MAX_BYTES (a batch that does, say rows of huge strings, is cut). */
#define BATCH_MAX_ROWS (1 << 20)
#define BATCH_MAX_WAIT_SECS 0.1
#define PIECE_MAX_BYTES ((size_t)64 << 20)

typedef struct gather {
  struct ArrowArray *arrays;
  size_t n, cap;
  int64_t rows, bytes;
  double since; /* monotonic time of the first array */
} gather_t;

static void gather_release(gather_t *g) {
  for (size_t i = 0; i < g->n; i++) bf_arrow_array_release(&g->arrays[i]);
  g->n = 0;
  g->rows = g->bytes = 0;
}

/* Writes the gathered arrays as one RecordBatch. */
static int gather_write(bf_ipc_writer_t *writer, gather_t *g, bf_error_t *err) {
  if (g->n == 0) return BF_OK;
  int status = bf_ipc_writer_write_many(writer, g->arrays, g->n, err);
  gather_release(g);
  return status;
}

static int gather_push(gather_t *g, struct ArrowArray *array, int64_t bytes, bf_error_t *err) {
  if (g->n == g->cap) {
    size_t cap = g->cap ? 2 * g->cap : 64;
    struct ArrowArray *grown = realloc(g->arrays, cap * sizeof *grown);
    if (grown == NULL) {
      bf_arrow_array_release(array);
      return bf_error_set(err, BF_ENOMEM, "out of memory");
    }
    g->arrays = grown;
    g->cap = cap;
  }
  if (g->n == 0) g->since = bf_time_monotonic();
  bf_arrow_array_move(array, &g->arrays[g->n++]);
  g->rows += g->arrays[g->n - 1].length;
  g->bytes += bytes;
  return BF_OK;
}

/* Hands out's bytes to on_chunk (which may take the storage), in pieces of at
 * most PIECE_MAX_BYTES. Returns non-zero if the consumer cancelled. */
static int flush_chunk(bf_buffer_t *out, bf_engine_chunk_fn on_chunk, void *ctx) {
  if (out->size == 0) return 0;
  int cancel = 0;
  if (out->size <= PIECE_MAX_BYTES) {
    cancel = on_chunk(ctx, out);
  } else {
    bf_buffer_t piece;
    bf_buffer_init(&piece);
    for (size_t at = 0; at < out->size && !cancel; at += PIECE_MAX_BYTES) {
      size_t n = out->size - at < PIECE_MAX_BYTES ? out->size - at : PIECE_MAX_BYTES;
      piece.size = 0;
      if (bf_buffer_append(&piece, out->data + at, n) != BF_OK) {
        cancel = 1;
        break;
      }
      cancel = on_chunk(ctx, &piece);
    }
    bf_buffer_reset(&piece);
  }
  out->size = 0;
  return cancel;
}

static int too_large(const bf_engine_t *engine, size_t sent_bytes, bf_error_t *err) {
  if (engine->max_result_bytes > 0 && sent_bytes > (size_t)engine->max_result_bytes)
    return bf_error_set(err, BF_EFULL,
                        "the result is larger than %lld bytes, the server's limit "
                        "(--max-result-bytes); add a LIMIT or aggregate",
                        (long long)engine->max_result_bytes);
  return BF_OK;
}

/* Writes the gathered rows as one batch, counts its bytes against the server's
 * limit and hands it to the consumer. */
static int send_batch(const bf_engine_t *engine, bf_ipc_writer_t *writer, gather_t *g,
                      bf_buffer_t *out, size_t *sent_bytes, bf_engine_chunk_fn on_chunk,
                      void *ctx, bf_error_t *err) {
  size_t before = out->size;
  BF_RETURN_NOT_OK(gather_write(writer, g, err));
  *sent_bytes += out->size - before;
  BF_RETURN_NOT_OK(too_large(engine, *sent_bytes, err));
  if (flush_chunk(out, on_chunk, ctx))
    return bf_error_set(err, BF_ECANCELLED, "query cancelled by the client");
  return BF_OK;
}

static int stream_result(bf_engine_t *engine, duckdb_result *result, bf_engine_chunk_fn on_chunk,
                         void *ctx, int64_t *out_rows, bf_error_t *err) {
  duckdb_arrow_options options = duckdb_result_get_arrow_options(result);
  struct ArrowSchema schema = {0};
  bf_ipc_writer_t writer = {0};
  bf_buffer_t out;
  bf_buffer_init(&out);
  gather_t gather = {0};
  int status = BF_OK, writer_ready = 0, concat = 0, fetching = 0;
  bf__fetcher_t fetcher;
  int64_t rows = 0;
  size_t sent_bytes = 0;
  if ((status = bf__engine_result_arrow_schema(result, options, &schema, err)) != BF_OK) goto done;
  struct ArrowSchema owned;
  if (bf_arrow_schema_deep_copy(&schema, &owned) != BF_OK) {
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
    goto done;
  }
  normalize_utc(&owned);
  status = bf_ipc_writer_init(&writer, &owned, &out, err);
  bf_arrow_schema_release(&owned);
  if (status != BF_OK) goto done;
  writer_ready = 1;
  concat = bf_ipc_writer_can_concat(&writer);
  bf__fetcher_start(&fetcher, result);
  fetching = 1;
  for (;;) {
    duckdb_data_chunk chunk = bf__fetcher_next(&fetcher);
    if (chunk == NULL) break;
    struct ArrowArray array = {0};
    duckdb_error_data error = duckdb_data_chunk_to_arrow(options, chunk, &array);
    rows += (int64_t)duckdb_data_chunk_get_size(chunk);
    duckdb_destroy_data_chunk(&chunk);
    if (error && duckdb_error_data_has_error(error)) {
      status = bf_error_set(err, BF_EQUERY, "%s", duckdb_error_data_message(error));
      duckdb_destroy_error_data(&error);
      bf_arrow_array_release(&array);
      goto done;
    }
    if (error) duckdb_destroy_error_data(&error);
    if (engine->max_result_rows > 0 && rows > engine->max_result_rows) {
      bf_arrow_array_release(&array);
      status = bf_error_set(err, BF_EFULL,
                            "the result has more than %lld rows, the server's limit "
                            "(--max-result-rows); add a LIMIT or aggregate",
                            (long long)engine->max_result_rows);
      goto done;
    }
    int64_t bytes = bf_arrow_decoded_size(&writer.schema, &array);
    bf__fetcher_took(&fetcher, bytes);
    /* A chunk that would take the batch past its size starts the next one. */
    if (concat && gather.n > 0 && gather.bytes + bytes > (int64_t)engine->chunk_bytes &&
        (status = send_batch(engine, &writer, &gather, &out, &sent_bytes, on_chunk, ctx, err)) != BF_OK) {
      bf_arrow_array_release(&array);
      goto done;
    }
    if ((status = gather_push(&gather, &array, bytes, err)) != BF_OK) goto done;
    int full = !concat || gather.rows >= BATCH_MAX_ROWS || gather.bytes >= (int64_t)engine->chunk_bytes ||
               bf_time_monotonic() - gather.since >= BATCH_MAX_WAIT_SECS;
    if (full && (status = send_batch(engine, &writer, &gather, &out, &sent_bytes, on_chunk, ctx, err)) != BF_OK)
      goto done;
  }
  bf__fetcher_stop(&fetcher);
  fetching = 0;
  if (duckdb_result_error(result)) {
    status = bf_error_set(err, BF_EQUERY, "%s", duckdb_result_error(result));
    goto done;
  }
  /* The last batch leaves with the end-of-stream marker (a small result: one piece). */
  size_t before = out.size;
  if ((status = gather_write(&writer, &gather, err)) != BF_OK) goto done;
  sent_bytes += out.size - before;
  if ((status = too_large(engine, sent_bytes, err)) != BF_OK) goto done;
  status = bf_ipc_writer_finish(&writer, err);
  if (status == BF_OK && flush_chunk(&out, on_chunk, ctx))
    status = bf_error_set(err, BF_ECANCELLED, "query cancelled by the client");
  if (status == BF_OK && out_rows) *out_rows = rows;
done:
  if (fetching) bf__fetcher_stop(&fetcher);
  gather_release(&gather);
  free(gather.arrays);
  if (writer_ready) bf_ipc_writer_reset(&writer);
  if (schema.release) schema.release(&schema);
  duckdb_destroy_arrow_options(&options);
  bf_buffer_reset(&out);
  return status;
}

static int bind_params(duckdb_prepared_statement prepared, const bf_query_param_t *params,
                       size_t n_params, bf_error_t *err) {
  idx_t expected = duckdb_nparams(prepared);
  if (expected != n_params)
    return bf_error_set(err, BF_EINVAL, "the query has %llu parameter placeholder(s) but %zu value(s) were given",
                        (unsigned long long)expected, n_params);
  for (size_t i = 0; i < n_params; i++) {
    const bf_query_param_t *p = &params[i];
    idx_t at = i + 1;
    duckdb_state rc = DuckDBError;
    switch (p->type) {
      case BF_PARAM_NULL:
        rc = duckdb_bind_null(prepared, at);
        break;
      case BF_PARAM_INT64:
        rc = duckdb_bind_int64(prepared, at, p->value.i64);
        break;
      case BF_PARAM_DOUBLE:
        rc = duckdb_bind_double(prepared, at, p->value.f64);
        break;
      case BF_PARAM_STRING:
        rc = duckdb_bind_varchar_length(prepared, at, p->str ? p->str : "", p->str_len);
        break;
      case BF_PARAM_BOOL:
        rc = duckdb_bind_boolean(prepared, at, p->value.boolean);
        break;
      case BF_PARAM_DATE:
        rc = duckdb_bind_date(prepared, at, (duckdb_date){p->value.days});
        break;
      case BF_PARAM_TIMESTAMP:
        rc = duckdb_bind_timestamp_tz(prepared, at, (duckdb_timestamp){p->value.i64});
        break;
      case BF_PARAM_BLOB:
      case BF_PARAM_DECIMAL:
      case BF_PARAM_LIST:
        BF_RETURN_NOT_OK(bf__engine_param_bind(prepared, at, p, i + 1, err));
        rc = DuckDBSuccess;
        break;
    }
    if (rc != DuckDBSuccess)
      return bf_error_set(err, BF_EINVAL, "cannot bind parameter %zu: %s", i + 1,
                          duckdb_prepare_error(prepared) ? duckdb_prepare_error(prepared)
                                                         : "type not accepted");
  }
  return BF_OK;
}

/* DuckDB's errors name files by absolute path. A query must learn nothing about
 * the host, and a user must learn which table is damaged: a message naming a
 * file under the data directory becomes "table c.s.t: data file <relative path>
 * is missing or unreadable: <DuckDB's message, paths made relative>". */
static void describe_file_error(const bf_engine_t *engine, bf_error_t *err) {
  if (err == NULL) return;
  size_t root = strlen(engine->data_dir);
  const char *at = strstr(err->message, engine->data_dir);
  if (at == NULL || at[root] != '/') return;
  char rel[512] = "";
  size_t n = 0;
  for (const char *p = at + root + 1; *p && *p != '"' && *p != '\'' && n + 1 < sizeof rel; p++)
    rel[n++] = *p;
  rel[n] = '\0';
  char cleaned[BF_ERROR_MESSAGE_MAX];
  size_t out = 0;
  for (const char *p = err->message; *p && out + 1 < sizeof cleaned;) {
    if (strncmp(p, engine->data_dir, root) == 0 && p[root] == '/') {
      p += root + 1;
      continue;
    }
    cleaned[out++] = *p++;
  }
  cleaned[out] = '\0';
  char catalog[130] = "", schema[130] = "", table[130] = "";
  if (err->status == BF_EQUERY && strstr(rel, ".parquet") && sscanf(rel, "%129[^/]/%129[^/]/%129[^/]/", catalog, schema, table) == 3)
    bf_error_set(err, BF_EQUERY, "table %s.%s.%s: data file %s is missing or unreadable (%s); "
                 "other tables are not affected",
                 catalog, schema, table, rel + strlen(catalog) + strlen(schema) + strlen(table) + 3,
                 cleaned);
  else
    bf_error_set(err, err->status, "%s", cleaned);
}

/* SELECT count(*) FROM catalog.schema.table, prepared by DuckDB like any query (so
 * names, grants and errors are as always): when the table's log knows the count
 * (engine_count.c), the statement becomes a constant with the same column name and
 * type, and no Parquet file is opened. */
static void answer_count_from_log(bf_engine_t *engine, duckdb_connection conn,
                                  const bf__count_target_t *count, duckdb_prepared_statement *prepared) {
  if (duckdb_prepared_statement_column_count(*prepared) != 1 ||
      duckdb_prepared_statement_column_type(*prepared, 0) != DUCKDB_TYPE_BIGINT)
    return;
  int64_t rows = bf__engine_count_rows(engine, count->catalog, count->schema_name, count->table);
  if (rows < 0) return;
  const char *name = duckdb_prepared_statement_column_name(*prepared, 0);
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  char number[32];
  snprintf(number, sizeof number, "%lld", (long long)rows);
  bf__sql_append(&sql, "SELECT CAST(");
  bf__sql_append(&sql, number);
  bf__sql_append(&sql, " AS BIGINT) AS ");
  bf__sql_ident(&sql, name ? name : "count_star()");
  duckdb_free((void *)name);
  const char *text = bf__sql_cstr(&sql);
  duckdb_prepared_statement constant = NULL;
  if (text && duckdb_prepare(conn, text, &constant) == DuckDBSuccess) {
    duckdb_destroy_prepare(prepared);
    *prepared = constant;
  } else {
    duckdb_destroy_prepare(&constant);
  }
  bf_buffer_reset(&sql);
}

int bf_engine_query(bf_engine_t *engine, const char *sql, const bf_query_param_t *params,
                    size_t n_params, double client_time_left, bf_engine_cancel_fn should_cancel,
                    bf_engine_chunk_fn on_chunk, void *ctx, bf_engine_table_check_fn check_table,
                    void *check_ctx, int64_t *out_rows, bf_error_t *err) {
  size_t sql_len = strlen(sql);
  if (engine->max_sql_bytes > 0 && sql_len > (size_t)engine->max_sql_bytes)
    return bf_error_set(err, BF_EINVAL, "the query text is %zu bytes, over the server's limit of "
                        "%lld (--max-sql-bytes)", sql_len, (long long)engine->max_sql_bytes);
  BF_RETURN_NOT_OK(bf__engine_guard_text(engine, sql, err));
  /* DataFusion-only syntax becomes DuckDB's (NULL: nothing to rewrite). */
  char *rewritten = NULL;
  BF_RETURN_NOT_OK(bf__engine_compat_rewrite(sql, &rewritten, err));
  if (rewritten) sql = rewritten;
  duckdb_connection conn = NULL;
  if (bf__engine_query_conn(engine, &conn) != BF_OK) {
    free(rewritten);
    return bf_error_set(err, BF_EINTERNAL, "cannot connect to the query database");
  }
  duckdb_extracted_statements extracted = NULL;
  duckdb_prepared_statement prepared = NULL;
  int status = BF_OK;
  /* until its execution has started, the query may bind tails retired meanwhile */
  int preparing = bf__engine_prepare_begin(engine), prepared_done = 0;
  /* The timeout covers parsing, checking and planning too, not only execution. */
  bf__watch_t dog = {0};
  int have_dog = 0;
  double limit = engine->query_timeout_secs;
  int client_limited = client_time_left > 0 && client_time_left < 1e9 &&
                       (limit <= 0 || client_time_left < limit);
  if (client_limited) limit = client_time_left;
  if (limit > 0 || should_cancel) {
    dog.conn = conn;
    dog.deadline = limit > 0 ? bf_time_monotonic() + limit : 0;
    dog.should_cancel = should_cancel;
    dog.cancel_ctx = ctx;
    have_dog = bf__engine_watch(engine, &dog) == BF_OK;
  }
  idx_t n = duckdb_extract_statements(conn, sql, &extracted);
  if (n == 0) {
    const char *msg = extracted ? duckdb_extract_statements_error(extracted) : NULL;
    status = bf_error_set(err, BF_EINVAL, "%s", msg && msg[0] ? msg : "empty query");
    bf__engine_compat_error_hint(sql, err);
    goto done;
  }
  if (n > 1) {
    status = bf_error_set(err, BF_EINVAL, "only one statement per query is allowed, got %llu",
                          (unsigned long long)n);
    goto done;
  }
  /* The guard runs before planning: its bounds exist to stop statements whose
   * planning alone would exhaust the server. A statement that is not a plain
   * SELECT is prepared only to name its type in the error. */
  int not_a_select = 0;
  bf__count_target_t count;
  status = bf__engine_guard_query(engine, conn, sql, check_table, check_ctx, &not_a_select, &count,
                                  err);
  if (status != BF_OK && !not_a_select) goto done;
  if (duckdb_prepare_extracted_statement(conn, extracted, 0, &prepared) != DuckDBSuccess) {
    const char *keyword = write_keyword(sql);
    if (keyword != NULL)
      status = bf_error_set(err, BF_EPERM,
                            "queries are read-only: %s statements are not allowed (only SELECT, "
                            "WITH, VALUES, DESCRIBE, SUMMARIZE, SHOW); data is written through a "
                            "producer",
                            keyword);
    else if (!not_a_select) {
      status = bf_error_set(err, BF_EQUERY, "%s", duckdb_prepare_error(prepared));
      bf__engine_compat_error_hint(sql, err);
    }
    goto done;
  }
  duckdb_statement_type type = duckdb_prepared_statement_type(prepared);
  if (type != DUCKDB_STATEMENT_TYPE_SELECT) {
    status = bf_error_set(err, BF_EPERM,
                          "queries are read-only: %s statements are not allowed (only SELECT, "
                          "WITH, VALUES, DESCRIBE, SUMMARIZE, SHOW); data is written through a "
                          "producer",
                          statement_type_name(type));
    goto done;
  }
  if (status != BF_OK) goto done;
  if (count.found && n_params == 0) answer_count_from_log(engine, conn, &count, &prepared);
  status = bind_params(prepared, params, n_params, err);
  if (status != BF_OK) goto done;
  /* A streaming result: batches leave while DuckDB still produces the next rows,
   * and the server never holds the whole result. */
  duckdb_pending_result pending = NULL;
  if (duckdb_pending_prepared_streaming(prepared, &pending) != DuckDBSuccess) {
    const char *message = pending ? duckdb_pending_error(pending) : NULL;
    status = bf_error_set(err, BF_EQUERY, "%s", message ? message : "cannot start the query");
  } else {
    duckdb_result result;
    int executed = duckdb_execute_pending(pending, &result) == DuckDBSuccess;
    bf__engine_prepare_end(engine, preparing);
    prepared_done = 1;
    if (!executed) {
      const char *message = duckdb_result_error(&result);
      status = bf_error_set(err, BF_EQUERY, "%s", message ? message : "query failed");
    } else {
      status = stream_result(engine, &result, on_chunk, ctx, out_rows, err);
    }
    duckdb_destroy_result(&result);
  }
  if (pending) duckdb_destroy_pending(&pending);
done:
  if (!prepared_done) bf__engine_prepare_end(engine, preparing);
  if (have_dog) {
    dog.fired = bf__engine_unwatch(engine, &dog);
    if (dog.fired == 2 && status != BF_OK) {
      status = bf_error_set(err, BF_ECANCELLED, "query cancelled: the client went away");
    } else if (dog.fired && status != BF_OK) {
      if (client_limited)
        status = bf_error_set(err, BF_ETIMEOUT, "query interrupted at the client's deadline (%.3f s)",
                              limit);
      else
        status = bf_error_set(err, BF_ETIMEOUT, "query exceeded the server's %.1f s timeout", limit);
    }
  }
  if (status == BF_EQUERY && err && strstr(err->message, "Permission Error")) {
    status = BF_EPERM; /* the sandbox refused a file access */
    err->status = BF_EPERM;
  }
  if (status != BF_OK && err) {
    describe_file_error(engine, err);
    status = err->status;
  }
  if (prepared) duckdb_destroy_prepare(&prepared);
  if (extracted) duckdb_destroy_extracted(&extracted);
  bf__engine_query_conn_release(engine, &conn, status == BF_OK && !(have_dog && dog.fired));
  free(rewritten);
  return status;
}
