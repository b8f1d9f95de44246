/* Layout facts about Arrow C format strings (the C Data Interface type encoding):
 * how many buffers an array of that format has and how wide a fixed-width value
 * is. The IPC writer and reader and the row builders size buffers from these, so
 * both are strict: a format with trailing garbage or a malformed parameter is
 * unsupported (-1) rather than guessed at. */
#include <stdlib.h>
#include <string.h>

#include "bifrost/arrow.h"

/* Parses a decimal integer in [0, max] that ends the string (or ends at a ','
 * when stop_at_comma); returns -1 if malformed. *end receives the stop position. */
static long parse_uint(const char *s, long max, int stop_at_comma, const char **end) {
  long value = 0;
  const char *p = s;
  if (*p < '0' || *p > '9') return -1;
  while (*p >= '0' && *p <= '9') {
    value = value * 10 + (*p - '0');
    if (value > max) return -1;
    p++;
  }
  if (*p != '\0' && !(stop_at_comma && *p == ',')) return -1;
  *end = p;
  return value;
}

static int is_time_unit(char c) { return c == 's' || c == 'm' || c == 'u' || c == 'n'; }

/* "d:P,S" or "d:P,S,bits" -> value width in bytes, or -1. */
static int decimal_width(const char *format) {
  const char *p = format + 2;
  if (format[1] != ':') return -1;
  if (parse_uint(p, 76, 1, &p) < 1 || *p != ',') return -1;
  p++;
  if (*p == '-') p++; /* negative scales are valid */
  if (parse_uint(p, 76, 1, &p) < 0) return -1;
  if (*p == '\0') return 16;
  long bits = parse_uint(p + 1, 256, 0, &p);
  return bits == 32 || bits == 64 || bits == 128 || bits == 256 ? (int)(bits / 8) : -1;
}

int bf_arrow_format_byte_width(const char *format) {
  if (format == NULL || format[0] == '\0') return -1;
  const char *end;
  switch (format[0]) {
    case 'b':
      return format[1] == '\0' ? 0 : -1;
    case 'c':
    case 'C':
      return format[1] == '\0' ? 1 : -1;
    case 's':
    case 'S':
    case 'e':
      return format[1] == '\0' ? 2 : -1;
    case 'i':
    case 'I':
    case 'f':
      return format[1] == '\0' ? 4 : -1;
    case 'l':
    case 'L':
    case 'g':
      return format[1] == '\0' ? 8 : -1;
    case 'd':
      return decimal_width(format);
    case 'w': {
      if (format[1] != ':') return -1;
      long width = parse_uint(format + 2, INT32_MAX, 0, &end);
      return width >= 1 ? (int)width : -1;
    }
    case 't':
      switch (format[1]) {
        case 'd': /* date32 days, date64 milliseconds */
          if (format[3] != '\0') return -1;
          return format[2] == 'D' ? 4 : format[2] == 'm' ? 8 : -1;
        case 't': /* time32 s/ms, time64 us/ns */
          if (!is_time_unit(format[2]) || format[3] != '\0') return -1;
          return (format[2] == 's' || format[2] == 'm') ? 4 : 8;
        case 's': /* timestamp with an optional timezone after the colon */
          return is_time_unit(format[2]) && format[3] == ':' ? 8 : -1;
        case 'D': /* duration */
          return is_time_unit(format[2]) && format[3] == '\0' ? 8 : -1;
        case 'i': /* interval months / days+ms / months+days+ns */
          if (format[3] != '\0') return -1;
          return format[2] == 'M' ? 4 : format[2] == 'D' ? 8 : format[2] == 'n' ? 16 : -1;
        default:
          return -1;
      }
    default:
      return -1;
  }
}

int bf_arrow_format_n_buffers(const char *format) {
  if (format == NULL || format[0] == '\0') return -1;
  const char *end;
  switch (format[0]) {
    case 'n':
      return format[1] == '\0' ? 0 : -1;
    case 'u':
    case 'z':
    case 'U':
    case 'Z':
      return format[1] == '\0' ? 3 : -1;
    case 'v':
      return (format[1] == 'u' || format[1] == 'z') && format[2] == '\0' ? 2 : -1;
    case '+':
      switch (format[1]) {
        case 's':
          return format[2] == '\0' ? 1 : -1;
        case 'l':
        case 'L':
        case 'm':
          return format[2] == '\0' ? 2 : -1;
        case 'w':
          return format[2] == ':' && parse_uint(format + 3, INT32_MAX, 0, &end) >= 0 ? 1 : -1;
        default:
          return -1;
      }
    default:
      return bf_arrow_format_byte_width(format) >= 0 ? 2 : -1;
  }
}
