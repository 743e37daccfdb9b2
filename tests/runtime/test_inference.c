/*
 * test_inference.c — the `inference` operator end to end, in-process:
 * file source → log_collector → inference → file sink over a small log of
 * requests and clicks, against a model store holding hand-made versions.
 *
 *   stream     every request gets one impression whose items, propensities
 *              and model_version are exactly what rn_slate_pick gives for the
 *              published model (epsilon: the favoured items in the greedy
 *              slots, 1 − ε, explored ones ε / (K − L)); a request with too
 *              many candidates is rejected, not ranked
 *   parallel   the same log at parallelism 1 and 2 gives byte-identical
 *              impressions (softmax over history-dependent scores: slates are
 *              seeded per request, histories kept per user)
 *   serving    POST /api/v1/recommend (a new user's slate recomputed exactly),
 *              its 4xx answers with reasons (malformed JSON, missing user,
 *              empty candidates, unknown item, too many candidates: 413,
 *              wrong method: 405), GET /api/v1/recommendations/{user} (the
 *              latest slate; 404 for an unknown user), GET /api/v1/inference
 *   versions   a version published while the job runs is picked up; pinning
 *              an older one (rn_store_pin) makes the feed serve it (rollback);
 *              the status server's /api/v1/models endpoints list the store and
 *              pin, roll back and unpin it, and refuse a store the job does
 *              not use
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

#include "rn_http_int.h"
#include "rn_job.h"
#include "rn_model.h"
#include "rn_operator.h"
#include "rn_rand.h"
#include "rn_test.h"
#include "rn_test_job.h"
#include "rn_test_net.h"

#define NITEMS 20
#define D 4
#define NREQ 240
#define NUSERS 12
#define K 8
#define L 3
#define SEED 7
#define HALF_LIFE_MS 1800000.0
#define HISTORY 10

static char dir[] = "/tmp/rn_test_inference_XXXXXX";
static char store[600], embpath[600];
static uint32_t buckets;
static struct rn_embed *emb;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t hid(const char *s)
{
    return rn_hash64(s, strlen(s));
}

/* ---- the model store ------------------------------------------------------------------ */

/* Items whose hashed biases share no bucket, so that a bias favours exactly
 * the item it names. */
static uint32_t pick_buckets(void)
{
    for (uint32_t h = 4096;; h++) {
        int clash = 0;
        for (int a = 1; a <= NITEMS && !clash; a++)
            for (int b = a + 1; b <= NITEMS && !clash; b++) {
                char x[16], y[16];
                snprintf(x, sizeof x, "i%d", a);
                snprintf(y, sizeof y, "i%d", b);
                clash = hid(x) % h == hid(y) % h;
            }
        if (!clash) return h;
    }
}

/* A model favouring fav[0] > fav[1] > fav[2] by item bias (6, 4, 2), with
 * small random W and w (|effect| < 0.5) so that scores depend on the
 * user's history without reordering the favoured items. */
static struct rn_model *make_model(const char *const fav[3], uint64_t seed)
{
    struct rn_model_shape s = {
        .dim = D, .phi = RN_PHI_SIMPLE_DIM(D), .buckets = buckets, .positions = 5};
    struct rn_model *m = rn_model_create(&s);
    struct rn_rand r;
    rn_rand_seed(&r, seed, 0);
    for (size_t i = m->at.W; i < m->at.b; i++)
        m->params[i] = (float)((rn_rand_uniform(&r) - 0.5) * 0.02);
    for (int f = 0; f < 3; f++)
        m->params[m->at.b + hid(fav[f]) % buckets] = (float)(6 - 2 * f);
    return m;
}

static void publish(struct rn_model *m, int64_t id)
{
    struct rn_model_version v = {id, 1000 * id, 60000 * id, 10 * (uint64_t)id, 100, 0.5, 0.25};
    char err[512];
    int rc = rn_store_publish(store, m, &v, err, sizeof err);
    if (rc) fprintf(stderr, "publish: %s\n", err);
    CHECK_EQ_INT(rc, 0);
}

/* ---- the log ---------------------------------------------------------------------------- */

struct req {
    char name[16], user[16];
    int cand[K];
    int64_t ts;
};
static struct req reqs[NREQ];
static const char *const fav1[3] = {"i3", "i7", "i11"}, *const fav2[3] = {"i15", "i18", "i2"};

