/*
 * bench_learner.c — learner throughput: rn_learner_update (the dueling TD step of
 * value_advantage_learner) on synthetic transitions, in transitions per CPU-second, for the
 * side-by-side comparison with PyTorch in bench/learner_torch.py (bench/run_learner.sh).
 *
 *   build/bench_learner gen --out FILE [--transitions 8192] [--seed 7]
 *   build/bench_learner run --data FILE [--updates 20000] [--curve FILE] [--params FILE]
 *
 * `gen` writes the data both sides read: a little-endian raw file (below), D = 64, F = 2D + 2
 * (the simple φ), 10 items per transition drawn from a pool of 2,000 items with 64-d
 * embeddings, positions 0..9, 10 % of items clicked (reward 1, a fifth of them also paid:
 * reward 6), 5 % of transitions terminal. Deterministic for a seed (splitmix64).
 *
 *   "RNLBENCH" u32 N, D, F, L, H, P
 *   f32 phi[N][F], phi_next[N][F], E[N][L][D]
 *   u64 items[N][L]   u32 pos[N][L]   f32 reward[N][L]   u8 clicked[N][L]   u8 done[N]
 *
 * `run` learns from a zero model, mini-batches of 32 taken in file order (wrapping around),
 * with the value_advantage_learner's defaults: Adam, learning rate 0.01, γ = 0.9, L2 1e-6 on
 * v, W, w, gradient-norm clip 10, target refresh every 200 updates, H = 65536 buckets, 16
 * positions. It prints the updates' CPU time (getrusage, user + sys, of the loop only) and
 * transitions per CPU-second; --curve writes each update's loss (one per line), --params the
 * final parameters as raw f32 (v | W | w | b | c) for the agreement check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "rn_model.h"

#define BL_D 64u
#define BL_L 10u
#define BL_H 65536u
#define BL_P 16u
#define BL_POOL 2000u
#define BL_BATCH 32u

struct bl_data {
    uint32_t n, d, f, l, h, p;
    float *phi, *phi_next, *E, *reward;
    uint64_t *items;
    uint32_t *pos;
    uint8_t *clicked, *done;
};

static uint64_t bl_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double bl_unif(uint64_t *s)
{
    return (double)(bl_next(s) >> 11) * 0x1.0p-53;
}

static double bl_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void bl_write(FILE *f, const void *p, size_t n)
{
    if (fwrite(p, 1, n, f) != n) {
        perror("bench_learner: write");
        exit(1);
    }
}

static void bl_read(FILE *f, void *p, size_t n)
{
    if (fread(p, 1, n, f) != n) {
        fprintf(stderr, "bench_learner: short data file\n");
        exit(1);
    }
}

/* φ as the simple features would look: a mean embedding, a decayed sum, 1, a fill fraction. */
static void bl_phi(uint64_t *s, const float *pool, float *phi)
{
    uint32_t d = BL_D, k = 1 + (uint32_t)(bl_unif(s) * 9);
    memset(phi, 0, RN_PHI_SIMPLE_DIM(d) * sizeof *phi);
    for (uint32_t j = 0; j < k; j++) {
        const float *e = pool + (size_t)(bl_next(s) % BL_POOL) * d;
        float w = (float)bl_unif(s);
        for (uint32_t i = 0; i < d; i++) {
            phi[i] += e[i] / (float)k;
            phi[d + i] += w * e[i];
        }
    }
    phi[2 * d] = 1.0f;
    phi[2 * d + 1] = (float)k / 10.0f;
}

