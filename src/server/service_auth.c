/* Authentication and authorization of service calls (see service_auth.h). */
#include "server/service_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bifrost/v1/bifrost.pb-c.h"
#include "server/log.h"

int bf_service_authenticate(void *ctx, bf_rpc_call_t *call, const char *method, bf_error_t *err) {
  bf_service_t *s = ctx;
  if (s->auth == NULL || strcmp(method, BF_RPC_METHOD_LOGIN) == 0) return BF_OK;
  size_t len = 0;
  const char *authorization = bf_rpc_call_metadata(call, "authorization", &len);
  char user[BF_USER_NAME_MAX + 1];
  int status = bf_auth_authenticate(s->auth, authorization, len, user, err);
  if (status != BF_OK) {
    BF_LOG_WARN("refused %s from %s: %s", strrchr(method, '/') + 1, bf_rpc_call_peer(call),
                err->message);
    return status;
  }
  bf_rpc_call_set_user(call, user);
  return BF_OK;
}

int bf__service_authorize(bf_service_t *s, bf_rpc_call_t *call, int verb, const char *catalog,
                          const char *schema_name, const char *table, bf_error_t *err) {
  if (s->auth == NULL ||
      bf_auth_allowed(s->auth, bf_rpc_call_user(call), verb, catalog, schema_name, table))
    return BF_OK;
  const char *method = strrchr(bf_rpc_call_method(call), '/');
  BF_LOG_WARN("refused %s: user '%s' from %s may not %s table %s.%s.%s",
              method ? method + 1 : bf_rpc_call_method(call), bf_rpc_call_user(call),
              bf_rpc_call_peer(call), bf_auth_verb_name(verb), catalog, schema_name, table);
  return bf_error_set(err, BF_EPERM, "user '%s' may not %s table %s.%s.%s (no grant allows it)",
                      bf_rpc_call_user(call), bf_auth_verb_name(verb), catalog, schema_name,
                      table);
}

int bf__service_may_read(bf_service_t *s, bf_rpc_call_t *call, const char *catalog,
                         const char *schema_name, const char *table) {
  return s->auth == NULL ||
         bf_auth_allowed(s->auth, bf_rpc_call_user(call), BF_VERB_READ, catalog, schema_name, table);
}

bf_table_t **bf__service_readable_tables(bf_service_t *s, bf_rpc_call_t *call, size_t *n) {
  pthread_mutex_lock(&s->registry->mu);
  size_t total = s->registry->n_tables;
  bf_table_t **tables = malloc((total ? total : 1) * sizeof *tables);
  if (tables && total) memcpy(tables, s->registry->tables, total * sizeof *tables);
  pthread_mutex_unlock(&s->registry->mu);
  *n = 0;
  if (tables == NULL) return NULL;
  for (size_t i = 0; i < total; i++) /* tables the caller may not read are not listed */
    if (bf__service_may_read(s, call, tables[i]->catalog, tables[i]->schema_name, tables[i]->table))
      tables[(*n)++] = tables[i];
  return tables;
}

int bf__service_query_table_check(void *ctx, const char *catalog, const char *schema_name,
                                  const char *table, bf_error_t *err) {
  bf__query_access_t *access = ctx;
  bf_service_t *s = access->service;
  if (s->auth == NULL || !s->auth->enabled) return BF_OK;
  /* SQL names are case-insensitive: check the grant on the table the name resolves
   * to, as registered. */
  char c[130], sc[130], t[130];
  snprintf(c, sizeof c, "%s", catalog);
  snprintf(sc, sizeof sc, "%s", schema_name);
  snprintf(t, sizeof t, "%s", table);
  pthread_mutex_lock(&s->registry->mu);
  for (size_t i = 0; i < s->registry->n_tables; i++) {
    const bf_table_t *entry = s->registry->tables[i];
    if (strcasecmp(entry->catalog, catalog) == 0 && strcasecmp(entry->schema_name, schema_name) == 0 &&
        strcasecmp(entry->table, table) == 0) {
      snprintf(c, sizeof c, "%s", entry->catalog);
      snprintf(sc, sizeof sc, "%s", entry->schema_name);
      snprintf(t, sizeof t, "%s", entry->table);
      break;
    }
  }
  pthread_mutex_unlock(&s->registry->mu);
  return bf__service_authorize(s, access->call, BF_VERB_READ, c, sc, t, err);
}

void bf__service_handle_login(bf_service_t *s, bf_rpc_call_t *call, const uint8_t *req_bytes,
                              size_t size) {
  Bifrost__V1__LoginRequest *req = size > 64 * 1024 ? NULL
                                   : bifrost__v1__login_request__unpack(NULL, size, req_bytes);
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
  if (status != BF_OK) {
    bf_rpc_call_finish(call, status, err.message);
  } else {
    Bifrost__V1__LoginResponse resp = BIFROST__V1__LOGIN_RESPONSE__INIT;
    resp.token = token;
    resp.expires_at_ms = expires_ms;
    uint8_t packed[BF_TOKEN_MAX + 32];
    size_t n = bifrost__v1__login_response__pack(&resp, packed);
    bf_rpc_call_reply(call, packed, n);
  }
  bifrost__v1__login_request__free_unpacked(req, NULL);
}
