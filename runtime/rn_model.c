/*
 * rn_model.c — item embeddings, the simple state features, the dueling Q
 * model and its online TD learner (include/runnel/rn_model.h; the maths is in
 * docs/learning.md).
 *
 * The model is one float array (v | W | w | b | c). A mini-batch of B
 * transitions is learnt in three BLAS steps that do the bulk of the work:
 *
 *   U  = Φ Wᵀ          (B x D, sgemm)        u_t = W φ_t, plus w, per transition
 *   a  = E_t u_t       (n_t, sgemv)           the items' bilinear + linear terms
 *   ∇W = Gᵀ Φ          (D x F, sgemm)         G row t = E_tᵀ g_t
 *
 * and loops over the n_t items for the biases. Everything runs in a fixed
 * order on one thread, and OpenBLAS is held to one thread, so the same inputs
 * give the same bits.
 */
#include <assert.h>
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_learn_int.h"
#include "rn_model.h"

/* OpenBLAS's own knob: the learner and inference call BLAS from the engine's
 * worker threads, which must not fan out into a BLAS thread pool (that would
 * also make results depend on how the pool splits the work). */
void openblas_set_num_threads(int n);

static void rn__blas_single_thread(void)
{
    static int done;
    if (!__atomic_exchange_n(&done, 1, __ATOMIC_ACQ_REL)) openblas_set_num_threads(1);
}

/* ---- item embeddings ---------------------------------------------------------- */

struct rn_embed_entry {
    uint64_t id;
    uint32_t off;  /* into vecs, in floats */
    uint32_t name; /* into names */
};

struct rn_embed {
    struct rn_embed_entry *index;
    size_t n;
    float *vecs;
    uint32_t dim;
    struct rn_buf names; /* NUL-terminated item ids */
};

static int rn__embed_cmp(const void *a, const void *b)
{
    const struct rn_embed_entry *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

struct rn_embed *rn_embed_load(const char *path, char *errbuf, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        rn_errf(errbuf, errlen, "cannot open embeddings '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct rn_embed *t = rn_xcalloc(1, sizeof *t);
    char *line = NULL;
    size_t cap = 0, vcap = 0, icap = 0;
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok || tok[0] == '#') continue;
        uint64_t id = rn_hash64(tok, strlen(tok));
        size_t start = t->n * t->dim;
        uint32_t d = 0;
        for (char *v = strtok_r(NULL, " \t\r\n", &save); v; v = strtok_r(NULL, " \t\r\n", &save)) {
            char *end;
            errno = 0;
            float x = strtof(v, &end);
            if (*end || errno || !isfinite(x)) {
                rn_errf(errbuf, errlen, "%s:%d: '%s' is not a finite number", path, lineno, v);
                goto fail;
            }
            if (start + d + 1 > vcap) {
                vcap = vcap ? vcap * 2 : 4096;
                t->vecs = rn_xrealloc(t->vecs, vcap * sizeof *t->vecs);
            }
            t->vecs[start + d++] = x;
        }
        if (!t->n) t->dim = d;
        if (d == 0 || d != t->dim) {
            rn_errf(errbuf, errlen, "%s:%d: %u values, expected %u (the first line's)", path,
                    lineno, d, t->dim ? t->dim : 1);
            goto fail;
        }
        if (t->n == icap) {
            icap = icap ? icap * 2 : 1024;
            t->index = rn_xrealloc(t->index, icap * sizeof *t->index);
        }
        t->index[t->n].id = id;
        t->index[t->n].off = (uint32_t)start;
        t->index[t->n].name = (uint32_t)t->names.len;
        rn_buf_append(&t->names, tok, strlen(tok) + 1);
        t->n++;
    }
    if (ferror(f)) {
        rn_errf(errbuf, errlen, "cannot read embeddings '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (!t->n) {
        rn_errf(errbuf, errlen, "%s: no embeddings in the file", path);
        goto fail;
    }
    qsort(t->index, t->n, sizeof *t->index, rn__embed_cmp);
    for (size_t i = 1; i < t->n; i++)
        if (t->index[i].id == t->index[i - 1].id) {
            rn_errf(errbuf, errlen, "%s: an item appears twice", path);
            goto fail;
        }
    free(line);
    fclose(f);
    return t;
fail:
    free(line);
    fclose(f);
    rn_embed_destroy(t);
    return NULL;
}

void rn_embed_destroy(struct rn_embed *t)
{
    if (!t) return;
    free(t->index);
    free(t->vecs);
    rn_buf_free(&t->names);
    free(t);
}

const char *rn_embed_name(const struct rn_embed *t, size_t i)
{
    return t->names.data + t->index[i].name;
}

uint64_t rn_embed_id(const struct rn_embed *t, size_t i)
{
    return t->index[i].id;
}

uint32_t rn_embed_dim(const struct rn_embed *t)
{
    return t->dim;
}

size_t rn_embed_count(const struct rn_embed *t)
{
    return t->n;
}

const float *rn_embed_get(const struct rn_embed *t, uint64_t item_id)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->index[mid].id < item_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->n && t->index[lo].id == item_id) return t->vecs + t->index[lo].off;
    return NULL;
}

