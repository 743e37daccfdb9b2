/*
 * rn_job.c — loading a job: YAML -> checked graph.
 *
 * Everything that can be checked before a thread starts is checked here, and
 * each error names the YAML position it comes from:
 *   - top-level keys, and each source/operator/sink's keys (through its table);
 *   - operator and connector types (with "did you mean");
 *   - `from:` references and side-output routes (unknown ids, unknown ports,
 *     cycles);
 *   - record types along every edge, and key fields of keyed operators;
 *   - operators with several inputs (rn_op_type.n_inputs > 1): `from:` lists
 *     one stream per input, in order, each checked against that input's
 *     type and keyed by its own key field; `broadcast:` (or the input's
 *     RN_IN_BROADCAST) makes an edge broadcast.
 * Then the graph gets its parallelism and partitioning per edge, and
 * rn__job_plan (rn_plan.c) groups it into fused chains.
 */
#include <stdlib.h>
#include <string.h>

#include "rn_job_int.h"
#include "rn_serve_int.h"
#include "rn_status_int.h"

static const char *const rn__op_skip[] = {"id",        "op",         "from", "key",
                                          "parallelism", "broadcast", "partitions", NULL};
static const char *const rn__conn_skip[] = {"type", "from", NULL};

struct rn__job_cfg {
    const char *job;
    int64_t parallelism;
    int64_t max_parallelism;
    int64_t queue_batches;
    int64_t queue_memory;
    int64_t buffer_timeout;
    const struct rn_cfg_node *sources, *operators, *sinks, *http;
    const struct rn_cfg_node *state, *checkpoint, *watermark, *serve;
};

struct rn__serve_cfg {
    const char *listen;
    int64_t threads;
    int64_t max_connections, header_timeout, body_timeout, idle_timeout, write_timeout;
};

static const struct rn_config_key rn__serve_keys[] = {
    {"listen", RN_CT_STRING, NULL, NULL, offsetof(struct rn__serve_cfg, listen),
     "host:port of the serving server (port 0 picks a free one; the status page's "
     "/api/v1/job shows the address).",
     NULL, RN_CK_REQUIRED, 0, 0},
    {"threads", RN_CT_INT, "2", "threads", offsetof(struct rn__serve_cfg, threads),
     "Serving threads, each with its own event loop on the shared port (SO_REUSEPORT). "
     "Operators' handlers run on these threads, several at once.",
     NULL, 0, 1, 64},
    {"max_connections", RN_CT_INT, "1024", "connections",
     offsetof(struct rn__serve_cfg, max_connections),
     "Open connections per serving thread. At the cap a new connection closes the oldest "
     "idle one (no request in progress); only when every one is busy is it answered 503.",
     NULL, 0, 1, 1000000},
    {"header_timeout", RN_CT_DURATION, "10s", "ms", offsetof(struct rn__serve_cfg, header_timeout),
     "A request's head must be complete this long after it starts (the connection, or its "
     "first byte on a kept-alive connection); else the connection is closed.",
     NULL, 0, 1, 3600000},
    {"body_timeout", RN_CT_DURATION, "10s", "ms", offsetof(struct rn__serve_cfg, body_timeout),
     "A request's body must be complete this long after its head; else the connection is "
     "closed.",
     NULL, 0, 1, 3600000},
    {"idle_timeout", RN_CT_DURATION, "10s", "ms", offsetof(struct rn__serve_cfg, idle_timeout),
     "A kept-alive connection with no request for this long is closed.", NULL, 0, 1, 3600000},
    {"write_timeout", RN_CT_DURATION, "10s", "ms", offsetof(struct rn__serve_cfg, write_timeout),
     "A client must take a whole response within this time; else the connection is closed.",
     NULL, 0, 1, 3600000},
    RN_CONFIG_END,
};

struct rn__state_cfg {
    const char *dir;
    int64_t cache_size, block_cache, write_buffer;
};

static const struct rn_config_key rn__state_keys[] = {
    {"dir", RN_CT_STRING, "var/state", NULL, offsetof(struct rn__state_cfg, dir),
     "Working directory of keyed state (RocksDB, one database per worker thread). Rebuilt "
     "from the checkpoint at every start.",
     NULL, 0, 0, 0},
    {"cache_size", RN_CT_SIZE, "64MiB", "bytes", offsetof(struct rn__state_cfg, cache_size),
     "Write-back cache of keyed state in front of RocksDB, per worker thread.", NULL, 0, 0,
     (int64_t)1 << 40},
    {"block_cache", RN_CT_SIZE, "32MiB", "bytes", offsetof(struct rn__state_cfg, block_cache),
     "RocksDB block cache per worker thread.", NULL, 0, 0, (int64_t)1 << 40},
    {"write_buffer", RN_CT_SIZE, "32MiB", "bytes", offsetof(struct rn__state_cfg, write_buffer),
     "Memory for RocksDB's memtables, all column families of a worker thread together; "
     "a checkpoint flushes them, so it bounds checkpoint work.", NULL, 0,
     1 << 20, (int64_t)1 << 34},
    RN_CONFIG_END,
};

struct rn__ckpt_cfg {
    const char *dir;
    int64_t interval, retain, timeout, tolerable_failures;
};

static const struct rn_config_key rn__ckpt_keys[] = {
    {"dir", RN_CT_STRING, "var/checkpoints", NULL, offsetof(struct rn__ckpt_cfg, dir),
     "Where checkpoints go: <dir>/<job>/chk-<id>/ (savepoints: savepoint-<id>/).", NULL, 0, 0, 0},
    {"interval", RN_CT_DURATION, "10s", "ms", offsetof(struct rn__ckpt_cfg, interval),
     "Time between checkpoints; 0: only on demand (REST) and at the end.", NULL, 0, 0,
     (int64_t)1 << 40},
    {"retain", RN_CT_INT, "3", "checkpoints", offsetof(struct rn__ckpt_cfg, retain),
     "Completed checkpoints kept; older ones are deleted (savepoints never are).", NULL, 0, 1,
     1000},
    {"timeout", RN_CT_DURATION, "10m", "ms", offsetof(struct rn__ckpt_cfg, timeout),
     "A checkpoint not complete after this long is given up.", NULL, 0, 1, (int64_t)1 << 40},
    {"tolerable_failures", RN_CT_INT, "3", "checkpoints",
     offsetof(struct rn__ckpt_cfg, tolerable_failures),
     "Checkpoints that may fail in a row (disk full, timeout, a task that cannot snapshot); "
     "one more fails the job. A failed final checkpoint is taken again until then.",
     NULL, 0, 0, 1000},
    RN_CONFIG_END,
};

struct rn__wm_cfg {
    int64_t out_of_orderness, idle_timeout, emit_every;
};

static const struct rn_config_key rn__wm_keys[] = {
    {"out_of_orderness", RN_CT_DURATION, "5s", "ms",
     offsetof(struct rn__wm_cfg, out_of_orderness),
     "Bounded out-of-orderness: a split's watermark trails its largest event time by this "
     "much (minus 1 ms).",
     NULL, 0, 0, (int64_t)1 << 40},
    {"idle_timeout", RN_CT_DURATION, "30s", "ms", offsetof(struct rn__wm_cfg, idle_timeout),
     "A split with no records for this long (wall clock) stops holding back the watermark; "
     "0: never.",
     NULL, 0, 0, (int64_t)1 << 40},
    {"emit_every", RN_CT_INT, "1024", "records", offsetof(struct rn__wm_cfg, emit_every),
     "A split emits its watermark after every this many records (counted from its start, so "
     "the places are the same in every run), and whenever it has caught up with its input.",
     NULL, 0, 1, (int64_t)1 << 30},
    RN_CONFIG_END,
};

