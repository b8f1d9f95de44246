/* Option parsing for bifrost-server (see config.h). Every flag has a BIFROST_*
 * environment equivalent, listed in --help. */
#include "server/config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define BIFROST_VERSION "0.1.0"

void bf_server_config_usage(FILE *out) {
  fprintf(out,
          "usage: bifrost-server [options]\n"
          "\n"
          "Stores records sent by Bifrost producers as Delta Lake tables and answers SQL\n"
          "queries over them (gRPC service bifrost.v1.Bifrost).\n"
          "\n"
          "options (environment variable in brackets; flags override the environment):\n"
          "  --host HOST            address to listen on (default 0.0.0.0) [BIFROST_HOST]\n"
          "  --port PORT            gRPC port (default 50051; 0 picks a free port and prints it)\n"
          "                         [BIFROST_PORT]\n"
          "  --data-dir DIR         where tables live (default ./bifrost_data) [BIFROST_DATA_DIR]\n"
          "  --workers N            concurrent calls served (default 8) [BIFROST_WORKERS]\n"
          "  --query-timeout SECS   per-query time limit, 0 = none (default 300)\n"
          "                         [BIFROST_QUERY_TIMEOUT]\n"
          "  --max-result-rows N    refuse results with more rows, 0 = no limit (default 0)\n"
          "                         [BIFROST_MAX_RESULT_ROWS]\n"
          "  --max-result-bytes N   refuse results larger than N bytes of Arrow IPC, 0 = no\n"
          "                         limit (default 8589934592 = 8 GiB) [BIFROST_MAX_RESULT_BYTES]\n"
          "  --memory-limit SIZE    DuckDB memory limit, e.g. 4GB (default: DuckDB's)\n"
          "                         [BIFROST_MEMORY_LIMIT]\n"
          "  --threads N            DuckDB threads (default: DuckDB's) [BIFROST_THREADS]\n"
          "\n"
          "storage (acknowledged rows are in the WAL and queryable at once; the background\n"
          "writer turns them into Parquet files and one Delta commit per flush):\n"
          "  --flush-rows N         flush a table's tail at N rows (default 1000000)\n"
          "                         [BIFROST_FLUSH_ROWS]\n"
          "  --flush-bytes N        ... or N bytes received (default 134217728 = 128 MiB)\n"
          "                         [BIFROST_FLUSH_BYTES]\n"
          "  --flush-interval SECS  ... or when its oldest row is SECS old (default 60)\n"
          "                         [BIFROST_FLUSH_INTERVAL]\n"
          "  --checkpoint-interval N  Delta checkpoint every N commits, 0 = never (default 10)\n"
          "                         [BIFROST_CHECKPOINT_INTERVAL]\n"
          "  --compact-min-files N  compact a partition with N small files, 0 = never\n"
          "                         (default 8) [BIFROST_COMPACT_MIN_FILES]\n"
          "  --vacuum-retention HOURS  delete unreferenced files older than this, negative =\n"
          "                         never (default 168) [BIFROST_VACUUM_RETENTION]\n"
          "  --log-retention HOURS  delete log files before the newest checkpoint older than\n"
          "                         this (default 720) [BIFROST_LOG_RETENTION]\n"
          "  --maintenance-interval SECS  automatic maintenance period, 0 = off (default 60)\n"
          "                         [BIFROST_MAINTENANCE_INTERVAL]\n"
          "  --help                 show this help and exit\n"
          "  --version              show the version and exit\n");
}

static int parse_int(const char *text, int min, int max, int *out) {
  char *end;
  long v = strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v < min || v > max) return -1;
  *out = (int)v;
  return 0;
}

static int parse_double(const char *text, double *out) {
  char *end;
  double v = strtod(text, &end);
  if (*text == '\0' || *end != '\0' || v < 0) return -1;
  *out = v;
  return 0;
}

/* Applies one option value; name is for messages. */
static int apply(bf_server_config_t *c, int opt, const char *value, const char *name) {
  int bad = 0;
  switch (opt) {
    case 'h':
      bad = strlen(value) >= sizeof c->host;
      if (!bad) strcpy(c->host, value);
      break;
    case 'p':
      bad = parse_int(value, 0, 65535, &c->port);
      break;
    case 'd':
      bad = strlen(value) == 0 || strlen(value) >= sizeof c->data_dir;
      if (!bad) strcpy(c->data_dir, value);
      break;
    case 'w':
      bad = parse_int(value, 1, 1024, &c->workers);
      break;
    case 'q':
      bad = parse_double(value, &c->query_timeout_secs);
      break;
    case 'r':
    case 'b': {
      char *end;
      long long v = strtoll(value, &end, 10);
      bad = *value == '\0' || *end != '\0' || v < 0;
      if (!bad) *(opt == 'r' ? &c->max_result_rows : &c->max_result_bytes) = v;
      break;
    }
    case 'm':
      bad = strlen(value) >= sizeof c->memory_limit;
      if (!bad) strcpy(c->memory_limit, value);
      break;
    case 't':
      bad = parse_int(value, 1, 1024, &c->threads);
      break;
    case 'R':
    case 'Y': {
      char *end;
      long long v = strtoll(value, &end, 10);
      bad = *value == '\0' || *end != '\0' || v < 1;
      if (!bad) *(opt == 'R' ? &c->flush_rows : &c->flush_bytes) = v;
      break;
    }
    case 'I':
      bad = parse_double(value, &c->flush_interval_secs) || c->flush_interval_secs <= 0;
      break;
    case 'C':
      bad = parse_int(value, 0, 1000000, &c->checkpoint_interval);
      break;
    case 'M':
      bad = parse_int(value, 0, 1000000, &c->compact_min_files);
      break;
    case 'v':
    case 'l': {
      char *end;
      double v = strtod(value, &end);
      bad = *value == '\0' || *end != '\0' || (opt == 'l' && v < 0);
      if (!bad) *(opt == 'v' ? &c->vacuum_retention_hours : &c->log_retention_hours) = v;
      break;
    }
    case 'T':
      bad = parse_double(value, &c->maintenance_interval_secs);
      break;
  }
  if (bad) {
    fprintf(stderr, "bifrost-server: invalid value '%s' for %s\n\n", value, name);
    bf_server_config_usage(stderr);
  }
  return bad;
}

