/*
 * bench_serve.c — serving latency of the inference path (bench/run_serve.sh).
 *
 *   build/bench_serve inproc [--seconds 2] [--rounds 5] [--candidates 100] [--items 10000]
 *                            [--publish-every-ms 100] [--poll-ms 10]
 *       In-process: a model store with a 64-d model (rn_store_publish), an embedding table of
 *       `items` 64-d items in a temporary file, a feed (rn_model_feed_acquire, polling every
 *       poll-ms) and, per request, the scoring path of operators/inference.c rn_inf_rank:
 *       rn_phi_simple over a 10-item history, rn_embed_rows of the candidates,
 *       rn_model_feed_enter, rn_model_advantages, rn_model_feed_exit and rn_slate_pick
 *       (slate 5, epsilon 0.05), each request timed with clock_gettime. Rounds alternate a
 *       quiet phase and a phase in which another thread publishes a new version every
 *       publish-every-ms (the feed's loader picks each up); it prints p50/p99/p99.9/max and
 *       requests per CPU-second of the scoring thread for both, and the latency of the first
 *       request served by each new version.
 *   build/bench_serve model --store DIR --embeddings FILE [--seconds 2] [--candidates 100]
 *       The same scoring path for a given store's current version (any model kind: the
 *       dueling Q or a runnel-actor/1 actor) with its own embedding table; p50/p99 of the
 *       requests of one thread.
 *   build/bench_serve setup --dir DIR [--items 10000] [--users 1000]
 *       Writes DIR/items.txt (the embeddings, items i1..iN), DIR/store (version 1) and
 *       DIR/log.jsonl (10 clicks per user u1..uU, so that requests have a history) for the
 *       HTTP job of run_serve.sh.
 *   build/bench_serve publish --store DIR [--every-ms 100] [--seconds 30]
 *       Publishes a new version (random parameters) every every-ms, keeping the newest 8
 *       (older ones are removed as a learner's retention would).
 *   build/bench_serve http --url http://127.0.0.1:PORT [--seconds 10] [--candidates 100]
 *                          [--items 10000] [--users 1000] [--body-file FILE]
 *       One keep-alive connection (examples/simulator's client), POST /api/v1/recommend with
 *       `candidates` of the items; prints p50/p99/p99.9/max, requests per second, the model
 *       versions seen and the latency of the first answer from each new version.
 *       --body-file only writes one request body (for wrk) and exits.
 */
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rn_sim_http.h"
#include "rn_model.h"

#define BS_D 64u
#define BS_HIST 10u
#define BS_SLATE 5u
#define BS_KEEP 8

static uint64_t bs_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double bs_unif(void *s)
{
    return (double)(bs_next(s) >> 11) * 0x1.0p-53;
}

static int64_t bs_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- latencies ------------------------------------------------------------------- */

struct bs_lat {
    int64_t *ns;
    size_t n, cap;
};

static void bs_lat_add(struct bs_lat *l, int64_t ns)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->ns = rn_xrealloc(l->ns, l->cap * sizeof *l->ns);
    }
    l->ns[l->n++] = ns;
}

static int bs_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts l and returns its q-quantile (nearest rank) in µs. */
static double bs_q(struct bs_lat *l, double q)
{
    if (!l->n) return 0;
    qsort(l->ns, l->n, sizeof *l->ns, bs_cmp);
    size_t i = (size_t)ceil(q * (double)l->n);
    if (i) i--;
    if (i >= l->n) i = l->n - 1;
    return (double)l->ns[i] / 1e3;
}

static void bs_lat_print(const char *what, struct bs_lat *l, double wall_s, double cpu_s)
{
    printf("%-34s %9zu req  %8.0f req/s  %8.0f req/CPU-s  p50 %7.1f  p99 %7.1f  p99.9 %7.1f  "
           "max %8.1f us\n",
           what, l->n, (double)l->n / wall_s, cpu_s > 0 ? (double)l->n / cpu_s : 0, bs_q(l, 0.5),
           bs_q(l, 0.99), bs_q(l, 0.999), bs_q(l, 1.0));
}

