/*
 * rn_last.c — LAST, learning at serving time (include/runnel/rn_last.h; the
 * method is in docs/learning.md, "LAST").
 *
 * One search, per request, on the calling thread:
 *
 *   θ's scores s₀ ─ top l ─► L₀ ─ evaluator ─► R̂₀                    (the base)
 *   for candidate j (sign ±, length η_j), step t < steps, while time is left:
 *       β = ∂ log P_PL(L | s) / ∂s          (L: the list the candidate now makes)
 *       ∇ = (Eᵀβ) φᵀ for W, Eᵀβ for w, β summed per bucket for b
 *       Δθ += ±η_j ∇ / ‖∇‖                 (ΔW, Δw, Δb in the scratch only)
 *       s = s₀ + E (ΔW φ + Δw) + Δb         (exactly A under θ + Δθ)
 *       L = top l of s ─ evaluator ─► R̂;   the best R̂ so far is kept
 *
 * The scores under θ + Δθ are computed from s₀ and Δθ rather than by copying θ:
 * the item-bias vector b alone is 65536 floats by default, and Δb touches only
 * the candidates' buckets. Candidates that share a bucket share its Δb (the
 * gradient of b sums their β), so s is what a copy of θ + Δθ would score.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rn_last.h"

struct rn_last_bucket {
    uint32_t bucket, idx;
};

struct rn_last_scratch {
    size_t cap_k, cap_l, cap_df, cap_d;
    float *s0, *s, *best, *beta, *db, *gsum;
    double *dscratch;
    struct rn_last_bucket *order;
    uint32_t *grp; /* grp[i]: first position in `order` of candidate i's bucket group */
    uint32_t *list, *l0, *blist;
    uint8_t *taken;
    double *prop;
    float *El;
    uint64_t *lids;
    float *dW, *dw, *du, *g, *ue;
};

struct rn_last_scratch *rn_last_scratch_create(void)
{
    return rn_xcalloc(1, sizeof(struct rn_last_scratch));
}

void rn_last_scratch_destroy(struct rn_last_scratch *x)
{
    if (!x) return;
    free(x->s0);
    free(x->s);
    free(x->best);
    free(x->beta);
    free(x->db);
    free(x->gsum);
    free(x->dscratch);
    free(x->order);
    free(x->grp);
    free(x->taken);
    free(x->list);
    free(x->l0);
    free(x->blist);
    free(x->prop);
    free(x->El);
    free(x->lids);
    free(x->dW);
    free(x->dw);
    free(x->du);
    free(x->g);
    free(x->ue);
    free(x);
}

static void rn_last_grow(struct rn_last_scratch *x, uint32_t k, uint32_t l, uint32_t d, uint32_t f)
{
    if (k > x->cap_k) {
        x->cap_k = k;
        x->s0 = rn_xrealloc(x->s0, k * sizeof *x->s0);
        x->s = rn_xrealloc(x->s, k * sizeof *x->s);
        x->best = rn_xrealloc(x->best, k * sizeof *x->best);
        x->beta = rn_xrealloc(x->beta, k * sizeof *x->beta);
        x->db = rn_xrealloc(x->db, k * sizeof *x->db);
        x->gsum = rn_xrealloc(x->gsum, k * sizeof *x->gsum);
        x->dscratch = rn_xrealloc(x->dscratch, 2 * (size_t)k * sizeof *x->dscratch);
        x->order = rn_xrealloc(x->order, k * sizeof *x->order);
        x->grp = rn_xrealloc(x->grp, k * sizeof *x->grp);
        x->taken = rn_xrealloc(x->taken, k);
    }
    int el = 0;
    if (l > x->cap_l) {
        x->cap_l = l;
        x->list = rn_xrealloc(x->list, l * sizeof *x->list);
        x->l0 = rn_xrealloc(x->l0, l * sizeof *x->l0);
        x->blist = rn_xrealloc(x->blist, l * sizeof *x->blist);
        x->prop = rn_xrealloc(x->prop, l * sizeof *x->prop);
        x->lids = rn_xrealloc(x->lids, l * sizeof *x->lids);
        el = 1;
    }
    if (d > x->cap_d) {
        x->cap_d = d;
        x->dw = rn_xrealloc(x->dw, d * sizeof *x->dw);
        x->du = rn_xrealloc(x->du, d * sizeof *x->du);
        x->g = rn_xrealloc(x->g, d * sizeof *x->g);
        x->ue = rn_xrealloc(x->ue, d * sizeof *x->ue);
        el = 1;
    }
    if ((size_t)d * f > x->cap_df) {
        x->cap_df = (size_t)d * f;
        x->dW = rn_xrealloc(x->dW, x->cap_df * sizeof *x->dW);
    }
    if (el) x->El = rn_xrealloc(x->El, x->cap_l * x->cap_d * sizeof *x->El);
}

