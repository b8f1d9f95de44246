/* Arrow IPC stream writer: the Schema message once, then per batch one
 * DictionaryBatch for every dictionary-encoded field (a full replacement, isDelta
 * false, ids assigned depth-first in schema order) followed by the RecordBatch,
 * then the end-of-stream marker, all appended to a caller-owned buffer (see
 * ipc_internal.h for the framing). Metadata version V5, little-endian, no body
 * compression. Sliced arrays (non-zero offsets at any level) are normalised while
 * writing: bitmaps are re-packed and offsets re-based, so the output is always a
 * plain zero-offset batch; buffers that need no change are referenced, not copied,
 * until the message is appended. */
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

/* Appends one encapsulated message: metadata flatbuffer + body segments. */
typedef struct segment {
  const void *ptr;
  size_t len;
  void *owned;
} segment_t;

typedef struct batch_parts {
  bf_buffer_t nodes;    /* 16-byte FieldNode structs */
  bf_buffer_t buffers;  /* 16-byte Buffer structs */
  bf_buffer_t variadic; /* int64 counts */
  segment_t *segments;
  size_t n_segments, cap_segments;
  int64_t body_size;
} batch_parts_t;

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
      BF_RETURN_NOT_OK(bf_buffer_pad(out, 8));
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

static int add_segment(batch_parts_t *p, const void *ptr, size_t len, void *owned) {
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
  int64_t offset = p->body_size;
  int64_t length = (int64_t)len;
  p->segments[p->n_segments++] = (segment_t){ptr, len, owned};
  p->body_size += (int64_t)((len + 7) & ~(size_t)7);
  BF_RETURN_NOT_OK(bf_buffer_append(&p->buffers, &offset, 8));
  return bf_buffer_append(&p->buffers, &length, 8);
}

/* Bitmap bits [offset, offset+length) as a fresh zero-offset bitmap segment. */
static int add_bitmap(batch_parts_t *p, const uint8_t *bits, int64_t offset, int64_t length) {
  size_t n_bytes = (size_t)((length + 7) / 8);
  if (n_bytes == 0) return add_segment(p, NULL, 0, NULL);
  if (offset % 8 == 0) return add_segment(p, bits + offset / 8, n_bytes, NULL);
  uint8_t *copy = calloc(n_bytes, 1);
  if (copy == NULL) return BF_ENOMEM;
  for (int64_t i = 0; i < length; i++)
    if (bf_arrow_bit_get(bits, offset + i)) bf_arrow_bit_set(copy, i, true);
  return add_segment(p, copy, n_bytes, copy);
}

