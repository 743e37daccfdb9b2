/*
 * test_state_evict.c — what the write-back cache evicts when state waits for
 * timers and does not all fit. Each record opens a "request": a 512-byte value
 * under its own key and a timer WINDOW ms of event time later, which reads
 * the value back, checks it and clears it (the online joiner's shape). The
 * open requests need about 1.5 times the cache. Least-recently-used eviction
 * evicts the oldest open request, which is the next to close, so nearly every
 * request would be written to RocksDB and read back to close; the cache's
 * eviction goes by when the timers fire instead, so the part that does not
 * fit is written out and the rest closes from memory. Checked: every value
 * comes back intact, every timer fires once, and fewer than half of the
 * requests are read from RocksDB (about 40 %; with eviction by idle time
 * alone, over 80 %). Then the same without timers (every record reads the
 * value of a key WINDOW records back): no timer to go by, so the cache
 * evicts by idle time, the oldest first, and those reads nearly all go to
 * RocksDB. Last, without timers again, half of the values small (16 bytes)
 * and half large, with room for less than half of them: evicting a large
 * value frees 5 times what a small one does for the same one read back, so
 * the cache evicts by idle time times size. The small values stay and fewer
 * than half of the reads go to RocksDB (about a third; by idle time alone,
 * nearly all).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_job.h"
#include "rn_operator.h"
#include "rn_state.h"
#include "rn_test.h"
#include "rn_test_job.h"

#define N_REC 160000
#define WINDOW 40000 /* ms of event time = records: one record per ms */
#define VLEN 512
#define SMALL 16

struct rec {
    uint64_t key;
    int64_t i;
};

RN_TEST_KEYED_TYPE(rec_type, "evict_rec");

static int src_poll(struct rn_op *op, struct rn_emitter *out)
{
    int64_t *pos = rn_test_source_pos(op);
    if (*pos >= N_REC) return RN_POLL_END;
    for (int k = 0; k < 256 && *pos < N_REC; k++, (*pos)++) {
        struct rec *r = rn_emit(out, 0, 1000 + *pos, 0, sizeof *r);
        r->key = (uint64_t)*pos * 2654435761u + 1;
        r->i = *pos;
    }
    return RN_POLL_MORE;
}
static const struct rn_config_key no_keys[] = {RN_CONFIG_END};
static const struct rn_port_decl rec_out[] = {{NULL, "evict_rec", "records"}};
static const struct rn_op_type rec_source = {
    RN_OP_TYPE_HEAD, .name = "evict_src", .description = "test source",
    .kind = RN_KIND_SOURCE, .flags = RN_OP_EVENT_TIME, .config = no_keys, .ctx_size = 1,
    .outputs = rec_out, .n_outputs = 1, .poll = src_poll, .close = rn_test_source_close, .types = rec_types,
};

static _Atomic int timers_on; /* 1: each request closes on its timer; 0: by a later record */
static _Atomic int mixed;     /* 1: half of the values SMALL bytes long */
static _Atomic int n_fired, n_good, n_bad;

static size_t vlen(uint64_t key)
{
    return atomic_load(&mixed) && (key & 2) ? SMALL : VLEN;
}

static void fill(unsigned char *v, uint64_t key)
{
    uint64_t x = key * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t b = 0; b < vlen(key); b++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[b] = (unsigned char)x; /* incompressible: LZ4 cannot shrink it away */
    }
}

static int check_and_clear(struct rn_state *st, uint64_t key)
{
    const void *v;
    size_t len;
    unsigned char want[VLEN];
    fill(want, key);
    int rc = rn_value_get(st, 0, &v, &len);
    if (rc == 0 && len == vlen(key) && !memcmp(v, want, len)) atomic_fetch_add(&n_good, 1);
    else atomic_fetch_add(&n_bad, 1);
    return rn_value_clear(st, 0);
}

static int e_open(struct rn_op *op)
{
    struct rn_state *st = rn_state_value(op, "requests");
    rn_op_set_local(op, st);
    return st ? 0 : RN_ESTATE;
}
static int e_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)out;
    struct rn_state *st = rn_op_local(op);
    for (uint32_t j = 0; j < in->n; j++) {
        const struct rec *r = in->recs[j].payload;
        unsigned char v[VLEN];
        fill(v, in->recs[j].key);
        rn_state_key(op, in->recs[j].key);
        int rc = rn_value_put(st, 0, v, vlen(in->recs[j].key));
        if (!rc && atomic_load(&timers_on)) rc = rn_timer_register(op, 1000 + r->i + WINDOW, 0);
        if (rc) return rc;
        if (!atomic_load(&timers_on) && r->i >= WINDOW) {
            uint64_t old = (uint64_t)(r->i - WINDOW) * 2654435761u + 1;
            rn_state_key(op, old);
            if ((rc = check_and_clear(st, old))) return rc;
        }
    }
    return 0;
}
static int e_timer(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    (void)out;
    atomic_fetch_add(&n_fired, 1);
    return check_and_clear(rn_op_local(op), t->key);
}
static const struct rn_op_type evict_op = {
    RN_OP_TYPE_HEAD, .name = "evict_requests", .description = "test operator",
    .kind = RN_KIND_OPERATOR, .flags = RN_OP_KEYED | RN_OP_STATEFUL, .config = no_keys,
    .ctx_size = 1, .in_type = "evict_rec", .outputs = rec_out, .n_outputs = 1,
    .default_key = "key", .open = e_open, .process = e_process, .on_timer = e_timer,
};

