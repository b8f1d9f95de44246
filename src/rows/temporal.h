/* ISO 8601 / RFC 3339 date and datetime parsing into Arrow's Date32 (days) and
 * Timestamp(µs, UTC), exact for years 0001-9999 (proleptic Gregorian). Naive
 * datetimes are taken as UTC; offsets are converted to UTC. */
#ifndef BIFROST_ROWS_TEMPORAL_H
#define BIFROST_ROWS_TEMPORAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Days since 1970-01-01 for a civil date (Howard Hinnant's days_from_civil). */
int64_t bf__days_from_civil(int64_t y, unsigned m, unsigned d);
/* "YYYY-MM-DD" -> days. false on malformed input. */
bool bf__parse_date(const char *s, size_t n, int32_t *out_days);
/* "YYYY-MM-DD[T ]HH:MM[:SS[.f{1,9}]][Z|±HH[:]MM]" -> µs since epoch (UTC). */
bool bf__parse_datetime(const char *s, size_t n, int64_t *out_us);

#endif
