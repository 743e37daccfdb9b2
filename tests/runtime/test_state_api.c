/*
 * test_state_api.c — value, list and map state and timers, across a stop and
 * a restore: run 1 applies the first half of a script of state changes and is
 * stopped (no timer may fire: a stop keeps state for the restart); run 2
 * restores the final checkpoint of run 1, applies the rest, and at the end of
 * input every key's timer fires and dumps its value, list and map. The dumps
 * must equal what the script implies. Value state changed in place
 * (rn_value_edit) is one of the commands: a value grown by 16 KiB at a time
 * (through the state pool's size classes and, past 64 KiB, malloc) and cut
 * back to its first 16 KiB (which gives most of its buffer back).
 * Every record also gives prefetch hints (rn_state_prefetch) for the state of
 * a record three ahead, and the timers give their own: hints change nothing.
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

enum {
    C_VALUE = 0,
    C_APPEND = 1,
    C_MAP_PUT = 2,
    C_MAP_DEL = 3,
    C_CLEAR_VALUE = 4,
    C_EDIT_GROW = 5, /* value ns 2: EDIT_GROUP more copies of arg, in place */
    C_EDIT_CUT = 6,  /* value ns 2: cut to its first group of copies, in place */
    N_CMDS = 7
};
#define EDIT_GROUP 4096
static int max_groups; /* the most groups a value of the script holds at once */
static _Atomic int edit_not_zero; /* added bytes that were not zero */

struct cmd {
    uint64_t key;
    int32_t op, arg;
    char text[48]; /* dump output */
};

static const char *const cmd_keys[] = {"key", NULL};
static uint64_t cmd_key_of(const struct rn_record *r, int f)
{
    (void)f;
    return ((const struct cmd *)r->payload)->key;
}
static void cmd_json(const struct rn_record *r, struct rn_buf *out)
{
    (void)r;
    rn_buf_puts(out, "{}");
}
static const struct rn_type cmd_type = {
    .name = "cmd",
    .description = "test command",
    .write_json = cmd_json,
    .key_fields = cmd_keys,
    .key_of = cmd_key_of,
};
static const struct rn_type *const cmd_types[] = {&cmd_type, NULL};

#define N_KEYS 40
#define N_STEPS 4000
static struct cmd script[N_STEPS];
static _Atomic int go_on; /* run 2: emit past the middle */

static int src_poll(struct rn_op *op, struct rn_emitter *out)
{
    int64_t *pos = rn_test_source_pos(op);
    if (*pos >= N_STEPS) return RN_POLL_END;
    int64_t stop_at = atomic_load(&go_on) ? N_STEPS : N_STEPS / 2;
    if (*pos >= stop_at) {
        usleep(1000);
        return RN_POLL_IDLE;
    }
    for (int k = 0; k < 100 && *pos < stop_at; k++, (*pos)++) {
        struct cmd *c = rn_emit(out, 0, 1000 + *pos, 0, sizeof *c);
        *c = script[*pos];
    }
    return RN_POLL_MORE;
}
static const struct rn_config_key no_keys[] = {RN_CONFIG_END};
static const struct rn_port_decl cmd_out[] = {{NULL, "cmd", "commands"}};
static const struct rn_op_type cmd_source = {
    RN_OP_TYPE_HEAD, .name = "cmd_src", .description = "test source",
    .kind = RN_KIND_SOURCE, .flags = RN_OP_EVENT_TIME, .config = no_keys, .ctx_size = 1,
    .outputs = cmd_out, .n_outputs = 1, .poll = src_poll, .close = rn_test_source_close,
    .snapshot = rn_test_source_snapshot, .restore = rn_test_source_restore,
    .types = cmd_types,
};

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
static int kv_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)out;
    struct kv *k = rn_op_local(op);
    for (uint32_t i = 0; i < in->n; i++) {
        const struct cmd *c = in->recs[i].payload;
        rn_state_key(op, in->recs[i].key);
        if (i + 3 < in->n) {
            /* Hints for a later record's state: they must change nothing. */
            uint64_t ahead = in->recs[i + 3].key;
            rn_state_prefetch(k->value, ahead, 1);
            rn_state_prefetch(k->value, ahead, 2);
            rn_state_prefetch(k->list, ahead, 0);
            rn_state_prefetch(k->map, ahead, 0);
        }
        char mk[16];
        int n = snprintf(mk, sizeof mk, "m%02d", c->arg % 10);
        switch (c->op) {
        case C_VALUE: rn_value_put(k->value, 1, &c->arg, sizeof c->arg); break;
        case C_CLEAR_VALUE: rn_value_clear(k->value, 1); break;
        case C_APPEND: rn_list_append(k->list, &c->arg, sizeof c->arg); break;
        case C_MAP_PUT: rn_map_put(k->map, mk, (size_t)n, &c->arg, sizeof c->arg); break;
        case C_MAP_DEL: rn_map_remove(k->map, mk, (size_t)n); break;
        case C_EDIT_GROW:
        case C_EDIT_CUT: {
            const void *v;
            size_t len = 0;
            if (rn_value_get(k->value, 2, &v, &len) != 0) len = 0;
            if (c->op == C_EDIT_CUT && len == 0) break;
            size_t want = c->op == C_EDIT_CUT ? EDIT_GROUP * 4 : len + EDIT_GROUP * 4;
            char *p;
            if (rn_value_edit(k->value, 2, want, (void **)&p) != 0) return RN_ESTATE;
            for (size_t b = len; b < want; b++) edit_not_zero += p[b] != 0;
            for (size_t b = len; b < want; b += 4) memcpy(p + b, &c->arg, 4);
            break;
        }
        }
        rn_timer_register(op, 1000000000000LL, 7);
    }
    return 0;
}

