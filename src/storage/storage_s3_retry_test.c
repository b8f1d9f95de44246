/* Unit tests of the S3 client's request core and error handling against a
 * scripted HTTP server (storage_s3_test_fake.h): retried statuses and their
 * limit, a stalled peer, the exact requests sent (SigV4 scope, payload hash,
 * headers, encoded paths and sorted list queries), status mapping, malformed
 * listings, put-if-absent answers after a retry; and, without a server, the
 * configuration from the environment, URLs and error bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage_s3.h"
#include "storage/storage_s3_internal.h"
#include "storage_s3_test_fake.h"

static fake_t g_fake;

static bool starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int setup(void **state) {
  (void)state;
  fake_init(&g_fake);
  bf_s3_config_t cfg = {0};
  snprintf(cfg.endpoint, sizeof cfg.endpoint, "%s", g_fake.endpoint);
  snprintf(cfg.region, sizeof cfg.region, "eu-west-1");
  snprintf(cfg.key_id, sizeof cfg.key_id, "AKIDTEST");
  snprintf(cfg.secret, sizeof cfg.secret, "SECRET-never-sent");
  snprintf(cfg.token, sizeof cfg.token, "session-token-1");
  cfg.retry_base_ms = 1;
  cfg.retry_cap_ms = 4;
  cfg.max_attempts = 6;
  cfg.stall_timeout_s = 1;
  bf_error_t err = {0};
  return bf_s3_init(&cfg, &err) == BF_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  fake_stop(&g_fake);
  bf_s3_shutdown();
  return 0;
}

static void set_max_attempts(int n) {
  bf_s3_config_t cfg = *bf_s3_config();
  cfg.max_attempts = n;
  bf_error_t err = {0};
  assert_int_equal(bf_s3_init(&cfg, &err), BF_OK);
}

static void test_retried_statuses(void **state) {
  (void)state;
  fake_error(&g_fake, 503, "SlowDown", "Please reduce your request rate.");
  fake_error(&g_fake, 500, "InternalError", "We encountered an internal error.");
  fake_error(&g_fake, 429, "TooManyRequests", "");
  fake_reply(&g_fake, 502, "", "");
  fake_error(&g_fake, 400, "RequestTimeout", "Your socket connection was not read from.");
  fake_reply(&g_fake, 200, "Last-Modified: Wed, 02 Dec 2026 09:30:15 GMT\r\n", "hello");
  fake_start(&g_fake);
  bf_s3_counters_t before, after;
  bf_s3_counters(&before);
  char *out = NULL;
  size_t n = 0;
  bf_error_t err = {0};
  assert_int_equal(bf_s3_read("s3://bkt/k.json", &out, &n, &err), BF_OK);
  bf_s3_counters(&after);
  assert_int_equal(n, 5);
  assert_string_equal(out, "hello");
  free(out);
  assert_int_equal(g_fake.served, 6);
  assert_int_equal(after.get - before.get, 6);
  assert_int_equal(after.retries - before.retries, 5);
}

static void test_retries_run_out(void **state) {
  (void)state;
  set_max_attempts(3);
  for (int i = 0; i < 3; i++) fake_error(&g_fake, 503, "SlowDown", "Please reduce your request rate.");
  fake_start(&g_fake);
  bf_error_t err = {0};
  assert_int_equal(bf_s3_delete("s3://bkt/k", &err), BF_EUNAVAILABLE);
  assert_int_equal(g_fake.served, 3);
  assert_non_null(strstr(err.message, "s3://bkt/k"));
  assert_non_null(strstr(err.message, "after 3 attempts"));
  assert_non_null(strstr(err.message, "HTTP 503 SlowDown"));
}

static void test_stalled_peer(void **state) {
  (void)state;
  fake_stall(&g_fake); /* accepts, reads the request, never answers */
  fake_reply(&g_fake, 200, "", "late");
  fake_start(&g_fake);
  char *out = NULL;
  size_t n = 0;
  bf_error_t err = {0};
  assert_int_equal(bf_s3_read("s3://bkt/k", &out, &n, &err), BF_OK);
  assert_string_equal(out, "late");
  free(out);
  assert_int_equal(g_fake.served, 2);
}

