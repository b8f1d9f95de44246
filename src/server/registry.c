/* Table registry persistence and lookup (see registry.h). */
#include "server/registry.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/util.h"
#include "storage/storage.h"
#include "server/log.h"

static void version_free(bf_schema_version_t *v) {
  if (v == NULL) return;
  free(v->json_schema);
  bf_schema_reset(&v->schema);
  free(v);
}

static int version_new(const char *json_schema, bf_schema_version_t **out, bf_error_t *err) {
  bf_schema_version_t *v = calloc(1, sizeof *v);
  if (v == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  int status = bf_schema_from_json_schema(json_schema, strlen(json_schema), &v->schema, err);
  if (status == BF_OK) status = bf_schema_fingerprint(&v->schema, v->fingerprint, err);
  if (status == BF_OK && (v->json_schema = strdup(json_schema)) == NULL)
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
  if (status != BF_OK) {
    version_free(v);
    return status;
  }
  *out = v;
  return BF_OK;
}

/* Lists v as the current version (t->schema, json_schema and fingerprint follow). */
static void version_push(bf_table_t *t, bf_schema_version_t *v) {
  size_t n = __atomic_load_n(&t->n_versions, __ATOMIC_ACQUIRE);
  t->versions[n] = v;
  t->json_schema = v->json_schema;
  t->schema = v->schema;
  memcpy(t->fingerprint, v->fingerprint, sizeof t->fingerprint);
  __atomic_store_n(&t->n_versions, n + 1, __ATOMIC_RELEASE);
}

const bf_schema_version_t *bf_table_find_version(const bf_table_t *t, const char *fingerprint) {
  size_t n = __atomic_load_n(&t->n_versions, __ATOMIC_ACQUIRE);
  for (size_t i = n; i-- > 0;)
    if (strcmp(t->versions[i]->fingerprint, fingerprint) == 0) return t->versions[i];
  return NULL;
}

const bf_schema_version_t *bf_table_current_version(const bf_table_t *t) {
  size_t n = __atomic_load_n(&t->n_versions, __ATOMIC_ACQUIRE);
  return n ? t->versions[n - 1] : NULL;
}

static void table_free(bf_table_t *t) {
  if (t == NULL) return;
  for (size_t i = 0; i < t->n_versions; i++) version_free(t->versions[i]);
  for (size_t i = 0; i < t->n_partition_columns; i++) free(t->partition_columns[i]);
  free(t->partition_columns);
  if (t->snapshot_loaded) bf_delta_snapshot_reset(&t->snapshot);
  pthread_mutex_destroy(&t->mu);
  free(t);
}

/* Builds an in-memory table from validated parts. */
static int table_new(const char *data_dir, const char *catalog, const char *schema_name,
                     const char *table, const char *json_schema,
                     const char *const *partition_columns, size_t n_partition_columns,
                     int64_t created_at_ms, bf_table_t **out, bf_error_t *err) {
  BF_RETURN_NOT_OK(bf_namespace_validate(catalog, "catalog", err));
  BF_RETURN_NOT_OK(bf_namespace_validate(schema_name, "schema_name", err));
  BF_RETURN_NOT_OK(bf_namespace_validate(table, "table", err));
  bf_table_t *t = calloc(1, sizeof *t);
  if (t == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  pthread_mutex_init(&t->mu, NULL);
  strcpy(t->catalog, catalog);
  strcpy(t->schema_name, schema_name);
  strcpy(t->table, table);
  snprintf(t->fqn, sizeof t->fqn, "%s.%s.%s", catalog, schema_name, table);
  snprintf(t->dir, sizeof t->dir, "%s/%s/%s/%s", data_dir, catalog, schema_name, table);
  t->created_at_ms = created_at_ms;
  bf_schema_version_t *v = NULL;
  int status = version_new(json_schema, &v, err);
  if (status == BF_OK) version_push(t, v);
  if (status == BF_OK)
    status = bf_schema_validate_partitions(&t->schema, partition_columns, n_partition_columns, err);
  if (status == BF_OK) {
    t->partition_columns = calloc(n_partition_columns + 1, sizeof *t->partition_columns);
    if (t->partition_columns == NULL)
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n_partition_columns && status == BF_OK; i++) {
      if ((t->partition_columns[i] = strdup(partition_columns[i])) == NULL)
        status = bf_error_set(err, BF_ENOMEM, "out of memory");
      t->n_partition_columns = i + 1;
    }
  }
  if (status != BF_OK) {
    table_free(t);
    return status;
  }
  *out = t;
  return BF_OK;
}

static char *entry_json(const bf_table_t *t) {
  json_t *parts = json_array();
  for (size_t i = 0; i < t->n_partition_columns; i++)
    json_array_append_new(parts, json_string(t->partition_columns[i]));
  json_t *root = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:I}", "catalog", t->catalog,
                           "schema_name", t->schema_name, "table", t->table, "json_schema",
                           t->json_schema, "partition_columns", parts, "fingerprint",
                           t->fingerprint, "created_at_ms", (json_int_t)t->created_at_ms);
  if (root && t->n_versions > 1) { /* every version, oldest first; the keys above are the last */
    json_t *versions = json_array();
    for (size_t i = 0; i < t->n_versions; i++)
      json_array_append_new(versions, json_pack("{s:s, s:s}", "fingerprint",
                                                t->versions[i]->fingerprint, "json_schema",
                                                t->versions[i]->json_schema));
    json_object_set_new(root, "schema_versions", versions);
  }
  char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  json_decref(root);
  return text;
}

