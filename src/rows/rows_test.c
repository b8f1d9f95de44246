/* Unit tests for the row builder: JSON records as pydantic's model_dump_json writes
 * them -> Arrow columns, system columns, exact datetimes (naive = UTC, offsets,
 * pre-1970), nulls, nested values, and all-or-nothing appends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/rows.h"
#include "rows/scalars.h"
#include "rows/temporal.h"

static const char *SCHEMA =
    "{\"$defs\":{\"Tier\":{\"enum\":[\"gold\",\"silver\"],\"type\":\"string\"},\"Geo\":{"
    "\"properties\":{\"lat\":{\"type\":\"number\"}},\"required\":[\"lat\"],\"type\":\"object\"}},"
    "\"properties\":{\"name\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\"},\"ok\":{\"type\":"
    "\"boolean\"},\"at\":{\"format\":\"date-time\",\"type\":\"string\"},\"day\":{\"anyOf\":[{"
    "\"format\":\"date\",\"type\":\"string\"},{\"type\":\"null\"}]},\"tags\":{\"items\":{\"type\":"
    "\"integer\"},\"type\":\"array\"},\"tier\":{\"$ref\":\"#/$defs/Tier\"},\"geo\":{\"anyOf\":[{"
    "\"$ref\":\"#/$defs/Geo\"},{\"type\":\"null\"}]}},\"required\":[\"name\",\"n\",\"ok\",\"at\","
    "\"tags\",\"tier\"]}";

static void test_datetime_parsing_is_exact(void **state) {
  (void)state;
  int64_t us;
  assert_true(bf__parse_datetime("1970-01-01T00:00:00Z", 20, &us));
  assert_int_equal(us, 0);
  assert_true(bf__parse_datetime("2026-11-22T13:45:01.123456Z", 27, &us));
  assert_int_equal(us, 1795355101123456LL);
  assert_true(bf__parse_datetime("2026-11-22T15:45:01.123456+02:00", 32, &us)); /* same instant */
  assert_int_equal(us, 1795355101123456LL);
  assert_true(bf__parse_datetime("2026-11-22T13:45:01.123456", 26, &us)); /* naive = UTC */
  assert_int_equal(us, 1795355101123456LL);
  assert_true(bf__parse_datetime("1969-12-31T23:59:59.999999Z", 27, &us));
  assert_int_equal(us, -1);
  assert_true(bf__parse_datetime("0001-01-01T00:00:00Z", 20, &us));
  assert_int_equal(us, -62135596800000000LL);
  assert_false(bf__parse_datetime("2026-02-30T00:00:00Z", 20, &us));
  assert_false(bf__parse_datetime("2026-11-22T25:00:00Z", 20, &us));
  assert_false(bf__parse_datetime("yesterday", 9, &us));
  int32_t days;
  assert_true(bf__parse_date("1900-03-01", 10, &days));
  assert_int_equal(days, -25508);
  assert_false(bf__parse_date("2025-02-29", 10, &days));
}

