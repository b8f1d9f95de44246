/* Staged rows -> zstd Parquet files, one directory level per partition column
 * (scouter_partition_date first), partition columns kept out of the files; rows
 * that all share one date (and no other partition column) go straight into one
 * file of that date's directory. DuckDB's
 * COPY ... RETURN_STATS reports each written file with its partition values and
 * per-column statistics, so the Delta `add` actions match the files exactly. A null
 * partition value goes to a __HIVE_DEFAULT_PARTITION__ directory (DuckDB writes it,
 * and the string "NULL", to a directory named NULL). Uses the ingest database only,
 * never the sandboxed query database. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/engine_internal.h"
#include "storage/storage.h"

/* Copies a DuckDB string out of a vector into *out (NULL for a null entry).
 * BF_EINVAL for a string with a NUL byte inside (as a statistic it would be cut
 * short and not bound the data; as a partition value it cannot name a directory). */
static int vec_string(duckdb_vector v, idx_t row, char **out) {
  *out = NULL;
  duckdb_string_t *data = (duckdb_string_t *)duckdb_vector_get_data(v);
  uint64_t *valid = duckdb_vector_get_validity(v);
  if (valid && !duckdb_validity_row_is_valid(valid, row)) return BF_OK;
  uint32_t n = duckdb_string_t_length(data[row]);
  const char *bytes = duckdb_string_t_data(&data[row]);
  if (memchr(bytes, '\0', n)) return BF_EINVAL;
  if ((*out = malloc(n + 1)) == NULL) return BF_ENOMEM;
  memcpy(*out, bytes, n);
  (*out)[n] = '\0';
  return BF_OK;
}

static int vec_is_null(duckdb_vector v, idx_t row) {
  uint64_t *valid = duckdb_vector_get_validity(v);
  return valid && !duckdb_validity_row_is_valid(valid, row);
}

/* A MAP(VARCHAR, VARCHAR) entry as a JSON object (null values as JSON null), or a
 * MAP(VARCHAR, MAP(VARCHAR, VARCHAR)) as an object of objects (depth 2). A value
 * with a NUL byte is left out, or with strict makes the whole map NULL. */
static json_t *vec_map(duckdb_vector v, idx_t row, int depth, int strict) {
  json_t *out = json_object();
  if (out == NULL || vec_is_null(v, row)) return out;
  duckdb_list_entry *entries = (duckdb_list_entry *)duckdb_vector_get_data(v);
  duckdb_vector entry = duckdb_list_vector_get_child(v);
  duckdb_vector keys = duckdb_struct_vector_get_child(entry, 0);
  duckdb_vector values = duckdb_struct_vector_get_child(entry, 1);
  for (idx_t i = entries[row].offset; i < entries[row].offset + entries[row].length; i++) {
    char *key = NULL;
    if (vec_string(keys, i, &key) != BF_OK || key == NULL) {
      free(key);
      continue;
    }
    json_t *value;
    if (depth > 1) {
      value = vec_map(values, i, depth - 1, strict);
    } else {
      char *text = NULL;
      if (vec_string(values, i, &text) != BF_OK) {
        free(key);
        if (!strict) continue;
        json_decref(out);
        return NULL;
      }
      value = text ? json_stringn_nocheck(text, strlen(text)) : json_null();
      free(text);
    }
    json_object_set_new_nocheck(out, key, value);
    free(key);
  }
  return out;
}

/* Fills file->path (relative) from an absolute file name, and the partition values
 * from COPY's partition_keys (which tells a null from the string "NULL"; both land
 * in a directory named NULL). A file with a null partition value is moved to the
 * directory name delta-rs and Spark use for null, __HIVE_DEFAULT_PARTITION__. */
