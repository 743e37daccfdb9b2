/*
 * kafka_common.h — what the `kafka` source and sink share: the broker list
 * (`bootstrap_servers`, or its alias `brokers`) and the `properties:` map
 * that passes any librdkafka property through.
 *
 * This and kafka_common.c are the only places besides the two operators that
 * see librdkafka's error styles; they turn them into runnel messages.
 */
#ifndef RUNNEL_KAFKA_COMMON_H
#define RUNNEL_KAFKA_COMMON_H

#include <librdkafka/rdkafka.h>

#include "rn_common.h"
#include "rn_config.h"
#include "rn_record.h"

/* The keys every Kafka operator has; embed first in its config struct. */
struct rn_kafka_common {
    const char *bootstrap;
    const char *brokers;
    const struct rn_cfg_node *properties;
};

#define RN_KAFKA_COMMON_KEYS(cfg_struct)                                                           \
    {"bootstrap_servers",                                                                          \
     RN_CT_STRING,                                                                                 \
     NULL,                                                                                         \
     NULL,                                                                                         \
     offsetof(cfg_struct, kc.bootstrap),                                                           \
     "Kafka brokers to start from, host:port[,host:port...] (librdkafka's bootstrap.servers). "    \
     "`runnel dev-kafka` prints one for a local test cluster.",                                    \
     NULL,                                                                                         \
     0,                                                                                            \
     0,                                                                                            \
     0},                                                                                           \
        {"brokers",                                                                                \
         RN_CT_STRING,                                                                             \
         NULL,                                                                                     \
         NULL,                                                                                     \
         offsetof(cfg_struct, kc.brokers),                                                         \
         "Another name for bootstrap_servers (give one of the two).",                              \
         NULL,                                                                                     \
         0,                                                                                        \
         0,                                                                                        \
         0},                                                                                       \
    {                                                                                              \
        "properties", RN_CT_NODE, NULL, NULL, offsetof(cfg_struct, kc.properties),                 \
            "librdkafka properties passed through as they are, a map such as "                     \
            "{ security.protocol: ssl, ssl.ca.location: ca.pem }. They override runnel's "         \
            "defaults; properties runnel manages itself are refused.",                             \
            NULL, 0, 0, 0                                                                          \
    }

/* Load time: checks that exactly one of bootstrap_servers/brokers is given,
 * and that every property is a scalar librdkafka accepts (trying it on a
 * scratch configuration) and is not one of `reserved` (NULL-ended; may be
 * NULL). Errors name the YAML place. */
int rn__kafka_check(const struct rn_kafka_common *kc, const struct rn_cfg_node *node,
                    const char *const *reserved, char *errbuf, size_t errlen);

/* The broker list (bootstrap_servers or brokers; borrowed from the config). */
const char *rn__kafka_bootstrap(const struct rn_kafka_common *kc);

/* Builds a librdkafka configuration: runnel's defaults (`defaults`, pairs of
 * name and value, NULL-ended), then the user's properties over them, then
 * bootstrap.servers. Returns a new conf (the caller owns it, or hands it to
 * rd_kafka_new) or NULL with a message in errbuf. */
rd_kafka_conf_t *rn__kafka_conf(const struct rn_kafka_common *kc, const char *const *defaults,
                                char *errbuf, size_t errlen);

/* Whether the user's properties set `name`. */
int rn__kafka_has_property(const struct rn_kafka_common *kc, const char *name);

/* ---- records as messages (`format: record`, the `kafka_records` source) ----------------
 * How one stage of a cluster job hands records to the next (docs/cluster.md):
 * the record itself, not its JSON, since runnel's payloads are
 * position-independent bytes. A message value is
 *   "RNR1"  magic (4 bytes)
 *   ts      int64, little-endian: the record's event time
 *   key     uint64, little-endian: the record's key (the consumer's exchange
 *           recomputes it from its own key field)
 *   flags   uint16, little-endian: the record's type-specific flags
 *   tlen    uint16, little-endian, then tlen bytes: the record type's name
 *   payload the rest: the record's payload bytes as they were
 * Only runnel writes these; the reader checks the frame and the type name,
 * not the payload's inner offsets (an internal topic is not outside input). */
#define RN_KREC_MAGIC "RNR1"
#define RN_KREC_HEAD 24 /* magic, ts, key, flags, tlen */

/* Appends the message value of record (ts, key, type name, payload) to out. */
void rn__krec_encode(struct rn_buf *out, const struct rn_record *r, const char *type);
/* Reads a message value: 0 with the parts (borrowed from p), or -1 with the
 * reason in why (a static string). */
int rn__krec_decode(const void *p, size_t n, struct rn_record *r, const char **type,
                    uint32_t *tlen, const char **why);

/* End markers (docs/cluster.md, "The end of a bounded job"): a `kafka` sink
 * with `end_markers: true` writes one to every partition of its topic once
 * everything it was given is committed, and a `kafka_records` source with
 * `end_markers: N` ends a partition when it has read the markers of N
 * writers. A marker's value:
 *   magic   "RNE1" (never the start of a record message)
 *   sub     uint16, little-endian: the writing sink subtask
 *   par     uint16, little-endian: the sink's parallelism (a writer is
 *           complete once the markers of all its subtasks are read)
 *   writer  the rest: the writer's name (its transactional.id prefix), stable
 *           across restarts, so a marker written twice counts once */
#define RN_KEND_MAGIC "RNE1"
#define RN_KEND_HEAD 8
/* Appends the marker value of subtask sub of par of writer to out. */
void rn__kend_encode(struct rn_buf *out, const char *writer, uint32_t sub, uint32_t par);
/* 0 with the parts (writer borrowed from p, wlen bytes) if p is a marker, -1 if not. */
int rn__kend_decode(const void *p, size_t n, const char **writer, size_t *wlen, uint32_t *sub,
                    uint32_t *par);

#endif