int bf_server_config_parse(bf_server_config_t *c, int argc, char **argv) {
  memset(c, 0, sizeof *c);
  strcpy(c->host, "0.0.0.0");
  c->port = 50051;
  strcpy(c->data_dir, "./bifrost_data");
  c->workers = 8;
  c->query_timeout_secs = 300;
  c->max_result_rows = 0;
  c->max_result_bytes = 8LL << 30;
  c->flush_rows = 1000000;
  c->flush_bytes = 128LL << 20;
  c->flush_interval_secs = 60;
  c->checkpoint_interval = 10;
  c->compact_min_files = 8;
  c->vacuum_retention_hours = 168;
  c->log_retention_hours = 720;
  c->maintenance_interval_secs = 60;
  static const struct {
    int opt;
    const char *env;
  } envs[] = {{'h', "BIFROST_HOST"},          {'p', "BIFROST_PORT"},
              {'d', "BIFROST_DATA_DIR"},      {'w', "BIFROST_WORKERS"},
              {'q', "BIFROST_QUERY_TIMEOUT"}, {'m', "BIFROST_MEMORY_LIMIT"},
              {'r', "BIFROST_MAX_RESULT_ROWS"}, {'b', "BIFROST_MAX_RESULT_BYTES"},
              {'t', "BIFROST_THREADS"},       {'R', "BIFROST_FLUSH_ROWS"},
              {'Y', "BIFROST_FLUSH_BYTES"},   {'I', "BIFROST_FLUSH_INTERVAL"},
              {'C', "BIFROST_CHECKPOINT_INTERVAL"}, {'M', "BIFROST_COMPACT_MIN_FILES"},
              {'v', "BIFROST_VACUUM_RETENTION"}, {'l', "BIFROST_LOG_RETENTION"},
              {'T', "BIFROST_MAINTENANCE_INTERVAL"}};
  for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
    const char *value = getenv(envs[i].env);
    if (value && value[0] && apply(c, envs[i].opt, value, envs[i].env)) return BF_CONFIG_EXIT_USAGE;
  }
  static const struct option longopts[] = {
      {"host", required_argument, NULL, 'h'},          {"port", required_argument, NULL, 'p'},
      {"data-dir", required_argument, NULL, 'd'},      {"workers", required_argument, NULL, 'w'},
      {"query-timeout", required_argument, NULL, 'q'}, {"memory-limit", required_argument, NULL, 'm'},
      {"max-result-rows", required_argument, NULL, 'r'}, {"max-result-bytes", required_argument, NULL, 'b'},
      {"threads", required_argument, NULL, 't'},       {"help", no_argument, NULL, 'H'},
      {"flush-rows", required_argument, NULL, 'R'},    {"flush-bytes", required_argument, NULL, 'Y'},
      {"flush-interval", required_argument, NULL, 'I'},
      {"checkpoint-interval", required_argument, NULL, 'C'},
      {"compact-min-files", required_argument, NULL, 'M'},
      {"vacuum-retention", required_argument, NULL, 'v'},
      {"log-retention", required_argument, NULL, 'l'},
      {"maintenance-interval", required_argument, NULL, 'T'},
      {"version", no_argument, NULL, 'V'},             {NULL, 0, NULL, 0}};
  optind = 1;
  int opt, longindex = 0;
  while ((opt = getopt_long(argc, argv, "", longopts, &longindex)) != -1) {
    if (opt == 'H') {
      bf_server_config_usage(stdout);
      return BF_CONFIG_EXIT_OK;
    }
    if (opt == 'V') {
      printf("bifrost-server %s\n", BIFROST_VERSION);
      return BF_CONFIG_EXIT_OK;
    }
    if (opt == '?') {
      bf_server_config_usage(stderr);
      return BF_CONFIG_EXIT_USAGE;
    }
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", longopts[longindex].name);
    if (apply(c, opt, optarg, flag)) return BF_CONFIG_EXIT_USAGE;
  }
  if (optind < argc) {
    fprintf(stderr, "bifrost-server: unexpected argument '%s'\n", argv[optind]);
    bf_server_config_usage(stderr);
    return BF_CONFIG_EXIT_USAGE;
  }
  return BF_CONFIG_OK;
}
