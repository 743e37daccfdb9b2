/*
 * rn_job_int.h — private structures of a job: the checked graph (nodes and
 * edges), the execution plan (groups of fused nodes, one task per subtask),
 * instances, channels and exchanges. See docs/architecture.md.
 *
 *   graph   node = one source/operator/sink from YAML; edge = from -> to, with
 *           a partitioning mode fixed at load time.
 *   plan    group = nodes fused along FORWARD edges into one chain, run by
 *           `parallelism` tasks (threads); a group's head takes input from
 *           channels (or is a source).
 *   run     instance = one node in one task; channel = bounded SPSC ring from
 *           one producer task to one consumer task.
 */
#ifndef RUNNEL_RN_JOB_INT_H
#define RUNNEL_RN_JOB_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "rn_checkpoint.h"
#include "rn_config.h"
#include "rn_http.h"
#include "rn_job.h"
#include "rn_operator.h"
#include "rn_state_int.h"

enum rn_edge_mode {
    RN_EDGE_FORWARD = 0,   /* subtask i -> subtask i (fused when possible) */
    RN_EDGE_HASH = 1,      /* by key group of the key field */
    RN_EDGE_GATHER = 2,    /* every subtask -> subtask 0 */
    RN_EDGE_REBALANCE = 3, /* subtask i -> subtask i mod n */
};

struct rn_edge {
    int from, port, to;
    enum rn_edge_mode mode;
    const struct rn_cfg_node *where; /* the YAML that made it, for messages */
};

struct rn_node {
    int index;
    const char *id;
    enum rn_op_kind kind;
    const struct rn_op_type *type;
    const struct rn_cfg_node *cfg;
    int id_line, id_col; /* where the id is written */
    void *ctx;       /* config context, filled by the type's table */
    int ctx_inited;  /* init() ran: fini() is owed */
    int in_type;     /* record type id of the input (-1: source) */
    int *out_types;  /* per port */
    uint32_t parallelism;
    int key_field;   /* keyed operators: field index into the input type */
    const char *key_name;
    int group;
    int source_index;
    int n_in;        /* edges into this node */
};

/* ---- channels ---------------------------------------------------------------- */

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
    int ended;           /* consumer side: END seen */
    int idle;            /* consumer side: the producer said it is idle */
    int64_t wm;          /* consumer side: last watermark received */
    uint64_t blocked;    /* consumer side: barrier id it waits at (alignment), or 0 */
    _Atomic uint64_t blocked_ns; /* producer time spent waiting on a full ring */
    _Atomic uint64_t batches;
    uint32_t capacity;
};

/* ---- instances ---------------------------------------------------------------- */

struct rn_instance;

struct rn_exchange {
    enum rn_edge_mode mode;
    int key_field;            /* HASH */
    const struct rn_type *type;
    uint32_t max_parallelism; /* HASH */
    uint32_t n_dest;
    struct rn_channel **ch;   /* n_dest */
    struct rn_batch **pending;
    uint32_t rr;              /* REBALANCE: next destination */
};

struct rn_target {
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
    int opened;
    int finished;
    int restored;                /* restore() ran with a snapshot */
    struct rn_op_state *keyed;   /* keyed state and timers, for stateful keyed operators */
    struct rn_op_state *_Atomic keyed_pub; /* the same, for the status page (release) */
    int64_t wm;                  /* the watermark it was last given */
    _Atomic int64_t wm_seen;     /* the same, for the status page */
    _Atomic uint64_t late;       /* records behind its watermark (operators count) */
};

struct rn_ckpt_stats {
    int64_t sync_ns;  /* time the task spent snapshotting */
    int64_t align_ns; /* time from the first barrier to the last (consumers) */
    uint64_t bytes;   /* bytes the task's snapshot added */
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

struct rn_group {
    int *nodes; /* node indices, head first, topological order */
    int n_nodes;
    uint32_t parallelism;
    struct rn_task **tasks;
};

/* ---- the job ------------------------------------------------------------------ */

#define RN_MAX_NODES 256

struct rn_job {
    struct rn_cfg_doc *doc;
    const char *name;
    uint32_t parallelism;
    uint32_t max_parallelism;
    const char *http_listen;
    uint32_t channel_capacity; /* batches per channel */
    int64_t buffer_timeout_ns; /* longest a partly filled batch waits for more */
    int quiet;
    int hold;

    struct rn_node *nodes;
    int n_nodes;
    struct rn_edge *edges;
    int n_edges;
    int n_sources;

    struct rn_group *groups;
    int n_groups;
    struct rn_channel **channels;
    int n_channels;

