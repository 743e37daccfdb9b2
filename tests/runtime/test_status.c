/*
 * test_status.c — the status page answers while a job runs: all four
 * endpoints over a real socket, figures that move as input arrives, 4xx for
 * bad requests, and a clean stop. An operator's latency histogram (a test
 * type, `timed`, that records 100 µs per record) reaches /metrics as a
 * Prometheus histogram and the history as p50/p99 series.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rn_job.h"
#include "rn_operator.h"
#include "rn_test.h"

/* `timed`: passes records on and records 100 µs for each into its "step"
 * histogram (bucket [64, 128) µs: every quantile reads 128). */
static const struct rn_config_key timed_keys[] = {RN_CONFIG_END};
static const char *const timed_latencies[] = {"step", NULL};
static int timed_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    struct rn_latency *l = rn_op_latency(op, 0);
    for (uint32_t i = 0; i < in->n; i++) {
        rn_latency_record(l, 100000);
        rn_emit_copy(out, 0, &in->recs[i]);
    }
    return 0;
}
static const struct rn_port_decl timed_out[] = {{NULL, "*", "The input."}};
static const struct rn_op_type timed_type = {
    RN_OP_TYPE_HEAD,
    .name = "timed",
    .description = "Test: records a latency per record.",
    .kind = RN_KIND_OPERATOR,
    .config = timed_keys,
    .ctx_size = 1,
    .in_type = "*",
    .outputs = timed_out,
    .n_outputs = 1,
    .process = timed_process,
    .latencies = timed_latencies,
};

static struct rn_job *job;
static int run_rc = -100;
static char run_err[512];

static void *runner(void *arg)
{
    (void)arg;
    run_rc = rn_job_run(job, run_err, sizeof run_err);
    return NULL;
}

/* Sends `req` raw and returns the whole response (malloc'd) or NULL. */
static char *http_raw(const char *addr, const char *req)
{
    char host[64];
    int port = 0;
    const char *colon = strrchr(addr, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    port = atoi(colon + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return NULL;
    }
    size_t len = strlen(req);
    if (write(fd, req, len) != (ssize_t)len) {
        close(fd);
        return NULL;
    }
    struct rn_buf b = RN_BUF_INIT;
    int64_t deadline = rn_now_ns() + 5000000000LL;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) {
            if (rn_now_ns() > deadline) break;
            continue;
        }
        char chunk[65536];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n <= 0) break;
        rn_buf_append(&b, chunk, (size_t)n);
    }
    close(fd);
    rn_buf_putc(&b, 0);
    return b.data;
}

static char *http_get(const char *addr, const char *path)
{
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    return http_raw(addr, req);
}

/* Value of the number after `key` in the JSON object of operator `id`. */
static long long op_figure(const char *json, const char *id, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "{\"id\":\"%s\"", id);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p) return -1;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(p, pat);
    return p ? atoll(p + strlen(pat)) : -1;
}

static void append_lines(const char *path, int from, int n)
{
    FILE *f = fopen(path, "a");
    for (int i = from; i < from + n; i++)
        fprintf(f,
                "{\"type\":\"click\",\"ts\":%d,\"request\":\"r%d\",\"user\":\"u%d\",\"item\":\"i1\"}\n",
                1700000000 + i, i, i % 10);
    fprintf(f, "broken line %d\n", from);
    fclose(f);
}

/* Waits until the API shows `want` records into `id` (or the deadline). */
static long long wait_for(const char *addr, const char *id, long long want)
{
    long long v = -1;
    int64_t deadline = rn_now_ns() + 20000000000LL;
    while (rn_now_ns() < deadline) {
        char *r = http_get(addr, "/api/v1/job");
        v = op_figure(r, id, "records_in");
        free(r);
        if (v == want) break;
        usleep(20000);
    }
    return v;
}

