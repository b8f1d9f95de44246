/* Unit tests for the IPC stream writer and reader. Columns are generated from a
 * compact type spec (Arrow format strings, children in [...] separated by ';',
 * "dict:<index>[<value>]" for dictionary encoding), so every supported layout is
 * round-tripped with nulls, with offsets on every array node (unaligned bitmaps,
 * re-based offsets), with batch-level slices and with zero rows, and compared value
 * by value. Real pyarrow output (ipc_test_pyarrow.h) must decode; hostile input
 * (every truncation, byte mutations, random corruption) must fail cleanly, never
 * crash; whatever the reader accepts must re-encode. Full pyarrow equality in both
 * directions is tested in python/tests/test_ipc_compat.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/ipc.h"
#include "ipc/ipc_test_columns.h"
#include "ipc/ipc_test_pyarrow.h"

/* ---- stream helpers ----------------------------------------------------------------- */

static void write_stream(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                         int n_batches, bf_buffer_t *out) {
  bf_ipc_writer_t writer;
  bf_error_t err;
  bf_error_init(&err);
  bf_buffer_init(out);
  assert_int_equal(bf_ipc_writer_init(&writer, schema, out, &err), BF_OK);
  for (int i = 0; i < n_batches; i++) {
    int status = bf_ipc_writer_write(&writer, batch, &err);
    if (status != BF_OK) fail_msg("write: %s", err.message);
  }
  assert_int_equal(bf_ipc_writer_finish(&writer, &err), BF_OK);
  assert_int_equal(writer.n_batches, n_batches);
  bf_ipc_writer_reset(&writer);
}

/* Reads a stream of n_batches copies of batch and compares everything. With a
 * backing the buffers are borrowed: the batches are compared after the reader and
 * the caller's reference are gone, so they must keep the input alive themselves. */
static void assert_read_back(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                             int n_batches, const uint8_t *data, size_t size,
                             bf_shared_t *backing) {
  bf_error_t err;
  bf_error_init(&err);
  bf_ipc_reader_t *reader;
  int status = backing ? bf_ipc_reader_create_borrowed(data, size, backing, &reader, &err)
                       : bf_ipc_reader_create(data, size, &reader, &err);
  if (status != BF_OK) fail_msg("reader: %s", err.message);
  bf_shared_unref(backing); /* the reader and the batches hold their own */
  struct ArrowSchema back_schema;
  assert_int_equal(bf_ipc_reader_schema(reader, &back_schema, &err), BF_OK);
  assert_same_schema(schema, &back_schema);
  struct ArrowArray *backs = calloc((size_t)n_batches, sizeof *backs);
  assert_non_null(backs);
  for (int k = 0; k < n_batches; k++) {
    int has = 0;
    status = bf_ipc_reader_next(reader, &backs[k], &has, &err);
    if (status != BF_OK) fail_msg("next: %s", err.message);
    assert_true(has);
  }
  struct ArrowArray end;
  int has = 1;
  assert_int_equal(bf_ipc_reader_next(reader, &end, &has, &err), BF_OK);
  assert_false(has);
  bf_ipc_reader_destroy(reader);
  for (int k = 0; k < n_batches; k++) {
    struct ArrowArray *back = &backs[k];
    assert_int_equal(back->length, batch->length);
    assert_int_equal(back->offset, 0);
    for (int64_t c = 0; c < schema->n_children; c++) {
      assert_int_equal(back->children[c]->length, batch->length);
      assert_same_values(schema->children[c], batch->children[c], batch->offset, back->children[c], 0,
                         batch->length);
    }
    bf_arrow_array_release(back);
  }
  free(backs);
  bf_arrow_schema_release(&back_schema);
}

/* Writes n_batches copies of batch and reads them back three ways: copied, borrowed
 * from an aligned buffer, and from a misaligned one (whose buffers are copied). */
static void assert_round_trip(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                              int n_batches) {
  bf_buffer_t out;
  write_stream(schema, batch, n_batches, &out);
  assert_int_equal(out.size % 8, 0);
  assert_read_back(schema, batch, n_batches, out.data, out.size, NULL);
  for (size_t shift = 0; shift < 2; shift++) {
    uint8_t *mem = malloc(out.size + shift);
    assert_non_null(mem);
    memcpy(mem + shift, out.data, out.size);
    bf_shared_t *backing = bf_shared_new(mem, 0, free);
    assert_non_null(backing);
    assert_read_back(schema, batch, n_batches, mem + shift, out.size, backing);
  }
  bf_buffer_reset(&out);
}

