/* Tests for the typed bifrost.v1 client against an in-process fake server (a
 * bf_rpc_server whose handler implements the five methods minimally with protobuf-c):
 * requests arrive packed as the server expects, responses come back as C values, the
 * list/describe JSON carries the documented keys, and errors keep their bf status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/client.h"
#include "bifrost/v1/bifrost.pb-c.h"

#define FINGERPRINT "0123456789abcdef0123456789abcdef"
#define OTHER_FINGERPRINT "ffffffffffffffffffffffffffffffff"
#define QUERY_CHUNK (1u << 20)

typedef struct fake {
  pthread_mutex_t mu;
  int registered;             /* guarded by mu */
  uint64_t last_sequence;     /* guarded by mu */
  char last_producer[64];     /* guarded by mu */
  char last_query_params[512]; /* guarded by mu: textual rendering of the params */
} fake_t;

static void reply(bf_rpc_call_t *call, const ProtobufCMessage *msg) {
  size_t size = protobuf_c_message_get_packed_size(msg);
  uint8_t *bytes = malloc(size ? size : 1);
  assert_non_null(bytes);
  protobuf_c_message_pack(msg, bytes);
  bf_rpc_call_reply(call, bytes, size);
  free(bytes);
}

static int is_table(const Bifrost__V1__TableName *name, const char *table) {
  return name != NULL && strcmp(name->catalog, "ml") == 0 &&
         strcmp(name->schema_name, "inference") == 0 && strcmp(name->table, table) == 0;
}

static void handle_register(fake_t *fake, bf_rpc_call_t *call, const uint8_t *request,
                            size_t size) {
  Bifrost__V1__RegisterTableRequest *req =
      bifrost__v1__register_table_request__unpack(NULL, size, request);
  if (req == NULL || !is_table(req->name, "predictions") ||
      strcmp(req->json_schema, "{\"type\":\"object\"}") != 0 || req->n_partition_columns != 2 ||
      strcmp(req->partition_columns[0], "model") != 0 ||
      strcmp(req->partition_columns[1], "region") != 0) {
    bf_rpc_call_finish(call, BF_EINVAL, "unexpected RegisterTableRequest");
  } else if (strcmp(req->fingerprint, FINGERPRINT) != 0) {
    char message[200];
    snprintf(message, sizeof message, "fingerprint %s does not match %s", req->fingerprint,
             FINGERPRINT);
    bf_rpc_call_finish(call, BF_EMISMATCH, message);
  } else {
    pthread_mutex_lock(&fake->mu);
    int existed = fake->registered++;
    pthread_mutex_unlock(&fake->mu);
    Bifrost__V1__RegisterTableResponse resp = BIFROST__V1__REGISTER_TABLE_RESPONSE__INIT;
    resp.status = existed ? "already_exists" : "created";
    resp.fingerprint = FINGERPRINT;
    reply(call, &resp.base);
  }
  if (req) bifrost__v1__register_table_request__free_unpacked(req, NULL);
}

static void handle_insert(fake_t *fake, bf_rpc_call_t *call, const uint8_t *request, size_t size) {
  Bifrost__V1__InsertBatchRequest *req =
      bifrost__v1__insert_batch_request__unpack(NULL, size, request);
  if (req == NULL || !is_table(req->name, "predictions")) {
    bf_rpc_call_finish(call, BF_ENOTFOUND, "table not found");
  } else if (strcmp(req->fingerprint, FINGERPRINT) != 0) {
    bf_rpc_call_finish(call, BF_EMISMATCH, "fingerprint mismatch");
  } else {
    /* the fake's "IPC stream" is bytes 0..n-1; rows_accepted = n */
    int valid = 1;
    for (size_t i = 0; i < req->arrow_ipc.len; i++) valid &= req->arrow_ipc.data[i] == (uint8_t)i;
    if (!valid) {
      bf_rpc_call_finish(call, BF_ECORRUPT, "malformed IPC stream");
    } else {
      pthread_mutex_lock(&fake->mu);
      int duplicate = req->producer_id[0] != '\0' &&
                      strcmp(req->producer_id, fake->last_producer) == 0 &&
                      req->sequence <= fake->last_sequence;
      if (!duplicate) fake->last_sequence = req->sequence;
      snprintf(fake->last_producer, sizeof fake->last_producer, "%s", req->producer_id);
      pthread_mutex_unlock(&fake->mu);
      Bifrost__V1__InsertBatchResponse resp = BIFROST__V1__INSERT_BATCH_RESPONSE__INIT;
      resp.rows_accepted = duplicate ? 0 : req->arrow_ipc.len;
      resp.duplicate = duplicate;
      resp.delta_version = 3;
      reply(call, &resp.base);
    }
  }
  if (req) bifrost__v1__insert_batch_request__free_unpacked(req, NULL);
}

