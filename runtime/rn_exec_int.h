/*
 * rn_exec_int.h — private to the engine: what a running job is made of.
 *
 *   task       one thread running one subtask of a chain (group): its
 *              instances, its input channels, the exchanges it feeds, its
 *              event time and its part of checkpoints
 *   instance   one node of the chain in one task: what an operator's
 *              callbacks see as `struct rn_op` (the first member)
 *   port_out   an instance's output port: the pending batch and where it goes
 *              (a fused instance of the same task, or an exchange)
 *
 * The files that run a job share these: rn_plan.c builds them, rn_exec.c runs
 * the task loops, rn_time.c moves event time and processing-time timers,
 * rn_barrier.c snapshots and restores a task, rn_op.c is the operator-facing
 * API. rn_status.c and rn_checkpoint.c read their atomic figures from other
 * threads. Every non-atomic field belongs to the task's own thread once the
 * job runs.
 */
#ifndef RUNNEL_RN_EXEC_INT_H
#define RUNNEL_RN_EXEC_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "rn_channel_int.h"
#include "rn_checkpoint_int.h"
#include "rn_job_int.h"
#include "rn_operator.h"
#include "rn_state_int.h"

struct rn_instance;

struct rn_target {
    int input;                 /* fused: the input of `local` it feeds */
    struct rn_instance *local; /* fused: call directly */
    struct rn_exchange *xchg;  /* across threads */
};

struct rn_port_out {
    int type;
    struct rn_batch *batch; /* pending output; reused */
    struct rn_target *targets;
    int n_targets;
    _Atomic uint64_t records;
    _Atomic uint64_t dropped; /* emitted to a port routed nowhere */
};

struct rn_emitter {
    struct rn_instance *inst;
};

struct rn_op {
    struct rn_instance *inst;
};

struct rn_instance {
    struct rn_op op; /* what callbacks see; first member */
    struct rn_emitter em;
    struct rn_node *node;
    struct rn_task *task;
    struct rn_job *job;
    void *local;
    struct rn_port_out *ports;
    int n_ports;
    _Atomic uint64_t records_in;
    _Atomic uint64_t batches_in;
    _Atomic uint64_t busy_ns;
    _Atomic uint64_t *metrics; /* the type's own counters */
    int n_metrics;
    int cur_input;               /* during process(): the batch's input; else -1 */
    int opened;
    int needs_close;             /* open() or restore() was attempted: close() runs */
    int finished;
    int restored;                /* restore() ran with a snapshot */
    struct rn_op_state *keyed;   /* keyed state and timers, for stateful keyed operators */
    struct rn_op_state *_Atomic keyed_pub; /* the same, for the status page (release) */
    int64_t wm;                  /* the watermark it was last given */
    _Atomic int64_t wm_seen;     /* the same, for the status page */
    _Atomic uint64_t late;       /* records behind its watermark (operators count) */
    int64_t *pt_heap;            /* processing-time timers: min-heap of deadlines (mono ns) */
    int pt_n, pt_cap;
};

/* Event time of one split of a source that reads several (Kafka partitions). */
struct rn_split_time {
    int64_t max_ts;       /* largest event time of the split's records */
    int64_t last_data_ns; /* when the split last had records */
};

struct rn_task {
    struct rn_job *job;
    int group;
    uint32_t subtask;
    pthread_t thread;
    int started;
    struct rn_instance **inst; /* per node of the group, in group order */
    int n_inst;
    struct rn_channel **inputs;
    int n_inputs;
    int n_ended;
    struct rn_signal sig;
    int rc;
    _Atomic int64_t cpu_ns; /* thread CPU time, set when the thread ends */
    struct rn_exchange **xchgs; /* every exchange this task feeds */
    int n_xchgs;
    int64_t flushed_ns;         /* when pending exchange batches were last pushed */

    /* Event time. */
    int64_t wm;                 /* watermark last forwarded */
    int idle;                   /* told downstream that it is idle */
    int is_source;              /* the chain starts with a source */
    int64_t max_ts;             /* sources: largest event time seen */
    uint64_t assigned;          /* sources: records given event time so far */
    int64_t last_data_ns;       /* sources: when records last came */
    struct rn_split_time *splits; /* sources with several splits (rn_op_source_split) */
    int n_splits;
    int cur_split;              /* split of the records being emitted */
    int64_t pt_next_ns;         /* earliest processing-time timer of the chain, or INT64_MAX */
    _Atomic int64_t wm_seen;    /* for the status page */
    _Atomic int idle_seen;

