/* Unit tests for the Arrow C Data Interface helpers: owned schema and array nodes
 * (init, dictionary, deep copy including foreign schemas with metadata, move,
 * release), the format-string layout table and the ArrowArrayStream over owned
 * batches. Leaks and double frees are caught by the sanitizer build. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/arrow.h"

static void *dup_bytes(const void *src, size_t n) {
  void *p = malloc(n);
  assert_non_null(p);
  memcpy(p, src, n);
  return p;
}

static void test_schema_init_and_release(void **state) {
  (void)state;
  struct ArrowSchema schema;
  assert_int_equal(bf_arrow_schema_init(&schema, "+s", "root", 0, 2), BF_OK);
  assert_string_equal(schema.format, "+s");
  assert_string_equal(schema.name, "root");
  assert_null(schema.metadata);
  assert_int_equal(schema.n_children, 2);
  assert_null(schema.children[0]->release); /* released state until filled */
  assert_int_equal(bf_arrow_schema_init(schema.children[0], "l", "id", ARROW_FLAG_NULLABLE, 0), BF_OK);
  assert_int_equal(bf_arrow_schema_init(schema.children[1], "s", "tag", 0, 0), BF_OK);
  assert_int_equal(bf_arrow_schema_set_dictionary(schema.children[1], "vu"), BF_OK);
  assert_int_equal(bf_arrow_schema_set_dictionary(schema.children[1], "u"), BF_OK); /* replaces */
  assert_string_equal(schema.children[1]->dictionary->format, "u");
  assert_true(schema.children[0]->flags & ARROW_FLAG_NULLABLE);

  struct ArrowSchema moved;
  bf_arrow_schema_move(&schema, &moved);
  assert_null(schema.release);
  bf_arrow_schema_release(&schema); /* released: a no-op */
  bf_arrow_schema_release(&moved);
  assert_null(moved.release);
  bf_arrow_schema_release(&moved);

  struct ArrowSchema zeroed;
  memset(&zeroed, 0, sizeof zeroed);
  bf_arrow_schema_release(&zeroed);
  bf_arrow_schema_release(NULL);

  assert_int_equal(bf_arrow_schema_init(&schema, NULL, NULL, 0, 0), BF_OK);
  assert_string_equal(schema.format, "");
  assert_string_equal(schema.name, "");
  bf_arrow_schema_release(&schema);
}

/* A schema owned by someone else (as pyarrow exports): static strings, its own
 * release callback, binary metadata. */
static int foreign_releases;

static void release_foreign(struct ArrowSchema *schema) {
  foreign_releases++;
  schema->release = NULL;
}

static void test_deep_copy_of_foreign_schema(void **state) {
  (void)state;
  /* metadata: 1 pair, "k" -> "value" */
  static const char metadata[] = {1, 0, 0, 0, 1, 0, 0, 0, 'k', 5, 0, 0, 0, 'v', 'a', 'l', 'u', 'e'};
  struct ArrowSchema leaf = {.format = "u", .name = "item", .flags = ARROW_FLAG_NULLABLE,
                             .release = release_foreign};
  struct ArrowSchema dict_value = {.format = "z", .name = "", .release = release_foreign};
  struct ArrowSchema indices = {.format = "c", .name = "code", .dictionary = &dict_value,
                                .flags = ARROW_FLAG_DICTIONARY_ORDERED, .release = release_foreign};
  struct ArrowSchema list = {.format = "+l", .name = "names", .n_children = 1,
                             .release = release_foreign};
  struct ArrowSchema *list_children[] = {&leaf};
  list.children = list_children;
  struct ArrowSchema *root_children[] = {&list, &indices};
  struct ArrowSchema root = {.format = "+s", .name = "", .metadata = metadata, .n_children = 2,
                             .children = root_children, .release = release_foreign};

  struct ArrowSchema copy;
  assert_int_equal(bf_arrow_schema_deep_copy(&root, &copy), BF_OK);
  assert_ptr_not_equal(copy.format, root.format);
  assert_memory_equal(copy.metadata, metadata, sizeof metadata);
  assert_string_equal(copy.children[0]->children[0]->name, "item");
  assert_true(copy.children[0]->children[0]->flags & ARROW_FLAG_NULLABLE);
  assert_string_equal(copy.children[1]->dictionary->format, "z");
  assert_true(copy.children[1]->flags & ARROW_FLAG_DICTIONARY_ORDERED);

  struct ArrowSchema second; /* a copy of a copy is independent of the first */
  assert_int_equal(bf_arrow_schema_deep_copy(&copy, &second), BF_OK);
  bf_arrow_schema_release(&copy);
  assert_string_equal(second.children[0]->format, "+l");
  assert_memory_equal(second.metadata, metadata, sizeof metadata);
  bf_arrow_schema_release(&second);
  assert_int_equal(foreign_releases, 0); /* copying never releases the source */
}

