/* gRPC core server framework. Each worker thread owns a completion queue, asks the
 * server for the next call of any method (grpc_server_request_call), and serves that
 * call synchronously: read the single request message, run the handler, which ends
 * the call with a unary reply, a stream of messages plus a final status, or an error.
 * A worker's queue carries only its current call's events (see struct bf_rpc_call).
 * The health service (grpc.health.v1 Check) is answered here, and methods outside
 * the served services (bifrost.v1.Bifrost unless the options list others) get
 * UNIMPLEMENTED. Shutdown drains first (new calls are answered UNAVAILABLE while
 * the running ones finish, within the grace period), then follows the order gRPC
 * core requires: shutdown_and_notify, a short wait for the connections to close,
 * cancel_all_calls, wait for the notification, join workers, destroy the server,
 * then drain and destroy the queues (see bf_rpc_server_stop). */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/rpc.h"
#include "bifrost/util.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc/rpc_internal.h"

#define BF_RPC_SERVICE_NAME "bifrost.v1.Bifrost"
#define BF_RPC_MAX_SERVICES 8
/* After the last call, how long connections get to close by themselves. */
#define BF_RPC_IDLE_LINGER_SECS 0.25

/* A call served by one worker. Two operations may be outstanding on the worker's
 * queue: the current batch and RECV_CLOSE_ON_SERVER, started as soon as the request
 * is read so that a client that goes away (cancel, deadline) is noticed while the
 * handler works. Events are collected under mu by whichever thread polls the queue:
 * the worker waiting for its batch, or a handler thread asking
 * bf_rpc_call_cancelled. */
struct bf_rpc_call {
  grpc_call *call;
  grpc_completion_queue *cq;
  grpc_call_details details;
  grpc_metadata_array request_md;
  int sent_initial_metadata;
  int finished;
  int status_code;      /* gRPC code sent, -1 until then */
  char method[256];
  char user[160];       /* set by the authenticate hook */
  char md_key[64];      /* one extra initial metadata entry, "" if none */
  char *md_value;       /* malloc'd */
  grpc_metadata *md_sent; /* malloc'd once sent; freed with the call */
  char *peer;           /* gpr_malloc'd by grpc_call_get_peer, on first use */
  pthread_mutex_t mu;
  void *done_tag;       /* guarded by mu: the batch tag that completed, or NULL */
  int done_success;     /* guarded by mu */
  int close_started;
  int close_done;       /* guarded by mu */
  int close_cancelled;  /* written by gRPC when close completes */
  char close_tag;       /* its address is the RECV_CLOSE tag */
  bf_buffer_t *request; /* the request message while the handler runs */
  double stall_secs;    /* the server's stall_timeout_secs (0 = none) */
  int stalled;          /* cancelled for it */
};

typedef struct worker {
  struct bf_rpc_server *server;
  grpc_completion_queue *cq;
  pthread_t thread;
  int started;
} worker_t;

struct bf_rpc_server {
  grpc_server *server;
  grpc_completion_queue *shutdown_cq;
  worker_t *workers;
  int n_workers;
  bf_rpc_handler_fn handler;
  void *handler_ctx;
  bf_rpc_authenticate_fn authenticate;
  double stall_timeout_secs;
  const char *services[BF_RPC_MAX_SERVICES]; /* full service names served by handler */
  size_t n_services;
  pthread_mutex_t mu;
  pthread_cond_t changed; /* signalled when a call ends or a worker leaves its loop */
  int n_serving;          /* guarded by mu: workers still in their loop */
  int n_running;          /* guarded by mu: calls being served (not refused) */
  int draining;           /* guarded by mu: new calls are refused */
};

/* True if method is "/<service>/<name>" for one of the served services. */
static int is_served(const struct bf_rpc_server *s, const char *method) {
  for (size_t i = 0; i < s->n_services; i++) {
    size_t n = strlen(s->services[i]);
    if (method[0] == '/' && strncmp(method + 1, s->services[i], n) == 0 && method[n + 1] == '/')
      return 1;
  }
  return 0;
}

