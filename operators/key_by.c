/*
 * key_by.c — `key_by`: re-keys a stream by one of its type's key fields.
 *
 * It is a keyed operator with no logic of its own: the runtime puts a hash
 * exchange in front of every keyed operator, so records reach the subtask
 * that owns their key group with record.key set. key_by passes them on;
 * operators after it with the same parallelism run fused in that thread.
 */
#include "rn_operator.h"

static const struct rn_config_key rn_key_by_keys[] = {RN_CONFIG_END};

static int rn_key_by_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)op;
    for (uint32_t i = 0; i < in->n; i++) rn_emit_copy(out, 0, &in->recs[i]);
    return 0;
}

static const struct rn_port_decl rn_key_by_out[] = {{NULL, "*", "The input, keyed."}};

const struct rn_op_type rn_op_key_by = {
    RN_OP_TYPE_HEAD,
    .name = "key_by",
    .description = "Partitions the stream by `key` (a field of the record type) across "
                   "`parallelism` worker threads.",
    .kind = RN_KIND_OPERATOR,
    .flags = RN_OP_KEYED,
    .config = rn_key_by_keys,
    .ctx_size = 1,
    .in_type = "*",
    .outputs = rn_key_by_out,
    .n_outputs = 1,
    .process = rn_key_by_process,
};
