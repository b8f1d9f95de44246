/* Date and datetime parsing for the row builder (see temporal.h). */
#include "rows/temporal.h"

int64_t bf__days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, size_t at, size_t count, int *out) {
  if (at + count > n) return false;
  int v = 0;
  for (size_t i = 0; i < count; i++) {
    char c = s[at + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

static bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static bool parse_ymd(const char *s, size_t n, int *y, int *m, int *d) {
  static const int days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (!digits(s, n, 0, 4, y) || n < 10 || s[4] != '-' || !digits(s, n, 5, 2, m) || s[7] != '-' ||
      !digits(s, n, 8, 2, d))
    return false;
  if (*y < 1 || *m < 1 || *m > 12 || *d < 1) return false;
  int max_day = days_in_month[*m - 1] + (*m == 2 && is_leap(*y));
  return *d <= max_day;
}

bool bf__parse_date(const char *s, size_t n, int32_t *out_days) {
  int y, m, d;
  if (n != 10 || !parse_ymd(s, n, &y, &m, &d)) return false;
  *out_days = (int32_t)bf__days_from_civil(y, (unsigned)m, (unsigned)d);
  return true;
}

bool bf__parse_datetime(const char *s, size_t n, int64_t *out_us) {
  int y, mo, d, hh, mi, ss = 0;
  if (!parse_ymd(s, n, &y, &mo, &d)) return false;
  if (n < 16 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ')) return false;
  if (!digits(s, n, 11, 2, &hh) || s[13] != ':' || !digits(s, n, 14, 2, &mi)) return false;
  size_t pos = 16;
  if (pos < n && s[pos] == ':') {
    if (!digits(s, n, pos + 1, 2, &ss)) return false;
    pos += 3;
  }
  if (hh > 23 || mi > 59 || ss > 59) return false;
  int64_t micros = 0;
  if (pos < n && (s[pos] == '.' || s[pos] == ',')) {
    pos++;
    size_t start = pos;
    int scale = 0;
    while (pos < n && s[pos] >= '0' && s[pos] <= '9') {
      if (scale < 6) {
        micros = micros * 10 + (s[pos] - '0');
        scale++;
      }
      pos++;
    }
    if (pos == start || pos - start > 9) return false;
    while (scale++ < 6) micros *= 10;
  }
  int64_t offset_secs = 0;
  if (pos < n) {
    if ((s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == n) {
      pos++;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int oh, om = 0;
      int sign = s[pos] == '-' ? -1 : 1;
      if (!digits(s, n, pos + 1, 2, &oh)) return false;
      size_t p = pos + 3;
      if (p < n && s[p] == ':') p++;
      if (p < n) {
        if (!digits(s, n, p, 2, &om)) return false;
        p += 2;
      }
      if (p != n || oh > 23 || om > 59) return false;
      offset_secs = sign * (oh * 3600 + om * 60);
      pos = n;
    } else {
      return false;
    }
  }
  int64_t days = bf__days_from_civil(y, (unsigned)mo, (unsigned)d);
  int64_t secs = days * 86400 + hh * 3600 + mi * 60 + ss - offset_secs;
  *out_us = secs * 1000000 + micros;
  return true;
}
