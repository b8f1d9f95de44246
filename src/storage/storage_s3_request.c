/* The S3 request core: one signed HTTP request (libcurl signs it, SigV4) sent with
 * retries and jittered exponential backoff, on a curl easy handle taken from a
 * small mutex-guarded pool (easy handles are not thread-safe; pooled ones keep
 * their connections alive between calls). */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "storage/storage_s3_internal.h"

#define POOL_MAX 8
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static pthread_mutex_t g_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL *g_pool[POOL_MAX];
static size_t g_pool_len;
static atomic_int g_lose_responses;

static CURL *handle_take(void) {
  CURL *h = NULL;
  pthread_mutex_lock(&g_pool_lock);
  if (g_pool_len > 0) h = g_pool[--g_pool_len];
  pthread_mutex_unlock(&g_pool_lock);
  if (h != NULL) {
    curl_easy_reset(h); /* keeps its live connections */
    return h;
  }
  return curl_easy_init();
}

static void handle_give_back(CURL *h) {
  pthread_mutex_lock(&g_pool_lock);
  if (g_pool_len < POOL_MAX) {
    g_pool[g_pool_len++] = h;
    h = NULL;
  }
  pthread_mutex_unlock(&g_pool_lock);
  if (h != NULL) curl_easy_cleanup(h);
}

void bf__s3_pool_clear(void) {
  pthread_mutex_lock(&g_pool_lock);
  for (size_t i = 0; i < g_pool_len; i++) curl_easy_cleanup(g_pool[i]);
  g_pool_len = 0;
  pthread_mutex_unlock(&g_pool_lock);
}

void bf__s3_test_lose_responses(int n) { atomic_store(&g_lose_responses, n); }

bool bf__s3_test_take_lost_response(void) {
  int n = atomic_load(&g_lose_responses);
  while (n > 0)
    if (atomic_compare_exchange_weak(&g_lose_responses, &n, n - 1)) return true;
  return false;
}

void bf__s3_response_free(bf_s3_response_t *resp) {
  free(resp->body);
  resp->body = NULL;
  resp->body_len = resp->body_cap = 0;
}

/* ---- curl callbacks ---- */

typedef struct {
  const char *data;
  size_t size, pos;
} upload_t;

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud) {
  upload_t *up = ud;
  size_t n = size * nitems;
  if (n > up->size - up->pos) n = up->size - up->pos;
  if (n > 0) memcpy(buf, up->data + up->pos, n);
  up->pos += n;
  return n;
}

static int seek_cb(void *ud, curl_off_t offset, int origin) {
  upload_t *up = ud;
  if (origin != SEEK_SET || offset < 0 || (size_t)offset > up->size) return CURL_SEEKFUNC_CANTSEEK;
  up->pos = (size_t)offset;
  return CURL_SEEKFUNC_OK;
}

typedef struct {
  bf_s3_response_t *resp;
  bool out_of_memory;
} sink_t;

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
  sink_t *sink = ud;
  bf_s3_response_t *r = sink->resp;
  size_t n = size * nmemb;
  if (r->body_len + n + 1 > r->body_cap) {
    size_t cap = r->body_cap ? r->body_cap : 4096;
    if (r->content_length > 0 && (uint64_t)r->content_length < SIZE_MAX / 2 && cap < (size_t)r->content_length + 1)
      cap = (size_t)r->content_length + 1;
    while (cap < r->body_len + n + 1) cap *= 2;
    char *grown = realloc(r->body, cap);
    if (grown == NULL) {
      sink->out_of_memory = true;
      return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
    }
    r->body = grown;
    r->body_cap = cap;
  }
  memcpy(r->body + r->body_len, ptr, n);
  r->body_len += n;
  r->body[r->body_len] = '\0';
  return n;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud) {
  sink_t *sink = ud;
  size_t n = size * nitems;
  char line[256];
  if (n >= sizeof line) return n; /* no header we read is that long */
  memcpy(line, buf, n);
  line[n] = '\0';
  if (strncmp(line, "HTTP/", 5) == 0) { /* a new response (after 100 Continue, say) */
    sink->resp->content_length = -1;
    sink->resp->last_modified = -1;
  } else if (strncasecmp(line, "content-length:", 15) == 0) {
    char *end;
    long long v = strtoll(line + 15, &end, 10);
    if (end != line + 15 && v >= 0) sink->resp->content_length = v;
  } else if (strncasecmp(line, "last-modified:", 14) == 0) {
    time_t t = curl_getdate(line + 14, NULL);
    if (t != -1) sink->resp->last_modified = (int64_t)t;
  }
  return n;
}

