/* S3 implementation of the storage interface (storage.h), internal to the storage
 * area: libcurl signs requests itself (CURLOPT_AWS_SIGV4), listings are parsed
 * with expat. Configuration comes from the standard AWS environment variables. */
#ifndef BIFROST_STORAGE_S3_H
#define BIFROST_STORAGE_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

typedef struct {
  char endpoint[512]; /* "http://127.0.0.1:9000" (path style) or "" for AWS */
  char region[64];    /* AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1 */
  char key_id[256];
  char secret[256];
  char token[4096];   /* AWS_SESSION_TOKEN, may be empty */
  bool path_style;    /* true whenever an endpoint is set */
  /* Request tuning; 0 means the default in brackets. Not read from the environment. */
  int max_attempts;       /* attempts per request, the first included [6] */
  int retry_base_ms;      /* backoff before the first retry, doubling [100] */
  int retry_cap_ms;       /* longest backoff [5000]; each wait is jittered to 50..100% */
  int connect_timeout_ms; /* TCP (+TLS) connect [5000] */
  int stall_timeout_s;    /* a transfer slower than 1 byte/s for this long fails [30] */
  int list_page_size;     /* max-keys of one ListObjectsV2 page [the server's, 1000] */
} bf_s3_config_t;

/* Reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION
 * (AWS_DEFAULT_REGION), AWS_ENDPOINT_URL (AWS_ENDPOINT_URL_S3 first). BF_EINVAL
 * naming the missing variable when credentials are absent. Never logs secrets. */
int bf_s3_config_from_env(bf_s3_config_t *out, bf_error_t *err);

/* Installs the configuration every later S3 call uses (once, at start, before
 * other threads call in). Initialises libcurl globally. */
int bf_s3_init(const bf_s3_config_t *config, bf_error_t *err);
const bf_s3_config_t *bf_s3_config(void); /* NULL before bf_s3_init */

/* Closes the pooled connections; bf_s3_config() is NULL again until the next
 * bf_s3_init. Optional, at exit (no other thread may be in an S3 call). */
void bf_s3_shutdown(void);

/* Counters of requests sent (every attempt, by kind), for benchmarks and metrics. */
typedef struct {
  uint64_t get, put, head, del, list, copy, retries;
} bf_s3_counters_t;
void bf_s3_counters(bf_s3_counters_t *out);

/* The operations behind storage.h for "s3://bucket/key" locations. */
int bf_s3_read(const char *location, char **out, size_t *out_size, bf_error_t *err);
int bf_s3_write(const char *location, const void *data, size_t size, bool if_absent,
                bf_error_t *err);
int bf_s3_stat(const char *location, int64_t *size, int64_t *mtime_s, bf_error_t *err);
int bf_s3_delete(const char *location, bf_error_t *err);
int bf_s3_list(const char *dir, const char *start_after, bf_storage_list_t *out, bf_error_t *err);
int bf_s3_copy(const char *from, const char *to, bf_error_t *err);

#endif /* BIFROST_STORAGE_S3_H */
