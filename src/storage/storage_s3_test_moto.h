/* Test harness for storage_s3_test.c (header-only, static functions): starts a
 * real moto S3 server on a free port with request signing enforced (moto checks
 * SigV4 once its first three unauthenticated IAM calls have made a user, its
 * access key and an allow-s3 policy), creates buckets, and stops the server. */
#ifndef BIFROST_STORAGE_S3_TEST_MOTO_H
#define BIFROST_STORAGE_S3_TEST_MOTO_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BF_SOURCE_DIR
#error "BF_SOURCE_DIR must name the repository root (set in CMakeLists.txt)"
#endif

typedef struct {
  pid_t pid;
  int port;
  char endpoint[64];
  char key_id[128];
  char secret[128];
  char log_path[128];
} moto_t;

/* A TCP port nothing listens on right now. */
static int moto_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static bool moto_port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

static size_t moto_collect(char *ptr, size_t size, size_t n, void *ud) {
  char *buf = ud; /* 8 KiB, NUL-terminated */
  size_t have = strlen(buf), add = size * n;
  if (have + add >= 8192) add = 8191 - have;
  memcpy(buf + have, ptr, add);
  buf[have + add] = '\0';
  return size * n;
}

/* One signed request outside the code under test; returns the HTTP status. */
static long moto_request(const char *method, const char *url, const char *service,
                         const char *user, const char *pass, const char *form, char *body8k) {
  CURL *h = curl_easy_init();
  if (h == NULL) return -1;
  char sigv4[64];
  snprintf(sigv4, sizeof sigv4, "aws:amz:us-east-1:%s", service);
  struct curl_slist *hdr = curl_slist_append(
      NULL, "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  body8k[0] = '\0';
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
  curl_easy_setopt(h, CURLOPT_USERNAME, user);
  curl_easy_setopt(h, CURLOPT_PASSWORD, pass);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, moto_collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, body8k);
  if (form) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  long status = -1;
  if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  return status;
}

/* The text of <tag>...</tag> in an IAM answer (test-side convenience). */
static bool moto_xml_field(const char *xml, const char *tag, char *out, size_t cap) {
  char open[64], close_tag[64];
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close_tag, sizeof close_tag, "</%s>", tag);
  const char *a = strstr(xml, open);
  const char *b = a ? strstr(a, close_tag) : NULL;
  if (b == NULL) return false;
  a += strlen(open);
  if ((size_t)(b - a) >= cap) return false;
  memcpy(out, a, (size_t)(b - a));
  out[b - a] = '\0';
  return true;
}

static void moto_stop(moto_t *m) {
  if (m->pid > 0) {
    kill(m->pid, SIGTERM);
    waitpid(m->pid, NULL, 0);
    m->pid = 0;
  }
  if (m->log_path[0]) unlink(m->log_path);
}

/* Starts moto and makes the signing user; false (with a message) on failure. */
static bool moto_start(moto_t *m) {
  *m = (moto_t){0};
  char path[1024];
  const char *bin = getenv("BF_MOTO_SERVER");
  if (bin == NULL || bin[0] == '\0') {
    snprintf(path, sizeof path, "%s/.venv/bin/moto_server", BF_SOURCE_DIR);
    bin = path;
  }
  if (access(bin, X_OK) != 0) {
    fprintf(stderr, "moto_server not found at %s (make setup installs it; or set BF_MOTO_SERVER)\n",
            bin);
    return false;
  }
  m->port = moto_free_port();
  if (m->port <= 0) return false;
  snprintf(m->endpoint, sizeof m->endpoint, "http://127.0.0.1:%d", m->port);
  snprintf(m->log_path, sizeof m->log_path, "/tmp/bf_moto_%d.log", (int)getpid());
  char port_arg[16];
  snprintf(port_arg, sizeof port_arg, "%d", m->port);
  m->pid = fork();
  if (m->pid < 0) return false;
  if (m->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* no stray server if the test crashes */
    int fd = open(m->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    setenv("INITIAL_NO_AUTH_ACTION_COUNT", "3", 1);
    execl(bin, bin, "-H", "127.0.0.1", "-p", port_arg, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 1200 && !moto_port_open(m->port); i++) { /* up to a minute */
    if (waitpid(m->pid, NULL, WNOHANG) == m->pid) {
      m->pid = 0;
      fprintf(stderr, "moto_server exited at start; see %s\n", m->log_path);
      return false;
    }
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
  char body[8192];
  long s1 = moto_request("POST", m->endpoint, "iam", "setup", "setup",
                         "Action=CreateUser&UserName=bifrost&Version=2010-05-08", body);
  long s2 = moto_request("POST", m->endpoint, "iam", "setup", "setup",
                         "Action=CreateAccessKey&UserName=bifrost&Version=2010-05-08", body);
  bool keys = moto_xml_field(body, "AccessKeyId", m->key_id, sizeof m->key_id) &&
              moto_xml_field(body, "SecretAccessKey", m->secret, sizeof m->secret);
  long s3 = moto_request(
      "POST", m->endpoint, "iam", "setup", "setup",
      "Action=PutUserPolicy&UserName=bifrost&PolicyName=s3&Version=2010-05-08&PolicyDocument="
      "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C"
      "%22Action%22%3A%22s3%3A%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D",
      body);
  if (s1 != 200 || s2 != 200 || s3 != 200 || !keys) {
    fprintf(stderr, "moto IAM setup failed (%ld %ld %ld): %s\n", s1, s2, s3, body);
    moto_stop(m);
    return false;
  }
  return true;
}

/* PUT /bucket, signed with the moto user's key. */
static bool moto_create_bucket(const moto_t *m, const char *bucket) {
  char url[256], body[8192];
  snprintf(url, sizeof url, "%s/%s", m->endpoint, bucket);
  long s = moto_request("PUT", url, "s3", m->key_id, m->secret, NULL, body);
  if (s != 200) fprintf(stderr, "create bucket %s: HTTP %ld %s\n", bucket, s, body);
  return s == 200;
}

#endif /* BIFROST_STORAGE_S3_TEST_MOTO_H */
