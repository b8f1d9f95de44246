/* The producer: insert() hands a serialized record to a bounded queue and returns;
 * one background C thread (never touching Python) drains the queue, builds Arrow
 * batches with bf_batch_builder, encodes IPC, sends InsertBatch with a stable
 * producer id and per-batch sequence, retries with backoff and tracks acks.
 * A batch is sent when batch_size rows are queued or scheduled_delay_secs have
 * passed since the last send, whichever comes first. All functions are
 * thread-safe; insert is lock-free. Every record is accounted for in
 * bf_producer_stats_t: inserted == acknowledged + queued + in_flight + dropped + failed.
 * Batches are also bounded in bytes (max_batch_bytes, under the transport's message
 * limit): a record that cannot fit any batch is refused by insert (BF_EINVAL,
 * counted in stats.too_large, reported as BF_PRODUCER_EVENT_RECORD_TOO_LARGE).
 * Events (failures, retries, recovery, drops) go to the on_event callback; the
 * library never writes to stderr itself.
 * Fork: a producer created before fork() refuses every call in the child
 * (BF_ECLOSED saying so); destroying it there frees nothing (its locks may be held
 * by threads that do not exist in the child). Create producers after forking. */
#ifndef BIFROST_PRODUCER_H
#define BIFROST_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/arrow.h"
#include "bifrost/client.h"
#include "bifrost/error.h"
#include "bifrost/rpc.h"

typedef enum bf_backpressure {
  BF_BACKPRESSURE_BLOCK = 0,   /* insert waits (up to block_timeout_secs) for room */
  BF_BACKPRESSURE_DROP_NEWEST, /* insert drops the record, counted in dropped */
  BF_BACKPRESSURE_RAISE        /* insert fails with BF_EFULL */
} bf_backpressure_t;

/* What the producer reports through bf_producer_options_t.on_event. */
typedef enum bf_producer_event_kind {
  BF_PRODUCER_EVENT_BATCH_FAILED = 0, /* records failed for good (not retried further) */
  BF_PRODUCER_EVENT_RETRYING,         /* the server is unreachable / busy: retrying (once per outage) */
  BF_PRODUCER_EVENT_RECOVERED,        /* a batch was acknowledged after an outage */
  BF_PRODUCER_EVENT_DROPPED,          /* drop_newest dropped records (at most every 10 s) */
  BF_PRODUCER_EVENT_RECORD_TOO_LARGE  /* insert refused a record no batch can hold */
} bf_producer_event_kind_t;

typedef struct bf_producer_event {
  bf_producer_event_kind_t kind;
  const char *table;   /* "catalog.schema.table" */
  uint64_t count;      /* records concerned */
  int status;          /* the bf status behind it (BF_OK for RECOVERED) */
  const char *message; /* human-readable, NUL-terminated */
} bf_producer_event_t;

/* Called on the producer's thread (or the inserting thread for RECORD_TOO_LARGE),
 * never with a producer lock held; it must not block for long and must not call
 * bf_producer_shutdown / destroy of the same producer. The event's strings are valid
 * during the call only. */
typedef void (*bf_producer_event_fn)(void *ctx, const bf_producer_event_t *event);

typedef struct bf_producer_options {
  const char *target;            /* server address */
  const char *authorization;     /* may be NULL; "Basic" credentials log in (see rpc.h) */
  const char *tls_ca_file;       /* TLS files (see bf_rpc_channel_options_t); may be NULL */
  const char *tls_cert_file;
  const char *tls_key_file;
  bool tls;
  bf_table_name_t name;          /* strings copied */
  const char *json_schema;       /* model_json_schema() JSON text (a Decimal field needs
                                    "max_digits" and "decimal_places" beside its anyOf,
                                    as TableConfig's schema has them) */
  const char *const *partition_columns;
  size_t n_partition_columns;
  size_t batch_size;             /* default 1000 */
  double scheduled_delay_secs;   /* default 30 */
  size_t max_queue_rows;         /* bound on rows queued or in flight (sent, not yet
                                    acknowledged); default 1,000,000 */
  size_t max_queue_bytes;        /* bound on their bytes (record sizes; Arrow batches
                                    by the caller's estimate); 0 = none (default) */
  bf_backpressure_t backpressure;
  double block_timeout_secs;     /* <= 0: wait forever (BLOCK policy) */
  double rpc_timeout_secs;       /* per InsertBatch attempt; default 30 */
  int max_retries;               /* per batch before it is failed; default -1 = forever while server unreachable */
  size_t max_batch_bytes;        /* bound on a batch's estimated size; 0 = default
                                    (BF_PRODUCER_DEFAULT_MAX_BATCH_BYTES); at most
                                    BF_PRODUCER_MAX_BATCH_BYTES_LIMIT */
  size_t max_in_flight;          /* batches sent and not yet answered at once (each
                                    stored by the server after the one before it);
                                    0 = default (BF_PRODUCER_DEFAULT_MAX_IN_FLIGHT); at
                                    most BF_PRODUCER_MAX_IN_FLIGHT_LIMIT */
  bf_producer_event_fn on_event; /* may be NULL: events are then only counted */
  void *event_ctx;
} bf_producer_options_t;

