/* Tests for the gRPC transport: a bf_rpc_server on a free port with a test handler
 * (echo, streams, errors, slow calls) and bf_rpc_channel calls against it, covering
 * the status mapping round trip, large messages, streaming order, deadlines, health,
 * concurrent callers on one channel and shutdown with a call in flight (cancelled at
 * the grace, or answered within it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bifrost/rpc.h"
#include "grpc/health/v1/health.pb-c.h"

#define METHOD_ECHO "/bifrost.v1.Bifrost/TestEcho"
#define METHOD_AUTH "/bifrost.v1.Bifrost/TestAuth"
#define METHOD_STREAM "/bifrost.v1.Bifrost/TestStream"
#define METHOD_FAIL "/bifrost.v1.Bifrost/TestFail"
#define METHOD_SLOW "/bifrost.v1.Bifrost/TestSlow"
#define METHOD_SILENT "/bifrost.v1.Bifrost/TestSilent"

typedef struct test_server {
  bf_rpc_server_t *server;
  int port;
  char target[64];
  pthread_mutex_t mu;
  int slow_started;       /* guarded by mu */
  int slow_saw_cancel;    /* guarded by mu */
  int slow_finish_status; /* guarded by mu */
} test_server_t;

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Stream request: u32 count, u32 index after which to fail (0xffffffff: never).
 * Message i is u32 i followed by i bytes of (uint8_t)i. */
static void handle_stream(bf_rpc_call_t *call, const uint8_t *request, size_t size) {
  if (size != 8) {
    bf_rpc_call_finish(call, BF_EINVAL, "stream request must be 8 bytes");
    return;
  }
  uint32_t count = get_u32(request), fail_after = get_u32(request + 4);
  uint8_t message[4 + 255];
  for (uint32_t i = 0; i < count; i++) {
    if (i == fail_after) {
      bf_rpc_call_finish(call, BF_EQUERY, "query failed mid-stream");
      return;
    }
    put_u32(message, i);
    memset(message + 4, (int)(i & 0xff), i & 0xff);
    if (bf_rpc_call_send(call, message, 4 + (i & 0xff)) != BF_OK) return; /* client gone */
  }
  bf_rpc_call_finish(call, BF_OK, "");
}

/* Slow request: u32 milliseconds to work unless cancelled first. */
static void handle_slow(test_server_t *ts, bf_rpc_call_t *call, const uint8_t *request,
                        size_t size) {
  uint32_t work_ms = size == 4 ? get_u32(request) : 0;
  pthread_mutex_lock(&ts->mu);
  ts->slow_started++;
  pthread_mutex_unlock(&ts->mu);
  int cancelled = 0;
  for (uint32_t waited = 0; waited < work_ms && !cancelled; waited += 10) {
    sleep_ms(10);
    cancelled = bf_rpc_call_cancelled(call);
  }
  int status = cancelled ? bf_rpc_call_finish(call, BF_ECANCELLED, "cancelled")
                         : bf_rpc_call_reply(call, (const uint8_t *)"done", 4);
  pthread_mutex_lock(&ts->mu);
  ts->slow_saw_cancel += cancelled;
  ts->slow_finish_status = status;
  pthread_mutex_unlock(&ts->mu);
}

