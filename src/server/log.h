/* Server logging: one line per message on stderr, safe from any thread, as text
 * ("<time> <LEVEL> <component> [table=<fqn>] <message>") or as one JSON object
 * per line ({"time","level","component","table","producer","msg"}). The component
 * is the source file's name (table_writer, service, ...); the table and producer
 * are taken from the message ("table <catalog.schema.table>", "producer '<id>'")
 * or given explicitly with bf_log_at. gRPC core's own messages go through the
 * same writer (component "grpc") once bf_log_capture_grpc has run. */
#ifndef BIFROST_SERVER_LOG_H
#define BIFROST_SERVER_LOG_H

enum { BF_LOG_LEVEL_DEBUG = 0, BF_LOG_LEVEL_INFO = 1, BF_LOG_LEVEL_WARN = 2, BF_LOG_LEVEL_ERROR = 3 };

/* Output format and the lowest level written; call once at start (before threads). */
void bf_log_configure(int json, int min_level);
/* "debug" / "info" / "warn" (or "warning") / "error" -> level; -1 otherwise. */
int bf_log_level_parse(const char *text, int *level);
/* Routes gRPC core's log lines through bf_log_write. */
void bf_log_capture_grpc(void);

/* One line. component, table and producer may be NULL (table and producer then
 * come from the message, when it names them). */
void bf_log_at(int level, const char *component, const char *table, const char *producer,
               const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* Legacy entry point: level by name ("INFO"), component "server". */
void bf_log(const char *level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define BF_LOG_COMPONENT_ (__FILE__)
#define BF_LOG_DEBUG(...) bf_log_at(BF_LOG_LEVEL_DEBUG, BF_LOG_COMPONENT_, NULL, NULL, __VA_ARGS__)
#define BF_LOG_INFO(...) bf_log_at(BF_LOG_LEVEL_INFO, BF_LOG_COMPONENT_, NULL, NULL, __VA_ARGS__)
#define BF_LOG_WARN(...) bf_log_at(BF_LOG_LEVEL_WARN, BF_LOG_COMPONENT_, NULL, NULL, __VA_ARGS__)
#define BF_LOG_ERROR(...) bf_log_at(BF_LOG_LEVEL_ERROR, BF_LOG_COMPONENT_, NULL, NULL, __VA_ARGS__)

#endif
