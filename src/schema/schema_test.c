/* Unit tests for src/schema: Pydantic JSON Schema conversion, parse_schema strings,
 * the documented fingerprint, Arrow schema export and validation errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/schema.h"

/* PredictionRecord of the documented quickstart, exactly as pydantic 2 emits it. */
static const char *QUICKSTART_SCHEMA =
    "{\"properties\":{\"user_id\":{\"title\":\"User Id\",\"type\":\"string\"},\"model_name\":{"
    "\"title\":\"Model Name\",\"type\":\"string\"},\"prediction\":{\"title\":\"Prediction\","
    "\"type\":\"number\"},\"confidence\":{\"title\":\"Confidence\",\"type\":\"number\"},"
    "\"feature_1\":{\"title\":\"Feature 1\",\"type\":\"number\"},\"feature_2\":{\"title\":"
    "\"Feature 2\",\"type\":\"number\"},\"label\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":"
    "\"null\"}],\"default\":null,\"title\":\"Label\"},\"predicted_at\":{\"format\":\"date-time\","
    "\"title\":\"Predicted At\",\"type\":\"string\"}},\"required\":[\"user_id\",\"model_name\","
    "\"prediction\",\"confidence\",\"feature_1\",\"feature_2\",\"predicted_at\"],\"title\":"
    "\"PredictionRecord\",\"type\":\"object\"}";

static int parse(const char *json, bf_schema_t *out, bf_error_t *err) {
  bf_error_init(err);
  return bf_schema_from_json_schema(json, strlen(json), out, err);
}

static void test_quickstart_types_and_system_columns(void **state) {
  (void)state;
  bf_schema_t s;
  bf_error_t err;
  assert_int_equal(parse(QUICKSTART_SCHEMA, &s, &err), BF_OK);
  assert_int_equal(s.n_user_fields, 8);
  assert_int_equal(s.n_fields, 11);
  assert_string_equal(s.fields[0].name, "user_id");
  assert_int_equal(s.fields[0].type, BF_TYPE_UTF8VIEW);
  assert_false(s.fields[0].nullable);
  assert_int_equal(s.fields[6].type, BF_TYPE_UTF8VIEW);
  assert_true(s.fields[6].nullable); /* Optional[str] */
  assert_int_equal(s.fields[7].type, BF_TYPE_TIMESTAMP_US);
  assert_string_equal(s.fields[8].name, BF_SYSCOL_CREATED_AT);
  assert_string_equal(s.fields[9].name, BF_SYSCOL_PARTITION_DATE);
  assert_string_equal(s.fields[10].name, BF_SYSCOL_BATCH_ID);
  char *parsed = NULL;
  assert_int_equal(bf_schema_parse_json(&s, &parsed, &err), BF_OK);
  assert_non_null(strstr(parsed, "\"predicted_at\":{\"arrow_type\":\"Timestamp(Microsecond, "
                                 "Some(\\\"UTC\\\"))\",\"nullable\":false}"));
  assert_non_null(strstr(parsed, "\"label\":{\"arrow_type\":\"Utf8View\",\"nullable\":true}"));
  assert_non_null(strstr(parsed, "\"scouter_batch_id\":{\"arrow_type\":\"Utf8\",\"nullable\":false}"));
  free(parsed);
  bf_schema_reset(&s);
}

static void test_fingerprint_matches_spec_rule(void **state) {
  (void)state;
  /* Golden value computed independently in Python: sha256 of the '|'-joined sorted
   * entries "name:TYPE:nullable" for the quickstart model plus system columns,
   * first 32 hex chars (hashlib, not this code). */
  bf_schema_t s;
  bf_error_t err;
  assert_int_equal(parse(QUICKSTART_SCHEMA, &s, &err), BF_OK);
  char fp[33];
  assert_int_equal(bf_schema_fingerprint(&s, fp, &err), BF_OK);
  assert_string_equal(fp, "431fbe2e11499ac9a7be935cf9a8d2c7");
  bf_schema_reset(&s);
}

static void fingerprint_of(const char *json, char out[33]) {
  bf_schema_t s;
  bf_error_t err;
  assert_int_equal(parse(json, &s, &err), BF_OK);
  assert_int_equal(bf_schema_fingerprint(&s, out, &err), BF_OK);
  bf_schema_reset(&s);
}

