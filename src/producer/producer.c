/* The producer (include/bifrost/producer.h): application threads enqueue JSON records;
 * one background pthread batches them into Arrow record batches, encodes Arrow IPC
 * and sends InsertBatch, retrying transient failures with the same sequence number
 * so the server applies each batch exactly once.
 *
 * Queue: this first version is a bounded ring (queue.c) guarded by one mutex with
 * condition variables, not the lock-free queue DESIGN.md aims for. The critical
 * section of an insert is a pointer store and a few counter updates; the JSON copy
 * is made before taking the lock. A lock-free MPSC ring can replace it behind the
 * same functions once benchmarks show contention on `mu`.
 *
 * Accounting: every record gets an ordinal (1, 2, ...) when it enters the queue.
 * The thread pops records in ordinal order and resolves (acknowledges or fails)
 * each popped batch as a whole, in order, so `resolved_total` only moves forward
 * over a contiguous prefix of ordinals. flush() therefore only has to wait until
 * resolved_total reaches the ordinal of the last record enqueued before it was
 * called (a full queue, a flush, shutdown, batch_size or the delay make the
 * thread send). Records dropped by backpressure never get an ordinal; they are resolved
 * at insert. At every moment, under `mu`:
 *   inserted == acknowledged + queued + in_flight + dropped + failed
 *   enqueued_total == popped_total + queued,  popped_total == resolved_total + in_flight
 * Stats meanings: sent_batches counts batches sent at least once; retried_batches
 * counts retry attempts (a batch retried three times adds three). */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bifrost/ipc.h"
#include "bifrost/producer.h"
#include "bifrost/rows.h"
#include "bifrost/schema.h"
#include "bifrost/util.h"
#include "producer/producer_internal.h"
#include "producer/queue.h"

#define BACKOFF_INITIAL_SECS 0.05
#define BACKOFF_MAX_SECS 5.0
/* bf_producer_destroy without a prior shutdown: how long it waits for delivery
 * before failing what is left (a destructor must not hang forever). */
#define DESTROY_SHUTDOWN_TIMEOUT_SECS 10.0

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

  /* Owned by the background thread. */
  bf_batch_builder_t *builder;
  bf__record_t *batch;    /* batch_size slots */
  bool *row_ok;           /* batch_size flags: row appended to the builder */
  uint64_t next_sequence; /* last sequence used; the first batch sends 1 */
  uint64_t rng_state;     /* xorshift64 state for backoff jitter */
  pthread_t thread;

  /* Serialises shutdown calls; `stopped` is guarded by it. */
  pthread_mutex_t lifecycle_mu;
  bool stopped;

  pthread_mutex_t mu;
  pthread_cond_t work_cv;     /* thread: records, flush request, close, abort */
  pthread_cond_t space_cv;    /* blocked inserters: room in the queue, close */
  pthread_cond_t progress_cv; /* flushers and shutdown: records resolved, thread done */
  /* Everything below is guarded by mu. */
  bf__record_queue_t queue;
  uint64_t enqueued_total; /* ordinal of the newest enqueued record */
  uint64_t popped_total;   /* records taken by the thread */
  uint64_t resolved_total; /* records acknowledged or failed after popping */
  uint64_t flush_target;   /* highest ordinal some flush wants sent now */
  bf_producer_stats_t stats;
  int last_failure_status; /* status of the newest failed record, BF_OK if none */
  uint64_t acked_mark;     /* stats.acknowledged when the last flush returned */
  uint64_t failed_mark;    /* stats.failed when the last flush returned */
  double last_send; /* monotonic seconds of the last batch taken */
  bool closing;     /* shutdown began: inserts fail, the thread drains and exits */
  bool aborting;    /* shutdown timed out: stop retrying, fail what is left */
  bool thread_done;
};

/* ---- small helpers ------------------------------------------------------------ */

static double monotonic_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits on cv until signalled or the monotonic deadline passes (deadline <= 0 or
 * infinite: no deadline). cv was created with CLOCK_MONOTONIC. */