static void test_handler(void *ctx, bf_rpc_call_t *call, const char *method,
                         const uint8_t *request, size_t request_size) {
  test_server_t *ts = ctx;
  if (strcmp(method, METHOD_ECHO) == 0) {
    bf_rpc_call_reply(call, request, request_size);
  } else if (strcmp(method, METHOD_AUTH) == 0) {
    size_t len = 0;
    const char *value = bf_rpc_call_metadata(call, "authorization", &len);
    if (value == NULL)
      bf_rpc_call_finish(call, BF_EAUTH, "no authorization metadata");
    else
      bf_rpc_call_reply(call, (const uint8_t *)value, len);
  } else if (strcmp(method, METHOD_STREAM) == 0) {
    handle_stream(call, request, request_size);
  } else if (strcmp(method, METHOD_FAIL) == 0) {
    /* request: int32 bf status (LE) followed by the message text */
    int status = request_size >= 4 ? (int)get_u32(request) : BF_EINTERNAL;
    char message[256];
    size_t n = request_size >= 4 ? request_size - 4 : 0;
    if (n >= sizeof message) n = sizeof message - 1;
    if (n) memcpy(message, request + 4, n);
    message[n] = '\0';
    bf_rpc_call_finish(call, status, message);
  } else if (strcmp(method, METHOD_SLOW) == 0) {
    handle_slow(ts, call, request, request_size);
  } else if (strcmp(method, METHOD_SILENT) == 0) {
    /* returns without answering: the framework must end the call */
  } else {
    bf_rpc_call_finish(call, BF_EINVAL, "unknown method");
  }
}

static test_server_t *server_start(int n_workers) {
  test_server_t *ts = calloc(1, sizeof *ts);
  assert_non_null(ts);
  pthread_mutex_init(&ts->mu, NULL);
  bf_rpc_server_options_t options = {.address = "127.0.0.1:0",
                                     .n_workers = n_workers,
                                     .handler = test_handler,
                                     .handler_ctx = ts};
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_rpc_server_start(&options, &ts->server, &ts->port, &err), BF_OK);
  assert_true(ts->port > 0);
  snprintf(ts->target, sizeof ts->target, "127.0.0.1:%d", ts->port);
  return ts;
}

static void server_stop(test_server_t *ts, double grace_secs) {
  bf_rpc_server_stop(ts->server, grace_secs);
  pthread_mutex_destroy(&ts->mu);
  free(ts);
}

static bf_rpc_channel_t *channel_open(const char *target, const char *authorization) {
  bf_rpc_channel_options_t options = {.target = target, .authorization = authorization};
  bf_rpc_channel_t *channel = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_rpc_channel_create(&options, &channel, &err), BF_OK);
  return channel;
}

typedef struct fixture {
  test_server_t *ts;
  bf_rpc_channel_t *channel;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  f->ts = server_start(6);
  f->channel = channel_open(f->ts->target, "Bearer secret-token");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  bf_rpc_channel_destroy(f->channel);
  server_stop(f->ts, 1.0);
  free(f);
  return 0;
}

/* ---- status mapping ----------------------------------------------------------- */

static void test_status_mapping(void **state) {
  (void)state;
  static const struct {
    int bf, grpc;
  } expected[] = {
      {BF_OK, 0},          {BF_EINVAL, 3},     {BF_ENOTFOUND, 5},   {BF_EEXIST, 6},
      {BF_EMISMATCH, 9},   {BF_EPERM, 7},      {BF_ETIMEOUT, 4},    {BF_EUNAVAILABLE, 14},
      {BF_EQUERY, 3},      {BF_ECORRUPT, 3},   {BF_EFULL, 8},       {BF_EAUTH, 16},
      {BF_ECANCELLED, 1},  {BF_ECONFLICT, 10}, {BF_EINTERNAL, 13},  {BF_ENOMEM, 13},
      {BF_EIO, 13},
  };
  for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
    assert_int_equal(bf_rpc_status_to_grpc(expected[i].bf), expected[i].grpc);
  /* codes back to the statuses that own them */
  static const int owners[] = {BF_OK,        BF_EINVAL,       BF_ENOTFOUND, BF_EEXIST,
                               BF_EMISMATCH, BF_EPERM,        BF_ETIMEOUT,  BF_EUNAVAILABLE,
                               BF_EFULL,     BF_EAUTH,        BF_ECANCELLED, BF_ECONFLICT,
                               BF_EINTERNAL};
  for (size_t i = 0; i < sizeof owners / sizeof owners[0]; i++)
    assert_int_equal(bf_rpc_status_from_grpc(bf_rpc_status_to_grpc(owners[i])), owners[i]);
  assert_int_equal(bf_rpc_status_from_grpc(12 /* UNIMPLEMENTED */), BF_EINVAL);
  assert_int_equal(bf_rpc_status_from_grpc(2 /* UNKNOWN */), BF_EINTERNAL);
  assert_int_equal(bf_rpc_status_from_grpc(15 /* DATA_LOSS */), BF_EINTERNAL);
}