static void test_build_batch_with_system_columns(void **state) {
  (void)state;
  bf_schema_t schema;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_schema_from_json_schema(SCHEMA, strlen(SCHEMA), &schema, &err), BF_OK);
  bf_batch_builder_t *b;
  assert_int_equal(bf_batch_builder_create(&schema, &b, &err), BF_OK);
  const char *r1 = "{\"name\":\"a long name beyond twelve bytes\",\"n\":1,\"ok\":true,"
                   "\"at\":\"2026-01-01T00:00:00Z\",\"day\":\"2026-01-02\",\"tags\":[1,2],"
                   "\"tier\":\"silver\",\"geo\":{\"lat\":1.5}}";
  const char *r2 = "{\"name\":\"b\",\"n\":-2,\"ok\":false,\"at\":\"1960-06-01T12:00:00\","
                   "\"day\":null,\"tags\":[],\"tier\":\"gold\",\"geo\":null}";
  assert_int_equal(bf_batch_builder_append_json(b, r1, strlen(r1), &err), BF_OK);
  assert_int_equal(bf_batch_builder_append_json(b, r2, strlen(r2), &err), BF_OK);
  /* Bad records leave the builder untouched and name the field. */
  const char *bad_enum = "{\"name\":\"c\",\"n\":3,\"ok\":true,\"at\":\"2026-01-01T00:00:00Z\","
                         "\"tags\":[],\"tier\":\"bronze\"}";
  assert_int_equal(bf_batch_builder_append_json(b, bad_enum, strlen(bad_enum), &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "'tier'"));
  const char *missing = "{\"name\":\"c\",\"ok\":true,\"at\":\"2026-01-01T00:00:00Z\",\"tags\":[],"
                        "\"tier\":\"gold\"}";
  assert_int_equal(bf_batch_builder_append_json(b, missing, strlen(missing), &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "'n'"));
  const char *bad_nested = "{\"name\":\"c\",\"n\":3,\"ok\":true,\"at\":\"2026-01-01T00:00:00Z\","
                           "\"tags\":[1,\"x\"],\"tier\":\"gold\"}";
  assert_int_equal(bf_batch_builder_append_json(b, bad_nested, strlen(bad_nested), &err), BF_EINVAL);
  assert_int_equal(bf_batch_builder_n_rows(b), 2);

  struct ArrowSchema out_schema;
  struct ArrowArray out;
  int64_t created = 1795355101123456LL; /* 2026-11-22 */
  assert_int_equal(bf_batch_builder_finish(b, created, "0193-batch", &out_schema, &out, &err), BF_OK);
  assert_int_equal(out.length, 2);
  assert_int_equal(out.n_children, 11);
  assert_string_equal(out_schema.children[0]->format, "vu");
  const uint8_t *views = out.children[0]->buffers[1];
  int32_t len;
  memcpy(&len, views, 4);
  assert_int_equal(len, 31);
  assert_memory_equal((const char *)out.children[0]->buffers[2], "a long name beyond twelve bytes", 31);
  assert_int_equal(((const int64_t *)out.children[1]->buffers[1])[1], -2);
  assert_true(bf_arrow_bit_get(out.children[2]->buffers[1], 0));
  assert_false(bf_arrow_bit_get(out.children[2]->buffers[1], 1));
  assert_int_equal(((const int64_t *)out.children[3]->buffers[1])[1], -302443200000000LL);
  assert_int_equal(out.children[4]->null_count, 1); /* day */
  assert_int_equal(((const int32_t *)out.children[5]->buffers[1])[2], 2); /* tags offsets */
  assert_int_equal(((const int16_t *)out.children[6]->buffers[1])[0], 1); /* silver */
  assert_int_equal(out.children[6]->dictionary->length, 2);
  assert_int_equal(out.children[7]->null_count, 1); /* geo */
  /* system columns */
  assert_int_equal(((const int64_t *)out.children[8]->buffers[1])[1], created);
  assert_int_equal(((const int32_t *)out.children[9]->buffers[1])[0], 20779); /* 2026-11-22 */
  /* the batch id: dictionary-encoded, one value, every row's int8 index 0 */
  assert_string_equal(out_schema.children[10]->format, "c");
  assert_string_equal(out_schema.children[10]->dictionary->format, "u");
  assert_int_equal(((const int8_t *)out.children[10]->buffers[1])[0], 0);
  assert_int_equal(((const int8_t *)out.children[10]->buffers[1])[1], 0);
  assert_int_equal(out.children[10]->dictionary->length, 1);
  assert_memory_equal((const char *)out.children[10]->dictionary->buffers[2], "0193-batch", 10);
  out.release(&out);
  out_schema.release(&out_schema);

  /* The builder is reusable after finish. */
  assert_int_equal(bf_batch_builder_append_json(b, r2, strlen(r2), &err), BF_OK);
  assert_int_equal(bf_batch_builder_n_rows(b), 1);
  bf_batch_builder_destroy(b);
  bf_schema_reset(&schema);
}

/* Appends a tag and raw bytes to a row under construction. */
static size_t put(uint8_t *row, size_t n, uint8_t tag, const void *bytes, size_t len) {
  row[n++] = tag;
  if (len) memcpy(row + n, bytes, len);
  return n + len;
}

static size_t put_str(uint8_t *row, size_t n, const char *s) {
  uint32_t len = (uint32_t)strlen(s);
  n = put(row, n, BF_ROW_STRING, &len, 4);
  memcpy(row + n, s, len);
  return n + len;
}

static size_t put_common(uint8_t *row, size_t n) {
  int64_t v = 7, at = 0;
  uint8_t yes = 1;
  n = put_str(row, n, "name");
  n = put(row, n, BF_ROW_INT64, &v, 8);
  n = put(row, n, BF_ROW_BOOL, &yes, 1);
  return put(row, n, BF_ROW_TIMESTAMP_US, &at, 8);
}

