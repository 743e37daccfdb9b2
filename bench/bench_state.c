/*
 * bench_state.c — keyed-state benchmark: a keyed count over 1,000,000
 * distinct keys drawn from a Zipf distribution, with checkpoints every 10 s.
 *
 * A generator source emits events (event time increasing, key ~ Zipf(s) over
 * N keys) as fast as the pipeline takes them; they are hash-partitioned to
 * `parallelism` threads running a counting operator on keyed value state
 * (write-back cache in front of RocksDB). After the run it prints records per
 * CPU-second of each counting thread, and every checkpoint's duration and the
 * longest pipeline stall it caused (time a thread spent snapshotting).
 *
 *   build/bench_state [--keys N] [--zipf S] [--seconds T] [--parallelism P]
 *                     [--interval 10s] [--cache 64MiB] [--dir /tmp/...]
 * bench/run_state.sh runs it next to RocksDB's db_bench on the same machine.
 *
 * Restore (bench/run_restore.sh): `--fill --value-bytes B` writes every one
 * of the N keys once with a B-byte value (its count, then incompressible
 * bytes) and ends (the drained job's final checkpoint); `--restore` then loads the job again from that checkpoint and times
 * the start: job load, the first record processed, and the end of a short
 * input of 1,024 keys whose counts must come back from the restored state.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_job.h"
#include "rn_operator.h"
#include "rn_state.h"

struct ev {
    uint64_t key;
};

static const char *const ev_keys[] = {"key", NULL};
static uint64_t ev_key_of(const struct rn_record *r, int f)
{
    (void)f;
    return ((const struct ev *)r->payload)->key;
}
static void ev_json(const struct rn_record *r, struct rn_buf *out)
{
    rn_buf_printf(out, "{\"key\":%llu}", (unsigned long long)((const struct ev *)r->payload)->key);
}
static const struct rn_type ev_type = {
    .name = "bench_event",
    .description = "benchmark event",
    .write_json = ev_json,
    .key_fields = ev_keys,
    .key_of = ev_key_of,
};
static const struct rn_type *const ev_types[] = {&ev_type, NULL};

static uint64_t n_keys = 1000000;
static size_t value_bytes = 8;
static int mode_fill, mode_restore;
static _Atomic uint64_t n_processed, n_restored; /* records; keys found with a count */
static _Atomic int64_t first_ns;                 /* when the first record was processed */
static double zipf_s = 1.0;
static double *cdf;

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t key_of_rank(uint64_t rank)
{
    /* Scatter ranks over the key space so hot keys are not neighbours. */
    return (rank * 0x9e3779b97f4a7c15ULL) | 1;
}

static uint64_t zipf_draw(uint64_t *rng)
{
    double u = (double)(xorshift(rng) >> 11) / 9007199254740992.0;
    size_t lo = 0, hi = n_keys - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return key_of_rank(lo);
}

struct gen_state {
    uint64_t rng;
    int64_t ts;
    uint64_t next; /* --fill, --restore: the next key rank */
};


static int gen_poll(struct rn_op *op, struct rn_emitter *out)
{
    struct gen_state *g = rn_op_local(op);
    if (!g) {
        g = calloc(1, sizeof *g);
        g->rng = 88172645463325252ULL;
        g->ts = 1700000000000;
        rn_op_set_local(op, g);
    }
    if (rn_op_stopping(op)) return RN_POLL_END;
    if (mode_fill || mode_restore) {
        /* Each key once (--restore: the first 1,024), then the end of input
         * (the job drains and takes its final checkpoint). */
        uint64_t end = mode_restore ? RN_MIN(n_keys, (uint64_t)1024) : n_keys;
        if (g->next >= end) return RN_POLL_END;
        for (int i = 0; i < 1024 && g->next < end; i++) {
            struct ev *e = rn_emit(out, 0, g->ts++, 0, sizeof *e);
            e->key = key_of_rank(g->next++);
        }
        return RN_POLL_MORE;
    }
    for (int i = 0; i < 1024; i++) {
        struct ev *e = rn_emit(out, 0, g->ts++, 0, sizeof *e);
        e->key = zipf_draw(&g->rng);
    }
    return RN_POLL_MORE;
}
static void gen_close(struct rn_op *op)
{
    free(rn_op_local(op));
}
static const struct rn_config_key no_keys[] = {RN_CONFIG_END};
static const struct rn_port_decl gen_out[] = {{NULL, "bench_event", "events"}};
static const struct rn_op_type gen_source = {
    RN_OP_TYPE_HEAD, .name = "zipf_gen", .description = "benchmark source",
    .kind = RN_KIND_SOURCE, .flags = RN_OP_EVENT_TIME, .config = no_keys, .ctx_size = 1,
    .outputs = gen_out, .n_outputs = 1, .poll = gen_poll, .close = gen_close,
    .types = ev_types,
};

