/* Unit tests for the Delta log: version 0, appends with txn, replay, path encoding,
 * lost commit races, exactly-once detection and corruption detection. delta-rs
 * reading these tables is tested end to end in python/tests/test_interop.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/delta.h"
#include "bifrost/util.h"
#include "delta/delta_path.h"
#include "delta/delta_snapshot.h"

static const char *SCHEMA_JSON =
    "{\"properties\":{\"user\":{\"type\":\"string\"},\"model\":{\"type\":\"string\"},"
    "\"score\":{\"type\":\"number\"}},\"required\":[\"user\",\"model\",\"score\"]}";

typedef struct fixture {
  char dir[64];
  bf_schema_t schema;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/bf_delta_test_XXXXXX");
  if (mkdtemp(f->dir) == NULL) return -1;
  bf_error_t err;
  if (bf_schema_from_json_schema(SCHEMA_JSON, strlen(SCHEMA_JSON), &f->schema, &err) != BF_OK)
    return -1;
  const char *parts[] = {"model"};
  if (bf_delta_log_create(f->dir, &f->schema, parts, 1, &err) != BF_OK) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  if (system(cmd) != 0) return -1;
  bf_schema_reset(&f->schema);
  free(f);
  return 0;
}

static bf_delta_file_t make_file(const char *path, const char *date, const char *model, int64_t rows) {
  bf_delta_file_t file = {0};
  file.path = strdup(path);
  file.n_partition_values = 2;
  file.partition_values = calloc(2, sizeof(char *));
  file.partition_values[0] = strdup(date);
  file.partition_values[1] = model ? strdup(model) : NULL;
  file.size_bytes = 1234;
  file.modification_time_ms = 1700000000000;
  file.num_records = rows;
  char stats[64];
  snprintf(stats, sizeof stats, "{\"numRecords\":%lld}", (long long)rows);
  file.stats_json = strdup(stats);
  return file;
}

static void test_create_append_and_replay(void **state) {
  fixture_t *f = *state;
  bf_error_t err;
  bf_error_init(&err);
  bf_delta_snapshot_t snap;
  assert_int_equal(bf_delta_snapshot_load(f->dir, &snap, &err), BF_OK);
  assert_int_equal(snap.version, 0);
  assert_int_equal(snap.n_partition_columns, 2);
  assert_string_equal(snap.partition_columns[0], "scouter_partition_date");
  assert_string_equal(snap.partition_columns[1], "model");
  assert_non_null(strstr(snap.schema_string, "{\"name\":\"score\",\"type\":\"double\",\"nullable\":false"));
  assert_non_null(strstr(snap.schema_string, "\"type\":\"timestamp\""));

  bf_delta_file_t files[2] = {
      make_file("scouter_partition_date=2026-11-22/model=a b%2F/part-1.parquet", "2026-11-22", "a b/", 10),
      make_file("scouter_partition_date=2026-11-22/model=NULL/part-2.parquet", "2026-11-22", NULL, 5)};
  int64_t version = -1;
  assert_int_equal(bf_delta_log_append(f->dir, &snap, files, 2, "producer-1", 1, &version, &err), BF_OK);
  assert_int_equal(version, 1);
  assert_int_equal(snap.n_files, 2);
  assert_int_equal(bf_delta_snapshot_txn_version(&snap, "producer-1"), 1);

  /* The commit file holds commitInfo first, a blind append, the txn and encoded paths. */
  char path[128];
  snprintf(path, sizeof path, "%s/_delta_log/00000000000000000001.json", f->dir);
  char *text;
  size_t size;
  assert_int_equal(bf_fs_read_file(path, &text, &size, &err), BF_OK);
  assert_memory_equal(text, "{\"commitInfo\":", 14);
  assert_non_null(strstr(text, "\"isBlindAppend\":true"));
  assert_non_null(strstr(text, "{\"txn\":{\"appId\":\"producer-1\",\"version\":1"));
  assert_non_null(strstr(text, "model=a%20b%252F/part-1.parquet"));
  assert_non_null(strstr(text, "\"model\":null"));
  free(text);

  bf_delta_snapshot_t reloaded;
  assert_int_equal(bf_delta_snapshot_load(f->dir, &reloaded, &err), BF_OK);
  assert_int_equal(reloaded.version, 1);
  assert_int_equal(reloaded.n_files, 2);
  int found = 0;
  for (size_t i = 0; i < reloaded.n_files; i++) {
    if (strcmp(reloaded.files[i].path, files[0].path) == 0) {
      found = 1;
      assert_string_equal(reloaded.files[i].partition_values[1], "a b/");
      assert_int_equal(reloaded.files[i].num_records, 10);
    } else {
      assert_null(reloaded.files[i].partition_values[1]);
    }
  }
  assert_true(found);
  assert_int_equal(bf_delta_snapshot_txn_version(&reloaded, "producer-1"), 1);
  assert_int_equal(bf_delta_snapshot_txn_version(&reloaded, "other"), -1);
  bf_delta_snapshot_reset(&reloaded);
  bf_delta_snapshot_reset(&snap);
  bf_delta_file_reset(&files[0]);
  bf_delta_file_reset(&files[1]);
}

