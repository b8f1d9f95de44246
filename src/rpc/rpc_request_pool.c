/* Large request buffers recycled (see bf_rpc_request_release in rpc.h). A received
 * InsertBatch of several MiB is copied out of gRPC's slices into one buffer that
 * the decoded batches then borrow until their rows are in Parquet. With malloc's
 * mmap threshold fixed at 1 MiB (main.c) each such buffer was a fresh mapping:
 * faulting it in was most of the copy's cost, 7-8 % of the server's samples
 * (docs/architecture.md). Buffers given back are kept for the next large request:
 * at most POOL_MAX_BYTES in all (less when bf_rpc_request_pool_limit says so),
 * each at most POOL_MAX_SIZE, the oldest freed first; bf_rpc_request_pool_trim
 * frees the ones idle for a while. Thread-safe: buffers come back from the flush
 * thread. */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#include "bifrost/util.h"
#include "rpc/rpc_internal.h"

#define POOL_MIN_SIZE ((size_t)1 << 20)   /* smaller ones come from malloc's heap */
#define POOL_MAX_SIZE ((size_t)64 << 20)  /* the server's largest message */
#define POOL_MAX_BYTES ((size_t)160 << 20) /* a 1M-row generation's requests */
#define POOL_MAX_ITEMS 64

typedef struct {
  void *data;
  size_t capacity;
  double released; /* bf_time_monotonic() when given back */
} pooled_t;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pooled_t pool[POOL_MAX_ITEMS]; /* oldest first */
static size_t pool_n, pool_bytes;
static size_t pool_max_bytes = POOL_MAX_BYTES;

void bf_rpc_request_pool_limit(size_t max_bytes) {
  pthread_mutex_lock(&pool_mu);
  pool_max_bytes = max_bytes < POOL_MAX_BYTES ? max_bytes : POOL_MAX_BYTES;
  pthread_mutex_unlock(&pool_mu);
}

static void remove_at(size_t i) {
  pool_bytes -= pool[i].capacity;
  for (size_t k = i + 1; k < pool_n; k++) pool[k - 1] = pool[k];
  pool_n--;
}

void bf__rpc_request_buffer(bf_buffer_t *out, size_t size) {
  if (out->data != NULL || size < POOL_MIN_SIZE) return;
  pthread_mutex_lock(&pool_mu);
  /* the most recently given back that fits: its pages are the likeliest in cache */
  for (size_t i = pool_n; i-- > 0;) {
    if (pool[i].capacity < size) continue;
    out->data = pool[i].data;
    out->capacity = pool[i].capacity;
    out->size = 0;
    remove_at(i);
    break;
  }
  pthread_mutex_unlock(&pool_mu);
}

void bf_rpc_request_release(void *data) {
  if (data == NULL) return;
  size_t capacity = malloc_usable_size(data);
  if (capacity < POOL_MIN_SIZE || capacity > POOL_MAX_SIZE) {
    free(data);
    return;
  }
  void *evicted[POOL_MAX_ITEMS];
  size_t n_evicted = 0;
  pthread_mutex_lock(&pool_mu);
  int keep = capacity <= pool_max_bytes; /* else it does not fit even alone */
  while (keep && pool_n > 0 &&
         (pool_n == POOL_MAX_ITEMS || pool_bytes + capacity > pool_max_bytes)) {
    evicted[n_evicted++] = pool[0].data;
    remove_at(0);
  }
  if (keep) {
    pool[pool_n++] = (pooled_t){data, capacity, bf_time_monotonic()};
    pool_bytes += capacity;
  }
  pthread_mutex_unlock(&pool_mu);
  if (!keep) free(data);
  for (size_t i = 0; i < n_evicted; i++) free(evicted[i]);
}

void bf_rpc_request_pool_trim(double idle_secs) {
  void *evicted[POOL_MAX_ITEMS];
  size_t n_evicted = 0;
  double now = bf_time_monotonic();
  pthread_mutex_lock(&pool_mu);
  while (pool_n > 0 && now - pool[0].released >= idle_secs) {
    evicted[n_evicted++] = pool[0].data;
    remove_at(0);
  }
  pthread_mutex_unlock(&pool_mu);
  for (size_t i = 0; i < n_evicted; i++) free(evicted[i]);
}
