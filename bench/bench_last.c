/*
 * bench_last.c — what LAST (rn_last_search) adds to the scoring of one request,
 * side by side with the scoring alone.
 *
 *   build/bench_last [--candidates 50] [--dim 16] [--slate 5] [--requests 20000] [--rounds 5]
 *
 * A random dueling-Q model and a random evaluator (rn_model_create, D = dim, F = 2D + 2,
 * 65536 item buckets, 16 positions), `candidates` random item vectors and a random φ per
 * request. Each configuration — the model alone (rn_model_advantages, what inference does
 * without LAST), then LAST with (offsets × steps) = 2 × 1, 8 × 1 (inference's default),
 * 8 × 3 and 32 × 1 on top — is timed over `requests` requests per round with
 * clock_gettime around each one; it prints the median over rounds of each round's median
 * and p99 (µs per request), and the median's ratio to the model alone.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rn_last.h"
#include "rn_rand.h"

static int64_t bl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int bl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bl_pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, bl_cmp);
    return v[(size_t)((double)(n - 1) * p)];
}

static void bl_fill(struct rn_rand *r, float *p, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((rn_rand_uniform(r) - 0.5) * scale);
}

int main(int argc, char **argv)
{
    uint32_t k = 50, d = 16, l = 5, requests = 20000, rounds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        uint32_t v = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--candidates"))
            k = v;
        else if (!strcmp(argv[i], "--dim"))
            d = v;
        else if (!strcmp(argv[i], "--slate"))
            l = v;
        else if (!strcmp(argv[i], "--requests"))
            requests = v;
        else if (!strcmp(argv[i], "--rounds"))
            rounds = v;
        else {
            fprintf(stderr, "bench_last: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!k || !d || !l || l > k || !requests || !rounds) {
        fprintf(stderr, "bench_last: need 0 < slate <= candidates, dim, requests, rounds > 0\n");
        return 2;
    }
    uint32_t f = 2 * d + 2;
    struct rn_model_shape sh = {.dim = d, .phi = f, .buckets = 65536, .positions = 16};
    struct rn_model *m = rn_model_create(&sh), *ev = rn_model_create(&sh);
    struct rn_rand r;
    rn_rand_seed(&r, 42, 0);
    bl_fill(&r, m->params, m->at.n, 0.5);
    bl_fill(&r, ev->params, ev->at.n, 0.5);
    for (uint32_t p = 0; p < sh.positions; p++)
        ev->params[ev->at.c + p] = 1.0f / (1.0f + (float)p);
    float *E = malloc((size_t)k * d * sizeof *E), *phi = malloc(f * sizeof *phi),
          *s = malloc(k * sizeof *s);
    uint64_t *ids = malloc(k * sizeof *ids);
    double *lat = malloc(requests * sizeof *lat), *p50 = malloc(rounds * sizeof *p50),
           *p99 = malloc(rounds * sizeof *p99);
    struct rn_last_scratch *x = rn_last_scratch_create();
    static const struct {
        uint32_t candidates, steps;
    } cfgs[] = {{0, 0}, {2, 1}, {8, 1}, {8, 3}, {32, 1}};
    double base = 0;
    printf("K = %u candidates, L = %u, D = %u, F = %u; µs per request, median over %u rounds of "
           "%u requests\n",
           k, l, d, f, rounds, requests);
    printf("%-22s %10s %10s %8s %10s\n", "configuration", "p50", "p99", "ratio", "changed");
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        struct rn_last_cfg lc = {cfgs[c].candidates, cfgs[c].steps, 0.1, 1.0, INT64_MAX};
        uint64_t changed = 0, searched = 0;
        for (uint32_t round = 0; round < rounds; round++) {
            for (uint32_t q = 0; q < requests; q++) {
                bl_fill(&r, E, (size_t)k * d, 1.0);
                bl_fill(&r, phi, f, 1.0);
                for (uint32_t i = 0; i < k; i++)
                    ids[i] = rn_rand_next(&r);
                int64_t t0 = bl_now_ns();
                rn_model_advantages(m, phi, E, ids, k, s);
                if (lc.candidates) {
                    struct rn_last_stats st;
                    if (rn_last_search(m, ev, phi, E, ids, k, l, &lc, x, s, &st) == 0) {
                        searched++;
                        changed += st.changed != 0;
                    }
                }
                lat[q] = (double)(bl_now_ns() - t0) / 1e3;
            }
            p99[round] = bl_pct(lat, requests, 0.99);
            p50[round] = bl_pct(lat, requests, 0.5);
        }
        double a = bl_pct(p50, rounds, 0.5), b = bl_pct(p99, rounds, 0.5);
        if (!c) base = a;
        char name[64];
        if (lc.candidates)
            snprintf(name, sizeof name, "LAST %u x %u", cfgs[c].candidates, cfgs[c].steps);
        else
            snprintf(name, sizeof name, "model alone");
        char ch[32] = "-";
        if (searched)
            snprintf(ch, sizeof ch, "%.1f %%", 100.0 * (double)changed / (double)searched);
        printf("%-22s %10.2f %10.2f %7.2fx %10s\n", name, a, b, a / base, ch);
    }
    rn_last_scratch_destroy(x);
    rn_model_destroy(m);
    rn_model_destroy(ev);
    free(E);
    free(phi);
    free(s);
    free(ids);
    free(lat);
    free(p50);
    free(p99);
    return 0;
}
