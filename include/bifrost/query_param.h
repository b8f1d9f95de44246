/* A query parameter bound to a `?` / `$n` placeholder through a DuckDB prepared
 * statement (never spliced into the SQL text). Strings are borrowed, not owned. */
#ifndef BIFROST_QUERY_PARAM_H
#define BIFROST_QUERY_PARAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum bf_param_type {
  BF_PARAM_NULL = 0,
  BF_PARAM_INT64,
  BF_PARAM_DOUBLE,
  BF_PARAM_STRING,
  BF_PARAM_BOOL,
  BF_PARAM_DATE,      /* days since 1970-01-01 */
  BF_PARAM_TIMESTAMP, /* microseconds since the epoch, UTC */
  BF_PARAM_BLOB,      /* str/str_len: any bytes (NUL included) */
  BF_PARAM_DECIMAL,   /* str/str_len: "[-]digits[.digits]", at most 38 digits */
  BF_PARAM_LIST       /* items/n_items: scalars of one type, or NULL */
} bf_param_type_t;

/* Most values in one list parameter (the server refuses more). */
#define BF_PARAM_LIST_MAX_ITEMS 100000

typedef struct bf_query_param {
  bf_param_type_t type;
  union {
    int64_t i64;  /* INT64, TIMESTAMP */
    double f64;   /* DOUBLE */
    bool boolean; /* BOOL */
    int32_t days; /* DATE */
  } value;
  const char *str; /* STRING: UTF-8 bytes; BLOB: bytes; DECIMAL: text; not owned */
  size_t str_len;
  const struct bf_query_param *items; /* LIST: the items, not owned */
  size_t n_items;
} bf_query_param_t;

#endif /* BIFROST_QUERY_PARAM_H */
