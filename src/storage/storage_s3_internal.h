/* Internals shared by the storage_s3*.c files: the parsed "s3://bucket/key"
 * location and its URLs (storage_s3_url.c), the request core with retries
 * (storage_s3_request.c), the S3 error body and status mapping
 * (storage_s3_error.c), the request counters (storage_s3_config.c) and the hooks
 * the unit test uses to inject lost responses. Not for use outside src/storage. */
#ifndef BIFROST_STORAGE_S3_INTERNAL_H
#define BIFROST_STORAGE_S3_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/storage_s3.h"

/* ---- locations and URLs (storage_s3_url.c) ---- */

typedef struct {
  char *bucket; /* malloc'd */
  char *key;    /* malloc'd, "" for the bucket root; no leading slash */
} bf_s3_location_t;

/* Splits "s3://bucket/key". want_object: the key must not be empty and must not
 * end in '/'. BF_EINVAL naming the location otherwise. */
int bf__s3_location_parse(const char *location, bool want_object, bf_s3_location_t *out,
                          bf_error_t *err);
void bf__s3_location_free(bf_s3_location_t *loc);

/* Appends s to a growing malloc'd string, percent-encoding every byte but
 * A-Z a-z 0-9 - _ . ~ (and '/' when keep_slash) as %XX (upper-case hex), the
 * encoding SigV4 and S3 expect. BF_ENOMEM. */
typedef struct {
  char *data;
  size_t len, cap;
} bf_s3_str_t;
int bf__s3_str_append(bf_s3_str_t *s, const char *text, size_t n);
int bf__s3_str_append_encoded(bf_s3_str_t *s, const char *text, bool keep_slash);
void bf__s3_str_free(bf_s3_str_t *s);

/* The URL of an object (key not empty) or of the bucket (key == NULL or ""), to
 * which a query may be appended: path style "<endpoint>/<bucket>/<key>" when an
 * endpoint is configured, else "https://<bucket>.s3.<region>.amazonaws.com/<key>". */
int bf__s3_url(const bf_s3_config_t *cfg, const char *bucket, const char *key, bf_s3_str_t *out,
               bf_error_t *err);

/* ---- the request core (storage_s3_request.c) ---- */

typedef enum {
  BF_S3_OP_GET,
  BF_S3_OP_PUT,
  BF_S3_OP_HEAD,
  BF_S3_OP_DELETE,
  BF_S3_OP_LIST,
  BF_S3_OP_COPY,
} bf_s3_op_t;

typedef struct {
  bf_s3_op_t op;
  const char *url;
  const char *location;    /* named in messages */
  const void *body;        /* BF_S3_OP_PUT: the object's bytes (may be NULL when size 0) */
  size_t body_size;
  bool if_none_match;      /* adds If-None-Match: * (put-if-absent) */
  const char *copy_source; /* BF_S3_OP_COPY: "/bucket/key", key URL-encoded */
} bf_s3_request_t;

typedef struct {
  long status;            /* HTTP status of the final attempt */
  char *body;             /* malloc'd, NUL-terminated, may be NULL (no body) */
  size_t body_len;
  size_t body_cap;
  int64_t content_length; /* -1 when the response had none */
  int64_t last_modified;  /* epoch seconds, -1 when the response had none */
  int attempts;           /* attempts sent, >= 1 */
  char code[128];         /* S3 error Code from an <Error> body, "" if none */
  char message[256];      /* S3 error Message, "" if none */
} bf_s3_response_t;

/* Sends the request with the configured retries: connection errors, timeouts,
 * 429, 500, 502, 503, 504, 400 RequestTimeout and a copy's 200 with an <Error>
 * body are retried with jittered exponential backoff. BF_OK when a final
 * response is in resp (any status: the caller maps it), BF_EUNAVAILABLE when the
 * attempts ran out, BF_EIO for errors no retry can fix, BF_EINVAL before
 * bf_s3_init. Free resp with bf__s3_response_free in every case. */
int bf__s3_perform(const bf_s3_request_t *req, bf_s3_response_t *resp, bf_error_t *err);
void bf__s3_response_free(bf_s3_response_t *resp);

/* Frees the pool of idle curl handles (bf_s3_shutdown). */
void bf__s3_pool_clear(void);

/* ---- error bodies and statuses (storage_s3_error.c) ---- */

/* Fills code/message from an S3 XML <Error> document; returns true when the
 * body's root element is <Error>. Never fails (a malformed body gives false). */
bool bf__s3_parse_error(const char *body, size_t len, char *code, size_t code_cap, char *message,
                        size_t message_cap);

/* The error for a non-2xx final response: 404 BF_ENOTFOUND, 403 BF_EPERM (with
 * the S3 Code and Message), anything else BF_EIO with status and Code. */
int bf__s3_status_error(const bf_s3_request_t *req, const bf_s3_response_t *resp, bf_error_t *err);

/* ---- counters (storage_s3_config.c) ---- */

void bf__s3_count_attempt(bf_s3_op_t op);
void bf__s3_count_retry(void);

/* ---- the put-if-absent retry rule (storage_s3.c) ---- */

/* A put-if-absent that was retried (an earlier attempt may have created the
 * object, its answer lost) and then got 412: reads the object back; the same
 * bytes mean the object is ours (BF_OK), others (or none) BF_EEXIST. */
int bf__s3_put_if_absent_retried(const char *location, const void *data, size_t size,
                                 bf_error_t *err);

/* ---- test hooks ---- */

/* The next n 2xx responses are dropped as if the connection broke before they
 * arrived (the server did act on the request); they are retried as such. */
void bf__s3_test_lose_responses(int n);
/* Called by the request core: true (and one fewer left) when this response is lost. */
bool bf__s3_test_take_lost_response(void);

#endif /* BIFROST_STORAGE_S3_INTERNAL_H */
