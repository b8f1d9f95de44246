/* Write leases (see write_lease.h). */
#include "server/write_lease.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "bifrost/util.h"
#include "server/log.h"
#include "storage/storage.h"

struct bf_write_lease {
  int fd;                   /* -1 for an object lease */
  int64_t start_ms;
  char path[PATH_MAX + 128];
};

/* On S3 there is no lock to tell a live writer from a dead one: a lease object is
 * taken for stale once it is LEASE_MAX_AGE_MS old, and a writer never commits
 * under a lease older than LEASE_COMMIT_MAX_MS (bf_write_lease_check). */
#define LEASE_MAX_AGE_MS (60LL * 60 * 1000)
#define LEASE_COMMIT_MAX_MS (LEASE_MAX_AGE_MS - 10LL * 60 * 1000)

static int take_object_lease(const char *dir, bf_write_lease_t *lease, bf_error_t *err) {
  lease->fd = -1;
  int status = bf_storage_write_replace(lease->path, "", 0, err);
  if (status != BF_OK) bf_error_prefix(err, "cannot take a write lease in %s", dir);
  return status;
}

static int64_t oldest_object_lease(const char *dir) {
  bf_storage_list_t list;
  bf_error_t err;
  bf_error_init(&err);
  /* Unknown leases must not look absent: vacuum then protects everything. */
  if (bf_storage_list(dir, NULL, &list, &err) != BF_OK) return INT64_MIN;
  int64_t oldest = INT64_MAX, now_ms = bf_time_now_ms();
  for (size_t i = 0; i < list.len; i++) {
    const char *name = list.items[i].name;
    if (list.items[i].is_dir || !bf_fs_name_has_suffix(name, ".lease")) continue;
    int64_t start_ms = strtoll(name, NULL, 10) / 1000;
    if (now_ms - list.items[i].mtime_s * 1000 > LEASE_MAX_AGE_MS) {
      char path[PATH_MAX + 300];
      snprintf(path, sizeof path, "%s/%s", dir, name);
      bf_storage_delete(path, &err); /* its writer is gone (or no longer commits under it) */
    } else if (start_ms < oldest) {
      oldest = start_ms;
    }
  }
  bf_storage_list_free(&list);
  return oldest;
}

static void lease_dir(const char *table_dir, char *out, size_t cap) {
  snprintf(out, cap, "%s/_bifrost/leases", table_dir);
}

/* Object leases this process released while the store did not answer: deleted
 * again before the next lease is taken and before any vacuum reads the leases, so
 * an outage does not leave vacuum blocked for the hour a lease takes to go stale. */
static pthread_mutex_t g_unreleased_mu = PTHREAD_MUTEX_INITIALIZER;
static char **g_unreleased;
static size_t g_n_unreleased;

static void retry_unreleased(void) {
  pthread_mutex_lock(&g_unreleased_mu);
  size_t kept = 0;
  for (size_t i = 0; i < g_n_unreleased; i++) {
    bf_error_t err;
    bf_error_init(&err);
    if (bf_storage_delete(g_unreleased[i], &err) == BF_OK) {
      BF_LOG_INFO("write lease %s released (after the store came back)", g_unreleased[i]);
      free(g_unreleased[i]);
    } else {
      g_unreleased[kept++] = g_unreleased[i];
    }
  }
  g_n_unreleased = kept;
  pthread_mutex_unlock(&g_unreleased_mu);
}

static void release_object_lease(bf_write_lease_t *lease) {
  bf_error_t err;
  bf_error_init(&err);
  if (bf_storage_delete(lease->path, &err) == BF_OK) return;
  BF_LOG_WARN("cannot release write lease %s (%s); retried before the next write or vacuum",
              lease->path, err.message);
  pthread_mutex_lock(&g_unreleased_mu);
  char **grown = realloc(g_unreleased, (g_n_unreleased + 1) * sizeof *grown);
  char *copy = grown ? strdup(lease->path) : NULL;
  if (grown) g_unreleased = grown;
  if (copy) g_unreleased[g_n_unreleased++] = copy; /* else: it goes stale in an hour */
  pthread_mutex_unlock(&g_unreleased_mu);
}

int bf_write_lease_take(const char *table_dir, bf_write_lease_t **out, bf_error_t *err) {
  char dir[PATH_MAX];
  lease_dir(table_dir, dir, sizeof dir);
  BF_RETURN_NOT_OK(bf_storage_mkdirs(dir, err));
  bf_write_lease_t *lease = calloc(1, sizeof *lease);
  if (lease == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  char uuid[37];
  bf_uuid4_string(uuid);
  int64_t now_us = bf_time_now_us();
  lease->start_ms = now_us / 1000;
  snprintf(lease->path, sizeof lease->path, "%s/%020lld-%s.lease", dir, (long long)now_us, uuid);
  if (bf_storage_is_s3(dir)) {
    retry_unreleased();
    int status = take_object_lease(dir, lease, err);
    if (status != BF_OK) free(lease);
    else *out = lease;
    return status;
  }
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

int bf_write_lease_check(const bf_write_lease_t *lease, bf_error_t *err) {
  if (lease == NULL || lease->fd >= 0) return BF_OK; /* a lock held is never stale */
  int64_t age = bf_time_now_ms() - lease->start_ms;
  if (age <= LEASE_COMMIT_MAX_MS) return BF_OK;
  return bf_error_set(err, BF_ETIMEOUT,
                      "the write lease is %lld s old: vacuum may have taken its files for "
                      "abandoned; not committing them (the write is retried)",
                      (long long)(age / 1000));
}

void bf_write_lease_release(bf_write_lease_t *lease) {
  if (lease == NULL) return;
  if (lease->fd < 0) {
    release_object_lease(lease);
    free(lease);
    return;
  }
  unlink(lease->path); /* still locked: nobody takes it for stale in between */
  close(lease->fd);
  free(lease);
}

int64_t bf_write_lease_oldest_ms(const char *table_dir) {
  char dir[PATH_MAX];
  lease_dir(table_dir, dir, sizeof dir);
  if (bf_storage_is_s3(dir)) {
    retry_unreleased();
    return oldest_object_lease(dir);
  }
  DIR *d = opendir(dir);
  if (d == NULL) return INT64_MAX;
  int64_t oldest = INT64_MAX;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!bf_fs_name_has_suffix(e->d_name, ".lease")) continue;
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
