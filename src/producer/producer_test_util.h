/* What the producer's unit tests share (producer_test.c, producer_send_test.c):
 * a producer's options for a two-column model, the bookkeeping invariant every
 * producer keeps, and a monotonic clock. Header-only, for the tests alone. */
#ifndef BF_PRODUCER_TEST_UTIL_H
#define BF_PRODUCER_TEST_UTIL_H

#include <time.h>

#include "bifrost/producer.h"

#define TEST_SCHEMA_JSON                                                   \
  "{\"properties\": {"                                                   \
  "\"user_id\": {\"title\": \"User Id\", \"type\": \"string\"},"          \
  "\"score\": {\"title\": \"Score\", \"type\": \"number\"}},"             \
  "\"required\": [\"user_id\", \"score\"], \"title\": \"Rec\", \"type\": \"object\"}"

#define GOOD_ROW "{\"user_id\": \"u1\", \"score\": 0.5}"
#define BAD_ROW "{\"user_id\": 7}"

static inline double now_secs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void options_for(bf_producer_options_t *options, const char *target) {
  bf_producer_options_init(options);
  options->target = target;
  options->name.catalog = "cat";
  options->name.schema_name = "sch";
  options->name.table = "tbl";
  options->json_schema = TEST_SCHEMA_JSON;
}

/* Every row inserted is in exactly one state. Needs cmocka.h included first. */
static inline void assert_accounted(bf_producer_t *producer) {
  bf_producer_stats_t s;
  bf_producer_get_stats(producer, &s);
  assert_int_equal(s.inserted, s.acknowledged + s.queued + s.in_flight + s.dropped + s.failed);
}

#endif
