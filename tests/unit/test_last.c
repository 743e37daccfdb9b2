/*
 * test_last.c — LAST's per-request search (rn_last_search) on hand-made
 * models:
 *
 *   best      the list served is the evaluator-best of L₀ and every θ + Δθ
 *             candidate, where the candidates are rebuilt here independently:
 *             a copy of θ moved by ±η ∇/‖∇‖, ∇ the gradient of
 *             log P_PL(L₀ | θ) by central finite differences, its lists by
 *             rn_model_advantages on the copy; the scores served are that
 *             copy's; with 7 buckets (the candidates apart) and with 3 (pairs
 *             share a bucket, and so its Δb)
 *   budget    a budget of 0 serves L₀ untouched (no candidate tried); an ample
 *             one tries candidates × steps lists
 *   no leak   four threads search the same policy and evaluator thousands of
 *             times: both models' bytes are unchanged and every thread gets
 *             the same answer
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_last.h"
#include "rn_test.h"

#define D 3
#define F 4
#define H 7 /* buckets: the six ids apart; test_best also runs with 3, where pairs share */
#define P 3
#define K 6
#define L 2

static const float phi[F] = {1.0f, 0.5f, -0.5f, 1.0f};
static const float E[K * D] = {0.3f,  -0.2f, 0.5f, -0.4f, 0.1f, 0.3f,  0.2f,  0.6f, -0.1f,
                               -0.3f, -0.5f, 0.2f, 0.5f,  0.4f, -0.6f, -0.1f, 0.2f, 0.4f};
static const uint64_t ids[K] = {1, 2, 3, 4, 5, 6}; /* buckets id mod 7: all distinct */

/* θ ranks candidates 0 and 1 on top, 2 third; the evaluator values 2 most. */
static struct rn_model *make_policy(uint32_t h)
{
    struct rn_model_shape s = {.dim = D, .phi = F, .buckets = h, .positions = P};
    struct rn_model *m = rn_model_create(&s);
    static const float b[K] = {2.0f, 1.8f, 1.5f, 0.2f, 0.1f, 0.0f};
    for (size_t i = m->at.W; i < m->at.b; i++)
        m->params[i] = 0.05f * (float)((int)(i * 7 % 11) - 5);
    for (int i = 0; i < K; i++)
        m->params[m->at.b + ids[i] % h] = b[i];
    return m;
}

static struct rn_model *make_evaluator(uint32_t h)
{
    struct rn_model_shape s = {.dim = D, .phi = F, .buckets = h, .positions = P};
    struct rn_model *m = rn_model_create(&s);
    static const float b[K] = {1.0f, 0.5f, 3.0f, 0.0f, 0.2f, 0.0f}, c[P] = {1.0f, 0.7f, 0.5f};
    for (int i = 0; i < K; i++)
        m->params[m->at.b + ids[i] % h] = b[i];
    memcpy(m->params + m->at.c, c, sizeof c);
    m->params[m->at.v] = 0.25f;
    return m;
}

static void top(const float *s, uint32_t *out)
{
    int used[K] = {0};
    for (int j = 0; j < L; j++) {
        int best = -1;
        for (int i = 0; i < K; i++)
            if (!used[i] && (best < 0 || s[i] > s[best])) best = i;
        used[best] = 1;
        out[j] = (uint32_t)best;
    }
}

/* log P_PL(list | scores / T), in double. */
static double log_pl(const float *s, const uint32_t *list, double t)
{
    int used[K] = {0};
    double lp = 0;
    for (int j = 0; j < L; j++) {
        double z = 0;
        for (int i = 0; i < K; i++)
            if (!used[i]) z += exp(s[i] / t);
        lp += s[list[j]] / t - log(z);
        used[list[j]] = 1;
    }
    return lp;
}

static double list_reward(const struct rn_model *ev, const uint32_t *list)
{
    float El[L * D], u[D];
    uint64_t li[L];
    for (int j = 0; j < L; j++) {
        memcpy(El + j * D, E + list[j] * D, sizeof(float) * D);
        li[j] = ids[list[j]];
    }
    return rn_model_list_reward(ev, phi, El, li, L, u, 0);
}

