/* Internal helpers shared by the RPC server, the client channel and its streams. */
#ifndef BIFROST_RPC_INTERNAL_H
#define BIFROST_RPC_INTERNAL_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stddef.h>

#include "bifrost/rpc.h"
#include "bifrost/util.h"

#define BF_RPC_STATUS_METADATA_KEY "bf-status"

/* bf status for a status name ("BF_EQUERY"), or fallback if unknown. */
int bf__rpc_status_from_name(const char *name, size_t len, int fallback);
/* Copies a received byte buffer into out (appending). */
int bf__rpc_read_byte_buffer(grpc_byte_buffer *bb, bf_buffer_t *out);
/* Gives an empty out a recycled buffer of at least size bytes when the request
 * pool has one (rpc_request_pool.c); leaves it as it is otherwise. */
void bf__rpc_request_buffer(bf_buffer_t *out, size_t size);
/* A byte buffer holding a copy of data (caller destroys it). */
grpc_byte_buffer *bf__rpc_byte_buffer_from(const uint8_t *data, size_t size);
/* A byte buffer of a copy of head followed by body in place (body NULL: head
 * alone); it holds a reference on body until gRPC is done with it. */
grpc_byte_buffer *bf__rpc_byte_buffer_with_body(const uint8_t *head, size_t head_size,
                                                bf_shared_t *body);
/* An integer channel argument (key is not copied: a gRPC GRPC_ARG_* constant). */
grpc_arg bf__rpc_int_arg(const char *key, int value);
/* gpr deadline `secs` from now; infinite when secs <= 0. */
gpr_timespec bf__rpc_deadline(double secs);

/* ---- client side (rpc_channel.c, rpc_stream.c) ---- */

struct bf_rpc_channel {
  grpc_channel *channel;
  char *authorization; /* owned, may be NULL; sent as is unless it is "Basic" credentials */
  char target[256];
  /* "Basic" credentials are not sent: the channel logs in with them (Login) and
   * sends the bearer token it gets, renewed before it expires and once when a
   * call is refused as UNAUTHENTICATED. */
  char *login_user, *login_password; /* owned, NULL without Basic credentials */
  pthread_mutex_t auth_mu;
  char *bearer;                      /* "Bearer <token>"; guarded by auth_mu */
  int64_t bearer_obtained_ms, bearer_expires_ms; /* guarded by auth_mu */
};

/* One client call on its own pluck completion queue. */
typedef struct bf__rpc_call {
  grpc_call *call;
  grpc_completion_queue *cq;
  grpc_metadata auth_md;
  char *auth_value;           /* owned: this call's authorization metadata */
  bf_error_t start_err;       /* why bf__rpc_call_start failed (e.g. the login) */
  grpc_metadata_array initial_md;
  grpc_metadata_array trailing_md;
  grpc_status_code status;
  grpc_slice details;
} bf__rpc_call_t;

/* Drops the bearer token `used` (a call was refused with it), so the next call
 * logs in again. */
void bf__rpc_channel_forget_token(bf_rpc_channel_t *ch, const char *used);

/* Creates the call (always initialises c, so bf__rpc_call_end is always valid);
 * with login credentials it first gets a current token (logging in if needed):
 * a failure is in c->start_err. */
int bf__rpc_call_start(bf_rpc_channel_t *ch, bf__rpc_call_t *c, const char *method, double timeout);
/* Starts a batch with tag `ops` and waits for it; 1 on success. */
int bf__rpc_call_batch(bf__rpc_call_t *c, grpc_op *ops, size_t n);
/* The first op of every call: initial metadata (with the authorization, if any). */
void bf__rpc_op_send_initial(bf_rpc_channel_t *ch, bf__rpc_call_t *c, grpc_op *op);
/* Turns the received status into a bf status + message. *transport_failed (may be
 * NULL) is set when the call failed with UNAVAILABLE without reaching a Bifrost
 * handler (no bf-status metadata): a dead or refused connection. */
int bf__rpc_call_status(bf__rpc_call_t *c, bf_rpc_channel_t *ch, int *transport_failed,
                        bf_error_t *err);
void bf__rpc_call_end(bf__rpc_call_t *c);

/* Client processes: enables gRPC's fork support before the first grpc_init
 * (rpc_fork.c). Idempotent. */
void bf__rpc_fork_support_init(void);

#endif
