/*
 * rn_loggen.c — a fast, deterministic generator of runnel event logs (JSON lines).
 *
 * It writes the recommendation events of product.md ("Event formats") for benchmarks and
 * tests, one JSON object per line, fields always in this order:
 *
 *   {"type":"request","ts":...,"request":"r1","user":"u7","candidates":["i1","i9"]}
 *   {"type":"impression","ts":...,"request":"r1","user":"u7","items":["i9","i1"],
 *    "propensities":[0.8,0.2],"model_version":12}
 *   {"type":"click","ts":...,"request":"r1","user":"u7","item":"i9"}
 *   {"type":"pay","ts":...,"request":"r1","user":"u7","item":"i9","amount":23.5}
 *
 * (the impression is one line; with --context a request also carries "context":{"hour":H}).
 *
 * Usage:
 *   rn_loggen [--events N] [--users U] [--items I] [--seed S] [--out PATH]
 *             [--start-ts MS] [--rate R] [--items-per-impression K]
 *             [--click-rate P] [--pay-rate P] [--zipf S] [--item-zipf S]
 *             [--out-of-order MS] [--late-fraction F] [--bad-fraction F] [--context]
 *   rn_loggen --events 2000000 --out /tmp/events.jsonl
 *   rn_loggen --events 100000 --bad-fraction 0.01 --out-of-order 5000 | runnel ...
 *
 * The model.  Sessions start as a Poisson process (--rate requests per second of event
 * time).  Each session belongs to a user drawn from a Zipf distribution (--zipf; 0 means
 * uniform) whose ranks are scattered over the ids, so the hottest user is not "u1".  The
 * user sends a request with 2K distinct candidates drawn from a Zipf popularity over items
 * (--item-zipf); 20-120 ms later the impression shows K of them, with logging
 * propensities in thousandths that sum to exactly 1 and a model version that goes up every
 * ten minutes.  Each shown item is clicked with probability --click-rate a few seconds
 * later, and each click is paid with probability --pay-rate a minute or so after that.
 * Future events wait in a min-heap ordered by (ts, sequence), so sessions interleave and
 * the log comes out in event-time order; exactly --events lines are written, which cuts
 * the sessions still open at the end, as a log cut at an instant would be.  With the
 * defaults (K = 3: six candidates, three shown) a line averages about 145 bytes, like the
 * benchmark input of anchors.md, and 2,000,000 lines span about 2.5 hours of event time.
 *
 * Disorder for event-time tests.  --out-of-order J moves each event's ts back by a uniform
 * 0..J ms while keeping its place in the log; --late-fraction F moves that fraction of
 * events back by far more: uniform in [L, 2L] ms with L = max(60000, 10 J).
 *
 * Bad input for validation tests.  --bad-fraction F replaces each line, with probability F,
 * by a broken one; the kinds cycle in this order: malformed JSON (mostly a truncated
 * object), a JSON value that is not an object, an unknown "type", a required field missing
 * (type, ts, request, user, and candidates / items / item by type), a field of the wrong
 * type (ts as a string, ids as numbers, arrays as strings, amount as a string), invalid
 * UTF-8 bytes inside a string, binary junk (random bytes with at least one NUL and no
 * newline or carriage return), and an empty line.  The decisions about disorder and
 * breakage use their own random streams, so the good lines of a log with --bad-fraction
 * are exactly the lines at the same positions in the log without it.
 *
 * The same options and seed give byte-identical output.  At the end one line goes to
 * stderr: "loggen: lines=N good=G bad=B malformed=.. not_object=.. unknown_type=..
 * missing_field=.. wrong_type=.. bad_utf8=.. binary=.. empty=..".  Exit status 0 on
 * success, 1 on an I/O error, 2 on a usage error.
 *
 * Speed.  Lines are formatted by hand straight into a 4 MiB output buffer that is written
 * with fwrite in large chunks; the only allocations happen at start-up or when the heap or
 * the impression slot pool grows, never per line.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_gen.h"

#define RN_LOGGEN_OUTBUF (4u << 20)
#define RN_LOGGEN_MAX_K 1000
#define RN_LOGGEN_MAX_IDS 2000000000ull

/* ---------------------------------------------------------------------------------------
 * Random numbers: rn_rand.h (xoshiro256** seeded through splitmix64), one state per
 * independent stream.
 */

/* GCC and Clang on 64-bit targets have a 128-bit integer; __extension__ keeps -pedantic quiet. */
__extension__ typedef unsigned __int128 rn_loggen_u128;

/* A uniform integer in [0, n) for n >= 1 (Lemire's multiply-shift; the bias is far below
 * anything a benchmark could notice and keeps the stream consumption fixed).  Unlike
 * rn_rand_below it never rejects, and the logs depend on exactly this draw. */
static inline uint64_t rn_loggen_below(struct rn_rand *r, uint64_t n)
{
    return (uint64_t)(((rn_loggen_u128)rn_rand_next(r) * n) >> 64);
}

/* ---------------------------------------------------------------------------------------
 * Zipf sampling, P(rank k) proportional to k^-s for ranks 1..n (rank 1 the most likely).
 * Up to RN_LOGGEN_ZIPF_TABLE_MAX ranks from a cumulative table; above it by
 * rejection-inversion (Hörmann and Derflinger 1996, in the form used by Apache Commons),
 * O(1) time and memory per sample for any n and s >= 0 with close to one iteration.
 */

struct rn_loggen_zipf {
    uint64_t n;
    double s;
    double *cdf;     /* n entries when tabulated, else NULL */
    uint32_t *guide; /* n entries: guide[j] = first rank index with cdf > j / n */
    double h_x1;     /* H(1.5) - 1 */
    double h_n;      /* H(n + 0.5) */
    double accept;   /* 2 - H^-1(H(2.5) - h(2)) */
};

/* log1p(x) / x, accurate near 0. */
static double rn_loggen_helper1(double x)
{
    if (fabs(x) > 1e-8) return log1p(x) / x;
    return 1.0 - x * (0.5 - x * (1.0 / 3.0 - x * 0.25));
}

