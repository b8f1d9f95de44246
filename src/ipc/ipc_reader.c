/* Arrow IPC stream reader. Decodes the Schema message into an owned ArrowSchema and
 * each RecordBatch into an owned ArrowArray whose buffers are copies of the input
 * (or, for a reader over a backing, the input's own aligned bytes, borrowed);
 * dictionary-encoded columns get their own copy of the latest DictionaryBatch for
 * their id (replacements are honoured, deltas and compressed bodies are refused
 * with BF_EINVAL). Untrusted input: every flatbuffer access is bounds-checked
 * (flatbuf.c), every buffer range is checked against the message body, buffers may
 * not overlap, nesting is limited to BF_IPC_MAX_DEPTH, and every length, null
 * count, offset, view and dictionary index is validated before an array is handed
 * out. Anything malformed is BF_ECORRUPT with a message; the reader never reads
 * outside the input, and after a failure it keeps returning that failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/ipc.h"
#include "ipc/ipc_internal.h"

/* A dictionary-encoded field: its value schema (owned by the reader's schema) and
 * where its latest DictionaryBatch lies in the input, decoded afresh for each
 * record batch so every batch owns its dictionary. */
typedef struct dict_entry {
  int64_t id;
  const struct ArrowSchema *value_schema;
  const uint8_t *meta; /* NULL until a DictionaryBatch arrived */
  size_t meta_len;
  size_t body_pos;
  int64_t body_len;
} dict_entry_t;

struct bf_ipc_reader {
  const uint8_t *data;
  size_t size;
  size_t pos;
  struct ArrowSchema schema; /* valid after create */
  dict_entry_t *dicts;
  size_t n_dicts;
  size_t field_budget; /* fields the Schema may still declare (shared subtables
                          could otherwise describe exponentially many) */
  int done;
  int failed; /* status of the first failed bf_ipc_reader_next; sticky */
  bf_shared_t *backing; /* data's owner when buffers are borrowed, else NULL */
};

#define CORRUPT(err, ...) bf_error_set(err, BF_ECORRUPT, "malformed Arrow IPC: " __VA_ARGS__)

/* Reads the next encapsulated message into fb/msg; body_pos and body_len locate its
 * body. Sets *eos at the end-of-stream marker. */
static int next_message(bf_ipc_reader_t *r, fb_reader_t *fb, fb_table_ref_t *msg, size_t *body_pos,
                        int64_t *body_len, int *eos, bf_error_t *err) {
  *eos = 0;
  if (r->pos == r->size) /* a cut after a whole message looks valid otherwise */
    return CORRUPT(err, "stream ends without the end-of-stream marker (truncated?)");
  if (r->size - r->pos < 4) return CORRUPT(err, "truncated message header at byte %zu", r->pos);
  uint32_t first;
  memcpy(&first, r->data + r->pos, 4);
  size_t p = r->pos + 4;
  int32_t meta_len;
  if (first == 0xFFFFFFFFu) {
    if (r->size - p < 4) return CORRUPT(err, "truncated message length at byte %zu", p);
    memcpy(&meta_len, r->data + p, 4);
    p += 4;
  } else {
    meta_len = (int32_t)first; /* pre-0.15 framing without continuation marker */
  }
  if (meta_len == 0) {
    *eos = 1;
    r->pos = p;
    return BF_OK;
  }
  if (meta_len < 0 || (size_t)meta_len > r->size - p)
    return CORRUPT(err, "metadata length %d exceeds the stream", meta_len);
  fb->data = r->data + p;
  fb->size = (size_t)meta_len;
  fb->bad = false;
  *msg = fb_read_root(fb);
  if (fb->bad || !msg->present) return CORRUPT(err, "unreadable Message flatbuffer");
  int16_t version = fb_i16(fb, msg, 0, 0);
  if (version < 3) return CORRUPT(err, "unsupported metadata version %d", version);
  *body_len = fb_i64(fb, msg, 3, 0);
  p += (size_t)meta_len;
  if (*body_len < 0 || (uint64_t)*body_len > r->size - p)
    return CORRUPT(err, "body length %lld exceeds the stream", (long long)*body_len);
  *body_pos = p;
  r->pos = p + (size_t)*body_len;
  return fb->bad ? CORRUPT(err, "unreadable Message flatbuffer") : BF_OK;
}

