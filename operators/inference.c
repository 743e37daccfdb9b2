/*
 * inference.c — `inference`: ranks candidates with the current model version
 * of a model store, explores, records exact propensities, and serves.
 *
 * Keyed by user. Its input is the event stream (from log_collector):
 *   request      φ(s) from the user's history, the request's candidates
 *                scored with the current version (one gemv for all of them),
 *                a slate picked with exploration (rn_slate_pick) and emitted
 *                as an impression event — items, per-slot propensities and the
 *                model version — so that the log loop closes through any sink;
 *   impression   remembered (request, time) for the user's next clicks;
 *   click        appends (item, impression time) to the user's history.
 * The history is the experience collector's: the items the user gave feedback
 * on, oldest first, with the time of the list they were shown in; φ is the
 * learner's (rn_phi_compute with the same `history`, `half_life` and
 * `state_network`), and a version whose shape does not fit it is not used.
 * With `context_fields` (the learner's list), φ ends with the request's
 * context values: a request event's (log_collector carries them), or over
 * HTTP the body's `context` object, read by name (missing: 0).
 *
 * The users' histories and latest slates live in a serving table shared by
 * every subtask of the operator and by the serving threads: 64 stripes, each a
 * hash table under its own mutex, held only to copy a history in or a slate
 * out. It is in memory and rebuilt from the stream after a restart (it is not
 * part of checkpoints: a restored job replays the events since the checkpoint
 * and so rebuilds what it had).
 *
 * Models come through a feed (rn_model_feed_*): a loader thread follows the
 * store, warms a new version up and swaps it in; scoring holds the version in
 * a hazard slot, never a lock.
 *
 * LAST (with `last_evaluator`): after the model scored a request, rn_last_search
 * (rn_last.h) replaces the scores by those of the best throw-away offset of the
 * model's parameters, judged by an evaluator that a second feed follows; the
 * offsets live in the caller's scratch (per instance on the stream path, per
 * serving thread over HTTP), so the shared versions are only read. Exploration
 * then picks from those scores, and propensities stay exact.
 *
 * Serving (when the job has `serve:`): POST /api/v1/recommend, GET
 * /api/v1/recommendations/{user} and GET /api/v1/inference on the job's
 * serving threads (rn_op_route), not the status page's loop. Bad requests get
 * a 4xx with the reason.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <yajl/yajl_tree.h>

#include "rn_event.h"
#include "rn_http.h"
#include "rn_last.h"
#include "rn_model.h"
#include "rn_operator.h"
#include "rn_rand.h"

static const char *const rn_inf_explore_modes[] = {"none", "epsilon", "softmax", NULL};

struct rn_inf_cfg {
    const char *model_store;
    struct rn_model_topic_cfg mt; /* model_topic, model_brokers, model_key */
    struct rn_phi_cfg feat; /* embeddings, history, half_life, state_network, context */
    int64_t slate, poll_interval, max_candidates, seed;
    int explore;
    double epsilon, temperature;
    /* LAST (learning at serving time): off unless last_evaluator is set */
    const char *last_evaluator;
    int64_t last_candidates, last_steps, last_budget;
    double last_step_size, last_temperature;
    /* shared by every subtask: made by the first open(), freed by fini() */
    pthread_mutex_t mu;
    int opened;
    struct rn_inf_shared *sh;
};

static const struct rn_config_key rn_inf_keys[] = {
    RN_PHI_CONFIG_KEYS(struct rn_inf_cfg, feat),
    {"model_store", RN_CT_STRING, NULL, NULL, offsetof(struct rn_inf_cfg, model_store),
     "Model store directory to follow (the learner's `model_store`); it honours `runnel models "
     "pin` and `rollback`. This or `model_topic`.",
     NULL, 0, 0, 0},
    RN_MODEL_TOPIC_CONFIG_KEYS(struct rn_inf_cfg, mt),
    {"slate", RN_CT_INT, "5", "items", offsetof(struct rn_inf_cfg, slate),
     "Items per recommendation (a request may ask for fewer with `k`).", NULL, 0, 1, 1000},
    {"explore", RN_CT_ENUM, "epsilon", NULL, offsetof(struct rn_inf_cfg, explore),
     "Exploration: none (greedy), epsilon (each slot w.p. epsilon a uniformly drawn non-top "
     "candidate) or softmax (Plackett-Luce with `temperature`).",
     rn_inf_explore_modes, 0, 0, 0},
    {"epsilon", RN_CT_DOUBLE, "0.05", NULL, offsetof(struct rn_inf_cfg, epsilon),
     "Exploration probability per slot (explore: epsilon).", NULL, 0, 0, 0},
    {"temperature", RN_CT_DOUBLE, "1.0", NULL, offsetof(struct rn_inf_cfg, temperature),
     "Softmax temperature (explore: softmax).", NULL, 0, 0, 0},
    {"seed", RN_CT_INT, "1", NULL, offsetof(struct rn_inf_cfg, seed),
     "Exploration seed: each request draws from a stream seeded by (seed, request id), so "
     "slates do not depend on parallelism or timing.",
     NULL, 0, 0, 0},
    {"poll_interval", RN_CT_DURATION, "200ms", "ms", offsetof(struct rn_inf_cfg, poll_interval),
     "How often the model loader looks for a new version.", NULL, 0, 1, 3600000},
    {"max_candidates", RN_CT_INT, "10000", "items", offsetof(struct rn_inf_cfg, max_candidates),
     "Most candidates a request may carry (more: rejected, 413 over HTTP).", NULL, 0, 1, 65536},
    {"last_evaluator", RN_CT_STRING, NULL, NULL, offsetof(struct rn_inf_cfg, last_evaluator),
     "LAST (learning at serving time): the model store of a list-wise evaluator (a "
     "value_advantage_learner with `objective: list_reward` on the same embeddings and state "
     "features). Per request, parameter offsets of the served model are searched by gradient "
     "exploration and the list the evaluator scores highest is served; the offsets are "
     "discarded. Default: none (LAST off).",
     NULL, 0, 0, 0},
    {"last_candidates", RN_CT_INT, "8", "offsets", offsetof(struct rn_inf_cfg, last_candidates),
     "LAST: parameter offsets tried per request, alternately raising and lowering the "
     "probability of the model's own list, step sizes last_step_size times 1, 1, 2, 2, 4, 4, ...",
     NULL, 0, 1, 256},
    {"last_steps", RN_CT_INT, "1", "steps", offsetof(struct rn_inf_cfg, last_steps),
     "LAST: gradient steps each offset takes; every list on the way is scored.", NULL, 0, 1, 64},
    {"last_step_size", RN_CT_DOUBLE, "0.1", NULL, offsetof(struct rn_inf_cfg, last_step_size),
     "LAST: L2 length (in parameter space) of the smallest step.", NULL, 0, 0, 0},
    {"last_temperature", RN_CT_DOUBLE, "1.0", NULL, offsetof(struct rn_inf_cfg, last_temperature),
     "LAST: temperature of the Plackett-Luce list probability whose gradient is followed.", NULL, 0,
     0, 0},
    {"last_budget", RN_CT_INT, "1000", "us", offsetof(struct rn_inf_cfg, last_budget),
     "LAST: time budget per request in microseconds; when it is spent the best list so far is "
     "served (0: the model's own list).",
     NULL, 0, 0, 10000000},
    RN_CONFIG_END,
};