struct dump {
    struct rn_buf b;
};
static int dump_list(void *ud, const void *v, size_t len)
{
    int32_t x;
    memcpy(&x, v, sizeof x);
    rn_buf_printf(ud, "%d,", x);
    (void)len;
    return 0;
}
static int dump_map(void *ud, const void *mk, size_t mkl, const void *v, size_t len)
{
    int32_t x;
    memcpy(&x, v, sizeof x);
    rn_buf_printf(ud, "%.*s=%d,", (int)mkl, (const char *)mk, x);
    (void)len;
    return 0;
}

static char dumps[N_KEYS + 1][4096];
static _Atomic int n_fired;

static int kv_timer(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    (void)out;
    struct kv *k = rn_op_local(op);
    struct rn_buf b = RN_BUF_INIT;
    const void *v;
    size_t len;
    if (rn_value_get(k->value, 1, &v, &len) == 0) {
        int32_t x;
        memcpy(&x, v, sizeof x);
        rn_buf_printf(&b, "v=%d;", x);
    } else {
        rn_buf_puts(&b, "v=-;");
    }
    if (rn_value_get(k->value, 2, &v, &len) == 0) {
        /* First of each group of copies; '!' where a group is not uniform. */
        rn_buf_puts(&b, "e=");
        for (size_t g = 0; g < len; g += EDIT_GROUP * 4) {
            int32_t x, y;
            memcpy(&x, (const char *)v + g, 4);
            int same = 1;
            for (size_t o = g + 4; o < len && o < g + EDIT_GROUP * 4; o += 4) {
                memcpy(&y, (const char *)v + o, 4);
                same &= x == y;
            }
            rn_buf_printf(&b, same ? "%d," : "%d!,", x);
        }
        rn_buf_putc(&b, ';');
    }
    rn_buf_puts(&b, "l=");
    rn_list_each(k->list, dump_list, &b);
    rn_buf_puts(&b, ";m=");
    rn_map_each(k->map, dump_map, &b);
    rn_buf_putc(&b, 0);
    if (t->key >= 1 && t->key <= N_KEYS && t->ns == 7) snprintf(dumps[t->key], sizeof dumps[0], "%s", b.data);
    rn_buf_free(&b);
    atomic_fetch_add(&n_fired, 1);
    return 0;
}
static const struct rn_op_type kv_op = {
    RN_OP_TYPE_HEAD, .name = "kv", .description = "test operator",
    .kind = RN_KIND_OPERATOR, .flags = RN_OP_KEYED | RN_OP_STATEFUL, .config = no_keys,
    .ctx_size = 1, .in_type = "cmd", .outputs = cmd_out, .n_outputs = 1, .default_key = "key",
    .open = kv_open, .close = kv_close, .process = kv_process, .on_timer = kv_timer,
};

