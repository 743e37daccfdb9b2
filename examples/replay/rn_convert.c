/*
 * rn_convert.c — turns real logged data into runnel's event stream (JSON lines, the
 * "Event formats" of product.md), so that real logs can be replayed through a job.
 *
 *   rn_convert obd FILE.csv [--out PATH] [--item-context PATH]
 *   rn_convert movietweetings ratings.dat [--out PATH] [--click-threshold 7]
 *   rn_convert obd-items item_context.csv [--out PATH] [--buckets 64]
 *
 * Open Bandit Dataset (Saito et al., arXiv:2008.07146).  One CSV row is one item shown at
 * one position (1-3) with its logging propensity and a click flag.  The header names the
 * columns; those used are the unnamed first column (the row index), `timestamp`, `item_id`,
 * `position`, `click`, `propensity_score` and every `user_feature_*`.  Each row becomes
 *
 *   {"type":"request","ts":T,"request":"obd-<row index>","user":"ou<hash>","candidates":[..]}
 *   {"type":"impression","ts":T+1,...,"items":["i<item_id>"],"propensities":[p],
 *    "model_version":0,"positions":[<position>]}
 *   {"type":"click","ts":T+3,...,"item":"i<item_id>"}            (only when click == 1)
 *
 * T is the row's `timestamp` in epoch milliseconds.  OBD writes it as pandas does,
 * `2019-11-24 00:03:13.442536+00:00`: ISO 8601 date and time with a space (or `T`),
 * optional fraction of a second (truncated to the millisecond) and an optional UTC offset
 * (`Z`, `+HH:MM`, `+HHMM`; none means UTC).  The user id is "ou" and 16 hex digits: the
 * 64-bit FNV-1a hash of the user-feature strings joined by a unit separator.  OBD has no
 * user ids; its four hashed user features are categorical, so an "ou" user is a segment
 * of users who share them (230 of them in the 10,000-row `random/men` sample).  A 64-bit
 * hash keeps the ids short; two feature tuples collide with probability about n^2 / 2^65.
 * The candidates are every item of the campaign: the distinct item ids in the file, plus
 * those of `--item-context` (OBD's item_context.csv) when given, in ascending order.  The
 * impression carries the row's position in an extra field `positions` (the pipeline
 * ignores fields it does not know), because OBD logs one item per row and so the position
 * cannot be the index in `items`.  Rows are taken in (timestamp, row index) order.
 *
 * OBD items.  `obd-items` turns OBD's item_context.csv into an item-embedding table
 * (`i<item_id> v1 ... vD` lines, the format of the learner's `embeddings`): numeric
 * features standardised, categorical ones one-hot (see rn_cv_obd_items).
 *
 * MovieTweetings (Dooms et al., CrowdRec 2013).  Lines `user_id::movie_id::rating::ts`
 * (Unix seconds, ratings 0-10).  The ratings a user made in the same second form one
 * request "mt-<user>-<ts>" by user "mu<user>", whose candidates and impression are the
 * rated movies ("m<movie_id>", in file order, leading zeros kept), and each rating at or
 * above --click-threshold (default 7) is a click on its movie.  The request is at ts*1000,
 * the impression 1 ms later, the clicks 1 ms after the impression.  The propensities are
 * 1/n for n movies: a placeholder to keep the format uniform, NOT a logging propensity.
 * MovieTweetings records what people chose to rate, not what a policy showed them, so it
 * must not be used for off-policy (inverse-propensity) estimates.
 *
 * Order.  The output is in non-decreasing `ts`: the units (rows, or rating groups) are
 * sorted by time, and the request, impression and click streams, each sorted by
 * construction, are merged; ties go to the earlier unit, then request < impression <
 * click.  The same input always gives the same bytes.
 *
 * Bad input.  A malformed row or line is reported on stderr as FILE:LINE: reason (the
 * first 100 of them; the rest are counted), skipped and counted; a duplicate OBD row index
 * counts as malformed, since request ids must be unique.  The whole file is read into
 * memory and converted before anything is written; the output goes to PATH.tmp, renamed
 * to PATH at the end, so a failed run never leaves a half-written log where a job reads.
 * A summary line goes to stderr.  Exit status: 0 when at least one row was converted, 1
 * when none was (or on an I/O error), 2 on a usage error.
 *
 * C11 and its libc only (CMake links libm, as for rn_loggen).
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RN_CV_MAX_SHOWN 100              /* malformed lines reported one by one */
#define RN_CV_MAX_TS_MS 32503680000000LL /* year 3000, log_collector's default max_ts */
#define RN_CV_MAX_ITEMS_DEFAULT 1000     /* log_collector's default max_items */
#define RN_CV_OUTBUF (1u << 20)

/* ---------------------------------------------------------------------------------------
 * Small helpers: allocation that cannot fail silently, reading a whole file.
 */

static void *rn_cv_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "rn_convert: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return q;
}

static void *rn_cv_xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "rn_convert: out of memory (%zu x %zu bytes)\n", n, sz);
        exit(1);
    }
    return p;
}

/* Grows *arr (elements of size sz) so that it holds at least need elements. */
static void rn_cv_grow(void **arr, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap) return;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    *arr = rn_cv_xrealloc(*arr, n * sz);
    *cap = n;
}

/* Reads the whole of path ("-": stdin) into a NUL-terminated buffer that the caller owns.
 * Returns NULL with a message on stderr on failure. */