uint32_t rn_embed_rows(const struct rn_embed *t, const uint64_t *ids, uint32_t n, float *E)
{
    uint32_t missing = 0, d = t->dim;
    for (uint32_t i = 0; i < n; i++) {
        const float *e = rn_embed_get(t, ids[i]);
        if (e) {
            memcpy(E + (size_t)i * d, e, d * sizeof *E);
        } else {
            memset(E + (size_t)i * d, 0, d * sizeof *E);
            missing++;
        }
    }
    return missing;
}

/* The shared tables: a short list under one mutex (a job names a handful). */
struct rn__embed_shared {
    char *path;
    struct rn_embed *t;
    int refs;
    struct rn__embed_shared *next;
};
static pthread_mutex_t rn__embed_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rn__embed_shared *rn__embed_list;

struct rn_embed *rn_embed_acquire(const char *path, char *errbuf, size_t errlen)
{
    pthread_mutex_lock(&rn__embed_mu);
    struct rn__embed_shared *s = rn__embed_list;
    while (s && strcmp(s->path, path))
        s = s->next;
    if (!s) {
        struct rn_embed *t = rn_embed_load(path, errbuf, errlen);
        if (!t) {
            pthread_mutex_unlock(&rn__embed_mu);
            return NULL;
        }
        s = rn_xcalloc(1, sizeof *s);
        s->path = rn_xstrdup(path);
        s->t = t;
        s->next = rn__embed_list;
        rn__embed_list = s;
    }
    s->refs++;
    pthread_mutex_unlock(&rn__embed_mu);
    return s->t;
}

void rn_embed_release(struct rn_embed *t)
{
    if (!t) return;
    pthread_mutex_lock(&rn__embed_mu);
    for (struct rn__embed_shared **p = &rn__embed_list; *p; p = &(*p)->next) {
        struct rn__embed_shared *s = *p;
        if (s->t != t) continue;
        if (--s->refs == 0) {
            *p = s->next;
            rn_embed_destroy(s->t);
            free(s->path);
            free(s);
        }
        break;
    }
    pthread_mutex_unlock(&rn__embed_mu);
}

/* ---- state features ----------------------------------------------------------- */

void rn_phi_simple(const struct rn_embed *emb, uint32_t history, double half_life_ms,
                   const struct rn_hist *h, uint32_t n, int64_t now, float *phi)
{
    uint32_t d = emb->dim;
    memset(phi, 0, RN_PHI_SIMPLE_DIM(d) * sizeof *phi);
    uint32_t start = n > history ? n - history : 0, found = 0;
    for (uint32_t i = start; i < n; i++) {
        const float *e = rn_embed_get(emb, h[i].item_id);
        if (!e) continue;
        double age = (double)(now - h[i].ts);
        if (age < 0) age = 0;
        float wgt = half_life_ms > 0 ? (float)exp2(-age / half_life_ms) : 1.0f;
        for (uint32_t k = 0; k < d; k++) {
            phi[k] += e[k];
            phi[d + k] += wgt * e[k];
        }
        found++;
    }
    if (found)
        for (uint32_t k = 0; k < d; k++)
            phi[k] /= (float)found;
    phi[2 * d] = 1.0f;
    phi[2 * d + 1] = history ? (float)(n - start) / (float)history : 0.0f;
}

/* ---- the model -------------------------------------------------------------------- */

#define RN_MODEL_MAX_DIM 4096u
#define RN_MODEL_MAX_BUCKETS (1u << 24)
#define RN_MODEL_MAX_POSITIONS 1024u

void rn_model_layout(const struct rn_model_shape *s, struct rn_model_layout *out)
{
    int actor = s->kind == RN_MODEL_ACTOR;
    out->v = 0;
    out->W = out->v + (actor ? 0 : s->phi);
    out->w = out->W + (size_t)s->dim * s->phi;
    out->b = out->w + s->dim;
    out->c = out->b + s->buckets;
    out->P = out->c + (actor ? 0 : s->positions);
    out->p = out->P + (actor && s->perturb ? (size_t)s->dim * (s->phi + s->dim) : 0);
    out->n = out->p + (actor && s->perturb ? s->dim : 0);
}

