/* gRPC transport on the gRPC core C API: a small server framework (worker threads,
 * each serving one call at a time: unary replies or server-streamed messages) and a
 * client channel with unary and server-streaming calls. Payloads are opaque bytes
 * (protobuf-c messages packed by the caller). Status mapping between bf statuses
 * and gRPC codes lives here, in one place. */
#ifndef BIFROST_RPC_H
#define BIFROST_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bifrost/error.h"
#include "bifrost/util.h"

/* Full method names of service bifrost.v1.Bifrost. */
#define BF_RPC_METHOD_REGISTER_TABLE "/bifrost.v1.Bifrost/RegisterTable"
#define BF_RPC_METHOD_INSERT_BATCH "/bifrost.v1.Bifrost/InsertBatch"
#define BF_RPC_METHOD_QUERY "/bifrost.v1.Bifrost/Query"
#define BF_RPC_METHOD_LIST_TABLES "/bifrost.v1.Bifrost/ListTables"
#define BF_RPC_METHOD_DESCRIBE_TABLE "/bifrost.v1.Bifrost/DescribeTable"
#define BF_RPC_METHOD_MAINTAIN_TABLE "/bifrost.v1.Bifrost/MaintainTable"
#define BF_RPC_METHOD_LOGIN "/bifrost.v1.Bifrost/Login"
#define BF_RPC_METHOD_SERVER_STATS "/bifrost.v1.Bifrost/ServerStats"
#define BF_RPC_METHOD_TABLE_HISTORY "/bifrost.v1.Bifrost/TableHistory"
#define BF_RPC_METHOD_DROP_TABLE "/bifrost.v1.Bifrost/DropTable"
#define BF_RPC_METHOD_TRUNCATE_TABLE "/bifrost.v1.Bifrost/TruncateTable"
#define BF_RPC_SERVICE_BIFROST "bifrost.v1.Bifrost"
#define BF_RPC_METHOD_HEALTH_CHECK "/grpc.health.v1.Health/Check"

#define BF_RPC_MAX_MESSAGE_BYTES (256 * 1024 * 1024)
/* Port used when a client target names none ("127.0.0.1" -> "127.0.0.1:50051"). */
#define BF_RPC_DEFAULT_PORT 50051

/* bf status <-> gRPC status code (grpc_status_code values as int). */
int bf_rpc_status_to_grpc(int bf_status);
int bf_rpc_status_from_grpc(int grpc_code);

/* Calls grpc_init once per process (refcounted with bf_rpc_global_shutdown). */
void bf_rpc_global_init(void);
void bf_rpc_global_shutdown(void);

/* ---- Server --------------------------------------------------------------- */

typedef struct bf_rpc_server bf_rpc_server_t;
typedef struct bf_rpc_call bf_rpc_call_t;

/* Called on a worker thread for each incoming call with the full request message.
 * The handler must end the call with bf_rpc_call_reply or bf_rpc_call_finish
 * before returning (if it returns without doing so the framework finishes the call
 * with INTERNAL). The framework itself answers grpc.health.v1.Health/Check and
 * gives UNIMPLEMENTED to methods outside the served services (options.services,
 * default bifrost.v1.Bifrost); the handler sees every method of a served service,
 * known or not. */
typedef void (*bf_rpc_handler_fn)(void *ctx, bf_rpc_call_t *call, const char *method,
                                  const uint8_t *request, size_t request_size);

/* Called for each call of a served service before its request message is read
 * (an unauthenticated peer cannot make the server receive and decode a large
 * message). A non-OK return ends the call with that status and err's message.
 * It may attach state to the call with bf_rpc_call_set_user. */
typedef int (*bf_rpc_authenticate_fn)(void *ctx, bf_rpc_call_t *call, const char *method,
                                      bf_error_t *err);

typedef struct bf_rpc_server_options {
  const char *address;        /* "0.0.0.0:50051"; port 0 picks a free port */
  int n_workers;              /* concurrent calls served; default 8 */
  /* A call whose client takes nothing for this long (a message or the status it
   * does not read, a request message it does not send) is cancelled with
   * DEADLINE_EXCEEDED, freeing its worker; 0 = never. */
  double stall_timeout_secs;
  bf_rpc_handler_fn handler;
  void *handler_ctx;
  bf_rpc_authenticate_fn authenticate; /* may be NULL; gets handler_ctx */
  /* Full names of the services whose methods go to handler ("bifrost.v1.Bifrost",
   * at most 8), NULL-terminated; NULL serves bifrost.v1.Bifrost only. The strings
   * must outlive the server. */
  const char *const *services;
  const char *tls_cert_pem;   /* with tls_key_pem: serve TLS only */
  const char *tls_key_pem;
  const char *tls_client_ca_pem; /* also require client certificates signed by it (mTLS) */
} bf_rpc_server_options_t;

/* Binds and starts serving. *out_port receives the bound port. */
int bf_rpc_server_start(const bf_rpc_server_options_t *options, bf_rpc_server_t **out,
                        int *out_port, bf_error_t *err);