static int table_from_file(const char *data_dir, const char *path, bf_table_t **out,
                           bf_error_t *err) {
  char *text;
  size_t size;
  BF_RETURN_NOT_OK(bf_storage_read(path, &text, &size, err));
  json_error_t jerr;
  json_t *root = json_loadb(text, size, 0, &jerr);
  free(text);
  if (root == NULL) return bf_error_set(err, BF_ECORRUPT, "%s is not valid JSON: %s", path, jerr.text);
  const char *catalog = json_string_value(json_object_get(root, "catalog"));
  const char *schema_name = json_string_value(json_object_get(root, "schema_name"));
  const char *table = json_string_value(json_object_get(root, "table"));
  const char *json_schema = json_string_value(json_object_get(root, "json_schema"));
  const char *fingerprint = json_string_value(json_object_get(root, "fingerprint"));
  json_t *parts = json_object_get(root, "partition_columns");
  int status = BF_OK;
  if (!catalog || !schema_name || !table || !json_schema || !fingerprint || !json_is_array(parts)) {
    status = bf_error_set(err, BF_ECORRUPT, "%s misses required keys", path);
  } else {
    size_t n = json_array_size(parts);
    const char **cols = calloc(n + 1, sizeof *cols);
    for (size_t i = 0; cols && i < n; i++) cols[i] = json_string_value(json_array_get(parts, i));
    json_t *versions = json_object_get(root, "schema_versions");
    size_t n_versions = json_array_size(versions);
    if (n_versions > BF_MAX_SCHEMA_VERSIONS) n_versions = 0;
    const char *first = n_versions ? json_string_value(json_object_get(json_array_get(versions, 0),
                                                                       "json_schema"))
                                   : json_schema;
    status = cols && first ? table_new(data_dir, catalog, schema_name, table, first, cols, n,
                                       json_integer_value(json_object_get(root, "created_at_ms")),
                                       out, err)
           : cols ? bf_error_set(err, BF_ECORRUPT, "%s: malformed schema_versions", path)
                  : bf_error_set(err, BF_ENOMEM, "out of memory");
    free(cols);
    for (size_t i = 1; status == BF_OK && i < n_versions; i++) {
      const char *text_i =
          json_string_value(json_object_get(json_array_get(versions, i), "json_schema"));
      bf_schema_version_t *v = NULL;
      status = text_i ? version_new(text_i, &v, err)
                      : bf_error_set(err, BF_ECORRUPT, "%s: malformed schema_versions", path);
      if (status == BF_OK) version_push(*out, v);
      else table_free(*out);
    }
    if (status == BF_OK && strcmp((*out)->fingerprint, fingerprint) != 0) {
      bf_error_set(err, BF_ECORRUPT, "%s: stored fingerprint %s differs from the schema's %s", path,
                   fingerprint, (*out)->fingerprint);
      table_free(*out);
      status = BF_ECORRUPT;
    }
  }
  json_decref(root);
  return status;
}

