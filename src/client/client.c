/* Typed bifrost.v1 client: packs requests with protobuf-c, runs them over a
 * bf_rpc_channel_t and unpacks the responses into plain C values or JSON text. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/client.h"
#include "bifrost/v1/bifrost.pb-c.h"

/* Packs msg, runs a unary call and unpacks the response with `descriptor`. An
 * idempotent request (a read, a registration) is resent once when the transport
 * failed (bf_rpc_channel_unary_idempotent). */
static int unary(bf_rpc_channel_t *channel, const char *method, const ProtobufCMessage *msg,
                 const ProtobufCMessageDescriptor *descriptor, double timeout_secs, int idempotent,
                 ProtobufCMessage **out, bf_error_t *err) {
  size_t size = protobuf_c_message_get_packed_size(msg);
  uint8_t *request = malloc(size ? size : 1);
  if (request == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  protobuf_c_message_pack(msg, request);
  bf_buffer_t response;
  bf_buffer_init(&response);
  int status = idempotent ? bf_rpc_channel_unary_idempotent(channel, method, request, size,
                                                            timeout_secs, &response, err)
                          : bf_rpc_channel_unary(channel, method, request, size, timeout_secs,
                                                 &response, err);
  free(request);
  if (status == BF_OK) {
    *out = protobuf_c_message_unpack(descriptor, NULL, response.size,
                                     response.data ? response.data : (const uint8_t *)"");
    if (*out == NULL) status = bf_error_set(err, BF_ECORRUPT, "malformed response to %s", method);
  }
  bf_buffer_reset(&response);
  return status;
}

static void set_name(Bifrost__V1__TableName *pb, const bf_table_name_t *name) {
  pb->catalog = (char *)(name->catalog ? name->catalog : "");
  pb->schema_name = (char *)(name->schema_name ? name->schema_name : "");
  pb->table = (char *)(name->table ? name->table : "");
}

int bf_client_register_table(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                             const char *json_schema, const char *const *partition_columns,
                             size_t n_partition_columns, const char *fingerprint,
                             double timeout_secs, char status_out[32], char fingerprint_out[33],
                             bf_error_t *err) {
  return bf_client_register_table_mode(channel, name, json_schema, partition_columns,
                                       n_partition_columns, fingerprint, "", timeout_secs,
                                       status_out, fingerprint_out, err);
}

int bf_client_register_table_mode(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                                  const char *json_schema, const char *const *partition_columns,
                                  size_t n_partition_columns, const char *fingerprint,
                                  const char *schema_mode, double timeout_secs,
                                  char status_out[32], char fingerprint_out[33], bf_error_t *err) {
  Bifrost__V1__TableName pb_name = BIFROST__V1__TABLE_NAME__INIT;
  set_name(&pb_name, name);
  Bifrost__V1__RegisterTableRequest req = BIFROST__V1__REGISTER_TABLE_REQUEST__INIT;
  req.name = &pb_name;
  req.json_schema = (char *)(json_schema ? json_schema : "");
  req.n_partition_columns = n_partition_columns;
  req.partition_columns = (char **)partition_columns;
  req.fingerprint = (char *)(fingerprint ? fingerprint : "");
  req.schema_mode = (char *)(schema_mode ? schema_mode : "");
  ProtobufCMessage *resp_msg = NULL;
  BF_RETURN_NOT_OK(unary(channel, BF_RPC_METHOD_REGISTER_TABLE, &req.base,
                         &bifrost__v1__register_table_response__descriptor, timeout_secs, 1, &resp_msg,
                         err));
  Bifrost__V1__RegisterTableResponse *resp = (Bifrost__V1__RegisterTableResponse *)resp_msg;
  snprintf(status_out, 32, "%s", resp->status);
  snprintf(fingerprint_out, 33, "%s", resp->fingerprint);
  protobuf_c_message_free_unpacked(resp_msg, NULL);
  return BF_OK;
}

int bf_client_insert_batch(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                           const char *fingerprint, const uint8_t *ipc, size_t ipc_size,
                           const char *producer_id, uint64_t sequence, double timeout_secs,
                           uint64_t *rows_accepted, int *duplicate, bf_error_t *err) {
  uint8_t *copy = malloc(ipc_size ? ipc_size : 1);
  bf_shared_t *body = copy ? bf_shared_new(copy, ipc_size, free) : NULL;
  if (body == NULL) {
    free(copy);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  if (ipc_size) memcpy(copy, ipc, ipc_size);
  int status = bf_client_insert_batch_after(channel, name, fingerprint, body, producer_id, sequence,
                                            0, timeout_secs, rows_accepted, duplicate, err);
  bf_shared_unref(body);
  return status;
}

/* Field 3 of InsertBatchRequest (arrow_ipc), length-delimited: its key and length,
 * written after the other fields (a protobuf message's fields may come in any
 * order) so that the IPC bytes themselves follow as the body. */
#define INSERT_ARROW_IPC_KEY ((3u << 3) | 2u)

static size_t put_varint(uint8_t *out, uint64_t v) {
  size_t n = 0;
  for (; v >= 0x80; v >>= 7) out[n++] = (uint8_t)(v | 0x80);
  out[n++] = (uint8_t)v;
  return n;
}

int bf_client_insert_batch_after(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                                 const char *fingerprint, bf_shared_t *ipc,
                                 const char *producer_id, uint64_t sequence, uint64_t after_sequence,
                                 double timeout_secs, uint64_t *rows_accepted, int *duplicate,
                                 bf_error_t *err) {
  Bifrost__V1__TableName pb_name = BIFROST__V1__TABLE_NAME__INIT;
  set_name(&pb_name, name);
  Bifrost__V1__InsertBatchRequest req = BIFROST__V1__INSERT_BATCH_REQUEST__INIT;
  req.name = &pb_name;
  req.fingerprint = (char *)(fingerprint ? fingerprint : "");
  req.producer_id = (char *)(producer_id ? producer_id : "");
  req.sequence = sequence;
  req.after_sequence = after_sequence;
  size_t fields = protobuf_c_message_get_packed_size(&req.base);
  uint8_t *head = malloc(fields + 11);
  if (head == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  protobuf_c_message_pack(&req.base, head);
  size_t head_size = fields + put_varint(head + fields, INSERT_ARROW_IPC_KEY);
  head_size += put_varint(head + head_size, bf_shared_size(ipc));
  bf_buffer_t response;
  bf_buffer_init(&response);
  int status = bf_rpc_channel_unary_body(channel, BF_RPC_METHOD_INSERT_BATCH, head, head_size, ipc,
                                         timeout_secs, &response, err);
  free(head);
  Bifrost__V1__InsertBatchResponse *resp = NULL;
  if (status == BF_OK) {
    const uint8_t *bytes = response.data ? response.data : (const uint8_t *)"";
    resp = bifrost__v1__insert_batch_response__unpack(NULL, response.size, bytes);
    if (resp == NULL)
      status =
          bf_error_set(err, BF_ECORRUPT, "malformed response to %s", BF_RPC_METHOD_INSERT_BATCH);
  }
  bf_buffer_reset(&response);
  if (status != BF_OK) return status;
  if (rows_accepted) *rows_accepted = resp->rows_accepted;
  if (duplicate) *duplicate = resp->duplicate;
  bifrost__v1__insert_batch_response__free_unpacked(resp, NULL);
  return BF_OK;
}

/* NUL-terminated copy of a length-delimited text (protobuf-c strings). */
static int copy_text(const bf_query_param_t *p, size_t index, char **out, bf_error_t *err) {
  size_t len = p->str ? p->str_len : 0;
  if (len && memchr(p->str, '\0', len) != NULL)
    return bf_error_set(err, BF_EINVAL, "query parameter %zu contains a NUL character", index);
  *out = malloc(len + 1);
  if (*out == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  if (len) memcpy(*out, p->str, len);
  (*out)[len] = '\0';
  return BF_OK;
}

/* Fills one scalar; *text receives a malloc'd copy for STRING / DECIMAL. */
static int fill_scalar(const bf_query_param_t *p, size_t index, Bifrost__V1__QueryParam *pb,
                       char **text, bf_error_t *err) {
  switch (p->type) {
    case BF_PARAM_NULL:
      pb->value_case = BIFROST__V1__QUERY_PARAM__VALUE_NULL_VALUE;
      pb->null_value = 1;
      return BF_OK;
    case BF_PARAM_INT64:
      pb->value_case = BIFROST__V1__QUERY_PARAM__VALUE_INT_VALUE;
      pb->int_value = p->value.i64;
      return BF_OK;
    case BF_PARAM_DOUBLE:
      pb->value_case = BIFROST__V1__QUERY_PARAM__VALUE_DOUBLE_VALUE;
      pb->double_value = p->value.f64;
      return BF_OK;
    case BF_PARAM_STRING:
      BF_RETURN_NOT_OK(copy_text(p, index, text, err));
      pb->value_case = BIFROST__V1__QUERY_PARAM__VALUE_STRING_VALUE;
      pb->string_value = *text;
      return BF_OK;
    case BF_PARAM_DECIMAL:
      BF_RETURN_NOT_OK(copy_text(p, index, text, err));
      pb->value_case = BIFROST__V1__QUERY_PARAM__VALUE_DECIMAL_VALUE;
      pb->decimal_value = *text;
      return BF_OK;
    case BF_PARAM_BLOB: /* bytes fields are length-delimited: borrowed until packed */
      pb->value_case = BIFROST__V1__QUERY_PARAM__VALUE_BYTES_VALUE;
      pb->bytes_value.len = p->str ? p->str_len : 0;
      pb->bytes_value.data = (uint8_t *)(p->str ? p->str : "");
      return BF_OK;
    case BF_PARAM_BOOL:
      pb->value_case = BIFROST__V1__QUERY_PARAM__VALUE_BOOL_VALUE;
      pb->bool_value = p->value.boolean;
      return BF_OK;
    case BF_PARAM_DATE:
      pb->value_case = BIFROST__V1__QUERY_PARAM__VALUE_DATE_VALUE;
      pb->date_value = p->value.days;
      return BF_OK;
    case BF_PARAM_TIMESTAMP:
      pb->value_case = BIFROST__V1__QUERY_PARAM__VALUE_TIMESTAMP_VALUE;
      pb->timestamp_value = p->value.i64;
      return BF_OK;
    case BF_PARAM_LIST:
      return bf_error_set(err, BF_EINVAL, "query parameter %zu: a list inside a list is not supported",
                          index);
  }
  return bf_error_set(err, BF_EINVAL, "query parameter %zu has unknown type %d", index, (int)p->type);
}

/* A list parameter's protobuf, in one allocation: the list message, its items,
 * their pointers and the items' text copies (freed by list_block_free). */
typedef struct list_block {
  Bifrost__V1__QueryParamList list;
  size_t n;
  Bifrost__V1__QueryParam *items;
  Bifrost__V1__QueryParam **ptrs;
  char **texts;
} list_block_t;

static void list_block_free(list_block_t *block) {
  if (block == NULL) return;
  for (size_t k = 0; block->texts && k < block->n; k++) free(block->texts[k]);
  free(block->texts);
  free(block->ptrs);
  free(block->items);
  free(block);
}

static int fill_list(const bf_query_param_t *p, size_t index, Bifrost__V1__QueryParam *pb,
                     list_block_t **out, bf_error_t *err) {
  size_t n = p->n_items;
  if (n > BF_PARAM_LIST_MAX_ITEMS)
    return bf_error_set(err, BF_EINVAL, "query parameter %zu: a list of %zu values is over the limit of %d",
                        index, n, BF_PARAM_LIST_MAX_ITEMS);
  list_block_t *block = calloc(1, sizeof *block);
  if (block == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  *out = block;
  block->n = n;
  block->items = calloc(n ? n : 1, sizeof *block->items);
  block->ptrs = calloc(n ? n : 1, sizeof *block->ptrs);
  block->texts = calloc(n ? n : 1, sizeof *block->texts);
  if (block->items == NULL || block->ptrs == NULL || block->texts == NULL)
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  bifrost__v1__query_param_list__init(&block->list);
  for (size_t k = 0; k < n; k++) {
    bifrost__v1__query_param__init(&block->items[k]);
    block->ptrs[k] = &block->items[k];
    BF_RETURN_NOT_OK(fill_scalar(&p->items[k], index, &block->items[k], &block->texts[k], err));
  }
  block->list.n_items = n;
  block->list.items = block->ptrs;
  pb->value_case = BIFROST__V1__QUERY_PARAM__VALUE_LIST_VALUE;
  pb->list_value = &block->list;
  return BF_OK;
}

/* Fills pb from params; texts[i] / lists[i] receive what param i allocated. */
static int fill_params(const bf_query_param_t *params, size_t n_params, Bifrost__V1__QueryParam *pb,
                       Bifrost__V1__QueryParam **pb_ptrs, char **strings, list_block_t **lists,
                       bf_error_t *err) {
  for (size_t i = 0; i < n_params; i++) {
    bifrost__v1__query_param__init(&pb[i]);
    pb_ptrs[i] = &pb[i];
    if (params[i].type == BF_PARAM_LIST)
      BF_RETURN_NOT_OK(fill_list(&params[i], i + 1, &pb[i], &lists[i], err));
    else
      BF_RETURN_NOT_OK(fill_scalar(&params[i], i + 1, &pb[i], &strings[i], err));
  }
  return BF_OK;
}

/* Packs a QueryRequest into a malloc'd buffer. */
static int pack_query(const char *sql, const bf_query_param_t *params, size_t n_params,
                      uint8_t **out, size_t *out_size, bf_error_t *err) {
  size_t n_alloc = n_params ? n_params : 1;
  Bifrost__V1__QueryParam *pb = calloc(n_alloc, sizeof *pb);
  Bifrost__V1__QueryParam **pb_ptrs = calloc(n_alloc, sizeof *pb_ptrs);
  char **strings = calloc(n_alloc, sizeof *strings);
  list_block_t **lists = calloc(n_alloc, sizeof *lists);
  uint8_t *packed = NULL;
  int status = BF_OK;
  if (pb == NULL || pb_ptrs == NULL || strings == NULL || lists == NULL) {
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
    goto done;
  }
  status = fill_params(params, n_params, pb, pb_ptrs, strings, lists, err);
  if (status != BF_OK) goto done;
  Bifrost__V1__QueryRequest req = BIFROST__V1__QUERY_REQUEST__INIT;
  req.sql = (char *)(sql ? sql : "");
  req.n_params = n_params;
  req.params = pb_ptrs;
  size_t size = bifrost__v1__query_request__get_packed_size(&req);
  packed = malloc(size ? size : 1);
  if (packed == NULL) {
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
    goto done;
  }
  bifrost__v1__query_request__pack(&req, packed);
  *out = packed;
  *out_size = size;
done:
  for (size_t i = 0; strings && i < n_params; i++) free(strings[i]);
  for (size_t i = 0; lists && i < n_params; i++) list_block_free(lists[i]);
  free(strings);
  free(lists);
  free(pb);
  free(pb_ptrs);
  return status;
}

int bf_client_query_open(bf_rpc_channel_t *channel, const char *sql,
                         const bf_query_param_t *params, size_t n_params, double timeout_secs,
                         bf_rpc_stream_t **out, bf_error_t *err) {
  uint8_t *request = NULL;
  size_t size = 0;
  BF_RETURN_NOT_OK(pack_query(sql, params, n_params, &request, &size, err));
  int status = bf_rpc_stream_open(channel, BF_RPC_METHOD_QUERY, request, size, timeout_secs, out, err);
  free(request);
  return status;
}

/* Where the IPC bytes sit in a QueryResponse {bytes ipc_chunk = 1} as our server
 * frames it (tag 0x0A, length varint, the bytes): 1 with *offset and *size set, 0 for
 * any other encoding (then protobuf-c decodes it). */
static int simple_framing(const bf_rpc_message_t *m, size_t *offset, size_t *size) {
  size_t total = bf_rpc_message_size(m);
  uint8_t head[11];
  size_t n = bf_rpc_message_read(m, 0, head, sizeof head);
  if (total == 0) {
    *offset = *size = 0;
    return 1;
  }
  if (n < 2 || head[0] != 0x0A) return 0;
  uint64_t len = 0;
  for (size_t i = 1; i < n && i < 11; i++) {
    len |= (uint64_t)(head[i] & 0x7F) << (7 * (i - 1));
    if (!(head[i] & 0x80)) {
      if (len != total - (i + 1)) return 0;
      *offset = i + 1;
      *size = (size_t)len;
      return 1;
    }
  }
  return 0;
}

int bf_client_query_next_message(bf_rpc_stream_t *stream, bf_rpc_message_t **message,
                                 size_t *ipc_offset, size_t *ipc_size, int *done,
                                 bf_rpc_cancel_fn should_cancel, void *cancel_ctx, bf_error_t *err) {
  int status = bf_rpc_stream_next_message(stream, message, done, should_cancel, cancel_ctx, err);
  if (status != BF_OK || *done) return status;
  if (simple_framing(*message, ipc_offset, ipc_size)) return BF_OK;
  /* Another valid encoding (unknown fields, a repeated field): decode it. */
  size_t total = bf_rpc_message_size(*message);
  uint8_t *packed = malloc(total);
  Bifrost__V1__QueryResponse *resp = NULL;
  int oom = packed == NULL;
  if (packed != NULL) {
    bf_rpc_message_read(*message, 0, packed, total);
    resp = bifrost__v1__query_response__unpack(NULL, total, packed);
  }
  free(packed);
  bf_rpc_message_free(*message);
  *message = NULL;
  if (resp == NULL) {
    bf_rpc_stream_cancel(stream);
    return oom ? bf_error_set(err, BF_ENOMEM, "out of memory receiving a query result")
               : bf_error_set(err, BF_ECORRUPT, "malformed query response");
  }
  uint8_t *copy = malloc(resp->ipc_chunk.len ? resp->ipc_chunk.len : 1);
  if (copy != NULL && resp->ipc_chunk.len) memcpy(copy, resp->ipc_chunk.data, resp->ipc_chunk.len);
  size_t len = resp->ipc_chunk.len;
  bifrost__v1__query_response__free_unpacked(resp, NULL);
  if (copy == NULL || (*message = bf_rpc_message_wrap(copy, len)) == NULL) {
    bf_rpc_stream_cancel(stream);
    return bf_error_set(err, BF_ENOMEM, "out of memory receiving a query result");
  }
  *ipc_offset = 0;
  *ipc_size = len;
  return BF_OK;
}

int bf_client_query_next(bf_rpc_stream_t *stream, bf_buffer_t *chunk, int *done,
                         bf_rpc_cancel_fn should_cancel, void *cancel_ctx, bf_error_t *err) {
  bf_rpc_message_t *message = NULL;
  size_t offset = 0, size = 0;
  int status = bf_client_query_next_message(stream, &message, &offset, &size, done, should_cancel,
                                            cancel_ctx, err);
  if (status != BF_OK || *done) return status;
  chunk->size = 0;
  if (bf_buffer_reserve(chunk, size) != BF_OK) {
    bf_rpc_message_free(message);
    bf_rpc_stream_cancel(stream);
    return bf_error_set(err, BF_ENOMEM, "out of memory receiving a query result");
  }
  chunk->size = bf_rpc_message_read(message, offset, chunk->data, size);
  bf_rpc_message_free(message);
  return BF_OK;
}

int bf_client_query(bf_rpc_channel_t *channel, const char *sql, const bf_query_param_t *params,
                    size_t n_params, double timeout_secs, bf_rpc_cancel_fn should_cancel,
                    void *cancel_ctx, bf_buffer_t *ipc_out, bf_error_t *err) {
  bf_rpc_stream_t *stream;
  BF_RETURN_NOT_OK(bf_client_query_open(channel, sql, params, n_params, timeout_secs, &stream, err));
  /* The result is collected aside so ipc_out is untouched on failure. */
  bf_buffer_t result, chunk;
  bf_buffer_init(&result);
  bf_buffer_init(&chunk);
  int status, done = 0;
  for (;;) {
    status = bf_client_query_next(stream, &chunk, &done, should_cancel, cancel_ctx, err);
    if (status != BF_OK || done) break;
    if (result.size == 0 && chunk.size > 0) {
      bf_buffer_t empty = result; /* take the chunk's storage for the first one */
      result = chunk;
      chunk = empty;
    } else if (bf_buffer_append(&result, chunk.data, chunk.size) != BF_OK) {
      status = bf_error_set(err, BF_ENOMEM, "out of memory receiving a query result");
      break;
    }
  }
  bf_buffer_reset(&chunk);
  bf_rpc_stream_close(stream);
  if (status == BF_OK) {
    if (ipc_out->size == 0) {
      bf_buffer_t previous = *ipc_out; /* keep no capacity behind: swap, then free the old */
      *ipc_out = result;
      result = previous;
    } else if (bf_buffer_append(ipc_out, result.data, result.size) != BF_OK) {
      status = bf_error_set(err, BF_ENOMEM, "out of memory receiving a query result");
    }
  }
  bf_buffer_reset(&result);
  return status;
}

static json_t *table_info_json(const Bifrost__V1__TableInfo *info) {
  json_t *partitions = json_array();
  for (size_t i = 0; i < info->n_partition_columns; i++)
    json_array_append_new(partitions, json_string(info->partition_columns[i]));
  json_t *arrow_schema = json_loads(info->arrow_schema_json ? info->arrow_schema_json : "{}", 0, NULL);
  if (arrow_schema == NULL) arrow_schema = json_object();
  const Bifrost__V1__TableName *n = info->name;
  json_t *versions = json_array();
  for (size_t i = 0; i < info->n_schema_fingerprints; i++)
    json_array_append_new(versions, json_string(info->schema_fingerprints[i]));
  if (info->n_schema_fingerprints == 0) json_array_append_new(versions, json_string(info->fingerprint));
  return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
                   "catalog", n && n->catalog ? n->catalog : "", "schema_name",
                   n && n->schema_name ? n->schema_name : "", "table", n && n->table ? n->table : "",
                   "fingerprint", info->fingerprint, "partition_columns", partitions,
                   "json_schema", info->json_schema, "arrow_schema", arrow_schema, "location",
                   info->location, "delta_version", (json_int_t)info->delta_version, "num_files",
                   (json_int_t)info->num_files, "num_rows", (json_int_t)info->num_rows,
                   "tail_rows", (json_int_t)info->tail_rows,
                   "size_bytes", (json_int_t)info->size_bytes, "created_at_ms",
                   (json_int_t)info->created_at_ms, "schema_fingerprints", versions);
}

/* Serializes value (consumed). A NULL value means a table's metadata could not be
 * turned into JSON: out of memory, or text that is not valid UTF-8. */
static int dump_json(json_t *value, char **json_out, bf_error_t *err) {
  if (value == NULL)
    return bf_error_set(err, BF_ECORRUPT, "table metadata is not valid UTF-8 (or out of memory)");
  *json_out = json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(value);
  return *json_out ? BF_OK : bf_error_set(err, BF_ENOMEM, "out of memory");
}

int bf_client_list_tables(bf_rpc_channel_t *channel, double timeout_secs, char **json_out,
                          bf_error_t *err) {
  Bifrost__V1__ListTablesRequest req = BIFROST__V1__LIST_TABLES_REQUEST__INIT;
  ProtobufCMessage *resp_msg = NULL;
  BF_RETURN_NOT_OK(unary(channel, BF_RPC_METHOD_LIST_TABLES, &req.base,
                         &bifrost__v1__list_tables_response__descriptor, timeout_secs, 1, &resp_msg,
                         err));
  Bifrost__V1__ListTablesResponse *resp = (Bifrost__V1__ListTablesResponse *)resp_msg;
  json_t *list = json_array();
  for (size_t i = 0; list != NULL && i < resp->n_tables; i++) {
    json_t *table = table_info_json(resp->tables[i]);
    if (table == NULL || json_array_append_new(list, table) != 0) {
      json_decref(list);
      list = NULL;
    }
  }
  protobuf_c_message_free_unpacked(resp_msg, NULL);
  return dump_json(list, json_out, err);
}

int bf_client_describe_table(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                             double timeout_secs, char **json_out, bf_error_t *err) {
  Bifrost__V1__TableName pb_name = BIFROST__V1__TABLE_NAME__INIT;
  set_name(&pb_name, name);
  Bifrost__V1__DescribeTableRequest req = BIFROST__V1__DESCRIBE_TABLE_REQUEST__INIT;
  req.name = &pb_name;
  ProtobufCMessage *resp_msg = NULL;
  BF_RETURN_NOT_OK(unary(channel, BF_RPC_METHOD_DESCRIBE_TABLE, &req.base,
                         &bifrost__v1__describe_table_response__descriptor, timeout_secs, 1,
                         &resp_msg, err));
  Bifrost__V1__DescribeTableResponse *resp = (Bifrost__V1__DescribeTableResponse *)resp_msg;
  if (resp->table == NULL) {
    protobuf_c_message_free_unpacked(resp_msg, NULL);
    return bf_error_set(err, BF_ECORRUPT, "describe response without a table");
  }
  json_t *value = table_info_json(resp->table);
  protobuf_c_message_free_unpacked(resp_msg, NULL);
  return dump_json(value, json_out, err);
}

int bf_client_server_stats(bf_rpc_channel_t *channel, double timeout_secs, char **json_out,
                           bf_error_t *err) {
  Bifrost__V1__ServerStatsRequest req = BIFROST__V1__SERVER_STATS_REQUEST__INIT;
  ProtobufCMessage *resp_msg = NULL;
  BF_RETURN_NOT_OK(unary(channel, BF_RPC_METHOD_SERVER_STATS, &req.base,
                         &bifrost__v1__server_stats_response__descriptor, timeout_secs, 1, &resp_msg,
                         err));
  Bifrost__V1__ServerStatsResponse *resp = (Bifrost__V1__ServerStatsResponse *)resp_msg;
  json_t *tables = json_array();
  for (size_t i = 0; tables != NULL && i < resp->n_tables; i++) {
    const Bifrost__V1__TableStats *t = resp->tables[i];
    const Bifrost__V1__TableName *n = t->name;
    json_t *one = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "catalog", n && n->catalog ? n->catalog : "", "schema_name",
        n && n->schema_name ? n->schema_name : "", "table", n && n->table ? n->table : "",
        "num_rows", (json_int_t)t->num_rows, "tail_rows", (json_int_t)t->tail_rows, "tail_bytes",
        (json_int_t)t->tail_bytes, "num_files", (json_int_t)t->num_files, "size_bytes",
        (json_int_t)t->size_bytes, "delta_version", (json_int_t)t->delta_version,
        "rows_acknowledged", (json_int_t)t->rows_acknowledged, "bytes_acknowledged",
        (json_int_t)t->bytes_acknowledged, "inserts_refused", (json_int_t)t->inserts_refused,
        "duplicates_skipped", (json_int_t)t->duplicates_skipped, "flushes", (json_int_t)t->flushes,
        "last_flush_at_ms", (json_int_t)t->last_flush_at_ms, "compactions",
        (json_int_t)t->compactions);
    if (one == NULL || json_array_append_new(tables, one) != 0) {
      json_decref(tables);
      tables = NULL;
    }
  }
  json_t *value = tables == NULL ? NULL
      : json_pack("{s:s, s:s, s:f, s:I, s:I, s:I, s:I, s:o}", "version", resp->version,
                  "duckdb_version", resp->duckdb_version, "uptime_secs", resp->uptime_secs,
                  "started_at_ms", (json_int_t)resp->started_at_ms, "tail_bytes",
                  (json_int_t)resp->tail_bytes, "queries_running", (json_int_t)resp->queries_running,
                  "rpcs_total", (json_int_t)resp->rpcs_total, "tables", tables);
  protobuf_c_message_free_unpacked(resp_msg, NULL);
  return dump_json(value, json_out, err);
}

int bf_client_maintain_table(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                             const char *const *operations, size_t n_operations,
                             double retention_hours, double timeout_secs, char **json_out,
                             bf_error_t *err) {
  Bifrost__V1__TableName pb_name = BIFROST__V1__TABLE_NAME__INIT;
  set_name(&pb_name, name);
  Bifrost__V1__MaintainTableRequest req = BIFROST__V1__MAINTAIN_TABLE_REQUEST__INIT;
  req.name = &pb_name;
  req.operations = (char **)operations;
  req.n_operations = n_operations;
  req.override_retention = retention_hours >= 0;
  req.retention_hours = retention_hours >= 0 ? retention_hours : 0;
  ProtobufCMessage *resp_msg = NULL;
  BF_RETURN_NOT_OK(unary(channel, BF_RPC_METHOD_MAINTAIN_TABLE, &req.base,
                         &bifrost__v1__maintain_table_response__descriptor, timeout_secs, 0,
                         &resp_msg, err));
  Bifrost__V1__MaintainTableResponse *r = (Bifrost__V1__MaintainTableResponse *)resp_msg;
  json_t *value = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "delta_version",
                            (json_int_t)r->delta_version, "rows_flushed", (json_int_t)r->rows_flushed,
                            "files_added", (json_int_t)r->files_added, "files_removed",
                            (json_int_t)r->files_removed, "files_deleted",
                            (json_int_t)r->files_deleted, "log_files_deleted",
                            (json_int_t)r->log_files_deleted, "checkpoint_version",
                            (json_int_t)r->checkpoint_version);
  json_t *bad = json_array();
  for (size_t i = 0; i < r->n_bad_files; i++) json_array_append_new(bad, json_string(r->bad_files[i]));
  json_object_set_new(value, "files_verified", json_integer((json_int_t)r->files_verified));
  json_object_set_new(value, "bad_files", bad);
  protobuf_c_message_free_unpacked(resp_msg, NULL);
  return dump_json(value, json_out, err);
}

int bf_client_table_history(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                            double timeout_secs, char **json_out, bf_error_t *err) {
  Bifrost__V1__TableName pb_name = BIFROST__V1__TABLE_NAME__INIT;
  set_name(&pb_name, name);
  Bifrost__V1__TableHistoryRequest req = BIFROST__V1__TABLE_HISTORY_REQUEST__INIT;
  req.name = &pb_name;
  ProtobufCMessage *resp_msg = NULL;
  BF_RETURN_NOT_OK(unary(channel, BF_RPC_METHOD_TABLE_HISTORY, &req.base,
                         &bifrost__v1__table_history_response__descriptor, timeout_secs, 1,
                         &resp_msg, err));
  Bifrost__V1__TableHistoryResponse *r = (Bifrost__V1__TableHistoryResponse *)resp_msg;
  json_t *list = json_array();
  for (size_t i = 0; list != NULL && i < r->n_versions; i++) {
    const Bifrost__V1__TableVersion *v = r->versions[i];
    json_t *item = json_pack("{s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:b}", "version",
                             (json_int_t)v->version, "timestamp_ms", (json_int_t)v->timestamp_ms,
                             "operation", v->operation ? v->operation : "", "rows_added",
                             (json_int_t)v->rows_added, "rows_removed", (json_int_t)v->rows_removed,
                             "files_added", (json_int_t)v->files_added, "files_removed",
                             (json_int_t)v->files_removed, "schema_version",
                             (json_int_t)v->schema_version, "data_change", v->data_change);
    if (item == NULL || json_array_append_new(list, item) != 0) {
      json_decref(list);
      list = NULL;
    }
  }
  protobuf_c_message_free_unpacked(resp_msg, NULL);
  return dump_json(list, json_out, err);
}

int bf_client_truncate_table(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                             const char *confirm, double timeout_secs, char **json_out,
                             bf_error_t *err) {
  Bifrost__V1__TableName pb_name = BIFROST__V1__TABLE_NAME__INIT;
  set_name(&pb_name, name);
  Bifrost__V1__TruncateTableRequest req = BIFROST__V1__TRUNCATE_TABLE_REQUEST__INIT;
  req.name = &pb_name;
  req.confirm = (char *)(confirm ? confirm : "");
  ProtobufCMessage *resp_msg = NULL;
  BF_RETURN_NOT_OK(unary(channel, BF_RPC_METHOD_TRUNCATE_TABLE, &req.base,
                         &bifrost__v1__truncate_table_response__descriptor, timeout_secs, 0,
                         &resp_msg, err));
  Bifrost__V1__TruncateTableResponse *r = (Bifrost__V1__TruncateTableResponse *)resp_msg;
  json_t *value = json_pack("{s:I, s:I, s:I}", "delta_version", (json_int_t)r->delta_version,
                            "files_removed", (json_int_t)r->files_removed, "rows_removed",
                            (json_int_t)r->rows_removed);
  protobuf_c_message_free_unpacked(resp_msg, NULL);
  return dump_json(value, json_out, err);
}

int bf_client_drop_table(bf_rpc_channel_t *channel, const bf_table_name_t *name,
                         const char *confirm, int discard_wal, double timeout_secs,
                         char **json_out, bf_error_t *err) {
  Bifrost__V1__TableName pb_name = BIFROST__V1__TABLE_NAME__INIT;
  set_name(&pb_name, name);
  Bifrost__V1__DropTableRequest req = BIFROST__V1__DROP_TABLE_REQUEST__INIT;
  req.name = &pb_name;
  req.confirm = (char *)(confirm ? confirm : "");
  req.discard_wal = discard_wal != 0;
  ProtobufCMessage *resp_msg = NULL;
  BF_RETURN_NOT_OK(unary(channel, BF_RPC_METHOD_DROP_TABLE, &req.base,
                         &bifrost__v1__drop_table_response__descriptor, timeout_secs, 0,
                         &resp_msg, err));
  Bifrost__V1__DropTableResponse *r = (Bifrost__V1__DropTableResponse *)resp_msg;
  json_t *value = json_pack("{s:I, s:I}", "rows_discarded", (json_int_t)r->rows_discarded,
                            "files_deleted", (json_int_t)r->files_deleted);
  protobuf_c_message_free_unpacked(resp_msg, NULL);
  return dump_json(value, json_out, err);
}
