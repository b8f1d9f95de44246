/* bifrost-server: parses the configuration, opens the registry and the engine,
 * publishes every table's view, serves gRPC until SIGINT/SIGTERM, then shuts down
 * cleanly. The first stdout line announces the bound address (tests read the port
 * from it when started with --port 0). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bifrost/rpc.h"
#include "bifrost/util.h"
#include "engine/engine.h"
#include "server/config.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/auth.h"
#include "server/auth_password.h"
#include "server/registry.h"
#include "server/counters.h"
#include "server/service_auth.h"
#include "server/scouter_service.h"
#include "server/service.h"
#include "server/table_store.h"
#include "storage/storage.h"
#include "storage/storage_s3.h"

static int read_checkpoint(void *ctx, const char *path, bf_delta_snapshot_t *into,
                           bf_error_t *err) {
  return bf_engine_checkpoint_read(ctx, path, into, err);
}

/* The data directory must exist (or be creatable), be a directory and take writes
 * that reach the disk: a server that cannot write its WAL must not start and
 * answer from whatever it can read. One line on stderr says what is wrong. */
static int check_data_dir(const char *configured, char *resolved) {
  struct stat st;
  if (stat(configured, &st) == 0 && !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "bifrost-server: data directory %s is not a directory\n", configured);
    return -1;
  }
  bf_error_t err;
  bf_error_init(&err);
  if (bf_fs_mkdirs(configured, &err) != BF_OK) {
    fprintf(stderr, "bifrost-server: cannot create data directory %s: %s\n", configured,
            err.message);
    return -1;
  }
  if (realpath(configured, resolved) == NULL) {
    fprintf(stderr, "bifrost-server: cannot resolve data directory %s: %s\n", configured,
            strerror(errno));
    return -1;
  }
  char probe[PATH_MAX + 64];
  snprintf(probe, sizeof probe, "%s/.bifrost-write-check-%ld", resolved, (long)getpid());
  int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int ok = fd >= 0 && write(fd, "ok\n", 3) == 3 && fsync(fd) == 0;
  int e = errno;
  if (fd >= 0) close(fd);
  unlink(probe);
  if (!ok) {
    fprintf(stderr,
            "bifrost-server: data directory %s is not writable (%s); the server writes its WAL "
            "and tables there\n",
            resolved, strerror(e));
    return -1;
  }
  return 0;
}

/* An s3:// data directory: the S3 configuration from the environment, then one
 * small object written and deleted under the prefix, so wrong credentials, a
 * missing bucket or an unreachable endpoint stop the start with one clear line
 * (never the secret). */
static int check_s3_data_dir(const char *data_dir, bf_s3_config_t *s3) {
  bf_error_t err;
  bf_error_init(&err);
  if (bf_s3_config_from_env(s3, &err) != BF_OK || bf_s3_init(s3, &err) != BF_OK) {
    fprintf(stderr, "bifrost-server: data directory %s: %s\n", data_dir, err.message);
    return -1;
  }
  char probe[PATH_MAX + 64];
  snprintf(probe, sizeof probe, "%s/_bifrost/write-check-%ld", data_dir, (long)getpid());
  if (bf_storage_write_replace(probe, "ok\n", 3, &err) != BF_OK ||
      bf_storage_delete(probe, &err) != BF_OK) {
    fprintf(stderr, "bifrost-server: data directory %s is not writable (endpoint %s): %s\n",
            data_dir, s3->endpoint[0] ? s3->endpoint : "AWS", err.message);
    return -1;
  }
  return 0;
}

/* httpfs.duckdb_extension in --extension-dir, else in .deps/duckdb-ext beside the
 * build directory of this binary (build/bifrost-server -> .deps/duckdb-ext). */
static int find_httpfs(const char *extension_dir, char *out, size_t cap) {
  char dir[PATH_MAX + 32];
  if (extension_dir[0]) {
    snprintf(dir, sizeof dir, "%s", extension_dir);
  } else {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(dir, sizeof dir, "%s/../.deps/duckdb-ext", exe);
  }
  snprintf(out, cap, "%s/httpfs.duckdb_extension", dir);
  struct stat st;
  if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) return 0;
  fprintf(stderr,
          "bifrost-server: an s3:// data directory needs DuckDB's httpfs extension, not found at "
          "%s (make setup fetches it; or pass --extension-dir)\n", out);
  return -1;
}

