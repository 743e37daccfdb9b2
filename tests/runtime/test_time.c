/*
 * test_time.c — event time: timers fire in (ts, key) order once the
 * watermark passes them, and never before; an idle split stops holding the
 * watermark back after idle_timeout (and holds it back without one); a late
 * record is counted and routed to the `late` output.
 *
 * The test brings its own record type, source, operator and sink, registered
 * through the same interface as the built-in ones.
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

/* ---- the probe record ------------------------------------------------------------ */

struct probe {
    uint64_t key;
    int64_t fire_at; /* timer to register; 0: none */
    int64_t wm;      /* on output: the watermark when it fired */
    int64_t cancel;  /* timer to delete; 0: none */
};

static const char *const probe_keys[] = {"key", NULL};
static uint64_t probe_key_of(const struct rn_record *r, int f)
{
    (void)f;
    return ((const struct probe *)r->payload)->key;
}
static void probe_json(const struct rn_record *r, struct rn_buf *out)
{
    const struct probe *p = r->payload;
    rn_buf_printf(out, "{\"key\":%llu,\"ts\":%lld}", (unsigned long long)p->key, (long long)r->ts);
}
static const struct rn_type probe_type = {
    .name = "probe",
    .description = "test record",
    .write_json = probe_json,
    .key_fields = probe_keys,
    .key_of = probe_key_of,
};
static const struct rn_type *const probe_types[] = {&probe_type, NULL};

/* ---- a source that replays `script` ---------------------------------------------- */

struct step {
    int64_t ts;
    uint64_t key;
    int64_t fire_at, cancel;
};

static struct step *script;
static size_t script_n;
static _Atomic int64_t trickle_ts;

struct gen_cfg {
    int64_t which; /* 0: the script; 1: the trickle; 2: nothing, forever */
};
static const struct rn_config_key gen_keys[] = {
    {"which", RN_CT_INT, "0", NULL, offsetof(struct gen_cfg, which), "what to emit", NULL, 0, 0, 0},
    RN_CONFIG_END,
};

static int gen_poll(struct rn_op *op, struct rn_emitter *out)
{
    const struct gen_cfg *c = rn_op_ctx(op);
    size_t *pos = rn_op_local(op);
    if (!pos) {
        pos = calloc(1, sizeof *pos);
        rn_op_set_local(op, pos);
    }
    if (c->which == 2) {
        usleep(2000);
        return RN_POLL_IDLE;
    }
    if (c->which == 1) {
        int64_t ts = atomic_fetch_add(&trickle_ts, 100);
        struct probe *p = rn_emit(out, 0, ts, 0, sizeof *p);
        memset(p, 0, sizeof *p);
        p->key = (uint64_t)(ts / 100 % 7);
        usleep(2000);
        return RN_POLL_IDLE;
    }
    if (*pos >= script_n) return RN_POLL_END;
    for (int k = 0; k < 64 && *pos < script_n; k++, (*pos)++) {
        const struct step *s = &script[*pos];
        struct probe *p = rn_emit(out, 0, s->ts, 0, sizeof *p);
        p->key = s->key;
        p->fire_at = s->fire_at;
        p->cancel = s->cancel;
        p->wm = 0;
    }
    return RN_POLL_MORE;
}
static void gen_close(struct rn_op *op)
{
    free(rn_op_local(op));
}
static const struct rn_port_decl gen_out[] = {{NULL, "probe", "probes"}};
static const struct rn_op_type gen_source = {
    RN_OP_TYPE_HEAD, .name = "probe_gen", .description = "test source",
    .kind = RN_KIND_SOURCE, .flags = RN_OP_EVENT_TIME, .config = gen_keys,
    .ctx_size = sizeof(struct gen_cfg), .outputs = gen_out, .n_outputs = 1, .poll = gen_poll,
    .close = gen_close,
    .types = probe_types,
};

/* ---- a keyed operator that registers timers and reports them ---------------------- */

static _Atomic int64_t seen_wm = RN_TS_MIN;
static _Atomic int early_fires;

