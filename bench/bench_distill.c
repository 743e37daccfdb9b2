/*
 * bench_distill.c — what a distilled student saves (docs/evaluation.md, "Distillation
 * (DRL-Rec)"): per-request scoring latency and cost of the teacher's and the student's
 * models, and the learner's CPU time per transition with and without a student.
 *
 *   build/bench_distill --model NAME=STORE,TABLE [--model ...] [--requests 20000]
 *                       [--candidates 50] [--slate 5] [--rounds 5] [--train-student TABLE]
 *                       [--recall 100]
 *
 * Scoring: for each model (the current version of STORE, scored with its item table
 * TABLE) the same requests — a 10-item history and `candidates` items drawn from the
 * table (seeded) — go through what the inference operator does per request: the
 * candidates' rows, φ (the simple state features), A(s, i) for every candidate, and an
 * ε-greedy slate (ε 0.05). Models take turns round by round, so that they see the same
 * machine; per model it prints the median over rounds of p50 and p99 (ns per request), the
 * p50 of the model's own part (rn_model_advantages: u = Wφ + w and A for every candidate)
 * and that per candidate, the same scoring repeated in cache, CPU time of one block per
 * call ("hot": the arithmetic without clock reads, misses or time off the CPU), the
 * multiply-adds per request (D·F + K·D)
 * and the model's parameters and bytes.
 *
 * Training (--train-student TABLE, with the first --model as the teacher's shape and
 * table): mini-batches of 32 synthetic transitions (5 shown items, rewards 1 on a tenth)
 * through rn_learner_update alone, and through rn_distill_update (student on TABLE,
 * recall --recall, top 3) plus the same teacher update; CPU µs per transition (getrusage),
 * median over rounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "rn_distill.h"
#include "rn_model.h"
#include "rn_rand.h"

#define BD_MAX_MODELS 8
#define BD_HIST 10u

struct bd_model {
    const char *name, *store, *table;
    struct rn_model *m;
    struct rn_embed *emb;
    struct rn_phi_spec spec;
    double *p50, *p99, *m50, *hot;
};

static int64_t bd_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double bd_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static int bd_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int bd_cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bd_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bd_cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double bd_u(void *r)
{
    return rn_rand_uniform(r);
}

/* One round of `requests` requests through model b; the same seed gives the same
 * requests to every model. */
static void bd_score_round(struct bd_model *b, uint32_t requests, uint32_t k, uint32_t slate,
                           uint64_t seed, int64_t *ns, int64_t *model_ns, double *hot_ns)
{
    uint32_t d = b->m->shape.dim, f = b->m->shape.phi;
    size_t count = rn_embed_count(b->emb);
    float *E = malloc((size_t)k * d * sizeof *E), *phi = malloc(f * sizeof *phi);
    float *adv = malloc(k * sizeof *adv);
    uint64_t *ids = malloc(k * sizeof *ids);
    uint32_t *pick = malloc(slate * sizeof *pick);
    double *prop = malloc(slate * sizeof *prop), *scratch = malloc(2 * (size_t)k * sizeof(double));
    struct rn_hist hist[BD_HIST];
    struct rn_rand r, explore;
    rn_rand_seed(&r, seed, 1);
    rn_rand_seed(&explore, seed, 2);
    struct rn_explore_cfg x = {RN_EXPLORE_EPSILON, 0.05, 1.0};
    for (uint32_t q = 0; q < requests; q++) {
        for (uint32_t h = 0; h < BD_HIST; h++) {
            hist[h].item_id = rn_embed_id(b->emb, rn_rand_below(&r, count));
            hist[h].ts = 1000 * (int64_t)h;
        }
        for (uint32_t i = 0; i < k; i++)
            ids[i] = rn_embed_id(b->emb, rn_rand_below(&r, count));
        double sp;
        int64_t t0 = bd_now_ns();
        rn_embed_rows(b->emb, ids, k, E);
        rn_phi_compute(&b->spec, b->emb, hist, BD_HIST, 20000, phi, NULL);
        int64_t t1 = bd_now_ns();
        rn_model_advantages(b->m, phi, E, ids, k, adv);
        int64_t t2 = bd_now_ns();
        rn_slate_pick(adv, k, slate, &x, bd_u, &explore, pick, prop, &sp, scratch);
        ns[q] = bd_now_ns() - t0;
        model_ns[q] = t2 - t1;
    }
    /* the model's arithmetic alone, in cache: the last request's scoring, again and again,
     * as one block of CPU time (no clock reads in between; time off the CPU not counted) */
    double c0 = bd_cpu_s();
    for (uint32_t q = 0; q < requests; q++)
        rn_model_advantages(b->m, phi, E, ids, k, adv);
    *hot_ns = (bd_cpu_s() - c0) * 1e9 / requests;
    free(E);
    free(phi);
    free(adv);
    free(ids);
    free(pick);
    free(prop);
    free(scratch);
}

