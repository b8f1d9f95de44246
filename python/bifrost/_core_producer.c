/* bifrost._core.Producer: the C background producer (include/bifrost/producer.h)
 * as a Python type. insert_record reads a model instance into a binary row
 * (_core_rows.c) and enqueues it with the GIL held; only a BLOCK-policy wait, a
 * flush and a shutdown release the GIL, and those poll core_interrupted so Ctrl-C
 * raises KeyboardInterrupt within ~50 ms. A record too large for any batch raises
 * RecordTooLargeError (operation "record_too_large"). With events=True the
 * producer's events are queued for bifrost._producer's dispatcher thread
 * (_core_events.c). */
#include "_core.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "_core_rows.h"
#include "bifrost/producer.h"
#include "producer/producer_internal.h"

/* ---- Producer ------------------------------------------------------------------ */

/* insert_record turns a model instance into a binary row (_core_rows.c), read
 * straight from the instance's attributes; a value the table cannot hold exactly
 * is refused at insert, naming the field. */

typedef struct {
  PyObject_HEAD
  bf_producer_t *producer;       /* owned; freed only in dealloc */
  bf_backpressure_t backpressure; /* copy of the create option */
  PyObject *model;               /* the table's model class (set_record_plan) */
  core_row_plan_t plan;          /* attrs NULL until set_record_plan */
  long long id;                  /* events name the producer by it */
} ProducerObject;

static long long next_producer_id = 1; /* under the GIL */

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
                             "max_batch_bytes",
                             "events",
                             "tls_ca_file",
                             "tls_cert_file",
                             "tls_key_file",
                             "max_in_flight",
                             NULL};
  const char *target, *catalog, *schema_name, *table, *json_schema;
  PyObject *partitions = Py_None, *block_timeout_obj = Py_None;
  int tls = 0, max_retries = -1;
  const char *authorization = NULL, *backpressure = "block";
  Py_ssize_t batch_size = 1000, max_queue_rows = 1000000, max_queue_bytes = 0, max_batch_bytes = 0;
  Py_ssize_t max_in_flight = BF_PRODUCER_DEFAULT_MAX_IN_FLIGHT;
  int events = 0;
  const char *tls_ca = NULL, *tls_cert = NULL, *tls_key = NULL;
  double delay = 30.0, rpc_timeout = 30.0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sssss|O$pzndnsOdinnpzzzn:Producer", keywords, &target,
                                   &catalog, &schema_name, &table, &json_schema, &partitions, &tls,
                                   &authorization, &batch_size, &delay, &max_queue_rows,
                                   &backpressure, &block_timeout_obj, &rpc_timeout, &max_retries,
                                   &max_queue_bytes, &max_batch_bytes, &events, &tls_ca, &tls_cert,
                                   &tls_key, &max_in_flight))
    return -1;
  if (self->producer != NULL) {
    PyErr_SetString(PyExc_RuntimeError, "Producer is already initialised");
    return -1;
  }
  if (max_in_flight < 1 || max_in_flight > BF_PRODUCER_MAX_IN_FLIGHT_LIMIT) {
    PyErr_Format(PyExc_ValueError, "max_in_flight must be from 1 to %d", BF_PRODUCER_MAX_IN_FLIGHT_LIMIT);
    return -1;
  }
  if (batch_size < 1 || max_queue_rows < 1 || max_queue_bytes < 0 || max_batch_bytes < 0) {
    PyErr_SetString(PyExc_ValueError,
                    "batch_size and max_queue_rows must be >= 1, max_queue_bytes and "
                    "max_batch_bytes >= 0 (0: none / the default)");
    return -1;
  }
  bf_producer_options_t options;
  bf_producer_options_init(&options);
  if (parse_backpressure(backpressure, &options.backpressure) < 0) return -1;
  if (core_parse_timeout(block_timeout_obj, &options.block_timeout_secs) < 0) return -1;
  char **columns;
  size_t n_columns;
  if (core_string_list(partitions, &columns, &n_columns, "partition_columns") < 0) return -1;
  options.target = target;
  options.authorization = authorization;
  options.tls = tls != 0;
  options.tls_ca_file = tls_ca;
  options.tls_cert_file = tls_cert;
  options.tls_key_file = tls_key;
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
  options.max_batch_bytes = (size_t)max_batch_bytes;
  options.max_in_flight = (size_t)max_in_flight;
  long long id = next_producer_id++;
  if (events) {
    options.on_event = core_events_on_event;
    options.event_ctx = (void *)(intptr_t)id;
  }
  bf_error_t err;
  bf_error_init(&err);
  bf_producer_t *producer = NULL;
  int status = bf_producer_create(&options, &producer, &err);
  core_free_string_list(columns, n_columns);
  if (status != BF_OK) {
    core_raise_status(core_state_of_type(Py_TYPE(self)), status, &err);
    return -1;
  }
  self->producer = producer;
  self->backpressure = options.backpressure;
  self->id = id;
  return 0;
}


