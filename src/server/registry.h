/* The table registry: which tables exist, their schema, partition columns and
 * fingerprint, persisted in the data directory as one file per table
 * (<data>/<catalog>/<schema_name>/<table>/_bifrost/table.json, created atomically
 * with create-if-absent so two servers on one data directory agree). Loaded by
 * scanning the data directory at start. The registry lock guards the table list;
 * each table's own mutex guards its Delta snapshot and serializes its writes. */
#ifndef BIFROST_SERVER_REGISTRY_H
#define BIFROST_SERVER_REGISTRY_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "bifrost/delta.h"
#include "bifrost/schema.h"

/* One schema a table has had (schema evolution keeps every one). Immutable once
 * listed in a table; freed with the table at bf_registry_close. */
#define BF_MAX_SCHEMA_VERSIONS 64
typedef struct bf_schema_version {
  char fingerprint[33];
  char *json_schema;              /* owned */
  bf_schema_t schema;             /* owned */
} bf_schema_version_t;

typedef struct bf_table {
  char catalog[BF_NAMESPACE_MAX_BYTES + 1];
  char schema_name[BF_NAMESPACE_MAX_BYTES + 1];
  char table[BF_NAMESPACE_MAX_BYTES + 1];
  char fqn[3 * BF_NAMESPACE_MAX_BYTES + 3];
  char dir[PATH_MAX];
  char *json_schema;              /* the current version's (borrowed from versions) */
  bf_schema_t schema;             /* the current version's (shallow copy; changes only under
                                     mu and the store's work mutex) */
  bf_schema_version_t *versions[BF_MAX_SCHEMA_VERSIONS]; /* [0] as created, last = current */
  size_t n_versions;              /* atomic: versions are listed, never removed */
  char **partition_columns;       /* owned; user partition columns (not the date) */
  size_t n_partition_columns;
  char fingerprint[33];
  int64_t created_at_ms;
  pthread_mutex_t mu;
  bf_delta_snapshot_t snapshot;   /* guarded by mu */
  int snapshot_loaded;            /* guarded by mu */
  struct bf_table_store *store;   /* write path state (table_store.c); guarded by mu */
  int dropped;                    /* its directory vanished; no longer listed; guarded by mu */
} bf_table_t;

typedef struct bf_registry {
  char data_dir[PATH_MAX];
  pthread_mutex_t mu;
  bf_table_t **tables; /* guarded by mu; entries live until bf_registry_close */
  size_t n_tables;
  bf_table_t **retired; /* guarded by mu; forgotten entries, freed at close */
  size_t n_retired;
  int scanned;         /* the scan at open is done */
} bf_registry_t;

/* Loads every table.json under data_dir (which must exist). A table whose entry
 * cannot be read is logged and skipped, never fatal. */
int bf_registry_open(bf_registry_t *registry, const char *data_dir, bf_error_t *err);
void bf_registry_close(bf_registry_t *registry);

/* Adds tables registered on disk since (e.g. by another server sharing the data
 * directory); returns how many. An unreadable entry is skipped quietly (it may be
 * being written). */
size_t bf_registry_rescan(bf_registry_t *registry);

/* The table, or NULL when not registered (or a name part is invalid). A table
 * registered on disk by another server sharing the data directory is loaded and
 * added on first lookup. Thread-safe; the returned entry lives until
 * bf_registry_close. */
bf_table_t *bf_registry_find(bf_registry_t *registry, const char *catalog,
                             const char *schema_name, const char *table);

/* Validates and registers a table (namespace parts, schema, partition columns).
 * client_fingerprint, when non-NULL and non-empty, must equal the fingerprint the
 * server computes from json_schema (else BF_EINVAL naming both: client and server
 * disagree on the algorithm or the schema text). Creates the Delta table (version
 * 0) and the registry file for a new table (*created = 1); an existing table with
 * the same fingerprint (or one of its registered schema versions) and partition
 * columns gives *created = 0; a different fingerprint or partition column list is
 * BF_EMISMATCH naming both. Losing a
 * create race against another server adopts the winner's entry. On failure *out
 * and *created are untouched. Thread-safe. */
int bf_registry_register(bf_registry_t *registry, const char *catalog, const char *schema_name,
                         const char *table, const char *json_schema,
                         const char *const *partition_columns, size_t n_partition_columns,
                         const char *client_fingerprint, bf_table_t **out, int *created,
                         bf_error_t *err);

/* The registered schema version with this fingerprint, or NULL. Lock-free. */
const bf_schema_version_t *bf_table_find_version(const bf_table_t *table, const char *fingerprint);
/* The current schema version. Lock-free. */
const bf_schema_version_t *bf_table_current_version(const bf_table_t *table);

/* Adds json_schema as the table's new current version (its partition columns must
 * still be valid) and rewrites the registry entry. The caller holds table->mu and
 * has checked that the change is allowed. BF_EFULL past BF_MAX_SCHEMA_VERSIONS. */
int bf_registry_add_version(bf_registry_t *registry, bf_table_t *table, const char *json_schema,
                            bf_error_t *err);

/* Stops listing the table (its directory is gone): lookups no longer find it and
 * it can be registered anew. The entry itself stays valid until
 * bf_registry_close, since other threads may still hold it. Thread-safe. */
void bf_registry_forget(bf_registry_t *registry, bf_table_t *table);

/* How snapshots read checkpoint Parquet files (the server passes its engine);
 * without it snapshots replay the JSON commits only. Set once at start. */
void bf_registry_set_checkpoint_reader(bf_delta_checkpoint_reader_fn reader, void *ctx);

/* Snapshot of the table's Delta log, loaded on first use (no-op once loaded).
 * Caller holds table->mu. */
int bf_table_ensure_snapshot(bf_table_t *table, bf_error_t *err);

#endif
