/*
 * rn_distill.c — online teacher → student distillation (include/runnel/rn_distill.h;
 * docs/learning.md, "Distillation").
 *
 * Per transition of a mini-batch, in a fixed order on one thread:
 *
 *   ids   = shown items ++ `recall` items drawn from the student's table
 *           (splitmix64 from the transition's seed)
 *   u_T   = W_T φ_T + w_T,   a_T = E_T u_T + b_T       the teacher (D dims)
 *   u_S   = W_S φ_S + w_S,   a_S = E_S u_S + b_S       the student (d dims)
 *   sel   = top(a_T) ∪ top(a_S)                        explore and filter
 *   loss += λ_KL · KL_c(a_T[sel] ‖ a_S[sel]) + λ_hint · c̄ · ½‖P u_S − u_T‖² / D
 *
 * and the gradient flows back into the student's item biases, W_S and w_S
 * (through u_S) and into P; the teacher is only read. The student's step adds
 * this gradient to its own TD gradient (rn_learner_update_extra), so L2,
 * clipping and the optimiser are the learner's.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rn_distill.h"
#include "rn_learn_int.h"
#include "rn_rand.h"

/* ---- the pieces ------------------------------------------------------------------ */

uint32_t rn_distill_filter(const float *a_t, const float *a_s, const uint64_t *ids, uint32_t k,
                           uint32_t top, uint32_t *out, uint8_t *seen)
{
    /* seen[i]: bit 0 selected; bit 1 ranked by the teacher, bit 2 by the student */
    memset(seen, 0, k);
    const float *by[2] = {a_t, a_s};
    for (int model = 0; model < 2; model++) {
        const float *a = by[model];
        uint8_t bit = (uint8_t)(2 << model);
        for (uint32_t j = 0; j < top; j++) {
            uint32_t best = k;
            for (uint32_t i = 0; i < k; i++)
                if (!(seen[i] & bit) && (best == k || a[i] > a[best])) best = i;
            if (best == k) break;
            /* every copy of the item counts as ranked; it is selected once */
            int in = 0;
            for (uint32_t i = 0; i < k; i++)
                if (ids[i] == ids[best]) {
                    seen[i] |= bit;
                    in |= seen[i] & 1;
                }
            if (!in) seen[best] |= 1;
        }
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < k; i++)
        if (seen[i] & 1) out[n++] = i;
    return n;
}

/* log-softmax of a / tau into lp (n >= 1 doubles). */
static void rn__log_softmax(const float *a, uint32_t n, double tau, double *lp)
{
    /* shifted by the largest, whose term is exp(0) = 1: the sum is >= 1 */
    double mx = a[0] / tau, z = 1;
    for (uint32_t i = 1; i < n; i++)
        if (a[i] / tau > mx) mx = a[i] / tau;
    uint32_t top = 0;
    while (top + 1 < n && a[top] / tau != mx) /* (bounded: a NaN never compares equal) */
        top++;
    for (uint32_t i = 0; i < n; i++)
        if (i != top) z += exp(a[i] / tau - mx);
    double lz = mx + log(z);
    for (uint32_t i = 0; i < n; i++)
        lp[i] = a[i] / tau - lz;
}

double rn_distill_kl(const float *a_t, const float *a_s, const float *w, uint32_t n, double tau,
                     float *g_s)
{
    if (!n) return 0;
    double stack[2 * 64], *lt = n <= 64 ? stack : rn_xmalloc(2 * (size_t)n * sizeof *lt);
    double *ls = lt + n;
    rn__log_softmax(a_t, n, tau, lt);
    rn__log_softmax(a_s, n, tau, ls);
    double loss = 0, wsum = 0;
    for (uint32_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1.0, pt = exp(lt[i]);
        loss += wi * pt * (lt[i] - ls[i]);
        wsum += wi * pt;
    }
    /* ∂L/∂a_s(j) = (p_S(j) Σ_i w_i p_T(i) − w_j p_T(j)) / τ */
    if (g_s)
        for (uint32_t j = 0; j < n; j++)
            g_s[j] = (float)((exp(ls[j]) * wsum - (w ? w[j] : 1.0) * exp(lt[j])) / tau);
    if (lt != stack) free(lt);
    return loss;
}

double rn_distill_hint(const float *P, const float *h_s, const float *h_t, uint32_t ds, uint32_t dt,
                       double scale, float *g_P, float *g_hs)
{
    double loss = 0;
    for (uint32_t r = 0; r < dt; r++) {
        double x = -(double)h_t[r];
        for (uint32_t c = 0; c < ds; c++)
            x += (double)P[(size_t)r * ds + c] * h_s[c];
        loss += 0.5 * x * x / dt;
        double e = scale * x / dt; /* ∂L/∂(P h_s)_r, scaled */
        for (uint32_t c = 0; c < ds; c++) {
            if (g_P) g_P[(size_t)r * ds + c] += (float)(e * h_s[c]);
            if (g_hs) g_hs[c] += (float)(e * P[(size_t)r * ds + c]);
        }
    }
    return loss;
}