/* With h buckets; h = 3 puts the six candidates in three shared buckets, whose
 * Δb the search must share as a copy of θ + Δθ would. */
static void test_best(uint32_t h)
{
    struct rn_model *m = make_policy(h), *ev = make_evaluator(h);
    struct rn_last_cfg cfg = {8, 1, 0.5, 1.0, (int64_t)60 * 1000000000};
    float s0[K], s[K];
    rn_model_advantages(m, phi, E, ids, K, s0);
    uint32_t l0[L];
    top(s0, l0);
    /* the reference: every candidate rebuilt on a copy of θ */
    double grad[64] = {0}, norm = 0;
    size_t lo = m->at.W, hi = m->at.c; /* W, w, b: what ranks */
    CHECK(hi - lo <= 64);
    struct rn_model *x = rn_model_clone(m);
    for (size_t i = lo; i < hi; i++) {
        float keep = x->params[i], h = 1e-3f, sp[K], sm[K];
        x->params[i] = keep + h;
        rn_model_advantages(x, phi, E, ids, K, sp);
        x->params[i] = keep - h;
        rn_model_advantages(x, phi, E, ids, K, sm);
        x->params[i] = keep;
        grad[i - lo] = (log_pl(sp, l0, 1.0) - log_pl(sm, l0, 1.0)) / (2.0 * h);
        norm += grad[i - lo] * grad[i - lo];
    }
    norm = sqrt(norm);
    CHECK(norm > 0);
    double want = list_reward(ev, l0);
    uint32_t want_list[L];
    float want_s[K]; /* the winner's scores under the copy of θ + Δθ */
    memcpy(want_list, l0, sizeof l0);
    memcpy(want_s, s0, sizeof s0);
    for (uint32_t j = 0; j < cfg.candidates; j++) {
        double sign = j % 2 ? -1 : 1, eta = cfg.step_size * ldexp(1.0, (int)(j / 2));
        for (size_t i = lo; i < hi; i++)
            x->params[i] = m->params[i] + (float)(sign * eta * grad[i - lo] / norm);
        float sj[K];
        uint32_t lj[L];
        rn_model_advantages(x, phi, E, ids, K, sj);
        top(sj, lj);
        double r = list_reward(ev, lj);
        if (r > want) {
            want = r;
            memcpy(want_list, lj, sizeof lj);
            memcpy(want_s, sj, sizeof sj);
        }
    }
    rn_model_destroy(x);
    if (h == H) CHECK(want > list_reward(ev, l0)); /* a case where LAST changes the list */
    struct rn_last_scratch *sc = rn_last_scratch_create();
    struct rn_last_stats st;
    memcpy(s, s0, sizeof s);
    CHECK_EQ_INT(rn_last_search(m, ev, phi, E, ids, K, L, &cfg, sc, s, &st), 0);
    CHECK_EQ_INT((int)st.tried, 8);
    CHECK_EQ_INT(st.changed, want > st.base_reward);
    CHECK_EQ_INT(st.out_of_time, 0);
    CHECK(fabs(st.base_reward - list_reward(ev, l0)) < 1e-5);
    CHECK(fabs(st.best_reward - want) < 1e-4);
    uint32_t got[L];
    top(s, got);
    double worst = 0; /* the scores served are those of θ + Δθ, not just the same top L */
    for (int i = 0; i < K; i++)
        worst = fmax(worst, fabs(s[i] - want_s[i]));
    CHECK(worst < 2e-3);
    CHECK_EQ_INT((int)got[0], (int)want_list[0]);
    CHECK_EQ_INT((int)got[1], (int)want_list[1]);
    CHECK(fabs(list_reward(ev, got) - st.best_reward) < 1e-5);
    fprintf(stderr, "best: L0 = [%u %u] R = %.3f -> [%u %u] R = %.3f (candidate %d)\n", l0[0],
            l0[1], st.base_reward, got[0], got[1], st.best_reward, st.best);
    /* shapes that do not fit are refused, the scores untouched */
    struct rn_model_shape bad = {.dim = D, .phi = F + 1, .buckets = h, .positions = P};
    struct rn_model *evb = rn_model_create(&bad);
    memcpy(s, s0, sizeof s);
    CHECK_EQ_INT(rn_last_search(m, evb, phi, E, ids, K, L, &cfg, sc, s, &st), RN_EINVAL);
    CHECK(memcmp(s, s0, sizeof s) == 0);
    CHECK_EQ_INT(rn_last_search(m, ev, phi, E, ids, K, K + 1, &cfg, sc, s, &st), RN_EINVAL);
    rn_model_destroy(evb);
    rn_last_scratch_destroy(sc);
    rn_model_destroy(m);
    rn_model_destroy(ev);
}

