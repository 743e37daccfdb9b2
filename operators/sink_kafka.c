/*
 * sink_kafka.c — the `kafka` sink: writes each record as one JSON message to
 * a Kafka topic with a librdkafka producer; the message key is the value of
 * a record field (`key`), so Kafka's partitioner keeps one key in one
 * partition.
 *
 * at_least_once: messages are produced as they come; at every checkpoint the
 * producer is flushed and every delivery report checked, so a completed
 * checkpoint never covers an unacknowledged message. After a failure the
 * job replays from its last checkpoint: messages since then may be written
 * twice, none is lost.
 *
 * exactly_once: Kafka transactions, one open at a time, with the stable
 * transactional.id "<prefix>-<subtask>" (prefix: transactional_id_prefix,
 * by default "runnel-<job>-<sink id>"):
 *
 *   open            init_transactions (fences an older producer with the same
 *                   id and aborts its open transaction)
 *   process         begin_transaction before the first record after a
 *                   commit; produce into the open transaction
 *   snapshot(N)     flush and check delivery ("pre-commit"); the transaction
 *                   stays open and its messages are also written to the
 *                   snapshot; records that arrive until N completes are held
 *                   in memory (they belong to the next transaction)
 *   notify(N)       commit_transaction; the held records begin the next one
 *   failure/close   the open transaction is aborted (or, after a crash,
 *                   aborted by the next init_transactions)
 *
 * A crash after checkpoint N completed and before its transaction committed
 * is the hard case: the job restores from N, so N's messages are not replayed
 * by the sources, and librdkafka cannot resume another producer's
 * transaction (Flink's Java client does so by reflection). The sink
 * therefore keeps N's messages in N's snapshot and, on restore, produces
 * them again in a transaction of their own and commits it. If N had in fact
 * committed just before the crash, they are then written twice: the one
 * window where exactly_once degrades to at-least-once. docs/guarantees.md
 * says what each mode promises.
 *
 * end_markers: at the end of a bounded stream (finish() not caused by a stop),
 * once everything the sink was given is acknowledged (at_least_once) or
 * committed (exactly_once: after the final checkpoint's transaction), the
 * sink writes an end marker (kafka_common.h) to every partition of its
 * topic, in a transaction of its own. Every record of this subtask then
 * lies before its marker in each partition, which is what lets the next
 * stage of a cluster job end (docs/cluster.md).
 *
 * Everything runs on the subtask's worker thread, including librdkafka's
 * delivery-report callback (served by rd_kafka_poll/flush here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_common.h"
#include "rn_checkpoint.h"
#include "rn_operator.h"

#define RN_KSINK_SNAPSHOT_VERSION 1

enum { RN_KSINK_AT_LEAST_ONCE = 0, RN_KSINK_EXACTLY_ONCE = 1 };
enum { RN_KSINK_JSON = 0, RN_KSINK_RECORD = 1 };
static const char *const rn_ksink_formats[] = {"json", "record", NULL};

struct rn_kafka_sink_cfg {
    struct rn_kafka_common kc;
    const char *topic;
    const char *key;
    int mode;
    const char *txn_prefix;
    int64_t txn_timeout;
    int64_t flush_timeout;
    int format; /* RN_KSINK_JSON, RN_KSINK_RECORD */
    int end_markers;
};

/* Messages as (key length, key, value length, value), back to back. */
struct rn_kmsgs {
    struct rn_buf buf;
    uint64_t n;
};

struct rn_kafka_sink {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    int eos;
    int in_txn;             /* a transaction is open */
    uint64_t precommitted;  /* exactly_once: checkpoint whose transaction awaits commit, or 0 */
    struct rn_kmsgs txn;    /* exactly_once: the open transaction's messages */
    struct rn_kmsgs held;   /* exactly_once: records after a pre-commit */
    struct rn_kmsgs replay; /* restored: the pre-committed transaction to write again */
    struct rn_buf json;
    struct rn_buf value; /* format record: the message value */
    char *key_field;
    size_t key_field_len;
    char errstr[512];
    int failed;  /* a delivery failed */
    int spoiled; /* the open transaction took records beyond its checkpoint's cut and
                    then failed: it must never commit */
    uint64_t delivered, failed_n;
    char writer[480]; /* the transactional.id prefix: names this sink in end markers */
    int ended;        /* end_markers: the input ended (not a stop); markers are due */
    int markers_done; /* the end markers are written */
};

