/* Write leases (see write_lease.h). */
#include "server/write_lease.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "bifrost/util.h"

struct bf_write_lease {
  int fd;
  char path[PATH_MAX + 128];
};

static void lease_dir(const char *table_dir, char *out, size_t cap) {
  snprintf(out, cap, "%s/_bifrost/leases", table_dir);
}

int bf_write_lease_take(const char *table_dir, bf_write_lease_t **out, bf_error_t *err) {
  char dir[PATH_MAX];
  lease_dir(table_dir, dir, sizeof dir);
  BF_RETURN_NOT_OK(bf_fs_mkdirs(dir, err));
  bf_write_lease_t *lease = calloc(1, sizeof *lease);
  if (lease == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  char uuid[37];
  bf_uuid4_string(uuid);
  snprintf(lease->path, sizeof lease->path, "%s/%020lld-%s.lease", dir,
           (long long)bf_time_now_us(), uuid);
  /* Locked under a temporary name, then renamed: vacuum never sees it unlocked. */
  char tmp[PATH_MAX + 136];
  snprintf(tmp, sizeof tmp, "%s.tmp", lease->path);
  lease->fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  int e = errno;
  if (lease->fd < 0 || flock(lease->fd, LOCK_EX | LOCK_NB) != 0 || fsync(lease->fd) != 0 ||
      rename(tmp, lease->path) != 0) {
    e = errno;
    if (lease->fd >= 0) {
      unlink(tmp);
      close(lease->fd);
    }
    free(lease);
    return bf_error_set(err, e == ENOSPC ? BF_EFULL : BF_EIO, "cannot take a write lease in %s: %s",
                        dir, strerror(e));
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  *out = lease;
  return BF_OK;
}

void bf_write_lease_release(bf_write_lease_t *lease) {
  if (lease == NULL) return;
  unlink(lease->path); /* still locked: nobody takes it for stale in between */
  close(lease->fd);
  free(lease);
}

int64_t bf_write_lease_oldest_ms(const char *table_dir) {
  char dir[PATH_MAX];
  lease_dir(table_dir, dir, sizeof dir);
  DIR *d = opendir(dir);
  if (d == NULL) return INT64_MAX;
  int64_t oldest = INT64_MAX;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len < 7 || strcmp(e->d_name + len - 6, ".lease") != 0) continue;
    char path[PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    int64_t start_us = strtoll(e->d_name, NULL, 10);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue; /* released meanwhile */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      unlink(path); /* its writer is gone */
    } else if (start_us / 1000 < oldest) {
      oldest = start_us / 1000;
    }
    close(fd);
  }
  closedir(d);
  return oldest;
}