static const struct rn_config_key rn__job_keys[] = {
    {"job", RN_CT_STRING, NULL, NULL, offsetof(struct rn__job_cfg, job),
     "Name of the job, shown on the status page.", NULL, RN_CK_REQUIRED, 0, 0},
    {"parallelism", RN_CT_INT, "1", "threads", offsetof(struct rn__job_cfg, parallelism),
     "Worker threads for keyed operators (each runs one subtask).", NULL, 0, 1, 1024},
    {"max_parallelism", RN_CT_INT, "128", "key groups",
     offsetof(struct rn__job_cfg, max_parallelism),
     "Number of key groups: keys hash into this many groups, the unit of "
     "redistribution. Fixed for the life of a job's state.",
     NULL, 0, 1, 32768},
    {"queue_batches", RN_CT_INT, "16", "batches", offsetof(struct rn__job_cfg, queue_batches),
     "Capacity of each queue between threads, in batches of up to 1024 records. A full "
     "queue blocks its producer (backpressure).",
     NULL, 0, 2, 65536},
    {"queue_memory", RN_CT_SIZE, "0", "bytes", offsetof(struct rn__job_cfg, queue_memory),
     "Bound on the batches all queues between threads hold together (0: none but "
     "`queue_batches`). Each queue gets this divided by the number of queues, in batches of "
     "about 292 KiB (256 KiB of payload and the record array), between 2 and `queue_batches`; "
     "`runnel validate` prints the result.",
     NULL, 0, 0, (int64_t)1 << 40},
    {"buffer_timeout", RN_CT_DURATION, "10ms", "ms", offsetof(struct rn__job_cfg, buffer_timeout),
     "Longest a partly filled batch waits at a queue between threads before it is sent "
     "anyway (latency bound under low load).",
     NULL, 0, 0, 60000},
    {"sources", RN_CT_NODE, NULL, NULL, offsetof(struct rn__job_cfg, sources),
     "Map of source id to source settings (`type:` and the connector's keys).", NULL,
     RN_CK_REQUIRED, 0, 0},
    {"operators", RN_CT_NODE, NULL, NULL, offsetof(struct rn__job_cfg, operators),
     "List of operators (`id`, `op`, `from`, and the operator's keys). `from` is one "
     "stream or a list: for an operator with several inputs, one stream per input in order; "
     "otherwise the union of the streams. `broadcast: [id]` sends a stream of `from` whole "
     "to every subtask.",
     NULL, 0, 0, 0},
    {"sinks", RN_CT_NODE, NULL, NULL, offsetof(struct rn__job_cfg, sinks),
     "Map of sink id to sink settings (`type:`, `from:` and the connector's keys).", NULL, 0,
     0, 0},
    {"state", RN_CT_NODE, NULL, NULL, offsetof(struct rn__job_cfg, state),
     "Keyed state: `dir`, `cache_size`, `block_cache`, `write_buffer` (see State).", NULL, 0, 0,
     0},
    {"checkpoint", RN_CT_NODE, NULL, NULL, offsetof(struct rn__job_cfg, checkpoint),
     "Checkpoints: `dir`, `interval`, `retain`, `timeout` (see Checkpoint). Without this "
     "section the job takes no checkpoints.",
     NULL, 0, 0, 0},
    {"watermark", RN_CT_NODE, NULL, NULL, offsetof(struct rn__job_cfg, watermark),
     "Event time: `out_of_orderness`, `idle_timeout`, `emit_every` (see Watermark).", NULL, 0,
     0, 0},
    {"http", RN_CT_NODE, NULL, NULL, offsetof(struct rn__job_cfg, http),
     "Status page and REST API: `listen: host:port` (port 0 picks a free one).", NULL, 0, 0,
     0},
    {"serve", RN_CT_NODE, NULL, NULL, offsetof(struct rn__job_cfg, serve),
     "Serving server for operators' HTTP routes (model inference, say), apart from the "
     "status page: `listen`, `threads`, connection limits and timeouts (see Serve).",
     NULL, 0, 0, 0},
    RN_CONFIG_END,
};

const struct rn_config_key *rn__job_config_keys(int which)
{
    switch (which) {
    case 1: return rn__state_keys;
    case 2: return rn__ckpt_keys;
    case 3: return rn__wm_keys;
    case 4: return rn__serve_keys;
    default: return rn__job_keys;
    }
}

static void rn__job_free_graph(struct rn_job *job)
{
    for (int i = 0; i < job->n_nodes; i++) {
        struct rn_node *n = &job->nodes[i];
        if (n->ctx_inited && n->type->fini) n->type->fini(n->ctx);
        free(n->ctx);
        free(n->out_types);
        free(n->lat);
    }
    free(job->nodes);
    free(job->edges);
}

static int rn__find_node(const struct rn_job *job, const char *id)
{
    for (int i = 0; i < job->n_nodes; i++)
        if (strcmp(job->nodes[i].id, id) == 0) return i;
    return -1;
}

static const char *rn__kind_name(enum rn_op_kind k)
{
    return k == RN_KIND_SOURCE ? "source" : k == RN_KIND_SINK ? "sink" : "operator";
}

/* Reports an unknown type name with a suggestion from the registry. */
static void rn__unknown_type(const struct rn_cfg_node *at, const char *name, enum rn_op_kind kind,
                             char *errbuf, size_t errlen)
{
    const struct rn_op_type *types[128];
    const char *names[128];
    size_t n = rn_op_list(kind, types, 128);
    struct rn_buf all = RN_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        names[i] = types[i]->name;
        rn_buf_printf(&all, "%s%s", i ? ", " : "", names[i]);
    }
    rn_buf_putc(&all, 0);
    const char *s = rn_suggest(name, names, n);
    if (s)
        rn_cfg_errf(errbuf, errlen, at, "unknown %s type '%s' (did you mean '%s'?)",
                    rn__kind_name(kind), name, s);
    else
        rn_cfg_errf(errbuf, errlen, at, "unknown %s type '%s' (known: %s)", rn__kind_name(kind),
                    name, all.data);
    rn_buf_free(&all);
}