static void test_lost_race_retries_and_detects_duplicates(void **state) {
  fixture_t *f = *state;
  bf_error_t err;
  bf_delta_snapshot_t a, b;
  assert_int_equal(bf_delta_snapshot_load(f->dir, &a, &err), BF_OK);
  assert_int_equal(bf_delta_snapshot_load(f->dir, &b, &err), BF_OK);
  bf_delta_file_t fa = make_file("scouter_partition_date=2026-11-22/model=x/a.parquet", "2026-11-22", "x", 1);
  bf_delta_file_t fb = make_file("scouter_partition_date=2026-11-22/model=x/b.parquet", "2026-11-22", "x", 2);
  int64_t va, vb;
  assert_int_equal(bf_delta_log_append(f->dir, &a, &fa, 1, "writer-a", 1, &va, &err), BF_OK);
  /* b still believes version 0 is the latest: it must land at version 2, not overwrite. */
  assert_int_equal(bf_delta_log_append(f->dir, &b, &fb, 1, "writer-b", 1, &vb, &err), BF_OK);
  assert_int_equal(va, 1);
  assert_int_equal(vb, 2);
  assert_int_equal(b.n_files, 2); /* caught up with a's commit */
  /* A stale snapshot retrying a batch that writer-a already committed. */
  bf_delta_snapshot_t stale;
  assert_int_equal(bf_delta_snapshot_load(f->dir, &stale, &err), BF_OK);
  bf_delta_snapshot_reset(&stale);
  bf_delta_snapshot_t old;
  memset(&old, 0, sizeof old);
  assert_int_equal(bf_delta_snapshot_load(f->dir, &old, &err), BF_OK);
  old.version = 0; /* pretend it was loaded before both commits */
  int64_t vdup = -1;
  assert_int_equal(bf_delta_log_append(f->dir, &old, &fa, 1, "writer-a", 1, &vdup, &err), BF_EEXIST);
  assert_int_equal(vdup, -1);
  bf_delta_snapshot_t final;
  assert_int_equal(bf_delta_snapshot_load(f->dir, &final, &err), BF_OK);
  assert_int_equal(final.version, 2);
  assert_int_equal(final.n_files, 2);
  bf_delta_snapshot_reset(&final);
  bf_delta_snapshot_reset(&old);
  bf_delta_snapshot_reset(&a);
  bf_delta_snapshot_reset(&b);
  bf_delta_file_reset(&fa);
  bf_delta_file_reset(&fb);
}

/* A commit whose answer was lost is found again by its commitInfo.txnId, and only
 * among the versions after the one it was built on. */
