/* Unit tests for src/wal: CRC-32C, record round trips, torn and corrupt tails,
 * group commit under concurrent writers, adoption of orphaned segments, a failed
 * write (file size limit) that leaves the segment valid, and records of every size
 * around the direct-I/O block and staging buffer. Every test runs twice: appends
 * with direct I/O, then through the page cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bifrost/wal.h"

uint32_t bf__crc32c_portable(uint32_t crc, const void *data, size_t n);
extern int bf__wal_direct_io;
extern int bf__wal_direct_fault;

/* Bytes of a segment holding records "record-0" .. "record-<n-1>" (header, framing). */
static long logical_size(int n) {
  long size = 8;
  for (int i = 0; i < n; i++) {
    char rec[32];
    size += 12 + snprintf(rec, sizeof rec, "record-%d", i);
  }
  return size;
}

static char dir[256];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/bf_wal_test_XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

typedef struct collected {
  int n;
  char records[512][64];
} collected_t;

static int collect(void *ctx, const uint8_t *payload, size_t n) {
  collected_t *c = ctx;
  if (c->n >= 512 || n >= 64) return BF_EINVAL;
  memcpy(c->records[c->n], payload, n);
  c->records[c->n][n] = '\0';
  c->n++;
  return BF_OK;
}

static void seg_path(const char *name, char *out, size_t cap) { snprintf(out, cap, "%s/%s", dir, name); }

static void write_records(const char *path, int n) {
  bf_wal_segment_t *seg;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_wal_segment_create(path, &seg, &err), BF_OK);
  uint64_t lsn = 0;
  for (int i = 0; i < n; i++) {
    char rec[32];
    int len = snprintf(rec, sizeof rec, "record-%d", i);
    assert_int_equal(bf_wal_append(seg, rec, (size_t)len, &lsn, &err), BF_OK);
  }
  assert_int_equal(bf_wal_sync(seg, lsn, &err), BF_OK);
  bf_wal_segment_close(seg, 0);
}

static collected_t *read_all(const char *path, uint64_t *torn) {
  collected_t *c = calloc(1, sizeof *c);
  bf_wal_segment_t *seg;
  int adopted;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_wal_segment_adopt(path, &seg, &adopted, &err), BF_OK);
  assert_true(adopted);
  assert_int_equal(bf_wal_segment_read(seg, collect, c, torn, &err), BF_OK);
  bf_wal_segment_close(seg, 0);
  return c;
}

static void test_crc32c_known_value(void **state) {
  (void)state;
  /* The standard check value of CRC-32C. */
  assert_int_equal(bf_crc32c(0, "123456789", 9), 0xE3069283u);
  assert_int_equal(bf_crc32c(bf_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
  /* The hardware path (where the CPU has one) agrees with the table at every
   * length and alignment. */
  uint8_t data[300];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 131 + 7);
  for (size_t off = 0; off < 9; off++)
    for (size_t n = 0; n + off <= sizeof data; n += 13)
      assert_int_equal(bf_crc32c(0x1234u, data + off, n), bf__crc32c_portable(0x1234u, data + off, n));
  assert_int_equal(bf__crc32c_portable(0, "123456789", 9), 0xE3069283u);
  /* Large inputs go three blocks at a time (joined by a table): every length
   * around the block multiples, at odd offsets, and a value split anywhere. */
  size_t big_n = 5 * 12288 + 102; /* the longest length at the largest offset */
  uint8_t *big = malloc(big_n);
  assert_non_null(big);
  for (size_t i = 0; i < big_n; i++) big[i] = (uint8_t)((i * 2654435761u) >> 13);
  const size_t lengths[] = {12287, 12288, 12289, 12295, 24575, 24576, 24583, 36864, 5 * 12288 + 99};
  for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++)
    for (size_t off = 0; off < 3; off++) {
      uint32_t whole = bf_crc32c(0x9u, big + off, lengths[k]);
      assert_int_equal(whole, bf__crc32c_portable(0x9u, big + off, lengths[k]));
      size_t cut = lengths[k] / 3 + off;
      uint32_t first = bf_crc32c(0x9u, big + off, cut);
      assert_int_equal(bf_crc32c(first, big + off + cut, lengths[k] - cut), whole);
    }
  free(big);
}

static void test_round_trip(void **state) {
  (void)state;
  char path[300];
  seg_path("a.wal", path, sizeof path);
  write_records(path, 100);
  uint64_t torn = 99;
  collected_t *c = read_all(path, &torn);
  assert_int_equal(c->n, 100);
  assert_int_equal(torn, 0);
  assert_string_equal(c->records[0], "record-0");
  assert_string_equal(c->records[99], "record-99");
  free(c);
  bf_wal_segment_t *seg;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_wal_segment_create(path, &seg, &err), BF_EEXIST);
}