static int rn__add_node(struct rn_job *job, const char *id, const struct rn_cfg_node *id_at,
                        enum rn_op_kind kind, const char *type_name,
                        const struct rn_cfg_node *type_at, const struct rn_cfg_node *cfg,
                        char *errbuf, size_t errlen)
{
    if (!id[0]) {
        rn_cfg_errf(errbuf, errlen, id_at, "an id must not be empty");
        return RN_EINVAL;
    }
    for (const char *c = id; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '_' || *c == '-')
            continue;
        rn_cfg_errf(errbuf, errlen, id_at,
                    "id '%s': use letters, digits, '_' and '-' only (ids name files, metrics "
                    "labels and ports)",
                    id);
        return RN_EINVAL;
    }
    int dup = rn__find_node(job, id);
    if (dup >= 0) {
        rn_cfg_errf(errbuf, errlen, id_at, "duplicate id '%s' (also at %s:%d:%d)", id,
                    job->nodes[dup].cfg->file, job->nodes[dup].id_line, job->nodes[dup].id_col);
        return RN_EINVAL;
    }
    if (job->n_nodes == RN_MAX_NODES) {
        rn_cfg_errf(errbuf, errlen, id_at, "too many nodes (at most %d)", RN_MAX_NODES);
        return RN_EINVAL;
    }
    const struct rn_op_type *t = rn_op_find(type_name, kind);
    if (!t) {
        rn__unknown_type(type_at, type_name, kind, errbuf, errlen);
        return RN_EINVAL;
    }
    struct rn_node *n = &job->nodes[job->n_nodes];
    memset(n, 0, sizeof *n);
    n->index = job->n_nodes;
    n->id = id;
    n->kind = kind;
    n->type = t;
    n->cfg = cfg;
    n->id_line = id_at->line;
    n->id_col = id_at->col;
    n->in_type = -1;
    n->key_field = -1;
    n->n_inputs = kind == RN_KIND_SOURCE ? 0 : t->n_inputs > 1 ? (int)t->n_inputs : 1;
    for (int i = 0; i < RN_MAX_INPUTS; i++) {
        n->in_types[i] = -1;
        n->key_fields[i] = -1;
    }
    n->source_index = kind == RN_KIND_SOURCE ? job->n_sources++ : -1;
    n->ctx = rn_xcalloc(1, t->ctx_size ? t->ctx_size : 1);
    job->n_nodes++;
    while (t->latencies && t->latencies[n->n_lat] && n->n_lat < RN_OP_MAX_LATENCIES)
        n->n_lat++;
    if (n->n_lat) n->lat = rn_xcalloc((size_t)n->n_lat, sizeof *n->lat);

    const char *const *skip = kind == RN_KIND_OPERATOR ? rn__op_skip : rn__conn_skip;
    /* Side-output route keys are the operator's own, besides its table. */
    const char *skip_all[32];
    size_t ns = 0;
    for (; skip[ns]; ns++) skip_all[ns] = skip[ns];
    for (uint32_t p = 1; p < t->n_outputs && ns < 30; p++) skip_all[ns++] = t->outputs[p].name;
    skip_all[ns] = NULL;
    int rc = rn_config_apply(t->config, cfg, n->ctx, skip_all, errbuf, errlen);
    if (rc) return rc;
    if (t->init) {
        rc = t->init(n->ctx, cfg, errbuf, errlen);
        if (rc) return rc;
    }
    n->ctx_inited = 1;
    if (t->init_types) {
        rc = t->init_types(n->ctx, job->types, cfg, errbuf, errlen);
        if (rc) return rc;
    }
    return 0;
}

static int rn__add_edge(struct rn_job *job, int from, int port, int to, int input,
                        const struct rn_cfg_node *where, char *errbuf, size_t errlen)
{
    for (int e = 0; e < job->n_edges; e++) {
        const struct rn_edge *d = &job->edges[e];
        if (d->from == from && d->port == port && d->to == to && d->input == input) {
            rn_cfg_errf(errbuf, errlen, where,
                        "'%s' already reads from '%s%s%s' (at %s:%d:%d): every record would "
                        "arrive twice",
                        job->nodes[to].id, job->nodes[from].id, port ? "." : "",
                        port ? job->nodes[from].type->outputs[port].name : "", d->where->file,
                        d->where->line, d->where->col);
            return RN_EINVAL;
        }
    }
    job->edges = rn_xrealloc(job->edges, sizeof *job->edges * (size_t)(job->n_edges + 1));
    struct rn_edge *e = &job->edges[job->n_edges++];
    e->from = from;
    e->port = port;
    e->to = to;
    e->mode = RN_EDGE_FORWARD;
    e->input = input;
    e->broadcast = 0;
    e->where = where;
    job->nodes[to].n_in++;
    return 0;
}

/* Resolves one `from:` reference "id" or "id.port" at node `to`, feeding its
 * input `input`. */
static int rn__resolve_from(struct rn_job *job, int to, int input, const struct rn_cfg_node *ref,
                            char *errbuf, size_t errlen)
{
    if (ref->kind != RN_CFG_SCALAR) {
        rn_cfg_errf(errbuf, errlen, ref, "'from' must be an id or a list of ids");
        return RN_EINVAL;
    }
    char *id = rn_xstrdup(ref->value);
    char *dot = strchr(id, '.');
    const char *port_name = NULL;
    if (dot) {
        *dot = 0;
        port_name = dot + 1;
    }
    int rc = RN_EINVAL;
    int from = rn__find_node(job, id);
    if (from < 0) {
        const char *names[RN_MAX_NODES];
        for (int i = 0; i < job->n_nodes; i++) names[i] = job->nodes[i].id;
        const char *s = rn_suggest(id, names, (size_t)job->n_nodes);
        if (s)
            rn_cfg_errf(errbuf, errlen, ref, "unknown input '%s' (did you mean '%s'?)", id, s);
        else
            rn_cfg_errf(errbuf, errlen, ref, "unknown input '%s': no source or operator has that id",
                        id);
        goto out;
    }
    if (from == to) {
        rn_cfg_errf(errbuf, errlen, ref, "'%s' cannot read its own output (cycle)", id);
        goto out;
    }
    const struct rn_node *f = &job->nodes[from];
    if (f->kind == RN_KIND_SINK) {
        rn_cfg_errf(errbuf, errlen, ref, "'%s' is a sink: it has no output to read", id);
        goto out;
    }
    int port = 0;
    if (port_name) {
        port = -1;
        for (uint32_t p = 1; p < f->type->n_outputs; p++)
            if (strcmp(f->type->outputs[p].name, port_name) == 0) port = (int)p;
        if (port < 0) {
            const char *names[32];
            size_t k = 0;
            for (uint32_t p = 1; p < f->type->n_outputs && k < 32; p++)
                names[k++] = f->type->outputs[p].name;
            const char *s = rn_suggest(port_name, names, k);
            rn_cfg_errf(errbuf, errlen, ref, "'%s' (%s) has no output named '%s'%s%s%s", id,
                        f->type->name, port_name, s ? " (did you mean '" : "", s ? s : "",
                        s ? "'?)" : "");
            goto out;
        }
    }
    rc = rn__add_edge(job, from, port, to, input, ref, errbuf, errlen);
out:
    free(id);
    return rc;
}

static int rn__resolve_from_list(struct rn_job *job, int to, const struct rn_cfg_node *from,
                                 char *errbuf, size_t errlen)
{
    const struct rn_node *n = &job->nodes[to];
    if (n->n_inputs > 1) {
        /* One stream per input, in the order the type declares them. */
        int k = 0;
        for (const struct rn_cfg_node *c = from->kind == RN_CFG_SEQ ? from->child : NULL; c;
             c = c->next)
            k++;
        if (k != n->n_inputs) {
            struct rn_buf names = RN_BUF_INIT;
            for (int i = 0; i < n->n_inputs; i++)
                rn_buf_printf(&names, "%s%s", i ? ", " : "", n->type->inputs[i].name);
            rn_buf_putc(&names, 0);
            rn_cfg_errf(errbuf, errlen, from,
                        "'%s' (%s) has %d inputs: 'from' must list one stream for each, in order "
                        "[%s]",
                        n->id, n->type->name, n->n_inputs, names.data);
            rn_buf_free(&names);
            return RN_EINVAL;
        }
        int i = 0;
        for (const struct rn_cfg_node *c = from->child; c; c = c->next, i++) {
            int rc = rn__resolve_from(job, to, i, c, errbuf, errlen);
            if (rc) return rc;
        }
        return 0;
    }
    if (from->kind == RN_CFG_SEQ) {
        if (!from->child) {
            rn_cfg_errf(errbuf, errlen, from, "'from' must not be empty");
            return RN_EINVAL;
        }
        for (const struct rn_cfg_node *c = from->child; c; c = c->next) {
            int rc = rn__resolve_from(job, to, 0, c, errbuf, errlen);
            if (rc) return rc;
        }
        return 0;
    }
    return rn__resolve_from(job, to, 0, from, errbuf, errlen);
}

