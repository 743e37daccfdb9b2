/*
 * test_serve.c — operators serving HTTP routes on the job's serving server
 * (serve:): a test operator at parallelism 2 registers routes in open();
 * requests go over loopback on kept-alive connections (several requests, and
 * pipelined ones, on one connection), from concurrent clients, round robin
 * over the subtasks; unknown paths get a JSON 404, a wrong method 405, a
 * malformed request 400; the status page's /api/v1/job lists the serving
 * address and routes. Every wait has a deadline.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rn_job.h"
#include "rn_operator.h"
#include "rn_test.h"
#include "rn_test_job.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A record type with a key field, so the operator can be keyed (parallel). */
static const char *const blob_keys[] = {"k", NULL};
static uint64_t blob_key_of(const struct rn_record *r, int f)
{
    (void)r, (void)f;
    return 0;
}
static void blob_json(const struct rn_record *r, struct rn_buf *out)
{
    (void)r;
    rn_buf_puts(out, "{}");
}
static const struct rn_type blob_type = {
    .name = "blob",
    .description = "test record",
    .write_json = blob_json,
    .key_fields = blob_keys,
    .key_of = blob_key_of,
};
static const struct rn_type *const blob_types[] = {&blob_type, NULL};

/* ---- the test operator ------------------------------------------------------------ */

struct echo_local {
    uint32_t subtask;
    atomic_ulong calls; /* handlers run on serving threads */
};
static atomic_int routes_up;
static atomic_ulong calls_by_subtask[2];

static void echo_handler(void *ud, const struct rn_http_request *req, struct rn_http_response *res)
{
    struct echo_local *l = ud;
    atomic_fetch_add(&l->calls, 1);
    atomic_fetch_add(&calls_by_subtask[l->subtask & 1], 1);
    res->content_type = "application/json";
    rn_buf_printf(&res->body, "{\"subtask\":%u,\"method\":\"%s\",\"path\":\"%s\",\"len\":%zu}",
                  l->subtask, req->method, req->path, req->body_len);
}

static int echo_open(struct rn_op *op)
{
    struct echo_local *l = calloc(1, sizeof *l);
    l->subtask = rn_op_subtask(op);
    rn_op_set_local(op, l);
    int rc = rn_op_route(op, "GET", "/echo", echo_handler, l);
    if (rc == 0) rc = rn_op_route(op, "POST", "/echo", echo_handler, l);
    if (rc == 0) atomic_fetch_add(&routes_up, 1);
    return rc;
}
static int echo_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)op;
    for (uint32_t i = 0; i < in->n; i++) rn_emit_copy(out, 0, &in->recs[i]);
    return 0;
}
static void echo_close(struct rn_op *op)
{
    free(rn_op_local(op));
}
static const struct rn_config_key no_keys[] = {RN_CONFIG_END};
static const struct rn_port_decl any_out[] = {{NULL, "*", "its input"}};
static const struct rn_op_type echo_op = {
    RN_OP_TYPE_HEAD, .name = "echo_server", .description = "test operator",
    .kind = RN_KIND_OPERATOR, .flags = RN_OP_KEYED, .config = no_keys, .ctx_size = 1,
    .in_type = "blob", .outputs = any_out, .n_outputs = 1, .default_key = "k", .open = echo_open,
    .process = echo_process, .close = echo_close,
};

static int idle_poll(struct rn_op *op, struct rn_emitter *out)
{
    (void)op, (void)out;
    return RN_POLL_IDLE;
}
static const struct rn_port_decl raw_out[] = {{NULL, "blob", "nothing"}};
static const struct rn_op_type idle_source = {
    RN_OP_TYPE_HEAD, .name = "idle_src", .description = "test source", .kind = RN_KIND_SOURCE,
    .config = no_keys, .ctx_size = 1, .outputs = raw_out, .n_outputs = 1, .poll = idle_poll,
    .types = blob_types,
};

/* ---- a small blocking client ------------------------------------------------------ */

static int dial(const char *addr)
{
    char host[64];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    if (!colon) return -1;
    *colon = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        s += w, n -= (size_t)w;
    }
    return 0;
}

/* Per connection: bytes read but not consumed yet. */
struct conn {
    int fd;
    char buf[65536];
    size_t len;
};

/* Reads one response: status, whether it says keep-alive, and the body
 * (NUL-terminated, up to bodycap). Returns the status or -1 (closed, timeout). */
