/* bifrost._core: the CPython extension over libbifrost. It exposes the schema
 * functions (fingerprint, parse_schema, validation, Arrow schema as IPC), an IPC
 * round trip used by the pyarrow compatibility tests, a gRPC Channel for the
 * reader side and the background Producer for the writer side. The pure-Python
 * package (the .py files in python/bifrost) builds the public API on top of it.
 *
 * Errors: every failing C call goes through raise_status(), the only place that
 * turns a bf status into a Python exception. It asks
 * bifrost._errors.error_from_status(status_name, message) for the exception
 * instance, so the status -> exception-class table lives in exactly one place
 * (_errors.py); if that module cannot be imported, _core.CoreError (kept in the
 * module state) is raised instead.
 *
 * Threads: calls that may block (network, waiting for the producer thread, joining
 * it) release the GIL. The producer's C thread never touches Python objects.
 * Module layout follows STYLE.md: multi-phase init, state in the module, heap types,
 * METH_FASTCALL for the hot insert path (METH_O is the FASTCALL form for one
 * argument). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/client.h"
#include "bifrost/error.h"
#include "bifrost/ipc.h"
#include "bifrost/producer.h"
#include "bifrost/rows.h"
#include "bifrost/rpc.h"
#include "bifrost/schema.h"
#include "bifrost/util.h"
#include "producer/producer_internal.h"
#include "_core_query.h"

typedef struct {
  PyObject *core_error;    /* bifrost._core.CoreError, a RuntimeError subclass */
  PyObject *error_factory; /* bifrost._errors.error_from_status, imported lazily */
  PyObject *channel_type;
  PyObject *producer_type;
} core_state;

static struct PyModuleDef core_module;

static core_state *state_of_module(PyObject *module) { return (core_state *)PyModule_GetState(module); }

static core_state *state_of_type(PyTypeObject *type) {
  return (core_state *)PyType_GetModuleState(type);
}

/* ---- errors ------------------------------------------------------------------ */

/* Sets the Python exception for a failed C call; always returns NULL. `operation`
 * ("query", "register", "insert", ... or NULL) lets _errors.py pick the class when a
 * status means different things in different calls (INVALID_ARGUMENT is a schema
 * error for register but a query error for query). */
static PyObject *raise_status_op(core_state *state, const char *operation, int status,
                                 const bf_error_t *err) {
  const char *message = err != NULL && err->message[0] != '\0' ? err->message : bf_status_text(status);
  if (status == BF_ENOMEM) return PyErr_NoMemory();
  if (state->error_factory == NULL) {
    PyObject *errors_module = PyImport_ImportModule("bifrost._errors");
    if (errors_module != NULL) {
      state->error_factory = PyObject_GetAttrString(errors_module, "error_from_status");
      Py_DECREF(errors_module);
    }
    if (state->error_factory == NULL) PyErr_Clear();
  }
  /* Server messages are not guaranteed to be valid UTF-8. */
  PyObject *text = PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "replace");
  if (text == NULL) return NULL;
  if (state->error_factory != NULL) {
    /* "N" steals the reference to text. */
    PyObject *exc = PyObject_CallFunction(state->error_factory, "sNz", bf_status_name(status), text,
                                          operation);
    if (exc == NULL) return NULL; /* the factory's own error propagates */
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
  }
  PyObject *args = Py_BuildValue("(sN)", bf_status_name(status), text); /* steals text */
  if (args != NULL) {
    PyErr_SetObject(state->core_error, args);
    Py_DECREF(args);
  }
  return NULL;
}

static PyObject *raise_status(core_state *state, int status, const bf_error_t *err) {
  return raise_status_op(state, NULL, status, err);
}

/* None -> 0 (no deadline), else a float number of seconds (> 0). */
static int parse_timeout(PyObject *obj, double *out) {
  if (obj == NULL || obj == Py_None) {
    *out = 0;
    return 0;
  }
  double value = PyFloat_AsDouble(obj);
  if (value == -1.0 && PyErr_Occurred()) return -1;
  if (!(value > 0)) {
    PyErr_SetString(PyExc_ValueError, "timeout must be a positive number of seconds or None");
    return -1;
  }
  *out = value;
  return 0;
}

/* Borrowed UTF-8 view of a str or bytes-like object held by the caller. */
static int text_view(PyObject *obj, const char **data, Py_ssize_t *len, const char *what) {
  if (PyUnicode_Check(obj)) {
    *data = PyUnicode_AsUTF8AndSize(obj, len);
    return *data == NULL ? -1 : 0;
  }
  if (PyBytes_Check(obj)) {
    *data = PyBytes_AS_STRING(obj);
    *len = PyBytes_GET_SIZE(obj);
    return 0;
  }
  PyErr_Format(PyExc_TypeError, "%s must be str or bytes, not %.100s", what, Py_TYPE(obj)->tp_name);
  return -1;
}

/* Positional-count check for METH_FASTCALL functions: 1 if fine, else raises and 0. */
static int check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t min, Py_ssize_t max) {
  if (nargs >= min && nargs <= max) return 1;
  if (min == max) {
    PyErr_Format(PyExc_TypeError, "%s() takes exactly %zd argument(s) (%zd given)", name, min, nargs);
  } else {
    PyErr_Format(PyExc_TypeError, "%s() takes from %zd to %zd argument(s) (%zd given)", name, min,
                 max, nargs);
  }
  return 0;
}

/* Copies a sequence of str into a malloc'd array of malloc'd UTF-8 strings. */
static int string_list(PyObject *seq_obj, char ***out, size_t *n_out, const char *what) {
  *out = NULL;
  *n_out = 0;
  if (seq_obj == NULL || seq_obj == Py_None) return 0;
  PyObject *seq = PySequence_Fast(seq_obj, what);
  if (seq == NULL) return -1;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  char **items = calloc(n > 0 ? (size_t)n : 1, sizeof(char *));
  if (items == NULL) {
    Py_DECREF(seq);
    PyErr_NoMemory();
    return -1;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = PySequence_Fast_GET_ITEM(seq, i); /* borrowed */
    const char *text = PyUnicode_Check(item) ? PyUnicode_AsUTF8(item) : NULL;
    if (text == NULL) {
      if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "%s must contain only str", what);
      goto fail;
    }
    items[i] = strdup(text);
    if (items[i] == NULL) {
      PyErr_NoMemory();
      goto fail;
    }
  }
  Py_DECREF(seq);
  *out = items;
  *n_out = (size_t)n;
  return 0;
fail:
  for (Py_ssize_t i = 0; i < n; i++) free(items[i]);
  free(items);
  Py_DECREF(seq);
  return -1;
}

static void free_string_list(char **items, size_t n) {
  for (size_t i = 0; i < n; i++) free(items[i]);
  free(items);
}

