/* Option parsing for bifrost-server (see config.h). Every flag has a BIFROST_*
 * environment equivalent, listed in --help. */
#include "server/config.h"

#include <duckdb.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "server/log.h"
#include "server/counters.h"


void bf_server_config_usage(FILE *out) {
  fprintf(out,
          "usage: bifrost-server [options]\n"
          "\n"
          "Stores records sent by Bifrost producers as Delta Lake tables and answers SQL\n"
          "queries over them (gRPC service bifrost.v1.Bifrost).\n"
          "\n"
          "options (environment variable in brackets; flags override the environment):\n"
          "  --host HOST            address to listen on (default 127.0.0.1; another address\n"
          "                         needs --auth-file or --insecure) [BIFROST_HOST]\n"
          "  --port PORT            gRPC port (default 50051; 0 picks a free port and prints it)\n"
          "                         [BIFROST_PORT]\n"
          "  --data-dir DIR         where tables live: a directory, or s3://bucket/prefix\n"
          "                         (default ./bifrost_data) [BIFROST_DATA_DIR]\n"
          "  --wal-dir DIR          this server's write-ahead log, on a local durable disk;\n"
          "                         required with an s3:// data dir (default: inside each\n"
          "                         table's directory) [BIFROST_WAL_DIR]\n"
          "  --ack-mode MODE        wal: acknowledge once in the fsync'd WAL (default);\n"
          "                         commit: only once a Delta commit holds the rows\n"
          "                         [BIFROST_ACK_MODE]\n"
          "  --commit-interval SECS with --ack-mode commit, how long a commit collects\n"
          "                         batches of every producer (default 0.05)\n"
          "                         [BIFROST_COMMIT_INTERVAL]\n"
          "  --shared-flush-interval SECS  while another server writes the same table,\n"
          "                         flush at least this often so rows acknowledged here are\n"
          "                         visible there (default 0.5) [BIFROST_SHARED_FLUSH_INTERVAL]\n"
          "  --extension-dir DIR    where DuckDB's httpfs extension is (for s3://; default\n"
          "                         .deps/duckdb-ext next to the build) [BIFROST_EXTENSION_DIR]\n"
          "  S3 credentials and endpoint come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
          "  AWS_SESSION_TOKEN, AWS_REGION and AWS_ENDPOINT_URL (an http:// endpoint such as\n"
          "  a local MinIO means plain HTTP and path-style addressing).\n"
          "  --workers N            concurrent calls served (default 8) [BIFROST_WORKERS]\n"
          "  --query-timeout SECS   per-query time limit, 0 = none (default 300)\n"
          "                         [BIFROST_QUERY_TIMEOUT]\n"
          "  --client-stall-timeout SECS  end a call (DEADLINE_EXCEEDED) whose client takes\n"
          "                         nothing for this long: result messages it does not read,\n"
          "                         a request it does not send; 0 = never (default 60)\n"
          "                         [BIFROST_CLIENT_STALL_TIMEOUT]\n"
          "  --max-result-rows N    refuse results with more rows, 0 = no limit (default 0)\n"
          "                         [BIFROST_MAX_RESULT_ROWS]\n"
          "  --max-result-bytes N   refuse results larger than N bytes of Arrow IPC, 0 = no\n"
          "                         limit (default 8589934592 = 8 GiB) [BIFROST_MAX_RESULT_BYTES]\n"
          "  --memory-limit SIZE    memory limit, e.g. 4GB or 512MiB (default: DuckDB's, 80%%\n"
          "                         of the machine's memory)\n"
          "                         [BIFROST_MEMORY_LIMIT]\n"
          "  --threads N            DuckDB threads (default: DuckDB's) [BIFROST_THREADS]\n"
          "\n");
  fprintf(out,
          "limits (bad input is refused with a clear error before it costs memory):\n"
          "  --max-batch-bytes SIZE largest decoded size of one InsertBatch (dictionaries and\n"
          "                         views expanded; default 256MiB) [BIFROST_MAX_BATCH_BYTES]\n"
          "  --max-sql-bytes SIZE   longest SQL text (default 1MiB) [BIFROST_MAX_SQL_BYTES]\n"
          "  --max-query-selects N  most SELECT blocks (CTEs, subqueries, UNION branches) in\n"
          "                         one query (default 256) [BIFROST_MAX_QUERY_SELECTS]\n"
          "  --max-query-depth N    deepest nesting of a query's syntax tree (default 500)\n"
          "                         [BIFROST_MAX_QUERY_DEPTH]\n"
          "  --max-value-bytes SIZE largest value a query may build from a constant count\n"
          "                         (repeat, lpad, rpad, range; default 64MiB)\n"
          "                         [BIFROST_MAX_VALUE_BYTES]\n"
          "  --memory-limit also bounds the rows acknowledged but not yet flushed (half of it;\n"
          "  with no limit, half of 80%% of the machine's memory): inserts beyond that wait\n"
          "  for a flush (RESOURCE_EXHAUSTED, retried by producers)."
          "\n"
          "\n");
  fprintf(out,
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
          "  --unsafe-short-retention  allow vacuum retentions below 1 hour (from this flag or\n"
          "                         a client's request) [BIFROST_UNSAFE_SHORT_RETENTION=1]\n"
          "\n");
  fprintf(out,
          "security (without --auth-file the server is open: anyone who reaches the port may\n"
          "do anything, so it listens on 127.0.0.1 unless --insecure):\n"
          "  --auth-file PATH       users, password hashes and grants (JSON); re-read on SIGHUP\n"
          "                         [BIFROST_AUTH_FILE]\n"
          "  --auth-secret-file PATH  key that signs tokens (default: generated once into\n"
          "                         <data-dir>/_bifrost_auth/secret) [BIFROST_AUTH_SECRET_FILE]\n"
          "  --token-ttl SECS       lifetime of a login token (default 3600) [BIFROST_TOKEN_TTL]\n"
          "  --tls-cert PEM --tls-key PEM  serve TLS only [BIFROST_TLS_CERT, BIFROST_TLS_KEY]\n"
          "  --tls-client-ca PEM    also require client certificates signed by this CA\n"
          "                         [BIFROST_TLS_CLIENT_CA]\n"
          "  --insecure             allow open mode on a non-loopback --host\n"
          "                         [BIFROST_INSECURE=1]\n"
          "  bifrost-server hash-password   read a password on stdin, print its hash for the\n"
          "                         auth file\n"
          "\n");
  fprintf(out,
          "operating:\n"
          "  --shutdown-timeout SECS  on SIGTERM/SIGINT, time running calls get to finish\n"
          "                         before they are cancelled (default 30); a second signal\n"
          "                         exits at once [BIFROST_SHUTDOWN_TIMEOUT]\n"
          "  --log-format FORMAT    text or json (one object per line) [BIFROST_LOG_FORMAT]\n"
          "  --log-level LEVEL      debug, info, warn or error (default info)\n"
          "                         [BIFROST_LOG_LEVEL]\n"
          "  --metrics-port PORT    serve Prometheus metrics on GET /metrics (default off; 0\n"
          "                         picks a free port, logged)\n"
          "                         [BIFROST_METRICS_PORT]\n"
          "  --metrics-host HOST    address of the metrics listener (default 127.0.0.1)\n"
          "                         [BIFROST_METRICS_HOST]\n"
          "\n"
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
  if (*text == '\0' || *end != '\0' || v < 0 || v != v) return -1;
  *out = v;
  return 0;
}

int bf_server_parse_size(const char *text, long long *out) {
  static const struct {
    const char *unit;
    double factor;
  } units[] = {{"", 1},          {"b", 1},          {"byte", 1},        {"bytes", 1},
               {"kb", 1e3},      {"mb", 1e6},       {"gb", 1e9},        {"tb", 1e12},
               {"kib", 1024.0},  {"mib", 1048576.0}, {"gib", 1073741824.0},
               {"tib", 1099511627776.0}};
  char *end;
  double v = strtod(text, &end);
  if (end == text || !(v >= 0) || v > 9.2e18) return -1;
  while (*end == ' ') end++;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcasecmp(end, units[i].unit) != 0) continue;
    double bytes = v * units[i].factor;
    if (bytes > 9.2e18) return -1;
    *out = (long long)bytes;
    return 0;
  }
  return -1;
}

