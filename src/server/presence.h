/* Presence of the servers sharing a data directory: each server keeps an empty
 * object <data-dir>/_bifrost/servers/<id>.alive fresh (rewritten every 5 s) and
 * counts the others seen alive in the last 15 s. While it has peers, the store
 * flushes at --shared-flush-interval, so rows acknowledged here become visible
 * through every server within about that interval plus their 1 s log refresh.
 * Costs one write and one listing every 5 s per server (S3: a PUT and a LIST). */
#ifndef BIFROST_SERVER_PRESENCE_H
#define BIFROST_SERVER_PRESENCE_H

#include <stdint.h>

typedef struct bf_presence {
  char path[4200];      /* our .alive object */
  char dir[4150];
  int64_t last_tick_us;
  int peers;            /* servers other than this one seen alive; atomic reads */
} bf_presence_t;

/* id_file (e.g. <wal-dir>/server.id) keeps the server's id across restarts; NULL
 * or "" = a new id per start. */
void bf_presence_init(bf_presence_t *p, const char *data_dir, const char *id_file);
/* At most every 5 s: refresh our object and count the peers. Returns the count. */
int bf_presence_tick(bf_presence_t *p, int64_t now_us);
/* Removes our object (clean shutdown). */
void bf_presence_leave(bf_presence_t *p);

#endif