static PyObject *bytes_from_buffer(const bf_buffer_t *buf) {
  return PyBytes_FromStringAndSize((const char *)buf->data, (Py_ssize_t)buf->size);
}

/* Takes a malloc'd C string, returns it as str and frees it. */
static PyObject *str_from_malloced(char *text) {
  PyObject *result = PyUnicode_FromString(text);
  free(text);
  return result;
}

/* ---- schema functions -------------------------------------------------------- */

/* Parses JSON Schema text given as str; on failure raises and returns -1. */
static int parse_schema_arg(core_state *state, PyObject *arg, bf_schema_t *schema) {
  const char *json;
  Py_ssize_t len;
  if (text_view(arg, &json, &len, "json_schema") < 0) return -1;
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_schema_from_json_schema(json, (size_t)len, schema, &err);
  if (status != BF_OK) {
    raise_status(state, status, &err);
    return -1;
  }
  return 0;
}

static PyObject *core_compute_fingerprint(PyObject *module, PyObject *arg) {
  core_state *state = state_of_module(module);
  bf_schema_t schema;
  memset(&schema, 0, sizeof(schema));
  if (parse_schema_arg(state, arg, &schema) < 0) return NULL;
  char fingerprint[33];
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_schema_fingerprint(&schema, fingerprint, &err);
  bf_schema_reset(&schema);
  if (status != BF_OK) return raise_status(state, status, &err);
  return PyUnicode_FromString(fingerprint);
}

static PyObject *core_parse_schema(PyObject *module, PyObject *arg) {
  core_state *state = state_of_module(module);
  bf_schema_t schema;
  memset(&schema, 0, sizeof(schema));
  if (parse_schema_arg(state, arg, &schema) < 0) return NULL;
  char *text = NULL;
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_schema_parse_json(&schema, &text, &err);
  bf_schema_reset(&schema);
  if (status != BF_OK) return raise_status(state, status, &err);
  return str_from_malloced(text);
}

static PyObject *core_validate_namespace(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  core_state *state = state_of_module(module);
  if (!check_nargs("validate_namespace", nargs, 2, 2)) return NULL;
  if (!PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1])) {
    PyErr_SetString(PyExc_TypeError, "validate_namespace(part, what) takes two str");
    return NULL;
  }
  Py_ssize_t part_len;
  const char *part = PyUnicode_AsUTF8AndSize(args[0], &part_len);
  const char *what = PyUnicode_AsUTF8(args[1]);
  if (part == NULL || what == NULL) return NULL;
  if (strlen(part) != (size_t)part_len) {
    /* An embedded NUL would hide the rest of the name from the C check. */
    PyErr_Format(PyExc_ValueError, "%s %R is invalid: contains a NUL character", what, args[0]);
    return NULL;
  }
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_namespace_validate(part, what, &err);
  if (status != BF_OK) return raise_status(state, status, &err);
  Py_RETURN_NONE;
}

static PyObject *core_validate_table(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  core_state *state = state_of_module(module);
  if (!check_nargs("validate_table", nargs, 2, 2)) return NULL;
  bf_schema_t schema;
  memset(&schema, 0, sizeof(schema));
  if (parse_schema_arg(state, args[0], &schema) < 0) return NULL;
  char **columns = NULL;
  size_t n_columns = 0;
  PyObject *result = NULL;
  if (string_list(args[1], &columns, &n_columns, "partition_columns") == 0) {
    bf_error_t err;
    bf_error_init(&err);
    int status = bf_schema_validate_partitions(&schema, (const char *const *)columns, n_columns, &err);
    if (status != BF_OK) {
      raise_status(state, status, &err);
    } else {
      result = Py_NewRef(Py_None);
    }
    free_string_list(columns, n_columns);
  }
  bf_schema_reset(&schema);
  return result;
}

static PyObject *core_arrow_schema_ipc(PyObject *module, PyObject *arg) {
  core_state *state = state_of_module(module);
  bf_schema_t schema;
  memset(&schema, 0, sizeof(schema));
  if (parse_schema_arg(state, arg, &schema) < 0) return NULL;
  PyObject *result = NULL;
  struct ArrowSchema arrow_schema;
  memset(&arrow_schema, 0, sizeof(arrow_schema));
  bf_buffer_t out;
  bf_buffer_init(&out);
  bf_ipc_writer_t writer;
  memset(&writer, 0, sizeof(writer));
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_schema_to_arrow(&schema, &arrow_schema, &err);
  if (status != BF_OK) goto done;
  status = bf_ipc_writer_init(&writer, &arrow_schema, &out, &err);
  if (status != BF_OK) goto done;
  status = bf_ipc_writer_finish(&writer, &err);
  bf_ipc_writer_reset(&writer);
  if (status != BF_OK) goto done;
  result = bytes_from_buffer(&out);
done:
  if (status != BF_OK) raise_status(state, status, &err);
  bf_buffer_reset(&out);
  bf_arrow_schema_release(&arrow_schema);
  bf_schema_reset(&schema);
  return result;
}

/* Decodes an IPC stream with bf_ipc_reader and re-encodes it with bf_ipc_writer. */
static int roundtrip(const uint8_t *data, size_t size, bf_buffer_t *out, bf_error_t *err) {
  bf_ipc_reader_t *reader = NULL;
  struct ArrowSchema schema;
  memset(&schema, 0, sizeof(schema));
  bf_ipc_writer_t writer;
  memset(&writer, 0, sizeof(writer));
  bool writer_open = false;
  int status = bf_ipc_reader_create(data, size, &reader, err);
  if (status != BF_OK) goto fail;
  status = bf_ipc_reader_schema(reader, &schema, err);
  if (status != BF_OK) goto fail;
  status = bf_ipc_writer_init(&writer, &schema, out, err);
  if (status != BF_OK) goto fail;
  writer_open = true;
  for (;;) {
    struct ArrowArray batch;
    memset(&batch, 0, sizeof(batch));
    int has_batch = 0;
    status = bf_ipc_reader_next(reader, &batch, &has_batch, err);
    if (status != BF_OK) goto fail;
    if (!has_batch) break;
    status = bf_ipc_writer_write(&writer, &batch, err);
    bf_arrow_array_release(&batch);
    if (status != BF_OK) goto fail;
  }
  status = bf_ipc_writer_finish(&writer, err);
fail:
  if (writer_open) bf_ipc_writer_reset(&writer);
  bf_arrow_schema_release(&schema);
  if (reader != NULL) bf_ipc_reader_destroy(reader);
  return status;
}

