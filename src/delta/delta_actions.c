/* Action lines shared by commits (delta_log.c) and checkpoint content
 * (delta_checkpoint.c): one JSON action per line, compact, keys in the order written. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "delta/delta_actions.h"
#include "delta/delta_path.h"

int bf__delta_append_line(bf_buffer_t *buf, json_t *action) {
  char *text = json_dumps(action, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(action);
  if (text == NULL) return BF_ENOMEM;
  int status = bf_buffer_append(buf, text, strlen(text));
  if (status == BF_OK) status = bf_buffer_append(buf, "\n", 1);
  free(text);
  return status;
}

json_t *bf__delta_partition_values_json(const bf_delta_snapshot_t *s, const bf_delta_file_t *f) {
  json_t *values = json_object();
  for (size_t k = 0; k < s->n_partition_columns && k < f->n_partition_values; k++)
    json_object_set_new(values, s->partition_columns[k],
                        f->partition_values[k] ? json_string(f->partition_values[k]) : json_null());
  return values;
}

int bf__delta_add_line(const bf_delta_snapshot_t *s, const bf_delta_file_t *f, int data_change,
                       bf_buffer_t *buf) {
  char *encoded = bf__delta_path_encode(f->path);
  if (encoded == NULL) return BF_ENOMEM;
  json_t *add = json_pack("{s:s, s:o, s:I, s:I, s:b}", "path", encoded, "partitionValues",
                          bf__delta_partition_values_json(s, f), "size", (json_int_t)f->size_bytes,
                          "modificationTime", (json_int_t)f->modification_time_ms, "dataChange",
                          data_change);
  free(encoded);
  if (add == NULL) return BF_ENOMEM;
  if (f->stats_json) json_object_set_new(add, "stats", json_string(f->stats_json));
  if (f->crc32c[0])
    json_object_set_new(add, "tags", json_pack("{s:s}", BF_DELTA_TAG_CRC32C, f->crc32c));
  return bf__delta_append_line(buf, json_pack("{s:o}", "add", add));
}

int bf__delta_txn_line(const char *app_id, int64_t version, int64_t now, bf_buffer_t *buf) {
  return bf__delta_append_line(buf, json_pack("{s:{s:s, s:I, s:I}}", "txn", "appId", app_id, "version",
                                    (json_int_t)version, "lastUpdated", (json_int_t)now));
}