static void test_nested_binary_rows_are_exact(void **state) {
  (void)state;
  bf_schema_t schema;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_schema_from_json_schema(SCHEMA, strlen(SCHEMA), &schema, &err), BF_OK);
  bf_batch_builder_t *b;
  assert_int_equal(bf_batch_builder_create(&schema, &b, &err), BF_OK);
  uint8_t row[256];
  size_t n = put_common(row, 0);
  int32_t day = -25508;
  n = put(row, n, BF_ROW_DATE32, &day, 4);
  uint32_t two = 2;
  int64_t t1 = 10, t2 = -20;
  n = put(row, n, BF_ROW_LIST, &two, 4);
  n = put(row, n, BF_ROW_INT64, &t1, 8);
  n = put(row, n, BF_ROW_INT64, &t2, 8);
  n = put_str(row, n, "silver");
  double lat = -0.0;
  n = put(row, n, BF_ROW_STRUCT, NULL, 0);
  n = put(row, n, BF_ROW_FLOAT64, &lat, 8);
  assert_int_equal(bf_batch_builder_append_row(b, row, n, &err), BF_OK);

  /* A NaN latitude is kept bit for bit. */
  double nan_lat = NAN;
  memcpy(row + n - 8, &nan_lat, 8);
  assert_int_equal(bf_batch_builder_append_row(b, row, n, &err), BF_OK);

  /* Bad rows name the nested field and append nothing. */
  uint8_t bad[256];
  size_t m = put_common(bad, 0);
  m = put(bad, m, BF_ROW_NULL, NULL, 0);
  m = put(bad, m, BF_ROW_LIST, &two, 4);
  m = put(bad, m, BF_ROW_INT64, &t1, 8);
  m = put_str(bad, m, "x");
  assert_int_equal(bf_batch_builder_append_row(b, bad, m, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "'tags[]'"));
  m = put_common(bad, 0);
  m = put(bad, m, BF_ROW_NULL, NULL, 0);
  uint32_t zero = 0;
  m = put(bad, m, BF_ROW_LIST, &zero, 4);
  m = put_str(bad, m, "bronze");
  assert_int_equal(bf_batch_builder_append_row(b, bad, m, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "'tier'"));
  m = put_common(bad, 0);
  m = put(bad, m, BF_ROW_NULL, NULL, 0);
  m = put(bad, m, BF_ROW_LIST, &zero, 4);
  m = put_str(bad, m, "gold");
  m = put(bad, m, BF_ROW_STRUCT, NULL, 0);
  m = put(bad, m, BF_ROW_NULL, NULL, 0);
  assert_int_equal(bf_batch_builder_append_row(b, bad, m, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "'geo.lat'"));
  assert_int_equal(bf_batch_builder_append_row(b, bad, m - 3, &err), BF_EINVAL); /* short */
  assert_int_equal(bf_batch_builder_n_rows(b), 2);

  struct ArrowSchema out_schema;
  struct ArrowArray out;
  assert_int_equal(bf_batch_builder_finish(b, 0, "batch", &out_schema, &out, &err), BF_OK);
  assert_int_equal(out.length, 2);
  assert_int_equal(((const int32_t *)out.children[4]->buffers[1])[0], -25508);
  const int32_t *offsets = out.children[5]->buffers[1];
  assert_int_equal(offsets[1], 2);
  assert_int_equal(offsets[2], 4);
  assert_int_equal(((const int64_t *)out.children[5]->children[0]->buffers[1])[1], -20);
  assert_int_equal(((const int16_t *)out.children[6]->buffers[1])[0], 1);
  const double *lats = out.children[7]->children[0]->buffers[1];
  assert_true(signbit(lats[0]) && lats[0] == 0.0);
  assert_true(isnan(lats[1]));
  out.release(&out);
  out_schema.release(&out_schema);
  bf_batch_builder_destroy(b);
  bf_schema_reset(&schema);
}