static int rn_inf_init(void *ctx, const struct rn_cfg_node *node, char *errbuf, size_t errlen)
{
    struct rn_inf_cfg *c = ctx;
    int rc = rn_phi_cfg_init(&c->feat, errbuf, errlen);
    if (rc) return rc;
    if (!(c->epsilon >= 0 && c->epsilon <= 1)) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "epsilon"), "epsilon must be in [0, 1]");
        return RN_EINVAL;
    }
    if (!(c->temperature > 0)) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "temperature"), "temperature must be > 0");
        return RN_EINVAL;
    }
    if ((rc = rn_model_topic_cfg_check(&c->mt, c->model_store, 1, node, errbuf, errlen)))
        return rc;
    if (c->model_store && c->mt.topic) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "model_topic"),
                    "inference follows one place: 'model_store' or 'model_topic', not both");
        return RN_EINVAL;
    }
    if (c->last_evaluator && c->model_store && !strcmp(c->last_evaluator, c->model_store)) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "last_evaluator"),
                    "last_evaluator names the model store itself; the evaluator is a "
                    "learner with objective: list_reward publishing to a store of its own");
        return RN_EINVAL;
    }
    if (!(c->last_step_size > 0)) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "last_step_size"),
                    "last_step_size must be > 0");
        return RN_EINVAL;
    }
    if (!(c->last_temperature > 0)) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "last_temperature"),
                    "last_temperature must be > 0");
        return RN_EINVAL;
    }
    pthread_mutex_init(&c->mu, NULL);
    return 0;
}

static int rn_inf_init_types(void *ctx, struct rn_types *ts, const struct rn_cfg_node *node,
                             char *errbuf, size_t errlen)
{
    struct rn_inf_cfg *c = ctx;
    (void)node;
    return rn_phi_cfg_init_types(&c->feat, ts, errbuf, errlen);
}

/* ---- the serving table ------------------------------------------------------------- */

#define RN_INF_STRIPES 64

struct rn_inf_user {
    uint64_t user_id;
    uint32_t n_hist, hist_at; /* ring of `history` entries */
    struct rn_hist *hist;
    uint64_t last_request; /* the user's latest impression */
    int64_t last_impression_ts;
    /* the latest slate: items as one buffer of NUL-separated ids */
    char *slate;
    size_t slate_len;
    uint32_t slate_n;
    int64_t slate_version, slate_ts;
    UT_hash_handle hh;
};

struct rn_inf_shared {
    const struct rn_inf_cfg *cfg;
    uint64_t gen; /* unique per table in the process (serving threads' caches key on it) */
    struct rn_embed *emb;
    struct rn_phi_spec spec; /* φ, read-only once open: shared by every thread */
    uint32_t phi_dim;
    struct rn_model_feed *feed;
    struct {
        pthread_mutex_t mu;
        struct rn_inf_user *users;
    } stripe[RN_INF_STRIPES];
    /* request latencies (HTTP path): the node's histogram "request" */
    struct rn_latency *lat;
    atomic_uint_fast64_t http_ok, http_bad;
    atomic_int misfit_reported; /* a model that does not fit was reported once */
    /* LAST: the evaluator's feed (NULL: off), what the search cost and did */
    struct rn_model_feed *ev_feed;
    struct rn_latency *last_lat; /* the node's "last_added" */
    atomic_uint_fast64_t last_searches, last_changed, last_out_of_time, last_tried,
        last_without_evaluator;
    atomic_int ev_misfit_reported;
};

static struct rn_inf_user *rn_inf_user_get(struct rn_inf_shared *s, uint64_t user, int create)
{
    struct rn_inf_user *u = NULL;
    unsigned k = (unsigned)(user % RN_INF_STRIPES);
    HASH_FIND(hh, s->stripe[k].users, &user, sizeof user, u);
    if (!u && create) {
        u = rn_xcalloc(1, sizeof *u);
        u->user_id = user;
        u->hist = rn_xcalloc((size_t)s->cfg->feat.history, sizeof *u->hist);
        u->slate_version = -1;
        HASH_ADD(hh, s->stripe[k].users, user_id, sizeof u->user_id, u);
    }
    return u;
}

/* Copies the user's history, oldest first, into h (cap `history`); returns n. */
static uint32_t rn_inf_history(struct rn_inf_shared *s, uint64_t user, struct rn_hist *h)
{
    unsigned k = (unsigned)(user % RN_INF_STRIPES);
    pthread_mutex_lock(&s->stripe[k].mu);
    struct rn_inf_user *u = rn_inf_user_get(s, user, 0);
    uint32_t n = 0, cap = (uint32_t)s->cfg->feat.history;
    if (u)
        for (; n < u->n_hist; n++)
            h[n] = u->hist[(u->hist_at + cap - u->n_hist + n) % cap];
    pthread_mutex_unlock(&s->stripe[k].mu);
    return n;
}