static const char *const rn_ksink_modes[] = {"at_least_once", "exactly_once", NULL};

static const struct rn_config_key rn_kafka_sink_keys[] = {
    RN_KAFKA_COMMON_KEYS(struct rn_kafka_sink_cfg),
    {"topic", RN_CT_STRING, NULL, NULL, offsetof(struct rn_kafka_sink_cfg, topic),
     "Topic to write to; one JSON message per record.", NULL, RN_CK_REQUIRED, 0, 0},
    {"key", RN_CT_STRING, NULL, NULL, offsetof(struct rn_kafka_sink_cfg, key),
     "Record field whose value is the message key (default: no key; the partitioner spreads "
     "messages).",
     NULL, 0, 0, 0},
    {"mode", RN_CT_ENUM, "at_least_once", NULL, offsetof(struct rn_kafka_sink_cfg, mode),
     "at_least_once: flush at every checkpoint; exactly_once: Kafka transactions committed "
     "when the checkpoint completes (needs checkpoints; see docs/guarantees.md).",
     rn_ksink_modes, 0, 0, 0},
    {"transactional_id_prefix", RN_CT_STRING, NULL, NULL,
     offsetof(struct rn_kafka_sink_cfg, txn_prefix),
     "exactly_once: transactional.id is this prefix, '-', the sink subtask. Keep it stable "
     "across restarts (it fences the previous run's producer) and unique per job and sink. "
     "Default: runnel-<job name>-<sink id>.",
     NULL, 0, 0, 0},
    {"transaction_timeout", RN_CT_DURATION, "60s", "ms",
     offsetof(struct rn_kafka_sink_cfg, txn_timeout),
     "exactly_once: the broker aborts a transaction left open this long (longer than the "
     "checkpoint interval; at most the broker's transaction.max.timeout.ms).",
     NULL, 0, 1000, 3600000},
    {"format", RN_CT_ENUM, "json", NULL, offsetof(struct rn_kafka_sink_cfg, format),
     "json: the record's JSON form (for any consumer); record: the record itself (type, event "
     "time and payload bytes) for a `kafka_records` source of another runnel job, such as the "
     "next stage of a cluster job.",
     rn_ksink_formats, 0, 0, 0},
    {"flush_timeout", RN_CT_DURATION, "60s", "ms",
     offsetof(struct rn_kafka_sink_cfg, flush_timeout),
     "How long a checkpoint or the end of the stream waits for the brokers to acknowledge "
     "messages before the job fails.",
     NULL, 0, 100, 3600000},
    {"end_markers", RN_CT_BOOL, "false", NULL, offsetof(struct rn_kafka_sink_cfg, end_markers),
     "At the end of a bounded stream, once every record is committed, write an end marker to "
     "every partition of the topic, so that a `kafka_records` source with `end_markers` can "
     "end (the coordinator sets it between the stages of a cluster job).",
     NULL, 0, 0, 0},
    RN_CONFIG_END,
};

static const char *const rn_ksink_reserved[] = {
    "bootstrap.servers", "transactional.id", "enable.idempotence", "transaction.timeout.ms", NULL};

static int rn_kafka_sink_init(void *ctx, const struct rn_cfg_node *node, char *errbuf,
                              size_t errlen)
{
    struct rn_kafka_sink_cfg *c = ctx;
    int rc = rn__kafka_check(&c->kc, node, rn_ksink_reserved, errbuf, errlen);
    if (rc) return rc;
    if (!c->topic[0]) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "topic"), "the topic name is empty");
        return RN_EINVAL;
    }
    if (c->key && !c->key[0]) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "key"), "the key field name is empty");
        return RN_EINVAL;
    }
    return 0;
}

/* ---- the key: a top-level field of the record's JSON form ------------------------------ */

