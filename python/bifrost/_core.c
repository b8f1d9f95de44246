/* bifrost._core: the CPython extension over libbifrost. It exposes the schema
 * functions (fingerprint, parse_schema, validation, Arrow schema as IPC), an IPC
 * round trip used by the pyarrow compatibility tests, a gRPC Channel for the
 * reader side (_core_channel.c) and the background Producer for the writer side
 * (_core_producer.c, with _core_rows.c and _core_events.c; shared declarations in
 * _core.h). The pure-Python
 * package (the .py files in python/bifrost) builds the public API on top of it.
 *
 * Errors: every failing C call goes through core_raise_status(), the only place that
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
#include "_core.h"
#include "_core_query.h"


static struct PyModuleDef core_module;

static core_state *state_of_module(PyObject *module) { return (core_state *)PyModule_GetState(module); }

core_state *core_state_of_type(PyTypeObject *type) {
  return (core_state *)PyType_GetModuleState(type);
}

/* ---- errors ------------------------------------------------------------------ */

/* Sets the Python exception for a failed C call; always returns NULL. `operation`
 * ("query", "register", "insert", ... or NULL) lets _errors.py pick the class when a
 * status means different things in different calls (INVALID_ARGUMENT is a schema
 * error for register but a query error for query). */
PyObject *core_raise_status_op(core_state *state, const char *operation, int status,
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

PyObject *core_raise_status(core_state *state, int status, const bf_error_t *err) {
  return core_raise_status_op(state, NULL, status, err);
}

/* None -> 0 (no deadline), else a float number of seconds (> 0). */
int core_parse_timeout(PyObject *obj, double *out) {
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
int core_text_view(PyObject *obj, const char **data, Py_ssize_t *len, const char *what) {
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
int core_check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t min, Py_ssize_t max) {
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
int core_string_list(PyObject *seq_obj, char ***out, size_t *n_out, const char *what) {
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

void core_free_string_list(char **items, size_t n) {
  for (size_t i = 0; i < n; i++) free(items[i]);
  free(items);
}

PyObject *core_bytes_from_buffer(const bf_buffer_t *buf) {
  return PyBytes_FromStringAndSize((const char *)buf->data, (Py_ssize_t)buf->size);
}

PyObject *core_str_from_malloced(char *text) {
  PyObject *result = PyUnicode_FromString(text);
  free(text);
  return result;
}

/* ---- schema functions -------------------------------------------------------- */

/* Parses JSON Schema text given as str; on failure raises and returns -1. */
static int parse_schema_arg(core_state *state, PyObject *arg, bf_schema_t *schema) {
  const char *json;
  Py_ssize_t len;
  if (core_text_view(arg, &json, &len, "json_schema") < 0) return -1;
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_schema_from_json_schema(json, (size_t)len, schema, &err);
  if (status != BF_OK) {
    core_raise_status(state, status, &err);
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
  if (status != BF_OK) return core_raise_status(state, status, &err);
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
  if (status != BF_OK) return core_raise_status(state, status, &err);
  return core_str_from_malloced(text);
}

static PyObject *core_validate_namespace(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  core_state *state = state_of_module(module);
  if (!core_check_nargs("validate_namespace", nargs, 2, 2)) return NULL;
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
  if (status != BF_OK) return core_raise_status(state, status, &err);
  Py_RETURN_NONE;
}

static PyObject *core_validate_table(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  core_state *state = state_of_module(module);
  if (!core_check_nargs("validate_table", nargs, 2, 2)) return NULL;
  bf_schema_t schema;
  memset(&schema, 0, sizeof(schema));
  if (parse_schema_arg(state, args[0], &schema) < 0) return NULL;
  char **columns = NULL;
  size_t n_columns = 0;
  PyObject *result = NULL;
  if (core_string_list(args[1], &columns, &n_columns, "partition_columns") == 0) {
    bf_error_t err;
    bf_error_init(&err);
    int status = bf_schema_validate_partitions(&schema, (const char *const *)columns, n_columns, &err);
    if (status != BF_OK) {
      core_raise_status(state, status, &err);
    } else {
      result = Py_NewRef(Py_None);
    }
    core_free_string_list(columns, n_columns);
  }
  bf_schema_reset(&schema);
  return result;
}

static PyObject *arrow_schema_ipc(PyObject *module, PyObject *arg, bool logical) {
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
  int status = logical ? bf_schema_to_arrow_logical(&schema, &arrow_schema, &err)
                       : bf_schema_to_arrow(&schema, &arrow_schema, &err);
  if (status != BF_OK) goto done;
  status = bf_ipc_writer_init(&writer, &arrow_schema, &out, &err);
  if (status != BF_OK) goto done;
  status = bf_ipc_writer_finish(&writer, &err);
  bf_ipc_writer_reset(&writer);
  if (status != BF_OK) goto done;
  result = core_bytes_from_buffer(&out);
done:
  if (status != BF_OK) core_raise_status(state, status, &err);
  bf_buffer_reset(&out);
  bf_arrow_schema_release(&arrow_schema);
  bf_schema_reset(&schema);
  return result;
}

static PyObject *core_arrow_schema_ipc(PyObject *module, PyObject *arg) {
  return arrow_schema_ipc(module, arg, false);
}

/* The same with time / timedelta columns as Time64(us) / Duration(us) (they are
 * stored as Int64 microseconds): what read() casts query results to. */
static PyObject *core_arrow_schema_logical_ipc(PyObject *module, PyObject *arg) {
  return arrow_schema_ipc(module, arg, true);
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
  PyObject *result = status == BF_OK ? core_bytes_from_buffer(&out) : core_raise_status(state, status, &err);
  bf_buffer_reset(&out);
  return result;
}

/* build_ipc(json_schema, records, created_at_us, batch_id) -> bytes: the producer's
 * encoding path without the network (records -> C row builder -> IPC writer), so
 * tests can compare it with pyarrow. records is a sequence of JSON str/bytes. */
static PyObject *core_build_ipc(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  core_state *state = state_of_module(module);
  if (!core_check_nargs("build_ipc", nargs, 4, 4)) return NULL;
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
    result = core_bytes_from_buffer(&out);
  else
    core_raise_status(state, status, &err);
done:
  bf_buffer_reset(&out);
  bf_arrow_array_release(&batch);
  bf_arrow_schema_release(&arrow_schema);
  bf_batch_builder_destroy(builder);
  bf_schema_reset(&schema);
  Py_DECREF(records);
  return result;
}

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
    {"arrow_schema_logical_ipc", core_arrow_schema_logical_ipc, METH_O,
     "arrow_schema_logical_ipc(json_schema_text) -> bytes: the same, time and timedelta columns "
     "as Time64(us) / Duration(us)"},
    {"build_ipc", (PyCFunction)(void (*)(void))core_build_ipc, METH_FASTCALL,
     "build_ipc(json_schema, records, created_at_us, batch_id) -> bytes: rows -> C builder -> IPC"},
    {"next_event", (PyCFunction)(void (*)(void))core_next_event, METH_FASTCALL,
     "next_event(timeout) -> (producer_id, kind, table, count, status, message, lost) | None"},
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
  state->channel_type = PyType_FromModuleAndSpec(module, &core_channel_spec, NULL);
  if (state->channel_type == NULL) return -1;
  if (PyModule_AddObjectRef(module, "Channel", state->channel_type) < 0) return -1;
  if (bf_py_query_add_types(module) < 0) return -1;
  state->producer_type = PyType_FromModuleAndSpec(module, &core_producer_spec, NULL);
  if (state->producer_type == NULL) return -1;
  if (PyModule_AddObjectRef(module, "Producer", state->producer_type) < 0) return -1;
  core_events_route_grpc_log();
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