static PyObject *core_ipc_roundtrip(PyObject *module, PyObject *arg) {
  core_state *state = state_of_module(module);
  Py_buffer view;
  if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
  bf_buffer_t out;
  bf_buffer_init(&out);
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = roundtrip(view.buf, (size_t)view.len, &out, &err);
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&view);
  PyObject *result = status == BF_OK ? bytes_from_buffer(&out) : raise_status(state, status, &err);
  bf_buffer_reset(&out);
  return result;
}

/* build_ipc(json_schema, records, created_at_us, batch_id) -> bytes: the producer's
 * encoding path without the network (records -> C row builder -> IPC writer), so
 * tests can compare it with pyarrow. records is a sequence of JSON str/bytes. */
static PyObject *core_build_ipc(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  core_state *state = state_of_module(module);
  if (!check_nargs("build_ipc", nargs, 4, 4)) return NULL;
  long long created_at_us = PyLong_AsLongLong(args[2]);
  if (created_at_us == -1 && PyErr_Occurred()) return NULL;
  const char *batch_id = PyUnicode_AsUTF8(args[3]);
  if (batch_id == NULL) return NULL;
  PyObject *records = PySequence_Fast(args[1], "build_ipc: records must be a sequence");
  if (records == NULL) return NULL;
  bf_schema_t schema;
  memset(&schema, 0, sizeof(schema));
  if (parse_schema_arg(state, args[0], &schema) < 0) {
    Py_DECREF(records);
    return NULL;
  }
  PyObject *result = NULL;
  bf_error_t err;
  bf_error_init(&err);
  bf_batch_builder_t *builder = NULL;
  struct ArrowSchema arrow_schema;
  struct ArrowArray batch;
  memset(&arrow_schema, 0, sizeof(arrow_schema));
  memset(&batch, 0, sizeof(batch));
  bf_buffer_t out;
  bf_buffer_init(&out);
  int status = bf_batch_builder_create(&schema, &builder, &err);
  for (Py_ssize_t i = 0; status == BF_OK && i < PySequence_Fast_GET_SIZE(records); i++) {
    PyObject *record = PySequence_Fast_GET_ITEM(records, i); /* borrowed */
    Py_ssize_t len;
    const char *json;
    if (PyBytes_Check(record)) {
      json = PyBytes_AS_STRING(record);
      len = PyBytes_GET_SIZE(record);
    } else if ((json = PyUnicode_AsUTF8AndSize(record, &len)) == NULL) {
      goto done;
    }
    status = bf_batch_builder_append_json(builder, json, (size_t)len, &err);
  }
  if (status == BF_OK)
    status = bf_batch_builder_finish(builder, created_at_us, batch_id, &arrow_schema, &batch, &err);
  if (status == BF_OK) {
    bf_ipc_writer_t writer;
    status = bf_ipc_writer_init(&writer, &arrow_schema, &out, &err);
    if (status == BF_OK) {
      status = bf_ipc_writer_write(&writer, &batch, &err);
      if (status == BF_OK) status = bf_ipc_writer_finish(&writer, &err);
      bf_ipc_writer_reset(&writer);
    }
  }
  if (status == BF_OK)
    result = bytes_from_buffer(&out);
  else
    raise_status(state, status, &err);
done:
  bf_buffer_reset(&out);
  bf_arrow_array_release(&batch);
  bf_arrow_schema_release(&arrow_schema);
  bf_batch_builder_destroy(builder);
  bf_schema_reset(&schema);
  Py_DECREF(records);
  return result;
}

/* ---- Channel ----------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  bf_rpc_channel_t *channel; /* owned; freed only in dealloc, so GIL-free calls are safe */
} ChannelObject;

static int Channel_init(ChannelObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"target", "tls", "authorization", NULL};
  const char *target;
  int tls = 0;
  const char *authorization = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|pz:Channel", keywords, &target, &tls,
                                   &authorization))
    return -1;
  if (self->channel != NULL) {
    PyErr_SetString(PyExc_RuntimeError, "Channel is already initialised");
    return -1;
  }
  bf_rpc_channel_options_t options = {.target = target, .tls = tls != 0, .authorization = authorization};
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_rpc_channel_create(&options, &self->channel, &err);
  if (status != BF_OK) {
    self->channel = NULL;
    raise_status(state_of_type(Py_TYPE(self)), status, &err);
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
  if (parse_timeout(timeout_obj, &timeout) < 0) return NULL;
  char **columns;
  size_t n_columns;
  if (string_list(partitions, &columns, &n_columns, "partition_columns") < 0) return NULL;
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
  free_string_list(columns, n_columns);
  if (status != BF_OK) return raise_status_op(state_of_type(Py_TYPE(self)), "register", status, &err);
  return Py_BuildValue("(ss)", status_text, server_fingerprint);
}

/* Converts encoded parameters -- a sequence of (type_code, value) pairs made by
 * bifrost._sql.encode_params, type codes as bf_param_type_t -- into C params.
 * Strings stay borrowed from the Python objects, which outlive the call. */
static int convert_params(PyObject *seq, bf_query_param_t **out, size_t *n_out) {
  *out = NULL;
  *n_out = 0;
  if (seq == Py_None) return 0;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  bf_query_param_t *params = PyMem_Calloc(n ? (size_t)n : 1, sizeof *params);
  if (params == NULL) {
    PyErr_NoMemory();
    return -1;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = PySequence_Fast_GET_ITEM(seq, i); /* borrowed */
    long code;
    PyObject *value;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
        (code = PyLong_AsLong(PyTuple_GET_ITEM(item, 0))) < 0 || code > BF_PARAM_TIMESTAMP) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "params must be (type_code, value) pairs");
      goto fail;
    }
    value = PyTuple_GET_ITEM(item, 1); /* borrowed */
    bf_query_param_t *p = &params[i];
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
      case BF_PARAM_STRING: {
        Py_ssize_t len;
        p->str = PyUnicode_AsUTF8AndSize(value, &len);
        p->str_len = (size_t)len;
        break;
      }
    }
    if (PyErr_Occurred()) goto fail;
  }
  *out = params;
  *n_out = (size_t)n;
  return 0;
fail:
  PyMem_Free(params);
  return -1;
}

/* bf_rpc_cancel_fn for blocking calls made without the GIL: briefly takes the GIL to
 * run pending signal handlers; a KeyboardInterrupt stays set for the caller. */
