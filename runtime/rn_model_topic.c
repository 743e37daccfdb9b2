/*
 * rn_model_topic.c — model versions on a Kafka topic (include/runnel/rn_model.h,
 * "the model topic"): the learner's producer and the feed's reader.
 *
 * One message per version: key = the store's name, value = the version's
 * safetensors bytes with its manifest in the metadata (rn_model_encode). The
 * topic is made with cleanup.policy=compact, so a real broker keeps at least
 * the latest version of every key however long the job runs; a reader that
 * starts late reads the partitions from the beginning and serves the last
 * version it found once it has caught up.
 *
 * Size: a model is one message. librdkafka's defaults (message.max.bytes
 * 1 MB, fetch.max.bytes 50 MB, max.partition.fetch.bytes 1 MB) would refuse
 * or split a model of a few MB, so both sides raise them to
 * RN_MODEL_TOPIC_MAX_BYTES; a real broker must allow the same
 * (`max.message.bytes` on the topic: the producer sets it when it creates the
 * topic). librdkafka's mock cluster keeps only the last 5 MiB of a partition
 * but never drops the newest message: it took single versions up to 16.8 MB
 * (bench/bench_model_topic.c).
 *
 * This is the one file that talks to Kafka for models: librdkafka's errors
 * become messages and RN_E* codes here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "rn_config.h"
#include "rn_model.h"
#include "rn_model_topic_int.h"

#define RN__MTOPIC_MAX_STR "67108864"       /* RN_MODEL_TOPIC_MAX_BYTES */
#define RN__MTOPIC_RECV_MAX_STR "100000000" /* > fetch.max.bytes + 512 */
#define RN__MTOPIC_PARTITIONS_MAX 1024

/* A configuration with bootstrap.servers and the pairs in kv (NULL-ended). */
static rd_kafka_conf_t *rn__mtopic_conf(const char *brokers, const char *const *kv, char *errbuf,
                                        size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char e[512];
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, e, sizeof e) != RD_KAFKA_CONF_OK) {
        rn_errf(errbuf, errlen, "model topic: bootstrap.servers '%s': %s", brokers, e);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (size_t i = 0; kv[i]; i += 2)
        if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], e, sizeof e) != RD_KAFKA_CONF_OK) {
            rn_errf(errbuf, errlen, "model topic: librdkafka property '%s': %s", kv[i], e);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    return conf;
}

int rn_model_topic_cfg_check(const struct rn_model_topic_cfg *c, const char *store, int need_one,
                             const struct rn_cfg_node *node, char *errbuf, size_t errlen)
{
    if (!c->topic != !c->brokers) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, c->topic ? "model_topic" : "model_brokers"),
                    "'model_topic' and 'model_brokers' go together: give both or neither");
        return RN_EINVAL;
    }
    if (c->topic && (!c->topic[0] || !c->brokers[0])) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, c->topic[0] ? "model_brokers" : "model_topic"),
                    "must not be empty");
        return RN_EINVAL;
    }
    if (c->key && !c->key[0]) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "model_key"), "must not be empty");
        return RN_EINVAL;
    }
    if (need_one && !store && !c->topic) {
        rn_cfg_errf(errbuf, errlen, node,
                    "give 'model_store' (a directory), 'model_topic' with 'model_brokers' (a "
                    "Kafka topic), or both");
        return RN_EINVAL;
    }
    return 0;
}

/* ---- the producer ------------------------------------------------------------------- */

struct rn_model_pub {
    rd_kafka_t *rk;
    char *topic, *key, *brokers;
    struct rn_buf body; /* reused between versions */
};

/* 1 when the brokers know the topic, 0 when not, < 0 when they cannot be
 * asked. The producer is made with allow.auto.create.topics=false, so asking
 * does not create the topic on a real broker (with default settings, and
 * uncompacted). librdkafka's mock cluster creates it anyway, with 4
 * partitions, and cannot create topics otherwise (it has no controller for
 * CreateTopics). */
static int rn__mtopic_exists(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int rc = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
             md->topics[0].partition_cnt > 0;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return rc;
}

/* Creates the topic (1 partition, compacted) unless it exists. A broker that
 * refuses (no CreateTopics right) is not an error here: the first produce
 * reports a missing topic. */
