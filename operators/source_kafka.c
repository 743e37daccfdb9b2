/*
 * source_kafka.c — the `kafka` source: reads Kafka topics with a librdkafka
 * consumer and emits one `raw` record per message, like the `file` source
 * emits one per line, so log_collector takes either unchanged.
 *
 * Who reads which partition. By default the source assigns partitions
 * itself, as Flink's Kafka source does: the (topic, partition) pairs of its
 * topics — every partition, or those listed in `partitions` — are sorted and
 * pair j goes to subtask j % parallelism. A worker that should read a subset
 * is given that subset in `partitions`. With `subscribe: true` the consumer
 * instead joins the consumer group `group_id` and Kafka's group coordinator
 * hands out partitions (rebalance callback below).
 *
 * Positions. The source's position is the next offset of every partition it
 * has read, kept in runnel's checkpoints (snapshot/restore below) and used on
 * restore; Kafka's committed offsets are not read back. A fresh start (no
 * checkpoint) begins at `auto_offset_reset` (earliest or latest). When a
 * checkpoint completes, the offsets it covers are committed to Kafka under
 * `group_id`, for monitoring tools (consumer lag in kafka-consumer-groups.sh).
 *
 * Each partition has its own librdkafka queue (not forwarded to the consumer
 * queue). One poll() takes a batch from one partition, round robin, and says
 * which split (partition) the records came from (rn_op_source_split), so the
 * runtime keeps the event-time watermark per partition and an idle partition
 * does not hold the others back (rn_time.c).
 *
 * Records: line = the message value, split = "topic/partition", offset = the
 * message offset; so a dead letter names topic, partition and offset. A value
 * longer than max_message keeps its first bytes with orig_len set to its
 * full length, which log_collector dead-letters, as for an overlong line.
 *
 * End markers (kafka_records with `end_markers: N`). The internal topic
 * between two stages of a cluster job never ends by itself: each upstream
 * sink writes an end marker into every partition once all it wrote is
 * committed (sink_kafka.c). A partition ends when the markers of N distinct
 * writers (each complete with all its subtasks) have been read in it; every
 * record of those writers lies before their markers. The writers seen are
 * part of the partition's checkpointed position: a marker read before a
 * checkpoint's cut is not read again after a restore from it. Markers are
 * never emitted; a marker written twice (a writer that restarted after its
 * end) counts once.
 *
 * Everything runs on the subtask's worker thread; librdkafka's own threads
 * only fill the partition queues.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka_common.h"
#include "rn_checkpoint.h"
#include "rn_operator.h"

#define RN_KSRC_SNAPSHOT_VERSION 2 /* 2 adds the end markers read; 1 is still read */
#define RN_KSRC_MAX_PARTS 4096
#define RN_KSRC_LAG_EVERY_NS (200 * 1000000L)
#define RN_KSRC_PENDING_MAX 64 /* checkpoints whose offsets wait to be committed */

struct rn_kafka_source_cfg {
    struct rn_kafka_common kc;
    const struct rn_cfg_node *topics_node;
    const struct rn_cfg_node *partitions_node;
    const char *group_id;
    int subscribe;
    int offset_reset; /* 0 earliest, 1 latest */
    int stop_at_end;
    int64_t max_message;
    int64_t metadata_timeout;
    int64_t max_rate;
    const char *record_type; /* kafka_records: the type of the records it reads */
    const char *partitioned_by; /* for the coordinator's stages only */
    int64_t end_markers;        /* kafka_records: writers whose end markers end a partition */
    /* Filled by init. */
    char **topics;
    size_t n_topics;
    int32_t *partitions; /* NULL: every partition */
    size_t n_partitions;
};

/* An end marker read in a partition: a writer's subtask. */
struct rn_kend {
    char *writer;
    uint32_t sub, par;
};

/* One partition the subtask reads (or has read: a partition that moved away
 * in subscribe mode keeps its offset, with q == NULL). */
struct rn_kpart {
    char *topic;
    int32_t partition;
    char *split; /* "topic/partition" */
    size_t split_len;
    int64_t next;    /* next offset to read; < 0: not known yet (librdkafka's logical) */
    int64_t end;     /* stop_at_end: the high watermark at start */
    int64_t lag;     /* high watermark - next, last computed */
    int done;        /* stop_at_end: reached end */
    int split_index; /* index given to rn_op_source_split */
    rd_kafka_queue_t *q;
    struct rn_kend *ends; /* end markers read (checkpointed with next) */
    size_t n_ends;
};

struct rn_kpending {
    uint64_t id;
    rd_kafka_topic_partition_list_t *offsets;
};

struct rn_kafka_source {
    rd_kafka_t *rk;
    struct rn_kpart *parts;
    size_t n_parts;
    size_t rr; /* round robin over parts */
    int n_splits;
    /* Restored offsets (before open) and, in subscribe mode, for partitions
     * assigned later. */
    struct rn_kpart *restored;
    size_t n_restored;
    int is_restored;
    struct rn_kpending pending[RN_KSRC_PENDING_MAX];
    size_t n_pending;
    int64_t lag_total;
    struct rn_pacer pacer; /* max_rate */
    int64_t lag_at_ns;
    rd_kafka_message_t **msgs;
    struct rn_op *op; /* for the rebalance callback */
    char errstr[512];
    int fatal;
};

