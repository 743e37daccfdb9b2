/*
 * test_state_clear_at.c — rn_value_clear_at: a value cleared by the runtime
 * when the watermark reaches a time, without on_timer and without reading it.
 * Every record puts a value under its own namespace, asks for it to be
 * cleared DELAY ms of event time later, and registers two timers of its own:
 * one a millisecond before the clear (the value must still be there, intact)
 * and one a millisecond after (it must be gone). The cache is too small for
 * the values, so most are evicted to RocksDB before their clear, and the
 * clear must delete them there. As in test_state_timers, the job is stopped
 * twice after a third of the input and restored: the clears pending at a stop
 * are saved by its checkpoint and must fire after the restore, once. All of
 * it twice: with few key groups per thread (fired timers and clears leave
 * RocksDB as one range per key group at a checkpoint) and with many (one
 * delete each).
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
#include "rn_test_job.h"

#define N_REC 3000
#define N_KEYS 331
#define DELAY 50

struct rec {
    uint64_t key;
    int64_t i;
};

RN_TEST_KEYED_TYPE(rec_type, "rec");

static _Atomic int64_t stop_at; /* the source emits records [0, stop_at) */
static _Atomic int before_ok[N_REC], after_ok[N_REC];
static _Atomic int n_fired, n_wrong;

static int src_poll(struct rn_op *op, struct rn_emitter *out)
{
    int64_t *pos = rn_test_source_pos(op);
    if (*pos >= N_REC) return RN_POLL_END;
    int64_t end = atomic_load(&stop_at);
    if (*pos >= end) {
        usleep(1000);
        return RN_POLL_IDLE;
    }
    usleep(1000); /* about 100 ms a run: checkpoints every 5 ms come between */
    for (int k = 0; k < 10 && *pos < end; k++, (*pos)++) {
        struct rec *r = rn_emit(out, 0, 1000 + *pos, 0, sizeof *r);
        r->key = (uint64_t)(*pos % N_KEYS) + 1;
        r->i = *pos;
    }
    return RN_POLL_MORE;
}
static int src_snapshot(struct rn_op *op, uint64_t id, struct rn_snapshot_writer *w)
{
    (void)id;
    const int64_t *pos = rn_op_local(op);
    rn_snapshot_write_i64(w, pos ? *pos : 0);
    return 0;
}
static int src_restore(struct rn_op *op, struct rn_snapshot_reader *r)
{
    int64_t *pos = calloc(1, sizeof *pos);
    rn_op_set_local(op, pos);
    return rn_snapshot_read_i64(r, pos);
}
static const struct rn_config_key no_keys[] = {RN_CONFIG_END};
static const struct rn_port_decl rec_out[] = {{NULL, "rec", "records"}};
static const struct rn_op_type rec_source = {
    RN_OP_TYPE_HEAD, .name = "clear_src", .description = "test source",
    .kind = RN_KIND_SOURCE, .flags = RN_OP_EVENT_TIME, .config = no_keys, .ctx_size = 1,
    .outputs = rec_out, .n_outputs = 1, .poll = src_poll, .close = rn_test_source_close,
    .snapshot = src_snapshot, .restore = src_restore, .types = rec_types,
};

/* A value of 40 bytes, all of them record i's. */
static void fill(unsigned char v[40], int64_t i)
{
    for (int b = 0; b < 40; b++) v[b] = (unsigned char)(i * 7 + b);
}

static int c_open(struct rn_op *op)
{
    struct rn_state *st = rn_state_value(op, "held");
    rn_op_set_local(op, st);
    return st ? 0 : RN_ESTATE;
}
static int c_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)out;
    struct rn_state *st = rn_op_local(op);
    for (uint32_t j = 0; j < in->n; j++) {
        const struct rec *r = in->recs[j].payload;
        unsigned char v[40];
        fill(v, r->i);
        rn_state_key(op, in->recs[j].key);
        int64_t at = 1000 + r->i + DELAY;
        int rc = rn_value_put(st, (uint64_t)r->i, v, sizeof v);
        if (!rc) rc = rn_value_clear_at(st, (uint64_t)r->i, at);
        if (!rc) rc = rn_value_clear_at(st, (uint64_t)r->i, at); /* again: a no-op */
        if (!rc) rc = rn_timer_register(op, at - 1, (uint64_t)r->i);
        if (!rc) rc = rn_timer_register(op, at + 1, (uint64_t)r->i);
        if (rc) return rc;
    }
    return 0;
}
static int c_timer(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    (void)out;
    atomic_fetch_add(&n_fired, 1);
    int64_t i = (int64_t)t->ns, at = 1000 + i + DELAY;
    if (i < 0 || i >= N_REC || (t->ts != at - 1 && t->ts != at + 1)) {
        atomic_fetch_add(&n_wrong, 1); /* a clear handed to the operator */
        return 0;
    }
    const void *v;
    size_t len;
    int rc = rn_value_get(rn_op_local(op), t->ns, &v, &len);
    if (rc && rc != RN_ENOENT) return rc;
    if (t->ts == at - 1) {
        unsigned char want[40];
        fill(want, i);
        if (rc == 0 && len == sizeof want && !memcmp(v, want, len)) atomic_fetch_add(&before_ok[i], 1);
    } else if (rc == RN_ENOENT) {
        atomic_fetch_add(&after_ok[i], 1);
    }
    return 0;
}
static const struct rn_op_type clear_op = {
    RN_OP_TYPE_HEAD, .name = "clears", .description = "test operator",
    .kind = RN_KIND_OPERATOR, .flags = RN_OP_KEYED | RN_OP_STATEFUL, .config = no_keys,
    .ctx_size = 1, .in_type = "rec", .outputs = rec_out, .n_outputs = 1, .default_key = "key",
    .open = c_open, .process = c_process, .on_timer = c_timer,
};

