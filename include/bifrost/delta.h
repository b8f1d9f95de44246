/* Delta Lake transaction log, written and read by our own C code (PROTOCOL.md):
 * version 0 holds protocol + metaData; each data commit holds commitInfo (blind
 * append), add actions with partitionValues and stats, and optionally a txn action
 * (appId = producer id, version = batch sequence) for exactly-once. Commits are
 * created with bf_fs_write_new_file (create-if-absent); on a lost race the caller
 * re-reads and retries at the next version. */
#ifndef BIFROST_DELTA_H
#define BIFROST_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/error.h"
#include "bifrost/schema.h"

/* One data file, as recorded in an `add` action. */
typedef struct bf_delta_file {
  char *path;                  /* owned; relative to the table root, NOT URI-encoded */
  char **partition_values;     /* owned; n_partition_values strings, NULL = null */
  size_t n_partition_values;   /* same order as the table's partition columns */
  int64_t size_bytes;
  int64_t modification_time_ms;
  int64_t num_records;
  char *stats_json;            /* owned; Delta stats JSON text (may be NULL) */
  /* CRC-32C of the file's bytes as 8 hex digits, "" when unknown (files of other
   * writers). Kept in the add action's tags as "bifrost.crc32c", which other
   * readers ignore. */
  char crc32c[9];
} bf_delta_file_t;

#define BF_DELTA_TAG_CRC32C "bifrost.crc32c"

void bf_delta_file_reset(bf_delta_file_t *file);

/* Delta schemaString for a bf_schema_t (system columns included; str/enum ->
 * string, int -> long, float -> double, datetime -> timestamp, date -> date, list
 * -> array, struct -> struct). malloc'd. */
int bf_delta_schema_string(const bf_schema_t *schema, char **out, bf_error_t *err);

/* Creates the table log at version 0 (protocol 1/2, metaData with a fresh id,
 * partitionColumns = scouter_partition_date then `partition_columns`). BF_EEXIST if
 * the table already has a version 0. Creates <table_dir>/_delta_log. */
int bf_delta_log_create(const char *table_dir, const bf_schema_t *schema,
                        const char *const *partition_columns, size_t n_partition_columns,
                        bf_error_t *err);

/* Snapshot of a table from replaying its log. */
typedef struct bf_delta_snapshot {
  int64_t version;               /* latest version, -1 if no log */
  char *protocol_json;           /* owned; the protocol action's object, compact JSON */
  char *metadata_json;           /* owned; the metaData action's object, compact JSON */
  char *schema_string;           /* owned */
  char **partition_columns;      /* owned */
  size_t n_partition_columns;
  bf_delta_file_t *files;        /* owned; live files (added, not removed) */
  size_t n_files;
  int64_t *file_slots;           /* owned; hash of files by path (-1 empty, -2 deleted) */
  size_t n_file_slots, n_slots_used;
  size_t files_cap;              /* allocated entries of files */
  char **tombstones;             /* owned; paths removed since the log's start or checkpoint */
  int64_t *tombstone_times_ms;   /* their deletionTimestamp */
  size_t n_tombstones;
  char **txn_app_ids;            /* owned; parallel arrays: appId -> last version */
  int64_t *txn_versions;
  size_t n_txns;
  size_t txns_cap;               /* allocated length of the two arrays */
  int64_t *txn_slots;            /* owned; hash of txns by appId (-1 empty): lookups stay
                                    O(1) with one appId per batch (scouter endpoint) */
  size_t n_txn_slots;
} bf_delta_snapshot_t;

/* One `add` action as a checkpoint reader finds it in typed columns. Nothing is
 * taken over: what the snapshot keeps is copied. */
typedef struct bf_delta_add_action {
  const char *path;                    /* as written in the log: URI-encoded */
  const char *const *partition_keys;   /* the partitionValues map: keys ... */
  const char *const *partition_values; /* ... and their values (NULL or "" = null) */
  size_t n_partition_entries;
  int64_t size_bytes;
  int64_t modification_time_ms;
  const char *stats_json;              /* may be NULL */
  const char *crc32c;                  /* tags["bifrost.crc32c"]; may be NULL */
} bf_delta_add_action_t;