/* ---- unary -------------------------------------------------------------------- */

static void test_unary_round_trip(void **state) {
  fixture_t *f = *state;
  bf_buffer_t response;
  bf_buffer_init(&response);
  bf_error_t err;
  bf_error_init(&err);
  const char *text = "hello bifrost";
  assert_int_equal(bf_rpc_channel_unary(f->channel, METHOD_ECHO, (const uint8_t *)text,
                                        strlen(text), 5.0, &response, &err),
                   BF_OK);
  assert_int_equal(response.size, strlen(text));
  assert_memory_equal(response.data, text, strlen(text));
  /* empty request and response */
  response.size = 0;
  assert_int_equal(bf_rpc_channel_unary(f->channel, METHOD_ECHO, NULL, 0, 5.0, &response, &err),
                   BF_OK);
  assert_int_equal(response.size, 0);
  bf_buffer_reset(&response);
}

static void test_authorization_metadata(void **state) {
  fixture_t *f = *state;
  bf_buffer_t response;
  bf_buffer_init(&response);
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(
      bf_rpc_channel_unary(f->channel, METHOD_AUTH, NULL, 0, 5.0, &response, &err), BF_OK);
  assert_int_equal(response.size, strlen("Bearer secret-token"));
  assert_memory_equal(response.data, "Bearer secret-token", response.size);
  bf_buffer_reset(&response);

  bf_rpc_channel_t *anonymous = channel_open(f->ts->target, NULL);
  assert_int_equal(bf_rpc_channel_unary(anonymous, METHOD_AUTH, NULL, 0, 5.0, &response, &err),
                   BF_EAUTH);
  assert_string_equal(err.message, "no authorization metadata");
  assert_int_equal(response.size, 0);
  bf_rpc_channel_destroy(anonymous);
}

static void test_large_message(void **state) {
  fixture_t *f = *state;
  size_t size = 24u << 20; /* above gRPC's 4 MiB default in both directions */
  uint8_t *request = malloc(size);
  assert_non_null(request);
  for (size_t i = 0; i < size; i++) request[i] = (uint8_t)(i * 2654435761u >> 24);
  bf_buffer_t response;
  bf_buffer_init(&response);
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_rpc_channel_unary(f->channel, METHOD_ECHO, request, size, 30.0, &response, &err);
  if (status != BF_OK) fprintf(stderr, "large echo: %s\n", err.message);
  assert_int_equal(status, BF_OK);
  assert_int_equal(response.size, size);
  assert_memory_equal(response.data, request, size);
  bf_buffer_reset(&response);
  free(request);
}

/* ---- errors ------------------------------------------------------------------- */

static int call_fail(bf_rpc_channel_t *channel, int bf_status, const char *message,
                     bf_error_t *err) {
  uint8_t request[256];
  put_u32(request, (uint32_t)bf_status);
  size_t n = strlen(message);
  memcpy(request + 4, message, n);
  bf_buffer_t response;
  bf_buffer_init(&response);
  int status = bf_rpc_channel_unary(channel, METHOD_FAIL, request, 4 + n, 5.0, &response, err);
  assert_int_equal(response.size, 0); /* untouched on failure */
  bf_buffer_reset(&response);
  return status;
}