static int is_service_name(const struct bf_rpc_server *s, const char *name) {
  for (size_t i = 0; i < s->n_services; i++)
    if (strcmp(name, s->services[i]) == 0) return 1;
  return 0;
}

/* Takes one event off the call's queue (waiting up to secs) and records it. Caller
 * holds c->mu. */
static void poll_locked(bf_rpc_call_t *c, double secs) {
  gpr_timespec deadline = secs > 0 ? bf__rpc_deadline(secs) : gpr_now(GPR_CLOCK_REALTIME);
  grpc_event ev = grpc_completion_queue_next(c->cq, deadline, NULL);
  if (ev.type != GRPC_OP_COMPLETE) return;
  if (ev.tag == &c->close_tag) {
    c->close_done = 1;
  } else {
    c->done_tag = ev.tag;
    c->done_success = ev.success;
  }
}

/* The client has taken nothing for stall_secs: cancel the call, so that what
 * waits on it completes (unsuccessfully) and the worker is free again. A call
 * ended here counts as finished with DEADLINE_EXCEEDED. Caller holds c->mu. */
static void cancel_stalled_locked(bf_rpc_call_t *c) {
  char message[200];
  if (c->close_started) /* the request was read: the client stopped taking what is sent */
    snprintf(message, sizeof message,
             "the client took nothing from this call for %.0f s (--client-stall-timeout)",
             c->stall_secs);
  else
    snprintf(message, sizeof message,
             "the client did not send its whole request within %.0f s (--client-stall-timeout)",
             c->stall_secs);
  grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED, message, NULL);
  c->stalled = 1;
  if (!c->finished) {
    c->finished = 1;
    c->status_code = GRPC_STATUS_DEADLINE_EXCEEDED;
  }
}

/* Polls the call's queue until done() holds; past the stall timeout (none when
 * 0) the call is cancelled once and the wait goes on for the cancelled
 * operations, which gRPC then completes. Caller holds c->mu. */
static void wait_locked(bf_rpc_call_t *c, int (*done)(const bf_rpc_call_t *, const void *),
                        const void *arg) {
  double deadline = c->stall_secs > 0 ? bf_time_monotonic() + c->stall_secs : 0;
  while (!done(c, arg)) {
    poll_locked(c, 0.05);
    if (deadline > 0 && !done(c, arg) && bf_time_monotonic() >= deadline) {
      cancel_stalled_locked(c);
      deadline = 0;
    }
  }
}

static int batch_done(const bf_rpc_call_t *c, const void *tag) { return c->done_tag == tag; }
static int close_done(const bf_rpc_call_t *c, const void *unused) {
  (void)unused;
  return c->close_done;
}

/* Runs one batch and waits for it. Returns 1 if the batch succeeded. */
static int run_batch(bf_rpc_call_t *c, grpc_op *ops, size_t n_ops) {
  void *tag = ops; /* any unique pointer */
  if (grpc_call_start_batch(c->call, ops, n_ops, tag, NULL) != GRPC_CALL_OK) return 0;
  pthread_mutex_lock(&c->mu);
  wait_locked(c, batch_done, tag);
  c->done_tag = NULL;
  int success = c->done_success;
  pthread_mutex_unlock(&c->mu);
  return success;
}

int bf_rpc_call_stalled(const bf_rpc_call_t *c) { return c->stalled; }

int bf_rpc_call_cancelled(bf_rpc_call_t *c) {
  if (!c->close_started) return 0;
  pthread_mutex_lock(&c->mu);
  if (!c->close_done) poll_locked(c, 0);
  int cancelled = c->close_done && !c->finished;
  pthread_mutex_unlock(&c->mu);
  return cancelled;
}

/* Waits for RECV_CLOSE_ON_SERVER, which completes once the status is sent or the
 * client is gone; nothing may be outstanding when the call is released. */
