/* Unit tests for the server's table registry (src/server/registry.c): creating a
 * table writes its Delta log and its table.json entry, a restart reloads every
 * entry from the data directory, fingerprint and partition mismatches are refused
 * naming both sides, bad names never touch the disk, and two registries sharing a
 * data directory (two servers) agree on one registration even when they race. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <sys/stat.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bifrost/util.h"
#include "server/registry.h"

static const char EVENT_V1[] =
    "{\"properties\":{\"user_id\":{\"title\":\"User Id\",\"type\":\"string\"},"
    "\"value\":{\"title\":\"Value\",\"type\":\"number\"},"
    "\"region\":{\"title\":\"Region\",\"type\":\"string\"}},"
    "\"required\":[\"user_id\",\"value\",\"region\"],\"title\":\"Event\",\"type\":\"object\"}";

/* V1 plus an optional field: a different fingerprint. */
static const char EVENT_V2[] =
    "{\"properties\":{\"user_id\":{\"title\":\"User Id\",\"type\":\"string\"},"
    "\"value\":{\"title\":\"Value\",\"type\":\"number\"},"
    "\"region\":{\"title\":\"Region\",\"type\":\"string\"},"
    "\"note\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}],\"default\":null}},"
    "\"required\":[\"user_id\",\"value\",\"region\"],\"title\":\"Event\",\"type\":\"object\"}";

static const char *const REGION[] = {"region"};

typedef struct fixture {
  char dir[64];
} fixture_t;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL) return -1;
  strcpy(f->dir, "/tmp/bf_registry_test_XXXXXX");
  if (mkdtemp(f->dir) == NULL) {
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static void fingerprint_of(const char *json_schema, char out[33]) {
  bf_schema_t schema;
  assert_int_equal(bf_schema_from_json_schema(json_schema, strlen(json_schema), &schema, NULL),
                   BF_OK);
  assert_int_equal(bf_schema_fingerprint(&schema, out, NULL), BF_OK);
  bf_schema_reset(&schema);
}

static int path_exists(const fixture_t *f, const char *relative) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", f->dir, relative);
  return bf_fs_exists(path);
}

static void test_register_creates_delta_table_and_entry(void **state) {
  fixture_t *f = *state;
  bf_registry_t r;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_registry_open(&r, f->dir, &err), BF_OK);
  assert_int_equal(r.n_tables, 0);

  bf_table_t *t = NULL;
  int created = -1;
  assert_int_equal(bf_registry_register(&r, "production", "ml", "events", EVENT_V1, REGION, 1, NULL,
                                        &t, &created, &err),
                   BF_OK);
  assert_int_equal(created, 1);
  assert_non_null(t);
  char expected[33];
  fingerprint_of(EVENT_V1, expected);
  assert_string_equal(t->fingerprint, expected);
  assert_string_equal(t->fqn, "production.ml.events");
  assert_true(path_exists(f, "production/ml/events/_bifrost/table.json"));
  assert_true(path_exists(f, "production/ml/events/_delta_log/00000000000000000000.json"));

  /* The entry is plain JSON holding everything needed to rebuild the table. */
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/production/ml/events/_bifrost/table.json", f->dir);
  json_t *entry = json_load_file(path, 0, NULL);
  assert_non_null(entry);
  assert_string_equal(json_string_value(json_object_get(entry, "catalog")), "production");
  assert_string_equal(json_string_value(json_object_get(entry, "schema_name")), "ml");
  assert_string_equal(json_string_value(json_object_get(entry, "table")), "events");
  assert_string_equal(json_string_value(json_object_get(entry, "json_schema")), EVENT_V1);
  assert_string_equal(json_string_value(json_object_get(entry, "fingerprint")), expected);
  json_t *parts = json_object_get(entry, "partition_columns");
  assert_int_equal(json_array_size(parts), 1);
  assert_string_equal(json_string_value(json_array_get(parts, 0)), "region");
  assert_true(json_integer_value(json_object_get(entry, "created_at_ms")) > 0);
  json_decref(entry);

  /* Same schema again: the same entry, not a new table. */
  bf_table_t *again = NULL;
  assert_int_equal(bf_registry_register(&r, "production", "ml", "events", EVENT_V1, REGION, 1,
                                        expected, &again, &created, &err),
                   BF_OK);
  assert_int_equal(created, 0);
  assert_ptr_equal(again, t);
  assert_int_equal(r.n_tables, 1);
  assert_ptr_equal(bf_registry_find(&r, "production", "ml", "events"), t);
  assert_null(bf_registry_find(&r, "production", "ml", "other"));

  /* The snapshot comes from the log just written. */
  pthread_mutex_lock(&t->mu);
  assert_int_equal(bf_table_ensure_snapshot(t, &err), BF_OK);
  assert_int_equal(t->snapshot.version, 0);
  assert_int_equal(t->snapshot.n_files, 0);
  pthread_mutex_unlock(&t->mu);
  bf_registry_close(&r);
}

