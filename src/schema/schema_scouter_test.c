/* Unit tests for the scouter-ml 0.25.0 fingerprint rule (schema_scouter.c): the
 * canonical text of each construct, a value the published package computes, and
 * the documents the rule refuses. The property test over generated models against
 * the package itself is python/tests/test_scouter_fingerprint.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_scouter.h"

#define SYS                                                                    \
  "scouter_batch_id:Utf8:false|scouter_created_at:Timestamp(\xc2\xb5s, \"UTC\"):false|" \
  "scouter_partition_date:Date32:false"

/* The quickstart's PredictionRecord as pydantic 2 emits it. */
static const char *QUICKSTART =
    "{\"properties\":{\"user_id\":{\"type\":\"string\"},\"model_name\":{\"type\":\"string\"},"
    "\"prediction\":{\"type\":\"number\"},\"confidence\":{\"type\":\"number\"},\"feature_1\":{"
    "\"type\":\"number\"},\"feature_2\":{\"type\":\"number\"},\"label\":{\"anyOf\":[{\"type\":"
    "\"string\"},{\"type\":\"null\"}],\"default\":null},\"predicted_at\":{\"format\":"
    "\"date-time\",\"type\":\"string\"}},\"required\":[\"user_id\",\"model_name\",\"prediction\","
    "\"confidence\",\"feature_1\",\"feature_2\",\"predicted_at\"],\"type\":\"object\"}";

static char *canonical(const char *json, int expect_status, bf_error_t *err) {
  char *out = NULL;
  bf_error_init(err);
  assert_int_equal(bf_schema_scouter_canonical(json, strlen(json), &out, err), expect_status);
  return out;
}

static void test_quickstart_matches_the_published_package(void **state) {
  (void)state;
  char fp[33];
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_schema_scouter_fingerprint(QUICKSTART, strlen(QUICKSTART), fp, &err), BF_OK);
  /* TableConfig.compute_fingerprint of scouter-ml 0.25.0 for this model */
  assert_string_equal(fp, "1dd888a5698276101b9bf3a6af00f083");
}

static void test_entries_are_sorted_whole_not_by_name(void **state) {
  (void)state;
  bf_error_t err;
  char *text = canonical(
      "{\"properties\":{\"a\":{\"type\":\"integer\"},\"a0\":{\"type\":\"boolean\"}},"
      "\"required\":[\"a\",\"a0\"]}",
      BF_OK, &err);
  /* "a0:" sorts before "a:" ('0' < ':'), although "a" < "a0" */
  assert_string_equal(text, "a0:Boolean:false|a:Int64:false|" SYS);
  free(text);
}

static void test_lists_structs_enums_defaults_and_refs(void **state) {
  (void)state;
  bf_error_t err;
  char *text = canonical(
      "{\"$defs\":{\"P\":{\"properties\":{\"y\":{\"type\":\"string\"},\"x\":{\"anyOf\":[{"
      "\"type\":\"number\"},{\"type\":\"null\"}]}},\"required\":[\"y\"]},\"C\":{\"enum\":[\"r\"],"
      "\"type\":\"string\"}},\"properties\":{\"tags\":{\"items\":{\"type\":\"string\"},\"type\":"
      "\"array\",\"default\":[]},\"p\":{\"$ref\":\"#/$defs/P\"},\"lp\":{\"type\":\"array\","
      "\"items\":{\"$ref\":\"#/$defs/P\"}},\"c\":{\"$ref\":\"#/$defs/C\"},\"d\":{\"type\":"
      "\"string\",\"format\":\"date\"},\"o\":{\"anyOf\":[{\"$ref\":\"#/$defs/P\"},{\"type\":"
      "\"null\"}]}},\"required\":[\"p\",\"lp\",\"c\",\"d\",\"o\"]}",
      BF_OK, &err);
  assert_string_equal(text,
                      "c:Dictionary(Int16, Utf8):false|d:Date32:false|"
                      "lp:List(item:Struct(x:Float64:true,y:Utf8View:false):true):false|"
                      "o:Struct(x:Float64:true,y:Utf8View:false):true|"
                      "p:Struct(x:Float64:true,y:Utf8View:false):false|" SYS "|"
                      "tags:List(item:Utf8View:true):true");
  free(text);
}

static void test_documents_the_rule_cannot_render_are_refused(void **state) {
  (void)state;
  static const struct {
    const char *json;
    const char *message;
  } cases[] = {
      {"{\"properties\":{\"d\":{\"type\":\"object\"}}}", "free-form dict"},
      {"{\"properties\":{\"u\":{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}}}",
       "several non-null"},
      {"{\"properties\":{\"x\":{\"title\":\"X\"}}}", "no 'type'"},
      {"{\"properties\":{\"x\":{\"$ref\":\"#/$defs/Missing\"}}}", "not found"},
      {"{\"properties\":{\"scouter_batch_id\":{\"type\":\"string\"}}}", "reserved"},
      {"{\"title\":\"no properties\"}", "properties"},
      {"[1, 2", "not valid JSON"},
      {"{\"properties\":{\"x\":{\"type\":\"string\"}},\"properties\":{}}", "not valid JSON"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bf_error_t err;
    char *text = canonical(cases[i].json, BF_EINVAL, &err);
    assert_null(text);
    if (strstr(err.message, cases[i].message) == NULL) fail_msg("%s: %s", cases[i].json, err.message);
  }
}

static void test_nesting_deeper_than_32_is_refused(void **state) {
  (void)state;
  char json[4096] = "{\"properties\":{\"x\":";
  for (int i = 0; i < 40; i++) strcat(json, "{\"type\":\"array\",\"items\":");
  strcat(json, "{\"type\":\"integer\"}");
  for (int i = 0; i < 40; i++) strcat(json, "}");
  strcat(json, "}}");
  bf_error_t err;
  char *text = canonical(json, BF_EINVAL, &err);
  assert_null(text);
  assert_non_null(strstr(err.message, "maximum depth"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quickstart_matches_the_published_package),
      cmocka_unit_test(test_entries_are_sorted_whole_not_by_name),
      cmocka_unit_test(test_lists_structs_enums_defaults_and_refs),
      cmocka_unit_test(test_documents_the_rule_cannot_render_are_refused),
      cmocka_unit_test(test_nesting_deeper_than_32_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
