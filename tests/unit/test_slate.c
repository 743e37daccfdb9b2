/*
 * test_slate.c — rn_slate_pick (rn_model.h), the slate and propensity logic
 * the inference operator logs for off-policy learning and evaluation.
 *
 * For every mode: a slate is L distinct candidates and every propensity is in
 * (0, 1]. `none`: the top L by score, ties to the earlier candidate. `epsilon`:
 * the recorded per-slot propensity equals the empirical frequency with which
 * that item lands in that slot, checked item by item (within 5 standard
 * errors) and by a χ² goodness-of-fit test of the item shown in each slot
 * (the slot's greedy item vs each explored one) against the recorded
 * propensities at p = 0.001; the same statistic must reject a deliberately
 * wrong propensity vector, so the test can fail. `softmax` (Plackett–Luce),
 * K = 5, L = 2: the recorded slate propensity against the empirical frequency
 * of each of the 20 ordered slates (χ², 19 degrees of freedom), a wrong
 * temperature rejected; prop[0] sums to 1 over items and each slot's
 * marginals sum to 1 over candidates.
 *
 * Every draw comes from a fixed seed, so the outcome is the same on every run.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_model.h"
#include "rn_rand.h"
#include "rn_test.h"

#define KMAX 16

/* Upper 0.1 % points of χ² by degrees of freedom (df 1..20). */
static const double chi2_999[21] = {0,      10.828, 13.816, 16.266, 18.467, 20.515, 22.458,
                                    24.322, 26.124, 27.877, 29.588, 31.264, 32.909, 34.528,
                                    36.123, 37.697, 39.252, 40.790, 42.312, 43.820, 45.315};

static double uni(void *r)
{
    return rn_rand_uniform(r);
}

/* Σ (observed − N p)² / (N p) over categories with p > 0; *df gets their
 * number minus one. */
static double chi2(const uint64_t *obs, const double *p, int n, uint64_t total, int *df)
{
    double x = 0;
    int cats = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] <= 0) continue;
        double e = (double)total * p[i];
        x += ((double)obs[i] - e) * ((double)obs[i] - e) / e;
        cats++;
    }
    *df = cats - 1;
    return x;
}

/* Checks the properties every slate has: L distinct candidates below K,
 * propensities in (0, 1], a slate propensity in (0, 1]. */
static int slate_ok(const uint32_t *slate, const double *prop, double slate_prop, uint32_t k,
                    uint32_t l)
{
    for (uint32_t j = 0; j < l; j++) {
        if (slate[j] >= k) return 0;
        if (!(prop[j] > 0 && prop[j] <= 1)) return 0;
        for (uint32_t i = 0; i < j; i++)
            if (slate[i] == slate[j]) return 0;
    }
    return slate_prop > 0 && slate_prop <= 1;
}

/* ---- none ------------------------------------------------------------------------- */

static void test_none(void)
{
    const float scores[] = {1, 3, 3, 2, 3, 0, 2};
    uint32_t slate[KMAX];
    double prop[KMAX], sp, scratch[2 * KMAX];
    struct rn_explore_cfg x = {RN_EXPLORE_NONE, 0, 0};
    struct rn_rand r;
    rn_rand_seed(&r, 1, 0);
    CHECK_EQ_INT(rn_slate_pick(scores, 7, 4, &x, uni, &r, slate, prop, &sp, scratch), 4);
    /* the three 3s in candidate order, then the earlier of the two 2s */
    CHECK_EQ_INT(slate[0], 1);
    CHECK_EQ_INT(slate[1], 2);
    CHECK_EQ_INT(slate[2], 4);
    CHECK_EQ_INT(slate[3], 3);
    for (int j = 0; j < 4; j++)
        CHECK(prop[j] == 1.0);
    CHECK(sp == 1.0);
    /* the whole list: a full sort, stable on ties */
    CHECK_EQ_INT(rn_slate_pick(scores, 7, 7, &x, uni, &r, slate, prop, &sp, scratch), 7);
    const uint32_t want[7] = {1, 2, 4, 3, 6, 0, 5};
    int same = 1;
    for (int j = 0; j < 7; j++)
        same &= slate[j] == want[j];
    CHECK(same);
    /* L > K is refused */
    CHECK(rn_slate_pick(scores, 3, 4, &x, uni, &r, slate, prop, &sp, scratch) < 0);
    /* random scores: top L by score, whatever the draws */
    int ok = 1;
    for (int t = 0; t < 200; t++) {
        float s[KMAX];
        double sc[2 * KMAX];
        uint32_t k = 1 + (uint32_t)rn_rand_below(&r, KMAX), l = 1 + (uint32_t)rn_rand_below(&r, k);
        for (uint32_t i = 0; i < k; i++)
            s[i] = (float)rn_rand_below(&r, 4); /* many ties */
        rn_slate_pick(s, k, l, &x, uni, &r, slate, prop, &sp, sc);
        ok &= slate_ok(slate, prop, sp, k, l);
        for (uint32_t j = 1; j < l; j++) /* non-increasing, ties by index */
            ok &= s[slate[j - 1]] > s[slate[j]] ||
                  (s[slate[j - 1]] == s[slate[j]] && slate[j - 1] < slate[j]);
        /* nothing left out scores above the last shown */
        for (uint32_t i = 0; i < k; i++) {
            int shown = 0;
            for (uint32_t j = 0; j < l; j++)
                shown |= slate[j] == i;
            if (!shown)
                ok &= s[i] < s[slate[l - 1]] || (s[i] == s[slate[l - 1]] && i > slate[l - 1]);
        }
    }
    CHECK(ok);
}