static const char *const rn_ksrc_resets[] = {"earliest", "latest", NULL};

/* The keys of both Kafka sources (`kafka` and `kafka_records`). */
#define RN_KSRC_KEYS \
    RN_KAFKA_COMMON_KEYS(struct rn_kafka_source_cfg), \
    {"topics", RN_CT_NODE, NULL, NULL, offsetof(struct rn_kafka_source_cfg, topics_node), \
     "Topic or list of topics to read.", NULL, RN_CK_REQUIRED, 0, 0}, \
    {"group_id", RN_CT_STRING, "runnel", NULL, offsetof(struct rn_kafka_source_cfg, group_id), \
     "Consumer group: offsets of completed checkpoints are committed under it (for " \
     "monitoring); with subscribe, the group whose members share the partitions.", \
     NULL, 0, 0, 0}, \
    {"partitions", RN_CT_NODE, NULL, NULL, offsetof(struct rn_kafka_source_cfg, partitions_node), \
     "Partition numbers to read, of every topic, e.g. [0, 2] (default: all). The subtasks " \
     "divide them round robin.", \
     NULL, 0, 0, 0}, \
    {"subscribe", RN_CT_BOOL, "false", NULL, offsetof(struct rn_kafka_source_cfg, subscribe), \
     "Join the consumer group and let Kafka assign partitions, instead of assigning them by " \
     "subtask.", \
     NULL, 0, 0, 0}, \
    {"auto_offset_reset", RN_CT_ENUM, "earliest", NULL, \
     offsetof(struct rn_kafka_source_cfg, offset_reset), \
     "Where a fresh start (no checkpoint) begins in each partition; also where a partition " \
     "whose checkpointed offset is no longer on the broker resumes.", \
     rn_ksrc_resets, 0, 0, 0}, \
    {"stop_at_end", RN_CT_BOOL, "false", NULL, offsetof(struct rn_kafka_source_cfg, stop_at_end), \
     "Bounded: read up to the end offsets the partitions had when the job started, then end " \
     "the stream.", \
     NULL, 0, 0, 0}, \
    {"max_message", RN_CT_SIZE, "1MiB", "bytes", offsetof(struct rn_kafka_source_cfg, max_message), \
     "Longest message value passed on whole; longer ones are dead-lettered by log_collector.", NULL, \
     0, 16, (int64_t)1 << 30}, \
    {"metadata_timeout", RN_CT_DURATION, "10s", "ms", \
     offsetof(struct rn_kafka_source_cfg, metadata_timeout), \
     "How long to wait for the brokers when the source starts (topic metadata, end offsets).", NULL, \
     0, 1, 3600000}, \
    {"partitioned_by", RN_CT_STRING, NULL, NULL, offsetof(struct rn_kafka_source_cfg, partitioned_by), \
     "The record field the topics' producers keyed messages by (such as `user`). In a cluster, " \
     "a keyed operator on another field starts a new stage (docs/cluster.md); default: the key " \
     "of the first keyed operator after the source.", \
     NULL, 0, 0, 0}, \
    {"max_rate", RN_CT_INT, "0", "messages/s", offsetof(struct rn_kafka_source_cfg, max_rate), \
     "Read at most this many messages per second per subtask (0: as fast as possible).", NULL, 0, 0, \
     (int64_t)1 << 40},

static const struct rn_config_key rn_kafka_source_keys[] = {
    RN_KSRC_KEYS
    RN_CONFIG_END,
};

static const struct rn_config_key rn_kafka_records_keys[] = {
    RN_KSRC_KEYS
    {"record_type", RN_CT_STRING, NULL, NULL, offsetof(struct rn_kafka_source_cfg, record_type),
     "The record type the topic carries (written by a `kafka` sink with `format: record`), "
     "such as `event` or `experience`: the type this source emits. Required.",
     NULL, RN_CK_REQUIRED, 0, 0},
    {"end_markers", RN_CT_INT, "0", "writers", offsetof(struct rn_kafka_source_cfg, end_markers),
     "End a partition once the end markers of this many writers (`kafka` sinks with "
     "`end_markers: true`, all subtasks of each) are read in it; the source ends when every "
     "partition has. The coordinator sets it to the number of upstream tasks between the "
     "stages of a cluster job. 0: the topic never ends.",
     NULL, 0, 0, 1 << 20},
    RN_CONFIG_END,
};

/* Properties the source manages itself. */
static const char *const rn_ksrc_reserved[] = {"bootstrap.servers",
                                               "group.id",
                                               "enable.auto.commit",
                                               "enable.auto.offset.store",
                                               "auto.offset.reset",
                                               "enable.partition.eof",
                                               NULL};