static void render_params(const Bifrost__V1__QueryRequest *req, char *out, size_t out_size) {
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < req->n_params && used < out_size; i++) {
    const Bifrost__V1__QueryParam *p = req->params[i];
    int n = 0;
    switch (p->value_case) {
      case BIFROST__V1__QUERY_PARAM__VALUE_NULL_VALUE:
        n = snprintf(out + used, out_size - used, "null;");
        break;
      case BIFROST__V1__QUERY_PARAM__VALUE_INT_VALUE:
        n = snprintf(out + used, out_size - used, "int %lld;", (long long)p->int_value);
        break;
      case BIFROST__V1__QUERY_PARAM__VALUE_DOUBLE_VALUE:
        n = snprintf(out + used, out_size - used, "double %g;", p->double_value);
        break;
      case BIFROST__V1__QUERY_PARAM__VALUE_STRING_VALUE:
        n = snprintf(out + used, out_size - used, "string %s;", p->string_value);
        break;
      case BIFROST__V1__QUERY_PARAM__VALUE_BOOL_VALUE:
        n = snprintf(out + used, out_size - used, "bool %d;", (int)p->bool_value);
        break;
      case BIFROST__V1__QUERY_PARAM__VALUE_DATE_VALUE:
        n = snprintf(out + used, out_size - used, "date %d;", (int)p->date_value);
        break;
      case BIFROST__V1__QUERY_PARAM__VALUE_TIMESTAMP_VALUE:
        n = snprintf(out + used, out_size - used, "ts %lld;", (long long)p->timestamp_value);
        break;
      case BIFROST__V1__QUERY_PARAM__VALUE_BYTES_VALUE: /* length, then the bytes in hex */
        n = snprintf(out + used, out_size - used, "blob %zu:", p->bytes_value.len);
        for (size_t k = 0; k < p->bytes_value.len && n > 0 && used + (size_t)n < out_size; k++)
          n += snprintf(out + used + n, out_size - used - n, "%02x", p->bytes_value.data[k]);
        if (n > 0 && used + (size_t)n < out_size) n += snprintf(out + used + n, out_size - used - n, ";");
        break;
      case BIFROST__V1__QUERY_PARAM__VALUE_DECIMAL_VALUE:
        n = snprintf(out + used, out_size - used, "decimal %s;", p->decimal_value);
        break;
      case BIFROST__V1__QUERY_PARAM__VALUE_LIST_VALUE: {
        Bifrost__V1__QueryRequest inner = BIFROST__V1__QUERY_REQUEST__INIT;
        inner.n_params = p->list_value->n_items;
        inner.params = p->list_value->items;
        char items[256];
        render_params(&inner, items, sizeof items);
        n = snprintf(out + used, out_size - used, "list[%s];", items);
        break;
      }
      default:
        n = snprintf(out + used, out_size - used, "unset;");
        break;
    }
    if (n > 0) used += (size_t)n;
  }
}

/* Query: "bytes N" streams N bytes (i mod 251) in 1 MiB chunks; "bad" is a query
 * error; "garbage" sends a message that is not a QueryResponse. */
