/* Additive schema evolution (schema_mode "merge"): the rules of what a new model may
 * change, and the change itself: the tails get the new columns, one Delta commit
 * writes the new metaData, the registry keeps the new version beside the old ones
 * and the view is rebuilt with columns matched by name (older files lack the new
 * columns, which read as null). */
#include "server/table_evolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/log.h"
#include "server/table_store_internal.h"

typedef struct diff {
  char text[BF_ERROR_MESSAGE_MAX];
  size_t used;
  int refused, added, relaxed;
} diff_t;

static void note(diff_t *d, const char *fmt, const char *path, const char *a, const char *b) {
  if (d->used >= sizeof d->text - 1) return;
  int n = snprintf(d->text + d->used, sizeof d->text - d->used, "%s", d->refused ? "; " : "");
  if (n > 0) d->used += (size_t)n;
  if (d->used >= sizeof d->text - 1) return;
  n = snprintf(d->text + d->used, sizeof d->text - d->used, fmt, path, a ? a : "", b ? b : "");
  if (n > 0) d->used += (size_t)n;
  if (d->used > sizeof d->text - 1) d->used = sizeof d->text - 1;
  d->refused++;
}

static const bf_field_t *child_named(const bf_field_t *fields, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(fields[i].name, name) == 0) return &fields[i];
  return NULL;
}

static void compare_field(diff_t *d, const bf_field_t *o, const bf_field_t *n, const char *path);

static void compare_children(diff_t *d, const bf_field_t *o, size_t n_o, const bf_field_t *n,
                             size_t n_n, const char *prefix) {
  char path[512];
  for (size_t i = 0; i < n_o; i++) {
    snprintf(path, sizeof path, "%s%s", prefix, o[i].name);
    const bf_field_t *m = child_named(n, n_n, o[i].name);
    if (m == NULL) note(d, "field '%s' was removed (or renamed)%s%s", path, NULL, NULL);
    else compare_field(d, &o[i], m, path);
  }
  for (size_t i = 0; i < n_n; i++) {
    if (child_named(o, n_o, n[i].name)) continue;
    snprintf(path, sizeof path, "%s%s", prefix, n[i].name);
    if (!n[i].nullable)
      note(d, "new field '%s' is required (new fields must be Optional with a default of None)%s%s",
           path, NULL, NULL);
    else
      d->added++;
  }
}

static void compare_field(diff_t *d, const bf_field_t *o, const bf_field_t *n, const char *path) {
  if (o->nullable && !n->nullable)
    note(d, "field '%s' became required (nullable -> required)%s%s", path, NULL, NULL);
  else if (!o->nullable && n->nullable)
    d->relaxed++;
  if (o->type != n->type || (o->type == BF_TYPE_DECIMAL128 && (o->precision != n->precision ||
                                                                 o->scale != n->scale))) {
    char *a = NULL, *b = NULL;
    bf_field_type_string(o, &a, NULL);
    bf_field_type_string(n, &b, NULL);
    note(d, "field '%s' changed type from %s to %s", path, a ? a : "?", b ? b : "?");
    free(a);
    free(b);
    return;
  }
  if (o->type == BF_TYPE_STRUCT) {
    char prefix[520];
    snprintf(prefix, sizeof prefix, "%s.", path);
    compare_children(d, o->children, o->n_children, n->children, n->n_children, prefix);
  } else if (o->type == BF_TYPE_LIST && o->n_children == 1 && n->n_children == 1) {
    char item[520];
    snprintf(item, sizeof item, "%s[]", path);
    compare_field(d, &o->children[0], &n->children[0], item);
  } else if (o->type == BF_TYPE_MAP && o->n_children == 1 && n->n_children == 1 &&
             o->children[0].n_children == 2 && n->children[0].n_children == 2) {
    char value[520];
    snprintf(value, sizeof value, "%s{}", path);
    compare_field(d, &o->children[0].children[1], &n->children[0].children[1], value);
  } else if (o->type == BF_TYPE_DICTIONARY) {
    for (size_t i = 0; i < o->n_enum_values; i++) {
      int kept = 0;
      for (size_t k = 0; k < n->n_enum_values && !kept; k++)
        kept = strcmp(o->enum_values[i], n->enum_values[k]) == 0;
      if (!kept) note(d, "field '%s' lost the enum value '%s'%s", path, o->enum_values[i], NULL);
    }
  }
}

