/* Arrow IPC stream writer: the Schema message once, then per batch one
 * DictionaryBatch for every dictionary-encoded field (a full replacement, isDelta
 * false, ids assigned depth-first in schema order) followed by the RecordBatch,
 * then the end-of-stream marker, all appended to a caller-owned buffer (see
 * ipc_internal.h for the framing). Metadata version V5, little-endian, no body
 * compression. Sliced arrays (non-zero offsets at any level) are normalised while
 * writing: bitmaps are re-packed and offsets re-based, so the output is always a
 * plain zero-offset batch; buffers that need no change are referenced, not copied,
 * until the message is appended. Several batches can be written as one RecordBatch
 * (bf_ipc_writer_write_many: each body buffer is the batches' buffers back to back,
 * bitmaps re-packed and offsets re-based), which costs no more copying than writing
 * them one by one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/ipc.h"
#include "ipc/ipc_internal.h"

/* ---- schema ------------------------------------------------------------------- */

static int write_field(fb_builder_t *b, const struct ArrowSchema *field, size_t at, int depth,
                       int64_t *next_dict_id, bf_error_t *err) {
  if (depth > BF_IPC_MAX_DEPTH) return bf_error_set(err, BF_EINVAL, "schema nested too deeply");
  /* A dictionary-encoded field is described by its value type; the index type goes
   * into the DictionaryEncoding table. */
  const struct ArrowSchema *value = field->dictionary ? field->dictionary : field;
  const char *name = field->name ? field->name : "";
  fb_builder_t scratch; /* the union tag must be known before the table is written */
  fb_builder_init(&scratch);
  uint8_t type_type = 0, index_type_type = 0;
  size_t ignored;
  int status = bf__ipc_encode_type(&scratch, value->format, &type_type, &ignored);
  if (status == BF_OK && field->dictionary)
    status = bf__ipc_encode_type(&scratch, field->format, &index_type_type, &ignored);
  fb_builder_reset(&scratch);
  if (status != BF_OK || (field->dictionary && index_type_type != BF_IPC_TYPE_INT))
    return bf_error_set(err, BF_EINVAL, "column '%s': unsupported Arrow format '%s'", name,
                        field->dictionary ? field->format : value->format);
  fb_field_t f[6] = {{.id = 0, .size = 4, .is_offset = 1},
                     {.id = 1, .size = 1, .value = (field->flags & ARROW_FLAG_NULLABLE) ? 1 : 0},
                     {.id = 2, .size = 1, .value = type_type},
                     {.id = 3, .size = 4, .is_offset = 1},
                     {.id = 5, .size = 4, .is_offset = 1},
                     {.id = 4, .size = 4, .is_offset = 1}};
  size_t table = fb_table(b, f, field->dictionary ? 6 : 5);
  fb_patch(b, at, table);
  fb_patch(b, f[0].pos, fb_string(b, name, strlen(name)));
  size_t type_pos = 0;
  bf__ipc_encode_type(b, value->format, &type_type, &type_pos);
  fb_patch(b, f[3].pos, type_pos);
  if (field->dictionary) {
    fb_field_t enc[3] = {{.id = 0, .size = 8, .value = (uint64_t)(*next_dict_id)++},
                         {.id = 1, .size = 4, .is_offset = 1},
                         {.id = 2, .size = 1,
                          .value = (field->flags & ARROW_FLAG_DICTIONARY_ORDERED) ? 1 : 0}};
    size_t enc_pos = fb_table(b, enc, 3);
    fb_patch(b, f[5].pos, enc_pos);
    size_t index_pos = 0;
    bf__ipc_encode_type(b, field->format, &index_type_type, &index_pos);
    fb_patch(b, enc[1].pos, index_pos);
  }
  size_t children = fb_offset_vector(b, (size_t)value->n_children);
  fb_patch(b, f[4].pos, children);
  for (int64_t i = 0; i < value->n_children; i++)
    BF_RETURN_NOT_OK(write_field(b, value->children[i], children + 4 + 4 * (size_t)i, depth + 1,
                                 next_dict_id, err));
  return BF_OK;
}

/* Appends one encapsulated message: metadata flatbuffer + body segments. A body
 * buffer is one or more segments (several when batches are concatenated); the
 * last segment of a buffer is padded to 8 bytes. */
typedef struct segment {
  const void *ptr;
  size_t len;
  void *owned;
  int pad; /* the buffer ends here: pad to 8 */
} segment_t;

