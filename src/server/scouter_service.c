/* scouter.grpc.v1 handlers except QueryDataset (see scouter_service.h): routing,
 * AuthService, RegisterDataset, InsertBatch, ListDatasets, DescribeDataset. */
#include "server/scouter_service.h"
#include "server/service_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "bifrost/ipc.h"
#include "schema/schema_scouter.h"
#include "scouter/grpc/v1/scouter.pb-c.h"
#include "server/batch_check.h"
#include "server/log.h"
#include "server/service_auth.h"

#define AUTH_PREFIX "/" BF_SCOUTER_AUTH_SERVICE "/"
#define DATASET_PREFIX "/" BF_SCOUTER_DATASET_SERVICE "/"

const char *const bf_scouter_served_services[] = {BF_RPC_SERVICE_BIFROST, BF_SCOUTER_AUTH_SERVICE,
                                                  BF_SCOUTER_DATASET_SERVICE, NULL};

/* ---- helpers ------------------------------------------------------------------ */

static int check_name(const char *catalog, const char *schema_name, const char *table,
                      bf_error_t *err) {
  BF_RETURN_NOT_OK(bf_namespace_validate(catalog, "catalog", err));
  BF_RETURN_NOT_OK(bf_namespace_validate(schema_name, "schema_name", err));
  return bf_namespace_validate(table, "table", err);
}

/* The 0.25.0 fingerprint of a registered table, from its stored JSON Schema. */
static int table_fingerprint(const bf_table_t *t, char out[33], bf_error_t *err) {
  int status = bf_schema_scouter_fingerprint(t->json_schema, strlen(t->json_schema), out, err);
  if (status != BF_OK)
    bf_error_prefix(err, "table %s has no scouter-ml 0.25 fingerprint", t->fqn);
  return status;
}

static void rfc3339(int64_t ms, char out[40]) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 40 - n, ".%03d+00:00", (int)(ms % 1000));
}

/* ---- token renewal ------------------------------------------------------------------ */

static int b64url_value(char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '-') return 62;
  if (ch == '_') return 63;
  return -1;
}

/* The "exp" claim (seconds) of a JWT whose signature the authenticate hook has
 * already checked; -1 if it cannot be read. */
static int64_t token_expiry(const char *token, size_t len) {
  const char *dot1 = memchr(token, '.', len);
  if (dot1 == NULL) return -1;
  const char *payload = dot1 + 1;
  const char *dot2 = memchr(payload, '.', len - (size_t)(payload - token));
  if (dot2 == NULL || dot2 - payload > 2048) return -1;
  unsigned char decoded[1600];
  size_t n = 0;
  unsigned bits = 0, acc = 0;
  for (const char *p = payload; p < dot2; p++) {
    int v = b64url_value(*p);
    if (v < 0) return -1;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      decoded[n++] = (unsigned char)((acc >> bits) & 0xFF);
    }
  }
  json_t *claims = json_loadb((const char *)decoded, n, 0, NULL);
  json_t *exp = json_object_get(claims, "exp");
  int64_t result = json_is_integer(exp) ? (int64_t)json_integer_value(exp) : -1;
  json_decref(claims);
  return result;
}

/* The published client keeps the token of its one Login and replaces it with one
 * sent back in "x-refreshed-token": a token past half its life gets a fresh one
 * with the reply, so a long-running producer never meets an expired token. */
static void renew_token(bf_service_t *s, bf_rpc_call_t *call) {
  if (s->auth == NULL || !s->auth->enabled) return;
  size_t len = 0;
  const char *authorization = bf_rpc_call_metadata(call, "authorization", &len);
  if (authorization == NULL || len < 8) return;
  int64_t exp = token_expiry(authorization + 7, len - 7);
  double left = (double)exp - (double)time(NULL);
  if (exp < 0 || left > s->auth->token_ttl_secs / 2) return;
  char token[BF_TOKEN_MAX];
  int64_t expires_ms = 0;
  if (bf_token_issue(&s->auth->key, bf_rpc_call_user(call), s->auth->token_ttl_secs, token,
                     &expires_ms, NULL) == BF_OK)
    bf_rpc_call_set_initial_metadata(call, "x-refreshed-token", token);
}

