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
#include "ipc/ipc_test_pyarrow.h"

/* ---- deterministic data ------------------------------------------------------ */

static uint32_t rng_state = 1;

static uint32_t next_random(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return rng_state >> 8;
}

static void *dup_bytes(const void *src, size_t n) {
  void *p = malloc(n ? n : 1);
  assert_non_null(p);
  if (n) memcpy(p, src, n);
  return p;
}

static void *random_bytes(size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)next_random();
  return p;
}

/* ---- type specs ---------------------------------------------------------------- */

#define MAX_SPEC_CHILDREN 8

typedef struct spec {
  char format[64];
  int n_children;
  struct spec *children[MAX_SPEC_CHILDREN];
} spec_t;

static spec_t spec_pool[256];
static size_t spec_used;

static const char *parse_spec(const char *text, spec_t **out) {
  assert_true(spec_used < sizeof spec_pool / sizeof spec_pool[0]);
  spec_t *node = &spec_pool[spec_used++];
  memset(node, 0, sizeof *node);
  size_t n = strcspn(text, "[;]");
  assert_true(n > 0 && n < sizeof node->format);
  memcpy(node->format, text, n);
  text += n;
  if (text[0] == '[' && text[1] == ']') {
    text += 2;
  } else if (*text == '[') {
    do {
      assert_true(node->n_children < MAX_SPEC_CHILDREN);
      text = parse_spec(text + 1, &node->children[node->n_children++]);
    } while (*text == ';');
    assert_int_equal(*text, ']');
    text++;
  }
  *out = node;
  return text;
}

static spec_t *spec(const char *text) {
  spec_t *root;
  spec_used = 0;
  assert_int_equal(*parse_spec(text, &root), '\0');
  return root;
}

/* ---- column generation ----------------------------------------------------------- */

/* Physical row i is null when nulls are on and i % 3 == 1. */
static void set_validity(struct ArrowArray *a, int64_t n, bool nulls) {
  if (!nulls) return;
  uint8_t *bits = calloc((size_t)(n + 7) / 8 + 1, 1);
  assert_non_null(bits);
  int64_t null_count = 0;
  for (int64_t i = 0; i < n; i++) {
    if (i % 3 == 1)
      null_count++;
    else
      bf_arrow_bit_set(bits, i, true);
  }
  bf_arrow_array_set_buffer(a, 0, bits);
  a->null_count = null_count;
}

static void store_offset(void *offsets, int width, int64_t i, int64_t value) {
  if (width == 4) {
    int32_t v = (int32_t)value;
    memcpy((uint8_t *)offsets + 4 * i, &v, 4);
  } else {
    memcpy((uint8_t *)offsets + 8 * i, &value, 8);
  }
}

static void build(const spec_t *sp, struct ArrowSchema *s, struct ArrowArray *a, const char *name,
                  int64_t n, bool nulls, int64_t pad);

/* Builds n logical rows preceded by `pad` physical rows that the array's offset
 * skips, so every node of every column exercises the writer's offset handling. */
