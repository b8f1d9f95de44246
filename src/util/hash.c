/* Text hashing for in-memory indexes (FNV-1a, 64 bit): not for anything an
 * attacker could exploit by choosing colliding keys beyond a slower lookup. */
#include "bifrost/util.h"

uint64_t bf_hash_text(const char *text) {
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) h = (h ^ *p) * 1099511628211ULL;
  return h;
}
