/*
 * rn_cluster_int.h — private to the cluster: the coordinator (rn_coordinator.c),
 * the worker process (rn_worker.c), `runnel cluster start` and the job CLI
 * (rn_cluster_cli.c), bearer tokens and small JSON helpers
 * (rn_auth.c, rn_cluster_json.c), and the Kafka metadata look-up that divides a job into
 * tasks (rn_cluster_kafka.c). See docs/cluster.md.
 *
 * Control plane only: the coordinator and the workers exchange small JSON
 * documents over HTTP (the worker asks, the coordinator answers with
 * commands); no record ever travels this way.
 */
#ifndef RUNNEL_RN_CLUSTER_INT_H
#define RUNNEL_RN_CLUSTER_INT_H

#include <yajl/yajl_tree.h>

#include "rn_auth_int.h"
#include "rn_common.h"
#include "rn_config_int.h"
#include "rn_http_int.h"

/* The coordinator's default REST address. */
#define RN_CLUSTER_DEFAULT_ADDR "127.0.0.1:8091"

/* ---- JSON over yajl_tree ------------------------------------------------------- */

/* Members of an object by name (NULL when absent or of another kind). The
 * returned nodes and strings are borrowed from the tree. */
const char *rn_jstr(yajl_val obj, const char *name);
int64_t rn_jint(yajl_val obj, const char *name, int64_t def);
double rn_jnum(yajl_val obj, const char *name, double def);
yajl_val rn_jarr(yajl_val obj, const char *name);
yajl_val rn_jobj(yajl_val obj, const char *name);
/* Appends "name":"value", (with the comma) to b. */
void rn_json_kv_str(struct rn_buf *b, const char *name, const char *value);

/* ---- partitions (rn_cluster_kafka.c) ------------------------------------------- */

/* The partitions that divide the job in `doc` into tasks: the partition count
 * of its Kafka sources' topics (which must be co-partitioned: all the same
 * count), asked of the brokers; or one task when it reads no Kafka. Fills
 * *n (>= 1). Returns 0, or < 0 with a message naming the YAML place. */
int rn_cluster_partitions(const struct rn_cfg_doc *doc, int *n, char *errbuf, size_t errlen);
/* Makes `topic` on `brokers` with `parts` partitions unless it exists (a
 * broker without CreateTopics, such as librdkafka's mock, makes it on the
 * metadata request, with its own default count) and fills *out with the
 * count it has. Returns 0 or RN_EIO with a message. */
int rn_cluster_topic_ensure(const char *brokers, const char *topic, int parts, int *out,
                            char *errbuf, size_t errlen);

/* ---- stages and tasks (rn_cluster_stages.c) ------------------------------------ */

#define RN_STAGES_MAX 16

struct rn_job;

/* One stage of a cluster job. Stage 0 holds the sources; stage k > 0 starts
 * at operator `head`, fed by the internal topic from node `from` (port
 * `from_port`), whose records are of type `type`. */
struct rn_stage {
    int head, from, from_port;
    int singleton;   /* head is RN_OP_SINGLETON: one task */
    const char *key; /* the head's key field (the topic's message key), or NULL */
    char topic[256]; /* <job>.<head>.repartition */
    char type[64];
    int want;    /* the head's `partitions:` (0: the input's count) */
    int n_tasks;
};

struct rn_stages {
    int n;
    struct rn_stage st[RN_STAGES_MAX];
    int stage_of[256]; /* per node of the job (RN_MAX_NODES) */
    const char *brokers; /* the job's first Kafka source's (borrowed from the doc) */
};

/* Cuts the loaded job into stages (only a job that reads Kafka is cut).
 * Returns 0, or RN_EINVAL with a message naming the YAML place of an
 * operator that cannot start or join stages. */
int rn_cluster_stages_plan(const struct rn_job *job, const struct rn_cfg_doc *doc,
                           struct rn_stages *out, char *errbuf, size_t errlen);
/* Makes the internal topics (`parts` partitions: the input's) and sets each
 * stage's task count: stage 0 `parts`, a singleton 1, another stage its
 * topic's partition count. Returns 0 or RN_EIO with a message. */
int rn_cluster_stages_topics(struct rn_stages *s, int parts, char *errbuf, size_t errlen);
/* "p<p>" for stage 0 (as before stages), "s<stage>p<p>" otherwise. */
void rn_cluster_task_name(int stage, int p, char *buf, size_t len);
/* The JSON array of overrides that make task (stage, p) of the job out of its
 * YAML (docs/cluster.md has the table); malloc'd, the caller frees it. */
char *rn_cluster_task_sets(const struct rn_job *job, const struct rn_cfg_doc *doc,
                           const struct rn_stages *s, int stage, int p, int kafka);

/* ---- the coordinator (rn_coordinator.c) ---------------------------------------- */

struct rn_coord_opts {
    const char *listen;     /* REST address (loopback by default) */
    const char *dir;        /* where submitted jobs are kept */
    const char *token_file; /* NULL: <dir>/token */
    int64_t heartbeat_timeout_ms;
    int64_t checkpoint_every_ms; /* how often cluster checkpoints are recorded */
    int can_spawn;               /* `cluster start`: more workers can be started on demand */
};

struct rn_coord;
struct rn_coord *rn_coord_create(const struct rn_coord_opts *o, char *errbuf, size_t errlen);
/* The bound REST address; valid until destroy. */
const char *rn_coord_address(struct rn_coord *c);
/* The supervisor saw the worker started in `slot` exit: its tasks move now,
 * without waiting for the heartbeat timeout. Any thread. */
void rn_coord_slot_exited(struct rn_coord *c, int slot);
/* How many worker processes the jobs want (rescale may raise it). Any thread. */
int rn_coord_wanted_workers(struct rn_coord *c);
void rn_coord_destroy(struct rn_coord *c);

/* ---- entry points ---------------------------------------------------------------- */

int rn_coordinator_main(int argc, char **argv); /* runnel coordinator */
int rn_worker_main(int argc, char **argv);      /* runnel worker */
int rn_cluster_main(int argc, char **argv);     /* runnel cluster start */
/* runnel submit|list|status|savepoint|cancel|rescale|workers (argv[0] is the
 * subcommand). */
int rn_cluster_cli_main(int argc, char **argv);
/* Whether `runnel status|savepoint ARG` names a cluster job (not host:port, not
 * a job file). */
int rn_cluster_is_job_id(const char *arg);

#endif