static void test_array_init_buffers_and_dictionary(void **state) {
  (void)state;
  struct ArrowArray array;
  assert_int_equal(bf_arrow_array_init(&array, 3, 1), BF_OK);
  assert_int_equal(array.n_buffers, 3);
  assert_int_equal(array.n_children, 1);
  assert_null(array.buffers[0]);
  assert_null(array.children[0]->release);
  int32_t offsets[] = {0, 2};
  bf_arrow_array_set_buffer(&array, 1, dup_bytes(offsets, sizeof offsets));
  bf_arrow_array_set_buffer(&array, 2, dup_bytes("xx", 2));
  bf_arrow_array_set_buffer(&array, 2, dup_bytes("yz", 2)); /* frees the first */
  assert_memory_equal(array.buffers[2], "yz", 2);
  bf_arrow_array_set_buffer(&array, 0, NULL);
  assert_int_equal(bf_arrow_array_init(array.children[0], 2, 0), BF_OK);

  struct ArrowArray *dict = bf_arrow_array_alloc_dictionary(&array);
  assert_non_null(dict);
  assert_ptr_equal(bf_arrow_array_alloc_dictionary(&array), dict); /* one per node */
  assert_int_equal(bf_arrow_array_init(dict, 2, 0), BF_OK);
  int64_t values[] = {4, 5};
  bf_arrow_array_set_buffer(dict, 1, dup_bytes(values, sizeof values));

  struct ArrowArray moved;
  bf_arrow_array_move(&array, &moved);
  assert_null(array.release);
  bf_arrow_array_release(&array);
  bf_arrow_array_release(&moved);
  assert_null(moved.release);

  struct ArrowArray zeroed;
  memset(&zeroed, 0, sizeof zeroed);
  bf_arrow_array_release(&zeroed);
  bf_arrow_array_release(NULL);

  assert_int_equal(bf_arrow_array_init(&array, 0, 0), BF_OK); /* null type: no buffers */
  bf_arrow_array_release(&array);
}

static void test_bits(void **state) {
  (void)state;
  uint8_t bits[2] = {0, 0xFF};
  bf_arrow_bit_set(bits, 0, true);
  bf_arrow_bit_set(bits, 7, true);
  bf_arrow_bit_set(bits, 9, false);
  assert_int_equal(bits[0], 0x81);
  assert_int_equal(bits[1], 0xFD);
  assert_true(bf_arrow_bit_get(bits, 7));
  assert_false(bf_arrow_bit_get(bits, 9));
  assert_true(bf_arrow_bit_get(bits, 15));
}