/* The name an edge's producer has in `from:`: "id" or "id.port". */
static void rn__edge_from_name(const struct rn_job *job, const struct rn_edge *ed, char *buf,
                               size_t len)
{
    const struct rn_node *f = &job->nodes[ed->from];
    snprintf(buf, len, "%s%s%s", f->id, ed->port ? "." : "",
             ed->port ? f->type->outputs[ed->port].name : "");
}

/* Broadcast edges: inputs the type declares RN_IN_BROADCAST, and the streams
 * an operator's `broadcast:` names (each one of its `from:` entries). */
static int rn__resolve_broadcast(struct rn_job *job, int to, char *errbuf, size_t errlen)
{
    const struct rn_node *n = &job->nodes[to];
    for (int e = 0; e < job->n_edges; e++) {
        struct rn_edge *ed = &job->edges[e];
        if (ed->to == to && n->n_inputs > 1 && (n->type->inputs[ed->input].flags & RN_IN_BROADCAST))
            ed->broadcast = 1;
    }
    const struct rn_cfg_node *b = rn_cfg_get(n->cfg, "broadcast");
    if (!b) return 0;
    if (b->kind == RN_CFG_MAP || (b->kind == RN_CFG_SEQ && !b->child)) {
        rn_cfg_errf(errbuf, errlen, b, "'broadcast' must list streams of 'from' (such as [models])");
        return RN_EINVAL;
    }
    const struct rn_cfg_node *items = b->kind == RN_CFG_SEQ ? b->child : b;
    for (const struct rn_cfg_node *c = items; c; c = b->kind == RN_CFG_SEQ ? c->next : NULL) {
        if (c->kind != RN_CFG_SCALAR) {
            rn_cfg_errf(errbuf, errlen, c, "'broadcast' must list streams of 'from'");
            return RN_EINVAL;
        }
        int found = 0;
        for (int e = 0; e < job->n_edges; e++) {
            struct rn_edge *ed = &job->edges[e];
            char name[256];
            if (ed->to != to) continue;
            rn__edge_from_name(job, ed, name, sizeof name);
            if (strcmp(name, c->value) == 0) {
                ed->broadcast = 1;
                found = 1;
            }
        }
        if (!found) {
            rn_cfg_errf(errbuf, errlen, c,
                        "'%s' does not read from '%s': 'broadcast' names streams of its 'from'",
                        n->id, c->value);
            return RN_EINVAL;
        }
    }
    return 0;
}

/* Side outputs routed by the producing operator: `dead_letter: rejected`. */
static int rn__resolve_routes(struct rn_job *job, int from, char *errbuf, size_t errlen)
{
    const struct rn_node *f = &job->nodes[from];
    for (uint32_t p = 1; p < f->type->n_outputs; p++) {
        const struct rn_cfg_node *r = rn_cfg_get(f->cfg, f->type->outputs[p].name);
        if (!r) continue;
        const struct rn_cfg_node *items = r->kind == RN_CFG_SEQ ? r->child : r;
        for (const struct rn_cfg_node *c = items; c; c = r->kind == RN_CFG_SEQ ? c->next : NULL) {
            if (c->kind != RN_CFG_SCALAR) {
                rn_cfg_errf(errbuf, errlen, c, "'%s' must name a sink or operator",
                            f->type->outputs[p].name);
                return RN_EINVAL;
            }
            int to = rn__find_node(job, c->value);
            if (to >= 0 && job->nodes[to].kind == RN_KIND_SOURCE) {
                rn_cfg_errf(errbuf, errlen, c, "'%s' is a source: '%s' must name a sink or operator",
                            c->value, f->type->outputs[p].name);
                return RN_EINVAL;
            }
            if (to < 0) {
                const char *names[RN_MAX_NODES];
                size_t k = 0;
                for (int i = 0; i < job->n_nodes; i++)
                    if (job->nodes[i].kind != RN_KIND_SOURCE) names[k++] = job->nodes[i].id;
                const char *s = rn_suggest(c->value, names, k);
                if (s)
                    rn_cfg_errf(errbuf, errlen, c, "unknown sink or operator '%s' (did you mean '%s'?)",
                                c->value, s);
                else
                    rn_cfg_errf(errbuf, errlen, c, "unknown sink or operator '%s'", c->value);
                return RN_EINVAL;
            }
            if (to == from) {
                rn_cfg_errf(errbuf, errlen, c, "'%s' cannot read its own output (cycle)", c->value);
                return RN_EINVAL;
            }
            if (job->nodes[to].n_inputs > 1) {
                rn_cfg_errf(errbuf, errlen, c,
                            "'%s' has several inputs: name '%s.%s' in its 'from' list instead",
                            c->value, f->id, f->type->outputs[p].name);
                return RN_EINVAL;
            }
            if (rn__add_edge(job, from, (int)p, to, 0, c, errbuf, errlen)) return RN_EINVAL;
        }
    }
    return 0;
}

/* Kahn's algorithm; fills order[]. On a cycle, reports one node on it. */
static int rn__topo(struct rn_job *job, int *order, char *errbuf, size_t errlen)
{
    int *indeg = rn_xcalloc((size_t)job->n_nodes, sizeof *indeg);
    for (int e = 0; e < job->n_edges; e++) indeg[job->edges[e].to]++;
    int head = 0, tail = 0;
    for (int i = 0; i < job->n_nodes; i++)
        if (indeg[i] == 0) order[tail++] = i;
    while (head < tail) {
        int n = order[head++];
        for (int e = 0; e < job->n_edges; e++)
            if (job->edges[e].from == n && --indeg[job->edges[e].to] == 0)
                order[tail++] = job->edges[e].to;
    }
    int rc = 0;
    if (tail < job->n_nodes) {
        /* Nodes left have an input from another node left. Walking such inputs
         * backwards n times from any of them ends on the cycle itself. */
        int at = -1;
        for (int i = 0; i < job->n_nodes && at < 0; i++)
            if (indeg[i] > 0) at = i;
        const struct rn_edge *on = NULL;
        for (int step = 0; step <= job->n_nodes; step++) {
            for (int e = 0; e < job->n_edges; e++) {
                if (job->edges[e].to == at && indeg[job->edges[e].from] > 0) {
                    on = &job->edges[e];
                    at = on->from;
                    break;
                }
            }
        }
        /* `at` is on the cycle; report the edge into it from the cycle. */
        for (int e = 0; e < job->n_edges; e++) {
            const struct rn_edge *ed = &job->edges[e];
            if (ed->to == at && indeg[ed->from] > 0) {
                /* Follow forward to check ed->from is on the cycle as well. */
                on = ed;
                break;
            }
        }
        if (on)
            rn_cfg_errf(errbuf, errlen, on->where, "cycle: '%s' reads from '%s', which depends on '%s' itself",
                        job->nodes[on->to].id, job->nodes[on->from].id, job->nodes[on->to].id);
        rc = RN_EINVAL;
    }
    free(indeg);
    return rc;
}

