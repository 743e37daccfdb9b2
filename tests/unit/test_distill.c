/*
 * test_distill.c — teacher → student distillation (rn_distill.h): the
 * confidence-weighted list-wise KL and the hint loss with their gradients
 * against central finite differences, both worked out by hand on small cases;
 * the teacher's running confidence on a hand-computed sequence; explore and
 * filter on hand-made scores (overlaps and a repeated item); the whole
 * distillation gradient with respect to every student parameter and the
 * projection; the distiller's bytes round trip; and a student that learns to
 * rank like a fixed teacher on synthetic users over items the log never
 * showed, which the same student without distillation cannot; and the
 * principal components `runnel embed-reduce` writes for a student's table, on
 * a table whose answer is known.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_distill.h"
#include "rn_embed_reduce.h"
#include "rn_rand.h"
#include "rn_test.h"

static struct rn_rand rng;

static float frand(void)
{
    return (float)(rn_rand_uniform(&rng) * 2.0 - 1.0);
}

static int close_to(double a, double b, double tol)
{
    return fabs(a - b) <= tol * (1.0 + fabs(a) + fabs(b));
}

/* ---- the pieces --------------------------------------------------------------------- */

static void test_kl_by_hand(void)
{
    /* p_T = (1/4, 3/4), p_S = (1/2, 1/2) */
    float at[2] = {0.0f, (float)log(3.0)}, as[2] = {0.0f, 0.0f}, g[2];
    double kl = rn_distill_kl(at, as, NULL, 2, 1.0, g);
    CHECK(close_to(kl, 0.25 * log(0.5) + 0.75 * log(1.5), 1e-6));
    /* ∂/∂a_s = p_S − p_T */
    CHECK(close_to(g[0], 0.25, 1e-6) && close_to(g[1], -0.25, 1e-6));
    /* weights (2, 1): 2·¼·ln ½ + ¾·ln 3/2; ∂_j = p_S(j)·Σw p_T − w_j p_T(j) */
    float w[2] = {2.0f, 1.0f};
    kl = rn_distill_kl(at, as, w, 2, 1.0, g);
    CHECK(close_to(kl, 0.5 * log(0.5) + 0.75 * log(1.5), 1e-6));
    CHECK(close_to(g[0], 0.5 * 1.25 - 0.5, 1e-6) && close_to(g[1], 0.5 * 1.25 - 0.75, 1e-6));
    /* the same distribution (a shift) costs nothing; temperature divides */
    float as2[2] = {3.0f, 3.0f + (float)log(3.0)};
    CHECK(fabs(rn_distill_kl(at, as2, NULL, 2, 1.0, g)) < 1e-6);
    float at2[2] = {0.0f, 2.0f * (float)log(3.0)};
    CHECK(close_to(rn_distill_kl(at2, as, NULL, 2, 2.0, NULL), 0.25 * log(0.5) + 0.75 * log(1.5),
                   1e-6));
}

static void test_kl_gradient(void)
{
    enum { N = 7 };
    float at[N], as[N], w[N], g[N];
    for (int i = 0; i < N; i++) {
        at[i] = 2 * frand();
        as[i] = 2 * frand();
        w[i] = 0.2f + (float)rn_rand_uniform(&rng);
    }
    for (int weighted = 0; weighted < 2; weighted++) {
        const float *wp = weighted ? w : NULL;
        rn_distill_kl(at, as, wp, N, 0.7, g);
        int bad = 0;
        for (int j = 0; j < N; j++) {
            float keep = as[j], h = 1e-3f;
            as[j] = keep + h;
            double up = rn_distill_kl(at, as, wp, N, 0.7, NULL);
            as[j] = keep - h;
            double dn = rn_distill_kl(at, as, wp, N, 0.7, NULL);
            as[j] = keep;
            double fd = (up - dn) / (2.0 * h);
            if (!close_to(g[j], fd, 2e-3)) {
                fprintf(stderr, "kl grad %d: %g vs fd %g\n", j, g[j], fd);
                bad++;
            }
        }
        CHECK_EQ_INT(bad, 0);
    }
}