static int count_open(struct rn_op *op)
{
    struct rn_state *s = rn_state_value(op, "count");
    rn_op_set_local(op, s);
    return s ? 0 : RN_ESTATE;
}

static int count_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)out;
    struct rn_state *s = rn_op_local(op);
    int64_t none = 0;
    atomic_compare_exchange_strong(&first_ns, &none, rn_now_ns());
    for (uint32_t i = 0; i < in->n; i++) {
        rn_state_key(op, in->recs[i].key);
        const void *v;
        size_t len;
        int64_t c = 0;
        int rc = rn_value_get(s, 0, &v, &len);
        if (rc != 0 && rc != RN_ENOENT) return rc;
        if (rc == 0 && len == value_bytes) {
            memcpy(&c, v, sizeof c);
            atomic_fetch_add(&n_restored, 1);
        }
        c++;
        char *p;
        if ((rc = rn_value_edit(s, 0, value_bytes, (void **)&p))) return rc;
        memcpy(p, &c, sizeof c);
        /* Bytes of the key's own (so that compression finds nothing to share). */
        uint64_t x = (in->recs[i].key ^ (uint64_t)c) | 1;
        for (size_t b = sizeof c; b + 8 <= value_bytes; b += 8) {
            uint64_t w = xorshift(&x);
            memcpy(p + b, &w, 8);
        }
    }
    atomic_fetch_add(&n_processed, in->n);
    return 0;
}
static const struct rn_op_type count_op = {
    RN_OP_TYPE_HEAD, .name = "keyed_count", .description = "benchmark operator",
    .kind = RN_KIND_OPERATOR, .flags = RN_OP_KEYED | RN_OP_STATEFUL, .config = no_keys,
    .ctx_size = 1, .in_type = "bench_event", .outputs = gen_out, .n_outputs = 1,
    .default_key = "key", .open = count_open, .process = count_process,
};

static struct rn_job *job;
static void *runner(void *arg)
{
    char err[512];
    if (rn_job_run(job, err, sizeof err)) fprintf(stderr, "bench_state: %s\n", err);
    (void)arg;
    return NULL;
}

static int load(const char *dir, int par, const char *cache, const char *interval, int fresh)
{
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "job: bench-state\nparallelism: %d\nmax_parallelism: 128\n"
            "state: { dir: \"%s/state\", cache_size: %s }\n"
            "checkpoint: { dir: \"%s/ckpt\", interval: %s, retain: 1 }\n"
            "sources: { gen: { type: zipf_gen } }\n"
            "operators: [ { id: count, op: keyed_count, from: gen } ]\n",
            par, dir, cache, dir, interval);
    fclose(f);
    struct rn_job_options opt = {.fresh = fresh, .quiet = 1};
    job = rn_job_load(path, &opt, err, sizeof err);
    if (!job) fprintf(stderr, "%s\n", err);
    return job ? 0 : -1;
}

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

/* --fill: every key once, then the end of input (final checkpoint).
 * --restore: a start from that checkpoint, timed. */