int bf_schema_evolution_check(const char *fqn, const bf_schema_t *current, const bf_schema_t *next,
                              bf_error_t *err) {
  diff_t d = {0};
  compare_children(&d, current->fields, current->n_user_fields, next->fields, next->n_user_fields,
                   "");
  if (d.refused)
    return bf_error_set(err, BF_EMISMATCH, "schema evolution refused for table %s: %s", fqn, d.text);
  return BF_OK;
}

/* ALTER TABLE ... ADD COLUMN for each field of next missing from current, walking
 * structs (by field name) and lists (their "element"). */
static int add_to_tail(bf_store_t *s, const char *catalog, const char *tail,
                       const bf_field_t *current, size_t n_current, const bf_field_t *next,
                       size_t n_next, const char **path, size_t depth, bf_error_t *err) {
  if (depth >= BF_SCHEMA_MAX_DEPTH) return BF_OK;
  for (size_t i = 0; i < n_next; i++) {
    const bf_field_t *o = child_named(current, n_current, next[i].name);
    path[depth] = next[i].name;
    int status = BF_OK;
    if (o == NULL) {
      status = bf_engine_tail_add_column(s->engine, catalog, tail, path, depth + 1, &next[i], err);
    } else if (o->type == BF_TYPE_STRUCT && next[i].type == BF_TYPE_STRUCT) {
      status = add_to_tail(s, catalog, tail, o->children, o->n_children, next[i].children,
                           next[i].n_children, path, depth + 1, err);
    } else if (o->type == BF_TYPE_LIST && next[i].type == BF_TYPE_LIST && o->n_children == 1 &&
               next[i].n_children == 1 && o->children[0].type == BF_TYPE_STRUCT &&
               next[i].children[0].type == BF_TYPE_STRUCT && depth + 1 < BF_SCHEMA_MAX_DEPTH) {
      path[depth + 1] = "element";
      status = add_to_tail(s, catalog, tail, o->children[0].children, o->children[0].n_children,
                           next[i].children[0].children, next[i].children[0].n_children, path,
                           depth + 2, err);
    }
    if (status != BF_OK) return status;
  }
  return BF_OK;
}