static void test_hint(void)
{
    /* by hand: P = [[1, 0], [0, 2], [1, 1]], h_s = (1, 2), h_t = (0, 4, 1):
     * P h_s − h_t = (1, 0, 2), L = ½ (1 + 0 + 4) / 3 */
    float P[6] = {1, 0, 0, 2, 1, 1}, hs[2] = {1, 2}, ht[3] = {0, 4, 1};
    float gP[6] = {0}, gh[2] = {0};
    CHECK(close_to(rn_distill_hint(P, hs, ht, 2, 3, 1.0, gP, gh), 2.5 / 3, 1e-9));
    /* ∂/∂P = r h_sᵀ / 3, ∂/∂h_s = Pᵀ r / 3 */
    CHECK(close_to(gP[0], 1.0 / 3, 1e-6) && close_to(gP[1], 2.0 / 3, 1e-6) && gP[2] == 0 &&
          gP[3] == 0 && close_to(gP[4], 2.0 / 3, 1e-6) && close_to(gP[5], 4.0 / 3, 1e-6));
    CHECK(close_to(gh[0], 1.0, 1e-6) && close_to(gh[1], 2.0 / 3, 1e-6));

    enum { DS = 3, DT = 5 };
    float Pr[DT * DS], s[DS], t[DT], gPr[DT * DS] = {0}, gs[DS] = {0};
    for (int i = 0; i < DT * DS; i++)
        Pr[i] = frand();
    for (int i = 0; i < DS; i++)
        s[i] = frand();
    for (int i = 0; i < DT; i++)
        t[i] = frand();
    rn_distill_hint(Pr, s, t, DS, DT, 0.5, gPr, gs); /* scaled by ½ */
    int bad = 0;
    for (int i = 0; i < DT * DS + DS; i++) {
        float *x = i < DT * DS ? &Pr[i] : &s[i - DT * DS];
        float gi = i < DT * DS ? gPr[i] : gs[i - DT * DS];
        float keep = *x, h = 1e-3f;
        *x = keep + h;
        double up = rn_distill_hint(Pr, s, t, DS, DT, 1.0, NULL, NULL);
        *x = keep - h;
        double dn = rn_distill_hint(Pr, s, t, DS, DT, 1.0, NULL, NULL);
        *x = keep;
        if (!close_to(gi, 0.5 * (up - dn) / (2.0 * h), 2e-3)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_confidence(void)
{
    struct rn_confidence c;
    rn_confidence_init(&c, 1.0); /* half-life one item: decay ½ */
    CHECK(close_to(c.decay, 0.5, 1e-12));
    CHECK(rn_confidence_mean(&c) == 0.0);
    CHECK(close_to(rn_confidence_item(1.0, 1.0), 1.0, 1e-12));
    CHECK(close_to(rn_confidence_item(0.0, 2.0), 1.0 / 3, 1e-12));
    CHECK(close_to(rn_confidence_item(3.0, 2.5), 2.0 / 3, 1e-12));
    rn_confidence_add(&c, rn_confidence_item(1.0, 1.0));
    rn_confidence_add(&c, rn_confidence_item(0.0, 2.0));
    rn_confidence_add(&c, rn_confidence_item(3.0, 2.5));
    /* num = ¼·1 + ½·⅓ + ⅔ = 13/12, den = ¼ + ½ + 1 = 7/4 */
    CHECK(close_to(rn_confidence_mean(&c), (13.0 / 12) / (7.0 / 4), 1e-12));
}

static void test_filter(void)
{
    uint32_t out[12];
    uint8_t seen[6];
    uint64_t ids[6] = {10, 11, 12, 13, 14, 15};
    float at[6] = {5, 1, 4, 0, 3, 2}, as[6] = {0, 6, 1, 5, 2, 3};
    /* teacher's top 2: 0, 2; student's: 1, 3 */
    uint32_t n = rn_distill_filter(at, as, ids, 6, 2, out, seen);
    CHECK_EQ_INT(n, 4);
    CHECK(out[0] == 0 && out[1] == 1 && out[2] == 2 && out[3] == 3);
    /* they agree: the union is the two */
    float as2[6] = {5, 0, 4, 1, 2, 3};
    n = rn_distill_filter(at, as2, ids, 6, 2, out, seen);
    CHECK(n == 2 && out[0] == 0 && out[1] == 2);
    /* ties go to the earlier candidate; top 1 of each */
    float flat[6] = {1, 1, 1, 1, 1, 1};
    n = rn_distill_filter(flat, as, ids, 6, 1, out, seen);
    CHECK(n == 2 && out[0] == 0 && out[1] == 1);
    /* a repeated item (id 10 at 0 and 3) is ranked and selected once: the
     * teacher takes 3 (id 10), then 2; the student's best is id 10 again,
     * then 2 — nothing new */
    uint64_t dup[4] = {10, 11, 12, 10};
    float at3[4] = {4, 0, 3, 5}, as3[4] = {0, 1, 2, 3};
    n = rn_distill_filter(at3, as3, dup, 4, 2, out, seen);
    CHECK(n == 2 && out[0] == 2 && out[1] == 3);
    /* top beyond k takes everything once */
    n = rn_distill_filter(at, as, ids, 6, 10, out, seen);
    CHECK_EQ_INT(n, 6);
}

/* ---- the distiller ------------------------------------------------------------------ */

#define DT 4
#define DS 2
#define ITEMS 40
#define BUCKETS 64
#define NI 4

static char dir[64];
static struct rn_embed *temb, *semb;

/* Two tables of the same items: the teacher's D = 4, the student's the first
 * two of each vector (a lower-dimension view of the same items). */
static void make_tables(void)
{
    snprintf(dir, sizeof dir, "/tmp/rn_test_distill_XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    char tp[128], sp[128];
    snprintf(tp, sizeof tp, "%s/t.txt", dir);
    snprintf(sp, sizeof sp, "%s/s.txt", dir);
    FILE *ft = fopen(tp, "w"), *fs = fopen(sp, "w");
    CHECK(ft && fs);
    if (!ft || !fs) exit(1);
    for (int i = 0; i < ITEMS; i++) {
        float v[DT];
        for (int j = 0; j < DT; j++)
            v[j] = frand();
        fprintf(ft, "i%d %g %g %g %g\n", i, v[0], v[1], v[2], v[3]);
        fprintf(fs, "i%d %g %g\n", i, v[0], v[1]);
    }
    fclose(ft);
    fclose(fs);
    char err[256];
    temb = rn_embed_load(tp, err, sizeof err);
    semb = rn_embed_load(sp, err, sizeof err);
    CHECK(temb && semb);
    if (!temb || !semb) exit(1);
    unlink(tp);
    unlink(sp);
    rmdir(dir);
}

static struct rn_learner *make_learner(uint32_t d, int random_params)
{
    struct rn_model_shape sh = {.dim = d, .phi = RN_PHI_SIMPLE_DIM(d), .buckets = BUCKETS, .positions = NI};
    struct rn_model *m = rn_model_create(&sh);
    if (random_params)
        for (size_t i = 0; i < m->at.n; i++)
            m->params[i] = frand();
    struct rn_learn_cfg lc = {RN_OPT_ADAM, 0.01, 0, 0, 0.5, 100, 0.9, 0.999, 1e-8, 0, RN_OBJ_TD};
    char err[256];
    struct rn_learner *l = rn_learner_create(m, &lc, err, sizeof err);
    CHECK(l != NULL);
    if (!l) exit(1);
    return l;
}

/* Synthetic users: a history of items; both models see it through their own
 * table (the simple φ); the shown items are NI of the first `pool` items. */
struct sbatch {
    uint32_t nb;
    float *phit, *phis, *Et, *Es, *r;
    uint64_t *ids, *seeds;
    uint32_t *pos;
    uint8_t *clicked;
    struct rn_transition *tt, *st;
};

static void make_sbatch(struct sbatch *b, uint32_t nb, struct rn_learner *teacher, uint32_t pool)
{
    uint32_t ft = RN_PHI_SIMPLE_DIM(DT), fs = RN_PHI_SIMPLE_DIM(DS);
    b->nb = nb;
    b->phit = calloc((size_t)nb * ft, sizeof(float));
    b->phis = calloc((size_t)nb * fs, sizeof(float));
    b->Et = calloc((size_t)nb * NI * DT, sizeof(float));
    b->Es = calloc((size_t)nb * NI * DS, sizeof(float));
    b->r = calloc((size_t)nb * NI, sizeof(float));
    b->ids = calloc((size_t)nb * NI, sizeof(uint64_t));
    b->seeds = calloc(nb, sizeof(uint64_t));
    b->pos = calloc((size_t)nb * NI, sizeof(uint32_t));
    b->clicked = calloc((size_t)nb * NI, 1);
    b->tt = calloc(nb, sizeof *b->tt);
    b->st = calloc(nb, sizeof *b->st);
    for (uint32_t k = 0; k < nb; k++) {
        struct rn_hist h[5];
        for (int j = 0; j < 5; j++) {
            h[j].item_id = rn_embed_id(temb, rn_rand_next(&rng) % ITEMS);
            h[j].ts = 1000 * j;
        }
        rn_phi_simple(temb, 5, 3600e3, h, 5, 5000, b->phit + (size_t)k * ft);
        rn_phi_simple(semb, 5, 3600e3, h, 5, 5000, b->phis + (size_t)k * fs);
        uint64_t *ids = b->ids + (size_t)k * NI;
        for (int i = 0; i < NI; i++) {
            ids[i] = rn_embed_id(temb, rn_rand_next(&rng) % pool);
            b->pos[(size_t)k * NI + i] = (uint32_t)i;
        }
        rn_embed_rows(temb, ids, NI, b->Et + (size_t)k * NI * DT);
        rn_embed_rows(semb, ids, NI, b->Es + (size_t)k * NI * DS);
        b->seeds[k] = rn_rand_next(&rng);
        b->tt[k] = (struct rn_transition){b->phit + (size_t)k * ft,
                                          b->phit + (size_t)k * ft,
                                          b->Et + (size_t)k * NI * DT,
                                          ids,
                                          b->pos + (size_t)k * NI,
                                          b->r + (size_t)k * NI,
                                          b->clicked + (size_t)k * NI,
                                          NI,
                                          1};
        b->st[k] = b->tt[k];
        b->st[k].phi = b->st[k].phi_next = b->phis + (size_t)k * fs;
        b->st[k].E = b->Es + (size_t)k * NI * DS;
        /* rewards: the teacher's advantages of the shown items, so that the
         * student's own TD loss agrees with what it is taught */
        float a[NI];
        rn_model_advantages(rn_learner_model(teacher), b->tt[k].phi, b->tt[k].E, ids, NI, a);
        for (int i = 0; i < NI; i++) {
            b->r[(size_t)k * NI + i] = a[i];
            b->clicked[(size_t)k * NI + i] = a[i] > 0;
        }
    }
}

static void free_sbatch(struct sbatch *b)
{
    free(b->phit);
    free(b->phis);
    free(b->Et);
    free(b->Es);
    free(b->r);
    free(b->ids);
    free(b->seeds);
    free(b->pos);
    free(b->clicked);
    free(b->tt);
    free(b->st);
}

static const struct rn_distill_cfg dcfg = {8, 2, 1.0, 1.0, 1.0, 1000.0, 0.01};

static void test_distill_gradient(void)
{
    struct rn_learner *teacher = make_learner(DT, 1);
    struct rn_learner *student = make_learner(DS, 1);
    char err[256];
    struct rn_distiller *d = rn_distiller_create(student, temb, semb, &dcfg, err, sizeof err);
    CHECK(d != NULL);
    if (!d) exit(1);
    struct sbatch b;
    make_sbatch(&b, 3, teacher, ITEMS);
    /* one step first, so that the confidence (the hint's weight) is not zero */
    CHECK_EQ_INT(rn_distill_update(d, teacher, b.tt, b.st, b.seeds, b.nb), 0);
    CHECK(rn_distiller_stats(d)->confidence > 0 && rn_distiller_stats(d)->confidence <= 1);
    struct rn_model *sm = (struct rn_model *)rn_learner_model(rn_distiller_student(d));
    size_t n = sm->at.n, np = DT * DS;
    float *g = malloc(n * sizeof *g), *gP = malloc(np * sizeof *gP);
    double loss = rn_distill_loss(d, teacher, b.tt, b.st, b.seeds, b.nb, g, gP);
    CHECK(loss > 0 && isfinite(loss));
    CHECK(rn_distiller_stats(d)->last_hint > 0);
    float *P = rn_distiller_projection(d);
    int bad = 0, nonzero = 0;
    for (size_t i = 0; i < n + np; i++) {
        float *x = i < n ? &sm->params[i] : &P[i - n];
        float gi = i < n ? g[i] : gP[i - n];
        float keep = *x, h = 1e-3f;
        *x = keep + h;
        double up = rn_distill_loss(d, teacher, b.tt, b.st, b.seeds, b.nb, NULL, NULL);
        *x = keep - h;
        double dn = rn_distill_loss(d, teacher, b.tt, b.st, b.seeds, b.nb, NULL, NULL);
        *x = keep;
        double fd = (up - dn) / (2.0 * h);
        if (fabs(gi - fd) > 2e-3 * (1 + fabs(fd))) {
            fprintf(stderr, "distill grad %zu: %g vs fd %g\n", i, gi, fd);
            bad++;
        }
        nonzero += gi != 0;
    }
    CHECK_EQ_INT(bad, 0);
    /* W, w, biases and P all receive gradient; v and the positions do not */
    CHECK(nonzero > (int)(DS * RN_PHI_SIMPLE_DIM(DS)));
    for (size_t i = sm->at.v; i < sm->at.v + sm->shape.phi; i++)
        CHECK(g[i] == 0);

    /* the bytes round trip: a restored distiller continues identically */
    struct rn_buf bytes = RN_BUF_INIT;
    rn_distiller_save(d, &bytes);
    struct rn_distiller *d2 =
        rn_distiller_create(make_learner(DS, 0), temb, semb, &dcfg, err, sizeof err);
    CHECK_EQ_INT(rn_distiller_load(d2, bytes.data, bytes.len), 0);
    CHECK_EQ_INT(rn_distiller_load(d2, bytes.data, bytes.len - 1), RN_ECORRUPT);
    CHECK_EQ_INT(rn_distill_update(d, teacher, b.tt, b.st, b.seeds, b.nb), 0);
    CHECK_EQ_INT(rn_distill_update(d2, teacher, b.tt, b.st, b.seeds, b.nb), 0);
    const struct rn_model *m1 = rn_learner_model(rn_distiller_student(d));
    const struct rn_model *m2 = rn_learner_model(rn_distiller_student(d2));
    CHECK(memcmp(m1->params, m2->params, m1->at.n * sizeof(float)) == 0);
    CHECK(memcmp(rn_distiller_projection(d), rn_distiller_projection(d2), np * sizeof(float)) == 0);
    rn_buf_free(&bytes);
    rn_distiller_destroy(d2);
    free(g);
    free(gP);
    free_sbatch(&b);
    rn_distiller_destroy(d);
    rn_learner_destroy(teacher);
}

/* Held-out disagreement: the KL between the two models' softmaxes over all
 * items, averaged over the batch's states. */
static double heldout_kl(struct rn_learner *teacher, struct rn_learner *student,
                         const struct sbatch *b)
{
    static float Et[ITEMS * DT], Es[ITEMS * DS];
    static uint64_t ids[ITEMS];
    for (int i = 0; i < ITEMS; i++)
        ids[i] = rn_embed_id(temb, (size_t)i);
    rn_embed_rows(temb, ids, ITEMS, Et);
    rn_embed_rows(semb, ids, ITEMS, Es);
    double sum = 0;
    for (uint32_t k = 0; k < b->nb; k++) {
        float at[ITEMS], as[ITEMS];
        rn_model_advantages(rn_learner_model(teacher), b->tt[k].phi, Et, ids, ITEMS, at);
        rn_model_advantages(rn_learner_model(student), b->st[k].phi, Es, ids, ITEMS, as);
        sum += rn_distill_kl(at, as, NULL, ITEMS, 1.0, NULL);
    }
    return sum / b->nb;
}

static void test_student_learns(void)
{
    /* A teacher the student can match exactly: it ignores the item dimensions
     * the student's table lacks (rows 2, 3 of W and w; the columns of φ's
     * mean and decayed sum over them), so what is left to learn is the rest. */
    struct rn_learner *teacher = make_learner(DT, 1);
    struct rn_model *tm = (struct rn_model *)rn_learner_model(teacher);
    uint32_t ft = tm->shape.phi;
    for (uint32_t r = 0; r < DT; r++)
        for (uint32_t c = 0; c < ft; c++)
            if (r >= DS || c == 2 || c == 3 || c == 6 || c == 7)
                tm->params[tm->at.W + r * ft + c] = 0;
    tm->params[tm->at.w + 2] = tm->params[tm->at.w + 3] = 0;
    struct sbatch train, test;
    /* the log shows only a quarter of the items; recall explores them all */
    make_sbatch(&train, 400, teacher, ITEMS / 4);
    make_sbatch(&test, 200, teacher, ITEMS / 4);
    double kl_distilled = 0, kl_td = 0, kl_start = 0;
    for (int distil = 0; distil < 2; distil++) {
        struct rn_distill_cfg c = dcfg;
        c.recall = 20;
        c.top = 3;
        if (!distil) c.kl_weight = c.hint_weight = 0; /* the student's TD loss alone */
        char err[256];
        struct rn_distiller *d =
            rn_distiller_create(make_learner(DS, 0), temb, semb, &c, err, sizeof err);
        CHECK(d != NULL);
        if (!d) exit(1);
        kl_start = heldout_kl(teacher, rn_distiller_student(d), &test);
        for (int epoch = 0; epoch < 30; epoch++)
            for (uint32_t k = 0; k + 8 <= train.nb; k += 8)
                CHECK(rn_distill_update(d, teacher, train.tt + k, train.st + k, train.seeds + k,
                                        8) == 0);
        double kl = heldout_kl(teacher, rn_distiller_student(d), &test);
        if (distil)
            kl_distilled = kl;
        else
            kl_td = kl;
        rn_distiller_destroy(d);
    }
    printf("held-out KL(teacher || student): start %.4f, TD only %.4f, distilled %.4f\n", kl_start,
           kl_td, kl_distilled);
    CHECK(kl_distilled < 0.1 * kl_start);
    CHECK(kl_distilled < kl_td);
    free_sbatch(&train);
    free_sbatch(&test);
    rn_learner_destroy(teacher);
}

/* Five items along (1, 1, 0, 0)/√2 at t = −2..2 plus e3 · s with Σ s = Σ t s = 0:
 * the first component is that direction (variance 2.5), the second e3 (0.025). */
static void test_embed_reduce(void)
{
    char in[128], out[128], err[256];
    snprintf(in, sizeof in, "%s/pca-in.txt", dir);
    snprintf(out, sizeof out, "%s/pca-out.txt", dir);
    CHECK(mkdir(dir, 0700) == 0);
    FILE *f = fopen(in, "w");
    CHECK(f != NULL);
    if (!f) return;
    const double t[5] = {-2, -1, 0, 1, 2}, sv[5] = {0.1, -0.2, 0, 0.2, -0.1};
    for (int i = 0; i < 5; i++)
        fprintf(f, "i%d %.9f %.9f %.9f 0\n", i, t[i] / sqrt(2.0), t[i] / sqrt(2.0), sv[i]);
    fclose(f);
    double kept = 0;
    CHECK_EQ_INT(rn_embed_reduce(in, 1, out, &kept, err, sizeof err), 0);
    CHECK(close_to(kept, 2.5 / 2.525, 1e-6));
    struct rn_embed *r = rn_embed_load(out, err, sizeof err);
    CHECK(r && rn_embed_dim(r) == 1 && rn_embed_count(r) == 5);
    for (int i = 0; r && i < 5; i++) {
        char name[8];
        snprintf(name, sizeof name, "i%d", i);
        const float *v = rn_embed_get(r, rn_hash64(name, strlen(name)));
        CHECK(v && fabs(v[0] - t[i]) < 1e-5); /* sign: the larger entry positive */
    }
    rn_embed_destroy(r);
    CHECK_EQ_INT(rn_embed_reduce(in, 2, out, &kept, err, sizeof err), 0);
    CHECK(close_to(kept, 1.0, 1e-9));
    CHECK(rn_embed_reduce(in, 5, out, NULL, err, sizeof err) < 0);
    CHECK_STR_CONTAINS(err, "cannot reduce 5 items of dimension 4 to 5");
    unlink(in);
    unlink(out);
    rmdir(dir);
}

int main(void)
{
    rn_rand_seed(&rng, 15, 3);
    test_kl_by_hand();
    test_kl_gradient();
    test_hint();
    test_confidence();
    test_filter();
    make_tables();
    test_distill_gradient();
    test_student_learns();
    test_embed_reduce();
    char err[256];
    struct rn_learner *wrong = make_learner(DT, 0); /* not taken on failure */
    CHECK(rn_distiller_create(wrong, temb, semb, &dcfg, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "dim 4");
    rn_learner_destroy(wrong);
    rn_embed_destroy(temb);
    rn_embed_destroy(semb);
    return rn_test_summary();
}
