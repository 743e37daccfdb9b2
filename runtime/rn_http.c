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
 * Each connection has a timer: a request must arrive complete within
 * RN__HTTP_REQUEST_MS of the accept, however slowly it trickles in, and a
 * response must be taken by the client within RN__HTTP_WRITE_MS. Memory per
 * connection is bounded by RN_HTTP_MAX_HEAD plus RN_HTTP_MAX_BODY plus the
 * response; the head is counted in raw bytes as they are parsed, so a client
 * cannot grow it by sending it slowly.
 *
 * Keep-alive (rn_http_opts.keep_alive, the serving server). After a response
 * to a request that allows it (HTTP/1.1 without "Connection: close", or 1.0
 * with "Connection: keep-alive"), the connection goes back to READING with a
 * fresh parser instead of half-closing; the request timer then bounds the
 * idle time before the next request too. Bytes that arrive while a response
 * is being written (pipelining) are kept, bounded by the request limits, and
 * parsed once it is sent. Error responses (400, 413, 431) always close.
 *
 * Several threads (rn_http_opts.reuseport): each server is one loop on one
 * thread; several servers bound to the same address with SO_REUSEPORT share
 * its port, and the kernel spreads new connections over them. A connection
 * stays on the thread that accepted it.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <uv.h>

/* A request must be complete this long after the connection is accepted. */
#define RN__HTTP_REQUEST_MS 10000
/* The client must take the whole response within this time. */
#define RN__HTTP_WRITE_MS 10000
/* After the response and our FIN, how long we wait for the client's FIN. */
#define RN__HTTP_LINGER_MS 2000
/* Connections beyond this many are accepted and closed at once. */
#define RN__HTTP_MAX_CONNS 1024
#define RN__HTTP_BACKLOG 511
#define RN__HTTP_DEFAULT_TYPE "text/plain; charset=utf-8"

enum rn__http_state {
    RN__HTTP_READING,   /* parsing the request */
    RN__HTTP_WRITING,   /* the response is queued on the socket */
    RN__HTTP_LINGERING, /* response sent and FIN sent; draining until the client closes */
    RN__HTTP_CLOSING,   /* both handles are closing; freed when both callbacks ran */
};

struct rn_http_server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop_async;
    uv_thread_t thread;
    rn_http_handler handler;
    void *ud;
    struct rn_http_opts opts;
    size_t nconns;    /* connections allocated and not yet freed; server thread only */
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
    http_parser parser;
    enum rn__http_state state;
    int handles_open;       /* of tcp and timer; the conn is freed when it drops to 0 */
    int head_done;          /* on_headers_complete has run */
    int message_done;       /* on_message_complete has run */
    int peer_eof;           /* the client half-closed while we were writing */
    int head_request;       /* the request was HEAD: send headers only */
    int error_status;       /* 413 decided in a parser callback, else 0 */
    int keep;               /* keep the connection open after this response */
    struct rn_buf pending;  /* keep-alive: bytes received after the current request */
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
    uv_close((uv_handle_t *)&c->tcp, rn__conn_closed);
    uv_close((uv_handle_t *)&c->timer, rn__conn_closed);
}

static void rn__on_timeout(uv_timer_t *t)
{
    rn__conn_close(t->data);
}

static void rn__on_shutdown(uv_shutdown_t *req, int status)
{
    struct rn__http_conn *c = req->data;
    if (c->state == RN__HTTP_CLOSING) return;
    if (status < 0 || c->peer_eof) {
        rn__conn_close(c);
        return;
    }
    /* Reading is still on: the client's EOF (or the timer) ends the linger. */
    c->state = RN__HTTP_LINGERING;
    uv_timer_start(&c->timer, rn__on_timeout, RN__HTTP_LINGER_MS, 0);
}

static void rn__conn_parse(struct rn__http_conn *c, const char *p, size_t n);

/* Keep-alive: the response is out; read the next request on c. */
static void rn__conn_next(struct rn__http_conn *c)
{
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
    uv_timer_start(&c->timer, rn__on_timeout, RN__HTTP_REQUEST_MS, 0);
    if (c->pending.len) {
        /* Parsed from a copy: parsing may stash bytes into pending again. */
        struct rn_buf p = c->pending;
        c->pending = (struct rn_buf)RN_BUF_INIT;
        rn__conn_parse(c, p.data, p.len);
        rn_buf_free(&p);
    }
}

static void rn__on_written(uv_write_t *req, int status)
{
    struct rn__http_conn *c = req->data;
    if (c->state == RN__HTTP_CLOSING) return; /* cancelled by uv_close */
    if (status < 0) {
        rn__conn_close(c); /* the client went away (EPIPE, ECONNRESET) */
        return;
    }
    if (c->keep && !c->peer_eof) {
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
    uv_timer_start(&c->timer, rn__on_timeout, RN__HTTP_WRITE_MS, 0);
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
    /* Stop at the end of the request: one request per connection, and any
     * pipelined bytes after it are ignored. */
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
 * or cannot become a valid one. The bytes are borrowed for the call. */
static void rn__conn_parse(struct rn__http_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        int in_head = !c->head_done;
        size_t got = http_parser_execute(&c->parser, &rn__settings, p, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (in_head) c->head_bytes += got;

        if (c->error_status == 413) {
            rn__conn_fail(c, 413, "request body is larger than %d bytes", RN_HTTP_MAX_BODY);
            return;
        }
        if (c->head_bytes > RN_HTTP_MAX_HEAD || e == HPE_HEADER_OVERFLOW) {
            rn__conn_fail(c, 431, "request head is larger than %d bytes", RN_HTTP_MAX_HEAD);
            return;
        }
        if (e == HPE_PAUSED) {
            if (c->message_done) {
                /* Keep-alive: what follows is the next request. */
                if (c->server->opts.keep_alive && n > got)
                    rn_buf_append(&c->pending, p + got, n - got);
                rn__conn_dispatch(c);
                return;
            }
            http_parser_pause(&c->parser, 0);
            p += got;
            n -= got;
            continue;
        }
        if (e != HPE_OK) {
            rn__conn_fail(c, 400, "%s", http_errno_description(e));
            return;
        }
        if (c->parser.upgrade) {
            rn__conn_fail(c, 400, "protocol upgrades are not supported");
            return;
        }
        assert(got == n);
        break;
    }
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
            uv_read_stop(st);
            return;
        }
        rn__conn_close(c); /* gone mid-request, reset, or the linger is over */
        return;
    }
    if (c->state == RN__HTTP_WRITING && c->server->opts.keep_alive) {
        /* The next request, pipelined: kept until the response is out. */
        if (c->pending.len + (size_t)nread > RN_HTTP_MAX_HEAD + RN_HTTP_MAX_BODY) {
            rn__conn_close(c);
            return;
        }
        rn_buf_append(&c->pending, buf->base, (size_t)nread);
        return;
    }
    if (c->state != RN__HTTP_READING) return; /* drained and dropped */
    rn__conn_parse(c, buf->base, (size_t)nread);
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

    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0 || s->nconns > RN__HTTP_MAX_CONNS) {
        rn__conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_start(&c->timer, rn__on_timeout, RN__HTTP_REQUEST_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, rn__on_alloc, rn__on_read) < 0) rn__conn_close(c);
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
    assert(r == 0 && s->nconns == 0);
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