static void wait_close(bf_rpc_call_t *c) {
  if (!c->close_started) return;
  pthread_mutex_lock(&c->mu);
  wait_locked(c, close_done, NULL);
  pthread_mutex_unlock(&c->mu);
}

/* Sends the call's extra metadata entry, if any, with the initial metadata (the
 * entry lives until the call is released). */
static void add_initial_metadata(bf_rpc_call_t *c, grpc_op *op) {
  memset(op, 0, sizeof *op);
  op->op = GRPC_OP_SEND_INITIAL_METADATA;
  c->sent_initial_metadata = 1;
  if (c->md_key[0] && c->md_value) {
    grpc_metadata *md = malloc(sizeof *md);
    if (md == NULL) return;
    memset(md, 0, sizeof *md);
    md->key = grpc_slice_from_copied_string(c->md_key);
    md->value = grpc_slice_from_copied_string(c->md_value);
    op->data.send_initial_metadata.count = 1;
    op->data.send_initial_metadata.metadata = md;
    c->md_sent = md;
  }
}

/* Appends SEND_STATUS_FROM_SERVER to ops, runs the batch and waits for the call to
 * close. A failure also carries the exact bf status name as trailing metadata
 * (bf_name is NULL for a status with no bf equivalent, e.g. UNIMPLEMENTED). */
static int send_grpc_status(bf_rpc_call_t *c, grpc_op *ops, size_t n_ops, grpc_status_code code,
                            const char *bf_name, const char *message) {
  grpc_slice details = grpc_slice_from_copied_string(message ? message : "");
  grpc_metadata trailer;
  memset(&trailer, 0, sizeof trailer);
  trailer.key = grpc_slice_from_static_string(BF_RPC_STATUS_METADATA_KEY);
  trailer.value = grpc_slice_from_static_string(bf_name ? bf_name : "");
  grpc_op *op = &ops[n_ops++];
  memset(op, 0, sizeof *op);
  op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  op->data.send_status_from_server.status = code;
  op->data.send_status_from_server.status_details = &details;
  op->data.send_status_from_server.trailing_metadata_count =
      code != GRPC_STATUS_OK && bf_name != NULL ? 1 : 0;
  op->data.send_status_from_server.trailing_metadata = &trailer;
  c->finished = 1; /* from here on a completed close is not a cancellation */
  c->status_code = (int)code;
  int ok = run_batch(c, ops, n_ops);
  grpc_slice_unref(details);
  wait_close(c);
  return ok && !c->close_cancelled ? BF_OK : BF_ECANCELLED;
}

static int send_status(bf_rpc_call_t *c, grpc_op *ops, size_t n_ops, int bf_status,
                       const char *message) {
  return send_grpc_status(c, ops, n_ops, (grpc_status_code)bf_rpc_status_to_grpc(bf_status),
                          bf_status_name(bf_status), message);
}

int bf_rpc_call_reply(bf_rpc_call_t *c, const uint8_t *response, size_t size) {
  if (c->finished) return BF_ECLOSED;
  grpc_op ops[4];
  size_t n = 0;
  if (!c->sent_initial_metadata) add_initial_metadata(c, &ops[n++]);
  grpc_byte_buffer *bb = bf__rpc_byte_buffer_from(response, size);
  memset(&ops[n], 0, sizeof ops[n]);
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].data.send_message.send_message = bb;
  n++;
  int status = send_status(c, ops, n, BF_OK, "");
  grpc_byte_buffer_destroy(bb);
  return status;
}

int bf_rpc_call_send(bf_rpc_call_t *c, const uint8_t *message, size_t size) {
  if (c->finished) return BF_ECLOSED;
  grpc_op ops[2];
  size_t n = 0;
  if (!c->sent_initial_metadata) add_initial_metadata(c, &ops[n++]);
  grpc_byte_buffer *bb = bf__rpc_byte_buffer_from(message, size);
  memset(&ops[n], 0, sizeof ops[n]);
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].data.send_message.send_message = bb;
  n++;
  int ok = run_batch(c, ops, n);
  grpc_byte_buffer_destroy(bb);
  return ok ? BF_OK : BF_ECANCELLED;
}

