/* Shared pieces of the IPC writer and reader: FlatBuffers ids of Schema.fbs /
 * Message.fbs, and the mapping between Arrow C format strings and IPC Type tables.
 *
 * Encapsulated message layout (stream format):
 *   u32 0xFFFFFFFF | i32 metadata_size | Message flatbuffer (padded, 8 + size ≡ 0 mod 8)
 *   | body (bodyLength bytes, every buffer 8-aligned)
 * End of stream: u32 0xFFFFFFFF, i32 0. */
#ifndef BIFROST_IPC_INTERNAL_H
#define BIFROST_IPC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ipc/flatbuf.h"

enum { /* Message.fbs MessageHeader */
       BF_IPC_HEADER_SCHEMA = 1,
       BF_IPC_HEADER_DICTIONARY_BATCH = 2,
       BF_IPC_HEADER_RECORD_BATCH = 3
};

enum { /* Schema.fbs Type union */
       BF_IPC_TYPE_NULL = 1,
       BF_IPC_TYPE_INT = 2,
       BF_IPC_TYPE_FLOAT = 3,
       BF_IPC_TYPE_BINARY = 4,
       BF_IPC_TYPE_UTF8 = 5,
       BF_IPC_TYPE_BOOL = 6,
       BF_IPC_TYPE_DECIMAL = 7,
       BF_IPC_TYPE_DATE = 8,
       BF_IPC_TYPE_TIME = 9,
       BF_IPC_TYPE_TIMESTAMP = 10,
       BF_IPC_TYPE_INTERVAL = 11,
       BF_IPC_TYPE_LIST = 12,
       BF_IPC_TYPE_STRUCT = 13,
       BF_IPC_TYPE_FIXED_SIZE_BINARY = 15,
       BF_IPC_TYPE_FIXED_SIZE_LIST = 16,
       BF_IPC_TYPE_MAP = 17,
       BF_IPC_TYPE_DURATION = 18,
       BF_IPC_TYPE_LARGE_BINARY = 19,
       BF_IPC_TYPE_LARGE_UTF8 = 20,
       BF_IPC_TYPE_LARGE_LIST = 21,
       BF_IPC_TYPE_BINARY_VIEW = 23,
       BF_IPC_TYPE_UTF8_VIEW = 24,
       BF_IPC_TYPE_LAST = 26 /* highest id in Schema.fbs (LargeListView) */
};

#define BF_IPC_METADATA_V5 4
#define BF_IPC_MAX_DEPTH 64

/* Writes the Type table for an Arrow format string into b. Sets *type_type (union
 * tag) and returns the table position; BF_EINVAL for unsupported formats. */
int bf__ipc_encode_type(fb_builder_t *b, const char *format, uint8_t *type_type, size_t *table_pos);
/* Formats a Type table back into an Arrow format string (out, cap bytes). */
int bf__ipc_decode_type(fb_reader_t *r, uint8_t type_type, const fb_table_ref_t *type, char *out,
                        size_t cap);

#endif
