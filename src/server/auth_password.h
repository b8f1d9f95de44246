/* Password hashes for the auth file: PBKDF2-HMAC-SHA256 through OpenSSL 3's
 * EVP_KDF, salted, with a high iteration count, stored as
 *   $pbkdf2-sha256$i=<iterations>$<salt, base64>$<derived key, base64>
 * `bifrost-server hash-password` prints one; the server refuses anything else
 * (plain text, another algorithm, fewer than BF_PASSWORD_MIN_ITERATIONS). */
#ifndef BIFROST_SERVER_AUTH_PASSWORD_H
#define BIFROST_SERVER_AUTH_PASSWORD_H

#include <stddef.h>

#include "bifrost/error.h"

#define BF_PASSWORD_ITERATIONS 600000     /* OWASP's figure for PBKDF2-HMAC-SHA256 */
#define BF_PASSWORD_MIN_ITERATIONS 100000
#define BF_PASSWORD_HASH_MAX 160

/* Hashes password with a fresh random salt into out (BF_PASSWORD_HASH_MAX bytes). */
int bf_password_hash(const char *password, size_t len, char *out, bf_error_t *err);

/* BF_OK if encoded is a well-formed hash this server accepts, else BF_EINVAL
 * saying what is wrong (without echoing the value). */
int bf_password_hash_check(const char *encoded, bf_error_t *err);

/* *match = 1 when password hashes to encoded (constant-time comparison). */
int bf_password_verify(const char *password, size_t len, const char *encoded, int *match,
                       bf_error_t *err);

#endif
