/*
 * rn_status.c — the status page and REST API of a running job.
 *
 *   GET /             the web UI's job page (runtime/ui/job.html, built into the
 *                     binary): the graph drawn, live charts, checkpoints, learner;
 *                     its scripts and styles under GET /ui/
 *   GET /plain        HTML without scripts: the same figures as tables
 *                     (refreshes itself)
 *   GET /api/v1/history  the last ten minutes of every charted series
 *                     (rn_history.c)
 *   GET /api/v1/job   the same figures as JSON
 *   GET /metrics      Prometheus text format (version 0.0.4)
 *   GET /healthz      "ok" while the job runs normally, 503 once it failed
 *   GET /api/v1/models, POST /api/v1/models/{pin,unpin,rollback}
 *                     the model stores the job's operators name (a string
 *                     key `model_store` in their key table): versions, and
 *                     which one they serve. Only those stores: a request
 *                     never names an arbitrary directory.
 *
 * Runs on the HTTP server's thread. Every figure it reads is an atomic
 * counter that worker threads bump with relaxed stores; the structures that
 * hold them are built before the server starts and freed after it stops.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "rn_assets_int.h"
#include "rn_auth_int.h"
#include "rn_http.h"
#include "rn_exec_int.h"
#include "rn_model.h"
#include "rn_models_int.h"
#include "rn_serve_int.h"
#include "rn_status_int.h"

void rn__node_figures(struct rn_job *job, int node, struct rn__node_figs *f)
{
    memset(f, 0, sizeof *f);
    const struct rn_node *n = &job->nodes[node];
    const struct rn_group *g = &job->groups[n->group];
    if (!g->tasks) return;
    int pos = 0;
    while (g->nodes[pos] != node) pos++;
    f->wm = RN_TS_MAX;
    for (uint32_t s = 0; s < g->parallelism; s++) {
        struct rn_instance *in = g->tasks[s]->inst[pos];
        int64_t wm = atomic_load_explicit(&in->wm_seen, memory_order_relaxed);
        if (wm < f->wm) f->wm = wm;
        f->late += atomic_load_explicit(&in->late, memory_order_relaxed);
        struct rn_op_state *ks = atomic_load_explicit(&in->keyed_pub, memory_order_acquire);
        if (ks) f->timers += rn__op_state_timers(ks);
        f->in += atomic_load_explicit(&in->records_in, memory_order_relaxed);
        f->busy_ns += atomic_load_explicit(&in->busy_ns, memory_order_relaxed);
        for (int p = 0; p < in->n_ports && p < 16; p++) {
            f->ports[p] += atomic_load_explicit(&in->ports[p].records, memory_order_relaxed);
            f->dropped += atomic_load_explicit(&in->ports[p].dropped, memory_order_relaxed);
        }
        for (int m = 0; m < in->n_metrics && m < 16; m++)
            f->metrics[m] += atomic_load_explicit(&in->metrics[m], memory_order_relaxed);
    }
    f->out = f->ports[0];
}

/* Records per second per node over the last >= 1 s interval. */
static void rn__sample_rates(struct rn_job *job)
{
    pthread_mutex_lock(&job->rate_mu);
    int64_t now = rn_now_ns();
    if (job->rate_prev && now - job->rate_at_ns >= 1000000000LL) {
        double dt = (double)(now - job->rate_at_ns) / 1e9;
        for (int i = 0; i < job->n_nodes; i++) {
            struct rn__node_figs f;
            rn__node_figures(job, i, &f);
            uint64_t v = job->nodes[i].kind == RN_KIND_SOURCE ? f.out : f.in;
            job->rate[i] = job->rate_at_ns ? (double)(v - job->rate_prev[i]) / dt : 0;
            job->rate_prev[i] = v;
        }
        job->rate_at_ns = now;
    }
    pthread_mutex_unlock(&job->rate_mu);
}

/* An edge's partitioning mode, by enum value. */
static const char *const rn__edge_modes[] = {"forward", "hash", "gather", "rebalance", "broadcast"};

/* A watermark as JSON: null before the first, "+inf" at the end of input. */
static void rn__json_wm(struct rn_buf *b, int64_t wm)
{
    if (wm == RN_TS_MIN) rn_buf_puts(b, "null");
    else if (wm == RN_TS_MAX) rn_buf_puts(b, "\"+inf\"");
    else rn_json_i64(b, wm);
}

/* Node `node`'s figures per subtask, as a JSON list of {subtask, records_in,
 * records_out, busy_s, watermark, late}. */
static void rn__subtasks_json(struct rn_job *job, int node, struct rn_buf *b)
{
    const struct rn_group *g = &job->groups[job->nodes[node].group];
    rn_buf_putc(b, '[');
    int pos = 0;
    while (g->tasks && g->nodes[pos] != node)
        pos++;
    for (uint32_t s = 0; g->tasks && s < g->parallelism; s++) {
        struct rn_instance *in = g->tasks[s]->inst[pos];
        rn_buf_printf(
            b,
            "%s{\"subtask\":%u,\"records_in\":%llu,\"records_out\":%llu,\"busy_s\":%.3f,"
            "\"watermark\":",
            s ? "," : "", s,
            (unsigned long long)atomic_load_explicit(&in->records_in, memory_order_relaxed),
            (unsigned long long)(in->n_ports ? atomic_load_explicit(&in->ports[0].records,
                                                                    memory_order_relaxed)
                                             : 0),
            (double)atomic_load_explicit(&in->busy_ns, memory_order_relaxed) / 1e9);
        rn__json_wm(b, atomic_load_explicit(&in->wm_seen, memory_order_relaxed));
        rn_buf_printf(b, ",\"late\":%llu}",
                      (unsigned long long)atomic_load_explicit(&in->late, memory_order_relaxed));
    }
    rn_buf_putc(b, ']');
}