static void test_reopen_loads_every_table(void **state) {
  fixture_t *f = *state;
  bf_registry_t r;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_registry_open(&r, f->dir, &err), BF_OK);
  bf_table_t *a, *b;
  int created;
  assert_int_equal(
      bf_registry_register(&r, "c1", "s1", "t1", EVENT_V1, REGION, 1, NULL, &a, &created, &err),
      BF_OK);
  assert_int_equal(
      bf_registry_register(&r, "c1", "s2", "t2", EVENT_V2, NULL, 0, NULL, &b, &created, &err),
      BF_OK);
  char fp_a[33], fp_b[33];
  strcpy(fp_a, a->fingerprint);
  strcpy(fp_b, b->fingerprint);
  int64_t created_a = a->created_at_ms;
  bf_registry_close(&r);

  assert_int_equal(bf_registry_open(&r, f->dir, &err), BF_OK);
  assert_int_equal(r.n_tables, 2);
  bf_table_t *t1 = bf_registry_find(&r, "c1", "s1", "t1");
  bf_table_t *t2 = bf_registry_find(&r, "c1", "s2", "t2");
  assert_non_null(t1);
  assert_non_null(t2);
  assert_string_equal(t1->fingerprint, fp_a);
  assert_string_equal(t2->fingerprint, fp_b);
  assert_int_equal(t1->created_at_ms, created_a);
  assert_string_equal(t1->json_schema, EVENT_V1);
  assert_int_equal(t1->n_partition_columns, 1);
  assert_string_equal(t1->partition_columns[0], "region");
  assert_int_equal(t2->n_partition_columns, 0);
  assert_int_equal(t1->schema.n_user_fields, 3);
  char dir[PATH_MAX + 16];
  snprintf(dir, sizeof dir, "%s/c1/s1/t1", r.data_dir);
  assert_string_equal(t1->dir, dir);

  /* Re-registering after the restart is "already exists", not a second table. */
  bf_table_t *t;
  assert_int_equal(
      bf_registry_register(&r, "c1", "s1", "t1", EVENT_V1, REGION, 1, NULL, &t, &created, &err),
      BF_OK);
  assert_int_equal(created, 0);
  assert_ptr_equal(t, t1);
  assert_int_equal(r.n_tables, 2);
  bf_registry_close(&r);
}

static void test_mismatch_names_both_fingerprints(void **state) {
  fixture_t *f = *state;
  bf_registry_t r;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_registry_open(&r, f->dir, &err), BF_OK);
  bf_table_t *t = NULL;
  int created = -1;
  assert_int_equal(bf_registry_register(&r, "production", "ml", "x", EVENT_V1, REGION, 1, NULL, &t,
                                        &created, &err),
                   BF_OK);
  char fp1[33], fp2[33];
  fingerprint_of(EVENT_V1, fp1);
  fingerprint_of(EVENT_V2, fp2);
  assert_string_not_equal(fp1, fp2);

  bf_table_t *out = NULL;
  created = -1;
  assert_int_equal(bf_registry_register(&r, "production", "ml", "x", EVENT_V2, REGION, 1, NULL,
                                        &out, &created, &err),
                   BF_EMISMATCH);
  assert_null(out);
  assert_int_equal(created, -1);
  assert_non_null(strstr(err.message, "production.ml.x"));
  assert_non_null(strstr(err.message, fp1));
  assert_non_null(strstr(err.message, fp2));

  /* Same schema, different partitioning: also refused, naming both lists. */
  bf_error_init(&err);
  assert_int_equal(
      bf_registry_register(&r, "production", "ml", "x", EVENT_V1, NULL, 0, NULL, &out, &created, &err),
      BF_EMISMATCH);
  assert_non_null(strstr(err.message, "[region]"));
  assert_non_null(strstr(err.message, "[]"));
  bf_registry_close(&r);

  /* The refusal survives a restart: it comes from the persisted entry. */
  assert_int_equal(bf_registry_open(&r, f->dir, &err), BF_OK);
  bf_error_init(&err);
  assert_int_equal(bf_registry_register(&r, "production", "ml", "x", EVENT_V2, REGION, 1, NULL,
                                        &out, &created, &err),
                   BF_EMISMATCH);
  assert_non_null(strstr(err.message, fp1));
  assert_non_null(strstr(err.message, fp2));
  bf_registry_close(&r);
}

