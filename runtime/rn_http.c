/*
 * rn_http.c — a small HTTP/1.1 server: libuv for the sockets, Debian's
 * http-parser 2.9 for the protocol.
 *
 * The server owns one libuv loop that runs on its own thread. rn_http_start
 * resolves and binds the listening socket on the caller's thread, so that
 * "address in use" and friends come back as a NULL and a message, and only
 * then starts the thread. Everything after that (accepting, parsing, calling
 * the handler, writing) happens on the server thread; the only thing another
 * thread ever does is rn_http_stop, which wakes the loop with a uv_async_t.
 *
 * By default one connection carries one request (the status server):
 *
 *   accept ──> READING ──(request complete)──> handler ──> WRITING
 *                 │ (malformed 400, head too big 431,                │
 *                 │  body too big 413: no handler call)──────────────┤
 *                 │                                      write done, FIN sent
 *                 │                                                  v
 *                 └──(EOF, reset, timeout)──> CLOSING <──(EOF)── LINGERING
 *
 * Every response says "Connection: close". After the response is written the
 * server half-closes the socket and keeps reading, discarding what arrives,
 * until the client closes too (or a short linger timer fires). Closing right
 * away would make the kernel answer unread request bytes (say, the rest of a
 * body we refused with 413) with a reset, and the client could lose the
 * response it has not read yet.
 *
 * Keep-alive (rn_http_opts.keep_alive, the serving server). After a response
 * to a request that allows it (HTTP/1.1 without "Connection: close", or 1.0
 * with "Connection: keep-alive"), the connection goes back to READING with a
 * fresh parser instead of half-closing. Error responses (400, 413, 431)
 * always close.
 *
 * Abuse. Each limit below is one a client could otherwise stretch to tie up
 * the server; together they keep a fresh client served however the others
 * behave (tests/unit/test_http_abuse.c puts them all on at once).
 *
 *   size      The head is counted in raw bytes as they are parsed (431 past
 *             max_head), the body as it arrives (413 past max_body, announced
 *             or chunked), so memory per connection is bounded by the two
 *             plus one response, however slowly the bytes come.
 *   time      One timer per connection, re-armed for each phase: the head
 *             must be complete within header_timeout of the request's start
 *             (the accept, or the first byte of a later request), the body
 *             within body_timeout of the head, the next request must start
 *             within idle_timeout on a kept-alive connection, and the client
 *             must take a response within write_timeout. A client that drips
 *             a header one byte at a time (slowloris) holds its connection
 *             for header_timeout at most. On expiry the connection is closed
 *             without an answer.
 *   count     At most max_conns connections are open. A connection counts as
 *             idle while it has no request in progress: accepted and silent,
 *             kept alive between requests, or lingering after its last
 *             response. Idle connections sit on a list in the order they
 *             became idle; when a new connection arrives at the cap, the
 *             oldest idle one is closed to make room (nginx reuses its
 *             "reusable" connections the same way). Only when every
 *             connection is busy mid-request is the new one refused, with a
 *             503 written straight to the socket and no state kept for it.
 *   pipeline  Requests sent before the previous response is out (pipelining)
 *             are answered one at a time, in order. Their bytes wait in
 *             `pending`; once RN__HTTP_PIPELINE_MAX bytes wait, the server
 *             stops reading the socket until the response is written, so the
 *             kernel's TCP window pushes back on the client instead of the
 *             server buffering without bound.
 *   write     One response at a time per connection, and no reading beyond
 *             the pipeline bound while it is unsent: a client that does not
 *             read its responses stalls only itself, and write_timeout ends
 *             it.
 *
 * Several threads (rn_http_opts.reuseport): each server is one loop on one
 * thread; several servers bound to the same address with SO_REUSEPORT share
 * its port, and the kernel spreads new connections over them. A connection
 * stays on the thread that accepted it; the limits apply to each server.
 *
 * Writes to a socket the peer has reset raise SIGPIPE on Linux; the server
 * thread starts with SIGPIPE (and the other asynchronous signals) blocked, so
 * such a write just fails with EPIPE and the process lives on.
 */
#include "rn_http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <uv.h>

/* After the response and our FIN, how long we wait for the client's FIN. */
#define RN__HTTP_LINGER_MS 2000
/* Pipelined bytes kept while a response is written; reading stops beyond. */
#define RN__HTTP_PIPELINE_MAX (64 * 1024)
#define RN__HTTP_BACKLOG 511
#define RN__HTTP_DEFAULT_TYPE "text/plain; charset=utf-8"

enum rn__http_state {
    RN__HTTP_READING,   /* parsing the request (idle until its first byte) */
    RN__HTTP_WRITING,   /* the response is queued on the socket */
    RN__HTTP_LINGERING, /* response sent and FIN sent; draining until the client closes */
    RN__HTTP_CLOSING,   /* both handles are closing; freed when both callbacks ran */
};

struct rn__http_conn;

