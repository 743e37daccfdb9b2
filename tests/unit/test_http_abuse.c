/*
 * test_http_abuse.c — the HTTP server's limits against clients that try to
 * tie it up, over loopback.
 *
 *   cap        a server capped at 4 connections: a fifth client is served
 *              and the oldest idle connection is the one closed for it; with
 *              four busy slow clients the fifth gets a 503 at once
 *   timeouts   a slow-drip head is closed after header_timeout, a silent
 *              kept-alive connection after idle_timeout, without an answer
 *   pipeline   a burst of pipelined requests is answered in order; a client
 *              that pipelines without reading stalls on its own TCP window
 *              (the server stops reading) instead of growing the server
 *   eviction   300 idle connections against a cap of 128: exactly the
 *              oldest 172 are closed, the newest 128 kept
 *   all at once  hundreds of idle connections, slow-drip heads, pipelined
 *              bursts and oversized requests (431, 413) at the same time: a
 *              fresh client is still answered within 1 s, every time
 *
 * Every wait is a poll() with a deadline. The figures are printed for
 * docs/performance.md.
 */
#include "rn_test.h"

#include "rn_http_int.h"
#include "rn_test_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void handler(void *ud, const struct rn_http_request *req, struct rn_http_response *res)
{
    (void)ud;
    if (strcmp(req->path, "/hello") == 0) {
        rn_buf_puts(&res->body, "hello, world\n");
    } else if (strcmp(req->path, "/echo") == 0) {
        rn_buf_printf(&res->body, "%s ?%s %zu\n", req->path, req->query, req->body_len);
    } else {
        res->status = 404;
        rn_buf_puts(&res->body, "no such page\n");
    }
}

/* ---- socket helpers ------------------------------------------------------ */

/* 1 if the peer has closed fd (EOF or reset) without sending anything, 0 if
 * it is still open, -1 if data came. Does not wait. */
