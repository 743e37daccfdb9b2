/*
 * rn_sim_http.c — the simulator's HTTP/1.1 client (rn_sim_http.h).
 *
 * One non-blocking TCP socket, kept open between requests (HTTP/1.1 keep-alive).  A request
 * is written whole (headers with Content-Length, then the body) and the response read until
 * http-parser reports the message complete; every wait is a poll() bounded by the request's
 * deadline.  The connection is closed after a response that does not allow keep-alive, after
 * any error, and when the server closes it; the next request opens a new one.  A request on
 * a reused connection that sees the connection closed before any response byte is sent again
 * once on a fresh connection: that is the server having closed an idle connection, not an
 * answer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "rn_sim_http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>

struct rn_sim_http {
    char host[256], port[16];
    int timeout_ms;
    int fd;        /* -1 while not connected */
    unsigned uses; /* requests sent on the current connection */
    unsigned long connections;
    struct rn_buf req;
    /* The response being parsed. */
    http_parser parser;
    struct rn_buf *body;
    int complete;
};

static int64_t rn_sim_http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct rn_sim_http *rn_sim_http_create(const char *url, int timeout_ms, char *err, size_t errlen)
{
    static const char scheme[] = "http://";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        snprintf(err, errlen, "'%s': not an http:// URL", url);
        return NULL;
    }
    const char *h = url + sizeof(scheme) - 1, *end = h + strcspn(h, "/");
    if (*end == '/' && end[1] != '\0') {
        snprintf(err, errlen, "'%s': give only http://HOST:PORT (the path is /api/v1/recommend)",
                 url);
        return NULL;
    }
    const char *colon = NULL;
    if (*h == '[') { /* [IPv6]:port */
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb) {
            snprintf(err, errlen, "'%s': unterminated [IPv6 address]", url);
            return NULL;
        }
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
    }
    const char *hend = colon ? colon : end;
    if (*h == '[') h++, hend--;
    size_t hlen = (size_t)(hend - h), plen = colon ? (size_t)(end - colon - 1) : 2;
    if (hlen == 0 || hlen >= 256 || plen == 0 || plen >= 16) {
        snprintf(err, errlen, "'%s': want http://HOST:PORT", url);
        return NULL;
    }
    struct rn_sim_http *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(c->host, h, hlen);
    if (colon)
        memcpy(c->port, colon + 1, plen);
    else
        memcpy(c->port, "80", 3);
    char *pend;
    long port = strtol(c->port, &pend, 10);
    if (*pend || port < 1 || port > 65535) {
        snprintf(err, errlen, "'%s': bad port '%s'", url, c->port);
        free(c);
        return NULL;
    }
    c->timeout_ms = timeout_ms;
    c->fd = -1;
    return c;
}

static void rn_sim_http_close(struct rn_sim_http *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->uses = 0;
}

void rn_sim_http_destroy(struct rn_sim_http *c)
{
    if (!c) return;
    rn_sim_http_close(c);
    rn_buf_free(&c->req);
    free(c);
}

unsigned long rn_sim_http_connections(const struct rn_sim_http *c)
{
    return c->connections;
}

/* Waits until fd is ready for events or the deadline passes.  Returns 0, or RN_EIO with a
 * message on a timeout. */
static int rn_sim_http_wait(struct rn_sim_http *c, short events, int64_t deadline, const char *what,
                            char *err, size_t errlen)
{
    for (;;) {
        int64_t left = deadline - rn_sim_http_now_ms();
        if (left <= 0) {
            snprintf(err, errlen, "http://%s:%s: no %s within %d ms", c->host, c->port, what,
                     c->timeout_ms);
            return RN_EIO;
        }
        struct pollfd p = {.fd = c->fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return RN_EIO;
        }
    }
}

/* Opens a connection to the first address that accepts one before the deadline. */
static int rn_sim_http_connect(struct rn_sim_http *c, int64_t deadline, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(c->host, c->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "http://%s:%s: cannot resolve: %s", c->host, c->port,
                 gai_strerror(rc));
        return RN_EIO;
    }
    int last = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        c->fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (c->fd < 0) {
            last = errno;
            continue;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->fd, a->ai_addr, a->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS &&
            rn_sim_http_wait(c, POLLOUT, deadline, "connection", err, errlen) == 0) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) break;
            last = soerr ? soerr : errno;
        } else {
            last = errno == EINPROGRESS ? ETIMEDOUT : errno;
        }
        rn_sim_http_close(c);
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        snprintf(err, errlen, "http://%s:%s: cannot connect: %s", c->host, c->port,
                 strerror(last ? last : ECONNREFUSED));
        return RN_EIO;
    }
    c->connections++;
    return 0;
}

