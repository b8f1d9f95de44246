/* bifrost.v1.Bifrost request handlers (see service.h). InsertBatch decodes the IPC
 * stream, checks fingerprint, schema and nulls, and hands the batch to the table
 * store (WAL + group commit + tail; see table_store.h), which makes it durable
 * and visible before the acknowledgement. */
#include "server/service.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bifrost/ipc.h"
#include "bifrost/v1/bifrost.pb-c.h"
#include "server/batch_check.h"
#include "server/insert_request.h"
#include "server/log.h"
#include "server/result_pool.h"
#include "server/counters.h"
#include "server/server_stats.h"
#include "server/service_auth.h"
#include "server/service_internal.h"
#include "server/table_store_internal.h"
#include "server/table_evolve.h"
#include "server/table_lifecycle.h"

/* ---- helpers ------------------------------------------------------------------ */

static void reply_message(bf_rpc_call_t *call, const ProtobufCMessage *msg) {
  size_t size = protobuf_c_message_get_packed_size(msg);
  uint8_t *bytes = malloc(size ? size : 1);
  if (bytes == NULL) {
    bf_rpc_call_finish(call, BF_ENOMEM, "out of memory");
    return;
  }
  protobuf_c_message_pack(msg, bytes);
  bf_rpc_call_reply(call, bytes, size);
  free(bytes);
}

/* protobuf-c cuts a string field at an embedded NUL byte ("nul\0x" arrives as
 * "nul"), so a request whose text fields held one packs smaller than it came.
 * Refusing it keeps a cut name or statement from being taken for another. */
static int refuse_cut_text(bf_rpc_call_t *call, const ProtobufCMessage *msg, size_t size) {
  if (protobuf_c_message_get_packed_size(msg) == size) return 0;
  bf_rpc_call_finish(call, BF_EINVAL,
                     "the request has a NUL byte in a text field (names, schemas, ids and SQL "
                     "cannot contain one) or is not canonically encoded");
  return 1;
}

static void fail(bf_rpc_call_t *call, const bf_error_t *err) {
  bf_rpc_call_finish(call, err->status, err->message);
}

static int check_name(const Bifrost__V1__TableName *name, bf_error_t *err) {
  if (name == NULL) return bf_error_set(err, BF_EINVAL, "request has no table name");
  BF_RETURN_NOT_OK(bf_namespace_validate(name->catalog, "catalog", err));
  BF_RETURN_NOT_OK(bf_namespace_validate(name->schema_name, "schema_name", err));
  return bf_namespace_validate(name->table, "table", err);
}

static bf_table_t *lookup(bf_service_t *s, const Bifrost__V1__TableName *name, bf_error_t *err) {
  if (check_name(name, err) != BF_OK) return NULL;
  bf_table_t *t = bf_registry_find(s->registry, name->catalog, name->schema_name, name->table);
  if (t == NULL)
    bf_error_set(err, BF_ENOTFOUND, "table %s.%s.%s is not registered", name->catalog,
                 name->schema_name, name->table);
  return t;
}

/* Loads the table's snapshot and WAL if this server has not yet, and publishes its
 * view (a table registered by another server sharing the data directory becomes
 * queryable here on first use). Caller holds t->mu. */
static int table_open(bf_service_t *s, bf_table_t *t, bf_error_t *err) {
  return bf_store_open_table(s->store, t, err);
}

/* ---- RegisterTable --------------------------------------------------------------- */

