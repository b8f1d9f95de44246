/* Row counts answered from the table's log: `SELECT count(*) FROM catalog.schema.table`
 * with nothing else in the query is the sum of the live files' numRecords (from
 * their Delta stats) and the rows of the tails in the table's view, without
 * opening a Parquet file. Delta engines do the same (Spark's metadata-only
 * count): over many files the count otherwise pays DuckDB's per-file work (open,
 * footer, column readers: ~90 us a file, 0.4-0.5 s for 5,000 files).
 *
 * The record of a table's view (its files' rows and its tails) is replaced in the
 * same step that publishes the view (bf_engine_set_table_view), before a flushed
 * tail is retired, so a count always sees one consistent state: the flush moves
 * rows from a tail to a file, and the total stays the same. The answer is used
 * only after DuckDB has prepared the user's query (names, grants, a dropped
 * table, all as for any query) and only when every file's count is known (a file
 * of another writer without stats is counted by DuckDB). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/engine_internal.h"

struct bf__view_count {
  bf__view_count_t *next;
  char *catalog, *schema_name, *table;
  int64_t file_rows; /* -1: a file's count is unknown */
  char **tails;
  size_t n_tails;
};

static void count_free(bf__view_count_t *c) {
  for (size_t i = 0; i < c->n_tails; i++) free(c->tails[i]);
  free(c->tails);
  free(c->catalog);
  free(c->schema_name);
  free(c->table);
  free(c);
}

void bf__engine_counts_destroy(bf_engine_t *engine) {
  while (engine->counts) {
    bf__view_count_t *c = engine->counts;
    engine->counts = c->next;
    count_free(c);
  }
}

static int same(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

static bf__view_count_t **find(bf_engine_t *engine, const char *catalog, const char *schema_name,
                               const char *table) {
  bf__view_count_t **link = &engine->counts;
  while (*link && !(same((*link)->table, table) && same((*link)->schema_name, schema_name) &&
                    same((*link)->catalog, catalog)))
    link = &(*link)->next;
  return link;
}

void bf__engine_count_record(bf_engine_t *engine, const char *catalog, const char *schema_name,
                             const char *table, const bf_delta_file_t *files, size_t n_files,
                             const char *const *tails, size_t n_tails) {
  bf__view_count_t *c = calloc(1, sizeof *c);
  int ok = c != NULL;
  if (ok) {
    c->catalog = strdup(catalog);
    c->schema_name = strdup(schema_name);
    c->table = strdup(table);
    c->tails = calloc(n_tails ? n_tails : 1, sizeof *c->tails);
    ok = c->catalog && c->schema_name && c->table && c->tails;
  }
  for (size_t i = 0; ok && i < n_tails; i++)
    ok = (c->tails[c->n_tails++] = strdup(tails[i])) != NULL;
  if (ok) {
    for (size_t i = 0; i < n_files && c->file_rows >= 0; i++)
      /* 0 is also what an unreadable or missing numRecords gives: never trusted */
      c->file_rows = files[i].num_records > 0 ? c->file_rows + files[i].num_records : -1;
  }
  pthread_mutex_lock(&engine->counts_mu);
  bf__view_count_t **link = find(engine, catalog, schema_name, table);
  if (*link) { /* replaced; out of memory forgets the table (DuckDB counts it) */
    bf__view_count_t *old = *link;
    *link = old->next;
    count_free(old);
  }
  if (ok) {
    c->next = engine->counts;
    engine->counts = c;
  } else if (c) {
    count_free(c);
  }
  pthread_mutex_unlock(&engine->counts_mu);
}

int64_t bf__engine_count_rows(bf_engine_t *engine, const char *catalog, const char *schema_name,
                              const char *table) {
  pthread_mutex_lock(&engine->counts_mu);
  bf__view_count_t *c = *find(engine, catalog, schema_name, table);
  int64_t rows = c ? c->file_rows : -1;
  for (size_t i = 0; c && rows >= 0 && i < c->n_tails; i++) {
    int64_t tail_rows = bf__engine_tail_rows(engine, c->catalog, c->tails[i]);
    rows = tail_rows >= 0 ? rows + tail_rows : -1;
  }
  pthread_mutex_unlock(&engine->counts_mu);
  return rows;
}

static int empty_array(json_t *node) { return json_is_array(node) && json_array_size(node) == 0; }

static const char *text(json_t *node, const char *key) {
  return json_string_value(json_object_get(node, key));
}

int bf__engine_count_shape(json_t *tree, bf__count_target_t *out) {
  memset(out, 0, sizeof *out);
  json_t *statements = json_object_get(tree, "statements");
  if (!json_is_array(statements) || json_array_size(statements) != 1) return 0;
  json_t *node = json_object_get(json_array_get(statements, 0), "node");
  const char *type = text(node, "type");
  if (type == NULL || strcmp(type, "SELECT_NODE") != 0) return 0;
  json_t *ctes = json_object_get(json_object_get(node, "cte_map"), "map");
  if (!empty_array(json_object_get(node, "modifiers")) || !empty_array(ctes) ||
      !json_is_null(json_object_get(node, "where_clause")) ||
      !empty_array(json_object_get(node, "group_expressions")) ||
      !empty_array(json_object_get(node, "group_sets")) ||
      !json_is_null(json_object_get(node, "having")) ||
      !json_is_null(json_object_get(node, "sample")) ||
      !json_is_null(json_object_get(node, "qualify")))
    return 0;
  const char *handling = text(node, "aggregate_handling");
  if (handling == NULL || strcmp(handling, "STANDARD_HANDLING") != 0) return 0;
  json_t *list = json_object_get(node, "select_list");
  if (!json_is_array(list) || json_array_size(list) != 1) return 0;
  json_t *count = json_array_get(list, 0);
  const char *name = text(count, "function_name");
  if (name == NULL || strcmp(name, "count_star") != 0 ||
      !empty_array(json_object_get(count, "children")) ||
      !json_is_null(json_object_get(count, "filter")) ||
      json_is_true(json_object_get(count, "distinct")) ||
      !empty_array(json_object_get(json_object_get(count, "order_bys"), "orders")) ||
      strcmp(text(count, "schema") ? text(count, "schema") : "x", "") != 0 ||
      strcmp(text(count, "catalog") ? text(count, "catalog") : "x", "") != 0)
    return 0;
  json_t *from = json_object_get(node, "from_table");
  const char *from_type = text(from, "type");
  if (from_type == NULL || strcmp(from_type, "BASE_TABLE") != 0 ||
      !json_is_null(json_object_get(from, "sample")) ||
      !json_is_null(json_object_get(from, "at_clause")))
    return 0;
  const char *catalog = text(from, "catalog_name"), *schema_name = text(from, "schema_name"),
             *table = text(from, "table_name");
  /* The full name only: a shorter one resolves through DuckDB's search path. */
  if (!catalog || !schema_name || !table || !catalog[0] || !schema_name[0] || !table[0] ||
      strlen(catalog) >= sizeof out->catalog || strlen(schema_name) >= sizeof out->schema_name ||
      strlen(table) >= sizeof out->table)
    return 0;
  strcpy(out->catalog, catalog);
  strcpy(out->schema_name, schema_name);
  strcpy(out->table, table);
  out->found = 1;
  return 1;
}
