/*
 * test_dead_letter.c — a log full of bad lines goes through
 * file -> log_collector -> file: the job finishes, every good line comes out
 * (in order, byte for byte), every bad line is in the dead-letter output with
 * a reason and its exact source offset, and the counts add up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "rn_job.h"
#include "rn_test.h"

struct line {
    long offset;
    int good;
    const char *why; /* expected substring of the reason */
};

static struct line lines[4096];
static int n_lines;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    size_t got = fread(p, 1, (size_t)n, f);
    fclose(f);
    p[got] = 0;
    *len = got;
    return p;
}

static void put(FILE *f, const char *text, size_t len, int good, const char *why, int newline)
{
    lines[n_lines].offset = ftell(f);
    lines[n_lines].good = good;
    lines[n_lines].why = why;
    n_lines++;
    fwrite(text, 1, len, f);
    if (newline) fputc('\n', f);
}

static void puts_line(FILE *f, const char *text, int good, const char *why)
{
    put(f, text, strlen(text), good, why, 1);
}

int main(void)
{
    char dir[] = "/tmp/rn_test_dl_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char log[256], job[256], out[256], rej[256];
    snprintf(log, sizeof log, "%s/in.jsonl", dir);
    snprintf(job, sizeof job, "%s/job.yaml", dir);
    snprintf(out, sizeof out, "%s/out/events.jsonl", dir);
    snprintf(rej, sizeof rej, "%s/out/rejected.jsonl", dir);

    FILE *f = fopen(log, "wb");
    struct rn_buf expected = RN_BUF_INIT;
    srand(7);
    int n_good = 0, n_bad = 0;
    for (int i = 0; i < 600; i++) {
        char g[512];
        switch (i % 4) {
        case 0:
            snprintf(g, sizeof g,
                     "{\"type\":\"request\",\"ts\":%d,\"request\":\"r%d\",\"user\":\"u%d\","
                     "\"candidates\":[\"i1\",\"i%d\"]}",
                     1700000000 + i, i, i % 17, i);
            break;
        case 1:
            snprintf(g, sizeof g,
                     "{\"type\":\"impression\",\"ts\":%d,\"request\":\"r%d\",\"user\":\"u%d\","
                     "\"items\":[\"i%d\",\"i1\"],\"propensities\":[0.75,0.25],\"model_version\":3}",
                     1700000000 + i, i - 1, i % 17, i);
            break;
        case 2:
            snprintf(g, sizeof g,
                     "{\"type\":\"click\",\"ts\":%d,\"request\":\"r%d\",\"user\":\"u%d\",\"item\":"
                     "\"i\\u00e9%d\"}",
                     1700000000 + i, i - 2, i % 17, i);
            break;
        default:
            snprintf(g, sizeof g,
                     "{\"type\":\"pay\",\"ts\":%d,\"request\":\"r%d\",\"user\":\"u%d\",\"item\":"
                     "\"i%d\",\"amount\":12.5}",
                     1700000000 + i, i - 3, i % 17, i);
        }
        puts_line(f, g, 1, NULL);
        /* The writer prints \u00e9 as raw UTF-8. */
        char *esc = strstr(g, "\\u00e9");
        if (esc) {
            rn_buf_append(&expected, g, (size_t)(esc - g));
            rn_buf_append(&expected, "\xc3\xa9", 2);
            rn_buf_puts(&expected, esc + 6);
        } else {
            rn_buf_puts(&expected, g);
        }
        rn_buf_putc(&expected, '\n');
        n_good++;
        /* Then a bad line of some kind, every few good ones. */
        if (i % 3) continue;
        n_bad++;
        switch ((i / 3) % 16) {
        case 0: puts_line(f, "{\"type\":\"click\",\"ts\":1,", 0, "invalid JSON at byte 23: parse error: premature EOF"); break;
        case 1: puts_line(f, "[1,2,3]", 0, "not a JSON object"); break;
        case 2:
            if ((i / 3) % 32 == 2)
                puts_line(f, "42", 0, "not a JSON object");
            else
                puts_line(f, "{\"type\":\"request\",\"ts\":1700000000,\"request\":\"r\",\"user\":\"u\",\"candidates\":[\"a\",\"b\"],\"propensities\":[0.9]}",
                          0, "a request has no 'propensities'");
            break;
        case 3:
            puts_line(f, "{\"type\":\"view\",\"ts\":1700000000,\"request\":\"r\",\"user\":\"u\"}", 0,
                      "unknown event type 'view'");
            break;
        case 4:
            puts_line(f, "{\"type\":\"click\",\"ts\":1700000000,\"request\":\"r\",\"user\":\"u\"}", 0,
                      "missing field 'item'");
            break;
        case 5:
            puts_line(f, "{\"type\":\"click\",\"ts\":\"soon\",\"request\":\"r\",\"user\":\"u\",\"item\":\"i\"}",
                      0, "'ts' must be a number");
            break;
        case 6:
            puts_line(f, "{\"type\":\"impression\",\"ts\":1700000000,\"request\":\"r\",\"user\":\"u\",\"items\":\"i1\"}",
                      0, "'items' must be a list of strings");
            break;
        case 7: {
            const char bad[] = "{\"type\":\"click\",\"ts\":1700000000,\"request\":\"r\",\"user\":\"u\xff\xfe\",\"item\":\"i\"}";
            put(f, bad, sizeof bad - 1, 0, "invalid UTF-8 at byte 55", 1);
            break;
        }
        case 8: {
            char junk[300];
            for (size_t k = 0; k < sizeof junk; k++) {
                junk[k] = (char)(rand() % 256);
                if (junk[k] == '\n') junk[k] = 0;
            }
            junk[0] = 0; /* starts with NUL */
            put(f, junk, sizeof junk, 0, "invalid", 1);
            break;
        }
        case 9: {
            /* A huge line: 3 MiB, past max_line (1 MiB). */
            size_t big = 3u << 20;
            char *h = malloc(big);
            memset(h, 'x', big);
            memcpy(h, "{\"type\":\"click\",\"pad\":\"", 23);
            put(f, h, big, 0, "line too long", 1);
            free(h);
            break;
        }
        case 10: puts_line(f, "", 0, "empty line"); break;
        case 11:
            puts_line(f, "{\"type\":\"click\",\"ts\":1700000000,\"ts\":1700000001,\"request\":\"r\",\"user\":\"u\",\"item\":\"i\"}",
                      0, "duplicate field 'ts'");
            break;
        case 12:
            puts_line(f, "{\"type\":\"impression\",\"ts\":1700000000,\"request\":\"r\",\"user\":\"u\",\"items\":[\"a\",\"b\"],\"propensities\":[0.5]}",
                      0, "differ in length");
            break;
        case 13:
            puts_line(f, "{\"type\":\"click\",\"ts\":99999999999999999999,\"request\":\"r\",\"user\":\"u\",\"item\":\"i\"}",
                      0, "invalid JSON");
            break;
        case 14:
            if ((i / 3) % 32 == 14) {
                puts_line(f, "{\"type\":\"click\",\"ts\":1700000000,\"request\":\"r\",\"user\":null,\"item\":\"i\"}",
                          0, "'user' must not be null");
            } else {
                /* Overlong '/' and a UTF-16 surrogate: yajl alone accepts both. */
                puts_line(f, "{\"type\":\"click\",\"ts\":1700000000,\"request\":\"r\xc0\xaf\",\"user\":\"u\xed\xa0\x80\",\"item\":\"i\"}",
                          0, "invalid UTF-8 at byte 44");
            }
            break;
        default:
            puts_line(f, "{\"type\":\"click\",\"ts\":1700000000,\"request\":\"r\",\"user\":\"u\",\"item\":\"i\"} trailing", 0,
                      "invalid JSON");
        }
    }
    /* A good last line without a newline. */
    const char *last = "{\"type\":\"click\",\"ts\":1800000000,\"request\":\"rz\",\"user\":\"uz\",\"item\":\"iz\"}";
    put(f, last, strlen(last), 1, NULL, 0);
    rn_buf_puts(&expected, last);
    rn_buf_putc(&expected, '\n');
    n_good++;
    fclose(f);

    f = fopen(job, "w");
    fprintf(f,
            "job: dead-letters\n"
            "sources:\n  logs: { type: file, path: %s }\n"
            "operators:\n  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }\n"
            "sinks:\n  out: { type: file, path: %s, from: collect }\n"
            "  rejected: { type: file, path: %s }\n",
            log, out, rej);
    fclose(f);

    char err[1024] = "";
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *j = rn_job_load(job, &opt, err, sizeof err);
    CHECK(j != NULL);
    if (!j) {
        fprintf(stderr, "%s\n", err);
        return rn_test_summary();
    }
    CHECK_EQ_INT(rn_job_run(j, err, sizeof err), 0);
    struct rn_buf js = RN_BUF_INIT;
    rn_job_render_json(j, &js);
    rn_buf_putc(&js, 0);
    char want[64];
    snprintf(want, sizeof want, "\"rejected\":%d", n_bad);
    CHECK_STR_CONTAINS(js.data, want);
    snprintf(want, sizeof want, "\"dead_letters\":%d", n_bad);
    CHECK_STR_CONTAINS(js.data, want);
    rn_buf_free(&js);
    rn_job_destroy(j);

    /* Every good line, in order, byte for byte. */
    size_t out_len = 0;
    char *got = slurp(out, &out_len);
    CHECK(got != NULL);
    CHECK_EQ_INT(out_len, expected.len);
    CHECK(got && out_len == expected.len && memcmp(got, expected.data, out_len) == 0);
    free(got);

    /* Every bad line once, at its offset, with its reason. */
    size_t rej_len = 0;
    char *r = slurp(rej, &rej_len);
    CHECK(r != NULL);
    /* Bytes that are not UTF-8 come back as base64, not mangled. */
    CHECK(r && strstr(r, "\"data_base64\":") != NULL);
    int n_rej = 0, matched = 0;
    int next_bad = 0;
    for (char *p = r, *nl; p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) break;
        *nl = 0;
        char ebuf[256];
        yajl_val v = yajl_tree_parse(p, ebuf, sizeof ebuf);
        CHECK(v != NULL);
        n_rej++;
        if (!v) continue;
        const char *po[] = {"offset", NULL}, *pr[] = {"reason", NULL}, *pw[] = {"where", NULL};
        yajl_val off = yajl_tree_get(v, po, yajl_t_number);
        yajl_val reason = yajl_tree_get(v, pr, yajl_t_string);
        yajl_val where = yajl_tree_get(v, pw, yajl_t_string);
        CHECK(off && reason && where);
        while (next_bad < n_lines && lines[next_bad].good) next_bad++;
        if (off && reason && next_bad < n_lines) {
            long o = (long)YAJL_GET_INTEGER(off);
            const char *rs = YAJL_GET_STRING(reason);
            if (!rs) rs = "";
            if (o == lines[next_bad].offset && strstr(rs, lines[next_bad].why))
                matched++;
            else
                fprintf(stderr, "dead letter at %ld (%s): expected offset %ld with '%s'\n", o, rs,
                        lines[next_bad].offset, lines[next_bad].why);
        }
        if (where) {
            const char *ws = YAJL_GET_STRING(where);
            CHECK_STR_CONTAINS(ws ? ws : "", "in.jsonl");
        }
        next_bad++;
        yajl_tree_free(v);
    }
    CHECK_EQ_INT(n_rej, n_bad);
    CHECK_EQ_INT(matched, n_bad);
    CHECK_EQ_INT(n_good + n_bad, n_lines);
    free(r);
    rn_buf_free(&expected);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return rn_test_summary();
}
