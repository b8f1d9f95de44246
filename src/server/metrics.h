/* Prometheus endpoint: GET /metrics in the text exposition format (version 0.0.4),
 * served by libmicrohttpd on its own thread from the counters in counters.h and
 * the tables' current state. */
#ifndef BIFROST_SERVER_METRICS_H
#define BIFROST_SERVER_METRICS_H

#include "bifrost/error.h"
#include "server/service.h"

typedef struct bf_metrics bf_metrics_t;

/* Listens on host:port (port 0 picks a free one; *out_port gets the bound port). */
int bf_metrics_start(const char *host, int port, bf_service_t *service, bf_metrics_t **out,
                     int *out_port, bf_error_t *err);
void bf_metrics_stop(bf_metrics_t *metrics);

/* The exposition text (malloc'd, NUL-terminated); NULL when out of memory. */
char *bf_metrics_render(bf_service_t *service, size_t *len);

#endif
