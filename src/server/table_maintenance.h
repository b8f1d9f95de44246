/* Automatic maintenance (table_maintenance.c), run by the background writer. */
#ifndef BIFROST_SERVER_TABLE_MAINTENANCE_H
#define BIFROST_SERVER_TABLE_MAINTENANCE_H

#include "server/table_store_internal.h"

/* Caller holds work_mu (not t->mu). A checkpoint when --checkpoint-interval
 * commits passed since the last one; the periodic compaction, checkpoint, vacuum
 * and log cleanup. */
void bf__store_maybe_checkpoint(bf_store_t *s, bf_table_t *t);
void bf__store_auto_maintenance(bf_store_t *s, bf_table_t *t);

#endif