/* expm1(x) / x, accurate near 0. */
static double rn_loggen_helper2(double x)
{
    if (fabs(x) > 1e-8) return expm1(x) / x;
    return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + x * 0.25));
}

static double rn_loggen_zipf_H(const struct rn_loggen_zipf *z, double x)
{
    double lx = log(x);
    return rn_loggen_helper2((1.0 - z->s) * lx) * lx;
}

static double rn_loggen_zipf_h(const struct rn_loggen_zipf *z, double x)
{
    return exp(-z->s * log(x));
}

static double rn_loggen_zipf_Hinv(const struct rn_loggen_zipf *z, double x)
{
    double t = x * (1.0 - z->s);
    if (t < -1.0) t = -1.0; /* Rounding can push t just below -1; clamp to the domain. */
    return exp(rn_loggen_helper1(t) * x);
}

/* Up to this many ranks the distribution is tabulated (12 bytes a rank): a cumulative table
 * with a guide table ("indexed search") costs one uniform and about two comparisons per
 * sample, several times cheaper than the logarithms and exponentials of rejection-inversion,
 * which takes over above it. */
#define RN_LOGGEN_ZIPF_TABLE_MAX (1u << 21)

static void rn_loggen_zipf_init(struct rn_loggen_zipf *z, uint64_t n, double s)
{
    z->n = n;
    z->s = s;
    z->cdf = NULL;
    z->guide = NULL;
    z->h_x1 = rn_loggen_zipf_H(z, 1.5) - 1.0;
    z->h_n = rn_loggen_zipf_H(z, (double)n + 0.5);
    z->accept = 2.0 - rn_loggen_zipf_Hinv(z, rn_loggen_zipf_H(z, 2.5) - rn_loggen_zipf_h(z, 2.0));
    if (s == 0.0 || n == 1 || n > RN_LOGGEN_ZIPF_TABLE_MAX) return;
    z->cdf = malloc(n * sizeof(*z->cdf));
    z->guide = malloc(n * sizeof(*z->guide));
    if (!z->cdf || !z->guide) {
        fprintf(stderr, "loggen: out of memory (Zipf table of %llu ranks)\n",
                (unsigned long long)n);
        exit(1);
    }
    rn_rand_zipf_cdf(z->cdf, n, s);
    uint64_t i = 0;
    for (uint64_t j = 0; j < n; j++) {
        while (z->cdf[i] <= (double)j / (double)n)
            i++;
        z->guide[j] = (uint32_t)i;
    }
}

static void rn_loggen_zipf_destroy(struct rn_loggen_zipf *z)
{
    free(z->cdf);
    free(z->guide);
}

static uint64_t rn_loggen_zipf_sample(const struct rn_loggen_zipf *z, struct rn_rand *r)
{
    if (z->s == 0.0 || z->n == 1) return 1 + rn_loggen_below(r, z->n);
    if (z->cdf) {
        /* The guide entry of u's bucket is at or below the answer: walk up to it. */
        double u = rn_rand_uniform(r);
        uint64_t j = (uint64_t)(u * (double)z->n);
        uint64_t i = z->guide[j < z->n ? j : z->n - 1];
        while (z->cdf[i] <= u)
            i++;
        return i + 1;
    }
    for (;;) {
        double u = z->h_n + rn_rand_uniform(r) * (z->h_x1 - z->h_n);
        double x = rn_loggen_zipf_Hinv(z, u);
        double kd = floor(x + 0.5);
        uint64_t k;
        if (kd < 1.0)
            k = 1;
        else if (kd > (double)z->n)
            k = z->n;
        else
            k = (uint64_t)kd;
        if ((double)k - x <= z->accept ||
            u >= rn_loggen_zipf_H(z, (double)k + 0.5) - rn_loggen_zipf_h(z, (double)k))
            return k;
    }
}

/* A fixed permutation of 1..n (rank -> id) so that popular ranks are spread over the ids:
 * id = 1 + ((rank - 1) * stride + offset) mod n with stride coprime to n. */
struct rn_loggen_perm {
    uint64_t n, stride, offset;
};

static uint64_t rn_loggen_gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void rn_loggen_perm_init(struct rn_loggen_perm *p, uint64_t n, struct rn_rand *r)
{
    p->n = n;
    p->stride = 0;
    p->offset = rn_loggen_below(r, n);
    if (n == 1) return;
    /* Start near n times the golden ratio's fraction and walk up to a coprime stride. */
    uint64_t stride = ((uint64_t)((double)n * 0.6180339887) + 1 + rn_loggen_below(r, 16)) % n;
    if (stride == 0) stride = 1;
    while (rn_loggen_gcd(stride, n) != 1)
        stride = stride % n + 1;
    p->stride = stride;
}

/* With n <= RN_LOGGEN_MAX_IDS (2e9) the product stays below 2^63: no 128-bit arithmetic. */
static inline uint64_t rn_loggen_perm_apply(const struct rn_loggen_perm *p, uint64_t rank)
{
    assert(rank >= 1 && rank <= p->n);
    return 1 + ((rank - 1) * p->stride + p->offset) % p->n;
}

/* ---------------------------------------------------------------------------------------
 * Pending events: a binary min-heap on (ts, seq), and a pool of impression slots holding
 * the items and propensities decided when the request was made.
 */

enum rn_loggen_type { RN_LG_REQUEST = 0, RN_LG_IMPRESSION, RN_LG_CLICK, RN_LG_PAY };

struct rn_loggen_pending {
    int64_t ts;
    uint64_t seq;  /* tie breaker: first scheduled, first out */
    uint64_t req;  /* request number */
    uint64_t user; /* user id */
    uint64_t item; /* click, pay: item id */
    uint32_t slot; /* impression: slot index; pay: amount in cents */
    uint8_t type;
};

struct rn_loggen_heap {
    struct rn_loggen_pending *v;
    size_t n, cap;
};

static inline int rn_loggen_before(const struct rn_loggen_pending *a,
                                   const struct rn_loggen_pending *b)
{
    return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq);
}