static int closed_silently(int fd)
{
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
    if (r == 0) return 1;
    if (r < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : 1;
    return -1;
}

/* One request on a fresh connection ("Connection: close"); returns the
 * status, or -1, and the milliseconds it took in *ms. */
static int fresh_get(int port, const char *path, int64_t *ms)
{
    int64_t t0 = now_ms();
    char req[256], buf[4096];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    int status = -1;
    int fd = connect_to(port);
    if (fd >= 0) {
        int64_t deadline = t0 + 5000;
        if (send_all(fd, req, strlen(req), deadline) == 0 &&
            read_all(fd, buf, sizeof buf, deadline) > 0 &&
            sscanf(buf, "HTTP/1.1 %d ", &status) != 1)
            status = -1;
        close(fd);
    }
    *ms = now_ms() - t0;
    return status;
}

static struct rn_http_server *start(const struct rn_http_opts *o)
{
    char err[256];
    struct rn_http_server *s = rn_http_start_opts("127.0.0.1:0", handler, NULL, o, err, sizeof err);
    if (!s) fprintf(stderr, "rn_http_start_opts: %s\n", err);
    CHECK(s != NULL);
    return s;
}

/* ---- the connection cap -------------------------------------------------- */

static void test_cap(void)
{
    struct rn_http_opts o = {.keep_alive = 1, .max_conns = 4};
    struct rn_http_server *s = start(&o);
    if (!s) return;
    int port = port_of(s);
    int64_t ms;

    /* Four idle connections fill the server; each new client closes the
     * oldest idle one and is served. */
    int idle[5];
    for (int i = 0; i < 4; i++) {
        idle[i] = connect_to(port);
        CHECK(idle[i] >= 0);
    }
    CHECK_EQ_INT(fresh_get(port, "/hello", &ms), 200);
    struct pollfd pfd = {idle[0], POLLIN, 0};
    CHECK_EQ_INT(poll(&pfd, 1, 2000), 1);
    CHECK_EQ_INT(closed_silently(idle[0]), 1); /* the oldest went */
    for (int i = 1; i < 4; i++)
        CHECK_EQ_INT(closed_silently(idle[i]), 0);
    /* Full again (the served client has gone): the next oldest goes. */
    idle[4] = connect_to(port);
    CHECK(idle[4] >= 0);
    struct rn_http_stats st;
    for (int64_t until = now_ms() + 5000; now_ms() < until; usleep(1000)) {
        rn_http_stats(s, &st);
        if (st.open == 4) break;
    }
    CHECK_EQ_INT(fresh_get(port, "/hello", &ms), 200);
    pfd.fd = idle[1];
    CHECK_EQ_INT(poll(&pfd, 1, 2000), 1);
    CHECK_EQ_INT(closed_silently(idle[1]), 1);
    for (int i = 2; i < 5; i++)
        CHECK_EQ_INT(closed_silently(idle[i]), 0);
    for (int i = 0; i < 5; i++)
        close(idle[i]);

    /* Four connections busy with half a request each: no idle one to close,
     * so a fifth is refused with a 503 at once. */
    int busy[4];
    for (int i = 0; i < 4; i++) {
        busy[i] = connect_to(port);
        CHECK(busy[i] >= 0);
        if (busy[i] >= 0) CHECK_EQ_INT(send_all(busy[i], "GET /hel", 8, now_ms() + 2000), 0);
    }
    /* Once the server has read the four (and closed the idle ones above). */
    for (int64_t until = now_ms() + 5000; now_ms() < until; usleep(1000)) {
        rn_http_stats(s, &st);
        if (st.open == 4 && st.idle == 0) break;
    }
    rn_http_stats(s, &st);
    CHECK_EQ_INT(st.open, 4);
    CHECK_EQ_INT(st.idle, 0);
    CHECK_EQ_INT(fresh_get(port, "/hello", &ms), 503);
    CHECK(ms < 1000);
    int fd = connect_to(port);
    CHECK(fd >= 0);
    if (fd >= 0) {
        char buf[1024];
        ssize_t n = read_all(fd, buf, sizeof buf, now_ms() + 2000);
        CHECK(n > 0);
        CHECK_STR_CONTAINS(buf, "HTTP/1.1 503 Service Unavailable\r\n");
        CHECK_STR_CONTAINS(buf, "Retry-After: 1\r\n");
        char *body = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "Content-Length: ");
        CHECK(body && cl);
        if (body && cl) CHECK_EQ_INT(strtol(cl + 16, NULL, 10), (long)strlen(body + 4));
        close(fd);
    }
    /* Once a busy one finishes, new clients are served again. */
    if (busy[0] >= 0) {
        CHECK_EQ_INT(
            send_all(busy[0], "lo HTTP/1.1\r\nConnection: close\r\n\r\n", 35, now_ms() + 2000), 0);
        char buf[1024];
        CHECK(read_all(busy[0], buf, sizeof buf, now_ms() + 2000) > 0);
        CHECK_STR_CONTAINS(buf, "HTTP/1.1 200 OK\r\n");
    }
    CHECK_EQ_INT(fresh_get(port, "/hello", &ms), 200);
    rn_http_stats(s, &st);
    CHECK(st.evicted >= 2); /* more if a busy one came before an idle one had gone */
    CHECK_EQ_INT(st.refused, 2);
    for (int i = 0; i < 4; i++)
        if (busy[i] >= 0) close(busy[i]);
    rn_http_stop(s);
}

/* ---- timeouts ------------------------------------------------------------ */

static void test_timeouts(void)
{
    struct rn_http_opts o = {
        .keep_alive = 1, .header_timeout_ms = 600, .idle_timeout_ms = 400, .body_timeout_ms = 600};
    struct rn_http_server *s = start(&o);
    if (!s) return;
    int port = port_of(s);

    /* A head dripped a byte every 50 ms never completes: the connection is
     * closed about header_timeout after the accept, whatever the dripping. */
    int64_t t0 = now_ms();
    int drip = connect_to(port);
    CHECK(drip >= 0);
    const char *head = "GET /hello HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int closed = 0;
    for (size_t i = 0; drip >= 0 && now_ms() - t0 < 5000; i++) {
        if (send(drip, head + i % strlen(head), 1, MSG_NOSIGNAL) < 0) {
            closed = 1;
            break;
        }
        struct pollfd pfd = {drip, POLLIN, 0};
        if (poll(&pfd, 1, 50) == 1) {
            closed = closed_silently(drip) == 1;
            break;
        }
    }
    int64_t took = now_ms() - t0;
    CHECK(closed);
    CHECK(took >= 500 && took < 6000);
    printf("slow-drip head closed after %lld ms (header_timeout 600 ms)\n", (long long)took);
    if (drip >= 0) close(drip);

    /* A body that stops coming: closed body_timeout after the head. */
    int body = connect_to(port);
    CHECK(body >= 0);
    if (body >= 0) {
        const char *req = "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
        CHECK_EQ_INT(send_all(body, req, strlen(req), now_ms() + 2000), 0);
        t0 = now_ms();
        char buf[256];
        CHECK_EQ_INT(read_all(body, buf, sizeof buf, now_ms() + 5000), 0);
        took = now_ms() - t0;
        CHECK(took >= 500 && took < 6000);
        close(body);
    }

    /* Kept alive after an answer, then silent: closed after idle_timeout. */
    int ka = connect_to(port);
    CHECK(ka >= 0);
    if (ka >= 0) {
        const char *req = "GET /hello HTTP/1.1\r\n\r\n";
        CHECK_EQ_INT(send_all(ka, req, strlen(req), now_ms() + 2000), 0);
        char buf[1024];
        t0 = now_ms();
        ssize_t n = read_all(ka, buf, sizeof buf, now_ms() + 5000);
        took = now_ms() - t0;
        CHECK(n > 0);
        CHECK_STR_CONTAINS(buf, "Connection: keep-alive\r\n");
        CHECK(took >= 300 && took < 6000);
        close(ka);
    }
    rn_http_stop(s);
}