static void handle_query(fake_t *fake, bf_rpc_call_t *call, const uint8_t *request, size_t size) {
  Bifrost__V1__QueryRequest *req = bifrost__v1__query_request__unpack(NULL, size, request);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed QueryRequest");
    return;
  }
  pthread_mutex_lock(&fake->mu);
  render_params(req, fake->last_query_params, sizeof fake->last_query_params);
  pthread_mutex_unlock(&fake->mu);
  unsigned long long total = 0;
  if (strcmp(req->sql, "bad") == 0) {
    bf_rpc_call_finish(call, BF_EQUERY, "Binder Error: column x not found");
  } else if (strcmp(req->sql, "garbage") == 0) {
    static const uint8_t not_a_message[] = {0xff, 0xff, 0xff};
    bf_rpc_call_send(call, not_a_message, sizeof not_a_message);
    bf_rpc_call_finish(call, BF_OK, "");
  } else if (strcmp(req->sql, "unusual") == 0) {
    /* valid QueryResponse encodings other than our server's: an unknown field after
     * the bytes, and the field given twice (the last one counts) */
    static const uint8_t extra_field[] = {0x0A, 0x03, 'a', 'b', 'c', 0x78, 0x01};
    static const uint8_t repeated[] = {0x0A, 0x01, 'x', 0x0A, 0x02, 'y', 'z'};
    bf_rpc_call_send(call, extra_field, sizeof extra_field);
    bf_rpc_call_send(call, repeated, sizeof repeated);
    bf_rpc_call_finish(call, BF_OK, "");
  } else if (sscanf(req->sql, "bytes %llu", &total) == 1) {
    uint8_t *chunk = malloc(QUERY_CHUNK);
    uint8_t *packed = malloc(QUERY_CHUNK + 16);
    assert_non_null(chunk);
    assert_non_null(packed);
    int status = BF_OK;
    for (unsigned long long sent = 0; sent < total && status == BF_OK;) {
      size_t n = total - sent < QUERY_CHUNK ? (size_t)(total - sent) : QUERY_CHUNK;
      for (size_t i = 0; i < n; i++) chunk[i] = (uint8_t)((sent + i) % 251);
      Bifrost__V1__QueryResponse resp = BIFROST__V1__QUERY_RESPONSE__INIT;
      resp.ipc_chunk.data = chunk;
      resp.ipc_chunk.len = n;
      size_t packed_size = bifrost__v1__query_response__pack(&resp, packed);
      status = bf_rpc_call_send(call, packed, packed_size);
      sent += n;
    }
    if (status == BF_OK) bf_rpc_call_finish(call, BF_OK, "");
    free(chunk);
    free(packed);
  } else {
    bf_rpc_call_finish(call, BF_EQUERY, "unsupported query");
  }
  bifrost__v1__query_request__free_unpacked(req, NULL);
}

static void fill_info(Bifrost__V1__TableInfo *info, Bifrost__V1__TableName *name,
                      const char *table, char **partitions, size_t n_partitions) {
  bifrost__v1__table_name__init(name);
  name->catalog = "ml";
  name->schema_name = "inference";
  name->table = (char *)table;
  bifrost__v1__table_info__init(info);
  info->name = name;
  info->fingerprint = FINGERPRINT;
  info->n_partition_columns = n_partitions;
  info->partition_columns = partitions;
  info->json_schema = "{\"title\":\"Prediction\"}";
  info->arrow_schema_json =
      "{\"id\":{\"arrow_type\":\"Int64\",\"nullable\":false},"
      "\"score\":{\"arrow_type\":\"Float64\",\"nullable\":true}}";
  info->location = "/data/ml/inference/predictions";
  info->delta_version = 7;
  info->num_files = 3;
  info->num_rows = 5000000000LL; /* beyond 32 bits */
  info->size_bytes = 123456;
  info->created_at_ms = 1763800000000LL;
}

static void handle_list(bf_rpc_call_t *call) {
  char *partitions[] = {"model", "region"};
  Bifrost__V1__TableName names[2];
  Bifrost__V1__TableInfo infos[2];
  fill_info(&infos[0], &names[0], "predictions", partitions, 2);
  fill_info(&infos[1], &names[1], "features", NULL, 0);
  infos[1].arrow_schema_json = ""; /* the client must cope: arrow_schema {} */
  Bifrost__V1__TableInfo *ptrs[] = {&infos[0], &infos[1]};
  Bifrost__V1__ListTablesResponse resp = BIFROST__V1__LIST_TABLES_RESPONSE__INIT;
  resp.n_tables = 2;
  resp.tables = ptrs;
  reply(call, &resp.base);
}

