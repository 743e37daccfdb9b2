/*
 * test_http.c — the HTTP server against plain POSIX sockets.
 *
 * A server on 127.0.0.1:0 with a small handler (/hello, /echo, /big,
 * /bad-status, 404 otherwise) is driven by raw requests: good ones, garbage,
 * oversized heads and bodies, clients that vanish at every stage, many
 * sequential and concurrent clients, and clients that never finish. Every
 * wait is a poll() with a deadline; nothing sleeps.
 *
 * SIGPIPE keeps its default action on purpose: if the server ever wrote to a
 * reset socket without having SIGPIPE blocked, this process would die.
 */
#include "rn_test.h"

#include "rn_http_int.h"
#include "rn_test_net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <fcntl.h>

#define BIG_BODY (1024 * 1024)

static atomic_int handler_calls;

static void handler(void *ud, const struct rn_http_request *req, struct rn_http_response *res)
{
    (void)ud;
    atomic_fetch_add(&handler_calls, 1);
    if (strcmp(req->path, "/hello") == 0) {
        rn_buf_puts(&res->body, "hello, world\n");
    } else if (strcmp(req->path, "/echo") == 0) {
        res->content_type = "application/octet-stream";
        rn_buf_printf(&res->body, "%s %s ?%s %zu:", req->method, req->path, req->query,
                      req->body_len);
        if (req->body_len) rn_buf_append(&res->body, req->body, req->body_len);
    } else if (strcmp(req->path, "/big") == 0) {
        rn_buf_reserve(&res->body, BIG_BODY);
        memset(res->body.data, 'x', BIG_BODY);
        res->body.len = BIG_BODY;
    } else if (strcmp(req->path, "/bad-status") == 0) {
        res->status = 42;
        rn_buf_puts(&res->body, "never sent");
    } else {
        res->status = 404;
        rn_buf_printf(&res->body, "no such page: %s\n", req->path);
    }
}

/* ---- socket helpers (the rest are in rn_test_net.h) ------------------------ */

/* Waits until the peer closes fd; 1 if it did before the deadline. */
static int wait_closed(int fd, int64_t deadline)
{
    char buf[256];
    return read_all(fd, buf, sizeof buf, deadline) >= 0;
}

struct reply {
    int status;       /* -1 if no response came */
    long content_len; /* -1 if absent */
    const char *body; /* into the caller's buffer */
    size_t body_len;
};

static void parse_reply(char *buf, size_t len, struct reply *r)
{
    r->status = -1;
    r->content_len = -1;
    r->body = NULL;
    r->body_len = 0;
    if (sscanf(buf, "HTTP/1.1 %d ", &r->status) != 1) r->status = -1;
    char *end = strstr(buf, "\r\n\r\n");
    if (!end) return;
    const char *cl = strstr(buf, "\r\nContent-Length: ");
    if (cl && cl < end) r->content_len = strtol(cl + 18, NULL, 10);
    r->body = end + 4;
    r->body_len = len - (size_t)(end + 4 - buf);
}

/* Sends one raw request and reads the whole response into buf. */
static int roundtrip(int port, const char *req, size_t req_len, char *buf, size_t cap,
                     struct reply *r)
{
    int64_t deadline = now_ms() + 5000;
    buf[0] = '\0';
    parse_reply(buf, 0, r);
    int fd = connect_to(port);
    if (fd < 0) return -1;
    if (send_all(fd, req, req_len, deadline) < 0) {
        close(fd);
        return -1;
    }
    ssize_t n = read_all(fd, buf, cap, deadline);
    close(fd);
    if (n < 0) return -1;
    parse_reply(buf, (size_t)n, r);
    return r->status;
}

static int get(int port, const char *req, char *buf, size_t cap, struct reply *r)
{
    return roundtrip(port, req, strlen(req), buf, cap, r);
}

/* ---- tests --------------------------------------------------------------- */

