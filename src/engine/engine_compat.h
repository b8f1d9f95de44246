/* DataFusion-dialect compatibility layer of the query database (issue 17).
 *
 * Three parts, each free for a query that does not use it:
 * - macros under DataFusion's function names in the default schema of the query
 *   database (memory.main), which the default search path puts before the built-in
 *   functions (DuckDB 1.4 cannot set search_path globally, so a schema of our own
 *   would not be found; engine_compat_macros.c, created before the sandbox locks);
 * - a text rewrite for the few DataFusion forms DuckDB cannot parse or type as a
 *   macro (struct(x AS a), named_struct('a', x), arrow_cast(x, 'Int64'),
 *   approx_percentile_cont(p) WITHIN GROUP (ORDER BY x), a column named `at`),
 *   done only when the text holds one of those words (engine_compat_rewrite.c);
 * - DataFusion functions this engine does not offer are refused by the query
 *   guard with the DataFusion name and what to use instead (engine_compat.c). */
#ifndef BIFROST_ENGINE_COMPAT_H
#define BIFROST_ENGINE_COMPAT_H

#include <duckdb.h>

#include "bifrost/error.h"
#include "bifrost/util.h"

#define BF_COMPAT_SCHEMA "memory.main"

/* The CREATE MACRO statements of the layer, NULL-terminated (engine_compat_macros.c). */
extern const char *const bf__compat_macros[];

/* Creates the macros on conn. Runs before `lock_configuration`. */
int bf__engine_compat_install(duckdb_connection conn, bf_error_t *err);

/* BF_OK, or BF_EINVAL naming the DataFusion function `name` and the equivalent to
 * use when the layer refuses it. */
int bf__engine_compat_check_function(const char *name, bf_error_t *err);

/* Rewrites the DataFusion-only syntax in sql. *out is NULL when nothing needed a
 * rewrite (the common case, no allocation), else a malloc'd statement. */
int bf__engine_compat_rewrite(const char *sql, char **out, bf_error_t *err);

/* Appends to err's message a hint when a parser error is likely caused by a column
 * named with a DuckDB keyword that DataFusion accepts unquoted, or when a DuckDB
 * error comes from a DataFusion spelling with a DuckDB equivalent (cardinality of
 * an array, ~*, map(k, v, ...)). */
void bf__engine_compat_error_hint(const char *sql, bf_error_t *err);

#endif