/* Memory for acknowledged rows not yet flushed: half of --memory-limit, or half of
 * DuckDB's default (80% of the machine's memory). */
static long long tail_budget(const bf_server_config_t *config) {
  long long limit = config->memory_limit_bytes;
  if (limit <= 0) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    limit = pages > 0 && page > 0 ? (long long)((double)pages * (double)page * 0.8) : 0;
  }
  return limit / 2;
}

/* `bifrost-server hash-password`: one password on stdin (a trailing newline is
 * not part of it), its hash on stdout. */
static int hash_password_command(void) {
  char password[4096];
  size_t n = fread(password, 1, sizeof password - 1, stdin);
  while (n && (password[n - 1] == '\n' || password[n - 1] == '\r')) n--;
  password[n] = '\0';
  if (n == 0) {
    fprintf(stderr, "bifrost-server hash-password: no password on stdin\n");
    return 2;
  }
  char hash[BF_PASSWORD_HASH_MAX];
  bf_error_t err;
  bf_error_init(&err);
  int status = bf_password_hash(password, n, hash, &err);
  memset(password, 0, sizeof password);
  if (status != BF_OK) {
    fprintf(stderr, "bifrost-server hash-password: %s\n", err.message);
    return 1;
  }
  printf("%s\n", hash);
  return 0;
}

/* Reads a whole PEM file (malloc'd), or prints why not. */
static char *read_pem(const char *path, const char *flag) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "bifrost-server: cannot read %s %s: %s\n", flag, path, strerror(errno));
    return NULL;
  }
  char *text = malloc(1 << 20);
  size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (text == NULL || n == 0 || strstr((text[n] = '\0', text), "-----BEGIN") == NULL) {
    fprintf(stderr, "bifrost-server: %s %s is not a PEM file\n", flag, path);
    free(text);
    return NULL;
  }
  return text;
}

static int is_loopback(const char *host) {
  return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0 ||
         strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0 || strncmp(host, "127.", 4) == 0;
}

/* After the first SIGINT/SIGTERM: a second one ends the process at once (exit
 * 128 + signal). Acknowledged rows are in the WAL, replayed at the next start. */
static void *second_signal_thread(void *arg) {
  (void)arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    BF_LOG_WARN("received %s while draining: exiting now (acknowledged rows are in the WAL)",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stderr);
    _exit(128 + sig);
  }
  return NULL;
}

/* Waits for SIGINT/SIGTERM (returned); SIGHUP re-reads the auth file. Every
 * 250 ms, request buffers kept for reuse but idle for 0.5 s are freed: a flush
 * gives back a generation's requests at once, and under a steady ingest the next
 * generation takes them all within that time; after the last flush of a burst
 * they go back to the system. */
static int wait_for_signal(bf_auth_t *auth) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  for (;;) {
    const struct timespec tick = {0, 250 * 1000 * 1000};
    int sig = sigtimedwait(&set, NULL, &tick);
    if (sig < 0) {
      bf_rpc_request_pool_trim(0.5);
      continue;
    }
    if (sig != SIGHUP) return sig;
    bf_error_t err;
    bf_error_init(&err);
    if (!auth->enabled)
      BF_LOG_INFO("SIGHUP: no --auth-file to re-read");
    else if (bf_auth_reload(auth, &err) != BF_OK)
      BF_LOG_ERROR("SIGHUP: the auth file was not reloaded, the previous users stay: %s",
                   err.message);
    else
      BF_LOG_INFO("SIGHUP: auth file %s reloaded", auth->path);
  }
}

