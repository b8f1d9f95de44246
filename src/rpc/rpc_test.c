/* Tests for the gRPC transport, unary calls: a bf_rpc_server on a free port with a
 * test handler (rpc_test_server.h) and bf_rpc_channel calls against it, covering
 * the status mapping round trip, authorization metadata, large messages (the pool
 * their buffers are recycled through, bodies sent in place), errors, deadlines,
 * an unreachable server, a port in use and health. Streams, concurrency and
 * shutdown: rpc_stream_test.c. */
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
#include "rpc/rpc_internal.h"
#include "rpc/rpc_test_server.h"

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

/* Echoes size bytes of a pattern (shifted by seed) and checks they come back
 * exactly. */
static void echo_exactly(bf_rpc_channel_t *channel, size_t size, size_t seed) {
  uint8_t *request = malloc(size);
  assert_non_null(request);
  for (size_t i = 0; i < size; i++) request[i] = (uint8_t)((i + seed) * 2654435761u >> 24);
  bf_buffer_t response;
  bf_buffer_init(&response);
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_rpc_channel_unary(channel, METHOD_ECHO, request, size, 30.0, &response, &err);
  if (status != BF_OK) fprintf(stderr, "echo of %zu bytes: %s\n", size, err.message);
  assert_int_equal(status, BF_OK);
  assert_int_equal(response.size, size);
  assert_memory_equal(response.data, request, size);
  bf_buffer_reset(&response);
  free(request);
}

static void test_large_message(void **state) {
  fixture_t *f = *state;
  echo_exactly(f->channel, 24u << 20, 0); /* above gRPC's 4 MiB default in both directions */
}

/* Large requests are read into recycled buffers: requests of growing and
 * shrinking sizes, each into a buffer a different-sized one used before, all come
 * back exactly (no stale bytes, no short copy). */
static void test_large_requests_of_changing_sizes(void **state) {
  fixture_t *f = *state;
  const size_t sizes[] = {3u << 20,        24u << 20, (2u << 20) + 17,
                          (24u << 20) + 1, 5u << 20,  1u << 20};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) echo_exactly(f->channel, sizes[k], k);
}

/* The pool behind it: a buffer given back serves the next request that fits, at
 * most 160 MiB are kept (the oldest go first), and a trim frees idle ones. */
static void test_request_pool_recycles_bounds_and_trims(void **state) {
  (void)state;
  bf_rpc_request_pool_trim(0);
  bf_buffer_t b;
  bf_buffer_init(&b);
  bf__rpc_request_buffer(&b, 3u << 20);
  assert_null(b.data); /* nothing pooled yet */

  uint8_t *four = malloc(4u << 20);
  assert_non_null(four);
  bf_rpc_request_release(four);
  bf__rpc_request_buffer(&b, 5u << 20);
  assert_null(b.data); /* too small for this one */
  bf__rpc_request_buffer(&b, 3u << 20);
  assert_ptr_equal(b.data, four);
  assert_true(b.capacity >= (4u << 20));
  assert_int_equal(b.size, 0);
  bf_buffer_t again;
  bf_buffer_init(&again);
  bf__rpc_request_buffer(&again, 3u << 20);
  assert_null(again.data); /* taken once only */

  bf_rpc_request_release(b.data);
  bf_rpc_request_pool_trim(60); /* not idle for a minute: kept */
  bf_buffer_init(&b);
  bf__rpc_request_buffer(&b, 1u << 20);
  assert_ptr_equal(b.data, four);
  bf_rpc_request_release(b.data);
  bf_rpc_request_pool_trim(0);
  bf_buffer_init(&b);
  bf__rpc_request_buffer(&b, 1u << 20);
  assert_null(b.data);

  uint8_t *small = malloc(64u << 10); /* below 1 MiB: freed, not kept */
  assert_non_null(small);
  bf_rpc_request_release(small);
  bf__rpc_request_buffer(&b, 1u << 20);
  assert_null(b.data);

  uint8_t *big[3];
  for (int i = 0; i < 3; i++) {
    big[i] = malloc(60u << 20);
    assert_non_null(big[i]);
    bf_rpc_request_release(big[i]);
  }
  /* 180 MiB given back: the oldest was freed to stay under 160 MiB */
  bf__rpc_request_buffer(&b, 1u << 20);
  assert_ptr_equal(b.data, big[2]);
  bf_buffer_init(&again);
  bf__rpc_request_buffer(&again, 1u << 20);
  assert_ptr_equal(again.data, big[1]);
  bf_buffer_t none;
  bf_buffer_init(&none);
  bf__rpc_request_buffer(&none, 1u << 20);
  assert_null(none.data);
  bf_rpc_request_release(b.data);
  bf_rpc_request_release(again.data);
  bf_rpc_request_pool_trim(0);

  /* a server with a small memory limit keeps less: one 60 MiB buffer at most */
  bf_rpc_request_pool_limit(100u << 20);
  for (int i = 0; i < 2; i++) {
    big[i] = malloc(60u << 20);
    assert_non_null(big[i]);
    bf_rpc_request_release(big[i]);
  }
  bf_buffer_init(&b);
  bf__rpc_request_buffer(&b, 1u << 20);
  assert_ptr_equal(b.data, big[1]);
  bf_buffer_init(&none);
  bf__rpc_request_buffer(&none, 1u << 20);
  assert_null(none.data);
  bf_rpc_request_release(b.data);
  bf_rpc_request_pool_limit(0); /* none: given back means freed (ASan checks it is) */
  bf_rpc_request_pool_trim(0);
  bf_rpc_request_release(malloc(2u << 20));
  bf_buffer_init(&none);
  bf__rpc_request_buffer(&none, 1u << 20);
  assert_null(none.data);
  bf_rpc_request_pool_limit(SIZE_MAX);
}

