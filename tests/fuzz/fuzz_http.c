/*
 * fuzz_http.c — the HTTP request path as a client drives it: raw bytes over a
 * loopback connection into a running job's two servers (rn_http.c's parser,
 * limits and keep-alive, then the routing of the status page and of the
 * serving server), and every JSON body the REST API takes.
 *
 * Once per process the harness writes a small job (a followed log file ->
 * log_collector -> inference serving POST /api/v1/recommend from a model
 * store it publishes one version into, and a keyed online_joiner, with
 * checkpoints) and runs it on a thread of its own until the process exits.
 *
 * Per input, the first byte says where the rest goes:
 *   bit 0   0: the status server (one request per connection),
 *           1: the serving server (keep-alive, pipelining);
 *   bit 1   0: the rest is sent as it is (request line, headers, body: any
 *              bytes, pipelined requests included);
 *           1: the next byte picks an endpoint of the table below and the rest
 *              is its body, framed as a valid request with Content-Length,
 *              so the fuzzer spends its time in the JSON readers.
 * The harness then half-closes and reads until the server closes. The server
 * must answer every complete request with a well-formed status line, and must
 * close within a few seconds of the client's end: a hang aborts, as does a
 * crash, a leak or undefined behaviour anywhere in the process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "rn_job.h"
#include "rn_model.h"

static const struct {
    int serve;
    const char *method, *path;
} rn_fuzz_endpoints[] = {
    {1, "POST", "/api/v1/recommend"},    {0, "POST", "/api/v1/models/pin"},
    {0, "POST", "/api/v1/models/unpin"}, {0, "POST", "/api/v1/models/rollback"},
    {0, "POST", "/api/v1/checkpoints"},  {0, "POST", "/api/v1/savepoints"},
    {0, "GET", "/api/v1/models"},        {0, "GET", "/api/v1/job"},
    {0, "GET", "/api/v1/checkpoints"},   {0, "GET", "/metrics"},
    {1, "GET", "/api/v1/inference"},     {1, "GET", "/api/v1/recommendations/u1"},
};
#define RN_FUZZ_N_ENDPOINTS (sizeof rn_fuzz_endpoints / sizeof rn_fuzz_endpoints[0])

static struct rn_job *job;
static pthread_t job_thread;
static struct sockaddr_in addr[2]; /* status, serve */

static void rn_fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_http: %s\n", what);
    abort();
}

static atomic_int job_ended;

static void *rn_fuzz_run(void *arg)
{
    (void)arg;
    char err[1024] = "";
    int rc = rn_job_run(job, err, sizeof err);
    fprintf(stderr, "fuzz_http: the job ended (%d)%s%s\n", rc, err[0] ? ": " : "", err);
    atomic_store(&job_ended, 1);
    return NULL;
}

static void rn_fuzz_teardown(void)
{
    rn_job_stop(job);
    pthread_join(job_thread, NULL);
    rn_job_destroy(job);
}

static void rn_fuzz_parse_addr(const char *s, struct sockaddr_in *out)
{
    const char *colon = strrchr(s, ':');
    char host[64];
    if (!colon || (size_t)(colon - s) >= sizeof host) rn_fuzz_fail("bad bound address");
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &out->sin_addr) != 1) rn_fuzz_fail("bad bound host");
}

/* Sends req to server `which`, half-closes, and appends the answer to out.
 * Returns 0, or -1 when the server neither answers nor closes in time. */
static int rn_fuzz_exchange(int which, const void *req, size_t len, struct rn_buf *out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) rn_fuzz_fail("socket");
    int cr = connect(fd, (struct sockaddr *)&addr[which], sizeof addr[which]);
    if (cr != 0 && errno == EINTR) {
        /* Interrupted (libFuzzer's timer signal): the connection goes on; wait for it. */
        struct pollfd p = {fd, POLLOUT, 0};
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        while (poll(&p, 1, 8000) < 0 && errno == EINTR) {
        }
        cr = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0 ? 0 : -1;
        if (soerr) errno = soerr;
    }
    if (cr != 0) {
        fprintf(stderr, "fuzz_http: connect to the %s server: %s%s\n", which ? "serving" : "status",
                strerror(errno), atomic_load(&job_ended) ? " (the job has ended)" : "");
        rn_fuzz_fail("cannot connect to the job's server");
    }
    /* No TIME_WAIT pile-up over millions of connections: reset on close. */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int rc = 0;
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, (const char *)req + sent, len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break; /* the server answered early (413, 431) and closed */
        sent += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    char buf[65536];
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, 8000);
        if (pr == 0) {
            rc = -1;
            break;
        }
        if (pr < 0 && errno == EINTR) continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (out->len < (1u << 20)) rn_buf_append(out, buf, (size_t)n);
    }
    close(fd);
    return rc;
}

/* Sends `method path` without a body; 1 when the answer has status `status`
 * and contains `want` (NULL: anything). */
