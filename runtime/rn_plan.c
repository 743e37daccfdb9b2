/*
 * rn_plan.c — from the checked graph to what runs.
 *
 * Plan (load time). Nodes joined by FORWARD edges, where the downstream node
 * has that one input, fuse into a chain (a group); a chain runs as
 * `parallelism` tasks, one thread each.
 *
 * Build (run time, before the threads start). Every task gets one instance per
 * node of its chain; an edge inside a chain becomes a direct call (a fused
 * target), an edge between chains an exchange on the producer's side with
 * one channel per destination subtask it can reach. Subtask s of a keyed
 * chain owns the key groups [s*maxp/p, (s+1)*maxp/p) rounded up, as Flink
 * assigns them.
 *
 * Several inputs. An edge carries the index of the consumer's input it feeds
 * (`from: [a, b]` of an operator type with n_inputs > 1); a node with more
 * than one incoming edge never fuses, so each input arrives on its own
 * channels, which remember the input index for process() (rn_op_input). A
 * BROADCAST edge is an exchange to every subtask of the consumer that copies
 * each record into every destination's batch.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_exec_int.h"

/* Key groups [start, end) owned by subtask s of p (the inverse of
 * rn_key_group_owner). */
static void rn__kg_range(uint32_t s, uint32_t p, uint32_t maxp, uint32_t *start, uint32_t *end)
{
    *start = (uint32_t)(((uint64_t)s * maxp + p - 1) / p);
    *end = (uint32_t)(((uint64_t)(s + 1) * maxp + p - 1) / p);
}

/* ---- planning ------------------------------------------------------------------ */

int rn__job_plan(struct rn_job *job, char *errbuf, size_t errlen)
{
    /* Nodes are in YAML order, which may not be topological; order by depth. */
    int order[RN_MAX_NODES] = {0}, n_order = 0, placed[RN_MAX_NODES] = {0};
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

uint32_t rn__job_queue_count(const struct rn_job *job)
{
    uint32_t n = 0;
    for (int e = 0; e < job->n_edges; e++) {
        const struct rn_edge *ed = &job->edges[e];
        const struct rn_node *f = &job->nodes[ed->from], *to = &job->nodes[ed->to];
        if (f->group == to->group) continue; /* fused: no queue */
        const struct rn_group *gf = &job->groups[f->group], *gt = &job->groups[to->group];
        /* as rn__job_build makes them: FORWARD across chains is pointwise */
        n += gf->parallelism * (ed->mode == RN_EDGE_FORWARD ? 1 : gt->parallelism);
    }
    return n;
}

uint32_t rn__job_queue_batches(const struct rn_job *job)
{
    uint32_t cap = job->channel_capacity, n = rn__job_queue_count(job);
    if (job->queue_memory <= 0 || n == 0) return cap;
    uint64_t per = (uint64_t)job->queue_memory / ((uint64_t)n * RN_BATCH_BYTES);
    if (per < 2) per = 2; /* one data batch and a marker behind it */
    return per < cap ? (uint32_t)per : cap;
}

int rn__group_pos(const struct rn_group *g, int node)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i] == node) return i;
    return -1;
}

void rn__job_build(struct rn_job *job)
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
            t->pt_next_ns = INT64_MAX;
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
                in->cur_input = -1;
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
    const uint32_t queue_batches = rn__job_queue_batches(job);
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
            tg->input = ed->input;
            if (f->group == to->group) {
                tg->local = gt->tasks[s]->inst[pt];
                continue;
            }
            struct rn_exchange *x = rn_xcalloc(1, sizeof *x);
            x->mode = ed->mode;
            x->key_field = to->key_fields[ed->input];
            x->type = rn_types_get(job->types, to->in_types[ed->input]);
            x->max_parallelism = job->max_parallelism;
            /* FORWARD across groups (a multi-input head): pointwise. */
            x->n_dest = ed->mode == RN_EDGE_FORWARD ? 1 : gt->parallelism;
            x->ch = rn_xcalloc(x->n_dest, sizeof *x->ch);
            x->pending = rn_xcalloc(x->n_dest, sizeof *x->pending);
            for (uint32_t d = 0; d < x->n_dest; d++) {
                uint32_t dest = ed->mode == RN_EDGE_FORWARD ? s : d;
                struct rn_channel *ch =
                    rn__channel_create(gf->tasks[s], gt->tasks[dest], queue_batches);
                ch->target = pt;
                ch->input = ed->input;
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
                        rn__exchange_destroy(in->ports[p].targets[q].xchg);
                    }
                    free(in->ports[p].targets);
                    rn_batch_destroy(in->ports[p].batch);
                }
                free(in->ports);
                free((void *)in->metrics);
                rn__op_state_destroy(in->keyed);
                free(in->pt_heap);
                free(in);
            }
            free(t->inst);
            free(t->splits);
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
        rn__channel_destroy(job->channels[c]);
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