static int rn__mtopic_create(rd_kafka_t *rk, const char *brokers, const char *topic, char *errbuf,
                             size_t errlen)
{
    char e[512];
    int rc = rn__mtopic_exists(rk, topic);
    if (rc < 0) {
        rn_errf(errbuf, errlen, "kafka %s: no answer to a metadata request for model topic '%s'",
                brokers, topic);
        return RN_EIO;
    }
    if (rc == 1) return 0;
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 1, -1, e, sizeof e);
    if (!nt) {
        rn_errf(errbuf, errlen, "model topic '%s': %s", topic, e);
        return RN_EINVAL;
    }
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_NewTopic_set_config(nt, "max.message.bytes", RN__MTOPIC_MAX_STR);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(o, 10000, e, sizeof e);
    rd_kafka_CreateTopics(rk, &nt, 1, o, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    if (!ev) {
        rn_errf(errbuf, errlen, "kafka %s: creating model topic '%s' timed out", brokers, topic);
        rc = RN_EIO;
    } else if (rd_kafka_event_error(ev)) {
        rn_errf(errbuf, errlen, "kafka %s: creating model topic '%s': %s", brokers, topic,
                rd_kafka_event_error_string(ev));
        rc = RN_EIO;
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t err = n ? rd_kafka_topic_result_error(res[0]) : 0;
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS &&
            err != RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION &&
            err != RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED &&
            err != RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
            rn_errf(errbuf, errlen, "kafka %s: creating model topic '%s': %s", brokers, topic,
                    rd_kafka_topic_result_error_string(res[0]));
            rc = RN_EIO;
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Delivery report: stores the result in the message's opaque. Runs in
 * rd_kafka_flush on the publishing thread. */
static void rn__mtopic_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->_private) *(rd_kafka_resp_err_t *)m->_private = m->err;
}

struct rn_model_pub *rn_model_pub_open(const char *brokers, const char *topic, const char *key,
                                       char *errbuf, size_t errlen)
{
    static const char *const kv[] = {"message.max.bytes",
                                     RN__MTOPIC_MAX_STR,
                                     "acks",
                                     "all",
                                     "linger.ms",
                                     "0",
                                     "enable.idempotence",
                                     "true",
                                     "allow.auto.create.topics",
                                     "false",
                                     NULL};
    rd_kafka_conf_t *conf = rn__mtopic_conf(brokers, kv, errbuf, errlen);
    if (!conf) return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, rn__mtopic_dr);
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        rn_errf(errbuf, errlen, "model topic: %s", e);
        return NULL;
    }
    if (rn__mtopic_create(rk, brokers, topic, errbuf, errlen)) {
        rd_kafka_destroy(rk);
        return NULL;
    }
    struct rn_model_pub *p = rn_xcalloc(1, sizeof *p);
    p->rk = rk;
    p->topic = rn_xstrdup(topic);
    p->key = rn_xstrdup(key);
    p->brokers = rn_xstrdup(brokers);
    return p;
}

int rn_model_pub_publish(struct rn_model_pub *p, const struct rn_model *m,
                         const struct rn_model_version *v, char *errbuf, size_t errlen)
{
    rn_buf_reset(&p->body);
    int rc = rn_model_encode(m, v, &p->body, errbuf, errlen);
    if (rc) return rc;
    if (p->body.len > RN_MODEL_TOPIC_MAX_BYTES) {
        rn_errf(errbuf, errlen,
                "model version %" PRId64 " is %zu bytes, more than a model topic message may "
                "hold (%d)",
                v->id, p->body.len, RN_MODEL_TOPIC_MAX_BYTES);
        return RN_EINVAL;
    }
    rd_kafka_resp_err_t result = RD_KAFKA_RESP_ERR__IN_PROGRESS;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_KEY(p->key, strlen(p->key)),
        RD_KAFKA_V_VALUE(p->body.data, p->body.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(&result), RD_KAFKA_V_END);
    if (err) {
        rn_errf(errbuf, errlen, "kafka %s: model version %" PRId64 " to '%s': %s", p->brokers,
                v->id, p->topic, rd_kafka_err2str(err));
        return RN_EIO;
    }
    rd_kafka_flush(p->rk, 30000);
    if (result != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rn_errf(errbuf, errlen, "kafka %s: model version %" PRId64 " (%zu bytes) to '%s': %s",
                p->brokers, v->id, p->body.len, p->topic,
                result == RD_KAFKA_RESP_ERR__IN_PROGRESS ? "not acknowledged within 30 s"
                                                         : rd_kafka_err2str(result));
        if (result == RD_KAFKA_RESP_ERR__IN_PROGRESS) rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE);
        /* A purged message still reports into `result` during the next
         * flush; make sure that happens before `result` goes out of scope. */
        rd_kafka_flush(p->rk, 1000);
        return RN_EIO;
    }
    return 0;
}

void rn_model_pub_close(struct rn_model_pub *p)
{
    if (!p) return;
    rd_kafka_flush(p->rk, 5000);
    rd_kafka_destroy(p->rk);
    rn_buf_free(&p->body);
    free(p->topic);
    free(p->key);
    free(p->brokers);
    free(p);
}

/* ---- the reader ----------------------------------------------------------------------- */

struct rn__mtopic_reader {
    rd_kafka_t *rk;
    char *topic, *key, *brokers;
    int assigned; /* partitions assigned, 0 until the topic was found */
    unsigned char eof[RN__MTOPIC_PARTITIONS_MAX];
};

