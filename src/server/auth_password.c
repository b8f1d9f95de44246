/* PBKDF2-HMAC-SHA256 password hashes (see auth_password.h). */
#include "server/auth_password.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_BYTES 16
#define KEY_BYTES 32
#define PREFIX "$pbkdf2-sha256$i="

static int derive(const char *password, size_t len, const uint8_t *salt, size_t salt_len,
                  uint64_t iterations, uint8_t *key, bf_error_t *err) {
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "PBKDF2", NULL);
  EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
  OSSL_PARAM params[5];
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
  params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)password, len);
  params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
  params[3] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_ITER, &iterations);
  params[4] = OSSL_PARAM_construct_end();
  int ok = ctx != NULL && EVP_KDF_derive(ctx, key, KEY_BYTES, params) == 1;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  return ok ? BF_OK : bf_error_set(err, BF_EINTERNAL, "PBKDF2 is not available from OpenSSL");
}

int bf_password_hash(const char *password, size_t len, char *out, bf_error_t *err) {
  uint8_t salt[SALT_BYTES], key[KEY_BYTES];
  if (RAND_bytes(salt, sizeof salt) != 1)
    return bf_error_set(err, BF_EINTERNAL, "no random bytes for a salt");
  BF_RETURN_NOT_OK(derive(password, len, salt, sizeof salt, BF_PASSWORD_ITERATIONS, key, err));
  char salt64[32], key64[64];
  EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof salt);
  EVP_EncodeBlock((unsigned char *)key64, key, sizeof key);
  snprintf(out, BF_PASSWORD_HASH_MAX, PREFIX "%d$%s$%s", BF_PASSWORD_ITERATIONS, salt64, key64);
  OPENSSL_cleanse(key, sizeof key);
  return BF_OK;
}

/* Splits an encoded hash; BF_EINVAL naming the problem. */
static int parse(const char *encoded, uint64_t *iterations, uint8_t *salt, int *salt_len,
                 uint8_t *key, bf_error_t *err) {
  if (strncmp(encoded, PREFIX, strlen(PREFIX)) != 0)
    return bf_error_set(err, BF_EINVAL,
                        "is not a PBKDF2-SHA256 hash from `bifrost-server hash-password` "
                        "(plain-text passwords are refused)");
  char *end;
  unsigned long long n = strtoull(encoded + strlen(PREFIX), &end, 10);
  if (*end != '$' || n < BF_PASSWORD_MIN_ITERATIONS || n > 100000000ULL)
    return bf_error_set(err, BF_EINVAL, "has an iteration count outside %d..100000000",
                        BF_PASSWORD_MIN_ITERATIONS);
  const char *salt64 = end + 1, *dollar = strchr(salt64, '$');
  if (dollar == NULL) return bf_error_set(err, BF_EINVAL, "is malformed (no key part)");
  size_t salt64_len = (size_t)(dollar - salt64), key64_len = strlen(dollar + 1);
  uint8_t buf[96];
  if (salt64_len == 0 || salt64_len > 64 || salt64_len % 4 || key64_len != 44)
    return bf_error_set(err, BF_EINVAL, "is malformed (bad salt or key length)");
  int got = EVP_DecodeBlock(buf, (const unsigned char *)salt64, (int)salt64_len);
  if (got < 0) return bf_error_set(err, BF_EINVAL, "is malformed (salt is not base64)");
  int pad = (salt64[salt64_len - 1] == '=') + (salt64[salt64_len - 2] == '=');
  *salt_len = got - pad;
  if (*salt_len < 8) return bf_error_set(err, BF_EINVAL, "has a salt shorter than 8 bytes");
  memcpy(salt, buf, (size_t)*salt_len);
  got = EVP_DecodeBlock(buf, (const unsigned char *)dollar + 1, (int)key64_len);
  if (got != 33) return bf_error_set(err, BF_EINVAL, "is malformed (key is not 32 bytes)");
  memcpy(key, buf, KEY_BYTES);
  *iterations = n;
  return BF_OK;
}

int bf_password_hash_check(const char *encoded, bf_error_t *err) {
  uint64_t iterations = 0;
  uint8_t salt[64], key[KEY_BYTES];
  int salt_len = 0;
  return parse(encoded, &iterations, salt, &salt_len, key, err);
}

int bf_password_verify(const char *password, size_t len, const char *encoded, int *match,
                       bf_error_t *err) {
  uint64_t iterations = 0;
  uint8_t salt[64], want[KEY_BYTES], got[KEY_BYTES];
  int salt_len = 0;
  *match = 0;
  BF_RETURN_NOT_OK(parse(encoded, &iterations, salt, &salt_len, want, err));
  BF_RETURN_NOT_OK(derive(password, len, salt, (size_t)salt_len, iterations, got, err));
  *match = CRYPTO_memcmp(want, got, KEY_BYTES) == 0;
  OPENSSL_cleanse(got, sizeof got);
  return BF_OK;
}
