/* Unit tests for the producer's send path (batching by rows and bytes, records too
 * large, bad rows, Arrow batches with plain strings, retries with a stable sequence
 * and their events, non-retryable failures, flush, batches in flight acknowledged
 * in sequence) against an in-process fake bifrost.v1 server built on
 * bf_rpc_server. */
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

#include "bifrost/v1/bifrost.pb-c.h"
#include "bifrost/ipc.h"
#include "bifrost/producer.h"
#include "bifrost/rpc.h"
#include "producer/producer_internal.h"
#include "producer/producer_test_util.h"

/* ---- send path against a fake server ------------------------------------------------ */

#define MAX_CALLS 64

typedef struct fake_server {
  pthread_mutex_t mu;
  int fail_next_unavailable; /* answer this many InsertBatch calls UNAVAILABLE */
  int fail_mismatch_sequence; /* answer FAILED_PRECONDITION for this sequence */
  int n_calls;
  uint64_t sequences[MAX_CALLS];
  uint64_t afters[MAX_CALLS]; /* after_sequence of each call */
  int64_t rows[MAX_CALLS];
  char producer_id[64];
  char first_format[8]; /* Arrow format of the first column of the last batch */
  int64_t rows_stored;
} fake_server_t;

static int64_t count_ipc_rows(const uint8_t *data, size_t size) {
  bf_ipc_reader_t *reader = NULL;
  if (bf_ipc_reader_create(data, size, &reader, NULL) != BF_OK) return -1;
  int64_t rows = 0;
  for (;;) {
    struct ArrowArray batch;
    memset(&batch, 0, sizeof(batch));
    int has_batch = 0;
    if (bf_ipc_reader_next(reader, &batch, &has_batch, NULL) != BF_OK) {
      rows = -1;
      break;
    }
    if (!has_batch) break;
    rows += batch.length;
    bf_arrow_array_release(&batch);
  }
  bf_ipc_reader_destroy(reader);
  return rows;
}

static void fake_handler(void *ctx, bf_rpc_call_t *call, const char *method, const uint8_t *request,
                         size_t request_size) {
  fake_server_t *fake = ctx;
  if (strcmp(method, BF_RPC_METHOD_REGISTER_TABLE) == 0) {
    Bifrost__V1__RegisterTableRequest *req =
        bifrost__v1__register_table_request__unpack(NULL, request_size, request);
    Bifrost__V1__RegisterTableResponse resp = BIFROST__V1__REGISTER_TABLE_RESPONSE__INIT;
    resp.status = "created";
    resp.fingerprint = req != NULL ? req->fingerprint : "";
    uint8_t buf[256];
    size_t n = bifrost__v1__register_table_response__pack(&resp, buf);
    bf_rpc_call_reply(call, buf, n);
    if (req != NULL) bifrost__v1__register_table_request__free_unpacked(req, NULL);
    return;
  }
  if (strcmp(method, BF_RPC_METHOD_INSERT_BATCH) != 0) {
    bf_rpc_call_finish(call, BF_ENOTFOUND, "unknown method");
    return;
  }
  Bifrost__V1__InsertBatchRequest *req =
      bifrost__v1__insert_batch_request__unpack(NULL, request_size, request);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "bad request");
    return;
  }
  int64_t rows = count_ipc_rows(req->arrow_ipc.data, req->arrow_ipc.len);
  char first_format[8] = "";
  bf_ipc_reader_t *reader = NULL;
  struct ArrowSchema schema;
  memset(&schema, 0, sizeof schema);
  if (bf_ipc_reader_create(req->arrow_ipc.data, req->arrow_ipc.len, &reader, NULL) == BF_OK &&
      bf_ipc_reader_schema(reader, &schema, NULL) == BF_OK && schema.n_children > 0)
    snprintf(first_format, sizeof first_format, "%s", schema.children[0]->format);
  bf_arrow_schema_release(&schema);
  bf_ipc_reader_destroy(reader);
  pthread_mutex_lock(&fake->mu);
  memcpy(fake->first_format, first_format, sizeof first_format);
  int call_index = fake->n_calls < MAX_CALLS ? fake->n_calls++ : MAX_CALLS - 1;
  fake->sequences[call_index] = req->sequence;
  fake->afters[call_index] = req->after_sequence;
  fake->rows[call_index] = rows;
  snprintf(fake->producer_id, sizeof(fake->producer_id), "%s", req->producer_id);
  int status = BF_OK;
  if (fake->fail_next_unavailable > 0) {
    fake->fail_next_unavailable--;
    status = BF_EUNAVAILABLE;
  } else if ((uint64_t)fake->fail_mismatch_sequence == req->sequence) {
    status = BF_EMISMATCH;
  } else if (rows < 0) {
    status = BF_EINVAL;
  } else {
    fake->rows_stored += rows;
  }
  pthread_mutex_unlock(&fake->mu);
  if (status != BF_OK) {
    bf_rpc_call_finish(call, status, status == BF_EMISMATCH ? "fingerprint mismatch" : "try again");
  } else {
    Bifrost__V1__InsertBatchResponse resp = BIFROST__V1__INSERT_BATCH_RESPONSE__INIT;
    resp.rows_accepted = (uint64_t)rows;
    uint8_t buf[64];
    size_t n = bifrost__v1__insert_batch_response__pack(&resp, buf);
    bf_rpc_call_reply(call, buf, n);
  }
  bifrost__v1__insert_batch_request__free_unpacked(req, NULL);
}

