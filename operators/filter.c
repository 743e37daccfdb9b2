/*
 * filter.c — `filter`: keeps the events whose type is listed in `types`
 * (or, with `drop: true`, the ones that are not). Stateless; runs fused in
 * its input's thread.
 */
#include <string.h>

#include "rn_event.h"
#include "rn_operator.h"

struct rn_filter_cfg {
    const struct rn_cfg_node *types;
    int drop;
    uint32_t mask; /* bit per enum rn_event_kind */
};

static const struct rn_config_key rn_filter_keys[] = {
    {"types", RN_CT_NODE, NULL, NULL, offsetof(struct rn_filter_cfg, types),
     "Event types to keep: a list of request, impression, click, pay.", NULL, RN_CK_REQUIRED, 0,
     0},
    {"drop", RN_CT_BOOL, "false", NULL, offsetof(struct rn_filter_cfg, drop),
     "Invert: drop the listed types and keep the rest.", NULL, 0, 0, 0},
    RN_CONFIG_END,
};

static int rn_filter_init_types(void *ctx, struct rn_types *ts, const struct rn_cfg_node *node,
                                char *errbuf, size_t errlen)
{
    struct rn_filter_cfg *c = ctx;
    const struct rn_cfg_node *t = c->types;
    const struct rn_cfg_node *first = t->kind == RN_CFG_SEQ ? t->child : t;
    if (t->kind == RN_CFG_MAP || !first) {
        rn_cfg_errf(errbuf, errlen, t, "'types' must be an event type or a list of them");
        return RN_EINVAL;
    }
    for (const struct rn_cfg_node *n = first; n; n = t->kind == RN_CFG_SEQ ? n->next : NULL) {
        int k = n->kind == RN_CFG_SCALAR ? rn_event_kind_find(ts, n->value, strlen(n->value)) : -1;
        if (k < 0) {
            static const char *const kinds[] = {"request", "impression", "click", "pay"};
            const char *s = n->kind == RN_CFG_SCALAR ? rn_suggest(n->value, kinds, 4) : NULL;
            rn_cfg_errf(errbuf, errlen, n, "unknown event type '%s'%s%s%s",
                        n->kind == RN_CFG_SCALAR ? n->value : "?", s ? " (did you mean '" : "",
                        s ? s : "", s ? "'?)" : " (request, impression, click, pay)");
            return RN_EINVAL;
        }
        c->mask |= 1u << k;
    }
    (void)node;
    return 0;
}

static int rn_filter_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    const struct rn_filter_cfg *c = rn_op_ctx(op);
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_event *e = in->recs[i].payload;
        int hit = (c->mask >> e->kind) & 1;
        if (hit != c->drop) rn_emit_copy(out, 0, &in->recs[i]);
    }
    return 0;
}

static const struct rn_port_decl rn_filter_out[] = {{NULL, "event", "The events kept."}};

const struct rn_op_type rn_op_filter = {
    RN_OP_TYPE_HEAD,
    .name = "filter",
    .description = "Keeps (or drops) events by type.",
    .kind = RN_KIND_OPERATOR,
    .config = rn_filter_keys,
    .ctx_size = sizeof(struct rn_filter_cfg),
    .in_type = "event",
    .outputs = rn_filter_out,
    .n_outputs = 1,
    .init_types = rn_filter_init_types,
    .process = rn_filter_process,
};
