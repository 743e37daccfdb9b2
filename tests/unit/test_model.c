/*
 * test_model.c — the dueling Q model and its learner (rn_model.h): the
 * gradient against central finite differences (in double, on every parameter
 * block), the dueling aggregation and the per-item TD target worked out by
 * hand, determinism of updates, that learning lowers the loss, the learner's
 * bytes round trip (a restored learner continues identically), models through
 * safetensors and the model store (publish, list, pin, rollback), and the
 * simple state features.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_fs_int.h"
#include "rn_model.h"
#include "rn_rand.h"
#include "rn_test.h"

#define D 4
#define F RN_PHI_SIMPLE_DIM(D)
#define NB 3
#define NI 5

static struct rn_rand rng;

static float frand(void)
{
    return (float)(rn_rand_uniform(&rng) * 2.0 - 1.0);
}

struct batch {
    float phi[NB][F], phin[NB][F], E[NB][NI * D], r[NB][NI];
    uint64_t ids[NB][NI];
    uint32_t pos[NB][NI];
    uint8_t clicked[NB][NI];
    struct rn_transition t[NB];
};

static void make_batch(struct batch *b)
{
    for (int k = 0; k < NB; k++) {
        for (unsigned f = 0; f < F; f++) {
            b->phi[k][f] = frand();
            b->phin[k][f] = frand();
        }
        for (int i = 0; i < NI; i++) {
            for (int d = 0; d < D; d++)
                b->E[k][i * D + d] = frand();
            b->ids[k][i] = (uint64_t)(k * 7 + i * 3 + 1);
            b->pos[k][i] = (uint32_t)i;
            b->clicked[k][i] = (uint8_t)((k + i) % 3 == 0);
            b->r[k][i] = b->clicked[k][i] ? 1.0f + (float)i : 0.0f;
        }
        b->t[k] = (struct rn_transition){b->phi[k], b->phin[k],    b->E[k], b->ids[k], b->pos[k],
                                         b->r[k],   b->clicked[k], NI,      k == 2};
    }
}

static struct rn_learner *make_learner(double gamma, int opt, uint32_t target_every)
{
    struct rn_model_shape sh = {.dim = D, .phi = F, .buckets = 11, .positions = 4};
    struct rn_model *m = rn_model_create(&sh);
    for (size_t i = 0; i < m->at.n; i++)
        m->params[i] = 0.3f * frand();
    struct rn_learn_cfg cfg = {opt,          0.05, 0,     0,    gamma,
                               target_every, 0.9,  0.999, 1e-8, RN_ADV_BASELINE_LIST_MEAN,
                               RN_OBJ_TD};
    char err[256];
    struct rn_learner *l = rn_learner_create(m, &cfg, err, sizeof err);
    CHECK(l != NULL);
    return l;
}

/* The learner's gradient of the batch's loss into g, against central finite
 * differences on every parameter: the number that disagree (the first few on
 * stderr). */
static int fd_mismatches(struct rn_learner *l, const struct rn_transition *t, float *g)
{
    struct rn_model *m = (struct rn_model *)rn_learner_model(l);
    rn_learner_loss(l, t, NB, g);
    int bad = 0;
    for (size_t i = 0; i < m->at.n; i++) {
        float keep = m->params[i], h = 1e-2f;
        m->params[i] = keep + h;
        double lp = rn_learner_loss(l, t, NB, NULL);
        m->params[i] = keep - h;
        double lm = rn_learner_loss(l, t, NB, NULL);
        m->params[i] = keep;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - g[i]) > 2e-3 + 2e-3 * fabs(fd)) {
            if (bad < 5) fprintf(stderr, "param %zu: analytic %g, numeric %g\n", i, g[i], fd);
            bad++;
        }
    }
    return bad;
}

static void test_gradient(void)
{
    struct batch b;
    make_batch(&b);
    struct rn_learner *l = make_learner(0.9, RN_OPT_SGD, 1000000);
    struct rn_model *m = (struct rn_model *)rn_learner_model(l);
    float *g = calloc(m->at.n, sizeof *g);
    /* every parameter of v, W and w, and the biases and positions that occur */
    CHECK_EQ_INT(fd_mismatches(l, b.t, g), 0);
    /* the gradient of the biases sums to zero within a list: the mean of A
     * over the shown list cancels any shift of every shown item */
    double bsum = 0;
    for (size_t i = m->at.b; i < m->at.c; i++)
        bsum += g[i];
    CHECK(fabs(bsum) < 1e-5);
    free(g);
    rn_learner_destroy(l);
}