typedef struct fixture {
  fake_server_t fake;
  bf_rpc_server_t *server;
  char target[64];
} fixture_t;

static int fake_setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  pthread_mutex_init(&f->fake.mu, NULL);
  bf_rpc_server_options_t options = {
      .address = "127.0.0.1:0", .n_workers = 2, .handler = fake_handler, .handler_ctx = &f->fake};
  int port = 0;
  bf_error_t err;
  bf_error_init(&err);
  if (bf_rpc_server_start(&options, &f->server, &port, &err) != BF_OK) {
    fprintf(stderr, "fake server: %s\n", err.message);
    free(f);
    return -1;
  }
  snprintf(f->target, sizeof(f->target), "127.0.0.1:%d", port);
  *state = f;
  return 0;
}

static int fake_teardown(void **state) {
  fixture_t *f = *state;
  bf_rpc_server_stop(f->server, 1.0);
  pthread_mutex_destroy(&f->fake.mu);
  free(f);
  return 0;
}

static bf_producer_t *fake_producer(fixture_t *f, size_t batch_size) {
  bf_producer_options_t options;
  options_for(&options, f->target);
  options.batch_size = batch_size;
  options.scheduled_delay_secs = 3600;
  bf_producer_t *producer = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_producer_create(&options, &producer, &err), BF_OK);
  return producer;
}