static void test_error_status_round_trip(void **state) {
  fixture_t *f = *state;
  /* statuses sharing a gRPC code with another one survive through "bf-status" */
  static const int statuses[] = {BF_EMISMATCH, BF_EQUERY, BF_ECORRUPT, BF_EINVAL, BF_ENOTFOUND,
                                 BF_EEXIST,    BF_EFULL,  BF_ECONFLICT, BF_EIO,   BF_ENOMEM,
                                 BF_ECLOSED,   BF_EPERM};
  for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
    bf_error_t err;
    bf_error_init(&err);
    char message[64];
    snprintf(message, sizeof message, "table t: %s", bf_status_name(statuses[i]));
    assert_int_equal(call_fail(f->channel, statuses[i], message, &err), statuses[i]);
    assert_int_equal(err.status, statuses[i]);
    assert_string_equal(err.message, message);
  }
}

static void test_handler_without_answer(void **state) {
  fixture_t *f = *state;
  bf_buffer_t response;
  bf_buffer_init(&response);
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(
      bf_rpc_channel_unary(f->channel, METHOD_SILENT, NULL, 0, 5.0, &response, &err),
      BF_EINTERNAL);
  assert_non_null(strstr(err.message, "did not answer"));
  bf_buffer_reset(&response);
}

static void test_unknown_method(void **state) {
  fixture_t *f = *state;
  bf_buffer_t response;
  bf_buffer_init(&response);
  bf_error_t err;
  bf_error_init(&err);
  /* outside the Bifrost service: UNIMPLEMENTED from the framework */
  int status = bf_rpc_channel_unary(f->channel, "/other.v1.Service/Method", NULL, 0, 5.0,
                                    &response, &err);
  assert_int_equal(status, BF_EINVAL);
  assert_non_null(strstr(err.message, "/other.v1.Service/Method"));
  /* inside it: the handler decides */
  bf_error_init(&err);
  status = bf_rpc_channel_unary(f->channel, "/bifrost.v1.Bifrost/NoSuch", NULL, 0, 5.0,
                                &response, &err);
  assert_int_equal(status, BF_EINVAL);
  assert_string_equal(err.message, "unknown method");
  bf_buffer_reset(&response);
}

static void test_deadline_exceeded(void **state) {
  fixture_t *f = *state;
  pthread_mutex_lock(&f->ts->mu);
  int saw_cancel_before = f->ts->slow_saw_cancel;
  pthread_mutex_unlock(&f->ts->mu);
  uint8_t request[4];
  put_u32(request, 5000);
  bf_buffer_t response;
  bf_buffer_init(&response);
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(
      bf_rpc_channel_unary(f->channel, METHOD_SLOW, request, 4, 0.2, &response, &err),
      BF_ETIMEOUT);
  assert_int_equal(err.status, BF_ETIMEOUT);
  bf_buffer_reset(&response);
  /* the handler notices the expired deadline and stops early */
  int saw_cancel = 0;
  for (int i = 0; i < 300 && !saw_cancel; i++) {
    pthread_mutex_lock(&f->ts->mu);
    saw_cancel = f->ts->slow_saw_cancel > saw_cancel_before;
    pthread_mutex_unlock(&f->ts->mu);
    if (!saw_cancel) sleep_ms(10);
  }
  assert_true(saw_cancel);
}

static void test_server_unavailable(void **state) {
  (void)state;
  /* a port that was just free: bind a server, stop it, call it */
  test_server_t *ts = server_start(1);
  char target[64];
  snprintf(target, sizeof target, "%s", ts->target);
  server_stop(ts, 0.1);
  bf_rpc_channel_t *channel = channel_open(target, NULL);
  bf_buffer_t response;
  bf_buffer_init(&response);
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_rpc_channel_unary(channel, METHOD_ECHO, NULL, 0, 5.0, &response, &err),
                   BF_EUNAVAILABLE);
  assert_non_null(strstr(err.message, target));
  bf_buffer_reset(&response);
  bf_rpc_channel_destroy(channel);
}

