/* bifrost._core.Channel: a gRPC channel to bifrost-server for the reader side
 * (register, query, list/describe, stats, maintenance, history/truncate/drop), and
 * the helpers _core_query.c uses to reach it. Blocking calls release the GIL. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/client.h"
#include "bifrost/error.h"
#include "bifrost/rpc.h"
#include "bifrost/util.h"
#include "_core.h"
#include "_core_query.h"


typedef struct {
  PyObject_HEAD
  bf_rpc_channel_t *channel; /* owned; freed only in dealloc, so GIL-free calls are safe */
} ChannelObject;

static int Channel_init(ChannelObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"target", "tls", "authorization", "tls_ca_file", "tls_cert_file",
                             "tls_key_file", NULL};
  const char *target;
  int tls = 0;
  const char *authorization = NULL, *ca = NULL, *cert = NULL, *key = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|pzzzz:Channel", keywords, &target, &tls,
                                   &authorization, &ca, &cert, &key))
    return -1;
  if (self->channel != NULL) {
    PyErr_SetString(PyExc_RuntimeError, "Channel is already initialised");
    return -1;
  }
  bf_rpc_channel_options_t options = {.target = target, .tls = tls != 0, .authorization = authorization,
                                      .tls_ca_file = ca, .tls_cert_file = cert, .tls_key_file = key};
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_rpc_channel_create(&options, &self->channel, &err);
  if (status != BF_OK) {
    self->channel = NULL;
    core_raise_status(core_state_of_type(Py_TYPE(self)), status, &err);
    return -1;
  }
  return 0;
}

static void Channel_dealloc(ChannelObject *self) {
  PyTypeObject *type = Py_TYPE(self);
  if (self->channel != NULL) {
    bf_rpc_channel_t *channel = self->channel;
    self->channel = NULL;
    Py_BEGIN_ALLOW_THREADS
    bf_rpc_channel_destroy(channel);
    Py_END_ALLOW_THREADS
  }
  type->tp_free((PyObject *)self);
  Py_DECREF(type); /* heap types are referenced by their instances */
}

static int channel_ready(ChannelObject *self) {
  if (self->channel == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "Channel is not initialised");
    return -1;
  }
  return 0;
}

static PyObject *Channel_register_table(ChannelObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"catalog",     "schema_name", "table", "json_schema",
                             "partition_columns", "fingerprint", "timeout", "schema_mode", NULL};
  const char *catalog, *schema_name, *table, *json_schema, *fingerprint = "", *schema_mode = "";
  PyObject *partitions = Py_None, *timeout_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ssss|OzOs:register_table", keywords, &catalog,
                                   &schema_name, &table, &json_schema, &partitions, &fingerprint,
                                   &timeout_obj, &schema_mode))
    return NULL;
  if (channel_ready(self) < 0) return NULL;
  double timeout;
  if (core_parse_timeout(timeout_obj, &timeout) < 0) return NULL;
  char **columns;
  size_t n_columns;
  if (core_string_list(partitions, &columns, &n_columns, "partition_columns") < 0) return NULL;
  bf_table_name_t name = {catalog, schema_name, table};
  char status_text[32] = "";
  char server_fingerprint[33] = "";
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_client_register_table_mode(self->channel, &name, json_schema,
                                         (const char *const *)columns, n_columns,
                                         fingerprint != NULL ? fingerprint : "", schema_mode,
                                         timeout, status_text, server_fingerprint, &err);
  Py_END_ALLOW_THREADS
  core_free_string_list(columns, n_columns);
  if (status != BF_OK) return core_raise_status_op(core_state_of_type(Py_TYPE(self)), "register", status, &err);
  return Py_BuildValue("(ss)", status_text, server_fingerprint);
}

/* bf_rpc_cancel_fn for blocking calls made without the GIL: briefly takes the GIL to
 * run pending signal handlers; a KeyboardInterrupt stays set for the caller. */
int core_interrupted(void *ctx) {
  (void)ctx;
  PyGILState_STATE gil = PyGILState_Ensure();
  int raised = PyErr_CheckSignals() < 0;
  PyGILState_Release(gil);
  return raised;
}

