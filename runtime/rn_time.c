/*
 * rn_time.c — event time in a running job: watermarks, idleness, and the
 * dispatch of timers.
 *
 * A source task derives its split's watermark from the largest event time its
 * EVENT_TIME operator assigned, minus the allowed out-of-orderness, cut into
 * the stream at fixed record counts (reproducible across restores). A task
 * with no data for watermark.idle_timeout says it is idle, so downstream
 * ignores it. A source that reads several splits in one task (a Kafka
 * source's partitions) says which split each poll's records came from
 * (rn_op_source_split); its watermark is then the least over the splits
 * that had records within idle_timeout, so an idle split does not hold the
 * others back. A consumer's watermark is the minimum over its inputs that are
 * neither ended nor idle. When a task's watermark moves, every instance of its
 * chain, in order, fires its event-time timers up to it (on_timer), is told
 * (on_watermark), and the watermark goes on to every downstream task.
 *
 * Processing-time timers. rn_op_timer_after() pushes a deadline (monotonic
 * ns) onto the instance's min-heap and lowers the task's pt_next_ns. The task
 * loops (rn_exec.c) call rn__task_fire_timers() every round, which is cheap
 * when nothing is due (one clock read), and bound every sleep by the earliest
 * deadline (rn__task_wait_ns), so a timer fires on time in an idle stream too.
 *
 * Everything here runs on the task's own thread.
 */
#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

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
    if (t->n_splits && b->n) t->splits[t->cur_split].last_data_ns = rn_now_ns();
    while (i < b->n) {
        uint64_t room = every - t->assigned % every;
        uint32_t k = (uint32_t)RN_MIN((uint64_t)b->n, i + room);
        for (uint32_t j = i; j < k; j++)
            if (b->recs[j].ts > t->max_ts) t->max_ts = b->recs[j].ts;
        if (t->n_splits) {
            struct rn_split_time *sp = &t->splits[t->cur_split];
            for (uint32_t j = i; j < k; j++)
                if (b->recs[j].ts > sp->max_ts) sp->max_ts = b->recs[j].ts;
        }
        struct rn_batch part = *b;
        part.recs = b->recs + i;
        part.n = k - i;
        rn__send_batch(in, po, &part);
        t->assigned += k - i;
        if (t->assigned % every == 0) {
            int64_t m = t->n_splits ? rn__splits_max_ts(t, 0) : t->max_ts;
            if (m != RN_TS_MIN) rn__task_advance(t, m - t->job->out_of_orderness_ms - 1);
        }
        i = k;
    }
    t->last_data_ns = -1; /* "data came": stamped after the poll */
}

/* A source reading several splits (Kafka partitions): the event time the
 * task may promise is the least of its splits' largest event times, over the
 * splits that are not idle (no records for watermark.idle_timeout). A split
 * that has not had a record yet holds it back until it turns idle. With every
 * split idle it is the largest of them all, so that the task's watermark
 * still reflects what it read. */
int64_t rn__splits_max_ts(struct rn_task *t, int64_t now)
{
    int64_t idle_ns = t->job->idle_timeout_ms * 1000000;
    int64_t least = RN_TS_MAX, most = RN_TS_MIN;
    int active = 0;
    if (!now && idle_ns > 0) now = rn_now_ns();
    for (int i = 0; i < t->n_splits; i++) {
        const struct rn_split_time *sp = &t->splits[i];
        if (sp->max_ts > most) most = sp->max_ts;
        if (idle_ns > 0 && now - sp->last_data_ns >= idle_ns) continue;
        active++;
        if (sp->max_ts < least) least = sp->max_ts;
    }
    return active ? least : most;
}

