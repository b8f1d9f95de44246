/* Unit tests of the S3 client (storage_s3*.c) against a real moto S3 server that
 * enforces SigV4 signatures: round trips (empty, 5 MiB, keys with spaces, '=',
 * '%', unicode), put-if-absent, stat, delete, listings (sub-directories,
 * start_after, pagination past 1000 keys, the bucket root), copy, refused
 * credentials, a closed port, a lost put-if-absent answer, concurrent threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/storage_s3.h"
#include "storage/storage_s3_internal.h"
#include "storage_s3_test_moto.h"

static moto_t g_moto;
static bf_s3_config_t g_cfg;

static int group_setup(void **state) {
  (void)state;
  if (!moto_start(&g_moto)) return -1;
  if (!moto_create_bucket(&g_moto, "bifrost-test") || !moto_create_bucket(&g_moto, "bifrost-root"))
    return -1;
  g_cfg = (bf_s3_config_t){0};
  snprintf(g_cfg.endpoint, sizeof g_cfg.endpoint, "%s", g_moto.endpoint);
  snprintf(g_cfg.region, sizeof g_cfg.region, "us-east-1");
  snprintf(g_cfg.key_id, sizeof g_cfg.key_id, "%s", g_moto.key_id);
  snprintf(g_cfg.secret, sizeof g_cfg.secret, "%s", g_moto.secret);
  g_cfg.retry_base_ms = 5;
  g_cfg.retry_cap_ms = 20;
  bf_error_t err = {0};
  if (bf_s3_init(&g_cfg, &err) != BF_OK) {
    fprintf(stderr, "bf_s3_init: %s\n", err.message);
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  bf_s3_shutdown();
  moto_stop(&g_moto);
  return 0;
}

/* Every test starts from the moto configuration (some install others). */
static int test_setup(void **state) {
  (void)state;
  bf_error_t err = {0};
  return bf_s3_init(&g_cfg, &err) == BF_OK ? 0 : -1;
}

static void list_free(bf_storage_list_t *l) {
  for (size_t i = 0; i < l->len; i++) free(l->items[i].name);
  free(l->items);
  *l = (bf_storage_list_t){0};
}

static void put(const char *loc, const char *text) {
  bf_error_t err = {0};
  int st = bf_s3_write(loc, text, strlen(text), false, &err);
  if (st != BF_OK) fail_msg("%s: %s", loc, err.message);
}

static void assert_object(const char *loc, const void *want, size_t want_size) {
  char *got = NULL;
  size_t got_size = 99;
  bf_error_t err = {0};
  int st = bf_s3_read(loc, &got, &got_size, &err);
  if (st != BF_OK) fail_msg("%s: %s", loc, err.message);
  assert_int_equal(got_size, want_size);
  if (want_size) assert_memory_equal(got, want, want_size);
  assert_int_equal(got[got_size], '\0');
  free(got);
}

static void test_round_trips(void **state) {
  (void)state;
  static const char *const keys[] = {
      "s3://bifrost-test/rt/plain.json",
      "s3://bifrost-test/rt/with space and+plus.txt",
      "s3://bifrost-test/rt/country=US/__HIVE_DEFAULT_PARTITION__/part-0.parquet",
      "s3://bifrost-test/rt/100%25 %41 & ? # ~ ! ' ( ) * , ; : @ $.txt",
      "s3://bifrost-test/rt/unicodé/表/ü.json",
  };
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    char body[256];
    snprintf(body, sizeof body, "{\"object\":%zu,\"key\":\"%s\"}", i, keys[i]);
    put(keys[i], body);
    assert_object(keys[i], body, strlen(body));
  }
  /* empty object */
  bf_error_t err = {0};
  assert_int_equal(bf_s3_write("s3://bifrost-test/rt/empty", "", 0, false, &err), BF_OK);
  assert_object("s3://bifrost-test/rt/empty", "", 0);
  int64_t size = -1;
  assert_int_equal(bf_s3_stat("s3://bifrost-test/rt/empty", &size, NULL, &err), BF_OK);
  assert_int_equal(size, 0);
  /* 5 MiB of non-text bytes, then replaced by a shorter object */
  size_t big_n = 5u << 20;
  unsigned char *big = malloc(big_n);
  assert_non_null(big);
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < big_n; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    big[i] = (unsigned char)x;
  }
  assert_int_equal(bf_s3_write("s3://bifrost-test/rt/big.bin", big, big_n, false, &err), BF_OK);
  assert_object("s3://bifrost-test/rt/big.bin", big, big_n);
  assert_int_equal(bf_s3_write("s3://bifrost-test/rt/big.bin", big + 7, 1000, false, &err), BF_OK);
  assert_object("s3://bifrost-test/rt/big.bin", big + 7, 1000);
  free(big);
}

