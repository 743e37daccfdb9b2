/*
 * rn_offline.c — `runnel train-offline`: batch (offline) RL of an actor from
 * the labelled lists the online_joiner logs, with their logging propensities,
 * as the seed article's FlinkRL/DBRL trains its models offline:
 *
 *   reinforce-topk  YouTube's top-K off-policy corrected REINFORCE (Chen et
 *                   al. 2019): a softmax over items, π(i|s) ∝ exp(e_iᵀ(Wφ+w)
 *                   + b_i); each rewarded logged item a pushes up log π(a|s)
 *                   with weight min(π/β, cap) · K(1−π)^(K−1) · R;
 *   ddpg            a deterministic actor a(s) = scale·tanh(Wφ + w) in
 *                   item-embedding space and a critic Q(s, a) = vᵀφ +
 *                   aᵀ(Mφ + m) learnt by TD on the logged items' embeddings,
 *                   target copies soft-updated;
 *   bcq             batch-constrained Q-learning (Fujimoto et al. 2019) as
 *                   the article describes it: a conditional VAE as the
 *                   generative model of logged actions, a perturbation model
 *                   ξ(s, â) ∈ [−Φ, Φ]·scale, and the same critic, whose TD
 *                   target takes the best of n generated-and-perturbed actions.
 *
 * Every actor is written as a `runnel-actor/1` model (rn_model.h) into a
 * model store, so inference, the simulator and `runnel evaluate` serve it with
 * the code they serve the dueling Q with. The data is read by `runnel
 * evaluate`'s loader (rn_ope_load), and the state φ(s) is rn_phi_compute over
 * the user's history rebuilt from the log as evaluate rebuilds it: the items
 * with a reward in the user's earlier lists, at those lists' times.
 *
 * One thread; BLAS held to one thread; shuffles and noise from one seeded
 * xoshiro256** stream: the same data, options and seed give the same bytes.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "rn_evaluate_int.h"
#include "rn_offline_int.h"
#include "rn_rand.h"

void openblas_set_num_threads(int n);

/* ---- losses and gradients ------------------------------------------------------- */

double rn_off_topk_weight(double pi, double beta, uint32_t k, double cap)
{
    double w = pi / beta;
    if (cap > 0 && w > cap) w = cap;
    return w * (double)k * pow(1.0 - pi, (double)k - 1.0);
}

double rn_off_reinforce_loss(const struct rn_model *m, const float *phi, const float *E,
                             const uint32_t *bucket, uint32_t n, uint32_t a, double ret,
                             double beta, uint32_t k, double cap, float *grad, double *pi_a,
                             double *w, float *scratch)
{
    uint32_t d = m->shape.dim, f = m->shape.phi;
    float *z = scratch, *u = scratch + n;
    const float *b = m->params + m->at.b;
    /* the scores of rn_model_advantages, with the buckets computed once */
    rn_model_action(m, phi, u);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)d, 1.0f, E, (int)d, u, 1, 0.0f, z, 1);
    for (uint32_t i = 0; i < n; i++)
        z[i] += b[bucket[i]];
    float mx = z[0];
    for (uint32_t i = 1; i < n; i++)
        mx = z[i] > mx ? z[i] : mx;
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        z[i] = expf(z[i] - mx); /* z now holds exp(z − max) */
        sum += z[i];
    }
    *pi_a = (double)z[a] / sum;
    *w = rn_off_topk_weight(*pi_a, beta, k, cap);
    double coef = *w * ret;
    double loss = -coef * log(*pi_a);
    if (grad) {
        /* ∂(−coef log π_a)/∂z_i = coef (π_i − [i = a]), coef held constant */
        for (uint32_t i = 0; i < n; i++) {
            z[i] = (float)(coef * ((double)z[i] / sum - (i == a ? 1.0 : 0.0)));
            grad[m->at.b + bucket[i]] += z[i];
        }
        /* ∂/∂w = Eᵀ dz, ∂/∂W = (Eᵀ dz) φᵀ */
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)n, (int)d, 1.0f, E, (int)d, z, 1, 0.0f, u, 1);
        cblas_saxpy((int)d, 1.0f, u, 1, grad + m->at.w, 1);
        cblas_sger(CblasRowMajor, (int)d, (int)f, 1.0f, u, 1, phi, 1, grad + m->at.W, (int)f);
    }
    return loss;
}

size_t rn_off_critic_size(uint32_t d, uint32_t f)
{
    return (size_t)f + (size_t)d * f + d;
}

double rn_off_critic_q(const float *c, uint32_t d, uint32_t f, const float *phi, const float *a)
{
    float gs[256], *g = d <= 256 ? gs : rn_xmalloc(d * sizeof *g);
    memcpy(g, c + f + (size_t)d * f, d * sizeof *g);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)f, 1.0f, c + f, (int)f, phi, 1, 1.0f, g,
                1);
    double q = (double)cblas_sdot((int)f, c, 1, phi, 1) + (double)cblas_sdot((int)d, a, 1, g, 1);
    if (g != gs) free(g);
    return q;
}

double rn_off_critic_loss(const float *c, uint32_t d, uint32_t f, const float *phi, const float *a,
                          double y, float *grad)
{
    double delta = rn_off_critic_q(c, d, f, phi, a) - y;
    if (grad) {
        float dl = (float)delta;
        cblas_saxpy((int)f, dl, phi, 1, grad, 1);
        cblas_sger(CblasRowMajor, (int)d, (int)f, dl, a, 1, phi, 1, grad + f, (int)f);
        cblas_saxpy((int)d, dl, a, 1, grad + f + (size_t)d * f, 1);
    }
    return 0.5 * delta * delta;
}