static int rn_kafka_source_init(void *ctx, const struct rn_cfg_node *node, char *errbuf,
                                size_t errlen)
{
    struct rn_kafka_source_cfg *c = ctx;
    int rc = rn__kafka_check(&c->kc, node, rn_ksrc_reserved, errbuf, errlen);
    if (rc) return rc;
    const struct rn_cfg_node *t = c->topics_node;
    const struct rn_cfg_node *first = t->kind == RN_CFG_SEQ ? t->child : t;
    if (t->kind == RN_CFG_MAP || !first) {
        rn_cfg_errf(errbuf, errlen, t, "'topics' must be a topic name or a list of them");
        return RN_EINVAL;
    }
    for (const struct rn_cfg_node *n = first; n; n = t->kind == RN_CFG_SEQ ? n->next : NULL) {
        if (n->kind != RN_CFG_SCALAR || !n->value[0]) {
            rn_cfg_errf(errbuf, errlen, n, "a topic must be a non-empty name");
            return RN_EINVAL;
        }
        c->topics = rn_xrealloc(c->topics, (c->n_topics + 1) * sizeof *c->topics);
        c->topics[c->n_topics++] = rn_xstrdup(n->value);
    }
    const struct rn_cfg_node *p = c->partitions_node;
    if (p) {
        if (c->subscribe) {
            rn_cfg_key_errf(errbuf, errlen, p,
                            "'partitions' and 'subscribe: true' exclude each other (with "
                            "subscribe, the consumer group assigns partitions)");
            return RN_EINVAL;
        }
        const struct rn_cfg_node *pf = p->kind == RN_CFG_SEQ ? p->child : p;
        if (p->kind == RN_CFG_MAP || !pf) {
            rn_cfg_errf(errbuf, errlen, p, "'partitions' must be a list of partition numbers");
            return RN_EINVAL;
        }
        for (const struct rn_cfg_node *n = pf; n; n = p->kind == RN_CFG_SEQ ? n->next : NULL) {
            int64_t v;
            if (n->kind != RN_CFG_SCALAR || rn_parse_i64(n->value, &v) || v < 0 || v > INT32_MAX) {
                rn_cfg_errf(errbuf, errlen, n, "a partition must be a number >= 0");
                return RN_EINVAL;
            }
            for (size_t i = 0; i < c->n_partitions; i++) {
                if (c->partitions[i] == v) {
                    rn_cfg_errf(errbuf, errlen, n, "partition %lld is listed twice", (long long)v);
                    return RN_EINVAL;
                }
            }
            c->partitions =
                rn_xrealloc(c->partitions, (c->n_partitions + 1) * sizeof *c->partitions);
            c->partitions[c->n_partitions++] = (int32_t)v;
        }
    }
    if (c->subscribe && c->end_markers > 0) {
        rn_cfg_key_errf(errbuf, errlen, rn_cfg_get(node, "end_markers"),
                        "'end_markers' needs assigned partitions (not 'subscribe: true')");
        return RN_EINVAL;
    }
    if (c->subscribe && c->stop_at_end) {
        rn_cfg_key_errf(errbuf, errlen, rn_cfg_get(node, "stop_at_end"),
                        "'stop_at_end' needs assigned partitions (not 'subscribe: true')");
        return RN_EINVAL;
    }
    return 0;
}

static void rn_kafka_source_fini(void *ctx)
{
    struct rn_kafka_source_cfg *c = ctx;
    for (size_t i = 0; i < c->n_topics; i++)
        free(c->topics[i]);
    free(c->topics);
    free(c->partitions);
}

/* ---- partitions -------------------------------------------------------------------- */

static struct rn_kafka_source *rn__ksrc_local(struct rn_op *op)
{
    struct rn_kafka_source *s = rn_op_local(op);
    if (!s) {
        s = rn_xcalloc(1, sizeof *s);
        s->op = op;
        rn_op_set_local(op, s);
    }
    return s;
}

static struct rn_kpart *rn__kpart_find(struct rn_kpart *v, size_t n, const char *topic, int32_t p)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].partition == p && strcmp(v[i].topic, topic) == 0) return &v[i];
    return NULL;
}

/* Records that subtask sub of par of writer (wlen bytes, copied) ended in
 * partition k, once. */
static void rn__kend_add(struct rn_kpart *k, const char *writer, size_t wlen, uint32_t sub,
                         uint32_t par)
{
    for (size_t i = 0; i < k->n_ends; i++)
        if (k->ends[i].sub == sub && strlen(k->ends[i].writer) == wlen &&
            memcmp(k->ends[i].writer, writer, wlen) == 0)
            return;
    k->ends = rn_xrealloc(k->ends, (k->n_ends + 1) * sizeof *k->ends);
    k->ends[k->n_ends++] = (struct rn_kend){rn_xstrndup(writer, wlen), sub, par};
}

/* The writers of which every subtask's marker was read in k. */
static int64_t rn__kend_complete(const struct rn_kpart *k)
{
    int64_t n = 0;
    for (size_t i = 0; i < k->n_ends; i++) {
        int first = 1;
        uint32_t subs = 0;
        for (size_t j = 0; j < k->n_ends; j++) {
            if (strcmp(k->ends[j].writer, k->ends[i].writer) != 0) continue;
            if (j < i) first = 0;
            subs++;
        }
        n += first && subs >= k->ends[i].par;
    }
    return n;
}

static void rn__kend_free(struct rn_kpart *k)
{
    for (size_t i = 0; i < k->n_ends; i++)
        free(k->ends[i].writer);
    free(k->ends);
    k->ends = NULL;
    k->n_ends = 0;
}

