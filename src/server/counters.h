/* Counters an operator looks at: per table (acknowledged rows and bytes, refusals
 * by reason, duplicates, flushes with a duration histogram, commits, compactions,
 * checkpoints, vacuumed files) kept in the table's store and updated with relaxed
 * atomic adds, and server-wide ones (start time, RPCs by method and status with
 * latency histograms, queries running, query durations, result bytes, auth
 * failures), with the wrappers that count every call. Read by the ServerStats RPC
 * (server_stats.c) and the Prometheus endpoint (metrics.c). */
#ifndef BIFROST_SERVER_COUNTERS_H
#define BIFROST_SERVER_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/rpc.h"

#define BF_SERVER_VERSION "0.1.0"

/* Upper bounds (seconds) of the duration histograms; a last +Inf bucket follows. */
#define BF_STATS_N_BUCKETS 14
extern const double bf_stats_bucket_bounds[BF_STATS_N_BUCKETS];

typedef struct bf_histogram {
  int64_t buckets[BF_STATS_N_BUCKETS + 1]; /* not cumulative; [N] is +Inf */
  int64_t count;
  int64_t sum_us;
} bf_histogram_t;

/* Why an insert was refused (label reason="..."). */
enum {
  BF_REFUSED_SCHEMA,      /* fingerprint mismatch, invalid batch */
  BF_REFUSED_FULL,        /* memory for unflushed rows exhausted */
  BF_REFUSED_PERMISSION,  /* no write grant */
  BF_REFUSED_UNAVAILABLE, /* I/O trouble; the producer retries */
  BF_REFUSED_OTHER,
  BF_REFUSED_N
};
extern const char *const bf_refused_reason_names[BF_REFUSED_N];
int bf_refused_reason(int bf_status);

typedef struct bf_table_counters {
  int64_t rows_acked, bytes_acked, duplicates;
  int64_t refused[BF_REFUSED_N];
  int64_t flushes, commits, compactions, checkpoints, vacuumed_files;
  int64_t writer_waits;         /* inserts that waited for a writer that was behind */
  int64_t writer_waits_skipped; /* ... found it behind but every waiting place was taken */
  int64_t last_flush_ms;
  bf_histogram_t flush_seconds;
} bf_table_counters_t;

void bf_stats_add(int64_t *counter, int64_t value);
int64_t bf_stats_get(const int64_t *counter);
void bf_stats_set(int64_t *counter, int64_t value);
void bf_histogram_observe(bf_histogram_t *h, double seconds);

/* ---- server-wide ---------------------------------------------------------------- */
enum {
  BF_STATS_M_REGISTER, BF_STATS_M_INSERT, BF_STATS_M_QUERY, BF_STATS_M_LIST, BF_STATS_M_DESCRIBE,
  BF_STATS_M_MAINTAIN, BF_STATS_M_LOGIN, BF_STATS_M_SERVER_STATS, BF_STATS_M_OTHER, BF_STATS_N_METHODS
};
extern const char *const bf_stats_method_names[BF_STATS_N_METHODS];
#define BF_STATS_N_CODES 17 /* gRPC status codes 0..16 */

typedef struct bf_server_counters {
  int64_t started_at_ms;
  double started_mono;
  int64_t rpcs[BF_STATS_N_METHODS][BF_STATS_N_CODES];
  bf_histogram_t rpc_seconds[BF_STATS_N_METHODS];
  int64_t queries_running;
  bf_histogram_t query_seconds;
  int64_t result_bytes;
  int64_t auth_failures;
  int64_t calls_in_flight;
} bf_server_counters_t;

extern bf_server_counters_t bf_server_counters;

void bf_server_stats_start(void); /* records the start time; once, in main */
int bf_stats_method_index(const char *method);

/* Wrappers that count every call (by method and gRPC status, with latency), the
 * running queries and authentication failures around the real handler and hook:
 * pass a bf_stats_wrap_t as handler_ctx. */
typedef struct bf_stats_wrap {
  bf_rpc_handler_fn handler;
  bf_rpc_authenticate_fn authenticate;
  void *ctx;
} bf_stats_wrap_t;
void bf_stats_handler(void *wrap, bf_rpc_call_t *call, const char *method, const uint8_t *request,
                      size_t request_size);
int bf_stats_authenticate(void *wrap, bf_rpc_call_t *call, const char *method, bf_error_t *err);

#endif
