/* Unit tests for the result fetcher (engine_fetch.c) over a real in-memory DuckDB:
 * every row arrives once and in order, an error in the middle of a result ends the
 * chunks and stays readable, a small result is fetched without a thread, and a
 * consumer that stops early leaves nothing behind (the sanitizer build checks the
 * thread), and a result whose thread cannot be started is read inline. The test is
 * linked with --wrap=pthread_create (CMakeLists.txt), so that starting a thread can
 * be made to fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine_fetch.h"

/* pthread_create of the code under test goes through here (the linker's --wrap);
 * DuckDB's own threads, in its shared library, do not. */
static int refuse_threads;
int __real_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                          void *(*start_routine)(void *), void *arg);
int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                          void *(*start_routine)(void *), void *arg) {
  if (refuse_threads) return EAGAIN;
  return __real_pthread_create(thread, attr, start_routine, arg);
}

typedef struct db {
  duckdb_database db;
  duckdb_connection conn;
  duckdb_result result;
  bf__fetcher_t f;
} db_t;

/* A streaming result of sql on a fresh in-memory database with two threads, and
 * a fetcher started on it (the test stops it). */
static void start(db_t *d, const char *sql) {
  duckdb_config config;
  assert_int_equal(duckdb_create_config(&config), DuckDBSuccess);
  duckdb_set_config(config, "threads", "2");
  assert_int_equal(duckdb_open_ext(NULL, &d->db, config, NULL), DuckDBSuccess);
  duckdb_destroy_config(&config);
  assert_int_equal(duckdb_connect(d->db, &d->conn), DuckDBSuccess);
  duckdb_prepared_statement prepared;
  assert_int_equal(duckdb_prepare(d->conn, sql, &prepared), DuckDBSuccess);
  duckdb_pending_result pending;
  assert_int_equal(duckdb_pending_prepared_streaming(prepared, &pending), DuckDBSuccess);
  assert_int_equal(duckdb_execute_pending(pending, &d->result), DuckDBSuccess);
  duckdb_destroy_pending(&pending);
  duckdb_destroy_prepare(&prepared);
  bf__fetcher_start(&d->f, &d->result);
}

static void finish(db_t *d) {
  duckdb_destroy_result(&d->result);
  duckdb_disconnect(&d->conn);
  duckdb_close(&d->db);
}

/* Takes chunks until the end (or max_chunks), checking that column 0 counts up
 * from first; returns the rows seen. */
static int64_t take_from(bf__fetcher_t *f, int64_t first, int64_t max_chunks) {
  int64_t rows = 0;
  for (int64_t n = 0; n < max_chunks; n++) {
    duckdb_data_chunk chunk = bf__fetcher_next(f);
    if (chunk == NULL) break;
    idx_t size = duckdb_data_chunk_get_size(chunk);
    int64_t *values = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 0));
    for (idx_t i = 0; i < size; i++) assert_int_equal(values[i], first + rows + (int64_t)i);
    rows += (int64_t)size;
    duckdb_destroy_data_chunk(&chunk);
  }
  return rows;
}

static int64_t take(bf__fetcher_t *f, int64_t max_chunks) { return take_from(f, 0, max_chunks); }

static void test_every_row_once_and_in_order(void **state) {
  (void)state;
  db_t d;
  /* far more chunks than the fetcher holds, so it waits for the consumer */
  start(&d, "SELECT range::BIGINT AS i, range::VARCHAR AS s FROM range(1000000)");
  assert_int_equal(take(&d.f, INT64_MAX), 1000000);
  assert_true(d.f.threaded);
  assert_null(bf__fetcher_next(&d.f)); /* the end stays the end */
  bf__fetcher_stop(&d.f);
  assert_null(duckdb_result_error(&d.result));
  finish(&d);
}

static void test_an_error_mid_result_ends_the_chunks(void **state) {
  (void)state;
  db_t d;
  start(&d, "SELECT CASE WHEN range = 300000 THEN error('boom at 300000') ELSE range END::BIGINT "
            "FROM range(1000000)");
  int64_t rows = take(&d.f, INT64_MAX);
  assert_true(rows <= 300000);
  bf__fetcher_stop(&d.f);
  const char *error = duckdb_result_error(&d.result);
  assert_non_null(error);
  assert_non_null(strstr(error, "boom at 300000"));
  finish(&d);
}

