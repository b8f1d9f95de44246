/* S3 listings: ListObjectsV2 (list-type=2, delimiter "/") of one "directory"
 * prefix, page after page by continuation token, each page's XML parsed with
 * expat into files (Contents) and sub-directories (CommonPrefixes). */
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/storage_s3_internal.h"

typedef struct {
  const char *prefix; /* the listed key prefix, "" or ending in '/' */
  size_t prefix_len;
  const char *start_after;
  bf_storage_list_t *out;
  int depth;
  char parent[32];    /* the depth-2 element we are in ("Contents", "CommonPrefixes") */
  bool capture;       /* collecting the current element's text */
  bf_s3_str_t text;
  /* the Contents entry being read */
  char *key;
  int64_t size, mtime_s;
  /* the page */
  bool root_ok, truncated;
  char *next_token;
  int failure; /* BF_OK, BF_ENOMEM or BF_EIO (a malformed field) */
} page_t;

/* "2026-12-02T09:30:10.000Z" -> epoch seconds; -1 when malformed. */
static int64_t parse_iso8601(const char *s) {
  struct tm tm = {0};
  int n = 0;
  if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
             &tm.tm_min, &tm.tm_sec, &n) != 6 || n == 0)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t t = timegm(&tm);
  return t == (time_t)-1 ? -1 : (int64_t)t;
}

static bool add_entry(page_t *pg, const char *key, bool is_dir, int64_t size, int64_t mtime_s) {
  if (strncmp(key, pg->prefix, pg->prefix_len) != 0) return true; /* not under the prefix */
  const char *rel = key + pg->prefix_len;
  size_t n = strlen(rel);
  if (is_dir && n > 0 && rel[n - 1] == '/') n--;
  if (n == 0 || memchr(rel, '/', n) != NULL) return true; /* a "dir/" marker object, say */
  char *name = strndup(rel, n);
  if (name == NULL) return false;
  if (pg->start_after != NULL && strcmp(name, pg->start_after) <= 0) {
    free(name);
    return true;
  }
  bf_storage_list_t *out = pg->out;
  if (out->len == out->cap) {
    size_t cap = out->cap ? out->cap * 2 : 64;
    bf_storage_entry_t *grown = realloc(out->items, cap * sizeof *grown);
    if (grown == NULL) {
      free(name);
      return false;
    }
    out->items = grown;
    out->cap = cap;
  }
  out->items[out->len++] = (bf_storage_entry_t){name, is_dir ? 0 : size, mtime_s, is_dir, 0};
  return true;
}