struct rn_http_server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop_async;
    uv_thread_t thread;
    rn_http_handler handler;
    void *ud;
    struct rn_http_opts opts; /* every limit filled in (no zeros) */
    size_t nconns;            /* connections allocated and not yet freed; server thread only */
    size_t nlive;             /* of those, the ones not closing: what max_conns caps */
    /* Idle connections, oldest first (see "count" above); server thread only. */
    struct rn__http_conn *idle_first, *idle_last;
    /* rn_http_stats: written on the server thread, read on any. */
    atomic_uint_fast64_t st_open, st_idle, st_evicted, st_refused, st_timed_out;
    char address[64]; /* "host:port" bound; written before the thread starts */
    /* One read buffer for every connection: libuv on Unix hands each read to
     * the read callback before it allocates for the next one, and the
     * callback consumes the bytes fully, so the buffer is never shared by two
     * reads in flight. */
    char rbuf[64 * 1024];
};

struct rn__http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    struct rn_http_server *server;
    struct rn__http_conn *idle_prev, *idle_next; /* on server->idle_* while idle */
    http_parser parser;
    enum rn__http_state state;
    int handles_open;       /* of tcp and timer; the conn is freed when it drops to 0 */
    int idle;               /* on the server's idle list */
    int reading;            /* uv_read_start is in effect */
    int requests;           /* requests answered on this connection so far */
    int head_done;          /* on_headers_complete has run */
    int message_done;       /* on_message_complete has run */
    int peer_eof;           /* the client half-closed while we were writing */
    int head_request;       /* the request was HEAD: send headers only */
    int error_status;       /* 413 decided in a parser callback, else 0 */
    int keep;               /* keep the connection open after this response */
    struct rn_buf pending;  /* keep-alive: bytes received after the current request */
    size_t pending_off;     /* of those, the ones already parsed */
    size_t head_bytes;      /* raw bytes of the request head parsed so far */
    struct rn_buf url;      /* request target as received */
    struct rn_buf hfield;   /* the header name being received */
    struct rn_buf auth;     /* the Authorization header's value */
    int hstate;             /* 0: in a name, 1: in a value we keep, 2: in another value */
    struct rn_buf body;     /* request body, NUL-terminated before dispatch */
    struct rn_buf pq;       /* "path\0query\0" handed to the handler */
    struct rn_buf head_out; /* response status line and headers */
    struct rn_buf body_out; /* response body, taken from the handler */
};

/* ---- the idle list (server thread) -------------------------------------- */

/* Appends c (newest last). */
static void rn__idle_add(struct rn__http_conn *c)
{
    struct rn_http_server *s = c->server;
    assert(!c->idle);
    c->idle = 1;
    atomic_fetch_add_explicit(&s->st_idle, 1, memory_order_relaxed);
    c->idle_next = NULL;
    c->idle_prev = s->idle_last;
    if (s->idle_last)
        s->idle_last->idle_next = c;
    else
        s->idle_first = c;
    s->idle_last = c;
}

static void rn__idle_del(struct rn__http_conn *c)
{
    struct rn_http_server *s = c->server;
    if (!c->idle) return;
    c->idle = 0;
    atomic_fetch_sub_explicit(&s->st_idle, 1, memory_order_relaxed);
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        s->idle_first = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    else
        s->idle_last = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
}

/* ---- connections -------------------------------------------------------- */

static void rn__conn_closed(uv_handle_t *h)
{
    struct rn__http_conn *c = h->data;
    assert(c->state == RN__HTTP_CLOSING && c->handles_open > 0);
    if (--c->handles_open > 0) return;
    rn_buf_free(&c->url);
    rn_buf_free(&c->hfield);
    rn_buf_free(&c->auth);
    rn_buf_free(&c->body);
    rn_buf_free(&c->pq);
    rn_buf_free(&c->head_out);
    rn_buf_free(&c->body_out);
    rn_buf_free(&c->pending);
    c->server->nconns--;
    free(c);
}

/* Closes both handles of c and frees c once their callbacks have run; a
 * pending write or shutdown is cancelled first (its callback sees CLOSING). */
static void rn__conn_close(struct rn__http_conn *c)
{
    if (c->state == RN__HTTP_CLOSING) return;
    c->state = RN__HTTP_CLOSING;
    rn__idle_del(c);
    c->server->nlive--;
    atomic_store_explicit(&c->server->st_open, c->server->nlive, memory_order_relaxed);
    uv_close((uv_handle_t *)&c->tcp, rn__conn_closed);
    uv_close((uv_handle_t *)&c->timer, rn__conn_closed);
}

static void rn__on_timeout(uv_timer_t *t)
{
    struct rn__http_conn *c = t->data;
    if (c->state != RN__HTTP_LINGERING)
        atomic_fetch_add_explicit(&c->server->st_timed_out, 1, memory_order_relaxed);
    rn__conn_close(c);
}

/* (Re)arms c's one timer: the connection is closed ms from now. */
static void rn__conn_deadline(struct rn__http_conn *c, int ms)
{
    uv_timer_start(&c->timer, rn__on_timeout, (uint64_t)ms, 0);
}