static int bl_gen(const char *out, uint32_t n, uint64_t seed)
{
    uint32_t d = BL_D, f = RN_PHI_SIMPLE_DIM(BL_D), l = BL_L;
    uint64_t s = seed;
    float *pool = rn_xmalloc((size_t)BL_POOL * d * sizeof *pool);
    uint64_t *pool_id = rn_xmalloc(BL_POOL * sizeof *pool_id);
    for (uint32_t i = 0; i < BL_POOL; i++) {
        pool_id[i] = bl_next(&s);
        for (uint32_t k = 0; k < d; k++)
            pool[(size_t)i * d + k] = (float)((bl_unif(&s) * 2 - 1) * 0.25);
    }
    struct bl_data x = {.n = n, .d = d, .f = f, .l = l, .h = BL_H, .p = BL_P};
    x.phi = rn_xmalloc((size_t)n * f * sizeof *x.phi);
    x.phi_next = rn_xmalloc((size_t)n * f * sizeof *x.phi_next);
    x.E = rn_xmalloc((size_t)n * l * d * sizeof *x.E);
    x.items = rn_xmalloc((size_t)n * l * sizeof *x.items);
    x.pos = rn_xmalloc((size_t)n * l * sizeof *x.pos);
    x.reward = rn_xmalloc((size_t)n * l * sizeof *x.reward);
    x.clicked = rn_xmalloc((size_t)n * l);
    x.done = rn_xmalloc(n);
    for (uint32_t t = 0; t < n; t++) {
        bl_phi(&s, pool, x.phi + (size_t)t * f);
        bl_phi(&s, pool, x.phi_next + (size_t)t * f);
        x.done[t] = bl_unif(&s) < 0.05;
        for (uint32_t i = 0; i < l; i++) {
            size_t j = (size_t)t * l + i;
            uint32_t it = (uint32_t)(bl_next(&s) % BL_POOL);
            memcpy(x.E + j * d, pool + (size_t)it * d, d * sizeof *x.E);
            x.items[j] = pool_id[it];
            x.pos[j] = i;
            x.clicked[j] = bl_unif(&s) < 0.10;
            x.reward[j] = x.clicked[j] ? (bl_unif(&s) < 0.2 ? 6.0f : 1.0f) : 0.0f;
        }
    }
    FILE *fp = fopen(out, "wb");
    if (!fp) {
        perror(out);
        return 1;
    }
    bl_write(fp, "RNLBENCH", 8);
    uint32_t head[6] = {x.n, x.d, x.f, x.l, x.h, x.p};
    bl_write(fp, head, sizeof head);
    bl_write(fp, x.phi, (size_t)n * f * 4);
    bl_write(fp, x.phi_next, (size_t)n * f * 4);
    bl_write(fp, x.E, (size_t)n * l * d * 4);
    bl_write(fp, x.items, (size_t)n * l * 8);
    bl_write(fp, x.pos, (size_t)n * l * 4);
    bl_write(fp, x.reward, (size_t)n * l * 4);
    bl_write(fp, x.clicked, (size_t)n * l);
    bl_write(fp, x.done, n);
    if (fclose(fp)) {
        perror(out);
        return 1;
    }
    printf("wrote %u transitions (D=%u F=%u L=%u) to %s\n", n, d, f, l, out);
    free(pool);
    free(pool_id);
    free(x.phi);
    free(x.phi_next);
    free(x.E);
    free(x.items);
    free(x.pos);
    free(x.reward);
    free(x.clicked);
    free(x.done);
    return 0;
}

static void bl_load(const char *path, struct bl_data *x)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        exit(1);
    }
    char magic[8];
    uint32_t head[6];
    bl_read(fp, magic, 8);
    bl_read(fp, head, sizeof head);
    if (memcmp(magic, "RNLBENCH", 8)) {
        fprintf(stderr, "%s: not a bench_learner data file\n", path);
        exit(1);
    }
    x->n = head[0], x->d = head[1], x->f = head[2], x->l = head[3], x->h = head[4], x->p = head[5];
    size_t n = x->n, f = x->f, l = x->l, d = x->d;
    x->phi = rn_xmalloc(n * f * 4);
    x->phi_next = rn_xmalloc(n * f * 4);
    x->E = rn_xmalloc(n * l * d * 4);
    x->items = rn_xmalloc(n * l * 8);
    x->pos = rn_xmalloc(n * l * 4);
    x->reward = rn_xmalloc(n * l * 4);
    x->clicked = rn_xmalloc(n * l);
    x->done = rn_xmalloc(n);
    bl_read(fp, x->phi, n * f * 4);
    bl_read(fp, x->phi_next, n * f * 4);
    bl_read(fp, x->E, n * l * d * 4);
    bl_read(fp, x->items, n * l * 8);
    bl_read(fp, x->pos, n * l * 4);
    bl_read(fp, x->reward, n * l * 4);
    bl_read(fp, x->clicked, n * l);
    bl_read(fp, x->done, n);
    fclose(fp);
}