static int rn_sim_http_on_body(http_parser *p, const char *at, size_t len)
{
    struct rn_sim_http *c = p->data;
    rn_buf_append(c->body, at, len);
    return 0;
}

static int rn_sim_http_on_complete(http_parser *p)
{
    struct rn_sim_http *c = p->data;
    c->complete = 1;
    http_parser_pause(p, 1); /* anything after the response is not ours */
    return 0;
}

/* One try: sends the request in c->req and reads the response.  Returns 0, RN_EIO with a
 * message, or 1 when a reused connection was found closed before any response byte (the
 * caller may retry on a new one). */
static int rn_sim_http_try(struct rn_sim_http *c, int64_t deadline, int *status,
                           struct rn_buf *resp, char *err, size_t errlen)
{
    int rc;
    int reused = c->fd >= 0;
    if (!reused && (rc = rn_sim_http_connect(c, deadline, err, errlen)) < 0) return rc;
    c->uses++;

    for (size_t off = 0; off < c->req.len;) {
        ssize_t n = send(c->fd, c->req.data + off, c->req.len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if ((rc = rn_sim_http_wait(c, POLLOUT, deadline, "room to send", err, errlen)) < 0)
                goto fail;
            continue;
        }
        if (reused && off == 0 && (errno == EPIPE || errno == ECONNRESET)) {
            rn_sim_http_close(c);
            return 1;
        }
        snprintf(err, errlen, "http://%s:%s: send: %s", c->host, c->port, strerror(errno));
        rc = RN_EIO;
        goto fail;
    }

    static const http_parser_settings settings = {.on_body = rn_sim_http_on_body,
                                                  .on_message_complete = rn_sim_http_on_complete};
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    c->body = resp;
    c->complete = 0;
    rn_buf_reset(resp);
    size_t got = 0;
    char buf[16384];
    while (!c->complete) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if ((rc = rn_sim_http_wait(c, POLLIN, deadline, "response", err, errlen)) < 0)
                goto fail;
            continue;
        }
        if (n < 0 && !(reused && got == 0 && errno == ECONNRESET)) {
            snprintf(err, errlen, "http://%s:%s: recv: %s", c->host, c->port, strerror(errno));
            rc = RN_EIO;
            goto fail;
        }
        if (n <= 0) { /* the server closed the connection (or reset an idle one) */
            if (reused && got == 0) {
                rn_sim_http_close(c);
                return 1;
            }
            http_parser_execute(&c->parser, &settings, NULL,
                                0); /* EOF ends a close-delimited body */
            if (c->complete) break;
            snprintf(err, errlen, "http://%s:%s: connection closed %s", c->host, c->port,
                     got ? "in the middle of the response" : "without a response");
            rc = RN_EIO;
            goto fail;
        }
        got += (size_t)n;
        size_t used = http_parser_execute(&c->parser, &settings, buf, (size_t)n);
        enum http_errno he = HTTP_PARSER_ERRNO(&c->parser);
        if (he != HPE_OK && !(he == HPE_PAUSED && c->complete)) {
            snprintf(err, errlen, "http://%s:%s: malformed response: %s", c->host, c->port,
                     http_errno_description(he));
            rc = RN_EIO;
            goto fail;
        }
        if (c->complete && used < (size_t)n) {
            /* Bytes after the response we asked for: the connection is out of step. */
            snprintf(err, errlen, "http://%s:%s: %zu unexpected bytes after the response", c->host,
                     c->port, (size_t)n - used);
            rc = RN_EIO;
            goto fail;
        }
    }
    *status = c->parser.status_code;
    if (!http_should_keep_alive(&c->parser)) rn_sim_http_close(c);
    return 0;

fail:
    rn_sim_http_close(c);
    return rc;
}

int rn_sim_http_post(struct rn_sim_http *c, const char *path, const char *body, size_t len,
                     int *status, struct rn_buf *resp, char *err, size_t errlen)
{
    int64_t deadline = rn_sim_http_now_ms() + c->timeout_ms;
    rn_buf_reset(&c->req);
    const char *colon = strchr(c->host, ':'); /* an IPv6 address goes in brackets */
    rn_buf_printf(&c->req,
                  "POST %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nContent-Type: application/json\r\n"
                  "Accept: application/json\r\nContent-Length: %zu\r\n\r\n",
                  path, colon ? "[" : "", c->host, colon ? "]" : "", c->port, len);
    rn_buf_append(&c->req, body, len);
    int rc = rn_sim_http_try(c, deadline, status, resp, err, errlen);
    if (rc == 1) rc = rn_sim_http_try(c, deadline, status, resp, err, errlen);
    if (rc == 1) {
        snprintf(err, errlen, "http://%s:%s: connection closed without a response", c->host,
                 c->port);
        rc = RN_EIO;
    }
    return rc;
}