static void write_log(const char *path)
{
    struct rn_rand r;
    rn_rand_seed(&r, 11, 0);
    FILE *f = fopen(path, "w");
    int64_t ts = 1700000000000;
    for (int q = 0; q < NREQ; q++) {
        struct req *x = &reqs[q];
        snprintf(x->name, sizeof x->name, "r%d", q);
        snprintf(x->user, sizeof x->user, "u%d", (int)rn_rand_below(&r, NUSERS));
        /* the three favoured items and five others, shuffled */
        int pool[NITEMS], n = 0;
        for (int i = 1; i <= NITEMS; i++)
            if (i != 3 && i != 7 && i != 11) pool[n++] = i;
        x->cand[0] = 3, x->cand[1] = 7, x->cand[2] = 11;
        for (int c = 3; c < K; c++) {
            int p = (int)rn_rand_below(&r, (uint64_t)n);
            x->cand[c] = pool[p];
            pool[p] = pool[--n];
        }
        for (int c = K - 1; c > 0; c--) {
            int p = (int)rn_rand_below(&r, (uint64_t)c + 1), t = x->cand[c];
            x->cand[c] = x->cand[p];
            x->cand[p] = t;
        }
        x->ts = ts;
        fprintf(f,
                "{\"type\":\"request\",\"ts\":%" PRId64 ",\"request\":\"%s\",\"user\":\"%s\","
                "\"candidates\":[",
                ts, x->name, x->user);
        for (int c = 0; c < K; c++)
            fprintf(f, "%s\"i%d\"", c ? "," : "", x->cand[c]);
        fputs("]}\n", f);
        /* half the requests get a click on one candidate: the user's history */
        if (rn_rand_uniform(&r) < 0.5)
            fprintf(f,
                    "{\"type\":\"click\",\"ts\":%" PRId64 ",\"request\":\"%s\",\"user\":\"%s\","
                    "\"item\":\"i%d\"}\n",
                    ts + 5, x->name, x->user, x->cand[rn_rand_below(&r, K)]);
        ts += 1000;
    }
    /* too many candidates (max_candidates: 10): rejected */
    fprintf(f,
            "{\"type\":\"request\",\"ts\":%" PRId64 ",\"request\":\"big\",\"user\":\"u1\","
            "\"candidates\":[\"i1\",\"i2\",\"i3\",\"i4\",\"i5\",\"i6\",\"i7\",\"i8\",\"i9\","
            "\"i10\",\"i11\"]}\n",
            ts);
    fclose(f);
}

/* ---- running jobs ----------------------------------------------------------------------- */

static struct rn_job *load_job(int par, const char *explore, int serve, const char *out)
{
    char path[700], err[1024];
    snprintf(path, sizeof path, "%s/job-%s.yaml", dir, out);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "job: infer\nparallelism: %d\n%s"
            "sources: { logs: { type: file, path: \"%s/log.jsonl\", follow: %s } }\n"
            "operators:\n"
            "  - { id: collect, op: log_collector, from: logs }\n"
            "  - { id: infer, op: inference, from: collect, embeddings: \"%s\",\n"
            "      model_store: \"%s\", slate: %d, explore: %s, epsilon: 0.2, temperature: 1.0,\n"
            "      seed: %d, max_candidates: 10, poll_interval: 20ms, history: %d,\n"
            "      half_life: 30m }\n"
            "sinks: { out: { type: file, path: \"%s/%s.jsonl\", from: infer } }\n",
            par,
            serve ? "http: { listen: 127.0.0.1:0 }\nserve: { listen: 127.0.0.1:0, threads: 2 }\n"
                  : "",
            dir, serve ? "true" : "false", embpath, store, L, explore, SEED, HISTORY, dir, out);
    fclose(f);
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *j = rn_job_load(path, &opt, err, sizeof err);
    if (!j) fprintf(stderr, "%s\n", err);
    CHECK(j != NULL);
    return j;
}

static int run_bounded(int par, const char *explore, const char *out)
{
    struct rn_job *j = load_job(par, explore, 0, out);
    if (!j) return -1;
    char err[1024];
    int rc = rn_job_run(j, err, sizeof err);
    if (rc) fprintf(stderr, "run: %s\n", err);
    rn_job_destroy(j);
    return rc;
}

