/* The table schema model shared by client and server: Pydantic JSON Schema ->
 * bf_schema_t (typed field tree, system columns appended) -> Arrow schema, the
 * parse_schema type strings and the fingerprint (rule in docs/architecture.md). Client and server call
 * the same functions, so a fingerprint can never differ between them. */
#ifndef BIFROST_SCHEMA_H
#define BIFROST_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "bifrost/arrow.h"
#include "bifrost/error.h"

#define BF_SCHEMA_MAX_DEPTH 32
#define BF_NAMESPACE_MAX_BYTES 128

#define BF_SYSCOL_CREATED_AT "scouter_created_at"
#define BF_SYSCOL_PARTITION_DATE "scouter_partition_date"
#define BF_SYSCOL_BATCH_ID "scouter_batch_id"

typedef enum bf_type_id {
  BF_TYPE_UTF8VIEW,      /* str                 Arrow "vu"      */
  BF_TYPE_UTF8,          /* system batch id     Arrow "u"       */
  BF_TYPE_INT64,         /* int                 Arrow "l"       */
  BF_TYPE_FLOAT64,       /* float               Arrow "g"       */
  BF_TYPE_BOOL,          /* bool                Arrow "b"       */
  BF_TYPE_TIMESTAMP_US,  /* datetime (UTC)      Arrow "tsu:UTC" */
  BF_TYPE_DATE32,        /* date                Arrow "tdD"     */
  BF_TYPE_LIST,          /* List[T]             Arrow "+l", one child "item" */
  BF_TYPE_STRUCT,        /* nested BaseModel    Arrow "+s"      */
  BF_TYPE_DICTIONARY,    /* str Enum / Literal  Arrow "s" indices, "u" values */
  BF_TYPE_BINARY,        /* bytes               Arrow "vz" (BinaryView) */
  BF_TYPE_DECIMAL128,    /* Decimal(max_digits=p, decimal_places=s)  Arrow "d:p,s" */
  BF_TYPE_TIME_US,       /* time: microseconds since midnight, Arrow "l" (Delta has no time) */
  BF_TYPE_DURATION_US,   /* timedelta: microseconds, Arrow "l" (Delta has no duration) */
  BF_TYPE_MAP            /* Dict[str, T]        Arrow "+m", one child "entries" (a
                            non-null struct of "key" Utf8View and "value" T) */
} bf_type_id_t;

/* Decimal128 bounds: Arrow, Delta and DuckDB all stop at 38 digits. */
#define BF_DECIMAL_MAX_PRECISION 38

typedef struct bf_field {
  char *name;                   /* owned, UTF-8 */
  bf_type_id_t type;
  bool nullable;
  struct bf_field *children;    /* owned; LIST: exactly 1 ("item"), STRUCT: fields */
  size_t n_children;
  char **enum_values;           /* owned; DICTIONARY only */
  size_t n_enum_values;
  int precision;                /* DECIMAL128 only: total digits, 1..38 */
  int scale;                    /* DECIMAL128 only: digits after the point, 0..precision */
} bf_field_t;

typedef struct bf_schema {
  bf_field_t *fields;      /* owned; user fields in model order, then the 3 system columns */
  size_t n_fields;
  size_t n_user_fields;    /* fields[n_user_fields..n_fields) are system columns */
} bf_schema_t;

/* Parses a Pydantic v2 model_json_schema() document (UTF-8 JSON text). Errors are
 * BF_EINVAL with a message naming the offending field ("field 'x': ..."). On
 * failure *out is untouched. */
int bf_schema_from_json_schema(const char *json, size_t len, bf_schema_t *out, bf_error_t *err);
void bf_schema_reset(bf_schema_t *schema); /* frees; safe on a zeroed struct */
int bf_schema_copy(const bf_schema_t *src, bf_schema_t *out, bf_error_t *err);

/* Index of a top-level field by name, or -1. */
int bf_schema_find(const bf_schema_t *schema, const char *name);
/* True for str, int, bool, date, enum (types allowed as partition columns). */
bool bf_field_is_partitionable(const bf_field_t *field);

/* parse_schema type string ("Utf8View", "Timestamp(Microsecond,
 * Some(\"UTC\"))", "List(Int64)", "Struct(a: Int64, b: Utf8View)", ...) written
 * into a malloc'd string. */
int bf_field_type_string(const bf_field_t *field, char **out, bf_error_t *err);
/* JSON text {"name": {"arrow_type": "...", "nullable": bool}, ...} in field order,
 * system columns included; malloc'd. */
int bf_schema_parse_json(const bf_schema_t *schema, char **out, bf_error_t *err);

/* Fingerprint (docs/architecture.md): 32 lowercase hex chars + NUL. */
int bf_schema_fingerprint(const bf_schema_t *schema, char out[33], bf_error_t *err);

/* Arrow schema: a struct ("+s") whose children are the fields, system columns
 * included, with nullability flags. */
int bf_schema_to_arrow(const bf_schema_t *schema, struct ArrowSchema *out, bf_error_t *err);
/* The same with the logical types of the columns stored as Int64 microseconds
 * (time: Time64(us) "ttu", timedelta: Duration(us) "tDu"): what a reader casts a
 * query result to before handing values to the model. */
int bf_schema_to_arrow_logical(const bf_schema_t *schema, struct ArrowSchema *out, bf_error_t *err);

/* Validates a namespace part (catalog / schema_name / table): non-empty, at most
 * 128 bytes, matching [A-Za-z_][A-Za-z0-9_-]*. `what` names the part in the error
 * ("catalog 'a/b' is invalid: ..."). BF_EINVAL on failure. */
int bf_namespace_validate(const char *part, const char *what, bf_error_t *err);
/* Validates partition columns against the schema: each exists, is a user field,
 * is partitionable, and no duplicates. */
int bf_schema_validate_partitions(const bf_schema_t *schema, const char *const *columns,
                                  size_t n_columns, bf_error_t *err);

#endif /* BIFROST_SCHEMA_H */