int main(void)
{
    char dir[] = "/tmp/rn_test_status_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char log[256], jobp[256], out[256];
    snprintf(log, sizeof log, "%s/in.jsonl", dir);
    snprintf(jobp, sizeof jobp, "%s/job.yaml", dir);
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    append_lines(log, 0, 1000);
    FILE *f = fopen(jobp, "w");
    fprintf(f,
            "job: status-test\nparallelism: 2\nhttp: { listen: 127.0.0.1:0 }\n"
            "sources:\n  logs: { type: file, path: %s, follow: true, poll_interval: 20ms }\n"
            "operators:\n"
            "  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }\n"
            "  - { id: by_user, op: key_by, from: collect, key: user }\n"
            "  - { id: timed, op: timed, from: by_user }\n"
            "sinks:\n  out: { type: file, path: %s, from: timed }\n"
            "  rejected: { type: discard }\n",
            log, out);
    fclose(f);
    CHECK_EQ_INT(rn_op_register(&timed_type), 0);
    char err[512];
    struct rn_job_options opt = {.quiet = 1};
    job = rn_job_load(jobp, &opt, err, sizeof err);
    CHECK(job != NULL);
    if (!job) {
        fprintf(stderr, "%s\n", err);
        return rn_test_summary();
    }
    pthread_t th;
    pthread_create(&th, NULL, runner, NULL);
    const char *addr = "";
    for (int64_t deadline = rn_now_ns() + 10000000000LL; rn_now_ns() < deadline;) {
        addr = rn_job_http_address(job);
        if (addr[0]) break;
        usleep(5000);
    }
    CHECK(addr[0] != 0);

    /* Until the whole pipeline has seen the first 1001 lines. */
    CHECK_EQ_INT(wait_for(addr, "out", 1000), 1000);
    CHECK_EQ_INT(wait_for(addr, "rejected", 1), 1);
    char *r = http_get(addr, "/healthz");
    CHECK_STR_CONTAINS(r, "HTTP/1.1 200");
    CHECK_STR_CONTAINS(r, "ok");
    free(r);
    /* "/" is the web UI (drawn by its scripts, test_webui.sh); "/plain" the tables. */
    r = http_get(addr, "/");
    CHECK_STR_CONTAINS(r, "text/html");
    CHECK_STR_CONTAINS(r, "/ui/job.js");
    free(r);
    r = http_get(addr, "/plain");
    CHECK_STR_CONTAINS(r, "text/html");
    CHECK_STR_CONTAINS(r, "status-test");
    CHECK_STR_CONTAINS(r, "log_collector");
    free(r);
    r = http_get(addr, "/api/v1/job");
    CHECK_STR_CONTAINS(r, "application/json");
    CHECK_STR_CONTAINS(r, "\"state\":\"running\"");
    CHECK_STR_CONTAINS(r, "\"dead_letters\":1");
    CHECK_EQ_INT(op_figure(r, "by_user", "records_in"), 1000);
    /* the process's memory: resident now, at most its peak, both nonzero */
    {
        const char *pr = strstr(r, "\"process\":{\"rss_bytes\":");
        CHECK(pr != NULL);
        unsigned long long rss = 0, peak = 0;
        if (pr) CHECK(sscanf(pr, "\"process\":{\"rss_bytes\":%llu,\"peak_rss_bytes\":%llu", &rss,
                             &peak) == 2);
        CHECK(rss > 1000000 && rss <= peak);
    }
    /* the web UI's additions: edges with their modes, figures per subtask */
    CHECK_STR_CONTAINS(r, "\"edges\":[{\"from\":");
    CHECK_STR_CONTAINS(r, "\"mode\":\"");
    CHECK_STR_CONTAINS(r, "\"subtasks\":[{\"subtask\":0,\"records_in\":");
    free(r);
    r = http_get(addr, "/metrics");
    CHECK_STR_CONTAINS(r, "runnel_records_in_total{job=\"status-test\",operator=\"collect\"} 1001");
    CHECK_STR_CONTAINS(r, "runnel_dead_letters_total{job=\"status-test\"} 1");
    CHECK_STR_CONTAINS(r, "runnel_queue_fill{");
    CHECK_STR_CONTAINS(r, "process_resident_memory_bytes{job=\"status-test\"} ");
    CHECK_STR_CONTAINS(r, "runnel_process_peak_resident_memory_bytes{job=\"status-test\"} ");
    free(r);

    /* The figures move as more input arrives. */
    append_lines(log, 1000, 500);
    CHECK_EQ_INT(wait_for(addr, "out", 1500), 1500);
    CHECK_EQ_INT(wait_for(addr, "rejected", 2), 2);
    r = http_get(addr, "/metrics");
    CHECK_STR_CONTAINS(r, "runnel_records_in_total{job=\"status-test\",operator=\"collect\"} 1502");
    CHECK_STR_CONTAINS(r, "runnel_dead_letters_total{job=\"status-test\"} 2");
    free(r);

    /* The latency histogram: 1500 records of 100 µs, all in the bucket up to
     * 128 µs; the history charts that second's p50 and p99 as 128 µs. */
    r = http_get(addr, "/metrics");
    CHECK_STR_CONTAINS(r, "# TYPE runnel_operator_latency_seconds histogram");
    CHECK_STR_CONTAINS(r, "runnel_operator_latency_seconds_bucket{job=\"status-test\",operator="
                          "\"timed\",name=\"step\",le=\"6.4e-05\"} 0\n");
    CHECK_STR_CONTAINS(r, "runnel_operator_latency_seconds_bucket{job=\"status-test\",operator="
                          "\"timed\",name=\"step\",le=\"0.000128\"} 1500\n");
    CHECK_STR_CONTAINS(r, "runnel_operator_latency_seconds_bucket{job=\"status-test\",operator="
                          "\"timed\",name=\"step\",le=\"+Inf\"} 1500\n");
    CHECK_STR_CONTAINS(r, "runnel_operator_latency_seconds_sum{job=\"status-test\",operator="
                          "\"timed\",name=\"step\"} 0.150000000\n");
    CHECK_STR_CONTAINS(r, "runnel_operator_latency_seconds_count{job=\"status-test\",operator="
                          "\"timed\",name=\"step\"} 1500\n");
    free(r);
    r = http_get(addr, "/api/v1/job");
    CHECK_STR_CONTAINS(
        r, "\"latency_us\":{\"step\":{\"count\":1500,\"p50\":128.0,\"p99\":128.0,\"p999\":128.0}}");
    CHECK_STR_CONTAINS(r, "\"latency_us\":{},"); /* the types without histograms */
    free(r);
    int charted = 0;
    for (int64_t deadline = rn_now_ns() + 20000000000LL; !charted && rn_now_ns() < deadline;) {
        r = http_get(addr, "/api/v1/history");
        /* within each series' own array, a point of 128 */
        for (int q = 0; q < 2; q++) {
            const char *at = strstr(r, q ? "\"timed.lat.step.p99\":[" : "\"timed.lat.step.p50\":[");
            const char *end = at ? strchr(at, ']') : NULL, *hit = at ? strstr(at, "128") : NULL;
            charted = q ? charted && hit && hit < end : hit && hit < end;
        }
        free(r);
        if (!charted) usleep(100000);
    }
    CHECK(charted);

    /* Bad requests get a 4xx and the server lives on. */
    r = http_raw(addr, "\x01\x02 garbage\r\n\r\n");
    CHECK_STR_CONTAINS(r, "HTTP/1.1 400");
    free(r);
    r = http_get(addr, "/nope");
    CHECK_STR_CONTAINS(r, "HTTP/1.1 404");
    free(r);
    r = http_raw(addr, "POST /api/v1/job HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
    CHECK_STR_CONTAINS(r, "HTTP/1.1 405");
    free(r);
    r = http_get(addr, "/healthz");
    CHECK_STR_CONTAINS(r, "HTTP/1.1 200");
    free(r);

    /* A clean stop: everything read so far is written out. */
    rn_job_stop(job);
    pthread_join(th, NULL);
    CHECK_EQ_INT(run_rc, 0);
    rn_job_destroy(job);
    FILE *o = fopen(out, "r");
    int lines = 0, c;
    while (o && (c = fgetc(o)) != EOF) lines += c == '\n';
    if (o) fclose(o);
    CHECK_EQ_INT(lines, 1500);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
