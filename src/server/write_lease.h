/* Write leases: how a writer (flush or compaction, on any server sharing the
 * data directory) tells vacuum that files it is writing may still be committed.
 *
 * A lease is a file <table>/_bifrost/leases/<start-us>-<uuid>.lease, flock'd by
 * its writer for as long as it lives. A writer takes one before writing its
 * first data file and releases it after the commit that references them (or
 * after removing them). Vacuum reads the oldest live lease *before* it re-reads
 * the log and protects every unreferenced file modified after that lease began;
 * a lease whose lock nobody holds belongs to a dead writer and is removed.
 * This makes a retention of 0 safe: a file is either committed before vacuum
 * reads the log, or written under a lease vacuum sees, or written after vacuum
 * started (newer than its cutoff).
 *
 * On S3 a lease is an empty object of the same name. Without a lock, a lease
 * object older than an hour is taken for a dead writer's; a writer checks its
 * lease before the commit (bf_write_lease_check; flush and compaction) and gives up
 * past 50 minutes. */
#ifndef BIFROST_SERVER_WRITE_LEASE_H
#define BIFROST_SERVER_WRITE_LEASE_H

#include <stdint.h>

#include "bifrost/error.h"

typedef struct bf_write_lease bf_write_lease_t;

/* Creates and locks a lease in table_dir (durably: file and directory synced). */
int bf_write_lease_take(const char *table_dir, bf_write_lease_t **out, bf_error_t *err);

/* BF_ETIMEOUT when the lease is too old to commit under (object leases only). */
int bf_write_lease_check(const bf_write_lease_t *lease, bf_error_t *err);

/* Removes the lease file and unlocks it. NULL is a no-op. Cannot fail. */
void bf_write_lease_release(bf_write_lease_t *lease);

/* Start time (ms since the epoch) of the oldest lease a live writer holds in
 * table_dir, INT64_MAX when none, INT64_MIN when the leases cannot be listed;
 * stale leases are removed on the way. */
int64_t bf_write_lease_oldest_ms(const char *table_dir);

#endif