static void handle_describe(bf_rpc_call_t *call, const uint8_t *request, size_t size) {
  Bifrost__V1__DescribeTableRequest *req =
      bifrost__v1__describe_table_request__unpack(NULL, size, request);
  if (req != NULL && is_table(req->name, "predictions")) {
    char *partitions[] = {"model"};
    Bifrost__V1__TableName name;
    Bifrost__V1__TableInfo info;
    fill_info(&info, &name, "predictions", partitions, 1);
    Bifrost__V1__DescribeTableResponse resp = BIFROST__V1__DESCRIBE_TABLE_RESPONSE__INIT;
    resp.table = &info;
    reply(call, &resp.base);
  } else if (req != NULL && is_table(req->name, "garbage")) {
    static const uint8_t not_a_message[] = {0x0a, 0x7f, 0x01};
    bf_rpc_call_reply(call, not_a_message, sizeof not_a_message);
  } else {
    bf_rpc_call_finish(call, BF_ENOTFOUND, "table ml.inference.missing not found");
  }
  if (req) bifrost__v1__describe_table_request__free_unpacked(req, NULL);
}

static void fake_handler(void *ctx, bf_rpc_call_t *call, const char *method,
                         const uint8_t *request, size_t size) {
  fake_t *fake = ctx;
  if (strcmp(method, BF_RPC_METHOD_REGISTER_TABLE) == 0)
    handle_register(fake, call, request, size);
  else if (strcmp(method, BF_RPC_METHOD_INSERT_BATCH) == 0)
    handle_insert(fake, call, request, size);
  else if (strcmp(method, BF_RPC_METHOD_QUERY) == 0)
    handle_query(fake, call, request, size);
  else if (strcmp(method, BF_RPC_METHOD_LIST_TABLES) == 0)
    handle_list(call);
  else if (strcmp(method, BF_RPC_METHOD_DESCRIBE_TABLE) == 0)
    handle_describe(call, request, size);
  else
    bf_rpc_call_finish(call, BF_EINVAL, "unknown method");
}

typedef struct fixture {
  fake_t fake;
  bf_rpc_server_t *server;
  bf_rpc_channel_t *channel;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  pthread_mutex_init(&f->fake.mu, NULL);
  bf_rpc_server_options_t options = {
      .address = "127.0.0.1:0", .n_workers = 2, .handler = fake_handler, .handler_ctx = &f->fake};
  int port = 0;
  bf_error_t err;
  bf_error_init(&err);
  if (bf_rpc_server_start(&options, &f->server, &port, &err) != BF_OK) {
    fprintf(stderr, "fake server: %s\n", err.message);
    return -1;
  }
  char target[64];
  snprintf(target, sizeof target, "http://127.0.0.1:%d", port); /* scheme prefix accepted */
  bf_rpc_channel_options_t channel_options = {.target = target};
  if (bf_rpc_channel_create(&channel_options, &f->channel, &err) != BF_OK) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  bf_rpc_channel_destroy(f->channel);
  bf_rpc_server_stop(f->server, 1.0);
  pthread_mutex_destroy(&f->fake.mu);
  free(f);
  return 0;
}

static const bf_table_name_t predictions = {"ml", "inference", "predictions"};

