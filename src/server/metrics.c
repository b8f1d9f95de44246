/* Prometheus metrics (see metrics.h): per table (label table="catalog.schema.table")
 * acknowledged rows and bytes, refusals by reason, duplicates, tail rows and bytes,
 * WAL bytes, flushes with a duration histogram, commits, live files and bytes,
 * compactions, checkpoints, vacuumed files, last flush time; server-wide RPCs by
 * method and code with latency histograms, running queries, query durations, result
 * bytes, memory held for unflushed rows, resident memory, calls in flight and
 * authentication failures. Rendering takes each table's lock briefly, like a
 * ListTables call; the insert path only does relaxed atomic adds. */
#include "server/metrics.h"
#include "storage/storage_s3.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bifrost/util.h"
#include "server/log.h"
#include "server/counters.h"
#include "server/table_store_internal.h"

struct bf_metrics {
  struct MHD_Daemon *daemon;
  bf_service_t *service;
};

typedef struct out {
  char *data;
  size_t len, cap;
  int failed;
} out_t;

static void put(out_t *o, const char *fmt, ...) {
  if (o->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->data ? o->data + o->len : NULL, o->data ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      o->failed = 1;
      return;
    }
    if (o->data && o->len + (size_t)n < o->cap) {
      o->len += (size_t)n;
      return;
    }
    size_t cap = o->cap ? o->cap * 2 : 65536;
    while (cap < o->len + (size_t)n + 1) cap *= 2;
    char *grown = realloc(o->data, cap);
    if (grown == NULL) {
      o->failed = 1;
      return;
    }
    o->data = grown;
    o->cap = cap;
  }
}

