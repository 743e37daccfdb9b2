/*
 * test_ope.c — the off-policy estimators of `runnel evaluate` (rn_evaluate.c)
 * on synthetic logged data whose target value is known analytically.
 *
 * A 5-armed bandit: the logging policy pi_0 = (.40, .30, .15, .10, .05), click
 * rates p = (.1, .2, .3, .5, .7). Target policies:
 *   stochastic  pi_e = (.1, .1, .2, .3, .3): V = sum pi_e p = 0.45
 *   greedy      always arm 4:               V = 0.7
 * For 20 seeds, 4,000 logged actions each: the 95% intervals of IPS and SNIPS
 * cover V in at least 17 of 20 (the expected count is 19; seeded, so the
 * outcome is fixed); DR with the perfect reward model q^ = p varies less
 * than IPS (across seeds, and in interval width for every seed). Then
 * through samples files: the logging policy's IPS equals the on-policy mean
 * with unit weights, the random policy's interval covers the mean click rate,
 * a directory of parts reads like one file, bad lines are named by file:line,
 * and the same seed gives the same intervals.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_evaluate_int.h"
#include "rn_model.h"
#include "rn_rand.h"
#include "rn_test.h"

#define K 5
#define N 4000
#define SEEDS 20
#define BOOT 500

static const double pi0[K] = {0.40, 0.30, 0.15, 0.10, 0.05};
static const double pclick[K] = {0.1, 0.2, 0.3, 0.5, 0.7};
static const double pie[K] = {0.1, 0.1, 0.2, 0.3, 0.3};

static int draw(struct rn_rand *r, const double *dist)
{
    double u = rn_rand_uniform(r), c = 0;
    for (int a = 0; a < K; a++) {
        c += dist[a];
        if (u < c) return a;
    }
    return K - 1;
}

/* Logged data for one seed, as seen by the target `pe` (NULL: greedy arm 4). */
static void make_obs(uint64_t seed, const double *pe, struct rn_ope_obs *o)
{
    struct rn_rand r;
    rn_rand_seed(&r, seed, 7);
    double qpi = 0;
    for (int a = 0; a < K; a++)
        qpi += (pe ? pe[a] : a == K - 1) * pclick[a];
    for (int i = 0; i < N; i++) {
        int a = draw(&r, pi0);
        o[i].r = rn_rand_uniform(&r) < pclick[a];
        o[i].w = (pe ? pe[a] : a == K - 1) / pi0[a];
        o[i].q_a = pclick[a]; /* the perfect reward model */
        o[i].q_pi = qpi;
    }
}

static void test_coverage(const double *pe, double truth)
{
    static struct rn_ope_obs o[N];
    int cov_ips = 0, cov_snips = 0, narrower = 0;
    double s_ips = 0, s2_ips = 0, s_dr = 0, s2_dr = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        struct rn_ope_result res;
        make_obs(seed, pe, o);
        CHECK_EQ_INT(rn_ope_estimate(o, N, NULL, 0, BOOT, seed, &res), 0);
        cov_ips += res.ips.lo <= truth && truth <= res.ips.hi;
        cov_snips += res.snips.lo <= truth && truth <= res.snips.hi;
        narrower += res.dr.hi - res.dr.lo < res.ips.hi - res.ips.lo;
        s_ips += res.ips.est;
        s2_ips += res.ips.est * res.ips.est;
        s_dr += res.dr.est;
        s2_dr += res.dr.est * res.dr.est;
        CHECK(res.ips.lo <= res.ips.est && res.ips.est <= res.ips.hi);
    }
    double var_ips = s2_ips / SEEDS - pow(s_ips / SEEDS, 2);
    double var_dr = s2_dr / SEEDS - pow(s_dr / SEEDS, 2);
    printf("truth %.3f: IPS covers %d/%d, SNIPS %d/%d; var IPS %.2e, DR %.2e; DR narrower %d/%d\n",
           truth, cov_ips, SEEDS, cov_snips, SEEDS, var_ips, var_dr, narrower, SEEDS);
    CHECK(cov_ips >= 17);
    CHECK(cov_snips >= 17);
    CHECK(var_dr < var_ips);
    CHECK_EQ_INT(narrower, SEEDS);
    CHECK(fabs(s_ips / SEEDS - truth) < 0.02);
}

