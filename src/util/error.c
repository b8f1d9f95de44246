/* Error struct helpers and the status-name table generated from BF_STATUS_LIST. */
#include "bifrost/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void bf_error_init(bf_error_t *err) {
  err->status = BF_OK;
  err->message[0] = '\0';
}

int bf_error_set(bf_error_t *err, int status, const char *fmt, ...) {
  if (err == NULL) return status;
  err->status = status;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return status;
}

int bf_error_prefix(bf_error_t *err, const char *fmt, ...) {
  if (err == NULL) return BF_EINTERNAL;
  char prefix[BF_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  char old[BF_ERROR_MESSAGE_MAX];
  memcpy(old, err->message, sizeof old);
  /* Build by hand: snprintf of two bounded strings trips -Wformat-truncation. */
  size_t n_prefix = strnlen(prefix, sizeof err->message - 3);
  memcpy(err->message, prefix, n_prefix);
  memcpy(err->message + n_prefix, ": ", 2);
  size_t room = sizeof err->message - n_prefix - 3;
  size_t n_old = strnlen(old, room);
  memcpy(err->message + n_prefix + 2, old, n_old);
  err->message[n_prefix + 2 + n_old] = '\0';
  return err->status;
}

const char *bf_status_name(int status) {
  switch (status) {
#define BF__STATUS_NAME(name, value, text) \
  case value:                              \
    return #name;
    BF_STATUS_LIST(BF__STATUS_NAME)
#undef BF__STATUS_NAME
  }
  return "BF_UNKNOWN";
}

const char *bf_status_text(int status) {
  switch (status) {
#define BF__STATUS_TEXT(name, value, text) \
  case value:                              \
    return text;
    BF_STATUS_LIST(BF__STATUS_TEXT)
#undef BF__STATUS_TEXT
  }
  return "unknown status";
}
