/*
 * test_joiner.c — online_joiner's semantics, one scenario per rule: feedback
 * before its impression, duplicate clicks, pay without click, feedback for an
 * item not shown, feedback after the window (late), the window's exact end,
 * and several requests of one user interleaved. Then experience_collector on
 * the same stream: one transition per list, done where sessions end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "rn_job.h"
#include "rn_test.h"

static const char *events[] = {
    "{\"type\":\"impression\",\"ts\":1000,\"request\":\"r1\",\"user\":\"u1\",\"items\":[\"a\",\"b\"],\"propensities\":[0.5,0.5]}",
    "{\"type\":\"click\",\"ts\":2000,\"request\":\"r1\",\"user\":\"u1\",\"item\":\"a\"}",
    "{\"type\":\"pay\",\"ts\":3000,\"request\":\"r1\",\"user\":\"u1\",\"item\":\"a\",\"amount\":9.5}",
    /* feedback before its impression */
    "{\"type\":\"click\",\"ts\":5000,\"request\":\"r2\",\"user\":\"u2\",\"item\":\"b\"}",
    "{\"type\":\"impression\",\"ts\":4000,\"request\":\"r2\",\"user\":\"u2\",\"items\":[\"a\",\"b\"]}",
    /* duplicate click, then a second distinct click */
    "{\"type\":\"impression\",\"ts\":6000,\"request\":\"r3\",\"user\":\"u3\",\"items\":[\"c\"]}",
    "{\"type\":\"click\",\"ts\":7000,\"request\":\"r3\",\"user\":\"u3\",\"item\":\"c\"}",
    "{\"type\":\"click\",\"ts\":7000,\"request\":\"r3\",\"user\":\"u3\",\"item\":\"c\"}",
    "{\"type\":\"click\",\"ts\":7500,\"request\":\"r3\",\"user\":\"u3\",\"item\":\"c\"}",
    /* pay without click */
    "{\"type\":\"impression\",\"ts\":8000,\"request\":\"r4\",\"user\":\"u4\",\"items\":[\"d\"]}",
    "{\"type\":\"pay\",\"ts\":9000,\"request\":\"r4\",\"user\":\"u4\",\"item\":\"d\"}",
    /* feedback for an item not shown */
    "{\"type\":\"impression\",\"ts\":10000,\"request\":\"r5\",\"user\":\"u5\",\"items\":[\"e\"]}",
    "{\"type\":\"click\",\"ts\":11000,\"request\":\"r5\",\"user\":\"u5\",\"item\":\"z\"}",
    /* the window's end: 21999 counts, 22000 is late */
    "{\"type\":\"impression\",\"ts\":12000,\"request\":\"r6\",\"user\":\"u6\",\"items\":[\"f\"]}",
    "{\"type\":\"click\",\"ts\":21999,\"request\":\"r6\",\"user\":\"u6\",\"item\":\"f\"}",
    "{\"type\":\"click\",\"ts\":22000,\"request\":\"r6\",\"user\":\"u6\",\"item\":\"f\"}",
    /* two requests of one user, interleaved */
    "{\"type\":\"impression\",\"ts\":30000,\"request\":\"r7a\",\"user\":\"u7\",\"items\":[\"g\",\"h\"]}",
    "{\"type\":\"impression\",\"ts\":30500,\"request\":\"r7b\",\"user\":\"u7\",\"items\":[\"g\",\"h\"]}",
    "{\"type\":\"click\",\"ts\":31000,\"request\":\"r7b\",\"user\":\"u7\",\"item\":\"g\"}",
    "{\"type\":\"click\",\"ts\":31500,\"request\":\"r7a\",\"user\":\"u7\",\"item\":\"h\"}",
    "{\"type\":\"click\",\"ts\":32000,\"request\":\"r7b\",\"user\":\"u7\",\"item\":\"h\"}",
    /* moves the watermark to 39999: r6 and r7a close */
    "{\"type\":\"impression\",\"ts\":40000,\"request\":\"r8\",\"user\":\"u8\",\"items\":[\"x\"]}",
    /* feedback for a closed request: late; and for an open one: counted */
    "{\"type\":\"click\",\"ts\":15000,\"request\":\"r6\",\"user\":\"u6\",\"item\":\"f\"}",
    "{\"type\":\"click\",\"ts\":40400,\"request\":\"r7b\",\"user\":\"u7\",\"item\":\"g\"}",
    /* u1 comes back within the session gap, u2 much later */
    "{\"type\":\"impression\",\"ts\":41000,\"request\":\"r9\",\"user\":\"u1\",\"items\":[\"a\"]}",
    "{\"type\":\"impression\",\"ts\":900000,\"request\":\"r10\",\"user\":\"u2\",\"items\":[\"b\"]}",
};