/* Unit weights: IPS == SNIPS == DR == the on-policy mean, ESS == n. */
static void test_unit_weights(void)
{
    static struct rn_ope_obs o[N];
    make_obs(3, pi0, o); /* pi_e = pi_0 */
    double mean = 0;
    for (int i = 0; i < N; i++) {
        CHECK(fabs(o[i].w - 1) < 1e-12);
        o[i].w = 1;
        o[i].q_pi = o[i].q_a; /* what the logging policy uses */
        mean += o[i].r;
    }
    mean /= N;
    struct rn_ope_result res;
    CHECK_EQ_INT(rn_ope_estimate(o, N, NULL, 0, BOOT, 1, &res), 0);
    CHECK(fabs(res.ips.est - mean) < 1e-12);
    CHECK(fabs(res.snips.est - mean) < 1e-12);
    CHECK(fabs(res.dr.est - mean) < 1e-12);
    CHECK(fabs(res.ess - N) < 1e-6);
    CHECK_EQ_INT(rn_ope_estimate(o, 0, NULL, 0, BOOT, 1, &res), RN_EINVAL);
}

static char tmpdir[] = "/tmp/test_ope.XXXXXX";

/* Writes n single-item lists with 4 items, logging pi_0 = (.5, .25, .15,
 * .1), click rates (.2, .4, .6, .8): random's value is their mean, 0.5.
 * Lines are written newest first to check the sort by time. */
static double write_samples(const char *path, int n, uint64_t seed)
{
    static const double lp[4] = {0.5, 0.25, 0.15, 0.1}, cr[4] = {0.2, 0.4, 0.6, 0.8};
    FILE *f = fopen(path, "w");
    struct rn_rand r;
    rn_rand_seed(&r, seed, 3);
    double sum = 0;
    for (int i = n - 1; i >= 0; i--) {
        double u = rn_rand_uniform(&r), c = 0;
        int a = 3;
        for (int k = 0; k < 4; k++)
            if (u < (c += lp[k])) {
                a = k;
                break;
            }
        int click = rn_rand_uniform(&r) < cr[a];
        sum += click;
        fprintf(f,
                "{\"user\":\"u%d\",\"request\":\"r%06d\",\"ts\":%d,\"window_end\":%d,\"reward\":%d,"
                "\"items\":[{\"item\":\"i%d\",\"position\":1,\"propensity\":%g,\"click\":%d,"
                "\"pay\":0,\"reward\":%d}]}\n",
                i % 7, i, 1000 + i, 61000 + i, click, a, lp[a], click, click);
    }
    fclose(f);
    return sum / n;
}