static void test_torn_tail_every_cut(void **state) {
  (void)state;
  char path[300];
  seg_path("torn.wal", path, sizeof path);
  write_records(path, 3);
  struct stat st;
  st.st_size = logical_size(3); /* where the last record ends (padding may follow) */
  /* Cut the file at every length inside the last record: two records survive. */
  int last_len = 12 + (int)strlen("record-2");
  for (int cut = 1; cut <= last_len; cut++) {
    char copy[300];
    seg_path("cut.wal", copy, sizeof copy);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cp %s %s", path, copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(truncate(copy, st.st_size - cut), 0);
    uint64_t torn = 0;
    collected_t *c = read_all(copy, &torn);
    assert_int_equal(c->n, 2);
    assert_int_equal(torn, (uint64_t)(last_len - cut)); /* the partial record's bytes */
    free(c);
    /* Adoption cut the torn bytes off: a second read sees a clean segment. */
    c = read_all(copy, &torn);
    assert_int_equal(c->n, 2);
    assert_int_equal(torn, 0);
    free(c);
    unlink(copy);
  }
}

static void flip_byte(const char *path, long off) {
  int fd = open(path, O_RDWR);
  char b;
  assert_int_equal(pread(fd, &b, 1, off), 1);
  b ^= 0x40;
  assert_int_equal(pwrite(fd, &b, 1, off), 1);
  close(fd);
}

static void test_damage_in_the_middle_is_skipped_and_reported(void **state) {
  (void)state;
  char path[300];
  seg_path("corrupt.wal", path, sizeof path);
  write_records(path, 5);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  flip_byte(path, 8 + 3 * (12 + 8) + 12 + 2); /* a payload byte of the fourth record */
  collected_t *c = calloc(1, sizeof *c);
  bf_wal_segment_t *seg;
  int adopted;
  uint64_t torn = 1, damaged_bytes = 0, regions = 0;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_wal_segment_adopt(path, &seg, &adopted, &err), BF_OK);
  assert_int_equal(bf_wal_segment_read(seg, collect, c, &torn, &err), BF_OK);
  bf_wal_segment_damage(seg, &damaged_bytes, &regions);
  bf_wal_segment_close(seg, 0);
  /* The records after the damage are read; only the damaged one is lost. */
  assert_int_equal(c->n, 4);
  assert_string_equal(c->records[2], "record-2");
  assert_string_equal(c->records[3], "record-4");
  assert_int_equal(torn, 0);
  assert_int_equal(damaged_bytes, 12 + 8);
  assert_int_equal(regions, 1);
  free(c);
  /* Nothing was cut: the file keeps the damaged record for inspection. */
  struct stat after;
  assert_int_equal(stat(path, &after), 0);
  assert_int_equal(after.st_size, st.st_size);
}

static void test_damaged_last_record_is_a_torn_tail(void **state) {
  (void)state;
  char path[300];
  seg_path("torn-last.wal", path, sizeof path);
  write_records(path, 5);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  flip_byte(path, 8 + 4 * (12 + 8) + 12 + 2);
  uint64_t torn = 0;
  collected_t *c = read_all(path, &torn);
  assert_int_equal(c->n, 4);
  free(c);
  /* Adoption cut the unfinished record (and any padding after it) off the file. */
  struct stat after;
  assert_int_equal(stat(path, &after), 0);
  assert_int_equal(after.st_size, logical_size(5) - (12 + 8));
  assert_int_equal(torn, (uint64_t)(st.st_size - after.st_size));
}

static void test_locked_segment_not_adopted(void **state) {
  (void)state;
  char path[300];
  seg_path("owned.wal", path, sizeof path);
  bf_wal_segment_t *owner, *other;
  int adopted = 1;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_wal_segment_create(path, &owner, &err), BF_OK);
  assert_int_equal(bf_wal_segment_adopt(path, &other, &adopted, &err), BF_OK);
  assert_false(adopted);
  assert_null(other);
  bf_wal_segment_close(owner, 1);
  assert_int_equal(bf_wal_segment_adopt(path, &other, &adopted, &err), BF_OK);
  assert_false(adopted); /* deleted by its owner */
}

typedef struct writer_arg {
  bf_wal_segment_t *seg;
  int id;
} writer_arg_t;

