/* Table-file storage: the one interface through which the server reads and writes
 * the files of a data directory (registry entries, Delta log, leases, listings of
 * data files), whether the data directory is a local path or an S3 prefix.
 *
 * A location is either a local path ("/data/cat/sch/tbl/_delta_log/0.json") or an
 * S3 URL ("s3://bucket/prefix/cat/sch/tbl/_delta_log/0.json"); every call picks its
 * implementation from the location (storage_local.c, storage_s3.c), so code that
 * joins paths with "/" works unchanged for both. Parquet data files are written
 * and read by DuckDB itself (httpfs on S3); this interface handles the rest.
 *
 * Errors: BF_ENOTFOUND (no such object), BF_EEXIST (put-if-absent lost),
 * BF_EUNAVAILABLE (the store did not answer after retries), BF_EPERM (credentials
 * refused), BF_EFULL (local disk full), BF_EIO otherwise. Thread-safe. */
#ifndef BIFROST_STORAGE_H
#define BIFROST_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bifrost/error.h"

typedef struct {
  char *name;      /* relative to the listed directory, no slash */
  int64_t size;    /* bytes; 0 for a directory */
  int64_t mtime_s; /* modification time, seconds since the epoch */
  bool is_dir;     /* a sub-directory (an S3 common prefix) */
  int64_t mtime_ms; /* the same to the millisecond where the store says it; 0 = unknown */
} bf_storage_entry_t;

typedef struct {
  bf_storage_entry_t *items; /* sorted by name (byte order) */
  size_t len;
  size_t cap;
} bf_storage_list_t;

/* True for "s3://..." locations. */
bool bf_storage_is_s3(const char *location);

/* Whole object into a NUL-terminated malloc'd buffer (size excludes the NUL). */
int bf_storage_read(const char *location, char **out, size_t *out_size, bf_error_t *err);

/* Creates the object only if it does not exist (BF_EEXIST otherwise), atomically
 * and durably: local = temp + fsync + link(2); S3 = PUT with If-None-Match: *. */
int bf_storage_write_new(const char *location, const void *data, size_t size, bf_error_t *err);

/* Creates or replaces the object atomically and durably. */
int bf_storage_write_replace(const char *location, const void *data, size_t size,
                             bf_error_t *err);

/* Size and modification time; BF_ENOTFOUND when absent. Either out may be NULL. */
int bf_storage_stat(const char *location, int64_t *size, int64_t *mtime_s, bf_error_t *err);

/* Removes one object (a file, not a directory); absent is not an error. */
int bf_storage_delete(const char *location, bf_error_t *err);

/* Immediate children of a directory, sorted by name; names <= start_after (when
 * not NULL) are skipped (S3: one ListObjectsV2 with start-after, paginated). A
 * directory that does not exist lists empty. Local listings skip "." and "..". */
int bf_storage_list(const char *dir, const char *start_after, bf_storage_list_t *out,
                    bf_error_t *err);
void bf_storage_list_free(bf_storage_list_t *list);

/* Moves an object (local: rename(2); S3: server-side copy, then delete). */
int bf_storage_rename(const char *from, const char *to, bf_error_t *err);

/* The form of a data directory every other location is joined to: a local one
 * resolved to its absolute path (BF_EIO when it is not accessible), an S3 one
 * without trailing slashes (BF_EINVAL when too long). out holds PATH_MAX bytes. */
int bf_storage_root(const char *dir, char *out, bf_error_t *err);

/* Local: creates the directory and its parents. S3: nothing to do. */
int bf_storage_mkdirs(const char *dir, bf_error_t *err);

#endif /* BIFROST_STORAGE_H */
