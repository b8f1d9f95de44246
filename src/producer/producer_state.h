/* The producer's private state, shared by producer.c (create, insert, flush,
 * shutdown, stats) and producer_thread.c (the background thread: batching,
 * encoding, sending, retries, events). Not installed; not part of the C API. */
#ifndef BIFROST_PRODUCER_STATE_H
#define BIFROST_PRODUCER_STATE_H

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "bifrost/producer.h"
#include "bifrost/rows.h"
#include "bifrost/schema.h"
#include "producer/producer_internal.h"
#include "producer/queue.h"

/* Incremented in the child of every fork(): a producer created before the fork
 * has no thread in the child and refuses to be used there. */
extern atomic_ulong bf__producer_fork_generation;

/* One batch between its encoding and its resolution (producer_send.c). */
typedef struct bf__flight bf__flight_t;

/* The background thread's sleep, as seen by inserters deciding whether to wake it. */
enum { AWAKE = 0, SLEEP_IDLE = 1, SLEEP_TIMED = 2 };

struct bf_producer {
  /* Immutable after create. */
  char *target;
  char *authorization;
  char *catalog;
  char *schema_name;
  char *table;
  char *json_schema;
  char **partition_columns;
  size_t n_partition_columns;
  bf_table_name_t name; /* points at catalog / schema_name / table above */
  size_t batch_size;
  double scheduled_delay_secs;
  bf_backpressure_t backpressure;
  double block_timeout_secs;
  double rpc_timeout_secs;
  int max_retries;
  bf_schema_t schema;
  char fingerprint[33];
  char producer_id[37];
  bf_rpc_channel_t *channel; /* thread-safe */

  size_t max_queue_rows;
  size_t max_queue_bytes; /* 0 = no byte bound */
  size_t max_batch_bytes; /* bound on one batch's estimated bytes */
  bf_producer_event_fn on_event; /* may be NULL */
  void *event_ctx;
  char *fqn;              /* "catalog.schema.table" for events */
  unsigned long fork_gen; /* fork_generation at create */

  /* Owned by the background thread. */
  bf_batch_builder_t *builder;
  bf__item_t **batch;     /* batch_size slots: the pending JSON records */
  bool *row_ok;           /* batch_size flags: row appended to the builder */
  bf__item_t *held;       /* popped item waiting for the pending records to go: an
                             Arrow batch, or a record that would overflow max_batch_bytes */
  size_t pending_bytes;   /* estimated bytes of the pending records */
  bool in_outage;         /* a batch is being retried; RETRYING was reported (guarded by mu) */
  uint64_t next_sequence; /* last sequence used; the first batch sends 1 */
  uint64_t rng_state;     /* xorshift64 state for backoff jitter (guarded by mu) */
  uint64_t dropped_logged;
  double drop_logged_at;
  uint64_t failed_logged;     /* stats.failed when failures were last reported */
  double failure_logged_at;
  pthread_t thread;
  bf__queue_t queue;

  /* Lock-free state shared with inserters. */
  atomic_ullong enqueued;    /* rows pushed (counted just before the push) */
  atomic_ullong dropped;     /* rows dropped by DROP_NEWEST */
  atomic_ullong too_large;   /* records refused by insert: larger than max_batch_bytes */
  atomic_llong outstanding;  /* rows queued or in flight: the bound */
  atomic_llong outstanding_bytes; /* their bytes */
  atomic_ullong popped_rows; /* mirror of popped for inserters */
  atomic_int sleep_state;    /* AWAKE / SLEEP_IDLE / SLEEP_TIMED */
  atomic_ullong wake_at;     /* SLEEP_TIMED: `enqueued` at which the batch is full */
  atomic_int inserting;      /* inserts between their closing check and their push */
  atomic_int blocked;        /* inserters waiting for room */
  atomic_bool closing;       /* shutdown began: inserts fail, the thread drains and exits */

  /* Serialises shutdown calls; `stopped` is guarded by it. */
  pthread_mutex_t lifecycle_mu;
  bool stopped;

  pthread_mutex_t mu;
  pthread_cond_t work_cv;     /* thread: records, flush request, close, abort */
  pthread_cond_t space_cv;    /* blocked inserters: room in the queue, close */
  pthread_cond_t progress_cv; /* flushers and shutdown: records resolved, thread done */
  /* Everything below is guarded by mu. */
  uint64_t popped;         /* rows taken by the thread */
  uint64_t resolved;       /* rows acknowledged or failed after popping */
  uint64_t flush_target;   /* highest row count some flush wants sent now */
  bf_producer_stats_t stats; /* counters owned by the thread; see stats_locked */
  int last_failure_status; /* status of the newest failed record, BF_OK if none */
  bool last_error_transient; /* stats.last_error is a retry message (cleared on recovery) */
  uint64_t acked_mark;     /* stats.acknowledged when the last flush returned */
  uint64_t failed_mark;    /* stats.failed when the last flush returned */
  double last_send; /* monotonic seconds of the last batch taken */
  bool aborting;    /* shutdown timed out: stop retrying, fail what is left */
  bool thread_done;
  /* Batches in flight, oldest first (a ring of max_in_flight), and the senders
   * that send them; resolved in this order whatever order their answers come in. */
  size_t max_in_flight;
  bf__flight_t **flights;
  size_t flights_head, n_flights;
  pthread_t *senders;
  size_t n_senders;
  bool senders_stop;
  pthread_cond_t send_cv; /* senders: a flight to send, stop */
};