/* Finds top-level field `name` in the JSON object j (as the types' writers
 * produce it: compact, no duplicate keys). Sets *v and *vn to its value, without
 * the quotes of a string (escapes are kept as written). Returns 0 or -1. */
static int rn__json_field(const char *j, size_t n, const char *name, size_t name_len,
                          const char **v, size_t *vn)
{
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = j[i];
        if (ch == '"') {
            size_t s = ++i;
            while (i < n && j[i] != '"')
                i += j[i] == '\\' ? 2 : 1;
            if (i >= n) return -1;
            size_t e = i;
            if (depth == 1 && i + 1 < n && j[i + 1] == ':' && e - s == name_len &&
                memcmp(j + s, name, name_len) == 0) {
                size_t a = i + 2, b = a;
                if (a < n && j[a] == '"') {
                    b = ++a;
                    while (b < n && j[b] != '"')
                        b += j[b] == '\\' ? 2 : 1;
                } else {
                    int d = 0;
                    while (b < n && (d > 0 || (j[b] != ',' && j[b] != '}'))) {
                        if (j[b] == '{' || j[b] == '[') d++;
                        if (j[b] == '}' || j[b] == ']') d--;
                        b++;
                    }
                }
                if (b > n) return -1;
                *v = j + a;
                *vn = b - a;
                return 0;
            }
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return -1;
}

/* ---- producing ------------------------------------------------------------------------- */

static void rn__ksink_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct rn_kafka_sink *s = opaque;
    (void)rk;
    if (m->err) {
        if (!s->failed)
            snprintf(s->errstr, sizeof s->errstr, "delivery to %s [%d] failed: %s",
                     rd_kafka_topic_name(m->rkt), (int)m->partition, rd_kafka_err2str(m->err));
        s->failed = 1;
        s->failed_n++;
    } else {
        s->delivered++;
    }
}

static void rn__kmsgs_add(struct rn_kmsgs *q, const char *k, size_t kn, const char *v, size_t vn)
{
    uint32_t a = (uint32_t)kn, b = (uint32_t)vn;
    rn_buf_reserve(&q->buf, sizeof a + kn + sizeof b + vn); /* one check per message */
    char *p = q->buf.data + q->buf.len;
    memcpy(p, &a, sizeof a);
    if (kn) memcpy(p + sizeof a, k, kn);
    memcpy(p + sizeof a + kn, &b, sizeof b);
    memcpy(p + sizeof a + kn + sizeof b, v, vn);
    q->buf.len += sizeof a + kn + sizeof b + vn;
    q->n++;
}

/* Produces one message, waiting (serving delivery reports) while the local
 * queue is full. */
static int rn__ksink_produce_to(struct rn_op *op, struct rn_kafka_sink *s, int32_t partition,
                                const char *k, size_t kn, const char *v, size_t vn)
{
    for (;;) {
        if (rd_kafka_produce(s->rkt, partition, RD_KAFKA_MSG_F_COPY, (void *)v, vn,
                             kn ? k : NULL, kn, NULL) == 0)
            return 0;
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rn_op_errorf(op, "producing to '%s': %s", rd_kafka_topic_name(s->rkt),
                         rd_kafka_err2str(e));
            return RN_EIO;
        }
        rd_kafka_poll(s->rk, 10);
    }
}

static int rn__ksink_produce(struct rn_op *op, struct rn_kafka_sink *s, const char *k, size_t kn,
                             const char *v, size_t vn)
{
    return rn__ksink_produce_to(op, s, RD_KAFKA_PARTITION_UA, k, kn, v, vn);
}

static int rn__ksink_produce_all(struct rn_op *op, struct rn_kafka_sink *s,
                                 const struct rn_kmsgs *q, struct rn_kmsgs *also)
{
    const char *p = q->buf.data, *end = p + q->buf.len;
    while (p < end) {
        uint32_t kn, vn;
        memcpy(&kn, p, sizeof kn);
        const char *k = p + sizeof kn;
        memcpy(&vn, k + kn, sizeof vn);
        const char *v = k + kn + sizeof vn;
        p = v + vn;
        int rc = rn__ksink_produce(op, s, k, kn, v, vn);
        if (rc) return rc;
        if (also) rn__kmsgs_add(also, k, kn, v, vn);
    }
    return 0;
}

