/* The producer (include/bifrost/producer.h): application threads enqueue JSON records,
 * binary rows or Arrow batches; one background pthread (producer_thread.c) batches
 * them into Arrow record batches, encodes Arrow IPC and sends InsertBatch, retrying
 * transient failures with the same sequence number so the server applies each
 * batch exactly once. This file holds the calling side: create, insert, flush,
 * shutdown, stats (Arrow batches: producer_arrow.c). State: producer_state.h.
 *
 * Insert path (lock-free): a fork check, a size check against max_batch_bytes, an
 * atomic reservation against the bound (rows queued or in flight), one malloc for
 * the item, an atomic counter and the wait-free push of queue.h. The mutex is
 * taken only on slow paths: the BLOCK policy waiting for room, and waking the
 * background thread when it sleeps with nothing to do (once per sleep) or when a
 * batch is full.
 *
 * Accounting: `enqueued` (rows, atomic) grows before each push; the thread pops
 * items in queue order and resolves (acknowledges or fails) every popped row,
 * batch by batch, in order. flush() waits until `resolved` reaches the value of
 * `enqueued` it read: every row whose insert returned before that read is in the
 * prefix of the queue that many rows long. Dropped rows never enter the queue. Under
 * `mu` (stats are read there): inserted = enqueued + dropped, queued = enqueued -
 * popped, in_flight = popped - resolved, resolved = acknowledged + failed, hence
 * inserted == acknowledged + queued + in_flight + dropped + failed. Records refused
 * as too large are counted apart (too_large), never in inserted.
 * Stats meanings: sent_batches counts batches sent at least once; retried_batches
 * counts retry attempts (a batch retried three times adds three).
 *
 * Blocking waits (BLOCK insert, flush, shutdown) can poll a cancel callback
 * (producer_internal.h) so an interpreter can deliver Ctrl-C within ~50 ms. */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/producer.h"
#include "bifrost/util.h"
#include "producer/producer_internal.h"
#include "producer/producer_state.h"

/* bf_producer_destroy without a prior shutdown: how long it waits for delivery
 * before failing what is left (a destructor must not hang forever). */
#define DESTROY_SHUTDOWN_TIMEOUT_SECS 10.0
/* Bytes a record adds to a batch beyond its encoded size: per user column (a
 * 16-byte string view is the widest slot) and for the system columns. */
#define RECORD_FIELD_OVERHEAD 16

atomic_ulong bf__producer_fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void on_fork_child(void) { atomic_fetch_add(&bf__producer_fork_generation, 1); }
static void install_fork_handler(void) { pthread_atfork(NULL, NULL, on_fork_child); }

bool bf__producer_forked(const bf_producer_t *producer) {
  return producer->fork_gen !=
         atomic_load_explicit(&bf__producer_fork_generation, memory_order_relaxed);
}

int bf__producer_forked_error(bf_error_t *err) {
  return bf_error_set(err, BF_ECLOSED,
                      "this producer was created in the parent process before fork(); its "
                      "background thread does not exist here: create a new producer in the child");
}

static double deadline_after(double timeout_secs) {
  return timeout_secs > 0 ? bf__producer_now() + timeout_secs : 0;
}

static bool deadline_passed(double deadline) {
  return deadline > 0 && bf__producer_now() >= deadline;
}

/* Waits on cv (mu held) until signalled, the deadline (<= 0: none) or the next
 * cancel poll; returns true when cancel says stop (checked without mu). */
static bool wait_or_cancel(bf_producer_t *producer, pthread_cond_t *cv, double deadline,
                           bf__cancel_fn cancel, void *ctx) {
  if (cancel == NULL) {
    bf__producer_wait_until(cv, &producer->mu, deadline);
    return false;
  }
  double wake = bf__producer_now() + BF__CANCEL_POLL_SECS;
  bf__producer_wait_until(cv, &producer->mu, deadline > 0 && deadline < wake ? deadline : wake);
  pthread_mutex_unlock(&producer->mu);
  int stop = cancel(ctx);
  pthread_mutex_lock(&producer->mu);
  return stop != 0;
}