static void handle_register(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes,
                            size_t size) {
  bf_error_t err;
  bf_error_init(&err);
  Bifrost__V1__RegisterTableRequest *req =
      bifrost__v1__register_table_request__unpack(NULL, size, req_bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed RegisterTableRequest");
    return;
  }
  if (refuse_cut_text(call, &req->base, size)) {
    bifrost__v1__register_table_request__free_unpacked(req, NULL);
    return;
  }
  bf_table_t *t = NULL;
  int created = 0;
  int status = check_name(req->name, &err);
  int merge = req->schema_mode && strcmp(req->schema_mode, "merge") == 0;
  if (status == BF_OK && req->schema_mode && req->schema_mode[0] && !merge)
    status = bf_error_set(&err, BF_EINVAL, "unknown schema_mode '%s' (\"merge\", or empty for strict)",
                          req->schema_mode);
  if (status == BF_OK)
    status = bf__service_authorize(s, call, BF_VERB_WRITE, req->name->catalog,
                                   req->name->schema_name, req->name->table, &err);
  if (status == BF_OK)
    status = bf_registry_register(s->registry, req->name->catalog, req->name->schema_name,
                                  req->name->table, req->json_schema,
                                  (const char *const *)req->partition_columns,
                                  req->n_partition_columns, req->fingerprint, &t, &created,
                                  &err);
  int evolved = 0;
  if (status == BF_EMISMATCH && bf_store_register_mismatch(
                                    s->store, s->registry, req->name->catalog,
                                    req->name->schema_name, req->name->table, req->json_schema,
                                    (const char *const *)req->partition_columns,
                                    req->n_partition_columns, merge, &t, &err) == BF_OK) {
    status = BF_OK;
    evolved = 1;
  }
  if (status == BF_OK) {
    pthread_mutex_lock(&t->mu);
    status = table_open(s, t, &err);
    if (status == BF_OK) bf_store_prepare_inserts(s->store, t); /* a producer's inserts follow */
    pthread_mutex_unlock(&t->mu);
  }
  if (status != BF_OK) {
    fail(call, &err);
  } else {
    if (created) BF_LOG_INFO("registered table %s (fingerprint %s)", t->fqn, t->fingerprint);
    Bifrost__V1__RegisterTableResponse resp = BIFROST__V1__REGISTER_TABLE_RESPONSE__INIT;
    resp.status = created ? "created" : evolved ? "evolved" : "already_exists";
    /* A registered older version is answered with its own fingerprint. */
    const bf_schema_version_t *known =
        req->fingerprint && req->fingerprint[0] ? bf_table_find_version(t, req->fingerprint) : NULL;
    resp.fingerprint = known ? (char *)known->fingerprint : t->fingerprint;
    reply_message(call, &resp.base);
  }
  bifrost__v1__register_table_request__free_unpacked(req, NULL);
}

/* ---- InsertBatch ------------------------------------------------------------------- */

