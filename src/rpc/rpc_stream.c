/* Client server-streaming calls, pull style: bf_rpc_stream_open sends the request,
 * each bf_rpc_stream_next receives one message, so a consumer holds one message at
 * a time (results stream through the client in bounded memory). Cancellation comes
 * from the consumer's hook (polled every 100 ms while waiting) or from any thread
 * (bf_rpc_stream_cancel). A stream that dies on the transport before its first
 * message is reopened once (the request is idempotent: a query).
 * bf_rpc_channel_server_stream, the callback form, is built on the same calls. */
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/rpc.h"
#include "rpc/rpc_internal.h"

struct bf_rpc_stream {
  bf_rpc_channel_t *ch;
  char *method;
  uint8_t *request;
  size_t request_size;
  double deadline;     /* monotonic seconds, 0 = none */
  pthread_mutex_t mu;  /* guards call.call against bf_rpc_stream_cancel during a reopen */
  bf__rpc_call_t call;
  grpc_op open_ops[4];
  grpc_byte_buffer *request_bb;
  int open_pending;    /* the open batch has not been plucked yet */
  int ended;           /* the status was received (or the stream failed to start) */
  int final_status;
  bf_error_t final_err;
  uint64_t messages;
  int reopened;
  double next_poll;
  atomic_int cancel_requested;
};

/* Starts the call and its first batch (metadata, request, half-close, initial
 * metadata) without waiting for it. */
static int stream_start(bf_rpc_stream_t *s, bf_error_t *err) {
  double timeout = 0;
  if (s->deadline > 0) {
    timeout = s->deadline - bf_time_monotonic();
    if (timeout <= 0) timeout = 1e-3; /* already late: the call fails with DEADLINE_EXCEEDED */
  }
  if (bf__rpc_call_start(s->ch, &s->call, s->method, timeout) != BF_OK) {
    bf_error_t start_err = s->call.start_err;
    bf__rpc_call_end(&s->call);
    memset(&s->call, 0, sizeof s->call);
    if (start_err.status != BF_OK) return bf_error_set(err, start_err.status, "%s", start_err.message);
    return bf_error_set(err, BF_EINTERNAL, "cannot create call %s", s->method);
  }
  s->request_bb = bf__rpc_byte_buffer_from(s->request, s->request_size);
  grpc_op *ops = s->open_ops;
  bf__rpc_op_send_initial(s->ch, &s->call, &ops[0]);
  memset(&ops[1], 0, 3 * sizeof ops[1]);
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = s->request_bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->call.initial_md;
  if (grpc_call_start_batch(s->call.call, ops, 4, ops, NULL) != GRPC_CALL_OK) {
    grpc_byte_buffer_destroy(s->request_bb);
    s->request_bb = NULL;
    bf__rpc_call_end(&s->call);
    memset(&s->call, 0, sizeof s->call);
    return bf_error_set(err, BF_EINTERNAL, "cannot start call %s", s->method);
  }
  s->open_pending = 1;
  return BF_OK;
}

