/*
 * test_offline.c — the offline RL of `runnel train-offline` (runtime/rn_offline.c):
 * the top-K off-policy REINFORCE weight and softmax on a case computed by hand,
 * each loss's gradient against central finite differences (every parameter),
 * the actor model kind written and read back through the model store and
 * scored like the dueling Q, and train -> publish -> load -> score for each
 * algorithm on a small logged data set (deterministic for a seed).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_model.h"
#include "rn_offline_int.h"
#include "rn_test.h"

#define D 3u
#define F 4u
#define Z 2u

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* A loss of the parameter array p; grad != NULL adds its gradient. */
typedef double (*loss_fn)(void *ctx, float *p, float *grad);

/* Checks grad against central differences on every parameter; returns the
 * number of mismatches (printed, at most five). */
static int check_fd(const char *what, loss_fn fn, void *ctx, float *p, size_t n)
{
    float *g = calloc(n, sizeof *g);
    fn(ctx, p, g);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = p[i], h = 1e-2f;
        p[i] = keep + h;
        double lp = fn(ctx, p, NULL);
        p[i] = keep - h;
        double lm = fn(ctx, p, NULL);
        p[i] = keep;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - g[i]) > 2e-3 + 2e-2 * fabs(fd)) {
            if (bad < 5)
                fprintf(stderr, "%s: param %zu: analytic %g, numeric %g\n", what, i, g[i], fd);
            bad++;
        }
    }
    free(g);
    return bad;
}

static struct rn_model *make_actor(uint32_t act, uint32_t perturb, uint32_t buckets)
{
    struct rn_model_shape sh = {.dim = D, .phi = F, .buckets = buckets, .positions = 0};
    sh.kind = RN_MODEL_ACTOR;
    sh.activation = act;
    sh.perturb = perturb;
    sh.scale = act == RN_ACTOR_TANH ? 0.7f : 1.0f;
    sh.pscale = perturb ? 0.2f : 0.0f;
    struct rn_model *m = rn_model_create(&sh);
    CHECK(m != NULL);
    for (size_t i = 0; i < m->at.n; i++)
        m->params[i] = 0.5f * frand();
    return m;
}

static void test_topk_weight(void)
{
    /* π = 0.2, β = 0.5, K = 3: (0.2 / 0.5) · 3 · 0.8² = 0.768 */
    CHECK(fabs(rn_off_topk_weight(0.2, 0.5, 3, 10) - 0.768) < 1e-12);
    /* capped at 0.3: 0.3 · 3 · 0.64 = 0.576 */
    CHECK(fabs(rn_off_topk_weight(0.2, 0.5, 3, 0.3) - 0.576) < 1e-12);
    /* K = 1 is the plain importance weight; cap 0 means none */
    CHECK(fabs(rn_off_topk_weight(0.2, 0.01, 1, 0) - 20.0) < 1e-12);
    /* K = 5, π = 0.5, β = 0.95: 0.5/0.95 · 5 · 0.5⁴ = 0.16447368... */
    CHECK(fabs(rn_off_topk_weight(0.5, 0.95, 5, 10) - 0.5 / 0.95 * 5 * 0.0625) < 1e-12);

    /* The softmax on a hand case: zero weights, item biases 0, ln 2, ln 3 in
     * their own buckets (ids 0, 1, 2 of 3 buckets): π = 1/6, 2/6, 3/6. */
    struct rn_model *m = make_actor(RN_ACTOR_LINEAR, 0, 3);
    memset(m->params, 0, m->at.n * sizeof *m->params);
    m->params[m->at.b + 1] = logf(2.0f);
    m->params[m->at.b + 2] = logf(3.0f);
    float E[3 * D] = {0}, phi[F] = {1, 2, 3, 4}, scratch[3 + D];
    uint32_t ids[3] = {0, 1, 2};
    double pi, w;
    /* item 1, β = 0.5, K = 2, R = 2: w = (1/3)/0.5 · 2 · (2/3) = 8/9,
     * loss = −(8/9) · 2 · ln(1/3) */
    double loss =
        rn_off_reinforce_loss(m, phi, E, ids, 3, 1, 2.0, 0.5, 2, 10, NULL, &pi, &w, scratch);
    CHECK(fabs(pi - 1.0 / 3.0) < 1e-6);
    CHECK(fabs(w - 8.0 / 9.0) < 1e-6);
    CHECK(fabs(loss - (-(8.0 / 9.0) * 2.0 * log(1.0 / 3.0))) < 1e-5);
    /* its gradient on the biases: c (π_i − [i = a]) with c = 16/9 */
    float g[64] = {0};
    CHECK(m->at.n <= 64);
    rn_off_reinforce_loss(m, phi, E, ids, 3, 1, 2.0, 0.5, 2, 10, g, &pi, &w, scratch);
    double c = 16.0 / 9.0;
    CHECK(fabs(g[m->at.b + 0] - c * (1.0 / 6.0)) < 1e-5);
    CHECK(fabs(g[m->at.b + 1] - c * (2.0 / 6.0 - 1.0)) < 1e-5);
    CHECK(fabs(g[m->at.b + 2] - c * (3.0 / 6.0)) < 1e-5);
    rn_model_destroy(m);
}