static void rn__html_wm(struct rn_buf *b, int64_t wm)
{
    if (wm == RN_TS_MIN) rn_buf_puts(b, "&ndash;");
    else if (wm == RN_TS_MAX) rn_buf_puts(b, "+&infin;");
    else {
        /* as a UTC time to the millisecond, with the epoch ms in its tooltip */
        time_t sec = (time_t)(wm >= 0 ? wm / 1000 : (wm - 999) / 1000);
        struct tm tm;
        char when[32] = "?";
        if (gmtime_r(&sec, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        rn_buf_printf(b, "<span title=\"%lld\">%s.%03d</span>", (long long)wm, when,
                      (int)(wm - (int64_t)sec * 1000));
    }
}

/* Rows for every task that has a state backend (malloc'd; *n of them). */
struct rn__state_row *rn__state_rows(struct rn_job *job, size_t *n)
{
    struct rn__state_row *rows = NULL;
    *n = 0;
    for (int g = 0; g < job->n_groups; g++) {
        struct rn_group *gr = &job->groups[g];
        for (uint32_t s = 0; gr->tasks && s < gr->parallelism; s++) {
            struct rn_task *t = gr->tasks[s];
            struct rn_statedb *db = atomic_load_explicit(&t->statedb_pub, memory_order_acquire);
            if (!db) continue;
            rows = rn_xrealloc(rows, (*n + 1) * sizeof *rows);
            struct rn__state_row *r = &rows[(*n)++];
            r->chain = job->nodes[gr->nodes[0]].id;
            r->subtask = s;
            r->kg_start = t->kg_start;
            r->kg_end = t->kg_end;
            rn__statedb_figures(db, &r->f);
        }
    }
    return rows;
}

/* State figures of every task with a state backend, as JSON. */
static void rn__state_json(struct rn_job *job, struct rn_buf *b)
{
    rn_buf_puts(b, "[");
    size_t n;
    struct rn__state_row *rows = rn__state_rows(job, &n);
    for (size_t i = 0; i < n; i++) {
        {
            const struct rn_state_figures f = rows[i].f;
            rn_buf_printf(b,
                          "%s{\"chain\":\"%s\",\"subtask\":%u,\"key_groups\":[%u,%u],"
                          "\"cache_entries\":%llu,\"cache_bytes\":%llu,\"cache_hits\":%llu,"
                          "\"cache_misses\":%llu,\"db_reads\":%llu,\"cache_evictions\":%llu,"
                          "\"memtable_bytes\":%llu,"
                          "\"sst_bytes\":%llu,\"live_data_bytes\":%llu,\"block_cache_bytes\":%llu,"
                          "\"keys_estimate\":%llu}",
                          i ? "," : "", rows[i].chain, rows[i].subtask, rows[i].kg_start,
                          rows[i].kg_end, (unsigned long long)f.cache_entries,
                          (unsigned long long)f.cache_bytes, (unsigned long long)f.cache_hits,
                          (unsigned long long)f.cache_misses, (unsigned long long)f.db_reads,
                          (unsigned long long)f.cache_evictions,
                          (unsigned long long)f.memtable_bytes, (unsigned long long)f.sst_bytes,
                          (unsigned long long)f.live_data_bytes,
                          (unsigned long long)f.block_cache_bytes,
                          (unsigned long long)f.keys_estimate);
        }
    }
    free(rows);
    rn_buf_puts(b, "]");
}

static const char *rn__state(struct rn_job *job)
{
    if (atomic_load(&job->aborting)) return "failed";
    if (atomic_load(&job->running))
        return atomic_load(&job->stopping) ? "stopping" : "running";
    return job->start_ns ? "finished" : "created";
}

static double rn__uptime(struct rn_job *job)
{
    int64_t end = atomic_load(&job->running) || !job->end_ns ? rn_now_ns() : job->end_ns;
    return job->start_ns ? (double)(end - job->start_ns) / 1e9 : 0;
}

static const char *rn__kind(enum rn_op_kind k)
{
    return k == RN_KIND_SOURCE ? "source" : k == RN_KIND_SINK ? "sink" : "operator";
}

void rn__proc_figures(struct rn__proc_figs *p)
{
    memset(p, 0, sizeof *p);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        p->peak_rss_bytes = (uint64_t)ru.ru_maxrss * 1024; /* KiB on Linux */
        p->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    }
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size, resident;
    if (f && fscanf(f, "%llu %llu", &size, &resident) == 2)
        p->rss_bytes = resident * (uint64_t)sysconf(_SC_PAGESIZE);
    if (f) fclose(f);
    /* The two are counted apart and may lag each other by a few pages. */
    if (p->rss_bytes > p->peak_rss_bytes) p->peak_rss_bytes = p->rss_bytes;
}

uint64_t rn__dead_letters(struct rn_job *job)
{
    uint64_t total = 0;
    for (int i = 0; i < job->n_nodes; i++) {
        struct rn__node_figs f;
        rn__node_figures(job, i, &f);
        for (uint32_t p = 1; p < job->nodes[i].type->n_outputs && p < 16; p++)
            if (job->nodes[i].out_types[p] == rn_types_find(job->types, "dead_letter"))
                total += f.ports[p];
    }
    return total;
}

static int rn__built(struct rn_job *job)
{
    return atomic_load_explicit(&job->built, memory_order_acquire);
}

void rn_job_render_json(struct rn_job *job, struct rn_buf *b)
{
    if (!rn__built(job)) {
        rn_buf_puts(b, "{\"job\":");
        rn_json_str(b, job->name, strlen(job->name));
        rn_buf_puts(b, ",\"state\":\"created\"}");
        return;
    }
    rn__sample_rates(job);
    pthread_mutex_lock(&job->err_mu);
    char err[sizeof job->error];
    memcpy(err, job->error, sizeof err);
    pthread_mutex_unlock(&job->err_mu);
    rn_buf_puts(b, "{\"job\":");
    rn_json_str(b, job->name, strlen(job->name));
    rn_buf_printf(b, ",\"state\":\"%s\",\"uptime_s\":%.3f,\"parallelism\":%u,\"max_parallelism\":%u",
                  rn__state(job), rn__uptime(job), job->parallelism, job->max_parallelism);
    rn_buf_puts(b, ",\"error\":");
    rn_json_str(b, err, strlen(err));
    rn_buf_printf(b, ",\"dead_letters\":%llu", (unsigned long long)rn__dead_letters(job));
    struct rn__proc_figs pf;
    rn__proc_figures(&pf);
    rn_buf_printf(b, ",\"process\":{\"rss_bytes\":%llu,\"peak_rss_bytes\":%llu,\"cpu_s\":%.3f}",
                  (unsigned long long)pf.rss_bytes, (unsigned long long)pf.peak_rss_bytes, pf.cpu_s);
    rn_buf_puts(b, ",\"serve\":");
    rn__serve_render_json(job->serve, job->serve_threads, b);
    rn_buf_puts(b, ",\"operators\":[");
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *n = &job->nodes[i];
        struct rn__node_figs f;
        rn__node_figures(job, i, &f);
        if (i) rn_buf_putc(b, ',');
        rn_buf_puts(b, "{\"id\":");
        rn_json_str(b, n->id, strlen(n->id));
        rn_buf_printf(b, ",\"kind\":\"%s\",\"type\":\"%s\",\"parallelism\":%u,\"chain\":%d",
                      rn__kind(n->kind), n->type->name, n->parallelism, n->group);
        rn_buf_puts(b, ",\"inputs\":[");
        int first = 1;
        for (int e = 0; e < job->n_edges; e++) {
            const struct rn_edge *ed = &job->edges[e];
            if (ed->to != i) continue;
            const struct rn_node *fr = &job->nodes[ed->from];
            rn_buf_printf(b, "%s\"%s%s%s\"", first ? "" : ",", fr->id, ed->port ? "." : "",
                          ed->port ? fr->type->outputs[ed->port].name : "");
            first = 0;
        }
        rn_buf_printf(b, "],\"records_in\":%llu,\"records_out\":%llu,\"rate\":%.1f",
                      (unsigned long long)f.in, (unsigned long long)f.out, job->rate ? job->rate[i] : 0);
        rn_buf_printf(b, ",\"busy_s\":%.3f,\"unrouted\":%llu", (double)f.busy_ns / 1e9,
                      (unsigned long long)f.dropped);
        rn_buf_puts(b, ",\"watermark\":");
        rn__json_wm(b, f.wm);
        rn_buf_printf(b, ",\"late\":%llu,\"timers\":%llu", (unsigned long long)f.late,
                      (unsigned long long)f.timers);
        rn_buf_puts(b, ",\"outputs\":{");
        for (uint32_t p = 1; p < n->type->n_outputs && p < 16; p++)
            rn_buf_printf(b, "%s\"%s\":%llu", p > 1 ? "," : "", n->type->outputs[p].name,
                          (unsigned long long)f.ports[p]);
        rn_buf_puts(b, "},\"metrics\":{");
        for (int m = 0; n->type->metrics && n->type->metrics[m] && m < 16; m++)
            rn_buf_printf(b, "%s\"%s\":%llu", m ? "," : "", n->type->metrics[m],
                          (unsigned long long)f.metrics[m]);
        rn_buf_puts(b, "},\"ratios\":{");
        for (int q = 0; n->type->ratios && n->type->ratios[q].name; q++) {
            const struct rn_metric_ratio *ra = &n->type->ratios[q];
            uint64_t den = f.metrics[ra->den];
            rn_buf_printf(b, "%s\"%s\":", q ? "," : "", ra->name);
            if (den) rn_json_f64(b, ra->scale * (double)f.metrics[ra->num] / (double)den);
            else rn_buf_puts(b, "null");
        }
        rn_buf_puts(b, "},\"latency_us\":{");
        for (int l = 0; l < n->n_lat; l++) {
            uint64_t cnt = 0;
            for (int k = 0; k < RN_LATENCY_BUCKETS; k++)
                cnt += atomic_load_explicit(&n->lat[l].b[k], memory_order_relaxed);
            rn_buf_printf(b, "%s\"%s\":{\"count\":%llu,\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f}",
                          l ? "," : "", n->type->latencies[l], (unsigned long long)cnt,
                          rn_latency_quantile(&n->lat[l], 0.5), rn_latency_quantile(&n->lat[l], 0.99),
                          rn_latency_quantile(&n->lat[l], 0.999));
        }
        rn_buf_puts(b, "},\"subtasks\":");
        rn__subtasks_json(job, i, b);
        rn_buf_puts(b, "}");
    }
    rn_buf_puts(b, "],\"edges\":[");
    for (int e = 0; e < job->n_edges; e++) {
        const struct rn_edge *ed = &job->edges[e];
        const struct rn_node *fr = &job->nodes[ed->from];
        rn_buf_printf(b, "%s{\"from\":\"%s\",\"port\":\"%s\",\"to\":\"%s\",\"mode\":\"%s\"}",
                      e ? "," : "", fr->id, ed->port ? fr->type->outputs[ed->port].name : "out",
                      job->nodes[ed->to].id, rn__edge_modes[ed->mode]);
    }
    rn_buf_puts(b, "],\"queues\":[");
    for (int c = 0; c < job->n_channels; c++) {
        struct rn_channel *ch = job->channels[c];
        const struct rn_group *gf = &job->groups[ch->producer->group];
        const struct rn_group *gt = &job->groups[ch->consumer->group];
        if (c) rn_buf_putc(b, ',');
        rn_buf_printf(b,
                      "{\"from\":\"%s\",\"from_subtask\":%u,\"to\":\"%s\",\"to_subtask\":%u,"
                      "\"fill\":%u,\"capacity\":%u,\"batches\":%llu,\"blocked_s\":%.3f}",
                      job->nodes[gf->nodes[0]].id, ch->producer->subtask,
                      job->nodes[gt->nodes[ch->target]].id, ch->consumer->subtask,
                      rn__channel_fill(ch), ch->capacity,
                      (unsigned long long)atomic_load(&ch->batches),
                      (double)atomic_load(&ch->blocked_ns) / 1e9);
    }
    rn_buf_puts(b, "],\"splits\":[");
    int firsts = 1;
    for (int g = 0; g < job->n_groups; g++) {
        struct rn_group *gr = &job->groups[g];
        if (!gr->tasks || job->nodes[gr->nodes[0]].kind != RN_KIND_SOURCE) continue;
        for (uint32_t s = 0; s < gr->parallelism; s++) {
            struct rn_task *t = gr->tasks[s];
            rn_buf_printf(b, "%s{\"source\":\"%s\",\"subtask\":%u,\"watermark\":",
                          firsts ? "" : ",", job->nodes[gr->nodes[0]].id, s);
            rn__json_wm(b, atomic_load_explicit(&t->wm_seen, memory_order_relaxed));
            rn_buf_printf(b, ",\"idle\":%s}",
                          atomic_load_explicit(&t->idle_seen, memory_order_relaxed) ? "true"
                                                                                     : "false");
            firsts = 0;
        }
    }
    rn_buf_puts(b, "],\"keyed_state\":");
    rn__state_json(job, b);
    rn_buf_puts(b, ",\"checkpoints\":");
    rn__ckpt_render_json(job, b);
    rn_buf_puts(b, "}");
}