/* Adds (topic, p) to the subtask's partitions, at its restored offset if the
 * checkpoint had one. */
static struct rn_kpart *rn__kpart_add(struct rn_kafka_source *s, const char *topic, int32_t p)
{
    struct rn_kpart *k = rn__kpart_find(s->parts, s->n_parts, topic, p);
    if (k) return k;
    s->parts = rn_xrealloc(s->parts, (s->n_parts + 1) * sizeof *s->parts);
    k = &s->parts[s->n_parts++];
    memset(k, 0, sizeof *k);
    k->topic = rn_xstrdup(topic);
    k->partition = p;
    size_t n = strlen(topic) + 16;
    k->split = rn_xmalloc(n);
    k->split_len = (size_t)snprintf(k->split, n, "%s/%" PRId32, topic, p);
    k->next = -1;
    k->end = -1;
    k->split_index = s->n_splits++;
    struct rn_kpart *r = rn__kpart_find(s->restored, s->n_restored, topic, p);
    if (r) {
        const struct rn_kafka_source_cfg *c = rn_op_ctx(s->op);
        k->next = r->next;
        for (size_t i = 0; i < r->n_ends; i++)
            rn__kend_add(k, r->ends[i].writer, strlen(r->ends[i].writer), r->ends[i].sub,
                         r->ends[i].par);
        if (c->end_markers > 0 && rn__kend_complete(k) >= c->end_markers) k->done = 1;
    }
    return k;
}

static int rn__kpart_cmp(const void *a, const void *b)
{
    const struct rn_kpart *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* The librdkafka offset a partition starts at: its restored/next offset, or
 * the reset position. */
static int64_t rn__kpart_start(const struct rn_kafka_source_cfg *c, const struct rn_kpart *k)
{
    if (k->next >= 0) return k->next;
    return c->offset_reset == 0 ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
}

/* Takes partition k's messages off the consumer queue onto its own. */
static void rn__kpart_queue(struct rn_kafka_source *s, struct rn_kpart *k)
{
    if (k->q) return;
    k->q = rd_kafka_queue_get_partition(s->rk, k->topic, k->partition);
    if (k->q) rd_kafka_queue_forward(k->q, NULL);
}

/* Static assignment: every (topic, partition) of the job's topics, sorted;
 * this subtask takes every parallelism-th. */
static int rn__ksrc_assign_static(struct rn_op *op, struct rn_kafka_source *s)
{
    const struct rn_kafka_source_cfg *c = rn_op_ctx(op);
    struct rn_kpart *all = NULL;
    size_t n_all = 0;
    for (size_t t = 0; t < c->n_topics; t++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->rk, c->topics[t], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err =
            rd_kafka_metadata(s->rk, 0, rkt, &md, (int)RN_MIN(c->metadata_timeout, INT32_MAX));
        rd_kafka_topic_destroy(rkt);
        if (err || md->topic_cnt != 1 || md->topics[0].err) {
            rd_kafka_resp_err_t e = err                  ? err
                                    : md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                                                         : md->topics[0].err;
            rn_op_errorf(op, "topic '%s' at %s: %s", c->topics[t], rn__kafka_bootstrap(&c->kc),
                         rd_kafka_err2str(e));
            if (!err) rd_kafka_metadata_destroy(md); /* md is set exactly when err is 0 */
            free(all);
            return RN_EIO;
        }
        int cnt = md->topics[0].partition_cnt;
        for (int i = 0; i < cnt; i++) {
            int32_t p = md->topics[0].partitions[i].id;
            int listed = !c->partitions;
            for (size_t j = 0; j < c->n_partitions; j++)
                listed |= c->partitions[j] == p;
            if (!listed) continue;
            all = rn_xrealloc(all, (n_all + 1) * sizeof *all);
            all[n_all++] = (struct rn_kpart){.topic = c->topics[t], .partition = p};
        }
        for (size_t j = 0; j < c->n_partitions; j++) {
            int found = 0;
            for (int i = 0; i < cnt; i++)
                found |= md->topics[0].partitions[i].id == c->partitions[j];
            if (!found) {
                rn_op_errorf(op, "topic '%s' has no partition %" PRId32 " (it has %d)",
                             c->topics[t], c->partitions[j], cnt);
                rd_kafka_metadata_destroy(md);
                free(all);
                return RN_EINVAL;
            }
        }
        rd_kafka_metadata_destroy(md);
    }
    qsort(all, n_all, sizeof *all, rn__kpart_cmp);
    uint32_t sub = rn_op_subtask(op), par = rn_op_parallelism(op);
    for (size_t j = sub; j < n_all; j += par)
        rn__kpart_add(s, all[j].topic, all[j].partition);
    free(all);
    if (!s->n_parts) return 0; /* more subtasks than partitions: this one stays idle */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)s->n_parts);
    for (size_t i = 0; i < s->n_parts; i++) {
        struct rn_kpart *k = &s->parts[i];
        rd_kafka_topic_partition_list_add(l, k->topic, k->partition)->offset =
            rn__kpart_start(c, k);
    }
    for (size_t i = 0; i < s->n_parts; i++)
        rn__kpart_queue(s, &s->parts[i]);
    rd_kafka_resp_err_t err = rd_kafka_assign(s->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        rn_op_errorf(op, "assigning partitions: %s", rd_kafka_err2str(err));
        return RN_EIO;
    }
    if (c->stop_at_end) {
        for (size_t i = 0; i < s->n_parts; i++) {
            struct rn_kpart *k = &s->parts[i];
            int64_t lo, hi;
            err = rd_kafka_query_watermark_offsets(s->rk, k->topic, k->partition, &lo, &hi,
                                                   (int)RN_MIN(c->metadata_timeout, INT32_MAX));
            if (err) {
                rn_op_errorf(op, "end offset of %s: %s", k->split, rd_kafka_err2str(err));
                return RN_EIO;
            }
            k->end = hi;
            if (k->next >= hi || hi == lo || c->offset_reset == 1) k->done = 1;
        }
    }
    return 0;
}

