/* Unit tests for the producer without a server: option validation, backpressure
 * policies against an unreachable server, stats invariants, retries while
 * unreachable. The send path against a fake server is in
 * producer_send_test.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>

#include "bifrost/producer.h"
#include "producer/producer_internal.h"
#include "producer/producer_test_util.h"

/* Nothing listens on port 1; connects fail fast with UNAVAILABLE. */
#define UNREACHABLE "127.0.0.1:1"

static void test_create_rejects_bad_options(void **state) {
  (void)state;
  bf_producer_options_t options;
  bf_producer_t *producer = NULL;
  bf_error_t err;

  options_for(&options, UNREACHABLE);
  options.batch_size = 0;
  bf_error_init(&err);
  assert_int_equal(bf_producer_create(&options, &producer, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "batch_size"));

  options_for(&options, UNREACHABLE);
  options.scheduled_delay_secs = 0;
  assert_int_equal(bf_producer_create(&options, &producer, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "scheduled_delay_secs"));

  options_for(&options, UNREACHABLE);
  options.name.table = "../etc";
  assert_int_equal(bf_producer_create(&options, &producer, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "table"));

  options_for(&options, UNREACHABLE);
  const char *partitions[] = {"score"}; /* float: not partitionable */
  options.partition_columns = partitions;
  options.n_partition_columns = 1;
  assert_int_equal(bf_producer_create(&options, &producer, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "score"));

  options_for(&options, UNREACHABLE);
  options.json_schema = "{not json";
  assert_int_equal(bf_producer_create(&options, &producer, &err), BF_EINVAL);
  assert_null(producer);
}

/* ---- backpressure with the server unreachable --------------------------------------- */

static void wait_for_in_flight(bf_producer_t *producer, uint64_t n) {
  bf_producer_stats_t s;
  double deadline = now_secs() + 5;
  do {
    struct timespec pause = {0, 5 * 1000 * 1000};
    nanosleep(&pause, NULL);
    bf_producer_get_stats(producer, &s);
  } while (s.in_flight != n && now_secs() < deadline);
  assert_int_equal(s.in_flight, n);
}

/* A producer whose bound (3 rows, queued or in flight) is full while its thread is
 * stuck retrying the first 3 rows against the unreachable server. A full bound is
 * itself a reason to send, so the 3 rows go at once and stay in flight. */
static bf_producer_t *full_producer(bf_backpressure_t policy, double block_timeout) {
  bf_producer_options_t options;
  options_for(&options, UNREACHABLE);
  options.batch_size = 1000;           /* never reached */
  options.scheduled_delay_secs = 3600; /* never due */
  options.max_queue_rows = 3;
  options.backpressure = policy;
  options.block_timeout_secs = block_timeout;
  bf_producer_t *producer = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_producer_create(&options, &producer, &err), BF_OK);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_OK);
  }
  wait_for_in_flight(producer, 3);
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.queued, 0);
  assert_int_equal(s.in_flight, 3);
  return producer;
}

/* Shutdown cannot deliver (server unreachable): it times out and fails, and counts,
 * every queued record; afterwards inserts are refused and shutdown is a no-op. */
static void shutdown_unreachable(bf_producer_t *producer, uint64_t expect_failed) {
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_producer_shutdown(producer, 0.3, &err), BF_ETIMEOUT);
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.queued, 0);
  assert_int_equal(s.in_flight, 0);
  assert_int_equal(s.failed, expect_failed);
  assert_int_equal(s.acknowledged, 0);
  assert_true(s.last_error[0] != '\0');
  assert_accounted(producer);
  assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_ECLOSED);
  assert_int_equal(bf_producer_shutdown(producer, 0.3, &err), BF_OK);
  bf_producer_destroy(producer);
}

static void test_block_times_out_when_full(void **state) {
  (void)state;
  bf_producer_t *producer = full_producer(BF_BACKPRESSURE_BLOCK, 0.2);
  bf_error_t err;
  bf_error_init(&err);
  double start = now_secs();
  assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_ETIMEOUT);
  assert_true(now_secs() - start >= 0.19);
  bool would_block = false;
  assert_int_equal(
      bf__producer_insert_json_nowait(producer, GOOD_ROW, strlen(GOOD_ROW), &would_block, &err),
      BF_EFULL);
  assert_true(would_block);
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.inserted, 3); /* refused records are not counted as inserted */
  assert_int_equal(s.queued, 0);
  assert_int_equal(s.dropped, 0);
  assert_accounted(producer);
  shutdown_unreachable(producer, 3);
}

