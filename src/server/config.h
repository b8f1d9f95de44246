/* bifrost-server configuration: defaults, BIFROST_* environment variables, then
 * command-line flags (flags win). */
#ifndef BIFROST_SERVER_CONFIG_H
#define BIFROST_SERVER_CONFIG_H

#include <stdio.h>

typedef struct bf_server_config {
  char host[256];
  int port;
  char data_dir[4096];          /* a local path or s3://bucket/prefix */
  char wal_dir[4096];           /* "" = the WAL lives in each table's directory */
  char extension_dir[4096];     /* where httpfs.duckdb_extension is; "" = next to the build */
  int ack_on_commit;            /* --ack-mode commit */
  double commit_interval_secs;  /* group commit period with --ack-mode commit */
  double shared_flush_interval_secs; /* flush period while other servers share a table */
  int workers;
  double query_timeout_secs;
  long long max_result_rows;  /* 0 = unlimited */
  long long max_result_bytes; /* 0 = unlimited */
  char memory_limit[64];
  long long memory_limit_bytes; /* 0 = not given */
  long long max_batch_bytes;    /* decoded size of one InsertBatch */
  long long max_sql_bytes;
  long long max_value_bytes;    /* repeat/lpad/rpad/range with a constant count */
  int max_query_selects;        /* SELECT blocks per query */
  int max_query_depth;          /* syntax tree nesting */
  int unsafe_short_retention;   /* vacuum below 1 h allowed */
  /* security */
  char auth_file[4096];         /* "" = open mode */
  char auth_secret_file[4096];  /* "" = generated in the data dir */
  double token_ttl_secs;
  char tls_cert[4096], tls_key[4096], tls_client_ca[4096];
  int insecure;                 /* open mode on a non-loopback address allowed */
  int threads;
  /* storage engine (see table_store.h) */
  long long flush_rows;
  long long flush_bytes;
  double flush_interval_secs;
  int checkpoint_interval;
  int compact_min_files;
  double vacuum_retention_hours;
  double log_retention_hours;
  double maintenance_interval_secs;
  /* operating */
  double shutdown_timeout_secs; /* SIGTERM: time running calls get to finish */
  double client_stall_timeout_secs; /* a call whose client takes nothing this long ends */
  int log_json;                 /* --log-format json */
  int log_level;                /* BF_LOG_LEVEL_* (server/log.h) */
  int metrics_port;             /* -1 = no metrics endpoint; 0 = a free port */
  char metrics_host[256];
} bf_server_config_t;

enum { BF_CONFIG_OK = 0, BF_CONFIG_EXIT_OK = 1, BF_CONFIG_EXIT_USAGE = 2 };

/* Fills config. Returns BF_CONFIG_EXIT_OK after printing --help/--version and
 * BF_CONFIG_EXIT_USAGE after printing an error and the usage to stderr. */
int bf_server_config_parse(bf_server_config_t *config, int argc, char **argv);
void bf_server_config_usage(FILE *out);

/* "4GB", "512 MiB", "1.5gb", "1024" (bytes) -> bytes; DuckDB's units (KB = 1000,
 * KiB = 1024). Returns -1 for anything else. */
int bf_server_parse_size(const char *text, long long *out);

#endif