/* The output lines, sorted (parallel subtasks interleave them). */
static char **read_lines(const char *name, size_t *n)
{
    char path[700], line[8192];
    snprintf(path, sizeof path, "%s/%s.jsonl", dir, name);
    FILE *f = fopen(path, "r");
    char **v = NULL;
    *n = 0;
    while (f && fgets(line, sizeof line, f)) {
        v = realloc(v, (*n + 1) * sizeof *v);
        v[(*n)++] = strdup(line);
    }
    if (f) fclose(f);
    return v;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_lines(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static const char *jstr(yajl_val v, const char *key)
{
    const char *p[] = {key, NULL};
    yajl_val x = yajl_tree_get(v, p, yajl_t_string);
    return x ? YAJL_GET_STRING(x) : "";
}

static yajl_val jarr(yajl_val v, const char *key)
{
    const char *p[] = {key, NULL};
    return yajl_tree_get(v, p, yajl_t_array);
}

/* Element j of an array as a string ("" when it is not one). */
static const char *astr(yajl_val a, int j)
{
    const char *s = YAJL_GET_STRING(YAJL_GET_ARRAY(a)->values[j]);
    return s ? s : "";
}

static long long jint(yajl_val v, const char *key)
{
    const char *p[] = {key, NULL};
    yajl_val x = yajl_tree_get(v, p, yajl_t_number);
    return x && YAJL_IS_INTEGER(x) ? YAJL_GET_INTEGER(x) : -999;
}

/* ---- expected slates ---------------------------------------------------------------------- */

static double uni(void *r)
{
    return rn_rand_uniform(r);
}

/* The slate rn_slate_pick gives for these candidate names and scores, with
 * the operator's per-request stream. */
static void expect_slate(const float *scores, uint32_t k, uint32_t l, int mode, const char *request,
                         uint32_t *slate, double *prop)
{
    struct rn_explore_cfg x = {mode, 0.2, 1.0};
    struct rn_rand r;
    rn_rand_seed(&r, SEED, hid(request));
    double sp, scratch[64];
    CHECK_EQ_INT(rn_slate_pick(scores, k, l, &x, uni, &r, slate, prop, &sp, scratch), (int)l);
}

/* Scores of a user without history (φ of an empty history) under model m. */
static void fresh_scores(const struct rn_model *m, const char *const *names, uint32_t k, int64_t ts,
                         float *scores)
{
    float phi[RN_PHI_SIMPLE_DIM(D)], E[16 * D];
    uint64_t ids[16];
    for (uint32_t i = 0; i < k; i++)
        ids[i] = hid(names[i]);
    rn_phi_simple(emb, HISTORY, HALF_LIFE_MS, NULL, 0, ts, phi);
    rn_embed_rows(emb, ids, k, E);
    rn_model_advantages(m, phi, E, ids, k, scores);
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

static int call(const char *addr, const char *method, const char *path, const char *body, char *out,
                size_t cap)
{
    return http_call(addr, method, path, body, 5000, out, cap);
}

static const char *const hcand[K] = {"i1", "i15", "i3", "i18", "i7", "i2", "i11", "i20"};
static int hreq;

/* POSTs a recommendation for a fresh user; returns its model_version (or
 * -1) and, when m is given, checks the slate against the exact expectation. */
static long long recommend_fresh(const char *addr, const struct rn_model *m)
{
    char body[1024], name[32], user[32], out[4096];
    snprintf(name, sizeof name, "h%d", hreq);
    snprintf(user, sizeof user, "fresh%d", hreq++);
    int64_t ts = 1700000500000;
    int n = snprintf(body, sizeof body,
                     "{\"user\":\"%s\",\"request\":\"%s\",\"ts\":%" PRId64 ",\"candidates\":[",
                     user, name, ts);
    for (int c = 0; c < K; c++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s\"%s\"", c ? "," : "", hcand[c]);
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    if (call(addr, "POST", "/api/v1/recommend", body, out, sizeof out) != 200) return -1;
    yajl_val v = yajl_tree_parse(out, NULL, 0);
    long long version = v ? jint(v, "model_version") : -1;
    if (v && m) {
        float scores[K];
        uint32_t slate[L];
        double prop[L];
        fresh_scores(m, hcand, K, ts, scores);
        expect_slate(scores, K, L, RN_EXPLORE_SOFTMAX, name, slate, prop);
        yajl_val items = jarr(v, "items"), props = jarr(v, "propensities");
        int same =
            items && props && YAJL_GET_ARRAY(items)->len == L && YAJL_GET_ARRAY(props)->len == L;
        double sp = 1;
        for (int j = 0; same && j < L; j++) {
            same &= strcmp(astr(items, j), hcand[slate[j]]) == 0;
            same &= fabs(YAJL_GET_DOUBLE(YAJL_GET_ARRAY(props)->values[j]) - prop[j]) < 1e-12;
            sp *= prop[j];
        }
        const char *ps[] = {"slate_propensity", NULL};
        yajl_val spv = yajl_tree_get(v, ps, yajl_t_number);
        same &= spv && fabs(YAJL_GET_DOUBLE(spv) - sp) < 1e-12;
        if (!same) fprintf(stderr, "recommend %s: got %s", name, out);
        CHECK(same);
        /* GET /api/v1/recommendations/{user}: the slate just served */
        char path[128], got[4096];
        snprintf(path, sizeof path, "/api/v1/recommendations/%s", user);
        CHECK_EQ_INT(call(addr, "GET", path, NULL, got, sizeof got), 200);
        char want[256];
        snprintf(want, sizeof want, "\"items\":[\"%s\",\"%s\",\"%s\"],\"model_version\":%lld",
                 hcand[slate[0]], hcand[slate[1]], hcand[slate[2]], version);
        CHECK_STR_CONTAINS(got, want);
    }
    yajl_tree_free(v);
    return version;
}

/* Polls with fresh requests until the served model_version is `want`. */
static int wait_version(const char *addr, long long want)
{
    int64_t deadline = mono_ms() + 15000;
    long long v = -1;
    while (mono_ms() < deadline) {
        v = recommend_fresh(addr, NULL);
        if (v == want) return 1;
        usleep(10000);
    }
    fprintf(stderr, "model_version stayed %lld, want %lld\n", v, want);
    return 0;
}

/* ---- the checks ------------------------------------------------------------------------------ */

/* Request context over HTTP: with context_fields [hour], φ is the simple φ
 * and the body's context.hour; the slate is exactly the one computed here
 * from that φ, it changes with the hour, and a non-numeric hour is a 400. */
static void check_context(void)
{
    char cstore[700], path[700], err[1024];
    snprintf(cstore, sizeof cstore, "%s/ctxstore", dir);
    struct rn_model_shape sh = {
        .dim = D, .phi = RN_PHI_SIMPLE_DIM(D) + 1, .buckets = buckets, .positions = 5};
    struct rn_model *m = rn_model_create(&sh);
    struct rn_rand r;
    rn_rand_seed(&r, 11, 0);
    for (size_t i = m->at.W; i < m->at.b; i++)
        m->params[i] = (float)(rn_rand_uniform(&r) - 0.5);
    struct rn_model_version v = {1, 1000, 60000, 10, 100, 0.5, 0.25};
    CHECK_EQ_INT(rn_store_publish(cstore, m, &v, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/empty.jsonl", dir);
    FILE *f = fopen(path, "w");
    fclose(f);
    snprintf(path, sizeof path, "%s/job-ctx.yaml", dir);
    f = fopen(path, "w");
    fprintf(f,
            "job: infer-ctx\nparallelism: 1\n"
            "serve: { listen: 127.0.0.1:0, threads: 1 }\n"
            "sources: { logs: { type: file, path: \"%s/empty.jsonl\", follow: true } }\n"
            "operators:\n"
            "  - { id: collect, op: log_collector, from: logs, context_fields: [hour] }\n"
            "  - { id: infer, op: inference, from: collect, embeddings: \"%s\",\n"
            "      model_store: \"%s\", slate: %d, explore: none, seed: %d, history: %d,\n"
            "      half_life: 30m, poll_interval: 20ms, context_fields: [hour] }\n"
            "sinks: { out: { type: file, path: \"%s/ctx-out.jsonl\", from: infer } }\n",
            dir, embpath, cstore, L, SEED, HISTORY, dir);
    fclose(f);
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *j = rn_job_load(path, &opt, err, sizeof err);
    if (!j) fprintf(stderr, "%s\n", err);
    CHECK(j != NULL);
    if (!j) return;
    struct runner run = {.job = j};
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &run);
    int64_t deadline = mono_ms() + 30000;
    while (!rn_job_serve_address(j)[0] && mono_ms() < deadline) usleep(5000);
    char sv[128], out[4096], body[1024];
    snprintf(sv, sizeof sv, "%s", rn_job_serve_address(j));
    int64_t ts = 1700000500000;
    uint32_t slates[2][L];
    for (int h = 0; h < 2; h++) {
        double hour = h ? -9 : 9;
        int n = snprintf(body, sizeof body,
                         "{\"user\":\"cx%d\",\"request\":\"cr%d\",\"ts\":%" PRId64
                         ",\"context\":{\"page\":\"x\",\"hour\":%g},\"candidates\":[",
                         h, h, ts, hour);
        for (int c = 0; c < K; c++)
            n += snprintf(body + n, sizeof body - (size_t)n, "%s\"%s\"", c ? "," : "", hcand[c]);
        snprintf(body + n, sizeof body - (size_t)n, "]}");
        long long version = 0;
        while (mono_ms() < deadline) { /* until the route is there and the version loaded */
            int st = call(sv, "POST", "/api/v1/recommend", body, out, sizeof out);
            if (st == 404) { /* the server is up before the operator has opened */
                usleep(10000);
                continue;
            }
            if (st != 200) break;
            yajl_val y = yajl_tree_parse(out, NULL, 0);
            version = y ? jint(y, "model_version") : -1;
            yajl_tree_free(y);
            if (version == 1) break;
            usleep(10000);
        }
        CHECK_EQ_INT(version, 1);
        float phi[RN_PHI_SIMPLE_DIM(D) + 1], E[K * D], scores[K];
        uint64_t ids[K];
        for (uint32_t i = 0; i < K; i++) ids[i] = hid(hcand[i]);
        rn_phi_simple(emb, HISTORY, HALF_LIFE_MS, NULL, 0, ts, phi);
        phi[RN_PHI_SIMPLE_DIM(D)] = (float)hour;
        rn_embed_rows(emb, ids, K, E);
        rn_model_advantages(m, phi, E, ids, K, scores);
        double prop[L];
        char req[16];
        snprintf(req, sizeof req, "cr%d", h);
        expect_slate(scores, K, L, RN_EXPLORE_NONE, req, slates[h], prop);
        char want[256];
        snprintf(want, sizeof want, "\"items\":[\"%s\",\"%s\",\"%s\"]", hcand[slates[h][0]],
                 hcand[slates[h][1]], hcand[slates[h][2]]);
        CHECK_STR_CONTAINS(out, want);
    }
    CHECK(memcmp(slates[0], slates[1], sizeof slates[0]) != 0); /* the hour matters */
    CHECK_EQ_INT(call(sv, "POST", "/api/v1/recommend",
                      "{\"user\":\"x\",\"candidates\":[\"i1\"],\"context\":{\"hour\":\"9\"}}", out,
                      sizeof out),
                 400);
    CHECK_STR_CONTAINS(out, "context field 'hour' must be a number");
    CHECK_EQ_INT(call(sv, "POST", "/api/v1/recommend",
                      "{\"user\":\"x\",\"candidates\":[\"i1\"],\"context\":[9]}", out, sizeof out),
                 400);
    CHECK_STR_CONTAINS(out, "'context' must be an object");
    rn_job_stop(j);
    pthread_join(th, NULL);
    CHECK_EQ_INT(run.rc, 0);
    rn_job_destroy(j);
    rn_model_destroy(m);
}

/* Run 1: epsilon at parallelism 1; every impression exactly as expected. */
static void check_epsilon(void)
{
    CHECK_EQ_INT(run_bounded(1, "epsilon", "eps"), 0);
    size_t n;
    char **lines = read_lines("eps", &n);
    CHECK_EQ_INT(n, NREQ);
    int exact = 0, greedy = 0, explored = 0;
    for (size_t i = 0; i < n; i++) {
        yajl_val v = yajl_tree_parse(lines[i], NULL, 0);
        if (!v) continue;
        int q = atoi(jstr(v, "request") + 1);
        const struct req *x = &reqs[q];
        /* The greedy order is the favoured items' (biases 6, 4, 2 against
         * history terms below 0.5); exploration draws do not depend on the
         * other scores. */
        float scores[K];
        for (int c = 0; c < K; c++)
            scores[c] = x->cand[c] == 3    ? 6.f
                        : x->cand[c] == 7  ? 4.f
                        : x->cand[c] == 11 ? 2.f
                                           : 0.f;
        uint32_t slate[L];
        double prop[L];
        expect_slate(scores, K, L, RN_EXPLORE_EPSILON, x->name, slate, prop);
        yajl_val items = jarr(v, "items"), props = jarr(v, "propensities");
        int ok = strcmp(jstr(v, "type"), "impression") == 0 &&
                 strcmp(jstr(v, "user"), x->user) == 0 && jint(v, "ts") == x->ts &&
                 jint(v, "model_version") == 1 && items && props &&
                 YAJL_GET_ARRAY(items)->len == L && YAJL_GET_ARRAY(props)->len == L;
        for (int j = 0; ok && j < L; j++) {
            char want[16];
            snprintf(want, sizeof want, "i%d", x->cand[slate[j]]);
            const char *got = astr(items, j);
            double p = YAJL_GET_DOUBLE(YAJL_GET_ARRAY(props)->values[j]);
            ok &= strcmp(got, want) == 0 && p == prop[j];
            ok &= strcmp(got, fav1[j]) == 0 ? fabs(p - 0.8) < 1e-15 : fabs(p - 0.2 / 5) < 1e-15;
            greedy += strcmp(got, fav1[j]) == 0;
            explored += strcmp(got, fav1[j]) != 0;
        }
        if (!ok) fprintf(stderr, "unexpected impression: %s", lines[i]);
        exact += ok;
        yajl_tree_free(v);
    }
    CHECK_EQ_INT(exact, NREQ);
    /* about 80 % of the slots show the favoured items */
    CHECK(greedy > 0.7 * NREQ * L && explored > 0.1 * NREQ * L);
    free_lines(lines, n);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    rn_operators_init();
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(embpath, sizeof embpath, "%s/emb.txt", dir);
    buckets = pick_buckets();
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
    char path[700];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    write_log(path);
    struct rn_model *m1 = make_model(fav1, 1), *m2 = make_model(fav2, 2);
    publish(m1, 1);

    check_epsilon();

    /* Run 2: softmax at parallelism 1, bounded: the reference. */
    CHECK_EQ_INT(run_bounded(1, "softmax", "soft1"), 0);

    /* Run 3: the same at parallelism 2, following the log, serving. */
    struct rn_job *j = load_job(2, "softmax", 1, "soft2");
    if (!j) return rn_test_summary();
    struct runner run = {.job = j};
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &run);
    int64_t deadline = mono_ms() + 30000;
    int all = 0;
    while (!all && mono_ms() < deadline) {
        struct rn_buf js = RN_BUF_INIT;
        rn_job_render_json(j, &js);
        rn_buf_putc(&js, 0);
        char want[64];
        snprintf(want, sizeof want, "\"recommendations\":%d,", NREQ);
        all = strstr(js.data, want) && rn_job_serve_address(j)[0] && rn_job_http_address(j)[0];
        if (all) CHECK_STR_CONTAINS(js.data, "\"rejected\":1,");
        rn_buf_free(&js);
        if (!all) usleep(10000);
    }
    CHECK(all);
    char sv[128], st[128], out[8192];
    snprintf(sv, sizeof sv, "%s", rn_job_serve_address(j));
    snprintf(st, sizeof st, "%s", rn_job_http_address(j));

    /* A good request: exactly the expected slate. */
    CHECK_EQ_INT(recommend_fresh(sv, m1), 1);
    /* The latest slate of a user of the log: run 2's last impression for u3. */
    size_t n1;
    char **s1 = read_lines("soft1", &n1);
    const char *last = NULL;
    for (size_t i = 0; i < n1; i++)
        if (strstr(s1[i], "\"user\":\"u3\"")) last = s1[i];
    CHECK(last != NULL);
    CHECK_EQ_INT(call(sv, "GET", "/api/v1/recommendations/u3", NULL, out, sizeof out), 200);
    if (last) {
        const char *it = strstr(last, "\"items\":[");
        size_t len = it ? strcspn(it, "]") + 1 : 0;
        char want[512];
        snprintf(want, sizeof want, "%.*s,\"model_version\":1", (int)len, it ? it : "");
        CHECK_STR_CONTAINS(out, want);
    }
    /* No candidates: the whole embedding table is ranked (top-K over the
     * catalogue); the slate holds `slate` distinct items of the table. */
    CHECK_EQ_INT(call(sv, "POST", "/api/v1/recommend", "{\"user\":\"u3\",\"k\":3}", out, sizeof out),
                 200);
    CHECK_STR_CONTAINS(out, "\"items\":[\"i");
    CHECK_STR_CONTAINS(out, "\"model_version\":1");
    {
        const char *it = strstr(out, "\"items\":[");
        int commas = 0;
        for (const char *p = it; p && *p && *p != ']'; p++) commas += *p == ',';
        CHECK_EQ_INT(commas, 2);
    }
    /* Bad requests, each with its status and reason. */
    struct {
        const char *method, *body;
        int status;
        const char *reason;
    } bad[] = {
        {"POST", "{\"user\":", 400, "not a JSON object"},
        {"POST", "[1,2]", 400, "not a JSON object"},
        {"POST", "{\"candidates\":[\"i1\"]}", 400, "'user'"},
        {"POST", "{\"user\":\"\",\"candidates\":[\"i1\"]}", 400, "'user'"},
        {"POST", "{\"user\":\"x\",\"candidates\":[]}", 400, "'candidates'"},
        {"POST", "{\"user\":\"x\",\"candidates\":\"i1\"}", 400, "'candidates'"},
        {"POST", "{\"user\":\"x\",\"candidates\":[\"i1\",\"i2\",\"i1\"]}", 400, "listed twice"},
        {"POST", "{\"user\":\"x\",\"candidates\":[\"i1\",\"nope\"]}", 422, "unknown item 'nope'"},
        {"POST", "{\"user\":\"x\",\"candidates\":[\"i1\",7]}", 400, "candidates[1]"},
        {"POST", "{\"user\":\"x\",\"candidates\":[\"i1\"],\"k\":0}", 400, "'k'"},
        {"POST",
         "{\"user\":\"x\",\"candidates\":[\"i1\",\"i2\",\"i3\",\"i4\",\"i5\",\"i6\",\"i7\",\"i8\","
         "\"i9\",\"i10\",\"i11\"]}",
         413, "at most 10"},
        {"GET", NULL, 405, "use POST"},
        {"PUT", "{}", 405, "use POST"},
    };
    for (size_t i = 0; i < RN_ARRAY_LEN(bad); i++) {
        int s = call(sv, bad[i].method, "/api/v1/recommend", bad[i].body, out, sizeof out);
        if (s != bad[i].status) fprintf(stderr, "bad request %zu: %d %s", i, s, out);
        CHECK_EQ_INT(s, bad[i].status);
        CHECK_STR_CONTAINS(out, "\"error\":");
        CHECK_STR_CONTAINS(out, bad[i].reason);
    }
    CHECK_EQ_INT(call(sv, "GET", "/api/v1/recommendations/nobody", NULL, out, sizeof out), 404);
    CHECK_STR_CONTAINS(out, "no recommendation for user 'nobody'");
    CHECK_EQ_INT(call(sv, "GET", "/api/v1/inference", NULL, out, sizeof out), 200);
    CHECK_STR_CONTAINS(out, "\"model_version\":1,");
    CHECK_STR_CONTAINS(out, "\"latency_us\":{\"p50\":");

    /* A new version while the job runs is picked up. */
    publish(m2, 2);
    CHECK(wait_version(sv, 2));
    CHECK_EQ_INT(recommend_fresh(sv, m2), 2);
    /* Pinning the older one rolls back. */
    CHECK_EQ_INT(rn_store_pin(store, 1, err, sizeof err), 0);
    CHECK(wait_version(sv, 1));
    CHECK_EQ_INT(recommend_fresh(sv, m1), 1);

    /* The status server's model endpoints. */
    CHECK_EQ_INT(call(st, "GET", "/api/v1/models", NULL, out, sizeof out), 200);
    char want[900];
    snprintf(want, sizeof want, "{\"stores\":[{\"store\":\"%s\",\"current\":1,\"pinned\":1,",
             store);
    CHECK_STR_CONTAINS(out, want);
    CHECK_STR_CONTAINS(out, "{\"id\":2,\"created_ms\":2000,\"event_time\":120000,\"updates\":20,"
                            "\"transitions\":100,\"loss\":0.5,\"mean_q\":0.25}");
    CHECK_STR_CONTAINS(out, "\"operators\":[\"infer\"]}]}");
    CHECK_EQ_INT(call(st, "POST", "/api/v1/models/pin", "{\"version\":2}", out, sizeof out), 200);
    CHECK_STR_CONTAINS(out, "\"current\":2,\"pinned\":2,");
    CHECK_STR_CONTAINS(out, "\"previous\":1}");
    CHECK(wait_version(sv, 2));
    snprintf(want, sizeof want, "{\"store\":\"%s\"}", store);
    CHECK_EQ_INT(call(st, "POST", "/api/v1/models/rollback", want, out, sizeof out), 200);
    CHECK_STR_CONTAINS(out, "\"current\":1,\"pinned\":1,");
    CHECK(wait_version(sv, 1));
    CHECK_EQ_INT(call(st, "POST", "/api/v1/models/rollback", want, out, sizeof out), 409);
    CHECK_STR_CONTAINS(out, "no version before 1");
    /* only the job's stores, never a path from the request */
    char other[700], otherpin[720];
    snprintf(other, sizeof other, "{\"store\":\"%s/other\",\"version\":1}", dir);
    snprintf(otherpin, sizeof otherpin, "%s/other/PINNED", dir);
    CHECK_EQ_INT(call(st, "POST", "/api/v1/models/pin", other, out, sizeof out), 404);
    CHECK_STR_CONTAINS(out, "no operator of this job uses model store");
    CHECK(access(otherpin, F_OK) != 0);
    CHECK_EQ_INT(call(st, "POST", "/api/v1/models/pin", "{\"version\":99}", out, sizeof out), 404);
    CHECK_STR_CONTAINS(out, "has no version 99");
    CHECK_EQ_INT(call(st, "POST", "/api/v1/models/pin", "{\"version\":\"2\"}", out, sizeof out),
                 400);
    CHECK_EQ_INT(call(st, "POST", "/api/v1/models/pin", "{nope", out, sizeof out), 400);
    CHECK_EQ_INT(call(st, "GET", "/api/v1/models/pin", NULL, out, sizeof out), 405);
    CHECK_EQ_INT(call(st, "POST", "/api/v1/models", "{}", out, sizeof out), 405);
    CHECK_EQ_INT(call(st, "POST", "/api/v1/models/frob", "{}", out, sizeof out), 404);
    CHECK_EQ_INT(call(st, "POST", "/api/v1/models/unpin", "", out, sizeof out), 200);
    CHECK_STR_CONTAINS(out, "\"current\":2,\"pinned\":null,");
    CHECK(wait_version(sv, 2));

    rn_job_stop(j);
    pthread_join(th, NULL);
    CHECK_EQ_INT(run.rc, 0);
    rn_job_destroy(j);

    /* Parallelism 1 and 2: the same impressions, byte for byte. */
    size_t n2;
    char **s2 = read_lines("soft2", &n2);
    CHECK_EQ_INT(n1, NREQ);
    CHECK_EQ_INT(n2, NREQ);
    qsort(s1, n1, sizeof *s1, cmp_str);
    qsort(s2, n2, sizeof *s2, cmp_str);
    size_t same = 0;
    for (size_t i = 0; i < n1 && i < n2; i++)
        same += strcmp(s1[i], s2[i]) == 0;
    CHECK_EQ_INT(same, NREQ);
    /* Not trivially equal: the propensities depend on the user's history.
     * A user's first request (no clicks yet) is exactly what a fresh user
     * gets; later ones differ from that. */
    int first_exact = 0, firsts = 0, later_differ = 0;
    for (size_t i = 0; i < n1; i++) {
        yajl_val v = yajl_tree_parse(s1[i], NULL, 0);
        if (!v) continue;
        int q = atoi(jstr(v, "request") + 1), first = 1;
        for (int e = 0; e < q && first; e++)
            first = strcmp(reqs[e].user, reqs[q].user) != 0;
        char nm[K][16];
        const char *names[K];
        for (int c = 0; c < K; c++) {
            snprintf(nm[c], sizeof nm[c], "i%d", reqs[q].cand[c]);
            names[c] = nm[c];
        }
        float scores[K];
        uint32_t slate[L];
        double prop[L];
        fresh_scores(m1, names, K, reqs[q].ts, scores);
        expect_slate(scores, K, L, RN_EXPLORE_SOFTMAX, reqs[q].name, slate, prop);
        yajl_val items = jarr(v, "items"), props = jarr(v, "propensities");
        int same = items && props && YAJL_GET_ARRAY(items)->len == L;
        for (int j = 0; same && j < L; j++)
            same &= strcmp(astr(items, j), names[slate[j]]) == 0 &&
                    fabs(YAJL_GET_DOUBLE(YAJL_GET_ARRAY(props)->values[j]) - prop[j]) < 1e-12;
        firsts += first;
        first_exact += first && same;
        later_differ += !first && !same;
        yajl_tree_free(v);
    }
    CHECK_EQ_INT(first_exact, firsts);
    CHECK(firsts >= 1 && later_differ > 0);
    free_lines(s1, n1);
    free_lines(s2, n2);

    check_context();

    rn_model_destroy(m1);
    rn_model_destroy(m2);
    rn_embed_destroy(emb);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
