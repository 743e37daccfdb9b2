/*
 * test_primitives.c — the small building blocks of runtime/rn_common.c and
 * rn_config.c that everything else trusts.
 *
 *   numbers   rn_json_i64/u64 against rn_parse_i64 and strtoull at every
 *             edge (limits, powers of ten and their neighbours) and on
 *             random values; rn_json_f64 round-trips through strtod and
 *             rn_parse_f64 for edge doubles, short decimals and 400,000
 *             random bit patterns, always as valid JSON, never longer than
 *             17 significant digits, NaN and infinities as null
 *   utf8      rn_utf8_check against an independent decoder written from the
 *             Unicode table of well-formed byte sequences: every 1-, 2- and
 *             3-byte string (not led by ASCII), 400,000 random 4-byte strings, overlong forms,
 *             surrogates, code points past U+10FFFF, sequences cut short at
 *             the end of the buffer, and the offset it reports at every
 *             position around the eight-byte ASCII fast path
 *   arena     8-byte alignment, no two allocations overlapping (each filled
 *             and checked after thousands more), allocations larger than a
 *             chunk, used_total, reset and reuse, destroy
 *   bounded   a sink's loop with rn_buf_full_for/rn_buf_note_room: records of
 *             growing and mixed sizes, strings that need escaping, written
 *             out between records: the buffer never grows past its limit
 *             (the capacity stays the first power of two at or above it)
 *             and the bytes written are those of one unbounded buffer
 */
#include "rn_test.h"

#include "rn_common.h"
#include "rn_config.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>

/* A deterministic generator (splitmix64), so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- numbers ------------------------------------------------------------- */

static int int_fail;

static void check_i64(int64_t v)
{
    struct rn_buf b = RN_BUF_INIT;
    rn_json_i64(&b, v);
    rn_buf_putc(&b, '\0');
    char want[32];
    snprintf(want, sizeof want, "%" PRId64, v);
    int64_t back = 0;
    if (strcmp(b.data, want) != 0 || rn_parse_i64(b.data, &back) != 0 || back != v) {
        if (int_fail++ < 5) fprintf(stderr, "i64 %s: wrote '%s'\n", want, b.data);
    }
    rn_buf_free(&b);
}

static void check_u64(uint64_t v)
{
    struct rn_buf b = RN_BUF_INIT;
    rn_json_u64(&b, v);
    rn_buf_putc(&b, '\0');
    char want[32];
    snprintf(want, sizeof want, "%" PRIu64, v);
    if (strcmp(b.data, want) != 0 || strtoull(b.data, NULL, 10) != v) {
        if (int_fail++ < 5) fprintf(stderr, "u64 %s: wrote '%s'\n", want, b.data);
    }
    rn_buf_free(&b);
}

static void test_integers(void)
{
    static const int64_t edges[] = {0,
                                    1,
                                    -1,
                                    9,
                                    10,
                                    -10,
                                    INT64_MAX,
                                    INT64_MIN,
                                    INT64_MAX - 1,
                                    INT64_MIN + 1,
                                    INT32_MAX,
                                    INT32_MIN,
                                    (int64_t)1 << 53,
                                    -((int64_t)1 << 53)};
    for (size_t i = 0; i < RN_ARRAY_LEN(edges); i++)
        check_i64(edges[i]);
    /* Every power of ten and its neighbours, both signs. */
    for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10) {
        for (int64_t d = -1; d <= 1; d++) {
            check_i64(p + d);
            check_i64(-(p + d));
            check_u64((uint64_t)(p + d));
        }
    }
    check_u64(UINT64_MAX);
    check_u64(UINT64_MAX - 1);
    check_u64(10000000000000000000ULL);
    for (int i = 0; i < 50000; i++) {
        uint64_t r = rnd();
        check_u64(r);
        check_u64(r >> (r & 63)); /* short ones too */
        check_i64((int64_t)r);
        check_i64((int64_t)r >> (r & 63));
    }
    CHECK_EQ_INT(int_fail, 0);

    /* The parser refuses what is not a whole integer in range. */
    int64_t v;
    static const char *const bad[] = {"",
                                      "-",
                                      "+",
                                      "1x",
                                      "x1",
                                      " 1",
                                      "1 ",
                                      "1.0",
                                      "1e3",
                                      "9223372036854775808",
                                      "-9223372036854775809",
                                      "99999999999999999999"};
    for (size_t i = 0; i < RN_ARRAY_LEN(bad); i++)
        CHECK(rn_parse_i64(bad[i], &v) != 0);
}

/* JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number(const char *s)
{
    if (*s == '-') s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return 0;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9')) return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!(*s >= '0' && *s <= '9')) return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static int significant_digits(const char *s)
{
    int n = 0, leading = 1;
    for (; *s && *s != 'e' && *s != 'E'; s++) {
        if (*s < '0' || *s > '9') continue;
        if (*s == '0' && leading) continue;
        leading = 0;
        n++;
    }
    return n;
}

static int f64_fail, f64_checked;

static void check_f64(double v)
{
    struct rn_buf b = RN_BUF_INIT;
    rn_json_f64(&b, v);
    rn_buf_putc(&b, '\0');
    f64_checked++;
    int ok;
    if (!isfinite(v)) {
        ok = strcmp(b.data, "null") == 0;
    } else {
        double back = strtod(b.data, NULL), parsed = NAN;
        /* rn_parse_f64 (YAML values) refuses what strtod flags as out of
         * range, which includes the subnormals; the others must read back. */
        int normal = v == 0 || fabs(v) >= DBL_MIN;
        int prc = rn_parse_f64(b.data, &parsed);
        ok = json_number(b.data) && back == v && significant_digits(b.data) <= 17 &&
             (normal ? prc == 0 && parsed == v : 1);
    }
    if (!ok && f64_fail++ < 5) fprintf(stderr, "f64 %.17g (%a): wrote '%s'\n", v, v, b.data);
    rn_buf_free(&b);
}

static void test_doubles(void)
{
    static const double edges[] = {0.0,
                                   -0.0,
                                   1.0,
                                   -1.0,
                                   0.1,
                                   -0.1,
                                   0.5,
                                   1.5,
                                   2.5,
                                   1e15,
                                   -1e15,
                                   1e15 - 1,
                                   1e15 + 1,
                                   1e16,
                                   1e21,
                                   1e22,
                                   1e23,
                                   1e-7,
                                   1e-5,
                                   123456789.123456789,
                                   0.30000000000000004,
                                   DBL_MAX,
                                   -DBL_MAX,
                                   DBL_MIN,
                                   -DBL_MIN,
                                   DBL_EPSILON,
                                   4.9406564584124654e-324,
                                   2.2250738585072009e-308,
                                   9007199254740991.0,
                                   9007199254740993.0,
                                   18446744073709551616.0,
                                   9223372036854775808.0,
                                   -9223372036854775808.0,
                                   999999999.9999999,
                                   0.000001,
                                   1e9 - 0.5,
                                   1e9 + 0.5};
    for (size_t i = 0; i < RN_ARRAY_LEN(edges); i++) {
        check_f64(edges[i]);
        check_f64(nextafter(edges[i], INFINITY));
        check_f64(nextafter(edges[i], -INFINITY));
    }
    check_f64(NAN);
    check_f64(INFINITY);
    check_f64(-INFINITY);
    /* -0 is written as 0: JSON readers would lose the sign anyway. */
    struct rn_buf b = RN_BUF_INIT;
    rn_json_f64(&b, -0.0);
    rn_buf_putc(&b, '\0');
    CHECK(strcmp(b.data, "0") == 0);
    rn_buf_free(&b);

    /* Short decimals, as people and programs write them: i / 10^k, the path
     * that prints by integer arithmetic. */
    for (int k = 0; k <= 9; k++) {
        double p = pow(10, k);
        for (int i = -3000; i <= 3000; i++)
            check_f64(i / p);
        for (int i = 0; i < 3000; i++)
            check_f64((double)(rnd() % 2000000000) / p);
    }
    /* Random bit patterns: every exponent, subnormals included. */
    for (int i = 0; i < 400000; i++) {
        uint64_t bits = rnd();
        double v;
        memcpy(&v, &bits, sizeof v);
        check_f64(v);
    }
    /* Random values in the ranges event fields hold (amounts, propensities). */
    for (int i = 0; i < 200000; i++) {
        check_f64((double)(rnd() >> 11) / 9007199254740992.0);
        check_f64((double)(rnd() >> 11) / 9007199254740992.0 * 1e6);
    }
    CHECK_EQ_INT(f64_fail, 0);
    CHECK(f64_checked > 500000);
}

