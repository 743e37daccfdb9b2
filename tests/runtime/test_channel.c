/*
 * test_channel.c — the channel between two tasks (runtime/rn_channel.c) under
 * contention, on real threads; CI runs it under ThreadSanitizer too.
 *
 *   order      a producer pushes 60,000 messages (watermarks and data
 *              batches) through a 4-slot ring while the consumer pops them:
 *              every one arrives once, in order, with its batch intact; the
 *              producer blocks on the full ring and the consumer sleeps on
 *              the empty one, and each wakes the other
 *   recycling  emptied batches travel back and are reused: the producer
 *              creates no more batches than can be in flight
 *   wrap       the same with the ring's 32-bit indices starting just below
 *              their wrap-around
 *   abort      a producer blocked on a ring nobody drains returns RN_ESTOP
 *              soon after the job starts aborting, and frees its batch
 */
#include "rn_test.h"

#include "rn_channel_int.h"
#include "rn_exec_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

enum { N_MSGS = 60000, CAPACITY = 4 };

struct pair {
    struct rn_job job;
    struct rn_task producer, consumer;
    struct rn_channel *ch;
    long created; /* distinct batches the producer used (producer thread) */
    struct rn_batch *seen[64];
    long received; /* messages the consumer saw (consumer thread) */
    long bad;      /* out of order, wrong kind or a damaged batch */
};

static void pair_init(struct pair *p, uint32_t start_index)
{
    memset(p, 0, sizeof *p);
    atomic_init(&p->job.aborting, 0);
    p->producer.job = p->consumer.job = &p->job;
    rn__signal_init(&p->producer.sig);
    rn__signal_init(&p->consumer.sig);
    p->ch = rn__channel_create(&p->producer, &p->consumer, CAPACITY);
    atomic_store(&p->ch->fwd.head, start_index);
    atomic_store(&p->ch->fwd.tail, start_index);
    atomic_store(&p->ch->back.head, start_index);
    atomic_store(&p->ch->back.tail, start_index);
}

static void pair_destroy(struct pair *p)
{
    rn__channel_destroy(p->ch);
    rn__signal_destroy(&p->producer.sig);
    rn__signal_destroy(&p->consumer.sig);
}

/* Every third message is a data batch whose one record carries i; the others
 * are watermarks with value i; the last is END. */
static void *producer_main(void *arg)
{
    struct pair *p = arg;
    for (int64_t i = 0; i < N_MSGS; i++) {
        struct rn_msg m = {RN_MSG_WATERMARK, NULL, i};
        if (i % 3 == 0) {
            /* A batch the consumer gave back, else a new one. */
            struct rn_batch *b = rn__channel_fresh_batch(p->ch);
            int known = 0;
            for (int k = 0; k < p->created && !known; k++)
                known = p->seen[k] == b;
            if (!known && p->created < (long)RN_ARRAY_LEN(p->seen)) p->seen[p->created++] = b;
            if (b->n != 0) p->bad++; /* it must come back empty */
            int64_t *v = rn_batch_add(b, 0, i, (uint64_t)i, sizeof *v);
            *v = i;
            m = (struct rn_msg){RN_MSG_DATA, b, i};
        }
        if (rn__channel_push(p->ch, &m) != 0) return NULL;
    }
    struct rn_msg end = {RN_MSG_END, NULL, 0};
    rn__channel_push(p->ch, &end);
    return NULL;
}

static void *consumer_main(void *arg)
{
    struct pair *p = arg;
    int64_t next = 0;
    for (;;) {
        uint32_t seen = atomic_load(&p->consumer.sig.seq);
        struct rn_msg m;
        if (!rn__channel_pop(p->ch, &m)) {
            rn__signal_wait(&p->consumer.sig, seen, RN_WAIT_NS);
            continue;
        }
        if (m.kind == RN_MSG_END) break;
        p->received++;
        if (m.value != next) p->bad++;
        if (m.kind == RN_MSG_DATA) {
            if (next % 3 != 0 || !m.batch || m.batch->n != 1 ||
                *(const int64_t *)m.batch->recs[0].payload != next || m.batch->recs[0].ts != next)
                p->bad++;
            if (m.batch) rn__channel_recycle(p->ch, m.batch);
        } else if (m.kind != RN_MSG_WATERMARK || next % 3 == 0) {
            p->bad++;
        }
        next = m.value + 1;
    }
    return NULL;
}

static void run_pair(uint32_t start_index, const char *label)
{
    struct pair p;
    pair_init(&p, start_index);
    pthread_t prod, cons;
    int64_t t0 = rn_now_ns();
    CHECK_EQ_INT(pthread_create(&cons, NULL, consumer_main, &p), 0);
    CHECK_EQ_INT(pthread_create(&prod, NULL, producer_main, &p), 0);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    double secs = (double)(rn_now_ns() - t0) / 1e9;
    printf("%s: %ld messages in %.2f s, %ld batches created, producer blocked %.1f ms\n", label,
           p.received, secs, p.created, (double)atomic_load(&p.ch->blocked_ns) / 1e6);
    CHECK_EQ_INT(p.received, N_MSGS);
    CHECK_EQ_INT(p.bad, 0);
    CHECK_EQ_INT(atomic_load(&p.ch->batches), (N_MSGS + 2) / 3);
    /* In flight at most: CAPACITY in the ring, CAPACITY + 4 on the way back,
     * one at the consumer and one being filled. */
    CHECK(p.created >= 1 && p.created <= 2 * CAPACITY + 6);
    CHECK(p.created < (long)RN_ARRAY_LEN(p.seen));
    pair_destroy(&p);
}

struct blocked {
    struct pair *p;
    int rc;
    int64_t returned_ns;
};

static void *blocked_main(void *arg)
{
    struct blocked *b = arg;
    for (int i = 0;; i++) {
        struct rn_msg m = {RN_MSG_DATA, rn_batch_create(4), i};
        b->rc = rn__channel_push(b->p->ch, &m);
        if (b->rc != 0) break;
    }
    b->returned_ns = rn_now_ns();
    return NULL;
}

static void test_abort(void)
{
    struct pair p;
    pair_init(&p, 0);
    struct blocked b = {&p, 0, 0};
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, blocked_main, &b), 0);
    /* The ring fills at once; then the producer waits for room. */
    int64_t deadline = rn_now_ns() + 5000000000LL;
    while (rn__channel_fill(p.ch) < CAPACITY && rn_now_ns() < deadline)
        usleep(1000);
    CHECK_EQ_INT(rn__channel_fill(p.ch), CAPACITY);
    int64_t t0 = rn_now_ns();
    atomic_store(&p.job.aborting, 1);
    pthread_join(th, NULL);
    CHECK_EQ_INT(b.rc, RN_ESTOP);
    /* It looks at the flag at least every RN_WAIT_NS (50 ms). */
    CHECK(b.returned_ns - t0 < 2000000000LL);
    CHECK_EQ_INT(rn__channel_fill(p.ch), CAPACITY); /* nothing more went in */
    pair_destroy(&p); /* frees the batches still in the ring (ASan: no leak) */
}

int main(void)
{
    run_pair(0, "from 0");
    run_pair(UINT32_MAX - 2 * N_MSGS / 3, "across the index wrap");
    test_abort();
    return rn_test_summary();
}
