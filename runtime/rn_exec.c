/*
 * rn_exec.c — running a job: fused chains on worker threads, connected by
 * bounded queues that move whole batches.
 *
 * Plan. Nodes joined by FORWARD edges, where the downstream node has that one
 * input, fuse into a chain (a group); a chain runs as `parallelism` tasks, one
 * thread each. Inside a task an operator's output batch is handed straight to
 * the next operator as a borrowed batch: no copy, no queue.
 *
 * Exchanges. Where a stream is re-keyed (HASH: key group -> owner subtask, as
 * Flink assigns key-group ranges), gathered or rebalanced, the producer copies
 * each record into a per-destination batch and, when that fills, pushes the
 * batch through a channel: a single-producer single-consumer ring of messages.
 * The consumer returns the emptied batch on a second ring, so batches (and
 * their arenas) are recycled and the steady state allocates nothing.
 *
 * Blocking. A consumer with nothing to read sleeps on its task's signal; a
 * producer facing a full ring sleeps on its own (the time is counted as
 * backpressure). Pushing or popping bumps the other side's signal. Waits are
 * bounded (50 ms) so a stop request is always seen.
 *
 * End. A bounded source returns RN_POLL_END (or the job is asked to stop): its
 * task calls finish() down its chain in order, flushes, and sends END on every
 * outgoing channel. A task whose inputs have all ended does the same. When
 * every thread has returned, the job is over.
 */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rn_fs.h"
#include "rn_http.h"
#include "rn_job_int.h"

#define RN_WAIT_NS (50 * 1000000L)

/* ---- signals --------------------------------------------------------------- */

static void rn__signal_init(struct rn_signal *s)
{
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &a);
    pthread_condattr_destroy(&a);
    atomic_init(&s->seq, 0);
    atomic_init(&s->waiting, 0);
}

static void rn__signal_destroy(struct rn_signal *s)
{
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

static void rn__signal_notify(struct rn_signal *s)
{
    atomic_fetch_add(&s->seq, 1);
    if (atomic_load(&s->waiting)) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

/* Sleeps until seq moves past `seen` or up to `ns` nanoseconds pass. */
static void rn__signal_wait(struct rn_signal *s, uint32_t seen, long ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += ns;
    while (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->waiting, 1);
    while (atomic_load(&s->seq) == seen) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) break;
    }
    atomic_store(&s->waiting, 0);
    pthread_mutex_unlock(&s->mu);
}

/* ---- rings ----------------------------------------------------------------- */

static void rn__ring_init(struct rn_ring *r, uint32_t min_cap)
{
    uint32_t cap = 2;
    while (cap < min_cap) cap *= 2;
    r->mask = cap - 1;
    r->limit = min_cap;
    r->slots = rn_xcalloc(cap, sizeof *r->slots);
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
}

static int rn__ring_push(struct rn_ring *r, const struct rn_msg *m)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail - head >= r->limit) return 0;
    r->slots[tail & r->mask] = *m;
    atomic_store_explicit(&r->tail, tail + 1, memory_order_seq_cst);
    return 1;
}

static int rn__ring_pop(struct rn_ring *r, struct rn_msg *m)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head == tail) return 0;
    *m = r->slots[head & r->mask];
    atomic_store_explicit(&r->head, head + 1, memory_order_seq_cst);
    return 1;
}

uint32_t rn__channel_fill(struct rn_channel *ch)
{
    uint32_t tail = atomic_load_explicit(&ch->fwd.tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&ch->fwd.head, memory_order_relaxed);
    return tail - head;
}

/* ---- job errors --------------------------------------------------------------- */