/* Applies newline-delimited JSON actions (protocol, metaData, txn, add, remove;
 * others ignored) to a snapshot; source names them in errors. */
int bf_delta_snapshot_apply_json(bf_delta_snapshot_t *snapshot, const char *text, size_t len,
                                 const char *source, bf_error_t *err);
/* Applies one add action; the metaData action (partition columns) comes first. */
int bf_delta_snapshot_apply_add(bf_delta_snapshot_t *snapshot, const bf_delta_add_action_t *add,
                                bf_error_t *err);

/* Reads a checkpoint Parquet file into `into` (empty, version -1) through
 * bf_delta_snapshot_apply_json / _apply_add, protocol and metaData first.
 * Parquet is not read by this library: the server passes its DuckDB engine in. */
typedef int (*bf_delta_checkpoint_reader_fn)(void *ctx, const char *path,
                                             bf_delta_snapshot_t *into, bf_error_t *err);

/* Replays <table_dir>/_delta_log: from the newest checkpoint named by
 * _last_checkpoint when read_checkpoint is given (falling back to the JSON commits
 * when it cannot be read), then the JSON commits after it. A gap or corrupt commit
 * is BF_ECORRUPT. BF_ENOTFOUND when there is no log. */
int bf_delta_snapshot_load(const char *table_dir, bf_delta_snapshot_t *out, bf_error_t *err);
int bf_delta_snapshot_load_with(const char *table_dir, bf_delta_checkpoint_reader_fn read_checkpoint,
                                void *ctx, bf_delta_snapshot_t *out, bf_error_t *err);
/* Applies commits newer than snapshot->version that other writers made; *advanced
 * (may be NULL) tells whether there were any. */
int bf_delta_snapshot_refresh(const char *table_dir, bf_delta_snapshot_t *snapshot, int *advanced,
                              bf_error_t *err);
void bf_delta_snapshot_reset(bf_delta_snapshot_t *snapshot);
/* Last txn version recorded for app_id, or -1. */
int64_t bf_delta_snapshot_txn_version(const bf_delta_snapshot_t *snapshot, const char *app_id);

/* Whether this server may commit to the table as the snapshot describes it: an
 * append needs every writer feature to be one a blind append of plain files
 * satisfies (no column mapping, row tracking, in-commit timestamps, constraints,
 * invariants, generated or identity columns); a rewrite (compaction) also needs
 * reader version 1 (no deletion vectors). BF_EINVAL with the reason otherwise. */
int bf_delta_snapshot_check_append(const bf_delta_snapshot_t *snapshot, bf_error_t *err);
int bf_delta_snapshot_check_rewrite(const bf_delta_snapshot_t *snapshot, bf_error_t *err);

/* Appends a commit with the given add actions (and a txn action when app_id is
 * non-NULL) at version snapshot->version + 1, retrying at later versions when
 * another writer wins the race (re-reading the commits it missed). On success
 * updates snapshot (version, files, txn) and sets *out_version. If a concurrent
 * commit already recorded app_id with version >= txn_version, returns BF_EEXIST
 * without committing (the batch was applied already). */
int bf_delta_log_append(const char *table_dir, bf_delta_snapshot_t *snapshot,
                        const bf_delta_file_t *files, size_t n_files, const char *app_id,
                        int64_t txn_version, int64_t *out_version, bf_error_t *err);

/* A general commit: add and remove actions plus txn actions for several
 * producers. Appends use operation "WRITE" and data_change = 1; compaction uses
 * "OPTIMIZE" and data_change = 0 (same rows, new files). On a lost race the
 * missed commits are read and the commit retried at the next version, unless one
 * of them removed a file this commit removes or changed the metadata
 * (BF_ECONFLICT, nothing committed). A txn version never goes backwards: the
 * larger of the given and the recorded version is written. */
