/* Operator counters (see server_stats.h) and the ServerStats RPC: uptime, versions,
 * and per table the backlog (tail rows and bytes) and the counters since the start,
 * for the tables the caller may read. */
#include "server/server_stats.h"

#include <duckdb.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/util.h"
#include "bifrost/v1/bifrost.pb-c.h"
#include "server/log.h"
#include "server/service.h"
#include "server/service_auth.h"
#include "server/table_store_internal.h"

const double bf_stats_bucket_bounds[BF_STATS_N_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                           0.25,  0.5,    1,     2.5,  5,     10,  60};
const char *const bf_refused_reason_names[BF_REFUSED_N] = {"schema", "memory_full", "permission",
                                                           "unavailable", "other"};
const char *const bf_stats_method_names[BF_STATS_N_METHODS] = {
    "RegisterTable", "InsertBatch", "Query", "ListTables", "DescribeTable",
    "MaintainTable", "Login",       "ServerStats", "other"};

bf_server_counters_t bf_server_counters;

void bf_stats_add(int64_t *counter, int64_t value) {
  __atomic_fetch_add(counter, value, __ATOMIC_RELAXED);
}
int64_t bf_stats_get(const int64_t *counter) { return __atomic_load_n(counter, __ATOMIC_RELAXED); }
void bf_stats_set(int64_t *counter, int64_t value) { __atomic_store_n(counter, value, __ATOMIC_RELAXED); }

void bf_histogram_observe(bf_histogram_t *h, double seconds) {
  size_t i = 0;
  while (i < BF_STATS_N_BUCKETS && seconds > bf_stats_bucket_bounds[i]) i++;
  bf_stats_add(&h->buckets[i], 1);
  bf_stats_add(&h->count, 1);
  bf_stats_add(&h->sum_us, (int64_t)(seconds * 1e6));
}

int bf_refused_reason(int bf_status) {
  switch (bf_status) {
    case BF_EINVAL:
    case BF_EMISMATCH:
    case BF_ECORRUPT:
    case BF_ENOTFOUND:
      return BF_REFUSED_SCHEMA;
    case BF_EFULL:
      return BF_REFUSED_FULL;
    case BF_EPERM:
    case BF_EAUTH:
      return BF_REFUSED_PERMISSION;
    case BF_EUNAVAILABLE:
    case BF_EIO:
      return BF_REFUSED_UNAVAILABLE;
    default:
      return BF_REFUSED_OTHER;
  }
}

void bf_server_stats_start(void) {
  bf_server_counters.started_at_ms = bf_time_now_us() / 1000;
  bf_server_counters.started_mono = bf_time_monotonic();
}

int bf_stats_method_index(const char *method) {
  static const char prefix[] = "/bifrost.v1.Bifrost/";
  if (strncmp(method, prefix, sizeof prefix - 1) == 0)
    for (int i = 0; i < BF_STATS_N_METHODS - 1; i++)
      if (strcmp(method + sizeof prefix - 1, bf_stats_method_names[i]) == 0) return i;
  return BF_STATS_M_OTHER;
}

typedef struct stats_storage {
  Bifrost__V1__TableStats stats;
  Bifrost__V1__TableName name;
} stats_storage_t;

static void fill_stats(bf_table_t *t, stats_storage_t *st) {
  Bifrost__V1__TableStats init = BIFROST__V1__TABLE_STATS__INIT;
  Bifrost__V1__TableName init_name = BIFROST__V1__TABLE_NAME__INIT;
  st->stats = init;
  st->name = init_name;
  st->name.catalog = t->catalog;
  st->name.schema_name = t->schema_name;
  st->name.table = t->table;
  st->stats.name = &st->name;
  pthread_mutex_lock(&t->mu);
  if (bf_table_ensure_snapshot(t, NULL) == BF_OK) {
    st->stats.delta_version = t->snapshot.version;
    st->stats.num_files = (int64_t)t->snapshot.n_files;
    for (size_t i = 0; i < t->snapshot.n_files; i++) {
      st->stats.num_rows += t->snapshot.files[i].num_records;
      st->stats.size_bytes += t->snapshot.files[i].size_bytes;
    }
  } else {
    st->stats.delta_version = -1;
  }
  bf_table_store_t *ts = t->store;
  if (ts) {
    for (size_t i = 0; i < ts->n_gens; i++) {
      st->stats.tail_rows += ts->gens[i]->rows;
      st->stats.tail_bytes += ts->gens[i]->decoded_bytes;
    }
    const bf_table_counters_t *c = &ts->counters;
    st->stats.rows_acknowledged = bf_stats_get(&c->rows_acked);
    st->stats.bytes_acknowledged = bf_stats_get(&c->bytes_acked);
    for (int r = 0; r < BF_REFUSED_N; r++) st->stats.inserts_refused += bf_stats_get(&c->refused[r]);
    st->stats.duplicates_skipped = bf_stats_get(&c->duplicates);
    st->stats.flushes = bf_stats_get(&c->flushes);
    st->stats.last_flush_at_ms = bf_stats_get(&c->last_flush_ms);
    st->stats.compactions = bf_stats_get(&c->compactions);
  }
  st->stats.num_rows += st->stats.tail_rows;
  pthread_mutex_unlock(&t->mu);
}