/* The list-reward objective (LAST's evaluator): its gradient against central
 * finite differences, a fresh learner's position weights at 1, and
 * rn_model_list_reward against the sum written out by hand. */
static void test_list_reward(void)
{
    struct batch b;
    make_batch(&b);
    struct rn_model_shape sh = {.dim = D, .phi = F, .buckets = 11, .positions = 4};
    struct rn_learn_cfg cfg = {
        RN_OPT_SGD, 0.05, 0, 0, 0, 1000, 0, 0, 0, RN_ADV_BASELINE_LIST_MEAN, RN_OBJ_LIST_REWARD};
    char err[256];
    struct rn_learner *l = rn_learner_create(rn_model_create(&sh), &cfg, err, sizeof err);
    CHECK(l != NULL);
    struct rn_model *m = (struct rn_model *)rn_learner_model(l);
    for (uint32_t p = 0; p < sh.positions; p++)
        CHECK(m->params[m->at.c + p] == 1.0f);
    for (size_t i = 0; i < m->at.c; i++)
        m->params[i] = 0.3f * frand();
    float *g = calloc(m->at.n, sizeof *g);
    CHECK_EQ_INT(fd_mismatches(l, b.t, g), 0);
    /* R̂ by hand for list 0: vᵀφ + Σ_p c[p] (e_pᵀ(Wφ + w) + b[id_p mod H]) */
    double want = 0;
    for (unsigned f = 0; f < F; f++)
        want += m->params[m->at.v + f] * b.phi[0][f];
    for (int i = 0; i < NI; i++) {
        double a = m->params[m->at.b + b.ids[0][i] % 11];
        for (int d = 0; d < D; d++) {
            double u = m->params[m->at.w + d];
            for (unsigned f = 0; f < F; f++)
                u += m->params[m->at.W + d * F + f] * b.phi[0][f];
            a += u * b.E[0][i * D + d];
        }
        want += m->params[m->at.c + (i < 4 ? i : 3)] * a;
    }
    float u[D];
    double got = rn_model_list_reward(m, b.phi[0], b.E[0], b.ids[0], NI, u, 0);
    CHECK(fabs(got - want) < 1e-4 * (1 + fabs(want)));
    CHECK(rn_model_list_reward(m, b.phi[0], b.E[0], b.ids[0], NI, u, 1) == got);
    /* learning moves R̂ towards the lists' rewards */
    double before = rn_learner_loss(l, b.t, NB, NULL);
    for (int it = 0; it < 200; it++)
        CHECK(rn_learner_update(l, b.t, NB) == 0);
    CHECK(rn_learner_loss(l, b.t, NB, NULL) < 0.1 * before);
    free(g);
    rn_learner_destroy(l);
}

