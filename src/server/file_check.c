/* Data file integrity and removal (see table_store_internal.h): every file the server writes
 * is read back once before the commit that names it, to check it is there with
 * the size DuckDB reported and to record its CRC-32C in the add action's tags;
 * `verify` maintenance and compaction (before it rewrites a file) compare the
 * file with that checksum, so bit rot is found instead of served or copied. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bifrost/wal.h"
#include "server/table_store_internal.h"
#include "storage/storage.h"

/* CRC-32C of the file's bytes, and its size. */
static int file_crc(const char *path, uint32_t *crc, int64_t *size, char *why, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(why, cap, "cannot open it: %s", strerror(errno));
    return -1;
  }
  static const size_t chunk = 1 << 20;
  uint8_t *buf = malloc(chunk);
  uint32_t c = 0;
  int64_t total = 0;
  ssize_t got = 0;
  while (buf && (got = read(fd, buf, chunk)) > 0) {
    c = bf_crc32c(c, buf, (size_t)got);
    total += got;
  }
  int e = errno;
  close(fd);
  free(buf);
  if (buf == NULL || got < 0) {
    snprintf(why, cap, "cannot read it: %s", buf ? strerror(e) : "out of memory");
    return -1;
  }
  *crc = c;
  *size = total;
  return 0;
}

int bf__store_seal_files(const bf_table_t *t, bf_delta_file_t *files, size_t n, bf_error_t *err) {
  for (size_t i = 0; i < n; i++) {
    char path[PATH_MAX * 2], why[256];
    snprintf(path, sizeof path, "%s/%s", t->dir, files[i].path);
    uint32_t crc = 0;
    int64_t size;
    if (bf_storage_is_s3(path)) {
      /* S3 checks each upload's body itself; reading it back would double the
       * transfer. One HEAD confirms it is there with its size; no CRC tag. */
      bf_error_t head;
      bf_error_init(&head);
      if (bf_storage_stat(path, &size, NULL, &head) != BF_OK)
        return bf_error_set(err, head.status == BF_ENOTFOUND ? BF_EIO : head.status,
                            "data file %s, written for this commit: %s; not committing",
                            files[i].path, head.message);
    } else if (file_crc(path, &crc, &size, why, sizeof why) != 0)
      return bf_error_set(err, BF_EIO, "data file %s, written for this commit: %s; not committing",
                          files[i].path, why);
    if (size != files[i].size_bytes)
      return bf_error_set(err, BF_EIO, "data file %s has %lld bytes, %lld were written; not "
                          "committing", files[i].path, (long long)size,
                          (long long)files[i].size_bytes);
    if (!bf_storage_is_s3(path)) snprintf(files[i].crc32c, sizeof files[i].crc32c, "%08x", crc);
  }
  return BF_OK;
}

int bf__store_file_intact(const bf_table_t *t, const bf_delta_file_t *f, char *why, size_t cap) {
  char path[PATH_MAX * 2];
  snprintf(path, sizeof path, "%s/%s", t->dir, f->path);
  if (bf_storage_is_s3(path)) { /* size only: see bf__store_seal_files */
    int64_t size = 0;
    bf_error_t head;
    bf_error_init(&head);
    if (bf_storage_stat(path, &size, NULL, &head) != BF_OK) {
      snprintf(why, cap, "%s", head.status == BF_ENOTFOUND ? "missing" : head.message);
      return 0;
    }
    if (size == f->size_bytes) return 1;
    snprintf(why, cap, "%lld bytes, the log says %lld", (long long)size, (long long)f->size_bytes);
    return 0;
  }
  struct stat st;
  if (lstat(path, &st) != 0) {
    snprintf(why, cap, "missing (%s)", strerror(errno));
    return 0;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(why, cap, "not a regular file (a symlink or directory was put in its place)");
    return 0;
  }
  if ((int64_t)st.st_size != f->size_bytes) {
    snprintf(why, cap, "%lld bytes, the log says %lld", (long long)st.st_size,
             (long long)f->size_bytes);
    return 0;
  }
  if (f->crc32c[0] == '\0') return 1; /* written by another writer: size is all we know */
  uint32_t crc;
  int64_t size;
  if (file_crc(path, &crc, &size, why, cap) != 0) return 0;
  char hex[9];
  snprintf(hex, sizeof hex, "%08x", crc);
  if (strcmp(hex, f->crc32c) != 0) {
    snprintf(why, cap, "checksum %s, recorded %s: the file changed after it was written", hex,
             f->crc32c);
    return 0;
  }
  return 1;
}

void bf__store_remove_files(const bf_table_t *t, const bf_delta_file_t *files, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", t->dir, files[i].path);
    bf_error_t ignored;
    bf_error_init(&ignored);
    bf_storage_delete(path, &ignored);
  }
}