/* ---- UTF-8 --------------------------------------------------------------- */

/* Length of the well-formed sequence at s (Unicode 15, table 3-7), or 0. */
static size_t wellformed(const unsigned char *s, size_t n)
{
    static const struct {
        unsigned char lo[4], hi[4];
        size_t len;
    } rows[] = {
        {{0x00}, {0x7f}, 1},
        {{0xc2, 0x80}, {0xdf, 0xbf}, 2},
        {{0xe0, 0xa0, 0x80}, {0xe0, 0xbf, 0xbf}, 3},
        {{0xe1, 0x80, 0x80}, {0xec, 0xbf, 0xbf}, 3},
        {{0xed, 0x80, 0x80}, {0xed, 0x9f, 0xbf}, 3},
        {{0xee, 0x80, 0x80}, {0xef, 0xbf, 0xbf}, 3},
        {{0xf0, 0x90, 0x80, 0x80}, {0xf0, 0xbf, 0xbf, 0xbf}, 4},
        {{0xf1, 0x80, 0x80, 0x80}, {0xf3, 0xbf, 0xbf, 0xbf}, 4},
        {{0xf4, 0x80, 0x80, 0x80}, {0xf4, 0x8f, 0xbf, 0xbf}, 4},
    };
    for (size_t r = 0; r < RN_ARRAY_LEN(rows); r++) {
        if (s[0] < rows[r].lo[0] || s[0] > rows[r].hi[0]) continue;
        if (n < rows[r].len) return 0;
        for (size_t i = 1; i < rows[r].len; i++)
            if (s[i] < rows[r].lo[i] || s[i] > rows[r].hi[i]) return 0;
        return rows[r].len;
    }
    return 0;
}

/* The offset of the first byte not in a well-formed sequence, or -1. */
static long reference_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t l = wellformed(s + i, n - i);
        if (!l) return (long)i;
        i += l;
    }
    return -1;
}

