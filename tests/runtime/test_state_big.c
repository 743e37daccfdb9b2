/*
 * test_state_big.c — keyed state far larger than memory set aside for it:
 * 2,000,000 keys with a 4 MiB write-back cache and an 8 MiB block cache.
 * Pass 1 writes a value for every key; pass 2 reads every key back and checks
 * it; pass 3 clears them and checks they are gone. Most of it lives in
 * RocksDB's SST files, not in memory. RUNNEL_BIG_KEYS changes the count (the
 * sanitizer trees run 100,000-200,000 keys); a smaller count scales the caches
 * and the memtable down with it, so that the state still outgrows them and
 * the checks below mean the same at every size.
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

struct probe {
    uint64_t key;
    int64_t pass;
};

static const char *const probe_keys[] = {"key", NULL};
static uint64_t probe_key_of(const struct rn_record *r, int f)
{
    (void)f;
    return ((const struct probe *)r->payload)->key;
}
static void probe_json(const struct rn_record *r, struct rn_buf *out)
{
    (void)r;
    rn_buf_puts(out, "{}");
}
static const struct rn_type probe_type = {
    .name = "big_probe",
    .description = "test record",
    .write_json = probe_json,
    .key_fields = probe_keys,
    .key_of = probe_key_of,
};
static const struct rn_type *const probe_types[] = {&probe_type, NULL};

static uint64_t n_keys = 2000000;

/* Emits every key once per pass, passes 1..3, keys in a scrambled order. */
static int gen_poll(struct rn_op *op, struct rn_emitter *out)
{
    uint64_t *pos = rn_op_local(op);
    if (!pos) {
        pos = calloc(1, sizeof *pos);
        rn_op_set_local(op, pos);
    }
    for (int k = 0; k < 1024; k++, (*pos)++) {
        if (*pos >= 3 * n_keys) return RN_POLL_END;
        uint64_t i = *pos % n_keys;
        struct probe *p = rn_emit(out, 0, (int64_t)*pos, 0, sizeof *p);
        p->key = (i * 2654435761u) % n_keys + 1;
        p->pass = (int64_t)(*pos / n_keys) + 1;
    }
    return RN_POLL_MORE;
}
static void gen_close(struct rn_op *op)
{
    free(rn_op_local(op));
}
static const struct rn_config_key no_keys[] = {RN_CONFIG_END};
static const struct rn_port_decl gen_out[] = {{NULL, "big_probe", "probes"}};
static const struct rn_op_type gen_source = {
    RN_OP_TYPE_HEAD, .name = "big_gen", .description = "test source",
    .kind = RN_KIND_SOURCE, .config = no_keys, .ctx_size = 1, .outputs = gen_out, .n_outputs = 1,
    .poll = gen_poll, .close = gen_close,
    .types = probe_types,
};

static _Atomic uint64_t n_written, n_ok, n_bad, n_gone;

struct value {
    uint64_t key;
    char pad[56]; /* 64-byte values, as db_bench's default */
};

static int st_open(struct rn_op *op)
{
    struct rn_state *s = rn_state_value(op, "v");
    rn_op_set_local(op, s);
    return s ? 0 : RN_ESTATE;
}

static int st_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)out;
    struct rn_state *s = rn_op_local(op);
    for (uint32_t i = 0; i < in->n; i++) {
        const struct probe *p = in->recs[i].payload;
        rn_state_key(op, in->recs[i].key);
        const void *v;
        size_t len;
        if (p->pass == 1) {
            /* Incompressible bytes, so LZ4 cannot shrink the state away. */
            struct value val;
            uint64_t x = p->key * 0x9e3779b97f4a7c15ULL;
            for (size_t b = 0; b < sizeof val.pad; b++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                val.pad[b] = (char)x;
            }
            val.key = p->key * 7;
            rn_value_put(s, 0, &val, sizeof val);
            atomic_fetch_add(&n_written, 1);
        } else if (p->pass == 2) {
            if (rn_value_get(s, 0, &v, &len) == 0 && len == sizeof(struct value) &&
                ((const struct value *)v)->key == p->key * 7)
                atomic_fetch_add(&n_ok, 1);
            else
                atomic_fetch_add(&n_bad, 1);
            rn_value_clear(s, 0);
        } else {
            if (rn_value_get(s, 0, &v, &len) == RN_ENOENT) atomic_fetch_add(&n_gone, 1);
        }
    }
    return 0;
}
static const struct rn_op_type state_probe = {
    RN_OP_TYPE_HEAD, .name = "state_probe", .description = "test operator",
    .kind = RN_KIND_OPERATOR, .flags = RN_OP_KEYED | RN_OP_STATEFUL, .config = no_keys,
    .ctx_size = 1, .in_type = "big_probe", .outputs = gen_out, .n_outputs = 1,
    .default_key = "key", .open = st_open, .process = st_process,
};