static int read_response(struct conn *c, int *keep, char *body, size_t bodycap)
{
    int64_t deadline = mono_ms() + 5000;
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) {
            size_t head = (size_t)(end - c->buf) + 4;
            char *cl = memmem(c->buf, head, "Content-Length: ", 16);
            size_t blen = cl ? (size_t)atol(cl + 16) : 0;
            if (c->len >= head + blen) {
                int status = atoi(c->buf + 9);
                if (keep) *keep = memmem(c->buf, head, "Connection: keep-alive", 22) != NULL;
                if (body) {
                    size_t k = blen < bodycap - 1 ? blen : bodycap - 1;
                    memcpy(body, c->buf + head, k);
                    body[k] = 0;
                }
                memmove(c->buf, c->buf + head + blen, c->len - head - blen);
                c->len -= head + blen;
                return status;
            }
        }
        int left = (int)(deadline - mono_ms());
        struct pollfd p = {c->fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0) return -1;
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r <= 0) return -1;
        c->len += (size_t)r;
    }
}

static char serve_addr[128], status_addr[128];

static int get(const char *addr, const char *path, char *body, size_t cap)
{
    struct conn *c = calloc(1, sizeof *c);
    c->fd = dial(addr);
    int st = -1;
    if (c->fd >= 0) {
        char req[512];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
        if (send_all(c->fd, req, strlen(req)) == 0) st = read_response(c, NULL, body, cap);
        close(c->fd);
    }
    free(c);
    return st;
}

/* ---- concurrent clients -------------------------------------------------------------- */

#define CLIENTS 8
#define PER_CLIENT 25

static atomic_int concurrent_ok;

static void *client_main(void *arg)
{
    (void)arg;
    struct conn *c = calloc(1, sizeof *c);
    c->fd = dial(serve_addr);
    for (int i = 0; i < PER_CLIENT && c->fd >= 0; i++) {
        char req[256], body[256];
        snprintf(req, sizeof req,
                 "POST /echo/%d HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", i);
        if (send_all(c->fd, req, strlen(req))) break;
        int keep = 0;
        if (read_response(c, &keep, body, sizeof body) == 200 && keep && strstr(body, "\"len\":5"))
            atomic_fetch_add(&concurrent_ok, 1);
    }
    if (c->fd >= 0) close(c->fd);
    free(c);
    return NULL;
}

/* ---- the test --------------------------------------------------------------------------- */

