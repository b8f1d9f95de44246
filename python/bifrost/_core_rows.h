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

/* What encoding a nested field needs on every row, made once: the field's path
 * for messages ("features.amount", "scores[]") and its name as a Python key. */
typedef struct {
  const bf_field_t *field; /* NULL: empty slot */
  char *path;
  PyObject *key;
} core_row_node_t;

typedef struct {
  const bf_schema_t *schema; /* the producer's; outlives the plan */
  core_row_node_t *nodes;    /* open addressing by field address; n_nodes < cap_nodes / 2 */
  size_t n_nodes, cap_nodes;
  PyObject *attrs;      /* tuple of interned attribute names, one per user field */
  PyObject *column_map; /* callable(cls) -> {column: attribute} for nested models */
  PyObject *map_cache;  /* dict: class -> that mapping */
  PyObject *to_text;    /* callable(value) -> str for non-str values of string columns */
  size_t limit;         /* encoding stops (too large) beyond this many bytes */
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