typedef struct batch_parts {
  bf_buffer_t nodes;    /* 16-byte FieldNode structs */
  bf_buffer_t buffers;  /* 16-byte Buffer structs */
  bf_buffer_t variadic; /* int64 counts */
  segment_t *segments;
  size_t n_segments, cap_segments;
  int64_t body_size;
} batch_parts_t;

/* Rows [offset, offset + length) of one array (its own offset not included): a
 * node is written from a list of pieces, concatenated in order. */
typedef struct piece {
  const struct ArrowArray *array;
  int64_t offset;
  int64_t length;
} piece_t;

static void parts_reset(batch_parts_t *p) {
  bf_buffer_reset(&p->nodes);
  bf_buffer_reset(&p->buffers);
  bf_buffer_reset(&p->variadic);
  for (size_t i = 0; i < p->n_segments; i++) free(p->segments[i].owned);
  free(p->segments);
}

static int emit_message(bf_buffer_t *out, fb_builder_t *meta, const batch_parts_t *parts) {
  size_t meta_len = (meta->buf.size + 7) & ~(size_t)7;
  uint32_t marker = 0xFFFFFFFFu;
  int32_t len = (int32_t)meta_len;
  BF_RETURN_NOT_OK(bf_buffer_reserve(out, 8 + meta_len + (parts ? (size_t)parts->body_size : 0)));
  BF_RETURN_NOT_OK(bf_buffer_append(out, &marker, 4));
  BF_RETURN_NOT_OK(bf_buffer_append(out, &len, 4));
  BF_RETURN_NOT_OK(bf_buffer_append(out, meta->buf.data, meta->buf.size));
  BF_RETURN_NOT_OK(bf_buffer_append_zeros(out, meta_len - meta->buf.size));
  if (parts) {
    for (size_t i = 0; i < parts->n_segments; i++) {
      BF_RETURN_NOT_OK(bf_buffer_append(out, parts->segments[i].ptr, parts->segments[i].len));
      if (parts->segments[i].pad) BF_RETURN_NOT_OK(bf_buffer_pad(out, 8));
    }
  }
  return BF_OK;
}

static size_t message_header(fb_builder_t *b, uint8_t header_type, int64_t body_len,
                             size_t *header_at) {
  size_t root = fb_root(b);
  fb_field_t f[4] = {{.id = 0, .size = 2, .value = BF_IPC_METADATA_V5},
                     {.id = 1, .size = 1, .value = header_type},
                     {.id = 2, .size = 4, .is_offset = 1},
                     {.id = 3, .size = 8, .value = (uint64_t)body_len}};
  size_t table = fb_table(b, f, 4);
  fb_patch(b, root, table);
  *header_at = f[2].pos;
  return table;
}

int bf_ipc_writer_init(bf_ipc_writer_t *writer, const struct ArrowSchema *schema,
                       bf_buffer_t *out, bf_error_t *err) {
  if (strcmp(schema->format, "+s") != 0)
    return bf_error_set(err, BF_EINVAL, "IPC stream schema must be a struct, got '%s'", schema->format);
  size_t start = out->size;
  fb_builder_t b;
  fb_builder_init(&b);
  size_t header_at;
  message_header(&b, BF_IPC_HEADER_SCHEMA, 0, &header_at);
  fb_field_t sf[2] = {{.id = 0, .size = 2, .value = 0 /* Little */},
                      {.id = 1, .size = 4, .is_offset = 1}};
  size_t schema_table = fb_table(&b, sf, 2);
  fb_patch(&b, header_at, schema_table);
  size_t fields = fb_offset_vector(&b, (size_t)schema->n_children);
  fb_patch(&b, sf[1].pos, fields);
  int status = BF_OK;
  int64_t next_dict_id = 0;
  for (int64_t i = 0; i < schema->n_children && status == BF_OK; i++)
    status = write_field(&b, schema->children[i], fields + 4 + 4 * (size_t)i, 1, &next_dict_id, err);
  if (status == BF_OK && b.status != BF_OK) status = bf_error_set(err, b.status, "out of memory");
  struct ArrowSchema copy;
  if (status == BF_OK && bf_arrow_schema_deep_copy(schema, &copy) != BF_OK)
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
  if (status == BF_OK) {
    status = emit_message(out, &b, NULL);
    if (status != BF_OK) {
      out->size = start;
      bf_arrow_schema_release(&copy);
      bf_error_set(err, status, "out of memory");
    }
  }
  fb_builder_reset(&b);
  if (status != BF_OK) return status;
  writer->out = out;
  bf_arrow_schema_move(&copy, &writer->schema);
  writer->n_batches = 0;
  writer->finished = 0;
  return BF_OK;
}