static void test_write_new(void **state) {
  (void)state;
  bf_error_t err = {0};
  const char *loc = "s3://bifrost-test/wn/_delta_log/00000000000000000000.json";
  assert_int_equal(bf_s3_write(loc, "first", 5, true, &err), BF_OK);
  assert_int_equal(bf_s3_write(loc, "second", 6, true, &err), BF_EEXIST);
  assert_non_null(strstr(err.message, loc));
  /* the same bytes again on a first attempt are still a lost race */
  assert_int_equal(bf_s3_write(loc, "first", 5, true, &err), BF_EEXIST);
  assert_object(loc, "first", 5);
  assert_int_equal(bf_s3_write(loc, "third", 5, false, &err), BF_OK);
  assert_object(loc, "third", 5);
}

static void test_lost_answer_of_put_if_absent(void **state) {
  (void)state;
  bf_error_t err = {0};
  const char *loc = "s3://bifrost-test/lost/_delta_log/00000000000000000001.json";
  bf_s3_counters_t before, after;
  bf_s3_counters(&before);
  /* attempt 1 creates the object but its answer is lost; attempt 2 gets 412;
   * the object holds our bytes, so the commit is ours */
  bf__s3_test_lose_responses(1);
  assert_int_equal(bf_s3_write(loc, "commit-1", 8, true, &err), BF_OK);
  bf_s3_counters(&after);
  assert_int_equal(after.put - before.put, 2);
  assert_int_equal(after.retries - before.retries, 1);
  assert_int_equal(after.get - before.get, 1);
  assert_object(loc, "commit-1", 8);
  /* the same situation when another writer's bytes are there */
  assert_int_equal(bf__s3_put_if_absent_retried(loc, "commit-2", 8, &err), BF_EEXIST);
  assert_non_null(strstr(err.message, "other contents"));
  assert_int_equal(bf__s3_put_if_absent_retried(loc, "commit-1!", 9, &err), BF_EEXIST);
  assert_int_equal(bf__s3_put_if_absent_retried(loc, "commit-1", 8, &err), BF_OK);
  /* and when the object has gone since */
  assert_int_equal(bf__s3_put_if_absent_retried("s3://bifrost-test/lost/none", "x", 1, &err),
                   BF_EEXIST);
  /* a lost answer of a plain write is simply retried */
  bf__s3_test_lose_responses(1);
  assert_int_equal(bf_s3_write(loc, "replaced", 8, false, &err), BF_OK);
  assert_object(loc, "replaced", 8);
}