typedef struct bf_delta_commit {
  const char *operation;
  int data_change;
  const bf_delta_file_t *adds;
  size_t n_adds;
  const char *const *removes;     /* paths of live files */
  size_t n_removes;
  const char *const *txn_app_ids;
  const int64_t *txn_versions;
  size_t n_txns;
  /* Non-NULL: the commit also writes the current metaData with this schemaString
   * (schema evolution; same table id, partitioning and configuration). */
  const char *schema_string;
  /* Non-NULL: written as commitInfo.txnId, so a writer whose commit failed with an
   * unknown outcome (the store did not answer) can find out later whether it landed
   * (bf_delta_log_find_commit). */
  const char *txn_id;
} bf_delta_commit_t;

int bf_delta_log_commit(const char *table_dir, bf_delta_snapshot_t *snapshot,
                        const bf_delta_commit_t *commit, int64_t *out_version, bf_error_t *err);

/* True for a commit failure whose outcome is unknown: the commit file may exist
 * (BF_EEXIST and BF_ECONFLICT are definite: another writer's commit is there). */
int bf_delta_commit_outcome_unknown(int status);

/* Looks for the commit whose commitInfo.txnId is txn_id among versions
 * after_version+1 .. through_version; *found_version = its version or -1. */
int bf_delta_log_find_commit(const char *table_dir, int64_t after_version, int64_t through_version,
                             const char *txn_id, int64_t *found_version, bf_error_t *err);

/* ---- history and time travel (delta_history.c) ------------------------------- */

/* What one commit did, from its commitInfo and actions. */
typedef struct bf_delta_version_info {
  int64_t version;
  int64_t timestamp_ms;
  char operation[64];          /* commitInfo operation: CREATE TABLE, WRITE, OPTIMIZE, DELETE */
  int64_t rows_added;          /* numRecords of adds with dataChange */
  int64_t rows_removed;        /* operationMetrics numDeletedRows (DELETE), else 0 */
  int64_t files_added, files_removed;
  int64_t schema_version;      /* metaData actions before and at it, minus one; -1 unknown */
  int data_change;             /* some action changed data (not a compaction) */
} bf_delta_version_info_t;

/* The commits still in _delta_log, oldest first (*out malloc'd). */
int bf_delta_history(const char *table_dir, bf_delta_version_info_t **out, size_t *n,
                     bf_error_t *err);

/* The table as it was at `version`: replayed from the newest checkpoint at or
 * before it (read with read_checkpoint, may be NULL) or from commit 0. BF_ENOTFOUND
 * when the version does not exist yet or its commits were cleaned up; BF_EINVAL
 * for a negative version. */
int bf_delta_snapshot_load_at(const char *table_dir, int64_t version,
                              bf_delta_checkpoint_reader_fn read_checkpoint, void *ctx,
                              bf_delta_snapshot_t *out, bf_error_t *err);

/* ---- checkpoints and log cleanup --------------------------------------------- */

/* The snapshot's state as newline-delimited JSON actions (protocol, metaData, one
 * txn per producer, one add per live file, a remove per tombstone younger than 30
 * days): the content of a checkpoint. */
int bf_delta_snapshot_actions(const bf_delta_snapshot_t *snapshot, char **out, size_t *out_len,
                              size_t *n_actions, bf_error_t *err);

/* Path of the classic checkpoint file for version. */
void bf_delta_checkpoint_path(const char *table_dir, int64_t version, char *out, size_t cap);

/* Writes _delta_log/_last_checkpoint ({"version":v,"size":n,"sizeInBytes":b,
 * "numOfAddFiles":a}; the last two left out when negative) atomically. size is
 * the checkpoint's number of actions, size_in_bytes its file size. */
int bf_delta_last_checkpoint_write(const char *table_dir, int64_t version, int64_t size,
                                   int64_t size_in_bytes, int64_t num_add_files, bf_error_t *err);
/* Version named by _last_checkpoint, or -1 when there is none. */
int64_t bf_delta_last_checkpoint_version(const char *table_dir);

/* Deletes commit files and older checkpoints that precede the newest checkpoint
 * and are older than retention_ms (by modification time); the newest checkpoint
 * and everything after it always stay. *n_deleted receives the count. */
int bf_delta_log_cleanup(const char *table_dir, int64_t retention_ms, size_t *n_deleted,
                         bf_error_t *err);

#endif /* BIFROST_DELTA_H */
