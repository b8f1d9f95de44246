/* The local side of the storage interface: create-if-absent, replace, stat,
 * delete, sorted listings (start_after, sub-directories, symlinks never listed),
 * rename, and the S3 scheme test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/storage.h"

static char dir[64];

static int setup(void **state) {
  (void)state;
  strcpy(dir, "/tmp/bf_storage_test_XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static void test_write_new_read_replace_stat_delete(void **state) {
  (void)state;
  bf_error_t err;
  bf_error_init(&err);
  char p[128];
  path_of(p, sizeof p, "a/b/c.json");
  char parent[128];
  path_of(parent, sizeof parent, "a/b");
  assert_int_equal(bf_storage_mkdirs(parent, &err), BF_OK);
  assert_int_equal(bf_storage_write_new(p, "one", 3, &err), BF_OK);
  assert_int_equal(bf_storage_write_new(p, "two", 3, &err), BF_EEXIST);
  char *text = NULL;
  size_t size = 0;
  assert_int_equal(bf_storage_read(p, &text, &size, &err), BF_OK);
  assert_int_equal(size, 3);
  assert_string_equal(text, "one"); /* the loser did not overwrite */
  free(text);
  assert_int_equal(bf_storage_write_replace(p, "", 0, &err), BF_OK);
  int64_t bytes = -1, mtime = -1;
  assert_int_equal(bf_storage_stat(p, &bytes, &mtime, &err), BF_OK);
  assert_int_equal(bytes, 0);
  assert_true(mtime > 1700000000);
  assert_int_equal(bf_storage_delete(p, &err), BF_OK);
  assert_int_equal(bf_storage_delete(p, &err), BF_OK); /* absent is fine */
  assert_int_equal(bf_storage_stat(p, NULL, NULL, &err), BF_ENOTFOUND);
  assert_int_equal(bf_storage_read(p, &text, &size, &err), BF_ENOTFOUND);
}

static void test_list_is_sorted_skips_links_and_starts_after(void **state) {
  (void)state;
  bf_error_t err;
  bf_error_init(&err);
  const char *names[] = {"0002.json", "0001.json", "0003.checkpoint.parquet", "0003.json"};
  for (size_t i = 0; i < 4; i++) {
    char p[128];
    path_of(p, sizeof p, names[i]);
    assert_int_equal(bf_storage_write_new(p, "x", 1, &err), BF_OK);
  }
  char sub[128], link_path[128];
  path_of(sub, sizeof sub, "part=a");
  assert_int_equal(bf_storage_mkdirs(sub, &err), BF_OK);
  path_of(link_path, sizeof link_path, "planted");
  assert_int_equal(symlink("/etc", link_path), 0);
  bf_storage_list_t list;
  assert_int_equal(bf_storage_list(dir, NULL, &list, &err), BF_OK);
  assert_int_equal(list.len, 5);
  const char *want[] = {"0001.json", "0002.json", "0003.checkpoint.parquet", "0003.json", "part=a"};
  for (size_t i = 0; i < 5; i++) assert_string_equal(list.items[i].name, want[i]);
  assert_false(list.items[0].is_dir);
  assert_int_equal(list.items[0].size, 1);
  assert_true(list.items[0].mtime_ms >= list.items[0].mtime_s * 1000);
  assert_true(list.items[4].is_dir);
  bf_storage_list_free(&list);
  assert_int_equal(bf_storage_list(dir, "0002.json", &list, &err), BF_OK);
  assert_int_equal(list.len, 3);
  assert_string_equal(list.items[0].name, "0003.checkpoint.parquet");
  bf_storage_list_free(&list);
  char missing[128];
  path_of(missing, sizeof missing, "nope");
  assert_int_equal(bf_storage_list(missing, NULL, &list, &err), BF_OK);
  assert_int_equal(list.len, 0);
  bf_storage_list_free(&list);
}

static void test_rename_and_scheme(void **state) {
  (void)state;
  bf_error_t err;
  bf_error_init(&err);
  char from[128], to[128];
  path_of(from, sizeof from, "f");
  path_of(to, sizeof to, "g");
  assert_int_equal(bf_storage_write_new(from, "x", 1, &err), BF_OK);
  assert_int_equal(bf_storage_rename(from, to, &err), BF_OK);
  assert_int_equal(bf_storage_stat(from, NULL, NULL, &err), BF_ENOTFOUND);
  assert_int_equal(bf_storage_stat(to, NULL, NULL, &err), BF_OK);
  assert_int_equal(bf_storage_rename(to, "s3://bucket/g", &err), BF_EINVAL);
  assert_true(bf_storage_is_s3("s3://bucket/x"));
  assert_false(bf_storage_is_s3("/s3://x"));
  assert_false(bf_storage_is_s3(NULL));
  assert_int_equal(bf_storage_mkdirs("s3://bucket/any/dir", &err), BF_OK); /* nothing to do */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_write_new_read_replace_stat_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_is_sorted_skips_links_and_starts_after, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rename_and_scheme, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
