/* History, time-travel views, truncate and drop (see table_lifecycle.h). Truncate
 * and drop run under the table's work mutex, like a flush or maintenance run, so
 * no flush of the background writer interleaves with them. */
#include "server/table_lifecycle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bifrost/util.h"
#include "bifrost/wal.h"
#include "server/log.h"
#include "server/table_store_internal.h"
#include "server/table_writer.h"
#include "storage/storage.h"

static int read_checkpoint(void *ctx, const char *path, bf_delta_snapshot_t *into,
                           bf_error_t *err) {
  return bf_engine_checkpoint_read(ctx, path, into, err);
}

static int open_locked(bf_store_t *s, bf_table_t *t, bf_error_t *err) {
  pthread_mutex_lock(&t->mu);
  int status = bf_store_open_table(s, t, err);
  pthread_mutex_unlock(&t->mu);
  return status;
}

int bf_store_history(bf_store_t *s, bf_table_t *t, bf_delta_version_info_t **out, size_t *n,
                     bf_error_t *err) {
  BF_RETURN_NOT_OK(open_locked(s, t, err));
  int status = bf_delta_history(t->dir, out, n, err);
  if (status != BF_OK) bf_error_prefix(err, "history of %s", t->fqn);
  return status;
}

int bf_store_parse_version_name(const char *name, char *base, size_t cap, int64_t *version) {
  const char *at = strrchr(name, '@');
  if (at == NULL || (at[1] != 'v' && at[1] != 'V')) return 0;
  const char *digits = at + 2;
  size_t n = strspn(digits, "0123456789");
  if (n == 0 || n > 18 || digits[n] != '\0' || (size_t)(at - name) >= cap || at == name) return 0;
  memcpy(base, name, (size_t)(at - name));
  base[at - name] = '\0';
  *version = strtoll(digits, NULL, 10);
  return 1;
}

/* Version views in use by running queries: a view is dropped when its last user
 * is done, so they do not pile up in the query database. */
typedef struct view_use {
  char name[3 * BF_NAMESPACE_MAX_BYTES + 40]; /* catalog.schema.table@vN */
  char catalog[BF_NAMESPACE_MAX_BYTES + 1], schema_name[BF_NAMESPACE_MAX_BYTES + 1];
  char view[BF_NAMESPACE_MAX_BYTES + 32];
  int users;
} view_use_t;

static pthread_mutex_t views_mu = PTHREAD_MUTEX_INITIALIZER;
static view_use_t *views;
static size_t n_views;

/* Counts a user of the view; 0 or BF_ENOMEM. Caller holds views_mu. */
static int view_acquire(const bf_table_t *t, const char *view, const char *name) {
  for (size_t i = 0; i < n_views; i++)
    if (strcmp(views[i].name, name) == 0) {
      views[i].users++;
      return BF_OK;
    }
  view_use_t *grown = realloc(views, (n_views + 1) * sizeof *grown);
  if (grown == NULL) return BF_ENOMEM;
  views = grown;
  view_use_t *u = &views[n_views++];
  memset(u, 0, sizeof *u);
  snprintf(u->name, sizeof u->name, "%s", name);
  snprintf(u->catalog, sizeof u->catalog, "%s", t->catalog);
  snprintf(u->schema_name, sizeof u->schema_name, "%s", t->schema_name);
  snprintf(u->view, sizeof u->view, "%s", view);
  u->users = 1;
  return BF_OK;
}

void bf_store_version_view_release(bf_store_t *s, const char *name) {
  pthread_mutex_lock(&views_mu);
  for (size_t i = 0; i < n_views; i++) {
    if (strcmp(views[i].name, name) != 0) continue;
    if (--views[i].users == 0) {
      bf_engine_drop_table_view(s->engine, views[i].catalog, views[i].schema_name, views[i].view);
      views[i] = views[--n_views];
    }
    break;
  }
  pthread_mutex_unlock(&views_mu);
}