/* Applies one option value; name is for messages. On a bad value prints one line
 * saying what is expected. */
static int apply(bf_server_config_t *c, int opt, const char *value, const char *name) {
  const char *expected = NULL;
  long long size = 0;
  switch (opt) {
    case 'h':
      if (strlen(value) >= sizeof c->host || value[0] == '\0') expected = "a host name or address";
      else strcpy(c->host, value);
      break;
    case 'p':
      if (parse_int(value, 0, 65535, &c->port)) expected = "a port number from 0 to 65535";
      break;
    case 'd':
      if (strlen(value) == 0 || strlen(value) >= sizeof c->data_dir ||
          (strncmp(value, "s3://", 5) == 0 && (value[5] == '\0' || value[5] == '/')))
        expected = "a directory path or s3://bucket/prefix";
      else strcpy(c->data_dir, value);
      break;
    case 'w':
      if (parse_int(value, 1, 1024, &c->workers)) expected = "a number from 1 to 1024";
      break;
    case 'q':
      if (parse_double(value, &c->query_timeout_secs)) expected = "seconds (0 = none)";
      break;
    case 'r':
    case 'b': {
      char *end;
      long long v = strtoll(value, &end, 10);
      if (*value == '\0' || *end != '\0' || v < 0) expected = "a number >= 0 (0 = no limit)";
      else *(opt == 'r' ? &c->max_result_rows : &c->max_result_bytes) = v;
      break;
    }
    case 'm':
      if (strlen(value) >= sizeof c->memory_limit || bf_server_parse_size(value, &size) ||
          size < (16LL << 20))
        expected = "a size of at least 16MiB, such as 512MB, 4GB or 2GiB";
      else {
        strcpy(c->memory_limit, value);
        c->memory_limit_bytes = size;
      }
      break;
    case 'B':
      if (bf_server_parse_size(value, &size) || size < 1024)
        expected = "a size of at least 1KiB, such as 64MiB or 1GB";
      else c->max_batch_bytes = size;
      break;
    case 'S':
      if (bf_server_parse_size(value, &size) || size < 64) expected = "a size of at least 64 bytes";
      else c->max_sql_bytes = size;
      break;
    case 'D':
      if (bf_server_parse_size(value, &size) || size < 1024)
        expected = "a size of at least 1KiB, such as 64MiB";
      else c->max_value_bytes = size;
      break;
    case 'N':
      if (parse_int(value, 1, 100000, &c->max_query_selects)) expected = "a number from 1 to 100000";
      break;
    case 'E':
      if (parse_int(value, 10, 100000, &c->max_query_depth)) expected = "a number from 10 to 100000";
      break;
    case 'A':
    case 'K':
    case 'c':
    case 'k':
    case 'a': {
      char *dest = opt == 'A' ? c->auth_file : opt == 'K' ? c->auth_secret_file
                 : opt == 'c' ? c->tls_cert : opt == 'k' ? c->tls_key : c->tls_client_ca;
      if (value[0] == '\0' || strlen(value) >= sizeof c->auth_file) expected = "a file path";
      else strcpy(dest, value);
      break;
    }
    case 'L':
      if (parse_double(value, &c->token_ttl_secs) || c->token_ttl_secs <= 0)
        expected = "seconds > 0";
      break;
    case 'Z':
      if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0) c->insecure = 1;
      else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0) c->insecure = 0;
      else expected = "1 or 0";
      break;
    case 'U':
      if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0) c->unsafe_short_retention = 1;
      else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0) c->unsafe_short_retention = 0;
      else expected = "1 or 0";
      break;
    case 't':
      if (parse_int(value, 1, 1024, &c->threads)) expected = "a number from 1 to 1024";
      break;
    case 'R':
    case 'Y': {
      char *end;
      long long v = strtoll(value, &end, 10);
      if (*value == '\0' || *end != '\0' || v < 1) expected = "a number >= 1";
      else *(opt == 'R' ? &c->flush_rows : &c->flush_bytes) = v;
      break;
    }
    case 'I':
      if (parse_double(value, &c->flush_interval_secs) || c->flush_interval_secs <= 0)
        expected = "seconds > 0";
      break;
    case 'C':
      if (parse_int(value, 0, 1000000, &c->checkpoint_interval)) expected = "a number >= 0";
      break;
    case 'M':
      if (parse_int(value, 0, 1000000, &c->compact_min_files)) expected = "a number >= 0";
      break;
    case 'v':
    case 'l': {
      char *end;
      double v = strtod(value, &end);
      if (*value == '\0' || *end != '\0' || v != v || (opt == 'l' && v < 0))
        expected = opt == 'v' ? "hours (negative = never)" : "hours >= 0";
      else *(opt == 'v' ? &c->vacuum_retention_hours : &c->log_retention_hours) = v;
      break;
    }
    case 'T':
      if (parse_double(value, &c->maintenance_interval_secs)) expected = "seconds >= 0 (0 = off)";
      break;
    case 'G':
      if (parse_double(value, &c->shutdown_timeout_secs) || c->shutdown_timeout_secs > 86400)
        expected = "seconds from 0 to 86400";
      break;
    case 'X':
      if (parse_double(value, &c->client_stall_timeout_secs) || c->client_stall_timeout_secs > 86400)
        expected = "seconds from 0 to 86400 (0 = never)";
      break;
    case 'F':
      if (strcmp(value, "text") == 0) c->log_json = 0;
      else if (strcmp(value, "json") == 0) c->log_json = 1;
      else expected = "text or json";
      break;
    case 'J':
      if (bf_log_level_parse(value, &c->log_level)) expected = "debug, info, warn or error";
      break;
    case 'P':
      if (parse_int(value, 0, 65535, &c->metrics_port))
        expected = "a port number from 0 to 65535 (0 picks a free port)";
      break;
    case 'W':
    case 'e': {
      char *dest = opt == 'W' ? c->wal_dir : c->extension_dir;
      if (value[0] == '\0' || strlen(value) >= sizeof c->wal_dir || strncmp(value, "s3://", 5) == 0)
        expected = "a local directory path";
      else strcpy(dest, value);
      break;
    }
    case 'o':
      if (strcmp(value, "wal") == 0) c->ack_on_commit = 0;
      else if (strcmp(value, "commit") == 0) c->ack_on_commit = 1;
      else expected = "wal or commit";
      break;
    case 'i':
    case 's': {
      double *dest = opt == 'i' ? &c->commit_interval_secs : &c->shared_flush_interval_secs;
      if (parse_double(value, dest) || *dest <= 0 || *dest > 3600) expected = "seconds > 0";
      break;
    }
    case 'O':
      if (strlen(value) >= sizeof c->metrics_host || value[0] == '\0') expected = "a host name or address";
      else strcpy(c->metrics_host, value);
      break;
  }
  if (expected)
    fprintf(stderr, "bifrost-server: invalid value '%s' for %s: expected %s\n", value, name,
            expected);
  return expected != NULL;
}