static void handle_insert(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes,
                          size_t size) {
  bf_error_t err;
  bf_error_init(&err);
  bf_insert_request_t body;
  Bifrost__V1__InsertBatchRequest *req = bf_insert_request_unpack(call, req_bytes, size, &body);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed InsertBatchRequest");
    return;
  }
  if (refuse_cut_text(call, &req->base, body.unpacked_size)) {
    bf_insert_request_free(req, &body);
    return;
  }
  bf_ipc_reader_t *reader = NULL;
  struct ArrowSchema table_schema = {0}, batch_schema = {0};
  struct ArrowArray *batches = NULL;
  size_t n_batches = 0;
  uint64_t rows = 0;
  int64_t decoded_bytes = 0;
  int duplicate = 0;
  int64_t version = -1;
  int status = BF_OK;
  const char *producer_id = req->producer_id && req->producer_id[0] ? req->producer_id : NULL;

  bf_table_t *t = lookup(s, req->name, &err);
  if (t == NULL) {
    status = err.status;
    goto done;
  }
  status = bf__service_authorize(s, call, BF_VERB_WRITE, t->catalog, t->schema_name, t->table, &err);
  if (status != BF_OK) goto done;
  /* Any registered schema version: an older version's batch is appended by
   * column name, its rows null in the columns added since. */
  const bf_schema_version_t *version_schema = bf_table_find_version(t, req->fingerprint);
  if (version_schema == NULL) {
    status = bf_error_set(&err, BF_EMISMATCH,
                          "fingerprint mismatch for table %s: the table has %s, the batch has %s",
                          t->fqn, t->fingerprint, req->fingerprint[0] ? req->fingerprint : "(none)");
    goto done;
  }
  if (req->sequence > (uint64_t)INT64_MAX) {
    status = bf_error_set(&err, BF_EINVAL, "sequence %llu is out of range (at most 2^63-1)",
                          (unsigned long long)req->sequence);
    goto done;
  }
  if (req->after_sequence != 0 && (req->after_sequence >= req->sequence || producer_id == NULL)) {
    status = bf_error_set(&err, BF_EINVAL,
                          "after_sequence %llu must name an earlier batch of the same producer "
                          "(sequence %llu, producer id %s)",
                          (unsigned long long)req->after_sequence, (unsigned long long)req->sequence,
                          producer_id ? "set" : "missing");
    goto done;
  }
  /* the batches borrow the request's bytes (no copy) when body.backing is set */
  status = body.backing ? bf_ipc_reader_create_borrowed(body.ipc, body.ipc_len, body.backing, &reader, &err)
                        : bf_ipc_reader_create(body.ipc, body.ipc_len, &reader, &err);
  if (status == BF_OK) status = bf_ipc_reader_schema(reader, &batch_schema, &err);
  if (status == BF_OK) status = bf_schema_to_arrow(&version_schema->schema, &table_schema, &err);
  if (status == BF_OK) status = bf_batch_check_schema(&table_schema, &batch_schema, &err);
  while (status == BF_OK) {
    struct ArrowArray batch;
    int has_batch = 0;
    status = bf_ipc_reader_next(reader, &batch, &has_batch, &err);
    if (status != BF_OK || !has_batch) break;
    status = bf_batch_check_nulls(&table_schema, &batch, &err);
    if (status == BF_OK)
      status = bf_batch_check_size(&batch_schema, &batch, s->max_batch_bytes,
                                   (int64_t)body.ipc_len, &decoded_bytes, &err);
    if (status == BF_OK)
      status = bf_batch_check_partition_values(&batch_schema, &batch,
                                               (const char *const *)t->partition_columns,
                                               t->n_partition_columns, &err);
    struct ArrowArray *grown = realloc(batches, (n_batches + 1) * sizeof *grown);
    if (grown) batches = grown; /* kept even when the batch is refused: freed at done */
    else status = bf_error_set(&err, BF_ENOMEM, "out of memory");
    if (status != BF_OK) {
      bf_arrow_array_release(&batch);
      break;
    }
    bf_arrow_array_move(&batch, &batches[n_batches]);
    rows += (uint64_t)batches[n_batches].length;
    n_batches++;
  }
  if (status != BF_OK) {
    if (status == BF_ECORRUPT) err.status = status = BF_EINVAL;
    bf_error_prefix(&err, "invalid batch for %s", t->fqn);
    goto done;
  }

  bf_store_insert_t in = {.producer_id = producer_id, .sequence = (int64_t)req->sequence,
                         .after_sequence = (int64_t)req->after_sequence,
                         .ipc = body.ipc, .ipc_len = body.ipc_len,
                         .schema = &batch_schema, .batches = batches, .n_batches = n_batches,
                         .rows = rows,
                         /* borrowed buffers hold the whole request while the tail keeps them */
                         .decoded_bytes = body.backing && (int64_t)size > decoded_bytes ? (int64_t)size
                                                                                        : decoded_bytes};
  status = bf_store_insert(s->store, t, &in, &duplicate, &version, &err);
  /* An I/O error is this server's trouble, not the batch's: the generation it hit
   * is sealed and the next attempt writes a new WAL segment, so the producer should
   * retry (UNAVAILABLE) rather than give the batch up. */
  if (status == BF_EIO) err.status = status = BF_EUNAVAILABLE;

done:
  if (t != NULL && t->store != NULL) { /* counters for metrics and ServerStats */
    bf_table_counters_t *c = &t->store->counters;
    if (status != BF_OK) bf_stats_add(&c->refused[bf_refused_reason(status)], 1);
    else if (duplicate) bf_stats_add(&c->duplicates, 1);
    else {
      bf_stats_add(&c->rows_acked, (int64_t)rows);
      bf_stats_add(&c->bytes_acked, (int64_t)body.ipc_len);
    }
  }
  if (status != BF_OK) {
    bf_log_at(BF_LOG_LEVEL_WARN, __FILE__, t ? t->fqn : NULL, producer_id ? producer_id : "",
              "InsertBatch rejected: %s", err.message);
    fail(call, &err);
  } else {
    Bifrost__V1__InsertBatchResponse resp = BIFROST__V1__INSERT_BATCH_RESPONSE__INIT;
    resp.rows_accepted = duplicate ? 0 : rows;
    resp.duplicate = duplicate;
    resp.delta_version = version;
    reply_message(call, &resp.base);
  }
  for (size_t i = 0; i < n_batches; i++) bf_arrow_array_release(&batches[i]);
  free(batches);
  bf_arrow_schema_release(&table_schema);
  bf_arrow_schema_release(&batch_schema);
  bf_ipc_reader_destroy(reader);
  bf_insert_request_free(req, &body);
}