/* ---- epsilon ---------------------------------------------------------------------- */

/* Draws n slates of l from k candidates (candidate i scores k − i, so the top
 * l are 0..l−1 and slot j's greedy item is j) and checks, per slot: every
 * draw records the same propensity for the same item; the recorded
 * propensities sum to 1 over the items that can land there; each item's
 * frequency matches its propensity; the χ² test passes against the recorded
 * propensities and rejects `wrong` ones (the greedy item's propensity moved
 * by `shift`, spread over the explored ones). */
static void epsilon_case(uint32_t k, uint32_t l, double eps, uint64_t n, double shift)
{
    float scores[KMAX];
    for (uint32_t i = 0; i < k; i++)
        scores[i] = (float)(k - i);
    struct rn_explore_cfg x = {RN_EXPLORE_EPSILON, eps, 0};
    struct rn_rand r;
    rn_rand_seed(&r, 42, k * 100 + l);
    static uint64_t count[KMAX][KMAX];
    static double rec[KMAX][KMAX];
    memset(count, 0, sizeof count);
    for (uint32_t j = 0; j < KMAX; j++)
        for (uint32_t i = 0; i < KMAX; i++)
            rec[j][i] = -1;
    /* whole slates, numbered in base k, when there are few enough */
    int whole = pow(k, l) <= 1000;
    static uint64_t scount[1000];
    static double srec[1000];
    memset(scount, 0, sizeof scount);
    for (int i = 0; i < 1000; i++)
        srec[i] = -1;
    int ok = 1, consistent = 1;
    for (uint64_t t = 0; t < n; t++) {
        uint32_t slate[KMAX];
        double prop[KMAX], sp, scratch[2 * KMAX];
        if (rn_slate_pick(scores, k, l, &x, uni, &r, slate, prop, &sp, scratch) != (int)l) ok = 0;
        ok &= slate_ok(slate, prop, sp, k, l);
        for (uint32_t j = 0; j < l; j++) {
            uint32_t i = slate[j];
            count[j][i]++;
            if (rec[j][i] < 0)
                rec[j][i] = prop[j];
            else
                consistent &= rec[j][i] == prop[j];
        }
        if (whole) {
            uint32_t code = 0;
            for (uint32_t j = 0; j < l; j++)
                code = code * k + slate[j];
            scount[code]++;
            if (srec[code] < 0)
                srec[code] = sp;
            else
                consistent &= fabs(srec[code] - sp) < 1e-15;
        }
    }
    CHECK(ok);
    CHECK(consistent);
    if (whole) {
        /* the recorded slate propensity against each ordered slate's frequency */
        uint64_t obs[1000];
        double p[1000], total = 0;
        int m = 0;
        for (int c = 0; c < 1000; c++)
            if (srec[c] > 0) {
                obs[m] = scount[c];
                total += p[m++] = srec[c];
            }
        CHECK(fabs(total - 1) < 1e-9); /* every possible slate was seen */
        int df;
        double stat = chi2(obs, p, m, n, &df);
        if (df > 20) {
            /* Wilson–Hilferty: the 0.999 quantile of χ²(df) */
            double a = 2.0 / (9.0 * df), z = 3.0902;
            double crit = df * pow(1 - a + z * sqrt(a), 3);
            if (stat >= crit)
                fprintf(stderr, "K=%u L=%u: slates chi2 %.2f >= %.3f (df %d)\n", k, l, stat, crit,
                        df);
            CHECK(stat < crit);
        } else {
            if (stat >= chi2_999[df])
                fprintf(stderr, "K=%u L=%u: slates chi2 %.2f >= %.3f (df %d)\n", k, l, stat,
                        chi2_999[df], df);
            CHECK(df >= 1 && stat < chi2_999[df]);
        }
    }
    uint32_t pool = k - l;
    for (uint32_t j = 0; j < l; j++) {
        /* Only the slot's greedy item and the outside ones may land there. */
        uint64_t stray = 0;
        for (uint32_t i = 0; i < l; i++)
            if (i != j) stray += count[j][i];
        CHECK_EQ_INT(stray, 0);
        double p[KMAX] = {0}, sum = 0;
        int seen = 1;
        p[0] = rec[j][j];
        for (uint32_t q = 0; q < pool; q++) {
            p[1 + q] = rec[j][l + q];
            seen &= rec[j][l + q] >= 0;
        }
        CHECK(seen && rec[j][j] >= 0);
        for (uint32_t q = 0; q <= pool; q++)
            sum += p[q];
        if (fabs(sum - 1) > 1e-12)
            fprintf(stderr, "K=%u L=%u slot %u: recorded propensities sum to %.15g\n", k, l, j,
                    sum);
        CHECK(fabs(sum - 1) < 1e-12);
        uint64_t obs[KMAX];
        obs[0] = count[j][j];
        for (uint32_t q = 0; q < pool; q++)
            obs[1 + q] = count[j][l + q];
        /* item by item, within 5 standard errors */
        int close = 1;
        for (uint32_t q = 0; q <= pool; q++) {
            double f = (double)obs[q] / (double)n, se = sqrt(p[q] * (1 - p[q]) / (double)n);
            if (fabs(f - p[q]) > 5 * se + 1e-12) {
                close = 0;
                fprintf(stderr, "K=%u L=%u slot %u item %u: frequency %.5f, propensity %.5f\n", k,
                        l, j, q ? l + q - 1 : j, f, p[q]);
            }
        }
        CHECK(close);
        int df;
        double stat = chi2(obs, p, (int)pool + 1, n, &df);
        CHECK(df >= 1 && df <= 20);
        if (df < 1 || df > 20) continue;
        if (stat >= chi2_999[df])
            fprintf(stderr, "K=%u L=%u slot %u: chi2 %.2f >= %.3f (df %d)\n", k, l, j, stat,
                    chi2_999[df], df);
        CHECK(stat < chi2_999[df]);
        /* a wrong vector: the greedy item off by `shift` */
        double w[KMAX];
        w[0] = p[0] + shift;
        for (uint32_t q = 0; q < pool; q++)
            w[1 + q] = p[1 + q] - shift / pool;
        double bad = chi2(obs, w, (int)pool + 1, n, &df);
        CHECK(bad > chi2_999[df]);
    }
}