/* The dueling aggregation and the target, by hand, on one list. */
static void test_target_by_hand(void)
{
    struct rn_model_shape sh = {.dim = 2, .phi = 3, .buckets = 8, .positions = 3};
    struct rn_model *m = rn_model_create(&sh);
    /* V(s) = v·φ; A = e·(Wφ + w) + b + c[pos] with W = 0, w = (1, 0) */
    float vv[3] = {1, 2, 0};
    memcpy(m->params + m->at.v, vv, sizeof vv);
    m->params[m->at.w] = 1;
    m->params[m->at.b + 5] = 0.5f; /* item 5 */
    m->params[m->at.c + 1] = -0.25f;
    struct rn_learn_cfg cfg = {RN_OPT_SGD, 0.1, 0, 0, 0.5, 1000, 0, 0, 0, RN_ADV_BASELINE_LIST_MEAN,
                               RN_OBJ_TD};
    char err[128];
    struct rn_learner *l = rn_learner_create(m, &cfg, err, sizeof err);
    float phi[3] = {1, 1, 0}, phin[3] = {2, 0, 0}; /* V(s) = 3, V̂(s') = 2 */
    float E[3 * 2] = {1, 0, 2, 0, 0, 0};
    uint64_t ids[3] = {5, 6, 7};
    uint32_t pos[3] = {0, 1, 2};
    float r[3] = {0, 6, 0};
    uint8_t clicked[3] = {0, 1, 0};
    struct rn_transition t = {phi, phin, E, ids, pos, r, clicked, 3, 0};
    /* A = [1 + 0.5, 2 - 0.25, 0] = [1.5, 1.75, 0]; mean 13/12;
     * Q_i = 3 + A_i - 13/12; targets: y = r + γ n share V̂(s') = [0, 6 + 0.5*3*1*2, 0] */
    double A[3] = {1.5, 1.75, 0}, mean = (1.5 + 1.75) / 3, y[3] = {0, 9, 0}, loss = 0;
    for (int i = 0; i < 3; i++) {
        double e = 3 + A[i] - mean - y[i];
        loss += 0.5 * e * e;
    }
    loss /= 3;
    double got = rn_learner_loss(l, &t, 1, NULL);
    CHECK(fabs(got - loss) < 1e-5);
    /* done: no continuation */
    t.done = 1;
    y[1] = 6;
    loss = 0;
    for (int i = 0; i < 3; i++) {
        double e = 3 + A[i] - mean - y[i];
        loss += 0.5 * e * e;
    }
    loss /= 3;
    CHECK(fabs(rn_learner_loss(l, &t, 1, NULL) - loss) < 1e-5);
    /* nothing clicked: the continuation is shared evenly */
    t.done = 0;
    clicked[1] = 0;
    r[1] = 0;
    loss = 0;
    for (int i = 0; i < 3; i++) {
        double e = 3 + A[i] - mean - 0.5 * 3 * (1.0 / 3) * 2;
        loss += 0.5 * e * e;
    }
    loss /= 3;
    CHECK(fabs(rn_learner_loss(l, &t, 1, NULL) - loss) < 1e-5);
    /* advantages for serving: without the position term */
    float adv[3];
    rn_model_advantages(rn_learner_model(l), phi, E, ids, 3, adv);
    CHECK(fabs(adv[0] - 1.5) < 1e-6 && fabs(adv[1] - 2.0) < 1e-6 && fabs(adv[2]) < 1e-6);
    CHECK(fabs(rn_model_value(rn_learner_model(l), phi) - 3) < 1e-6);
    rn_learner_destroy(l);
}

/* A list of one item (the Open Bandit Dataset's): with the list-mean baseline
 * A − mean A ≡ 0, so no gradient reaches the advantage and every item keeps the
 * same score; without it, Q = V + A and the clicked item's advantage rises. */
static void test_one_item_lists(void)
{
    for (int base = RN_ADV_BASELINE_LIST_MEAN; base <= RN_ADV_BASELINE_NONE; base++) {
        struct rn_model_shape sh = {.dim = 2, .phi = 3, .buckets = 8, .positions = 2};
        struct rn_learn_cfg cfg = {RN_OPT_SGD, 0.1, 0, 0, 0, 1000, 0, 0, 0, base, RN_OBJ_TD};
        char err[128];
        struct rn_learner *l = rn_learner_create(rn_model_create(&sh), &cfg, err, sizeof err);
        CHECK(l != NULL);
        float phi[3] = {0, 0, 1};
        float E1[2] = {1, 0}, E2[2] = {0, 1}, E[4] = {1, 0, 0, 1};
        uint64_t id1 = 1, id2 = 2, ids[2] = {1, 2};
        uint32_t pos = 0;
        float r1 = 1, r0 = 0;
        uint8_t c1 = 1, c0 = 0;
        struct rn_transition t[2] = {{phi, phi, E1, &id1, &pos, &r1, &c1, 1, 1},
                                     {phi, phi, E2, &id2, &pos, &r0, &c0, 1, 1}};
        for (int k = 0; k < 50; k++)
            CHECK(rn_learner_update(l, t, 2) == 0);
        float adv[2];
        rn_model_advantages(rn_learner_model(l), phi, E, ids, 2, adv);
        if (base == RN_ADV_BASELINE_LIST_MEAN)
            CHECK(adv[0] == 0 && adv[1] == 0);
        else
            CHECK(adv[0] > adv[1] + 0.1);
        rn_learner_destroy(l);
    }
}

