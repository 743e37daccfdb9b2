/*
 * test_state_timers.c — a fired timer never fires again after a restore.
 * Fired timers leave RocksDB as one range delete per key group at the next
 * checkpoint (rn_state.c), not one delete each. Three runs of one keyed job,
 * each stopped after a third of the input and restored by the next: every
 * record registers a timer 50 ms of event time after itself, so the timers
 * pending at a stop are saved by its checkpoint and fire in the next run, whose
 * own stop must delete them. Every timer must fire exactly once over the three
 * runs; a timer saved, fired and restored again would fire twice.
 * Each record also counts its key's records in value state, with a cache too
 * small for the keys and checkpoints every 5 ms: every count read must be the
 * true one (the written-keys filter must never answer "absent" for a key whose
 * value RocksDB holds — evicted, saved by a checkpoint, or restored).
 *
 * Then rn_value_clear_at, through the same three runs: a value cleared by the
 * runtime when the watermark reaches a time, without on_timer and without
 * reading it. Every record puts a value under its own namespace, asks for it
 * to be cleared DELAY ms later, and registers two timers of its own: one a
 * millisecond before the clear (the value must still be there, intact) and
 * one a millisecond after (it must be gone). The cache is too small for the
 * values, so most are evicted to RocksDB before their clear, which must
 * delete them there; the clears pending at a stop are saved by its
 * checkpoint and must fire after the restore. Twice: with few key groups per
 * thread (fired timers and clears leave RocksDB as one range per key group at
 * a checkpoint) and with many (one delete each).
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
static _Atomic int fires[N_REC];
static _Atomic int n_fired;
static _Atomic int wrong_counts;

static int src_poll(struct rn_op *op, struct rn_emitter *out)
{
    int64_t *pos = rn_test_source_pos(op);
    if (*pos >= N_REC) return RN_POLL_END;
    int64_t end = atomic_load(&stop_at);
    if (*pos >= end) {
        usleep(1000);
        return RN_POLL_IDLE;
    }
    usleep(1000); /* about 100 ms a run: checkpoints every 10 ms come between */
    for (int k = 0; k < 10 && *pos < end; k++, (*pos)++) {
        struct rec *r = rn_emit(out, 0, 1000 + *pos, 0, sizeof *r);
        r->key = (uint64_t)(*pos % N_KEYS) + 1;
        r->i = *pos;
    }
    return RN_POLL_MORE;
}
static const struct rn_config_key no_keys[] = {RN_CONFIG_END};
static const struct rn_port_decl rec_out[] = {{NULL, "rec", "records"}};
static const struct rn_op_type rec_source = {
    RN_OP_TYPE_HEAD, .name = "timer_src", .description = "test source",
    .kind = RN_KIND_SOURCE, .flags = RN_OP_EVENT_TIME, .config = no_keys, .ctx_size = 1,
    .outputs = rec_out, .n_outputs = 1, .poll = src_poll, .close = rn_test_source_close,
    .snapshot = rn_test_source_snapshot, .restore = rn_test_source_restore, .types = rec_types,
};

static int t_open(struct rn_op *op)
{
    struct rn_state *seen = rn_state_value(op, "seen");
    rn_op_set_local(op, seen);
    return seen ? 0 : RN_ESTATE;
}
static int t_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)out;
    for (uint32_t j = 0; j < in->n; j++) {
        const struct rec *r = in->recs[j].payload;
        rn_state_key(op, in->recs[j].key);
        struct rn_state *seen = rn_op_local(op);
        const void *v;
        size_t len;
        int64_t n = 0;
        int rc = rn_value_get(seen, 0, &v, &len);
        if (rc == 0 && len == sizeof n) memcpy(&n, v, sizeof n);
        else if (rc != RN_ENOENT) return rc ? rc : RN_ECORRUPT;
        if (n != r->i / N_KEYS) atomic_fetch_add(&wrong_counts, 1);
        n++;
        if ((rc = rn_value_put(seen, 0, &n, sizeof n))) return rc;
        rc = rn_timer_register(op, 1000 + r->i + DELAY, (uint64_t)r->i);
        if (rc) return rc;
    }
    return 0;
}
static int t_timer(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    (void)op, (void)out;
    if (t->ns < N_REC) atomic_fetch_add(&fires[t->ns], 1);
    atomic_fetch_add(&n_fired, 1);
    return 0;
}
static const struct rn_op_type timer_op = {
    RN_OP_TYPE_HEAD, .name = "timers", .description = "test operator",
    .kind = RN_KIND_OPERATOR, .flags = RN_OP_KEYED | RN_OP_STATEFUL, .config = no_keys,
    .ctx_size = 1, .in_type = "rec", .outputs = rec_out, .n_outputs = 1, .default_key = "key",
    .open = t_open, .process = t_process, .on_timer = t_timer,
};

