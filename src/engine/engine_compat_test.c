/* Unit tests for the DataFusion-dialect text rewrite and the keyword hint
 * (engine_compat_rewrite.c, engine_compat.c). The results are checked end to end
 * against the datafusion package in python/tests/test_sql_dialect.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_compat.h"

static void expect(const char *sql, const char *want) {
  char *out = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf__engine_compat_rewrite(sql, &out, &err), BF_OK);
  if (want == NULL) {
    assert_null(out); /* nothing to rewrite: no copy */
  } else {
    assert_non_null(out);
    assert_string_equal(out, want);
  }
  free(out);
}

static void test_untouched_statements_are_not_copied(void **state) {
  (void)state;
  expect("SELECT 1", NULL);
  expect("", NULL);
  expect("SELECT 'struct(1 AS a)', \"named_struct\" FROM t -- at\n/* arrow_cast(x, 'Int64') */", NULL);
  expect("SELECT $$ at $$, $tag$struct(1)$tag$", NULL);
  expect("SELECT atx, _at, at_ FROM t", NULL);
}

static void test_structs(void **state) {
  (void)state;
  expect("SELECT struct(1 AS a, 'x' AS \"B\", 2)", "SELECT struct_pack(\"a\" := 1, \"B\" := 'x', \"c2\" := 2)");
  expect("SELECT struct(1 AS A)", "SELECT struct_pack(\"A\" := 1)"); /* as DataFusion: the alias as written */
  expect("SELECT named_struct('a', 1, 'it''s', struct(2 AS b))",
         "SELECT struct_pack(\"a\" := 1, \"it's\" := struct_pack(\"b\" := 2))");
  /* a STRUCT type after AS or :: stays a type */
  expect("SELECT CAST(x AS STRUCT(a INT)), y::STRUCT(b INT), struct(1)",
         "SELECT CAST(x AS STRUCT(a INT)), y::STRUCT(b INT), struct_pack(\"c0\" := 1)");
  /* names that are not literals, odd argument counts: left for the guard to refuse */
  expect("SELECT named_struct(n, 1)", "SELECT named_struct(n, 1)");
  expect("SELECT named_struct('a')", "SELECT named_struct('a')");
  expect("SELECT struct()", "SELECT struct()");
  expect("SELECT named_struct($$a$$, 1)", "SELECT named_struct($$a$$, 1)");
  char sql[1200], want[1200], name[1001];
  memset(name, 'n', 1000);
  name[1000] = '\0';
  snprintf(sql, sizeof sql, "SELECT struct(1 AS %s)", name); /* long names are kept whole */
  snprintf(want, sizeof want, "SELECT struct_pack(\"%s\" := 1)", name);
  expect(sql, want);
  expect("SELECT named_struct('', 1, 'a\"b', 2)", "SELECT struct_pack(\"\" := 1, \"a\"\"b\" := 2)");
}

static void test_casts_and_percentiles(void **state) {
  (void)state;
  expect("SELECT arrow_cast(x + 1, 'Int64'), arrow_try_cast(y, 'Decimal128(10, 2)')",
         "SELECT CAST(x + 1 AS BIGINT), TRY_CAST(y AS DECIMAL(10, 2))");
  expect("SELECT arrow_cast(x, 'Dictionary(Int32, Utf8)')", "SELECT arrow_cast(x, 'Dictionary(Int32, Utf8)')");
  expect("SELECT approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY c) FROM t",
         "SELECT approx_quantile(CAST(c AS DOUBLE), (0.95)) FROM t");
  expect("SELECT approx_percentile_cont(0.9, 100) WITHIN GROUP (ORDER BY c DESC NULLS LAST)",
         "SELECT approx_quantile(CAST(c AS DOUBLE), 1 - (0.9))");
  expect("SELECT approx_percentile_cont(c, 0.5, 100) FILTER (WHERE f)",
         "SELECT approx_quantile(CAST(c AS DOUBLE), 0.5) FILTER (WHERE f)");
  expect("SELECT approx_median(a + b), approx_distinct(DISTINCT x), var(x), percentile_cont(x, 0.5)",
         "SELECT approx_quantile(CAST(a + b AS DOUBLE), 0.5), approx_count_distinct(DISTINCT x), var_samp(x), "
         "quantile_cont(x, 0.5)");
  expect("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), var", "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), var");
}