static void rn__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void rn__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* Starts or stops reading c's socket (back-pressure on pipelined bytes). */
static void rn__conn_reading(struct rn__http_conn *c, int on)
{
    if (on == c->reading) return;
    if (on) {
        if (uv_read_start((uv_stream_t *)&c->tcp, rn__on_alloc, rn__on_read) < 0) {
            rn__conn_close(c);
            return;
        }
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    c->reading = on;
}

static void rn__on_shutdown(uv_shutdown_t *req, int status)
{
    struct rn__http_conn *c = req->data;
    if (c->state == RN__HTTP_CLOSING) return;
    if (status < 0 || c->peer_eof) {
        rn__conn_close(c);
        return;
    }
    /* Reading goes on: the client's EOF (or the timer) ends the linger. A
     * lingering connection has nothing more to say, so it is idle. */
    c->state = RN__HTTP_LINGERING;
    rn__idle_add(c);
    rn__conn_deadline(c, RN__HTTP_LINGER_MS);
    rn__conn_reading(c, 1);
}

static size_t rn__conn_parse(struct rn__http_conn *c, const char *p, size_t n);

/* Keep-alive: the response is out; read the next request on c, starting
 * with the pipelined bytes that are already there. */
static void rn__conn_next(struct rn__http_conn *c)
{
    struct rn_http_server *s = c->server;
    c->state = RN__HTTP_READING;
    c->head_done = c->message_done = c->head_request = c->error_status = 0;
    c->keep = 0;
    c->head_bytes = 0;
    rn_buf_reset(&c->url);
    rn_buf_reset(&c->hfield);
    rn_buf_reset(&c->auth);
    c->hstate = 0;
    rn_buf_reset(&c->body);
    rn_buf_reset(&c->body_out);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (c->pending_off < c->pending.len) {
        /* The next request has started: its head is due header_timeout from
         * now. Parsing may dispatch it; what follows it stays in pending. */
        rn__conn_deadline(c, s->opts.header_timeout_ms);
        c->pending_off +=
            rn__conn_parse(c, c->pending.data + c->pending_off, c->pending.len - c->pending_off);
        if (c->state != RN__HTTP_READING) return; /* answered (or failed) */
        /* A partial request: the parser took every byte. */
        assert(c->pending_off == c->pending.len);
    } else {
        rn__idle_add(c);
        rn__conn_deadline(c, s->opts.idle_timeout_ms);
    }
    rn_buf_reset(&c->pending);
    c->pending_off = 0;
    if (c->peer_eof) {
        rn__conn_close(c); /* nothing more will come */
        return;
    }
    rn__conn_reading(c, 1);
}

static void rn__on_written(uv_write_t *req, int status)
{
    struct rn__http_conn *c = req->data;
    if (c->state == RN__HTTP_CLOSING) return; /* cancelled by uv_close */
    if (status < 0) {
        rn__conn_close(c); /* the client went away (EPIPE, ECONNRESET) */
        return;
    }
    c->requests++;
    /* A client that pipelined and then half-closed still gets an answer to
     * every complete request it sent before its FIN. */
    if (c->keep && (!c->peer_eof || c->pending_off < c->pending.len)) {
        rn__conn_next(c);
        return;
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, rn__on_shutdown) < 0)
        rn__conn_close(c);
}

static const char *rn__reason(int status)
{
    const char *r = http_status_str((enum http_status)status);
    /* http-parser answers "<unknown>" for codes it has no name for. */
    return r[0] == '<' ? "Unknown" : r;
}

/* Queues the response on c and moves it to WRITING. Takes ownership of
 * *body (left empty); content_type is borrowed and must be a static string
 * or outlive the connection. */
static void rn__conn_respond(struct rn__http_conn *c, int status, const char *content_type,
                             struct rn_buf *body)
{
    assert(c->state == RN__HTTP_READING);
    rn_buf_free(&c->body_out); /* the previous response's, on a kept-alive connection */
    c->body_out = *body;
    *body = (struct rn_buf)RN_BUF_INIT;
    /* 204 and 304 responses carry neither a body nor a length (RFC 9110). */
    int bodyless = status == 204 || status == 304;
    rn_buf_reset(&c->head_out);
    rn_buf_printf(&c->head_out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", status,
                  rn__reason(status), content_type);
    if (!bodyless) rn_buf_printf(&c->head_out, "Content-Length: %zu\r\n", c->body_out.len);
    rn_buf_puts(&c->head_out, c->keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");

    uv_buf_t bufs[2];
    unsigned nbufs = 0;
    bufs[nbufs++] = uv_buf_init(c->head_out.data, (unsigned)c->head_out.len);
    if (!bodyless && !c->head_request && c->body_out.len > 0)
        bufs[nbufs++] = uv_buf_init(c->body_out.data, (unsigned)c->body_out.len);

    c->state = RN__HTTP_WRITING;
    rn__conn_deadline(c, c->server->opts.write_timeout_ms);
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, nbufs, rn__on_written) < 0)
        rn__conn_close(c);
}

/* Answers with a short text message, without calling the handler. */
static void rn__conn_fail(struct rn__http_conn *c, int status, const char *fmt, ...)
    RN_PRINTF(3, 4);
