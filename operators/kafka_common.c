/*
 * kafka_common.c — the configuration shared by the `kafka` source and sink
 * (see kafka_common.h).
 */
#include <stdio.h>
#include <string.h>

#include "kafka_common.h"

const char *rn__kafka_bootstrap(const struct rn_kafka_common *kc)
{
    return kc->bootstrap ? kc->bootstrap : kc->brokers;
}

int rn__kafka_has_property(const struct rn_kafka_common *kc, const char *name)
{
    if (!kc->properties) return 0;
    for (const struct rn_cfg_node *p = kc->properties->child; p; p = p->next)
        if (p->key && strcmp(p->key, name) == 0) return 1;
    return 0;
}

int rn__kafka_check(const struct rn_kafka_common *kc, const struct rn_cfg_node *node,
                    const char *const *reserved, char *errbuf, size_t errlen)
{
    if (!kc->bootstrap == !kc->brokers) {
        rn_cfg_errf(errbuf, errlen, node, "give the Kafka brokers as one of %s",
                    kc->bootstrap ? "bootstrap_servers or brokers, not both"
                                  : "bootstrap_servers or brokers");
        return RN_EINVAL;
    }
    if (!rn__kafka_bootstrap(kc)[0]) {
        rn_cfg_errf(errbuf, errlen,
                    rn_cfg_get(node, kc->bootstrap ? "bootstrap_servers" : "brokers"),
                    "the broker list is empty");
        return RN_EINVAL;
    }
    const struct rn_cfg_node *props = kc->properties;
    if (!props) return 0;
    if (props->kind != RN_CFG_MAP) {
        rn_cfg_errf(errbuf, errlen, props,
                    "'properties' must be a map of librdkafka property names to values");
        return RN_EINVAL;
    }
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    int rc = 0;
    for (const struct rn_cfg_node *p = props->child; p && rc == 0; p = p->next) {
        if (p->kind != RN_CFG_SCALAR) {
            rn_cfg_errf(errbuf, errlen, p, "librdkafka property '%s' must be a scalar", p->key);
            rc = RN_EINVAL;
            break;
        }
        for (size_t i = 0; reserved && reserved[i]; i++) {
            if (strcmp(p->key, reserved[i]) == 0) {
                rn_cfg_key_errf(errbuf, errlen, p,
                                "librdkafka property '%s' is set by runnel itself and cannot be "
                                "overridden",
                                p->key);
                rc = RN_EINVAL;
                break;
            }
        }
        char why[512];
        if (rc == 0 &&
            rd_kafka_conf_set(scratch, p->key, p->value, why, sizeof why) != RD_KAFKA_CONF_OK) {
            rn_cfg_key_errf(errbuf, errlen, p, "librdkafka property '%s': %s", p->key, why);
            rc = RN_EINVAL;
        }
    }
    rd_kafka_conf_destroy(scratch);
    return rc;
}

rd_kafka_conf_t *rn__kafka_conf(const struct rn_kafka_common *kc, const char *const *defaults,
                                char *errbuf, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];
    for (size_t i = 0; defaults && defaults[i]; i += 2) {
        if (rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], why, sizeof why) !=
            RD_KAFKA_CONF_OK) {
            snprintf(errbuf, errlen, "librdkafka property '%s': %s", defaults[i], why);
            goto fail;
        }
    }
    if (kc->properties) {
        for (const struct rn_cfg_node *p = kc->properties->child; p; p = p->next) {
            if (rd_kafka_conf_set(conf, p->key, p->value, why, sizeof why) != RD_KAFKA_CONF_OK) {
                snprintf(errbuf, errlen, "%s:%d:%d: librdkafka property '%s': %s", p->file,
                         p->key_line, p->key_col, p->key, why);
                goto fail;
            }
        }
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", rn__kafka_bootstrap(kc), why, sizeof why) !=
        RD_KAFKA_CONF_OK) {
        snprintf(errbuf, errlen, "bootstrap.servers '%s': %s", rn__kafka_bootstrap(kc), why);
        goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* ---- records as messages ------------------------------------------------------------ */

static void rn__krec_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t rn__krec_get(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void rn__krec_encode(struct rn_buf *out, const struct rn_record *r, const char *type)
{
    unsigned char h[RN_KREC_HEAD];
    size_t tl = strlen(type);
    memcpy(h, RN_KREC_MAGIC, 4);
    rn__krec_le(h + 4, (uint64_t)r->ts, 8);
    rn__krec_le(h + 12, r->key, 8);
    rn__krec_le(h + 20, r->flags, 2);
    rn__krec_le(h + 22, (uint64_t)tl, 2);
    rn_buf_append(out, h, sizeof h);
    rn_buf_append(out, type, tl);
    if (r->len) rn_buf_append(out, r->payload, r->len);
}

int rn__krec_decode(const void *p, size_t n, struct rn_record *r, const char **type,
                    uint32_t *tlen, const char **why)
{
    const unsigned char *b = p;
    if (n < RN_KREC_HEAD || memcmp(b, RN_KREC_MAGIC, 4) != 0) {
        *why = "not a runnel record message (no RNR1 header)";
        return -1;
    }
    uint64_t tl = rn__krec_get(b + 22, 2);
    if (tl == 0 || RN_KREC_HEAD + tl > n || n - RN_KREC_HEAD - tl > UINT32_MAX) {
        *why = "record message with a bad type name length";
        return -1;
    }
    r->ts = (int64_t)rn__krec_get(b + 4, 8);
    r->key = rn__krec_get(b + 12, 8);
    r->flags = (uint16_t)rn__krec_get(b + 20, 2);
    *type = (const char *)b + RN_KREC_HEAD;
    *tlen = (uint32_t)tl;
    r->payload = b + RN_KREC_HEAD + tl;
    r->len = (uint32_t)(n - RN_KREC_HEAD - tl);
    return 0;
}

void rn__kend_encode(struct rn_buf *out, const char *writer, uint32_t sub, uint32_t par)
{
    unsigned char h[RN_KEND_HEAD];
    memcpy(h, RN_KEND_MAGIC, 4);
    rn__krec_le(h + 4, sub, 2);
    rn__krec_le(h + 6, par, 2);
    rn_buf_append(out, h, sizeof h);
    rn_buf_append(out, writer, strlen(writer));
}

int rn__kend_decode(const void *p, size_t n, const char **writer, size_t *wlen, uint32_t *sub,
                    uint32_t *par)
{
    const unsigned char *b = p;
    if (n <= RN_KEND_HEAD || memcmp(b, RN_KEND_MAGIC, 4) != 0) return -1;
    *sub = (uint32_t)rn__krec_get(b + 4, 2);
    *par = (uint32_t)rn__krec_get(b + 6, 2);
    if (*par == 0 || *sub >= *par) return -1;
    *writer = (const char *)b + RN_KEND_HEAD;
    *wlen = n - RN_KEND_HEAD;
    return 0;
}
