/*
 * rn_http_int.h — a small HTTP/1.1 server on libuv with Debian's http-parser.
 *
 * It runs its own event loop on its own thread. Each complete request is
 * passed to a handler that fills a response (rn_http.h); the handler runs on
 * the server thread and must not block. With keep_alive a connection carries
 * several requests (HTTP/1.1 keep-alive, pipelining too). Requests that do not
 * parse, or whose head or body exceed the limits, get a 4xx and the connection
 * is closed; nothing a client sends can crash the process.
 */
#ifndef RUNNEL_RN_HTTP_INT_H
#define RUNNEL_RN_HTTP_INT_H

#include "rn_http.h"

#define RN_HTTP_MAX_HEAD (16 * 1024)
#define RN_HTTP_MAX_BODY (1024 * 1024)

struct rn_http_server;

/* Starts serving on "host:port" (port 0 picks a free one). Returns NULL with a
 * message on failure (bad address, port in use). One request per connection. */
struct rn_http_server *rn_http_start(const char *listen, rn_http_handler handler, void *ud,
                                     char *errbuf, size_t errlen);

struct rn_http_opts {
    int keep_alive; /* HTTP/1.1 keep-alive: several requests per connection */
    int reuseport;  /* SO_REUSEPORT: several servers may share one port */
};
/* The same with options (opts may be NULL: the defaults above, all off). */
struct rn_http_server *rn_http_start_opts(const char *listen, rn_http_handler handler, void *ud,
                                          const struct rn_http_opts *opts, char *errbuf,
                                          size_t errlen);
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
