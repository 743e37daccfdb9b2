/*
 * test_statenet.c — the state network (runtime/rn_statenet.c):
 *
 *   forward        against a naive reference written here from the definition
 *                  (explicit zero-padded k x D matrix, loops), on random weights,
 *                  for empty, short, full and longer-than-k histories
 *   files          write + load gives the same φ; loading a file with a wrong
 *                  shape, missing tensor or metadata names what is wrong
 *   gradient       the next-click loss's hand-written gradient (all parameters
 *                  and the projection P) against central finite differences
 */
#include "rn_test.h"

#include "rn_model.h"
#include "rn_rand.h"
#include "rn_statenet_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[1024];

static void randomize(float *p, size_t n, struct rn_rand *r, float scale)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((rn_rand_uniform(r) * 2 - 1) * scale);
}

/* φ from the definition, in double, with the padded matrix built explicitly. */
static void reference(const struct rn_statenet *n, const float *H, uint32_t n_hist,
                      const float *longterm, const float *ctx, double *out)
{
    uint32_t k = n->k, D = n->D, C = n->C;
    double *X = calloc((size_t)k * D, sizeof *X);
    uint32_t used = n_hist < k ? n_hist : k;
    for (uint32_t r = 0; r < used; r++)
        for (uint32_t d = 0; d < D; d++)
            X[(size_t)(k - used + r) * D + d] = H[(size_t)(n_hist - used + r) * D + d];
    double *z = calloc(n->Z, sizeof *z);
    const float *p = n->params;
    for (int conv = 0; conv < 2; conv++) {
        uint32_t w = conv ? n->w2 : n->w1;
        const float *W = p + (conv ? n->at.W2 : n->at.W1), *b = p + (conv ? n->at.b2 : n->at.b1);
        for (uint32_t c = 0; c < C; c++) {
            double best = 0; /* max over t of ReLU(y) */
            for (uint32_t t = 0; t + w <= k; t++) {
                double y = b[c];
                for (uint32_t j = 0; j < w; j++)
                    for (uint32_t d = 0; d < D; d++)
                        y += (double)W[((size_t)c * w + j) * D + d] * X[(size_t)(t + j) * D + d];
                if (y > best) best = y;
            }
            z[conv * C + c] = best;
        }
    }
    for (uint32_t i = 0; i < n->n_ctx; i++)
        z[2 * C + i] = ctx[i];
    for (uint32_t d = 0; d < D; d++)
        z[2 * C + n->n_ctx + d] = longterm[d];
    for (uint32_t s = 0; s < n->S; s++) {
        double a = p[n->at.bd + s];
        for (uint32_t i = 0; i < n->Z; i++)
            a += (double)p[n->at.Wd + (size_t)s * n->Z + i] * z[i];
        out[s] = tanh(a);
    }
    free(z);
    free(X);
}

static struct rn_statenet *random_net(uint32_t k, uint32_t D, uint32_t C, uint32_t w1, uint32_t w2,
                                      uint32_t n_ctx, uint32_t S, uint64_t seed)
{
    struct rn_statenet *n = rn__statenet_create(k, D, C, w1, w2, n_ctx, S, err, sizeof err);
    if (!n) return NULL;
    struct rn_rand r;
    rn_rand_seed(&r, seed, 0);
    randomize(n->params, n->at.n, &r, 0.5f);
    return n;
}