static PyObject *Channel_query(ChannelObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"sql", "timeout", "params", NULL};
  const char *sql;
  PyObject *timeout_obj = Py_None, *params_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|OO:query", keywords, &sql, &timeout_obj,
                                   &params_obj))
    return NULL;
  if (channel_ready(self) < 0) return NULL;
  double timeout;
  if (core_parse_timeout(timeout_obj, &timeout) < 0) return NULL;
  PyObject *params_seq = params_obj == Py_None
                             ? Py_NewRef(Py_None)
                             : PySequence_Fast(params_obj, "params must be a sequence");
  if (params_seq == NULL) return NULL;
  bf_query_param_t *params;
  size_t n_params;
  if (bf_py_convert_params(params_seq, &params, &n_params) < 0) {
    Py_DECREF(params_seq);
    return NULL;
  }
  bf_buffer_t ipc;
  bf_buffer_init(&ipc);
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_client_query(self->channel, sql, params, n_params, timeout, core_interrupted, NULL, &ipc,
                           &err);
  Py_END_ALLOW_THREADS
  if (status == BF_ECANCELLED && PyErr_Occurred()) { /* Ctrl-C: the call was cancelled */
    PyMem_Free(params);
    Py_DECREF(params_seq);
    bf_buffer_reset(&ipc);
    return NULL;
  }
  PyMem_Free(params);
  Py_DECREF(params_seq);
  PyObject *result = status == BF_OK ? core_bytes_from_buffer(&ipc)
                                     : core_raise_status_op(core_state_of_type(Py_TYPE(self)), "query", status, &err);
  bf_buffer_reset(&ipc);
  return result;
}

static PyObject *Channel_list_tables(ChannelObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"timeout", NULL};
  PyObject *timeout_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:list_tables", keywords, &timeout_obj)) return NULL;
  if (channel_ready(self) < 0) return NULL;
  double timeout;
  if (core_parse_timeout(timeout_obj, &timeout) < 0) return NULL;
  char *json = NULL;
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_client_list_tables(self->channel, timeout, &json, &err);
  Py_END_ALLOW_THREADS
  if (status != BF_OK) return core_raise_status(core_state_of_type(Py_TYPE(self)), status, &err);
  return core_str_from_malloced(json);
}

static PyObject *Channel_server_stats(ChannelObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"timeout", NULL};
  PyObject *timeout_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:server_stats", keywords, &timeout_obj)) return NULL;
  if (channel_ready(self) < 0) return NULL;
  double timeout;
  if (core_parse_timeout(timeout_obj, &timeout) < 0) return NULL;
  char *json = NULL;
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_client_server_stats(self->channel, timeout, &json, &err);
  Py_END_ALLOW_THREADS
  if (status != BF_OK) return core_raise_status(core_state_of_type(Py_TYPE(self)), status, &err);
  return core_str_from_malloced(json);
}

static PyObject *Channel_describe_table(ChannelObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"catalog", "schema_name", "table", "timeout", NULL};
  const char *catalog, *schema_name, *table;
  PyObject *timeout_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sss|O:describe_table", keywords, &catalog,
                                   &schema_name, &table, &timeout_obj))
    return NULL;
  if (channel_ready(self) < 0) return NULL;
  double timeout;
  if (core_parse_timeout(timeout_obj, &timeout) < 0) return NULL;
  bf_table_name_t name = {catalog, schema_name, table};
  char *json = NULL;
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_client_describe_table(self->channel, &name, timeout, &json, &err);
  Py_END_ALLOW_THREADS
  if (status != BF_OK) return core_raise_status(core_state_of_type(Py_TYPE(self)), status, &err);
  return core_str_from_malloced(json);
}

static PyObject *Channel_maintain_table(ChannelObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"catalog", "schema_name", "table", "operations", "retention_hours",
                             "timeout", NULL};
  const char *catalog, *schema_name, *table;
  PyObject *ops_obj, *retention_obj = Py_None, *timeout_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sssO|OO:maintain_table", keywords, &catalog,
                                   &schema_name, &table, &ops_obj, &retention_obj, &timeout_obj))
    return NULL;
  if (channel_ready(self) < 0) return NULL;
  double timeout, retention = -1;
  if (core_parse_timeout(timeout_obj, &timeout) < 0) return NULL;
  if (retention_obj != Py_None) {
    retention = PyFloat_AsDouble(retention_obj);
    if (retention == -1 && PyErr_Occurred()) return NULL;
    if (!(retention >= 0)) {
      PyErr_SetString(PyExc_ValueError, "retention_hours must be >= 0");
      return NULL;
    }
  }
  PyObject *seq = PySequence_Fast(ops_obj, "operations must be a sequence of str");
  if (seq == NULL) return NULL;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  const char **ops = calloc((size_t)n + 1, sizeof *ops);
  if (ops == NULL) {
    Py_DECREF(seq);
    return PyErr_NoMemory();
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    ops[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
    if (ops[i] == NULL) {
      free(ops);
      Py_DECREF(seq);
      return NULL;
    }
  }
  bf_table_name_t name = {catalog, schema_name, table};
  char *json = NULL;
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_client_maintain_table(self->channel, &name, ops, (size_t)n, retention, timeout, &json,
                                    &err);
  Py_END_ALLOW_THREADS
  free(ops);
  Py_DECREF(seq);
  if (status != BF_OK) return core_raise_status(core_state_of_type(Py_TYPE(self)), status, &err);
  return core_str_from_malloced(json);
}

/* history / truncate / drop of one table (bifrost.v1 TableHistory, TruncateTable,
 * DropTable) -> JSON text. */