int bf_rpc_call_send_owned(bf_rpc_call_t *c, const uint8_t *prefix, size_t prefix_size,
                           uint8_t *data, size_t size, void (*release)(void *), void *release_ctx) {
  if (c->finished || size == 0) {
    release(release_ctx);
    return c->finished ? BF_ECLOSED : bf_rpc_call_send(c, prefix, prefix_size);
  }
  grpc_slice slices[2];
  slices[0] = grpc_slice_malloc(prefix_size);
  if (prefix_size) memcpy(GRPC_SLICE_START_PTR(slices[0]), prefix, prefix_size);
  /* gRPC calls release once it is done with data */
  slices[1] = grpc_slice_new_with_user_data(data, size, release, release_ctx);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(slices, 2);
  grpc_slice_unref(slices[0]);
  grpc_slice_unref(slices[1]);
  grpc_op ops[2];
  size_t n = 0;
  if (!c->sent_initial_metadata) add_initial_metadata(c, &ops[n++]);
  memset(&ops[n], 0, sizeof ops[n]);
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].data.send_message.send_message = bb;
  n++;
  int ok = run_batch(c, ops, n);
  grpc_byte_buffer_destroy(bb);
  return ok ? BF_OK : BF_ECANCELLED;
}

int bf_rpc_call_status_code(const bf_rpc_call_t *c) { return c->finished ? c->status_code : -1; }

int bf_rpc_call_finish(bf_rpc_call_t *c, int bf_status, const char *message) {
  if (c->finished) return BF_ECLOSED;
  grpc_op ops[3];
  size_t n = 0;
  if (!c->sent_initial_metadata) add_initial_metadata(c, &ops[n++]);
  return send_status(c, ops, n, bf_status, message);
}

int bf_rpc_call_set_initial_metadata(bf_rpc_call_t *c, const char *key, const char *value) {
  if (c->sent_initial_metadata) return BF_ECLOSED;
  if (strlen(key) >= sizeof c->md_key) return BF_EINVAL;
  size_t n = strlen(value) + 1;
  char *copy = malloc(n);
  if (copy == NULL) return BF_ENOMEM;
  memcpy(copy, value, n);
  free(c->md_value);
  c->md_value = copy;
  snprintf(c->md_key, sizeof c->md_key, "%s", key);
  return BF_OK;
}

void bf_rpc_call_set_user(bf_rpc_call_t *c, const char *user) {
  snprintf(c->user, sizeof c->user, "%s", user ? user : "");
}

const char *bf_rpc_call_user(const bf_rpc_call_t *c) { return c->user; }

uint8_t *bf_rpc_call_take_request(bf_rpc_call_t *call) {
  if (call->request == NULL || call->request->data == NULL) return NULL;
  uint8_t *data = call->request->data;
  bf_buffer_init(call->request);
  return data;
}

const char *bf_rpc_call_method(const bf_rpc_call_t *c) { return c->method; }

const char *bf_rpc_call_peer(bf_rpc_call_t *c) {
  if (c->peer == NULL && c->call) c->peer = grpc_call_get_peer(c->call);
  return c->peer ? c->peer : "?";
}

const char *bf_rpc_call_metadata(bf_rpc_call_t *c, const char *key, size_t *len) {
  size_t key_len = strlen(key);
  for (size_t i = 0; i < c->request_md.count; i++) {
    const grpc_metadata *md = &c->request_md.metadata[i];
    if (GRPC_SLICE_LENGTH(md->key) == key_len &&
        memcmp(GRPC_SLICE_START_PTR(md->key), key, key_len) == 0) {
      if (len) *len = GRPC_SLICE_LENGTH(md->value);
      return (const char *)GRPC_SLICE_START_PTR(md->value);
    }
  }
  return NULL;
}