static void test_commit_found_by_txn_id(void **state) {
  fixture_t *f = *state;
  bf_error_t err;
  bf_delta_snapshot_t s;
  assert_int_equal(bf_delta_snapshot_load(f->dir, &s, &err), BF_OK);
  bf_delta_file_t fa = make_file("scouter_partition_date=2026-11-22/model=x/a.parquet", "2026-11-22", "x", 1);
  int64_t v1 = -1, v2 = -1, found = -2;
  assert_int_equal(bf_delta_log_append(f->dir, &s, &fa, 1, "other", 1, &v1, &err), BF_OK);
  bf_delta_commit_t c = {.operation = "WRITE", .data_change = 1, .adds = &fa, .n_adds = 0,
                         .txn_id = "6f1c2d7e-0000-4000-8000-000000000001"};
  assert_int_equal(bf_delta_log_commit(f->dir, &s, &c, &v2, &err), BF_OK);
  assert_int_equal(v2, 2);
  assert_int_equal(bf_delta_log_find_commit(f->dir, 0, 2, c.txn_id, &found, &err), BF_OK);
  assert_int_equal(found, 2);
  assert_int_equal(bf_delta_log_find_commit(f->dir, 2, 2, c.txn_id, &found, &err), BF_OK);
  assert_int_equal(found, -1); /* built on 2: a commit at or before it is not the one */
  assert_int_equal(bf_delta_log_find_commit(f->dir, 0, 2, "6f1c2d7e-0000-4000-8000-000000000002",
                                            &found, &err), BF_OK);
  assert_int_equal(found, -1);
  assert_true(bf_delta_commit_outcome_unknown(BF_EUNAVAILABLE));
  assert_true(bf_delta_commit_outcome_unknown(BF_EIO));
  assert_false(bf_delta_commit_outcome_unknown(BF_EEXIST));
  assert_false(bf_delta_commit_outcome_unknown(BF_ECONFLICT));
  bf_delta_snapshot_reset(&s);
  bf_delta_file_reset(&fa);
}

static void test_gap_and_corrupt_line_are_detected(void **state) {
  fixture_t *f = *state;
  bf_error_t err;
  bf_error_init(&err);
  char path[128];
  snprintf(path, sizeof path, "%s/_delta_log/00000000000000000002.json", f->dir);
  assert_int_equal(bf_fs_write_new_file(path, "{\"commitInfo\":{}}\n", 18, &err), BF_OK);
  bf_delta_snapshot_t snap;
  assert_int_equal(bf_delta_snapshot_load(f->dir, &snap, &err), BF_ECORRUPT);
  if (strstr(err.message, "commit 1 missing") == NULL) fail_msg("%s", err.message);
  snprintf(path, sizeof path, "%s/_delta_log/00000000000000000001.json", f->dir);
  assert_int_equal(bf_fs_write_new_file(path, "{\"add\":{\"path\":\"x\"}}\nnot json\n", 30, &err), BF_OK);
  assert_int_equal(bf_delta_snapshot_load(f->dir, &snap, &err), BF_ECORRUPT);
  assert_non_null(strstr(err.message, "line 2"));
}

static void append_one(fixture_t *f, bf_delta_snapshot_t *snap, const char *path, const char *app,
                       int64_t seq) {
  bf_error_t err;
  bf_error_init(&err);
  bf_delta_file_t file = make_file(path, "2026-01-01", "m1", 10);
  int64_t version;
  assert_int_equal(bf_delta_log_append(f->dir, snap, &file, 1, app, seq, &version, &err), BF_OK);
  bf_delta_file_reset(&file);
}