static void test_learning_and_bytes(void)
{
    for (int opt = RN_OPT_SGD; opt <= RN_OPT_ADAM; opt++) {
        struct batch b;
        rn_rand_seed(&rng, 42, 0);
        make_batch(&b);
        struct rn_learner *a = make_learner(0.5, opt, 3);
        rn_rand_seed(&rng, 42, 0);
        make_batch(&b);
        struct rn_learner *c = make_learner(0.5, opt, 3);
        double first = rn_learner_loss(a, b.t, NB, NULL);
        for (int s = 0; s < 10; s++) {
            CHECK_EQ_INT(rn_learner_update(a, b.t, NB), 0);
            CHECK_EQ_INT(rn_learner_update(c, b.t, NB), 0);
        }
        const struct rn_model *ma = rn_learner_model(a), *mc = rn_learner_model(c);
        CHECK(memcmp(ma->params, mc->params, ma->at.n * sizeof(float)) == 0);
        for (int s = 0; s < 200; s++)
            rn_learner_update(a, b.t, NB);
        double last = rn_learner_loss(a, b.t, NB, NULL);
        if (!(last < 0.5 * first))
            fprintf(stderr, "optimizer %d: loss %g -> %g\n", opt, first, last);
        CHECK(last < 0.5 * first);
        /* save, restore into a fresh learner, continue: identical */
        struct rn_buf bytes = RN_BUF_INIT;
        rn_learner_save(a, &bytes);
        struct rn_learner *r = make_learner(0.5, opt, 3);
        CHECK_EQ_INT(rn_learner_load(r, bytes.data, bytes.len), 0);
        CHECK_EQ_INT(rn_learner_load(r, bytes.data, bytes.len - 1), RN_ECORRUPT);
        for (int s = 0; s < 7; s++) {
            rn_learner_update(a, b.t, NB);
            rn_learner_update(r, b.t, NB);
        }
        CHECK(memcmp(rn_learner_model(a)->params, rn_learner_model(r)->params,
                     ma->at.n * sizeof(float)) == 0);
        CHECK(rn_learner_stats(a)->updates == rn_learner_stats(r)->updates);
        rn_buf_free(&bytes);
        rn_learner_destroy(a);
        rn_learner_destroy(c);
        rn_learner_destroy(r);
    }
}

static void test_files_and_store(void)
{
    char dir[] = "/tmp/rn_test_model_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char store[300], path[400], err[512];
    snprintf(store, sizeof store, "%s/store", dir);
    struct rn_learner *l = make_learner(0.9, RN_OPT_ADAM, 10);
    const struct rn_model *m = rn_learner_model(l);
    int64_t id;
    CHECK_EQ_INT(rn_store_current(store, &id, err, sizeof err), RN_ENOENT);
    for (int64_t v = 1; v <= 3; v++) {
        struct rn_model_version mv = {v, 0, 1000 * v, (uint64_t)v, 0, 0.5, 1.5};
        ((struct rn_model *)m)->params[0] = (float)v;
        CHECK_EQ_INT(rn_store_publish(store, m, &mv, err, sizeof err), 0);
    }
    struct rn_model_version *vs;
    size_t n;
    CHECK_EQ_INT(rn_store_list(store, &vs, &n, err, sizeof err), 0);
    CHECK_EQ_INT(n, 3);
    CHECK(n == 3 && vs[2].id == 3 && vs[2].event_time == 3000 && vs[1].mean_q == 1.5);
    free(vs);
    CHECK_EQ_INT(rn_store_current(store, &id, err, sizeof err), 0);
    CHECK_EQ_INT(id, 3);
    CHECK_EQ_INT(rn_store_pin(store, 2, err, sizeof err), 0);
    CHECK_EQ_INT(rn_store_current(store, &id, err, sizeof err), 0);
    CHECK_EQ_INT(id, 2);
    CHECK_EQ_INT(rn_store_pin(store, 9, err, sizeof err), RN_ENOENT);
    CHECK_EQ_INT(rn_store_pin(store, -1, err, sizeof err), 0);
    CHECK_EQ_INT(rn_store_current(store, &id, err, sizeof err), 0);
    CHECK_EQ_INT(id, 3);
    struct rn_model *back = rn_store_load(store, 2, err, sizeof err);
    CHECK(back != NULL);
    if (back) {
        CHECK(back->params[0] == 2.0f);
        CHECK(memcmp(back->params + 1, m->params + 1, (m->at.n - 1) * sizeof(float)) == 0);
        CHECK(back->shape.dim == m->shape.dim && back->shape.buckets == m->shape.buckets);
        /* a restored model scores identically */
        float phi[F], E[2 * D], a1[2], a2[2];
        uint64_t ids[2] = {3, 4};
        for (unsigned i = 0; i < F; i++)
            phi[i] = frand();
        for (unsigned i = 0; i < 2 * D; i++)
            E[i] = frand();
        ((struct rn_model *)m)->params[0] = 2.0f;
        rn_model_advantages(m, phi, E, ids, 2, a1);
        rn_model_advantages(back, phi, E, ids, 2, a2);
        CHECK(memcmp(a1, a2, sizeof a1) == 0);
        CHECK(rn_model_value(m, phi) == rn_model_value(back, phi));
        rn_model_destroy(back);
    }
    /* the same model gives the same bytes */
    char p1[400], p2[400];
    snprintf(p1, sizeof p1, "%s/a.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/b.safetensors", dir);
    CHECK_EQ_INT(rn_model_write(p1, m, NULL, NULL, 0, err, sizeof err), 0);
    CHECK_EQ_INT(rn_model_write(p2, m, NULL, NULL, 0, err, sizeof err), 0);
    size_t n1, n2;
    char *b1 = rn_fs_read_all(p1, &n1), *b2 = rn_fs_read_all(p2, &n2);
    CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);
    free(b1);
    free(b2);
    /* a file without the model's tensors is refused by name */
    struct rn_tensor t = {"v", 1, {3}, (float[]){1, 2, 3}};
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    CHECK_EQ_INT(rn_st_write(path, &t, 1, NULL, NULL, 0, err, sizeof err), 0);
    CHECK(rn_model_read(path, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "no tensor 'W'");
    rn_learner_destroy(l);
    rn_fs_rmtree(dir, err, sizeof err);
}