/* ---- AuthService ------------------------------------------------------------------ */

static void reply_login(bf_rpc_call_t *call, const char *token) {
  Scouter__Grpc__V1__LoginResponse resp = SCOUTER__GRPC__V1__LOGIN_RESPONSE__INIT;
  resp.token = (char *)token;
  resp.status = "success";
  resp.message = "logged in";
  bf__service_reply(call, &resp.base);
}

static void handle_login(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *bytes, size_t size) {
  Scouter__Grpc__V1__LoginRequest *req =
      size > 64 * 1024 ? NULL : scouter__grpc__v1__login_request__unpack(NULL, size, bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed LoginRequest");
    return;
  }
  bf_error_t err;
  bf_error_init(&err);
  char token[BF_TOKEN_MAX];
  int64_t expires_ms = 0;
  int status = s->auth ? bf_auth_login(s->auth, req->username, req->password,
                                       bf_rpc_call_peer(call), token, &expires_ms, &err)
                       : bf_error_set(&err, BF_EINTERNAL, "authentication is not set up");
  if (status != BF_OK)
    bf_rpc_call_finish(call, status, err.message);
  else
    reply_login(call, token);
  scouter__grpc__v1__login_request__free_unpacked(req, NULL);
}

/* The token to check: the request's field, else the bearer token of the
 * authorization metadata. */
static int token_user(bf_service_t *s, bf_rpc_call_t *call, const char *field,
                      char user[BF_USER_NAME_MAX + 1], bf_error_t *err) {
  if (s->auth == NULL) return bf_error_set(err, BF_EINTERNAL, "authentication is not set up");
  if (field && field[0]) {
    char value[BF_TOKEN_MAX + 8];
    int n = snprintf(value, sizeof value, "Bearer %s", field);
    if (n < 0 || (size_t)n >= sizeof value)
      return bf_error_set(err, BF_EAUTH, "the token is too long");
    return bf_auth_authenticate(s->auth, value, (size_t)n, user, err);
  }
  size_t len = 0;
  const char *authorization = bf_rpc_call_metadata(call, "authorization", &len);
  return bf_auth_authenticate(s->auth, authorization, len, user, err);
}

static void handle_refresh(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *bytes,
                           size_t size) {
  Scouter__Grpc__V1__RefreshTokenRequest *req =
      size > 64 * 1024 ? NULL : scouter__grpc__v1__refresh_token_request__unpack(NULL, size, bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed RefreshTokenRequest");
    return;
  }
  bf_error_t err;
  bf_error_init(&err);
  char user[BF_USER_NAME_MAX + 1];
  char token[BF_TOKEN_MAX];
  int64_t expires_ms = 0;
  int status = token_user(s, call, req->token, user, &err);
  if (status == BF_OK)
    status = bf_token_issue(&s->auth->key, user, s->auth->token_ttl_secs, token, &expires_ms, &err);
  if (status != BF_OK)
    bf_rpc_call_finish(call, status, err.message);
  else
    reply_login(call, token);
  scouter__grpc__v1__refresh_token_request__free_unpacked(req, NULL);
}

static void handle_validate(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *bytes,
                            size_t size) {
  Scouter__Grpc__V1__ValidateTokenRequest *req =
      size > 64 * 1024 ? NULL
                       : scouter__grpc__v1__validate_token_request__unpack(NULL, size, bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed ValidateTokenRequest");
    return;
  }
  bf_error_t err;
  bf_error_init(&err);
  char user[BF_USER_NAME_MAX + 1];
  Scouter__Grpc__V1__ValidateTokenResponse resp = SCOUTER__GRPC__V1__VALIDATE_TOKEN_RESPONSE__INIT;
  resp.valid = token_user(s, call, req->token, user, &err) == BF_OK;
  resp.message = resp.valid ? "valid" : err.message;
  bf__service_reply(call, &resp.base);
  scouter__grpc__v1__validate_token_request__free_unpacked(req, NULL);
}

int bf_scouter_service_authenticate(void *ctx, bf_rpc_call_t *call, const char *method,
                                    bf_error_t *err) {
  if (strncmp(method, AUTH_PREFIX, strlen(AUTH_PREFIX)) == 0) return BF_OK;
  return bf_service_authenticate(ctx, call, method, err);
}

