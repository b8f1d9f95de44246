/* Names of the files in _delta_log (commits, checkpoints, _last_checkpoint) and
 * the `path` encoding of actions: paths in add/remove actions are relative URIs,
 * so bytes outside the unreserved set are %XX-encoded (DuckDB already escapes
 * special characters in hive directory names, so their '%' becomes %25 here). */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/delta.h"
#include "bifrost/util.h"
#include "storage/storage.h"
#include "delta/delta_path.h"

static int keep(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~' || c == '/' || c == '=';
}

char *bf__delta_path_encode(const char *path) {
  size_t n = strlen(path);
  char *out = malloc(3 * n + 1);
  if (out == NULL) return NULL;
  char *p = out;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)path[i];
    if (keep(c)) {
      *p++ = (char)c;
    } else {
      sprintf(p, "%%%02X", c);
      p += 3;
    }
  }
  *p = '\0';
  return out;
}

static int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char *bf__delta_path_decode(const char *path) {
  size_t n = strlen(path);
  char *out = malloc(n + 1);
  if (out == NULL) return NULL;
  char *p = out;
  for (size_t i = 0; i < n; i++) {
    if (path[i] == '%') {
      if (i + 2 >= n + 0 || hex(path[i + 1]) < 0 || hex(path[i + 2]) < 0) {
        free(out);
        return NULL;
      }
      *p++ = (char)(hex(path[i + 1]) * 16 + hex(path[i + 2]));
      i += 2;
    } else {
      *p++ = path[i];
    }
  }
  *p = '\0';
  return out;
}

void bf__delta_commit_path(const char *table_dir, int64_t version, char *out, size_t cap) {
  snprintf(out, cap, "%s/_delta_log/%020lld.json", table_dir, (long long)version);
}

void bf_delta_checkpoint_path(const char *table_dir, int64_t version, char *out, size_t cap) {
  snprintf(out, cap, "%s/_delta_log/%020lld.checkpoint.parquet", table_dir, (long long)version);
}

int bf_delta_last_checkpoint_write(const char *table_dir, int64_t version, int64_t size,
                                   int64_t size_in_bytes, int64_t num_add_files, bf_error_t *err) {
  char path[PATH_MAX], text[256];
  snprintf(path, sizeof path, "%s/_delta_log/_last_checkpoint", table_dir);
  int n = snprintf(text, sizeof text, "{\"version\":%lld,\"size\":%lld", (long long)version,
                   (long long)size);
  if (size_in_bytes >= 0)
    n += snprintf(text + n, sizeof text - (size_t)n, ",\"sizeInBytes\":%lld", (long long)size_in_bytes);
  if (num_add_files >= 0)
    n += snprintf(text + n, sizeof text - (size_t)n, ",\"numOfAddFiles\":%lld", (long long)num_add_files);
  n += snprintf(text + n, sizeof text - (size_t)n, "}\n");
  return bf_storage_write_replace(path, text, (size_t)n, err);
}

int64_t bf_delta_last_checkpoint_version(const char *table_dir) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/_delta_log/_last_checkpoint", table_dir);
  char *text = NULL;
  size_t size = 0;
  bf_error_t ignored;
  bf_error_init(&ignored);
  json_t *doc = NULL;
  if (bf_storage_read(path, &text, &size, &ignored) == BF_OK) doc = json_loadb(text, size, 0, NULL);
  free(text);
  json_t *v = json_object_get(doc, "version");
  int64_t version = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
  json_decref(doc);
  return version;
}