static char dir[] = "/tmp/rn_test_serve_XXXXXX";

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    rn_op_register(&idle_source);
    rn_op_register(&echo_op);
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs("job: serve\n"
          "parallelism: 2\n"
          "http: { listen: 127.0.0.1:0 }\n"
          "serve: { listen: 127.0.0.1:0, threads: 2, idle_timeout: 4s }\n"
          "sources: { in: { type: idle_src } }\n"
          "operators:\n"
          "  - { id: model, op: echo_server, from: in }\n"
          "sinks: { out: { type: discard, from: model } }\n",
          f);
    fclose(f);
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *j = rn_job_load(path, &opt, err, sizeof err);
    if (!j) fprintf(stderr, "%s\n", err);
    CHECK(j != NULL);
    if (!j) return rn_test_summary();
    struct runner r = {.job = j};
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &r);
    int64_t deadline = mono_ms() + 20000;
    while ((atomic_load(&routes_up) < 2 || !rn_job_http_address(j)[0]) && mono_ms() < deadline)
        usleep(1000);
    CHECK_EQ_INT(atomic_load(&routes_up), 2);
    snprintf(serve_addr, sizeof serve_addr, "%s", rn_job_serve_address(j));
    snprintf(status_addr, sizeof status_addr, "%s", rn_job_http_address(j));
    CHECK(serve_addr[0] != 0);
    CHECK(strcmp(serve_addr, status_addr) != 0);

    /* Several requests on one kept-alive connection. */
    struct conn *c = calloc(1, sizeof *c);
    c->fd = dial(serve_addr);
    CHECK(c->fd >= 0);
    int ok = 0;
    for (int i = 0; i < 5; i++) {
        const char *req = "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
        send_all(c->fd, req, strlen(req));
        char body[256];
        int keep = 0;
        int st = read_response(c, &keep, body, sizeof body);
        if (st == 200 && keep && strstr(body, "\"path\":\"/echo\"")) ok++;
    }
    CHECK_EQ_INT(ok, 5);
    /* Pipelined: three requests in one write, three responses in order. */
    const char *three = "GET /echo/a HTTP/1.1\r\nHost: x\r\n\r\n"
                        "POST /echo/b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                        "GET /echo/c HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(c->fd, three, strlen(three));
    char b1[256] = "", b2[256] = "", b3[256] = "";
    CHECK_EQ_INT(read_response(c, NULL, b1, sizeof b1), 200);
    CHECK_EQ_INT(read_response(c, NULL, b2, sizeof b2), 200);
    CHECK_EQ_INT(read_response(c, NULL, b3, sizeof b3), 200);
    CHECK_STR_CONTAINS(b1, "/echo/a");
    CHECK_STR_CONTAINS(b2, "\"len\":3");
    CHECK_STR_CONTAINS(b3, "/echo/c");
    /* An unknown path on the same connection: JSON 404, still kept alive. */
    const char *nf = "GET /nothing/here HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(c->fd, nf, strlen(nf));
    char body[512];
    int keep = 0;
    CHECK_EQ_INT(read_response(c, &keep, body, sizeof body), 404);
    CHECK_STR_CONTAINS(body, "\"error\":\"no route\"");
    CHECK(keep);
    /* "/echoes" is not under "/echo". */
    CHECK_EQ_INT(get(serve_addr, "/echoes", body, sizeof body), 404);
    /* A wrong method: 405. */
    const char *del = "DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(c->fd, del, strlen(del));
    CHECK_EQ_INT(read_response(c, NULL, body, sizeof body), 405);
    /* A malformed request: 400, and the connection closes. */
    const char *bad = "THIS IS NOT HTTP\r\n\r\n";
    send_all(c->fd, bad, strlen(bad));
    CHECK_EQ_INT(read_response(c, &keep, body, sizeof body), 400);
    CHECK(!keep);
    close(c->fd);
    free(c);

    /* Concurrent clients, each on its own kept-alive connection. */
    pthread_t cl[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) pthread_create(&cl[i], NULL, client_main, NULL);
    for (int i = 0; i < CLIENTS; i++) pthread_join(cl[i], NULL);
    CHECK_EQ_INT(atomic_load(&concurrent_ok), CLIENTS * PER_CLIENT);
    /* Round robin: both subtasks answered. */
    CHECK(atomic_load(&calls_by_subtask[0]) > 0);
    CHECK(atomic_load(&calls_by_subtask[1]) > 0);

    /* serve.idle_timeout reaches the servers: a kept-alive connection left
     * silent after its answer is closed about 4 s later (the default is 10 s). */
    c = calloc(1, sizeof *c);
    c->fd = dial(serve_addr);
    CHECK(c->fd >= 0);
    const char *one = "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(c->fd, one, strlen(one));
    CHECK_EQ_INT(read_response(c, &keep, body, sizeof body), 200);
    CHECK(keep);
    int64_t t0 = mono_ms();
    struct pollfd pfd = {c->fd, POLLIN, 0};
    CHECK_EQ_INT(poll(&pfd, 1, 9000), 1);
    char byte;
    CHECK_EQ_INT(recv(c->fd, &byte, 1, 0), 0); /* closed without a word */
    int64_t idle_ms = mono_ms() - t0;
    CHECK(idle_ms >= 3500 && idle_ms < 9000);
    close(c->fd);
    free(c);

    /* The status page lists the serving server and its routes. */
    static char st[65536];
    CHECK_EQ_INT(get(status_addr, "/api/v1/job", st, sizeof st), 200);
    char want[200];
    snprintf(want, sizeof want, "\"serve\":{\"address\":\"%s\",\"threads\":2", serve_addr);
    CHECK_STR_CONTAINS(st, want);
    /* The connection figures: the idle connection above timed out, none was
     * refused or evicted. */
    CHECK_STR_CONTAINS(st, "\"evicted\":0,\"refused\":0,\"timed_out\":1},\"routes\":[");
    CHECK_STR_CONTAINS(st, "{\"method\":\"POST\",\"prefix\":\"/echo\",\"operator\":\"model\"");

    rn_job_stop(j);
    pthread_join(th, NULL);
    CHECK_EQ_INT(r.rc, 0);
    rn_job_destroy(j);

    /* rn_op_route without a serve: section fails the job with a message. */
    f = fopen(path, "w");
    fputs("job: noserve\n"
          "sources: { in: { type: idle_src } }\n"
          "operators:\n"
          "  - { id: model, op: echo_server, from: in }\n"
          "sinks: { out: { type: discard, from: model } }\n",
          f);
    fclose(f);
    j = rn_job_load(path, &opt, err, sizeof err);
    CHECK(j != NULL);
    if (j) {
        CHECK(rn_job_run(j, err, sizeof err) < 0);
        CHECK_STR_CONTAINS(err, "no 'serve:' section");
        rn_job_destroy(j);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
