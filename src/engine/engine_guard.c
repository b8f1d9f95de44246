/* Query guard: what a user query may touch, checked on its syntax tree
 * (json_serialize_sql, JSON extension built into libduckdb) before it is planned.
 *
 * - Data is reachable only through the tables' views: table functions must come
 *   from a small allowlist (no read_parquet, read_csv, glob, ...), a bare table
 *   name that looks like a file path (replacement scan, FROM 'x.parquet') is
 *   refused. DuckDB's sandbox limits file access to the data directory but would
 *   follow symlinks planted there. The views call read_parquet, but their
 *   definitions are not part of the user's tree.
 * - Nothing about the host: the system catalogs (pg_catalog, information_schema,
 *   duckdb_settings(), current_setting(), ...), the internal tail schema and
 *   statements that do not serialize as a plain SELECT (PRAGMA) are refused.
 * - Cheap structural bounds before planning: SELECT blocks (CTEs, subqueries,
 *   set-operation branches), nesting depth, and functions that build one large
 *   value from a constant count (repeat('x', 2e9) would allocate outside the
 *   memory limit and cannot be interrupted).
 * - Tables this server could not load completely are refused by name (a partial
 *   view would give a wrong answer).
 * The tree of a text seen recently comes from the parse cache
 * (engine_parse_cache.c); the checks run for every query. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/engine_compat.h"
#include "engine/engine_internal.h"

static const char *const ALLOWED_TABLE_FUNCTIONS[] = {
    "range", "generate_series", "unnest", "duckdb_types", "duckdb_functions", "duckdb_keywords",
};

/* Scalar functions that reveal the server's settings or environment. */
static const char *const DENIED_FUNCTIONS[] = {
    "current_setting", "getenv", "getvariable", "duckdb_settings", "current_schemas",
};

/* Functions whose integer argument sets the size of the value they build. */
static const char *const SIZING_FUNCTIONS[] = {
    "repeat", "lpad", "rpad", "range", "generate_series", "list_repeat", "array_repeat",
};

static const char *const HIDDEN_SCHEMAS[] = {"pg_catalog", "information_schema", BF_TAIL_SCHEMA};

typedef struct guard {
  bf_engine_t *engine;
  bf_engine_table_check_fn check_table; /* may be NULL */
  void *check_ctx;
  int selects;
  bf_error_t *err;
} guard_t;

static int in_list(const char *name, const char *const *list, size_t n) {
  for (size_t i = 0; name && i < n; i++)
    if (strcasecmp(name, list[i]) == 0) return 1;
  return 0;
}
#define IN(name, list) in_list(name, list, sizeof list / sizeof *list)

/* ---- the text, before DuckDB parses it -------------------------------------------- */

static int keyword_at(const char *p, const char *word) {
  size_t n = strlen(word);
  return strncasecmp(p, word, n) == 0 && !(isalnum((unsigned char)p[n]) || p[n] == '_');
}

/* DuckDB's parser takes time and memory that grow faster than linearly with the
 * number of CTEs (2,000 chained CTEs: seconds and gigabytes before any check on
 * the syntax tree could run), so SELECT blocks are first counted on the text:
 * SELECT and VALUES keywords and FROM-first subqueries "(FROM", outside string
 * literals, quoted identifiers and comments. */
int bf__engine_guard_text(bf_engine_t *engine, const char *sql, bf_error_t *err) {
  int blocks = 0, after_paren = 0, at_start = 1;
  for (const char *p = sql; *p;) {
    unsigned char c = (unsigned char)*p;
    if (c == '\'' || c == '"') { /* literal or quoted identifier; doubled quote escapes */
      for (p++; *p; p++)
        if (*p == (char)c && *++p != (char)c) break;
      after_paren = at_start = 0;
      continue;
    }
    if (c == '-' && p[1] == '-') {
      while (*p && *p != '\n') p++;
      continue;
    }
    if (c == '/' && p[1] == '*') {
      const char *end = strstr(p + 2, "*/");
      p = end ? end + 2 : p + strlen(p);
      continue;
    }
    if (isspace(c)) {
      p++;
      continue;
    }
    if (isalpha(c) || c == '_') {
      if (keyword_at(p, "select") || keyword_at(p, "values") ||
          ((after_paren || at_start) && keyword_at(p, "from")))
        blocks++;
      while (isalnum((unsigned char)*p) || *p == '_' || *p == '$') p++;
      after_paren = at_start = 0;
      continue;
    }
    after_paren = c == '(';
    at_start = 0;
    p++;
  }
  if (blocks > engine->max_query_selects)
    return bf_error_set(err, BF_EINVAL,
                        "the query has more than %d SELECT blocks (CTEs, subqueries, UNION "
                        "branches), the server's limit (--max-query-selects)",
                        engine->max_query_selects);
  return BF_OK;
}

