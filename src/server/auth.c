/* Users, grants, logins (see auth.h). */
#include "server/auth.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "bifrost/util.h"
#include "server/auth_password.h"
#include "server/log.h"

#define MAX_FAILURE_ENTRIES 4096
#define MAX_LOGIN_DELAY_SECS 5.0
/* Logins that may sleep out a failure delay at once, server-wide (each holds an
 * RPC worker); beyond them a delayed login is refused at once. */
#define MAX_DELAYED_LOGINS 2

typedef struct grant {
  char parts[3][130]; /* catalog, schema, table; "*" = any */
  int verbs;
} grant_t;

typedef struct user {
  char name[BF_USER_NAME_MAX + 1];
  char hash[BF_PASSWORD_HASH_MAX];
  grant_t *grants;
  size_t n_grants;
} user_t;

struct bf_auth_users {
  user_t *users;
  size_t n;
};

struct bf_auth_failure {
  char key[BF_USER_NAME_MAX + 200]; /* "u:<user>" or "p:<peer>" */
  int count;
  int64_t last_ms;
};

const char *bf_auth_verb_name(int verb) {
  return verb == BF_VERB_READ ? "read" : verb == BF_VERB_WRITE ? "write" : "admin";
}

static void users_free(bf_auth_users_t *u) {
  if (u == NULL) return;
  for (size_t i = 0; i < u->n; i++) free(u->users[i].grants);
  free(u->users);
  free(u);
}

static int only_keys(json_t *object, const char *const *keys, size_t n, const char *where,
                     bf_error_t *err) {
  const char *key;
  json_t *value;
  json_object_foreach(object, key, value) {
    int known = 0;
    for (size_t i = 0; i < n; i++) known |= strcmp(key, keys[i]) == 0;
    if (!known) return bf_error_set(err, BF_EINVAL, "%s: unknown key '%s'", where, key);
  }
  return BF_OK;
}

static int parse_grant(json_t *g, grant_t *out, const char *where, bf_error_t *err) {
  static const char *const keys[] = {"on", "allow"};
  if (!json_is_object(g)) return bf_error_set(err, BF_EINVAL, "%s: a grant must be an object", where);
  BF_RETURN_NOT_OK(only_keys(g, keys, 2, where, err));
  const char *on = json_string_value(json_object_get(g, "on"));
  json_t *allow = json_object_get(g, "allow");
  if (on == NULL || !json_is_array(allow) || json_array_size(allow) == 0)
    return bf_error_set(err, BF_EINVAL, "%s: a grant needs \"on\" and a non-empty \"allow\" list",
                        where);
  if (sscanf(on, "%129[^.].%129[^.].%129[^.]", out->parts[0], out->parts[1], out->parts[2]) != 3 ||
      strlen(out->parts[0]) + strlen(out->parts[1]) + strlen(out->parts[2]) + 2 != strlen(on))
    return bf_error_set(err, BF_EINVAL, "%s: \"on\": \"%s\" is not catalog.schema.table (use * for "
                        "any one part)", where, on);
  size_t i;
  json_t *verb;
  out->verbs = 0;
  json_array_foreach(allow, i, verb) {
    const char *v = json_string_value(verb);
    if (v && strcmp(v, "read") == 0) out->verbs |= BF_VERB_READ;
    else if (v && strcmp(v, "write") == 0) out->verbs |= BF_VERB_WRITE;
    else if (v && strcmp(v, "admin") == 0) out->verbs |= BF_VERB_ADMIN;
    else
      return bf_error_set(err, BF_EINVAL, "%s: unknown verb '%s' (read, write, admin)", where,
                          v ? v : "?");
  }
  return BF_OK;
}

