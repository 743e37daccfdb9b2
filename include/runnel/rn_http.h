/*
 * rn_http.h — what a request handler sees of HTTP: one parsed request in, one
 * response to fill. Operators serve requests with these through rn_op_route
 * (rn_operator.h) on the job's serving server; the server itself (libuv and
 * Debian's http-parser, its limits, keep-alive and client call) is the
 * runtime's (runtime/rn_http_int.h).
 */
#ifndef RUNNEL_RN_HTTP_H
#define RUNNEL_RN_HTTP_H

#include "rn_common.h"

/* A complete request, borrowed for the handler's call: every pointer is the
 * server's and invalid once the handler returns. */
struct rn_http_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* without the query string */
    const char *query;  /* after '?', or "" */
    const char *body;
    size_t body_len;
    const char *authorization; /* the Authorization header's value, or "" */
};

struct rn_http_response {
    int status;               /* default 200 */
    const char *content_type; /* default "text/plain; charset=utf-8" (static string) */
    struct rn_buf body;
};

/* Fills res for req: appends to res->body, which starts empty and which the
 * server owns (it sends and frees it). Runs on a server thread and must not
 * block. */
typedef void (*rn_http_handler)(void *ud, const struct rn_http_request *req,
                                struct rn_http_response *res);

#endif