/* ---- RegisterDataset ------------------------------------------------------------------ */

static void handle_register(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *bytes,
                            size_t size) {
  Scouter__Grpc__V1__RegisterDatasetRequest *req =
      scouter__grpc__v1__register_dataset_request__unpack(NULL, size, bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed RegisterDatasetRequest");
    return;
  }
  if (bf__service_refuse_cut_text(call, &req->base, size)) {
    scouter__grpc__v1__register_dataset_request__free_unpacked(req, NULL);
    return;
  }
  bf_error_t err;
  bf_error_init(&err);
  bf_table_t *t = NULL;
  int created = 0;
  char fingerprint[33];
  int status = check_name(req->catalog, req->schema_name, req->table, &err);
  if (status == BF_OK)
    status = bf__service_authorize(s, call, BF_VERB_WRITE, req->catalog, req->schema_name,
                                   req->table, &err);
  /* The request's own schema must have a 0.25 fingerprint too, so a model the
   * client cannot describe is refused before a table is created for it. */
  if (status == BF_OK)
    status = bf_schema_scouter_fingerprint(req->json_schema, strlen(req->json_schema), fingerprint,
                                           &err);
  if (status == BF_OK)
    status = bf_registry_register(s->registry, req->catalog, req->schema_name, req->table,
                                  req->json_schema, (const char *const *)req->partition_columns,
                                  req->n_partition_columns, NULL, &t, &created, &err);
  if (status == BF_OK) {
    pthread_mutex_lock(&t->mu);
    status = bf_store_open_table(s->store, t, &err);
    pthread_mutex_unlock(&t->mu);
  }
  /* The table's fingerprint, from the schema it was registered with: a client
   * whose model differs in a way only the 0.25 rule sees stops on the difference. */
  if (status == BF_OK) status = table_fingerprint(t, fingerprint, &err);
  if (status != BF_OK) {
    BF_LOG_WARN("RegisterDataset (scouter) refused: %s", err.message);
    bf_rpc_call_finish(call, status, err.message);
  } else {
    if (created)
      BF_LOG_INFO("registered table %s through scouter.grpc.v1 (fingerprint %s, 0.25 fingerprint %s)",
                  t->fqn, t->fingerprint, fingerprint);
    Scouter__Grpc__V1__RegisterDatasetResponse resp =
        SCOUTER__GRPC__V1__REGISTER_DATASET_RESPONSE__INIT;
    resp.status = created ? "created" : "already_exists";
    resp.fingerprint = fingerprint;
    bf__service_reply(call, &resp.base);
  }
  scouter__grpc__v1__register_dataset_request__free_unpacked(req, NULL);
}

/* ---- InsertBatch ------------------------------------------------------------------------ */

/* The producer id for exactly-once: "scouter-batch-<id>" when every row's
 * scouter_batch_id is the same plain id (hex digits and dashes, as a UUID), so a
 * resent batch carries the same one; empty otherwise (no dedup possible). */
static void batch_producer_id(const bf_table_t *t, const struct ArrowSchema *schema,
                              const struct ArrowArray *batches, size_t n_batches, char out[80]) {
  out[0] = '\0';
  int col = bf_schema_find(&t->schema, BF_SYSCOL_BATCH_ID);
  if (col < 0 || n_batches == 0 || strcmp(schema->children[col]->format, "u") != 0) return;
  const char *first = NULL;
  size_t first_len = 0;
  for (size_t b = 0; b < n_batches; b++) {
    const struct ArrowArray *a = batches[b].children[col];
    const int32_t *offsets = a->buffers[1];
    const char *data = a->buffers[2];
    const uint8_t *validity = a->buffers[0];
    for (int64_t i = 0; i < a->length; i++) {
      int64_t j = a->offset + i;
      if (validity && !bf_arrow_bit_get(validity, j)) return;
      const char *v = data + offsets[j];
      size_t n = (size_t)(offsets[j + 1] - offsets[j]);
      if (first == NULL) {
        if (n == 0 || n > 64) return;
        for (size_t k = 0; k < n; k++) {
          char c = v[k];
          if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                c == '-'))
            return;
        }
        first = v;
        first_len = n;
      } else if (n != first_len || memcmp(v, first, n) != 0) {
        return;
      }
    }
  }
  if (first) snprintf(out, 80, "scouter-batch-%.*s", (int)first_len, first);
}

