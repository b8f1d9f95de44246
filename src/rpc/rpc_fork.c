/* fork() safety for client processes. gRPC core keeps global state (threads,
 * pollers, connections); after a plain fork() the child has none of the threads and
 * shares the parent's sockets, so a child's call could hang or write on the
 * parent's connection and break it. Before the first client channel, this enables
 * gRPC's own fork support (GRPC_ENABLE_FORK_SUPPORT, unless the environment already
 * says otherwise) and registers its prefork / postfork handlers with
 * pthread_atfork: gRPC quiesces before the fork, resumes in the parent and starts
 * afresh in the child. The handlers are looked up at run time (gRPC exports them
 * only as C++ symbols); without them nothing is registered. Each channel also uses
 * a private subchannel pool (rpc_channel.c), so a child never reuses a connection
 * of its parent.
 *
 * gRPC core race worked around here: its prefork handler first blocks the creation
 * of execution contexts, then joins its executor threads; an executor thread that
 * is just destroying a finished call needs a new execution context for that, so it
 * waits forever and fork() never returns (seen with a call finished a moment
 * before the fork). Our prefork handler stops the executor threads first, while
 * they can still finish; gRPC's postfork handlers start them again. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "rpc/rpc_internal.h"

typedef void (*fork_fn)(void);
typedef void (*threading_fn)(bool);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static fork_fn prefork, postfork_parent, postfork_child;
static threading_fn executor_set_threading_all; /* grpc_core::Executor::SetThreadingAll */

static void on_prefork(void) {
  if (prefork && executor_set_threading_all) executor_set_threading_all(false);
  if (prefork) prefork();
}
static void on_postfork_parent(void) {
  if (postfork_parent) postfork_parent();
}
static void on_postfork_child(void) {
  if (postfork_child) postfork_child();
}

static fork_fn lookup(const char *c_name, const char *cxx_name) {
  void *fn = dlsym(RTLD_DEFAULT, c_name);
  if (fn == NULL) fn = dlsym(RTLD_DEFAULT, cxx_name);
  fork_fn out;
  *(void **)&out = fn; /* POSIX: function pointers round-trip through void * */
  return out;
}

static void install(void) {
  prefork = lookup("grpc_prefork", "_Z12grpc_preforkv");
  postfork_parent = lookup("grpc_postfork_parent", "_Z20grpc_postfork_parentv");
  postfork_child = lookup("grpc_postfork_child", "_Z19grpc_postfork_childv");
  fork_fn set_threading = lookup("_ZN9grpc_core8Executor15SetThreadingAllEb",
                                 "_ZN9grpc_core8Executor15SetThreadingAllEb");
  *(void **)&executor_set_threading_all = *(void **)&set_threading;
  if (prefork == NULL || postfork_parent == NULL || postfork_child == NULL) return;
  setenv("GRPC_ENABLE_FORK_SUPPORT", "1", 0); /* read by grpc_init; an explicit value wins */
  pthread_atfork(on_prefork, on_postfork_parent, on_postfork_child);
}

void bf__rpc_fork_support_init(void) { pthread_once(&once, install); }