static int tp_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)out;
    for (uint32_t i = 0; i < in->n; i++) {
        const struct probe *p = in->recs[i].payload;
        rn_state_key(op, in->recs[i].key);
        if (p->fire_at) rn_timer_register(op, p->fire_at, 0);
        if (p->cancel) rn_timer_delete(op, p->cancel, 0);
    }
    return 0;
}
static int tp_timer(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    if (rn_op_watermark(op) < t->ts) atomic_fetch_add(&early_fires, 1);
    struct probe *p = rn_emit(out, 0, t->ts, t->key, sizeof *p);
    memset(p, 0, sizeof *p);
    p->key = t->key;
    p->fire_at = t->ts;
    p->wm = rn_op_watermark(op);
    return 0;
}
static int tp_wm(struct rn_op *op, int64_t wm, struct rn_emitter *out)
{
    (void)op;
    (void)out;
    atomic_store(&seen_wm, wm);
    return 0;
}
static const struct rn_config_key no_keys[] = {RN_CONFIG_END};
static const struct rn_port_decl tp_out[] = {{NULL, "probe", "fired timers"}};
static const struct rn_op_type timer_probe = {
    RN_OP_TYPE_HEAD, .name = "timer_probe", .description = "test operator",
    .kind = RN_KIND_OPERATOR, .flags = RN_OP_KEYED | RN_OP_STATEFUL, .config = no_keys,
    .ctx_size = 1, .in_type = "probe", .outputs = tp_out, .n_outputs = 1, .default_key = "key",
    .process = tp_process, .on_timer = tp_timer, .on_watermark = tp_wm,
};

/* ---- a sink that keeps what it gets ----------------------------------------------- */

static struct probe *got;
static int64_t *got_ts;
static size_t got_n, got_cap;
static pthread_mutex_t got_mu = PTHREAD_MUTEX_INITIALIZER;

static int keep_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)op;
    (void)out;
    pthread_mutex_lock(&got_mu);
    for (uint32_t i = 0; i < in->n; i++) {
        if (got_n == got_cap) {
            got_cap = got_cap ? got_cap * 2 : 1024;
            got = realloc(got, got_cap * sizeof *got);
            got_ts = realloc(got_ts, got_cap * sizeof *got_ts);
        }
        got[got_n] = *(const struct probe *)in->recs[i].payload;
        got_ts[got_n++] = in->recs[i].ts;
    }
    pthread_mutex_unlock(&got_mu);
    return 0;
}
static const struct rn_op_type keep_sink = {
    RN_OP_TYPE_HEAD, .name = "keep", .description = "test sink",
    .kind = RN_KIND_SINK, .config = no_keys, .ctx_size = 1, .in_type = "*",
    .process = keep_process,
};

static char dir[] = "/tmp/rn_test_time_XXXXXX";

static struct rn_job *load(const char *yaml, const char **sets, size_t n_sets)
{
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs(yaml, f);
    fclose(f);
    struct rn_job_options opt = {.overrides = sets, .n_overrides = n_sets, .quiet = 1};
    struct rn_job *j = rn_job_load(path, &opt, err, sizeof err);
    if (!j) fprintf(stderr, "%s\n", err);
    return j;
}

/* ---- 1: timers ---------------------------------------------------------------- */

static int cmp_fire(const void *a, const void *b)
{
    const struct step *x = a, *y = b;
    if (x->fire_at != y->fire_at) return x->fire_at < y->fire_at ? -1 : 1;
    return x->key < y->key ? -1 : x->key > y->key;
}

