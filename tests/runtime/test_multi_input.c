/*
 * test_multi_input.c — operators with several typed inputs, and broadcast
 * edges.
 *
 * The test brings two record types ("lrec", "rrec"), a source for each, a
 * keyed two-input operator ("pair": input 1 "left" takes lrec, input 2
 * "right" takes rrec) and a sink, registered through the same interface as
 * the built-in ones, and checks that:
 *   1. each batch reaches process() with the index of the input it came on;
 *   2. a stream of the wrong type on input 2 is refused at load, at its
 *      position in `from:`, naming the input;
 *   3. a broadcast input (YAML `broadcast:`, or RN_IN_BROADCAST in the type)
 *      reaches every subtask whole, and the plan and status page say so;
 *   4. the operator's watermark is the minimum over its inputs: a timer fires
 *      only once both inputs passed it;
 *   5. a checkpoint of a job with a two-input operator restores to the same
 *      output as an uninterrupted run.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_checkpoint.h"
#include "rn_job.h"
#include "rn_operator.h"
#include "rn_state.h"
#include "rn_test.h"

/* ---- record types ---------------------------------------------------------------- */

struct rec {
    uint64_t key;
    int64_t fire_at; /* left: a timer to register; 0: none */
    int64_t seq;     /* output: per-key (left) or per-instance (right) count */
    int64_t input;   /* output: 0, 1, or 9 for a fired timer */
    int64_t wm;      /* output of a timer: the watermark when it fired */
};

static const char *const rec_keys[] = {"key", NULL};
static uint64_t rec_key_of(const struct rn_record *r, int f)
{
    (void)f;
    return ((const struct rec *)r->payload)->key;
}
static void rec_json(const struct rn_record *r, struct rn_buf *out)
{
    const struct rec *p = r->payload;
    rn_buf_printf(out, "{\"key\":%llu}", (unsigned long long)p->key);
}
static const struct rn_type lrec_type = {
    .name = "lrec",
    .description = "left test record",
    .write_json = rec_json,
    .key_fields = rec_keys,
    .key_of = rec_key_of,
};
static const struct rn_type *const lrec_types[] = {&lrec_type, NULL};
static const struct rn_type rrec_type = {
    .name = "rrec",
    .description = "right test record",
    .write_json = rec_json,
    .key_fields = rec_keys,
    .key_of = rec_key_of,
};
static const struct rn_type *const rrec_types[] = {&rrec_type, NULL};

/* ---- sources: `n` records of lrec (which: 0) or rrec (which: 1) -------------------
 * Record i has ts 1,000,000 + i * step and key i % keys; left record 0 asks for
 * a timer at fire_at. After `hold` records (0: never) the source idles until
 * `released` is set (follow mode). Its position is checkpointed. */

struct gen_cfg {
    int64_t which, n, step, keys, hold, fire_at;
};
static const struct rn_config_key gen_keys[] = {
    {"which", RN_CT_INT, "0", NULL, offsetof(struct gen_cfg, which), "0: lrec, 1: rrec", NULL, 0,
     0, 1},
    {"n", RN_CT_INT, "100", NULL, offsetof(struct gen_cfg, n), "records", NULL, 0, 0, 1 << 30},
    {"step", RN_CT_INT, "1000", NULL, offsetof(struct gen_cfg, step), "ts step", NULL, 0, 0,
     1 << 30},
    {"keys", RN_CT_INT, "10", NULL, offsetof(struct gen_cfg, keys), "distinct keys", NULL, 0, 1,
     1 << 30},
    {"hold", RN_CT_INT, "0", NULL, offsetof(struct gen_cfg, hold), "idle after this many", NULL,
     0, 0, 1 << 30},
    {"fire_at", RN_CT_INT, "0", NULL, offsetof(struct gen_cfg, fire_at), "timer of record 0",
     NULL, 0, 0, (int64_t)1 << 40},
    RN_CONFIG_END,
};

static _Atomic int released;

