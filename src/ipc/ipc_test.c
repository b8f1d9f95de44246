/* Unit tests for the IPC stream writer and reader: round trips of every layout the
 * server handles (primitives with nulls, bool, utf8, utf8 views, struct, list,
 * dictionary), empty batches, slices, and hostile input (every truncation and
 * random corruption must fail cleanly, never crash). pyarrow compatibility is
 * tested end to end in python/tests/test_ipc_compat.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/ipc.h"

static void *dup_bytes(const void *src, size_t n) {
  void *p = malloc(n ? n : 1);
  memcpy(p, src, n);
  return p;
}

/* Columns: i (int64, nulls), s (utf8), v (utf8 view), b (bool), st (struct{x int64}),
 * l (list<int64>), d (dictionary int16 -> utf8). 3 rows. */
static void make_batch(struct ArrowSchema *schema, struct ArrowArray *batch) {
  assert_int_equal(bf_arrow_schema_init(schema, "+s", "", 0, 7), BF_OK);
  bf_arrow_schema_init(schema->children[0], "l", "i", ARROW_FLAG_NULLABLE, 0);
  bf_arrow_schema_init(schema->children[1], "u", "s", 0, 0);
  bf_arrow_schema_init(schema->children[2], "vu", "v", 0, 0);
  bf_arrow_schema_init(schema->children[3], "b", "b", 0, 0);
  bf_arrow_schema_init(schema->children[4], "+s", "st", 0, 1);
  bf_arrow_schema_init(schema->children[4]->children[0], "l", "x", 0, 0);
  bf_arrow_schema_init(schema->children[5], "+l", "l", 0, 1);
  bf_arrow_schema_init(schema->children[5]->children[0], "l", "item", 0, 0);
  bf_arrow_schema_init(schema->children[6], "s", "d", 0, 0);
  bf_arrow_schema_set_dictionary(schema->children[6], "u");

  assert_int_equal(bf_arrow_array_init(batch, 1, 7), BF_OK);
  batch->length = 3;
  struct ArrowArray *c = batch->children[0];
  bf_arrow_array_init(c, 2, 0);
  c->length = 3;
  c->null_count = 1;
  uint8_t valid = 0x5; /* rows 0 and 2 */
  int64_t ints[] = {7, 0, -9};
  bf_arrow_array_set_buffer(c, 0, dup_bytes(&valid, 1));
  bf_arrow_array_set_buffer(c, 1, dup_bytes(ints, sizeof ints));

  c = batch->children[1];
  bf_arrow_array_init(c, 3, 0);
  c->length = 3;
  int32_t offsets[] = {0, 1, 1, 6};
  bf_arrow_array_set_buffer(c, 1, dup_bytes(offsets, sizeof offsets));
  bf_arrow_array_set_buffer(c, 2, dup_bytes("aé€", 6));

  c = batch->children[2]; /* views: "short", "", and a 20-byte out-of-line string */
  bf_arrow_array_init(c, 4, 0);
  c->length = 3;
  uint8_t views[48] = {0};
  int32_t len = 5;
  memcpy(views, &len, 4);
  memcpy(views + 4, "short", 5);
  len = 20;
  memcpy(views + 32, &len, 4);
  memcpy(views + 36, "0123", 4); /* prefix; buffer 0, offset 0 */
  int64_t sizes[] = {20};
  bf_arrow_array_set_buffer(c, 1, dup_bytes(views, sizeof views));
  bf_arrow_array_set_buffer(c, 2, dup_bytes("0123456789abcdefghij", 20));
  bf_arrow_array_set_buffer(c, 3, dup_bytes(sizes, sizeof sizes));

  c = batch->children[3];
  bf_arrow_array_init(c, 2, 0);
  c->length = 3;
  uint8_t bits = 0x6;
  bf_arrow_array_set_buffer(c, 1, dup_bytes(&bits, 1));

  c = batch->children[4];
  bf_arrow_array_init(c, 1, 1);
  c->length = 3;
  bf_arrow_array_init(c->children[0], 2, 0);
  c->children[0]->length = 3;
  int64_t xs[] = {1, 2, 3};
  bf_arrow_array_set_buffer(c->children[0], 1, dup_bytes(xs, sizeof xs));

  c = batch->children[5];
  bf_arrow_array_init(c, 2, 1);
  c->length = 3;
  int32_t loff[] = {0, 2, 2, 3};
  bf_arrow_array_set_buffer(c, 1, dup_bytes(loff, sizeof loff));
  bf_arrow_array_init(c->children[0], 2, 0);
  c->children[0]->length = 3;
  int64_t items[] = {10, 11, 12};
  bf_arrow_array_set_buffer(c->children[0], 1, dup_bytes(items, sizeof items));

  c = batch->children[6];
  bf_arrow_array_init(c, 2, 0);
  c->length = 3;
  int16_t idx[] = {1, 0, 1};
  bf_arrow_array_set_buffer(c, 1, dup_bytes(idx, sizeof idx));
  struct ArrowArray *dict = bf_arrow_array_alloc_dictionary(c);
  bf_arrow_array_init(dict, 3, 0);
  dict->length = 2;
  int32_t doff[] = {0, 4, 10};
  bf_arrow_array_set_buffer(dict, 1, dup_bytes(doff, sizeof doff));
  bf_arrow_array_set_buffer(dict, 2, dup_bytes("goldsilver", 10));
}