void rn_op_source_split(struct rn_op *op, int split, int n_splits)
{
    struct rn_task *t = op->inst->task;
    assert(t->is_source && split >= 0 && split < n_splits);
    if (n_splits > t->n_splits) {
        t->splits = rn_xrealloc(t->splits, (size_t)n_splits * sizeof *t->splits);
        int64_t now = rn_now_ns();
        for (int i = t->n_splits; i < n_splits; i++)
            t->splits[i] = (struct rn_split_time){RN_TS_MIN, now};
        t->n_splits = n_splits;
    }
    t->cur_split = split;
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
    if (in->keyed) rn__op_state_flush(in->keyed);
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
    }
    /* The watermark first: one that moves as the task turns idle (a split
     * passed its idle timeout) must reach downstream before the idle mark,
     * after which downstream ignores the task. */
    int64_t m = t->n_splits ? rn__splits_max_ts(t, now) : t->max_ts;
    if (caught_up && m != RN_TS_MIN) {
        int64_t wm = m - job->out_of_orderness_ms - 1;
        if (wm > t->wm) rn__task_advance(t, wm);
    }
    if (!t->idle && job->idle_timeout_ms > 0 &&
        now - t->last_data_ns >= job->idle_timeout_ms * 1000000) {
        /* Nothing for a while: stop holding back downstream event time. */
        rn__task_set_idle(t, 1);
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


/* ---- processing-time timers ------------------------------------------------------- */

static void rn__pt_push(struct rn_instance *in, int64_t at)
{
    if (in->pt_n == in->pt_cap) {
        in->pt_cap = in->pt_cap ? in->pt_cap * 2 : 8;
        in->pt_heap = rn_xrealloc(in->pt_heap, sizeof *in->pt_heap * (size_t)in->pt_cap);
    }
    int i = in->pt_n++;
    while (i > 0 && in->pt_heap[(i - 1) / 2] > at) {
        in->pt_heap[i] = in->pt_heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    in->pt_heap[i] = at;
}

static int64_t rn__pt_pop(struct rn_instance *in)
{
    assert(in->pt_n > 0);
    int64_t top = in->pt_heap[0], last = in->pt_heap[--in->pt_n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= in->pt_n) break;
        if (c + 1 < in->pt_n && in->pt_heap[c + 1] < in->pt_heap[c]) c++;
        if (in->pt_heap[c] >= last) break;
        in->pt_heap[i] = in->pt_heap[c];
        i = c;
    }
    if (in->pt_n) in->pt_heap[i] = last;
    return top;
}

int rn_op_timer_after(struct rn_op *op, int64_t delay_ms)
{
    struct rn_instance *in = op->inst;
    if (!in->node->type->on_processing_time) {
        rn_op_errorf(op, "rn_op_timer_after: the type has no on_processing_time callback");
        return RN_EINVAL;
    }
    if (delay_ms < 0) delay_ms = 0;
    if (delay_ms > INT64_MAX / 2000000) delay_ms = INT64_MAX / 2000000;
    int64_t at = rn_now_ns() + delay_ms * 1000000;
    rn__pt_push(in, at);
    if (at < in->task->pt_next_ns) in->task->pt_next_ns = at;
    return 0;
}

void rn__task_fire_timers(struct rn_task *t)
{
    if (RN_LIKELY(t->pt_next_ns == INT64_MAX)) return;
    int64_t now = rn_now_ns();
    if (now < t->pt_next_ns) return;
    int64_t next = INT64_MAX;
    for (int i = 0; i < t->n_inst; i++) {
        struct rn_instance *in = t->inst[i];
        /* Only timers due now: those a callback sets fire on a later round. */
        while (in->pt_n && in->pt_heap[0] <= now && !in->finished) {
            if (atomic_load_explicit(&t->job->aborting, memory_order_relaxed)) return;
            rn__pt_pop(in);
            int rc = in->node->type->on_processing_time(&in->op, rn_wall_ms(), &in->em);
            rn__check_rc(in, rc, "on_processing_time");
            rn__flush_ports(in);
        }
        if (in->pt_n && !in->finished && in->pt_heap[0] < next) next = in->pt_heap[0];
    }
    t->pt_next_ns = next;
}

long rn__task_wait_ns(const struct rn_task *t, long max_ns)
{
    if (t->pt_next_ns == INT64_MAX) return max_ns;
    int64_t left = t->pt_next_ns - rn_now_ns();
    if (left <= 0) return 0;
    return left < max_ns ? (long)left : max_ns;
}