int bf_server_config_parse(bf_server_config_t *c, int argc, char **argv) {
  memset(c, 0, sizeof *c);
  strcpy(c->host, "127.0.0.1");
  c->token_ttl_secs = 3600;
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
  c->commit_interval_secs = 0.05;
  c->shared_flush_interval_secs = 0.5;
  c->max_batch_bytes = 256LL << 20;
  c->max_sql_bytes = 1LL << 20;
  c->max_value_bytes = 64LL << 20;
  c->max_query_selects = 256;
  c->max_query_depth = 500;
  c->shutdown_timeout_secs = 30;
  c->client_stall_timeout_secs = 60;
  c->metrics_port = -1;
  c->log_level = BF_LOG_LEVEL_INFO;
  strcpy(c->metrics_host, "127.0.0.1");
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
              {'T', "BIFROST_MAINTENANCE_INTERVAL"}, {'B', "BIFROST_MAX_BATCH_BYTES"},
              {'S', "BIFROST_MAX_SQL_BYTES"}, {'D', "BIFROST_MAX_VALUE_BYTES"},
              {'N', "BIFROST_MAX_QUERY_SELECTS"}, {'E', "BIFROST_MAX_QUERY_DEPTH"},
              {'U', "BIFROST_UNSAFE_SHORT_RETENTION"}, {'A', "BIFROST_AUTH_FILE"},
              {'K', "BIFROST_AUTH_SECRET_FILE"}, {'L', "BIFROST_TOKEN_TTL"},
              {'c', "BIFROST_TLS_CERT"}, {'k', "BIFROST_TLS_KEY"},
              {'a', "BIFROST_TLS_CLIENT_CA"}, {'Z', "BIFROST_INSECURE"},
              {'G', "BIFROST_SHUTDOWN_TIMEOUT"}, {'F', "BIFROST_LOG_FORMAT"},
              {'J', "BIFROST_LOG_LEVEL"}, {'P', "BIFROST_METRICS_PORT"},
              {'O', "BIFROST_METRICS_HOST"}, {'W', "BIFROST_WAL_DIR"},
              {'o', "BIFROST_ACK_MODE"}, {'i', "BIFROST_COMMIT_INTERVAL"},
              {'s', "BIFROST_SHARED_FLUSH_INTERVAL"}, {'e', "BIFROST_EXTENSION_DIR"},
              {'X', "BIFROST_CLIENT_STALL_TIMEOUT"}};
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
      {"max-batch-bytes", required_argument, NULL, 'B'},
      {"max-sql-bytes", required_argument, NULL, 'S'},
      {"max-value-bytes", required_argument, NULL, 'D'},
      {"max-query-selects", required_argument, NULL, 'N'},
      {"max-query-depth", required_argument, NULL, 'E'},
      {"unsafe-short-retention", no_argument, NULL, 'U'},
      {"auth-file", required_argument, NULL, 'A'},
      {"auth-secret-file", required_argument, NULL, 'K'},
      {"token-ttl", required_argument, NULL, 'L'},
      {"tls-cert", required_argument, NULL, 'c'},
      {"tls-key", required_argument, NULL, 'k'},
      {"tls-client-ca", required_argument, NULL, 'a'},
      {"insecure", no_argument, NULL, 'Z'},
      {"shutdown-timeout", required_argument, NULL, 'G'},
      {"log-format", required_argument, NULL, 'F'},
      {"log-level", required_argument, NULL, 'J'},
      {"metrics-port", required_argument, NULL, 'P'},
      {"metrics-host", required_argument, NULL, 'O'},
      {"wal-dir", required_argument, NULL, 'W'},
      {"ack-mode", required_argument, NULL, 'o'},
      {"commit-interval", required_argument, NULL, 'i'},
      {"shared-flush-interval", required_argument, NULL, 's'},
      {"extension-dir", required_argument, NULL, 'e'},
      {"client-stall-timeout", required_argument, NULL, 'X'},
      {"version", no_argument, NULL, 'V'},             {NULL, 0, NULL, 0}};
  optind = 1;
  int opt, longindex = 0;
  while ((opt = getopt_long(argc, argv, "", longopts, &longindex)) != -1) {
    if (opt == 'H') {
      bf_server_config_usage(stdout);
      return BF_CONFIG_EXIT_OK;
    }
    if (opt == 'V') {
      printf("bifrost-server %s\nduckdb %s\ngrpc core %s\n", BF_SERVER_VERSION, duckdb_library_version(),
             grpc_version_string());
      return BF_CONFIG_EXIT_OK;
    }
    if (opt == '?') { /* getopt said which option on the line before */
      fprintf(stderr, "bifrost-server: see --help for the options\n");
      return BF_CONFIG_EXIT_USAGE;
    }
    if (opt == 'U') {
      c->unsafe_short_retention = 1;
      continue;
    }
    if (opt == 'Z') {
      c->insecure = 1;
      continue;
    }
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", longopts[longindex].name);
    if (apply(c, opt, optarg, flag)) return BF_CONFIG_EXIT_USAGE;
  }
  if (optind < argc) {
    fprintf(stderr, "bifrost-server: unexpected argument '%s' (see --help)\n", argv[optind]);
    return BF_CONFIG_EXIT_USAGE;
  }
  return BF_CONFIG_OK;
}