static int describe_file(const char *table_dir, const char *filename, json_t *keys,
                         const char *const *columns, size_t n_partitions, bf_delta_file_t *file,
                         bf_error_t *err) {
  size_t dir_len = strlen(table_dir);
  if (strncmp(filename, table_dir, dir_len) != 0 || filename[dir_len] != '/')
    return bf_error_set(err, BF_EINTERNAL, "DuckDB wrote %s outside %s", filename, table_dir);
  const char *rel = filename + dir_len + 1;
  file->partition_values = calloc(n_partitions + 1, sizeof *file->partition_values);
  if (file->partition_values == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  file->n_partition_values = n_partitions;
  bf_buffer_t moved;
  bf_buffer_init(&moved);
  int any_null = 0;
  const char *p = rel;
  for (size_t i = 0; i < n_partitions; i++) {
    json_t *value = json_object_get(keys, columns[i]);
    const char *slash = strchr(p, '/');
    if (value == NULL || slash == NULL) {
      bf_buffer_reset(&moved);
      return bf_error_set(err, BF_EINTERNAL, "unexpected partition path %s", rel);
    }
    int grown = BF_OK;
    if (json_is_string(value)) {
      if ((file->partition_values[i] = strdup(json_string_value(value))) == NULL) grown = BF_ENOMEM;
      if (grown == BF_OK) grown = bf_buffer_append(&moved, p, (size_t)(slash - p + 1));
    } else {
      any_null = 1;
      grown = bf_buffer_append(&moved, columns[i], strlen(columns[i]));
      if (grown == BF_OK) grown = bf_buffer_append(&moved, "=__HIVE_DEFAULT_PARTITION__/", 28);
    }
    if (grown != BF_OK) {
      bf_buffer_reset(&moved);
      return bf_error_set(err, BF_ENOMEM, "out of memory");
    }
    p = slash + 1;
  }
  if (bf_buffer_append(&moved, p, strlen(p) + 1) != BF_OK) {
    bf_buffer_reset(&moved);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  if (any_null) {
    char from[PATH_MAX], to[PATH_MAX];
    snprintf(from, sizeof from, "%s/%s", table_dir, rel);
    snprintf(to, sizeof to, "%s/%s", table_dir, (const char *)moved.data);
    char *dir = strdup(to);
    int status = dir ? BF_OK : BF_ENOMEM;
    if (dir) {
      *strrchr(dir, '/') = '\0';
      status = bf_storage_mkdirs(dir, err);
      free(dir);
    }
    if (status == BF_OK) status = bf_storage_rename(from, to, err);
    if (status != BF_OK) {
      bf_error_t ignored;
      bf_error_init(&ignored);
      bf_storage_delete(from, &ignored);
      bf_buffer_reset(&moved);
      return status == BF_ENOMEM ? bf_error_set(err, status, "out of memory") : status;
    }
  }
  file->path = strdup((const char *)moved.data);
  bf_buffer_reset(&moved);
  return file->path ? BF_OK : bf_error_set(err, BF_ENOMEM, "out of memory");
}

/* Reads COPY ... RETURN_STATS: filename, count, file_size_bytes, footer_size_bytes,
 * column_statistics, partition_keys. */
static int read_copy_result(duckdb_result *result, const char *table_dir,
                            const char *const *columns, size_t n_partitions, const char *only_date,
                            bf_delta_file_t **out_files, json_t ***out_stats, size_t *n_out,
                            bf_error_t *err) {
  bf_delta_file_t *files = NULL;
  json_t **stats = NULL;
  size_t n = 0, cap = 0;
  int status = BF_OK;
  int64_t now_ms = bf_time_now_ms();
  duckdb_data_chunk chunk;
  while (status == BF_OK && (chunk = duckdb_fetch_chunk(*result)) != NULL) {
    idx_t rows = duckdb_data_chunk_get_size(chunk);
    duckdb_vector names = duckdb_data_chunk_get_vector(chunk, 0);
    uint64_t *counts = (uint64_t *)duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 1));
    uint64_t *sizes = (uint64_t *)duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 2));
    duckdb_vector col_stats = duckdb_data_chunk_get_vector(chunk, 4);
    duckdb_vector keys = duckdb_data_chunk_get_vector(chunk, 5);
    for (idx_t r = 0; r < rows && status == BF_OK; r++) {
      if (n == cap) {
        cap = cap ? 2 * cap : 16;
        bf_delta_file_t *f = realloc(files, cap * sizeof *f);
        if (f) files = f;
        json_t **st = f ? realloc(stats, cap * sizeof *st) : NULL;
        if (st) stats = st;
        if (st == NULL) {
          status = bf_error_set(err, BF_ENOMEM, "out of memory");
          break;
        }
      }
      bf_delta_file_t *f = &files[n];
      memset(f, 0, sizeof *f);
      stats[n++] = vec_map(col_stats, r, 2, 0);
      char *filename = NULL;
      vec_string(names, r, &filename);
      /* A COPY without PARTITION_BY reports no partition keys: the one date is ours. */
      json_t *pkeys = only_date ? json_pack("{s:s}", BF_SYSCOL_PARTITION_DATE, only_date)
                                : vec_map(keys, r, 1, 1);
      status = filename && pkeys ? describe_file(table_dir, filename, pkeys, columns, n_partitions, f, err)
                                 : bf_error_set(err, pkeys ? BF_ENOMEM : BF_EINVAL,
                                                "a partition value of %s has a NUL byte or memory "
                                                "ran out", filename ? filename : "a file");
      free(filename);
      json_decref(pkeys);
      f->num_records = (int64_t)counts[r];
      f->size_bytes = (int64_t)sizes[r];
      f->modification_time_ms = now_ms;
    }
    duckdb_destroy_data_chunk(&chunk);
  }
  *out_files = files;
  *out_stats = stats;
  *n_out = n;
  return status;
}