static void build(const spec_t *sp, struct ArrowSchema *s, struct ArrowArray *a, const char *name,
                  int64_t n, bool nulls, int64_t pad) {
  const char *f = sp->format;
  int64_t rows = n + pad;
  int64_t flags = nulls ? ARROW_FLAG_NULLABLE : 0;
  if (strncmp(f, "dict:", 5) == 0) {
    assert_int_equal(bf_arrow_schema_init(s, f + 5, name, flags, 0), BF_OK);
    s->dictionary = calloc(1, sizeof *s->dictionary);
    int width = bf_arrow_format_byte_width(f + 5);
    assert_int_equal(bf_arrow_array_init(a, 2, 0), BF_OK);
    uint8_t *indices = calloc((size_t)rows, (size_t)width);
    int64_t n_values = 7;
    for (int64_t i = 0; i < rows; i++) {
      int64_t index = (i * 5 + 3) % n_values;
      memcpy(indices + i * width, &index, (size_t)width); /* little-endian truncation */
    }
    bf_arrow_array_set_buffer(a, 1, indices);
    set_validity(a, rows, nulls);
    build(sp->children[0], s->dictionary, bf_arrow_array_alloc_dictionary(a), "", n_values, false, 2);
    s->dictionary->flags = ARROW_FLAG_NULLABLE; /* IPC has no field for it; readers say nullable */
    a->offset = pad;
    a->length = n;
    return;
  }
  int n_buffers = bf_arrow_format_n_buffers(f);
  assert_true(n_buffers >= 0);
  int n_variadic = f[0] == 'v' ? 2 : 0;
  assert_int_equal(bf_arrow_schema_init(s, f, name, flags, sp->n_children), BF_OK);
  assert_int_equal(bf_arrow_array_init(a, n_buffers + n_variadic + (n_variadic ? 1 : 0), sp->n_children),
                   BF_OK);
  a->offset = pad;
  a->length = n;
  if (f[0] == 'n') {
    a->null_count = n;
    return;
  }
  set_validity(a, rows, nulls);
  int width = bf_arrow_format_byte_width(f);
  if (f[0] == 'b') {
    bf_arrow_array_set_buffer(a, 1, random_bytes((size_t)(rows + 7) / 8));
  } else if (width > 0) {
    bf_arrow_array_set_buffer(a, 1, random_bytes((size_t)rows * (size_t)width));
  } else if (strchr("uzUZ", f[0]) && f[1] == '\0') {
    int ow = (f[0] == 'u' || f[0] == 'z') ? 4 : 8;
    void *offsets = malloc((size_t)(rows + 1) * (size_t)ow);
    int64_t total = 0;
    for (int64_t i = 0; i <= rows; i++) {
      store_offset(offsets, ow, i, total);
      total += i % 17;
    }
    total -= rows % 17;
    uint8_t *data = malloc((size_t)total + 1);
    for (int64_t i = 0; i < total; i++) data[i] = (uint8_t)('a' + i % 26);
    bf_arrow_array_set_buffer(a, 1, offsets);
    bf_arrow_array_set_buffer(a, 2, data);
  } else if (f[0] == 'v') {
    /* Rows alternate between two data buffers; lengths 0..29 mix inline (<= 12)
     * and out-of-line views. */
    uint8_t *views = calloc((size_t)rows + 1, 16);
    uint8_t *data[2] = {malloc((size_t)rows * 30 + 1), malloc((size_t)rows * 30 + 1)};
    int64_t *sizes = calloc(2, sizeof *sizes);
    for (int64_t i = 0; i < rows; i++) {
      int32_t len = (int32_t)(i * 7 % 30), buffer = (int32_t)(i % 2);
      int32_t offset = (int32_t)sizes[buffer];
      uint8_t *bytes = data[buffer] + offset;
      for (int32_t k = 0; k < len; k++) bytes[k] = (uint8_t)next_random();
      uint8_t *view = views + 16 * i;
      memcpy(view, &len, 4);
      if (len <= 12) {
        memcpy(view + 4, bytes, (size_t)len);
      } else {
        memcpy(view + 4, bytes, 4);
        memcpy(view + 8, &buffer, 4);
        memcpy(view + 12, &offset, 4);
        sizes[buffer] += len;
      }
    }
    bf_arrow_array_set_buffer(a, 1, views);
    bf_arrow_array_set_buffer(a, 2, data[0]);
    bf_arrow_array_set_buffer(a, 3, data[1]);
    bf_arrow_array_set_buffer(a, 4, sizes);
  } else if (f[0] == '+' && (f[1] == 'l' || f[1] == 'L' || f[1] == 'm')) {
    int ow = f[1] == 'L' ? 8 : 4;
    void *offsets = malloc((size_t)(rows + 1) * (size_t)ow);
    int64_t total = 0;
    for (int64_t i = 0; i <= rows; i++) {
      store_offset(offsets, ow, i, total);
      if (i < rows) total += i % 4;
    }
    bf_arrow_array_set_buffer(a, 1, offsets);
    build(sp->children[0], s->children[0], a->children[0], f[1] == 'm' ? "entries" : "item",
          total, f[1] != 'm' && nulls, 1);
  } else if (f[0] == '+' && f[1] == 'w') {
    int64_t size = atoi(f + 3);
    build(sp->children[0], s->children[0], a->children[0], "item", rows * size, nulls, 3);
  } else if (f[0] == '+' && f[1] == 's') {
    for (int i = 0; i < sp->n_children; i++) {
      char child_name[16];
      snprintf(child_name, sizeof child_name, "f%d", i);
      build(sp->children[i], s->children[i], a->children[i], child_name, rows, nulls, i % 3);
    }
  } else {
    fail_msg("spec format '%s' not generated", f);
  }
}

