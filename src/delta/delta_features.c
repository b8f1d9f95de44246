/* Which tables this server may write to, given the protocol and metaData another
 * writer may have changed. Our commits add plain Parquet files named by logical
 * column names, with no row ids, commit timestamps or generated values, and our
 * checkpoints are classic ones. A table feature (explicit in writerFeatures at
 * writer version 7, implied by lower versions) that needs more than that, or a
 * constraint we cannot check, makes the table read-only for us: the caller keeps
 * its rows (WAL, tail) and reports why. Compaction also rewrites existing files,
 * so it needs every reader feature to be one we honour: none (reader version 1). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "bifrost/delta.h"

/* Writer features that a blind append of plain files satisfies. */
static const char *const APPEND_SAFE[] = {
    "appendOnly",   "changeDataFeed",   "checkConstraints", "deletionVectors",
    "domainMetadata", "timestampNtz",   "typeWidening",     "typeWidening-preview",
    "vacuumProtocolCheck", "invariants",
};

static int append_safe(const char *feature) {
  for (size_t i = 0; i < sizeof APPEND_SAFE / sizeof *APPEND_SAFE; i++)
    if (strcmp(feature, APPEND_SAFE[i]) == 0) return 1;
  return 0;
}

/* Why the metaData forbids our appends, or NULL. */
static const char *metadata_problem(json_t *metadata, char *buf, size_t cap) {
  json_t *config = json_object_get(metadata, "configuration");
  const char *key;
  json_t *value;
  json_object_foreach(config, key, value) {
    const char *text = json_string_value(value);
    if (strcmp(key, "delta.columnMapping.mode") == 0 && text && strcmp(text, "none") != 0) {
      snprintf(buf, cap, "column mapping (mode %s)", text);
      return buf;
    }
    if (strncmp(key, "delta.constraints.", 18) == 0) {
      snprintf(buf, cap, "a CHECK constraint (%s)", key + 18);
      return buf;
    }
    if (strcmp(key, "delta.enableRowTracking") == 0 && text && strcmp(text, "true") == 0)
      return "row tracking";
    if (strcmp(key, "delta.enableInCommitTimestamps") == 0 && text && strcmp(text, "true") == 0)
      return "in-commit timestamps";
  }
  const char *schema = json_string_value(json_object_get(metadata, "schemaString"));
  if (schema && strstr(schema, "delta.invariants")) return "a column invariant";
  if (schema && strstr(schema, "delta.generationExpression")) return "a generated column";
  if (schema && strstr(schema, "delta.identity")) return "an identity column";
  return NULL;
}

static int refuse(bf_error_t *err, const char *what, const char *why) {
  return bf_error_set(err, BF_EINVAL,
                      "refusing to %s: another writer gave the table %s, which this server "
                      "does not implement (its rows are kept; they are written once the table "
                      "allows it)",
                      what, why);
}

int bf_delta_snapshot_check_append(const bf_delta_snapshot_t *s, bf_error_t *err) {
  json_t *protocol = s->protocol_json ? json_loads(s->protocol_json, 0, NULL) : NULL;
  json_t *metadata = s->metadata_json ? json_loads(s->metadata_json, 0, NULL) : NULL;
  char buf[256];
  const char *why = NULL;
  json_t *writer = json_object_get(protocol, "minWriterVersion");
  json_int_t version = json_is_integer(writer) ? json_integer_value(writer) : 0;
  if (protocol == NULL || metadata == NULL) {
    why = "no readable protocol or metaData";
  } else if (version < 1 || version > 7) {
    snprintf(buf, sizeof buf, "writer version %lld", (long long)version);
    why = buf;
  } else if (version == 7) {
    size_t i;
    json_t *feature;
    json_array_foreach(json_object_get(protocol, "writerFeatures"), i, feature) {
      const char *name = json_string_value(feature);
      if (name && !append_safe(name)) {
        snprintf(buf, sizeof buf, "the writer feature %s", name);
        why = buf;
        break;
      }
    }
  }
  if (why == NULL) why = metadata_problem(metadata, buf, sizeof buf);
  json_decref(protocol);
  json_decref(metadata);
  return why ? refuse(err, "append", why) : BF_OK;
}

int bf_delta_snapshot_check_rewrite(const bf_delta_snapshot_t *s, bf_error_t *err) {
  json_t *protocol = s->protocol_json ? json_loads(s->protocol_json, 0, NULL) : NULL;
  json_t *reader = json_object_get(protocol, "minReaderVersion");
  int ok = json_is_integer(reader) && json_integer_value(reader) <= 1;
  json_decref(protocol);
  if (!ok)
    return bf_error_set(err, BF_EINVAL,
                        "refusing to compact: the table's protocol %s needs reader features "
                        "this server does not implement (e.g. deletion vectors or column "
                        "mapping, set by another writer); rewriting its files could lose data",
                        s->protocol_json ? s->protocol_json : "(none)");
  return bf_delta_snapshot_check_append(s, err);
}