static void test_batches_acked_in_sequence(void **state) {
  fixture_t *f = *state;
  bf_producer_t *producer = fake_producer(f, 4);
  bf_error_t err;
  bf_error_init(&err);
  char status_text[32];
  assert_int_equal(bf_producer_register(producer, status_text, &err), BF_OK);
  assert_string_equal(status_text, "created");
  for (int i = 0; i < 10; i++) {
    assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_OK);
  }
  uint64_t n_flushed = 0;
  /* The delay is an hour: only batch_size and flush can trigger the sends. */
  assert_int_equal(bf_producer_flush(producer, 10, &n_flushed, &err), BF_OK);
  assert_int_equal(n_flushed, 10);
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.acknowledged, 10);
  assert_int_equal(s.sent_batches, 3);
  assert_int_equal(s.failed, 0);
  assert_accounted(producer);
  pthread_mutex_lock(&f->fake.mu);
  assert_int_equal(f->fake.n_calls, 3);
  /* Sent in parallel, so they may arrive in any order: by sequence, 4 + 4 + 2
   * rows, each naming the one before it unless that one was already answered. */
  int64_t rows_of[4] = {0};
  for (int i = 0; i < 3; i++) {
    uint64_t seq = f->fake.sequences[i];
    assert_true(seq >= 1 && seq <= 3);
    rows_of[seq] = f->fake.rows[i];
    assert_true(f->fake.afters[i] == 0 || f->fake.afters[i] == seq - 1);
  }
  assert_int_equal(rows_of[1], 4);
  assert_int_equal(rows_of[2], 4);
  assert_int_equal(rows_of[3], 2);
  assert_int_equal(strlen(f->fake.producer_id), 36);
  pthread_mutex_unlock(&f->fake.mu);
  /* A flush with nothing new returns at once with 0. */
  assert_int_equal(bf_producer_flush(producer, 1, &n_flushed, &err), BF_OK);
  assert_int_equal(n_flushed, 0);
  assert_int_equal(bf_producer_shutdown(producer, 5, &err), BF_OK);
  bf_producer_destroy(producer);
}

typedef struct event_log {
  pthread_mutex_t mu;
  int n[8];
  uint64_t count[8];
  char table[64];
} event_log_t;

static void record_event(void *ctx, const bf_producer_event_t *event) {
  event_log_t *log = ctx;
  pthread_mutex_lock(&log->mu);
  log->n[event->kind]++;
  log->count[event->kind] += event->count;
  snprintf(log->table, sizeof log->table, "%s", event->table);
  pthread_mutex_unlock(&log->mu);
}

static void test_batches_cut_by_bytes_and_too_large_refused(void **state) {
  fixture_t *f = *state;
  event_log_t log;
  memset(&log, 0, sizeof log);
  pthread_mutex_init(&log.mu, NULL);
  bf_producer_options_t options;
  options_for(&options, f->target);
  options.batch_size = 100;
  options.scheduled_delay_secs = 3600;
  options.max_batch_bytes = 1000;
  options.on_event = record_event;
  options.event_ctx = &log;
  bf_producer_t *producer = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_producer_create(&options, &producer, &err), BF_OK);
  char row[400], big[2100];
  char name[251], long_name[2001];
  memset(name, 'n', 250);
  name[250] = '\0';
  memset(long_name, 'N', 2000);
  long_name[2000] = '\0';
  snprintf(row, sizeof row, "{\"user_id\": \"%s\", \"score\": 0.5}", name);
  snprintf(big, sizeof big, "{\"user_id\": \"%s\", \"score\": 0.5}", long_name);
  /* About 375 bytes per record in a batch: two fit in 1000 bytes, three do not. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(bf_producer_insert_json(producer, row, strlen(row), &err), BF_OK);
  assert_int_equal(bf_producer_insert_json(producer, big, strlen(big), &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "record too large"));
  assert_non_null(strstr(err.message, "max_batch_bytes=1000"));
  for (int i = 0; i < 3; i++)
    assert_int_equal(bf_producer_insert_json(producer, row, strlen(row), &err), BF_OK);
  uint64_t n_flushed = 0;
  assert_int_equal(bf_producer_flush(producer, 10, &n_flushed, &err), BF_OK);
  assert_int_equal(n_flushed, 6);
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.too_large, 1);
  assert_int_equal(s.inserted, 6);
  assert_int_equal(s.sent_batches, 3);
  assert_accounted(producer);
  pthread_mutex_lock(&f->fake.mu);
  for (int i = 0; i < 3; i++) assert_int_equal(f->fake.rows[i], 2);
  pthread_mutex_unlock(&f->fake.mu);
  pthread_mutex_lock(&log.mu);
  assert_int_equal(log.n[BF_PRODUCER_EVENT_RECORD_TOO_LARGE], 1);
  assert_int_equal(log.count[BF_PRODUCER_EVENT_RECORD_TOO_LARGE], 1);
  assert_string_equal(log.table, "cat.sch.tbl");
  pthread_mutex_unlock(&log.mu);
  assert_int_equal(bf_producer_shutdown(producer, 5, &err), BF_OK);
  /* shutdown was the last flush: nothing is reported twice. */
  assert_int_equal(bf_producer_flush(producer, 1, &n_flushed, &err), BF_OK);
  assert_int_equal(n_flushed, 0);
  bf_producer_destroy(producer);
  pthread_mutex_destroy(&log.mu);
}