/* Each spec as a single column: nulls on/off, node offsets on/off, batch slice, and
 * zero rows. */
static void round_trip_specs(const char *const *specs, size_t n_specs) {
  for (size_t k = 0; k < n_specs; k++) {
    for (int variant = 0; variant < 4; variant++) {
      struct ArrowSchema schema;
      struct ArrowArray batch;
      bool nulls = variant != 1;
      int64_t pad = variant >= 2 ? 5 : 0;
      make_table(&specs[k], 1, 100, nulls, pad, &schema, &batch);
      if (variant == 3) { /* rows 7..66 of the batch */
        batch.offset = 7;
        batch.length = 60;
      }
      assert_round_trip(&schema, &batch, variant == 0 ? 2 : 1);
      batch.length = 0;
      assert_round_trip(&schema, &batch, 1);
      bf_arrow_array_release(&batch);
      bf_arrow_schema_release(&schema);
    }
  }
}

/* ---- round trips -------------------------------------------------------------------- */

static void test_fixed_width_round_trips(void **state) {
  (void)state;
  static const char *const specs[] = {
      "b",      "c",     "C",     "s",     "S",     "i",      "I",     "l",
      "L",      "e",     "f",     "g",     "d:10,2", "d:60,-3,256", "d:9,2,32", "d:18,4,64",
      "w:5",    "tdD",   "tdm",   "tts",   "ttm",   "ttu",    "ttn",   "tss:",
      "tsm:Europe/Paris", "tsu:UTC", "tsn:", "tDs", "tDm", "tDu", "tDn", "tiM",
      "tiD",    "tin",   "n"};
  round_trip_specs(specs, sizeof specs / sizeof specs[0]);
}

static void test_variable_and_nested_round_trips(void **state) {
  (void)state;
  static const char *const specs[] = {
      "u", "z", "U", "Z", "vu", "vz", "+l[l]", "+L[u]", "+w:3[s]", "+w:0[i]",
      "+s[l;u;+s[b]]", "+l[+s[i;vu]]", "+l[+l[c]]", "+L[+w:2[vz]]", "+m[+s[u;l]]", "+s[]"};
  round_trip_specs(specs, sizeof specs / sizeof specs[0]);
}

static void test_dictionary_round_trips(void **state) {
  (void)state;
  static const char *const specs[] = {"dict:s[u]", "dict:c[vu]",     "dict:C[l]",
                                      "dict:S[z]", "dict:I[d:10,2]", "dict:l[U]",
                                      "+l[dict:i[u]]", "+s[dict:c[vu];l]", "dict:i[+s[u;l]]"};
  round_trip_specs(specs, sizeof specs / sizeof specs[0]);
}

static void test_wide_table_and_multiple_batches(void **state) {
  (void)state;
  static const char *const specs[] = {"l", "u", "vu", "dict:s[u]", "+l[l]", "+s[b;d:10,2]", "tsu:UTC",
                                      "+w:2[f]", "n"};
  struct ArrowSchema schema;
  struct ArrowArray batch;
  make_table(specs, (int)(sizeof specs / sizeof specs[0]), 300, true, 3, &schema, &batch);
  assert_round_trip(&schema, &batch, 3);
  batch.offset = 11;
  batch.length = 200;
  assert_round_trip(&schema, &batch, 2);
  bf_arrow_array_release(&batch);
  bf_arrow_schema_release(&schema);
}

static void test_zero_columns(void **state) {
  (void)state;
  struct ArrowSchema schema;
  struct ArrowArray batch;
  make_table(NULL, 0, 5, false, 0, &schema, &batch);
  assert_round_trip(&schema, &batch, 2);
  bf_arrow_array_release(&batch);
  bf_arrow_schema_release(&schema);
}

/* A dictionary is re-sent in full before every batch, so batches with different
 * dictionaries each decode against their own. */