static int add_table(bf_registry_t *r, bf_table_t *t) {
  bf_table_t **grown = realloc(r->tables, (r->n_tables + 1) * sizeof *grown);
  if (grown == NULL) return BF_ENOMEM;
  r->tables = grown;
  r->tables[r->n_tables++] = t;
  return BF_OK;
}

static bf_table_t *find_locked(bf_registry_t *r, const char *catalog, const char *schema_name,
                               const char *table) {
  for (size_t i = 0; i < r->n_tables; i++) {
    bf_table_t *t = r->tables[i];
    if (strcmp(t->catalog, catalog) == 0 && strcmp(t->schema_name, schema_name) == 0 &&
        strcmp(t->table, table) == 0)
      return t;
  }
  return NULL;
}

/* Path of a table's registry entry; the name parts must be validated already. */
static void entry_path(const bf_registry_t *r, const char *catalog, const char *schema_name,
                       const char *table, char *out, size_t out_size) {
  snprintf(out, out_size, "%s/%s/%s/%s/_bifrost/table.json", r->data_dir, catalog, schema_name,
           table);
}

/* Loads the registry entry of <catalog>/<schema_name>/<table> from disk and lists
 * the table. Caller holds r->mu (or is alone, at open). NULL if there is no entry
 * or it cannot be read (logged unless quiet: at a rescan it may be being written). */
static bf_table_t *load_entry_locked(bf_registry_t *r, const char *catalog, const char *schema_name,
                                     const char *table, int quiet) {
  char entry[PATH_MAX + 32];
  entry_path(r, catalog, schema_name, table, entry, sizeof entry);
  bf_table_t *t;
  bf_error_t err;
  bf_error_init(&err);
  if (table_from_file(r->data_dir, entry, &t, &err) != BF_OK) {
    if (!quiet && err.status != BF_ENOTFOUND) BF_LOG_WARN("cannot load table entry %s: %s", entry, err.message);
    return NULL;
  }
  if (add_table(r, t) != BF_OK) {
    table_free(t);
    return NULL;
  }
  return t;
}

/* Walks <data>/<catalog>/<schema_name>/<table>/ (skipping dot and underscore
 * entries) and adds the tables with a registry entry not listed yet; returns how
 * many were added. Caller holds r->mu (or is alone, at open). */
static size_t scan_level(bf_registry_t *r, const char *dir, int depth, const char **names) {
  bf_storage_list_t list;
  bf_error_t err;
  bf_error_init(&err);
  if (bf_storage_list(dir, NULL, &list, &err) != BF_OK) {
    BF_LOG_WARN("cannot list %s: %s", dir, err.message);
    return 0;
  }
  size_t added = 0;
  for (size_t i = 0; i < list.len; i++) {
    const char *name = list.items[i].name;
    if (!list.items[i].is_dir || name[0] == '.' || name[0] == '_') continue;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) continue;
    if (depth < 2) {
      names[depth] = name;
      added += scan_level(r, path, depth + 1, names);
      continue;
    }
    if (!find_locked(r, names[0], names[1], name) &&
        load_entry_locked(r, names[0], names[1], name, r->scanned))
      added++;
  }
  bf_storage_list_free(&list);
  return added;
}

size_t bf_registry_rescan(bf_registry_t *r) {
  const char *names[2];
  pthread_mutex_lock(&r->mu);
  size_t added = scan_level(r, r->data_dir, 0, names);
  pthread_mutex_unlock(&r->mu);
  return added;
}