static void test_value_aggregates_and_at(void **state) {
  (void)state;
  expect("SELECT first_value(x ORDER BY y), last_value(x) OVER (ORDER BY y), nth_value(x, 2 ORDER BY y)",
         "SELECT first(x ORDER BY y), last_value(x) OVER (ORDER BY y), (list(x ORDER BY y)[2])");
  expect("SELECT at, t.at, at AT TIME ZONE 'UTC' FROM t WHERE at > now()",
         "SELECT \"at\", t.\"at\", \"at\" AT TIME ZONE 'UTC' FROM t WHERE \"at\" > now()");
}

static void test_unbalanced_and_truncated_input(void **state) {
  (void)state;
  expect("SELECT struct(1 AS a", "SELECT struct(1 AS a");
  expect("SELECT named_struct('a', 1))) (", "SELECT struct_pack(\"a\" := 1))) (");
  expect("SELECT 'unterminated struct(", NULL);
  expect("SELECT at", "SELECT \"at\"");
  /* a long statement: linear work, a copy only because a trigger is present */
  size_t n = 1 << 20;
  char *big = malloc(n + 16);
  assert_non_null(big);
  memset(big, ' ', n);
  memcpy(big, "SELECT at", 9);
  big[n] = '\0';
  char *out = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf__engine_compat_rewrite(big, &out, &err), BF_OK);
  assert_non_null(out);
  assert_int_equal(strlen(out), n + 2);
  free(out);
  free(big);
}

static void test_deep_nesting_stops_rewriting(void **state) {
  (void)state;
  /* 100,000 nested struct( calls: the rewrite stops at its depth bound, no stack overflow */
  size_t levels = 100000, n = levels * 8 + levels + 16;
  char *sql = malloc(n);
  assert_non_null(sql);
  strcpy(sql, "SELECT ");
  char *p = sql + strlen(sql);
  for (size_t i = 0; i < levels; i++, p += 7) memcpy(p, "struct(", 7);
  *p++ = '1';
  for (size_t i = 0; i < levels; i++) *p++ = ')';
  *p = '\0';
  char *out = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf__engine_compat_rewrite(sql, &out, &err), BF_OK);
  assert_non_null(out);
  const char *head = "SELECT struct_pack(\"c0\" := struct_pack(";
  assert_int_equal(strncmp(out, head, strlen(head)), 0);
  assert_non_null(strstr(out, "struct(struct("));
  free(out);
  free(sql);
  expect("SELECT make_array(1, 2), make_list(), make_array(make_array(1))",
         "SELECT list_value(1, 2), list_value(), list_value(list_value(1))");
}

static void test_keyword_hint(void **state) {
  (void)state;
  bf_error_t err;
  bf_error_init(&err);
  bf_error_set(&err, BF_EINVAL, "Parser Error: syntax error at or near \"FROM\"");
  bf__engine_compat_error_hint("SELECT id, left, \"window\" FROM t", &err);
  assert_non_null(strstr(err.message, "hint: \"left\" is a keyword"));
  assert_null(strstr(err.message, "\"window\" is"));
  bf_error_set(&err, BF_EINVAL, "Parser Error: syntax error at or near \"WHERE\"");
  bf__engine_compat_error_hint("SELECT a FROM t LEFT JOIN u ON t.a = u.a WHERE", &err);
  assert_null(strstr(err.message, "hint"));
  bf_error_set(&err, BF_EQUERY, "Binder Error: column left not found");
  bf__engine_compat_error_hint("SELECT left FROM t", &err);
  assert_null(strstr(err.message, "hint")); /* keywords: only parser errors */
  bf_error_set(&err, BF_EQUERY, "Binder Error: Cardinality can only operate on MAPs");
  bf__engine_compat_error_hint("SELECT cardinality(tags) FROM t", &err);
  assert_non_null(strstr(err.message, "array_length(array)"));
}

static void test_refusals(void **state) {
  (void)state;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf__engine_compat_check_function("SHA512", &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "DataFusion function sha512()"));
  assert_non_null(strstr(err.message, "digest(x, 'sha256')"));
  assert_int_equal(bf__engine_compat_check_function("sha256", &err), BF_OK);
  assert_int_equal(bf__engine_compat_check_function(NULL, &err), BF_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_untouched_statements_are_not_copied),
      cmocka_unit_test(test_structs),
      cmocka_unit_test(test_casts_and_percentiles),
      cmocka_unit_test(test_value_aggregates_and_at),
      cmocka_unit_test(test_unbalanced_and_truncated_input),
      cmocka_unit_test(test_deep_nesting_stops_rewriting),
      cmocka_unit_test(test_keyword_hint),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
