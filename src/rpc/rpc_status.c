/* The one mapping between bf statuses and gRPC status codes. The server also sends
 * the exact bf status name as trailing metadata "bf-status", so a client can tell
 * apart statuses that share a gRPC code (e.g. BF_EQUERY vs BF_EINVAL). */
#include <grpc/grpc.h>
#include <string.h>

#include "bifrost/rpc.h"
#include "rpc/rpc_internal.h"

int bf_rpc_status_to_grpc(int bf_status) {
  switch (bf_status) {
    case BF_OK:
      return GRPC_STATUS_OK;
    case BF_EINVAL:
    case BF_ECORRUPT:
    case BF_EQUERY:
      return GRPC_STATUS_INVALID_ARGUMENT;
    case BF_ENOTFOUND:
      return GRPC_STATUS_NOT_FOUND;
    case BF_EEXIST:
      return GRPC_STATUS_ALREADY_EXISTS;
    case BF_EMISMATCH:
      return GRPC_STATUS_FAILED_PRECONDITION;
    case BF_EPERM:
      return GRPC_STATUS_PERMISSION_DENIED;
    case BF_ETIMEOUT:
      return GRPC_STATUS_DEADLINE_EXCEEDED;
    case BF_EUNAVAILABLE:
    case BF_ECLOSED:
      return GRPC_STATUS_UNAVAILABLE;
    case BF_EFULL:
      return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case BF_EAUTH:
      return GRPC_STATUS_UNAUTHENTICATED;
    case BF_ECANCELLED:
      return GRPC_STATUS_CANCELLED;
    case BF_ECONFLICT:
      return GRPC_STATUS_ABORTED;
    default:
      return GRPC_STATUS_INTERNAL;
  }
}

int bf_rpc_status_from_grpc(int grpc_code) {
  switch (grpc_code) {
    case GRPC_STATUS_OK:
      return BF_OK;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_OUT_OF_RANGE:
    case GRPC_STATUS_UNIMPLEMENTED: /* e.g. a method this server version lacks */
      return BF_EINVAL;
    case GRPC_STATUS_NOT_FOUND:
      return BF_ENOTFOUND;
    case GRPC_STATUS_ALREADY_EXISTS:
      return BF_EEXIST;
    case GRPC_STATUS_FAILED_PRECONDITION:
      return BF_EMISMATCH;
    case GRPC_STATUS_PERMISSION_DENIED:
      return BF_EPERM;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
      return BF_ETIMEOUT;
    case GRPC_STATUS_UNAVAILABLE:
      return BF_EUNAVAILABLE;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
      return BF_EFULL;
    case GRPC_STATUS_UNAUTHENTICATED:
      return BF_EAUTH;
    case GRPC_STATUS_CANCELLED:
      return BF_ECANCELLED;
    case GRPC_STATUS_ABORTED:
      return BF_ECONFLICT;
    default:
      return BF_EINTERNAL;
  }
}

int bf__rpc_status_from_name(const char *name, size_t len, int fallback) {
  static const int all[] = {
#define BF__STATUS_VALUE(n, value, text) value,
      BF_STATUS_LIST(BF__STATUS_VALUE)
#undef BF__STATUS_VALUE
  };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    const char *candidate = bf_status_name(all[i]);
    if (strlen(candidate) == len && memcmp(candidate, name, len) == 0) return all[i];
  }
  return fallback;
}