static int64_t *gen_pos(struct rn_op *op)
{
    int64_t *pos = rn_op_local(op);
    if (!pos) {
        pos = calloc(1, sizeof *pos);
        rn_op_set_local(op, pos);
    }
    return pos;
}
static int gen_poll(struct rn_op *op, struct rn_emitter *out)
{
    const struct gen_cfg *c = rn_op_ctx(op);
    int64_t *pos = gen_pos(op);
    if (*pos >= c->n) return RN_POLL_END;
    if (c->hold && *pos >= c->hold && !atomic_load(&released)) {
        usleep(1000);
        return RN_POLL_IDLE;
    }
    for (int k = 0; k < 16 && *pos < c->n && !(c->hold && *pos >= c->hold && !atomic_load(&released));
         k++, (*pos)++) {
        struct rec *p = rn_emit(out, 0, 1000000 + *pos * c->step, 0, sizeof *p);
        memset(p, 0, sizeof *p);
        p->key = (uint64_t)(*pos % c->keys);
        if (*pos == 0) p->fire_at = c->fire_at;
    }
    return RN_POLL_MORE;
}
static int gen_snapshot(struct rn_op *op, uint64_t id, struct rn_snapshot_writer *w)
{
    (void)id;
    rn_snapshot_write_i64(w, *gen_pos(op));
    return 0;
}
static int gen_restore(struct rn_op *op, struct rn_snapshot_reader *r)
{
    return rn_snapshot_read_i64(r, gen_pos(op));
}
static void gen_close(struct rn_op *op)
{
    free(rn_op_local(op));
}
static const struct rn_port_decl lgen_out[] = {{NULL, "lrec", "left records"}};
static const struct rn_port_decl rgen_out[] = {{NULL, "rrec", "right records"}};
static const struct rn_op_type lgen_source = {
    RN_OP_TYPE_HEAD, .name = "lgen", .description = "test source", .kind = RN_KIND_SOURCE,
    .flags = RN_OP_EVENT_TIME, .config = gen_keys, .ctx_size = sizeof(struct gen_cfg),
    .outputs = lgen_out, .n_outputs = 1, .poll = gen_poll, .close = gen_close,
    .snapshot = gen_snapshot, .restore = gen_restore,
    .types = lrec_types,
};
static const struct rn_op_type rgen_source = {
    RN_OP_TYPE_HEAD, .name = "rgen", .description = "test source", .kind = RN_KIND_SOURCE,
    .flags = RN_OP_EVENT_TIME, .config = gen_keys, .ctx_size = sizeof(struct gen_cfg),
    .outputs = rgen_out, .n_outputs = 1, .poll = gen_poll, .close = gen_close,
    .snapshot = gen_snapshot, .restore = gen_restore,
    .types = rrec_types,
};

/* ---- the two-input operator --------------------------------------------------------- */

#define MAX_SUB 4
static _Atomic uint64_t counts[MAX_SUB][2]; /* records per subtask and input */
static _Atomic uint64_t wrong_input;        /* a record whose type is not its input's */
static _Atomic uint64_t bad_index;          /* rn_op_input() out of range in process() */
static _Atomic int fired;
static _Atomic int64_t fired_wm = RN_TS_MIN, seen_wm = RN_TS_MIN;