static void test_dictionary_replacement(void **state) {
  (void)state;
  static const char *const specs[] = {"dict:s[l]"};
  struct ArrowSchema schema;
  struct ArrowArray first, second;
  make_table(specs, 1, 10, true, 0, &schema, &first);
  struct ArrowSchema unused;
  rng_state = 99; /* different dictionary values */
  make_table(specs, 1, 10, false, 0, &unused, &second);
  bf_buffer_t out;
  bf_buffer_init(&out);
  bf_ipc_writer_t writer;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_ipc_writer_init(&writer, &schema, &out, &err), BF_OK);
  assert_int_equal(bf_ipc_writer_write(&writer, &first, &err), BF_OK);
  assert_int_equal(bf_ipc_writer_write(&writer, &second, &err), BF_OK);
  assert_int_equal(bf_ipc_writer_finish(&writer, &err), BF_OK);
  bf_ipc_writer_reset(&writer);
  bf_ipc_reader_t *reader;
  assert_int_equal(bf_ipc_reader_create(out.data, out.size, &reader, &err), BF_OK);
  const struct ArrowArray *expected[] = {&first, &second};
  for (int k = 0; k < 2; k++) {
    struct ArrowArray back;
    int has = 0;
    assert_int_equal(bf_ipc_reader_next(reader, &back, &has, &err), BF_OK);
    assert_true(has);
    assert_same_values(schema.children[0], expected[k]->children[0], 0, back.children[0], 0, 10);
    bf_arrow_array_release(&back);
  }
  bf_ipc_reader_destroy(reader);
  bf_buffer_reset(&out);
  bf_arrow_array_release(&first);
  bf_arrow_array_release(&second);
  bf_arrow_schema_release(&schema);
  bf_arrow_schema_release(&unused);
}

/* ---- pyarrow output ------------------------------------------------------------------ */

static void test_decodes_pyarrow_stream(void **state) {
  (void)state;
  bf_error_t err;
  bf_error_init(&err);
  uint8_t *copy = dup_bytes(pyarrow_stream, sizeof pyarrow_stream);
  bf_ipc_reader_t *reader;
  assert_int_equal(bf_ipc_reader_create(copy, sizeof pyarrow_stream, &reader, &err), BF_OK);
  struct ArrowSchema schema;
  assert_int_equal(bf_ipc_reader_schema(reader, &schema, &err), BF_OK);
  static const char *const formats[] = {"l", "u", "vu", "i", "+l", "+s", "tsu:UTC", "d:9,2"};
  assert_int_equal(schema.n_children, 8);
  for (int i = 0; i < 8; i++) assert_string_equal(schema.children[i]->format, formats[i]);
  assert_string_equal(schema.children[0]->name, "id");
  assert_string_equal(schema.children[3]->dictionary->format, "u");
  assert_true(schema.children[0]->flags & ARROW_FLAG_NULLABLE);

  struct ArrowArray batch;
  int has = 0;
  assert_int_equal(bf_ipc_reader_next(reader, &batch, &has, &err), BF_OK);
  assert_true(has);
  assert_int_equal(batch.length, 3);
  const struct ArrowArray *id = batch.children[0];
  assert_int_equal(id->null_count, 1);
  assert_false(is_valid(id, 1));
  assert_int_equal(((const int64_t *)id->buffers[1])[2], 3);
  const struct ArrowArray *name = batch.children[1];
  assert_memory_equal((const char *)name->buffers[2] + ((const int32_t *)name->buffers[1])[2], "ccc", 3);
  const uint8_t *bytes;
  int32_t len;
  view_at(batch.children[2], 1, &bytes, &len);
  assert_int_equal(len, 27);
  assert_memory_equal(bytes, "a string longer than twelve", 27);
  assert_false(is_valid(batch.children[2], 2));
  const struct ArrowArray *tag = batch.children[3];
  int32_t index = ((const int32_t *)tag->buffers[1])[1];
  const struct ArrowArray *dict = tag->dictionary;
  assert_memory_equal((const char *)dict->buffers[2] + ((const int32_t *)dict->buffers[1])[index], "y", 1);
  const struct ArrowArray *xs = batch.children[4];
  assert_int_equal(((const int32_t *)xs->buffers[1])[1], 2);
  assert_int_equal(((const int32_t *)xs->children[0]->buffers[1])[1], 2);
  assert_false(is_valid(xs, 2));
  double x;
  memcpy(&x, (const uint8_t *)batch.children[5]->children[0]->buffers[1] + 16, 8);
  assert_true(x == -2.0);
  assert_int_equal(((const int64_t *)batch.children[6]->buffers[1])[1], 1000000);
  int64_t cents;
  memcpy(&cents, (const uint8_t *)batch.children[7]->buffers[1] + 32, 8);
  assert_int_equal(cents, -350);

  /* What we decode re-encodes to a stream that decodes to the same values. */
  assert_round_trip(&schema, &batch, 1);
  bf_arrow_array_release(&batch);
  assert_int_equal(bf_ipc_reader_next(reader, &batch, &has, &err), BF_OK);
  assert_false(has);
  bf_arrow_schema_release(&schema);
  bf_ipc_reader_destroy(reader);
  free(copy);
}