static void rn__conn_fail(struct rn__http_conn *c, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct rn_buf b = RN_BUF_INIT;
    rn_buf_printf(&b, "%d %s: %s\n", status, rn__reason(status), msg);
    c->keep = 0; /* the stream may be anywhere in a request: close it */
    rn__conn_respond(c, status, RN__HTTP_DEFAULT_TYPE, &b);
}

/* Runs the handler on the complete request in c and sends its response. The
 * handler borrows the request (all of it lives in c until the connection is
 * freed) only for the call; it appends to res->body, which starts empty and
 * which the server takes and frees once the response is sent. */
static void rn__conn_dispatch(struct rn__http_conn *c)
{
    struct rn_http_server *s = c->server;
    struct http_parser_url u;

    if (c->parser.method == HTTP_CONNECT) {
        rn__conn_fail(c, 405, "CONNECT is not supported");
        return;
    }
    http_parser_url_init(&u);
    if (c->url.len == 0 || http_parser_parse_url(c->url.data, c->url.len, 0, &u) != 0) {
        rn__conn_fail(c, 400, "invalid request target");
        return;
    }
    rn_buf_reset(&c->pq);
    if (u.field_set & (1u << UF_PATH))
        rn_buf_append(&c->pq, c->url.data + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    else
        rn_buf_putc(&c->pq, '/'); /* "http://host" means "http://host/" */
    rn_buf_putc(&c->pq, '\0');
    size_t query_off = c->pq.len;
    if (u.field_set & (1u << UF_QUERY))
        rn_buf_append(&c->pq, c->url.data + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    rn_buf_putc(&c->pq, '\0');
    rn_buf_putc(&c->body, '\0'); /* handlers may treat the body as a C string */
    rn_buf_putc(&c->auth, '\0');

    struct rn_http_request req = {
        .method = http_method_str((enum http_method)c->parser.method),
        .path = c->pq.data,
        .query = c->pq.data + query_off,
        .body = c->body.data,
        .body_len = c->body.len - 1,
        .authorization = c->auth.data,
    };
    struct rn_http_response res = {
        .status = 200,
        .content_type = RN__HTTP_DEFAULT_TYPE,
        .body = RN_BUF_INIT,
    };
    s->handler(s->ud, &req, &res);

    /* A final status is 200-599; anything else is a handler bug, reported to
     * the client rather than sent on as a broken status line. */
    if (res.status < 200 || res.status > 599) {
        rn_buf_free(&res.body);
        rn__conn_fail(c, 500, "the handler returned an invalid status");
        return;
    }
    const char *type = res.content_type;
    if (!type || !*type || strpbrk(type, "\r\n")) type = RN__HTTP_DEFAULT_TYPE;
    c->keep = s->opts.keep_alive && http_should_keep_alive(&c->parser);
    rn__conn_respond(c, res.status, type, &res.body);
}

/* ---- http-parser callbacks (server thread) ------------------------------ */

static int rn__on_url(http_parser *p, const char *at, size_t len)
{
    struct rn__http_conn *c = p->data;
    rn_buf_append(&c->url, at, len);
    return 0;
}

/* Header names arrive in pieces; only Authorization is kept (bounded by the
 * head limit, which counts every byte of the head). */
static int rn__on_header_field(http_parser *p, const char *at, size_t len)
{
    struct rn__http_conn *c = p->data;
    if (c->hstate != 0) rn_buf_reset(&c->hfield);
    c->hstate = 0;
    if (c->hfield.len < 64) rn_buf_append(&c->hfield, at, RN_MIN(len, 64 - c->hfield.len));
    return 0;
}

static int rn__on_header_value(http_parser *p, const char *at, size_t len)
{
    struct rn__http_conn *c = p->data;
    if (c->hstate == 0) {
        c->hstate = c->hfield.len == 13 && strncasecmp(c->hfield.data, "authorization", 13) == 0
                        ? 1
                        : 2;
        if (c->hstate == 1) rn_buf_reset(&c->auth); /* the last one counts */
    }
    if (c->hstate == 1) rn_buf_append(&c->auth, at, len);
    return 0;
}

static int rn__on_headers_complete(http_parser *p)
{
    struct rn__http_conn *c = p->data;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > RN_HTTP_MAX_BODY) {
        c->error_status = 413;
        return -1;
    }
    c->head_done = 1;
    c->head_request = p->method == HTTP_HEAD;
    /* Pausing makes http_parser_execute return here, so the caller learns
     * exactly how many bytes the head took. */
    http_parser_pause(p, 1);
    return 0;
}

static int rn__on_body(http_parser *p, const char *at, size_t len)
{
    struct rn__http_conn *c = p->data;
    /* Catches chunked bodies, whose size is not announced up front. */
    if (len > RN_HTTP_MAX_BODY - c->body.len) {
        c->error_status = 413;
        return -1;
    }
    rn_buf_append(&c->body, at, len);
    return 0;
}

static int rn__on_message_complete(http_parser *p)
{
    struct rn__http_conn *c = p->data;
    c->message_done = 1;
    /* Stop at the end of the request: what follows is the next request
     * (kept for keep-alive) or ignored. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings rn__settings = {
    .on_url = rn__on_url,
    .on_header_field = rn__on_header_field,
    .on_header_value = rn__on_header_value,
    .on_headers_complete = rn__on_headers_complete,
    .on_body = rn__on_body,
    .on_message_complete = rn__on_message_complete,
};

/* Feeds n received bytes to the parser; answers once the request is complete
 * or cannot become a valid one. The bytes are borrowed for the call. Returns
 * how many of them belong to the current request: fewer than n only when a
 * complete request was dispatched and more bytes follow it. */
static size_t rn__conn_parse(struct rn__http_conn *c, const char *p, size_t n)
{
    const char *start = p;
    while (n > 0) {
        int in_head = !c->head_done;
        size_t got = http_parser_execute(&c->parser, &rn__settings, p, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (in_head) c->head_bytes += got;

        if (c->error_status == 413) {
            rn__conn_fail(c, 413, "request body is larger than %d bytes", RN_HTTP_MAX_BODY);
            return (size_t)(p - start) + n;
        }
        if (c->head_bytes > RN_HTTP_MAX_HEAD || e == HPE_HEADER_OVERFLOW) {
            rn__conn_fail(c, 431, "request head is larger than %d bytes", RN_HTTP_MAX_HEAD);
            return (size_t)(p - start) + n;
        }
        if (e == HPE_PAUSED) {
            p += got;
            n -= got;
            if (c->message_done) {
                rn__conn_dispatch(c);
                return (size_t)(p - start);
            }
            /* The head is complete: the body is due body_timeout from now. */
            rn__conn_deadline(c, c->server->opts.body_timeout_ms);
            http_parser_pause(&c->parser, 0);
            continue;
        }
        if (e != HPE_OK) {
            rn__conn_fail(c, 400, "%s", http_errno_description(e));
            return (size_t)(p - start) + n;
        }
        if (c->parser.upgrade) {
            rn__conn_fail(c, 400, "protocol upgrades are not supported");
            return (size_t)(p - start) + n;
        }
        assert(got == n);
        p += got;
        n = 0;
    }
    return (size_t)(p - start);
}

/* ---- libuv callbacks (server thread) ------------------------------------ */

static void rn__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct rn__http_conn *c = h->data;
    RN_UNUSED(suggested);
    *buf = uv_buf_init(c->server->rbuf, sizeof c->server->rbuf);
}

static void rn__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct rn__http_conn *c = st->data;
    if (nread == 0 || c->state == RN__HTTP_CLOSING) return;
    if (nread < 0) {
        if (nread == UV_EOF && c->state == RN__HTTP_WRITING) {
            /* A half-close after the request is fine; finish the response. */
            c->peer_eof = 1;
            rn__conn_reading(c, 0);
            return;
        }
        rn__conn_close(c); /* gone mid-request, reset, or the linger is over */
        return;
    }
    size_t n = (size_t)nread;
    if (c->state == RN__HTTP_WRITING) {
        /* With keep-alive, the next requests, pipelined: kept until the
         * response is out, and no more read once enough wait (the client's
         * TCP window fills). */
        if (!c->keep) return; /* drained and dropped, as when lingering */
        if (c->pending_off > 0) {
            /* Move the unparsed rest to the front, so that pending stays
             * within the bound however long the client keeps pipelining. */
            memmove(c->pending.data, c->pending.data + c->pending_off,
                    c->pending.len - c->pending_off);
            c->pending.len -= c->pending_off;
            c->pending_off = 0;
        }
        rn_buf_append(&c->pending, buf->base, n);
        if (c->pending.len - c->pending_off >= RN__HTTP_PIPELINE_MAX) rn__conn_reading(c, 0);
        return;
    }
    if (c->state != RN__HTTP_READING) return; /* lingering: drained and dropped */
    assert(c->pending_off == c->pending.len);
    if (c->idle) {
        /* The first byte of a request. On a fresh connection the head has
         * been due since the accept; on a kept-alive one it is due from now. */
        rn__idle_del(c);
        if (c->requests > 0) rn__conn_deadline(c, c->server->opts.header_timeout_ms);
    }
    size_t used = rn__conn_parse(c, buf->base, n);
    if (used < n && c->state == RN__HTTP_WRITING && c->keep) {
        rn_buf_append(&c->pending, buf->base + used, n - used);
        if (c->pending.len - c->pending_off >= RN__HTTP_PIPELINE_MAX) rn__conn_reading(c, 0);
    }
}

/* Answers a connection the server has no room for with a 503 and closes it,
 * without reading its request: best effort, one non-blocking write. */
static void rn__conn_refuse(struct rn__http_conn *c)
{
    static const char msg[] =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 65\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
        "503 Service Unavailable: every connection is busy with a request\n";
    uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);
    uv_os_fd_t fd;
    /* Drop whatever request bytes are already there, so that closing sends a
     * FIN after the 503 rather than a reset that could overtake it. */
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
        char sink[4096];
        for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++) {
        }
    }
    (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    rn__conn_close(c);
}

