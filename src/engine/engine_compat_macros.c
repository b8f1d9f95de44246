/* The DataFusion functions DuckDB lacks (or names differently), as DuckDB macros in
 * the compatibility schema. Each entry is the text after "CREATE MACRO schema.";
 * overloads by argument count are listed in one entry. A macro that shadows a
 * built-in (to_timestamp, encode, ...) keeps the built-in's result for every call
 * the built-in accepted and only adds DataFusion's forms; the built-in is reached
 * as system.main.<name>. make_array / make_list and the aggregates DataFusion names
 * differently are renamed by the rewrite (engine_compat_rewrite.c). Semantics follow DataFusion's function reference; the
 * differences that remain are listed in docs/sql.md. */
#include <stddef.h>

#include "engine/engine_compat.h"

#define S BF_COMPAT_SCHEMA "."
/* A numeric argument (DataFusion reads numbers as epoch values where DuckDB
 * casts strings). */
#define IS_NUM(x)                                                                             \
  "(typeof(" x ") IN ('TINYINT','SMALLINT','INTEGER','BIGINT','HUGEINT','UTINYINT',"         \
  "'USMALLINT','UINTEGER','UBIGINT','UHUGEINT','FLOAT','DOUBLE') OR typeof(" x ") LIKE 'DECIMAL%')"
/* A timestamp from DataFusion's to_timestamp input: a string in RFC 3339 or ISO
 * form (offset honoured, none = UTC), a date or timestamp. */
#define TS_OF(x) "(" x ")::VARCHAR::TIMESTAMPTZ"