int bf_rpc_stream_open(bf_rpc_channel_t *ch, const char *method, const uint8_t *request,
                       size_t request_size, double timeout_secs, bf_rpc_stream_t **out,
                       bf_error_t *err) {
  *out = NULL;
  bf_rpc_stream_t *s = calloc(1, sizeof *s);
  if (s == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  s->ch = ch;
  s->method = strdup(method);
  s->request = malloc(request_size ? request_size : 1);
  if (s->method == NULL || s->request == NULL) {
    free(s->method);
    free(s->request);
    free(s);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  if (request_size) memcpy(s->request, request, request_size);
  s->request_size = request_size;
  s->deadline = timeout_secs > 0 ? bf_time_monotonic() + timeout_secs : 0;
  s->next_poll = bf_time_monotonic() + 0.1;
  bf_error_init(&s->final_err);
  atomic_init(&s->cancel_requested, 0);
  pthread_mutex_init(&s->mu, NULL);
  int status = stream_start(s, err);
  if (status != BF_OK) {
    pthread_mutex_destroy(&s->mu);
    free(s->method);
    free(s->request);
    free(s);
    return status;
  }
  *out = s;
  return BF_OK;
}

static void poll_hook(bf_rpc_stream_t *s, bf_rpc_cancel_fn should_cancel, void *ctx, int force) {
  if (should_cancel == NULL || atomic_load(&s->cancel_requested)) return;
  double now = bf_time_monotonic();
  if (!force && now < s->next_poll) return;
  s->next_poll = now + 0.1;
  if (should_cancel(ctx)) bf_rpc_stream_cancel(s);
}

/* Waits for the batch tagged `ops`, polling the hook every 100 ms; 1 on success. */
static int wait_batch(bf_rpc_stream_t *s, void *tag, bf_rpc_cancel_fn should_cancel, void *ctx) {
  for (;;) {
    gpr_timespec until = should_cancel ? bf__rpc_deadline(0.1) : gpr_inf_future(GPR_CLOCK_REALTIME);
    grpc_event ev = grpc_completion_queue_pluck(s->call.cq, tag, until, NULL);
    if (ev.type == GRPC_OP_COMPLETE) return ev.success;
    poll_hook(s, should_cancel, ctx, 1);
  }
}

static void finish_open(bf_rpc_stream_t *s, bf_rpc_cancel_fn should_cancel, void *ctx) {
  if (!s->open_pending) return;
  wait_batch(s, s->open_ops, should_cancel, ctx); /* failures surface in the status */
  s->open_pending = 0;
  grpc_byte_buffer_destroy(s->request_bb);
  s->request_bb = NULL;
}

/* Receives the call's status (the stream ended or was cancelled) and frees the call.
 * Returns the bf status; *transport_failed as bf__rpc_call_status. */
static int receive_status(bf_rpc_stream_t *s, int *transport_failed, bf_error_t *err) {
  grpc_op st;
  memset(&st, 0, sizeof st);
  st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  st.data.recv_status_on_client.trailing_metadata = &s->call.trailing_md;
  st.data.recv_status_on_client.status = &s->call.status;
  st.data.recv_status_on_client.status_details = &s->call.details;
  int status;
  *transport_failed = 0;
  if (!bf__rpc_call_batch(&s->call, &st, 1))
    status = bf_error_set(err, BF_EINTERNAL, "call %s failed", s->method);
  else if (atomic_load(&s->cancel_requested))
    status = bf_error_set(err, BF_ECANCELLED, "%s cancelled by the client", s->method);
  else
    status = bf__rpc_call_status(&s->call, s->ch, transport_failed, err);
  /* Refused for its token: forget it, so a reopened call logs in again. */
  if (status == BF_EAUTH && s->call.auth_value) bf__rpc_channel_forget_token(s->ch, s->call.auth_value);
  pthread_mutex_lock(&s->mu);
  bf__rpc_call_end(&s->call);
  memset(&s->call, 0, sizeof s->call);
  pthread_mutex_unlock(&s->mu);
  return status;
}

static int end_with(bf_rpc_stream_t *s, int status, const bf_error_t *from, int *done, bf_error_t *err) {
  s->ended = 1;
  s->final_status = status;
  if (status != BF_OK) bf_error_set(&s->final_err, status, "%s", from->message);
  *done = 1;
  if (status != BF_OK && err != from) bf_error_set(err, status, "%s", from->message);
  return status;
}

/* A received message: gRPC's slices as received (never copied here), or bytes
 * handed over by bf_rpc_message_wrap. */
struct bf_rpc_message {
  grpc_byte_buffer *bb;
  uint8_t *data;
  size_t size;
};

bf_rpc_message_t *bf_rpc_message_wrap(uint8_t *data, size_t size) {
  bf_rpc_message_t *m = calloc(1, sizeof *m);
  if (m == NULL) {
    free(data);
    return NULL;
  }
  m->data = data;
  m->size = size;
  return m;
}

size_t bf_rpc_message_size(const bf_rpc_message_t *m) { return m->size; }

size_t bf_rpc_message_read(const bf_rpc_message_t *m, size_t offset, void *dst, size_t n) {
  if (offset >= m->size) return 0;
  if (n > m->size - offset) n = m->size - offset;
  if (m->bb == NULL) {
    if (n) memcpy(dst, m->data + offset, n);
    return n;
  }
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, m->bb)) return 0;
  grpc_slice slice;
  size_t at = 0, copied = 0;
  while (copied < n && grpc_byte_buffer_reader_next(&reader, &slice)) {
    size_t len = GRPC_SLICE_LENGTH(slice);
    if (at + len > offset) {
      size_t from = offset > at ? offset - at : 0;
      size_t take = len - from < n - copied ? len - from : n - copied;
      memcpy((uint8_t *)dst + copied, GRPC_SLICE_START_PTR(slice) + from, take);
      copied += take;
    }
    at += len;
    grpc_slice_unref(slice);
  }
  grpc_byte_buffer_reader_destroy(&reader);
  return copied;
}

void bf_rpc_message_free(bf_rpc_message_t *m) {
  if (m == NULL) return;
  if (m->bb) grpc_byte_buffer_destroy(m->bb);
  free(m->data);
  free(m);
}