static int interrupted(void *ctx) {
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
  if (parse_timeout(timeout_obj, &timeout) < 0) return NULL;
  PyObject *params_seq = params_obj == Py_None
                             ? Py_NewRef(Py_None)
                             : PySequence_Fast(params_obj, "params must be a sequence");
  if (params_seq == NULL) return NULL;
  bf_query_param_t *params;
  size_t n_params;
  if (convert_params(params_seq, &params, &n_params) < 0) {
    Py_DECREF(params_seq);
    return NULL;
  }
  bf_buffer_t ipc;
  bf_buffer_init(&ipc);
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_client_query(self->channel, sql, params, n_params, timeout, interrupted, NULL, &ipc,
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
  PyObject *result = status == BF_OK ? bytes_from_buffer(&ipc)
                                     : raise_status_op(state_of_type(Py_TYPE(self)), "query", status, &err);
  bf_buffer_reset(&ipc);
  return result;
}

static PyObject *Channel_list_tables(ChannelObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"timeout", NULL};
  PyObject *timeout_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:list_tables", keywords, &timeout_obj)) return NULL;
  if (channel_ready(self) < 0) return NULL;
  double timeout;
  if (parse_timeout(timeout_obj, &timeout) < 0) return NULL;
  char *json = NULL;
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_client_list_tables(self->channel, timeout, &json, &err);
  Py_END_ALLOW_THREADS
  if (status != BF_OK) return raise_status(state_of_type(Py_TYPE(self)), status, &err);
  return str_from_malloced(json);
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
  if (parse_timeout(timeout_obj, &timeout) < 0) return NULL;
  bf_table_name_t name = {catalog, schema_name, table};
  char *json = NULL;
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_client_describe_table(self->channel, &name, timeout, &json, &err);
  Py_END_ALLOW_THREADS
  if (status != BF_OK) return raise_status(state_of_type(Py_TYPE(self)), status, &err);
  return str_from_malloced(json);
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
  if (parse_timeout(timeout_obj, &timeout) < 0) return NULL;
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
  if (status != BF_OK) return raise_status(state_of_type(Py_TYPE(self)), status, &err);
  return str_from_malloced(json);
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
  if (parse_timeout(timeout_obj, &timeout) < 0) return NULL;
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
  if (status != BF_OK) return raise_status(state_of_type(Py_TYPE(self)), status, &err);
  return str_from_malloced(json);
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
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Channel_slots[] = {
    {Py_tp_doc, "Channel(target, tls=False, authorization=None): a gRPC channel to bifrost-server. "
                "Thread-safe; blocking calls release the GIL."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, Channel_init},
    {Py_tp_dealloc, Channel_dealloc},
    {Py_tp_methods, Channel_methods},
    {0, NULL},
};

static PyType_Spec Channel_spec = {
    .name = "bifrost._core.Channel",
    .basicsize = sizeof(ChannelObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Channel_slots,
};

/* Helpers shared with _core_query.c (QueryStream), declared in _core_query.h. */
bf_rpc_channel_t *bf_py_channel_get(PyTypeObject *caller, PyObject *obj) {
  core_state *state = state_of_type(caller);
  if (!PyObject_TypeCheck(obj, (PyTypeObject *)state->channel_type)) {
    PyErr_Format(PyExc_TypeError, "expected a bifrost._core.Channel, not %.100s", Py_TYPE(obj)->tp_name);
    return NULL;
  }
  if (channel_ready((ChannelObject *)obj) < 0) return NULL;
  return ((ChannelObject *)obj)->channel;
}

PyObject *bf_py_raise_query_status(PyTypeObject *caller, int status, const bf_error_t *err) {
  return raise_status_op(state_of_type(caller), "query", status, err);
}

int bf_py_parse_timeout(PyObject *obj, double *out) { return parse_timeout(obj, out); }

int bf_py_convert_params(PyObject *seq, bf_query_param_t **out, size_t *n_out) {
  return convert_params(seq, out, n_out);
}

/* ---- Producer ------------------------------------------------------------------ */

/* How insert_record turns a model instance into a record: the binary row of one
 * tagged value per field (rows.h), read straight from the instance's __dict__,
 * or, for schemas / values outside its kinds, the model's pydantic-core JSON. */
typedef enum { PK_STR = 0, PK_INT, PK_FLOAT, PK_BOOL, PK_DATETIME } plan_kind_t;

typedef struct {
  PyObject *name; /* interned attribute name */
  plan_kind_t kind;
} plan_field_t;

typedef struct {
  PyObject_HEAD
  bf_producer_t *producer;       /* owned; freed only in dealloc */
  bf_backpressure_t backpressure; /* copy of the create option */
  PyObject *model;               /* the table's model class (set_record_plan) */
  PyObject *to_json;             /* model.__pydantic_serializer__.to_json */
  plan_field_t *plan;            /* NULL: every record goes through to_json */
  Py_ssize_t n_plan;
} ProducerObject;

static int parse_backpressure(const char *text, bf_backpressure_t *out) {
  if (strcmp(text, "block") == 0) {
    *out = BF_BACKPRESSURE_BLOCK;
  } else if (strcmp(text, "drop_newest") == 0) {
    *out = BF_BACKPRESSURE_DROP_NEWEST;
  } else if (strcmp(text, "raise") == 0) {
    *out = BF_BACKPRESSURE_RAISE;
  } else {
    PyErr_Format(PyExc_ValueError,
                 "backpressure must be 'block', 'drop_newest' or 'raise', not '%s'", text);
    return -1;
  }
  return 0;
}

static int Producer_init(ProducerObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"target",
                             "catalog",
                             "schema_name",
                             "table",
                             "json_schema",
                             "partition_columns",
                             "tls",
                             "authorization",
                             "batch_size",
                             "scheduled_delay_secs",
                             "max_queue_rows",
                             "backpressure",
                             "block_timeout_secs",
                             "rpc_timeout_secs",
                             "max_retries",
                             "max_queue_bytes",
                             NULL};
  const char *target, *catalog, *schema_name, *table, *json_schema;
  PyObject *partitions = Py_None, *block_timeout_obj = Py_None;
  int tls = 0, max_retries = -1;
  const char *authorization = NULL, *backpressure = "block";
  Py_ssize_t batch_size = 1000, max_queue_rows = 1000000, max_queue_bytes = 0;
  double delay = 30.0, rpc_timeout = 30.0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sssss|O$pzndnsOdin:Producer", keywords, &target,
                                   &catalog, &schema_name, &table, &json_schema, &partitions, &tls,
                                   &authorization, &batch_size, &delay, &max_queue_rows,
                                   &backpressure, &block_timeout_obj, &rpc_timeout, &max_retries,
                                   &max_queue_bytes))
    return -1;
  if (self->producer != NULL) {
    PyErr_SetString(PyExc_RuntimeError, "Producer is already initialised");
    return -1;
  }
  if (batch_size < 1 || max_queue_rows < 1 || max_queue_bytes < 0) {
    PyErr_SetString(PyExc_ValueError,
                    "batch_size and max_queue_rows must be >= 1, max_queue_bytes >= 0 (0: none)");
    return -1;
  }
  bf_producer_options_t options;
  bf_producer_options_init(&options);
  if (parse_backpressure(backpressure, &options.backpressure) < 0) return -1;
  if (parse_timeout(block_timeout_obj, &options.block_timeout_secs) < 0) return -1;
  char **columns;
  size_t n_columns;
  if (string_list(partitions, &columns, &n_columns, "partition_columns") < 0) return -1;
  options.target = target;
  options.authorization = authorization;
  options.tls = tls != 0;
  options.name.catalog = catalog;
  options.name.schema_name = schema_name;
  options.name.table = table;
  options.json_schema = json_schema;
  options.partition_columns = (const char *const *)columns;
  options.n_partition_columns = n_columns;
  options.batch_size = (size_t)batch_size;
  options.scheduled_delay_secs = delay;
  options.max_queue_rows = (size_t)max_queue_rows;
  options.max_queue_bytes = (size_t)max_queue_bytes;
  options.rpc_timeout_secs = rpc_timeout;
  options.max_retries = max_retries;
  bf_error_t err;
  bf_error_init(&err);
  bf_producer_t *producer = NULL;
  int status = bf_producer_create(&options, &producer, &err);
  free_string_list(columns, n_columns);
  if (status != BF_OK) {
    raise_status(state_of_type(Py_TYPE(self)), status, &err);
    return -1;
  }
  self->producer = producer;
  self->backpressure = options.backpressure;
  return 0;
}