int bf_store_evolve(bf_store_t *s, bf_table_t *t, const char *json_schema,
                    const char *const *partition_columns, size_t n_partition_columns,
                    bf_error_t *err) {
  bf_schema_t next = {0};
  BF_RETURN_NOT_OK(bf_schema_from_json_schema(json_schema, strlen(json_schema), &next, err));
  int same = n_partition_columns == t->n_partition_columns;
  for (size_t i = 0; same && i < n_partition_columns; i++)
    same = strcmp(partition_columns[i], t->partition_columns[i]) == 0;
  int status = same ? BF_OK
                    : bf_error_set(err, BF_EMISMATCH,
                                   "schema evolution refused for table %s: the partition columns "
                                   "cannot change",
                                   t->fqn);
  if (status == BF_OK) {
    pthread_mutex_lock(&t->mu);
    status = bf_store_open_table(s, t, err);
    pthread_mutex_unlock(&t->mu);
  }
  if (status != BF_OK) {
    bf_schema_reset(&next);
    return status;
  }
  bf_table_store_t *ts = t->store;
  pthread_mutex_lock(&ts->work_mu);
  pthread_mutex_lock(&t->mu);
  /* No insert between WAL and tail while the tails change. */
  while (bf__any_pending(ts)) pthread_cond_wait(&ts->pending_cv, &t->mu);
  char fingerprint[33] = "";
  status = t->dropped ? bf_error_set(err, BF_ENOTFOUND, "table %s was dropped", t->fqn) : BF_OK;
  if (status == BF_OK) status = bf_schema_fingerprint(&next, fingerprint, err);
  int known = status == BF_OK && bf_table_find_version(t, fingerprint) != NULL;
  if (status == BF_OK && !known) status = bf_schema_evolution_check(t->fqn, &t->schema, &next, err);
  if (status == BF_OK && !known) status = bf_delta_snapshot_refresh(t->dir, &t->snapshot, NULL, err);
  char *schema_string = NULL;
  if (status == BF_OK && !known) status = bf_delta_schema_string(&next, &schema_string, err);
  /* New columns (and struct fields) in every tail first: a failure here changes
   * nothing visible. */
  for (size_t g = 0; status == BF_OK && !known && g < ts->n_gens; g++) {
    const char *path[BF_SCHEMA_MAX_DEPTH + 1];
    status = add_to_tail(s, t->catalog, ts->gens[g]->tail, t->schema.fields,
                         t->schema.n_user_fields, next.fields, next.n_user_fields, path, 0, err);
  }
  int64_t version = -1;
  if (status == BF_OK && !known) {
    bf_delta_commit_t c = {.operation = "ADD COLUMNS", .data_change = 0,
                           .schema_string = schema_string};
    status = bf_delta_log_commit(t->dir, &t->snapshot, &c, &version, err);
  }
  if (status == BF_OK && !known) status = bf_registry_add_version(s->registry, t, json_schema, err);
  if (status == BF_OK && !known) {
    bf_error_t view_err;
    bf_error_init(&view_err);
    if (bf__store_publish(s, t, NULL, &view_err) != BF_OK)
      BF_LOG_ERROR("table %s: view after schema evolution: %s", t->fqn, view_err.message);
    BF_LOG_INFO("table %s: schema version %zu (fingerprint %s) at Delta version %lld", t->fqn,
                t->n_versions - 1, t->fingerprint, (long long)version);
  }
  pthread_mutex_unlock(&t->mu);
  pthread_mutex_unlock(&ts->work_mu);
  free(schema_string);
  bf_schema_reset(&next);
  return status;
}

int bf_store_register_mismatch(bf_store_t *s, bf_registry_t *r, const char *catalog,
                               const char *schema_name, const char *table, const char *json_schema,
                               const char *const *partition_columns, size_t n_partition_columns,
                               int merge, bf_table_t **out, bf_error_t *err) {
  bf_table_t *existing = bf_registry_find(r, catalog, schema_name, table);
  bf_schema_t next = {0};
  if (existing == NULL || strstr(err->message, "fingerprint") == NULL ||
      bf_schema_from_json_schema(json_schema, strlen(json_schema), &next, NULL) != BF_OK)
    return err->status;
  int status;
  if (merge) {
    bf_error_init(err);
    status = bf_store_evolve(s, existing, json_schema, partition_columns, n_partition_columns, err);
    if (status == BF_OK) *out = existing;
  } else {
    /* "... (the schema changed)" becomes "... (the schema changed; <what>)". */
    char first[BF_ERROR_MESSAGE_MAX];
    snprintf(first, sizeof first, "%s", err->message);
    size_t len = strlen(first);
    if (len && first[len - 1] == ')') first[len - 1] = '\0';
    bf_error_t diff;
    bf_error_init(&diff);
    if (bf_schema_evolution_check(existing->fqn, &existing->schema, &next, &diff) != BF_OK) {
      const char *what = strstr(diff.message, ": ");
      bf_error_set(err, BF_EMISMATCH, "%s; not an additive change, schema_mode=\"merge\" would "
                   "refuse it too: %s)", first, what ? what + 2 : diff.message);
    } else {
      bf_error_set(err, BF_EMISMATCH, "%s; it only adds to the schema: register with "
                   "schema_mode=\"merge\" to evolve the table)", first);
    }
    status = err->status;
  }
  bf_schema_reset(&next);
  return status;
}
