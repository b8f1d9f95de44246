/* Server logging (see log.h): text or JSON lines on stderr, one fprintf per line so
 * lines from different threads never interleave; gRPC core's lines are routed here. */
#include "server/log.h"

#include <grpc/support/log.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int g_json = 0;
static int g_min_level = BF_LOG_LEVEL_INFO;
static const char *const LEVEL_NAMES[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void bf_log_configure(int json, int min_level) {
  g_json = json != 0;
  g_min_level = min_level < BF_LOG_LEVEL_DEBUG ? BF_LOG_LEVEL_DEBUG
              : min_level > BF_LOG_LEVEL_ERROR ? BF_LOG_LEVEL_ERROR : min_level;
}

int bf_log_level_parse(const char *text, int *level) {
  static const struct {
    const char *name;
    int level;
  } names[] = {{"debug", BF_LOG_LEVEL_DEBUG}, {"info", BF_LOG_LEVEL_INFO}, {"warn", BF_LOG_LEVEL_WARN},
               {"warning", BF_LOG_LEVEL_WARN}, {"error", BF_LOG_LEVEL_ERROR}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcasecmp(text, names[i].name) == 0) {
      *level = names[i].level;
      return 0;
    }
  return -1;
}

/* "src/server/table_writer.c" -> "table_writer" (into out). */
static void component_name(const char *component, char *out, size_t cap) {
  if (component == NULL) component = "server";
  const char *base = strrchr(component, '/');
  base = base ? base + 1 : component;
  size_t n = strcspn(base, ".");
  if (n >= cap) n = cap - 1;
  memcpy(out, base, n);
  out[n] = '\0';
}

/* The word after `marker` in message (quotes and trailing punctuation dropped), if
 * it has `dots` dots (-1: any); "" otherwise. */
static void word_after(const char *message, const char *marker, int dots, char *out, size_t cap) {
  out[0] = '\0';
  for (const char *p = strstr(message, marker); p; p = strstr(p + 1, marker)) {
    if (p != message && p[-1] != ' ' && p[-1] != '(') continue;
    const char *w = p + strlen(marker);
    if (*w == '\'') w++;
    size_t n = strcspn(w, " \t\n:,;()'");
    while (n > 0 && w[n - 1] == '.') n--;
    if (n == 0 || n >= cap) continue;
    int found = 0;
    for (size_t i = 0; i < n; i++) found += w[i] == '.';
    if (dots >= 0 && found != dots) continue;
    memcpy(out, w, n);
    out[n] = '\0';
    return;
  }
}

/* Appends text to buf as the inside of a JSON string (escapes, invalid UTF-8 -> U+FFFD). */
static size_t json_escape(char *buf, size_t at, size_t cap, const char *text) {
  const unsigned char *s = (const unsigned char *)text;
  while (*s && at + 8 < cap) {
    unsigned char c = *s;
    if (c == '"' || c == '\\') {
      buf[at++] = '\\';
      buf[at++] = (char)c;
      s++;
    } else if (c < 0x20 || c == 0x7f) {
      at += (size_t)snprintf(buf + at, cap - at, "\\u%04x", c);
      s++;
    } else if (c < 0x80) {
      buf[at++] = (char)c;
      s++;
    } else {
      int len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
      int ok = len > 0;
      for (int i = 1; ok && i < len; i++) ok = (s[i] & 0xc0) == 0x80;
      if (ok) {
        memcpy(buf + at, s, (size_t)len);
        at += (size_t)len;
        s += len;
      } else {
        memcpy(buf + at, "\\ufffd", 6);
        at += 6;
        s++;
      }
    }
  }
  buf[at] = '\0';
  return at;
}

static void write_line(int level, const char *component, const char *table, const char *producer_id,
                       const char *message) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[96];
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
  char comp[64], found_table[300], producer[160];
  component_name(component, comp, sizeof comp);
  if (table == NULL || table[0] == '\0') {
    word_after(message, "table ", 2, found_table, sizeof found_table);
    table = found_table;
  }
  if (producer_id) snprintf(producer, sizeof producer, "%s", producer_id);
  else word_after(message, "producer '", -1, producer, sizeof producer);
  const char *name = LEVEL_NAMES[level];
  if (!g_json) {
    fprintf(stderr, "%s %-5s %s%s%s%s%s %s\n", when, name, comp, table[0] ? " table=" : "", table,
            producer[0] ? " producer=" : "", producer, message);
    return;
  }
  char line[4096];
  size_t at = (size_t)snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"component\":\"", when,
                               name);
  at = json_escape(line, at, sizeof line - 64, comp);
  at += (size_t)snprintf(line + at, sizeof line - at, "\",\"table\":");
  if (table[0]) {
    line[at++] = '"';
    at = json_escape(line, at, sizeof line - 64, table);
    line[at++] = '"';
  } else {
    at += (size_t)snprintf(line + at, sizeof line - at, "null");
  }
  at += (size_t)snprintf(line + at, sizeof line - at, ",\"producer\":");
  if (producer[0]) {
    line[at++] = '"';
    at = json_escape(line, at, sizeof line - 64, producer);
    line[at++] = '"';
  } else {
    at += (size_t)snprintf(line + at, sizeof line - at, "null");
  }
  at += (size_t)snprintf(line + at, sizeof line - at, ",\"msg\":\"");
  at = json_escape(line, at, sizeof line - 4, message);
  snprintf(line + at, sizeof line - at, "\"}");
  fprintf(stderr, "%s\n", line);
}

static void log_va(int level, const char *component, const char *table, const char *producer,
                   const char *fmt, va_list ap) {
  if (level < g_min_level) return;
  if (level > BF_LOG_LEVEL_ERROR) level = BF_LOG_LEVEL_ERROR;
  char message[1024];
  vsnprintf(message, sizeof message, fmt, ap);
  write_line(level, component, table, producer, message);
}

void bf_log_at(int level, const char *component, const char *table, const char *producer,
               const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_va(level, component, table, producer, fmt, ap);
  va_end(ap);
}

void bf_log(const char *level, const char *fmt, ...) {
  int lv = BF_LOG_LEVEL_INFO;
  if (level) bf_log_level_parse(level, &lv);
  va_list ap;
  va_start(ap, fmt);
  log_va(lv, "server", NULL, NULL, fmt, ap);
  va_end(ap);
}

/* gRPC core's INFO lines (experiments, pollers, resolvers) are our DEBUG; its
 * errors stay errors. */
static void grpc_log(gpr_log_func_args *args) {
  int level = args->severity == GPR_LOG_SEVERITY_ERROR ? BF_LOG_LEVEL_ERROR : BF_LOG_LEVEL_DEBUG;
  if (level < g_min_level) return;
  write_line(level, "grpc", "", "", args->message ? args->message : "");
}

void bf_log_capture_grpc(void) {
  gpr_set_log_function(grpc_log);
  gpr_set_log_verbosity(g_min_level <= BF_LOG_LEVEL_DEBUG ? GPR_LOG_SEVERITY_DEBUG
                                                          : GPR_LOG_SEVERITY_ERROR);
}