static void test_format_layouts(void **state) {
  (void)state;
  static const struct {
    const char *format;
    int n_buffers, byte_width;
  } cases[] = {
      {"n", 0, -1},         {"b", 2, 0},          {"c", 2, 1},           {"C", 2, 1},
      {"s", 2, 2},          {"S", 2, 2},          {"i", 2, 4},           {"I", 2, 4},
      {"l", 2, 8},          {"L", 2, 8},          {"e", 2, 2},           {"f", 2, 4},
      {"g", 2, 8},          {"d:38,0", 2, 16},    {"d:76,-2,256", 2, 32}, {"d:9,2,32", 2, 4},
      {"d:18,3,64", 2, 8},  {"w:5", 2, 5},        {"tdD", 2, 4},         {"tdm", 2, 8},
      {"tts", 2, 4},        {"ttm", 2, 4},        {"ttu", 2, 8},         {"ttn", 2, 8},
      {"tss:", 2, 8},       {"tsu:UTC", 2, 8},    {"tsn:Europe/Paris", 2, 8},
      {"tDs", 2, 8},        {"tDn", 2, 8},        {"tiM", 2, 4},         {"tiD", 2, 8},
      {"tin", 2, 16},       {"u", 3, -1},         {"z", 3, -1},          {"U", 3, -1},
      {"Z", 3, -1},         {"vu", 2, -1},        {"vz", 2, -1},         {"+l", 2, -1},
      {"+L", 2, -1},        {"+m", 2, -1},        {"+s", 1, -1},         {"+w:3", 1, -1},
      /* malformed or unsupported */
      {"", -1, -1},         {"x", -1, -1},        {"ll", -1, -1},        {"d:", -1, -1},
      {"d:10", -1, -1},     {"d:10,2,100", -1, -1}, {"d:0,0", -1, -1},   {"w:0", -1, -1},
      {"w:", -1, -1},       {"w:-3", -1, -1},     {"w:99999999999", -1, -1}, {"ttx", -1, -1},
      {"tsu", -1, -1},      {"tdX", -1, -1},      {"tDsx", -1, -1},      {"vx", -1, -1},
      {"+w:", -1, -1},      {"+w:x", -1, -1},     {"+r", -1, -1},        {"+ud:0,1", -1, -1},
      {"+s2", -1, -1},      {"uu", -1, -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (bf_arrow_format_n_buffers(cases[i].format) != cases[i].n_buffers ||
        bf_arrow_format_byte_width(cases[i].format) != cases[i].byte_width)
      fail_msg("format '%s': buffers %d width %d", cases[i].format,
               bf_arrow_format_n_buffers(cases[i].format), bf_arrow_format_byte_width(cases[i].format));
  }
  assert_int_equal(bf_arrow_format_n_buffers(NULL), -1);
  assert_int_equal(bf_arrow_format_byte_width(NULL), -1);
}

static void make_int_batch(struct ArrowArray *batch, int64_t first_value) {
  assert_int_equal(bf_arrow_array_init(batch, 1, 1), BF_OK);
  batch->length = 2;
  assert_int_equal(bf_arrow_array_init(batch->children[0], 2, 0), BF_OK);
  batch->children[0]->length = 2;
  int64_t values[] = {first_value, first_value + 1};
  bf_arrow_array_set_buffer(batch->children[0], 1, dup_bytes(values, sizeof values));
}

static void test_stream_from_batches(void **state) {
  (void)state;
  struct ArrowSchema schema;
  assert_int_equal(bf_arrow_schema_init(&schema, "+s", "", 0, 1), BF_OK);
  assert_int_equal(bf_arrow_schema_init(schema.children[0], "l", "v", 0, 0), BF_OK);
  struct ArrowArray batches[3];
  for (int i = 0; i < 3; i++) make_int_batch(&batches[i], 10 * i);

  struct ArrowArrayStream stream;
  assert_int_equal(bf_arrow_stream_from_batches(&schema, batches, 3, &stream), BF_OK);
  assert_null(schema.release); /* moved in */
  for (int i = 0; i < 3; i++) assert_null(batches[i].release);

  struct ArrowSchema got_schema;
  assert_int_equal(stream.get_schema(&stream, &got_schema), 0);
  assert_string_equal(got_schema.children[0]->name, "v");
  got_schema.release(&got_schema);
  assert_int_equal(stream.get_schema(&stream, &got_schema), 0); /* repeatable */
  got_schema.release(&got_schema);

  struct ArrowArray out;
  assert_int_equal(stream.get_next(&stream, &out), 0);
  assert_non_null(out.release);
  assert_int_equal(((const int64_t *)out.children[0]->buffers[1])[1], 1);
  out.release(&out);
  /* Batches 1 and 2 are never taken: release must free them. */
  stream.release(&stream);
  assert_null(stream.release);

  for (int i = 0; i < 2; i++) make_int_batch(&batches[i], i);
  assert_int_equal(bf_arrow_schema_init(&schema, "+s", "", 0, 0), BF_OK);
  assert_int_equal(bf_arrow_stream_from_batches(&schema, batches, 2, &stream), BF_OK);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(stream.get_next(&stream, &out), 0);
    assert_non_null(out.release);
    out.release(&out);
  }
  assert_int_equal(stream.get_next(&stream, &out), 0);
  assert_null(out.release); /* end of stream */
  assert_int_equal(stream.get_next(&stream, &out), 0);
  assert_null(out.release);
  stream.release(&stream);

  assert_int_equal(bf_arrow_schema_init(&schema, "+s", "", 0, 0), BF_OK);
  assert_int_equal(bf_arrow_stream_from_batches(&schema, NULL, 0, &stream), BF_OK);
  assert_int_equal(stream.get_next(&stream, &out), 0);
  assert_null(out.release);
  stream.release(&stream);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schema_init_and_release),
      cmocka_unit_test(test_deep_copy_of_foreign_schema),
      cmocka_unit_test(test_array_init_buffers_and_dictionary),
      cmocka_unit_test(test_bits),
      cmocka_unit_test(test_format_layouts),
      cmocka_unit_test(test_stream_from_batches),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