const char *const bf__compat_macros[] = {
    /* ---- helpers ---- */
    "__bytes(x) AS CASE WHEN typeof(x) = 'BLOB' THEN x::BLOB ELSE system.main.encode(x::VARCHAR) END",
    /* capture groups of a pattern: '(' not escaped, not in a class, not '(?:' */
    "__re_groups(r) AS len(regexp_extract_all(regexp_replace(regexp_replace(r, '\\\\.', '', 'g'), "
    "'\\[[^\\]]*\\]', '', 'g'), '\\((\\?P?<[A-Za-z_]|[^?])'))",
    "__regexp_match(s, r) AS CASE WHEN s IS NULL OR r IS NULL OR NOT regexp_matches(s, r) THEN NULL "
    "ELSE CASE " S "__re_groups(r) WHEN 0 THEN [regexp_extract(s, r, 0)] "
    "WHEN 1 THEN [regexp_extract(s, r, 1)] "
    "WHEN 2 THEN [regexp_extract(s, r, 1), regexp_extract(s, r, 2)] "
    "WHEN 3 THEN [regexp_extract(s, r, 1), regexp_extract(s, r, 2), regexp_extract(s, r, 3)] "
    "WHEN 4 THEN [regexp_extract(s, r, 1), regexp_extract(s, r, 2), regexp_extract(s, r, 3), regexp_extract(s, r, 4)] "
    "WHEN 5 THEN [regexp_extract(s, r, 1), regexp_extract(s, r, 2), regexp_extract(s, r, 3), regexp_extract(s, r, 4), regexp_extract(s, r, 5)] "
    "WHEN 6 THEN [regexp_extract(s, r, 1), regexp_extract(s, r, 2), regexp_extract(s, r, 3), regexp_extract(s, r, 4), regexp_extract(s, r, 5), regexp_extract(s, r, 6)] "
    "WHEN 7 THEN [regexp_extract(s, r, 1), regexp_extract(s, r, 2), regexp_extract(s, r, 3), regexp_extract(s, r, 4), regexp_extract(s, r, 5), regexp_extract(s, r, 6), regexp_extract(s, r, 7)] "
    "WHEN 8 THEN [regexp_extract(s, r, 1), regexp_extract(s, r, 2), regexp_extract(s, r, 3), regexp_extract(s, r, 4), regexp_extract(s, r, 5), regexp_extract(s, r, 6), regexp_extract(s, r, 7), regexp_extract(s, r, 8)] "
    "WHEN 9 THEN [regexp_extract(s, r, 1), regexp_extract(s, r, 2), regexp_extract(s, r, 3), regexp_extract(s, r, 4), regexp_extract(s, r, 5), regexp_extract(s, r, 6), regexp_extract(s, r, 7), regexp_extract(s, r, 8), regexp_extract(s, r, 9)] "
    "ELSE error('regexp_match(): patterns with more than 9 capture groups are not supported; "
    "use regexp_extract(str, pattern, group) per group') END END",
    "__regexp_instr(s, r) AS CASE WHEN s IS NULL OR r IS NULL THEN NULL WHEN regexp_matches(s, r) "
    "THEN length(regexp_split_to_array(s, r)[1]) + 1 ELSE 0 END",

    /* ---- strings ---- */
    "btrim(s) AS trim(s), (s, c) AS trim(s, c)",
    "initcap(s) AS CASE WHEN s IS NULL THEN NULL ELSE coalesce(array_to_string(list_transform("
    "range(1, length(s) + 1), lambda i: CASE WHEN i = 1 OR NOT regexp_matches(substr(s, i - 1, 1), "
    "'^[\\pL\\pN]$') THEN upper(substr(s, i, 1)) ELSE lower(substr(s, i, 1)) END), ''), '') END",
    "lpad(s, n) AS system.main.lpad(s, n, ' '), (s, n, c) AS system.main.lpad(s, n, c)",
    "rpad(s, n) AS system.main.rpad(s, n, ' '), (s, n, c) AS system.main.rpad(s, n, c)",
    "octet_length(x) AS CASE WHEN typeof(x) = 'BIT' THEN system.main.octet_length(x::VARCHAR::BIT) "
    "ELSE system.main.octet_length(" S "__bytes(x)) END",
    "overlay(s, r, p) AS substr(s, 1, p - 1) || r || substr(s, p + length(r)), "
    "(s, r, p, n) AS substr(s, 1, p - 1) || r || substr(s, p + n)",
    "find_in_set(s, l) AS CASE WHEN s IS NULL OR l IS NULL THEN NULL "
    "ELSE coalesce(list_position(string_split(l, ','), s), 0)::INTEGER END",
    "substr_index(s, d, n) AS CASE WHEN s IS NULL OR d IS NULL OR n IS NULL THEN NULL "
    "WHEN n > 0 THEN array_to_string(list_slice(string_split(s, d), 1, n), d) "
    "WHEN n < 0 THEN array_to_string(list_slice(string_split(s, d), n, -1), d) ELSE '' END",
    "substring_index(s, d, n) AS " S "substr_index(s, d, n)",
    "to_char(x, f) AS strftime(x, replace(replace(replace(replace(f, '%.3f', '.%g'), "
    "'%.9f', '.%n'), '%f', '%n'), '%.6f', '.%f'))",
    "date_format(x, f) AS " S "to_char(x, f)",
    "string_to_list(s, d) AS CASE WHEN s = '' THEN []::VARCHAR[] ELSE string_split(s, d) END, "
    "(s, d, n) AS CASE WHEN s = '' THEN []::VARCHAR[] ELSE list_transform(string_split(s, d), lambda x: nullif(x, n)) END",
    "string_to_array(s, d) AS system.main.string_to_array(s, d), "
    "(s, d, n) AS list_transform(string_split(s, d), lambda x: nullif(x, n))",
    "encode(x) AS system.main.encode(x), "
    "(x, f) AS CASE lower(f) WHEN 'hex' THEN lower(hex(" S "__bytes(x))) "
    "WHEN 'base64' THEN rtrim(to_base64(" S "__bytes(x)), '=') "
    "ELSE error('encode(): format ''' || f || ''' is not supported; use ''hex'' or ''base64''') END",
    "decode(x) AS system.main.decode(x), "
    "(x, f) AS CASE lower(f) WHEN 'hex' THEN unhex(x::VARCHAR) "
    "WHEN 'base64' THEN from_base64(x::VARCHAR || repeat('=', (4 - length(x::VARCHAR) % 4) % 4)) "
    "ELSE error('decode(): format ''' || f || ''' is not supported; use ''hex'' or ''base64''') END",

    /* ---- regular expressions (DataFusion flags become an inline (?flags) group) ---- */
    "regexp_like(s, r) AS regexp_matches(s, r), (s, r, f) AS regexp_matches(s, '(?' || f || ')' || r)",
    "regexp_count(s, r) AS len(regexp_extract_all(s, r)), "
    "(s, r, st) AS len(regexp_extract_all(substr(s, st), r)), "
    "(s, r, st, f) AS len(regexp_extract_all(substr(s, st), '(?' || f || ')' || r))",
    "regexp_match(s, r) AS " S "__regexp_match(s, r), "
    "(s, r, f) AS " S "__regexp_match(s, '(?' || f || ')' || r)",
    "regexp_instr(s, r) AS " S "__regexp_instr(s, r), "
    "(s, r, st) AS CASE WHEN " S "__regexp_instr(substr(s, st), r) > 0 "
    "THEN " S "__regexp_instr(substr(s, st), r) + st - 1 ELSE " S "__regexp_instr(substr(s, st), r) END",

    /* ---- math and conditional ---- */
    "iszero(x) AS x = 0",
    "nanvl(x, y) AS CASE WHEN isnan(x) THEN y ELSE x END",
    "signum(x) AS sign(x)::DOUBLE",
    "rand() AS random()",
    "nvl(a, b) AS coalesce(a, b)",
    "nvl2(a, b, c) AS CASE WHEN a IS NOT NULL THEN b ELSE c END",

    /* ---- aggregates ---- */
    "approx_distinct(x) AS approx_count_distinct(x)",
    "approx_median(x) AS approx_quantile(x::DOUBLE, 0.5)",
    "approx_percentile_cont(x, p) AS approx_quantile(x::DOUBLE, p), (x, p, c) AS approx_quantile(x::DOUBLE, p)",
    "percentile_cont(x, p) AS quantile_cont(x, p)",
    "covar(x, y) AS covar_samp(x, y)",
    "var(x) AS var_samp(x)",
    "var_sample(x) AS var_samp(x)",
    "var_population(x) AS var_pop(x)",

    /* ---- time and date (session time zone: UTC) ---- */
    "to_timestamp(x) AS CASE WHEN " IS_NUM("x") " THEN system.main.to_timestamp(TRY_CAST(x AS DOUBLE)) "
    "ELSE " TS_OF("x") " END, "
    "(x, f) AS strptime(x, f)::TIMESTAMPTZ, (x, f, g) AS strptime(x, [f, g])::TIMESTAMPTZ, "
    "(x, f, g, h) AS strptime(x, [f, g, h])::TIMESTAMPTZ",
    "to_timestamp_seconds(x) AS CASE WHEN " IS_NUM("x") " THEN make_timestamp(TRY_CAST(x AS BIGINT) * 1000000) "
    "ELSE date_trunc('second', " TS_OF("x") "::TIMESTAMP) END::TIMESTAMP_S, (x, f) AS strptime(x, f)::TIMESTAMP_S",
    "to_timestamp_millis(x) AS CASE WHEN " IS_NUM("x") " THEN make_timestamp(TRY_CAST(x AS BIGINT) * 1000) "
    "ELSE date_trunc('millisecond', " TS_OF("x") "::TIMESTAMP) END::TIMESTAMP_MS, (x, f) AS strptime(x, f)::TIMESTAMP_MS",
    "to_timestamp_micros(x) AS CASE WHEN " IS_NUM("x") " THEN make_timestamp(TRY_CAST(x AS BIGINT)) "
    "ELSE " TS_OF("x") "::TIMESTAMP END, (x, f) AS strptime(x, f)",
    "to_timestamp_nanos(x) AS CASE WHEN " IS_NUM("x") " THEN make_timestamp_ns(TRY_CAST(x AS BIGINT)) "
    "ELSE " TS_OF("x") "::TIMESTAMP::TIMESTAMP_NS END, (x, f) AS strptime(x, f)::TIMESTAMP_NS",
    "from_unixtime(x) AS make_timestamp(x::BIGINT * 1000000)::TIMESTAMP_S, "
    "(x, tz) AS system.main.to_timestamp(x::BIGINT::DOUBLE)",
    "to_unixtime(x) AS CASE WHEN " IS_NUM("x") " THEN trunc(TRY_CAST(x AS DOUBLE))::BIGINT "
    "ELSE floor(epoch(" TS_OF("x") "))::BIGINT END, (x, f) AS floor(epoch(strptime(x, f)))::BIGINT",
    "to_date(x) AS CASE WHEN " IS_NUM("x") " THEN (DATE '1970-01-01' + TRY_CAST(x AS INTEGER)) "
    "ELSE x::VARCHAR::TIMESTAMP::DATE END, (x, f) AS strptime(x, f)::DATE, "
    "(x, f, g) AS strptime(x, [f, g])::DATE",
    "to_time(x) AS CASE WHEN typeof(x) = 'VARCHAR' THEN x::VARCHAR::TIME "
    "ELSE x::VARCHAR::TIMESTAMP::TIME END, (x, f) AS strptime(x, f)::TIME",
    "to_local_time(x) AS x::TIMESTAMP",
    "current_time() AS current_localtime()",
    "current_timestamp() AS now()",
    "date_bin(s, x) AS time_bucket(s, x::TIMESTAMPTZ, TIMESTAMPTZ '1970-01-01 00:00:00+00'), "
    "(s, x, o) AS time_bucket(s, x::TIMESTAMPTZ, o::TIMESTAMPTZ)",

    /* ---- arrays (1-based, as in DataFusion) ---- */
    "array_any_value(a) AS list_any_value(a)",
    "array_avg(a) AS list_avg(a)",
    "array_compact(a) AS list_filter(a, lambda x: x IS NOT NULL)",
    "list_compact(a) AS " S "array_compact(a)",
    "array_dims(a) AS CASE WHEN a IS NULL OR len(a) = 0 THEN NULL ELSE [len(a)::UBIGINT] END",
    "list_dims(a) AS " S "array_dims(a)",
    "array_ndims(a) AS CASE WHEN a IS NULL THEN NULL "
    "ELSE ((length(typeof(a)) - length(replace(typeof(a), '[]', ''))) // 2)::UBIGINT END",
    "list_ndims(a) AS " S "array_ndims(a)",
    "array_element(a, i) AS list_extract(a, i)",
    "array_empty(a) AS len(a) = 0",
    "list_empty(a) AS len(a) = 0",
    "empty(a) AS len(a) = 0",
    "array_except(a, b) AS CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE list_filter(a, "
    "lambda x, i: NOT coalesce(list_contains(b, x), false) AND list_position(a, x) = i) END",
    "list_except(a, b) AS " S "array_except(a, b)",
    "array_to_string(a, d) AS system.main.array_to_string(list_transform(a, lambda x: x), d), "
    "(a, d, n) AS system.main.array_to_string(list_transform(a, lambda x: coalesce(x::VARCHAR, n)), d)",
    /* DataFusion joins an empty array to '' (DuckDB's array_to_string: NULL) */
    "array_join(a, d) AS CASE WHEN a IS NULL THEN NULL ELSE coalesce(" S "array_to_string(a, d), '') END, "
    "(a, d, n) AS CASE WHEN a IS NULL THEN NULL ELSE coalesce(" S "array_to_string(a, d, n), '') END",
    "list_join(a, d) AS " S "array_join(a, d), (a, d, n) AS " S "array_join(a, d, n)",
    "list_to_string(a, d) AS " S "array_join(a, d), (a, d, n) AS " S "array_join(a, d, n)",
    "array_max(a) AS list_max(a)",
    "array_min(a) AS list_min(a)",
    "array_sum(a) AS list_sum(a)",
    "array_product(a) AS list_product(a)",
    "array_normalize(a) AS list_transform(a, lambda x: x / sqrt(list_sum(list_transform(a, lambda y: y * y))))",
    "list_normalize(a) AS " S "array_normalize(a)",
    "array_scale(a, k) AS list_transform(a, lambda x: x * k)",
    "list_scale(a, k) AS " S "array_scale(a, k)",
    "array_add(a, b) AS CASE WHEN len(a) <> len(b) THEN error('array_add(): the arrays differ in length') "
    "ELSE list_transform(a, lambda x, i: x::DOUBLE + b[i]::DOUBLE) END",
    "list_add(a, b) AS " S "array_add(a, b)",
    "array_subtract(a, b) AS CASE WHEN len(a) <> len(b) THEN error('array_subtract(): the arrays differ in length') "
    "ELSE list_transform(a, lambda x, i: x::DOUBLE - b[i]::DOUBLE) END",
    "list_subtract(a, b) AS " S "array_subtract(a, b)",
    "array_distance(a, b) AS CASE WHEN len(a) <> len(b) THEN error('array_distance(): the arrays differ in length') "
    "ELSE sqrt(list_sum(list_transform(a::DOUBLE[], lambda x, i: (x - b[i]::DOUBLE) ^ 2))) END",
    "list_distance(a, b) AS " S "array_distance(a, b)",
    "cosine_distance(a, b) AS list_cosine_distance(a::DOUBLE[], b::DOUBLE[])",
    "inner_product(a, b) AS list_inner_product(a::DOUBLE[], b::DOUBLE[])",
    "dot_product(a, b) AS list_inner_product(a::DOUBLE[], b::DOUBLE[])",
    "array_positions(a, x) AS list_filter(list_transform(a, lambda y, i: CASE WHEN y = x THEN i::UBIGINT END), "
    "lambda z: z IS NOT NULL)",
    "list_positions(a, x) AS " S "array_positions(a, x)",
    "array_remove(a, x) AS list_filter(a, lambda y, i: NOT coalesce(y = x AND i = list_position(a, x), false))",
    "list_remove(a, x) AS " S "array_remove(a, x)",
    "array_remove_all(a, x) AS list_filter(a, lambda y: NOT coalesce(y = x, false))",
    "list_remove_all(a, x) AS " S "array_remove_all(a, x)",
    "array_remove_n(a, x, n) AS list_filter(a, lambda y, i: NOT coalesce(y = x AND "
    "len(list_filter(a[1:i], lambda z: z = x)) <= n, false))",
    "list_remove_n(a, x, n) AS " S "array_remove_n(a, x, n)",
    "array_replace(a, f, t) AS list_transform(a, lambda y, i: CASE WHEN y = f AND i = list_position(a, f) "
    "THEN t ELSE y END)",
    "list_replace(a, f, t) AS " S "array_replace(a, f, t)",
    "array_replace_all(a, f, t) AS list_transform(a, lambda y: CASE WHEN y = f THEN t ELSE y END)",
    "list_replace_all(a, f, t) AS " S "array_replace_all(a, f, t)",
    "array_replace_n(a, f, t, n) AS list_transform(a, lambda y, i: CASE WHEN y = f AND "
    "len(list_filter(a[1:i], lambda z: z = f)) <= n THEN t ELSE y END)",
    "list_replace_n(a, f, t, n) AS " S "array_replace_n(a, f, t, n)",
    "array_repeat(e, n) AS list_transform(range(greatest(n, 0)), lambda i: e)",
    "list_repeat(e, n) AS " S "array_repeat(e, n)",
    "array_union(a, b) AS list_filter(list_concat(a, b), lambda x, i: list_position(list_concat(a, b), x) = i)",
    "list_union(a, b) AS " S "array_union(a, b)",
    "arrays_overlap(a, b) AS list_has_any(a, b)",
    "arrays_zip(a, b) AS list_transform(range(1, greatest(len(a), len(b)) + 1), "
    "lambda i: struct_pack(\"1\" := a[i], \"2\" := b[i])), "
    "(a, b, c) AS list_transform(range(1, greatest(len(a), len(b), len(c)) + 1), "
    "lambda i: struct_pack(\"1\" := a[i], \"2\" := b[i], \"3\" := c[i]))",
    "list_pop_back(a) AS array_pop_back(a)",
    "list_pop_front(a) AS array_pop_front(a)",
    "list_push_back(a, x) AS list_append(a, x)",
    "list_push_front(x, a) AS list_prepend(x, a)",
    "list_length(a) AS len(a)::UBIGINT",

    /* ---- structs and types ---- */
    "get_field(s, a) AS struct_extract(s, a), (s, a, b) AS struct_extract(struct_extract(s, a), b), "
    "(s, a, b, c) AS struct_extract(struct_extract(struct_extract(s, a), b), c)",
    "arrow_typeof(x) AS CASE typeof(x) WHEN 'BIGINT' THEN 'Int64' WHEN 'INTEGER' THEN 'Int32' "
    "WHEN 'SMALLINT' THEN 'Int16' WHEN 'TINYINT' THEN 'Int8' WHEN 'UBIGINT' THEN 'UInt64' "
    "WHEN 'UINTEGER' THEN 'UInt32' WHEN 'USMALLINT' THEN 'UInt16' WHEN 'UTINYINT' THEN 'UInt8' "
    "WHEN 'DOUBLE' THEN 'Float64' WHEN 'FLOAT' THEN 'Float32' WHEN 'VARCHAR' THEN 'Utf8' "
    "WHEN 'BOOLEAN' THEN 'Boolean' WHEN 'DATE' THEN 'Date32' WHEN 'BLOB' THEN 'Binary' "
    "WHEN 'TIMESTAMP' THEN 'Timestamp(µs)' WHEN 'TIMESTAMP_S' THEN 'Timestamp(s)' "
    "WHEN 'TIMESTAMP_MS' THEN 'Timestamp(ms)' WHEN 'TIMESTAMP_NS' THEN 'Timestamp(ns)' "
    "WHEN 'TIMESTAMP WITH TIME ZONE' THEN 'Timestamp(µs, \"UTC\")' WHEN 'TIME' THEN 'Time64(µs)' "
    "WHEN 'INTERVAL' THEN 'Interval(MonthDayNano)' WHEN '\"NULL\"' THEN 'Null' ELSE typeof(x) END",

    /* ---- hashing (DataFusion's digest returns bytes) ---- */
    "digest(x, alg) AS CASE lower(alg) WHEN 'md5' THEN unhex(md5(" S "__bytes(x))) "
    "WHEN 'sha256' THEN unhex(sha256(" S "__bytes(x))) "
    "ELSE error('digest(): algorithm ''' || alg || ''' is not available here; use ''md5'' or ''sha256''') END",
    NULL,
};