#define BF_PRODUCER_DEFAULT_MAX_IN_FLIGHT 4
#define BF_PRODUCER_MAX_IN_FLIGHT_LIMIT 64

/* A quarter of the transport's message limit (BF_RPC_MAX_MESSAGE_BYTES): room for
 * the estimate's error and the message framing. */
#define BF_PRODUCER_DEFAULT_MAX_BATCH_BYTES ((size_t)BF_RPC_MAX_MESSAGE_BYTES / 4)
#define BF_PRODUCER_MAX_BATCH_BYTES_LIMIT ((size_t)BF_RPC_MAX_MESSAGE_BYTES / 2)

void bf_producer_options_init(bf_producer_options_t *options); /* defaults */

typedef struct bf_producer_stats {
  uint64_t inserted, queued, in_flight, sent_batches, acknowledged, retried_batches,
      dropped, failed, failed_batches;
  uint64_t sent; /* records in batches sent at least once */
  uint64_t too_large; /* records refused by insert: larger than max_batch_bytes (not in inserted) */
  char last_error[BF_ERROR_MESSAGE_MAX]; /* newest failure; a retry message is cleared
                                           once the server acknowledges again */
} bf_producer_stats_t;

typedef struct bf_producer bf_producer_t;

/* Parses the schema (client-side fingerprint), starts the thread. Does not contact
 * the server (register does). */
int bf_producer_create(const bf_producer_options_t *options, bf_producer_t **out, bf_error_t *err);
/* The table fingerprint (valid for the producer's lifetime). */
const char *bf_producer_fingerprint(const bf_producer_t *producer);
/* RegisterTable for the producer's table; status_out "created"/"already_exists". */
int bf_producer_register(bf_producer_t *producer, char status_out[32], bf_error_t *err);
/* Enqueues one record given as JSON (copied). BF_ECLOSED after shutdown; BF_EFULL
 * / BF_ETIMEOUT per backpressure policy; a dropped record returns BF_OK and is
 * counted; a record whose estimated size exceeds max_batch_bytes is BF_EINVAL
 * ("record too large", counted in too_large). Validation of the JSON happens on the thread (bad rows are counted as
 * failed). */
int bf_producer_insert_json(bf_producer_t *producer, const char *json, size_t len, bf_error_t *err);

/* Enqueues one record encoded as a binary row (see bf_batch_builder_append_row in
 * rows.h: one tagged value per user field, in schema order), copied. Same
 * semantics as bf_producer_insert_json; a row that does not fit the schema fails
 * on the thread and is counted as failed. The fastest way to insert from C. */
int bf_producer_insert_row(bf_producer_t *producer, const uint8_t *row, size_t len, bf_error_t *err);

/* Enqueues an Arrow record batch as rows: a struct array ("+s") of the table's
 * user columns in model order with exactly the table's Arrow types (the Python
 * layer casts), no nulls in required columns. On BF_OK ownership of *array moves to
 * the producer (array->release becomes NULL); the thread adds the system columns
 * and sends it as one InsertBatch. Type errors name the column. The batch counts
 * its rows against max_queue_rows and approx_bytes (its buffers' size) against
 * max_queue_bytes (a batch larger than a bound waits until nothing else is
 * outstanding). */
int bf_producer_insert_arrow(bf_producer_t *producer, const struct ArrowSchema *schema,
                             struct ArrowArray *array, size_t approx_bytes, bf_error_t *err);
/* The Arrow schema bf_producer_insert_arrow expects: a struct of the user columns. */
int bf_producer_user_arrow_schema(const bf_producer_t *producer, struct ArrowSchema *out,
                                  bf_error_t *err);
/* Blocks until every record inserted before the call is acknowledged or failed.
 * timeout_secs <= 0 waits forever. *n_flushed = rows acknowledged by this flush.
 * BF_ETIMEOUT on timeout; an error if any of those rows failed. */
int bf_producer_flush(bf_producer_t *producer, double timeout_secs, uint64_t *n_flushed,
                      bf_error_t *err);
/* Flushes, stops and joins the thread. Idempotent. timeout_secs <= 0 waits
 * forever. The rows it resolves count as flushed: a flush() after shutdown returns 0. */
int bf_producer_shutdown(bf_producer_t *producer, double timeout_secs, bf_error_t *err);
void bf_producer_get_stats(bf_producer_t *producer, bf_producer_stats_t *out);
/* Shuts down (if needed) and frees. */
void bf_producer_destroy(bf_producer_t *producer);

#endif /* BIFROST_PRODUCER_H */
