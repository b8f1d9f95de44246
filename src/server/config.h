/* bifrost-server configuration: defaults, BIFROST_* environment variables, then
 * command-line flags (flags win). */
#ifndef BIFROST_SERVER_CONFIG_H
#define BIFROST_SERVER_CONFIG_H

#include <stdio.h>

typedef struct bf_server_config {
  char host[256];
  int port;
  char data_dir[4096];
  int workers;
  double query_timeout_secs;
  long long max_result_rows;  /* 0 = unlimited */
  long long max_result_bytes; /* 0 = unlimited */
  char memory_limit[64];
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
} bf_server_config_t;

enum { BF_CONFIG_OK = 0, BF_CONFIG_EXIT_OK = 1, BF_CONFIG_EXIT_USAGE = 2 };

/* Fills config. Returns BF_CONFIG_EXIT_OK after printing --help/--version and
 * BF_CONFIG_EXIT_USAGE after printing an error and the usage to stderr. */
int bf_server_config_parse(bf_server_config_t *config, int argc, char **argv);
void bf_server_config_usage(FILE *out);

#endif
