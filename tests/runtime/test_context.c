/*
 * test_context.c — a request's numeric context travels log_collector ->
 * online_joiner -> experience_collector when the job names context_fields:
 * the events, samples and transitions (s: this list's request, s': the next
 * list's) carry the values by name; a missing field is NaN (null in JSON)
 * and counted; a non-numeric value sends the line to the dead letters with
 * the reason. Without context_fields nothing of it appears. Broken jobs: a
 * learner whose list differs from log_collector's, context with a state
 * network, a list that is not a list of names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_job.h"
#include "rn_test.h"

static const char *events[] = {
    "{\"type\":\"request\",\"ts\":1000,\"request\":\"r1\",\"user\":\"u1\",\"candidates\":[\"a\",\"b\"],"
    "\"context\":{\"page\":0,\"hour\":22,\"other\":\"x\",\"deep\":{\"hour\":\"no\"}}}",
    "{\"type\":\"impression\",\"ts\":1001,\"request\":\"r1\",\"user\":\"u1\",\"items\":[\"a\",\"b\"]}",
    "{\"type\":\"click\",\"ts\":2000,\"request\":\"r1\",\"user\":\"u1\",\"item\":\"a\"}",
    /* the next list of u1: its context is s' of r1's transition */
    "{\"type\":\"request\",\"ts\":5000,\"request\":\"r2\",\"user\":\"u1\",\"candidates\":[\"a\",\"c\"],"
    "\"context\":{\"hour\":23,\"page\":1.5}}",
    "{\"type\":\"impression\",\"ts\":5001,\"request\":\"r2\",\"user\":\"u1\",\"items\":[\"c\"]}",
    /* missing page: NaN, counted */
    "{\"type\":\"request\",\"ts\":6000,\"request\":\"r3\",\"user\":\"u2\",\"candidates\":[\"a\"],"
    "\"context\":{\"hour\":7}}",
    "{\"type\":\"impression\",\"ts\":6001,\"request\":\"r3\",\"user\":\"u2\",\"items\":[\"a\"]}",
    /* bad lines */
    "{\"type\":\"request\",\"ts\":7000,\"request\":\"r4\",\"user\":\"u3\",\"context\":{\"hour\":\"late\"}}",
    "{\"type\":\"request\",\"ts\":7000,\"request\":\"r5\",\"user\":\"u3\",\"context\":{\"page\":null}}",
    "{\"type\":\"request\",\"ts\":7000,\"request\":\"r6\",\"user\":\"u3\",\"context\":[1,2]}",
    "{\"type\":\"request\",\"ts\":7000,\"request\":\"r7\",\"user\":\"u3\",\"context\":{\"hour\":1,\"hour\":2}}",
    /* moves the watermark: everything closes */
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

static const char *line_of(const char *text, const char *needle, char *buf, size_t cap)
{
    const char *p = strstr(text, needle);
    if (!p) return "";
    while (p > text && p[-1] != '\n') p--;
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n >= cap) n = cap - 1;
    memcpy(buf, p, n);
    buf[n] = 0;
    return buf;
}

static int run(const char *dir, const char *collect_extra)
{
    char path[512];
    snprintf(path, sizeof path, "rm -rf %s/state %s/*.jsonl.* %s/events.jsonl %s/samples.jsonl "
             "%s/xp.jsonl %s/rejected.jsonl", dir, dir, dir, dir, dir, dir);
    if (system(path) != 0) return -1;
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "job: context\nparallelism: 2\n"
            "state: { dir: \"%s/state\" }\n"
            "watermark: { out_of_orderness: 0, emit_every: 1 }\n"
            "sources: { logs: { type: file, path: \"%s/in.jsonl\" } }\n"
            "operators:\n"
            "  - { id: collect, op: log_collector, from: logs, dead_letter: rejected%s }\n"
            "  - { id: join, op: online_joiner, from: collect, window: 10s }\n"
            "  - { id: xp, op: experience_collector, from: join, session_gap: 60s, label_delay: 10s }\n"
            "sinks:\n"
            "  events: { type: file, path: \"%s/events.jsonl\", from: collect }\n"
            "  samples: { type: file, path: \"%s/samples.jsonl\", from: join }\n"
            "  xps: { type: file, path: \"%s/xp.jsonl\", from: xp }\n"
            "  rejected: { type: file, path: \"%s/rejected.jsonl\" }\n",
            dir, dir, collect_extra, dir, dir, dir, dir);
    fclose(f);
    char err[1024];
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *j = rn_job_load(path, &opt, err, sizeof err);
    CHECK(j != NULL);
    if (!j) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    CHECK_EQ_INT(rn_job_run(j, err, sizeof err), 0);
    struct rn_buf js = RN_BUF_INIT;
    rn_job_render_json(j, &js);
    rn_buf_putc(&js, 0);
    if (collect_extra[0]) CHECK_STR_CONTAINS(js.data, "\"context_missing\":1");
    rn_buf_free(&js);
    rn_job_destroy(j);
    return 0;
}