static void test_fingerprint_order_independent_and_sensitive(void **state) {
  (void)state;
  char a[33], b[33], c[33], d[33], e[33];
  fingerprint_of("{\"properties\":{\"x\":{\"type\":\"integer\"},\"y\":{\"type\":\"string\"}},"
                 "\"required\":[\"x\",\"y\"]}", a);
  fingerprint_of("{\"properties\":{\"y\":{\"type\":\"string\"},\"x\":{\"type\":\"integer\"}},"
                 "\"required\":[\"y\",\"x\"]}", b);
  fingerprint_of("{\"properties\":{\"x\":{\"type\":\"number\"},\"y\":{\"type\":\"string\"}},"
                 "\"required\":[\"x\",\"y\"]}", c); /* retyped */
  fingerprint_of("{\"properties\":{\"x\":{\"type\":\"integer\"},\"y\":{\"type\":\"string\"}},"
                 "\"required\":[\"x\"]}", d); /* nullability */
  fingerprint_of("{\"properties\":{\"x\":{\"type\":\"integer\"}},\"required\":[\"x\"]}", e);
  assert_string_equal(a, b);
  assert_string_not_equal(a, c);
  assert_string_not_equal(a, d);
  assert_string_not_equal(a, e);
}

static void test_nested_list_struct_enum(void **state) {
  (void)state;
  const char *json =
      "{\"$defs\":{\"Addr\":{\"properties\":{\"city\":{\"type\":\"string\"},\"zip\":{\"anyOf\":[{"
      "\"type\":\"integer\"},{\"type\":\"null\"}]}},\"required\":[\"city\"],\"type\":\"object\"},"
      "\"Tier\":{\"enum\":[\"gold\",\"silver\"],\"type\":\"string\"}},\"properties\":{\"addr\":{"
      "\"$ref\":\"#/$defs/Addr\"},\"tags\":{\"items\":{\"items\":{\"type\":\"integer\"},\"type\":"
      "\"array\"},\"type\":\"array\"},\"tier\":{\"$ref\":\"#/$defs/Tier\"},\"day\":{\"format\":"
      "\"date\",\"type\":\"string\"}},\"required\":[\"addr\",\"tags\",\"tier\",\"day\"]}";
  bf_schema_t s;
  bf_error_t err;
  assert_int_equal(parse(json, &s, &err), BF_OK);
  char *type = NULL;
  assert_int_equal(bf_field_type_string(&s.fields[0], &type, &err), BF_OK);
  assert_string_equal(type, "Struct(city: Utf8View, zip: Int64)");
  free(type);
  assert_int_equal(bf_field_type_string(&s.fields[1], &type, &err), BF_OK);
  assert_string_equal(type, "List(List(Int64))");
  free(type);
  assert_int_equal(bf_field_type_string(&s.fields[2], &type, &err), BF_OK);
  assert_string_equal(type, "Dictionary(Int16, Utf8)");
  free(type);
  assert_int_equal(s.fields[3].type, BF_TYPE_DATE32);
  struct ArrowSchema arrow;
  assert_int_equal(bf_schema_to_arrow(&s, &arrow, &err), BF_OK);
  assert_string_equal(arrow.format, "+s");
  assert_string_equal(arrow.children[0]->format, "+s");
  assert_true(arrow.children[0]->children[1]->flags & ARROW_FLAG_NULLABLE);
  assert_string_equal(arrow.children[1]->children[0]->format, "+l");
  assert_string_equal(arrow.children[2]->format, "s");
  assert_string_equal(arrow.children[2]->dictionary->format, "u");
  assert_string_equal(arrow.children[4]->format, "tsu:UTC");
  arrow.release(&arrow);
  const char *ok_parts[] = {"tier", "day"};
  assert_int_equal(bf_schema_validate_partitions(&s, ok_parts, 2, &err), BF_OK);
  const char *list_part[] = {"tags"};
  assert_int_equal(bf_schema_validate_partitions(&s, list_part, 1, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "'tags'"));
  const char *missing[] = {"nope"};
  assert_int_equal(bf_schema_validate_partitions(&s, missing, 1, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "not a field"));
  bf_schema_reset(&s);
}

static void expect_error(const char *json, const char *needle) {
  bf_schema_t s;
  bf_error_t err;
  assert_int_equal(parse(json, &s, &err), BF_EINVAL);
  if (strstr(err.message, needle) == NULL) fail_msg("'%s' not in '%s'", needle, err.message);
}

static void test_rejections_name_the_field(void **state) {
  (void)state;
  expect_error("{\"properties\":{\"u\":{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}}}",
               "field 'u'");
  expect_error("{\"properties\":{\"d\":{\"additionalProperties\":true,\"type\":\"object\"}}}",
               "field 'd'");
  expect_error("{\"properties\":{\"t\":{\"prefixItems\":[{\"type\":\"integer\"}],\"type\":\"array\"}}}",
               "tuples");
  expect_error("{\"properties\":{\"e\":{\"format\":\"email\",\"type\":\"string\"}}}", "'email'");
  expect_error("{\"properties\":{\"scouter_batch_id\":{\"type\":\"string\"}}}", "reserved");
  expect_error("not json", "not valid JSON");
}