static void test_stat_and_missing(void **state) {
  (void)state;
  bf_error_t err = {0};
  const char *loc = "s3://bifrost-test/st/file.bin";
  put(loc, "0123456789");
  time_t now = time(NULL);
  int64_t size = -1, mtime = -1;
  assert_int_equal(bf_s3_stat(loc, &size, &mtime, &err), BF_OK);
  assert_int_equal(size, 10);
  assert_true(mtime > now - 600 && mtime < now + 600); /* same machine's clock */
  assert_int_equal(bf_s3_stat(loc, NULL, NULL, &err), BF_OK);

  const char *missing = "s3://bifrost-test/st/missing.json";
  assert_int_equal(bf_s3_stat(missing, &size, &mtime, &err), BF_ENOTFOUND);
  assert_non_null(strstr(err.message, missing));
  char *out = (char *)1;
  size_t n = 5;
  assert_int_equal(bf_s3_read(missing, &out, &n, &err), BF_ENOTFOUND);
  assert_null(out);
  assert_non_null(strstr(err.message, "NoSuchKey"));
  assert_int_equal(bf_s3_read("s3://no-such-bucket-x/k", &out, &n, &err), BF_ENOTFOUND);
  assert_non_null(strstr(err.message, "NoSuchBucket"));
}

static void test_delete(void **state) {
  (void)state;
  bf_error_t err = {0};
  const char *loc = "s3://bifrost-test/del/x=1/a b.json";
  put(loc, "x");
  assert_int_equal(bf_s3_delete(loc, &err), BF_OK);
  assert_int_equal(bf_s3_stat(loc, NULL, NULL, &err), BF_ENOTFOUND);
  assert_int_equal(bf_s3_delete(loc, &err), BF_OK);
  assert_int_equal(bf_s3_delete("s3://bifrost-test/del/never", &err), BF_OK);
}

static void test_bad_locations(void **state) {
  (void)state;
  bf_error_t err = {0};
  char *out = NULL;
  size_t n = 0;
  assert_int_equal(bf_s3_read("s3://bifrost-test/", &out, &n, &err), BF_EINVAL);
  assert_int_equal(bf_s3_read("s3://bifrost-test", &out, &n, &err), BF_EINVAL);
  assert_int_equal(bf_s3_read("s3://bifrost-test/dir/", &out, &n, &err), BF_EINVAL);
  assert_int_equal(bf_s3_read("s3:///key", &out, &n, &err), BF_EINVAL);
  assert_int_equal(bf_s3_read("s3://Bad_Bucket/key", &out, &n, &err), BF_EINVAL);
  assert_int_equal(bf_s3_write("/tmp/local", "x", 1, false, &err), BF_EINVAL);
  assert_int_equal(bf_s3_copy("s3://bifrost-test/a", "s3://bifrost-test/", &err), BF_EINVAL);
  bf_storage_list_t l;
  assert_int_equal(bf_s3_list("file:///x", NULL, &l, &err), BF_EINVAL);
  assert_int_equal(l.len, 0);
}

static void assert_entry(const bf_storage_entry_t *e, const char *name, bool is_dir, int64_t size) {
  assert_string_equal(e->name, name);
  assert_int_equal(e->is_dir, is_dir);
  assert_int_equal(e->size, size);
  if (!is_dir) assert_true(e->mtime_s > 1600000000);
}

