/* The ServerStats RPC (see server_stats.h). */
#include "server/server_stats.h"

#include <duckdb.h>
#include <stdlib.h>
#include <string.h>

#include "bifrost/util.h"
#include "bifrost/v1/bifrost.pb-c.h"
#include "server/counters.h"
#include "server/table_store_internal.h"

typedef struct stats_storage {
  Bifrost__V1__TableStats stats;
  Bifrost__V1__TableName name;
} stats_storage_t;

static void fill_stats(bf_table_t *t, stats_storage_t *st) {
  Bifrost__V1__TableStats init = BIFROST__V1__TABLE_STATS__INIT;
  Bifrost__V1__TableName init_name = BIFROST__V1__TABLE_NAME__INIT;
  st->stats = init;
  st->name = init_name;
  st->name.catalog = t->catalog;
  st->name.schema_name = t->schema_name;
  st->name.table = t->table;
  st->stats.name = &st->name;
  pthread_mutex_lock(&t->mu);
  if (bf_table_ensure_snapshot(t, NULL) == BF_OK) {
    st->stats.delta_version = t->snapshot.version;
    st->stats.num_files = (int64_t)t->snapshot.n_files;
    for (size_t i = 0; i < t->snapshot.n_files; i++) {
      st->stats.num_rows += t->snapshot.files[i].num_records;
      st->stats.size_bytes += t->snapshot.files[i].size_bytes;
    }
  } else {
    st->stats.delta_version = -1;
  }
  bf_table_store_t *ts = t->store;
  if (ts) {
    for (size_t i = 0; i < ts->n_gens; i++) {
      st->stats.tail_rows += ts->gens[i]->rows;
      st->stats.tail_bytes += ts->gens[i]->decoded_bytes;
    }
    const bf_table_counters_t *c = &ts->counters;
    st->stats.rows_acknowledged = bf_stats_get(&c->rows_acked);
    st->stats.bytes_acknowledged = bf_stats_get(&c->bytes_acked);
    for (int r = 0; r < BF_REFUSED_N; r++) st->stats.inserts_refused += bf_stats_get(&c->refused[r]);
    st->stats.duplicates_skipped = bf_stats_get(&c->duplicates);
    st->stats.flushes = bf_stats_get(&c->flushes);
    st->stats.last_flush_at_ms = bf_stats_get(&c->last_flush_ms);
    st->stats.compactions = bf_stats_get(&c->compactions);
  }
  st->stats.num_rows += st->stats.tail_rows;
  pthread_mutex_unlock(&t->mu);
}

void bf_server_stats_handle(bf_registry_t *registry, bf_store_t *store,
                            bf_stats_may_read_fn may_read, void *may_read_ctx,
                            bf_rpc_call_t *call, const uint8_t *req, size_t size) {
  Bifrost__V1__ServerStatsRequest *request = bifrost__v1__server_stats_request__unpack(NULL, size, req);
  if (request == NULL) {
    bf_rpc_call_finish(call, BF_EINVAL, "malformed ServerStatsRequest");
    return;
  }
  bifrost__v1__server_stats_request__free_unpacked(request, NULL);
  pthread_mutex_lock(&registry->mu);
  size_t n = registry->n_tables;
  bf_table_t **tables = malloc((n ? n : 1) * sizeof *tables);
  if (tables && n) memcpy(tables, registry->tables, n * sizeof *tables);
  pthread_mutex_unlock(&registry->mu);
  stats_storage_t *storage = calloc(n ? n : 1, sizeof *storage);
  Bifrost__V1__TableStats **list = calloc(n ? n : 1, sizeof *list);
  if (tables == NULL || storage == NULL || list == NULL) {
    bf_rpc_call_finish(call, BF_ENOMEM, "out of memory");
  } else {
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
      if (!may_read(may_read_ctx, call, tables[i]->catalog, tables[i]->schema_name, tables[i]->table))
        continue;
      fill_stats(tables[i], &storage[shown]);
      list[shown] = &storage[shown].stats;
      shown++;
    }
    Bifrost__V1__ServerStatsResponse resp = BIFROST__V1__SERVER_STATS_RESPONSE__INIT;
    resp.version = (char *)BF_SERVER_VERSION;
    resp.duckdb_version = (char *)duckdb_library_version();
    resp.started_at_ms = bf_server_counters.started_at_ms;
    resp.uptime_secs = bf_time_monotonic() - bf_server_counters.started_mono;
    resp.n_tables = shown;
    resp.tables = list;
    resp.tail_bytes = bf_store_tail_bytes(store);
    resp.queries_running = bf_stats_get(&bf_server_counters.queries_running);
    int64_t total = 0;
    for (int m = 0; m < BF_STATS_N_METHODS; m++)
      for (int c = 0; c < BF_STATS_N_CODES; c++) total += bf_stats_get(&bf_server_counters.rpcs[m][c]);
    resp.rpcs_total = total;
    size_t len = protobuf_c_message_get_packed_size(&resp.base);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
      bf_rpc_call_finish(call, BF_ENOMEM, "out of memory");
    } else {
      protobuf_c_message_pack(&resp.base, buf);
      bf_rpc_call_reply(call, buf, len);
      free(buf);
    }
  }
  free(list);
  free(storage);
  free(tables);
}