static int fill_or_restore(const char *dir, int par, const char *cache, const char *interval)
{
    rn_op_register(&gen_source);
    rn_op_register(&count_op);
    int64_t t0 = rn_now_ns();
    if (load(dir, par, cache, interval, mode_fill)) return 1;
    int64_t t_load = rn_now_ns();
    char err[1024];
    if (mode_restore) {
        int rc = rn_job_run(job, err, sizeof err);
        int64_t t_end = rn_now_ns();
        if (rc) fprintf(stderr, "bench_state: %s\n", err);
        printf("restore: job load %.3f s, first record processed %.3f s after the start, "
               "1,024 keys done (and final checkpoint) %.3f s; %llu of %llu keys found in "
               "the restored state\n",
               secs(t_load - t0), secs(atomic_load(&first_ns) - t0), secs(t_end - t0),
               (unsigned long long)atomic_load(&n_restored),
               (unsigned long long)atomic_load(&n_processed));
        rn_job_destroy(job);
        return rc || atomic_load(&n_restored) != atomic_load(&n_processed) ? 1 : 0;
    }
    int rc = rn_job_run(job, err, sizeof err);
    if (rc) fprintf(stderr, "bench_state: %s\n", err);
    rn_job_destroy(job);
    printf("fill: %llu keys x %zu bytes, with the final checkpoint, in %.1f s\n",
           (unsigned long long)atomic_load(&n_processed), value_bytes, secs(rn_now_ns() - t0));
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp/runnel-bench-state", *interval = "10s", *cache = "64MiB";
    int seconds = 30, par = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--keys")) n_keys = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--zipf")) zipf_s = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--parallelism")) par = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--interval")) interval = argv[i + 1];
        else if (!strcmp(argv[i], "--cache")) cache = argv[i + 1];
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--value-bytes")) value_bytes = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--fill")) mode_fill = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--restore")) mode_restore = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_state: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (value_bytes < 8) value_bytes = 8;
    if (mode_fill || mode_restore) return fill_or_restore(dir, par, cache, interval);
    cdf = malloc(n_keys * sizeof *cdf);
    double sum = 0;
    for (uint64_t k = 0; k < n_keys; k++) sum += 1.0 / pow((double)(k + 1), zipf_s);
    double acc = 0;
    for (uint64_t k = 0; k < n_keys; k++) cdf[k] = (acc += 1.0 / pow((double)(k + 1), zipf_s) / sum);
    rn_op_register(&gen_source);
    rn_op_register(&count_op);
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s.yaml", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "job: bench-state\nparallelism: %d\nmax_parallelism: 128\n"
            "state: { dir: \"%s/state\", cache_size: %s }\n"
            "checkpoint: { dir: \"%s/ckpt\", interval: %s, retain: 2 }\n"
            "sources: { gen: { type: zipf_gen } }\n"
            "operators: [ { id: count, op: keyed_count, from: gen } ]\n",
            par, dir, cache, dir, interval);
    fclose(f);
    struct rn_job_options opt = {.fresh = 1};
    job = rn_job_load(path, &opt, err, sizeof err);
    if (!job) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("keyed count: %llu keys, zipf %.2f, parallelism %d, cache %s per thread, "
           "checkpoint every %s, %d s\n",
           (unsigned long long)n_keys, zipf_s, par, cache, interval, seconds);
    pthread_t th;
    pthread_create(&th, NULL, runner, NULL);
    sleep((unsigned)seconds);
    rn_job_stop(job);
    pthread_join(th, NULL);
    struct rn_buf js = RN_BUF_INIT;
    rn_job_render_json(job, &js);
    rn_buf_putc(&js, 0);
    /* Checkpoints: id, kind, duration, longest stall. */
    const char *h = strstr(js.data, "\"history\":[");
    printf("checkpoints (newest first): id kind duration_ms max_stall_ms size_MB\n");
    for (const char *p = h; p && (p = strstr(p, "{\"id\":")) != NULL; p++) {
        long long id = atoll(p + 6);
        const char *k = strstr(p, "\"kind\":\"");
        const char *d = strstr(p, "\"duration_ms\":");
        const char *sy = strstr(p, "\"max_sync_ms\":");
        const char *sz = strstr(p, "\"size_bytes\":");
        if (!k || !d || !sy || !sz) break;
        printf("  %lld %.*s %.1f %.1f %.1f\n", id, (int)strcspn(k + 8, "\""), k + 8,
               atof(d + 14), atof(sy + 14), atof(sz + 13) / 1e6);
    }
    rn_buf_free(&js);
    rn_job_destroy(job);
    free(cdf);
    return 0;
}