static void test_list(void **state) {
  (void)state;
  bf_error_t err = {0};
  put("s3://bifrost-test/tbl/b.json", "bb");
  put("s3://bifrost-test/tbl/a.json", "a");
  put("s3://bifrost-test/tbl/a-b", "abc");
  put("s3://bifrost-test/tbl/country=US/part-0.parquet", "p");
  put("s3://bifrost-test/tbl/country=US/deeper/part-1.parquet", "p");
  put("s3://bifrost-test/tbl/__HIVE_DEFAULT_PARTITION__/part-0.parquet", "p");
  put("s3://bifrost-test/tbl/a/inside", "p");
  put("s3://bifrost-test/tbl-sibling/not-listed", "p");
  put("s3://bifrost-test/tbl/_delta_log/00000000000000000000.json", "{}");

  bf_storage_list_t l;
  assert_int_equal(bf_s3_list("s3://bifrost-test/tbl", NULL, &l, &err), BF_OK);
  assert_int_equal(l.len, 7);
  assert_entry(&l.items[0], "__HIVE_DEFAULT_PARTITION__", true, 0);
  assert_entry(&l.items[1], "_delta_log", true, 0);
  assert_entry(&l.items[2], "a", true, 0);
  assert_entry(&l.items[3], "a-b", false, 3);
  assert_entry(&l.items[4], "a.json", false, 1);
  assert_entry(&l.items[5], "b.json", false, 2);
  assert_entry(&l.items[6], "country=US", true, 0);
  list_free(&l);

  /* trailing slash; start_after skips names <= it, dirs included */
  assert_int_equal(bf_s3_list("s3://bifrost-test/tbl/", "a", &l, &err), BF_OK);
  assert_int_equal(l.len, 4);
  assert_string_equal(l.items[0].name, "a-b");
  assert_string_equal(l.items[1].name, "a.json");
  assert_string_equal(l.items[3].name, "country=US");
  list_free(&l);
  assert_int_equal(bf_s3_list("s3://bifrost-test/tbl/", "b.json", &l, &err), BF_OK);
  assert_int_equal(l.len, 1);
  assert_string_equal(l.items[0].name, "country=US");
  list_free(&l);
  assert_int_equal(bf_s3_list("s3://bifrost-test/tbl/", "zzz", &l, &err), BF_OK);
  assert_int_equal(l.len, 0);
  list_free(&l);

  assert_int_equal(bf_s3_list("s3://bifrost-test/tbl/country=US", "", &l, &err), BF_OK);
  assert_int_equal(l.len, 2);
  assert_entry(&l.items[0], "deeper", true, 0);
  assert_entry(&l.items[1], "part-0.parquet", false, 1);
  list_free(&l);

  assert_int_equal(bf_s3_list("s3://bifrost-test/no/such/dir", NULL, &l, &err), BF_OK);
  assert_int_equal(l.len, 0);
  list_free(&l);
}

static void test_list_bucket_root(void **state) {
  (void)state;
  bf_error_t err = {0};
  put("s3://bifrost-root/top.json", "t");
  put("s3://bifrost-root/cat/sch/tbl/_delta_log/0.json", "{}");
  bf_storage_list_t l;
  const char *roots[] = {"s3://bifrost-root", "s3://bifrost-root/"};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(bf_s3_list(roots[i], NULL, &l, &err), BF_OK);
    assert_int_equal(l.len, 2);
    assert_entry(&l.items[0], "cat", true, 0);
    assert_entry(&l.items[1], "top.json", false, 1);
    list_free(&l);
  }
  assert_int_equal(bf_s3_list("s3://bifrost-root", "cat", &l, &err), BF_OK);
  assert_int_equal(l.len, 1);
  list_free(&l);
  assert_int_equal(bf_s3_list("s3://no-such-bucket-x/", NULL, &l, &err), BF_ENOTFOUND);
  assert_int_equal(l.len, 0);
}

/* 1003 files and 2 directories: two pages at S3's 1000, many at a page of 97. */
static void test_list_pagination(void **state) {
  (void)state;
  bf_error_t err = {0};
  char loc[128];
  for (int i = 0; i < 1003; i++) {
    snprintf(loc, sizeof loc, "s3://bifrost-test/many/f%05d", i);
    assert_int_equal(bf_s3_write(loc, "", 0, false, &err), BF_OK);
  }
  put("s3://bifrost-test/many/d1/x", "x");
  put("s3://bifrost-test/many/zdir/x", "x");
  int page_sizes[] = {0, 97};
  for (int p = 0; p < 2; p++) {
    bf_s3_config_t cfg = g_cfg;
    cfg.list_page_size = page_sizes[p];
    assert_int_equal(bf_s3_init(&cfg, &err), BF_OK);
    bf_s3_counters_t before, after;
    bf_s3_counters(&before);
    bf_storage_list_t l;
    assert_int_equal(bf_s3_list("s3://bifrost-test/many", NULL, &l, &err), BF_OK);
    bf_s3_counters(&after);
    assert_int_equal(after.list - before.list, p == 0 ? 2 : 11); /* 1005 entries / 97 */
    assert_int_equal(l.len, 1005);
    assert_entry(&l.items[0], "d1", true, 0);
    for (int i = 0; i < 1003; i++) {
      snprintf(loc, sizeof loc, "f%05d", i);
      assert_string_equal(l.items[1 + i].name, loc);
    }
    assert_entry(&l.items[1004], "zdir", true, 0);
    list_free(&l);
    assert_int_equal(bf_s3_list("s3://bifrost-test/many", "f00990", &l, &err), BF_OK);
    assert_int_equal(l.len, 13);
    assert_string_equal(l.items[0].name, "f00991");
    list_free(&l);
  }
}

