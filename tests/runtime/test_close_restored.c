/*
 * test_close_restored.c — close() runs for every instance whose restore()
 * ran, also when the task never opened it. A job is stopped (its savepoint
 * holds the source's position and the operator's count), then restored with
 * the source's open() failing: the operator chained behind it was restored
 * but is never opened. The job must fail naming the open, and every restored
 * instance must be closed exactly once (under ASan a missed close is also a
 * leak: a restored file sink in a stopped cluster task was one).
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
#include "rn_test.h"
#include "rn_test_job.h"

#define N_REC 400

struct rec {
    uint64_t n;
};
static void rec_json(const struct rn_record *r, struct rn_buf *out)
{
    (void)r;
    rn_buf_puts(out, "{}");
}
static const struct rn_type rec_type = {
    .name = "lc_rec",
    .description = "test record",
    .write_json = rec_json,
};
static const struct rn_type *const rec_types[] = {&rec_type, NULL};

static _Atomic int fail_open;                     /* run 2: the source cannot open */
static _Atomic int n_restored, n_closed_restored; /* instances restored; of those, closed */
static _Atomic int n_op_opened;

struct local {
    int64_t n;
    int restored;
};
static struct local *local_of(struct rn_op *op)
{
    struct local *l = rn_op_local(op);
    if (!l) {
        l = calloc(1, sizeof *l);
        rn_op_set_local(op, l);
    }
    return l;
}
static int lc_snapshot(struct rn_op *op, uint64_t id, struct rn_snapshot_writer *w)
{
    (void)id;
    rn_snapshot_write_i64(w, local_of(op)->n);
    return 0;
}
static int lc_restore(struct rn_op *op, struct rn_snapshot_reader *r)
{
    struct local *l = local_of(op);
    l->restored = 1;
    atomic_fetch_add(&n_restored, 1);
    return rn_snapshot_read_i64(r, &l->n);
}
static void lc_close(struct rn_op *op)
{
    struct local *l = rn_op_local(op);
    if (!l) return;
    if (l->restored) atomic_fetch_add(&n_closed_restored, 1);
    free(l);
    rn_op_set_local(op, NULL);
}

static int src_open(struct rn_op *op)
{
    if (!atomic_load(&fail_open)) return 0;
    rn_op_errorf(op, "the test's source cannot open");
    return RN_EIO;
}
static int src_poll(struct rn_op *op, struct rn_emitter *out)
{
    struct local *l = local_of(op);
    if (l->n >= N_REC / 2) {
        usleep(1000);
        return RN_POLL_IDLE;
    }
    for (int k = 0; k < 50 && l->n < N_REC / 2; k++, l->n++) {
        struct rec *r = rn_emit(out, 0, 1000 + l->n, 0, sizeof *r);
        r->n = (uint64_t)l->n;
    }
    return RN_POLL_MORE;
}
static const struct rn_config_key no_keys[] = {RN_CONFIG_END};
static const struct rn_port_decl rec_out[] = {{NULL, "lc_rec", "records"}};
static const struct rn_op_type lc_source = {
    RN_OP_TYPE_HEAD,         .name = "lc_src",          .description = "test source",
    .kind = RN_KIND_SOURCE,  .flags = RN_OP_EVENT_TIME, .config = no_keys,
    .ctx_size = 1,           .outputs = rec_out,        .n_outputs = 1,
    .open = src_open,        .poll = src_poll,          .close = lc_close,
    .snapshot = lc_snapshot, .restore = lc_restore,     .types = rec_types,
};

static int op_open(struct rn_op *op)
{
    (void)op;
    atomic_fetch_add(&n_op_opened, 1);
    return 0;
}
static int op_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)out;
    local_of(op)->n += in->n;
    return 0;
}
static const struct rn_op_type lc_op = {
    RN_OP_TYPE_HEAD,          .name = "lc_op",         .description = "test operator",
    .kind = RN_KIND_OPERATOR, .config = no_keys,       .ctx_size = 1,
    .in_type = "lc_rec",      .open = op_open,         .process = op_process,
    .close = lc_close,        .snapshot = lc_snapshot, .restore = lc_restore,
};

int main(void)
{
    char dir[] = "/tmp/rn_test_close_restored_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    rn_op_register(&lc_source);
    rn_op_register(&lc_op);
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "job: close-restored\n"
            "checkpoint: { dir: \"%s/ckpt\", interval: 0 }\n"
            "sources: { src: { type: lc_src } }\n"
            "operators: [ { id: op, op: lc_op, from: src } ]\n",
            dir);
    fclose(f);

    /* Run 1: half the input, then a stop (which takes the savepoint). */
    struct rn_job_options opt = {.quiet = 1, .fresh = 1};
    struct runner run = {.job = rn_job_load(path, &opt, err, sizeof err)};
    CHECK(run.job != NULL);
    if (!run.job) return rn_test_summary();
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &run);
    int64_t deadline = rn_now_ns() + 20000000000LL;
    while (rn_test_figure(run.job, "op", "records_in") < N_REC / 2 && rn_now_ns() < deadline)
        usleep(5000);
    CHECK_EQ_INT(rn_test_figure(run.job, "op", "records_in"), N_REC / 2);
    rn_job_stop(run.job);
    pthread_join(th, NULL);
    CHECK_EQ_INT(run.rc, 0);
    rn_job_destroy(run.job);
    CHECK_EQ_INT(atomic_load(&n_restored), 0);
    int opened_first = atomic_load(&n_op_opened);
    CHECK(opened_first >= 1); /* instances of the operator (and of the source) */

    /* Run 2: both instances of both operators restore; the source's open
     * fails, so the operator is never opened. */
    atomic_store(&fail_open, 1);
    struct rn_job_options opt2 = {.quiet = 1};
    struct runner run2 = {.job = rn_job_load(path, &opt2, err, sizeof err)};
    CHECK(run2.job != NULL);
    if (!run2.job) return rn_test_summary();
    run_thread(&run2);
    CHECK(run2.rc != 0);
    CHECK_STR_CONTAINS(run2.err, "cannot open");
    rn_job_destroy(run2.job);
    CHECK_EQ_INT(atomic_load(&n_restored), 2 * opened_first);
    CHECK_EQ_INT(atomic_load(&n_op_opened), opened_first); /* never opened this time */
    CHECK_EQ_INT(atomic_load(&n_closed_restored), 2 * opened_first);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
