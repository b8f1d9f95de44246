/* Test harness for storage_s3_retry_test.c (header-only, static functions): a
 * scripted HTTP server on a loopback port, one connection per scripted reply
 * (answered, or held open without an answer to play a stalled peer), that
 * records every request's head and body for the test to inspect. */
#ifndef BIFROST_STORAGE_S3_TEST_FAKE_H
#define BIFROST_STORAGE_S3_TEST_FAKE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAKE_MAX 16
#define FAKE_STALL "<stall>"

typedef struct {
  int listen_fd;
  int port;
  char endpoint[64];
  int n_replies;
  char *replies[FAKE_MAX]; /* raw HTTP responses, or FAKE_STALL */
  int served;              /* connections accepted */
  char heads[FAKE_MAX][4096];
  char bodies[FAKE_MAX][512];
  size_t body_lens[FAKE_MAX];
  pthread_t thread;
  bool started;
} fake_t;

/* Adds a reply: status, extra header lines ("" or "Name: v\r\n..."), body. */
static void fake_reply(fake_t *f, int status, const char *headers, const char *body) {
  char *r = malloc(8192);
  snprintf(r, 8192, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s", status,
           strlen(body), headers, body);
  f->replies[f->n_replies++] = r;
}

static void fake_stall(fake_t *f) { f->replies[f->n_replies++] = strdup(FAKE_STALL); }

static void fake_error(fake_t *f, int status, const char *code, const char *message) {
  char body[1024];
  snprintf(body, sizeof body,
           "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>"
           "<RequestId>R1</RequestId></Error>",
           code, message);
  fake_reply(f, status, "Content-Type: application/xml\r\n", body);
}

static void fake_read_request(fake_t *f, int fd, int i) {
  char buf[8192];
  size_t len = 0;
  char *end = NULL;
  while (len < sizeof buf - 1 && end == NULL) {
    ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (n <= 0) return;
    len += (size_t)n;
    buf[len] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  if (end == NULL) return;
  size_t head_len = (size_t)(end - buf) + 4;
  snprintf(f->heads[i], sizeof f->heads[i], "%.*s", (int)head_len, buf);
  size_t want = 0;
  for (char *line = buf; line && line < end; line = strstr(line, "\r\n") ? strstr(line, "\r\n") + 2 : NULL)
    if (strncasecmp(line, "content-length:", 15) == 0) want = strtoul(line + 15, NULL, 10);
  size_t have = len - head_len;
  size_t keep = have < sizeof f->bodies[i] ? have : sizeof f->bodies[i];
  memcpy(f->bodies[i], buf + head_len, keep);
  while (have < want) {
    char chunk[4096];
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    size_t room = sizeof f->bodies[i] - keep;
    size_t add = (size_t)n < room ? (size_t)n : room;
    memcpy(f->bodies[i] + keep, chunk, add);
    keep += add;
    have += (size_t)n;
  }
  f->body_lens[i] = have;
}

static void *fake_main(void *arg) {
  fake_t *f = arg;
  for (int i = 0; i < f->n_replies; i++) {
    int fd = accept(f->listen_fd, NULL, NULL);
    if (fd < 0) break; /* shut down by fake_stop */
    f->served = i + 1;
    fake_read_request(f, fd, i);
    if (strcmp(f->replies[i], FAKE_STALL) == 0) {
      char sink[256];
      while (recv(fd, sink, sizeof sink, 0) > 0) { /* until the client gives up */
      }
    } else {
      send(fd, f->replies[i], strlen(f->replies[i]), MSG_NOSIGNAL);
    }
    close(fd);
  }
  return NULL;
}

static void fake_init(fake_t *f) {
  memset(f, 0, sizeof *f);
  f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(f->listen_fd, 16) != 0 || getsockname(f->listen_fd, (struct sockaddr *)&a, &len) != 0)
    abort();
  f->port = ntohs(a.sin_port);
  snprintf(f->endpoint, sizeof f->endpoint, "http://127.0.0.1:%d", f->port);
}

static void fake_start(fake_t *f) {
  if (pthread_create(&f->thread, NULL, fake_main, f) != 0) abort();
  f->started = true;
}

/* Stops accepting (also when replies are left) and frees the script. */
static void fake_stop(fake_t *f) {
  shutdown(f->listen_fd, SHUT_RDWR);
  if (f->started) pthread_join(f->thread, NULL);
  f->started = false;
  close(f->listen_fd);
  for (int i = 0; i < f->n_replies; i++) free(f->replies[i]);
  f->n_replies = 0;
}

#endif /* BIFROST_STORAGE_S3_TEST_FAKE_H */
