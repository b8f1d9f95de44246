/* Internal helpers of the Delta log code: path encoding, commit file names and the
 * application of one commit file's actions to a snapshot. */
#ifndef BIFROST_DELTA_INTERNAL_H
#define BIFROST_DELTA_INTERNAL_H

#include "bifrost/delta.h"
#include "bifrost/util.h"

/* URI-encodes a relative path for an `add`/`remove` path ('/' kept). malloc'd. */
char *bf__delta_path_encode(const char *path);
/* Decodes %XX escapes. malloc'd; NULL on malformed escapes. */
char *bf__delta_path_decode(const char *path);
/* "<table_dir>/_delta_log/%020lld.json" into out. */
void bf__delta_commit_path(const char *table_dir, int64_t version, char *out, size_t cap);
/* Applies the newline-delimited actions of one commit to snapshot. */
int bf__delta_apply_commit(bf_delta_snapshot_t *snapshot, const char *text, size_t len,
                           const char *file_name, bf_error_t *err);

/* Applies commit `version` if it exists (*found = 1) and advances s->version. */
int bf__delta_load_version(bf_delta_snapshot_t *s, const char *table_dir, int64_t version,
                           int *found, bf_error_t *err);

/* One add / txn action line (newline-terminated) appended to buf. */
int bf__delta_add_line(const bf_delta_snapshot_t *s, const bf_delta_file_t *f, int data_change,
                       bf_buffer_t *buf);
int bf__delta_txn_line(const char *app_id, int64_t version, int64_t now, bf_buffer_t *buf);

#endif