static void test_bad_rows_fail_alone(void **state) {
  fixture_t *f = *state;
  bf_producer_t *producer = fake_producer(f, 100);
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_OK);
  assert_int_equal(bf_producer_insert_json(producer, BAD_ROW, strlen(BAD_ROW), &err), BF_OK);
  assert_int_equal(bf_producer_insert_json(producer, "not json", 8, &err), BF_OK);
  assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_OK);
  uint64_t n_flushed = 0;
  assert_int_equal(bf_producer_flush(producer, 10, &n_flushed, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "2 record(s) failed"));
  assert_int_equal(n_flushed, 2);
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.acknowledged, 2);
  assert_int_equal(s.failed, 2);
  assert_int_equal(s.failed_batches, 0);
  assert_non_null(strstr(s.last_error, "rejected"));
  assert_accounted(producer);
  pthread_mutex_lock(&f->fake.mu);
  assert_int_equal(f->fake.rows_stored, 2);
  pthread_mutex_unlock(&f->fake.mu);
  assert_int_equal(bf_producer_shutdown(producer, 5, &err), BF_OK);
  bf_producer_destroy(producer);
}

/* A 2-column (user_id, score) struct batch with user_id as plain utf8 ("u"). */
static void plain_string_batch(struct ArrowSchema *schema, struct ArrowArray *array) {
  assert_int_equal(bf_arrow_schema_init(schema, "+s", "", 0, 2), BF_OK);
  assert_int_equal(bf_arrow_schema_init(schema->children[0], "u", "user_id", 0, 0), BF_OK);
  assert_int_equal(bf_arrow_schema_init(schema->children[1], "g", "score", 0, 0), BF_OK);
  assert_int_equal(bf_arrow_array_init(array, 1, 2), BF_OK);
  array->length = 3;
  struct ArrowArray *ids = array->children[0], *scores = array->children[1];
  assert_int_equal(bf_arrow_array_init(ids, 3, 0), BF_OK);
  ids->length = 3;
  int32_t *offsets = malloc(4 * sizeof *offsets);
  offsets[0] = 0, offsets[1] = 2, offsets[2] = 2, offsets[3] = 20;
  char *data = malloc(20);
  memcpy(data, "u1" "a string over 12 b", 20);
  bf_arrow_array_set_buffer(ids, 1, offsets);
  bf_arrow_array_set_buffer(ids, 2, data);
  assert_int_equal(bf_arrow_array_init(scores, 2, 0), BF_OK);
  scores->length = 3;
  double *values = malloc(3 * sizeof *values);
  values[0] = 0.5, values[1] = 1.5, values[2] = 2.5;
  bf_arrow_array_set_buffer(scores, 1, values);
}