static _Atomic int before_ok[N_REC], after_ok[N_REC];
static _Atomic int n_wrong;

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

/* Writes the job for operator `op` and runs it three times: a third of the
 * input more in each of the first two, stopped once all but the last
 * records' per_rec timers have fired (with some still pending), then to the
 * end of input. */
static void three_runs(const char *dir, const char *op, int max_parallelism, int per_rec)
{
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/%s%d.yaml", dir, op, max_parallelism);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f,
            "job: state-timers\nparallelism: 2\nmax_parallelism: %d\n"
            "state: { dir: \"%s/state-%s%d\", cache_size: 12KiB }\n"
            "checkpoint: { dir: \"%s/ckpt-%s%d\", interval: 5ms }\n"
            "watermark: { out_of_orderness: 0 }\n"
            "sources: { src: { type: timer_src } }\n"
            "operators: [ { id: t, op: %s, from: src } ]\n",
            max_parallelism, dir, op, max_parallelism, dir, op, max_parallelism, op);
    fclose(f);
    atomic_store(&n_fired, 0);
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
        while (atomic_load(&n_fired) < per_rec * (end - 2 * DELAY) && rn_now_ns() < deadline)
            usleep(5000);
        CHECK(atomic_load(&n_fired) >= per_rec * (end - 2 * DELAY));
        rn_job_stop(r.job);
        pthread_join(th, NULL);
        if (r.rc) fprintf(stderr, "run %d: %s\n", run, r.err);
        CHECK_EQ_INT(r.rc, 0);
        CHECK(atomic_load(&n_fired) < per_rec * end); /* some timers were pending at the stop */
        rn_job_destroy(r.job);
    }
    atomic_store(&stop_at, N_REC);
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *job = rn_job_load(path, &opt, err, sizeof err);
    CHECK(job != NULL);
    if (!job) return;
    CHECK_EQ_INT(rn_job_run(job, err, sizeof err), 0);
    rn_job_destroy(job);
}

static void clears(const char *dir, int max_parallelism)
{
    for (int i = 0; i < N_REC; i++) {
        atomic_store(&before_ok[i], 0);
        atomic_store(&after_ok[i], 0);
    }
    atomic_store(&n_wrong, 0);
    three_runs(dir, "clears", max_parallelism, 2);
    int before = 0, after = 0, twice = 0;
    for (int i = 0; i < N_REC; i++) {
        before += atomic_load(&before_ok[i]) == 1;
        after += atomic_load(&after_ok[i]) == 1;
        twice += atomic_load(&before_ok[i]) > 1 || atomic_load(&after_ok[i]) > 1;
    }
    fprintf(stderr,
            "clears, max_parallelism %d: %d operator timers fired, %d values there before their "
            "clear, %d gone after, %d fired twice, %d clears seen by the operator\n",
            max_parallelism, atomic_load(&n_fired), before, after, twice, atomic_load(&n_wrong));
    CHECK_EQ_INT(atomic_load(&n_fired), 2 * N_REC);
    CHECK_EQ_INT(before, N_REC);
    CHECK_EQ_INT(after, N_REC);
    CHECK_EQ_INT(twice, 0);
    CHECK_EQ_INT(atomic_load(&n_wrong), 0);
}

int main(void)
{
    char dir[] = "/tmp/rn_test_state_timers_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    rn_op_register(&rec_source);
    rn_op_register(&timer_op);
    rn_op_register(&clear_op);

    three_runs(dir, "timers", 16, 1);
    int once = 0, twice = 0, never = 0;
    for (int i = 0; i < N_REC; i++) {
        int n = atomic_load(&fires[i]);
        once += n == 1;
        twice += n > 1;
        never += n == 0;
    }
    fprintf(stderr, "timers fired once %d, more than once %d, never %d\n", once, twice, never);
    CHECK_EQ_INT(once, N_REC);
    CHECK_EQ_INT(twice, 0);
    CHECK_EQ_INT(never, 0);
    CHECK_EQ_INT(atomic_load(&wrong_counts), 0);

    clears(dir, 16);   /* 8 key groups per thread: ranges */
    clears(dir, 4096); /* 2,048 per thread: one delete each */

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