static void test_start_errors(void)
{
    static const char *const bad[] = {
        "",           "127.0.0.1",    "127.0.0.1:",      "127.0.0.1:99999", "127.0.0.1:8x",
        ":8080",      "999.1.2.3:80", "no-such-host:80", "::1:80",          "[::1:80",
        "1.2.3.4:-1",
    };
    char err[256];
    for (size_t i = 0; i < RN_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        struct rn_http_server *s = rn_http_start(bad[i], handler, NULL, err, sizeof err);
        CHECK(s == NULL);
        CHECK_STR_CONTAINS(err, "http:");
        if (s) rn_http_stop(s);
    }
    CHECK(rn_http_start(NULL, handler, NULL, err, sizeof err) == NULL);
    CHECK(rn_http_start("127.0.0.1:0", NULL, NULL, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "handler");
    CHECK(rn_http_start("127.0.0.1:123456", handler, NULL, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "bad port");
    CHECK(rn_http_start("example:80", handler, NULL, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "not an IPv4 address");

    /* A port somebody else listens on. */
    struct rn_http_server *a = rn_http_start("127.0.0.1:0", handler, NULL, err, sizeof err);
    CHECK(a != NULL);
    if (!a) return;
    err[0] = '\0';
    struct rn_http_server *b = rn_http_start(rn_http_address(a), handler, NULL, err, sizeof err);
    CHECK(b == NULL);
    CHECK_STR_CONTAINS(err, "address already in use");
    CHECK_STR_CONTAINS(err, rn_http_address(a));
    if (b) rn_http_stop(b);
    rn_http_stop(a);
}

static void test_other_hosts(void)
{
    char err[256], buf[4096];
    struct reply r;
    struct rn_http_server *s = rn_http_start("localhost:0", handler, NULL, err, sizeof err);
    CHECK(s != NULL);
    if (s) {
        CHECK(strncmp(rn_http_address(s), "127.0.0.1:", 10) == 0);
        CHECK(port_of(s) > 0);
        CHECK_EQ_INT(get(port_of(s), "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof buf, &r),
                     200);
        rn_http_stop(s);
    }
    s = rn_http_start("0.0.0.0:0", handler, NULL, err, sizeof err);
    CHECK(s != NULL);
    if (s) {
        CHECK(strncmp(rn_http_address(s), "0.0.0.0:", 8) == 0);
        CHECK_EQ_INT(get(port_of(s), "GET /hello HTTP/1.0\r\n\r\n", buf, sizeof buf, &r), 200);
        rn_http_stop(s);
    }
}

static void test_requests(int port)
{
    char buf[8192];
    struct reply r;

    int calls = atomic_load(&handler_calls);
    CHECK_EQ_INT(get(port, "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n", buf, sizeof buf, &r),
                 200);
    CHECK_STR_CONTAINS(buf, "HTTP/1.1 200 OK\r\n");
    CHECK_STR_CONTAINS(buf, "\r\nContent-Type: text/plain; charset=utf-8\r\n");
    CHECK_STR_CONTAINS(buf, "\r\nConnection: close\r\n");
    CHECK_EQ_INT(r.content_len, 13);
    CHECK_EQ_INT(r.body_len, 13);
    CHECK(r.body && memcmp(r.body, "hello, world\n", 13) == 0);
    CHECK_EQ_INT(atomic_load(&handler_calls), calls + 1);

    /* The handler's status goes out with its reason phrase. */
    CHECK_EQ_INT(get(port, "GET /nope HTTP/1.1\r\n\r\n", buf, sizeof buf, &r), 404);
    CHECK_STR_CONTAINS(buf, "HTTP/1.1 404 Not Found\r\n");
    CHECK_STR_CONTAINS(r.body, "no such page: /nope");
    CHECK_EQ_INT(r.content_len, (long)r.body_len);

    /* Path and query are split; the body and the content type pass through. */
    CHECK_EQ_INT(get(port, "GET /echo?a=1&b=two HTTP/1.1\r\n\r\n", buf, sizeof buf, &r), 200);
    CHECK_STR_CONTAINS(r.body, "GET /echo ?a=1&b=two 0:");
    CHECK_STR_CONTAINS(buf, "Content-Type: application/octet-stream\r\n");
    const char post[] = "POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello\0body!";
    CHECK_EQ_INT(roundtrip(port, post, sizeof post - 1, buf, sizeof buf, &r), 200);
    CHECK_EQ_INT(r.body_len, strlen("POST /echo ? 11:") + 11);
    CHECK(r.body && memcmp(r.body, "POST /echo ? 11:hello\0body!", r.body_len) == 0);
    CHECK_EQ_INT(get(port,
                     "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
                     buf, sizeof buf, &r),
                 200);
    CHECK_STR_CONTAINS(r.body, "POST /echo ? 7:abcdefg");
    CHECK_EQ_INT(get(port, "GET http://example.com/echo?q HTTP/1.1\r\n\r\n", buf, sizeof buf, &r),
                 200);
    CHECK_STR_CONTAINS(r.body, "GET /echo ?q 0:");

    /* HEAD: the length of the body, but no body. */
    CHECK_EQ_INT(get(port, "HEAD /hello HTTP/1.1\r\n\r\n", buf, sizeof buf, &r), 200);
    CHECK_EQ_INT(r.content_len, 13);
    CHECK_EQ_INT(r.body_len, 0);

    /* A status no client could understand becomes a 500. */
    CHECK_EQ_INT(get(port, "GET /bad-status HTTP/1.1\r\n\r\n", buf, sizeof buf, &r), 500);
    CHECK(strstr(buf, "never sent") == NULL);

    /* A client that half-closes after its request still gets the answer. */
    int fd = connect_to(port);
    CHECK(fd >= 0);
    if (fd >= 0) {
        const char *req = "GET /hello HTTP/1.1\r\n\r\n";
        CHECK_EQ_INT(send_all(fd, req, strlen(req), now_ms() + 5000), 0);
        shutdown(fd, SHUT_WR);
        ssize_t n = read_all(fd, buf, sizeof buf, now_ms() + 5000);
        CHECK(n > 0);
        parse_reply(buf, n > 0 ? (size_t)n : 0, &r);
        CHECK_EQ_INT(r.status, 200);
        CHECK_EQ_INT(r.body_len, 13);
        close(fd);
    }
}

static void test_bad_requests(int port)
{
    char buf[8192];
    struct reply r;
    int calls = atomic_load(&handler_calls);

    CHECK_EQ_INT(get(port, "\x01\x02\x03 garbage \xff\xfe\r\n\r\n", buf, sizeof buf, &r), 400);
    CHECK_STR_CONTAINS(buf, "HTTP/1.1 400 Bad Request\r\n");
    CHECK_EQ_INT(r.content_len, (long)r.body_len);
    CHECK_EQ_INT(get(port, "GET /hello HTTP/1.1\r\nBad Header\r\n\r\n", buf, sizeof buf, &r), 400);
    CHECK_EQ_INT(get(port, "GET /hello HTTP/x.1\r\n\r\n", buf, sizeof buf, &r), 400);
    CHECK_EQ_INT(get(port,
                     "POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", buf,
                     sizeof buf, &r),
                 400);
    CHECK_EQ_INT(get(port, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", buf,
                     sizeof buf, &r),
                 400);
    CHECK_EQ_INT(
        get(port, "POST /echo HTTP/1.1\r\nContent-Length: zz\r\n\r\n", buf, sizeof buf, &r), 400);
    CHECK_EQ_INT(get(port, "CONNECT example.com:443 HTTP/1.1\r\n\r\n", buf, sizeof buf, &r), 405);

    /* A 20 KiB header. */
    struct rn_buf big = RN_BUF_INIT;
    rn_buf_puts(&big, "GET /hello HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 20 * 1024; i++)
        rn_buf_putc(&big, 'a');
    rn_buf_puts(&big, "\r\n\r\n");
    CHECK_EQ_INT(roundtrip(port, big.data, big.len, buf, sizeof buf, &r), 431);
    CHECK_STR_CONTAINS(buf, "HTTP/1.1 431 Request Header Fields Too Large\r\n");

    /* Many small headers add up just the same. */
    rn_buf_reset(&big);
    rn_buf_puts(&big, "GET /hello HTTP/1.1\r\n");
    for (int i = 0; i < 2000; i++)
        rn_buf_printf(&big, "X-H%d: v\r\n", i);
    rn_buf_puts(&big, "\r\n");
    CHECK_EQ_INT(roundtrip(port, big.data, big.len, buf, sizeof buf, &r), 431);

    /* An announced 2 MiB body is refused before any of it arrives. */
    CHECK_EQ_INT(
        get(port, "POST /echo HTTP/1.1\r\nContent-Length: 2097152\r\n\r\n", buf, sizeof buf, &r),
        413);
    CHECK_STR_CONTAINS(buf, "HTTP/1.1 413 Payload Too Large\r\n");

    /* A chunked body that grows past the limit, sent in full: the client
     * must still read the 413 rather than a reset. */
    rn_buf_reset(&big);
    rn_buf_puts(&big, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 20; i++) {
        rn_buf_printf(&big, "%x\r\n", 64 * 1024);
        size_t at = big.len;
        rn_buf_reserve(&big, 64 * 1024);
        memset(big.data + at, 'b', 64 * 1024);
        big.len += 64 * 1024;
        rn_buf_puts(&big, "\r\n");
    }
    rn_buf_puts(&big, "0\r\n\r\n");
    CHECK_EQ_INT(roundtrip(port, big.data, big.len, buf, sizeof buf, &r), 413);

    /* A body exactly at the limit is fine. */
    rn_buf_reset(&big);
    rn_buf_printf(&big, "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n", RN_HTTP_MAX_BODY);
    size_t at = big.len;
    rn_buf_reserve(&big, RN_HTTP_MAX_BODY);
    memset(big.data + at, 'c', RN_HTTP_MAX_BODY);
    big.len += RN_HTTP_MAX_BODY;
    char *large = malloc(2 * RN_HTTP_MAX_BODY);
    CHECK_EQ_INT(roundtrip(port, big.data, big.len, large, 2 * RN_HTTP_MAX_BODY, &r), 200);
    CHECK_EQ_INT(r.content_len, (long)strlen("POST /echo ? 1048576:") + RN_HTTP_MAX_BODY);
    CHECK_EQ_INT(r.body_len, (size_t)r.content_len);
    free(large);
    rn_buf_free(&big);

    /* Only the last request reached the handler. */
    CHECK_EQ_INT(atomic_load(&handler_calls), calls + 1);
}

static void test_vanishing_clients(int port)
{
    char buf[4096];
    struct reply r;

    /* Connects and closes at once. */
    for (int i = 0; i < 5; i++) {
        int fd = connect_to(port);
        CHECK(fd >= 0);
        if (fd >= 0) close(fd);
    }
    /* Closes halfway through the request line, and halfway through a body. */
    const char *partial[] = {"GET /hel", "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc"};
    for (size_t i = 0; i < RN_ARRAY_LEN(partial); i++) {
        int fd = connect_to(port);
        CHECK(fd >= 0);
        if (fd < 0) continue;
        CHECK_EQ_INT(send_all(fd, partial[i], strlen(partial[i]), now_ms() + 5000), 0);
        close(fd);
    }
    /* Resets the connection while a 1 MiB response is being written: the
     * server's write fails with EPIPE or ECONNRESET, never SIGPIPE. */
    for (int i = 0; i < 3; i++) {
        int fd = connect_to(port);
        CHECK(fd >= 0);
        if (fd < 0) continue;
        const char *req = "GET /big HTTP/1.1\r\n\r\n";
        CHECK_EQ_INT(send_all(fd, req, strlen(req), now_ms() + 5000), 0);
        struct pollfd pfd = {fd, POLLIN, 0};
        CHECK_EQ_INT(poll(&pfd, 1, 5000), 1);
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
    }
    /* Sends a request and closes without reading: the client's kernel
     * answers the response with a reset, and the server's next write fails
     * with EPIPE. That write would raise SIGPIPE had the server thread not
     * blocked it. */
    for (int i = 0; i < 3; i++) {
        int fd = connect_to(port);
        CHECK(fd >= 0);
        if (fd < 0) continue;
        const char *req = "GET /big HTTP/1.1\r\n\r\n";
        CHECK_EQ_INT(send_all(fd, req, strlen(req), now_ms() + 5000), 0);
        close(fd);
    }
    /* Sends a request and a reset before the server has answered. */
    for (int i = 0; i < 3; i++) {
        int fd = connect_to(port);
        CHECK(fd >= 0);
        if (fd < 0) continue;
        const char *req = "GET /big HTTP/1.1\r\n\r\n";
        CHECK_EQ_INT(send_all(fd, req, strlen(req), now_ms() + 5000), 0);
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
    }
    /* The server is still fine. */
    CHECK_EQ_INT(get(port, "GET /hello HTTP/1.1\r\n\r\n", buf, sizeof buf, &r), 200);
    CHECK_EQ_INT(r.body_len, 13);
}

static void test_sequential(int port)
{
    char buf[4096];
    struct reply r;
    int ok = 0;
    int calls = atomic_load(&handler_calls);
    for (int i = 0; i < 50; i++) {
        char req[128];
        snprintf(req, sizeof req, "GET /echo?i=%d HTTP/1.1\r\n\r\n", i);
        char want[64];
        snprintf(want, sizeof want, "GET /echo ?i=%d 0:", i);
        if (get(port, req, buf, sizeof buf, &r) == 200 && r.body && r.body_len == strlen(want) &&
            memcmp(r.body, want, r.body_len) == 0)
            ok++;
    }
    CHECK_EQ_INT(ok, 50);
    CHECK_EQ_INT(atomic_load(&handler_calls), calls + 50);
}

struct client_arg {
    int port;
    int ok;
};

static void *client_thread(void *p)
{
    struct client_arg *a = p;
    char buf[4096];
    struct reply r;
    for (int i = 0; i < 10; i++)
        if (get(a->port, "GET /hello HTTP/1.1\r\n\r\n", buf, sizeof buf, &r) == 200 &&
            r.body_len == 13)
            a->ok++;
    return NULL;
}

static void test_concurrent(int port)
{
    /* Eight clients on their own threads, ten requests each. */
    pthread_t th[8];
    struct client_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (struct client_arg){port, 0};
        CHECK_EQ_INT(pthread_create(&th[i], NULL, client_thread, &args[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
    }
    CHECK_EQ_INT(ok, 80);

    /* 200 connections open at once, each sending its request before any
     * response is read. */
    enum { N = 200 };
    int fds[N];
    int64_t deadline = now_ms() + 10000;
    for (int i = 0; i < N; i++) {
        fds[i] = connect_to(port);
        if (fds[i] >= 0) {
            char req[128];
            snprintf(req, sizeof req, "GET /echo?c=%d HTTP/1.1\r\n\r\n", i);
            if (send_all(fds[i], req, strlen(req), deadline) < 0) {
                close(fds[i]);
                fds[i] = -1;
            }
        }
    }
    ok = 0;
    for (int i = 0; i < N; i++) {
        if (fds[i] < 0) continue;
        char buf[1024], want[64];
        struct reply r;
        ssize_t n = read_all(fds[i], buf, sizeof buf, deadline);
        close(fds[i]);
        if (n < 0) continue;
        parse_reply(buf, (size_t)n, &r);
        snprintf(want, sizeof want, "GET /echo ?c=%d 0:", i);
        if (r.status == 200 && r.body && r.body_len == strlen(want) &&
            memcmp(r.body, want, r.body_len) == 0)
            ok++;
    }
    CHECK_EQ_INT(ok, N);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL);
    char err[256] = "";

    test_start_errors();
    test_other_hosts();

    struct rn_http_server *s = rn_http_start("127.0.0.1:0", handler, NULL, err, sizeof err);
    CHECK(s != NULL);
    if (!s) {
        fprintf(stderr, "rn_http_start: %s\n", err);
        return rn_test_summary();
    }
    int port = port_of(s);
    CHECK(port > 0);
    CHECK_STR_CONTAINS(rn_http_address(s), "127.0.0.1:");

    /* Two slow clients, opened first and checked last: one says nothing, one
     * trickles half a request. The server's 10 s request timeout closes
     * both while the other tests run. */
    int64_t idle_deadline = now_ms() + 20000;
    int idle = connect_to(port);
    int slow = connect_to(port);
    CHECK(idle >= 0 && slow >= 0);
    if (slow >= 0) CHECK_EQ_INT(send_all(slow, "GET /hello HT", 13, now_ms() + 5000), 0);

    test_requests(port);
    test_bad_requests(port);
    test_vanishing_clients(port);
    test_sequential(port);
    test_concurrent(port);

    if (idle >= 0) {
        CHECK(wait_closed(idle, idle_deadline));
        close(idle);
    }
    if (slow >= 0) {
        CHECK(wait_closed(slow, idle_deadline));
        close(slow);
    }

    /* Stop with a connection mid-request: it is closed and stop is prompt. */
    int open_fd = connect_to(port);
    CHECK(open_fd >= 0);
    if (open_fd >= 0) CHECK_EQ_INT(send_all(open_fd, "GET /he", 7, now_ms() + 5000), 0);
    char buf[256];
    struct reply r;
    CHECK_EQ_INT(get(port, "GET /hello HTTP/1.1\r\n\r\n", buf, sizeof buf, &r), 200);
    int64_t t0 = now_ms();
    rn_http_stop(s);
    int64_t took = now_ms() - t0;
    CHECK(took < 2000);
    if (open_fd >= 0) {
        CHECK(wait_closed(open_fd, now_ms() + 2000));
        close(open_fd);
    }
    /* Nobody listens any more. */
    int gone = connect_to(port);
    CHECK(gone < 0);
    if (gone >= 0) close(gone);

    return rn_test_summary();
}