static void test_timers(void)
{
    /* 20,000 records in event-time order, each asking for a timer up to 5 s
     * ahead on one of 300 keys; some ask twice (deduplicated), some cancel,
     * some register a cancelled timer again. */
    script_n = 20000;
    script = calloc(script_n, sizeof *script);
    srand(42);
    for (size_t i = 0; i < script_n; i++) {
        script[i].ts = 1000000 + (int64_t)i * 10;
        script[i].key = (uint64_t)(rand() % 300) + 1;
        script[i].fire_at = script[i].ts + 1 + rand() % 5000;
        if (i % 10 == 5) script[i].fire_at = script[i - 1].fire_at, script[i].key = script[i - 1].key;
        if (i % 50 == 7) script[i].cancel = script[i - 1].fire_at, script[i].key = script[i - 1].key;
        /* ... and the next one registers the cancelled timer again: it must fire
         * once (a deleted timer may wait in the heap until it reaches the top). */
        if (i % 50 == 8) script[i].fire_at = script[i - 1].cancel, script[i].key = script[i - 1].key;
    }
    /* Expected: simulate the watermark (emitted after every 100 records, at the
     * largest event time so far minus 1 ms; +inf at the end) and the timer
     * set (registering twice is one timer; deleting removes it if pending). */
    struct step *want = calloc(script_n * 2, sizeof *want);
    size_t n_want = 0;
    struct step *pending = calloc(script_n, sizeof *pending);
    size_t n_pending = 0;
    for (size_t i = 0; i <= script_n; i++) {
        int boundary = i == script_n || (i > 0 && i % 100 == 0);
        if (boundary) {
            int64_t wm = i == script_n ? INT64_MAX : script[i - 1].ts - 1;
            size_t keep = 0, first = n_want;
            for (size_t k = 0; k < n_pending; k++) {
                if (pending[k].fire_at <= wm) want[n_want++] = pending[k];
                else pending[keep++] = pending[k];
            }
            n_pending = keep;
            qsort(want + first, n_want - first, sizeof *want, cmp_fire);
        }
        if (i == script_n) break;
        const struct step *st = &script[i];
        if (st->fire_at) {
            int dup = 0;
            for (size_t k = 0; k < n_pending; k++)
                if (pending[k].key == st->key && pending[k].fire_at == st->fire_at) dup = 1;
            if (!dup) pending[n_pending++] = *st;
        }
        if (st->cancel) {
            for (size_t k = 0; k < n_pending; k++) {
                if (pending[k].key == st->key && pending[k].fire_at == st->cancel) {
                    pending[k] = pending[--n_pending];
                    break;
                }
            }
        }
    }
    free(pending);

    struct rn_job *j = load("job: timers\n"
                            "parallelism: 1\n"
                            "state: { dir: \"${STATE_DIR}\" }\n"
                            "watermark: { out_of_orderness: 0, emit_every: 100 }\n"
                            "sources: { gen: { type: probe_gen } }\n"
                            "operators:\n"
                            "  - { id: probe, op: timer_probe, from: gen }\n"
                            "sinks: { out: { type: keep, from: probe } }\n",
                            NULL, 0);
    CHECK(j != NULL);
    if (!j) return;
    char err[512];
    CHECK_EQ_INT(rn_job_run(j, err, sizeof err), 0);
    rn_job_destroy(j);
    CHECK_EQ_INT(got_n, n_want);
    size_t in_order = 0, match = 0;
    for (size_t i = 0; i < got_n; i++) {
        if (i == 0 || got_ts[i - 1] < got_ts[i] ||
            (got_ts[i - 1] == got_ts[i] && got[i - 1].key <= got[i].key))
            in_order++;
        else if (in_order + 3 > i)
            fprintf(stderr, "out of order at %zu: %lld/%llu after %lld/%llu\n", i,
                    (long long)got_ts[i], (unsigned long long)got[i].key,
                    (long long)got_ts[i - 1], (unsigned long long)got[i - 1].key);
        if (i < n_want && got[i].key == want[i].key && got[i].fire_at == want[i].fire_at) match++;
    }
    CHECK_EQ_INT(in_order, got_n);
    CHECK_EQ_INT(atomic_load(&early_fires), 0);
    CHECK_EQ_INT(match, n_want);
    free(want);
    free(script);
    got_n = 0;
}

/* ---- 2: idle splits ------------------------------------------------------------ */

struct runner {
    struct rn_job *job;
    int rc;
};
static void *run_thread(void *arg)
{
    struct runner *r = arg;
    char err[512];
    r->rc = rn_job_run(r->job, err, sizeof err);
    return NULL;
}