static PyObject *Channel_table_lifecycle(ChannelObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"operation", "catalog", "schema_name", "table", "confirm",
                             "discard_wal", "timeout", NULL};
  const char *op, *catalog, *schema_name, *table, *confirm = "";
  int discard_wal = 0;
  PyObject *timeout_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ssss|spO:table_lifecycle", keywords, &op,
                                   &catalog, &schema_name, &table, &confirm, &discard_wal,
                                   &timeout_obj))
    return NULL;
  if (channel_ready(self) < 0) return NULL;
  double timeout;
  if (core_parse_timeout(timeout_obj, &timeout) < 0) return NULL;
  int which = strcmp(op, "history") == 0 ? 0 : strcmp(op, "truncate") == 0 ? 1
              : strcmp(op, "drop") == 0    ? 2 : -1;
  if (which < 0) {
    PyErr_Format(PyExc_ValueError, "unknown table operation '%s' (history, truncate, drop)", op);
    return NULL;
  }
  bf_table_name_t name = {catalog, schema_name, table};
  char *json = NULL;
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  if (which == 0) status = bf_client_table_history(self->channel, &name, timeout, &json, &err);
  else if (which == 1)
    status = bf_client_truncate_table(self->channel, &name, confirm, timeout, &json, &err);
  else
    status = bf_client_drop_table(self->channel, &name, confirm, discard_wal, timeout, &json, &err);
  Py_END_ALLOW_THREADS
  if (status != BF_OK) return core_raise_status(core_state_of_type(Py_TYPE(self)), status, &err);
  return core_str_from_malloced(json);
}

static PyMethodDef Channel_methods[] = {
    {"table_lifecycle", (PyCFunction)(void (*)(void))Channel_table_lifecycle,
     METH_VARARGS | METH_KEYWORDS,
     "table_lifecycle(operation, catalog, schema_name, table, confirm='', discard_wal=False, "
     "timeout=None) -> JSON text; operation is 'history', 'truncate' or 'drop'"},
    {"maintain_table", (PyCFunction)(void (*)(void))Channel_maintain_table, METH_VARARGS | METH_KEYWORDS,
     "maintain_table(catalog, schema_name, table, operations, retention_hours=None, timeout=None) "
     "-> JSON text"},
    {"register_table", (PyCFunction)(void (*)(void))Channel_register_table, METH_VARARGS | METH_KEYWORDS,
     "register_table(catalog, schema_name, table, json_schema, partition_columns=None, "
     "fingerprint=None, timeout=None, schema_mode='') -> (status, fingerprint)"},
    {"query", (PyCFunction)(void (*)(void))Channel_query, METH_VARARGS | METH_KEYWORDS,
     "query(sql, timeout=None, params=None) -> bytes (one Arrow IPC stream); params bound server-side"},
    {"list_tables", (PyCFunction)(void (*)(void))Channel_list_tables, METH_VARARGS | METH_KEYWORDS,
     "list_tables(timeout=None) -> JSON text (array of table objects)"},
    {"describe_table", (PyCFunction)(void (*)(void))Channel_describe_table, METH_VARARGS | METH_KEYWORDS,
     "describe_table(catalog, schema_name, table, timeout=None) -> JSON text"},
    {"server_stats", (PyCFunction)(void (*)(void))Channel_server_stats, METH_VARARGS | METH_KEYWORDS,
     "server_stats(timeout=None) -> JSON text"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Channel_slots[] = {
    {Py_tp_doc, "Channel(target, tls=False, authorization=None, tls_ca_file=None, tls_cert_file=None, "
     "tls_key_file=None): a gRPC channel to bifrost-server. "
                "Thread-safe; blocking calls release the GIL."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, Channel_init},
    {Py_tp_dealloc, Channel_dealloc},
    {Py_tp_methods, Channel_methods},
    {0, NULL},
};

PyType_Spec core_channel_spec = {
    .name = "bifrost._core.Channel",
    .basicsize = sizeof(ChannelObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Channel_slots,
};

/* Helpers shared with _core_query.c (QueryStream), declared in _core_query.h. */
bf_rpc_channel_t *bf_py_channel_get(PyTypeObject *caller, PyObject *obj) {
  core_state *state = core_state_of_type(caller);
  if (!PyObject_TypeCheck(obj, (PyTypeObject *)state->channel_type)) {
    PyErr_Format(PyExc_TypeError, "expected a bifrost._core.Channel, not %.100s", Py_TYPE(obj)->tp_name);
    return NULL;
  }
  if (channel_ready((ChannelObject *)obj) < 0) return NULL;
  return ((ChannelObject *)obj)->channel;
}

PyObject *bf_py_raise_query_status(PyTypeObject *caller, int status, const bf_error_t *err) {
  return core_raise_status_op(core_state_of_type(caller), "query", status, err);
}

int bf_py_parse_timeout(PyObject *obj, double *out) { return core_parse_timeout(obj, out); }

