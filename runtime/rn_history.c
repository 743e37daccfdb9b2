/*
 * rn_history.c — the bounded history behind the web UI's charts.
 *
 * Two parts. A generic store: n named series sharing one ring of timestamps,
 * `capacity` samples each; a push overwrites the oldest sample once the ring is
 * full, so memory is fixed at creation (capacity x (n + 1) x 8 bytes). And the
 * job's sampler: a thread that once a second reads the counters the status page
 * shows (atomics the worker threads bump) and pushes one sample of every series:
 *
 *   <id>.in, <id>.out            records per second into / out of (main port) a node
 *   <id>.wm_lag_s                wall clock minus the node's watermark, seconds
 *   <id>.late                    late records (total)
 *   <id>.m.<metric>              the operator's own counter (total)
 *   <id>.r.<ratio>               the operator's ratio since the start (mean TD loss ...)
 *   <id>.lat.<name>.p50, .p99    the operator's latency histogram over the interval, µs
 *                                (null when nothing was recorded in it)
 *   chain.<k>.busy               fraction of the chain's thread time spent processing
 *   chain.<k>.backpressure       fraction of it blocked on a full output queue
 *   queue.<from>><to>.fill       batches waiting / capacity, over that edge's queues
 *   job.dead_letters             dead letters (total)
 *   state.bytes, state.keys      keyed state: cache + memtable + SST bytes; keys (est.)
 *   state.cache_hit              cache hits / lookups over the last interval
 *
 * Rates and fractions are over the interval since the previous sample. The
 * sampler reads only; it never takes a lock a worker thread takes.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_status_int.h"

struct rn_history {
    pthread_mutex_t mu;
    size_t cap, n, count; /* count: samples pushed, ever */
    char **names;
    int64_t *t;
    double *v; /* [slot * n + series] */
};

