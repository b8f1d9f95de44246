/* DataFusion compatibility layer: installs the macros of engine_compat_macros.c in
 * the query database's default schema (before the sandbox locks the configuration),
 * refuses the DataFusion functions this engine does not offer with the equivalent
 * to use, and adds hints to errors caused by DataFusion spellings: a column named
 * with a DuckDB-only keyword, cardinality() of an array, ~*, map(k, v, ...). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/engine_compat.h"
#include "engine/engine_internal.h"

/* DataFusion functions refused, with what to write instead. */
static const struct {
  const char *name;
  const char *instead;
} REFUSED[] = {
    {"approx_percentile_cont_with_weight",
     "weighted percentiles are not available; use approx_percentile_cont(x, p) or quantile_cont(x, p) "
     "(unweighted)"},
    {"arrow_field", "Arrow field metadata is not kept; use arrow_typeof(x) or typeof(x)"},
    {"arrow_metadata", "Arrow field metadata is not kept; use arrow_typeof(x) or typeof(x)"},
    {"with_metadata", "Arrow field metadata is not kept; use the value itself"},
    {"arrow_cast", "write arrow_cast(x, '<Arrow type>') with a literal type name, or CAST(x AS <type>)"},
    {"arrow_try_cast", "write arrow_try_cast(x, '<Arrow type>') with a literal type name, or TRY_CAST(x AS <type>)"},
    {"try_cast_to_type", "use TRY_CAST(x AS <type>)"},
    {"input_file_name", "rows are not tied to files in queries; use the table's columns"},
    {"file_row_index", "rows are not tied to files in queries; use row_number() OVER (...)"},
    {"named_struct", "write the field names as string literals: named_struct('a', x, 'b', y)"},
    {"sha224", "use digest(x, 'sha256') (bytes) or sha256(x) (hex text)"},
    {"sha384", "use digest(x, 'sha256') (bytes) or sha256(x) (hex text)"},
    {"sha512", "use digest(x, 'sha256') (bytes) or sha256(x) (hex text)"},
};

int bf__engine_compat_check_function(const char *name, bf_error_t *err) {
  if (name == NULL) return BF_OK;
  for (size_t i = 0; i < sizeof REFUSED / sizeof *REFUSED; i++)
    if (strcasecmp(name, REFUSED[i].name) == 0)
      return bf_error_set(err, BF_EINVAL,
                          "the DataFusion function %s() is not available on this server: %s",
                          REFUSED[i].name, REFUSED[i].instead);
  return BF_OK;
}

int bf__engine_compat_install(duckdb_connection conn, bf_error_t *err) {
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  int status = BF_OK;
  for (size_t i = 0; status == BF_OK && bf__compat_macros[i]; i++) {
    status = bf__sql_append(&sql, "CREATE MACRO " BF_COMPAT_SCHEMA ".");
    if (status == BF_OK) status = bf__sql_append(&sql, bf__compat_macros[i]);
    if (status == BF_OK) status = bf__sql_append(&sql, ";\n");
  }
  const char *text = status == BF_OK ? bf__sql_cstr(&sql) : NULL;
  if (text == NULL)
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
  else
    status = bf__sql_exec(conn, text, err);
  bf_buffer_reset(&sql);
  if (status != BF_OK) bf_error_prefix(err, "installing the DataFusion compatibility layer");
  return status;
}

/* Words DuckDB does not take as a bare column name and DataFusion does (checked
 * with `SELECT w FROM (SELECT 1 AS "w")` on both; `at` is quoted by the rewrite). */
static const char *const KEYWORD_COLUMNS[] = {
    "lambda", "left", "right", "binary", "asof", "semi", "anti", "positional", "verbose", "freeze",
    "glob", "similar", "overlaps", "collation", "concurrently", "tablesample", "unpack", "qualify",
    "pivot", "unpivot", "summarize", "describe", "show", "placing", "variadic", "returning",
    "analyse", "analyze", "window", "join", "inner", "cross", "full", "natural", "outer", "is",
    "isnull", "notnull", "like", "ilike", "by", "authorization",
};