static int rn__port_type(const struct rn_node *n, int port)
{
    return n->out_types[port];
}

/* Numbers the job's record types: after raw and dead_letter, those its
 * operator types define, in the order the job names them, then those of every
 * other registered type, so that an input can name a type that no operator of
 * this job gives (and the mismatch be reported as such). */
static int rn__add_types(struct rn_job *job, const struct rn_op_type *t, int own, char *errbuf,
                         size_t errlen)
{
    for (size_t i = 0; t->types && t->types[i]; i++) {
        int rc = rn__types_add(job->types, t->types[i]);
        if (rc == RN_EFULL) {
            rn_errf(errbuf, errlen, "too many record types in job '%s'", job->name);
            return rc;
        }
        /* Two definitions of one name: an error between the job's own
         * operators; otherwise the job's own (or the first) stands. */
        if (rc == RN_EINVAL && own) {
            rn_errf(errbuf, errlen,
                    "operator type '%s' defines record type '%s', which another operator type "
                    "of job '%s' defines differently",
                    t->name, t->types[i]->name, job->name);
            return rc;
        }
    }
    return 0;
}

static int rn__number_types(struct rn_job *job, char *errbuf, size_t errlen)
{
    int rc;
    for (int i = 0; i < job->n_nodes; i++)
        if ((rc = rn__add_types(job, job->nodes[i].type, 1, errbuf, errlen))) return rc;
    static const enum rn_op_kind kinds[] = {RN_KIND_SOURCE, RN_KIND_OPERATOR, RN_KIND_SINK};
    for (size_t k = 0; k < RN_ARRAY_LEN(kinds); k++) {
        const struct rn_op_type *all[128];
        size_t n = rn_op_list(kinds[k], all, RN_ARRAY_LEN(all));
        for (size_t i = 0; i < n; i++)
            if ((rc = rn__add_types(job, all[i], 0, errbuf, errlen))) return rc;
    }
    return 0;
}

/* Resolves record types in topological order and checks every edge. */
static int rn__check_types(struct rn_job *job, const int *order, char *errbuf, size_t errlen)
{
    for (int k = 0; k < job->n_nodes; k++) {
        struct rn_node *n = &job->nodes[order[k]];
        const struct rn_op_type *t = n->type;
        /* Input types: the streams into one input must agree, and match what
         * the type takes there. */
        const struct rn_edge *firsts[RN_MAX_INPUTS] = {NULL};
        for (int e = 0; e < job->n_edges; e++) {
            const struct rn_edge *ed = &job->edges[e];
            if (ed->to != n->index) continue;
            int ty = rn__port_type(&job->nodes[ed->from], ed->port);
            const char *ty_name = rn_types_get(job->types, ty)->name;
            const char *want = n->n_inputs > 1 ? t->inputs[ed->input].type : t->in_type;
            if (n->n_inputs > 1 && strcmp(want, "*") != 0 && strcmp(want, ty_name) != 0) {
                rn_cfg_errf(errbuf, errlen, ed->where,
                            "type mismatch: input %d ('%s') of %s '%s' (%s) takes '%s' records, "
                            "but '%s'%s%s gives '%s'",
                            ed->input + 1, t->inputs[ed->input].name, rn__kind_name(n->kind),
                            n->id, t->name, want, job->nodes[ed->from].id, ed->port ? "." : "",
                            ed->port ? job->nodes[ed->from].type->outputs[ed->port].name : "",
                            ty_name);
                return RN_ETYPE;
            }
            if (strcmp(want, "*") != 0 && strcmp(want, ty_name) != 0) {
                rn_cfg_errf(errbuf, errlen, ed->where,
                            "type mismatch: %s '%s' (%s) takes '%s' records, but '%s'%s%s gives "
                            "'%s'",
                            rn__kind_name(n->kind), n->id, t->name, t->in_type,
                            job->nodes[ed->from].id, ed->port ? "." : "",
                            ed->port ? job->nodes[ed->from].type->outputs[ed->port].name : "",
                            ty_name);
                return RN_ETYPE;
            }
            const struct rn_edge *first = firsts[ed->input];
            if (!first) {
                firsts[ed->input] = ed;
                n->in_types[ed->input] = ty;
                if (ed->input == 0) n->in_type = ty;
            } else if (n->in_types[ed->input] != ty) {
                rn_cfg_errf(errbuf, errlen, ed->where,
                            "type mismatch: inputs of '%s' must all carry one record type, but "
                            "'%s' gives '%s' and '%s' gives '%s'",
                            n->id, job->nodes[first->from].id,
                            rn_types_get(job->types, n->in_types[ed->input])->name,
                            job->nodes[ed->from].id,
                            ty_name);
                return RN_ETYPE;
            }
        }
        if (n->kind != RN_KIND_SOURCE && !firsts[0]) {
            if (n->kind == RN_KIND_SINK)
                rn_cfg_errf(errbuf, errlen, n->cfg,
                            "sink '%s' has no input: give it 'from:' or route a side output "
                            "(such as 'dead_letter: %s') to it",
                            n->id, n->id);
            else
                rn_cfg_errf(errbuf, errlen, n->cfg, "operator '%s' has no input ('from:')", n->id);
            return RN_EINVAL;
        }
        /* Output types. */
        n->out_types = rn_xcalloc(t->n_outputs ? t->n_outputs : 1, sizeof *n->out_types);
        for (uint32_t p = 0; p < t->n_outputs; p++) {
            const char *tn = t->outputs[p].type;
            const char *dyn = t->out_type ? t->out_type(n->ctx, p) : NULL;
            if (dyn) {
                int id = rn_types_find(job->types, dyn);
                if (id < 0) {
                    rn_cfg_errf(errbuf, errlen, n->cfg, "%s '%s' emits unknown record type '%s'",
                                t->name, n->id, dyn);
                    return RN_ETYPE;
                }
                n->out_types[p] = id;
                continue;
            }
            int id = strcmp(tn, "*") == 0 ? n->in_type : rn_types_find(job->types, tn);
            if (id < 0) {
                rn_cfg_errf(errbuf, errlen, n->cfg, "internal: '%s' declares unknown type '%s'",
                            t->name, tn);
                return RN_EINVAL;
            }
            n->out_types[p] = id;
        }
        /* Keyed operators: the key field must exist in the input type; with
         * several inputs, each non-broadcast input has its own. */
        if (t->flags & RN_OP_KEYED) {
            const struct rn_cfg_node *kn = rn_cfg_get(n->cfg, "key");
            int kn_list = kn && kn->kind == RN_CFG_SEQ && n->n_inputs > 1;
            if (kn && kn->kind != RN_CFG_SCALAR && !kn_list) {
                rn_cfg_errf(errbuf, errlen, kn,
                            n->n_inputs > 1 ? "'key' must be a field name or a list of one per input"
                                            : "'key' must be a field name");
                return RN_EINVAL;
            }
            const struct rn_cfg_node *kc = kn_list ? kn->child : kn;
            if (kn_list) {
                int k = 0;
                for (const struct rn_cfg_node *c = kn->child; c; c = c->next) k++;
                if (k != n->n_inputs) {
                    rn_cfg_errf(errbuf, errlen, kn,
                                "'key' lists %d fields, but '%s' has %d inputs (one each, in order)",
                                k, n->id, n->n_inputs);
                    return RN_EINVAL;
                }
            }
            for (int i = 0; i < n->n_inputs; i++, kc = kn_list ? kc->next : kc) {
                if (kc && kc->kind != RN_CFG_SCALAR) {
                    rn_cfg_errf(errbuf, errlen, kc, "'key' must be a field name");
                    return RN_EINVAL;
                }
                int bcast = 1;
                for (int e = 0; e < job->n_edges; e++)
                    if (job->edges[e].to == n->index && job->edges[e].input == i &&
                        !job->edges[e].broadcast)
                        bcast = 0;
                if (bcast) continue; /* every subtask gets all of it: no key */
                const char *name = kc ? kc->value
                                   : n->n_inputs > 1 && t->inputs[i].key ? t->inputs[i].key
                                                                         : t->default_key;
                const struct rn_type *in = rn_types_get(job->types, n->in_types[i]);
                char which[96] = "";
                if (n->n_inputs > 1)
                    snprintf(which, sizeof which, " for input %d ('%s')", i + 1, t->inputs[i].name);
                if (!name || !name[0]) {
                    rn_cfg_errf(errbuf, errlen, n->cfg,
                                "operator '%s' needs 'key:'%s (a field of '%s')", n->id, which,
                                in->name);
                    return RN_EINVAL;
                }
                int field = rn_type_field(in, name);
                if (field < 0) {
                    size_t nk = 0;
                    while (in->key_fields && in->key_fields[nk]) nk++;
                    const char *sg = nk ? rn_suggest(name, in->key_fields, nk) : NULL;
                    struct rn_buf all = RN_BUF_INIT;
                    for (size_t q = 0; q < nk; q++)
                        rn_buf_printf(&all, "%s%s", q ? ", " : "", in->key_fields[q]);
                    rn_buf_putc(&all, 0);
                    rn_cfg_errf(errbuf, errlen, kc ? kc : n->cfg,
                                "'%s' records have no key field '%s'%s%s%s%s (key fields: %s)",
                                in->name, name, which, sg ? " (did you mean '" : "", sg ? sg : "",
                                sg ? "'?)" : "", nk ? all.data : "none");
                    rn_buf_free(&all);
                    return RN_ETYPE;
                }
                n->key_names[i] = name;
                n->key_fields[i] = field;
            }
            n->key_name = n->key_names[0];
            n->key_field = n->key_fields[0];
        } else if (rn_cfg_get(n->cfg, "key") && n->kind == RN_KIND_OPERATOR) {
            rn_cfg_key_errf(errbuf, errlen, rn_cfg_get(n->cfg, "key"),
                            "operator '%s' (%s) is not keyed: 'key' does not apply", n->id,
                            t->name);
            return RN_EINVAL;
        }
    }
    return 0;
}