static int load_users(const char *path, bf_auth_users_t **out, bf_error_t *err) {
  struct stat st;
  if (stat(path, &st) != 0)
    return bf_error_set(err, BF_EIO, "cannot read the auth file %s: %s", path, strerror(errno));
  if (st.st_mode & 077)
    BF_LOG_WARN("the auth file %s is readable by other users (mode %03o); chmod 600 it", path,
                (unsigned)(st.st_mode & 0777));
  json_error_t jerr;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL)
    return bf_error_set(err, BF_EINVAL, "the auth file %s is not valid JSON (line %d: %s)", path,
                        jerr.line, jerr.text);
  static const char *const top_keys[] = {"users"};
  static const char *const user_keys[] = {"name", "password_hash", "grants"};
  bf_auth_users_t *u = calloc(1, sizeof *u);
  json_t *users = json_object_get(root, "users");
  int status = u ? BF_OK : bf_error_set(err, BF_ENOMEM, "out of memory");
  if (status == BF_OK) status = json_is_object(root) ? only_keys(root, top_keys, 1, path, err)
                                                     : bf_error_set(err, BF_EINVAL, "%s: not an object", path);
  if (status == BF_OK && !json_is_array(users))
    status = bf_error_set(err, BF_EINVAL, "%s: \"users\" must be a list", path);
  if (status == BF_OK && (u->users = calloc(json_array_size(users) + 1, sizeof *u->users)) == NULL)
    status = bf_error_set(err, BF_ENOMEM, "out of memory");
  size_t i;
  json_t *entry;
  json_array_foreach(users, i, entry) {
    if (status != BF_OK) break;
    char where[300];
    snprintf(where, sizeof where, "%s: user %zu", path, i + 1);
    if (!json_is_object(entry)) {
      status = bf_error_set(err, BF_EINVAL, "%s: not an object", where);
      break;
    }
    if ((status = only_keys(entry, user_keys, 3, where, err)) != BF_OK) break;
    const char *name = json_string_value(json_object_get(entry, "name"));
    const char *hash = json_string_value(json_object_get(entry, "password_hash"));
    json_t *grants = json_object_get(entry, "grants");
    if (name == NULL || name[0] == '\0' || strlen(name) > BF_USER_NAME_MAX) {
      status = bf_error_set(err, BF_EINVAL, "%s: \"name\" must be 1 to %d bytes", where,
                            BF_USER_NAME_MAX);
      break;
    }
    snprintf(where, sizeof where, "%s: user '%s'", path, name);
    for (size_t k = 0; k < u->n; k++)
      if (strcmp(u->users[k].name, name) == 0)
        status = bf_error_set(err, BF_EINVAL, "%s: listed twice", where);
    if (status != BF_OK) break;
    bf_error_t hash_err;
    bf_error_init(&hash_err);
    if (hash == NULL || bf_password_hash_check(hash, &hash_err) != BF_OK) {
      status = bf_error_set(err, BF_EINVAL, "%s: password_hash %s", where,
                            hash ? hash_err.message : "is missing");
      break;
    }
    if (grants != NULL && !json_is_array(grants)) {
      status = bf_error_set(err, BF_EINVAL, "%s: \"grants\" must be a list", where);
      break;
    }
    user_t *user = &u->users[u->n];
    snprintf(user->name, sizeof user->name, "%s", name);
    snprintf(user->hash, sizeof user->hash, "%s", hash);
    user->grants = calloc(json_array_size(grants) + 1, sizeof *user->grants);
    if (user->grants == NULL) {
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
      break;
    }
    u->n++;
    size_t g;
    json_t *grant;
    json_array_foreach(grants, g, grant) {
      if ((status = parse_grant(grant, &user->grants[user->n_grants], where, err)) != BF_OK) break;
      user->n_grants++;
    }
  }
  json_decref(root);
  if (status != BF_OK) {
    users_free(u);
    return status;
  }
  *out = u;
  return BF_OK;
}

int bf_auth_open(bf_auth_t *a, const char *auth_file, const char *secret_file,
                 const char *data_dir, double token_ttl_secs, bf_error_t *err) {
  memset(a, 0, sizeof *a);
  pthread_rwlock_init(&a->lock, NULL);
  pthread_mutex_init(&a->failures_mu, NULL);
  a->token_ttl_secs = token_ttl_secs > 0 ? token_ttl_secs : 3600;
  if (auth_file) {
    a->enabled = 1;
    snprintf(a->path, sizeof a->path, "%s", auth_file);
    BF_RETURN_NOT_OK(load_users(auth_file, &a->users, err));
  }
  return bf_token_key_load(secret_file, data_dir, &a->key, err);
}

