/* QueryRequest parameters (protobuf) -> bf_query_param_t for the engine. Values
 * borrow from the unpacked request, which outlives the query; a list parameter's
 * items live in one array per list, freed with the parameters. */
#include <stdlib.h>
#include <string.h>

#include "server/service_internal.h"

static int scalar_from_pb(const Bifrost__V1__QueryParam *pb, size_t index, bf_query_param_t *p,
                          bf_error_t *err) {
  switch (pb->value_case) {
    case BIFROST__V1__QUERY_PARAM__VALUE_NULL_VALUE:
      p->type = BF_PARAM_NULL;
      return BF_OK;
    case BIFROST__V1__QUERY_PARAM__VALUE_INT_VALUE:
      p->type = BF_PARAM_INT64;
      p->value.i64 = pb->int_value;
      return BF_OK;
    case BIFROST__V1__QUERY_PARAM__VALUE_DOUBLE_VALUE:
      p->type = BF_PARAM_DOUBLE;
      p->value.f64 = pb->double_value;
      return BF_OK;
    case BIFROST__V1__QUERY_PARAM__VALUE_STRING_VALUE:
      p->type = BF_PARAM_STRING;
      p->str = pb->string_value;
      p->str_len = strlen(pb->string_value);
      return BF_OK;
    case BIFROST__V1__QUERY_PARAM__VALUE_DECIMAL_VALUE:
      p->type = BF_PARAM_DECIMAL;
      p->str = pb->decimal_value;
      p->str_len = strlen(pb->decimal_value);
      return BF_OK;
    case BIFROST__V1__QUERY_PARAM__VALUE_BYTES_VALUE:
      p->type = BF_PARAM_BLOB;
      p->str = (const char *)pb->bytes_value.data;
      p->str_len = pb->bytes_value.len;
      return BF_OK;
    case BIFROST__V1__QUERY_PARAM__VALUE_BOOL_VALUE:
      p->type = BF_PARAM_BOOL;
      p->value.boolean = pb->bool_value;
      return BF_OK;
    case BIFROST__V1__QUERY_PARAM__VALUE_DATE_VALUE:
      p->type = BF_PARAM_DATE;
      p->value.days = pb->date_value;
      return BF_OK;
    case BIFROST__V1__QUERY_PARAM__VALUE_TIMESTAMP_VALUE:
      p->type = BF_PARAM_TIMESTAMP;
      p->value.i64 = pb->timestamp_value;
      return BF_OK;
    case BIFROST__V1__QUERY_PARAM__VALUE_LIST_VALUE:
      return bf_error_set(err, BF_EINVAL,
                          "query parameter %zu: a list inside a list is not supported", index);
    default:
      return bf_error_set(err, BF_EINVAL, "query parameter %zu has no value", index);
  }
}

void bf__service_params_free(bf_query_param_t *params, size_t n) {
  for (size_t i = 0; params && i < n; i++)
    if (params[i].type == BF_PARAM_LIST) free((void *)params[i].items);
  free(params);
}

int bf__service_params_from_pb(const Bifrost__V1__QueryRequest *req, bf_query_param_t **out,
                               bf_error_t *err) {
  bf_query_param_t *params = calloc(req->n_params ? req->n_params : 1, sizeof *params);
  if (params == NULL) return bf_error_set(err, BF_ENOMEM, "out of memory");
  int status = BF_OK;
  for (size_t i = 0; i < req->n_params && status == BF_OK; i++) {
    const Bifrost__V1__QueryParam *pb = req->params[i];
    if (pb->value_case != BIFROST__V1__QUERY_PARAM__VALUE_LIST_VALUE) {
      status = scalar_from_pb(pb, i + 1, &params[i], err);
      continue;
    }
    const Bifrost__V1__QueryParamList *list = pb->list_value;
    size_t n = list ? list->n_items : 0;
    if (n > BF_PARAM_LIST_MAX_ITEMS) {
      status = bf_error_set(err, BF_EINVAL, "query parameter %zu: a list of %zu values is over the "
                            "limit of %d", i + 1, n, BF_PARAM_LIST_MAX_ITEMS);
      break;
    }
    bf_query_param_t *items = calloc(n ? n : 1, sizeof *items);
    if (items == NULL) {
      status = bf_error_set(err, BF_ENOMEM, "out of memory");
      break;
    }
    params[i].type = BF_PARAM_LIST;
    params[i].items = items;
    params[i].n_items = n;
    for (size_t k = 0; k < n && status == BF_OK; k++)
      status = scalar_from_pb(list->items[k], i + 1, &items[k], err);
  }
  if (status != BF_OK) {
    bf__service_params_free(params, req->n_params);
    return status;
  }
  *out = params;
  return BF_OK;
}