/* ---- Query ------------------------------------------------------------------------------ */

/* One QueryResponse {bytes ipc_chunk = 1}: its protobuf framing (tag, length
 * varint) is written here and the chunk's storage handed to gRPC as is, so the
 * result bytes are not copied again on their way out; the engine writes the next
 * batch into a buffer gRPC gave back (result_pool.c). */
static int send_chunk(void *ctx, bf_buffer_t *chunk) {
  bf_rpc_call_t *call = ctx;
  bf_stats_add(&bf_server_counters.result_bytes, (int64_t)chunk->size);
  uint8_t prefix[11];
  size_t n = 0;
  prefix[n++] = 0x0A; /* field 1, length-delimited */
  for (uint64_t v = chunk->size; ; v >>= 7) {
    if (v < 0x80) {
      prefix[n++] = (uint8_t)v;
      break;
    }
    prefix[n++] = (uint8_t)(v | 0x80);
  }
  uint8_t *data;
  size_t size;
  bf_result_buffer_t *taken = bf_result_pool_take(chunk, &data, &size);
  if (taken == NULL) return 1; /* out of memory: stops the query */
  return bf_rpc_call_send_owned(call, prefix, n, data, size, bf_result_pool_release, taken) != BF_OK;
}

static int client_gone(void *ctx) { return bf_rpc_call_cancelled(ctx); }

/* Every table a query names passes the caller's read grant; a name
 * "<table>@v<N>" (time travel) also gets its view over version N's files built
 * here, before the statement is planned. */
#define MAX_VERSION_VIEWS 16
typedef struct query_ctx {
  bf__query_access_t access; /* first: bf__service_query_table_check takes it */
  char versions[MAX_VERSION_VIEWS][3 * BF_NAMESPACE_MAX_BYTES + 40]; /* views in use */
  size_t n_versions;
} query_ctx_t;

static int query_table_check(void *ctx, const char *catalog, const char *schema_name,
                             const char *table, bf_error_t *err) {
  query_ctx_t *q = ctx;
  bf__query_access_t *access = &q->access;
  char base[BF_NAMESPACE_MAX_BYTES + 1];
  int64_t version = 0;
  if (!bf_store_parse_version_name(table, base, sizeof base, &version))
    return bf__service_query_table_check(ctx, catalog, schema_name, table, err);
  BF_RETURN_NOT_OK(bf__service_query_table_check(ctx, catalog, schema_name, base, err));
  bf_registry_t *r = access->service->registry;
  bf_table_t *t = NULL;
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->n_tables && t == NULL; i++)
    if (strcasecmp(r->tables[i]->catalog, catalog) == 0 &&
        strcasecmp(r->tables[i]->schema_name, schema_name) == 0 &&
        strcasecmp(r->tables[i]->table, base) == 0)
      t = r->tables[i];
  pthread_mutex_unlock(&r->mu);
  if (t == NULL)
    return bf_error_set(err, BF_ENOTFOUND, "table %s.%s.%s is not registered (named as %s)",
                        catalog, schema_name, base, table);
  if (q->n_versions == MAX_VERSION_VIEWS)
    return bf_error_set(err, BF_EINVAL, "a query may name at most %d table versions",
                        MAX_VERSION_VIEWS);
  int status = bf_store_version_view(access->service->store, t, version, q->versions[q->n_versions],
                                     sizeof q->versions[0], err);
  if (status == BF_OK) q->n_versions++;
  return status;
}