double rn_off_actor_loss(const struct rn_model *m, const float *c, const float *phi,
                         const float *a0, float *grad)
{
    uint32_t d = m->shape.dim, f = m->shape.phi;
    float scale = m->shape.scale != 0 ? m->shape.scale : 1.0f;
    float *buf = rn_xcalloc((size_t)7 * d + f, sizeof *buf);
    float *u = buf, *act0 = buf + d, *q = buf + 2 * d, *t = buf + 3 * d, *da0 = buf + 4 * d;
    float *act = buf + 5 * d, *x = buf + 6 * d; /* x = [φ; a0]: F + D floats */
    /* u = Wφ + w; a0 = scale · g(u) unless given */
    memcpy(u, m->params + m->at.w, d * sizeof *u);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)f, 1.0f, m->params + m->at.W, (int)f, phi,
                1, 1.0f, u, 1);
    for (uint32_t j = 0; j < d; j++)
        act0[j] = a0 ? a0[j] : scale * (m->shape.activation == RN_ACTOR_TANH ? tanhf(u[j]) : u[j]);
    memcpy(act, act0, d * sizeof *act);
    if (m->shape.perturb) {
        memcpy(x, phi, f * sizeof *x);
        memcpy(x + f, act0, d * sizeof *x);
        memcpy(t, m->params + m->at.p, d * sizeof *t);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)(f + d), 1.0f, m->params + m->at.P,
                    (int)(f + d), x, 1, 1.0f, t, 1);
        for (uint32_t j = 0; j < d; j++) {
            t[j] = tanhf(t[j]);
            act[j] += m->shape.pscale * t[j];
        }
    }
    double loss = -rn_off_critic_q(c, d, f, phi, act);
    if (grad) {
        /* ∂(−Q)/∂a = −(Mφ + m) */
        memcpy(q, c + f + (size_t)d * f, d * sizeof *q);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)f, 1.0f, c + f, (int)f, phi, 1, 1.0f,
                    q, 1);
        for (uint32_t j = 0; j < d; j++)
            da0[j] = -q[j];
        if (m->shape.perturb) {
            /* a = a0 + ps·tanh(P x + p): dt = −q ⊙ ps (1 − tanh²) */
            for (uint32_t j = 0; j < d; j++)
                t[j] = -q[j] * m->shape.pscale * (1.0f - t[j] * t[j]);
            cblas_saxpy((int)d, 1.0f, t, 1, grad + m->at.p, 1);
            cblas_sger(CblasRowMajor, (int)d, (int)(f + d), 1.0f, t, 1, x, 1, grad + m->at.P,
                       (int)(f + d));
            /* a0 enters x: da0 += P[:, F:]ᵀ dt */
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)d, (int)d, 1.0f, m->params + m->at.P + f,
                        (int)(f + d), t, 1, 1.0f, da0, 1);
        }
        if (!a0) {
            for (uint32_t j = 0; j < d; j++) {
                float gp = m->shape.activation == RN_ACTOR_TANH
                               ? scale * (1.0f - tanhf(u[j]) * tanhf(u[j]))
                               : scale;
                da0[j] *= gp;
            }
            cblas_saxpy((int)d, 1.0f, da0, 1, grad + m->at.w, 1);
            cblas_sger(CblasRowMajor, (int)d, (int)f, 1.0f, da0, 1, phi, 1, grad + m->at.W, (int)f);
        }
    }
    free(buf);
    return loss;
}

size_t rn_off_vae_size(uint32_t d, uint32_t f, uint32_t z)
{
    return (size_t)2 * z * (f + d) + 2u * z + (size_t)d * (f + z) + d;
}

void rn_off_vae_decode(const float *v, uint32_t d, uint32_t f, uint32_t z, float scale,
                       const float *phi, const float *zv, float *out)
{
    const float *Wd = v + (size_t)2 * z * (f + d) + 2u * z, *bd = Wd + (size_t)d * (f + z);
    float *y = rn_xmalloc(((size_t)f + z) * sizeof *y);
    memcpy(y, phi, f * sizeof *y);
    memcpy(y + f, zv, z * sizeof *y);
    memcpy(out, bd, d * sizeof *out);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)(f + z), 1.0f, Wd, (int)(f + z), y, 1,
                1.0f, out, 1);
    for (uint32_t j = 0; j < d; j++)
        out[j] = scale * tanhf(out[j]);
    free(y);
}

