/* bifrost._core record encoding (_core_rows.c): a model instance -> one binary row
 * (include/bifrost/rows.h), read straight from the instance's attributes and guided
 * by the table's parsed schema, nested lists and structs included. Exact by
 * construction: floats bit for bit (NaN, ±inf, -0.0), datetimes with their full
 * UTC offset (seconds and microseconds), integers checked against int64. A value
 * the table cannot hold exactly is refused here, naming the field. */
#ifndef BIFROST_PY_CORE_ROWS_H
#define BIFROST_PY_CORE_ROWS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include "bifrost/error.h"
#include "bifrost/schema.h"

/* What encoding a field needs on every row, made on first use and kept for the
 * plan's life: the field's path for messages ("features.amount", "scores[]"), its
 * name as a Python key, its children's nodes, and caches that let repeated rows of
 * the same shape skip lookups (each checked against the row, never trusted). */
#define CORE_ROW_ENUM_CACHE 16
typedef struct core_row_node core_row_node_t;
struct core_row_node {
  const bf_field_t *field;
  char *path;
  PyObject *key;               /* the field's name, interned */
  core_row_node_t **children;  /* STRUCT: one per child field; LIST: the item; MAP: the value
                                  (each NULL until first used) */
  size_t n_children;
  /* STRUCT: the attribute read for each child from instances of exactly cls (the
   * class's column map applied once); both strong references, cls NULL: none yet. */
  PyObject *cls;
  PyObject **names;
  /* DICTIONARY: str-subclass values (enum members) already found to be one of the
   * enum's values; strong references, matched by identity. */
  PyObject *members[CORE_ROW_ENUM_CACHE];
  size_t n_members;
};

typedef struct {
  const bf_schema_t *schema; /* the producer's; outlives the plan */
  core_row_node_t **roots;   /* one per user field (schema order), NULL until first used */
  size_t n_roots;
  PyObject *attrs;      /* tuple of interned attribute names, one per user field */
  PyObject *column_map; /* callable(cls) -> {column: attribute} for nested models */
  PyObject *map_cache;  /* dict: class -> that mapping */
  PyObject *to_text;    /* callable(value) -> str for non-str values of string columns */
  size_t limit;         /* encoding stops (too large) beyond this many bytes */
  int32_t last_ymd;     /* the last date converted (year << 9 | month << 5 | day; 0: none) */
  int64_t last_days;    /* ... as days since 1970-01-01 */
} core_row_plan_t;

typedef struct {
  uint8_t *data;
  size_t size, cap;
  uint8_t inline_buf[512];
} core_row_buf_t;

enum {
  CORE_ROW_OK = 0,
  CORE_ROW_PYERR = -1,    /* a Python exception is set */
  CORE_ROW_REFUSED = -2,  /* a value does not fit: err says which field and why */
  CORE_ROW_TOO_LARGE = -3 /* the row grew beyond plan->limit */
};

void core_row_buf_init(core_row_buf_t *b);
void core_row_buf_free(core_row_buf_t *b);
int core_row_encode(core_row_plan_t *plan, PyObject *obj, core_row_buf_t *b, bf_error_t *err);
void core_row_plan_clear(core_row_plan_t *plan);

#endif /* BIFROST_PY_CORE_ROWS_H */