static void Producer_dealloc(ProducerObject *self) {
  PyTypeObject *type = Py_TYPE(self);
  core_row_plan_clear(&self->plan);
  Py_CLEAR(self->model);
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
static int enqueue_record(ProducerObject *self, const char *data, size_t len, bool binary);

static PyObject *Producer_insert(ProducerObject *self, PyObject *arg) {
  if (producer_ready(self) < 0) return NULL;
  const char *json;
  Py_ssize_t len;
  if (core_text_view(arg, &json, &len, "record") < 0) return NULL;
  /* `arg` keeps `json` alive while the GIL is released (str and bytes are immutable). */
  if (enqueue_record(self, json, (size_t)len, false) < 0) return NULL;
  Py_RETURN_NONE;
}

/* ---- fast record path ----------------------------------------------------------- */

/* set_record_plan(model_class, attrs, column_map, to_text): attrs names the instance
 * attribute of each user column in order; column_map(cls) -> {column: attribute}
 * (or None) for nested models; to_text(value) -> str for non-str values of string
 * columns (UUID, URL, ...). */
static PyObject *Producer_set_record_plan(ProducerObject *self, PyObject *args) {
  PyObject *model, *attrs, *column_map, *to_text;
  if (!PyArg_ParseTuple(args, "OOOO:set_record_plan", &model, &attrs, &column_map, &to_text)) return NULL;
  if (producer_ready(self) < 0) return NULL;
  if (!PyType_Check(model) || !PyCallable_Check(column_map) || !PyCallable_Check(to_text)) {
    PyErr_SetString(PyExc_TypeError, "set_record_plan(model_class, attrs, column_map, to_text)");
    return NULL;
  }
  const bf_schema_t *schema = bf__producer_schema(self->producer);
  PyObject *names = PySequence_Tuple(attrs);
  if (names == NULL) return NULL;
  if ((size_t)PyTuple_GET_SIZE(names) != schema->n_user_fields) {
    Py_DECREF(names);
    PyErr_Format(PyExc_ValueError, "set_record_plan: %zu attribute names for %zu columns",
                 (size_t)PyTuple_GET_SIZE(names), schema->n_user_fields);
    return NULL;
  }
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
    PyObject *name = PyTuple_GET_ITEM(names, i);
    if (!PyUnicode_CheckExact(name)) {
      Py_DECREF(names);
      PyErr_SetString(PyExc_TypeError, "set_record_plan: attribute names must be str");
      return NULL;
    }
    Py_INCREF(name);
    PyUnicode_InternInPlace(&name);
    PyTuple_SET_ITEM(names, i, name); /* steals; drops the old reference below */
    Py_DECREF(name);
  }
  PyObject *cache = PyDict_New();
  if (cache == NULL) {
    Py_DECREF(names);
    return NULL;
  }
  core_row_plan_clear(&self->plan);
  self->plan.schema = schema;
  self->plan.attrs = names;
  self->plan.column_map = Py_NewRef(column_map);
  self->plan.map_cache = cache;
  self->plan.to_text = Py_NewRef(to_text);
  self->plan.limit = SIZE_MAX; /* the producer refuses (and counts) what no batch can hold */
  Py_XSETREF(self->model, Py_NewRef(model));
  Py_RETURN_NONE;
}