static struct rn_job *job;
static _Atomic int job_done;
static int job_rc;

static void *runner(void *arg)
{
    char err[512];
    (void)arg;
    job_rc = rn_job_run(job, err, sizeof err);
    if (job_rc) fprintf(stderr, "%s\n", err);
    atomic_store(&job_done, 1);
    return NULL;
}

/* Sum of a figure over every keyed-state row of the status JSON. */
static uint64_t state_sum(const char *key)
{
    struct rn_buf js = RN_BUF_INIT;
    rn_job_render_json(job, &js);
    rn_buf_putc(&js, 0);
    uint64_t v = 0;
    size_t kl = strlen(key);
    for (const char *p = js.data; (p = strstr(p, key)) != NULL; p += kl) v += strtoull(p + kl, NULL, 10);
    rn_buf_free(&js);
    return v;
}

int main(void)
{
    const char *nk = getenv("RUNNEL_BIG_KEYS");
    if (nk) n_keys = strtoull(nk, NULL, 10);
    char dir[] = "/tmp/rn_test_big_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    rn_op_register(&gen_source);
    rn_op_register(&state_probe);
    /* 4 MiB write-back cache, 8 MiB block cache and memtable for 2,000,000
     * keys; in proportion for fewer (the memtable at least RocksDB's 1 MiB). */
    double scale = n_keys < 2000000 ? (double)n_keys / 2000000 : 1.0;
    uint64_t cache = (uint64_t)((4u << 20) * scale), block = (uint64_t)((8u << 20) * scale);
    uint64_t wbuf = (uint64_t)((8u << 20) * scale);
    if (cache < (64u << 10)) cache = 64u << 10;
    if (block < (64u << 10)) block = 64u << 10;
    if (wbuf < (1u << 20)) wbuf = 1u << 20;
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "job: big\nparallelism: 2\n"
            "state: { dir: %s/state, cache_size: %llu, block_cache: %llu, write_buffer: %llu }\n"
            "sources: { gen: { type: big_gen } }\n"
            "operators: [ { id: probe, op: state_probe, from: gen } ]\n",
            dir, (unsigned long long)cache, (unsigned long long)block, (unsigned long long)wbuf);
    fclose(f);
    struct rn_job_options opt = {.quiet = 1};
    job = rn_job_load(path, &opt, err, sizeof err);
    CHECK(job != NULL);
    if (!job) {
        fprintf(stderr, "%s\n", err);
        return rn_test_summary();
    }
    int64_t t0 = rn_now_ns();
    pthread_t th;
    pthread_create(&th, NULL, runner, NULL);
    /* The largest the state got on disk (compaction shrinks it after the
     * clears of pass 3, so the end says little). */
    uint64_t sst = 0;
    while (!atomic_load(&job_done)) {
        uint64_t now = state_sum("\"sst_bytes\":");
        if (now > sst) sst = now;
        usleep(100000);
    }
    pthread_join(th, NULL);
    CHECK_EQ_INT(job_rc, 0);
    double secs = (double)(rn_now_ns() - t0) / 1e9;
    uint64_t evictions = state_sum("\"cache_evictions\":");
    rn_job_destroy(job);
    printf("%llu keys in %.1f s; SST at most %.1f MB (caches %.1f MB); %llu cache evictions\n",
           (unsigned long long)n_keys, secs, (double)sst / 1e6, (double)(cache + block) / 1e6,
           (unsigned long long)evictions);
    CHECK_EQ_INT(atomic_load(&n_written), n_keys);
    CHECK_EQ_INT(atomic_load(&n_ok), n_keys);
    CHECK_EQ_INT(atomic_load(&n_bad), 0);
    CHECK_EQ_INT(atomic_load(&n_gone), n_keys);
    CHECK(evictions > n_keys);
    /* At its peak, far beyond the caches (at every size: they scale with it). */
    CHECK(sst > 4 * (cache + block));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