/* ---- tables this server could not load ---------------------------------------- */

int bf_engine_set_table_unavailable(bf_engine_t *engine, const char *fqn, const char *reason) {
  pthread_mutex_lock(&engine->unavailable_mu);
  size_t i = 0;
  while (i < engine->n_unavailable && strcmp(engine->unavailable[i].fqn, fqn) != 0) i++;
  int status = BF_OK;
  if (reason == NULL) {
    if (i < engine->n_unavailable) {
      free(engine->unavailable[i].fqn);
      free(engine->unavailable[i].reason);
      engine->unavailable[i] = engine->unavailable[--engine->n_unavailable];
    }
  } else {
    char *reason_copy = strdup(reason);
    if (reason_copy == NULL) {
      status = BF_ENOMEM;
    } else if (i < engine->n_unavailable) {
      free(engine->unavailable[i].reason);
      engine->unavailable[i].reason = reason_copy;
    } else {
      bf_unavailable_table_t *grown =
          realloc(engine->unavailable, (engine->n_unavailable + 1) * sizeof *grown);
      char *fqn_copy = strdup(fqn);
      if (grown == NULL || fqn_copy == NULL) {
        if (grown) engine->unavailable = grown;
        free(fqn_copy);
        free(reason_copy);
        status = BF_ENOMEM;
      } else {
        engine->unavailable = grown;
        engine->unavailable[engine->n_unavailable++] =
            (bf_unavailable_table_t){.fqn = fqn_copy, .reason = reason_copy};
      }
    }
  }
  pthread_mutex_unlock(&engine->unavailable_mu);
  return status;
}

static int check_available(guard_t *g, const char *catalog, const char *schema, const char *table) {
  char fqn[1024];
  snprintf(fqn, sizeof fqn, "%s.%s.%s", catalog, schema, table);
  int status = BF_OK;
  pthread_mutex_lock(&g->engine->unavailable_mu);
  for (size_t i = 0; i < g->engine->n_unavailable; i++)
    if (strcasecmp(g->engine->unavailable[i].fqn, fqn) == 0)
      status = bf_error_set(g->err, BF_EUNAVAILABLE, "table %s is not available on this server: %s",
                            g->engine->unavailable[i].fqn, g->engine->unavailable[i].reason);
  pthread_mutex_unlock(&g->engine->unavailable_mu);
  return status;
}

/* ---- the tree walk ------------------------------------------------------------- */

/* The value of a numeric literal argument, or 0 when it is not one. DuckDB 1.4
 * serializes constants as {"value": {"type": {"id": ...}, "value": ...}}, later
 * versions as {"literal": {"kind": ..., "text": ...}}; both are read. */
static double numeric_literal(json_t *argument) {
  json_t *expr = json_object_get(argument, "expression");
  if (expr == NULL) expr = argument;
  const char *cls = json_string_value(json_object_get(expr, "class"));
  if (!cls || strcmp(cls, "CONSTANT") != 0) return 0;
  json_t *literal = json_object_get(expr, "literal");
  if (literal) {
    const char *kind = json_string_value(json_object_get(literal, "kind"));
    const char *text = json_string_value(json_object_get(literal, "text"));
    if (!kind || !text || strcmp(kind, "STRING") == 0) return 0;
    return strtod(text, NULL);
  }
  json_t *value = json_object_get(expr, "value");
  const char *id = json_string_value(json_object_get(json_object_get(value, "type"), "id"));
  json_t *number = json_object_get(value, "value");
  if (id == NULL || json_is_true(json_object_get(value, "is_null"))) return 0;
  if (json_is_number(number)) return json_number_value(number);
  if (json_is_object(number) && (strstr(id, "INT") || strcmp(id, "DECIMAL") == 0))
    return 1e30; /* HUGEINT and wide decimals: far beyond any bound */
  return 0;
}

