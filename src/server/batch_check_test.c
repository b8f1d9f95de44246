/* Unit tests for bf_batch_reorder_by_name (batch_check.c): columns put into the
 * table's order by name at every struct level (list items included), the arrays'
 * children moved with their schema, and refusals naming the column; and the
 * decoded size of a dictionary column that the size bound uses (arrow_size.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "server/batch_check.h"

/* A node spec: "name:format" for leaves; "+s" nodes list their children. */
typedef struct spec {
  const char *name;
  const char *format;
  const struct spec *children;
  int n_children;
} spec_t;

static void build_schema(const spec_t *sp, struct ArrowSchema *out) {
  assert_int_equal(bf_arrow_schema_init(out, sp->format, sp->name, 0, sp->n_children), BF_OK);
  for (int i = 0; i < sp->n_children; i++) build_schema(&sp->children[i], out->children[i]);
}

/* Leaves are one-row int64 arrays holding a marker; nested nodes have no buffers
 * the test reads. */
static void build_array(const spec_t *sp, struct ArrowArray *out, int64_t *marker) {
  assert_int_equal(bf_arrow_array_init(out, sp->n_children ? 1 : 2, sp->n_children), BF_OK);
  out->length = 1;
  if (sp->n_children == 0) {
    int64_t *value = malloc(sizeof *value);
    *value = (*marker)++;
    bf_arrow_array_set_buffer(out, 1, value);
  }
  for (int i = 0; i < sp->n_children; i++) build_array(&sp->children[i], out->children[i], marker);
}

static int64_t leaf(const struct ArrowArray *a) { return ((const int64_t *)a->buffers[1])[0]; }

static const spec_t XY[] = {{"x", "l", NULL, 0}, {"y", "l", NULL, 0}};
static const spec_t YX[] = {{"y", "l", NULL, 0}, {"x", "l", NULL, 0}};
static const spec_t ITEM_XY[] = {{"item", "+s", XY, 2}};
static const spec_t ITEM_YX[] = {{"item", "+s", YX, 2}};

static const spec_t WANT[] = {{"a", "l", NULL, 0},
                              {"b", "l", NULL, 0},
                              {"s", "+s", XY, 2},
                              {"l", "+l", ITEM_XY, 1}};
static const spec_t WANT_ROOT = {"", "+s", WANT, 4};

static int reorder(const spec_t *got_root, struct ArrowSchema *got, struct ArrowArray *batch,
                   bf_error_t *err) {
  struct ArrowSchema want;
  build_schema(&WANT_ROOT, &want);
  build_schema(got_root, got);
  int64_t marker = 0;
  build_array(got_root, batch, &marker);
  bf_error_init(err);
  int status = bf_batch_reorder_by_name(&want, got, batch, 1, err);
  bf_arrow_schema_release(&want);
  return status;
}

static void *copy_of(const void *bytes, size_t n) {
  void *p = malloc(n);
  assert_non_null(p);
  memcpy(p, bytes, n);
  return p;
}

/* A dictionary column counts each row's value in full (what it becomes once
 * decoded), nulls count nothing, and a slice counts only its own rows: the same
 * figure whether the dictionary is shorter than the slice (each entry's size
 * worked out once) or longer (per row). */
static void test_dictionary_column_size_counts_each_rows_value(void **state) {
  (void)state;
  struct ArrowSchema schema;
  assert_int_equal(bf_arrow_schema_init(&schema, "c", "tag", ARROW_FLAG_NULLABLE, 0), BF_OK);
  assert_int_equal(bf_arrow_schema_set_dictionary(&schema, "u"), BF_OK);
  struct ArrowArray column;
  assert_int_equal(bf_arrow_array_init(&column, 2, 0), BF_OK);
  const int8_t indices[] = {2, 2, 1, 0, 2, 0};
  const uint8_t validity = 0x1f; /* the last row is null */
  column.length = 6;
  column.null_count = 1;
  bf_arrow_array_set_buffer(&column, 0, copy_of(&validity, 1));
  bf_arrow_array_set_buffer(&column, 1, copy_of(indices, sizeof indices));
  struct ArrowArray *dict = bf_arrow_array_alloc_dictionary(&column);
  assert_non_null(dict);
  assert_int_equal(bf_arrow_array_init(dict, 3, 0), BF_OK);
  const int32_t offsets[] = {0, 0, 4, 14}; /* "", "abcd", "xxxxxxxxxx" */
  dict->length = 3;
  bf_arrow_array_set_buffer(dict, 1, copy_of(offsets, sizeof offsets));
  bf_arrow_array_set_buffer(dict, 2, copy_of("abcdxxxxxxxxxx", 14));
  /* one value of the dictionary decodes to two offsets and its bytes:
   * "" 8, "abcd" 12, "xxxxxxxxxx" 18 */
  /* 1 validity byte + 6 one-byte indices + 18 + 18 + 12 + 8 + 18 */
  assert_int_equal(bf_arrow_decoded_size(&schema, &column), 81);
  column.offset = 1; /* rows 2, 1: a slice shorter than the dictionary */
  column.length = 2;
  column.null_count = 0;
  assert_int_equal(bf_arrow_decoded_size(&schema, &column), 2 + 18 + 12);
  column.offset = 2; /* rows 1, 0, 2 */
  column.length = 3;
  assert_int_equal(bf_arrow_decoded_size(&schema, &column), 3 + 12 + 8 + 18);
  column.offset = 0;
  bf_arrow_array_release(&column);
  bf_arrow_schema_release(&schema);
}

