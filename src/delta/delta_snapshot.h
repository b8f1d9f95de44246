/* Replay of commit files into a snapshot (delta_snapshot.c), used by commits
 * (delta_log.c: catching up after a lost race) and history (delta_history.c).
 * Above delta_path.h. */
#ifndef BIFROST_DELTA_SNAPSHOT_H
#define BIFROST_DELTA_SNAPSHOT_H

#include "bifrost/delta.h"

/* Applies the newline-delimited actions of one commit to snapshot. */
int bf__delta_apply_commit(bf_delta_snapshot_t *snapshot, const char *text, size_t len,
                           const char *file_name, bf_error_t *err);
/* Applies commit `version` if it exists (*found = 1) and advances s->version. */
int bf__delta_load_version(bf_delta_snapshot_t *s, const char *table_dir, int64_t version,
                           int *found, bf_error_t *err);

#endif
