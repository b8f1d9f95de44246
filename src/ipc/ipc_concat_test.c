/* Unit tests for bf_ipc_writer_write_many: several batches written as one
 * RecordBatch read back as the rows of every batch in order, for every layout whose
 * buffers are re-packed (bitmaps at odd bit offsets) or re-based (string and list
 * offsets); dictionary-encoded and view columns are refused. */
#include "bifrost/ipc.h"
#include "ipc/ipc_test_columns.h"

/* Batches written as one RecordBatch (bf_ipc_writer_write_many) read back as the
 * rows of every batch in order: slices at odd row offsets (bitmaps shifted), an
 * empty slice, and a second table whose columns have no validity bitmaps and
 * their own string and list buffers (offsets re-based). */
static void test_write_many_concatenates(void **state) {
  (void)state;
  static const char *const specs[] = {"l", "b", "u", "U", "z", "+l[u]", "+L[l]", "+s[b;d:10,2;u]",
                                      "+w:2[f]", "+l[+s[i;+l[b]]]", "tsu:UTC", "n", "w:3"};
  int n_cols = (int)(sizeof specs / sizeof specs[0]);
  struct ArrowSchema schema, schema_b;
  struct ArrowArray a, b;
  make_table(specs, n_cols, 100, true, 5, &schema, &a);
  rng_state = 7;
  make_table(specs, n_cols, 50, false, 0, &schema_b, &b);
  struct { const struct ArrowArray *table; int64_t at, n; } slices[] = {
      {&a, 0, 3}, {&a, 3, 0}, {&a, 3, 58}, {&b, 0, 50}, {&a, 61, 39}, {&b, 13, 1}};
  size_t n_slices = sizeof slices / sizeof slices[0];
  struct ArrowArray pieces[6];
  int64_t total = 0;
  for (size_t k = 0; k < n_slices; k++) {
    pieces[k] = *slices[k].table; /* shallow: shares the table's buffers */
    pieces[k].offset = slices[k].table->offset + slices[k].at;
    pieces[k].length = slices[k].n;
    total += slices[k].n;
  }
  bf_buffer_t out;
  bf_buffer_init(&out);
  bf_ipc_writer_t writer;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_ipc_writer_init(&writer, &schema, &out, &err), BF_OK);
  assert_true(bf_ipc_writer_can_concat(&writer));
  int status = bf_ipc_writer_write_many(&writer, pieces, n_slices, &err);
  if (status != BF_OK) fail_msg("write_many: %s", err.message);
  assert_int_equal(bf_ipc_writer_finish(&writer, &err), BF_OK);
  bf_ipc_writer_reset(&writer);
  assert_int_equal(out.size % 8, 0);
  bf_ipc_reader_t *reader;
  status = bf_ipc_reader_create(out.data, out.size, &reader, &err);
  if (status != BF_OK) fail_msg("reader: %s", err.message);
  struct ArrowArray back;
  int has = 0;
  status = bf_ipc_reader_next(reader, &back, &has, &err);
  if (status != BF_OK) fail_msg("next: %s", err.message);
  assert_true(has);
  assert_int_equal(back.length, total);
  for (int c = 0; c < n_cols; c++) {
    int64_t at = 0;
    for (size_t k = 0; k < n_slices; k++) {
      assert_same_values(schema.children[c], slices[k].table->children[c], slices[k].at,
                         back.children[c], at, slices[k].n);
      at += slices[k].n;
    }
  }
  bf_arrow_array_release(&back);
  assert_int_equal(bf_ipc_reader_next(reader, &back, &has, &err), BF_OK);
  assert_false(has);
  bf_ipc_reader_destroy(reader);
  bf_buffer_reset(&out);
  bf_arrow_array_release(&a);
  bf_arrow_array_release(&b);
  bf_arrow_schema_release(&schema);
  bf_arrow_schema_release(&schema_b);
}

/* Dictionary-encoded and view columns cannot be concatenated: refused, nothing written. */
static void test_write_many_refuses_dictionaries(void **state) {
  (void)state;
  static const char *const specs[][1] = {{"dict:s[u]"}, {"vu"}};
  for (int t = 0; t < 2; t++) {
    struct ArrowSchema schema;
    struct ArrowArray batch;
    make_table(specs[t], 1, 10, true, 0, &schema, &batch);
    bf_buffer_t out;
    bf_buffer_init(&out);
    bf_ipc_writer_t writer;
    bf_error_t err;
    bf_error_init(&err);
    assert_int_equal(bf_ipc_writer_init(&writer, &schema, &out, &err), BF_OK);
    assert_false(bf_ipc_writer_can_concat(&writer));
    size_t before = out.size;
    struct ArrowArray two[2] = {batch, batch};
    assert_int_equal(bf_ipc_writer_write_many(&writer, two, 2, &err), BF_EINVAL);
    assert_int_equal(out.size, before);
    assert_int_equal(bf_ipc_writer_write_many(&writer, two, 1, &err), BF_OK);
    bf_ipc_writer_reset(&writer);
    bf_buffer_reset(&out);
    bf_arrow_array_release(&batch);
    bf_arrow_schema_release(&schema);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_write_many_concatenates),
      cmocka_unit_test(test_write_many_refuses_dictionaries),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