static void handle_insert(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *bytes, size_t size) {
  Scouter__Grpc__V1__InsertBatchRequest *req =
      scouter__grpc__v1__insert_batch_request__unpack(NULL, size, bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed InsertBatchRequest");
    return;
  }
  if (bf__service_refuse_cut_text(call, &req->base, size)) {
    scouter__grpc__v1__insert_batch_request__free_unpacked(req, NULL);
    return;
  }
  bf_error_t err;
  bf_error_init(&err);
  bf_ipc_reader_t *reader = NULL;
  struct ArrowSchema table_schema = {0}, batch_schema = {0};
  struct ArrowArray *batches = NULL;
  size_t n_batches = 0;
  uint64_t rows = 0;
  int64_t decoded_bytes = 0;
  int duplicate = 0;
  int64_t version = -1;
  bf_buffer_t ipc;
  bf_buffer_init(&ipc);
  bf_ipc_writer_t writer = {0};
  char fingerprint[33];
  char producer_id[80];
  bf_table_t *t = NULL;

  int status = check_name(req->catalog, req->schema_name, req->table, &err);
  if (status == BF_OK) {
    t = bf_registry_find(s->registry, req->catalog, req->schema_name, req->table);
    if (t == NULL)
      status = bf_error_set(&err, BF_ENOTFOUND, "table %s.%s.%s is not registered", req->catalog,
                            req->schema_name, req->table);
  }
  if (status == BF_OK)
    status = bf__service_authorize(s, call, BF_VERB_WRITE, t->catalog, t->schema_name, t->table,
                                   &err);
  if (status == BF_OK) status = table_fingerprint(t, fingerprint, &err);
  if (status == BF_OK && strcmp(req->fingerprint, fingerprint) != 0)
    status = bf_error_set(&err, BF_EMISMATCH,
                          "fingerprint mismatch for table %s: the table has %s (scouter-ml 0.25 "
                          "rule), the batch has %s",
                          t->fqn, fingerprint, req->fingerprint[0] ? req->fingerprint : "(none)");
  if (status != BF_OK) goto done;

  status = bf_ipc_reader_create(req->ipc_data.data, req->ipc_data.len, &reader, &err);
  if (status == BF_OK) status = bf_ipc_reader_schema(reader, &batch_schema, &err);
  while (status == BF_OK) {
    struct ArrowArray batch;
    int has_batch = 0;
    status = bf_ipc_reader_next(reader, &batch, &has_batch, &err);
    if (status != BF_OK || !has_batch) break;
    struct ArrowArray *grown = realloc(batches, (n_batches + 1) * sizeof *grown);
    if (grown == NULL) {
      bf_arrow_array_release(&batch);
      status = bf_error_set(&err, BF_ENOMEM, "out of memory");
      break;
    }
    batches = grown;
    bf_arrow_array_move(&batch, &batches[n_batches++]);
  }
  if (status == BF_OK) status = bf_schema_to_arrow(&t->schema, &table_schema, &err);
  if (status == BF_OK)
    status = bf_batch_reorder_by_name(&table_schema, &batch_schema, batches, n_batches, &err);
  if (status == BF_OK) status = bf_batch_check_schema(&table_schema, &batch_schema, &err);
  for (size_t i = 0; i < n_batches && status == BF_OK; i++) {
    status = bf_batch_check_nulls(&table_schema, &batches[i], &err);
    if (status == BF_OK)
      status = bf_batch_check_size(&batch_schema, &batches[i], s->max_batch_bytes,
                                   (int64_t)req->ipc_data.len, &decoded_bytes, &err);
    if (status == BF_OK)
      status = bf_batch_check_partition_values(&batch_schema, &batches[i],
                                               (const char *const *)t->partition_columns,
                                               t->n_partition_columns, &err);
    rows += (uint64_t)batches[i].length;
  }
  if (status != BF_OK) {
    if (status == BF_ECORRUPT) err.status = status = BF_EINVAL;
    bf_error_prefix(&err, "invalid batch for %s", t->fqn);
    goto done;
  }
  /* The WAL keeps the batch in the table's column order, as bifrost.v1 sends it. */
  status = bf_ipc_writer_init(&writer, &batch_schema, &ipc, &err);
  for (size_t i = 0; i < n_batches && status == BF_OK; i++)
    status = bf_ipc_writer_write(&writer, &batches[i], &err);
  if (status == BF_OK) status = bf_ipc_writer_finish(&writer, &err);
  if (status != BF_OK) goto done;

  batch_producer_id(t, &batch_schema, batches, n_batches, producer_id);
  bf_store_insert_t in = {.producer_id = producer_id[0] ? producer_id : NULL,
                         .sequence = 1,
                         .ipc = ipc.data,
                         .ipc_len = ipc.size,
                         .schema = &batch_schema,
                         .batches = batches,
                         .n_batches = n_batches,
                         .rows = rows,
                         .decoded_bytes = decoded_bytes};
  status = bf_store_insert(s->store, t, &in, &duplicate, &version, &err);
  if (status == BF_EIO) err.status = status = BF_EUNAVAILABLE; /* as in service.c */
  if (status == BF_OK && duplicate)
    BF_LOG_INFO("InsertBatch (scouter) for %s: batch %s was stored before; not stored again",
                t->fqn, producer_id + strlen("scouter-batch-"));

done:
  if (status != BF_OK) {
    BF_LOG_WARN("InsertBatch (scouter) rejected: %s", err.message);
    bf_rpc_call_finish(call, status, err.message);
  } else {
    /* A resent batch reports its rows too: they are stored, once. */
    Scouter__Grpc__V1__InsertBatchResponse resp = SCOUTER__GRPC__V1__INSERT_BATCH_RESPONSE__INIT;
    resp.rows_accepted = rows;
    bf__service_reply(call, &resp.base);
  }
  bf_ipc_writer_reset(&writer);
  bf_buffer_reset(&ipc);
  for (size_t i = 0; i < n_batches; i++) bf_arrow_array_release(&batches[i]);
  free(batches);
  bf_arrow_schema_release(&table_schema);
  bf_arrow_schema_release(&batch_schema);
  bf_ipc_reader_destroy(reader);
  scouter__grpc__v1__insert_batch_request__free_unpacked(req, NULL);
}