struct want {
    const char *request;
    double reward;
    const char *counts; /* item:click:pay,... */
};

static const struct want wants[] = {
    {"r1", 6, "a:1:1,b:0:0"}, {"r2", 1, "a:0:0,b:1:0"}, {"r3", 2, "c:2:0"},
    {"r4", 5, "d:0:1"},       {"r5", 0, "e:0:0"},       {"r6", 1, "f:1:0"},
    {"r7a", 1, "g:0:0,h:1:0"}, {"r7b", 3, "g:2:0,h:1:0"}, {"r8", 0, "x:0:0"},
    {"r9", 0, "a:0:0"},       {"r10", 0, "b:0:0"},
};

static const char *yget_str(yajl_val v, const char *k)
{
    const char *p[] = {k, NULL};
    yajl_val x = yajl_tree_get(v, p, yajl_t_string);
    return x ? YAJL_GET_STRING(x) : "";
}

static double yget_num(yajl_val v, const char *k)
{
    const char *p[] = {k, NULL};
    yajl_val x = yajl_tree_get(v, p, yajl_t_number);
    return x ? YAJL_GET_DOUBLE(x) : -1;
}

int main(void)
{
    char dir[] = "/tmp/rn_test_joiner_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[512];
    snprintf(path, sizeof path, "%s/in.jsonl", dir);
    FILE *f = fopen(path, "w");
    for (size_t i = 0; i < RN_ARRAY_LEN(events); i++) fprintf(f, "%s\n", events[i]);
    fclose(f);
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    f = fopen(path, "w");
    fprintf(f,
            "job: joiner\nparallelism: 2\n"
            "state: { dir: \"%s/state\" }\n"
            "watermark: { out_of_orderness: 0, emit_every: 1 }\n"
            "sources: { logs: { type: file, path: \"%s/in.jsonl\" } }\n"
            "operators:\n"
            "  - { id: collect, op: log_collector, from: logs }\n"
            "  - { id: join, op: online_joiner, from: collect, window: 10s, late: late,\n"
            "      retain_closed: 60s,\n"
            "      rewards: { click: 1, pay: 5 } }\n"
            "  - { id: xp, op: experience_collector, from: join, session_gap: 60s, label_delay: 10s }\n"
            "sinks:\n"
            "  samples: { type: file, path: \"%s/samples.jsonl\", from: join }\n"
            "  xps: { type: file, path: \"%s/xp.jsonl\", from: xp }\n"
            "  late: { type: file, path: \"%s/late.jsonl\" }\n",
            dir, dir, dir, dir, dir);
    fclose(f);
    char err[1024];
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *j = rn_job_load(path, &opt, err, sizeof err);
    CHECK(j != NULL);
    if (!j) {
        fprintf(stderr, "%s\n", err);
        return rn_test_summary();
    }
    CHECK_EQ_INT(rn_job_run(j, err, sizeof err), 0);
    struct rn_buf js = RN_BUF_INIT;
    rn_job_render_json(j, &js);
    rn_buf_putc(&js, 0);
    CHECK_STR_CONTAINS(js.data, "\"duplicates\":1,");
    CHECK_STR_CONTAINS(js.data, "\"unmatched_feedback\":1,");
    CHECK_STR_CONTAINS(js.data, "\"late_feedback\":2,");
    CHECK_STR_CONTAINS(js.data, "\"samples\":11,");
    CHECK_STR_CONTAINS(js.data, "\"experiences\":11,");
    rn_buf_free(&js);
    rn_job_destroy(j);

    /* Every sample as expected. */
    snprintf(path, sizeof path, "%s/samples.jsonl", dir);
    FILE *sf = fopen(path, "r");
    char line[4096];
    int n = 0, good = 0;
    while (sf && fgets(line, sizeof line, sf)) {
        n++;
        char e2[256];
        yajl_val v = yajl_tree_parse(line, e2, sizeof e2);
        if (!v) continue;
        const char *req = yget_str(v, "request");
        for (size_t w = 0; w < RN_ARRAY_LEN(wants); w++) {
            if (strcmp(wants[w].request, req) != 0) continue;
            struct rn_buf got = RN_BUF_INIT;
            const char *ip[] = {"items", NULL};
            yajl_val items = yajl_tree_get(v, ip, yajl_t_array);
            for (size_t i = 0; items && i < YAJL_GET_ARRAY(items)->len; i++) {
                yajl_val it = YAJL_GET_ARRAY(items)->values[i];
                rn_buf_printf(&got, "%s%s:%d:%d", i ? "," : "", yget_str(it, "item"),
                              (int)yget_num(it, "click"), (int)yget_num(it, "pay"));
            }
            rn_buf_putc(&got, 0);
            if (strcmp(got.data, wants[w].counts) == 0 && yget_num(v, "reward") == wants[w].reward)
                good++;
            else
                fprintf(stderr, "%s: got %s reward %g, want %s reward %g\n", req, got.data,
                        yget_num(v, "reward"), wants[w].counts, wants[w].reward);
            rn_buf_free(&got);
        }
        yajl_tree_free(v);
    }
    if (sf) fclose(sf);
    CHECK_EQ_INT(n, RN_ARRAY_LEN(wants));
    CHECK_EQ_INT(good, RN_ARRAY_LEN(wants));

    /* Exactly the two late clicks went to `late`. */
    snprintf(path, sizeof path, "%s/late.jsonl", dir);
    FILE *lf = fopen(path, "r");
    int late = 0, late22 = 0, late15 = 0;
    while (lf && fgets(line, sizeof line, lf)) {
        late++;
        late22 += strstr(line, "\"ts\":22000") != NULL;
        late15 += strstr(line, "\"ts\":15000") != NULL;
    }
    if (lf) fclose(lf);
    CHECK_EQ_INT(late, 2);
    CHECK_EQ_INT(late22, 1);
    CHECK_EQ_INT(late15, 1);

    /* Transitions: u1's first list continues (r9 within 60 s), u2's first
     * ends its session (r10 comes 15 min later, after the gap's timer);
     * lists with no successor end too. */
    snprintf(path, sizeof path, "%s/xp.jsonl", dir);
    FILE *xf = fopen(path, "r");
    int xps = 0, r1_ok = 0, r2_ok = 0, done = 0;
    while (xf && fgets(line, sizeof line, xf)) {
        xps++;
        done += strstr(line, "\"done\":1") != NULL;
        if (strstr(line, "\"request\":\"r1\"") && strstr(line, "\"done\":0") &&
            strstr(line, "\"next_ts\":41000") &&
            strstr(line, "\"s_next\":{\"history\":[{\"item\":\"a\",\"ts\":1000}]"))
            r1_ok = 1;
        /* r10 comes after the gap: the gap's timer ends r2's session first. */
        if (strstr(line, "\"request\":\"r2\"") && strstr(line, "\"done\":1") &&
            strstr(line, "\"next_ts\":null"))
            r2_ok = 1;
    }
    if (xf) fclose(xf);
    CHECK_EQ_INT(xps, 11);
    CHECK(r1_ok);
    CHECK(r2_ok);
    /* u1 and u7 each continue once; the other 9 lists end a session. */
    CHECK_EQ_INT(done, 9);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
