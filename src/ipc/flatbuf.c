/* FlatBuffers encoder/decoder primitives for the Arrow IPC messages (see flatbuf.h). */
#include "ipc/flatbuf.h"

#include <stdlib.h>
#include <string.h>

/* ---- encoder ---------------------------------------------------------------- */

void fb_builder_init(fb_builder_t *b) {
  bf_buffer_init(&b->buf);
  b->status = BF_OK;
}

void fb_builder_reset(fb_builder_t *b) { bf_buffer_reset(&b->buf); }

static void put(fb_builder_t *b, const void *bytes, size_t n) {
  if (b->status == BF_OK) b->status = bf_buffer_append(&b->buf, bytes, n);
}

static void align(fb_builder_t *b, size_t alignment) {
  if (b->status == BF_OK) b->status = bf_buffer_pad(&b->buf, alignment);
}

size_t fb_root(fb_builder_t *b) {
  uint32_t zero = 0;
  put(b, &zero, 4);
  return 0;
}

void fb_patch(fb_builder_t *b, size_t at, size_t target) {
  if (b->status != BF_OK) return;
  uint32_t rel = (uint32_t)(target - at);
  memcpy(b->buf.data + at, &rel, 4);
}

static int by_size_desc(const void *x, const void *y) {
  const fb_field_t *a = *(const fb_field_t *const *)x, *c = *(const fb_field_t *const *)y;
  return (int)c->size - (int)a->size;
}

size_t fb_table(fb_builder_t *b, fb_field_t *fields, size_t n_fields) {
  uint16_t max_id = 0;
  for (size_t i = 0; i < n_fields; i++)
    if (fields[i].id + 1 > max_id) max_id = (uint16_t)(fields[i].id + 1);
  /* Lay out the table body: soffset then fields sorted by size (natural alignment). */
  fb_field_t *order[32];
  if (n_fields > 32) {
    b->status = BF_EINTERNAL;
    return 0;
  }
  for (size_t i = 0; i < n_fields; i++) order[i] = &fields[i];
  qsort(order, n_fields, sizeof order[0], by_size_desc);
  uint16_t field_offsets[32] = {0};
  size_t rel = 4;
  for (size_t i = 0; i < n_fields; i++) {
    size_t sz = order[i]->size;
    rel = (rel + sz - 1) & ~(sz - 1);
    field_offsets[order[i]->id] = (uint16_t)rel;
    order[i]->pos = rel; /* relative for now */
    rel += sz;
  }
  size_t table_bytes = rel;
  /* vtable */
  align(b, 2);
  size_t vtable_pos = b->buf.size;
  uint16_t vt_size = (uint16_t)(4 + 2 * max_id);
  uint16_t tb_size = (uint16_t)table_bytes;
  put(b, &vt_size, 2);
  put(b, &tb_size, 2);
  put(b, field_offsets, 2u * max_id);
  /* table, 8-aligned so 8-byte fields land aligned in the (8-aligned) message */
  align(b, 8);
  size_t table_pos = b->buf.size;
  if (b->status == BF_OK) b->status = bf_buffer_append_zeros(&b->buf, table_bytes);
  if (b->status != BF_OK) return 0;
  int32_t soffset = (int32_t)(table_pos - vtable_pos);
  memcpy(b->buf.data + table_pos, &soffset, 4);
  for (size_t i = 0; i < n_fields; i++) {
    fields[i].pos += table_pos;
    if (!fields[i].is_offset) memcpy(b->buf.data + fields[i].pos, &fields[i].value, fields[i].size);
  }
  return table_pos;
}

size_t fb_string(fb_builder_t *b, const char *s, size_t n) {
  align(b, 4);
  size_t pos = b->buf.size;
  uint32_t len = (uint32_t)n;
  put(b, &len, 4);
  put(b, s, n);
  put(b, "", 1);
  return pos;
}

size_t fb_struct_vector(fb_builder_t *b, const void *elems, size_t n, size_t elem_size) {
  /* Elements 8-aligned: the length prefix sits 4 bytes before an 8-aligned spot. */
  align(b, 8);
  uint32_t pad = 0;
  put(b, &pad, 4);
  size_t pos = b->buf.size;
  uint32_t len = (uint32_t)n;
  put(b, &len, 4);
  put(b, elems, n * elem_size);
  return pos;
}

size_t fb_offset_vector(fb_builder_t *b, size_t n) {
  align(b, 4);
  size_t pos = b->buf.size;
  uint32_t len = (uint32_t)n;
  put(b, &len, 4);
  if (b->status == BF_OK) b->status = bf_buffer_append_zeros(&b->buf, 4 * n);
  return pos;
}

/* ---- decoder ------------------------------------------------------------------ */

