/* Flushes (table_writer.c): generations to Parquet, one Delta commit each. */
#ifndef BIFROST_SERVER_TABLE_WRITER_H
#define BIFROST_SERVER_TABLE_WRITER_H

#include "server/table_store_internal.h"

/* Seals the newest generation and writes every sealed one. Caller holds work_mu
 * (not t->mu). *rows receives the rows written. */
int bf__store_flush(bf_store_t *s, bf_table_t *t, int64_t *rows, bf_error_t *err);

#endif