static void test_copy(void **state) {
  (void)state;
  bf_error_t err = {0};
  const char *from = "s3://bifrost-test/cp/src dir/país=ñ/%file.json";
  const char *to = "s3://bifrost-test/cp/dst/file.json";
  put(from, "{\"copied\":true}");
  bf_s3_counters_t before, after;
  bf_s3_counters(&before);
  assert_int_equal(bf_s3_copy(from, to, &err), BF_OK);
  bf_s3_counters(&after);
  assert_int_equal(after.copy - before.copy, 1);
  assert_object(to, "{\"copied\":true}", 15);
  assert_object(from, "{\"copied\":true}", 15);
  assert_int_equal(bf_s3_copy("s3://bifrost-test/cp/missing", to, &err), BF_ENOTFOUND);
  assert_non_null(strstr(err.message, "s3://bifrost-test/cp/missing"));
}

static void test_refused_credentials(void **state) {
  (void)state;
  bf_error_t err = {0};
  put("s3://bifrost-test/perm/x", "x");
  bf_s3_config_t cfg = g_cfg;
  snprintf(cfg.secret, sizeof cfg.secret, "not-the-secret-0123456789");
  assert_int_equal(bf_s3_init(&cfg, &err), BF_OK);
  char *out = NULL;
  size_t n = 0;
  assert_int_equal(bf_s3_read("s3://bifrost-test/perm/x", &out, &n, &err), BF_EPERM);
  assert_non_null(strstr(err.message, "SignatureDoesNotMatch"));
  assert_non_null(strstr(err.message, "s3://bifrost-test/perm/x"));
  assert_null(strstr(err.message, "not-the-secret"));
  assert_int_equal(bf_s3_write("s3://bifrost-test/perm/y", "y", 1, true, &err), BF_EPERM);
  bf_storage_list_t l;
  assert_int_equal(bf_s3_list("s3://bifrost-test/perm", NULL, &l, &err), BF_EPERM);
  snprintf(cfg.key_id, sizeof cfg.key_id, "AKIANOSUCHKEY0000000");
  assert_int_equal(bf_s3_init(&cfg, &err), BF_OK);
  assert_int_equal(bf_s3_delete("s3://bifrost-test/perm/x", &err), BF_EPERM);
  assert_non_null(strstr(err.message, "InvalidAccessKeyId"));
  assert_int_equal(bf_s3_init(&g_cfg, &err), BF_OK);
  assert_object("s3://bifrost-test/perm/x", "x", 1);
}