/* ---- data ------------------------------------------------------------------------- */

static void bs_write_items(const char *path, uint32_t items, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    uint64_t s = seed;
    for (uint32_t i = 1; i <= items; i++) {
        fprintf(f, "i%u", i);
        for (uint32_t k = 0; k < BS_D; k++)
            fprintf(f, " %.5f", (bs_unif(&s) * 2 - 1) * 0.25);
        fputc('\n', f);
    }
    if (fclose(f)) {
        perror(path);
        exit(1);
    }
}

static struct rn_model *bs_model(uint64_t seed)
{
    struct rn_model_shape sh = {
        .dim = BS_D, .phi = RN_PHI_SIMPLE_DIM(BS_D), .buckets = 65536, .positions = 16};
    struct rn_model *m = rn_model_create(&sh);
    uint64_t s = seed;
    for (size_t i = 0; i < m->at.n; i++)
        m->params[i] = (float)((bs_unif(&s) * 2 - 1) * 0.1);
    return m;
}

static int bs_publish_one(const char *dir, int64_t id)
{
    struct rn_model *m = bs_model((uint64_t)id);
    struct rn_model_version v = {.id = id, .created_ms = rn_wall_ms()};
    char err[512];
    int rc = rn_store_publish(dir, m, &v, err, sizeof err);
    rn_model_destroy(m);
    if (rc) {
        fprintf(stderr, "bench_serve: %s\n", err);
        return rc;
    }
    if (id > BS_KEEP) {
        char path[4096];
        rn_store_path(dir, id - BS_KEEP, ".json", path, sizeof path);
        unlink(path);
        rn_store_path(dir, id - BS_KEEP, ".safetensors", path, sizeof path);
        unlink(path);
    }
    return 0;
}

/* ---- the publisher ------------------------------------------------------------------ */

struct bs_pub {
    const char *dir;
    int64_t every_ms, next_id;
    atomic_int active, stop;
    atomic_long published;
};

static void *bs_pub_main(void *arg)
{
    struct bs_pub *p = arg;
    int64_t next = bs_ns(CLOCK_MONOTONIC);
    while (!atomic_load(&p->stop)) {
        if (atomic_load(&p->active)) {
            if (bs_publish_one(p->dir, p->next_id++) == 0) atomic_fetch_add(&p->published, 1);
        }
        next += p->every_ms * 1000000;
        int64_t now = bs_ns(CLOCK_MONOTONIC);
        if (next > now) {
            struct timespec ts = {(time_t)((next - now) / 1000000000),
                                  (long)((next - now) % 1000000000)};
            nanosleep(&ts, NULL);
        } else {
            next = now;
        }
    }
    return NULL;
}

/* ---- in-process ---------------------------------------------------------------------- */

struct bs_req {
    struct rn_hist hist[BS_HIST];
    uint64_t *cand;
};