void rn_confidence_init(struct rn_confidence *c, double half_life_items)
{
    c->num = c->den = 0;
    c->decay = pow(2.0, -1.0 / half_life_items);
}

double rn_confidence_item(double q, double y)
{
    return 1.0 / (1.0 + fabs(q - y));
}

void rn_confidence_add(struct rn_confidence *c, double x)
{
    c->num = c->decay * c->num + x;
    c->den = c->decay * c->den + 1.0;
}

double rn_confidence_mean(const struct rn_confidence *c)
{
    return c->den > 0 ? c->num / c->den : 0.0;
}

/* ---- the distiller ----------------------------------------------------------------- */

struct rn_distiller {
    struct rn_learner *s; /* the student, owned */
    const struct rn_embed *te, *se;
    struct rn_distill_cfg cfg;
    uint32_t D, d;
    float *P, *Pm1, *Pm2, *gP, *gs;
    uint64_t pstep;
    struct rn_confidence conf;
    struct rn_distill_stats st;
    /* Scratch for one transition, grown as needed. */
    size_t cap;
    uint64_t *ids;
    float *Et, *Es, *at, *as, *w, *sub_t, *sub_s, *sub_w, *sub_g, *q, *y, *ut, *us, *gu;
    uint32_t *sel;
    uint8_t *seen;
};

struct rn_distiller *rn_distiller_create(struct rn_learner *student, const struct rn_embed *t_emb,
                                         const struct rn_embed *s_emb,
                                         const struct rn_distill_cfg *cfg, char *errbuf,
                                         size_t errlen)
{
    if (!student || !t_emb || !s_emb) {
        rn_errf(errbuf, errlen, "distillation needs a student and both item tables");
        return NULL;
    }
    const struct rn_model *m = rn_learner_model(student);
    if (m->shape.dim != rn_embed_dim(s_emb)) {
        rn_errf(errbuf, errlen, "the student's model has dim %u, its item table %u", m->shape.dim,
                rn_embed_dim(s_emb));
        return NULL;
    }
    if (!rn_embed_count(s_emb) || cfg->top < 1 || !(cfg->temperature > 0) ||
        !(cfg->kl_weight >= 0) || !(cfg->hint_weight >= 0) || !(cfg->confidence_half_life > 0) ||
        !(cfg->learning_rate > 0)) {
        rn_errf(errbuf, errlen,
                "distillation needs a non-empty student table, top >= 1, temperature, "
                "confidence half-life and learning rate > 0, weights >= 0");
        return NULL;
    }
    struct rn_distiller *d = rn_xcalloc(1, sizeof *d);
    d->s = student;
    d->te = t_emb;
    d->se = s_emb;
    d->cfg = *cfg;
    d->D = rn_embed_dim(t_emb);
    d->d = m->shape.dim;
    size_t np = (size_t)d->D * d->d;
    d->P = rn_xcalloc(np, sizeof *d->P);
    d->Pm1 = rn_xcalloc(np, sizeof *d->Pm1);
    d->Pm2 = rn_xcalloc(np, sizeof *d->Pm2);
    d->gP = rn_xcalloc(np, sizeof *d->gP);
    d->gs = rn_xcalloc(m->at.n, sizeof *d->gs);
    /* P starts as a fixed small random map, so that the hint's gradient reaches
     * the student from the first step (a zero P would pass nothing back) */
    struct rn_rand r;
    rn_rand_seed(&r, 0x6873696c6c6174ull, 0);
    for (size_t i = 0; i < np; i++)
        d->P[i] = (float)((rn_rand_uniform(&r) * 2 - 1) / sqrt((double)d->d));
    rn_confidence_init(&d->conf, cfg->confidence_half_life);
    return d;
}

void rn_distiller_destroy(struct rn_distiller *d)
{
    if (!d) return;
    rn_learner_destroy(d->s);
    free(d->P);
    free(d->Pm1);
    free(d->Pm2);
    free(d->gP);
    free(d->gs);
    free(d->ids);
    free(d->Et);
    free(d->Es);
    free(d->at);
    free(d->as);
    free(d->w);
    free(d->sub_t);
    free(d->sub_s);
    free(d->sub_w);
    free(d->sub_g);
    free(d->q);
    free(d->y);
    free(d->ut);
    free(d->us);
    free(d->gu);
    free(d->sel);
    free(d->seen);
    free(d);
}

struct rn_learner *rn_distiller_student(struct rn_distiller *d)
{
    return d->s;
}