/* Synthetic mini-batches over a table (φ from random histories; 5 shown items). */
struct bd_batch {
    struct rn_transition t[32];
    float *phi, *E, *r;
    uint64_t *ids;
    uint32_t *pos;
    uint8_t *clicked;
};

static void bd_batch_make(struct bd_batch *b, const struct rn_embed *emb, const uint64_t *items,
                          const uint64_t *hist_items, const uint8_t *clicked)
{
    uint32_t d = rn_embed_dim(emb), f = RN_PHI_SIMPLE_DIM(d);
    b->phi = malloc(32 * (size_t)f * sizeof *b->phi);
    b->E = malloc(32 * 5 * (size_t)d * sizeof *b->E);
    b->r = malloc(32 * 5 * sizeof *b->r);
    b->ids = malloc(32 * 5 * sizeof *b->ids);
    b->pos = malloc(32 * 5 * sizeof *b->pos);
    b->clicked = malloc(32 * 5);
    for (uint32_t k = 0; k < 32; k++) {
        struct rn_hist h[BD_HIST];
        for (uint32_t j = 0; j < BD_HIST; j++)
            h[j] = (struct rn_hist){hist_items[k * BD_HIST + j], 1000 * (int64_t)j};
        rn_phi_simple(emb, BD_HIST, 1800e3, h, BD_HIST, 20000, b->phi + (size_t)k * f);
        for (uint32_t i = 0; i < 5; i++) {
            b->ids[k * 5 + i] = items[k * 5 + i];
            b->pos[k * 5 + i] = i;
            b->clicked[k * 5 + i] = clicked[k * 5 + i];
            b->r[k * 5 + i] = clicked[k * 5 + i] ? 1.0f : 0.0f;
        }
        rn_embed_rows(emb, b->ids + k * 5, 5, b->E + (size_t)k * 5 * d);
        b->t[k] = (struct rn_transition){b->phi + (size_t)k * f,
                                         b->phi + (size_t)k * f,
                                         b->E + (size_t)k * 5 * d,
                                         b->ids + k * 5,
                                         b->pos + k * 5,
                                         b->r + k * 5,
                                         b->clicked + k * 5,
                                         5,
                                         k % 20 == 0};
    }
}

static void bd_batch_free(struct bd_batch *b)
{
    free(b->phi);
    free(b->E);
    free(b->r);
    free(b->ids);
    free(b->pos);
    free(b->clicked);
}

static struct rn_learner *bd_learner(uint32_t d)
{
    struct rn_model_shape sh = {.dim = d, .phi = RN_PHI_SIMPLE_DIM(d), .buckets = 65536, .positions = 16};
    struct rn_learn_cfg lc = {RN_OPT_ADAM, 0.003, 1e-6, 10, 0.5, 200, 0.9, 0.999, 1e-8, 0, RN_OBJ_TD};
    char err[256];
    struct rn_learner *l = rn_learner_create(rn_model_create(&sh), &lc, err, sizeof err);
    if (!l) {
        fprintf(stderr, "bench_distill: %s\n", err);
        exit(1);
    }
    return l;
}

/* CPU µs per transition of `batches` mini-batches: the teacher alone, and with the
 * student distilling beside it; median over rounds. */
