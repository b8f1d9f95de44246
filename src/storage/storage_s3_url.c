/* S3 locations and URLs: parsing "s3://bucket/key", the percent-encoding S3 and
 * SigV4 expect (every byte but A-Z a-z 0-9 - _ . ~, and '/' inside keys), and the
 * path-style (custom endpoint) or virtual-hosted (AWS) URL of an object. */
#include <stdlib.h>
#include <string.h>

#include "storage/storage_s3_internal.h"

int bf__s3_str_append(bf_s3_str_t *s, const char *text, size_t n) {
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 128;
    while (cap < s->len + n + 1) cap *= 2;
    char *grown = realloc(s->data, cap);
    if (grown == NULL) return BF_ENOMEM;
    s->data = grown;
    s->cap = cap;
  }
  memcpy(s->data + s->len, text, n);
  s->len += n;
  s->data[s->len] = '\0';
  return BF_OK;
}

static bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

int bf__s3_str_append_encoded(bf_s3_str_t *s, const char *text, bool keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    if (is_unreserved(*p) || (keep_slash && *p == '/')) {
      BF_RETURN_NOT_OK(bf__s3_str_append(s, (const char *)p, 1));
    } else {
      char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      BF_RETURN_NOT_OK(bf__s3_str_append(s, esc, 3));
    }
  }
  return BF_OK;
}

void bf__s3_str_free(bf_s3_str_t *s) {
  free(s->data);
  *s = (bf_s3_str_t){0};
}

void bf__s3_location_free(bf_s3_location_t *loc) {
  free(loc->bucket);
  free(loc->key);
  *loc = (bf_s3_location_t){0};
}

/* Bucket names: 3..63 of a-z 0-9 . -, which also keeps them safe in a host name. */
static bool bucket_ok(const char *b, size_t n) {
  if (n < 3 || n > 63) return false;
  for (size_t i = 0; i < n; i++) {
    char c = b[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return false;
  }
  return true;
}

int bf__s3_location_parse(const char *location, bool want_object, bf_s3_location_t *out,
                          bf_error_t *err) {
  *out = (bf_s3_location_t){0};
  if (location == NULL || strncmp(location, "s3://", 5) != 0)
    return bf_error_set(err, BF_EINVAL, "%s: not an s3:// location", location ? location : "(null)");
  const char *bucket = location + 5;
  const char *slash = strchr(bucket, '/');
  size_t bucket_len = slash ? (size_t)(slash - bucket) : strlen(bucket);
  if (!bucket_ok(bucket, bucket_len))
    return bf_error_set(err, BF_EINVAL,
                        "%s: bad bucket name (3 to 63 of lower-case letters, digits, '.', '-')",
                        location);
  const char *key = slash ? slash + 1 : "";
  size_t key_len = strlen(key);
  if (want_object && (key_len == 0 || key[key_len - 1] == '/'))
    return bf_error_set(err, BF_EINVAL, "%s: not an object location (no key after the bucket)",
                        location);
  if (key_len > 1024)
    return bf_error_set(err, BF_EINVAL, "%s: key longer than S3's 1024 bytes", location);
  out->bucket = strndup(bucket, bucket_len);
  out->key = strdup(key);
  if (out->bucket == NULL || out->key == NULL) {
    bf__s3_location_free(out);
    return bf_error_set(err, BF_ENOMEM, "%s: out of memory", location);
  }
  return BF_OK;
}

int bf__s3_url(const bf_s3_config_t *cfg, const char *bucket, const char *key, bf_s3_str_t *out,
               bf_error_t *err) {
  *out = (bf_s3_str_t){0};
  int status;
  if (cfg->path_style) {
    status = bf__s3_str_append(out, cfg->endpoint, strlen(cfg->endpoint));
    if (status == BF_OK) status = bf__s3_str_append(out, "/", 1);
    if (status == BF_OK) status = bf__s3_str_append(out, bucket, strlen(bucket));
    if (status == BF_OK && key != NULL && key[0] != '\0') status = bf__s3_str_append(out, "/", 1);
  } else {
    status = bf__s3_str_append(out, "https://", 8);
    if (status == BF_OK) status = bf__s3_str_append(out, bucket, strlen(bucket));
    if (status == BF_OK) status = bf__s3_str_append(out, ".s3.", 4);
    if (status == BF_OK) status = bf__s3_str_append(out, cfg->region, strlen(cfg->region));
    if (status == BF_OK) status = bf__s3_str_append(out, ".amazonaws.com/", 15);
  }
  if (status == BF_OK && key != NULL) status = bf__s3_str_append_encoded(out, key, true);
  if (status != BF_OK) {
    bf__s3_str_free(out);
    return bf_error_set(err, status, "s3://%s/%s: out of memory building the URL", bucket,
                        key ? key : "");
  }
  return BF_OK;
}
