/*
 * test_model_topic.c — model versions on a Kafka topic (rn_model.h, "the model
 * topic"), against librdkafka's mock cluster in this process:
 *   - a version's bytes round trip (parameters and manifest), and bad bytes
 *     are refused with a message naming them;
 *   - a topic feed started before anything was published serves nothing,
 *     then follows N published versions: the last is current, with the
 *     parameters it was published with; a replaced version is freed once no
 *     reader holds it, and not before;
 *   - a feed started late (a restarted inference task) catches up with the
 *     topic's history and serves the last version, loading only that one;
 *   - another store's versions on the same topic (another key) are ignored;
 *   - a model of 4 MB travels as one message (bench/bench_model_topic.c
 *     goes to 16.8 MB).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "rn_model.h"
#include "rn_test.h"

static struct rn_model *make_model(uint32_t dim, uint32_t phi, float base)
{
    struct rn_model_shape s = {.dim = dim, .phi = phi, .buckets = 8, .positions = 4};
    struct rn_model *m = rn_model_create(&s);
    for (size_t i = 0; i < m->at.n; i++)
        m->params[i] = base + (float)(i % 97) * 0.001f;
    return m;
}

static struct rn_model_version version(int64_t id)
{
    struct rn_model_version v = {id,
                                 1700000000000 + id,
                                 1000 * id,
                                 (uint64_t)(10 * id),
                                 (uint64_t)(100 * id),
                                 0.5 / (double)id,
                                 1.25 * (double)id};
    return v;
}

/* Waits (at most 20 s) until the feed serves `want`; returns what it serves. */
static int64_t wait_version(struct rn_model_feed *f, int64_t want)
{
    struct rn_model_feed_stats st;
    for (int i = 0; i < 400; i++) {
        rn_model_feed_stats(f, &st);
        if (st.version == want) return want;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    return st.version;
}

static void test_encode(void)
{
    struct rn_model *m = make_model(4, 10, 0.25f);
    struct rn_model_version v = version(7), back;
    struct rn_buf b = RN_BUF_INIT;
    char err[512];
    CHECK_EQ_INT(rn_model_encode(m, &v, &b, err, sizeof err), 0);
    struct rn_model *m2 = rn_model_decode(b.data, b.len, "msg", &back, err, sizeof err);
    CHECK(m2 != NULL);
    if (m2) {
        CHECK_EQ_INT(m2->at.n, m->at.n);
        CHECK(memcmp(m2->params, m->params, m->at.n * sizeof(float)) == 0);
        CHECK_EQ_INT(back.id, 7);
        CHECK_EQ_INT(back.created_ms, v.created_ms);
        CHECK_EQ_INT(back.event_time, 7000);
        CHECK_EQ_INT(back.updates, 70);
        CHECK_EQ_INT(back.transitions, 700);
        CHECK(back.loss == v.loss && back.mean_q == v.mean_q);
        rn_model_destroy(m2);
    }
    /* Another kind of model (an offline-RL actor with its perturbation layer)
     * travels the same way: the kind table writes and reads it. */
    struct rn_model_shape as = {.dim = 4, .phi = 6, .buckets = 3, .kind = RN_MODEL_ACTOR,
                                .activation = RN_ACTOR_TANH, .perturb = 1, .scale = 2.0f,
                                .pscale = 0.5f};
    struct rn_model *a = rn_model_create(&as);
    CHECK(a != NULL);
    if (a) {
        for (size_t i = 0; i < a->at.n; i++)
            a->params[i] = (float)i / 9.0f;
        struct rn_buf ab = RN_BUF_INIT;
        CHECK_EQ_INT(rn_model_encode(a, &v, &ab, err, sizeof err), 0);
        struct rn_model *a2 = rn_model_decode(ab.data, ab.len, "msg", &back, err, sizeof err);
        CHECK(a2 && a2->shape.kind == RN_MODEL_ACTOR && a2->shape.perturb == 1 &&
              a2->shape.activation == RN_ACTOR_TANH && a2->shape.scale == 2.0f &&
              a2->at.n == a->at.n &&
              memcmp(a2->params, a->params, a->at.n * sizeof(float)) == 0);
        CHECK_EQ_INT(back.id, 7);
        rn_model_destroy(a2);
        rn_buf_free(&ab);
        rn_model_destroy(a);
    }
    /* Truncated bytes, and a safetensors file that is not a model version. */
    CHECK(rn_model_decode(b.data, b.len - 5, "topic t partition 0 offset 3", NULL, err,
                          sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "topic t partition 0 offset 3: ");
    struct rn_buf other = RN_BUF_INIT;
    float x = 1;
    struct rn_tensor t = {"x", 1, {1}, &x};
    CHECK_EQ_INT(rn_st_encode(&t, 1, NULL, NULL, 0, "x", &other, err, sizeof err), 0);
    CHECK(rn_model_decode(other.data, other.len, "m", NULL, err, sizeof err) == NULL);
    CHECK_STR_CONTAINS(err, "m: metadata 'format' is '(none)'");
    rn_buf_free(&other);
    rn_buf_free(&b);
    rn_model_destroy(m);
}

static void test_follow(const char *brokers)
{
    char err[512];
    struct rn_model_feed *f =
        rn_model_feed_acquire_topic(brokers, "job.models", "learner", 50, err, sizeof err);
    CHECK(f != NULL);
    if (!f) {
        fprintf(stderr, "feed: %s\n", err);
        return;
    }
    /* Nothing published yet (the topic does not even exist). */
    CHECK_EQ_INT(rn_model_feed_poll(f), 0);
    int slot = rn_model_feed_slot(f);
    CHECK(slot >= 0);
    CHECK(rn_model_feed_enter(f, slot, NULL) == NULL);
    rn_model_feed_exit(f, slot);

    struct rn_model_pub *p = rn_model_pub_open(brokers, "job.models", "learner", err, sizeof err);
    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "pub: %s\n", err);
        rn_model_feed_release(f);
        return;
    }
    /* Another store on the same topic: never served by this feed. */
    struct rn_model_pub *q = rn_model_pub_open(brokers, "job.models", "other", err, sizeof err);
    CHECK(q != NULL);

    struct rn_model *m = make_model(4, 10, 1.0f);
    struct rn_model_version v = version(1);
    CHECK_EQ_INT(rn_model_pub_publish(p, m, &v, err, sizeof err), 0);
    CHECK_EQ_INT(wait_version(f, 1), 1);

    /* A reader holds version 1 while versions 2..N arrive. */
    int64_t got = -1;
    const struct rn_model *held = rn_model_feed_enter(f, slot, &got);
    CHECK_EQ_INT(got, 1);
    CHECK(held && held->params[0] == 1.0f);
    enum { N = 6 };
    for (int64_t id = 2; id <= N; id++) {
        m->params[0] = (float)id;
        v = version(id);
        CHECK_EQ_INT(rn_model_pub_publish(p, m, &v, err, sizeof err), 0);
        CHECK_EQ_INT(wait_version(f, id), id);
        struct rn_model_version ov = version(100 + id);
        if (q) CHECK_EQ_INT(rn_model_pub_publish(q, m, &ov, err, sizeof err), 0);
    }
    struct rn_model_feed_stats st;
    rn_model_feed_stats(f, &st);
    CHECK_EQ_INT(st.version, N);
    CHECK_EQ_INT(st.failures, 0);
    /* Version 1 is still readable: held, not freed. */
    CHECK(held->params[0] == 1.0f);
    CHECK(st.held >= 1);
    rn_model_feed_exit(f, slot);
    /* Once let go, every replaced version is freed within a poll or two. */
    for (int i = 0; i < 200; i++) {
        rn_model_feed_stats(f, &st);
        if (st.held == 0 && st.freed == st.loads - 1) break;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK_EQ_INT(st.held, 0);
    CHECK_EQ_INT(st.freed, st.loads - 1);
    const struct rn_model *cur = rn_model_feed_enter(f, slot, &got);
    CHECK_EQ_INT(got, N);
    CHECK(cur && cur->params[0] == (float)N && cur->params[1] == 1.0f + 0.001f);
    rn_model_feed_exit(f, slot);
    rn_model_feed_slot_free(f, slot);

    /* A second acquire of the same topic and key is the same feed. */
    struct rn_model_feed *f2 =
        rn_model_feed_acquire_topic(brokers, "job.models", "learner", 50, err, sizeof err);
    CHECK(f2 == f);
    rn_model_feed_release(f2);
    rn_model_feed_release(f);

    /* A feed that starts late catches up, and loads only the last version. */
    f = rn_model_feed_acquire_topic(brokers, "job.models", "learner", 1000, err, sizeof err);
    CHECK(f != NULL);
    if (f) {
        CHECK_EQ_INT(rn_model_feed_poll(f), N);
        rn_model_feed_stats(f, &st);
        CHECK_EQ_INT(st.loads, 1);
        rn_model_feed_release(f);
    }
    /* The other store's feed sees only its own versions. */
    f = rn_model_feed_acquire_topic(brokers, "job.models", "other", 1000, err, sizeof err);
    CHECK(f != NULL);
    if (f) {
        CHECK_EQ_INT(rn_model_feed_poll(f), 100 + N);
        rn_model_feed_release(f);
    }
    rn_model_destroy(m);
    rn_model_pub_close(q);
    rn_model_pub_close(p);
}

static void test_big(const char *brokers)
{
    char err[512];
    /* D = 256, F = 4096: W alone is 4 MiB of float32. */
    struct rn_model *m = make_model(256, 4096, 2.0f);
    struct rn_model_pub *p = rn_model_pub_open(brokers, "big.models", "learner", err, sizeof err);
    CHECK(p != NULL);
    if (!p) return;
    struct rn_model_version v = version(3);
    int rc = rn_model_pub_publish(p, m, &v, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    if (rc) fprintf(stderr, "big: %s\n", err);
    struct rn_model_feed *f =
        rn_model_feed_acquire_topic(brokers, "big.models", "learner", 1000, err, sizeof err);
    CHECK(f != NULL);
    if (f) {
        CHECK_EQ_INT(rn_model_feed_poll(f), 3);
        int slot = rn_model_feed_slot(f);
        const struct rn_model *got = rn_model_feed_enter(f, slot, NULL);
        CHECK(got && got->at.n == m->at.n &&
              memcmp(got->params, m->params, m->at.n * sizeof(float)) == 0);
        rn_model_feed_exit(f, slot);
        rn_model_feed_slot_free(f, slot);
        rn_model_feed_release(f);
    }
    rn_model_pub_close(p);
    rn_model_destroy(m);
}

int main(void)
{
    test_encode();

    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!host) {
        fprintf(stderr, "mock host: %s\n", e);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(host, 3);
    CHECK(mc != NULL);
    if (mc) {
        const char *brokers = rd_kafka_mock_cluster_bootstraps(mc);
        test_follow(brokers);
        test_big(brokers);
        rd_kafka_mock_cluster_destroy(mc);
    }
    rd_kafka_destroy(host);
    return rn_test_summary();
}
