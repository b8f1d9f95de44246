/* The producer's background thread (state in producer_state.h): pops records and
 * Arrow batches in queue order, cuts batches at batch_size rows or max_batch_bytes
 * estimated bytes, builds Arrow with bf_batch_builder, encodes IPC and hands each
 * batch to the senders (producer_send.c: several in flight, retries, resolution
 * in order); fails what is left when shutdown aborts. */
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
    bf__producer_resolve_locked(producer, rows, NULL, bytes, BF_ECANCELLED);
    n_failed += rows;
  }
  bf__item_t *item;
  while (producer->popped < atomic_load(&producer->enqueued) && (item = pop_item(producer)) != NULL) {
    size_t rows = item->rows, bytes = item->bytes;
    bf__item_free(item);
    note_popped_locked(producer, rows);
    bf__producer_resolve_locked(producer, rows, NULL, bytes, BF_ECANCELLED);
    n_failed += rows;
  }
  if (n_failed)
    bf__producer_set_last_error(producer, "producer shut down before %zu queued record(s) were sent", n_failed);
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

/* Builds and encodes the n oldest popped records (producer->batch) and hands the
 * batch to the senders. Frees the records. Called without mu. */
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
  bf_buffer_t ipc;
  bf_buffer_init(&ipc);
  if (n_bad < n) {
    status = encode_batch(producer, &ipc, &err);
    if (status != BF_OK) {
      bf_buffer_reset(&ipc);
      /* The builder's state after a failed finish is unspecified: start afresh. */
      bf_batch_builder_destroy(producer->builder);
      producer->builder = NULL;
      bf_error_t create_err;
      bf_error_init(&create_err);
      if (bf_batch_builder_create(&producer->schema, &producer->builder, &create_err) != BF_OK) {
        producer->builder = NULL;
      }
    }
  }
  bf__producer_submit(producer, n, producer->row_ok, n - n_bad, bytes, &ipc, false, status, err.message,
                      bad_status, bad_message);
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

/* Encodes one popped Arrow item as its own batch (system columns attached) and
 * hands it to the senders. Frees the item. Called without mu. */
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
  if (status != BF_OK) bf_buffer_reset(&ipc);
  bf__producer_submit(producer, rows, NULL, rows, bytes, &ipc, true, status, err.message, BF_OK, NULL);
}

void *bf__producer_main(void *arg) {
  bf_producer_t *producer = arg;
  size_t n = 0; /* pending JSON records in producer->batch */
  int started = bf__producer_senders_start(producer);
  pthread_mutex_lock(&producer->mu);
  if (started != BF_OK) { /* nothing could send: fail every record instead of hanging */
    bf__producer_set_last_error(producer, "producer could not start its sender threads");
    producer->aborting = true;
  }
  for (;;) {
    if (producer->aborting) {
      size_t bytes = 0;
      for (size_t i = 0; i < n; i++) {
        bytes += producer->batch[i]->bytes;
        bf__item_free(producer->batch[i]);
      }
      if (n) bf__producer_resolve_locked(producer, n, NULL, bytes, BF_ECANCELLED);
      n = 0;
      fail_queued_locked(producer);
      break;
    }
    if (producer->n_flights == producer->max_in_flight) {
      /* Every sender busy: rows stay queued (not popped) until one answers. */
      pthread_cond_wait(&producer->work_cv, &producer->mu);
      continue;
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
    bf__producer_log_drops_locked(producer, now);
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
        bf__producer_set_last_error(producer, "batch builder unavailable (out of memory)");
        bf__producer_resolve_locked(producer, k, NULL, bytes, BF_ENOMEM);
      }
      continue;
    }
    bf__item_t *item = producer->held;
    producer->held = NULL;
    pthread_mutex_unlock(&producer->mu);
    process_arrow(producer, item);
    pthread_mutex_lock(&producer->mu);
  }
  bf__producer_senders_stop_locked(producer); /* after every flight is resolved */
  /* The last failures (e.g. records failed by an aborted shutdown) are reported now. */
  producer->failure_logged_at = 0;
  bf__producer_log_failures_locked(producer, producer->stats.last_error);
  producer->thread_done = true;
  pthread_cond_broadcast(&producer->progress_cv);
  pthread_mutex_unlock(&producer->mu);
  return NULL;
}

/* ---- public API ------------------------------------------------------------------ */