/* The types added for issue 19 (pydantic's JSON Schema, decimal constraints as
 * bifrost's generator adds them). */
static void test_more_types(void **state) {
  (void)state;
  const char *json =
      "{\"$defs\":{\"Color\":{\"enum\":[1,2,30],\"type\":\"integer\"}},\"properties\":{"
      "\"u\":{\"format\":\"uuid\",\"type\":\"string\"},"
      "\"d\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"string\"}],\"max_digits\":10,"
      "\"decimal_places\":2},"
      "\"od\":{\"anyOf\":[{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"string\"}],"
      "\"max_digits\":38,\"decimal_places\":0},{\"type\":\"null\"}]},"
      "\"b\":{\"format\":\"binary\",\"type\":\"string\"},"
      "\"t\":{\"format\":\"time\",\"type\":\"string\"},"
      "\"td\":{\"format\":\"duration\",\"type\":\"string\"},"
      "\"m\":{\"additionalProperties\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"null\"}]},"
      "\"type\":\"object\"},"
      "\"e\":{\"$ref\":\"#/$defs/Color\"},\"l\":{\"enum\":[1,2],\"type\":\"integer\"}},"
      "\"required\":[\"u\",\"d\",\"b\",\"t\",\"td\",\"m\",\"e\",\"l\"]}";
  bf_schema_t s;
  bf_error_t err;
  assert_int_equal(parse(json, &s, &err), BF_OK);
  assert_int_equal(s.fields[0].type, BF_TYPE_UTF8VIEW);
  assert_int_equal(s.fields[1].type, BF_TYPE_DECIMAL128);
  assert_int_equal(s.fields[1].precision, 10);
  assert_int_equal(s.fields[1].scale, 2);
  assert_false(s.fields[1].nullable);
  assert_int_equal(s.fields[2].type, BF_TYPE_DECIMAL128);
  assert_int_equal(s.fields[2].precision, 38);
  assert_true(s.fields[2].nullable);
  assert_int_equal(s.fields[3].type, BF_TYPE_BINARY);
  assert_int_equal(s.fields[4].type, BF_TYPE_TIME_US);
  assert_int_equal(s.fields[5].type, BF_TYPE_DURATION_US);
  assert_int_equal(s.fields[6].type, BF_TYPE_MAP);
  assert_true(s.fields[6].children[0].children[1].nullable);
  assert_false(s.fields[6].children[0].children[0].nullable);
  assert_int_equal(s.fields[7].type, BF_TYPE_INT64);
  assert_int_equal(s.fields[7].n_enum_values, 3); /* checked on insert, not fingerprinted */
  assert_string_equal(s.fields[7].enum_values[2], "30");
  assert_int_equal(s.fields[8].type, BF_TYPE_INT64);
  char *parsed = NULL;
  assert_int_equal(bf_schema_parse_json(&s, &parsed, &err), BF_OK);
  assert_non_null(strstr(parsed, "\"d\":{\"arrow_type\":\"Decimal128(10, 2)\""));
  assert_non_null(strstr(parsed, "\"m\":{\"arrow_type\":\"Map(Utf8View, Float64)\""));
  assert_non_null(strstr(parsed, "\"t\":{\"arrow_type\":\"Time64(Microsecond)\""));
  free(parsed);
  /* the Arrow schema: decimals, binary views, maps; time and timedelta are Int64
   * (the logical schema says Time64 / Duration) */
  struct ArrowSchema arrow, logical;
  assert_int_equal(bf_schema_to_arrow(&s, &arrow, &err), BF_OK);
  assert_int_equal(bf_schema_to_arrow_logical(&s, &logical, &err), BF_OK);
  assert_string_equal(arrow.children[1]->format, "d:10,2");
  assert_string_equal(arrow.children[3]->format, "vz");
  assert_string_equal(arrow.children[4]->format, "l");
  assert_string_equal(logical.children[4]->format, "ttu");
  assert_string_equal(logical.children[5]->format, "tDu");
  assert_string_equal(arrow.children[6]->format, "+m");
  assert_string_equal(arrow.children[6]->children[0]->format, "+s");
  assert_string_equal(arrow.children[6]->children[0]->children[0]->format, "vu");
  arrow.release(&arrow);
  logical.release(&logical);
  bf_schema_t copy;
  assert_int_equal(bf_schema_copy(&s, &copy, &err), BF_OK);
  assert_int_equal(copy.fields[1].precision, 10);
  assert_int_equal(copy.fields[1].scale, 2);
  bf_schema_reset(&copy);
  bf_schema_reset(&s);
}