static void test_compaction_commit_and_conflict(void **state) {
  fixture_t *f = *state;
  bf_error_t err;
  bf_error_init(&err);
  bf_delta_snapshot_t snap, stale;
  assert_int_equal(bf_delta_snapshot_load(f->dir, &snap, &err), BF_OK);
  append_one(f, &snap, "a.parquet", "p1", 1);
  append_one(f, &snap, "b.parquet", "p2", 7);
  assert_int_equal(bf_delta_snapshot_load(f->dir, &stale, &err), BF_OK);
  /* Compaction: two files become one, rows unchanged, no data change. */
  bf_delta_file_t merged = make_file("ab.parquet", "2026-01-01", "m1", 20);
  const char *removes[] = {"a.parquet", "b.parquet"};
  const char *apps[] = {"p1", "p3"};
  int64_t seqs[] = {0, 4}; /* p1 must not go back from 1 to 0 */
  bf_delta_commit_t c = {.operation = "OPTIMIZE", .adds = &merged, .n_adds = 1, .removes = removes,
                         .n_removes = 2, .txn_app_ids = apps, .txn_versions = seqs, .n_txns = 2};
  int64_t version = -1;
  assert_int_equal(bf_delta_log_commit(f->dir, &snap, &c, &version, &err), BF_OK);
  assert_int_equal(version, 3);
  assert_int_equal(snap.n_files, 1);
  assert_string_equal(snap.files[0].path, "ab.parquet");
  assert_int_equal(bf_delta_snapshot_txn_version(&snap, "p1"), 1);
  assert_int_equal(bf_delta_snapshot_txn_version(&snap, "p3"), 4);
  char path[256], *text;
  size_t size;
  snprintf(path, sizeof path, "%s/_delta_log/%020d.json", f->dir, 3);
  assert_int_equal(bf_fs_read_file(path, &text, &size, &err), BF_OK);
  assert_non_null(strstr(text, "\"remove\":{\"path\":\"a.parquet\""));
  assert_non_null(strstr(text, "\"dataChange\":false"));
  assert_null(strstr(text, "\"dataChange\":true"));
  free(text);
  /* A second compaction from a stale snapshot loses the race and finds its
   * inputs gone: a conflict, nothing committed. */
  bf_delta_file_t other = make_file("ab2.parquet", "2026-01-01", "m1", 20);
  c.adds = &other;
  c.n_txns = 0;
  assert_int_equal(bf_delta_log_commit(f->dir, &stale, &c, &version, &err), BF_ECONFLICT);
  assert_non_null(strstr(err.message, "removed by a concurrent commit"));
  bf_delta_snapshot_t final;
  assert_int_equal(bf_delta_snapshot_load(f->dir, &final, &err), BF_OK);
  assert_int_equal(final.version, 3);
  assert_int_equal(final.n_files, 1);
  bf_delta_file_reset(&merged);
  bf_delta_file_reset(&other);
  bf_delta_snapshot_reset(&snap);
  bf_delta_snapshot_reset(&stale);
  bf_delta_snapshot_reset(&final);
}

/* Stands in for the server's Parquet reader: the "checkpoint" file holds the
 * NDJSON actions themselves. */
static int read_text_checkpoint(void *ctx, const char *path, bf_delta_snapshot_t *into,
                                bf_error_t *err) {
  int *calls = ctx;
  (*calls)++;
  char *text;
  size_t len;
  BF_RETURN_NOT_OK(bf_fs_read_file(path, &text, &len, err));
  int status = bf_delta_snapshot_apply_json(into, text, len, path, err);
  free(text);
  return status;
}

static void test_checkpoint_replay_and_log_cleanup(void **state) {
  fixture_t *f = *state;
  bf_error_t err;
  bf_error_init(&err);
  bf_delta_snapshot_t snap;
  assert_int_equal(bf_delta_snapshot_load(f->dir, &snap, &err), BF_OK);
  for (int i = 1; i <= 5; i++) {
    char name[32];
    snprintf(name, sizeof name, "f%d.parquet", i);
    append_one(f, &snap, name, i % 2 ? "odd" : "even", i);
  }
  char *actions;
  size_t len, n_actions;
  assert_int_equal(bf_delta_snapshot_actions(&snap, &actions, &len, &n_actions, &err), BF_OK);
  assert_int_equal(n_actions, 2 + 2 + 5);
  char path[256];
  bf_delta_checkpoint_path(f->dir, snap.version, path, sizeof path);
  assert_int_equal(bf_fs_write_new_file(path, actions, len, &err), BF_OK);
  free(actions);
  assert_int_equal(bf_delta_last_checkpoint_write(f->dir, snap.version, (int64_t)n_actions, -1, -1, &err),
                   BF_OK);
  assert_int_equal(bf_delta_last_checkpoint_version(f->dir), 5);
  append_one(f, &snap, "f6.parquet", "odd", 9);
  /* Retention keeps young commits... */
  size_t deleted = 99;
  assert_int_equal(bf_delta_log_cleanup(f->dir, 3600 * 1000, &deleted, &err), BF_OK);
  assert_int_equal(deleted, 0);
  /* ...and without it everything before the checkpoint goes. */
  assert_int_equal(bf_delta_log_cleanup(f->dir, -1000, &deleted, &err), BF_OK);
  assert_int_equal(deleted, 5);
  snprintf(path, sizeof path, "%s/_delta_log/%020d.json", f->dir, 0);
  assert_false(bf_fs_exists(path));
  snprintf(path, sizeof path, "%s/_delta_log/%020d.json", f->dir, 5);
  assert_true(bf_fs_exists(path));
  /* Without a checkpoint reader the log cannot be replayed any more. */
  bf_delta_snapshot_t plain;
  assert_int_not_equal(bf_delta_snapshot_load(f->dir, &plain, &err), BF_OK);
  int calls = 0;
  bf_delta_snapshot_t loaded;
  assert_int_equal(bf_delta_snapshot_load_with(f->dir, read_text_checkpoint, &calls, &loaded, &err),
                   BF_OK);
  assert_int_equal(calls, 1);
  assert_int_equal(loaded.version, 6);
  assert_int_equal(loaded.n_files, 6);
  assert_int_equal(bf_delta_snapshot_txn_version(&loaded, "odd"), 9);
  assert_int_equal(bf_delta_snapshot_txn_version(&loaded, "even"), 4);
  assert_int_equal(loaded.n_partition_columns, 2);
  bf_delta_snapshot_reset(&loaded);
  bf_delta_snapshot_reset(&snap);
}