/* ---- record batch ----------------------------------------------------------------- */

/* Appends a segment to the body buffer being built (no Buffer entry, no padding). */
static int push_segment(batch_parts_t *p, const void *ptr, size_t len, void *owned) {
  if (p->n_segments == p->cap_segments) {
    size_t cap = p->cap_segments ? 2 * p->cap_segments : 16;
    segment_t *grown = realloc(p->segments, cap * sizeof *grown);
    if (grown == NULL) {
      free(owned);
      return BF_ENOMEM;
    }
    p->segments = grown;
    p->cap_segments = cap;
  }
  p->segments[p->n_segments++] = (segment_t){ptr, len, owned, 0};
  p->body_size += (int64_t)len;
  return BF_OK;
}

/* Closes the body buffer that started at body offset `start`: its Buffer entry,
 * and padding after its last segment. */
static int end_buffer(batch_parts_t *p, int64_t start) {
  int64_t length = p->body_size - start;
  if (length > 0) p->segments[p->n_segments - 1].pad = 1;
  p->body_size = (p->body_size + 7) & ~(int64_t)7;
  BF_RETURN_NOT_OK(bf_buffer_append(&p->buffers, &start, 8));
  return bf_buffer_append(&p->buffers, &length, 8);
}

/* One body buffer made of one segment. */
static int add_segment(batch_parts_t *p, const void *ptr, size_t len, void *owned) {
  int64_t start = p->body_size;
  BF_RETURN_NOT_OK(push_segment(p, ptr, len, owned));
  return end_buffer(p, start);
}

/* Copies bits [src_at, src_at + n) of src to dst from bit dst_at on; src NULL
 * means all bits set. Bits of dst outside the range are kept. */
static void copy_bits(uint8_t *dst, int64_t dst_at, const uint8_t *src, int64_t src_at, int64_t n) {
  int64_t i = 0;
  for (; i < n && (dst_at + i) % 8 != 0; i++)
    bf_arrow_bit_set(dst, dst_at + i, src == NULL || bf_arrow_bit_get(src, src_at + i));
  int64_t n_bytes = (n - i) / 8;
  uint8_t *d = dst + (dst_at + i) / 8;
  if (src == NULL) {
    memset(d, 0xFF, (size_t)n_bytes);
  } else if ((src_at + i) % 8 == 0) {
    memcpy(d, src + (src_at + i) / 8, (size_t)n_bytes);
  } else {
    const uint8_t *s = src + (src_at + i) / 8;
    int shift = (int)((src_at + i) % 8);
    for (int64_t k = 0; k < n_bytes; k++)
      d[k] = (uint8_t)((s[k] >> shift) | (s[k + 1] << (8 - shift)));
  }
  for (i += n_bytes * 8; i < n; i++)
    bf_arrow_bit_set(dst, dst_at + i, src == NULL || bf_arrow_bit_get(src, src_at + i));
}

/* The pieces' bitmaps (buffer `index` of each array; a piece whose array has no
 * nulls counts as all set when `index` is the validity) as one zero-offset bitmap
 * segment. A single byte-aligned piece is referenced, not copied. */
static int add_bitmaps(batch_parts_t *p, const piece_t *pieces, size_t n, int index) {
  int64_t total = 0;
  for (size_t k = 0; k < n; k++) total += pieces[k].length;
  size_t n_bytes = (size_t)((total + 7) / 8);
  if (n_bytes == 0) return add_segment(p, NULL, 0, NULL);
  if (n == 1) {
    const uint8_t *bits = pieces[0].array->buffers[index];
    int64_t at = pieces[0].offset;
    if (at % 8 == 0) return add_segment(p, bits + at / 8, n_bytes, NULL);
  }
  uint8_t *copy = calloc(n_bytes, 1);
  if (copy == NULL) return BF_ENOMEM;
  int64_t at = 0;
  for (size_t k = 0; k < n; k++) {
    const struct ArrowArray *a = pieces[k].array;
    const uint8_t *bits = a->buffers[index];
    if (index == 0 && a->null_count == 0) bits = NULL;
    copy_bits(copy, at, bits, pieces[k].offset, pieces[k].length);
    at += pieces[k].length;
  }
  return add_segment(p, copy, n_bytes, copy);
}

