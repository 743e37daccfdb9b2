/*
 * test_last_serving.c — LAST in the `inference` operator, over HTTP, in-process:
 * a job that serves a hand-made dueling-Q version with `last_evaluator` naming
 * a store with a hand-made evaluator.
 *
 *   exact     a fresh user's slate (explore: none) is the top L of the scores
 *             rn_last_search leaves for that request — the evaluator-best list
 *             of the search — and differs from the model's own top L for some
 *             requests
 *   no leak   four client threads send 100 requests each on two serving
 *             threads; the served model and evaluator (the process's feeds of
 *             the two stores, as the operator holds them) stay byte-identical
 *             to their files, and every answer is still the exact one
 *   account   GET /api/v1/inference counts every search, the changed lists
 *             and the added latency percentiles
 * Every wait polls with a deadline.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "rn_job.h"
#include "rn_last.h"
#include "rn_model.h"
#include "rn_operator.h"
#include "rn_rand.h"
#include "rn_test.h"
#include "rn_test_job.h"
#include "rn_test_net.h"

#define NITEMS 20
#define D 4
#define K 8
#define L 3
#define HISTORY 10
#define HALF_LIFE_MS 1800000.0
#define THREADS 4
#define PER_THREAD 100

static char dir[] = "/tmp/rn_test_last_serving_XXXXXX";
static char store[600], evstore[600], embpath[600], serve_addr[128];
static struct rn_embed *emb;
static struct rn_model *policy, *evaluator;
static const struct rn_last_cfg lcfg = {8, 2, 1.0, 1.0, (int64_t)10 * 1000000000};

static uint64_t hid(const char *s)
{
    return rn_hash64(s, strlen(s));
}

static int call(const char *method, const char *path, const char *body, char *out, size_t cap)
{
    return http_call(serve_addr, method, path, body, 10000, out, cap);
}

/* The candidates of request q: i(1 + (q + c) mod NITEMS). */
static void candidates(int q, char names[K][16])
{
    for (int c = 0; c < K; c++)
        snprintf(names[c], 16, "i%d", 1 + (q + c) % NITEMS);
}

/* The slate a fresh user gets for request q at ts with LAST (last = 1) or the
 * model alone (last = 0), explore none: indices into the candidates. Returns
 * whether LAST changed it, or -1 when the search failed. */
static int expected(int q, int64_t ts, int last, uint32_t slate[L])
{
    char names[K][16];
    candidates(q, names);
    uint64_t ids[K];
    float E[K * D], phi[RN_PHI_SIMPLE_DIM(D)], s[K];
    for (int c = 0; c < K; c++)
        ids[c] = hid(names[c]);
    rn_embed_rows(emb, ids, K, E);
    rn_phi_simple(emb, HISTORY, HALF_LIFE_MS, NULL, 0, ts, phi);
    rn_model_advantages(policy, phi, E, ids, K, s);
    int changed = 0;
    if (last) {
        struct rn_last_scratch *x = rn_last_scratch_create();
        struct rn_last_stats st;
        /* no CHECK here: the client threads call this, and the counters are not atomic */
        changed = rn_last_search(policy, evaluator, phi, E, ids, K, L, &lcfg, x, s, &st)
                      ? -1
                      : st.changed;
        rn_last_scratch_destroy(x);
    }
    static const struct rn_explore_cfg none = {RN_EXPLORE_NONE, 0, 0};
    double prop[L], sp, scratch[2 * K];
    rn_slate_pick(s, K, L, &none, NULL, NULL, slate, prop, &sp, scratch);
    return changed;
}

/* POSTs request q for a fresh user; 1 when the answer is the expected slate.
 * Adds 1 to *changed when LAST changes that slate. */
static int recommend(int q, int last, int *changed)
{
    char names[K][16], body[1024], out[4096];
    candidates(q, names);
    int64_t ts = 1700000000000 + q;
    int n = snprintf(body, sizeof body,
                     "{\"user\":\"u%d\",\"request\":\"r%d\",\"ts\":%" PRId64 ",\"candidates\":[", q,
                     q, ts);
    for (int c = 0; c < K; c++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s\"%s\"", c ? "," : "", names[c]);
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    if (call("POST", "/api/v1/recommend", body, out, sizeof out) != 200) return 0;
    uint32_t slate[L];
    int ch = expected(q, ts, last, slate);
    if (ch < 0) {
        fprintf(stderr, "request %d: rn_last_search failed\n", q);
        return 0;
    }
    *changed += ch;
    char want[256];
    snprintf(want, sizeof want, "\"items\":[\"%s\",\"%s\",\"%s\"]", names[slate[0]],
             names[slate[1]], names[slate[2]]);
    if (!strstr(out, want)) {
        fprintf(stderr, "request %d: want %s in %s\n", q, want, out);
        return 0;
    }
    return 1;
}