static void test_forward(void)
{
    struct rn_statenet *n = random_net(6, 5, 4, 2, 3, 3, 7, 11);
    CHECK(n != NULL);
    if (!n) return;
    CHECK_EQ_INT(rn_statenet_out_dim(n), 7);
    struct rn_rand r;
    rn_rand_seed(&r, 12, 0);
    float H[10 * 5], lt[5], ctx[3], out[7];
    randomize(H, 50, &r, 1.0f);
    randomize(lt, 5, &r, 1.0f);
    randomize(ctx, 3, &r, 1.0f);
    static const uint32_t lens[] = {0, 1, 2, 4, 6, 10};
    double worst = 0;
    for (size_t i = 0; i < RN_ARRAY_LEN(lens); i++) {
        double ref[7];
        reference(n, H, lens[i], lt, ctx, ref);
        rn_statenet_forward(n, H, lens[i], lt, ctx, out);
        for (int s = 0; s < 7; s++)
            worst = fmax(worst, fabs(ref[s] - out[s]));
    }
    if (worst > 1e-5) fprintf(stderr, "forward: worst difference %g\n", worst);
    CHECK(worst <= 1e-5);
    /* Only the last k rows count: a longer history with the same tail gives the same φ. */
    float a[7], b[7];
    rn_statenet_forward(n, H + 4 * 5, 6, lt, ctx, a);
    rn_statenet_forward(n, H, 10, lt, ctx, b);
    CHECK(memcmp(a, b, sizeof a) == 0);

    /* No context features at all. */
    struct rn_statenet *n0 = random_net(3, 4, 2, 3, 1, 0, 2, 5);
    CHECK(n0 != NULL);
    if (n0) {
        double ref[2];
        float o[2];
        reference(n0, H, 3, lt, NULL, ref);
        rn_statenet_forward(n0, H, 3, lt, NULL, o);
        CHECK(fabs(ref[0] - o[0]) < 1e-5 && fabs(ref[1] - o[1]) < 1e-5);
    }
    rn_statenet_destroy(n0);

    /* Unusable shapes. */
    CHECK(rn__statenet_create(2, 4, 2, 3, 2, 0, 2, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "shorter than a convolution");
    CHECK(rn__statenet_create(4, 0, 2, 2, 2, 0, 2, err, sizeof err) == NULL);
    rn_statenet_destroy(n);
}

static void test_files(void)
{
    char dir[] = "/tmp/rn-sn-XXXXXX";
    if (!mkdtemp(dir)) return;
    char path[256], path2[256];
    snprintf(path, sizeof path, "%s/net.safetensors", dir);
    snprintf(path2, sizeof path2, "%s/bad.safetensors", dir);
    struct rn_statenet *n = random_net(5, 4, 3, 2, 3, 2, 6, 21);
    float P[6 * 4];
    for (int i = 0; i < 24; i++)
        P[i] = (float)i;
    const char *mk[] = {"note"}, *mv[] = {"test"};
    CHECK_EQ_INT(rn__statenet_write(path, n, P, mk, mv, 1, err, sizeof err), 0);
    struct rn_statenet *m = rn_statenet_load(path, err, sizeof err);
    CHECK(m != NULL);
    if (!m) fprintf(stderr, "load: %s\n", err);
    if (m) {
        CHECK_EQ_INT(rn_statenet_history(m), 5);
        CHECK_EQ_INT(rn_statenet_dim(m), 4);
        CHECK_EQ_INT(rn_statenet_context(m), 2);
        CHECK_EQ_INT(m->at.n, n->at.n);
        CHECK(memcmp(m->params, n->params, n->at.n * sizeof(float)) == 0);
        float H[20], lt[4] = {1, 2, 3, 4}, ctx[2] = {0.5f, -1}, a[6], b[6];
        for (int i = 0; i < 20; i++)
            H[i] = (float)sin(i);
        rn_statenet_forward(n, H, 5, lt, ctx, a);
        rn_statenet_forward(m, H, 5, lt, ctx, b);
        CHECK(memcmp(a, b, sizeof a) == 0);
    }
    rn_statenet_destroy(m);

    /* A dense layer of the wrong width: the message names the tensor and both shapes. */
    struct rn_st_file *f = rn_st_read(path, err, sizeof err);
    if (f) {
        struct rn_tensor t[6];
        for (int i = 0; i < 6; i++)
            t[i] = f->tensors[i];
        t[4].shape[1] -= 1; /* dense.weight [6, 11] instead of [6, 12] */
        const char *const *mkf = (const char *const *)f->meta_keys;
        const char *const *mvf = (const char *const *)f->meta_vals;
        CHECK_EQ_INT(rn_st_write(path2, t, 6, mkf, mvf, f->n_meta, err, sizeof err), 0);
        CHECK(rn_statenet_load(path2, err, sizeof err) == NULL);
        CHECK_STR_CONTAINS(err, "'dense.weight' has shape [6, 11], expected [6, 12]");
        CHECK_STR_CONTAINS(err, "bad.safetensors");
        t[4].shape[1] += 1;
        t[3].shape[0] = 2; /* conv2.bias [2] */
        CHECK_EQ_INT(rn_st_write(path2, t, 6, mkf, mvf, f->n_meta, err, sizeof err), 0);
        CHECK(rn_statenet_load(path2, err, sizeof err) == NULL);
        CHECK_STR_CONTAINS(err, "'conv2.bias' has shape [2], expected [3]");
        t[3].shape[0] = 3;
        CHECK_EQ_INT(rn_st_write(path2, t, 5, mkf, mvf, f->n_meta, err, sizeof err), 0);
        CHECK(rn_statenet_load(path2, err, sizeof err) == NULL);
        CHECK_STR_CONTAINS(err, "'dense.bias' is missing");
        CHECK_EQ_INT(rn_st_write(path2, t, 6, mkf, mvf, 1, err, sizeof err), 0);
        CHECK(rn_statenet_load(path2, err, sizeof err) == NULL);
        CHECK_STR_CONTAINS(err, "metadata 'dim' is missing");
    }
    rn_st_free(f);
    rn_statenet_destroy(n);
    unlink(path);
    unlink(path2);
    rmdir(dir);
}

static void test_gradient(void)
{
    const uint32_t k = 5, D = 4, C = 3, S = 4, n_ctx = 2, m = 5;
    struct rn_statenet *n = random_net(k, D, C, 2, 3, n_ctx, S, 31);
    if (!n) return;
    struct rn_rand r;
    rn_rand_seed(&r, 32, 0);
    float H[5 * 4], lt[4], ctx[2], E[5 * 4], P[4 * 4];
    float y[5] = {0, 0.5f, 0, 0.5f, 0};
    randomize(H, 20, &r, 1.0f);
    randomize(lt, 4, &r, 1.0f);
    randomize(ctx, 2, &r, 1.0f);
    randomize(E, 20, &r, 1.0f);
    randomize(P, 16, &r, 1.0f);
    /* Two cases: a full history, and a short one (zero padding in the windows). */
    for (int cse = 0; cse < 2; cse++) {
        struct rn__sn_example ex = {H, cse ? 2u : k, lt, ctx, E, y, m};
        float *g = calloc(n->at.n, sizeof *g), gP[16] = {0};
        double loss = rn__statenet_loss(n, P, &ex, g, gP, NULL);
        CHECK(loss > 0 && isfinite(loss));
        int bad = 0, nonzero[4] = {0}; /* conv1, conv2, dense, P */
        const float eps = 1e-3f;
        for (size_t i = 0; i < n->at.n + 16; i++) {
            float *x = i < n->at.n ? &n->params[i] : &P[i - n->at.n];
            float an = i < n->at.n ? g[i] : gP[i - n->at.n];
            float save = *x;
            *x = save + eps;
            double lp = rn__statenet_loss(n, P, &ex, NULL, NULL, NULL);
            *x = save - eps;
            double lm = rn__statenet_loss(n, P, &ex, NULL, NULL, NULL);
            *x = save;
            double fd = (lp - lm) / (2 * eps);
            if (fabs(fd - an) > 2e-3 + 2e-2 * fabs(fd)) {
                bad++;
                fprintf(stderr, "case %d param %zu: analytic %g, numeric %g\n", cse, i, an, fd);
            }
            int block = i < n->at.W2 ? 0 : i < n->at.Wd ? 1 : i < n->at.n ? 2 : 3;
            if (fabs(an) > 1e-4) nonzero[block]++;
        }
        CHECK_EQ_INT(bad, 0);
        /* Every part gets a gradient (the test is not vacuous); with a short
         * history a filter may peak in the padding, where weights get none. */
        printf("case %d: nonzero gradients conv1 %d conv2 %d dense %d P %d\n", cse, nonzero[0],
               nonzero[1], nonzero[2], nonzero[3]);
        CHECK(cse ? nonzero[0] + nonzero[1] >= 4 : nonzero[0] >= 4 && nonzero[1] >= 4);
        CHECK(nonzero[2] >= 10 && nonzero[3] >= 10);
        free(g);
    }
    rn_statenet_destroy(n);
}

int main(void)
{
    test_forward();
    test_files();
    test_gradient();
    return rn_test_summary();
}