/* Subscribe mode: the group coordinator (re)assigns partitions. Runs inside
 * rd_kafka_consumer_poll(), on the worker thread. */
static void rn__ksrc_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *l, void *opaque)
{
    struct rn_kafka_source *s = opaque;
    const struct rn_kafka_source_cfg *c = rn_op_ctx(s->op);
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < l->cnt; i++) {
            struct rn_kpart *k = rn__kpart_add(s, l->elems[i].topic, l->elems[i].partition);
            l->elems[i].offset = rn__kpart_start(c, k);
            rn__kpart_queue(s, k);
        }
        rd_kafka_error_t *e = NULL;
        rd_kafka_resp_err_t r = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (coop)
            e = rd_kafka_incremental_assign(rk, l);
        else
            r = rd_kafka_assign(rk, l);
        if (e) {
            snprintf(s->errstr, sizeof s->errstr, "assign: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            s->fatal = 1;
        } else if (r) {
            snprintf(s->errstr, sizeof s->errstr, "assign: %s", rd_kafka_err2str(r));
            s->fatal = 1;
        }
        return;
    }
    /* Revoked (or lost): keep the partitions' offsets for the snapshot, drop
     * their queues. */
    for (int i = 0; i < l->cnt; i++) {
        struct rn_kpart *k =
            rn__kpart_find(s->parts, s->n_parts, l->elems[i].topic, l->elems[i].partition);
        if (k && k->q) {
            rd_kafka_queue_destroy(k->q);
            k->q = NULL;
        }
    }
    if (coop) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, l);
        if (e) rd_kafka_error_destroy(e);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

/* ---- lifecycle --------------------------------------------------------------------- */

static int rn_kafka_source_open(struct rn_op *op)
{
    const struct rn_kafka_source_cfg *c = rn_op_ctx(op);
    struct rn_kafka_source *s = rn__ksrc_local(op);
    s->msgs = rn_xmalloc(RN_BATCH_RECORDS * sizeof *s->msgs);
    /* clang-format off */
    const char *defaults[] = {
        "group.id", c->group_id,
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "enable.partition.eof", "false",
        "auto.offset.reset", c->offset_reset == 0 ? "earliest" : "latest",
        "fetch.wait.max.ms", "10",
        "session.timeout.ms", "6000",
        "log.connection.close", "false",
        NULL};
    /* clang-format on */
    char err[512];
    rd_kafka_conf_t *conf = rn__kafka_conf(&c->kc, defaults, err, sizeof err);
    if (!conf) {
        rn_op_errorf(op, "%s", err);
        return RN_EINVAL;
    }
    rd_kafka_conf_set_opaque(conf, s);
    if (c->subscribe) rd_kafka_conf_set_rebalance_cb(conf, rn__ksrc_rebalance);
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        rn_op_errorf(op, "cannot create a Kafka consumer: %s", err);
        return RN_EINVAL;
    }
    rd_kafka_poll_set_consumer(s->rk);
    if (!c->subscribe) return rn__ksrc_assign_static(op, s);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)c->n_topics);
    for (size_t t = 0; t < c->n_topics; t++)
        rd_kafka_topic_partition_list_add(l, c->topics[t], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(s->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        rn_op_errorf(op, "subscribe: %s", rd_kafka_err2str(e));
        return RN_EIO;
    }
    return 0;
}

/* Recomputes the consumer lag from the high watermarks librdkafka caches
 * from its fetches (no request to the broker) and publishes the change. */
static void rn__ksrc_lag(struct rn_op *op, struct rn_kafka_source *s)
{
    int64_t now = rn_now_ns();
    if (now - s->lag_at_ns < RN_KSRC_LAG_EVERY_NS) return;
    s->lag_at_ns = now;
    int64_t total = 0;
    for (size_t i = 0; i < s->n_parts; i++) {
        struct rn_kpart *k = &s->parts[i];
        if (!k->q) continue;
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(s->rk, k->topic, k->partition, &lo, &hi) || hi < 0)
            continue;
        int64_t at = k->next >= 0 ? k->next : lo;
        k->lag = hi > at ? hi - at : 0;
        total += k->lag;
    }
    /* The counter is a gauge: add the difference (wrapping is fine). */
    rn_op_metric_add(op, 2, (uint64_t)(total - s->lag_total));
    s->lag_total = total;
}