static void test_not_retried(void **state) {
  (void)state;
  fake_error(&g_fake, 400, "InvalidArgument", "Bad &amp; wrong");
  fake_error(&g_fake, 403, "AccessDenied", "Access Denied");
  fake_error(&g_fake, 301, "PermanentRedirect", "Use the right endpoint.");
  fake_reply(&g_fake, 403, "", ""); /* a HEAD answer has no body */
  fake_start(&g_fake);
  bf_error_t err = {0};
  assert_int_equal(bf_s3_write("s3://bkt/a", "x", 1, false, &err), BF_EIO);
  assert_non_null(strstr(err.message, "HTTP 400, InvalidArgument: Bad & wrong"));
  assert_int_equal(bf_s3_write("s3://bkt/a", "x", 1, false, &err), BF_EPERM);
  assert_non_null(strstr(err.message, "AccessDenied: Access Denied"));
  assert_null(strstr(err.message, "SECRET"));
  assert_int_equal(bf_s3_delete("s3://bkt/a", &err), BF_EIO);
  assert_non_null(strstr(err.message, "AWS_REGION"));
  assert_int_equal(bf_s3_stat("s3://bkt/a", NULL, NULL, &err), BF_EPERM);
  assert_non_null(strstr(err.message, "HTTP 403"));
  assert_int_equal(g_fake.served, 4);
}