/* ---- finite differences ------------------------------------------------------------ */

struct rctx {
    struct rn_model *m;
    float phi[F], E[5 * D];
    uint32_t ids[5];
    double cap;
    uint32_t k;
};

static double reinforce_fn(void *vc, float *p, float *grad)
{
    struct rctx *c = vc;
    (void)p; /* p is c->m->params */
    float scratch[5 + D];
    double pi, w;
    return rn_off_reinforce_loss(c->m, c->phi, c->E, c->ids, 5, 2, 1.5, 0.3, c->k, c->cap, grad,
                                 &pi, &w, scratch);
}

struct cctx {
    float phi[F], a[D];
    double y;
};

static double critic_fn(void *vc, float *p, float *grad)
{
    struct cctx *c = vc;
    return rn_off_critic_loss(p, D, F, c->phi, c->a, c->y, grad);
}

struct actx {
    struct rn_model *m;
    float *critic;
    float phi[F], a0[D];
    int given;
};

static double actor_fn(void *vc, float *p, float *grad)
{
    struct actx *c = vc;
    (void)p;
    return rn_off_actor_loss(c->m, c->critic, c->phi, c->given ? c->a0 : NULL, grad);
}

struct vctx {
    float phi[F], a[D], eps[Z];
};

static double vae_fn(void *vc, float *p, float *grad)
{
    struct vctx *c = vc;
    return rn_off_vae_loss(p, D, F, Z, 0.8f, c->phi, c->a, c->eps, 0.5, grad);
}