/* Converts a librdkafka transaction error into a runnel error; takes e. */
static int rn__ksink_txn_error(struct rn_op *op, const char *what, rd_kafka_error_t *e)
{
    rn_op_errorf(op, "Kafka %s failed%s: %s", what,
                 rd_kafka_error_txn_requires_abort(e) ? " (the transaction was aborted)"
                 : rd_kafka_error_is_fatal(e)         ? " (fatal: fenced by a newer producer "
                                                        "with the same transactional.id?)"
                                                      : "",
                 rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return RN_EIO;
}

/* Waits until every produced message is acknowledged (or failed). */
static int rn__ksink_flush(struct rn_op *op, struct rn_kafka_sink *s)
{
    const struct rn_kafka_sink_cfg *c = rn_op_ctx(op);
    rd_kafka_resp_err_t e = rd_kafka_flush(s->rk, (int)c->flush_timeout);
    if (e) {
        rn_op_errorf(op, "flushing to '%s': %s (%d messages unacknowledged)", c->topic,
                     rd_kafka_err2str(e), rd_kafka_outq_len(s->rk));
        return RN_EIO;
    }
    if (s->failed) {
        rn_op_errorf(op, "%s", s->errstr);
        return RN_EIO;
    }
    return 0;
}

static int rn__ksink_begin(struct rn_op *op, struct rn_kafka_sink *s)
{
    rd_kafka_error_t *e = rd_kafka_begin_transaction(s->rk);
    if (e) return rn__ksink_txn_error(op, "begin_transaction", e);
    s->in_txn = 1;
    return 0;
}

static int rn__ksink_commit(struct rn_op *op, struct rn_kafka_sink *s)
{
    const struct rn_kafka_sink_cfg *c = rn_op_ctx(op);
    rd_kafka_error_t *e = rd_kafka_commit_transaction(s->rk, (int)c->flush_timeout);
    s->in_txn = 0;
    if (e) return rn__ksink_txn_error(op, "commit_transaction", e);
    rn_op_metric_add(op, 1, 1);
    return 0;
}

/* Writes this subtask's end marker to every partition of the topic and waits
 * for the brokers (exactly_once: in a transaction of its own, committed).
 * Called once everything before it is acknowledged or committed. */
static int rn__ksink_end_markers(struct rn_op *op, struct rn_kafka_sink *s)
{
    const struct rn_kafka_sink_cfg *c = rn_op_ctx(op);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(s->rk, 0, s->rkt, &md, (int)c->flush_timeout);
    if (err || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0) {
        rd_kafka_resp_err_t e = err                  ? err
                                : md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                                : md->topics[0].err  ? md->topics[0].err
                                                     : RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
        rn_op_errorf(op, "end markers: partitions of '%s': %s", c->topic, rd_kafka_err2str(e));
        if (!err) rd_kafka_metadata_destroy(md);
        return RN_EIO;
    }
    int n = md->topics[0].partition_cnt;
    int32_t *ids = rn_xmalloc((size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++)
        ids[i] = md->topics[0].partitions[i].id;
    rd_kafka_metadata_destroy(md);
    struct rn_buf v = RN_BUF_INIT;
    rn__kend_encode(&v, s->writer, rn_op_subtask(op), rn_op_parallelism(op));
    int rc = s->eos ? rn__ksink_begin(op, s) : 0;
    for (int i = 0; !rc && i < n; i++)
        rc = rn__ksink_produce_to(op, s, ids[i], NULL, 0, v.data, v.len);
    if (!rc) rc = rn__ksink_flush(op, s);
    if (!rc && s->eos) rc = rn__ksink_commit(op, s);
    rn_buf_free(&v);
    free(ids);
    if (!rc) s->markers_done = 1;
    return rc;
}

static int rn_kafka_sink_open(struct rn_op *op)
{
    const struct rn_kafka_sink_cfg *c = rn_op_ctx(op);
    struct rn_kafka_sink *s = rn_op_local(op);
    if (!s) {
        s = rn_xcalloc(1, sizeof *s);
        rn_op_set_local(op, s);
    }
    s->eos = c->mode == RN_KSINK_EXACTLY_ONCE;
    if (s->eos && !rn_op_checkpointing(op)) {
        rn_op_errorf(op, "mode exactly_once commits a transaction per checkpoint: the job needs "
                         "`checkpoint:` (or use mode at_least_once)");
        return RN_EINVAL;
    }
    if (c->key) {
        s->key_field = rn_xstrdup(c->key);
        s->key_field_len = strlen(c->key);
    }
    char txid[512], timeout[32], err[512];
    snprintf(timeout, sizeof timeout, "%lld", (long long)c->txn_timeout);
    if (c->txn_prefix)
        snprintf(s->writer, sizeof s->writer, "%s", c->txn_prefix);
    else
        snprintf(s->writer, sizeof s->writer, "runnel-%s-%s", rn_op_job_name(op), rn_op_id(op));
    snprintf(txid, sizeof txid, "%s-%u", s->writer, rn_op_subtask(op));
    /* Name and value pairs; at_least_once ends the list before the
     * transactional ones. */
    /* clang-format off */
    const char *defaults[] = {
        "linger.ms", "5",
        "enable.idempotence", "true",
        "log.connection.close", "false",
        s->eos ? "transactional.id" : NULL, txid,
        "transaction.timeout.ms", timeout,
        NULL};
    /* clang-format on */
    rd_kafka_conf_t *conf = rn__kafka_conf(&c->kc, defaults, err, sizeof err);
    if (!conf) {
        rn_op_errorf(op, "%s", err);
        return RN_EINVAL;
    }
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_dr_msg_cb(conf, rn__ksink_dr);
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        rn_op_errorf(op, "cannot create a Kafka producer: %s", err);
        return RN_EINVAL;
    }
    s->rkt = rd_kafka_topic_new(s->rk, c->topic, NULL);
    if (!s->eos) return 0;
    /* Fences a producer of an earlier run with the same transactional.id
     * and aborts the transaction it left open. */
    rd_kafka_error_t *e = rd_kafka_init_transactions(s->rk, (int)c->flush_timeout);
    if (e) return rn__ksink_txn_error(op, "init_transactions", e);
    if (s->replay.n) {
        /* The restored checkpoint's transaction may not have committed:
         * write its messages again and commit them. */
        int rc = rn__ksink_begin(op, s);
        if (!rc) rc = rn__ksink_produce_all(op, s, &s->replay, NULL);
        if (!rc) rc = rn__ksink_flush(op, s);
        if (!rc) rc = rn__ksink_commit(op, s);
        if (rc) return rc;
        rn_op_metric_add(op, 2, s->replay.n);
        rn_buf_free(&s->replay.buf);
        s->replay.n = 0;
    }
    return 0; /* the next transaction begins with its first record */
}

static int rn_kafka_sink_process(struct rn_op *op, const struct rn_batch *in,
                                 struct rn_emitter *out)
{
    struct rn_kafka_sink *s = rn_op_local(op);
    (void)out;
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_record *r = &in->recs[i];
        const struct rn_kafka_sink_cfg *c = rn_op_ctx(op);
        rn_buf_reset(&s->json);
        if (c->format == RN_KSINK_JSON || s->key_field)
            rn_types_write_json(rn_op_types(op), r, &s->json);
        const char *k = NULL;
        size_t kn = 0;
        if (s->key_field &&
            rn__json_field(s->json.data, s->json.len, s->key_field, s->key_field_len, &k, &kn)) {
            k = NULL;
            kn = 0;
            rn_op_metric_add(op, 3, 1); /* no such field: sent without a key */
        }
        const struct rn_buf *v = &s->json;
        if (c->format == RN_KSINK_RECORD) {
            rn_buf_reset(&s->value);
            rn__krec_encode(&s->value, r, rn_types_get(rn_op_types(op), r->type)->name);
            v = &s->value;
        }
        if (s->eos && s->precommitted) {
            rn__kmsgs_add(&s->held, k, kn, v->data, v->len);
            continue;
        }
        if (s->eos && !s->in_txn) {
            int rc = rn__ksink_begin(op, s);
            if (rc) return rc;
        }
        int rc = rn__ksink_produce(op, s, k, kn, v->data, v->len);
        if (rc) return rc;
        if (s->eos) rn__kmsgs_add(&s->txn, k, kn, v->data, v->len);
    }
    rn_op_metric_add(op, 0, in->n);
    rd_kafka_poll(s->rk, 0);
    if (s->failed) {
        rn_op_errorf(op, "%s", s->errstr);
        return RN_EIO;
    }
    return 0;
}