/* ---- ListDatasets / DescribeDataset ------------------------------------------------------ */

typedef struct info_storage {
  Scouter__Grpc__V1__DatasetInfo info;
  char fingerprint[33];
  char created_at[40];
} info_storage_t;

static void fill_info(bf_table_t *t, info_storage_t *st) {
  Scouter__Grpc__V1__DatasetInfo init = SCOUTER__GRPC__V1__DATASET_INFO__INIT;
  st->info = init;
  st->info.catalog = t->catalog;
  st->info.schema_name = t->schema_name;
  st->info.table = t->table;
  if (table_fingerprint(t, st->fingerprint, NULL) != BF_OK) st->fingerprint[0] = '\0';
  st->info.fingerprint = st->fingerprint;
  st->info.n_partition_columns = t->n_partition_columns;
  st->info.partition_columns = t->partition_columns;
  st->info.status = "active";
  rfc3339(t->created_at_ms, st->created_at);
  st->info.created_at = st->created_at;
  st->info.updated_at = st->created_at; /* a table's registration never changes */
}

static void handle_list(bf_service_t *s, bf_rpc_call_t *call) {
  size_t n = 0;
  bf_table_t **tables = bf__service_readable_tables(s, call, &n);
  info_storage_t *storage = calloc(n ? n : 1, sizeof *storage);
  Scouter__Grpc__V1__DatasetInfo **infos = calloc(n ? n : 1, sizeof *infos);
  if (tables == NULL || storage == NULL || infos == NULL) {
    bf_rpc_call_finish(call, BF_ENOMEM, "out of memory");
  } else {
    for (size_t i = 0; i < n; i++) {
      fill_info(tables[i], &storage[i]);
      infos[i] = &storage[i].info;
    }
    Scouter__Grpc__V1__ListDatasetsResponse resp = SCOUTER__GRPC__V1__LIST_DATASETS_RESPONSE__INIT;
    resp.n_datasets = n;
    resp.datasets = infos;
    bf__service_reply(call, &resp.base);
  }
  free(infos);
  free(storage);
  free(tables);
}

