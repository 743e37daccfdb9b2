/*
 * rn_common.c — error strings, allocation, clocks, byte buffers, the direct
 * JSON writers, arenas, hashing and "did you mean" suggestions.
 *
 * The JSON writers append straight into an rn_buf: the output path formats
 * about a thousand instructions per record this way, where library printers
 * that build a tree first cost ten to twenty-five times more.
 */
#include "rn_common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

const char *rn_strerror(int err)
{
    switch (err) {
    case RN_OK: return "ok";
    case RN_ENOMEM: return "out of memory";
    case RN_EINVAL: return "invalid argument";
    case RN_EIO: return "I/O error";
    case RN_ENOENT: return "not found";
    case RN_ETYPE: return "type mismatch";
    case RN_ESTOP: return "stopped";
    case RN_EFULL: return "full";
    case RN_ESTATE: return "state backend error";
    case RN_ECORRUPT: return "corrupt data";
    default: return "unknown error";
    }
}

void rn_errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static void rn__oom(size_t n)
{
    fprintf(stderr, "runnel: out of memory allocating %zu bytes\n", n);
    abort();
}

void *rn_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) rn__oom(n);
    return p;
}

void *rn_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) rn__oom(n * size);
    return p;
}

void *rn_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) rn__oom(n);
    return q;
}

char *rn_xstrdup(const char *s)
{
    return rn_xstrndup(s, strlen(s));
}