/* Snapshot format 1: the pre-committed transaction's message count and
 * messages (exactly_once), so a restore can write them again. */
static int rn_kafka_sink_snapshot(struct rn_op *op, uint64_t id, struct rn_snapshot_writer *w)
{
    struct rn_kafka_sink *s = rn_op_local(op);
    if (s->spoiled) { /* no later checkpoint may complete without the dropped records */
        rn_op_errorf(op, "the open transaction failed in an earlier checkpoint");
        return RN_EIO;
    }
    int rc = rn__ksink_flush(op, s);
    if (rc) return rc;
    rn_snapshot_write_i64(w, RN_KSINK_SNAPSHOT_VERSION);
    if (!s->eos || !s->in_txn) {
        /* Nothing written since the last commit: no transaction to hold. */
        rn_snapshot_write_i64(w, 0);
        return 0;
    }
    if (s->precommitted) {
        /* The previous checkpoint has not completed yet: its transaction
         * takes this one's records too, and is committed when either
         * completes (a completed checkpoint implies the earlier ones). */
        rc = rn__ksink_produce_all(op, s, &s->held, &s->txn);
        rn_buf_reset(&s->held.buf);
        s->held.n = 0;
        if (!rc) rc = rn__ksink_flush(op, s);
        if (rc) {
            /* Some held records are in the transaction now, others were
             * dropped: committing it when the previous checkpoint completes
             * would write records past that checkpoint (written again after
             * a restore from it) and lose the rest. */
            s->spoiled = 1;
            return rc;
        }
    }
    rn_snapshot_write_i64(w, (int64_t)s->txn.n);
    rn_snapshot_write(w, s->txn.buf.data, s->txn.buf.len);
    s->precommitted = id;
    return 0;
}

