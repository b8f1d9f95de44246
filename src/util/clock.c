/* Wall-clock and monotonic time, and UUID v4/v7 generation (batch ids, table ids). */
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "bifrost/util.h"

int64_t bf_time_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t bf_time_now_ms(void) { return bf_time_now_us() / 1000; }

double bf_time_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timespec bf_time_after(clockid_t clock, double secs) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  if (!(secs > 0)) return ts;
  if (secs > 1e9) secs = 1e9; /* about 31 years: never */
  time_t whole = (time_t)secs;
  ts.tv_sec += whole;
  ts.tv_nsec += (long)((secs - (double)whole) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

static void fill_random(uint8_t *bytes, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(bytes + got, n - got, 0);
    if (r <= 0) continue; /* EINTR; getrandom does not fail otherwise once seeded */
    got += (size_t)r;
  }
}

static void format_uuid(const uint8_t b[16], char out[37]) {
  snprintf(out, 37,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
           b[12], b[13], b[14], b[15]);
}

void bf_uuid7_string(int64_t unix_ms, char out[37]) {
  uint8_t b[16];
  fill_random(b, sizeof b);
  uint64_t ms = (uint64_t)unix_ms;
  for (int i = 0; i < 6; i++) b[i] = (uint8_t)(ms >> (40 - 8 * i));
  b[6] = (uint8_t)(0x70 | (b[6] & 0x0f));
  b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
  format_uuid(b, out);
}

void bf_uuid4_string(char out[37]) {
  uint8_t b[16];
  fill_random(b, sizeof b);
  b[6] = (uint8_t)(0x40 | (b[6] & 0x0f));
  b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
  format_uuid(b, out);
}
