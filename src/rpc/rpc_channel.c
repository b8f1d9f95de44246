/* gRPC core client channel and unary calls (server streams: rpc_stream.c). Each call
 * gets its own pluck completion queue, so one channel serves any number of threads
 * at once. Errors come back as bf statuses: the exact one from the server's
 * "bf-status" trailing metadata when present, else mapped from the gRPC code, with
 * the server's status message (or gRPC's, e.g. "failed to connect") in err.
 *
 * A target without a port gets the default port 50051 ("127.0.0.1" ->
 * "127.0.0.1:50051", "::1" -> "[::1]:50051"); port 0 or a non-numeric port is an
 * error. Idempotent calls (bf_rpc_channel_unary_idempotent) are sent a second time
 * when the first attempt died on the transport: after a server restart gRPC may
 * hand a new channel the pooled connection to the dead process. */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bifrost/rpc.h"
#include "bifrost/v1/bifrost.pb-c.h"
#include "rpc/rpc_internal.h"

/* Checks a port: 1..65535, digits only. */
static int check_port(const char *port, size_t len, const char *target, bf_error_t *err) {
  long value = 0;
  for (size_t i = 0; i < len; i++) {
    if (!isdigit((unsigned char)port[i]) || value > 65535)
      return bf_error_set(err, BF_EINVAL, "server address '%s': port '%.*s' is not a number", target,
                          (int)len, port);
    value = value * 10 + (port[i] - '0');
  }
  if (value < 1 || value > 65535)
    return bf_error_set(err, BF_EINVAL, "server address '%s': port must be 1..65535", target);
  return BF_OK;
}

/* host[:port] / [v6][:port] / bare v6 -> the gRPC target with an explicit port.
 * Targets naming a resolver scheme ("dns:", "unix:", "ipv4:", ...) pass unchanged. */
