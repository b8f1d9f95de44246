/* Text rewrite of the DataFusion forms DuckDB cannot parse or a macro cannot type:
 *   struct(x AS a, y)                  -> struct_pack("a" := x, "c1" := y)
 *   named_struct('a', x, 'b', y)       -> struct_pack("a" := x, "b" := y)
 *   arrow_cast(x, 'Int64')             -> CAST(x AS BIGINT)    (arrow_try_cast: TRY_CAST)
 *   approx_percentile_cont(p) WITHIN GROUP (ORDER BY x [DESC])
 *                                      -> approx_quantile(CAST(x AS DOUBLE), p)   (DESC: 1 - p)
 *   approx_distinct, approx_median, approx_percentile_cont(x, p), percentile_cont(x, p),
 *   covar, var, var_sample, var_population -> DuckDB's aggregates (FILTER keeps working)
 *   make_array(...), make_list(...)    -> list_value(...)  (any number of arguments)
 *   first_value(x ORDER BY y), last_value(...)  (aggregates, no OVER)
 *                                      -> first(x ORDER BY y), last(...)
 *   nth_value(x, n ORDER BY y)         -> (list(x ORDER BY y)[n])
 *   a column named at                  -> "at"   (kept before TIME ZONE)
 * The text is tokenized (string literals, quoted identifiers, dollar quotes and
 * comments are copied untouched). A first pass without allocation looks for the
 * trigger words; a statement without them is not copied. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/engine_compat.h"
#include "engine/engine_internal.h"

enum { T_SPACE, T_WORD, T_STRING, T_QIDENT, T_PUNCT };

typedef struct tok {
  const char *s;
  size_t n;
  int kind;
  long match; /* for '(' the index of its ')', else -1 */
} tok_t;

/* Length of the token at p and its kind. */
static size_t scan(const char *p, int *kind) {
  const char *q = p;
  unsigned char c = (unsigned char)*p;
  if (isspace(c)) {
    while (isspace((unsigned char)*q)) q++;
    *kind = T_SPACE;
  } else if (c == '-' && p[1] == '-') {
    while (*q && *q != '\n') q++;
    *kind = T_SPACE;
  } else if (c == '/' && p[1] == '*') {
    const char *end = strstr(p + 2, "*/");
    q = end ? end + 2 : p + strlen(p);
    *kind = T_SPACE;
  } else if (c == '\'' || c == '"') {
    for (q++; *q; q++)
      if (*q == (char)c) {
        if (q[1] != (char)c) {
          q++;
          break;
        }
        q++;
      }
    *kind = c == '\'' ? T_STRING : T_QIDENT;
  } else if (c == '$' && (p[1] == '$' || isalpha((unsigned char)p[1]) || p[1] == '_')) {
    const char *tag_end = p + 1;
    while (isalnum((unsigned char)*tag_end) || *tag_end == '_') tag_end++;
    if (*tag_end != '$') {
      *kind = T_PUNCT;
      return 1;
    }
    size_t tag = (size_t)(tag_end - p) + 1;
    const char *end = tag_end + 1;
    while (*end && strncmp(end, p, tag) != 0) end++;
    q = *end ? end + tag : end;
    *kind = T_STRING;
  } else if (isalnum(c) || c == '_' || c >= 0x80) {
    while (isalnum((unsigned char)*q) || *q == '_' || *q == '$' || (unsigned char)*q >= 0x80) q++;
    *kind = T_WORD;
  } else {
    q = p + ((c == ':' && (p[1] == ':' || p[1] == '=')) ? 2 : 1);
    *kind = T_PUNCT;
  }
  return (size_t)(q - p);
}