static void test_more_types_refused(void **state) {
  (void)state;
  /* pydantic's own schema of an unconstrained Decimal: says how to constrain it */
  expect_error("{\"properties\":{\"p\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"string\"}]}}}",
               "give it both max_digits and decimal_places");
  expect_error("{\"properties\":{\"p\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"string\"},"
               "{\"type\":\"null\"}]}}}",
               "field 'p': a number-or-string union");
  expect_error("{\"properties\":{\"p\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"string\"}],"
               "\"max_digits\":39,\"decimal_places\":0}}}",
               "max_digits=39 is outside 1..38");
  expect_error("{\"properties\":{\"p\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"string\"}],"
               "\"max_digits\":3,\"decimal_places\":4}}}",
               "decimal_places=4 must be between 0 and max_digits=3");
  expect_error("{\"properties\":{\"p\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"string\"}],"
               "\"max_digits\":5}}}",
               "max_digits and decimal_places");
  expect_error("{\"properties\":{\"m\":{\"additionalProperties\":{},\"type\":\"object\"}}}",
               "give the values a type");
  expect_error("{\"properties\":{\"e\":{\"enum\":[1,\"a\"]}}}", "all str or all int");
  expect_error("{\"properties\":{\"f\":{\"format\":7,\"type\":\"string\"}}}",
               "\"format\" is not a string");
  expect_error("{\"properties\":{\"e\":{\"enum\":[\"a\\u0000b\"]}}}", "contains a NUL character");
  /* a NUL in a default (a bytes default) is fine */
  bf_schema_t s;
  bf_error_t err;
  assert_int_equal(parse("{\"properties\":{\"b\":{\"default\":\"\\u0000d\",\"format\":\"binary\","
                         "\"type\":\"string\"}}}",
                         &s, &err),
                   BF_OK);
  bf_schema_reset(&s);
}

static void test_three_null_spellings(void **state) {
  (void)state;
  const char *json =
      "{\"properties\":{\"a\":{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"null\"}]},"
      "\"b\":{\"anyOf\":[{\"const\":null},{\"type\":\"string\"}]},"
      "\"c\":{\"anyOf\":[{\"format\":\"date\",\"type\":\"string\"},{\"enum\":[null]}]}},"
      "\"required\":[\"a\",\"b\",\"c\"]}";
  bf_schema_t s;
  bf_error_t err;
  assert_int_equal(parse(json, &s, &err), BF_OK);
  assert_true(s.fields[0].nullable && s.fields[0].type == BF_TYPE_INT64);
  assert_true(s.fields[1].nullable && s.fields[1].type == BF_TYPE_UTF8VIEW);
  assert_true(s.fields[2].nullable && s.fields[2].type == BF_TYPE_DATE32);
  bf_schema_reset(&s);
}

static void test_depth_limit(void **state) {
  (void)state;
  /* 33 nested lists: one level too deep. */
  char json[4096] = "{\"properties\":{\"deep\":";
  for (int i = 0; i < 33; i++) strcat(json, "{\"type\":\"array\",\"items\":");
  strcat(json, "{\"type\":\"integer\"}");
  for (int i = 0; i < 33; i++) strcat(json, "}");
  strcat(json, "}}");
  expect_error(json, "deeper than 32");
}

static void test_namespace_validation(void **state) {
  (void)state;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_namespace_validate("production", "catalog", &err), BF_OK);
  assert_int_equal(bf_namespace_validate("_a-1", "table", &err), BF_OK);
  const char *bad[] = {"", "a/b", "..", "a.b", "has space", "1abc", "quo\"te"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(bf_namespace_validate(bad[i], "schema_name", &err), BF_EINVAL);
    assert_non_null(strstr(err.message, "schema_name"));
  }
  char long_name[200];
  memset(long_name, 'a', 129);
  long_name[129] = '\0';
  assert_int_equal(bf_namespace_validate(long_name, "table", &err), BF_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quickstart_types_and_system_columns),
      cmocka_unit_test(test_fingerprint_matches_spec_rule),
      cmocka_unit_test(test_fingerprint_order_independent_and_sensitive),
      cmocka_unit_test(test_nested_list_struct_enum),
      cmocka_unit_test(test_rejections_name_the_field),
      cmocka_unit_test(test_three_null_spellings),
      cmocka_unit_test(test_more_types),
      cmocka_unit_test(test_more_types_refused),
      cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_namespace_validation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