struct rn_history *rn__history_create(size_t capacity, size_t n, char **names)
{
    struct rn_history *h = rn_xcalloc(1, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    h->cap = capacity;
    h->n = n;
    h->names = names;
    h->t = rn_xcalloc(capacity, sizeof *h->t);
    h->v = rn_xcalloc(capacity * (n ? n : 1), sizeof *h->v);
    return h;
}

void rn__history_destroy(struct rn_history *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->n; i++)
        free(h->names[i]);
    free(h->names);
    free(h->t);
    free(h->v);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void rn__history_push(struct rn_history *h, int64_t t_ms, const double *v)
{
    pthread_mutex_lock(&h->mu);
    size_t slot = h->count % h->cap;
    h->t[slot] = t_ms;
    memcpy(&h->v[slot * h->n], v, h->n * sizeof *v);
    h->count++;
    pthread_mutex_unlock(&h->mu);
}

void rn__history_json(struct rn_history *h, int64_t since_ms, struct rn_buf *b)
{
    pthread_mutex_lock(&h->mu);
    size_t have = h->count < h->cap ? h->count : h->cap;
    size_t first = h->count - have; /* the oldest sample still held, as a count */
    while (have && h->t[first % h->cap] <= since_ms) {
        first++;
        have--;
    }
    rn_buf_printf(b, "{\"interval_ms\":%d,\"capacity\":%zu,\"t\":[", RN_HISTORY_INTERVAL_MS,
                  h->cap);
    for (size_t k = 0; k < have; k++)
        rn_buf_printf(b, "%s%lld", k ? "," : "", (long long)h->t[(first + k) % h->cap]);
    rn_buf_puts(b, "],\"series\":{");
    for (size_t s = 0; s < h->n; s++) {
        if (s) rn_buf_putc(b, ',');
        rn_json_str(b, h->names[s], strlen(h->names[s]));
        rn_buf_puts(b, ":[");
        for (size_t k = 0; k < have; k++) {
            if (k) rn_buf_putc(b, ',');
            double x = h->v[((first + k) % h->cap) * h->n + s];
            /* four significant digits are all a chart shows */
            if (isfinite(x))
                rn_buf_printf(b, "%.4g", x);
            else
                rn_buf_puts(b, "null");
        }
        rn_buf_putc(b, ']');
    }
    rn_buf_puts(b, "}}");
    pthread_mutex_unlock(&h->mu);
}

/* ---- the job's sampler ------------------------------------------------------- */

struct rn_status_sampler {
    struct rn_job *job;
    struct rn_history *h;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    /* series layout */
    size_t n_series;
    size_t *node_at; /* per node: index of its first series */
    size_t chain_at; /* the first chain series */
    size_t n_pairs;  /* distinct (producer chain, consumer node) queue edges */
    int *chan_pair;  /* per channel: its pair */
    size_t pair_at;
    size_t job_at;
    /* the previous sample's counters */
    int64_t prev_ns;
    uint64_t *prev_in, *prev_out, *prev_busy, *prev_blocked;
    uint64_t prev_hits, prev_lookups;
    uint64_t **prev_lat; /* per node: n_lat x RN_LATENCY_BUCKETS counts */
    double *v;
};

static char *rn__fmt(const char *fmt, ...) RN_PRINTF(1, 2);
static char *rn__fmt(const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return rn_xstrdup(tmp);
}

/* Names every series (the order the sampler fills them in). */
static char **rn__sampler_layout(struct rn_status_sampler *s)
{
    struct rn_job *job = s->job;
    size_t cap = 64, n = 0;
    char **names = rn_xmalloc(cap * sizeof *names);
#define RN__ADD(x)                                                                                 \
    do {                                                                                           \
        if (n == cap) names = rn_xrealloc(names, (cap *= 2) * sizeof *names);                      \
        names[n++] = (x);                                                                          \
    } while (0)
    s->node_at = rn_xcalloc((size_t)job->n_nodes, sizeof *s->node_at);
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *nd = &job->nodes[i];
        s->node_at[i] = n;
        RN__ADD(rn__fmt("%s.in", nd->id));
        RN__ADD(rn__fmt("%s.out", nd->id));
        RN__ADD(rn__fmt("%s.wm_lag_s", nd->id));
        RN__ADD(rn__fmt("%s.late", nd->id));
        for (int m = 0; nd->type->metrics && nd->type->metrics[m] && m < 16; m++)
            RN__ADD(rn__fmt("%s.m.%s", nd->id, nd->type->metrics[m]));
        for (int q = 0; nd->type->ratios && nd->type->ratios[q].name; q++)
            RN__ADD(rn__fmt("%s.r.%s", nd->id, nd->type->ratios[q].name));
        for (int l = 0; l < nd->n_lat; l++) {
            RN__ADD(rn__fmt("%s.lat.%s.p50", nd->id, nd->type->latencies[l]));
            RN__ADD(rn__fmt("%s.lat.%s.p99", nd->id, nd->type->latencies[l]));
        }
    }
    s->chain_at = n;
    for (int g = 0; g < job->n_groups; g++) {
        RN__ADD(rn__fmt("chain.%d.busy", g));
        RN__ADD(rn__fmt("chain.%d.backpressure", g));
    }
    /* one series per edge that has queues: producer chain head > consumer node */
    s->pair_at = n;
    s->chan_pair = rn_xcalloc((size_t)job->n_channels + 1, sizeof *s->chan_pair);
    int *pg = rn_xcalloc((size_t)job->n_channels + 1, sizeof *pg);
    int *pn = rn_xcalloc((size_t)job->n_channels + 1, sizeof *pn);
    for (int c = 0; c < job->n_channels; c++) {
        struct rn_channel *ch = job->channels[c];
        int g = ch->producer->group;
        int to = job->groups[ch->consumer->group].nodes[ch->target];
        size_t p = 0;
        while (p < s->n_pairs && !(pg[p] == g && pn[p] == to))
            p++;
        if (p == s->n_pairs) {
            pg[p] = g;
            pn[p] = to;
            s->n_pairs++;
            RN__ADD(rn__fmt("queue.%s>%s.fill", job->nodes[job->groups[g].nodes[0]].id,
                            job->nodes[to].id));
        }
        s->chan_pair[c] = (int)p;
    }
    free(pg);
    free(pn);
    s->job_at = n;
    RN__ADD(rn_xstrdup("job.dead_letters"));
    RN__ADD(rn_xstrdup("state.bytes"));
    RN__ADD(rn_xstrdup("state.keys"));
    RN__ADD(rn_xstrdup("state.cache_hit"));
#undef RN__ADD
    s->n_series = n;
    return names;
}

