/* The producer's accounting and reports, shared by its background thread
 * (producer_thread.c) and its senders (producer_send.c): resolving popped rows as
 * acknowledged or failed, stats.last_error, and the events (failures, drops) sent
 * to the on_event callback, never with mu held. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "producer/producer_state.h"

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
void bf__producer_emit_locked(bf_producer_t *producer, bf_producer_event_kind_t kind, uint64_t count,
                        int status, const char *message) {
  if (producer->on_event == NULL) return;
  char copy[BF_ERROR_MESSAGE_MAX];
  snprintf(copy, sizeof copy, "%s", message);
  pthread_mutex_unlock(&producer->mu);
  bf__producer_emit(producer, kind, count, status, "%s", copy);
  pthread_mutex_lock(&producer->mu);
}

/* Records a failure message in stats.last_error. Caller holds mu. */
void bf__producer_set_last_error(bf_producer_t *producer, const char *fmt, ...) {
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
void bf__producer_resolve_counts_locked(bf_producer_t *producer, size_t n_acked, size_t n_failed,
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

void bf__producer_resolve_locked(bf_producer_t *producer, size_t n, const bool *row_ok, size_t bytes,
                           int failure_status) {
  size_t n_acked = 0;
  for (size_t i = 0; row_ok != NULL && i < n; i++)
    if (row_ok[i]) n_acked++;
  bf__producer_resolve_counts_locked(producer, n_acked, n - n_acked, bytes, failure_status);
}

/* Reports failed records (BATCH_FAILED): the first at once, then at most one
 * summary per REPORT_INTERVAL_SECS (the counts stay exact in stats()). Caller
 * holds mu (released around the callback). */
void bf__producer_log_failures_locked(bf_producer_t *producer, const char *latest) {
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
  bf__producer_emit_locked(producer, BF_PRODUCER_EVENT_BATCH_FAILED, n, status, message);
}

void bf__producer_log_drops_locked(bf_producer_t *producer, double now) {
  if (producer->stats.failed != producer->failed_logged &&
      now - producer->failure_logged_at >= REPORT_INTERVAL_SECS)
    bf__producer_log_failures_locked(producer, producer->stats.last_error);
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
  bf__producer_emit_locked(producer, BF_PRODUCER_EVENT_DROPPED, n, BF_EFULL, message);
}