void bf_auth_close(bf_auth_t *a) {
  users_free(a->users);
  free(a->failures);
  pthread_rwlock_destroy(&a->lock);
  pthread_mutex_destroy(&a->failures_mu);
  memset(a, 0, sizeof *a);
}

int bf_auth_reload(bf_auth_t *a, bf_error_t *err) {
  if (!a->enabled) return BF_OK;
  bf_auth_users_t *fresh = NULL;
  BF_RETURN_NOT_OK(load_users(a->path, &fresh, err));
  pthread_rwlock_wrlock(&a->lock);
  bf_auth_users_t *old = a->users;
  a->users = fresh;
  pthread_rwlock_unlock(&a->lock);
  users_free(old);
  return BF_OK;
}

/* Caller holds the lock. */
static const user_t *find_user(const bf_auth_t *a, const char *name) {
  for (size_t i = 0; a->users && i < a->users->n; i++)
    if (strcmp(a->users->users[i].name, name) == 0) return &a->users->users[i];
  return NULL;
}

/* ---- failed logins ------------------------------------------------------------------- */

static bf_auth_failure_t *failure_entry(bf_auth_t *a, const char *key, int create) {
  for (size_t i = 0; i < a->n_failures; i++)
    if (strcmp(a->failures[i].key, key) == 0) return &a->failures[i];
  if (!create) return NULL;
  if (a->n_failures == MAX_FAILURE_ENTRIES) { /* forget the stalest */
    size_t oldest = 0;
    for (size_t i = 1; i < a->n_failures; i++)
      if (a->failures[i].last_ms < a->failures[oldest].last_ms) oldest = i;
    a->failures[oldest] = a->failures[--a->n_failures];
  }
  if (a->failures == NULL) a->failures = calloc(MAX_FAILURE_ENTRIES, sizeof *a->failures);
  if (a->failures == NULL) return NULL;
  bf_auth_failure_t *f = &a->failures[a->n_failures++];
  memset(f, 0, sizeof *f);
  snprintf(f->key, sizeof f->key, "%s", key);
  return f;
}

static double failure_delay(bf_auth_t *a, const char *user_key, const char *peer_key) {
  pthread_mutex_lock(&a->failures_mu);
  int count = 0;
  int64_t now = bf_time_now_ms();
  const char *keys[2] = {user_key, peer_key};
  for (int k = 0; k < 2; k++) {
    bf_auth_failure_t *f = failure_entry(a, keys[k], 0);
    if (f && now - f->last_ms < 15 * 60 * 1000 && f->count > count) count = f->count;
  }
  pthread_mutex_unlock(&a->failures_mu);
  if (count == 0) return 0;
  double delay = 0.1;
  for (int i = 1; i < count && delay < MAX_LOGIN_DELAY_SECS; i++) delay *= 2;
  return delay < MAX_LOGIN_DELAY_SECS ? delay : MAX_LOGIN_DELAY_SECS;
}

static void record_failure(bf_auth_t *a, const char *user_key, const char *peer_key, int failed) {
  pthread_mutex_lock(&a->failures_mu);
  const char *keys[2] = {user_key, peer_key};
  for (int k = 0; k < 2; k++) {
    bf_auth_failure_t *f = failure_entry(a, keys[k], failed);
    if (f == NULL) continue;
    if (failed) {
      f->count++;
      f->last_ms = bf_time_now_ms();
    } else {
      f->count = 0;
    }
  }
  pthread_mutex_unlock(&a->failures_mu);
}