static void test_budget(void)
{
    struct rn_model *m = make_policy(H), *ev = make_evaluator(H);
    struct rn_last_scratch *sc = rn_last_scratch_create();
    float s0[K], s[K];
    rn_model_advantages(m, phi, E, ids, K, s0);
    struct rn_last_stats st;
    struct rn_last_cfg none = {8, 3, 0.5, 1.0, 0};
    memcpy(s, s0, sizeof s);
    CHECK_EQ_INT(rn_last_search(m, ev, phi, E, ids, K, L, &none, sc, s, &st), 0);
    CHECK_EQ_INT((int)st.tried, 0);
    CHECK_EQ_INT(st.out_of_time, 1);
    CHECK_EQ_INT(st.best, -1);
    CHECK_EQ_INT(st.changed, 0);
    CHECK(memcmp(s, s0, sizeof s) == 0);
    struct rn_last_cfg ample = {8, 3, 0.5, 1.0, (int64_t)60 * 1000000000};
    memcpy(s, s0, sizeof s);
    CHECK_EQ_INT(rn_last_search(m, ev, phi, E, ids, K, L, &ample, sc, s, &st), 0);
    CHECK_EQ_INT((int)st.tried, 24);
    CHECK_EQ_INT(st.out_of_time, 0);
    rn_last_scratch_destroy(sc);
    rn_model_destroy(m);
    rn_model_destroy(ev);
}

/* ---- no leak: threads share the models ----------------------------------------------- */

#define THREADS 4
#define ROUNDS 3000

static const struct rn_model *shared_m, *shared_ev;

struct worker {
    uint32_t list[L];
    double best;
    int same; /* every round gave the first round's answer */
};

static void *search_loop(void *arg)
{
    struct worker *w = arg;
    struct rn_last_scratch *sc = rn_last_scratch_create();
    struct rn_last_cfg cfg = {8, 2, 0.5, 1.0, (int64_t)60 * 1000000000};
    w->same = 1;
    for (int r = 0; r < ROUNDS; r++) {
        float s[K];
        rn_model_advantages(shared_m, phi, E, ids, K, s);
        struct rn_last_stats st;
        if (rn_last_search(shared_m, shared_ev, phi, E, ids, K, L, &cfg, sc, s, &st)) w->same = 0;
        uint32_t got[L];
        top(s, got);
        if (!r) {
            memcpy(w->list, got, sizeof got);
            w->best = st.best_reward;
        } else if (memcmp(got, w->list, sizeof got) || st.best_reward != w->best) {
            w->same = 0;
        }
    }
    rn_last_scratch_destroy(sc);
    return NULL;
}

static void test_no_leak(void)
{
    struct rn_model *m = make_policy(H), *ev = make_evaluator(H);
    size_t nm = m->at.n * sizeof(float), ne = ev->at.n * sizeof(float);
    float *m0 = malloc(nm), *e0 = malloc(ne);
    memcpy(m0, m->params, nm);
    memcpy(e0, ev->params, ne);
    shared_m = m;
    shared_ev = ev;
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, search_loop, &w[t]);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    CHECK(memcmp(m->params, m0, nm) == 0);
    CHECK(memcmp(ev->params, e0, ne) == 0);
    for (int t = 0; t < THREADS; t++) {
        CHECK_EQ_INT(w[t].same, 1);
        CHECK(memcmp(w[t].list, w[0].list, sizeof w[0].list) == 0);
    }
    free(m0);
    free(e0);
    rn_model_destroy(m);
    rn_model_destroy(ev);
}

int main(void)
{
    test_best(H);
    test_best(3);
    test_budget();
    test_no_leak();
    return rn_test_summary();
}
