/* Tests for the gRPC transport, streams and lifetime: server streams in order,
 * errors and cancellation mid-stream, pulled streams, target port rules,
 * concurrent callers on one channel, and shutdown with calls in flight or idle
 * (the fixture: rpc_test_server.h). */
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
#include "rpc/rpc_test_server.h"

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

/* Waits (up to 5 s) until the slow handler has started. */
static void wait_slow_started(test_server_t *ts) {
  int started = 0;
  for (int i = 0; i < 500 && !started; i++) {
    pthread_mutex_lock(&ts->mu);
    started = ts->slow_started;
    pthread_mutex_unlock(&ts->mu);
    if (!started) sleep_ms(10);
  }
  assert_true(started);
}

/* One echo call on channel: its status (err says why it failed). */
static int echo(bf_rpc_channel_t *channel, bf_error_t *err) {
  bf_buffer_t response;
  bf_buffer_init(&response);
  bf_error_init(err);
  int status = bf_rpc_channel_unary(channel, METHOD_ECHO, (const uint8_t *)"x", 1, 10.0, &response,
                                    err);
  bf_buffer_reset(&response);
  return status;
}

/* Opens a channel that has made one call (then idle), and starts sc on a thread
 * of its own, returning once its handler runs. */
static bf_rpc_channel_t *start_slow_call_beside_a_channel(test_server_t *ts, slow_call_t *sc,
                                                          pthread_t *thread) {
  bf_rpc_channel_t *channel = channel_open(ts->target, NULL);
  bf_error_t err;
  assert_int_equal(echo(channel, &err), BF_OK);
  assert_int_equal(pthread_create(thread, NULL, slow_caller, sc), 0);
  wait_slow_started(ts);
  return channel;
}

typedef struct stopper {
  bf_rpc_server_t *server;
  double grace_secs;
} stopper_t;

static void *stop_server(void *arg) {
  stopper_t *st = arg;
  bf_rpc_server_stop(st->server, st->grace_secs);
  return NULL;
}

static void test_shutdown_with_call_in_flight(void **state) {
  (void)state;
  test_server_t *ts = server_start(2);
  slow_call_t sc = {ts->target, BF_OK, {0, {0}}, 0, 0};
  pthread_t thread;
  assert_int_equal(pthread_create(&thread, NULL, slow_caller, &sc), 0);
  wait_slow_started(ts);
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
  slow_call_t sc = {ts->target, BF_OK, {0, {0}}, 300, 0};
  pthread_t thread;
  bf_rpc_channel_t *idle = start_slow_call_beside_a_channel(ts, &sc, &thread);
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

/* While a call runs out its grace, a new call (on a connection already open) is
 * answered UNAVAILABLE, saying why, and the running call still gets its answer. */
static void test_a_new_call_during_the_drain_is_refused(void **state) {
  (void)state;
  test_server_t *ts = server_start(2);
  slow_call_t sc = {ts->target, BF_OK, {0, {0}}, 3000, 0};
  pthread_t caller, stopper;
  bf_rpc_channel_t *other = start_slow_call_beside_a_channel(ts, &sc, &caller);
  stopper_t st = {ts->server, 60.0};
  assert_int_equal(pthread_create(&stopper, NULL, stop_server, &st), 0);
  bf_error_t err;
  int status = BF_OK;
  for (int i = 0; i < 200 && status == BF_OK; i++) { /* until the drain has begun */
    status = echo(other, &err);
    if (status == BF_OK) sleep_ms(10);
  }
  assert_int_equal(status, BF_EUNAVAILABLE);
  assert_non_null(strstr(err.message, "shutting down"));
  pthread_join(caller, NULL);
  assert_int_equal(sc.status, BF_OK); /* the running call was answered, not cancelled */
  assert_true(sc.answered_done);
  assert_int_equal(ts->slow_saw_cancel, 0);
  pthread_join(stopper, NULL);
  bf_rpc_channel_destroy(other);
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
      cmocka_unit_test(test_a_new_call_during_the_drain_is_refused),
      cmocka_unit_test(test_stop_idle_server),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