void rn_job_render_prometheus(struct rn_job *job, struct rn_buf *b)
{
    if (!rn__built(job)) return;
    const char *jn = job->name;
    rn_buf_puts(b, "# HELP runnel_up 1 while the job runs normally.\n# TYPE runnel_up gauge\n");
    rn_buf_printf(b, "runnel_up{job=\"%s\"} %d\n", jn, atomic_load(&job->aborting) ? 0 : 1);
    rn_buf_puts(b, "# HELP runnel_uptime_seconds Seconds since the job started.\n"
                   "# TYPE runnel_uptime_seconds gauge\n");
    rn_buf_printf(b, "runnel_uptime_seconds{job=\"%s\"} %.3f\n", jn, rn__uptime(job));
    struct rn__proc_figs pf;
    rn__proc_figures(&pf);
    rn_buf_puts(b, "# HELP process_resident_memory_bytes Resident memory of the process.\n"
                   "# TYPE process_resident_memory_bytes gauge\n");
    rn_buf_printf(b, "process_resident_memory_bytes{job=\"%s\"} %llu\n", jn,
                  (unsigned long long)pf.rss_bytes);
    rn_buf_puts(b, "# HELP runnel_process_peak_resident_memory_bytes Highest resident memory "
                   "of the process so far.\n"
                   "# TYPE runnel_process_peak_resident_memory_bytes gauge\n");
    rn_buf_printf(b, "runnel_process_peak_resident_memory_bytes{job=\"%s\"} %llu\n", jn,
                  (unsigned long long)pf.peak_rss_bytes);
    rn_buf_puts(b, "# HELP process_cpu_seconds_total User and system CPU of the process.\n"
                   "# TYPE process_cpu_seconds_total counter\n");
    rn_buf_printf(b, "process_cpu_seconds_total{job=\"%s\"} %.3f\n", jn, pf.cpu_s);
    rn_buf_puts(b, "# HELP runnel_records_in_total Records received by an operator.\n"
                   "# TYPE runnel_records_in_total counter\n");
    struct rn__node_figs *figs = rn_xcalloc((size_t)job->n_nodes, sizeof *figs);
    for (int i = 0; i < job->n_nodes; i++) rn__node_figures(job, i, &figs[i]);
    for (int i = 0; i < job->n_nodes; i++)
        rn_buf_printf(b, "runnel_records_in_total{job=\"%s\",operator=\"%s\"} %llu\n", jn,
                      job->nodes[i].id, (unsigned long long)figs[i].in);
    rn_buf_puts(b, "# HELP runnel_records_out_total Records emitted on an output port.\n"
                   "# TYPE runnel_records_out_total counter\n");
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *n = &job->nodes[i];
        for (uint32_t p = 0; p < n->type->n_outputs && p < 16; p++)
            rn_buf_printf(b, "runnel_records_out_total{job=\"%s\",operator=\"%s\",port=\"%s\"} %llu\n",
                          jn, n->id, p ? n->type->outputs[p].name : "out",
                          (unsigned long long)figs[i].ports[p]);
    }
    rn_buf_puts(b, "# HELP runnel_records_unrouted_total Records emitted to a port routed nowhere.\n"
                   "# TYPE runnel_records_unrouted_total counter\n");
    for (int i = 0; i < job->n_nodes; i++)
        rn_buf_printf(b, "runnel_records_unrouted_total{job=\"%s\",operator=\"%s\"} %llu\n", jn,
                      job->nodes[i].id, (unsigned long long)figs[i].dropped);
    rn_buf_puts(b, "# HELP runnel_operator_events_total An operator's own counters.\n"
                   "# TYPE runnel_operator_events_total counter\n");
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *n = &job->nodes[i];
        for (int m = 0; n->type->metrics && n->type->metrics[m] && m < 16; m++)
            rn_buf_printf(b, "runnel_operator_events_total{job=\"%s\",operator=\"%s\",name=\"%s\"} %llu\n",
                          jn, n->id, n->type->metrics[m], (unsigned long long)figs[i].metrics[m]);
    }
    rn_buf_puts(b, "# HELP runnel_operator_ratio An operator's ratio of two of its counters, since "
                   "the start.\n# TYPE runnel_operator_ratio gauge\n");
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *n = &job->nodes[i];
        for (int q = 0; n->type->ratios && n->type->ratios[q].name; q++) {
            const struct rn_metric_ratio *ra = &n->type->ratios[q];
            if (figs[i].metrics[ra->den])
                rn_buf_printf(
                    b, "runnel_operator_ratio{job=\"%s\",operator=\"%s\",name=\"%s\"} %.9g\n", jn,
                    n->id, ra->name,
                    ra->scale * (double)figs[i].metrics[ra->num] /
                        (double)figs[i].metrics[ra->den]);
        }
    }
    rn_buf_puts(b, "# HELP runnel_operator_latency_seconds An operator's latency histogram "
                   "(the inference operator: request, last_added).\n"
                   "# TYPE runnel_operator_latency_seconds histogram\n");
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *n = &job->nodes[i];
        for (int l = 0; l < n->n_lat; l++) {
            /* buckets 1 µs .. 34 s (powers of two): the runtime's buckets below
             * the first are folded into it, those above into +Inf */
            uint64_t acc = 0;
            int k = 0;
            for (; k < RN_LATENCY_BUCKETS; k++) {
                acc += atomic_load_explicit(&n->lat[l].b[k], memory_order_relaxed);
                double le = RN__LATENCY_BOUND_US(k);
                if (le < 1) continue;
                if (le > 64e6) break;
                rn_buf_printf(b, "runnel_operator_latency_seconds_bucket{job=\"%s\",operator=\"%s\","
                              "name=\"%s\",le=\"%g\"} %llu\n", jn, n->id, n->type->latencies[l],
                              le / 1e6, (unsigned long long)acc);
            }
            for (k++; k < RN_LATENCY_BUCKETS; k++)
                acc += atomic_load_explicit(&n->lat[l].b[k], memory_order_relaxed);
            rn_buf_printf(b, "runnel_operator_latency_seconds_bucket{job=\"%s\",operator=\"%s\","
                          "name=\"%s\",le=\"+Inf\"} %llu\n", jn, n->id, n->type->latencies[l],
                          (unsigned long long)acc);
            rn_buf_printf(b, "runnel_operator_latency_seconds_sum{job=\"%s\",operator=\"%s\","
                          "name=\"%s\"} %.9f\n", jn, n->id, n->type->latencies[l],
                          (double)atomic_load_explicit(&n->lat[l].sum_ns, memory_order_relaxed) / 1e9);
            rn_buf_printf(b, "runnel_operator_latency_seconds_count{job=\"%s\",operator=\"%s\","
                          "name=\"%s\"} %llu\n", jn, n->id, n->type->latencies[l],
                          (unsigned long long)acc);
        }
    }
    rn_buf_puts(b,
                "# HELP runnel_busy_seconds_total Time a worker thread spent processing records "
                "that entered its chain at this node.\n# TYPE runnel_busy_seconds_total counter\n");
    for (int i = 0; i < job->n_nodes; i++)
        rn_buf_printf(b,
                      "runnel_busy_seconds_total{job=\"%s\",operator=\"%s\",chain=\"%d\"} %.6f\n",
                      jn, job->nodes[i].id, job->nodes[i].group, (double)figs[i].busy_ns / 1e9);
    rn_buf_puts(b, "# HELP runnel_dead_letters_total Records rejected to dead-letter outputs.\n"
                   "# TYPE runnel_dead_letters_total counter\n");
    rn_buf_printf(b, "runnel_dead_letters_total{job=\"%s\"} %llu\n", jn,
                  (unsigned long long)rn__dead_letters(job));
    rn_buf_puts(b, "# HELP runnel_watermark_ms Event-time watermark of an operator (smallest over "
                   "subtasks), ms since the epoch.\n# TYPE runnel_watermark_ms gauge\n");
    for (int i = 0; i < job->n_nodes; i++)
        if (figs[i].wm != RN_TS_MIN && figs[i].wm != RN_TS_MAX)
            rn_buf_printf(b, "runnel_watermark_ms{job=\"%s\",operator=\"%s\"} %lld\n", jn,
                          job->nodes[i].id, (long long)figs[i].wm);
    rn_buf_puts(b, "# HELP runnel_late_records_total Records that came behind the operator's "
                   "watermark.\n# TYPE runnel_late_records_total counter\n");
    for (int i = 0; i < job->n_nodes; i++)
        rn_buf_printf(b, "runnel_late_records_total{job=\"%s\",operator=\"%s\"} %llu\n", jn,
                      job->nodes[i].id, (unsigned long long)figs[i].late);
    rn_buf_puts(b, "# HELP runnel_timers_pending Event-time timers waiting to fire.\n"
                   "# TYPE runnel_timers_pending gauge\n");
    for (int i = 0; i < job->n_nodes; i++)
        if (job->nodes[i].type->flags & RN_OP_STATEFUL)
            rn_buf_printf(b, "runnel_timers_pending{job=\"%s\",operator=\"%s\"} %llu\n", jn,
                          job->nodes[i].id, (unsigned long long)figs[i].timers);
    {
        static const char *const names[] = {"cache_bytes", "memtable_bytes", "sst_bytes",
                                            "live_data_bytes", "block_cache_bytes"};
        rn_buf_puts(b, "# HELP runnel_state_bytes Keyed state per worker thread, by where it "
                       "is.\n# TYPE runnel_state_bytes gauge\n");
        size_t n;
        struct rn__state_row *rows = rn__state_rows(job, &n);
        for (size_t i = 0; i < n; i++) {
            const struct rn_state_figures *f = &rows[i].f;
            uint64_t v[] = {f->cache_bytes, f->memtable_bytes, f->sst_bytes, f->live_data_bytes,
                            f->block_cache_bytes};
            for (int k = 0; k < 5; k++)
                rn_buf_printf(b, "runnel_state_bytes{job=\"%s\",chain=\"%s\",subtask=\"%u\","
                                 "kind=\"%s\"} %llu\n",
                              jn, rows[i].chain, rows[i].subtask, names[k], (unsigned long long)v[k]);
        }
        rn_buf_puts(b,
                    "# HELP runnel_state_cache_lookups_total Keyed-state cache lookups per worker "
                    "thread, by result.\n# TYPE runnel_state_cache_lookups_total counter\n");
        for (size_t i = 0; i < n; i++)
            rn_buf_printf(b,
                          "runnel_state_cache_lookups_total{job=\"%s\",chain=\"%s\",subtask=\"%u\","
                          "result=\"hit\"} %llu\nrunnel_state_cache_lookups_total{job=\"%s\","
                          "chain=\"%s\",subtask=\"%u\",result=\"miss\"} %llu\n",
                          jn, rows[i].chain, rows[i].subtask,
                          (unsigned long long)rows[i].f.cache_hits, jn, rows[i].chain,
                          rows[i].subtask, (unsigned long long)rows[i].f.cache_misses);
        rn_buf_puts(b, "# HELP runnel_state_db_reads_total Keyed-state cache misses that read "
                       "RocksDB, per worker thread.\n# TYPE runnel_state_db_reads_total counter\n");
        for (size_t i = 0; i < n; i++)
            rn_buf_printf(b, "runnel_state_db_reads_total{job=\"%s\",chain=\"%s\",subtask=\"%u\"} %llu\n",
                          jn, rows[i].chain, rows[i].subtask, (unsigned long long)rows[i].f.db_reads);
        rn_buf_puts(b, "# HELP runnel_state_keys Estimated keys in a worker thread's keyed state.\n"
                       "# TYPE runnel_state_keys gauge\n");
        for (size_t i = 0; i < n; i++)
            rn_buf_printf(b, "runnel_state_keys{job=\"%s\",chain=\"%s\",subtask=\"%u\"} %llu\n", jn,
                          rows[i].chain, rows[i].subtask,
                          (unsigned long long)rows[i].f.keys_estimate);
        free(rows);
    }
    rn__ckpt_render_prometheus(job, b);
    rn_buf_puts(b, "# HELP runnel_queue_fill Batches waiting in a queue between threads.\n"
                   "# TYPE runnel_queue_fill gauge\n");
    for (int c = 0; c < job->n_channels; c++) {
        struct rn_channel *ch = job->channels[c];
        rn_buf_printf(b, "runnel_queue_fill{job=\"%s\",queue=\"%d\",to=\"%s\",to_subtask=\"%u\"} %u\n",
                      jn, c, job->nodes[job->groups[ch->consumer->group].nodes[ch->target]].id,
                      ch->consumer->subtask, rn__channel_fill(ch));
    }
    rn_buf_puts(b, "# HELP runnel_queue_blocked_seconds_total Producer time blocked on a full "
                   "queue (backpressure).\n# TYPE runnel_queue_blocked_seconds_total counter\n");
    for (int c = 0; c < job->n_channels; c++) {
        struct rn_channel *ch = job->channels[c];
        rn_buf_printf(b, "runnel_queue_blocked_seconds_total{job=\"%s\",queue=\"%d\"} %.6f\n", jn,
                      c, (double)atomic_load(&ch->blocked_ns) / 1e9);
    }
    free(figs);
}