static int word_is(const char *s, size_t n, const char *w) {
  return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

/* The words that start a rewrite; a word is checked by length and first letter
 * before any comparison, so scanning a statement without them stays cheap. */
static const char *const TRIGGERS[] = {
    "at", "struct", "named_struct", "arrow_cast", "arrow_try_cast", "approx_percentile_cont",
    "approx_percentile_cont_with_weight", "first_value", "last_value", "nth_value",
    "approx_distinct", "approx_median", "covar", "var", "var_sample", "var_population",
    "percentile_cont", "make_array", "make_list",
};

static int is_trigger(const char *s, size_t n) {
  if (n < 2 || n > 34) return 0;
  char first = (char)tolower((unsigned char)s[0]);
  for (size_t i = 0; i < sizeof TRIGGERS / sizeof *TRIGGERS; i++)
    if (TRIGGERS[i][0] == first && strlen(TRIGGERS[i]) == n && strncasecmp(s, TRIGGERS[i], n) == 0) return 1;
  return 0;
}

/* Rewrites nested deeper than this are left as written (the guard then bounds the
 * depth of what DuckDB parses); keeps the recursion of emit() off the C stack limit. */
#define REWRITE_MAX_DEPTH 128

typedef struct rw {
  tok_t *t;
  long n;
  int depth;
  bf_buffer_t out;
} rw_t;

static long next_tok(const rw_t *r, long i) { /* next non-space token index after i, or n */
  for (i++; i < r->n && r->t[i].kind == T_SPACE; i++) {
  }
  return i;
}

static long prev_tok(const rw_t *r, long i) {
  for (i--; i >= 0 && r->t[i].kind == T_SPACE; i--) {
  }
  return i;
}

static int is_punct(const rw_t *r, long i, const char *p) {
  return i >= 0 && i < r->n && r->t[i].kind == T_PUNCT && word_is(r->t[i].s, r->t[i].n, p);
}
static int is_word(const rw_t *r, long i, const char *w) {
  return i >= 0 && i < r->n && r->t[i].kind == T_WORD && word_is(r->t[i].s, r->t[i].n, w);
}

static int emit(rw_t *r, long from, long to);

/* emit() without the blanks at either end of the range. */
static int emit_trim(rw_t *r, long from, long to) {
  from = next_tok(r, from - 1);
  to = prev_tok(r, to) + 1;
  return from < to ? emit(r, from, to) : BF_OK;
}

/* The top-level arguments of the call whose '(' is at open: ranges [start, end). */
static int split_args(const rw_t *r, long open, long *starts, long *ends, int max) {
  int count = 0;
  long start = open + 1, close = r->t[open].match;
  for (long i = open + 1; i <= close; i++) {
    if (r->t[i].kind == T_PUNCT && r->t[i].s[0] == '(' && r->t[i].match > 0) {
      i = r->t[i].match;
      continue;
    }
    if (i == close || is_punct(r, i, ",")) {
      if (count == max) return -1;
      starts[count] = start;
      ends[count++] = i;
      start = i + 1;
    }
  }
  if (count == 1 && next_tok(r, open) == close) return 0; /* f() */
  return count;
}

/* A field name as a quoted identifier: "x" as written, a word quoted as written
 * (DataFusion keeps the case of struct aliases), a 'literal' unquoted first. */
static int emit_ident(rw_t *r, const tok_t *name) {
  if (name->kind == T_QIDENT) return bf_buffer_append(&r->out, name->s, name->n);
  char *text = malloc(name->n + 1);
  if (text == NULL) return BF_ENOMEM;
  size_t n = 0;
  if (name->kind == T_STRING) { /* 'a''b' -> a'b */
    for (size_t i = 1; i + 1 < name->n; i++) {
      text[n++] = name->s[i];
      if (name->s[i] == '\'' && name->s[i + 1] == '\'') i++;
    }
  } else {
    memcpy(text, name->s, name->n);
    n = name->n;
  }
  text[n] = '\0';
  int status = bf__sql_ident(&r->out, text);
  free(text);
  return status;
}

/* struct(...) and named_struct(...): returns 1 when rewritten. */
static int rewrite_struct(rw_t *r, long name, long open, int named, long *resume) {
  long starts[64], ends[64];
  int n = split_args(r, open, starts, ends, 64);
  if (n <= 0 || (named && n % 2)) return 0;
  if (named) /* every name a string literal */
    for (int a = 0; a < n; a += 2) {
      long k = next_tok(r, starts[a] - 1);
      if (r->t[k].kind != T_STRING || r->t[k].s[0] != '\'' || next_tok(r, k) != ends[a]) return 0;
    }
  (void)name;
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, "struct_pack("));
  int field = 0;
  for (int a = 0; a < n; a += named ? 2 : 1, field++) {
    if (field) BF_RETURN_NOT_OK(bf__sql_append(&r->out, ", "));
    if (named) {
      BF_RETURN_NOT_OK(emit_ident(r, &r->t[next_tok(r, starts[a] - 1)]));
      BF_RETURN_NOT_OK(bf__sql_append(&r->out, " := "));
      BF_RETURN_NOT_OK(emit_trim(r, starts[a + 1], ends[a + 1]));
      continue;
    }
    long last = prev_tok(r, ends[a]), as = prev_tok(r, last);
    if (as > starts[a] && is_word(r, as, "as") &&
        (r->t[last].kind == T_WORD || r->t[last].kind == T_QIDENT)) {
      BF_RETURN_NOT_OK(emit_ident(r, &r->t[last]));
      BF_RETURN_NOT_OK(bf__sql_append(&r->out, " := "));
      BF_RETURN_NOT_OK(emit_trim(r, starts[a], as));
    } else {
      char c[24];
      snprintf(c, sizeof c, "\"c%d\" := ", field);
      BF_RETURN_NOT_OK(bf__sql_append(&r->out, c));
      BF_RETURN_NOT_OK(emit_trim(r, starts[a], ends[a]));
    }
  }
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, ")"));
  *resume = r->t[open].match + 1;
  return 1;
}