static void handle_describe(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *bytes,
                            size_t size) {
  Scouter__Grpc__V1__DescribeDatasetRequest *req =
      scouter__grpc__v1__describe_dataset_request__unpack(NULL, size, bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed DescribeDatasetRequest");
    return;
  }
  if (bf__service_refuse_cut_text(call, &req->base, size)) {
    scouter__grpc__v1__describe_dataset_request__free_unpacked(req, NULL);
    return;
  }
  bf_error_t err;
  bf_error_init(&err);
  bf_table_t *t = NULL;
  /* The grant is checked on the name first: no answer tells a caller whether a
   * table it may not read exists. */
  int status = check_name(req->catalog, req->schema_name, req->table, &err);
  if (status == BF_OK)
    status = bf__service_authorize(s, call, BF_VERB_READ, req->catalog, req->schema_name,
                                   req->table, &err);
  if (status == BF_OK) {
    t = bf_registry_find(s->registry, req->catalog, req->schema_name, req->table);
    if (t == NULL)
      status = bf_error_set(&err, BF_ENOTFOUND, "table %s.%s.%s is not registered", req->catalog,
                            req->schema_name, req->table);
  }
  if (status != BF_OK) {
    bf_rpc_call_finish(call, status, err.message);
  } else {
    info_storage_t st;
    fill_info(t, &st);
    char *arrow_json = NULL;
    bf_schema_parse_json(&t->schema, &arrow_json, NULL);
    Scouter__Grpc__V1__DescribeDatasetResponse resp =
        SCOUTER__GRPC__V1__DESCRIBE_DATASET_RESPONSE__INIT;
    resp.info = &st.info;
    resp.arrow_schema_json = arrow_json ? arrow_json : "{}";
    bf__service_reply(call, &resp.base);
    free(arrow_json);
  }
  scouter__grpc__v1__describe_dataset_request__free_unpacked(req, NULL);
}

/* ---- routing ---------------------------------------------------------------------------- */

void bf_scouter_service_handle(void *ctx, bf_rpc_call_t *call, const char *method,
                               const uint8_t *request, size_t request_size) {
  bf_service_t *s = ctx;
  const char *name = strrchr(method, '/') + 1;
  if (strncmp(method, AUTH_PREFIX, strlen(AUTH_PREFIX)) == 0) {
    if (strcmp(name, "Login") == 0) {
      handle_login(s, call, request, request_size);
      return;
    }
    if (strcmp(name, "RefreshToken") == 0) {
      handle_refresh(s, call, request, request_size);
      return;
    }
    if (strcmp(name, "ValidateToken") == 0) {
      handle_validate(s, call, request, request_size);
      return;
    }
  } else if (strncmp(method, DATASET_PREFIX, strlen(DATASET_PREFIX)) == 0) {
    renew_token(s, call);
    if (strcmp(name, "InsertBatch") == 0) {
      handle_insert(s, call, request, request_size);
      return;
    }
    if (strcmp(name, "QueryDataset") == 0) {
      bf__scouter_handle_query(s, call, request, request_size);
      return;
    }
    if (strcmp(name, "RegisterDataset") == 0) {
      handle_register(s, call, request, request_size);
      return;
    }
    if (strcmp(name, "ListDatasets") == 0) {
      handle_list(s, call);
      return;
    }
    if (strcmp(name, "DescribeDataset") == 0) {
      handle_describe(s, call, request, request_size);
      return;
    }
  } else {
    bf_service_handle(ctx, call, method, request, request_size);
    return;
  }
  char message[300];
  snprintf(message, sizeof message,
           "method %s is not served by bifrost-server (it serves the part of scouter.grpc.v1 "
           "that the scouter-ml 0.25 dataset client uses)",
           method);
  bf_rpc_call_finish(call, BF_EINVAL, message);
}
