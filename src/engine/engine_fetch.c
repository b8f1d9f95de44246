/* A query result's chunks fetched ahead on a thread of their own (engine_fetch.h).
 * Measured on a 10M-row x 8-column SELECT over Parquet: the query's thread spent
 * half its time in duckdb_fetch_chunk (Parquet decode) and half converting and
 * sending, one core in all; DuckDB's own workers did not take the scan
 * (docs/architecture.md). */
#include "engine/engine_fetch.h"

static void *fetch_main(void *arg) {
  bf__fetcher_t *f = arg;
  for (;;) {
    pthread_mutex_lock(&f->mu);
    while (!f->stop && f->count >= f->limit && !(f->count == 0 && f->waiting))
      pthread_cond_wait(&f->cv, &f->mu);
    int stop = f->stop;
    pthread_mutex_unlock(&f->mu);
    if (stop) break;
    duckdb_data_chunk chunk = duckdb_fetch_chunk(*f->result);
    pthread_mutex_lock(&f->mu);
    if (chunk == NULL || f->stop) {
      f->done = 1;
      pthread_cond_broadcast(&f->cv);
      pthread_mutex_unlock(&f->mu);
      if (chunk != NULL) duckdb_destroy_data_chunk(&chunk);
      break;
    }
    f->ring[(f->head + f->count) % BF_FETCH_AHEAD] = chunk;
    f->count++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
  }
  return NULL;
}

void bf__fetcher_start(bf__fetcher_t *f, duckdb_result *result) {
  *f = (bf__fetcher_t){.result = result, .limit = BF_FETCH_AHEAD};
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
}

duckdb_data_chunk bf__fetcher_next(bf__fetcher_t *f) {
  if (!f->threaded) {
    if (f->done) return NULL;
    if (f->inline_only || f->inline_taken < BF_FETCH_INLINE) {
      f->inline_taken++;
      duckdb_data_chunk chunk = duckdb_fetch_chunk(*f->result);
      if (chunk == NULL) f->done = 1;
      return chunk;
    }
    f->threaded = pthread_create(&f->thread, NULL, fetch_main, f) == 0;
    if (!f->threaded) f->inline_only = 1;
    return bf__fetcher_next(f);
  }
  pthread_mutex_lock(&f->mu);
  f->waiting = 1;
  pthread_cond_broadcast(&f->cv); /* a fetcher holding back for size may go on */
  while (f->count == 0 && !f->done) pthread_cond_wait(&f->cv, &f->mu);
  f->waiting = 0;
  duckdb_data_chunk chunk = NULL;
  if (f->count > 0) {
    chunk = f->ring[f->head];
    f->head = (f->head + 1) % BF_FETCH_AHEAD;
    f->count--;
    pthread_cond_broadcast(&f->cv);
  }
  pthread_mutex_unlock(&f->mu);
  return chunk;
}

void bf__fetcher_took(bf__fetcher_t *f, int64_t bytes) {
  if (bytes <= 0) return;
  int64_t fit = BF_FETCH_AHEAD_BYTES / bytes;
  size_t limit = fit >= BF_FETCH_AHEAD ? BF_FETCH_AHEAD : (size_t)fit;
  pthread_mutex_lock(&f->mu);
  if (limit > f->limit) pthread_cond_broadcast(&f->cv);
  f->limit = limit;
  pthread_mutex_unlock(&f->mu);
}

void bf__fetcher_stop(bf__fetcher_t *f) {
  if (f->threaded) {
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    f->threaded = 0;
  }
  for (; f->count > 0; f->count--) {
    duckdb_destroy_data_chunk(&f->ring[f->head]);
    f->head = (f->head + 1) % BF_FETCH_AHEAD;
  }
  pthread_cond_destroy(&f->cv);
  pthread_mutex_destroy(&f->mu);
}