int bf_store_version_view(bf_store_t *s, bf_table_t *t, int64_t version, char *used, size_t cap,
                          bf_error_t *err) {
  BF_RETURN_NOT_OK(open_locked(s, t, err));
  bf_delta_snapshot_t snap = {0};
  int status = bf_delta_snapshot_load_at(t->dir, version, read_checkpoint, s->engine, &snap, err);
  if (status != BF_OK) {
    bf_error_prefix(err, "table %s", t->fqn);
    return status;
  }
  char name[BF_NAMESPACE_MAX_BYTES + 32];
  snprintf(name, sizeof name, "%s@v%lld", t->table, (long long)version);
  /* The schema version in force at that version (by its Delta schemaString; the
   * current one when none matches, e.g. another writer's): the columns added since
   * read as null. Files are matched by column name. */
  const bf_schema_t *present = &t->schema;
  size_t n_versions = __atomic_load_n(&t->n_versions, __ATOMIC_ACQUIRE);
  for (size_t i = 0; i < n_versions && snap.schema_string; i++) {
    char *text = NULL;
    if (bf_delta_schema_string(&t->versions[i]->schema, &text, NULL) == BF_OK &&
        strcmp(text, snap.schema_string) == 0)
      present = &t->versions[i]->schema;
    free(text);
  }
  snprintf(used, cap, "%s.%s.%s", t->catalog, t->schema_name, name);
  /* Built (or rebuilt, the same) while counted as used: a query that ends
   * meanwhile never drops it under this one. */
  pthread_mutex_lock(&views_mu);
  status = view_acquire(t, name, used) == BF_OK ? BF_OK
                                                : bf_error_set(err, BF_ENOMEM, "out of memory");
  pthread_mutex_unlock(&views_mu);
  if (status == BF_OK) {
    pthread_mutex_lock(&t->mu); /* t->schema changes only under it */
    status = bf_engine_set_version_view(s->engine, t->catalog, t->schema_name, name, t->dir,
                                        &t->schema, present,
                                        (const char *const *)t->partition_columns,
                                        t->n_partition_columns, snap.files, snap.n_files, err);
    pthread_mutex_unlock(&t->mu);
    if (status != BF_OK) bf_store_version_view_release(s, used);
  }
  bf_delta_snapshot_reset(&snap);
  if (status != BF_OK)
    bf_error_prefix(err, "reading %s at version %lld (its files may have been removed by vacuum)",
                    t->fqn, (long long)version);
  return status;
}

int bf_store_truncate(bf_store_t *s, bf_table_t *t, int64_t *version, int64_t *files_removed,
                      int64_t *rows_removed, bf_error_t *err) {
  *files_removed = *rows_removed = 0;
  BF_RETURN_NOT_OK(open_locked(s, t, err));
  bf_table_store_t *ts = t->store;
  pthread_mutex_lock(&ts->work_mu);
  int64_t flushed = 0;
  int status = bf__store_flush(s, t, &flushed, err);
  if (status == BF_OK) {
    pthread_mutex_lock(&t->mu);
    status = bf_delta_snapshot_refresh(t->dir, &t->snapshot, NULL, err);
    size_t n = t->snapshot.n_files;
    const char **removes = status == BF_OK ? malloc((n ? n : 1) * sizeof *removes) : NULL;
    if (status == BF_OK && removes == NULL) status = bf_error_set(err, BF_ENOMEM, "out of memory");
    int64_t rows = 0;
    for (size_t i = 0; status == BF_OK && i < n; i++) {
      removes[i] = t->snapshot.files[i].path;
      rows += t->snapshot.files[i].num_records;
    }
    *version = t->snapshot.version;
    if (status == BF_OK && n > 0) {
      bf_delta_commit_t c = {.operation = "DELETE", .data_change = 1, .removes = removes,
                             .n_removes = n};
      status = bf_delta_log_commit(t->dir, &t->snapshot, &c, version, err);
      if (status == BF_OK) {
        *files_removed = (int64_t)n;
        *rows_removed = rows;
        bf_error_t view_err;
        bf_error_init(&view_err);
        if (bf__store_publish(s, t, NULL, &view_err) != BF_OK)
          BF_LOG_ERROR("table %s: view after truncate: %s", t->fqn, view_err.message);
        BF_LOG_INFO("table %s: truncated (%zu files, %lld rows) at version %lld", t->fqn, n,
                    (long long)rows, (long long)*version);
      }
    }
    free(removes);
    pthread_mutex_unlock(&t->mu);
  }
  pthread_mutex_unlock(&ts->work_mu);
  if (status != BF_OK) bf_error_prefix(err, "truncating %s", t->fqn);
  return status;
}

/* Whether a directory holds data files: not the Delta log (its checkpoints are
 * .parquet files too, but no data). */
static int holds_data(const char *name) { return strcmp(name, "_delta_log") != 0; }

/* Deletes dir and everything below it without following symbolic links; counts
 * the .parquet data files into *parquet (NULL: none). Best effort: what cannot be
 * deleted is logged. */