static void help(out_t *o, const char *name, const char *type, const char *text) {
  put(o, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* A label value with \, " and newline escaped (names are validated, but still). */
static void label_value(const char *in, char *outbuf, size_t cap) {
  size_t j = 0;
  for (size_t i = 0; in[i] && j + 3 < cap; i++) {
    char c = in[i];
    if (c == '\\' || c == '"') {
      outbuf[j++] = '\\';
      outbuf[j++] = c;
    } else if (c == '\n') {
      outbuf[j++] = '\\';
      outbuf[j++] = 'n';
    } else {
      outbuf[j++] = c;
    }
  }
  outbuf[j] = '\0';
}

static void histogram(out_t *o, const char *name, const char *labels, const bf_histogram_t *h) {
  int64_t cumulative = 0;
  const char *sep = labels[0] ? "," : "";
  for (int i = 0; i <= BF_STATS_N_BUCKETS; i++) {
    cumulative += bf_stats_get(&h->buckets[i]);
    if (i < BF_STATS_N_BUCKETS)
      put(o, "%s_bucket{%s%sle=\"%g\"} %lld\n", name, labels, sep, bf_stats_bucket_bounds[i],
          (long long)cumulative);
    else
      put(o, "%s_bucket{%s%sle=\"+Inf\"} %lld\n", name, labels, sep, (long long)cumulative);
  }
  const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
  put(o, "%s_sum%s%s%s %.6f\n", name, open, labels, close, (double)bf_stats_get(&h->sum_us) / 1e6);
  put(o, "%s_count%s%s%s %lld\n", name, open, labels, close, (long long)bf_stats_get(&h->count));
}

/* What one table contributes, read under its lock. */
typedef struct table_row {
  char label[3 * 256 + 32];
  int has_store;
  bf_table_counters_t c; /* a copy, read atomically field by field */
  int64_t tail_rows, tail_bytes, wal_bytes, files, live_bytes;
} table_row_t;

static void read_table(bf_table_t *t, table_row_t *r) {
  char escaped[3 * 256 + 16];
  label_value(t->fqn, escaped, sizeof escaped);
  snprintf(r->label, sizeof r->label, "table=\"%s\"", escaped);
  pthread_mutex_lock(&t->mu);
  if (bf_table_ensure_snapshot(t, NULL) == BF_OK) {
    r->files = (int64_t)t->snapshot.n_files;
    for (size_t i = 0; i < t->snapshot.n_files; i++) r->live_bytes += t->snapshot.files[i].size_bytes;
  }
  bf_table_store_t *ts = t->store;
  if (ts) {
    r->has_store = 1;
    for (size_t i = 0; i < ts->n_gens; i++) {
      r->tail_rows += ts->gens[i]->rows;
      r->tail_bytes += ts->gens[i]->decoded_bytes;
      r->wal_bytes += ts->gens[i]->bytes;
    }
    const bf_table_counters_t *c = &ts->counters;
    int64_t *dst = (int64_t *)&r->c;
    const int64_t *src = (const int64_t *)c;
    for (size_t i = 0; i < sizeof *c / sizeof(int64_t); i++) dst[i] = bf_stats_get(&src[i]);
  }
  pthread_mutex_unlock(&t->mu);
}

#define TABLE_COUNTER(o, rows, n, name, type, text, expr)                                 \
  do {                                                                                    \
    help(o, name, type, text);                                                            \
    for (size_t i_ = 0; i_ < (n); i_++) {                                                 \
      const table_row_t *r = &(rows)[i_];                                                 \
      put(o, "%s{%s} %lld\n", name, r->label, (long long)(expr));                         \
    }                                                                                     \
  } while (0)

static void render_tables(out_t *o, bf_service_t *s) {
  pthread_mutex_lock(&s->registry->mu);
  size_t n = s->registry->n_tables;
  bf_table_t **tables = malloc((n ? n : 1) * sizeof *tables);
  if (tables && n) memcpy(tables, s->registry->tables, n * sizeof *tables);
  pthread_mutex_unlock(&s->registry->mu);
  table_row_t *rows = calloc(n ? n : 1, sizeof *rows);
  if (tables == NULL || rows == NULL) {
    o->failed = 1;
    free(tables);
    free(rows);
    return;
  }
  for (size_t i = 0; i < n; i++) read_table(tables[i], &rows[i]);
  TABLE_COUNTER(o, rows, n, "bifrost_table_rows_acknowledged_total", "counter",
                "Rows acknowledged to producers (stored in the WAL) since the start.", r->c.rows_acked);
  TABLE_COUNTER(o, rows, n, "bifrost_table_bytes_acknowledged_total", "counter",
                "Arrow IPC bytes of acknowledged batches since the start.", r->c.bytes_acked);
  help(o, "bifrost_table_inserts_refused_total", "counter", "InsertBatch calls refused, by reason.");
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < BF_REFUSED_N; k++)
      put(o, "bifrost_table_inserts_refused_total{%s,reason=\"%s\"} %lld\n", rows[i].label,
          bf_refused_reason_names[k], (long long)rows[i].c.refused[k]);
  TABLE_COUNTER(o, rows, n, "bifrost_table_duplicates_skipped_total", "counter",
                "Batches already applied (same producer and sequence), acknowledged again.",
                r->c.duplicates);
  TABLE_COUNTER(o, rows, n, "bifrost_table_tail_rows", "gauge",
                "Acknowledged rows not yet written to Parquet.", r->tail_rows);
  TABLE_COUNTER(o, rows, n, "bifrost_table_tail_bytes", "gauge",
                "Decoded bytes of acknowledged rows not yet written to Parquet (memory).",
                r->tail_bytes);
  TABLE_COUNTER(o, rows, n, "bifrost_table_wal_bytes", "gauge",
                "Bytes in the table's WAL segments not yet flushed.", r->wal_bytes);
  TABLE_COUNTER(o, rows, n, "bifrost_table_flushes_total", "counter",
                "Flushes of the tail to Parquet with a Delta commit.", r->c.flushes);
  help(o, "bifrost_table_flush_duration_seconds", "histogram",
       "Time of one flush (Parquet files written, checked and committed).");
  for (size_t i = 0; i < n; i++)
    histogram(o, "bifrost_table_flush_duration_seconds", rows[i].label, &rows[i].c.flush_seconds);
  TABLE_COUNTER(o, rows, n, "bifrost_table_writer_waits_total", "counter",
                "Inserts that waited (up to 0.5 s) for a flush because the writer was behind.",
                r->c.writer_waits);
  TABLE_COUNTER(o, rows, n, "bifrost_table_writer_waits_skipped_total", "counter",
                "Inserts that found the writer behind but did not wait: as many inserts as "
                "half of --workers were waiting already.",
                r->c.writer_waits_skipped);
  TABLE_COUNTER(o, rows, n, "bifrost_table_commits_total", "counter",
                "Delta commits written by this server (flushes and compactions).", r->c.commits);
  TABLE_COUNTER(o, rows, n, "bifrost_table_files", "gauge", "Live data files in the table.", r->files);
  TABLE_COUNTER(o, rows, n, "bifrost_table_live_bytes", "gauge", "Bytes of the live data files.",
                r->live_bytes);
  TABLE_COUNTER(o, rows, n, "bifrost_table_compactions_total", "counter",
                "OPTIMIZE commits (small files rewritten).", r->c.compactions);
  TABLE_COUNTER(o, rows, n, "bifrost_table_checkpoints_total", "counter", "Delta checkpoints written.",
                r->c.checkpoints);
  TABLE_COUNTER(o, rows, n, "bifrost_table_vacuumed_files_total", "counter",
                "Unreferenced files deleted by vacuum.", r->c.vacuumed_files);
  help(o, "bifrost_table_last_flush_timestamp_seconds", "gauge",
       "Unix time of the last successful flush (0 = none since the start).");
  for (size_t i = 0; i < n; i++)
    put(o, "bifrost_table_last_flush_timestamp_seconds{%s} %.3f\n", rows[i].label,
        (double)rows[i].c.last_flush_ms / 1000.0);
  free(rows);
  free(tables);
}

static const char *const CODE_NAMES[BF_STATS_N_CODES] = {
    "OK",        "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",  "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",     "UNIMPLEMENTED",     "INTERNAL",
    "UNAVAILABLE", "DATA_LOSS",       "UNAUTHENTICATED"};

static long long resident_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long long pages = 0, resident = 0;
  if (f == NULL) return 0;
  if (fscanf(f, "%lld %lld", &pages, &resident) != 2) resident = 0;
  fclose(f);
  return resident * sysconf(_SC_PAGE_SIZE);
}