/* ---- schema ---------------------------------------------------------------------- */

static int read_field_named(bf_ipc_reader_t *r, fb_reader_t *fb, fb_table_ref_t *field,
                            const char *name_buf, struct ArrowSchema *out, int depth,
                            bf_error_t *err);

static int read_field(bf_ipc_reader_t *r, fb_reader_t *fb, fb_table_ref_t *field,
                      struct ArrowSchema *out, int depth, bf_error_t *err) {
  if (depth > BF_IPC_MAX_DEPTH) return CORRUPT(err, "schema nested deeper than %d", BF_IPC_MAX_DEPTH);
  if (r->field_budget == 0) return CORRUPT(err, "schema declares more fields than it has bytes for");
  r->field_budget--;
  const char *name = "";
  uint32_t name_len = 0;
  if (fb_has(fb, field, 0) && !fb_string_field(fb, field, 0, &name, &name_len))
    return CORRUPT(err, "bad field name");
  char *name_buf = malloc((size_t)name_len + 1);
  if (name_buf == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  memcpy(name_buf, name, name_len);
  name_buf[name_len] = '\0';
  int status = read_field_named(r, fb, field, name_buf, out, depth, err);
  free(name_buf);
  return status;
}

static int read_field_named(bf_ipc_reader_t *r, fb_reader_t *fb, fb_table_ref_t *field,
                            const char *name_buf, struct ArrowSchema *out, int depth,
                            bf_error_t *err) {
  char index_format[16] = "";
  bool is_dictionary = fb_has(fb, field, 4);
  int64_t dict_id = 0;
  int64_t dict_flags = 0;
  if (is_dictionary) {
    fb_table_ref_t enc = fb_child(fb, field, 4);
    if (fb->bad || !enc.present) return CORRUPT(err, "field '%s' has a bad dictionary encoding", name_buf);
    dict_id = fb_i64(fb, &enc, 0, 0);
    if (fb_u8(fb, &enc, 2, 0)) dict_flags = ARROW_FLAG_DICTIONARY_ORDERED;
    fb_table_ref_t index_type = fb_child(fb, &enc, 1);
    if (index_type.present) {
      if (bf__ipc_decode_type(fb, BF_IPC_TYPE_INT, &index_type, index_format, sizeof index_format) != BF_OK)
        return CORRUPT(err, "field '%s' has a bad dictionary index type", name_buf);
    } else {
      strcpy(index_format, "i");
    }
    for (size_t i = 0; i < r->n_dicts; i++)
      if (r->dicts[i].id == dict_id) return CORRUPT(err, "dictionary id %lld used twice", (long long)dict_id);
  }
  uint8_t type_type = fb_u8(fb, field, 2, 0);
  fb_table_ref_t type = fb_child(fb, field, 3);
  char format[256];
  if (fb->bad || !type.present) return CORRUPT(err, "field '%s' has no type", name_buf);
  int status = bf__ipc_decode_type(fb, type_type, &type, format, sizeof format);
  if (status == BF_EINVAL && type_type >= 1 && type_type <= BF_IPC_TYPE_LAST)
    return bf_error_set(err, BF_EINVAL, "column '%s': unsupported Arrow type id %d", name_buf,
                        type_type);
  if (status != BF_OK || fb->bad) return CORRUPT(err, "field '%s' has a bad type", name_buf);
  size_t children_pos = 0;
  uint32_t n_children = 0;
  if (fb_has(fb, field, 5) && !fb_vector(fb, field, 5, 4, &children_pos, &n_children))
    return CORRUPT(err, "field '%s' has bad children", name_buf);
  bool nested = format[0] == '+';
  if (!nested && n_children) return CORRUPT(err, "field '%s' of a flat type has children", name_buf);
  if ((format[1] == 'l' || format[1] == 'L' || format[1] == 'w' || format[1] == 'm') && nested &&
      n_children != 1)
    return CORRUPT(err, "list field '%s' must have exactly one child", name_buf);
  int64_t flags = fb_u8(fb, field, 1, 0) ? ARROW_FLAG_NULLABLE : 0;
  /* A dictionary-encoded field becomes an index-typed node whose dictionary node
   * carries the value type and the children. */
  struct ArrowSchema s;
  if (bf_arrow_schema_init(&s, is_dictionary ? index_format : format, name_buf,
                           flags | dict_flags, is_dictionary ? 0 : n_children) != BF_OK)
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  struct ArrowSchema *value = &s; /* where children go: the field, or its dictionary */
  if (is_dictionary) {
    dict_entry_t *grown = realloc(r->dicts, (r->n_dicts + 1) * sizeof *grown);
    if (grown) r->dicts = grown;
    s.dictionary = calloc(1, sizeof *s.dictionary);
    if (grown == NULL || s.dictionary == NULL ||
        bf_arrow_schema_init(s.dictionary, format, "", ARROW_FLAG_NULLABLE, n_children) != BF_OK) {
      bf_arrow_schema_release(&s); /* frees the dictionary node, released or not */
      return bf_error_set(err, BF_ENOMEM, "out of memory");
    }
    value = s.dictionary;
    r->dicts[r->n_dicts++] = (dict_entry_t){.id = dict_id, .value_schema = value};
  }
  for (uint32_t i = 0; i < n_children; i++) {
    fb_table_ref_t child = fb_vector_table(fb, children_pos, i);
    if (fb->bad || !child.present) {
      bf_arrow_schema_release(&s);
      return CORRUPT(err, "bad child of field '%s'", name_buf);
    }
    status = read_field(r, fb, &child, value->children[i], depth + 1, err);
    if (status != BF_OK) {
      bf_arrow_schema_release(&s);
      return status;
    }
  }
  if (strcmp(format, "+m") == 0 &&
      (strcmp(value->children[0]->format, "+s") != 0 || value->children[0]->n_children != 2)) {
    bf_arrow_schema_release(&s);
    return CORRUPT(err, "map field '%s' must hold a struct of key and value", name_buf);
  }
  bf_arrow_schema_move(&s, out);
  return BF_OK;
}

int bf_ipc_reader_create(const uint8_t *data, size_t size, bf_ipc_reader_t **out, bf_error_t *err) {
  bf_ipc_reader_t *r = calloc(1, sizeof *r);
  if (r == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  r->data = data;
  r->size = size;
  fb_reader_t fb;
  fb_table_ref_t msg;
  size_t body_pos = 0;
  int64_t body_len = 0;
  int eos;
  int status = next_message(r, &fb, &msg, &body_pos, &body_len, &eos, err);
  if (status != BF_OK) goto fail;
  if (eos || fb_u8(&fb, &msg, 1, 0) != BF_IPC_HEADER_SCHEMA) {
    status = CORRUPT(err, "stream does not start with a Schema message");
    goto fail;
  }
  fb_table_ref_t schema = fb_child(&fb, &msg, 2);
  size_t fields_pos = 0;
  uint32_t n_fields = 0;
  if (!schema.present || (fb_has(&fb, &schema, 1) && !fb_vector(&fb, &schema, 1, 4, &fields_pos, &n_fields)) ||
      fb.bad) {
    status = CORRUPT(err, "bad Schema message");
    goto fail;
  }
  if (fb_i16(&fb, &schema, 0, 0) != 0) {
    status = bf_error_set(err, BF_EINVAL, "big-endian Arrow IPC streams are not supported");
    goto fail;
  }
  r->field_budget = fb.size / 8; /* a Field costs far more than 8 bytes of metadata */
  if (bf_arrow_schema_init(&r->schema, "+s", "", 0, n_fields) != BF_OK) {
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
    goto fail;
  }
  for (uint32_t i = 0; i < n_fields; i++) {
    fb_table_ref_t field = fb_vector_table(&fb, fields_pos, i);
    if (fb.bad || !field.present) {
      status = CORRUPT(err, "bad field %u", i);
      goto fail;
    }
    status = read_field(r, &fb, &field, r->schema.children[i], 1, err);
    if (status != BF_OK) goto fail;
  }
  *out = r;
  return BF_OK;
fail:
  bf_arrow_schema_release(&r->schema);
  free(r->dicts);
  free(r);
  return status;
}

int bf_ipc_reader_schema(bf_ipc_reader_t *reader, struct ArrowSchema *out, bf_error_t *err) {
  if (bf_arrow_schema_deep_copy(&reader->schema, out) != BF_OK)
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  return BF_OK;
}

int bf_ipc_reader_create_borrowed(const uint8_t *data, size_t size, bf_shared_t *backing,
                                  bf_ipc_reader_t **out, bf_error_t *err) {
  BF_RETURN_NOT_OK(bf_ipc_reader_create(data, size, out, err));
  bf_shared_ref(backing);
  (*out)->backing = backing;
  return BF_OK;
}

void bf_ipc_reader_destroy(bf_ipc_reader_t *reader) {
  if (reader == NULL) return;
  bf_shared_unref(reader->backing);
  bf_arrow_schema_release(&reader->schema);
  free(reader->dicts);
  free(reader);
}

/* ---- record batch ----------------------------------------------------------------- */

typedef struct batch_ctx {
  bf_ipc_reader_t *reader;
  fb_reader_t *fb;
  const uint8_t *body;
  int64_t body_len;
  size_t nodes_pos;
  uint32_t n_nodes, next_node;
  size_t buffers_pos;
  uint32_t n_buffers, next_buffer;
  size_t variadic_pos;
  uint32_t n_variadic, next_variadic;
  int64_t copy_budget; /* body bytes left to copy: buffers may not overlap */
  bf_error_t *err;
} batch_ctx_t;

static int next_node(batch_ctx_t *c, int64_t *length, int64_t *null_count) {
  if (c->next_node >= c->n_nodes) return CORRUPT(c->err, "too few field nodes");
  size_t p = c->nodes_pos + 16 * (size_t)c->next_node++;
  *length = fb_read_i64_at(c->fb, p);
  *null_count = fb_read_i64_at(c->fb, p + 8);
  if (*length < 0 || *null_count < 0 || *null_count > *length || *length > ((int64_t)1 << 40))
    return CORRUPT(c->err, "bad field node (length %lld, nulls %lld)", (long long)*length,
                   (long long)*null_count);
  return BF_OK;
}

/* Attaches the next buffer to buffer slot `slot` of `a` (or only checks it when slot
 * is -1); requires at least `need` bytes. With a backing (bf_ipc_reader_create_borrowed)
 * an 8-byte-aligned buffer is borrowed in place, otherwise it is copied. *out points
 * at the attached bytes (never NULL on success, even when empty). */
static int next_buffer(batch_ctx_t *c, size_t need, struct ArrowArray *a, int64_t slot,
                       const void **out, size_t *out_len) {
  if (c->next_buffer >= c->n_buffers) return CORRUPT(c->err, "too few buffers");
  size_t p = c->buffers_pos + 16 * (size_t)c->next_buffer++;
  int64_t offset = fb_read_i64_at(c->fb, p), length = fb_read_i64_at(c->fb, p + 8);
  if (offset < 0 || length < 0 || offset > c->body_len || length > c->body_len - offset)
    return CORRUPT(c->err, "buffer [%lld, +%lld) outside the body", (long long)offset,
                   (long long)length);
  if ((size_t)length < need)
    return CORRUPT(c->err, "buffer of %lld bytes, %zu needed", (long long)length, need);
  if (length > c->copy_budget) return CORRUPT(c->err, "buffers overlap or exceed the body");
  c->copy_budget -= length;
  if (out_len) *out_len = (size_t)length;
  const uint8_t *src = c->body + offset;
  if (slot < 0) {
    *out = src;
    return BF_OK;
  }
  bf_shared_t *backing = c->reader->backing;
  if (backing != NULL && ((uintptr_t)src & 7) == 0) {
    bf_arrow_array_set_borrowed(a, slot, src, backing);
    *out = src;
    return BF_OK;
  }
  void *copy = malloc(length > 0 ? (size_t)length : 1);
  if (copy == NULL) return bf_error_set(c->err, BF_ENOMEM, "out of memory");
  if (length) memcpy(copy, src, (size_t)length);
  bf_arrow_array_set_buffer(a, slot, copy);
  *out = copy;
  return BF_OK;
}

static int check_offsets(batch_ctx_t *c, const void *offsets, int width, int64_t length,
                         int64_t limit, int64_t *last_out) {
  int64_t prev = 0;
  for (int64_t i = 0; i <= length; i++) {
    int64_t v;
    if (width == 4) {
      int32_t v32;
      memcpy(&v32, (const uint8_t *)offsets + 4 * i, 4);
      v = v32;
    } else {
      memcpy(&v, (const uint8_t *)offsets + 8 * i, 8);
    }
    if (v < 0 || (i > 0 && v < prev) || v > limit)
      return CORRUPT(c->err, "offsets not monotonic or out of range");
    prev = v;
  }
  *last_out = prev;
  return BF_OK;
}

static int read_array(batch_ctx_t *c, const struct ArrowSchema *schema, struct ArrowArray *out,
                      int depth);

static int read_array_body(batch_ctx_t *c, const struct ArrowSchema *schema, struct ArrowArray *a,
                           int depth) {
  const char *fmt = schema->format;
  int64_t length = a->length;
  if (fmt[0] == 'n') return BF_OK;
  const void *buf;
  BF_RETURN_NOT_OK(next_buffer(c, a->null_count ? (size_t)((length + 7) / 8) : 0, a,
                               a->null_count ? 0 : -1, &buf, NULL));
  int width = bf_arrow_format_byte_width(fmt);
  if (fmt[0] == 'b' && fmt[1] == '\0')
    return next_buffer(c, (size_t)((length + 7) / 8), a, 1, &buf, NULL);
  if (width > 0 && fmt[0] != '+') {
    if (length > c->body_len / width) return CORRUPT(c->err, "values exceed the body");
    return next_buffer(c, (size_t)length * (size_t)width, a, 1, &buf, NULL);
  }
  if ((fmt[0] == 'u' || fmt[0] == 'z' || fmt[0] == 'U' || fmt[0] == 'Z') && fmt[1] == '\0') {
    int ow = (fmt[0] == 'u' || fmt[0] == 'z') ? 4 : 8;
    const void *offsets, *data;
    size_t data_len;
    BF_RETURN_NOT_OK(next_buffer(c, (size_t)(length + 1) * (size_t)ow, a, 1, &offsets, NULL));
    BF_RETURN_NOT_OK(next_buffer(c, 0, a, 2, &data, &data_len));
    int64_t last;
    return check_offsets(c, offsets, ow, length, (int64_t)data_len, &last);
  }
  if (fmt[0] == 'v') {
    const void *views;
    BF_RETURN_NOT_OK(next_buffer(c, (size_t)length * 16, a, 1, &views, NULL));
    int64_t n_var = a->n_buffers - 3; /* sized by read_array from the variadic count */
    c->next_variadic++;
    int64_t *sizes = malloc((size_t)(n_var + 1) * sizeof *sizes);
    if (sizes == NULL) return bf_error_set(c->err, BF_ENOMEM, "out of memory");
    bf_arrow_array_set_buffer(a, 2 + n_var, sizes);
    for (int64_t i = 0; i < n_var; i++) {
      const void *data;
      size_t data_len;
      BF_RETURN_NOT_OK(next_buffer(c, 0, a, 2 + i, &data, &data_len));
      sizes[i] = (int64_t)data_len;
    }
    const uint8_t *v = views;
    for (int64_t i = 0; i < length; i++) {
      int32_t len, index, offset;
      memcpy(&len, v + 16 * i, 4);
      if (len < 0) return CORRUPT(c->err, "negative view length");
      if (len > 12) {
        memcpy(&index, v + 16 * i + 8, 4);
        memcpy(&offset, v + 16 * i + 12, 4);
        if (index < 0 || index >= n_var || offset < 0 || (int64_t)offset + len > sizes[index])
          return CORRUPT(c->err, "view points outside its data buffer");
      }
    }
    return BF_OK;
  }
  if (fmt[0] == '+' && (fmt[1] == 'l' || fmt[1] == 'L' || fmt[1] == 'm')) {
    int ow = fmt[1] == 'L' ? 8 : 4;
    const void *offsets;
    BF_RETURN_NOT_OK(next_buffer(c, (size_t)(length + 1) * (size_t)ow, a, 1, &offsets, NULL));
    BF_RETURN_NOT_OK(read_array(c, schema->children[0], a->children[0], depth + 1));
    int64_t last;
    return check_offsets(c, offsets, ow, length, a->children[0]->length, &last);
  }
  if (fmt[0] == '+' && fmt[1] == 'w') {
    BF_RETURN_NOT_OK(read_array(c, schema->children[0], a->children[0], depth + 1));
    int64_t n = atoi(fmt + 3);
    if (n > 0 && length > a->children[0]->length / n)
      return CORRUPT(c->err, "fixed-size list child too short");
    return BF_OK;
  }
  if (fmt[0] == '+' && fmt[1] == 's') {
    for (int64_t i = 0; i < schema->n_children; i++) {
      BF_RETURN_NOT_OK(read_array(c, schema->children[i], a->children[i], depth + 1));
      if (a->children[i]->length < length) return CORRUPT(c->err, "struct child shorter than parent");
    }
    return BF_OK;
  }
  return bf_error_set(c->err, BF_EINVAL, "unsupported Arrow format '%s'", fmt);
}

static int decode_dictionary(bf_ipc_reader_t *r, const dict_entry_t *d, struct ArrowArray *out,
                             bf_error_t *err);

/* Index i of a dictionary index array of Arrow format `format` (an integer type;
 * unsigned 64-bit values past INT64_MAX come back negative, so out of range). */
static int64_t dictionary_index(char format, const uint8_t *indices, int64_t i) {
  switch (format) {
    case 'c':
      return ((const int8_t *)indices)[i];
    case 'C':
      return indices[i];
    case 's': {
      int16_t v;
      memcpy(&v, indices + 2 * i, 2);
      return v;
    }
    case 'S': {
      uint16_t v;
      memcpy(&v, indices + 2 * i, 2);
      return v;
    }
    case 'i': {
      int32_t v;
      memcpy(&v, indices + 4 * i, 4);
      return v;
    }
    case 'I': {
      uint32_t v;
      memcpy(&v, indices + 4 * i, 4);
      return v;
    }
    default: {
      int64_t v;
      memcpy(&v, indices + 8 * i, 8);
      return v;
    }
  }
}

/* Gives `a` its own decoded copy of the dictionary and checks every index. */
static int attach_dictionary(batch_ctx_t *c, const struct ArrowSchema *schema, struct ArrowArray *a) {
  const dict_entry_t *d = NULL;
  for (size_t i = 0; i < c->reader->n_dicts; i++)
    if (c->reader->dicts[i].value_schema == schema->dictionary) d = &c->reader->dicts[i];
  if (d == NULL || d->meta == NULL)
    return CORRUPT(c->err, "record batch before the dictionary of column '%s'", schema->name);
  struct ArrowArray *dict = bf_arrow_array_alloc_dictionary(a);
  if (dict == NULL) return bf_error_set(c->err, BF_ENOMEM, "out of memory");
  BF_RETURN_NOT_OK(decode_dictionary(c->reader, d, dict, c->err));
  const uint8_t *indices = a->buffers[1];
  const uint8_t *validity = a->buffers[0];
  for (int64_t i = 0; i < a->length; i++) {
    if (validity && !bf_arrow_bit_get(validity, i)) continue;
    int64_t index = dictionary_index(schema->format[0], indices, i);
    if (index < 0 || index >= dict->length)
      return CORRUPT(c->err, "dictionary index %lld out of range in column '%s'", (long long)index,
                     schema->name);
  }
  return BF_OK;
}

static int read_array(batch_ctx_t *c, const struct ArrowSchema *schema, struct ArrowArray *out,
                      int depth) {
  if (depth > BF_IPC_MAX_DEPTH) return CORRUPT(c->err, "nested too deeply");
  int64_t length = 0, null_count = 0;
  BF_RETURN_NOT_OK(next_node(c, &length, &null_count));
  int64_t n_buffers = bf_arrow_format_n_buffers(schema->format);
  if (n_buffers < 0) return bf_error_set(c->err, BF_EINVAL, "unsupported format '%s'", schema->format);
  if (schema->format[0] == 'v') {
    if (c->next_variadic >= c->n_variadic) return CORRUPT(c->err, "missing variadic buffer count");
    int64_t n_var = fb_read_i64_at(c->fb, c->variadic_pos + 8 * (size_t)c->next_variadic);
    if (n_var < 0 || n_var > (int64_t)c->n_buffers) return CORRUPT(c->err, "bad variadic buffer count");
    n_buffers = 3 + n_var;
  }
  struct ArrowArray a;
  if (bf_arrow_array_init(&a, n_buffers, schema->n_children) != BF_OK)
    return bf_error_set(c->err, BF_ENOMEM, "out of memory");
  a.length = length;
  a.null_count = null_count;
  int status = read_array_body(c, schema, &a, depth);
  if (status == BF_OK && schema->dictionary) status = attach_dictionary(c, schema, &a);
  if (status != BF_OK) {
    bf_arrow_array_release(&a);
    return status;
  }
  bf_arrow_array_move(&a, out);
  return BF_OK;
}

static int next_batch(bf_ipc_reader_t *r, struct ArrowArray *out, int *has_batch, bf_error_t *err);

int bf_ipc_reader_next(bf_ipc_reader_t *r, struct ArrowArray *out, int *has_batch, bf_error_t *err) {
  *has_batch = 0;
  if (r->failed)
    return bf_error_set(err, r->failed, "Arrow IPC reader already failed on this stream");
  int status = next_batch(r, out, has_batch, err);
  if (status != BF_OK) r->failed = status;
  return status;
}

static int next_batch(bf_ipc_reader_t *r, struct ArrowArray *out, int *has_batch, bf_error_t *err) {
  if (r->done) return BF_OK;
  for (;;) {
    fb_reader_t fb;
    fb_table_ref_t msg;
    size_t body_pos = 0;
    int64_t body_len = 0;
    int eos;
    BF_RETURN_NOT_OK(next_message(r, &fb, &msg, &body_pos, &body_len, &eos, err));
    if (eos) {
      if (r->pos != r->size)
        return CORRUPT(err, "%zu bytes after the end-of-stream marker", r->size - r->pos);
      r->done = 1;
      return BF_OK;
    }
    uint8_t header_type = fb_u8(&fb, &msg, 1, 0);
    if (header_type == BF_IPC_HEADER_DICTIONARY_BATCH) {
      fb_table_ref_t db = fb_child(&fb, &msg, 2);
      if (!db.present || fb.bad) return CORRUPT(err, "bad DictionaryBatch message");
      if (fb_u8(&fb, &db, 2, 0))
        return bf_error_set(err, BF_EINVAL, "dictionary deltas are not supported");
      int64_t id = fb_i64(&fb, &db, 0, 0);
      dict_entry_t *d = NULL;
      for (size_t i = 0; i < r->n_dicts; i++)
        if (r->dicts[i].id == id) d = &r->dicts[i];
      if (d == NULL) return CORRUPT(err, "DictionaryBatch for unknown id %lld", (long long)id);
      d->meta = fb.data;
      d->meta_len = fb.size;
      d->body_pos = body_pos;
      d->body_len = body_len;
      struct ArrowArray check; /* validate now so errors surface at the right message */
      BF_RETURN_NOT_OK(decode_dictionary(r, d, &check, err));
      bf_arrow_array_release(&check);
      continue;
    }
    if (header_type != BF_IPC_HEADER_RECORD_BATCH)
      return CORRUPT(err, "unexpected message type %d", header_type);
    fb_table_ref_t rb = fb_child(&fb, &msg, 2);
    if (!rb.present || fb.bad) return CORRUPT(err, "bad RecordBatch message");
    if (fb_has(&fb, &rb, 3))
      return bf_error_set(err, BF_EINVAL, "compressed IPC bodies are not supported");
    batch_ctx_t c = {.reader = r, .fb = &fb, .body = r->data + body_pos, .body_len = body_len,
                     .copy_budget = body_len, .err = err};
    if (!fb_vector(&fb, &rb, 1, 16, &c.nodes_pos, &c.n_nodes)) c.n_nodes = 0;
    if (!fb_vector(&fb, &rb, 2, 16, &c.buffers_pos, &c.n_buffers)) c.n_buffers = 0;
    if (fb_has(&fb, &rb, 4) && !fb_vector(&fb, &rb, 4, 8, &c.variadic_pos, &c.n_variadic))
      return CORRUPT(err, "bad variadic buffer counts");
    if (fb.bad) return CORRUPT(err, "bad RecordBatch message");
    int64_t length = fb_i64(&fb, &rb, 0, 0);
    if (length < 0) return CORRUPT(err, "negative batch length");
    struct ArrowArray root;
    if (bf_arrow_array_init(&root, 1, r->schema.n_children) != BF_OK)
      return bf_error_set(err, BF_ENOMEM, "out of memory");
    root.length = length;
    int status = BF_OK;
    for (int64_t i = 0; i < r->schema.n_children && status == BF_OK; i++) {
      status = read_array(&c, r->schema.children[i], root.children[i], 1);
      if (status == BF_OK && root.children[i]->length < length)
        status = CORRUPT(err, "column %lld shorter than the batch", (long long)i);
    }
    if (status == BF_OK && fb.bad) status = CORRUPT(err, "bad RecordBatch message");
    if (status != BF_OK) {
      bf_arrow_array_release(&root);
      return status;
    }
    bf_arrow_array_move(&root, out);
    *has_batch = 1;
    return BF_OK;
  }
}

static int decode_dictionary(bf_ipc_reader_t *r, const dict_entry_t *d, struct ArrowArray *out,
                             bf_error_t *err) {
  fb_reader_t fb = {d->meta, d->meta_len, false};
  fb_table_ref_t msg = fb_read_root(&fb);
  fb_table_ref_t db = fb_child(&fb, &msg, 2);
  fb_table_ref_t rb = fb_child(&fb, &db, 1);
  if (fb.bad || !rb.present) return CORRUPT(err, "bad DictionaryBatch message");
  if (fb_has(&fb, &rb, 3)) return bf_error_set(err, BF_EINVAL, "compressed IPC bodies are not supported");
  batch_ctx_t c = {.reader = r, .fb = &fb, .body = r->data + d->body_pos, .body_len = d->body_len,
                   .copy_budget = d->body_len, .err = err};
  if (!fb_vector(&fb, &rb, 1, 16, &c.nodes_pos, &c.n_nodes)) c.n_nodes = 0;
  if (!fb_vector(&fb, &rb, 2, 16, &c.buffers_pos, &c.n_buffers)) c.n_buffers = 0;
  if (fb_has(&fb, &rb, 4) && !fb_vector(&fb, &rb, 4, 8, &c.variadic_pos, &c.n_variadic))
    return CORRUPT(err, "bad variadic buffer counts");
  if (fb.bad) return CORRUPT(err, "bad DictionaryBatch message");
  int status = read_array(&c, d->value_schema, out, 1);
  if (status == BF_OK && fb.bad) {
    bf_arrow_array_release(out);
    status = CORRUPT(err, "bad DictionaryBatch message");
  }
  return status;
}