static void rn__ksrc_emit(struct rn_op *op, struct rn_emitter *out, const struct rn_kpart *k,
                          const rd_kafka_message_t *m)
{
    const struct rn_kafka_source_cfg *c = rn_op_ctx(op);
    if (c->record_type) {
        struct rn_record rec;
        const char *type, *why = NULL;
        uint32_t tlen;
        if (rn__krec_decode(m->payload, m->len, &rec, &type, &tlen, &why) == 0 &&
            (tlen != strlen(c->record_type) || memcmp(type, c->record_type, tlen) != 0))
            why = "record of another type than the source's record_type";
        if (!why) {
            rn_emit_copy(out, 0, &rec);
        } else {
            size_t len = RN_MIN(m->len, 4096);
            rn_emit_dead_letter(out, 1, op, k->split, k->split_len, m->offset, why, m->payload,
                                len, (uint32_t)RN_MIN(m->len, UINT32_MAX));
            rn_op_metric_add(op, 3, 1);
        }
        return;
    }
    size_t len = m->len;
    uint32_t orig = (uint32_t)RN_MIN(m->len, UINT32_MAX);
    if ((int64_t)len > c->max_message) len = (size_t)RN_MIN(c->max_message, 4096);
    uint32_t total = (uint32_t)(sizeof(struct rn_raw) + len + k->split_len);
    struct rn_raw *r = rn_emit(out, 0, RN_TS_MIN, 0, total);
    r->offset = m->offset;
    r->source = (uint32_t)rn_op_source_index(op);
    r->orig_len = orig;
    r->line = (struct rn_str){sizeof *r, (uint32_t)len};
    r->split = (struct rn_str){(uint32_t)(sizeof *r + len), (uint32_t)k->split_len};
    if (len) memcpy((char *)(r + 1), m->payload, len);
    memcpy((char *)(r + 1) + len, k->split, k->split_len);
}

/* If m is an end marker: notes it in k (k ends once enough writers have
 * ended) and returns 1; else 0. */
static int rn__ksrc_marker(const struct rn_kafka_source_cfg *c, struct rn_kpart *k,
                           const rd_kafka_message_t *m)
{
    const char *writer;
    size_t wlen;
    uint32_t sub, par;
    if (rn__kend_decode(m->payload, m->len, &writer, &wlen, &sub, &par)) return 0;
    rn__kend_add(k, writer, wlen, sub, par);
    if (rn__kend_complete(k) >= c->end_markers) k->done = 1;
    return 1;
}

static int rn_kafka_source_poll(struct rn_op *op, struct rn_emitter *out)
{
    const struct rn_kafka_source_cfg *c = rn_op_ctx(op);
    struct rn_kafka_source *s = rn_op_local(op);
    /* Serves errors, statistics and (subscribe) rebalances. */
    rd_kafka_message_t *ev = rd_kafka_consumer_poll(s->rk, 0);
    if (ev) {
        if (ev->err && ev->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (ev->err == RD_KAFKA_RESP_ERR__FATAL) {
                char why[512];
                rd_kafka_fatal_error(s->rk, why, sizeof why);
                rn_op_errorf(op, "Kafka consumer failed: %s", why);
                rd_kafka_message_destroy(ev);
                return RN_EIO;
            }
            fprintf(stderr, "runnel: source '%s': Kafka: %s\n", rn_op_id(op),
                    rd_kafka_message_errstr(ev));
        }
        rd_kafka_message_destroy(ev);
    }
    if (s->fatal) {
        rn_op_errorf(op, "%s", s->errstr);
        return RN_EIO;
    }
    rn__ksrc_lag(op, s);
    int limit = RN_BATCH_RECORDS;
    if (c->max_rate > 0) {
        limit = rn_pacer_allow(&s->pacer, c->max_rate, RN_BATCH_RECORDS);
        if (limit == 0) {
            usleep(1000);
            return RN_POLL_MORE;
        }
    }
    int all_done = c->stop_at_end || c->end_markers > 0;
    for (size_t tries = 0; tries < s->n_parts; tries++) {
        struct rn_kpart *k = &s->parts[s->rr];
        s->rr = (s->rr + 1) % s->n_parts;
        if (!k->q || k->done) continue;
        all_done = 0;
        ssize_t n = rd_kafka_consume_batch_queue(k->q, 0, s->msgs, (size_t)limit);
        if (n <= 0) continue;
        int emitted = 0;
        rn_op_source_split(op, k->split_index, s->n_splits);
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = s->msgs[i];
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    fprintf(stderr, "runnel: source '%s': %s: %s\n", rn_op_id(op), k->split,
                            rd_kafka_message_errstr(m));
            } else if (!k->done && c->end_markers > 0 && rn__ksrc_marker(c, k, m)) {
                k->next = m->offset + 1; /* a marker: read, not emitted */
            } else if (!k->done) {
                rn__ksrc_emit(op, out, k, m);
                k->next = m->offset + 1;
                emitted++;
                if (k->end >= 0 && k->next >= k->end) k->done = 1;
            }
            rd_kafka_message_destroy(m);
        }
        if (emitted) {
            s->pacer.emitted += emitted;
            rn_op_metric_add(op, 0, (uint64_t)emitted);
            return RN_POLL_MORE;
        }
    }
    if (all_done || (c->stop_at_end && !s->n_parts)) {
        s->lag_at_ns = 0; /* the last figure, not one 200 ms old */
        rn__ksrc_lag(op, s);
        return RN_POLL_END;
    }
    /* Nothing buffered: wait a little for the fetcher (librdkafka fetches in
     * its own threads; fetch.wait.max.ms bounds how stale an empty fetch is). */
    usleep(2000);
    return RN_POLL_IDLE;
}