/* A one-batch table: struct root over the spec's top-level columns. */
static void make_table(const char *const *specs, int n_columns, int64_t n, bool nulls, int64_t pad,
                       struct ArrowSchema *schema, struct ArrowArray *batch) {
  assert_int_equal(bf_arrow_schema_init(schema, "+s", "", 0, n_columns), BF_OK);
  assert_int_equal(bf_arrow_array_init(batch, 1, n_columns), BF_OK);
  batch->length = n;
  for (int i = 0; i < n_columns; i++) {
    char name[16];
    snprintf(name, sizeof name, "c%d", i);
    build(spec(specs[i]), schema->children[i], batch->children[i], name, n, nulls, pad);
  }
}

/* ---- comparison ------------------------------------------------------------------- */

static bool is_valid(const struct ArrowArray *a, int64_t i) {
  const uint8_t *bits = a->n_buffers > 0 ? a->buffers[0] : NULL;
  return bits == NULL || a->null_count == 0 || bf_arrow_bit_get(bits, i);
}

static int64_t load_int(const void *buffer, int width, bool is_signed, int64_t i) {
  const uint8_t *p = (const uint8_t *)buffer + i * width;
  uint64_t raw = 0;
  memcpy(&raw, p, (size_t)width);
  if (is_signed && width < 8 && (raw >> (8 * width - 1)) & 1) raw |= ~(uint64_t)0 << (8 * width);
  return (int64_t)raw;
}

static void view_at(const struct ArrowArray *a, int64_t i, const uint8_t **bytes, int32_t *len) {
  const uint8_t *view = (const uint8_t *)a->buffers[1] + 16 * i;
  memcpy(len, view, 4);
  if (*len <= 12) {
    *bytes = view + 4;
    return;
  }
  int32_t buffer, offset;
  memcpy(&buffer, view + 8, 4);
  memcpy(&offset, view + 12, 4);
  *bytes = (const uint8_t *)a->buffers[2 + buffer] + offset;
}

/* Logical rows [xi, xi+n) of x equal rows [yi, yi+n) of y (offsets added here). */
static void assert_same_values(const struct ArrowSchema *s, const struct ArrowArray *x, int64_t xi,
                               const struct ArrowArray *y, int64_t yi, int64_t n) {
  const char *f = s->format;
  if (f[0] == 'n') return;
  int width = bf_arrow_format_byte_width(f);
  for (int64_t r = 0; r < n; r++) {
    int64_t i = x->offset + xi + r, j = y->offset + yi + r;
    bool valid = is_valid(x, i);
    assert_int_equal(valid, is_valid(y, j));
    if (!valid) continue;
    if (s->dictionary) {
      bool is_signed = strchr("csil", f[0]) != NULL;
      assert_same_values(s->dictionary, x->dictionary, load_int(x->buffers[1], width, is_signed, i),
                         y->dictionary, load_int(y->buffers[1], width, is_signed, j), 1);
    } else if (f[0] == 'b') {
      assert_int_equal(bf_arrow_bit_get(x->buffers[1], i), bf_arrow_bit_get(y->buffers[1], j));
    } else if (width > 0) {
      assert_memory_equal((const uint8_t *)x->buffers[1] + i * width,
                          (const uint8_t *)y->buffers[1] + j * width, (size_t)width);
    } else if (strchr("uzUZ", f[0]) && f[1] == '\0') {
      int ow = (f[0] == 'u' || f[0] == 'z') ? 4 : 8;
      int64_t x0 = load_int(x->buffers[1], ow, true, i), x1 = load_int(x->buffers[1], ow, true, i + 1);
      int64_t y0 = load_int(y->buffers[1], ow, true, j), y1 = load_int(y->buffers[1], ow, true, j + 1);
      assert_int_equal(x1 - x0, y1 - y0);
      if (x1 > x0)
        assert_memory_equal((const uint8_t *)x->buffers[2] + x0, (const uint8_t *)y->buffers[2] + y0,
                            (size_t)(x1 - x0));
    } else if (f[0] == 'v') {
      const uint8_t *xb, *yb;
      int32_t xl, yl;
      view_at(x, i, &xb, &xl);
      view_at(y, j, &yb, &yl);
      assert_int_equal(xl, yl);
      if (xl) assert_memory_equal(xb, yb, (size_t)xl);
    } else if (f[1] == 'l' || f[1] == 'L' || f[1] == 'm') {
      int ow = f[1] == 'L' ? 8 : 4;
      int64_t x0 = load_int(x->buffers[1], ow, true, i), x1 = load_int(x->buffers[1], ow, true, i + 1);
      int64_t y0 = load_int(y->buffers[1], ow, true, j), y1 = load_int(y->buffers[1], ow, true, j + 1);
      assert_int_equal(x1 - x0, y1 - y0);
      assert_same_values(s->children[0], x->children[0], x0, y->children[0], y0, x1 - x0);
    } else if (f[1] == 'w') {
      int64_t size = atoi(f + 3);
      assert_same_values(s->children[0], x->children[0], i * size, y->children[0], j * size, size);
    } else if (f[1] == 's') {
      for (int64_t c = 0; c < s->n_children; c++)
        assert_same_values(s->children[c], x->children[c], i, y->children[c], j, 1);
    } else {
      fail_msg("cannot compare format '%s'", f);
    }
  }
}

