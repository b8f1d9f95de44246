/* Unit tests for the server logger (src/server/log.c): level names, the JSON line
 * format (one valid object per line whatever the message holds: quotes, control
 * bytes, invalid UTF-8), the table and producer fields taken from the message or
 * given explicitly, and level filtering. stderr is redirected to a temp file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/log.h"

static char captured[16384];

/* Runs fn with stderr going to a temp file; its text ends up in `captured`. */
static void capture(void (*fn)(void)) {
  char path[] = "/tmp/bf_log_test_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  fn();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, captured, sizeof captured - 1);
  captured[n > 0 ? n : 0] = '\0';
  close(fd);
  unlink(path);
}

static void test_level_names(void **state) {
  (void)state;
  int level = -1;
  assert_int_equal(bf_log_level_parse("debug", &level), 0);
  assert_int_equal(level, BF_LOG_LEVEL_DEBUG);
  assert_int_equal(bf_log_level_parse("WARNING", &level), 0);
  assert_int_equal(level, BF_LOG_LEVEL_WARN);
  assert_int_equal(bf_log_level_parse("Error", &level), 0);
  assert_int_equal(level, BF_LOG_LEVEL_ERROR);
  assert_int_equal(bf_log_level_parse("", &level), -1);
  assert_int_equal(bf_log_level_parse("loud", &level), -1);
  assert_int_equal(bf_log_level_parse("info ", &level), -1);
}

static void write_awkward(void) {
  bf_log_configure(1, BF_LOG_LEVEL_INFO);
  BF_LOG_INFO("table cat.sch.tab: flushed rows=%d with \"quotes\", a \\ and\na newline\x01 \xff\xfe bad", 3);
  BF_LOG_WARN("WAL record 7 (producer 'p-1', sequence 2) cannot be applied");
  bf_log_at(BF_LOG_LEVEL_ERROR, "src/server/x.c", "a.b.c", "id with spaces", "explicit %s", "fields");
  BF_LOG_DEBUG("not written at info");
  char long_message[3000];
  memset(long_message, '"', sizeof long_message - 1);
  long_message[sizeof long_message - 1] = '\0';
  BF_LOG_INFO("%s", long_message);
}

static void test_json_lines_are_valid_objects(void **state) {
  (void)state;
  capture(write_awkward);
  char *save = NULL;
  int lines = 0;
  for (char *line = strtok_r(captured, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    json_error_t error;
    json_t *obj = json_loads(line, 0, &error);
    if (obj == NULL) fail_msg("line %d is not JSON (%s): %s", lines, error.text, line);
    const char *msg = json_string_value(json_object_get(obj, "msg"));
    assert_non_null(msg);
    assert_non_null(json_string_value(json_object_get(obj, "time")));
    if (lines == 0) {
      assert_string_equal(json_string_value(json_object_get(obj, "component")), "log_test");
      assert_string_equal(json_string_value(json_object_get(obj, "table")), "cat.sch.tab");
      assert_true(json_is_null(json_object_get(obj, "producer")));
      assert_non_null(strstr(msg, "\"quotes\", a \\ and\na newline\x01 \xef\xbf\xbd\xef\xbf\xbd bad"));
    } else if (lines == 1) {
      assert_string_equal(json_string_value(json_object_get(obj, "level")), "WARN");
      assert_string_equal(json_string_value(json_object_get(obj, "producer")), "p-1");
      assert_true(json_is_null(json_object_get(obj, "table")));
    } else if (lines == 2) {
      assert_string_equal(json_string_value(json_object_get(obj, "component")), "x");
      assert_string_equal(json_string_value(json_object_get(obj, "table")), "a.b.c");
      assert_string_equal(json_string_value(json_object_get(obj, "producer")), "id with spaces");
      assert_string_equal(msg, "explicit fields");
    } else {
      assert_true(strlen(msg) > 100); /* cut, but still one valid object */
    }
    json_decref(obj);
    lines++;
  }
  assert_int_equal(lines, 4); /* the DEBUG line was filtered */
}

static void write_text(void) {
  bf_log_configure(0, BF_LOG_LEVEL_WARN);
  BF_LOG_INFO("filtered");
  BF_LOG_ERROR("table x.y.z: verify: damaged");
}

static void test_text_lines(void **state) {
  (void)state;
  capture(write_text);
  assert_null(strstr(captured, "filtered"));
  assert_non_null(strstr(captured, "Z ERROR log_test table=x.y.z table x.y.z: verify: damaged\n"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_level_names),
      cmocka_unit_test(test_json_lines_are_valid_objects),
      cmocka_unit_test(test_text_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
