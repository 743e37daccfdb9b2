/*
 * test_phi.c — rn_phi_compute (runtime/rn_phi.c), the one φ of the learner,
 * inference, the simulator and `runnel evaluate`:
 *
 *   simple      without a network it is rn_phi_simple, bit for bit, for
 *               empty, short and longer-than-`history` histories
 *   network     with one it is rn_statenet_forward on inputs built here by
 *               hand from the definition (the last k items found in the
 *               table, their time-decayed mean from the closed form, the hour
 *               and fill context): full, short, empty histories, items
 *               missing from the table, the `history` window
 *   context     with C request-context values the simple φ is 2D+2+C: the
 *               simple φ unchanged, then the values (NaN and absent as 0);
 *               a state network refuses them
 *   open        rn_phi_spec_open loads a file and refuses one that does not
 *               fit (dimension, context, history shorter than k), naming it
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

#define D 4
#define HOUR 3600000LL

static char err[1024];

static uint64_t id(const char *name)
{
    return rn_hash64(name, strlen(name));
}

/* φ from the definition: H, longterm (closed form, in double) and ctx, then
 * the network's forward pass. `history` items at most, the last k of them. */
static void by_hand(const struct rn_statenet *n, const struct rn_embed *emb, uint32_t history,
                    const struct rn_hist *h, uint32_t len, int64_t now, float *out)
{
    const float *found[64];
    int64_t ts[64];
    uint32_t nf = 0;
    for (uint32_t i = len > history ? len - history : 0; i < len; i++) {
        const float *e = rn_embed_get(emb, h[i].item_id);
        if (e) found[nf] = e, ts[nf++] = h[i].ts;
    }
    uint32_t k = rn_statenet_history(n), used = nf < k ? nf : k;
    float H[64 * D], lt[D], ctx[3];
    for (uint32_t r = 0; r < used; r++)
        memcpy(H + r * D, found[nf - used + r], sizeof(float) * D);
    double w = 0, s[D] = {0};
    for (uint32_t i = 0; i < nf; i++) {
        double wi = exp2(-(double)(now - ts[i]) / rn_statenet_half_life_ms(n));
        w += wi;
        for (int d = 0; d < D; d++)
            s[d] += wi * found[i][d];
    }
    for (int d = 0; d < D; d++)
        lt[d] = w > 0 ? (float)(s[d] / w) : 0.0f;
    double hour = (double)((now / HOUR) % 24);
    ctx[0] = (float)sin(2 * M_PI * hour / 24);
    ctx[1] = (float)cos(2 * M_PI * hour / 24);
    ctx[2] = (float)used / (float)k;
    rn_statenet_forward(n, H, used, lt, ctx, out);
}