static void test_drop_newest_counts_drops(void **state) {
  (void)state;
  bf_producer_t *producer = full_producer(BF_BACKPRESSURE_DROP_NEWEST, 0);
  bf_error_t err;
  bf_error_init(&err);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_OK);
  }
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.inserted, 8);
  assert_int_equal(s.dropped, 5);
  assert_int_equal(s.queued, 0);
  assert_accounted(producer);
  shutdown_unreachable(producer, 3);
}

static void test_raise_policy_fails_fast(void **state) {
  (void)state;
  bf_producer_t *producer = full_producer(BF_BACKPRESSURE_RAISE, 0);
  bf_error_t err;
  bf_error_init(&err);
  double start = now_secs();
  assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_EFULL);
  assert_true(now_secs() - start < 0.1);
  assert_non_null(strstr(err.message, "max_queue_rows=3"));
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.inserted, 3);
  assert_accounted(producer);
  shutdown_unreachable(producer, 3);
}

/* A blocked inserter is released (with BF_ECLOSED) by shutdown. */
static void *blocked_insert(void *arg) {
  bf_producer_t *producer = arg;
  bf_error_t err;
  bf_error_init(&err);
  intptr_t status = bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err);
  return (void *)status;
}

static void test_shutdown_releases_blocked_insert(void **state) {
  (void)state;
  bf_producer_t *producer = full_producer(BF_BACKPRESSURE_BLOCK, 0 /* forever */);
  pthread_t thread;
  assert_int_equal(pthread_create(&thread, NULL, blocked_insert, producer), 0);
  struct timespec pause = {0, 100 * 1000 * 1000};
  nanosleep(&pause, NULL);
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_producer_shutdown(producer, 0.3, &err), BF_ETIMEOUT);
  void *result = NULL;
  pthread_join(thread, &result);
  assert_int_equal((intptr_t)result, BF_ECLOSED);
  assert_accounted(producer);
  bf_producer_destroy(producer);
}

static void test_flush_times_out_and_retries_while_unreachable(void **state) {
  (void)state;
  bf_producer_options_t options;
  options_for(&options, UNREACHABLE);
  options.batch_size = 2;
  options.max_in_flight = 1;
  bf_producer_t *producer = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_producer_create(&options, &producer, &err), BF_OK);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_OK);
  }
  uint64_t n_flushed = 99;
  assert_int_equal(bf_producer_flush(producer, 0.4, &n_flushed, &err), BF_ETIMEOUT);
  assert_int_equal(n_flushed, 0);
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_true(s.retried_batches >= 2); /* 50 ms backoff, doubling, within 400 ms */
  assert_int_equal(s.sent_batches, 1); /* the first batch is retried, never replaced */
  assert_int_equal(s.in_flight, 2);
  assert_int_equal(s.queued, 3);
  assert_non_null(strstr(s.last_error, "BF_EUNAVAILABLE"));
  assert_accounted(producer);
  shutdown_unreachable(producer, 5);
}

/* Several batches in flight: each is sent and retried under its own sequence,
 * none is replaced or dropped, and the rows stay accounted while the server is away. */
static void test_batches_in_flight_are_retried_while_unreachable(void **state) {
  (void)state;
  bf_producer_options_t options;
  options_for(&options, UNREACHABLE);
  options.batch_size = 2;
  options.max_in_flight = 4;
  bf_producer_t *producer = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_producer_create(&options, &producer, &err), BF_OK);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_OK);
  }
  uint64_t n_flushed = 99;
  assert_int_equal(bf_producer_flush(producer, 0.4, &n_flushed, &err), BF_ETIMEOUT);
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.sent_batches, 3); /* 2 + 2 + 1 rows, all in flight at once */
  assert_int_equal(s.in_flight, 5);
  assert_int_equal(s.queued, 0);
  assert_true(s.retried_batches >= 3);
  assert_int_equal(s.acknowledged + s.failed, 0);
  assert_accounted(producer);
  shutdown_unreachable(producer, 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_rejects_bad_options),
      cmocka_unit_test(test_block_times_out_when_full),
      cmocka_unit_test(test_drop_newest_counts_drops),
      cmocka_unit_test(test_raise_policy_fails_fast),
      cmocka_unit_test(test_shutdown_releases_blocked_insert),
      cmocka_unit_test(test_flush_times_out_and_retries_while_unreachable),
      cmocka_unit_test(test_batches_in_flight_are_retried_while_unreachable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