static int rn__shape_ok(const struct rn_model_shape *s)
{
    int common = s->dim >= 1 && s->dim <= RN_MODEL_MAX_DIM && s->phi >= 1 &&
                 s->phi <= 4 * RN_MODEL_MAX_DIM && s->buckets >= 1 &&
                 s->buckets <= RN_MODEL_MAX_BUCKETS;
    switch (s->kind) {
    case RN_MODEL_DUELING_Q:
        return common && s->positions >= 1 && s->positions <= RN_MODEL_MAX_POSITIONS;
    case RN_MODEL_ACTOR:
        return common && s->positions == 0 && s->activation <= RN_ACTOR_TANH && s->perturb <= 1 &&
               isfinite(s->scale) && isfinite(s->pscale);
    default:
        return 0;
    }
}

struct rn_model *rn_model_create(const struct rn_model_shape *s)
{
    if (!rn__shape_ok(s)) return NULL;
    struct rn_model *m = rn_xcalloc(1, sizeof *m);
    m->shape = *s;
    rn_model_layout(s, &m->at);
    m->params = rn_xcalloc(m->at.n, sizeof *m->params);
    return m;
}

struct rn_model *rn_model_clone(const struct rn_model *m)
{
    struct rn_model *c = rn_model_create(&m->shape);
    memcpy(c->params, m->params, m->at.n * sizeof *m->params);
    return c;
}

void rn_model_destroy(struct rn_model *m)
{
    if (!m) return;
    free(m->params);
    free(m);
}

float rn_model_value(const struct rn_model *m, const float *phi)
{
    if (m->shape.kind != RN_MODEL_DUELING_Q) return 0.0f;
    return cblas_sdot((int)m->shape.phi, m->params + m->at.v, 1, phi, 1);
}

static inline uint32_t rn__bucket(const struct rn_model *m, uint64_t id)
{
    return (uint32_t)(id % m->shape.buckets);
}

static inline uint32_t rn__pos(const struct rn_model *m, uint32_t p)
{
    return p < m->shape.positions ? p : m->shape.positions - 1;
}

/* a[i] = E_i · u + b[item i] for u = Wφ + w, already computed. */
static void rn__item_terms(const struct rn_model *m, const float *u, const float *E,
                           const uint64_t *ids, uint32_t n, float *out)
{
    uint32_t d = m->shape.dim;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)d, 1.0f, E, (int)d, u, 1, 0.0f, out, 1);
    const float *b = m->params + m->at.b;
    for (uint32_t i = 0; i < n; i++)
        out[i] += b[rn__bucket(m, ids[i])];
}

/* The actor's action vector a(s) (D floats) into u; x holds F + D floats. */
static void rn__actor_action(const struct rn_model *m, const float *phi, float *u, float *x)
{
    uint32_t d = m->shape.dim, f = m->shape.phi;
    float scale = m->shape.scale != 0 ? m->shape.scale : 1.0f;
    memcpy(u, m->params + m->at.w, d * sizeof *u);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)f, 1.0f, m->params + m->at.W, (int)f, phi,
                1, 1.0f, u, 1);
    for (uint32_t j = 0; j < d; j++)
        u[j] = scale * (m->shape.activation == RN_ACTOR_TANH ? tanhf(u[j]) : u[j]);
    if (!m->shape.perturb) return;
    memcpy(x, phi, f * sizeof *x);
    memcpy(x + f, u, d * sizeof *x);
    float *t = x + f + d; /* d more floats: the caller sized x for F + 2D */
    memcpy(t, m->params + m->at.p, d * sizeof *t);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)(f + d), 1.0f, m->params + m->at.P,
                (int)(f + d), x, 1, 1.0f, t, 1);
    for (uint32_t j = 0; j < d; j++)
        u[j] += m->shape.pscale * tanhf(t[j]);
}

/* The user side of the score: the dueling model's W φ + w, or an actor's action
 * vector; items are scored against it by rn_model_item_scores. */
void rn_model_user_vector(const struct rn_model *m, const float *phi, float *u)
{
    rn__blas_single_thread();
    uint32_t d = m->shape.dim, f = m->shape.phi;
    if (m->shape.kind == RN_MODEL_ACTOR) {
        /* the perturbation's input [φ; a0] and output: on the stack when small (the
         * request path allocates nothing) */
        size_t nx = m->shape.perturb ? (size_t)f + 2u * d : 0;
        float xstack[1024], *x = nx <= 1024 ? xstack : rn_xmalloc(nx * sizeof *x);
        rn__actor_action(m, phi, u, x);
        if (x != xstack) free(x);
        return;
    }
    memcpy(u, m->params + m->at.w, d * sizeof *u);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)f, 1.0f, m->params + m->at.W, (int)f, phi,
                1, 1.0f, u, 1);
}