/* DuckDB type for an Arrow type name as DataFusion spells it, or NULL. decimal
 * holds a DECIMAL(p, s) spelling (the rewrite runs on many threads at once). */
static const char *duck_type(const char *arrow, char decimal[32]) {
  static const char *const map[][2] = {
      {"Int8", "TINYINT"}, {"Int16", "SMALLINT"}, {"Int32", "INTEGER"}, {"Int64", "BIGINT"},
      {"UInt8", "UTINYINT"}, {"UInt16", "USMALLINT"}, {"UInt32", "UINTEGER"}, {"UInt64", "UBIGINT"},
      {"Float16", "FLOAT"}, {"Float32", "FLOAT"}, {"Float64", "DOUBLE"}, {"Utf8", "VARCHAR"},
      {"LargeUtf8", "VARCHAR"}, {"Utf8View", "VARCHAR"}, {"Boolean", "BOOLEAN"}, {"Date32", "DATE"},
      {"Date64", "DATE"}, {"Binary", "BLOB"}, {"LargeBinary", "BLOB"}, {"BinaryView", "BLOB"},
      {"Null", "INTEGER"}, {"Timestamp(Second, None)", "TIMESTAMP_S"}, {"Timestamp(s)", "TIMESTAMP_S"},
      {"Timestamp(Millisecond, None)", "TIMESTAMP_MS"}, {"Timestamp(ms)", "TIMESTAMP_MS"},
      {"Timestamp(Microsecond, None)", "TIMESTAMP"}, {"Timestamp(µs)", "TIMESTAMP"},
      {"Timestamp(Nanosecond, None)", "TIMESTAMP_NS"}, {"Timestamp(ns)", "TIMESTAMP_NS"},
      {"Timestamp(Microsecond, Some(\"UTC\"))", "TIMESTAMPTZ"}, {"Timestamp(µs, \"UTC\")", "TIMESTAMPTZ"},
      {"Timestamp(Nanosecond, Some(\"UTC\"))", "TIMESTAMPTZ"}, {"Timestamp(ns, \"UTC\")", "TIMESTAMPTZ"},
      {"Time64(Microsecond)", "TIME"}, {"Time64(µs)", "TIME"}, {"Time64(Nanosecond)", "TIME"},
      {"Time64(ns)", "TIME"}, {"Interval(MonthDayNano)", "INTERVAL"},
  };
  for (size_t i = 0; i < sizeof map / sizeof *map; i++)
    if (strcmp(arrow, map[i][0]) == 0) return map[i][1];
  int p, s;
  char tail;
  if (sscanf(arrow, "Decimal128(%d, %d%c", &p, &s, &tail) == 3 && tail == ')' && p > 0 && p <= 38 &&
      s >= 0 && s <= p) {
    snprintf(decimal, 32, "DECIMAL(%d, %d)", p, s);
    return decimal;
  }
  return NULL;
}