/* Snapshot format 2: count, then per partition the subtask has a position
 * for: topic, partition, next offset, and the end markers read (count, then
 * writer, subtask, parallelism each). Format 1 lacks the markers. */
static int rn_kafka_source_snapshot(struct rn_op *op, uint64_t id, struct rn_snapshot_writer *w)
{
    struct rn_kafka_source *s = rn_op_local(op);
    /* Only the partitions the subtask reads now: every subtask restores
     * every subtask's offsets (RN_OP_UNION_RESTORE), so a partition that
     * moved away is the new owner's to write. */
    size_t n = 0;
    for (size_t i = 0; i < s->n_parts; i++)
        n += s->parts[i].next >= 0 && s->parts[i].q;
    rn_snapshot_write_i64(w, RN_KSRC_SNAPSHOT_VERSION);
    rn_snapshot_write_i64(w, (int64_t)n);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n + 1);
    for (size_t i = 0; i < s->n_parts; i++) {
        const struct rn_kpart *k = &s->parts[i];
        if (k->next < 0 || !k->q) continue;
        rn_snapshot_write_str(w, k->topic);
        rn_snapshot_write_i64(w, k->partition);
        rn_snapshot_write_i64(w, k->next);
        rn_snapshot_write_i64(w, (int64_t)k->n_ends);
        for (size_t j = 0; j < k->n_ends; j++) {
            rn_snapshot_write_str(w, k->ends[j].writer);
            rn_snapshot_write_i64(w, k->ends[j].sub);
            rn_snapshot_write_i64(w, k->ends[j].par);
        }
        rd_kafka_topic_partition_list_add(l, k->topic, k->partition)->offset = k->next;
    }
    /* Kept to commit to Kafka once the checkpoint completes. */
    if (s->n_pending == RN_KSRC_PENDING_MAX) {
        rd_kafka_topic_partition_list_destroy(s->pending[0].offsets);
        memmove(s->pending, s->pending + 1, (RN_KSRC_PENDING_MAX - 1) * sizeof *s->pending);
        s->n_pending--;
    }
    s->pending[s->n_pending++] = (struct rn_kpending){id, l};
    return 0;
}

/* Called once per subtask of the checkpoint (RN_OP_UNION_RESTORE): collects
 * every partition's offset; open() takes those of the partitions this
 * subtask reads now. A partition found twice (it moved between members of a
 * consumer group) keeps the larger offset. */
static int rn_kafka_source_restore(struct rn_op *op, struct rn_snapshot_reader *r)
{
    struct rn_kafka_source *s = rn__ksrc_local(op);
    int64_t version = 0, n;
    if (rn_snapshot_read_i64(r, &version) || version < 1 || version > RN_KSRC_SNAPSHOT_VERSION ||
        rn_snapshot_read_i64(r, &n) || n < 0 || n > RN_KSRC_MAX_PARTS) {
        rn_op_errorf(op, "the checkpoint's Kafka offsets are unreadable (format %lld)",
                     (long long)version);
        return RN_ECORRUPT;
    }
    for (int64_t i = 0; i < n; i++) {
        const char *topic;
        int64_t p, next;
        if (rn_snapshot_read_str(r, &topic) || rn_snapshot_read_i64(r, &p) ||
            rn_snapshot_read_i64(r, &next) || p < 0 || p > INT32_MAX || next < 0)
            return RN_ECORRUPT;
        struct rn_kpart *k = rn__kpart_find(s->restored, s->n_restored, topic, (int32_t)p);
        if (k) {
            if (next > k->next) k->next = next;
        } else {
            s->restored = rn_xrealloc(s->restored, (s->n_restored + 1) * sizeof *s->restored);
            k = &s->restored[s->n_restored++];
            *k = (struct rn_kpart){
                .topic = rn_xstrdup(topic), .partition = (int32_t)p, .next = next};
        }
        int64_t n_ends = 0;
        if (version >= 2 && (rn_snapshot_read_i64(r, &n_ends) || n_ends < 0 || n_ends > 65536))
            return RN_ECORRUPT;
        for (int64_t j = 0; j < n_ends; j++) {
            const char *writer;
            int64_t sub, par;
            if (rn_snapshot_read_str(r, &writer) || rn_snapshot_read_i64(r, &sub) ||
                rn_snapshot_read_i64(r, &par) || par < 1 || par > 65535 || sub < 0 || sub >= par)
                return RN_ECORRUPT;
            rn__kend_add(k, writer, strlen(writer), (uint32_t)sub, (uint32_t)par);
        }
    }
    s->is_restored = 1;
    return 0;
}

/* A checkpoint completed: commit its offsets to Kafka, for monitoring only
 * (runnel restores from its own checkpoints). A failed commit is reported,
 * not fatal. */
