/* S3 error responses: the <Error><Code/><Message/></Error> body parsed with
 * expat, and the mapping of a final non-2xx HTTP status to a Bifrost status with
 * a message that names the location, the status and the S3 code (never the
 * credentials). */
#include <expat.h>
#include <stdio.h>
#include <string.h>

#include "storage/storage_s3_internal.h"

typedef struct {
  int depth;
  bool root_is_error;
  char *target; /* the buffer the current element's text goes to, or NULL */
  size_t target_cap;
  char *code, *message;
  size_t code_cap, message_cap;
} error_doc_t;

static void append_text(char *dst, size_t cap, const char *s, int len) {
  size_t have = strlen(dst);
  if (have + 1 >= cap || len <= 0) return;
  size_t n = (size_t)len < cap - 1 - have ? (size_t)len : cap - 1 - have;
  memcpy(dst + have, s, n);
  dst[have + n] = '\0';
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs) {
  (void)attrs;
  error_doc_t *doc = ud;
  doc->depth++;
  doc->target = NULL;
  if (doc->depth == 1) {
    doc->root_is_error = strcmp(name, "Error") == 0;
  } else if (doc->depth == 2 && doc->root_is_error) {
    if (strcmp(name, "Code") == 0) {
      doc->target = doc->code;
      doc->target_cap = doc->code_cap;
    } else if (strcmp(name, "Message") == 0) {
      doc->target = doc->message;
      doc->target_cap = doc->message_cap;
    }
  }
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
  (void)name;
  error_doc_t *doc = ud;
  doc->depth--;
  doc->target = NULL;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
  error_doc_t *doc = ud;
  if (doc->target) append_text(doc->target, doc->target_cap, s, len);
}

bool bf__s3_parse_error(const char *body, size_t len, char *code, size_t code_cap, char *message,
                        size_t message_cap) {
  code[0] = message[0] = '\0';
  if (body == NULL || len == 0 || len > (1u << 20)) return false;
  XML_Parser p = XML_ParserCreate("UTF-8");
  if (p == NULL) return false;
  error_doc_t doc = {.code = code, .message = message, .code_cap = code_cap,
                     .message_cap = message_cap};
  XML_SetUserData(p, &doc);
  XML_SetElementHandler(p, on_start, on_end);
  XML_SetCharacterDataHandler(p, on_text);
  bool ok = XML_Parse(p, body, (int)len, XML_TRUE) == XML_STATUS_OK;
  XML_ParserFree(p);
  if (!ok || !doc.root_is_error) {
    code[0] = message[0] = '\0';
    return false;
  }
  return true;
}

static const char *op_verb(bf_s3_op_t op) {
  switch (op) {
    case BF_S3_OP_GET: return "read";
    case BF_S3_OP_PUT: return "write";
    case BF_S3_OP_HEAD: return "stat";
    case BF_S3_OP_DELETE: return "delete";
    case BF_S3_OP_LIST: return "list";
    case BF_S3_OP_COPY: return "copy";
  }
  return "access";
}

int bf__s3_status_error(const bf_s3_request_t *req, const bf_s3_response_t *resp, bf_error_t *err) {
  const char *code = resp->code[0] ? resp->code : "no S3 error code";
  const char *sep = resp->message[0] ? ": " : "";
  if (resp->status == 404)
    return bf_error_set(err, BF_ENOTFOUND, "%s: not found (HTTP 404, %s)", req->location, code);
  if (resp->status == 403)
    return bf_error_set(err, BF_EPERM, "%s: S3 refused the %s (HTTP 403, %s%s%s)", req->location,
                        op_verb(req->op), code, sep, resp->message);
  if (resp->status == 301 || resp->status == 307)
    return bf_error_set(err, BF_EIO,
                        "%s: S3 redirected the %s (HTTP %ld, %s): wrong AWS_REGION for the "
                        "bucket, or the endpoint",
                        req->location, op_verb(req->op), resp->status, code);
  return bf_error_set(err, BF_EIO, "%s: S3 %s failed (HTTP %ld, %s%s%s)", req->location,
                      op_verb(req->op), resp->status, code, sep, resp->message);
}