static int rn_kafka_sink_restore(struct rn_op *op, struct rn_snapshot_reader *r)
{
    struct rn_kafka_sink *s = rn_op_local(op);
    if (!s) {
        s = rn_xcalloc(1, sizeof *s);
        rn_op_set_local(op, s);
    }
    int64_t version, n;
    if (rn_snapshot_read_i64(r, &version) || version != RN_KSINK_SNAPSHOT_VERSION ||
        rn_snapshot_read_i64(r, &n) || n < 0)
        return RN_ECORRUPT;
    for (int64_t i = 0; i < n; i++) {
        int64_t kn, vn;
        char *k, *v;
        uint32_t a, b;
        if (rn_snapshot_read(r, &a, sizeof a)) return RN_ECORRUPT;
        kn = a;
        k = rn_xmalloc((size_t)kn + 1);
        if (rn_snapshot_read(r, k, (size_t)kn) || rn_snapshot_read(r, &b, sizeof b)) {
            free(k);
            return RN_ECORRUPT;
        }
        vn = b;
        v = rn_xmalloc((size_t)vn + 1);
        if (rn_snapshot_read(r, v, (size_t)vn)) {
            free(k);
            free(v);
            return RN_ECORRUPT;
        }
        rn__kmsgs_add(&s->replay, k, (size_t)kn, v, (size_t)vn);
        free(k);
        free(v);
    }
    return 0;
}

/* Checkpoint `id` completed: commit the transaction pre-committed for it (or
 * an earlier one); what was held meanwhile begins the next. */