double bf_rpc_call_time_left(bf_rpc_call_t *c) {
  gpr_timespec deadline = gpr_convert_clock_type(c->details.deadline, GPR_CLOCK_REALTIME);
  if (gpr_time_cmp(deadline, gpr_inf_future(GPR_CLOCK_REALTIME)) >= 0) return INFINITY;
  gpr_timespec left = gpr_time_sub(deadline, gpr_now(GPR_CLOCK_REALTIME));
  return (double)left.tv_sec + (double)left.tv_nsec / 1e9;
}

/* grpc.health.v1.Health/Check: the server as a whole ("") and each served service are
 * SERVING whenever the server answers at all; other service names are NOT_FOUND, as
 * the health checking protocol specifies. */
static void answer_health(const struct bf_rpc_server *s, bf_rpc_call_t *c, const uint8_t *request,
                          size_t size) {
  Grpc__Health__V1__HealthCheckRequest *req =
      grpc__health__v1__health_check_request__unpack(NULL, size, request);
  if (req == NULL) {
    bf_rpc_call_finish(c, BF_EINVAL, "malformed HealthCheckRequest");
    return;
  }
  int known = strcmp(req->service, "") == 0 || is_service_name(s, req->service);
  grpc__health__v1__health_check_request__free_unpacked(req, NULL);
  if (!known) {
    bf_rpc_call_finish(c, BF_ENOTFOUND, "unknown service");
    return;
  }
  Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  resp.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  uint8_t packed[16];
  BF_DCHECK(grpc__health__v1__health_check_response__get_packed_size(&resp) <= sizeof packed);
  size_t packed_size = grpc__health__v1__health_check_response__pack(&resp, packed);
  bf_rpc_call_reply(c, packed, packed_size);
}