/* Parallelism per node and partitioning per edge. */
static int rn__assign_parallelism(struct rn_job *job, const int *order, char *errbuf,
                                  size_t errlen)
{
    for (int k = 0; k < job->n_nodes; k++) {
        struct rn_node *n = &job->nodes[order[k]];
        const struct rn_cfg_node *pn = rn_cfg_get(n->cfg, "parallelism");
        int64_t p = 0;
        /* `partitions:` is the cluster's (rn_cluster_stages.c); here only checked. */
        const struct rn_cfg_node *parts = rn_cfg_get(n->cfg, "partitions");
        if (parts && n->kind == RN_KIND_OPERATOR &&
            (parts->kind != RN_CFG_SCALAR || rn_parse_i64(parts->value, &p) || p < 1 ||
             p > 1024)) {
            rn_cfg_errf(errbuf, errlen, parts, "'partitions' must be an integer in 1..1024");
            return RN_EINVAL;
        }
        p = 0;
        if (n->kind == RN_KIND_OPERATOR && (n->type->flags & RN_OP_SINGLETON)) {
            if (pn && (rn_parse_i64(pn->value, &p) || p != 1)) {
                rn_cfg_errf(errbuf, errlen, pn, "'%s' runs as one instance: parallelism must be 1",
                            n->type->name);
                return RN_EINVAL;
            }
            p = 1;
        } else if (pn && n->kind == RN_KIND_OPERATOR) {
            if (rn_parse_i64(pn->value, &p) || p < 1 || p > 1024) {
                rn_cfg_errf(errbuf, errlen, pn, "'parallelism' must be an integer in 1..1024");
                return RN_EINVAL;
            }
        } else if (n->kind == RN_KIND_SOURCE || n->kind == RN_KIND_SINK) {
            p = 1;
        } else if (n->type->flags & RN_OP_KEYED) {
            p = job->parallelism;
        } else {
            for (int e = 0; e < job->n_edges; e++)
                if (job->edges[e].to == n->index)
                    p = RN_MAX(p, (int64_t)job->nodes[job->edges[e].from].parallelism);
        }
        if ((n->type->flags & RN_OP_KEYED) && p > job->max_parallelism) {
            rn_cfg_errf(errbuf, errlen, pn ? pn : n->cfg,
                        "parallelism %lld of '%s' exceeds max_parallelism %u", (long long)p, n->id,
                        job->max_parallelism);
            return RN_EINVAL;
        }
        n->parallelism = (uint32_t)p;
    }
    for (int e = 0; e < job->n_edges; e++) {
        struct rn_edge *ed = &job->edges[e];
        const struct rn_node *f = &job->nodes[ed->from], *t = &job->nodes[ed->to];
        if (ed->broadcast) {
            ed->mode = RN_EDGE_BROADCAST;
        } else if (t->type->flags & RN_OP_KEYED) {
            int in = ed->input;
            int same_key = (f->type->flags & RN_OP_KEYED) && ed->port == 0 &&
                           f->parallelism == t->parallelism &&
                           (f->in_type == t->in_types[in] || (f->type->flags & RN_OP_KEEPS_KEY)) &&
                           f->key_name && t->key_names[in] &&
                           strcmp(f->key_name, t->key_names[in]) == 0;
            ed->mode = same_key ? RN_EDGE_FORWARD : RN_EDGE_HASH;
        } else if (f->parallelism == t->parallelism) {
            ed->mode = RN_EDGE_FORWARD;
        } else if (t->parallelism == 1) {
            ed->mode = RN_EDGE_GATHER;
        } else {
            ed->mode = RN_EDGE_REBALANCE;
        }
    }
    return 0;
}

