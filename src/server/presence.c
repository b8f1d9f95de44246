/* Presence of the servers sharing a data directory (see presence.h). */
#include "server/presence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/util.h"
#include "server/log.h"
#include "storage/storage.h"

#define TICK_US (5 * 1000000LL)
#define ALIVE_SECS 15
#define STALE_SECS 3600

/* The id kept in id_file (made on first use), so a restarted server is not taken
 * for a peer of itself; a fresh one when there is no file to keep it in. */
static void server_id(const char *id_file, char id[37]) {
  bf_uuid4_string(id);
  if (id_file == NULL || id_file[0] == '\0') return;
  char *text = NULL;
  size_t size = 0;
  bf_error_t err;
  bf_error_init(&err);
  if (bf_fs_read_file(id_file, &text, &size, &err) == BF_OK && size >= 36) {
    int ok = 1;
    for (size_t i = 0; i < 36 && ok; i++) ok = strchr("0123456789abcdef-", text[i]) != NULL;
    if (ok) {
      memcpy(id, text, 36);
      id[36] = '\0';
    }
  } else if (bf_fs_write_new_file(id_file, id, 36, &err) != BF_OK) {
    BF_LOG_WARN("cannot keep this server's id in %s: %s", id_file, err.message);
  }
  free(text);
}

void bf_presence_init(bf_presence_t *p, const char *data_dir, const char *id_file) {
  memset(p, 0, sizeof *p);
  char id[37];
  server_id(id_file, id);
  snprintf(p->dir, sizeof p->dir, "%s/_bifrost/servers", data_dir);
  snprintf(p->path, sizeof p->path, "%s/%s.alive", p->dir, id);
}

int bf_presence_tick(bf_presence_t *p, int64_t now_us) {
  if (p->last_tick_us && now_us - p->last_tick_us < TICK_US)
    return __atomic_load_n(&p->peers, __ATOMIC_RELAXED);
  p->last_tick_us = now_us;
  bf_error_t err;
  bf_error_init(&err);
  if (bf_storage_mkdirs(p->dir, &err) != BF_OK ||
      bf_storage_write_replace(p->path, "", 0, &err) != BF_OK) {
    BF_LOG_WARN("cannot announce this server in %s: %s", p->dir, err.message);
    return __atomic_load_n(&p->peers, __ATOMIC_RELAXED);
  }
  bf_storage_list_t list;
  if (bf_storage_list(p->dir, NULL, &list, &err) != BF_OK) {
    BF_LOG_WARN("cannot list the servers in %s: %s", p->dir, err.message);
    return __atomic_load_n(&p->peers, __ATOMIC_RELAXED);
  }
  const char *own = strrchr(p->path, '/') + 1;
  int64_t now_s = bf_time_now_ms() / 1000;
  int peers = 0;
  for (size_t i = 0; i < list.len; i++) {
    const bf_storage_entry_t *e = &list.items[i];
    if (e->is_dir || !bf_fs_name_has_suffix(e->name, ".alive")) continue;
    if (strcmp(e->name, own) == 0) continue;
    if (now_s - e->mtime_s <= ALIVE_SECS) {
      peers++;
    } else if (now_s - e->mtime_s > STALE_SECS) { /* a server that died long ago */
      char path[4400];
      snprintf(path, sizeof path, "%s/%s", p->dir, e->name);
      bf_storage_delete(path, &err);
    }
  }
  bf_storage_list_free(&list);
  int before = __atomic_exchange_n(&p->peers, peers, __ATOMIC_RELAXED);
  if (before == 0 && peers > 0)
    BF_LOG_INFO("%d other server(s) share the data directory: flushing often so they see our rows",
                peers);
  else if (before > 0 && peers == 0)
    BF_LOG_INFO("no other server shares the data directory any more");
  return peers;
}

void bf_presence_leave(bf_presence_t *p) {
  if (!p->last_tick_us) return;
  bf_error_t err;
  bf_error_init(&err);
  bf_storage_delete(p->path, &err);
}
