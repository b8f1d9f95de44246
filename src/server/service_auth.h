/* Authentication and authorization for the bifrost.v1 service: the RPC
 * framework's authenticate hook (bearer token checked before the request
 * message is read), Login, and the per-table grant checks the handlers make.
 * Every refusal is logged once with user, peer, RPC and table. */
#ifndef BIFROST_SERVER_SERVICE_AUTH_H
#define BIFROST_SERVER_SERVICE_AUTH_H

#include "server/auth.h"
#include "server/service.h"

/* bf_rpc_authenticate_fn; ctx is the bf_service_t. Login passes unauthenticated. */
int bf_service_authenticate(void *ctx, bf_rpc_call_t *call, const char *method, bf_error_t *err);

/* BF_EPERM naming verb and table when the caller may not. */
int bf__service_authorize(bf_service_t *s, bf_rpc_call_t *call, int verb, const char *catalog,
                          const char *schema_name, const char *table, bf_error_t *err);

/* Whether the caller may read the table (ListTables filters with it). */
int bf__service_may_read(bf_service_t *s, bf_rpc_call_t *call, const char *catalog,
                         const char *schema_name, const char *table);

/* The registered tables the caller may read, as a malloc'd array (*n entries;
 * NULL only when out of memory). The entries outlive the array. */
bf_table_t **bf__service_readable_tables(bf_service_t *s, bf_rpc_call_t *call, size_t *n);

/* bf_engine_table_check_fn for queries; ctx is a bf__query_access_t. */
typedef struct bf__query_access {
  bf_service_t *service;
  bf_rpc_call_t *call;
} bf__query_access_t;
int bf__service_query_table_check(void *ctx, const char *catalog, const char *schema_name,
                                  const char *table, bf_error_t *err);

void bf__service_handle_login(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes,
                              size_t size);

#endif
