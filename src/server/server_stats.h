/* The ServerStats RPC: uptime, versions, and per table the backlog (tail rows and
 * bytes) and the counters since the start (counters.h), for the tables the caller
 * may read. Called by the service's dispatch with what it needs, so that it sits
 * below the service. */
#ifndef BIFROST_SERVER_SERVER_STATS_H
#define BIFROST_SERVER_SERVER_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/rpc.h"
#include "server/registry.h"
#include "server/table_store.h"

/* May the caller of call read catalog.schema.table? */
typedef int (*bf_stats_may_read_fn)(void *ctx, bf_rpc_call_t *call, const char *catalog,
                                    const char *schema_name, const char *table);

void bf_server_stats_handle(bf_registry_t *registry, bf_store_t *store,
                            bf_stats_may_read_fn may_read, void *may_read_ctx,
                            bf_rpc_call_t *call, const uint8_t *req, size_t size);

#endif
