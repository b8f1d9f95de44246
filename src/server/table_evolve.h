/* Additive schema evolution (RegisterTable with schema_mode "merge"): a table may
 * take a model that adds nullable fields or turns required fields nullable
 * (also inside structs); every other change is refused, each difference listed. */
#ifndef BIFROST_SERVER_TABLE_EVOLVE_H
#define BIFROST_SERVER_TABLE_EVOLVE_H

#include "server/table_store.h"

/* BF_OK when next only makes allowed changes to current (user fields), else
 * BF_EMISMATCH "schema evolution refused for table <fqn>: <difference>; ...". */
int bf_schema_evolution_check(const char *fqn, const bf_schema_t *current, const bf_schema_t *next,
                              bf_error_t *err);

/* Makes json_schema the table's current schema version when the change is
 * allowed (a registered version is accepted as it is): new columns in the tails,
 * one Delta commit (operation ADD COLUMNS) with the new metaData, the registry
 * entry rewritten with every version, the view rebuilt. Takes the table's locks. */
int bf_store_evolve(bf_store_t *store, bf_table_t *t, const char *json_schema,
                    const char *const *partition_columns, size_t n_partition_columns,
                    bf_error_t *err);

/* A registration the registry refused with BF_EMISMATCH (err holds its message):
 * with merge, evolves the existing table (BF_OK, *out = the table); otherwise
 * extends err with the differences and whether merge would take them. */
int bf_store_register_mismatch(bf_store_t *store, bf_registry_t *registry, const char *catalog,
                               const char *schema_name, const char *table, const char *json_schema,
                               const char *const *partition_columns, size_t n_partition_columns,
                               int merge, bf_table_t **out, bf_error_t *err);

#endif