    /* Checkpoints. */
    struct rn_statedb *statedb; /* when the chain has stateful keyed operators */
    struct rn_statedb *_Atomic statedb_pub; /* the same, for other threads (release) */
    char *state_dir;
    uint32_t kg_start, kg_end;  /* key groups this subtask owns */
    _Atomic uint64_t trigger;   /* sources: checkpoint requested */
    uint64_t last_ckpt;         /* last checkpoint id snapshotted */
    uint64_t notified;          /* last completed id passed to notify callbacks */
    uint64_t align_id;          /* consumers: the barrier being aligned */
    int n_aligned;
    int64_t align_start_ns;
    int finished_ok;            /* ran to its end without error */
    int stopped_input;          /* an input ended because the job was stopped */
    uint64_t ack_id;            /* checkpoint whose state is still being written */
    struct rn_ckpt_stats ack_stats;
};

/* ---- rn_exec.c: delivery ------------------------------------------------------- */

/* Task thread: runs in's process() on b (borrowed), which came from input
 * `input` of the instance, then flushes its ports. */
void rn__deliver(struct rn_instance *in, int input, const struct rn_batch *b);
/* Task thread: hands every pending output of `in` to its targets. */
void rn__flush_ports(struct rn_instance *in);
/* Hands b (borrowed) to every target of port po. */
void rn__send_batch(struct rn_instance *in, struct rn_port_out *po, const struct rn_batch *b);
/* Records a callback's failure (rc < 0) as the job's error. */
void rn__check_rc(struct rn_instance *in, int rc, const char *what);

/* ---- rn_time.c: event time ------------------------------------------------------ */

/* Source tasks: sends b with the split's watermarks cut into it. */
void rn__send_with_watermarks(struct rn_instance *in, struct rn_port_out *po, struct rn_batch *b);
/* The task's event time moved to wm: down the chain, then downstream. */
void rn__task_advance(struct rn_task *t, int64_t wm);
/* Source tasks, after each poll: idleness and the split's watermark. */
void rn__source_watermark(struct rn_task *t, int caught_up);
/* Sources with splits: the largest event time all active splits reached
 * (now: rn_now_ns(), or 0 to read the clock). */
int64_t rn__splits_max_ts(struct rn_task *t, int64_t now);
/* Consumers: recomputes the watermark over the inputs. */
void rn__consumer_watermark(struct rn_task *t);
/* Fires the chain's processing-time timers that are due (task thread). */
void rn__task_fire_timers(struct rn_task *t);
/* How long the task may sleep: at most max_ns, less if a timer is due sooner. */
long rn__task_wait_ns(const struct rn_task *t, long max_ns);

/* ---- rn_barrier.c: the task side of checkpoints --------------------------------- */

/* Passes a completed checkpoint on to notify_checkpoint_complete. */
void rn__task_notify(struct rn_task *t);
/* Acks the pending checkpoint once the state's background part is written. */
void rn__task_poll_state(struct rn_task *t, int wait);
/* Snapshots the task into checkpoint id and acks it. */
void rn__task_snapshot(struct rn_task *t, uint64_t id, int64_t align_ns);
/* Source tasks: emits the barrier of a requested checkpoint and snapshots. */
void rn__source_checkpoint(struct rn_task *t);
/* Consumers: a barrier arrived on ch. */
void rn__consumer_barrier(struct rn_task *t, struct rn_channel *ch, uint64_t id);
/* Consumers: an input ended; completes an alignment it was holding up. */
void rn__consumer_input_ended(struct rn_task *t);
/* Task thread, before open(): opens the task's state and restores it. */
int rn__task_restore(struct rn_task *t);

/* ---- rn_plan.c ------------------------------------------------------------------- */

/* Builds tasks, instances, channels and exchanges for a run. */
void rn__job_build(struct rn_job *job);
/* The position of node in group g's node list, or -1. */
int rn__group_pos(const struct rn_group *g, int node);

#endif