static void rn_inf_put_slate(struct rn_inf_shared *s, uint64_t user, const char *const *items,
                             const size_t *lens, uint32_t n, int64_t version, int64_t ts)
{
    unsigned k = (unsigned)(user % RN_INF_STRIPES);
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++)
        len += lens[i] + 1;
    char *buf = rn_xmalloc(len ? len : 1), *p = buf;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(p, items[i], lens[i]);
        p[lens[i]] = 0;
        p += lens[i] + 1;
    }
    pthread_mutex_lock(&s->stripe[k].mu);
    struct rn_inf_user *u = rn_inf_user_get(s, user, 1);
    char *old = u->slate;
    u->slate = buf;
    u->slate_len = len;
    u->slate_n = n;
    u->slate_version = version;
    u->slate_ts = ts;
    pthread_mutex_unlock(&s->stripe[k].mu);
    free(old);
}

static void rn_inf_shared_free(struct rn_inf_shared *s)
{
    if (!s) return;
    rn_model_feed_release(s->feed);
    rn_model_feed_release(s->ev_feed);
    rn_phi_spec_close(&s->spec);
    rn_embed_release(s->emb);
    for (int k = 0; k < RN_INF_STRIPES; k++) {
        struct rn_inf_user *u, *tmp;
        HASH_ITER(hh, s->stripe[k].users, u, tmp)
        {
            HASH_DEL(s->stripe[k].users, u);
            free(u->hist);
            free(u->slate);
            free(u);
        }
        pthread_mutex_destroy(&s->stripe[k].mu);
    }
    free(s);
}

/* ---- ranking (the stream path and the HTTP path) ---------------------------------- */

struct rn_inf_scratch {
    float *E, *scores, *phi;
    void *phi_scratch;
    double *dscratch;
    struct rn_hist *hist;
    size_t cap;
    struct rn_last_scratch *last; /* LAST's Δθ and lists, made on first use */
};

static void rn_inf_scratch_grow(struct rn_inf_scratch *x, const struct rn_inf_shared *s, size_t k)
{
    uint32_t d = rn_embed_dim(s->emb);
    if (!x->phi) {
        x->phi = rn_xmalloc(s->phi_dim * sizeof *x->phi);
        x->phi_scratch = rn_xmalloc(rn_phi_scratch_size(&s->spec, s->emb) + 1);
        x->hist = rn_xmalloc((size_t)s->cfg->feat.history * sizeof *x->hist);
    }
    if (k <= x->cap) return;
    x->cap = k;
    x->E = rn_xrealloc(x->E, k * d * sizeof *x->E);
    x->scores = rn_xrealloc(x->scores, k * sizeof *x->scores);
    x->dscratch = rn_xrealloc(x->dscratch, 2 * k * sizeof *x->dscratch);
}

static void rn_inf_scratch_free(struct rn_inf_scratch *x)
{
    free(x->E);
    free(x->scores);
    free(x->phi);
    free(x->phi_scratch);
    free(x->dscratch);
    free(x->hist);
    rn_last_scratch_destroy(x->last);
}

static double rn_inf_u(void *r)
{
    return rn_rand_uniform(r);
}

struct rn_inf_result {
    uint32_t l;
    uint32_t *slate;
    double *prop;
    double slate_prop;
    int64_t version;
    int mode; /* the exploration used */
    int last; /* LAST: 0 not run, 1 kept the model's list, 2 changed it */
};


/* LAST on the scores of one request (inside the caller's hold of the policy
 * m): the evaluator is held in ev_slot for the search. Returns what
 * rn_inf_result.last says. */
static int rn_inf_last(struct rn_inf_shared *s, int ev_slot, struct rn_inf_scratch *x,
                       const struct rn_model *m, const uint64_t *ids, uint32_t k, uint32_t l)
{
    const struct rn_inf_cfg *c = s->cfg;
    int64_t t0 = rn_now_ns(), ev_version = 0;
    const struct rn_model *ev = rn_model_feed_enter(s->ev_feed, ev_slot, &ev_version);
    int out = 0;
    if (!ev || ev->shape.dim != m->shape.dim || ev->shape.phi != m->shape.phi) {
        if (ev && !atomic_exchange(&s->ev_misfit_reported, 1))
            fprintf(stderr,
                    "runnel: inference: evaluator version %" PRId64 " of '%s' does not fit the "
                    "served model (dimension %u, state features %u; want %u and %u): LAST is "
                    "skipped\n",
                    ev_version, c->last_evaluator, ev->shape.dim, ev->shape.phi, m->shape.dim,
                    m->shape.phi);
        atomic_fetch_add(&s->last_without_evaluator, 1);
        rn_model_feed_exit(s->ev_feed, ev_slot);
        return 0;
    }
    if (!x->last) x->last = rn_last_scratch_create();
    struct rn_last_cfg lc = {(uint32_t)c->last_candidates, (uint32_t)c->last_steps,
                             c->last_step_size, c->last_temperature, c->last_budget * 1000};
    struct rn_last_stats st;
    if (rn_last_search(m, ev, x->phi, x->E, ids, k, l, &lc, x->last, x->scores, &st) == 0) {
        out = st.changed ? 2 : 1;
        atomic_fetch_add(&s->last_searches, 1);
        atomic_fetch_add(&s->last_tried, st.tried);
        if (st.changed) atomic_fetch_add(&s->last_changed, 1);
        if (st.out_of_time) atomic_fetch_add(&s->last_out_of_time, 1);
    }
    rn_model_feed_exit(s->ev_feed, ev_slot);
    rn_latency_record(s->last_lat, rn_now_ns() - t0);
    return out;
}

/* Scores k candidates (ids) for `user` at time ts with the feed's current
 * model and picks a slate of l. Runs on any thread; `slot` is the caller's
 * hazard slot. Without a model yet, the slate is uniformly random. */