static void test_a_small_result_starts_no_thread(void **state) {
  (void)state;
  const int most = 2048 * (BF_FETCH_INLINE - 1); /* with the end: BF_FETCH_INLINE fetches */
  for (int rows = 0; rows <= most; rows += most / 2) {
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT range::BIGINT FROM range(%d)", rows);
    db_t d;
    start(&d, sql);
    assert_int_equal(take(&d.f, INT64_MAX), rows);
    assert_false(d.f.threaded); /* a small result pays for no thread */
    assert_null(bf__fetcher_next(&d.f));
    bf__fetcher_stop(&d.f);
    finish(&d);
  }
}

/* Chunks reported larger than the byte budget are not fetched ahead: the fetcher
 * waits to be asked, so it never holds one the consumer has not asked for, and
 * every row still arrives; smaller ones let it run ahead again. */
static void test_large_chunks_are_not_fetched_ahead(void **state) {
  (void)state;
  db_t d;
  start(&d, "SELECT range::BIGINT FROM range(2048 * 40)");
  int64_t rows = take(&d.f, BF_FETCH_INLINE + 1); /* the thread starts */
  assert_true(d.f.threaded);
  bf__fetcher_took(&d.f, BF_FETCH_AHEAD_BYTES + 1);
  for (int i = 0; i < 20; i++) {
    pthread_mutex_lock(&d.f.mu);
    size_t held = d.f.count, limit = d.f.limit;
    pthread_mutex_unlock(&d.f.mu);
    assert_int_equal(limit, 0);
    assert_true(held <= BF_FETCH_AHEAD); /* what it fetched before it was told */
    duckdb_data_chunk chunk = bf__fetcher_next(&d.f);
    assert_non_null(chunk);
    int64_t *values = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 0));
    assert_int_equal(values[0], rows);
    rows += (int64_t)duckdb_data_chunk_get_size(chunk);
    duckdb_destroy_data_chunk(&chunk);
    if (i >= BF_FETCH_AHEAD) { /* the ring has drained: nothing is fetched unasked */
      pthread_mutex_lock(&d.f.mu);
      assert_int_equal(d.f.count, 0);
      pthread_mutex_unlock(&d.f.mu);
    }
  }
  bf__fetcher_took(&d.f, BF_FETCH_AHEAD_BYTES / 4);
  assert_int_equal(d.f.limit, 4);
  int64_t total = rows + take_from(&d.f, rows, INT64_MAX);
  assert_int_equal(total, 2048 * 40);
  bf__fetcher_stop(&d.f);
  finish(&d);
}

static void test_a_consumer_that_stops_early_leaves_nothing(void **state) {
  (void)state;
  /* before the thread starts, just after, and with the thread running */
  const int taken_counts[] = {0, 3, BF_FETCH_INLINE + 1, BF_FETCH_INLINE + 5};
  for (size_t k = 0; k < sizeof taken_counts / sizeof taken_counts[0]; k++) {
    int taken = taken_counts[k];
    db_t d;
    start(&d, "SELECT range::BIGINT FROM range(10000000)");
    assert_int_equal(take(&d.f, taken), (int64_t)taken * 2048);
    assert_int_equal(d.f.threaded, taken > BF_FETCH_INLINE);
    bf__fetcher_stop(&d.f); /* the fetcher may be full, waiting, or mid-fetch */
    finish(&d);
  }
}

/* No thread to be had (EAGAIN: the process is at its limit): the result is read
 * on the consumer's thread, every row once and in order, and stopping early or at
 * the end still works. */
static void test_without_a_thread_the_result_is_read_inline(void **state) {
  (void)state;
  refuse_threads = 1;
  for (int early = 0; early <= 1; early++) {
    db_t d;
    start(&d, "SELECT range::BIGINT AS i, range::VARCHAR AS s FROM range(300000)");
    if (early) {
      assert_int_equal(take(&d.f, BF_FETCH_INLINE + 5), (BF_FETCH_INLINE + 5) * 2048);
    } else {
      assert_int_equal(take(&d.f, INT64_MAX), 300000);
      assert_null(bf__fetcher_next(&d.f));
    }
    assert_false(d.f.threaded);
    assert_true(d.f.inline_only);
    bf__fetcher_stop(&d.f);
    assert_null(duckdb_result_error(&d.result));
    finish(&d);
  }
  refuse_threads = 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_row_once_and_in_order),
      cmocka_unit_test(test_an_error_mid_result_ends_the_chunks),
      cmocka_unit_test(test_a_small_result_starts_no_thread),
      cmocka_unit_test(test_large_chunks_are_not_fetched_ahead),
      cmocka_unit_test(test_a_consumer_that_stops_early_leaves_nothing),
      cmocka_unit_test(test_without_a_thread_the_result_is_read_inline),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