/* Thousands of adds and removes through the path index: the live set is exact. */
static void test_many_adds_and_removes(void **state) {
  (void)state;
  bf_delta_snapshot_t s = {0};
  s.version = -1;
  bf_buffer_t text;
  bf_buffer_init(&text);
  const char *meta = "{\"metaData\":{\"schemaString\":\"{}\",\"partitionColumns\":[]}}\n";
  bf_buffer_append(&text, meta, strlen(meta));
  char line[160];
  for (int i = 0; i < 3000; i++) {
    int n = snprintf(line, sizeof line, "{\"add\":{\"path\":\"f%d.parquet\",\"size\":%d}}\n", i, i);
    bf_buffer_append(&text, line, (size_t)n);
  }
  for (int i = 0; i < 3000; i += 2) { /* remove the even ones */
    int n = snprintf(line, sizeof line, "{\"remove\":{\"path\":\"f%d.parquet\"}}\n", i);
    bf_buffer_append(&text, line, (size_t)n);
  }
  for (int i = 1; i < 100; i += 2) { /* re-adding a live path replaces it */
    int n = snprintf(line, sizeof line, "{\"add\":{\"path\":\"f%d.parquet\",\"size\":7}}\n", i);
    bf_buffer_append(&text, line, (size_t)n);
  }
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf__delta_apply_commit(&s, (const char *)text.data, text.size, "t", &err), BF_OK);
  assert_int_equal(s.n_files, 1500);
  char seen[3000] = {0};
  for (size_t i = 0; i < s.n_files; i++) {
    int k = atoi(s.files[i].path + 1);
    assert_true(k % 2 == 1);
    assert_false(seen[k]);
    seen[k] = 1;
    assert_int_equal(s.files[i].size_bytes, k < 100 ? 7 : k);
  }
  assert_int_equal(s.n_tombstones, 1500);
  bf_buffer_reset(&text);
  bf_delta_snapshot_reset(&s);
}

static void test_path_encoding_round_trip(void **state) {
  (void)state;
  const char *raw = "k=a b/%x/é.parquet";
  char *encoded = bf__delta_path_encode(raw);
  assert_string_equal(encoded, "k=a%20b/%25x/%C3%A9.parquet");
  char *decoded = bf__delta_path_decode(encoded);
  assert_string_equal(decoded, raw);
  free(encoded);
  free(decoded);
  assert_null(bf__delta_path_decode("bad%2"));
}

static int check(int rewrite, const char *protocol, const char *metadata, bf_error_t *err) {
  bf_delta_snapshot_t s = {.version = 3};
  s.protocol_json = (char *)protocol;
  s.metadata_json = (char *)metadata;
  bf_error_init(err);
  return rewrite ? bf_delta_snapshot_check_rewrite(&s, err) : bf_delta_snapshot_check_append(&s, err);
}

