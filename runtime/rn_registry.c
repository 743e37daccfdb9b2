/*
 * rn_registry.c — the table of operator, source and sink types by name.
 *
 * Filled by rn_operators_init() (operators/operators.c) before any job thread
 * exists and read-only afterwards, so lookups take no lock.
 */
#include <string.h>

#include "rn_operator.h"

#define RN_MAX_OP_TYPES 128

static const struct rn_op_type *rn__op_types[RN_MAX_OP_TYPES];
static size_t rn__n_op_types;

int rn_op_register(const struct rn_op_type *t)
{
    if (t->abi_version != RN_OP_ABI_VERSION) return RN_EINVAL;
    for (size_t i = 0; i < rn__n_op_types; i++) {
        if (rn__op_types[i] == t) return 0;
        if (rn__op_types[i]->kind == t->kind && strcmp(rn__op_types[i]->name, t->name) == 0)
            return RN_EINVAL;
    }
    if (rn__n_op_types == RN_MAX_OP_TYPES) return RN_EFULL;
    rn__op_types[rn__n_op_types++] = t;
    return 0;
}

const struct rn_op_type *rn_op_find(const char *name, enum rn_op_kind kind)
{
    for (size_t i = 0; i < rn__n_op_types; i++)
        if (rn__op_types[i]->kind == kind && strcmp(rn__op_types[i]->name, name) == 0)
            return rn__op_types[i];
    return NULL;
}

size_t rn_op_list(enum rn_op_kind kind, const struct rn_op_type **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < rn__n_op_types && n < max; i++)
        if (rn__op_types[i]->kind == kind) out[n++] = rn__op_types[i];
    return n;
}
