/* scouter.grpc.v1 QueryDataset: the engine's IPC chunks are collected into one
 * reply of at most BF_SCOUTER_MAX_REPLY_BYTES (the client's receive limit); a
 * larger result is refused with RESOURCE_EXHAUSTED, never cut. The collected
 * stream is decoded and written again with every UTC timestamp zone spelled
 * "+00:00" (the client's reader cannot resolve the name "UTC"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/ipc.h"
#include "scouter/grpc/v1/scouter.pb-c.h"
#include "server/scouter_service.h"
#include "server/service_internal.h"
#include "server/service_auth.h"

/* Room for the reply's protobuf framing (tag + length varint). */
#define REPLY_FRAMING_BYTES 16

typedef struct collect {
  bf_rpc_call_t *call;
  bf_buffer_t ipc;
  int too_large;
} collect_t;

static int collect_chunk(void *ctx, bf_buffer_t *chunk) {
  collect_t *c = ctx;
  if (c->ipc.size + chunk->size > BF_SCOUTER_MAX_REPLY_BYTES - REPLY_FRAMING_BYTES) {
    c->too_large = 1;
    return 1; /* stops the query */
  }
  return bf_buffer_append(&c->ipc, chunk->data, chunk->size) != BF_OK;
}

static int client_gone(void *ctx) { return bf_rpc_call_cancelled(((collect_t *)ctx)->call); }

static int is_utc_timestamp(const char *format) {
  return strncmp(format, "ts", 2) == 0 && format[2] && format[3] == ':' &&
         (strcmp(format + 4, "UTC") == 0 || strcmp(format + 4, "Etc/UTC") == 0);
}

/* Copy of src with UTC timestamp zones written "+00:00". */
static int copy_schema(const struct ArrowSchema *src, struct ArrowSchema *out) {
  char format[32];
  const char *f = src->format;
  if (is_utc_timestamp(f)) {
    snprintf(format, sizeof format, "%.4s+00:00", f);
    f = format;
  }
  BF_RETURN_NOT_OK(bf_arrow_schema_init(out, f, src->name ? src->name : "", src->flags,
                                        src->n_children));
  int status = BF_OK;
  for (int64_t i = 0; i < src->n_children && status == BF_OK; i++)
    status = copy_schema(src->children[i], out->children[i]);
  if (status == BF_OK && src->dictionary)
    status = bf_arrow_schema_set_dictionary(out, src->dictionary->format);
  if (status != BF_OK) bf_arrow_schema_release(out);
  return status;
}

static int has_utc_timestamp(const struct ArrowSchema *s) {
  if (is_utc_timestamp(s->format)) return 1;
  for (int64_t i = 0; i < s->n_children; i++)
    if (has_utc_timestamp(s->children[i])) return 1;
  return 0;
}

/* Rewrites the collected stream in place when it has a UTC timestamp column. */
static int respell_zones(bf_buffer_t *ipc, bf_error_t *err) {
  bf_ipc_reader_t *reader = NULL;
  struct ArrowSchema got = {0}, renamed = {0};
  bf_buffer_t out;
  bf_buffer_init(&out);
  bf_ipc_writer_t writer = {0};
  int status = bf_ipc_reader_create(ipc->data, ipc->size, &reader, err);
  if (status == BF_OK) status = bf_ipc_reader_schema(reader, &got, err);
  if (status != BF_OK || !has_utc_timestamp(&got)) goto done;
  if (copy_schema(&got, &renamed) != BF_OK) {
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
    goto done;
  }
  status = bf_ipc_writer_init(&writer, &renamed, &out, err);
  while (status == BF_OK) {
    struct ArrowArray batch;
    int has_batch = 0;
    status = bf_ipc_reader_next(reader, &batch, &has_batch, err);
    if (status != BF_OK || !has_batch) break;
    status = bf_ipc_writer_write(&writer, &batch, err);
    bf_arrow_array_release(&batch);
  }
  if (status == BF_OK) status = bf_ipc_writer_finish(&writer, err);
  if (status == BF_OK) {
    bf_buffer_reset(ipc);
    *ipc = out;
    bf_buffer_init(&out);
  }
done:
  bf_ipc_writer_reset(&writer);
  bf_buffer_reset(&out);
  bf_arrow_schema_release(&renamed);
  bf_arrow_schema_release(&got);
  bf_ipc_reader_destroy(reader);
  return status;
}

static int refuse_too_large(bf_error_t *err) {
  return bf_error_set(err, BF_EFULL,
                      "the query result is larger than %d MiB, the most a scouter-ml client "
                      "accepts in one reply; the result was not sent (never cut): add a LIMIT or "
                      "a narrower WHERE, or read it with the bifrost client, which streams results "
                      "of any size",
                      BF_SCOUTER_MAX_REPLY_BYTES / (1024 * 1024));
}

void bf__scouter_handle_query(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *bytes,
                              size_t size) {
  Scouter__Grpc__V1__QueryDatasetRequest *req =
      scouter__grpc__v1__query_dataset_request__unpack(NULL, size, bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed QueryDatasetRequest");
    return;
  }
  if (bf__service_refuse_cut_text(call, &req->base, size)) {
    scouter__grpc__v1__query_dataset_request__free_unpacked(req, NULL);
    return;
  }
  bf_error_t err;
  bf_error_init(&err);
  collect_t c = {.call = call};
  bf_buffer_init(&c.ipc);
  int64_t rows = 0;
  bf__query_access_t access = {.service = s, .call = call};
  int status = bf_engine_query(s->engine, req->sql, NULL, 0, bf_rpc_call_time_left(call),
                               client_gone, collect_chunk, &c, bf__service_query_table_check,
                               &access, &rows, &err);
  if (c.too_large) status = refuse_too_large(&err);
  if (status == BF_OK) status = respell_zones(&c.ipc, &err);
  if (status == BF_OK && c.ipc.size > BF_SCOUTER_MAX_REPLY_BYTES - REPLY_FRAMING_BYTES)
    status = refuse_too_large(&err);
  if (status != BF_OK) {
    bf_rpc_call_finish(call, status, err.message);
  } else {
    Scouter__Grpc__V1__QueryDatasetResponse resp = SCOUTER__GRPC__V1__QUERY_DATASET_RESPONSE__INIT;
    resp.ipc_data.data = c.ipc.data;
    resp.ipc_data.len = c.ipc.size;
    bf__service_reply(call, &resp.base);
  }
  bf_buffer_reset(&c.ipc);
  scouter__grpc__v1__query_dataset_request__free_unpacked(req, NULL);
}