static void test_phi(void)
{
    char path[] = "/tmp/rn_test_emb_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *text = "# items\ni1 1 0 0 0\ni2 0 2 0 0\ni3 0 0 0 4\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    char err[256];
    struct rn_embed *e = rn_embed_acquire(path, err, sizeof err);
    struct rn_embed *e2 = rn_embed_acquire(path, err, sizeof err);
    CHECK(e && e == e2);
    CHECK_EQ_INT(rn_embed_dim(e), 4);
    CHECK_EQ_INT(rn_embed_count(e), 3);
    struct rn_hist h[3] = {
        {rn_hash64("i1", 2), 0}, {rn_hash64("zz", 2), 500}, {rn_hash64("i2", 2), 1000}};
    float phi[RN_PHI_SIMPLE_DIM(4)];
    rn_phi_simple(e, 4, 1000.0, h, 3, 1000, phi);
    /* mean of i1 and i2 (zz has no vector): (0.5, 1, 0, 0); decayed: i1 half, i2 whole */
    CHECK(phi[0] == 0.5f && phi[1] == 1.0f && phi[2] == 0 && phi[3] == 0);
    CHECK(phi[4] == 0.5f && phi[5] == 2.0f);
    CHECK(phi[8] == 1.0f && phi[9] == 0.75f);
    /* only the last `history` items count */
    rn_phi_simple(e, 1, 1000.0, h, 3, 1000, phi);
    CHECK(phi[0] == 0 && phi[1] == 2.0f && phi[9] == 1.0f);
    float E[2 * 4];
    uint64_t ids[2] = {rn_hash64("i3", 2), 77};
    CHECK_EQ_INT(rn_embed_rows(e, ids, 2, E), 1);
    CHECK(E[3] == 4.0f && E[4] == 0 && E[7] == 0);
    rn_embed_release(e2);
    rn_embed_release(e);
    FILE *f = fopen(path, "w");
    fputs("i1 1 2\ni2 1\n", f);
    fclose(f);
    CHECK(rn_embed_load(path, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, ":2: 1 values, expected 2");
    unlink(path);
}

int main(void)
{
    rn_rand_seed(&rng, 1, 0);
    test_gradient();
    test_list_reward();
    test_target_by_hand();
    test_one_item_lists();
    test_learning_and_bytes();
    test_files_and_store();
    test_phi();
    return rn_test_summary();
}
