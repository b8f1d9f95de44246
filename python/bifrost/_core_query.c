/* bifrost._core.QueryStream: one server-side query read chunk by chunk, so a result
 * flows through the client in bounded memory (QueryResult.to_reader feeds the
 * chunks to pyarrow's IPC stream reader).
 *
 * QueryStream(channel, sql, timeout=None, params=None) sends the query without
 * waiting; next() waits (GIL released) for the next piece of the result's Arrow IPC
 * stream (one record batch, as the server sends them) and returns it as bytes,
 * copied once from gRPC's receive buffers, or None at the end; errors raise the bifrost
 * exception of the query's status. Ctrl-C in the main thread cancels the server
 * query within ~100 ms (KeyboardInterrupt). cancel() may be called from any thread
 * (an asyncio task being cancelled): a waiting next() then raises. close() cancels
 * an unfinished query and frees it; dealloc does the same. */
#include "_core_query.h"

#include <stdbool.h>

#include "bifrost/client.h"
#include "bifrost/util.h"

typedef struct {
  PyObject_HEAD
  PyObject *channel;        /* the Channel object: keeps the C channel alive */
  bf_rpc_stream_t *stream;  /* NULL once closed */
  int busy;                 /* a next() runs without the GIL; guarded by the GIL */
  int close_pending;        /* close() came while busy: the next() frees */
  int done;
} QueryStreamObject;

static int QueryStream_init(QueryStreamObject *self, PyObject *args, PyObject *kwargs) {
  static char *keywords[] = {"channel", "sql", "timeout", "params", NULL};
  PyObject *channel_obj, *timeout_obj = Py_None, *params_obj = Py_None;
  const char *sql;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Os|OO:QueryStream", keywords, &channel_obj, &sql,
                                   &timeout_obj, &params_obj))
    return -1;
  if (self->channel != NULL) {
    PyErr_SetString(PyExc_RuntimeError, "QueryStream is already initialised");
    return -1;
  }
  bf_rpc_channel_t *channel = bf_py_channel_get(Py_TYPE(self), channel_obj);
  if (channel == NULL) return -1;
  double timeout;
  if (bf_py_parse_timeout(timeout_obj, &timeout) < 0) return -1;
  PyObject *params_seq = params_obj == Py_None ? Py_NewRef(Py_None)
                                               : PySequence_Fast(params_obj, "params must be a sequence");
  if (params_seq == NULL) return -1;
  bf_query_param_t *params;
  size_t n_params;
  if (bf_py_convert_params(params_seq, &params, &n_params) < 0) {
    Py_DECREF(params_seq);
    return -1;
  }
  bf_error_t err;
  bf_error_init(&err);
  /* Non-blocking: the request is packed (params copied) and handed to gRPC. */
  int status = bf_client_query_open(channel, sql, params, n_params, timeout, &self->stream, &err);
  PyMem_Free(params);
  Py_DECREF(params_seq);
  if (status != BF_OK) {
    self->stream = NULL;
    bf_py_raise_query_status(Py_TYPE(self), status, &err);
    return -1;
  }
  self->channel = Py_NewRef(channel_obj);
  return 0;
}

static void stream_free(QueryStreamObject *self) {
  bf_rpc_stream_t *stream = self->stream;
  self->stream = NULL;
  if (stream == NULL) return;
  Py_BEGIN_ALLOW_THREADS
  bf_rpc_stream_close(stream); /* cancels an unfinished query and waits for its status */
  Py_END_ALLOW_THREADS
}

static void QueryStream_dealloc(QueryStreamObject *self) {
  PyTypeObject *type = Py_TYPE(self);
  stream_free(self); /* never busy here: a running next() holds a reference */
  Py_CLEAR(self->channel);
  type->tp_free((PyObject *)self);
  Py_DECREF(type);
}

/* bf_rpc_cancel_fn while waiting without the GIL: runs pending signal handlers (they
 * run only in the main thread); a KeyboardInterrupt stays set for the caller. */
static int signalled(void *ctx) {
  (void)ctx;
  PyGILState_STATE gil = PyGILState_Ensure();
  int raised = PyErr_CheckSignals() < 0;
  PyGILState_Release(gil);
  return raised;
}