static void test_register_table(void **state) {
  fixture_t *f = *state;
  const char *partitions[] = {"model", "region"};
  char status[32], fingerprint[33];
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_client_register_table(f->channel, &predictions, "{\"type\":\"object\"}",
                                            partitions, 2, FINGERPRINT, 5.0, status, fingerprint,
                                            &err),
                   BF_OK);
  assert_string_equal(status, "created");
  assert_string_equal(fingerprint, FINGERPRINT);
  assert_int_equal(bf_client_register_table(f->channel, &predictions, "{\"type\":\"object\"}",
                                            partitions, 2, FINGERPRINT, 5.0, status, fingerprint,
                                            &err),
                   BF_OK);
  assert_string_equal(status, "already_exists");

  /* a different fingerprint: BF_EMISMATCH with the server's message, outputs untouched */
  strcpy(status, "untouched");
  assert_int_equal(bf_client_register_table(f->channel, &predictions, "{\"type\":\"object\"}",
                                            partitions, 2, OTHER_FINGERPRINT, 5.0, status,
                                            fingerprint, &err),
                   BF_EMISMATCH);
  assert_string_equal(err.message,
                      "fingerprint " OTHER_FINGERPRINT " does not match " FINGERPRINT);
  assert_string_equal(status, "untouched");
}

static void test_insert_batch(void **state) {
  fixture_t *f = *state;
  uint8_t ipc[1000];
  for (size_t i = 0; i < sizeof ipc; i++) ipc[i] = (uint8_t)i;
  uint64_t rows = 0;
  int duplicate = -1;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_client_insert_batch(f->channel, &predictions, FINGERPRINT, ipc, sizeof ipc,
                                          "producer-1", 1, 5.0, &rows, &duplicate, &err),
                   BF_OK);
  assert_int_equal(rows, sizeof ipc);
  assert_int_equal(duplicate, 0);
  /* a retried sequence number is reported as a duplicate */
  assert_int_equal(bf_client_insert_batch(f->channel, &predictions, FINGERPRINT, ipc, sizeof ipc,
                                          "producer-1", 1, 5.0, &rows, &duplicate, &err),
                   BF_OK);
  assert_int_equal(rows, 0);
  assert_int_equal(duplicate, 1);
  /* no producer id: never deduplicated */
  assert_int_equal(bf_client_insert_batch(f->channel, &predictions, FINGERPRINT, ipc, 10, NULL, 0,
                                          5.0, &rows, &duplicate, &err),
                   BF_OK);
  assert_int_equal(rows, 10);
  assert_int_equal(duplicate, 0);

  ipc[5] = 0xee;
  assert_int_equal(bf_client_insert_batch(f->channel, &predictions, FINGERPRINT, ipc, sizeof ipc,
                                          "producer-1", 2, 5.0, &rows, &duplicate, &err),
                   BF_ECORRUPT);
  assert_string_equal(err.message, "malformed IPC stream");
  bf_table_name_t missing = {"ml", "inference", "missing"};
  assert_int_equal(bf_client_insert_batch(f->channel, &missing, FINGERPRINT, ipc, 1, NULL, 0, 5.0,
                                          &rows, &duplicate, &err),
                   BF_ENOTFOUND);
}

static void test_query_params_and_chunks(void **state) {
  fixture_t *f = *state;
  const char text[] = "o'reilly; DROP TABLE x"; /* length-delimited: no NUL read past */
  bf_query_param_t params[7];
  memset(params, 0, sizeof params);
  params[0].type = BF_PARAM_NULL;
  params[1].type = BF_PARAM_INT64;
  params[1].value.i64 = -42;
  params[2].type = BF_PARAM_DOUBLE;
  params[2].value.f64 = 2.5;
  params[3].type = BF_PARAM_STRING;
  params[3].str = text;
  params[3].str_len = 8; /* "o'reilly" only */
  params[4].type = BF_PARAM_BOOL;
  params[4].value.boolean = true;
  params[5].type = BF_PARAM_DATE;
  params[5].value.days = 20000;
  params[6].type = BF_PARAM_TIMESTAMP;
  params[6].value.i64 = 1763800000000000LL;
  size_t total = 3 * QUERY_CHUNK + 12345; /* several messages, last one partial */
  char sql[64];
  snprintf(sql, sizeof sql, "bytes %zu", total);
  bf_buffer_t ipc;
  bf_buffer_init(&ipc);
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_client_query(f->channel, sql, params, 7, 30.0, NULL, NULL, &ipc, &err),
                   BF_OK);
  assert_int_equal(ipc.size, total);
  for (size_t i = 0; i < total; i++)
    if (ipc.data[i] != (uint8_t)(i % 251)) fail_msg("byte %zu out of order", i);
  pthread_mutex_lock(&f->fake.mu);
  assert_string_equal(f->fake.last_query_params,
                      "null;int -42;double 2.5;string o'reilly;bool 1;date 20000;"
                      "ts 1763800000000000;");
  pthread_mutex_unlock(&f->fake.mu);

  /* a second query appends to what the buffer holds */
  assert_int_equal(bf_client_query(f->channel, "bytes 10", NULL, 0, 5.0, NULL, NULL, &ipc, &err),
                   BF_OK);
  assert_int_equal(ipc.size, total + 10);
  assert_int_equal(ipc.data[total + 9], 9);
  /* an empty result is OK and adds nothing */
  assert_int_equal(bf_client_query(f->channel, "bytes 0", NULL, 0, 5.0, NULL, NULL, &ipc, &err),
                   BF_OK);
  assert_int_equal(ipc.size, total + 10);
  bf_buffer_reset(&ipc);
}

