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