double rn_off_vae_loss(const float *v, uint32_t d, uint32_t f, uint32_t z, float scale,
                       const float *phi, const float *a, const float *eps, double kl, float *grad)
{
    const float *We = v, *be = We + (size_t)2 * z * (f + d);
    const float *Wd = be + 2 * z, *bd = Wd + (size_t)d * (f + z);
    size_t nx = (size_t)f + d, ny = (size_t)f + z;
    float *buf = rn_xcalloc(nx + ny + 5u * z + 3u * d, sizeof *buf);
    float *x = buf, *y = x + nx, *h = y + ny, *zz = h + 2 * z, *dh = zz + z, *o = dh + 2 * z;
    float *ahat = o + d, *dout = ahat + d;
    memcpy(x, phi, f * sizeof *x);
    memcpy(x + f, a, d * sizeof *x);
    memcpy(h, be, 2 * z * sizeof *h);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(2 * z), (int)nx, 1.0f, We, (int)nx, x, 1, 1.0f,
                h, 1);
    double klsum = 0;
    for (uint32_t k = 0; k < z; k++) {
        double mu = h[k], ls = h[z + k], s = exp(ls);
        zz[k] = (float)(mu + s * eps[k]);
        klsum += -0.5 * (1.0 + 2.0 * ls - mu * mu - s * s);
    }
    memcpy(y, phi, f * sizeof *y);
    memcpy(y + f, zz, z * sizeof *y);
    memcpy(o, bd, d * sizeof *o);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)ny, 1.0f, Wd, (int)ny, y, 1, 1.0f, o, 1);
    double rec = 0;
    for (uint32_t j = 0; j < d; j++) {
        float th = tanhf(o[j]);
        ahat[j] = scale * th;
        double e = (double)ahat[j] - a[j];
        rec += e * e;
        dout[j] = (float)(2.0 * e) * scale * (1.0f - th * th);
    }
    if (grad) {
        float *gWe = grad, *gbe = gWe + (size_t)2 * z * nx, *gWd = gbe + 2 * z, *gbd = gWd + d * ny;
        cblas_saxpy((int)d, 1.0f, dout, 1, gbd, 1);
        cblas_sger(CblasRowMajor, (int)d, (int)ny, 1.0f, dout, 1, y, 1, gWd, (int)ny);
        /* dz = Wd[:, F:]ᵀ dout */
        float *dz = ahat; /* reuse: ahat is no longer needed */
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)d, (int)z, 1.0f, Wd + f, (int)ny, dout, 1, 0.0f,
                    dz, 1);
        for (uint32_t k = 0; k < z; k++) {
            double mu = h[k], s = exp((double)h[z + k]);
            dh[k] = (float)(dz[k] + kl * mu);
            dh[z + k] = (float)(dz[k] * s * eps[k] + kl * (s * s - 1.0));
        }
        cblas_saxpy((int)(2 * z), 1.0f, dh, 1, gbe, 1);
        cblas_sger(CblasRowMajor, (int)(2 * z), (int)nx, 1.0f, dh, 1, x, 1, gWe, (int)nx);
    }
    free(buf);
    return rec + kl * klsum;
}

/* ---- the logged data as transitions ------------------------------------------------ */

struct rn__off_opts {
    const char *algo, *data, *out, *embeddings;
    uint32_t epochs, batch, topk, history, buckets, samples, latent;
    double lr, gamma, cap, train_fraction, half_life_ms, session_gap_ms, tau, phi_max, kl;
    uint64_t seed;
};

/* The training lists, in time order, with their states. */
struct rn__off_set {
    const struct rn_ope_data *d;
    size_t n;         /* lists used for training: the first n of d */
    uint32_t D, F;    /* embedding and state dimensions */
    float *phi;       /* n x F: φ(s) before the list */
    int64_t *next;    /* the user's next list within the session, or -1 (done) */
    double *ret;      /* the list's return-to-go G (its rewards + γ G of the next) */
    size_t n_items;   /* the catalogue: every item of the data */
    float *E;         /* n_items x D (zero rows for items without a vector) */
    uint64_t *ids;    /* their hashed ids */
    float max_action; /* the largest |component| of the catalogue's vectors */
    uint64_t n_slots; /* logged items in the n lists */
};

static void rn__off_set_free(struct rn__off_set *s)
{
    free(s->phi);
    free(s->next);
    free(s->ret);
    free(s->E);
    free(s->ids);
}

static int rn__off_set_build(struct rn__off_set *s, const struct rn_ope_data *d,
                             const struct rn_embed *emb, const struct rn__off_opts *o, char *errbuf,
                             size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->d = d;
    s->n = (size_t)floor(o->train_fraction * (double)d->n_lists);
    if (s->n < 2) {
        rn_errf(errbuf, errlen, "%s: %zu lists to train on (--train-fraction %.3g of %zu); need 2",
                o->data, s->n, o->train_fraction, d->n_lists);
        return RN_EINVAL;
    }
    struct rn_phi_spec spec;
    if (rn_phi_spec_open(&spec, o->history, o->half_life_ms, NULL, emb, errbuf, errlen))
        return RN_EINVAL;
    s->D = rn_embed_dim(emb);
    s->F = rn_phi_dim(&spec, emb);
    s->n_items = d->items.n;
    s->E = rn_xcalloc(s->n_items * s->D + 1, sizeof *s->E);
    s->ids = rn_xcalloc(s->n_items + 1, sizeof *s->ids);
    for (size_t i = 0; i < s->n_items; i++) {
        s->ids[i] = rn_hash64(d->items.names[i], strlen(d->items.names[i]));
        const float *e = rn_embed_get(emb, s->ids[i]);
        if (!e) continue;
        for (uint32_t j = 0; j < s->D; j++) {
            s->E[i * s->D + j] = e[j];
            if (fabsf(e[j]) > s->max_action) s->max_action = fabsf(e[j]);
        }
    }
    if (!(s->max_action > 0)) s->max_action = 1;
    s->phi = rn_xcalloc(s->n * s->F, sizeof *s->phi);
    s->next = rn_xmalloc(s->n * sizeof *s->next);
    s->ret = rn_xcalloc(s->n, sizeof *s->ret);
    /* Each user's history, rebuilt in time order as `runnel evaluate` does. */
    size_t nu = d->users.n;
    struct rn_hist **hist = rn_xcalloc(nu + 1, sizeof *hist);
    uint32_t *nh = rn_xcalloc(nu + 1, sizeof *nh), *caph = rn_xcalloc(nu + 1, sizeof *caph);
    int64_t *last = rn_xmalloc((nu + 1) * sizeof *last);
    for (size_t u = 0; u < nu; u++)
        last[u] = -1;
    void *scratch = rn_xmalloc(rn_phi_scratch_size(&spec, emb) + 1);
    for (size_t l = 0; l < s->n; l++) {
        const struct rn_ope_list *L = &d->lists[l];
        s->n_slots += L->n;
        rn_phi_compute(&spec, emb, hist[L->user], nh[L->user], L->ts, s->phi + l * s->F, scratch);
        s->next[l] = -1;
        int64_t prev = last[L->user];
        if (prev >= 0 && L->ts - d->lists[prev].ts <= o->session_gap_ms) s->next[prev] = (int64_t)l;
        last[L->user] = (int64_t)l;
        for (uint32_t i = 0; i < L->n; i++) {
            const struct rn_ope_slot *sl = &d->slots[L->first + i];
            if (!(sl->reward > 0)) continue;
            uint32_t u = L->user;
            if (nh[u] == caph[u]) {
                caph[u] = caph[u] ? 2 * caph[u] : 16;
                hist[u] = rn_xrealloc(hist[u], caph[u] * sizeof **hist);
            }
            hist[u][nh[u]++] = (struct rn_hist){.item_id = s->ids[sl->item], .ts = L->ts};
        }
    }
    for (size_t l = s->n; l-- > 0;) {
        const struct rn_ope_list *L = &d->lists[l];
        double r = 0;
        for (uint32_t i = 0; i < L->n; i++)
            r += d->slots[L->first + i].reward;
        s->ret[l] = r + (s->next[l] >= 0 ? o->gamma * s->ret[s->next[l]] : 0.0);
    }
    for (size_t u = 0; u < nu; u++)
        free(hist[u]);
    free(hist);
    free(nh);
    free(caph);
    free(last);
    free(scratch);
    rn_phi_spec_close(&spec);
    return 0;
}