static void serve_call(struct bf_rpc_server *s, bf_rpc_call_t *c) {
  size_t method_len = GRPC_SLICE_LENGTH(c->details.method);
  if (method_len >= sizeof c->method) method_len = sizeof c->method - 1;
  memcpy(c->method, GRPC_SLICE_START_PTR(c->details.method), method_len);
  c->method[method_len] = '\0';

  grpc_byte_buffer *request = NULL;
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &request;
  if (s->authenticate && is_served(s, c->method)) {
    bf_error_t auth_err;
    bf_error_init(&auth_err);
    int auth_status = s->authenticate(s->handler_ctx, c, c->method, &auth_err);
    if (auth_status != BF_OK) { /* refused before its message is read */
      bf_rpc_call_finish(c, auth_status, auth_err.message);
      return;
    }
  }
  if (!run_batch(c, &op, 1)) return; /* client went away */
  grpc_op close_op;
  memset(&close_op, 0, sizeof close_op);
  close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  close_op.data.recv_close_on_server.cancelled = &c->close_cancelled;
  if (grpc_call_start_batch(c->call, &close_op, 1, &c->close_tag, NULL) == GRPC_CALL_OK)
    c->close_started = 1;
  bf_buffer_t body;
  bf_buffer_init(&body);
  if (request == NULL) {
    bf_rpc_call_finish(c, BF_EINVAL, "request message missing");
    return;
  }
  bf__rpc_request_buffer(&body, grpc_byte_buffer_length(request));
  int status = bf__rpc_read_byte_buffer(request, &body);
  grpc_byte_buffer_destroy(request);
  if (status != BF_OK) {
    bf_rpc_request_release(body.data);
    bf_rpc_call_finish(c, BF_EINTERNAL, "could not read the request");
    return;
  }
  if (strcmp(c->method, BF_RPC_METHOD_HEALTH_CHECK) == 0) {
    answer_health(s, c, body.data ? body.data : (const uint8_t *)"", body.size);
  } else if (!is_served(s, c->method)) {
    grpc_op ops[2];
    size_t n = 0;
    if (!c->sent_initial_metadata) add_initial_metadata(c, &ops[n++]);
    char message[300];
    snprintf(message, sizeof message, "unknown method %s", c->method);
    send_grpc_status(c, ops, n, GRPC_STATUS_UNIMPLEMENTED, NULL, message);
  } else {
    c->request = &body;
    s->handler(s->handler_ctx, c, c->method, body.data ? body.data : (const uint8_t *)"",
               body.size);
    c->request = NULL;
    if (!c->finished) bf_rpc_call_finish(c, BF_EINTERNAL, "handler did not answer the call");
  }
  bf_rpc_request_release(body.data);
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  for (;;) {
    bf_rpc_call_t c;
    memset(&c, 0, sizeof c);
    c.cq = w->cq;
    c.stall_secs = w->server->stall_timeout_secs;
    pthread_mutex_init(&c.mu, NULL);
    grpc_call_details_init(&c.details);
    grpc_metadata_array_init(&c.request_md);
    grpc_call_error rc = grpc_server_request_call(w->server->server, &c.call, &c.details,
                                                  &c.request_md, w->cq, w->cq, &c);
    if (rc != GRPC_CALL_OK) {
      grpc_call_details_destroy(&c.details);
      grpc_metadata_array_destroy(&c.request_md);
      break;
    }
    grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    int got_call = ev.type == GRPC_OP_COMPLETE && ev.success;
    int serving = 0;
    if (got_call) {
      pthread_mutex_lock(&w->server->mu);
      serving = !w->server->draining;
      w->server->n_running += serving;
      pthread_mutex_unlock(&w->server->mu);
      if (serving)
        serve_call(w->server, &c);
      else /* refused before its message is read */
        bf_rpc_call_finish(&c, BF_EUNAVAILABLE, "the server is shutting down");
    }
    /* Nothing of this call may stay on the queue the next call uses: its close
     * (already collected when a status was sent; still to come when the request
     * never arrived or the call was cancelled for stalling). */
    if (got_call) wait_close(&c);
    if (c.call) grpc_call_unref(c.call);
    if (c.peer) gpr_free(c.peer);
    if (c.md_sent) {
      grpc_slice_unref(c.md_sent->key);
      grpc_slice_unref(c.md_sent->value);
      free(c.md_sent);
    }
    free(c.md_value);
    grpc_call_details_destroy(&c.details);
    grpc_metadata_array_destroy(&c.request_md);
    pthread_mutex_destroy(&c.mu);
    if (serving) {
      pthread_mutex_lock(&w->server->mu);
      w->server->n_running--;
      pthread_cond_broadcast(&w->server->changed);
      pthread_mutex_unlock(&w->server->mu);
    }
    if (!got_call) break; /* server shutting down */
  }
  pthread_mutex_lock(&w->server->mu);
  w->server->n_serving--;
  pthread_cond_broadcast(&w->server->changed);
  pthread_mutex_unlock(&w->server->mu);
  return NULL;
}