static int pair_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    int input = rn_op_input(op);
    if (input < 0 || input > 1) {
        atomic_fetch_add(&bad_index, 1);
        return 0;
    }
    int want = rn_types_find(rn_op_types(op), input == 0 ? "lrec" : "rrec");
    uint32_t s = rn_op_subtask(op);
    int64_t *right_seen = rn_op_local(op);
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_record *r = &in->recs[i];
        const struct rec *p = r->payload;
        if (r->type != want) atomic_fetch_add(&wrong_input, 1);
        if (s < MAX_SUB) atomic_fetch_add(&counts[s][input], 1);
        struct rec *o = rn_emit(out, 0, r->ts, p->key, sizeof *o);
        memset(o, 0, sizeof *o);
        o->key = p->key;
        o->input = input;
        if (input == 0) {
            /* Keyed state under the left record's key. */
            rn_state_key(op, r->key);
            struct rn_state *st = rn_state_value(op, "n");
            const void *v;
            size_t len;
            int64_t n = 0;
            if (rn_value_get(st, 0, &v, &len) == 0 && len == sizeof n) memcpy(&n, v, sizeof n);
            n++;
            rn_value_put(st, 0, &n, sizeof n);
            o->seq = n;
            if (p->fire_at) rn_timer_register(op, p->fire_at, 0);
        } else {
            /* The instance's own memory (checkpointed by snapshot()). */
            o->seq = ++*right_seen;
        }
    }
    return 0;
}
static int pair_open(struct rn_op *op)
{
    if (!rn_op_local(op)) rn_op_set_local(op, calloc(1, sizeof(int64_t)));
    return 0;
}
static int pair_snapshot(struct rn_op *op, uint64_t id, struct rn_snapshot_writer *w)
{
    (void)id;
    rn_snapshot_write_i64(w, *(int64_t *)rn_op_local(op));
    return 0;
}
static int pair_restore(struct rn_op *op, struct rn_snapshot_reader *r)
{
    pair_open(op);
    return rn_snapshot_read_i64(r, rn_op_local(op));
}
static void pair_close(struct rn_op *op)
{
    free(rn_op_local(op));
}
static int pair_timer(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    if (rn_op_input(op) != -1) atomic_fetch_add(&bad_index, 1);
    atomic_fetch_add(&fired, 1);
    atomic_store(&fired_wm, rn_op_watermark(op));
    struct rec *o = rn_emit(out, 0, t->ts, t->key, sizeof *o);
    memset(o, 0, sizeof *o);
    o->key = t->key;
    o->fire_at = t->ts;
    o->input = 9;
    o->wm = rn_op_watermark(op);
    return 0;
}
static int pair_wm(struct rn_op *op, int64_t wm, struct rn_emitter *out)
{
    (void)op;
    (void)out;
    atomic_store(&seen_wm, wm);
    return 0;
}
static const struct rn_config_key no_keys[] = {RN_CONFIG_END};
static const struct rn_port_decl pair_out[] = {{NULL, "lrec", "what it saw"}};
static const struct rn_input_decl pair_inputs[] = {
    {"left", "lrec", 0, "key", "left records"},
    {"right", "rrec", 0, "key", "right records"},
};
static const struct rn_input_decl pair_b_inputs[] = {
    {"left", "lrec", 0, "key", "left records"},
    {"right", "rrec", RN_IN_BROADCAST, NULL, "right records, to every subtask"},
};
#define PAIR_FIELDS                                                                            \
    .kind = RN_KIND_OPERATOR, .flags = RN_OP_KEYED | RN_OP_STATEFUL, .config = no_keys,         \
    .ctx_size = 1, .outputs = pair_out, .n_outputs = 1, .process = pair_process,               \
    .open = pair_open, .close = pair_close, .on_timer = pair_timer, .on_watermark = pair_wm,   \
    .snapshot = pair_snapshot, .restore = pair_restore, .n_inputs = 2
static const struct rn_op_type pair_op = {
    RN_OP_TYPE_HEAD, .name = "pair", .description = "test operator", PAIR_FIELDS,
    .inputs = pair_inputs,
};
static const struct rn_op_type pair_b_op = {
    RN_OP_TYPE_HEAD, .name = "pair_b", .description = "test operator", PAIR_FIELDS,
    .inputs = pair_b_inputs,
};

/* ---- a sink that keeps what it gets ------------------------------------------------ */

static struct rec *got;
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
        }
        got[got_n++] = *(const struct rec *)in->recs[i].payload;
    }
    pthread_mutex_unlock(&got_mu);
    return 0;
}
static const struct rn_op_type keep_sink = {
    RN_OP_TYPE_HEAD, .name = "keep", .description = "test sink", .kind = RN_KIND_SINK,
    .config = no_keys, .ctx_size = 1, .in_type = "*", .process = keep_process,
};

/* ---- helpers ------------------------------------------------------------------------ */

static char dir[] = "/tmp/rn_test_multi_XXXXXX";

static struct rn_job *load_err(const char *yaml, char *err, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs(yaml, f);
    fclose(f);
    struct rn_job_options opt = {.quiet = 1};
    return rn_job_load(path, &opt, err, errlen);
}
static struct rn_job *load(const char *yaml)
{
    char err[1024];
    struct rn_job *j = load_err(yaml, err, sizeof err);
    if (!j) fprintf(stderr, "%s\n", err);
    return j;
}

