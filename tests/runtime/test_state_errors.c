/*
 * test_state_errors.c — a RocksDB read that fails is an error, never "absent".
 * A keyed operator reads three ways per new key: a value get (a cache miss),
 * a map get and a map iteration, so the N-th read of the process is known in
 * advance. Each scenario runs in a child process with
 * RUNNEL_FAULT=state:read:<N> aimed at one of the three: the failing call must
 * return RN_ESTATE, every state call after it too (none may answer "absent"),
 * and the job must fail with a message naming the operator, the key and its
 * key group. In the last scenario the operator ignores every result: the
 * engine must fail the job all the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rn_job.h"
#include "rn_operator.h"
#include "rn_state.h"
#include "rn_test.h"
#include "rn_test_job.h"

#define N_REC 50
#define FAIL_AT 10 /* the record whose read fails */

struct rec {
    uint64_t key;
};
RN_TEST_KEYED_TYPE(rec_type, "rec");

static int src_poll(struct rn_op *op, struct rn_emitter *out)
{
    int64_t *pos = rn_test_source_pos(op);
    if (*pos >= N_REC) return RN_POLL_END;
    for (int k = 0; k < 10 && *pos < N_REC; k++, (*pos)++) {
        struct rec *r = rn_emit(out, 0, 1000 + *pos, 0, sizeof *r);
        r->key = (uint64_t)*pos + 1;
    }
    return RN_POLL_MORE;
}
static const struct rn_config_key no_keys[] = {RN_CONFIG_END};
static const struct rn_port_decl rec_out[] = {{NULL, "rec", "records"}};
static const struct rn_op_type rec_source = {
    RN_OP_TYPE_HEAD,        .name = "rec_src",         .description = "test source",
    .kind = RN_KIND_SOURCE, .flags = RN_OP_EVENT_TIME, .config = no_keys,
    .ctx_size = 1,          .outputs = rec_out,        .n_outputs = 1,
    .poll = src_poll,       .close = rn_test_source_close,         .types = rec_types,
};

/* What the operator saw (its thread; read after the job ended). */
static int ignore_errors;                 /* the scenario's operator goes on regardless */
static int fail_rec = -1, fail_call = -1; /* where the first error came */
static int fail_rc;
static int after_calls, after_estate; /* state calls after it, and how many failed */
static int after_absent;              /* ... and how many answered "absent" */
static int records_done;

static int count_entry(void *ud, const void *mk, size_t mkl, const void *v, size_t len)
{
    (void)mk, (void)mkl, (void)v, (void)len;
    ++*(int *)ud;
    return 0;
}

struct kv {
    struct rn_state *value, *list, *map;
};

static int kv_open(struct rn_op *op)
{
    struct kv *k = calloc(1, sizeof *k);
    k->value = rn_state_value(op, "value");
    k->list = rn_state_list(op, "list");
    k->map = rn_state_map(op, "map");
    rn_op_set_local(op, k);
    return k->value && k->list && k->map ? 0 : RN_ESTATE;
}
static void kv_close(struct rn_op *op)
{
    free(rn_op_local(op));
}

static void note_after(int rc)
{
    after_calls++;
    after_estate += rc == RN_ESTATE;
    after_absent += rc == RN_ENOENT;
}

static int kv_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)out;
    struct kv *k = rn_op_local(op);
    for (uint32_t i = 0; i < in->n; i++) {
        rn_state_key(op, in->recs[i].key);
        const void *v;
        size_t len;
        int n = 0, rc[3];
        rc[0] = rn_value_get(k->value, 0, &v, &len);
        rc[1] = rn_map_get(k->map, "m", 1, &v, &len);
        rc[2] = rn_map_each(k->map, count_entry, &n);
        for (int c = 0; c < 3; c++) {
            int bad = c < 2 ? rc[c] != RN_ENOENT : rc[c] != 0;
            if (bad && fail_call < 0) {
                fail_rec = (int)records_done, fail_call = c, fail_rc = rc[c];
            }
        }
        if (fail_call >= 0) {
            /* Everything after the failure must fail too. */
            uint64_t x = 1;
            note_after(rn_value_put(k->value, 0, &x, sizeof x));
            note_after(rn_value_get(k->value, 0, &v, &len));
            note_after(rn_list_append(k->list, &x, sizeof x));
            note_after(rn_map_put(k->map, "m", 1, &x, sizeof x));
            note_after(rn_map_get(k->map, "m", 1, &v, &len));
            note_after(rn_timer_register(op, 5000, 0));
            if (!ignore_errors) return fail_rc;
        } else {
            uint64_t x = in->recs[i].key;
            if (rn_value_put(k->value, 0, &x, sizeof x) || rn_map_put(k->map, "m", 1, &x, sizeof x))
                return RN_ESTATE;
        }
        records_done++;
    }
    return 0;
}