/* Refuses new calls (UNAVAILABLE) while in-flight calls finish within grace_secs,
 * then stops accepting connections, cancels what remains, joins workers, frees.
 * Safe to call once. */
void bf_rpc_server_stop(bf_rpc_server_t *server, double grace_secs);

/* Unary success reply. */
int bf_rpc_call_reply(bf_rpc_call_t *call, const uint8_t *response, size_t size);
/* One message of a server stream; blocks until gRPC accepted it. Returns
 * BF_ECANCELLED if the client went away. */
int bf_rpc_call_send(bf_rpc_call_t *call, const uint8_t *message, size_t size);
/* The same for the message prefix[0..prefix_size) + data[0..size) without copying
 * data: data must stay valid until gRPC is done with it, which it says by calling
 * release(release_ctx) once (from any thread; also when the send fails). */
int bf_rpc_call_send_owned(bf_rpc_call_t *call, const uint8_t *prefix, size_t prefix_size,
                           uint8_t *data, size_t size, void (*release)(void *), void *release_ctx);
/* Ends the call with a bf status (mapped to gRPC) and message (OK ends a stream). */
int bf_rpc_call_finish(bf_rpc_call_t *call, int bf_status, const char *message);
/* The gRPC status code the call ended with, -1 while it has not ended. */
int bf_rpc_call_status_code(const bf_rpc_call_t *call);
/* Value of request metadata `key` (e.g. "authorization") or NULL; valid during
 * the handler. */
const char *bf_rpc_call_metadata(bf_rpc_call_t *call, const char *key, size_t *len);
/* One extra entry ("x-refreshed-token") for the reply's initial metadata; must be
 * set before anything is sent (BF_ECLOSED otherwise). A second call replaces it. */
int bf_rpc_call_set_initial_metadata(bf_rpc_call_t *call, const char *key, const char *value);
/* The name the authenticate hook gave the caller ("" until set). */
void bf_rpc_call_set_user(bf_rpc_call_t *call, const char *user);
const char *bf_rpc_call_user(const bf_rpc_call_t *call);
/* Takes the request message the handler was given (the same pointer, malloc'd): the
 * caller gives it back with bf_rpc_request_release, the framework no longer does.
 * NULL for an empty message or when called outside the handler. Lets a handler
 * keep the request's bytes (e.g. Arrow buffers decoded in place) past its return. */
uint8_t *bf_rpc_call_take_request(bf_rpc_call_t *call);
/* Frees a request taken with bf_rpc_call_take_request, or keeps it for a later
 * request of the same size (large requests are recycled: no fresh pages to fault
 * in per request). free() is also correct, only slower. Thread-safe. */
void bf_rpc_request_release(void *request);
/* Frees the recycled request buffers nobody took for idle_secs (0: all). */
void bf_rpc_request_pool_trim(double idle_secs);
/* Keeps at most max_bytes of them (default and most: 160 MiB; 0: none). */
void bf_rpc_request_pool_limit(size_t max_bytes);
/* The call's method ("/bifrost.v1.Bifrost/Query"), valid during the handler. */
const char *bf_rpc_call_method(const bf_rpc_call_t *call);
/* The peer's address ("ipv4:127.0.0.1:4242"), valid during the handler. */
const char *bf_rpc_call_peer(bf_rpc_call_t *call);
/* 1 when the call was ended for a client that took nothing for the server's
 * stall_timeout_secs (see bf_rpc_server_options_t). */
int bf_rpc_call_stalled(const bf_rpc_call_t *call);
/* True once the client cancelled the call or its deadline passed (the handler may
 * stop work early). Callable from any thread while the handler runs. */
int bf_rpc_call_cancelled(bf_rpc_call_t *call);
/* Seconds left until the client's deadline (INFINITY if none). */
double bf_rpc_call_time_left(bf_rpc_call_t *call);

/* ---- Client ---------------------------------------------------------------- */

typedef struct bf_rpc_channel bf_rpc_channel_t;

typedef struct bf_rpc_channel_options {
  const char *target;          /* "localhost:50051"; "http://" / "https://" prefix allowed;
                                  without a port BF_RPC_DEFAULT_PORT; port 0 is refused */
  bool tls;                    /* also implied by an https:// target */
  /* Sent as "authorization" metadata, may be NULL. "Basic base64(user:password)"
   * is not sent: the channel logs in with it (bifrost.v1 Login) and sends the
   * bearer token it gets, renewed before expiry and once after UNAUTHENTICATED. */
  const char *authorization;
  /* TLS: a private CA (default: the system roots) and a client certificate for
   * mTLS, PEM files; NULL falls back to $BIFROST_TLS_CA_FILE, $BIFROST_TLS_CERT_FILE,
   * $BIFROST_TLS_KEY_FILE. */
  const char *tls_ca_file;
  const char *tls_cert_file;
  const char *tls_key_file;
} bf_rpc_channel_options_t;