/* Drains and destroys the queues and frees the server (its grpc_server is gone). */
static void free_server(struct bf_rpc_server *s) {
  for (int i = 0; s->workers && i < s->n_workers; i++) {
    grpc_completion_queue_shutdown(s->workers[i].cq);
    while (grpc_completion_queue_next(s->workers[i].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(s->workers[i].cq);
  }
  grpc_completion_queue_shutdown(s->shutdown_cq);
  grpc_completion_queue_destroy(s->shutdown_cq);
  pthread_cond_destroy(&s->changed);
  pthread_mutex_destroy(&s->mu);
  free(s->workers);
  free(s);
  bf_rpc_global_shutdown();
}

int bf_rpc_server_start(const bf_rpc_server_options_t *options, bf_rpc_server_t **out,
                        int *out_port, bf_error_t *err) {
  bf_rpc_global_init();
  struct bf_rpc_server *s = calloc(1, sizeof *s);
  if (s == NULL) {
    bf_rpc_global_shutdown();
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t cond_attr;
  pthread_condattr_init(&cond_attr);
  pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC);
  pthread_cond_init(&s->changed, &cond_attr);
  pthread_condattr_destroy(&cond_attr);
  s->handler = options->handler;
  s->stall_timeout_secs = options->stall_timeout_secs > 0 ? options->stall_timeout_secs : 0;
  s->handler_ctx = options->handler_ctx;
  s->authenticate = options->authenticate;
  s->n_workers = options->n_workers > 0 ? options->n_workers : 8;
  if (options->services == NULL) s->services[s->n_services++] = BF_RPC_SERVICE_NAME;
  for (size_t i = 0; options->services && options->services[i]; i++) {
    if (s->n_services == BF_RPC_MAX_SERVICES) {
      pthread_cond_destroy(&s->changed);
      pthread_mutex_destroy(&s->mu);
      free(s);
      bf_rpc_global_shutdown();
      return bf_error_set(err, BF_EINVAL, "at most %d services can be served",
                          BF_RPC_MAX_SERVICES);
    }
    s->services[s->n_services++] = options->services[i];
  }
  grpc_arg args[] = {
      bf__rpc_int_arg(GRPC_ARG_ALLOW_REUSEPORT, 0),
      bf__rpc_int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, BF_RPC_MAX_MESSAGE_BYTES),
      bf__rpc_int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, BF_RPC_MAX_MESSAGE_BYTES),
  };
  grpc_channel_args channel_args = {sizeof args / sizeof args[0], args};
  s->server = grpc_server_create(&channel_args, NULL);
  s->shutdown_cq = grpc_completion_queue_create_for_pluck(NULL);
  s->workers = calloc((size_t)s->n_workers, sizeof *s->workers);
  if (s->workers == NULL) goto fail_nomem;
  for (int i = 0; i < s->n_workers; i++) {
    s->workers[i].server = s;
    s->workers[i].cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->server, s->workers[i].cq, NULL);
  }
  grpc_server_credentials *creds;
  if (options->tls_cert_pem && options->tls_key_pem) {
    grpc_ssl_pem_key_cert_pair pair = {options->tls_key_pem, options->tls_cert_pem};
    creds = grpc_ssl_server_credentials_create_ex(
        options->tls_client_ca_pem, &pair, 1,
        options->tls_client_ca_pem ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                   : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
  } else {
    creds = grpc_insecure_server_credentials_create();
  }
  int port = grpc_server_add_http2_port(s->server, options->address, creds);
  grpc_server_credentials_release(creds);
  if (port == 0) {
    bf_error_set(err, BF_EUNAVAILABLE, "cannot listen on %s (address in use or invalid)",
                 options->address);
    goto fail;
  }
  grpc_server_start(s->server);
  for (int i = 0; i < s->n_workers; i++) {
    pthread_mutex_lock(&s->mu);
    s->n_serving++;
    pthread_mutex_unlock(&s->mu);
    if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
      pthread_mutex_lock(&s->mu);
      s->n_serving--;
      pthread_mutex_unlock(&s->mu);
      bf_error_set(err, BF_EINTERNAL, "cannot start worker threads");
      bf_rpc_server_stop(s, 0);
      return BF_EINTERNAL;
    }
    s->workers[i].started = 1;
  }
  *out = s;
  if (out_port) *out_port = port;
  return BF_OK;
fail_nomem:
  bf_error_set(err, BF_ENOMEM, "out of memory");
fail:
  grpc_server_destroy(s->server); /* never started: destroy directly */
  free_server(s);
  return err ? err->status : BF_EUNAVAILABLE;
}

/* Waits until *count (guarded by mu) is 0 or grace_secs have passed. */
static void wait_for_zero(struct bf_rpc_server *s, const int *count, double grace_secs) {
  struct timespec deadline = bf_time_after(CLOCK_MONOTONIC, grace_secs);
  pthread_mutex_lock(&s->mu);
  while (*count > 0)
    if (pthread_cond_timedwait(&s->changed, &s->mu, &deadline) == ETIMEDOUT) break;
  pthread_mutex_unlock(&s->mu);
}