/* ---- one attempt ---- */

static const char *op_name(bf_s3_op_t op) {
  switch (op) {
    case BF_S3_OP_GET: return "GET";
    case BF_S3_OP_PUT: return "PUT";
    case BF_S3_OP_HEAD: return "HEAD";
    case BF_S3_OP_DELETE: return "DELETE";
    case BF_S3_OP_LIST: return "LIST";
    case BF_S3_OP_COPY: return "COPY";
  }
  return "?";
}

static bool curl_error_retryable(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
      return true;
    default:
      return false;
  }
}

static bool status_retryable(const bf_s3_request_t *req, const bf_s3_response_t *resp) {
  long s = resp->status;
  if (s == 429 || s == 500 || s == 502 || s == 503 || s == 504) return true;
  if (s == 400 && strcmp(resp->code, "RequestTimeout") == 0) return true;
  /* CopyObject may answer 200 and then report an error in the body. */
  if (req->op == BF_S3_OP_COPY && s == 200 && resp->code[0] != '\0') return true;
  return false;
}

static void set_method(CURL *h, const bf_s3_request_t *req, upload_t *up) {
  switch (req->op) {
    case BF_S3_OP_GET:
    case BF_S3_OP_LIST:
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
      break;
    case BF_S3_OP_HEAD:
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
      break;
    case BF_S3_OP_DELETE:
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
      break;
    case BF_S3_OP_PUT:
    case BF_S3_OP_COPY: /* upload mode: a Content-Length even for an empty body */
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
      curl_easy_setopt(h, CURLOPT_READDATA, up);
      curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
      curl_easy_setopt(h, CURLOPT_SEEKDATA, up);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up->size);
      /* libcurl sends "Expect: 100-continue" with every upload; the usual way
       * to drop it, an empty "Expect:" header, gets signed but not sent, which
       * breaks the signature. So a small body goes at once, without waiting
       * for "100 Continue"; a large one waits up to a second for it (or for
       * S3's early refusal, a 412 say, that saves sending the body). */
      curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, up->size < (1u << 20) ? 0L : 1000L);
      break;
  }
}

static CURLcode attempt(CURL *h, const bf_s3_config_t *cfg, const bf_s3_request_t *req,
                        struct curl_slist *headers, bf_s3_response_t *resp, sink_t *sink) {
  char sigv4[128];
  snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", cfg->region);
  upload_t up = {req->op == BF_S3_OP_PUT ? req->body : NULL,
                 req->op == BF_S3_OP_PUT ? req->body_size : 0, 0};
  resp->body_len = 0;
  if (resp->body) resp->body[0] = '\0';
  resp->content_length = resp->last_modified = -1;
  resp->status = 0;
  resp->code[0] = resp->message[0] = '\0';

  curl_easy_setopt(h, CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L); /* keys may hold "." or ".." segments */
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
  curl_easy_setopt(h, CURLOPT_USERNAME, cfg->key_id);
  curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->secret);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                   (long)(cfg->stall_timeout_s > 0 ? cfg->stall_timeout_s : 30));
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, sink);
  set_method(h, req, &up);

  CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
  return rc;
}

/* ---- retries ---- */

