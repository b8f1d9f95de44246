/* The producer (include/bifrost/producer.h): application threads enqueue JSON records
 * or Arrow batches; one background pthread batches records into Arrow record
 * batches, encodes Arrow IPC and sends InsertBatch, retrying transient failures
 * with the same sequence number so the server applies each batch exactly once.
 *
 * Insert path (lock-free): a fork check, an atomic reservation against the bound
 * (rows queued or in flight), one malloc for the item, an atomic counter and the
 * wait-free push of queue.h. The mutex is taken only on slow paths: the BLOCK
 * policy waiting for room, and waking the background thread when it sleeps with
 * nothing to do (once per sleep) or when a batch is full.
 *
 * Accounting: `enqueued` (rows, atomic) grows before each push; the thread pops
 * items in queue order and resolves (acknowledges or fails) every popped row,
 * batch by batch, in order. flush() waits until `resolved` reaches the value of
 * `enqueued` it read: every row whose insert returned before that read is in the
 * prefix of the queue that many rows long. Dropped rows never enter the queue. Under
 * `mu` (stats are read there): inserted = enqueued + dropped, queued = enqueued -
 * popped, in_flight = popped - resolved, resolved = acknowledged + failed, hence
 * inserted == acknowledged + queued + in_flight + dropped + failed.
 * Stats meanings: sent_batches counts batches sent at least once; retried_batches
 * counts retry attempts (a batch retried three times adds three). */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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
/* Dropped records are reported on stderr at most this often. */
#define DROP_LOG_INTERVAL_SECS 10.0

/* Incremented in the child of every fork(): a producer created before the fork
 * has no thread in the child and refuses to be used there. */
static atomic_ulong fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void on_fork_child(void) { atomic_fetch_add(&fork_generation, 1); }
static void install_fork_handler(void) { pthread_atfork(NULL, NULL, on_fork_child); }

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
  unsigned long fork_gen; /* fork_generation at create */

  /* Owned by the background thread. */
  bf_batch_builder_t *builder;
  bf__item_t **batch;     /* batch_size slots: the pending JSON records */
  bool *row_ok;           /* batch_size flags: row appended to the builder */
  bf__item_t *held;       /* popped Arrow item waiting for the pending records to go */
  uint64_t next_sequence; /* last sequence used; the first batch sends 1 */
  uint64_t rng_state;     /* xorshift64 state for backoff jitter */
  uint64_t dropped_logged;
  double drop_logged_at;
  uint64_t failed_logged;     /* stats.failed when failures were last reported */
  double failure_logged_at;
  pthread_t thread;
  bf__queue_t queue;

  /* Lock-free state shared with inserters. */
  atomic_ullong enqueued;    /* rows pushed (counted just before the push) */
  atomic_ullong dropped;     /* rows dropped by DROP_NEWEST */
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
  uint64_t acked_mark;     /* stats.acknowledged when the last flush returned */
  uint64_t failed_mark;    /* stats.failed when the last flush returned */
  double last_send; /* monotonic seconds of the last batch taken */
  bool aborting;    /* shutdown timed out: stop retrying, fail what is left */
  bool thread_done;
};

static bool forked(const bf_producer_t *producer) {
  return producer->fork_gen != atomic_load_explicit(&fork_generation, memory_order_relaxed);
}

static int forked_error(bf_error_t *err) {
  return bf_error_set(err, BF_ECLOSED,
                      "this producer was created in the parent process before fork(); its "
                      "background thread does not exist here: create a new producer in the child");
}

/* The bound is full: sending is due. */
static bool bound_full(bf_producer_t *producer) {
  return atomic_load(&producer->outstanding) >= (long long)producer->max_queue_rows ||
         (producer->max_queue_bytes > 0 &&
          atomic_load(&producer->outstanding_bytes) >= (long long)producer->max_queue_bytes);
}

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

/* Sends one encoded batch until acknowledged, a non-retryable error, retries
 * exhausted or shutdown aborts. Runs without mu except around the backoff wait. */
static void log_drops(bf_producer_t *producer, double now);

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
      log_drops(producer, monotonic_now()); /* drops happen while the server is away */
      double wake = monotonic_now() + 1.0;
      cond_wait_until(&producer->work_cv, &producer->mu, wake < deadline ? wake : deadline);
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

/* Reports failed records on stderr: the first at once, then at most one summary
 * per DROP_LOG_INTERVAL_SECS (the counts stay exact in stats()). Caller holds mu. */
