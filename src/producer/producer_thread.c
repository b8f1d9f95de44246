/* The producer's background thread (state in producer_state.h): pops records and
 * Arrow batches in queue order, cuts batches at batch_size rows or max_batch_bytes
 * estimated bytes, builds Arrow with bf_batch_builder, encodes IPC, sends
 * InsertBatch under a stable producer id and per-batch sequence, retries
 * transient statuses with backoff and jitter under the same sequence, resolves
 * every popped row (acknowledged or failed), and reports events (failures,
 * outage, recovery, drops) to the on_event callback, never with mu held. */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/ipc.h"
#include "bifrost/util.h"
#include "producer/producer_state.h"

#define BACKOFF_INITIAL_SECS 0.05
#define BACKOFF_MAX_SECS 5.0
/* Failures and drops are reported at most this often (the first at once). */
#define REPORT_INTERVAL_SECS 10.0

void bf__producer_emit(bf_producer_t *producer, bf_producer_event_kind_t kind, uint64_t count,
                       int status, const char *fmt, ...) {
  if (producer->on_event == NULL) return;
  char message[BF_ERROR_MESSAGE_MAX + 128];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof message, fmt, args);
  va_end(args);
  bf_producer_event_t event = {
      .kind = kind, .table = producer->fqn, .count = count, .status = status, .message = message};
  producer->on_event(producer->event_ctx, &event);
}

/* The same, called with mu held: releases it around the callback. Thread only
 * (the thread's own state is not touched by others while mu is released). */
static void emit_locked(bf_producer_t *producer, bf_producer_event_kind_t kind, uint64_t count,
                        int status, const char *message) {
  if (producer->on_event == NULL) return;
  char copy[BF_ERROR_MESSAGE_MAX];
  snprintf(copy, sizeof copy, "%s", message);
  pthread_mutex_unlock(&producer->mu);
  bf__producer_emit(producer, kind, count, status, "%s", copy);
  pthread_mutex_lock(&producer->mu);
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
  producer->last_error_transient = false;
  va_list args;
  va_start(args, fmt);
  vsnprintf(producer->stats.last_error, sizeof(producer->stats.last_error), fmt, args);
  va_end(args);
}

/* ---- resolution (caller holds mu) ----------------------------------------------- */

/* Resolves the n oldest popped rows: row_ok[i] says whether row i was acknowledged
 * (true) or failed (false; row_ok NULL means all n failed). Updates stats, frees
 * their room in the bound and wakes flushers and blocked inserters. */
static void resolve_counts_locked(bf_producer_t *producer, size_t n_acked, size_t n_failed,
                                  size_t bytes, int failure_status) {
  size_t n = n_acked + n_failed;
  BF_DCHECK(producer->popped >= producer->resolved + n);
  producer->stats.acknowledged += n_acked;
  producer->stats.failed += n_failed;
  if (n_failed > 0) producer->last_failure_status = failure_status;
  producer->resolved += n;
  atomic_fetch_sub(&producer->outstanding, (long long)n);
  atomic_fetch_sub(&producer->outstanding_bytes, (long long)bytes);
  pthread_cond_broadcast(&producer->progress_cv);
  if (atomic_load(&producer->blocked) > 0) pthread_cond_broadcast(&producer->space_cv);
}

static void resolve_locked(bf_producer_t *producer, size_t n, const bool *row_ok, size_t bytes,
                           int failure_status) {
  size_t n_acked = 0;
  for (size_t i = 0; row_ok != NULL && i < n; i++)
    if (row_ok[i]) n_acked++;
  resolve_counts_locked(producer, n_acked, n - n_acked, bytes, failure_status);
}

/* Pops the next item, waiting out a push that is half done. Thread only. */
static bf__item_t *pop_item(bf_producer_t *producer) {
  for (;;) {
    bool busy = false;
    bf__item_t *item = bf__queue_pop(&producer->queue, &busy);
    if (item != NULL || !busy) return item;
    sched_yield();
  }
}

/* Counts popped rows (caller holds mu). */
static void note_popped_locked(bf_producer_t *producer, size_t rows) {
  producer->popped += rows;
  atomic_store(&producer->popped_rows, producer->popped);
}

