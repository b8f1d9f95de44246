/* Model instance -> binary row (see _core_rows.h). Runs with the GIL held. */
#include "_core_rows.h"

#include <datetime.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "bifrost/rows.h"
#include "rows/temporal.h"

/* Microseconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z. */
#define MIN_US (-62135596800000000LL)
#define MAX_US (253402300799999999LL)
#define MAX_DEPTH 64

void core_row_buf_init(core_row_buf_t *b) {
  b->data = b->inline_buf;
  b->size = 0;
  b->cap = sizeof b->inline_buf;
}

void core_row_buf_free(core_row_buf_t *b) {
  if (b->data != b->inline_buf) PyMem_Free(b->data);
  core_row_buf_init(b);
}

static void node_free(core_row_node_t *node) {
  if (node == NULL) return;
  for (size_t i = 0; i < node->n_children; i++) node_free(node->children[i]);
  PyMem_Free(node->children);
  if (node->names != NULL)
    for (size_t i = 0; i < node->n_children; i++) Py_XDECREF(node->names[i]);
  PyMem_Free(node->names);
  Py_XDECREF(node->cls);
  for (size_t i = 0; i < node->n_members; i++) Py_DECREF(node->members[i]);
  PyMem_Free(node->path);
  Py_XDECREF(node->key);
  PyMem_Free(node);
}

void core_row_plan_clear(core_row_plan_t *plan) {
  for (size_t i = 0; i < plan->n_roots; i++) node_free(plan->roots[i]);
  PyMem_Free(plan->roots);
  plan->roots = NULL;
  plan->n_roots = 0;
  Py_CLEAR(plan->attrs);
  Py_CLEAR(plan->column_map);
  Py_CLEAR(plan->map_cache);
  Py_CLEAR(plan->to_text);
}

typedef struct {
  core_row_plan_t *plan;
  core_row_buf_t *b;
  bf_error_t *err;
} enc_t;

/* A new node for field: path = parent_path + suffix (".<name>", "[]" or "{}"), or the
 * field's name for a top-level field (parent_path NULL). NULL: exception set. */
static core_row_node_t *node_new(const bf_field_t *field, const char *parent_path, const char *suffix) {
  core_row_node_t *node = PyMem_Calloc(1, sizeof *node);
  if (node == NULL) {
    PyErr_NoMemory();
    return NULL;
  }
  node->field = field;
  size_t n = field->type == BF_TYPE_STRUCT ? field->n_children
             : field->type == BF_TYPE_LIST || field->type == BF_TYPE_MAP ? 1
                                                                          : 0;
  node->n_children = n;
  size_t len = parent_path == NULL ? strlen(field->name) + 1
               : strlen(parent_path) + strlen(suffix) + (suffix[0] == '.' ? strlen(field->name) : 0) + 1;
  node->path = PyMem_Malloc(len);
  node->children = PyMem_Calloc(n ? n : 1, sizeof *node->children);
  node->key = PyUnicode_InternFromString(field->name);
  if (node->path == NULL || node->children == NULL || node->key == NULL) {
    node->n_children = 0;
    node_free(node);
    if (!PyErr_Occurred()) PyErr_NoMemory();
    return NULL;
  }
  if (parent_path == NULL)
    memcpy(node->path, field->name, len);
  else
    snprintf(node->path, len, "%s%s%s", parent_path, suffix, suffix[0] == '.' ? field->name : "");
  return node;
}

/* Child i of node (a struct's field i, a list's item, a map's value), made on first
 * use. NULL: exception set. */
static core_row_node_t *child_make(core_row_node_t *node, size_t i) {
  const bf_field_t *f = node->field;
  core_row_node_t *child =
      f->type == BF_TYPE_STRUCT ? node_new(&f->children[i], node->path, ".")
      : f->type == BF_TYPE_LIST ? node_new(&f->children[0], node->path, "[]")
                                : node_new(&f->children[0].children[1], node->path, "{}");
  node->children[i] = child;
  return child;
}

static inline core_row_node_t *child_of(core_row_node_t *node, size_t i) {
  core_row_node_t *child = node->children[i];
  return child != NULL ? child : child_make(node, i);
}

/* The value of key in dict (borrowed), or NULL (missing, or an exception). A model
 * keeps its fields in its __dict__ in declaration order, the order they are read in:
 * the entry after *pos is tried first (it is the one when its key is key itself,
 * both being interned) and only then is key looked up. */
