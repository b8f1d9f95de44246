/* Arrow C format strings <-> IPC Schema.fbs Type tables (the `type` union of a
 * Field). The writer encodes a schema's formats here; the reader decodes Type
 * tables from untrusted metadata back into format strings, rejecting parameters
 * no Arrow implementation would write (bit widths, units, precisions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/arrow.h"
#include "bifrost/error.h"
#include "ipc/ipc_internal.h"

static size_t empty_table(fb_builder_t *b) { return fb_table(b, NULL, 0); }

static size_t int_table(fb_builder_t *b, int bits, int is_signed) {
  fb_field_t f[2] = {{.id = 0, .size = 4, .value = (uint32_t)bits},
                     {.id = 1, .size = 1, .value = (uint8_t)is_signed}};
  return fb_table(b, f, 2);
}

static size_t short_table(fb_builder_t *b, int value) {
  fb_field_t f[1] = {{.id = 0, .size = 2, .value = (uint16_t)value}};
  return fb_table(b, f, 1);
}

static int unit_of(char c) {
  switch (c) {
    case 's':
      return 0;
    case 'm':
      return 1;
    case 'u':
      return 2;
    case 'n':
      return 3;
  }
  return -1;
}

int bf__ipc_encode_type(fb_builder_t *b, const char *format, uint8_t *type_type, size_t *table_pos) {
  const char *f = format;
  switch (f[0]) {
    case 'n':
      *type_type = BF_IPC_TYPE_NULL;
      *table_pos = empty_table(b);
      return BF_OK;
    case 'b':
      *type_type = BF_IPC_TYPE_BOOL;
      *table_pos = empty_table(b);
      return BF_OK;
    case 'c':
    case 'C':
    case 's':
    case 'S':
    case 'i':
    case 'I':
    case 'l':
    case 'L': {
      if (f[1] != '\0') break;
      int bits = (f[0] == 'c' || f[0] == 'C') ? 8 : (f[0] == 's' || f[0] == 'S') ? 16
                 : (f[0] == 'i' || f[0] == 'I')                                  ? 32
                                                                                 : 64;
      int is_signed = f[0] == 'c' || f[0] == 's' || f[0] == 'i' || f[0] == 'l';
      *type_type = BF_IPC_TYPE_INT;
      *table_pos = int_table(b, bits, is_signed);
      return BF_OK;
    }
    case 'e':
    case 'f':
    case 'g':
      if (f[1] != '\0') break;
      *type_type = BF_IPC_TYPE_FLOAT;
      *table_pos = short_table(b, f[0] == 'e' ? 0 : f[0] == 'f' ? 1 : 2);
      return BF_OK;
    case 'u':
    case 'z':
    case 'U':
    case 'Z':
      if (f[1] != '\0') break;
      *type_type = f[0] == 'u'   ? BF_IPC_TYPE_UTF8
                   : f[0] == 'z' ? BF_IPC_TYPE_BINARY
                   : f[0] == 'U' ? BF_IPC_TYPE_LARGE_UTF8
                                 : BF_IPC_TYPE_LARGE_BINARY;
      *table_pos = empty_table(b);
      return BF_OK;
    case 'v':
      if ((f[1] != 'u' && f[1] != 'z') || f[2] != '\0') break;
      *type_type = f[1] == 'u' ? BF_IPC_TYPE_UTF8_VIEW : BF_IPC_TYPE_BINARY_VIEW;
      *table_pos = empty_table(b);
      return BF_OK;
    case 'w':
      if (bf_arrow_format_byte_width(f) < 1) break;
      *type_type = BF_IPC_TYPE_FIXED_SIZE_BINARY;
      {
        fb_field_t fld[1] = {{.id = 0, .size = 4, .value = (uint32_t)atoi(f + 2)}};
        *table_pos = fb_table(b, fld, 1);
      }
      return BF_OK;
    case 'd': {
      int precision = 0, scale = 0, bits = 128;
      if (bf_arrow_format_byte_width(f) < 0 || sscanf(f, "d:%d,%d,%d", &precision, &scale, &bits) < 2)
        break;
      fb_field_t fld[3] = {{.id = 0, .size = 4, .value = (uint32_t)precision},
                           {.id = 1, .size = 4, .value = (uint32_t)scale},
                           {.id = 2, .size = 4, .value = (uint32_t)bits}};
      *type_type = BF_IPC_TYPE_DECIMAL;
      *table_pos = fb_table(b, fld, 3);
      return BF_OK;
    }
    case 't': {
      if (f[1] == 'd' && (f[2] == 'D' || f[2] == 'm') && f[3] == '\0') {
        *type_type = BF_IPC_TYPE_DATE;
        *table_pos = short_table(b, f[2] == 'D' ? 0 : 1);
        return BF_OK;
      }
      if (f[1] == 't' && unit_of(f[2]) >= 0 && f[3] == '\0') {
        int unit = unit_of(f[2]);
        fb_field_t fld[2] = {{.id = 0, .size = 2, .value = (uint16_t)unit},
                             {.id = 1, .size = 4, .value = unit <= 1 ? 32u : 64u}};
        *type_type = BF_IPC_TYPE_TIME;
        *table_pos = fb_table(b, fld, 2);
        return BF_OK;
      }
      if (f[1] == 's' && unit_of(f[2]) >= 0 && f[3] == ':') {
        const char *tz = f + 4;
        fb_field_t fld[2] = {{.id = 0, .size = 2, .value = (uint16_t)unit_of(f[2])},
                             {.id = 1, .size = 4, .is_offset = 1}};
        *type_type = BF_IPC_TYPE_TIMESTAMP;
        *table_pos = fb_table(b, fld, tz[0] ? 2 : 1);
        if (tz[0]) fb_patch(b, fld[1].pos, fb_string(b, tz, strlen(tz)));
        return BF_OK;
      }
      if (f[1] == 'D' && unit_of(f[2]) >= 0 && f[3] == '\0') {
        *type_type = BF_IPC_TYPE_DURATION;
        *table_pos = short_table(b, unit_of(f[2]));
        return BF_OK;
      }
      if (f[1] == 'i' && f[3] == '\0' && (f[2] == 'M' || f[2] == 'D' || f[2] == 'n')) {
        *type_type = BF_IPC_TYPE_INTERVAL;
        *table_pos = short_table(b, f[2] == 'M' ? 0 : f[2] == 'D' ? 1 : 2);
        return BF_OK;
      }
      break;
    }
    case '+':
      if (f[1] == 'l' && f[2] == '\0') {
        *type_type = BF_IPC_TYPE_LIST;
      } else if (f[1] == 'L' && f[2] == '\0') {
        *type_type = BF_IPC_TYPE_LARGE_LIST;
      } else if (f[1] == 's' && f[2] == '\0') {
        *type_type = BF_IPC_TYPE_STRUCT;
      } else if (f[1] == 'm' && f[2] == '\0') {
        fb_field_t fld[1] = {{.id = 0, .size = 1, .value = 0}};
        *type_type = BF_IPC_TYPE_MAP;
        *table_pos = fb_table(b, fld, 1);
        return BF_OK;
      } else if (f[1] == 'w' && bf_arrow_format_n_buffers(f) == 1) {
        fb_field_t fld[1] = {{.id = 0, .size = 4, .value = (uint32_t)atoi(f + 3)}};
        *type_type = BF_IPC_TYPE_FIXED_SIZE_LIST;
        *table_pos = fb_table(b, fld, 1);
        return BF_OK;
      } else {
        break;
      }
      *table_pos = empty_table(b);
      return BF_OK;
  }
  return BF_EINVAL;
}

int bf__ipc_decode_type(fb_reader_t *r, uint8_t type_type, const fb_table_ref_t *t, char *out,
                        size_t cap) {
  static const char units[] = "smun";
  switch (type_type) {
    case BF_IPC_TYPE_NULL:
      snprintf(out, cap, "n");
      return BF_OK;
    case BF_IPC_TYPE_BOOL:
      snprintf(out, cap, "b");
      return BF_OK;
    case BF_IPC_TYPE_INT: {
      int bits = fb_i32(r, t, 0, 0);
      int is_signed = fb_u8(r, t, 1, 0);
      const char *fmt = NULL;
      switch (bits) {
        case 8:
          fmt = is_signed ? "c" : "C";
          break;
        case 16:
          fmt = is_signed ? "s" : "S";
          break;
        case 32:
          fmt = is_signed ? "i" : "I";
          break;
        case 64:
          fmt = is_signed ? "l" : "L";
          break;
      }
      if (fmt == NULL) return BF_ECORRUPT;
      snprintf(out, cap, "%s", fmt);
      return BF_OK;
    }
    case BF_IPC_TYPE_FLOAT: {
      int16_t p = fb_i16(r, t, 0, 0);
      if (p < 0 || p > 2) return BF_ECORRUPT;
      snprintf(out, cap, "%c", "efg"[p]);
      return BF_OK;
    }
    case BF_IPC_TYPE_UTF8:
      snprintf(out, cap, "u");
      return BF_OK;
    case BF_IPC_TYPE_BINARY:
      snprintf(out, cap, "z");
      return BF_OK;
    case BF_IPC_TYPE_LARGE_UTF8:
      snprintf(out, cap, "U");
      return BF_OK;
    case BF_IPC_TYPE_LARGE_BINARY:
      snprintf(out, cap, "Z");
      return BF_OK;
    case BF_IPC_TYPE_UTF8_VIEW:
      snprintf(out, cap, "vu");
      return BF_OK;
    case BF_IPC_TYPE_BINARY_VIEW:
      snprintf(out, cap, "vz");
      return BF_OK;
    case BF_IPC_TYPE_FIXED_SIZE_BINARY: {
      int w = fb_i32(r, t, 0, 0);
      if (w <= 0) return BF_ECORRUPT;
      snprintf(out, cap, "w:%d", w);
      return BF_OK;
    }
    case BF_IPC_TYPE_DECIMAL: {
      int bits = fb_i32(r, t, 2, 128);
      int precision = fb_i32(r, t, 0, 0), scale = fb_i32(r, t, 1, 0);
      if (bits != 32 && bits != 64 && bits != 128 && bits != 256) return BF_ECORRUPT;
      if (precision < 1 || precision > 76 || scale < -76 || scale > 76) return BF_ECORRUPT;
      if (bits == 128)
        snprintf(out, cap, "d:%d,%d", precision, scale);
      else
        snprintf(out, cap, "d:%d,%d,%d", precision, scale, bits);
      return BF_OK;
    }
    case BF_IPC_TYPE_DATE: {
      int16_t unit = fb_i16(r, t, 0, 1);
      if (unit != 0 && unit != 1) return BF_ECORRUPT;
      snprintf(out, cap, "td%c", unit == 0 ? 'D' : 'm');
      return BF_OK;
    }
    case BF_IPC_TYPE_TIME: {
      int16_t unit = fb_i16(r, t, 0, 1);
      int32_t bits = fb_i32(r, t, 1, 32);
      if (unit < 0 || unit > 3 || bits != (unit <= 1 ? 32 : 64)) return BF_ECORRUPT;
      snprintf(out, cap, "tt%c", units[unit]);
      return BF_OK;
    }
    case BF_IPC_TYPE_TIMESTAMP: {
      int16_t unit = fb_i16(r, t, 0, 0);
      if (unit < 0 || unit > 3) return BF_ECORRUPT;
      const char *tz = "";
      uint32_t tz_len = 0;
      if (fb_has(r, t, 1) && !fb_string_field(r, t, 1, &tz, &tz_len)) return BF_ECORRUPT;
      if (tz_len > 200) return BF_ECORRUPT;
      snprintf(out, cap, "ts%c:%.*s", units[unit], (int)tz_len, tz);
      return BF_OK;
    }
    case BF_IPC_TYPE_DURATION: {
      int16_t unit = fb_i16(r, t, 0, 1);
      if (unit < 0 || unit > 3) return BF_ECORRUPT;
      snprintf(out, cap, "tD%c", units[unit]);
      return BF_OK;
    }
    case BF_IPC_TYPE_INTERVAL: {
      int16_t unit = fb_i16(r, t, 0, 0);
      if (unit < 0 || unit > 2) return BF_ECORRUPT;
      snprintf(out, cap, "ti%c", "MDn"[unit]);
      return BF_OK;
    }
    case BF_IPC_TYPE_LIST:
      snprintf(out, cap, "+l");
      return BF_OK;
    case BF_IPC_TYPE_LARGE_LIST:
      snprintf(out, cap, "+L");
      return BF_OK;
    case BF_IPC_TYPE_STRUCT:
      snprintf(out, cap, "+s");
      return BF_OK;
    case BF_IPC_TYPE_MAP:
      snprintf(out, cap, "+m");
      return BF_OK;
    case BF_IPC_TYPE_FIXED_SIZE_LIST: {
      int n = fb_i32(r, t, 0, -1);
      if (n < 0) return BF_ECORRUPT;
      snprintf(out, cap, "+w:%d", n);
      return BF_OK;
    }
  }
  return BF_EINVAL;
}