/* Enqueues a JSON record or a binary row, waiting without the GIL (and
 * interruptible by Ctrl-C) only when the BLOCK policy must wait. Returns 0, or -1
 * with an exception set (-2: RecordTooLargeError, the record alone was refused). */
static int enqueue_record(ProducerObject *self, const char *data, size_t len, bool binary) {
  bf_error_t err;
  err.status = BF_OK;
  err.message[0] = '\0';
  bf__insert_result_t result;
  int status = bf__producer_insert(self->producer, binary, data, len, false, NULL, NULL, &result, &err);
  if (status != BF_OK && result.would_block) {
    Py_BEGIN_ALLOW_THREADS
    status = bf__producer_insert(self->producer, binary, data, len, true, core_interrupted, NULL,
                                 &result, &err);
    Py_END_ALLOW_THREADS
    if (status == BF_ECANCELLED && PyErr_Occurred()) return -1; /* Ctrl-C */
  }
  if (status != BF_OK) {
    core_raise_status_op(core_state_of_type(Py_TYPE(self)), result.too_large ? "record_too_large" : "insert",
                         status, &err);
    return result.too_large ? -2 : -1;
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
  core_row_buf_t b;
  core_row_buf_init(&b);
  bf_error_t err;
  err.status = BF_OK;
  err.message[0] = '\0';
  int encoded = core_row_encode(&self->plan, obj, &b, &err);
  int rc = -1;
  if (encoded == CORE_ROW_OK) {
    rc = enqueue_record(self, (const char *)b.data, b.size, true);
  } else if (encoded == CORE_ROW_TOO_LARGE) {
    bf_error_set(&err, BF_EINVAL, "record too large: a value exceeds 4 GiB");
    core_raise_status_op(core_state_of_type(Py_TYPE(self)), "record_too_large", BF_EINVAL, &err);
  } else if (encoded == CORE_ROW_REFUSED) {
    char message[BF_ERROR_MESSAGE_MAX];
    snprintf(message, sizeof message, "%s", err.message);
    bf_error_set(&err, BF_EINVAL, "%s(): %s", op, message);
    core_raise_status_op(core_state_of_type(Py_TYPE(self)), "insert", BF_EINVAL, &err);
  }
  core_row_buf_free(&b);
  return rc;
}

static int plan_ready(ProducerObject *self) {
  if (producer_ready(self) < 0) return -1;
  if (self->model == NULL || self->plan.attrs == NULL) {
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
  Py_ssize_t n = 0, queued = 0;
  PyObject *obj, *too_large = NULL; /* the first RecordTooLargeError: raised at the end */
  while ((obj = PyIter_Next(it)) != NULL) {
    int rc = insert_one(self, obj, "insert_many", n);
    Py_DECREF(obj);
    if (rc == -2) { /* refused alone: the records behind it go on */
      PyObject *type, *exc, *tb;
      PyErr_Fetch(&type, &exc, &tb);
      PyErr_NormalizeException(&type, &exc, &tb);
      Py_XDECREF(type);
      Py_XDECREF(tb);
      if (too_large == NULL) too_large = exc;
      else Py_XDECREF(exc);
    } else if (rc < 0) {
      Py_XDECREF(too_large);
      Py_DECREF(it);
      return NULL;
    } else {
      queued++;
    }
    n++;
  }
  Py_DECREF(it);
  if (PyErr_Occurred()) {
    Py_XDECREF(too_large);
    return NULL;
  }
  if (too_large != NULL) {
    PyObject *count = PyLong_FromSsize_t(queued);
    if (count != NULL) {
      PyObject_SetAttrString(too_large, "rows_queued", count);
      Py_DECREF(count);
    }
    PyErr_SetObject((PyObject *)Py_TYPE(too_large), too_large);
    Py_DECREF(too_large);
    return NULL;
  }
  return PyLong_FromSsize_t(queued);
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
    return core_raise_status(core_state_of_type(Py_TYPE(self)), status, &err);
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
  bool too_large = false;
  Py_BEGIN_ALLOW_THREADS
  status = bf__producer_insert_arrow(self->producer, schema, array, nbytes > 0 ? (size_t)nbytes : 0,
                                     core_interrupted, NULL, &too_large, &err);
  Py_END_ALLOW_THREADS
  if (status == BF_ECANCELLED && PyErr_Occurred()) return NULL;
  if (status != BF_OK)
    return core_raise_status_op(core_state_of_type(Py_TYPE(self)),
                                too_large ? "record_too_large" : "insert_arrow", status, &err);
  return PyLong_FromLongLong(rows);
}

static PyObject *Producer_flush(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if (producer_ready(self) < 0) return NULL;
  if (!core_check_nargs("flush", nargs, 0, 1)) return NULL;
  double timeout;
  if (core_parse_timeout(nargs > 0 ? args[0] : Py_None, &timeout) < 0) return NULL;
  uint64_t n_flushed = 0;
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf__producer_flush(self->producer, timeout, &n_flushed, core_interrupted, NULL, &err);
  Py_END_ALLOW_THREADS
  if (status == BF_ECANCELLED && PyErr_Occurred()) return NULL;
  if (status != BF_OK) return core_raise_status_op(core_state_of_type(Py_TYPE(self)), "flush", status, &err);
  return PyLong_FromUnsignedLongLong(n_flushed);
}

static PyObject *Producer_shutdown(ProducerObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if (producer_ready(self) < 0) return NULL;
  if (!core_check_nargs("shutdown", nargs, 0, 1)) return NULL;
  double timeout;
  if (core_parse_timeout(nargs > 0 ? args[0] : Py_None, &timeout) < 0) return NULL;
  bf_error_t err;
  bf_error_init(&err);
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = bf__producer_shutdown(self->producer, timeout, core_interrupted, NULL, &err);
  Py_END_ALLOW_THREADS
  if (status == BF_ECANCELLED && PyErr_Occurred()) return NULL;
  if (status != BF_OK) return core_raise_status_op(core_state_of_type(Py_TYPE(self)), "flush", status, &err);
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
  if (status != BF_OK) return core_raise_status_op(core_state_of_type(Py_TYPE(self)), "register", status, &err);
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
      set_stat(dict, "failed_batches", stats.failed_batches) < 0 ||
      set_stat(dict, "too_large", stats.too_large) < 0)
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

static PyObject *Producer_id(ProducerObject *self, PyObject *Py_UNUSED(ignored)) {
  return PyLong_FromLongLong(self->id);
}

static PyMethodDef Producer_methods[] = {
    {"insert", (PyCFunction)Producer_insert, METH_O,
     "insert(record_json: str | bytes) -> None; enqueues one JSON record"},
    {"set_record_plan", (PyCFunction)Producer_set_record_plan, METH_VARARGS,
     "set_record_plan(model_class, attrs, column_map, to_text) -> None; attrs: the attribute of "
     "each user column, in order"},
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
    {"id", (PyCFunction)Producer_id, METH_NOARGS, "id() -> int naming this producer in events"},
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
                "rpc_timeout_secs=30.0, max_retries=-1, max_queue_bytes=0, max_batch_bytes=0, events=False): "
                "the C background producer."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, Producer_init},
    {Py_tp_dealloc, Producer_dealloc},
    {Py_tp_methods, Producer_methods},
    {Py_tp_getset, Producer_getset},
    {0, NULL},
};

PyType_Spec core_producer_spec = {
    .name = "bifrost._core.Producer",
    .basicsize = sizeof(ProducerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Producer_slots,
};