static int rewrite_arrow_cast(rw_t *r, long name, long open, long *resume) {
  long starts[2], ends[2];
  if (split_args(r, open, starts, ends, 2) != 2) return 0;
  long k = next_tok(r, starts[1] - 1);
  if (r->t[k].kind != T_STRING || next_tok(r, k) != ends[1] || r->t[k].n < 2 || r->t[k].n > 64) return 0;
  char arrow[64];
  memcpy(arrow, r->t[k].s + 1, r->t[k].n - 2);
  arrow[r->t[k].n - 2] = '\0';
  char decimal[32];
  const char *type = duck_type(arrow, decimal);
  if (type == NULL) return 0;
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, word_is(r->t[name].s, r->t[name].n, "arrow_cast") ? "CAST(" : "TRY_CAST("));
  BF_RETURN_NOT_OK(emit_trim(r, starts[0], ends[0]));
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, " AS "));
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, type));
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, ")"));
  *resume = r->t[open].match + 1;
  return 1;
}

/* approx_percentile_cont(p [, c]) WITHIN GROUP (ORDER BY x [ASC|DESC] [NULLS ...]) */
static int rewrite_within_group(rw_t *r, long name, long open, long *resume) {
  long starts[3], ends[3];
  int weighted = word_is(r->t[name].s, r->t[name].n, "approx_percentile_cont_with_weight");
  int n = split_args(r, open, starts, ends, 3);
  if (n < 1 + weighted) return 0;
  long w = next_tok(r, r->t[open].match), g = next_tok(r, w), o = next_tok(r, g);
  if (!is_word(r, w, "within") || !is_word(r, g, "group") || !is_punct(r, o, "(")) return 0;
  long ord = next_tok(r, o), by = next_tok(r, ord), close = r->t[o].match;
  if (!is_word(r, ord, "order") || !is_word(r, by, "by")) return 0;
  long end = prev_tok(r, close);
  int desc = 0;
  if (is_word(r, end, "first") || is_word(r, end, "last")) end = prev_tok(r, prev_tok(r, end));
  if (is_word(r, end, "desc") || is_word(r, end, "asc")) {
    desc = is_word(r, end, "desc");
    end = prev_tok(r, end);
  }
  if (weighted) { /* kept under its name, for the guard to refuse with guidance */
    BF_RETURN_NOT_OK(bf__sql_append(&r->out, "approx_percentile_cont_with_weight("));
    BF_RETURN_NOT_OK(emit_trim(r, next_tok(r, by), end + 1));
    BF_RETURN_NOT_OK(bf__sql_append(&r->out, ", "));
    BF_RETURN_NOT_OK(emit_trim(r, starts[0], ends[0]));
    BF_RETURN_NOT_OK(bf__sql_append(&r->out, ", "));
    BF_RETURN_NOT_OK(emit_trim(r, starts[1], ends[1]));
  } else {
    BF_RETURN_NOT_OK(bf__sql_append(&r->out, "approx_quantile(CAST("));
    BF_RETURN_NOT_OK(emit_trim(r, next_tok(r, by), end + 1));
    BF_RETURN_NOT_OK(bf__sql_append(&r->out, desc ? " AS DOUBLE), 1 - (" : " AS DOUBLE), ("));
    BF_RETURN_NOT_OK(emit_trim(r, starts[0], ends[0]));
    BF_RETURN_NOT_OK(bf__sql_append(&r->out, ")"));
  }
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, ")"));
  *resume = close + 1;
  return 1;
}