static void *rn_loggen_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    if (!q) {
        fprintf(stderr, "loggen: out of memory (%zu bytes)\n", size);
        exit(1);
    }
    return q;
}

static void rn_loggen_heap_push(struct rn_loggen_heap *h, const struct rn_loggen_pending *e)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->v = rn_loggen_xrealloc(h->v, h->cap * sizeof(*h->v));
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!rn_loggen_before(e, &h->v[parent])) break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = *e;
}

static void rn_loggen_heap_pop(struct rn_loggen_heap *h, struct rn_loggen_pending *out)
{
    assert(h->n > 0);
    *out = h->v[0];
    struct rn_loggen_pending last = h->v[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && rn_loggen_before(&h->v[c + 1], &h->v[c])) c++;
        if (!rn_loggen_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (n > 0) h->v[i] = last;
}

/* Impression slots: the k shown items and their propensities (thousandths) of one session,
 * held from its request until its impression is written.  Freed slots are reused. */
struct rn_loggen_slots {
    uint64_t *items; /* cap * k item ids */
    uint16_t *props; /* cap * k propensities in thousandths */
    uint32_t *free;  /* stack of free slot indices */
    uint32_t nfree, cap, k;
};

static uint32_t rn_loggen_slot_acquire(struct rn_loggen_slots *sl)
{
    if (sl->nfree == 0) {
        uint32_t old = sl->cap, cap = old ? old * 2 : 256;
        sl->items = rn_loggen_xrealloc(sl->items, (size_t)cap * sl->k * sizeof(*sl->items));
        sl->props = rn_loggen_xrealloc(sl->props, (size_t)cap * sl->k * sizeof(*sl->props));
        sl->free = rn_loggen_xrealloc(sl->free, (size_t)cap * sizeof(*sl->free));
        /* Push the new slots so that the lowest index comes out first. */
        for (uint32_t i = cap; i > old; i--)
            sl->free[sl->nfree++] = i - 1;
        sl->cap = cap;
    }
    return sl->free[--sl->nfree];
}

static void rn_loggen_slot_release(struct rn_loggen_slots *sl, uint32_t slot)
{
    assert(sl->nfree < sl->cap);
    sl->free[sl->nfree++] = slot;
}

/* ---------------------------------------------------------------------------------------
 * Options.
 */

struct rn_loggen_opts {
    uint64_t events, users, items, seed, k, out_of_order;
    int64_t start_ts;
    double rate, click_rate, pay_rate, zipf, item_zipf, late_fraction, bad_fraction;
    int context;
    const char *out;
};

static void rn_loggen_usage(FILE *f)
{
    fputs("usage: rn_loggen [options]\n"
          "Writes a deterministic log of runnel events (JSON lines: request, impression,\n"
          "click, pay) for benchmarks and tests.\n"
          "\n"
          "  --events N                 lines to write, exactly (default 1000000)\n"
          "  --users U                  number of users u1..uU (default 100000)\n"
          "  --items I                  number of items i1..iI (default 10000)\n"
          "  --seed S                   random seed; same seed, same bytes (default 1)\n"
          "  --out PATH                 output file (default stdout)\n"
          "  --start-ts MS              event time of the first request, ms since the epoch\n"
          "                             (default 1700000000000)\n"
          "  --rate R                   requests per second of event time (default 100)\n"
          "  --items-per-impression K   items shown per impression; requests carry 2K\n"
          "                             candidates (default 3)\n"
          "  --click-rate P             click probability per shown item (default 0.05)\n"
          "  --pay-rate P               pay probability per click (default 0.2)\n"
          "  --zipf S                   user activity skew exponent, 0 = uniform (default 1.0)\n"
          "  --item-zipf S              item popularity skew exponent (default 0.8)\n"
          "  --out-of-order MS          shift each ts back by up to MS ms (default 0)\n"
          "  --late-fraction F          fraction of events shifted back by minutes (default 0)\n"
          "  --bad-fraction F           fraction of lines replaced by broken ones (default 0)\n"
          "  --context                  add \"context\":{\"hour\":H} to requests\n"
          "  --help                     print this help\n",
          f);
}

static int rn_loggen_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max) return -1;
    *out = v;
    return 0;
}

