/* Writing Delta actions as newline-delimited JSON (delta_actions.c): the lines
 * commits and checkpoints share. Above delta_path.h, below delta_log.c and
 * delta_checkpoint.c. */
#ifndef BIFROST_DELTA_ACTIONS_H
#define BIFROST_DELTA_ACTIONS_H

#include <jansson.h>

#include "bifrost/delta.h"
#include "bifrost/util.h"

/* Appends action (reference stolen) as one compact line. */
int bf__delta_append_line(bf_buffer_t *buf, json_t *action);
/* {"column": value or null} of a file's partition values, in the snapshot's columns. */
json_t *bf__delta_partition_values_json(const bf_delta_snapshot_t *s, const bf_delta_file_t *f);
/* One add / txn action line (newline-terminated) appended to buf. */
int bf__delta_add_line(const bf_delta_snapshot_t *s, const bf_delta_file_t *f, int data_change,
                       bf_buffer_t *buf);
int bf__delta_txn_line(const char *app_id, int64_t version, int64_t now, bf_buffer_t *buf);

#endif
