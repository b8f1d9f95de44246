/* Internals of the table store: the state of a table's write path (generations,
 * sequences) and the functions of table_store.c and file_check.c that the files
 * above it share (table_replay.c, table_writer.c, table_maintenance.c,
 * table_background.c, table_lifecycle.c, table_evolve.c). */
#ifndef BIFROST_SERVER_TABLE_STORE_INTERNAL_H
#define BIFROST_SERVER_TABLE_STORE_INTERNAL_H

#include <pthread.h>

#include "bifrost/wal.h"
#include "server/counters.h"
#include "server/presence.h"
#include "server/table_store.h"

/* Highest sequence per producer id (small, linear: a table has few producers). */
typedef struct bf_seq_map {
  char **ids;
  int64_t *seqs;
  size_t n;
} bf_seq_map_t;

int64_t bf__seq_get(const bf_seq_map_t *m, const char *id);
int bf__seq_put(bf_seq_map_t *m, const char *id, int64_t seq); /* keeps the max */
void bf__seq_reset(bf_seq_map_t *m);

/* One generation of unflushed rows: a WAL segment and an engine tail. */
typedef struct bf_gen {
  uint64_t id;
  char tail[96];            /* engine tail name */
  bf_wal_segment_t *seg;
  int sealed;               /* takes no more inserts */
  int pending;              /* inserts between WAL append and tail append */
  int64_t rows, bytes;
  int64_t decoded_bytes;    /* counted in the store's tail_bytes until the generation goes */
  int64_t created_us;
  bf_seq_map_t seqs;        /* producers' highest sequence in this generation */
  char txn_id[37];          /* commitInfo.txnId of its flush commit */
  int commit_unknown;       /* a flush commit failed with an unknown outcome ... */
  int64_t commit_base;      /* ... built on this version: check before writing again */
  int64_t commit_wait_us;   /* --ack-mode commit: when its first insert began waiting for
                               the commit (0 = none waits) */
} bf_gen_t;

struct bf_table_store {
  int opened;
  uint64_t index;           /* server-unique number, names the tails */
  uint64_t next_gen;
  bf_gen_t **gens;          /* oldest first; the last one takes inserts unless sealed */
  size_t n_gens;
  bf_seq_map_t seqs;        /* highest sequence accepted per producer (tail included) */
  pthread_cond_t pending_cv;/* with t->mu: a generation's pending count dropped */
  pthread_mutex_t work_mu;  /* one flush / maintenance run at a time */
  int64_t last_checkpoint_version;
  int64_t last_refresh_us;  /* guarded by t->mu */
  int64_t published_version;/* snapshot version the view shows (-2 = none); guarded by t->mu */
  int64_t last_maintenance_us, last_vacuum_us; /* guarded by work_mu */
  char open_error[512];     /* last reason the table failed to open; guarded by t->mu */
  int view_stale;           /* the last publish failed; guarded by t->mu */
  char view_error[512];     /* last publish failure, logged once; guarded by t->mu */
  int64_t retry_flush_at_us;  /* after a failed flush, not before this; guarded by work_mu */
  bf_table_counters_t counters; /* atomic adds (counters.h); any thread */
};
typedef struct bf_table_store bf_table_store_t;

struct bf_store {
  bf_registry_t *registry;
  bf_engine_t *engine;
  bf_store_options_t options;
  uint64_t next_table_index;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop, wake;
  int64_t tail_bytes;       /* sum of every generation's decoded_bytes; atomic */
  int backlog_waiters;      /* inserts waiting for a writer that is behind; atomic */
  bf_presence_t presence;   /* other servers on the data directory; the writer's */
};

/* WAL record layout ----------------------------------------------------------------------
 * data:  u8 RECORD_DATA | u16 producer id length | producer id | i64 sequence | IPC stream
 * abort: u8 RECORD_ABORT | u64 lsn of a data record in the same segment that was not
 *        acknowledged (its tail append failed after the fsync); replay skips it.
 * A record's lsn is its 1-based position in its segment. */
enum { RECORD_DATA = 1, RECORD_ABORT = 2 };
#define BF_MAX_PRODUCER_ID 1000 /* replay reads ids into a 1 KiB buffer */

/* Shared by table_store.c (inserts, generations), table_replay.c and
 * table_writer.c. Unless said otherwise the caller holds t->mu. */
int64_t bf__applied_seq(const bf_table_t *t, const char *id); /* committed or in a tail */
int bf__seq_copy(bf_seq_map_t *dst, const bf_seq_map_t *src);
void bf__seq_set_exact(bf_seq_map_t *m, const char *id, int64_t seq); /* may lower it */
int bf__any_pending(const bf_table_store_t *ts);
void bf__tail_bytes_add(bf_store_t *s, int64_t bytes); /* atomic; any thread */
int bf__wal_dir(const bf_store_t *s, const bf_table_t *t, char *out, size_t cap);
/* Adds a generation (new segment when seg is NULL; an adopted one otherwise). */
int bf__gen_add(bf_store_t *s, bf_table_t *t, bf_wal_segment_t *seg, int sealed, bf_gen_t **out,
                bf_error_t *err);
void bf__gen_remove(bf_table_t *t, bf_gen_t *g);
void bf__gen_free(bf_store_t *s, bf_gen_t *g);
/* The registry's tables at this moment (malloc'd array; entries outlive it). */
bf_table_t **bf__snapshot_tables(bf_registry_t *r, size_t *n);

/* Caller holds t->mu. */
int bf__store_publish(bf_store_t *s, bf_table_t *t, const char *drop_tail, bf_error_t *err);
void bf__table_store_free(bf_store_t *s, bf_table_t *t);
/* Wakes the background writer (table_background.c); any thread. */
void bf__store_wake(bf_store_t *s);

/* A table's data files (file_check.c). */
/* Files just written for a commit: each must exist under t->dir with its
 * recorded size (BF_EIO naming it); their CRC-32C is recorded. */
int bf__store_seal_files(const bf_table_t *t, bf_delta_file_t *files, size_t n, bf_error_t *err);
/* Checks a live file against its size and recorded CRC-32C: 1 if intact, else 0
 * with the reason in why. */
int bf__store_file_intact(const bf_table_t *t, const bf_delta_file_t *f, char *why, size_t cap);
/* Deletes files that no commit names (a failed flush or compaction). */
void bf__store_remove_files(const bf_table_t *t, const bf_delta_file_t *files, size_t n);

/* The layers above (one header each, so the includes form a DAG):
 *   table_generations.c (this header): sequence maps, generations, view publish
 *   table_replay.h: WAL replay          -> this header
 *   table_store.c (this header): inserts, opening tables -> table_replay.h
 *   table_writer.h: flushes             -> this header
 *   table_maintenance.h: checkpoint, compaction, vacuum -> table_writer.h
 *   table_background.c: the writer thread -> all of them */

#endif