void rn__job_set_error(struct rn_job *job, const char *fmt, ...)
{
    pthread_mutex_lock(&job->err_mu);
    if (!job->error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(job->error, sizeof job->error, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&job->err_mu);
    atomic_store(&job->aborting, 1);
}

/* ---- the operator-facing API ---------------------------------------------------- */

const void *rn_op_ctx(const struct rn_op *op)
{
    return op->inst->node->ctx;
}
void *rn_op_local(const struct rn_op *op)
{
    return op->inst->local;
}
void rn_op_set_local(struct rn_op *op, void *p)
{
    op->inst->local = p;
}
const char *rn_op_id(const struct rn_op *op)
{
    return op->inst->node->id;
}
uint32_t rn_op_subtask(const struct rn_op *op)
{
    return op->inst->task->subtask;
}
uint32_t rn_op_parallelism(const struct rn_op *op)
{
    return op->inst->node->parallelism;
}
int rn_op_source_index(const struct rn_op *op)
{
    return op->inst->node->source_index;
}
int rn_op_key_field(const struct rn_op *op)
{
    return op->inst->node->key_field;
}

int rn_op_checkpointing(const struct rn_op *op)
{
    return op->inst->job->ckpt_enabled;
}

int rn_op_stopping(const struct rn_op *op)
{
    return atomic_load_explicit(&op->inst->job->stopping, memory_order_relaxed) ||
           atomic_load_explicit(&op->inst->job->aborting, memory_order_relaxed);
}
void rn_op_metric_add(struct rn_op *op, int idx, uint64_t delta)
{
    struct rn_instance *in = op->inst;
    assert(idx >= 0 && idx < in->n_metrics);
    atomic_fetch_add_explicit(&in->metrics[idx], delta, memory_order_relaxed);
}

void rn_op_errorf(struct rn_op *op, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rn__job_set_error(op->inst->job, "%s '%s' (subtask %u): %s",
                      op->inst->node->kind == RN_KIND_SOURCE ? "source"
                      : op->inst->node->kind == RN_KIND_SINK ? "sink"
                                                             : "operator",
                      op->inst->node->id, op->inst->task->subtask, msg);
}

void *rn_emit(struct rn_emitter *e, int port, int64_t ts, uint64_t key, uint32_t len)
{
    struct rn_port_out *po = &e->inst->ports[port];
    return rn_batch_add(po->batch, (uint16_t)po->type, ts, key, len);
}

void rn_emit_copy(struct rn_emitter *e, int port, const struct rn_record *r)
{
    struct rn_port_out *po = &e->inst->ports[port];
    void *p = rn_batch_add(po->batch, (uint16_t)po->type, r->ts, r->key, r->len);
    memcpy(p, r->payload, r->len);
    po->batch->recs[po->batch->n - 1].flags = r->flags;
}

void rn_emit_payload(struct rn_emitter *e, int port, int64_t ts, uint64_t key,
                     const struct rn_payload *p)
{
    void *dst = rn_emit(e, port, ts, key, (uint32_t)p->buf.len);
    memcpy(dst, p->buf.data, p->buf.len);
}

int rn_emit_connected(const struct rn_emitter *e, int port)
{
    return e->inst->ports[port].n_targets > 0;
}

void rn_emit_dead_letter(struct rn_emitter *e, int port, const struct rn_op *op, const char *where,
                         size_t where_len, int64_t offset, const char *reason, const void *data,
                         size_t len, uint32_t orig_len)
{
    size_t id_len = strlen(rn_op_id(op)), reason_len = strlen(reason);
    size_t total = sizeof(struct rn_dead_letter) + where_len + id_len + reason_len + len;
    struct rn_dead_letter *d = rn_emit(e, port, RN_TS_MIN, 0, (uint32_t)total);
    char *p = (char *)(d + 1);
    uint32_t off = sizeof *d;
    d->offset = offset;
    d->orig_len = orig_len;
    d->pad = 0;
    d->where = (struct rn_str){off, (uint32_t)where_len};
    memcpy(p, where, where_len);
    p += where_len, off += (uint32_t)where_len;
    d->op = (struct rn_str){off, (uint32_t)id_len};
    memcpy(p, rn_op_id(op), id_len);
    p += id_len, off += (uint32_t)id_len;
    d->reason = (struct rn_str){off, (uint32_t)reason_len};
    memcpy(p, reason, reason_len);
    p += reason_len, off += (uint32_t)reason_len;
    d->data = (struct rn_str){off, (uint32_t)len};
    if (len) memcpy(p, data, len);
}

/* ---- delivery ------------------------------------------------------------------ */

static void rn__deliver(struct rn_instance *in, const struct rn_batch *b);

/* Pushes a batch into a channel, waiting while the ring is full. The batch is
 * owned by the consumer afterwards. Returns RN_ESTOP if the job aborts. */
static int rn__channel_push(struct rn_channel *ch, const struct rn_msg *m)
{
    struct rn_task *self = ch->producer;
    if (RN_LIKELY(rn__ring_push(&ch->fwd, m))) goto pushed;
    int64_t t0 = rn_now_ns();
    for (;;) {
        uint32_t seen = atomic_load(&self->sig.seq);
        if (rn__ring_push(&ch->fwd, m)) break;
        if (atomic_load_explicit(&self->job->aborting, memory_order_relaxed)) {
            if (m->batch) rn_batch_destroy(m->batch);
            return RN_ESTOP;
        }
        rn__signal_wait(&self->sig, seen, RN_WAIT_NS);
        /* Counted as it accrues, so a stalled pipeline shows it. */
        int64_t now = rn_now_ns();
        atomic_fetch_add_explicit(&ch->blocked_ns, (uint64_t)(now - t0), memory_order_relaxed);
        t0 = now;
    }
    atomic_fetch_add_explicit(&ch->blocked_ns, (uint64_t)(rn_now_ns() - t0),
                              memory_order_relaxed);
pushed:
    if (m->kind == RN_MSG_DATA) atomic_fetch_add_explicit(&ch->batches, 1, memory_order_relaxed);
    rn__signal_notify(&ch->consumer->sig);
    return 0;
}

static struct rn_batch *rn__channel_fresh_batch(struct rn_channel *ch)
{
    struct rn_msg m;
    if (rn__ring_pop(&ch->back, &m)) {
        rn_batch_clear(m.batch);
        return m.batch;
    }
    return rn_batch_create(RN_BATCH_RECORDS);
}

static int rn__exchange_flush_dest(struct rn_exchange *x, uint32_t d)
{
    struct rn_batch *b = x->pending[d];
    if (!b || b->n == 0) return 0;
    x->pending[d] = rn__channel_fresh_batch(x->ch[d]);
    struct rn_msg m = {RN_MSG_DATA, b, 0};
    return rn__channel_push(x->ch[d], &m);
}

static void rn__exchange_send(struct rn_exchange *x, uint32_t subtask, const struct rn_batch *b)
{
    (void)subtask;
    /* Rebalance: whole batches, round robin over the destinations. */
    uint32_t rr = x->rr;
    if (x->mode == RN_EDGE_REBALANCE) x->rr = (x->rr + 1) % x->n_dest;
    for (uint32_t i = 0; i < b->n; i++) {
        const struct rn_record *r = &b->recs[i];
        uint32_t d;
        uint64_t key = r->key;
        switch (x->mode) {
        case RN_EDGE_HASH:
            key = x->type->key_of(r, x->key_field);
            d = rn_key_group_owner(rn_key_group(key, x->max_parallelism), x->max_parallelism,
                                   x->n_dest);
            break;
        case RN_EDGE_GATHER: d = 0; break;
        case RN_EDGE_REBALANCE: d = rr; break;
        default: d = 0; break; /* forward across chains: one destination */
        }
        struct rn_batch *pb = x->pending[d];
        void *p = rn_batch_add(pb, r->type, r->ts, key, r->len);
        memcpy(p, r->payload, r->len);
        pb->recs[pb->n - 1].flags = r->flags;
        if (rn_batch_full(pb)) rn__exchange_flush_dest(x, d);
    }
}

/* Pushes every partly filled exchange batch of the task: called when the
 * task goes idle and at least every buffer_timeout, so a quiet stream is not
 * held back waiting for a batch to fill. */
static void rn__task_flush_exchanges(struct rn_task *t)
{
    for (int i = 0; i < t->n_xchgs; i++)
        for (uint32_t d = 0; d < t->xchgs[i]->n_dest; d++) rn__exchange_flush_dest(t->xchgs[i], d);
    t->flushed_ns = rn_now_ns();
}

static void rn__task_maybe_flush(struct rn_task *t)
{
    if (t->n_xchgs && rn_now_ns() - t->flushed_ns >= t->job->buffer_timeout_ns)
        rn__task_flush_exchanges(t);
}

static void rn__task_advance(struct rn_task *t, int64_t wm);

static void rn__send_batch(struct rn_instance *in, struct rn_port_out *po, const struct rn_batch *b)
{
    for (int t = 0; t < po->n_targets; t++) {
        if (po->targets[t].local)
            rn__deliver(po->targets[t].local, b);
        else
            rn__exchange_send(po->targets[t].xchg, in->task->subtask, b);
    }
}

/* The output of an operator that assigns event time, in a source task: the
 * split's watermark (largest event time so far, minus the allowed
 * out-of-orderness) is emitted after every `emit_every` records of the split,
 * counted from its start. The batch is cut at those points, so the watermark
 * sits at the same place in the stream however the input was batched — after
 * a restore too — and which records are late is reproducible. */
static void rn__send_with_watermarks(struct rn_instance *in, struct rn_port_out *po,
                                     struct rn_batch *b)
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
static void rn__flush_ports(struct rn_instance *in)
{
    for (int p = 0; p < in->n_ports; p++) {
        struct rn_port_out *po = &in->ports[p];
        struct rn_batch *b = po->batch;
        if (b->n == 0) continue;
        atomic_fetch_add_explicit(&po->records, b->n, memory_order_relaxed);
        if (po->n_targets == 0) {
            atomic_fetch_add_explicit(&po->dropped, b->n, memory_order_relaxed);
        }
        if (p == 0 && (in->node->type->flags & RN_OP_EVENT_TIME) && in->task->is_source)
            rn__send_with_watermarks(in, po, b);
        else
            rn__send_batch(in, po, b);
        rn_batch_clear(b);
    }
}

static void rn__check_rc(struct rn_instance *in, int rc, const char *what)
{
    if (rc < 0 && !atomic_load(&in->job->aborting))
        rn__job_set_error(in->job, "'%s' failed in %s: %s", in->node->id, what, rn_strerror(rc));
}

static void rn__deliver(struct rn_instance *in, const struct rn_batch *b)
{
    if (RN_UNLIKELY(atomic_load_explicit(&in->job->aborting, memory_order_relaxed))) return;
    atomic_fetch_add_explicit(&in->records_in, b->n, memory_order_relaxed);
    atomic_fetch_add_explicit(&in->batches_in, 1, memory_order_relaxed);
    int rc = in->node->type->process(&in->op, b, &in->em);
    rn__check_rc(in, rc, "process");
    rn__flush_ports(in);
}

/* Sends a control message on every outgoing channel of the task, after the
 * data pending for it (so it stays in order). */
static void rn__task_broadcast(struct rn_task *t, uint32_t kind, int64_t value)
{
    for (int i = 0; i < t->n_xchgs; i++) {
        struct rn_exchange *x = t->xchgs[i];
        for (uint32_t d = 0; d < x->n_dest; d++) {
            rn__exchange_flush_dest(x, d);
            struct rn_msg m = {kind, NULL, value};
            rn__channel_push(x->ch[d], &m);
        }
    }
    t->flushed_ns = rn_now_ns();
}

/* ---- event time ------------------------------------------------------------------ */

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
static void rn__task_advance(struct rn_task *t, int64_t wm)
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
static void rn__source_watermark(struct rn_task *t, int caught_up)
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
static void rn__consumer_watermark(struct rn_task *t)
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

/* ---- checkpoints ------------------------------------------------------------------ */

static void rn__task_notify(struct rn_task *t)
{
    uint64_t done = atomic_load_explicit(&t->job->completed_id, memory_order_acquire);
    if (done <= t->notified) return;
    t->notified = done;
    for (int i = 0; i < t->n_inst; i++) {
        struct rn_instance *in = t->inst[i];
        if (in->opened && in->node->type->notify_checkpoint_complete) {
            int rc = in->node->type->notify_checkpoint_complete(&in->op, done);
            rn__check_rc(in, rc, "notify_checkpoint_complete");
        }
    }
}

/* Acks the task's checkpoint once its state's background part is written
 * (wait: block until it is). */
static void rn__task_poll_state(struct rn_task *t, int wait)
{
    if (!t->ack_id) return;
    char err[512] = "";
    int rc = rn__statedb_checkpoint_poll(t->statedb, wait, err, sizeof err);
    if (rc == 0) return;
    if (rc < 0) fprintf(stderr, "runnel: checkpoint %llu: %s\n", (unsigned long long)t->ack_id, err);
    uint64_t id = t->ack_id;
    t->ack_id = 0;
    rn__ckpt_ack(t->job, id, &t->ack_stats, rc == 1);
}

/* Snapshots the task into checkpoint `id` and acks it (at once, or when the
 * background part of its state checkpoint is done). Runs on the task's
 * thread between records, so everything before the barrier is in and nothing
 * after it. */
static void rn__task_snapshot(struct rn_task *t, uint64_t id, int64_t align_ns)
{
    struct rn_job *job = t->job;
    rn__task_poll_state(t, 1);
    int64_t t0 = rn_now_ns();
    int ok = 1;
    char err[512] = "";
    char *dir = rn__ckpt_task_dir(job, id, t);
    if (!dir) {
        /* The coordinator gave this id up; the barrier still passes on. */
        t->last_ckpt = id;
        return;
    }
    struct rn_snapshot_writer *w = rn__snapshot_writer_create();
    rn_snapshot_write_i64(w, t->max_ts);
    rn_snapshot_write_i64(w, t->wm);
    rn_snapshot_write_i64(w, (int64_t)t->assigned);
    size_t pl = strlen(dir) + 512;
    char *path = rn_xmalloc(pl);
    snprintf(path, pl, "%s/runtime.bin", dir);
    if (rn__snapshot_writer_save(w, path, err, sizeof err)) ok = 0;
    rn__snapshot_writer_destroy(w);
    rn__ckpt_fault_task(job, id);
    for (int i = 0; i < t->n_inst && ok; i++) {
        struct rn_instance *in = t->inst[i];
        if (!in->node->type->snapshot) continue;
        w = rn__snapshot_writer_create();
        int rc = in->node->type->snapshot(&in->op, id, w);
        snprintf(path, pl, "%s/ops", dir);
        rn_fs_mkdirs(path, NULL, 0);
        snprintf(path, pl, "%s/ops/%s.bin", dir, in->node->id);
        if (rc < 0) {
            snprintf(err, sizeof err, "'%s' snapshot failed: %s", in->node->id, rn_strerror(rc));
            ok = 0;
        } else if (rn__snapshot_writer_save(w, path, err, sizeof err)) {
            ok = 0;
        }
        rn__snapshot_writer_destroy(w);
    }
    int deferred = 0;
    if (ok && t->statedb) {
        snprintf(path, pl, "%s/db", dir);
        if (rn__statedb_checkpoint_begin(t->statedb, path, err, sizeof err)) ok = 0;
        else deferred = 1;
    }
    if (!ok) fprintf(stderr, "runnel: checkpoint %llu: %s\n", (unsigned long long)id, err);
    free(path);
    free(dir);
    t->last_ckpt = id;
    struct rn_ckpt_stats st = {rn_now_ns() - t0, align_ns, 0};
    if (deferred) {
        t->ack_id = id;
        t->ack_stats = st;
    } else {
        rn__ckpt_ack(job, id, &st, ok);
    }
}

/* Source tasks: a checkpoint was requested; the barrier follows everything
 * this task emitted so far. */
static void rn__source_checkpoint(struct rn_task *t)
{
    uint64_t id = atomic_load_explicit(&t->trigger, memory_order_acquire);
    if (id <= t->last_ckpt) return;
    rn__task_broadcast(t, RN_MSG_BARRIER, (int64_t)id);
    rn__task_snapshot(t, id, 0);
}

/* Consumers: is every input either at barrier `id` or ended? */
static int rn__aligned(struct rn_task *t, uint64_t id)
{
    for (int k = 0; k < t->n_inputs; k++)
        if (!t->inputs[k]->ended && t->inputs[k]->blocked != id) return 0;
    return 1;
}

static void rn__consumer_complete_alignment(struct rn_task *t)
{
    uint64_t id = t->align_id;
    int64_t align_ns = rn_now_ns() - t->align_start_ns;
    rn__task_broadcast(t, RN_MSG_BARRIER, (int64_t)id);
    rn__task_snapshot(t, id, align_ns);
    for (int k = 0; k < t->n_inputs; k++) t->inputs[k]->blocked = 0;
    t->align_id = 0;
}

static void rn__consumer_barrier(struct rn_task *t, struct rn_channel *ch, uint64_t id)
{
    if (id <= t->last_ckpt) return; /* a stale barrier of a checkpoint given up */
    if (t->align_id == 0 || id > t->align_id) {
        for (int k = 0; k < t->n_inputs; k++) t->inputs[k]->blocked = 0;
        t->align_id = id;
        t->align_start_ns = rn_now_ns();
    }
    ch->blocked = id;
    if (rn__aligned(t, id)) rn__consumer_complete_alignment(t);
}

/* ---- the end of a task ---------------------------------------------------------- */

/* The end of the task: when its input was drained (bounded sources ran out),
 * event time goes to +inf so every timer fires; when the job was stopped it
 * does not, so that state and timers carry over to the restart. Then
 * finish() down the chain in order, and — with checkpoints — the final
 * snapshot; then END (saying which of the two) on every outgoing channel, and
 * (checkpoints) a wait for the final checkpoint to complete, so that sinks
 * commit on this thread. */
static void rn__task_finish(struct rn_task *t, int drained)
{
    struct rn_job *job = t->job;
    if (!atomic_load(&job->aborting) && drained) rn__task_advance(t, RN_TS_MAX);
    for (int i = 0; i < t->n_inst; i++) {
        struct rn_instance *in = t->inst[i];
        if (in->node->type->finish && !atomic_load(&job->aborting)) {
            int rc = in->node->type->finish(&in->op, &in->em);
            rn__check_rc(in, rc, "finish");
        }
        rn__flush_ports(in);
        in->finished = 1;
    }
    uint64_t final_id = 0;
    if (job->ckpt_enabled && !atomic_load(&job->aborting)) {
        final_id = rn__ckpt_final_id(job);
        rn__task_snapshot(t, final_id, 0);
        rn__task_poll_state(t, 1);
    }
    rn__task_flush_exchanges(t);
    for (int i = 0; i < t->n_xchgs; i++) {
        struct rn_exchange *x = t->xchgs[i];
        for (uint32_t d = 0; d < x->n_dest; d++) {
            struct rn_msg m = {RN_MSG_END, NULL, drained};
            rn__channel_push(x->ch[d], &m);
        }
    }
    if (final_id) {
        while (!atomic_load(&job->aborting) &&
               atomic_load_explicit(&job->completed_id, memory_order_acquire) < final_id) {
            uint32_t seen = atomic_load(&t->sig.seq);
            if (atomic_load_explicit(&job->completed_id, memory_order_acquire) >= final_id) break;
            rn__signal_wait(&t->sig, seen, RN_WAIT_NS);
        }
        rn__task_notify(t);
    }
    t->finished_ok = !atomic_load(&job->aborting);
}

static void rn__task_run_source(struct rn_task *t)
{
    struct rn_instance *head = t->inst[0];
    const struct rn_op_type *ty = head->node->type;
    struct rn_job *job = t->job;
    int drained = 0;
    t->last_data_ns = rn_now_ns();
    /* A restored split resumes its event time before any record. */
    if (t->max_ts != RN_TS_MIN && t->wm > RN_TS_MIN) rn__task_broadcast(t, RN_MSG_WATERMARK, t->wm);
    for (;;) {
        if (atomic_load_explicit(&job->aborting, memory_order_relaxed)) return;
        if (job->ckpt_enabled) {
            rn__source_checkpoint(t);
            rn__task_poll_state(t, 0);
            rn__task_notify(t);
        }
        if (atomic_load_explicit(&job->stopping, memory_order_relaxed)) break;
        int64_t t0 = rn_now_ns();
        uint32_t seen = atomic_load(&t->sig.seq);
        int rc = ty->poll(&head->op, &head->em);
        atomic_fetch_add_explicit(&head->busy_ns, (uint64_t)(rn_now_ns() - t0),
                                  memory_order_relaxed);
        if (rc < 0) {
            rn__check_rc(head, rc, "poll");
            return;
        }
        rn__flush_ports(head);
        rn__source_watermark(t, rc == RN_POLL_IDLE);
        if (rc == RN_POLL_END) {
            drained = 1;
            break;
        }
        if (rc == RN_POLL_IDLE) {
            rn__task_flush_exchanges(t);
            rn__signal_wait(&t->sig, seen, RN_WAIT_NS);
        } else {
            rn__task_maybe_flush(t);
        }
    }
    /* A checkpoint requested just before the end still gets its barrier. */
    if (job->ckpt_enabled) rn__source_checkpoint(t);
    rn__task_finish(t, drained);
}

static void rn__task_run_consumer(struct rn_task *t)
{
    int next = 0;
    struct rn_job *job = t->job;
    while (t->n_ended < t->n_inputs) {
        if (atomic_load_explicit(&job->aborting, memory_order_relaxed)) return;
        if (job->ckpt_enabled) {
            rn__task_poll_state(t, 0);
            rn__task_notify(t);
        }
        uint32_t seen = atomic_load(&t->sig.seq);
        int got = 0;
        for (int k = 0; k < t->n_inputs; k++) {
            struct rn_channel *ch = t->inputs[(next + k) % t->n_inputs];
            if (ch->ended) continue;
            struct rn_msg m;
            /* Drain a few messages per channel per round for fairness; an
             * input that delivered a barrier waits for the others. */
            for (int burst = 0; burst < 4 && !ch->blocked && rn__ring_pop(&ch->fwd, &m); burst++) {
                got = 1;
                rn__signal_notify(&ch->producer->sig);
                switch (m.kind) {
                case RN_MSG_DATA: {
                    struct rn_instance *in = t->inst[ch->target];
                    int64_t t0 = rn_now_ns();
                    rn__deliver(in, m.batch);
                    atomic_fetch_add_explicit(&in->busy_ns, (uint64_t)(rn_now_ns() - t0),
                                              memory_order_relaxed);
                    struct rn_msg back = {RN_MSG_DATA, m.batch, 0};
                    if (!rn__ring_push(&ch->back, &back)) rn_batch_destroy(m.batch);
                    break;
                }
                case RN_MSG_WATERMARK:
                    if (m.value > ch->wm) ch->wm = m.value;
                    rn__consumer_watermark(t);
                    break;
                case RN_MSG_IDLE:
                    ch->idle = (int)m.value;
                    rn__consumer_watermark(t);
                    break;
                case RN_MSG_BARRIER: rn__consumer_barrier(t, ch, (uint64_t)m.value); break;
                case RN_MSG_END:
                    ch->ended = 1;
                    t->n_ended++;
                    if (!m.value) t->stopped_input = 1;
                    if (t->align_id && rn__aligned(t, t->align_id))
                        rn__consumer_complete_alignment(t);
                    rn__consumer_watermark(t);
                    break;
                }
                if (ch->ended) break;
            }
        }
        next = (next + 1) % (t->n_inputs ? t->n_inputs : 1);
        if (!got) {
            rn__task_flush_exchanges(t);
            /* Pushing may have taken time in which input came. */
            if (atomic_load(&t->sig.seq) == seen) rn__signal_wait(&t->sig, seen, RN_WAIT_NS);
        } else {
            rn__task_maybe_flush(t);
        }
    }
    rn__task_finish(t, !t->stopped_input);
}

/* Key groups [start, end) owned by subtask s of p (the inverse of
 * rn_key_group_owner). */
static void rn__kg_range(uint32_t s, uint32_t p, uint32_t maxp, uint32_t *start, uint32_t *end)
{
    *start = (uint32_t)(((uint64_t)s * maxp + p - 1) / p);
    *end = (uint32_t)(((uint64_t)(s + 1) * maxp + p - 1) / p);
}

/* Opens the task's state and gives each instance its snapshot back. */
static int rn__task_restore(struct rn_task *t)
{
    struct rn_job *job = t->job;
    struct rn_group *g = &job->groups[t->group];
    const char *head = job->nodes[g->nodes[0]].id;
    struct rn_restore *r = job->restore;
    char err[1024] = "";
    int need_state = 0;
    for (int i = 0; i < t->n_inst; i++) {
        const struct rn_op_type *ty = t->inst[i]->node->type;
        if ((ty->flags & RN_OP_KEYED) && (ty->flags & RN_OP_STATEFUL)) need_state = 1;
    }
    const struct rn_restore_task *mine = NULL;
    for (size_t i = 0; r && i < r->n_tasks; i++)
        if (strcmp(r->tasks[i].head, head) == 0 && r->tasks[i].subtask == t->subtask)
            mine = &r->tasks[i];
    if (need_state) {
        struct rn_state_source *src = rn_xcalloc(r ? r->n_tasks + 1 : 1, sizeof *src);
        char **dirs = rn_xcalloc(r ? r->n_tasks + 1 : 1, sizeof *dirs);
        size_t n = 0;
        for (size_t i = 0; r && i < r->n_tasks; i++) {
            const struct rn_restore_task *rt = &r->tasks[i];
            if (strcmp(rt->head, head) != 0 || !rt->has_state) continue;
            if (rt->kg_end <= t->kg_start || rt->kg_start >= t->kg_end) continue;
            size_t dl = strlen(r->dir) + strlen(head) + 64;
            dirs[n] = rn_xmalloc(dl);
            snprintf(dirs[n], dl, "%s/tasks/%s-%u/db", r->dir, head, rt->subtask);
            src[n].dir = dirs[n];
            src[n].kg_start = rt->kg_start;
            src[n].kg_end = rt->kg_end;
            n++;
        }
        t->statedb = rn__statedb_open(&job->state, t->state_dir, t->kg_start, t->kg_end,
                                      job->max_parallelism, src, n, err, sizeof err);
        for (size_t i = 0; i < n; i++) free(dirs[i]);
        free(dirs);
        free(src);
        if (!t->statedb) {
            rn__job_set_error(job, "chain '%s' subtask %u: %s", head, t->subtask, err);
            return RN_ESTATE;
        }
        for (int i = 0; i < t->n_inst; i++) {
            struct rn_instance *in = t->inst[i];
            const struct rn_op_type *ty = in->node->type;
            if ((ty->flags & RN_OP_KEYED) && (ty->flags & RN_OP_STATEFUL)) {
                in->keyed = rn__op_state_create(t->statedb, in->node->id, job->max_parallelism);
                atomic_store_explicit(&in->keyed_pub, in->keyed, memory_order_release);
            }
        }
        atomic_store_explicit(&t->statedb_pub, t->statedb, memory_order_release);
    }
    if (!r) return 0;
    size_t pl = strlen(r->dir) + strlen(head) + 512;
    char *path = rn_xmalloc(pl);
    snprintf(path, pl, "%s/tasks/%s-%u/runtime.bin", r->dir, head, t->subtask);
    struct rn_snapshot_reader *rd =
        mine ? rn__snapshot_reader_open(path, r->id, err, sizeof err) : NULL;
    int rc = 0;
    if (rd) {
        int64_t max_ts, wm, assigned;
        if (rn_snapshot_read_i64(rd, &max_ts) == 0 && rn_snapshot_read_i64(rd, &wm) == 0 &&
            rn_snapshot_read_i64(rd, &assigned) == 0 && t->is_source) {
            t->max_ts = max_ts;
            t->wm = wm;
            t->assigned = (uint64_t)assigned;
        }
        rn__snapshot_reader_destroy(rd);
    }
    for (int i = 0; i < t->n_inst && rc == 0; i++) {
        struct rn_instance *in = t->inst[i];
        if (!in->node->type->restore) continue;
        /* The operator's bytes, wherever its chain was cut last time: its own
         * chain first, then any chain of the same subtask. */
        snprintf(path, pl, "%s/tasks/%s-%u/ops/%s.bin", r->dir, head, t->subtask, in->node->id);
        for (size_t k = 0; k < r->n_tasks && !rn_fs_exists(path); k++)
            if (r->tasks[k].subtask == t->subtask)
                snprintf(path, pl, "%s/tasks/%s-%u/ops/%s.bin", r->dir, r->tasks[k].head,
                         t->subtask, in->node->id);
        if (!rn_fs_exists(path)) continue;
        rd = rn__snapshot_reader_open(path, r->id, err, sizeof err);
        if (!rd) {
            rn__job_set_error(job, "restore of '%s': %s", in->node->id, err);
            rc = RN_ECORRUPT;
            break;
        }
        rc = in->node->type->restore(&in->op, rd);
        rn__snapshot_reader_destroy(rd);
        if (rc < 0) {
            rn__check_rc(in, rc, "restore");
            break;
        }
        in->restored = 1;
    }
    free(path);
    return rc;
}

static void *rn__task_main(void *arg)
{
    struct rn_task *t = arg;
    int ok = rn__task_restore(t) == 0;
    for (int i = 0; i < t->n_inst && ok; i++) {
        struct rn_instance *in = t->inst[i];
        in->opened = 1;
        if (in->node->type->open) {
            int rc = in->node->type->open(&in->op);
            if (rc < 0) {
                rn__check_rc(in, rc, "open");
                ok = 0;
                break;
            }
        }
    }
    if (ok) {
        if (t->inst[0]->node->kind == RN_KIND_SOURCE)
            rn__task_run_source(t);
        else
            rn__task_run_consumer(t);
    }
    for (int i = 0; i < t->n_inst; i++) {
        struct rn_instance *in = t->inst[i];
        if (in->opened && in->node->type->close) in->node->type->close(&in->op);
    }
    struct timespec cpu;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
        atomic_store(&t->cpu_ns, (int64_t)cpu.tv_sec * 1000000000 + cpu.tv_nsec);
    /* Wake everyone: a producer may wait for room we will never make. */
    for (int c = 0; c < t->job->n_channels; c++) {
        rn__signal_notify(&t->job->channels[c]->producer->sig);
        rn__signal_notify(&t->job->channels[c]->consumer->sig);
    }
    return NULL;
}

/* ---- planning ------------------------------------------------------------------ */

int rn__job_plan(struct rn_job *job, char *errbuf, size_t errlen)
{
    /* Nodes are in YAML order, which may not be topological; order by depth. */
    int order[RN_MAX_NODES], n_order = 0, placed[RN_MAX_NODES] = {0};
    while (n_order < job->n_nodes) {
        for (int i = 0; i < job->n_nodes; i++) {
            if (placed[i]) continue;
            int ready = 1;
            for (int e = 0; e < job->n_edges; e++)
                if (job->edges[e].to == i && !placed[job->edges[e].from]) ready = 0;
            if (ready) {
                placed[i] = 1;
                order[n_order++] = i;
            }
        }
    }
    job->groups = rn_xcalloc((size_t)job->n_nodes, sizeof *job->groups);
    for (int k = 0; k < n_order; k++) {
        struct rn_node *n = &job->nodes[order[k]];
        int fused = -1;
        if (n->n_in == 1) {
            for (int e = 0; e < job->n_edges; e++)
                if (job->edges[e].to == n->index && job->edges[e].mode == RN_EDGE_FORWARD)
                    fused = job->nodes[job->edges[e].from].group;
        }
        if (fused < 0) {
            fused = job->n_groups++;
            job->groups[fused].parallelism = n->parallelism;
            job->groups[fused].nodes = rn_xcalloc((size_t)job->n_nodes, sizeof(int));
        }
        struct rn_group *g = &job->groups[fused];
        g->nodes[g->n_nodes++] = n->index;
        n->group = fused;
    }
    (void)errbuf;
    (void)errlen;
    return 0;
}

static int rn__group_pos(const struct rn_group *g, int node)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i] == node) return i;
    return -1;
}

