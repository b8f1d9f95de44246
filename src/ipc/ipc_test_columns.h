/* Test helpers shared by the IPC unit tests (ipc_test.c, ipc_concat_test.c):
 * deterministic data, compact column type specs (Arrow format strings, children in
 * [...] separated by ';', "dict:<index>[<value>]" for dictionary encoding), column
 * generation with nulls and offsets on every node, and value-by-value comparison.
 * Header-only: each test program gets its own copy. */
#ifndef BIFROST_IPC_TEST_COLUMNS_H
#define BIFROST_IPC_TEST_COLUMNS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/arrow.h"

/* ---- deterministic data ------------------------------------------------------ */

static uint32_t rng_state = 1;

static inline uint32_t next_random(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return rng_state >> 8;
}

static inline void *dup_bytes(const void *src, size_t n) {
  void *p = malloc(n ? n : 1);
  assert_non_null(p);
  if (n) memcpy(p, src, n);
  return p;
}

static inline void *random_bytes(size_t n) {
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

static inline const char *parse_spec(const char *text, spec_t **out) {
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

static inline spec_t *spec(const char *text) {
  spec_t *root;
  spec_used = 0;
  assert_int_equal(*parse_spec(text, &root), '\0');
  return root;
}

/* ---- column generation ----------------------------------------------------------- */

/* Physical row i is null when nulls are on and i % 3 == 1. */
static inline void set_validity(struct ArrowArray *a, int64_t n, bool nulls) {
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

static inline void store_offset(void *offsets, int width, int64_t i, int64_t value) {
  if (width == 4) {
    int32_t v = (int32_t)value;
    memcpy((uint8_t *)offsets + 4 * i, &v, 4);
  } else {
    memcpy((uint8_t *)offsets + 8 * i, &value, 8);
  }
}

static inline void build(const spec_t *sp, struct ArrowSchema *s, struct ArrowArray *a, const char *name,
                  int64_t n, bool nulls, int64_t pad);

/* Builds n logical rows preceded by `pad` physical rows that the array's offset
 * skips, so every node of every column exercises the writer's offset handling. */
static inline void build(const spec_t *sp, struct ArrowSchema *s, struct ArrowArray *a, const char *name,
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
static inline void make_table(const char *const *specs, int n_columns, int64_t n, bool nulls, int64_t pad,
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

static inline bool is_valid(const struct ArrowArray *a, int64_t i) {
  const uint8_t *bits = a->n_buffers > 0 ? a->buffers[0] : NULL;
  return bits == NULL || a->null_count == 0 || bf_arrow_bit_get(bits, i);
}

static inline int64_t load_int(const void *buffer, int width, bool is_signed, int64_t i) {
  const uint8_t *p = (const uint8_t *)buffer + i * width;
  uint64_t raw = 0;
  memcpy(&raw, p, (size_t)width);
  if (is_signed && width < 8 && (raw >> (8 * width - 1)) & 1) raw |= ~(uint64_t)0 << (8 * width);
  return (int64_t)raw;
}

static inline void view_at(const struct ArrowArray *a, int64_t i, const uint8_t **bytes, int32_t *len) {
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
static inline void assert_same_values(const struct ArrowSchema *s, const struct ArrowArray *x, int64_t xi,
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

static inline void assert_same_schema(const struct ArrowSchema *x, const struct ArrowSchema *y) {
  assert_string_equal(x->format, y->format);
  assert_string_equal(x->name ? x->name : "", y->name ? y->name : "");
  assert_int_equal(x->flags & ARROW_FLAG_NULLABLE, y->flags & ARROW_FLAG_NULLABLE);
  assert_int_equal(x->n_children, y->n_children);
  for (int64_t i = 0; i < x->n_children; i++) assert_same_schema(x->children[i], y->children[i]);
  assert_int_equal(x->dictionary != NULL, y->dictionary != NULL);
  if (x->dictionary) assert_same_schema(x->dictionary, y->dictionary);
}

#endif /* BIFROST_IPC_TEST_COLUMNS_H */