static void test_epsilon(void)
{
    /* K − L ≥ L: every slot can always explore */
    epsilon_case(10, 3, 0.3, 200000, 0.01);
    epsilon_case(8, 4, 0.1, 200000, 0.005);
    /* fewer outside candidates than slots: later slots find the pool spent */
    epsilon_case(5, 3, 0.5, 200000, 0.01);
    epsilon_case(4, 3, 0.4, 200000, 0.01);
    /* K = L: nothing to explore, propensity 1 */
    float s[3] = {1, 2, 3};
    uint32_t slate[3];
    double prop[3], sp, scratch[6];
    struct rn_explore_cfg x = {RN_EXPLORE_EPSILON, 0.5, 0};
    struct rn_rand r;
    rn_rand_seed(&r, 7, 0);
    CHECK_EQ_INT(rn_slate_pick(s, 3, 3, &x, uni, &r, slate, prop, &sp, scratch), 3);
    CHECK(prop[0] == 1 && prop[1] == 1 && prop[2] == 1 && sp == 1);
    CHECK(slate[0] == 2 && slate[1] == 1 && slate[2] == 0);
    /* ε = 1 with a deep pool: every slot explores, each outside item ε / (K − L) */
    float s2[6] = {6, 5, 4, 3, 2, 1};
    double prop2[2], sc2[12];
    uint32_t sl2[2];
    x.epsilon = 1.0;
    CHECK_EQ_INT(rn_slate_pick(s2, 6, 2, &x, uni, &r, sl2, prop2, &sp, sc2), 2);
    CHECK(sl2[0] >= 2 && sl2[1] >= 2 && sl2[0] != sl2[1]);
    CHECK(fabs(prop2[0] - 0.25) < 1e-15 && fabs(prop2[1] - 0.25) < 1e-15);
    CHECK(fabs(sp - 1.0 / 12) < 1e-15); /* 1/4 · 1/3 */
}

/* ---- softmax (Plackett–Luce) ------------------------------------------------------- */

