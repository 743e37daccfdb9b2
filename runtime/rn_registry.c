/*
 * rn_registry.c — the table of operator, source and sink types by name.
 *
 * Filled by rn_operators_init() (operators/operators.c) before any job thread
 * exists and read-only afterwards, so lookups take no lock.
 *
 * ABI. A type says which header it was built against twice: abi_version and
 * struct_size (RN_OP_TYPE_HEAD fills both). Registration checks them and
 * keeps a copy of the type padded with zeros to this runtime's struct, so the
 * rest of the engine may read any field, including callbacks appended after
 * the operator was built (they read as NULL). rn_op_find returns the copy.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "rn_operator.h"

#define RN_MAX_OP_TYPES 128

/* The smallest struct_size each version can have: the fields that version
 * was introduced with (version 2: everything through `ratios`). Later
 * fields of the same version are optional. */
#define RN__OP_V2_MIN_SIZE (offsetof(struct rn_op_type, ratios) + sizeof(void *))

static const struct rn_op_type *rn__op_given[RN_MAX_OP_TYPES]; /* as registered */
static struct rn_op_type rn__op_types[RN_MAX_OP_TYPES];        /* full-size copies */
static size_t rn__n_op_types;

int rn_op_register_err(const struct rn_op_type *t, char *errbuf, size_t errlen)
{
    if (!t) {
        rn_errf(errbuf, errlen, "operator type is NULL");
        return RN_EINVAL;
    }
    /* Every version from 2 on starts with abi_version, struct_size, name: the
     * name is readable once the size covers it, even for a newer version. */
    uint32_t abi = t->abi_version;
    const char *name =
        abi >= 2 && t->struct_size >= RN__OP_V2_MIN_SIZE && t->name ? t->name : "?";
    if (abi > RN_OP_ABI_VERSION) {
        rn_errf(errbuf, errlen,
                "operator type '%s' was built for operator ABI %u, newer than this runtime's %u: "
                "rebuild it against this runnel's include/runnel/rn_operator.h",
                name, abi, RN_OP_ABI_VERSION);
        return RN_EINVAL;
    }
    if (abi < 2) {
        rn_errf(errbuf, errlen,
                "operator type built for operator ABI %u, which this runtime (ABI %u) no longer "
                "reads: rebuild it with RN_OP_TYPE_HEAD",
                abi, RN_OP_ABI_VERSION);
        return RN_EINVAL;
    }
    if (t->struct_size < RN__OP_V2_MIN_SIZE) {
        rn_errf(errbuf, errlen,
                "operator type says struct_size %u, smaller than ABI %u requires (%zu): initialize "
                "it with RN_OP_TYPE_HEAD",
                t->struct_size, abi, (size_t)RN__OP_V2_MIN_SIZE);
        return RN_EINVAL;
    }
    if (t->struct_size > sizeof(struct rn_op_type)) {
        rn_errf(errbuf, errlen,
                "operator type '%s' says struct_size %u, larger than this runtime's struct "
                "rn_op_type (%zu): it was built against a newer rn_operator.h; rebuild it",
                name, t->struct_size, sizeof(struct rn_op_type));
        return RN_EINVAL;
    }
    if (!t->name || !t->name[0]) {
        rn_errf(errbuf, errlen, "operator type has no name");
        return RN_EINVAL;
    }
    /* Fields past struct_size read as 0: only look at them when covered. */
    uint32_t n_inputs = t->struct_size >= offsetof(struct rn_op_type, n_inputs) + sizeof(uint32_t)
                            ? t->n_inputs
                            : 0;
    if (n_inputs > 1) {
        if (t->kind != RN_KIND_OPERATOR || n_inputs > RN_MAX_INPUTS || !t->inputs) {
            rn_errf(errbuf, errlen,
                    "operator type '%s' declares %u inputs: only operators (not sources or sinks) "
                    "may have several, at most %d, each described in 'inputs'",
                    t->name, n_inputs, RN_MAX_INPUTS);
            return RN_EINVAL;
        }
        for (uint32_t i = 0; i < n_inputs; i++) {
            if (!t->inputs[i].type || !t->inputs[i].name) {
                rn_errf(errbuf, errlen, "operator type '%s': input %u needs a name and a type",
                        t->name, i + 1);
                return RN_EINVAL;
            }
        }
    }
    for (size_t i = 0; i < rn__n_op_types; i++) {
        if (rn__op_given[i] == t) return 0;
        if (rn__op_types[i].kind == t->kind && strcmp(rn__op_types[i].name, t->name) == 0) {
            rn_errf(errbuf, errlen, "operator type '%s' is registered twice", t->name);
            return RN_EINVAL;
        }
    }
    if (rn__n_op_types == RN_MAX_OP_TYPES) {
        rn_errf(errbuf, errlen, "operator type '%s': the registry is full (%d types)", t->name,
                RN_MAX_OP_TYPES);
        return RN_EFULL;
    }
    struct rn_op_type *copy = &rn__op_types[rn__n_op_types];
    memset(copy, 0, sizeof *copy);
    memcpy(copy, t, t->struct_size);
    copy->struct_size = (uint32_t)sizeof *copy;
    rn__op_given[rn__n_op_types++] = t;
    return 0;
}

int rn_op_register(const struct rn_op_type *t)
{
    char err[300];
    int rc = rn_op_register_err(t, err, sizeof err);
    if (rc < 0) fprintf(stderr, "runnel: %s\n", err);
    return rc;
}

const struct rn_op_type *rn_op_find(const char *name, enum rn_op_kind kind)
{
    for (size_t i = 0; i < rn__n_op_types; i++)
        if (rn__op_types[i].kind == kind && strcmp(rn__op_types[i].name, name) == 0)
            return &rn__op_types[i];
    return NULL;
}

size_t rn_op_list(enum rn_op_kind kind, const struct rn_op_type **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < rn__n_op_types && n < max; i++)
        if (rn__op_types[i].kind == kind) out[n++] = &rn__op_types[i];
    return n;
}