struct rn__mtopic_reader *rn__mtopic_reader_open(const char *brokers, const char *topic,
                                                 const char *key, char *errbuf, size_t errlen)
{
    static const char *const kv[] = {"group.id",
                                     "runnel-model-feed",
                                     "enable.auto.commit",
                                     "false",
                                     "enable.auto.offset.store",
                                     "false",
                                     "enable.partition.eof",
                                     "true",
                                     "auto.offset.reset",
                                     "earliest",
                                     "allow.auto.create.topics",
                                     "false",
                                     "fetch.wait.max.ms",
                                     "100",
                                     "fetch.max.bytes",
                                     RN__MTOPIC_MAX_STR,
                                     "max.partition.fetch.bytes",
                                     RN__MTOPIC_MAX_STR,
                                     "receive.message.max.bytes",
                                     RN__MTOPIC_RECV_MAX_STR,
                                     NULL};
    rd_kafka_conf_t *conf = rn__mtopic_conf(brokers, kv, errbuf, errlen);
    if (!conf) return NULL;
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        rn_errf(errbuf, errlen, "model topic: %s", e);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    struct rn__mtopic_reader *r = rn_xcalloc(1, sizeof *r);
    r->rk = rk;
    r->topic = rn_xstrdup(topic);
    r->key = rn_xstrdup(key);
    r->brokers = rn_xstrdup(brokers);
    return r;
}

void rn__mtopic_reader_close(struct rn__mtopic_reader *r)
{
    if (!r) return;
    rd_kafka_consumer_close(r->rk);
    rd_kafka_destroy(r->rk);
    free(r->topic);
    free(r->key);
    free(r->brokers);
    free(r);
}

/* Finds the topic's partitions and assigns them all from the beginning.
 * Returns 0 (also when the topic does not exist yet: r->assigned stays 0),
 * or < 0 with a message. */
static int rn__mtopic_assign(struct rn__mtopic_reader *r, int timeout_ms, char *errbuf,
                             size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, r->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(r->rk, 0, rkt, &md, timeout_ms);
    int rc = 0;
    if (err) {
        rn_errf(errbuf, errlen, "kafka %s: metadata of model topic '%s': %s", r->brokers, r->topic,
                rd_kafka_err2str(err));
        rc = RN_EIO;
    } else if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
               md->topics[0].partition_cnt > 0) {
        int n = md->topics[0].partition_cnt;
        if (n > RN__MTOPIC_PARTITIONS_MAX) n = RN__MTOPIC_PARTITIONS_MAX;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
        for (int i = 0; i < n; i++)
            rd_kafka_topic_partition_list_add(l, r->topic, md->topics[0].partitions[i].id)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        err = rd_kafka_assign(r->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (err) {
            rn_errf(errbuf, errlen, "kafka %s: assigning model topic '%s': %s", r->brokers,
                    r->topic, rd_kafka_err2str(err));
            rc = RN_EIO;
        } else {
            r->assigned = n;
            memset(r->eof, 0, sizeof r->eof);
        }
    }
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

int rn__mtopic_reader_read(struct rn__mtopic_reader *r, int timeout_ms, struct rn_buf *latest,
                           char *where, size_t where_len, char *errbuf, size_t errlen)
{
    if (!r->assigned) {
        int rc = rn__mtopic_assign(r, timeout_ms > 1000 ? timeout_ms : 1000, errbuf, errlen);
        if (rc || !r->assigned) return rc;
    }
    int got = 0, rc = 0;
    size_t klen = strlen(r->key);
    for (int wait = timeout_ms;; wait = 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, wait);
        if (!m) break;
        int part = m->partition;
        int in_range = part >= 0 && part < RN__MTOPIC_PARTITIONS_MAX;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (in_range) r->eof[part] = 1;
        } else if (m->err) {
            rn_errf(errbuf, errlen, "kafka %s: model topic '%s': %s", r->brokers, r->topic,
                    rd_kafka_message_errstr(m));
            rc = RN_EIO;
        } else {
            if (in_range) r->eof[part] = 0;
            if (m->key_len == klen && memcmp(m->key, r->key, klen) == 0) {
                rn_buf_reset(latest);
                rn_buf_append(latest, m->payload, m->len);
                snprintf(where, where_len, "topic %s partition %d offset %" PRId64, r->topic, part,
                         (int64_t)m->offset);
                got = 1;
            }
        }
        rd_kafka_message_destroy(m);
    }
    return got ? 1 : rc;
}

int rn__mtopic_reader_caught_up(const struct rn__mtopic_reader *r)
{
    if (!r->assigned) return 0;
    for (int i = 0; i < r->assigned; i++)
        if (!r->eof[i]) return 0;
    return 1;
}
