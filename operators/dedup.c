/*
 * dedup.c — `dedup`: drops repeated events, by the producer's event id, within
 * an event-time window.
 *
 * Keyed by `event_id` (log_collector's `event_id_field`): the first event with
 * an id passes and is remembered in keyed state until its event time + window;
 * a later event with the same id inside that time is a duplicate: counted and
 * sent to the `duplicates` side output (routed or not, it is not passed on).
 * Events without an id pass unchanged (they all share one key group, so put
 * dedup only where events carry ids). Exactly-once across crashes, as keyed
 * state and timers are.
 */
#include <stdlib.h>

#include "rn_event.h"
#include "rn_operator.h"
#include "rn_state.h"

struct rn_dedup_cfg {
    int64_t window;
};

static const struct rn_config_key rn_dedup_keys[] = {
    {"window", RN_CT_DURATION, "1h", "ms", offsetof(struct rn_dedup_cfg, window),
     "How long (event time) an event id is remembered.", NULL, 0, 1, (int64_t)1 << 50},
    RN_CONFIG_END,
};

static const char *const rn_dedup_metrics[] = {"passed", "duplicates", "without_id", NULL};

static int rn_dedup_open(struct rn_op *op)
{
    struct rn_state *s = rn_state_value(op, "seen");
    rn_op_set_local(op, s);
    return s ? 0 : RN_ESTATE;
}

static int rn_dedup_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    const struct rn_dedup_cfg *c = rn_op_ctx(op);
    struct rn_state *seen = rn_op_local(op);
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_record *r = &in->recs[i];
        const struct rn_event *e = r->payload;
        if (!(e->flags & RN_EVENT_HAS_ID)) {
            rn_op_metric_add(op, 2, 1);
            rn_emit_copy(out, 0, r);
            continue;
        }
        rn_state_key(op, r->key);
        const void *v;
        size_t len;
        int rc = rn_value_get(seen, 0, &v, &len);
        if (rc == 0) {
            rn_op_metric_add(op, 1, 1);
            rn_emit_copy(out, 1, r);
            continue;
        }
        if (rc != RN_ENOENT) return rc;
        int64_t until = r->ts + c->window;
        if ((rc = rn_value_put(seen, 0, &until, sizeof until)) ||
            (rc = rn_timer_register(op, until, 0)))
            return rc;
        rn_op_metric_add(op, 0, 1);
        rn_emit_copy(out, 0, r);
    }
    return 0;
}

static int rn_dedup_on_timer(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    struct rn_state *seen = rn_op_local(op);
    const void *v;
    size_t len;
    (void)out;
    /* Only forget the id if no later copy moved its deadline. */
    int rc = rn_value_get(seen, 0, &v, &len);
    if (rc == RN_ENOENT) return 0;
    if (rc) return rc;
    if (len == sizeof(int64_t) && *(const int64_t *)v <= t->ts) return rn_value_clear(seen, 0);
    return 0;
}

static const struct rn_port_decl rn_dedup_out[] = {
    {NULL, "event", "Events, each id once per window."},
    {"duplicates", "event", "Repeats of an id already seen within the window."},
};

const struct rn_op_type rn_op_dedup = {
    RN_OP_TYPE_HEAD,
    .name = "dedup",
    .description = "Drops events whose id was already seen within an event-time window.",
    .kind = RN_KIND_OPERATOR,
    .flags = RN_OP_KEYED | RN_OP_STATEFUL,
    .config = rn_dedup_keys,
    .ctx_size = sizeof(struct rn_dedup_cfg),
    .in_type = "event",
    .outputs = rn_dedup_out,
    .n_outputs = 2,
    .metrics = rn_dedup_metrics,
    .default_key = "event_id",
    .open = rn_dedup_open,
    .process = rn_dedup_process,
    .on_timer = rn_dedup_on_timer,
};