static void test_arrow_plain_strings_sent_as_they_are(void **state) {
  fixture_t *f = *state;
  bf_producer_t *producer = fake_producer(f, 100);
  bf_error_t err;
  bf_error_init(&err);
  struct ArrowSchema schema;
  struct ArrowArray array;
  plain_string_batch(&schema, &array);
  assert_int_equal(bf_producer_insert_arrow(producer, &schema, &array, 64, &err), BF_OK);
  assert_null(array.release); /* taken over */
  /* A plain string for a non-string column is still refused. */
  struct ArrowSchema bad_schema;
  struct ArrowArray bad;
  plain_string_batch(&bad_schema, &bad);
  bf_arrow_schema_release(bad_schema.children[1]);
  assert_int_equal(bf_arrow_schema_init(bad_schema.children[1], "u", "score", 0, 0), BF_OK);
  assert_int_equal(bf_producer_insert_arrow(producer, &bad_schema, &bad, 64, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "'score'"));
  bf_arrow_array_release(&bad);
  bf_arrow_schema_release(&bad_schema);
  uint64_t n_flushed = 0;
  assert_int_equal(bf_producer_flush(producer, 10, &n_flushed, &err), BF_OK);
  assert_int_equal(n_flushed, 3);
  pthread_mutex_lock(&f->fake.mu);
  assert_string_equal(f->fake.first_format, "u");
  assert_int_equal(f->fake.rows_stored, 3);
  pthread_mutex_unlock(&f->fake.mu);
  bf_arrow_schema_release(&schema);
  assert_int_equal(bf_producer_shutdown(producer, 5, &err), BF_OK);
  bf_producer_destroy(producer);
}

static void test_unavailable_is_retried_with_same_sequence(void **state) {
  fixture_t *f = *state;
  pthread_mutex_lock(&f->fake.mu);
  f->fake.fail_next_unavailable = 3;
  pthread_mutex_unlock(&f->fake.mu);
  event_log_t log;
  memset(&log, 0, sizeof log);
  pthread_mutex_init(&log.mu, NULL);
  bf_producer_options_t options;
  options_for(&options, f->target);
  options.batch_size = 5;
  options.scheduled_delay_secs = 3600;
  options.on_event = record_event;
  options.event_ctx = &log;
  bf_producer_t *producer = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_producer_create(&options, &producer, &err), BF_OK);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_OK);
  }
  uint64_t n_flushed = 0;
  assert_int_equal(bf_producer_flush(producer, 10, &n_flushed, &err), BF_OK);
  assert_int_equal(n_flushed, 5);
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.retried_batches, 3);
  assert_int_equal(s.sent_batches, 1);
  assert_int_equal(s.acknowledged, 5);
  assert_string_equal(s.last_error, ""); /* the retry message is gone once delivered */
  assert_accounted(producer);
  pthread_mutex_lock(&log.mu); /* one outage: reported once, then its end */
  assert_int_equal(log.n[BF_PRODUCER_EVENT_RETRYING], 1);
  assert_int_equal(log.count[BF_PRODUCER_EVENT_RETRYING], 5);
  assert_int_equal(log.n[BF_PRODUCER_EVENT_RECOVERED], 1);
  pthread_mutex_unlock(&log.mu);
  pthread_mutex_lock(&f->fake.mu);
  assert_int_equal(f->fake.n_calls, 4);
  for (int i = 0; i < 4; i++) assert_int_equal(f->fake.sequences[i], 1);
  assert_int_equal(f->fake.rows_stored, 5);
  pthread_mutex_unlock(&f->fake.mu);
  assert_int_equal(bf_producer_shutdown(producer, 5, &err), BF_OK);
  bf_producer_destroy(producer);
  pthread_mutex_destroy(&log.mu);
}

static void test_non_retryable_fails_batch_and_moves_on(void **state) {
  fixture_t *f = *state;
  pthread_mutex_lock(&f->fake.mu);
  f->fake.fail_mismatch_sequence = 1;
  pthread_mutex_unlock(&f->fake.mu);
  bf_producer_t *producer = fake_producer(f, 3);
  bf_error_t err;
  bf_error_init(&err);
  for (int i = 0; i < 6; i++) {
    assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_OK);
  }
  uint64_t n_flushed = 0;
  assert_int_equal(bf_producer_flush(producer, 10, &n_flushed, &err), BF_EMISMATCH);
  assert_int_equal(n_flushed, 3);
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.failed, 3);
  assert_int_equal(s.failed_batches, 1);
  assert_int_equal(s.acknowledged, 3);
  assert_int_equal(s.retried_batches, 0);
  assert_accounted(producer);
  /* Later records are unaffected. */
  assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_OK);
  assert_int_equal(bf_producer_flush(producer, 10, &n_flushed, &err), BF_OK);
  assert_int_equal(n_flushed, 1);
  pthread_mutex_lock(&f->fake.mu);
  assert_int_equal(f->fake.n_calls, 3);
  assert_int_equal(f->fake.sequences[2], 3);
  pthread_mutex_unlock(&f->fake.mu);
  assert_int_equal(bf_producer_shutdown(producer, 5, &err), BF_OK);
  bf_producer_destroy(producer);
}

