/* S3 configuration: reading it from the standard AWS environment variables,
 * installing it for every later S3 call (bf_s3_init, which also initialises
 * libcurl once), and the per-kind request counters. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage_s3_internal.h"

static bf_s3_config_t g_config;
static atomic_bool g_configured;
static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_result = CURLE_FAILED_INIT;

static atomic_uint_fast64_t g_get, g_put, g_head, g_del, g_list, g_copy, g_retries;

/* Copies the first set, non-empty variable of names[] into dst; the name used
 * goes to *used. BF_ENOTFOUND when none is set, BF_EINVAL when too long. */
static int env_copy(const char *const *names, size_t n_names, char *dst, size_t cap,
                    const char **used, bf_error_t *err) {
  for (size_t i = 0; i < n_names; i++) {
    const char *v = getenv(names[i]);
    if (v == NULL || v[0] == '\0') continue;
    if (strlen(v) >= cap)
      return bf_error_set(err, BF_EINVAL, "%s is longer than %zu bytes", names[i], cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    if (used) *used = names[i];
    return BF_OK;
  }
  dst[0] = '\0';
  return BF_ENOTFOUND;
}

int bf_s3_config_from_env(bf_s3_config_t *out, bf_error_t *err) {
  *out = (bf_s3_config_t){0};
  static const char *const key_vars[] = {"AWS_ACCESS_KEY_ID"};
  static const char *const secret_vars[] = {"AWS_SECRET_ACCESS_KEY"};
  static const char *const token_vars[] = {"AWS_SESSION_TOKEN"};
  static const char *const region_vars[] = {"AWS_REGION", "AWS_DEFAULT_REGION"};
  static const char *const endpoint_vars[] = {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"};
  int status = env_copy(key_vars, 1, out->key_id, sizeof out->key_id, NULL, err);
  if (status == BF_ENOTFOUND)
    return bf_error_set(err, BF_EINVAL, "S3 credentials: AWS_ACCESS_KEY_ID is not set");
  BF_RETURN_NOT_OK(status);
  status = env_copy(secret_vars, 1, out->secret, sizeof out->secret, NULL, err);
  if (status == BF_ENOTFOUND)
    return bf_error_set(err, BF_EINVAL, "S3 credentials: AWS_SECRET_ACCESS_KEY is not set");
  BF_RETURN_NOT_OK(status);
  status = env_copy(token_vars, 1, out->token, sizeof out->token, NULL, err);
  if (status != BF_OK && status != BF_ENOTFOUND) return status;
  status = env_copy(region_vars, 2, out->region, sizeof out->region, NULL, err);
  if (status == BF_ENOTFOUND) strcpy(out->region, "us-east-1");
  else BF_RETURN_NOT_OK(status);
  for (const char *c = out->region; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
      return bf_error_set(err, BF_EINVAL, "AWS_REGION '%s' is not a region name", out->region);
  const char *endpoint_var = NULL;
  status = env_copy(endpoint_vars, 2, out->endpoint, sizeof out->endpoint, &endpoint_var, err);
  if (status == BF_OK) {
    if (strncmp(out->endpoint, "http://", 7) != 0 && strncmp(out->endpoint, "https://", 8) != 0)
      return bf_error_set(err, BF_EINVAL, "%s '%s' must start with http:// or https://",
                          endpoint_var, out->endpoint);
    size_t n = strlen(out->endpoint);
    while (n > 0 && out->endpoint[n - 1] == '/') out->endpoint[--n] = '\0';
    out->path_style = true;
  } else if (status != BF_ENOTFOUND) {
    return status;
  }
  return BF_OK;
}

static void curl_global_once(void) { g_curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

int bf_s3_init(const bf_s3_config_t *config, bf_error_t *err) {
  if (config->key_id[0] == '\0' || config->secret[0] == '\0')
    return bf_error_set(err, BF_EINVAL, "S3 configuration without credentials");
  if (config->region[0] == '\0') return bf_error_set(err, BF_EINVAL, "S3 configuration without a region");
  pthread_once(&g_curl_once, curl_global_once);
  if (g_curl_init_result != CURLE_OK)
    return bf_error_set(err, BF_EINTERNAL, "libcurl initialisation failed: %s",
                        curl_easy_strerror(g_curl_init_result));
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  if (v->version_num < 0x074b00) /* CURLOPT_AWS_SIGV4 needs 7.75 */
    return bf_error_set(err, BF_EINTERNAL, "libcurl %s is older than 7.75 (no SigV4 signing)",
                        v->version);
  g_config = *config;
  g_config.path_style = config->endpoint[0] != '\0';
  atomic_store(&g_configured, true);
  return BF_OK;
}

const bf_s3_config_t *bf_s3_config(void) { return atomic_load(&g_configured) ? &g_config : NULL; }

void bf_s3_shutdown(void) {
  atomic_store(&g_configured, false);
  bf__s3_pool_clear();
  /* curl_global_cleanup is deliberately not called: curl_global_init runs once
   * per process (pthread_once), so a later bf_s3_init must find it done. */
}

void bf__s3_count_attempt(bf_s3_op_t op) {
  switch (op) {
    case BF_S3_OP_GET: atomic_fetch_add(&g_get, 1); break;
    case BF_S3_OP_PUT: atomic_fetch_add(&g_put, 1); break;
    case BF_S3_OP_HEAD: atomic_fetch_add(&g_head, 1); break;
    case BF_S3_OP_DELETE: atomic_fetch_add(&g_del, 1); break;
    case BF_S3_OP_LIST: atomic_fetch_add(&g_list, 1); break;
    case BF_S3_OP_COPY: atomic_fetch_add(&g_copy, 1); break;
  }
}

void bf__s3_count_retry(void) { atomic_fetch_add(&g_retries, 1); }

void bf_s3_counters(bf_s3_counters_t *out) {
  out->get = atomic_load(&g_get);
  out->put = atomic_load(&g_put);
  out->head = atomic_load(&g_head);
  out->del = atomic_load(&g_del);
  out->list = atomic_load(&g_list);
  out->copy = atomic_load(&g_copy);
  out->retries = atomic_load(&g_retries);
}
