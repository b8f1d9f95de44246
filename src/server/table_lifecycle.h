/* A table's life after creation: its history, reading it as of an older version,
 * truncating it (one commit removing every live file; history kept) and dropping
 * it (registry entry, view, WAL and files removed; the name can be registered
 * again and starts clean). */
#ifndef BIFROST_SERVER_TABLE_LIFECYCLE_H
#define BIFROST_SERVER_TABLE_LIFECYCLE_H

#include <stdint.h>

#include "bifrost/delta.h"
#include "server/table_store.h"

/* The commits still in the table's log, oldest first (*out malloc'd). */
int bf_store_history(bf_store_t *store, bf_table_t *t, bf_delta_version_info_t **out, size_t *n,
                     bf_error_t *err);

/* Time travel: a query names "<table>@v<N>" in the table's catalog and schema.
 * Splits such a name: 1 with *version set and the table part copied to base
 * (cap bytes), 0 when the name is not of that form. */
int bf_store_parse_version_name(const char *name, char *base, size_t cap, int64_t *version);

/* Creates (or replaces) the view catalog.schema_name."<table>@v<N>" over the
 * files live at version N, never the tail, and counts the caller as its user
 * (its full name goes to used, cap bytes); release it with
 * bf_store_version_view_release once the query is done (the last user drops it).
 * BF_ENOTFOUND when the version does not exist or its log was cleaned up; an
 * error naming vacuum when its files are gone. */
int bf_store_version_view(bf_store_t *store, bf_table_t *t, int64_t version, char *used,
                          size_t cap, bf_error_t *err);
void bf_store_version_view_release(bf_store_t *store, const char *used);

/* Flushes the acknowledged tail, then commits the removal of every live file
 * (operation DELETE). *version is the new version (the current one when the table
 * had no files). Rows acknowledged after the flush stay. */
int bf_store_truncate(bf_store_t *store, bf_table_t *t, int64_t *version, int64_t *files_removed,
                      int64_t *rows_removed, bf_error_t *err);

/* Drops the table: flushes its tail first unless discard_wal (a failing flush
 * aborts the drop), then forgets it (tails, WAL segments, view, registry entry)
 * and deletes its directory. *rows_discarded: acknowledged rows not flushed. */
int bf_store_drop(bf_store_t *store, bf_table_t *t, int discard_wal, int64_t *rows_discarded,
                  int64_t *files_deleted, bf_error_t *err);

#endif
