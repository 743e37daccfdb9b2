/*
 * operators.c — registers every built-in source, operator and sink type.
 * Adding an operator: write operators/<name>.c defining one struct
 * rn_op_type, and list it here. The record types an operator defines are
 * listed in its own type (rn_op_type.types), not here.
 */
#include "rn_operator.h"

extern const struct rn_op_type rn_source_file;
extern const struct rn_op_type rn_source_kafka;
extern const struct rn_op_type rn_source_kafka_records;
extern const struct rn_op_type rn_sink_kafka;
extern const struct rn_op_type rn_sink_file;
extern const struct rn_op_type rn_sink_null;
extern const struct rn_op_type rn_sink_partitioned_file;
extern const struct rn_op_type rn_op_log_collector;
extern const struct rn_op_type rn_op_filter;
extern const struct rn_op_type rn_op_key_by;
extern const struct rn_op_type rn_op_window_count;
extern const struct rn_op_type rn_op_window;
extern const struct rn_op_type rn_op_map;
extern const struct rn_op_type rn_source_nexmark;
extern const struct rn_op_type rn_op_online_joiner;
extern const struct rn_op_type rn_op_experience_collector;
extern const struct rn_op_type rn_op_dedup;
extern const struct rn_op_type rn_op_value_advantage_learner;
extern const struct rn_op_type rn_op_inference;
extern const struct rn_op_type rn_op_rank_window;

void rn_operators_init(void)
{
    static const struct rn_op_type *const all[] = {
        &rn_source_file, &rn_sink_file,   &rn_sink_null, &rn_sink_partitioned_file,
        &rn_op_log_collector, &rn_op_filter, &rn_op_key_by, &rn_op_window_count,
        &rn_op_online_joiner, &rn_op_experience_collector, &rn_op_dedup,
        &rn_op_value_advantage_learner, &rn_op_inference, &rn_source_kafka,
        &rn_source_kafka_records, &rn_sink_kafka, &rn_op_window, &rn_op_map, &rn_source_nexmark,
        &rn_op_rank_window,
    };
    for (size_t i = 0; i < RN_ARRAY_LEN(all); i++) rn_op_register(all[i]);
}
