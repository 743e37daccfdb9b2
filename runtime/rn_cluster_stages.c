/*
 * rn_cluster_stages.c — how the coordinator divides a cluster job: into
 * stages at re-key edges, each stage into tasks by its input's partitions,
 * and each task into the `--set` overrides that make the submitted job that
 * task (docs/cluster.md, "Stages").
 *
 * A task of a job that reads Kafka is the whole job restricted to one
 * partition. That is right as long as every keyed operator keys by what the
 * input topics are partitioned by. Where it is not, the job is cut:
 *
 *   - before an operator that declares RN_OP_SINGLETON (one instance for the
 *     whole job, such as the learner): its stage is one task;
 *   - before a keyed operator whose key field is not the key the stream is
 *     partitioned by. The partitioning key of the input topics is the Kafka
 *     source's `partitioned_by`, or else taken to be the key of the first
 *     keyed operator after the sources (the cluster trusts that the producers
 *     keyed the topics that way: docs/cluster.md); after a cut, it is the cut
 *     operator's key.
 *
 * Across a cut the upstream stage ends in a `kafka` sink (format: record,
 * keyed by the new key, exactly_once when the job checkpoints) into the
 * internal topic `<job>.<operator>.repartition`, and the downstream stage
 * starts with a `kafka_records` source on it in place of the operator's
 * `from:`. The sink writes end markers when its input ends, and the source
 * ends once it has read those of every task of the stage before the cut
 * (`end_markers`), so a bounded job finishes. The coordinator makes the
 * topic with the operator's `partitions:` or else the partition count of the
 * job's input; a broker that cannot create topics (librdkafka's mock) makes
 * it on first use, and the stage is then divided by the count it has. A task's
 * overrides remove every node of the other stages ("-path").
 *
 * Nothing here looks at an operator's name: only at the flags and key fields
 * the types declare.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_cluster_int.h"
#include "rn_job_int.h"

_Static_assert(RN_MAX_NODES <= sizeof(((struct rn_stages *)0)->stage_of) / sizeof(int),
               "rn_stages.stage_of holds a stage per node");

/* The Kafka brokers of the job's first `kafka` source (borrowed), or NULL. */
static const char *rn__stage_brokers(const struct rn_cfg_doc *doc)
{
    const struct rn_cfg_node *sources = rn_cfg_get(doc->root, "sources");
    for (const struct rn_cfg_node *s = sources && sources->kind == RN_CFG_MAP ? sources->child
                                                                              : NULL;
         s; s = s->next) {
        const struct rn_cfg_node *type = rn_cfg_get(s, "type");
        if (!type || type->kind != RN_CFG_SCALAR || strcmp(type->value, "kafka") != 0) continue;
        const struct rn_cfg_node *b = rn_cfg_get(s, "bootstrap_servers");
        if (!b) b = rn_cfg_get(s, "brokers");
        if (b && b->kind == RN_CFG_SCALAR) return b->value;
    }
    return NULL;
}

