/*
 * rn_cluster_kafka.c — how many tasks a cluster job has: the partition count
 * of the Kafka topics it reads, asked of the brokers with librdkafka's
 * metadata request; and the internal topics between the stages of a job
 * (rn_cluster_stages.c). The one place the coordinator talks to Kafka.
 *
 * A job's Kafka sources must be co-partitioned (docs/cluster.md): every topic
 * of every Kafka source has the same number of partitions, and task p reads
 * partition p of each. A job without a Kafka source is one task.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "rn_cluster_int.h"

/* A client for metadata and admin requests to `brokers`, with the librdkafka
 * properties of the source `src` (may be NULL); with no_create, metadata
 * requests do not create a missing topic. Returns NULL with a message. */
static rd_kafka_t *rn__client(const struct rn_cfg_node *src, const char *brokers, int no_create,
                              char *errbuf, size_t errlen)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const struct rn_cfg_node *props = src ? rn_cfg_get(src, "properties") : NULL;
    for (const struct rn_cfg_node *p = props && props->kind == RN_CFG_MAP ? props->child : NULL; p;
         p = p->next) {
        if (p->kind != RN_CFG_SCALAR) continue; /* the source's own check reports it */
        if (rd_kafka_conf_set(conf, p->key, p->value, e, sizeof e) != RD_KAFKA_CONF_OK) {
            rn_cfg_errf(errbuf, errlen, p, "%s", e);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, e, sizeof e) != RD_KAFKA_CONF_OK ||
        (no_create && rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", e, sizeof e) !=
                          RD_KAFKA_CONF_OK)) {
        rn_errf(errbuf, errlen, "kafka: %s", e);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        rn_errf(errbuf, errlen, "kafka: %s", e);
    }
    return rk;
}

/* Partition count of `topic`, or < 0 with a message. */
static int rn__topic_partitions(const struct rn_cfg_node *src, const char *brokers,
                                const char *topic, int *out, char *errbuf, size_t errlen)
{
    rd_kafka_t *rk = rn__client(src, brokers, 0, errbuf, errlen);
    if (!rk) return RN_EIO;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    int rc = 0;
    /* A topic the brokers have just created may report no partitions yet. */
    for (int attempt = 0; attempt < 20; attempt++) {
        err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
            md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0)
            break;
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && md->topics[0].err)
            err = md->topics[0].err;
        if (md) rd_kafka_metadata_destroy(md);
        md = NULL;
        if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__TIMED_OUT) break;
    }
    if (!md) {
        rn_errf(errbuf, errlen, "kafka %s: no partitions of topic '%s': %s", brokers, topic,
                err ? rd_kafka_err2str(err) : "the topic has none");
        rc = RN_EIO;
    } else {
        *out = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

int rn_cluster_partitions(const struct rn_cfg_doc *doc, int *n, char *errbuf, size_t errlen)
{
    *n = 1;
    const struct rn_cfg_node *sources = rn_cfg_get(doc->root, "sources");
    int count = 0;
    const char *first = NULL;
    for (const struct rn_cfg_node *s = sources && sources->kind == RN_CFG_MAP ? sources->child
                                                                              : NULL;
         s; s = s->next) {
        const struct rn_cfg_node *type = rn_cfg_get(s, "type");
        if (!type || type->kind != RN_CFG_SCALAR || strcmp(type->value, "kafka") != 0) continue;
        const struct rn_cfg_node *parts = rn_cfg_get(s, "partitions");
        const struct rn_cfg_node *sub = rn_cfg_get(s, "subscribe");
        if (parts) {
            rn_cfg_key_errf(errbuf, errlen, parts,
                            "in a cluster the coordinator gives each task its partition: "
                            "leave 'partitions' out");
            return RN_EINVAL;
        }
        if (sub && sub->kind == RN_CFG_SCALAR && strcmp(sub->value, "true") == 0) {
            rn_cfg_key_errf(errbuf, errlen, sub,
                            "in a cluster the coordinator gives each task its partition: "
                            "'subscribe: true' cannot be used");
            return RN_EINVAL;
        }
        const struct rn_cfg_node *b = rn_cfg_get(s, "bootstrap_servers");
        if (!b) b = rn_cfg_get(s, "brokers");
        const struct rn_cfg_node *topics = rn_cfg_get(s, "topics");
        if (!b || b->kind != RN_CFG_SCALAR || !topics) continue; /* the source reports it */
        const struct rn_cfg_node *t = topics->kind == RN_CFG_SEQ ? topics->child : topics;
        for (; t; t = topics->kind == RN_CFG_SEQ ? t->next : NULL) {
            if (t->kind != RN_CFG_SCALAR) continue;
            int np = 0;
            if (rn__topic_partitions(s, b->value, t->value, &np, errbuf, errlen)) return RN_EIO;
            if (count && np != count) {
                rn_cfg_errf(errbuf, errlen, t,
                            "topic '%s' has %d partitions but '%s' has %d: the topics a "
                            "cluster job reads must be co-partitioned (the same count)",
                            t->value, np, first, count);
                return RN_EINVAL;
            }
            count = np;
            first = t->value;
        }
    }
    if (count) *n = count;
    return 0;
}

int rn_cluster_topic_ensure(const char *brokers, const char *topic, int parts, int *out,
                            char *errbuf, size_t errlen)
{
    char e[512];
    rd_kafka_t *rk = rn__client(NULL, brokers, 1, errbuf, errlen);
    if (!rk) return RN_EIO;
    int rc = RN_EIO;
    errbuf[0] = 0;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    for (int attempt = 0; attempt < 20 && rc; attempt++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (!err && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0) {
            *out = md->topics[0].partition_cnt;
            rc = 0;
        } else if (!err && attempt == 0) {
            /* Missing: create it (a broker without CreateTopics, such as the
             * mock, created it on the metadata request instead). */
            rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, parts, -1, e, sizeof e);
            rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
            rd_kafka_AdminOptions_t *o =
                rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
            rd_kafka_AdminOptions_set_request_timeout(o, 5000, e, sizeof e);
            if (nt) rd_kafka_CreateTopics(rk, &nt, 1, o, q);
            rd_kafka_event_t *ev = nt ? rd_kafka_queue_poll(q, 8000) : NULL;
            if (ev) rd_kafka_event_destroy(ev);
            rd_kafka_AdminOptions_destroy(o);
            rd_kafka_queue_destroy(q);
            if (nt) rd_kafka_NewTopic_destroy(nt);
        } else if (err == RD_KAFKA_RESP_ERR__TRANSPORT) {
            rn_errf(errbuf, errlen, "kafka %s: %s", brokers, rd_kafka_err2str(err));
            if (md) rd_kafka_metadata_destroy(md);
            break;
        }
        if (md) rd_kafka_metadata_destroy(md);
    }
    if (rc && !errbuf[0])
        rn_errf(errbuf, errlen, "kafka %s: cannot create the internal topic '%s'", brokers, topic);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}