static int bs_inproc(double secs, int rounds, uint32_t k, uint32_t items, int64_t every_ms,
                     int64_t poll_ms)
{
    char dir[] = "/tmp/runnel-bench-serve.XXXXXX", path[4200], store[4200], err[512];
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/items.txt", dir);
    snprintf(store, sizeof store, "%s/store", dir);
    bs_write_items(path, items, 11);
    if (bs_publish_one(store, 1)) return 1;
    struct rn_embed *emb = rn_embed_load(path, err, sizeof err);
    if (!emb) {
        fprintf(stderr, "bench_serve: %s\n", err);
        return 1;
    }
    struct rn_model_feed *feed = rn_model_feed_acquire(store, poll_ms, err, sizeof err);
    if (!feed) {
        fprintf(stderr, "bench_serve: %s\n", err);
        return 1;
    }
    rn_model_feed_poll(feed);
    int slot = rn_model_feed_slot(feed);
    /* 1024 requests made up front: histories of 10 items, k distinct-ish candidates. */
    enum { NREQ = 1024 };
    struct bs_req *rq = rn_xcalloc(NREQ, sizeof *rq);
    uint64_t s = 5;
    int64_t now = rn_wall_ms();
    char name[32];
    for (int r = 0; r < NREQ; r++) {
        for (uint32_t h = 0; h < BS_HIST; h++) {
            int n = snprintf(name, sizeof name, "i%u", 1 + (uint32_t)(bs_next(&s) % items));
            rq[r].hist[h] =
                (struct rn_hist){rn_hash64(name, (size_t)n), now - (int64_t)(BS_HIST - h) * 60000};
        }
        rq[r].cand = rn_xmalloc(k * sizeof *rq[r].cand);
        for (uint32_t i = 0; i < k; i++) {
            int n = snprintf(name, sizeof name, "i%u", 1 + (uint32_t)(bs_next(&s) % items));
            rq[r].cand[i] = rn_hash64(name, (size_t)n);
        }
    }
    uint32_t d = BS_D, f = RN_PHI_SIMPLE_DIM(BS_D);
    float *phi = rn_xmalloc(f * sizeof *phi), *E = rn_xmalloc((size_t)k * d * sizeof *E),
          *scores = rn_xmalloc(k * sizeof *scores);
    double *scratch = rn_xmalloc(2 * (size_t)k * sizeof *scratch), prop[BS_SLATE], sp;
    uint32_t slate[BS_SLATE];
    struct rn_explore_cfg ex = {RN_EXPLORE_EPSILON, 0.05, 1.0};

    struct bs_pub pub = {.dir = store, .every_ms = every_ms, .next_id = 2};
    pthread_t th;
    pthread_create(&th, NULL, bs_pub_main, &pub);
    /* wall-clock latency, and on-CPU time of the same requests (the difference is the
     * thread being descheduled: the machine, not the code) */
    struct bs_lat quiet = {0}, swap = {0}, first = {0}, quiet_cpu = {0}, swap_cpu = {0};
    struct bs_lat rq_quiet[64] = {{0}}, rq_swap[64] = {{0}};
    double wall[2] = {0, 0}, cpu[2] = {0, 0};
    int64_t last_version = 0;
    uint64_t it = 0, rs = 99;
    volatile float sink = 0;
    if (rounds > 64) rounds = 64;
    for (int round = 0; round < rounds; round++)
        for (int phase = 0; phase < 2; phase++) {
            atomic_store(&pub.active, phase);
            struct bs_lat *all = phase ? &swap : &quiet;
            struct bs_lat *per = phase ? &rq_swap[round] : &rq_quiet[round];
            int64_t w0 = bs_ns(CLOCK_MONOTONIC), c0 = bs_ns(CLOCK_THREAD_CPUTIME_ID);
            int64_t end = w0 + (int64_t)(secs * 1e9);
            for (;;) {
                const struct bs_req *r = &rq[it++ % NREQ];
                int64_t tc0 = bs_ns(CLOCK_THREAD_CPUTIME_ID), t0 = bs_ns(CLOCK_MONOTONIC);
                if (t0 >= end) break;
                rn_phi_simple(emb, BS_HIST, 1800000.0, r->hist, BS_HIST, now, phi);
                rn_embed_rows(emb, r->cand, k, E);
                int64_t version;
                const struct rn_model *m = rn_model_feed_enter(feed, slot, &version);
                rn_model_advantages(m, phi, E, r->cand, k, scores);
                rn_model_feed_exit(feed, slot);
                rn_slate_pick(scores, k, BS_SLATE, &ex, bs_unif, &rs, slate, prop, &sp, scratch);
                int64_t ns = bs_ns(CLOCK_MONOTONIC) - t0;
                bs_lat_add(phase ? &swap_cpu : &quiet_cpu, bs_ns(CLOCK_THREAD_CPUTIME_ID) - tc0);
                sink += (float)slate[0];
                bs_lat_add(all, ns);
                bs_lat_add(per, ns);
                if (version != last_version) {
                    if (last_version) bs_lat_add(&first, ns);
                    last_version = version;
                }
            }
            (void)sink;
            wall[phase] += (double)(bs_ns(CLOCK_MONOTONIC) - w0) / 1e9;
            cpu[phase] += (double)(bs_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / 1e9;
        }
    atomic_store(&pub.stop, 1);
    pthread_join(th, NULL);
    struct rn_model_feed_stats st;
    rn_model_feed_stats(feed, &st);
    printf("in-process scoring: %u candidates of %u items, D=%u, slate %u (epsilon 0.05), "
           "%d rounds of %.1f s quiet + %.1f s with a version every %" PRId64 " ms (poll %" PRId64
           " ms)\n",
           k, items, d, BS_SLATE, rounds, secs, secs, every_ms, poll_ms);
    bs_lat_print("without swaps", &quiet, wall[0], cpu[0]);
    bs_lat_print("with swaps", &swap, wall[1], cpu[1]);
    bs_lat_print("  on-CPU time, without swaps", &quiet_cpu, wall[0], cpu[0]);
    bs_lat_print("  on-CPU time, with swaps", &swap_cpu, wall[1], cpu[1]);
    printf("%-34s %9zu req  median %.1f us, max %.1f us\n", "first request of a new version",
           first.n, bs_q(&first, 0.5), bs_q(&first, 1.0));
    printf("per round p99.9 (us), quiet / swapping:");
    for (int round = 0; round < rounds; round++)
        printf(" %.1f/%.1f", bs_q(&rq_quiet[round], 0.999), bs_q(&rq_swap[round], 0.999));
    printf("\nversions published %ld, loaded by the feed %" PRIu64 " (last load %.2f ms), "
           "failures %" PRIu64 "\n",
           atomic_load(&pub.published), st.loads, st.last_load_ms, st.failures);
    rn_model_feed_slot_free(feed, slot);
    rn_model_feed_release(feed);
    rn_embed_destroy(emb);
    for (int r = 0; r < NREQ; r++)
        free(rq[r].cand);
    for (int round = 0; round < rounds; round++) {
        free(rq_quiet[round].ns);
        free(rq_swap[round].ns);
    }
    free(rq);
    free(quiet.ns);
    free(swap.ns);
    free(first.ns);
    free(quiet_cpu.ns);
    free(swap_cpu.ns);
    free(phi);
    free(E);
    free(scores);
    free(scratch);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "bench_serve: could not remove %s\n", dir);
    return 0;
}