static void handle_query(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes, size_t size) {
  bf_error_t err;
  bf_error_init(&err);
  Bifrost__V1__QueryRequest *req = bifrost__v1__query_request__unpack(NULL, size, req_bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed QueryRequest");
    return;
  }
  if (refuse_cut_text(call, &req->base, size)) {
    bifrost__v1__query_request__free_unpacked(req, NULL);
    return;
  }
  bf_query_param_t *params = NULL;
  int status = bf__service_params_from_pb(req, &params, &err);
  int64_t rows = 0;
  if (status == BF_OK)
  {
    query_ctx_t *q = calloc(1, sizeof *q);
    if (q == NULL) {
      status = bf_error_set(&err, BF_ENOMEM, "out of memory");
    } else {
      q->access.service = s;
      q->access.call = call;
      status = bf_engine_query(s->engine, req->sql, params, req->n_params,
                               bf_rpc_call_time_left(call), client_gone, send_chunk, call,
                               query_table_check, q, &rows, &err);
      for (size_t i = 0; i < q->n_versions; i++) bf_store_version_view_release(s->store, q->versions[i]);
      free(q);
    }
  }
  bf__service_params_free(params, req->n_params);
  if (status == BF_OK)
    bf_rpc_call_finish(call, BF_OK, "");
  else
    fail(call, &err);
  bifrost__v1__query_request__free_unpacked(req, NULL);
}

/* ---- ListTables / DescribeTable ------------------------------------------------------------ */

typedef struct info_storage {
  Bifrost__V1__TableInfo info;
  Bifrost__V1__TableName name;
  char *arrow_schema_json;
  char *fingerprints[BF_MAX_SCHEMA_VERSIONS];
  size_t n_versions;
} info_storage_t;

static void fill_info(const bf_service_t *s, bf_table_t *t, info_storage_t *st) {
  Bifrost__V1__TableInfo init_info = BIFROST__V1__TABLE_INFO__INIT;
  Bifrost__V1__TableName init_name = BIFROST__V1__TABLE_NAME__INIT;
  st->info = init_info;
  st->name = init_name;
  st->name.catalog = t->catalog;
  st->name.schema_name = t->schema_name;
  st->name.table = t->table;
  st->info.name = &st->name;
  st->info.fingerprint = t->fingerprint;
  st->info.n_partition_columns = t->n_partition_columns;
  st->info.partition_columns = t->partition_columns;
  const bf_schema_version_t *current = bf_table_current_version(t);
  st->info.fingerprint = (char *)current->fingerprint;
  st->info.json_schema = current->json_schema;
  st->n_versions = __atomic_load_n(&t->n_versions, __ATOMIC_ACQUIRE);
  for (size_t i = 0; i < st->n_versions; i++) st->fingerprints[i] = t->versions[i]->fingerprint;
  st->info.n_schema_fingerprints = st->n_versions;
  st->info.schema_fingerprints = st->fingerprints;
  st->arrow_schema_json = NULL;
  bf_schema_parse_json(&current->schema, &st->arrow_schema_json, NULL);
  st->info.arrow_schema_json = st->arrow_schema_json ? st->arrow_schema_json : "{}";
  /* Relative to the data directory: queries learn nothing about the host. */
  size_t root = strlen(s->registry->data_dir);
  st->info.location = strncmp(t->dir, s->registry->data_dir, root) == 0 && t->dir[root] == '/'
                          ? t->dir + root + 1
                          : t->table;
  st->info.created_at_ms = t->created_at_ms;
  pthread_mutex_lock(&t->mu);
  if (bf_table_ensure_snapshot(t, NULL) == BF_OK) {
    st->info.delta_version = t->snapshot.version;
    st->info.tail_rows = bf_store_tail_rows(t);
    st->info.num_rows = st->info.tail_rows;
    st->info.num_files = (int64_t)t->snapshot.n_files;
    for (size_t i = 0; i < t->snapshot.n_files; i++) {
      st->info.num_rows += t->snapshot.files[i].num_records;
      st->info.size_bytes += t->snapshot.files[i].size_bytes;
    }
  } else {
    st->info.delta_version = -1;
  }
  pthread_mutex_unlock(&t->mu);
}