int bf_auth_login(bf_auth_t *a, const char *user, const char *password, const char *peer,
                  char token[BF_TOKEN_MAX], int64_t *expires_ms, bf_error_t *err) {
  if (!a->enabled) /* open mode: any name gets a token, which nothing checks */
    return bf_token_issue(&a->key, user[0] ? user : "anonymous", a->token_ttl_secs, token,
                          expires_ms, err);
  char user_key[BF_USER_NAME_MAX + 200], peer_key[BF_USER_NAME_MAX + 200];
  snprintf(user_key, sizeof user_key, "u:%.128s", user);
  snprintf(peer_key, sizeof peer_key, "p:%.180s", peer ? peer : "?");
  /* Strip the port: one host trying many connections is one peer. */
  char *colon = strrchr(peer_key, ':');
  if (colon && colon > peer_key + 2) *colon = '\0';
  double delay = failure_delay(a, user_key, peer_key);
  if (delay > 0) {
    pthread_mutex_lock(&a->failures_mu);
    int may_wait = a->delayed_logins < MAX_DELAYED_LOGINS;
    if (may_wait) a->delayed_logins++;
    pthread_mutex_unlock(&a->failures_mu);
    if (!may_wait) { /* a flood of failing logins: never let them hold every worker */
      BF_LOG_WARN("login refused: user '%.128s' from %s (earlier logins failed, and %d delayed "
                  "logins are waiting already)", user, peer ? peer : "?", MAX_DELAYED_LOGINS);
      return bf_error_set(err, BF_EAUTH,
                          "too many failed logins for this user or from this host: try again "
                          "in %.1f s", delay);
    }
    struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&a->failures_mu);
    a->delayed_logins--;
    pthread_mutex_unlock(&a->failures_mu);
  }
  char hash[BF_PASSWORD_HASH_MAX] = "";
  pthread_rwlock_rdlock(&a->lock);
  const user_t *u = find_user(a, user);
  if (u) snprintf(hash, sizeof hash, "%s", u->hash);
  pthread_rwlock_unlock(&a->lock);
  int match = 0;
  if (hash[0]) BF_RETURN_NOT_OK(bf_password_verify(password, strlen(password), hash, &match, err));
  record_failure(a, user_key, peer_key, !match);
  if (!match) {
    BF_LOG_WARN("login refused: user '%.128s' from %s (%s)", user, peer ? peer : "?",
                hash[0] ? "wrong password" : "unknown user");
    return bf_error_set(err, BF_EAUTH, "wrong user name or password");
  }
  BF_LOG_INFO("login: user '%s' from %s", user, peer ? peer : "?");
  return bf_token_issue(&a->key, user, a->token_ttl_secs, token, expires_ms, err);
}

int bf_auth_authenticate(bf_auth_t *a, const char *authorization, size_t len,
                         char user[BF_USER_NAME_MAX + 1], bf_error_t *err) {
  user[0] = '\0';
  if (!a->enabled) return BF_OK;
  if (authorization == NULL || len == 0)
    return bf_error_set(err, BF_EAUTH, "authentication required: log in (Login) and send "
                        "\"authorization: Bearer <token>\"");
  if (len < 7 || strncasecmp(authorization, "Bearer ", 7) != 0)
    return bf_error_set(err, BF_EAUTH, "the authorization metadata must be \"Bearer <token>\"");
  BF_RETURN_NOT_OK(bf_token_verify(&a->key, authorization + 7, len - 7, user, err));
  pthread_rwlock_rdlock(&a->lock);
  int known = find_user(a, user) != NULL;
  pthread_rwlock_unlock(&a->lock);
  if (!known) return bf_error_set(err, BF_EAUTH, "user '%s' no longer exists", user);
  return BF_OK;
}

static int part_matches(const char *pattern, const char *value) {
  return strcmp(pattern, "*") == 0 || strcmp(pattern, value) == 0;
}

int bf_auth_allowed(bf_auth_t *a, const char *user, int verb, const char *catalog,
                    const char *schema_name, const char *table) {
  if (!a->enabled) return 1;
  int allowed = 0;
  pthread_rwlock_rdlock(&a->lock);
  const user_t *u = find_user(a, user);
  for (size_t i = 0; u && i < u->n_grants && !allowed; i++) {
    const grant_t *g = &u->grants[i];
    allowed = (g->verbs & verb) && part_matches(g->parts[0], catalog) &&
              part_matches(g->parts[1], schema_name) && part_matches(g->parts[2], table);
  }
  pthread_rwlock_unlock(&a->lock);
  return allowed;
}