void rn_model_item_scores(const struct rn_model *m, const float *u, const float *E,
                          const uint64_t *item_ids, uint32_t n, float *out)
{
    if (n) rn__item_terms(m, u, E, item_ids, n, out);
}

void rn_model_advantages(const struct rn_model *m, const float *phi, const float *E,
                         const uint64_t *item_ids, uint32_t n, float *out)
{
    uint32_t d = m->shape.dim;
    float ustack[256], *u = d <= 256 ? ustack : rn_xmalloc(d * sizeof *u);
    rn_model_user_vector(m, phi, u);
    rn_model_item_scores(m, u, E, item_ids, n, out);
    if (u != ustack) free(u);
}

void rn_model_action(const struct rn_model *m, const float *phi, float *a)
{
    rn_model_user_vector(m, phi, a);
}

double rn_model_list_reward(const struct rn_model *m, const float *phi, const float *E,
                            const uint64_t *ids, uint32_t n, float *u, int u_ready)
{
    uint32_t d = m->shape.dim, f = m->shape.phi;
    if (!u_ready) rn_model_user_vector(m, phi, u);
    const float *b = m->params + m->at.b, *c = m->params + m->at.c;
    double r = cblas_sdot((int)f, m->params + m->at.v, 1, phi, 1);
    for (uint32_t p = 0; p < n; p++) {
        double a =
            (double)cblas_sdot((int)d, E + (size_t)p * d, 1, u, 1) + b[rn__bucket(m, ids[p])];
        r += (double)c[rn__pos(m, p)] * a;
    }
    return r;
}

/* ---- slates and exploration -------------------------------------------------------- */

int rn_slate_pick(const float *scores, uint32_t k, uint32_t l, const struct rn_explore_cfg *x,
                  double (*u)(void *), void *uctx, uint32_t *slate, double *prop,
                  double *slate_prop, double *scratch)
{
    if (l > k || k > 65536) return RN_EINVAL;
    uint32_t *idx = (uint32_t *)scratch; /* k indices fit in k doubles */
    *slate_prop = 1.0;
    if (x->mode == RN_EXPLORE_SOFTMAX) {
        double *w = scratch + k, mx = -INFINITY, t = x->temperature > 0 ? x->temperature : 1.0;
        for (uint32_t i = 0; i < k; i++)
            if (scores[i] > mx) mx = scores[i];
        for (uint32_t i = 0; i < k; i++) {
            w[i] = exp(((double)scores[i] - mx) / t);
            idx[i] = i;
        }
        uint32_t left = k;
        for (uint32_t j = 0; j < l; j++) {
            double total = 0;
            for (uint32_t i = 0; i < left; i++)
                total += w[idx[i]];
            if (!(total > 0)) {
                /* every weight left underflowed (scores far below the
                 * maximum): rescale by the largest left, as above */
                double m = -INFINITY;
                for (uint32_t i = 0; i < left; i++)
                    if (scores[idx[i]] > m) m = scores[idx[i]];
                for (uint32_t i = 0; i < left; i++)
                    total += w[idx[i]] = exp(((double)scores[idx[i]] - m) / t);
            }
            double r = u(uctx) * total, acc = 0;
            uint32_t pick = left - 1;
            for (uint32_t i = 0; i < left; i++) {
                acc += w[idx[i]];
                if (r < acc) {
                    pick = i;
                    break;
                }
            }
            slate[j] = idx[pick];
            prop[j] = w[idx[pick]] / total;
            *slate_prop *= prop[j];
            memmove(idx + pick, idx + pick + 1, (left - pick - 1) * sizeof *idx);
            left--;
        }
        return (int)l;
    }
    /* the top l by score, ties to the earlier candidate: selection, O(k l) */
    for (uint32_t i = 0; i < k; i++)
        idx[i] = i;
    for (uint32_t j = 0; j < l; j++) {
        uint32_t best = j;
        for (uint32_t i = j + 1; i < k; i++) {
            float a = scores[idx[i]], b = scores[idx[best]];
            if (a > b || (a == b && idx[i] < idx[best])) best = i;
        }
        uint32_t tmp = idx[j];
        idx[j] = idx[best];
        idx[best] = tmp;
    }
    /* idx[l..k) are the others, in some order: sort them by index so that the
     * draws below do not depend on the selection's swaps */
    for (uint32_t i = l + 1; i < k; i++) {
        uint32_t v = idx[i], m = i;
        while (m > l && idx[m - 1] > v) {
            idx[m] = idx[m - 1];
            m--;
        }
        idx[m] = v;
    }
    /* Slot j explores only while the pool lasts. With pool >= l it always
     * does, so it explores with probability ε; with fewer outside candidates
     * than slots, with probability q_j = ε · P(Binomial(j, ε) < pool), the
     * chance that fewer than `pool` of the slots above explored. Any one
     * outside item is equally likely to be the one drawn, so its marginal in
     * slot j is q_j / pool; the greedy item's is 1 − q_j. */
    uint32_t pool = k - l, explored = 0;
    for (uint32_t j = 0; j < l; j++) {
        double q = x->mode == RN_EXPLORE_EPSILON && pool ? x->epsilon : 0;
        if (q >= 1 && j >= pool) {
            q = 0; /* ε = 1: the first `pool` slots explore, the rest cannot */
        } else if (q > 0 && j >= pool) {
            double cdf = 0, pmf = pow(1 - q, j); /* P(Bin(j, ε) = 0) */
            for (uint32_t e = 0; e < pool; e++) {
                cdf += pmf;
                pmf *= (double)(j - e) / (e + 1) * q / (1 - q);
            }
            q *= cdf;
        }
        if (x->mode == RN_EXPLORE_EPSILON && pool > explored && x->epsilon > 0 &&
            u(uctx) < x->epsilon) {
            uint32_t left = pool - explored;
            uint32_t pick = l + explored + (uint32_t)(u(uctx) * left);
            if (pick >= k) pick = k - 1;
            uint32_t tmp = idx[l + explored];
            idx[l + explored] = idx[pick];
            idx[pick] = tmp;
            slate[j] = idx[l + explored];
            prop[j] = q / pool;
            *slate_prop *= x->epsilon / left;
            explored++;
        } else {
            slate[j] = idx[j];
            prop[j] = 1.0 - q;
            /* a slot that found the pool spent drew nothing: it was certain */
            if (x->mode == RN_EXPLORE_EPSILON && pool > explored) *slate_prop *= 1.0 - x->epsilon;
        }
    }
    return (int)l;
}

