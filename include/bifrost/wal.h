/* Write-ahead log segments: the server's durable record of acknowledged batches
 * that are not yet in Parquet. A segment is one file holding a header and framed
 * records (magic, length, CRC-32C over length + payload); appends are written under
 * a mutex (with direct I/O where the file system allows it, else through the page
 * cache) and bf_wal_sync makes them durable with one fdatasync shared by every
 * caller waiting at that moment (group commit). A segment file is owned
 * by the process holding its flock; a segment nobody holds was left by a crashed
 * process and is replayed by whoever adopts it. A torn tail (crash in the middle of
 * a write) ends the readable records without losing earlier ones; damage in the
 * middle is skipped up to the next valid record and reported. */
#ifndef BIFROST_WAL_H
#define BIFROST_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/error.h"

#define BF_WAL_MAX_RECORD (1u << 30)

typedef struct bf_wal_segment bf_wal_segment_t;

/* CRC-32C (Castagnoli), as used by the record framing. Start with crc = 0. */
uint32_t bf_crc32c(uint32_t crc, const void *data, size_t n);

/* Creates a new segment file (fails with BF_EEXIST if path exists), locks it,
 * writes the header and makes the file and its directory entry durable. */
int bf_wal_segment_create(const char *path, bf_wal_segment_t **out, bf_error_t *err);

/* Takes over an existing segment left by a process that is gone: opens it and
 * locks it without waiting. *adopted = 0 (and *out = NULL) when another live
 * process holds it or it was deleted meanwhile. A torn tail is cut off. */
int bf_wal_segment_adopt(const char *path, bf_wal_segment_t **out, int *adopted, bf_error_t *err);

/* Appends one record (payload of n bytes, 0 < n <= BF_WAL_MAX_RECORD) and returns
 * its log sequence number in *lsn. Not yet durable: call bf_wal_sync. A failed
 * write (e.g. disk full: BF_EFULL) is cut off again, so the segment stays valid. */
int bf_wal_append(bf_wal_segment_t *seg, const void *payload, size_t n, uint64_t *lsn,
                  bf_error_t *err);

/* A record whose payload is the concatenation of up to BF_WAL_MAX_PARTS buffers,
 * framed (length + CRC-32C) by bf_wal_frame before any lock is taken, so appends
 * of large records only copy and write while the segment is locked. The
 * parts must stay valid until bf_wal_append_frame returns. */
#define BF_WAL_MAX_PARTS 4
typedef struct bf_wal_frame {
  uint8_t header[12];
  const void *parts[BF_WAL_MAX_PARTS];
  size_t sizes[BF_WAL_MAX_PARTS];
  int n_parts;
  size_t payload_size;
} bf_wal_frame_t;

/* Fails with BF_EINVAL for an empty or too large (> BF_WAL_MAX_RECORD) payload or
 * more than BF_WAL_MAX_PARTS parts. */
int bf_wal_frame(bf_wal_frame_t *frame, const void *const *parts, const size_t *sizes,
                 int n_parts, bf_error_t *err);
int bf_wal_append_frame(bf_wal_segment_t *seg, const bf_wal_frame_t *frame, uint64_t *lsn,
                        bf_error_t *err);

/* Returns once the record lsn (and everything before it) is on disk. Concurrent
 * callers share one fdatasync. A failed sync is sticky: the segment refuses all
 * later appends and syncs (BF_EIO), since the kernel may have dropped the data. */
int bf_wal_sync(bf_wal_segment_t *seg, uint64_t lsn, bf_error_t *err);

/* Calls on_record for every valid record in order (stops early, returning the
 * callback's status, if it returns non-BF_OK). *torn_bytes (may be NULL)
 * receives the size of the discarded tail (including what adoption cut off), 0
 * for a clean segment. */
typedef int (*bf_wal_record_fn)(void *ctx, const uint8_t *payload, size_t n);
int bf_wal_segment_read(bf_wal_segment_t *seg, bf_wal_record_fn on_record, void *ctx,
                        uint64_t *torn_bytes, bf_error_t *err);

/* Damage the last bf_wal_segment_read (or adoption) skipped between valid
 * records: bytes and separate regions (each region lost at least one record). */
void bf_wal_segment_damage(const bf_wal_segment_t *seg, uint64_t *bytes, uint64_t *regions);

const char *bf_wal_segment_path(const bf_wal_segment_t *seg);
uint64_t bf_wal_segment_size(const bf_wal_segment_t *seg);

/* Closes the segment; with remove_file the file is deleted first (while still
 * locked, so no other process adopts it in between). */
void bf_wal_segment_close(bf_wal_segment_t *seg, int remove_file);

#endif /* BIFROST_WAL_H */
