/* The gRPC transport tests' fixture (rpc_test.c, rpc_stream_test.c): a
 * bf_rpc_server on a free port with a test handler (echo, authorization echo,
 * streams, errors, slow and silent calls) and a channel to it. Header-only, for the
 * tests alone. */
#ifndef BF_RPC_TEST_SERVER_H
#define BF_RPC_TEST_SERVER_H

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

static inline void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static inline void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Stream request: u32 count, u32 index after which to fail (0xffffffff: never).
 * Message i is u32 i followed by i bytes of (uint8_t)i. */
static inline void handle_stream(bf_rpc_call_t *call, const uint8_t *request, size_t size) {
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
static inline void handle_slow(test_server_t *ts, bf_rpc_call_t *call, const uint8_t *request,
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

static inline void test_handler(void *ctx, bf_rpc_call_t *call, const char *method,
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

static inline test_server_t *server_start(int n_workers) {
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

static inline void server_stop(test_server_t *ts, double grace_secs) {
  bf_rpc_server_stop(ts->server, grace_secs);
  pthread_mutex_destroy(&ts->mu);
  free(ts);
}

static inline bf_rpc_channel_t *channel_open(const char *target, const char *authorization) {
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

static inline int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  f->ts = server_start(6);
  f->channel = channel_open(f->ts->target, "Bearer secret-token");
  *state = f;
  return 0;
}

static inline int teardown(void **state) {
  fixture_t *f = *state;
  bf_rpc_channel_destroy(f->channel);
  server_stop(f->ts, 1.0);
  free(f);
  return 0;
}

#endif