int bf_registry_open(bf_registry_t *r, const char *data_dir, bf_error_t *err) {
  memset(r, 0, sizeof *r);
  BF_RETURN_NOT_OK(bf_storage_root(data_dir, r->data_dir, err));
  pthread_mutex_init(&r->mu, NULL);
  const char *names[2];
  scan_level(r, r->data_dir, 0, names);
  r->scanned = 1;
  return BF_OK;
}

int bf_registry_add_version(bf_registry_t *r, bf_table_t *t, const char *json_schema,
                            bf_error_t *err) {
  if (t->n_versions >= BF_MAX_SCHEMA_VERSIONS)
    return bf_error_set(err, BF_EFULL, "table %s has %d schema versions, the most it may have",
                        t->fqn, BF_MAX_SCHEMA_VERSIONS);
  bf_schema_version_t *v = NULL;
  BF_RETURN_NOT_OK(version_new(json_schema, &v, err));
  int status = bf_schema_validate_partitions(&v->schema, (const char *const *)t->partition_columns,
                                             t->n_partition_columns, err);
  if (status != BF_OK) {
    version_free(v);
    return status;
  }
  version_push(t, v);
  (void)r;
  char entry[PATH_MAX + 32];
  snprintf(entry, sizeof entry, "%s/_bifrost/table.json", t->dir);
  char *text = entry_json(t);
  status = text ? bf_storage_write_replace(entry, text, strlen(text), err)
                : bf_error_set(err, BF_ENOMEM, "out of memory");
  free(text);
  return status;
}

void bf_registry_forget(bf_registry_t *r, bf_table_t *t) {
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->n_tables; i++) {
    if (r->tables[i] != t) continue;
    bf_table_t **grown = realloc(r->retired, (r->n_retired + 1) * sizeof *grown);
    if (grown == NULL) break; /* keep listing it rather than lose track of it */
    r->retired = grown;
    r->retired[r->n_retired++] = t;
    memmove(r->tables + i, r->tables + i + 1, (r->n_tables - i - 1) * sizeof *r->tables);
    r->n_tables--;
    break;
  }
  pthread_mutex_unlock(&r->mu);
}

void bf_registry_close(bf_registry_t *r) {
  for (size_t i = 0; i < r->n_tables; i++) table_free(r->tables[i]);
  free(r->tables);
  for (size_t i = 0; i < r->n_retired; i++) table_free(r->retired[i]);
  free(r->retired);
  pthread_mutex_destroy(&r->mu);
  memset(r, 0, sizeof *r);
}

bf_table_t *bf_registry_find(bf_registry_t *r, const char *catalog, const char *schema_name,
                             const char *table) {
  if (bf_namespace_validate(catalog, "catalog", NULL) != BF_OK ||
      bf_namespace_validate(schema_name, "schema_name", NULL) != BF_OK ||
      bf_namespace_validate(table, "table", NULL) != BF_OK)
    return NULL;
  pthread_mutex_lock(&r->mu);
  bf_table_t *t = find_locked(r, catalog, schema_name, table);
  if (t == NULL) t = load_entry_locked(r, catalog, schema_name, table, 0);
  pthread_mutex_unlock(&r->mu);
  return t;
}

static bf_delta_checkpoint_reader_fn checkpoint_reader;
static void *checkpoint_reader_ctx;

void bf_registry_set_checkpoint_reader(bf_delta_checkpoint_reader_fn reader, void *ctx) {
  checkpoint_reader = reader;
  checkpoint_reader_ctx = ctx;
}

/* The checkpoint reader as snapshot loads call it: a checkpoint that cannot be
 * read (damaged, or removed under us) is logged; the load then replays the JSON
 * commits, which fails naming the first missing one if log cleanup took them. */
static int read_checkpoint_logged(void *ctx, const char *path, bf_delta_snapshot_t *into,
                                  bf_error_t *err) {
  (void)ctx;
  int status = checkpoint_reader(checkpoint_reader_ctx, path, into, err);
  if (status != BF_OK && err != NULL && err->message[0]) /* the engine's message names path */
    BF_LOG_WARN("%s; replaying the JSON commits instead", err->message);
  else if (status != BF_OK)
    BF_LOG_WARN("cannot read the Delta checkpoint %s; replaying the JSON commits instead", path);
  return status;
}