int rn_cluster_stages_plan(const struct rn_job *job, const struct rn_cfg_doc *doc,
                           struct rn_stages *out, char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->n = 1;
    out->st[0].head = -1;
    int n = job->n_nodes;
    const char *key[RN_MAX_NODES] = {0};
    int done[RN_MAX_NODES] = {0};
    for (int i = 0; i < n; i++)
        out->stage_of[i] = -1;
    out->brokers = rn__stage_brokers(doc);
    /* Nodes in an order where every input comes first (the graph is acyclic:
     * the loader checked). */
    for (int placed = 0, round = 0; placed < n && round <= n; round++) {
        for (int v = 0; v < n; v++) {
            if (done[v]) continue;
            const struct rn_node *nd = &job->nodes[v];
            int ready = 1, in_stage = -1, mixed = 0, first_from = -1;
            for (int e = 0; e < job->n_edges; e++) {
                const struct rn_edge *ed = &job->edges[e];
                if (ed->to != v) continue;
                if (!done[ed->from]) {
                    ready = 0;
                    break;
                }
                if (first_from < 0) first_from = ed->from;
                int s = out->stage_of[ed->from];
                if (in_stage >= 0 && s != in_stage) mixed = 1;
                in_stage = s;
            }
            if (!ready) continue;
            done[v] = 1;
            placed++;
            if (nd->kind == RN_KIND_SOURCE || first_from < 0) {
                const struct rn_cfg_node *pb = rn_cfg_get(nd->cfg, "partitioned_by");
                key[v] = pb && pb->kind == RN_CFG_SCALAR ? pb->value : NULL;
                out->stage_of[v] = 0;
                continue;
            }
            const char *in_key = key[first_from];
            uint32_t flags = nd->type->flags;
            int cut = 0;
            if (out->brokers && !out->st[in_stage].singleton) {
                if (flags & RN_OP_SINGLETON)
                    cut = 1;
                else if ((flags & RN_OP_KEYED) && in_key && nd->key_name &&
                         strcmp(in_key, nd->key_name) != 0)
                    cut = 1;
            }
            const struct rn_cfg_node *pn = rn_cfg_get(nd->cfg, "partitions");
            if (pn && !cut) {
                rn_cfg_key_errf(
                    errbuf, errlen, pn,
                    "'partitions' applies where a stage of a cluster job starts (before "
                    "a re-key or a singleton operator); '%s' starts none",
                    nd->id);
                return RN_EINVAL;
            }
            if (pn && (flags & RN_OP_SINGLETON)) {
                rn_cfg_key_errf(errbuf, errlen, pn,
                                "'%s' runs as one instance: its stage is one task, 'partitions' "
                                "does not apply",
                                nd->id);
                return RN_EINVAL;
            }
            if (!cut && mixed) {
                rn_cfg_errf(errbuf, errlen, nd->cfg,
                            "'%s' takes inputs from two stages of the cluster job (a re-key or a "
                            "singleton operator lies between them): joining stages is not built",
                            nd->id);
                return RN_EINVAL;
            }
            if (cut) {
                const struct rn_cfg_node *from = rn_cfg_get(nd->cfg, "from");
                if (nd->n_inputs > 1 || (from && from->kind != RN_CFG_SCALAR)) {
                    rn_cfg_errf(errbuf, errlen, from ? from : nd->cfg,
                                "'%s' would start a stage of the cluster job (it %s), but a stage "
                                "starts from one input: give it one `from:`",
                                nd->id,
                                flags & RN_OP_SINGLETON ? "runs as one instance"
                                                        : "re-keys the stream");
                    return RN_EINVAL;
                }
                if (out->n >= RN_STAGES_MAX) {
                    rn_cfg_errf(errbuf, errlen, nd->cfg, "more than %d stages", RN_STAGES_MAX);
                    return RN_EINVAL;
                }
                struct rn_stage *st = &out->st[out->n];
                st->head = v;
                st->singleton = (flags & RN_OP_SINGLETON) != 0;
                st->key = (flags & RN_OP_KEYED) ? nd->key_name : NULL;
                st->want = pn ? atoi(pn->value) : 0; /* checked by the loader */
                snprintf(st->topic, sizeof st->topic, "%s.%s.repartition", job->name, nd->id);
                for (int e = 0; e < job->n_edges; e++) {
                    const struct rn_edge *ed = &job->edges[e];
                    if (ed->to != v) continue;
                    st->from = ed->from;
                    st->from_port = ed->port;
                    const struct rn_node *f = &job->nodes[ed->from];
                    snprintf(st->type, sizeof st->type, "%s",
                             rn_types_get(job->types, f->out_types[ed->port])->name);
                }
                out->stage_of[v] = out->n++;
            } else {
                out->stage_of[v] = in_stage;
            }
            key[v] = (flags & RN_OP_KEYED) && nd->key_name ? nd->key_name : in_key;
        }
    }
    return 0;
}

int rn_cluster_stages_topics(struct rn_stages *s, int parts, char *errbuf, size_t errlen)
{
    s->st[0].n_tasks = parts;
    for (int i = 1; i < s->n; i++) {
        struct rn_stage *st = &s->st[i];
        int have = 0;
        int want = st->singleton ? 1 : st->want > 0 ? st->want : parts;
        int rc = rn_cluster_topic_ensure(s->brokers, st->topic, want, &have, errbuf, errlen);
        if (rc) return rc;
        st->n_tasks = st->singleton ? 1 : have;
    }
    return 0;
}

void rn_cluster_task_name(int stage, int p, char *buf, size_t len)
{
    if (stage == 0)
        snprintf(buf, len, "p%d", p);
    else
        snprintf(buf, len, "s%dp%d", stage, p);
}

static const char *rn__kind_section(enum rn_op_kind k)
{
    return k == RN_KIND_SOURCE ? "sources" : k == RN_KIND_SINK ? "sinks" : "operators";
}