/* Shutdown timed out: fail everything still queued. Caller holds mu. */
static void fail_queued_locked(bf_producer_t *producer) {
  size_t n_failed = 0;
  if (producer->held != NULL) {
    size_t rows = producer->held->rows, bytes = producer->held->bytes;
    bf__item_free(producer->held);
    producer->held = NULL;
    resolve_locked(producer, rows, NULL, bytes, BF_ECANCELLED);
    n_failed += rows;
  }
  bf__item_t *item;
  while (producer->popped < atomic_load(&producer->enqueued) && (item = pop_item(producer)) != NULL) {
    size_t rows = item->rows, bytes = item->bytes;
    bf__item_free(item);
    note_popped_locked(producer, rows);
    resolve_locked(producer, rows, NULL, bytes, BF_ECANCELLED);
    n_failed += rows;
  }
  if (n_failed)
    set_last_error(producer, "producer shut down before %zu queued record(s) were sent", n_failed);
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

static void log_drops(bf_producer_t *producer, double now);

/* Sends one encoded batch until acknowledged, a non-retryable error, retries
 * exhausted or shutdown aborts. Runs without mu except around the backoff wait. */

static int send_batch(bf_producer_t *producer, const bf_buffer_t *ipc, uint64_t sequence,
                      size_t n_rows, bf_error_t *err) {
  for (int attempt = 0;; attempt++) {
    uint64_t rows_accepted = 0;
    int duplicate = 0;
    int status = bf_client_insert_batch(producer->channel, &producer->name, producer->fingerprint,
                                        ipc->data, ipc->size, producer->producer_id, sequence,
                                        producer->rpc_timeout_secs, &rows_accepted, &duplicate,
                                        err);
    if (status == BF_OK) {
      if (attempt > 0) {
        pthread_mutex_lock(&producer->mu);
        if (producer->last_error_transient) { /* recovered: the retry message is history */
          producer->stats.last_error[0] = '\0';
          producer->last_error_transient = false;
        }
        pthread_mutex_unlock(&producer->mu);
      }
      if (producer->in_outage) {
        producer->in_outage = false;
        bf__producer_emit(producer, BF_PRODUCER_EVENT_RECOVERED, n_rows, BF_OK,
                          "batch %llu (%zu records) acknowledged after %d retr%s; delivery resumed",
                          (unsigned long long)sequence, n_rows, attempt, attempt == 1 ? "y" : "ies");
      }
      return BF_OK;
    }
    bool retries_left = producer->max_retries < 0 || attempt < producer->max_retries;
    if (!is_retryable(status) || !retries_left) return status;
    if (!producer->in_outage) {
      producer->in_outage = true;
      bf__producer_emit(producer, BF_PRODUCER_EVENT_RETRYING, n_rows, status,
                        "batch %llu (%zu records) not delivered (%s: %.300s); retrying with backoff "
                        "until the server answers",
                        (unsigned long long)sequence, n_rows, bf_status_name(status), err->message);
    }
    double deadline = bf__producer_now() + backoff_secs(producer, attempt);
    pthread_mutex_lock(&producer->mu);
    producer->stats.retried_batches++;
    set_last_error(producer, "batch %llu: retrying after %s: %.400s", (unsigned long long)sequence,
                   bf_status_name(status), err->message);
    producer->last_error_transient = true;
    while (!producer->aborting && bf__producer_now() < deadline) {
      log_drops(producer, bf__producer_now()); /* drops happen while the server is away */
      double wake = bf__producer_now() + 1.0;
      bf__producer_wait_until(&producer->work_cv, &producer->mu, wake < deadline ? wake : deadline);
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

/* Reports failed records (BATCH_FAILED): the first at once, then at most one
 * summary per REPORT_INTERVAL_SECS (the counts stay exact in stats()). Caller
 * holds mu (released around the callback). */
static void log_failures_locked(bf_producer_t *producer, const char *latest) {
  double now = bf__producer_now();
  if (producer->stats.failed == producer->failed_logged ||
      (producer->failed_logged > 0 && now - producer->failure_logged_at < REPORT_INTERVAL_SECS))
    return;
  uint64_t n = producer->stats.failed - producer->failed_logged;
  int status = producer->last_failure_status;
  producer->failed_logged = producer->stats.failed;
  producer->failure_logged_at = now;
  char message[BF_ERROR_MESSAGE_MAX];
  snprintf(message, sizeof message, "%llu record(s) failed since the last report; latest: %.420s",
           (unsigned long long)n, latest);
  emit_locked(producer, BF_PRODUCER_EVENT_BATCH_FAILED, n, status, message);
}

/* Builds, encodes and sends the n oldest popped records (producer->batch), then
 * resolves them. Frees the records. Called without mu. */
static void process_batch(bf_producer_t *producer, size_t n) {
  bf_error_t row_err, err;
  bf_error_init(&row_err);
  bf_error_init(&err);
  size_t n_bad = 0, bytes = 0;
  int bad_status = BF_OK;
  char bad_message[BF_ERROR_MESSAGE_MAX] = "";
  for (size_t i = 0; i < n; i++) {
    bf__item_t *record = producer->batch[i];
    bytes += record->bytes;
    int status = record->kind == BF__ITEM_ROW
                     ? bf_batch_builder_append_row(producer->builder, (const uint8_t *)record->json,
                                                   record->len, &row_err)
                     : bf_batch_builder_append_json(producer->builder, record->json, record->len,
                                                    &row_err);
    producer->row_ok[i] = status == BF_OK;
    if (status != BF_OK) {
      n_bad++;
      bad_status = status;
      snprintf(bad_message, sizeof(bad_message), "record rejected: %.450s", row_err.message);
    }
    bf__item_free(record);
    producer->batch[i] = NULL;
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
      producer->stats.sent += n - n_bad;
      pthread_mutex_unlock(&producer->mu);
      status = send_batch(producer, &ipc, sequence, n - n_bad, &err);
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
  resolve_locked(producer, n, producer->row_ok, bytes, failure_status);
  if (failure[0]) log_failures_locked(producer, failure);
  pthread_mutex_unlock(&producer->mu);
}

/* Gives the columns marked in string_formats the plain string format they came
 * with (the batch schema is otherwise the table's). */
static int use_string_formats(struct ArrowSchema *schema, const char *string_formats,
                              size_t n_user, bf_error_t *err) {
  for (size_t i = 0; i < n_user; i++) {
    if (!string_formats[i]) continue;
    struct ArrowSchema *child = schema->children[i], plain;
    const char format[2] = {string_formats[i], '\0'};
    if (bf_arrow_schema_init(&plain, format, child->name, child->flags, 0) != BF_OK)
      return bf_error_set(err, BF_ENOMEM, "out of memory");
    child->release(child);
    *child = plain;
  }
  return BF_OK;
}

/* Sends one popped Arrow item as its own batch (system columns attached), then
 * resolves its rows. Frees the item. Called without mu. */
static void process_arrow(bf_producer_t *producer, bf__item_t *item) {
  bf_error_t err;
  bf_error_init(&err);
  size_t rows = item->rows, bytes = item->bytes;
  struct ArrowSchema schema;
  struct ArrowArray array;
  memset(&schema, 0, sizeof schema);
  memset(&array, 0, sizeof array);
  int64_t now_us = bf_time_now_us();
  char batch_id[37];
  bf_uuid7_string(now_us / 1000, batch_id);
  int status = bf_rows_attach_system_columns(&producer->schema, &item->arrow->array, now_us,
                                             batch_id, &schema, &array, &err);
  if (status == BF_OK && item->arrow->string_formats)
    status = use_string_formats(&schema, item->arrow->string_formats,
                                producer->schema.n_user_fields, &err);
  bf__item_free(item);
  bf_buffer_t ipc;
  bf_buffer_init(&ipc);
  uint64_t sequence = 0;
  if (status == BF_OK) {
    bf_ipc_writer_t writer;
    memset(&writer, 0, sizeof(writer));
    status = bf_ipc_writer_init(&writer, &schema, &ipc, &err);
    if (status == BF_OK) {
      status = bf_ipc_writer_write(&writer, &array, &err);
      if (status == BF_OK) status = bf_ipc_writer_finish(&writer, &err);
      bf_ipc_writer_reset(&writer);
    }
  }
  bf_arrow_array_release(&array);
  bf_arrow_schema_release(&schema);
  if (status == BF_OK) {
    sequence = ++producer->next_sequence;
    pthread_mutex_lock(&producer->mu);
    producer->stats.sent_batches++;
    producer->stats.sent += rows;
    pthread_mutex_unlock(&producer->mu);
    status = send_batch(producer, &ipc, sequence, rows, &err);
  }
  bf_buffer_reset(&ipc);
  pthread_mutex_lock(&producer->mu);
  if (status != BF_OK) {
    producer->stats.failed_batches++;
    set_last_error(producer, "Arrow batch %llu (%zu rows) failed: %s: %.400s",
                   (unsigned long long)sequence, rows, bf_status_name(status), err.message);
  }
  resolve_counts_locked(producer, status == BF_OK ? rows : 0, status == BF_OK ? 0 : rows, bytes,
                        status);
  if (status != BF_OK) log_failures_locked(producer, producer->stats.last_error);
  pthread_mutex_unlock(&producer->mu);
}

static void log_drops(bf_producer_t *producer, double now) {
  if (producer->stats.failed != producer->failed_logged &&
      now - producer->failure_logged_at >= REPORT_INTERVAL_SECS)
    log_failures_locked(producer, producer->stats.last_error);
  uint64_t dropped = atomic_load(&producer->dropped);
  if (dropped == producer->dropped_logged || now - producer->drop_logged_at < REPORT_INTERVAL_SECS)
    return;
  uint64_t n = dropped - producer->dropped_logged;
  producer->dropped_logged = dropped;
  producer->drop_logged_at = now;
  char message[256];
  snprintf(message, sizeof message,
           "dropped %llu record(s) since the last report (queue full, backpressure drop_newest; "
           "%llu in total)",
           (unsigned long long)n, (unsigned long long)dropped);
  emit_locked(producer, BF_PRODUCER_EVENT_DROPPED, n, BF_EFULL, message);
}

void *bf__producer_main(void *arg) {
  bf_producer_t *producer = arg;
  size_t n = 0; /* pending JSON records in producer->batch */
  pthread_mutex_lock(&producer->mu);
  for (;;) {
    if (producer->aborting) {
      size_t bytes = 0;
      for (size_t i = 0; i < n; i++) {
        bytes += producer->batch[i]->bytes;
        bf__item_free(producer->batch[i]);
      }
      if (n) resolve_locked(producer, n, NULL, bytes, BF_ECANCELLED);
      n = 0;
      fail_queued_locked(producer);
      break;
    }
    if (n == 0 && producer->held != NULL && producer->held->kind != BF__ITEM_ARROW) {
      /* The record that did not fit the previous batch opens this one. */
      producer->batch[n++] = producer->held;
      producer->pending_bytes = producer->held->batch_bytes;
      producer->held = NULL;
    }
    while (producer->held == NULL && n < producer->batch_size) {
      bf__item_t *item = pop_item(producer);
      if (item == NULL) break;
      note_popped_locked(producer, item->rows);
      if (item->kind == BF__ITEM_ARROW ||
          (n > 0 && producer->pending_bytes + item->batch_bytes > producer->max_batch_bytes)) {
        producer->held = item; /* goes after the pending records, alone or in the next batch */
      } else {
        if (n == 0) producer->pending_bytes = 0;
        producer->batch[n++] = item;
        producer->pending_bytes += item->batch_bytes;
      }
    }
    bool closing = atomic_load(&producer->closing);
    double now = bf__producer_now();
    log_drops(producer, now);
    if (n == 0 && producer->held == NULL) {
      if (closing && producer->popped == atomic_load(&producer->enqueued)) break;
      /* Announce the sleep, then look again: an inserter either sees the flag or
       * its row is seen here (both sides use sequentially consistent atomics). */
      atomic_store(&producer->sleep_state, SLEEP_IDLE);
      if (producer->popped == atomic_load(&producer->enqueued) && !atomic_load(&producer->closing))
        pthread_cond_wait(&producer->work_cv, &producer->mu);
      atomic_store(&producer->sleep_state, AWAKE);
      continue;
    }
    double due_at = producer->last_send + producer->scheduled_delay_secs;
    bool due = n >= producer->batch_size || producer->held != NULL || closing ||
               producer->flush_target > producer->resolved || now >= due_at || bf__producer_bound_full(producer) ||
               atomic_load(&producer->blocked) > 0;
    if (!due) {
      atomic_store(&producer->wake_at, producer->popped + (producer->batch_size - n));
      atomic_store(&producer->sleep_state, SLEEP_TIMED);
      if (atomic_load(&producer->enqueued) < producer->popped + (producer->batch_size - n) &&
          !bf__producer_bound_full(producer))
        bf__producer_wait_until(&producer->work_cv, &producer->mu, due_at);
      atomic_store(&producer->sleep_state, AWAKE);
      continue;
    }
    producer->last_send = now;
    if (n > 0) {
      size_t k = n;
      n = 0;
      pthread_mutex_unlock(&producer->mu);
      if (producer->builder != NULL) {
        process_batch(producer, k);
        pthread_mutex_lock(&producer->mu);
      } else {
        size_t bytes = 0;
        for (size_t i = 0; i < k; i++) {
          bytes += producer->batch[i]->bytes;
          bf__item_free(producer->batch[i]);
        }
        pthread_mutex_lock(&producer->mu);
        set_last_error(producer, "batch builder unavailable (out of memory)");
        resolve_locked(producer, k, NULL, bytes, BF_ENOMEM);
      }
      continue;
    }
    bf__item_t *item = producer->held;
    producer->held = NULL;
    pthread_mutex_unlock(&producer->mu);
    process_arrow(producer, item);
    pthread_mutex_lock(&producer->mu);
  }
  /* The last failures (e.g. records failed by an aborted shutdown) are reported now. */
  producer->failure_logged_at = 0;
  log_failures_locked(producer, producer->stats.last_error);
  producer->thread_done = true;
  pthread_cond_broadcast(&producer->progress_cv);
  pthread_mutex_unlock(&producer->mu);
  return NULL;
}

/* ---- public API ------------------------------------------------------------------ */