static int rn_inf_rank(struct rn_inf_shared *s, int slot, int ev_slot, struct rn_inf_scratch *x,
                       uint64_t user, uint64_t request, int64_t ts, const double *ctx,
                       uint32_t n_ctx, const uint64_t *ids, uint32_t k, uint32_t l,
                       struct rn_inf_result *res)
{
    const struct rn_inf_cfg *c = s->cfg;
    rn_inf_scratch_grow(x, s, k);
    uint32_t nh = rn_inf_history(s, user, x->hist);
    rn_phi_compute_ctx(&s->spec, s->emb, x->hist, nh, ts, ctx, n_ctx, x->phi, x->phi_scratch);
    rn_embed_rows(s->emb, ids, k, x->E);
    int64_t version = 0;
    const struct rn_model *m = rn_model_feed_enter(s->feed, slot, &version);
    struct rn_explore_cfg ex = {c->explore, c->epsilon, c->temperature};
    if (m && m->shape.dim == rn_embed_dim(s->emb) && m->shape.phi == s->phi_dim) {
        rn_model_advantages(m, x->phi, x->E, ids, k, x->scores);
        if (s->ev_feed && l) res->last = rn_inf_last(s, ev_slot, x, m, ids, k, l);
    } else {
        /* no (fitting) model: a uniformly random slate */
        if (m && !atomic_exchange(&s->misfit_reported, 1))
            fprintf(stderr,
                    "runnel: inference: model version %" PRId64 " of '%s' does not fit the "
                    "embedding table and state features (dimension %u, state features %u; "
                    "want %u and %u%s): serving random slates\n",
                    version, c->model_store ? c->model_store : c->mt.topic, m->shape.dim, m->shape.phi, rn_embed_dim(s->emb),
                    s->phi_dim, c->feat.state_network ? ", the state network's" : "");
        ex.mode = RN_EXPLORE_SOFTMAX;
        ex.temperature = 1.0;
        version = 0;
        /* equal scores: the softmax is uniform (the buffer holds no scores yet, or a
         * previous request's) */
        memset(x->scores, 0, k * sizeof *x->scores);
    }
    rn_model_feed_exit(s->feed, slot);
    struct rn_rand r;
    rn_rand_seed(&r, (uint64_t)c->seed, request);
    res->version = version;
    res->mode = ex.mode;
    res->l = l;
    return rn_slate_pick(x->scores, k, l, &ex, rn_inf_u, &r, res->slate, res->prop,
                         &res->slate_prop, x->dscratch);
}

/* ---- the instance ------------------------------------------------------------------ */

struct rn_inf {
    struct rn_inf_shared *sh;
    int slot, ev_slot; /* hazard slots in the model's and the evaluator's feeds */
    int64_t shown_version; /* the model_version gauge as last set (subtask 0) */
    struct rn_inf_scratch x;
    uint32_t *slate;
    double *prop;
    struct rn_payload pl;
};

enum {
    M_REQUESTS,
    M_RECOMMENDED,
    M_NO_MODEL,
    M_REJECTED,
    M_FEEDBACK,
    M_EXPLORED,
    M_VERSION,
    M_LAST_SEARCHES,
    M_LAST_CHANGED
};
static const char *const rn_inf_metrics[] = {
    "requests",      "recommendations", "without_model", "rejected",     "history_updates",
    "explored_slots", "model_version",  "last_searches", "last_changed", NULL};
/* Latency histograms (rn_op_latency): a POST /api/v1/recommend end to end, and
 * the time LAST's search added to it (only when LAST is on). */
enum { L_REQUEST, L_LAST_ADDED };
static const char *const rn_inf_latencies[] = {"request", "last_added", NULL};

static void rn_inf_http(void *ud, const struct rn_http_request *req, struct rn_http_response *res);

static int rn_inf_open(struct rn_op *op)
{
    struct rn_inf_cfg *c = (struct rn_inf_cfg *)rn_op_ctx(op);
    struct rn_inf *v = rn_xcalloc(1, sizeof *v);
    v->slot = v->ev_slot = -1;
    rn_op_set_local(op, v);
    char err[512];
    pthread_mutex_lock(&c->mu);
    if (!c->sh) {
        struct rn_inf_shared *s = rn_xcalloc(1, sizeof *s);
        s->cfg = c;
        static atomic_uint_fast64_t gens;
        s->gen = atomic_fetch_add(&gens, 1) + 1;
        s->lat = rn_op_latency(op, L_REQUEST);
        s->last_lat = rn_op_latency(op, L_LAST_ADDED);
        for (int k = 0; k < RN_INF_STRIPES; k++)
            pthread_mutex_init(&s->stripe[k].mu, NULL);
        int bad = rn_phi_cfg_open(&c->feat, &s->emb, &s->spec, err, sizeof err) != 0;
        if (!bad) s->phi_dim = rn_phi_dim(&s->spec, s->emb);
        if (!bad && c->mt.topic)
            s->feed = rn_model_feed_acquire_topic(c->mt.brokers, c->mt.topic,
                                                  c->mt.key ? c->mt.key : rn_op_job_name(op),
                                                  c->poll_interval, err, sizeof err);
        else if (!bad)
            s->feed = rn_model_feed_acquire(c->model_store, c->poll_interval, err, sizeof err);
        if (s->feed) rn_model_feed_poll(s->feed); /* the newest version from the first request */
        if (s->feed && c->last_evaluator) {
            s->ev_feed =
                rn_model_feed_acquire(c->last_evaluator, c->poll_interval, err, sizeof err);
            if (s->ev_feed) rn_model_feed_poll(s->ev_feed);
        }
        if (!s->emb || !s->feed || (c->last_evaluator && !s->ev_feed)) {
            rn_inf_shared_free(s);
            pthread_mutex_unlock(&c->mu);
            rn_op_errorf(op, "%s", err);
            return RN_EIO;
        }
        c->sh = s;
    }
    c->opened++;
    v->sh = c->sh;
    pthread_mutex_unlock(&c->mu);
    v->slot = rn_model_feed_slot(v->sh->feed);
    if (v->sh->ev_feed) v->ev_slot = rn_model_feed_slot(v->sh->ev_feed);
    if (v->slot < 0 || (v->sh->ev_feed && v->ev_slot < 0)) {
        rn_op_errorf(op, "too many readers of model %s '%s'", c->model_store ? "store" : "topic",
                     c->model_store ? c->model_store : c->mt.topic);
        return RN_EFULL;
    }
    /* Serving, when the job has a `serve:` section: handlers run on the
     * serving threads (rn_op_route), each with its own hazard slot. */
    if (rn_op_serving(op)) {
        int rc = rn_op_route(op, NULL, "/api/v1/recommend", rn_inf_http, v->sh);
        if (!rc) rc = rn_op_route(op, "GET", "/api/v1/recommendations", rn_inf_http, v->sh);
        if (!rc) rc = rn_op_route(op, "GET", "/api/v1/inference", rn_inf_http, v->sh);
        if (rc) return rc;
    }
    v->slate = rn_xmalloc((size_t)c->slate * sizeof *v->slate);
    v->prop = rn_xmalloc((size_t)c->slate * sizeof *v->prop);
    /* Subtask 0 keeps the model_version gauge: the version the feed serves,
     * also while no record comes. */
    if (rn_op_subtask(op) == 0) return rn_op_timer_after(op, c->poll_interval);
    return 0;
}