struct rn_job *rn_job_load(const char *path, const struct rn_job_options *opt, char *errbuf,
                           size_t errlen)
{
    rn_operators_init();
    struct rn_job *job = rn_xcalloc(1, sizeof *job);
    job->types = rn__types_create();
    pthread_mutex_init(&job->err_mu, NULL);
    pthread_mutex_init(&job->rate_mu, NULL);
    job->quiet = opt ? opt->quiet : 0;
    job->hold = opt ? opt->hold : 0;
    job->token_file = opt ? opt->token_file : NULL;
    job->doc = rn_cfg_load_file(path, errbuf, errlen);
    if (!job->doc) goto fail;
    for (size_t i = 0; opt && i < opt->n_overrides; i++)
        if (rn_cfg_override(job->doc, opt->overrides[i], errbuf, errlen)) goto fail;

    struct rn__job_cfg jc;
    memset(&jc, 0, sizeof jc);
    const struct rn_cfg_node *root = job->doc->root;
    if (rn_config_apply(rn__job_keys, root, &jc, NULL, errbuf, errlen)) goto fail;
    job->name = jc.job;
    job->parallelism = (uint32_t)jc.parallelism;
    job->max_parallelism = (uint32_t)jc.max_parallelism;
    job->channel_capacity = (uint32_t)jc.queue_batches;
    job->queue_memory = jc.queue_memory;
    job->buffer_timeout_ns = jc.buffer_timeout * 1000000;
    {
        struct rn__state_cfg sc;
        struct rn__ckpt_cfg cc;
        struct rn__wm_cfg wc;
        memset(&sc, 0, sizeof sc);
        memset(&cc, 0, sizeof cc);
        memset(&wc, 0, sizeof wc);
        if (rn_config_apply(rn__state_keys, jc.state, &sc, NULL, errbuf, errlen)) goto fail;
        if (rn_config_apply(rn__ckpt_keys, jc.checkpoint, &cc, NULL, errbuf, errlen)) goto fail;
        if (rn_config_apply(rn__wm_keys, jc.watermark, &wc, NULL, errbuf, errlen)) goto fail;
        job->state_root = sc.dir;
        job->state.cache_size = sc.cache_size;
        job->state.block_cache = sc.block_cache;
        job->state.write_buffer = sc.write_buffer;
        job->out_of_orderness_ms = wc.out_of_orderness;
        job->idle_timeout_ms = wc.idle_timeout;
        job->emit_every = (uint64_t)wc.emit_every;
        job->ckpt_enabled = jc.checkpoint != NULL;
        job->ckpt_root = cc.dir;
        job->ckpt_interval_ms = cc.interval;
        job->ckpt_retain = cc.retain;
        job->ckpt_timeout_ms = cc.timeout;
        job->ckpt_tolerable = cc.tolerable_failures;
        size_t dl = strlen(cc.dir) + strlen(job->name) + 2;
        job->ckpt_dir = rn_xmalloc(dl);
        snprintf(job->ckpt_dir, dl, "%s/%s", cc.dir, job->name);
        job->fresh = opt ? opt->fresh : 0;
        job->from_checkpoint = opt ? opt->from_checkpoint : NULL;
        if (job->from_checkpoint && !job->ckpt_enabled) {
            rn_errf(errbuf, errlen, "%s: --from-checkpoint needs a 'checkpoint:' section in the job",
                    path);
            goto fail;
        }
        for (const char *c = job->name; *c; c++) {
            if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                *c == '_' || *c == '-' || (*c == '.' && c != job->name))
                continue;
            rn_cfg_errf(errbuf, errlen, rn_cfg_get(root, "job"),
                        "job name '%s': use letters, digits, '_', '-' and '.' (not first) only; "
                        "it names directories and metrics labels",
                        job->name);
            goto fail;
        }
    }
    if (job->parallelism > job->max_parallelism) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(root, "parallelism"),
                    "parallelism %u exceeds max_parallelism %u", job->parallelism,
                    job->max_parallelism);
        goto fail;
    }
    if (jc.http) {
        static const char *const http_keys[] = {"listen", NULL};
        if (rn_config_check_keys(jc.http, http_keys, "http", errbuf, errlen)) goto fail;
        const struct rn_cfg_node *l = rn_cfg_get(jc.http, "listen");
        if (l && l->kind != RN_CFG_SCALAR) {
            rn_cfg_errf(errbuf, errlen, l, "'listen' must be host:port");
            goto fail;
        }
        if (l && l->value[0]) {
            const char *colon = strrchr(l->value, ':');
            int64_t port;
            if (!colon || rn_parse_i64(colon + 1, &port) || port < 0 || port > 65535) {
                rn_cfg_errf(errbuf, errlen, l, "'listen' must be host:port, got '%s'", l->value);
                goto fail;
            }
            job->http_listen = l->value;
        }
    }

    if (jc.serve) {
        struct rn__serve_cfg sv;
        memset(&sv, 0, sizeof sv);
        if (rn_config_apply(rn__serve_keys, jc.serve, &sv, NULL, errbuf, errlen)) goto fail;
        const char *colon = strrchr(sv.listen, ':');
        int64_t port;
        if (!colon || rn_parse_i64(colon + 1, &port) || port < 0 || port > 65535) {
            rn_cfg_errf(errbuf, errlen, rn_cfg_get(jc.serve, "listen"),
                        "'listen' must be host:port, got '%s'", sv.listen);
            goto fail;
        }
        job->serve_listen = sv.listen;
        job->serve_threads = (int)sv.threads;
        job->serve_http = (struct rn_http_opts){
            .keep_alive = 1,
            .reuseport = 1,
            .max_conns = (int)sv.max_connections,
            .header_timeout_ms = (int)sv.header_timeout,
            .body_timeout_ms = (int)sv.body_timeout,
            .idle_timeout_ms = (int)sv.idle_timeout,
            .write_timeout_ms = (int)sv.write_timeout,
        };
    }

    job->nodes = rn_xcalloc(RN_MAX_NODES, sizeof *job->nodes);
    /* Sources. */
    if (jc.sources->kind != RN_CFG_MAP || !jc.sources->child) {
        rn_cfg_errf(errbuf, errlen, jc.sources, "'sources' must be a map of at least one source");
        goto fail;
    }
    for (const struct rn_cfg_node *s = jc.sources->child; s; s = s->next) {
        if (s->kind != RN_CFG_MAP) {
            rn_cfg_errf(errbuf, errlen, s, "source '%s' must be a map with 'type:'", s->key);
            goto fail;
        }
        const struct rn_cfg_node *ty = rn_cfg_get(s, "type");
        if (!ty || ty->kind != RN_CFG_SCALAR) {
            rn_cfg_errf(errbuf, errlen, s, "source '%s' needs 'type:' (such as 'file')", s->key);
            goto fail;
        }
        if (rn_cfg_get(s, "from")) {
            rn_cfg_key_errf(errbuf, errlen, rn_cfg_get(s, "from"), "a source takes no 'from'");
            goto fail;
        }
        struct rn_cfg_node fake_id = *s;
        fake_id.line = s->key_line;
        fake_id.col = s->key_col;
        if (rn__add_node(job, s->key, &fake_id, RN_KIND_SOURCE, ty->value, ty, s, errbuf, errlen))
            goto fail;
    }
    /* Operators. */
    if (jc.operators && jc.operators->kind != RN_CFG_SEQ) {
        rn_cfg_errf(errbuf, errlen, jc.operators, "'operators' must be a list (- id: ...)");
        goto fail;
    }
    for (const struct rn_cfg_node *o = jc.operators ? jc.operators->child : NULL; o; o = o->next) {
        if (o->kind != RN_CFG_MAP) {
            rn_cfg_errf(errbuf, errlen, o, "an operator must be a map with id, op and from");
            goto fail;
        }
        const struct rn_cfg_node *id = rn_cfg_get(o, "id"), *op = rn_cfg_get(o, "op");
        if (!id || id->kind != RN_CFG_SCALAR) {
            rn_cfg_errf(errbuf, errlen, o, "operator needs 'id:'");
            goto fail;
        }
        if (!op || op->kind != RN_CFG_SCALAR) {
            rn_cfg_errf(errbuf, errlen, o, "operator '%s' needs 'op:' (its type)", id->value);
            goto fail;
        }
        if (!rn_cfg_get(o, "from")) {
            rn_cfg_errf(errbuf, errlen, o, "operator '%s' needs 'from:' (its input)", id->value);
            goto fail;
        }
        if (rn__add_node(job, id->value, id, RN_KIND_OPERATOR, op->value, op, o, errbuf, errlen))
            goto fail;
    }
    /* Sinks. */
    if (jc.sinks && jc.sinks->kind != RN_CFG_MAP) {
        rn_cfg_errf(errbuf, errlen, jc.sinks, "'sinks' must be a map of sink id to settings");
        goto fail;
    }
    for (const struct rn_cfg_node *s = jc.sinks ? jc.sinks->child : NULL; s; s = s->next) {
        if (s->kind != RN_CFG_MAP) {
            rn_cfg_errf(errbuf, errlen, s, "sink '%s' must be a map with 'type:'", s->key);
            goto fail;
        }
        const struct rn_cfg_node *ty = rn_cfg_get(s, "type");
        if (!ty || ty->kind != RN_CFG_SCALAR) {
            rn_cfg_errf(errbuf, errlen, s, "sink '%s' needs 'type:' (such as 'file')", s->key);
            goto fail;
        }
        struct rn_cfg_node fake_id = *s;
        fake_id.line = s->key_line;
        fake_id.col = s->key_col;
        if (rn__add_node(job, s->key, &fake_id, RN_KIND_SINK, ty->value, ty, s, errbuf, errlen))
            goto fail;
    }
    /* Edges: `from:` of operators and sinks, then side-output routes. */
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_cfg_node *from = rn_cfg_get(job->nodes[i].cfg, "from");
        if (from && job->nodes[i].kind != RN_KIND_SOURCE &&
            rn__resolve_from_list(job, i, from, errbuf, errlen))
            goto fail;
    }
    for (int i = 0; i < job->n_nodes; i++)
        if (job->nodes[i].kind != RN_KIND_SINK && rn__resolve_routes(job, i, errbuf, errlen))
            goto fail;
    for (int i = 0; i < job->n_nodes; i++)
        if (job->nodes[i].kind == RN_KIND_OPERATOR && rn__resolve_broadcast(job, i, errbuf, errlen))
            goto fail;

    if (rn__number_types(job, errbuf, errlen)) goto fail;
    int order[RN_MAX_NODES];
    if (rn__topo(job, order, errbuf, errlen)) goto fail;
    if (rn__check_types(job, order, errbuf, errlen)) goto fail;
    if (rn__assign_parallelism(job, order, errbuf, errlen)) goto fail;
    if (rn__job_plan(job, errbuf, errlen)) goto fail;
    return job;

