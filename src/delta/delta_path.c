/* Delta `path` encoding: paths in add/remove actions are relative URIs, so bytes
 * outside the unreserved set are %XX-encoded (DuckDB already escapes special
 * characters in hive directory names, so their '%' becomes %25 here). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delta/delta_internal.h"

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