static void test_gradients(void)
{
    /* REINFORCE: with the cap far below π/β the weight is the constant cap, so
     * the surrogate is exactly −cap·R·log π and finite differences see it. */
    struct rctx rc = {.m = make_actor(RN_ACTOR_LINEAR, 0, 7), .cap = 1e-3, .k = 1};
    for (uint32_t i = 0; i < F; i++)
        rc.phi[i] = frand();
    for (uint32_t i = 0; i < 5 * D; i++)
        rc.E[i] = frand();
    for (uint32_t i = 0; i < 5; i++)
        rc.ids[i] = (1000 + 3 * i) % 7;
    CHECK_EQ_INT(check_fd("reinforce", reinforce_fn, &rc, rc.m->params, rc.m->at.n), 0);
    /* Uncapped and K = 5: the weight is held constant, so the gradient is
     * that of the capped case times coef / (cap · R) — the same direction. */
    size_t n = rc.m->at.n;
    float *g1 = calloc(n, sizeof *g1), *g2 = calloc(n, sizeof *g2), scratch[5 + D];
    double pi, w1, w2;
    rn_off_reinforce_loss(rc.m, rc.phi, rc.E, rc.ids, 5, 2, 1.5, 0.3, 1, 1e-3, g1, &pi, &w1,
                          scratch);
    rn_off_reinforce_loss(rc.m, rc.phi, rc.E, rc.ids, 5, 2, 1.5, 0.3, 5, 0, g2, &pi, &w2, scratch);
    CHECK(fabs(w1 - 1e-3) < 1e-12);
    CHECK(fabs(w2 - pi / 0.3 * 5 * pow(1 - pi, 4)) < 1e-9);
    for (size_t i = 0; i < n; i++)
        CHECK(fabs(g2[i] - g1[i] * (w2 / w1)) < 1e-4 * (1 + fabs(g2[i])));
    free(g1);
    free(g2);
    rn_model_destroy(rc.m);

    /* the critic's TD loss */
    struct cctx cc = {.y = 0.7};
    for (uint32_t i = 0; i < F; i++)
        cc.phi[i] = frand();
    for (uint32_t i = 0; i < D; i++)
        cc.a[i] = frand();
    size_t nc = rn_off_critic_size(D, F);
    float *critic = calloc(nc, sizeof *critic);
    for (size_t i = 0; i < nc; i++)
        critic[i] = frand();
    CHECK_EQ_INT(check_fd("critic", critic_fn, &cc, critic, nc), 0);

    /* DDPG's actor (tanh), a linear actor, and BCQ's perturbation with and
     * without a given base action */
    const uint32_t acts[4] = {RN_ACTOR_TANH, RN_ACTOR_LINEAR, RN_ACTOR_TANH, RN_ACTOR_TANH};
    const uint32_t pert[4] = {0, 0, 1, 1};
    const int given[4] = {0, 0, 0, 1};
    for (int k = 0; k < 4; k++) {
        struct actx ac = {
            .m = make_actor(acts[k], pert[k], 1), .critic = critic, .given = given[k]};
        for (uint32_t i = 0; i < F; i++)
            ac.phi[i] = frand();
        for (uint32_t i = 0; i < D; i++)
            ac.a0[i] = frand();
        CHECK_EQ_INT(check_fd("actor", actor_fn, &ac, ac.m->params, ac.m->at.n), 0);
        /* the loss is −Q at the action the model serves (a0 not given) */
        if (!given[k]) {
            float a[D];
            rn_model_action(ac.m, ac.phi, a);
            CHECK(fabs(rn_off_actor_loss(ac.m, critic, ac.phi, NULL, NULL) +
                       rn_off_critic_q(critic, D, F, ac.phi, a)) < 1e-5);
        }
        rn_model_destroy(ac.m);
    }
    free(critic);

    /* BCQ's conditional VAE */
    struct vctx vc;
    for (uint32_t i = 0; i < F; i++)
        vc.phi[i] = frand();
    for (uint32_t i = 0; i < D; i++)
        vc.a[i] = 0.6f * frand();
    for (uint32_t i = 0; i < Z; i++)
        vc.eps[i] = frand();
    size_t nv = rn_off_vae_size(D, F, Z);
    float *vae = calloc(nv, sizeof *vae);
    for (size_t i = 0; i < nv; i++)
        vae[i] = 0.5f * frand();
    CHECK_EQ_INT(check_fd("vae", vae_fn, &vc, vae, nv), 0);
    free(vae);
}

/* ---- the actor in the model store --------------------------------------------------- */

static char dir[256];

