/* Local-filesystem implementation of storage.h, and list helpers shared with the
 * S3 side. Internal to the storage area. */
#ifndef BIFROST_STORAGE_LOCAL_H
#define BIFROST_STORAGE_LOCAL_H

#include "storage/storage.h"

int bf_local_stat(const char *path, int64_t *size, int64_t *mtime_s, bf_error_t *err);
int bf_local_delete(const char *path, bf_error_t *err);
int bf_local_rename(const char *from, const char *to, bf_error_t *err);
int bf_local_list(const char *dir, const char *start_after, bf_storage_list_t *out,
                  bf_error_t *err);

/* Appends a copy of name (BF_ENOMEM on failure); sorts by name. */
int bf_storage_list_push(bf_storage_list_t *list, const char *name, int64_t size, int64_t mtime_s,
                         bool is_dir);
void bf_storage_list_sort(bf_storage_list_t *list);

#endif