/* first_value / last_value / nth_value without OVER are DataFusion aggregates:
 * first(x ORDER BY y), last(...), list(x ORDER BY y)[n]. */
static int rewrite_value_aggregate(rw_t *r, long name, long open, long *resume) {
  long close = r->t[open].match, after = next_tok(r, close);
  if (is_word(r, after, "over") || is_word(r, after, "ignore") || is_word(r, after, "respect")) return 0;
  if (!word_is(r->t[name].s, r->t[name].n, "nth_value")) {
    BF_RETURN_NOT_OK(bf__sql_append(&r->out, word_is(r->t[name].s, r->t[name].n, "first_value") ? "first" : "last"));
    *resume = name + 1;
    return 1;
  }
  long starts[2], ends[2];
  if (split_args(r, open, starts, ends, 2) != 2) return 0;
  long order = starts[1];
  while (order < ends[1] && !is_word(r, order, "order")) order++;
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, "(list("));
  BF_RETURN_NOT_OK(emit_trim(r, starts[0], ends[0]));
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, " "));
  BF_RETURN_NOT_OK(emit_trim(r, order, ends[1]));
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, ")["));
  BF_RETURN_NOT_OK(emit_trim(r, starts[1], order));
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, "])"));
  *resume = close + 1;
  return 1;
}

/* DataFusion aggregates under DuckDB's names, rewritten in the text rather than
 * left to their macros so that FILTER (WHERE ...) and DISTINCT still apply:
 * approx_distinct -> approx_count_distinct, covar -> covar_samp, var / var_sample ->
 * var_samp, var_population -> var_pop; approx_median(x) and
 * approx_percentile_cont(x, p [, c]) -> approx_quantile(CAST(x AS DOUBLE), p) (DataFusion
 * returns Float64); percentile_cont(x, p) -> quantile_cont(x, p). */
static int rewrite_aggregate(rw_t *r, long name, long open, long *resume) {
  static const char *const renames[][2] = {
      {"approx_distinct", "approx_count_distinct"}, {"covar", "covar_samp"}, {"var", "var_samp"},
      {"var_sample", "var_samp"}, {"var_population", "var_pop"},
      {"make_array", "list_value"}, {"make_list", "list_value"}}; /* any number of arguments */
  const tok_t *t = &r->t[name];
  for (size_t k = 0; k < sizeof renames / sizeof *renames; k++)
    if (word_is(t->s, t->n, renames[k][0])) {
      BF_RETURN_NOT_OK(bf__sql_append(&r->out, renames[k][1]));
      *resume = name + 1;
      return 1;
    }
  long starts[3], ends[3];
  int n = split_args(r, open, starts, ends, 3);
  long after = next_tok(r, r->t[open].match);
  if (is_word(r, after, "within")) return 0;
  if (word_is(t->s, t->n, "percentile_cont")) {
    if (n != 2) return 0;
    BF_RETURN_NOT_OK(bf__sql_append(&r->out, "quantile_cont"));
    *resume = name + 1;
    return 1;
  }
  int median = word_is(t->s, t->n, "approx_median");
  if (median ? n != 1 : n < 2) return 0;
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, "approx_quantile(CAST("));
  BF_RETURN_NOT_OK(emit_trim(r, starts[0], ends[0]));
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, " AS DOUBLE), "));
  if (median)
    BF_RETURN_NOT_OK(bf__sql_append(&r->out, "0.5"));
  else
    BF_RETURN_NOT_OK(emit_trim(r, starts[1], ends[1]));
  BF_RETURN_NOT_OK(bf__sql_append(&r->out, ")"));
  *resume = r->t[open].match + 1;
  return 1;
}