static int rn_loggen_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Fills o from argv; returns 0, 1 after --help, or -1 after printing what was wrong. */
static int rn_loggen_parse_args(int argc, char **argv, struct rn_loggen_opts *o)
{
    enum {
        O_EVENTS = 256,
        O_USERS,
        O_ITEMS,
        O_SEED,
        O_OUT,
        O_START,
        O_RATE,
        O_K,
        O_CLICK,
        O_PAY,
        O_ZIPF,
        O_IZIPF,
        O_OOO,
        O_LATE,
        O_BAD,
        O_CONTEXT,
        O_HELP
    };
    static const struct option longopts[] = {
        {"events", required_argument, NULL, O_EVENTS},
        {"users", required_argument, NULL, O_USERS},
        {"items", required_argument, NULL, O_ITEMS},
        {"seed", required_argument, NULL, O_SEED},
        {"out", required_argument, NULL, O_OUT},
        {"start-ts", required_argument, NULL, O_START},
        {"rate", required_argument, NULL, O_RATE},
        {"items-per-impression", required_argument, NULL, O_K},
        {"click-rate", required_argument, NULL, O_CLICK},
        {"pay-rate", required_argument, NULL, O_PAY},
        {"zipf", required_argument, NULL, O_ZIPF},
        {"item-zipf", required_argument, NULL, O_IZIPF},
        {"out-of-order", required_argument, NULL, O_OOO},
        {"late-fraction", required_argument, NULL, O_LATE},
        {"bad-fraction", required_argument, NULL, O_BAD},
        {"context", no_argument, NULL, O_CONTEXT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    *o = (struct rn_loggen_opts){
        .events = 1000000,
        .users = 100000,
        .items = 10000,
        .seed = 1,
        .k = 3,
        .start_ts = 1700000000000,
        .rate = 100.0,
        .click_rate = 0.05,
        .pay_rate = 0.2,
        .zipf = 1.0,
        .item_zipf = 0.8,
    };
    int c, li = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        const char *a = optarg;
        uint64_t u;
        int bad = 0;
        switch (c) {
        case O_EVENTS:
            bad = rn_loggen_parse_u64(a, UINT64_MAX / 2, &o->events);
            break;
        case O_USERS:
            bad = rn_loggen_parse_u64(a, RN_LOGGEN_MAX_IDS, &o->users) || !o->users;
            break;
        case O_ITEMS:
            bad = rn_loggen_parse_u64(a, RN_LOGGEN_MAX_IDS, &o->items) || !o->items;
            break;
        case O_SEED:
            bad = rn_loggen_parse_u64(a, UINT64_MAX, &o->seed);
            break;
        case O_OUT:
            o->out = a;
            break;
        case O_START:
            bad = rn_loggen_parse_u64(a, (uint64_t)INT64_MAX / 4, &u);
            o->start_ts = (int64_t)u;
            break;
        case O_RATE:
            bad = rn_loggen_parse_double(a, 1e-6, 1e9, &o->rate);
            break;
        case O_K:
            bad = rn_loggen_parse_u64(a, RN_LOGGEN_MAX_K, &o->k) || !o->k;
            break;
        case O_CLICK:
            bad = rn_loggen_parse_double(a, 0.0, 1.0, &o->click_rate);
            break;
        case O_PAY:
            bad = rn_loggen_parse_double(a, 0.0, 1.0, &o->pay_rate);
            break;
        case O_ZIPF:
            bad = rn_loggen_parse_double(a, 0.0, 100.0, &o->zipf);
            break;
        case O_IZIPF:
            bad = rn_loggen_parse_double(a, 0.0, 100.0, &o->item_zipf);
            break;
        case O_OOO:
            bad = rn_loggen_parse_u64(a, 100ull * 365 * 86400 * 1000, &o->out_of_order);
            break;
        case O_LATE:
            bad = rn_loggen_parse_double(a, 0.0, 1.0, &o->late_fraction);
            break;
        case O_BAD:
            bad = rn_loggen_parse_double(a, 0.0, 1.0, &o->bad_fraction);
            break;
        case O_CONTEXT:
            o->context = 1;
            break;
        case O_HELP:
            rn_loggen_usage(stdout);
            return 1;
        default:
            if (optopt >= O_EVENTS && optopt <= O_HELP)
                fprintf(stderr, "loggen: option %s needs a value\n", argv[optind - 1]);
            else
                fprintf(stderr, "loggen: unknown option '%s'\n", argv[optind - 1]);
            rn_loggen_usage(stderr);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "loggen: bad value '%s' for option --%s\n", a, longopts[li].name);
            rn_loggen_usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "loggen: unexpected argument '%s'\n", argv[optind]);
        rn_loggen_usage(stderr);
        return -1;
    }
    if (o->k > o->items) {
        fprintf(stderr, "loggen: --items-per-impression (%llu) exceeds --items (%llu)\n",
                (unsigned long long)o->k, (unsigned long long)o->items);
        rn_loggen_usage(stderr);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Formatting: good lines, and the spoiled variants that make up most broken lines.
 */

enum rn_loggen_bad_kind {
    RN_LG_BAD_MALFORMED = 0,
    RN_LG_BAD_NOT_OBJECT,
    RN_LG_BAD_UNKNOWN_TYPE,
    RN_LG_BAD_MISSING_FIELD,
    RN_LG_BAD_WRONG_TYPE,
    RN_LG_BAD_UTF8,
    RN_LG_BAD_BINARY,
    RN_LG_BAD_EMPTY,
    RN_LG_BAD_KINDS
};

static const char *const rn_loggen_bad_names[RN_LG_BAD_KINDS] = {
    "malformed",  "not_object", "unknown_type", "missing_field",
    "wrong_type", "bad_utf8",   "binary",       "empty",
};

/* The fields a broken line may leave out or write with the wrong JSON type. */
enum rn_loggen_field {
    RN_LG_F_NONE = 0,
    RN_LG_F_TYPE,
    RN_LG_F_TS,
    RN_LG_F_REQUEST,
    RN_LG_F_USER,
    RN_LG_F_LIST,
    RN_LG_F_ITEM,
    RN_LG_F_AMOUNT
};

/* One event as it is about to be written; items and props are borrowed from the caller. */
struct rn_loggen_event {
    int type;                 /* enum rn_loggen_type */
    int64_t ts;               /* as written, after any disorder */
    uint64_t req, user, item; /* numbers behind "r<n>", "u<n>", "i<n>" */
    uint32_t cents;           /* pay */
    uint32_t nitems;          /* request candidates or impression items */
    const uint64_t *items;
    const uint16_t *props;  /* impression: thousandths, summing to 1000 */
    uint64_t model_version; /* impression */
};

/* How rn_loggen_format should spoil a line; all zero (NULL) for a good line. */
struct rn_loggen_spoil {
    int drop;              /* enum rn_loggen_field to leave out */
    int mistype;           /* enum rn_loggen_field to write with the wrong JSON type */
    const char *type_name; /* replacement for the "type" string */
    const char *utf8;      /* invalid UTF-8 bytes to put inside a string */
    int utf8_field;        /* RN_LG_F_REQUEST or RN_LG_F_USER */
};

static const char *const rn_loggen_type_names[] = {"request", "impression", "click", "pay"};

#define RN_LOGGEN_PUT(p, lit)                                                                      \
    do {                                                                                           \
        memcpy((p), (lit), sizeof(lit) - 1);                                                       \
        (p) += sizeof(lit) - 1;                                                                    \
    } while (0)

static const char rn_loggen_digits2[201] = "0001020304050607080910111213141516171819"
                                           "2021222324252627282930313233343536373839"
                                           "4041424344454647484950515253545556575859"
                                           "6061626364656667686970717273747576777879"
                                           "8081828384858687888990919293949596979899";

/* Writes v in decimal at p and returns the end: the length first, then two digits per step
 * from a table straight into place (no temporary and no memcpy of a few bytes). */
static inline char *rn_loggen_put_u64(char *p, uint64_t v)
{
    static const uint64_t pow10[20] = {
        1ull,
        10ull,
        100ull,
        1000ull,
        10000ull,
        100000ull,
        1000000ull,
        10000000ull,
        100000000ull,
        1000000000ull,
        10000000000ull,
        100000000000ull,
        1000000000000ull,
        10000000000000ull,
        100000000000000ull,
        1000000000000000ull,
        10000000000000000ull,
        100000000000000000ull,
        1000000000000000000ull,
        10000000000000000000ull,
    };
    unsigned n = 1;
    while (n < 20 && v >= pow10[n])
        n++;
    char *end = p + n, *t = end;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        *--t = rn_loggen_digits2[d + 1];
        *--t = rn_loggen_digits2[d];
    }
    if (v >= 10) {
        *--t = rn_loggen_digits2[v * 2 + 1];
        *--t = rn_loggen_digits2[v * 2];
    } else {
        *--t = (char)('0' + v);
    }
    assert(t == p);
    return end;
}

static inline char *rn_loggen_put_cstr(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Writes a propensity given in thousandths (1..1000) as a short decimal: 0.8, 0.25, 1. */
static inline char *rn_loggen_put_prop(char *p, unsigned v)
{
    if (v >= 1000) {
        *p++ = '1';
        return p;
    }
    *p++ = '0';
    *p++ = '.';
    *p++ = (char)('0' + v / 100);
    if (v % 100) {
        *p++ = (char)('0' + v / 10 % 10);
        if (v % 10) *p++ = (char)('0' + v % 10);
    }
    return p;
}

/* Writes an amount given in cents with one or two decimals: 23.5, 23.05, 23.0. */
static inline char *rn_loggen_put_amount(char *p, uint32_t cents)
{
    p = rn_loggen_put_u64(p, cents / 100);
    *p++ = '.';
    *p++ = (char)('0' + cents / 10 % 10);
    if (cents % 10) *p++ = (char)('0' + cents % 10);
    return p;
}

/* Writes the event at p (no newline) as sp says and returns the end of the line.  The caller
 * guarantees room for the longest possible line (struct rn_loggen's max_line). */
static char *rn_loggen_format(char *p, const struct rn_loggen_event *e,
                              const struct rn_loggen_spoil *sp, int context)
{
    int first = 1;
#define RN_LOGGEN_KEY(lit)                                                                         \
    do {                                                                                           \
        if (!first) *p++ = ',';                                                                    \
        first = 0;                                                                                 \
        RN_LOGGEN_PUT(p, lit);                                                                     \
    } while (0)

    *p++ = '{';
    if (sp->drop != RN_LG_F_TYPE) {
        RN_LOGGEN_KEY("\"type\":\"");
        p = rn_loggen_put_cstr(p, sp->type_name ? sp->type_name : rn_loggen_type_names[e->type]);
        *p++ = '"';
    }
    if (sp->drop != RN_LG_F_TS) {
        RN_LOGGEN_KEY("\"ts\":");
        if (sp->mistype == RN_LG_F_TS) *p++ = '"';
        p = rn_loggen_put_u64(p, (uint64_t)e->ts);
        if (sp->mistype == RN_LG_F_TS) *p++ = '"';
    }
    if (sp->drop != RN_LG_F_REQUEST) {
        RN_LOGGEN_KEY("\"request\":");
        if (sp->mistype == RN_LG_F_REQUEST) {
            p = rn_loggen_put_u64(p, e->req);
        } else {
            RN_LOGGEN_PUT(p, "\"r");
            p = rn_loggen_put_u64(p, e->req);
            if (sp->utf8 && sp->utf8_field == RN_LG_F_REQUEST) p = rn_loggen_put_cstr(p, sp->utf8);
            *p++ = '"';
        }
    }
    if (sp->drop != RN_LG_F_USER) {
        RN_LOGGEN_KEY("\"user\":");
        if (sp->mistype == RN_LG_F_USER) {
            p = rn_loggen_put_u64(p, e->user);
        } else {
            RN_LOGGEN_PUT(p, "\"u");
            p = rn_loggen_put_u64(p, e->user);
            if (sp->utf8 && sp->utf8_field == RN_LG_F_USER) p = rn_loggen_put_cstr(p, sp->utf8);
            *p++ = '"';
        }
    }
    if ((e->type == RN_LG_REQUEST || e->type == RN_LG_IMPRESSION) && sp->drop != RN_LG_F_LIST) {
        if (e->type == RN_LG_REQUEST)
            RN_LOGGEN_KEY("\"candidates\":");
        else
            RN_LOGGEN_KEY("\"items\":");
        if (sp->mistype == RN_LG_F_LIST) {
            /* A comma-separated string where an array belongs. */
            *p++ = '"';
            for (uint32_t i = 0; i < e->nitems; i++) {
                if (i) *p++ = ',';
                *p++ = 'i';
                p = rn_loggen_put_u64(p, e->items[i]);
            }
            *p++ = '"';
        } else {
            *p++ = '[';
            for (uint32_t i = 0; i < e->nitems; i++) {
                if (i) *p++ = ',';
                RN_LOGGEN_PUT(p, "\"i");
                p = rn_loggen_put_u64(p, e->items[i]);
                *p++ = '"';
            }
            *p++ = ']';
        }
    }
    switch (e->type) {
    case RN_LG_REQUEST:
        if (context) {
            RN_LOGGEN_KEY("\"context\":{\"hour\":");
            p = rn_loggen_put_u64(p, (uint64_t)(e->ts / 3600000 % 24));
            *p++ = '}';
        }
        break;
    case RN_LG_IMPRESSION:
        RN_LOGGEN_KEY("\"propensities\":[");
        for (uint32_t i = 0; i < e->nitems; i++) {
            if (i) *p++ = ',';
            p = rn_loggen_put_prop(p, e->props[i]);
        }
        *p++ = ']';
        RN_LOGGEN_KEY("\"model_version\":");
        p = rn_loggen_put_u64(p, e->model_version);
        break;
    case RN_LG_CLICK:
    case RN_LG_PAY:
        if (sp->drop != RN_LG_F_ITEM) {
            RN_LOGGEN_KEY("\"item\":");
            if (sp->mistype == RN_LG_F_ITEM) {
                p = rn_loggen_put_u64(p, e->item);
            } else {
                RN_LOGGEN_PUT(p, "\"i");
                p = rn_loggen_put_u64(p, e->item);
                *p++ = '"';
            }
        }
        if (e->type == RN_LG_PAY) {
            RN_LOGGEN_KEY("\"amount\":");
            if (sp->mistype == RN_LG_F_AMOUNT) *p++ = '"';
            p = rn_loggen_put_amount(p, e->cents);
            if (sp->mistype == RN_LG_F_AMOUNT) *p++ = '"';
        }
        break;
    default:
        assert(0);
    }
    *p++ = '}';
    return p;
#undef RN_LOGGEN_KEY
}

/* ---------------------------------------------------------------------------------------
 * The generator.
 */

struct rn_loggen {
    struct rn_loggen_opts o;
    struct rn_rand gen;   /* sessions, users, items, clicks, pays */
    struct rn_rand noise; /* out-of-order and late shifts */
    struct rn_rand bad;   /* which lines break, and how */
    struct rn_loggen_zipf user_zipf, item_zipf;
    struct rn_loggen_perm user_perm, item_perm;
    struct rn_loggen_heap heap;
    struct rn_loggen_slots slots;
    uint64_t *cand;    /* 2k scratch: a request's candidates */
    double *weights;   /* k scratch: propensity weights */
    uint32_t ncand;    /* candidates per request: min(2k, items) */
    uint64_t seq;      /* heap tie breaker */
    uint64_t nreq;     /* requests so far; the next is r<nreq + 1> */
    int64_t late_base; /* a late event goes back by late_base..2 * late_base ms */
    FILE *out;
    char *buf;
    size_t len, cap, max_line;
    uint64_t lines, good, bad_count[RN_LG_BAD_KINDS], bad_cycle;
};

static void rn_loggen_flush(struct rn_loggen *g)
{
    if (g->len && fwrite(g->buf, 1, g->len, g->out) != g->len) {
        fprintf(stderr, "loggen: write to %s failed: %s\n", g->o.out ? g->o.out : "stdout",
                strerror(errno));
        exit(1);
    }
    g->len = 0;
}

/* Writes a broken line of the given kind at p, derived from e where it can be, and returns
 * its end (no newline). */
static char *rn_loggen_bad_line(struct rn_loggen *g, char *p, const struct rn_loggen_event *e,
                                int kind)
{
    static const char *const not_objects[] = {
        "[1,2]", "42", "\"click\"", "null", "true", "[{\"type\":\"click\"}]", "-0.5e3",
    };
    static const char *const unknown_types[] = {
        "view", "Click", "purchase", "", "request ", "impressions", "CLICK", "pay\\u0000",
    };
    static const char *const bad_utf8[] = {
        "\xff",             /* never valid in UTF-8 */
        "\xc3\x28",         /* a lead byte followed by a non-continuation byte */
        "\xe2\x82",         /* a sequence cut short */
        "\xed\xa0\x80",     /* an encoded UTF-16 surrogate */
        "\xc0\xaf",         /* an overlong encoding of '/' */
        "\xf8\x88\x80\x80", /* a five-byte lead byte */
        "\x80",             /* a lone continuation byte */
    };
    static const int missing[4][5] = {
        /* A request's candidates are optional (the recommender may pick from the
         * whole catalogue), so a request loses one of the required four. */
        {RN_LG_F_TYPE, RN_LG_F_TS, RN_LG_F_REQUEST, RN_LG_F_USER, RN_LG_F_TS},
        {RN_LG_F_TYPE, RN_LG_F_TS, RN_LG_F_REQUEST, RN_LG_F_USER, RN_LG_F_LIST},
        {RN_LG_F_TYPE, RN_LG_F_TS, RN_LG_F_REQUEST, RN_LG_F_USER, RN_LG_F_ITEM},
        {RN_LG_F_TYPE, RN_LG_F_TS, RN_LG_F_REQUEST, RN_LG_F_USER, RN_LG_F_ITEM},
    };
    static const int mistyped[4][5] = {
        {RN_LG_F_TS, RN_LG_F_REQUEST, RN_LG_F_USER, RN_LG_F_LIST, RN_LG_F_TS},
        {RN_LG_F_TS, RN_LG_F_REQUEST, RN_LG_F_USER, RN_LG_F_LIST, RN_LG_F_LIST},
        {RN_LG_F_TS, RN_LG_F_REQUEST, RN_LG_F_USER, RN_LG_F_ITEM, RN_LG_F_ITEM},
        {RN_LG_F_TS, RN_LG_F_REQUEST, RN_LG_F_USER, RN_LG_F_ITEM, RN_LG_F_AMOUNT},
    };
#define RN_LOGGEN_COUNT(a) (sizeof(a) / sizeof((a)[0]))
    uint64_t n = g->bad_count[kind]; /* how many of this kind came before: picks the variant */
    struct rn_loggen_spoil sp = {0};
    char *q;

    switch (kind) {
    case RN_LG_BAD_MALFORMED:
        q = rn_loggen_format(p, e, &sp, g->o.context);
        switch (n % 4) {
        case 0:
        case 1: /* Cut short: no prefix of an object is a complete JSON value. */
            return p + 1 + rn_loggen_below(&g->bad, (uint64_t)(q - p - 1));
        case 2: /* A trailing comma before the closing brace. */
            q[-1] = ',';
            *q++ = '}';
            return q;
        default: /* The type in single quotes: {"type":'click',... */
            p[8] = '\'';
            p[9 + strlen(rn_loggen_type_names[e->type])] = '\'';
            return q;
        }
    case RN_LG_BAD_NOT_OBJECT:
        return rn_loggen_put_cstr(p, not_objects[n % RN_LOGGEN_COUNT(not_objects)]);
    case RN_LG_BAD_UNKNOWN_TYPE:
        sp.type_name = unknown_types[n % RN_LOGGEN_COUNT(unknown_types)];
        return rn_loggen_format(p, e, &sp, g->o.context);
    case RN_LG_BAD_MISSING_FIELD:
        sp.drop = missing[e->type][n % 5];
        return rn_loggen_format(p, e, &sp, g->o.context);
    case RN_LG_BAD_WRONG_TYPE:
        sp.mistype = mistyped[e->type][n % 5];
        return rn_loggen_format(p, e, &sp, g->o.context);
    case RN_LG_BAD_UTF8:
        sp.utf8 = bad_utf8[n % RN_LOGGEN_COUNT(bad_utf8)];
        sp.utf8_field = (n / RN_LOGGEN_COUNT(bad_utf8)) % 2 ? RN_LG_F_REQUEST : RN_LG_F_USER;
        return rn_loggen_format(p, e, &sp, g->o.context);
    case RN_LG_BAD_BINARY: {
        size_t len = 8 + rn_loggen_below(&g->bad, 121);
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)rn_rand_next(&g->bad);
            if (c == '\n' || c == '\r') c ^= 0x80;
            p[i] = (char)c;
        }
        p[rn_loggen_below(&g->bad, len)] = '\0';
        return p + len;
    }
    default:
        assert(kind == RN_LG_BAD_EMPTY);
        return p;
    }
#undef RN_LOGGEN_COUNT
}