/* Loads a job whose operators section is `ops`; returns the load error. */
static int load_fails(const char *dir, const char *ops, const char *want)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "job: bad\nsources: { logs: { type: file, path: \"%s/in.jsonl\" } }\n"
            "operators:\n%s",
            dir, ops);
    fclose(f);
    char err[1024] = "";
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *j = rn_job_load(path, &opt, err, sizeof err);
    CHECK(j == NULL);
    if (j) rn_job_destroy(j);
    CHECK_STR_CONTAINS(err, want);
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/rn_test_ctx_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[512], buf[8192];
    snprintf(path, sizeof path, "%s/in.jsonl", dir);
    FILE *f = fopen(path, "w");
    for (size_t i = 0; i < RN_ARRAY_LEN(events); i++) fprintf(f, "%s\n", events[i]);
    fclose(f);

    if (run(dir, ", context_fields: [hour, page]") == 0) {
        snprintf(path, sizeof path, "%s/events.jsonl", dir);
        char *ev = slurp(path);
        CHECK_STR_CONTAINS(line_of(ev, "\"request\":\"r1\"", buf, sizeof buf),
                           "\"context\":{\"hour\":22,\"page\":0}");
        CHECK_STR_CONTAINS(line_of(ev, "\"request\":\"r3\"", buf, sizeof buf),
                           "\"context\":{\"hour\":7,\"page\":null}");
        CHECK(strstr(line_of(ev, "\"type\":\"impression\"", buf, sizeof buf), "context") == NULL);
        free(ev);

        snprintf(path, sizeof path, "%s/samples.jsonl", dir);
        char *sa = slurp(path);
        CHECK_STR_CONTAINS(line_of(sa, "\"request\":\"r1\"", buf, sizeof buf),
                           "\"context\":{\"hour\":22,\"page\":0}");
        CHECK_STR_CONTAINS(line_of(sa, "\"request\":\"r2\"", buf, sizeof buf),
                           "\"context\":{\"hour\":23,\"page\":1.5}");
        /* no request event seen for r9: NaN */
        CHECK_STR_CONTAINS(line_of(sa, "\"request\":\"r9\"", buf, sizeof buf),
                           "\"context\":{\"hour\":null,\"page\":null}");
        free(sa);

        snprintf(path, sizeof path, "%s/xp.jsonl", dir);
        char *xp = slurp(path);
        const char *l = line_of(xp, "\"request\":\"r1\"", buf, sizeof buf);
        CHECK_STR_CONTAINS(l, "\"done\":0");
        const char *sn = strstr(l, "\"s_next\":");
        CHECK(sn != NULL);
        if (sn) {
            CHECK_STR_CONTAINS(sn, "\"context\":{\"hour\":23,\"page\":1.5}");
            char s_part[4096];
            size_t n = (size_t)(sn - l) < sizeof s_part - 1 ? (size_t)(sn - l) : sizeof s_part - 1;
            memcpy(s_part, l, n);
            s_part[n] = 0;
            CHECK_STR_CONTAINS(s_part, "\"s\":{\"history\":[],\"context\":{\"hour\":22,\"page\":0}}");
        }
        /* the end of a session: s' repeats s's context */
        l = line_of(xp, "\"request\":\"r2\"", buf, sizeof buf);
        CHECK_STR_CONTAINS(l, "\"done\":1");
        CHECK_STR_CONTAINS(l, "\"s_next\":{\"history\":[{\"item\":\"a\",\"ts\":1001}],"
                              "\"context\":{\"hour\":23,\"page\":1.5}}");
        free(xp);

        snprintf(path, sizeof path, "%s/rejected.jsonl", dir);
        char *rj = slurp(path);
        CHECK_STR_CONTAINS(line_of(rj, "r4\\\"", buf, sizeof buf), "context field 'hour' must be a number");
        CHECK_STR_CONTAINS(line_of(rj, "r5\\\"", buf, sizeof buf), "context field 'page' must be a number");
        CHECK_STR_CONTAINS(line_of(rj, "r6\\\"", buf, sizeof buf), "'context' must be an object");
        CHECK_STR_CONTAINS(line_of(rj, "r7\\\"", buf, sizeof buf), "duplicate context field 'hour'");
        free(rj);
    }

    /* Without context_fields the same log gives no context anywhere and the
     * context object is not read (r4..r7 are good requests then). */
    if (run(dir, "") == 0) {
        const char *files[] = {"events.jsonl", "samples.jsonl", "xp.jsonl"};
        for (size_t i = 0; i < RN_ARRAY_LEN(files); i++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            char *t = slurp(path);
            CHECK(strstr(t, "context") == NULL);
            free(t);
        }
        snprintf(path, sizeof path, "%s/rejected.jsonl", dir);
        char *rj = slurp(path);
        CHECK(strstr(rj, "context") == NULL);
        free(rj);
    }
    load_fails(dir,
               "  - { id: collect, op: log_collector, from: logs, context_fields: [hour, page] }\n"
               "  - { id: join, op: online_joiner, from: collect }\n"
               "  - { id: xp, op: experience_collector, from: join }\n"
               "  - { id: learn, op: value_advantage_learner, from: xp, embeddings: e.txt,\n"
               "      model_store: m, context_fields: [hour] }\n",
               "'context_fields' differs from another operator's list");
    load_fails(dir,
               "  - { id: collect, op: log_collector, from: logs, context_fields: [hour, page] }\n"
               "  - { id: join, op: online_joiner, from: collect }\n"
               "  - { id: xp, op: experience_collector, from: join }\n"
               "  - { id: learn, op: value_advantage_learner, from: xp, embeddings: e.txt,\n"
               "      model_store: m, state_network: n.safetensors, context_fields: [hour, page] }\n",
               "'context_fields' with 'state_network'");
    load_fails(dir, "  - { id: collect, op: log_collector, from: logs, context_fields: hour }\n",
               "'context_fields' must be a list of names");
    load_fails(dir,
               "  - { id: collect, op: log_collector, from: logs, context_fields: [hour, hour] }\n",
               "context field 'hour' is listed twice");
    return rn_test_summary();
}
