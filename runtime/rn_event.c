/*
 * rn_event.c — the "event" record type (rn_event.h): its JSON writer and key
 * fields, and the names each job keeps for it in its record types
 * (rn_record.h): the event kinds ("event.kind": the four of product.md, then
 * the feedback types a job's log_collector declares) and the names of the
 * request context fields ("event.context"). log_collector defines the type
 * (rn_op_type.types); the lists are filled at load time by the operators
 * that declare them and read-only once the job runs.
 */
#include "rn_event.h"

#include <stdio.h>
#include <string.h>

#include "rn_config.h"

#define RN__KINDS_LIST "event.kind"
#define RN__CONTEXT_LIST "event.context"

static const char *const rn__base_kinds[RN_EV_KIND_MAX] = {"request", "impression", "click", "pay"};

struct rn_names *rn_event_kinds(struct rn_types *ts)
{
    struct rn_names *l = rn_types_names(ts, RN__KINDS_LIST);
    if (rn_names_count(l) == 0)
        for (int k = 0; k < RN_EV_KIND_MAX; k++)
            rn_names_add(l, rn__base_kinds[k]);
    return l;
}

const char *rn_event_kind_name(const struct rn_types *ts, int kind)
{
    const struct rn_names *l = rn_types_names_find(ts, RN__KINDS_LIST);
    const char *s = l                                    ? rn_names_get(l, kind)
                    : kind >= 0 && kind < RN_EV_KIND_MAX ? rn__base_kinds[kind]
                                                         : NULL;
    return s ? s : "?";
}

int rn_event_kind_find(const struct rn_types *ts, const char *s, size_t n)
{
    const struct rn_names *l = rn_types_names_find(ts, RN__KINDS_LIST);
    if (l) return rn_names_find(l, s, n);
    for (int k = 0; k < RN_EV_KIND_MAX; k++)
        if (strlen(rn__base_kinds[k]) == n && memcmp(rn__base_kinds[k], s, n) == 0) return k;
    return -1;
}

int rn_event_kind_register(struct rn_types *ts, const char *name)
{
    struct rn_names *l = rn_event_kinds(ts);
    int k = rn_names_find(l, name, strlen(name));
    if (k >= 0) return k;
    if (rn_names_count(l) == RN_EVENT_KINDS_MAX || strlen(name) >= RN_EVENT_KIND_NAME_MAX)
        return -1;
    return rn_names_add(l, name);
}

int rn_event_kind_count(const struct rn_types *ts)
{
    const struct rn_names *l = rn_types_names_find(ts, RN__KINDS_LIST);
    return l ? rn_names_count(l) : RN_EV_KIND_MAX;
}

int rn_context_fields_set(struct rn_types *ts, char names[][RN_CONTEXT_NAME_MAX], uint32_t n)
{
    if (n == 0) return 0;
    struct rn_names *l = rn_types_names(ts, RN__CONTEXT_LIST);
    uint32_t have = (uint32_t)rn_names_count(l);
    if (have) {
        if (have != n) return RN_EINVAL;
        for (uint32_t i = 0; i < n; i++)
            if (strcmp(rn_names_get(l, (int)i), names[i]) != 0) return RN_EINVAL;
        return 0;
    }
    if (n > RN_CONTEXT_MAX) return RN_EINVAL;
    for (uint32_t i = 0; i < n; i++)
        rn_names_add(l, names[i]);
    return 0;
}

uint32_t rn_context_field_count(const struct rn_types *ts)
{
    return (uint32_t)rn_names_count(rn_types_names_find(ts, RN__CONTEXT_LIST));
}

const char *rn_context_field_name(const struct rn_types *ts, uint32_t i)
{
    const char *s = rn_names_get(rn_types_names_find(ts, RN__CONTEXT_LIST), (int)i);
    return s ? s : "";
}

void rn_context_json(const struct rn_types *ts, struct rn_buf *out, const double *v, uint32_t n)
{
    const struct rn_names *l = rn_types_names_find(ts, RN__CONTEXT_LIST);
    RN_BUF_LIT(out, ",\"context\":{");
    for (uint32_t i = 0; i < n; i++) {
        if (i) rn_buf_putc(out, ',');
        const char *name = rn_names_get(l, (int)i);
        if (name) {
            rn_json_str(out, name, strlen(name));
        } else {
            char nm[16];
            snprintf(nm, sizeof nm, "c%u", i);
            rn_json_str(out, nm, strlen(nm));
        }
        rn_buf_putc(out, ':');
        rn_json_f64(out, v[i]);
    }
    rn_buf_putc(out, '}');
}