static int points_into(const void *p, const uint8_t *data, size_t size) {
  return (const uint8_t *)p >= data && (const uint8_t *)p < data + size;
}

/* A reader over a backing hands out the input's own bytes (no copy), the
 * dictionary's too, and the input outlives the reader for as long as a batch
 * holds it; a plain reader's batches own copies. */
static void test_borrowed_buffers_point_into_the_input(void **state) {
  (void)state;
  bf_error_t err;
  bf_error_init(&err);
  uint8_t *mem = dup_bytes(pyarrow_stream, sizeof pyarrow_stream);
  bf_shared_t *backing = bf_shared_new(mem, 0, free);
  assert_non_null(backing);
  bf_ipc_reader_t *reader;
  assert_int_equal(bf_ipc_reader_create_borrowed(mem, sizeof pyarrow_stream, backing, &reader, &err), BF_OK);
  bf_shared_unref(backing);
  struct ArrowArray batch;
  int has = 0;
  assert_int_equal(bf_ipc_reader_next(reader, &batch, &has, &err), BF_OK);
  assert_true(has);
  bf_ipc_reader_destroy(reader);
  const struct ArrowArray *id = batch.children[0], *name = batch.children[1], *tag = batch.children[3];
  assert_true(points_into(id->buffers[1], mem, sizeof pyarrow_stream));
  assert_true(points_into(name->buffers[2], mem, sizeof pyarrow_stream));
  assert_true(points_into(tag->dictionary->buffers[1], mem, sizeof pyarrow_stream));
  assert_int_equal(((const int64_t *)id->buffers[1])[2], 3); /* still readable: the batch holds mem */
  struct ArrowArray moved;
  bf_arrow_array_move(batch.children[1], &moved); /* a child taken out keeps it too */
  bf_arrow_array_release(&batch);
  assert_memory_equal((const char *)moved.buffers[2] + ((const int32_t *)moved.buffers[1])[2], "ccc", 3);
  bf_arrow_array_release(&moved);

  uint8_t *plain = dup_bytes(pyarrow_stream, sizeof pyarrow_stream);
  assert_int_equal(bf_ipc_reader_create(plain, sizeof pyarrow_stream, &reader, &err), BF_OK);
  assert_int_equal(bf_ipc_reader_next(reader, &batch, &has, &err), BF_OK);
  assert_false(points_into(batch.children[0]->buffers[1], plain, sizeof pyarrow_stream));
  bf_arrow_array_release(&batch);
  bf_ipc_reader_destroy(reader);
  free(plain);
}

static void test_rejects_compressed_bodies(void **state) {
  (void)state;
  bf_error_t err;
  bf_error_init(&err);
  bf_ipc_reader_t *reader;
  assert_int_equal(bf_ipc_reader_create(pyarrow_zstd_stream, sizeof pyarrow_zstd_stream, &reader, &err),
                   BF_OK);
  struct ArrowArray batch;
  int has = 0;
  assert_int_equal(bf_ipc_reader_next(reader, &batch, &has, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "compressed"));
  assert_false(has);
  bf_ipc_reader_destroy(reader);
}

/* ---- writer errors ---------------------------------------------------------------------- */