/* The partition date of every staged row when there is exactly one and it is not
 * null ("YYYY-MM-DD", malloc'd), else NULL: then PARTITION_BY sorts the rows out.
 * Reads only the date column (the tail scan pushes the projection down). */
static char *single_date(duckdb_connection conn, const char *staged) {
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "SELECT CAST(min(");
  bf__sql_ident(&sql, BF_SYSCOL_PARTITION_DATE);
  bf__sql_append(&sql, ") AS VARCHAR), CAST(max(");
  bf__sql_ident(&sql, BF_SYSCOL_PARTITION_DATE);
  bf__sql_append(&sql, ") AS VARCHAR), count(*) - count(");
  bf__sql_ident(&sql, BF_SYSCOL_PARTITION_DATE);
  bf__sql_append(&sql, ") FROM ");
  bf__sql_ident(&sql, staged);
  const char *text = bf__sql_cstr(&sql);
  char *date = NULL;
  duckdb_result result;
  if (text && duckdb_query(conn, text, &result) == DuckDBSuccess) {
    char *lo = duckdb_value_varchar(&result, 0, 0), *hi = duckdb_value_varchar(&result, 1, 0);
    int64_t nulls = duckdb_value_int64(&result, 2, 0);
    /* Plain dates only: a year past 9999 or BC is left to PARTITION_BY's naming. */
    int plain = lo && strlen(lo) == 10 && lo[4] == '-' && lo[7] == '-' &&
                strspn(lo, "0123456789-") == 10;
    if (plain && hi && nulls == 0 && strcmp(lo, hi) == 0) date = strdup(lo);
    duckdb_free(lo);
    duckdb_free(hi);
  }
  if (text) duckdb_destroy_result(&result);
  bf_buffer_reset(&sql);
  return date;
}

/* The file a flush of one partition date writes, "<dir>/<date column>=<date>/part-<uuid>.parquet",
 * its directory created. */
static int one_partition_file(const char *table_dir, const char *date, char file[PATH_MAX],
                              bf_error_t *err) {
  char uuid[37];
  bf_uuid4_string(uuid);
  int n = snprintf(file, PATH_MAX, "%s/%s=%s/part-%s.parquet", table_dir, BF_SYSCOL_PARTITION_DATE,
                   date, uuid);
  if (n < 0 || n >= PATH_MAX)
    return bf_error_set(err, BF_EINVAL, "the table directory %s is too long", table_dir);
  char dir[PATH_MAX];
  memcpy(dir, file, PATH_MAX);
  *strrchr(dir, '/') = '\0';
  return bf_storage_mkdirs(dir, err);
}

/* Deletes what a failed partitioned COPY left: the files named part-<write_id>-*
 * in the partition directories below dir (levels more; the Delta log and _bifrost
 * are no partition directories). */