static void test_json_takes_the_spellings_of_nan_and_infinities(void **state) {
  (void)state;
  const char *schema_text =
      "{\"properties\":{\"x\":{\"type\":\"number\"},\"y\":{\"items\":{\"type\":\"number\"},"
      "\"type\":\"array\"}},\"required\":[\"x\",\"y\"]}";
  bf_schema_t schema;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_schema_from_json_schema(schema_text, strlen(schema_text), &schema, &err), BF_OK);
  bf_batch_builder_t *b;
  assert_int_equal(bf_batch_builder_create(&schema, &b, &err), BF_OK);
  const char *r = "{\"x\":\"NaN\",\"y\":[\"Infinity\",\"-Infinity\",-0.0]}";
  assert_int_equal(bf_batch_builder_append_json(b, r, strlen(r), &err), BF_OK);
  const char *bad = "{\"x\":\"nan\",\"y\":[]}";
  assert_int_equal(bf_batch_builder_append_json(b, bad, strlen(bad), &err), BF_EINVAL);
  struct ArrowSchema out_schema;
  struct ArrowArray out;
  assert_int_equal(bf_batch_builder_finish(b, 0, "batch", &out_schema, &out, &err), BF_OK);
  assert_true(isnan(((const double *)out.children[0]->buffers[1])[0]));
  const double *ys = out.children[1]->children[0]->buffers[1];
  assert_true(isinf(ys[0]) && ys[0] > 0);
  assert_true(isinf(ys[1]) && ys[1] < 0);
  assert_true(signbit(ys[2]) && ys[2] == 0.0);
  out.release(&out);
  out_schema.release(&out_schema);
  bf_batch_builder_destroy(b);
  bf_schema_reset(&schema);
}

static int64_t low64(const uint8_t v[16]) {
  int64_t x;
  memcpy(&x, v, 8);
  return x;
}

static void test_decimal_time_and_duration_text(void **state) {
  (void)state;
  uint8_t v[16];
  assert_true(bf__parse_decimal("12.34", 5, 10, 2, v));
  assert_int_equal(low64(v), 1234);
  assert_true(bf__parse_decimal("-0.05", 5, 3, 2, v));
  assert_int_equal(low64(v), -5);
  assert_true(bf__parse_decimal("1.2000", 6, 5, 2, v)); /* trailing zeros drop */
  assert_int_equal(low64(v), 120);
  assert_true(bf__parse_decimal("1E+2", 4, 5, 2, v));
  assert_int_equal(low64(v), 10000);
  assert_false(bf__parse_decimal("1.234", 5, 10, 2, v)); /* a digit would be lost */
  assert_false(bf__parse_decimal("1000", 4, 5, 2, v));   /* 6 digits > 5 */
  assert_false(bf__parse_decimal("", 0, 5, 2, v));
  assert_false(bf__parse_decimal("NaN", 3, 5, 2, v));
  assert_false(bf__parse_decimal("1.2.3", 5, 5, 2, v));
  const char *max38 = "99999999999999999999999999999999999999";
  assert_true(bf__parse_decimal(max38, strlen(max38), 38, 0, v));
  assert_true(bf__decimal_fits(v, 38));
  assert_false(bf__decimal_fits(v, 37));
  assert_false(bf__parse_decimal("100000000000000000000000000000000000000", 39, 38, 0, v));
  int64_t us;
  assert_true(bf__parse_time("23:59:59.999999", 15, &us));
  assert_int_equal(us, BF_TIME_US_PER_DAY - 1);
  assert_true(bf__parse_time("00:00", 5, &us));
  assert_int_equal(us, 0);
  assert_false(bf__parse_time("24:00:00", 8, &us));
  assert_false(bf__parse_time("12:00:00.0000001", 16, &us)); /* finer than a microsecond */
  assert_false(bf__parse_time("12:00:00+02:00", 14, &us));
  assert_true(bf__parse_duration("P1DT2H3M4.5S", 12, &us));
  assert_int_equal(us, ((1LL * 86400 + 2 * 3600 + 3 * 60 + 4) * 1000000) + 500000);
  assert_true(bf__parse_duration("-PT0.000001S", 12, &us));
  assert_int_equal(us, -1);
  assert_true(bf__parse_duration("P2W", 3, &us));
  assert_int_equal(us, 14LL * 86400 * 1000000);
  assert_false(bf__parse_duration("P", 1, &us));
  assert_false(bf__parse_duration("PT1D", 4, &us));
  assert_false(bf__parse_duration("P999999999D", 11, &us)); /* beyond int64 microseconds */
}