static int rn_last_bucket_cmp(const void *a, const void *b)
{
    const struct rn_last_bucket *x = a, *y = b;
    if (x->bucket != y->bucket) return x->bucket < y->bucket ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The top l of k scores, ties to the earlier candidate (rn_slate_pick's rule). */
static void rn_last_top(struct rn_last_scratch *x, const float *s, uint32_t k, uint32_t l,
                        uint32_t *out)
{
    static const struct rn_explore_cfg greedy = {RN_EXPLORE_NONE, 0, 0};
    double sp;
    rn_slate_pick(s, k, l, &greedy, NULL, NULL, out, x->prop, &sp, x->dscratch);
}

/* R̂ of the list `list` (l candidate indices) under the evaluator. */
static double rn_last_eval(struct rn_last_scratch *x, const struct rn_model *ev, const float *phi,
                           const float *E, const uint64_t *ids, const uint32_t *list, uint32_t l,
                           int ue_ready)
{
    uint32_t d = ev->shape.dim;
    for (uint32_t j = 0; j < l; j++) {
        memcpy(x->El + (size_t)j * d, E + (size_t)list[j] * d, d * sizeof *x->El);
        x->lids[j] = ids[list[j]];
    }
    return rn_model_list_reward(ev, phi, x->El, x->lids, l, x->ue, ue_ready);
}

/* β = ∂ log P_PL(list | s / T) / ∂s into x->beta:
 * β_i = [i in the list]/T − (1/T) Σ_{j: i not above slot j} softmax_j(i). */
static void rn_last_beta(struct rn_last_scratch *x, const float *s, uint32_t k,
                         const uint32_t *list, uint32_t l, double t)
{
    float mx = s[0];
    for (uint32_t i = 1; i < k; i++)
        if (s[i] > mx) mx = s[i];
    memset(x->taken, 0, k);
    for (uint32_t i = 0; i < k; i++) {
        x->dscratch[i] = exp(((double)s[i] - mx) / t);
        x->beta[i] = 0;
    }
    for (uint32_t j = 0; j < l; j++) {
        double z = 0;
        for (uint32_t i = 0; i < k; i++)
            if (!x->taken[i]) z += x->dscratch[i];
        for (uint32_t i = 0; i < k; i++)
            if (!x->taken[i]) x->beta[i] -= (float)(x->dscratch[i] / z / t);
        x->beta[list[j]] += (float)(1.0 / t);
        x->taken[list[j]] = 1;
    }
}

int rn_last_search(const struct rn_model *policy, const struct rn_model *evaluator,
                   const float *phi, const float *E, const uint64_t *ids, uint32_t k, uint32_t l,
                   const struct rn_last_cfg *cfg, struct rn_last_scratch *x, float *scores,
                   struct rn_last_stats *st)
{
    int64_t t0 = rn_now_ns();
    memset(st, 0, sizeof *st);
    st->best = -1;
    uint32_t d = policy->shape.dim, f = policy->shape.phi;
    if (!l || l > k || k > 65536 || evaluator->shape.dim != d || evaluator->shape.phi != f ||
        policy->shape.kind != RN_MODEL_DUELING_Q || evaluator->shape.kind != RN_MODEL_DUELING_Q)
        return RN_EINVAL;
    rn_last_grow(x, k, l, d, f);
    double t = cfg->temperature > 0 ? cfg->temperature : 1.0;
    memcpy(x->s0, scores, k * sizeof *scores);
    rn_last_top(x, x->s0, k, l, x->l0);
    st->base_reward = st->best_reward = rn_last_eval(x, evaluator, phi, E, ids, x->l0, l, 0);
    /* The candidates' buckets, grouped: b's gradient sums β over a group. */
    for (uint32_t i = 0; i < k; i++)
        x->order[i] = (struct rn_last_bucket){(uint32_t)(ids[i] % policy->shape.buckets), i};
    qsort(x->order, k, sizeof *x->order, rn_last_bucket_cmp);
    for (uint32_t a = 0; a < k; a++)
        x->grp[x->order[a].idx] =
            a && x->order[a].bucket == x->order[a - 1].bucket ? x->grp[x->order[a - 1].idx] : a;
    double phi2 = cblas_sdot((int)f, phi, 1, phi, 1);
    uint32_t tried = 0;
    for (uint32_t j = 0; j < cfg->candidates && !st->out_of_time; j++) {
        double sign = j % 2 ? -1.0 : 1.0, eta = cfg->step_size * ldexp(1.0, (int)(j / 2));
        memset(x->dW, 0, (size_t)d * f * sizeof *x->dW);
        memset(x->dw, 0, d * sizeof *x->dw);
        memset(x->db, 0, k * sizeof *x->db);
        memcpy(x->s, x->s0, k * sizeof *x->s);
        memcpy(x->list, x->l0, l * sizeof *x->list);
        for (uint32_t step = 0; step < cfg->steps; step++) {
            if (rn_now_ns() - t0 >= cfg->budget_ns) {
                st->out_of_time = 1;
                break;
            }
            rn_last_beta(x, x->s, k, x->list, l, t);
            /* g = Eᵀβ; per bucket group, the sum of β */
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)k, (int)d, 1.0f, E, (int)d, x->beta, 1,
                        0.0f, x->g, 1);
            double bb = 0;
            for (uint32_t a = 0; a < k; a++) {
                uint32_t i = x->order[a].idx, g0 = x->grp[i];
                x->gsum[g0] = (a == g0 ? 0.0f : x->gsum[g0]) + x->beta[i];
            }
            for (uint32_t a = 0; a < k; a++)
                if (x->grp[x->order[a].idx] == a) bb += (double)x->gsum[a] * x->gsum[a];
            double gg = cblas_sdot((int)d, x->g, 1, x->g, 1);
            double norm = sqrt(gg * phi2 + gg + bb);
            if (!(norm > 0) || !isfinite(norm)) break; /* nothing to move along */
            float sc = (float)(sign * eta / norm);
            cblas_sger(CblasRowMajor, (int)d, (int)f, sc, x->g, 1, phi, 1, x->dW, (int)f);
            cblas_saxpy((int)d, sc, x->g, 1, x->dw, 1);
            for (uint32_t i = 0; i < k; i++)
                x->db[i] += sc * x->gsum[x->grp[i]];
            /* s = s₀ + E (ΔW φ + Δw) + Δb */
            memcpy(x->du, x->dw, d * sizeof *x->du);
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)f, 1.0f, x->dW, (int)f, phi, 1,
                        1.0f, x->du, 1);
            for (uint32_t i = 0; i < k; i++)
                x->s[i] = x->s0[i] + x->db[i];
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)k, (int)d, 1.0f, E, (int)d, x->du, 1,
                        1.0f, x->s, 1);
            rn_last_top(x, x->s, k, l, x->list);
            double r = rn_last_eval(x, evaluator, phi, E, ids, x->list, l, 1);
            if (r > st->best_reward) {
                st->best_reward = r;
                st->best = (int32_t)tried;
                memcpy(x->best, x->s, k * sizeof *x->best);
                memcpy(x->blist, x->list, l * sizeof *x->blist);
            }
            tried++;
        }
    }
    st->tried = tried;
    if (st->best >= 0) {
        memcpy(scores, x->best, k * sizeof *scores);
        st->changed = memcmp(x->blist, x->l0, l * sizeof *x->l0) != 0;
    }
    return 0;
}