int rn_context_fields_parse(const struct rn_cfg_node *node, char names[][RN_CONTEXT_NAME_MAX],
                            uint32_t *n, char *errbuf, size_t errlen)
{
    *n = 0;
    if (!node) return 0;
    if (node->kind != RN_CFG_SEQ) {
        rn_cfg_errf(errbuf, errlen, node, "'context_fields' must be a list of names");
        return RN_EINVAL;
    }
    for (const struct rn_cfg_node *c = node->child; c; c = c->next) {
        if (c->kind != RN_CFG_SCALAR || !c->value[0] || strlen(c->value) >= RN_CONTEXT_NAME_MAX) {
            rn_cfg_errf(errbuf, errlen, c, "a context field is a name of 1 to %d bytes",
                        RN_CONTEXT_NAME_MAX - 1);
            return RN_EINVAL;
        }
        if (*n == RN_CONTEXT_MAX) {
            rn_cfg_errf(errbuf, errlen, c, "at most %d context fields", RN_CONTEXT_MAX);
            return RN_EINVAL;
        }
        for (uint32_t j = 0; j < *n; j++) {
            if (strcmp(names[j], c->value) == 0) {
                rn_cfg_errf(errbuf, errlen, c, "context field '%s' is listed twice", c->value);
                return RN_EINVAL;
            }
        }
        snprintf(names[(*n)++], RN_CONTEXT_NAME_MAX, "%s", c->value);
    }
    return 0;
}

static void rn__event_json(const struct rn_types *ts, const struct rn_record *r, struct rn_buf *out)
{
    const struct rn_event *e = r->payload;
    rn_buf_reserve(out, 256);
    RN_BUF_LIT(out, "{\"type\":\"");
    rn_buf_puts(out, rn_event_kind_name(ts, e->kind));
    RN_BUF_LIT(out, "\",\"ts\":");
    rn_json_i64(out, e->ts);
    RN_BUF_LIT(out, ",\"request\":");
    rn_json_str(out, rn_str_ptr(e, e->request), e->request.len);
    RN_BUF_LIT(out, ",\"user\":");
    rn_json_str(out, rn_str_ptr(e, e->user), e->user.len);
    if (e->kind == RN_EV_REQUEST || e->kind == RN_EV_IMPRESSION) {
        rn_buf_puts(out, e->kind == RN_EV_REQUEST ? ",\"candidates\":[" : ",\"items\":[");
        const struct rn_str *items = rn_event_items(e);
        for (uint32_t i = 0; i < e->n_items; i++) {
            if (i) rn_buf_putc(out, ',');
            rn_json_str(out, rn_str_ptr(e, items[i]), items[i].len);
        }
        rn_buf_putc(out, ']');
        if (e->flags & RN_EVENT_HAS_PROPENSITIES) {
            RN_BUF_LIT(out, ",\"propensities\":[");
            const double *p = rn_event_props(e);
            for (uint32_t i = 0; i < e->n_items; i++) {
                if (i) rn_buf_putc(out, ',');
                rn_json_f64(out, p[i]);
            }
            rn_buf_putc(out, ']');
        }
    } else {
        RN_BUF_LIT(out, ",\"item\":");
        rn_json_str(out, rn_str_ptr(e, e->item), e->item.len);
    }
    if (e->flags & RN_EVENT_HAS_MODEL_VERSION) {
        RN_BUF_LIT(out, ",\"model_version\":");
        rn_json_i64(out, e->model_version);
    }
    if (e->flags & RN_EVENT_HAS_AMOUNT) {
        RN_BUF_LIT(out, ",\"amount\":");
        rn_json_f64(out, e->amount);
    }
    if (e->flags & RN_EVENT_HAS_ID) {
        RN_BUF_LIT(out, ",\"event_id\":");
        rn_json_str(out, rn_str_ptr(e, e->event_id), e->event_id.len);
    }
    if (e->n_context) rn_context_json(ts, out, rn_event_context(e), e->n_context);
    rn_buf_putc(out, '}');
}

static const char *const rn__event_keys[] = {"user", "request", "item", "event_id", NULL};

static uint64_t rn__event_key(const struct rn_record *r, int field)
{
    const struct rn_event *e = r->payload;
    switch (field) {
    case RN_EVENT_KEY_USER:
        return e->user_id;
    case RN_EVENT_KEY_REQUEST:
        return e->request_id;
    case RN_EVENT_KEY_EVENT_ID:
        return e->event_id_hash;
    default:
        return e->item_id;
    }
}

static const struct rn_field rn__event_fields[] = {
    {"user", RN_FIELD_STR, offsetof(struct rn_event, user), NULL, "User id."},
    {"request", RN_FIELD_STR, offsetof(struct rn_event, request), NULL, "Request id."},
    {"item", RN_FIELD_STR, offsetof(struct rn_event, item), NULL,
     "Item id (click, pay; empty otherwise)."},
    {"event_id", RN_FIELD_STR, offsetof(struct rn_event, event_id), NULL,
     "The producer's event id (empty when the line had none)."},
    {"ts", RN_FIELD_I64, offsetof(struct rn_event, ts), NULL, "Event time, ms."},
    {"amount", RN_FIELD_F64, offsetof(struct rn_event, amount), NULL, "Pay amount (0 otherwise)."},
    {NULL, 0, 0, NULL, NULL},
};

const struct rn_type rn_type_event = {
    .name = "event",
    .description = "a parsed recommendation event: request, impression, click or pay",
    .key_fields = rn__event_keys,
    .key_of = rn__event_key,
    .write_json_job = rn__event_json,
    .fields = rn__event_fields,
};