int bf_table_ensure_snapshot(bf_table_t *t, bf_error_t *err) {
  if (t->snapshot_loaded) return BF_OK;
  BF_RETURN_NOT_OK(bf_delta_snapshot_load_with(t->dir, checkpoint_reader ? read_checkpoint_logged : NULL,
                                               NULL, &t->snapshot, err));
  t->snapshot_loaded = 1;
  return BF_OK;
}

/* Writes "[a, b]" (or "[]") into out. */
static void format_columns(char *const *columns, size_t n, char *out, size_t out_size) {
  size_t used = (size_t)snprintf(out, out_size, "[");
  for (size_t i = 0; i < n && used < out_size; i++)
    used += (size_t)snprintf(out + used, out_size - used, "%s%s", i ? ", " : "", columns[i]);
  if (used < out_size) snprintf(out + used, out_size - used, "]");
}

/* BF_OK when an existing table matches a registration request (same fingerprint,
 * or any earlier schema version's, and the same partition columns in the same
 * order), else BF_EMISMATCH naming both. */
static int compare_existing(const bf_table_t *existing, bf_table_t *candidate,
                            bf_error_t *err) {
  /* Any schema version the table has had is accepted (producers of an older
   * version keep working after an evolution). */
  if (existing->n_versions > 1 && bf_table_find_version(existing, candidate->fingerprint))
    strcpy(candidate->fingerprint, existing->fingerprint);
  if (strcmp(existing->fingerprint, candidate->fingerprint) != 0)
    return bf_error_set(err, BF_EMISMATCH,
                        "table %s is registered with fingerprint %s, request has %s "
                        "(the schema changed)",
                        existing->fqn, existing->fingerprint, candidate->fingerprint);
  int same = existing->n_partition_columns == candidate->n_partition_columns;
  for (size_t i = 0; same && i < existing->n_partition_columns; i++)
    same = strcmp(existing->partition_columns[i], candidate->partition_columns[i]) == 0;
  if (!same) {
    char have[200], want[200];
    format_columns(existing->partition_columns, existing->n_partition_columns, have, sizeof have);
    format_columns(candidate->partition_columns, candidate->n_partition_columns, want, sizeof want);
    return bf_error_set(err, BF_EMISMATCH,
                        "table %s is registered with partition columns %s, request has %s",
                        existing->fqn, have, want);
  }
  return BF_OK;
}

/* A Delta log already exists where a new table is being created: left by an
 * interrupted registration or being created by another server right now. Adopt
 * it only when it describes the same schema and partition columns. */
static int check_existing_log(const bf_table_t *candidate, bf_error_t *err) {
  bf_delta_snapshot_t snapshot;
  memset(&snapshot, 0, sizeof snapshot);
  char *schema_string = NULL;
  int status = bf_delta_snapshot_load_with(candidate->dir,
                                           checkpoint_reader ? read_checkpoint_logged : NULL, NULL,
                                           &snapshot, err);
  if (status == BF_OK) status = bf_delta_schema_string(&candidate->schema, &schema_string, err);
  if (status == BF_OK) {
    int same = snapshot.schema_string && strcmp(snapshot.schema_string, schema_string) == 0 &&
               snapshot.n_partition_columns == candidate->n_partition_columns + 1;
    for (size_t i = 0; same && i < candidate->n_partition_columns; i++)
      same = strcmp(snapshot.partition_columns[i + 1], candidate->partition_columns[i]) == 0;
    if (!same)
      status = bf_error_set(err, BF_ECONFLICT,
                            "table %s: a Delta log with a different schema or partitioning "
                            "already exists in %s",
                            candidate->fqn, candidate->dir);
    bf_delta_snapshot_reset(&snapshot);
  } else {
    bf_error_prefix(err, "table %s: existing Delta log in %s", candidate->fqn, candidate->dir);
  }
  free(schema_string);
  return status;
}

