/*
 * rn_sim_http.h — the simulator's small HTTP/1.1 client: one keep-alive connection to one
 * server, POST with Content-Length, responses parsed with http-parser.  Used by the `http://`
 * policy of rn_sim to ask a runnel job's serving endpoint for each page's slate.
 *
 * Not thread-safe: one client belongs to the simulator's one thread.
 */
#ifndef RUNNEL_RN_SIM_HTTP_H
#define RUNNEL_RN_SIM_HTTP_H

#include <stddef.h>

#include "rn_common.h"

struct rn_sim_http;

/* Makes a client for url ("http://HOST[:PORT][/]", port 80 by default); connects lazily, on
 * the first request.  timeout_ms bounds each request, from connecting to the response's last
 * byte.  Returns NULL with a message in err on a bad URL.  The caller owns the client. */
struct rn_sim_http *rn_sim_http_create(const char *url, int timeout_ms, char *err, size_t errlen);
void rn_sim_http_destroy(struct rn_sim_http *c);

/* POSTs body (len bytes, borrowed) as application/json to path on the client's server and
 * reads the response: its status into *status and its body into resp (reset first; owned by
 * the caller).  Keeps the connection open when the server allows it; reconnects when the
 * server closed it, and retries once when a reused connection turns out to be closed before
 * any byte of the response came.  Returns 0, or a negative RN_E* code with a message in err
 * (connection refused, timeout, a malformed response). */
int rn_sim_http_post(struct rn_sim_http *c, const char *path, const char *body, size_t len,
                     int *status, struct rn_buf *resp, char *err, size_t errlen);

/* How many connections the client has opened so far (for tests and the summary). */
unsigned long rn_sim_http_connections(const struct rn_sim_http *c);

#endif