char *rn_xstrndup(const char *s, size_t n)
{
    char *p = rn_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

int64_t rn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int rn_pacer_allow(struct rn_pacer *p, int64_t rate, int max)
{
    int64_t now = rn_now_ns();
    if (!p->start_ns) p->start_ns = now;
    int64_t allowed = (now - p->start_ns) / 1000 * rate / 1000000 - p->emitted;
    if (allowed <= 0) return 0;
    return (int)RN_MIN(allowed, (int64_t)max);
}

int64_t rn_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- rn_buf ---------------------------------------------------------------- */

void rn__buf_grow(struct rn_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    b->data = rn_xrealloc(b->data, cap);
    b->cap = cap;
}

void rn_buf_puts(struct rn_buf *b, const char *s)
{
    rn_buf_append(b, s, strlen(s));
}

void rn_buf_printf(struct rn_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    rn_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void rn_buf_free(struct rn_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- JSON writers ---------------------------------------------------------- */

void rn_json_str(struct rn_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    rn_buf_reserve(b, n * 6 + 2);
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (RN_LIKELY(c >= 0x20 && c != '"' && c != '\\')) {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
}

void rn_json_u64(struct rn_buf *b, uint64_t v)
{
    char tmp[24];
    int i = 24;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    rn_buf_append(b, tmp + i, (size_t)(24 - i));
}

void rn_json_i64(struct rn_buf *b, int64_t v)
{
    if (v < 0) {
        rn_buf_putc(b, '-');
        rn_json_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        rn_json_u64(b, (uint64_t)v);
    }
}

void rn_json_f64(struct rn_buf *b, double v)
{
    if (!isfinite(v)) {
        rn_buf_puts(b, "null"); /* JSON has no NaN or infinity */
        return;
    }
    /* The range test first: converting a double outside int64_t's range is
     * undefined behaviour. */
    if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) {
        rn_json_i64(b, (int64_t)v);
        return;
    }
    /* Most values written by people or programs have few decimals: if
     * m / 10^k == v exactly for a small k, then "m with k decimals" is the
     * correctly rounded decimal of v and reads back as v (both sides are the
     * correctly rounded value of the same rational), so print it by integer
     * arithmetic. m must stay below 2^53, where doubles hold every integer:
     * above, m is itself rounded and the digits can run past the 17 a
     * double needs (123456789.123456784 for 123456789.12345679). */
    static const double pow10[] = {1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    double av = v < 0 ? -v : v;
    if (av < 1e9) {
        for (int k = 0; k < 9; k++) {
            double scaled = av * pow10[k];
            if (scaled >= 9007199254740992.0) break; /* 2^53 */
            double m = (double)(int64_t)(scaled + 0.5);
            if (m / pow10[k] != av) continue;
            uint64_t im = (uint64_t)m, p = (uint64_t)pow10[k];
            uint64_t ip = im / p, frac = im % p;
            char tmp[48];
            int n = 0;
            if (v < 0) tmp[n++] = '-';
            char digits[24];
            int d = 0;
            do {
                digits[d++] = (char)('0' + ip % 10);
                ip /= 10;
            } while (ip);
            while (d) tmp[n++] = digits[--d];
            tmp[n++] = '.';
            for (int j = k; j >= 0; j--) {
                digits[j] = (char)('0' + frac % 10);
                frac /= 10;
            }
            int last = k;
            while (last > 0 && digits[last] == '0') last--;
            for (int j = 0; j <= last; j++) tmp[n++] = digits[j];
            rn_buf_append(b, tmp, (size_t)n);
            return;
        }
    }
    char tmp[32];
    /* %.17g always round-trips; try the shorter %.15g first. */
    int n = snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v) n = snprintf(tmp, sizeof tmp, "%.17g", v);
    rn_buf_append(b, tmp, (size_t)n);
}

long rn_utf8_check(const void *p, size_t n)
{
    const unsigned char *start = p, *s = p, *e = s + n;
    while (s < e) {
        /* ASCII runs, eight bytes at a time. */
        while (e - s >= 8) {
            uint64_t w;
            memcpy(&w, s, 8);
            if (w & 0x8080808080808080ULL) break;
            s += 8;
        }
        if (s >= e) break;
        unsigned char c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return (long)(s - start);
        }
        if ((size_t)(e - s) <= need) return (long)(s - start);
        for (size_t i = 1; i <= need; i++) {
            if ((s[i] & 0xc0) != 0x80) return (long)(s - start);
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        /* Overlong forms, surrogates and code points past U+10FFFF. */
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return (long)(s - start);
        s += need + 1;
    }
    return -1;
}

int rn_utf8_valid(const void *p, size_t n)
{
    return rn_utf8_check(p, n) < 0;
}

void rn_base64(struct rn_buf *b, const void *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    rn_buf_reserve(b, (n + 2) / 3 * 4);
    char *o = b->data + b->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = tbl[(v >> 6) & 63];
        *o++ = tbl[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->data);
}

void rn_json_kv_bytes(struct rn_buf *b, const char *key, const void *p, size_t n)
{
    rn_buf_putc(b, '"');
    rn_buf_puts(b, key);
    if (rn_utf8_valid(p, n)) {
        rn_buf_puts(b, "\":");
        rn_json_str(b, p, n);
    } else {
        rn_buf_puts(b, "_base64\":\"");
        rn_base64(b, p, n);
        rn_buf_putc(b, '"');
    }
}

/* ---- arena ----------------------------------------------------------------- */

struct rn_arena_chunk {
    struct rn_arena_chunk *prev;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

void rn_arena_init(struct rn_arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
    a->used_total = 0;
}

void *rn_arena_alloc(struct rn_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    struct rn_arena_chunk *c = a->head;
    if (RN_UNLIKELY(!c || c->size - c->used < n)) {
        size_t size = n > a->chunk_size ? n : a->chunk_size;
        c = rn_xmalloc(sizeof *c + size);
        c->prev = a->head;
        c->size = size;
        c->used = 0;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used_total += n;
    return p;
}

void rn_arena_reset(struct rn_arena *a)
{
    struct rn_arena_chunk *c = a->head;
    while (c && c->prev) {
        struct rn_arena_chunk *prev = c->prev;
        free(c);
        c = prev;
    }
    if (c) c->used = 0;
    a->head = c;
    a->used_total = 0;
}

void rn_arena_destroy(struct rn_arena *a)
{
    struct rn_arena_chunk *c = a->head;
    while (c) {
        struct rn_arena_chunk *prev = c->prev;
        free(c);
        c = prev;
    }
    a->head = NULL;
    a->used_total = 0;
}

/* ---- hashing and suggestions ---------------------------------------------- */

uint64_t rn_hash64(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

int rn_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 1000;
    int row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int v = RN_MIN(row[j] + 1, row[j - 1] + 1);
            row[j] = RN_MIN(v, diag + cost);
            diag = up;
        }
    }
    return row[lb];
}

const char *rn_suggest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    int best_d = 1000;
    for (size_t i = 0; i < n; i++) {
        if (!candidates[i]) continue;
        int d = rn_edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    size_t len = strlen(word);
    int limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    return best_d <= limit ? best : NULL;
}