static void test_put_request_shape(void **state) {
  (void)state;
  fake_reply(&g_fake, 200, "", "");
  fake_reply(&g_fake, 200, "", "");
  fake_start(&g_fake);
  bf_error_t err = {0};
  assert_int_equal(bf_s3_write("s3://bkt/p=1/a b%c/ü.json", "hello", 5, true, &err), BF_OK);
  assert_int_equal(bf_s3_write("s3://bkt/empty", "", 0, false, &err), BF_OK);
  const char *h = g_fake.heads[0];
  assert_true(starts_with(h, "PUT /bkt/p%3D1/a%20b%25c/%C3%BC.json HTTP/1.1\r\n"));
  assert_non_null(strstr(h, "Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/"));
  assert_non_null(strstr(h, "/eu-west-1/s3/aws4_request"));
  assert_non_null(strstr(h, "if-none-match"));        /* signed */
  assert_non_null(strstr(h, "x-amz-security-token")); /* signed */
  assert_non_null(strstr(h, "If-None-Match: *\r\n"));
  assert_non_null(strstr(h, "x-amz-security-token: session-token-1\r\n"));
  assert_non_null(strstr(h, /* sha256("hello") */
                         "x-amz-content-sha256: "
                         "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\r\n"));
  assert_non_null(strstr(h, "Content-Length: 5\r\n"));
  assert_null(strstr(h, "SECRET"));
  assert_int_equal(g_fake.body_lens[0], 5);
  assert_memory_equal(g_fake.bodies[0], "hello", 5);
  h = g_fake.heads[1];
  assert_true(starts_with(h, "PUT /bkt/empty HTTP/1.1\r\n"));
  assert_non_null(strstr(h, "Content-Length: 0\r\n"));
  assert_null(strstr(h, "If-None-Match"));
  assert_non_null(strstr(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

static void test_copy_and_head_shape(void **state) {
  (void)state;
  fake_reply(&g_fake, 200, "", "<Error><Code>InternalError</Code><Message>x</Message></Error>");
  fake_reply(&g_fake, 200, "", "<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>");
  fake_reply(&g_fake, 200, "Last-Modified: Wed, 02 Dec 2026 09:30:15 GMT\r\n", "0123456789");
  fake_start(&g_fake);
  bf_error_t err = {0};
  /* a copy's 200 with an <Error> body is retried */
  assert_int_equal(bf_s3_copy("s3://src-bkt/a b/c=d", "s3://bkt/dst", &err), BF_OK);
  assert_int_equal(g_fake.served, 2);
  const char *h = g_fake.heads[1];
  assert_true(starts_with(h, "PUT /bkt/dst HTTP/1.1\r\n"));
  assert_non_null(strstr(h, "x-amz-copy-source: /src-bkt/a%20b/c%3Dd\r\n"));
  assert_non_null(strstr(h, "Content-Length: 0\r\n"));
  /* HEAD: size from Content-Length, time from Last-Modified */
  int64_t size = 0, mtime = 0;
  assert_int_equal(bf_s3_stat("s3://bkt/dst", &size, &mtime, &err), BF_OK);
  assert_true(starts_with(g_fake.heads[2], "HEAD /bkt/dst HTTP/1.1\r\n"));
  assert_int_equal(size, 10);
  assert_int_equal(mtime, 1796203815); /* 2026-12-02T09:30:15Z */
}

static void test_head_without_last_modified(void **state) {
  (void)state;
  fake_reply(&g_fake, 200, "", "0123");
  fake_reply(&g_fake, 200, "", "0123");
  fake_start(&g_fake);
  bf_error_t err = {0};
  int64_t size = 0, mtime = 0;
  assert_int_equal(bf_s3_stat("s3://bkt/x", &size, NULL, &err), BF_OK);
  assert_int_equal(size, 4);
  assert_int_equal(bf_s3_stat("s3://bkt/x", &size, &mtime, &err), BF_EIO);
  assert_non_null(strstr(err.message, "Last-Modified"));
}

static void test_list_requests(void **state) {
  (void)state;
  fake_reply(&g_fake, 200, "",
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
             "<Name>bkt</Name><Prefix>t/p=1/</Prefix><IsTruncated>true</IsTruncated>"
             "<NextContinuationToken>tok+/=</NextContinuationToken>"
             "<Contents><Key>t/p=1/b &amp; c.json</Key><LastModified>2026-12-02T09:30:15.000Z"
             "</LastModified><Size>12</Size></Contents>"
             "<CommonPrefixes><Prefix>t/p=1/sub/</Prefix></CommonPrefixes></ListBucketResult>");
  fake_reply(&g_fake, 200, "",
             "<ListBucketResult><IsTruncated>false</IsTruncated>"
             "<Contents><Key>t/p=1/a.json</Key><LastModified>2026-12-02T09:30:16Z</LastModified>"
             "<Size>3</Size></Contents></ListBucketResult>");
  fake_start(&g_fake);
  bf_error_t err = {0};
  bf_storage_list_t l;
  assert_int_equal(bf_s3_list("s3://bkt/t/p=1", "a", &l, &err), BF_OK);
  assert_true(starts_with(g_fake.heads[0], "GET /bkt?delimiter=%2F&list-type=2&prefix=t%2Fp%3D1%2F"
                      "&start-after=t%2Fp%3D1%2Fa HTTP/1.1\r\n"));
  assert_true(starts_with(g_fake.heads[1], "GET /bkt?continuation-token=tok%2B%2F%3D&delimiter=%2F&"));
  assert_int_equal(l.len, 3); /* both pages, sorted */
  assert_string_equal(l.items[0].name, "a.json");
  assert_int_equal(l.items[0].mtime_s, 1796203816);
  assert_string_equal(l.items[1].name, "b & c.json");
  assert_int_equal(l.items[1].size, 12);
  assert_int_equal(l.items[1].mtime_s, 1796203815);
  assert_false(l.items[1].is_dir);
  assert_string_equal(l.items[2].name, "sub");
  assert_true(l.items[2].is_dir);
  assert_int_equal(l.items[2].size, 0);
  for (size_t i = 0; i < l.len; i++) free(l.items[i].name);
  free(l.items);
}

static void test_list_sorts_and_filters(void **state) {
  (void)state;
  fake_reply(&g_fake, 200, "",
             "<ListBucketResult><IsTruncated>false</IsTruncated>"
             "<Contents><Key>d/</Key><LastModified>2026-12-02T09:30:16Z</LastModified><Size>0</Size></Contents>"
             "<Contents><Key>d/z</Key><LastModified>2026-12-02T09:30:16Z</LastModified><Size>1</Size></Contents>"
             "<Contents><Key>d/a-b</Key><LastModified>2026-12-02T09:30:16Z</LastModified><Size>1</Size></Contents>"
             "<CommonPrefixes><Prefix>d/a/</Prefix></CommonPrefixes>"
             "<CommonPrefixes><Prefix>d/m/</Prefix></CommonPrefixes></ListBucketResult>");
  fake_start(&g_fake);
  bf_error_t err = {0};
  bf_storage_list_t l;
  assert_int_equal(bf_s3_list("s3://bkt/d/", "a", &l, &err), BF_OK);
  assert_int_equal(l.len, 3); /* the "d/" marker and the name "a" are dropped */
  assert_string_equal(l.items[0].name, "a-b");
  assert_string_equal(l.items[1].name, "m");
  assert_string_equal(l.items[2].name, "z");
  for (size_t i = 0; i < l.len; i++) free(l.items[i].name);
  free(l.items);
}

static void test_bad_listings(void **state) {
  (void)state;
  fake_reply(&g_fake, 200, "", "<ListBucketResult><IsTruncated>false</IsTruncated><Contents>");
  fake_reply(&g_fake, 200, "", "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>");
  fake_reply(&g_fake, 200, "",
             "<ListBucketResult><Contents><Key>x/a</Key></Contents></ListBucketResult>");
  fake_reply(&g_fake, 200, "", "<Other/>");
  fake_reply(&g_fake, 200, "",
             "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t"
             "</NextContinuationToken><Contents><Key>x/a</Key><LastModified>2026-12-02T09:30:16Z"
             "</LastModified><Size>1</Size></Contents></ListBucketResult>");
  fake_reply(&g_fake, 200, "", "not xml");
  fake_start(&g_fake);
  const char *want[] = {"not valid XML", "without a continuation token", "malformed Contents",
                        "without <ListBucketResult>", "not valid XML"};
  for (int i = 0; i < 5; i++) {
    bf_error_t err = {0};
    bf_storage_list_t l = {0};
    assert_int_equal(bf_s3_list("s3://bkt/x", NULL, &l, &err), BF_EIO);
    assert_non_null(strstr(err.message, want[i]));
    assert_non_null(strstr(err.message, "s3://bkt/x"));
    assert_int_equal(l.len, 0); /* the first page's entry of the last case is freed */
    assert_null(l.items);
  }
}

static void test_put_if_absent_answers(void **state) {
  (void)state;
  fake_error(&g_fake, 409, "ConditionalRequestConflict", "A conflicting operation occurred.");
  fake_error(&g_fake, 500, "InternalError", "");            /* maybe written */
  fake_error(&g_fake, 412, "PreconditionFailed", "");       /* retry: it exists */
  fake_reply(&g_fake, 200, "", "ours");                     /* read back: our bytes */
  fake_error(&g_fake, 503, "SlowDown", "");
  fake_error(&g_fake, 412, "PreconditionFailed", "");
  fake_reply(&g_fake, 200, "", "theirs");                   /* someone else's bytes */
  fake_error(&g_fake, 412, "PreconditionFailed", "");       /* first attempt: no read */
  fake_start(&g_fake);
  bf_error_t err = {0};
  assert_int_equal(bf_s3_write("s3://bkt/log/1.json", "ours", 4, true, &err), BF_EEXIST);
  assert_non_null(strstr(err.message, "ConditionalRequestConflict"));
  assert_int_equal(bf_s3_write("s3://bkt/log/1.json", "ours", 4, true, &err), BF_OK);
  assert_true(starts_with(g_fake.heads[3], "GET /bkt/log/1.json "));
  assert_int_equal(bf_s3_write("s3://bkt/log/1.json", "ours", 4, true, &err), BF_EEXIST);
  assert_non_null(strstr(err.message, "other contents"));
  assert_int_equal(bf_s3_write("s3://bkt/log/1.json", "ours", 4, true, &err), BF_EEXIST);
  assert_int_equal(g_fake.served, 8);
}

/* ---- no server ---- */

static void clear_env(void) {
  const char *vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
                        "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
}

static void test_config_from_env(void **state) {
  (void)state;
  bf_s3_config_t c;
  bf_error_t err = {0};
  clear_env();
  assert_int_equal(bf_s3_config_from_env(&c, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "AWS_ACCESS_KEY_ID"));
  setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
  assert_int_equal(bf_s3_config_from_env(&c, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "AWS_SECRET_ACCESS_KEY"));
  setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t", 1);
  assert_int_equal(bf_s3_config_from_env(&c, &err), BF_OK);
  assert_string_equal(c.key_id, "AKID");
  assert_string_equal(c.secret, "s3cr3t");
  assert_string_equal(c.token, "");
  assert_string_equal(c.region, "us-east-1");
  assert_string_equal(c.endpoint, "");
  assert_false(c.path_style);
  setenv("AWS_DEFAULT_REGION", "eu-central-1", 1);
  setenv("AWS_SESSION_TOKEN", "tok", 1);
  setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/", 1);
  assert_int_equal(bf_s3_config_from_env(&c, &err), BF_OK);
  assert_string_equal(c.region, "eu-central-1");
  assert_string_equal(c.token, "tok");
  assert_string_equal(c.endpoint, "http://127.0.0.1:9000");
  assert_true(c.path_style);
  setenv("AWS_REGION", "ap-south-1", 1);
  setenv("AWS_ENDPOINT_URL_S3", "https://minio.example:9443", 1);
  assert_int_equal(bf_s3_config_from_env(&c, &err), BF_OK);
  assert_string_equal(c.region, "ap-south-1");
  assert_string_equal(c.endpoint, "https://minio.example:9443");
  setenv("AWS_ENDPOINT_URL_S3", "minio:9000", 1);
  assert_int_equal(bf_s3_config_from_env(&c, &err), BF_EINVAL);
  assert_non_null(strstr(err.message, "AWS_ENDPOINT_URL_S3"));
  setenv("AWS_ENDPOINT_URL_S3", "http://minio:9000", 1);
  setenv("AWS_REGION", "eu west", 1);
  assert_int_equal(bf_s3_config_from_env(&c, &err), BF_EINVAL);
  assert_null(strstr(err.message, "s3cr3t"));
  clear_env();
}

static void test_urls(void **state) {
  (void)state;
  bf_s3_config_t c = {0};
  snprintf(c.region, sizeof c.region, "eu-west-1");
  bf_s3_str_t url;
  bf_error_t err = {0};
  assert_int_equal(bf__s3_url(&c, "my-bkt", "a b/c=1/%/é~._-", &url, &err), BF_OK);
  assert_string_equal(url.data, "https://my-bkt.s3.eu-west-1.amazonaws.com/a%20b/c%3D1/%25/%C3%A9~._-");
  bf__s3_str_free(&url);
  assert_int_equal(bf__s3_url(&c, "my-bkt", NULL, &url, &err), BF_OK);
  assert_string_equal(url.data, "https://my-bkt.s3.eu-west-1.amazonaws.com/");
  bf__s3_str_free(&url);
  snprintf(c.endpoint, sizeof c.endpoint, "http://127.0.0.1:9000");
  c.path_style = true;
  assert_int_equal(bf__s3_url(&c, "my-bkt", "k+y", &url, &err), BF_OK);
  assert_string_equal(url.data, "http://127.0.0.1:9000/my-bkt/k%2By");
  bf__s3_str_free(&url);
  assert_int_equal(bf__s3_url(&c, "my-bkt", "", &url, &err), BF_OK);
  assert_string_equal(url.data, "http://127.0.0.1:9000/my-bkt");
  bf__s3_str_free(&url);
  bf_s3_location_t loc;
  char long_key[1100];
  memset(long_key, 'k', sizeof long_key);
  memcpy(long_key, "s3://bkt/", 9);
  long_key[sizeof long_key - 1] = '\0';
  assert_int_equal(bf__s3_location_parse(long_key, true, &loc, &err), BF_EINVAL);
  assert_int_equal(bf__s3_location_parse("s3://bkt", false, &loc, &err), BF_OK);
  assert_string_equal(loc.bucket, "bkt");
  assert_string_equal(loc.key, "");
  bf__s3_location_free(&loc);
}

static void test_error_bodies(void **state) {
  (void)state;
  char code[16], msg[32];
  const char *doc = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"
                    "<Message>The key &lt;k&gt; does not exist, and this is long</Message></Error>";
  assert_true(bf__s3_parse_error(doc, strlen(doc), code, sizeof code, msg, sizeof msg));
  assert_string_equal(code, "NoSuchKey");
  assert_string_equal(msg, "The key <k> does not exist, and"); /* truncated to fit */
  const char *other = "<ListBucketResult><Code>x</Code></ListBucketResult>";
  assert_false(bf__s3_parse_error(other, strlen(other), code, sizeof code, msg, sizeof msg));
  assert_string_equal(code, "");
  assert_false(bf__s3_parse_error("<Error><Code>x", 14, code, sizeof code, msg, sizeof msg));
  assert_string_equal(code, "");
  assert_false(bf__s3_parse_error(NULL, 0, code, sizeof code, msg, sizeof msg));
}

int main(void) {
  /* Requests go to 127.0.0.1 directly, whatever proxy the environment names. */
  const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                           "ALL_PROXY"};
  for (size_t i = 0; i < sizeof proxies / sizeof *proxies; i++) unsetenv(proxies[i]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_retried_statuses, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retries_run_out, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stalled_peer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_retried, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_request_shape, setup, teardown),
      cmocka_unit_test_setup_teardown(test_copy_and_head_shape, setup, teardown),
      cmocka_unit_test_setup_teardown(test_head_without_last_modified, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_sorts_and_filters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_listings, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_if_absent_answers, setup, teardown),
      cmocka_unit_test(test_config_from_env),
      cmocka_unit_test(test_urls),
      cmocka_unit_test(test_error_bodies),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