static void remove_partial_files(const char *dir, const char *write_id, size_t levels) {
  bf_storage_list_t list;
  bf_error_t err;
  bf_error_init(&err);
  if (bf_storage_list(dir, NULL, &list, &err) != BF_OK) return;
  char prefix[64];
  snprintf(prefix, sizeof prefix, "part-%s-", write_id);
  for (size_t i = 0; i < list.len; i++) {
    const char *name = list.items[i].name;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) continue;
    if (list.items[i].is_dir && levels > 0 && strchr(name, '=')) {
      remove_partial_files(path, write_id, levels - 1);
    } else if (!list.items[i].is_dir && strncmp(name, prefix, strlen(prefix)) == 0) {
      bf_error_init(&err);
      bf_storage_delete(path, &err);
    }
  }
  bf_storage_list_free(&list);
}

/* The COPY of the staged rows: into one_file (rows of a single partition date; the
 * date column left out of the file, as PARTITION_BY does) or, with one_file NULL,
 * with PARTITION_BY into a directory per partition value, each file named
 * part-<write_id>-<uuid>.parquet so that a failed COPY's files can be found. The single file skips
 * PARTITION_BY's buffering of every row per partition: measured on a 3M-row flush,
 * that buffering and the page faults of its fresh memory were a quarter of the
 * flush's CPU (docs/architecture.md). */
static void append_copy(bf_buffer_t *sql, const char *staged, const char *table_dir,
                        const char *const *columns, size_t n_parts, const char *one_file,
                        const char *write_id, bf__parquet_purpose_t purpose) {
  /* A flush gives up a column's dictionary past 10,000 distinct values per row group
   * (DuckDB's default: about 24,000): the analysis of high-cardinality columns was
   * the largest part of the flush's CPU, and columns with fewer values keep theirs.
   * Measured (docs/architecture.md): 14-20% less CPU per written row, the same
   * files for the benchmark's data. Compaction rewrites with the default. */
  bf__sql_append(sql, "COPY (SELECT * ");
  if (one_file) {
    bf__sql_append(sql, "EXCLUDE (");
    bf__sql_ident(sql, BF_SYSCOL_PARTITION_DATE);
    bf__sql_append(sql, ") ");
  }
  bf__sql_append(sql, "FROM ");
  bf__sql_ident(sql, staged);
  bf__sql_append(sql, ") TO ");
  bf__sql_string(sql, one_file ? one_file : table_dir);
  bf__sql_append(sql, " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880, RETURN_STATS");
  if (purpose == BF__PARQUET_FLUSH) bf__sql_append(sql, ", DICTIONARY_SIZE_LIMIT 10000");
  if (!one_file) {
    bf__sql_append(sql, ", FILENAME_PATTERN 'part-");
    bf__sql_append(sql, write_id);
    bf__sql_append(sql, "-{uuid}', APPEND, PARTITION_BY (");
    for (size_t i = 0; i < n_parts; i++) {
      if (i) bf__sql_append(sql, ", ");
      bf__sql_ident(sql, columns[i]);
    }
    bf__sql_append(sql, ")");
  }
  bf__sql_append(sql, ")");
}