const struct rn_distill_stats *rn_distiller_stats(const struct rn_distiller *d)
{
    return &d->st;
}

float *rn_distiller_projection(struct rn_distiller *d)
{
    return d->P;
}

static void rn__distill_scratch(struct rn_distiller *d, size_t k)
{
    if (k <= d->cap) return;
    d->cap = k;
    d->ids = rn_xrealloc(d->ids, k * sizeof *d->ids);
    d->Et = rn_xrealloc(d->Et, k * d->D * sizeof *d->Et);
    d->Es = rn_xrealloc(d->Es, k * d->d * sizeof *d->Es);
    float **v[] = {&d->at, &d->as, &d->w, &d->sub_t, &d->sub_s, &d->sub_w, &d->sub_g, &d->q, &d->y};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        *v[i] = rn_xrealloc(*v[i], k * sizeof **v[i]);
    d->sel = rn_xrealloc(d->sel, k * sizeof *d->sel);
    d->seen = rn_xrealloc(d->seen, k);
    if (!d->ut) {
        d->ut = rn_xmalloc(d->D * sizeof *d->ut);
        d->us = rn_xmalloc(d->d * sizeof *d->us);
        d->gu = rn_xmalloc(d->d * sizeof *d->gu);
    }
}

double rn_distill_loss(struct rn_distiller *d, struct rn_learner *teacher,
                       const struct rn_transition *tt, const struct rn_transition *st,
                       const uint64_t *seeds, uint32_t nb, float *g_student, float *g_P)
{
    const struct rn_model *tm = rn_learner_model(teacher), *sm = rn_learner_model(d->s);
    uint32_t D = d->D, ds = d->d, R = d->cfg.recall;
    size_t count = rn_embed_count(d->se);
    double cbar = rn_confidence_mean(&d->conf), kl_sum = 0, hint_sum = 0;
    double lk = d->cfg.kl_weight, lh = d->cfg.hint_weight * cbar;
    if (g_student) memset(g_student, 0, sm->at.n * sizeof *g_student);
    if (g_P) memset(g_P, 0, (size_t)D * ds * sizeof *g_P);
    uint64_t items = 0;
    for (uint32_t k = 0; k < nb; k++) {
        if (!tt[k].n) continue;
        uint32_t n = tt[k].n, K = n + R;
        rn__distill_scratch(d, K);
        /* explore: the shown items, then R drawn from the student's table */
        memcpy(d->ids, tt[k].items, n * sizeof *d->ids);
        memcpy(d->Et, tt[k].E, (size_t)n * D * sizeof *d->Et);
        memcpy(d->Es, st[k].E, (size_t)n * ds * sizeof *d->Es);
        uint64_t x = seeds[k];
        for (uint32_t j = 0; j < R; j++)
            d->ids[n + j] = rn_embed_id(d->se, (size_t)(rn_rand_splitmix64(&x) % count));
        rn_embed_rows(d->te, d->ids + n, R, d->Et + (size_t)n * D);
        rn_embed_rows(d->se, d->ids + n, R, d->Es + (size_t)n * ds);
        rn_model_user_vector(tm, tt[k].phi, d->ut);
        rn_model_item_scores(tm, d->ut, d->Et, d->ids, K, d->at);
        rn_model_user_vector(sm, st[k].phi, d->us);
        rn_model_item_scores(sm, d->us, d->Es, d->ids, K, d->as);
        /* confidence: the teacher's own on a shown item, the mean on the rest */
        rn_learner_predict(teacher, &tt[k], d->q, d->y);
        for (uint32_t i = 0; i < K; i++)
            d->w[i] = (float)(i < n ? rn_confidence_item(d->q[i], d->y[i]) : cbar);
        /* filter, then the list-wise KL over what is left */
        uint32_t m = rn_distill_filter(d->at, d->as, d->ids, K, d->cfg.top, d->sel, d->seen);
        for (uint32_t j = 0; j < m; j++) {
            d->sub_t[j] = d->at[d->sel[j]];
            d->sub_s[j] = d->as[d->sel[j]];
            d->sub_w[j] = d->w[d->sel[j]];
        }
        kl_sum += rn_distill_kl(d->sub_t, d->sub_s, d->sub_w, m, d->cfg.temperature,
                                g_student ? d->sub_g : NULL);
        items += m;
        memset(d->gu, 0, ds * sizeof *d->gu);
        hint_sum += rn_distill_hint(d->P, d->us, d->ut, ds, D, lh / nb, g_P, d->gu);
        if (!g_student) continue;
        /* a_S(i) = e_iᵀ u_S + b[i]: into the biases and ∂u_S; then u_S = W φ + w */
        float scale = (float)(lk / nb);
        float *gb = g_student + sm->at.b;
        for (uint32_t j = 0; j < m; j++) {
            uint32_t i = d->sel[j];
            float g = scale * d->sub_g[j];
            gb[d->ids[i] % sm->shape.buckets] += g;
            cblas_saxpy((int)ds, g, d->Es + (size_t)i * ds, 1, d->gu, 1);
        }
        cblas_saxpy((int)ds, 1.0f, d->gu, 1, g_student + sm->at.w, 1);
        cblas_sger(CblasRowMajor, (int)ds, (int)sm->shape.phi, 1.0f, d->gu, 1, st[k].phi, 1,
                   g_student + sm->at.W, (int)sm->shape.phi);
    }
    d->st.last_kl = nb ? kl_sum / nb : 0;
    d->st.last_hint = nb ? hint_sum / nb : 0;
    d->st.items += g_student ? items : 0;
    return nb ? (lk * kl_sum + lh * hint_sum) / nb : 0;
}