static void stop(page_t *pg, XML_Parser p, int failure) {
  if (pg->failure == BF_OK) pg->failure = failure;
  XML_StopParser(p, XML_FALSE);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs) {
  (void)attrs;
  XML_Parser p = ud;
  page_t *pg = XML_GetUserData(p);
  pg->depth++;
  pg->text.len = 0;
  if (pg->text.data) pg->text.data[0] = '\0';
  pg->capture = false;
  if (pg->depth == 1) {
    pg->root_ok = strcmp(name, "ListBucketResult") == 0;
  } else if (pg->depth == 2) {
    snprintf(pg->parent, sizeof pg->parent, "%s", name);
    pg->capture = strcmp(name, "IsTruncated") == 0 || strcmp(name, "NextContinuationToken") == 0;
    if (strcmp(name, "Contents") == 0) {
      free(pg->key);
      pg->key = NULL;
      pg->size = pg->mtime_s = -1;
    }
  } else if (pg->depth == 3) {
    if (strcmp(pg->parent, "Contents") == 0)
      pg->capture = strcmp(name, "Key") == 0 || strcmp(name, "Size") == 0 ||
                    strcmp(name, "LastModified") == 0;
    else if (strcmp(pg->parent, "CommonPrefixes") == 0)
      pg->capture = strcmp(name, "Prefix") == 0;
  }
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
  XML_Parser p = ud;
  page_t *pg = XML_GetUserData(p);
  if (pg->capture && len > 0 && bf__s3_str_append(&pg->text, s, (size_t)len) != BF_OK)
    stop(pg, p, BF_ENOMEM);
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
  XML_Parser p = ud;
  page_t *pg = XML_GetUserData(p);
  const char *text = pg->text.data ? pg->text.data : "";
  if (pg->depth == 2 && pg->root_ok) {
    if (strcmp(name, "IsTruncated") == 0) {
      pg->truncated = strcmp(text, "true") == 0;
    } else if (strcmp(name, "NextContinuationToken") == 0) {
      free(pg->next_token);
      pg->next_token = strdup(text);
      if (pg->next_token == NULL) stop(pg, p, BF_ENOMEM);
    } else if (strcmp(name, "Contents") == 0) {
      if (pg->key == NULL || pg->size < 0 || pg->mtime_s < 0) stop(pg, p, BF_EIO);
      else if (!add_entry(pg, pg->key, false, pg->size, pg->mtime_s)) stop(pg, p, BF_ENOMEM);
    }
    pg->parent[0] = '\0';
  } else if (pg->depth == 3 && pg->root_ok && strcmp(pg->parent, "Contents") == 0) {
    if (strcmp(name, "Key") == 0) {
      free(pg->key);
      pg->key = strdup(text);
      if (pg->key == NULL) stop(pg, p, BF_ENOMEM);
    } else if (strcmp(name, "Size") == 0) {
      char *end;
      long long v = strtoll(text, &end, 10);
      pg->size = (end != text && *end == '\0' && v >= 0) ? v : -1;
    } else if (strcmp(name, "LastModified") == 0) {
      pg->mtime_s = parse_iso8601(text);
    }
  } else if (pg->depth == 3 && pg->root_ok && strcmp(pg->parent, "CommonPrefixes") == 0 &&
             strcmp(name, "Prefix") == 0) {
    if (!add_entry(pg, text, true, 0, 0)) stop(pg, p, BF_ENOMEM);
  }
  pg->capture = false;
  pg->depth--;
}

/* Parses one page into pg (entries appended to pg->out). */
static int parse_page(page_t *pg, const char *body, size_t len, const char *dir, bf_error_t *err) {
  XML_Parser p = XML_ParserCreate("UTF-8");
  if (p == NULL) return bf_error_set(err, BF_ENOMEM, "%s: out of memory", dir);
  XML_SetUserData(p, pg);
  XML_UseParserAsHandlerArg(p);
  XML_SetElementHandler(p, on_start, on_end);
  XML_SetCharacterDataHandler(p, on_text);
  pg->truncated = false;
  pg->root_ok = false;
  pg->depth = 0;
  free(pg->next_token);
  pg->next_token = NULL;
  int status = BF_OK;
  if (len > INT32_MAX || XML_Parse(p, body ? body : "", (int)len, XML_TRUE) != XML_STATUS_OK) {
    if (pg->failure == BF_ENOMEM) status = bf_error_set(err, BF_ENOMEM, "%s: out of memory", dir);
    else if (pg->failure != BF_OK)
      status = bf_error_set(err, BF_EIO, "%s: S3 listing with a malformed Contents entry", dir);
    else
      status = bf_error_set(err, BF_EIO, "%s: S3 listing is not valid XML (%s, line %lu)", dir,
                            XML_ErrorString(XML_GetErrorCode(p)),
                            (unsigned long)XML_GetCurrentLineNumber(p));
  } else if (!pg->root_ok) {
    status = bf_error_set(err, BF_EIO, "%s: S3 listing without <ListBucketResult>", dir);
  } else if (pg->truncated && (pg->next_token == NULL || pg->next_token[0] == '\0')) {
    status = bf_error_set(err, BF_EIO, "%s: truncated S3 listing without a continuation token", dir);
  }
  XML_ParserFree(p);
  return status;
}

/* "<bucket URL>?continuation-token=..&delimiter=%2F&list-type=2&max-keys=..&prefix=..&start-after=.."
 * with the parameters in the sorted order SigV4's canonical query needs. */