/* ---- the learner ------------------------------------------------------------------ */

struct rn_learner {
    struct rn_model *m, *target;
    struct rn_learn_cfg cfg;
    struct rn_learn_stats st;
    uint64_t step; /* optimiser steps (Adam's t) */
    float *m1, *m2, *grad;
    /* Scratch, grown as needed. */
    float *Phi, *U, *G, *a, *g;
    size_t cap_b, cap_items;
};

struct rn_learner *rn_learner_create(struct rn_model *m, const struct rn_learn_cfg *cfg,
                                     char *errbuf, size_t errlen)
{
    if (!m) {
        rn_errf(errbuf, errlen, "no model");
        return NULL;
    }
    if (m->shape.kind != RN_MODEL_DUELING_Q) {
        rn_errf(errbuf, errlen, "the TD learner learns a dueling-Q model, not an actor");
        return NULL;
    }
    if (cfg->optimizer < RN_OPT_SGD || cfg->optimizer > RN_OPT_ADAM) {
        rn_errf(errbuf, errlen, "unknown optimiser %d", cfg->optimizer);
        return NULL;
    }
    if (cfg->objective != RN_OBJ_TD && cfg->objective != RN_OBJ_LIST_REWARD) {
        rn_errf(errbuf, errlen, "unknown objective %d", cfg->objective);
        return NULL;
    }
    if (!(cfg->learning_rate > 0) || !(cfg->gamma >= 0 && cfg->gamma < 1) || !(cfg->l2 >= 0) ||
        !(cfg->clip >= 0) || cfg->target_every < 1) {
        rn_errf(errbuf, errlen,
                "learning_rate must be > 0, gamma in [0, 1), l2 and clip >= 0, "
                "target_every >= 1");
        return NULL;
    }
    rn__blas_single_thread();
    struct rn_learner *l = rn_xcalloc(1, sizeof *l);
    l->m = m;
    if (cfg->objective == RN_OBJ_LIST_REWARD)
        for (uint32_t p = 0; p < m->shape.positions; p++)
            m->params[m->at.c + p] = 1.0f;
    l->target = rn_model_clone(m);
    l->cfg = *cfg;
    if (l->cfg.eps <= 0) l->cfg.eps = 1e-8;
    if (l->cfg.adam_beta1 <= 0) l->cfg.adam_beta1 = 0.9;
    if (l->cfg.adam_beta2 <= 0) l->cfg.adam_beta2 = 0.999;
    l->m1 = rn_xcalloc(m->at.n, sizeof *l->m1);
    l->m2 = rn_xcalloc(m->at.n, sizeof *l->m2);
    l->grad = rn_xcalloc(m->at.n, sizeof *l->grad);
    return l;
}

void rn_learner_destroy(struct rn_learner *l)
{
    if (!l) return;
    rn_model_destroy(l->m);
    rn_model_destroy(l->target);
    free(l->m1);
    free(l->m2);
    free(l->grad);
    free(l->Phi);
    free(l->U);
    free(l->G);
    free(l->a);
    free(l->g);
    free(l);
}