int bf_rpc_stream_next_message(bf_rpc_stream_t *s, bf_rpc_message_t **message, int *done,
                               bf_rpc_cancel_fn should_cancel, void *cancel_ctx, bf_error_t *err) {
  *done = 0;
  *message = NULL;
  if (s->ended) {
    *done = 1;
    if (s->final_status != BF_OK) bf_error_set(err, s->final_status, "%s", s->final_err.message);
    return s->final_status;
  }
  for (;;) {
    finish_open(s, should_cancel, cancel_ctx);
    poll_hook(s, should_cancel, cancel_ctx, 0);
    grpc_byte_buffer *resp = NULL;
    int ok = 0;
    if (!atomic_load(&s->cancel_requested)) {
      grpc_op op;
      memset(&op, 0, sizeof op);
      op.op = GRPC_OP_RECV_MESSAGE;
      op.data.recv_message.recv_message = &resp;
      ok = grpc_call_start_batch(s->call.call, &op, 1, &op, NULL) == GRPC_CALL_OK &&
           wait_batch(s, &op, should_cancel, cancel_ctx);
    }
    if (ok && resp != NULL && !atomic_load(&s->cancel_requested)) {
      bf_rpc_message_t *m = calloc(1, sizeof *m);
      if (m == NULL) {
        grpc_byte_buffer_destroy(resp);
        bf_rpc_stream_cancel(s);
        int transport_failed;
        bf_error_t ignored;
        bf_error_init(&ignored);
        receive_status(s, &transport_failed, &ignored);
        bf_error_t oom;
        bf_error_set(&oom, BF_ENOMEM, "out of memory receiving a message of %s", s->method);
        return end_with(s, BF_ENOMEM, &oom, done, err);
      }
      m->bb = resp;
      m->size = grpc_byte_buffer_length(resp);
      *message = m;
      s->messages++;
      return BF_OK;
    }
    if (resp) grpc_byte_buffer_destroy(resp);
    int transport_failed;
    bf_error_t call_err;
    bf_error_init(&call_err);
    int status = receive_status(s, &transport_failed, &call_err);
    int auth_refused = status == BF_EAUTH && s->ch->login_user != NULL;
    if (((status == BF_EUNAVAILABLE && transport_failed) || auth_refused) && s->messages == 0 &&
        !s->reopened && (s->deadline == 0 || bf_time_monotonic() < s->deadline)) {
      s->reopened = 1;
      pthread_mutex_lock(&s->mu);
      int cancelled = atomic_load(&s->cancel_requested);
      int rc = cancelled ? BF_ECANCELLED : stream_start(s, &call_err);
      pthread_mutex_unlock(&s->mu);
      if (rc == BF_OK) continue;
      if (cancelled) bf_error_set(&call_err, BF_ECANCELLED, "%s cancelled by the client", s->method);
      status = rc;
    }
    return end_with(s, status, &call_err, done, err);
  }
}

int bf_rpc_stream_next(bf_rpc_stream_t *s, bf_buffer_t *message, int *done,
                       bf_rpc_cancel_fn should_cancel, void *cancel_ctx, bf_error_t *err) {
  bf_rpc_message_t *m;
  int status = bf_rpc_stream_next_message(s, &m, done, should_cancel, cancel_ctx, err);
  if (status != BF_OK || *done) return status;
  message->size = 0;
  size_t size = bf_rpc_message_size(m);
  if (bf_buffer_reserve(message, size) != BF_OK) {
    bf_rpc_message_free(m);
    bf_rpc_stream_cancel(s);
    int transport_failed;
    bf_error_t ignored;
    bf_error_init(&ignored);
    receive_status(s, &transport_failed, &ignored);
    bf_error_t oom;
    bf_error_set(&oom, BF_ENOMEM, "out of memory receiving a message of %s", s->method);
    return end_with(s, BF_ENOMEM, &oom, done, err);
  }
  message->size = bf_rpc_message_read(m, 0, message->data, size);
  bf_rpc_message_free(m);
  return BF_OK;
}

void bf_rpc_stream_cancel(bf_rpc_stream_t *s) {
  if (s == NULL) return;
  pthread_mutex_lock(&s->mu);
  atomic_store(&s->cancel_requested, 1);
  if (s->call.call != NULL) grpc_call_cancel(s->call.call, NULL);
  pthread_mutex_unlock(&s->mu);
}

void bf_rpc_stream_close(bf_rpc_stream_t *s) {
  if (s == NULL) return;
  if (!s->ended && s->call.call != NULL) {
    pthread_mutex_lock(&s->mu);
    grpc_call_cancel(s->call.call, NULL);
    pthread_mutex_unlock(&s->mu);
    finish_open(s, NULL, NULL);
    int transport_failed;
    bf_error_t ignored;
    bf_error_init(&ignored);
    receive_status(s, &transport_failed, &ignored);
  }
  if (s->request_bb) grpc_byte_buffer_destroy(s->request_bb);
  pthread_mutex_destroy(&s->mu);
  free(s->method);
  free(s->request);
  free(s);
}

int bf_rpc_channel_server_stream(bf_rpc_channel_t *ch, const char *method, const uint8_t *request,
                                 size_t request_size, double timeout_secs,
                                 bf_rpc_message_fn on_message, void *ctx,
                                 bf_rpc_cancel_fn should_cancel, void *cancel_ctx,
                                 bf_error_t *err) {
  bf_rpc_stream_t *s;
  BF_RETURN_NOT_OK(bf_rpc_stream_open(ch, method, request, request_size, timeout_secs, &s, err));
  bf_buffer_t message;
  bf_buffer_init(&message);
  int status, done = 0;
  for (;;) {
    status = bf_rpc_stream_next(s, &message, &done, should_cancel, cancel_ctx, err);
    if (status != BF_OK || done) break;
    if (on_message(ctx, message.data, message.size) != 0) {
      bf_rpc_stream_cancel(s);
      status = bf_error_set(err, BF_ECANCELLED, "%s cancelled by the client", method);
      break;
    }
  }
  bf_buffer_reset(&message);
  bf_rpc_stream_close(s);
  return status;
}