/* Writes one event: applies the disorder options to e->ts, then writes it as a good line or,
 * with probability --bad-fraction, as a broken one. */
static void rn_loggen_emit(struct rn_loggen *g, struct rn_loggen_event *e)
{
    static const struct rn_loggen_spoil good = {0};
    int64_t ts = e->ts;
    if (g->o.out_of_order) ts -= (int64_t)rn_loggen_below(&g->noise, g->o.out_of_order + 1);
    if (g->o.late_fraction > 0 && rn_rand_uniform(&g->noise) < g->o.late_fraction)
        ts -= g->late_base + (int64_t)rn_loggen_below(&g->noise, (uint64_t)g->late_base + 1);
    e->ts = ts < 0 ? 0 : ts;

    if (g->cap - g->len < g->max_line) rn_loggen_flush(g);
    char *p = g->buf + g->len, *q;
    if (g->o.bad_fraction > 0 && rn_rand_uniform(&g->bad) < g->o.bad_fraction) {
        int kind = (int)(g->bad_cycle++ % RN_LG_BAD_KINDS);
        q = rn_loggen_bad_line(g, p, e, kind);
        g->bad_count[kind]++;
    } else {
        q = rn_loggen_format(p, e, &good, g->o.context);
        g->good++;
    }
    *q++ = '\n';
    g->len = (size_t)(q - g->buf);
    assert(g->len <= g->cap);
    g->lines++;
}