static inline PyObject *dict_value(PyObject *dict, Py_ssize_t *pos, PyObject *key) {
  Py_ssize_t next = *pos;
  PyObject *k, *v;
  if (PyDict_Next(dict, &next, &k, &v) && k == key) {
    *pos = next;
    return v;
  }
  return PyDict_GetItemWithError(dict, key);
}

/* The buffer grows (or the row is too large): reserve's slow path. */
static int reserve_slow(enc_t *e, size_t more) {
  core_row_buf_t *b = e->b;
  if (b->size + more > e->plan->limit) return CORE_ROW_TOO_LARGE;
  if (b->size + more <= b->cap) return CORE_ROW_OK;
  size_t cap = b->cap * 2;
  while (cap < b->size + more) cap *= 2;
  uint8_t *grown = b->data == b->inline_buf ? PyMem_Malloc(cap) : PyMem_Realloc(b->data, cap);
  if (grown == NULL) {
    PyErr_NoMemory();
    return CORE_ROW_PYERR;
  }
  if (b->data == b->inline_buf) memcpy(grown, b->inline_buf, b->size);
  b->data = grown;
  b->cap = cap;
  return CORE_ROW_OK;
}

static inline int reserve(enc_t *e, size_t more) {
  core_row_buf_t *b = e->b;
  if (b->size + more <= b->cap && b->size + more <= e->plan->limit) return CORE_ROW_OK;
  return reserve_slow(e, more);
}

static inline int put(enc_t *e, uint8_t tag, const void *bytes, size_t n) {
  int rc = reserve(e, 1 + n);
  if (rc != CORE_ROW_OK) return rc;
  e->b->data[e->b->size++] = tag;
  if (n) memcpy(e->b->data + e->b->size, bytes, n);
  e->b->size += n;
  return CORE_ROW_OK;
}