static void rn__html_esc(struct rn_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': rn_buf_puts(b, "&lt;"); break;
        case '>': rn_buf_puts(b, "&gt;"); break;
        case '&': rn_buf_puts(b, "&amp;"); break;
        case '"': rn_buf_puts(b, "&quot;"); break;
        default: rn_buf_putc(b, *s);
        }
    }
}

void rn_job_render_html(struct rn_job *job, struct rn_buf *b)
{
    if (!rn__built(job)) {
        rn_buf_puts(b, "<!doctype html><p>starting</p>");
        return;
    }
    rn__sample_rates(job);
    rn_buf_puts(b, "<!doctype html><html><head><meta charset=\"utf-8\">"
                   "<meta http-equiv=\"refresh\" content=\"2\"><title>runnel: ");
    rn__html_esc(b, job->name);
    rn_buf_puts(b, "</title><style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
                   "table{border-collapse:collapse;margin:1em 0}td,th{padding:4px 10px;"
                   "border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child,"
                   ".l{text-align:left}.bar{background:#eee;width:120px;height:10px;display:inline-block}"
                   ".bar i{background:#4a8;height:10px;display:block}.err{color:#b00}"
                   "code{background:#f4f4f4;padding:1px 4px}</style></head><body>");
    rn_buf_puts(b, "<h1>");
    rn__html_esc(b, job->name);
    struct rn__proc_figs pf;
    rn__proc_figures(&pf);
    rn_buf_printf(b, "</h1><p>state <b>%s</b> &middot; uptime %.1f s &middot; parallelism %u "
                     "&middot; max_parallelism %u &middot; dead letters <b>%llu</b> &middot; "
                     "memory %.1f MiB (peak %.1f MiB) &middot; CPU %.1f s</p>",
                  rn__state(job), rn__uptime(job), job->parallelism, job->max_parallelism,
                  (unsigned long long)rn__dead_letters(job), (double)pf.rss_bytes / 1048576.0,
                  (double)pf.peak_rss_bytes / 1048576.0, pf.cpu_s);
    pthread_mutex_lock(&job->err_mu);
    if (job->error[0]) {
        rn_buf_puts(b, "<p class=\"err\">");
        rn__html_esc(b, job->error);
        rn_buf_puts(b, "</p>");
    }
    pthread_mutex_unlock(&job->err_mu);
    rn_buf_puts(b, "<h2>Graph</h2><table><tr><th>id</th><th class=l>type</th><th class=l>from</th>"
                   "<th>threads</th><th>records in</th><th>records out</th><th>rate/s</th>"
                   "<th>watermark</th><th>late</th><th>timers</th>"
                   "<th class=l>side outputs &amp; counters</th></tr>");
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *n = &job->nodes[i];
        struct rn__node_figs f;
        rn__node_figures(job, i, &f);
        rn_buf_puts(b, "<tr><td><code>");
        rn__html_esc(b, n->id);
        rn_buf_printf(b, "</code></td><td class=l>%s %s</td><td class=l>", rn__kind(n->kind),
                      n->type->name);
        for (int e = 0; e < job->n_edges; e++) {
            const struct rn_edge *ed = &job->edges[e];
            if (ed->to != i) continue;
            rn__html_esc(b, job->nodes[ed->from].id);
            if (ed->port) {
                rn_buf_putc(b, '.');
                rn_buf_puts(b, job->nodes[ed->from].type->outputs[ed->port].name);
            }
            rn_buf_printf(b, " (%s) ", rn__edge_modes[ed->mode]);
        }
        rn_buf_printf(b, "</td><td>%u</td><td>%llu</td><td>%llu</td><td>%.0f</td><td>",
                      n->parallelism, (unsigned long long)f.in, (unsigned long long)f.out,
                      job->rate ? job->rate[i] : 0);
        rn__html_wm(b, f.wm);
        rn_buf_printf(b, "</td><td>%llu</td><td>%llu</td><td class=l>", (unsigned long long)f.late,
                      (unsigned long long)f.timers);
        for (uint32_t p = 1; p < n->type->n_outputs && p < 16; p++)
            rn_buf_printf(b, "%s %llu; ", n->type->outputs[p].name, (unsigned long long)f.ports[p]);
        for (int m = 0; n->type->metrics && n->type->metrics[m] && m < 16; m++)
            rn_buf_printf(b, "%s %llu; ", n->type->metrics[m], (unsigned long long)f.metrics[m]);
        for (int q = 0; n->type->ratios && n->type->ratios[q].name; q++) {
            const struct rn_metric_ratio *ra = &n->type->ratios[q];
            if (f.metrics[ra->den])
                rn_buf_printf(b, "<b>%s %.3f</b>; ", ra->name,
                              ra->scale * (double)f.metrics[ra->num] / (double)f.metrics[ra->den]);
        }
        if (f.dropped) rn_buf_printf(b, "unrouted %llu", (unsigned long long)f.dropped);
        rn_buf_puts(b, "</td></tr>");
    }
    rn_buf_puts(b, "</table><h2>Queues</h2>");
    if (!job->n_channels) rn_buf_puts(b, "<p>None: every chain runs fused in one thread.</p>");
    else
        rn_buf_puts(b, "<table><tr><th class=l>from</th><th class=l>to</th><th>fill</th>"
                       "<th></th><th>batches</th><th>blocked s</th></tr>");
    for (int c = 0; c < job->n_channels; c++) {
        struct rn_channel *ch = job->channels[c];
        const struct rn_group *gf = &job->groups[ch->producer->group];
        const struct rn_group *gt = &job->groups[ch->consumer->group];
        uint32_t fill = rn__channel_fill(ch);
        rn_buf_printf(b, "<tr><td class=l>%s[%u]</td><td class=l>%s[%u]</td><td>%u/%u</td>"
                         "<td><span class=bar><i style=\"width:%u%%\"></i></span></td>"
                         "<td>%llu</td><td>%.3f</td></tr>",
                      job->nodes[gf->nodes[0]].id, ch->producer->subtask,
                      job->nodes[gt->nodes[ch->target]].id, ch->consumer->subtask, fill,
                      ch->capacity, ch->capacity ? RN_MIN(100u, fill * 100 / ch->capacity) : 0,
                      (unsigned long long)atomic_load(&ch->batches),
                      (double)atomic_load(&ch->blocked_ns) / 1e9);
    }
    if (job->n_channels) rn_buf_puts(b, "</table>");
    rn_buf_puts(b, "<h2>Source splits</h2><table><tr><th class=l>source</th><th>watermark</th>"
                   "<th class=l>idle</th></tr>");
    for (int g = 0; g < job->n_groups; g++) {
        struct rn_group *gr = &job->groups[g];
        if (!gr->tasks || job->nodes[gr->nodes[0]].kind != RN_KIND_SOURCE) continue;
        for (uint32_t s = 0; s < gr->parallelism; s++) {
            rn_buf_printf(b, "<tr><td class=l>%s[%u]</td><td>", job->nodes[gr->nodes[0]].id, s);
            rn__html_wm(b, atomic_load(&gr->tasks[s]->wm_seen));
            rn_buf_printf(b, "</td><td class=l>%s</td></tr>",
                          atomic_load(&gr->tasks[s]->idle_seen) ? "idle" : "active");
        }
    }
    rn_buf_puts(b, "</table>");
    size_t n_rows;
    struct rn__state_row *rows = rn__state_rows(job, &n_rows);
    if (n_rows) {
        rn_buf_puts(b, "<h2>Keyed state</h2><table><tr><th class=l>chain</th><th>key groups</th>"
                       "<th>cache entries</th><th>cache MB</th><th>hit %</th><th>RocksDB reads</th>"
                       "<th>memtable MB</th>"
                       "<th>SST MB</th><th>block cache MB</th><th>keys (est.)</th></tr>");
        for (size_t i = 0; i < n_rows; i++) {
            const struct rn_state_figures *f = &rows[i].f;
            uint64_t lookups = f->cache_hits + f->cache_misses;
            rn_buf_printf(b, "<tr><td class=l>%s[%u]</td><td>%u&ndash;%u</td><td>%llu</td>"
                             "<td>%.1f</td><td>%.1f</td><td>%llu</td><td>%.1f</td><td>%.1f</td><td>%.1f</td>"
                             "<td>%llu</td></tr>",
                          rows[i].chain, rows[i].subtask, rows[i].kg_start, rows[i].kg_end - 1,
                          (unsigned long long)f->cache_entries, (double)f->cache_bytes / 1e6,
                          lookups ? 100.0 * (double)f->cache_hits / (double)lookups : 0,
                          (unsigned long long)f->db_reads, (double)f->memtable_bytes / 1e6, (double)f->sst_bytes / 1e6,
                          (double)f->block_cache_bytes / 1e6, (unsigned long long)f->keys_estimate);
        }
        rn_buf_puts(b, "</table>");
    }
    free(rows);
    rn__ckpt_render_html(job, b);
    rn_buf_puts(b, "<p><a href=\"/api/v1/job\">/api/v1/job</a> &middot; <a href=\"/metrics\">"
                   "/metrics</a> &middot; <a href=\"/healthz\">/healthz</a></p></body></html>\n");
}