static void test_port_in_use(void **state) {
  fixture_t *f = *state;
  char address[64];
  snprintf(address, sizeof address, "127.0.0.1:%d", f->ts->port);
  bf_rpc_server_options_t options = {
      .address = address, .n_workers = 1, .handler = test_handler, .handler_ctx = f->ts};
  bf_rpc_server_t *second = NULL;
  bf_error_t err;
  bf_error_init(&err);
  /* so_reuseport is off: a second server must not silently share the port */
  assert_int_equal(bf_rpc_server_start(&options, &second, NULL, &err), BF_EUNAVAILABLE);
  assert_null(second);
  assert_non_null(strstr(err.message, address));
}

/* ---- health ------------------------------------------------------------------- */

static int health_check(bf_rpc_channel_t *channel, const char *service, int *serving_status,
                        bf_error_t *err) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = (char *)service;
  uint8_t packed[128];
  size_t n = grpc__health__v1__health_check_request__pack(&req, packed);
  bf_buffer_t response;
  bf_buffer_init(&response);
  int status =
      bf_rpc_channel_unary(channel, BF_RPC_METHOD_HEALTH_CHECK, packed, n, 5.0, &response, err);
  if (status == BF_OK) {
    Grpc__Health__V1__HealthCheckResponse *resp = grpc__health__v1__health_check_response__unpack(
        NULL, response.size, response.data ? response.data : (const uint8_t *)"");
    assert_non_null(resp);
    *serving_status = (int)resp->status;
    grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
  }
  bf_buffer_reset(&response);
  return status;
}