fail:
    rn_job_destroy(job);
    return NULL;
}

/* Warnings about a valid job that probably does not do what was meant. */
static void rn__job_warnings(const struct rn_job *job, FILE *out)
{
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *n = &job->nodes[i];
        for (uint32_t p = 0; p < n->type->n_outputs; p++) {
            int used = 0;
            for (int e = 0; e < job->n_edges; e++)
                if (job->edges[e].from == i && job->edges[e].port == (int)p) used = 1;
            if (used) continue;
            if (p == 0)
                fprintf(out, "warning: %s:%d:%d: the output of '%s' goes nowhere\n", n->cfg->file,
                        n->cfg->line, n->cfg->col, n->id);
            else
                fprintf(out,
                        "warning: %s:%d:%d: '%s.%s' is not routed: its records are counted and "
                        "dropped (add '%s: <sink>')\n",
                        n->cfg->file, n->cfg->line, n->cfg->col, n->id, n->type->outputs[p].name,
                        n->type->outputs[p].name);
        }
    }
}

static const char *rn__mode_name(enum rn_edge_mode m)
{
    switch (m) {
    case RN_EDGE_FORWARD: return "forward";
    case RN_EDGE_HASH: return "hash";
    case RN_EDGE_GATHER: return "gather";
    case RN_EDGE_REBALANCE: return "rebalance";
    case RN_EDGE_BROADCAST: return "broadcast";
    }
    return "?";
}

void rn_job_print(const struct rn_job *job, FILE *out)
{
    fprintf(out, "job '%s': parallelism %u, max_parallelism %u\n", job->name, job->parallelism,
            job->max_parallelism);
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *n = &job->nodes[i];
        fprintf(out, "  %-8s %-16s %-20s x%u", rn__kind_name(n->kind), n->id, n->type->name,
                n->parallelism);
        if (n->n_inputs > 1) {
            for (int i = 0; i < n->n_inputs; i++) {
                fprintf(out, "%s %s: %s", i ? "," : "  in", n->type->inputs[i].name,
                        rn_types_get(job->types, n->in_types[i])->name);
                if (n->key_names[i]) fprintf(out, " keyed by %s", n->key_names[i]);
            }
        } else {
            if (n->in_type >= 0)
                fprintf(out, "  in: %s", rn_types_get(job->types, n->in_type)->name);
            if (n->key_name) fprintf(out, " keyed by %s", n->key_name);
        }
        for (uint32_t p = 0; p < n->type->n_outputs; p++)
            fprintf(out, "  %s: %s", p ? n->type->outputs[p].name : "out",
                    rn_types_get(job->types, n->out_types[p])->name);
        fputc('\n', out);
        for (int e = 0; e < job->n_edges; e++) {
            const struct rn_edge *ed = &job->edges[e];
            if (ed->to != i) continue;
            const struct rn_node *f = &job->nodes[ed->from];
            fprintf(out, "           <- %s%s%s [%s]", f->id, ed->port ? "." : "",
                    ed->port ? f->type->outputs[ed->port].name : "", rn__mode_name(ed->mode));
            if (n->n_inputs > 1)
                fprintf(out, " input %d (%s)", ed->input + 1, n->type->inputs[ed->input].name);
            fputc('\n', out);
        }
    }
    fprintf(out, "threads:\n");
    for (int g = 0; g < job->n_groups; g++) {
        const struct rn_group *gr = &job->groups[g];
        fprintf(out, "  chain %d x%u:", g, gr->parallelism);
        for (int k = 0; k < gr->n_nodes; k++)
            fprintf(out, "%s %s", k ? " ->" : "", job->nodes[gr->nodes[k]].id);
        fputc('\n', out);
    }
    uint32_t nq = rn__job_queue_count(job), qb = rn__job_queue_batches(job);
    fprintf(out, "queues: %u, up to %u batches each (%.1f MiB of batches at most together)\n", nq,
            qb, (double)nq * qb * RN_BATCH_BYTES / (1 << 20));
    if (job->http_listen) fprintf(out, "http: %s\n", job->http_listen);
    rn__job_warnings(job, out);
}

const char *rn_job_serve_address(struct rn_job *job)
{
    return atomic_load_explicit(&job->built, memory_order_acquire) ? rn__serve_address(job->serve)
                                                                    : "";
}

const char *rn_job_http_listen(const struct rn_job *job)
{
    return job->http_listen;
}

void rn__job_destroy_exec(struct rn_job *job);

void rn_job_destroy(struct rn_job *job)
{
    if (!job) return;
    rn__ckpt_free(job);
    rn__serve_free(job->serve);
    rn__job_destroy_exec(job);
    if (job->nodes) rn__job_free_graph(job);
    rn__types_destroy(job->types);
    rn_cfg_free(job->doc);
    rn__restore_free(job->restore);
    free(job->ckpt_dir);
    pthread_mutex_destroy(&job->err_mu);
    rn__status_sampler_free(job);
    pthread_mutex_destroy(&job->rate_mu);
    free(job->rate_prev);
    free(job->rate);
    free(job);
}
