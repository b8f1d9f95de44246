/* Sandboxed query execution: exactly one statement, of SELECT type (SELECT, WITH,
 * VALUES, FROM-first, DESCRIBE, SUMMARIZE, SHOW), on a fresh connection to the
 * query database; a watchdog interrupts it at the timeout. Results leave as one
 * Arrow IPC stream (our writer) cut into chunks of about chunk_bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bifrost/ipc.h"
#include "engine/engine_compat.h"
#include "engine/engine_internal.h"

typedef struct watchdog {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  duckdb_connection conn;
  double timeout_secs;          /* <= 0: none */
  bf_engine_cancel_fn should_cancel;
  void *cancel_ctx;
  int done;
  int fired;                    /* 1 = timeout, 2 = cancelled */
} watchdog_t;

/* Wakes every 100 ms: interrupts the query at the timeout or when the caller asks. */
static void *watchdog_main(void *arg) {
  watchdog_t *w = arg;
  double deadline = w->timeout_secs > 0 ? bf_time_monotonic() + w->timeout_secs : 0;
  pthread_mutex_lock(&w->mu);
  while (!w->done) {
    struct timespec wake;
    clock_gettime(CLOCK_REALTIME, &wake);
    wake.tv_nsec += 100000000L;
    if (wake.tv_nsec >= 1000000000L) {
      wake.tv_sec++;
      wake.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&w->cv, &w->mu, &wake);
    if (w->done) break;
    int timed_out = deadline > 0 && bf_time_monotonic() >= deadline;
    pthread_mutex_unlock(&w->mu);
    int cancelled = !timed_out && w->should_cancel && w->should_cancel(w->cancel_ctx);
    pthread_mutex_lock(&w->mu);
    if ((timed_out || cancelled) && !w->done) {
      w->fired = timed_out ? 1 : 2;
      duckdb_interrupt(w->conn);
      break;
    }
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static void watchdog_stop(watchdog_t *w) {
  pthread_mutex_lock(&w->mu);
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
}

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

/* Drains out into on_chunk. Returns non-zero if the consumer cancelled. */
static int flush_chunk(bf_buffer_t *out, bf_engine_chunk_fn on_chunk, void *ctx) {
  if (out->size == 0) return 0;
  int cancel = on_chunk(ctx, out->data, out->size);
  out->size = 0;
  return cancel;
}

static int stream_result(bf_engine_t *engine, duckdb_result *result, bf_engine_chunk_fn on_chunk,
                         void *ctx, int64_t *out_rows, bf_error_t *err) {
  duckdb_arrow_options options = duckdb_result_get_arrow_options(result);
  struct ArrowSchema schema = {0};
  bf_ipc_writer_t writer = {0};
  bf_buffer_t out;
  bf_buffer_init(&out);
  int status = BF_OK, writer_ready = 0;
  int64_t rows = 0, sent_bytes = 0;
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
  for (;;) {
    duckdb_data_chunk chunk = duckdb_fetch_chunk(*result);
    if (chunk == NULL) break;
    struct ArrowArray array = {0};
    duckdb_error_data error = duckdb_data_chunk_to_arrow(options, chunk, &array);
    rows += (int64_t)duckdb_data_chunk_get_size(chunk);
    duckdb_destroy_data_chunk(&chunk);
    if (error && duckdb_error_data_has_error(error)) {
      status = bf_error_set(err, BF_EQUERY, "%s", duckdb_error_data_message(error));
      duckdb_destroy_error_data(&error);
      goto done;
    }
    if (error) duckdb_destroy_error_data(&error);
    size_t before = out.size;
    status = bf_ipc_writer_write(&writer, &array, err);
    if (array.release) array.release(&array);
    if (status != BF_OK) goto done;
    sent_bytes += (int64_t)(out.size - before);
    if (engine->max_result_rows > 0 && rows > engine->max_result_rows) {
      status = bf_error_set(err, BF_EFULL,
                            "the result has more than %lld rows, the server's limit "
                            "(--max-result-rows); add a LIMIT or aggregate",
                            (long long)engine->max_result_rows);
      goto done;
    }
    if (engine->max_result_bytes > 0 && sent_bytes > engine->max_result_bytes) {
      status = bf_error_set(err, BF_EFULL,
                            "the result is larger than %lld bytes, the server's limit "
                            "(--max-result-bytes); add a LIMIT or aggregate",
                            (long long)engine->max_result_bytes);
      goto done;
    }
    if (out.size >= engine->chunk_bytes && flush_chunk(&out, on_chunk, ctx)) {
      status = bf_error_set(err, BF_ECANCELLED, "query cancelled by the client");
      goto done;
    }
  }
  if (duckdb_result_error(result)) {
    status = bf_error_set(err, BF_EQUERY, "%s", duckdb_result_error(result));
    goto done;
  }
  status = bf_ipc_writer_finish(&writer, err);
  if (status == BF_OK && flush_chunk(&out, on_chunk, ctx))
    status = bf_error_set(err, BF_ECANCELLED, "query cancelled by the client");
  if (status == BF_OK && out_rows) *out_rows = rows;
done:
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
  duckdb_connection conn;
  if (duckdb_connect(engine->query_db, &conn) != DuckDBSuccess) {
    free(rewritten);
    return bf_error_set(err, BF_EINTERNAL, "cannot connect to the query database");
  }
  duckdb_extracted_statements extracted = NULL;
  duckdb_prepared_statement prepared = NULL;
  int status = BF_OK;
  /* The timeout covers parsing, checking and planning too, not only execution. */
  watchdog_t dog = {0};
  int have_dog = 0;
  double limit = engine->query_timeout_secs;
  int client_limited = client_time_left > 0 && client_time_left < 1e9 &&
                       (limit <= 0 || client_time_left < limit);
  if (client_limited) limit = client_time_left;
  if (limit > 0 || should_cancel) {
    dog.conn = conn;
    dog.timeout_secs = limit;
    dog.should_cancel = should_cancel;
    dog.cancel_ctx = ctx;
    pthread_mutex_init(&dog.mu, NULL);
    pthread_cond_init(&dog.cv, NULL);
    have_dog = pthread_create(&dog.thread, NULL, watchdog_main, &dog) == 0;
    if (!have_dog) {
      pthread_mutex_destroy(&dog.mu);
      pthread_cond_destroy(&dog.cv);
    }
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
  status = bf__engine_guard_query(engine, conn, sql, check_table, check_ctx, &not_a_select, err);
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
  status = bind_params(prepared, params, n_params, err);
  if (status != BF_OK) goto done;
  duckdb_result result;
  if (duckdb_execute_prepared(prepared, &result) != DuckDBSuccess) {
    status = bf_error_set(err, BF_EQUERY, "%s", duckdb_result_error(&result));
  } else {
    status = stream_result(engine, &result, on_chunk, ctx, out_rows, err);
  }
  duckdb_destroy_result(&result);
done:
  if (have_dog) {
    watchdog_stop(&dog);
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
  duckdb_disconnect(&conn);
  free(rewritten);
  return status;
}
