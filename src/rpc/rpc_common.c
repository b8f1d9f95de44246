/* Helpers shared by the RPC server and channel: gRPC's process-wide init, integer
 * channel arguments, byte buffers and deadlines, and request bodies sent in place
 * (bf_shared_t). */
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc_internal.h"

/* gRPC core makes a client's connection attempt progress only while something
 * polls its channel; a call that fails at once (UNAVAILABLE while the channel
 * reconnects) does not. So a channel whose server went away and came back was
 * connected again only by the client channel's backup poller, every 5 s by
 * default: measured, a client's first successful call 4.9 s after its server
 * restarted in 0.06 s, and a producer sending through a restart resumed after
 * 11-20 s (its retries failing at once meanwhile). The poller's interval is read
 * from the environment at gRPC's first init; unless the user set it, it is 100 ms
 * here (a zero-timeout poll, ten times a second, while client channels exist). */
static pthread_once_t backup_poll_once = PTHREAD_ONCE_INIT;
static void set_backup_poll_interval(void) {
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "100", 0);
}

void bf_rpc_global_init(void) {
  pthread_once(&backup_poll_once, set_backup_poll_interval);
  grpc_init();
}
void bf_rpc_global_shutdown(void) { grpc_shutdown(); }

grpc_arg bf__rpc_int_arg(const char *key, int value) {
  grpc_arg arg;
  arg.type = GRPC_ARG_INTEGER;
  arg.key = (char *)key;
  arg.value.integer = value;
  return arg;
}

int bf__rpc_read_byte_buffer(grpc_byte_buffer *bb, bf_buffer_t *out) {
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, bb)) return BF_ECORRUPT;
  grpc_slice slice;
  int status = BF_OK;
  BF_RETURN_NOT_OK(bf_buffer_reserve(out, grpc_byte_buffer_length(bb)));
  while (status == BF_OK && grpc_byte_buffer_reader_next(&reader, &slice)) {
    status = bf_buffer_append(out, GRPC_SLICE_START_PTR(slice), GRPC_SLICE_LENGTH(slice));
    grpc_slice_unref(slice);
  }
  grpc_byte_buffer_reader_destroy(&reader);
  return status;
}

gpr_timespec bf__rpc_deadline(double secs) {
  if (secs <= 0) return gpr_inf_future(GPR_CLOCK_REALTIME);
  return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                      gpr_time_from_micros((int64_t)(secs * 1e6), GPR_TIMESPAN));
}

grpc_byte_buffer *bf__rpc_byte_buffer_from(const uint8_t *data, size_t size) {
  grpc_slice slice = grpc_slice_malloc(size);
  if (size) memcpy(GRPC_SLICE_START_PTR(slice), data, size);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  return bb;
}

/* gRPC's slice destroy callback: drops the slice's reference to the body. */
static void body_unref(void *body) { bf_shared_unref(body); }

grpc_byte_buffer *bf__rpc_byte_buffer_with_body(const uint8_t *head, size_t head_size,
                                                bf_shared_t *body) {
  if (bf_shared_size(body) == 0) return bf__rpc_byte_buffer_from(head, head_size);
  grpc_slice slices[2];
  slices[0] = grpc_slice_from_copied_buffer((const char *)head, head_size);
  bf_shared_ref(body); /* the slice's, dropped by gRPC */
  slices[1] = grpc_slice_new_with_user_data(bf_shared_data(body), bf_shared_size(body), body_unref,
                                            body);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(slices, 2);
  grpc_slice_unref(slices[0]);
  grpc_slice_unref(slices[1]);
  return bb;
}