static void test_softmax(void)
{
    enum { K = 5, L = 2, N = 200000 };
    const float scores[K] = {0.5f, 1.0f, -0.3f, 0.2f, 0.8f};
    const double temp = 0.7;
    struct rn_explore_cfg x = {RN_EXPLORE_SOFTMAX, 0, temp};
    struct rn_rand r;
    rn_rand_seed(&r, 99, 0);
    uint64_t count[K][K] = {{0}};
    double rec[K][K], rec0[K];
    for (int a = 0; a < K; a++) {
        rec0[a] = -1;
        for (int b = 0; b < K; b++)
            rec[a][b] = -1;
    }
    int ok = 1, consistent = 1, product = 1;
    for (int t = 0; t < N; t++) {
        uint32_t slate[L];
        double prop[L], sp, scratch[2 * K];
        if (rn_slate_pick(scores, K, L, &x, uni, &r, slate, prop, &sp, scratch) != L) ok = 0;
        ok &= slate_ok(slate, prop, sp, K, L);
        product &= fabs(sp - prop[0] * prop[1]) < 1e-15;
        count[slate[0]][slate[1]]++;
        if (rec[slate[0]][slate[1]] < 0)
            rec[slate[0]][slate[1]] = sp;
        else
            consistent &= rec[slate[0]][slate[1]] == sp;
        if (rec0[slate[0]] < 0)
            rec0[slate[0]] = prop[0];
        else
            consistent &= rec0[slate[0]] == prop[0];
    }
    CHECK(ok);
    CHECK(consistent);
    CHECK(product);
    /* the recorded slate propensities are Plackett–Luce's */
    double w[K], W = 0;
    for (int i = 0; i < K; i++)
        W += w[i] = exp(scores[i] / temp);
    int exact = 1, all_seen = 1;
    for (int a = 0; a < K; a++)
        for (int b = 0; b < K; b++) {
            if (a == b) {
                CHECK_EQ_INT(count[a][b], 0);
                continue;
            }
            all_seen &= rec[a][b] > 0;
            double pl = w[a] / W * w[b] / (W - w[a]);
            exact &= fabs(rec[a][b] - pl) < 1e-6 * pl;
        }
    CHECK(all_seen);
    CHECK(exact);
    /* χ² over the 20 ordered slates against the recorded propensities */
    uint64_t obs[K * K];
    double p[K * K], wrong[K * K];
    double w1[K], W1 = 0; /* Plackett–Luce at the wrong temperature, 1 */
    for (int i = 0; i < K; i++)
        W1 += w1[i] = exp(scores[i]);
    for (int a = 0; a < K; a++)
        for (int b = 0; b < K; b++) {
            obs[a * K + b] = count[a][b];
            p[a * K + b] = a == b ? 0 : rec[a][b];
            wrong[a * K + b] = a == b ? 0 : w1[a] / W1 * w1[b] / (W1 - w1[a]);
        }
    int df;
    double stat = chi2(obs, p, K * K, N, &df);
    CHECK_EQ_INT(df, 19);
    if (stat >= chi2_999[19]) fprintf(stderr, "softmax: chi2 %.2f >= %.3f\n", stat, chi2_999[19]);
    CHECK(stat < chi2_999[19]);
    double bad = chi2(obs, wrong, K * K, N, &df);
    CHECK(bad > chi2_999[19]);
    /* prop[0] is the first slot's marginal: it sums to 1 over the items */
    double s0 = 0;
    for (int a = 0; a < K; a++)
        s0 += rec0[a];
    CHECK(fabs(s0 - 1) < 1e-12);
    /* each slot's marginals (sums of slate propensities) sum to 1 over
     * candidates, and match the empirical frequencies */
    for (int j = 0; j < L; j++) {
        double total = 0;
        int close = 1;
        for (int i = 0; i < K; i++) {
            double m = 0;
            uint64_t c = 0;
            for (int o = 0; o < K; o++) {
                if (o == i) continue;
                m += j == 0 ? rec[i][o] : rec[o][i];
                c += j == 0 ? count[i][o] : count[o][i];
            }
            total += m;
            double f = (double)c / N, se = sqrt(m * (1 - m) / N);
            close &= fabs(f - m) < 5 * se;
            if (j == 0) close &= fabs(m - rec0[i]) < 1e-12;
        }
        CHECK(fabs(total - 1) < 1e-12);
        CHECK(close);
    }
    /* huge scores do not overflow; T scales them */
    const float big[3] = {1000, 999, -1000};
    uint32_t slate[3];
    double prop[3], sp, scratch[6];
    CHECK_EQ_INT(rn_slate_pick(big, 3, 3, &x, uni, &r, slate, prop, &sp, scratch), 3);
    CHECK(slate_ok(slate, prop, sp, 3, 3));
    CHECK(prop[2] == 1.0); /* the last one left */
}

int main(void)
{
    test_none();
    test_epsilon();
    test_softmax();
    return rn_test_summary();
}