static int check_function(guard_t *g, json_t *node) {
  const char *name = json_string_value(json_object_get(node, "function_name"));
  BF_RETURN_NOT_OK(bf__engine_compat_check_function(name, g->err));
  if (IN(name, DENIED_FUNCTIONS))
    return bf_error_set(g->err, BF_EPERM, "%s() is not available: queries cannot read the server's "
                        "settings", name);
  if (!IN(name, SIZING_FUNCTIONS) || g->engine->max_value_bytes <= 0) return BF_OK;
  json_t *arguments = json_object_get(node, "children");
  if (arguments == NULL) arguments = json_object_get(node, "arguments");
  size_t i;
  json_t *argument;
  json_array_foreach(arguments, i, argument) {
    double count = numeric_literal(argument);
    if (count > (double)g->engine->max_value_bytes || -count > (double)g->engine->max_value_bytes)
      return bf_error_set(g->err, BF_EINVAL,
                          "%s(): a count of %.0f would build a value larger than the server's "
                          "limit of %lld bytes per value (--max-value-bytes)",
                          name, count, (long long)g->engine->max_value_bytes);
  }
  return BF_OK;
}

static int check_table_ref(guard_t *g, json_t *node) {
  const char *table = json_string_value(json_object_get(node, "table_name"));
  const char *schema = json_string_value(json_object_get(node, "schema_name"));
  const char *catalog = json_string_value(json_object_get(node, "catalog_name"));
  int has_schema = schema && schema[0], has_catalog = catalog && catalog[0];
  if (table && !has_schema && !has_catalog &&
      (strchr(table, '/') || strchr(table, '.') || strchr(table, '\\')))
    return bf_error_set(g->err, BF_EPERM,
                        "reading files directly ('%s') is not allowed: query tables by "
                        "catalog.schema_name.table",
                        table);
  if ((has_schema && IN(schema, HIDDEN_SCHEMAS)) || (has_catalog && IN(catalog, HIDDEN_SCHEMAS)) ||
      (table && !has_schema && !has_catalog &&
       (strncasecmp(table, "pg_", 3) == 0 || strncasecmp(table, "duckdb_", 7) == 0)))
    return bf_error_set(g->err, BF_EPERM,
                        "system catalogs are not available to queries ('%s%s%s'): list tables "
                        "with list_datasets() and their columns with DESCRIBE "
                        "catalog.schema_name.table",
                        has_schema ? schema : "", has_schema ? "." : "", table ? table : "?");
  if (table && has_schema && has_catalog) {
    if (g->check_table) BF_RETURN_NOT_OK(g->check_table(g->check_ctx, catalog, schema, table, g->err));
    return check_available(g, catalog, schema, table);
  }
  /* Two parts may name catalog.table in the catalog's default schema. */
  if (table && has_schema && g->check_table)
    return g->check_table(g->check_ctx, schema, "main", table, g->err);
  return BF_OK;
}