static void test_files(void)
{
    char path[256], err[512];
    CHECK(mkdtemp(tmpdir) != NULL);
    snprintf(path, sizeof path, "%s/samples.jsonl", tmpdir);
    double mean = write_samples(path, 3000, 11);
    struct rn_ope_data *d = rn_ope_load(path, err, sizeof err);
    CHECK(d != NULL);
    if (!d) return;
    CHECK_EQ_INT(rn_ope_data_lists(d), 3000);
    CHECK_EQ_INT(rn_ope_data_slots(d), 3000);
    struct rn_ope_opts o = {.bootstrap = 1000, .seed = 1, .history = 10, .half_life_ms = 1e6};
    struct rn_ope_result lg, rnd, rnd2, tail;
    char *desc = NULL;
    CHECK_EQ_INT(rn_ope_evaluate(d, "logging", &o, &lg, &desc, err, sizeof err), 0);
    CHECK(desc && strcmp(desc, "logging") == 0);
    free(desc);
    CHECK(fabs(lg.ips.est - mean) < 1e-12);
    CHECK(fabs(lg.mean_r - mean) < 1e-12);
    CHECK(fabs(lg.dr.est - mean) < 1e-12);
    CHECK(lg.ips.lo <= mean && mean <= lg.ips.hi);
    CHECK_EQ_INT(lg.matched, 3000);
    CHECK_EQ_INT(rn_ope_evaluate(d, "random", &o, &rnd, NULL, err, sizeof err), 0);
    printf("random: IPS %.4f [%.4f, %.4f] SNIPS %.4f DR %.4f [%.4f, %.4f] (truth 0.5)\n",
           rnd.ips.est, rnd.ips.lo, rnd.ips.hi, rnd.snips.est, rnd.dr.est, rnd.dr.lo, rnd.dr.hi);
    CHECK(rnd.ips.lo <= 0.5 && 0.5 <= rnd.ips.hi);
    CHECK(rnd.snips.lo <= 0.5 && 0.5 <= rnd.snips.hi);
    CHECK(rnd.dr.lo <= 0.5 && 0.5 <= rnd.dr.hi);
    CHECK(fabs(rnd.max_w - 0.25 / 0.1) < 1e-9);
    /* The same seed, the same figures. */
    CHECK_EQ_INT(rn_ope_evaluate(d, "random", &o, &rnd2, NULL, err, sizeof err), 0);
    CHECK(memcmp(&rnd, &rnd2, sizeof rnd) == 0);
    /* Only the last 20% evaluated. */
    o.train_fraction = 0.8;
    CHECK_EQ_INT(rn_ope_evaluate(d, "random", &o, &tail, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(tail.n, 600);
    CHECK_EQ_INT(rn_ope_evaluate(d, "popularity", &o, &tail, NULL, err, sizeof err), 0);
    CHECK(rn_ope_evaluate(d, "nonsense", &o, &tail, NULL, err, sizeof err) == RN_EINVAL);
    CHECK_STR_CONTAINS(err, "unknown policy 'nonsense'");
    CHECK(rn_ope_evaluate(d, "model:/nonexistent", &o, &tail, NULL, err, sizeof err) < 0);
    rn_ope_data_free(d);

    /* A directory of parts (as partitioned_file writes) reads as one file. */
    char sub[300], p1[400], p2[400];
    snprintf(sub, sizeof sub, "%s/parts/2023-11-14", tmpdir);
    snprintf(p1, sizeof p1, "%s/parts", tmpdir);
    mkdir(p1, 0755);
    mkdir(sub, 0755);
    snprintf(p1, sizeof p1, "%s/part-0-0.jsonl", sub);
    snprintf(p2, sizeof p2, "%s/.part-1-0.inprogress", sub);
    write_samples(p1, 500, 5);
    write_samples(p2, 50, 6); /* hidden: skipped */
    snprintf(p1, sizeof p1, "%s/parts", tmpdir);
    d = rn_ope_load(p1, err, sizeof err);
    CHECK(d && rn_ope_data_lists(d) == 500);
    rn_ope_data_free(d);

    /* Bad input names the file and line. */
    snprintf(path, sizeof path, "%s/bad.jsonl", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("{\"user\":\"u\",\"request\":\"r\",\"ts\":1,\"items\":[{\"item\":\"a\",\"position\":1,"
          "\"propensity\":0.5,\"reward\":0}]}\n\n"
          "{\"user\":\"u\",\"request\":\"s\",\"ts\":2,\"items\":[{\"item\":\"a\",\"position\":1,"
          "\"reward\":0}]}\n",
          f);
    fclose(f);
    CHECK(rn_ope_load(path, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "bad.jsonl:3: item 0 has no logging propensity");
    f = fopen(path, "w");
    fputs("{\"user\":\"u\",\"request\":\"r\",\"ts\":1,\"items\":[{\"item\":\"a\",\"position\":1,"
          "\"propensity\":1.5,\"reward\":0}]}\n",
          f);
    fclose(f);
    CHECK(rn_ope_load(path, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "bad.jsonl:1: item 0: propensity 1.5 is not in (0, 1]");
    f = fopen(path, "w");
    fputs("{\"type\":\"click\"}\n", f);
    fclose(f);
    CHECK(rn_ope_load(path, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "bad.jsonl:1: not a labelled list");
}

/* model:DIR: a model whose advantage is the first embedding coordinate
 * (w = (1, 0), all else zero) with item iK embedded at (K, 0) prefers i3,
 * whose click rate is 0.8: greedy's value. */
static void test_model(void)
{
    char path[256], emb[256], store[256], spec[300], err[512];
    snprintf(path, sizeof path, "%s/samples.jsonl", tmpdir);
    snprintf(emb, sizeof emb, "%s/emb.txt", tmpdir);
    snprintf(store, sizeof store, "%s/store", tmpdir);
    FILE *f = fopen(emb, "w");
    fputs("# item v1 v2\ni0 0 0\ni1 1 0\ni2 2 0\ni3 3 0\n", f);
    fclose(f);
    mkdir(store, 0755);
    struct rn_model_shape sh = {
        .dim = 2, .phi = RN_PHI_SIMPLE_DIM(2), .buckets = 8, .positions = 2};
    struct rn_model *m = rn_model_create(&sh);
    CHECK(m != NULL);
    if (!m) return;
    m->params[m->at.w] = 1;
    struct rn_model_version v = {.id = 1};
    CHECK_EQ_INT(rn_store_publish(store, m, &v, err, sizeof err), 0);
    m->params[m->at.w] = -1; /* version 2 prefers i0 (click rate 0.2) */
    v.id = 2;
    CHECK_EQ_INT(rn_store_publish(store, m, &v, err, sizeof err), 0);
    rn_model_destroy(m);

    struct rn_ope_data *d = rn_ope_load(path, err, sizeof err);
    CHECK(d != NULL);
    if (!d) return;
    struct rn_ope_opts o = {
        .bootstrap = 1000, .seed = 1, .history = 10, .half_life_ms = 1e6, .embeddings = emb};
    struct rn_ope_result r;
    char *desc = NULL;
    snprintf(spec, sizeof spec, "model:%s@1", store);
    CHECK_EQ_INT(rn_ope_evaluate(d, spec, &o, &r, &desc, err, sizeof err), 0);
    printf("model v1 (greedy i3, truth 0.8): IPS %.4f [%.4f, %.4f] SNIPS %.4f matched %zu\n",
           r.ips.est, r.ips.lo, r.ips.hi, r.snips.est, r.matched);
    CHECK(r.ips.lo <= 0.8 && 0.8 <= r.ips.hi);
    CHECK(r.snips.lo <= 0.8 && 0.8 <= r.snips.hi);
    CHECK(fabs(r.max_w - 10) < 1e-9); /* 1 / pi_0(i3) */
    CHECK_STR_CONTAINS(desc, "(version 1)");
    free(desc);
    snprintf(spec, sizeof spec, "model:%s", store); /* the newest: version 2 */
    o.epsilon = 0.2;
    desc = NULL;
    CHECK_EQ_INT(rn_ope_evaluate(d, spec, &o, &r, &desc, err, sizeof err), 0);
    /* 0.8 * 0.2 + 0.2 * 0.5 = 0.26 */
    printf("model v2 eps 0.2 (truth 0.26): IPS %.4f [%.4f, %.4f]\n", r.ips.est, r.ips.lo, r.ips.hi);
    CHECK(r.ips.lo <= 0.26 && 0.26 <= r.ips.hi);
    CHECK_STR_CONTAINS(desc, "(version 2) eps=0.2");
    free(desc);
    o.embeddings = NULL;
    CHECK(rn_ope_evaluate(d, spec, &o, &r, NULL, err, sizeof err) == RN_EINVAL);
    CHECK_STR_CONTAINS(err, "needs --embeddings");
    o.embeddings = emb;
    snprintf(spec, sizeof spec, "model:%s@7", store);
    CHECK(rn_ope_evaluate(d, spec, &o, &r, NULL, err, sizeof err) < 0);
    rn_ope_data_free(d);
}

/* Multi-item lists: resampling units are lists, and list candidates. */
static void test_lists(void)
{
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/lists.jsonl", tmpdir);
    FILE *f = fopen(path, "w");
    /* Two shown items per list, each at position 1 or 2 with propensity 0.5;
     * random over the list's two items puts either at a position with 1/2. */
    for (int i = 0; i < 400; i++)
        fprintf(f,
                "{\"user\":\"u\",\"request\":\"r%d\",\"ts\":%d,\"items\":["
                "{\"item\":\"a%d\",\"position\":1,\"propensity\":0.5,\"reward\":%d},"
                "{\"item\":\"b%d\",\"position\":2,\"propensity\":0.5,\"reward\":0}]}\n",
                i, i, i % 3, i % 4 == 0, i % 5);
    fclose(f);
    struct rn_ope_data *d = rn_ope_load(path, err, sizeof err);
    CHECK(d != NULL);
    if (!d) return;
    struct rn_ope_opts o = {.bootstrap = 200, .seed = 1, .history = 10, .half_life_ms = 1e6};
    struct rn_ope_result r;
    CHECK_EQ_INT(rn_ope_evaluate(d, "random", &o, &r, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(r.n, 800);
    CHECK_EQ_INT(r.groups, 400);
    CHECK(fabs(r.ips.est - 100.0 / 800) < 1e-12); /* weights 0.5 / 0.5 */
    CHECK(fabs(r.max_w - 1) < 1e-12);
    rn_ope_data_free(d);
}

int main(void)
{
    test_coverage(pie, 0.45);
    test_coverage(NULL, 0.7);
    test_unit_weights();
    test_files();
    test_model();
    test_lists();
    char *help[] = {"evaluate", "--help", NULL}, *bad[] = {"evaluate", "--nope", NULL};
    CHECK_EQ_INT(rn_evaluate_main(2, help), 0);
    CHECK_EQ_INT(rn_evaluate_main(2, bad), 2);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
    return rn_test_summary();
}