char *rn_cluster_task_sets(const struct rn_job *job, const struct rn_cfg_doc *doc,
                           const struct rn_stages *s, int stage, int p, int kafka)
{
    struct rn_buf b = RN_BUF_INIT;
    char v[1400], task[32];
    rn_cluster_task_name(stage, p, task, sizeof task);
    rn_buf_putc(&b, '[');
#define RN__SET(...)                                                                               \
    do {                                                                                           \
        snprintf(v, sizeof v, __VA_ARGS__);                                                        \
        if (b.len > 1) rn_buf_putc(&b, ',');                                                       \
        rn_json_str(&b, v, strlen(v));                                                             \
    } while (0)
    RN__SET("http.listen=127.0.0.1:0");
    if (job->ckpt_enabled)
        RN__SET("checkpoint.dir=%s/%s/tasks/%s", job->ckpt_root, job->name, task);
    RN__SET("state.dir=%s/%s/tasks/%s", job->state_root, job->name, task);
    /* The nodes of other stages go; this stage's input and outputs come. */
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *nd = &job->nodes[i];
        if (s->stage_of[i] != stage) RN__SET("-%s.%s", rn__kind_section(nd->kind), nd->id);
    }
    const struct rn_stage *me = &s->st[stage];
    if (stage > 0) {
        const char *head = job->nodes[me->head].id;
        RN__SET("sources.__in_%s.type=kafka_records", head);
        RN__SET("sources.__in_%s.brokers=%s", head, s->brokers);
        RN__SET("sources.__in_%s.topics=%s", head, me->topic);
        RN__SET("sources.__in_%s.record_type=%s", head, me->type);
        if (!me->singleton) RN__SET("sources.__in_%s.partitions=%d", head, p);
        /* The stage's input ends with the end markers of every task of the
         * stage before the cut (a bounded job; docs/cluster.md). */
        RN__SET("sources.__in_%s.end_markers=%d", head, s->st[s->stage_of[me->from]].n_tasks);
        RN__SET("operators.%s.from=__in_%s", head, head);
    }
    for (int k = 1; k < s->n; k++) {
        const struct rn_stage *st = &s->st[k];
        if (s->stage_of[st->from] != stage) continue;
        const char *head = job->nodes[st->head].id;
        const struct rn_node *f = &job->nodes[st->from];
        const char *port = st->from_port ? f->type->outputs[st->from_port].name : NULL;
        RN__SET("sinks.__to_%s.type=kafka", head);
        RN__SET("sinks.__to_%s.brokers=%s", head, s->brokers);
        RN__SET("sinks.__to_%s.topic=%s", head, st->topic);
        RN__SET("sinks.__to_%s.format=record", head);
        RN__SET("sinks.__to_%s.mode=%s", head,
                job->ckpt_enabled ? "exactly_once" : "at_least_once");
        RN__SET("sinks.__to_%s.transactional_id_prefix=runnel-%s-%s-to-%s", head, job->name, task,
                head);
        RN__SET("sinks.__to_%s.end_markers=true", head);
        if (st->key) RN__SET("sinks.__to_%s.key=%s", head, st->key);
        if (port)
            RN__SET("sinks.__to_%s.from=%s.%s", head, f->id, port);
        else
            RN__SET("sinks.__to_%s.from=%s", head, f->id);
    }
    const struct rn_cfg_node *sources = rn_cfg_get(doc->root, "sources");
    for (const struct rn_cfg_node *n = sources ? sources->child : NULL; n && kafka && stage == 0;
         n = n->next) {
        const struct rn_cfg_node *type = rn_cfg_get(n, "type");
        if (type && strcmp(type->value, "kafka") == 0)
            RN__SET("sources.%s.partitions=%d", n->key, p);
    }
    const struct rn_cfg_node *sinks = rn_cfg_get(doc->root, "sinks");
    for (const struct rn_cfg_node *n = sinks ? sinks->child : NULL; n; n = n->next) {
        const struct rn_cfg_node *type = rn_cfg_get(n, "type");
        if (!type || type->kind != RN_CFG_SCALAR) continue;
        int mine = 0;
        for (int i = 0; i < job->n_nodes; i++)
            if (job->nodes[i].kind == RN_KIND_SINK && strcmp(job->nodes[i].id, n->key) == 0)
                mine = s->stage_of[i] == stage;
        if (!mine) continue;
        if (strcmp(type->value, "file") == 0) {
            const struct rn_cfg_node *path = rn_cfg_get(n, "path");
            if (!path || path->kind != RN_CFG_SCALAR) continue;
            /* out.jsonl -> out.p3.jsonl (stage 0), out.s1p3.jsonl */
            const char *slash = strrchr(path->value, '/');
            const char *dot = strrchr(slash ? slash : path->value, '.');
            if (dot && dot != (slash ? slash + 1 : path->value))
                RN__SET("sinks.%s.path=%.*s.%s%s", n->key, (int)(dot - path->value), path->value,
                        task, dot);
            else
                RN__SET("sinks.%s.path=%s.%s", n->key, path->value, task);
        } else if (strcmp(type->value, "kafka") == 0) {
            const struct rn_cfg_node *pre = rn_cfg_get(n, "transactional_id_prefix");
            if (pre && pre->kind == RN_CFG_SCALAR)
                RN__SET("sinks.%s.transactional_id_prefix=%s-%s", n->key, pre->value, task);
            else
                RN__SET("sinks.%s.transactional_id_prefix=runnel-%s-%s-%s", n->key, job->name,
                        n->key, task);
        }
    }
#undef RN__SET
    rn_buf_putc(&b, ']');
    rn_buf_putc(&b, 0);
    return b.data;
}