static void test_health_check(void **state) {
  fixture_t *f = *state;
  bf_error_t err;
  bf_error_init(&err);
  int serving = -1;
  assert_int_equal(health_check(f->channel, "", &serving, &err), BF_OK);
  assert_int_equal(serving, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
  serving = -1;
  assert_int_equal(health_check(f->channel, "bifrost.v1.Bifrost", &serving, &err), BF_OK);
  assert_int_equal(serving, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
  assert_int_equal(health_check(f->channel, "no.such.Service", &serving, &err), BF_ENOTFOUND);
}

/* ---- streaming ---------------------------------------------------------------- */

typedef struct stream_state {
  uint32_t n_received;
  uint32_t stop_after; /* on_message asks to cancel after this many; 0: never */
  int out_of_order;
} stream_state_t;

static int on_stream_message(void *ctx, const uint8_t *message, size_t size) {
  stream_state_t *s = ctx;
  uint32_t index = size >= 4 ? get_u32(message) : UINT32_MAX;
  int ok = index == s->n_received && size == 4 + (index & 0xff);
  for (size_t i = 4; ok && i < size; i++) ok = message[i] == (uint8_t)index;
  if (!ok) s->out_of_order = 1;
  s->n_received++;
  return s->stop_after != 0 && s->n_received >= s->stop_after;
}

static int run_stream(bf_rpc_channel_t *channel, uint32_t count, uint32_t fail_after,
                      stream_state_t *s, bf_rpc_cancel_fn should_cancel, void *cancel_ctx,
                      bf_error_t *err) {
  uint8_t request[8];
  put_u32(request, count);
  put_u32(request + 4, fail_after);
  return bf_rpc_channel_server_stream(channel, METHOD_STREAM, request, sizeof request, 10.0,
                                      on_stream_message, s, should_cancel, cancel_ctx, err);
}

static void test_stream_in_order(void **state) {
  fixture_t *f = *state;
  stream_state_t s = {0, 0, 0};
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(run_stream(f->channel, 100, UINT32_MAX, &s, NULL, NULL, &err), BF_OK);
  assert_int_equal(s.n_received, 100);
  assert_false(s.out_of_order);
  /* an empty stream is fine too */
  stream_state_t empty = {0, 0, 0};
  assert_int_equal(run_stream(f->channel, 0, UINT32_MAX, &empty, NULL, NULL, &err), BF_OK);
  assert_int_equal(empty.n_received, 0);
}

static void test_stream_error_mid_stream(void **state) {
  fixture_t *f = *state;
  stream_state_t s = {0, 0, 0};
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(run_stream(f->channel, 100, 7, &s, NULL, NULL, &err), BF_EQUERY);
  assert_string_equal(err.message, "query failed mid-stream");
  assert_int_equal(s.n_received, 7);
  assert_false(s.out_of_order);
}

static void test_stream_cancel_from_callback(void **state) {
  fixture_t *f = *state;
  stream_state_t s = {0, 5, 0};
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(run_stream(f->channel, 100000, UINT32_MAX, &s, NULL, NULL, &err),
                   BF_ECANCELLED);
  assert_int_equal(s.n_received, 5);
  /* the channel still works afterwards */
  stream_state_t again = {0, 0, 0};
  assert_int_equal(run_stream(f->channel, 10, UINT32_MAX, &again, NULL, NULL, &err), BF_OK);
  assert_int_equal(again.n_received, 10);
}

static int cancel_after_deadline(void *ctx) { return bf_time_monotonic() >= *(double *)ctx; }

static void test_stream_cancel_hook(void **state) {
  fixture_t *f = *state;
  uint8_t request[4];
  put_u32(request, 10000);
  stream_state_t s = {0, 0, 0};
  double cancel_at = bf_time_monotonic() + 0.3;
  bf_error_t err;
  bf_error_init(&err);
  double started = bf_time_monotonic();
  /* the slow method sends nothing for 10 s; the hook must interrupt the wait */
  assert_int_equal(bf_rpc_channel_server_stream(f->channel, METHOD_SLOW, request, 4, 30.0,
                                                on_stream_message, &s, cancel_after_deadline,
                                                &cancel_at, &err),
                   BF_ECANCELLED);
  assert_true(bf_time_monotonic() - started < 5.0);
  assert_int_equal(s.n_received, 0);
}

static void test_stream_pull_and_end(void **state) {
  fixture_t *f = *state;
  uint8_t request[8];
  put_u32(request, 3);
  put_u32(request + 4, UINT32_MAX);
  bf_rpc_stream_t *s;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_rpc_stream_open(f->channel, METHOD_STREAM, request, 8, 10.0, &s, &err), BF_OK);
  bf_buffer_t msg;
  bf_buffer_init(&msg);
  int done = 0, n = 0;
  while (bf_rpc_stream_next(s, &msg, &done, NULL, NULL, &err) == BF_OK && !done) {
    assert_int_equal(get_u32(msg.data), (uint32_t)n);
    n++;
  }
  assert_int_equal(n, 3);
  assert_true(done);
  /* after the end, next repeats it */
  assert_int_equal(bf_rpc_stream_next(s, &msg, &done, NULL, NULL, &err), BF_OK);
  assert_true(done);
  bf_rpc_stream_close(s);
  /* closing an unread stream cancels it; the channel still works */
  put_u32(request, 100000);
  assert_int_equal(bf_rpc_stream_open(f->channel, METHOD_STREAM, request, 8, 10.0, &s, &err), BF_OK);
  assert_int_equal(bf_rpc_stream_next(s, &msg, &done, NULL, NULL, &err), BF_OK);
  bf_rpc_stream_close(s);
  bf_buffer_reset(&msg);
  stream_state_t again = {0, 0, 0};
  assert_int_equal(run_stream(f->channel, 10, UINT32_MAX, &again, NULL, NULL, &err), BF_OK);
}

static void *cancel_later(void *arg) {
  sleep_ms(300);
  bf_rpc_stream_cancel(arg);
  return NULL;
}

static void test_stream_cancel_from_another_thread(void **state) {
  fixture_t *f = *state;
  uint8_t request[4];
  put_u32(request, 10000);
  bf_rpc_stream_t *s;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_rpc_stream_open(f->channel, METHOD_SLOW, request, 4, 30.0, &s, &err), BF_OK);
  pthread_t thread;
  assert_int_equal(pthread_create(&thread, NULL, cancel_later, s), 0);
  bf_buffer_t msg;
  bf_buffer_init(&msg);
  int done = 0;
  /* the slow method sends nothing for 10 s; no hook, only the other thread's cancel */
  assert_int_equal(bf_rpc_stream_next(s, &msg, &done, NULL, NULL, &err), BF_ECANCELLED);
  assert_true(done);
  pthread_join(thread, NULL);
  bf_rpc_stream_close(s);
  bf_buffer_reset(&msg);
}