static void remove_tree(int parent_fd, const char *name, int64_t *parquet) {
  int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (fd < 0) {
    if (unlinkat(parent_fd, name, 0) == 0) {
      if (parquet && bf_fs_name_has_suffix(name, ".parquet")) (*parquet)++;
    } else if (errno != ENOENT) {
      BF_LOG_WARN("drop: cannot delete %s: %s", name, strerror(errno));
    }
    return;
  }
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    remove_tree(dirfd(d), e->d_name, holds_data(name) ? parquet : NULL);
  }
  closedir(d);
  if (unlinkat(parent_fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
    BF_LOG_WARN("drop: cannot delete directory %s: %s", name, strerror(errno));
}

/* The same through the storage interface, for a table on S3 (no directories, no
 * rename): the registry entry goes first, so no rescan finds the table while the
 * rest is deleted. */
static void remove_tree_listed(const char *dir, int64_t *parquet) {
  bf_storage_list_t list;
  bf_error_t err;
  bf_error_init(&err);
  if (bf_storage_list(dir, NULL, &list, &err) != BF_OK) {
    BF_LOG_WARN("drop: cannot list %s: %s", dir, err.message);
    return;
  }
  for (size_t i = 0; i < list.len; i++) {
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, list.items[i].name);
    if (list.items[i].is_dir) {
      remove_tree_listed(path, holds_data(list.items[i].name) ? parquet : NULL);
      continue;
    }
    bf_error_init(&err);
    if (bf_storage_delete(path, &err) != BF_OK)
      BF_LOG_WARN("drop: cannot delete %s: %s", path, err.message);
    else if (parquet && bf_fs_name_has_suffix(list.items[i].name, ".parquet"))
      (*parquet)++;
  }
  bf_storage_list_free(&list);
}

static void remove_table_objects(const char *table_dir, int64_t *parquet) {
  char entry[PATH_MAX + 32];
  snprintf(entry, sizeof entry, "%s/_bifrost/table.json", table_dir);
  bf_error_t err;
  bf_error_init(&err);
  if (bf_storage_delete(entry, &err) != BF_OK)
    BF_LOG_WARN("drop: cannot delete %s: %s", entry, err.message);
  remove_tree_listed(table_dir, parquet);
}

int bf_store_drop(bf_store_t *s, bf_table_t *t, int discard_wal, int64_t *rows_discarded,
                  int64_t *files_deleted, bf_error_t *err) {
  *rows_discarded = *files_deleted = 0;
  BF_RETURN_NOT_OK(open_locked(s, t, err));
  bf_table_store_t *ts = t->store;
  pthread_mutex_lock(&ts->work_mu);
  int64_t flushed = 0;
  if (!discard_wal && bf__store_flush(s, t, &flushed, err) != BF_OK) {
    pthread_mutex_unlock(&ts->work_mu);
    bf_error_prefix(err, "dropping %s: its acknowledged rows could not be flushed, nothing was "
                    "dropped (retry, or drop with discard_wal)", t->fqn);
    return err->status;
  }
  pthread_mutex_lock(&t->mu);
  if (t->dropped) {
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_unlock(&ts->work_mu);
    return bf_error_set(err, BF_ENOTFOUND, "table %s was dropped already", t->fqn);
  }
  while (bf__any_pending(ts)) pthread_cond_wait(&ts->pending_cv, &t->mu);
  t->dropped = 1; /* inserts and opens refuse it from here on */
  *rows_discarded = bf_store_tail_rows(t);
  for (size_t i = 0; i < ts->n_gens; i++) {
    bf_engine_tail_drop(s->engine, t->catalog, ts->gens[i]->tail);
    bf_wal_segment_close(ts->gens[i]->seg, 1);
    bf__gen_free(s, ts->gens[i]);
  }
  ts->n_gens = 0;
  ts->opened = 0;
  pthread_cond_broadcast(&ts->pending_cv);
  pthread_mutex_unlock(&t->mu);
  pthread_mutex_unlock(&ts->work_mu);

  /* The directory leaves its name first (atomically), so no rescan or lookup
   * finds the old registry file while the rest is deleted; a name starting with
   * '.' is never scanned. */
  if (bf_storage_is_s3(t->dir)) {
    remove_table_objects(t->dir, files_deleted);
    goto forget;
  }
  char parent[PATH_MAX], trash[PATH_MAX + 64], uuid[37];
  snprintf(parent, sizeof parent, "%s", t->dir);
  char *slash = strrchr(parent, '/');
  if (slash) *slash = '\0';
  bf_uuid4_string(uuid);
  snprintf(trash, sizeof trash, ".dropped-%s-%s", t->table, uuid);
  int parent_fd = open(slash ? parent : ".", O_RDONLY | O_DIRECTORY);
  const char *base = slash ? slash + 1 : t->dir;
  if (parent_fd >= 0 && renameat(parent_fd, base, parent_fd, trash) == 0) {
    remove_tree(parent_fd, trash, files_deleted);
  } else if (parent_fd >= 0) {
    BF_LOG_WARN("drop %s: cannot rename %s (%s); deleting in place", t->fqn, t->dir, strerror(errno));
    remove_tree(parent_fd, base, files_deleted);
  }
  if (parent_fd >= 0) close(parent_fd);
forget:
  bf_engine_drop_table_view(s->engine, t->catalog, t->schema_name, t->table);
  bf_engine_set_table_unavailable(s->engine, t->fqn, NULL);
  bf_registry_forget(s->registry, t);
  BF_LOG_INFO("table %s dropped (%lld data files deleted, %lld unflushed rows discarded)", t->fqn,
              (long long)*files_deleted, (long long)*rows_discarded);
  return BF_OK;
}