/* Starts a session at ts: writes its request and schedules its impression. */
static void rn_loggen_session(struct rn_loggen *g, int64_t ts)
{
    uint64_t req = ++g->nreq;
    uint64_t user =
        rn_loggen_perm_apply(&g->user_perm, rn_loggen_zipf_sample(&g->user_zipf, &g->gen));
    uint32_t nc = g->ncand, k = g->slots.k;

    /* Distinct candidates by popularity; after many repeats (tiny catalogues, steep skew)
     * walk to the next unused id so that the loop always ends. */
    for (uint32_t j = 0, tries = 0; j < nc;) {
        uint64_t id =
            rn_loggen_perm_apply(&g->item_perm, rn_loggen_zipf_sample(&g->item_zipf, &g->gen));
        for (;;) {
            uint32_t i = 0;
            while (i < j && g->cand[i] != id)
                i++;
            if (i == j || tries++ < 16 * nc) break;
            id = id % g->o.items + 1;
        }
        uint32_t i = 0;
        while (i < j && g->cand[i] != id)
            i++;
        if (i == j) g->cand[j++] = id;
    }
    struct rn_loggen_event e = {
        .type = RN_LG_REQUEST, .ts = ts, .req = req, .user = user, .nitems = nc, .items = g->cand};
    rn_loggen_emit(g, &e);

    /* The logging policy shows k of the candidates, with the propensities it logged. */
    uint32_t slot = rn_loggen_slot_acquire(&g->slots);
    uint64_t *shown = g->slots.items + (size_t)slot * k;
    uint16_t *props = g->slots.props + (size_t)slot * k;
    double sum = 0;
    for (uint32_t i = 0; i < k; i++) {
        uint32_t j = i + (uint32_t)rn_loggen_below(&g->gen, nc - i);
        uint64_t t = g->cand[i];
        g->cand[i] = g->cand[j];
        g->cand[j] = t;
        shown[i] = g->cand[i];
        double w = 0.05 + rn_rand_uniform(&g->gen);
        /* Insertion into descending order: the first slot gets the largest propensity. */
        uint32_t m = i;
        while (m > 0 && g->weights[m - 1] < w) {
            g->weights[m] = g->weights[m - 1];
            m--;
        }
        g->weights[m] = w;
        sum += w;
    }
    /* Thousandths, each at least 1, the rounding remainder going to the first. */
    unsigned rest = 1000;
    for (uint32_t i = 1; i < k; i++) {
        unsigned v = 1 + (unsigned)(g->weights[i] / sum * (double)(1000 - k));
        props[i] = (uint16_t)v;
        rest -= v;
    }
    props[0] = (uint16_t)rest;
    assert(rest >= 1 && rest <= 1000);

    struct rn_loggen_pending imp = {.ts = ts + 20 + (int64_t)rn_loggen_below(&g->gen, 101),
                                    .seq = g->seq++,
                                    .req = req,
                                    .user = user,
                                    .slot = slot,
                                    .type = RN_LG_IMPRESSION};
    rn_loggen_heap_push(&g->heap, &imp);
}

