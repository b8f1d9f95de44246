/* Query parameters for bifrost._core: the (type_code, value) pairs that
 * bifrost._sql.encode_params makes -> bf_query_param_t (declared in _core_query.h,
 * used by Channel.query and QueryStream). */
#include "_core_query.h"

/* One (type_code, value) pair -> p; a LIST's items go to *spare (advanced). */
static int convert_param(PyObject *item, bf_query_param_t *p, bf_query_param_t **spare, int depth) {
  long code;
  if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
      (code = PyLong_AsLong(PyTuple_GET_ITEM(item, 0))) < 0 || code > BF_PARAM_LIST ||
      (code == BF_PARAM_LIST && depth > 0)) {
    if (!PyErr_Occurred())
      PyErr_SetString(PyExc_TypeError, "params must be (type_code, value) pairs");
    return -1;
  }
  PyObject *value = PyTuple_GET_ITEM(item, 1); /* borrowed */
  p->type = (bf_param_type_t)code;
  switch (p->type) {
    case BF_PARAM_NULL:
      break;
    case BF_PARAM_INT64:
    case BF_PARAM_TIMESTAMP:
      p->value.i64 = PyLong_AsLongLong(value);
      break;
    case BF_PARAM_DOUBLE:
      p->value.f64 = PyFloat_AsDouble(value);
      break;
    case BF_PARAM_BOOL:
      p->value.boolean = PyObject_IsTrue(value) == 1;
      break;
    case BF_PARAM_DATE:
      p->value.days = (int32_t)PyLong_AsLong(value);
      break;
    case BF_PARAM_STRING:
    case BF_PARAM_DECIMAL: {
      Py_ssize_t len;
      p->str = PyUnicode_AsUTF8AndSize(value, &len);
      p->str_len = (size_t)len;
      break;
    }
    case BF_PARAM_BLOB: {
      char *data;
      Py_ssize_t len;
      if (PyBytes_AsStringAndSize(value, &data, &len) < 0) return -1;
      p->str = data;
      p->str_len = (size_t)len;
      break;
    }
    case BF_PARAM_LIST: {
      if (!PyList_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "a list parameter's value must be a list of pairs");
        return -1;
      }
      Py_ssize_t n = PyList_GET_SIZE(value);
      p->items = *spare;
      p->n_items = (size_t)n;
      *spare += n;
      for (Py_ssize_t k = 0; k < n; k++)
        if (convert_param(PyList_GET_ITEM(value, k), (bf_query_param_t *)&p->items[k], spare,
                          depth + 1) < 0)
          return -1;
      break;
    }
  }
  return PyErr_Occurred() ? -1 : 0;
}

/* Converts encoded parameters -- a sequence of (type_code, value) pairs made by
 * bifrost._sql.encode_params, type codes as bf_param_type_t; a LIST's value is a
 * list of such pairs -- into C params, list items in the same allocation (one
 * PyMem_Free releases everything). Strings and bytes stay borrowed from the
 * Python objects, which outlive the call. */
int bf_py_convert_params(PyObject *seq, bf_query_param_t **out, size_t *n_out) {
  *out = NULL;
  *n_out = 0;
  if (seq == Py_None) return 0;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  size_t total = (size_t)n;
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
    if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2 &&
        PyList_Check(PyTuple_GET_ITEM(item, 1)))
      total += (size_t)PyList_GET_SIZE(PyTuple_GET_ITEM(item, 1));
  }
  bf_query_param_t *params = PyMem_Calloc(total ? total : 1, sizeof *params);
  if (params == NULL) {
    PyErr_NoMemory();
    return -1;
  }
  bf_query_param_t *spare = params + n;
  for (Py_ssize_t i = 0; i < n; i++) {
    if (convert_param(PySequence_Fast_GET_ITEM(seq, i), &params[i], &spare, 0) < 0) {
      PyMem_Free(params);
      return -1;
    }
  }
  *out = params;
  *n_out = (size_t)n;
  return 0;
}
