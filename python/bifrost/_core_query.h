/* The query-stream part of bifrost._core (_core_query.c) and the few helpers of
 * _core.c it shares. */
#ifndef BIFROST_PY_CORE_QUERY_H
#define BIFROST_PY_CORE_QUERY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "bifrost/error.h"
#include "bifrost/query_param.h"
#include "bifrost/rpc.h"

/* Adds QueryStream to the module (called from the module's exec slot). */
int bf_py_query_add_types(PyObject *module);

/* Provided by _core.c. `caller` is a type created from the _core module (its state
 * holds the Channel type and the error factory). */
bf_rpc_channel_t *bf_py_channel_get(PyTypeObject *caller, PyObject *channel);
PyObject *bf_py_raise_query_status(PyTypeObject *caller, int status, const bf_error_t *err);
int bf_py_parse_timeout(PyObject *obj, double *out);
int bf_py_convert_params(PyObject *seq, bf_query_param_t **out, size_t *n_out);

#endif
