/* Status codes and the caller-owned error struct used by every fallible function in
 * libbifrost. Functions return an int status (BF_OK == 0, negative on failure) and,
 * when given a non-NULL bf_error_t, fill it with the same status and a message.
 * The status list is one X-macro so bf_status_name() can never drift from it. The
 * server maps statuses to gRPC codes in src/rpc/rpc_status.c; the Python layer maps
 * them to exceptions in python/bifrost/_errors.py via the status name. */
#ifndef BIFROST_ERROR_H
#define BIFROST_ERROR_H

#include <stddef.h>

#define BF_STATUS_LIST(X)                                          \
  X(BF_OK, 0, "ok")                                                \
  X(BF_EINVAL, -1, "invalid argument")                             \
  X(BF_ENOMEM, -2, "out of memory")                                \
  X(BF_EIO, -3, "I/O error")                                       \
  X(BF_ENOTFOUND, -4, "not found")                                 \
  X(BF_EEXIST, -5, "already exists")                               \
  X(BF_EMISMATCH, -6, "fingerprint mismatch")                      \
  X(BF_EPERM, -7, "permission denied")                             \
  X(BF_ETIMEOUT, -8, "timed out")                                  \
  X(BF_EUNAVAILABLE, -9, "unavailable")                            \
  X(BF_EQUERY, -10, "query error")                                 \
  X(BF_ECORRUPT, -11, "corrupt data")                              \
  X(BF_ECONFLICT, -12, "conflict")                                 \
  X(BF_ECLOSED, -13, "closed")                                     \
  X(BF_EFULL, -14, "full")                                         \
  X(BF_EAUTH, -15, "unauthenticated")                              \
  X(BF_ECANCELLED, -16, "cancelled")                               \
  X(BF_EINTERNAL, -17, "internal error")

enum {
#define BF__STATUS_ENUM(name, value, text) name = value,
  BF_STATUS_LIST(BF__STATUS_ENUM)
#undef BF__STATUS_ENUM
};

#define BF_ERROR_MESSAGE_MAX 512

/* Caller-owned; zero-initialise or bf_error_init before use. */
typedef struct bf_error {
  int status;                          /* last status written, BF_OK if none */
  char message[BF_ERROR_MESSAGE_MAX];  /* NUL-terminated, truncated if long */
} bf_error_t;

/* Cannot fail. */
void bf_error_init(bf_error_t *err);

/* Records status and a printf-style message in err (if non-NULL) and returns
 * status, so callers can write `return bf_error_set(err, BF_EINVAL, "...")`. */
int bf_error_set(bf_error_t *err, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prepends "context: " to an error message already in err. Returns err->status
 * (or BF_EINTERNAL when err is NULL). */
int bf_error_prefix(bf_error_t *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* "BF_EINVAL" etc.; "BF_UNKNOWN" for values not in the list. Cannot fail. */
const char *bf_status_name(int status);
/* Human text ("invalid argument"); cannot fail. */
const char *bf_status_text(int status);

#define BF_RETURN_NOT_OK(expr)          \
  do {                                  \
    int bf__status = (expr);            \
    if (bf__status != BF_OK) return bf__status; \
  } while (0)

#ifdef NDEBUG
#define BF_DCHECK(cond) ((void)0)
#else
#include <assert.h>
#define BF_DCHECK(cond) assert(cond)
#endif

#endif /* BIFROST_ERROR_H */