static void handle_list(bf_service_t *s, bf_rpc_call_t *call) {
  size_t n = 0;
  bf_table_t **tables = bf__service_readable_tables(s, call, &n);
  info_storage_t *storage = calloc(n ? n : 1, sizeof *storage);
  Bifrost__V1__TableInfo **infos = calloc(n ? n : 1, sizeof *infos);
  if (tables == NULL || storage == NULL || infos == NULL) {
    bf_rpc_call_finish(call, BF_ENOMEM, "out of memory");
  } else {
    for (size_t i = 0; i < n; i++) {
      fill_info(s, tables[i], &storage[i]);
      infos[i] = &storage[i].info;
    }
    Bifrost__V1__ListTablesResponse resp = BIFROST__V1__LIST_TABLES_RESPONSE__INIT;
    resp.n_tables = n;
    resp.tables = infos;
    reply_message(call, &resp.base);
    for (size_t i = 0; i < n; i++) free(storage[i].arrow_schema_json);
  }
  free(infos);
  free(storage);
  free(tables);
}

static void handle_describe(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes,
                            size_t size) {
  bf_error_t err;
  bf_error_init(&err);
  Bifrost__V1__DescribeTableRequest *req =
      bifrost__v1__describe_table_request__unpack(NULL, size, req_bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed DescribeTableRequest");
    return;
  }
  if (refuse_cut_text(call, &req->base, size)) {
    bifrost__v1__describe_table_request__free_unpacked(req, NULL);
    return;
  }
  /* The grant is checked on the name first: no answer tells a caller whether a
   * table it may not read exists. */
  bf_table_t *t = NULL;
  if (check_name(req->name, &err) == BF_OK &&
      bf__service_authorize(s, call, BF_VERB_READ, req->name->catalog, req->name->schema_name,
                            req->name->table, &err) == BF_OK)
    t = lookup(s, req->name, &err);
  if (t == NULL) {
    fail(call, &err);
  } else {
    info_storage_t st;
    fill_info(s, t, &st);
    Bifrost__V1__DescribeTableResponse resp = BIFROST__V1__DESCRIBE_TABLE_RESPONSE__INIT;
    resp.table = &st.info;
    reply_message(call, &resp.base);
    free(st.arrow_schema_json);
  }
  bifrost__v1__describe_table_request__free_unpacked(req, NULL);
}

/* ---- MaintainTable ----------------------------------------------------------------------------- */

static void handle_maintain(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes,
                            size_t size) {
  bf_error_t err;
  bf_error_init(&err);
  Bifrost__V1__MaintainTableRequest *req =
      bifrost__v1__maintain_table_request__unpack(NULL, size, req_bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed MaintainTableRequest");
    return;
  }
  if (refuse_cut_text(call, &req->base, size)) {
    bifrost__v1__maintain_table_request__free_unpacked(req, NULL);
    return;
  }
  static const struct {
    const char *name;
    unsigned bit;
  } ops[] = {{"flush", BF_MAINT_FLUSH},
             {"optimize", BF_MAINT_OPTIMIZE},
             {"checkpoint", BF_MAINT_CHECKPOINT},
             {"vacuum", BF_MAINT_VACUUM},
             {"cleanup_log", BF_MAINT_CLEANUP_LOG},
             {"verify", BF_MAINT_VERIFY}};
  unsigned bits = 0;
  int status = BF_OK;
  for (size_t i = 0; i < req->n_operations && status == BF_OK; i++) {
    unsigned bit = 0;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
      if (strcmp(req->operations[i], ops[k].name) == 0) bit = ops[k].bit;
    if (bit == 0)
      status = bf_error_set(&err, BF_EINVAL,
                            "unknown maintenance operation '%s' (flush, optimize, checkpoint, "
                            "verify, vacuum, cleanup_log)",
                            req->operations[i]);
    bits |= bit;
  }
  if (status == BF_OK && bits == 0)
    status = bf_error_set(&err, BF_EINVAL, "no maintenance operation given");
  if (status == BF_OK && req->override_retention && !(req->retention_hours >= 0))
    status = bf_error_set(&err, BF_EINVAL, "retention_hours must be >= 0");
  double retention = req->override_retention ? req->retention_hours : -1;
  if (status == BF_OK) status = check_name(req->name, &err);
  if (status == BF_OK)
    status = bf__service_authorize(s, call, BF_VERB_ADMIN, req->name->catalog,
                                   req->name->schema_name, req->name->table, &err);
  bf_table_t *t = status == BF_OK ? lookup(s, req->name, &err) : NULL;
  if (status == BF_OK && t == NULL) status = err.status;
  bf_store_result_t result = {0};
  if (status == BF_OK)
    status = bf_store_maintain(s->store, t, bits, retention, &result, &err);
  if (status != BF_OK) {
    fail(call, &err);
  } else {
    Bifrost__V1__MaintainTableResponse resp = BIFROST__V1__MAINTAIN_TABLE_RESPONSE__INIT;
    resp.delta_version = result.version;
    resp.rows_flushed = result.rows_flushed;
    resp.files_added = result.files_added;
    resp.files_removed = result.files_removed;
    resp.files_deleted = result.files_deleted;
    resp.log_files_deleted = result.log_files_deleted;
    resp.checkpoint_version = result.checkpoint_version;
    resp.files_verified = result.files_verified;
    resp.n_bad_files = result.n_bad_files;
    resp.bad_files = result.bad_files;
    reply_message(call, &resp.base);
  }
  bf_store_result_reset(&result);
  bifrost__v1__maintain_table_request__free_unpacked(req, NULL);
}