/* ---- the HTTP job's files and the publisher ------------------------------------------ */

static int bs_setup(const char *dir, uint32_t items, uint32_t users)
{
    char path[4200], store[4200];
    snprintf(path, sizeof path, "%s/items.txt", dir);
    bs_write_items(path, items, 11);
    snprintf(store, sizeof store, "%s/store", dir);
    if (bs_publish_one(store, 1)) return 1;
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    uint64_t s = 3;
    int64_t ts = rn_wall_ms() - 3600000;
    for (uint32_t u = 1; u <= users; u++)
        for (uint32_t h = 0; h < BS_HIST; h++)
            fprintf(f,
                    "{\"type\":\"click\",\"ts\":%" PRId64
                    ",\"request\":\"r%u-%u\",\"user\":\"u%u\",\"item\":\"i%u\"}\n",
                    ts + h * 1000, u, h, u, 1 + (uint32_t)(bs_next(&s) % items));
    return fclose(f) ? 1 : 0;
}

static int64_t bs_newest(const char *dir)
{
    struct rn_model_version *vs;
    size_t n;
    char err[512];
    if (rn_store_list(dir, &vs, &n, err, sizeof err)) return 0;
    int64_t id = n ? vs[n - 1].id : 0;
    free(vs);
    return id;
}