static void clear_plan(ProducerObject *self) {
  for (Py_ssize_t i = 0; i < self->n_plan; i++) Py_XDECREF(self->plan[i].name);
  PyMem_Free(self->plan);
  self->plan = NULL;
  self->n_plan = 0;
}

static void Producer_dealloc(ProducerObject *self) {
  PyTypeObject *type = Py_TYPE(self);
  clear_plan(self);
  Py_CLEAR(self->model);
  Py_CLEAR(self->to_json);
  if (self->producer != NULL) {
    bf_producer_t *producer = self->producer;
    self->producer = NULL;
    /* Destroy flushes (bounded) and joins the C thread: never with the GIL held. */
    Py_BEGIN_ALLOW_THREADS
    bf_producer_destroy(producer);
    Py_END_ALLOW_THREADS
  }
  type->tp_free((PyObject *)self);
  Py_DECREF(type);
}

static int producer_ready(ProducerObject *self) {
  if (self->producer == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "Producer is not initialised");
    return -1;
  }
  return 0;
}

/* insert(record_json): the hot path. The GIL stays held unless the BLOCK policy
 * has to wait for room, in which case the blocking insert runs without it. */
static PyObject *Producer_insert(ProducerObject *self, PyObject *arg) {
  if (producer_ready(self) < 0) return NULL;
  const char *json;
  Py_ssize_t len;
  if (text_view(arg, &json, &len, "record") < 0) return NULL;
  bf_error_t err;
  err.status = BF_OK;
  err.message[0] = '\0';
  bool would_block = false;
  int status = bf__producer_insert_json_nowait(self->producer, json, (size_t)len, &would_block, &err);
  if (would_block) {
    /* `arg` keeps `json` alive while the GIL is released (str and bytes are immutable). */
    Py_BEGIN_ALLOW_THREADS
    status = bf_producer_insert_json(self->producer, json, (size_t)len, &err);
    Py_END_ALLOW_THREADS
  }
  if (status != BF_OK) return raise_status_op(state_of_type(Py_TYPE(self)), "insert", status, &err);
  Py_RETURN_NONE;
}

/* ---- fast record path ----------------------------------------------------------- */

static PyObject *Producer_set_record_plan(ProducerObject *self, PyObject *args) {
  PyObject *model, *to_json, *fields;
  if (!PyArg_ParseTuple(args, "OOO:set_record_plan", &model, &to_json, &fields)) return NULL;
  if (!PyType_Check(model) || !PyCallable_Check(to_json)) {
    PyErr_SetString(PyExc_TypeError, "set_record_plan(model_class, to_json, fields)");
    return NULL;
  }
  plan_field_t *plan = NULL;
  Py_ssize_t n = 0;
  if (fields != Py_None) {
    PyObject *seq = PySequence_Fast(fields, "fields must be a sequence of (name, kind)");
    if (seq == NULL) return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    plan = PyMem_Calloc((size_t)(n ? n : 1), sizeof *plan);
    if (plan == NULL) {
      Py_DECREF(seq);
      return PyErr_NoMemory();
    }
    static const char *kinds[] = {"str", "int", "float", "bool", "datetime"};
    for (Py_ssize_t i = 0; i < n; i++) {
      const char *name, *kind;
      if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ss", &name, &kind)) {
        for (Py_ssize_t k = 0; k < i; k++) Py_XDECREF(plan[k].name);
        PyMem_Free(plan);
        Py_DECREF(seq);
        return NULL;
      }
      int found = -1;
      for (int k = 0; k < 5; k++)
        if (strcmp(kind, kinds[k]) == 0) found = k;
      plan[i].name = PyUnicode_InternFromString(name);
      plan[i].kind = (plan_kind_t)(found < 0 ? 0 : found);
      if (found < 0 || plan[i].name == NULL) {
        if (found < 0) PyErr_Format(PyExc_ValueError, "unknown field kind '%s'", kind);
        for (Py_ssize_t k = 0; k <= i; k++) Py_XDECREF(plan[k].name);
        PyMem_Free(plan);
        Py_DECREF(seq);
        return NULL;
      }
    }
    Py_DECREF(seq);
  }
  clear_plan(self);
  Py_INCREF(model);
  Py_XSETREF(self->model, model);
  Py_INCREF(to_json);
  Py_XSETREF(self->to_json, to_json);
  self->plan = plan;
  self->n_plan = n;
  Py_RETURN_NONE;
}

typedef struct {
  uint8_t *data;
  size_t size, cap;
  uint8_t inline_buf[512];
} row_buf_t;

static int row_reserve(row_buf_t *b, size_t more) {
  if (b->size + more <= b->cap) return 0;
  size_t cap = b->cap * 2;
  while (cap < b->size + more) cap *= 2;
  uint8_t *grown = b->data == b->inline_buf ? PyMem_Malloc(cap) : PyMem_Realloc(b->data, cap);
  if (grown == NULL) {
    PyErr_NoMemory();
    return -1;
  }
  if (b->data == b->inline_buf) memcpy(grown, b->inline_buf, b->size);
  b->data = grown;
  b->cap = cap;
  return 0;
}

static void row_put(row_buf_t *b, uint8_t tag, const void *bytes, size_t n) {
  b->data[b->size++] = tag;
  memcpy(b->data + b->size, bytes, n);
  b->size += n;
}

static int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  int era = (y >= 0 ? y : y - 399) / 400;
  int yoe = y - era * 400;
  int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (int64_t)era * 146097 + doe - 719468;
}