/* Refuses new calls and waits until no call is being served or grace_secs have
 * passed. */
static void drain_calls(struct bf_rpc_server *s, double grace_secs) {
  pthread_mutex_lock(&s->mu);
  s->draining = 1;
  pthread_mutex_unlock(&s->mu);
  wait_for_zero(s, &s->n_running, grace_secs);
}

/* Waits until every worker has left its loop or grace_secs have passed. After
 * shutdown_and_notify a worker leaves only once it has no call: its pending
 * request_call fails, and so does any it makes after finishing a call, so no call
 * is running and none will be matched when all have left. */
static void wait_for_workers(struct bf_rpc_server *s, double grace_secs) {
  wait_for_zero(s, &s->n_serving, grace_secs);
}

/* Why new calls are refused here first and GOAWAY (shutdown_and_notify) goes out
 * only after the last running call: sent at once, the GOAWAY made chttp2 close the
 * connection of a call answered during the drain right after writing its status;
 * a client that wrote to it meanwhile (a flow-control update) met a closed socket
 * and lost the status it had not read: 2 of 25 runs of a query answered during the
 * drain, on an idle machine, failed with "Broken pipe". Now the GOAWAY and its
 * PING follow the last status on each connection, so a client has read its status
 * before it answers the PING that lets chttp2 close.
 * Why the grace period ends at the last running call, not at gRPC's notification:
 * gRPC core notifies only once every connection is gone, and a graceful GOAWAY
 * closes a connection only after the client answers the PING sent with it (or
 * closes on reading the GOAWAY). A gRPC core client (1.51, epoll1) reads its socket
 * only while one of its threads polls: an idle channel is read by the client
 * channel's backup poller alone, every GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS
 * (5,000 ms). Measured: SIGTERM with one idle DatasetClient process drained in
 * 4.3-4.8 s, with five in 3.9-4.7 s (until the slowest client's next poll); with
 * that interval set to 100 ms in the clients, 50-70 ms. So once no call is
 * running, the stop waits at most BF_RPC_IDLE_LINGER_SECS more for the
 * notification, then cancel_all_calls closes the connections still open, which are
 * idle ones (drain 254-261 ms with 1 or 5 idle clients). */
void bf_rpc_server_stop(bf_rpc_server_t *s, double grace_secs) {
  if (s == NULL) return;
  static int shutdown_tag;
  double started = bf_time_monotonic();
  if (grace_secs > 0) drain_calls(s, grace_secs);
  grpc_server_shutdown_and_notify(s->server, s->shutdown_cq, &shutdown_tag);
  int notified = 0;
  double left = grace_secs - (bf_time_monotonic() - started);
  if (left > 0) {
    wait_for_workers(s, left); /* no call is served now: they leave at once */
    left = grace_secs - (bf_time_monotonic() - started);
  }
  if (left > 0) {
    double linger = left < BF_RPC_IDLE_LINGER_SECS ? left : BF_RPC_IDLE_LINGER_SECS;
    grpc_event ev = grpc_completion_queue_pluck(s->shutdown_cq, &shutdown_tag,
                                                bf__rpc_deadline(linger), NULL);
    notified = ev.type == GRPC_OP_COMPLETE;
  }
  if (!notified) { /* idle connections left, or the grace is over: end what remains */
    grpc_server_cancel_all_calls(s->server);
    grpc_completion_queue_pluck(s->shutdown_cq, &shutdown_tag, gpr_inf_future(GPR_CLOCK_REALTIME),
                                NULL);
  }
  for (int i = 0; i < s->n_workers; i++)
    if (s->workers[i].started) pthread_join(s->workers[i].thread, NULL);
  grpc_server_destroy(s->server);
  free_server(s);
}