static void rn__on_connection(uv_stream_t *listener, int status)
{
    struct rn_http_server *s = listener->data;
    if (status < 0) return; /* libuv retries; EMFILE is handled inside libuv */

    struct rn__http_conn *c = rn_xcalloc(1, sizeof *c);
    c->server = s;
    c->state = RN__HTTP_READING;
    /* uv_tcp_init creates no socket for AF_UNSPEC and cannot fail on Unix;
     * were it to, the pending connection would stay in the accept queue. */
    if (uv_tcp_init(&s->loop, &c->tcp) < 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    uv_timer_init(&s->loop, &c->timer); /* cannot fail on Unix */
    c->timer.data = c;
    c->handles_open = 2;
    s->nconns++;
    s->nlive++;
    atomic_store_explicit(&s->st_open, s->nlive, memory_order_relaxed);

    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        rn__conn_close(c);
        return;
    }
    /* At the cap the oldest idle connection makes room, or, when every one
     * is busy with a request, the newcomer is turned away. The figures are
     * settled before the socket closes, so a client that sees its connection
     * end reads stats that already count it. */
    struct rn__http_conn *evict = NULL;
    if (s->nlive > (size_t)s->opts.max_conns) {
        evict = s->idle_first;
        if (!evict) {
            atomic_fetch_add_explicit(&s->st_refused, 1, memory_order_relaxed);
            rn__conn_refuse(c);
            return;
        }
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    rn__idle_add(c);
    rn__conn_deadline(c, s->opts.header_timeout_ms);
    rn__conn_reading(c, 1);
    if (evict) {
        atomic_fetch_add_explicit(&s->st_evicted, 1, memory_order_relaxed);
        rn__conn_close(evict);
    }
}

static void rn__close_walk(uv_handle_t *h, void *arg)
{
    struct rn_http_server *s = arg;
    if (h == (uv_handle_t *)&s->listener || h == (uv_handle_t *)&s->stop_async) {
        if (!uv_is_closing(h)) uv_close(h, NULL);
        return;
    }
    rn__conn_close(h->data); /* every other handle is a connection's tcp or timer */
}

static void rn__on_stop(uv_async_t *a)
{
    struct rn_http_server *s = a->data;
    uv_walk(&s->loop, rn__close_walk, s);
}

static void rn__http_thread(void *arg)
{
    struct rn_http_server *s = arg;
    /* Returns once rn__on_stop has closed every handle. */
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

/* ---- the listen address ------------------------------------------------- */

/* Parses "host:port" (host an IPv4 address, "[IPv6]", or "localhost") into
 * *out. Returns 0, or RN_EINVAL with a message. No name lookups: they could
 * block, and a listen address names a local interface anyway. */
static int rn__parse_listen(const char *listen, struct sockaddr_storage *out, char *errbuf,
                            size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *hs, *he, *ps;

    if (!listen || !*listen) {
        rn_errf(errbuf, errlen,
                "http: empty listen address (expected host:port, "
                "e.g. 127.0.0.1:8081)");
        return RN_EINVAL;
    }
    if (listen[0] == '[') {
        hs = listen + 1;
        he = strchr(hs, ']');
        if (!he || he[1] != ':') {
            rn_errf(errbuf, errlen, "http: listen address '%s': expected [IPv6]:port", listen);
            return RN_EINVAL;
        }
        ps = he + 2;
    } else {
        hs = listen;
        he = strrchr(listen, ':');
        if (!he) {
            rn_errf(errbuf, errlen,
                    "http: listen address '%s' has no port (expected host:port, "
                    "e.g. 127.0.0.1:8081)",
                    listen);
            return RN_EINVAL;
        }
        if (memchr(hs, ':', (size_t)(he - hs))) {
            rn_errf(errbuf, errlen,
                    "http: listen address '%s': write an IPv6 host in brackets, "
                    "e.g. [::1]:8081",
                    listen);
            return RN_EINVAL;
        }
        ps = he + 1;
    }

    size_t plen = strlen(ps);
    long port = -1;
    if (plen >= 1 && plen <= 5 && strspn(ps, "0123456789") == plen) port = strtol(ps, NULL, 10);
    if (port < 0 || port > 65535) {
        rn_errf(errbuf, errlen, "http: listen address '%s': bad port '%s' (expected 0-65535)",
                listen, ps);
        return RN_EINVAL;
    }

    size_t hlen = (size_t)(he - hs);
    if (hlen == 0 || hlen >= sizeof host) {
        rn_errf(errbuf, errlen, "http: listen address '%s': %s host", listen,
                hlen ? "bad" : "missing");
        return RN_EINVAL;
    }
    memcpy(host, hs, hlen);
    host[hlen] = '\0';

    memset(out, 0, sizeof *out);
    int ok;
    if (listen[0] == '[')
        ok = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0;
    else if (strcmp(host, "localhost") == 0)
        ok = uv_ip4_addr("127.0.0.1", (int)port, (struct sockaddr_in *)out) == 0;
    else
        ok = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0;
    if (!ok) {
        rn_errf(errbuf, errlen,
                "http: listen address '%s': host '%s' is not an IPv4 address, "
                "[IPv6] address or 'localhost'",
                listen, host);
        return RN_EINVAL;
    }
    return 0;
}

/* Writes the bound "host:port" of the listener into s->address. */
static int rn__bound_address(struct rn_http_server *s)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof ss;
    char ip[INET6_ADDRSTRLEN];
    int r = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    if (r < 0) return r;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        if ((r = uv_ip6_name(a, ip, sizeof ip)) < 0) return r;
        snprintf(s->address, sizeof s->address, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        if ((r = uv_ip4_name(a, ip, sizeof ip)) < 0) return r;
        snprintf(s->address, sizeof s->address, "%s:%d", ip, ntohs(a->sin_port));
    }
    return 0;
}

/* ---- public API --------------------------------------------------------- */

struct rn_http_server *rn_http_start(const char *listen, rn_http_handler handler, void *ud,
                                     char *errbuf, size_t errlen)
{
    return rn_http_start_opts(listen, handler, ud, NULL, errbuf, errlen);
}

/* A listening socket with SO_REUSEPORT, bound to addr, handed to libuv (1.44
 * has no flag for it). */
static int rn__bind_reuseport(uv_tcp_t *t, const struct sockaddr_storage *addr)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return uv_translate_sys_error(errno);
    int one = 1, r = 0;
    socklen_t len = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (const struct sockaddr *)addr, len) < 0) {
        r = uv_translate_sys_error(errno);
        close(fd);
        return r;
    }
    r = uv_tcp_open(t, fd);
    if (r < 0) close(fd);
    return r;
}

