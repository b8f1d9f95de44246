/* Internal helpers shared by the RPC server and channel. */
#ifndef BIFROST_RPC_INTERNAL_H
#define BIFROST_RPC_INTERNAL_H

#include <grpc/grpc.h>
#include <stddef.h>

#include "bifrost/util.h"

#define BF_RPC_STATUS_METADATA_KEY "bf-status"

/* bf status for a status name ("BF_EQUERY"), or fallback if unknown. */
int bf__rpc_status_from_name(const char *name, size_t len, int fallback);
/* Copies a received byte buffer into out (appending). */
int bf__rpc_read_byte_buffer(grpc_byte_buffer *bb, bf_buffer_t *out);
/* A byte buffer holding a copy of data (caller destroys it). */
grpc_byte_buffer *bf__rpc_byte_buffer_from(const uint8_t *data, size_t size);
/* gpr deadline `secs` from now; infinite when secs <= 0. */
gpr_timespec bf__rpc_deadline(double secs);

/* Client processes: enables gRPC's fork support before the first grpc_init
 * (rpc_fork.c). Idempotent. */
void bf__rpc_fork_support_init(void);

#endif