static void test_query_blob_decimal_and_list_params(void **state) {
  fixture_t *f = *state;
  bf_buffer_t ipc;
  bf_buffer_init(&ipc);
  bf_error_t err;
  bf_error_init(&err);
  /* BLOB (NUL bytes travel), DECIMAL text and a list of scalars */
  const char blob[] = {'a', '\0', 'b'};
  bf_query_param_t items[3];
  memset(items, 0, sizeof items);
  items[0].type = BF_PARAM_DECIMAL;
  items[0].str = "-12.50";
  items[0].str_len = 6;
  items[1].type = BF_PARAM_NULL;
  items[2].type = BF_PARAM_DECIMAL;
  items[2].str = "3";
  items[2].str_len = 1;
  bf_query_param_t more[3];
  memset(more, 0, sizeof more);
  more[0].type = BF_PARAM_BLOB;
  more[0].str = blob;
  more[0].str_len = sizeof blob;
  more[1].type = BF_PARAM_LIST;
  more[1].items = items;
  more[1].n_items = 3;
  more[2].type = BF_PARAM_LIST; /* empty */
  assert_int_equal(bf_client_query(f->channel, "bytes 1", more, 3, 5.0, NULL, NULL, &ipc, &err), BF_OK);
  pthread_mutex_lock(&f->fake.mu);
  assert_string_equal(f->fake.last_query_params,
                      "blob 3:610062;list[decimal -12.50;null;decimal 3;];list[];");
  pthread_mutex_unlock(&f->fake.mu);
  /* a list inside a list is refused before sending */
  bf_query_param_t nested[1];
  memset(nested, 0, sizeof nested);
  nested[0].type = BF_PARAM_LIST;
  more[1].items = nested;
  more[1].n_items = 1;
  assert_int_equal(bf_client_query(f->channel, "bytes 1", more, 2, 5.0, NULL, NULL, &ipc, &err),
                   BF_EINVAL);
  assert_non_null(strstr(err.message, "a list inside a list"));
  /* a NUL in a decimal's text cannot travel as a protobuf string */
  more[1].type = BF_PARAM_DECIMAL;
  more[1].str = blob;
  more[1].str_len = sizeof blob;
  assert_int_equal(bf_client_query(f->channel, "bytes 1", more, 2, 5.0, NULL, NULL, &ipc, &err),
                   BF_EINVAL);
  assert_non_null(strstr(err.message, "NUL"));
  bf_buffer_reset(&ipc);
}

/* next_message locates the IPC bytes inside the response as received (our
 * framing) and decodes any other valid encoding; the bytes read are the same. */
