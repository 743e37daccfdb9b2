/*
 * rn_serve.c — the serving server: HTTP routes that operator instances
 * register (rn_op_route), served apart from the status page.
 *
 * A job with `serve: { listen, threads }` runs `threads` rn_http servers on
 * one address, each its own libuv loop on its own thread, bound with
 * SO_REUSEPORT: the kernel spreads new connections over them, and a
 * connection (kept alive, HTTP/1.1) stays on the thread that accepted it.
 * We chose that over one accept loop handing sockets to workers because it
 * needs no hand-over queue and no cross-loop wake-ups, and the status
 * server's code serves as is. The cost: a connection waits behind a slow
 * handler on its own thread even when another thread is free, so handlers
 * should answer quickly (they must not block anyway).
 *
 * Routes. An instance registers (method, path prefix, handler, ud) from
 * open() on; a request goes to the route with the longest prefix that
 * matches the path at a '/' boundary ("/score" matches "/score" and
 * "/score/x", not "/scores") and whose method matches (NULL or "*": any).
 * The subtasks of one operator usually register the same route: requests
 * for it go round robin over them. No route: 404 with a JSON body; a path
 * that matches only with another method: 405.
 *
 * Threads and lifetime. The table is guarded by a reader-writer lock (writer
 * preferring): handlers run under the read lock, on serving threads, several
 * at once, so an operator's handler must be thread-safe with respect to its
 * own callbacks and to itself. An instance's routes are removed (write lock,
 * waiting for its handlers in flight) before its close() runs, so no handler
 * runs after close() begins.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_exec_int.h"
#include "rn_serve_int.h"

struct rn__route {
    char *method; /* NULL: any */
    char *prefix;
    size_t prefix_len;
    rn_http_handler handler;
    void *ud;
    const struct rn_instance *owner;
};

struct rn_serve {
    struct rn_http_server **servers;
    int n_servers;
    char address[128];
    pthread_rwlock_t mu; /* guards routes */
    struct rn__route *routes;
    int n_routes;
    _Atomic uint64_t rr;       /* round robin over equal routes */
    _Atomic uint64_t requests; /* figures for the status page */
    _Atomic uint64_t not_found;
};

static int rn__prefix_match(const struct rn__route *r, const char *path)
{
    if (strncmp(path, r->prefix, r->prefix_len) != 0) return 0;
    char next = path[r->prefix_len];
    return next == '\0' || next == '/' || (r->prefix_len && r->prefix[r->prefix_len - 1] == '/');
}

static int rn__method_match(const struct rn__route *r, const char *method)
{
    return !r->method || strcmp(r->method, method) == 0;
}

static void rn__json_error(struct rn_http_response *res, int status, const char *what,
                           const struct rn_http_request *req)
{
    res->status = status;
    res->content_type = "application/json";
    rn_buf_printf(&res->body, "{\"error\":\"%s\",\"method\":", what);
    rn_json_str(&res->body, req->method, strlen(req->method));
    rn_buf_puts(&res->body, ",\"path\":");
    rn_json_str(&res->body, req->path, strlen(req->path));
    rn_buf_puts(&res->body, "}\n");
}

/* Serving threads. */
static void rn__serve_handler(void *ud, const struct rn_http_request *req,
                              struct rn_http_response *res)
{
    struct rn_serve *sv = ud;
    atomic_fetch_add_explicit(&sv->requests, 1, memory_order_relaxed);
    pthread_rwlock_rdlock(&sv->mu);
    size_t best = 0;
    int n_best = 0, path_only = 0;
    for (int i = 0; i < sv->n_routes; i++) {
        const struct rn__route *r = &sv->routes[i];
        if (!rn__prefix_match(r, req->path)) continue;
        if (!rn__method_match(r, req->method)) {
            path_only = 1;
            continue;
        }
        if (n_best == 0 || r->prefix_len > best) {
            best = r->prefix_len;
            n_best = 1;
        } else if (r->prefix_len == best) {
            n_best++;
        }
    }
    if (n_best == 0) {
        pthread_rwlock_unlock(&sv->mu);
        atomic_fetch_add_explicit(&sv->not_found, 1, memory_order_relaxed);
        if (path_only)
            rn__json_error(res, 405, "method not allowed", req);
        else
            rn__json_error(res, 404, "no route", req);
        return;
    }
    int pick = (int)(atomic_fetch_add_explicit(&sv->rr, 1, memory_order_relaxed) %
                     (uint64_t)n_best);
    for (int i = 0; i < sv->n_routes; i++) {
        const struct rn__route *r = &sv->routes[i];
        if (r->prefix_len != best || !rn__prefix_match(r, req->path) ||
            !rn__method_match(r, req->method))
            continue;
        if (pick-- == 0) {
            r->handler(r->ud, req, res);
            break;
        }
    }
    pthread_rwlock_unlock(&sv->mu);
}

struct rn_serve *rn__serve_start(const char *listen, int threads, const struct rn_http_opts *http,
                                 char *errbuf, size_t errlen)
{
    struct rn_serve *sv = rn_xcalloc(1, sizeof *sv);
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&sv->mu, &a);
    pthread_rwlockattr_destroy(&a);
    sv->servers = rn_xcalloc((size_t)threads, sizeof *sv->servers);
    /* Keep-alive and a shared port whatever the caller's limits say. */
    struct rn_http_opts o = http ? *http : (struct rn_http_opts){0};
    o.keep_alive = 1;
    o.reuseport = 1;
    for (int i = 0; i < threads; i++) {
        /* Port 0 picks a port for the first; the others join it. */
        const char *at = i == 0 ? listen : sv->address;
        sv->servers[i] = rn_http_start_opts(at, rn__serve_handler, sv, &o, errbuf, errlen);
        if (!sv->servers[i]) goto fail;
        sv->n_servers++;
        if (i == 0)
            snprintf(sv->address, sizeof sv->address, "%s", rn_http_address(sv->servers[0]));
    }
    return sv;