/* Builds tasks, instances, channels and exchanges for a run. */
static void rn__job_build(struct rn_job *job)
{
    for (int gi = 0; gi < job->n_groups; gi++) {
        struct rn_group *g = &job->groups[gi];
        g->tasks = rn_xcalloc(g->parallelism, sizeof *g->tasks);
        for (uint32_t s = 0; s < g->parallelism; s++) {
            struct rn_task *t = rn_xcalloc(1, sizeof *t);
            t->job = job;
            t->group = gi;
            t->subtask = s;
            t->wm = RN_TS_MIN;
            t->max_ts = RN_TS_MIN;
            t->is_source = job->nodes[g->nodes[0]].kind == RN_KIND_SOURCE;
            atomic_init(&t->wm_seen, RN_TS_MIN);
            rn__kg_range(s, g->parallelism, job->max_parallelism, &t->kg_start, &t->kg_end);
            if (job->state_root) {
                size_t dl = strlen(job->state_root) + strlen(job->name) + 300;
                t->state_dir = rn_xmalloc(dl);
                snprintf(t->state_dir, dl, "%s/%s/%s-%u", job->state_root, job->name,
                         job->nodes[g->nodes[0]].id, s);
            }
            rn__signal_init(&t->sig);
            t->n_inst = g->n_nodes;
            t->inst = rn_xcalloc((size_t)g->n_nodes, sizeof *t->inst);
            for (int k = 0; k < g->n_nodes; k++) {
                struct rn_node *n = &job->nodes[g->nodes[k]];
                struct rn_instance *in = rn_xcalloc(1, sizeof *in);
                in->op.inst = in;
                in->em.inst = in;
                in->node = n;
                in->task = t;
                in->job = job;
                in->wm = RN_TS_MIN;
                atomic_init(&in->wm_seen, RN_TS_MIN);
                in->n_ports = (int)n->type->n_outputs;
                in->ports = rn_xcalloc((size_t)(in->n_ports ? in->n_ports : 1), sizeof *in->ports);
                for (int p = 0; p < in->n_ports; p++) {
                    in->ports[p].type = n->out_types[p];
                    in->ports[p].batch = rn_batch_create(RN_BATCH_RECORDS);
                }
                while (n->type->metrics && n->type->metrics[in->n_metrics]) in->n_metrics++;
                in->metrics = rn_xcalloc((size_t)(in->n_metrics ? in->n_metrics : 1),
                                         sizeof *in->metrics);
                t->inst[k] = in;
            }
            g->tasks[s] = t;
        }
    }
    /* Edges become fused targets or exchanges. */
    for (int e = 0; e < job->n_edges; e++) {
        const struct rn_edge *ed = &job->edges[e];
        const struct rn_node *f = &job->nodes[ed->from], *to = &job->nodes[ed->to];
        struct rn_group *gf = &job->groups[f->group], *gt = &job->groups[to->group];
        int pf = rn__group_pos(gf, f->index), pt = rn__group_pos(gt, to->index);
        for (uint32_t s = 0; s < gf->parallelism; s++) {
            struct rn_instance *src = gf->tasks[s]->inst[pf];
            struct rn_port_out *po = &src->ports[ed->port];
            po->targets = rn_xrealloc(po->targets, sizeof *po->targets * (size_t)(po->n_targets + 1));
            struct rn_target *tg = &po->targets[po->n_targets++];
            memset(tg, 0, sizeof *tg);
            if (f->group == to->group) {
                tg->local = gt->tasks[s]->inst[pt];
                continue;
            }
            struct rn_exchange *x = rn_xcalloc(1, sizeof *x);
            x->mode = ed->mode;
            x->key_field = to->key_field;
            x->type = rn_type_get(to->in_type);
            x->max_parallelism = job->max_parallelism;
            /* FORWARD across groups (a multi-input head): pointwise. */
            x->n_dest = ed->mode == RN_EDGE_FORWARD ? 1 : gt->parallelism;
            x->ch = rn_xcalloc(x->n_dest, sizeof *x->ch);
            x->pending = rn_xcalloc(x->n_dest, sizeof *x->pending);
            for (uint32_t d = 0; d < x->n_dest; d++) {
                uint32_t dest = ed->mode == RN_EDGE_FORWARD ? s : d;
                struct rn_channel *ch = rn_xcalloc(1, sizeof *ch);
                rn__ring_init(&ch->fwd, job->channel_capacity);
                /* Room for every batch that can exist on this channel. */
                rn__ring_init(&ch->back, job->channel_capacity + 4);
                ch->capacity = job->channel_capacity;
                ch->wm = RN_TS_MIN;
                ch->producer = gf->tasks[s];
                ch->consumer = gt->tasks[dest];
                ch->target = pt;
                struct rn_task *ct = ch->consumer;
                ct->inputs = rn_xrealloc(ct->inputs, sizeof *ct->inputs * (size_t)(ct->n_inputs + 1));
                ct->inputs[ct->n_inputs++] = ch;
                job->channels = rn_xrealloc(job->channels,
                                            sizeof *job->channels * (size_t)(job->n_channels + 1));
                job->channels[job->n_channels++] = ch;
                x->ch[d] = ch;
                x->pending[d] = rn_batch_create(RN_BATCH_RECORDS);
            }
            tg->xchg = x;
            struct rn_task *pt_task = gf->tasks[s];
            pt_task->xchgs = rn_xrealloc(pt_task->xchgs,
                                         sizeof *pt_task->xchgs * (size_t)(pt_task->n_xchgs + 1));
            pt_task->xchgs[pt_task->n_xchgs++] = x;
        }
    }
}