/* Microseconds since the epoch of a datetime (naive = UTC). 0 ok, -1 error. */
static int datetime_us(PyObject *v, int64_t *out) {
  int64_t days = days_from_civil(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v), PyDateTime_GET_DAY(v));
  int64_t us = (((days * 24 + PyDateTime_DATE_GET_HOUR(v)) * 60 + PyDateTime_DATE_GET_MINUTE(v)) * 60 +
                PyDateTime_DATE_GET_SECOND(v)) * 1000000LL + PyDateTime_DATE_GET_MICROSECOND(v);
  PyObject *tz = PyDateTime_DATE_GET_TZINFO(v);
  if (tz != Py_None && tz != PyDateTime_TimeZone_UTC) {
    PyObject *offset = PyObject_CallMethod(tz, "utcoffset", "O", v);
    if (offset == NULL) return -1;
    if (PyDelta_Check(offset))
      us -= ((int64_t)PyDateTime_DELTA_GET_DAYS(offset) * 86400 + PyDateTime_DELTA_GET_SECONDS(offset)) *
                1000000LL + PyDateTime_DELTA_GET_MICROSECONDS(offset);
    Py_DECREF(offset);
  }
  *out = us;
  return 0;
}

/* Encodes obj's fields as a binary row. 1 = done, 0 = a value is outside the
 * plan's kinds (use JSON), -1 = Python error. */