int main(int argc, char **argv) {
  /* Batches of several MiB come and go with every insert: a fixed mmap threshold
   * gives their memory back to the system when they are freed, where glibc's
   * adaptive one would keep it in the heap of the worker that freed it. Below it,
   * up to 64 MiB free at the top of a heap stays mapped instead of being handed
   * back (madvise) and faulted in again by the next batch's allocations: server
   * CPU for 10M rows ingested and flushed 4.12 vs 4.99 s, median of five
   * alternating runs (measured: docs/architecture.md). */
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  if (argc >= 2 && strcmp(argv[1], "hash-password") == 0) return hash_password_command();
  bf_server_config_t config;
  int rc = bf_server_config_parse(&config, argc, argv);
  if (rc == BF_CONFIG_EXIT_OK) return 0;
  if (rc == BF_CONFIG_EXIT_USAGE) return 2;
  bf_server_stats_start();
  bf_log_configure(config.log_json, config.log_level);
  bf_log_capture_grpc();

  /* Block the shutdown signals in every thread; main waits for them with sigwait. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN); /* a file size limit fails the write (EFBIG) instead of killing us */

  bf_error_t err;
  bf_error_init(&err);
  char data_dir[PATH_MAX], wal_dir[PATH_MAX] = "", httpfs[PATH_MAX + 64] = "";
  int remote = bf_storage_is_s3(config.data_dir);
  bf_s3_config_t s3;
  memset(&s3, 0, sizeof s3);
  if (remote) {
    if (!config.wal_dir[0]) {
      fprintf(stderr, "bifrost-server: an s3:// data directory needs --wal-dir, a local durable "
                      "directory for this server's write-ahead log\n");
      return 2;
    }
    bf_error_t root_err;
    bf_error_init(&root_err);
    if (bf_storage_root(config.data_dir, data_dir, &root_err) != BF_OK) {
      fprintf(stderr, "bifrost-server: %s\n", root_err.message);
      return 2;
    }
    if (find_httpfs(config.extension_dir, httpfs, sizeof httpfs) != 0) return 1;
    if (check_s3_data_dir(data_dir, &s3) != 0) return 1;
  } else if (check_data_dir(config.data_dir, data_dir) != 0) {
    return 1;
  }
  if (config.wal_dir[0] && check_data_dir(config.wal_dir, wal_dir) != 0) return 1;
  /* Local state (the token key) lives in the WAL dir when the tables are remote. */
  const char *local_dir = remote ? wal_dir : data_dir;
  if (!config.auth_file[0] && !is_loopback(config.host) && !config.insecure) {
    fprintf(stderr,
            "bifrost-server: --host %s without --auth-file would let anyone who reaches the port "
            "read and write every table; add --auth-file, or --insecure to accept that\n",
            config.host);
    return 2;
  }
  if ((config.tls_cert[0] != 0) != (config.tls_key[0] != 0) ||
      (config.tls_client_ca[0] && !config.tls_cert[0])) {
    fprintf(stderr, "bifrost-server: --tls-cert and --tls-key go together (and --tls-client-ca "
                    "needs them)\n");
    return 2;
  }
  char *tls_cert = config.tls_cert[0] ? read_pem(config.tls_cert, "--tls-cert") : NULL;
  char *tls_key = config.tls_key[0] ? read_pem(config.tls_key, "--tls-key") : NULL;
  char *tls_ca = config.tls_client_ca[0] ? read_pem(config.tls_client_ca, "--tls-client-ca") : NULL;
  if ((config.tls_cert[0] && !tls_cert) || (config.tls_key[0] && !tls_key) ||
      (config.tls_client_ca[0] && !tls_ca))
    return 2;
  bf_auth_t auth;
  if (bf_auth_open(&auth, config.auth_file[0] ? config.auth_file : NULL,
                   config.auth_secret_file[0] ? config.auth_secret_file : NULL, local_dir,
                   config.token_ttl_secs, &err) != BF_OK) {
    fprintf(stderr, "bifrost-server: %s\n", err.message);
    return 2;
  }
  if (!auth.enabled && !is_loopback(config.host))
    BF_LOG_WARN("open mode on %s (--insecure): anyone who reaches the port may read, write and "
                "maintain every table", config.host);
  int64_t start_us = bf_time_now_us();
  bf_registry_t registry;
  if (bf_registry_open(&registry, data_dir, &err) != BF_OK) {
    BF_LOG_ERROR("%s", err.message);
    return 1;
  }
  bf_engine_options_t engine_options = {
      .memory_limit = config.memory_limit[0] ? config.memory_limit : NULL,
      .threads = config.threads,
      .query_timeout_secs = config.query_timeout_secs,
      .max_result_rows = config.max_result_rows,
      .max_result_bytes = config.max_result_bytes,
      .chunk_bytes = 4u << 20,
      .max_sql_bytes = config.max_sql_bytes,
      .max_value_bytes = config.max_value_bytes,
      .max_query_selects = config.max_query_selects,
      .max_query_depth = config.max_query_depth,
  };
  char endpoint[512] = "";
  if (remote) {
    engine_options.httpfs_extension = httpfs;
    engine_options.s3_key_id = s3.key_id;
    engine_options.s3_secret = s3.secret;
    engine_options.s3_session_token = s3.token;
    engine_options.s3_region = s3.region;
    if (s3.endpoint[0]) { /* DuckDB takes host:port and the scheme as a flag */
      const char *host = strstr(s3.endpoint, "://");
      snprintf(endpoint, sizeof endpoint, "%s", host ? host + 3 : s3.endpoint);
      size_t len = strlen(endpoint);
      while (len && endpoint[len - 1] == '/') endpoint[--len] = '\0';
      engine_options.s3_endpoint = endpoint;
      engine_options.s3_use_ssl = strncmp(s3.endpoint, "https://", 8) == 0;
    }
  }
  int64_t registry_us = bf_time_now_us();
  bf_engine_t *engine = NULL;
  if (bf_engine_create(data_dir, &engine_options, &engine, &err) != BF_OK) {
    BF_LOG_ERROR("cannot start the query engine: %s", err.message);
    bf_registry_close(&registry);
    return 1;
  }
  bf_registry_set_checkpoint_reader(read_checkpoint, engine);
  bf_store_options_t store_options;
  bf_store_options_default(&store_options);
  store_options.flush_rows = config.flush_rows;
  store_options.flush_bytes = config.flush_bytes;
  store_options.flush_interval_secs = config.flush_interval_secs;
  store_options.checkpoint_interval = config.checkpoint_interval;
  store_options.compact_min_files = config.compact_min_files;
  store_options.vacuum_retention_hours = config.vacuum_retention_hours;
  store_options.log_retention_hours = config.log_retention_hours;
  store_options.maintenance_interval_secs = config.maintenance_interval_secs;
  store_options.max_tail_bytes = tail_budget(&config);
  /* idle request buffers kept for reuse: an eighth of the tail's budget at most */
  bf_rpc_request_pool_limit((size_t)(store_options.max_tail_bytes / 8));
  snprintf(store_options.wal_dir, sizeof store_options.wal_dir, "%s", wal_dir);
  store_options.ack_on_commit = config.ack_on_commit;
  store_options.commit_interval_secs = config.commit_interval_secs;
  store_options.shared_flush_interval_secs = config.shared_flush_interval_secs;
  store_options.max_backlog_waiters = config.workers / 2; /* half the workers at most */
  if (store_options.max_tail_bytes > 0 && config.max_batch_bytes > store_options.max_tail_bytes) {
    BF_LOG_WARN("--max-batch-bytes %lld is above the memory for unflushed rows (%lld, half of "
                "--memory-limit); using that", config.max_batch_bytes,
                (long long)store_options.max_tail_bytes);
    config.max_batch_bytes = (long long)store_options.max_tail_bytes;
  }
  store_options.max_batch_bytes = config.max_batch_bytes;
  store_options.unsafe_short_retention = config.unsafe_short_retention;
  if (config.vacuum_retention_hours >= 0 &&
      config.vacuum_retention_hours < BF_MIN_SAFE_RETENTION_HOURS && !config.unsafe_short_retention) {
    fprintf(stderr,
            "bifrost-server: --vacuum-retention %g is below the safe floor of %g hour; add "
            "--unsafe-short-retention to allow it\n",
            config.vacuum_retention_hours, BF_MIN_SAFE_RETENTION_HOURS);
    return 2;
  }
  if (config.unsafe_short_retention)
    BF_LOG_WARN("--unsafe-short-retention: vacuum may delete files that running queries still read");
  bf_store_t *store = NULL;
  if (bf_store_create(&registry, engine, &store_options, &store, &err) != BF_OK) {
    BF_LOG_ERROR("%s", err.message);
    bf_engine_destroy(engine);
    bf_registry_close(&registry);
    return 1;
  }
  bf_service_t service = {.registry = &registry,
                         .engine = engine,
                         .store = store,
                         .max_batch_bytes = config.max_batch_bytes,
                         .unsafe_short_retention = config.unsafe_short_retention,
                         .auth = &auth};
  int64_t engine_us = bf_time_now_us();
  bf_store_open_tables(store);
  BF_LOG_DEBUG("start: registry %.1f ms, engine and store %.1f ms, opening tables %.1f ms",
               (double)(registry_us - start_us) / 1e3, (double)(engine_us - registry_us) / 1e3,
               (double)(bf_time_now_us() - engine_us) / 1e3);

  char address[300];
  snprintf(address, sizeof address, "%s:%d", config.host, config.port);
  bf_stats_wrap_t counted = {.handler = bf_scouter_service_handle,
                             .authenticate = bf_scouter_service_authenticate,
                             .ctx = &service};
  bf_rpc_server_options_t rpc_options = {
      .address = address,
      .n_workers = config.workers,
      .stall_timeout_secs = config.client_stall_timeout_secs,
      /* counted (server_stats.c), then scouter.grpc.v1 here, bifrost.v1 to service.c */
      .handler = bf_stats_handler,
      .handler_ctx = &counted,
      .authenticate = bf_stats_authenticate,
      .services = bf_scouter_served_services,
      .tls_cert_pem = tls_cert,
      .tls_key_pem = tls_key,
      .tls_client_ca_pem = tls_ca,
  };
  bf_rpc_server_t *server = NULL;
  int port = 0;
  if (bf_rpc_server_start(&rpc_options, &server, &port, &err) != BF_OK) {
    BF_LOG_ERROR("%s", err.message);
    bf_store_destroy(store);
    bf_engine_destroy(engine);
    bf_registry_close(&registry);
    return 1;
  }
  bf_metrics_t *metrics = NULL;
  if (config.metrics_port >= 0) {
    int metrics_port = 0;
    if (bf_metrics_start(config.metrics_host, config.metrics_port, &service, &metrics, &metrics_port,
                         &err) != BF_OK) {
      BF_LOG_ERROR("%s", err.message);
      bf_rpc_server_stop(server, 0);
      bf_store_destroy(store);
      bf_engine_destroy(engine);
      bf_registry_close(&registry);
      return 1;
    }
    BF_LOG_INFO("metrics on http://%s:%d/metrics", config.metrics_host, metrics_port);
  }
  printf("bifrost-server listening on %s:%d data_dir=%s\n", config.host, port, data_dir);
  fflush(stdout);
  BF_LOG_INFO("serving %zu tables from %s on port %d", registry.n_tables, data_dir, port);

  BF_LOG_INFO("%s, %s", auth.enabled ? "users and grants from the auth file" : "open mode (no --auth-file)",
              tls_cert ? (tls_ca ? "TLS with client certificates" : "TLS") : "plaintext");
  int sig = wait_for_signal(&auth);
  BF_LOG_INFO("received %s: draining (no new calls; running ones get %g s), then flushing",
              sig == SIGINT ? "SIGINT" : "SIGTERM", config.shutdown_timeout_secs);
  pthread_t second;
  if (pthread_create(&second, NULL, second_signal_thread, NULL) == 0) pthread_detach(second);
  double drain_started = bf_time_monotonic();
  bf_rpc_server_stop(server, config.shutdown_timeout_secs);
  BF_LOG_INFO("calls drained in %.0f ms; flushing table tails",
              (bf_time_monotonic() - drain_started) * 1000);
  bf_metrics_stop(metrics);
  bf_store_destroy(store); /* flushes every table's tail */
  bf_engine_destroy(engine);
  bf_registry_close(&registry);
  bf_auth_close(&auth);
  free(tls_cert);
  free(tls_key);
  free(tls_ca);
  bf_rpc_request_pool_trim(0);
  BF_LOG_INFO("stopped");
  return 0;
}
