/* Row building: JSON records (model_dump_json output) -> one Arrow record batch for
 * a bf_schema_t, with the system columns filled at finish. The producer thread owns
 * one builder per table; builders are not thread-safe. */
#ifndef BIFROST_ROWS_H
#define BIFROST_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/arrow.h"
#include "bifrost/error.h"
#include "bifrost/schema.h"

typedef struct bf_batch_builder bf_batch_builder_t;

/* The builder keeps a pointer to schema; the schema must outlive it. */
int bf_batch_builder_create(const bf_schema_t *schema, bf_batch_builder_t **out, bf_error_t *err);
void bf_batch_builder_destroy(bf_batch_builder_t *builder);

/* Appends one record given as a JSON object. Missing keys for nullable fields
 * become null; a float field also takes the strings "NaN", "Infinity" and
 * "-Infinity"; a missing required field, a wrong JSON type or an unparseable
 * date/datetime is BF_EINVAL naming the field, and leaves the builder exactly as
 * before the call (the row is not half-appended). Datetimes: RFC 3339 / ISO 8601
 * with optional fraction and offset; naive values are taken as UTC. Decimals: a
 * string ("-12.50") or an integer, never a JSON float (already rounded); one that
 * does not fit the precision or would lose a decimal place is refused. Bytes: a
 * string's UTF-8 bytes (pydantic's default JSON for bytes). Times: "HH:MM[:SS[.f]]".
 * Durations: ISO 8601 ("P1DT2H3.5S", "-PT1S") or a number of seconds. Maps: an
 * object (keys are the map's keys). */
int bf_batch_builder_append_json(bf_batch_builder_t *builder, const char *json, size_t len,
                                 bf_error_t *err);
int64_t bf_batch_builder_n_rows(const bf_batch_builder_t *builder);

/* Binary rows: a compact record encoding for every schema type, much cheaper to
 * produce and to append than JSON, and exact (NaN, infinities and -0.0 included;
 * instants as UTC microseconds). One value per user field, in schema order: a tag
 * byte, then
 *   BF_ROW_NULL        nothing
 *   BF_ROW_INT64       8 bytes, little-endian two's complement (also fills a float field)
 *   BF_ROW_FLOAT64     8 bytes, IEEE 754 little-endian (any value: NaN, ±inf, -0.0)
 *   BF_ROW_BOOL        1 byte, 0 or 1
 *   BF_ROW_STRING      4-byte little-endian length, then that many UTF-8 bytes (a
 *                      string or an enum field; an enum value must be one of its values)
 *   BF_ROW_TIMESTAMP_US 8 bytes, microseconds since the epoch, UTC
 *   BF_ROW_DATE32      4 bytes, days since 1970-01-01
 *   BF_ROW_LIST        4-byte little-endian item count, then that many values of the
 *                      list's item field
 *   BF_ROW_STRUCT      one value per child field, in schema order
 *   BF_ROW_BINARY      4-byte little-endian length, then that many bytes (any bytes)
 *   BF_ROW_DECIMAL128  16 bytes, the unscaled value as a little-endian two's complement
 *                      128-bit integer at the field's scale; |value| < 10^precision
 *   BF_ROW_MAP         4-byte little-endian entry count, then that many values of the
 *                      map's "entries" struct field (BF_ROW_STRUCT, key, value)
 * A time or timedelta field takes BF_ROW_INT64 microseconds (a time within
 * [0, 86400000000)). */
enum {
  BF_ROW_NULL = 0,
  BF_ROW_INT64 = 1,
  BF_ROW_FLOAT64 = 2,
  BF_ROW_BOOL = 3,
  BF_ROW_STRING = 4,
  BF_ROW_TIMESTAMP_US = 5,
  BF_ROW_DATE32 = 6,
  BF_ROW_LIST = 7,
  BF_ROW_STRUCT = 8,
  BF_ROW_BINARY = 9,
  BF_ROW_DECIMAL128 = 10,
  BF_ROW_MAP = 11,
};

/* Appends one binary row; a tag that does not fit its field, a null in a required
 * field, an unknown enum value or a short row is BF_EINVAL naming the field (with
 * its path for nested values), with nothing appended. */
int bf_batch_builder_append_row(bf_batch_builder_t *builder, const uint8_t *row, size_t len,
                                bf_error_t *err);

/* Produces the batch (struct array, columns in schema order incl. system columns:
 * scouter_created_at = created_at_us for all rows, scouter_partition_date = its UTC
 * date, scouter_batch_id = batch_id, dictionary-encoded: one value, int8 indices)
 * and the matching Arrow schema, then resets the builder to empty. */
int bf_batch_builder_finish(bf_batch_builder_t *builder, int64_t created_at_us,
                            const char *batch_id, struct ArrowSchema *out_schema,
                            struct ArrowArray *out_array, bf_error_t *err);

/* Builds a batch from the user columns of an Arrow struct array (moved out of
 * *user, which is released) plus the system columns, like bf_batch_builder_finish.
 * The caller checked the columns' formats against the table. */
int bf_rows_attach_system_columns(const bf_schema_t *schema, struct ArrowArray *user,
                                  int64_t created_at_us, const char *batch_id,
                                  struct ArrowSchema *out_schema, struct ArrowArray *out_array,
                                  bf_error_t *err);

#endif /* BIFROST_ROWS_H */