static void write_stream(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                         int n_batches, bf_buffer_t *out) {
  bf_ipc_writer_t writer;
  bf_error_t err;
  bf_error_init(&err);
  bf_buffer_init(out);
  assert_int_equal(bf_ipc_writer_init(&writer, schema, out, &err), BF_OK);
  for (int i = 0; i < n_batches; i++) assert_int_equal(bf_ipc_writer_write(&writer, batch, &err), BF_OK);
  assert_int_equal(bf_ipc_writer_finish(&writer, &err), BF_OK);
  bf_ipc_writer_reset(&writer);
}

static void test_round_trip_all_layouts(void **state) {
  (void)state;
  struct ArrowSchema schema;
  struct ArrowArray batch;
  make_batch(&schema, &batch);
  bf_buffer_t out;
  write_stream(&schema, &batch, 2, &out);

  bf_error_t err;
  bf_error_init(&err);
  bf_ipc_reader_t *reader;
  assert_int_equal(bf_ipc_reader_create(out.data, out.size, &reader, &err), BF_OK);
  struct ArrowSchema back_schema;
  assert_int_equal(bf_ipc_reader_schema(reader, &back_schema, &err), BF_OK);
  assert_int_equal(back_schema.n_children, 7);
  assert_string_equal(back_schema.children[2]->format, "vu");
  assert_string_equal(back_schema.children[6]->format, "s");
  assert_string_equal(back_schema.children[6]->dictionary->format, "u");
  assert_true(back_schema.children[0]->flags & ARROW_FLAG_NULLABLE);
  for (int round = 0; round < 2; round++) {
    struct ArrowArray a;
    int has = 0;
    assert_int_equal(bf_ipc_reader_next(reader, &a, &has, &err), BF_OK);
    assert_true(has);
    assert_int_equal(a.length, 3);
    const struct ArrowArray *i = a.children[0];
    assert_int_equal(i->null_count, 1);
    assert_false(bf_arrow_bit_get(i->buffers[0], 1));
    assert_int_equal(((const int64_t *)i->buffers[1])[2], -9);
    const struct ArrowArray *s = a.children[1];
    assert_memory_equal((const char *)s->buffers[2] + ((const int32_t *)s->buffers[1])[2], "é€", 5);
    const struct ArrowArray *v = a.children[2];
    assert_int_equal(v->n_buffers, 4);
    assert_memory_equal((const uint8_t *)v->buffers[1] + 4, "short", 5);
    assert_memory_equal(v->buffers[2], "0123456789abcdefghij", 20);
    assert_true(bf_arrow_bit_get(a.children[3]->buffers[1], 2));
    assert_int_equal(((const int64_t *)a.children[4]->children[0]->buffers[1])[1], 2);
    assert_int_equal(((const int32_t *)a.children[5]->buffers[1])[3], 3);
    assert_int_equal(((const int64_t *)a.children[5]->children[0]->buffers[1])[2], 12);
    const struct ArrowArray *d = a.children[6];
    assert_non_null(d->dictionary);
    assert_int_equal(d->dictionary->length, 2);
    assert_memory_equal(d->dictionary->buffers[2], "goldsilver", 10);
    a.release(&a);
  }
  struct ArrowArray end;
  int has = 1;
  assert_int_equal(bf_ipc_reader_next(reader, &end, &has, &err), BF_OK);
  assert_false(has);
  back_schema.release(&back_schema);
  bf_ipc_reader_destroy(reader);
  bf_buffer_reset(&out);
  batch.release(&batch);
  schema.release(&schema);
}

