/* Bearer tokens: JWTs signed with HMAC-SHA256 (header {"alg":"HS256","typ":"JWT"},
 * claims {"sub": user, "iat": seconds, "exp": seconds}). The signing key comes from
 * --auth-secret-file or is generated once into <data-dir>/_bifrost_auth/secret
 * (mode 0600, created with link(2) so servers sharing the directory agree on one
 * key): tokens survive restarts and every such server accepts every token. */
#ifndef BIFROST_SERVER_AUTH_TOKEN_H
#define BIFROST_SERVER_AUTH_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "bifrost/error.h"

#define BF_TOKEN_SECRET_BYTES 32
#define BF_TOKEN_MAX 1024
#define BF_USER_NAME_MAX 128

typedef struct bf_token_key {
  uint8_t secret[64];
  size_t len;
} bf_token_key_t;

/* Reads the key from path (>= 32 bytes; raw or hex), or, with path NULL, from
 * <data_dir>/_bifrost_auth/secret, creating it with 32 random bytes if absent. */
int bf_token_key_load(const char *path, const char *data_dir, bf_token_key_t *key,
                      bf_error_t *err);

/* A token for user valid for ttl_secs from now; *expires_ms receives the expiry. */
int bf_token_issue(const bf_token_key_t *key, const char *user, double ttl_secs,
                   char out[BF_TOKEN_MAX], int64_t *expires_ms, bf_error_t *err);

/* Checks signature and expiry; fills user. BF_EAUTH with the reason otherwise. */
int bf_token_verify(const bf_token_key_t *key, const char *token, size_t len,
                    char user[BF_USER_NAME_MAX + 1], bf_error_t *err);

#endif