/* JSON records (the C API's path) for the new types, checked cell by cell. */
static void test_json_records_of_the_new_types(void **state) {
  (void)state;
  const char *schema_text =
      "{\"properties\":{\"d\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"string\"}],"
      "\"max_digits\":5,\"decimal_places\":2},\"b\":{\"format\":\"binary\",\"type\":\"string\"},"
      "\"t\":{\"format\":\"time\",\"type\":\"string\"},\"td\":{\"format\":\"duration\","
      "\"type\":\"string\"},\"m\":{\"additionalProperties\":{\"type\":\"integer\"},"
      "\"type\":\"object\"},\"e\":{\"enum\":[1,-2],\"type\":\"integer\"}},"
      "\"required\":[\"d\",\"b\",\"t\",\"td\"]}";
  bf_schema_t schema;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_schema_from_json_schema(schema_text, strlen(schema_text), &schema, &err), BF_OK);
  bf_batch_builder_t *b;
  assert_int_equal(bf_batch_builder_create(&schema, &b, &err), BF_OK);
  const char *r1 = "{\"d\":\"-1.5\",\"b\":\"\",\"t\":\"01:02:03.000004\",\"td\":\"-P1D\","
                   "\"m\":{\"a\":1,\"\":2}}";
  const char *r2 = "{\"e\":-2,\"d\":7,\"b\":\"xy\",\"t\":\"00:00\",\"td\":1.5,\"m\":null}";
  assert_int_equal(bf_batch_builder_append_json(b, r1, strlen(r1), &err), BF_OK);
  assert_int_equal(bf_batch_builder_append_json(b, r2, strlen(r2), &err), BF_OK);
  const char *bad[] = {"{\"d\":\"1.234\",\"b\":\"\",\"t\":\"00:00\",\"td\":\"P1D\"}",
                       "{\"d\":1.5,\"b\":\"\",\"t\":\"00:00\",\"td\":\"P1D\"}",
                       "{\"d\":\"1\",\"b\":\"\",\"t\":\"25:00\",\"td\":\"P1D\"}",
                       "{\"d\":\"1\",\"b\":\"\",\"t\":\"00:00\",\"td\":\"1 day\"}",
                       "{\"d\":\"1\",\"b\":\"\",\"t\":\"00:00\",\"td\":\"P1D\",\"m\":{\"a\":\"x\"}}",
                       "{\"d\":\"1\",\"b\":\"\",\"t\":\"00:00\",\"td\":\"P1D\",\"e\":2}"};
  const char *why[] = {"field 'd'", "field 'd'", "field 't'", "field 'td'", "field 'm{}'",
                       "field 'e': 2 is not one of the enum values"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(bf_batch_builder_append_json(b, bad[i], strlen(bad[i]), &err), BF_EINVAL);
    if (strstr(err.message, why[i]) == NULL) fail_msg("'%s' not in '%s'", why[i], err.message);
  }
  struct ArrowSchema out_schema;
  struct ArrowArray out;
  assert_int_equal(bf_batch_builder_finish(b, 0, "batch", &out_schema, &out, &err), BF_OK);
  assert_int_equal(out.length, 2);
  const uint8_t *d = out.children[0]->buffers[1];
  assert_int_equal(low64(d), -150);
  assert_int_equal(low64(d + 16), 700);
  const int64_t *t = out.children[2]->buffers[1];
  assert_int_equal(t[0], 3723000004LL);
  assert_int_equal(t[1], 0);
  const int64_t *td = out.children[3]->buffers[1];
  assert_int_equal(td[0], -86400LL * 1000000);
  assert_int_equal(td[1], 1500000);
  const struct ArrowArray *m = out.children[4];
  assert_int_equal(m->null_count, 1);
  const int32_t *offsets = m->buffers[1];
  assert_int_equal(offsets[0], 0);
  assert_int_equal(offsets[1], 2);
  assert_int_equal(offsets[2], 2);
  assert_int_equal(m->children[0]->length, 2);
  assert_string_equal(out_schema.children[4]->format, "+m");
  out.release(&out);
  out_schema.release(&out_schema);
  bf_batch_builder_destroy(b);
  bf_schema_reset(&schema);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_datetime_parsing_is_exact),
      cmocka_unit_test(test_build_batch_with_system_columns),
      cmocka_unit_test(test_nested_binary_rows_are_exact),
      cmocka_unit_test(test_json_takes_the_spellings_of_nan_and_infinities),
      cmocka_unit_test(test_decimal_time_and_duration_text),
      cmocka_unit_test(test_json_records_of_the_new_types),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