/* ---- helpers shared with service_lifecycle.c (service_internal.h) ------------------------- */

void bf__service_reply(bf_rpc_call_t *call, const ProtobufCMessage *msg) { reply_message(call, msg); }
int bf__service_refuse_cut_text(bf_rpc_call_t *call, const ProtobufCMessage *msg, size_t size) {
  return refuse_cut_text(call, msg, size);
}
int bf__service_check_name(const Bifrost__V1__TableName *name, bf_error_t *err) {
  return check_name(name, err);
}
bf_table_t *bf__service_lookup(bf_service_t *s, const Bifrost__V1__TableName *name, bf_error_t *err) {
  return lookup(s, name, err);
}

/* bf_stats_may_read_fn for the ServerStats RPC: the service's read grants. */
static int may_read(void *ctx, bf_rpc_call_t *call, const char *catalog, const char *schema_name,
                    const char *table) {
  return bf__service_may_read(ctx, call, catalog, schema_name, table);
}

void bf_service_handle(void *ctx, bf_rpc_call_t *call, const char *method, const uint8_t *request,
                       size_t request_size) {
  bf_service_t *s = ctx;
  if (strcmp(method, BF_RPC_METHOD_INSERT_BATCH) == 0)
    handle_insert(s, call, request, request_size);
  else if (strcmp(method, BF_RPC_METHOD_QUERY) == 0)
    handle_query(s, call, request, request_size);
  else if (strcmp(method, BF_RPC_METHOD_REGISTER_TABLE) == 0)
    handle_register(s, call, request, request_size);
  else if (strcmp(method, BF_RPC_METHOD_LIST_TABLES) == 0)
    handle_list(s, call);
  else if (strcmp(method, BF_RPC_METHOD_DESCRIBE_TABLE) == 0)
    handle_describe(s, call, request, request_size);
  else if (strcmp(method, BF_RPC_METHOD_MAINTAIN_TABLE) == 0)
    handle_maintain(s, call, request, request_size);
  else if (strcmp(method, BF_RPC_METHOD_TABLE_HISTORY) == 0)
    bf__service_handle_history(s, call, request, request_size);
  else if (strcmp(method, BF_RPC_METHOD_DROP_TABLE) == 0)
    bf__service_handle_drop(s, call, request, request_size);
  else if (strcmp(method, BF_RPC_METHOD_TRUNCATE_TABLE) == 0)
    bf__service_handle_truncate(s, call, request, request_size);
  else if (strcmp(method, BF_RPC_METHOD_LOGIN) == 0)
    bf__service_handle_login(s, call, request, request_size);
  else if (strcmp(method, BF_RPC_METHOD_SERVER_STATS) == 0)
    bf_server_stats_handle(s->registry, s->store, may_read, s, call, request, request_size);
  else {
    char message[300];
    snprintf(message, sizeof message, "unknown method %s", method);
    bf_rpc_call_finish(call, BF_EINVAL, message);
  }
}