static void test_utf8(void)
{
    long mismatches = 0;
    unsigned char s[24];
    /* Every string of one, two and three bytes. */
    for (uint32_t v = 0; v < 256; v++) {
        s[0] = (unsigned char)v;
        mismatches += rn_utf8_check(s, 1) != reference_check(s, 1);
    }
    for (uint32_t v = 0; v < 65536; v++) {
        s[0] = (unsigned char)(v >> 8);
        s[1] = (unsigned char)v;
        mismatches += rn_utf8_check(s, 2) != reference_check(s, 2);
    }
    /* (An ASCII first byte leaves a two-byte string, covered above.) */
    for (uint32_t v = 0x800000; v < (1u << 24); v++) {
        s[0] = (unsigned char)(v >> 16);
        s[1] = (unsigned char)(v >> 8);
        s[2] = (unsigned char)v;
        mismatches += rn_utf8_check(s, 3) != reference_check(s, 3);
    }
    /* Four-byte strings led by F0-F4 (and a few others) with random tails. */
    for (int i = 0; i < 400000; i++) {
        uint64_t r = rnd();
        s[0] = (unsigned char)(0xee + (r & 7)); /* EE..F5 */
        s[1] = (unsigned char)(r >> 8);
        s[2] = (unsigned char)(r >> 16);
        s[3] = (unsigned char)(r >> 24);
        if (r & (1ull << 40)) { /* mostly continuation bytes, to reach deep */
            s[1] = (unsigned char)(0x80 | (s[1] & 0x3f));
            s[2] = (unsigned char)(0x80 | (s[2] & 0x3f));
            s[3] = (unsigned char)(0x80 | (s[3] & 0x3f));
        }
        mismatches += rn_utf8_check(s, 4) != reference_check(s, 4);
    }
    CHECK_EQ_INT(mismatches, 0);

    /* Named cases, with the offset reported. */
    static const struct {
        const char *bytes;
        long at;
    } cases[] = {
        {"plain ascii", -1},
        {"caf\xc3\xa9", -1},      /* é */
        {"\xe2\x82\xac", -1},     /* € */
        {"\xf0\x9f\x98\x80", -1}, /* 😀 */
        {"\xf4\x8f\xbf\xbf", -1}, /* U+10FFFF */
        {"ab\xc0\x80", 2},        /* overlong NUL */
        {"\xc1\xbf", 0},          /* overlong 0x7F */
        {"\xe0\x80\xaf", 0},      /* overlong '/' */
        {"\xe0\x9f\xbf", 0},      /* overlong U+07FF */
        {"\xf0\x8f\xbf\xbf", 0},  /* overlong U+FFFF */
        {"x\xed\xa0\x80", 1},     /* U+D800, a surrogate */
        {"\xed\xbf\xbf", 0},      /* U+DFFF */
        {"\xed\x9f\xbf", -1},     /* U+D7FF, just below */
        {"\xf4\x90\x80\x80", 0},  /* U+110000 */
        {"\xf5\x80\x80\x80", 0},  /* never a lead byte */
        {"\xff", 0},
        {"\x80", 0},   /* a lone continuation */
        {"ok\xc3", 2}, /* cut short at the end */
        {"ok\xe2\x82", 2},
        {"ok\xf0\x9f\x98", 2},
        {"\xe2\x28\xa1", 0},     /* bad second byte */
        {"\xf0\x9f\x98\x28", 0}, /* bad fourth byte */
    };
    for (size_t i = 0; i < RN_ARRAY_LEN(cases); i++) {
        long got = rn_utf8_check(cases[i].bytes, strlen(cases[i].bytes));
        if (got != cases[i].at)
            fprintf(stderr, "utf8 case %zu: offset %ld, want %ld\n", i, got, cases[i].at);
        CHECK_EQ_INT(got, cases[i].at);
        CHECK_EQ_INT(rn_utf8_valid(cases[i].bytes, strlen(cases[i].bytes)), cases[i].at < 0);
    }
    /* A NUL byte is valid UTF-8 (the length, not a terminator, ends the text). */
    CHECK_EQ_INT(rn_utf8_check("a\0b", 3), -1);

    /* The eight-byte ASCII fast path: a bad byte at every offset of a
     * 40-byte buffer is found at that offset, a good two-byte sequence
     * anywhere passes, and a sequence cut by the buffer's end fails. */
    unsigned char buf[40];
    for (size_t at = 0; at < sizeof buf; at++) {
        memset(buf, 'a', sizeof buf);
        buf[at] = 0xff;
        CHECK_EQ_INT(rn_utf8_check(buf, sizeof buf), (long)at);
        memset(buf, 'a', sizeof buf);
        if (at + 1 < sizeof buf) {
            buf[at] = 0xc3;
            buf[at + 1] = 0xa9;
            CHECK_EQ_INT(rn_utf8_check(buf, sizeof buf), -1);
            CHECK_EQ_INT(rn_utf8_check(buf, at + 1), (long)at); /* cut after the lead */
        }
    }
    /* Random mixes of good sequences and bad bytes against the reference. */
    mismatches = 0;
    static const char *const pieces[] = {"a",
                                         "abcdefgh",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "\xed\xa0\x80",
                                         "\xc0\x80",
                                         "\x80",
                                         "\xf4\x90\x80\x80",
                                         "\xe2\x82"};
    unsigned char mix[96];
    for (int i = 0; i < 50000; i++) {
        size_t n = 0;
        uint64_t r = rnd();
        while (n < 80) {
            /* Mostly good pieces, so that bad ones land at many offsets. */
            size_t k = (r & 15) < 13 ? (r & 3) % 5 + (r & 4 ? 1 : 0) : 5 + (r >> 4) % 5;
            const char *pc = pieces[k % RN_ARRAY_LEN(pieces)];
            size_t l = strlen(pc);
            memcpy(mix + n, pc, l);
            n += l;
            r = r >> 7 ? r >> 7 : rnd();
        }
        mismatches += rn_utf8_check(mix, n) != reference_check(mix, n);
    }
    CHECK_EQ_INT(mismatches, 0);
}

/* ---- arena --------------------------------------------------------------- */