/* ---- pipelining ---------------------------------------------------------- */

/* Sends n pipelined GET /echo?i=<from+k> and checks the n answers arrive in
 * order; returns how many were right. */
static int pipelined_burst(int port, int from, int n)
{
    struct rn_buf req = RN_BUF_INIT, got = RN_BUF_INIT;
    for (int k = 0; k < n; k++)
        rn_buf_printf(&req, "GET /echo?i=%d HTTP/1.1\r\n\r\n", from + k);
    rn_buf_puts(&req, "GET /echo?last HTTP/1.1\r\nConnection: close\r\n\r\n");
    int ok = 0;
    int fd = connect_to(port);
    if (fd < 0) goto out;
    int64_t deadline = now_ms() + 10000;
    /* Send and read at once: the server may stop reading until the client
     * takes some answers. */
    size_t sent = 0;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN | (sent < req.len ? POLLOUT : 0), 0};
        int64_t left = deadline - now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) break;
        if ((pfd.revents & POLLOUT) && sent < req.len) {
            ssize_t w = send(fd, req.data + sent, req.len - sent, MSG_NOSIGNAL);
            if (w > 0) sent += (size_t)w;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[16384];
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r > 0)
                rn_buf_append(&got, buf, (size_t)r);
            else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                break;
        }
    }
    close(fd);
    rn_buf_putc(&got, '\0');
    const char *p = got.data;
    for (int k = 0; k < n; k++) {
        char want[64];
        snprintf(want, sizeof want, "\r\n\r\n/echo ?i=%d 0\n", from + k);
        const char *at = strstr(p, want);
        if (!at) break;
        ok++;
        p = at + strlen(want);
    }
out:
    rn_buf_free(&req);
    rn_buf_free(&got);
    return ok;
}

static void test_pipeline(void)
{
    struct rn_http_opts o = {.keep_alive = 1};
    struct rn_http_server *s = start(&o);
    if (!s) return;
    int port = port_of(s);

    /* 2000 requests in one burst (about 60 KiB): all answered, in order. */
    CHECK_EQ_INT(pipelined_burst(port, 0, 2000), 2000);

    /* Three pipelined requests and a half-close: three answers, then EOF. */
    int hc = connect_to(port);
    CHECK(hc >= 0);
    if (hc >= 0) {
        const char *three = "GET /echo?a HTTP/1.1\r\n\r\nGET /echo?b HTTP/1.1\r\n\r\n"
                            "GET /echo?c HTTP/1.1\r\n\r\n";
        CHECK_EQ_INT(send_all(hc, three, strlen(three), now_ms() + 2000), 0);
        shutdown(hc, SHUT_WR);
        char buf[4096];
        CHECK(read_all(hc, buf, sizeof buf, now_ms() + 5000) > 0);
        const char *a = strstr(buf, "/echo ?a 0\n");
        const char *b = a ? strstr(a, "/echo ?b 0\n") : NULL;
        CHECK(a && b && strstr(b, "/echo ?c 0\n"));
        close(hc);
    }

    /* A client that pipelines and never reads: once its answers fill the
     * socket buffers, the server stops reading and the client's sends stall.
     * Without that back-pressure it could push its whole 64 MiB. */
    int fd = connect_to(port);
    CHECK(fd >= 0);
    if (fd >= 0) {
        char chunk[8192];
        const char *one = "GET /echo?greedy HTTP/1.1\r\n\r\n";
        size_t ol = strlen(one), cl = 0;
        while (cl + ol <= sizeof chunk) {
            memcpy(chunk + cl, one, ol);
            cl += ol;
        }
        size_t sent = 0;
        int stalled = 0;
        while (sent < (64u << 20)) {
            ssize_t w = send(fd, chunk, cl, MSG_NOSIGNAL);
            if (w > 0) {
                sent += (size_t)w;
                continue;
            }
            if (w < 0 && errno != EAGAIN) break;
            struct pollfd pfd = {fd, POLLOUT, 0};
            if (poll(&pfd, 1, 500) == 0) {
                stalled = 1; /* no room for half a second */
                break;
            }
        }
        CHECK(stalled);
        printf("a client pipelining without reading stalled after %.1f MiB sent\n",
               (double)sent / (1 << 20));
        close(fd);
    }
    /* The server is fine. */
    int64_t ms;
    CHECK_EQ_INT(fresh_get(port, "/hello", &ms), 200);
    rn_http_stop(s);
}

