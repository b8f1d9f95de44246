/* Memory shared by reference count (bf_shared_t in bifrost/util.h): what Arrow
 * arrays decoded in place borrow their buffers from, and a request body gRPC sends
 * without copying. The count is atomic: the last reference may go on any thread. */
#include <stdatomic.h>
#include <stdlib.h>

#include "bifrost/util.h"

struct bf_shared {
  atomic_long refs;
  void *data;
  size_t size;
  void (*free_fn)(void *);
};

bf_shared_t *bf_shared_new(void *data, size_t size, void (*free_fn)(void *)) {
  bf_shared_t *shared = malloc(sizeof *shared);
  if (shared == NULL) return NULL;
  atomic_init(&shared->refs, 1);
  shared->data = data;
  shared->size = size;
  shared->free_fn = free_fn;
  return shared;
}

void bf_shared_ref(bf_shared_t *shared) {
  if (shared) atomic_fetch_add(&shared->refs, 1);
}

void bf_shared_unref(bf_shared_t *shared) {
  if (shared == NULL || atomic_fetch_sub(&shared->refs, 1) != 1) return;
  if (shared->free_fn) shared->free_fn(shared->data);
  free(shared);
}

void *bf_shared_data(const bf_shared_t *shared) { return shared ? shared->data : NULL; }

size_t bf_shared_size(const bf_shared_t *shared) { return shared ? shared->size : 0; }
