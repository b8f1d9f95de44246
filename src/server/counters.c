/* Operator counters and the wrappers that count every call (see counters.h). */
#include "server/counters.h"

#include <string.h>

#include "bifrost/util.h"
#include "server/log.h"

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