static void reset(void)
{
    for (int s = 0; s < MAX_SUB; s++)
        for (int i = 0; i < 2; i++) atomic_store(&counts[s][i], 0);
    atomic_store(&fired, 0);
    atomic_store(&fired_wm, RN_TS_MIN);
    atomic_store(&seen_wm, RN_TS_MIN);
    atomic_store(&released, 0);
    got_n = 0;
}

static uint64_t total(int input)
{
    uint64_t n = 0;
    for (int s = 0; s < MAX_SUB; s++) n += atomic_load(&counts[s][input]);
    return n;
}

struct runner {
    struct rn_job *job;
    int rc;
};
static void *run_thread(void *arg)
{
    struct runner *r = arg;
    char err[512];
    r->rc = rn_job_run(r->job, err, sizeof err);
    if (r->rc) fprintf(stderr, "run: %s\n", err);
    return NULL;
}

/* ---- 1: records arrive with their input's index -------------------------------------- */

static void test_inputs(void)
{
    reset();
    struct rn_job *j = load("job: inputs\n"
                            "parallelism: 1\n"
                            "state: { dir: \"${STATE_DIR}\" }\n"
                            "sources:\n"
                            "  l: { type: lgen, n: 3000 }\n"
                            "  r: { type: rgen, n: 1700 }\n"
                            "operators:\n"
                            "  - { id: p, op: pair, from: [l, r] }\n"
                            "sinks: { out: { type: keep, from: p } }\n");
    CHECK(j != NULL);
    if (!j) return;
    char err[512];
    CHECK_EQ_INT(rn_job_run(j, err, sizeof err), 0);
    rn_job_destroy(j);
    CHECK_EQ_INT(atomic_load(&counts[0][0]), 3000);
    CHECK_EQ_INT(atomic_load(&counts[0][1]), 1700);
    CHECK_EQ_INT(atomic_load(&wrong_input), 0);
    CHECK_EQ_INT(atomic_load(&bad_index), 0);
    size_t n0 = 0, n1 = 0;
    for (size_t i = 0; i < got_n; i++) {
        n0 += got[i].input == 0;
        n1 += got[i].input == 1;
    }
    CHECK_EQ_INT(n0, 3000);
    CHECK_EQ_INT(n1, 1700);
}

/* ---- 2: load-time checks ------------------------------------------------------------ */

static void test_refused(void)
{
    char log[256], yaml[1024], err[1024];
    snprintf(log, sizeof log, "%s/lines.txt", dir);
    FILE *f = fopen(log, "w");
    fputs("x\n", f);
    fclose(f);
    /* Line 7 is the operator; 'logs' on input 2 gives raw, not rrec. */
    const char *op_line = "  - { id: p, op: pair, from: [l, logs] }\n";
    snprintf(yaml, sizeof yaml,
             "job: refused\n"
             "state: { dir: \"${STATE_DIR}\" }\n"
             "sources:\n"
             "  l: { type: lgen }\n"
             "  logs: { type: file, path: %s }\n"
             "operators:\n"
             "%s"
             "sinks: { out: { type: keep, from: p } }\n",
             log, op_line);
    struct rn_job *j = load_err(yaml, err, sizeof err);
    CHECK(j == NULL);
    rn_job_destroy(j);
    char where[64];
    snprintf(where, sizeof where, "job.yaml:7:%d:", (int)(strstr(op_line, "logs]") - op_line) + 1);
    CHECK_STR_CONTAINS(err, where);
    CHECK_STR_CONTAINS(err, "input 2 ('right')");
    CHECK_STR_CONTAINS(err, "takes 'rrec' records, but 'logs' gives 'raw'");

    /* One stream for two inputs. */
    j = load_err("job: refused\n"
                 "sources: { l: { type: lgen } }\n"
                 "operators:\n"
                 "  - { id: p, op: pair, from: l }\n",
                 err, sizeof err);
    CHECK(j == NULL);
    rn_job_destroy(j);
    CHECK_STR_CONTAINS(err, "job.yaml:4:");
    CHECK_STR_CONTAINS(err, "has 2 inputs");

    /* broadcast: must name a stream of from:. */
    j = load_err("job: refused\n"
                 "sources: { l: { type: lgen }, r: { type: rgen } }\n"
                 "operators:\n"
                 "  - { id: p, op: pair, from: [l, r], broadcast: [q] }\n",
                 err, sizeof err);
    CHECK(j == NULL);
    rn_job_destroy(j);
    CHECK_STR_CONTAINS(err, "job.yaml:4:");
    CHECK_STR_CONTAINS(err, "does not read from 'q'");
}

