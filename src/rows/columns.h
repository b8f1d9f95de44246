/* The row builder's column state, shared by batch_builder.c (JSON records, finish)
 * and binary_rows.c (binary rows). Private to src/rows. */
#ifndef BIFROST_ROWS_COLUMNS_H
#define BIFROST_ROWS_COLUMNS_H

#include <stdbool.h>
#include <stddef.h>

#include "bifrost/rows.h"
#include "bifrost/util.h"

typedef struct column {
  const bf_field_t *field;
  bf_buffer_t validity; /* one bit per row */
  bf_buffer_t values;   /* fixed-width values, 16-byte views, int16 indices or int32 offsets */
  bf_buffer_t heap;     /* Utf8View: out-of-line string bytes (one variadic buffer) */
  int64_t length;
  int64_t null_count;
  struct column *children;
} column_t;

struct bf_batch_builder {
  const bf_schema_t *schema;
  column_t *columns; /* n_user_fields */
  int64_t n_rows;
};

/* Appends a validity bit (a null counts in null_count); does not grow length. */
int bf__column_push_validity(column_t *col, bool valid);
/* Appends a 16-byte string view (bytes over 12 go to the column's heap). */
int bf__column_push_view(column_t *col, const char *s, size_t n);
/* Appends a null row (recursively for struct children); grows length. */
int bf__column_append_null(column_t *col);
/* BF_EINVAL "field '<path>': expected <expected>". */
int bf__rows_type_error(const char *path, const char *expected, bf_error_t *err);

#endif /* BIFROST_ROWS_COLUMNS_H */