static void test_table_features_we_may_write(void **state) {
  (void)state;
  bf_error_t err;
  const char *plain_meta = "{\"schemaString\":\"{}\",\"configuration\":{}}";
  const char *v12 = "{\"minReaderVersion\":1,\"minWriterVersion\":2}";
  const char *dv = "{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":"
                   "[\"deletionVectors\"],\"writerFeatures\":[\"deletionVectors\",\"appendOnly\"]}";
  const char *rows = "{\"minReaderVersion\":1,\"minWriterVersion\":7,\"writerFeatures\":"
                     "[\"rowTracking\",\"domainMetadata\"]}";
  assert_int_equal(check(0, v12, plain_meta, &err), BF_OK);
  assert_int_equal(check(1, v12, plain_meta, &err), BF_OK);
  /* Deletion vectors: appends yes, rewrites no. */
  assert_int_equal(check(0, dv, plain_meta, &err), BF_OK);
  assert_int_equal(check(1, dv, plain_meta, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "refusing to compact"));
  assert_int_equal(check(0, rows, plain_meta, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "rowTracking"));
  /* Implicit features below writer version 7, read from the metaData. */
  assert_int_equal(check(0, "{\"minReaderVersion\":2,\"minWriterVersion\":5}",
                         "{\"schemaString\":\"{}\",\"configuration\":{\"delta.columnMapping.mode\":\"id\"}}",
                         &err),
                   BF_EINVAL);
  assert_non_null(strstr(err.message, "column mapping (mode id)"));
  assert_int_equal(check(0, "{\"minReaderVersion\":1,\"minWriterVersion\":3}",
                         "{\"schemaString\":\"{}\",\"configuration\":{\"delta.constraints.pos\":\"x > 0\"}}",
                         &err),
                   BF_EINVAL);
  assert_int_equal(check(0, "{\"minReaderVersion\":1,\"minWriterVersion\":4}",
                         "{\"schemaString\":\"{\\\"metadata\\\":{\\\"delta.generationExpression\\\":1}}\","
                         "\"configuration\":{}}",
                         &err),
                   BF_EINVAL);
  assert_non_null(strstr(err.message, "generated column"));
  assert_int_equal(check(0, "{\"minReaderVersion\":1,\"minWriterVersion\":8}", plain_meta, &err),
                   BF_EINVAL);
  assert_int_equal(check(0, NULL, plain_meta, &err), BF_EINVAL);
}

/* A snapshot with partition columns d, m, as a checkpoint reader starts one. */
static void snapshot_with_metadata(bf_delta_snapshot_t *s) {
  static const char meta[] =
      "{\"metaData\":{\"id\":\"t\",\"format\":{\"provider\":\"parquet\",\"options\":{}},"
      "\"schemaString\":\"{}\",\"partitionColumns\":[\"d\",\"m\"],\"configuration\":{},"
      "\"createdTime\":1}}\n";
  bf_error_t err;
  bf_error_init(&err);
  memset(s, 0, sizeof *s);
  s->version = -1;
  assert_int_equal(bf_delta_snapshot_apply_json(s, meta, strlen(meta), "meta", &err), BF_OK);
}

/* numRecords is read from the top level of an add's stats only, whatever the
 * nested values and strings hold; anything but an integer there counts 0. */
static void test_num_records_from_stats(void **state) {
  (void)state;
  struct { const char *stats; int64_t want; } cases[] = {
      {"{\"numRecords\":7,\"minValues\":{\"a\":1}}", 7},
      {"{\"minValues\":{\"numRecords\":99,\"s\":\"a\\\"}b\"},\"numRecords\":5}", 5},
      {"{\"nullCount\":{\"x\":[1,{\"numRecords\":3}]},\"maxValues\":{}}", 0},
      {" { \"numRecords\" : 12 } ", 12},
      {"{\"numRecords\":-3}", -3},
      {"{\"numRecords\":1.5}", 0},
      {"{\"numRecords\":\"8\"}", 0},
      {"{\"numRecords\":99999999999999999999}", 0},
      {"{\"a\":\"numRecords\",\"numRecords\":4}", 4},
      {"not json", 0},
      {"", 0},
      {"{\"minValues\":{\"s\":\"unterminated}", 0},
  };
  bf_delta_snapshot_t s;
  snapshot_with_metadata(&s);
  bf_error_t err;
  bf_error_init(&err);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path[32];
    snprintf(path, sizeof path, "f%zu.parquet", i);
    bf_delta_add_action_t add = {.path = path, .stats_json = cases[i].stats};
    assert_int_equal(bf_delta_snapshot_apply_add(&s, &add, &err), BF_OK);
    assert_int_equal(s.files[s.n_files - 1].num_records, cases[i].want);
    assert_string_equal(s.files[s.n_files - 1].stats_json, cases[i].stats);
  }
  bf_delta_snapshot_reset(&s);
}

