/* Handlers of a table's life cycle in bifrost.v1.Bifrost: TableHistory (read
 * grant), TruncateTable and DropTable (admin grant, confirmation by full name). */
#include <stdlib.h>
#include <string.h>

#include "bifrost/v1/bifrost.pb-c.h"
#include "server/service_auth.h"
#include "server/service_internal.h"
#include "server/table_lifecycle.h"

/* Name check, grant (before the lookup: no answer tells a caller without the
 * grant whether the table exists), lookup and, for destructive calls, the
 * confirmation: confirm must spell the table's full name. */
static bf_table_t *lifecycle_target(bf_service_t *s, bf_rpc_call_t *call,
                                    const Bifrost__V1__TableName *name, int verb,
                                    const char *confirm, bf_error_t *err) {
  if (bf__service_check_name(name, err) != BF_OK ||
      bf__service_authorize(s, call, verb, name->catalog, name->schema_name, name->table, err) !=
          BF_OK)
    return NULL;
  bf_table_t *t = bf__service_lookup(s, name, err);
  if (t != NULL && confirm != NULL && strcmp(confirm, t->fqn) != 0) {
    bf_error_set(err, BF_EINVAL, "confirm must be the table's full name '%s' (got '%s')", t->fqn,
                 confirm);
    return NULL;
  }
  return t;
}

void bf__service_handle_history(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes,
                           size_t size) {
  bf_error_t err;
  bf_error_init(&err);
  Bifrost__V1__TableHistoryRequest *req =
      bifrost__v1__table_history_request__unpack(NULL, size, req_bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed TableHistoryRequest");
    return;
  }
  if (bf__service_refuse_cut_text(call, &req->base, size)) {
    bifrost__v1__table_history_request__free_unpacked(req, NULL);
    return;
  }
  bf_delta_version_info_t *infos = NULL;
  size_t n = 0;
  bf_table_t *t = lifecycle_target(s, call, req->name, BF_VERB_READ, NULL, &err);
  int status = t ? bf_store_history(s->store, t, &infos, &n, &err) : err.status;
  Bifrost__V1__TableVersion *versions = status == BF_OK ? calloc(n ? n : 1, sizeof *versions) : NULL;
  Bifrost__V1__TableVersion **ptrs = status == BF_OK ? calloc(n ? n : 1, sizeof *ptrs) : NULL;
  if (status == BF_OK && (versions == NULL || ptrs == NULL))
    status = bf_error_set(&err, BF_ENOMEM, "out of memory");
  if (status != BF_OK) {
    bf_rpc_call_finish(call, err.status, err.message);
  } else {
    for (size_t i = 0; i < n; i++) {
      Bifrost__V1__TableVersion init = BIFROST__V1__TABLE_VERSION__INIT;
      versions[i] = init;
      versions[i].version = infos[i].version;
      versions[i].timestamp_ms = infos[i].timestamp_ms;
      versions[i].operation = infos[i].operation;
      versions[i].rows_added = infos[i].rows_added;
      versions[i].rows_removed = infos[i].rows_removed;
      versions[i].files_added = infos[i].files_added;
      versions[i].files_removed = infos[i].files_removed;
      versions[i].schema_version = infos[i].schema_version;
      versions[i].data_change = infos[i].data_change;
      ptrs[i] = &versions[i];
    }
    Bifrost__V1__TableHistoryResponse resp = BIFROST__V1__TABLE_HISTORY_RESPONSE__INIT;
    resp.n_versions = n;
    resp.versions = ptrs;
    bf__service_reply(call, &resp.base);
  }
  free(ptrs);
  free(versions);
  free(infos);
  bifrost__v1__table_history_request__free_unpacked(req, NULL);
}

void bf__service_handle_truncate(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes,
                            size_t size) {
  bf_error_t err;
  bf_error_init(&err);
  Bifrost__V1__TruncateTableRequest *req =
      bifrost__v1__truncate_table_request__unpack(NULL, size, req_bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed TruncateTableRequest");
    return;
  }
  if (bf__service_refuse_cut_text(call, &req->base, size)) {
    bifrost__v1__truncate_table_request__free_unpacked(req, NULL);
    return;
  }
  Bifrost__V1__TruncateTableResponse resp = BIFROST__V1__TRUNCATE_TABLE_RESPONSE__INIT;
  bf_table_t *t = lifecycle_target(s, call, req->name, BF_VERB_ADMIN, req->confirm, &err);
  int status = t ? bf_store_truncate(s->store, t, &resp.delta_version, &resp.files_removed,
                                     &resp.rows_removed, &err)
                 : err.status;
  if (status != BF_OK) bf_rpc_call_finish(call, err.status, err.message);
  else bf__service_reply(call, &resp.base);
  bifrost__v1__truncate_table_request__free_unpacked(req, NULL);
}

void bf__service_handle_drop(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes,
                        size_t size) {
  bf_error_t err;
  bf_error_init(&err);
  Bifrost__V1__DropTableRequest *req = bifrost__v1__drop_table_request__unpack(NULL, size, req_bytes);
  if (req == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed DropTableRequest");
    return;
  }
  if (bf__service_refuse_cut_text(call, &req->base, size)) {
    bifrost__v1__drop_table_request__free_unpacked(req, NULL);
    return;
  }
  Bifrost__V1__DropTableResponse resp = BIFROST__V1__DROP_TABLE_RESPONSE__INIT;
  bf_table_t *t = lifecycle_target(s, call, req->name, BF_VERB_ADMIN, req->confirm, &err);
  int status = t ? bf_store_drop(s->store, t, req->discard_wal, &resp.rows_discarded,
                                 &resp.files_deleted, &err)
                 : err.status;
  if (status != BF_OK) bf_rpc_call_finish(call, err.status, err.message);
  else bf__service_reply(call, &resp.base);
  bifrost__v1__drop_table_request__free_unpacked(req, NULL);
}