static int emit(rw_t *r, long from, long to) {
  if (r->depth >= REWRITE_MAX_DEPTH) { /* copy as written */
    for (long i = from; i < to; i++) BF_RETURN_NOT_OK(bf_buffer_append(&r->out, r->t[i].s, r->t[i].n));
    return BF_OK;
  }
  r->depth++;
  int status = BF_OK;
  for (long i = from; i < to && status == BF_OK;) {
    tok_t *t = &r->t[i];
    if (t->kind == T_WORD && is_trigger(t->s, t->n)) {
      long open = next_tok(r, i), prev = prev_tok(r, i), resume = i + 1;
      int done = 0;
      int call = is_punct(r, open, "(") && r->t[open].match > 0 && !is_punct(r, prev, ".");
      if (word_is(t->s, t->n, "at")) {
        long time = next_tok(r, i);
        if (!is_word(r, time, "time") && !call) {
          BF_RETURN_NOT_OK(bf__sql_append(&r->out, "\"at\""));
          done = 1;
        }
      } else if (call && word_is(t->s, t->n, "struct")) {
        /* STRUCT(a INT) after AS or :: is a type, not a call */
        if (!is_word(r, prev, "as") && !is_punct(r, prev, "::"))
          done = rewrite_struct(r, i, open, 0, &resume);
      } else if (call && word_is(t->s, t->n, "named_struct")) {
        done = rewrite_struct(r, i, open, 1, &resume);
      } else if (call && (word_is(t->s, t->n, "arrow_cast") || word_is(t->s, t->n, "arrow_try_cast"))) {
        done = rewrite_arrow_cast(r, i, open, &resume);
      } else if (call && (word_is(t->s, t->n, "first_value") || word_is(t->s, t->n, "last_value") ||
                          word_is(t->s, t->n, "nth_value"))) {
        done = rewrite_value_aggregate(r, i, open, &resume);
      } else if (call && (word_is(t->s, t->n, "approx_percentile_cont") ||
                          word_is(t->s, t->n, "approx_percentile_cont_with_weight"))) {
        done = rewrite_within_group(r, i, open, &resume);
        if (done == 0 && word_is(t->s, t->n, "approx_percentile_cont"))
          done = rewrite_aggregate(r, i, open, &resume);
      } else if (call) {
        done = rewrite_aggregate(r, i, open, &resume);
      }
      if (done < 0) {
        status = done;
        break;
      }
      if (done) {
        i = resume;
        continue;
      }
    }
    status = bf_buffer_append(&r->out, t->s, t->n);
    i++;
  }
  r->depth--;
  return status;
}

int bf__engine_compat_rewrite(const char *sql, char **out, bf_error_t *err) {
  *out = NULL;
  long count = 0;
  int triggered = 0, kind;
  for (const char *p = sql; *p; count++) {
    size_t n = scan(p, &kind);
    if (kind == T_WORD && is_trigger(p, n)) triggered = 1;
    p += n;
  }
  if (!triggered) return BF_OK;
  rw_t r = {.t = malloc((size_t)(count ? count : 1) * sizeof(tok_t)), .n = count};
  long *stack = malloc((size_t)(count ? count : 1) * sizeof(long));
  if (r.t == NULL || stack == NULL) {
    free(r.t);
    free(stack);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  long depth = 0, i = 0;
  for (const char *p = sql; *p; i++) {
    size_t n = scan(p, &kind);
    r.t[i] = (tok_t){.s = p, .n = n, .kind = kind, .match = -1};
    if (kind == T_PUNCT && *p == '(') stack[depth++] = i;
    if (kind == T_PUNCT && *p == ')' && depth > 0) r.t[stack[--depth]].match = i;
    p += n;
  }
  free(stack);
  bf_buffer_init(&r.out);
  int status = emit(&r, 0, r.n);
  if (status == BF_OK) status = bf_buffer_append(&r.out, "", 1);
  free(r.t);
  if (status != BF_OK) {
    bf_buffer_reset(&r.out);
    return bf_error_set(err, BF_ENOMEM, "out of memory");
  }
  *out = (char *)r.out.data; /* the buffer's allocation becomes the caller's */
  return BF_OK;
}