/* Called on any thread. listen and opts are borrowed; handler and ud are
 * kept until rn_http_stop and used only on the server thread. */
struct rn_http_server *rn_http_start_opts(const char *listen, rn_http_handler handler, void *ud,
                                          const struct rn_http_opts *opts, char *errbuf,
                                          size_t errlen)
{
    struct sockaddr_storage addr;
    sigset_t all, old;
    int r;

    if (!handler) {
        rn_errf(errbuf, errlen, "http: no request handler given");
        return NULL;
    }
    if (rn__parse_listen(listen, &addr, errbuf, errlen) < 0) return NULL;

    struct rn_http_server *s = rn_xcalloc(1, sizeof *s);
    s->handler = handler;
    s->ud = ud;
    if (opts) s->opts = *opts;
    if (s->opts.max_conns <= 0) s->opts.max_conns = RN_HTTP_MAX_CONNS;
    if (s->opts.header_timeout_ms <= 0) s->opts.header_timeout_ms = RN_HTTP_HEADER_TIMEOUT_MS;
    if (s->opts.body_timeout_ms <= 0) s->opts.body_timeout_ms = RN_HTTP_BODY_TIMEOUT_MS;
    if (s->opts.idle_timeout_ms <= 0) s->opts.idle_timeout_ms = RN_HTTP_IDLE_TIMEOUT_MS;
    if (s->opts.write_timeout_ms <= 0) s->opts.write_timeout_ms = RN_HTTP_WRITE_TIMEOUT_MS;

    r = uv_loop_init(&s->loop);
    if (r < 0) {
        rn_errf(errbuf, errlen, "http: cannot create an event loop: %s", uv_strerror(r));
        goto fail_loop;
    }
    r = uv_tcp_init(&s->loop, &s->listener);
    if (r < 0) {
        rn_errf(errbuf, errlen, "http: cannot create a socket: %s", uv_strerror(r));
        goto fail_tcp;
    }
    s->listener.data = s;
    /* libuv may report a failed bind (EADDRINUSE) only at listen time. */
    r = s->opts.reuseport ? rn__bind_reuseport(&s->listener, &addr)
                          : uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&s->listener, RN__HTTP_BACKLOG, rn__on_connection);
    if (r < 0) {
        rn_errf(errbuf, errlen, "http: cannot listen on '%s': %s", listen, uv_strerror(r));
        goto fail_listen;
    }
    r = rn__bound_address(s);
    if (r < 0) {
        rn_errf(errbuf, errlen, "http: cannot read the bound address of '%s': %s", listen,
                uv_strerror(r));
        goto fail_listen;
    }
    r = uv_async_init(&s->loop, &s->stop_async, rn__on_stop);
    if (r < 0) {
        rn_errf(errbuf, errlen, "http: cannot create a wakeup handle: %s", uv_strerror(r));
        goto fail_listen;
    }
    s->stop_async.data = s;

    /* The thread inherits this mask: asynchronous signals stay with the
     * application's threads, and a write to a reset socket returns EPIPE
     * instead of killing the process with SIGPIPE. Faults stay deliverable. */
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGTRAP);
    sigdelset(&all, SIGABRT);
    sigdelset(&all, SIGSYS);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = uv_thread_create(&s->thread, rn__http_thread, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0) {
        rn_errf(errbuf, errlen, "http: cannot start the server thread: %s", uv_strerror(r));
        goto fail_thread;
    }
    return s;