static int rn__ksink_commit_done(struct rn_op *op, struct rn_kafka_sink *s, uint64_t id)
{
    if (!s || !s->rk || !s->eos || !s->precommitted || s->precommitted > id) return 0;
    if (s->spoiled) {
        rn_op_errorf(op,
                     "the transaction of checkpoint %llu is not committed: a later "
                     "checkpoint failed while adding its records to it (a restart restores "
                     "checkpoint %llu and writes that transaction again)",
                     (unsigned long long)s->precommitted, (unsigned long long)s->precommitted);
        return RN_EIO;
    }
    int rc = rn__ksink_commit(op, s);
    if (rc) return rc;
    s->precommitted = 0;
    rn_buf_reset(&s->txn.buf);
    s->txn.n = 0;
    if (s->held.n) {
        rc = rn__ksink_begin(op, s);
        if (!rc) rc = rn__ksink_produce_all(op, s, &s->held, &s->txn);
    }
    rn_buf_reset(&s->held.buf);
    s->held.n = 0;
    return rc;
}

static int rn_kafka_sink_notify(struct rn_op *op, uint64_t id)
{
    struct rn_kafka_sink *s = rn_op_local(op);
    int rc = rn__ksink_commit_done(op, s, id);
    /* Everything given to the sink is committed once its input ended and no
     * transaction is open or waits: the end markers follow it. */
    if (!rc && s && s->rk && s->eos && s->ended && !s->markers_done && !s->precommitted &&
        !s->in_txn && !s->held.n)
        rc = rn__ksink_end_markers(op, s);
    return rc;
}

static int rn_kafka_sink_finish(struct rn_op *op, struct rn_emitter *out)
{
    struct rn_kafka_sink *s = rn_op_local(op);
    (void)out;
    const struct rn_kafka_sink_cfg *c = rn_op_ctx(op);
    /* A stop (cancel, savepoint, rescale) is no end of the input. */
    s->ended = c->end_markers && !rn_op_stopping(op);
    /* exactly_once: the final checkpoint (which follows) pre-commits and
     * its completion commits, then come the markers (notify); here only the
     * plain mode flushes. */
    if (s->eos) return 0;
    int rc = rn__ksink_flush(op, s);
    if (!rc && s->ended) rc = rn__ksink_end_markers(op, s);
    return rc;
}

static void rn_kafka_sink_close(struct rn_op *op)
{
    struct rn_kafka_sink *s = rn_op_local(op);
    if (!s) return;
    if (s->rk) {
        if (s->in_txn) {
            /* Not committed: the job failed or stopped before the checkpoint
             * completed. Abort, so read_committed consumers never see it. */
            rd_kafka_error_t *e = rd_kafka_abort_transaction(s->rk, 10000);
            if (e) {
                fprintf(stderr, "runnel: sink '%s': abort_transaction: %s\n", rn_op_id(op),
                        rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_flush(s->rk, 10000);
        }
        if (s->rkt) rd_kafka_topic_destroy(s->rkt);
        rd_kafka_destroy(s->rk);
    }
    rn_buf_free(&s->txn.buf);
    rn_buf_free(&s->held.buf);
    rn_buf_free(&s->replay.buf);
    rn_buf_free(&s->json);
    rn_buf_free(&s->value);
    free(s->key_field);
    free(s);
    rn_op_set_local(op, NULL);
}

static const char *const rn_kafka_sink_metrics[] = {"messages", "transactions", "replayed",
                                                    "no_key", NULL};

const struct rn_op_type rn_sink_kafka = {
    RN_OP_TYPE_HEAD,
    .name = "kafka",
    .description = "Writes records as JSON messages (or, `format: record`, as runnel records) "
                   "to a Kafka topic (librdkafka producer), keyed by a record field. at_least_once flushes at every checkpoint; "
                   "exactly_once writes through Kafka transactions committed when the "
                   "checkpoint completes.",
    .kind = RN_KIND_SINK,
    .config = rn_kafka_sink_keys,
    .ctx_size = sizeof(struct rn_kafka_sink_cfg),
    .in_type = "*",
    .metrics = rn_kafka_sink_metrics,
    .init = rn_kafka_sink_init,
    .open = rn_kafka_sink_open,
    .process = rn_kafka_sink_process,
    .finish = rn_kafka_sink_finish,
    .close = rn_kafka_sink_close,
    .snapshot = rn_kafka_sink_snapshot,
    .restore = rn_kafka_sink_restore,
    .notify_checkpoint_complete = rn_kafka_sink_notify,
};