static void scenario(const char *dir, int max_parallelism)
{
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/job%d.yaml", dir, max_parallelism);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f,
            "job: state-clear-at\nparallelism: 2\nmax_parallelism: %d\n"
            "state: { dir: \"%s/state%d\", cache_size: 12KiB }\n"
            "checkpoint: { dir: \"%s/ckpt%d\", interval: 5ms }\n"
            "watermark: { out_of_orderness: 0 }\n"
            "sources: { src: { type: clear_src } }\n"
            "operators: [ { id: c, op: clears, from: src } ]\n",
            max_parallelism, dir, max_parallelism, dir, max_parallelism);
    fclose(f);
    for (int i = 0; i < N_REC; i++) {
        atomic_store(&before_ok[i], 0);
        atomic_store(&after_ok[i], 0);
    }
    atomic_store(&n_fired, 0);
    atomic_store(&n_wrong, 0);

    /* Runs 1 and 2: a third of the input more each, stopped with clears
     * still pending. */
    for (int run = 1; run <= 2; run++) {
        int64_t end = run * N_REC / 3;
        atomic_store(&stop_at, end);
        struct rn_job_options opt = {.quiet = 1, .fresh = run == 1};
        struct runner r = {0};
        r.job = rn_job_load(path, &opt, err, sizeof err);
        CHECK(r.job != NULL);
        if (!r.job) return;
        pthread_t th;
        pthread_create(&th, NULL, run_thread, &r);
        int64_t deadline = rn_now_ns() + 30000000000LL;
        while (atomic_load(&n_fired) < 2 * (end - 2 * DELAY) && rn_now_ns() < deadline)
            usleep(5000);
        CHECK(atomic_load(&n_fired) >= 2 * (end - 2 * DELAY));
        rn_job_stop(r.job);
        pthread_join(th, NULL);
        if (r.rc) fprintf(stderr, "run %d: %s\n", run, r.err);
        CHECK_EQ_INT(r.rc, 0);
        rn_job_destroy(r.job);
    }
    /* Run 3: the rest, to the end of input. */
    atomic_store(&stop_at, N_REC);
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *job = rn_job_load(path, &opt, err, sizeof err);
    CHECK(job != NULL);
    if (!job) return;
    CHECK_EQ_INT(rn_job_run(job, err, sizeof err), 0);
    rn_job_destroy(job);

    int before = 0, after = 0, twice = 0;
    for (int i = 0; i < N_REC; i++) {
        before += atomic_load(&before_ok[i]) == 1;
        after += atomic_load(&after_ok[i]) == 1;
        twice += atomic_load(&before_ok[i]) > 1 || atomic_load(&after_ok[i]) > 1;
    }
    fprintf(stderr,
            "max_parallelism %d: %d operator timers fired, %d values there before their clear, "
            "%d gone after, %d fired twice, %d clears seen by the operator\n",
            max_parallelism, atomic_load(&n_fired), before, after, twice, atomic_load(&n_wrong));
    CHECK_EQ_INT(atomic_load(&n_fired), 2 * N_REC);
    CHECK_EQ_INT(before, N_REC);
    CHECK_EQ_INT(after, N_REC);
    CHECK_EQ_INT(twice, 0);
    CHECK_EQ_INT(atomic_load(&n_wrong), 0);
}

int main(void)
{
    char dir[] = "/tmp/rn_test_state_clear_at_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    rn_op_register(&rec_source);
    rn_op_register(&clear_op);
    scenario(dir, 16);   /* 8 key groups per thread: ranges */
    scenario(dir, 4096); /* 2,048 per thread: one delete each */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