static void test_columns_follow_the_table_at_every_level(void **state) {
  (void)state;
  /* alphabetical, as the scouter client sends: a, b, l (item y, x), s (y, x) */
  static const spec_t got_fields[] = {{"l", "+l", ITEM_YX, 1},
                                      {"s", "+s", YX, 2},
                                      {"b", "l", NULL, 0},
                                      {"a", "l", NULL, 0}};
  static const spec_t got_root = {"", "+s", got_fields, 4};
  struct ArrowSchema got;
  struct ArrowArray batch;
  bf_error_t err;
  assert_int_equal(reorder(&got_root, &got, &batch, &err), BF_OK);
  const char *names[] = {"a", "b", "s", "l"};
  for (int i = 0; i < 4; i++) assert_string_equal(got.children[i]->name, names[i]);
  /* markers were given in the sent order: l.item.y=0, l.item.x=1, s.y=2, s.x=3, b=4, a=5 */
  assert_int_equal(leaf(batch.children[0]), 5);
  assert_int_equal(leaf(batch.children[1]), 4);
  assert_string_equal(got.children[2]->children[0]->name, "x");
  assert_int_equal(leaf(batch.children[2]->children[0]), 3);
  assert_int_equal(leaf(batch.children[2]->children[1]), 2);
  assert_string_equal(got.children[3]->children[0]->children[0]->name, "x");
  assert_int_equal(leaf(batch.children[3]->children[0]->children[0]), 1);
  assert_int_equal(leaf(batch.children[3]->children[0]->children[1]), 0);
  bf_arrow_schema_release(&got);
  bf_arrow_array_release(&batch);
}

static void expect_refusal(const spec_t *fields, int n, const char *message) {
  spec_t root = {"", "+s", fields, n};
  struct ArrowSchema got;
  struct ArrowArray batch;
  bf_error_t err;
  assert_int_equal(reorder(&root, &got, &batch, &err), BF_EINVAL);
  if (strstr(err.message, message) == NULL) fail_msg("expected '%s' in '%s'", message, err.message);
  bf_arrow_schema_release(&got);
  bf_arrow_array_release(&batch);
}

static void test_missing_extra_and_repeated_columns_are_named(void **state) {
  (void)state;
  static const spec_t missing[] = {{"a", "l", NULL, 0}, {"s", "+s", XY, 2},
                                   {"l", "+l", ITEM_XY, 1}};
  expect_refusal(missing, 3, "column 'b' is missing from the batch");
  static const spec_t extra[] = {{"a", "l", NULL, 0}, {"b", "l", NULL, 0}, {"s", "+s", XY, 2},
                                 {"zz", "l", NULL, 0}, {"l", "+l", ITEM_XY, 1}};
  expect_refusal(extra, 5, "has column 'zz' that the table does not have");
  static const spec_t twice[] = {{"a", "l", NULL, 0}, {"a", "l", NULL, 0}, {"b", "l", NULL, 0},
                                 {"s", "+s", XY, 2}, {"l", "+l", ITEM_XY, 1}};
  expect_refusal(twice, 5, "column 'a' twice");
  static const spec_t only_y[] = {{"y", "l", NULL, 0}};
  static const spec_t nested_missing[] = {{"a", "l", NULL, 0}, {"b", "l", NULL, 0},
                                          {"s", "+s", only_y, 1}, {"l", "+l", ITEM_XY, 1}};
  expect_refusal(nested_missing, 4, "column 's.x' is missing from s");
  static const spec_t item_only_y[] = {{"item", "+s", only_y, 1}};
  static const spec_t item_missing[] = {{"a", "l", NULL, 0}, {"b", "l", NULL, 0},
                                        {"s", "+s", XY, 2}, {"l", "+l", item_only_y, 1}};
  expect_refusal(item_missing, 4, "column 'l.item.x' is missing");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_columns_follow_the_table_at_every_level),
      cmocka_unit_test(test_dictionary_column_size_counts_each_rows_value),
      cmocka_unit_test(test_missing_extra_and_repeated_columns_are_named),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