/* ---- model stores ----------------------------------------------------------------- */

/* The model store node i names, or NULL: the value of a string key called
 * `model_store` in its type's key table (the learner, inference). */
static const char *rn__node_store(struct rn_job *job, int i)
{
    const struct rn_node *n = &job->nodes[i];
    for (const struct rn_config_key *k = n->type->config; k && k->name; k++)
        if (k->type == RN_CT_STRING && strcmp(k->name, "model_store") == 0 && n->ctx)
            return *(const char *const *)((const char *)n->ctx + k->offset);
    return NULL;
}

static void rn__models_error(struct rn_http_response *res, int status, const char *msg)
{
    res->status = status;
    rn_buf_reset(&res->body);
    rn_buf_puts(&res->body, "{\"error\":");
    rn_json_str(&res->body, msg, strlen(msg));
    rn_buf_puts(&res->body, "}\n");
}

/* GET /api/v1/models: {"stores":[{store object, "operators":[ids]}, ...]}. */
static void rn__models_list(struct rn_job *job, struct rn_http_response *res)
{
    struct rn_buf *b = &res->body;
    rn_buf_puts(b, "{\"stores\":[");
    int first = 1;
    for (int i = 0; i < job->n_nodes; i++) {
        const char *dir = rn__node_store(job, i);
        int seen = 0;
        for (int e = 0; dir && e < i && !seen; e++) {
            const char *o = rn__node_store(job, e);
            seen = o && strcmp(o, dir) == 0;
        }
        if (!dir || seen) continue;
        if (!first) rn_buf_putc(b, ',');
        first = 0;
        char err[1024];
        size_t at = b->len;
        if (rn__models_json(dir, b, err, sizeof err)) {
            b->len = at;
            rn_buf_puts(b, "{\"store\":");
            rn_json_str(b, dir, strlen(dir));
            rn_buf_puts(b, ",\"error\":");
            rn_json_str(b, err, strlen(err));
            rn_buf_putc(b, '}');
        }
        b->len--; /* reopen the object for the operators */
        rn_buf_puts(b, ",\"operators\":[");
        for (int e = i, k = 0; e < job->n_nodes; e++) {
            const char *o = rn__node_store(job, e);
            if (!o || strcmp(o, dir)) continue;
            if (k++) rn_buf_putc(b, ',');
            rn_json_str(b, job->nodes[e].id, strlen(job->nodes[e].id));
        }
        rn_buf_puts(b, "]}");
    }
    rn_buf_puts(b, "]}\n");
}

