/* Producer events for Python: the C producer calls core_events_on_event from its own
 * thread (no GIL); events are copied into a bounded process-wide FIFO, and a Python
 * thread (bifrost._producer) takes them with _core.next_event(timeout) -- waiting
 * without the GIL -- and routes them to the "bifrost" logger and the on_error
 * callbacks. So no Python code ever runs on the producer's thread and a slow or
 * failing callback cannot stall delivery. Beyond MAX_EVENTS pending events the
 * oldest are discarded (counted in the next event's "lost" field).
 * gRPC core's own log lines take the same route (kind "grpc_log", producer id 0)
 * to the "bifrost.grpc" logger instead of being printed on stderr. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "_core.h"

#include <grpc/support/log.h>

#define MAX_EVENTS 10000
#define KIND_GRPC_LOG 100

typedef struct core_event {
  struct core_event *next;
  long long producer_id;
  int kind;
  int status;
  unsigned long long count;
  char *table;
  char *message;
} core_event_t;

static pthread_mutex_t events_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t events_cv = PTHREAD_COND_INITIALIZER;
static core_event_t *head, *tail;
static size_t n_events;
static unsigned long long n_lost;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* A fork child starts with an empty queue and fresh locks (the parent's may be held
 * by a thread that does not exist in the child; the old nodes are leaked). */
static void after_fork_child(void) {
  pthread_mutex_init(&events_mu, NULL);
  pthread_cond_init(&events_cv, NULL);
  head = tail = NULL;
  n_events = 0;
  n_lost = 0;
}

static void install_fork_handler(void) { pthread_atfork(NULL, NULL, after_fork_child); }

static void free_event(core_event_t *ev) {
  free(ev->table);
  free(ev->message);
  free(ev);
}

static void push(long long producer_id, int kind, int status, unsigned long long count,
                 const char *table, const char *message) {
  pthread_once(&fork_once, install_fork_handler);
  core_event_t *ev = calloc(1, sizeof *ev);
  if (ev == NULL) return;
  ev->producer_id = producer_id;
  ev->kind = kind;
  ev->status = status;
  ev->count = count;
  ev->table = strdup(table ? table : "");
  ev->message = strdup(message ? message : "");
  if (ev->table == NULL || ev->message == NULL) {
    free_event(ev);
    return;
  }
  pthread_mutex_lock(&events_mu);
  if (n_events >= MAX_EVENTS) {
    core_event_t *old = head;
    head = old->next;
    if (head == NULL) tail = NULL;
    n_events--;
    n_lost++;
    free_event(old);
  }
  if (tail) tail->next = ev;
  else head = ev;
  tail = ev;
  n_events++;
  pthread_cond_signal(&events_cv);
  pthread_mutex_unlock(&events_mu);
}

void core_events_on_event(void *ctx, const bf_producer_event_t *event) {
  push((long long)(intptr_t)ctx, (int)event->kind, event->status, (unsigned long long)event->count,
       event->table, event->message);
}

/* gpr_log_func: severity travels in the status field (0 debug, 1 info, 2 error). */
static void on_grpc_log(gpr_log_func_args *args) {
  char where[300];
  snprintf(where, sizeof where, "%s:%d", args->file ? args->file : "?", args->line);
  push(0, KIND_GRPC_LOG, (int)args->severity, 0, where, args->message);
}

void core_events_route_grpc_log(void) { gpr_set_log_function(on_grpc_log); }

static const char *kind_name(int kind) {
  switch (kind) {
    case BF_PRODUCER_EVENT_BATCH_FAILED: return "batch_failed";
    case BF_PRODUCER_EVENT_RETRYING: return "retrying";
    case BF_PRODUCER_EVENT_RECOVERED: return "recovered";
    case BF_PRODUCER_EVENT_DROPPED: return "dropped";
    case BF_PRODUCER_EVENT_RECORD_TOO_LARGE: return "record_too_large";
    case KIND_GRPC_LOG: return "grpc_log";
  }
  return "unknown";
}

/* next_event(timeout) -> (producer_id, kind, table, count, status, message, lost) or
 * None when nothing arrived within timeout seconds. */
PyObject *core_next_event(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  (void)module;
  if (!core_check_nargs("next_event", nargs, 1, 1)) return NULL;
  double timeout = PyFloat_AsDouble(args[0]);
  if (timeout == -1.0 && PyErr_Occurred()) return NULL;
  pthread_once(&fork_once, install_fork_handler);
  core_event_t *ev = NULL;
  unsigned long long lost = 0;
  Py_BEGIN_ALLOW_THREADS
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long ns = (long long)ts.tv_nsec + (long long)(timeout > 0 ? timeout * 1e9 : 0);
  ts.tv_sec += (time_t)(ns / 1000000000LL);
  ts.tv_nsec = (long)(ns % 1000000000LL);
  pthread_mutex_lock(&events_mu);
  while (head == NULL) {
    if (timeout <= 0 || pthread_cond_timedwait(&events_cv, &events_mu, &ts) != 0) break;
  }
  if (head != NULL) {
    ev = head;
    head = ev->next;
    if (head == NULL) tail = NULL;
    n_events--;
    lost = n_lost;
    n_lost = 0;
  }
  pthread_mutex_unlock(&events_mu);
  Py_END_ALLOW_THREADS
  if (ev == NULL) Py_RETURN_NONE;
  PyObject *result = Py_BuildValue(
      "(LsNKsNK)", ev->producer_id, kind_name(ev->kind),
      PyUnicode_DecodeUTF8(ev->table, (Py_ssize_t)strlen(ev->table), "replace"), ev->count,
      ev->kind == KIND_GRPC_LOG ? (ev->status >= GPR_LOG_SEVERITY_ERROR  ? "ERROR"
                                   : ev->status >= GPR_LOG_SEVERITY_INFO ? "INFO"
                                                                          : "DEBUG")
                                : bf_status_name(ev->status),
      PyUnicode_DecodeUTF8(ev->message, (Py_ssize_t)strlen(ev->message), "replace"), lost);
  free_event(ev);
  return result;
}