static void test_target_port_rules(void **state) {
  (void)state;
  const char *bad[] = {"127.0.0.1:0", "host:abc", "host:70000", "[::1", "[::1]x", ":50051", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    bf_rpc_channel_options_t options = {.target = bad[i]};
    bf_rpc_channel_t *channel = NULL;
    bf_error_t err;
    bf_error_init(&err);
    assert_int_equal(bf_rpc_channel_create(&options, &channel, &err), BF_EINVAL);
    assert_null(channel);
  }
  const char *good[] = {"127.0.0.1", "localhost", "::1", "[::1]", "[::1]:1", "dns:///localhost:1",
                        "http://127.0.0.1"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) bf_rpc_channel_destroy(channel_open(good[i], NULL));
}

/* ---- concurrency -------------------------------------------------------------- */

typedef struct worker_arg {
  bf_rpc_channel_t *channel;
  int id;
  int failures;
} worker_arg_t;

static void *concurrent_worker(void *arg) {
  worker_arg_t *w = arg;
  bf_buffer_t response;
  bf_buffer_init(&response);
  for (int i = 0; i < 50; i++) {
    char payload[64];
    int n = snprintf(payload, sizeof payload, "thread %d call %d", w->id, i);
    bf_error_t err;
    bf_error_init(&err);
    response.size = 0;
    if (i % 10 == 9) {
      stream_state_t s = {0, 0, 0};
      if (run_stream(w->channel, 20, UINT32_MAX, &s, NULL, NULL, &err) != BF_OK ||
          s.n_received != 20 || s.out_of_order)
        w->failures++;
      continue;
    }
    if (bf_rpc_channel_unary(w->channel, METHOD_ECHO, (const uint8_t *)payload, (size_t)n, 10.0,
                             &response, &err) != BF_OK ||
        response.size != (size_t)n || memcmp(response.data, payload, (size_t)n) != 0)
      w->failures++;
  }
  bf_buffer_reset(&response);
  return NULL;
}