/* ---- optimisation ------------------------------------------------------------------- */

struct rn__off_adam {
    float *m1, *m2;
    size_t n;
    uint64_t t;
};

static void rn__off_adam_init(struct rn__off_adam *a, size_t n)
{
    a->m1 = rn_xcalloc(n + 1, sizeof *a->m1);
    a->m2 = rn_xcalloc(n + 1, sizeof *a->m2);
    a->n = n;
    a->t = 0;
}

static void rn__off_adam_free(struct rn__off_adam *a)
{
    free(a->m1);
    free(a->m2);
}

/* One Adam step (β 0.9, 0.999, ε 1e-8, bias-corrected) of x along the mean
 * gradient g / count, after clipping it to an L2 norm of 10; only the n_idx
 * parameters listed in idx when idx is not NULL (the gradient is zero
 * elsewhere, and an entry whose gradient was always zero never moves, so
 * this is the dense step). Returns -1 when the gradient is not finite (x
 * untouched). */
static int rn__off_adam_step(struct rn__off_adam *a, float *x, const float *g, double count,
                             double lr, const uint32_t *idx, size_t n_idx)
{
    size_t n = idx ? n_idx : a->n;
    double norm = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = idx ? idx[k] : k;
        norm += (double)g[i] * g[i];
    }
    norm = sqrt(norm) / count;
    if (!isfinite(norm)) return -1;
    double s = (norm > 10.0 ? 10.0 / norm : 1.0) / count;
    a->t++;
    double c1 = 1.0 - pow(0.9, (double)a->t), c2 = 1.0 - pow(0.999, (double)a->t);
    for (size_t k = 0; k < n; k++) {
        size_t i = idx ? idx[k] : k;
        double gi = s * g[i];
        a->m1[i] = (float)(0.9 * a->m1[i] + 0.1 * gi);
        a->m2[i] = (float)(0.999 * a->m2[i] + 0.001 * gi * gi);
        x[i] -= (float)(lr * (a->m1[i] / c1) / (sqrt(a->m2[i] / c2) + 1e-8));
    }
    return 0;
}

static int rn__off_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* target ← (1 − τ) target + τ x */
static void rn__off_soft(float *target, const float *x, size_t n, double tau)
{
    for (size_t i = 0; i < n; i++)
        target[i] = (float)((1.0 - tau) * target[i] + tau * x[i]);
}

static double rn__off_normal(struct rn_rand *r)
{
    double u1 = rn_rand_uniform(r), u2 = rn_rand_uniform(r);
    return sqrt(-2.0 * log(u1 > 0 ? u1 : 1e-300)) * cos(2.0 * M_PI * u2);
}

static void rn__off_shuffle(size_t *ix, size_t n, struct rn_rand *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rn_rand_below(r, i);
        size_t t = ix[i - 1];
        ix[i - 1] = ix[j];
        ix[j] = t;
    }
}

/* Uniform initial weights in ±√(3 / fan_in). */
static void rn__off_init(float *x, size_t n, uint32_t fan_in, struct rn_rand *r)
{
    double lim = sqrt(3.0 / (double)fan_in);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((2.0 * rn_rand_uniform(r) - 1.0) * lim);
}

struct rn__off_report {
    double last_loss, extra;
    uint64_t transitions; /* processed, all epochs */
};

static int rn__off_nonfinite(const char *algo, const char *what, uint32_t epoch)
{
    fprintf(stderr,
            "runnel train-offline: %s: the %s gradient is not finite in epoch %u (lower --lr?)\n",
            algo, what, epoch + 1);
    return RN_EINVAL;
}

/* ---- REINFORCE with the top-K off-policy correction --------------------------------- */

