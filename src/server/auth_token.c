/* HMAC-SHA256 JWTs and their signing key (see auth_token.h). */
#include "server/auth_token.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bifrost/util.h"

/* ---- base64url without padding --------------------------------------------------- */

static size_t b64url_encode(const uint8_t *in, size_t n, char *out) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                 (i + 2 < n ? in[i + 2] : 0);
    out[o++] = alphabet[(v >> 18) & 63];
    out[o++] = alphabet[(v >> 12) & 63];
    if (i + 1 < n) out[o++] = alphabet[(v >> 6) & 63];
    if (i + 2 < n) out[o++] = alphabet[v & 63];
  }
  out[o] = '\0';
  return o;
}

static int b64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

/* Returns the decoded length, or -1. out holds at least n * 3 / 4 + 1 bytes. */
static long b64url_decode(const char *in, size_t n, uint8_t *out) {
  if (n % 4 == 1) return -1;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64url_value(in[i]);
    if (v < 0) return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  return (long)o;
}

/* ---- the key ----------------------------------------------------------------------- */

static int read_key_file(const char *path, bf_token_key_t *key, bf_error_t *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return bf_error_set(err, BF_EIO, "cannot read the token signing key %s: %s", path,
                        strerror(errno));
  uint8_t buf[200];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
  if (n > sizeof key->secret) n = sizeof key->secret;
  if (n < BF_TOKEN_SECRET_BYTES)
    return bf_error_set(err, BF_EINVAL, "the token signing key %s has %zu bytes; at least %d are "
                        "needed", path, n, BF_TOKEN_SECRET_BYTES);
  memcpy(key->secret, buf, n);
  key->len = n;
  OPENSSL_cleanse(buf, sizeof buf);
  return BF_OK;
}

int bf_token_key_load(const char *path, const char *data_dir, bf_token_key_t *key,
                      bf_error_t *err) {
  memset(key, 0, sizeof *key);
  if (path) return read_key_file(path, key, err);
  char dir[PATH_MAX], secret_path[PATH_MAX + 16], tmp[PATH_MAX + 64];
  snprintf(dir, sizeof dir, "%s/_bifrost_auth", data_dir);
  snprintf(secret_path, sizeof secret_path, "%s/secret", dir);
  if (access(secret_path, F_OK) == 0) return read_key_file(secret_path, key, err);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return bf_error_set(err, BF_EIO, "cannot create %s: %s", dir, strerror(errno));
  uint8_t raw[BF_TOKEN_SECRET_BYTES];
  char hex[2 * BF_TOKEN_SECRET_BYTES + 2];
  if (RAND_bytes(raw, sizeof raw) != 1) return bf_error_set(err, BF_EINTERNAL, "no random bytes");
  for (size_t i = 0; i < sizeof raw; i++) snprintf(hex + 2 * i, 3, "%02x", raw[i]);
  hex[2 * sizeof raw] = '\n';
  snprintf(tmp, sizeof tmp, "%s/.secret-%ld", dir, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int ok = fd >= 0 && write(fd, hex, 2 * sizeof raw + 1) == (ssize_t)(2 * sizeof raw + 1) &&
           fsync(fd) == 0;
  if (fd >= 0) close(fd);
  /* link(2) fails if another server created it first: then theirs is the key. */
  if (ok && link(tmp, secret_path) != 0 && errno != EEXIST) ok = 0;
  unlink(tmp);
  OPENSSL_cleanse(raw, sizeof raw);
  OPENSSL_cleanse(hex, sizeof hex);
  if (!ok) return bf_error_set(err, BF_EIO, "cannot create the token signing key %s", secret_path);
  return read_key_file(secret_path, key, err);
}

/* ---- tokens ------------------------------------------------------------------------ */

static void sign(const bf_token_key_t *key, const char *data, size_t n, uint8_t mac[32]) {
  unsigned int len = 32;
  HMAC(EVP_sha256(), key->secret, (int)key->len, (const uint8_t *)data, n, mac, &len);
}

int bf_token_issue(const bf_token_key_t *key, const char *user, double ttl_secs,
                   char out[BF_TOKEN_MAX], int64_t *expires_ms, bf_error_t *err) {
  static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
  int64_t now_ms = bf_time_now_ms();
  int64_t exp_ms = now_ms + (int64_t)(ttl_secs * 1000);
  json_t *claims = json_pack("{s:s, s:I, s:I}", "sub", user, "iat", (json_int_t)(now_ms / 1000),
                             "exp", (json_int_t)(exp_ms / 1000));
  char *payload = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
  json_decref(claims);
  if (payload == NULL || strlen(payload) > 400) {
    free(payload);
    return bf_error_set(err, BF_EINVAL, "user name too long for a token");
  }
  size_t o = b64url_encode((const uint8_t *)header, strlen(header), out);
  out[o++] = '.';
  o += b64url_encode((const uint8_t *)payload, strlen(payload), out + o);
  free(payload);
  uint8_t mac[32];
  sign(key, out, o, mac);
  out[o++] = '.';
  b64url_encode(mac, sizeof mac, out + o);
  *expires_ms = (exp_ms / 1000) * 1000;
  return BF_OK;
}

int bf_token_verify(const bf_token_key_t *key, const char *token, size_t len,
                    char user[BF_USER_NAME_MAX + 1], bf_error_t *err) {
  if (len == 0 || len >= BF_TOKEN_MAX) return bf_error_set(err, BF_EAUTH, "malformed token");
  const char *dot1 = memchr(token, '.', len);
  const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
  if (dot2 == NULL) return bf_error_set(err, BF_EAUTH, "malformed token");
  uint8_t want[32], got[48];
  sign(key, token, (size_t)(dot2 - token), want);
  long mac_len = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), got);
  if (mac_len != 32 || CRYPTO_memcmp(want, got, 32) != 0)
    return bf_error_set(err, BF_EAUTH, "token signature does not match (signed with another key?)");
  uint8_t payload[BF_TOKEN_MAX];
  long payload_len = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload);
  if (payload_len <= 0) return bf_error_set(err, BF_EAUTH, "malformed token");
  json_t *claims = json_loadb((const char *)payload, (size_t)payload_len, 0, NULL);
  const char *sub = json_string_value(json_object_get(claims, "sub"));
  json_t *exp = json_object_get(claims, "exp");
  int status = BF_OK;
  if (sub == NULL || !json_is_integer(exp) || strlen(sub) > BF_USER_NAME_MAX)
    status = bf_error_set(err, BF_EAUTH, "malformed token claims");
  else if (json_integer_value(exp) * 1000 <= bf_time_now_ms())
    status = bf_error_set(err, BF_EAUTH, "token expired; log in again");
  else
    snprintf(user, BF_USER_NAME_MAX + 1, "%s", sub);
  json_decref(claims);
  return status;
}
