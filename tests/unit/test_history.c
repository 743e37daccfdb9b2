/*
 * test_history.c — the bounded series history behind the web UI's charts
 * (runtime/rn_history.c) and the embedded assets (rn_assets.c):
 *
 *   - samples come back oldest first, every series aligned with the timestamps;
 *   - past the capacity the oldest samples are overwritten, never more kept;
 *   - ?since= keeps only newer samples; NAN is written as null;
 *   - every file under runtime/ui/ is in the binary, byte for byte, with a type;
 *   - an operator's latency histogram (rn_latency_record) answers quantiles with
 *     the upper bound of the bucket that holds them, and a histogram of counts
 *     taken over an interval (the sampler's p50/p99) does the same.
 */
#include <math.h>
#include <string.h>

#include "rn_test.h"

#include "rn_assets_int.h"
#include "rn_common.h"
#include "rn_status_int.h"

static char *history(struct rn_history *h, int64_t since)
{
    struct rn_buf b = {0};
    rn__history_json(h, since, &b);
    rn_buf_putc(&b, 0);
    return b.data;
}

static void test_ring(void)
{
    char **names = rn_xmalloc(2 * sizeof *names);
    names[0] = rn_xstrdup("a.in");
    names[1] = rn_xstrdup("b.lag");
    struct rn_history *h = rn__history_create(3, 2, names);
    char *s = history(h, 0);
    CHECK_STR_CONTAINS(s, "\"capacity\":3,\"t\":[],\"series\":{\"a.in\":[],\"b.lag\":[]}");
    free(s);
    double v[2];
    for (int i = 1; i <= 2; i++) {
        v[0] = i;
        v[1] = i == 2 ? NAN : 0.5 * i;
        rn__history_push(h, 1000 * i, v);
    }
    s = history(h, 0);
    CHECK_STR_CONTAINS(s, "\"t\":[1000,2000],\"series\":{\"a.in\":[1,2],\"b.lag\":[0.5,null]}");
    free(s);
    /* two more: the ring of three drops the first */
    for (int i = 3; i <= 4; i++) {
        v[0] = i;
        v[1] = 0.25;
        rn__history_push(h, 1000 * i, v);
    }
    s = history(h, 0);
    CHECK_STR_CONTAINS(
        s, "\"t\":[2000,3000,4000],\"series\":{\"a.in\":[2,3,4],\"b.lag\":[null,0.25,0.25]}");
    free(s);
    s = history(h, 3000);
    CHECK_STR_CONTAINS(s, "\"t\":[4000],\"series\":{\"a.in\":[4],\"b.lag\":[0.25]}");
    free(s);
    s = history(h, 4000);
    CHECK_STR_CONTAINS(s, "\"t\":[],\"series\":{\"a.in\":[],\"b.lag\":[]}");
    free(s);
    /* many laps later it still holds exactly the last three */
    for (int i = 5; i <= 1000; i++) {
        v[0] = i;
        rn__history_push(h, 1000 * i, v);
    }
    s = history(h, 0);
    CHECK_STR_CONTAINS(s, "\"t\":[998000,999000,1000000],\"series\":{\"a.in\":[998,999,1000]");
    free(s);
    rn__history_destroy(h);
}

static void test_assets(void)
{
    static const char *const files[] = {"ui/job.html", "ui/job.js",    "ui/chart.js",
                                        "ui/graph.js", "ui/common.js", "ui/runnel.css"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const struct rn_asset *a = rn__asset_find(files[i]);
        CHECK(a != NULL);
        if (!a) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/runtime/%s",
                 getenv("RUNNEL_SRC") ? getenv("RUNNEL_SRC") : ".", files[i]);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL);
        if (!f) continue;
        struct rn_buf disk = {0};
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            rn_buf_append(&disk, chunk, n);
        fclose(f);
        CHECK_EQ_INT(a->len, disk.len);
        CHECK(a->len == disk.len && memcmp(a->data, disk.data, a->len) == 0);
        CHECK_EQ_INT(a->data[a->len], 0);
        rn_buf_free(&disk);
        CHECK(strcmp(rn__asset_content_type(files[i]), "application/octet-stream") != 0);
    }
    CHECK(rn__asset_find("ui/none.js") == NULL);
    CHECK(rn__asset_find("job.html") == NULL);
    struct rn_http_response res = {.status = 200};
    CHECK(rn__asset_serve("ui/../ui/job.js", &res) != 0);
    CHECK_EQ_INT(res.status, 404);
    rn_buf_free(&res.body);
    CHECK_STR_CONTAINS(rn__asset_content_type("x.css"), "text/css");
    CHECK_STR_CONTAINS(rn__asset_content_type("x"), "application/octet-stream");
}

static void test_latency(void)
{
    struct rn_latency l;
    memset(&l, 0, sizeof l);
    CHECK(rn_latency_quantile(&l, 0.5) == 0); /* nothing recorded */
    /* 99 requests of 10 µs (160 sixteenths: bucket 7, up to 16 µs) and one of
     * 10 ms (bucket 17, up to 16384 µs) */
    for (int i = 0; i < 99; i++)
        rn_latency_record(&l, 10000);
    rn_latency_record(&l, 10000000);
    CHECK(rn_latency_quantile(&l, 0.5) == 16.0);
    CHECK(rn_latency_quantile(&l, 0.99) == 16.0);
    CHECK(rn_latency_quantile(&l, 0.999) == 16384.0);
    CHECK(rn_latency_quantile(&l, 1.0) == 16384.0);
    CHECK_EQ_INT((long long)atomic_load(&l.sum_ns), 99LL * 10000 + 10000000);
    /* zero and negative durations land in the first bucket, never below it */
    rn_latency_record(&l, 0);
    rn_latency_record(&l, -5);
    CHECK_EQ_INT((long long)atomic_load(&l.b[0]), 2);
    CHECK(rn_latency_quantile(&l, 0.0) == 0.125);
    /* an interval's counts: 3 at bucket 10 and 1 at bucket 20 */
    uint64_t n[RN_LATENCY_BUCKETS] = {0};
    n[10] = 3;
    n[20] = 1;
    CHECK(rn__latency_quantile(n, 0.5) == 128.0);
    CHECK(rn__latency_quantile(n, 0.99) == 131072.0);
}

int main(void)
{
    test_ring();
    test_latency();
    test_assets();
    return rn_test_summary();
}