/* ---- 3: broadcast -------------------------------------------------------------------- */

static void broadcast_run(const char *op_line)
{
    reset();
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "job: bcast\n"
             "parallelism: 2\n"
             "state: { dir: \"${STATE_DIR}\" }\n"
             "sources:\n"
             "  l: { type: lgen, n: 5000, keys: 97 }\n"
             "  r: { type: rgen, n: 1234 }\n"
             "operators:\n"
             "%s"
             "sinks: { out: { type: keep, from: p } }\n",
             op_line);
    struct rn_job *j = load(yaml);
    CHECK(j != NULL);
    if (!j) return;
    char *plan = NULL;
    size_t plan_len = 0;
    FILE *pf = open_memstream(&plan, &plan_len);
    rn_job_print(j, pf);
    fclose(pf);
    CHECK_STR_CONTAINS(plan, "<- r [broadcast] input 2 (right)");
    CHECK_STR_CONTAINS(plan, "<- l [hash] input 1 (left)");
    free(plan);
    char err[512];
    CHECK_EQ_INT(rn_job_run(j, err, sizeof err), 0);
    struct rn_buf html = RN_BUF_INIT;
    rn_job_render_html(j, &html);
    rn_buf_putc(&html, 0);
    CHECK_STR_CONTAINS(html.data, "r (broadcast)");
    rn_buf_free(&html);
    rn_job_destroy(j);
    /* The left input is split by key; every subtask sees all of the right. */
    CHECK_EQ_INT(total(0), 5000);
    CHECK(atomic_load(&counts[0][0]) > 0 && atomic_load(&counts[1][0]) > 0);
    CHECK_EQ_INT(atomic_load(&counts[0][1]), 1234);
    CHECK_EQ_INT(atomic_load(&counts[1][1]), 1234);
    CHECK_EQ_INT(atomic_load(&wrong_input), 0);
}

static void test_broadcast(void)
{
    broadcast_run("  - { id: p, op: pair, from: [l, r], broadcast: [r] }\n");
    broadcast_run("  - { id: p, op: pair_b, from: [l, r] }\n"); /* declared by the type */
}

/* ---- 4: watermark = min over the inputs ------------------------------------------------ */

static void test_watermark(void)
{
    reset();
    /* Left runs to ts 1,099,000 and ends, asking for a timer at 1,050,000;
     * right stops at 1,039,000 until released. */
    struct rn_job *j = load("job: wm\n"
                            "parallelism: 1\n"
                            "state: { dir: \"${STATE_DIR}\" }\n"
                            "watermark: { out_of_orderness: 0, emit_every: 1, idle_timeout: 0 }\n"
                            "sources:\n"
                            "  l: { type: lgen, n: 100, fire_at: 1050000 }\n"
                            "  r: { type: rgen, n: 100, hold: 40 }\n"
                            "operators:\n"
                            "  - { id: p, op: pair, from: [l, r] }\n"
                            "sinks: { out: { type: keep, from: p } }\n");
    CHECK(j != NULL);
    if (!j) return;
    struct runner r = {j, -1};
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &r);
    int64_t deadline = rn_now_ns() + 20000000000LL;
    while (rn_now_ns() < deadline &&
           !(atomic_load(&counts[0][0]) == 100 && atomic_load(&counts[0][1]) == 40 &&
             atomic_load(&seen_wm) >= 1038999))
        usleep(2000);
    /* Left is past the timer, right is not: the operator's time is right's. */
    CHECK_EQ_INT(atomic_load(&counts[0][0]), 100);
    CHECK_EQ_INT(atomic_load(&seen_wm), 1038999);
    CHECK_EQ_INT(atomic_load(&fired), 0);
    atomic_store(&released, 1);
    pthread_join(th, NULL);
    CHECK_EQ_INT(r.rc, 0);
    rn_job_destroy(j);
    CHECK_EQ_INT(atomic_load(&fired), 1);
    CHECK(atomic_load(&fired_wm) >= 1050000);
    CHECK_EQ_INT(atomic_load(&bad_index), 0);
}