static void *writer(void *p) {
  writer_arg_t *a = p;
  bf_error_t err;
  bf_error_init(&err);
  for (int i = 0; i < 50; i++) {
    char rec[32];
    int len = snprintf(rec, sizeof rec, "w%d-%d", a->id, i);
    uint64_t lsn;
    if (bf_wal_append(a->seg, rec, (size_t)len, &lsn, &err) != BF_OK) return (void *)1;
    if (bf_wal_sync(a->seg, lsn, &err) != BF_OK) return (void *)1;
  }
  return NULL;
}

static void test_group_commit_concurrent_writers(void **state) {
  (void)state;
  char path[300];
  seg_path("group.wal", path, sizeof path);
  bf_wal_segment_t *seg;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_wal_segment_create(path, &seg, &err), BF_OK);
  pthread_t threads[8];
  writer_arg_t args[8];
  for (int i = 0; i < 8; i++) {
    args[i].seg = seg;
    args[i].id = i;
    assert_int_equal(pthread_create(&threads[i], NULL, writer, &args[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    void *rc;
    pthread_join(threads[i], &rc);
    assert_null(rc);
  }
  bf_wal_segment_close(seg, 0);
  collected_t *c = read_all(path, NULL);
  assert_int_equal(c->n, 400);
  /* Each writer's records appear in its own order. */
  int next[8] = {0};
  for (int i = 0; i < c->n; i++) {
    int w, k;
    assert_int_equal(sscanf(c->records[i], "w%d-%d", &w, &k), 2);
    assert_int_equal(k, next[w]++);
  }
  free(c);
}

static void test_failed_write_leaves_segment_valid(void **state) {
  (void)state;
  char path[300];
  seg_path("full.wal", path, sizeof path);
  bf_wal_segment_t *seg;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_wal_segment_create(path, &seg, &err), BF_OK);
  uint64_t lsn;
  assert_int_equal(bf_wal_append(seg, "first", 5, &lsn, &err), BF_OK);
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 8192; /* the next record does not fit (past two direct-I/O blocks) */
  signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  static char big[9000];
  memset(big, 'x', sizeof big);
  assert_int_equal(bf_wal_append(seg, big, sizeof big, &lsn, &err), BF_EFULL);
  assert_non_null(strstr(err.message, "writing the WAL"));
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  assert_int_equal(bf_wal_append(seg, "second", 6, &lsn, &err), BF_OK);
  assert_int_equal(bf_wal_sync(seg, lsn, &err), BF_OK);
  bf_wal_segment_close(seg, 0);
  uint64_t torn = 1;
  collected_t *c = read_all(path, &torn);
  assert_int_equal(c->n, 2);
  assert_string_equal(c->records[1], "second");
  assert_int_equal(torn, 0);
  free(c);
}

static void test_rejects_bad_sizes_and_foreign_files(void **state) {
  (void)state;
  char path[300];
  seg_path("foreign.wal", path, sizeof path);
  FILE *f = fopen(path, "w");
  fputs("not a wal segment at all", f);
  fclose(f);
  bf_wal_segment_t *seg;
  int adopted;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_wal_segment_adopt(path, &seg, &adopted, &err), BF_ECORRUPT);
  seg_path("sizes.wal", path, sizeof path);
  assert_int_equal(bf_wal_segment_create(path, &seg, &err), BF_OK);
  uint64_t lsn;
  assert_int_equal(bf_wal_append(seg, "", 0, &lsn, &err), BF_EINVAL);
  bf_wal_segment_close(seg, 1);
}

/* Record i of the sizes test: size_of(i) bytes, byte k = (i * 7 + k) % 251. */
static const size_t sizes[] = {1,  4084, 4083, 4085, 4096, 5000, 1, (1u << 20) + 3, 3u << 20,
                               12, 4071, 16372, 16373, 200, 16384};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

static uint8_t *pattern(size_t i) {
  uint8_t *p = malloc(sizes[i]);
  for (size_t k = 0; k < sizes[i]; k++) p[k] = (uint8_t)((i * 7 + k) % 251);
  return p;
}

typedef struct checked {
  size_t n;
  int bad;
} checked_t;

static int check_pattern(void *ctx, const uint8_t *payload, size_t n) {
  checked_t *c = ctx;
  size_t i = c->n++ % N_SIZES;
  uint8_t *want = pattern(i);
  if (n != sizes[i] || memcmp(payload, want, n) != 0) c->bad++;
  free(want);
  return BF_OK;
}