static void test_endpoint_down(void **state) {
  (void)state;
  bf_error_t err = {0};
  bf_s3_config_t cfg = g_cfg;
  snprintf(cfg.endpoint, sizeof cfg.endpoint, "http://127.0.0.1:%d", moto_free_port());
  cfg.max_attempts = 4;
  assert_int_equal(bf_s3_init(&cfg, &err), BF_OK);
  bf_s3_counters_t before, after;
  bf_s3_counters(&before);
  assert_int_equal(bf_s3_write("s3://bifrost-test/down/x", "x", 1, true, &err), BF_EUNAVAILABLE);
  bf_s3_counters(&after);
  assert_int_equal(after.put - before.put, 4);
  assert_int_equal(after.retries - before.retries, 3);
  assert_non_null(strstr(err.message, "s3://bifrost-test/down/x"));
  assert_non_null(strstr(err.message, "after 4 attempts"));
  int64_t size;
  assert_int_equal(bf_s3_stat("s3://bifrost-test/down/x", &size, NULL, &err), BF_EUNAVAILABLE);
  bf_storage_list_t l;
  assert_int_equal(bf_s3_list("s3://bifrost-test/down", NULL, &l, &err), BF_EUNAVAILABLE);
  assert_int_equal(l.len, 0);
}

static void test_not_initialised(void **state) {
  (void)state;
  bf_error_t err = {0};
  bf_s3_shutdown();
  assert_null(bf_s3_config());
  assert_int_equal(bf_s3_delete("s3://bifrost-test/x", &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "bf_s3_init"));
  bf_storage_list_t l;
  assert_int_equal(bf_s3_list("s3://bifrost-test/x", NULL, &l, &err), BF_EINVAL);
  bf_s3_config_t empty = {0};
  assert_int_equal(bf_s3_init(&empty, &err), BF_EINVAL);
  assert_int_equal(bf_s3_init(&g_cfg, &err), BF_OK);
  assert_non_null(bf_s3_config());
}

typedef struct {
  int id;
  int failures;
} worker_t;

static void *worker(void *arg) {
  worker_t *w = arg;
  for (int i = 0; i < 25; i++) {
    char loc[128], body[64];
    snprintf(loc, sizeof loc, "s3://bifrost-test/mt/t%d/o%02d", w->id, i);
    snprintf(body, sizeof body, "thread %d object %d", w->id, i);
    bf_error_t err = {0};
    char *got = NULL;
    size_t n = 0;
    if (bf_s3_write(loc, body, strlen(body), true, &err) != BF_OK ||
        bf_s3_read(loc, &got, &n, &err) != BF_OK || n != strlen(body) || memcmp(got, body, n) != 0)
      w->failures++;
    free(got);
  }
  bf_storage_list_t l;
  bf_error_t err = {0};
  char dir[64];
  snprintf(dir, sizeof dir, "s3://bifrost-test/mt/t%d", w->id);
  if (bf_s3_list(dir, NULL, &l, &err) != BF_OK || l.len != 25) w->failures++;
  list_free(&l);
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  enum { N = 12 }; /* more than the pool keeps */
  pthread_t t[N];
  worker_t w[N];
  for (int i = 0; i < N; i++) {
    w[i] = (worker_t){i, 0};
    assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
  }
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(w[i].failures, 0);
  }
}

int main(void) {
  /* Requests go to 127.0.0.1 directly, whatever proxy the environment names. */
  const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                           "ALL_PROXY"};
  for (size_t i = 0; i < sizeof proxies / sizeof *proxies; i++) unsetenv(proxies[i]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_round_trips, test_setup),
      cmocka_unit_test_setup(test_write_new, test_setup),
      cmocka_unit_test_setup(test_lost_answer_of_put_if_absent, test_setup),
      cmocka_unit_test_setup(test_stat_and_missing, test_setup),
      cmocka_unit_test_setup(test_delete, test_setup),
      cmocka_unit_test_setup(test_bad_locations, test_setup),
      cmocka_unit_test_setup(test_list, test_setup),
      cmocka_unit_test_setup(test_list_bucket_root, test_setup),
      cmocka_unit_test_setup(test_list_pagination, test_setup),
      cmocka_unit_test_setup(test_copy, test_setup),
      cmocka_unit_test_setup(test_refused_credentials, test_setup),
      cmocka_unit_test_setup(test_endpoint_down, test_setup),
      cmocka_unit_test_setup(test_not_initialised, test_setup),
      cmocka_unit_test_setup(test_threads, test_setup),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