fail_thread:
    uv_close((uv_handle_t *)&s->stop_async, NULL);
fail_listen:
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT); /* runs the close callbacks */
fail_tcp:
    uv_loop_close(&s->loop);
fail_loop:
    free(s);
    return NULL;
}

/* The string is owned by s and valid until rn_http_stop; any thread. */
const char *rn_http_address(const struct rn_http_server *s)
{
    return s->address;
}

void rn_http_stats(const struct rn_http_server *s, struct rn_http_stats *out)
{
    struct rn_http_server *m = (struct rn_http_server *)s; /* atomics are read, not changed */
    out->open = atomic_load_explicit(&m->st_open, memory_order_relaxed);
    out->idle = atomic_load_explicit(&m->st_idle, memory_order_relaxed);
    out->evicted = atomic_load_explicit(&m->st_evicted, memory_order_relaxed);
    out->refused = atomic_load_explicit(&m->st_refused, memory_order_relaxed);
    out->timed_out = atomic_load_explicit(&m->st_timed_out, memory_order_relaxed);
}

/* Called on any thread but the server's own (not from a handler). Takes s. */
void rn_http_stop(struct rn_http_server *s)
{
    if (!s) return;
    uv_thread_t self = uv_thread_self();
    assert(!uv_thread_equal(&self, &s->thread));
    RN_UNUSED(self);
    uv_async_send(&s->stop_async);
    uv_thread_join(&s->thread);
    int r = uv_loop_close(&s->loop);
    assert(r == 0 && s->nconns == 0 && s->nlive == 0);
    RN_UNUSED(r);
    free(s);
}