int bf__engine_write_staged(duckdb_connection conn, const char *staged, const char *table_dir,
                            const bf_schema_t *schema, const char *const *partition_columns,
                            size_t n_partition_columns, bf__parquet_purpose_t purpose,
                            bf_delta_file_t **out_files, size_t *n_out_files, bf_error_t *err) {
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  duckdb_result result;
  int have_result = 0;
  bf_delta_file_t *files = NULL;
  json_t **stats = NULL;
  size_t n_files = 0;
  int status = BF_OK;
  size_t n_parts = 1 + n_partition_columns;
  const char **columns = malloc(n_parts * sizeof *columns);
  if (columns == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  columns[0] = BF_SYSCOL_PARTITION_DATE;
  for (size_t i = 0; i < n_partition_columns; i++) columns[i + 1] = partition_columns[i];
  char file[PATH_MAX] = "";
  char *only_date = n_partition_columns == 0 ? single_date(conn, staged) : NULL;
  if (only_date && (status = one_partition_file(table_dir, only_date, file, err)) != BF_OK) goto done;
  char write_id[37];
  bf_uuid4_string(write_id);
  write_id[8] = '\0'; /* 32 random bits: enough to tell this write's files from others */
  append_copy(&sql, staged, table_dir, columns, n_parts, only_date ? file : NULL, write_id, purpose);
  const char *copy_sql = bf__sql_cstr(&sql);
  if (copy_sql == NULL) {
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
    goto done;
  }
  if (duckdb_query(conn, copy_sql, &result) != DuckDBSuccess) {
    const char *msg = duckdb_result_error(&result);
    status = bf_error_set(err, msg && (strstr(msg, "No space left") || strstr(msg, "ENOSPC"))
                                   ? BF_EFULL : BF_EIO,
                          "writing Parquet failed: %s", msg);
    duckdb_destroy_result(&result);
    /* What the failed write left (a full disk): never named by a commit. */
    if (file[0]) {
      bf_error_t ignored;
      bf_error_init(&ignored);
      bf_storage_delete(file, &ignored);
    } else {
      remove_partial_files(table_dir, write_id, n_parts);
    }
    goto done;
  }
  have_result = 1;
  status = read_copy_result(&result, table_dir, columns, n_parts, only_date, &files, &stats, &n_files,
                            err);
  if (status == BF_OK)
    status = bf__engine_file_stats(conn, staged, schema, partition_columns, n_partition_columns,
                                   files, (json_t *const *)stats, n_files, err);
done:
  if (have_result) duckdb_destroy_result(&result);
  bf_buffer_reset(&sql);
  free(columns);
  free(only_date);
  for (size_t i = 0; i < n_files; i++) json_decref(stats[i]);
  free(stats);
  if (status != BF_OK) {
    bf__engine_remove_files(table_dir, files, n_files);
    for (size_t i = 0; i < n_files; i++) bf_delta_file_reset(&files[i]);
    free(files);
    return status;
  }
  *out_files = files;
  *n_out_files = n_files;
  return BF_OK;
}

void bf__engine_remove_files(const char *table_dir, const bf_delta_file_t *files, size_t n_files) {
  for (size_t i = 0; i < n_files; i++) {
    if (files[i].path == NULL) continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", table_dir, files[i].path);
    bf_error_t ignored;
    bf_error_init(&ignored);
    bf_storage_delete(path, &ignored);
  }
}
int bf_engine_rewrite_files(bf_engine_t *engine, const char *table_dir, const bf_schema_t *schema,
                            const char *const *partition_columns, size_t n_partition_columns,
                            const bf_delta_file_t *inputs, size_t n_inputs,
                            bf_delta_file_t **out_files, size_t *n_out_files, bf_error_t *err) {
  duckdb_connection conn;
  if (duckdb_connect(engine->ingest_db, &conn) != DuckDBSuccess)
    return bf_error_set(err, BF_EINTERNAL, "cannot connect to the ingest database");
  char uuid[37], staged[64];
  bf_uuid4_string(uuid);
  snprintf(staged, sizeof staged, "bf_rewrite_%.8s%.4s%.4s", uuid, uuid + 9, uuid + 14);
  bf_buffer_t sql;
  bf_buffer_init(&sql);
  bf__sql_append(&sql, "CREATE TEMP TABLE ");
  bf__sql_ident(&sql, staged);
  /* Every column of the inputs is kept, also those another writer added that our
   * schema does not know (union_by_name), so compaction never drops data. */
  bf__sql_append(&sql, " AS ");
  int status = bf__engine_files_relation(&sql, table_dir, schema, partition_columns,
                                         n_partition_columns, inputs, n_inputs, 1);
  const char *text = status == BF_OK ? bf__sql_cstr(&sql) : NULL;
  if (text == NULL)
    status = bf_error_set(err, status == BF_OK ? BF_ENOMEM : status, "cannot build the rewrite");
  else if ((status = bf__sql_exec(conn, text, err)) != BF_OK)
    bf_error_prefix(err, "reading the files to compact");
  if (status == BF_OK) {
    status = bf__engine_write_staged(conn, staged, table_dir, schema, partition_columns,
                                     n_partition_columns, BF__PARQUET_COMPACT, out_files, n_out_files,
                                     err);
  }
  bf_buffer_reset(&sql);
  duckdb_disconnect(&conn); /* drops the temp table */
  return status;
}