/* Writes a pending event that has come due and schedules what follows from it. */
static void rn_loggen_due(struct rn_loggen *g, const struct rn_loggen_pending *pe)
{
    uint32_t k = g->slots.k;
    struct rn_loggen_event e = {.type = pe->type, .ts = pe->ts, .req = pe->req, .user = pe->user};

    switch (pe->type) {
    case RN_LG_IMPRESSION: {
        const uint64_t *shown = g->slots.items + (size_t)pe->slot * k;
        e.nitems = k;
        e.items = shown;
        e.props = g->slots.props + (size_t)pe->slot * k;
        e.model_version = 1 + (uint64_t)((pe->ts - g->o.start_ts) / 600000);
        rn_loggen_emit(g, &e);
        for (uint32_t i = 0; i < k; i++) {
            if (rn_rand_uniform(&g->gen) >= g->o.click_rate) continue;
            double d = fmin(rn_rand_exp(&g->gen, 5000.0), 300000.0);
            struct rn_loggen_pending c = {.ts = pe->ts + 1000 + (int64_t)d,
                                          .seq = g->seq++,
                                          .req = pe->req,
                                          .user = pe->user,
                                          .item = shown[i],
                                          .type = RN_LG_CLICK};
            rn_loggen_heap_push(&g->heap, &c);
        }
        rn_loggen_slot_release(&g->slots, pe->slot);
        break;
    }
    case RN_LG_CLICK:
        e.item = pe->item;
        rn_loggen_emit(g, &e);
        if (rn_rand_uniform(&g->gen) < g->o.pay_rate) {
            double d = fmin(rn_rand_exp(&g->gen, 50000.0), 1200000.0);
            double amount = fmin(rn_rand_exp(&g->gen, 3000.0), 10000000.0);
            struct rn_loggen_pending pay = {.ts = pe->ts + 10000 + (int64_t)d,
                                            .seq = g->seq++,
                                            .req = pe->req,
                                            .user = pe->user,
                                            .item = pe->item,
                                            .slot = 99 + (uint32_t)amount,
                                            .type = RN_LG_PAY};
            rn_loggen_heap_push(&g->heap, &pay);
        }
        break;
    case RN_LG_PAY:
        e.item = pe->item;
        e.cents = pe->slot;
        rn_loggen_emit(g, &e);
        break;
    default:
        assert(0);
    }
}