static int check_node(guard_t *g, json_t *node, int depth) {
  if (depth > g->engine->max_query_depth)
    return bf_error_set(g->err, BF_EINVAL,
                        "the query nests deeper than the server allows (--max-query-depth %d)",
                        g->engine->max_query_depth);
  if (json_is_array(node)) {
    size_t i;
    json_t *item;
    json_array_foreach(node, i, item) BF_RETURN_NOT_OK(check_node(g, item, depth + 1));
    return BF_OK;
  }
  if (!json_is_object(node)) return BF_OK;
  const char *type = json_string_value(json_object_get(node, "type"));
  if (type && strcmp(type, "SELECT_NODE") == 0 && ++g->selects > g->engine->max_query_selects)
    return bf_error_set(g->err, BF_EINVAL,
                        "the query has more than %d SELECT blocks (CTEs, subqueries, UNION "
                        "branches), the server's limit (--max-query-selects)",
                        g->engine->max_query_selects);
  if (type && strcmp(type, "TABLE_FUNCTION") == 0) {
    const char *name =
        json_string_value(json_object_get(json_object_get(node, "function"), "function_name"));
    if (!IN(name, ALLOWED_TABLE_FUNCTIONS))
      return bf_error_set(g->err, BF_EPERM,
                          "table function %s() is not allowed: query tables by "
                          "catalog.schema_name.table",
                          name ? name : "?");
  } else if (type && strcmp(type, "BASE_TABLE") == 0) {
    BF_RETURN_NOT_OK(check_table_ref(g, node));
  } else if (type && strcmp(type, "SHOW_REF") == 0) {
    const char *name = json_string_value(json_object_get(node, "table_name"));
    if (name && strcmp(name, "__show_tables_expanded") == 0)
      return bf_error_set(g->err, BF_EPERM,
                          "SHOW ALL TABLES is not available: list tables with list_datasets()");
  } else if (type && strcmp(type, "FUNCTION") == 0) {
    BF_RETURN_NOT_OK(check_function(g, node));
  }
  const char *key;
  json_t *value;
  json_object_foreach(node, key, value) BF_RETURN_NOT_OK(check_node(g, value, depth + 1));
  return BF_OK;
}

/* The statement's syntax tree as JSON text (malloc'd): from the parse cache, or
 * from DuckDB's parser (json_serialize_sql), then kept. */
static int syntax_tree(bf_engine_t *engine, duckdb_connection conn, const char *sql, char **out,
                       bf_error_t *err) {
  *out = bf__engine_parse_cache_get(engine, sql);
  if (*out) return BF_OK;
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
    char *text = duckdb_value_varchar(&result, 0, 0); /* NULL: no tree (refused below) */
    *out = strdup(text ? text : "");
    if (*out == NULL) status = bf_error_set(err, BF_ENOMEM, "query guard: out of memory");
    else if (text) bf__engine_parse_cache_put(engine, sql, *out);
    duckdb_free(text);
  }
  duckdb_destroy_result(&result);
  duckdb_destroy_prepare(&stmt);
  return status;
}

int bf__engine_guard_query(bf_engine_t *engine, duckdb_connection conn, const char *sql,
                           bf_engine_table_check_fn check_table, void *check_ctx,
                           int *not_a_select, bf__count_target_t *count, bf_error_t *err) {
  *not_a_select = 0;
  memset(count, 0, sizeof *count);
  char *text = NULL;
  BF_RETURN_NOT_OK(syntax_tree(engine, conn, sql, &text, err));
  /* Deep trees are bounded by the walk below, not by the JSON reader. */
  json_t *tree = json_loads(text, JSON_DECODE_INT_AS_REAL, NULL); /* positions overflow int64 */
  free(text);
  guard_t g = {.engine = engine, .check_table = check_table, .check_ctx = check_ctx, .err = err};
  int status = BF_OK;
  if (tree == NULL) {
    status = bf_error_set(err, BF_EINVAL,
                          "the query is too deeply nested to check (--max-query-depth %d)",
                          engine->max_query_depth);
  } else if (json_is_true(json_object_get(tree, "error"))) {
    /* Not a plain SELECT tree: another statement type, or PRAGMA (SELECT-typed). */
    *not_a_select = 1;
    status = bf_error_set(err, BF_EPERM,
                          "queries are read-only: only a single SELECT-type statement (SELECT, "
                          "WITH, VALUES, DESCRIBE, SUMMARIZE, SHOW) is allowed, not writes, "
                          "PRAGMA or other statements");
  } else {
    status = check_node(&g, json_object_get(tree, "statements"), 0);
    if (status == BF_OK) bf__engine_count_shape(tree, count);
  }
  json_decref(tree);
  return status;
}