    _Atomic int stopping; /* drain and end */
    _Atomic int aborting; /* an error: end now */
    _Atomic int running;
    _Atomic int built;    /* tasks, channels and rate arrays exist (release/acquire) */
    int64_t start_ns;
    int64_t end_ns;
    pthread_mutex_t err_mu;
    char error[512];

    struct rn_http_server *http;
    char http_addr[128];
    _Atomic int http_ready; /* http_addr is set (release/acquire) */

    /* Event time, state and checkpoints (configured by watermark:, state:,
     * checkpoint:). */
    int64_t out_of_orderness_ms;
    int64_t idle_timeout_ms;
    uint64_t emit_every;        /* records of a split between watermarks */
    struct rn_state_cfg state;
    const char *state_root;      /* state.dir */
    int ckpt_enabled;
    const char *ckpt_root;       /* checkpoint.dir */
    char *ckpt_dir;              /* <checkpoint.dir>/<job> */
    int64_t ckpt_interval_ms;
    int64_t ckpt_retain;
    int64_t ckpt_timeout_ms;
    const char *from_checkpoint; /* --from-checkpoint */
    int fresh;                   /* --fresh: ignore checkpoints, start empty */
    struct rn_ckpt_coord *coord;
    struct rn_restore *restore;  /* what this run restores from, or NULL */
    _Atomic uint64_t completed_id; /* latest completed checkpoint */
    _Atomic uint64_t final_id;     /* the end-of-job checkpoint, once reserved */

    pthread_mutex_t rate_mu; /* guards the rate sampler (HTTP thread) */
    int64_t rate_at_ns;
    uint64_t *rate_prev;  /* per node: records in at rate_at_ns */
    double *rate;         /* per node: records/s over the last interval */
};

/* rn_exec.c */
int rn__job_plan(struct rn_job *job, char *errbuf, size_t errlen);
void rn__job_set_error(struct rn_job *job, const char *fmt, ...) RN_PRINTF(2, 3);
uint32_t rn__channel_fill(struct rn_channel *ch);
void rn__instance_totals(struct rn_job *job, int node, uint64_t *in, uint64_t *out,
                         uint64_t *dropped);

/* rn_checkpoint.c */
int rn__ckpt_start(struct rn_job *job, char *errbuf, size_t errlen);
void rn__ckpt_stop(struct rn_job *job);
void rn__ckpt_free(struct rn_job *job);
/* Requests a checkpoint (savepoint: kept until deleted). Returns its id or < 0. */
int64_t rn__ckpt_request(struct rn_job *job, int savepoint);
/* Task side: the directory for task t's part of checkpoint id (created). */
char *rn__ckpt_task_dir(struct rn_job *job, uint64_t id, struct rn_task *t);
void rn__ckpt_ack(struct rn_job *job, uint64_t id, const struct rn_ckpt_stats *st, int ok);
/* Reserves (once) the id of the end-of-job checkpoint. */
uint64_t rn__ckpt_final_id(struct rn_job *job);
void rn__ckpt_fault_task(struct rn_job *job, uint64_t id);
void rn__ckpt_render_json(struct rn_job *job, struct rn_buf *b);
void rn__ckpt_render_prometheus(struct rn_job *job, struct rn_buf *b);
void rn__ckpt_render_html(struct rn_job *job, struct rn_buf *b);

/* Restore: the checkpoint this run starts from. */
struct rn_restore_task {
    char *head;
    uint32_t subtask;
    uint32_t kg_start, kg_end;
    int has_state;
};
struct rn_restore {
    char *dir; /* the checkpoint directory */
    uint64_t id;
    uint32_t max_parallelism;
    struct rn_restore_task *tasks;
    size_t n_tasks;
};
/* Finds the checkpoint to restore (--from-checkpoint or the latest complete
 * one); 0 with *out NULL when there is none. */
int rn__restore_find(struct rn_job *job, struct rn_restore **out, char *errbuf, size_t errlen);
void rn__restore_free(struct rn_restore *r);
/* Snapshot files. */
struct rn_snapshot_writer *rn__snapshot_writer_create(void);
int rn__snapshot_writer_save(struct rn_snapshot_writer *w, const char *path, char *errbuf,
                             size_t errlen);
void rn__snapshot_writer_destroy(struct rn_snapshot_writer *w);
struct rn_snapshot_reader *rn__snapshot_reader_open(const char *path, uint64_t id, char *errbuf,
                                                    size_t errlen);
void rn__snapshot_reader_destroy(struct rn_snapshot_reader *r);

/* rn_status.c */
void rn__status_handler(void *ud, const struct rn_http_request *req,
                        struct rn_http_response *res);

#endif
