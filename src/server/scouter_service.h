/* The scouter.grpc.v1 endpoint: the subset of the Scouter protocol that the
 * published scouter-ml 0.25.0 client calls (AuthService Login / RefreshToken /
 * ValidateToken; DatasetService RegisterDataset, InsertBatch, QueryDataset,
 * ListDatasets, DescribeDataset), served beside bifrost.v1 on the same port over
 * the same registry, store, engine and users. Differences from bifrost.v1:
 *   - fingerprints follow the 0.25.0 rule (schema/schema_scouter.h), computed
 *     from the table's JSON Schema, so one table answers both protocols;
 *   - InsertBatch columns are matched to the table by name (the client sends
 *     them in alphabetical order); the batch is re-encoded in table order before
 *     it reaches the WAL;
 *   - the client sends no producer id or sequence: a batch whose
 *     scouter_batch_id column holds one value (the client's one UUIDv7 per batch)
 *     is stored under that id, so a resent batch is recognised and stored once;
 *     other batches cannot be deduplicated;
 *   - QueryDataset answers with one message, at most 4 MiB (the client's receive
 *     limit); a larger result is refused, never cut; timestamps carry the zone
 *     "+00:00", which the client can read. */
#ifndef BIFROST_SERVER_SCOUTER_SERVICE_H
#define BIFROST_SERVER_SCOUTER_SERVICE_H

#include <protobuf-c/protobuf-c.h>

#include "server/service.h"

#define BF_SCOUTER_AUTH_SERVICE "scouter.grpc.v1.AuthService"
#define BF_SCOUTER_DATASET_SERVICE "scouter.grpc.v1.DatasetService"

/* The client's receive limit for one message (tonic's default). */
#define BF_SCOUTER_MAX_REPLY_BYTES (4 * 1024 * 1024)

/* NULL-terminated list of every service bifrost-server serves (for
 * bf_rpc_server_options_t.services). */
extern const char *const bf_scouter_served_services[];

/* bf_rpc_handler_fn over a bf_service_t: scouter.grpc.v1 methods here, every
 * other served method to bf_service_handle. */
void bf_scouter_service_handle(void *ctx, bf_rpc_call_t *call, const char *method,
                               const uint8_t *request, size_t request_size);

/* bf_rpc_authenticate_fn: bf_service_authenticate for every call except the
 * scouter AuthService methods, which check credentials or tokens themselves. */
int bf_scouter_service_authenticate(void *ctx, bf_rpc_call_t *call, const char *method,
                                    bf_error_t *err);

/* QueryDataset (scouter_query.c). */
void bf__scouter_handle_query(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *request,
                              size_t size);

#endif
