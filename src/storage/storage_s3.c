/* The S3 object operations behind storage.h: read (GET), write and
 * put-if-absent (PUT, If-None-Match: *), stat (HEAD), delete (DELETE) and
 * server-side copy (PUT with x-amz-copy-source), each one request through the
 * retrying core (storage_s3_request.c). Listings are in storage_s3_list.c. */
#include <stdlib.h>
#include <string.h>

#include "storage/storage_s3_internal.h"

/* The URL of an object location; BF_EINVAL for a bucket or a non-s3 location. */
static int object_url(const char *location, bf_s3_location_t *loc, bf_s3_str_t *url,
                      bf_error_t *err) {
  const bf_s3_config_t *cfg = bf_s3_config();
  if (cfg == NULL)
    return bf_error_set(err, BF_EINVAL, "%s: S3 is not configured (bf_s3_init was not called)",
                        location);
  BF_RETURN_NOT_OK(bf__s3_location_parse(location, true, loc, err));
  int status = bf__s3_url(cfg, loc->bucket, loc->key, url, err);
  if (status != BF_OK) bf__s3_location_free(loc);
  return status;
}

int bf_s3_read(const char *location, char **out, size_t *out_size, bf_error_t *err) {
  *out = NULL;
  if (out_size) *out_size = 0;
  bf_s3_location_t loc;
  bf_s3_str_t url;
  BF_RETURN_NOT_OK(object_url(location, &loc, &url, err));
  bf_s3_request_t req = {.op = BF_S3_OP_GET, .url = url.data, .location = location};
  bf_s3_response_t resp;
  int status = bf__s3_perform(&req, &resp, err);
  if (status == BF_OK && resp.status != 200) status = bf__s3_status_error(&req, &resp, err);
  if (status == BF_OK && resp.content_length >= 0 && (uint64_t)resp.content_length != resp.body_len)
    status = bf_error_set(err, BF_EIO, "%s: read %zu bytes of %lld", location, resp.body_len,
                          (long long)resp.content_length);
  if (status == BF_OK && resp.body == NULL) { /* an empty object */
    resp.body = calloc(1, 1);
    if (resp.body == NULL) status = bf_error_set(err, BF_ENOMEM, "%s: out of memory", location);
  }
  if (status == BF_OK) {
    *out = resp.body;
    if (out_size) *out_size = resp.body_len;
    resp.body = NULL;
  }
  bf__s3_response_free(&resp);
  bf__s3_str_free(&url);
  bf__s3_location_free(&loc);
  return status;
}

int bf__s3_put_if_absent_retried(const char *location, const void *data, size_t size,
                                 bf_error_t *err) {
  char *have = NULL;
  size_t have_size = 0;
  bf_error_t read_err = {0};
  int status = bf_s3_read(location, &have, &have_size, &read_err);
  if (status == BF_ENOTFOUND)
    return bf_error_set(err, BF_EEXIST,
                        "%s: already exists (HTTP 412 after a retry; the object is gone now)",
                        location);
  if (status != BF_OK)
    return bf_error_set(err, status, "%s: put-if-absent got 412 after a retry, reading it back: %s",
                        location, read_err.message);
  bool same = have_size == size && (size == 0 || memcmp(have, data, size) == 0);
  free(have);
  if (same) return BF_OK; /* our earlier attempt created it; its answer was lost */
  return bf_error_set(err, BF_EEXIST, "%s: already exists (with other contents)", location);
}

int bf_s3_write(const char *location, const void *data, size_t size, bool if_absent,
                bf_error_t *err) {
  bf_s3_location_t loc;
  bf_s3_str_t url;
  BF_RETURN_NOT_OK(object_url(location, &loc, &url, err));
  bf_s3_request_t req = {.op = BF_S3_OP_PUT, .url = url.data, .location = location,
                         .body = data, .body_size = size, .if_none_match = if_absent};
  bf_s3_response_t resp;
  int status = bf__s3_perform(&req, &resp, err);
  if (status == BF_OK && resp.status != 200) {
    bool lost_race = resp.status == 412 ||
                     (resp.status == 409 && strcmp(resp.code, "ConditionalRequestConflict") == 0);
    if (if_absent && lost_race && resp.attempts > 1)
      status = bf__s3_put_if_absent_retried(location, data, size, err);
    else if (if_absent && lost_race)
      status = bf_error_set(err, BF_EEXIST, "%s: already exists (HTTP %ld, %s)", location,
                            resp.status, resp.code[0] ? resp.code : "no S3 error code");
    else
      status = bf__s3_status_error(&req, &resp, err);
  }
  bf__s3_response_free(&resp);
  bf__s3_str_free(&url);
  bf__s3_location_free(&loc);
  return status;
}