static int bl_run(const char *data, uint32_t updates, const char *curve, const char *params)
{
    struct bl_data x;
    bl_load(data, &x);
    struct rn_model_shape shape = {.dim = x.d, .phi = x.f, .buckets = x.h, .positions = x.p};
    struct rn_learn_cfg cfg = {.optimizer = RN_OPT_ADAM,
                               .learning_rate = 0.01,
                               .l2 = 1e-6,
                               .clip = 10,
                               .gamma = 0.9,
                               .target_every = 200,
                               .adam_beta1 = 0.9,
                               .adam_beta2 = 0.999,
                               .eps = 1e-8};
    char err[256];
    struct rn_learner *lr = rn_learner_create(rn_model_create(&shape), &cfg, err, sizeof err);
    if (!lr) {
        fprintf(stderr, "bench_learner: %s\n", err);
        return 1;
    }
    /* The transitions point into the loaded arrays: no copy in the timed loop. */
    struct rn_transition *t = rn_xcalloc(x.n, sizeof *t);
    for (uint32_t k = 0; k < x.n; k++) {
        size_t j = (size_t)k * x.l;
        t[k] = (struct rn_transition){x.phi + (size_t)k * x.f,
                                      x.phi_next + (size_t)k * x.f,
                                      x.E + j * x.d,
                                      x.items + j,
                                      x.pos + j,
                                      x.reward + j,
                                      x.clicked + j,
                                      x.l,
                                      x.done[k]};
    }
    double *loss = curve ? rn_xmalloc(updates * sizeof *loss) : NULL;
    uint32_t batches = x.n / BL_BATCH;
    double c0 = bl_cpu_s();
    int64_t w0 = rn_now_ns();
    for (uint32_t u = 0; u < updates; u++) {
        if (rn_learner_update(lr, t + (size_t)(u % batches) * BL_BATCH, BL_BATCH)) {
            fprintf(stderr, "bench_learner: update %u failed (non-finite gradient)\n", u);
            return 1;
        }
        if (loss) loss[u] = rn_learner_stats(lr)->last_loss;
    }
    double cpu = bl_cpu_s() - c0, wall = (double)(rn_now_ns() - w0) / 1e9;
    double tr = (double)updates * BL_BATCH;
    printf("runnel learner: %u updates of %u, %.3f CPU-s, %.3f s wall, %.0f transitions per "
           "CPU-second, %.1f us per update, last loss %.6g\n",
           updates, BL_BATCH, cpu, wall, tr / cpu, cpu / updates * 1e6,
           rn_learner_stats(lr)->last_loss);
    if (curve) {
        FILE *fp = fopen(curve, "w");
        for (uint32_t u = 0; fp && u < updates; u++)
            fprintf(fp, "%.9g\n", loss[u]);
        if (!fp || fclose(fp)) perror(curve);
    }
    if (params) {
        const struct rn_model *m = rn_learner_model(lr);
        FILE *fp = fopen(params, "wb");
        if (!fp || fwrite(m->params, sizeof(float), m->at.n, fp) != m->at.n || fclose(fp))
            perror(params);
    }
    free(loss);
    free(t);
    rn_learner_destroy(lr);
    free(x.phi);
    free(x.phi_next);
    free(x.E);
    free(x.items);
    free(x.pos);
    free(x.reward);
    free(x.clicked);
    free(x.done);
    return 0;
}

static void bl_usage(FILE *f)
{
    fputs("usage: bench_learner gen --out FILE [--transitions 8192] [--seed 7]\n"
          "       bench_learner run --data FILE [--updates 20000] [--curve FILE] [--params "
          "FILE]\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        bl_usage(stderr);
        return 2;
    }
    const char *out = NULL, *data = NULL, *curve = NULL, *params = NULL;
    uint32_t n = 8192, updates = 20000;
    uint64_t seed = 7;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            bl_usage(stdout);
            return 0;
        }
        if (!v) {
            bl_usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--curve"))
            curve = v;
        else if (!strcmp(a, "--params"))
            params = v;
        else if (!strcmp(a, "--transitions"))
            n = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--updates"))
            updates = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else {
            bl_usage(stderr);
            return 2;
        }
    }
    if (!strcmp(argv[1], "gen") && out && n >= BL_BATCH) return bl_gen(out, n, seed);
    if (!strcmp(argv[1], "run") && data && updates) return bl_run(data, updates, curve, params);
    bl_usage(stderr);
    return 2;
}