/* Number of zero bits in [offset, offset+length). */
static int64_t count_nulls(const uint8_t *bits, int64_t offset, int64_t length) {
  int64_t set = 0, i = 0;
  for (; i < length && (offset + i) % 8 != 0; i++) set += bf_arrow_bit_get(bits, offset + i);
  for (; i + 8 <= length; i += 8) set += __builtin_popcount(bits[(offset + i) / 8]);
  for (; i < length; i++) set += bf_arrow_bit_get(bits, offset + i);
  return length - set;
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

/* Re-based copy of offsets[offset..offset+length] (width 4 or 8); *first and
 * *last are the original first and last offsets. A zero-length array may come
 * without an offsets buffer; IPC still gets the single 0 offset. */
static int add_offsets(batch_parts_t *p, const void *offsets, int width, int64_t offset,
                       int64_t length, int64_t *first, int64_t *last) {
  static const int64_t zero = 0;
  if (length == 0 && offsets == NULL) {
    *first = *last = 0;
    return add_segment(p, &zero, (size_t)width, NULL);
  }
  int64_t f = load_offset(offsets, width, offset);
  *first = f;
  *last = load_offset(offsets, width, offset + length);
  const uint8_t *base = (const uint8_t *)offsets + (size_t)offset * (size_t)width;
  size_t n_bytes = (size_t)(length + 1) * (size_t)width;
  if (f == 0) return add_segment(p, base, n_bytes, NULL);
  uint8_t *copy = malloc(n_bytes);
  if (copy == NULL) return BF_ENOMEM;
  for (int64_t i = 0; i <= length; i++) {
    int64_t v = load_offset(offsets, width, offset + i) - f;
    if (width == 4) {
      int32_t v32 = (int32_t)v;
      memcpy(copy + (size_t)i * 4, &v32, 4);
    } else {
      memcpy(copy + (size_t)i * 8, &v, 8);
    }
  }
  return add_segment(p, copy, n_bytes, copy);
}

/* length * width bytes of a values buffer starting at element `offset`. */
static int add_values(batch_parts_t *p, const void *values, int64_t offset, int64_t length,
                      size_t width) {
  if (length == 0) return add_segment(p, NULL, 0, NULL);
  return add_segment(p, (const uint8_t *)values + (size_t)offset * width, (size_t)length * width,
                     NULL);
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

static int write_array(batch_parts_t *p, const struct ArrowSchema *schema,
                       const struct ArrowArray *array, int64_t offset, int64_t length, int depth,
                       bf_error_t *err) {
  if (depth > BF_IPC_MAX_DEPTH) return bf_error_set(err, BF_EINVAL, "array nested too deeply");
  BF_RETURN_NOT_OK(check_shape(schema, array, err));
  const char *fmt = schema->format;
  offset += array->offset;
  const uint8_t *validity = array->n_buffers > 0 ? array->buffers[0] : NULL;
  int64_t null_count = 0;
  if (fmt[0] == 'n')
    null_count = length;
  else if (validity && array->null_count != 0)
    null_count = count_nulls(validity, offset, length);
  int64_t node[2] = {length, null_count};
  BF_RETURN_NOT_OK(bf_buffer_append(&p->nodes, node, sizeof node));
  if (fmt[0] == 'n') return BF_OK;
  if (null_count > 0)
    BF_RETURN_NOT_OK(add_bitmap(p, validity, offset, length));
  else
    BF_RETURN_NOT_OK(add_segment(p, NULL, 0, NULL));

  int width = bf_arrow_format_byte_width(fmt);
  if (fmt[0] == 'b') return add_bitmap(p, array->buffers[1], offset, length);
  if (width > 0) return add_values(p, array->buffers[1], offset, length, (size_t)width);
  if (fmt[0] == 'u' || fmt[0] == 'z' || fmt[0] == 'U' || fmt[0] == 'Z') {
    int ow = (fmt[0] == 'u' || fmt[0] == 'z') ? 4 : 8;
    int64_t first, last;
    BF_RETURN_NOT_OK(add_offsets(p, array->buffers[1], ow, offset, length, &first, &last));
    if (last == first) return add_segment(p, NULL, 0, NULL);
    return add_segment(p, (const uint8_t *)array->buffers[2] + first, (size_t)(last - first), NULL);
  }
  if (fmt[0] == 'v') {
    BF_RETURN_NOT_OK(add_values(p, array->buffers[1], offset, length, 16));
    int64_t n_variadic = array->n_buffers - 3;
    const int64_t *sizes = array->buffers[array->n_buffers - 1];
    for (int64_t i = 0; i < n_variadic; i++)
      BF_RETURN_NOT_OK(add_segment(p, array->buffers[2 + i], (size_t)sizes[i], NULL));
    return bf_buffer_append(&p->variadic, &n_variadic, 8);
  }
  if (fmt[0] == '+' && (fmt[1] == 'l' || fmt[1] == 'L' || fmt[1] == 'm')) {
    int64_t first, last;
    BF_RETURN_NOT_OK(add_offsets(p, array->buffers[1], fmt[1] == 'L' ? 8 : 4, offset, length,
                                 &first, &last));
    return write_array(p, schema->children[0], array->children[0], first, last - first, depth + 1,
                       err);
  }
  if (fmt[0] == '+' && fmt[1] == 'w') {
    int64_t n = atoi(fmt + 3);
    return write_array(p, schema->children[0], array->children[0], offset * n, length * n,
                       depth + 1, err);
  }
  if (fmt[0] == '+' && fmt[1] == 's') {
    for (int64_t i = 0; i < schema->n_children; i++)
      BF_RETURN_NOT_OK(
          write_array(p, schema->children[i], array->children[i], offset, length, depth + 1, err));
    return BF_OK;
  }
  return bf_error_set(err, BF_EINVAL, "unsupported Arrow format '%s'", fmt);
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
    int status = write_array(&parts, schema->dictionary, dict, 0, dict->length, 1, err);
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

int bf_ipc_writer_write(bf_ipc_writer_t *writer, const struct ArrowArray *batch, bf_error_t *err) {
  const struct ArrowSchema *schema = &writer->schema;
  if (writer->finished) return bf_error_set(err, BF_ECLOSED, "IPC stream already finished");
  if (batch->release == NULL || batch->length < 0 || batch->offset < 0 ||
      batch->n_children != schema->n_children)
    return bf_error_set(err, BF_EINVAL, "batch has %lld columns, schema has %lld",
                        (long long)batch->n_children, (long long)schema->n_children);
  size_t start = writer->out->size; /* a failed write leaves no partial message behind */
  int64_t next_dict_id = 0;
  batch_parts_t parts = {0};
  int status = BF_OK;
  for (int64_t i = 0; i < schema->n_children && status == BF_OK; i++)
    status = write_dictionaries(writer, schema->children[i], batch->children[i], &next_dict_id, err);
  for (int64_t i = 0; i < schema->n_children && status == BF_OK; i++) {
    status = write_array(&parts, schema->children[i], batch->children[i], batch->offset,
                         batch->length, 1, err);
    if (status == BF_ENOMEM) bf_error_set(err, status, "out of memory");
  }
  fb_builder_t b;
  fb_builder_init(&b);
  if (status == BF_OK) {
    size_t header_at;
    message_header(&b, BF_IPC_HEADER_RECORD_BATCH, parts.body_size, &header_at);
    fb_patch(&b, header_at, record_batch_table(&b, batch->length, &parts));
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

int bf_ipc_writer_finish(bf_ipc_writer_t *writer, bf_error_t *err) {
  if (writer->finished) return BF_OK;
  uint32_t eos[2] = {0xFFFFFFFFu, 0};
  int status = bf_buffer_append(writer->out, eos, sizeof eos);
  if (status != BF_OK) return bf_error_set(err, status, "out of memory");
  writer->finished = 1;
  return BF_OK;
}

void bf_ipc_writer_reset(bf_ipc_writer_t *writer) { bf_arrow_schema_release(&writer->schema); }