/* Writes exactly o->events lines: sessions start on a Poisson clock, and before each one
 * every pending event that is due by then is written. */
static void rn_loggen_run(struct rn_loggen *g)
{
    double clock = 0, mean_gap = 1000.0 / g->o.rate;
    int64_t next = g->o.start_ts;
    while (g->lines < g->o.events) {
        if (g->heap.n && g->heap.v[0].ts <= next) {
            struct rn_loggen_pending pe;
            rn_loggen_heap_pop(&g->heap, &pe);
            rn_loggen_due(g, &pe);
        } else {
            rn_loggen_session(g, next);
            clock += rn_rand_exp(&g->gen, mean_gap);
            next = g->o.start_ts + (int64_t)clock;
        }
    }
}

int main(int argc, char **argv)
{
    struct rn_loggen g;
    memset(&g, 0, sizeof(g));
    int rc = rn_loggen_parse_args(argc, argv, &g.o);
    if (rc) return rc > 0 ? 0 : 2;

    const struct rn_loggen_opts *o = &g.o;
    rn_rand_seed(&g.gen, o->seed, 1);
    rn_rand_seed(&g.noise, o->seed, 2);
    rn_rand_seed(&g.bad, o->seed, 3);
    struct rn_rand setup;
    rn_rand_seed(&setup, o->seed, 4);
    rn_loggen_zipf_init(&g.user_zipf, o->users, o->zipf);
    rn_loggen_zipf_init(&g.item_zipf, o->items, o->item_zipf);
    rn_loggen_perm_init(&g.user_perm, o->users, &setup);
    rn_loggen_perm_init(&g.item_perm, o->items, &setup);

    uint32_t k = (uint32_t)o->k;
    g.ncand = (uint32_t)(2 * o->k < o->items ? 2 * o->k : o->items);
    g.slots.k = k;
    g.cand = rn_loggen_xrealloc(NULL, g.ncand * sizeof(*g.cand));
    g.weights = rn_loggen_xrealloc(NULL, k * sizeof(*g.weights));
    g.late_base = (int64_t)(o->out_of_order * 10 > 60000 ? o->out_of_order * 10 : 60000);

    /* The longest line: fixed fields and a context under 256 bytes, each listed item at most
     * 14 bytes ("i2000000000", a comma), each propensity 6, spoiling a few more. */
    g.max_line = 512 + (size_t)g.ncand * 16 + (size_t)k * 8;
    g.cap = RN_LOGGEN_OUTBUF > 4 * g.max_line ? RN_LOGGEN_OUTBUF : 4 * g.max_line;
    g.buf = rn_loggen_xrealloc(NULL, g.cap);

    if (o->out) {
        g.out = fopen(o->out, "wb");
        if (!g.out) {
            fprintf(stderr, "loggen: cannot open %s: %s\n", o->out, strerror(errno));
            return 1;
        }
    } else {
        g.out = stdout;
    }

    rn_loggen_run(&g);
    rn_loggen_flush(&g);
    if (fflush(g.out) != 0 || ferror(g.out) || (o->out && fclose(g.out) != 0)) {
        fprintf(stderr, "loggen: write to %s failed: %s\n", o->out ? o->out : "stdout",
                strerror(errno));
        return 1;
    }

    uint64_t bad = g.lines - g.good;
    fprintf(stderr, "loggen: lines=%llu good=%llu bad=%llu", (unsigned long long)g.lines,
            (unsigned long long)g.good, (unsigned long long)bad);
    for (int i = 0; i < RN_LG_BAD_KINDS; i++)
        fprintf(stderr, " %s=%llu", rn_loggen_bad_names[i], (unsigned long long)g.bad_count[i]);
    fputc('\n', stderr);

    rn_loggen_zipf_destroy(&g.user_zipf);
    rn_loggen_zipf_destroy(&g.item_zipf);
    free(g.heap.v);
    free(g.slots.items);
    free(g.slots.props);
    free(g.slots.free);
    free(g.cand);
    free(g.weights);
    free(g.buf);
    return 0;
}
