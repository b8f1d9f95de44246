/* Users, grants and logins (--auth-file). Without an auth file the server is in
 * open mode: every call is allowed and Login accepts any credentials. With one:
 *
 *   {"users": [{"name": "ingest", "password_hash": "$pbkdf2-sha256$...",
 *               "grants": [{"on": "prod.ml.*", "allow": ["write"]}]}]}
 *
 * `on` is catalog.schema.table with `*` for any one part; `read` = query, list,
 * describe; `write` = register and insert; `admin` = maintenance. Unknown keys,
 * verbs or malformed hashes make the file invalid: refused at start, and on a
 * reload (SIGHUP) the old users stay in force. Logins return a bearer token (see
 * auth_token.h); failed logins are slowed per user and per peer. Thread-safe. */
#ifndef BIFROST_SERVER_AUTH_H
#define BIFROST_SERVER_AUTH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bifrost/error.h"
#include "server/auth_token.h"

enum { BF_VERB_READ = 1, BF_VERB_WRITE = 2, BF_VERB_ADMIN = 4 };

typedef struct bf_auth_users bf_auth_users_t;
typedef struct bf_auth_failure bf_auth_failure_t;

typedef struct bf_auth {
  int enabled;                 /* an auth file is in force */
  char path[4096];
  double token_ttl_secs;
  bf_token_key_t key;
  pthread_rwlock_t lock;
  bf_auth_users_t *users;      /* guarded by lock */
  pthread_mutex_t failures_mu;
  bf_auth_failure_t *failures; /* guarded by failures_mu */
  size_t n_failures;
  int delayed_logins;          /* logins sleeping out their failure delay; guarded by failures_mu */
} bf_auth_t;

/* Loads the auth file (NULL = open mode) and the token key. */
int bf_auth_open(bf_auth_t *auth, const char *auth_file, const char *secret_file,
                 const char *data_dir, double token_ttl_secs, bf_error_t *err);
void bf_auth_close(bf_auth_t *auth);

/* Re-reads the auth file; on failure the users in force stay and err says why. */
int bf_auth_reload(bf_auth_t *auth, bf_error_t *err);

/* Checks the password (slowed after failures for this user or peer) and issues a
 * token. BF_EAUTH for unknown users and wrong passwords alike. */
int bf_auth_login(bf_auth_t *auth, const char *user, const char *password, const char *peer,
                  char token[BF_TOKEN_MAX], int64_t *expires_ms, bf_error_t *err);

/* The caller's user from "authorization: Bearer <token>" metadata (value, len).
 * In open mode anyone passes (user ""). BF_EAUTH when missing or invalid, or the
 * user no longer exists. */
int bf_auth_authenticate(bf_auth_t *auth, const char *authorization, size_t len,
                         char user[BF_USER_NAME_MAX + 1], bf_error_t *err);

/* Whether user may do verb (BF_VERB_*) on catalog.schema.table. Open mode: yes. */
int bf_auth_allowed(bf_auth_t *auth, const char *user, int verb, const char *catalog,
                    const char *schema_name, const char *table);

const char *bf_auth_verb_name(int verb);

#endif
