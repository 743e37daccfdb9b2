/*
 * test_job_types.c — record types and the names they keep are per job: two
 * jobs loaded in one process at the same time, one declaring the feedback
 * type `dwell` and the context field `hour`, the other `like` and `page`,
 * each parse, join and write only their own (a kind the other job declared is
 * a dead letter; samples count only the job's feedback types; context values
 * carry the job's names). A job with no log_collector still knows the event
 * type its operators take, so a mismatch names it as before. Two operator
 * types of one job that define different record types of one name are
 * refused; a job that uses only one of them loads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_event.h"
#include "rn_job.h"
#include "rn_operator.h"
#include "rn_test.h"

static const char *events[] = {
    "{\"type\":\"request\",\"ts\":1000,\"request\":\"r1\",\"user\":\"u1\",\"candidates\":[\"a\"],"
    "\"context\":{\"hour\":22,\"page\":3}}",
    "{\"type\":\"impression\",\"ts\":1001,\"request\":\"r1\",\"user\":\"u1\",\"items\":[\"a\"]}",
    "{\"type\":\"click\",\"ts\":2000,\"request\":\"r1\",\"user\":\"u1\",\"item\":\"a\"}",
    "{\"type\":\"dwell\",\"ts\":2001,\"request\":\"r1\",\"user\":\"u1\",\"item\":\"a\"}",
    "{\"type\":\"like\",\"ts\":2002,\"request\":\"r1\",\"user\":\"u1\",\"item\":\"a\"}",
    /* moves the watermark: the window of r1 closes */
    "{\"type\":\"impression\",\"ts\":900000,\"request\":\"r9\",\"user\":\"u9\",\"items\":[\"x\"]}",
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    size_t got = fread(p, 1, (size_t)n, f);
    fclose(f);
    p[got] = 0;
    return p;
}