/* Tests: called when registration found no entry, before it looks again (lets a
 * test have another server write the entry in that window). */
void (*bf__registry_entry_missed)(void) = NULL;

/* Reads the entry another server wrote for the table being registered and adds
 * it to the registry when it matches the candidate's schema and partitioning.
 * Caller holds r->mu. */
static int adopt_entry(bf_registry_t *r, const char *entry, bf_table_t *candidate,
                       bf_table_t **out, int *created, bf_error_t *err) {
  bf_table_t *other;
  BF_RETURN_NOT_OK(table_from_file(r->data_dir, entry, &other, err));
  int status = compare_existing(other, candidate, err);
  if (status == BF_OK) status = add_table(r, other);
  if (status != BF_OK) {
    table_free(other);
    return status;
  }
  *out = other;
  *created = 0;
  return BF_OK;
}

int bf_registry_register(bf_registry_t *r, const char *catalog, const char *schema_name,
                         const char *table, const char *json_schema,
                         const char *const *partition_columns, size_t n_partition_columns,
                         const char *client_fingerprint, bf_table_t **out, int *created,
                         bf_error_t *err) {
  bf_table_t *candidate;
  BF_RETURN_NOT_OK(table_new(r->data_dir, catalog, schema_name, table, json_schema,
                             partition_columns, n_partition_columns, bf_time_now_ms(), &candidate,
                             err));
  int status = BF_OK;
  if (client_fingerprint && client_fingerprint[0] &&
      strcmp(client_fingerprint, candidate->fingerprint) != 0) {
    status = bf_error_set(err, BF_EINVAL,
                          "request fingerprint %s for table %s does not match the fingerprint %s "
                          "the server computes from the schema it sent",
                          client_fingerprint, candidate->fqn, candidate->fingerprint);
    table_free(candidate);
    return status;
  }
  pthread_mutex_lock(&r->mu);
  /* In memory, or registered by another server on the same data directory. */
  bf_table_t *existing = find_locked(r, catalog, schema_name, table);
  if (existing == NULL) existing = load_entry_locked(r, catalog, schema_name, table, 0);
  if (existing == NULL && bf__registry_entry_missed) bf__registry_entry_missed();
  char entry[PATH_MAX + 32];
  entry_path(r, catalog, schema_name, table, entry, sizeof entry);
  bf_error_t probe;
  bf_error_init(&probe);
  if (existing == NULL && bf_storage_stat(entry, NULL, NULL, &probe) != BF_ENOTFOUND) {
    /* An entry load_entry_locked could not read: either another server wrote it
     * just after that read missed it (adopt it), or it is damaged (report why,
     * never write over it). */
    status = adopt_entry(r, entry, candidate, out, created, err);
    goto done;
  }
  if (existing) {
    status = compare_existing(existing, candidate, err);
    if (status == BF_OK) {
      *out = existing;
      *created = 0;
    }
    goto done;
  }
  char meta_dir[PATH_MAX + 16];
  snprintf(meta_dir, sizeof meta_dir, "%s/_bifrost", candidate->dir);
  status = bf_storage_mkdirs(meta_dir, err);
  if (status == BF_OK) {
    status = bf_delta_log_create(candidate->dir, &candidate->schema,
                                 (const char *const *)candidate->partition_columns,
                                 candidate->n_partition_columns, err);
    if (status == BF_EEXIST) status = check_existing_log(candidate, err);
  }
  char *text = status == BF_OK ? entry_json(candidate) : NULL;
  if (status == BF_OK && text == NULL) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  if (status == BF_OK) status = bf_storage_write_new(entry, text, strlen(text), err);
  free(text);
  if (status == BF_EEXIST) { /* lost a race with another server: adopt its entry */
    status = adopt_entry(r, entry, candidate, out, created, err);
    goto done;
  }
  if (status == BF_OK && (status = add_table(r, candidate)) == BF_OK) {
    *out = candidate;
    *created = 1;
    candidate = NULL;
  }
done:
  pthread_mutex_unlock(&r->mu);
  table_free(candidate);
  return status;
}