static int rn__off_reinforce(const struct rn__off_set *s, const struct rn__off_opts *o,
                             struct rn_model *m, struct rn_rand *r, struct rn__off_report *rep)
{
    const struct rn_ope_data *d = s->d;
    /* The rewarded logged items: (list, slot) pairs, each an example. */
    size_t n_ex = 0;
    size_t *ex = rn_xmalloc((s->n_slots + 1) * sizeof *ex);
    for (size_t l = 0; l < s->n; l++)
        for (uint32_t i = 0; i < d->lists[l].n; i++)
            if (d->slots[d->lists[l].first + i].reward > 0) ex[n_ex++] = d->lists[l].first + i;
    size_t *owner = rn_xmalloc((d->n_slots + 1) * sizeof *owner);
    for (size_t l = 0; l < s->n; l++)
        for (uint32_t i = 0; i < d->lists[l].n; i++)
            owner[d->lists[l].first + i] = l;
    uint32_t *bucket = rn_xmalloc((s->n_items + 1) * sizeof *bucket);
    for (size_t i = 0; i < s->n_items; i++)
        bucket[i] = (uint32_t)(s->ids[i] % m->shape.buckets);
    /* the parameters a step moves: W, w and the catalogue's buckets */
    uint32_t *upd = rn_xmalloc((m->at.b + s->n_items + 1) * sizeof *upd);
    size_t n_upd = 0;
    for (size_t i = 0; i < m->at.b; i++)
        upd[n_upd++] = (uint32_t)i;
    for (size_t i = 0; i < s->n_items; i++)
        upd[n_upd++] = (uint32_t)(m->at.b + bucket[i]);
    qsort(upd + m->at.b, n_upd - m->at.b, sizeof *upd, rn__off_cmp_u32);
    size_t uniq = m->at.b;
    for (size_t i = m->at.b; i < n_upd; i++)
        if (uniq == m->at.b || upd[i] != upd[uniq - 1]) upd[uniq++] = upd[i];
    n_upd = uniq;
    rn__off_init(m->params + m->at.W, (size_t)s->D * s->F, s->F, r);
    struct rn__off_adam adam;
    rn__off_adam_init(&adam, m->at.n);
    float *grad = rn_xcalloc(m->at.n, sizeof *grad);
    float *scratch = rn_xmalloc((s->n_items + s->D + 1) * sizeof *scratch);
    int rc = 0;
    for (uint32_t ep = 0; ep < o->epochs && !rc; ep++) {
        rn__off_shuffle(ex, n_ex, r);
        double sum_loss = 0, sum_w = 0, max_w = 0;
        for (size_t b0 = 0; b0 < n_ex && !rc; b0 += o->batch) {
            size_t nb = RN_MIN((size_t)o->batch, n_ex - b0);
            for (size_t k = 0; k < n_upd; k++)
                grad[upd[k]] = 0;
            for (size_t k = 0; k < nb; k++) {
                size_t slot = ex[b0 + k], l = owner[slot];
                const struct rn_ope_list *L = &d->lists[l];
                const struct rn_ope_slot *sl = &d->slots[slot];
                double rl = 0;
                for (uint32_t i = 0; i < L->n; i++)
                    rl += d->slots[L->first + i].reward;
                /* R: the item's reward and its share of the continuation */
                double cont = s->next[l] >= 0 ? o->gamma * s->ret[s->next[l]] : 0.0;
                double R = sl->reward + cont * sl->reward / rl;
                double pi, w;
                sum_loss += rn_off_reinforce_loss(m, s->phi + l * s->F, s->E, bucket,
                                                  (uint32_t)s->n_items, sl->item, R, sl->prop,
                                                  o->topk, o->cap, grad, &pi, &w, scratch);
                sum_w += w;
                max_w = w > max_w ? w : max_w;
            }
            if (rn__off_adam_step(&adam, m->params, grad, (double)nb, o->lr, upd, n_upd))
                rc = rn__off_nonfinite(o->algo, "policy", ep);
        }
        rep->transitions += n_ex;
        rep->last_loss = n_ex ? sum_loss / (double)n_ex : 0;
        rep->extra = n_ex ? sum_w / (double)n_ex : 0;
        fprintf(stderr, "epoch %u/%u: examples %zu loss %.5f mean weight %.4g max weight %.4g\n",
                ep + 1, o->epochs, n_ex, rep->last_loss, rep->extra, max_w);
    }
    rn__off_adam_free(&adam);
    free(grad);
    free(scratch);
    free(ex);
    free(owner);
    free(bucket);
    free(upd);
    return rc;
}

/* ---- DDPG and BCQ --------------------------------------------------------------------- */

/* The lists' TD targets of one mini-batch: y_l's continuation γ Q'(s', a'(s'))
 * per list (0 when done), a' the target actor's action (DDPG) or the best of
 * `samples` generated and perturbed actions under the target critic (BCQ). */
static double rn__off_continuation(const struct rn__off_set *s, const struct rn__off_opts *o,
                                   size_t l, const float *critic_t, const struct rn_model *actor_t,
                                   const float *vae, struct rn_rand *r, float *a, float *zv)
{
    if (s->next[l] < 0) return 0.0;
    const float *phi2 = s->phi + (size_t)s->next[l] * s->F;
    if (!vae) {
        rn_model_action(actor_t, phi2, a);
        return o->gamma * rn_off_critic_q(critic_t, s->D, s->F, phi2, a);
    }
    double best = -INFINITY;
    for (uint32_t j = 0; j < o->samples; j++) {
        for (uint32_t k = 0; k < o->latent; k++) {
            double z = rn__off_normal(r);
            zv[k] = (float)(z > 0.5 ? 0.5 : z < -0.5 ? -0.5 : z);
        }
        rn_off_vae_decode(vae, s->D, s->F, o->latent, s->max_action, phi2, zv, a);
        float *ap = a + s->D;
        /* â + ξ'(s', â), through the target actor's perturbation layer */
        memcpy(ap, a, s->D * sizeof *ap);
        float *x = zv + o->latent, *t = x + s->F + s->D;
        memcpy(x, phi2, s->F * sizeof *x);
        memcpy(x + s->F, a, s->D * sizeof *x);
        memcpy(t, actor_t->params + actor_t->at.p, s->D * sizeof *t);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)s->D, (int)(s->F + s->D), 1.0f,
                    actor_t->params + actor_t->at.P, (int)(s->F + s->D), x, 1, 1.0f, t, 1);
        for (uint32_t k = 0; k < s->D; k++)
            ap[k] += actor_t->shape.pscale * tanhf(t[k]);
        double q = rn_off_critic_q(critic_t, s->D, s->F, phi2, ap);
        best = q > best ? q : best;
    }
    return o->gamma * best;
}

