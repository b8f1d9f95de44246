/* Arrow C Data Interface structs (the ABI-stable layout from the Arrow spec) and
 * helpers to allocate, move and release them. Every ArrowSchema / ArrowArray that
 * libbifrost produces owns its memory through its release callback; a move is a
 * struct copy followed by marking the source released (release = NULL). */
#ifndef BIFROST_ARROW_H
#define BIFROST_ARROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bifrost/error.h"
#include "bifrost/util.h"

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  const char *format;
  const char *name;
  const char *metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema **children;
  struct ArrowSchema *dictionary;
  void (*release)(struct ArrowSchema *);
  void *private_data;
};

struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void **buffers;
  struct ArrowArray **children;
  struct ArrowArray *dictionary;
  void (*release)(struct ArrowArray *);
  void *private_data;
};
#endif /* ARROW_C_DATA_INTERFACE */

#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE
struct ArrowArrayStream {
  int (*get_schema)(struct ArrowArrayStream *, struct ArrowSchema *out);
  int (*get_next)(struct ArrowArrayStream *, struct ArrowArray *out);
  const char *(*get_last_error)(struct ArrowArrayStream *);
  void (*release)(struct ArrowArrayStream *);
  void *private_data;
};
#endif /* ARROW_C_STREAM_INTERFACE */

/* ---- Schemas ------------------------------------------------------------ */

/* Allocates an owned schema node: copies format and name, sets flags, allocates
 * n_children zeroed child structs (children[i] points at a released-state struct
 * the caller fills with bf_arrow_schema_init). On failure *out is untouched. */
int bf_arrow_schema_init(struct ArrowSchema *out, const char *format, const char *name,
                         int64_t flags, int64_t n_children);
/* Attaches an owned dictionary schema node (value type format) to a schema made
 * by bf_arrow_schema_init. */
int bf_arrow_schema_set_dictionary(struct ArrowSchema *schema, const char *value_format);
/* Deep copy of any valid ArrowSchema (ours or foreign). */
int bf_arrow_schema_deep_copy(const struct ArrowSchema *src, struct ArrowSchema *out);

/* ---- Arrays ------------------------------------------------------------- */

/* Allocates an owned array node with n_buffers NULL buffer slots and n_children
 * zeroed child structs. Buffers set with bf_arrow_array_set_buffer are freed by
 * release (they must come from malloc). */
int bf_arrow_array_init(struct ArrowArray *out, int64_t n_buffers, int64_t n_children);
/* Takes ownership of a malloc'd buffer; NULL is allowed (e.g. no validity). */
void bf_arrow_array_set_buffer(struct ArrowArray *array, int64_t i, void *malloced);

/* Points buffer i at memory inside `backing` (memory shared by reference count,
 * e.g. a received message decoded in place) without owning it; the node holds a
 * reference to the backing until it is released. */
void bf_arrow_array_set_borrowed(struct ArrowArray *array, int64_t i, const void *ptr,
                                 bf_shared_t *backing);
/* Attaches an owned, zeroed dictionary node; returns it for filling. */
struct ArrowArray *bf_arrow_array_alloc_dictionary(struct ArrowArray *array);

/* Releases if not already released. Safe on zeroed structs. Cannot fail. */
void bf_arrow_schema_release(struct ArrowSchema *schema);
void bf_arrow_array_release(struct ArrowArray *array);
/* Moves src into dst (dst must be released) and marks src released. */
void bf_arrow_schema_move(struct ArrowSchema *src, struct ArrowSchema *dst);
void bf_arrow_array_move(struct ArrowArray *src, struct ArrowArray *dst);

/* Validity bitmap bit access (LSB order, as the Arrow format). */
static inline bool bf_arrow_bit_get(const uint8_t *bits, int64_t i) {
  return (bits[i >> 3] >> (i & 7)) & 1;
}
static inline void bf_arrow_bit_set(uint8_t *bits, int64_t i, bool value) {
  if (value)
    bits[i >> 3] |= (uint8_t)(1u << (i & 7));
  else
    bits[i >> 3] &= (uint8_t)~(1u << (i & 7));
}
/* Number of zero (null) bits among bits [offset, offset + length). */
int64_t bf_arrow_count_nulls(const uint8_t *bits, int64_t offset, int64_t length);

/* Number of buffers the Arrow spec gives a format string's layout ("l" -> 2,
 * "u" -> 3, "+s" -> 1, "vu" -> 2 + variadic, ...); -1 if unsupported. For view
 * types this is the fixed count (validity, views) without variadic buffers. */
int bf_arrow_format_n_buffers(const char *format);
/* Byte width of fixed-width formats ("l" -> 8, "d:38,0" -> 16, "b" -> 0 meaning
 * bit-packed); -1 for variable-size or nested formats. */
int bf_arrow_format_byte_width(const char *format);

/* Bytes the array occupies with every value materialised: dictionaries expanded
 * (each index counts its value), string views resolved, list and struct children
 * counted over the referenced ranges. Saturates at INT64_MAX. The array must be
 * valid (as produced by the IPC reader). Cannot fail. */
int64_t bf_arrow_decoded_size(const struct ArrowSchema *schema, const struct ArrowArray *array);
/* Wraps one schema + a list of struct arrays (owned; moved in) as an
 * ArrowArrayStream. Used to hand query results and IPC decodes to consumers. */
int bf_arrow_stream_from_batches(struct ArrowSchema *schema, struct ArrowArray *batches,
                                 size_t n_batches, struct ArrowArrayStream *out);

#endif /* BIFROST_ARROW_H */
