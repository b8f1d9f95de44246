/* gRPC core client channel: unary and server-streaming calls. Each call gets its own
 * pluck completion queue, so one channel serves any number of threads at once.
 * Errors come back as bf statuses: the exact one from the server's "bf-status"
 * trailing metadata when present, else mapped from the gRPC code, with the
 * server's status message (or gRPC's, e.g. "failed to connect") in err. */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/rpc.h"
#include "rpc/rpc_internal.h"

struct bf_rpc_channel {
  grpc_channel *channel;
  char *authorization; /* owned, may be NULL */
  char target[256];
};

int bf_rpc_channel_create(const bf_rpc_channel_options_t *options, bf_rpc_channel_t **out,
                          bf_error_t *err) {
  const char *target = options->target ? options->target : "localhost:50051";
  bool tls = options->tls;
  if (strncmp(target, "https://", 8) == 0) {
    target += 8;
    tls = true;
  } else if (strncmp(target, "http://", 7) == 0) {
    target += 7;
  } else if (strncmp(target, "grpc://", 7) == 0) {
    target += 7;
  }
  if (target[0] == '\0') return bf_error_set(err, BF_EINVAL, "empty server address");
  struct bf_rpc_channel *ch = calloc(1, sizeof *ch);
  if (ch == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  snprintf(ch->target, sizeof ch->target, "%s", target);
  if (options->authorization) {
    ch->authorization = strdup(options->authorization);
    if (ch->authorization == NULL) {
      free(ch);
      return bf_error_set(err, BF_ENOMEM, "out of memory");
    }
  }
  bf__rpc_fork_support_init();
  bf_rpc_global_init();
  /* A private subchannel pool: a channel never shares (or inherits, after fork())
   * another channel's connection, so a forked child's calls cannot write on the
   * parent's connection. */
  grpc_arg args[3];
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = BF_RPC_MAX_MESSAGE_BYTES;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = BF_RPC_MAX_MESSAGE_BYTES;
  args[2].type = GRPC_ARG_INTEGER;
  args[2].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
  args[2].value.integer = 1;
  grpc_channel_args channel_args = {3, args};
  grpc_channel_credentials *creds = tls ? grpc_ssl_credentials_create(NULL, NULL, NULL, NULL)
                                        : grpc_insecure_credentials_create();
  ch->channel = grpc_channel_create(ch->target, creds, &channel_args);
  grpc_channel_credentials_release(creds);
  *out = ch;
  return BF_OK;
}

void bf_rpc_channel_destroy(bf_rpc_channel_t *ch) {
  if (ch == NULL) return;
  grpc_channel_destroy(ch->channel);
  free(ch->authorization);
  free(ch);
  bf_rpc_global_shutdown();
}

typedef struct client_call {
  grpc_call *call;
  grpc_completion_queue *cq;
  grpc_metadata auth_md;
  grpc_metadata_array initial_md;
  grpc_metadata_array trailing_md;
  grpc_status_code status;
  grpc_slice details;
} client_call_t;

static int call_start(bf_rpc_channel_t *ch, client_call_t *c, const char *method, double timeout) {
  memset(c, 0, sizeof *c);
  c->cq = grpc_completion_queue_create_for_pluck(NULL);
  grpc_slice method_slice = grpc_slice_from_copied_string(method);
  c->call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                     method_slice, NULL, bf__rpc_deadline(timeout), NULL);
  grpc_slice_unref(method_slice);
  grpc_metadata_array_init(&c->initial_md);
  grpc_metadata_array_init(&c->trailing_md);
  c->details = grpc_empty_slice();
  return c->call ? BF_OK : BF_EINTERNAL;
}