static void test_bad_requests_touch_nothing(void **state) {
  fixture_t *f = *state;
  bf_registry_t r;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_registry_open(&r, f->dir, &err), BF_OK);
  bf_table_t *t = NULL;
  int created = -1;

  /* Client fingerprint that disagrees with the server's computation. */
  assert_int_equal(bf_registry_register(&r, "a", "b", "c", EVENT_V1, NULL, 0,
                                        "00000000000000000000000000000000", &t, &created, &err),
                   BF_EINVAL);
  assert_non_null(strstr(err.message, "00000000000000000000000000000000"));
  assert_false(path_exists(f, "a"));

  /* Invalid namespace parts are named in the error; nothing is created. */
  bf_error_init(&err);
  assert_int_equal(
      bf_registry_register(&r, "a", "..", "c", EVENT_V1, NULL, 0, NULL, &t, &created, &err),
      BF_EINVAL);
  assert_non_null(strstr(err.message, "schema_name"));
  bf_error_init(&err);
  assert_int_equal(
      bf_registry_register(&r, "a", "b", "c/d", EVENT_V1, NULL, 0, NULL, &t, &created, &err),
      BF_EINVAL);
  assert_non_null(strstr(err.message, "table"));
  assert_null(bf_registry_find(&r, "..", "b", "c"));

  /* Unknown or unsuitable partition column, unparseable schema. */
  static const char *const missing[] = {"nope"};
  bf_error_init(&err);
  assert_int_equal(
      bf_registry_register(&r, "a", "b", "c", EVENT_V1, missing, 1, NULL, &t, &created, &err),
      BF_EINVAL);
  assert_non_null(strstr(err.message, "nope"));
  static const char *const floaty[] = {"value"};
  assert_int_equal(
      bf_registry_register(&r, "a", "b", "c", EVENT_V1, floaty, 1, NULL, &t, &created, &err),
      BF_EINVAL);
  assert_int_equal(
      bf_registry_register(&r, "a", "b", "c", "{not json", NULL, 0, NULL, &t, &created, &err),
      BF_EINVAL);

  assert_null(t);
  assert_int_equal(created, -1);
  assert_int_equal(r.n_tables, 0);
  assert_false(path_exists(f, "a"));
  bf_registry_close(&r);
}

static void test_corrupt_entry_is_skipped(void **state) {
  fixture_t *f = *state;
  bf_registry_t r;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_registry_open(&r, f->dir, &err), BF_OK);
  bf_table_t *t;
  int created;
  assert_int_equal(
      bf_registry_register(&r, "good", "s", "t", EVENT_V1, NULL, 0, NULL, &t, &created, &err),
      BF_OK);
  bf_registry_close(&r);

  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/bad/s/t/_bifrost", f->dir);
  assert_int_equal(bf_fs_mkdirs(path, &err), BF_OK);
  strcat(path, "/table.json");
  assert_int_equal(bf_fs_write_new_file(path, "{\"catalog\":", 11, &err), BF_OK);

  assert_int_equal(bf_registry_open(&r, f->dir, &err), BF_OK);
  assert_int_equal(r.n_tables, 1);
  assert_non_null(bf_registry_find(&r, "good", "s", "t"));
  assert_null(bf_registry_find(&r, "bad", "s", "t"));
  /* Registering over the corrupt entry fails instead of overwriting it. */
  bf_error_init(&err);
  assert_int_not_equal(
      bf_registry_register(&r, "bad", "s", "t", EVENT_V1, NULL, 0, NULL, &t, &created, &err),
      BF_OK);
  assert_non_null(strstr(err.message, "not valid JSON"));
  assert_false(path_exists(f, "bad/s/t/_delta_log"));
  bf_registry_close(&r);
}

/* Two servers sharing one data directory: each sees the other's tables. */
static void test_two_registries_share_a_data_dir(void **state) {
  fixture_t *f = *state;
  bf_registry_t r1, r2;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_registry_open(&r1, f->dir, &err), BF_OK);
  assert_int_equal(bf_registry_open(&r2, f->dir, &err), BF_OK);
  bf_table_t *t1, *t2;
  int created;
  assert_int_equal(
      bf_registry_register(&r1, "p", "m", "t", EVENT_V1, REGION, 1, NULL, &t1, &created, &err),
      BF_OK);
  assert_int_equal(created, 1);

  t2 = bf_registry_find(&r2, "p", "m", "t");
  assert_non_null(t2);
  assert_string_equal(t2->fingerprint, t1->fingerprint);
  bf_error_init(&err);
  assert_int_equal(
      bf_registry_register(&r2, "p", "m", "t", EVENT_V2, REGION, 1, NULL, &t2, &created, &err),
      BF_EMISMATCH);
  assert_non_null(strstr(err.message, t1->fingerprint));
  bf_registry_close(&r1);
  bf_registry_close(&r2);
}

extern void (*bf__registry_entry_missed)(void);

static bf_registry_t *entry_writer; /* the "other server" of the test below */
static const char *entry_writer_table, *entry_writer_schema;

