/*
 * rn_http_int.h — a small HTTP/1.1 server on libuv with Debian's http-parser.
 *
 * It runs its own event loop on its own thread. Each complete request is
 * passed to a handler that fills a response (rn_http.h); the handler runs on
 * the server thread and must not block. With keep_alive a connection carries
 * several requests (HTTP/1.1 keep-alive, pipelining too). Requests that do not
 * parse, or whose head or body exceed the limits, get a 4xx and the connection
 * is closed; nothing a client sends can crash the process. Connections are
 * capped (the oldest idle one makes room for a new one) and every phase of a
 * connection has a timeout, so idle, slow or greedy clients cannot keep a
 * fresh one waiting; rn_http.c explains the design.
 */
#ifndef RUNNEL_RN_HTTP_INT_H
#define RUNNEL_RN_HTTP_INT_H

#include "rn_http.h"

#define RN_HTTP_MAX_HEAD (16 * 1024)
#define RN_HTTP_MAX_BODY (1024 * 1024)

struct rn_http_server;

/* Starts serving on "host:port" (port 0 picks a free one). Returns NULL with a
 * message on failure (bad address, port in use). One request per connection,
 * the default limits. */
struct rn_http_server *rn_http_start(const char *listen, rn_http_handler handler, void *ud,
                                     char *errbuf, size_t errlen);

/* Defaults of the limits in struct rn_http_opts. */
#define RN_HTTP_MAX_CONNS 1024
#define RN_HTTP_HEADER_TIMEOUT_MS 10000
#define RN_HTTP_BODY_TIMEOUT_MS 10000
#define RN_HTTP_IDLE_TIMEOUT_MS 10000
#define RN_HTTP_WRITE_TIMEOUT_MS 10000

struct rn_http_opts {
    int keep_alive; /* HTTP/1.1 keep-alive: several requests per connection */
    int reuseport;  /* SO_REUSEPORT: several servers may share one port */
    /* Limits; 0 (or less) means the default above. */
    int max_conns;         /* open connections; at the cap the oldest idle one is
                              closed for a new one, or the new one gets 503 */
    int header_timeout_ms; /* a request's head must be complete this long after it
                              starts (the accept, or its first byte on a kept-alive
                              connection) */
    int body_timeout_ms;   /* its body must be complete this long after the head */
    int idle_timeout_ms;   /* keep-alive: the next request must start within this */
    int write_timeout_ms;  /* the client must take a whole response within this */
};
/* The same with options (opts may be NULL: keep-alive and reuseport off, the
 * default limits). */
struct rn_http_server *rn_http_start_opts(const char *listen, rn_http_handler handler, void *ud,
                                          const struct rn_http_opts *opts, char *errbuf,
                                          size_t errlen);
/* Connection figures of one server. */
struct rn_http_stats {
    uint64_t open;      /* connections open now */
    uint64_t idle;      /* of those, the idle ones (no request in progress) */
    uint64_t evicted;   /* idle connections closed to make room for new ones */
    uint64_t refused;   /* new connections answered 503 because every one was busy */
    uint64_t timed_out; /* connections closed by a header, body, idle or write timeout */
};
/* Fills *out; any thread. Each figure is read on its own, not all at one instant. */
void rn_http_stats(const struct rn_http_server *s, struct rn_http_stats *out);
/* "host:port" actually bound. */
const char *rn_http_address(const struct rn_http_server *s);
/* Stops the loop, closes every connection, joins the thread, frees s. */
void rn_http_stop(struct rn_http_server *s);

/* A blocking client call (for the CLI): sends `method path` with an optional
 * body to "host:port", parses the response with http-parser, and returns 0
 * with *status and the body appended to `out`, or < 0 with a message. */
int rn_http_call(const char *addr, const char *method, const char *path, const char *body,
                 int timeout_ms, int *status, struct rn_buf *out, char *errbuf, size_t errlen);

/* The same, with "Authorization: Bearer <token>" when token is not NULL. */
int rn_http_call_auth(const char *addr, const char *method, const char *path, const char *body,
                      const char *token, int timeout_ms, int *status, struct rn_buf *out,
                      char *errbuf, size_t errlen);

#endif