static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, double deadline) {
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

static double deadline_after(double timeout_secs) {
  return timeout_secs > 0 ? monotonic_now() + timeout_secs : 0;
}

static bool deadline_passed(double deadline) {
  return deadline > 0 && monotonic_now() >= deadline;
}

static char *dup_string(const char *s) {
  if (s == NULL) return NULL;
  size_t n = strlen(s);
  char *copy = malloc(n + 1);
  if (copy != NULL) memcpy(copy, s, n + 1);
  return copy;
}

static uint64_t next_random(bf_producer_t *producer) {
  uint64_t x = producer->rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  producer->rng_state = x;
  return x;
}

/* Exponential backoff with jitter: attempt 0 waits 25-50 ms, doubling up to 2.5-5 s. */
static double backoff_secs(bf_producer_t *producer, int attempt) {
  double base = BACKOFF_INITIAL_SECS * pow(2.0, attempt > 30 ? 30 : attempt);
  if (base > BACKOFF_MAX_SECS) base = BACKOFF_MAX_SECS;
  double unit = (double)(next_random(producer) >> 11) / (double)(1ULL << 53);
  return base * (0.5 + 0.5 * unit);
}

static bool is_retryable(int status) {
  return status == BF_EUNAVAILABLE || status == BF_ETIMEOUT || status == BF_EFULL ||
         status == BF_ECONFLICT || status == BF_ECANCELLED;
}

/* Records a failure message in stats.last_error. Caller holds mu. */
static void set_last_error(bf_producer_t *producer, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void set_last_error(bf_producer_t *producer, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(producer->stats.last_error, sizeof(producer->stats.last_error), fmt, args);
  va_end(args);
}

/* ---- resolution (caller holds mu) ----------------------------------------------- */

/* Resolves popped records [first, first + n): row_ok[i] says whether record first+i
 * was acknowledged (true) or failed (false; row_ok NULL means all failed). Updates
 * stats, then wakes flushers. */
static void resolve_locked(bf_producer_t *producer, uint64_t first, size_t n, const bool *row_ok,
                           int failure_status) {
  uint64_t n_acked = 0;
  for (size_t i = 0; i < n; i++) {
    if (row_ok != NULL && row_ok[i]) n_acked++;
  }
  (void)first;
  BF_DCHECK(first == producer->resolved_total + 1);
  BF_DCHECK(producer->stats.in_flight >= n);
  producer->stats.in_flight -= n;
  producer->stats.acknowledged += n_acked;
  producer->stats.failed += n - n_acked;
  if (n_acked < n) producer->last_failure_status = failure_status;
  producer->resolved_total += n;
  pthread_cond_broadcast(&producer->progress_cv);
}

/* Shutdown timed out: fail everything still queued. */
static void fail_queued_locked(bf_producer_t *producer) {
  while (producer->queue.count > 0) {
    size_t n = bf__record_queue_pop(&producer->queue, producer->batch, producer->batch_size);
    for (size_t i = 0; i < n; i++) free(producer->batch[i].json);
    uint64_t first = producer->popped_total + 1;
    producer->popped_total += n;
    producer->stats.queued -= n;
    producer->stats.in_flight += n;
    set_last_error(producer, "producer shut down before %zu queued record(s) were sent", n);
    resolve_locked(producer, first, n, NULL, BF_ECANCELLED);
  }
  pthread_cond_broadcast(&producer->space_cv);
}

/* ---- the background thread --------------------------------------------------- */

/* Finishes the builder's rows as one batch and appends its IPC stream to out. */
static int encode_batch(bf_producer_t *producer, bf_buffer_t *out, bf_error_t *err) {
  struct ArrowSchema schema;
  struct ArrowArray array;
  memset(&schema, 0, sizeof(schema));
  memset(&array, 0, sizeof(array));
  int64_t now_us = bf_time_now_us();
  char batch_id[37];
  bf_uuid7_string(now_us / 1000, batch_id);
  int status = bf_batch_builder_finish(producer->builder, now_us, batch_id, &schema, &array, err);
  if (status != BF_OK) return status;
  bf_ipc_writer_t writer;
  memset(&writer, 0, sizeof(writer));
  status = bf_ipc_writer_init(&writer, &schema, out, err);
  if (status == BF_OK) {
    status = bf_ipc_writer_write(&writer, &array, err);
    if (status == BF_OK) status = bf_ipc_writer_finish(&writer, err);
    bf_ipc_writer_reset(&writer);
  }
  bf_arrow_array_release(&array);
  bf_arrow_schema_release(&schema);
  return status;
}

/* Sends one encoded batch until acknowledged, a non-retryable error, retries
 * exhausted or shutdown aborts. Runs without mu except around the backoff wait. */
static int send_batch(bf_producer_t *producer, const bf_buffer_t *ipc, uint64_t sequence,
                      bf_error_t *err) {
  for (int attempt = 0;; attempt++) {
    uint64_t rows_accepted = 0;
    int duplicate = 0;
    int status = bf_client_insert_batch(producer->channel, &producer->name, producer->fingerprint,
                                        ipc->data, ipc->size, producer->producer_id, sequence,
                                        producer->rpc_timeout_secs, &rows_accepted, &duplicate,
                                        err);
    if (status == BF_OK) return BF_OK;
    bool retries_left = producer->max_retries < 0 || attempt < producer->max_retries;
    if (!is_retryable(status) || !retries_left) return status;
    double deadline = monotonic_now() + backoff_secs(producer, attempt);
    pthread_mutex_lock(&producer->mu);
    producer->stats.retried_batches++;
    set_last_error(producer, "batch %llu: retrying after %s: %.400s", (unsigned long long)sequence,
                   bf_status_name(status), err->message);
    while (!producer->aborting && monotonic_now() < deadline) {
      cond_wait_until(&producer->work_cv, &producer->mu, deadline);
    }
    bool aborting = producer->aborting;
    pthread_mutex_unlock(&producer->mu);
    if (aborting) {
      char last_attempt[BF_ERROR_MESSAGE_MAX];
      snprintf(last_attempt, sizeof(last_attempt), "%s", err->message);
      return bf_error_set(err, BF_ECANCELLED,
                          "producer shut down before batch %llu was acknowledged "
                          "(last attempt: %s: %.350s)",
                          (unsigned long long)sequence, bf_status_name(status), last_attempt);
    }
  }
}

/* Builds, encodes and sends the n popped records with ordinals [first, first + n),
 * then resolves them. Frees the records. Called without mu. */
static void process_batch(bf_producer_t *producer, size_t n, uint64_t first) {
  bf_error_t row_err, err;
  bf_error_init(&row_err);
  bf_error_init(&err);
  size_t n_bad = 0;
  int bad_status = BF_OK;
  char bad_message[BF_ERROR_MESSAGE_MAX] = "";
  for (size_t i = 0; i < n; i++) {
    bf__record_t *record = &producer->batch[i];
    int status = bf_batch_builder_append_json(producer->builder, record->json, record->len,
                                              &row_err);
    producer->row_ok[i] = status == BF_OK;
    if (status != BF_OK) {
      n_bad++;
      bad_status = status;
      snprintf(bad_message, sizeof(bad_message), "record %llu rejected: %.450s",
               (unsigned long long)(first + i), row_err.message);
    }
    free(record->json);
    record->json = NULL;
  }

  int status = BF_OK;
  uint64_t sequence = 0;
  if (n_bad < n) {
    bf_buffer_t ipc;
    bf_buffer_init(&ipc);
    status = encode_batch(producer, &ipc, &err);
    if (status != BF_OK) {
      /* The builder's state after a failed finish is unspecified: start afresh. */
      bf_batch_builder_destroy(producer->builder);
      producer->builder = NULL;
      bf_error_t create_err;
      bf_error_init(&create_err);
      if (bf_batch_builder_create(&producer->schema, &producer->builder, &create_err) != BF_OK) {
        producer->builder = NULL;
      }
    } else {
      sequence = ++producer->next_sequence;
      pthread_mutex_lock(&producer->mu);
      producer->stats.sent_batches++;
      pthread_mutex_unlock(&producer->mu);
      status = send_batch(producer, &ipc, sequence, &err);
    }
    bf_buffer_reset(&ipc);
  }

  pthread_mutex_lock(&producer->mu);
  if (n_bad > 0) set_last_error(producer, "%s", bad_message);
  char failure[BF_ERROR_MESSAGE_MAX];
  int failure_status = bad_status;
  snprintf(failure, sizeof(failure), "%s", bad_message);
  if (status != BF_OK) {
    for (size_t i = 0; i < n; i++) producer->row_ok[i] = false;
    producer->stats.failed_batches++;
    failure_status = status;
    if (sequence > 0) {
      snprintf(failure, sizeof(failure), "batch %llu (%zu rows) failed: %s: %.400s",
               (unsigned long long)sequence, n - n_bad, bf_status_name(status), err.message);
    } else {
      snprintf(failure, sizeof(failure), "batch of %zu rows could not be encoded: %s: %.400s",
               n - n_bad, bf_status_name(status), err.message);
    }
    set_last_error(producer, "%s", failure);
  }
  resolve_locked(producer, first, n, producer->row_ok, failure_status);
  pthread_mutex_unlock(&producer->mu);
}

static void *producer_main(void *arg) {
  bf_producer_t *producer = arg;
  pthread_mutex_lock(&producer->mu);
  for (;;) {
    if (producer->aborting) {
      fail_queued_locked(producer);
      break;
    }
    size_t queued = producer->queue.count;
    if (queued == 0) {
      if (producer->closing) break;
      pthread_cond_wait(&producer->work_cv, &producer->mu);
      continue;
    }
    double now = monotonic_now();
    double due_at = producer->last_send + producer->scheduled_delay_secs;
    bool due = queued >= producer->batch_size || queued >= producer->queue.max_count ||
               producer->closing || producer->flush_target > producer->popped_total ||
               now >= due_at;
    if (!due) {
      cond_wait_until(&producer->work_cv, &producer->mu, due_at);
      continue;
    }
    size_t n = bf__record_queue_pop(&producer->queue, producer->batch, producer->batch_size);
    uint64_t first = producer->popped_total + 1;
    producer->popped_total += n;
    producer->stats.queued -= n;
    producer->stats.in_flight += n;
    producer->last_send = now;
    pthread_cond_broadcast(&producer->space_cv);
    pthread_mutex_unlock(&producer->mu);
    if (producer->builder != NULL) {
      process_batch(producer, n, first);
      pthread_mutex_lock(&producer->mu);
    } else {
      pthread_mutex_lock(&producer->mu);
      for (size_t i = 0; i < n; i++) free(producer->batch[i].json);
      set_last_error(producer, "batch builder unavailable (out of memory)");
      resolve_locked(producer, first, n, NULL, BF_ENOMEM);
    }
  }
  producer->thread_done = true;
  pthread_cond_broadcast(&producer->progress_cv);
  pthread_mutex_unlock(&producer->mu);
  return NULL;
}

/* ---- public API ------------------------------------------------------------------ */

void bf_producer_options_init(bf_producer_options_t *options) {
  memset(options, 0, sizeof(*options));
  options->batch_size = 1000;
  options->scheduled_delay_secs = 30.0;
  options->max_queue_rows = 1000000;
  options->backpressure = BF_BACKPRESSURE_BLOCK;
  options->block_timeout_secs = 0;
  options->rpc_timeout_secs = 30.0;
  options->max_retries = -1;
}

static void free_producer(bf_producer_t *producer) {
  if (producer->channel != NULL) bf_rpc_channel_destroy(producer->channel);
  if (producer->builder != NULL) bf_batch_builder_destroy(producer->builder);
  bf_schema_reset(&producer->schema);
  bf__record_queue_reset(&producer->queue);
  for (size_t i = 0; i < producer->n_partition_columns; i++) free(producer->partition_columns[i]);
  free(producer->partition_columns);
  free(producer->target);
  free(producer->authorization);
  free(producer->catalog);
  free(producer->schema_name);
  free(producer->table);
  free(producer->json_schema);
  free(producer->batch);
  free(producer->row_ok);
  free(producer);
}

static int init_sync(bf_producer_t *producer) {
  pthread_condattr_t attr;
  if (pthread_condattr_init(&attr) != 0) return BF_ENOMEM;
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  int rc = pthread_mutex_init(&producer->mu, NULL);
  rc |= pthread_mutex_init(&producer->lifecycle_mu, NULL);
  rc |= pthread_cond_init(&producer->work_cv, &attr);
  rc |= pthread_cond_init(&producer->space_cv, &attr);
  rc |= pthread_cond_init(&producer->progress_cv, &attr);
  pthread_condattr_destroy(&attr);
  return rc == 0 ? BF_OK : BF_ENOMEM;
}

static void destroy_sync(bf_producer_t *producer) {
  pthread_cond_destroy(&producer->progress_cv);
  pthread_cond_destroy(&producer->space_cv);
  pthread_cond_destroy(&producer->work_cv);
  pthread_mutex_destroy(&producer->lifecycle_mu);
  pthread_mutex_destroy(&producer->mu);
}

static int validate_options(const bf_producer_options_t *options, bf_error_t *err) {
  if (options->target == NULL || options->target[0] == '\0')
    return bf_error_set(err, BF_EINVAL, "producer: target (server address) is required");
  if (options->json_schema == NULL)
    return bf_error_set(err, BF_EINVAL, "producer: json_schema is required");
  if (options->batch_size < 1)
    return bf_error_set(err, BF_EINVAL, "producer: batch_size must be >= 1");
  if (!(options->scheduled_delay_secs > 0) || isinf(options->scheduled_delay_secs))
    return bf_error_set(err, BF_EINVAL, "producer: scheduled_delay_secs must be a finite number > 0");
  if (options->max_queue_rows < 1)
    return bf_error_set(err, BF_EINVAL, "producer: max_queue_rows must be >= 1");
  if (options->backpressure != BF_BACKPRESSURE_BLOCK &&
      options->backpressure != BF_BACKPRESSURE_DROP_NEWEST &&
      options->backpressure != BF_BACKPRESSURE_RAISE)
    return bf_error_set(err, BF_EINVAL, "producer: unknown backpressure policy %d",
                        (int)options->backpressure);
  if (isnan(options->block_timeout_secs) || isnan(options->rpc_timeout_secs))
    return bf_error_set(err, BF_EINVAL, "producer: timeouts must be numbers");
  if (options->n_partition_columns > 0 && options->partition_columns == NULL)
    return bf_error_set(err, BF_EINVAL, "producer: partition_columns is NULL");
  BF_RETURN_NOT_OK(bf_namespace_validate(options->name.catalog, "catalog", err));
  BF_RETURN_NOT_OK(bf_namespace_validate(options->name.schema_name, "schema_name", err));
  BF_RETURN_NOT_OK(bf_namespace_validate(options->name.table, "table", err));
  return BF_OK;
}

static int copy_options(bf_producer_t *producer, const bf_producer_options_t *options) {
  producer->target = dup_string(options->target);
  producer->authorization = dup_string(options->authorization);
  producer->catalog = dup_string(options->name.catalog);
  producer->schema_name = dup_string(options->name.schema_name);
  producer->table = dup_string(options->name.table);
  producer->json_schema = dup_string(options->json_schema);
  if (producer->target == NULL || (options->authorization != NULL && producer->authorization == NULL) ||
      producer->catalog == NULL || producer->schema_name == NULL || producer->table == NULL ||
      producer->json_schema == NULL)
    return BF_ENOMEM;
  if (options->n_partition_columns > 0) {
    producer->partition_columns = calloc(options->n_partition_columns, sizeof(char *));
    if (producer->partition_columns == NULL) return BF_ENOMEM;
    for (size_t i = 0; i < options->n_partition_columns; i++) {
      producer->partition_columns[i] = dup_string(options->partition_columns[i]);
      if (producer->partition_columns[i] == NULL) return BF_ENOMEM;
      producer->n_partition_columns = i + 1;
    }
  }
  producer->name.catalog = producer->catalog;
  producer->name.schema_name = producer->schema_name;
  producer->name.table = producer->table;
  producer->batch_size = options->batch_size;
  producer->scheduled_delay_secs = options->scheduled_delay_secs;
  producer->backpressure = options->backpressure;
  producer->block_timeout_secs = options->block_timeout_secs;
  producer->rpc_timeout_secs = options->rpc_timeout_secs;
  producer->max_retries = options->max_retries;
  return BF_OK;
}

int bf_producer_create(const bf_producer_options_t *options, bf_producer_t **out, bf_error_t *err) {
  BF_RETURN_NOT_OK(validate_options(options, err));
  bf_producer_t *producer = calloc(1, sizeof(*producer));
  if (producer == NULL) return bf_error_set(err, BF_ENOMEM, "producer: out of memory");
  bf__record_queue_init(&producer->queue, options->max_queue_rows);
  int status = copy_options(producer, options);
  if (status != BF_OK) {
    free_producer(producer);
    return bf_error_set(err, status, "producer: out of memory");
  }
  producer->batch = calloc(producer->batch_size, sizeof(*producer->batch));
  producer->row_ok = calloc(producer->batch_size, sizeof(*producer->row_ok));
  if (producer->batch == NULL || producer->row_ok == NULL) {
    free_producer(producer);
    return bf_error_set(err, BF_ENOMEM, "producer: out of memory for batch_size %zu",
                        options->batch_size);
  }
  status = bf_schema_from_json_schema(producer->json_schema, strlen(producer->json_schema),
                                      &producer->schema, err);
  if (status == BF_OK)
    status = bf_schema_validate_partitions(&producer->schema,
                                           (const char *const *)producer->partition_columns,
                                           producer->n_partition_columns, err);
  if (status == BF_OK) status = bf_schema_fingerprint(&producer->schema, producer->fingerprint, err);
  if (status == BF_OK) status = bf_batch_builder_create(&producer->schema, &producer->builder, err);
  if (status == BF_OK) {
    bf_rpc_channel_options_t channel_options = {
        .target = producer->target, .tls = options->tls, .authorization = producer->authorization};
    status = bf_rpc_channel_create(&channel_options, &producer->channel, err);
  }
  if (status != BF_OK) {
    free_producer(producer);
    return status;
  }
  status = init_sync(producer);
  if (status != BF_OK) {
    free_producer(producer);
    return bf_error_set(err, status, "producer: cannot create locks");
  }
  bf_uuid4_string(producer->producer_id);
  producer->rng_state = (uint64_t)bf_time_now_us() ^ (uint64_t)(uintptr_t)producer;
  if (producer->rng_state == 0) producer->rng_state = 0x9e3779b97f4a7c15ULL;
  producer->last_send = monotonic_now();
  if (pthread_create(&producer->thread, NULL, producer_main, producer) != 0) {
    destroy_sync(producer);
    free_producer(producer);
    return bf_error_set(err, BF_EINTERNAL, "producer: cannot start the background thread");
  }
  *out = producer;
  return BF_OK;
}

const char *bf_producer_fingerprint(const bf_producer_t *producer) { return producer->fingerprint; }

bf_backpressure_t bf__producer_backpressure(const bf_producer_t *producer) {
  return producer->backpressure;
}

int bf_producer_register(bf_producer_t *producer, char status_out[32], bf_error_t *err) {
  char status_text[32] = "";
  char server_fingerprint[33] = "";
  int status = bf_client_register_table(
      producer->channel, &producer->name, producer->json_schema,
      (const char *const *)producer->partition_columns, producer->n_partition_columns,
      producer->fingerprint, producer->rpc_timeout_secs, status_text, server_fingerprint, err);
  if (status != BF_OK) return status;
  if (server_fingerprint[0] != '\0' && strcmp(server_fingerprint, producer->fingerprint) != 0) {
    return bf_error_set(err, BF_EMISMATCH,
                        "table %s.%s.%s is registered with fingerprint %s but this schema has "
                        "fingerprint %s",
                        producer->catalog, producer->schema_name, producer->table,
                        server_fingerprint, producer->fingerprint);
  }
  snprintf(status_out, 32, "%s", status_text);
  return BF_OK;
}

static int insert(bf_producer_t *producer, const char *json, size_t len, bool may_block,
                  bool *would_block, bf_error_t *err) {
  if (would_block != NULL) *would_block = false;
  char *copy = malloc(len + 1);
  if (copy == NULL) return bf_error_set(err, BF_ENOMEM, "insert: out of memory");
  memcpy(copy, json, len);
  copy[len] = '\0';

  int status = BF_OK;
  double deadline = 0;
  pthread_mutex_lock(&producer->mu);
  for (;;) {
    if (producer->closing) {
      status = bf_error_set(err, BF_ECLOSED, "insert: the producer has been shut down");
      goto done;
    }
    if (producer->queue.count < producer->queue.max_count) break;
    switch (producer->backpressure) {
      case BF_BACKPRESSURE_DROP_NEWEST:
        producer->stats.inserted++;
        producer->stats.dropped++;
        goto done; /* BF_OK: the drop is counted, not an error */
      case BF_BACKPRESSURE_RAISE:
        status = bf_error_set(err, BF_EFULL, "insert: queue full (max_queue_rows=%zu)",
                              producer->queue.max_count);
        goto done;
      case BF_BACKPRESSURE_BLOCK:
        if (!may_block) {
          *would_block = true;
          status = BF_EFULL;
          goto done;
        }
        if (deadline == 0) deadline = deadline_after(producer->block_timeout_secs);
        if (deadline_passed(deadline)) {
          status = bf_error_set(err, BF_ETIMEOUT,
                                "insert: queue full (max_queue_rows=%zu) for %.3g s",
                                producer->queue.max_count, producer->block_timeout_secs);
          goto done;
        }
        cond_wait_until(&producer->space_cv, &producer->mu, deadline);
        break;
    }
  }
  bool was_empty = producer->queue.count == 0;
  status = bf__record_queue_push(&producer->queue, copy, len);
  if (status != BF_OK) {
    bf_error_set(err, status, "insert: out of memory growing the queue");
    goto done;
  }
  copy = NULL; /* owned by the queue */
  producer->enqueued_total++;
  producer->stats.inserted++;
  producer->stats.queued++;
  if (was_empty || producer->queue.count >= producer->batch_size ||
      producer->queue.count >= producer->queue.max_count) {
    pthread_cond_signal(&producer->work_cv);
  }
done:
  pthread_mutex_unlock(&producer->mu);
  free(copy);
  return status;
}

int bf_producer_insert_json(bf_producer_t *producer, const char *json, size_t len, bf_error_t *err) {
  return insert(producer, json, len, true, NULL, err);
}

int bf__producer_insert_json_nowait(bf_producer_t *producer, const char *json, size_t len,
                                    bool *would_block, bf_error_t *err) {
  return insert(producer, json, len, false, would_block, err);
}

/* Waits until every record enqueued before the call is resolved. *n_flushed is the
 * number of rows acknowledged since the previous flush returned successfully (so
 * "insert N, flush" reports N however many batches were sent before the call), and
 * the call fails if any record failed in that span: nothing fails silently. */
int bf_producer_flush(bf_producer_t *producer, double timeout_secs, uint64_t *n_flushed,
                      bf_error_t *err) {
  double deadline = deadline_after(timeout_secs);
  int status = BF_OK;
  uint64_t n_acked = 0;
  pthread_mutex_lock(&producer->mu);
  uint64_t target = producer->enqueued_total;
  if (target > producer->flush_target) {
    producer->flush_target = target;
    pthread_cond_signal(&producer->work_cv);
  }
  while (producer->resolved_total < target && !deadline_passed(deadline)) {
    cond_wait_until(&producer->progress_cv, &producer->mu, deadline);
  }
  if (producer->resolved_total < target) {
    status = bf_error_set(err, BF_ETIMEOUT,
                          "flush timed out after %.3g s: %llu record(s) not yet acknowledged "
                          "(last error: %.350s)",
                          timeout_secs, (unsigned long long)(target - producer->resolved_total),
                          producer->stats.last_error[0] ? producer->stats.last_error : "none");
  } else {
    n_acked = producer->stats.acknowledged - producer->acked_mark;
    uint64_t n_failed = producer->stats.failed - producer->failed_mark;
    producer->acked_mark = producer->stats.acknowledged;
    producer->failed_mark = producer->stats.failed;
    if (n_failed > 0) {
      int failure = producer->last_failure_status != BF_OK ? producer->last_failure_status : BF_EIO;
      status = bf_error_set(err, failure,
                            "flush: %llu record(s) failed since the previous flush "
                            "(%llu acknowledged); last error: %.350s",
                            (unsigned long long)n_failed, (unsigned long long)n_acked,
                            producer->stats.last_error);
    }
  }
  pthread_mutex_unlock(&producer->mu);
  if (n_flushed != NULL) *n_flushed = n_acked;
  return status;
}

int bf_producer_shutdown(bf_producer_t *producer, double timeout_secs, bf_error_t *err) {
  int status = BF_OK;
  pthread_mutex_lock(&producer->lifecycle_mu);
  if (producer->stopped) goto done;
  double deadline = deadline_after(timeout_secs);
  pthread_mutex_lock(&producer->mu);
  uint64_t failed_before = producer->stats.failed;
  producer->closing = true;
  pthread_cond_broadcast(&producer->work_cv);
  pthread_cond_broadcast(&producer->space_cv);
  while (!producer->thread_done && !deadline_passed(deadline)) {
    cond_wait_until(&producer->progress_cv, &producer->mu, deadline);
  }
  bool timed_out = !producer->thread_done;
  if (timed_out) {
    producer->aborting = true;
    pthread_cond_broadcast(&producer->work_cv);
  }
  pthread_mutex_unlock(&producer->mu);
  pthread_join(producer->thread, NULL);
  producer->stopped = true;
  pthread_mutex_lock(&producer->mu);
  uint64_t newly_failed = producer->stats.failed - failed_before;
  if (timed_out) {
    status = bf_error_set(err, BF_ETIMEOUT,
                          "shutdown: records not acknowledged within %.3g s; %llu record(s) "
                          "failed (last error: %.350s)",
                          timeout_secs, (unsigned long long)newly_failed, producer->stats.last_error);
  } else if (newly_failed > 0) {
    status = bf_error_set(err, BF_EIO, "shutdown: %llu record(s) failed during the final flush: %.400s",
                          (unsigned long long)newly_failed, producer->stats.last_error);
  }
  pthread_mutex_unlock(&producer->mu);
done:
  pthread_mutex_unlock(&producer->lifecycle_mu);
  return status;
}

void bf_producer_get_stats(bf_producer_t *producer, bf_producer_stats_t *out) {
  pthread_mutex_lock(&producer->mu);
  *out = producer->stats;
  pthread_mutex_unlock(&producer->mu);
}

void bf_producer_destroy(bf_producer_t *producer) {
  if (producer == NULL) return;
  bf_producer_shutdown(producer, DESTROY_SHUTDOWN_TIMEOUT_SECS, NULL);
  destroy_sync(producer);
  free_producer(producer);
}
