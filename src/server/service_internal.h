/* Helpers of service.c shared with the handlers in other files of the service. */
#ifndef BIFROST_SERVER_SERVICE_INTERNAL_H
#define BIFROST_SERVER_SERVICE_INTERNAL_H

#include "bifrost/v1/bifrost.pb-c.h"
#include "bifrost/query_param.h"
#include "server/service.h"

/* Packs and sends msg as the call's reply. */
void bf__service_reply(bf_rpc_call_t *call, const ProtobufCMessage *msg);
/* Finishes the call (1) when a text field of the request was cut at a NUL byte. */
int bf__service_refuse_cut_text(bf_rpc_call_t *call, const ProtobufCMessage *msg, size_t size);
int bf__service_check_name(const Bifrost__V1__TableName *name, bf_error_t *err);
/* The registered table, or NULL with BF_ENOTFOUND in err. */
bf_table_t *bf__service_lookup(bf_service_t *s, const Bifrost__V1__TableName *name, bf_error_t *err);

/* The request's query parameters (service_params.c); free with bf__service_params_free. */
int bf__service_params_from_pb(const Bifrost__V1__QueryRequest *req, bf_query_param_t **out,
                               bf_error_t *err);
void bf__service_params_free(bf_query_param_t *params, size_t n);

void bf__service_handle_history(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes,
                                size_t size);
void bf__service_handle_truncate(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes,
                                 size_t size);
void bf__service_handle_drop(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes,
                             size_t size);

#endif