/* Runs the job once; returns the state's RocksDB reads (-1 on failure). */
static long long run(const char *path)
{
    char err[1024];
    atomic_store(&n_fired, 0);
    atomic_store(&n_good, 0);
    atomic_store(&n_bad, 0);
    struct rn_job_options opt = {.quiet = 1, .fresh = 1};
    struct rn_job *job = rn_job_load(path, &opt, err, sizeof err);
    CHECK(job != NULL);
    if (!job) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    int rc = rn_job_run(job, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    CHECK_EQ_INT(rc, 0);
    long long reads = 0, evictions = 0;
    struct rn_buf js = RN_BUF_INIT;
    rn_job_render_json(job, &js);
    rn_buf_putc(&js, 0);
    const char *p = strstr(js.data, "\"db_reads\":");
    if (p) reads = atoll(p + strlen("\"db_reads\":"));
    p = strstr(js.data, "\"cache_evictions\":");
    if (p) evictions = atoll(p + strlen("\"cache_evictions\":"));
    CHECK(strstr(js.data, "\"db_reads\":") != NULL);
    rn_buf_free(&js);
    rn_job_destroy(job);
    fprintf(stderr, "%s%s: %d values intact, %d not, %d timers fired, %lld evictions, %lld RocksDB reads\n",
            atomic_load(&timers_on) ? "with timers" : "without timers",
            atomic_load(&mixed) ? ", half small" : "", atomic_load(&n_good),
            atomic_load(&n_bad), atomic_load(&n_fired), evictions, reads);
    CHECK(evictions > N_REC / 10); /* the state did outgrow the cache */
    return reads;
}

static void write_job(const char *path, const char *dir, int cache_size)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f,
            "job: state-evict\nparallelism: 1\n"
            "state: { dir: \"%s/state\", cache_size: %d }\n"
            "watermark: { out_of_orderness: 0 }\n"
            "sources: { src: { type: evict_src } }\n"
            "operators: [ { id: e, op: evict_requests, from: src } ]\n",
            dir, cache_size);
    fclose(f);
}

int main(void)
{
    char dir[] = "/tmp/rn_test_state_evict_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    rn_op_register(&rec_source);
    rn_op_register(&evict_op);
    char path[256], path_small[256];
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    snprintf(path_small, sizeof path_small, "%s/job_small.yaml", dir);
    /* WINDOW open requests of 512 + 96 bytes: about 24 MB; the cache holds
     * two thirds of them. WINDOW is well above the 4,096 evicted values that
     * may wait to be written (and can be taken back from there). With half of
     * them SMALL (16 + 96 bytes), WINDOW values need 360 bytes each; the
     * second job's cache has room for 290: by idle time alone the oldest 20 %
     * go, which are the ones read next (nearly every read misses); by idle
     * time times size the small ones stay, and about a third of reads miss. */
    write_job(path, dir, WINDOW * (VLEN + 96) * 2 / 3);
    write_job(path_small, dir, WINDOW * 290);

    atomic_store(&timers_on, 1);
    long long reads = run(path);
    CHECK_EQ_INT(atomic_load(&n_fired), N_REC);
    CHECK_EQ_INT(atomic_load(&n_good), N_REC);
    CHECK_EQ_INT(atomic_load(&n_bad), 0);
    CHECK(reads >= 0 && reads < N_REC / 2);

    atomic_store(&timers_on, 0);
    reads = run(path);
    CHECK_EQ_INT(atomic_load(&n_good), N_REC - WINDOW);
    CHECK_EQ_INT(atomic_load(&n_bad), 0);
    CHECK(reads > (N_REC - WINDOW) * 9 / 10);

    atomic_store(&mixed, 1);
    reads = run(path_small);
    CHECK_EQ_INT(atomic_load(&n_good), N_REC - WINDOW);
    CHECK_EQ_INT(atomic_load(&n_bad), 0);
    CHECK(reads >= 0 && reads < (N_REC - WINDOW) / 2);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
