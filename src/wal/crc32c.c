/* CRC-32C (Castagnoli) for the WAL's record framing (see wal.h): the SSE4.2 crc32
 * instruction where the CPU has it (three streams at once on large inputs), a
 * slicing-by-8 table otherwise. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "bifrost/wal.h"

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    crc_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc32c_table(uint32_t crc, const uint8_t *p, size_t n) {
  pthread_once(&crc_once, crc_init);
  while (n >= 8) { /* slicing-by-8 */
    uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                         (uint32_t)p[3] << 24);
    crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
          crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
          crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The SSE4.2 crc32 instruction computes CRC-32C, 8 bytes at a time, but each one
 * waits for the previous (3 cycles): one stream ran at about 7 GB/s, 2.2 % of
 * the server's ingest samples. Large inputs are cut into three blocks computed
 * side by side, then joined: the CRC register is linear, so the CRC of A then B
 * is the register after A moved over |B| zero bytes, xor B's CRC from zero. Moving
 * a register over a fixed number of zero bytes is a 32x32 bit matrix, kept as four
 * byte tables (built once by running the instruction over zeros from each bit). */
#define CRC_BLOCK 4096 /* bytes per stream and step; 3 x 4 KiB stays in L1 */

__attribute__((target("sse4.2"))) static uint64_t crc_words(uint64_t c, const uint8_t *p,
                                                             size_t n) {
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  return c;
}

static uint32_t shift_table[4][256]; /* the register after CRC_BLOCK zero bytes */
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static void shift_init(void) {
  static const uint8_t zeros[CRC_BLOCK];
  uint32_t bit_image[32];
  for (int b = 0; b < 32; b++) bit_image[b] = (uint32_t)crc_words(1u << b, zeros, CRC_BLOCK);
  for (int k = 0; k < 4; k++)
    for (uint32_t v = 0; v < 256; v++) {
      uint32_t image = 0;
      for (int b = 0; b < 8; b++)
        if (v & (1u << b)) image ^= bit_image[8 * k + b];
      shift_table[k][v] = image;
    }
}

static uint32_t shift_block(uint32_t c) {
  return shift_table[0][c & 0xff] ^ shift_table[1][(c >> 8) & 0xff] ^
         shift_table[2][(c >> 16) & 0xff] ^ shift_table[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
                                                                size_t n) {
  uint64_t c = crc;
  if (n >= 3 * CRC_BLOCK) {
    pthread_once(&shift_once, shift_init);
    do {
      uint64_t c1 = 0, c2 = 0;
      for (size_t i = 0; i < CRC_BLOCK; i += 8) {
        uint64_t w0, w1, w2;
        memcpy(&w0, p + i, 8);
        memcpy(&w1, p + CRC_BLOCK + i, 8);
        memcpy(&w2, p + 2 * CRC_BLOCK + i, 8);
        c = __builtin_ia32_crc32di(c, w0);
        c1 = __builtin_ia32_crc32di(c1, w1);
        c2 = __builtin_ia32_crc32di(c2, w2);
      }
      c = shift_block((uint32_t)c) ^ (uint32_t)c1;
      c = shift_block((uint32_t)c) ^ (uint32_t)c2;
      p += 3 * CRC_BLOCK;
      n -= 3 * CRC_BLOCK;
    } while (n >= 3 * CRC_BLOCK);
  }
  c = crc_words(c, p, n);
  p += n & ~(size_t)7;
  n &= 7;
  crc = (uint32_t)c;
  for (; n; p++, n--) crc = __builtin_ia32_crc32qi(crc, *p);
  return crc;
}

static int have_sse42(void) {
  static int cached = -1;
  if (cached < 0) cached = __builtin_cpu_supports("sse4.2") ? 1 : 0;
  return cached;
}
#endif

/* The table-driven code, whatever the CPU offers (for tests). */
uint32_t bf__crc32c_portable(uint32_t crc, const void *data, size_t n);
uint32_t bf__crc32c_portable(uint32_t crc, const void *data, size_t n) {
  return ~crc32c_table(~crc, data, n);
}

uint32_t bf_crc32c(uint32_t crc, const void *data, size_t n) {
  const uint8_t *p = data;
  crc = ~crc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (have_sse42()) return ~crc32c_sse42(crc, p, n);
#endif
  return ~crc32c_table(crc, p, n);
}