void rn__job_destroy_exec(struct rn_job *job)
{
    for (int gi = 0; gi < job->n_groups; gi++) {
        struct rn_group *g = &job->groups[gi];
        for (uint32_t s = 0; g->tasks && s < g->parallelism; s++) {
            struct rn_task *t = g->tasks[s];
            for (int k = 0; k < t->n_inst; k++) {
                struct rn_instance *in = t->inst[k];
                for (int p = 0; p < in->n_ports; p++) {
                    for (int q = 0; q < in->ports[p].n_targets; q++) {
                        struct rn_exchange *x = in->ports[p].targets[q].xchg;
                        if (!x) continue;
                        for (uint32_t d = 0; d < x->n_dest; d++) rn_batch_destroy(x->pending[d]);
                        free(x->pending);
                        free(x->ch);
                        free(x);
                    }
                    free(in->ports[p].targets);
                    rn_batch_destroy(in->ports[p].batch);
                }
                free(in->ports);
                free((void *)in->metrics);
                rn__op_state_destroy(in->keyed);
                free(in);
            }
            free(t->inst);
            free(t->inputs);
            free(t->xchgs);
            rn__statedb_close(t->statedb);
            free(t->state_dir);
            rn__signal_destroy(&t->sig);
            free(t);
        }
        free(g->tasks);
        free(g->nodes);
    }
    free(job->groups);
    job->groups = NULL;
    for (int c = 0; c < job->n_channels; c++) {
        struct rn_channel *ch = job->channels[c];
        struct rn_msg m;
        while (rn__ring_pop(&ch->fwd, &m))
            if (m.batch) rn_batch_destroy(m.batch);
        while (rn__ring_pop(&ch->back, &m))
            if (m.batch) rn_batch_destroy(m.batch);
        free(ch->fwd.slots);
        free(ch->back.slots);
        free(ch);
    }
    free(job->channels);
    job->channels = NULL;
}