static void append_sizes(bf_wal_segment_t *seg) {
  bf_error_t err;
  bf_error_init(&err);
  uint64_t lsn = 0;
  for (size_t i = 0; i < N_SIZES; i++) {
    uint8_t *p = pattern(i);
    assert_int_equal(bf_wal_append(seg, p, sizes[i], &lsn, &err), BF_OK);
    free(p);
  }
  assert_int_equal(bf_wal_sync(seg, lsn, &err), BF_OK);
}

static void test_records_of_every_size_round_trip(void **state) {
  (void)state;
  char path[300];
  seg_path("sizes-rt.wal", path, sizeof path);
  bf_wal_segment_t *seg;
  int adopted;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_wal_segment_create(path, &seg, &err), BF_OK);
  append_sizes(seg);
  uint64_t logical = bf_wal_segment_size(seg);
  bf_wal_segment_close(seg, 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  /* Direct appends leave whole blocks, zeros after the last record (the rest of
   * its block, blocks written ahead of small appends); buffered ones end at it. */
  if (bf__wal_direct_io) {
    assert_true((uint64_t)st.st_size >= (logical + 4095) / 4096 * 4096);
    assert_int_equal(st.st_size % 4096, 0);
    FILE *f = fopen(path, "rb");
    assert_int_equal(fseek(f, (long)logical, SEEK_SET), 0);
    int ch;
    while ((ch = fgetc(f)) != EOF) assert_int_equal(ch, 0);
    fclose(f);
  } else {
    assert_int_equal((uint64_t)st.st_size, logical);
  }
  /* Adopted (padding is no torn tail), appended to again after the last partial
   * block, read back whole. */
  for (int round = 1; round <= 2; round++) {
    assert_int_equal(bf_wal_segment_adopt(path, &seg, &adopted, &err), BF_OK);
    assert_true(adopted);
    checked_t c = {0, 0};
    uint64_t torn = 1;
    assert_int_equal(bf_wal_segment_read(seg, check_pattern, &c, &torn, &err), BF_OK);
    assert_int_equal(c.n, round * N_SIZES);
    assert_int_equal(c.bad, 0);
    assert_int_equal(torn, 0);
    if (round == 1) append_sizes(seg);
    bf_wal_segment_close(seg, 0);
  }
}

/* A file system that refuses direct I/O only when it is tried (EINVAL on the
 * write): that append and every later one go through the page cache, the records
 * before and after it intact and no padding left behind. An I/O error is reported
 * and the segment stays valid. */
static void test_direct_io_refused_falls_back_to_buffered(void **state) {
  (void)state;
  if (!bf__wal_direct_io) skip(); /* the buffered round has no direct I/O to refuse */
  char path[300];
  seg_path("refused.wal", path, sizeof path);
  bf_wal_segment_t *seg;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_wal_segment_create(path, &seg, &err), BF_OK);
  uint64_t lsn;
  assert_int_equal(bf_wal_append(seg, "record-0", 8, &lsn, &err), BF_OK);
  bf__wal_direct_fault = EIO;
  assert_int_equal(bf_wal_append(seg, "lost", 4, &lsn, &err), BF_EIO);
  bf__wal_direct_fault = EINVAL;
  for (int i = 1; i < 4; i++) {
    char rec[32];
    int len = snprintf(rec, sizeof rec, "record-%d", i);
    assert_int_equal(bf_wal_append(seg, rec, (size_t)len, &lsn, &err), BF_OK);
  }
  assert_int_equal(bf_wal_sync(seg, lsn, &err), BF_OK);
  bf_wal_segment_close(seg, 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_size, logical_size(4));
  uint64_t torn = 1;
  collected_t *c = read_all(path, &torn);
  assert_int_equal(c->n, 4);
  assert_string_equal(c->records[0], "record-0");
  assert_string_equal(c->records[3], "record-3");
  assert_int_equal(torn, 0);
  free(c);
  bf__wal_direct_fault = 0;
}

static int run_all(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32c_known_value),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_torn_tail_every_cut),
      cmocka_unit_test(test_damage_in_the_middle_is_skipped_and_reported),
      cmocka_unit_test(test_damaged_last_record_is_a_torn_tail),
      cmocka_unit_test(test_locked_segment_not_adopted),
      cmocka_unit_test(test_group_commit_concurrent_writers),
      cmocka_unit_test(test_failed_write_leaves_segment_valid),
      cmocka_unit_test(test_rejects_bad_sizes_and_foreign_files),
      cmocka_unit_test(test_records_of_every_size_round_trip),
      cmocka_unit_test(test_direct_io_refused_falls_back_to_buffered),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

int main(void) {
  bf__wal_direct_io = 1;
  int failed = run_all();
  bf__wal_direct_io = 0;
  return failed + run_all();
}
