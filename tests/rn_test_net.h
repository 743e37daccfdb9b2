/*
 * rn_test_net.h — a blocking-with-deadlines loopback client for the HTTP
 * tests: connect, send all, read to EOF.
 */
#ifndef RUNNEL_RN_TEST_NET_H
#define RUNNEL_RN_TEST_NET_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rn_http_int.h"

static inline int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int port_of(const struct rn_http_server *s)
{
    const char *colon = strrchr(rn_http_address(s), ':');
    return colon ? atoi(colon + 1) : -1;
}

/* A non-blocking socket connected to 127.0.0.1:port, or -1. */
static inline int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Sends all n bytes before the deadline; 0, or -1 on error or timeout. */
static inline int send_all(int fd, const void *p, size_t n, int64_t deadline)
{
    const char *q = p;
    while (n > 0) {
        ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
        if (w > 0) {
            q += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) return -1;
        struct pollfd pfd = {fd, POLLOUT, 0};
        int64_t left = deadline - now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) return -1;
    }
    return 0;
}

/* Reads until EOF or the deadline into buf (NUL-terminated, cap includes the
 * NUL). Returns the length read, or -1 if the deadline passed first. A reset
 * counts as the end of the data. */
static inline ssize_t read_all(int fd, char *buf, size_t cap, int64_t deadline)
{
    size_t len = 0;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = deadline - now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
            buf[len] = '\0';
            return -1;
        }
        char scratch[4096];
        char *dst = len + 1 < cap ? buf + len : scratch;
        size_t room = len + 1 < cap ? cap - 1 - len : sizeof scratch;
        ssize_t r = recv(fd, dst, room, 0);
        if (r > 0) {
            if (dst == buf + len) len += (size_t)r;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        buf[len] = '\0';
        return (ssize_t)len; /* EOF or reset */
    }
}

/* One request to addr ("host:port") with rn_http_call: the status (-1 when it
 * failed, with the reason on stderr) and the body into out (NUL-terminated,
 * cut at cap - 1). */
static inline int http_call(const char *addr, const char *method, const char *path,
                            const char *body, int timeout_ms, char *out, size_t cap)
{
    struct rn_buf b = RN_BUF_INIT;
    char err[256];
    int status = -1;
    if (rn_http_call(addr, method, path, body, timeout_ms, &status, &b, err, sizeof err)) {
        fprintf(stderr, "%s %s: %s\n", method, path, err);
        status = -1;
    }
    size_t n = b.len < cap - 1 ? b.len : cap - 1;
    if (b.data) memcpy(out, b.data, n);
    out[n] = 0;
    rn_buf_free(&b);
    return status;
}

#endif