/* ---- figures ------------------------------------------------------------------ */

void rn__instance_totals(struct rn_job *job, int node, uint64_t *in, uint64_t *out,
                         uint64_t *dropped)
{
    *in = *out = 0;
    if (dropped) *dropped = 0;
    const struct rn_node *n = &job->nodes[node];
    struct rn_group *g = &job->groups[n->group];
    if (!g->tasks) return;
    int pos = rn__group_pos(g, node);
    for (uint32_t s = 0; s < g->parallelism; s++) {
        struct rn_instance *ins = g->tasks[s]->inst[pos];
        *in += atomic_load_explicit(&ins->records_in, memory_order_relaxed);
        if (ins->n_ports) *out += atomic_load_explicit(&ins->ports[0].records, memory_order_relaxed);
        for (int p = 0; dropped && p < ins->n_ports; p++)
            *dropped += atomic_load_explicit(&ins->ports[p].dropped, memory_order_relaxed);
    }
}

/* ---- running ------------------------------------------------------------------- */

static void rn__print_summary(struct rn_job *job)
{
    double secs = (double)(job->end_ns - job->start_ns) / 1e9;
    fprintf(stderr, "runnel: job '%s' %s in %.3f s\n", job->name,
            job->error[0] ? "failed" : "finished", secs);
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *n = &job->nodes[i];
        struct rn_group *g = &job->groups[n->group];
        int pos = rn__group_pos(g, i);
        uint64_t in, out, dropped;
        rn__instance_totals(job, i, &in, &out, &dropped);
        fprintf(stderr, "  %-16s in %10llu  out %10llu", n->id, (unsigned long long)in,
                (unsigned long long)out);
        for (int p = 1; p < (int)n->type->n_outputs; p++) {
            uint64_t v = 0;
            for (uint32_t s = 0; s < g->parallelism; s++)
                v += atomic_load(&g->tasks[s]->inst[pos]->ports[p].records);
            fprintf(stderr, "  %s %llu", n->type->outputs[p].name, (unsigned long long)v);
        }
        for (int m = 0; n->type->metrics && n->type->metrics[m]; m++) {
            uint64_t v = 0;
            for (uint32_t s = 0; s < g->parallelism; s++)
                v += atomic_load(&g->tasks[s]->inst[pos]->metrics[m]);
            fprintf(stderr, "  %s %llu", n->type->metrics[m], (unsigned long long)v);
        }
        if (dropped) fprintf(stderr, "  unrouted %llu", (unsigned long long)dropped);
        fputc('\n', stderr);
    }
    /* Per thread: records into its chain per CPU-second of that thread. */
    for (int gi = 0; gi < job->n_groups; gi++) {
        struct rn_group *g = &job->groups[gi];
        const struct rn_node *head = &job->nodes[g->nodes[0]];
        for (uint32_t s = 0; s < g->parallelism; s++) {
            struct rn_task *t = g->tasks[s];
            struct rn_instance *hi = t->inst[0];
            uint64_t recs = head->kind == RN_KIND_SOURCE ? atomic_load(&hi->ports[0].records)
                                                         : atomic_load(&hi->records_in);
            double cpu = (double)atomic_load(&t->cpu_ns) / 1e9;
            fprintf(stderr, "  thread chain=%d subtask=%u head=%s records=%llu cpu_s=%.3f "
                            "records_per_cpu_s=%.0f\n",
                    gi, s, head->id, (unsigned long long)recs, cpu, cpu > 0 ? (double)recs / cpu : 0);
        }
    }
}