/* Writes job `name` into dir/name/ and loads it. */
static struct rn_job *load(const char *dir, const char *name, const char *feedback,
                           const char *context)
{
    char path[512];
    snprintf(path, sizeof path, "mkdir -p %s/%s", dir, name);
    if (system(path) != 0) return NULL;
    snprintf(path, sizeof path, "%s/%s/job.yaml", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return NULL;
    fprintf(f,
            "job: %s\n"
            "state: { dir: \"%s/%s/state\" }\n"
            "watermark: { out_of_orderness: 0, emit_every: 1 }\n"
            "sources: { logs: { type: file, path: \"%s/in.jsonl\" } }\n"
            "operators:\n"
            "  - { id: collect, op: log_collector, from: logs, dead_letter: rejected,\n"
            "      feedback_types: [%s], context_fields: [%s] }\n"
            "  - { id: join, op: online_joiner, from: collect, window: 10s }\n"
            "sinks:\n"
            "  events: { type: file, path: \"%s/%s/events.jsonl\", from: collect }\n"
            "  samples: { type: file, path: \"%s/%s/samples.jsonl\", from: join }\n"
            "  rejected: { type: file, path: \"%s/%s/rejected.jsonl\" }\n",
            name, dir, name, dir, feedback, context, dir, name, dir, name, dir, name);
    fclose(f);
    char err[1024];
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *j = rn_job_load(path, &opt, err, sizeof err);
    if (!j) fprintf(stderr, "%s\n", err);
    return j;
}

static void check_output(const char *dir, const char *name, const char *mine,
                         const char *theirs, const char *ctx_mine, const char *ctx_theirs)
{
    char path[512], want[128];
    snprintf(path, sizeof path, "%s/%s/events.jsonl", dir, name);
    char *ev = slurp(path);
    snprintf(want, sizeof want, "{\"type\":\"%s\",", mine);
    CHECK_STR_CONTAINS(ev, want);
    snprintf(want, sizeof want, "{\"type\":\"%s\",", theirs);
    CHECK(strstr(ev, want) == NULL);
    snprintf(want, sizeof want, "\"context\":{\"%s\":", ctx_mine);
    CHECK_STR_CONTAINS(ev, want);
    snprintf(want, sizeof want, "\"context\":{\"%s\":", ctx_theirs);
    CHECK(strstr(ev, want) == NULL);

    snprintf(path, sizeof path, "%s/%s/rejected.jsonl", dir, name);
    char *rj = slurp(path);
    snprintf(want, sizeof want, "\\\"type\\\":\\\"%s\\\"", theirs);
    CHECK_STR_CONTAINS(rj, want);
    snprintf(want, sizeof want, "\\\"type\\\":\\\"%s\\\"", mine);
    CHECK(strstr(rj, want) == NULL);

    snprintf(path, sizeof path, "%s/%s/samples.jsonl", dir, name);
    char *sm = slurp(path);
    CHECK_STR_CONTAINS(sm, "\"request\":\"r1\"");
    CHECK_STR_CONTAINS(sm, "\"click\":1,\"pay\":0,");
    snprintf(want, sizeof want, "\"%s\":1,", mine);
    CHECK_STR_CONTAINS(sm, want);
    snprintf(want, sizeof want, "\"%s\":", theirs);
    CHECK(strstr(sm, want) == NULL);
    snprintf(want, sizeof want, "\"context\":{\"%s\":", ctx_mine);
    CHECK_STR_CONTAINS(sm, want);
    free(ev);
    free(rj);
    free(sm);
}

/* A job without log_collector: filter takes `event`, which no operator of
 * the job defines, from a file source; the mismatch still names it. */
static void check_mismatch(const char *dir)
{
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/mismatch.yaml", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "job: mismatch\nsources: { logs: { type: file, path: \"%s/in.jsonl\" } }\n"
            "operators: [ { id: clicks, op: filter, from: logs, types: [click] } ]\n"
            "sinks: { out: { type: file, path: \"%s/out.jsonl\", from: clicks } }\n",
            dir, dir);
    fclose(f);
    struct rn_job_options opt = {.quiet = 1};
    err[0] = 0;
    struct rn_job *j = rn_job_load(path, &opt, err, sizeof err);
    CHECK(j == NULL);
    CHECK_STR_CONTAINS(err, "type mismatch: operator 'clicks' (filter) takes 'event' records, "
                            "but 'logs' gives 'raw'");
    rn_job_destroy(j);
}

/* Two sources that each define a record type called "twin", differently. */
static void twin_json(const struct rn_record *r, struct rn_buf *out)
{
    (void)r;
    rn_buf_puts(out, "{}");
}
static int twin_poll(struct rn_op *op, struct rn_emitter *out)
{
    (void)op, (void)out;
    return RN_POLL_END;
}
static const struct rn_type twin_a = {
    .name = "twin", .description = "one", .write_json = twin_json};
static const struct rn_type twin_b = {
    .name = "twin", .description = "two", .write_json = twin_json};
static const struct rn_type *const twin_a_types[] = {&twin_a, NULL};
static const struct rn_type *const twin_b_types[] = {&twin_b, NULL};
static const struct rn_port_decl twin_out[] = {{NULL, "twin", "nothing"}};
static const struct rn_op_type twin_a_src = {
    RN_OP_TYPE_HEAD, .name = "twin_a", .description = "test source", .kind = RN_KIND_SOURCE,
    .ctx_size = 1, .outputs = twin_out, .n_outputs = 1, .poll = twin_poll,
    .types = twin_a_types,
};
static const struct rn_op_type twin_b_src = {
    RN_OP_TYPE_HEAD, .name = "twin_b", .description = "test source", .kind = RN_KIND_SOURCE,
    .ctx_size = 1, .outputs = twin_out, .n_outputs = 1, .poll = twin_poll,
    .types = twin_b_types,
};

static void check_twins(const char *dir)
{
    CHECK_EQ_INT(rn_op_register(&twin_a_src), 0);
    CHECK_EQ_INT(rn_op_register(&twin_b_src), 0);
    char path[512], err[1024];
    struct rn_job_options opt = {.quiet = 1};
    for (int both = 0; both < 2; both++) {
        snprintf(path, sizeof path, "%s/twins.yaml", dir);
        FILE *f = fopen(path, "w");
        fprintf(f,
                "job: twins\nsources: { a: { type: twin_a }%s }\n"
                "sinks: { out: { type: file, path: \"%s/twins.jsonl\", from: [a%s] } }\n",
                both ? ", b: { type: twin_b }" : "", dir, both ? ", b" : "");
        fclose(f);
        err[0] = 0;
        struct rn_job *j = rn_job_load(path, &opt, err, sizeof err);
        if (both) {
            CHECK(j == NULL);
            CHECK_STR_CONTAINS(err, "operator type 'twin_b' defines record type 'twin', which "
                                    "another operator type of job 'twins' defines differently");
        } else {
            CHECK(j != NULL);
            if (!j) fprintf(stderr, "%s\n", err);
        }
        rn_job_destroy(j);
    }
}

int main(void)
{
    char dir[] = "/tmp/rn_test_job_types_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[512];
    snprintf(path, sizeof path, "%s/in.jsonl", dir);
    FILE *f = fopen(path, "w");
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) fprintf(f, "%s\n", events[i]);
    fclose(f);

    /* Both loaded before either runs: nothing one declares reaches the other. */
    struct rn_job *a = load(dir, "a", "dwell", "hour");
    struct rn_job *b = load(dir, "b", "like", "page");
    CHECK(a != NULL);
    CHECK(b != NULL);
    if (a && b) {
        char err[1024];
        CHECK_EQ_INT(rn_job_run(a, err, sizeof err), 0);
        CHECK_EQ_INT(rn_job_run(b, err, sizeof err), 0);
        check_output(dir, "a", "dwell", "like", "hour", "page");
        check_output(dir, "b", "like", "dwell", "page", "hour");
    }
    rn_job_destroy(a);
    rn_job_destroy(b);
    check_mismatch(dir);
    check_twins(dir);

    snprintf(path, sizeof path, "rm -rf %s", dir);
    if (system(path) != 0) return 1;
    return rn_test_summary();
}