static char *rn_cv_read_file(const char *path, size_t *len_out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "rn_convert: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1u << 20, len = 0;
    char *buf = rn_cv_xrealloc(NULL, cap);
    for (;;) {
        if (cap - len < 2) buf = rn_cv_xrealloc(buf, cap *= 2);
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
    }
    int err = ferror(f);
    if (f != stdin) fclose(f);
    if (err) {
        fprintf(stderr, "rn_convert: cannot read '%s'\n", path);
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    *len_out = len;
    return buf;
}

/* Iterates over the lines of buf: returns the next line (without '\n' or a trailing '\r')
 * or NULL at the end.  A final line without '\n' counts; an empty file has no lines. */
struct rn_cv_lines {
    char *p, *end;
    uint64_t lineno;
};

static char *rn_cv_next_line(struct rn_cv_lines *it, size_t *len)
{
    if (it->p >= it->end) return NULL;
    char *s = it->p;
    char *nl = memchr(s, '\n', (size_t)(it->end - s));
    char *e = nl ? nl : it->end;
    it->p = nl ? nl + 1 : it->end;
    if (e > s && e[-1] == '\r') e--;
    *e = 0;
    *len = (size_t)(e - s);
    it->lineno++;
    return s;
}

/* ---------------------------------------------------------------------------------------
 * Reporting malformed input: FILE:LINE: reason, the first RN_CV_MAX_SHOWN of them.
 */

struct rn_cv_report {
    const char *path;
    uint64_t malformed;
};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
rn_cv_bad(struct rn_cv_report *r, uint64_t lineno, const char *fmt, ...)
{
    r->malformed++;
    if (r->malformed > RN_CV_MAX_SHOWN) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%llu: ", r->path, (unsigned long long)lineno);
    vfprintf(stderr, fmt, ap);
    fputs(" (skipped)\n", stderr);
    va_end(ap);
}

static void rn_cv_report_end(const struct rn_cv_report *r)
{
    if (r->malformed > RN_CV_MAX_SHOWN)
        fprintf(stderr, "%s: %llu more malformed lines not shown\n", r->path,
                (unsigned long long)(r->malformed - RN_CV_MAX_SHOWN));
}

/* A printable copy of a field for a message: at most 40 bytes, other bytes as '?'.
 * Returns buf (caller's, at least 48 bytes). */
static const char *rn_cv_show(const char *s, size_t n, char *buf)
{
    size_t k = n > 40 ? 40 : n, j = 0;
    for (size_t i = 0; i < k; i++)
        buf[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (n > k) buf[j++] = '.', buf[j++] = '.', buf[j++] = '.';
    buf[j] = 0;
    return buf;
}

/* ---------------------------------------------------------------------------------------
 * Parsing numbers and times strictly: the whole field, nothing else.
 */

/* A decimal integer of up to 18 digits (optional leading '-' when neg_ok). */
static int rn_cv_parse_i64(const char *s, size_t n, int neg_ok, int64_t *out)
{
    int neg = 0;
    if (n && s[0] == '-' && neg_ok) neg = 1, s++, n--;
    if (n == 0 || n > 18) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

/* A finite decimal floating-point number (strtod syntax, no hex, no inf/nan). */
static int rn_cv_parse_double(const char *s, size_t n, double *out)
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+'))
            return -1;
    }
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end != tmp + n || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t rn_cv_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int rn_cv_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Parses "YYYY-MM-DD[ T]HH:MM:SS[.frac][Z|(+|-)HH[:]MM]" into epoch microseconds (no
 * offset: UTC).  Returns 0, or -1 with *why set. */
static int rn_cv_parse_time(const char *s, size_t n, int64_t *us_out, const char **why)
{
    int y, mo, d, h, mi, sec;
    *why = "timestamp is not 'YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]'";
    if (n < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' ||
        s[16] != ':')
        return -1;
    if (rn_cv_digits(s, 4, &y) || rn_cv_digits(s + 5, 2, &mo) || rn_cv_digits(s + 8, 2, &d) ||
        rn_cv_digits(s + 11, 2, &h) || rn_cv_digits(s + 14, 2, &mi) ||
        rn_cv_digits(s + 17, 2, &sec))
        return -1;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    *why = "timestamp has a field out of range";
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 59)
        return -1;
    size_t i = 19;
    int64_t frac_us = 0;
    *why = "timestamp has a malformed fraction of a second";
    if (i < n && s[i] == '.') {
        i++;
        size_t k = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (k < 6) frac_us = frac_us * 10 + (s[i] - '0');
            i++, k++;
        }
        if (k == 0 || k > 9) return -1;
        for (; k < 6; k++)
            frac_us *= 10;
    }
    int64_t off_s = 0;
    *why = "timestamp has a malformed UTC offset";
    if (i < n && s[i] == 'Z') {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1, oh, om;
        i++;
        if (n - i == 5 && s[i + 2] == ':') {
            if (rn_cv_digits(s + i, 2, &oh) || rn_cv_digits(s + i + 3, 2, &om)) return -1;
            i += 5;
        } else if (n - i == 4) {
            if (rn_cv_digits(s + i, 2, &oh) || rn_cv_digits(s + i + 2, 2, &om)) return -1;
            i += 4;
        } else {
            return -1;
        }
        if (oh > 23 || om > 59) return -1;
        off_s = sign * (oh * 3600 + om * 60);
    }
    *why = "timestamp has trailing characters";
    if (i != n) return -1;
    int64_t secs = rn_cv_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
    int64_t us = secs * 1000000 + frac_us;
    *why = "timestamp is before 1970 or after 2999";
    if (us < 0 || us / 1000 > RN_CV_MAX_TS_MS - 10) return -1;
    *us_out = us;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Hashing: FNV-1a for user names, and a set of 64-bit keys with a 32-bit value.
 */

static uint64_t rn_cv_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define RN_CV_FNV_INIT 0xcbf29ce484222325ull

static uint64_t rn_cv_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

struct rn_cv_map {
    uint64_t *keys;
    uint32_t *vals;
    unsigned char *used;
    size_t cap, n; /* cap: a power of two */
};

/* Looks key up; when absent, inserts it with val.  Returns a pointer to the stored value
 * and sets *found.  The pointer is valid until the next insertion. */
static uint32_t *rn_cv_map_put(struct rn_cv_map *m, uint64_t key, uint32_t val, int *found)
{
    if ((m->n + 1) * 2 > m->cap) {
        struct rn_cv_map old = *m;
        m->cap = old.cap ? old.cap * 2 : 1024;
        m->keys = rn_cv_xrealloc(NULL, m->cap * sizeof *m->keys);
        m->vals = rn_cv_xrealloc(NULL, m->cap * sizeof *m->vals);
        m->used = rn_cv_xcalloc(m->cap, 1);
        m->n = 0;
        for (size_t i = 0; i < old.cap; i++) {
            int f;
            if (old.used[i]) rn_cv_map_put(m, old.keys[i], old.vals[i], &f);
        }
        free(old.keys);
        free(old.vals);
        free(old.used);
    }
    size_t i = rn_cv_mix(key) & (m->cap - 1);
    while (m->used[i]) {
        if (m->keys[i] == key) {
            *found = 1;
            return &m->vals[i];
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->used[i] = 1;
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    *found = 0;
    return &m->vals[i];
}

static void rn_cv_map_free(struct rn_cv_map *m)
{
    free(m->keys);
    free(m->vals);
    free(m->used);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------------------------------
 * Output: a buffer flushed to the file in large writes; numbers formatted by hand.
 */

struct rn_cv_out {
    FILE *f;
    char *buf;
    size_t len;
    int err;
};

static void rn_cv_flush(struct rn_cv_out *o)
{
    if (o->len && fwrite(o->buf, 1, o->len, o->f) != o->len) o->err = 1;
    o->len = 0;
}

static void rn_cv_put(struct rn_cv_out *o, const char *s, size_t n)
{
    if (o->len + n > RN_CV_OUTBUF) {
        rn_cv_flush(o);
        if (n > RN_CV_OUTBUF) {
            if (fwrite(s, 1, n, o->f) != n) o->err = 1;
            return;
        }
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

#define RN_CV_LIT(o, s) rn_cv_put((o), (s), sizeof(s) - 1)

static void rn_cv_put_i64(struct rn_cv_out *o, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    rn_cv_put(o, tmp, (size_t)n);
}

/* The shortest %g form of v that reads back as the same double: a valid JSON number for
 * any finite v.  Returns its length; buf holds at least 32 bytes. */
static int rn_cv_fmt_double(char *buf, double v)
{
    int n = 0;
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(buf, 32, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return n;
}

/* Creates PATH.tmp (or uses stdout for NULL / "-").  Returns 0 or -1 with a message. */
static int rn_cv_out_open(struct rn_cv_out *o, const char *path, char **tmp_out)
{
    memset(o, 0, sizeof *o);
    *tmp_out = NULL;
    if (!path || strcmp(path, "-") == 0) {
        o->f = stdout;
    } else {
        size_t n = strlen(path);
        char *tmp = rn_cv_xrealloc(NULL, n + 5);
        memcpy(tmp, path, n);
        memcpy(tmp + n, ".tmp", 5);
        o->f = fopen(tmp, "wb");
        if (!o->f) {
            fprintf(stderr, "rn_convert: cannot create '%s': %s\n", tmp, strerror(errno));
            free(tmp);
            return -1;
        }
        *tmp_out = tmp;
    }
    o->buf = rn_cv_xrealloc(NULL, RN_CV_OUTBUF);
    return 0;
}

/* Flushes and closes; renames PATH.tmp to PATH on success, removes it on failure.
 * Frees tmp.  Returns 0 or -1 with a message. */
static int rn_cv_out_close(struct rn_cv_out *o, const char *path, char *tmp)
{
    rn_cv_flush(o);
    free(o->buf);
    if (fflush(o->f) != 0) o->err = 1;
    if (o->f != stdout && fclose(o->f) != 0) o->err = 1;
    int rc = 0;
    if (o->err) {
        fprintf(stderr, "rn_convert: write error on '%s'\n", tmp ? tmp : "stdout");
        rc = -1;
    } else if (tmp && rename(tmp, path) != 0) {
        fprintf(stderr, "rn_convert: cannot rename '%s' to '%s': %s\n", tmp, path, strerror(errno));
        rc = -1;
    }
    if (rc != 0 && tmp) remove(tmp);
    free(tmp);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * The merge.  A unit (an OBD row, a MovieTweetings rating group) yields a request at ts,
 * an impression at ts + 1 and n_clicks clicks at ts + click_delay.  Units are sorted by
 * ts; the three streams are merged into one in non-decreasing ts.
 */

enum { RN_CV_REQUEST = 0, RN_CV_IMPRESSION = 1, RN_CV_CLICK = 2 };

struct rn_cv_unit {
    int64_t ts;   /* request time, epoch ms */
    uint32_t src; /* index into the format's own rows or groups */
    uint32_t n_clicks;
};

typedef void (*rn_cv_emit_fn)(void *ctx, struct rn_cv_out *o, int kind, const struct rn_cv_unit *u,
                              uint32_t click_no);

/* Writes every event of units[0..n) (sorted by ts) through emit.  Returns the count. */
static uint64_t rn_cv_merge(const struct rn_cv_unit *units, size_t n, int64_t click_delay,
                            rn_cv_emit_fn emit, void *ctx, struct rn_cv_out *o)
{
    const int64_t delay[3] = {0, 1, click_delay};
    size_t cur[3] = {0, 0, 0};
    uint32_t click_no = 0;
    uint64_t events = 0;
    while (cur[2] < n && units[cur[2]].n_clicks == 0)
        cur[2]++;
    for (;;) {
        int best = -1;
        for (int k = 0; k < 3; k++) {
            if (cur[k] >= n) continue;
            if (best < 0) {
                best = k;
                continue;
            }
            int64_t tk = units[cur[k]].ts + delay[k], tb = units[cur[best]].ts + delay[best];
            if (tk < tb || (tk == tb && cur[k] < cur[best])) best = k;
        }
        if (best < 0) break;
        const struct rn_cv_unit *u = &units[cur[best]];
        emit(ctx, o, best, u, best == RN_CV_CLICK ? click_no : 0);
        events++;
        if (best != RN_CV_CLICK) {
            cur[best]++;
        } else if (++click_no == u->n_clicks) {
            click_no = 0;
            do
                cur[2]++;
            while (cur[2] < n && units[cur[2]].n_clicks == 0);
        }
    }
    return events;
}

/* ---------------------------------------------------------------------------------------
 * CSV: fields split in place; a field may be double-quoted ("" inside is one quote).
 */

struct rn_cv_field {
    char *s;
    size_t n;
};

/* Splits line into fields (at most max).  Returns the count (which may exceed max: the
 * extra fields are counted, not stored), or -1 on an unterminated quote. */
static int rn_cv_csv_split(char *line, size_t len, struct rn_cv_field *f, int max)
{
    int nf = 0;
    size_t i = 0;
    for (;;) {
        char *start = line + i, *w = start;
        if (i < len && line[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) return -1;
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        *w++ = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                *w++ = line[i++];
            }
            if (i < len && line[i] != ',') return -1;
        } else {
            while (i < len && line[i] != ',')
                i++;
            w = line + i;
        }
        if (nf < max) f[nf] = (struct rn_cv_field){start, (size_t)(w - start)};
        nf++;
        if (i >= len) break;
        i++; /* the comma */
    }
    return nf;
}

/* ---------------------------------------------------------------------------------------
 * Open Bandit Dataset.
 */

#define RN_CV_OBD_MAX_COLS 4096
#define RN_CV_OBD_MAX_FEATURES 64

struct rn_cv_obd_row {
    int64_t ts_us;
    int64_t index; /* the row index column, or the data row's ordinal */
    uint64_t user;
    double prop;
    uint32_t item;
    uint32_t pos;
    uint32_t click;
    uint32_t order; /* position in the file, for a stable sort */
};

struct rn_cv_obd {
    struct rn_cv_obd_row *rows;
    size_t n_rows, cap_rows;
    char *candidates; /* the JSON array, shared by every request */
    size_t candidates_len;
};

static int rn_cv_obd_row_cmp(const void *pa, const void *pb)
{
    const struct rn_cv_obd_row *a = pa, *b = pb;
    if (a->ts_us != b->ts_us) return a->ts_us < b->ts_us ? -1 : 1;
    if (a->index != b->index) return a->index < b->index ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

static int rn_cv_u32_cmp(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return (a > b) - (a < b);
}

static void rn_cv_obd_ids(struct rn_cv_out *o, const struct rn_cv_obd_row *r)
{
    static const char hex[] = "0123456789abcdef";
    char u[18];
    RN_CV_LIT(o, "\"request\":\"obd-");
    rn_cv_put_i64(o, r->index);
    RN_CV_LIT(o, "\",\"user\":\"ou");
    for (int i = 0; i < 16; i++)
        u[i] = hex[(r->user >> (60 - 4 * i)) & 15];
    rn_cv_put(o, u, 16);
    RN_CV_LIT(o, "\"");
}

static void rn_cv_obd_emit(void *ctx, struct rn_cv_out *o, int kind, const struct rn_cv_unit *u,
                           uint32_t click_no)
{
    const struct rn_cv_obd *obd = ctx;
    const struct rn_cv_obd_row *r = &obd->rows[u->src];
    char num[32];
    (void)click_no;
    switch (kind) {
    case RN_CV_REQUEST:
        RN_CV_LIT(o, "{\"type\":\"request\",\"ts\":");
        rn_cv_put_i64(o, u->ts);
        RN_CV_LIT(o, ",");
        rn_cv_obd_ids(o, r);
        RN_CV_LIT(o, ",\"candidates\":");
        rn_cv_put(o, obd->candidates, obd->candidates_len);
        RN_CV_LIT(o, "}\n");
        break;
    case RN_CV_IMPRESSION:
        RN_CV_LIT(o, "{\"type\":\"impression\",\"ts\":");
        rn_cv_put_i64(o, u->ts + 1);
        RN_CV_LIT(o, ",");
        rn_cv_obd_ids(o, r);
        RN_CV_LIT(o, ",\"items\":[\"i");
        rn_cv_put_i64(o, r->item);
        RN_CV_LIT(o, "\"],\"propensities\":[");
        rn_cv_put(o, num, (size_t)rn_cv_fmt_double(num, r->prop));
        RN_CV_LIT(o, "],\"model_version\":0,\"positions\":[");
        rn_cv_put_i64(o, r->pos);
        RN_CV_LIT(o, "]}\n");
        break;
    default:
        RN_CV_LIT(o, "{\"type\":\"click\",\"ts\":");
        rn_cv_put_i64(o, u->ts + 3);
        RN_CV_LIT(o, ",");
        rn_cv_obd_ids(o, r);
        RN_CV_LIT(o, ",\"item\":\"i");
        rn_cv_put_i64(o, r->item);
        RN_CV_LIT(o, "\"}\n");
        break;
    }
}

/* Finds the column named name in the header (or -1). */
static int rn_cv_col(const struct rn_cv_field *h, int nh, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < nh; i++)
        if (h[i].n == n && memcmp(h[i].s, name, n) == 0) return i;
    return -1;
}

/* Skips a UTF-8 byte order mark at the start of a buffer. */
static char *rn_cv_skip_bom(char *buf, size_t *len)
{
    if (*len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
        *len -= 3;
        return buf + 3;
    }
    return buf;
}

/* Adds the item ids of an item_context.csv to items.  Any problem there is fatal: it is
 * a small metadata file, and a wrong candidate list would be silently wrong.  Returns 0
 * or -1 with a message. */
static int rn_cv_obd_item_context(const char *path, struct rn_cv_map *items)
{
    size_t len;
    char *buf = rn_cv_read_file(path, &len);
    if (!buf) return -1;
    char *data = rn_cv_skip_bom(buf, &len);
    struct rn_cv_lines it = {data, data + len, 0};
    struct rn_cv_field f[RN_CV_OBD_MAX_COLS];
    size_t n;
    char *line = rn_cv_next_line(&it, &n);
    int nh = line ? rn_cv_csv_split(line, n, f, RN_CV_OBD_MAX_COLS) : -1;
    int col = nh > 0 && nh <= RN_CV_OBD_MAX_COLS ? rn_cv_col(f, nh, "item_id") : -1;
    if (col < 0) {
        fprintf(stderr, "%s:1: no 'item_id' column in the header\n", path);
        free(buf);
        return -1;
    }
    while ((line = rn_cv_next_line(&it, &n))) {
        int64_t v;
        int nf = rn_cv_csv_split(line, n, f, RN_CV_OBD_MAX_COLS);
        if (nf != nh || rn_cv_parse_i64(f[col].s, f[col].n, 0, &v) || v > UINT32_MAX) {
            fprintf(stderr,
                    "%s:%llu: malformed row (expected %d fields with an integer "
                    "item_id)\n",
                    path, (unsigned long long)it.lineno, nh);
            free(buf);
            return -1;
        }
        int found;
        rn_cv_map_put(items, (uint64_t)v, 0, &found);
    }
    free(buf);
    return 0;
}

static int rn_cv_obd(const char *path, const char *out_path, const char *item_ctx)
{
    int rc = 1;
    size_t len;
    char *buf = rn_cv_read_file(path, &len);
    if (!buf) return 1;
    struct rn_cv_obd obd = {0};
    struct rn_cv_map items = {0}, users = {0}, indices = {0};
    struct rn_cv_unit *units = NULL;
    struct rn_cv_field *f = rn_cv_xrealloc(NULL, RN_CV_OBD_MAX_COLS * sizeof *f);
    struct rn_cv_report rep = {path, 0};
    uint64_t clicks = 0;

    /* The header names the columns. */
    char *data = rn_cv_skip_bom(buf, &len);
    struct rn_cv_lines it = {data, data + len, 0};
    size_t n;
    char *line = rn_cv_next_line(&it, &n);
    int nh = line ? rn_cv_csv_split(line, n, f, RN_CV_OBD_MAX_COLS) : -1;
    if (nh < 1 || nh > RN_CV_OBD_MAX_COLS) {
        fprintf(stderr, "%s:1: no CSV header\n", path);
        goto out;
    }
    int c_index = -1;
    if (f[0].n == 0 || rn_cv_col(f, 1, "Unnamed: 0") == 0 || rn_cv_col(f, 1, "index") == 0)
        c_index = 0;
    int c_ts = rn_cv_col(f, nh, "timestamp"), c_item = rn_cv_col(f, nh, "item_id");
    int c_pos = rn_cv_col(f, nh, "position"), c_click = rn_cv_col(f, nh, "click");
    int c_prop = rn_cv_col(f, nh, "propensity_score");
    if (c_prop < 0) c_prop = rn_cv_col(f, nh, "action_prob");
    int c_feat[RN_CV_OBD_MAX_FEATURES], n_feat = 0;
    for (int i = 0; i < nh && n_feat < RN_CV_OBD_MAX_FEATURES; i++)
        if (f[i].n > 13 && memcmp(f[i].s, "user_feature_", 13) == 0) c_feat[n_feat++] = i;
    const char *missing = c_ts < 0      ? "timestamp"
                          : c_item < 0  ? "item_id"
                          : c_pos < 0   ? "position"
                          : c_click < 0 ? "click"
                          : c_prop < 0  ? "propensity_score"
                          : n_feat == 0 ? "user_feature_0"
                                        : NULL;
    if (missing) {
        fprintf(stderr, "%s:1: not an Open Bandit Dataset CSV: no '%s' column\n", path, missing);
        goto out;
    }

    /* Rows. */
    uint64_t ordinal = 0;
    while ((line = rn_cv_next_line(&it, &n))) {
        char shown[48];
        uint64_t ln = it.lineno;
        int64_t v;
        if (n == 0) {
            rn_cv_bad(&rep, ln, "empty line");
            continue;
        }
        int nf = rn_cv_csv_split(line, n, f, RN_CV_OBD_MAX_COLS);
        if (nf < 0) {
            rn_cv_bad(&rep, ln, "unterminated quoted field");
            continue;
        }
        if (nf != nh) {
            rn_cv_bad(&rep, ln, "expected %d fields, got %d", nh, nf);
            continue;
        }
        struct rn_cv_obd_row r = {0};
        const char *why;
        if (c_index >= 0) {
            if (rn_cv_parse_i64(f[c_index].s, f[c_index].n, 0, &r.index)) {
                rn_cv_bad(&rep, ln, "row index is not a non-negative integer: '%s'",
                          rn_cv_show(f[c_index].s, f[c_index].n, shown));
                continue;
            }
        } else {
            r.index = (int64_t)ordinal;
        }
        if (rn_cv_parse_time(f[c_ts].s, f[c_ts].n, &r.ts_us, &why)) {
            rn_cv_bad(&rep, ln, "%s: '%s'", why, rn_cv_show(f[c_ts].s, f[c_ts].n, shown));
            continue;
        }
        if (rn_cv_parse_i64(f[c_item].s, f[c_item].n, 0, &v) || v > 999999999) {
            rn_cv_bad(&rep, ln, "item_id is not a non-negative integer: '%s'",
                      rn_cv_show(f[c_item].s, f[c_item].n, shown));
            continue;
        }
        r.item = (uint32_t)v;
        if (rn_cv_parse_i64(f[c_pos].s, f[c_pos].n, 0, &v) || v < 1 || v > 1000) {
            rn_cv_bad(&rep, ln, "position is not an integer from 1 to 1000: '%s'",
                      rn_cv_show(f[c_pos].s, f[c_pos].n, shown));
            continue;
        }
        r.pos = (uint32_t)v;
        if (rn_cv_parse_i64(f[c_click].s, f[c_click].n, 0, &v) || v > 1) {
            rn_cv_bad(&rep, ln, "click is not 0 or 1: '%s'",
                      rn_cv_show(f[c_click].s, f[c_click].n, shown));
            continue;
        }
        r.click = (uint32_t)v;
        /* A zero propensity could not have been logged, and would divide by zero in any
         * inverse-propensity estimate. */
        if (rn_cv_parse_double(f[c_prop].s, f[c_prop].n, &r.prop) || !(r.prop > 0.0) ||
            r.prop > 1.0) {
            rn_cv_bad(&rep, ln, "propensity is not a number in (0, 1]: '%s'",
                      rn_cv_show(f[c_prop].s, f[c_prop].n, shown));
            continue;
        }
        int found;
        uint32_t *first = rn_cv_map_put(&indices, (uint64_t)r.index, (uint32_t)ln, &found);
        if (found) {
            rn_cv_bad(&rep, ln, "duplicate row index %lld (first on line %u)", (long long)r.index,
                      *first);
            continue;
        }
        uint64_t h = RN_CV_FNV_INIT;
        for (int k = 0; k < n_feat; k++) {
            if (k) h = rn_cv_fnv1a(h, "\x1f", 1);
            h = rn_cv_fnv1a(h, f[c_feat[k]].s, f[c_feat[k]].n);
        }
        r.user = h;
        r.order = (uint32_t)obd.n_rows;
        ordinal++;
        rn_cv_map_put(&users, h, 0, &found);
        rn_cv_map_put(&items, r.item, 0, &found);
        clicks += r.click;
        rn_cv_grow((void **)&obd.rows, &obd.cap_rows, obd.n_rows + 1, sizeof *obd.rows);
        obd.rows[obd.n_rows++] = r;
    }
    rn_cv_report_end(&rep);
    size_t items_in_file = items.n;
    if (obd.n_rows == 0) {
        fprintf(stderr, "%s: no rows converted (%llu malformed)\n", path,
                (unsigned long long)rep.malformed);
        goto out;
    }
    if (item_ctx && rn_cv_obd_item_context(item_ctx, &items) != 0) goto out;

    /* The candidate list: every item, ascending, as one JSON array. */
    uint32_t *ids = rn_cv_xrealloc(NULL, items.n * sizeof *ids);
    size_t n_ids = 0;
    for (size_t i = 0; i < items.cap; i++)
        if (items.used[i]) ids[n_ids++] = (uint32_t)items.keys[i];
    qsort(ids, n_ids, sizeof *ids, rn_cv_u32_cmp);
    obd.candidates = rn_cv_xrealloc(NULL, n_ids * 14 + 3);
    char *p = obd.candidates;
    *p++ = '[';
    for (size_t i = 0; i < n_ids; i++)
        p += sprintf(p, "%s\"i%u\"", i ? "," : "", ids[i]);
    *p++ = ']';
    obd.candidates_len = (size_t)(p - obd.candidates);
    free(ids);
    if (n_ids > RN_CV_MAX_ITEMS_DEFAULT)
        fprintf(stderr,
                "rn_convert: note: %zu candidates per request; raise log_collector's "
                "max_items above its default %d\n",
                n_ids, RN_CV_MAX_ITEMS_DEFAULT);

    /* Sort the rows by time (ties: row index, then file order), then merge the streams. */
    qsort(obd.rows, obd.n_rows, sizeof *obd.rows, rn_cv_obd_row_cmp);
    units = rn_cv_xrealloc(NULL, obd.n_rows * sizeof *units);
    for (size_t i = 0; i < obd.n_rows; i++) {
        /* Floor to the millisecond (timestamps are never negative here). */
        units[i] = (struct rn_cv_unit){obd.rows[i].ts_us / 1000, (uint32_t)i, obd.rows[i].click};
        assert(i == 0 || units[i - 1].ts <= units[i].ts);
    }
    struct rn_cv_out o;
    char *tmp;
    if (rn_cv_out_open(&o, out_path, &tmp) != 0) goto out;
    uint64_t events = rn_cv_merge(units, obd.n_rows, 3, rn_cv_obd_emit, &obd, &o);
    if (rn_cv_out_close(&o, out_path, tmp) != 0) goto out;
    fprintf(stderr,
            "obd: rows=%zu clicks=%llu users=%zu items=%zu candidates=%zu malformed=%llu "
            "events=%llu\n",
            obd.n_rows, (unsigned long long)clicks, users.n, items_in_file, n_ids,
            (unsigned long long)rep.malformed, (unsigned long long)events);
    rc = 0;
out:
    free(units);
    free(obd.rows);
    free(obd.candidates);
    rn_cv_map_free(&items);
    rn_cv_map_free(&users);
    rn_cv_map_free(&indices);
    free(f);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * MovieTweetings.
 */

struct rn_cv_rating {
    int64_t ts; /* Unix seconds */
    uint64_t user;
    uint32_t movie_off; /* the movie id's digits, in the file buffer */
    uint16_t movie_len;
    uint16_t rating;
    uint32_t order; /* position in the file */
};

struct rn_cv_mt {
    const char *buf;
    struct rn_cv_rating *r;
    size_t n, cap;
    uint32_t *group_first; /* per group: its first rating in r */
    uint32_t *group_n;
    double threshold;
    struct rn_cv_out *o;
};

static int rn_cv_rating_cmp(const void *pa, const void *pb)
{
    const struct rn_cv_rating *a = pa, *b = pb;
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    if (a->user != b->user) return a->user < b->user ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

static void rn_cv_mt_ids(struct rn_cv_out *o, const struct rn_cv_rating *r)
{
    RN_CV_LIT(o, "\"request\":\"mt-");
    rn_cv_put_i64(o, (int64_t)r->user);
    RN_CV_LIT(o, "-");
    rn_cv_put_i64(o, r->ts);
    RN_CV_LIT(o, "\",\"user\":\"mu");
    rn_cv_put_i64(o, (int64_t)r->user);
    RN_CV_LIT(o, "\"");
}

static void rn_cv_mt_movie(struct rn_cv_out *o, const struct rn_cv_mt *mt,
                           const struct rn_cv_rating *r)
{
    RN_CV_LIT(o, "\"m");
    rn_cv_put(o, mt->buf + r->movie_off, r->movie_len);
    RN_CV_LIT(o, "\"");
}

static void rn_cv_mt_emit(void *ctx, struct rn_cv_out *o, int kind, const struct rn_cv_unit *u,
                          uint32_t click_no)
{
    const struct rn_cv_mt *mt = ctx;
    const struct rn_cv_rating *g = &mt->r[mt->group_first[u->src]];
    uint32_t gn = mt->group_n[u->src];
    char num[32];
    switch (kind) {
    case RN_CV_REQUEST:
    case RN_CV_IMPRESSION: {
        if (kind == RN_CV_REQUEST) {
            RN_CV_LIT(o, "{\"type\":\"request\",\"ts\":");
            rn_cv_put_i64(o, u->ts);
            RN_CV_LIT(o, ",");
            rn_cv_mt_ids(o, g);
            RN_CV_LIT(o, ",\"candidates\":[");
        } else {
            RN_CV_LIT(o, "{\"type\":\"impression\",\"ts\":");
            rn_cv_put_i64(o, u->ts + 1);
            RN_CV_LIT(o, ",");
            rn_cv_mt_ids(o, g);
            RN_CV_LIT(o, ",\"items\":[");
        }
        for (uint32_t j = 0; j < gn; j++) {
            if (j) RN_CV_LIT(o, ",");
            rn_cv_mt_movie(o, mt, &g[j]);
        }
        if (kind == RN_CV_REQUEST) {
            RN_CV_LIT(o, "]}\n");
            break;
        }
        /* A uniform placeholder, not a logging propensity (see the top of the file). */
        int nl = rn_cv_fmt_double(num, 1.0 / gn);
        RN_CV_LIT(o, "],\"propensities\":[");
        for (uint32_t j = 0; j < gn; j++) {
            if (j) RN_CV_LIT(o, ",");
            rn_cv_put(o, num, (size_t)nl);
        }
        RN_CV_LIT(o, "],\"model_version\":0}\n");
        break;
    }
    default: {
        /* The click_no-th rating of the group at or above the threshold. */
        const struct rn_cv_rating *r = NULL;
        for (uint32_t j = 0, k = 0; j < gn; j++) {
            if (g[j].rating >= mt->threshold && k++ == click_no) {
                r = &g[j];
                break;
            }
        }
        assert(r);
        RN_CV_LIT(o, "{\"type\":\"click\",\"ts\":");
        rn_cv_put_i64(o, u->ts + 2);
        RN_CV_LIT(o, ",");
        rn_cv_mt_ids(o, g);
        RN_CV_LIT(o, ",\"item\":");
        rn_cv_mt_movie(o, mt, r);
        RN_CV_LIT(o, "}\n");
        break;
    }
    }
}

/* Splits a line at "::" into at most 8 fields; returns the count. */
static int rn_cv_split_dcolon(char *s, size_t n, struct rn_cv_field *f)
{
    int nf = 0;
    size_t start = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == ':' && s[i + 1] == ':') {
            if (nf < 8) f[nf] = (struct rn_cv_field){s + start, i - start};
            nf++;
            i++;
            start = i + 1;
        }
    }
    if (nf < 8) f[nf] = (struct rn_cv_field){s + start, n - start};
    return nf + 1;
}

static int rn_cv_movietweetings(const char *path, const char *out_path, double threshold)
{
    int rc = 1;
    size_t len;
    char *buf = rn_cv_read_file(path, &len);
    if (!buf) return 1;
    struct rn_cv_mt mt = {0};
    struct rn_cv_map users = {0}, movies = {0};
    struct rn_cv_unit *units = NULL;
    struct rn_cv_report rep = {path, 0};
    uint64_t clicks = 0;
    mt.buf = buf;
    mt.threshold = threshold;

    char *data = rn_cv_skip_bom(buf, &len);
    struct rn_cv_lines it = {data, data + len, 0};
    size_t n;
    char *line;
    while ((line = rn_cv_next_line(&it, &n))) {
        struct rn_cv_field f[8];
        char shown[48];
        uint64_t ln = it.lineno;
        int64_t v;
        if (n == 0) {
            rn_cv_bad(&rep, ln, "empty line");
            continue;
        }
        int nf = rn_cv_split_dcolon(line, n, f);
        if (nf != 4) {
            rn_cv_bad(&rep, ln, "expected 4 fields 'user_id::movie_id::rating::timestamp', got %d",
                      nf);
            continue;
        }
        struct rn_cv_rating r = {0};
        if (rn_cv_parse_i64(f[0].s, f[0].n, 0, &v)) {
            rn_cv_bad(&rep, ln, "user_id is not a non-negative integer: '%s'",
                      rn_cv_show(f[0].s, f[0].n, shown));
            continue;
        }
        r.user = (uint64_t)v;
        /* Movie ids are IMDb numbers with leading zeros, kept as written. */
        if (rn_cv_parse_i64(f[1].s, f[1].n, 0, &v)) {
            rn_cv_bad(&rep, ln, "movie_id is not a number of at most 18 digits: '%s'",
                      rn_cv_show(f[1].s, f[1].n, shown));
            continue;
        }
        if ((size_t)(f[1].s - buf) > UINT32_MAX) {
            rn_cv_bad(&rep, ln, "beyond the 4 GiB this converter reads");
            continue;
        }
        r.movie_off = (uint32_t)(f[1].s - buf);
        r.movie_len = (uint16_t)f[1].n;
        if (rn_cv_parse_i64(f[2].s, f[2].n, 0, &v) || v > 10) {
            rn_cv_bad(&rep, ln, "rating is not an integer from 0 to 10: '%s'",
                      rn_cv_show(f[2].s, f[2].n, shown));
            continue;
        }
        r.rating = (uint16_t)v;
        if (rn_cv_parse_i64(f[3].s, f[3].n, 0, &v) || v > (RN_CV_MAX_TS_MS - 10) / 1000) {
            rn_cv_bad(&rep, ln, "timestamp is not Unix seconds from 1970 to 2999: '%s'",
                      rn_cv_show(f[3].s, f[3].n, shown));
            continue;
        }
        r.ts = v;
        r.order = (uint32_t)mt.n;
        int found;
        rn_cv_map_put(&users, r.user, 0, &found);
        rn_cv_map_put(&movies, rn_cv_fnv1a(RN_CV_FNV_INIT, f[1].s, f[1].n), 0, &found);
        if (r.rating >= threshold) clicks++;
        rn_cv_grow((void **)&mt.r, &mt.cap, mt.n + 1, sizeof *mt.r);
        mt.r[mt.n++] = r;
    }
    rn_cv_report_end(&rep);
    if (mt.n == 0) {
        fprintf(stderr, "%s: no ratings converted (%llu malformed)\n", path,
                (unsigned long long)rep.malformed);
        goto out;
    }

    /* Group by (ts, user): sorted so, each group is a run. */
    qsort(mt.r, mt.n, sizeof *mt.r, rn_cv_rating_cmp);
    mt.group_first = rn_cv_xrealloc(NULL, mt.n * sizeof *mt.group_first);
    mt.group_n = rn_cv_xrealloc(NULL, mt.n * sizeof *mt.group_n);
    units = rn_cv_xrealloc(NULL, mt.n * sizeof *units);
    size_t n_groups = 0, biggest = 0;
    for (size_t i = 0; i < mt.n;) {
        size_t j = i;
        uint32_t c = 0;
        while (j < mt.n && mt.r[j].ts == mt.r[i].ts && mt.r[j].user == mt.r[i].user) {
            c += mt.r[j].rating >= threshold;
            j++;
        }
        mt.group_first[n_groups] = (uint32_t)i;
        mt.group_n[n_groups] = (uint32_t)(j - i);
        units[n_groups] = (struct rn_cv_unit){mt.r[i].ts * 1000, (uint32_t)n_groups, c};
        if (j - i > biggest) biggest = j - i;
        n_groups++;
        i = j;
    }
    if (biggest > RN_CV_MAX_ITEMS_DEFAULT)
        fprintf(stderr,
                "rn_convert: note: a request has %zu movies; raise log_collector's "
                "max_items above its default %d\n",
                biggest, RN_CV_MAX_ITEMS_DEFAULT);

    struct rn_cv_out o;
    char *tmp;
    if (rn_cv_out_open(&o, out_path, &tmp) != 0) goto out;
    uint64_t events = rn_cv_merge(units, n_groups, 2, rn_cv_mt_emit, &mt, &o);
    if (rn_cv_out_close(&o, out_path, tmp) != 0) goto out;
    fprintf(stderr,
            "movietweetings: ratings=%zu requests=%zu clicks=%llu users=%zu movies=%zu "
            "malformed=%llu events=%llu\n",
            mt.n, n_groups, (unsigned long long)clicks, users.n, movies.n,
            (unsigned long long)rep.malformed, (unsigned long long)events);
    rc = 0;
out:
    free(units);
    free(mt.group_first);
    free(mt.group_n);
    free(mt.r);
    rn_cv_map_free(&users);
    rn_cv_map_free(&movies);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * OBD item features -> an item-embedding table (`rn_convert obd-items`).
 *
 * item_context.csv has a row per item: `item_id` and `item_feature_0..k`.  A feature
 * column whose every value is a finite number is numeric and becomes one coordinate, its
 * z-score over the file's items (population standard deviation; all 0 when it is
 * constant).  Any other column is categorical (OBD's are hashed strings) and becomes a
 * one-hot block: one coordinate per distinct value, in the order in which the values
 * first occur when the items are taken by ascending item_id -- so the same categories
 * give the same table whatever strings they were hashed to (OBD's random/ and bts/ files
 * hash them differently).  A column with more than --buckets distinct values is hashed
 * instead: FNV-1a of the value modulo --buckets picks the coordinate (a hashed one-hot).
 * Columns are taken in header order.  Each item is written as `i<item_id> v1 ... vD`,
 * the id the `obd` conversion gives it, in ascending item_id order, after one comment
 * line (`#`) that names the coordinates' sources.
 */

#define RN_CV_ITEMS_MAX_COLS 256

struct rn_cv_items_col {
    int col;         /* index in the header */
    int numeric;     /* 1: z-score; 0: one-hot (or hashed one-hot) */
    double mean, sd; /* numeric */
    char **cats;     /* categorical: distinct values, in first-seen order */
    size_t n_cats;
    int hashed;   /* categorical: more than buckets values */
    size_t width; /* coordinates */
};

struct rn_cv_items_row {
    int64_t id;
    struct rn_cv_field f[RN_CV_ITEMS_MAX_COLS];
};

static int rn_cv_items_row_cmp(const void *pa, const void *pb)
{
    const struct rn_cv_items_row *a = pa, *b = pb;
    return (a->id > b->id) - (a->id < b->id);
}

static int rn_cv_obd_items(const char *path, const char *out_path, size_t buckets)
{
    int rc = 1;
    size_t len;
    char *buf = rn_cv_read_file(path, &len);
    if (!buf) return 1;
    struct rn_cv_items_row *rows = NULL;
    size_t n_rows = 0, cap_rows = 0;
    struct rn_cv_items_col cols[RN_CV_ITEMS_MAX_COLS];
    int n_cols = 0;
    struct rn_cv_field h[RN_CV_ITEMS_MAX_COLS];
    memset(cols, 0, sizeof cols);

    char *data = rn_cv_skip_bom(buf, &len);
    struct rn_cv_lines it = {data, data + len, 0};
    size_t n;
    char *line = rn_cv_next_line(&it, &n);
    int nh = line ? rn_cv_csv_split(line, n, h, RN_CV_ITEMS_MAX_COLS) : -1;
    int id_col = nh > 0 && nh <= RN_CV_ITEMS_MAX_COLS ? rn_cv_col(h, nh, "item_id") : -1;
    if (id_col < 0) {
        fprintf(stderr, "%s:1: no 'item_id' column in the header (at most %d columns)\n", path,
                RN_CV_ITEMS_MAX_COLS);
        goto out;
    }
    for (int c = 0; c < nh; c++)
        if (h[c].n > 13 && memcmp(h[c].s, "item_feature_", 13) == 0) cols[n_cols++].col = c;
    if (n_cols == 0) {
        fprintf(stderr, "%s:1: no 'item_feature_*' columns in the header\n", path);
        goto out;
    }
    /* Every row is needed (the features are standardised over all items); any problem in
     * this small metadata file is fatal rather than a silently different table. */
    while ((line = rn_cv_next_line(&it, &n))) {
        rn_cv_grow((void **)&rows, &cap_rows, n_rows + 1, sizeof *rows);
        struct rn_cv_items_row *r = &rows[n_rows];
        int nf = rn_cv_csv_split(line, n, r->f, RN_CV_ITEMS_MAX_COLS);
        if (nf != nh || rn_cv_parse_i64(r->f[id_col].s, r->f[id_col].n, 0, &r->id) ||
            r->id > UINT32_MAX) {
            fprintf(stderr, "%s:%llu: malformed row (expected %d fields with an integer item_id)\n",
                    path, (unsigned long long)it.lineno, nh);
            goto out;
        }
        for (int k = 0; k < n_cols; k++)
            r->f[cols[k].col].s[r->f[cols[k].col].n] = 0; /* safe: a separator or the line's end */
        n_rows++;
    }
    if (n_rows == 0) {
        fprintf(stderr, "%s: no items\n", path);
        goto out;
    }
    qsort(rows, n_rows, sizeof *rows, rn_cv_items_row_cmp);
    for (size_t i = 1; i < n_rows; i++)
        if (rows[i].id == rows[i - 1].id) {
            fprintf(stderr, "%s: item_id %lld appears twice\n", path, (long long)rows[i].id);
            goto out;
        }

    size_t dim = 0;
    for (int k = 0; k < n_cols; k++) {
        struct rn_cv_items_col *c = &cols[k];
        c->numeric = 1;
        double sum = 0, sq = 0, v;
        for (size_t i = 0; i < n_rows && c->numeric; i++) {
            const struct rn_cv_field *f = &rows[i].f[c->col];
            if (rn_cv_parse_double(f->s, f->n, &v))
                c->numeric = 0;
            else
                sum += v;
        }
        if (c->numeric) {
            c->mean = sum / (double)n_rows;
            for (size_t i = 0; i < n_rows; i++) {
                rn_cv_parse_double(rows[i].f[c->col].s, rows[i].f[c->col].n, &v);
                sq += (v - c->mean) * (v - c->mean);
            }
            c->sd = sqrt(sq / (double)n_rows);
            c->width = 1;
        } else {
            for (size_t i = 0; i < n_rows; i++) {
                const char *s = rows[i].f[c->col].s;
                size_t j = 0;
                while (j < c->n_cats && strcmp(c->cats[j], s) != 0)
                    j++;
                if (j == c->n_cats) {
                    c->cats = rn_cv_xrealloc(c->cats, (c->n_cats + 1) * sizeof *c->cats);
                    c->cats[c->n_cats++] = (char *)s;
                }
            }
            c->hashed = c->n_cats > buckets;
            c->width = c->hashed ? buckets : c->n_cats;
        }
        dim += c->width;
    }

    struct rn_cv_out o;
    char *tmp;
    if (rn_cv_out_open(&o, out_path, &tmp)) goto out;
    char num[32];
    RN_CV_LIT(&o, "# rn_convert obd-items: ");
    rn_cv_put_i64(&o, (int64_t)n_rows);
    RN_CV_LIT(&o, " items, dim ");
    rn_cv_put_i64(&o, (int64_t)dim);
    RN_CV_LIT(&o, ":");
    for (int k = 0; k < n_cols; k++) {
        const struct rn_cv_items_col *c = &cols[k];
        RN_CV_LIT(&o, " ");
        rn_cv_put(&o, h[c->col].s, h[c->col].n);
        if (c->numeric) {
            RN_CV_LIT(&o, " z-score (mean ");
            rn_cv_put(&o, num, (size_t)rn_cv_fmt_double(num, c->mean));
            RN_CV_LIT(&o, ", sd ");
            rn_cv_put(&o, num, (size_t)rn_cv_fmt_double(num, c->sd));
            RN_CV_LIT(&o, ")");
        } else {
            if (c->hashed)
                RN_CV_LIT(&o, " hashed one-hot ");
            else
                RN_CV_LIT(&o, " one-hot ");
            rn_cv_put_i64(&o, (int64_t)c->width);
        }
        if (k + 1 < n_cols) RN_CV_LIT(&o, ";");
    }
    RN_CV_LIT(&o, "\n");
    for (size_t i = 0; i < n_rows; i++) {
        RN_CV_LIT(&o, "i");
        rn_cv_put_i64(&o, rows[i].id);
        for (int k = 0; k < n_cols; k++) {
            const struct rn_cv_items_col *c = &cols[k];
            const struct rn_cv_field *f = &rows[i].f[c->col];
            if (c->numeric) {
                double v;
                rn_cv_parse_double(f->s, f->n, &v);
                RN_CV_LIT(&o, " ");
                rn_cv_put(&o, num,
                          (size_t)rn_cv_fmt_double(num, c->sd > 0 ? (v - c->mean) / c->sd : 0));
                continue;
            }
            size_t hot;
            if (c->hashed) {
                hot = (size_t)(rn_cv_fnv1a(RN_CV_FNV_INIT, f->s, f->n) % buckets);
            } else {
                hot = 0;
                while (strcmp(c->cats[hot], f->s) != 0)
                    hot++;
            }
            for (size_t j = 0; j < c->width; j++)
                if (j == hot)
                    RN_CV_LIT(&o, " 1");
                else
                    RN_CV_LIT(&o, " 0");
        }
        RN_CV_LIT(&o, "\n");
    }
    if (rn_cv_out_close(&o, out_path, tmp)) goto out;
    fprintf(stderr, "obd-items: items=%zu features=%d dim=%zu\n", n_rows, n_cols, dim);
    rc = 0;
out:
    for (int k = 0; k < n_cols; k++)
        free(cols[k].cats);
    free(rows);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Command line.
 */

static void rn_cv_usage(FILE *f)
{
    fputs("usage: rn_convert obd FILE.csv [--out PATH] [--item-context item_context.csv]\n"
          "       rn_convert movietweetings ratings.dat [--out PATH] [--click-threshold 7]\n"
          "       rn_convert obd-items item_context.csv [--out PATH] [--buckets 64]\n"
          "Writes runnel events (JSON lines, in event-time order) to PATH, or to stdout;\n"
          "obd-items writes an item-embedding table (`i<item_id> v1 ... vD` lines).\n"
          "FILE '-' reads stdin.  Exit 0 if at least one row was converted, 1 if none,\n"
          "2 on a usage error.\n",
          f);
}

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; sets *val and advances *i. */
static int rn_cv_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != 0) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "rn_convert: %s needs a value\n", name);
        exit(2);
    }
    *val = argv[++*i];
    return 1;
}

int main(int argc, char **argv)
{
    const char *format = NULL, *file = NULL, *out = NULL, *item_ctx = NULL, *thr = NULL,
               *buckets = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            rn_cv_usage(stdout);
            return 0;
        } else if (rn_cv_opt(argc, argv, &i, "--out", &out) ||
                   rn_cv_opt(argc, argv, &i, "--item-context", &item_ctx) ||
                   rn_cv_opt(argc, argv, &i, "--click-threshold", &thr) ||
                   rn_cv_opt(argc, argv, &i, "--buckets", &buckets)) {
            continue;
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "rn_convert: unknown option '%s'\n", a);
            rn_cv_usage(stderr);
            return 2;
        } else if (!format) {
            format = a;
        } else if (!file) {
            file = a;
        } else {
            fprintf(stderr, "rn_convert: unexpected argument '%s'\n", a);
            rn_cv_usage(stderr);
            return 2;
        }
    }
    if (!format || !file) {
        rn_cv_usage(stderr);
        return 2;
    }
    if (buckets && strcmp(format, "obd-items") != 0) {
        fprintf(stderr, "rn_convert: --buckets is for obd-items\n");
        return 2;
    }
    if (strcmp(format, "obd-items") == 0) {
        int64_t b = 64;
        if (thr || item_ctx) {
            fprintf(stderr, "rn_convert: obd-items takes only --out and --buckets\n");
            return 2;
        }
        if (buckets && (rn_cv_parse_i64(buckets, strlen(buckets), 0, &b) || b < 1 || b > 65536)) {
            fprintf(stderr, "rn_convert: --buckets must be an integer in [1, 65536], got '%s'\n",
                    buckets);
            return 2;
        }
        return rn_cv_obd_items(file, out, (size_t)b);
    }
    if (strcmp(format, "obd") == 0) {
        if (thr) {
            fprintf(stderr, "rn_convert: --click-threshold is for movietweetings\n");
            return 2;
        }
        return rn_cv_obd(file, out, item_ctx);
    }
    if (strcmp(format, "movietweetings") == 0) {
        double threshold = 7;
        if (item_ctx) {
            fprintf(stderr, "rn_convert: --item-context is for obd\n");
            return 2;
        }
        if (thr && rn_cv_parse_double(thr, strlen(thr), &threshold)) {
            fprintf(stderr, "rn_convert: --click-threshold must be a number, got '%s'\n", thr);
            return 2;
        }
        return rn_cv_movietweetings(file, out, threshold);
    }
    fprintf(stderr, "rn_convert: unknown format '%s' (obd, obd-items or movietweetings)\n", format);
    rn_cv_usage(stderr);
    return 2;
}
