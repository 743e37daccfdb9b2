/*
 * rn_channel_int.h — private to the engine: how tasks talk to each other.
 *
 *   signal    wakes a sleeping task (a condition variable with a sequence
 *             number, so a wake-up between "look" and "sleep" is not lost)
 *   channel   bounded SPSC ring of messages from one producer task to one
 *             consumer task, plus a ring back for emptied batches
 *   exchange  the producer side of a re-partitioned edge: one pending batch
 *             per destination channel
 *
 * Implemented in rn_channel.c. A channel's forward ring is written only by
 * its producer task and read only by its consumer task; the return ring the
 * other way round. The consumer-side fields (ended, idle, wm, blocked) belong
 * to the consumer task's thread.
 */
#ifndef RUNNEL_RN_CHANNEL_INT_H
#define RUNNEL_RN_CHANNEL_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "rn_job_int.h"

/* The longest a task sleeps before it looks at the job's flags again. */
#define RN_WAIT_NS (50 * 1000000L)

enum rn_msg_kind {
    RN_MSG_DATA = 0,      /* a batch of records */
    RN_MSG_WATERMARK = 1, /* value: event time no earlier record will have */
    RN_MSG_END = 2,       /* the producer is done */
    RN_MSG_IDLE = 3,      /* value 1: the producer is idle (ignore its watermark); 0: active */
    RN_MSG_BARRIER = 4,   /* value: checkpoint id */
};

struct rn_msg {
    uint32_t kind;
    struct rn_batch *batch; /* DATA: owned by the receiver until it returns it */
    int64_t value;
};

/* A bounded single-producer single-consumer ring. */
struct rn_ring {
    _Alignas(64) _Atomic uint32_t head; /* next slot to read; written by the consumer */
    _Alignas(64) _Atomic uint32_t tail; /* next slot to write; written by the producer */
    _Alignas(64) uint32_t mask;
    uint32_t limit; /* messages it may hold (<= mask + 1) */
    struct rn_msg *slots;
};

/* Wakes a sleeping task. seq counts notifications; a waiter sleeps only if seq
 * has not moved since it last looked at its inputs. */
struct rn_signal {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic uint32_t seq;
    _Atomic int waiting;
};

struct rn_task;

struct rn_channel {
    struct rn_ring fwd;  /* producer -> consumer: messages */
    struct rn_ring back; /* consumer -> producer: emptied batches for reuse */
    struct rn_task *producer, *consumer;
    int target;          /* index in the consumer group's node list */
    int input;           /* which input of that node it feeds */
    int ended;           /* consumer side: END seen */
    int idle;            /* consumer side: the producer said it is idle */
    int64_t wm;          /* consumer side: last watermark received */
    uint64_t blocked;    /* consumer side: barrier id it waits at (alignment), or 0 */
    _Atomic uint64_t blocked_ns; /* producer time spent waiting on a full ring */
    _Atomic uint64_t batches;
    uint32_t capacity;
};

struct rn_exchange {
    enum rn_edge_mode mode;
    int key_field;            /* HASH */
    const struct rn_type *type;
    uint32_t max_parallelism; /* HASH */
    uint32_t n_dest;
    struct rn_channel **ch;   /* n_dest */
    struct rn_batch **pending;
    uint32_t rr;              /* REBALANCE: next destination */
    /* BROADCAST: every record is copied into the pending batch of every
     * destination (no reference counting: batches are recycled per channel). */
};

/* ---- signals ---------------------------------------------------------------- */

void rn__signal_init(struct rn_signal *s);
void rn__signal_destroy(struct rn_signal *s);
/* Any thread: wakes the owner of s if it sleeps (and makes its next wait
 * return at once if it does not yet). */
void rn__signal_notify(struct rn_signal *s);
/* The owner's thread: sleeps until seq moves past `seen` or `ns` pass. */
void rn__signal_wait(struct rn_signal *s, uint32_t seen, long ns);

/* ---- channels ---------------------------------------------------------------- */

/* A channel from `producer` to `consumer` holding up to `capacity` batches;
 * owned by the caller (the job's channel list). */
struct rn_channel *rn__channel_create(struct rn_task *producer, struct rn_task *consumer,
                                      uint32_t capacity);
/* Frees the channel and every batch still on its rings. No thread may use it. */
void rn__channel_destroy(struct rn_channel *ch);
/* Producer thread: pushes m, waiting while the ring is full (counted as
 * backpressure). A DATA batch is owned by the consumer afterwards (also when
 * the job aborts: then it is freed and RN_ESTOP returned). */
int rn__channel_push(struct rn_channel *ch, const struct rn_msg *m);
/* Consumer thread: takes the next message; 0 when there is none. */
int rn__channel_pop(struct rn_channel *ch, struct rn_msg *m);
/* Consumer thread: hands a DATA batch back for reuse (taken). */
void rn__channel_recycle(struct rn_channel *ch, struct rn_batch *b);
struct rn_batch *rn__channel_fresh_batch(struct rn_channel *ch);
/* Messages queued on the forward ring (approximate from other threads). */
uint32_t rn__channel_fill(struct rn_channel *ch);

/* ---- exchanges ----------------------------------------------------------------- */

/* Producer thread: copies each record of b (borrowed) into the pending batch
 * of its destination, pushing batches that fill. */
void rn__exchange_send(struct rn_exchange *x, const struct rn_batch *b);
/* Producer thread: pushes destination d's pending batch if it has records. */
int rn__exchange_flush_dest(struct rn_exchange *x, uint32_t d);
/* Frees x and its pending batches (not its channels: the job owns those). */
void rn__exchange_destroy(struct rn_exchange *x);

/* Task thread: pushes every partly filled exchange batch of the task. */
void rn__task_flush_exchanges(struct rn_task *t);
/* The same, if buffer_timeout passed since the last flush. */
void rn__task_maybe_flush(struct rn_task *t);
/* Sends a control message on every outgoing channel of the task, after the
 * data pending for it (so it stays in order). */
void rn__task_broadcast(struct rn_task *t, uint32_t kind, int64_t value);

#endif