static inline int put_u32(enc_t *e, uint8_t tag, uint32_t n) {
  uint8_t le[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
  return put(e, tag, le, 4);
}

static int refuse(enc_t *e, const char *path, const char *fmt, PyObject *value) {
  PyObject *type_name = value != NULL ? PyType_GetName(Py_TYPE(value)) : NULL;
  const char *tn = type_name != NULL ? PyUnicode_AsUTF8(type_name) : "?";
  if (tn == NULL) {
    PyErr_Clear();
    tn = "?";
  }
  char what[256];
  snprintf(what, sizeof what, fmt, tn);
  Py_XDECREF(type_name);
  bf_error_set(e->err, BF_EINVAL, "field '%s': %s", path, what);
  return CORE_ROW_REFUSED;
}

static int put_string(enc_t *e, const char *path, PyObject *v) {
  Py_ssize_t n;
  const char *text = PyUnicode_AsUTF8AndSize(v, &n);
  if (text == NULL) {
    PyErr_Clear();
    return refuse(e, path, "the string cannot be encoded as UTF-8 (lone surrogate?) (%s)", v);
  }
  if ((uint64_t)n > UINT32_MAX) return CORE_ROW_TOO_LARGE;
  int rc = reserve(e, 5 + (size_t)n);
  if (rc != CORE_ROW_OK) return rc;
  rc = put_u32(e, BF_ROW_STRING, (uint32_t)n);
  memcpy(e->b->data + e->b->size, text, (size_t)n);
  e->b->size += (size_t)n;
  return rc;
}

/* Days since 1970-01-01 of v's date; the last date converted is kept (rows of a
 * batch mostly share their day). */
static int64_t days_of(enc_t *e, PyObject *v) {
  int year = PyDateTime_GET_YEAR(v), month = PyDateTime_GET_MONTH(v), day = PyDateTime_GET_DAY(v);
  int32_t ymd = (year << 9) | (month << 5) | day;
  if (ymd != e->plan->last_ymd) {
    e->plan->last_days = bf__days_from_civil(year, (unsigned)month, (unsigned)day);
    e->plan->last_ymd = ymd;
  }
  return e->plan->last_days;
}

static int encode_datetime(enc_t *e, const char *path, PyObject *v) {
  int64_t days = days_of(e, v);
  int64_t us = (((days * 24 + PyDateTime_DATE_GET_HOUR(v)) * 60 + PyDateTime_DATE_GET_MINUTE(v)) * 60 +
                PyDateTime_DATE_GET_SECOND(v)) * 1000000LL + PyDateTime_DATE_GET_MICROSECOND(v);
  PyObject *tz = PyDateTime_DATE_GET_TZINFO(v);
  if (tz != Py_None && tz != PyDateTime_TimeZone_UTC) {
    PyObject *offset = PyObject_CallMethod(tz, "utcoffset", "O", v);
    if (offset == NULL) return CORE_ROW_PYERR;
    if (PyDelta_Check(offset))
      us -= ((int64_t)PyDateTime_DELTA_GET_DAYS(offset) * 86400 + PyDateTime_DELTA_GET_SECONDS(offset)) *
                1000000LL + PyDateTime_DELTA_GET_MICROSECONDS(offset);
    Py_DECREF(offset);
  }
  if (us < MIN_US || us > MAX_US)
    return refuse(e, path,
                  "the instant is outside years 1-9999 in UTC, which the table cannot hold (%s)", v);
  return put(e, BF_ROW_TIMESTAMP_US, &us, 8);
}

__extension__ typedef unsigned __int128 u128_t;

static int put_bytes(enc_t *e, uint8_t tag, const char *data, Py_ssize_t n) {
  if ((uint64_t)n > UINT32_MAX) return CORE_ROW_TOO_LARGE;
  int rc = reserve(e, 5 + (size_t)n);
  if (rc != CORE_ROW_OK) return rc;
  rc = put_u32(e, tag, (uint32_t)n);
  if (n) memcpy(e->b->data + e->b->size, data, (size_t)n);
  e->b->size += (size_t)n;
  return rc;
}

static int encode_binary(enc_t *e, const char *path, PyObject *v) {
  if (PyBytes_Check(v)) return put_bytes(e, BF_ROW_BINARY, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
  if (PyByteArray_Check(v))
    return put_bytes(e, BF_ROW_BINARY, PyByteArray_AS_STRING(v), PyByteArray_GET_SIZE(v));
  if (PyMemoryView_Check(v)) {
    PyObject *copy = PyBytes_FromObject(v);
    if (copy == NULL) return CORE_ROW_PYERR;
    int rc = put_bytes(e, BF_ROW_BINARY, PyBytes_AS_STRING(copy), PyBytes_GET_SIZE(copy));
    Py_DECREF(copy);
    return rc;
  }
  return refuse(e, path, "expected bytes, got %s", v);
}

/* Decimal (or int) -> unscaled 128-bit value at the field's scale, exactly: a value
 * with more decimal places than the scale (other than trailing zeros) or more
 * digits than the precision is refused, never rounded. */
static int encode_decimal(enc_t *e, const bf_field_t *f, const char *path, PyObject *v) {
  if (PyFloat_Check(v)) return refuse(e, path, "expected a Decimal (a float is not exact), got %s", v);
  if (PyBool_Check(v)) return refuse(e, path, "expected a Decimal, got %s", v);
  PyObject *tuple = PyLong_Check(v) ? NULL : PyObject_CallMethod(v, "as_tuple", NULL);
  if (!PyLong_Check(v) && tuple == NULL) {
    PyErr_Clear();
    return refuse(e, path, "expected a Decimal, got %s", v);
  }
  u128_t limit = 1;
  for (int i = 0; i < f->precision; i++) limit *= 10;
  u128_t value = 0;
  bool negative = false;
  int rc = CORE_ROW_OK;
  if (tuple == NULL) { /* int: exact digits of its absolute value */
    PyObject *text = PyObject_Str(v);
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    if (s == NULL) {
      Py_XDECREF(text);
      return CORE_ROW_PYERR;
    }
    negative = *s == '-';
    for (const char *c = s + negative; *c && rc == CORE_ROW_OK; c++) {
      value = value * 10 + (u128_t)(*c - '0');
      if (value >= limit) rc = CORE_ROW_REFUSED;
    }
    for (int i = 0; i < f->scale && rc == CORE_ROW_OK && value; i++)
      if ((value *= 10) >= limit) rc = CORE_ROW_REFUSED;
    Py_DECREF(text);
  } else {
    PyObject *sign = PyTuple_GetItem(tuple, 0), *digits = PyTuple_GetItem(tuple, 1),
             *exponent = PyTuple_GetItem(tuple, 2);
    if (sign == NULL || digits == NULL || exponent == NULL || !PyTuple_Check(digits)) {
      Py_DECREF(tuple);
      return CORE_ROW_PYERR;
    }
    if (!PyLong_Check(exponent)) {
      Py_DECREF(tuple);
      return refuse(e, path, "NaN and infinite decimals cannot be stored (%s)", v);
    }
    negative = PyObject_IsTrue(sign) == 1;
    int overflow = 0;
    long long exp = PyLong_AsLongLongAndOverflow(exponent, &overflow);
    if (exp == -1 && PyErr_Occurred()) {
      Py_DECREF(tuple);
      return CORE_ROW_PYERR;
    }
    if (overflow) exp = overflow < 0 ? -(1LL << 40) : (1LL << 40);
    Py_ssize_t n = PyTuple_GET_SIZE(digits);
    /* digit k has weight 10^(exp + scale + n - 1 - k) in the unscaled value */
    long long keep = (long long)n + exp + f->scale; /* digits left of the cut */
    for (Py_ssize_t k = 0; k < n && rc == CORE_ROW_OK; k++) {
      long d = PyLong_AsLong(PyTuple_GET_ITEM(digits, k));
      if (k >= keep) {
        if (d != 0) {
          Py_DECREF(tuple);
          bf_error_set(e->err, BF_EINVAL, "field '%s': the decimal has more than %d decimal places",
                       path, f->scale);
          return CORE_ROW_REFUSED;
        }
        continue;
      }
      value = value * 10 + (u128_t)d;
      if (value >= limit) rc = CORE_ROW_REFUSED;
    }
    for (long long k = n; k < keep && rc == CORE_ROW_OK && value; k++)
      if ((value *= 10) >= limit) rc = CORE_ROW_REFUSED;
    Py_DECREF(tuple);
  }
  if (rc == CORE_ROW_REFUSED) {
    bf_error_set(e->err, BF_EINVAL,
                 "field '%s': the decimal has more than %d digits (%d before the point, %d after)",
                 path, f->precision, f->precision - f->scale, f->scale);
    return rc;
  }
  u128_t twos = negative ? (u128_t)0 - value : value;
  uint8_t le[16];
  for (int i = 0; i < 16; i++) le[i] = (uint8_t)(twos >> (8 * i));
  return put(e, BF_ROW_DECIMAL128, le, 16);
}

static int encode_time(enc_t *e, const char *path, PyObject *v) {
  if (!PyTime_Check(v)) return refuse(e, path, "expected time, got %s", v);
  PyObject *tz = PyDateTime_TIME_GET_TZINFO(v);
  if (tz != Py_None && tz != PyDateTime_TimeZone_UTC) {
    PyObject *offset = PyObject_CallMethod(tz, "utcoffset", "O", Py_None);
    if (offset == NULL) return CORE_ROW_PYERR;
    bool zero = offset == Py_None || (PyDelta_Check(offset) && PyDateTime_DELTA_GET_DAYS(offset) == 0 &&
                                      PyDateTime_DELTA_GET_SECONDS(offset) == 0 &&
                                      PyDateTime_DELTA_GET_MICROSECONDS(offset) == 0);
    Py_DECREF(offset);
    if (!zero)
      return refuse(e, path, "a time with a non-UTC offset cannot be stored (a time of day has no date "
                    "to convert it with); use a naive time (%s)", v);
  }
  int64_t us = ((int64_t)PyDateTime_TIME_GET_HOUR(v) * 3600 + PyDateTime_TIME_GET_MINUTE(v) * 60 +
                PyDateTime_TIME_GET_SECOND(v)) * 1000000LL + PyDateTime_TIME_GET_MICROSECOND(v);
  return put(e, BF_ROW_INT64, &us, 8);
}

static int encode_timedelta(enc_t *e, const char *path, PyObject *v) {
  if (!PyDelta_Check(v)) return refuse(e, path, "expected timedelta, got %s", v);
  __extension__ __int128 total = ((__int128)PyDateTime_DELTA_GET_DAYS(v) * 86400 +
                                   PyDateTime_DELTA_GET_SECONDS(v)) * 1000000 +
                                  PyDateTime_DELTA_GET_MICROSECONDS(v);
  if (total > INT64_MAX || total < INT64_MIN)
    return refuse(e, path, "the timedelta does not fit in 64-bit microseconds (about ±292,000 years) (%s)",
                  v);
  int64_t us = (int64_t)total;
  return put(e, BF_ROW_INT64, &us, 8);
}

/* {column: attribute} for instances of cls (cached), or NULL (borrowed; None = same names). */
static PyObject *column_map_of(enc_t *e, PyObject *cls) {
  core_row_plan_t *plan = e->plan;
  if (plan->column_map == NULL || plan->map_cache == NULL) return Py_None;
  PyObject *found = PyDict_GetItemWithError(plan->map_cache, cls);
  if (found != NULL || PyErr_Occurred()) return found;
  PyObject *map = PyObject_CallOneArg(plan->column_map, cls);
  if (map == NULL) return NULL;
  int rc = PyDict_SetItem(plan->map_cache, cls, map);
  Py_DECREF(map); /* the cache holds it */
  return rc < 0 ? NULL : map;
}

static int encode_value(enc_t *e, core_row_node_t *node, PyObject *v, int depth);

/* node->names: the attribute to read for each child field from instances of cls
 * (cls's column map applied to the children's names), and node->cls = cls. */
static int struct_names(enc_t *e, core_row_node_t *node, PyObject *cls) {
  PyObject *map = column_map_of(e, cls);
  if (map == NULL) return -1;
  if (node->names == NULL) {
    node->names = PyMem_Calloc(node->n_children ? node->n_children : 1, sizeof *node->names);
    if (node->names == NULL) {
      PyErr_NoMemory();
      return -1;
    }
  }
  Py_CLEAR(node->cls);
  for (size_t i = 0; i < node->n_children; i++) {
    core_row_node_t *child = child_of(node, i);
    if (child == NULL) return -1;
    PyObject *attr = map != Py_None ? PyDict_GetItemWithError(map, child->key) : NULL;
    if (attr == NULL && PyErr_Occurred()) return -1;
    Py_XSETREF(node->names[i], Py_NewRef(attr != NULL ? attr : child->key));
  }
  node->cls = Py_NewRef(cls);
  return 0;
}

static int encode_struct(enc_t *e, core_row_node_t *node, PyObject *v, int depth) {
  const char *path = node->path;
  bool is_dict = PyDict_Check(v);
  PyObject *cls = (PyObject *)Py_TYPE(v);
  if (!is_dict && cls != node->cls) { /* node->cls passed these checks before */
    if (PyUnicode_Check(v) || PyLong_Check(v) || PyFloat_Check(v) || PySequence_Check(v))
      return refuse(e, path, "expected an object (model, dataclass or dict), got %s", v);
    if (struct_names(e, node, cls) < 0) return CORE_ROW_PYERR;
  }
  /* A model keeps its field values in its __dict__: read them there (as the top
   * level does), falling back to attribute lookup (properties, slots). */
  PyObject *dict = NULL;
  if (!is_dict && Py_TYPE(v)->tp_dictoffset != 0) {
    dict = PyObject_GenericGetDict(v, NULL);
    if (dict == NULL) PyErr_Clear();
  }
  int rc = put(e, BF_ROW_STRUCT, NULL, 0);
  Py_ssize_t pos = 0;
  for (size_t i = 0; i < node->n_children && rc == CORE_ROW_OK; i++) {
    core_row_node_t *child = child_of(node, i);
    if (child == NULL) {
      Py_XDECREF(dict);
      return CORE_ROW_PYERR;
    }
    const char *sub = child->path;
    PyObject *item = NULL;
    if (is_dict) {
      item = dict_value(v, &pos, child->key);
      Py_XINCREF(item);
    } else {
      /* Encoding a value may run Python code that encodes other rows: the names
       * are those of this row's class. */
      if (node->cls != cls && struct_names(e, node, cls) < 0) {
        Py_XDECREF(dict);
        return CORE_ROW_PYERR;
      }
      PyObject *name = node->names[i];
      if (dict != NULL && (item = dict_value(dict, &pos, name)) != NULL) {
        Py_INCREF(item);
      } else if (PyErr_Occurred()) {
        Py_XDECREF(dict);
        return CORE_ROW_PYERR;
      } else {
        item = PyObject_GetAttr(v, name);
        if (item == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) PyErr_Clear();
      }
    }
    if (item == NULL) {
      if (PyErr_Occurred()) rc = CORE_ROW_PYERR;
      else if (!child->field->nullable) rc = refuse(e, sub, "required value is missing (%s)", v);
      else rc = put(e, BF_ROW_NULL, NULL, 0);
      continue;
    }
    rc = encode_value(e, child, item, depth + 1);
    Py_DECREF(item);
  }
  Py_XDECREF(dict);
  return rc;
}

static int encode_list(enc_t *e, core_row_node_t *node, PyObject *v, int depth) {
  const char *path = node->path;
  if (PyUnicode_Check(v) || PyBytes_Check(v) || PyDict_Check(v) ||
      !(PyList_Check(v) || PyTuple_Check(v) || PyAnySet_Check(v)))
    return refuse(e, path, "expected a list, tuple or set, got %s", v);
  PyObject *seq = PySequence_Fast(v, "list");
  if (seq == NULL) return CORE_ROW_PYERR;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  int rc = (uint64_t)n > UINT32_MAX ? CORE_ROW_TOO_LARGE : put_u32(e, BF_ROW_LIST, (uint32_t)n);
  core_row_node_t *item = child_of(node, 0);
  if (item == NULL) {
    Py_DECREF(seq);
    return CORE_ROW_PYERR;
  }
  /* Items of exactly float (float column) or str (string column) are encoded here,
   * as encode_value would; anything else goes through it. */
  bf_type_id_t type = depth + 1 <= MAX_DEPTH ? item->field->type : BF_TYPE_LIST;
  bool floats = type == BF_TYPE_FLOAT64, strings = type == BF_TYPE_UTF8 || type == BF_TYPE_UTF8VIEW;
  for (Py_ssize_t k = 0; k < n && rc == CORE_ROW_OK; k++) {
    PyObject *x = PySequence_Fast_GET_ITEM(seq, k);
    if (floats && PyFloat_CheckExact(x)) {
      double d = PyFloat_AS_DOUBLE(x);
      rc = put(e, BF_ROW_FLOAT64, &d, 8);
    } else if (strings && PyUnicode_CheckExact(x)) {
      rc = put_string(e, item->path, x);
    } else {
      Py_INCREF(x);
      rc = encode_value(e, item, x, depth + 1);
      Py_DECREF(x);
    }
  }
  Py_DECREF(seq);
  return rc;
}

/* A map key as the text JSON gives it (str as is; int, enum, UUID converted), new
 * reference; NULL without an exception for a key that has no such text. */
static PyObject *map_key_text(enc_t *e, PyObject *key) {
  if (PyUnicode_CheckExact(key)) return Py_NewRef(key);
  if (PyBool_Check(key)) return NULL;
  PyObject *text = NULL;
  if (PyLong_Check(key) && !PyObject_HasAttrString(key, "value")) {
    text = PyObject_Str(key);
  } else if (e->plan->to_text != NULL) {
    text = PyObject_CallOneArg(e->plan->to_text, key); /* enum -> value, UUID -> text */
    if (text != NULL && PyLong_Check(text) && !PyBool_Check(text)) Py_SETREF(text, PyObject_Str(text));
  } else if (PyUnicode_Check(key)) {
    text = PyObject_Str(key);
  }
  if (text == NULL) {
    if (PyErr_ExceptionMatches(PyExc_Exception)) PyErr_Clear();
    return NULL;
  }
  if (!PyUnicode_Check(text)) {
    Py_DECREF(text);
    return NULL;
  }
  return text;
}

static int encode_map(enc_t *e, core_row_node_t *node, PyObject *v, int depth) {
  const char *path = node->path;
  if (!PyDict_Check(v)) return refuse(e, path, "expected a dict, got %s", v);
  Py_ssize_t n = PyDict_GET_SIZE(v);
  int rc = (uint64_t)n > UINT32_MAX ? CORE_ROW_TOO_LARGE : put_u32(e, BF_ROW_MAP, (uint32_t)n);
  core_row_node_t *value_node = child_of(node, 0);
  if (value_node == NULL) return CORE_ROW_PYERR;
  const char *sub = value_node->path;
  /* A snapshot of the items: encoding a value may run Python code (to_text). */
  PyObject *items = rc == CORE_ROW_OK ? PyDict_Items(v) : NULL;
  if (rc == CORE_ROW_OK && items == NULL) return CORE_ROW_PYERR;
  for (Py_ssize_t k = 0; rc == CORE_ROW_OK && k < PyList_GET_SIZE(items) && k < n; k++) {
    PyObject *pair = PyList_GET_ITEM(items, k);
    PyObject *key = PyTuple_GET_ITEM(pair, 0), *item = PyTuple_GET_ITEM(pair, 1);
    PyObject *text = map_key_text(e, key);
    if (text == NULL) {
      rc = PyErr_Occurred() ? CORE_ROW_PYERR
                            : refuse(e, sub, "dict keys must be str, int, an enum or a UUID, got %s", key);
      break;
    }
    rc = put(e, BF_ROW_STRUCT, NULL, 0);
    if (rc == CORE_ROW_OK) rc = put_string(e, sub, text);
    Py_DECREF(text);
    if (rc == CORE_ROW_OK) rc = encode_value(e, value_node, item, depth + 1);
  }
  Py_XDECREF(items);
  return rc;
}

static int encode_value(enc_t *e, core_row_node_t *node, PyObject *v, int depth) {
  const bf_field_t *f = node->field;
  const char *path = node->path;
  if (depth > MAX_DEPTH) return refuse(e, path, "nested too deeply (%s)", v);
  if (v == Py_None) {
    if (!f->nullable) return refuse(e, path, "required value is None (%s)", v);
    return put(e, BF_ROW_NULL, NULL, 0);
  }
  switch (f->type) {
    case BF_TYPE_UTF8VIEW:
    case BF_TYPE_UTF8: {
      if (PyUnicode_Check(v)) return put_string(e, path, v);
      if (e->plan->to_text == NULL) return refuse(e, path, "expected str, got %s", v);
      /* UUID, URL, ... : the text pydantic's JSON gives them. */
      PyObject *text = PyObject_CallOneArg(e->plan->to_text, v);
      if (text == NULL) return CORE_ROW_PYERR;
      int rc = PyUnicode_Check(text) ? put_string(e, path, text)
                                     : refuse(e, path, "expected str, got %s", v);
      Py_DECREF(text);
      return rc;
    }
    case BF_TYPE_INT64: {
      if (!PyLong_Check(v) || PyBool_Check(v)) return refuse(e, path, "expected int, got %s", v);
      int overflow = 0;
      long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
      if (x == -1 && PyErr_Occurred()) return CORE_ROW_PYERR;
      if (overflow) return refuse(e, path, "the integer does not fit in 64 bits (%s)", v);
      if (f->n_enum_values) { /* IntEnum / int Literal: values kept as decimal text */
        char text[32];
        snprintf(text, sizeof text, "%lld", x);
        bool known = false;
        for (size_t k = 0; k < f->n_enum_values && !known; k++) known = strcmp(f->enum_values[k], text) == 0;
        if (!known) {
          bf_error_set(e->err, BF_EINVAL, "field '%s': %s is not one of the enum values", path, text);
          return CORE_ROW_REFUSED;
        }
      }
      int64_t x64 = (int64_t)x;
      return put(e, BF_ROW_INT64, &x64, 8);
    }
    case BF_TYPE_FLOAT64: {
      double d;
      if (PyFloat_Check(v)) {
        d = PyFloat_AS_DOUBLE(v);
      } else if (PyLong_Check(v) && !PyBool_Check(v)) {
        d = PyLong_AsDouble(v);
        if (d == -1.0 && PyErr_Occurred()) {
          PyErr_Clear();
          return refuse(e, path, "the integer is too large for a float (%s)", v);
        }
      } else {
        return refuse(e, path, "expected float, got %s", v);
      }
      return put(e, BF_ROW_FLOAT64, &d, 8);
    }
    case BF_TYPE_BOOL: {
      if (!PyBool_Check(v)) return refuse(e, path, "expected bool, got %s", v);
      uint8_t flag = v == Py_True;
      return put(e, BF_ROW_BOOL, &flag, 1);
    }
    case BF_TYPE_TIMESTAMP_US:
      if (!PyDateTime_Check(v)) return refuse(e, path, "expected datetime, got %s", v);
      return encode_datetime(e, path, v);
    case BF_TYPE_DATE32: {
      if (!PyDate_Check(v) || PyDateTime_Check(v)) return refuse(e, path, "expected date, got %s", v);
      int32_t days = (int32_t)days_of(e, v);
      return put(e, BF_ROW_DATE32, &days, 4);
    }
    case BF_TYPE_DICTIONARY: {
      static PyObject *value_name = NULL; /* interned "value", made once (GIL held) */
      if (value_name == NULL && (value_name = PyUnicode_InternFromString("value")) == NULL)
        return CORE_ROW_PYERR;
      for (size_t k = 0; k < node->n_members; k++) /* a member seen before: known to be valid */
        if (node->members[k] == v) return put_string(e, path, v);
      PyObject *value = PyUnicode_Check(v) ? Py_NewRef(v) : PyObject_GetAttr(v, value_name);
      if (value == NULL) {
        PyErr_Clear();
        return refuse(e, path, "expected an enum member or str, got %s", v);
      }
      int rc = CORE_ROW_OK;
      if (!PyUnicode_Check(value)) {
        rc = refuse(e, path, "the enum value is not a str (%s)", value);
      } else {
        const char *s = PyUnicode_AsUTF8(value);
        bool known = false;
        for (size_t k = 0; s != NULL && k < f->n_enum_values && !known; k++)
          known = strcmp(f->enum_values[k], s) == 0;
        if (s == NULL) {
          PyErr_Clear();
          rc = refuse(e, path, "the enum value cannot be encoded as UTF-8 (%s)", value);
        } else if (!known) {
          bf_error_set(e->err, BF_EINVAL, "field '%s': '%.200s' is not one of the enum values", path, s);
          rc = CORE_ROW_REFUSED;
        } else {
          rc = put_string(e, path, value);
          /* A str enum member is its own value, and immutable: remember it. */
          if (rc == CORE_ROW_OK && value == v && !PyUnicode_CheckExact(v) &&
              node->n_members < CORE_ROW_ENUM_CACHE)
            node->members[node->n_members++] = Py_NewRef(v);
        }
      }
      Py_DECREF(value);
      return rc;
    }
    case BF_TYPE_LIST:
      return encode_list(e, node, v, depth);
    case BF_TYPE_STRUCT:
      return encode_struct(e, node, v, depth);
    case BF_TYPE_BINARY:
      return encode_binary(e, path, v);
    case BF_TYPE_DECIMAL128:
      return encode_decimal(e, f, path, v);
    case BF_TYPE_TIME_US:
      return encode_time(e, path, v);
    case BF_TYPE_DURATION_US:
      return encode_timedelta(e, path, v);
    case BF_TYPE_MAP:
      return encode_map(e, node, v, depth);
  }
  return refuse(e, path, "unsupported column type for %s", v);
}

int core_row_encode(core_row_plan_t *plan, PyObject *obj, core_row_buf_t *b, bf_error_t *err) {
  if (PyDateTimeAPI == NULL) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) return CORE_ROW_PYERR;
  }
  Py_ssize_t n = PyTuple_GET_SIZE(plan->attrs);
  if (plan->roots == NULL) {
    plan->roots = PyMem_Calloc(n ? (size_t)n : 1, sizeof *plan->roots);
    if (plan->roots == NULL) {
      PyErr_NoMemory();
      return CORE_ROW_PYERR;
    }
    plan->n_roots = (size_t)n;
  }
  enc_t e = {plan, b, err};
  PyObject *dict = PyObject_GenericGetDict(obj, NULL);
  if (dict == NULL) return CORE_ROW_PYERR;
  int rc = CORE_ROW_OK;
  Py_ssize_t pos = 0;
  for (Py_ssize_t i = 0; i < n && rc == CORE_ROW_OK; i++) {
    const bf_field_t *f = &plan->schema->fields[i];
    PyObject *v = dict_value(dict, &pos, PyTuple_GET_ITEM(plan->attrs, i));
    if (v == NULL) {
      if (PyErr_Occurred()) rc = CORE_ROW_PYERR;
      else if (f->nullable) rc = put(&e, BF_ROW_NULL, NULL, 0);
      else rc = refuse(&e, f->name, "required value is missing from the instance (%s)", obj);
      continue;
    }
    core_row_node_t *node = plan->roots[i];
    if (node == NULL && (node = plan->roots[i] = node_new(f, NULL, NULL)) == NULL) {
      rc = CORE_ROW_PYERR;
      continue;
    }
    Py_INCREF(v);
    rc = encode_value(&e, node, v, 0);
    Py_DECREF(v);
  }
  Py_DECREF(dict);
  return rc;
}