static int rn__off_actor_critic(const struct rn__off_set *s, const struct rn__off_opts *o,
                                struct rn_model *m, struct rn_rand *r, struct rn__off_report *rep)
{
    const struct rn_ope_data *d = s->d;
    int bcq = strcmp(o->algo, "bcq") == 0;
    uint32_t D = s->D, F = s->F, Z = o->latent;
    size_t nc = rn_off_critic_size(D, F), nv = bcq ? rn_off_vae_size(D, F, Z) : 0;
    float *critic = rn_xcalloc(nc, sizeof *critic), *gc = rn_xcalloc(nc, sizeof *gc);
    float *vae = bcq ? rn_xcalloc(nv, sizeof *vae) : NULL;
    float *gv = bcq ? rn_xcalloc(nv, sizeof *gv) : NULL;
    rn__off_init(critic + F, (size_t)D * F, F, r);
    if (bcq) {
        rn__off_init(vae, (size_t)2 * Z * (F + D), F + D, r);
        rn__off_init(vae + (size_t)2 * Z * (F + D) + 2u * Z, (size_t)D * (F + Z), F + Z, r);
        rn__off_init(m->params + m->at.P, (size_t)D * (F + D), F + D, r);
        for (size_t i = 0; i < (size_t)D * (F + D); i++)
            m->params[m->at.P + i] *= 0.01f; /* start with almost no perturbation */
    } else {
        rn__off_init(m->params + m->at.W, (size_t)D * F, F, r);
    }
    struct rn_model *mt = rn_model_clone(m);
    float *critic_t = rn_xmalloc(nc * sizeof *critic_t);
    memcpy(critic_t, critic, nc * sizeof *critic_t);
    struct rn__off_adam ac, aa, av;
    rn__off_adam_init(&ac, nc);
    rn__off_adam_init(&aa, m->at.n);
    if (bcq) rn__off_adam_init(&av, nv);
    float *ga = rn_xcalloc(m->at.n, sizeof *ga);
    float *a = rn_xcalloc(4u * D + 2u * Z + 2u * F + 4, sizeof *a);
    float *zv = rn_xcalloc(2u * Z + 2u * F + 3u * D + 4, sizeof *zv);
    float *eps = rn_xcalloc(Z + 1, sizeof *eps);
    size_t *ix = rn_xmalloc(s->n * sizeof *ix);
    for (size_t l = 0; l < s->n; l++)
        ix[l] = l;
    int rc = 0;
    for (uint32_t ep = 0; ep < o->epochs && !rc; ep++) {
        rn__off_shuffle(ix, s->n, r);
        double sum_c = 0, sum_a = 0, sum_v = 0;
        uint64_t items = 0;
        for (size_t b0 = 0; b0 < s->n && !rc; b0 += o->batch) {
            size_t nb = RN_MIN((size_t)o->batch, s->n - b0);
            uint64_t nbi = 0;
            memset(gc, 0, nc * sizeof *gc);
            memset(ga, 0, m->at.n * sizeof *ga);
            if (bcq) memset(gv, 0, nv * sizeof *gv);
            for (size_t k = 0; k < nb; k++) {
                size_t l = ix[b0 + k];
                const struct rn_ope_list *L = &d->lists[l];
                const float *phi = s->phi + l * F;
                double cont = rn__off_continuation(s, o, l, critic_t, mt, vae, r, a, zv);
                for (uint32_t i = 0; i < L->n; i++) {
                    const struct rn_ope_slot *sl = &d->slots[L->first + i];
                    const float *e = s->E + (size_t)sl->item * D;
                    sum_c += rn_off_critic_loss(critic, D, F, phi, e, sl->reward + cont, gc);
                    if (bcq) {
                        for (uint32_t q = 0; q < Z; q++)
                            eps[q] = (float)rn__off_normal(r);
                        sum_v +=
                            rn_off_vae_loss(vae, D, F, Z, s->max_action, phi, e, eps, o->kl, gv);
                    }
                    nbi++;
                }
                if (bcq) {
                    for (uint32_t q = 0; q < Z; q++) {
                        double z = rn__off_normal(r);
                        zv[q] = (float)(z > 0.5 ? 0.5 : z < -0.5 ? -0.5 : z);
                    }
                    rn_off_vae_decode(vae, D, F, Z, s->max_action, phi, zv, a);
                    sum_a += rn_off_actor_loss(m, critic, phi, a, ga);
                } else {
                    sum_a += rn_off_actor_loss(m, critic, phi, NULL, ga);
                }
            }
            items += nbi;
            if (rn__off_adam_step(&ac, critic, gc, (double)nbi, o->lr, NULL, 0)) {
                rc = rn__off_nonfinite(o->algo, "critic", ep);
                break;
            }
            if (rn__off_adam_step(&aa, m->params, ga, (double)nb, o->lr, NULL, 0)) {
                rc = rn__off_nonfinite(o->algo, bcq ? "perturbation" : "actor", ep);
                break;
            }
            if (bcq) {
                if (rn__off_adam_step(&av, vae, gv, (double)nbi, o->lr, NULL, 0)) {
                    rc = rn__off_nonfinite(o->algo, "VAE", ep);
                    break;
                }
                /* The served actor's base is the decoder at z = 0: its φ columns. */
                const float *Wd = vae + (size_t)2 * Z * (F + D) + 2u * Z;
                for (uint32_t j = 0; j < D; j++)
                    memcpy(m->params + m->at.W + (size_t)j * F, Wd + (size_t)j * (F + Z),
                           F * sizeof(float));
                memcpy(m->params + m->at.w, Wd + (size_t)D * (F + Z), D * sizeof(float));
            }
            rn__off_soft(critic_t, critic, nc, o->tau);
            rn__off_soft(mt->params, m->params, m->at.n, o->tau);
        }
        rep->transitions += items;
        rep->last_loss = items ? sum_c / (double)items : 0;
        rep->extra = s->n ? sum_a / (double)s->n : 0;
        if (bcq)
            fprintf(stderr,
                    "epoch %u/%u: transitions %" PRIu64
                    " critic loss %.5f VAE loss %.5f mean Q(s, a(s)) %.4f\n",
                    ep + 1, o->epochs, items, rep->last_loss, items ? sum_v / (double)items : 0,
                    -rep->extra);
        else
            fprintf(stderr,
                    "epoch %u/%u: transitions %" PRIu64 " critic loss %.5f mean Q(s, a(s)) %.4f\n",
                    ep + 1, o->epochs, items, rep->last_loss, -rep->extra);
    }
    rn__off_adam_free(&ac);
    rn__off_adam_free(&aa);
    if (bcq) rn__off_adam_free(&av);
    rn_model_destroy(mt);
    free(critic);
    free(critic_t);
    free(gc);
    free(vae);
    free(gv);
    free(ga);
    free(a);
    free(zv);
    free(eps);
    free(ix);
    return rc;
}