/* Runs the two-source job for a while and returns the consumer's watermark. */
static int64_t idle_run(const char *idle_timeout)
{
    char set[64];
    snprintf(set, sizeof set, "watermark.idle_timeout=%s", idle_timeout);
    const char *sets[] = {set};
    atomic_store(&seen_wm, RN_TS_MIN);
    atomic_store(&trickle_ts, 5000000);
    struct rn_job *j = load("job: idle\n"
                            "parallelism: 1\n"
                            "state: { dir: \"${STATE_DIR}\" }\n"
                            "watermark: { out_of_orderness: 0, idle_timeout: 30s }\n"
                            "sources:\n"
                            "  busy: { type: probe_gen, which: 1 }\n"
                            "  quiet: { type: probe_gen, which: 2 }\n"
                            "operators:\n"
                            "  - { id: probe, op: timer_probe, from: [busy, quiet] }\n"
                            "sinks: { out: { type: keep, from: probe } }\n",
                            sets, 1);
    CHECK(j != NULL);
    if (!j) return RN_TS_MIN;
    struct runner r = {j, -1};
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &r);
    /* Long enough for several idle timeouts of 100 ms. */
    int64_t deadline = rn_now_ns() + 1500000000LL;
    int64_t wm = RN_TS_MIN;
    while (rn_now_ns() < deadline) {
        usleep(20000);
        wm = atomic_load(&seen_wm);
        if (strcmp(idle_timeout, "0") != 0 && wm > 5000000) break;
    }
    rn_job_stop(j);
    pthread_join(th, NULL);
    CHECK_EQ_INT(r.rc, 0);
    rn_job_destroy(j);
    got_n = 0;
    return wm;
}

static void test_idle(void)
{
    int64_t held = idle_run("0");
    CHECK_EQ_INT(held, RN_TS_MIN); /* the quiet split holds event time back */
    int64_t moved = idle_run("100ms");
    CHECK(moved > 5000000);        /* ...until it is declared idle */
}

/* ---- 3: late records ------------------------------------------------------------ */

static void test_late(void)
{
    char log[256], late[256], out[256];
    snprintf(log, sizeof log, "%s/late.jsonl", dir);
    snprintf(late, sizeof late, "%s/late-out.jsonl", dir);
    snprintf(out, sizeof out, "%s/counts.jsonl", dir);
    FILE *f = fopen(log, "w");
    /* u1 clicks every second for 60 s; then one click 40 s in the past. */
    for (int i = 0; i < 60; i++)
        fprintf(f, "{\"type\":\"click\",\"ts\":%d,\"request\":\"r%d\",\"user\":\"u1\",\"item\":\"i\"}\n",
                1000000 + i * 1000, i);
    fprintf(f, "{\"type\":\"click\",\"ts\":1019500,\"request\":\"rl\",\"user\":\"u1\",\"item\":\"i\"}\n");
    fclose(f);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "job: late\n"
             "state: { dir: \"${STATE_DIR}\" }\n"
             "watermark: { out_of_orderness: 1s, emit_every: 1 }\n"
             "sources: { logs: { type: file, path: %s } }\n"
             "operators:\n"
             "  - { id: collect, op: log_collector, from: logs }\n"
             "  - { id: counts, op: window_count, from: collect, size: 10s, late: late }\n"
             "sinks:\n"
             "  out: { type: file, path: %s, from: counts }\n"
             "  late: { type: file, path: %s }\n",
             log, out, late);
    struct rn_job *j = load(yaml, NULL, 0);
    CHECK(j != NULL);
    if (!j) return;
    char err[512];
    CHECK_EQ_INT(rn_job_run(j, err, sizeof err), 0);
    struct rn_buf js = RN_BUF_INIT;
    rn_job_render_json(j, &js);
    rn_buf_putc(&js, 0);
    CHECK_STR_CONTAINS(js.data, "\"late\":1,");
    rn_buf_free(&js);
    rn_job_destroy(j);
    size_t n = 0;
    FILE *lf = fopen(late, "r");
    char line[512] = "";
    while (lf && fgets(line, sizeof line, lf)) n++;
    if (lf) fclose(lf);
    CHECK_EQ_INT(n, 1);
    CHECK_STR_CONTAINS(line, "\"request\":\"rl\"");
    /* Six full windows of ten clicks; the late click is in none. */
    FILE *of = fopen(out, "r");
    size_t windows = 0, tens = 0;
    while (of && fgets(line, sizeof line, of)) {
        windows++;
        tens += strstr(line, "\"count\":10}") != NULL;
    }
    if (of) fclose(of);
    CHECK_EQ_INT(windows, 6);
    CHECK_EQ_INT(tens, 6);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    rn_op_register(&gen_source);
    rn_op_register(&timer_probe);
    rn_op_register(&keep_sink);
    setenv("STATE_DIR", dir, 1);
    test_timers();
    test_idle();
    test_late();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    free(got);
    free(got_ts);
    return rn_test_summary();
}