static int normalize_target(const char *target, char *out, size_t out_size, bf_error_t *err) {
  static const char *const schemes[] = {"dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "vsock:"};
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (strncmp(target, schemes[i], strlen(schemes[i])) == 0) {
      snprintf(out, out_size, "%s", target);
      return BF_OK;
    }
  const char *port = NULL;
  size_t host_len = strlen(target);
  int bare_v6 = 0;
  if (target[0] == '[') {
    const char *close = strchr(target, ']');
    if (close == NULL) return bf_error_set(err, BF_EINVAL, "server address '%s': missing ']'", target);
    host_len = (size_t)(close - target) + 1;
    if (close[1] == ':') port = close + 2;
    else if (close[1] != '\0')
      return bf_error_set(err, BF_EINVAL, "server address '%s': unexpected text after ']'", target);
  } else {
    const char *colon = strchr(target, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL) {
      bare_v6 = 1; /* "::1", "fe80::1": an IPv6 address without brackets or port */
    } else if (colon != NULL) {
      host_len = (size_t)(colon - target);
      port = colon + 1;
    }
  }
  if (host_len == 0 || (target[0] == '[' && host_len <= 2))
    return bf_error_set(err, BF_EINVAL, "server address '%s' has no host", target);
  if (port != NULL) BF_RETURN_NOT_OK(check_port(port, strlen(port), target, err));
  int n;
  if (bare_v6)
    n = snprintf(out, out_size, "[%s]:%d", target, BF_RPC_DEFAULT_PORT);
  else if (port != NULL)
    n = snprintf(out, out_size, "%s", target);
  else
    n = snprintf(out, out_size, "%.*s:%d", (int)host_len, target, BF_RPC_DEFAULT_PORT);
  if (n < 0 || (size_t)n >= out_size)
    return bf_error_set(err, BF_EINVAL, "server address is too long (%zu bytes)", strlen(target));
  return BF_OK;
}

/* "Basic base64(user:password)" -> user and password (owned), else 0. */
static int parse_basic(const char *authorization, char **user, char **password) {
  if (authorization == NULL || strncmp(authorization, "Basic ", 6) != 0) return 0;
  const char *b64 = authorization + 6;
  size_t n = strlen(b64);
  if (n == 0 || n % 4 != 0 || n > 8192) return 0;
  unsigned char *decoded = malloc(n / 4 * 3 + 1);
  if (decoded == NULL) return 0;
  int len = EVP_DecodeBlock(decoded, (const unsigned char *)b64, (int)n);
  if (len < 0) {
    free(decoded);
    return 0;
  }
  len -= (b64[n - 1] == '=') + (b64[n - 2] == '=');
  decoded[len] = '\0';
  char *colon = memchr(decoded, ':', (size_t)len);
  if (colon == NULL) {
    free(decoded);
    return 0;
  }
  *colon = '\0';
  *user = strdup((char *)decoded);
  *password = strdup(colon + 1);
  memset(decoded, 0, (size_t)len);
  free(decoded);
  return *user && *password;
}

/* Reads a PEM file named by path, or by the environment variable env when path
 * is NULL; *out NULL when neither names one. */
static int read_pem_file(const char *path, const char *env, char **out, bf_error_t *err) {
  *out = NULL;
  if (path == NULL || path[0] == '\0') path = getenv(env);
  if (path == NULL || path[0] == '\0') return BF_OK;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return bf_error_set(err, BF_EINVAL, "cannot read %s (%s)", path, env);
  char *text = malloc(1 << 20);
  size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (text == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  text[n] = '\0';
  if (strstr(text, "-----BEGIN") == NULL) {
    free(text);
    return bf_error_set(err, BF_EINVAL, "%s is not a PEM file", path);
  }
  *out = text;
  return BF_OK;
}

static grpc_channel_credentials *tls_credentials(const bf_rpc_channel_options_t *options,
                                                 bf_error_t *err) {
  char *ca = NULL, *cert = NULL, *key = NULL;
  int status = read_pem_file(options->tls_ca_file, "BIFROST_TLS_CA_FILE", &ca, err);
  if (status == BF_OK)
    status = read_pem_file(options->tls_cert_file, "BIFROST_TLS_CERT_FILE", &cert, err);
  if (status == BF_OK)
    status = read_pem_file(options->tls_key_file, "BIFROST_TLS_KEY_FILE", &key, err);
  if (status == BF_OK && (cert == NULL) != (key == NULL))
    status = bf_error_set(err, BF_EINVAL, "a client certificate and its key go together");
  grpc_channel_credentials *creds = NULL;
  if (status == BF_OK) {
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
    if (creds == NULL) bf_error_set(err, BF_EINVAL, "invalid TLS settings");
  }
  free(ca);
  free(cert);
  free(key);
  return creds;
}

int bf_rpc_channel_create(const bf_rpc_channel_options_t *options, bf_rpc_channel_t **out,
                          bf_error_t *err) {
  const char *target = options->target ? options->target : "localhost:50051";
  bool tls = options->tls;
  if (strncmp(target, "https://", 8) == 0) {
    target += 8;
    tls = true;
  } else if (strncmp(target, "http://", 7) == 0) {
    target += 7;
  } else if (strncmp(target, "grpc://", 7) == 0) {
    target += 7;
  }
  if (target[0] == '\0') return bf_error_set(err, BF_EINVAL, "empty server address");
  struct bf_rpc_channel *ch = calloc(1, sizeof *ch);
  if (ch == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  int status = normalize_target(target, ch->target, sizeof ch->target, err);
  if (status != BF_OK) {
    free(ch);
    return status;
  }
  pthread_mutex_init(&ch->auth_mu, NULL);
  if (options->authorization && !parse_basic(options->authorization, &ch->login_user,
                                             &ch->login_password)) {
    free(ch->login_user);
    free(ch->login_password);
    ch->login_user = ch->login_password = NULL;
    ch->authorization = strdup(options->authorization);
    if (ch->authorization == NULL) {
      pthread_mutex_destroy(&ch->auth_mu);
      free(ch);
      return bf_error_set(err, BF_ENOMEM, "out of memory");
    }
  }
  bf__rpc_fork_support_init();
  bf_rpc_global_init();
  grpc_channel_credentials *creds = tls ? tls_credentials(options, err)
                                        : grpc_insecure_credentials_create();
  if (creds == NULL) {
    free(ch->authorization);
    free(ch->login_user);
    free(ch->login_password);
    pthread_mutex_destroy(&ch->auth_mu);
    free(ch);
    bf_rpc_global_shutdown();
    return err ? err->status : BF_EINVAL;
  }
  /* A private subchannel pool: a channel never shares (or inherits, after fork())
   * another channel's connection, so a forked child's calls cannot write on the
   * parent's connection. Reconnect attempts after a lost server: 0.25 s, then
   * growing to at most 5 s apart (gRPC's defaults, 1 s growing to 120 s, left a
   * producer up to two minutes behind a server that was back; see also the backup
   * poller in bf_rpc_global_init). */
  grpc_arg args[] = {
      bf__rpc_int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, BF_RPC_MAX_MESSAGE_BYTES),
      bf__rpc_int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, BF_RPC_MAX_MESSAGE_BYTES),
      bf__rpc_int_arg(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1),
      bf__rpc_int_arg(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250),
      bf__rpc_int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000),
  };
  grpc_channel_args channel_args = {sizeof args / sizeof args[0], args};
  ch->channel = grpc_channel_create(ch->target, creds, &channel_args);
  grpc_channel_credentials_release(creds);
  *out = ch;
  return BF_OK;
}