/* ---- the command --------------------------------------------------------------------- */

static int rn__off_usage(FILE *out)
{
    fprintf(out,
            "usage: runnel train-offline --algo reinforce-topk|ddpg|bcq --data PATH\n"
            "                            --embeddings FILE --out STORE_DIR\n"
            "                            [--epochs 5] [--lr 0.005] [--batch 32] [--seed 1]\n"
            "                            [--gamma 0.5] [--train-fraction 1] [--history 10]\n"
            "                            [--half-life-ms 1800000] [--session-gap-ms 1800000]\n"
            "                            [--topk 5] [--cap 10] [--buckets 65536]\n"
            "                            [--tau 0.01] [--phi 0.05] [--samples 10] [--latent D]\n"
            "                            [--kl 0.5]\n"
            "\n"
            "Trains an actor offline from the online_joiner's labelled lists (a JSON-lines\n"
            "file or a directory read recursively, e.g. the partitioned_file sink's\n"
            "training output) with their logging propensities, and publishes it as the\n"
            "next version of the model store STORE_DIR (format runnel-actor/1), where the\n"
            "inference operator, rn_sim's model: policy and runnel evaluate serve it.\n"
            "docs/learning.md, \"Offline RL\", has the algorithms and every option.\n");
    return out == stdout ? 0 : 2;
}

