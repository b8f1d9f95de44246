/* Text and range rules of the scalar types that are not plain numbers or strings:
 * decimals (Decimal128 unscaled integers), times of day and durations (both
 * microseconds). Shared by the JSON record path (batch_builder.c) and the binary
 * row checks (binary_rows.c). Private to src/rows. */
#ifndef BIFROST_ROWS_SCALARS_H
#define BIFROST_ROWS_SCALARS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BF_TIME_US_PER_DAY 86400000000LL

/* True when the 16-byte little-endian two's complement value has at most
 * `precision` decimal digits (|v| < 10^precision). */
bool bf__decimal_fits(const uint8_t value[16], int precision);
/* "[-+]digits[.digits][e[-+]digits]" -> the unscaled value at `scale` (16 bytes,
 * little-endian). false when malformed, when digits would be lost (more decimal
 * places than `scale`, unless they are zeros) or when it has more than
 * `precision` digits. */
bool bf__parse_decimal(const char *s, size_t n, int precision, int scale, uint8_t out[16]);
/* "HH:MM[:SS[.f{1,9}]]" (an optional trailing "Z" or "+00:00") -> microseconds
 * since midnight; fractions beyond microseconds must be zeros. */
bool bf__parse_time(const char *s, size_t n, int64_t *out_us);
/* ISO 8601 duration "[-]P[nW][nD][T[nH][nM][n[.f]S]]" (pydantic's JSON for a
 * timedelta) -> microseconds; false when malformed or out of the int64 range. */
bool bf__parse_duration(const char *s, size_t n, int64_t *out_us);

#endif /* BIFROST_ROWS_SCALARS_H */