static void backoff(const bf_s3_config_t *cfg, int retry) {
  static _Thread_local uint64_t seed;
  if (seed == 0) seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&seed ^ 0x9e3779b97f4a7c15u;
  seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17; /* xorshift64 */
  long base = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 100;
  long cap = cfg->retry_cap_ms > 0 ? cfg->retry_cap_ms : 5000;
  long delay = base;
  for (int i = 1; i < retry && delay < cap; i++) delay *= 2;
  if (delay > cap) delay = cap;
  long jittered = delay / 2 + (long)(seed % (uint64_t)(delay / 2 + 1));
  struct timespec ts = {jittered / 1000, (jittered % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static int build_headers(const bf_s3_config_t *cfg, const bf_s3_request_t *req,
                         struct curl_slist **out) {
  char line[4200];
  char hex[65] = EMPTY_SHA256;
  if (req->op == BF_S3_OP_PUT && req->body_size > 0) {
    unsigned char md[32];
    unsigned int md_len = 0;
    if (EVP_Digest(req->body, req->body_size, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
      return BF_EINTERNAL;
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  }
  /* libcurl uses this header's value as the payload hash it signs. */
  snprintf(line, sizeof line, "x-amz-content-sha256: %s", hex);
  struct curl_slist *list = curl_slist_append(NULL, line);
  if (list != NULL && cfg->token[0] != '\0') {
    snprintf(line, sizeof line, "x-amz-security-token: %s", cfg->token);
    struct curl_slist *next = curl_slist_append(list, line);
    if (next == NULL) curl_slist_free_all(list);
    list = next;
  }
  if (list != NULL && req->if_none_match) {
    struct curl_slist *next = curl_slist_append(list, "If-None-Match: *");
    if (next == NULL) curl_slist_free_all(list);
    list = next;
  }
  if (list != NULL && req->op == BF_S3_OP_COPY) {
    snprintf(line, sizeof line, "x-amz-copy-source: %s", req->copy_source);
    struct curl_slist *next = curl_slist_append(list, line);
    if (next == NULL) curl_slist_free_all(list);
    list = next;
  }
  *out = list;
  return list ? BF_OK : BF_ENOMEM;
}

int bf__s3_perform(const bf_s3_request_t *req, bf_s3_response_t *resp, bf_error_t *err) {
  *resp = (bf_s3_response_t){.content_length = -1, .last_modified = -1};
  const bf_s3_config_t *cfg = bf_s3_config();
  if (cfg == NULL)
    return bf_error_set(err, BF_EINVAL, "%s: S3 is not configured (bf_s3_init was not called)",
                        req->location);
  if (req->op == BF_S3_OP_COPY && strlen(req->copy_source) > 4000)
    return bf_error_set(err, BF_EINVAL, "%s: copy source too long", req->location);
  struct curl_slist *headers = NULL;
  int status = build_headers(cfg, req, &headers);
  if (status != BF_OK)
    return bf_error_set(err, status, "%s: cannot build the request headers", req->location);
  CURL *h = handle_take();
  if (h == NULL) {
    curl_slist_free_all(headers);
    return bf_error_set(err, BF_ENOMEM, "%s: cannot create a curl handle", req->location);
  }
  int max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 6;
  char last_failure[256] = "";
  status = BF_EUNAVAILABLE;
  for (int i = 1; i <= max_attempts; i++) {
    if (i > 1) {
      bf__s3_count_retry();
      backoff(cfg, i - 1);
    }
    resp->attempts = i;
    bf__s3_count_attempt(req->op);
    sink_t sink = {resp, false};
    CURLcode rc = attempt(h, cfg, req, headers, resp, &sink);
    if (sink.out_of_memory) {
      status = bf_error_set(err, BF_ENOMEM, "%s: out of memory reading the response", req->location);
      break;
    }
    if (rc != CURLE_OK) {
      snprintf(last_failure, sizeof last_failure, "%s", curl_easy_strerror(rc));
      if (curl_error_retryable(rc)) continue;
      status = bf_error_set(err, BF_EIO, "%s: S3 %s failed: %s", req->location, op_name(req->op),
                            last_failure);
      break;
    }
    if (resp->status >= 200 && resp->status < 300 && bf__s3_test_take_lost_response()) {
      snprintf(last_failure, sizeof last_failure, "response lost (test hook)");
      continue;
    }
    if (resp->status < 200 || resp->status >= 300 || req->op == BF_S3_OP_COPY)
      bf__s3_parse_error(resp->body, resp->body_len, resp->code, sizeof resp->code, resp->message,
                         sizeof resp->message);
    if (status_retryable(req, resp)) {
      snprintf(last_failure, sizeof last_failure, "HTTP %ld %s", resp->status,
               resp->code[0] ? resp->code : "");
      continue;
    }
    status = BF_OK;
    break;
  }
  if (status == BF_EUNAVAILABLE)
    bf_error_set(err, BF_EUNAVAILABLE, "%s: S3 %s failed after %d attempts: %s", req->location,
                 op_name(req->op), max_attempts, last_failure);
  handle_give_back(h);
  curl_slist_free_all(headers);
  return status;
}