void bf_rpc_channel_destroy(bf_rpc_channel_t *ch) {
  if (ch == NULL) return;
  grpc_channel_destroy(ch->channel);
  free(ch->authorization);
  if (ch->login_password) memset(ch->login_password, 0, strlen(ch->login_password));
  free(ch->login_user);
  free(ch->login_password);
  free(ch->bearer);
  pthread_mutex_destroy(&ch->auth_mu);
  free(ch);
  bf_rpc_global_shutdown();
}

static int unary_once(bf_rpc_channel_t *ch, const char *method, const uint8_t *request,
                      size_t request_size, bf_shared_t *body, double timeout_secs,
                      bf_buffer_t *response, int *transport_failed, bf_error_t *err);

/* Logs in with the channel's credentials. Caller holds auth_mu. */
static int login(bf_rpc_channel_t *ch, double timeout, bf_error_t *err) {
  Bifrost__V1__LoginRequest req = BIFROST__V1__LOGIN_REQUEST__INIT;
  req.username = ch->login_user;
  req.password = ch->login_password;
  size_t size = bifrost__v1__login_request__get_packed_size(&req);
  uint8_t *packed = malloc(size ? size : 1);
  if (packed == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  bifrost__v1__login_request__pack(&req, packed);
  bf_buffer_t response;
  bf_buffer_init(&response);
  int transport_failed = 0;
  int status = unary_once(ch, BF_RPC_METHOD_LOGIN, packed, size, NULL, timeout, &response,
                          &transport_failed, err);
  memset(packed, 0, size);
  free(packed);
  Bifrost__V1__LoginResponse *resp =
      status == BF_OK ? bifrost__v1__login_response__unpack(NULL, response.size, response.data) : NULL;
  bf_buffer_reset(&response);
  if (status != BF_OK) {
    bf_error_prefix(err, "logging in as '%s'", ch->login_user);
    return status;
  }
  if (resp == NULL || resp->token == NULL || resp->token[0] == '\0')
    status = bf_error_set(err, BF_EAUTH, "the server's login answer holds no token");
  char *bearer = status == BF_OK ? malloc(strlen(resp->token) + 8) : NULL;
  if (status == BF_OK && bearer == NULL) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  if (status == BF_OK) {
    sprintf(bearer, "Bearer %s", resp->token);
    free(ch->bearer);
    ch->bearer = bearer;
    ch->bearer_obtained_ms = bf_time_now_ms();
    ch->bearer_expires_ms = resp->expires_at_ms;
  }
  if (resp) bifrost__v1__login_response__free_unpacked(resp, NULL);
  return status;
}

/* A current "Bearer <token>" (owned copy): logs in when there is none or it is
 * within a fifth of its lifetime (or 30 s) of expiring. */
static int current_bearer(bf_rpc_channel_t *ch, double timeout, char **out, bf_error_t *err) {
  pthread_mutex_lock(&ch->auth_mu);
  int64_t now = bf_time_now_ms();
  int64_t life = ch->bearer_expires_ms - ch->bearer_obtained_ms;
  int64_t renew_at = ch->bearer_expires_ms - (life / 5 > 30000 ? life / 5 : 30000);
  int status = BF_OK;
  if (ch->bearer == NULL || now >= renew_at) status = login(ch, timeout, err);
  *out = status == BF_OK ? strdup(ch->bearer) : NULL;
  if (status == BF_OK && *out == NULL) status = bf_error_set(err, BF_ENOMEM, "out of memory");
  pthread_mutex_unlock(&ch->auth_mu);
  return status;
}

void bf__rpc_channel_forget_token(bf_rpc_channel_t *ch, const char *used) {
  pthread_mutex_lock(&ch->auth_mu);
  if (ch->bearer && used && strcmp(ch->bearer, used) == 0) {
    free(ch->bearer);
    ch->bearer = NULL;
  }
  pthread_mutex_unlock(&ch->auth_mu);
}

int bf__rpc_call_start(bf_rpc_channel_t *ch, bf__rpc_call_t *c, const char *method, double timeout) {
  memset(c, 0, sizeof *c);
  bf_error_init(&c->start_err);
  if (ch->login_user && strcmp(method, BF_RPC_METHOD_LOGIN) != 0) {
    int status = current_bearer(ch, timeout, &c->auth_value, &c->start_err);
    if (status != BF_OK) {
      c->cq = grpc_completion_queue_create_for_pluck(NULL);
      grpc_metadata_array_init(&c->initial_md);
      grpc_metadata_array_init(&c->trailing_md);
      c->details = grpc_empty_slice();
      return status;
    }
  }
  c->cq = grpc_completion_queue_create_for_pluck(NULL);
  grpc_slice method_slice = grpc_slice_from_copied_string(method);
  c->call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                     method_slice, NULL, bf__rpc_deadline(timeout), NULL);
  grpc_slice_unref(method_slice);
  grpc_metadata_array_init(&c->initial_md);
  grpc_metadata_array_init(&c->trailing_md);
  c->details = grpc_empty_slice();
  return c->call ? BF_OK : BF_EINTERNAL;
}