/* POST /api/v1/models/{pin,unpin,rollback} with {"store": DIR, "version": N}
 * ("store" may be left out when the job uses one store). */
static void rn__models_post(struct rn_job *job, const char *action,
                            const struct rn_http_request *req, struct rn_http_response *res)
{
    char perr[256], err[1024];
    char *text = rn_xstrndup(req->body ? req->body : "", req->body_len);
    yajl_val root = text[0] ? yajl_tree_parse(text, perr, sizeof perr) : NULL;
    int empty = !text[0];
    free(text);
    if (!empty && (!root || !YAJL_IS_OBJECT(root))) {
        rn__models_error(res, 400, "the body is not a JSON object");
        goto out;
    }
    const char *ps[] = {"store", NULL}, *pv[] = {"version", NULL};
    yajl_val sv = root ? yajl_tree_get(root, ps, yajl_t_any) : NULL;
    yajl_val vv = root ? yajl_tree_get(root, pv, yajl_t_any) : NULL;
    if (sv && !YAJL_IS_STRING(sv)) {
        rn__models_error(res, 400, "'store' must be a string");
        goto out;
    }
    /* The store: one the job's operators name, never any other path. */
    const char *dir = NULL, *want = sv ? YAJL_GET_STRING(sv) : NULL;
    int n_stores = 0;
    for (int i = 0; i < job->n_nodes; i++) {
        const char *o = rn__node_store(job, i);
        if (!o) continue;
        int seen = 0;
        for (int e = 0; e < i && !seen; e++) {
            const char *p = rn__node_store(job, e);
            seen = p && strcmp(p, o) == 0;
        }
        n_stores += !seen;
        if (!dir && (!want || strcmp(o, want) == 0)) dir = o;
    }
    if (!want && n_stores != 1) {
        rn__models_error(res, 400,
                         n_stores ? "the job uses several model stores: name one with 'store'"
                                  : "no operator of this job uses a model store");
        goto out;
    }
    if (!dir) {
        snprintf(err, sizeof err, "no operator of this job uses model store '%s'", want);
        rn__models_error(res, 404, err);
        goto out;
    }
    int64_t before = -1, from = -1, to = -1;
    if (rn_store_current(dir, &before, err, sizeof err)) before = -1;
    int rc;
    if (strcmp(action, "pin") == 0) {
        if (!vv || !YAJL_IS_INTEGER(vv) || YAJL_GET_INTEGER(vv) < 0) {
            rn__models_error(res, 400, "'version' (a version id, an integer >= 0) is required");
            goto out;
        }
        to = YAJL_GET_INTEGER(vv);
        rc = rn_store_pin(dir, to, err, sizeof err);
    } else if (strcmp(action, "unpin") == 0) {
        rc = rn_store_pin(dir, -1, err, sizeof err);
    } else {
        rc = rn__models_rollback(dir, &from, &to, err, sizeof err);
    }
    if (rc) {
        rn__models_error(res, rc == RN_ENOENT ? (strcmp(action, "rollback") ? 404 : 409) : 500,
                         err);
        goto out;
    }
    /* the store as GET shows it, plus the version served before */
    if (rn__models_json(dir, &res->body, err, sizeof err)) {
        rn__models_error(res, 500, err);
        goto out;
    }
    res->body.len--;
    rn_buf_puts(&res->body, ",\"previous\":");
    if (before >= 0) rn_json_i64(&res->body, before);
    else rn_buf_puts(&res->body, "null");
    rn_buf_puts(&res->body, "}\n");
out:
    yajl_tree_free(root);
}