/* The model_version gauge follows the feed (the counter moves by the
 * difference; subtask 0 only, so the status page's sum is the version). */
static int rn_inf_on_processing_time(struct rn_op *op, int64_t now_ms, struct rn_emitter *out)
{
    const struct rn_inf_cfg *c = rn_op_ctx(op);
    struct rn_inf *v = rn_op_local(op);
    (void)now_ms;
    (void)out;
    struct rn_model_feed_stats st;
    rn_model_feed_stats(v->sh->feed, &st);
    if (st.version != v->shown_version) {
        rn_op_metric_add(op, M_VERSION, (uint64_t)(st.version - v->shown_version));
        v->shown_version = st.version;
    }
    return rn_op_timer_after(op, c->poll_interval);
}

static void rn_inf_close(struct rn_op *op)
{
    struct rn_inf_cfg *c = (struct rn_inf_cfg *)rn_op_ctx(op);
    struct rn_inf *v = rn_op_local(op);
    if (!v) return;
    if (v->sh) {
        rn_model_feed_slot_free(v->sh->feed, v->slot);
        if (v->sh->ev_feed) rn_model_feed_slot_free(v->sh->ev_feed, v->ev_slot);
        pthread_mutex_lock(&c->mu);
        if (--c->opened == 0) {
            rn_inf_shared_free(c->sh);
            c->sh = NULL;
        }
        pthread_mutex_unlock(&c->mu);
    }
    rn_inf_scratch_free(&v->x);
    free(v->slate);
    free(v->prop);
    rn_buf_free(&v->pl.buf);
    free(v);
    rn_op_set_local(op, NULL);
}

static void rn_inf_fini(void *ctx)
{
    struct rn_inf_cfg *c = ctx;
    pthread_mutex_destroy(&c->mu);
}

/* Emits the impression of a ranked request. */
static void rn_inf_emit(struct rn_op *op, struct rn_inf *v, const struct rn_event *e,
                        const struct rn_inf_result *res, struct rn_emitter *out)
{
    const struct rn_str *cand = rn_event_items(e);
    struct rn_payload *p = &v->pl;
    rn_payload_begin(p, sizeof(struct rn_event));
    struct rn_str user = rn_payload_str(p, rn_str_ptr(e, e->user), e->user.len);
    struct rn_str request = rn_payload_str(p, rn_str_ptr(e, e->request), e->request.len);
    struct rn_str names[1000];
    const char *ptrs[1000];
    size_t lens[1000];
    for (uint32_t j = 0; j < res->l; j++) {
        const struct rn_str s = cand[res->slate[j]];
        names[j] = rn_payload_str(p, rn_str_ptr(e, s), s.len);
        ptrs[j] = rn_str_ptr(e, s);
        lens[j] = s.len;
    }
    uint32_t items_off = rn_payload_reserve(p, res->l * sizeof(struct rn_str));
    uint32_t ids_off = rn_payload_reserve(p, res->l * sizeof(uint64_t));
    uint32_t props_off = rn_payload_reserve(p, res->l * sizeof(double));
    char *base = p->buf.data;
    struct rn_event *o = (struct rn_event *)base;
    if (res->l) memcpy(base + items_off, names, res->l * sizeof(struct rn_str));
    const uint64_t *cid = rn_event_item_ids(e);
    uint64_t *oid = (uint64_t *)(base + ids_off);
    double *op_ = (double *)(base + props_off);
    for (uint32_t j = 0; j < res->l; j++) {
        oid[j] = cid[res->slate[j]];
        op_[j] = res->prop[j];
    }
    o->ts = e->ts;
    o->offset = e->offset;
    o->user_id = e->user_id;
    o->request_id = e->request_id;
    o->kind = RN_EV_IMPRESSION;
    o->flags = RN_EVENT_HAS_PROPENSITIES | RN_EVENT_HAS_MODEL_VERSION;
    o->model_version = res->version;
    o->n_items = res->l;
    o->user = user;
    o->request = request;
    o->items_off = items_off;
    o->ids_off = ids_off;
    o->props_off = props_off;
    rn_emit_payload(out, 0, e->ts, e->user_id, p);
    rn_inf_put_slate(v->sh, e->user_id, ptrs, lens, res->l, res->version, e->ts);
    (void)op;
}