/* ---- everything at once -------------------------------------------------- */

enum { N_IDLE = 300, N_DRIP = 24, N_FRESH = 40, MAX_CONNS = 128 };

static atomic_int stop_flag;
static int abuse_port;
static atomic_int n_431, n_413, n_bursts;

/* Drips one byte of a never-ending head into each of N_DRIP connections
 * every 20 ms, reopening any the server closes. */
static void *drip_thread(void *arg)
{
    (void)arg;
    int fds[N_DRIP];
    for (int i = 0; i < N_DRIP; i++)
        fds[i] = connect_to(abuse_port);
    const char *head = "GET /hello HTTP/1.1\r\nX-Slow: ";
    size_t pos[N_DRIP] = {0};
    while (!atomic_load(&stop_flag)) {
        for (int i = 0; i < N_DRIP; i++) {
            if (fds[i] < 0) continue;
            char c = pos[i] < strlen(head) ? head[pos[i]] : 'a';
            if (send(fds[i], &c, 1, MSG_NOSIGNAL) != 1 || closed_silently(fds[i])) {
                close(fds[i]);
                fds[i] = connect_to(abuse_port);
                pos[i] = 0;
                continue;
            }
            pos[i]++;
        }
        usleep(20000);
    }
    for (int i = 0; i < N_DRIP; i++)
        if (fds[i] >= 0) close(fds[i]);
    return NULL;
}