static float max_diff(const float *a, const float *b, uint32_t n)
{
    float m = 0;
    for (uint32_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

static struct rn_embed *make_table(char *path)
{
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *text = "i1 1 0 0 0\ni2 0 2 0 0\ni3 0 0 3 0\ni4 0 0 0 4\n"
                       "i5 0.5 -1 0.25 2\ni6 -1 1 -1 1\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    struct rn_embed *e = rn_embed_load(path, err, sizeof err);
    CHECK(e != NULL);
    return e;
}

/* Seven items over a day, oldest first; "zz" is not in the table. */
static const int64_t t0 = 1700000000000LL;
static struct rn_hist hist[7];

static void make_hist(void)
{
    const char *names[7] = {"i1", "i2", "zz", "i3", "i4", "i5", "i6"};
    for (int i = 0; i < 7; i++)
        hist[i] = (struct rn_hist){id(names[i]), t0 + i * 3 * HOUR + 17};
}

static void test_simple(const struct rn_embed *emb)
{
    struct rn_phi_spec spec;
    CHECK_EQ_INT(rn_phi_spec_open(&spec, 4, 1800000.0, NULL, emb, err, sizeof err), 0);
    CHECK(spec.net == NULL);
    CHECK_EQ_INT(rn_phi_dim(&spec, emb), RN_PHI_SIMPLE_DIM(D));
    CHECK_EQ_INT(rn_phi_scratch_size(&spec, emb), 0);
    int64_t now = t0 + 20 * HOUR;
    for (uint32_t n = 0; n <= 7; n++) {
        float a[RN_PHI_SIMPLE_DIM(D)], b[RN_PHI_SIMPLE_DIM(D)];
        rn_phi_compute(&spec, emb, hist, n, now, a, NULL);
        rn_phi_simple(emb, 4, 1800000.0, hist, n, now, b);
        CHECK(memcmp(a, b, sizeof a) == 0);
    }
    rn_phi_spec_close(&spec);
}

static void test_context(const struct rn_embed *emb)
{
    struct rn_phi_spec spec;
    CHECK_EQ_INT(rn_phi_spec_open(&spec, 4, 1800000.0, NULL, emb, err, sizeof err), 0);
    CHECK_EQ_INT(rn_phi_spec_set_context(&spec, 0, err, sizeof err), 0);
    CHECK_EQ_INT(rn_phi_dim(&spec, emb), RN_PHI_SIMPLE_DIM(D));
    CHECK_EQ_INT(rn_phi_spec_set_context(&spec, 3, err, sizeof err), 0);
    CHECK_EQ_INT(rn_phi_dim(&spec, emb), RN_PHI_SIMPLE_DIM(D) + 3);
    int64_t now = t0 + 20 * HOUR;
    float a[RN_PHI_SIMPLE_DIM(D) + 3], b[RN_PHI_SIMPLE_DIM(D)];
    const double cv[3] = {22, NAN, 1.5};
    rn_phi_compute_ctx(&spec, emb, hist, 7, now, cv, 3, a, NULL);
    rn_phi_simple(emb, 4, 1800000.0, hist, 7, now, b);
    CHECK(memcmp(a, b, sizeof b) == 0);
    CHECK(a[RN_PHI_SIMPLE_DIM(D)] == 22.0f);
    CHECK(a[RN_PHI_SIMPLE_DIM(D) + 1] == 0.0f);
    CHECK(a[RN_PHI_SIMPLE_DIM(D) + 2] == 1.5f);
    /* fewer values than the spec's, or none: the rest are 0 */
    rn_phi_compute_ctx(&spec, emb, hist, 7, now, cv, 1, a, NULL);
    CHECK(a[RN_PHI_SIMPLE_DIM(D)] == 22.0f && a[RN_PHI_SIMPLE_DIM(D) + 2] == 0.0f);
    rn_phi_compute(&spec, emb, hist, 7, now, a, NULL);
    CHECK(a[RN_PHI_SIMPLE_DIM(D)] == 0.0f);
    rn_phi_spec_close(&spec);
    /* a state network takes only its own context */
    struct rn_statenet *n = rn__statenet_create(3, D, 3, 2, 3, 3, 5, err, sizeof err);
    struct rn_phi_spec ns = {.history = 6, .half_life_ms = 1800000.0, .net = n};
    CHECK(rn_phi_spec_set_context(&ns, 2, err, sizeof err) < 0);
    CHECK_STR_CONTAINS(err, "context_fields with a state network");
    CHECK_EQ_INT(rn_phi_spec_set_context(&ns, 0, err, sizeof err), 0);
    CHECK_EQ_INT(rn_phi_dim(&ns, emb), 5);
    rn_statenet_destroy(n);
}

static void test_network(const struct rn_embed *emb)
{
    struct rn_statenet *n = rn__statenet_create(3, D, 3, 2, 3, 3, 5, err, sizeof err);
    CHECK(n != NULL);
    if (!n) return;
    struct rn_rand r;
    rn_rand_seed(&r, 7, 0);
    for (size_t i = 0; i < n->at.n; i++)
        n->params[i] = (float)((rn_rand_uniform(&r) * 2 - 1) * 0.5);
    struct rn_phi_spec spec = {.history = 6, .half_life_ms = 1800000.0, .net = n};
    CHECK_EQ_INT(rn_phi_dim(&spec, emb), 5);
    void *scratch = malloc(rn_phi_scratch_size(&spec, emb));
    /* 0..7 items (none, fewer than k found, the missing one, more than
     * `history`), at several hours of the day. */
    for (uint32_t len = 0; len <= 7; len++)
        for (int64_t at = 19; at <= 43; at += 8) {
            int64_t now = t0 + at * HOUR + 123;
            float a[5], b[5];
            rn_phi_compute(&spec, emb, hist, len, now, a, scratch);
            by_hand(n, emb, 6, hist, len, now, b);
            float diff = max_diff(a, b, 5);
            CHECK(diff < 1e-6f);
            if (diff >= 1e-6f)
                fprintf(stderr, "len %u at %lld: diff %g\n", len, (long long)at, diff);
        }
    /* The window: `history` 3 sees only i4, i5, i6. */
    spec.history = 3;
    float a[5], b[5], c[5];
    int64_t now = t0 + 30 * HOUR;
    rn_phi_compute(&spec, emb, hist, 7, now, a, scratch);
    by_hand(n, emb, 3, hist, 7, now, b);
    CHECK(max_diff(a, b, 5) < 1e-6f);
    by_hand(n, emb, 6, hist, 7, now, c);
    CHECK(max_diff(a, c, 5) > 1e-4f); /* the long-term vector differs */
    free(scratch);
    rn_statenet_destroy(n);
}

static void test_open(const struct rn_embed *emb, const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/net.safetensors", dir);
    struct rn_phi_spec spec;
    /* A network that fits: its output size is φ's; the half-life comes from the file. */
    struct rn_statenet *n = rn__statenet_create(3, D, 2, 2, 3, 3, 6, err, sizeof err);
    const char *mk[] = {"half_life_ms"}, *mv[] = {"3600000"};
    CHECK_EQ_INT(rn__statenet_write(path, n, NULL, mk, mv, 1, err, sizeof err), 0);
    CHECK_EQ_INT(rn_phi_spec_open(&spec, 10, 1800000.0, path, emb, err, sizeof err), 0);
    CHECK(spec.net != NULL);
    CHECK_EQ_INT(rn_phi_dim(&spec, emb), 6);
    CHECK(spec.net && rn_statenet_half_life_ms(spec.net) == 3600000.0);
    rn_phi_spec_close(&spec);
    CHECK(spec.net == NULL);
    /* history shorter than k */
    CHECK(rn_phi_spec_open(&spec, 2, 1800000.0, path, emb, err, sizeof err) < 0);
    CHECK_STR_CONTAINS(err, "net.safetensors");
    CHECK_STR_CONTAINS(err, "raise `history` to at least 3");
    rn_statenet_destroy(n);
    /* another item dimension */
    n = rn__statenet_create(3, D + 1, 2, 2, 3, 3, 6, err, sizeof err);
    CHECK_EQ_INT(rn__statenet_write(path, n, NULL, NULL, NULL, 0, err, sizeof err), 0);
    CHECK(rn_phi_spec_open(&spec, 10, 1800000.0, path, emb, err, sizeof err) < 0);
    CHECK_STR_CONTAINS(err, "item dimension 5, but the embedding table's is 4");
    rn_statenet_destroy(n);
    /* other context features */
    n = rn__statenet_create(3, D, 2, 2, 3, 2, 6, err, sizeof err);
    CHECK_EQ_INT(rn__statenet_write(path, n, NULL, NULL, NULL, 0, err, sizeof err), 0);
    CHECK(rn_phi_spec_open(&spec, 10, 1800000.0, path, emb, err, sizeof err) < 0);
    CHECK_STR_CONTAINS(err, "with 2 context features; runnel builds 3");
    rn_statenet_destroy(n);
    /* a missing file */
    CHECK(rn_phi_spec_open(&spec, 10, 1800000.0, "/nonexistent/net.safetensors", emb, err,
                           sizeof err) < 0);
    CHECK_STR_CONTAINS(err, "/nonexistent/net.safetensors");
    unlink(path);
}

int main(void)
{
    char dir[] = "/tmp/rn-phi-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/emb-XXXXXX", dir);
    struct rn_embed *emb = make_table(path);
    make_hist();
    if (emb) {
        test_simple(emb);
        test_context(emb);
        test_network(emb);
        test_open(emb, dir);
    }
    rn_embed_destroy(emb);
    unlink(path);
    rmdir(dir);
    return rn_test_summary();
}
