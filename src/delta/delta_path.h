/* Names of the files in _delta_log and the encoding of action paths
 * (delta_path.c). The bottom of the Delta code: it calls nothing else of it. */
#ifndef BIFROST_DELTA_PATH_H
#define BIFROST_DELTA_PATH_H

#include <stddef.h>
#include <stdint.h>

/* URI-encodes a relative path for an `add`/`remove` path ('/' kept). malloc'd. */
char *bf__delta_path_encode(const char *path);
/* Decodes %XX escapes. malloc'd; NULL on malformed escapes. */
char *bf__delta_path_decode(const char *path);
/* "<table_dir>/_delta_log/%020lld.json" into out. */
void bf__delta_commit_path(const char *table_dir, int64_t version, char *out, size_t cap);

#endif