static int rn__off_num(const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!v[0] || *end || errno || !(x >= lo && x <= hi)) {
        fprintf(stderr, "runnel train-offline: %s wants a number in [%g, %g], not '%s'\n", opt, lo,
                hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int rn__off_uint(const char *opt, const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
    double x;
    if (rn__off_num(opt, v, lo, hi, &x)) return -1;
    if (x != floor(x)) {
        fprintf(stderr, "runnel train-offline: %s wants an integer, not '%s'\n", opt, v);
        return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

static int rn__off_train(const struct rn__off_opts *opts)
{
    char err[1024];
    struct rn__off_opts oo = *opts, *o = &oo;
    int64_t t0 = rn_now_ns();
    openblas_set_num_threads(1);
    struct rn_embed *emb = rn_embed_load(o->embeddings, err, sizeof err);
    if (!emb) {
        fprintf(stderr, "runnel train-offline: %s\n", err);
        return 1;
    }
    if (o->latent == 0) o->latent = rn_embed_dim(emb); /* the default: D */
    struct rn_ope_data *d = rn_ope_load(o->data, err, sizeof err);
    if (!d) {
        fprintf(stderr, "runnel train-offline: %s\n", err);
        rn_embed_destroy(emb);
        return 1;
    }
    int rc = 1;
    struct rn__off_set s;
    if (rn__off_set_build(&s, d, emb, o, err, sizeof err)) {
        fprintf(stderr, "runnel train-offline: %s\n", err);
        goto fail_set;
    }
    int reinforce = strcmp(o->algo, "reinforce-topk") == 0, bcq = strcmp(o->algo, "bcq") == 0;
    struct rn_model_shape sh = {.dim = s.D, .phi = s.F, .buckets = reinforce ? o->buckets : 1};
    sh.kind = RN_MODEL_ACTOR;
    sh.activation = reinforce ? RN_ACTOR_LINEAR : RN_ACTOR_TANH;
    sh.scale = reinforce ? 1.0f : s.max_action;
    sh.perturb = (uint32_t)bcq;
    sh.pscale = bcq ? (float)o->phi_max * s.max_action : 0.0f;
    struct rn_model *m = rn_model_create(&sh);
    if (!m) {
        fprintf(stderr, "runnel train-offline: actor shape out of range\n");
        goto fail_model;
    }
    struct rn_rand r;
    rn_rand_seed(&r, o->seed, 0x0ff);
    struct rn__off_report rep = {0};
    int64_t t1 = rn_now_ns();
    int trc = reinforce ? rn__off_reinforce(&s, o, m, &r, &rep)
                        : rn__off_actor_critic(&s, o, m, &r, &rep);
    int64_t t2 = rn_now_ns();
    if (trc) goto fail_train;
    struct rn_model_version *vs = NULL;
    size_t nv = 0;
    if (rn_store_list(o->out, &vs, &nv, err, sizeof err)) nv = 0;
    struct rn_model_version v = {.id = nv ? vs[nv - 1].id + 1 : 1,
                                 .created_ms = rn_wall_ms(),
                                 .event_time = d->lists[s.n - 1].ts,
                                 .updates = rep.transitions,
                                 .transitions = s.n_slots,
                                 .loss = rep.last_loss,
                                 .mean_q = reinforce ? 0.0 : -rep.extra}; /* mean Q(s, a(s)) */
    free(vs);
    if (rn_store_publish(o->out, m, &v, err, sizeof err)) {
        fprintf(stderr, "runnel train-offline: %s\n", err);
        goto fail_train;
    }
    double secs = (double)(t2 - t1) / 1e9;
    printf("train-offline: algo=%s lists=%zu transitions=%" PRIu64 " epochs=%u "
           "train_seconds=%.3f ns_per_transition=%.1f params=%zu version=%" PRId64
           " store=%s total_seconds=%.3f\n",
           o->algo, s.n, s.n_slots, o->epochs, secs,
           (double)(t2 - t1) / ((double)s.n_slots * o->epochs), m->at.n, v.id, o->out,
           (double)(rn_now_ns() - t0) / 1e9);
    rc = 0;
fail_train:
    rn_model_destroy(m);
fail_model:
    rn__off_set_free(&s);
fail_set:
    rn_ope_data_free(d);
    rn_embed_destroy(emb);
    return rc;
}

int rn_offline_main(int argc, char **argv)
{
    struct rn__off_opts o = {.epochs = 5,
                             .batch = 32,
                             .topk = 5,
                             .history = 10,
                             .buckets = 65536,
                             .samples = 10,
                             .lr = 0.005,
                             .gamma = 0.5,
                             .cap = 10,
                             .train_fraction = 1,
                             .half_life_ms = 1800000,
                             .session_gap_ms = 1800000,
                             .tau = 0.01,
                             .phi_max = 0.05,
                             .kl = 0.5,
                             .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return rn__off_usage(stdout);
        if (a[0] != '-' || i + 1 >= argc) {
            fprintf(stderr, "runnel train-offline: %s '%s'\n",
                    a[0] == '-' ? "missing value for" : "unexpected argument", a);
            return rn__off_usage(stderr);
        }
        const char *v = argv[++i];
        double x = 0;
        int bad = 0;
        if (strcmp(a, "--algo") == 0) {
            o.algo = v;
        } else if (strcmp(a, "--data") == 0) {
            o.data = v;
        } else if (strcmp(a, "--embeddings") == 0) {
            o.embeddings = v;
        } else if (strcmp(a, "--out") == 0) {
            o.out = v;
        } else if (strcmp(a, "--epochs") == 0) {
            bad = rn__off_uint(a, v, 1, 100000, &o.epochs);
        } else if (strcmp(a, "--batch") == 0) {
            bad = rn__off_uint(a, v, 1, 65536, &o.batch);
        } else if (strcmp(a, "--topk") == 0) {
            bad = rn__off_uint(a, v, 1, 1000, &o.topk);
        } else if (strcmp(a, "--history") == 0) {
            bad = rn__off_uint(a, v, 1, 1000, &o.history);
        } else if (strcmp(a, "--buckets") == 0) {
            bad = rn__off_uint(a, v, 1, 1u << 24, &o.buckets);
        } else if (strcmp(a, "--samples") == 0) {
            bad = rn__off_uint(a, v, 1, 1000, &o.samples);
        } else if (strcmp(a, "--latent") == 0) {
            bad = rn__off_uint(a, v, 1, 4096, &o.latent);
        } else if (strcmp(a, "--seed") == 0) {
            bad = rn__off_num(a, v, 0, 9007199254740992.0, &x);
            o.seed = (uint64_t)x;
        } else if (strcmp(a, "--lr") == 0) {
            bad = rn__off_num(a, v, 1e-9, 10, &o.lr);
        } else if (strcmp(a, "--gamma") == 0) {
            bad = rn__off_num(a, v, 0, 0.999, &o.gamma);
        } else if (strcmp(a, "--cap") == 0) {
            bad = rn__off_num(a, v, 0, 1e9, &o.cap);
        } else if (strcmp(a, "--train-fraction") == 0) {
            bad = rn__off_num(a, v, 1e-9, 1, &o.train_fraction);
        } else if (strcmp(a, "--half-life-ms") == 0) {
            bad = rn__off_num(a, v, 1, 1e15, &o.half_life_ms);
        } else if (strcmp(a, "--session-gap-ms") == 0) {
            bad = rn__off_num(a, v, 0, 1e15, &o.session_gap_ms);
        } else if (strcmp(a, "--tau") == 0) {
            bad = rn__off_num(a, v, 1e-9, 1, &o.tau);
        } else if (strcmp(a, "--phi") == 0) {
            bad = rn__off_num(a, v, 0, 10, &o.phi_max);
        } else if (strcmp(a, "--kl") == 0) {
            bad = rn__off_num(a, v, 0, 1e6, &o.kl);
        } else {
            fprintf(stderr, "runnel train-offline: unknown option '%s'\n", a);
            return rn__off_usage(stderr);
        }
        if (bad) return rn__off_usage(stderr);
    }
    if (!o.algo || !o.data || !o.embeddings || !o.out) {
        fprintf(stderr, "runnel train-offline: --algo, --data, --embeddings and --out are "
                        "required\n");
        return rn__off_usage(stderr);
    }
    if (strcmp(o.algo, "reinforce-topk") != 0 && strcmp(o.algo, "ddpg") != 0 &&
        strcmp(o.algo, "bcq") != 0) {
        fprintf(stderr, "runnel train-offline: unknown --algo '%s' (reinforce-topk, ddpg or bcq)\n",
                o.algo);
        return 2;
    }
    return rn__off_train(&o);
}