static void test_scheduled_delay_sends_partial_batch(void **state) {
  fixture_t *f = *state;
  bf_producer_options_t options;
  options_for(&options, f->target);
  options.batch_size = 1000;
  options.scheduled_delay_secs = 0.1;
  bf_producer_t *producer = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_producer_create(&options, &producer, &err), BF_OK);
  assert_int_equal(bf_producer_insert_json(producer, GOOD_ROW, strlen(GOOD_ROW), &err), BF_OK);
  bf_producer_stats_t s;
  double deadline = now_secs() + 5;
  do {
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    bf_producer_get_stats(producer, &s);
  } while (s.acknowledged == 0 && now_secs() < deadline);
  assert_int_equal(s.acknowledged, 1); /* sent without flush or a full batch */
  assert_accounted(producer);
  assert_int_equal(bf_producer_shutdown(producer, 5, &err), BF_OK);
  bf_producer_destroy(producer);
}

/* Concurrent inserters and flushers: every record ends up acknowledged. */
typedef struct {
  bf_producer_t *producer;
  int n;
} worker_arg_t;

static void *insert_worker(void *arg) {
  worker_arg_t *w = arg;
  bf_error_t err;
  bf_error_init(&err);
  for (int i = 0; i < w->n; i++) {
    if (bf_producer_insert_json(w->producer, GOOD_ROW, strlen(GOOD_ROW), &err) != BF_OK) return (void *)1;
    if (i % 250 == 0) {
      uint64_t n_flushed;
      if (bf_producer_flush(w->producer, 10, &n_flushed, &err) != BF_OK) return (void *)1;
    }
  }
  return NULL;
}

static void test_concurrent_inserts_all_acknowledged(void **state) {
  fixture_t *f = *state;
  bf_producer_t *producer = fake_producer(f, 64);
  pthread_t threads[4];
  worker_arg_t arg = {producer, 1000};
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&threads[i], NULL, insert_worker, &arg), 0);
  for (int i = 0; i < 4; i++) {
    void *result;
    pthread_join(threads[i], &result);
    assert_null(result);
  }
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_producer_shutdown(producer, 10, &err), BF_OK);
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.inserted, 4000);
  assert_int_equal(s.acknowledged, 4000);
  assert_accounted(producer);
  pthread_mutex_lock(&f->fake.mu);
  assert_int_equal(f->fake.rows_stored, 4000);
  pthread_mutex_unlock(&f->fake.mu);
  bf_producer_destroy(producer);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_batches_acked_in_sequence, fake_setup, fake_teardown),
      cmocka_unit_test_setup_teardown(test_bad_rows_fail_alone, fake_setup, fake_teardown),
      cmocka_unit_test_setup_teardown(test_batches_cut_by_bytes_and_too_large_refused, fake_setup,
                                      fake_teardown),
      cmocka_unit_test_setup_teardown(test_arrow_plain_strings_sent_as_they_are, fake_setup, fake_teardown),
      cmocka_unit_test_setup_teardown(test_unavailable_is_retried_with_same_sequence, fake_setup,
                                      fake_teardown),
      cmocka_unit_test_setup_teardown(test_non_retryable_fails_batch_and_moves_on, fake_setup,
                                      fake_teardown),
      cmocka_unit_test_setup_teardown(test_scheduled_delay_sends_partial_batch, fake_setup,
                                      fake_teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_inserts_all_acknowledged, fake_setup,
                                      fake_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
