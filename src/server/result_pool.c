/* Result buffer pool (see result_pool.h): at most POOL_MAX buffers of at most
 * POOL_MAX_CAPACITY bytes are kept; anything else is freed. Thread-safe: gRPC
 * releases buffers from its own threads. */
#include "server/result_pool.h"

#include <pthread.h>
#include <stdlib.h>

#define POOL_MAX 4
#define POOL_MAX_CAPACITY ((size_t)16 << 20)

struct bf_result_buffer {
  uint8_t *data;
  size_t capacity;
};

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static bf_result_buffer_t *pool[POOL_MAX];
static size_t pool_n;

bf_result_buffer_t *bf_result_pool_take(bf_buffer_t *buf, uint8_t **data, size_t *size) {
  bf_result_buffer_t *taken = malloc(sizeof *taken);
  *data = buf->data;
  *size = buf->size;
  if (taken == NULL) {
    bf_buffer_reset(buf);
    return NULL;
  }
  taken->data = buf->data;
  taken->capacity = buf->capacity;
  bf_buffer_init(buf);
  pthread_mutex_lock(&pool_mu);
  bf_result_buffer_t *recycled = pool_n ? pool[--pool_n] : NULL;
  pthread_mutex_unlock(&pool_mu);
  if (recycled) {
    buf->data = recycled->data;
    buf->capacity = recycled->capacity;
    free(recycled);
  }
  return taken;
}

void bf_result_pool_release(void *buffer) {
  bf_result_buffer_t *b = buffer;
  if (b == NULL) return;
  int kept = 0;
  if (b->capacity <= POOL_MAX_CAPACITY) {
    pthread_mutex_lock(&pool_mu);
    if (pool_n < POOL_MAX) {
      pool[pool_n++] = b;
      kept = 1;
    }
    pthread_mutex_unlock(&pool_mu);
  }
  if (!kept) {
    free(b->data);
    free(b);
  }
}
