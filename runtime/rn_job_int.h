/*
 * rn_job_int.h — private structures of a job: the checked graph (nodes and
 * edges), the execution plan (groups of fused nodes, one task per subtask)
 * and the job itself. What a run is made of (tasks, instances) is in
 * rn_exec_int.h, channels and exchanges in rn_channel_int.h. See
 * docs/architecture.md.
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
#include "rn_config_int.h"
#include "rn_http_int.h"
#include "rn_job.h"
#include "rn_operator.h"
#include "rn_state_int.h"
#include "rn_types_int.h"

enum rn_edge_mode {
    RN_EDGE_FORWARD = 0,   /* subtask i -> subtask i (fused when possible) */
    RN_EDGE_HASH = 1,      /* by key group of the key field */
    RN_EDGE_GATHER = 2,    /* every subtask -> subtask 0 */
    RN_EDGE_REBALANCE = 3, /* subtask i -> subtask i mod n */
    RN_EDGE_BROADCAST = 4, /* every subtask -> every subtask (each record copied) */
};

struct rn_edge {
    int from, port, to;
    int input;     /* which input of `to` (0 unless its type has several) */
    int broadcast; /* declared broadcast (type or YAML `broadcast:`) */
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
    /* Per input (one, or the type's n_inputs): record type, key field and
     * name. Input 0's are also in_type, key_field and key_name above. */
    int n_inputs;
    int in_types[RN_MAX_INPUTS];
    int key_fields[RN_MAX_INPUTS];
    const char *key_names[RN_MAX_INPUTS];
    struct rn_latency *lat; /* the type's latency histograms (n_lat), owned */
    int n_lat;
};

/* A latency histogram (rn_operator.h): bucket b counts durations of
 * [2^b, 2^(b+1)) sixteenths of a µs (bucket 0 also those below). */
#define RN_LATENCY_BUCKETS 64
struct rn_latency {
    _Atomic uint64_t b[RN_LATENCY_BUCKETS];
    _Atomic uint64_t sum_ns;
};
/* Upper bound of bucket b, µs. */
#define RN__LATENCY_BOUND_US(b) (ldexp(1.0, (b) + 1) / 16.0)
/* The p-th quantile of bucket counts n[RN_LATENCY_BUCKETS], µs (0: none). */
double rn__latency_quantile(const uint64_t *n, double p);

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
    uint32_t channel_capacity; /* batches per channel: `queue_batches` */
    int64_t queue_memory;      /* `queue_memory`: bytes of batches all channels hold; 0: no bound */
    int64_t buffer_timeout_ns; /* longest a partly filled batch waits for more */
    int quiet;
    int hold;

    struct rn_types *types; /* the job's record types (rn_record.h) */

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
    struct rn_status_sampler *sampler; /* the web UI's history (rn_history.c), or NULL */
    const char *token_file; /* --token-file (borrowed from the options) */
    int need_token;         /* http.listen is not loopback-only */
    char token[128];        /* read before the server starts */
    char http_addr[128];
    _Atomic int http_ready; /* http_addr is set (release/acquire) */

    /* The serving server (serve:): operators' HTTP routes (rn_serve.c). Set
     * before the worker and status threads start, freed after they end. */
    const char *serve_listen;
    int serve_threads;
    struct rn_http_opts serve_http; /* its connection limits and timeouts */
    /* The serving server: set when the run starts, stopped when it ends, freed
     * with the job (the status page may read it at any time, hence atomic). */
    _Atomic(struct rn_serve *) serve;

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
    int64_t ckpt_tolerable;      /* checkpoint.tolerable_failures */
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

/* rn_plan.c: groups the checked graph into fused chains (load time). */
int rn__job_plan(struct rn_job *job, char *errbuf, size_t errlen);
/* The memory of one full batch: its arena's chunk (rn_batch_create) and its
 * record array. A batch is full at RN_BATCH_ARENA bytes of payload, so one
 * chunk holds it unless its last record is larger than the rest of the chunk. */
#define RN_BATCH_BYTES                                                                             \
    ((size_t)RN_BATCH_ARENA + RN_BATCH_CHUNK_SLACK + RN_BATCH_RECORDS * sizeof(struct rn_record))
/* After rn__job_plan: the queues (channels) the job's edges between chains
 * make, and the batches each may hold: `queue_batches`, or less when
 * `queue_memory` divided among the queues is less (never under 2). */
uint32_t rn__job_queue_count(const struct rn_job *job);
uint32_t rn__job_queue_batches(const struct rn_job *job);
/* Frees what rn__job_build made for a run. */
void rn__job_destroy_exec(struct rn_job *job);
/* Records in, out (port 0) and unrouted, summed over the node's subtasks. */
void rn__instance_totals(struct rn_job *job, int node, uint64_t *in, uint64_t *out,
                         uint64_t *dropped);

/* rn_exec.c: the job's first error wins; sets aborting. Any thread. */
void rn__job_set_error(struct rn_job *job, const char *fmt, ...) RN_PRINTF(2, 3);

/* rn_checkpoint.c */
int rn__ckpt_start(struct rn_job *job, char *errbuf, size_t errlen);
void rn__ckpt_stop(struct rn_job *job);
void rn__ckpt_free(struct rn_job *job);
/* Requests a checkpoint (savepoint: kept until deleted). Returns its id or < 0. */
int64_t rn__ckpt_request(struct rn_job *job, int savepoint);
/* What became of requested checkpoint `id`: 0 not yet settled, 1 completed
 * (path: its directory), -1 failed (why: the reason). A savepoint request
 * fails when the id went to another kind (the job's final checkpoint). */
int rn__ckpt_outcome(struct rn_job *job, int64_t id, int savepoint, char *path, size_t pathlen,
                     char *why, size_t whylen);
/* The checkpoint section of the status page (HTTP thread). */
void rn__ckpt_render_json(struct rn_job *job, struct rn_buf *b);
void rn__ckpt_render_prometheus(struct rn_job *job, struct rn_buf *b);
void rn__ckpt_render_html(struct rn_job *job, struct rn_buf *b);
/* Finds the checkpoint to restore (--from-checkpoint or the latest complete
 * one); 0 with *out NULL when there is none. */
struct rn_restore;
int rn__restore_find(struct rn_job *job, struct rn_restore **out, char *errbuf, size_t errlen);
void rn__restore_free(struct rn_restore *r);
/* rn_status.c */
void rn__status_handler(void *ud, const struct rn_http_request *req,
                        struct rn_http_response *res);

#endif