static int64_t load_offset(const void *offsets, int width, int64_t i) {
  const uint8_t *at = (const uint8_t *)offsets + (size_t)i * (size_t)width;
  if (width == 4) {
    int32_t v;
    memcpy(&v, at, 4);
    return v;
  }
  int64_t v;
  memcpy(&v, at, 8);
  return v;
}

static void store_offset(uint8_t *offsets, int width, int64_t i, int64_t value) {
  if (width == 4) {
    int32_t v32 = (int32_t)value;
    memcpy(offsets + (size_t)i * 4, &v32, 4);
  } else {
    memcpy(offsets + (size_t)i * 8, &value, 8);
  }
}

/* The pieces' offsets (width 4 or 8) as one buffer starting at 0, each piece
 * re-based to follow the previous one; first[k] and last[k] receive piece k's
 * original first and last offsets. A zero-length array may come without an
 * offsets buffer; IPC still gets the single 0 offset. A single piece that already
 * starts at 0 is referenced, not copied. */
static int add_offsets(batch_parts_t *p, const piece_t *pieces, size_t n, int width, int64_t *first,
                       int64_t *last, bf_error_t *err) {
  static const int64_t zero = 0;
  int64_t total = 0;
  for (size_t k = 0; k < n; k++) {
    const void *offsets = pieces[k].array->buffers[1];
    if (pieces[k].length == 0 && offsets == NULL) {
      first[k] = last[k] = 0;
      continue;
    }
    first[k] = load_offset(offsets, width, pieces[k].offset);
    last[k] = load_offset(offsets, width, pieces[k].offset + pieces[k].length);
    total += pieces[k].length;
  }
  if (total == 0) return add_segment(p, &zero, (size_t)width, NULL);
  size_t n_bytes = (size_t)(total + 1) * (size_t)width;
  if (n == 1 && first[0] == 0)
    return add_segment(p, (const uint8_t *)pieces[0].array->buffers[1] + (size_t)pieces[0].offset * (size_t)width,
                       n_bytes, NULL);
  uint8_t *copy = malloc(n_bytes);
  if (copy == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  int64_t at = 0, base = 0;
  store_offset(copy, width, 0, 0);
  for (size_t k = 0; k < n; k++) {
    if (pieces[k].length == 0) continue;
    const void *offsets = pieces[k].array->buffers[1];
    int64_t shift = base - first[k];
    for (int64_t i = 1; i <= pieces[k].length; i++)
      store_offset(copy, width, at + i, load_offset(offsets, width, pieces[k].offset + i) + shift);
    at += pieces[k].length;
    base += last[k] - first[k];
    if (width == 4 && base > INT32_MAX) {
      free(copy);
      return bf_error_set(err, BF_EINVAL, "concatenated batch exceeds 32-bit offsets");
    }
  }
  return add_segment(p, copy, n_bytes, copy);
}

/* length * width bytes of each piece's values buffer, as one body buffer. */
static int add_values(batch_parts_t *p, const piece_t *pieces, size_t n, size_t width) {
  int64_t start = p->body_size;
  for (size_t k = 0; k < n; k++)
    if (pieces[k].length > 0)
      BF_RETURN_NOT_OK(push_segment(p, (const uint8_t *)pieces[k].array->buffers[1] +
                                           (size_t)pieces[k].offset * width,
                                    (size_t)pieces[k].length * width, NULL));
  return end_buffer(p, start);
}

/* The writer trusts array contents (it is handed C Data Interface arrays by our own
 * builders or by pyarrow) but not their shape: a node with too few buffers or
 * children for its format is an error, not an out-of-bounds read. */
static int check_shape(const struct ArrowSchema *schema, const struct ArrowArray *array,
                       bf_error_t *err) {
  int64_t n_buffers = bf_arrow_format_n_buffers(schema->format);
  if (n_buffers < 0)
    return bf_error_set(err, BF_EINVAL, "column '%s': unsupported Arrow format '%s'",
                        schema->name ? schema->name : "", schema->format);
  if (schema->format[0] == 'v') n_buffers += 1; /* the variadic sizes buffer */
  if (array->release == NULL || array->n_buffers < n_buffers ||
      array->n_children != schema->n_children || array->length < 0 || array->offset < 0)
    return bf_error_set(err, BF_EINVAL, "column '%s': array does not match its '%s' schema",
                        schema->name ? schema->name : "", schema->format);
  return BF_OK;
}

static int write_array(batch_parts_t *p, const struct ArrowSchema *schema, const piece_t *pieces,
                       size_t n, int depth, bf_error_t *err);

/* Writes child `index` of every piece's array over the given row ranges (NULL:
 * the pieces' own ranges) as one node. */
static int write_children(batch_parts_t *p, const struct ArrowSchema *schema, const piece_t *pieces,
                          size_t n, int64_t index, const int64_t *first, const int64_t *last,
                          int64_t scale, int depth, bf_error_t *err) {
  piece_t *kids = calloc(n ? n : 1, sizeof *kids);
  if (kids == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  for (size_t k = 0; k < n; k++) {
    kids[k].array = pieces[k].array->children[index];
    kids[k].offset = first ? first[k] : pieces[k].offset * scale;
    kids[k].length = first ? last[k] - first[k] : pieces[k].length * scale;
  }
  int status = write_array(p, schema->children[index], kids, n, depth + 1, err);
  free(kids);
  return status;
}

static int write_array(batch_parts_t *p, const struct ArrowSchema *schema, const piece_t *in,
                       size_t n, int depth, bf_error_t *err) {
  if (depth > BF_IPC_MAX_DEPTH) return bf_error_set(err, BF_EINVAL, "array nested too deeply");
  const char *fmt = schema->format;
  if (fmt[0] == 'v' && n > 1)
    return bf_error_set(err, BF_EINVAL, "column '%s': view arrays are written one batch at a time",
                        schema->name ? schema->name : "");
  int64_t small[2] = {0, 0}, *bounds = n == 1 ? small : malloc(2 * n * sizeof *bounds);
  piece_t one = {0}, *pieces = n == 1 ? &one : malloc(n * sizeof *pieces);
  if (bounds == NULL || pieces == NULL) {
    if (bounds != small) free(bounds);
    if (pieces != &one) free(pieces);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  int64_t *first = bounds, *last = bounds + n;
  int64_t length = 0, null_count = 0;
  int status = BF_OK;
  for (size_t k = 0; k < n && status == BF_OK; k++) {
    status = check_shape(schema, in[k].array, err);
    pieces[k] = in[k];
    pieces[k].offset += in[k].array->offset; /* from here on: physical rows */
    length += in[k].length;
    const uint8_t *validity = in[k].array->n_buffers > 0 ? in[k].array->buffers[0] : NULL;
    if (status == BF_OK && fmt[0] != 'n' && validity && in[k].array->null_count != 0)
      null_count += bf_arrow_count_nulls(validity, pieces[k].offset, pieces[k].length);
  }
  if (fmt[0] == 'n') null_count = length;
  int64_t node[2] = {length, null_count};
  if (status == BF_OK && bf_buffer_append(&p->nodes, node, sizeof node) != BF_OK)
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
  if (status != BF_OK || fmt[0] == 'n') goto done;
  if (null_count > 0)
    status = add_bitmaps(p, pieces, n, 0);
  else
    status = add_segment(p, NULL, 0, NULL);
  if (status != BF_OK) goto done;

  int width = bf_arrow_format_byte_width(fmt);
  if (fmt[0] == 'b') {
    status = add_bitmaps(p, pieces, n, 1);
  } else if (width > 0) {
    status = add_values(p, pieces, n, (size_t)width);
  } else if (fmt[0] == 'u' || fmt[0] == 'z' || fmt[0] == 'U' || fmt[0] == 'Z') {
    int ow = (fmt[0] == 'u' || fmt[0] == 'z') ? 4 : 8;
    status = add_offsets(p, pieces, n, ow, first, last, err);
    int64_t start = p->body_size;
    for (size_t k = 0; k < n && status == BF_OK; k++)
      if (last[k] > first[k])
        status = push_segment(p, (const uint8_t *)pieces[k].array->buffers[2] + first[k],
                              (size_t)(last[k] - first[k]), NULL);
    if (status == BF_OK) status = end_buffer(p, start);
  } else if (fmt[0] == 'v') {
    const struct ArrowArray *array = pieces[0].array;
    status = add_values(p, pieces, 1, 16);
    int64_t n_variadic = array->n_buffers - 3;
    const int64_t *sizes = array->buffers[array->n_buffers - 1];
    for (int64_t i = 0; i < n_variadic && status == BF_OK; i++)
      status = add_segment(p, array->buffers[2 + i], (size_t)sizes[i], NULL);
    if (status == BF_OK) status = bf_buffer_append(&p->variadic, &n_variadic, 8);
  } else if (fmt[0] == '+' && (fmt[1] == 'l' || fmt[1] == 'L' || fmt[1] == 'm')) {
    status = add_offsets(p, pieces, n, fmt[1] == 'L' ? 8 : 4, first, last, err);
    if (status == BF_OK) status = write_children(p, schema, pieces, n, 0, first, last, 1, depth, err);
  } else if (fmt[0] == '+' && fmt[1] == 'w') {
    status = write_children(p, schema, pieces, n, 0, NULL, NULL, atoi(fmt + 3), depth, err);
  } else if (fmt[0] == '+' && fmt[1] == 's') {
    for (int64_t i = 0; i < schema->n_children && status == BF_OK; i++)
      status = write_children(p, schema, pieces, n, i, NULL, NULL, 1, depth, err);
  } else {
    status = bf_error_set(err, BF_EINVAL, "unsupported Arrow format '%s'", fmt);
  }
done:
  if (status == BF_ENOMEM) bf_error_set(err, status, "out of memory");
  if (bounds != small) free(bounds);
  if (pieces != &one) free(pieces);
  return status;
}

/* Encodes `parts` as a RecordBatch table (header of a RecordBatch message, or the
 * `data` of a DictionaryBatch) and returns its position. */
static size_t record_batch_table(fb_builder_t *b, int64_t length, const batch_parts_t *parts) {
  size_t n_variadic = parts->variadic.size / 8;
  fb_field_t rb[4] = {{.id = 0, .size = 8, .value = (uint64_t)length},
                      {.id = 1, .size = 4, .is_offset = 1},
                      {.id = 2, .size = 4, .is_offset = 1},
                      {.id = 4, .size = 4, .is_offset = 1}};
  size_t table = fb_table(b, rb, n_variadic ? 4 : 3);
  fb_patch(b, rb[1].pos, fb_struct_vector(b, parts->nodes.data, parts->nodes.size / 16, 16));
  fb_patch(b, rb[2].pos, fb_struct_vector(b, parts->buffers.data, parts->buffers.size / 16, 16));
  if (n_variadic) fb_patch(b, rb[3].pos, fb_struct_vector(b, parts->variadic.data, n_variadic, 8));
  return table;
}

/* Writes a DictionaryBatch for every dictionary-encoded column, in the depth-first
 * order that write_field assigned their ids. */
static int write_dictionaries(bf_ipc_writer_t *writer, const struct ArrowSchema *schema,
                              const struct ArrowArray *array, int64_t *next_id, bf_error_t *err) {
  if (schema->dictionary) {
    const struct ArrowArray *dict = array->dictionary;
    if (dict == NULL)
      return bf_error_set(err, BF_EINVAL, "column '%s' is dictionary-encoded but has no dictionary",
                          schema->name ? schema->name : "");
    batch_parts_t parts = {0};
    piece_t whole = {dict, 0, dict->length};
    int status = write_array(&parts, schema->dictionary, &whole, 1, 1, err);
    if (status == BF_ENOMEM) bf_error_set(err, status, "out of memory");
    fb_builder_t b;
    fb_builder_init(&b);
    if (status == BF_OK) {
      size_t header_at;
      message_header(&b, BF_IPC_HEADER_DICTIONARY_BATCH, parts.body_size, &header_at);
      fb_field_t db[2] = {{.id = 0, .size = 8, .value = (uint64_t)(*next_id)++},
                          {.id = 1, .size = 4, .is_offset = 1}};
      size_t table = fb_table(&b, db, 2);
      fb_patch(&b, header_at, table);
      fb_patch(&b, db[1].pos, record_batch_table(&b, dict->length, &parts));
      status = b.status;
      if (status == BF_OK) status = emit_message(writer->out, &b, &parts);
      if (status != BF_OK) bf_error_set(err, status, "out of memory writing a dictionary");
    }
    fb_builder_reset(&b);
    parts_reset(&parts);
    BF_RETURN_NOT_OK(status);
    schema = schema->dictionary; /* nested dictionaries inside the value type */
    array = dict;
  }
  if (array->n_children != schema->n_children)
    return bf_error_set(err, BF_EINVAL, "column '%s': array does not match its schema",
                        schema->name ? schema->name : "");
  for (int64_t i = 0; i < schema->n_children; i++)
    BF_RETURN_NOT_OK(write_dictionaries(writer, schema->children[i], array->children[i], next_id, err));
  return BF_OK;
}

static int schema_has_dictionary_or_view(const struct ArrowSchema *schema) {
  if (schema->dictionary || schema->format[0] == 'v') return 1;
  for (int64_t i = 0; i < schema->n_children; i++)
    if (schema_has_dictionary_or_view(schema->children[i])) return 1;
  return 0;
}

int bf_ipc_writer_can_concat(const bf_ipc_writer_t *writer) {
  return !schema_has_dictionary_or_view(&writer->schema);
}

int bf_ipc_writer_write_many(bf_ipc_writer_t *writer, const struct ArrowArray *batches,
                             size_t n_batches, bf_error_t *err) {
  const struct ArrowSchema *schema = &writer->schema;
  if (writer->finished) return bf_error_set(err, BF_ECLOSED, "IPC stream already finished");
  if (n_batches == 0) return bf_error_set(err, BF_EINVAL, "no batch to write");
  if (n_batches > 1 && !bf_ipc_writer_can_concat(writer))
    return bf_error_set(err, BF_EINVAL, "batches with dictionary-encoded or view columns are "
                        "written one at a time");
  int64_t length = 0;
  for (size_t k = 0; k < n_batches; k++) {
    const struct ArrowArray *batch = &batches[k];
    if (batch->release == NULL || batch->length < 0 || batch->offset < 0 ||
        batch->n_children != schema->n_children)
      return bf_error_set(err, BF_EINVAL, "batch has %lld columns, schema has %lld",
                          (long long)batch->n_children, (long long)schema->n_children);
    length += batch->length;
  }
  size_t start = writer->out->size; /* a failed write leaves no partial message behind */
  int64_t next_dict_id = 0;
  batch_parts_t parts = {0};
  int status = BF_OK;
  for (int64_t i = 0; i < schema->n_children && status == BF_OK; i++)
    status = write_dictionaries(writer, schema->children[i], batches[0].children[i], &next_dict_id, err);
  piece_t one = {0}, *pieces = n_batches == 1 ? &one : malloc(n_batches * sizeof *pieces);
  if (pieces == NULL) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  for (int64_t i = 0; i < schema->n_children && status == BF_OK; i++) {
    for (size_t k = 0; k < n_batches; k++)
      pieces[k] = (piece_t){batches[k].children[i], batches[k].offset, batches[k].length};
    status = write_array(&parts, schema->children[i], pieces, n_batches, 1, err);
  }
  if (pieces != &one) free(pieces);
  fb_builder_t b;
  fb_builder_init(&b);
  if (status == BF_OK) {
    size_t header_at;
    message_header(&b, BF_IPC_HEADER_RECORD_BATCH, parts.body_size, &header_at);
    fb_patch(&b, header_at, record_batch_table(&b, length, &parts));
    status = b.status;
    if (status == BF_OK) status = emit_message(writer->out, &b, &parts);
    if (status != BF_OK) bf_error_set(err, status, "out of memory writing an IPC batch");
  }
  fb_builder_reset(&b);
  parts_reset(&parts);
  if (status != BF_OK) {
    writer->out->size = start;
    return status;
  }
  writer->n_batches++;
  return BF_OK;
}

int bf_ipc_writer_write(bf_ipc_writer_t *writer, const struct ArrowArray *batch, bf_error_t *err) {
  return bf_ipc_writer_write_many(writer, batch, 1, err);
}

int bf_ipc_writer_finish(bf_ipc_writer_t *writer, bf_error_t *err) {
  if (writer->finished) return BF_OK;
  uint32_t eos[2] = {0xFFFFFFFFu, 0};
  int status = bf_buffer_append(writer->out, eos, sizeof eos);
  if (status != BF_OK) return bf_error_set(err, status, "out of memory");
  writer->finished = 1;
  return BF_OK;
}

void bf_ipc_writer_reset(bf_ipc_writer_t *writer) { bf_arrow_schema_release(&writer->schema); }