/* A request sent as a copied head and a body in place arrives as one message,
 * the same body can go out with a second call, and it stays alive for gRPC
 * after the caller released it (under ASan a read of freed memory fails). */
static void test_body_sent_in_place(void **state) {
  fixture_t *f = *state;
  size_t size = 9u << 20;
  uint8_t *data = malloc(size);
  assert_non_null(data);
  for (size_t i = 0; i < size; i++) data[i] = (uint8_t)(i * 2654435761u >> 24);
  uint8_t *expected = malloc(size + 3);
  assert_non_null(expected);
  memcpy(expected, "hd:", 3);
  memcpy(expected + 3, data, size);
  bf_shared_t *body = bf_shared_new(data, size, free);
  assert_non_null(body);
  assert_int_equal(bf_shared_size(body), size);
  for (int call = 0; call < 2; call++) {
    bf_buffer_t response;
    bf_buffer_init(&response);
    bf_error_t err;
    bf_error_init(&err);
    assert_int_equal(bf_rpc_channel_unary_body(f->channel, METHOD_ECHO, (const uint8_t *)"hd:", 3,
                                               body, 30.0, &response, &err),
                     BF_OK);
    assert_int_equal(response.size, size + 3);
    assert_memory_equal(response.data, expected, size + 3);
    bf_buffer_reset(&response);
  }
  /* a call given up while its body may still be in gRPC's hands */
  bf_buffer_t response;
  bf_buffer_init(&response);
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_rpc_channel_unary_body(f->channel, METHOD_ECHO, (const uint8_t *)"hd:", 3, body,
                                         0.001, &response, &err);
  bf_shared_unref(body);
  bf_buffer_reset(&response);
  if (status == BF_OK) fprintf(stderr, "(the 1 ms call finished in time)\n");
  else assert_int_equal(status, BF_ETIMEOUT);
  /* the channel goes on */
  bf_error_init(&err);
  assert_int_equal(bf_rpc_channel_unary(f->channel, METHOD_ECHO, (const uint8_t *)"ok", 2, 5.0,
                                        &response, &err),
                   BF_OK);
  assert_int_equal(response.size, 2);
  bf_buffer_reset(&response);
  free(expected);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_mapping),
      cmocka_unit_test_setup_teardown(test_unary_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_authorization_metadata, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_requests_of_changing_sizes, setup, teardown),
      cmocka_unit_test(test_request_pool_recycles_bounds_and_trims),
      cmocka_unit_test_setup_teardown(test_body_sent_in_place, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_status_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_handler_without_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_method, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadline_exceeded, setup, teardown),
      cmocka_unit_test(test_server_unavailable),
      cmocka_unit_test_setup_teardown(test_port_in_use, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_check, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