static int rn_fuzz_call(int which, const char *method, const char *path, const char *status,
                        const char *want)
{
    char req[256];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                     method, path);
    struct rn_buf out = RN_BUF_INIT;
    int ok = rn_fuzz_exchange(which, req, (size_t)n, &out) == 0 && out.len > 12 &&
             memcmp(out.data + 9, status, 3) == 0;
    if (ok && want) {
        rn_buf_putc(&out, 0);
        ok = strstr(out.data, want) != NULL;
    }
    rn_buf_free(&out);
    return ok;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *d = rn_fuzz_dir();
    char err[1024], store[300], path[600];
    static const char emb[] = "i1 0.1 0.2 0.3 0.4\ni2 -0.5 0.25 0 1\ni3 1 1 1 1\n";
    rn_fuzz_file("emb.txt", emb, sizeof emb - 1);
    static const char log[] =
        "{\"type\":\"request\",\"ts\":1700000000000,\"request\":\"r1\",\"user\":\"u1\","
        "\"candidates\":[\"i1\",\"i2\",\"i3\"]}\n";
    rn_fuzz_file("log.jsonl", log, sizeof log - 1);
    snprintf(store, sizeof store, "%s/models", d);
    struct rn_model_shape sh = {
        .dim = 4, .phi = RN_PHI_SIMPLE_DIM(4), .buckets = 64, .positions = 10};
    struct rn_model *m = rn_model_create(&sh);
    for (size_t i = 0; i < m->at.n; i++)
        m->params[i] = (float)(i % 7) / 7.0f;
    for (int64_t v = 1; v <= 3; v++) {
        struct rn_model_version mv = {
            .id = v, .created_ms = 1700000000000 + v, .event_time = 1700000000000 + v};
        if (rn_store_publish(store, m, &mv, err, sizeof err)) rn_fuzz_fail(err);
    }
    rn_model_destroy(m);
    struct rn_buf y = RN_BUF_INIT;
    rn_buf_printf(&y,
                  "job: fuzz_http\n"
                  "http: { listen: 127.0.0.1:0 }\n"
                  "serve: { listen: 127.0.0.1:0, threads: 2 }\n"
                  "state: { dir: \"%s/state\" }\n"
                  "checkpoint: { dir: \"%s/ckpt\", interval: 1h, retain: 2 }\n"
                  "sources: { logs: { type: file, path: \"%s/log.jsonl\", follow: true } }\n"
                  "operators:\n"
                  "  - { id: collect, op: log_collector, from: logs }\n"
                  "  - { id: join, op: online_joiner, from: collect, window: 30m }\n"
                  "  - { id: rank, op: inference, from: collect, embeddings: \"%s/emb.txt\",\n"
                  "      model_store: \"%s\", max_candidates: 16, poll_interval: 20ms }\n"
                  "sinks:\n"
                  "  recs: { type: file, path: \"%s/out/recs.jsonl\", from: rank }\n"
                  "  samples: { type: file, path: \"%s/out/samples.jsonl\", from: join }\n",
                  d, d, d, d, store, d, d);
    snprintf(path, sizeof path, "%s", rn_fuzz_file("job.yaml", y.data, y.len));
    rn_buf_free(&y);
    struct rn_job_options opt = {.quiet = 1, .fresh = 1};
    job = rn_job_load(path, &opt, err, sizeof err);
    if (!job) {
        fprintf(stderr, "%s\n", err);
        rn_fuzz_fail("the harness's job does not load");
    }
    if (pthread_create(&job_thread, NULL, rn_fuzz_run, NULL)) rn_fuzz_fail("pthread_create");
    /* Up when both servers are bound, inference has loaded its model, and a
     * checkpoint has completed (so every task has opened its state). */
    int up = 0, asked = 0;
    for (int i = 0; i < 6000 && !up; i++) {
        if (rn_job_http_address(job)[0] && rn_job_serve_address(job)[0]) {
            rn_fuzz_parse_addr(rn_job_http_address(job), &addr[0]);
            rn_fuzz_parse_addr(rn_job_serve_address(job), &addr[1]);
            if (!asked && rn_fuzz_call(1, "GET", "/api/v1/inference", "200", NULL) &&
                rn_fuzz_call(0, "GET", "/healthz", "200", NULL))
                asked = rn_fuzz_call(0, "POST", "/api/v1/checkpoints", "202", NULL);
            if (asked) up = rn_fuzz_call(0, "GET", "/api/v1/checkpoints", "200", "\"completed\":1");
        }
        if (!up) usleep(10000);
    }
    if (!up) rn_fuzz_fail("the job did not come up within 60 s");
    /* Registered only now, after RocksDB has made its function-local statics:
     * exit() destroys those in reverse order of registration, so the job must
     * be stopped (and every database closed) before they go. */
    atexit(rn_fuzz_teardown);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int which = data[0] & 1;
    struct rn_buf req = RN_BUF_INIT, out = RN_BUF_INIT;
    if ((data[0] & 2) && size >= 2) {
        size_t e = data[1] % RN_FUZZ_N_ENDPOINTS;
        which = rn_fuzz_endpoints[e].serve;
        rn_buf_printf(&req,
                      "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      rn_fuzz_endpoints[e].method, rn_fuzz_endpoints[e].path, size - 2);
        rn_buf_append(&req, data + 2, size - 2);
    } else {
        rn_buf_append(&req, data + 1, size - 1);
    }
    if (rn_fuzz_exchange(which, req.data ? req.data : "", req.len, &out))
        rn_fuzz_fail("the server neither answered nor closed within 8 s of the client's end");
    if (out.len && (out.len < 12 || memcmp(out.data, "HTTP/1.1 ", 9) != 0))
        rn_fuzz_fail("the answer does not start with a status line");
    if ((data[0] & 2) && size >= 2 && out.len == 0)
        rn_fuzz_fail("a complete request got no answer");
    rn_buf_free(&req);
    rn_buf_free(&out);
    return 0;
}