const struct rn_model *rn_learner_model(const struct rn_learner *l)
{
    return l->m;
}

const struct rn_learn_stats *rn_learner_stats(const struct rn_learner *l)
{
    return &l->st;
}

static void rn__scratch(struct rn_learner *l, uint32_t nb, uint32_t max_items)
{
    uint32_t d = l->m->shape.dim, f = l->m->shape.phi;
    if (nb > l->cap_b) {
        l->cap_b = nb;
        l->Phi = rn_xrealloc(l->Phi, (size_t)nb * f * sizeof *l->Phi);
        l->U = rn_xrealloc(l->U, (size_t)nb * d * sizeof *l->U);
        l->G = rn_xrealloc(l->G, (size_t)nb * d * sizeof *l->G);
    }
    if (max_items > l->cap_items) {
        l->cap_items = max_items;
        l->a = rn_xrealloc(l->a, max_items * sizeof *l->a);
        l->g = rn_xrealloc(l->g, max_items * sizeof *l->g);
    }
}

/* The list-reward objective (RN_OBJ_LIST_REWARD): per list, e = R̂ − Σ r_i and
 * loss ½e², averaged over the lists of the mini-batch. With δ = e / nb:
 *   ∂v += δφ,  g_i = δ c[p_i],  ∂b[id_i] += g_i,  ∂c[p_i] += δ a_i,
 *   ∂w += Eᵀg, ∇W += (Eᵀg) φᵀ
 * where a_i = e_iᵀ(Wφ + w) + b[id_i]: the same BLAS calls as the TD loss. */
static double rn__list_reward_loss(struct rn_learner *l, const struct rn_transition *t, uint32_t nb,
                                   float *grad)
{
    const struct rn_model *m = l->m;
    uint32_t d = m->shape.dim, f = m->shape.phi;
    const float *c = m->params + m->at.c;
    double loss = 0, rsum = 0, inv_nb = 1.0 / (double)nb;
    for (uint32_t k = 0; k < nb; k++) {
        const struct rn_transition *x = &t[k];
        uint32_t n = x->n;
        float *G = l->G + (size_t)k * d;
        double r = cblas_sdot((int)f, m->params + m->at.v, 1, x->phi, 1), y = 0;
        if (n) rn__item_terms(m, l->U + (size_t)k * d, x->E, x->items, n, l->a);
        for (uint32_t i = 0; i < n; i++) {
            r += (double)c[rn__pos(m, x->pos[i])] * l->a[i];
            y += x->reward[i];
        }
        double e = r - y, delta = e * inv_nb;
        loss += 0.5 * e * e;
        rsum += r;
        if (!grad) continue;
        cblas_saxpy((int)f, (float)delta, x->phi, 1, grad + m->at.v, 1);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t p = rn__pos(m, x->pos[i]);
            l->g[i] = (float)(delta * c[p]);
            grad[m->at.b + rn__bucket(m, x->items[i])] += l->g[i];
            grad[m->at.c + p] += (float)(delta * l->a[i]);
        }
        if (n)
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)n, (int)d, 1.0f, x->E, (int)d, l->g, 1,
                        0.0f, G, 1);
        else
            memset(G, 0, d * sizeof *G);
        cblas_saxpy((int)d, 1.0f, G, 1, grad + m->at.w, 1);
    }
    if (grad)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)f, (int)nb, 1.0f, l->G,
                    (int)d, l->Phi, (int)f, 1.0f, grad + m->at.W, (int)f);
    l->st.last_q = rsum * inv_nb;
    return loss * inv_nb;
}

/* rn_learner_loss, also writing each item's Q and TD target in batch order
 * into q and y when they are not NULL (rn_learner_predict). */