static int bs_publisher(const char *store, int64_t every_ms, double secs)
{
    struct bs_pub pub = {.dir = store, .every_ms = every_ms, .next_id = bs_newest(store) + 1};
    atomic_store(&pub.active, 1);
    pthread_t th;
    pthread_create(&th, NULL, bs_pub_main, &pub);
    struct timespec ts = {(time_t)secs, (long)((secs - floor(secs)) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&pub.stop, 1);
    pthread_join(th, NULL);
    printf("published %ld versions, every %" PRId64 " ms\n", atomic_load(&pub.published), every_ms);
    return 0;
}

/* ---- over HTTP ------------------------------------------------------------------------ */

static void bs_body(struct rn_buf *b, uint64_t *s, uint32_t k, uint32_t items, uint32_t users)
{
    rn_buf_reset(b);
    rn_buf_printf(b, "{\"user\":\"u%u\",\"candidates\":[", 1 + (uint32_t)(bs_next(s) % users));
    for (uint32_t i = 0; i < k; i++)
        rn_buf_printf(b, "%s\"i%u\"", i ? "," : "", 1 + (uint32_t)(bs_next(s) % items));
    rn_buf_puts(b, "]}");
}

static int bs_http(const char *url, double secs, uint32_t k, uint32_t items, uint32_t users,
                   const char *body_file)
{
    uint64_t s = 21;
    struct rn_buf body = RN_BUF_INIT, resp = RN_BUF_INIT;
    if (body_file) {
        bs_body(&body, &s, k, items, users);
        FILE *f = fopen(body_file, "w");
        if (!f || fwrite(body.data, 1, body.len, f) != body.len || fclose(f)) {
            perror(body_file);
            return 1;
        }
        rn_buf_free(&body);
        return 0;
    }
    char err[512];
    struct rn_sim_http *c = rn_sim_http_create(url, 5000, err, sizeof err);
    if (!c) {
        fprintf(stderr, "bench_serve: %s\n", err);
        return 1;
    }
    /* 256 bodies made up front; warm up for 0.5 s, then measure. */
    enum { NB = 256 };
    struct rn_buf bodies[NB];
    for (int i = 0; i < NB; i++) {
        bodies[i] = (struct rn_buf)RN_BUF_INIT;
        bs_body(&bodies[i], &s, k, items, users);
    }
    struct bs_lat lat = {0}, first = {0};
    int64_t last_version = -1, versions = 0, t_start = bs_ns(CLOCK_MONOTONIC);
    int64_t warm_end = t_start + 500000000, end = warm_end + (int64_t)(secs * 1e9), m0 = 0;
    double c0 = 0;
    int bad = 0;
    for (uint64_t i = 0;; i++) {
        int64_t t0 = bs_ns(CLOCK_MONOTONIC);
        if (t0 >= end) break;
        if (!m0 && t0 >= warm_end) {
            m0 = t0;
            c0 = (double)bs_ns(CLOCK_PROCESS_CPUTIME_ID) / 1e9;
        }
        const struct rn_buf *b = &bodies[i % NB];
        int status = 0;
        if (rn_sim_http_post(c, "/api/v1/recommend", b->data, b->len, &status, &resp, err,
                             sizeof err)) {
            fprintf(stderr, "bench_serve: %s\n", err);
            return 1;
        }
        int64_t ns = bs_ns(CLOCK_MONOTONIC) - t0;
        if (status != 200) {
            if (bad++ < 3)
                fprintf(stderr, "bench_serve: HTTP %d: %.*s\n", status, (int)resp.len, resp.data);
            continue;
        }
        rn_buf_putc(&resp, 0);
        const char *mv = strstr(resp.data, "\"model_version\":");
        int64_t version = mv ? strtoll(mv + 16, NULL, 10) : 0;
        if (!m0) {
            last_version = version;
            continue;
        }
        bs_lat_add(&lat, ns);
        if (version != last_version) {
            bs_lat_add(&first, ns);
            versions++;
            last_version = version;
        }
    }
    double wall = (double)(bs_ns(CLOCK_MONOTONIC) - m0) / 1e9;
    double cpu = (double)bs_ns(CLOCK_PROCESS_CPUTIME_ID) / 1e9 - c0;
    printf("HTTP POST /api/v1/recommend, %u candidates, one keep-alive connection, %.1f s "
           "(after 0.5 s warm-up), %lu connection(s), %d non-200\n",
           k, wall, rn_sim_http_connections(c), bad);
    bs_lat_print("loopback HTTP", &lat, wall, 0);
    printf("%-34s %9zu req  median %.1f us, max %.1f us (%" PRId64 " version changes seen)\n",
           "first answer of a new version", first.n, bs_q(&first, 0.5), bs_q(&first, 1.0),
           versions);
    printf("client CPU %.2f s of %.2f s\n", cpu, wall);
    rn_sim_http_destroy(c);
    for (int i = 0; i < NB; i++)
        rn_buf_free(&bodies[i]);
    rn_buf_free(&resp);
    free(lat.ns);
    free(first.ns);
    return 0;
}

static void bs_usage(FILE *f)
{
    fputs(
        "usage: bench_serve inproc [--seconds 2] [--rounds 5] [--candidates 100] [--items "
        "10000] [--publish-every-ms 100] [--poll-ms 10]\n"
        "       bench_serve model --store DIR --embeddings FILE [--seconds 2] [--candidates 100]\n"
        "       bench_serve setup --dir DIR [--items 10000] [--users 1000]\n"
        "       bench_serve publish --store DIR [--every-ms 100] [--seconds 30]\n"
        "       bench_serve http --url URL [--seconds 10] [--candidates 100] [--items 10000] "
        "[--users 1000] [--body-file FILE]\n",
        f);
}

/* ---- a given model store ----------------------------------------------------------- */

/* bs_serve_store: the in-process scoring path of bs_inproc, for the store's current version
 * (any model kind: the dueling Q or an actor) and its own embedding table:
 * histories of 10 and `k` candidates drawn from the table's items. */
static int bs_serve_store(const char *store, const char *embeddings, double secs, uint32_t k)
{
    char err[512];
    struct rn_embed *emb = rn_embed_load(embeddings, err, sizeof err);
    if (!emb) {
        fprintf(stderr, "bench_serve: %s\n", err);
        return 1;
    }
    struct rn_model_feed *feed = rn_model_feed_acquire(store, 1000, err, sizeof err);
    if (!feed || rn_model_feed_poll(feed) <= 0) {
        fprintf(stderr, "bench_serve: %s: no model\n", store);
        return 1;
    }
    int slot = rn_model_feed_slot(feed);
    enum { NREQ = 1024 };
    struct bs_req *rq = rn_xcalloc(NREQ, sizeof *rq);
    uint64_t s = 5;
    size_t items = rn_embed_count(emb);
    int64_t now = rn_wall_ms();
    for (int r = 0; r < NREQ; r++) {
        for (uint32_t h = 0; h < BS_HIST; h++)
            rq[r].hist[h] = (struct rn_hist){rn_embed_id(emb, bs_next(&s) % items),
                                             now - (int64_t)(BS_HIST - h) * 60000};
        rq[r].cand = rn_xmalloc(k * sizeof *rq[r].cand);
        for (uint32_t i = 0; i < k; i++)
            rq[r].cand[i] = rn_embed_id(emb, bs_next(&s) % items);
    }
    uint32_t d = rn_embed_dim(emb), f = RN_PHI_SIMPLE_DIM(d);
    float *phi = rn_xmalloc(f * sizeof *phi), *E = rn_xmalloc((size_t)k * d * sizeof *E),
          *scores = rn_xmalloc(k * sizeof *scores);
    double *scratch = rn_xmalloc(2 * (size_t)k * sizeof *scratch), prop[BS_SLATE], sp;
    uint32_t slate[BS_SLATE];
    struct rn_explore_cfg ex = {RN_EXPLORE_EPSILON, 0.05, 1.0};
    struct bs_lat lat = {0};
    uint64_t it = 0, rs = 99;
    volatile float sink = 0;
    int64_t version = 0, w0 = bs_ns(CLOCK_MONOTONIC), c0 = bs_ns(CLOCK_THREAD_CPUTIME_ID);
    for (int64_t end = w0 + (int64_t)(secs * 1e9);;) {
        const struct bs_req *r = &rq[it++ % NREQ];
        int64_t t0 = bs_ns(CLOCK_MONOTONIC);
        if (t0 >= end) break;
        rn_phi_simple(emb, BS_HIST, 1800000.0, r->hist, BS_HIST, now, phi);
        rn_embed_rows(emb, r->cand, k, E);
        const struct rn_model *m = rn_model_feed_enter(feed, slot, &version);
        rn_model_advantages(m, phi, E, r->cand, k, scores);
        rn_model_feed_exit(feed, slot);
        rn_slate_pick(scores, k, BS_SLATE, &ex, bs_unif, &rs, slate, prop, &sp, scratch);
        sink += (float)slate[0];
        bs_lat_add(&lat, bs_ns(CLOCK_MONOTONIC) - t0);
    }
    (void)sink;
    double wall = (double)(bs_ns(CLOCK_MONOTONIC) - w0) / 1e9;
    double cpu = (double)(bs_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / 1e9;
    printf("model %s version %" PRId64 ": %u candidates, D=%u, slate %u (epsilon 0.05)\n", store,
           version, k, d, BS_SLATE);
    bs_lat_print("scoring", &lat, wall, cpu);
    rn_model_feed_slot_free(feed, slot);
    rn_model_feed_release(feed);
    rn_embed_destroy(emb);
    for (int r = 0; r < NREQ; r++)
        free(rq[r].cand);
    free(rq);
    free(lat.ns);
    free(phi);
    free(E);
    free(scores);
    free(scratch);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        bs_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *dir = NULL, *store = NULL, *url = NULL, *body_file = NULL, *embeddings = NULL;
    double secs = -1;
    int rounds = 5;
    uint32_t k = 100, items = 10000, users = 1000;
    int64_t every = 100, poll = 10;
    for (int i = 2; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            bs_usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--dir"))
            dir = v;
        else if (!strcmp(a, "--store"))
            store = v;
        else if (!strcmp(a, "--url"))
            url = v;
        else if (!strcmp(a, "--embeddings"))
            embeddings = v;
        else if (!strcmp(a, "--body-file"))
            body_file = v;
        else if (!strcmp(a, "--seconds"))
            secs = atof(v);
        else if (!strcmp(a, "--rounds"))
            rounds = atoi(v);
        else if (!strcmp(a, "--candidates"))
            k = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--items"))
            items = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--users"))
            users = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--publish-every-ms") || !strcmp(a, "--every-ms"))
            every = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--poll-ms"))
            poll = strtoll(v, NULL, 10);
        else {
            bs_usage(stderr);
            return 2;
        }
    }
    if (!k || k > 1000 || !items || !users || every < 1 || rounds < 1) {
        bs_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "inproc"))
        return bs_inproc(secs > 0 ? secs : 2, rounds, k, items, every, poll);
    if (!strcmp(argv[1], "setup") && dir) return bs_setup(dir, items, users);
    if (!strcmp(argv[1], "model") && store && embeddings)
        return bs_serve_store(store, embeddings, secs > 0 ? secs : 2, k);
    if (!strcmp(argv[1], "publish") && store)
        return bs_publisher(store, every, secs > 0 ? secs : 30);
    if (!strcmp(argv[1], "http") && (url || body_file))
        return bs_http(url, secs > 0 ? secs : 10, k, items, users, body_file);
    bs_usage(stderr);
    return 2;
}
