/* Local-filesystem side of the storage interface (storage.h): the atomic file
 * writes of util/fs.c, stat, unlink, rename and sorted directory listings. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bifrost/util.h"
#include "storage/storage_local.h"

int bf_local_stat(const char *path, int64_t *size, int64_t *mtime_s, bf_error_t *err) {
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return bf_error_set(err, BF_ENOTFOUND, "%s: not found", path);
    return bf_error_set(err, BF_EIO, "stat %s: %s", path, strerror(errno));
  }
  if (size) *size = S_ISDIR(st.st_mode) ? 0 : (int64_t)st.st_size;
  if (mtime_s) *mtime_s = (int64_t)st.st_mtime;
  return BF_OK;
}

int bf_local_delete(const char *path, bf_error_t *err) {
  if (unlink(path) != 0 && errno != ENOENT)
    return bf_error_set(err, BF_EIO, "cannot delete %s: %s", path, strerror(errno));
  return BF_OK;
}

int bf_local_rename(const char *from, const char *to, bf_error_t *err) {
  if (rename(from, to) != 0)
    return bf_error_set(err, errno == ENOENT ? BF_ENOTFOUND : BF_EIO, "cannot move %s to %s: %s",
                        from, to, strerror(errno));
  return BF_OK;
}

int bf_storage_list_push(bf_storage_list_t *list, const char *name, int64_t size, int64_t mtime_s,
                         bool is_dir) {
  if (list->len == list->cap) {
    size_t cap = list->cap ? list->cap * 2 : 16;
    bf_storage_entry_t *items = realloc(list->items, cap * sizeof *items);
    if (items == NULL) return BF_ENOMEM;
    list->items = items;
    list->cap = cap;
  }
  char *copy = strdup(name);
  if (copy == NULL) return BF_ENOMEM;
  list->items[list->len++] = (bf_storage_entry_t){copy, size, mtime_s, is_dir, 0};
  return BF_OK;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const bf_storage_entry_t *)a)->name, ((const bf_storage_entry_t *)b)->name);
}

void bf_storage_list_sort(bf_storage_list_t *list) {
  if (list->len > 1) qsort(list->items, list->len, sizeof *list->items, by_name);
}

int bf_local_list(const char *dir, const char *start_after, bf_storage_list_t *out,
                  bf_error_t *err) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    if (errno == ENOENT || errno == ENOTDIR) return BF_OK;
    return bf_error_set(err, BF_EIO, "cannot list %s: %s", dir, strerror(errno));
  }
  int status = BF_OK;
  struct dirent *e;
  while (status == BF_OK && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (start_after && strcmp(e->d_name, start_after) <= 0) continue;
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(path, &st) != 0) continue; /* removed meanwhile */
    if (S_ISLNK(st.st_mode)) continue;   /* never follow links planted in the data dir */
    status = bf_storage_list_push(out, e->d_name, S_ISDIR(st.st_mode) ? 0 : (int64_t)st.st_size,
                                  (int64_t)st.st_mtime, S_ISDIR(st.st_mode));
    if (status != BF_OK) bf_error_set(err, status, "out of memory");
    else out->items[out->len - 1].mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
  }
  closedir(d);
  if (status == BF_OK) bf_storage_list_sort(out);
  return status;
}