static void test_query_next_message(void **state) {
  fixture_t *f = *state;
  bf_error_t err;
  bf_error_init(&err);
  size_t total = 2 * QUERY_CHUNK + 777;
  char sql[64];
  snprintf(sql, sizeof sql, "bytes %zu", total);
  bf_rpc_stream_t *stream;
  assert_int_equal(bf_client_query_open(f->channel, sql, NULL, 0, 30.0, &stream, &err), BF_OK);
  size_t got = 0;
  int done = 0;
  uint8_t *piece = malloc(QUERY_CHUNK);
  assert_non_null(piece);
  for (;;) {
    bf_rpc_message_t *message = NULL;
    size_t offset = 0, size = 0;
    assert_int_equal(bf_client_query_next_message(stream, &message, &offset, &size, &done, NULL, NULL, &err),
                     BF_OK);
    if (done) break;
    assert_true(size <= QUERY_CHUNK);
    assert_int_equal(offset + size, bf_rpc_message_size(message));
    assert_int_equal(bf_rpc_message_read(message, offset, piece, size), size);
    for (size_t i = 0; i < size; i++)
      if (piece[i] != (uint8_t)((got + i) % 251)) fail_msg("byte %zu out of order", got + i);
    got += size;
    bf_rpc_message_free(message);
  }
  free(piece);
  assert_int_equal(got, total);
  bf_rpc_stream_close(stream);

  bf_buffer_t ipc;
  bf_buffer_init(&ipc);
  assert_int_equal(bf_client_query(f->channel, "unusual", NULL, 0, 5.0, NULL, NULL, &ipc, &err), BF_OK);
  assert_int_equal(ipc.size, 5);
  assert_memory_equal(ipc.data, "abcyz", 5);
  bf_buffer_reset(&ipc);
}

static void test_query_errors(void **state) {
  fixture_t *f = *state;
  bf_buffer_t ipc;
  bf_buffer_init(&ipc);
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_client_query(f->channel, "bad", NULL, 0, 5.0, NULL, NULL, &ipc, &err),
                   BF_EQUERY);
  assert_string_equal(err.message, "Binder Error: column x not found");
  assert_int_equal(ipc.size, 0);
  assert_int_equal(bf_client_query(f->channel, "garbage", NULL, 0, 5.0, NULL, NULL, &ipc, &err),
                   BF_ECORRUPT);
  assert_int_equal(ipc.size, 0);
  /* embedded NUL cannot travel as a protobuf string: rejected before sending */
  bf_query_param_t param;
  memset(&param, 0, sizeof param);
  param.type = BF_PARAM_STRING;
  param.str = "a\0b";
  param.str_len = 3;
  assert_int_equal(
      bf_client_query(f->channel, "bytes 1", &param, 1, 5.0, NULL, NULL, &ipc, &err), BF_EINVAL);
  assert_int_equal(ipc.size, 0);
  bf_buffer_reset(&ipc);
}

static int cancel_now(void *ctx) {
  (void)ctx;
  return 1;
}

static void test_query_cancel(void **state) {
  fixture_t *f = *state;
  bf_buffer_t ipc;
  bf_buffer_init(&ipc);
  bf_error_t err;
  bf_error_init(&err);
  /* 1 GiB would take long; the hook cancels at its first poll */
  int status = bf_client_query(f->channel, "bytes 1073741824", NULL, 0, 60.0, cancel_now, NULL,
                               &ipc, &err);
  assert_int_equal(status, BF_ECANCELLED);
  assert_int_equal(ipc.size, 0);
  bf_buffer_reset(&ipc);
}