static double rn__learner_loss(struct rn_learner *l, const struct rn_transition *t, uint32_t nb,
                               float *grad, float *q_out, float *y_out)
{
    const struct rn_model *m = l->m;
    uint32_t d = m->shape.dim, f = m->shape.phi;
    uint32_t max_items = 1;
    size_t total = 0;
    for (uint32_t k = 0; k < nb; k++) {
        if (t[k].n > max_items) max_items = t[k].n;
        total += t[k].n;
    }
    if (!nb || !total) {
        if (grad) memset(grad, 0, m->at.n * sizeof *grad);
        return 0;
    }
    rn__scratch(l, nb, max_items);
    for (uint32_t k = 0; k < nb; k++)
        memcpy(l->Phi + (size_t)k * f, t[k].phi, f * sizeof(float));
    /* U = Φ Wᵀ + 1 wᵀ */
    for (uint32_t k = 0; k < nb; k++)
        memcpy(l->U + (size_t)k * d, m->params + m->at.w, d * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)d, (int)f, 1.0f, l->Phi,
                (int)f, m->params + m->at.W, (int)f, 1.0f, l->U, (int)d);
    if (grad) memset(grad, 0, m->at.n * sizeof *grad);
    if (l->cfg.objective == RN_OBJ_LIST_REWARD) return rn__list_reward_loss(l, t, nb, grad);
    const float *c = m->params + m->at.c;
    const float *tv = l->target->params + l->target->at.v;
    double loss = 0, qsum = 0, inv_total = 1.0 / (double)total;
    for (uint32_t k = 0; k < nb; k++) {
        const struct rn_transition *x = &t[k];
        uint32_t n = x->n;
        float *G = l->G + (size_t)k * d;
        if (!n) {
            memset(G, 0, d * sizeof *G);
            continue;
        }
        float v = cblas_sdot((int)f, m->params + m->at.v, 1, x->phi, 1);
        double vnext = 0;
        if (!x->done && l->cfg.gamma > 0) vnext = cblas_sdot((int)f, tv, 1, x->phi_next, 1);
        uint32_t clicked = 0;
        for (uint32_t i = 0; i < n; i++)
            clicked += x->clicked[i] != 0;
        rn__item_terms(m, l->U + (size_t)k * d, x->E, x->items, n, l->a);
        double abar = 0;
        for (uint32_t i = 0; i < n; i++) {
            l->a[i] += c[rn__pos(m, x->pos[i])];
            abar += l->a[i];
        }
        abar = l->cfg.advantage_baseline == RN_ADV_BASELINE_NONE ? 0 : abar / n;
        double cont = x->done ? 0 : l->cfg.gamma * (double)n * vnext, dsum = 0;
        for (uint32_t i = 0; i < n; i++) {
            double share = clicked ? (x->clicked[i] ? 1.0 / clicked : 0) : 1.0 / n;
            double y = (double)x->reward[i] + cont * share;
            double q = (double)v + l->a[i] - abar;
            double e = q - y;
            if (q_out) *q_out++ = (float)q;
            if (y_out) *y_out++ = (float)y;
            loss += 0.5 * e * e;
            qsum += q;
            l->g[i] = (float)(e * inv_total); /* δ_i */
            dsum += e * inv_total;
        }
        if (!grad) continue;
        /* ∂/∂v = Σδ φ;  ∂/∂A_j = δ_j − mean δ (δ_j without the list-mean baseline) */
        cblas_saxpy((int)f, (float)dsum, x->phi, 1, grad + m->at.v, 1);
        float mean = l->cfg.advantage_baseline == RN_ADV_BASELINE_NONE ? 0.0f : (float)(dsum / n);
        for (uint32_t i = 0; i < n; i++) {
            l->g[i] -= mean;
            grad[m->at.b + rn__bucket(m, x->items[i])] += l->g[i];
            grad[m->at.c + rn__pos(m, x->pos[i])] += l->g[i];
        }
        /* G_k = E_kᵀ g (D): the gradient of w, and row k of ∇W = Gᵀ Φ */
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)n, (int)d, 1.0f, x->E, (int)d, l->g, 1, 0.0f, G,
                    1);
        cblas_saxpy((int)d, 1.0f, G, 1, grad + m->at.w, 1);
    }
    if (grad)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)f, (int)nb, 1.0f, l->G,
                    (int)d, l->Phi, (int)f, 1.0f, grad + m->at.W, (int)f);
    l->st.last_q = qsum * inv_total;
    return loss * inv_total;
}

double rn_learner_loss(struct rn_learner *l, const struct rn_transition *t, uint32_t nb,
                       float *grad)
{
    return rn__learner_loss(l, t, nb, grad, NULL, NULL);
}

void rn_learner_predict(struct rn_learner *l, const struct rn_transition *t, float *q, float *y)
{
    double last_q = l->st.last_q; /* a prediction is not an update: keep the stats */
    rn__learner_loss(l, t, 1, NULL, q, y);
    l->st.last_q = last_q;
}

void rn__adam_step(float *p, const float *g, float *m1, float *m2, size_t n, uint64_t t, float lr,
                   double beta1, double beta2, float eps)
{
    float b1 = (float)beta1, b2 = (float)beta2;
    float c1 = 1.0f - (float)pow(beta1, (double)t);
    float c2 = 1.0f - (float)pow(beta2, (double)t);
    float step = lr * sqrtf(c2) / c1;
    for (size_t i = 0; i < n; i++) {
        m1[i] = b1 * m1[i] + (1 - b1) * g[i];
        m2[i] = b2 * m2[i] + (1 - b2) * g[i] * g[i];
        p[i] -= step * m1[i] / (sqrtf(m2[i]) + eps * sqrtf(c2));
    }
}