static int list_url(const bf_s3_config_t *cfg, const bf_s3_location_t *loc, const char *token,
                    const char *start_after, bf_s3_str_t *url, bf_error_t *err) {
  BF_RETURN_NOT_OK(bf__s3_url(cfg, loc->bucket, NULL, url, err));
  int st = bf__s3_str_append(url, "?", 1);
  if (st == BF_OK && token) {
    st = bf__s3_str_append(url, "continuation-token=", 19);
    if (st == BF_OK) st = bf__s3_str_append_encoded(url, token, false);
    if (st == BF_OK) st = bf__s3_str_append(url, "&", 1);
  }
  if (st == BF_OK) st = bf__s3_str_append(url, "delimiter=%2F&list-type=2", 25);
  if (st == BF_OK && cfg->list_page_size > 0) {
    char mk[32];
    int n = snprintf(mk, sizeof mk, "&max-keys=%d", cfg->list_page_size);
    st = bf__s3_str_append(url, mk, (size_t)n);
  }
  if (st == BF_OK && loc->key[0] != '\0') {
    st = bf__s3_str_append(url, "&prefix=", 8);
    if (st == BF_OK) st = bf__s3_str_append_encoded(url, loc->key, false);
  }
  if (st == BF_OK && start_after) {
    st = bf__s3_str_append(url, "&start-after=", 13);
    if (st == BF_OK) st = bf__s3_str_append_encoded(url, loc->key, false);
    if (st == BF_OK) st = bf__s3_str_append_encoded(url, start_after, false);
  }
  if (st != BF_OK) {
    bf__s3_str_free(url);
    return bf_error_set(err, st, "out of memory building a listing URL");
  }
  return BF_OK;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const bf_storage_entry_t *)a)->name, ((const bf_storage_entry_t *)b)->name);
}

static void list_clear(bf_storage_list_t *out) {
  for (size_t i = 0; i < out->len; i++) free(out->items[i].name);
  free(out->items);
  *out = (bf_storage_list_t){0};
}

int bf_s3_list(const char *dir, const char *start_after, bf_storage_list_t *out, bf_error_t *err) {
  *out = (bf_storage_list_t){0};
  const bf_s3_config_t *cfg = bf_s3_config();
  if (cfg == NULL)
    return bf_error_set(err, BF_EINVAL, "%s: S3 is not configured (bf_s3_init was not called)", dir);
  bf_s3_location_t loc;
  BF_RETURN_NOT_OK(bf__s3_location_parse(dir, false, &loc, err));
  size_t key_len = strlen(loc.key);
  if (key_len > 0 && loc.key[key_len - 1] != '/') { /* "dir" lists "dir/" */
    char *with_slash = malloc(key_len + 2);
    if (with_slash == NULL) {
      bf__s3_location_free(&loc);
      return bf_error_set(err, BF_ENOMEM, "%s: out of memory", dir);
    }
    memcpy(with_slash, loc.key, key_len);
    memcpy(with_slash + key_len, "/", 2);
    free(loc.key);
    loc.key = with_slash;
  }
  if (start_after != NULL && start_after[0] == '\0') start_after = NULL;
  page_t pg = {.prefix = loc.key, .prefix_len = strlen(loc.key), .start_after = start_after,
               .out = out};
  char *token = NULL;
  int status = BF_OK;
  while (status == BF_OK) {
    bf_s3_str_t url;
    status = list_url(cfg, &loc, token, start_after, &url, err);
    if (status != BF_OK) break;
    bf_s3_request_t req = {.op = BF_S3_OP_LIST, .url = url.data, .location = dir};
    bf_s3_response_t resp;
    status = bf__s3_perform(&req, &resp, err);
    if (status == BF_OK && resp.status != 200) status = bf__s3_status_error(&req, &resp, err);
    if (status == BF_OK) status = parse_page(&pg, resp.body, resp.body_len, dir, err);
    bf__s3_response_free(&resp);
    bf__s3_str_free(&url);
    if (status != BF_OK || !pg.truncated) break;
    free(token);
    token = pg.next_token; /* the next page's request owns it now */
    pg.next_token = NULL;
  }
  free(token);
  free(pg.next_token);
  free(pg.key);
  bf__s3_str_free(&pg.text);
  bf__s3_location_free(&loc);
  if (status != BF_OK) {
    list_clear(out);
    return status;
  }
  if (out->len > 1) qsort(out->items, out->len, sizeof *out->items, by_name);
  return BF_OK;
}
