/* Checks an InsertBatch must pass before any of it reaches the WAL: the batch's
 * Arrow schema against the table's, nulls in required columns, the batch's
 * decoded size against the server's bound (a small message can reference one
 * large value many times), and partition values that could never become a
 * directory name (so every acknowledged row can always be flushed). */
#ifndef BIFROST_SERVER_BATCH_CHECK_H
#define BIFROST_SERVER_BATCH_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/arrow.h"
#include "bifrost/error.h"

/* Same columns, same order, compatible types (strings in any of utf8, large
 * utf8 and utf8 view; timestamps in any spelling of UTC). BF_EINVAL names the
 * column. */
int bf_batch_check_schema(const struct ArrowSchema *want, const struct ArrowSchema *got,
                          bf_error_t *err);

/* Puts the columns of got (and of each of the n_batches struct arrays decoded
 * with it) into want's order by name, at every struct level (list items
 * included), by permuting child pointers in place. A column want has and got
 * lacks, one got has and want lacks, or a name got has twice is BF_EINVAL
 * naming it ("column 'a.b' is missing from the batch"). Types are not compared:
 * bf_batch_check_schema does that afterwards. */
int bf_batch_reorder_by_name(const struct ArrowSchema *want, struct ArrowSchema *got,
                             struct ArrowArray *batches, size_t n_batches, bf_error_t *err);

/* Non-nullable columns (per want) must have no nulls. */
int bf_batch_check_nulls(const struct ArrowSchema *want, const struct ArrowArray *batch,
                         bf_error_t *err);

/* Adds the batch's decoded size to *total and fails with BF_EINVAL, naming the
 * largest column and the sizes, once *total exceeds max_bytes (<= 0: no bound).
 * received_bytes is the size of the message, for the error text. */
int bf_batch_check_size(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                        int64_t max_bytes, int64_t received_bytes, int64_t *total,
                        bf_error_t *err);

/* Longest directory name a partition value may produce ("<column>=<escaped
 * value>"); file systems allow 255 bytes. */
#define BF_PARTITION_DIR_MAX 255

/* String values of the partition columns must fit a directory name, counting
 * each byte other than an ASCII letter or digit as three (its worst-case
 * escaping), must not be empty (Delta reads "" as null) and must not contain a NUL
 * byte. */
int bf_batch_check_partition_values(const struct ArrowSchema *schema,
                                    const struct ArrowArray *batch,
                                    const char *const *partition_columns,
                                    size_t n_partition_columns, bf_error_t *err);

#endif