static void test_store_round_trip(void)
{
    for (int k = 0; k < 2; k++) {
        struct rn_model *m =
            k ? make_actor(RN_ACTOR_TANH, 1, 5) : make_actor(RN_ACTOR_LINEAR, 0, 9);
        char store[400], err[512];
        snprintf(store, sizeof store, "%s/store%d", dir, k);
        struct rn_model_version v = {.id = 3, .created_ms = 1, .event_time = 2};
        CHECK_EQ_INT(rn_store_publish(store, m, &v, err, sizeof err), 0);
        char path[600];
        rn_store_path(store, 3, ".safetensors", path, sizeof path);
        struct rn_st_file *f = rn_st_read(path, err, sizeof err);
        CHECK(f != NULL);
        CHECK(strcmp(rn_st_meta(f, "format"), "runnel-actor/1") == 0);
        CHECK(strcmp(rn_st_meta(f, "activation"), k ? "tanh" : "linear") == 0);
        CHECK(rn_st_find(f, "actor.weight") != NULL);
        CHECK((rn_st_find(f, "perturb.weight") != NULL) == (k == 1));
        CHECK(rn_st_find(f, "v") == NULL);
        rn_st_free(f);
        struct rn_model *r = rn_store_load(store, 3, err, sizeof err);
        CHECK(r != NULL);
        CHECK(r->shape.kind == RN_MODEL_ACTOR && r->shape.perturb == m->shape.perturb);
        CHECK(r->at.n == m->at.n);
        CHECK(memcmp(r->params, m->params, m->at.n * sizeof *m->params) == 0);
        CHECK(rn_model_value(r, (const float[F]){1, 1, 1, 1}) == 0.0f);
        /* scores: e_iᵀ a(s) + b[id mod H], the same before and after */
        float phi[F], E[4 * D], s1[4], s2[4], a[D];
        uint64_t ids[4] = {11, 12, 13, 14};
        for (uint32_t i = 0; i < F; i++)
            phi[i] = frand();
        for (uint32_t i = 0; i < 4 * D; i++)
            E[i] = frand();
        rn_model_advantages(m, phi, E, ids, 4, s1);
        rn_model_advantages(r, phi, E, ids, 4, s2);
        rn_model_action(r, phi, a);
        for (int i = 0; i < 4; i++) {
            CHECK(s1[i] == s2[i]);
            double want = r->params[r->at.b + ids[i] % r->shape.buckets];
            for (uint32_t j = 0; j < D; j++)
                want += (double)E[i * D + j] * a[j];
            CHECK(fabs(want - s2[i]) < 1e-5);
        }
        /* the TD learner refuses an actor */
        struct rn_learn_cfg cfg = {RN_OPT_SGD, 0.1, 0, 0, 0.5, 10, 0.9, 0.999, 1e-8, 0, RN_OBJ_TD};
        CHECK(rn_learner_create(r, &cfg, err, sizeof err) == NULL);
        CHECK_STR_CONTAINS(err, "not an actor");
        rn_model_destroy(r);
        rn_model_destroy(m);
    }
    /* an unknown format is refused by name */
    char path[400], err[512];
    snprintf(path, sizeof path, "%s/odd.safetensors", dir);
    float x[2] = {1, 2};
    struct rn_tensor t = {"actor.weight", 2, {1, 2}, x};
    const char *k[] = {"format"}, *v[] = {"someone-else/9"};
    CHECK_EQ_INT(rn_st_write(path, &t, 1, k, v, 1, err, sizeof err), 0);
    CHECK(rn_model_read(path, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "unknown model format 'someone-else/9'");
    /* a perturbation layer of the wrong shape is refused, naming the shapes */
    {
        float W[6] = {0}, w[3] = {0}, P[3 * 4] = {0}, pb[3] = {0};
        struct rn_tensor at[4] = {{"actor.weight", 2, {3, 2}, W},
                                  {"actor.bias", 1, {3}, w},
                                  {"perturb.weight", 2, {3, 4}, P},
                                  {"perturb.bias", 1, {3}, pb}};
        const char *ak[] = {"format", "activation"}, *av[] = {"runnel-actor/1", "tanh"};
        CHECK_EQ_INT(rn_st_write(path, at, 4, ak, av, 2, err, sizeof err), 0);
        CHECK(rn_model_read(path, err, sizeof err) == NULL);
        CHECK_STR_CONTAINS(err, "'perturb.weight' [3, 5]");
        /* and an unknown activation by name */
        av[1] = "relu";
        CHECK_EQ_INT(rn_st_write(path, at, 2, ak, av, 2, err, sizeof err), 0);
        CHECK(rn_model_read(path, err, sizeof err) == NULL);
        CHECK_STR_CONTAINS(err, "unknown activation 'relu'");
    }
    /* an actor without its bias names what is missing */
    v[0] = "runnel-actor/1";
    CHECK_EQ_INT(rn_st_write(path, &t, 1, k, v, 1, err, sizeof err), 0);
    CHECK(rn_model_read(path, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "no tensor 'actor.bias'");
}

/* ---- train -> publish -> load -> score ------------------------------------------------ */

/* A small log: 12 items on a line (item k's vector leans on axis k mod 3),
 * 40 users who each see three lists in a session; item i3 is clicked
 * whenever shown, everything else never. */
static void write_data(const char *samples, const char *emb)
{
    FILE *e = fopen(emb, "w");
    CHECK(e != NULL);
    for (int i = 0; i < 12; i++)
        fprintf(e, "i%d %.3f %.3f %.3f\n", i, i % 3 == 0 ? 0.9 : 0.1, i % 3 == 1 ? 0.9 : 0.1,
                i % 3 == 2 ? 0.9 : 0.1 + 0.01 * i);
    fclose(e);
    FILE *f = fopen(samples, "w");
    CHECK(f != NULL);
    int req = 0;
    for (int u = 0; u < 40; u++)
        for (int p = 0; p < 3; p++) {
            long long ts = 1700000000000LL + u * 7200000LL + p * 60000LL;
            fprintf(f, "{\"user\":\"u%d\",\"request\":\"r%d\",\"ts\":%lld,\"items\":[", u, req++,
                    ts);
            for (int s = 0; s < 4; s++) {
                int item = (u + p + 5 * s) % 12;
                int click = item == 3;
                fprintf(f,
                        "%s{\"item\":\"i%d\",\"position\":%d,\"propensity\":%s,\"click\":%d,"
                        "\"pay\":0,\"reward\":%d}",
                        s ? "," : "", item, s + 1, s == 3 ? "0.05" : "0.95", click, click);
            }
            fprintf(f, "]}\n");
        }
    fclose(f);
}

static void test_train(void)
{
    char samples[400], emb[400];
    snprintf(samples, sizeof samples, "%s/samples.jsonl", dir);
    snprintf(emb, sizeof emb, "%s/items.emb", dir);
    write_data(samples, emb);
    const char *algos[3] = {"reinforce-topk", "ddpg", "bcq"};
    for (int k = 0; k < 3; k++) {
        char store[2][400];
        for (int run = 0; run < 2; run++) {
            snprintf(store[run], sizeof store[run], "%s/m-%s-%d", dir, algos[k], run);
            char *argv[] = {"train-offline",
                            "--algo",
                            (char *)algos[k],
                            "--data",
                            samples,
                            "--embeddings",
                            emb,
                            "--out",
                            store[run],
                            "--epochs",
                            "20",
                            "--lr",
                            "0.05",
                            "--buckets",
                            "64",
                            "--batch",
                            "8"};
            CHECK_EQ_INT(rn_offline_main((int)(sizeof argv / sizeof *argv), argv), 0);
        }
        /* deterministic: the same bytes twice */
        char p0[600], p1[600], err[512];
        rn_store_path(store[0], 1, ".safetensors", p0, sizeof p0);
        rn_store_path(store[1], 1, ".safetensors", p1, sizeof p1);
        struct rn_st_file *a = rn_st_read(p0, err, sizeof err),
                          *b = rn_st_read(p1, err, sizeof err);
        CHECK(a && b && a->n == b->n);
        for (size_t i = 0; i < a->n; i++) {
            size_t cnt = 1;
            for (uint32_t j = 0; j < a->tensors[i].ndim; j++)
                cnt *= a->tensors[i].shape[j];
            CHECK(memcmp(a->tensors[i].data, b->tensors[i].data, cnt * sizeof(float)) == 0);
        }
        rn_st_free(a);
        rn_st_free(b);
        /* served: the store's current version is the actor, its scores finite */
        int64_t id;
        CHECK_EQ_INT(rn_store_current(store[0], &id, err, sizeof err), 0);
        CHECK(id == 1);
        struct rn_model *m = rn_store_load(store[0], id, err, sizeof err);
        CHECK(m != NULL && m->shape.kind == RN_MODEL_ACTOR && m->shape.dim == D);
        CHECK(m->shape.phi == RN_PHI_SIMPLE_DIM(D));
        struct rn_embed *t = rn_embed_load(emb, err, sizeof err);
        CHECK(t != NULL);
        float phi[RN_PHI_SIMPLE_DIM(D)] = {0}, E[12 * D], sc[12];
        uint64_t ids[12];
        char name[16];
        for (int i = 0; i < 12; i++) {
            snprintf(name, sizeof name, "i%d", i);
            ids[i] = rn_hash64(name, strlen(name));
        }
        CHECK(rn_embed_rows(t, ids, 12, E) == 0);
        phi[2 * D] = 1;
        rn_model_advantages(m, phi, E, ids, 12, sc);
        int best = 0;
        for (int i = 0; i < 12; i++) {
            CHECK(isfinite(sc[i]));
            best = sc[i] > sc[best] ? i : best;
        }
        /* REINFORCE learns the one item ever clicked through its item bias */
        if (k == 0) CHECK(best == 3);
        rn_embed_destroy(t);
        rn_model_destroy(m);
    }
    /* usage errors exit 2 and name the option */
    char *bad[] = {"train-offline", "--algo", "dqn",   "--data", samples,
                   "--embeddings",  emb,      "--out", dir};
    CHECK_EQ_INT(rn_offline_main(9, bad), 2);
    char *bad2[] = {"train-offline", "--epochs", "zero"};
    CHECK_EQ_INT(rn_offline_main(3, bad2), 2);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/rn_test_offline.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    test_topk_weight();
    test_gradients();
    test_store_round_trip();
    test_train();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return rn_test_summary();
}
