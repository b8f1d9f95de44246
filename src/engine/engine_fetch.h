/* A query result's chunks fetched ahead on a thread of their own: DuckDB decodes
 * the next rows (Parquet, the scan, the plan) while the query's thread converts
 * the previous ones to Arrow and sends them. Used by engine_query.c only. */
#ifndef BF_ENGINE_FETCH_H
#define BF_ENGINE_FETCH_H

#include <pthread.h>

#include "duckdb.h"

/* Chunks (of up to 2,048 rows) fetched but not yet taken: the slack between the
 * two threads, and the most the fetcher holds; fewer when the chunks are large,
 * so that those held stay within BF_FETCH_AHEAD_BYTES (wide rows: none ahead). */
#define BF_FETCH_AHEAD 16
#define BF_FETCH_AHEAD_BYTES ((int64_t)32 << 20)
/* Chunks fetched by the consumer itself before a thread is started: a result of
 * fewer rows never pays for one (starting it and handing chunks over added
 * 0.2 ms to a one-row query). */
#define BF_FETCH_INLINE 8

typedef struct bf__fetcher {
  duckdb_result *result;
  pthread_t thread;
  int threaded;    /* a fetching thread runs */
  int inline_only; /* none could be started: chunks are fetched inline */
  size_t inline_taken;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  duckdb_data_chunk ring[BF_FETCH_AHEAD];
  size_t head, count;
  size_t limit; /* chunks the fetcher may hold now (0: fetch only when asked) */
  int waiting;  /* the consumer waits for a chunk */
  int done;     /* the fetcher reached the end of the result (or an error) */
  int stop; /* the consumer wants no more chunks */
} bf__fetcher_t;

/* Starts fetching result's chunks: the first BF_FETCH_INLINE inline, the rest
 * on a thread of their own. result must outlive bf__fetcher_stop. */
void bf__fetcher_start(bf__fetcher_t *f, duckdb_result *result);

/* The next chunk (the caller destroys it), or NULL at the end of the result or
 * when DuckDB failed; duckdb_result_error tells which, after bf__fetcher_stop. */
duckdb_data_chunk bf__fetcher_next(bf__fetcher_t *f);

/* Tells the fetcher the size of the chunk last taken (as Arrow; <= 0: unknown),
 * which sets how many it may hold ahead. */
void bf__fetcher_took(bf__fetcher_t *f, int64_t bytes);

/* Stops fetching (at most one more chunk is fetched), waits for the thread and
 * destroys the chunks not taken. Safe to call once after start, at any point. */
void bf__fetcher_stop(bf__fetcher_t *f);

#endif
