/* Shared declarations of the bifrost._core extension's C files: _core.c (module,
 * schema functions, the status -> exception bridge), _core_channel.c (Channel), _core_producer.c
 * (the Producer type), _core_rows.c (model instance -> binary row) and
 * _core_events.c (producer events handed to a Python thread). */
#ifndef BIFROST_PY_CORE_H
#define BIFROST_PY_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>

#include "bifrost/error.h"
#include "bifrost/producer.h"
#include "bifrost/util.h"

typedef struct {
  PyObject *core_error;    /* bifrost._core.CoreError, a RuntimeError subclass */
  PyObject *error_factory; /* bifrost._errors.error_from_status, imported lazily */
  PyObject *channel_type;
  PyObject *producer_type;
} core_state;

core_state *core_state_of_type(PyTypeObject *type);
/* Sets the Python exception for a failed C call (class chosen by _errors.py from the
 * status name and operation); always returns NULL. */
PyObject *core_raise_status_op(core_state *state, const char *operation, int status,
                               const bf_error_t *err);
PyObject *core_raise_status(core_state *state, int status, const bf_error_t *err);
/* None -> 0 (no deadline), else seconds > 0. 0 or -1 with an exception. */
int core_parse_timeout(PyObject *obj, double *out);
int core_text_view(PyObject *obj, const char **data, Py_ssize_t *len, const char *what);
int core_check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t min, Py_ssize_t max);
int core_string_list(PyObject *seq_obj, char ***out, size_t *n_out, const char *what);
void core_free_string_list(char **items, size_t n);
/* Cancel callback for calls waiting without the GIL: runs pending signal handlers
 * (main thread); nonzero when one raised (the exception stays set). */
int core_interrupted(void *ctx);

extern PyType_Spec core_producer_spec;
extern PyType_Spec core_channel_spec; /* _core_channel.c */
PyObject *core_bytes_from_buffer(const bf_buffer_t *buf);
/* Takes a malloc'd C string, returns it as str and frees it. */
PyObject *core_str_from_malloced(char *text);

/* Producer events (_core_events.c): the C callback queues them (any thread, no
 * GIL needed); next_event(timeout) hands them to Python. */
void core_events_on_event(void *ctx, const bf_producer_event_t *event);
PyObject *core_next_event(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
/* Routes gRPC core's log lines into the same queue (kind "grpc_log"). */
void core_events_route_grpc_log(void);

#endif /* BIFROST_PY_CORE_H */