static void test_concurrent_calls_one_channel(void **state) {
  fixture_t *f = *state;
  pthread_t threads[4];
  worker_arg_t args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (worker_arg_t){f->channel, i, 0};
    assert_int_equal(pthread_create(&threads[i], NULL, concurrent_worker, &args[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(threads[i], NULL);
    assert_int_equal(args[i].failures, 0);
  }
}

/* ---- shutdown ----------------------------------------------------------------- */

typedef struct slow_call {
  const char *target;
  int status;
  bf_error_t err;
  uint32_t work_ms;   /* 0: 30 s */
  int answered_done;  /* the response was "done" */
} slow_call_t;

static void *slow_caller(void *arg) {
  slow_call_t *sc = arg;
  bf_rpc_channel_t *channel = channel_open(sc->target, NULL);
  uint8_t request[4];
  put_u32(request, sc->work_ms ? sc->work_ms : 30000);
  bf_buffer_t response;
  bf_buffer_init(&response);
  bf_error_init(&sc->err);
  sc->status = bf_rpc_channel_unary(channel, METHOD_SLOW, request, 4, 60.0, &response, &sc->err);
  sc->answered_done = response.size == 4 && memcmp(response.data, "done", 4) == 0;
  bf_buffer_reset(&response);
  bf_rpc_channel_destroy(channel);
  return NULL;
}

static void test_shutdown_with_call_in_flight(void **state) {
  (void)state;
  test_server_t *ts = server_start(2);
  slow_call_t sc = {ts->target, BF_OK, {0, {0}}, 0, 0};
  pthread_t thread;
  assert_int_equal(pthread_create(&thread, NULL, slow_caller, &sc), 0);
  int started = 0;
  for (int i = 0; i < 500 && !started; i++) {
    pthread_mutex_lock(&ts->mu);
    started = ts->slow_started;
    pthread_mutex_unlock(&ts->mu);
    if (!started) sleep_ms(10);
  }
  assert_true(started);
  double stop_started = bf_time_monotonic();
  bf_rpc_server_t *server = ts->server;
  bf_rpc_server_stop(server, 0.2); /* the handler would work 30 s */
  assert_true(bf_time_monotonic() - stop_started < 10.0);
  pthread_join(thread, NULL);
  assert_int_not_equal(sc.status, BF_OK);
  assert_int_equal(ts->slow_saw_cancel, 1);
  pthread_mutex_destroy(&ts->mu);
  free(ts);
}

/* A call running at stop is answered within the grace, and stop returns once it is
 * done instead of waiting out the grace (the workers all left: nothing to wait for,
 * an idle connection of another channel included). */
static void test_shutdown_answers_a_call_within_the_grace(void **state) {
  (void)state;
  test_server_t *ts = server_start(2);
  bf_rpc_channel_t *idle = channel_open(ts->target, NULL);
  bf_buffer_t response;
  bf_buffer_init(&response);
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_rpc_channel_unary(idle, METHOD_ECHO, (const uint8_t *)"x", 1, 10.0, &response,
                                        &err), BF_OK);
  bf_buffer_reset(&response);
  slow_call_t sc = {ts->target, BF_OK, {0, {0}}, 300, 0};
  pthread_t thread;
  assert_int_equal(pthread_create(&thread, NULL, slow_caller, &sc), 0);
  int started = 0;
  for (int i = 0; i < 500 && !started; i++) {
    pthread_mutex_lock(&ts->mu);
    started = ts->slow_started;
    pthread_mutex_unlock(&ts->mu);
    if (!started) sleep_ms(10);
  }
  assert_true(started);
  double stop_started = bf_time_monotonic();
  bf_rpc_server_stop(ts->server, 60.0);
  assert_true(bf_time_monotonic() - stop_started < 30.0);
  pthread_join(thread, NULL);
  assert_int_equal(sc.status, BF_OK);
  assert_true(sc.answered_done);
  assert_int_equal(ts->slow_saw_cancel, 0);
  bf_rpc_channel_destroy(idle);
  pthread_mutex_destroy(&ts->mu);
  free(ts);
}

static void test_stop_idle_server(void **state) {
  (void)state;
  test_server_t *ts = server_start(3);
  server_stop(ts, 0.0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_mapping),
      cmocka_unit_test_setup_teardown(test_unary_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_authorization_metadata, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_status_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_handler_without_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_method, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadline_exceeded, setup, teardown),
      cmocka_unit_test(test_server_unavailable),
      cmocka_unit_test_setup_teardown(test_port_in_use, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_check, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_error_mid_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_cancel_from_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_cancel_hook, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_pull_and_end, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_cancel_from_another_thread, setup, teardown),
      cmocka_unit_test(test_target_port_rules),
      cmocka_unit_test_setup_teardown(test_concurrent_calls_one_channel, setup, teardown),
      cmocka_unit_test(test_shutdown_with_call_in_flight),
      cmocka_unit_test(test_shutdown_answers_a_call_within_the_grace),
      cmocka_unit_test(test_stop_idle_server),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
