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

#include "rn_config.h"
#include "rn_http.h"
#include "rn_job.h"
#include "rn_operator.h"

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

enum rn_msg_kind { RN_MSG_DATA = 0, RN_MSG_WATERMARK = 1, RN_MSG_END = 2 };

struct rn_msg {
    uint32_t kind;
    struct rn_batch *batch; /* DATA: owned by the receiver until it returns it */
    int64_t value;          /* WATERMARK: the watermark */
};

/* A bounded single-producer single-consumer ring. */
struct rn_ring {
    _Alignas(64) _Atomic uint32_t head; /* next slot to read; written by the consumer */
    _Alignas(64) _Atomic uint32_t tail; /* next slot to write; written by the producer */
    _Alignas(64) uint32_t mask;
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
    int64_t start_ns;
    int64_t end_ns;
    pthread_mutex_t err_mu;
    char error[512];

    struct rn_http_server *http;
    char http_addr[128];
    _Atomic int http_ready; /* http_addr is set (release/acquire) */

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

/* rn_status.c */
void rn__status_handler(void *ud, const struct rn_http_request *req,
                        struct rn_http_response *res);

#endif