static const char *skip_blank(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

/* The word ends an expression position: what follows is a separator, an operator or a
 * clause keyword (so `SELECT left FROM` hints, `a LEFT JOIN b` does not). */
static int column_after(const char *p) {
  p = skip_blank(p);
  if (*p == '\0' || strchr(",)=<>+-*/%;|", *p)) return 1;
  static const char *const words[] = {"from", "as", "and", "or", "where", "group", "order", "limit"};
  for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
    size_t n = strlen(words[i]);
    if (strncasecmp(p, words[i], n) == 0 && !(isalnum((unsigned char)p[n]) || p[n] == '_')) return 1;
  }
  return 0;
}

static int column_before(const char *sql, const char *word) {
  const char *p = word;
  while (p > sql && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' || p[-1] == '\r')) p--;
  if (p == sql || strchr(",(.=<>+-*/", p[-1])) return 1;
  const char *end = p;
  while (p > sql && (isalnum((unsigned char)p[-1]) || p[-1] == '_')) p--;
  static const char *const words[] = {"select", "by", "where", "and", "or", "on", "having", "distinct"};
  for (size_t i = 0; i < sizeof words / sizeof *words; i++)
    if ((size_t)(end - p) == strlen(words[i]) && strncasecmp(p, words[i], (size_t)(end - p)) == 0) return 1;
  return 0;
}

/* DuckDB errors for DataFusion spellings that have a DuckDB equivalent. */
static const struct {
  const char *message;
  const char *hint;
} ERROR_HINTS[] = {
    {"Cardinality can only operate on MAPs",
     "DataFusion's cardinality(array) is array_length(array) here; cardinality() counts map entries"},
    {"name ~* does not exist", "write regexp_like(s, pattern, 'i') for DataFusion's ~* (case-insensitive match)"},
    {"name !~* does not exist", "write NOT regexp_like(s, pattern, 'i') for DataFusion's !~*"},
    {"argument types 'map(", "write map(make_array(k1, k2), make_array(v1, v2)) or MAP {k1: v1} for "
                              "DataFusion's map(k1, v1, k2, v2)"},
};

static void known_error_hint(bf_error_t *err) {
  for (size_t i = 0; i < sizeof ERROR_HINTS / sizeof *ERROR_HINTS; i++)
    if (strstr(err->message, ERROR_HINTS[i].message)) {
      char message[BF_ERROR_MESSAGE_MAX * 2];
      int w = snprintf(message, sizeof message, "%s (hint: %s)", err->message, ERROR_HINTS[i].hint);
      (void)w;
      bf_error_set(err, err->status, "%s", message);
      return;
    }
}

void bf__engine_compat_error_hint(const char *sql, bf_error_t *err) {
  if (err == NULL) return;
  if (strstr(err->message, "syntax error") == NULL) {
    known_error_hint(err);
    return;
  }
  char found[256] = "";
  size_t used = 0;
  for (const char *p = sql; *p;) {
    if (*p == '\'' || *p == '"') { /* literal or quoted identifier */
      char q = *p;
      for (p++; *p; p++)
        if (*p == q && *++p != q) break;
      continue;
    }
    if (!(isalpha((unsigned char)*p) || *p == '_')) {
      p++;
      continue;
    }
    const char *start = p;
    while (isalnum((unsigned char)*p) || *p == '_') p++;
    size_t n = (size_t)(p - start);
    if (!column_before(sql, start) || !column_after(p)) continue;
    for (size_t i = 0; i < sizeof KEYWORD_COLUMNS / sizeof *KEYWORD_COLUMNS; i++) {
      const char *kw = KEYWORD_COLUMNS[i];
      char quoted_kw[32];
      snprintf(quoted_kw, sizeof quoted_kw, "\"%s\"", kw);
      if (strlen(kw) != n || strncasecmp(start, kw, n) != 0 || strstr(found, quoted_kw)) continue;
      int w = snprintf(found + used, sizeof found - used, "%s\"%s\"", used ? ", " : "", kw);
      if (w > 0 && (size_t)w < sizeof found - used) used += (size_t)w;
    }
  }
  if (used == 0) return;
  char message[BF_ERROR_MESSAGE_MAX * 2];
  int w = snprintf(message, sizeof message,
                   "%s (hint: %s %s a keyword in this SQL dialect; write a column of that name in "
                   "double quotes, e.g. SELECT %s FROM ...)",
                   err->message, found, strchr(found, ',') ? "are each" : "is", found);
  (void)w;
  bf_error_set(err, err->status, "%s", message);
}