/* The bound is full: sending is due. */
static inline bool bf__producer_bound_full(bf_producer_t *producer) {
  return atomic_load(&producer->outstanding) >= (long long)producer->max_queue_rows ||
         (producer->max_queue_bytes > 0 &&
          atomic_load(&producer->outstanding_bytes) >= (long long)producer->max_queue_bytes);
}

static inline double bf__producer_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits on cv until signalled or the monotonic deadline passes (deadline <= 0 or
 * infinite: no deadline). cv was created with CLOCK_MONOTONIC. */
static inline void bf__producer_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, double deadline) {
  if (deadline <= 0 || isinf(deadline)) {
    pthread_cond_wait(cv, mu);
    return;
  }
  struct timespec ts;
  double whole = floor(deadline);
  ts.tv_sec = (time_t)whole;
  ts.tv_nsec = (long)((deadline - whole) * 1e9);
  if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
  pthread_cond_timedwait(cv, mu, &ts);
}

/* Bytes a row adds to a batch for the system columns (size estimates). */
#define BF__PRODUCER_ROW_OVERHEAD 64

/* producer.c: a producer inherited through fork() refuses every call. */
bool bf__producer_forked(const bf_producer_t *producer);
int bf__producer_forked_error(bf_error_t *err);
/* producer.c: refuses rows no batch can hold (counted, reported, BF_EINVAL). */
int bf__producer_too_large(bf_producer_t *producer, size_t rows, size_t estimate, const char *what,
                           bf_error_t *err);
/* producer.c: reserves room (backpressure policy) and pushes item (freed on
 * failure or drop). */
int bf__producer_enqueue(bf_producer_t *producer, bf__item_t *item, bool may_block,
                         bf__cancel_fn cancel, void *ctx, bool *would_block, bf_error_t *err);

/* The thread's body (producer_thread.c). */
void *bf__producer_main(void *arg);

/* ---- producer_send.c: batches in flight ---- */
/* Starts the senders (max_in_flight of them). Thread only, without mu. */
int bf__producer_senders_start(bf_producer_t *producer);
/* Waits until every flight is resolved, then stops and joins the senders.
 * Thread only, with mu held (released while waiting and joining). */
void bf__producer_senders_stop_locked(bf_producer_t *producer);
/* Hands over one batch: its popped rows (n, their flags row_ok or NULL when
 * they share the batch's outcome, their bytes in the bound), its IPC stream of
 * n_sent rows (moved out of *ipc; empty when every row was rejected), why it could
 * not be encoded (encode_status/encode_message, BF_OK when it was) and why some
 * rows were rejected (bad_status/bad_message; BF_OK/"" when none). Waits for room
 * in the ring. Thread only, without mu. */
void bf__producer_submit(bf_producer_t *producer, size_t n, const bool *row_ok, size_t n_sent,
                         size_t bytes, bf_buffer_t *ipc, bool arrow, int encode_status,
                         const char *encode_message, int bad_status, const char *bad_message);

/* ---- producer_report.c: accounting and events (caller holds mu unless said) ---- */
/* Reports an event to the on_event callback, if any. Called without mu. */
void bf__producer_emit(bf_producer_t *producer, bf_producer_event_kind_t kind, uint64_t count,
                       int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* The same, called with mu held: releases it around the callback. */
void bf__producer_emit_locked(bf_producer_t *producer, bf_producer_event_kind_t kind, uint64_t count,
                              int status, const char *message);
/* Records a failure message in stats.last_error. */
void bf__producer_set_last_error(bf_producer_t *producer, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Resolves the oldest popped rows: n_acked acknowledged, n_failed failed. */
void bf__producer_resolve_counts_locked(bf_producer_t *producer, size_t n_acked, size_t n_failed,
                                        size_t bytes, int failure_status);
/* Resolves the n oldest popped rows: row_ok[i] says whether row i was
 * acknowledged (row_ok NULL: all n failed). */
void bf__producer_resolve_locked(bf_producer_t *producer, size_t n, const bool *row_ok, size_t bytes,
                                 int failure_status);
/* Reports failed records (BATCH_FAILED), at most one summary per interval. */
void bf__producer_log_failures_locked(bf_producer_t *producer, const char *latest);
/* Reports dropped records (DROPPED), at most one summary per interval. */
void bf__producer_log_drops_locked(bf_producer_t *producer, double now);

#endif /* BIFROST_PRODUCER_STATE_H */
