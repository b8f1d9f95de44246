/* The table write path and its upkeep: durable acknowledgements through the WAL,
 * the acknowledged tail that queries see at once, the background writer that
 * turns the tail into large Parquet files (one Delta commit per flush), and
 * maintenance: checkpoints, compaction, vacuum and log cleanup.
 *
 * Each table's unflushed rows live in generations: a generation is one WAL
 * segment (the durable copy, <table>/_bifrost/wal/NNN.wal) plus one engine tail
 * (the queryable copy). Inserts go to the newest generation; a flush seals it,
 * writes the older ones to Parquet, commits them with the producers' txn
 * versions, swaps files for tail in the view in one transaction, then deletes
 * the segment. At start, segments no live process holds are replayed (already
 * committed batches are skipped by their txn versions). */
#ifndef BIFROST_SERVER_TABLE_STORE_H
#define BIFROST_SERVER_TABLE_STORE_H

#include <stdint.h>

#include "bifrost/arrow.h"
#include "engine/engine.h"
#include "server/registry.h"

typedef struct bf_store_options {
  int64_t flush_rows;              /* seal and write a generation at this many rows */
  int64_t flush_bytes;             /* ... or this many bytes of received Arrow IPC */
  double flush_interval_secs;      /* ... or when its first row is this old */
  int checkpoint_interval;         /* commits between checkpoints; 0 = never */
  int compact_min_files;           /* small files in a partition that trigger compaction; 0 = never */
  int64_t compact_target_bytes;    /* files below half of this are small */
  double vacuum_retention_hours;   /* unreferenced files older than this are deleted; < 0 = never */
  double log_retention_hours;      /* commits older than this and before a checkpoint go */
  double maintenance_interval_secs;/* automatic maintenance period; 0 = off */
  int64_t max_batch_bytes;         /* WAL records decoding to more are quarantined at replay */
  int unsafe_short_retention;      /* vacuum retentions below BF_MIN_SAFE_RETENTION_HOURS allowed */
  int64_t max_tail_bytes;          /* decoded bytes acknowledged but not flushed, all tables;
                                      inserts beyond it get BF_EFULL; 0 = unbounded */
  char wal_dir[4096];              /* WAL segments live under here (one directory per table);
                                      "" = inside each table's directory (local data dirs) */
  int ack_on_commit;               /* acknowledge an insert only once a Delta commit holds it */
  double commit_interval_secs;     /* ack_on_commit: group commit period */
  double shared_flush_interval_secs; /* while another server writes the same table, flush at
                                      least this often, so its readers see our rows */
  int max_backlog_waiters;         /* inserts (server-wide) that may wait at once for a
                                      writer that is behind; the rest go on without waiting,
                                      so waits never hold every RPC worker */
} bf_store_options_t;

void bf_store_options_default(bf_store_options_t *options);

/* Vacuum retentions below this need the server's explicit opt-in. */
#define BF_MIN_SAFE_RETENTION_HOURS 1.0

typedef struct bf_store bf_store_t;

/* Starts the background writer. The registry and engine must outlive the store. */
int bf_store_create(bf_registry_t *registry, bf_engine_t *engine, const bf_store_options_t *options,
                    bf_store_t **out, bf_error_t *err);
/* Stops the background writer and flushes every table (a clean shutdown leaves no
 * WAL behind; what cannot be flushed stays in the WAL for the next start). */
void bf_store_destroy(bf_store_t *store);

/* Loads the table's snapshot, replays orphaned WAL segments into its tail and
 * publishes its view. No-op when open. Caller holds t->mu. */
int bf_store_open_table(bf_store_t *store, bf_table_t *t, bf_error_t *err);

/* Makes the generation the next insert goes to (WAL segment, tail, view) if the open
 * table has none: a producer that registers is about to insert, and this keeps the
 * work off that insert's acknowledgement path. A failure is left for the insert to
 * meet and report. Caller holds t->mu. */
void bf_store_prepare_inserts(bf_store_t *store, bf_table_t *t);

/* Opens every registered table not opened yet (at start, and when a rescan finds
 * tables another server registered); one that fails is logged and left
 * unqueryable, the others still open. Takes each table's mutex. */
void bf_store_open_tables(bf_store_t *store);

typedef struct bf_store_insert {
  const char *producer_id;          /* NULL = no exactly-once */
  int64_t sequence;
  int64_t after_sequence;           /* 0, or this producer's batch that must be stored first */
  const uint8_t *ipc;               /* the batch as received (stored in the WAL) */
  size_t ipc_len;
  const struct ArrowSchema *schema; /* decoded from ipc and checked against the table */
  struct ArrowArray *batches;       /* moved into the tail on success (release cleared) */
  size_t n_batches;
  uint64_t rows;
  int64_t decoded_bytes;            /* bf_arrow_decoded_size of the batches */
} bf_store_insert_t;

/* Applies a checked batch: WAL append + group-commit fsync, then the tail. On
 * BF_OK the rows are durable and visible to queries. *duplicate is set when the
 * producer's sequence was applied before (nothing done). *version receives the
 * table's committed Delta version. Takes t->mu itself. */
int bf_store_insert(bf_store_t *store, bf_table_t *t, const bf_store_insert_t *in, int *duplicate,
                    int64_t *version, bf_error_t *err);

/* Decoded bytes acknowledged but not yet flushed, all tables. Thread-safe. */
int64_t bf_store_tail_bytes(const bf_store_t *store);

/* Rows acknowledged but not yet committed to Delta. Caller holds t->mu. */
int64_t bf_store_tail_rows(const bf_table_t *t);

enum {
  BF_MAINT_FLUSH = 1,
  BF_MAINT_CHECKPOINT = 2,
  BF_MAINT_OPTIMIZE = 4,
  BF_MAINT_VACUUM = 8,
  BF_MAINT_CLEANUP_LOG = 16,
  BF_MAINT_VERIFY = 32,
};

typedef struct bf_store_result {
  int64_t version;            /* table version after the operations */
  int64_t rows_flushed;
  int64_t files_added;        /* by compaction */
  int64_t files_removed;      /* by compaction (logically; on disk until vacuum) */
  int64_t files_deleted;      /* by vacuum */
  int64_t log_files_deleted;  /* by log cleanup */
  int64_t checkpoint_version; /* newest checkpoint, -1 if none */
  int64_t files_verified;     /* by verify */
  char **bad_files;           /* by verify: "path: reason", owned (bf_store_result_reset) */
  size_t n_bad_files;
} bf_store_result_t;

void bf_store_result_reset(bf_store_result_t *result);

/* Runs the operations (BF_MAINT_* bits) in the order flush, optimize, checkpoint,
 * verify, vacuum, log cleanup. retention_hours < 0 uses the configured retention (vacuum
 * and log cleanup). Explicit optimize compacts any partition with 2+ small files. */
int bf_store_maintain(bf_store_t *store, bf_table_t *t, unsigned operations,
                      double retention_hours, bf_store_result_t *out, bf_error_t *err);

#endif