void bf_server_stats_handle(struct bf_service *s, bf_rpc_call_t *call, const uint8_t *req, size_t size) {
  Bifrost__V1__ServerStatsRequest *request = bifrost__v1__server_stats_request__unpack(NULL, size, req);
  if (request == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed ServerStatsRequest");
    return;
  }
  bifrost__v1__server_stats_request__free_unpacked(request, NULL);
  pthread_mutex_lock(&s->registry->mu);
  size_t n = s->registry->n_tables;
  bf_table_t **tables = malloc((n ? n : 1) * sizeof *tables);
  if (tables && n) memcpy(tables, s->registry->tables, n * sizeof *tables);
  pthread_mutex_unlock(&s->registry->mu);
  stats_storage_t *storage = calloc(n ? n : 1, sizeof *storage);
  Bifrost__V1__TableStats **list = calloc(n ? n : 1, sizeof *list);
  if (tables == NULL || storage == NULL || list == NULL) {
    bf_rpc_call_finish(call, BF_ENOMEM, "out of memory");
  } else {
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
      if (!bf__service_may_read(s, call, tables[i]->catalog, tables[i]->schema_name, tables[i]->table))
        continue;
      fill_stats(tables[i], &storage[shown]);
      list[shown] = &storage[shown].stats;
      shown++;
    }
    Bifrost__V1__ServerStatsResponse resp = BIFROST__V1__SERVER_STATS_RESPONSE__INIT;
    resp.version = (char *)BF_SERVER_VERSION;
    resp.duckdb_version = (char *)duckdb_library_version();
    resp.started_at_ms = bf_server_counters.started_at_ms;
    resp.uptime_secs = bf_time_monotonic() - bf_server_counters.started_mono;
    resp.n_tables = shown;
    resp.tables = list;
    resp.tail_bytes = bf_store_tail_bytes(s->store);
    resp.queries_running = bf_stats_get(&bf_server_counters.queries_running);
    int64_t total = 0;
    for (int m = 0; m < BF_STATS_N_METHODS; m++)
      for (int c = 0; c < BF_STATS_N_CODES; c++) total += bf_stats_get(&bf_server_counters.rpcs[m][c]);
    resp.rpcs_total = total;
    size_t len = protobuf_c_message_get_packed_size(&resp.base);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
      bf_rpc_call_finish(call, BF_ENOMEM, "out of memory");
    } else {
      protobuf_c_message_pack(&resp.base, buf);
      bf_rpc_call_reply(call, buf, len);
      free(buf);
    }
  }
  free(list);
  free(storage);
  free(tables);
}

/* ---- counting wrappers around the RPC handler and the authenticate hook ---------- */

static void count_rpc(int method, bf_rpc_call_t *call, double started) {
  int code = bf_rpc_call_status_code(call);
  if (code < 0 || code >= BF_STATS_N_CODES) code = 2; /* UNKNOWN */
  bf_stats_add(&bf_server_counters.rpcs[method][code], 1);
  if (code == 16) bf_stats_add(&bf_server_counters.auth_failures, 1); /* Login refused */
  bf_histogram_observe(&bf_server_counters.rpc_seconds[method], bf_time_monotonic() - started);
}

void bf_stats_handler(void *ctx, bf_rpc_call_t *call, const char *method, const uint8_t *request,
                      size_t request_size) {
  bf_stats_wrap_t *w = ctx;
  int m = bf_stats_method_index(method);
  double started = bf_time_monotonic();
  bf_stats_add(&bf_server_counters.calls_in_flight, 1);
  if (m == BF_STATS_M_QUERY) bf_stats_add(&bf_server_counters.queries_running, 1);
  w->handler(w->ctx, call, method, request, request_size);
  if (bf_rpc_call_stalled(call))
    BF_LOG_WARN("%s from %s ended with DEADLINE_EXCEEDED after %.0f s: the client took nothing "
                "from it (--client-stall-timeout); its worker is free again",
                method, bf_rpc_call_peer(call), bf_time_monotonic() - started);
  if (m == BF_STATS_M_QUERY) {
    bf_stats_add(&bf_server_counters.queries_running, -1);
    bf_histogram_observe(&bf_server_counters.query_seconds, bf_time_monotonic() - started);
  }
  bf_stats_add(&bf_server_counters.calls_in_flight, -1);
  count_rpc(m, call, started);
}

int bf_stats_authenticate(void *ctx, bf_rpc_call_t *call, const char *method, bf_error_t *err) {
  bf_stats_wrap_t *w = ctx;
  if (w->authenticate == NULL) return BF_OK;
  int status = w->authenticate(w->ctx, call, method, err);
  if (status != BF_OK) {
    bf_stats_add(&bf_server_counters.auth_failures, 1);
    int code = bf_rpc_status_to_grpc(status);
    if (code >= 0 && code < BF_STATS_N_CODES)
      bf_stats_add(&bf_server_counters.rpcs[bf_stats_method_index(method)][code], 1);
  }
  return status;
}