/* An add from typed checkpoint columns: partition values by key (extra keys
 * ignored, missing or empty ones null, the string "NULL" kept), the path decoded,
 * the CRC tag kept only when it has 8 digits, a re-added path replaced. */
static void test_apply_add_from_typed_columns(void **state) {
  (void)state;
  bf_delta_snapshot_t s;
  snapshot_with_metadata(&s);
  bf_error_t err;
  bf_error_init(&err);
  const char *keys[] = {"extra", "m", "d"}, *values[] = {"x", "NULL", "2025-01-01"};
  bf_delta_add_action_t add = {.path = "d=2025-01-01/m=NULL/a%20b.parquet", .partition_keys = keys,
                               .partition_values = values, .n_partition_entries = 3,
                               .size_bytes = 10, .modification_time_ms = 20, .crc32c = "0badf00d"};
  assert_int_equal(bf_delta_snapshot_apply_add(&s, &add, &err), BF_OK);
  const bf_delta_file_t *f = &s.files[0];
  assert_string_equal(f->path, "d=2025-01-01/m=NULL/a b.parquet");
  assert_int_equal(f->n_partition_values, 2);
  assert_string_equal(f->partition_values[0], "2025-01-01");
  assert_string_equal(f->partition_values[1], "NULL");
  assert_int_equal(f->size_bytes, 10);
  assert_int_equal(f->modification_time_ms, 20);
  assert_string_equal(f->crc32c, "0badf00d");
  assert_null(f->stats_json);
  const char *nulls[] = {NULL, ""}, *null_keys[] = {"m", "d"};
  bf_delta_add_action_t other = {.path = "other.parquet", .partition_keys = null_keys,
                                 .partition_values = nulls, .n_partition_entries = 2,
                                 .crc32c = "short"};
  assert_int_equal(bf_delta_snapshot_apply_add(&s, &other, &err), BF_OK);
  assert_null(s.files[1].partition_values[0]);
  assert_null(s.files[1].partition_values[1]);
  assert_string_equal(s.files[1].crc32c, "");
  bf_delta_add_action_t bare = {.path = "other.parquet", .size_bytes = 99};
  assert_int_equal(bf_delta_snapshot_apply_add(&s, &bare, &err), BF_OK);
  assert_int_equal(s.n_files, 2);
  assert_int_equal(s.files[1].size_bytes, 99);
  bf_delta_add_action_t broken = {.path = "bad%zz.parquet"};
  assert_int_equal(bf_delta_snapshot_apply_add(&s, &broken, &err), BF_ECORRUPT);
  bf_delta_add_action_t no_path = {.path = NULL};
  assert_int_equal(bf_delta_snapshot_apply_add(&s, &no_path, &err), BF_ECORRUPT);
  assert_int_equal(s.n_files, 2);
  bf_delta_snapshot_reset(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_append_and_replay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lost_race_retries_and_detects_duplicates, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gap_and_corrupt_line_are_detected, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_found_by_txn_id, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compaction_commit_and_conflict, setup, teardown),
      cmocka_unit_test_setup_teardown(test_checkpoint_replay_and_log_cleanup, setup, teardown),
      cmocka_unit_test(test_many_adds_and_removes),
      cmocka_unit_test(test_path_encoding_round_trip),
      cmocka_unit_test(test_table_features_we_may_write),
      cmocka_unit_test(test_num_records_from_stats),
      cmocka_unit_test(test_apply_add_from_typed_columns),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
