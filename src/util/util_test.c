/* Unit tests for src/util: error formatting, buffers, UUIDs and atomic file writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bifrost/error.h"
#include "bifrost/util.h"

static void test_error_set_and_prefix(void **state) {
  (void)state;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_error_set(&err, BF_EINVAL, "field '%s' bad", "x"), BF_EINVAL);
  bf_error_prefix(&err, "table %s", "a.b.c");
  assert_string_equal(err.message, "table a.b.c: field 'x' bad");
  assert_string_equal(bf_status_name(BF_EMISMATCH), "BF_EMISMATCH");
  assert_string_equal(bf_status_name(12345), "BF_UNKNOWN");
  assert_int_equal(bf_error_set(NULL, BF_EIO, "ignored"), BF_EIO);
}

static void test_buffer_growth_and_padding(void **state) {
  (void)state;
  bf_buffer_t buf;
  bf_buffer_init(&buf);
  for (int i = 0; i < 1000; i++) assert_int_equal(bf_buffer_append(&buf, "abc", 3), BF_OK);
  assert_int_equal(buf.size, 3000);
  assert_int_equal(bf_buffer_pad(&buf, 64), BF_OK);
  assert_int_equal(buf.size % 64, 0);
  assert_memory_equal(buf.data + 2997, "abc", 3);
  uint8_t *taken;
  size_t taken_size;
  bf_buffer_take(&buf, &taken, &taken_size);
  assert_null(buf.data);
  assert_int_equal(taken_size, 3008);
  free(taken);
}

static void test_uuid7_layout(void **state) {
  (void)state;
  char a[37], b[37];
  bf_uuid7_string(0x0123456789ab, a);
  bf_uuid7_string(0x0123456789ab, b);
  assert_int_equal(strlen(a), 36);
  assert_memory_equal(a, "01234567-89ab-7", 15); /* timestamp then version 7 */
  assert_true(strchr("89ab", a[19]) != NULL);    /* RFC 9562 variant */
  assert_string_not_equal(a, b);
}

static int64_t ns_between(struct timespec a, struct timespec b) {
  return ((int64_t)b.tv_sec - (int64_t)a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
}

static void test_time_after_carries_nanoseconds_into_seconds(void **state) {
  (void)state;
  const double spans[] = {0.0, 0.1, 0.5, 0.999999999, 1.25, 3.0, 59.9};
  for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) {
    struct timespec before;
    clock_gettime(CLOCK_MONOTONIC, &before);
    struct timespec t = bf_time_after(CLOCK_MONOTONIC, spans[i]);
    struct timespec after;
    clock_gettime(CLOCK_MONOTONIC, &after);
    assert_true(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
    int64_t from_before = ns_between(before, t), from_after = ns_between(after, t);
    assert_true(from_before >= (int64_t)(spans[i] * 1e9) - 1);
    assert_true(from_after <= (int64_t)(spans[i] * 1e9) + 1);
  }
  /* negative and NaN spans are now; huge ones stay representable */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct timespec t = bf_time_after(CLOCK_REALTIME, -5);
  assert_true(ns_between(now, t) >= 0 && ns_between(now, t) < 1000000000LL);
  t = bf_time_after(CLOCK_REALTIME, NAN);
  assert_true(ns_between(now, t) >= 0 && ns_between(now, t) < 1000000000LL);
  t = bf_time_after(CLOCK_REALTIME, 1e300);
  assert_true(t.tv_sec > now.tv_sec && t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
}

static void test_write_new_file_is_create_if_absent(void **state) {
  (void)state;
  char dir[] = "/tmp/bf_util_test_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/sub/dir/00000000000000000000.json", dir);
  char parent[256];
  snprintf(parent, sizeof parent, "%s/sub/dir", dir);
  assert_int_equal(bf_fs_mkdirs(parent, NULL), BF_OK);
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_fs_write_new_file(path, "first", 5, &err), BF_OK);
  assert_int_equal(bf_fs_write_new_file(path, "second", 6, &err), BF_EEXIST);
  char *content;
  size_t size;
  assert_int_equal(bf_fs_read_file(path, &content, &size, &err), BF_OK);
  assert_string_equal(content, "first"); /* the loser never overwrites */
  free(content);
  assert_int_equal(bf_fs_write_replace_file(path, "third", 5, &err), BF_OK);
  assert_int_equal(bf_fs_read_file(path, &content, &size, &err), BF_OK);
  assert_string_equal(content, "third");
  free(content);
  char missing[300];
  snprintf(missing, sizeof missing, "%s/nope", dir);
  assert_int_equal(bf_fs_read_file(missing, &content, &size, &err), BF_ENOTFOUND);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static int freed_count;
static void count_free(void *data) {
  freed_count++;
  free(data);
}

/* Shared memory is freed exactly once, with the last reference, whichever holder
 * lets go last; NULL is accepted everywhere. */
static void test_shared_memory_freed_with_the_last_reference(void **state) {
  (void)state;
  freed_count = 0;
  char *data = malloc(16);
  assert_non_null(data);
  bf_shared_t *shared = bf_shared_new(data, 16, count_free);
  assert_non_null(shared);
  assert_ptr_equal(bf_shared_data(shared), data);
  assert_int_equal(bf_shared_size(shared), 16);
  bf_shared_ref(shared);
  bf_shared_ref(shared);
  bf_shared_unref(shared);
  bf_shared_unref(shared);
  assert_int_equal(freed_count, 0);
  bf_shared_unref(shared);
  assert_int_equal(freed_count, 1);
  static char fixed[4];
  bf_shared_t *borrowed = bf_shared_new(fixed, sizeof fixed, NULL); /* nothing to free */
  bf_shared_unref(borrowed);
  bf_shared_ref(NULL);
  bf_shared_unref(NULL);
  assert_null(bf_shared_data(NULL));
  assert_int_equal(bf_shared_size(NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_set_and_prefix),
      cmocka_unit_test(test_buffer_growth_and_padding),
      cmocka_unit_test(test_shared_memory_freed_with_the_last_reference),
      cmocka_unit_test(test_uuid7_layout),
      cmocka_unit_test(test_time_after_carries_nanoseconds_into_seconds),
      cmocka_unit_test(test_write_new_file_is_create_if_absent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