static int rn_inf_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    const struct rn_inf_cfg *c = rn_op_ctx(op);
    struct rn_inf *v = rn_op_local(op);
    struct rn_inf_shared *s = v->sh;
    uint32_t cap = (uint32_t)c->feat.history;
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_event *e = in->recs[i].payload;
        if (e->kind == RN_EV_REQUEST) {
            rn_op_metric_add(op, M_REQUESTS, 1);
            uint32_t k = e->n_items, l = (uint32_t)RN_MIN((int64_t)k, c->slate);
            if (!k || k > (uint32_t)c->max_candidates) {
                rn_op_metric_add(op, M_REJECTED, 1);
                continue;
            }
            struct rn_inf_result res = {0, v->slate, v->prop, 0, 0, 0, 0};
            if (rn_inf_rank(s, v->slot, v->ev_slot, &v->x, e->user_id, e->request_id, e->ts,
                            e->n_context ? rn_event_context(e) : NULL, e->n_context,
                            rn_event_item_ids(e), k, l, &res) < 0) {
                rn_op_metric_add(op, M_REJECTED, 1);
                continue;
            }
            if (!res.version) rn_op_metric_add(op, M_NO_MODEL, 1);
            if (res.last) rn_op_metric_add(op, M_LAST_SEARCHES, 1);
            if (res.last == 2) rn_op_metric_add(op, M_LAST_CHANGED, 1);
            if (res.mode == RN_EXPLORE_EPSILON)
                for (uint32_t j = 0; j < l; j++)
                    if (res.prop[j] < 1.0 - c->epsilon) rn_op_metric_add(op, M_EXPLORED, 1);
            rn_inf_emit(op, v, e, &res, out);
            rn_op_metric_add(op, M_RECOMMENDED, 1);
        } else if (e->kind == RN_EV_IMPRESSION || e->kind == RN_EV_CLICK) {
            unsigned k = (unsigned)(e->user_id % RN_INF_STRIPES);
            pthread_mutex_lock(&s->stripe[k].mu);
            struct rn_inf_user *u = rn_inf_user_get(s, e->user_id, 1);
            if (e->kind == RN_EV_IMPRESSION) {
                u->last_request = e->request_id;
                u->last_impression_ts = e->ts;
            } else {
                int64_t ts = u->last_request == e->request_id ? u->last_impression_ts : e->ts;
                u->hist[u->hist_at] = (struct rn_hist){e->item_id, ts};
                u->hist_at = (u->hist_at + 1) % cap;
                if (u->n_hist < cap) u->n_hist++;
            }
            pthread_mutex_unlock(&s->stripe[k].mu);
            if (e->kind == RN_EV_CLICK) rn_op_metric_add(op, M_FEEDBACK, 1);
        }
    }
    return 0;
}

/* ---- serving ----------------------------------------------------------------------- */

static void rn_inf_json_error(struct rn_http_response *res, int status, const char *fmt, ...)
    RN_PRINTF(3, 4);

static void rn_inf_json_error(struct rn_http_response *res, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    res->status = status;
    res->content_type = "application/json";
    rn_buf_reset(&res->body);
    rn_buf_puts(&res->body, "{\"error\":");
    rn_json_str(&res->body, msg, strlen(msg));
    rn_buf_puts(&res->body, "}\n");
}

/* A serving thread's scratch and hazard slot, for the table it last served
 * (keyed by the table's generation, not its address, which a later table may
 * reuse; the slot is kept while the thread serves the same feed). Freed with
 * the thread (a pthread key's destructor). */
struct rn_inf_tls {
    uint64_t gen;
    const struct rn_model_feed *feed, *ev_feed;
    int slot, ev_slot;
    struct rn_inf_scratch x;
};
static pthread_key_t rn_inf_tls_key;
static pthread_once_t rn_inf_tls_once = PTHREAD_ONCE_INIT;

static void rn_inf_tls_free(void *p)
{
    struct rn_inf_tls *t = p;
    rn_inf_scratch_free(&t->x);
    free(t);
}

static void rn_inf_tls_init(void)
{
    pthread_key_create(&rn_inf_tls_key, rn_inf_tls_free);
}

static struct rn_inf_tls *rn_inf_tls_get(void)
{
    pthread_once(&rn_inf_tls_once, rn_inf_tls_init);
    struct rn_inf_tls *t = pthread_getspecific(rn_inf_tls_key);
    if (!t) {
        t = rn_xcalloc(1, sizeof *t);
        t->slot = t->ev_slot = -1;
        pthread_setspecific(rn_inf_tls_key, t);
    }
    return t;
}

