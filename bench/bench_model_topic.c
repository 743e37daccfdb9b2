/*
 * bench_model_topic.c — model versions through a Kafka model topic on
 * librdkafka's mock cluster (in this process): for models of growing size,
 * the time to publish one version (encode, produce, wait for the brokers'
 * acknowledgement), the time a fresh topic feed takes to catch up and serve
 * it, and the feed's own load time (decode and warm-up). Medians of --runs
 * runs, one line per size. Not a test: docs/learning.md quotes it.
 *
 *   build/bench_model_topic [--runs N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "rn_model.h"

static double rn__now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int rn__cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double rn__median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, rn__cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int runs = 5;
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--runs") == 0) runs = atoi(argv[i + 1]);
    if (runs < 1 || runs > 100) runs = 5;
    char e[512];
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), e, sizeof e);
    if (!host) return 1;
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(host, 3);
    if (!mc) return 1;
    const char *brokers = rd_kafka_mock_cluster_bootstraps(mc);
    static const uint32_t phis[] = {1024, 4096, 6144, 16384};
    printf("%10s %12s %12s %12s\n", "MB", "publish_ms", "catchup_ms", "load_ms");
    for (size_t k = 0; k < sizeof phis / sizeof *phis; k++) {
        struct rn_model_shape s = {.dim = 256, .phi = phis[k], .buckets = 8, .positions = 4};
        struct rn_model *m = rn_model_create(&s);
        double pub[100], catchup[100], load[100];
        int ok = 1;
        for (int r = 0; r < runs && ok; r++) {
            char topic[64];
            snprintf(topic, sizeof topic, "bench-%zu-%d", k, r);
            struct rn_model_pub *p = rn_model_pub_open(brokers, topic, "k", e, sizeof e);
            struct rn_model_version v = {1, 0, 0, 0, 0, 0, 0};
            double t0 = rn__now();
            ok = p && rn_model_pub_publish(p, m, &v, e, sizeof e) == 0;
            double t1 = rn__now();
            struct rn_model_feed *f =
                ok ? rn_model_feed_acquire_topic(brokers, topic, "k", 1000, e, sizeof e) : NULL;
            ok = f && rn_model_feed_poll(f) == 1;
            double t2 = rn__now();
            struct rn_model_feed_stats st = {0};
            if (f) rn_model_feed_stats(f, &st);
            pub[r] = (t1 - t0) * 1e3;
            catchup[r] = (t2 - t1) * 1e3;
            load[r] = st.last_load_ms;
            rn_model_feed_release(f);
            rn_model_pub_close(p);
        }
        if (!ok) {
            fprintf(stderr, "bench_model_topic: %.2f MB: %s\n", (double)m->at.n * 4 / 1e6, e);
            return 1;
        }
        printf("%10.2f %12.1f %12.1f %12.1f\n", (double)m->at.n * 4 / 1e6, rn__median(pub, runs),
               rn__median(catchup, runs), rn__median(load, runs));
        rn_model_destroy(m);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
    return 0;
}