int bf__rpc_call_batch(bf__rpc_call_t *c, grpc_op *ops, size_t n) {
  if (grpc_call_start_batch(c->call, ops, n, ops, NULL) != GRPC_CALL_OK) return 0;
  grpc_event ev = grpc_completion_queue_pluck(c->cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  return ev.type == GRPC_OP_COMPLETE && ev.success;
}

int bf__rpc_call_status(bf__rpc_call_t *c, bf_rpc_channel_t *ch, int *transport_failed,
                        bf_error_t *err) {
  if (transport_failed) *transport_failed = 0;
  if (c->status == GRPC_STATUS_OK) return BF_OK;
  int status = bf_rpc_status_from_grpc(c->status);
  int from_server = 0; /* the status came from a Bifrost handler, not the transport */
  for (size_t i = 0; i < c->trailing_md.count; i++) {
    const grpc_metadata *md = &c->trailing_md.metadata[i];
    if (GRPC_SLICE_LENGTH(md->key) == strlen(BF_RPC_STATUS_METADATA_KEY) &&
        memcmp(GRPC_SLICE_START_PTR(md->key), BF_RPC_STATUS_METADATA_KEY,
               strlen(BF_RPC_STATUS_METADATA_KEY)) == 0) {
      status = bf__rpc_status_from_name((const char *)GRPC_SLICE_START_PTR(md->value),
                                        GRPC_SLICE_LENGTH(md->value), status);
      from_server = 1;
    }
  }
  int n = (int)GRPC_SLICE_LENGTH(c->details);
  const char *text = (const char *)GRPC_SLICE_START_PTR(c->details);
  if (c->status == GRPC_STATUS_UNAVAILABLE && !from_server) {
    if (transport_failed) *transport_failed = 1;
    return bf_error_set(err, status, "server %s unavailable: %.*s", ch->target, n, text);
  }
  if (c->status == GRPC_STATUS_DEADLINE_EXCEEDED && n == 0)
    return bf_error_set(err, status, "deadline exceeded");
  return bf_error_set(err, status, "%.*s", n, text);
}

void bf__rpc_call_end(bf__rpc_call_t *c) {
  free(c->auth_value);
  c->auth_value = NULL;
  grpc_metadata_array_destroy(&c->initial_md);
  grpc_metadata_array_destroy(&c->trailing_md);
  grpc_slice_unref(c->details);
  if (c->call) grpc_call_unref(c->call);
  /* Every batch was waited for, so the queue is empty. */
  grpc_completion_queue_shutdown(c->cq);
  grpc_completion_queue_destroy(c->cq);
}

void bf__rpc_op_send_initial(bf_rpc_channel_t *ch, bf__rpc_call_t *c, grpc_op *op) {
  memset(op, 0, sizeof *op);
  op->op = GRPC_OP_SEND_INITIAL_METADATA;
  const char *value = c->auth_value ? c->auth_value : ch->authorization;
  if (value) {
    c->auth_md.key = grpc_slice_from_static_string("authorization");
    c->auth_md.value = grpc_slice_from_static_string(value);
    op->data.send_initial_metadata.count = 1;
    op->data.send_initial_metadata.metadata = &c->auth_md;
  }
}

static int unary_once(bf_rpc_channel_t *ch, const char *method, const uint8_t *request,
                      size_t request_size, bf_shared_t *body, double timeout_secs,
                      bf_buffer_t *response, int *transport_failed, bf_error_t *err) {
  bf__rpc_call_t c;
  *transport_failed = 0;
  int start = bf__rpc_call_start(ch, &c, method, timeout_secs);
  if (start != BF_OK) {
    if (c.start_err.status != BF_OK) bf_error_set(err, c.start_err.status, "%s", c.start_err.message);
    else bf_error_set(err, BF_EINTERNAL, "cannot create call %s", method);
    bf__rpc_call_end(&c);
    return err ? err->status : start;
  }
  grpc_byte_buffer *req = bf__rpc_byte_buffer_with_body(request, request_size, body);
  grpc_byte_buffer *resp = NULL;
  grpc_op ops[6];
  bf__rpc_op_send_initial(ch, &c, &ops[0]);
  memset(&ops[1], 0, sizeof ops[1]);
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = req;
  memset(&ops[2], 0, sizeof ops[2]);
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  memset(&ops[3], 0, sizeof ops[3]);
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &c.initial_md;
  memset(&ops[4], 0, sizeof ops[4]);
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &resp;
  memset(&ops[5], 0, sizeof ops[5]);
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &c.trailing_md;
  ops[5].data.recv_status_on_client.status = &c.status;
  ops[5].data.recv_status_on_client.status_details = &c.details;
  int status;
  if (!bf__rpc_call_batch(&c, ops, 6)) {
    status = bf_error_set(err, BF_EINTERNAL, "call %s failed", method);
  } else {
    status = bf__rpc_call_status(&c, ch, transport_failed, err);
    if (status == BF_OK) {
      if (resp == NULL)
        status = bf_error_set(err, BF_EINTERNAL, "%s: server sent no response", method);
      else if (bf__rpc_read_byte_buffer(resp, response) != BF_OK)
        status = bf_error_set(err, BF_ENOMEM, "out of memory reading the response");
    }
  }
  if (resp) grpc_byte_buffer_destroy(resp);
  grpc_byte_buffer_destroy(req);
  /* Refused for its token (expired, or the key changed): the next call logs in. */
  if (status == BF_EAUTH && c.auth_value) bf__rpc_channel_forget_token(ch, c.auth_value);
  bf__rpc_call_end(&c);
  return status;
}

int bf_rpc_channel_unary_body(bf_rpc_channel_t *ch, const char *method, const uint8_t *head,
                              size_t head_size, bf_shared_t *body, double timeout_secs,
                              bf_buffer_t *response, bf_error_t *err) {
  int transport_failed;
  int status = unary_once(ch, method, head, head_size, body, timeout_secs, response,
                          &transport_failed, err);
  /* UNAUTHENTICATED is answered before the server reads the request, so sending
   * it again with a fresh token is safe for any call. */
  if (status == BF_EAUTH && ch->login_user && strcmp(method, BF_RPC_METHOD_LOGIN) != 0)
    status = unary_once(ch, method, head, head_size, body, timeout_secs, response,
                        &transport_failed, err);
  return status;
}

int bf_rpc_channel_unary(bf_rpc_channel_t *ch, const char *method, const uint8_t *request,
                         size_t request_size, double timeout_secs, bf_buffer_t *response,
                         bf_error_t *err) {
  return bf_rpc_channel_unary_body(ch, method, request, request_size, NULL, timeout_secs,
                                   response, err);
}

int bf_rpc_channel_unary_idempotent(bf_rpc_channel_t *ch, const char *method,
                                    const uint8_t *request, size_t request_size,
                                    double timeout_secs, bf_buffer_t *response, bf_error_t *err) {
  double started = bf_time_monotonic();
  int transport_failed;
  int status = unary_once(ch, method, request, request_size, NULL, timeout_secs, response,
                          &transport_failed, err);
  if (status == BF_EAUTH && ch->login_user) /* with a fresh token */
    return unary_once(ch, method, request, request_size, NULL, timeout_secs, response,
                      &transport_failed, err);
  if (status != BF_EUNAVAILABLE || !transport_failed) return status;
  double left = timeout_secs;
  if (timeout_secs > 0) {
    left = timeout_secs - (bf_time_monotonic() - started);
    if (left <= 0) return status;
  }
  return unary_once(ch, method, request, request_size, NULL, left, response, &transport_failed,
                    err);
}