static char *dup_string(const char *s) {
  if (s == NULL) return NULL;
  size_t n = strlen(s);
  char *copy = malloc(n + 1);
  if (copy != NULL) memcpy(copy, s, n + 1);
  return copy;
}

void bf_producer_options_init(bf_producer_options_t *options) {
  memset(options, 0, sizeof(*options));
  options->batch_size = 1000;
  options->scheduled_delay_secs = 30.0;
  options->max_queue_rows = 1000000;
  options->backpressure = BF_BACKPRESSURE_BLOCK;
  options->block_timeout_secs = 0;
  options->rpc_timeout_secs = 30.0;
  options->max_retries = -1;
  options->max_batch_bytes = BF_PRODUCER_DEFAULT_MAX_BATCH_BYTES;
  options->max_in_flight = BF_PRODUCER_DEFAULT_MAX_IN_FLIGHT;
}

static void free_producer(bf_producer_t *producer) {
  if (producer->channel != NULL) bf_rpc_channel_destroy(producer->channel);
  if (producer->builder != NULL) bf_batch_builder_destroy(producer->builder);
  bf_schema_reset(&producer->schema);
  bool busy;
  bf__item_t *item;
  while ((item = bf__queue_pop(&producer->queue, &busy)) != NULL) bf__item_free(item);
  bf__item_free(producer->held);
  for (size_t i = 0; i < producer->n_partition_columns; i++) free(producer->partition_columns[i]);
  free(producer->partition_columns);
  free(producer->target);
  free(producer->authorization);
  free(producer->catalog);
  free(producer->schema_name);
  free(producer->table);
  free(producer->json_schema);
  free(producer->fqn);
  free(producer->batch);
  free(producer->row_ok);
  free(producer->flights);
  free(producer->senders);
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
  rc |= pthread_cond_init(&producer->send_cv, &attr);
  pthread_condattr_destroy(&attr);
  return rc == 0 ? BF_OK : BF_ENOMEM;
}

static void destroy_sync(bf_producer_t *producer) {
  pthread_cond_destroy(&producer->send_cv);
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
  if (options->max_in_flight > BF_PRODUCER_MAX_IN_FLIGHT_LIMIT)
    return bf_error_set(err, BF_EINVAL, "max_in_flight must be at most %d", BF_PRODUCER_MAX_IN_FLIGHT_LIMIT);
  if (options->max_batch_bytes > BF_PRODUCER_MAX_BATCH_BYTES_LIMIT)
    return bf_error_set(err, BF_EINVAL,
                        "producer: max_batch_bytes %zu exceeds %zu (half the transport's message "
                        "limit of %zu bytes)",
                        options->max_batch_bytes, (size_t)BF_PRODUCER_MAX_BATCH_BYTES_LIMIT,
                        (size_t)BF_RPC_MAX_MESSAGE_BYTES);
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
  producer->max_batch_bytes =
      options->max_batch_bytes > 0 ? options->max_batch_bytes : BF_PRODUCER_DEFAULT_MAX_BATCH_BYTES;
  producer->max_in_flight = options->max_in_flight > 0 ? options->max_in_flight : BF_PRODUCER_DEFAULT_MAX_IN_FLIGHT;
  producer->on_event = options->on_event;
  producer->event_ctx = options->event_ctx;
  size_t fqn_len = strlen(producer->catalog) + strlen(producer->schema_name) + strlen(producer->table) + 3;
  producer->fqn = malloc(fqn_len);
  if (producer->fqn == NULL) return BF_ENOMEM;
  snprintf(producer->fqn, fqn_len, "%s.%s.%s", producer->catalog, producer->schema_name, producer->table);
  return BF_OK;
}