static void bd_train(const struct bd_model *t, const char *student_table, int rounds,
                     uint32_t recall)
{
    char err[512];
    struct rn_embed *semb = rn_embed_load(student_table, err, sizeof err);
    if (!semb) {
        fprintf(stderr, "bench_distill: %s\n", err);
        exit(1);
    }
    enum { NBATCH = 64 };
    size_t count = rn_embed_count(t->emb);
    struct rn_rand r;
    rn_rand_seed(&r, 7, 3);
    static struct bd_batch tb[NBATCH], sb[NBATCH];
    uint64_t seeds[NBATCH][32];
    for (int k = 0; k < NBATCH; k++) {
        uint64_t items[160], hist[32 * BD_HIST];
        uint8_t clicked[160];
        for (int i = 0; i < 160; i++) {
            items[i] = rn_embed_id(t->emb, rn_rand_below(&r, count));
            clicked[i] = rn_rand_uniform(&r) < 0.1;
        }
        for (int i = 0; i < 32 * (int)BD_HIST; i++)
            hist[i] = rn_embed_id(t->emb, rn_rand_below(&r, count));
        for (int i = 0; i < 32; i++)
            seeds[k][i] = rn_rand_next(&r);
        bd_batch_make(&tb[k], t->emb, items, hist, clicked);
        bd_batch_make(&sb[k], semb, items, hist, clicked);
    }
    double *alone = calloc((size_t)rounds, sizeof(double));
    double *with = calloc((size_t)rounds, sizeof(double));
    double *small = calloc((size_t)rounds, sizeof(double));
    struct rn_distill_cfg dc = {recall, 3, 1.0, 1.0, 0.1, 10000, 0.003};
    for (int round = 0; round < rounds; round++) {
        struct rn_learner *teacher = bd_learner(rn_embed_dim(t->emb));
        double c0 = bd_cpu_s();
        for (int k = 0; k < NBATCH; k++)
            rn_learner_update(teacher, tb[k].t, 32);
        alone[round] = (bd_cpu_s() - c0) * 1e6 / (NBATCH * 32);
        rn_learner_destroy(teacher);

        teacher = bd_learner(rn_embed_dim(t->emb));
        struct rn_distiller *d =
            rn_distiller_create(bd_learner(rn_embed_dim(semb)), t->emb, semb, &dc, err, sizeof err);
        c0 = bd_cpu_s();
        for (int k = 0; k < NBATCH; k++) {
            rn_distill_update(d, teacher, tb[k].t, sb[k].t, seeds[k], 32);
            rn_learner_update(teacher, tb[k].t, 32);
        }
        with[round] = (bd_cpu_s() - c0) * 1e6 / (NBATCH * 32);
        rn_distiller_destroy(d);
        rn_learner_destroy(teacher);

        struct rn_learner *s = bd_learner(rn_embed_dim(semb));
        c0 = bd_cpu_s();
        for (int k = 0; k < NBATCH; k++)
            rn_learner_update(s, sb[k].t, 32);
        small[round] = (bd_cpu_s() - c0) * 1e6 / (NBATCH * 32);
        rn_learner_destroy(s);
    }
    printf("training, CPU us per transition (median of %d rounds, %d mini-batches of 32):\n",
           rounds, NBATCH);
    printf("  teacher alone (D=%u)            %8.2f\n", rn_embed_dim(t->emb),
           bd_median(alone, rounds));
    printf("  teacher + distilled student (d=%u, recall %u) %8.2f\n", rn_embed_dim(semb), recall,
           bd_median(with, rounds));
    printf("  small learner alone (d=%u)       %8.2f\n", rn_embed_dim(semb),
           bd_median(small, rounds));
    for (int k = 0; k < NBATCH; k++) {
        bd_batch_free(&tb[k]);
        bd_batch_free(&sb[k]);
    }
    free(alone);
    free(with);
    free(small);
    rn_embed_destroy(semb);
}

