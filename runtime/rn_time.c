/*
 * rn_time.c — event time in a running job: watermarks, idleness, and the
 * dispatch of timers.
 *
 * A source task derives its split's watermark from the largest event time its
 * EVENT_TIME operator assigned, minus the allowed out-of-orderness, cut into
 * the stream at fixed record counts (reproducible across restores). A task
 * with no data for watermark.idle_timeout says it is idle, so downstream
 * ignores it. A consumer's watermark is the minimum over its inputs that are
 * neither ended nor idle. When a task's watermark moves, every instance of its
 * chain, in order, fires its event-time timers up to it (on_timer), is told
 * (on_watermark), and the watermark goes on to every downstream task.
 *
 * Everything here runs on the task's own thread.
 */
#include <stdatomic.h>

#include "rn_exec_int.h"

/* ---- watermarks in a source's output ---------------------------------------------- */

/* The output of an operator that assigns event time, in a source task: the
 * split's watermark (largest event time so far, minus the allowed
 * out-of-orderness) is emitted after every `emit_every` records of the split,
 * counted from its start. The batch is cut at those points, so the watermark
 * sits at the same place in the stream however the input was batched — after
 * a restore too — and which records are late is reproducible. */
void rn__send_with_watermarks(struct rn_instance *in, struct rn_port_out *po, struct rn_batch *b)
{
    struct rn_task *t = in->task;
    uint64_t every = t->job->emit_every;
    uint32_t i = 0;
    while (i < b->n) {
        uint64_t room = every - t->assigned % every;
        uint32_t k = (uint32_t)RN_MIN((uint64_t)b->n, i + room);
        for (uint32_t j = i; j < k; j++)
            if (b->recs[j].ts > t->max_ts) t->max_ts = b->recs[j].ts;
        struct rn_batch part = *b;
        part.recs = b->recs + i;
        part.n = k - i;
        rn__send_batch(in, po, &part);
        t->assigned += k - i;
        if (t->assigned % every == 0 && t->max_ts != RN_TS_MIN)
            rn__task_advance(t, t->max_ts - t->job->out_of_orderness_ms - 1);
        i = k;
    }
    t->last_data_ns = -1; /* "data came": stamped after the poll */
}

/* Hands every pending output of `in` to its targets, then clears it. */
struct rn_op_state *rn__op_keyed(const struct rn_op *op)
{
    return op->inst->keyed;
}

int64_t rn_op_watermark(const struct rn_op *op)
{
    return op->inst->wm;
}

void rn_op_count_late(struct rn_op *op, uint64_t n)
{
    atomic_fetch_add_explicit(&op->inst->late, n, memory_order_relaxed);
}

/* Fires the instance's timers up to wm, then tells it the watermark. */
static void rn__instance_advance(struct rn_instance *in, int64_t wm)
{
    if (in->wm >= wm) return;
    const struct rn_op_type *ty = in->node->type;
    /* Timers see the new watermark, as on_watermark does. */
    in->wm = wm;
    atomic_store_explicit(&in->wm_seen, wm, memory_order_relaxed);
    if (in->keyed && ty->on_timer) {
        struct rn_timer tm;
        while (rn__op_state_pop_timer(in->keyed, wm, &tm)) {
            if (atomic_load_explicit(&in->job->aborting, memory_order_relaxed)) return;
            int rc = ty->on_timer(&in->op, &tm, &in->em);
            rn__check_rc(in, rc, "on_timer");
            rn__flush_ports(in);
        }
    }
    if (ty->on_watermark) {
        int rc = ty->on_watermark(&in->op, wm, &in->em);
        rn__check_rc(in, rc, "on_watermark");
        rn__flush_ports(in);
    }
}

/* The task's event time moved to wm: down the chain in order, then to every
 * downstream task. */
void rn__task_advance(struct rn_task *t, int64_t wm)
{
    if (wm <= t->wm) return;
    t->wm = wm;
    atomic_store_explicit(&t->wm_seen, wm, memory_order_relaxed);
    for (int i = 0; i < t->n_inst; i++) rn__instance_advance(t->inst[i], wm);
    rn__task_broadcast(t, RN_MSG_WATERMARK, wm);
}

static void rn__task_set_idle(struct rn_task *t, int idle)
{
    if (t->idle == idle) return;
    t->idle = idle;
    atomic_store_explicit(&t->idle_seen, idle, memory_order_relaxed);
    rn__task_broadcast(t, RN_MSG_IDLE, idle);
}

/* Source tasks, after each poll: idleness, and — once the split has caught
 * up with its input (`caught_up`) — the watermark of everything read so far. */
void rn__source_watermark(struct rn_task *t, int caught_up)
{
    struct rn_job *job = t->job;
    int64_t now = rn_now_ns();
    if (t->last_data_ns == -1) {
        t->last_data_ns = now;
        rn__task_set_idle(t, 0);
    } else if (!t->idle && job->idle_timeout_ms > 0 &&
               now - t->last_data_ns >= job->idle_timeout_ms * 1000000) {
        /* Nothing for a while: stop holding back downstream event time. */
        rn__task_set_idle(t, 1);
    }
    if (caught_up && t->max_ts != RN_TS_MIN) {
        int64_t wm = t->max_ts - job->out_of_orderness_ms - 1;
        if (wm > t->wm) rn__task_advance(t, wm);
    }
}

/* Consumers: the minimum over inputs that are neither ended nor idle. */
void rn__consumer_watermark(struct rn_task *t)
{
    int64_t wm = RN_TS_MAX;
    int active = 0;
    for (int k = 0; k < t->n_inputs; k++) {
        struct rn_channel *ch = t->inputs[k];
        if (ch->ended || ch->idle) continue;
        active++;
        if (ch->wm < wm) wm = ch->wm;
    }
    if (!active) {
        if (t->n_ended < t->n_inputs) rn__task_set_idle(t, 1);
        return;
    }
    rn__task_set_idle(t, 0);
    if (wm > t->wm && wm != RN_TS_MIN) rn__task_advance(t, wm);
}