static int rn_inf_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void rn_inf_recommend(struct rn_inf_shared *s, const struct rn_http_request *req,
                             struct rn_http_response *res)
{
    const struct rn_inf_cfg *c = s->cfg;
    char perr[256];
    char *body = rn_xstrndup(req->body ? req->body : "", req->body_len);
    yajl_val root = yajl_tree_parse(body, perr, sizeof perr);
    free(body);
    uint64_t *ids = NULL, *sorted = NULL;
    const char **names = NULL;
    size_t *lens = NULL;
    if (!root || !YAJL_IS_OBJECT(root)) {
        for (char *q = perr; *q; q++)
            if (*q == '\n') *q = ' ';
        rn_inf_json_error(res, 400, "the body is not a JSON object%s%s", root ? "" : ": ",
                          root ? "" : perr);
        goto out;
    }
    const char *pu[] = {"user", NULL}, *pc[] = {"candidates", NULL}, *pk[] = {"k", NULL},
               *pt[] = {"ts", NULL}, *pr[] = {"request", NULL};
    yajl_val user = yajl_tree_get(root, pu, yajl_t_string);
    yajl_val cand = yajl_tree_get(root, pc, yajl_t_array);
    yajl_val kv = yajl_tree_get(root, pk, yajl_t_any);
    yajl_val tv = yajl_tree_get(root, pt, yajl_t_any);
    yajl_val rv = yajl_tree_get(root, pr, yajl_t_string);
    if (!user || !YAJL_GET_STRING(user)[0]) {
        rn_inf_json_error(res, 400, "'user' (a non-empty string) is required");
        goto out;
    }
    /* Without candidates: every item of the embedding table (top-K over the
     * catalogue). With them: a non-empty array, at most max_candidates. */
    yajl_val cand_any = yajl_tree_get(root, pc, yajl_t_any);
    if (cand_any && (!cand || !YAJL_GET_ARRAY(cand)->len)) {
        rn_inf_json_error(res, 400, "'candidates' must be a non-empty array of item ids");
        goto out;
    }
    size_t k = cand ? YAJL_GET_ARRAY(cand)->len : rn_embed_count(s->emb);
    if (cand && k > (size_t)c->max_candidates) {
        rn_inf_json_error(res, 413, "%zu candidates, at most %" PRId64 " (max_candidates)", k,
                          c->max_candidates);
        goto out;
    }
    int64_t l = c->slate;
    if (kv) {
        if (!YAJL_IS_INTEGER(kv) || YAJL_GET_INTEGER(kv) < 1) {
            rn_inf_json_error(res, 400, "'k' must be a positive integer");
            goto out;
        }
        l = RN_MIN(l, YAJL_GET_INTEGER(kv));
    }
    if ((size_t)l > k) l = (int64_t)k;
    int64_t ts = rn_wall_ms();
    if (tv) {
        if (!YAJL_IS_INTEGER(tv)) {
            rn_inf_json_error(res, 400, "'ts' must be an integer (ms since the epoch)");
            goto out;
        }
        ts = YAJL_GET_INTEGER(tv);
    }
    ids = rn_xmalloc(k * sizeof *ids);
    names = rn_xmalloc(k * sizeof *names);
    lens = rn_xmalloc(k * sizeof *lens);
    for (size_t i = 0; i < k && !cand; i++) {
        names[i] = rn_embed_name(s->emb, i);
        lens[i] = strlen(names[i]);
        ids[i] = rn_embed_id(s->emb, i);
    }
    for (size_t i = 0; i < k && cand; i++) {
        yajl_val it = YAJL_GET_ARRAY(cand)->values[i];
        if (!YAJL_IS_STRING(it)) {
            rn_inf_json_error(res, 400, "candidates[%zu] is not a string", i);
            goto out;
        }
        names[i] = YAJL_GET_STRING(it);
        lens[i] = strlen(names[i]);
        ids[i] = rn_hash64(names[i], lens[i]);
        if (!rn_embed_get(s->emb, ids[i])) {
            rn_inf_json_error(res, 422, "unknown item '%s' (not in the embedding table)", names[i]);
            goto out;
        }
    }
    /* A slate shows distinct items: a candidate listed twice is the client's
     * mistake. Sorted ids find it in O(k log k). */
    sorted = rn_xmalloc(k * sizeof *sorted);
    memcpy(sorted, ids, k * sizeof *sorted);
    qsort(sorted, k, sizeof *sorted, rn_inf_u64_cmp);
    for (size_t i = 1; i < k; i++)
        if (sorted[i] == sorted[i - 1]) {
            for (size_t j = 0; j < k; j++)
                if (ids[j] == sorted[i]) {
                    rn_inf_json_error(res, 400, "candidate '%s' is listed twice", names[j]);
                    break;
                }
            goto out;
        }
    const char *uname = YAJL_GET_STRING(user);
    uint64_t uid = rn_hash64(uname, strlen(uname));
    const char *rname = rv ? YAJL_GET_STRING(rv) : NULL;
    uint64_t rid = rname ? rn_hash64(rname, strlen(rname)) : (uint64_t)ts ^ uid;
    /* Each serving thread keeps its scratch and hazard slot for this table
     * (keyed by the table's generation, not its address, which a later table
     * may reuse); a slot is kept while the thread serves the same feed. */
    struct rn_inf_tls *t = rn_inf_tls_get();
    if (t->gen != s->gen) {
        rn_inf_scratch_free(&t->x);
        memset(&t->x, 0, sizeof t->x);
        if (t->feed != s->feed || t->slot < 0) t->slot = rn_model_feed_slot(s->feed);
        t->feed = s->feed;
        if (s->ev_feed && (t->ev_feed != s->ev_feed || t->ev_slot < 0))
            t->ev_slot = rn_model_feed_slot(s->ev_feed);
        t->ev_feed = s->ev_feed;
        t->gen = s->gen;
    }
    if (t->slot < 0 || (s->ev_feed && t->ev_slot < 0)) {
        t->gen = 0;
        rn_inf_json_error(res, 503, "too many serving threads for one model store");
        goto out;
    }
    /* The request's context, by the configured names (missing: 0 in φ). */
    double ctxv[RN_CONTEXT_MAX];
    if (c->feat.n_ctx) {
        const char *pctx[] = {"context", NULL};
        yajl_val cv = yajl_tree_get(root, pctx, yajl_t_any);
        if (cv && !YAJL_IS_OBJECT(cv)) {
            rn_inf_json_error(res, 400, "'context' must be an object");
            goto out;
        }
        for (uint32_t i = 0; i < c->feat.n_ctx; i++) {
            const char *pf[] = {c->feat.ctx_names[i], NULL};
            yajl_val fv = cv ? yajl_tree_get(cv, pf, yajl_t_any) : NULL;
            if (fv && !YAJL_IS_NUMBER(fv)) {
                rn_inf_json_error(res, 400, "context field '%s' must be a number",
                                  c->feat.ctx_names[i]);
                goto out;
            }
            ctxv[i] = fv ? YAJL_GET_DOUBLE(fv) : NAN;
        }
    }
    uint32_t slate[1000];
    double prop[1000];
    struct rn_inf_result r = {0, slate, prop, 0, 0, 0, 0};
    int rc = rn_inf_rank(s, t->slot, t->ev_slot, &t->x, uid, rid, ts, c->feat.n_ctx ? ctxv : NULL,
                         c->feat.n_ctx, ids, (uint32_t)k, (uint32_t)l, &r);
    if (rc < 0) {
        rn_inf_json_error(res, 400, "cannot rank %zu candidates for k = %" PRId64, k, l);
        goto out;
    }
    const char *sn[1000];
    size_t sl[1000];
    struct rn_buf *b = &res->body;
    rn_buf_puts(b, "{\"user\":");
    rn_json_str(b, uname, strlen(uname));
    rn_buf_puts(b, ",\"items\":[");
    for (uint32_t j = 0; j < r.l; j++) {
        if (j) rn_buf_putc(b, ',');
        rn_json_str(b, names[slate[j]], lens[slate[j]]);
        sn[j] = names[slate[j]];
        sl[j] = lens[slate[j]];
    }
    rn_buf_puts(b, "],\"propensities\":[");
    for (uint32_t j = 0; j < r.l; j++) {
        if (j) rn_buf_putc(b, ',');
        rn_json_f64(b, prop[j]);
    }
    rn_buf_puts(b, "],\"slate_propensity\":");
    rn_json_f64(b, r.slate_prop);
    rn_buf_printf(b, ",\"model_version\":%" PRId64 ",\"explore\":\"%s\"}\n", r.version,
                  rn_inf_explore_modes[r.mode]);
    res->content_type = "application/json";
    rn_inf_put_slate(s, uid, sn, sl, r.l, r.version, ts);
out:
    free(ids);
    free(sorted);
    free(names);
    free(lens);
    yajl_tree_free(root);
}