static void test_writer_rejects_bad_input(void **state) {
  (void)state;
  bf_error_t err;
  bf_error_init(&err);
  bf_buffer_t out;
  bf_buffer_init(&out);
  bf_ipc_writer_t writer;
  struct ArrowSchema schema;

  assert_int_equal(bf_arrow_schema_init(&schema, "l", "", 0, 0), BF_OK);
  assert_int_equal(bf_ipc_writer_init(&writer, &schema, &out, &err), BF_EINVAL);
  bf_arrow_schema_release(&schema);

  static const char *const unsupported[] = {"+r", "+us:0,1", "w:0", "d:1", "tsx:", "lx", "+w:-1"};
  for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
    assert_int_equal(bf_arrow_schema_init(&schema, "+s", "", 0, 1), BF_OK);
    assert_int_equal(bf_arrow_schema_init(schema.children[0], unsupported[i], "bad", 0, 0), BF_OK);
    assert_int_equal(bf_ipc_writer_init(&writer, &schema, &out, &err), BF_EINVAL);
    assert_non_null(strstr(err.message, "bad"));
    bf_arrow_schema_release(&schema);
  }
  assert_int_equal(out.size, 0);

  /* A 65-deep struct exceeds the nesting limit. */
  assert_int_equal(bf_arrow_schema_init(&schema, "+s", "", 0, 1), BF_OK);
  struct ArrowSchema *node = &schema;
  for (int depth = 0; depth < 65; depth++) {
    assert_int_equal(bf_arrow_schema_init(node->children[0], "+s", "x", 0, 1), BF_OK);
    node = node->children[0];
  }
  assert_int_equal(bf_arrow_schema_init(node->children[0], "l", "leaf", 0, 0), BF_OK);
  assert_int_equal(bf_ipc_writer_init(&writer, &schema, &out, &err), BF_EINVAL);
  bf_arrow_schema_release(&schema);

  /* Batches that do not match the schema fail without writing a partial message. */
  static const char *const specs[] = {"l", "dict:s[u]"};
  struct ArrowArray batch, other;
  make_table(specs, 2, 4, true, 0, &schema, &batch);
  assert_int_equal(bf_ipc_writer_init(&writer, &schema, &out, &err), BF_OK);
  size_t schema_size = out.size;
  struct ArrowSchema other_schema;
  static const char *const wrong[] = {"+l[l]"};
  make_table(wrong, 1, 4, true, 0, &other_schema, &other);
  assert_int_equal(bf_ipc_writer_write(&writer, &other, &err), BF_EINVAL);
  struct ArrowArray *dict = batch.children[1]->dictionary;
  batch.children[1]->dictionary = NULL; /* dictionary column without a dictionary */
  assert_int_equal(bf_ipc_writer_write(&writer, &batch, &err), BF_EINVAL);
  batch.children[1]->dictionary = dict;
  struct ArrowArray *first = batch.children[0];
  batch.children[0] = other.children[0]; /* list array where int64 is expected */
  assert_int_equal(bf_ipc_writer_write(&writer, &batch, &err), BF_EINVAL);
  batch.children[0] = first;
  assert_int_equal(out.size, schema_size);
  assert_int_equal(bf_ipc_writer_write(&writer, &batch, &err), BF_OK);
  assert_int_equal(bf_ipc_writer_finish(&writer, &err), BF_OK);
  assert_int_equal(bf_ipc_writer_write(&writer, &batch, &err), BF_ECLOSED);
  bf_ipc_writer_reset(&writer);
  bf_arrow_array_release(&batch);
  bf_arrow_array_release(&other);
  bf_arrow_schema_release(&schema);
  bf_arrow_schema_release(&other_schema);
  bf_buffer_reset(&out);
}

/* ---- hostile input --------------------------------------------------------------------------- */

/* Decodes a whole stream and re-encodes every batch the reader accepts; returns
 * the first error status or BF_OK. */
static int decode_all(const uint8_t *data, size_t size) {
  bf_error_t err;
  bf_error_init(&err);
  bf_ipc_reader_t *reader;
  int status = bf_ipc_reader_create(data, size, &reader, &err);
  if (status != BF_OK) {
    assert_true(err.message[0] != '\0');
    return status;
  }
  struct ArrowSchema schema;
  assert_int_equal(bf_ipc_reader_schema(reader, &schema, &err), BF_OK);
  bf_buffer_t out;
  bf_buffer_init(&out);
  bf_ipc_writer_t writer;
  int writing = bf_ipc_writer_init(&writer, &schema, &out, &err) == BF_OK;
  for (;;) {
    struct ArrowArray a;
    int has = 0;
    status = bf_ipc_reader_next(reader, &a, &has, &err);
    if (status != BF_OK || !has) break;
    if (writing) assert_int_equal(bf_ipc_writer_write(&writer, &a, &err), BF_OK);
    bf_arrow_array_release(&a);
  }
  if (status != BF_OK) assert_true(err.message[0] != '\0');
  if (writing) bf_ipc_writer_reset(&writer);
  bf_buffer_reset(&out);
  bf_arrow_schema_release(&schema);
  bf_ipc_reader_destroy(reader);
  return status;
}