/* Takes one sample of every series (sampler thread). */
static void rn__sample(struct rn_status_sampler *s)
{
    struct rn_job *job = s->job;
    int64_t now = rn_now_ns(), wall = rn_wall_ms();
    double dt = s->prev_ns ? (double)(now - s->prev_ns) / 1e9 : 0;
    double *v = s->v;
    for (size_t k = 0; k < s->n_series; k++)
        v[k] = NAN;
    struct rn__node_figs *figs = rn_xcalloc((size_t)job->n_nodes, sizeof *figs);
    uint64_t *busy = rn_xcalloc((size_t)job->n_groups, sizeof *busy);
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *nd = &job->nodes[i];
        struct rn__node_figs *f = &figs[i];
        rn__node_figures(job, i, f);
        busy[nd->group] += f->busy_ns;
        double *o = &v[s->node_at[i]];
        if (dt > 0) {
            o[0] = (double)(f->in - s->prev_in[i]) / dt;
            o[1] = (double)(f->out - s->prev_out[i]) / dt;
        }
        s->prev_in[i] = f->in;
        s->prev_out[i] = f->out;
        if (f->wm != RN_TS_MIN && f->wm != RN_TS_MAX) o[2] = (double)(wall - f->wm) / 1e3;
        o[3] = (double)f->late;
        int k = 4;
        for (int m = 0; nd->type->metrics && nd->type->metrics[m] && m < 16; m++)
            o[k++] = (double)f->metrics[m];
        for (int q = 0; nd->type->ratios && nd->type->ratios[q].name; q++) {
            const struct rn_metric_ratio *ra = &nd->type->ratios[q];
            if (f->metrics[ra->den])
                o[k] = ra->scale * (double)f->metrics[ra->num] / (double)f->metrics[ra->den];
            k++;
        }
        for (int l = 0; l < nd->n_lat; l++, k += 2) {
            /* the interval's own counts: now minus the previous sample's */
            uint64_t *prev = &s->prev_lat[i][(size_t)l * RN_LATENCY_BUCKETS];
            uint64_t d[RN_LATENCY_BUCKETS], any = 0;
            for (int b = 0; b < RN_LATENCY_BUCKETS; b++) {
                uint64_t c = atomic_load_explicit(&nd->lat[l].b[b], memory_order_relaxed);
                d[b] = c - prev[b];
                any |= d[b];
                prev[b] = c;
            }
            if (any && s->prev_ns) {
                o[k] = rn__latency_quantile(d, 0.5);
                o[k + 1] = rn__latency_quantile(d, 0.99);
            }
        }
    }
    uint64_t *blocked = rn_xcalloc((size_t)job->n_groups, sizeof *blocked);
    uint64_t *fill = rn_xcalloc(s->n_pairs + 1, sizeof *fill);
    uint64_t *capy = rn_xcalloc(s->n_pairs + 1, sizeof *capy);
    for (int c = 0; c < job->n_channels; c++) {
        struct rn_channel *ch = job->channels[c];
        blocked[ch->producer->group] += atomic_load_explicit(&ch->blocked_ns, memory_order_relaxed);
        fill[s->chan_pair[c]] += rn__channel_fill(ch);
        capy[s->chan_pair[c]] += ch->capacity;
    }
    for (int g = 0; g < job->n_groups; g++) {
        double span = dt * (double)(job->groups[g].parallelism ? job->groups[g].parallelism : 1);
        if (span > 0) {
            v[s->chain_at + 2 * (size_t)g] =
                RN_MIN(1.0, (double)(busy[g] - s->prev_busy[g]) / 1e9 / span);
            v[s->chain_at + 2 * (size_t)g + 1] =
                RN_MIN(1.0, (double)(blocked[g] - s->prev_blocked[g]) / 1e9 / span);
        }
        s->prev_busy[g] = busy[g];
        s->prev_blocked[g] = blocked[g];
    }
    for (size_t p = 0; p < s->n_pairs; p++)
        v[s->pair_at + p] = capy[p] ? (double)fill[p] / (double)capy[p] : 0;
    v[s->job_at] = (double)rn__dead_letters(job);
    size_t n_rows;
    struct rn__state_row *rows = rn__state_rows(job, &n_rows);
    if (n_rows) {
        uint64_t bytes = 0, keys = 0, hits = 0, lookups = 0;
        for (size_t r = 0; r < n_rows; r++) {
            const struct rn_state_figures *f = &rows[r].f;
            bytes += f->cache_bytes + f->memtable_bytes + f->sst_bytes;
            keys += f->keys_estimate;
            hits += f->cache_hits;
            lookups += f->cache_hits + f->cache_misses;
        }
        v[s->job_at + 1] = (double)bytes;
        v[s->job_at + 2] = (double)keys;
        if (lookups > s->prev_lookups && hits >= s->prev_hits)
            v[s->job_at + 3] = (double)(hits - s->prev_hits) / (double)(lookups - s->prev_lookups);
        s->prev_hits = hits;
        s->prev_lookups = lookups;
    }
    free(rows);
    free(fill);
    free(capy);
    free(blocked);
    free(busy);
    free(figs);
    s->prev_ns = now;
    rn__history_push(s->h, wall, v);
}

