/* Using the Bifrost producer from C: register a table from a JSON Schema, insert
 * records as JSON and as binary rows (the fast path), flush, and read the stats.
 *
 *   build/c_producer_example localhost:50051 demo c_api readings 1000
 *
 * Inserts N records (half JSON, half binary rows) plus one malformed record, which
 * fails alone without stalling the others; prints the producer's events (the
 * library itself never prints) and its counters. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/producer.h"
#include "bifrost/rows.h"
#include "bifrost/util.h"

static const char *SCHEMA =
    "{\"title\":\"Reading\",\"type\":\"object\",\"required\":[\"id\",\"name\",\"score\",\"at\"],"
    "\"properties\":{\"id\":{\"type\":\"integer\"},\"name\":{\"type\":\"string\"},"
    "\"score\":{\"type\":\"number\"},\"at\":{\"type\":\"string\",\"format\":\"date-time\"}}}";

/* One binary row: id, name, score, at (see rows.h for the encoding). */
static size_t encode_row(uint8_t *out, int64_t id, const char *name, double score, int64_t at_us) {
  size_t n = 0, len = strlen(name);
  out[n++] = BF_ROW_INT64;
  memcpy(out + n, &id, 8);
  n += 8;
  out[n++] = BF_ROW_STRING;
  uint32_t len32 = (uint32_t)len;
  memcpy(out + n, &len32, 4);
  n += 4;
  memcpy(out + n, name, len);
  n += len;
  out[n++] = BF_ROW_FLOAT64;
  memcpy(out + n, &score, 8);
  n += 8;
  out[n++] = BF_ROW_TIMESTAMP_US;
  memcpy(out + n, &at_us, 8);
  return n + 8;
}

/* Producer events (failures, outage, recovery, drops, records too large) arrive
 * here, on the producer's thread: report them in the application's own way. */
static void on_event(void *ctx, const bf_producer_event_t *event) {
  (void)ctx;
  static const char *kinds[] = {"batch failed", "retrying", "recovered", "dropped", "record too large"};
  fprintf(stderr, "event %s: %s (%llu records): %s\n", kinds[event->kind], event->table,
          (unsigned long long)event->count, event->message);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s SERVER CATALOG SCHEMA_NAME TABLE N\n", argv[0]);
    return 2;
  }
  long n = strtol(argv[5], NULL, 10);
  bf_producer_options_t options;
  bf_producer_options_init(&options);
  options.target = argv[1];
  options.name.catalog = argv[2];
  options.name.schema_name = argv[3];
  options.name.table = argv[4];
  options.json_schema = SCHEMA;
  options.batch_size = 250;
  options.scheduled_delay_secs = 0.5;
  options.on_event = on_event;
  bf_error_t err;
  bf_error_init(&err);
  bf_producer_t *producer = NULL;
  char registered[32];
  if (bf_producer_create(&options, &producer, &err) != BF_OK ||
      bf_producer_register(producer, registered, &err) != BF_OK) {
    fprintf(stderr, "producer: %s\n", err.message);
    bf_producer_destroy(producer);
    return 1;
  }
  int64_t now_us = bf_time_now_us();
  for (long i = 0; i < n; i++) {
    int status;
    if (i % 2 == 0) {
      char json[160];
      int len = snprintf(json, sizeof json,
                         "{\"id\":%ld,\"name\":\"json\",\"score\":%ld.5,\"at\":\"2025-01-01T00:00:00Z\"}",
                         i, i);
      status = bf_producer_insert_json(producer, json, (size_t)len, &err);
    } else {
      uint8_t row[64];
      size_t len = encode_row(row, i, "row", (double)i, now_us);
      status = bf_producer_insert_row(producer, row, len, &err);
    }
    if (status != BF_OK) {
      fprintf(stderr, "insert: %s\n", err.message);
      bf_producer_destroy(producer);
      return 1;
    }
  }
  const char *bad = "{\"id\":\"not a number\"}";
  bf_producer_insert_json(producer, bad, strlen(bad), &err);
  uint64_t flushed = 0;
  if (bf_producer_flush(producer, 60, &flushed, &err) != BF_OK)
    printf("flush reported: %s\n", err.message); /* the malformed record */
  bf_producer_stats_t stats;
  bf_producer_get_stats(producer, &stats);
  printf("table=%s inserted=%llu acknowledged=%llu failed=%llu batches=%llu\n", registered,
         (unsigned long long)stats.inserted, (unsigned long long)stats.acknowledged,
         (unsigned long long)stats.failed, (unsigned long long)stats.sent_batches);
  int rc = bf_producer_shutdown(producer, 30, &err) == BF_OK ? 0 : 1;
  bf_producer_destroy(producer);
  return rc;
}