/* Oversized heads and bodies, one after the other. */
static void *oversize_thread(void *arg)
{
    (void)arg;
    struct rn_buf big = RN_BUF_INIT;
    rn_buf_puts(&big, "GET /hello HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 20 * 1024; i++)
        rn_buf_putc(&big, 'a');
    rn_buf_puts(&big, "\r\n\r\n");
    const char *huge = "POST /echo HTTP/1.1\r\nContent-Length: 104857600\r\n\r\n";
    for (int k = 0; !atomic_load(&stop_flag); k++) {
        int fd = connect_to(abuse_port);
        if (fd < 0) continue;
        char buf[1024];
        int64_t deadline = now_ms() + 5000;
        const char *req = k % 2 ? huge : big.data;
        size_t len = k % 2 ? strlen(huge) : big.len;
        if (send_all(fd, req, len, deadline) == 0 && read_all(fd, buf, sizeof buf, deadline) > 0) {
            if (strstr(buf, "HTTP/1.1 431 ")) atomic_fetch_add(&n_431, 1);
            if (strstr(buf, "HTTP/1.1 413 ")) atomic_fetch_add(&n_413, 1);
        }
        close(fd);
    }
    rn_buf_free(&big);
    return NULL;
}

/* Bursts of pipelined requests, read back and checked. */
static void *pipeline_thread(void *arg)
{
    (void)arg;
    for (int k = 0; !atomic_load(&stop_flag); k++)
        if (pipelined_burst(abuse_port, k * 500, 500) == 500) atomic_fetch_add(&n_bursts, 1);
    return NULL;
}

/* More idle connections than the cap: the server keeps the newest and
 * closes the others, oldest first. */
static void test_idle_eviction(void)
{
    struct rn_http_opts o = {.keep_alive = 1, .max_conns = MAX_CONNS};
    struct rn_http_server *s = start(&o);
    if (!s) return;
    int port = port_of(s);
    int idle[N_IDLE];
    for (int i = 0; i < N_IDLE; i++)
        idle[i] = connect_to(port);
    int gone = 0, kept = 0;
    for (int i = 0; i < N_IDLE; i++) {
        if (idle[i] < 0) continue;
        struct pollfd pfd = {idle[i], POLLIN, 0};
        if (i < N_IDLE - MAX_CONNS) {
            if (poll(&pfd, 1, 5000) == 1 && closed_silently(idle[i]) == 1) gone++;
        } else if (closed_silently(idle[i]) == 0) {
            kept++;
        }
    }
    struct rn_http_stats st;
    rn_http_stats(s, &st);
    printf("%d idle connections opened: the oldest %d closed, the newest %d kept (cap %d)\n",
           N_IDLE, gone, kept, MAX_CONNS);
    CHECK_EQ_INT(gone, N_IDLE - MAX_CONNS);
    CHECK_EQ_INT(kept, MAX_CONNS);
    CHECK_EQ_INT(st.evicted, N_IDLE - MAX_CONNS);
    CHECK_EQ_INT(st.open, MAX_CONNS);
    CHECK_EQ_INT(st.idle, MAX_CONNS);
    /* A fresh client is served, and the oldest kept one makes room for it. */
    int64_t ms;
    CHECK_EQ_INT(fresh_get(port, "/hello", &ms), 200);
    for (int i = 0; i < N_IDLE; i++)
        if (idle[i] >= 0) close(idle[i]);
    rn_http_stop(s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_all_at_once(void)
{
    struct rn_http_opts o = {.keep_alive = 1, .max_conns = MAX_CONNS, .header_timeout_ms = 3000};
    struct rn_http_server *s = start(&o);
    if (!s) return;
    abuse_port = port_of(s);

    /* More idle connections than the server may hold (the oldest are
     * closed for the newer ones, as test_idle_eviction checks). */
    int idle[N_IDLE];
    for (int i = 0; i < N_IDLE; i++)
        idle[i] = connect_to(abuse_port);
    struct rn_http_stats st;
    pthread_t th[4];
    CHECK_EQ_INT(pthread_create(&th[0], NULL, drip_thread, NULL), 0);
    CHECK_EQ_INT(pthread_create(&th[1], NULL, oversize_thread, NULL), 0);
    CHECK_EQ_INT(pthread_create(&th[2], NULL, pipeline_thread, NULL), 0);
    CHECK_EQ_INT(pthread_create(&th[3], NULL, pipeline_thread, NULL), 0);
    usleep(300000); /* let the abuse get going; the checks below do not wait on it */

    /* Fresh clients, one every 100 ms for 4 s (past the header timeout, so
     * the slow-drip connections are closed and reopened meanwhile). */
    int64_t lat[N_FRESH];
    int ok = 0;
    for (int i = 0; i < N_FRESH; i++) {
        if (fresh_get(abuse_port, "/hello", &lat[i]) == 200) ok++;
        usleep(100000);
    }
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);

    qsort(lat, N_FRESH, sizeof *lat, cmp_i64);
    printf("under abuse: %d/%d fresh clients served, latency median %lld ms, max %lld ms; "
           "%d pipelined bursts of 500 in order, %d x 431, %d x 413\n",
           ok, N_FRESH, (long long)lat[N_FRESH / 2], (long long)lat[N_FRESH - 1],
           atomic_load(&n_bursts), atomic_load(&n_431), atomic_load(&n_413));
    CHECK_EQ_INT(ok, N_FRESH);
    CHECK(lat[N_FRESH - 1] < 1000);
    CHECK(atomic_load(&n_bursts) > 0);
    CHECK(atomic_load(&n_431) > 0);
    CHECK(atomic_load(&n_413) > 0);

    rn_http_stats(s, &st);
    printf("evicted %llu, refused %llu, timed out %llu\n", (unsigned long long)st.evicted,
           (unsigned long long)st.refused, (unsigned long long)st.timed_out);
    CHECK(st.timed_out >= N_DRIP); /* the slow-drip heads, at least once each */
    for (int i = 0; i < N_IDLE; i++)
        if (idle[i] >= 0) close(idle[i]);
    rn_http_stop(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL);
    test_cap();
    test_timeouts();
    test_pipeline();
    test_idle_eviction();
    test_all_at_once();
    return rn_test_summary();
}