static void log_failures_locked(bf_producer_t *producer, const char *latest) {
  double now = monotonic_now();
  if (producer->stats.failed == producer->failed_logged ||
      (producer->failed_logged > 0 && now - producer->failure_logged_at < DROP_LOG_INTERVAL_SECS))
    return;
  fprintf(stderr, "bifrost: producer for %s.%s.%s: %llu record(s) failed since the last report; "
                  "latest: %s\n",
          producer->catalog, producer->schema_name, producer->table,
          (unsigned long long)(producer->stats.failed - producer->failed_logged), latest);
  producer->failed_logged = producer->stats.failed;
  producer->failure_logged_at = now;
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
    status = send_batch(producer, &ipc, sequence, &err);
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
      now - producer->failure_logged_at >= DROP_LOG_INTERVAL_SECS)
    log_failures_locked(producer, producer->stats.last_error);
  uint64_t dropped = atomic_load(&producer->dropped);
  if (dropped == producer->dropped_logged || now - producer->drop_logged_at < DROP_LOG_INTERVAL_SECS)
    return;
  fprintf(stderr,
          "bifrost: producer for %s.%s.%s dropped %llu record(s) since the last report "
          "(queue full, backpressure drop_newest; %llu in total)\n",
          producer->catalog, producer->schema_name, producer->table,
          (unsigned long long)(dropped - producer->dropped_logged), (unsigned long long)dropped);
  producer->dropped_logged = dropped;
  producer->drop_logged_at = now;
}

static void *producer_main(void *arg) {
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
    while (producer->held == NULL && n < producer->batch_size) {
      bf__item_t *item = pop_item(producer);
      if (item == NULL) break;
      note_popped_locked(producer, item->rows);
      if (item->kind == BF__ITEM_ARROW) producer->held = item;
      else producer->batch[n++] = item;
    }
    bool closing = atomic_load(&producer->closing);
    double now = monotonic_now();
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
               producer->flush_target > producer->resolved || now >= due_at || bound_full(producer) ||
               atomic_load(&producer->blocked) > 0;
    if (!due) {
      atomic_store(&producer->wake_at, producer->popped + (producer->batch_size - n));
      atomic_store(&producer->sleep_state, SLEEP_TIMED);
      if (atomic_load(&producer->enqueued) < producer->popped + (producer->batch_size - n) &&
          !bound_full(producer))
        cond_wait_until(&producer->work_cv, &producer->mu, due_at);
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
  bf__queue_init(&producer->queue);
  producer->max_queue_rows = options->max_queue_rows;
  producer->max_queue_bytes = options->max_queue_bytes;
  pthread_once(&fork_once, install_fork_handler);
  producer->fork_gen = atomic_load(&fork_generation);
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
  if (forked(producer)) return forked_error(err);
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
  if (state == SLEEP_TIMED && enqueued < atomic_load(&producer->wake_at) && !bound_full(producer))
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
                   bool *would_block, bool *dropped, bf_error_t *err) {
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
    cond_wait_until(&producer->space_cv, &producer->mu, deadline);
  }
  atomic_fetch_sub(&producer->blocked, 1);
  pthread_mutex_unlock(&producer->mu);
  return status;
}

