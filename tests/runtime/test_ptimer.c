/*
 * test_ptimer.c — processing-time timers (rn_op_timer_after ->
 * on_processing_time): a source that never emits by itself ticks from its
 * timer, re-arming it; an operator in a stream that carries nothing fires
 * several timers in deadline order, each once and never early; and the
 * task wakes for a timer instead of sleeping its usual 50 ms, so ten 5 ms
 * timers in a row take far less than ten 50 ms sleeps. A type without the
 * callback is refused.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rn_job.h"
#include "rn_operator.h"
#include "rn_test.h"
#include "rn_test_job.h"

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the tick record ------------------------------------------------------------- */

struct tick {
    int64_t who;   /* 1: source ticks; 2: operator timers; 3: the chained timers */
    int64_t seq;   /* per who, in firing order */
    int64_t early; /* fired before its deadline */
    int64_t due_ns, at_ns;
    int64_t now_ms; /* what the callback was given */
};

static const char *const tick_keys[] = {NULL};
static void tick_json(const struct rn_record *r, struct rn_buf *out)
{
    const struct tick *t = r->payload;
    rn_buf_printf(out, "{\"who\":%lld,\"seq\":%lld}", (long long)t->who, (long long)t->seq);
}
static const struct rn_type tick_type = {
    .name = "tick",
    .description = "test record",
    .write_json = tick_json,
    .key_fields = tick_keys,
};
static const struct rn_type *const tick_types[] = {&tick_type, NULL};

/* Per instance: the deadlines it set, to check "never early" and the order. */
struct pt_local {
    int64_t seq;
    int64_t due[16];
    int n_due;
};

static atomic_int arm_failed; /* CHECK is not thread-safe: counted, checked at the end */

static void arm(struct rn_op *op, struct pt_local *l, int64_t ms)
{
    /* The deadline is at least this far away: recorded before the call. */
    int64_t due = mono_ns() + ms * 1000000;
    if (rn_op_timer_after(op, ms) != 0) atomic_fetch_add(&arm_failed, 1);
    l->due[l->n_due++] = due;
}

/* Pops the earliest recorded deadline. */
static int64_t take_due(struct pt_local *l)
{
    int best = 0;
    for (int i = 1; i < l->n_due; i++)
        if (l->due[i] < l->due[best]) best = i;
    int64_t d = l->due[best];
    l->due[best] = l->due[--l->n_due];
    return d;
}

static void emit_tick(struct rn_emitter *out, int64_t who, struct pt_local *l, int64_t due,
                      int64_t now_ms)
{
    struct tick *t = rn_emit(out, 0, 0, 0, sizeof *t);
    memset(t, 0, sizeof *t);
    t->who = who;
    t->seq = l->seq++;
    t->at_ns = mono_ns();
    t->due_ns = due;
    t->early = t->at_ns < due;
    t->now_ms = now_ms;
}

/* ---- a source whose only output comes from its timer ---------------------------- */

static int src_open(struct rn_op *op)
{
    struct pt_local *l = calloc(1, sizeof *l);
    rn_op_set_local(op, l);
    arm(op, l, 20);
    return 0;
}
static int src_poll(struct rn_op *op, struct rn_emitter *out)
{
    (void)op, (void)out;
    return RN_POLL_IDLE;
}
static int src_ptime(struct rn_op *op, int64_t now_ms, struct rn_emitter *out)
{
    struct pt_local *l = rn_op_local(op);
    emit_tick(out, 1, l, take_due(l), now_ms);
    if (l->seq < 5) arm(op, l, 20);
    return 0;
}
static void pt_close(struct rn_op *op)
{
    free(rn_op_local(op));
}
static const struct rn_config_key no_keys[] = {RN_CONFIG_END};
static const struct rn_port_decl tick_out[] = {{NULL, "tick", "ticks"}};
static const struct rn_op_type tick_source = {
    RN_OP_TYPE_HEAD, .name = "tick_src", .description = "test source", .kind = RN_KIND_SOURCE,
    .config = no_keys, .ctx_size = 1, .outputs = tick_out, .n_outputs = 1, .open = src_open,
    .poll = src_poll, .close = pt_close, .on_processing_time = src_ptime,
    .types = tick_types,
};

/* ---- an operator downstream of a source that never emits ------------------------ */

static int op_open(struct rn_op *op)
{
    struct pt_local *l = calloc(1, sizeof *l);
    rn_op_set_local(op, l);
    /* Three timers set out of order: they fire 10, 30, 60 ms. */
    arm(op, l, 60);
    arm(op, l, 10);
    arm(op, l, 30);
    return 0;
}
static int op_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)op;
    for (uint32_t i = 0; i < in->n; i++) rn_emit_copy(out, 0, &in->recs[i]);
    return 0;
}
static int op_ptime(struct rn_op *op, int64_t now_ms, struct rn_emitter *out)
{
    struct pt_local *l = rn_op_local(op);
    int64_t who = l->seq < 3 ? 2 : 3;
    emit_tick(out, who, l, take_due(l), now_ms);
    /* After the three, a chain of ten 5 ms timers. */
    if (l->seq >= 3 && l->seq < 13) arm(op, l, 5);
    return 0;
}
static const struct rn_op_type pt_op = {
    RN_OP_TYPE_HEAD, .name = "pt_op", .description = "test operator", .kind = RN_KIND_OPERATOR,
    .config = no_keys, .ctx_size = 1, .in_type = "*", .outputs = tick_out, .n_outputs = 1,
    .open = op_open, .process = op_process, .close = pt_close, .on_processing_time = op_ptime,
};