static void rn__models_handler(struct rn_job *job, const struct rn_http_request *req,
                               struct rn_http_response *res)
{
    res->content_type = "application/json";
    static const char pre[] = "/api/v1/models/";
    const char *action = strncmp(req->path, pre, sizeof pre - 1) == 0 ? req->path + sizeof pre - 1
                                                                       : NULL;
    if (!action) {
        if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD"))
            rn__models_error(res, 405, "use GET");
        else
            rn__models_list(job, res);
    } else if (strcmp(action, "pin") && strcmp(action, "unpin") && strcmp(action, "rollback")) {
        rn__models_error(res, 404, "no such endpoint (pin, unpin, rollback)");
    } else if (strcmp(req->method, "POST")) {
        rn__models_error(res, 405, "use POST");
    } else {
        rn__models_post(job, action, req, res);
    }
}

void rn__status_handler(void *ud, const struct rn_http_request *req, struct rn_http_response *res)
{
    struct rn_job *job = ud;
    if (job->need_token && strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0 &&
        !rn_token_check(req, job->token)) {
        res->status = 401;
        rn_buf_puts(&res->body, "401: this listener is not loopback-only: calls that change "
                                "something need 'Authorization: Bearer <token>' (--token-file)\n");
        return;
    }
    if (strcmp(req->path, "/api/v1/models") == 0 ||
        strncmp(req->path, "/api/v1/models/", 15) == 0) {
        rn__models_handler(job, req, res);
        return;
    }
    if (strcmp(req->method, "POST") == 0 &&
        (strcmp(req->path, "/api/v1/checkpoints") == 0 ||
         strcmp(req->path, "/api/v1/savepoints") == 0)) {
        int sp = strcmp(req->path, "/api/v1/savepoints") == 0;
        res->content_type = "application/json";
        if (!job->ckpt_enabled) {
            res->status = 409;
            rn_buf_puts(&res->body, "{\"error\":\"the job has no checkpoint: section\"}\n");
            return;
        }
        int64_t id = rn__ckpt_request(job, sp);
        if (id < 0) {
            res->status = 409;
            rn_buf_puts(&res->body, "{\"error\":\"the job is ending\"}\n");
            return;
        }
        res->status = 202;
        char path[600];
        snprintf(path, sizeof path, "%s/%s-%lld", job->ckpt_dir, sp ? "savepoint" : "chk",
                 (long long)id);
        rn_buf_printf(&res->body, "{\"id\":%lld,\"kind\":\"%s\",\"path\":", (long long)id,
                      sp ? "savepoint" : "checkpoint");
        rn_json_str(&res->body, path, strlen(path));
        rn_buf_puts(&res->body, "}\n");
        return;
    }
    if (strcmp(req->path, "/api/v1/checkpoints") == 0 &&
        (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)) {
        res->content_type = "application/json";
        rn__ckpt_render_json(job, &res->body);
        rn_buf_putc(&res->body, '\n');
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        res->status = 405;
        rn_buf_puts(&res->body, "method not allowed\n");
        return;
    }
    if (strcmp(req->path, "/") == 0) {
        rn__asset_serve("ui/job.html", res);
    } else if (strncmp(req->path, "/ui/", 4) == 0) {
        rn__asset_serve(req->path + 1, res);
    } else if (strcmp(req->path, "/plain") == 0) {
        res->content_type = "text/html; charset=utf-8";
        rn_job_render_html(job, &res->body);
    } else if (strcmp(req->path, "/api/v1/history") == 0) {
        res->content_type = "application/json";
        rn__status_history_json(job, req->query, &res->body);
    } else if (strcmp(req->path, "/api/v1/job") == 0) {
        res->content_type = "application/json";
        rn_job_render_json(job, &res->body);
    } else if (strcmp(req->path, "/metrics") == 0) {
        res->content_type = "text/plain; version=0.0.4; charset=utf-8";
        rn_job_render_prometheus(job, &res->body);
    } else if (strcmp(req->path, "/healthz") == 0) {
        int failed = atomic_load(&job->aborting);
        res->status = failed ? 503 : 200;
        rn_buf_puts(&res->body, failed ? "failed\n" : "ok\n");
    } else {
        res->status = 404;
        rn_buf_puts(&res->body, "not found\n");
    }
}