struct client {
    int first, ok, changed;
};

static void *client_loop(void *arg)
{
    struct client *c = arg;
    for (int i = 0; i < PER_THREAD; i++)
        c->ok += recommend(c->first + i, 1, &c->changed);
    return NULL;
}

/* The bytes the process's feed of `path` serves equal the version's file. */
static int feed_matches_file(const char *path, const struct rn_model *file)
{
    char err[512];
    struct rn_model_feed *f = rn_model_feed_acquire(path, 1000, err, sizeof err);
    if (!f) return 0;
    int slot = rn_model_feed_slot(f), same = 0;
    int64_t version = 0;
    const struct rn_model *m = rn_model_feed_enter(f, slot, &version);
    if (m && version == 1 && m->at.n == file->at.n)
        same = memcmp(m->params, file->params, m->at.n * sizeof(float)) == 0;
    rn_model_feed_exit(f, slot);
    rn_model_feed_slot_free(f, slot);
    rn_model_feed_release(f);
    return same;
}

static double jnum(yajl_val v, const char *a, const char *b)
{
    const char *p3[] = {a, b, NULL}, *p2[] = {a, NULL};
    yajl_val x = yajl_tree_get(v, b ? p3 : p2, yajl_t_number);
    return x ? YAJL_GET_DOUBLE(x) : -1;
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    rn_operators_init();
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(evstore, sizeof evstore, "%s/evaluator", dir);
    snprintf(embpath, sizeof embpath, "%s/emb.txt", dir);
    struct rn_rand r;
    rn_rand_seed(&r, 5, 0);
    FILE *f = fopen(embpath, "w");
    for (int i = 1; i <= NITEMS; i++) {
        fprintf(f, "i%d", i);
        for (int d = 0; d < D; d++)
            fprintf(f, " %.4f", rn_rand_uniform(&r) - 0.5);
        fputc('\n', f);
    }
    fclose(f);
    char err[1024];
    emb = rn_embed_load(embpath, err, sizeof err);
    CHECK(emb != NULL);
    if (!emb) return rn_test_summary();
    /* The policy favours i1 > i2 > i3 > ... by bias; the evaluator values the
     * middle of the catalogue and the top slots most. */
    struct rn_model_shape sh = {.dim = D, .phi = RN_PHI_SIMPLE_DIM(D), .buckets = 4096, .positions = 5};
    policy = rn_model_create(&sh);
    evaluator = rn_model_create(&sh);
    for (size_t i = policy->at.W; i < policy->at.b; i++) {
        policy->params[i] = (float)((rn_rand_uniform(&r) - 0.5) * 0.2);
        evaluator->params[i] = (float)((rn_rand_uniform(&r) - 0.5) * 0.2);
    }
    for (int i = 1; i <= NITEMS; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "i%d", i);
        policy->params[policy->at.b + hid(nm) % sh.buckets] += (float)(NITEMS - i) * 0.15f;
        evaluator->params[evaluator->at.b + hid(nm) % sh.buckets] +=
            (float)(i % 7 == 3 || i % 7 == 4 ? 2.0 : 0.0);
    }
    for (uint32_t p = 0; p < sh.positions; p++)
        evaluator->params[evaluator->at.c + p] = 1.0f / (1.0f + (float)p);
    struct rn_model_version v = {1, 1000, 60000, 10, 100, 0.5, 0.25};
    CHECK_EQ_INT(rn_store_publish(store, policy, &v, err, sizeof err), 0);
    CHECK_EQ_INT(rn_store_publish(evstore, evaluator, &v, err, sizeof err), 0);

    char path[700];
    snprintf(path, sizeof path, "%s/empty.jsonl", dir);
    f = fopen(path, "w");
    fclose(f);
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    f = fopen(path, "w");
    fprintf(f,
            "job: last\nparallelism: 1\n"
            "serve: { listen: 127.0.0.1:0, threads: 2 }\n"
            "sources: { logs: { type: file, path: \"%s/empty.jsonl\", follow: true } }\n"
            "operators:\n"
            "  - { id: collect, op: log_collector, from: logs }\n"
            "  - { id: infer, op: inference, from: collect, embeddings: \"%s\",\n"
            "      model_store: \"%s\", slate: %d, explore: none, history: %d, half_life: 30m,\n"
            "      poll_interval: 20ms, last_evaluator: \"%s\", last_candidates: %u,\n"
            "      last_steps: %u, last_step_size: %g, last_temperature: %g,\n"
            "      last_budget: 10000000 }\n"
            "sinks: { out: { type: file, path: \"%s/out.jsonl\", from: infer } }\n",
            dir, embpath, store, L, HISTORY, evstore, lcfg.candidates, lcfg.steps, lcfg.step_size,
            lcfg.temperature, dir);
    fclose(f);
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *j = rn_job_load(path, &opt, err, sizeof err);
    if (!j) fprintf(stderr, "%s\n", err);
    CHECK(j != NULL);
    if (!j) return rn_test_summary();
    struct runner run = {.job = j};
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &run);
    int64_t deadline = now_ms() + 30000;
    while (!rn_job_serve_address(j)[0] && now_ms() < deadline)
        usleep(5000);
    snprintf(serve_addr, sizeof serve_addr, "%s", rn_job_serve_address(j));
    char out[4096];
    /* until the route is there and version 1 of both stores is loaded */
    while (now_ms() < deadline) {
        int st = call("GET", "/api/v1/inference", NULL, out, sizeof out);
        if (st == 200 && strstr(out, "\"model_version\":1,") &&
            strstr(out, "\"evaluator_version\":1,"))
            break;
        usleep(10000);
    }
    CHECK_STR_CONTAINS(out, "\"evaluator_version\":1,");

    /* Exact slates, and LAST changes some of them (the case is built so). */
    int changed = 0, ok = 0;
    for (int q = 0; q < NITEMS; q++)
        ok += recommend(q, 1, &changed);
    CHECK_EQ_INT(ok, NITEMS);
    CHECK(changed > 0);

    /* Four clients at once on two serving threads. */
    pthread_t ct[THREADS];
    struct client cl[THREADS];
    for (int t = 0; t < THREADS; t++) {
        cl[t] = (struct client){1000 + t * PER_THREAD, 0, 0};
        pthread_create(&ct[t], NULL, client_loop, &cl[t]);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(ct[t], NULL);
        CHECK_EQ_INT(cl[t].ok, PER_THREAD);
        changed += cl[t].changed;
    }
    /* Nothing leaked into the served versions: byte-identical to the files. */
    struct rn_model *pf = rn_store_load(store, 1, err, sizeof err),
                    *ef = rn_store_load(evstore, 1, err, sizeof err);
    CHECK(pf && ef);
    CHECK(pf && memcmp(pf->params, policy->params, policy->at.n * sizeof(float)) == 0);
    CHECK(feed_matches_file(store, pf));
    CHECK(feed_matches_file(evstore, ef));
    rn_model_destroy(pf);
    rn_model_destroy(ef);

    /* The account. */
    CHECK_EQ_INT(call("GET", "/api/v1/inference", NULL, out, sizeof out), 200);
    yajl_val y = yajl_tree_parse(out, NULL, 0);
    CHECK(y != NULL);
    if (y) {
        int n = NITEMS + THREADS * PER_THREAD;
        CHECK_EQ_INT((int)jnum(y, "last", "searches"), n);
        CHECK_EQ_INT((int)jnum(y, "last", "changed"), changed);
        CHECK_EQ_INT((int)jnum(y, "last", "out_of_time"), 0);
        CHECK_EQ_INT((int)jnum(y, "last", "lists_tried"), n * (int)(lcfg.candidates * lcfg.steps));
        CHECK(jnum(y, "last", "added_latency_us") < 0); /* an object, not a number */
        const char *pp[] = {"last", "added_latency_us", "p99", NULL};
        yajl_val p99 = yajl_tree_get(y, pp, yajl_t_number);
        CHECK(p99 && YAJL_GET_DOUBLE(p99) > 0);
        yajl_tree_free(y);
    }
    rn_job_stop(j);
    pthread_join(th, NULL);
    CHECK_EQ_INT(run.rc, 0);
    rn_job_destroy(j);
    rn_model_destroy(policy);
    rn_model_destroy(evaluator);
    rn_embed_destroy(emb);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