static void test_slice_and_empty_batch(void **state) {
  (void)state;
  struct ArrowSchema schema;
  struct ArrowArray batch;
  make_batch(&schema, &batch);
  batch.offset = 1; /* rows 1..2 only */
  batch.length = 2;
  bf_buffer_t out;
  write_stream(&schema, &batch, 1, &out);
  bf_error_t err;
  bf_ipc_reader_t *reader;
  assert_int_equal(bf_ipc_reader_create(out.data, out.size, &reader, &err), BF_OK);
  struct ArrowArray a;
  int has;
  assert_int_equal(bf_ipc_reader_next(reader, &a, &has, &err), BF_OK);
  assert_int_equal(a.length, 2);
  assert_false(bf_arrow_bit_get(a.children[0]->buffers[0], 0));              /* old row 1 */
  assert_int_equal(((const int64_t *)a.children[0]->buffers[1])[1], -9);      /* old row 2 */
  assert_int_equal(((const int32_t *)a.children[5]->buffers[1])[0], 0);       /* rebased */
  assert_int_equal(((const int64_t *)a.children[5]->children[0]->buffers[1])[0], 12);
  a.release(&a);
  bf_ipc_reader_destroy(reader);
  bf_buffer_reset(&out);

  batch.length = 0; /* zero rows still make a valid stream with the schema */
  write_stream(&schema, &batch, 1, &out);
  assert_int_equal(bf_ipc_reader_create(out.data, out.size, &reader, &err), BF_OK);
  assert_int_equal(bf_ipc_reader_next(reader, &a, &has, &err), BF_OK);
  assert_true(has);
  assert_int_equal(a.length, 0);
  a.release(&a);
  bf_ipc_reader_destroy(reader);
  bf_buffer_reset(&out);
  batch.release(&batch);
  schema.release(&schema);
}

/* Decodes a whole stream; returns the first error status or BF_OK. */
static int decode_all(const uint8_t *data, size_t size) {
  bf_error_t err;
  bf_error_init(&err);
  bf_ipc_reader_t *reader;
  int status = bf_ipc_reader_create(data, size, &reader, &err);
  if (status != BF_OK) return status;
  for (;;) {
    struct ArrowArray a;
    int has = 0;
    status = bf_ipc_reader_next(reader, &a, &has, &err);
    if (status != BF_OK || !has) break;
    a.release(&a);
  }
  bf_ipc_reader_destroy(reader);
  return status;
}

static void test_truncation_and_corruption_never_crash(void **state) {
  (void)state;
  struct ArrowSchema schema;
  struct ArrowArray batch;
  make_batch(&schema, &batch);
  bf_buffer_t out;
  write_stream(&schema, &batch, 1, &out);
  /* A stream cut anywhere before its last batch must be rejected. */
  size_t eos = 8;
  for (size_t cut = 0; cut + eos < out.size; cut++) {
    uint8_t *copy = dup_bytes(out.data, cut); /* exact-size copy: ASan catches overreads */
    assert_int_not_equal(decode_all(copy, cut), BF_OK);
    free(copy);
  }
  /* Random byte flips: any status is fine, crashing or reading out of bounds is not. */
  srand(42);
  for (int round = 0; round < 3000; round++) {
    uint8_t *copy = dup_bytes(out.data, out.size);
    int flips = 1 + rand() % 4;
    for (int f = 0; f < flips; f++) copy[rand() % out.size] = (uint8_t)rand();
    (void)decode_all(copy, out.size);
    free(copy);
  }
  bf_buffer_reset(&out);
  batch.release(&batch);
  schema.release(&schema);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_all_layouts),
      cmocka_unit_test(test_slice_and_empty_batch),
      cmocka_unit_test(test_truncation_and_corruption_never_crash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
