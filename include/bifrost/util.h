/* Small shared utilities: a growable byte buffer, memory shared by reference
 * count, wall-clock time, UUID v7, a text hash and durable file helpers. Everything
 * here is thread-compatible (no shared state); a bf_shared_t's count is atomic. */
#ifndef BIFROST_UTIL_H
#define BIFROST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bifrost/error.h"

/* Growable byte buffer. Invariant: size <= capacity; data is NULL iff capacity 0.
 * Owns data; bf_buffer_reset frees it. */
typedef struct bf_buffer {
  uint8_t *data;
  size_t size;
  size_t capacity;
} bf_buffer_t;

void bf_buffer_init(bf_buffer_t *buf);  /* cannot fail */
void bf_buffer_reset(bf_buffer_t *buf); /* frees, leaves an empty buffer */
/* Ensures room for `additional` more bytes. BF_ENOMEM on failure. */
int bf_buffer_reserve(bf_buffer_t *buf, size_t additional);
int bf_buffer_append(bf_buffer_t *buf, const void *bytes, size_t n);
/* Appends n zero bytes. */
int bf_buffer_append_zeros(bf_buffer_t *buf, size_t n);
/* Pads with zero bytes up to a multiple of `alignment` (a power of two). */
int bf_buffer_pad(bf_buffer_t *buf, size_t alignment);
/* Moves ownership of the bytes to the caller (*out, *out_size) and empties buf. */
void bf_buffer_take(bf_buffer_t *buf, uint8_t **out, size_t *out_size);

/* Memory shared by reference count (e.g. a received message that Arrow arrays
 * decoded in place borrow from, or a request body gRPC sends without copying):
 * free_fn(data) runs when the last reference goes (free_fn NULL: nothing to free).
 * bf_shared_new returns it with one reference (NULL: out of memory, data stays the
 * caller's). ref/unref/data/size accept NULL (size 0). */
typedef struct bf_shared bf_shared_t;
bf_shared_t *bf_shared_new(void *data, size_t size, void (*free_fn)(void *));
void bf_shared_ref(bf_shared_t *shared);
void bf_shared_unref(bf_shared_t *shared);
void *bf_shared_data(const bf_shared_t *shared);
size_t bf_shared_size(const bf_shared_t *shared);

/* FNV-1a hash of a NUL-terminated text, for in-memory indexes. */
uint64_t bf_hash_text(const char *text);

/* Microseconds / milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t bf_time_now_us(void);
int64_t bf_time_now_ms(void);
/* Monotonic seconds, for deadlines and intervals. */
double bf_time_monotonic(void);
/* The time secs (>= 0) from now on clock, as pthread_cond_timedwait takes it. */
struct timespec bf_time_after(clockid_t clock, double secs);

/* Writes a UUID v7 (RFC 9562) for unix_ms as 36 chars + NUL into out. Uses
 * getrandom for the random bits. Thread-safe. */
void bf_uuid7_string(int64_t unix_ms, char out[37]);
/* Random UUID v4 string. Thread-safe. */
void bf_uuid4_string(char out[37]);

/* Creates a directory and all missing parents (mode 0755). BF_EIO on failure. */
int bf_fs_mkdirs(const char *path, bf_error_t *err);
/* Reads a whole file into a NUL-terminated malloc'd buffer. BF_ENOTFOUND if the
 * file does not exist, BF_EIO otherwise. */
int bf_fs_read_file(const char *path, char **out, size_t *out_size, bf_error_t *err);
/* Writes data to `path` atomically and durably, failing with BF_EEXIST if path
 * already exists: temp file in the same directory, fsync, link(2) onto path,
 * unlink temp, fsync directory. Used for Delta commits and registry entries. */
int bf_fs_write_new_file(const char *path, const void *data, size_t size, bf_error_t *err);
/* Same but replaces an existing file (temp + fsync + rename + fsync dir). */
int bf_fs_write_replace_file(const char *path, const void *data, size_t size, bf_error_t *err);
bool bf_fs_exists(const char *path);
/* True when the file name is longer than suffix and ends with it (".wal", ".lease"). */
bool bf_fs_name_has_suffix(const char *name, const char *suffix);

#endif /* BIFROST_UTIL_H */