static int call_batch(client_call_t *c, grpc_op *ops, size_t n) {
  if (grpc_call_start_batch(c->call, ops, n, ops, NULL) != GRPC_CALL_OK) return 0;
  grpc_event ev = grpc_completion_queue_pluck(c->cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* Turns the received status into a bf status + message. */
static int call_status(client_call_t *c, bf_rpc_channel_t *ch, bf_error_t *err) {
  if (c->status == GRPC_STATUS_OK) return BF_OK;
  int status = bf_rpc_status_from_grpc(c->status);
  int from_server = 0; /* the status came from a Bifrost handler, not the transport */
  for (size_t i = 0; i < c->trailing_md.count; i++) {
    const grpc_metadata *md = &c->trailing_md.metadata[i];
    if (GRPC_SLICE_LENGTH(md->key) == strlen(BF_RPC_STATUS_METADATA_KEY) &&
        memcmp(GRPC_SLICE_START_PTR(md->key), BF_RPC_STATUS_METADATA_KEY,
               strlen(BF_RPC_STATUS_METADATA_KEY)) == 0) {
      status = bf__rpc_status_from_name((const char *)GRPC_SLICE_START_PTR(md->value),
                                        GRPC_SLICE_LENGTH(md->value), status);
      from_server = 1;
    }
  }
  int n = (int)GRPC_SLICE_LENGTH(c->details);
  const char *text = (const char *)GRPC_SLICE_START_PTR(c->details);
  if (c->status == GRPC_STATUS_UNAVAILABLE && !from_server)
    return bf_error_set(err, status, "server %s unavailable: %.*s", ch->target, n, text);
  if (c->status == GRPC_STATUS_DEADLINE_EXCEEDED && n == 0)
    return bf_error_set(err, status, "deadline exceeded");
  return bf_error_set(err, status, "%.*s", n, text);
}

static void call_end(client_call_t *c) {
  grpc_metadata_array_destroy(&c->initial_md);
  grpc_metadata_array_destroy(&c->trailing_md);
  grpc_slice_unref(c->details);
  if (c->call) grpc_call_unref(c->call);
  /* Every batch was waited for, so the queue is empty. */
  grpc_completion_queue_shutdown(c->cq);
  grpc_completion_queue_destroy(c->cq);
}

static void op_send_initial(bf_rpc_channel_t *ch, client_call_t *c, grpc_op *op) {
  memset(op, 0, sizeof *op);
  op->op = GRPC_OP_SEND_INITIAL_METADATA;
  if (ch->authorization) {
    c->auth_md.key = grpc_slice_from_static_string("authorization");
    c->auth_md.value = grpc_slice_from_static_string(ch->authorization);
    op->data.send_initial_metadata.count = 1;
    op->data.send_initial_metadata.metadata = &c->auth_md;
  }
}

int bf_rpc_channel_unary(bf_rpc_channel_t *ch, const char *method, const uint8_t *request,
                         size_t request_size, double timeout_secs, bf_buffer_t *response,
                         bf_error_t *err) {
  client_call_t c;
  if (call_start(ch, &c, method, timeout_secs) != BF_OK) {
    call_end(&c);
    return bf_error_set(err, BF_EINTERNAL, "cannot create call %s", method);
  }
  grpc_byte_buffer *req = bf__rpc_byte_buffer_from(request, request_size);
  grpc_byte_buffer *resp = NULL;
  grpc_op ops[6];
  op_send_initial(ch, &c, &ops[0]);
  memset(&ops[1], 0, sizeof ops[1]);
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = req;
  memset(&ops[2], 0, sizeof ops[2]);
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  memset(&ops[3], 0, sizeof ops[3]);
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &c.initial_md;
  memset(&ops[4], 0, sizeof ops[4]);
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &resp;
  memset(&ops[5], 0, sizeof ops[5]);
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &c.trailing_md;
  ops[5].data.recv_status_on_client.status = &c.status;
  ops[5].data.recv_status_on_client.status_details = &c.details;
  int status;
  if (!call_batch(&c, ops, 6)) {
    status = bf_error_set(err, BF_EINTERNAL, "call %s failed", method);
  } else {
    status = call_status(&c, ch, err);
    if (status == BF_OK) {
      if (resp == NULL)
        status = bf_error_set(err, BF_EINTERNAL, "%s: server sent no response", method);
      else if (bf__rpc_read_byte_buffer(resp, response) != BF_OK)
        status = bf_error_set(err, BF_ENOMEM, "out of memory reading the response");
    }
  }
  if (resp) grpc_byte_buffer_destroy(resp);
  grpc_byte_buffer_destroy(req);
  call_end(&c);
  return status;
}

/* The caller's cancel hook, polled about every 100 ms: while waiting for the server,
 * and between messages when they arrive faster than that. */
typedef struct cancel_poll {
  bf_rpc_cancel_fn should_cancel; /* may be NULL */
  void *ctx;
  double next_poll; /* monotonic seconds */
  int cancelled;
} cancel_poll_t;

static void poll_cancel(client_call_t *c, cancel_poll_t *p, int force) {
  if (p->should_cancel == NULL || p->cancelled) return;
  double now = bf_time_monotonic();
  if (!force && now < p->next_poll) return;
  p->next_poll = now + 0.1;
  if (p->should_cancel(p->ctx)) {
    p->cancelled = 1;
    grpc_call_cancel(c->call, NULL);
  }
}

/* Like call_batch, but waits in 100 ms slices and cancels the call when the hook says
 * so (the batch then completes promptly with failure). */
static int call_batch_cancellable(client_call_t *c, grpc_op *ops, size_t n, cancel_poll_t *p) {
  if (p->should_cancel == NULL) return call_batch(c, ops, n);
  if (grpc_call_start_batch(c->call, ops, n, ops, NULL) != GRPC_CALL_OK) return 0;
  for (;;) {
    grpc_event ev = grpc_completion_queue_pluck(c->cq, ops, bf__rpc_deadline(0.1), NULL);
    if (ev.type == GRPC_OP_COMPLETE) return ev.success;
    poll_cancel(c, p, 1); /* 100 ms passed */
  }
}

int bf_rpc_channel_server_stream(bf_rpc_channel_t *ch, const char *method, const uint8_t *request,
                                 size_t request_size, double timeout_secs,
                                 bf_rpc_message_fn on_message, void *ctx,
                                 bf_rpc_cancel_fn should_cancel, void *cancel_ctx,
                                 bf_error_t *err) {
  client_call_t c;
  if (call_start(ch, &c, method, timeout_secs) != BF_OK) {
    call_end(&c);
    return bf_error_set(err, BF_EINTERNAL, "cannot create call %s", method);
  }
  grpc_byte_buffer *req = bf__rpc_byte_buffer_from(request, request_size);
  grpc_op ops[4];
  op_send_initial(ch, &c, &ops[0]);
  memset(&ops[1], 0, sizeof ops[1]);
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = req;
  memset(&ops[2], 0, sizeof ops[2]);
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  memset(&ops[3], 0, sizeof ops[3]);
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &c.initial_md;
  cancel_poll_t poll = {should_cancel, cancel_ctx, bf_time_monotonic() + 0.1, 0};
  /* failures surface in the status below */
  call_batch_cancellable(&c, ops, 4, &poll);
  grpc_byte_buffer_destroy(req);
  bf_buffer_t message;
  bf_buffer_init(&message);
  for (;;) {
    grpc_byte_buffer *resp = NULL;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &resp;
    poll_cancel(&c, &poll, 0);
    if (poll.cancelled || !call_batch_cancellable(&c, &op, 1, &poll) || resp == NULL) {
      if (resp) grpc_byte_buffer_destroy(resp);
      break;
    }
    message.size = 0;
    int rc = bf__rpc_read_byte_buffer(resp, &message);
    grpc_byte_buffer_destroy(resp);
    if (rc != BF_OK || on_message(ctx, message.data, message.size) != 0) {
      poll.cancelled = 1;
      grpc_call_cancel(c.call, NULL);
      break;
    }
  }
  bf_buffer_reset(&message);
  grpc_op st;
  memset(&st, 0, sizeof st);
  st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  st.data.recv_status_on_client.trailing_metadata = &c.trailing_md;
  st.data.recv_status_on_client.status = &c.status;
  st.data.recv_status_on_client.status_details = &c.details;
  int status;
  if (!call_batch(&c, &st, 1))
    status = bf_error_set(err, BF_EINTERNAL, "call %s failed", method);
  else if (poll.cancelled)
    status = bf_error_set(err, BF_ECANCELLED, "%s cancelled by the client", method);
  else
    status = call_status(&c, ch, err);
  call_end(&c);
  return status;
}