static PyObject *QueryStream_next(QueryStreamObject *self, PyObject *Py_UNUSED(ignored)) {
  if (self->stream == NULL || self->done) {
    if (self->stream == NULL && !self->done) {
      PyErr_SetString(PyExc_ValueError, "the query result was closed");
      return NULL;
    }
    Py_RETURN_NONE;
  }
  if (self->busy) {
    PyErr_SetString(PyExc_RuntimeError, "the query result is being read by another thread");
    return NULL;
  }
  self->busy = 1;
  Py_INCREF(self);
  bf_rpc_message_t *message = NULL;
  size_t offset = 0, size = 0;
  bf_error_t err;
  bf_error_init(&err);
  int status, done = 0;
  bf_rpc_stream_t *stream = self->stream;
  Py_BEGIN_ALLOW_THREADS
  status = bf_client_query_next_message(stream, &message, &offset, &size, &done, signalled, NULL, &err);
  Py_END_ALLOW_THREADS
  PyObject *result = NULL;
  if (status == BF_ECANCELLED && PyErr_Occurred()) {
    /* Ctrl-C: the query was cancelled, the KeyboardInterrupt propagates */
  } else if (status != BF_OK) {
    self->done = 1;
    bf_py_raise_query_status(Py_TYPE(self), status, &err);
  } else if (done) {
    self->done = 1;
    result = Py_NewRef(Py_None);
  } else {
    /* The piece's one copy: from gRPC's buffers into the bytes object pyarrow
     * then reads without copying (the GIL is not needed for the copy). */
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (result != NULL) {
      char *into = PyBytes_AS_STRING(result);
      Py_BEGIN_ALLOW_THREADS
      bf_rpc_message_read(message, offset, into, size);
      Py_END_ALLOW_THREADS
    }
  }
  bf_rpc_message_free(message);
  self->busy = 0;
  if (self->done || self->close_pending) stream_free(self);
  Py_DECREF(self);
  return result;
}

static PyObject *QueryStream_cancel(QueryStreamObject *self, PyObject *Py_UNUSED(ignored)) {
  if (self->stream != NULL && !self->done) bf_rpc_stream_cancel(self->stream);
  Py_RETURN_NONE;
}

static PyObject *QueryStream_close(QueryStreamObject *self, PyObject *Py_UNUSED(ignored)) {
  if (self->busy) {
    bf_rpc_stream_cancel(self->stream);
    self->close_pending = 1;
  } else {
    stream_free(self);
  }
  Py_RETURN_NONE;
}

static PyObject *QueryStream_get_done(QueryStreamObject *self, void *Py_UNUSED(closure)) {
  return PyBool_FromLong(self->done);
}

static PyMethodDef QueryStream_methods[] = {
    {"next", (PyCFunction)QueryStream_next, METH_NOARGS,
     "next() -> bytes | None: the next piece of the result's Arrow IPC stream, None at the end"},
    {"cancel", (PyCFunction)QueryStream_cancel, METH_NOARGS,
     "cancel(): cancels the server query; callable from any thread"},
    {"close", (PyCFunction)QueryStream_close, METH_NOARGS,
     "close(): cancels an unfinished query and frees the stream"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef QueryStream_getset[] = {
    {"done", (getter)QueryStream_get_done, NULL, "True once the stream ended (or failed)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot QueryStream_slots[] = {
    {Py_tp_doc, "QueryStream(channel, sql, timeout=None, params=None): a query whose result is "
                "read piece by piece with next()."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, QueryStream_init},
    {Py_tp_dealloc, QueryStream_dealloc},
    {Py_tp_methods, QueryStream_methods},
    {Py_tp_getset, QueryStream_getset},
    {0, NULL},
};

static PyType_Spec QueryStream_spec = {
    .name = "bifrost._core.QueryStream",
    .basicsize = sizeof(QueryStreamObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = QueryStream_slots,
};

int bf_py_query_add_types(PyObject *module) {
  PyObject *type = PyType_FromModuleAndSpec(module, &QueryStream_spec, NULL);
  if (type == NULL) return -1;
  int rc = PyModule_AddObjectRef(module, "QueryStream", type);
  Py_DECREF(type);
  return rc;
}
