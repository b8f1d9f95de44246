/* Server logging: timestamped lines on stderr, safe from any thread. */
#ifndef BIFROST_SERVER_LOG_H
#define BIFROST_SERVER_LOG_H

void bf_log(const char *level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define BF_LOG_INFO(...) bf_log("INFO", __VA_ARGS__)
#define BF_LOG_WARN(...) bf_log("WARN", __VA_ARGS__)
#define BF_LOG_ERROR(...) bf_log("ERROR", __VA_ARGS__)

#endif