static void rn_inf_get_slate(struct rn_inf_shared *s, const char *user,
                             struct rn_http_response *res)
{
    uint64_t uid = rn_hash64(user, strlen(user));
    unsigned k = (unsigned)(uid % RN_INF_STRIPES);
    pthread_mutex_lock(&s->stripe[k].mu);
    struct rn_inf_user *u = rn_inf_user_get(s, uid, 0);
    if (!u || !u->slate) {
        pthread_mutex_unlock(&s->stripe[k].mu);
        rn_inf_json_error(res, 404, "no recommendation for user '%s' yet", user);
        return;
    }
    struct rn_buf *b = &res->body;
    rn_buf_puts(b, "{\"user\":");
    rn_json_str(b, user, strlen(user));
    rn_buf_puts(b, ",\"items\":[");
    const char *p = u->slate;
    for (uint32_t j = 0; j < u->slate_n; j++) {
        if (j) rn_buf_putc(b, ',');
        size_t n = strlen(p);
        rn_json_str(b, p, n);
        p += n + 1;
    }
    rn_buf_printf(b, "],\"model_version\":%" PRId64 ",\"ts\":%" PRId64 "}\n", u->slate_version,
                  u->slate_ts);
    pthread_mutex_unlock(&s->stripe[k].mu);
    res->content_type = "application/json";
}

static void rn_inf_http(void *ud, const struct rn_http_request *req, struct rn_http_response *res)
{
    struct rn_inf_shared *s = ud;
    int64_t t0 = rn_now_ns();
    static const char slates[] = "/api/v1/recommendations/";
    if (!strcmp(req->path, "/api/v1/recommend")) {
        if (strcmp(req->method, "POST")) {
            rn_inf_json_error(res, 405, "use POST");
            goto done;
        }
        rn_inf_recommend(s, req, res);
        rn_latency_record(s->lat, rn_now_ns() - t0);
    } else if (!strncmp(req->path, slates, sizeof slates - 1) && req->path[sizeof slates - 1]) {
        rn_inf_get_slate(s, req->path + sizeof slates - 1, res);
    } else if (!strcmp(req->path, "/api/v1/inference")) {
        struct rn_model_feed_stats st;
        rn_model_feed_stats(s->feed, &st);
        res->content_type = "application/json";
        rn_buf_printf(
            &res->body,
            "{\"model_version\":%" PRId64 ",\"loads\":%" PRIu64 ",\"load_failures\":%" PRIu64
            ",\"last_load_ms\":%.3f,\"requests_ok\":%" PRIu64 ",\"requests_bad\":%" PRIu64
            ",\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f}}\n",
            st.version, st.loads, st.failures, st.last_load_ms, (uint64_t)atomic_load(&s->http_ok),
            (uint64_t)atomic_load(&s->http_bad), rn_latency_quantile(s->lat, 0.5),
            rn_latency_quantile(s->lat, 0.99), rn_latency_quantile(s->lat, 0.999));
        if (s->ev_feed) {
            struct rn_model_feed_stats es;
            rn_model_feed_stats(s->ev_feed, &es);
            res->body.len -= 2; /* reopen the object: drop its closing "}\n" */
            rn_buf_printf(&res->body,
                          ",\"last\":{\"evaluator_version\":%" PRId64 ",\"searches\":%" PRIu64
                          ",\"changed\":%" PRIu64 ",\"out_of_time\":%" PRIu64
                          ",\"lists_tried\":%" PRIu64 ",\"without_evaluator\":%" PRIu64
                          ",\"added_latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f}}}\n",
                          es.version, (uint64_t)atomic_load(&s->last_searches),
                          (uint64_t)atomic_load(&s->last_changed),
                          (uint64_t)atomic_load(&s->last_out_of_time),
                          (uint64_t)atomic_load(&s->last_tried),
                          (uint64_t)atomic_load(&s->last_without_evaluator),
                          rn_latency_quantile(s->last_lat, 0.5), rn_latency_quantile(s->last_lat, 0.99),
                          rn_latency_quantile(s->last_lat, 0.999));
        }
    } else {
        rn_inf_json_error(res, 404, "no such endpoint: %s %s", req->method, req->path);
    }
done:
    if (res->status && res->status != 200)
        atomic_fetch_add(&s->http_bad, 1);
    else
        atomic_fetch_add(&s->http_ok, 1);
}

static const struct rn_port_decl rn_inf_out[] = {
    {NULL, "event",
     "One impression per ranked request: the slate, per-slot propensities and "
     "the model version (the log format: write it to the log to close the loop)."},
};

const struct rn_op_type rn_op_inference = {
    RN_OP_TYPE_HEAD,
    .name = "inference",
    .description = "Scores each request's candidates with the current model version, explores, "
                   "and emits impressions with exact propensities; serves recommendations over "
                   "HTTP.",
    .kind = RN_KIND_OPERATOR,
    .flags = RN_OP_KEYED,
    .config = rn_inf_keys,
    .ctx_size = sizeof(struct rn_inf_cfg),
    .in_type = "event",
    .outputs = rn_inf_out,
    .n_outputs = 1,
    .metrics = rn_inf_metrics,
    .default_key = "user",
    .init = rn_inf_init,
    .init_types = rn_inf_init_types,
    .fini = rn_inf_fini,
    .open = rn_inf_open,
    .process = rn_inf_process,
    .close = rn_inf_close,
    .on_processing_time = rn_inf_on_processing_time,
    .latencies = rn_inf_latencies,
};