int bf_s3_stat(const char *location, int64_t *size, int64_t *mtime_s, bf_error_t *err) {
  bf_s3_location_t loc;
  bf_s3_str_t url;
  BF_RETURN_NOT_OK(object_url(location, &loc, &url, err));
  bf_s3_request_t req = {.op = BF_S3_OP_HEAD, .url = url.data, .location = location};
  bf_s3_response_t resp;
  int status = bf__s3_perform(&req, &resp, err);
  if (status == BF_OK && resp.status != 200) status = bf__s3_status_error(&req, &resp, err);
  if (status == BF_OK && size != NULL && resp.content_length < 0)
    status = bf_error_set(err, BF_EIO, "%s: S3 HEAD answer without Content-Length", location);
  if (status == BF_OK && mtime_s != NULL && resp.last_modified < 0)
    status = bf_error_set(err, BF_EIO, "%s: S3 HEAD answer without a valid Last-Modified", location);
  if (status == BF_OK) {
    if (size) *size = resp.content_length;
    if (mtime_s) *mtime_s = resp.last_modified;
  }
  bf__s3_response_free(&resp);
  bf__s3_str_free(&url);
  bf__s3_location_free(&loc);
  return status;
}

int bf_s3_delete(const char *location, bf_error_t *err) {
  bf_s3_location_t loc;
  bf_s3_str_t url;
  BF_RETURN_NOT_OK(object_url(location, &loc, &url, err));
  bf_s3_request_t req = {.op = BF_S3_OP_DELETE, .url = url.data, .location = location};
  bf_s3_response_t resp;
  int status = bf__s3_perform(&req, &resp, err);
  /* S3 answers 204 whether or not the key existed; some stores say 404. */
  if (status == BF_OK && resp.status != 204 && resp.status != 200 &&
      !(resp.status == 404 && strcmp(resp.code, "NoSuchBucket") != 0))
    status = bf__s3_status_error(&req, &resp, err);
  bf__s3_response_free(&resp);
  bf__s3_str_free(&url);
  bf__s3_location_free(&loc);
  return status;
}

int bf_s3_copy(const char *from, const char *to, bf_error_t *err) {
  bf_s3_location_t src;
  BF_RETURN_NOT_OK(bf__s3_location_parse(from, true, &src, err));
  bf_s3_location_t loc;
  bf_s3_str_t url;
  int status = object_url(to, &loc, &url, err);
  if (status != BF_OK) {
    bf__s3_location_free(&src);
    return status;
  }
  bf_s3_str_t source = {0};
  status = bf__s3_str_append(&source, "/", 1);
  if (status == BF_OK) status = bf__s3_str_append(&source, src.bucket, strlen(src.bucket));
  if (status == BF_OK) status = bf__s3_str_append(&source, "/", 1);
  if (status == BF_OK) status = bf__s3_str_append_encoded(&source, src.key, true);
  if (status != BF_OK) {
    status = bf_error_set(err, status, "%s: out of memory", to);
  } else {
    bf_s3_request_t req = {.op = BF_S3_OP_COPY, .url = url.data, .location = to,
                           .copy_source = source.data};
    bf_s3_response_t resp;
    status = bf__s3_perform(&req, &resp, err);
    if (status == BF_OK && (resp.status != 200 || resp.code[0] != '\0')) {
      status = bf__s3_status_error(&req, &resp, err);
      if (resp.status == 404) bf_error_prefix(err, "copy from %s", from);
    }
    bf__s3_response_free(&resp);
  }
  bf__s3_str_free(&source);
  bf__s3_str_free(&url);
  bf__s3_location_free(&loc);
  bf__s3_location_free(&src);
  return status;
}