int main(int argc, char **argv)
{
    struct bd_model models[BD_MAX_MODELS];
    int n = 0, rounds = 5;
    uint32_t requests = 20000, k = 50, slate = 5, recall = 100;
    const char *train_student = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--model") == 0 && a && n < BD_MAX_MODELS) {
            char *spec = strdup(a), *eq = strchr(spec, '='), *comma = eq ? strchr(eq, ',') : NULL;
            if (!eq || !comma) {
                fprintf(stderr, "bench_distill: --model wants NAME=STORE,TABLE, not '%s'\n", a);
                return 2;
            }
            *eq = *comma = 0;
            models[n++] =
                (struct bd_model){spec, eq + 1, comma + 1, NULL, NULL, {0}, NULL, NULL, NULL, NULL};
            i++;
        } else if (strcmp(argv[i], "--requests") == 0 && a) {
            requests = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--candidates") == 0 && a) {
            k = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--slate") == 0 && a) {
            slate = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--rounds") == 0 && a) {
            rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--recall") == 0 && a) {
            recall = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--train-student") == 0 && a) {
            train_student = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_distill --model NAME=STORE,TABLE ... [--requests N] "
                            "[--candidates K] [--slate L] [--rounds R] [--train-student TABLE] "
                            "[--recall N]\n");
            return 2;
        }
    }
    if (!n || !requests || !k || slate > k || rounds < 1) {
        fprintf(stderr, "bench_distill: at least one --model; requests, candidates, rounds > 0, "
                        "slate <= candidates\n");
        return 2;
    }
    char err[512];
    for (int j = 0; j < n; j++) {
        struct bd_model *b = &models[j];
        int64_t id;
        if (rn_store_current(b->store, &id, err, sizeof err) ||
            !(b->m = rn_store_load(b->store, id, err, sizeof err)) ||
            !(b->emb = rn_embed_load(b->table, err, sizeof err)) ||
            rn_phi_spec_open(&b->spec, BD_HIST, 1800e3, NULL, b->emb, err, sizeof err)) {
            fprintf(stderr, "bench_distill: %s: %s\n", b->name, err);
            return 1;
        }
        if (b->m->shape.dim != rn_embed_dim(b->emb) ||
            b->m->shape.phi != rn_phi_dim(&b->spec, b->emb)) {
            fprintf(stderr, "bench_distill: %s: the model (dim %u, phi %u) does not fit %s\n",
                    b->name, b->m->shape.dim, b->m->shape.phi, b->table);
            return 1;
        }
        b->p50 = calloc((size_t)rounds, sizeof(double));
        b->p99 = calloc((size_t)rounds, sizeof(double));
        b->m50 = calloc((size_t)rounds, sizeof(double));
        b->hot = calloc((size_t)rounds, sizeof(double));
    }
    int64_t *ns = malloc(requests * sizeof *ns), *mns = malloc(requests * sizeof *mns);
    for (int round = 0; round < rounds; round++)
        for (int j = 0; j < n; j++) {
            bd_score_round(&models[j], requests, k, slate, 1000 + (uint64_t)round, ns, mns,
                           &models[j].hot[round]);
            qsort(ns, requests, sizeof *ns, bd_cmp_i64);
            qsort(mns, requests, sizeof *mns, bd_cmp_i64);
            models[j].m50[round] = (double)mns[requests / 2];
            models[j].p50[round] = (double)ns[requests / 2];
            models[j].p99[round] = (double)ns[(size_t)(requests * 0.99)];
        }
    printf("scoring %u candidates, slate %u, %u requests x %d rounds (median of rounds):\n", k,
           slate, requests, rounds);
    printf("  %-10s %4s %4s %9s %9s %12s %13s %12s %9s %9s %9s\n", "model", "D", "F", "p50 ns",
           "p99 ns", "model p50 ns", "model ns/item", "model hot ns", "MACs/req", "params",
           "bytes");
    for (int j = 0; j < n; j++) {
        struct bd_model *b = &models[j];
        uint32_t d = b->m->shape.dim, f = b->m->shape.phi;
        double p50 = bd_median(b->p50, rounds), p99 = bd_median(b->p99, rounds);
        double m50 = bd_median(b->m50, rounds), hot = bd_median(b->hot, rounds);
        printf("  %-10s %4u %4u %9.0f %9.0f %12.0f %13.1f %12.0f %9u %9zu %9zu\n", b->name, d, f,
               p50, p99, m50, m50 / k, hot, d * f + k * d, b->m->at.n, b->m->at.n * sizeof(float));
    }
    if (train_student) bd_train(&models[0], train_student, rounds, recall);
    for (int j = 0; j < n; j++) {
        rn_model_destroy(models[j].m);
        rn_phi_spec_close(&models[j].spec);
        rn_embed_destroy(models[j].emb);
        free(models[j].p50);
        free(models[j].p99);
        free(models[j].m50);
        free(models[j].hot);
        free((char *)models[j].name);
    }
    free(ns);
    free(mns);
    return 0;
}
