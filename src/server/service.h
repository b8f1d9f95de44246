/* The bifrost.v1.Bifrost service: decodes requests, runs them against the registry,
 * the Delta log and the engine, and answers through the RPC framework. */
#ifndef BIFROST_SERVER_SERVICE_H
#define BIFROST_SERVER_SERVICE_H

#include "bifrost/rpc.h"
#include "server/auth.h"
#include "engine/engine.h"
#include "server/registry.h"
#include "server/table_store.h"

typedef struct bf_service {
  bf_registry_t *registry; /* not owned */
  bf_engine_t *engine;     /* not owned */
  bf_store_t *store;       /* not owned */
  int64_t max_batch_bytes; /* decoded size bound of one InsertBatch; <= 0 = none */
  int unsafe_short_retention; /* vacuum retention below 1 h allowed */
  bf_auth_t *auth;         /* not owned; users, grants, tokens (open mode: no auth file) */
} bf_service_t;

/* bf_rpc_handler_fn for the service; ctx is a bf_service_t. */
void bf_service_handle(void *ctx, bf_rpc_call_t *call, const char *method, const uint8_t *request,
                       size_t request_size);

#endif
