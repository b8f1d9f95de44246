/* The storage interface (storage.h): each call goes to the local filesystem or to
 * S3 by the location's scheme. */
#include "storage/storage.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/util.h"
#include "storage/storage_local.h"
#include "storage/storage_s3.h"

bool bf_storage_is_s3(const char *location) {
  return location != NULL && strncmp(location, "s3://", 5) == 0;
}

int bf_storage_read(const char *location, char **out, size_t *out_size, bf_error_t *err) {
  if (bf_storage_is_s3(location)) return bf_s3_read(location, out, out_size, err);
  return bf_fs_read_file(location, out, out_size, err);
}

int bf_storage_write_new(const char *location, const void *data, size_t size, bf_error_t *err) {
  if (bf_storage_is_s3(location)) return bf_s3_write(location, data, size, true, err);
  return bf_fs_write_new_file(location, data, size, err);
}

int bf_storage_write_replace(const char *location, const void *data, size_t size,
                             bf_error_t *err) {
  if (bf_storage_is_s3(location)) return bf_s3_write(location, data, size, false, err);
  return bf_fs_write_replace_file(location, data, size, err);
}

int bf_storage_stat(const char *location, int64_t *size, int64_t *mtime_s, bf_error_t *err) {
  if (bf_storage_is_s3(location)) return bf_s3_stat(location, size, mtime_s, err);
  return bf_local_stat(location, size, mtime_s, err);
}

int bf_storage_delete(const char *location, bf_error_t *err) {
  if (bf_storage_is_s3(location)) return bf_s3_delete(location, err);
  return bf_local_delete(location, err);
}

int bf_storage_list(const char *dir, const char *start_after, bf_storage_list_t *out,
                    bf_error_t *err) {
  *out = (bf_storage_list_t){0};
  int status = bf_storage_is_s3(dir) ? bf_s3_list(dir, start_after, out, err)
                                     : bf_local_list(dir, start_after, out, err);
  if (status != BF_OK) bf_storage_list_free(out);
  return status;
}

void bf_storage_list_free(bf_storage_list_t *list) {
  if (list == NULL) return;
  for (size_t i = 0; i < list->len; i++) free(list->items[i].name);
  free(list->items);
  *list = (bf_storage_list_t){0};
}

int bf_storage_rename(const char *from, const char *to, bf_error_t *err) {
  if (bf_storage_is_s3(from) != bf_storage_is_s3(to))
    return bf_error_set(err, BF_EINVAL, "cannot move %s to %s: different stores", from, to);
  if (!bf_storage_is_s3(from)) return bf_local_rename(from, to, err);
  BF_RETURN_NOT_OK(bf_s3_copy(from, to, err));
  return bf_s3_delete(from, err);
}

int bf_storage_root(const char *dir, char *out, bf_error_t *err) {
  if (!bf_storage_is_s3(dir)) {
    if (realpath(dir, out) == NULL)
      return bf_error_set(err, BF_EIO, "data directory %s is not accessible", dir);
    return BF_OK;
  }
  size_t len = strlen(dir);
  while (len > 5 && dir[len - 1] == '/') len--; /* paths join with "/" */
  if (len >= PATH_MAX) return bf_error_set(err, BF_EINVAL, "data directory %s is too long", dir);
  memcpy(out, dir, len);
  out[len] = '\0';
  return BF_OK;
}

int bf_storage_mkdirs(const char *dir, bf_error_t *err) {
  if (bf_storage_is_s3(dir)) return BF_OK;
  return bf_fs_mkdirs(dir, err);
}
