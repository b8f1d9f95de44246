/* Decimal, time-of-day and duration rules for the row builders (see scalars.h). */
#include "rows/scalars.h"

#include <string.h>

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

/* 10^38 - 1 fits in 127 bits; powers up to 10^38 are computed once per call. */
static u128 pow10_u128(int n) {
  u128 v = 1;
  for (int i = 0; i < n; i++) v *= 10;
  return v;
}

static i128 load_i128(const uint8_t p[16]) {
  u128 v = 0;
  for (int i = 15; i >= 0; i--) v = v << 8 | p[i];
  return (i128)v;
}

static void store_i128(i128 value, uint8_t out[16]) {
  u128 v = (u128)value;
  for (int i = 0; i < 16; i++) {
    out[i] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
}

bool bf__decimal_fits(const uint8_t value[16], int precision) {
  if (precision < 1 || precision > 38) return false;
  i128 v = load_i128(value);
  u128 magnitude = v < 0 ? (u128)0 - (u128)v : (u128)v;
  return magnitude < pow10_u128(precision);
}

bool bf__parse_decimal(const char *s, size_t n, int precision, int scale, uint8_t out[16]) {
  if (precision < 1 || precision > 38 || scale < 0 || scale > precision) return false;
  size_t i = 0;
  bool negative = false;
  if (i < n && (s[i] == '-' || s[i] == '+')) negative = s[i++] == '-';
  /* Collect the significant digits (leading zeros skipped) and where the point is. */
  char digits[80];
  size_t n_digits = 0, n_before_point = 0;
  bool seen_point = false, any = false;
  for (; i < n; i++) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      any = true;
      if (n_digits == 0 && c == '0') {
        if (!seen_point) continue;
        /* a zero after the point before any significant digit: keep its place */
      }
      if (n_digits >= sizeof digits) return false;
      digits[n_digits++] = c;
      if (!seen_point) n_before_point++;
    } else if (c == '.' && !seen_point) {
      seen_point = true;
    } else {
      break;
    }
  }
  if (!any) return false;
  long long exponent = 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    bool exp_negative = false;
    if (i < n && (s[i] == '-' || s[i] == '+')) exp_negative = s[i++] == '-';
    size_t start = i;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      if (exponent > 100000) return false;
      exponent = exponent * 10 + (s[i] - '0');
    }
    if (i == start) return false;
    if (exp_negative) exponent = -exponent;
  }
  if (i != n) return false;
  /* value = 0.digits... * 10^(n_before_point + exponent); unscaled = value * 10^scale:
   * digit k (0-based) has weight 10^(n_before_point + exponent + scale - 1 - k). */
  long long top = (long long)n_before_point + exponent + scale; /* digits kept before the cut */
  u128 v = 0;
  u128 limit = pow10_u128(precision);
  for (size_t k = 0; k < n_digits; k++) {
    if ((long long)k >= top) {
      if (digits[k] != '0') return false; /* more decimal places than the scale holds */
      continue;
    }
    v = v * 10 + (u128)(digits[k] - '0');
    if (v >= limit) return false;
  }
  for (long long k = (long long)n_digits; k < top; k++) {
    if (v == 0) break;
    v *= 10;
    if (v >= limit) return false;
  }
  store_i128(negative ? -(i128)v : (i128)v, out);
  return true;
}

static bool two_digits(const char *s, size_t n, size_t at, int *out) {
  if (at + 2 > n || s[at] < '0' || s[at] > '9' || s[at + 1] < '0' || s[at + 1] > '9') return false;
  *out = (s[at] - '0') * 10 + (s[at + 1] - '0');
  return true;
}

bool bf__parse_time(const char *s, size_t n, int64_t *out_us) {
  int hh, mi, ss = 0;
  if (!two_digits(s, n, 0, &hh) || n < 5 || s[2] != ':' || !two_digits(s, n, 3, &mi)) return false;
  size_t pos = 5;
  if (pos < n && s[pos] == ':') {
    if (!two_digits(s, n, pos + 1, &ss)) return false;
    pos += 3;
  }
  if (hh > 23 || mi > 59 || ss > 59) return false;
  int64_t micros = 0;
  if (pos < n && s[pos] == '.') {
    size_t start = ++pos;
    int kept = 0;
    for (; pos < n && s[pos] >= '0' && s[pos] <= '9'; pos++) {
      if (kept < 6) {
        micros = micros * 10 + (s[pos] - '0');
        kept++;
      } else if (s[pos] != '0') {
        return false; /* finer than a microsecond */
      }
    }
    if (pos == start || pos - start > 9) return false;
    while (kept++ < 6) micros *= 10;
  }
  if (pos < n) {
    const char *rest = s + pos;
    size_t left = n - pos;
    if (!((left == 1 && (rest[0] == 'Z' || rest[0] == 'z')) ||
          (left == 6 && memcmp(rest, "+00:00", 6) == 0)))
      return false;
  }
  *out_us = ((int64_t)hh * 3600 + mi * 60 + ss) * 1000000LL + micros;
  return true;
}

/* Adds count * unit_us to *total with overflow checks. */
static bool add_part(u128 *total, u128 count, u128 unit_us) {
  u128 limit = (u128)1 << 63; /* |int64| incl. INT64_MIN */
  if (count != 0 && unit_us > limit / count) return false;
  *total += count * unit_us;
  return *total <= limit;
}

bool bf__parse_duration(const char *s, size_t n, int64_t *out_us) {
  size_t i = 0;
  bool negative = false;
  if (i < n && (s[i] == '-' || s[i] == '+')) negative = s[i++] == '-';
  if (i >= n || s[i++] != 'P') return false;
  u128 total = 0;
  bool in_time = false, any = false;
  while (i < n) {
    if (s[i] == 'T' && !in_time) {
      in_time = true;
      i++;
      continue;
    }
    u128 whole = 0;
    size_t start = i;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      if (whole > ((u128)1 << 64)) return false;
      whole = whole * 10 + (u128)(s[i] - '0');
    }
    if (i == start) return false;
    u128 fraction_us = 0; /* seconds only */
    if (i < n && (s[i] == '.' || s[i] == ',')) {
      size_t fstart = ++i;
      int kept = 0;
      for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (kept < 6) {
          fraction_us = fraction_us * 10 + (u128)(s[i] - '0');
          kept++;
        } else if (s[i] != '0') {
          return false;
        }
      }
      if (i == fstart) return false;
      while (kept++ < 6) fraction_us *= 10;
      if (i >= n || s[i] != 'S' || !in_time) return false;
    }
    if (i >= n) return false;
    char unit = s[i++];
    u128 unit_us;
    if (!in_time && unit == 'W') unit_us = 7ULL * 86400 * 1000000;
    else if (!in_time && unit == 'D') unit_us = 86400ULL * 1000000;
    else if (in_time && unit == 'H') unit_us = 3600ULL * 1000000;
    else if (in_time && unit == 'M') unit_us = 60ULL * 1000000;
    else if (in_time && unit == 'S') unit_us = 1000000;
    else return false;
    if (!add_part(&total, whole, unit_us) || !add_part(&total, fraction_us, 1)) return false;
    any = true;
  }
  if (!any) return false;
  if (!negative && total > (u128)INT64_MAX) return false;
  *out_us = negative ? (int64_t)(-(i128)total) : (int64_t)total;
  return true;
}