static void check_table_json(json_t *table, const char *name, size_t n_partitions) {
  static const char *keys[] = {"catalog",     "schema_name",   "table",     "fingerprint",
                               "partition_columns", "json_schema", "arrow_schema", "location",
                               "delta_version", "num_files",    "num_rows",  "tail_rows",
                               "size_bytes",    "created_at_ms", "schema_fingerprints"};
  assert_true(json_is_object(table));
  assert_int_equal(json_object_size(table), sizeof keys / sizeof keys[0]);
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (json_object_get(table, keys[i]) == NULL) fail_msg("key %s missing", keys[i]);
  assert_string_equal(json_string_value(json_object_get(table, "catalog")), "ml");
  assert_string_equal(json_string_value(json_object_get(table, "schema_name")), "inference");
  assert_string_equal(json_string_value(json_object_get(table, "table")), name);
  assert_string_equal(json_string_value(json_object_get(table, "fingerprint")), FINGERPRINT);
  /* A server that lists no schema versions has one: the table's fingerprint. */
  json_t *versions = json_object_get(table, "schema_fingerprints");
  assert_int_equal(json_array_size(versions), 1);
  assert_string_equal(json_string_value(json_array_get(versions, 0)), FINGERPRINT);
  assert_string_equal(json_string_value(json_object_get(table, "json_schema")),
                      "{\"title\":\"Prediction\"}");
  assert_string_equal(json_string_value(json_object_get(table, "location")),
                      "/data/ml/inference/predictions");
  json_t *partitions = json_object_get(table, "partition_columns");
  assert_true(json_is_array(partitions));
  assert_int_equal(json_array_size(partitions), n_partitions);
  if (n_partitions) assert_string_equal(json_string_value(json_array_get(partitions, 0)), "model");
  assert_int_equal(json_integer_value(json_object_get(table, "delta_version")), 7);
  assert_int_equal(json_integer_value(json_object_get(table, "num_files")), 3);
  assert_true(json_integer_value(json_object_get(table, "num_rows")) == 5000000000LL);
  assert_int_equal(json_integer_value(json_object_get(table, "size_bytes")), 123456);
  assert_true(json_integer_value(json_object_get(table, "created_at_ms")) == 1763800000000LL);
  assert_true(json_is_object(json_object_get(table, "arrow_schema")));
}

static void test_list_tables_json(void **state) {
  fixture_t *f = *state;
  char *text = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_client_list_tables(f->channel, 5.0, &text, &err), BF_OK);
  json_error_t json_err;
  json_t *list = json_loads(text, 0, &json_err);
  assert_non_null(list);
  assert_true(json_is_array(list));
  assert_int_equal(json_array_size(list), 2);
  check_table_json(json_array_get(list, 0), "predictions", 2);
  check_table_json(json_array_get(list, 1), "features", 0);
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(json_array_get(list, 0), "partition_columns"), 1)),
      "region");
  /* arrow_schema is the parsed object, not a string */
  json_t *schema = json_object_get(json_array_get(list, 0), "arrow_schema");
  json_t *score = json_object_get(schema, "score");
  assert_string_equal(json_string_value(json_object_get(score, "arrow_type")), "Float64");
  assert_true(json_is_true(json_object_get(score, "nullable")));
  assert_int_equal(json_object_size(json_object_get(json_array_get(list, 1), "arrow_schema")), 0);
  json_decref(list);
  free(text);
}

static void test_describe_table_json(void **state) {
  fixture_t *f = *state;
  char *text = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_client_describe_table(f->channel, &predictions, 5.0, &text, &err), BF_OK);
  json_t *table = json_loads(text, 0, NULL);
  assert_non_null(table);
  check_table_json(table, "predictions", 1);
  json_decref(table);
  free(text);

  char *untouched = (char *)"untouched";
  text = untouched;
  bf_table_name_t missing = {"ml", "inference", "missing"};
  assert_int_equal(bf_client_describe_table(f->channel, &missing, 5.0, &text, &err), BF_ENOTFOUND);
  assert_string_equal(err.message, "table ml.inference.missing not found");
  assert_ptr_equal(text, untouched);
  bf_table_name_t garbage = {"ml", "inference", "garbage"};
  assert_int_equal(bf_client_describe_table(f->channel, &garbage, 5.0, &text, &err), BF_ECORRUPT);
  assert_ptr_equal(text, untouched);
}

static void test_server_down(void **state) {
  fixture_t *f = *state;
  bf_rpc_server_stop(f->server, 0.1);
  f->server = NULL;
  char *text = NULL;
  bf_error_t err;
  bf_error_init(&err);
  assert_int_equal(bf_client_list_tables(f->channel, 5.0, &text, &err), BF_EUNAVAILABLE);
  assert_null(text);
}

static int teardown_stopped(void **state) {
  fixture_t *f = *state;
  bf_rpc_channel_destroy(f->channel);
  pthread_mutex_destroy(&f->fake.mu);
  free(f);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_register_table, setup, teardown),
      cmocka_unit_test_setup_teardown(test_insert_batch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_params_and_chunks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_blob_decimal_and_list_params, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_next_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_tables_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_describe_table_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_down, setup, teardown_stopped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
