/* WAL replay (table_replay.c): adopting orphaned segments into sealed generations. */
#ifndef BIFROST_SERVER_TABLE_REPLAY_H
#define BIFROST_SERVER_TABLE_REPLAY_H

#include "server/table_store_internal.h"

/* Adopts the table's WAL segments that no process holds, oldest first, and
 * replays them into sealed generations. Caller holds t->mu. */
int bf__store_adopt_orphans(bf_store_t *s, bf_table_t *t, bf_error_t *err);

#endif
