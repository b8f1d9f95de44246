/* Query guard: DuckDB's sandbox limits file access to the data directory but follows
 * symlinks planted there and lets a query name any file under it. Users should
 * reach data only through the tables' views, so before a query runs its syntax tree
 * (json_serialize_sql, JSON extension built into libduckdb) is checked: table
 * functions must come from a small allowlist (no read_parquet, read_csv, glob, ...)
 * and a bare table name that looks like a file path (replacement scan, e.g.
 * FROM 'x.parquet') is refused. The views themselves call read_parquet, but their
 * definitions are not part of the user's tree. */
#include <jansson.h>
#include <string.h>

#include "engine/engine_internal.h"

static const char *const ALLOWED_TABLE_FUNCTIONS[] = {
    "range", "generate_series", "unnest", "duckdb_tables", "duckdb_views", "duckdb_columns",
    "duckdb_schemas", "duckdb_databases", "duckdb_types", "duckdb_functions", "duckdb_keywords",
};

static int check_node(json_t *node, bf_error_t *err) {
  if (json_is_array(node)) {
    size_t i;
    json_t *item;
    json_array_foreach(node, i, item) BF_RETURN_NOT_OK(check_node(item, err));
    return BF_OK;
  }
  if (!json_is_object(node)) return BF_OK;
  const char *type = json_string_value(json_object_get(node, "type"));
  if (type && strcmp(type, "TABLE_FUNCTION") == 0) {
    const char *name =
        json_string_value(json_object_get(json_object_get(node, "function"), "function_name"));
    int allowed = 0;
    for (size_t i = 0; name && i < sizeof ALLOWED_TABLE_FUNCTIONS / sizeof *ALLOWED_TABLE_FUNCTIONS; i++)
      if (strcmp(name, ALLOWED_TABLE_FUNCTIONS[i]) == 0) allowed = 1;
    if (!allowed)
      return bf_error_set(err, BF_EPERM,
                          "table function %s() is not allowed: query tables by "
                          "catalog.schema_name.table",
                          name ? name : "?");
  } else if (type && strcmp(type, "BASE_TABLE") == 0) {
    const char *table = json_string_value(json_object_get(node, "table_name"));
    const char *schema = json_string_value(json_object_get(node, "schema_name"));
    const char *catalog = json_string_value(json_object_get(node, "catalog_name"));
    if (table && (!schema || !schema[0]) && (!catalog || !catalog[0]) &&
        (strchr(table, '/') || strchr(table, '.') || strchr(table, '\\')))
      return bf_error_set(err, BF_EPERM,
                          "reading files directly ('%s') is not allowed: query tables by "
                          "catalog.schema_name.table",
                          table);
  }
  const char *key;
  json_t *value;
  json_object_foreach(node, key, value) BF_RETURN_NOT_OK(check_node(value, err));
  return BF_OK;
}

int bf__engine_guard_query(duckdb_connection conn, const char *sql, bf_error_t *err) {
  duckdb_prepared_statement stmt = NULL;
  if (duckdb_prepare(conn, "SELECT json_serialize_sql($1::VARCHAR)", &stmt) != DuckDBSuccess) {
    int status = bf_error_set(err, BF_EINTERNAL, "query guard unavailable: %s", duckdb_prepare_error(stmt));
    duckdb_destroy_prepare(&stmt);
    return status;
  }
  duckdb_bind_varchar(stmt, 1, sql);
  duckdb_result result;
  int status = BF_OK;
  if (duckdb_execute_prepared(stmt, &result) != DuckDBSuccess) {
    status = bf_error_set(err, BF_EINTERNAL, "query guard failed: %s", duckdb_result_error(&result));
  } else {
    char *text = duckdb_value_varchar(&result, 0, 0);
    json_t *tree = text ? json_loads(text, JSON_DECODE_INT_AS_REAL, NULL) : NULL; /* positions overflow int64 */
    duckdb_free(text);
    if (tree == NULL) {
      status = bf_error_set(err, BF_EINTERNAL, "query guard could not read the syntax tree");
    } else if (!json_is_true(json_object_get(tree, "error"))) {
      /* Non-SELECT statements do not serialize; the statement-type check refuses them. */
      status = check_node(json_object_get(tree, "statements"), err);
    }
    json_decref(tree);
  }
  duckdb_destroy_result(&result);
  duckdb_destroy_prepare(&stmt);
  return status;
}
