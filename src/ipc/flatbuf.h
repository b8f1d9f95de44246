/* Minimal FlatBuffers encoder and bounds-checked decoder for the handful of Arrow
 * IPC tables (Message, Schema, Field, RecordBatch and the type tables).
 *
 * Encoder: objects are written front to back; a parent is written before its
 * children, so every uoffset points forward as the format requires. Offset fields
 * are written as placeholders and patched once the child's position is known.
 * Table layout written here:
 *   [vtable: u16 vtable_bytes, u16 table_bytes, u16 field_offset[n]] (2-aligned)
 *   [table: i32 soffset = table_pos - vtable_pos, fields aligned to their size] (8-aligned)
 * Decoder: every read checks the position against the buffer size; a failed check
 * marks the reader bad, and callers test fb_reader_ok() once per message. */
#ifndef BIFROST_IPC_FLATBUF_H
#define BIFROST_IPC_FLATBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bifrost/util.h"

/* ---- encoder ---- */
typedef struct fb_builder {
  bf_buffer_t buf; /* positions are offsets into buf (the flatbuffer starts at 0) */
  int status;      /* first error (BF_ENOMEM), sticky */
} fb_builder_t;

typedef struct fb_field {
  uint16_t id;
  uint8_t size;      /* 1, 2, 4 or 8 bytes; offsets are 4 */
  uint8_t is_offset; /* placeholder uoffset to be patched with fb_patch */
  uint64_t value;    /* little-endian scalar value */
  size_t pos;        /* out: absolute position of the field after fb_table */
} fb_field_t;

void fb_builder_init(fb_builder_t *b);
void fb_builder_reset(fb_builder_t *b);
/* Root uoffset placeholder at position 0; returns its position. */
size_t fb_root(fb_builder_t *b);
/* Writes a table with the given fields (order irrelevant); returns the table position. */
size_t fb_table(fb_builder_t *b, fb_field_t *fields, size_t n_fields);
/* Patches the uoffset at `at` to point to `target` (> at). */
void fb_patch(fb_builder_t *b, size_t at, size_t target);
/* Writes a string; returns its position. */
size_t fb_string(fb_builder_t *b, const char *s, size_t n);
/* Vector of n structs of elem_size bytes each (8-aligned elements); returns position. */
size_t fb_struct_vector(fb_builder_t *b, const void *elems, size_t n, size_t elem_size);
/* Vector of n uoffset placeholders; returns position; element i is at pos+4+4*i. */
size_t fb_offset_vector(fb_builder_t *b, size_t n);

/* ---- decoder ---- */
typedef struct fb_reader {
  const uint8_t *data;
  size_t size;
  bool bad;
} fb_reader_t;

typedef struct fb_table_ref {
  size_t pos;       /* table start */
  size_t vtable;    /* vtable start */
  uint16_t vt_size; /* vtable bytes */
  uint16_t tb_size; /* table bytes */
  bool present;
} fb_table_ref_t;

/* Table at the uoffset stored at position `at`. */
fb_table_ref_t fb_read_table_at(fb_reader_t *r, size_t at);
fb_table_ref_t fb_read_root(fb_reader_t *r);
bool fb_has(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id);
uint8_t fb_u8(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, uint8_t dflt);
int16_t fb_i16(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, int16_t dflt);
int32_t fb_i32(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, int32_t dflt);
int64_t fb_i64(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, int64_t dflt);
/* Child table referenced by field id (present = false when absent). */
fb_table_ref_t fb_child(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id);
/* Vector referenced by field id: position of the first element and its length;
 * elem_size bounds-checks the whole vector. Returns false if absent or bad. */
bool fb_vector(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, size_t elem_size,
               size_t *elems_pos, uint32_t *len);
/* String by field id; *s points into the buffer (not NUL-terminated). */
bool fb_string_field(fb_reader_t *r, const fb_table_ref_t *t, uint16_t id, const char **s,
                     uint32_t *len);
/* Table element i of a vector of tables starting at elems_pos. */
fb_table_ref_t fb_vector_table(fb_reader_t *r, size_t elems_pos, uint32_t i);
int64_t fb_read_i64_at(fb_reader_t *r, size_t pos);

#endif