int bf_producer_create(const bf_producer_options_t *options, bf_producer_t **out, bf_error_t *err) {
  BF_RETURN_NOT_OK(validate_options(options, err));
  bf_producer_t *producer = calloc(1, sizeof(*producer));
  if (producer == NULL) return bf_error_set(err, BF_ENOMEM, "producer: out of memory");
  bf__queue_init(&producer->queue);
  producer->max_queue_rows = options->max_queue_rows;
  producer->max_queue_bytes = options->max_queue_bytes;
  pthread_once(&fork_once, install_fork_handler);
  producer->fork_gen = atomic_load(&bf__producer_fork_generation);
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
        .target = producer->target, .tls = options->tls, .authorization = producer->authorization,
        .tls_ca_file = options->tls_ca_file, .tls_cert_file = options->tls_cert_file,
        .tls_key_file = options->tls_key_file};
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
  producer->last_send = bf__producer_now();
  if (pthread_create(&producer->thread, NULL, bf__producer_main, producer) != 0) {
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

const bf_schema_t *bf__producer_schema(const bf_producer_t *producer) { return &producer->schema; }

size_t bf__producer_max_batch_bytes(const bf_producer_t *producer) { return producer->max_batch_bytes; }

size_t bf__producer_record_estimate(const bf_producer_t *producer, size_t len) {
  return len + RECORD_FIELD_OVERHEAD * producer->schema.n_user_fields + BF__PRODUCER_ROW_OVERHEAD;
}

/* Refuses rows that no batch can hold: counted, reported, BF_EINVAL. */
int bf__producer_too_large(bf_producer_t *producer, size_t rows, size_t estimate, const char *what,
                     bf_error_t *err) {
  atomic_fetch_add(&producer->too_large, rows);
  bf__producer_emit(producer, BF_PRODUCER_EVENT_RECORD_TOO_LARGE, rows, BF_EINVAL,
                    "%s of about %zu bytes refused: larger than max_batch_bytes=%zu", what, estimate,
                    producer->max_batch_bytes);
  return bf_error_set(err, BF_EINVAL,
                      "record too large: %s of about %zu bytes cannot fit in a batch "
                      "(max_batch_bytes=%zu; the transport's message limit is %zu bytes)",
                      what, estimate, producer->max_batch_bytes, (size_t)BF_RPC_MAX_MESSAGE_BYTES);
}

int bf_producer_register(bf_producer_t *producer, char status_out[32], bf_error_t *err) {
  if (bf__producer_forked(producer)) return bf__producer_forked_error(err);
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

/* Wakes the background thread if it sleeps and this push gives it work. */
static void wake_thread(bf_producer_t *producer, unsigned long long enqueued) {
  int state = atomic_load(&producer->sleep_state);
  if (state == AWAKE) return;
  /* A timed sleep ends early for a full batch or a full bound (both make sending due). */
  if (state == SLEEP_TIMED && enqueued < atomic_load(&producer->wake_at) && !bf__producer_bound_full(producer))
    return;
  if (!atomic_compare_exchange_strong(&producer->sleep_state, &state, AWAKE)) return;
  pthread_mutex_lock(&producer->mu);
  pthread_cond_signal(&producer->work_cv);
  pthread_mutex_unlock(&producer->mu);
}

/* Reserves room for rows in the bound (queued + in flight), applying the
 * backpressure policy when it is full. *dropped: the rows are to be dropped
 * (counted here). An item larger than the whole bound goes when nothing else is
 * outstanding. */
static bool try_reserve(bf_producer_t *producer, long long rows, long long bytes) {
  long long prev = atomic_fetch_add(&producer->outstanding, rows);
  long long prev_bytes = atomic_fetch_add(&producer->outstanding_bytes, bytes);
  bool fits = prev + rows <= (long long)producer->max_queue_rows &&
              (producer->max_queue_bytes == 0 ||
               prev_bytes + bytes <= (long long)producer->max_queue_bytes);
  if (fits || prev == 0) return true; /* an item larger than a bound goes alone */
  atomic_fetch_sub(&producer->outstanding, rows);
  atomic_fetch_sub(&producer->outstanding_bytes, bytes);
  return false;
}

static int full_message(bf_producer_t *producer, int status, bf_error_t *err, const char *what) {
  if (producer->max_queue_bytes > 0)
    return bf_error_set(err, status, "insert: queue full (max_queue_rows=%zu, max_queue_bytes=%zu)%s",
                        producer->max_queue_rows, producer->max_queue_bytes, what);
  return bf_error_set(err, status, "insert: queue full (max_queue_rows=%zu)%s",
                      producer->max_queue_rows, what);
}

/* Reserves room for an item in the bounds (rows and bytes queued or in flight),
 * applying the backpressure policy when they are full. *dropped: the item is to
 * be dropped (counted here). */
static int reserve(bf_producer_t *producer, size_t rows, size_t bytes, bool may_block,
                   bf__cancel_fn cancel, void *ctx, bool *would_block, bool *dropped,
                   bf_error_t *err) {
  long long want = (long long)rows, want_bytes = (long long)bytes;
  if (try_reserve(producer, want, want_bytes)) return BF_OK;
  switch (producer->backpressure) {
    case BF_BACKPRESSURE_DROP_NEWEST:
      atomic_fetch_add(&producer->dropped, rows);
      *dropped = true;
      return BF_OK;
    case BF_BACKPRESSURE_RAISE:
      return full_message(producer, BF_EFULL, err, "");
    case BF_BACKPRESSURE_BLOCK:
      break;
  }
  if (!may_block) {
    *would_block = true;
    return BF_EFULL;
  }
  double deadline = deadline_after(producer->block_timeout_secs);
  int status = BF_OK;
  pthread_mutex_lock(&producer->mu);
  atomic_fetch_add(&producer->blocked, 1);
  pthread_cond_signal(&producer->work_cv); /* a full queue is a reason to send now */
  for (;;) {
    if (atomic_load(&producer->closing)) {
      status = bf_error_set(err, BF_ECLOSED, "insert: the producer has been shut down");
      break;
    }
    if (try_reserve(producer, want, want_bytes)) break;
    if (deadline_passed(deadline)) {
      char what[64];
      snprintf(what, sizeof what, " for %.3g s", producer->block_timeout_secs);
      status = full_message(producer, BF_ETIMEOUT, err, what);
      break;
    }
    if (wait_or_cancel(producer, &producer->space_cv, deadline, cancel, ctx)) {
      status = bf_error_set(err, BF_ECANCELLED, "insert: interrupted while waiting for room in the queue");
      break;
    }
  }
  atomic_fetch_sub(&producer->blocked, 1);
  pthread_mutex_unlock(&producer->mu);
  return status;
}

/* Reserves room and pushes item (freed on failure or drop). */
int bf__producer_enqueue(bf_producer_t *producer, bf__item_t *item, bool may_block, bf__cancel_fn cancel,
                   void *ctx, bool *would_block, bf_error_t *err) {
  if (would_block != NULL) *would_block = false;
  bool ignored = false, dropped = false;
  atomic_fetch_add(&producer->inserting, 1);
  int status = BF_OK;
  if (atomic_load(&producer->closing))
    status = bf_error_set(err, BF_ECLOSED, "insert: the producer has been shut down");
  else
    status = reserve(producer, item->rows, item->bytes, may_block, cancel, ctx,
                     would_block ? would_block : &ignored, &dropped, err);
  if (status != BF_OK || dropped) {
    atomic_fetch_sub(&producer->inserting, 1);
    bf__item_free(item);
    return status;
  }
  unsigned long long enqueued = atomic_fetch_add(&producer->enqueued, item->rows) + item->rows;
  bf__queue_push(&producer->queue, item);
  atomic_fetch_sub(&producer->inserting, 1);
  wake_thread(producer, enqueued);
  return BF_OK;
}

static int insert(bf_producer_t *producer, bf__item_kind_t kind, const char *json, size_t len,
                  bool may_block, bf__cancel_fn cancel, void *ctx, bf__insert_result_t *result,
                  bf_error_t *err) {
  bf__insert_result_t ignored;
  if (result == NULL) result = &ignored;
  result->would_block = false;
  result->too_large = false;
  if (bf__producer_forked(producer)) return bf__producer_forked_error(err);
  size_t estimate = bf__producer_record_estimate(producer, len);
  if (estimate > producer->max_batch_bytes) {
    result->too_large = true;
    return bf__producer_too_large(producer, 1, estimate, "a record", err);
  }
  bf__item_t *item = malloc(sizeof *item + len + 1);
  if (item == NULL) return bf_error_set(err, BF_ENOMEM, "insert: out of memory");
  item->kind = kind;
  item->rows = 1;
  item->len = len;
  item->bytes = len;
  item->batch_bytes = estimate;
  item->arrow = NULL;
  memcpy(item->json, json, len);
  item->json[len] = '\0';
  return bf__producer_enqueue(producer, item, may_block, cancel, ctx, &result->would_block, err);
}

int bf_producer_insert_json(bf_producer_t *producer, const char *json, size_t len, bf_error_t *err) {
  return insert(producer, BF__ITEM_JSON, json, len, true, NULL, NULL, NULL, err);
}

int bf__producer_insert_json_nowait(bf_producer_t *producer, const char *json, size_t len,
                                    bool *would_block, bf_error_t *err) {
  bf__insert_result_t result;
  int status = insert(producer, BF__ITEM_JSON, json, len, false, NULL, NULL, &result, err);
  *would_block = result.would_block;
  return status;
}

int bf_producer_insert_row(bf_producer_t *producer, const uint8_t *row, size_t len, bf_error_t *err) {
  return insert(producer, BF__ITEM_ROW, (const char *)row, len, true, NULL, NULL, NULL, err);
}

int bf__producer_insert_row_nowait(bf_producer_t *producer, const uint8_t *row, size_t len,
                                   bool *would_block, bf_error_t *err) {
  bf__insert_result_t result;
  int status = insert(producer, BF__ITEM_ROW, (const char *)row, len, false, NULL, NULL, &result, err);
  *would_block = result.would_block;
  return status;
}

int bf__producer_insert(bf_producer_t *producer, bool binary, const char *data, size_t len,
                        bool may_block, bf__cancel_fn cancel, void *ctx,
                        bf__insert_result_t *result, bf_error_t *err) {
  return insert(producer, binary ? BF__ITEM_ROW : BF__ITEM_JSON, data, len, may_block, cancel, ctx,
                result, err);
}

/* Waits until every record enqueued before the call is resolved. *n_flushed is the
 * number of rows acknowledged since the previous flush returned successfully (so
 * "insert N, flush" reports N however many batches were sent before the call), and
 * the call fails if any record failed in that span: nothing fails silently. */
int bf_producer_flush(bf_producer_t *producer, double timeout_secs, uint64_t *n_flushed,
                      bf_error_t *err) {
  return bf__producer_flush(producer, timeout_secs, n_flushed, NULL, NULL, err);
}

int bf__producer_flush(bf_producer_t *producer, double timeout_secs, uint64_t *n_flushed,
                       bf__cancel_fn cancel, void *ctx, bf_error_t *err) {
  bool cancelled = false;
  double deadline = deadline_after(timeout_secs);
  int status = BF_OK;
  uint64_t n_acked = 0;
  if (bf__producer_forked(producer)) return bf__producer_forked_error(err);
  pthread_mutex_lock(&producer->mu);
  uint64_t target = atomic_load(&producer->enqueued);
  if (target > producer->flush_target) {
    producer->flush_target = target;
    pthread_cond_signal(&producer->work_cv);
  }
  while (producer->resolved < target && !deadline_passed(deadline) && !cancelled) {
    cancelled = wait_or_cancel(producer, &producer->progress_cv, deadline, cancel, ctx);
  }
  if (producer->resolved < target && cancelled) {
    status = bf_error_set(err, BF_ECANCELLED, "flush interrupted: %llu record(s) not yet acknowledged",
                          (unsigned long long)(target - producer->resolved));
  } else if (producer->resolved < target) {
    status = bf_error_set(err, BF_ETIMEOUT,
                          "flush timed out after %.3g s: %llu record(s) not yet acknowledged "
                          "(last error: %.350s)",
                          timeout_secs, (unsigned long long)(target - producer->resolved),
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
  return bf__producer_shutdown(producer, timeout_secs, NULL, NULL, err);
}

int bf__producer_shutdown(bf_producer_t *producer, double timeout_secs, bf__cancel_fn cancel,
                          void *ctx, bf_error_t *err) {
  int status = BF_OK;
  bool cancelled = false;
  if (bf__producer_forked(producer)) return BF_OK; /* nothing of it runs here; the parent's copy is its own */
  pthread_mutex_lock(&producer->lifecycle_mu);
  if (producer->stopped) goto done;
  double deadline = deadline_after(timeout_secs);
  atomic_store(&producer->closing, true);
  pthread_mutex_lock(&producer->mu);
  pthread_cond_broadcast(&producer->space_cv); /* blocked inserters give up (BF_ECLOSED) */
  pthread_mutex_unlock(&producer->mu);
  while (atomic_load(&producer->inserting) > 0) sched_yield(); /* pushes in progress land first */
  pthread_mutex_lock(&producer->mu);
  pthread_cond_broadcast(&producer->work_cv);
  pthread_cond_broadcast(&producer->space_cv);
  while (!producer->thread_done && !deadline_passed(deadline) && !cancelled) {
    cancelled = wait_or_cancel(producer, &producer->progress_cv, deadline, cancel, ctx);
  }
  if (!producer->thread_done && cancelled) { /* still closing; a later call waits again */
    uint64_t left = atomic_load(&producer->enqueued) - producer->resolved;
    pthread_mutex_unlock(&producer->mu);
    pthread_mutex_unlock(&producer->lifecycle_mu);
    return bf_error_set(err, BF_ECANCELLED,
                        "shutdown interrupted: %llu record(s) not yet acknowledged",
                        (unsigned long long)left);
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
  /* shutdown is the last flush: failures since the previous flush are reported here,
   * and a flush() afterwards has nothing left to report. */
  uint64_t newly_failed = producer->stats.failed - producer->failed_mark;
  producer->acked_mark = producer->stats.acknowledged;
  producer->failed_mark = producer->stats.failed;
  if (timed_out) {
    status = bf_error_set(err, BF_ETIMEOUT,
                          "shutdown: records not acknowledged within %.3g s; %llu record(s) "
                          "failed (last error: %.350s)",
                          timeout_secs, (unsigned long long)newly_failed, producer->stats.last_error);
  } else if (newly_failed > 0) {
    status = bf_error_set(err, BF_EIO, "shutdown: %llu record(s) failed since the last flush: %.400s",
                          (unsigned long long)newly_failed, producer->stats.last_error);
  }
  pthread_mutex_unlock(&producer->mu);
done:
  pthread_mutex_unlock(&producer->lifecycle_mu);
  return status;
}

void bf_producer_get_stats(bf_producer_t *producer, bf_producer_stats_t *out) {
  if (bf__producer_forked(producer)) {
    memset(out, 0, sizeof *out);
    snprintf(out->last_error, sizeof out->last_error, "producer inherited through fork(): unusable");
    return;
  }
  pthread_mutex_lock(&producer->mu);
  *out = producer->stats;
  unsigned long long enqueued = atomic_load(&producer->enqueued);
  out->dropped = atomic_load(&producer->dropped);
  out->too_large = atomic_load(&producer->too_large);
  out->inserted = enqueued + out->dropped;
  out->queued = enqueued - producer->popped;
  out->in_flight = producer->popped - producer->resolved;
  pthread_mutex_unlock(&producer->mu);
}

void bf_producer_destroy(bf_producer_t *producer) {
  if (producer == NULL) return;
  if (bf__producer_forked(producer)) return; /* its locks and channel may be in any state: leak, never touch */
  bf_producer_shutdown(producer, DESTROY_SHUTDOWN_TIMEOUT_SECS, NULL);
  destroy_sync(producer);
  free_producer(producer);
}