int rn_job_run(struct rn_job *job, char *errbuf, size_t errlen)
{
    if (atomic_load(&job->running) || job->start_ns) {
        rn_errf(errbuf, errlen, "job '%s' was already run", job->name);
        return RN_EINVAL;
    }
    rn__job_build(job);
    if (job->ckpt_enabled) {
        if (rn__restore_find(job, &job->restore, errbuf, errlen)) return RN_EINVAL;
        if (job->restore && !job->quiet)
            fprintf(stderr, "runnel: restoring from %s (checkpoint %llu)\n", job->restore->dir,
                    (unsigned long long)job->restore->id);
    }
    job->rate_prev = rn_xcalloc((size_t)job->n_nodes, sizeof *job->rate_prev);
    job->rate = rn_xcalloc((size_t)job->n_nodes, sizeof *job->rate);
    job->start_ns = rn_now_ns();
    if (job->ckpt_enabled && rn__ckpt_start(job, errbuf, errlen)) return RN_EIO;
    /* From here on the status renderers may read the run's structures. */
    atomic_store_explicit(&job->built, 1, memory_order_release);
    atomic_store(&job->running, 1);
    if (job->http_listen) {
        job->http = rn_http_start(job->http_listen, rn__status_handler, job, errbuf, errlen);
        if (!job->http) {
            rn__ckpt_stop(job);
            atomic_store(&job->running, 0);
            return RN_EINVAL;
        }
        snprintf(job->http_addr, sizeof job->http_addr, "%s", rn_http_address(job->http));
        atomic_store_explicit(&job->http_ready, 1, memory_order_release);
        if (!job->quiet)
            fprintf(stderr, "runnel: status page at http://%s/\n", job->http_addr);
    }
    /* Worker threads must not take SIGINT/SIGTERM: the caller handles them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int started = 0, failed = 0;
    for (int gi = 0; gi < job->n_groups && !failed; gi++) {
        struct rn_group *g = &job->groups[gi];
        for (uint32_t s = 0; s < g->parallelism; s++) {
            struct rn_task *t = g->tasks[s];
            if (pthread_create(&t->thread, NULL, rn__task_main, t) != 0) {
                rn__job_set_error(job, "cannot start a worker thread");
                failed = 1;
                break;
            }
            t->started = 1;
            started++;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    for (int gi = 0; gi < job->n_groups; gi++) {
        struct rn_group *g = &job->groups[gi];
        for (uint32_t s = 0; s < g->parallelism; s++)
            if (g->tasks[s]->started) pthread_join(g->tasks[s]->thread, NULL);
    }
    job->end_ns = rn_now_ns();
    rn__ckpt_stop(job);
    atomic_store(&job->running, 0);
    if (!job->quiet) rn__print_summary(job);
    if (job->http && job->hold) {
        if (!job->quiet)
            fprintf(stderr, "runnel: job ended; status page stays up at http://%s/ until "
                            "SIGINT/SIGTERM\n", job->http_addr);
        while (!atomic_load(&job->stopping)) usleep(50000);
    }
    if (job->http) {
        rn_http_stop(job->http);
        job->http = NULL;
    }
    (void)started;
    if (job->error[0]) {
        rn_errf(errbuf, errlen, "%s", job->error);
        return RN_EIO;
    }
    return 0;
}

void rn_job_stop(struct rn_job *job)
{
    atomic_store(&job->stopping, 1);
}

const char *rn_job_http_address(struct rn_job *job)
{
    return atomic_load_explicit(&job->http_ready, memory_order_acquire) ? job->http_addr : "";
}