static bool in_bounds(fb_reader_t *r, size_t pos, size_t n) {
  if (pos > r->size || n > r->size - pos) {
    r->bad = true;
    return false;
  }
  return true;
}

static uint32_t rd_u32(fb_reader_t *r, size_t pos) {
  uint32_t v = 0;
  if (in_bounds(r, pos, 4)) memcpy(&v, r->data + pos, 4);
  return v;
}

static uint16_t rd_u16(fb_reader_t *r, size_t pos) {
  uint16_t v = 0;
  if (in_bounds(r, pos, 2)) memcpy(&v, r->data + pos, 2);
  return v;
}

int64_t fb_read_i64_at(fb_reader_t *r, size_t pos) {
  int64_t v = 0;
  if (in_bounds(r, pos, 8)) memcpy(&v, r->data + pos, 8);
  return v;
}

static fb_table_ref_t table_at_pos(fb_reader_t *r, size_t pos) {
  fb_table_ref_t t = {0};
  if (!in_bounds(r, pos, 4)) return t;
  int32_t soffset;
  memcpy(&soffset, r->data + pos, 4);
  int64_t vt = (int64_t)pos - soffset;
  if (vt < 0 || !in_bounds(r, (size_t)vt, 4)) {
    r->bad = true;
    return t;
  }
  t.vtable = (size_t)vt;
  t.vt_size = rd_u16(r, t.vtable);
  t.tb_size = rd_u16(r, t.vtable + 2);
  if (t.vt_size < 4 || (t.vt_size & 1) || !in_bounds(r, t.vtable, t.vt_size) ||
      !in_bounds(r, pos, t.tb_size)) {
    r->bad = true;
    return t;
  }
  t.pos = pos;
  t.present = !r->bad;
  return t;
}

fb_table_ref_t fb_read_table_at(fb_reader_t *r, size_t at) {
  fb_table_ref_t none = {0};
  uint32_t rel = rd_u32(r, at);
  if (r->bad || rel == 0) {
    r->bad = true;
    return none;
  }
  return table_at_pos(r, at + rel);
}

fb_table_ref_t fb_read_root(fb_reader_t *r) { return fb_read_table_at(r, 0); }

/* Absolute position of field id, or 0 when absent. */
static size_t field_pos(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, size_t size) {
  if (!t->present) return 0;
  size_t slot = 4 + 2 * (size_t)id;
  if (slot + 2 > t->vt_size) return 0;
  uint16_t off = rd_u16(r, t->vtable + slot);
  if (off == 0) return 0;
  if (off < 4 || (size_t)off + size > t->tb_size) {
    r->bad = true;
    return 0;
  }
  return t->pos + off;
}

bool fb_has(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id) {
  return field_pos(r, t, id, 1) != 0;
}

uint8_t fb_u8(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, uint8_t dflt) {
  size_t p = field_pos(r, t, id, 1);
  return p && in_bounds(r, p, 1) ? r->data[p] : dflt;
}

int16_t fb_i16(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, int16_t dflt) {
  size_t p = field_pos(r, t, id, 2);
  return p ? (int16_t)rd_u16(r, p) : dflt;
}

int32_t fb_i32(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, int32_t dflt) {
  size_t p = field_pos(r, t, id, 4);
  return p ? (int32_t)rd_u32(r, p) : dflt;
}

int64_t fb_i64(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, int64_t dflt) {
  size_t p = field_pos(r, t, id, 8);
  return p ? fb_read_i64_at(r, p) : dflt;
}

fb_table_ref_t fb_child(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id) {
  fb_table_ref_t none = {0};
  size_t p = field_pos(r, t, id, 4);
  return p ? fb_read_table_at(r, p) : none;
}

bool fb_vector(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, size_t elem_size,
               size_t *elems_pos, uint32_t *len) {
  size_t p = field_pos(r, t, id, 4);
  if (!p) return false;
  uint32_t rel = rd_u32(r, p);
  if (r->bad || rel == 0) {
    r->bad = true;
    return false;
  }
  size_t vec = p + rel;
  uint32_t n = rd_u32(r, vec);
  if (r->bad || !in_bounds(r, vec + 4, (size_t)n * elem_size)) return false;
  *elems_pos = vec + 4;
  *len = n;
  return true;
}

bool fb_string_field(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, const char **s,
                     uint32_t *len) {
  size_t pos;
  uint32_t n;
  if (!fb_vector(r, t, id, 1, &pos, &n)) return false;
  *s = (const char *)r->data + pos;
  *len = n;
  return true;
}

fb_table_ref_t fb_vector_table(fb_reader_t *r, size_t elems_pos, uint32_t i) {
  return fb_read_table_at(r, elems_pos + 4 * (size_t)i);
}