static const struct rn_port_decl kv_out[] = {{NULL, "rec", "nothing"}};
static const struct rn_op_type kv_op = {
    RN_OP_TYPE_HEAD,
    .name = "kv",
    .description = "test keyed state",
    .kind = RN_KIND_OPERATOR,
    .flags = RN_OP_KEYED | RN_OP_STATEFUL,
    .config = no_keys,
    .ctx_size = 1,
    .in_type = "rec",
    .outputs = kv_out,
    .n_outputs = 1,
    .default_key = "key",
    .open = kv_open,
    .process = kv_process,
    .close = kv_close,
};

/* One scenario, in this (child) process: the fault at read `at`. */
static int scenario(const char *dir, int at, int call, const char *what)
{
    char env[64];
    snprintf(env, sizeof env, "state:read:%d", at);
    setenv("RUNNEL_FAULT", env, 1);
    rn_op_register(&rec_source);
    rn_op_register(&kv_op);
    char path[256], err[1024] = "";
    snprintf(path, sizeof path, "%s/job-%d.yaml", dir, at);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "job: state-errors\nparallelism: 1\nmax_parallelism: 16\n"
            "state: { dir: \"%s/state-%d\" }\n"
            "sources: { src: { type: rec_src } }\n"
            "operators: [ { id: kv, op: kv, from: src } ]\n",
            dir, at);
    fclose(f);
    struct rn_job_options opt = {.quiet = 1, .fresh = 1};
    struct rn_job *job = rn_job_load(path, &opt, err, sizeof err);
    CHECK(job != NULL);
    if (!job) return rn_test_summary();
    int rc = rn_job_run(job, err, sizeof err);
    rn_job_destroy(job);
    fprintf(stderr, "  %s: %s\n", what, err);
    CHECK(rc != 0);
    CHECK_EQ_INT(fail_rec, FAIL_AT);
    CHECK_EQ_INT(fail_call, call);
    CHECK_EQ_INT(fail_rc, RN_ESTATE);
    CHECK_EQ_INT(after_absent, 0);
    CHECK(after_calls > 0);
    CHECK_EQ_INT(after_estate, after_calls);
    CHECK_STR_CONTAINS(err, "'kv' (subtask 0) failed in process: state: operator 'kv': ");
    CHECK_STR_CONTAINS(err, what);
    char key[64];
    snprintf(key, sizeof key, "key %d (key group ", FAIL_AT + 1);
    CHECK_STR_CONTAINS(err, key);
    CHECK_STR_CONTAINS(err, env);
    if (ignore_errors) CHECK_EQ_INT(records_done, N_REC);
    return rn_test_summary();
}

int main(void)
{
    char dir[] = "/tmp/rn_test_state_errors_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    /* Reads per record: value get, map get, map iteration. */
    const struct {
        int call, ignore;
        const char *what;
    } sc[] = {
        {0, 0, "reading key"},
        {1, 0, "reading a map entry of key"},
        {2, 0, "iterating the map of key"},
        {0, 1, "reading key"},
    };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            ignore_errors = sc[i].ignore;
            int rc = scenario(dir, 3 * FAIL_AT + sc[i].call + 1, sc[i].call, sc[i].what);
            fflush(NULL);
            _exit(rc);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            fprintf(stderr, "scenario %zu (%s%s) failed\n", i, sc[i].what,
                    sc[i].ignore ? ", errors ignored" : "");
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