static void test_arena(void)
{
    struct rn_arena a;
    rn_arena_init(&a, 1024);
    enum { N = 5000 };
    static unsigned char *ptr[N];
    static size_t len[N];
    size_t total = 0;
    int misaligned = 0, damaged = 0;
    for (int round = 0; round < 3; round++) {
        total = 0;
        for (int i = 0; i < N; i++) {
            /* Mostly small, some past the chunk size, some empty. */
            size_t n = i % 97 == 0 ? 3000 + (size_t)(rnd() % 5000) : (size_t)(rnd() % 41);
            ptr[i] = rn_arena_alloc(&a, n);
            len[i] = n;
            if (((uintptr_t)ptr[i] & 7) != 0) misaligned++;
            memset(ptr[i], (unsigned char)(i * 31 + round), n);
            total += (n + 7) & ~(size_t)7;
        }
        /* Every allocation still holds its own pattern: none overlapped. */
        for (int i = 0; i < N; i++)
            for (size_t k = 0; k < len[i]; k++)
                if (ptr[i][k] != (unsigned char)(i * 31 + round)) {
                    damaged++;
                    break;
                }
        CHECK_EQ_INT(a.used_total, total);
        rn_arena_reset(&a);
        CHECK_EQ_INT(a.used_total, 0);
    }
    CHECK_EQ_INT(misaligned, 0);
    CHECK_EQ_INT(damaged, 0);

    /* After a reset the kept chunk is reused from its start. */
    void *p1 = rn_arena_alloc(&a, 8);
    rn_arena_reset(&a);
    void *p2 = rn_arena_alloc(&a, 8);
    CHECK(p1 == p2);
    rn_arena_destroy(&a);
    CHECK(a.head == NULL);
    CHECK_EQ_INT(a.used_total, 0);
    /* A destroyed arena can be used again (it starts a new chunk). */
    unsigned char *q = rn_arena_alloc(&a, 100);
    memset(q, 1, 100);
    CHECK_EQ_INT(a.used_total, 104);
    rn_arena_destroy(&a);

    /* chunk_size 0 means the default; one allocation far larger than it. */
    rn_arena_init(&a, 0);
    CHECK(a.chunk_size > 0);
    unsigned char *big = rn_arena_alloc(&a, 10u << 20);
    memset(big, 2, 10u << 20);
    unsigned char *small = rn_arena_alloc(&a, 16);
    CHECK(small + 16 <= big || small >= big + (10u << 20));
    rn_arena_destroy(&a);
}

/* ---- a buffer written out within a limit ---------------------------------- */

static void test_bounded(void)
{
    const size_t limit = 4096;
    struct rn_buf b = RN_BUF_INIT, all = RN_BUF_INIT, out = RN_BUF_INIT;
    size_t room = 0, max_cap = 0, writes = 0;
    char s[600];
    for (int i = 0; i < 3000; i++) {
        /* Mostly short strings, some long, lengths growing over the run;
         * every seventh a control character that the writer escapes. */
        size_t n = (size_t)(rnd() % 40) + (i % 50 == 0 ? (size_t)i / 6 : 0);
        if (n > sizeof s) n = sizeof s;
        for (size_t k = 0; k < n; k++) s[k] = (char)('a' + (k + (size_t)i) % 26);
        if (n && i % 7 == 0) s[n / 2] = '\n';
        if (rn_buf_full_for(&b, limit, room)) {
            rn_buf_append(&out, b.data, b.len);
            rn_buf_reset(&b);
            writes++;
        }
        size_t start = b.len;
        RN_BUF_LIT(&b, "{\"s\":");
        rn_json_str(&b, s, n);
        RN_BUF_LIT(&b, "}\n");
        rn_buf_note_room(&b, start, &room);
        if (b.cap > max_cap) max_cap = b.cap;
        RN_BUF_LIT(&all, "{\"s\":");
        rn_json_str(&all, s, n);
        RN_BUF_LIT(&all, "}\n");
    }
    rn_buf_append(&out, b.data, b.len);
    CHECK(max_cap <= limit);
    CHECK(writes > 10);
    CHECK_EQ_INT(out.len, all.len);
    CHECK(out.len == all.len && memcmp(out.data, all.data, all.len) == 0);
    /* An empty buffer is never full: a record larger than the limit is
     * written alone. */
    rn_buf_reset(&b);
    CHECK(!rn_buf_full_for(&b, limit, 10 * limit));
    rn_buf_free(&b);
    rn_buf_free(&all);
    rn_buf_free(&out);
}

int main(void)
{
    test_integers();
    test_doubles();
    test_utf8();
    test_arena();
    test_bounded();
    return rn_test_summary();
}
