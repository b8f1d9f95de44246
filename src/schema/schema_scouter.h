/* The schema fingerprint as the published scouter-ml 0.25.0 client computes it
 * (its TableConfig.compute_fingerprint), for the scouter.grpc.v1 endpoint of
 * bifrost-server. It differs from our documented rule (schema_format.c) in the
 * type names and in nullability, so it is computed from the model's JSON Schema
 * text, not from a bf_schema_t:
 *   - a field is nullable when it is not in its object's "required" list (so a
 *     field with a default is nullable) or is an anyOf with a null variant;
 *   - types: Int64, Float64, Boolean, Utf8View, Date32, Timestamp(µs, "UTC"),
 *     Dictionary(Int16, Utf8) (any "enum"), Null;
 *     a list is List(item:<TYPE>:<nullable>) with its item always nullable, a
 *     struct is Struct(<entries of its fields, sorted, joined by ",">);
 *   - an entry is "<name>:<TYPE>:<true|false>"; the entries of the user fields
 *     and of the three system columns are sorted bytewise and joined by "|";
 *   - the fingerprint is the first 32 hex digits of the SHA-256 of that text. */
#ifndef BIFROST_SCHEMA_SCOUTER_H
#define BIFROST_SCHEMA_SCOUTER_H

#include <stddef.h>

#include "bifrost/error.h"

/* Fingerprint of a Pydantic model_json_schema() document under the 0.25.0 rule:
 * 32 lowercase hex chars + NUL. A document the rule cannot render (no
 * "properties", a free-form dict, anyOf with several non-null variants, an
 * unknown type, nesting deeper than 32) is BF_EINVAL naming the field. */
int bf_schema_scouter_fingerprint(const char *json, size_t len, char out[33], bf_error_t *err);

/* The canonical text hashed by bf_schema_scouter_fingerprint (malloc'd), for
 * tests and error messages. */
int bf_schema_scouter_canonical(const char *json, size_t len, char **out, bf_error_t *err);

#endif