/* ---- 5: checkpoint and restore ------------------------------------------------------- */

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->input != y->input) return x->input < y->input ? -1 : 1;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const char *ckpt_yaml(const char *name, int hold)
{
    static char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "job: %s\n"
             "parallelism: 2\n"
             "state: { dir: \"${STATE_DIR}\" }\n"
             "checkpoint: { dir: \"${STATE_DIR}/ck\", interval: 0 }\n"
             "sources:\n"
             "  l: { type: lgen, n: 4000, keys: 31, hold: %d }\n"
             "  r: { type: rgen, n: 2500, keys: 7, hold: %d }\n"
             "operators:\n"
             "  - { id: p, op: pair, from: [l, r] }\n"
             "sinks: { out: { type: keep, from: p } }\n",
             name, hold ? 1500 : 0, hold ? 1000 : 0);
    return yaml;
}

static void test_checkpoint(void)
{
    /* Uninterrupted. */
    reset();
    struct rn_job *j = load(ckpt_yaml("whole", 0));
    CHECK(j != NULL);
    if (!j) return;
    char err[512];
    CHECK_EQ_INT(rn_job_run(j, err, sizeof err), 0);
    rn_job_destroy(j);
    size_t want_n = got_n;
    struct rec *want = malloc(want_n * sizeof *want);
    memcpy(want, got, want_n * sizeof *want);
    CHECK_EQ_INT(want_n, 6500);

    /* Stopped once both sources are held (the stop takes a checkpoint)... */
    reset();
    j = load(ckpt_yaml("halves", 1));
    CHECK(j != NULL);
    if (!j) {
        free(want);
        return;
    }
    struct runner r = {j, -1};
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &r);
    int64_t deadline = rn_now_ns() + 20000000000LL;
    while (rn_now_ns() < deadline && !(total(0) == 1500 && total(1) == 1000)) usleep(2000);
    CHECK_EQ_INT(total(0), 1500);
    CHECK_EQ_INT(total(1), 1000);
    rn_job_stop(j);
    pthread_join(th, NULL);
    CHECK_EQ_INT(r.rc, 0);
    rn_job_destroy(j);
    size_t first_n = got_n;
    CHECK_EQ_INT(first_n, 2500);

    /* ...and restored: the rest comes, continuing state and memory. */
    for (int s = 0; s < MAX_SUB; s++)
        for (int i = 0; i < 2; i++) atomic_store(&counts[s][i], 0);
    j = load(ckpt_yaml("halves", 0));
    CHECK(j != NULL);
    if (!j) {
        free(want);
        return;
    }
    CHECK_EQ_INT(rn_job_run(j, err, sizeof err), 0);
    rn_job_destroy(j);
    CHECK_EQ_INT(total(0), 2500);
    CHECK_EQ_INT(total(1), 1500);
    CHECK_EQ_INT(got_n, want_n);
    if (got_n == want_n) {
        qsort(want, want_n, sizeof *want, cmp_rec);
        qsort(got, got_n, sizeof *got, cmp_rec);
        size_t same = 0;
        for (size_t i = 0; i < got_n; i++)
            same += cmp_rec(&got[i], &want[i]) == 0;
        CHECK_EQ_INT(same, want_n);
    }
    free(want);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    rn_op_register(&lgen_source);
    rn_op_register(&rgen_source);
    rn_op_register(&pair_op);
    rn_op_register(&pair_b_op);
    rn_op_register(&keep_sink);
    setenv("STATE_DIR", dir, 1);
    test_inputs();
    test_refused();
    test_broadcast();
    test_watermark();
    test_checkpoint();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    free(got);
    return rn_test_summary();
}