/* Reserves room and pushes item (freed on failure or drop). */
static int enqueue(bf_producer_t *producer, bf__item_t *item, bool may_block, bool *would_block,
                   bf_error_t *err) {
  if (would_block != NULL) *would_block = false;
  bool ignored = false, dropped = false;
  atomic_fetch_add(&producer->inserting, 1);
  int status = BF_OK;
  if (atomic_load(&producer->closing))
    status = bf_error_set(err, BF_ECLOSED, "insert: the producer has been shut down");
  else
    status = reserve(producer, item->rows, item->bytes, may_block,
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
                  bool may_block, bool *would_block, bf_error_t *err) {
  if (would_block != NULL) *would_block = false;
  if (forked(producer)) return forked_error(err);
  bf__item_t *item = malloc(sizeof *item + len + 1);
  if (item == NULL) return bf_error_set(err, BF_ENOMEM, "insert: out of memory");
  item->kind = kind;
  item->rows = 1;
  item->len = len;
  item->bytes = len;
  item->arrow = NULL;
  memcpy(item->json, json, len);
  item->json[len] = '\0';
  return enqueue(producer, item, may_block, would_block, err);
}

int bf_producer_insert_json(bf_producer_t *producer, const char *json, size_t len, bf_error_t *err) {
  return insert(producer, BF__ITEM_JSON, json, len, true, NULL, err);
}

int bf__producer_insert_json_nowait(bf_producer_t *producer, const char *json, size_t len,
                                    bool *would_block, bf_error_t *err) {
  return insert(producer, BF__ITEM_JSON, json, len, false, would_block, err);
}

int bf_producer_insert_row(bf_producer_t *producer, const uint8_t *row, size_t len, bf_error_t *err) {
  return insert(producer, BF__ITEM_ROW, (const char *)row, len, true, NULL, err);
}

int bf__producer_insert_row_nowait(bf_producer_t *producer, const uint8_t *row, size_t len,
                                   bool *would_block, bf_error_t *err) {
  return insert(producer, BF__ITEM_ROW, (const char *)row, len, false, would_block, err);
}

static int formats_equal(const struct ArrowSchema *want, const struct ArrowSchema *got,
                         const char *path, bf_error_t *err) {
  const char *wf = want->dictionary ? want->dictionary->format : want->format;
  const char *gf = got->dictionary ? got->dictionary->format : got->format;
  if ((want->dictionary == NULL) != (got->dictionary == NULL) || strcmp(want->format, got->format) != 0 ||
      strcmp(wf, gf) != 0)
    return bf_error_set(err, BF_EINVAL, "column '%s' has Arrow type '%s', the table expects '%s'",
                        path, got->format, want->format);
  if (want->n_children != got->n_children)
    return bf_error_set(err, BF_EINVAL, "column '%s' has %lld children, the table expects %lld",
                        path, (long long)got->n_children, (long long)want->n_children);
  for (int64_t i = 0; i < want->n_children; i++) {
    char child[512];
    snprintf(child, sizeof child, "%s.%s", path, want->children[i]->name);
    BF_RETURN_NOT_OK(formats_equal(want->children[i], got->children[i], child, err));
  }
  return BF_OK;
}

/* Every value in a dictionary column's dictionary must be one of the enum's. */
static int check_enum_values(const bf_field_t *field, const struct ArrowArray *column,
                             bf_error_t *err) {
  const struct ArrowArray *dict = column->dictionary;
  if (dict == NULL || dict->n_buffers < 3) return BF_OK;
  const int32_t *offsets = (const int32_t *)dict->buffers[1];
  const char *data = (const char *)dict->buffers[2];
  const uint8_t *valid = (const uint8_t *)dict->buffers[0];
  for (int64_t k = 0; offsets && k < dict->length; k++) {
    int64_t j = k + dict->offset;
    if (valid && !(valid[j >> 3] & (1u << (j & 7)))) continue;
    size_t n = (size_t)(offsets[j + 1] - offsets[j]);
    const char *v = data ? data + offsets[j] : "";
    bool known = false;
    for (size_t e = 0; e < field->n_enum_values && !known; e++)
      known = strlen(field->enum_values[e]) == n && memcmp(field->enum_values[e], v, n) == 0;
    if (!known)
      return bf_error_set(err, BF_EINVAL, "insert_arrow: column '%s' has '%.*s', not one of its enum values",
                          field->name, (int)(n > 200 ? 200 : n), v);
  }
  return BF_OK;
}

int bf_producer_user_arrow_schema(const bf_producer_t *producer, struct ArrowSchema *out,
                                  bf_error_t *err) {
  BF_RETURN_NOT_OK(bf_schema_to_arrow(&producer->schema, out, err));
  for (int64_t i = (int64_t)producer->schema.n_user_fields; i < out->n_children; i++)
    bf_arrow_schema_release(out->children[i]);
  out->n_children = (int64_t)producer->schema.n_user_fields;
  return BF_OK;
}

int bf_producer_insert_arrow(bf_producer_t *producer, const struct ArrowSchema *schema,
                             struct ArrowArray *array, size_t approx_bytes, bf_error_t *err) {
  if (forked(producer)) return forked_error(err);
  struct ArrowSchema table;
  BF_RETURN_NOT_OK(bf_schema_to_arrow(&producer->schema, &table, err));
  int status = BF_OK;
  char *string_formats = NULL;
  size_t n_user = producer->schema.n_user_fields;
  if (strcmp(schema->format, "+s") != 0 || schema->n_children != (int64_t)n_user ||
      array->n_children != (int64_t)n_user) {
    status = bf_error_set(err, BF_EINVAL,
                          "insert_arrow: expected a struct of the table's %zu columns, got '%s' "
                          "with %lld children",
                          n_user, schema->format, (long long)schema->n_children);
  }
  for (size_t i = 0; i < n_user && status == BF_OK; i++) {
    const struct ArrowSchema *w = table.children[i], *g = schema->children[i];
    if (strcmp(w->name, g->name) != 0) {
      status = bf_error_set(err, BF_EINVAL,
                            "insert_arrow: column %zu is '%s', the table expects '%s' there",
                            i + 1, g->name, w->name);
      break;
    }
    if (strcmp(w->format, "vu") == 0 && (strcmp(g->format, "u") == 0 || strcmp(g->format, "U") == 0)) {
      /* Plain strings for a Utf8View column travel as they are: no conversion. */
      if (string_formats == NULL && (string_formats = calloc(n_user, 1)) == NULL)
        status = bf_error_set(err, BF_ENOMEM, "insert_arrow: out of memory");
      else
        string_formats[i] = g->format[0];
    } else {
      status = formats_equal(w, g, w->name, err);
    }
    if (status == BF_OK && !(w->flags & ARROW_FLAG_NULLABLE) && array->children[i]->null_count != 0)
      status = bf_error_set(err, BF_EINVAL, "insert_arrow: column '%s' is required but has nulls",
                            w->name);
    if (status == BF_OK && producer->schema.fields[i].type == BF_TYPE_DICTIONARY)
      status = check_enum_values(&producer->schema.fields[i], array->children[i], err);
  }
  bf_arrow_schema_release(&table);
  if (status != BF_OK || array->length == 0) { /* nothing to send: the array is released */
    free(string_formats);
    if (status == BF_OK) bf_arrow_array_release(array);
    return status;
  }
  bf__item_t *item = malloc(sizeof *item);
  bf__arrow_batch_t *batch = malloc(sizeof *batch);
  if (item == NULL || batch == NULL) {
    free(item);
    free(batch);
    free(string_formats);
    return bf_error_set(err, BF_ENOMEM, "insert_arrow: out of memory");
  }
  batch->string_formats = string_formats;
  item->kind = BF__ITEM_ARROW;
  item->rows = (size_t)array->length;
  item->len = 0;
  item->bytes = approx_bytes;
  item->arrow = batch;
  bf_arrow_array_move(array, &batch->array);
  return enqueue(producer, item, true, NULL, err);
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
  if (forked(producer)) return forked_error(err);
  pthread_mutex_lock(&producer->mu);
  uint64_t target = atomic_load(&producer->enqueued);
  if (target > producer->flush_target) {
    producer->flush_target = target;
    pthread_cond_signal(&producer->work_cv);
  }
  while (producer->resolved < target && !deadline_passed(deadline)) {
    cond_wait_until(&producer->progress_cv, &producer->mu, deadline);
  }
  if (producer->resolved < target) {
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
  int status = BF_OK;
  if (forked(producer)) return BF_OK; /* nothing of it runs here; the parent's copy is its own */
  pthread_mutex_lock(&producer->lifecycle_mu);
  if (producer->stopped) goto done;
  double deadline = deadline_after(timeout_secs);
  atomic_store(&producer->closing, true);
  pthread_mutex_lock(&producer->mu);
  pthread_cond_broadcast(&producer->space_cv); /* blocked inserters give up (BF_ECLOSED) */
  pthread_mutex_unlock(&producer->mu);
  while (atomic_load(&producer->inserting) > 0) sched_yield(); /* pushes in progress land first */
  pthread_mutex_lock(&producer->mu);
  uint64_t failed_before = producer->stats.failed;
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
  if (forked(producer)) {
    memset(out, 0, sizeof *out);
    snprintf(out->last_error, sizeof out->last_error, "producer inherited through fork(): unusable");
    return;
  }
  pthread_mutex_lock(&producer->mu);
  *out = producer->stats;
  unsigned long long enqueued = atomic_load(&producer->enqueued);
  out->dropped = atomic_load(&producer->dropped);
  out->inserted = enqueued + out->dropped;
  out->queued = enqueued - producer->popped;
  out->in_flight = producer->popped - producer->resolved;
  pthread_mutex_unlock(&producer->mu);
}

void bf_producer_destroy(bf_producer_t *producer) {
  if (producer == NULL) return;
  if (forked(producer)) return; /* its locks and channel may be in any state: leak, never touch */
  bf_producer_shutdown(producer, DESTROY_SHUTDOWN_TIMEOUT_SECS, NULL);
  destroy_sync(producer);
  free_producer(producer);
}