static void write_entry_from_other_server(void) {
  bf__registry_entry_missed = NULL;
  bf_table_t *t;
  int created;
  assert_int_equal(bf_registry_register(entry_writer, "late", "s", entry_writer_table,
                                        entry_writer_schema, REGION, 1, NULL, &t, &created, NULL),
                   BF_OK);
  assert_int_equal(created, 1);
}

/* Another server writes the entry just after this one looked for it: this one
 * adopts that entry (same schema) or refuses naming both (different schema),
 * never fails on it or writes over it. */
static void test_entry_written_after_a_miss_is_adopted(void **state) {
  fixture_t *f = *state;
  bf_registry_t r1, r2;
  assert_int_equal(bf_registry_open(&r1, f->dir, NULL), BF_OK);
  assert_int_equal(bf_registry_open(&r2, f->dir, NULL), BF_OK);
  entry_writer = &r2;
  entry_writer_table = "same";
  entry_writer_schema = EVENT_V1;
  bf__registry_entry_missed = write_entry_from_other_server;
  bf_table_t *t1;
  int created = -1;
  bf_error_t err;
  bf_error_init(&err);
  int status =
      bf_registry_register(&r1, "late", "s", "same", EVENT_V1, REGION, 1, NULL, &t1, &created, &err);
  assert_null(bf__registry_entry_missed); /* the hook ran */
  assert_int_equal(status, BF_OK);
  assert_int_equal(created, 0);
  bf_table_t *t2 = bf_registry_find(&r2, "late", "s", "same");
  assert_non_null(t2);
  assert_string_equal(t1->fingerprint, t2->fingerprint);
  assert_true(t1->created_at_ms == t2->created_at_ms); /* r2's entry, not a second one */

  entry_writer_table = "other";
  entry_writer_schema = EVENT_V2;
  bf__registry_entry_missed = write_entry_from_other_server;
  bf_error_init(&err);
  status =
      bf_registry_register(&r1, "late", "s", "other", EVENT_V1, REGION, 1, NULL, &t1, &created, &err);
  assert_null(bf__registry_entry_missed);
  assert_int_equal(status, BF_EMISMATCH);
  assert_non_null(strstr(err.message, bf_registry_find(&r2, "late", "s", "other")->fingerprint));
  bf_registry_close(&r1);
  bf_registry_close(&r2);

  bf_registry_t r;
  assert_int_equal(bf_registry_open(&r, f->dir, NULL), BF_OK);
  assert_int_equal(r.n_tables, 2);
  bf_registry_close(&r);
}

typedef struct racer {
  bf_registry_t *registry;
  const char *table;
  const char *json_schema;
  pthread_barrier_t *start;
  int status;
  int created;
} racer_t;

static void *race_register(void *arg) {
  racer_t *racer = arg;
  bf_table_t *t;
  pthread_barrier_wait(racer->start);
  racer->status = bf_registry_register(racer->registry, "race", "s", racer->table,
                                       racer->json_schema, NULL, 0, NULL, &t, &racer->created, NULL);
  return NULL;
}

static void test_concurrent_registration_creates_once(void **state) {
  fixture_t *f = *state;
  bf_registry_t r1, r2;
  assert_int_equal(bf_registry_open(&r1, f->dir, NULL), BF_OK);
  assert_int_equal(bf_registry_open(&r2, f->dir, NULL), BF_OK);
  for (int round = 0; round < 20; round++) {
    char table[32];
    snprintf(table, sizeof table, "t%d", round);
    /* Odd rounds race two different schemas: exactly one wins, the other is refused. */
    const char *second = round % 2 ? EVENT_V2 : EVENT_V1;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    racer_t a = {&r1, table, EVENT_V1, &start, -1, -1};
    racer_t b = {&r2, table, second, &start, -1, -1};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race_register, &a);
    pthread_create(&tb, NULL, race_register, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&start);
    if (second == EVENT_V1) {
      assert_int_equal(a.status, BF_OK);
      assert_int_equal(b.status, BF_OK);
      assert_int_equal(a.created + b.created, 1);
    } else {
      assert_true((a.status == BF_OK && a.created == 1 && b.status != BF_OK) ||
                  (b.status == BF_OK && b.created == 1 && a.status != BF_OK));
    }
  }
  bf_registry_close(&r1);
  bf_registry_close(&r2);

  /* Whatever the interleaving, the data directory holds one consistent entry each. */
  bf_registry_t r;
  assert_int_equal(bf_registry_open(&r, f->dir, NULL), BF_OK);
  assert_int_equal(r.n_tables, 20);
  bf_registry_close(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_register_creates_delta_table_and_entry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_loads_every_table, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mismatch_names_both_fingerprints, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_requests_touch_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_entry_is_skipped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_registries_share_a_data_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_registration_creates_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_entry_written_after_a_miss_is_adopted, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