char *bf_metrics_render(bf_service_t *s, size_t *len) {
  out_t o = {0};
  bf_server_counters_t *c = &bf_server_counters;
  help(&o, "bifrost_build_info", "gauge", "Versions this server runs with (always 1).");
  put(&o, "bifrost_build_info{version=\"%s\"} 1\n", BF_SERVER_VERSION);
  help(&o, "bifrost_start_time_seconds", "gauge", "Unix time the server started.");
  put(&o, "bifrost_start_time_seconds %.3f\n", (double)c->started_at_ms / 1000.0);
  help(&o, "bifrost_uptime_seconds", "gauge", "Seconds since the server started.");
  put(&o, "bifrost_uptime_seconds %.3f\n", bf_time_monotonic() - c->started_mono);
  help(&o, "bifrost_rpcs_total", "counter", "Calls answered, by method and gRPC status code.");
  for (int m = 0; m < BF_STATS_N_METHODS; m++)
    for (int k = 0; k < BF_STATS_N_CODES; k++) {
      long long v = (long long)bf_stats_get(&c->rpcs[m][k]);
      if (v || k == 0)
        put(&o, "bifrost_rpcs_total{method=\"%s\",code=\"%s\"} %lld\n", bf_stats_method_names[m],
            CODE_NAMES[k], v);
    }
  help(&o, "bifrost_rpc_duration_seconds", "histogram", "Time from a call's request to its status.");
  for (int m = 0; m < BF_STATS_N_METHODS; m++) {
    char labels[64];
    snprintf(labels, sizeof labels, "method=\"%s\"", bf_stats_method_names[m]);
    histogram(&o, "bifrost_rpc_duration_seconds", labels, &c->rpc_seconds[m]);
  }
  help(&o, "bifrost_rpc_calls_in_flight", "gauge", "Calls being served now (open client calls).");
  put(&o, "bifrost_rpc_calls_in_flight %lld\n", (long long)bf_stats_get(&c->calls_in_flight));
  help(&o, "bifrost_queries_running", "gauge", "SQL queries running now.");
  put(&o, "bifrost_queries_running %lld\n", (long long)bf_stats_get(&c->queries_running));
  help(&o, "bifrost_query_duration_seconds", "histogram", "Time of one Query call, result streamed.");
  histogram(&o, "bifrost_query_duration_seconds", "", &c->query_seconds);
  help(&o, "bifrost_query_result_bytes_total", "counter", "Arrow IPC bytes of query results sent.");
  put(&o, "bifrost_query_result_bytes_total %lld\n", (long long)bf_stats_get(&c->result_bytes));
  help(&o, "bifrost_auth_failures_total", "counter", "Calls refused by authentication.");
  put(&o, "bifrost_auth_failures_total %lld\n", (long long)bf_stats_get(&c->auth_failures));
  help(&o, "bifrost_tail_memory_bytes", "gauge",
       "Decoded bytes held for acknowledged rows not yet flushed, all tables.");
  put(&o, "bifrost_tail_memory_bytes %lld\n", (long long)bf_store_tail_bytes(s->store));
  help(&o, "bifrost_process_resident_memory_bytes", "gauge",
       "Resident memory of the server process (DuckDB included).");
  put(&o, "bifrost_process_resident_memory_bytes %lld\n", resident_bytes());
  if (bf_s3_config() != NULL) { /* the server's own S3 requests (DuckDB's Parquet I/O not included) */
    bf_s3_counters_t s3;
    bf_s3_counters(&s3);
    help(&o, "bifrost_s3_requests_total", "counter",
         "S3 requests sent for the Delta log, registry, leases and listings, by kind (every "
         "attempt; Parquet reads and writes by DuckDB not included).");
    const struct { const char *kind; uint64_t n; } kinds[] = {
        {"get", s3.get}, {"put", s3.put}, {"head", s3.head}, {"delete", s3.del},
        {"list", s3.list}, {"copy", s3.copy}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
      put(&o, "bifrost_s3_requests_total{kind=\"%s\"} %llu\n", kinds[i].kind,
          (unsigned long long)kinds[i].n);
    help(&o, "bifrost_s3_retries_total", "counter", "S3 attempts that were retries.");
    put(&o, "bifrost_s3_retries_total %llu\n", (unsigned long long)s3.retries);
  }
  render_tables(&o, s);
  if (o.failed) {
    free(o.data);
    return NULL;
  }
  *len = o.len;
  return o.data;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls) {
  (void)version;
  (void)upload_data;
  (void)con_cls;
  bf_metrics_t *m = cls;
  const char *text;
  unsigned code;
  char *body = NULL;
  size_t len = 0;
  if (*upload_data_size != 0) {
    *upload_data_size = 0; /* ignore request bodies */
    return MHD_YES;
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    text = "only GET\n";
    code = MHD_HTTP_METHOD_NOT_ALLOWED;
  } else if (strcmp(url, "/metrics") != 0) {
    text = "not found: metrics are at /metrics\n";
    code = MHD_HTTP_NOT_FOUND;
  } else if ((body = bf_metrics_render(m->service, &len)) == NULL) {
    text = "out of memory\n";
    code = MHD_HTTP_INTERNAL_SERVER_ERROR;
  } else {
    text = NULL;
    code = MHD_HTTP_OK;
  }
  struct MHD_Response *resp =
      body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
           : MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  if (resp == NULL) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, "Content-Type",
                          code == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8"
                                              : "text/plain; charset=utf-8");
  if (code == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(resp, "Allow", "GET, HEAD");
  enum MHD_Result ret = MHD_queue_response(conn, code, resp);
  MHD_destroy_response(resp);
  return ret;
}

int bf_metrics_start(const char *host, int port, bf_service_t *service, bf_metrics_t **out,
                     int *out_port, bf_error_t *err) {
  struct addrinfo hints, *found = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  char port_text[16];
  snprintf(port_text, sizeof port_text, "%d", port);
  const char *name = strcmp(host, "[::1]") == 0 ? "::1" : host;
  int gai = getaddrinfo(name, port_text, &hints, &found);
  if (gai != 0 || found == NULL)
    return bf_error_set(err, BF_EINVAL, "--metrics-host %s: %s", host, gai_strerror(gai));
  bf_metrics_t *m = calloc(1, sizeof *m);
  if (m == NULL) {
    freeaddrinfo(found);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  m->service = service;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  if (found->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  m->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, answer, m, MHD_OPTION_SOCK_ADDR,
                               found->ai_addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
  freeaddrinfo(found);
  if (m->daemon == NULL) {
    free(m);
    return bf_error_set(err, BF_EIO, "cannot serve metrics on %s:%d (in use or not allowed)", host, port);
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
  *out_port = info ? (int)info->port : port;
  *out = m;
  return BF_OK;
}

void bf_metrics_stop(bf_metrics_t *m) {
  if (m == NULL) return;
  MHD_stop_daemon(m->daemon);
  free(m);
}