int rn_distill_update(struct rn_distiller *d, struct rn_learner *teacher,
                      const struct rn_transition *tt, const struct rn_transition *st,
                      const uint64_t *seeds, uint32_t nb)
{
    for (uint32_t k = 0; k < nb; k++) {
        if (!tt[k].n) continue;
        rn__distill_scratch(d, tt[k].n + d->cfg.recall);
        rn_learner_predict(teacher, &tt[k], d->q, d->y);
        for (uint32_t i = 0; i < tt[k].n; i++)
            rn_confidence_add(&d->conf, rn_confidence_item(d->q[i], d->y[i]));
    }
    rn_distill_loss(d, teacher, tt, st, seeds, nb, d->gs, d->gP);
    size_t np = (size_t)d->D * d->d;
    if (!isfinite(cblas_snrm2((int)np, d->gP, 1))) return RN_EINVAL;
    int rc = rn_learner_update_extra(d->s, st, nb, d->gs);
    if (rc) return rc;
    d->pstep++;
    rn__adam_step(d->P, d->gP, d->Pm1, d->Pm2, np, d->pstep, (float)d->cfg.learning_rate, 0.9,
                  0.999, 1e-8f);
    d->st.updates++;
    d->st.confidence = rn_confidence_mean(&d->conf);
    return 0;
}

/* ---- the distiller's bytes -------------------------------------------------------- */

#define RN_DISTILL_MAGIC "RNDSTL01"

struct rn__distill_head {
    char magic[8];
    uint32_t D, d;
    uint64_t pstep, updates, items, learner_len;
    double num, den, last_kl, last_hint;
};

void rn_distiller_save(const struct rn_distiller *d, struct rn_buf *out)
{
    struct rn_buf lb = RN_BUF_INIT;
    rn_learner_save(d->s, &lb);
    struct rn__distill_head h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, RN_DISTILL_MAGIC, 8);
    h.D = d->D;
    h.d = d->d;
    h.pstep = d->pstep;
    h.updates = d->st.updates;
    h.items = d->st.items;
    h.learner_len = lb.len;
    h.num = d->conf.num;
    h.den = d->conf.den;
    h.last_kl = d->st.last_kl;
    h.last_hint = d->st.last_hint;
    rn_buf_append(out, &h, sizeof h);
    rn_buf_append(out, lb.data, lb.len);
    size_t bytes = (size_t)d->D * d->d * sizeof(float);
    rn_buf_append(out, d->P, bytes);
    rn_buf_append(out, d->Pm1, bytes);
    rn_buf_append(out, d->Pm2, bytes);
    rn_buf_free(&lb);
}

int rn_distiller_load(struct rn_distiller *d, const void *p, size_t n)
{
    struct rn__distill_head h;
    size_t bytes = (size_t)d->D * d->d * sizeof(float);
    if (n < sizeof h) return RN_ECORRUPT;
    memcpy(&h, p, sizeof h);
    if (memcmp(h.magic, RN_DISTILL_MAGIC, 8) || h.D != d->D || h.d != d->d ||
        h.learner_len > n - sizeof h || n != sizeof h + h.learner_len + 3 * bytes)
        return RN_ECORRUPT;
    const char *q = (const char *)p + sizeof h;
    int rc = rn_learner_load(d->s, q, h.learner_len);
    if (rc) return rc;
    q += h.learner_len;
    memcpy(d->P, q, bytes);
    memcpy(d->Pm1, q + bytes, bytes);
    memcpy(d->Pm2, q + 2 * bytes, bytes);
    d->pstep = h.pstep;
    d->st.updates = h.updates;
    d->st.items = h.items;
    d->conf.num = h.num;
    d->conf.den = h.den;
    d->st.last_kl = h.last_kl;
    d->st.last_hint = h.last_hint;
    d->st.confidence = rn_confidence_mean(&d->conf);
    return 0;
}