/* An operator that asks for a timer without having the callback. */
static int bad_open(struct rn_op *op)
{
    return rn_op_timer_after(op, 1);
}
static const struct rn_op_type bad_op = {
    RN_OP_TYPE_HEAD, .name = "pt_bad", .description = "test operator", .kind = RN_KIND_OPERATOR,
    .config = no_keys, .ctx_size = 1, .in_type = "*", .outputs = tick_out, .n_outputs = 1,
    .open = bad_open, .process = op_process,
};

/* ---- a sink that keeps what it gets ----------------------------------------------- */

static struct tick got[64];
static atomic_int got_n;

static int keep_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)op, (void)out;
    for (uint32_t i = 0; i < in->n; i++) {
        int k = atomic_load(&got_n);
        if (k < 64) got[k] = *(const struct tick *)in->recs[i].payload;
        atomic_store(&got_n, k + 1); /* release: the test thread reads got[k] after */
    }
    return 0;
}
static const struct rn_op_type keep_sink = {
    RN_OP_TYPE_HEAD, .name = "keep", .description = "test sink", .kind = RN_KIND_SINK,
    .config = no_keys, .ctx_size = 1, .in_type = "*", .process = keep_process,
};

static char dir[] = "/tmp/rn_test_ptimer_XXXXXX";

static struct rn_job *load(const char *yaml)
{
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs(yaml, f);
    fclose(f);
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *j = rn_job_load(path, &opt, err, sizeof err);
    if (!j) fprintf(stderr, "%s\n", err);
    return j;
}

static void test_timers(void)
{
    struct rn_job *j = load("job: ptimer\n"
                            "parallelism: 1\n"
                            "sources:\n"
                            "  ticks: { type: tick_src }\n"
                            "  quiet: { type: tick_src }\n"
                            "operators:\n"
                            "  - { id: timed, op: pt_op, from: quiet }\n"
                            "sinks:\n"
                            "  out: { type: keep, from: [ticks, timed] }\n");
    CHECK(j != NULL);
    if (!j) return;
    struct runner r = {.job = j};
    int64_t t0 = mono_ns();
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &r);
    /* 5 source ticks + the quiet source's own 5 (through pt_op) + 3 + 10. */
    int64_t deadline = mono_ns() + 20LL * 1000000000;
    while (atomic_load(&got_n) < 23 && mono_ns() < deadline) usleep(1000);
    rn_job_stop(j);
    pthread_join(th, NULL);
    CHECK_EQ_INT(r.rc, 0);
    rn_job_destroy(j);
    int n = atomic_load(&got_n);
    CHECK_EQ_INT(n, 23);
    int ones = 0, twos = 0, threes = 0, early = 0, order = 1;
    int64_t last_seq[4] = {-1, -1, -1, -1}, last_at3 = 0, first_at3 = 0, min_ms = INT64_MAX;
    for (int i = 0; i < n && i < 64; i++) {
        struct tick *t = &got[i];
        early += (int)t->early;
        if (t->now_ms < min_ms) min_ms = t->now_ms;
        if (t->who == 1) ones++;
        if (t->who == 2) twos++;
        if (t->who == 3) {
            if (!threes) first_at3 = t->at_ns;
            last_at3 = t->at_ns;
            threes++;
        }
        /* Sequence numbers per emitter only go up (tick_src ticks from both
         * sources share who 1, so order is checked for 2 and 3). */
        if (t->who >= 2) {
            if (t->seq <= last_seq[t->who]) order = 0;
            last_seq[t->who] = t->seq;
        }
    }
    CHECK_EQ_INT(ones, 10);
    CHECK_EQ_INT(twos, 3);
    CHECK_EQ_INT(threes, 10);
    CHECK_EQ_INT(early, 0);
    CHECK_EQ_INT(atomic_load(&arm_failed), 0);
    CHECK(order);
    /* now_ms is the wall clock. */
    CHECK(min_ms > 1600000000000LL);
    /* The operator's first timer (10 ms) came well before the 20 s deadline,
     * and its three arrived in deadline order: due times ascending. */
    int64_t prev_due = 0;
    for (int i = 0; i < n && i < 64; i++)
        if (got[i].who == 2) {
            CHECK(got[i].due_ns >= prev_due);
            prev_due = got[i].due_ns;
        }
    /* Ten chained 5 ms timers: 45 ms between the first and the last at best;
     * with 50 ms sleeps it would be 450 ms or more. */
    fprintf(stderr, "ten 5 ms timers took %.1f ms\n", (double)(last_at3 - first_at3) / 1e6);
    CHECK(last_at3 - first_at3 >= 45 * 1000000LL);
    CHECK(last_at3 - first_at3 < 400 * 1000000LL);
    CHECK(mono_ns() - t0 < 20LL * 1000000000);
}

static void test_refused(void)
{
    struct rn_job *j = load("job: ptimer_bad\n"
                            "sources: { quiet: { type: tick_src } }\n"
                            "operators:\n"
                            "  - { id: bad, op: pt_bad, from: quiet }\n"
                            "sinks: { out: { type: keep, from: bad } }\n");
    CHECK(j != NULL);
    if (!j) return;
    char err[512] = "";
    CHECK(rn_job_run(j, err, sizeof err) < 0);
    CHECK_STR_CONTAINS(err, "no on_processing_time callback");
    rn_job_destroy(j);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    rn_op_register(&tick_source);
    rn_op_register(&pt_op);
    rn_op_register(&bad_op);
    rn_op_register(&keep_sink);
    test_timers();
    test_refused();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