int bf_rpc_channel_create(const bf_rpc_channel_options_t *options, bf_rpc_channel_t **out,
                          bf_error_t *err);
void bf_rpc_channel_destroy(bf_rpc_channel_t *channel);

/* Unary call. timeout_secs <= 0 means no deadline. A non-OK gRPC status returns the
 * mapped bf status with the server's message in err. Thread-safe: a channel serves
 * concurrent calls from many threads. */
int bf_rpc_channel_unary(bf_rpc_channel_t *channel, const char *method, const uint8_t *request,
                         size_t request_size, double timeout_secs, bf_buffer_t *response,
                         bf_error_t *err);

/* Like bf_rpc_channel_unary for requests that are safe to repeat (reads,
 * registration): when the first attempt fails with UNAVAILABLE from the transport
 * (a connection that died, e.g. pooled from a server process that was restarted),
 * it is sent once more within what is left of timeout_secs. */
int bf_rpc_channel_unary_idempotent(bf_rpc_channel_t *channel, const char *method,
                                    const uint8_t *request, size_t request_size,
                                    double timeout_secs, bf_buffer_t *response, bf_error_t *err);

/* Unary call whose request is head (copied) followed by body (not copied); as
 * bf_rpc_channel_unary otherwise. gRPC reads the body in place, possibly after the
 * call has returned, so it takes a reference of its own (bf_shared_t, NULL: none);
 * the body can be sent again by another call. */
int bf_rpc_channel_unary_body(bf_rpc_channel_t *channel, const char *method, const uint8_t *head,
                              size_t head_size, bf_shared_t *body, double timeout_secs,
                              bf_buffer_t *response, bf_error_t *err);

/* Server-streaming call: on_message is invoked for each message in order; a non-zero
 * return cancels the call (result BF_ECANCELLED). */
typedef int (*bf_rpc_message_fn)(void *ctx, const uint8_t *message, size_t size);
/* Polled about every 100 ms while waiting for the server; non-zero cancels the call
 * (result BF_ECANCELLED). May be NULL. */
typedef int (*bf_rpc_cancel_fn)(void *ctx);
int bf_rpc_channel_server_stream(bf_rpc_channel_t *channel, const char *method,
                                 const uint8_t *request, size_t request_size,
                                 double timeout_secs, bf_rpc_message_fn on_message, void *ctx,
                                 bf_rpc_cancel_fn should_cancel, void *cancel_ctx,
                                 bf_error_t *err);

/* Pull-style server stream (rpc_stream.c): open sends the request without waiting;
 * each next() waits for one message, so the caller holds one message at a time and
 * gRPC flow control keeps the server from running ahead. A stream is used by one
 * thread at a time, except bf_rpc_stream_cancel, which any thread may call. The
 * request is idempotent: a stream that fails on the transport (UNAVAILABLE without
 * a server status) before its first message is reopened once. */
typedef struct bf_rpc_stream bf_rpc_stream_t;
int bf_rpc_stream_open(bf_rpc_channel_t *channel, const char *method, const uint8_t *request,
                       size_t request_size, double timeout_secs, bf_rpc_stream_t **out,
                       bf_error_t *err);
/* Replaces message's content with the next message (*done = 0), or ends the stream:
 * *done = 1 with BF_OK at a clean end, or the call's error status. After the end,
 * further calls repeat the final status. should_cancel (may be NULL) is polled
 * about every 100 ms while waiting; non-zero cancels the call (BF_ECANCELLED). */
int bf_rpc_stream_next(bf_rpc_stream_t *stream, bf_buffer_t *message, int *done,
                       bf_rpc_cancel_fn should_cancel, void *cancel_ctx, bf_error_t *err);
/* Cancels the call from any thread; a waiting or later next() returns BF_ECANCELLED
 * (unless the stream had already ended). */
void bf_rpc_stream_cancel(bf_rpc_stream_t *stream);
/* A received message held as gRPC received it (no copy yet): its size, a copy of
 * bytes [offset, offset + n) into dst (returns the bytes copied), and free. */
typedef struct bf_rpc_message bf_rpc_message_t;
size_t bf_rpc_message_size(const bf_rpc_message_t *message);
size_t bf_rpc_message_read(const bf_rpc_message_t *message, size_t offset, void *dst, size_t n);
void bf_rpc_message_free(bf_rpc_message_t *message);
/* A message over data (malloc'ed; owned from here on, also on failure: NULL). */
bf_rpc_message_t *bf_rpc_message_wrap(uint8_t *data, size_t size);
/* bf_rpc_stream_next without copying: *message (free it) is the next message, or
 * NULL with *done set at the end. */
int bf_rpc_stream_next_message(bf_rpc_stream_t *stream, bf_rpc_message_t **message, int *done,
                               bf_rpc_cancel_fn should_cancel, void *cancel_ctx, bf_error_t *err);
/* Cancels the call if it has not ended, and frees the stream. */
void bf_rpc_stream_close(bf_rpc_stream_t *stream);

#endif /* BIFROST_RPC_H */