static int encode_row(ProducerObject *self, PyObject *obj, row_buf_t *b) {
  PyObject *dict = PyObject_GenericGetDict(obj, NULL);
  if (dict == NULL) {
    PyErr_Clear();
    return 0;
  }
  int result = 1;
  for (Py_ssize_t i = 0; i < self->n_plan && result == 1; i++) {
    PyObject *v = PyDict_GetItemWithError(dict, self->plan[i].name);
    if (v == NULL) {
      result = PyErr_Occurred() ? -1 : 0;
      break;
    }
    if (row_reserve(b, 9) < 0) {
      result = -1;
      break;
    }
    if (v == Py_None) {
      b->data[b->size++] = BF_ROW_NULL;
      continue;
    }
    switch (self->plan[i].kind) {
      case PK_STR: {
        Py_ssize_t n;
        const char *text = PyUnicode_Check(v) ? PyUnicode_AsUTF8AndSize(v, &n) : NULL;
        if (text == NULL) {
          if (PyErr_Occurred()) PyErr_Clear(); /* e.g. lone surrogates: JSON path reports it */
          result = 0;
          break;
        }
        if ((uint64_t)n > UINT32_MAX || row_reserve(b, 5 + (size_t)n) < 0) {
          result = PyErr_Occurred() ? -1 : 0;
          break;
        }
        uint8_t len[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
        row_put(b, BF_ROW_STRING, len, 4);
        memcpy(b->data + b->size, text, (size_t)n);
        b->size += (size_t)n;
        break;
      }
      case PK_INT:
      case PK_FLOAT: {
        if (PyFloat_CheckExact(v) && self->plan[i].kind == PK_FLOAT) {
          double d = PyFloat_AS_DOUBLE(v);
          if (!isfinite(d)) result = 0; /* pydantic's own rules for inf / nan */
          else row_put(b, BF_ROW_FLOAT64, &d, 8);
        } else if (PyLong_CheckExact(v)) {
          int overflow = 0;
          long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
          if (overflow || (x == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            result = 0;
          } else {
            int64_t x64 = (int64_t)x;
            row_put(b, BF_ROW_INT64, &x64, 8);
          }
        } else {
          result = 0;
        }
        break;
      }
      case PK_BOOL:
        if (v == Py_True || v == Py_False) {
          uint8_t flag = v == Py_True;
          row_put(b, BF_ROW_BOOL, &flag, 1);
        } else {
          result = 0;
        }
        break;
      case PK_DATETIME: {
        int64_t us;
        if (!PyDateTime_Check(v)) {
          result = 0;
        } else if (datetime_us(v, &us) < 0) {
          PyErr_Clear();
          result = 0;
        } else {
          row_put(b, BF_ROW_TIMESTAMP_US, &us, 8);
        }
        break;
      }
    }
  }
  Py_DECREF(dict);
  return result;
}

/* Enqueues a JSON record or a binary row, waiting without the GIL only when the
 * BLOCK policy must wait. Returns 0 or -1 with an exception set. */
static int enqueue_record(ProducerObject *self, const char *data, size_t len, bool binary) {
  bf_error_t err;
  err.status = BF_OK;
  err.message[0] = '\0';
  bool would_block = false;
  int status = binary ? bf__producer_insert_row_nowait(self->producer, (const uint8_t *)data, len,
                                                       &would_block, &err)
                      : bf__producer_insert_json_nowait(self->producer, data, len, &would_block, &err);
  if (would_block) {
    Py_BEGIN_ALLOW_THREADS
    status = binary ? bf_producer_insert_row(self->producer, (const uint8_t *)data, len, &err)
                    : bf_producer_insert_json(self->producer, data, len, &err);
    Py_END_ALLOW_THREADS
  }
  if (status != BF_OK) {
    raise_status_op(state_of_type(Py_TYPE(self)), "insert", status, &err);
    return -1;
  }
  return 0;
}

static int insert_one(ProducerObject *self, PyObject *obj, const char *op, Py_ssize_t index) {
  PyTypeObject *model = (PyTypeObject *)self->model;
  if (Py_TYPE(obj) != model && !PyType_IsSubtype(Py_TYPE(obj), model)) {
    if (index < 0)
      PyErr_Format(PyExc_TypeError, "%s() expects a %s instance, got %s", op, model->tp_name,
                   Py_TYPE(obj)->tp_name);
    else
      PyErr_Format(PyExc_TypeError, "%s() expects %s instances, got %s at index %zd", op,
                   model->tp_name, Py_TYPE(obj)->tp_name, index);
    return -1;
  }
  if (self->plan != NULL) {
    row_buf_t b;
    b.data = b.inline_buf;
    b.size = 0;
    b.cap = sizeof b.inline_buf;
    int encoded = encode_row(self, obj, &b);
    int rc = encoded == 1 ? enqueue_record(self, (const char *)b.data, b.size, true) : -1;
    if (b.data != b.inline_buf) PyMem_Free(b.data);
    if (encoded != 0) return encoded == 1 ? rc : -1;
  }
  PyObject *json = PyObject_CallOneArg(self->to_json, obj);
  if (json == NULL) return -1;
  const char *text;
  Py_ssize_t len;
  int rc = text_view(json, &text, &len, "record") < 0 ? -1 : enqueue_record(self, text, (size_t)len, false);
  Py_DECREF(json);
  return rc;
}

static int plan_ready(ProducerObject *self) {
  if (producer_ready(self) < 0) return -1;
  if (self->model == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "set_record_plan() was not called");
    return -1;
  }
  return 0;
}

/* insert_record(obj): the hot path of DatasetProducer.insert. */
static PyObject *Producer_insert_record(ProducerObject *self, PyObject *obj) {
  if (plan_ready(self) < 0 || insert_one(self, obj, "insert", -1) < 0) return NULL;
  Py_RETURN_NONE;
}

static PyObject *Producer_insert_records(ProducerObject *self, PyObject *iterable) {
  if (plan_ready(self) < 0) return NULL;
  PyObject *it = PyObject_GetIter(iterable);
  if (it == NULL) return NULL;
  Py_ssize_t n = 0;
  PyObject *obj;
  while ((obj = PyIter_Next(it)) != NULL) {
    int rc = insert_one(self, obj, "insert_many", n);
    Py_DECREF(obj);
    if (rc < 0) {
      Py_DECREF(it);
      return NULL;
    }
    n++;
  }
  Py_DECREF(it);
  if (PyErr_Occurred()) return NULL;
  return PyLong_FromSsize_t(n);
}

/* ---- Arrow batches ----------------------------------------------------------------- */

static void release_schema_capsule(PyObject *capsule) {
  struct ArrowSchema *schema = PyCapsule_GetPointer(capsule, "arrow_schema");
  if (schema != NULL) {
    if (schema->release) schema->release(schema);
    free(schema);
  }
}

/* arrow_schema() -> PyCapsule "arrow_schema": the table's user columns as an
 * Arrow struct schema (what insert_arrow expects, before system columns). */
static PyObject *Producer_arrow_schema(ProducerObject *self, PyObject *Py_UNUSED(ignored)) {
  if (producer_ready(self) < 0) return NULL;
  struct ArrowSchema *schema = calloc(1, sizeof *schema);
  if (schema == NULL) return PyErr_NoMemory();
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_producer_user_arrow_schema(self->producer, schema, &err);
  if (status != BF_OK) {
    free(schema);
    return raise_status(state_of_type(Py_TYPE(self)), status, &err);
  }
  PyObject *capsule = PyCapsule_New(schema, "arrow_schema", release_schema_capsule);
  if (capsule == NULL) {
    schema->release(schema);
    free(schema);
  }
  return capsule;
}

/* insert_arrow(schema_capsule, array_capsule) -> rows: takes the batch over (the
 * capsule's array is marked released) and enqueues it. */
static PyObject *Producer_insert_arrow(ProducerObject *self, PyObject *args) {
  PyObject *schema_capsule, *array_capsule;
  Py_ssize_t nbytes = 0;
  if (!PyArg_ParseTuple(args, "OO|n:insert_arrow", &schema_capsule, &array_capsule, &nbytes))
    return NULL;
  if (producer_ready(self) < 0) return NULL;
  struct ArrowSchema *schema = PyCapsule_GetPointer(schema_capsule, "arrow_schema");
  if (schema == NULL) return NULL;
  struct ArrowArray *array = PyCapsule_GetPointer(array_capsule, "arrow_array");
  if (array == NULL) return NULL;
  if (array->release == NULL) {
    PyErr_SetString(PyExc_ValueError, "insert_arrow: the Arrow array was already consumed");
    return NULL;
  }
  long long rows = (long long)array->length;
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_producer_insert_arrow(self->producer, schema, array, nbytes > 0 ? (size_t)nbytes : 0,
                                    &err);
  Py_END_ALLOW_THREADS
  if (status != BF_OK) return raise_status_op(state_of_type(Py_TYPE(self)), "insert_arrow", status, &err);
  return PyLong_FromLongLong(rows);
}

static PyObject *Producer_flush(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if (producer_ready(self) < 0) return NULL;
  if (!check_nargs("flush", nargs, 0, 1)) return NULL;
  double timeout;
  if (parse_timeout(nargs > 0 ? args[0] : Py_None, &timeout) < 0) return NULL;
  uint64_t n_flushed = 0;
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_producer_flush(self->producer, timeout, &n_flushed, &err);
  Py_END_ALLOW_THREADS
  if (status != BF_OK) return raise_status_op(state_of_type(Py_TYPE(self)), "flush", status, &err);
  return PyLong_FromUnsignedLongLong(n_flushed);
}

static PyObject *Producer_shutdown(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if (producer_ready(self) < 0) return NULL;
  if (!check_nargs("shutdown", nargs, 0, 1)) return NULL;
  double timeout;
  if (parse_timeout(nargs > 0 ? args[0] : Py_None, &timeout) < 0) return NULL;
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_producer_shutdown(self->producer, timeout, &err);
  Py_END_ALLOW_THREADS
  if (status != BF_OK) return raise_status_op(state_of_type(Py_TYPE(self)), "flush", status, &err);
  Py_RETURN_NONE;
}

static PyObject *Producer_register(ProducerObject *self, PyObject *Py_UNUSED(ignored)) {
  if (producer_ready(self) < 0) return NULL;
  char status_text[32] = "";
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf_producer_register(self->producer, status_text, &err);
  Py_END_ALLOW_THREADS
  if (status != BF_OK) return raise_status_op(state_of_type(Py_TYPE(self)), "register", status, &err);
  return PyUnicode_FromString(status_text);
}

static int set_stat(PyObject *dict, const char *key, uint64_t value) {
  PyObject *number = PyLong_FromUnsignedLongLong(value);
  if (number == NULL) return -1;
  int rc = PyDict_SetItemString(dict, key, number);
  Py_DECREF(number);
  return rc;
}

static PyObject *Producer_stats(ProducerObject *self, PyObject *Py_UNUSED(ignored)) {
  if (producer_ready(self) < 0) return NULL;
  bf_producer_stats_t stats;
  bf_producer_get_stats(self->producer, &stats);
  PyObject *dict = PyDict_New();
  if (dict == NULL) return NULL;
  if (set_stat(dict, "inserted", stats.inserted) < 0 || set_stat(dict, "queued", stats.queued) < 0 ||
      set_stat(dict, "in_flight", stats.in_flight) < 0 ||
      set_stat(dict, "sent", stats.sent) < 0 || set_stat(dict, "sent_batches", stats.sent_batches) < 0 ||
      set_stat(dict, "retried", stats.retried_batches) < 0 ||
      set_stat(dict, "acknowledged", stats.acknowledged) < 0 ||
      set_stat(dict, "retries", stats.retried_batches) < 0 ||
      set_stat(dict, "dropped", stats.dropped) < 0 || set_stat(dict, "failed", stats.failed) < 0 ||
      set_stat(dict, "failed_batches", stats.failed_batches) < 0)
    goto fail;
  PyObject *last_error = stats.last_error[0] != '\0'
                             ? PyUnicode_DecodeUTF8(stats.last_error, (Py_ssize_t)strlen(stats.last_error), "replace")
                             : Py_NewRef(Py_None);
  if (last_error == NULL) goto fail;
  int rc = PyDict_SetItemString(dict, "last_error", last_error);
  Py_DECREF(last_error);
  if (rc < 0) goto fail;
  return dict;
fail:
  Py_DECREF(dict);
  return NULL;
}

static PyObject *Producer_get_fingerprint(ProducerObject *self, void *Py_UNUSED(closure)) {
  if (producer_ready(self) < 0) return NULL;
  return PyUnicode_FromString(bf_producer_fingerprint(self->producer));
}

static PyMethodDef Producer_methods[] = {
    {"insert", (PyCFunction)Producer_insert, METH_O,
     "insert(record_json: str | bytes) -> None; enqueues one JSON record"},
    {"set_record_plan", (PyCFunction)Producer_set_record_plan, METH_VARARGS,
     "set_record_plan(model_class, to_json, fields) -> None; fields: [(name, kind)] for binary "
     "rows (kinds str, int, float, bool, datetime) or None for JSON only"},
    {"insert_record", (PyCFunction)Producer_insert_record, METH_O,
     "insert_record(model_instance) -> None; type-checked, encoded and enqueued in C"},
    {"insert_records", (PyCFunction)Producer_insert_records, METH_O,
     "insert_records(iterable) -> int; insert_record for each item"},
    {"arrow_schema", (PyCFunction)Producer_arrow_schema, METH_NOARGS,
     "arrow_schema() -> PyCapsule 'arrow_schema' of the table's user columns"},
    {"insert_arrow", (PyCFunction)Producer_insert_arrow, METH_VARARGS,
     "insert_arrow(schema_capsule, array_capsule, nbytes=0) -> int rows; takes the batch over"},
    {"flush", (PyCFunction)(void (*)(void))Producer_flush, METH_FASTCALL,
     "flush(timeout=None) -> int rows acknowledged by this flush"},
    {"shutdown", (PyCFunction)(void (*)(void))Producer_shutdown, METH_FASTCALL,
     "shutdown(timeout=None) -> None; flushes and stops the thread (idempotent)"},
    {"register", (PyCFunction)Producer_register, METH_NOARGS,
     "register() -> 'created' | 'already_exists'"},
    {"stats", (PyCFunction)Producer_stats, METH_NOARGS, "stats() -> dict of counters"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Producer_getset[] = {
    {"fingerprint", (getter)Producer_get_fingerprint, NULL, "table fingerprint (32 hex chars)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Producer_slots[] = {
    {Py_tp_doc, "Producer(target, catalog, schema_name, table, json_schema, partition_columns=None, "
                "*, tls=False, authorization=None, batch_size=1000, scheduled_delay_secs=30.0, "
                "max_queue_rows=1000000, backpressure='block', block_timeout_secs=None, "
                "rpc_timeout_secs=30.0, max_retries=-1): the C background producer."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, Producer_init},
    {Py_tp_dealloc, Producer_dealloc},
    {Py_tp_methods, Producer_methods},
    {Py_tp_getset, Producer_getset},
    {0, NULL},
};

static PyType_Spec Producer_spec = {
    .name = "bifrost._core.Producer",
    .basicsize = sizeof(ProducerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Producer_slots,
};

/* ---- module ---------------------------------------------------------------------- */

static PyMethodDef core_functions[] = {
    {"compute_fingerprint", core_compute_fingerprint, METH_O,
     "compute_fingerprint(json_schema_text) -> 32-char hex fingerprint"},
    {"parse_schema", core_parse_schema, METH_O,
     "parse_schema(json_schema_text) -> JSON text {name: {arrow_type, nullable}}"},
    {"validate_namespace", (PyCFunction)(void (*)(void))core_validate_namespace, METH_FASTCALL,
     "validate_namespace(part, what) -> None; raises ValueError naming the part"},
    {"validate_table", (PyCFunction)(void (*)(void))core_validate_table, METH_FASTCALL,
     "validate_table(json_schema_text, partition_columns) -> None"},
    {"arrow_schema_ipc", core_arrow_schema_ipc, METH_O,
     "arrow_schema_ipc(json_schema_text) -> bytes (IPC stream: schema, no batches)"},
    {"build_ipc", (PyCFunction)(void (*)(void))core_build_ipc, METH_FASTCALL,
     "build_ipc(json_schema, records, created_at_us, batch_id) -> bytes: rows -> C builder -> IPC"},
    {"ipc_roundtrip", core_ipc_roundtrip, METH_O,
     "ipc_roundtrip(ipc_bytes) -> bytes: decode with the C reader, re-encode with the C writer"},
    {NULL, NULL, 0, NULL},
};

static int core_exec(PyObject *module) {
  core_state *state = state_of_module(module);
  PyDateTime_IMPORT;
  if (PyDateTimeAPI == NULL) return -1;
  state->core_error = PyErr_NewExceptionWithDoc(
      "bifrost._core.CoreError",
      "Raised by _core when bifrost._errors is unavailable; args are (status_name, message).",
      PyExc_RuntimeError, NULL);
  if (state->core_error == NULL) return -1;
  if (PyModule_AddObjectRef(module, "CoreError", state->core_error) < 0) return -1;
  state->channel_type = PyType_FromModuleAndSpec(module, &Channel_spec, NULL);
  if (state->channel_type == NULL) return -1;
  if (PyModule_AddObjectRef(module, "Channel", state->channel_type) < 0) return -1;
  if (bf_py_query_add_types(module) < 0) return -1;
  state->producer_type = PyType_FromModuleAndSpec(module, &Producer_spec, NULL);
  if (state->producer_type == NULL) return -1;
  if (PyModule_AddObjectRef(module, "Producer", state->producer_type) < 0) return -1;
  return 0;
}

static int core_traverse(PyObject *module, visitproc visit, void *arg) {
  core_state *state = state_of_module(module);
  Py_VISIT(state->core_error);
  Py_VISIT(state->error_factory);
  Py_VISIT(state->channel_type);
  Py_VISIT(state->producer_type);
  return 0;
}

static int core_clear(PyObject *module) {
  core_state *state = state_of_module(module);
  Py_CLEAR(state->core_error);
  Py_CLEAR(state->error_factory);
  Py_CLEAR(state->channel_type);
  Py_CLEAR(state->producer_type);
  return 0;
}

static void core_free(void *module) { core_clear((PyObject *)module); }

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "bifrost._core",
    .m_doc = "C core of bifrost: schema, IPC, gRPC channel and background producer.",
    .m_size = sizeof(core_state),
    .m_methods = core_functions,
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC PyInit__core(void) { return PyModuleDef_Init(&core_module); }
