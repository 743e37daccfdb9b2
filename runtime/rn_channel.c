/*
 * rn_channel.c — how tasks talk: signals, rings, channels and exchanges.
 *
 * A channel is a single-producer single-consumer ring of messages (batches
 * and control messages: watermark, idle, barrier, end) from one task to
 * another, with a second ring going back that returns emptied batches, so
 * batches (and their arenas) are recycled and the steady state allocates
 * nothing.
 *
 * Exchanges. Where a stream is re-keyed (HASH: key group -> owner subtask, as
 * Flink assigns key-group ranges), gathered or rebalanced, the producer copies
 * each record into a per-destination batch and, when that fills, pushes the
 * batch through that destination's channel. Partly filled batches are pushed
 * when the task goes idle and at least every buffer_timeout.
 *
 * Blocking. A consumer with nothing to read sleeps on its task's signal; a
 * producer facing a full ring sleeps on its own (the time is counted as
 * backpressure). Pushing or popping bumps the other side's signal. Waits are
 * bounded (RN_WAIT_NS) so a stop request is always seen.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rn_exec_int.h"

/* ---- signals --------------------------------------------------------------- */

void rn__signal_init(struct rn_signal *s)
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

void rn__signal_destroy(struct rn_signal *s)
{
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

void rn__signal_notify(struct rn_signal *s)
{
    atomic_fetch_add(&s->seq, 1);
    if (atomic_load(&s->waiting)) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

void rn__signal_wait(struct rn_signal *s, uint32_t seen, long ns)
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

/* ---- channels ---------------------------------------------------------------- */

struct rn_channel *rn__channel_create(struct rn_task *producer, struct rn_task *consumer,
                                      uint32_t capacity)
{
    struct rn_channel *ch = rn_xcalloc(1, sizeof *ch);
    rn__ring_init(&ch->fwd, capacity);
    /* Room for every batch that can exist on this channel. */
    rn__ring_init(&ch->back, capacity + 4);
    ch->capacity = capacity;
    ch->wm = RN_TS_MIN;
    ch->producer = producer;
    ch->consumer = consumer;
    return ch;
}

void rn__channel_destroy(struct rn_channel *ch)
{
    if (!ch) return;
    struct rn_msg m;
    while (rn__ring_pop(&ch->fwd, &m))
        if (m.batch) rn_batch_destroy(m.batch);
    while (rn__ring_pop(&ch->back, &m))
        if (m.batch) rn_batch_destroy(m.batch);
    free(ch->fwd.slots);
    free(ch->back.slots);
    free(ch);
}

int rn__channel_pop(struct rn_channel *ch, struct rn_msg *m)
{
    if (!rn__ring_pop(&ch->fwd, m)) return 0;
    /* The producer may be waiting for room. */
    rn__signal_notify(&ch->producer->sig);
    return 1;
}

void rn__channel_recycle(struct rn_channel *ch, struct rn_batch *b)
{
    struct rn_msg back = {RN_MSG_DATA, b, 0};
    if (!rn__ring_push(&ch->back, &back)) rn_batch_destroy(b);
}

int rn__channel_push(struct rn_channel *ch, const struct rn_msg *m)
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

/* Producer side: an emptied batch back from the consumer, cleared, or a new
 * one; the caller owns it until it pushes it. */
struct rn_batch *rn__channel_fresh_batch(struct rn_channel *ch)
{
    struct rn_msg m;
    if (rn__ring_pop(&ch->back, &m)) {
        rn_batch_clear(m.batch);
        return m.batch;
    }
    return rn_batch_create(RN_BATCH_RECORDS);
}

int rn__exchange_flush_dest(struct rn_exchange *x, uint32_t d)
{
    struct rn_batch *b = x->pending[d];
    if (!b || b->n == 0) return 0;
    x->pending[d] = rn__channel_fresh_batch(x->ch[d]);
    struct rn_msg m = {RN_MSG_DATA, b, 0};
    return rn__channel_push(x->ch[d], &m);
}

void rn__exchange_destroy(struct rn_exchange *x)
{
    if (!x) return;
    for (uint32_t d = 0; d < x->n_dest; d++) rn_batch_destroy(x->pending[d]);
    free(x->pending);
    free(x->ch);
    free(x);
}

void rn__exchange_send(struct rn_exchange *x, const struct rn_batch *b)
{
    /* Rebalance: whole batches, round robin over the destinations. */
    uint32_t rr = x->rr;
    if (x->mode == RN_EDGE_REBALANCE) x->rr = (x->rr + 1) % x->n_dest;
    if (x->mode == RN_EDGE_BROADCAST) {
        for (uint32_t i = 0; i < b->n; i++) {
            const struct rn_record *r = &b->recs[i];
            for (uint32_t d = 0; d < x->n_dest; d++) {
                struct rn_batch *pb = x->pending[d];
                void *p = rn_batch_add(pb, r->type, r->ts, r->key, r->len);
                memcpy(p, r->payload, r->len);
                pb->recs[pb->n - 1].flags = r->flags;
                if (rn_batch_full(pb)) rn__exchange_flush_dest(x, d);
            }
        }
        return;
    }
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
void rn__task_flush_exchanges(struct rn_task *t)
{
    for (int i = 0; i < t->n_xchgs; i++)
        for (uint32_t d = 0; d < t->xchgs[i]->n_dest; d++) rn__exchange_flush_dest(t->xchgs[i], d);
    t->flushed_ns = rn_now_ns();
}

void rn__task_maybe_flush(struct rn_task *t)
{
    if (t->n_xchgs && rn_now_ns() - t->flushed_ns >= t->job->buffer_timeout_ns)
        rn__task_flush_exchanges(t);
}

void rn__task_broadcast(struct rn_task *t, uint32_t kind, int64_t value)
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
