/* Durable file helpers: recursive mkdir, whole-file reads, and atomic writes.
 * bf_fs_write_new_file is the create-if-absent primitive behind Delta commits:
 * the data goes to a unique temp file which is fsynced and then link(2)ed onto the
 * final name, so the name appears complete or not at all, and EEXIST tells the
 * caller it lost a race. Never rename(2) for that case: it would overwrite. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bifrost/util.h"

bool bf_fs_name_has_suffix(const char *name, const char *suffix) {
  size_t len = strlen(name), n = strlen(suffix);
  return len > n && memcmp(name + len - n, suffix, n) == 0;
}

bool bf_fs_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

int bf_fs_mkdirs(const char *path, bf_error_t *err) {
  char buf[PATH_MAX];
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof buf) return bf_error_set(err, BF_EINVAL, "bad directory path");
  memcpy(buf, path, len + 1);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return bf_error_set(err, BF_EIO, "mkdir %s: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST)
    return bf_error_set(err, BF_EIO, "mkdir %s: %s", buf, strerror(errno));
  return BF_OK;
}

int bf_fs_read_file(const char *path, char **out, size_t *out_size, bf_error_t *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return bf_error_set(err, BF_ENOTFOUND, "%s does not exist", path);
    return bf_error_set(err, BF_EIO, "open %s: %s", path, strerror(errno));
  }
  bf_buffer_t buf;
  bf_buffer_init(&buf);
  int status = BF_OK;
  for (;;) {
    if ((status = bf_buffer_reserve(&buf, 65536)) != BF_OK) {
      bf_error_set(err, status, "reading %s: out of memory", path);
      goto fail;
    }
    ssize_t n = read(fd, buf.data + buf.size, buf.capacity - buf.size);
    if (n < 0) {
      if (errno == EINTR) continue;
      status = bf_error_set(err, BF_EIO, "read %s: %s", path, strerror(errno));
      goto fail;
    }
    if (n == 0) break;
    buf.size += (size_t)n;
  }
  if ((status = bf_buffer_append(&buf, "", 1)) != BF_OK) {
    bf_error_set(err, status, "reading %s: out of memory", path);
    goto fail;
  }
  close(fd);
  *out = (char *)buf.data;
  if (out_size) *out_size = buf.size - 1;
  return BF_OK;
fail:
  close(fd);
  bf_buffer_reset(&buf);
  return status;
}

static int fsync_parent_dir(const char *path, bf_error_t *err) {
  char copy[PATH_MAX];
  snprintf(copy, sizeof copy, "%s", path);
  const char *dir = dirname(copy);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return bf_error_set(err, BF_EIO, "open dir %s: %s", dir, strerror(errno));
  int rc = fsync(dfd);
  int saved = errno;
  close(dfd);
  if (rc != 0) return bf_error_set(err, BF_EIO, "fsync dir %s: %s", dir, strerror(saved));
  return BF_OK;
}

/* Writes data to a fresh temp file next to path; returns its name in tmp. */
static int write_temp(const char *path, const void *data, size_t size, char *tmp,
                      size_t tmp_cap, bf_error_t *err) {
  char uuid[37];
  bf_uuid4_string(uuid);
  snprintf(tmp, tmp_cap, "%s.tmp-%s", path, uuid);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return bf_error_set(err, BF_EIO, "create %s: %s", tmp, strerror(errno));
  const uint8_t *p = data;
  size_t left = size;
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      close(fd);
      unlink(tmp);
      return bf_error_set(err, saved == ENOSPC ? BF_EFULL : BF_EIO, "write %s: %s", tmp,
                          strerror(saved));
    }
    p += n;
    left -= (size_t)n;
  }
  if (fsync(fd) != 0) {
    int saved = errno;
    close(fd);
    unlink(tmp);
    return bf_error_set(err, BF_EIO, "fsync %s: %s", tmp, strerror(saved));
  }
  close(fd);
  return BF_OK;
}

int bf_fs_write_new_file(const char *path, const void *data, size_t size, bf_error_t *err) {
  char tmp[PATH_MAX + 64];
  BF_RETURN_NOT_OK(write_temp(path, data, size, tmp, sizeof tmp, err));
  if (link(tmp, path) != 0) {
    int saved = errno;
    unlink(tmp);
    if (saved == EEXIST) return bf_error_set(err, BF_EEXIST, "%s already exists", path);
    return bf_error_set(err, BF_EIO, "link %s: %s", path, strerror(saved));
  }
  unlink(tmp);
  return fsync_parent_dir(path, err);
}

int bf_fs_write_replace_file(const char *path, const void *data, size_t size, bf_error_t *err) {
  char tmp[PATH_MAX + 64];
  BF_RETURN_NOT_OK(write_temp(path, data, size, tmp, sizeof tmp, err));
  if (rename(tmp, path) != 0) {
    int saved = errno;
    unlink(tmp);
    return bf_error_set(err, BF_EIO, "rename %s: %s", path, strerror(saved));
  }
  return fsync_parent_dir(path, err);
}