static void hostile_stream(bf_buffer_t *out) {
  static const char *const specs[] = {"l", "u", "vu", "dict:s[u]", "+l[l]", "+s[b;d:10,2]", "+w:2[c]",
                                      "U"};
  struct ArrowSchema schema;
  struct ArrowArray batch;
  make_table(specs, (int)(sizeof specs / sizeof specs[0]), 5, true, 1, &schema, &batch);
  write_stream(&schema, &batch, 2, out);
  bf_arrow_array_release(&batch);
  bf_arrow_schema_release(&schema);
}

static void test_truncation_at_every_byte_fails(void **state) {
  (void)state;
  bf_buffer_t out;
  hostile_stream(&out);
  assert_int_equal(decode_all(out.data, out.size), BF_OK);
  for (size_t cut = 0; cut < out.size; cut++) {
    uint8_t *copy = dup_bytes(out.data, cut); /* exact-size copy: ASan catches overreads */
    assert_int_not_equal(decode_all(copy, cut), BF_OK);
    free(copy);
  }
  for (size_t cut = 0; cut < sizeof pyarrow_stream; cut++) {
    uint8_t *copy = dup_bytes(pyarrow_stream, cut);
    assert_int_not_equal(decode_all(copy, cut), BF_OK);
    free(copy);
  }
  bf_buffer_reset(&out);
}

static void test_byte_mutations_never_crash(void **state) {
  (void)state;
  bf_buffer_t out;
  hostile_stream(&out);
  static const uint8_t replacements[] = {0x00, 0xFF, 0x7F, 0x80, 0x01};
  for (size_t pos = 0; pos < out.size; pos++) {
    for (size_t k = 0; k < sizeof replacements; k++) {
      uint8_t *copy = dup_bytes(out.data, out.size);
      copy[pos] = replacements[k];
      (void)decode_all(copy, out.size);
      free(copy);
    }
  }
  rng_state = 42;
  for (int round = 0; round < 4000; round++) {
    const uint8_t *source = round % 2 ? out.data : pyarrow_stream;
    size_t size = round % 2 ? out.size : sizeof pyarrow_stream;
    uint8_t *copy = dup_bytes(source, size);
    int flips = 1 + (int)(next_random() % 6);
    for (int f = 0; f < flips; f++) copy[next_random() % size] = (uint8_t)next_random();
    (void)decode_all(copy, size);
    free(copy);
  }
  bf_buffer_reset(&out);
}

static void test_rejects_malformed_framing(void **state) {
  (void)state;
  static const uint8_t eos_only[] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
  static const uint8_t negative_length[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xF0, 0xFF, 0xFF, 0xFF};
  static const uint8_t huge_length[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x10, 0, 0, 0, 0};
  static const uint8_t garbage[] = "definitely not an arrow stream";
  assert_int_equal(decode_all(NULL, 0), BF_ECORRUPT);
  assert_int_equal(decode_all(eos_only, sizeof eos_only), BF_ECORRUPT);
  assert_int_equal(decode_all(negative_length, sizeof negative_length), BF_ECORRUPT);
  assert_int_equal(decode_all(huge_length, sizeof huge_length), BF_ECORRUPT);
  assert_int_equal(decode_all(garbage, sizeof garbage), BF_ECORRUPT);

  /* A stream whose first message is a record batch, not a schema. */
  bf_buffer_t out;
  hostile_stream(&out);
  int32_t schema_len;
  memcpy(&schema_len, out.data + 4, 4);
  size_t skip = 8 + (size_t)schema_len;
  assert_int_equal(decode_all(out.data + skip, out.size - skip), BF_ECORRUPT);
  /* Without its end-of-stream marker a stream counts as truncated. */
  assert_int_equal(decode_all(out.data, out.size - 8), BF_ECORRUPT);
  bf_buffer_reset(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixed_width_round_trips),
      cmocka_unit_test(test_variable_and_nested_round_trips),
      cmocka_unit_test(test_dictionary_round_trips),
      cmocka_unit_test(test_wide_table_and_multiple_batches),
      cmocka_unit_test(test_zero_columns),
      cmocka_unit_test(test_dictionary_replacement),
      cmocka_unit_test(test_decodes_pyarrow_stream),
      cmocka_unit_test(test_borrowed_buffers_point_into_the_input),
      cmocka_unit_test(test_rejects_compressed_bodies),
      cmocka_unit_test(test_writer_rejects_bad_input),
      cmocka_unit_test(test_truncation_at_every_byte_fails),
      cmocka_unit_test(test_byte_mutations_never_crash),
      cmocka_unit_test(test_rejects_malformed_framing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