static void assert_same_schema(const struct ArrowSchema *x, const struct ArrowSchema *y) {
  assert_string_equal(x->format, y->format);
  assert_string_equal(x->name ? x->name : "", y->name ? y->name : "");
  assert_int_equal(x->flags & ARROW_FLAG_NULLABLE, y->flags & ARROW_FLAG_NULLABLE);
  assert_int_equal(x->n_children, y->n_children);
  for (int64_t i = 0; i < x->n_children; i++) assert_same_schema(x->children[i], y->children[i]);
  assert_int_equal(x->dictionary != NULL, y->dictionary != NULL);
  if (x->dictionary) assert_same_schema(x->dictionary, y->dictionary);
}

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

/* Writes n_batches copies of batch, reads them back and compares everything. */
static void assert_round_trip(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                              int n_batches) {
  bf_buffer_t out;
  write_stream(schema, batch, n_batches, &out);
  assert_int_equal(out.size % 8, 0);
  bf_error_t err;
  bf_error_init(&err);
  bf_ipc_reader_t *reader;
  int status = bf_ipc_reader_create(out.data, out.size, &reader, &err);
  if (status != BF_OK) fail_msg("reader: %s", err.message);
  struct ArrowSchema back_schema;
  assert_int_equal(bf_ipc_reader_schema(reader, &back_schema, &err), BF_OK);
  assert_same_schema(schema, &back_schema);
  for (int k = 0; k < n_batches; k++) {
    struct ArrowArray back;
    int has = 0;
    status = bf_ipc_reader_next(reader, &back, &has, &err);
    if (status != BF_OK) fail_msg("next: %s", err.message);
    assert_true(has);
    assert_int_equal(back.length, batch->length);
    assert_int_equal(back.offset, 0);
    for (int64_t c = 0; c < schema->n_children; c++) {
      assert_int_equal(back.children[c]->length, batch->length);
      assert_same_values(schema->children[c], batch->children[c], batch->offset, back.children[c], 0,
                         batch->length);
    }
    bf_arrow_array_release(&back);
  }
  struct ArrowArray end;
  int has = 1;
  assert_int_equal(bf_ipc_reader_next(reader, &end, &has, &err), BF_OK);
  assert_false(has);
  bf_arrow_schema_release(&back_schema);
  bf_ipc_reader_destroy(reader);
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
      cmocka_unit_test(test_write_many_concatenates),
      cmocka_unit_test(test_write_many_refuses_dictionaries),
      cmocka_unit_test(test_decodes_pyarrow_stream),
      cmocka_unit_test(test_rejects_compressed_bodies),
      cmocka_unit_test(test_writer_rejects_bad_input),
      cmocka_unit_test(test_truncation_at_every_byte_fails),
      cmocka_unit_test(test_byte_mutations_never_crash),
      cmocka_unit_test(test_rejects_malformed_framing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
