/* Decoded size of Arrow arrays: how many bytes a batch occupies once every value
 * is materialised (dictionaries expanded, string views resolved, list and struct
 * children counted over the ranges the parent references). The server refuses a
 * batch whose decoded size exceeds its bound before any of it reaches the WAL,
 * because a small IPC message can reference one large value many times (a
 * dictionary of one 1 MB string indexed 20,000 times is 20 GB decoded).
 *
 * Sums saturate at INT64_MAX, so hostile lengths cannot wrap the total. The
 * arrays are assumed valid (offsets, views and indices checked by the IPC reader). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/arrow.h"

static int64_t add_sat(int64_t a, int64_t b) {
  if (b < 0) b = 0;
  return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t mul_sat(int64_t a, int64_t b) {
  if (a <= 0 || b <= 0) return 0;
  return a > INT64_MAX / b ? INT64_MAX : a * b;
}

static int64_t read_offset(const void *offsets, int wide, int64_t i) {
  if (wide) {
    int64_t v;
    memcpy(&v, (const uint8_t *)offsets + 8 * i, 8);
    return v;
  }
  int32_t v;
  memcpy(&v, (const uint8_t *)offsets + 4 * i, 4);
  return v;
}

static int is_format(const char *format, const char *want) { return strcmp(format, want) == 0; }

/* Integer dictionary index of row i for index format c/s/i/l (and unsigned C/S/I/L). */
static int64_t read_index(const char *format, const void *indices, int64_t i) {
  const uint8_t *p = indices;
  switch (format[0]) {
    case 'c': return (int8_t)p[i];
    case 'C': return p[i];
    case 's': { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case 'S': { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case 'i': { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case 'I': { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case 'l':
    case 'L': { int64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    default: return -1;
  }
}

static int64_t range_size(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t start,
                          int64_t length);

/* Decoded size of the single value at logical position i of a (used for
 * dictionary values, which are referenced one by one). */
static int64_t value_size(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t i) {
  return range_size(s, a, i, 1);
}

static int64_t range_size(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t start,
                          int64_t length) {
  if (length <= 0 || a == NULL) return 0;
  const char *f = s->format;
  int64_t at = a->offset + start;
  int64_t bytes = a->null_count != 0 ? (length + 7) / 8 : 0;
  if (s->dictionary && a->dictionary) {
    int width = bf_arrow_format_byte_width(f);
    bytes = add_sat(bytes, mul_sat(length, width > 0 ? width : 8));
    const uint8_t *validity = a->null_count != 0 ? a->buffers[0] : NULL;
    const void *indices = a->buffers[1];
    if (indices == NULL) return bytes;
    /* each entry's size once (not once per row: a batch id is one entry for
     * every row), unless the dictionary is longer than the slice */
    int64_t n_dict = a->dictionary->length;
    int64_t *sizes = n_dict > 0 && n_dict <= length ? malloc((size_t)n_dict * sizeof *sizes) : NULL;
    for (int64_t k = 0; sizes && k < n_dict; k++)
      sizes[k] = value_size(s->dictionary, a->dictionary, k);
    for (int64_t i = at; i < at + length; i++) {
      if (validity && !bf_arrow_bit_get(validity, i)) continue;
      int64_t index = read_index(f, indices, i);
      if (index >= 0 && index < n_dict)
        bytes = add_sat(bytes,
                        sizes ? sizes[index] : value_size(s->dictionary, a->dictionary, index));
    }
    free(sizes);
    return bytes;
  }
  if (is_format(f, "u") || is_format(f, "z") || is_format(f, "U") || is_format(f, "Z")) {
    int wide = f[0] == 'U' || f[0] == 'Z';
    bytes = add_sat(bytes, mul_sat(length + 1, wide ? 8 : 4));
    if (a->buffers[1] == NULL) return bytes;
    return add_sat(bytes, read_offset(a->buffers[1], wide, at + length) -
                              read_offset(a->buffers[1], wide, at));
  }
  if (is_format(f, "vu") || is_format(f, "vz")) {
    bytes = add_sat(bytes, mul_sat(length, 16));
    const uint8_t *views = a->buffers[1];
    if (views == NULL) return bytes;
    for (int64_t i = at; i < at + length; i++) {
      int32_t len;
      memcpy(&len, views + 16 * i, 4);
      if (len > 12) bytes = add_sat(bytes, len);
    }
    return bytes;
  }
  if (is_format(f, "+l") || is_format(f, "+L") || is_format(f, "+m")) {
    int wide = f[1] == 'L';
    bytes = add_sat(bytes, mul_sat(length + 1, wide ? 8 : 4));
    if (a->buffers[1] == NULL || a->n_children < 1 || s->n_children < 1) return bytes;
    int64_t first = read_offset(a->buffers[1], wide, at);
    int64_t last = read_offset(a->buffers[1], wide, at + length);
    return add_sat(bytes, range_size(s->children[0], a->children[0], first, last - first));
  }
  if (strncmp(f, "+w:", 3) == 0) {
    int64_t n = 0;
    for (const char *p = f + 3; *p >= '0' && *p <= '9'; p++) n = n * 10 + (*p - '0');
    if (a->n_children < 1 || s->n_children < 1) return bytes;
    return add_sat(bytes, range_size(s->children[0], a->children[0], mul_sat(at, n),
                                     mul_sat(length, n)));
  }
  if (is_format(f, "+s")) {
    for (int64_t c = 0; c < s->n_children && c < a->n_children; c++)
      bytes = add_sat(bytes, range_size(s->children[c], a->children[c], at, length));
    return bytes;
  }
  int width = bf_arrow_format_byte_width(f);
  if (width == 0) return add_sat(bytes, (length + 7) / 8); /* booleans */
  if (width > 0) return add_sat(bytes, mul_sat(length, width));
  return add_sat(bytes, mul_sat(length, 16)); /* anything else: a conservative guess */
}

int64_t bf_arrow_decoded_size(const struct ArrowSchema *schema, const struct ArrowArray *array) {
  return range_size(schema, array, 0, array->length);
}