/* ---- a small blocking client ---------------------------------------------------- */

struct rn__client {
    int status;
    int done;
    struct rn_buf *out;
};

static int rn__client_on_body(http_parser *p, const char *at, size_t n)
{
    struct rn__client *c = p->data;
    rn_buf_append(c->out, at, n);
    return 0;
}

static int rn__client_on_complete(http_parser *p)
{
    struct rn__client *c = p->data;
    c->status = (int)p->status_code;
    c->done = 1;
    return 0;
}

int rn_http_call(const char *addr, const char *method, const char *path, const char *body,
                 int timeout_ms, int *status, struct rn_buf *out, char *errbuf, size_t errlen)
{
    return rn_http_call_auth(addr, method, path, body, NULL, timeout_ms, status, out, errbuf,
                             errlen);
}

int rn_http_call_auth(const char *addr, const char *method, const char *path, const char *body,
                      const char *token, int timeout_ms, int *status, struct rn_buf *out,
                      char *errbuf, size_t errlen)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr) {
        rn_errf(errbuf, errlen, "'%s' is not host:port", addr);
        return RN_EINVAL;
    }
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    if (strcmp(host, "localhost") == 0 || strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        rn_errf(errbuf, errlen, "'%s' is not an IPv4 address", host);
        return RN_EINVAL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        rn_errf(errbuf, errlen, "cannot connect to %s: %s", addr, strerror(errno));
        if (fd >= 0) close(fd);
        return RN_EIO;
    }
    struct rn_buf req = RN_BUF_INIT;
    size_t blen = body ? strlen(body) : 0;
    rn_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\nConnection: close\r\n",
                  method, path, addr, blen);
    if (blen) rn_buf_puts(&req, "Content-Type: application/json\r\n");
    if (token && token[0]) rn_buf_printf(&req, "Authorization: Bearer %s\r\n", token);
    rn_buf_puts(&req, "\r\n");
    if (blen) rn_buf_append(&req, body, blen);
    size_t sent = 0;
    while (sent < req.len) {
        ssize_t n = send(fd, req.data + sent, req.len - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += (size_t)n;
    }
    rn_buf_free(&req);
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    struct rn__client c = {0, 0, out};
    p.data = &c;
    http_parser_settings st;
    memset(&st, 0, sizeof st);
    st.on_body = rn__client_on_body;
    st.on_message_complete = rn__client_on_complete;
    int64_t deadline = rn_now_ns() + (int64_t)timeout_ms * 1000000;
    int rc = 0;
    while (!c.done) {
        struct pollfd pf = {fd, POLLIN, 0};
        int64_t left = (deadline - rn_now_ns()) / 1000000;
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
            rn_errf(errbuf, errlen, "no answer from %s within %d ms", addr, timeout_ms);
            rc = RN_EIO;
            break;
        }
        char chunk[8192];
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0) {
            rn_errf(errbuf, errlen, "reading from %s: %s", addr, strerror(errno));
            rc = RN_EIO;
            break;
        }
        size_t used = http_parser_execute(&p, &st, chunk, (size_t)n);
        if (HTTP_PARSER_ERRNO(&p) != HPE_OK || (n > 0 && used != (size_t)n)) {
            rn_errf(errbuf, errlen, "bad response from %s: %s", addr,
                    http_errno_description(HTTP_PARSER_ERRNO(&p)));
            rc = RN_EIO;
            break;
        }
        if (n == 0) {
            if (!c.done) {
                rn_errf(errbuf, errlen, "%s closed the connection early", addr);
                rc = RN_EIO;
            }
            break;
        }
    }
    close(fd);
    *status = c.status;
    return rc;
}