/* What the script leaves behind for key k. */
static void expect(uint64_t key, struct rn_buf *b)
{
    int has_v = 0, v = 0, map[10], has[10] = {0}, n_e = 0, e[N_STEPS];
    struct rn_buf l = RN_BUF_INIT;
    rn_buf_putc(&l, 0);
    l.len = 0;
    for (int i = 0; i < N_STEPS; i++) {
        const struct cmd *c = &script[i];
        if (c->key != key) continue;
        switch (c->op) {
        case C_VALUE: has_v = 1, v = c->arg; break;
        case C_CLEAR_VALUE: has_v = 0; break;
        case C_APPEND: rn_buf_printf(&l, "%d,", c->arg); break;
        case C_MAP_PUT: has[c->arg % 10] = 1, map[c->arg % 10] = c->arg; break;
        case C_MAP_DEL: has[c->arg % 10] = 0; break;
        case C_EDIT_GROW:
            e[n_e++] = c->arg;
            max_groups = RN_MAX(max_groups, n_e);
            break;
        case C_EDIT_CUT: n_e = RN_MIN(n_e, 1); break;
        }
    }
    if (has_v) rn_buf_printf(b, "v=%d;", v);
    else rn_buf_puts(b, "v=-;");
    if (n_e) {
        rn_buf_puts(b, "e=");
        for (int i = 0; i < n_e; i++) rn_buf_printf(b, "%d,", e[i]);
        rn_buf_putc(b, ';');
    }
    rn_buf_printf(b, "l=%.*s;m=", (int)l.len, l.data ? l.data : "");
    for (int j = 0; j < 10; j++)
        if (has[j]) rn_buf_printf(b, "m%02d=%d,", j, map[j]);
    rn_buf_putc(b, 0);
    rn_buf_free(&l);
}

static struct rn_job *job;
static int run_rc;
static void *runner(void *arg)
{
    (void)arg;
    char err[512];
    run_rc = rn_job_run(job, err, sizeof err);
    if (run_rc) fprintf(stderr, "%s\n", err);
    return NULL;
}

int main(void)
{
    char dir[] = "/tmp/rn_test_state_api_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    srand(3);
    for (int i = 0; i < N_STEPS; i++) {
        script[i].key = (uint64_t)(rand() % N_KEYS) + 1;
        script[i].op = rand() % N_CMDS;
        script[i].arg = rand() % 1000;
    }
    rn_op_register(&cmd_source);
    rn_op_register(&kv_op);
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "job: state-api\nparallelism: 2\nmax_parallelism: 16\n"
            "state: { dir: \"%s/state\", cache_size: 64KiB }\n"
            "checkpoint: { dir: \"%s/ckpt\", interval: 0 }\n"
            "watermark: { out_of_orderness: 0 }\n"
            "sources: { src: { type: cmd_src } }\n"
            "operators: [ { id: kv, op: kv, from: src } ]\n",
            dir, dir);
    fclose(f);

    /* Run 1: half the script, then stop. */
    struct rn_job_options opt = {.quiet = 1, .fresh = 1};
    job = rn_job_load(path, &opt, err, sizeof err);
    CHECK(job != NULL);
    if (!job) return rn_test_summary();
    pthread_t th;
    pthread_create(&th, NULL, runner, NULL);
    int64_t deadline = rn_now_ns() + 20000000000LL;
    while (rn_test_figure(job, "kv", "records_in") < N_STEPS / 2 && rn_now_ns() < deadline)
        usleep(5000);
    CHECK_EQ_INT(rn_test_figure(job, "kv", "records_in"), N_STEPS / 2);
    rn_job_stop(job);
    pthread_join(th, NULL);
    CHECK_EQ_INT(run_rc, 0);
    CHECK_EQ_INT(atomic_load(&n_fired), 0); /* a stop fires no timer */
    rn_job_destroy(job);

    /* Run 2: restore, the rest of the script, the end of input. */
    atomic_store(&go_on, 1);
    struct rn_job_options opt2 = {.quiet = 1};
    job = rn_job_load(path, &opt2, err, sizeof err);
    CHECK(job != NULL);
    if (!job) return rn_test_summary();
    CHECK_EQ_INT(rn_job_run(job, err, sizeof err), 0);
    CHECK_EQ_INT(rn_test_figure(job, "kv", "records_in"), N_STEPS / 2); /* only the rest was read */
    rn_job_destroy(job);

    int keys_seen = 0, same = 0;
    for (uint64_t k = 1; k <= N_KEYS; k++) {
        int any = 0;
        for (int i = 0; i < N_STEPS; i++) any |= script[i].key == k;
        if (!any) continue;
        keys_seen++;
        struct rn_buf want = RN_BUF_INIT;
        expect(k, &want);
        if (strcmp(want.data, dumps[k]) == 0) same++;
        else fprintf(stderr, "key %llu: got '%s'\n          want '%s'\n", (unsigned long long)k,
                     dumps[k], want.data);
        rn_buf_free(&want);
    }
    CHECK_EQ_INT(atomic_load(&n_fired), keys_seen);
    CHECK_EQ_INT(same, keys_seen);
    CHECK_EQ_INT(atomic_load(&edit_not_zero), 0);
    CHECK(max_groups * EDIT_GROUP * 4 > 65536); /* a value outgrew the pool's classes */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