static int rn_kafka_source_notify(struct rn_op *op, uint64_t id)
{
    struct rn_kafka_source *s = rn_op_local(op);
    if (!s || !s->rk) return 0;
    size_t done = 0;
    rd_kafka_topic_partition_list_t *last = NULL;
    for (; done < s->n_pending && s->pending[done].id <= id; done++) {
        if (last) rd_kafka_topic_partition_list_destroy(last);
        last = s->pending[done].offsets;
    }
    if (done) memmove(s->pending, s->pending + done, (s->n_pending - done) * sizeof *s->pending);
    s->n_pending -= done;
    if (!last) return 0;
    if (last->cnt) {
        rd_kafka_resp_err_t e = rd_kafka_commit(s->rk, last, 1);
        if (e)
            fprintf(stderr, "runnel: source '%s': committing offsets to Kafka: %s\n", rn_op_id(op),
                    rd_kafka_err2str(e));
        else
            rn_op_metric_add(op, 1, 1);
    }
    rd_kafka_topic_partition_list_destroy(last);
    return 0;
}

static void rn_kafka_source_close(struct rn_op *op)
{
    struct rn_kafka_source *s = rn_op_local(op);
    if (!s) return;
    for (size_t i = 0; i < s->n_parts; i++) {
        if (s->parts[i].q) rd_kafka_queue_destroy(s->parts[i].q);
        free(s->parts[i].topic);
        free(s->parts[i].split);
        rn__kend_free(&s->parts[i]);
    }
    for (size_t i = 0; i < s->n_restored; i++) {
        free(s->restored[i].topic);
        rn__kend_free(&s->restored[i]);
    }
    for (size_t i = 0; i < s->n_pending; i++)
        rd_kafka_topic_partition_list_destroy(s->pending[i].offsets);
    if (s->rk) {
        rd_kafka_consumer_close(s->rk);
        rd_kafka_destroy(s->rk);
    }
    free(s->parts);
    free(s->restored);
    free(s->msgs);
    free(s);
    rn_op_set_local(op, NULL);
}

static const struct rn_port_decl rn_kafka_source_out[] = {
    {NULL, "raw", "One record per message: its value, with topic/partition and offset."},
};

static const char *const rn_kafka_source_metrics[] = {"messages", "offset_commits", "lag", NULL};
static const char *const rn_kafka_records_metrics[] = {"messages", "offset_commits", "lag",
                                                       "bad_messages", NULL};

static const struct rn_port_decl rn_kafka_records_out[] = {
    {NULL, "raw", "The records, of type `record_type`."},
    {"dead_letter", "dead_letter",
     "Messages that are not records of `record_type`, with topic/partition and offset."},
};

static const char *rn_kafka_records_out_type(const void *ctx, uint32_t port)
{
    const struct rn_kafka_source_cfg *c = ctx;
    return port == 0 ? c->record_type : NULL;
}

const struct rn_op_type rn_source_kafka = {
    RN_OP_TYPE_HEAD,
    .name = "kafka",
    .description = "Reads Kafka topics (librdkafka consumer), one `raw` record per message. "
                   "Position: the next offset of each partition, kept in runnel's checkpoints; "
                   "event-time watermarks are kept per partition. Metric `lag`: messages behind "
                   "the partitions' ends.",
    .kind = RN_KIND_SOURCE,
    .flags = RN_OP_UNION_RESTORE,
    .config = rn_kafka_source_keys,
    .ctx_size = sizeof(struct rn_kafka_source_cfg),
    .outputs = rn_kafka_source_out,
    .n_outputs = 1,
    .metrics = rn_kafka_source_metrics,
    .init = rn_kafka_source_init,
    .fini = rn_kafka_source_fini,
    .open = rn_kafka_source_open,
    .poll = rn_kafka_source_poll,
    .close = rn_kafka_source_close,
    .snapshot = rn_kafka_source_snapshot,
    .restore = rn_kafka_source_restore,
    .notify_checkpoint_complete = rn_kafka_source_notify,
};

const struct rn_op_type rn_source_kafka_records = {
    RN_OP_TYPE_HEAD,
    .name = "kafka_records",
    .description = "Reads runnel records from Kafka topics that a `kafka` sink with `format: "
                   "record` wrote (the internal topics between the stages of a cluster job): "
                   "each message is one record of `record_type`, with its event time, from "
                   "which the source's watermarks are derived per partition. Otherwise as the "
                   "`kafka` source.",
    .kind = RN_KIND_SOURCE,
    .flags = RN_OP_UNION_RESTORE | RN_OP_EVENT_TIME,
    .config = rn_kafka_records_keys,
    .ctx_size = sizeof(struct rn_kafka_source_cfg),
    .outputs = rn_kafka_records_out,
    .n_outputs = 2,
    .metrics = rn_kafka_records_metrics,
    .init = rn_kafka_source_init,
    .fini = rn_kafka_source_fini,
    .open = rn_kafka_source_open,
    .poll = rn_kafka_source_poll,
    .close = rn_kafka_source_close,
    .snapshot = rn_kafka_source_snapshot,
    .restore = rn_kafka_source_restore,
    .notify_checkpoint_complete = rn_kafka_source_notify,
    .out_type = rn_kafka_records_out_type,
};