int rn_learner_update(struct rn_learner *l, const struct rn_transition *t, uint32_t nb)
{
    return rn_learner_update_extra(l, t, nb, NULL);
}

int rn_learner_update_extra(struct rn_learner *l, const struct rn_transition *t, uint32_t nb,
                            const float *extra)
{
    struct rn_model *m = l->m;
    float *g = l->grad, *p = m->params;
    double loss = rn_learner_loss(l, t, nb, g);
    if (extra) cblas_saxpy((int)m->at.n, 1.0f, extra, 1, g, 1);
    size_t reg_end = m->at.b; /* v, W, w */
    if (l->cfg.l2 > 0) cblas_saxpy((int)reg_end, (float)l->cfg.l2, p, 1, g, 1);
    double norm = cblas_snrm2((int)m->at.n, g, 1);
    if (!isfinite(norm)) return RN_EINVAL;
    if (l->cfg.clip > 0 && norm > l->cfg.clip)
        cblas_sscal((int)m->at.n, (float)(l->cfg.clip / norm), g, 1);
    l->step++;
    float lr = (float)l->cfg.learning_rate, eps = (float)l->cfg.eps;
    switch (l->cfg.optimizer) {
    case RN_OPT_SGD:
        cblas_saxpy((int)m->at.n, -lr, g, 1, p, 1);
        break;
    case RN_OPT_ADAGRAD:
        for (size_t i = 0; i < m->at.n; i++) {
            l->m2[i] += g[i] * g[i];
            p[i] -= lr * g[i] / (sqrtf(l->m2[i]) + eps);
        }
        break;
    case RN_OPT_ADAM:
        rn__adam_step(p, g, l->m1, l->m2, m->at.n, l->step, lr, l->cfg.adam_beta1,
                      l->cfg.adam_beta2, eps);
        break;
    }
    l->st.updates++;
    l->st.transitions += nb;
    l->st.last_loss = loss;
    l->st.last_grad_norm = norm;
    if (l->st.updates % l->cfg.target_every == 0) memcpy(l->target->params, p, m->at.n * sizeof *p);
    return 0;
}

/* ---- the learner's bytes (checkpoints) ------------------------------------------- */

#define RN_LEARNER_MAGIC "RNLRNR01"

struct rn__learner_head {
    char magic[8];
    uint32_t dim, phi, buckets, positions;
    uint64_t n, step, updates, transitions;
    double last_loss, last_q, last_grad_norm;
};

void rn_learner_save(const struct rn_learner *l, struct rn_buf *out)
{
    const struct rn_model *m = l->m;
    struct rn__learner_head h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, RN_LEARNER_MAGIC, 8);
    h.dim = m->shape.dim;
    h.phi = m->shape.phi;
    h.buckets = m->shape.buckets;
    h.positions = m->shape.positions;
    h.n = m->at.n;
    h.step = l->step;
    h.updates = l->st.updates;
    h.transitions = l->st.transitions;
    h.last_loss = l->st.last_loss;
    h.last_q = l->st.last_q;
    h.last_grad_norm = l->st.last_grad_norm;
    rn_buf_append(out, &h, sizeof h);
    size_t bytes = m->at.n * sizeof(float);
    rn_buf_append(out, m->params, bytes);
    rn_buf_append(out, l->target->params, bytes);
    rn_buf_append(out, l->m1, bytes);
    rn_buf_append(out, l->m2, bytes);
}

int rn_learner_load(struct rn_learner *l, const void *p, size_t n)
{
    struct rn_model *m = l->m;
    struct rn__learner_head h;
    size_t bytes = m->at.n * sizeof(float);
    if (n < sizeof h) return RN_ECORRUPT;
    memcpy(&h, p, sizeof h);
    if (memcmp(h.magic, RN_LEARNER_MAGIC, 8) || h.dim != m->shape.dim || h.phi != m->shape.phi ||
        h.buckets != m->shape.buckets || h.positions != m->shape.positions || h.n != m->at.n ||
        n != sizeof h + 4 * bytes)
        return RN_ECORRUPT;
    const char *q = (const char *)p + sizeof h;
    memcpy(m->params, q, bytes);
    memcpy(l->target->params, q + bytes, bytes);
    memcpy(l->m1, q + 2 * bytes, bytes);
    memcpy(l->m2, q + 3 * bytes, bytes);
    l->step = h.step;
    l->st.updates = h.updates;
    l->st.transitions = h.transitions;
    l->st.last_loss = h.last_loss;
    l->st.last_q = h.last_q;
    l->st.last_grad_norm = h.last_grad_norm;
    return 0;
}