static void *rn__sampler_main(void *arg)
{
    struct rn_status_sampler *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        rn__sample(s);
        pthread_mutex_lock(&s->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += RN_HISTORY_INTERVAL_MS / 1000;
        while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&s->mu);
    rn__sample(s); /* the figures the job ended with */
    return NULL;
}

int rn__status_sampler_start(struct rn_job *job, char *errbuf, size_t errlen)
{
    struct rn_status_sampler *s = rn_xcalloc(1, sizeof *s);
    s->job = job;
    char **names = rn__sampler_layout(s);
    s->h = rn__history_create(RN_HISTORY_SAMPLES, s->n_series, names);
    s->v = rn_xcalloc(s->n_series + 1, sizeof *s->v);
    s->prev_in = rn_xcalloc((size_t)job->n_nodes, sizeof *s->prev_in);
    s->prev_out = rn_xcalloc((size_t)job->n_nodes, sizeof *s->prev_out);
    s->prev_busy = rn_xcalloc((size_t)job->n_groups, sizeof *s->prev_busy);
    s->prev_blocked = rn_xcalloc((size_t)job->n_groups, sizeof *s->prev_blocked);
    s->prev_lat = rn_xcalloc((size_t)job->n_nodes, sizeof *s->prev_lat);
    for (int i = 0; i < job->n_nodes; i++)
        s->prev_lat[i] = rn_xcalloc((size_t)job->nodes[i].n_lat * RN_LATENCY_BUCKETS + 1,
                                    sizeof **s->prev_lat);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    job->sampler = s;
    if (pthread_create(&s->thread, NULL, rn__sampler_main, s) != 0) {
        rn_errf(errbuf, errlen, "cannot start the status sampler thread");
        return RN_EIO;
    }
    s->started = 1;
    return 0;
}

void rn__status_sampler_stop(struct rn_job *job)
{
    struct rn_status_sampler *s = job->sampler;
    if (!s || !s->started) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->started = 0;
}

void rn__status_sampler_free(struct rn_job *job)
{
    struct rn_status_sampler *s = job->sampler;
    if (!s) return;
    rn__status_sampler_stop(job);
    rn__history_destroy(s->h);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->node_at);
    free(s->chan_pair);
    free(s->prev_in);
    free(s->prev_out);
    free(s->prev_busy);
    free(s->prev_blocked);
    for (int i = 0; s->prev_lat && i < job->n_nodes; i++)
        free(s->prev_lat[i]);
    free(s->prev_lat);
    free(s->v);
    free(s);
    job->sampler = NULL;
}

void rn__status_history_json(struct rn_job *job, const char *query, struct rn_buf *b)
{
    struct rn_status_sampler *s = job->sampler;
    if (!s) {
        rn_buf_printf(b, "{\"interval_ms\":%d,\"capacity\":%d,\"t\":[],\"series\":{}}",
                      RN_HISTORY_INTERVAL_MS, RN_HISTORY_SAMPLES);
        return;
    }
    int64_t since = 0;
    const char *p = query ? strstr(query, "since=") : NULL;
    if (p && (p == query || p[-1] == '&')) since = strtoll(p + 6, NULL, 10);
    rn__history_json(s->h, since, b);
}