fail:
    rn__serve_free(sv);
    return NULL;
}

void rn__serve_stop(struct rn_serve *sv)
{
    if (!sv) return;
    pthread_rwlock_wrlock(&sv->mu);
    int n = sv->n_servers;
    sv->n_servers = 0;
    pthread_rwlock_unlock(&sv->mu);
    for (int i = 0; i < n; i++) rn_http_stop(sv->servers[i]);
}

void rn__serve_free(struct rn_serve *sv)
{
    if (!sv) return;
    rn__serve_stop(sv);
    free(sv->servers);
    for (int i = 0; i < sv->n_routes; i++) {
        free(sv->routes[i].method);
        free(sv->routes[i].prefix);
    }
    free(sv->routes);
    pthread_rwlock_destroy(&sv->mu);
    free(sv);
}

const char *rn__serve_address(const struct rn_serve *sv)
{
    return sv ? sv->address : "";
}

void rn__serve_remove(struct rn_serve *sv, const struct rn_instance *owner)
{
    if (!sv) return;
    pthread_rwlock_wrlock(&sv->mu);
    int k = 0;
    for (int i = 0; i < sv->n_routes; i++) {
        if (sv->routes[i].owner == owner) {
            free(sv->routes[i].method);
            free(sv->routes[i].prefix);
        } else {
            sv->routes[k++] = sv->routes[i];
        }
    }
    sv->n_routes = k;
    pthread_rwlock_unlock(&sv->mu);
}

void rn__serve_render_json(struct rn_serve *sv, int threads, struct rn_buf *b)
{
    if (!sv) {
        rn_buf_puts(b, "null");
        return;
    }
    rn_buf_puts(b, "{\"address\":");
    rn_json_str(b, sv->address, strlen(sv->address));
    rn_buf_printf(b, ",\"threads\":%d,\"requests\":%llu,\"not_found\":%llu,",
                  threads, (unsigned long long)atomic_load(&sv->requests),
                  (unsigned long long)atomic_load(&sv->not_found));
    pthread_rwlock_rdlock(&sv->mu);
    /* Under the lock: rn__serve_stop empties n_servers under it before it
     * stops any server. */
    struct rn_http_stats sum = {0}, one;
    for (int i = 0; i < sv->n_servers; i++) {
        rn_http_stats(sv->servers[i], &one);
        sum.open += one.open;
        sum.idle += one.idle;
        sum.evicted += one.evicted;
        sum.refused += one.refused;
        sum.timed_out += one.timed_out;
    }
    rn_buf_printf(b,
                  "\"connections\":{\"open\":%llu,\"idle\":%llu,\"evicted\":%llu,"
                  "\"refused\":%llu,\"timed_out\":%llu},\"routes\":[",
                  (unsigned long long)sum.open, (unsigned long long)sum.idle,
                  (unsigned long long)sum.evicted, (unsigned long long)sum.refused,
                  (unsigned long long)sum.timed_out);
    for (int i = 0; i < sv->n_routes; i++) {
        const struct rn__route *r = &sv->routes[i];
        rn_buf_puts(b, i ? ",{\"method\":" : "{\"method\":");
        const char *m = r->method ? r->method : "*";
        rn_json_str(b, m, strlen(m));
        rn_buf_puts(b, ",\"prefix\":");
        rn_json_str(b, r->prefix, r->prefix_len);
        rn_buf_puts(b, ",\"operator\":");
        rn_json_str(b, r->owner->node->id, strlen(r->owner->node->id));
        rn_buf_printf(b, ",\"subtask\":%u}", r->owner->task->subtask);
    }
    pthread_rwlock_unlock(&sv->mu);
    rn_buf_puts(b, "]}");
}

int rn_op_serving(const struct rn_op *op)
{
    return op->inst->job->serve != NULL;
}

int rn_op_route(struct rn_op *op, const char *method, const char *path_prefix,
                rn_http_handler handler, void *ud)
{
    struct rn_instance *in = op->inst;
    struct rn_serve *sv = in->job->serve;
    if (!sv) {
        rn_op_errorf(op, "rn_op_route: the job has no 'serve:' section to serve '%s' on",
                     path_prefix ? path_prefix : "");
        return RN_EINVAL;
    }
    if (!handler || !path_prefix || path_prefix[0] != '/') {
        rn_op_errorf(op, "rn_op_route: a handler and a path prefix starting with '/' are needed");
        return RN_EINVAL;
    }
    struct rn__route r = {
        .method = method && strcmp(method, "*") != 0 ? rn_xstrdup(method) : NULL,
        .prefix = rn_xstrdup(path_prefix),
        .prefix_len = strlen(path_prefix),
        .handler = handler,
        .ud = ud,
        .owner = in,
    };
    /* "/score/" and "/score" are the same route. */
    while (r.prefix_len > 1 && r.prefix[r.prefix_len - 1] == '/') r.prefix[--r.prefix_len] = 0;
    pthread_rwlock_wrlock(&sv->mu);
    sv->routes = rn_xrealloc(sv->routes, sizeof *sv->routes * (size_t)(sv->n_routes + 1));
    sv->routes[sv->n_routes++] = r;
    pthread_rwlock_unlock(&sv->mu);
    return 0;
}
